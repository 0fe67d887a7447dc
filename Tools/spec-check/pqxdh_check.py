#!/usr/bin/env python3
"""Replays TestVectors/pqxdh/*.json (format hush-pqxdh-vectors/1) from the specification.

Written from Docs/spec/pqxdh.md, with hush-1.md (hush-1 suite) and Docs/protocol.md §2, §3, §5
(Signal-v3 suite) for the parts PQXDH keeps, without reading Hush's Swift sources while
writing it.  Honesty note: its author also wrote HushPQ, so it is independent of the Swift
code, not of the person; its value is that every byte here comes from the spec pages (where
they were unclear, REVIEW.md says so).

Primitives: kyber-py (PyPI, pure-Python FIPS 203 ML-KEM-1024), PyNaCl (X25519,
XChaCha20-Poly1305), cryptography (AES-256-CBC), hashlib/hmac (HMAC, HKDF), and the XEdDSA
verifier of spec_check.py (README.md "Signatures").

Usage: Tools/spec-check/run.sh   (makes the venv), or  .venv/bin/python pqxdh_check.py TestVectors/pqxdh
Ends with "N passed, M failed"; exits non-zero on any failure.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spec_check as base  # noqa: E402  (HKDF, HMAC, X25519, XEdDSA, AEAD from the hush-1 check)

from kyber_py.ml_kem import ML_KEM_1024  # noqa: E402
from cryptography.hazmat.primitives import padding  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

F = b"\xff" * 32
INFO = {"signal-v3": b"WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024", "hush-1": b"hush-1/pqxdh"}
ROOT_INFO = {"signal-v3": b"WhisperRatchet", "hush-1": b"hush-1/root"}
KYBER_TYPE = 0x08
CT_LEN = 1568


class Reject(Exception):
    """A message or bundle refused; .name is the vectors' error name."""
    def __init__(self, name, detail=""):
        super().__init__(f"{name}: {detail}")
        self.name = name


def h(s):
    return bytes.fromhex(s)


def pub(priv):
    return base.x25519_base(priv)


def dh(priv, public):
    out = base.DH(priv, public)
    if out is None:
        raise Reject("malformed", "all-zero DH")
    return out


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def read_varint(data, i):
    v, shift = 0, 0
    while True:
        if i >= len(data) or shift > 63:
            raise Reject("malformed", "truncated varint")
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, i
        shift += 7


# --- protobuf (protocol.md §5: fields in number order, zero values written) -----------------

def pb_uint(field, v):
    return varint(field << 3) + varint(v)


def pb_bytes(field, b):
    return varint((field << 3) | 2) + varint(len(b)) + b


# Wire types of the PreKeySignalMessage's known fields (pqxdh.md §5.1 "Encoding").
PREKEY_WIRE = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 0, 7: 0, 8: 2}


def pb_parse(data, known=None):
    """protocol.md §5 / pqxdh.md §5.1 step 2: a structural error or a known field of the wrong
    wire type is `malformed`; the last of a repeated field counts; unknown fields are skipped."""
    fields, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise Reject("malformed", "field 0")
        if wire == 0:
            v, i = read_varint(data, i)
        elif wire == 2:
            n, i = read_varint(data, i)
            if i + n > len(data):
                raise Reject("malformed", "truncated field")
            v, i = data[i:i + n], i + n
        else:
            raise Reject("malformed", f"wire type {wire}")
        if known is not None:
            if number not in known:
                continue
            if known[number] != wire:
                raise Reject("malformed", f"field {number} wire type {wire}")
        fields[number] = v
    return fields


# --- key schedule (pqxdh.md §4; hush-1.md §5; protocol.md §3) --------------------------------

def pqxdh_secret(dhs, ss, suite):
    okm = base.HKDF(F + b"".join(dhs) + ss, b"", INFO[suite], 64)
    return okm[:32], okm[32:]


def root_step(rk, dh_out, suite):
    okm = base.HKDF(dh_out, rk, ROOT_INFO[suite], 64)
    return okm[:32], okm[32:]


def message_keys(ck, suite):
    seed = base.hmac256(ck, b"\x01")
    if suite == "hush-1":
        m = base.HKDF(seed, b"", b"hush-1/message-keys", 56)
        return m[:32], m[32:56]
    m = base.HKDF(seed, b"", b"WhisperMessageKeys", 80)
    return m[:32], m[32:64], m[64:80]


def aes_cbc(key, iv, data, decrypt=False):
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    if decrypt:
        d = c.decryptor()
        padded = d.update(data) + d.finalize()
        u = padding.PKCS7(128).unpadder()
        return u.update(padded) + u.finalize()
    p = padding.PKCS7(128).padder()
    e = c.encryptor()
    return e.update(p.update(data) + p.finalize()) + e.finalize()


# --- Alice (pqxdh.md §4, §5) -------------------------------------------------------------------

def alice_first_message(v, suite):
    a, b, kem = v["alice"], v["bob"], v["kem"]
    ik_a, ek_a, r_a = h(a["identity_private"]), h(a["base_private"]), h(a["ratchet_private"])
    ik_b = pub(h(b["identity_private"]))
    spk_b = pub(h(b["signed_prekey"]["private"]))
    opk = b.get("one_time_prekey")
    opk_b = pub(h(opk["private"])) if opk else None
    ky = b["kyber_prekey"]
    ek_kem = h(ky["public"])
    # §4 step 2: the Kyber prekey's signature over 0x08 || ek, by IK_B.
    if not base.libsignal_verify(ik_b, bytes([KYBER_TYPE]) + ek_kem, h(ky["signature"])):
        raise Reject("bad_signature", "Kyber prekey signature")
    # §2: Encaps with the listed randomness m must give the listed ciphertext and secret.
    ss, ct = ML_KEM_1024._encaps_internal(ek_kem, h(kem["m"]))
    if ct != h(kem["ciphertext"]) or ss != h(kem["shared_secret"]):
        raise Reject("vector", "Encaps_internal(ek, m) differs from kem.ciphertext / shared_secret")
    dhs = [dh(ik_a, spk_b), dh(ek_a, ik_b), dh(ek_a, spk_b)] + ([dh(ek_a, opk_b)] if opk else [])
    rk0, _ = pqxdh_secret(dhs, ss, suite)
    _, cks = root_step(rk0, dh(r_a, spk_b), suite)
    plaintext = h(v["plaintext"])
    reg_a = a["registration_id"]
    ik_a_pub = pub(ik_a)
    if suite == "hush-1":
        key, nonce = message_keys(cks, suite)
        flags = (1 if opk else 0) | 2
        prefix = bytes([0x12, flags]) + (varint(opk["id"]) if opk else b"") + varint(b["signed_prekey"]["id"]) \
            + varint(reg_a) + pub(ek_a) + ik_a_pub + varint(ky["id"]) + ct
        header = bytes([0x11]) + pub(r_a) + varint(0) + varint(0)
        ad = b"hush-1/message" + ik_a_pub + ik_b + prefix + header
        return prefix + header + base.aead_seal(key, nonce, plaintext, ad)
    ck, mk, iv = message_keys(cks, suite)
    body = aes_cbc(ck, iv, plaintext)
    m = bytes([0x44]) + pb_bytes(1, b"\x05" + pub(r_a)) + pb_uint(2, 0) + pb_uint(3, 0) + pb_bytes(4, body)
    mac = base.hmac256(mk, b"\x05" + ik_a_pub + b"\x05" + ik_b + m)[:8]
    inner = m + mac
    out = bytes([0x44])
    if opk:
        out += pb_uint(1, opk["id"])
    out += pb_bytes(2, b"\x05" + pub(ek_a)) + pb_bytes(3, b"\x05" + ik_a_pub) + pb_bytes(4, inner) \
        + pb_uint(5, reg_a) + pb_uint(6, b["signed_prekey"]["id"]) + pb_uint(7, ky["id"]) + pb_bytes(8, bytes([KYBER_TYPE]) + ct)
    return out


# --- Bob (pqxdh.md §5.3) -----------------------------------------------------------------------

class Bob:
    def __init__(self, v, suite, policy):
        b = v["bob"]
        self.suite, self.policy = suite, policy
        self.ik = h(b["identity_private"])
        self.spk = {b["signed_prekey"]["id"]: h(b["signed_prekey"]["private"])}
        opk = b.get("one_time_prekey")
        self.opk = {opk["id"]: h(opk["private"])} if opk else {}
        self.kyber = {}
        for k in ("kyber_prekey", "last_resort_kyber_prekey"):
            if b.get(k):
                seed = h(b[k]["seed"])
                ek, dk = ML_KEM_1024.key_derive(seed)
                assert ek == h(b[k]["public"]), "kyber seed does not give the listed key"
                self.kyber[b[k]["id"]] = (dk, b[k]["kind"])
        self.sessions = set()  # base keys of the states built

    def parse(self, data):
        """-> dict(opk, spk, reg, base, identity, kyber_id, ct, inner, ad_prefix)"""
        if self.suite == "hush-1":
            if len(data) < 2 or data[0] != 0x12:
                raise Reject("malformed", "type")
            flags, i = data[1], 2
            if flags & ~3:
                raise Reject("malformed", "flags")
            p = {}
            p["opk"], i = read_varint(data, i) if flags & 1 else (None, i)
            p["spk"], i = read_varint(data, i)
            p["reg"], i = read_varint(data, i)
            p["base"], p["identity"] = data[i:i + 32], data[i + 32:i + 64]
            i += 64
            if flags & 2:
                p["kyber_id"], i = read_varint(data, i)
                p["ct"] = data[i:i + CT_LEN]
                if len(p["ct"]) != CT_LEN:
                    raise Reject("malformed", "short ciphertext")
                i += CT_LEN
            else:
                p["kyber_id"] = p["ct"] = None
            p["prefix"], p["inner"] = data[:i], data[i:]
            if not p["inner"]:
                raise Reject("malformed", "missing field 4")
            return p
        if not data:
            raise Reject("malformed", "empty")
        version = data[0] >> 4
        if version < 3:
            raise Reject("legacy_version", str(version))
        if version > 4:
            raise Reject("invalid_version", str(version))
        # §5.1 step 3: in a version-3 message fields 7 and 8 are unknown fields.
        known = PREKEY_WIRE if version == 4 else {n: w for n, w in PREKEY_WIRE.items() if n < 7}
        f = pb_parse(data[1:], known)
        if not all(n in f for n in (6, 2, 3, 4)):
            raise Reject("malformed", "missing field")
        p = {"opk": f.get(1), "spk": f[6], "reg": f.get(5, 0), "base": f[2][1:], "identity": f[3][1:], "inner": f[4]}
        if version == 4:
            if 7 not in f or 8 not in f or len(f[8]) != 1 + CT_LEN or f[8][0] != KYBER_TYPE:
                raise Reject("malformed", "Kyber fields")
            p["kyber_id"], p["ct"] = f[7], f[8][1:]
        else:
            p["kyber_id"] = p["ct"] = None
        # §5.1 step 4: the inner message's version equals the outer one.
        if not p["inner"] or p["inner"][0] >> 4 != version:
            raise Reject("invalid_version", "inner version")
        return p

    def receive(self, data):
        p = self.parse(data)
        if p["base"] in self.sessions:
            raise Reject("duplicate_message")
        if p["kyber_id"] is None and self.policy == "require-pqxdh":
            raise Reject("invalid_version", "X3DH refused: PQXDH required")
        if p["spk"] not in self.spk or (p["opk"] is not None and p["opk"] not in self.opk):
            raise Reject("unknown_prekey", "X25519 prekey")
        if p["kyber_id"] is not None and p["kyber_id"] not in self.kyber:
            raise Reject("unknown_prekey", "Kyber prekey")
        spk = self.spk[p["spk"]]
        ik_a, ek_a = p["identity"], p["base"]
        dhs = [dh(spk, ik_a), dh(self.ik, ek_a), dh(spk, ek_a)]
        if p["opk"] is not None:
            dhs.append(dh(self.opk[p["opk"]], ek_a))
        if p["kyber_id"] is not None:
            ss = ML_KEM_1024.decaps(self.kyber[p["kyber_id"]][0], p["ct"])
            rk0, _ = pqxdh_secret(dhs, ss, self.suite)
        else:
            okm = base.HKDF(F + b"".join(dhs), b"", b"hush-1/x3dh" if self.suite == "hush-1" else b"WhisperText", 64)
            rk0 = okm[:32]
        plaintext = self.open_first(rk0, spk, p)
        # §5.3 step 4: only now are the one-time keys consumed.
        self.sessions.add(ek_a)
        if p["opk"] is not None:
            del self.opk[p["opk"]]
        if p["kyber_id"] is not None and self.kyber[p["kyber_id"]][1] == "one-time":
            del self.kyber[p["kyber_id"]]
        return plaintext

    def open_first(self, rk0, spk, p):
        """Bob's state: RK0, sending ratchet SPK_B; the message's ratchet key gives CKr."""
        ik_b = pub(self.ik)
        inner = p["inner"]
        if self.suite == "hush-1":
            if len(inner) < 1 + 32 + 2 + 16 or inner[0] != 0x11:
                raise Reject("malformed", "inner")
            r_a = inner[1:33]
            counter, i = read_varint(inner, 33)
            _, i = read_varint(inner, i)
            _, ckr = root_step(rk0, dh(spk, r_a), self.suite)
            for _ in range(counter):
                ckr = base.hmac256(ckr, b"\x02")
            key, nonce = message_keys(ckr, self.suite)
            ad = b"hush-1/message" + p["identity"] + ik_b + p["prefix"] + inner[:i]
            out = base.aead_open(key, nonce, inner[i:], ad)
            if out is None:
                raise Reject("bad_mac")
            return out
        m, mac = inner[:-8], inner[-8:]
        f = pb_parse(m[1:])
        r_a = f[1][1:]
        _, ckr = root_step(rk0, dh(spk, r_a), self.suite)
        for _ in range(f.get(2, 0)):
            ckr = base.hmac256(ckr, b"\x02")
        ck, mk, iv = message_keys(ckr, self.suite)
        if base.hmac256(mk, b"\x05" + p["identity"] + b"\x05" + ik_b + m)[:8] != mac:
            raise Reject("bad_mac")
        return aes_cbc(ck, iv, f[4], decrypt=True)


# --- replay -----------------------------------------------------------------------------------

class Tally:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"  FAIL {name} {detail}")


def replay(path, t):
    v = json.load(open(path))
    suite = v["suite"]
    name = os.path.basename(path)
    if v.get("format") != "hush-pqxdh-vectors/1":
        t.check(False, name, "format")
        return
    try:
        t.check(alice_first_message(v, suite) == h(v["message"]), f"{name} alice", "first message differs")
    except Reject as e:
        t.check(False, f"{name} alice", str(e))
    try:
        bob = Bob(v, suite, "require-pqxdh")
        t.check(bob.receive(h(v["message"])) == h(v["plaintext"]), f"{name} bob", "plaintext")
        t.check(v["bob"]["kyber_prekey"]["id"] not in bob.kyber, f"{name} bob", "one-time Kyber prekey kept")
    except Reject as e:
        t.check(False, f"{name} bob", str(e))
    for r in v["rejections"]:
        bob = Bob(v, suite, r.get("policy", "accept-either"))
        if r.get("after_main"):
            bob.receive(h(v["message"]))
        before = (dict(bob.opk), dict(bob.kyber), set(bob.sessions))
        try:
            bob.receive(h(r["message"]))
            t.check(False, f"{name} {r['name']}", "accepted")
        except Reject as e:
            t.check(e.name == r["error"], f"{name} {r['name']}", f"{e.name}, expected {r['error']}")
        t.check(before == (dict(bob.opk), dict(bob.kyber), set(bob.sessions)), f"{name} {r['name']}", "state changed")
    bob = Bob(v, suite, "require-pqxdh")
    for a in v.get("accepted", []):
        try:
            t.check(bob.receive(h(a["message"])) == h(v["plaintext"]), f"{name} {a['name']}", "plaintext")
        except Reject as e:
            t.check(False, f"{name} {a['name']}", str(e))
    for r in v.get("bundle_rejections", []):
        t.check(alice_bundle_error(v, r) == r["error"], f"{name} {r['name']}",
                f"{alice_bundle_error(v, r)}, expected {r['error']}")


def ek_valid(ek):
    """§2 / FIPS 203 §7.2: 1,568 bytes whose 12-bit coefficients (in the 1,536 bytes before rho)
    are all below q = 3329."""
    if len(ek) != 1568:
        return False
    for i in range(0, 1536, 3):
        a, b, c = ek[i], ek[i + 1], ek[i + 2]
        if (a | (b & 0x0F) << 8) >= 3329 or (b >> 4 | c << 4) >= 3329:
            return False
    return True


def alice_bundle_error(v, r):
    """§4: the error Alice refuses the case's bundle with (None: accepted), in §4's order."""
    k = r.get("kyber_prekey")
    if k is None:  # step 1
        return "malformed" if r.get("policy") == "require-pqxdh" else None
    if not ek_valid(h(k["public"])):  # decoding, before the checks
        return "bad_signature"
    ik_b = pub(h(v["bob"]["identity_private"]))
    trusted = r.get("alice_trusted_identity")
    if trusted is not None and h(trusted) != b"\x05" + ik_b:  # step 2
        return "untrusted_identity"
    spk = v["bob"]["signed_prekey"]
    spk_pub = pub(h(spk["private"]))
    if not base.libsignal_verify(ik_b, b"\x05" + spk_pub, h(spk["signature"])):  # step 3
        return "bad_signature"
    if not base.libsignal_verify(ik_b, bytes([KYBER_TYPE]) + h(k["public"]), h(k["signature"])):  # step 4
        return "bad_signature"
    opk = h(r["one_time_prekey_public"]) if "one_time_prekey_public" in r else pub(h(v["bob"]["one_time_prekey"]["private"]))
    if not all(base.is_prime_order(key) for key in (ik_b, spk_pub, opk)):  # step 5
        return "malformed"
    return None


def main(argv):
    root = argv[1] if len(argv) > 1 else "TestVectors/pqxdh"
    files = sorted(f for f in os.listdir(root) if f.endswith(".json"))
    t = Tally()
    for f in files:
        replay(os.path.join(root, f), t)
    if not files:
        t.check(False, root, "no vector files")
    print(f"pqxdh: {t.passed} passed, {t.failed} failed")
    return 0 if t.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
