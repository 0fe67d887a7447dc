#!/usr/bin/env python3
"""Independent check of the hush-1 session suite and the Hush sealed envelopes.

Written from Docs/spec/README.md, hush-1.md, envelope.md and vectors.md and the primary
specifications they cite (RFC 7748, RFC 5869, RFC 2104, RFC 8032, Signal's XEdDSA
specification) only, without reading Hush's sources, tests or vector generator.  It replays
TestVectors/hush-1/*.json.  Findings about the specification: REVIEW.md.

Usage: python3 Tools/spec-check/spec_check.py TestVectors/hush-1 [-v]

Primitives: PyNaCl (X25519, XChaCha20-Poly1305), hashlib/hmac (SHA-256/512,
HMAC, HKDF), and Python integers for the Edwards-curve arithmetic of XEdDSA.
"""

import copy
import hashlib
import hmac
import json
import os
import sys
from collections import OrderedDict

try:
    import nacl.bindings as sodium
    import nacl.exceptions
except ImportError:
    # An interpreter without PyNaCl (e.g. a pyenv python3 ahead of Debian's on the PATH): use
    # the system one, which has python3-nacl (.ci/run installs it), if that is another binary.
    system = "/usr/bin/python3"
    if os.path.exists(system) and os.path.realpath(sys.executable) != os.path.realpath(system):
        os.execv(system, [system] + sys.argv)
    sys.exit("spec_check.py needs PyNaCl (Debian python3-nacl, or pip install pynacl)")

VERBOSE = False


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class ProtocolError(Exception):
    """An error with the canonical vector name (hush-1.md §8, envelope.md §8)."""

    def __init__(self, name, detail=""):
        super().__init__(f"{name}: {detail}" if detail else name)
        self.name = name
        self.detail = detail


def fail(name, detail=""):
    raise ProtocolError(name, detail)


# ---------------------------------------------------------------------------
# Conventions (README.md)
# ---------------------------------------------------------------------------

P = 2 ** 255 - 19
Q = 2 ** 252 + 27742317777372353535851937790883648493


def varint(v):
    if not 0 <= v < 2 ** 32:
        raise ValueError("varint out of range")
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Reader:
    """Cursor over bytes; `err` is the error name for structural failures."""

    def __init__(self, data, err="malformed"):
        self.d = bytes(data)
        self.i = 0
        self.err = err

    def remaining(self):
        return len(self.d) - self.i

    def take(self, n, what="field"):
        if n < 0 or self.remaining() < n:
            fail(self.err, f"truncated {what}")
        out = self.d[self.i:self.i + n]
        self.i += n
        return out

    def byte(self, what="byte"):
        return self.take(1, what)[0]

    def varint(self, what="varint"):
        value = 0
        for k in range(5):
            if self.remaining() < 1:
                fail(self.err, f"truncated {what} (invalid encoding)")
            b = self.d[self.i]
            self.i += 1
            value |= (b & 0x7F) << (7 * k)
            if not b & 0x80:
                if k > 0 and b == 0:
                    fail(self.err, f"non-canonical {what} (invalid encoding)")
                if value >= 2 ** 32:
                    fail(self.err, f"{what} >= 2^32 (invalid encoding)")
                return value
        fail(self.err, f"{what} longer than 5 bytes (invalid encoding)")

    def key(self, what="key"):
        k = self.take(32, what)
        if not canonical_key(k):
            fail(self.err, f"non-canonical {what} (invalid key)")
        return k

    def rest(self):
        out = self.d[self.i:]
        self.i = len(self.d)
        return out


def canonical_key(k):
    return len(k) == 32 and not (k[31] & 0x80) and int.from_bytes(k, "little") < P


def clamp(k):
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return bytes(k)


def x25519_base(priv):
    return sodium.crypto_scalarmult_base(clamp(priv))


def DH(priv, pub):
    """X25519; returns None for an all-zero result (README: MUST be rejected)."""
    try:
        out = sodium.crypto_scalarmult(clamp(priv), pub)
    except nacl.exceptions.RuntimeError:
        return None  # libsodium refuses low-order points (all-zero result)
    except Exception:
        return None
    if out == bytes(32):
        return None
    return out


def hmac256(k, m):
    return hmac.new(k, m, hashlib.sha256).digest()


def HKDF(ikm, salt, info, length):
    if not salt:
        salt = bytes(32)
    prk = hmac256(salt, ikm)
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac256(prk, t + info + bytes([i]))
        out += t
        i += 1
    return out[:length]


def aead_seal(key, nonce, msg, ad):
    return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, ad, nonce, key)


def aead_open(key, nonce, ct, ad):
    """Returns the plaintext or None."""
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, ad, nonce, key)
    except nacl.exceptions.CryptoError:
        return None


def strip05(hexkey):
    """A public key of a session file: 33 bytes, 05 || u (vectors.md §1)."""
    b = bytes.fromhex(hexkey)
    if len(b) != 33 or b[0] != 0x05:
        raise AssertionError(f"session public key not in the 33-byte 05 || u form: {hexkey}")
    return b[1:]


def key32(hexkey):
    """A public key of the envelope file: 32 bytes u (envelope.md §10)."""
    b = bytes.fromhex(hexkey)
    if len(b) != 32:
        raise AssertionError(f"envelope public key not 32 bytes: {hexkey}")
    return b


# ---------------------------------------------------------------------------
# Edwards25519 arithmetic (for XEdDSA), extended coordinates, Python ints
# ---------------------------------------------------------------------------

D = (-121665 * pow(121666, P - 2, P)) % P
D2 = (2 * D) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def inv(a):
    return pow(a, P - 2, P)  # inv(0) = 0, as in XEdDSA §2.1


def recover_x(y, sign):
    """x with the given parity for y, or None if (y^2-1)/(dy^2+1) is not a square."""
    x2 = (y * y - 1) * inv(D * y * y + 1) % P
    if x2 == 0:
        return 0 if sign == 0 else None
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


BY = 4 * inv(5) % P
BX = recover_x(BY, 0)
BASE = (BX, BY, 1, BX * BY % P)
IDENT = (0, 1, 1, 0)


def pt_add(p1, p2):
    X1, Y1, Z1, T1 = p1
    X2, Y2, Z2, T2 = p2
    a = (Y1 - X1) * (Y2 - X2) % P
    b = (Y1 + X1) * (Y2 + X2) % P
    c = T1 * D2 * T2 % P
    d = Z1 * 2 * Z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def pt_neg(pt):
    X, Y, Z, T = pt
    return ((-X) % P, Y, Z, (-T) % P)


def pt_mul(n, pt):
    acc = IDENT
    while n:
        if n & 1:
            acc = pt_add(acc, pt)
        pt = pt_add(pt, pt)
        n >>= 1
    return acc


def pt_encode(pt):
    X, Y, Z, _ = pt
    zi = inv(Z)
    x, y = X * zi % P, Y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def pt_from_xy(x, y):
    return (x, y, 1, x * y % P)


def le(b):
    return int.from_bytes(b, "little")


def sha512(*parts):
    h = hashlib.sha512()
    for part in parts:
        h.update(part)
    return h.digest()


HASH1_PREFIX = b"\xfe" + b"\xff" * 31  # XEdDSA §2.5: hash_1 = hash(2^b - 1 - 1 || X)


def xeddsa_sign(k, msg, Z):
    """XEdDSA specification form (calculate_key_pair + xeddsa_sign)."""
    kk = le(k)
    E = pt_encode(pt_mul(kk, BASE))
    A = bytearray(E)
    A[31] &= 0x7F
    a = (-kk) % Q if E[31] & 0x80 else kk % Q
    a_b = a.to_bytes(32, "little")
    r = le(sha512(HASH1_PREFIX, a_b, msg, Z)) % Q
    R = pt_encode(pt_mul(r, BASE))
    h = le(sha512(R, bytes(A), msg)) % Q
    s = (r + h * a) % Q
    return R + s.to_bytes(32, "little")


def _small_order_ys():
    """The y-coordinates (mod p) of the 8 Edwards points of order 1, 2, 4 and 8.

    Derived from the curve, not copied from a table: order 1 and 2 are (0, 1), (0, -1); order
    4 is (+-sqrt(-1), 0); an order-8 point T doubles to an order-4 point, y(2T) = 0, i.e.
    (y^2 + x^2) / (1 - d x^2 y^2) = 0, so x^2 = -y^2, and the curve equation
    -x^2 + y^2 = 1 + d x^2 y^2 becomes d y^4 + 2 y^2 - 1 = 0: y^2 = (-1 +- sqrt(1 + d)) / d."""
    ys = {0, 1, P - 1}
    for r in _sqrts(1 + D):
        for y in _sqrts((r - 1) * inv(D)):
            x = recover_x(y, 0)
            if x is not None:
                ys.add(y)
    return ys


def _sqrts(a):
    """Both square roots of a mod p (empty if a is not a square)."""
    a %= P
    if a == 0:
        return [0]
    x = pow(a, (P + 3) // 8, P)
    if (x * x - a) % P:
        x = x * SQRT_M1 % P
    if (x * x - a) % P:
        return []
    return [x, P - x]


SMALL_ORDER_Y = _small_order_ys()
# Every 255-bit encoding of a small-order point, sign bit ignored: y and, where it is still
# below 2^255, y + p (README.md "Signatures" check 2: "in any of their encodings").
SMALL_ORDER_Y_ENCODINGS = SMALL_ORDER_Y | {y + P for y in SMALL_ORDER_Y if y + P < 2 ** 255}


def is_prime_order(u_bytes):
    """README.md "prime-order key": y = (u - 1)/(u + 1) decodes to a curve point P (either sign
    of x) that is not of small order and has [L]P = O.  u = p - 1 is not prime-order."""
    u = le(u_bytes)
    if u % P == P - 1:
        return False
    y = (u - 1) * inv(u + 1) % P
    x = recover_x(y, 0)
    if x is None or y in SMALL_ORDER_Y:  # twist (no x), or small order
        return False
    return pt_encode(pt_mul(Q, pt_from_xy(x, y))) == pt_encode(IDENT)  # not torsioned


def verify(u_bytes, msg, sig, form):
    """README.md "Signatures", "Verification": form is "spec" (certificates) or "libsignal"
    (signed prekeys).  Returns True or False."""
    if len(sig) != 64 or len(u_bytes) != 32:
        return False
    u = le(u_bytes)
    s_bytes = bytearray(sig[32:])
    if form == "spec":
        if u >= P or s_bytes[31] & 0xE0:
            return False
        sign = 0
    elif form == "libsignal":
        u &= 2 ** 255 - 1
        sign = s_bytes[31] >> 7
        s_bytes[31] &= 0x7F
    else:
        raise ValueError(form)
    y = (u - 1) * inv(u + 1) % P  # inv(0) = 0: u = p - 1 gives y = 0
    R, s = sig[:32], le(s_bytes)
    # 1. s >= L
    if s >= Q:
        return False
    # 2. R of small order, in any encoding
    if le(R) & (2 ** 255 - 1) in SMALL_ORDER_Y_ENCODINGS:
        return False
    # 3. A does not decode (no x, or x = 0 with sign 1), or A of small order
    x = recover_x(y, sign)
    if x is None or y in SMALL_ORDER_Y:
        return False
    A = pt_from_xy(x, y)
    A_enc = (y | (sign << 255)).to_bytes(32, "little")
    # 4. the equation, byte for byte, no cofactor
    h = le(sha512(R, A_enc, msg)) % Q
    return pt_encode(pt_add(pt_mul(s, BASE), pt_neg(pt_mul(h, A)))) == R


def xeddsa_verify(u_bytes, msg, sig):
    """The specification verifier (certificates, envelope.md §4.2)."""
    return verify(u_bytes, msg, sig, "spec")


def libsignal_sign(k, msg, Z):
    """libsignal's form (README.md "Signatures"): the raw clamped k in the nonce hash and as the
    scalar, A with its real sign bit, carried in bit 7 of byte 63."""
    kk = le(k)
    A = pt_encode(pt_mul(kk, BASE))
    r = le(sha512(HASH1_PREFIX, k, msg, Z)) % Q
    R = pt_encode(pt_mul(r, BASE))
    h = le(sha512(R, A, msg)) % Q
    s = (r + h * kk) % Q
    sig = bytearray(R + s.to_bytes(32, "little"))
    sig[63] = (sig[63] & 0x7F) | (A[31] & 0x80)
    return bytes(sig)


def libsignal_verify(u_bytes, msg, sig):
    """The libsignal-compatible verifier (signed prekeys, hush-1.md §3)."""
    return verify(u_bytes, msg, sig, "libsignal")


# ---------------------------------------------------------------------------
# hush-1 sessions (hush-1.md)
# ---------------------------------------------------------------------------

X3DH_INFO = b"hush-1/x3dh"
ROOT_INFO = b"hush-1/root"
MESSAGE_KEYS_INFO = b"hush-1/message-keys"
AD_LABEL = b"hush-1/message"
MSG_TYPE = 0x11
PREKEY_TYPE = 0x12
MAX_SKIP = 2000
MAX_SKIPPED_PER_CHAIN = 2000
MAX_RECV_CHAINS = 5
MAX_ARCHIVED = 40


def chain_step(ck):
    seed = hmac256(ck, b"\x01")
    material = HKDF(seed, bytes(32), MESSAGE_KEYS_INFO, 56)
    return material[:32], material[32:56], hmac256(ck, b"\x02")


def dh_or_malformed(priv, pub, what):
    out = DH(priv, pub)
    if out is None:
        fail("malformed", f"low-order key in {what}")
    return out


class Chain:
    def __init__(self, T, ck, n=0):
        self.T = T
        self.ck = ck
        self.n = n
        self.skipped = OrderedDict()  # counter -> (key, nonce)


class State:
    def __init__(self):
        self.suite = "hush-1"
        self.local_ik = None
        self.remote_ik = None
        self.local_reg = None
        self.remote_reg = None
        self.base_key = None  # Alice's EK_A.pub, on both sides
        self.rk = None
        self.send_priv = None
        self.send_pub = None
        self.cks = None
        self.ns = 0
        self.pn = 0
        self.recv = []  # oldest first
        self.pending = None  # (opk id or None, spk id, EK_A.pub)


class Record:
    def __init__(self, current):
        self.current = current
        self.archived = []  # most recently archived first

    def push_new(self, state):
        self.archived.insert(0, self.current)
        del self.archived[MAX_ARCHIVED:]
        self.current = state


class Party:
    def __init__(self, js):
        self.name = js["name"]
        self.address = (js["address"]["name"], js["address"]["device_id"])
        self.reg = js["registration_id"]
        self.ik_priv = bytes.fromhex(js["identity_key"]["private"])
        self.ik_pub = strip05(js["identity_key"]["public"])
        self.spks = {s["id"]: (bytes.fromhex(s["private"]), strip05(s["public"]))
                     for s in js["signed_prekeys"]}
        self.opks = {o["id"]: (bytes.fromhex(o["private"]), strip05(o["public"]))
                     for o in js["one_time_prekeys"]}
        self.identities = {}  # address -> identity key (trust on first use)
        self.records = {}  # address -> Record

    def trusted(self, address, ik):
        known = self.identities.get(address)
        return known is None or known == ik


# ---- parsing (§7.1) ----

def check_type(b, expected):
    hi, lo = b >> 4, b & 0x0F
    if hi == 1:
        if lo != (expected & 0x0F):
            fail("malformed", f"unexpected type 0x{b:02x}")
        return
    if hi == 3:
        fail("invalid_version", "suite_mismatch: Signal v3 message")
    fail("invalid_version", f"unknown format nibble in 0x{b:02x}")


def parse_message(data):
    if len(data) == 0:
        fail("malformed", "too short (empty)")
    check_type(data[0], MSG_TYPE)
    if len(data) < 51:
        fail("malformed", "too short")
    r = Reader(data)
    r.byte()
    T = r.key("ratchet key")
    counter = r.varint("counter")
    pn = r.varint("previous counter")
    header = data[:r.i]
    body = r.rest()
    if len(body) < 16:
        fail("malformed", "too short (body)")
    return {"T": T, "counter": counter, "pn": pn, "header": header, "body": body}


def parse_prekey_message(data):
    if len(data) == 0:
        fail("malformed", "too short (empty)")
    check_type(data[0], PREKEY_TYPE)
    r = Reader(data)
    r.byte()
    flags = r.byte("flags")
    if flags & ~0x01:
        fail("malformed", "unknown flag bits")
    opk_id = r.varint("one-time prekey id") if flags & 1 else None
    spk_id = r.varint("signed prekey id")
    reg_id = r.varint("registration id")
    base_key = r.key("base key")
    ik = r.key("identity key")
    prefix = data[:r.i]
    rest = r.rest()
    if not rest:
        fail("malformed", "missing field 4 (message)")
    inner = parse_message(rest)
    return {"opk_id": opk_id, "spk_id": spk_id, "reg_id": reg_id, "base_key": base_key,
            "ik": ik, "prefix": prefix, "inner": inner}


# ---- session start (§4) ----

def x3dh_alice(ik_priv, ek_priv, ik_b, spk_b, opk_b):
    parts = [dh_or_malformed(ik_priv, spk_b, "DH1"), dh_or_malformed(ek_priv, ik_b, "DH2"),
             dh_or_malformed(ek_priv, spk_b, "DH3")]
    if opk_b is not None:
        parts.append(dh_or_malformed(ek_priv, opk_b, "DH4"))
    out = HKDF(b"\xff" * 32 + b"".join(parts), bytes(32), X3DH_INFO, 64)
    return out[:32], out[32:]


def verify_spk_signature(ik_pub, spk_pub, sig):
    msg = b"\x05" + spk_pub
    return libsignal_verify(ik_pub, msg, sig)  # accepts both forms (hush-1.md §3)


def process_bundle(alice, bob_address, bundle, draws):
    """draws: callable returning the next 32 random bytes."""
    ik_b = strip05(bundle["identity_key"])
    if not alice.trusted(bob_address, ik_b):
        fail("untrusted_identity")
    if bundle.get("signed_prekey") is None:
        # hush-1.md §8: invalid_bundle, "reported as malformed in vectors" (REVIEW.md F1).
        fail("malformed", "invalid_bundle: no signed prekey")
    spk_b = strip05(bundle["signed_prekey"])
    if not verify_spk_signature(ik_b, spk_b, bytes.fromhex(bundle["signed_prekey_signature"])):
        fail("bad_signature")
    opk_b = strip05(bundle["one_time_prekey"]) if bundle.get("one_time_prekey") else None
    # §4 step 3: prime-order bundle keys, before the draws.
    for k, what in ((ik_b, "identity key"), (spk_b, "signed prekey"), (opk_b, "one-time prekey")):
        if k is not None and not is_prime_order(k):
            fail("malformed", f"bundle {what} not prime-order")
    ek_priv = clamp(draws())
    ra_priv = clamp(draws())
    ek_pub = x25519_base(ek_priv)
    rk0, ck0 = x3dh_alice(alice.ik_priv, ek_priv, ik_b, spk_b, opk_b)
    out = HKDF(dh_or_malformed(ra_priv, spk_b, "root step"), rk0, ROOT_INFO, 64)
    st = State()
    st.local_ik, st.remote_ik = alice.ik_pub, ik_b
    st.local_reg, st.remote_reg = alice.reg, bundle["registration_id"]
    st.base_key = ek_pub
    st.rk, st.cks = out[:32], out[32:]
    st.send_priv, st.send_pub, st.ns, st.pn = ra_priv, x25519_base(ra_priv), 0, 0
    st.recv = [Chain(spk_b, ck0, 0)]
    st.pending = (bundle.get("one_time_prekey_id") if opk_b is not None else None,
                  bundle["signed_prekey_id"], ek_pub)
    rec = alice.records.get(bob_address)
    if rec is None:
        alice.records[bob_address] = Record(st)
    else:
        rec.push_new(st)
    alice.identities[bob_address] = ik_b
    return ek_pub, st.send_pub


# ---- sending (§6) ----

def encrypt(party, address, plaintext):
    rec = party.records.get(address)
    if rec is None:
        fail("no_session")
    st = rec.current
    if not party.trusted(address, st.remote_ik):  # §6 step 2
        fail("untrusted_identity")
    if st.ns >= 2 ** 32 - 1:  # §6 step 3
        fail("chain_exhausted", f"sending chain index {st.ns}")
    header = bytes([MSG_TYPE]) + st.send_pub + varint(st.ns) + varint(st.pn)
    prefix = b""
    if st.pending is not None:
        opk_id, spk_id, ek_pub = st.pending
        prefix = bytes([PREKEY_TYPE, 0x01 if opk_id is not None else 0x00])
        if opk_id is not None:
            prefix += varint(opk_id)
        prefix += varint(spk_id) + varint(st.local_reg) + ek_pub + st.local_ik
    ad = AD_LABEL + st.local_ik + st.remote_ik + prefix + header
    key, nonce, next_ck = chain_step(st.cks)
    body = aead_seal(key, nonce, plaintext, ad)
    info = {"counter": st.ns, "previous_counter": st.pn, "ratchet_key": st.send_pub,
            "type": "hush-prekey" if prefix else "hush"}
    st.cks, st.ns = next_ck, st.ns + 1
    return prefix + header + body, info


# ---- receiving (§7.2) ----

class RatchetDraw:
    """R' for one decryption: drawn at most once, shared by every state tried."""

    def __init__(self, listed):
        self.listed = listed
        self.value = None

    def get(self):
        if self.value is None:
            if self.listed is not None:
                self.value = self.listed
            else:
                # Not listed: the step must fail, or succeed without a ratchet.
                self.value = clamp(os.urandom(32))
        return self.value


def decrypt_on_state(st, msg, prefix, rdraw):
    """Runs §7.2 steps 1-4b on (a copy of) a state; returns (plaintext, ratcheted)."""
    if st.suite != "hush-1":  # step 1
        fail("invalid_version", "suite_mismatch")
    T, c = msg["T"], msg["counter"]
    chain = next((ch for ch in st.recv if ch.T == T), None)
    ratcheted = False
    if chain is None:  # step 2: the receiving half of the DH ratchet step
        out = HKDF(dh_or_malformed(st.send_priv, T, "ratchet"), st.rk, ROOT_INFO, 64)
        st.rk, ckr = out[:32], out[32:]
        r_priv = rdraw.get()
        chain = Chain(T, ckr, 0)
        st.recv.append(chain)
        del st.recv[:-MAX_RECV_CHAINS]
        ratcheted = True
    if c < chain.n:  # step 3
        mk = chain.skipped.pop(c, None)
        if mk is None:
            fail("duplicate_message", f"counter {c}")
        key, nonce = mk
    else:
        if c - chain.n > MAX_SKIP:
            fail("too_far_in_future", f"counter {c}, chain index {chain.n}")
        if c == 2 ** 32 - 1:
            fail("chain_exhausted", f"counter {c}")
        ck = chain.ck
        for i in range(chain.n, c):
            k, n, ck = chain_step(ck)
            chain.skipped[i] = (k, n)
            while len(chain.skipped) > MAX_SKIPPED_PER_CHAIN:
                chain.skipped.popitem(last=False)
        key, nonce, ck = chain_step(ck)
        chain.ck, chain.n = ck, c + 1
    ad = AD_LABEL + st.remote_ik + st.local_ik + prefix + msg["header"]
    pt = aead_open(key, nonce, msg["body"], ad)  # step 4
    if pt is None:
        fail("bad_mac")
    if ratcheted:  # step 4b: T prime-order, then the sending half
        if not is_prime_order(T):
            fail("malformed", "ratchet key not prime-order")
        out = HKDF(dh_or_malformed(r_priv, T, "ratchet"), st.rk, ROOT_INFO, 64)
        st.rk, cks = out[:32], out[32:]
        st.pn = max(st.ns - 1, 0)
        st.send_priv, st.send_pub, st.cks, st.ns = r_priv, x25519_base(r_priv), cks, 0
    return pt, ratcheted


def decrypt_with_record(rec, msg, prefix, rdraw):
    """§7.2 'which state decrypts'. Works on copies; returns (new record, pt, ratcheted)."""
    states = [rec.current] + rec.archived
    errors = []
    for idx, state in enumerate(states):
        st = copy.deepcopy(state)
        try:
            pt, ratcheted = decrypt_on_state(st, msg, prefix, rdraw)
        except ProtocolError as e:
            if e.name == "duplicate_message":
                raise
            errors.append(e)
            continue
        st.pending = None
        new = Record(rec.current)
        new.archived = list(rec.archived)
        if idx == 0:
            new.current = st
        else:
            del new.archived[idx - 1]
            new.archived.insert(0, rec.current)
            del new.archived[MAX_ARCHIVED:]
            new.current = st
        return new, pt, ratcheted
    for e in errors:
        if e.name == "invalid_version":
            raise e
    for e in errors:
        if e.name == "too_far_in_future":
            raise e
    raise errors[0]


def decrypt_message(party, sender_address, data, rdraw):
    msg = parse_message(data)
    rec = party.records.get(sender_address)
    if rec is None:
        fail("no_session")
    new, pt, ratcheted = decrypt_with_record(rec, msg, b"", rdraw)
    party.records[sender_address] = new
    return pt, ratcheted


def decrypt_prekey_message(party, sender_address, data, rdraw):
    pm = parse_prekey_message(data)
    if not party.trusted(sender_address, pm["ik"]):
        fail("untrusted_identity")
    rec = party.records.get(sender_address)
    match = None if rec is None else next(
        (s for s in [rec.current] + rec.archived if s.base_key == pm["base_key"]), None)
    used_opk = None
    built = False
    if match is not None:  # §7.3 step 3
        if match.remote_ik != pm["ik"]:
            fail("bad_mac", "existing state for this base key has another remote identity")
        work = rec
    else:
        spk = party.spks.get(pm["spk_id"])
        if spk is None:
            fail("unknown_prekey", f"signed prekey {pm['spk_id']}")
        opk = None
        if pm["opk_id"] is not None:
            opk = party.opks.get(pm["opk_id"])
            if opk is None:
                fail("unknown_prekey", f"one-time prekey {pm['opk_id']}")
            used_opk = pm["opk_id"]
        ik_a, ek_a = pm["ik"], pm["base_key"]
        parts = [dh_or_malformed(spk[0], ik_a, "DH1"), dh_or_malformed(party.ik_priv, ek_a, "DH2"),
                 dh_or_malformed(spk[0], ek_a, "DH3")]
        if opk is not None:
            parts.append(dh_or_malformed(opk[0], ek_a, "DH4"))
        out = HKDF(b"\xff" * 32 + b"".join(parts), bytes(32), X3DH_INFO, 64)
        st = State()
        st.local_ik, st.remote_ik = party.ik_pub, ik_a
        st.local_reg, st.remote_reg = party.reg, pm["reg_id"]
        st.base_key = ek_a
        st.rk = out[:32]
        st.send_priv, st.send_pub, st.cks, st.ns, st.pn = spk[0], spk[1], out[32:], 0, 0
        st.recv = []
        built = True
        if rec is None:
            work = Record(st)
        else:
            work = Record(rec.current)
            work.archived = list(rec.archived)
            work.push_new(st)
    new, pt, ratcheted = decrypt_with_record(work, pm["inner"], pm["prefix"], rdraw)
    if built:  # §7.3 step 5: field 2, then field 3, prime-order
        for k, what in ((pm["base_key"], "base key"), (pm["ik"], "identity key")):
            if not is_prime_order(k):
                fail("malformed", f"{what} not prime-order")
    party.records[sender_address] = new
    party.identities[sender_address] = pm["ik"]
    if used_opk is not None:
        del party.opks[used_opk]
    return pt, ratcheted


# ---- replay ----

def fingerprint(party):
    """Everything a failed operation must leave unchanged (hush-1.md §8)."""
    def st(x):
        return (x.suite, x.local_ik, x.remote_ik, x.local_reg, x.remote_reg, x.base_key, x.rk,
                x.send_priv, x.cks, x.ns, x.pn, x.pending,
                tuple((c.T, c.ck, c.n, tuple(c.skipped.items())) for c in x.recv))
    return (tuple(sorted(party.identities.items())), tuple(sorted(party.opks.items())),
            tuple(sorted((a, st(r.current), tuple(st(x) for x in r.archived))
                         for a, r in party.records.items())))


def load_pending():
    """Vector cases for rules this implementation does not implement yet (pending.txt, kept by
    the maintainers, not by the spec reading): a failure there is reported as PENDING, not
    counted as a failure."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pending.txt")
    pending = {}
    if os.path.exists(path):
        for line in open(path):
            line = line.split("#", 1)[0].strip()
            if line:
                f, case = line.split(None, 1)
                pending.setdefault(f, set()).add(case.strip())
    return pending


PENDING = load_pending()


class Tally:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.pending = 0
        self.notes = []

    def is_pending(self, what):
        cases = PENDING.get(self.name, ())
        return "*" in cases or any(what == c or what.startswith(c + ":") for c in cases)

    def check(self, ok, what):
        if ok:
            self.passed += 1
            if VERBOSE:
                print(f"  ok    {what}")
        elif self.is_pending(what):
            self.pending += 1
            print(f"  PENDING  {self.name}: {what}")
        else:
            self.failed += 1
            self.notes.append(what)
            print(f"  FAIL  {self.name}: {what}")


def replay_session(path, tally):
    js = json.load(open(path))
    tally.check(js.get("format") == "hush-session-vectors/1" and js.get("suite") == "hush-1",
                "format/suite fields")
    parties = {p["name"]: Party(p) for p in js["parties"]}
    pjs = {p["name"]: p for p in js["parties"]}

    # Static material: public keys and signed prekey signatures (libsignal form, §3).
    for name, pj in pjs.items():
        pa = parties[name]
        tally.check(x25519_base(pa.ik_priv) == pa.ik_pub, f"{name}: identity public key")
        for s in pj["signed_prekeys"]:
            priv, pub = bytes.fromhex(s["private"]), strip05(s["public"])
            tally.check(x25519_base(priv) == pub, f"{name}: signed prekey {s['id']} public key")
            sig = libsignal_sign(pa.ik_priv, b"\x05" + pub, bytes.fromhex(s["signature_random"]))
            tally.check(sig.hex() == s["signature"],
                        f"{name}: signed prekey {s['id']} signature reproduced (libsignal form)")
            tally.check(verify_spk_signature(pa.ik_pub, pub, sig),
                        f"{name}: signed prekey {s['id']} signature verifies")
        for o in pj["one_time_prekeys"]:
            tally.check(x25519_base(bytes.fromhex(o["private"])) == strip05(o["public"]),
                        f"{name}: one-time prekey {o['id']} public key")

    # vectors.md §1: every listed private key is already clamped (parties' keys and the draws
    # listed as key pairs: base_key, ratchet_key, new_ratchet_key).
    privs = [pj["identity_key"]["private"] for pj in pjs.values()]
    privs += [k["private"] for pj in pjs.values() for k in pj["signed_prekeys"] + pj["one_time_prekeys"]]
    privs += [s[f]["private"] for s in js["steps"] for f in ("base_key", "ratchet_key", "new_ratchet_key")
              if isinstance(s.get(f), dict)]
    tally.check(all(clamp(bytes.fromhex(k)) == bytes.fromhex(k) for k in privs),
                f"all {len(privs)} listed private keys are clamped")

    steps = js["steps"]
    for s in steps:
        sid = f"step {s['step']} {s['op']} {s['who']}->{s.get('peer')}"
        who = parties[s["who"]]
        peer = parties[s["peer"]]
        op = s["op"]
        try:
            if op == "process_bundle":
                queue = []
                if s.get("base_key"):
                    queue = [bytes.fromhex(s["base_key"]["private"]),
                             bytes.fromhex(s["ratchet_key"]["private"])]

                def draws():
                    if not queue:
                        raise AssertionError("random draw not listed in the vector")
                    return queue.pop(0)
                before = fingerprint(who)
                try:
                    ek_pub, ra_pub = process_bundle(who, peer.address, s["bundle"], draws)
                except ProtocolError as e:
                    tally.check(s["expect"] == "error" and s.get("error") == e.name,
                                f"{sid}: got error {e}, expected {s.get('error', 'ok')}")
                    tally.check(fingerprint(who) == before, f"{sid}: failure changed no state")
                    # vectors.md §4: the draws are listed exactly when they happened (a refusal
                    # after the draws lists both; one before them lists neither).
                    tally.check(not queue, f"{sid}: listed draws made before the refusal")
                    continue
                ok = (s["expect"] == "ok" and ek_pub == strip05(s["base_key"]["public"])
                      and ra_pub == strip05(s["ratchet_key"]["public"]) and not queue)
                tally.check(ok, f"{sid}: session started")
            elif op == "encrypt":
                ct, info = encrypt(who, peer.address, bytes.fromhex(s["plaintext"]))
                tally.check(ct.hex() == s["ciphertext"], f"{sid}: ciphertext byte for byte")
                tally.check(info["counter"] == s["counter"]
                            and info["previous_counter"] == s["previous_counter"]
                            and info["ratchet_key"] == strip05(s["ratchet_key"])
                            and info["type"] == s["type"], f"{sid}: header fields and type")
            elif op == "decrypt":
                data = bytes.fromhex(s["ciphertext"] if "ciphertext" in s
                                     else steps[s["of_step"]]["ciphertext"])
                listed = s.get("new_ratchet_key")
                rdraw = RatchetDraw(bytes.fromhex(listed["private"]) if listed else None)
                before = fingerprint(who)
                try:
                    if s["type"] == "hush-prekey":
                        pt, ratcheted = decrypt_prekey_message(who, peer.address, data, rdraw)
                    elif s["type"] == "hush":
                        pt, ratcheted = decrypt_message(who, peer.address, data, rdraw)
                    else:
                        raise AssertionError(f"unknown message type {s['type']}")
                except ProtocolError as e:
                    tally.check(s["expect"] == "error" and s.get("error") == e.name,
                                f"{sid}: got error {e}, expected {s.get('error', 'ok')}")
                    tally.check(fingerprint(who) == before, f"{sid}: failure changed no state")
                    continue
                ok = s["expect"] == "ok" and pt.hex() == s["plaintext"]
                tally.check(ok, f"{sid}: plaintext (got {pt.hex()}, expected "
                                f"{s.get('plaintext', s.get('error'))})")
                tally.check(ratcheted == (listed is not None)
                            and (listed is None
                                 or x25519_base(bytes.fromhex(listed["private"]))
                                 == strip05(listed["public"])),
                            f"{sid}: DH ratchet step iff new_ratchet_key listed")
            else:
                tally.check(False, f"{sid}: unknown op {op}")
        except (AssertionError, ProtocolError) as e:
            tally.check(False, f"{sid}: {e}")


# ---------------------------------------------------------------------------
# Envelopes (envelope.md)
# ---------------------------------------------------------------------------

SERVER_CERT_LABEL = b"hush-1/server-certificate"
SENDER_CERT_LABEL = b"hush-1/sender-certificate"
EPHEMERAL_INFO = b"hush-1/envelope/ephemeral"
STATIC_INFO = b"hush-1/envelope/static"
MULTI_EPHEMERAL_INFO = b"hush-1/envelope/multi/ephemeral"
MULTI_STATIC_INFO = b"hush-1/envelope/multi/static"
ZERO_NONCE = bytes(24)
CERT_VERSION = 0x02  # certificate format 2 (envelope.md §3)
SEALED = 0xE1
MULTI = 0xE2
DELIVERED = 0xE3


def padme(L):
    if L < 2:
        return L
    E = L.bit_length() - 1
    S = E.bit_length()  # floor(log2 E) + 1
    z = E - S
    mask = (1 << z) - 1
    return (L + mask) & ~mask


def server_cert_content(key_id, server_pub, expiration):
    return bytes([CERT_VERSION]) + varint(key_id) + server_pub + expiration.to_bytes(8, "big")


def make_server_cert(root_priv, key_id, server_pub, expiration, Z):
    content = server_cert_content(key_id, server_pub, expiration)
    return content + xeddsa_sign(root_priv, SERVER_CERT_LABEL + content, Z)


def sender_cert_content(sender_id, device_id, ik_pub, expiration, server_cert):
    sid = sender_id.encode("utf-8")
    return (bytes([CERT_VERSION]) + varint(len(sid)) + sid + varint(device_id) + ik_pub
            + expiration.to_bytes(8, "big") + server_cert)


def make_sender_cert(server_priv, sender_id, device_id, ik_pub, expiration, server_cert, Z):
    content = sender_cert_content(sender_id, device_id, ik_pub, expiration, server_cert)
    return content + xeddsa_sign(server_priv, SENDER_CERT_LABEL + content, Z)


def parse_server_cert(r):
    start = r.i
    if r.byte("version") != CERT_VERSION:
        fail("malformed_certificate", "server certificate version")
    key_id = r.varint("key id")
    key = r.key("server key")
    expiration = int.from_bytes(r.take(8, "server expiration"), "big")
    content = r.d[start:r.i]
    sig = r.take(64, "server signature")
    return {"key_id": key_id, "key": key, "expiration": expiration, "content": content, "sig": sig}


def parse_sender_cert(data):
    r = Reader(data, err="malformed_certificate")
    if r.byte("version") != CERT_VERSION:
        fail("malformed_certificate", "version")
    n = r.varint("sender id length")
    if not 1 <= n <= 255:
        fail("malformed_certificate", "sender id length")
    raw = r.take(n, "sender id")
    try:
        sender_id = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail("malformed_certificate", "sender id UTF-8")
    device_id = r.varint("device id")
    ik = r.key("identity key")
    expiration = int.from_bytes(r.take(8, "expiration"), "big")
    server = parse_server_cert(r)
    content = data[:r.i]
    sig = r.take(64, "signature")
    if r.remaining():
        fail("malformed_certificate", "trailing bytes")
    return {"sender_id": sender_id, "device_id": device_id, "ik": ik, "expiration": expiration,
            "server": server, "content": content, "sig": sig}


def validate_sender_cert(cert, trust_root, revoked, now):
    srv = cert["server"]
    if srv["key_id"] in revoked:
        fail("revoked_server_key", str(srv["key_id"]))
    if not xeddsa_verify(trust_root, SERVER_CERT_LABEL + srv["content"], srv["sig"]):
        fail("bad_server_signature")
    if now >= srv["expiration"]:
        fail("server_certificate_expired")
    if not xeddsa_verify(srv["key"], SENDER_CERT_LABEL + cert["content"], cert["sig"]):
        fail("bad_sender_signature")
    if now >= cert["expiration"]:
        fail("expired")


def make_content(content_type, cert, message):
    content = bytes([content_type]) + varint(len(cert)) + cert + varint(len(message)) + message
    return content + bytes(padme(len(content)) - len(content))


def parse_content(padded):
    r = Reader(padded)
    ctype = r.byte("content type")
    if ctype == 0:
        fail("malformed", "content type 0")
    cert = r.take(r.varint("certificate length"), "certificate")
    message = r.take(r.varint("message length"), "message")
    unpadded = r.i
    if len(padded) != padme(unpadded) or any(padded[unpadded:]):
        fail("malformed", "padding")
    return ctype, cert, message


def seal(sender_priv, sender_pub, recipient_pub, content_type, cert, message, e_priv,
         enforce_identity=True):
    if enforce_identity and parse_sender_cert(cert)["ik"] != sender_pub:
        fail("identity_mismatch", "refusing to seal with another identity's certificate")
    padded = make_content(content_type, cert, message)
    e_priv = clamp(e_priv)
    e_pub = x25519_base(e_priv)
    L = 32 + 48 + len(padded) + 16
    header = bytes([SEALED]) + varint(L) + e_pub
    dh_e = DH(e_priv, recipient_pub)
    if dh_e is None:
        fail("invalid_key")
    ke_ck = HKDF(dh_e, bytes(32), EPHEMERAL_INFO + e_pub + recipient_pub, 64)
    sender_box = aead_seal(ke_ck[:32], ZERO_NONCE, sender_pub, header)
    dh_s = DH(sender_priv, recipient_pub)
    if dh_s is None:
        fail("invalid_key")
    k_s = HKDF(dh_s, ke_ck[32:], STATIC_INFO + sender_box, 32)
    content_box = aead_seal(k_s, ZERO_NONCE, padded, header + sender_box)
    return header + sender_box + content_box


def finish_open(padded, claimed_ik, trust_root, revoked, now):
    ctype, cert_bytes, message = parse_content(padded)
    cert = parse_sender_cert(cert_bytes)
    validate_sender_cert(cert, trust_root, revoked, now)
    if cert["ik"] != claimed_ik:
        fail("identity_mismatch")
    return {"sender_id": cert["sender_id"], "device_id": cert["device_id"],
            "identity_key": cert["ik"], "content_type": ctype, "message": message}


def open_sealed(data, r_priv, r_pub, trust_root, revoked, now):
    if len(data) == 0:
        fail("malformed", "empty")
    if data[0] != SEALED:
        fail("unsupported_version", f"0x{data[0]:02x}")
    r = Reader(data)
    r.byte()
    L = r.varint("length")
    if r.remaining() < L:
        fail("malformed", "truncated")
    if r.remaining() > L:
        fail("malformed", "trailing bytes")
    e_pub = r.key("ephemeral key")
    header = data[:r.i]
    if r.remaining() < 48 + 16:
        fail("malformed", "boxes too short")
    sender_box = r.take(48)
    content_box = r.rest()
    dh_e = DH(r_priv, e_pub)
    if dh_e is None:
        fail("invalid_key")
    ke_ck = HKDF(dh_e, bytes(32), EPHEMERAL_INFO + e_pub + r_pub, 64)
    claimed = aead_open(ke_ck[:32], ZERO_NONCE, sender_box, header)
    if claimed is None:
        fail("authentication_failed", "sender box")
    if not canonical_key(claimed):
        fail("malformed", "sender key")
    dh_s = DH(r_priv, claimed)
    if dh_s is None:
        fail("invalid_key")
    k_s = HKDF(dh_s, ke_ck[32:], STATIC_INFO + sender_box, 32)
    padded = aead_open(k_s, ZERO_NONCE, content_box, header + sender_box)
    if padded is None:
        fail("authentication_failed", "content box")
    return finish_open(padded, claimed, trust_root, revoked, now)


def seal_multi(sender_priv, sender_pub, recipient_pubs, content_type, cert, message, e_priv, K):
    if not recipient_pubs:  # §5.4
        fail("malformed", "no recipients")
    if parse_sender_cert(cert)["ik"] != sender_pub:
        fail("identity_mismatch", "refusing to seal with another identity's certificate")
    padded = make_content(content_type, cert, message)
    e_priv = clamp(e_priv)
    e_pub = x25519_base(e_priv)
    payload_box = aead_seal(K, ZERO_NONCE, padded, bytes([MULTI]) + e_pub)
    H = hashlib.sha256(payload_box).digest()
    prefix = bytes([DELIVERED]) + e_pub
    headers = []
    for rp in recipient_pubs:
        dh_e = DH(e_priv, rp)
        dh_s = DH(sender_priv, rp)
        if dh_e is None or dh_s is None:
            fail("invalid_key")
        ke_ck = HKDF(dh_e, bytes(32), MULTI_EPHEMERAL_INFO + e_pub + rp, 64)
        sender_box = aead_seal(ke_ck[:32], ZERO_NONCE, sender_pub, prefix + H)
        k_s = HKDF(dh_s, ke_ck[32:], MULTI_STATIC_INFO + sender_box + H, 32)
        key_box = aead_seal(k_s, ZERO_NONCE, K, prefix + sender_box + H)
        headers.append(sender_box + key_box)
    multi = (bytes([MULTI]) + varint(len(recipient_pubs)) + e_pub + b"".join(headers)
             + varint(len(payload_box)) + payload_box)
    return multi


def server_split(multi):
    """The server's parse of the 0xE2 form and its per-recipient 0xE3 copies (envelope.md §6,
    "Parsing the 0xE2 form", in its order; nothing cryptographic is checked)."""
    if len(multi) == 0:
        fail("malformed", "empty")
    if multi[0] != MULTI:
        fail("unsupported_version", f"0x{multi[0]:02x}")
    r = Reader(multi)
    r.byte()
    n = r.varint("recipient count")
    if n < 1:
        fail("malformed", "no recipients")
    if n > r.remaining() // 96:
        fail("malformed", "more recipients than the bytes can hold")
    e_pub = r.key("ephemeral key")
    headers = [r.take(96, f"header {i + 1}") for i in range(n)]
    plen = r.varint("payload length")
    if plen < 16:
        fail("malformed", "payload box under 16 bytes")
    payload_box = r.take(plen, "payload box")
    if r.remaining():
        fail("malformed", "trailing bytes")
    L = 32 + 96 + len(payload_box)
    return [bytes([DELIVERED]) + varint(L) + e_pub + h + payload_box for h in headers]


def open_delivered(data, r_priv, r_pub, trust_root, revoked, now):
    if len(data) == 0:
        fail("malformed", "empty")
    if data[0] != DELIVERED:
        fail("unsupported_version", f"0x{data[0]:02x}")
    r = Reader(data)
    r.byte()
    L = r.varint("length")
    if r.remaining() < L:
        fail("malformed", "truncated")
    if r.remaining() > L:
        fail("malformed", "trailing bytes")
    e_pub = r.key("ephemeral key")
    if r.remaining() < 96 + 16:
        fail("malformed", "too short")
    sender_box = r.take(48)
    key_box = r.take(48)
    payload_box = r.rest()
    H = hashlib.sha256(payload_box).digest()
    prefix = bytes([DELIVERED]) + e_pub
    dh_e = DH(r_priv, e_pub)
    if dh_e is None:
        fail("invalid_key")
    ke_ck = HKDF(dh_e, bytes(32), MULTI_EPHEMERAL_INFO + e_pub + r_pub, 64)
    claimed = aead_open(ke_ck[:32], ZERO_NONCE, sender_box, prefix + H)
    if claimed is None:
        fail("authentication_failed", "sender box")
    if not canonical_key(claimed):
        fail("malformed", "sender key")
    dh_s = DH(r_priv, claimed)
    if dh_s is None:
        fail("invalid_key")
    k_s = HKDF(dh_s, ke_ck[32:], MULTI_STATIC_INFO + sender_box + H, 32)
    K = aead_open(k_s, ZERO_NONCE, key_box, prefix + sender_box + H)
    if K is None:
        fail("authentication_failed", "key box")
    padded = aead_open(K, ZERO_NONCE, payload_box, bytes([MULTI]) + e_pub)
    if padded is None:
        fail("authentication_failed", "payload box")
    return finish_open(padded, claimed, trust_root, revoked, now)


def check_envelopes(path, tally):
    js = json.load(open(path))
    tally.check(js.get("format") == "hush-envelope-vectors/2", "format field")
    root_priv = bytes.fromhex(js["trust_root"]["private"])
    root_pub = strip05(js["trust_root"]["public"])
    rogue_priv = bytes.fromhex(js["rogue_trust_root"]["private"])
    rogue_pub = strip05(js["rogue_trust_root"]["public"])
    tally.check(x25519_base(root_priv) == root_pub, "trust root public key")
    tally.check(x25519_base(rogue_priv) == rogue_pub, "rogue trust root public key")

    srv = js["server"]
    srv_priv, srv_pub = bytes.fromhex(srv["private"]), key32(srv["public"])
    tally.check(x25519_base(srv_priv) == srv_pub, "server public key")
    server_certs = {}
    cert = make_server_cert(root_priv, srv["key_id"], srv_pub, srv["expiration"], bytes.fromhex(srv["signature_random"]))
    tally.check(cert.hex() == srv["certificate"], "server certificate re-issued byte for byte")
    server_certs[srv["key_id"]] = cert
    rogue = js["rogue_server"]
    rcert = make_server_cert(rogue_priv, rogue["key_id"], srv_pub, rogue["expiration"],
                             bytes.fromhex(rogue["signature_random"]))
    tally.check(rcert.hex() == rogue["certificate"],
                "rogue server certificate re-issued byte for byte (rogue root, same server key)")
    server_certs[rogue["key_id"]] = rcert
    for c, key_pub, expect in ((cert, root_pub, True), (rcert, root_pub, False),
                               (rcert, rogue_pub, True)):
        parsed = parse_server_cert(Reader(c, "malformed_certificate"))
        ok = xeddsa_verify(key_pub, SERVER_CERT_LABEL + parsed["content"], parsed["sig"])
        tally.check(ok == expect, f"server certificate key {parsed['key_id']} verification = {expect}")

    parties = {}
    for p in js["parties"]:
        priv, pub = bytes.fromhex(p["identity_key"]["private"]), key32(p["identity_key"]["public"])
        tally.check(x25519_base(priv) == pub, f"party {p['name']} public key")
        parties[p["name"]] = (priv, pub)

    signers = {"server": srv_priv}
    if "second_server" in js:
        second = js["second_server"]
        second_priv = bytes.fromhex(second["private"])
        tally.check(x25519_base(second_priv) == key32(second["public"]), "second server public key")
        scert = make_server_cert(root_priv, second["key_id"], key32(second["public"]), second["expiration"],
                                 bytes.fromhex(second["signature_random"]))
        tally.check(scert.hex() == second["certificate"], "second server certificate re-issued byte for byte")
        server_certs[second["key_id"]] = scert
        signers["second_server"] = second_priv

    certs = {}
    for c in js["certificates"]:
        sc = server_certs[c["server_key_id"]]
        signer = c.get("signed_by", "server")
        signer_priv = signers[signer] if signer in signers else parties[signer][0]
        made = make_sender_cert(signer_priv, c["sender_id"], c["device_id"], key32(c["identity_key"]),
                                c["expiration"], sc, bytes.fromhex(c["signature_random"]))
        tally.check(made.hex() == c["certificate"], f"sender certificate {c['id']} re-issued byte for byte")
        certs[c["id"]] = bytes.fromhex(c["certificate"])

    privs = [js[k]["private"] for k in ("trust_root", "rogue_trust_root", "server", "second_server") if k in js]
    privs += [p["identity_key"]["private"] for p in js["parties"]]
    tally.check(all(clamp(bytes.fromhex(k)) == bytes.fromhex(k) for k in privs),
                f"all {len(privs)} listed private keys are clamped (README.md conventions)")

    top_now = js["now"]
    for case in js["cases"]:
        cid, op = case["id"], case["op"]
        try:
            if op == "seal":
                s_priv, s_pub = parties[case["sender"]]
                _, r_pub = parties[case["recipient"]]
                cert = certs[case["certificate"]]
                honest = parse_sender_cert(cert)["ik"] == s_pub
                if not honest:
                    # An honest sealer refuses (§5.4); the vector is made as an attacker would.
                    try:
                        seal(s_priv, s_pub, r_pub, case["content_type"], cert,
                             bytes.fromhex(case["message"]), bytes.fromhex(case["ephemeral_private"]))
                        tally.check(False, f"{cid}: honest seal must refuse a foreign certificate")
                    except ProtocolError:
                        tally.check(True, f"{cid}: honest seal refuses a foreign certificate")
                env = seal(s_priv, s_pub, r_pub, case["content_type"], cert,
                           bytes.fromhex(case["message"]), bytes.fromhex(case["ephemeral_private"]),
                           enforce_identity=honest)
                tally.check(env.hex() == case["envelope"], f"{cid}: envelope byte for byte")
            elif op == "seal_multi":
                s_priv, s_pub = parties[case["sender"]]
                rps = [parties[n][1] for n in case["recipients"]]
                multi = seal_multi(s_priv, s_pub, rps, case["content_type"], certs[case["certificate"]],
                                   bytes.fromhex(case["message"]), bytes.fromhex(case["ephemeral_private"]),
                                   bytes.fromhex(case["payload_key"]))
                tally.check(multi.hex() == case["envelope"], f"{cid}: 0xE2 envelope byte for byte")
                copies = server_split(multi)
                tally.check([c.hex() for c in copies] == case["delivered"],
                            f"{cid}: 0xE3 delivered copies byte for byte")
            elif op in ("open", "open_delivered"):
                r_priv, r_pub = parties[case["recipient"]]
                now = case.get("now", top_now)
                revoked = set(case.get("revoked_server_key_ids", []))
                fn = open_sealed if op == "open" else open_delivered
                try:
                    got = fn(bytes.fromhex(case["envelope"]), r_priv, r_pub, root_pub, revoked, now)
                except ProtocolError as e:
                    tally.check(case["expect"] == "error" and case.get("error") == e.name,
                                f"{cid}: got error {e}, expected {case.get('error', 'ok')}")
                    continue
                exp = case.get("opened", {})
                ok = (case["expect"] == "ok" and got["sender_id"] == exp.get("sender_id")
                      and got["device_id"] == exp.get("device_id")
                      and got["content_type"] == exp.get("content_type")
                      and got["message"].hex() == exp.get("message"))
                tally.check(ok, f"{cid}: opened {got['sender_id']}.{got['device_id']} type "
                                f"{got['content_type']}, expected {case.get('opened', case.get('error'))}")
            elif op == "split":
                try:
                    copies = server_split(bytes.fromhex(case["envelope"]))
                except ProtocolError as e:
                    tally.check(case["expect"] == "error" and case.get("error") == e.name,
                                f"{cid}: got error {e}, expected {case.get('error', 'ok')}")
                    continue
                tally.check(case["expect"] == "ok" and [c.hex() for c in copies] == case["delivered"],
                            f"{cid}: {len(copies)} 0xE3 copies, expected "
                            f"{len(case.get('delivered', [])) or case.get('error')}")
            else:
                tally.check(False, f"{cid}: unknown op {op}")
        except ProtocolError as e:
            tally.check(False, f"{cid}: unexpected error {e}")


# ---------------------------------------------------------------------------
# Self-checks of the helpers that the vectors do not reach
# ---------------------------------------------------------------------------

def self_checks(tally):
    tally.check(padme(270) == 272 and padme(1244) == 1280 and padme(4000) == 4096
                and padme(1290) == 1344 and padme(1) == 1, "Padmé examples of envelope.md §5.1")
    for v in (0, 1, 127, 128, 16380, 2 ** 32 - 1):
        tally.check(Reader(varint(v)).varint() == v, f"varint round trip {v}")
    for bad in (b"\x80\x00", b"\xff\xff\xff\xff\x7f", b"\x80\x80\x80\x80\x80\x01", b"\x80"):
        try:
            Reader(bad).varint()
            tally.check(False, f"varint {bad.hex()} rejected")
        except ProtocolError:
            tally.check(True, f"varint {bad.hex()} rejected")
    # XEdDSA with both signs of E = kB (the vectors' signers all have E.s = 0):
    # spec-form signatures verify under both verifiers; the libsignal form under its own,
    # and under the spec verifier only when its sign bit is 0.
    signs = set()
    for i in range(8):
        k = clamp(hashlib.sha256(b"k%d" % i).digest())
        u = x25519_base(k)
        e_sign = pt_encode(pt_mul(le(k), BASE))[31] >> 7
        signs.add(e_sign)
        tally.check(le(u) == (lambda y: (1 + y) * inv(1 - y) % P)(
            le(pt_encode(pt_mul(le(k), BASE))) & (2 ** 255 - 1)), f"key {i}: Edwards y -> u")
        Z = hashlib.sha512(b"z%d" % i).digest()
        m = b"message %d" % i
        sig = xeddsa_sign(k, m, Z)
        tally.check(xeddsa_verify(u, m, sig) and libsignal_verify(u, m, sig),
                    f"key {i} (E.s={e_sign}): spec-form signature verifies (both verifiers)")
        tally.check(not xeddsa_verify(u, m + b"x", sig), f"key {i}: spec verifier rejects another message")
        lsig = libsignal_sign(k, m, Z)
        tally.check(libsignal_verify(u, m, lsig), f"key {i}: libsignal-form signature verifies")
        spk = x25519_base(clamp(hashlib.sha256(b"spk%d" % i).digest()))
        tally.check(verify_spk_signature(u, spk, libsignal_sign(k, b"\x05" + spk, Z))
                    and verify_spk_signature(u, spk, xeddsa_sign(k, b"\x05" + spk, Z)),
                    f"key {i}: signed-prekey verifier accepts both forms (hush-1.md §3)")
        tally.check(xeddsa_verify(u, m, lsig) == (e_sign == 0),
                    f"key {i}: spec verifier accepts the libsignal form iff its sign bit is 0")
    tally.check(signs == {0, 1}, "self-checks covered both signs of E")
    strictness_self_checks(tally)
    chain_exhausted_self_checks(tally)
    size_self_checks(tally)
    torsioned_identity_self_check(tally)
    prime_order_self_checks(tally)


def prime_order_self_checks(tally):
    """README.md "prime-order key" on known points: the base point u = 9, its torsioned copies
    (plus each point of order 2, 4, 8), every small-order u, and a twist point."""
    def u_of(pt):
        y = le(pt_encode(pt)) & (2 ** 255 - 1)
        return ((1 + y) * inv(1 - y) % P).to_bytes(32, "little")
    nine = (9).to_bytes(32, "little")
    tally.check(u_of(BASE) == nine and is_prime_order(nine), "prime-order: u = 9 (the base point)")
    torsion = [pt_from_xy(recover_x(y, sg), y) for y in SMALL_ORDER_Y if y != 1 for sg in (0, 1)
               if recover_x(y, sg) is not None]
    tally.check(all(not is_prime_order(u_of(pt_add(BASE, t))) for t in torsion),
                f"prime-order: 9 plus each of {len(torsion)} small-order points is refused (torsioned)")
    tally.check(not any(is_prime_order(u.to_bytes(32, "little")) for u in (0, 1, P - 1)),
                "prime-order: u = 0, 1, p - 1 refused")
    twist = next(u for u in range(2, 100) if pow((u ** 3 + 486662 * u * u + u) % P, (P - 1) // 2, P) == P - 1)
    tally.check(not is_prime_order(twist.to_bytes(32, "little")), f"prime-order: twist point u = {twist} refused")


def torsioned_identity_self_check(tally):
    """hush-1.md §4 step 3 for IK_B: the vectors' torsioned identity key fails step 2 (its
    signature was made for the genuine key), so they do not show step 3 for IK_B.  But the
    equation of README.md "Signatures" has no cofactor: under A' = A + T (T of order 8) a
    signature whose h is a multiple of 8 verifies, and the owner of A can grind R for that.
    Such a bundle passes step 2 and must be refused by step 3 (malformed)."""
    k = clamp(hashlib.sha256(b"torsioned identity").digest())
    kk = le(k)
    y8 = next(y for y in SMALL_ORDER_Y if y not in (0, 1, P - 1))
    T8 = pt_from_xy(recover_x(y8, 0), y8)
    A2 = pt_add(pt_mul(kk, BASE), T8)
    A2_enc = pt_encode(A2)
    y2, sign = le(A2_enc) & (2 ** 255 - 1), A2_enc[31] >> 7
    u2 = ((1 + y2) * inv(1 - y2) % P).to_bytes(32, "little")
    spk = x25519_base(clamp(hashlib.sha256(b"spk").digest()))
    m = b"\x05" + spk
    for i in range(256):
        r = le(sha512(b"grind", bytes([i]))) % Q
        R = pt_encode(pt_mul(r, BASE))
        h = le(sha512(R, A2_enc, m)) % Q
        if h % 8 == 0:
            break
    sig = bytearray(R + ((r + h * kk) % Q).to_bytes(32, "little"))
    sig[63] |= sign << 7
    sig = bytes(sig)
    tally.check(libsignal_verify(u2, m, sig) and not is_prime_order(u2),
                "torsioned identity key: a ground signature verifies (libsignal-compatible verifier)")
    alice_k = clamp(hashlib.sha256(b"alice").digest())
    alice = Party({"name": "a", "address": {"name": "a", "device_id": 1}, "registration_id": 1,
                   "identity_key": {"private": alice_k.hex(), "public": "05" + x25519_base(alice_k).hex()},
                   "signed_prekeys": [], "one_time_prekeys": []})
    bundle = {"registration_id": 2, "device_id": 1, "identity_key": "05" + u2.hex(),
              "signed_prekey_id": 1, "signed_prekey": "05" + spk.hex(), "signed_prekey_signature": sig.hex(),
              "one_time_prekey_id": None, "one_time_prekey": None}

    def no_draws():
        raise AssertionError("drew")
    try:
        process_bundle(alice, ("b", 1), bundle, no_draws)
        got = "ok"
    except ProtocolError as e:
        got = e.name
    tally.check(got == "malformed", f"torsioned identity key with a valid signature: bundle -> {got} (§4 step 3)")


def size_self_checks(tally):
    """The size tables of envelope.md §9 and hush-1.md §9, recomputed from the layouts."""
    k = clamp(hashlib.sha256(b"size").digest())
    pub = x25519_base(k)
    server_cert = make_server_cert(k, 7, pub, 0, bytes(64))
    cert = make_sender_cert(k, "alice", 1, pub, 0, server_cert, bytes(64))
    tally.check(len(server_cert) == 106 and len(cert) == 218, "certificate sizes 106 and 218 (envelope.md §3, §4)")
    rows = {(5, 51): (56, 278, 288, 387), (1024, 51): (1075, 1298, 1344, 1443),
            (5, None): (66, 288, 288, 387), (1024, None): (1091, 1314, 1344, 1443)}
    for (n, overhead), want in rows.items():
        msg_len = n + overhead if overhead else want[0]  # Signal v3 sizes are given, not derived
        content = 1 + len(varint(len(cert))) + len(cert) + len(varint(msg_len)) + msg_len
        L = 32 + 48 + padme(content) + 16
        got = (msg_len, content, padme(content), 1 + len(varint(L)) + L)
        tally.check(got == want, f"size table row {'hush-1' if overhead else 'Signal v3'}, {n} B: {got}")


def chain_exhausted_self_checks(tally):
    """hush-1.md §6 step 3 and §7.2 step 3: the vectors cannot reach a counter of 2^32 - 1."""
    k1, k2 = clamp(hashlib.sha256(b"ce1").digest()), clamp(hashlib.sha256(b"ce2").digest())
    pa = Party({"name": "a", "address": {"name": "b", "device_id": 1}, "registration_id": 1,
                "identity_key": {"private": k1.hex(), "public": "05" + x25519_base(k1).hex()},
                "signed_prekeys": [], "one_time_prekeys": []})
    st = State()
    st.local_ik, st.remote_ik, st.local_reg, st.remote_reg = pa.ik_pub, x25519_base(k2), 1, 2
    st.rk, st.send_priv, st.send_pub, st.cks = bytes(32), k1, pa.ik_pub, bytes(32)
    T = x25519_base(k2)
    st.recv = [Chain(T, bytes(32), 2 ** 32 - 1 - 5)]
    pa.records[("b", 1)] = Record(st)
    for ns, want in ((2 ** 32 - 2, None), (2 ** 32 - 1, "chain_exhausted")):
        st.ns = ns
        try:
            encrypt(pa, ("b", 1), b"x")
            got = None
        except ProtocolError as e:
            got = e.name
        tally.check(got == want, f"chain_exhausted: encrypt at index {ns} -> {got or 'ok'}")
    data = bytes([MSG_TYPE]) + T + varint(2 ** 32 - 1) + varint(0) + bytes(16)
    try:
        decrypt_on_state(copy.deepcopy(st), parse_message(data), b"", RatchetDraw(None))
        got = None
    except ProtocolError as e:
        got = e.name
    tally.check(got == "chain_exhausted", f"chain_exhausted: counter 2^32 - 1 received -> {got}")


def _equation_holds(A, A_enc, msg, sig):
    """Check 4 of README.md "Signatures" alone (no checks 1-3)."""
    h = le(sha512(sig[:32], A_enc, msg)) % Q
    return pt_encode(pt_add(pt_mul(le(sig[32:]), BASE), pt_neg(pt_mul(h, A)))) == sig[:32]


def strictness_self_checks(tally):
    """Checks 2 and 3 of README.md "Signatures" with signatures that satisfy the equation
    (check 4), so that only the small-order rule refuses them.  The vectors' low-order cases
    (session-errors step 2, envelope server-key-low-order-*) fail the equation as well, so
    they do not show these rules on their own (REVIEW.md)."""
    m = b"strictness"
    k = clamp(hashlib.sha256(b"strict").digest())
    kk = le(k)
    E = pt_encode(pt_mul(kk, BASE))
    a = (-kk) % Q if E[31] & 0x80 else kk % Q
    A = pt_mul(a, BASE)
    A_enc = pt_encode(A)
    u = x25519_base(k)
    # Check 2: R = the identity (order 1), s = h*a: s*B - h*A = identity = R.
    R = (1).to_bytes(32, "little")
    h = le(sha512(R, A_enc, m)) % Q
    sig = R + (h * a % Q).to_bytes(32, "little")
    tally.check(_equation_holds(A, A_enc, m, sig), "check 2: an identity-R signature satisfies the equation")
    tally.check(not xeddsa_verify(u, m, sig) and not libsignal_verify(u, m, sig),
                "check 2: both verifiers refuse R of small order")
    # Check 3: every small-order u; a signature with h = 0 mod 8 satisfies the equation for any
    # key of order dividing 8 (s*B - h*A = r*B = R).
    small_u = set()
    for y in SMALL_ORDER_Y:
        if y != 1:  # y = 1 (the identity) has no u
            small_u.add((1 + y) * inv(1 - y) % P)
    small_u.add(P - 1)  # README: u + 1 = 0 gives y = 0
    tally.check(len(small_u) == 5 and {0, 1, P - 1} <= small_u,
                "check 3: five u of order <= 8 (0, 1, p - 1 and two of order 8)")
    for su in sorted(small_u):
        ub = su.to_bytes(32, "little")
        y = (su - 1) * inv(su + 1) % P
        x = recover_x(y, 0)
        Apt, Aenc = pt_from_xy(x, y), (y).to_bytes(32, "little")
        for i in range(200):
            r = le(sha512(b"r", bytes([i]), ub)) % Q
            R = pt_encode(pt_mul(r, BASE))
            if le(sha512(R, Aenc, m)) % Q % 8 == 0:
                break
        sig = R + r.to_bytes(32, "little")
        tally.check(_equation_holds(Apt, Aenc, m, sig) and not xeddsa_verify(ub, m, sig)
                    and not libsignal_verify(ub, m, sig),
                    f"check 3: u = {su if su < 2 ** 16 else ub.hex()[:12] + '...'}: a signature satisfying "
                    f"the equation is refused by both verifiers")
    # Check 1 in the libsignal-compatible verifier: s + L with the sign bit kept.
    lsig = bytearray(libsignal_sign(k, m, bytes(64)))
    sign = lsig[63] & 0x80
    s_val = le(bytes(lsig[32:63]) + bytes([lsig[63] & 0x7F])) + Q
    mal = bytes(lsig[:32]) + bytearray((s_val | (sign << 248)).to_bytes(32, "little"))
    tally.check(libsignal_verify(u, m, bytes(lsig)) and not libsignal_verify(u, m, mal),
                "check 1: libsignal-compatible verifier refuses s + L (sign bit kept)")


def main(argv):
    global VERBOSE
    args = [a for a in argv[1:] if not a.startswith("-")]
    VERBOSE = "-v" in argv
    if len(args) != 1:
        print(__doc__)
        return 2
    root = args[0]
    files = sorted(f for f in os.listdir(root) if f.endswith(".json"))
    total_fail = 0
    tallies = []
    t = Tally("self-checks")
    self_checks(t)
    tallies.append(t)
    for f in files:
        path = os.path.join(root, f)
        fmt = json.load(open(path)).get("format", "")
        t = Tally(f)
        if fmt == "hush-session-vectors/1":
            replay_session(path, t)
        elif fmt == "hush-envelope-vectors/2":
            check_envelopes(path, t)
        else:
            t.check(False, f"unknown format {fmt!r}")
        tallies.append(t)
    total_pending = 0
    for t in tallies:
        print(f"{t.name:40s} {t.passed:6d} passed {t.failed:4d} failed"
              + (f" {t.pending:4d} pending" if t.pending else ""))
        total_fail += t.failed
        total_pending += t.pending
    if total_pending:
        print(f"{total_pending} checks of cases listed in Tools/spec-check/pending.txt failed (rules not implemented here yet)")
    print("ALL PASS" if total_fail == 0 else f"{total_fail} FAILURES")
    return 0 if total_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
