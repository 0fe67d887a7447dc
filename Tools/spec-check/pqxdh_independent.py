#!/usr/bin/env python3
"""Independent replay of TestVectors/pqxdh (both suites), written from the specification only.

Sources read: Docs/spec/pqxdh.md, hush-1.md, README.md, vectors.md, Docs/protocol.md, Signal's
PQXDH (rev. 3), X3DH and Double Ratchet specifications, FIPS 203.  Not read: any Swift source of
Hush, its vector generator, or Tools/spec-check/pqxdh_check.py (written by the author of the Swift
code).  The hush-1 primitives (X25519, HKDF, XChaCha20-Poly1305, XEdDSA in libsignal's form, the
prime-order test, varints) are reused from spec_check.py, which another reviewer wrote from the
spec alone.  Everything PQXDH-specific (ML-KEM wiring, both message formats, the Signal-v3 suite's
protobuf, AES-CBC and MAC, Bob's checks, the policy) is written here.

Findings about the specification: REVIEW.md, "PQXDH (independent review, 2026-12-02)" (P1-P14)
and its second round (P15-), after pqxdh.md §4 (Alice's check order) and §7 (new vector cases)
changed.  Every rejection and bundle case is checked three ways: it is one §7 describes (the
message rebuilt from the main message where §7 calls it a rewrite, or from §7's label
derivation), the error comes from this file's §4 / §5 code for the reason the text gives, and,
for multi-fault cases, removing the first fault gives the next one.

Usage: Tools/spec-check/.venv/bin/python Tools/spec-check/pqxdh_independent.py TestVectors/pqxdh [-v]
(run.sh runs it after pqxdh_check.py).  Ends "pqxdh-independent: N passed, M failed".
"""

import copy
import hashlib
import hmac as _hmac
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import spec_check as H  # noqa: E402  (hush-1 primitives; written from the spec alone)

from kyber_py.ml_kem import ML_KEM_1024 as MLKEM  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from cryptography.hazmat.primitives import padding  # noqa: E402

ProtocolError = H.ProtocolError
fail = H.fail
VERBOSE = False

# ---------------------------------------------------------------------------
# pqxdh.md §1 constants
# ---------------------------------------------------------------------------

F = b"\xff" * 32
INFO_V3 = b"WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024"
INFO_H1 = b"hush-1/pqxdh"
KYBER_TYPE = 0x08
EK_LEN, CT_LEN, SS_LEN, SEED_LEN = 1568, 1568, 32, 64
Q_KEM = 3329

SUITES = {
    # X3DH info (protocol.md §2 / hush-1.md §1), PQXDH info, root info, message-key info
    "signal-v3": dict(x3dh=b"WhisperText", pq=INFO_V3, root=b"WhisperRatchet",
                      mk=b"WhisperMessageKeys"),
    "hush-1": dict(x3dh=H.X3DH_INFO, pq=INFO_H1, root=H.ROOT_INFO, mk=H.MESSAGE_KEYS_INFO),
}


# ---------------------------------------------------------------------------
# ML-KEM-1024 (pqxdh.md §2, FIPS 203)
# ---------------------------------------------------------------------------

def kem_keygen(seed):
    if len(seed) != SEED_LEN:
        raise AssertionError("Kyber seed is not 64 bytes")
    ek, dk = MLKEM._keygen_internal(seed[:32], seed[32:])
    return ek, dk


def ek_decodes(ek):
    """FIPS 203 §7.2: length, then the modulus check ByteEncode12(ByteDecode12(ek)) == ek."""
    if len(ek) != EK_LEN:
        return False
    t = ek[:384 * 4]
    for i in range(0, len(t), 3):
        b0, b1, b2 = t[i], t[i + 1], t[i + 2]
        c0 = b0 | ((b1 & 0x0F) << 8)
        c1 = (b1 >> 4) | (b2 << 4)
        if c0 >= Q_KEM or c1 >= Q_KEM:
            return False
    return True


def kem_encaps_internal(ek, m):
    K, c = MLKEM._encaps_internal(ek, m)  # FIPS 203 Algorithm 17 returns (K, c)
    return c, K


def kem_decaps(seed, c):
    _, dk = kem_keygen(seed)
    return MLKEM.decaps(dk, c)


# ---------------------------------------------------------------------------
# Minimal protobuf (protocol.md §5: varints wire type 0, bytes wire type 2, field order)
# ---------------------------------------------------------------------------

def pb_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_encode(fields):
    """fields: list of (number, int | bytes) in field-number order; None values omitted."""
    out = b""
    for num, val in fields:
        if val is None:
            continue
        if isinstance(val, int):
            out += pb_varint(num << 3 | 0) + pb_varint(val)
        else:
            out += pb_varint(num << 3 | 2) + pb_varint(len(val)) + val
    return out


def pb_decode(data, schema):
    """Returns {field: value} (last one wins); malformed on anything protocol.md §5 refuses.

    schema: {known field number: wire type (0 varint, 2 length-delimited)}.  A known field of
    another wire type is malformed (protocol.md §5, pqxdh.md §5.1 step 2); unknown fields of
    wire types 0, 1, 2, 5 are skipped.  Varint fields are read as uint32: a wider varint is
    truncated to its low 32 bits (protocol.md §5)."""
    r, out = 0, {}

    def rd_varint():
        nonlocal r
        v = 0
        for k in range(10):
            if r >= len(data):
                fail("malformed", "truncated varint")
            b = data[r]
            r += 1
            v |= (b & 0x7F) << (7 * k)
            if not b & 0x80:
                return v
        fail("malformed", "varint over 10 bytes")

    while r < len(data):
        tag = rd_varint()
        num, wt = tag >> 3, tag & 7
        if num == 0:
            fail("malformed", "field number 0")
        if wt in (3, 4, 6, 7):
            fail("malformed", f"wire type {wt}")
        if num in schema and schema[num] != wt:
            fail("malformed", f"field {num}: wire type {wt}, expected {schema[num]}")
        if wt == 0:
            val = rd_varint() & 0xFFFFFFFF
        elif wt == 2:
            n = rd_varint()
            if r + n > len(data):
                fail("malformed", "truncated field")
            val = bytes(data[r:r + n])
            r += n
        elif wt == 1:
            r += 8
            val = None
        else:  # wt == 5
            r += 4
            val = None
        if r > len(data):
            fail("malformed", "truncated field")
        if num in schema:
            out[num] = val
    return out


# protocol.md §5 (version 3) and pqxdh.md §5.1 (version 4: fields 7 varint, 8 bytes)
SIGNAL_MESSAGE_SCHEMA = {1: 2, 2: 0, 3: 0, 4: 2}
PREKEY_SCHEMA_V3 = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 0}
PREKEY_SCHEMA_V4 = {**PREKEY_SCHEMA_V3, 7: 0, 8: 2}


def key33(b, field):
    if b is None or len(b) != 33 or b[0] != 0x05 or not H.canonical_key(b[1:]):
        fail("malformed", f"invalid key field {field}")
    return b[1:]


# ---------------------------------------------------------------------------
# Suite message keys and message formats
# ---------------------------------------------------------------------------

def message_keys(suite, ck):
    seed = H.hmac256(ck, b"\x01")
    nxt = H.hmac256(ck, b"\x02")
    if suite == "hush-1":
        m = H.HKDF(seed, bytes(32), SUITES[suite]["mk"], 56)
        return {"key": m[:32], "nonce": m[32:56]}, nxt
    m = H.HKDF(seed, bytes(32), SUITES[suite]["mk"], 80)
    return {"cipher": m[:32], "mac": m[32:64], "iv": m[64:80]}, nxt


def aes_cbc_encrypt(key, iv, pt):
    p = padding.PKCS7(128).padder()
    data = p.update(pt) + p.finalize()
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return e.update(data) + e.finalize()


def aes_cbc_decrypt(key, iv, ct):
    if len(ct) == 0 or len(ct) % 16:
        fail("invalid_ciphertext", "CBC length")
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    data = d.update(ct) + d.finalize()
    u = padding.PKCS7(128).unpadder()
    try:
        return u.update(data) + u.finalize()
    except ValueError:
        fail("invalid_ciphertext", "padding")


def v3_signal_message(version, mk, ratchet_pub, n, pn, pt, ik_sender, ik_receiver):
    body = aes_cbc_encrypt(mk["cipher"], mk["iv"], pt)
    m = bytes([version << 4 | version]) + pb_encode(
        [(1, b"\x05" + ratchet_pub), (2, n), (3, pn), (4, body)])
    mac = H.hmac256(mk["mac"], b"\x05" + ik_sender + b"\x05" + ik_receiver + m)[:8]
    return m + mac


def parse_v3_signal_message(data, highest=4):
    """protocol.md §5: high nibble > highest -> invalid_version; < 3 -> legacy_version, except
    that version 2 parses (each state then refuses it)."""
    if len(data) < 10:
        fail("malformed", "SignalMessage too short")
    hi = data[0] >> 4
    if hi > highest:
        fail("invalid_version", f"SignalMessage version {hi}")
    if hi < 2:
        fail("legacy_version", f"SignalMessage version {hi}")
    f = pb_decode(data[1:-8], SIGNAL_MESSAGE_SCHEMA)
    for n in (1, 2, 4):
        if n not in f:
            fail("malformed", f"SignalMessage missing field {n}")
    return {"version": hi, "T": key33(f[1], 1), "counter": f[2], "pn": f.get(3, 0),
            "body": f[4], "signed": data[:-8], "mac": data[-8:]}


def parse_v3_prekey_message(data, pq_supported=True):
    """pqxdh.md §5.1 "Parsing", steps 1-4, in that order."""
    if len(data) < 1:
        fail("malformed", "too short")
    highest = 4 if pq_supported else 3
    hi = data[0] >> 4  # step 1: high nibble only
    if hi < 3:
        fail("legacy_version", f"version {hi}")
    if hi > highest:
        fail("invalid_version", f"version {hi}")
    # step 2: protobuf; fields 7 and 8 are known (typed) in version 4 only
    f = pb_decode(data[1:], PREKEY_SCHEMA_V4 if hi == 4 else PREKEY_SCHEMA_V3)
    # step 3: required fields 6, 2, 3, 4, then (version 4) 7, 8 and field 8's form
    for n in (6, 2, 3, 4):
        if n not in f:
            fail("malformed", f"missing field {n}")
    kyber_id = ct = None
    if hi == 4:
        if 7 not in f:
            fail("malformed", "missing field 7")
        if 8 not in f:
            fail("malformed", "missing field 8")
        if len(f[8]) != 1 + CT_LEN or f[8][0] != KYBER_TYPE:
            fail("malformed", "invalid key field 8")
        kyber_id, ct = f[7], f[8][1:]
    # (placement of the key checks of fields 2 and 3 is not stated: REVIEW.md P16)
    base_key, ik = key33(f[2], 2), key33(f[3], 3)
    # step 4: the inner SignalMessage, with its own version rules, must have the outer version
    inner = parse_v3_signal_message(f[4], highest)
    if inner["version"] != hi:
        fail("invalid_version", f"inner SignalMessage version {inner['version']} differs from the outer {hi}")
    return {"version": hi, "opk_id": f.get(1), "base_key": base_key,
            "ik": ik, "inner": inner, "reg_id": f.get(5), "spk_id": f[6],
            "kyber_id": kyber_id, "ct": ct, "pq": hi == 4}


def h1_prekey_header(opk_id, spk_id, reg, ek_pub, ik_pub, kyber_id, ct):
    flags = (0x01 if opk_id is not None else 0) | (0x02 if kyber_id is not None else 0)
    out = bytes([H.PREKEY_TYPE, flags])
    if opk_id is not None:
        out += H.varint(opk_id)
    out += H.varint(spk_id) + H.varint(reg) + ek_pub + ik_pub
    if kyber_id is not None:
        out += H.varint(kyber_id) + ct
    return out


def parse_h1_prekey_message(data, pq_supported=True):
    if len(data) == 0:
        fail("malformed", "too short (empty)")
    H.check_type(data[0], H.PREKEY_TYPE)
    r = H.Reader(data)
    r.byte()
    flags = r.byte("flags")
    allowed = 0x03 if pq_supported else 0x01
    if flags & ~allowed:
        fail("malformed", f"flag bits 0x{flags:02x}")
    opk_id = r.varint("one-time prekey id") if flags & 1 else None
    spk_id = r.varint("signed prekey id")
    reg_id = r.varint("registration id")
    base_key = r.key("base key")
    ik = r.key("identity key")
    kyber_id = ct = None
    if flags & 2:
        kyber_id = r.varint("Kyber prekey id")
        ct = r.take(CT_LEN, "Kyber ciphertext")
    prefix = data[:r.i]
    rest = r.rest()
    if not rest:
        fail("malformed", "missing field 4 (message)")
    inner = H.parse_message(rest)
    return {"opk_id": opk_id, "spk_id": spk_id, "reg_id": reg_id, "base_key": base_key,
            "ik": ik, "kyber_id": kyber_id, "ct": ct, "prefix": prefix, "inner": inner,
            "pq": kyber_id is not None, "ct_offset": r.i - CT_LEN - len(rest) if ct else None}


# ---------------------------------------------------------------------------
# Key schedule (pqxdh.md §4)
# ---------------------------------------------------------------------------

def dh(priv, pub, what):
    out = H.DH(priv, pub)
    if out is None:
        fail("malformed", f"all-zero DH ({what})")
    return out


def initial_keys(suite, dhs, ss):
    if ss is None:
        out = H.HKDF(F + b"".join(dhs), bytes(32), SUITES[suite]["x3dh"], 64)
    else:
        out = H.HKDF(F + b"".join(dhs) + ss, bytes(32), SUITES[suite]["pq"], 64)
    return out[:32], out[32:]


def root_step(suite, rk, dh_out):
    out = H.HKDF(dh_out, rk, SUITES[suite]["root"], 64)
    return out[:32], out[32:]


# ---------------------------------------------------------------------------
# Alice (pqxdh.md §4, §5)
# ---------------------------------------------------------------------------

class Alice:
    def __init__(self, js, suite):
        self.suite = suite
        self.ik_priv = bytes.fromhex(js["identity_private"])
        self.ik_pub = H.x25519_base(self.ik_priv)
        self.reg = js["registration_id"]
        self.draws = [bytes.fromhex(js["base_private"]), bytes.fromhex(js["ratchet_private"])]
        self.identities = {}
        self.sessions = {}

    def fingerprint(self):
        return (repr(sorted(self.identities.items())), repr(sorted(self.sessions.keys())),
                len(self.draws), self.encapsulations)

    encapsulations = 0  # Encaps calls made (pqxdh.md §4: a refused bundle encapsulates nothing)

    def encaps(self, ek, kem):
        """pqxdh.md §4 step 6 with a recorded encapsulator: kem["m"] is the one recorded `m`
        (None once used); none left -> crypto_failure (randomSourceExhausted(32, 0))."""
        m = kem.get("m")
        if m is None:
            fail("crypto_failure", "randomSourceExhausted(requested: 32, remaining: 0)")
        kem["m"] = None
        self.encapsulations += 1
        return kem_encaps_internal(ek, m)

    def process_bundle(self, addr, b, kem, policy):
        """b: bundle dict with ik, reg, spk_id, spk, spk_sig, opk_id, opk, kyber (id, ek, sig) or None.
        kem: {"m": recorded m} (consumed by the encapsulation)."""
        # §4 "Before the checks, decoding": EncodeKEM(ek) = 0x08 || ek, 1,569 bytes; ek passes §2.
        if b["kyber"] is not None:
            kid, ek, ksig = b["kyber"]
            if not ek_decodes(ek):
                fail("bad_signature", "Kyber ek does not decode (KEMError.invalidPublicKey)")
        # §4 step 1: no Kyber prekey -> policy, else X3DH (hush-1.md §4 / protocol.md §2), whose
        # order (trust, signed prekey, prime-order, draws) is steps 2, 3, 5 below without 4 and 6.
        if b["kyber"] is None and policy == "require-pqxdh":
            fail("malformed", "missingKyberPreKey")
        # §4 step 2: trust of IK_B (identities hold the 32-byte u)
        known = self.identities.get(addr)
        if known is not None and known != b["ik"]:
            fail("untrusted_identity")
        # §4 step 3: signed prekey present, its signature
        if b["spk"] is None:
            fail("malformed", "missingSignedPreKey")
        if not H.libsignal_verify(b["ik"], b"\x05" + b["spk"], b["spk_sig"]):
            fail("bad_signature", "signed prekey signature")
        # §4 step 4: the Kyber prekey's signature over 0x08 || ek
        if b["kyber"] is not None and not H.libsignal_verify(
                b["ik"], bytes([KYBER_TYPE]) + b["kyber"][1], b["kyber"][2]):
            fail("bad_signature", "Kyber prekey signature (badKyberPreKeySignature)")
        # §4 step 5: prime-order IK_B, SPK_B, OPK_B
        for k in (b["ik"], b["spk"], b["opk"]):
            if k is not None and not H.is_prime_order(k):
                fail("malformed", "bundle key not prime-order (invalidRatchetKey)")
        # §4 step 6: Encaps, before the draws
        ct = ss = None
        if b["kyber"] is not None:
            ct, ss = self.encaps(b["kyber"][1], kem)
        ek_priv = H.clamp(self.draws.pop(0))
        ra_priv = H.clamp(self.draws.pop(0))
        dhs = [dh(self.ik_priv, b["spk"], "DH1"), dh(ek_priv, b["ik"], "DH2"),
               dh(ek_priv, b["spk"], "DH3")]
        if b["opk"] is not None:
            dhs.append(dh(ek_priv, b["opk"], "DH4"))
        rk0, ck0 = initial_keys(self.suite, dhs, ss)
        rk1, cks = root_step(self.suite, rk0, dh(ra_priv, b["spk"], "root step"))
        st = {"version": 4 if ss is not None else 3, "remote_ik": b["ik"], "rk": rk1,
              "ra_priv": ra_priv, "ra_pub": H.x25519_base(ra_priv), "cks": cks, "ns": 0,
              "pn": 0, "ck0": ck0,
              "pending": (b["opk_id"] if b["opk"] is not None else None, b["spk_id"],
                          H.x25519_base(ek_priv),
                          b["kyber"][0] if b["kyber"] else None, ct),
              "trace": {"RK0": rk0, "CK0": ck0, "RK1": rk1, "CKs": cks, "SS": ss, "CT": ct}}
        self.sessions[addr] = st
        self.identities[addr] = b["ik"]
        return st

    def encrypt(self, addr, pt):
        st = self.sessions[addr]
        mk, nxt = message_keys(self.suite, st["cks"])
        opk_id, spk_id, ek_pub, kid, ct = st["pending"]
        if self.suite == "signal-v3":
            v = st["version"]
            inner = v3_signal_message(v, mk, st["ra_pub"], st["ns"], st["pn"], pt,
                                      self.ik_pub, st["remote_ik"])
            out = bytes([v << 4 | v]) + pb_encode(
                [(1, opk_id), (2, b"\x05" + ek_pub), (3, b"\x05" + self.ik_pub), (4, inner),
                 (5, self.reg), (6, spk_id), (7, kid),
                 (8, bytes([KYBER_TYPE]) + ct if ct is not None else None)])
        else:
            prefix = h1_prekey_header(opk_id, spk_id, self.reg, ek_pub, self.ik_pub, kid, ct)
            header = bytes([H.MSG_TYPE]) + st["ra_pub"] + H.varint(st["ns"]) + H.varint(st["pn"])
            ad = H.AD_LABEL + self.ik_pub + st["remote_ik"] + prefix + header
            out = prefix + header + H.aead_seal(mk["key"], mk["nonce"], pt, ad)
        st["cks"], st["ns"] = nxt, st["ns"] + 1
        return out


# ---------------------------------------------------------------------------
# Bob (pqxdh.md §5.3 over hush-1.md §7.3 / protocol.md §4)
# ---------------------------------------------------------------------------

class Bob:
    def __init__(self, js, suite):
        self.suite = suite
        self.ik_priv = bytes.fromhex(js["identity_private"])
        self.ik_pub = H.x25519_base(self.ik_priv)
        self.reg = js["registration_id"]
        s = js["signed_prekey"]
        self.spks = {s["id"]: bytes.fromhex(s["private"])}
        o = js["one_time_prekey"]
        self.opks = {o["id"]: bytes.fromhex(o["private"])}
        self.kyber = {}
        for name in ("kyber_prekey", "last_resort_kyber_prekey"):
            k = js[name]
            self.kyber[k["id"]] = (bytes.fromhex(k["seed"]), k["kind"])
        self.identities = {}
        self.states = []  # current first, then archived (most recent first)

    def fingerprint(self):
        return repr((sorted(self.spks.items()), sorted(self.opks.items()),
                     sorted(self.kyber.items()), sorted(self.identities.items()),
                     [sorted((k, repr(v)) for k, v in s.items()) for s in self.states]))

    def decrypt(self, addr, data, policy):
        """Returns (plaintext, info) or raises ProtocolError; on failure nothing changes."""
        before = self.fingerprint()
        try:
            return self._decrypt(addr, data, policy)
        except ProtocolError:
            if self.fingerprint() != before:
                raise AssertionError("a failed decryption changed Bob's stores")
            raise

    def _decrypt(self, addr, data, policy):
        suite = self.suite
        pm = parse_v3_prekey_message(data) if suite == "signal-v3" else parse_h1_prekey_message(data)
        known = self.identities.get(addr)
        if known is not None and known != pm["ik"]:
            fail("untrusted_identity")
        match = next((s for s in self.states if s["base_key"] == pm["base_key"]), None)
        states = copy.deepcopy(self.states)
        used_opk = used_kyber = None
        built = False
        if match is not None:
            if match["remote_ik"] != pm["ik"]:
                fail("bad_mac", "existing state has another remote identity")
        else:
            # §5.3 step 1 (placed here: the message "would build a new state")
            if not pm["pq"] and policy == "require-pqxdh":
                fail("invalid_version", "policy: X3DH prekey message refused (postQuantumRequired)")
            spk = self.spks.get(pm["spk_id"])
            if spk is None:
                fail("unknown_prekey", f"signed prekey {pm['spk_id']}")
            opk = None
            if pm["opk_id"] is not None:
                opk = self.opks.get(pm["opk_id"])
                if opk is None:
                    fail("unknown_prekey", f"one-time prekey {pm['opk_id']}")
                used_opk = pm["opk_id"]
            ss = None
            if pm["pq"]:  # §5.3 step 2, 3
                kp = self.kyber.get(pm["kyber_id"])
                if kp is None:
                    fail("unknown_prekey", f"kyber prekey {pm['kyber_id']}")
                ss = kem_decaps(kp[0], pm["ct"])
                if kp[1] == "one-time":
                    used_kyber = pm["kyber_id"]
            ik_a, ek_a = pm["ik"], pm["base_key"]
            dhs = [dh(spk, ik_a, "DH1"), dh(self.ik_priv, ek_a, "DH2"), dh(spk, ek_a, "DH3")]
            if opk is not None:
                dhs.append(dh(opk, ek_a, "DH4"))
            rk0, ck0 = initial_keys(suite, dhs, ss)
            st = {"version": 4 if pm["pq"] else 3, "remote_ik": ik_a, "base_key": ek_a,
                  "remote_reg": pm["reg_id"], "rk": rk0, "send_priv": spk, "cks": ck0,
                  "ns": 0, "pn": 0, "recv": [], "establishment": "pqxdh" if pm["pq"] else "x3dh"}
            states.insert(0, st)
            del states[41:]
            built = True
        rprime = H.clamp(os.urandom(32))  # R' (not listed; no output depends on it)
        pt, idx, errs = None, None, []
        for i, st in enumerate(states):
            work = copy.deepcopy(st)
            try:
                pt = self._decrypt_on_state(work, pm, rprime)
            except ProtocolError as e:
                if e.name == "duplicate_message":
                    raise
                errs.append(e)
                continue
            states[i] = work
            idx = i
            break
        if pt is None:
            # protocol.md §3 "Which state decrypts": a version error if any attempt hit one,
            # else too_far_in_future, else the current state's error.
            for names in (("invalid_version", "legacy_version"), ("too_far_in_future",)):
                for e in errs:
                    if e.name in names:
                        raise e
            raise errs[0]
        if built:
            for k, what in ((pm["base_key"], "base key"), (pm["ik"], "identity key")):
                if not H.is_prime_order(k):
                    fail("malformed", f"{what} not prime-order")
        if idx:
            states.insert(0, states.pop(idx))
        self.states = states
        self.identities[addr] = pm["ik"]
        if used_opk is not None:
            del self.opks[used_opk]
        if used_kyber is not None:
            del self.kyber[used_kyber]
        return pt, {"pm": pm, "built": built, "state": states[0]}

    def _decrypt_on_state(self, st, pm, rprime):
        suite, msg = self.suite, pm["inner"]
        if suite == "signal-v3" and msg["version"] > st["version"]:  # pqxdh.md §5.1
            fail("invalid_version", f"version-{msg['version']} message, version-{st['version']} state")
        if suite == "signal-v3" and msg["version"] < st["version"]:
            fail("legacy_version", f"version-{msg['version']} message, version-{st['version']} state")
        T, c = msg["T"], msg["counter"]
        chain = next((ch for ch in st["recv"] if ch["T"] == T), None)
        ratcheted = False
        if chain is None:
            st["rk"], ckr = root_step(suite, st["rk"], dh(st["send_priv"], T, "ratchet"))
            chain = {"T": T, "ck": ckr, "n": 0, "skipped": {}}
            st["recv"].append(chain)
            del st["recv"][:-5]
            ratcheted = True
        if c < chain["n"]:
            mk = chain["skipped"].pop(c, None)
            if mk is None:
                fail("duplicate_message")
        else:
            if c - chain["n"] > 2000:
                fail("too_far_in_future")
            ck = chain["ck"]
            for i in range(chain["n"], c):
                k, ck = message_keys(suite, ck)
                chain["skipped"][i] = k
            mk, ck = message_keys(suite, ck)
            chain["ck"], chain["n"] = ck, c + 1
        if suite == "signal-v3":
            mac = H.hmac256(mk["mac"], b"\x05" + st["remote_ik"] + b"\x05" + self.ik_pub
                            + msg["signed"])[:8]
            if not _hmac.compare_digest(mac, msg["mac"]):
                fail("bad_mac", "MAC")
            pt = aes_cbc_decrypt(mk["cipher"], mk["iv"], msg["body"])
        else:
            ad = H.AD_LABEL + st["remote_ik"] + self.ik_pub + pm["prefix"] + msg["header"]
            pt = H.aead_open(mk["key"], mk["nonce"], msg["body"], ad)
            if pt is None:
                fail("bad_mac", "AEAD")
        if ratcheted:
            if not H.is_prime_order(T):
                fail("malformed", "ratchet key not prime-order")
            st["rk"], cks = root_step(suite, st["rk"], dh(rprime, T, "ratchet"))
            st["pn"] = max(st["ns"] - 1, 0)
            st["send_priv"], st["cks"], st["ns"] = rprime, cks, 0
        return pt


# ---------------------------------------------------------------------------
# §7's descriptions of the cases, and its label derivation
# ---------------------------------------------------------------------------

def fixed(label, n=32):
    """pqxdh.md §7: the first n bytes of SHA-256("hush-pq-vectors/" || label || "/0") || ..."/1" ..."""
    out, i = b"", 0
    while len(out) < n:
        out += hashlib.sha256(f"hush-pq-vectors/{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


def pb_tokens(data):
    """The fields of a (well-formed) protobuf in their order: [(number, wire type, value)]."""
    r, out = 0, []

    def rd():
        nonlocal r
        v = k = 0
        while True:
            b = data[r]
            r += 1
            v |= (b & 0x7F) << (7 * k)
            k += 1
            if not b & 0x80:
                return v
    while r < len(data):
        tag = rd()
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            out.append((num, 0, rd()))
        elif wt == 2:
            n = rd()
            out.append((num, 2, data[r:r + n]))
            r += n
        else:
            raise AssertionError("the main message has only wire types 0 and 2")
    return out


def pb_untokens(tokens):
    out = b""
    for num, wt, val in tokens:
        out += pb_varint(num << 3 | wt)
        out += pb_varint(val) if wt == 0 else pb_varint(len(val)) + val
    return out


def rejection_description(suite, name, main, main_pm, rej, kp):
    """pqxdh.md §7 "The rejection cases": (the message as the description rebuilds it from the
    main message, or None where it is not a rewrite of it; the reason this checker's §5 code
    gives, or None for a case §7 does not describe)."""
    reasons = {
        "kem_ciphertext_bit_flipped": "MAC" if suite == "signal-v3" else "AEAD",
        "unknown_kyber_prekey": "kyber prekey 999",
        "reused_one_time_kyber_prekey": f"kyber prekey {kp['id']}",
        "x3dh_refused_by_policy": "policy",
        "x3dh_unknown_signed_prekey_refused_by_policy": "policy",
        "low_order_base_key_unknown_kyber_prekey": "kyber prekey 999",
    }
    rebuilt = None
    if name == "low_order_base_key_unknown_kyber_prekey" and "unknown_kyber_prekey" in rej:
        u = rej["unknown_kyber_prekey"]
        bk = (parse_v3_prekey_message if suite == "signal-v3" else parse_h1_prekey_message)(u)["base_key"]
        i = u.find(bk)
        rebuilt = u[:i] + bytes(32) + u[i + 32:]
    if suite == "signal-v3":
        toks = pb_tokens(main[1:])

        def rw(fn, first=0x44):
            return bytes([first]) + pb_untokens([x for t in toks for x in fn(t)])
        kid = main_pm["kyber_id"]
        cases = {
            "v4_missing_kyber_prekey_id": (lambda t: [] if t[0] == 7 else [t], "missing field 7"),
            "v4_missing_kyber_ciphertext": (lambda t: [] if t[0] == 8 else [t], "missing field 8"),
            "v4_kyber_ciphertext_type_byte": (
                lambda t: [(8, 2, b"\x09" + t[2][1:])] if t[0] == 8 else [t], "invalid key field 8"),
            "v4_kyber_ciphertext_one_byte_short": (
                lambda t: [(8, 2, t[2][:-1])] if t[0] == 8 else [t], "invalid key field 8"),
            "v4_kyber_prekey_id_length_delimited": (
                lambda t: [(7, 2, pb_varint(kid))] if t[0] == 7 else [t], "field 7: wire type 2"),
            "v4_kyber_ciphertext_as_varint": (
                lambda t: [(8, 0, 1)] if t[0] == 8 else [t], "field 8: wire type 0"),
        }
        if name in cases:
            fn, why = cases[name]
            return rw(fn), why
        if name == "v3_outer_version_with_kyber_fields":
            return b"\x33" + main[1:], "inner SignalMessage version 4 differs from the outer 3"
        if name == "v5_outer_version":
            return b"\x54" + main[1:], "version 5"
    else:
        ct_at = main.find(main_pm["ct"])
        if name == "flag_bit_2_set":
            return main[:1] + bytes([main[1] | 0x04]) + main[2:], "flag bits"
        if name == "kem_ciphertext_truncated":
            return main[:ct_at + 1000], "truncated Kyber ciphertext"
        if name == "no_inner_message":
            return main[:ct_at + CT_LEN], "missing field 4"
    return rebuilt, reasons.get(name)


def bundle_description(name):
    """pqxdh.md §7 "The bundle cases": the case's shape, the reason this checker's §4 code
    gives, and (multi-fault cases) what removing the first fault must give."""
    def trust_cleared(a, b):
        a.identities.clear()

    def good_kyber(genuine):
        def change(a, b):
            b["kyber"] = genuine
        return change
    d = {
        "bad_kyber_prekey_signature": dict(kyber="bad-signature", reason="Kyber prekey signature"),
        "stripped_bundle_refused_by_policy": dict(kyber="none", policy="require-pqxdh",
                                                  reason="missingKyberPreKey"),
        "kyber_public_key_out_of_range": dict(kyber="out-of-range", reason="does not decode"),
        "untrusted_identity_before_kyber_signature": dict(
            kyber="bad-signature", mallory=True, reason="",
            next=[("without the trusted other identity", trust_cleared, "bad_signature",
                   "Kyber prekey signature")]),
        "kyber_signature_before_low_order_one_time_prekey": dict(
            kyber="bad-signature", low_order_opk=True, reason="Kyber prekey signature"),
        "low_order_one_time_prekey": dict(kyber="genuine", low_order_opk=True,
                                          reason="not prime-order"),
    }.get(name)
    return d


def derivation_checks(v, t, bundle, kp, lrk, spk_pub, opk_pub):
    suite, bj, al = v["suite"], v["bob"], v["alice"]
    tag = f"§7 derivation ({suite})"
    for what, got, label, n in (
            ("alice identity", al["identity_private"], "alice/identity", 32),
            ("bob identity", bj["identity_private"], "bob/identity", 32),
            ("bob signed prekey", bj["signed_prekey"]["private"], "bob/signed-prekey", 32),
            ("bob one-time prekey", bj["one_time_prekey"]["private"], "bob/one-time-prekey", 32),
            ("one-time Kyber seed", kp["seed"], "bob/kyber-one-time/seed", 64),
            ("last-resort Kyber seed", lrk["seed"], "bob/kyber-last-resort/seed", 64),
            ("main base key", al["base_private"], f"main/{suite}/base", 32),
            ("main ratchet key", al["ratchet_private"], f"main/{suite}/ratchet", 32),
            ("main kem.m", v["kem"]["m"], f"main/{suite}/kem-m", 32)):
        want = fixed(label, n)
        if n == 32 and not label.endswith("kem-m"):
            want = H.clamp(want)
        t.check(f"{tag}: {what} = fixed({label!r})", hx(got) == want)
    ik = hx(bj["identity_private"])
    sigs = [("signed prekey", b"\x05" + spk_pub, bj["signed_prekey"]["signature"], "bob/spk-sig"),
            ("one-time Kyber prekey", bytes([KYBER_TYPE]) + hx(kp["public"]), kp["signature"],
             "bob/kyber-one-time/sig"),
            ("last-resort Kyber prekey", bytes([KYBER_TYPE]) + hx(lrk["public"]), lrk["signature"],
             "bob/kyber-last-resort/sig")]
    for br in v["bundle_rejections"]:
        if br["name"] == "kyber_public_key_out_of_range":
            k = br["kyber_prekey"]
            sigs.append(("out-of-range ek", bytes([KYBER_TYPE]) + hx(k["public"]), k["signature"],
                         "bob/kyber-out-of-range/sig"))
    for what, msg, sig, label in sigs:
        t.check(f"{tag}: {what} signature = Sign(IK_B, ..., fixed({label!r}, 64))",
                H.libsignal_sign(ik, msg, fixed(label, 64)) == hx(sig))
    # Every other message of the file, rebuilt by Alice from its labelled draws.
    rej = {r["name"]: hx(r["message"]) for r in v["rejections"]}
    acc = [hx(a["message"]) for a in v["accepted"]]
    genuine = (kp["id"], hx(kp["public"]), hx(kp["signature"]))
    last_resort = (lrk["id"], hx(lrk["public"]), hx(lrk["signature"]))
    plan = [("unknown", rej.get("unknown_kyber_prekey"), (999,) + genuine[1:], None),
            ("reused", rej.get("reused_one_time_kyber_prekey"), genuine, None),
            ("stripped", rej.get("x3dh_refused_by_policy"), None, None),
            ("stripped-unknown-spk", rej.get("x3dh_unknown_signed_prekey_refused_by_policy"), None, 8),
            ("last-resort-1", acc[0] if acc else None, last_resort, None),
            ("last-resort-2", acc[1] if len(acc) > 1 else None, last_resort, None)]
    for case, msg, kyber, spk_id in plan:
        if msg is None:
            t.check(f"{tag}: message {case} present", False)
            continue
        b = bundle(kyber=None, opk=False)
        b["kyber"] = kyber
        if spk_id is not None:
            b["spk_id"] = spk_id
        a = Alice(al, suite)
        a.draws = [fixed(f"{case}/{suite}/base"), fixed(f"{case}/{suite}/ratchet")]
        kem = {"m": fixed(f"{case}/{suite}/kem-m")}
        try:
            a.process_bundle(("bob", 1), b, kem, "accept-either")
            out = a.encrypt(("bob", 1), hx(v["plaintext"]))
        except ProtocolError as e:
            t.check(f"{tag}: message {case} rebuilt", False, str(e))
            continue
        t.check(f"{tag}: message {case} rebuilt byte for byte from its labels", out == msg)


# ---------------------------------------------------------------------------
# Replay (pqxdh.md §7)
# ---------------------------------------------------------------------------

class Tally:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            if VERBOSE:
                print(f"  ok   {name}")
        else:
            self.failed += 1
            print(f"  FAIL {name} {detail}")
        return ok

    def expect_error(self, name, fn, error, reason=None):
        try:
            fn()
        except ProtocolError as e:
            ok = e.name == error and (reason is None or reason in e.detail)
            return self.check(name, ok, f"got {e.name} ({e.detail}), want {error}"
                              + (f" ({reason})" if reason else "")), e
        except Exception as e:  # noqa: BLE001  (a crash of the checker is a failure, not an abort)
            return self.check(name, False, f"{type(e).__name__}: {e}"), None
        return self.check(name, False, f"accepted, want {error}"), None

    def expect_ok(self, name, fn, want):
        try:
            got = fn()
        except Exception as e:  # noqa: BLE001
            self.check(name, False, f"error {type(e).__name__}: {e}")
            return None
        self.check(name, got[0] == want, f"got {got[0].hex()}")
        return got


def hx(s):
    return bytes.fromhex(s)


def replay(path, t):
    v = json.load(open(path))
    suite = v["suite"]
    print(f"{os.path.basename(path)} ({suite})")
    t.check("format", v["format"] == "hush-pqxdh-vectors/1" and suite in SUITES)
    t.check("message_kind", v["message_kind"] == (3 if suite == "signal-v3" else 18))
    A_ADDR, B_ADDR = ("alice", 1), ("bob", 1)
    bj = v["bob"]
    bob0 = Bob(bj, suite)
    pt = hx(v["plaintext"])
    main = hx(v["message"])

    # Bob's public bundle, derived from his private keys.
    spk_pub = H.x25519_base(hx(bj["signed_prekey"]["private"]))
    opk_pub = H.x25519_base(hx(bj["one_time_prekey"]["private"]))
    for k in ("signed_prekey", "one_time_prekey"):
        t.check(f"{k} private key clamped", H.clamp(hx(bj[k]["private"])) == hx(bj[k]["private"]))
    for k in ("identity_private",):
        t.check(f"bob {k} clamped", H.clamp(hx(bj[k])) == hx(bj[k]))
    for k in ("identity_private",):
        t.check(f"alice {k} clamped", H.clamp(hx(v["alice"][k])) == hx(v["alice"][k]))
    t.check("signed prekey signature verifies (libsignal-compatible, 0x05 || SPK)",
            H.libsignal_verify(bob0.ik_pub, b"\x05" + spk_pub, hx(bj["signed_prekey"]["signature"])))
    for name, kind in (("kyber_prekey", "one-time"), ("last_resort_kyber_prekey", "last-resort")):
        k = bj[name]
        ek, _ = kem_keygen(hx(k["seed"]))
        t.check(f"{name}: KeyGen_internal(d, z) gives public", ek == hx(k["public"]))
        t.check(f"{name}: kind {kind}", k["kind"] == kind)
        t.check(f"{name}: ek passes the modulus check", ek_decodes(ek))
        t.check(f"{name}: signature verifies over 0x08 || ek",
                H.libsignal_verify(bob0.ik_pub, bytes([KYBER_TYPE]) + ek, hx(k["signature"])))
    kp = bj["kyber_prekey"]
    kem = {"m": hx(v["kem"]["m"])}
    c, K = kem_encaps_internal(hx(kp["public"]), kem["m"])
    t.check("kem: Encaps_internal(ek, m) ciphertext", c == hx(v["kem"]["ciphertext"]))
    t.check("kem: Encaps_internal(ek, m) shared secret", K == hx(v["kem"]["shared_secret"]))
    t.check("kem: Decaps(seed, c) gives the shared secret",
            kem_decaps(hx(kp["seed"]), c) == hx(v["kem"]["shared_secret"]))

    def bundle(kyber="one-time", opk=True):
        b = {"ik": bob0.ik_pub, "reg": bj["registration_id"], "spk_id": bj["signed_prekey"]["id"],
             "spk": spk_pub, "spk_sig": hx(bj["signed_prekey"]["signature"]),
             "opk_id": bj["one_time_prekey"]["id"] if opk else None,
             "opk": opk_pub if opk else None, "kyber": None}
        if kyber == "one-time":
            b["kyber"] = (kp["id"], hx(kp["public"]), hx(kp["signature"]))
        elif kyber is not None:
            b["kyber"] = kyber
        return b

    # 1. Alice
    alice = Alice(v["alice"], suite)
    try:
        st = alice.process_bundle(B_ADDR, bundle(), dict(kem), "require-pqxdh")
        out = alice.encrypt(B_ADDR, pt)
        t.check("alice: first message byte for byte", out == main,
                f"\n    got  {out[:80].hex()}...\n    want {main[:80].hex()}...")
        t.check("alice: session version 4", st["version"] == 4)
    except ProtocolError as e:
        t.check("alice: first message", False, str(e))

    # Alice without a Kyber prekey (self-checks of §4 step 1; no vector lists these outputs)
    a2 = Alice(v["alice"], suite)
    fp = a2.fingerprint()
    t.expect_error("alice: require-pqxdh refuses a bundle without a Kyber prekey",
                   lambda: a2.process_bundle(B_ADDR, bundle(kyber=None), dict(kem), "require-pqxdh"),
                   "malformed", "missingKyberPreKey")
    t.check("alice: ... and nothing changed", a2.fingerprint() == fp)

    # 2. Bob decrypts the main message under require-pqxdh
    bob = Bob(bj, suite)
    got = t.expect_ok("bob: main message decrypts to plaintext",
                      lambda: bob.decrypt(A_ADDR, main, "require-pqxdh"), pt)
    if got:
        pm = got[1]["pm"]
        t.check("bob: one-time X25519 prekey consumed", bj["one_time_prekey"]["id"] not in bob.opks)
        t.check("bob: one-time Kyber prekey consumed", kp["id"] not in bob.kyber)
        t.check("bob: last-resort Kyber prekey kept", bj["last_resort_kyber_prekey"]["id"] in bob.kyber)
        t.check("bob: session version 4, established by pqxdh",
                got[1]["state"]["version"] == 4 and got[1]["state"]["establishment"] == "pqxdh")
        t.check("bob: message names Kyber prekey id and carries kem.ciphertext",
                pm["kyber_id"] == kp["id"] and pm["ct"] == hx(v["kem"]["ciphertext"]))
        t.check("bob: message names OPK, SPK, Alice's registration id",
                pm["opk_id"] == bj["one_time_prekey"]["id"] and pm["spk_id"] == bj["signed_prekey"]["id"]
                and pm["reg_id"] == v["alice"]["registration_id"])
        t.check("bob: Alice's identity saved", bob.identities.get(A_ADDR) == alice.ik_pub)
    bob_after_main = bob

    # A receiver without PQXDH support (§5.1 last sentence, §5.2 last sentence).
    try:
        (parse_v3_prekey_message if suite == "signal-v3" else parse_h1_prekey_message)(main, False)
        t.check("a receiver without PQXDH refuses the message", False, "parsed")
    except ProtocolError as e:
        want = "invalid_version" if suite == "signal-v3" else "malformed"
        t.check(f"a receiver without PQXDH refuses the message ({want})", e.name == want, e.name)

    # 3. Rejections. Each case is one §7 describes ("The rejection cases"): the message is checked
    # against that description (rebuilt from the main message where §7 says it is a rewrite of
    # it), then Bob, following §5, must fail with the listed error for the stated reason, and
    # change nothing.
    parse = parse_v3_prekey_message if suite == "signal-v3" else parse_h1_prekey_message
    rej = {r["name"]: hx(r["message"]) for r in v["rejections"]}
    lr = bj["last_resort_kyber_prekey"]["id"]
    main_pm = parse(main)
    for rj in v["rejections"]:
        name, data, err = rj["name"], hx(rj["message"]), rj["error"]
        policy = rj.get("policy", "accept-either")
        if rj["after_main"]:
            b = copy.deepcopy(bob_after_main)
        else:
            b = Bob(bj, suite)
        fp = b.fingerprint()
        rebuilt, reason = rejection_description(suite, name, main, main_pm, rej, kp)
        if rebuilt is not None:
            what = ("unknown_kyber_prekey's message with the base key u = 0"
                    if name == "low_order_base_key_unknown_kyber_prekey" else "the main message")
            t.check(f"rejection {name}: is {what} rewritten as §7 describes",
                    rebuilt == data, f"\n    got  {data[:60].hex()}...\n    want {rebuilt[:60].hex()}...")
        if reason is None:
            t.check(f"rejection {name}: a case §7 describes", False, "not described in §7")
            reason = ""
        t.check(f"rejection {name}: policy as §7 describes the case",
                policy == ("require-pqxdh" if name.startswith("x3dh_") else "accept-either")
                and rj["after_main"] == (name == "reused_one_time_kyber_prekey"))
        t.expect_error(f"rejection {name}: {err}", lambda: b.decrypt(A_ADDR, data, policy),
                       err, reason)
        t.check(f"rejection {name}: nothing changed", b.fingerprint() == fp)
        # Why it fails: the same message succeeds (or fails at the next step) once the stated
        # reason is removed.
        if name == "kem_ciphertext_bit_flipped":
            diff = [i for i in range(len(main)) if i < len(data) and main[i] != data[i]]
            one_bit = len(data) == len(main) and len(diff) == 1 and \
                bin(main[diff[0]] ^ data[diff[0]]).count("1") == 1
            t.check(f"rejection {name}: one bit of the main message flipped", one_bit)
            if one_bit:
                ct = hx(v["kem"]["ciphertext"])
                start = main.find(ct)
                t.check(f"rejection {name}: the flipped bit is inside CT",
                        start >= 0 and start <= diff[0] < start + CT_LEN)
                ct2 = data[start:start + CT_LEN]
                t.check(f"rejection {name}: Decaps gives an unrelated secret (implicit rejection)",
                        kem_decaps(hx(kp["seed"]), ct2) != hx(v["kem"]["shared_secret"]))
        elif name in ("unknown_kyber_prekey", "reused_one_time_kyber_prekey"):
            pm = parse(data)
            if name == "unknown_kyber_prekey":
                t.check(f"rejection {name}: names id 999, which Bob never had",
                        pm["kyber_id"] == 999 and 999 not in (kp["id"], lr))
                # The renamed key is the one-time Kyber prekey: Bob holding it under that id decrypts.
                b2 = Bob(bj, suite)
                b2.kyber[pm["kyber_id"]] = b2.kyber.pop(kp["id"])
            else:
                t.check(f"rejection {name}: names the one-time Kyber prekey", pm["kyber_id"] == kp["id"])
                b2 = Bob(bj, suite)  # a Bob that never decrypted the main message
            t.check(f"rejection {name}: no one-time X25519 prekey (§7)", pm["opk_id"] is None)
            t.expect_ok(f"rejection {name}: decrypts once Bob holds that Kyber prekey",
                        lambda: b2.decrypt(A_ADDR, data, policy), pt)
        elif name == "x3dh_refused_by_policy":
            b2 = Bob(bj, suite)
            got2 = t.expect_ok(f"rejection {name}: accepted under accept-either",
                               lambda: b2.decrypt(A_ADDR, data, "accept-either"), pt)
            if got2:
                t.check(f"rejection {name}: ... as an X3DH (version 3) session",
                        got2[1]["state"]["establishment"] == "x3dh" and got2[1]["state"]["version"] == 3)
                t.check(f"rejection {name}: the one-time Kyber prekey is untouched",
                        kp["id"] in b2.kyber)
        elif name == "x3dh_unknown_signed_prekey_refused_by_policy":
            pm = parse(data)
            t.check(f"rejection {name}: an X3DH message naming signed prekey 8 (Bob has "
                    f"{bj['signed_prekey']['id']})", not pm["pq"] and pm["spk_id"] == 8
                    and 8 != bj["signed_prekey"]["id"])
            b2 = Bob(bj, suite)
            t.expect_error(f"rejection {name}: under accept-either: unknown_prekey (signed 8)",
                           lambda: b2.decrypt(A_ADDR, data, "accept-either"), "unknown_prekey",
                           "signed prekey 8")
            b3 = Bob(bj, suite)
            b3.spks[8] = b3.spks.pop(bj["signed_prekey"]["id"])
            t.expect_ok(f"rejection {name}: decrypts (accept-either) once Bob holds his signed "
                        "prekey as id 8 (the key unchanged)",
                        lambda: b3.decrypt(A_ADDR, data, "accept-either"), pt)
        elif name == "low_order_base_key_unknown_kyber_prekey":
            b2 = Bob(bj, suite)
            b2.kyber[999] = b2.kyber.pop(kp["id"])
            t.expect_error(f"rejection {name}: with the Kyber prekey held: malformed (all-zero DH, "
                           "§5.3 step 9)", lambda: b2.decrypt(A_ADDR, data, policy), "malformed",
                           "all-zero DH")
        elif reason is not None and rebuilt is None:
            t.check(f"rejection {name}: checked against its description", False, "no check")

    # 4. Accepted messages, in order, to one fresh Bob (require-pqxdh)
    bob = Bob(bj, suite)
    for n, ac in enumerate(v["accepted"]):
        got = t.expect_ok(f"accepted {ac['name']}: decrypts", lambda: bob.decrypt(
            A_ADDR, hx(ac["message"]), "require-pqxdh"), pt)
        if got:
            t.check(f"accepted {ac['name']}: used the last-resort Kyber prekey, which stays",
                    got[1]["pm"]["kyber_id"] == lr and lr in bob.kyber)
            t.check(f"accepted {ac['name']}: built a new state ({n + 1} held)",
                    got[1]["built"] and len(bob.states) == n + 1)

    # 5. Bundle rejections (§7 replay step 5; the cases of "The bundle cases")
    lrk = bj["last_resort_kyber_prekey"]
    genuine = (kp["id"], hx(kp["public"]), hx(kp["signature"]))
    bad_sig = None
    for br in v["bundle_rejections"]:
        name = br["name"]
        if name == "bad_kyber_prekey_signature" and "kyber_prekey" in br:
            bad_sig = (br["kyber_prekey"]["id"], hx(br["kyber_prekey"]["public"]),
                       hx(br["kyber_prekey"]["signature"]))
    mallory = b"\x05" + H.x25519_base(H.clamp(fixed("mallory/identity")))

    def case_bundle(br):
        b = bundle()
        k = br.get("kyber_prekey")
        b["kyber"] = None if k is None else (k["id"], hx(k["public"]), hx(k["signature"]))
        if "one_time_prekey_public" in br:
            b["opk"] = hx(br["one_time_prekey_public"])
        a = Alice(v["alice"], suite)
        if "alice_trusted_identity" in br:
            tid = hx(br["alice_trusted_identity"])
            if len(tid) != 33 or tid[0] != 0x05:
                raise AssertionError("alice_trusted_identity is not a 33-byte 0x05 key")
            a.identities[B_ADDR] = tid[1:]
        return a, b, br.get("policy", "accept-either")

    for br in v["bundle_rejections"]:
        name, err = br["name"], br["error"]
        a, b, policy = case_bundle(br)
        fp = a.fingerprint()
        d = bundle_description(name)
        if d is None:
            t.check(f"bundle {name}: a case §7 describes", False, "not described in §7")
            d = {}
        k, want_policy = b["kyber"], d.get("policy", "accept-either")
        shape = {"genuine": k == genuine, "bad-signature": k is not None and k == bad_sig,
                 "none": k is None, "out-of-range": k is not None and k[1][0] == 0xFF
                 and k[1][1] & 0x0F == 0x0F}.get(d.get("kyber"), False)
        t.check(f"bundle {name}: Kyber prekey, policy, trusted identity, one-time prekey as §7 "
                "describes", shape and policy == want_policy
                and (hx(br["alice_trusted_identity"]) == mallory if d.get("mallory")
                     else "alice_trusted_identity" not in br)
                and (br.get("one_time_prekey_public") == "00" * 32 if d.get("low_order_opk")
                     else "one_time_prekey_public" not in br))
        t.expect_error(f"bundle {name}: {err}", lambda: a.process_bundle(B_ADDR, b, dict(kem), policy),
                       err, d.get("reason"))
        t.check(f"bundle {name}: nothing stored, nothing encapsulated, nothing drawn",
                a.fingerprint() == fp)
        # Every fault of a multi-fault case is real: removing the first one gives the second.
        for label, change, want, why in d.get("next", ()):
            a2, b2, pol2 = case_bundle(br)
            change(a2, b2)
            t.expect_error(f"bundle {name}: {label}: {want}",
                           lambda: a2.process_bundle(B_ADDR, b2, dict(kem), pol2), want, why)
    if bad_sig is not None:
        t.check("bundle bad_kyber_prekey_signature: the last-resort key with the one-time key's "
                "signature", bad_sig[1] == hx(lrk["public"]) and bad_sig[2] == hx(kp["signature"]))
    # The stripped bundle is refused only for the policy: under accept-either it gives X3DH.
    a = Alice(v["alice"], suite)
    st = t.expect_ok("bundle stripped_bundle_refused_by_policy: accepted under accept-either "
                     "(X3DH)", lambda: (b"", a.process_bundle(B_ADDR, bundle(kyber=None),
                                                              dict(kem), "accept-either")), b"")
    if st:
        t.check("bundle stripped_bundle_refused_by_policy: ... a version-3 state, nothing "
                "encapsulated", st[1]["version"] == 3 and a.encapsulations == 0)

    # 6. The derivation of §7 "What the files list" (informative, but the text says it holds):
    # the keys, the signatures and every message of the file, rebuilt byte for byte.
    derivation_checks(v, t, bundle, kp, lrk, spk_pub, opk_pub)


def self_checks(path, t):
    """Rules of pqxdh.md that no vector pins (REVIEW.md P11 lists them); outcomes as the text says
    or, where it is silent, as guessed in REVIEW.md."""
    v = json.load(open(path))
    suite = v["suite"]
    parse = parse_v3_prekey_message if suite == "signal-v3" else parse_h1_prekey_message
    bj, pt = v["bob"], hx(v["plaintext"])
    A_ADDR, B_ADDR = ("alice", 1), ("bob", 1)
    kp = bj["kyber_prekey"]
    kem = {"m": hx(v["kem"]["m"])}
    tag = f"self-check ({suite})"
    bob_ik_priv = hx(bj["identity_private"])

    def bundle(kyber=True):
        return {"ik": H.x25519_base(bob_ik_priv), "reg": bj["registration_id"],
                "spk_id": bj["signed_prekey"]["id"],
                "spk": H.x25519_base(hx(bj["signed_prekey"]["private"])),
                "spk_sig": hx(bj["signed_prekey"]["signature"]),
                "opk_id": bj["one_time_prekey"]["id"],
                "opk": H.x25519_base(hx(bj["one_time_prekey"]["private"])),
                "kyber": (kp["id"], hx(kp["public"]), hx(kp["signature"])) if kyber else None}

    # S1: every message Alice sends until Bob answers carries the header, CT included (§4).
    alice = Alice(v["alice"], suite)
    alice.process_bundle(B_ADDR, bundle(), dict(kem), "require-pqxdh")
    first = alice.encrypt(B_ADDR, pt)
    second = alice.encrypt(B_ADDR, b"second")
    p1, p2 = parse(first), parse(second)
    t.check(f"{tag}: second message repeats the prekey header (Kyber id, CT, base key)",
            p2["kyber_id"] == p1["kyber_id"] and p2["ct"] == p1["ct"]
            and p2["base_key"] == p1["base_key"] and p2["inner"]["counter"] == 1)
    bob = Bob(bj, suite)
    bob.decrypt(A_ADDR, first, "require-pqxdh")
    t.expect_ok(f"{tag}: second message decrypts on the matching state (Kyber prekey already gone)",
                lambda: bob.decrypt(A_ADDR, second, "require-pqxdh"), b"second")
    # S2: a retransmission's CT is not re-checked (§5.3: additions only when a new state is built).
    third = alice.encrypt(B_ADDR, b"third")
    i = third.find(p1["ct"]) + 100
    flipped = third[:i] + bytes([third[i] ^ 1]) + third[i + 1:]
    if suite == "signal-v3":
        t.expect_ok(f"{tag}: CT altered in a retransmission: not authenticated in v3, decrypts",
                    lambda: bob.decrypt(A_ADDR, flipped, "require-pqxdh"), b"third")
    else:
        t.expect_error(f"{tag}: CT altered in a retransmission: in the AD, bad_mac",
                       lambda: bob.decrypt(A_ADDR, flipped, "require-pqxdh"), "bad_mac")
    # S3: parser rules of §5.1 / §5.2.
    main = hx(v["message"])
    if suite == "signal-v3":
        f = pb_decode(main[1:], PREKEY_SCHEMA_V4)

        def reenc(fields, version=0x44):
            return bytes([version]) + pb_encode(sorted(fields.items()))
        for drop in (7, 8):
            g = dict(f)
            del g[drop]
            t.expect_error(f"{tag}: field {drop} missing: malformed",
                           lambda: parse(reenc(g)), "malformed", f"missing field {drop}")
        for bad, what in ((b"\x05" + f[8][1:], "type byte 0x05"), (f[8][:-1], "1,568 bytes")):
            g = dict(f)
            g[8] = bad
            t.expect_error(f"{tag}: field 8 with {what}: malformed (invalid key field 8)",
                           lambda: parse(reenc(g)), "malformed", "invalid key field 8")
        g = dict(f)
        g[4] = b"\x33" + f[4][1:]
        t.expect_error(f"{tag}: inner SignalMessage 0x33 in a 0x44 message: invalid_version (guess)",
                       lambda: parse(reenc(g)), "invalid_version")
        t.expect_error(f"{tag}: version 5: invalid_version", lambda: parse(reenc(f, 0x55)),
                       "invalid_version")
    else:
        bad = main[:1] + bytes([main[1] | 0x04]) + main[2:]
        t.expect_error(f"{tag}: flag bit 2: malformed", lambda: parse(bad), "malformed", "flag")
        t.expect_error(f"{tag}: truncated in CT: malformed", lambda: parse(main[:200]), "malformed")
    # S4: an ek failing the modulus check, validly signed, is refused before any draw (§4 step 2).
    ek = bytearray(hx(kp["public"]))
    ek[0], ek[1] = 0xFF, ek[1] | 0x0F  # first coefficient 4095 >= q
    sig = H.libsignal_sign(bob_ik_priv, bytes([KYBER_TYPE]) + bytes(ek), bytes(64))
    b = bundle()
    b["kyber"] = (kp["id"], bytes(ek), sig)
    a = Alice(v["alice"], suite)
    fp = a.fingerprint()
    t.expect_error(f"{tag}: signed ek failing the modulus check: bad_signature",
                   lambda: a.process_bundle(B_ADDR, b, dict(kem), "accept-either"), "bad_signature",
                   "does not decode")
    t.check(f"{tag}: ... nothing drawn or stored", a.fingerprint() == fp)
    # S5: accept-either with a stripped bundle gives an X3DH (version 3) session Bob accepts
    # unless he requires PQXDH.
    a = Alice(v["alice"], suite)
    st = a.process_bundle(B_ADDR, bundle(kyber=False), dict(kem), "accept-either")
    x = a.encrypt(B_ADDR, pt)
    t.check(f"{tag}: stripped bundle under accept-either: version 3, no Kyber fields",
            st["version"] == 3 and not parse(x)["pq"]
            and x[0] == (0x33 if suite == "signal-v3" else 0x12) and
            (suite == "signal-v3" or x[1] == 0x01))
    t.expect_ok(f"{tag}: ... Bob under accept-either decrypts it",
                lambda: Bob(bj, suite).decrypt(A_ADDR, x, "accept-either"), pt)
    t.expect_error(f"{tag}: ... Bob under require-pqxdh: invalid_version",
                   lambda: Bob(bj, suite).decrypt(A_ADDR, x, "require-pqxdh"), "invalid_version",
                   "policy")
    # S6: §4's order (decoding; 1 policy; 2 trust; 3 signed prekey; 4 Kyber signature;
    # 5 prime-order; 6 Encaps), the multi-fault cases no vector pins.
    other = H.x25519_base(hx(v["alice"]["identity_private"]))  # a key that is not Bob's
    bad_kyber = (kp["id"], hx(kp["public"]), bytes(64))

    def alice_case(trusted=None, **changes):
        a = Alice(v["alice"], suite)
        if trusted is not None:
            a.identities[B_ADDR] = trusted
        b = bundle()
        b.update(changes)
        return a, b
    for label, (a, b), want, why in (
            ("untrusted IK_B, good Kyber signature", alice_case(other), "untrusted_identity", ""),
            ("bad signed prekey signature and bad Kyber signature", alice_case(
                spk_sig=bytes(64), kyber=bad_kyber), "bad_signature", "signed prekey signature"),
            ("no signed prekey and bad Kyber signature", alice_case(spk=None, kyber=bad_kyber),
             "malformed", "missingSignedPreKey"),
            ("out-of-range ek and an untrusted IK_B: decoding first", alice_case(
                other, kyber=(kp["id"], bytes(ek), sig)), "bad_signature", "does not decode"),
            ("low-order signed prekey (signed) and bad Kyber signature", alice_case(
                spk=bytes(32), spk_sig=H.libsignal_sign(bob_ik_priv, b"\x05" + bytes(32), bytes(64)),
                kyber=bad_kyber), "bad_signature", "Kyber prekey signature")):
        fp = a.fingerprint()
        t.expect_error(f"{tag}: {label}: {want}",
                       lambda: a.process_bundle(B_ADDR, b, dict(kem), "accept-either"), want, why)
        t.check(f"{tag}: ... nothing stored, encapsulated or drawn", a.fingerprint() == fp)
    # §4 step 1 comes before step 2: a stripped bundle from an untrusted IK_B.
    a, b = alice_case(other, kyber=None)
    t.expect_error(f"{tag}: stripped bundle, untrusted IK_B, require-pqxdh: malformed (step 1 first)",
                   lambda: a.process_bundle(B_ADDR, b, dict(kem), "require-pqxdh"), "malformed",
                   "missingKyberPreKey")
    t.expect_error(f"{tag}: ... under accept-either: X3DH's untrusted_identity",
                   lambda: a.process_bundle(B_ADDR, b, dict(kem), "accept-either"),
                   "untrusted_identity")
    # §4 step 6: a recorded encapsulator with nothing left -> crypto_failure, before any draw.
    a, b = alice_case()
    fp = a.fingerprint()
    t.expect_error(f"{tag}: encapsulator exhausted: crypto_failure (randomSourceExhausted(32, 0))",
                   lambda: a.process_bundle(B_ADDR, b, {"m": None}, "accept-either"),
                   "crypto_failure", "requested: 32")
    t.check(f"{tag}: ... nothing stored, nothing drawn", a.fingerprint() == fp)

    # S7: §5.1 / §5.2 parsing rules no vector pins.
    if suite == "signal-v3":
        toks = pb_tokens(main[1:])
        kid = p1["kyber_id"]

        def rw(tokens, first=0x44):
            return bytes([first]) + pb_untokens(tokens)
        t.expect_ok(f"{tag}: outer 0x43 (low nibble not parsed): decrypts",
                    lambda: Bob(bj, suite).decrypt(A_ADDR, b"\x43" + main[1:], "require-pqxdh"), pt)
        wide = [(n, w, (x + (1 << 32)) if n == 7 else x) for n, w, x in toks]
        t.expect_ok(f"{tag}: field 7 as a varint wider than 32 bits: truncated, decrypts",
                    lambda: Bob(bj, suite).decrypt(A_ADDR, rw(wide), "require-pqxdh"), pt)
        rep = [t_ for tk in toks for t_ in ([(7, 0, 999), tk] if tk[0] == 7 else [tk])]
        t.expect_ok(f"{tag}: field 7 repeated (999 then the real id): the last counts, decrypts",
                    lambda: Bob(bj, suite).decrypt(A_ADDR, rw(rep), "require-pqxdh"), pt)
        t.expect_ok(f"{tag}: an unknown field 9 is skipped, decrypts",
                    lambda: Bob(bj, suite).decrypt(A_ADDR, rw(toks + [(9, 2, b"x")]),
                                                   "require-pqxdh"), pt)
        t.expect_error(f"{tag}: wire type 6: malformed",
                       lambda: parse(main + b"\x4e"), "malformed", "wire type 6")
        t.expect_error(f"{tag}: version 2 outer: legacy_version",
                       lambda: parse(b"\x22" + main[1:]), "legacy_version")
        # A version-3 message carrying fields 7 and 8 (either wire type): skipped, X3DH.
        a = Alice(v["alice"], suite)
        a.process_bundle(B_ADDR, bundle(kyber=False), dict(kem), "accept-either")
        x3 = a.encrypt(B_ADDR, pt)
        xt = pb_tokens(x3[1:])
        for extra, what in (([(7, 0, kid), (8, 2, f[8])], "as in version 4"),
                            ([(7, 2, b"\x01"), (8, 0, 1)], "with swapped wire types")):
            got = t.expect_ok(f"{tag}: version 3 with fields 7 and 8 {what}: skipped, X3DH",
                              lambda: Bob(bj, suite).decrypt(A_ADDR, rw(xt + extra, 0x33),
                                                             "accept-either"), pt)
            if got:
                t.check(f"{tag}: ... a version-3 state", got[1]["state"]["version"] == 3)
        # Version of a message against the version of a state.
        bx = Bob(bj, suite)
        bx.decrypt(A_ADDR, x3, "accept-either")          # a version-3 state
        second3 = pb_tokens(a.encrypt(B_ADDR, b"two")[1:])
        inner4 = [(n, w, (b"\x44" + x[1:]) if n == 4 else x) for n, w, x in second3]
        m4 = rw(inner4 + [(7, 0, kid), (8, 2, f[8])], 0x44)
        t.expect_error(f"{tag}: version-4 message for a version-3 state: invalid_version",
                       lambda: bx.decrypt(A_ADDR, m4, "accept-either"), "invalid_version",
                       "version-4 message, version-3 state")
        by = Bob(bj, suite)
        by.decrypt(A_ADDR, first, "require-pqxdh")        # a version-4 state
        fourth = pb_tokens(alice.encrypt(B_ADDR, b"four")[1:])
        inner3 = [(n, w, (b"\x33" + x[1:]) if n == 4 else x) for n, w, x in fourth if n not in (7, 8)]
        t.expect_error(f"{tag}: version-3 message for a version-4 state: legacy_version",
                       lambda: by.decrypt(A_ADDR, rw(inner3, 0x33), "accept-either"),
                       "legacy_version", "version-3 message, version-4 state")
    else:
        ct_at = main.find(p1["ct"])
        vk = H.varint(p1["kyber_id"])
        t.check(f"{tag}: the Kyber id sits right before CT", main[ct_at - len(vk):ct_at] == vk)
        bad = main[:ct_at - len(vk)] + bytes([vk[0] | 0x80, 0x00]) + vk[1:] + main[ct_at:] \
            if len(vk) == 1 else None
        if bad is not None:
            t.expect_error(f"{tag}: Kyber id with a redundant zero group: malformed",
                           lambda: parse(bad), "malformed", "invalid encoding")
        t.expect_error(f"{tag}: flag bit 7: malformed",
                       lambda: parse(main[:1] + bytes([main[1] | 0x80]) + main[2:]), "malformed",
                       "flag bits")

    # S8: §5.3 "consequences": a missing one-time X25519 prekey and a missing Kyber prekey give
    # the X25519 one's unknown_prekey (step 6 before step 7).
    b = Bob(bj, suite)
    del b.opks[bj["one_time_prekey"]["id"]]
    del b.kyber[kp["id"]]
    t.expect_error(f"{tag}: missing OPK and missing Kyber prekey: unknown_prekey (one-time)",
                   lambda: b.decrypt(A_ADDR, main, "accept-either"), "unknown_prekey",
                   f"one-time prekey {bj['one_time_prekey']['id']}")


def main(argv):
    global VERBOSE
    args = [a for a in argv[1:] if a != "-v"]
    VERBOSE = "-v" in argv
    folder = args[0] if args else os.path.join(HERE, "..", "..", "TestVectors", "pqxdh")
    t = Tally()
    files = sorted(f for f in os.listdir(folder) if f.endswith(".json"))
    for f in files:
        replay(os.path.join(folder, f), t)
    for f in files:
        self_checks(os.path.join(folder, f), t)
    print(f"pqxdh-independent: {t.passed} passed, {t.failed} failed")
    return 0 if t.failed == 0 and files else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
