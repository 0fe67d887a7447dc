#!/usr/bin/env python3
"""Independent replay of TestVectors/pqxdh (both suites), written from the specification only.

Sources read: Docs/spec/pqxdh.md, hush-1.md, README.md, vectors.md, Docs/protocol.md, Signal's
PQXDH (rev. 3), X3DH and Double Ratchet specifications, FIPS 203.  Not read: any Swift source of
Hush, its vector generator, or Tools/spec-check/pqxdh_check.py (written by the author of the Swift
code).  The hush-1 primitives (X25519, HKDF, XChaCha20-Poly1305, XEdDSA in libsignal's form, the
prime-order test, varints) are reused from spec_check.py, which another reviewer wrote from the
spec alone.  Everything PQXDH-specific (ML-KEM wiring, both message formats, the Signal-v3 suite's
protobuf, AES-CBC and MAC, Bob's checks, the policy) is written here.

Findings about the specification: REVIEW.md, "PQXDH (independent review, 2026-12-02)".

Usage: Tools/spec-check/.venv/bin/python Tools/spec-check/pqxdh_independent.py TestVectors/pqxdh [-v]
(run.sh runs it after pqxdh_check.py).  Ends "pqxdh-independent: N passed, M failed".
"""

import copy
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


def pb_decode(data):
    """Returns {field: value} (last one wins); malformed on anything protocol.md §5 refuses."""
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
        if wt == 0:
            out[num] = rd_varint()
        elif wt == 2:
            n = rd_varint()
            if r + n > len(data):
                fail("malformed", "truncated field")
            out[num] = bytes(data[r:r + n])
            r += n
        elif wt == 1:
            r += 8
        elif wt == 5:
            r += 4
        else:
            fail("malformed", f"wire type {wt}")
        if r > len(data):
            fail("malformed", "truncated field")
    return out


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


def parse_v3_signal_message(data):
    if len(data) < 10:
        fail("malformed", "SignalMessage too short")
    hi = data[0] >> 4
    if hi > 4:
        fail("invalid_version", f"SignalMessage version {hi}")
    if hi < 3:
        fail("invalid_version", f"legacy SignalMessage version {hi}")
    f = pb_decode(data[1:-8])
    for n in (1, 2, 4):
        if n not in f:
            fail("malformed", f"SignalMessage missing field {n}")
    return {"version": hi, "T": key33(f[1], 1), "counter": f[2], "pn": f.get(3, 0),
            "body": f[4], "signed": data[:-8], "mac": data[-8:]}


def parse_v3_prekey_message(data, pq_supported=True):
    if len(data) < 1:
        fail("malformed", "too short")
    hi = data[0] >> 4
    if hi < 3:
        fail("invalid_version", f"legacy version {hi}")
    if hi > (4 if pq_supported else 3):
        fail("invalid_version", f"version {hi}")
    f = pb_decode(data[1:])
    for n in (2, 3, 4, 6):
        if n not in f:
            fail("malformed", f"PreKeySignalMessage missing field {n}")
    kyber_id = ct = None
    if hi == 4:  # pqxdh.md §5.1
        if 7 not in f:
            fail("malformed", "missing field 7")
        if 8 not in f:
            fail("malformed", "missing field 8")
        if len(f[8]) != 1 + CT_LEN or f[8][0] != KYBER_TYPE:
            fail("malformed", "invalid key field 8")
        kyber_id, ct = f[7], f[8][1:]
    inner = parse_v3_signal_message(f[4])
    if inner["version"] != hi:
        fail("invalid_version", "inner SignalMessage version differs from the outer one")
    return {"version": hi, "opk_id": f.get(1), "base_key": key33(f[2], 2),
            "ik": key33(f[3], 3), "inner": inner, "reg_id": f.get(5), "spk_id": f[6],
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
                len(self.draws))

    def process_bundle(self, addr, b, kem, policy):
        """b: bundle dict with ik, reg, spk_id, spk, spk_sig, opk_id, opk, kyber (id, ek, sig) or None."""
        # §4 step 1
        if b["kyber"] is None:
            if policy == "require-pqxdh":
                fail("malformed", "missingKyberPreKey")
        else:
            kid, ek, ksig = b["kyber"]
            # §4 step 2
            if not H.libsignal_verify(b["ik"], bytes([KYBER_TYPE]) + ek, ksig):
                fail("bad_signature", "Kyber prekey signature")
            if not ek_decodes(ek):
                fail("bad_signature", "Kyber ek does not decode")
        # §4 step 3: X3DH's checks (hush-1.md §4)
        known = self.identities.get(addr)
        if known is not None and known != b["ik"]:
            fail("untrusted_identity")
        if not H.libsignal_verify(b["ik"], b"\x05" + b["spk"], b["spk_sig"]):
            fail("bad_signature", "signed prekey signature")
        for k in (b["ik"], b["spk"], b["opk"]):
            if k is not None and not H.is_prime_order(k):
                fail("malformed", "bundle key not prime-order")
        ct = ss = None
        if b["kyber"] is not None:
            c, K = kem_encaps_internal(b["kyber"][1], kem["m"])
            ct, ss = c, K
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
            for name in ("invalid_version", "too_far_in_future"):
                for e in errs:
                    if e.name == name:
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
        if suite == "signal-v3" and msg["version"] != st["version"]:
            fail("invalid_version", "message version differs from the state's")
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
        except AssertionError as e:
            return self.check(name, False, f"assertion: {e}"), None
        return self.check(name, False, f"accepted, want {error}"), None

    def expect_ok(self, name, fn, want):
        try:
            got = fn()
        except (ProtocolError, AssertionError) as e:
            self.check(name, False, f"error {e}")
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
        return b

    # 1. Alice
    alice = Alice(v["alice"], suite)
    try:
        st = alice.process_bundle(B_ADDR, bundle(), kem, "require-pqxdh")
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
                   lambda: a2.process_bundle(B_ADDR, bundle(kyber=None), kem, "require-pqxdh"),
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

    # 3. Rejections
    for rj in v["rejections"]:
        name, data, err = rj["name"], hx(rj["message"]), rj["error"]
        policy = rj.get("policy", "accept-either")
        if rj["after_main"]:
            b = copy.deepcopy(bob_after_main)
        else:
            b = Bob(bj, suite)
        fp = b.fingerprint()
        reason = {"kem_ciphertext_bit_flipped": "MAC" if suite == "signal-v3" else "AEAD",
                  "unknown_kyber_prekey": "kyber prekey",
                  "reused_one_time_kyber_prekey": f"kyber prekey {kp['id']}",
                  "x3dh_refused_by_policy": "policy"}.get(name)
        ok, e = t.expect_error(f"rejection {name}: {err}", lambda: b.decrypt(A_ADDR, data, policy),
                               err, reason)
        t.check(f"rejection {name}: nothing changed", b.fingerprint() == fp)
        # Why it fails: the same message succeeds once the stated reason is removed.
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
            pm = (parse_v3_prekey_message if suite == "signal-v3" else parse_h1_prekey_message)(data)
            if name == "unknown_kyber_prekey":
                t.check(f"rejection {name}: names an id Bob never had",
                        pm["kyber_id"] not in (kp["id"], bj["last_resort_kyber_prekey"]["id"]))
                # The renamed key is the one-time Kyber prekey: Bob holding it under that id decrypts.
                b2 = Bob(bj, suite)
                b2.kyber[pm["kyber_id"]] = b2.kyber.pop(kp["id"])
            else:
                t.check(f"rejection {name}: names the one-time Kyber prekey", pm["kyber_id"] == kp["id"])
                b2 = Bob(bj, suite)  # a Bob that never decrypted the main message
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
        else:
            t.check(f"rejection {name}: known rejection case", False, "unknown case name")

    # 4. Accepted messages, in order, to one fresh Bob (require-pqxdh)
    bob = Bob(bj, suite)
    lr = bj["last_resort_kyber_prekey"]["id"]
    for n, ac in enumerate(v["accepted"]):
        got = t.expect_ok(f"accepted {ac['name']}: decrypts", lambda: bob.decrypt(
            A_ADDR, hx(ac["message"]), "require-pqxdh"), pt)
        if got:
            t.check(f"accepted {ac['name']}: used the last-resort Kyber prekey, which stays",
                    got[1]["pm"]["kyber_id"] == lr and lr in bob.kyber)
            t.check(f"accepted {ac['name']}: built a new state ({n + 1} held)",
                    got[1]["built"] and len(bob.states) == n + 1)

    # 5. Bundle rejections
    for br in v["bundle_rejections"]:
        a = Alice(v["alice"], suite)
        b = bundle()
        k = br["kyber_prekey"]
        b["kyber"] = (k["id"], hx(k["public"]), hx(k["signature"]))
        fp = a.fingerprint()
        t.expect_error(f"bundle {br['name']}: {br['error']}",
                       lambda: a.process_bundle(B_ADDR, b, kem, "accept-either"), br["error"],
                       "Kyber prekey signature")
        t.check(f"bundle {br['name']}: nothing stored, nothing drawn", a.fingerprint() == fp)


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
    alice.process_bundle(B_ADDR, bundle(), kem, "require-pqxdh")
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
        f = pb_decode(main[1:])

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
                   lambda: a.process_bundle(B_ADDR, b, kem, "accept-either"), "bad_signature",
                   "does not decode")
    t.check(f"{tag}: ... nothing drawn or stored", a.fingerprint() == fp)
    # S5: accept-either with a stripped bundle gives an X3DH (version 3) session Bob accepts
    # unless he requires PQXDH.
    a = Alice(v["alice"], suite)
    st = a.process_bundle(B_ADDR, bundle(kyber=False), kem, "accept-either")
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
    # S6: §4 as written checks the Kyber signature before the trust of IK_B.
    a = Alice(v["alice"], suite)
    a.identities[B_ADDR] = H.x25519_base(hx(v["alice"]["identity_private"]))  # another key
    b = bundle()
    b["kyber"] = (kp["id"], hx(kp["public"]), bytes(64))
    t.expect_error(f"{tag}: untrusted IK_B and bad Kyber signature: bad_signature (§4 order)",
                   lambda: a.process_bundle(B_ADDR, b, kem, "accept-either"), "bad_signature")
    t.expect_error(f"{tag}: untrusted IK_B, good Kyber signature: untrusted_identity",
                   lambda: a.process_bundle(B_ADDR, bundle(), kem, "accept-either"),
                   "untrusted_identity")


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
