#!/usr/bin/env python3
"""Independent checker of device linking (Docs/spec/client.md §7.1-§7.3).

Written from Docs/spec/client.md alone (§7 for the formats; §1-§6 and the page's own pointers
for conventions) and the vector file, by a reviewer who did not read Hush's Swift sources or
tests (Messenger/, Sources/, Tests/) or the vector generator (Tools/link-vectors/).  Where the
page leaves a reading open, the code says [guess] and the finding is REVIEW.md, section
"client.md §7 (linking a device)", items L1, L2, ...

It replays TestVectors/client/link.json (format hush-link-vectors/2):

* link_codes.valid:    decodes `code` (§7.1) to `address` and `public_key`, and encodes those
                       two back to the code (`canonical` when `code` has surrounding whitespace);
* link_codes.invalid:  decodes `code` and compares the first error of §7.1's order;
* provisioning.valid:  decodes `hex` (§7.2) to every listed field, encodes the fields back to
                       the same bytes;
* provisioning.invalid: decodes `hex` and compares the first error of §7.2's order;
* sealed:              §7.3: size check, then opens `sealed` with pynacl's SealedBox under
                       `provisioning_private` *and* with the primitives §7.3 names (BLAKE2b-192
                       nonce, crypto_box_open), compares `plaintext` and decodes it, or the error.

Then self-made cases: every single-character substitution, deletion, insertion and adjacent
transposition of each valid code; every truncation of each valid message and one trailing byte;
every bit of every field; keys of every small order; bodies sealed here (including the
4,096-byte bound and a low-order ephemeral key).

Used by client_check.py (`client_check.py TestVectors/client`); runnable alone:
    /usr/bin/python3 Tools/spec-check/link_check.py TestVectors/client/link.json [-v]
Needs PyNaCl (Debian's python3-nacl).  X25519 itself is written out here (RFC 7748 ladder) and
cross-checked against libsodium.
"""

import base64
import functools
import hashlib
import json
import os
import sys

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public

# ---------------------------------------------------------------------------
# Curve25519 (RFC 7748), written out: the key checks of §7.1 and §7.2
# ---------------------------------------------------------------------------

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493   # the prime order of the subgroup
A24 = 121665


def _ladder(k, u):
    """RFC 7748 §5's Montgomery ladder on the u-coordinate, scalar k as given (no clamping).
    Returns (X, Z) projectively; Z = 0 is the point at infinity."""
    x1, x2, z2, x3, z3, swap = u, 1, 0, u, 1, 0
    for t in reversed(range(max(k.bit_length(), 1))):
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + A24 * e) % P
    if swap:
        x2, z2 = x3, z3
    return x2, z2


def clamp(k):
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return bytes(k)


@functools.lru_cache(maxsize=4096)
def x25519(scalar, u_bytes=(9).to_bytes(32, "little")):
    """RFC 7748 §5 X25519 (clamps the scalar, masks the u's top bit)."""
    k = int.from_bytes(clamp(scalar), "little")
    u = int.from_bytes(u_bytes, "little") & (2 ** 255 - 1)
    x, z = _ladder(k, u % P)
    return (x * pow(z, P - 2, P) % P).to_bytes(32, "little")


def is_canonical_u(b):
    """[guess] L5: "canonical" = 32 bytes, little-endian value below p (so bit 255 clear too)."""
    return len(b) == 32 and int.from_bytes(b, "little") < P


def is_valid_x25519_key(b):
    """§7.1: "canonical, in the prime-order subgroup, so neither zero nor another low-order
    point".  In the subgroup iff [L]P is the point at infinity and P is not it (every canonical
    u is a point of the curve or of its twist; the twist has no point of order L, and a point
    with a small-order component keeps it under [L], L being odd and prime to 8).  u = 0 (the
    point of order 2) is excluded first: the ladder's difference would be 0."""
    if not is_canonical_u(b):
        return False
    u = int.from_bytes(b, "little")
    if u == 0:
        return False
    _, z = _ladder(L, u)
    return z == 0


# ---------------------------------------------------------------------------
# Link code (§7.1)
# ---------------------------------------------------------------------------

PREFIX = "hush-link:"
CODE_VERSION = 0x01
ADDRESS_LEN, KEY_LEN, CHECK_LEN = 16, 32, 4
RAW_LEN = 1 + ADDRESS_LEN + KEY_LEN + CHECK_LEN           # 53
B64_LEN = 71                                              # 53 bytes, no padding
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
B64_VALUE = {c: i for i, c in enumerate(B64_ALPHABET)}
STRIPPED = " \t\r\n"                                       # §7.1: spaces, tabs, CR and LF only

LINK_ERRORS = ("missing_prefix", "wrong_length", "invalid_character", "non_canonical",
               "unsupported_version", "checksum_mismatch", "invalid_key")


class LinkCodeError(Exception):
    def __init__(self, name, offset=None):
        assert name in LINK_ERRORS, name
        super().__init__(name if offset is None else f"{name}(offset {offset})")
        self.name, self.offset = name, offset


def checksum(first49):
    return hashlib.sha256(first49).digest()[:CHECK_LEN]


def b64url_encode(data):
    """RFC 4648 §5 without padding, written out (not base64.urlsafe_b64encode: that one is
    used only as a cross-check)."""
    out, acc, bits = [], 0, 0
    for byte in data:
        acc, bits = (acc << 8) | byte, bits + 8
        while bits >= 6:
            bits -= 6
            out.append(B64_ALPHABET[(acc >> bits) & 63])
    if bits:
        out.append(B64_ALPHABET[(acc << (6 - bits)) & 63])
    return "".join(out)


def decode_link_code(text):
    """§7.1, "Decoding, in this order": the first failure is the error.
    Returns (address, public key)."""
    s = text.strip(STRIPPED)
    if not s.startswith(PREFIX):
        raise LinkCodeError("missing_prefix")
    # [guess] L2: "71 bytes" counts the UTF-8 bytes of the rest, and the offset of an invalid
    # character is a 0-based byte offset after the prefix.
    rest = s[len(PREFIX):].encode("utf-8")
    if len(rest) != B64_LEN:
        raise LinkCodeError("wrong_length")
    for i, byte in enumerate(rest):
        if chr(byte) not in B64_VALUE or byte >= 0x80:
            raise LinkCodeError("invalid_character", i)
    values = [B64_VALUE[chr(b)] for b in rest]
    if values[-1] & 0b11:
        raise LinkCodeError("non_canonical")
    acc = 0
    for v in values:
        acc = (acc << 6) | v
    raw = (acc >> 2).to_bytes(RAW_LEN, "big")             # 426 bits, the last 2 unused
    if raw[0] != CODE_VERSION:
        raise LinkCodeError("unsupported_version")
    if checksum(raw[:49]) != raw[49:]:
        raise LinkCodeError("checksum_mismatch")
    address, key = raw[1:17], raw[17:49]
    if not is_valid_x25519_key(key):
        raise LinkCodeError("invalid_key")
    return address, key


def encode_link_code(address, public_key):
    """Refuses (ValueError) what the decoder would refuse."""
    if len(address) != ADDRESS_LEN:
        raise ValueError("address not 16 bytes")
    if not is_valid_x25519_key(public_key):
        raise ValueError("not a valid X25519 key")
    body = bytes([CODE_VERSION]) + address + public_key
    return PREFIX + b64url_encode(body + checksum(body))


def link_outcome(text):
    try:
        decode_link_code(text)
        return "ok"
    except LinkCodeError as e:
        return e.name


# ---------------------------------------------------------------------------
# Provisioning message (§7.2)
# ---------------------------------------------------------------------------

MSG_VERSION = 0x02                                         # §7.2: version 2 carries the link token
TOKEN_LEN = 16                                             # §7.2 (relay.md §22.4)
ACCOUNT_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789._-")    # §7.2 (relay.md §5)
ACCOUNT_MAX = 32
DEVICE_MIN, DEVICE_MAX = 2, 65_535
FLAG_READ_RECEIPTS, FLAG_FROM_ANYONE, FLAG_SECRET = 0x01, 0x02, 0x04
FLAGS_KNOWN = 0x07

PROV_ERRORS = ("empty", "unsupported_version", "truncated", "bad_account", "bad_device_id",
               "bad_identity_key", "identity_key_mismatch", "unknown_flags", "trailing_bytes",
               # §7.3
               "too_large", "cannot_open")
BODY_MAX = 4096


class ProvisioningError(Exception):
    def __init__(self, name):
        assert name in PROV_ERRORS, name
        super().__init__(name)
        self.name = name


def is_clamped(k):
    return k[0] & 7 == 0 and k[31] & 0x80 == 0 and k[31] & 0x40 == 0x40


def is_account_name(b):
    return 1 <= len(b) <= ACCOUNT_MAX and all(c in ACCOUNT_BYTES for c in b)


FIELDS = ("account", "device_id", "link_token", "identity_private", "identity_public", "sealed_secret",
          "read_receipts", "sealed_from_anyone")


def decode_provisioning(data):
    """§7.2, "Decoding, in this order".  Returns a dict of FIELDS (bytes as hex, like the
    vectors; sealed_secret None when flag bit 2 is clear)."""
    if len(data) == 0:
        raise ProvisioningError("empty")
    if data[0] != MSG_VERSION:
        raise ProvisioningError("unsupported_version")
    pos = 1

    def take(n):
        nonlocal pos
        if len(data) - pos < n:
            raise ProvisioningError("truncated")
        out = bytes(data[pos:pos + n])
        pos += n
        return out

    n = take(1)[0]
    if n == 0 or n > ACCOUNT_MAX:
        raise ProvisioningError("bad_account")             # before its bytes are read
    account = take(n)
    if not is_account_name(account):
        raise ProvisioningError("bad_account")
    device_id = int.from_bytes(take(4), "big")
    if not DEVICE_MIN <= device_id <= DEVICE_MAX:
        raise ProvisioningError("bad_device_id")
    token = take(TOKEN_LEN)                                # any 16 bytes (§7.2)
    private = take(32)
    if not is_clamped(private):
        raise ProvisioningError("bad_identity_key")
    public = take(32)
    if public != x25519(private):
        raise ProvisioningError("identity_key_mismatch")
    flags = take(1)[0]
    if flags & ~FLAGS_KNOWN:
        raise ProvisioningError("unknown_flags")
    secret = take(32) if flags & FLAG_SECRET else None
    if pos != len(data):
        raise ProvisioningError("trailing_bytes")
    return {"account": account.decode("ascii"), "device_id": device_id, "link_token": token.hex(),
            "identity_private": private.hex(), "identity_public": public.hex(),
            "sealed_secret": secret.hex() if secret is not None else None,
            "read_receipts": bool(flags & FLAG_READ_RECEIPTS),
            "sealed_from_anyone": bool(flags & FLAG_FROM_ANYONE)}


def encode_provisioning(f):
    """From the fields (as decode_provisioning returns them); refuses (ValueError) anything
    §7.2 forbids.  The public key is written as given (the decoder checks it)."""
    account = f["account"].encode("ascii")
    private = bytes.fromhex(f["identity_private"])
    public = bytes.fromhex(f["identity_public"])
    secret = None if f["sealed_secret"] is None else bytes.fromhex(f["sealed_secret"])
    token = bytes.fromhex(f["link_token"])
    if len(token) != TOKEN_LEN:
        raise ValueError("link token not 16 bytes")
    if not is_account_name(account):
        raise ValueError("bad account")
    if not (isinstance(f["device_id"], int) and DEVICE_MIN <= f["device_id"] <= DEVICE_MAX):
        raise ValueError("bad device id")
    if len(private) != 32 or not is_clamped(private) or len(public) != 32:
        raise ValueError("bad identity key")
    if secret is not None and len(secret) != 32:
        raise ValueError("secret not 32 bytes")
    flags = ((FLAG_READ_RECEIPTS if f["read_receipts"] else 0)
             | (FLAG_FROM_ANYONE if f["sealed_from_anyone"] else 0)
             | (FLAG_SECRET if secret is not None else 0))
    out = (bytes([MSG_VERSION, len(account)]) + account + f["device_id"].to_bytes(4, "big") + token
           + private + public + bytes([flags]) + (secret or b""))
    return out


def prov_outcome(data):
    try:
        decode_provisioning(data)
        return "ok"
    except ProvisioningError as e:
        return e.name


# ---------------------------------------------------------------------------
# Sealing (§7.3)
# ---------------------------------------------------------------------------

def seal_nonce(ephemeral_public, recipient_public):
    return hashlib.blake2b(ephemeral_public + recipient_public, digest_size=24).digest()


def open_body_sealedbox(body, provisioning_private):
    """§7.3's receiver with pynacl's SealedBox.  Returns the decoded fields."""
    if len(body) > BODY_MAX:
        raise ProvisioningError("too_large")
    try:
        plain = nacl.public.SealedBox(nacl.public.PrivateKey(provisioning_private)).decrypt(body)
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise ProvisioningError("cannot_open")
    return plain


def open_body_primitives(body, provisioning_private):
    """§7.3 from its description: `ephemeral public (32) ‖ tag (16) ‖ ciphertext`, nonce =
    BLAKE2b-192(ephemeral public ‖ provisioning public), crypto_box (X25519, XSalsa20-Poly1305)."""
    if len(body) > BODY_MAX:
        raise ProvisioningError("too_large")
    if len(body) < 48:
        raise ProvisioningError("cannot_open")
    epk, boxed = body[:32], body[32:]
    ppk = x25519(provisioning_private)
    try:
        return sodium.crypto_box_open(boxed, seal_nonce(epk, ppk), epk, provisioning_private)
    except (nacl.exceptions.CryptoError, nacl.exceptions.RuntimeError, nacl.exceptions.ValueError):
        raise ProvisioningError("cannot_open")


def seal_with(message, recipient_public, ephemeral_private):
    """crypto_box_seal with a chosen ephemeral key (§7.3's description)."""
    epk = x25519(ephemeral_private)
    return epk + sodium.crypto_box(message, seal_nonce(epk, recipient_public), recipient_public,
                                   ephemeral_private)


def receive(body, provisioning_private):
    """§7.3 then §7.2: 'ok' or the error name (both openers must agree)."""
    outs = []
    for opener in (open_body_sealedbox, open_body_primitives):
        try:
            outs.append(prov_outcome(opener(body, provisioning_private)))
        except ProvisioningError as e:
            outs.append(e.name)
    return outs[0] if outs[0] == outs[1] else f"openers disagree: {outs}"


# ---------------------------------------------------------------------------
# Vector cases
# ---------------------------------------------------------------------------

def unhex(h, what):
    try:
        return bytes.fromhex(h)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not hex: {h!r}")


def check_code_valid(t, case):
    label = f"link code valid: {case.get('name')}"
    keys = {"name", "address", "public_key", "code"} | ({"canonical"} if "canonical" in case else set())
    if set(case) != keys:
        return t.check(False, label, f"unexpected fields {sorted(case)}")
    code = case["code"]
    canonical = case.get("canonical", code)
    problems = []
    if ("canonical" in case) == (code == code.strip(STRIPPED)):
        problems.append("`canonical` present exactly when `code` has surrounding whitespace: not so")
    try:
        address, key = decode_link_code(code)
        if address.hex() != case["address"]:
            problems.append(f"address {address.hex()} != {case['address']}")
        if key.hex() != case["public_key"]:
            problems.append(f"public_key {key.hex()} != {case['public_key']}")
    except LinkCodeError as e:
        problems.append(f"decoding failed: {e}")
    try:
        enc = encode_link_code(unhex(case["address"], "address"), unhex(case["public_key"], "public_key"))
        if enc != canonical:
            problems.append(f"encoded {enc} != {canonical}")
        if len(enc) != 81 or not enc.isascii():
            problems.append(f"encoded code is {len(enc)} characters, §7.1 says 81 ASCII")
    except ValueError as e:
        problems.append(f"cannot encode: {e}")
    return t.check(not problems, label, "; ".join(problems))


def check_code_invalid(t, case):
    label = f"link code invalid: {case.get('name')}"
    if set(case) != {"name", "code", "error"}:
        return t.check(False, label, f"unexpected fields {sorted(case)}")
    want = case["error"]
    if want not in LINK_ERRORS:
        return t.check(False, label, f"listed error {want!r} is not one of §7.1's names")
    got = link_outcome(case["code"])
    return t.check(got == want, f"{label} -> {want}", f"expected {want}, got {got}")


def check_prov_valid(t, case):
    label = f"provisioning valid: {case.get('name')}"
    if set(case) != {"name", "hex", *FIELDS}:
        return t.check(False, label, f"unexpected fields {sorted(case)}")
    problems = []
    data = unhex(case["hex"], "hex")
    try:
        got = decode_provisioning(data)
        for k in FIELDS:
            if got[k] != case[k]:
                problems.append(f"{k}: decoded {got[k]!r}, listed {case[k]!r}")
    except ProvisioningError as e:
        problems.append(f"decoding failed: {e.name}")
    try:
        enc = encode_provisioning({k: case[k] for k in FIELDS})
        if enc != data:
            problems.append(f"encoding of the listed fields {enc.hex()} != hex")
        n = len(case["account"])
        if len(enc) != (119 + n if case["sealed_secret"] else 87 + n):
            problems.append(f"length {len(enc)} is not 87 + n / 119 + n")
    except (ValueError, KeyError) as e:
        problems.append(f"the listed fields cannot be encoded: {e}")
    try:
        if x25519(unhex(case["identity_private"], "private")) != sodium.crypto_scalarmult_base(
                unhex(case["identity_private"], "private")):
            problems.append("written-out X25519 and libsodium disagree on the identity key")
    except ValueError as e:
        problems.append(str(e))
    return t.check(not problems, label, "; ".join(problems))


def check_prov_invalid(t, case):
    label = f"provisioning invalid: {case.get('name')}"
    if set(case) != {"name", "hex", "error"}:
        return t.check(False, label, f"unexpected fields {sorted(case)}")
    want = case["error"]
    if want not in PROV_ERRORS[:9]:
        return t.check(False, label, f"listed error {want!r} is not one of §7.2's names")
    got = prov_outcome(unhex(case["hex"], "hex"))
    return t.check(got == want, f"{label} -> {want}", f"expected {want}, got {got}")


def check_sealed(t, case):
    label = f"sealed: {case.get('name')}"
    base = {"name", "provisioning_private", "sealed"}
    if set(case) not in (base | {"plaintext"}, base | {"error"}):
        return t.check(False, label, f"unexpected fields {sorted(case)}")
    sk = unhex(case["provisioning_private"], "provisioning_private")
    body = unhex(case["sealed"], "sealed")
    problems = []
    if "plaintext" in case:
        want_plain = unhex(case["plaintext"], "plaintext")
        for opener in (open_body_sealedbox, open_body_primitives):
            try:
                plain = opener(body, sk)
                if plain != want_plain:
                    problems.append(f"{opener.__name__}: plaintext {plain.hex()} != listed")
            except ProvisioningError as e:
                problems.append(f"{opener.__name__}: {e.name}")
        if len(body) != len(want_plain) + 48:
            problems.append(f"body {len(body)} bytes, not plaintext + 48")
        out = prov_outcome(want_plain)
        if out != "ok":
            problems.append(f"the plaintext does not decode: {out}")
        return t.check(not problems, f"{label} -> opens and decodes", "; ".join(problems))
    want = case["error"]
    if want not in PROV_ERRORS:
        return t.check(False, label, f"listed error {want!r} is not one of §7.2/§7.3's names")
    got = receive(body, sk)
    return t.check(got == want, f"{label} -> {want}", f"expected {want}, got {got}")


# ---------------------------------------------------------------------------
# Self-made cases
# ---------------------------------------------------------------------------

def small_order_us():
    """The canonical u-coordinates of small order (curve and twist, x-only): 0 (order 2), 1 and
    p - 1 (order 4), and the two of order 8 (the values libsodium's blacklist has, typed here and
    each confirmed by the ladder: [8]u = O and [4]u != O, so nothing is taken on trust)."""
    out = {0}
    for u in (1, P - 1):
        if _ladder(8, u)[1] == 0:
            out.add(u)
    # The order-8 u's: the two canonical ones libsodium's blacklist also has, checked here by
    # [8]u = O and [4]u != O rather than trusted.
    for u in (325606250916557431795983626356110631294008115727848805560023387167927233504,
              39382357235489614581723060781553021112529911719440698176882885853963445705823):
        x4, z4 = _ladder(4, u)
        if _ladder(8, u)[1] == 0 and z4 != 0:
            out.add(u)
    return out


def self_checks(t, vectors):
    # --- The page's example, typed from §7 (not from the vector file).
    sk = clamp(hashlib.sha256(b"\x01" * 32).digest())
    example = "hush-link:ARAREhMUFRYXGBkaGxwdHh9iH-KeIQQqGEmlEY1c-tQKx-4AOqzfa2seh1ydrvb5C7oKs3w"
    t.check(encode_link_code(bytes(range(0x10, 0x20)), x25519(sk)) == example,
            "self: §7's example code from the clamped SHA-256 of 32 bytes 01")
    # "key from seed 02" in a vector name, read the same way.
    sk2 = clamp(hashlib.sha256(b"\x02" * 32).digest())
    t.check(x25519(sk2).hex() == "6f79a4e17869fe358541b51b26de54a342c7b46326e0b9ce00631270b3186f65",
            "self: vector 'key from seed 02' is the clamped SHA-256 of 32 bytes 02")
    t.check(len(example) == 81 and len(example) - len(PREFIX) == B64_LEN,
            "self: §7.1 53 bytes -> 71 characters, 81 in all")
    raw = bytes(range(53))
    t.check(b64url_encode(raw) == base64.urlsafe_b64encode(raw).decode().rstrip("="),
            "self: written-out base64url = the standard library's, padding removed")

    # --- X25519 written out vs libsodium, and RFC 7748 §6.1.
    ok = all(x25519(hashlib.sha256(bytes([i])).digest()) ==
             sodium.crypto_scalarmult_base(hashlib.sha256(bytes([i])).digest()) for i in range(20))
    t.check(ok, "self: X25519 (RFC 7748 ladder) = libsodium's for 20 scalars")
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    t.check(x25519(alice).hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
            "self: RFC 7748 §6.1 Alice's public key")

    # --- §7.1 key validity: every small-order point, torsioned keys, twist, non-canonical.
    small = small_order_us()
    t.check(len(small) == 5, "self: 5 canonical small-order u found (0, 1, p-1, two of order 8)",
            str(sorted(small)))
    pk = x25519(sk)
    addr = bytes(range(0x10, 0x20))

    def code_with_key(key, version=CODE_VERSION):
        body = bytes([version]) + addr + key
        return PREFIX + b64url_encode(body + checksum(body))

    names = {0: "0", 1: "1", P - 1: "p-1"}
    small_names = [(names.get(u, f"order 8, u={str(u)[:6]}…"), u) for u in sorted(small)]
    for name, u in small_names:
        for e, enc in ((u, ""), (u + P, "p + ")):
            if e >= 2 ** 256:
                continue
            got = link_outcome(code_with_key(e.to_bytes(32, "little")))
            t.check(got == "invalid_key", f"self: code with small-order key u = {enc}{name} -> invalid_key", got)
    # p itself and p+1 (non-canonical encodings of 0 and 1), and bit 255 set on a valid key.
    for label, kb, g in [("u = p", P.to_bytes(32, "little"), None),
                         ("u = p + 9 (9 not reduced)", (P + 9).to_bytes(32, "little"), None),
                         ("a valid key with bit 255 set", pk[:31] + bytes([pk[31] | 0x80]), "L5"),
                         ("u = 2^255 - 1", (2 ** 255 - 1).to_bytes(32, "little"), None)]:
        got = link_outcome(code_with_key(kb))
        t.check(got == "invalid_key", f"self: code with key {label} -> invalid_key"
                + (f"  [guess {g}]" if g else ""), got)
    # Torsioned keys (a prime-order point plus a small-order one): curve points of order 2L, 4L
    # and 8L, found by search (the curve's group is cyclic of order 8L), and twist points.
    def on_curve(u):
        return pow((u ** 3 + 486662 * u * u + u) % P, (P - 1) // 2, P) == 1

    def torsion_order(u):                               # the order of [L]u, for a curve point u
        return next(o for o in (1, 2, 4, 8) if _ladder(o * L, u)[1] == 0)

    torsioned = {}
    for u in range(2, 1000):
        if on_curve(u):
            torsioned.setdefault(torsion_order(u), u)
        if len(torsioned) == 4:
            break
    t.check(sorted(torsioned) == [1, 2, 4, 8], "self: curve points of order L, 2L, 4L, 8L found (u < 1000)",
            str(torsioned))
    for o, u in sorted(torsioned.items()):
        got = link_outcome(code_with_key(u.to_bytes(32, "little")))
        want = "ok" if o == 1 else "invalid_key"
        t.check(got == want, f"self: code with key u={u} of order {o if o > 1 else ''}L -> {want}", got)
    # Cross-check of the subgroup test with spec_check.py's (README.md "prime-order key", written
    # separately, Edwards form) on those and on the small-order, twist and random keys.
    try:
        import spec_check
        sample = [u.to_bytes(32, "little") for u in list(torsioned.values()) + sorted(small) + list(range(2, 40))]
        sample += [sodium.crypto_scalarmult_base(hashlib.sha256(bytes([i, 2])).digest()) for i in range(10)]
        differ = [int.from_bytes(k, "little") for k in sample if is_valid_x25519_key(k) != spec_check.is_prime_order(k)]
        t.check(not differ, f"self: subgroup test = spec_check.is_prime_order on {len(sample)} keys", str(differ[:5]))
    except ImportError as e:
        t.check(False, "self: spec_check.py importable for the subgroup cross-check", str(e))
    twist = next(u for u in range(2, 100) if pow((u ** 3 + 486662 * u * u + u) % P, (P - 1) // 2, P) == P - 1)
    got = link_outcome(code_with_key(twist.to_bytes(32, "little")))
    t.check(got == "invalid_key", f"self: code with a twist point u={twist} -> invalid_key", got)
    t.check(link_outcome(code_with_key((9).to_bytes(32, "little"))) == "ok",
            "self: code with the base point u = 9 -> ok")
    ok = all(is_valid_x25519_key(sodium.crypto_scalarmult_base(hashlib.sha256(bytes([i, 1])).digest()))
             for i in range(20))
    t.check(ok, "self: 20 libsodium public keys are valid (prime-order)")

    # --- §7.1 order of the checks, on inputs with two faults.
    good = example
    rest = good[len(PREFIX):]
    bad_ver = code_with_key(b"\x00" * 32, version=2)
    t.check(link_outcome(bad_ver) == "unsupported_version",
            "self: version 2 and a zero key -> unsupported_version (version before key)", link_outcome(bad_ver))
    zero_key_bad_check = code_with_key(bytes(32))[:-6] + "AAAAAA"
    t.check(link_outcome(zero_key_bad_check) == "checksum_mismatch",
            "self: zero key and wrong check -> checksum_mismatch (check before key)", link_outcome(zero_key_bad_check))
    # Not pinned by the vectors (L4: every order of non_canonical, version and check passes them).
    v2_bad_check = code_with_key(pk, version=2)[:-6] + "AAAAAA"
    t.check(link_outcome(v2_bad_check) == "unsupported_version",
            "self: version 2 and a wrong check -> unsupported_version (version before check)  [guess L4]",
            link_outcome(v2_bad_check))
    v2_bits = code_with_key(pk, version=2)
    v2_bits = v2_bits[:-1] + B64_ALPHABET[B64_VALUE[v2_bits[-1]] | 1]
    t.check(link_outcome(v2_bits) == "non_canonical",
            "self: version 2 and unused bits set -> non_canonical (bits before version)  [guess L4]",
            link_outcome(v2_bits))
    t.check(link_outcome(PREFIX + "+" + rest[1:-1] + "x") == "invalid_character",
            "self: '+' first and unused bits set -> invalid_character (before non_canonical)")
    t.check(link_outcome(PREFIX + "+" + rest) == "wrong_length",
            "self: 72 characters with a '+' -> wrong_length (before invalid_character)")
    t.check(link_outcome("hush-link" + rest) == "missing_prefix", "self: prefix without ':' -> missing_prefix")
    t.check(link_outcome(" \t\r\n" + good + "\n\r\t ") == "ok", "self: spaces, tabs, CR, LF around -> ok")
    for ws, name in [("\v", "VT"), ("\f", "FF"), ("\u00a0", "NBSP"), ("\u2028", "LINE SEPARATOR")]:
        got_l, got_t = link_outcome(ws + good), link_outcome(good + ws)
        t.check((got_l, got_t) == ("missing_prefix", "wrong_length"),
                f"self: {name} before -> missing_prefix, after -> wrong_length (only 4 characters are stripped)",
                f"{got_l}, {got_t}")
    # L2: a non-ASCII character counts by its UTF-8 bytes.
    e_acute = PREFIX + rest[:-2] + "é"                     # 69 + 2 bytes = 71 bytes, 70 characters
    try:
        decode_link_code(e_acute)
        got = "ok"
    except LinkCodeError as e:
        got = (e.name, e.offset)
    t.check(got == ("invalid_character", 69),
            "self: 69 characters + 'é' (71 UTF-8 bytes) -> invalid_character at byte 69  [guess L2]", str(got))
    for i, c in [(0, "+"), (5, "/"), (70, "=")]:
        try:
            decode_link_code(PREFIX + rest[:i] + c + rest[i + 1:])
            got = None
        except LinkCodeError as e:
            got = (e.name, e.offset)
        t.check(got == ("invalid_character", i), f"self: {c!r} at offset {i} -> invalid_character({i})  [guess L2]",
                str(got))

    # --- §7.1 "A check catches every single-character typo": every substitution of every
    # character of every valid code by every character of the alphabet (and a few others), and
    # the error §7.1's order gives for it; deletions, insertions, adjacent transpositions.
    codes = [c["code"].strip(STRIPPED) for c in vectors["link_codes"]["valid"]]
    codes.append(example)
    for code in dict.fromkeys(codes):
        rest = code[len(PREFIX):]
        if not t.check(link_outcome(code) == "ok", f"self: {code[-8:]}: decodes (base of the typo checks)",
                       link_outcome(code)):
            continue
        wrong = []
        counts = {}
        for i in range(B64_LEN):
            for c in B64_ALPHABET + "+/=. ~é":
                if c == rest[i]:
                    continue
                mutated = PREFIX + rest[:i] + c + rest[i + 1:]
                got = link_outcome(mutated)
                counts[got] = counts.get(got, 0) + 1
                # Which error §7.1's order must give, from where the change lands:
                if c not in B64_VALUE:
                    # A 2-byte UTF-8 character makes 72 bytes; a space as the last character is
                    # stripped (70 bytes left); anything else is a bad character.
                    want = ("wrong_length" if len(c.encode()) > 1 or (i == B64_LEN - 1 and c in STRIPPED)
                            else "invalid_character")
                elif i == B64_LEN - 1 and B64_VALUE[c] & 3:
                    want = "non_canonical"
                elif i <= 1 and decode_version(mutated) != CODE_VERSION:
                    want = "unsupported_version"
                else:
                    want = "checksum_mismatch"
                if got != want:
                    wrong.append(f"{i}:{c}->{got} (want {want})")
        t.check(not wrong, f"self: {code[-8:]}: each of {sum(counts.values())} single-character substitutions"
                f" caught {dict(sorted(counts.items()))}", "; ".join(wrong[:5]))
        t.check(all(link_outcome(PREFIX + rest[:i] + rest[i + 1:]) == "wrong_length" for i in range(B64_LEN)),
                f"self: {code[-8:]}: each of 71 deletions -> wrong_length")
        t.check(all(link_outcome(PREFIX + rest[:i] + c + rest[i:]) == "wrong_length"
                    for i in range(B64_LEN + 1) for c in "Aa0-_"),
                f"self: {code[-8:]}: each of 360 insertions -> wrong_length")
        swaps = [PREFIX + rest[:i] + rest[i + 1] + rest[i] + rest[i + 2:] for i in range(B64_LEN - 1)
                 if rest[i] != rest[i + 1]]
        t.check(all(link_outcome(s) != "ok" for s in swaps),
                f"self: {code[-8:]}: each of {len(swaps)} adjacent transpositions caught")
        t.check(all(link_outcome(code[:i] + code[i].swapcase() + code[i + 1:]) == "missing_prefix"
                    for i in range(len(PREFIX)) if code[i].isalpha()),
                f"self: {code[-8:]}: a capital in the prefix -> missing_prefix")

    # --- §7.2 on self-made messages.
    pv = vectors["provisioning"]["valid"]
    pv = [c for c in pv if prov_outcome(bytes.fromhex(c["hex"])) == "ok"]
    if not t.check(len(pv) == len(vectors["provisioning"]["valid"]) and pv,
                   "self: every valid message decodes (bases of the self-made messages)"):
        return
    for case in pv:
        data = bytes.fromhex(case["hex"])
        # Each truncation gives `truncated`, except at 0 bytes (`empty`).
        wrong = [(k, prov_outcome(data[:k])) for k in range(len(data))
                 if prov_outcome(data[:k]) != ("empty" if k == 0 else "truncated")]
        t.check(not wrong, f"self: {case['name']}: each of {len(data)} truncations -> truncated (0 bytes: empty)",
                str(wrong[:5]))
        for extra in (b"\x00", b"\xff", bytes(32)):
            got = prov_outcome(data + extra)
            t.check(got == "trailing_bytes", f"self: {case['name']}: + {extra[:1].hex()}×{len(extra)} -> trailing_bytes", got)
        # Every single-bit flip: the error the field's rule gives.
        n = data[1]
        wrong = []
        for i in range(len(data)):
            for bit in range(8):
                m = bytearray(data)
                m[i] ^= 1 << bit
                got = prov_outcome(bytes(m))
                want = expected_for_flip(data, i, bit, n)
                if want is not None and got != want:
                    wrong.append(f"byte {i} bit {bit}: {got} (want {want})")
        t.check(not wrong, f"self: {case['name']}: each of {8 * len(data)} bit flips gives its field's error",
                "; ".join(wrong[:5]))

    base = dict(decode_provisioning(bytes.fromhex(pv[0]["hex"])))
    for did, want in [(2, "ok"), (16, "ok"), (17, "ok"), (65_535, "ok"), (65_536, "bad_device_id"), (2 ** 31 - 1, "bad_device_id"), (2 ** 31, "bad_device_id"),
                      (2 ** 32 - 1, "bad_device_id"), (1, "bad_device_id"), (0, "bad_device_id")]:
        data = bytearray(bytes.fromhex(pv[0]["hex"]))
        off = 2 + data[1]
        data[off:off + 4] = did.to_bytes(4, "big")
        got = prov_outcome(bytes(data))
        t.check(got == want, f"self: device id {did} -> {want}", got)
    for account, want in [(b"a", "ok"), (b"a.b_c-0z9", "ok"), (b"-", "ok"), (b"a/", "bad_account"),
                          (b"a:", "bad_account"), (b"a`", "bad_account"), (b"a{", "bad_account"),
                          (b"a ", "bad_account"), (b"\x00", "bad_account"), (b"Z", "bad_account")]:
        data = bytes([MSG_VERSION, len(account)]) + account + bytes.fromhex(pv[0]["hex"])[2 + 5:]
        got = prov_outcome(data)
        t.check(got == want, f"self: account {account!r} -> {want}", got)
    # Length 0 / 33 / 255 with nothing after: bad_account before the bytes are looked for.
    for n in (0, 33, 255):
        t.check(prov_outcome(bytes([MSG_VERSION, n])) == "bad_account", f"self: 02 {n:02x} and nothing else -> bad_account")
    # Order across fields: an early fault wins over a later one.
    d0 = bytes.fromhex(pv[0]["hex"])
    n0 = d0[1]
    m = bytearray(d0); m[2] = ord("A"); m[2 + n0 + 3] = 0            # bad account and device 0
    t.check(prov_outcome(bytes(m)) == "bad_account", "self: bad account and device 0 -> bad_account")
    m = bytearray(d0); m[2 + n0 + 3] = 1; m[22 + n0] |= 1             # device 1 and unclamped key
    t.check(prov_outcome(bytes(m)) == "bad_device_id", "self: device 1 and unclamped key -> bad_device_id")
    m = bytearray(d0); m[22 + n0] |= 1; m[54 + n0] ^= 1               # unclamped and mismatching
    t.check(prov_outcome(bytes(m)) == "bad_identity_key", "self: unclamped and mismatching key -> bad_identity_key")
    m = bytearray(d0); m[54 + n0] ^= 1; m[86 + n0] |= 0x80            # mismatch and unknown flag
    t.check(prov_outcome(bytes(m)) == "identity_key_mismatch", "self: mismatch and unknown flag -> identity_key_mismatch")
    m = bytearray(d0[:87 + n0]); m[86 + n0] = 0xFC                    # unknown flag, secret flag, no secret
    t.check(prov_outcome(bytes(m)) == "unknown_flags", "self: flags fc, no secret -> unknown_flags (before truncated)  [guess L12]")
    m = bytearray(d0[:54 + n0]); m[22 + n0] |= 1                      # unclamped, public key missing
    t.check(prov_outcome(bytes(m)) == "bad_identity_key",
            "self: unclamped key, public key absent -> bad_identity_key (before truncated)  [guess L12]")
    # The public key of the same scalar with the u's top bit set, or u + p: not "the private key's".
    pub = bytes.fromhex(base["identity_public"])
    for label, alt in [("top bit set", pub[:31] + bytes([pub[31] | 0x80])),
                       ("u + p", (int.from_bytes(pub, "little") + P).to_bytes(32, "little")
                        if int.from_bytes(pub, "little") + P < 2 ** 256 else None)]:
        if alt is None:
            continue
        m = bytearray(d0); m[54 + n0:86 + n0] = alt
        got = prov_outcome(bytes(m))
        t.check(got == "identity_key_mismatch", f"self: public key with {label} (same point for X25519) -> identity_key_mismatch  [guess L7]", got)
    # The public key of the clamped private key from libsodium (the table's "X25519(private key, 9)").
    t.check(sodium.crypto_scalarmult_base(bytes.fromhex(base["identity_private"])).hex() == base["identity_public"],
            "self: libsodium X25519(private, 9) = the vector's public key")
    # Each flag combination round-trips; a secret of any bytes, the shortest and longest message.
    for flags in range(8):
        f = dict(base)
        f["read_receipts"], f["sealed_from_anyone"] = bool(flags & 1), bool(flags & 2)
        f["sealed_secret"] = ("ff" * 32) if flags & 4 else None
        enc = encode_provisioning(f)
        t.check(decode_provisioning(enc) == f and enc[86 + n0] == flags,
                f"self: flags {flags:03b} round-trip")
    f = dict(base, account="a", sealed_secret=None)
    t.check(len(encode_provisioning(f)) == 88, "self: shortest message 88 bytes (n = 1, no secret)")
    f = dict(base, account="a" * 32)
    t.check(len(encode_provisioning(f)) == 151, "self: longest message 151 bytes (n = 32, secret)")
    t.check(all(prov_outcome(bytes([v])) == "unsupported_version" for v in (0x00, 0x01, 0x03)),
            "self: a single byte 00, 01 (the version without a token) or 03 -> unsupported_version (before truncated)")
    t.check(prov_outcome(b"\x02") == "truncated", "self: a single byte 02 -> truncated")
    # A version-1 message (the same fields without the token) is not read.
    d1 = bytes([0x01]) + d0[1:6 + n0] + d0[22 + n0:]
    t.check(prov_outcome(d1) == "unsupported_version", "self: a version-1 message -> unsupported_version")
    # Any 16 bytes are a token.
    for tok in (bytes(16), b"\xff" * 16):
        m = bytearray(d0); m[6 + n0:22 + n0] = tok
        t.check(decode_provisioning(bytes(m))["link_token"] == tok.hex(), f"self: token {tok[:1].hex()}×16 decodes")

    # --- §7.3 on bodies sealed here.
    psk = bytes.fromhex(vectors["sealed"][0]["provisioning_private"])
    ppk = x25519(psk)
    t.check(ppk == bytes(nacl.public.PrivateKey(psk).public_key), "self: provisioning public key, ladder = pynacl")
    esk = clamp(hashlib.sha256(b"ephemeral").digest())
    for case in pv:
        msg = bytes.fromhex(case["hex"])
        body = seal_with(msg, ppk, esk)
        t.check(len(body) == len(msg) + 48 and receive(body, psk) == "ok",
                f"self: {case['name']}: sealed here (fixed ephemeral key) opens with SealedBox and decodes")
        body2 = nacl.public.SealedBox(nacl.public.PublicKey(ppk)).encrypt(msg)
        t.check(open_body_primitives(bytes(body2), psk) == msg,
                f"self: {case['name']}: SealedBox.encrypt opens with §7.3's primitives")
        wrong = [i for i in range(len(body)) if receive(body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:], psk)
                 != "cannot_open"]
        t.check(not wrong, f"self: {case['name']}: each of {len(body)} flipped body bytes -> cannot_open", str(wrong[:5]))
        wrong = [k for k in range(len(body)) if receive(body[:k], psk) != "cannot_open"]
        t.check(not wrong, f"self: {case['name']}: each truncation of the body -> cannot_open", str(wrong[:5]))
        t.check(receive(body + b"\x00", psk) == "cannot_open", f"self: {case['name']}: a byte after the body -> cannot_open")
        other = clamp(hashlib.sha256(b"other").digest())
        t.check(receive(body, other) == "cannot_open", f"self: {case['name']}: opened with another key -> cannot_open")
    msg0 = bytes.fromhex(pv[0]["hex"])
    t.check(receive(seal_with(b"", ppk, esk), psk) == "empty", "self: sealed empty message (48 bytes) -> empty")
    t.check(receive(seal_with(msg0[:-1], ppk, esk), psk) == "truncated", "self: sealed cut message -> truncated")
    t.check(receive(seal_with(msg0 + bytes(4048 - len(msg0)), ppk, esk), psk) == "trailing_bytes",
            "self: 4,096-byte body (4,048-byte message) -> trailing_bytes (not too_large)")
    t.check(receive(seal_with(msg0 + bytes(4049 - len(msg0)), ppk, esk), psk) == "too_large",
            "self: 4,097-byte body that would open -> too_large (size first)")
    t.check(receive(bytes(4096), psk) == "cannot_open", "self: 4,096 zero bytes -> cannot_open")
    # A low-order ephemeral key makes the shared secret zero for any provisioning key, so anyone
    # (the relay) could box a message under HSalsa20(0): §7.3's "cannot forge one that opens"
    # rests on the opener refusing that (libsodium does; L9).  Checked with the forged box.
    t.check(hsalsa20(sodium.crypto_scalarmult(psk, x25519(esk))) == sodium.crypto_box_beforenm(x25519(esk), psk),
            "self: written-out HSalsa20 of the X25519 secret = crypto_box_beforenm")
    forged_key = hsalsa20(bytes(32))
    for name, u in small_names:
        lo = u.to_bytes(32, "little")
        nonce = seal_nonce(lo, ppk)
        body = lo + sodium.crypto_secretbox(msg0, nonce, forged_key)
        # It is a real forgery: the box opens under the zero secret's key when nobody checks.
        real = sodium.crypto_secretbox_open(body[32:], nonce, forged_key) == msg0
        got = receive(body, psk)
        t.check(real and got == "cannot_open",
                f"self: body forged with a small-order ephemeral key ({name}) -> cannot_open", f"{real}, {got}")
    t.check(receive(bytes(48), psk) == "cannot_open", "self: 48 zero bytes -> cannot_open")


def hsalsa20(key, nonce16=bytes(16)):
    """HSalsa20 (the key derivation of crypto_box_beforenm: HSalsa20(shared secret, 0))."""
    def rotl(v, c):
        return ((v << c) | (v >> (32 - c))) & 0xFFFFFFFF
    sigma = b"expand 32-byte k"
    w = lambda b: [int.from_bytes(b[i:i + 4], "little") for i in range(0, len(b), 4)]
    c, k, n = w(sigma), w(key), w(nonce16)
    x = [c[0], k[0], k[1], k[2], k[3], c[1], n[0], n[1], n[2], n[3], c[2], k[4], k[5], k[6], k[7], c[3]]
    for _ in range(10):
        for a, b, cc, d in ((0, 4, 8, 12), (5, 9, 13, 1), (10, 14, 2, 6), (15, 3, 7, 11),
                            (0, 1, 2, 3), (5, 6, 7, 4), (10, 11, 8, 9), (15, 12, 13, 14)):
            x[b] ^= rotl((x[a] + x[d]) & 0xFFFFFFFF, 7)
            x[cc] ^= rotl((x[b] + x[a]) & 0xFFFFFFFF, 9)
            x[d] ^= rotl((x[cc] + x[b]) & 0xFFFFFFFF, 13)
            x[a] ^= rotl((x[d] + x[cc]) & 0xFFFFFFFF, 18)
    return b"".join(x[i].to_bytes(4, "little") for i in (0, 5, 10, 15, 6, 7, 8, 9))


def decode_version(code):
    rest = code[len(PREFIX):]
    return (B64_VALUE[rest[0]] << 2) | (B64_VALUE[rest[1]] >> 4)


def expected_for_flip(data, i, bit, n):
    """The error §7.2's order gives for one bit flipped at byte i of a valid message (n = the
    account length), or None when the outcome depends on more than the field (e.g. the name
    byte turning into another valid character)."""
    v = data[i] ^ (1 << bit)
    if i == 0:
        return "unsupported_version"
    if i == 1:
        if v == 0 or v > 32:
            return "bad_account"
        return None          # another length: the fields shift (not a single-field question)
    if 2 <= i < 2 + n:
        return "ok" if v in ACCOUNT_BYTES else "bad_account"
    if 2 + n <= i < 6 + n:
        did = int.from_bytes(data[2 + n:6 + n], "big") ^ (1 << (8 * (5 + n - i) + bit))
        return "ok" if 2 <= did <= 65_535 else "bad_device_id"
    if 6 + n <= i < 22 + n:
        return "ok"          # a token byte: any 16 bytes
    if 22 + n <= i < 54 + n:
        j = i - (22 + n)
        if (j == 0 and bit < 3) or (j == 31 and bit >= 6):
            return "bad_identity_key"
        return "identity_key_mismatch"
    if 54 + n <= i < 86 + n:
        return "identity_key_mismatch"
    if i == 86 + n:
        if bit >= 3:
            return "unknown_flags"
        if bit == 2:
            # Setting it without a secret: 32 bytes missing; clearing it: the secret is left over.
            return "truncated" if data[i] & 4 == 0 else "trailing_bytes"
        return "ok"
    return "ok"              # a secret byte: any 32 bytes


# ---------------------------------------------------------------------------

def check_file(t, path):
    with open(path, encoding="utf-8") as f:
        vectors = json.load(f)
    t.check(vectors.get("format") == "hush-link-vectors/2", "link.json: format hush-link-vectors/2",
            repr(vectors.get("format")))
    t.check(set(vectors) == {"format", "spec", "link_codes", "provisioning", "sealed"}
            and set(vectors.get("link_codes", {})) == {"valid", "invalid"}
            and set(vectors.get("provisioning", {})) == {"valid", "invalid"},
            "link.json: only the keys this checker reads (and `spec`)", str(sorted(vectors)))
    for case in vectors["link_codes"]["valid"]:
        check_code_valid(t, case)
    for case in vectors["link_codes"]["invalid"]:
        check_code_invalid(t, case)
    for case in vectors["provisioning"]["valid"]:
        check_prov_valid(t, case)
    for case in vectors["provisioning"]["invalid"]:
        check_prov_invalid(t, case)
    for case in vectors["sealed"]:
        check_sealed(t, case)
    try:
        self_checks(t, vectors)
    except Exception as e:                                  # a broken base case, not a pass
        t.check(False, "self-checks ran to the end", f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import client_check
    client_check.VERBOSE = "-v" in sys.argv
    tally = client_check.Tally()
    args = [a for a in sys.argv[1:] if a != "-v"]
    p = args[0] if args else "TestVectors/client/link.json"
    check_file(tally, os.path.join(p, "link.json") if os.path.isdir(p) else p)
    print(f"link-check: {tally.passed} passed, {tally.failed} failed")
    sys.exit(0 if tally.failed == 0 else 1)
