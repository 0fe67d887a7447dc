#!/usr/bin/python3
"""Writes TestVectors/client/link.json (Docs/spec/client.md §7): link codes (§7.1), provisioning
messages (§7.2) with malformed inputs and the decoding error of §7.2's order, and sealed
provisioning bodies (§7.3). Deterministic: every key is derived from fixed bytes, and the sealed
boxes are built here from NaCl primitives (crypto_box with the ephemeral key given, nonce
BLAKE2b-192(ephemeral public || recipient public)), each then opened with pynacl's own
nacl.public.SealedBox to prove it is libsodium's crypto_box_seal. The Swift implementation is
checked against the file by Messenger/Tests/HushClientTests/LinkVectorTests.swift.

    /usr/bin/python3 Tools/link-vectors/link_vectors.py > TestVectors/client/link.json   (Debian python3-nacl)
"""
import base64
import hashlib
import json

import nacl.bindings as b
import nacl.encoding
import nacl.hash
import nacl.public

PREFIX = "hush-link:"

def clamp(k):
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return bytes(k)

def keypair(seed_byte):
    sk = clamp(hashlib.sha256(bytes([seed_byte]) * 32).digest())
    return sk, b.crypto_scalarmult_base(sk)

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def code_bytes(version, address, key, check=None):
    body = bytes([version]) + address + key
    return body + (check if check is not None else hashlib.sha256(body).digest()[:4])

def code(version, address, key, check=None):
    return PREFIX + b64url(code_bytes(version, address, key, check))

ADDR = bytes(range(0x10, 0x20))
PROV_SK, PROV_PK = keypair(0x01)
PROV2_SK, PROV2_PK = keypair(0x02)

link_valid = [
    {"name": "address 10..1f, key from seed 01", "address": ADDR.hex(), "public_key": PROV_PK.hex(), "code": code(1, ADDR, PROV_PK)},
    {"name": "address of ff bytes, key from seed 02", "address": (b"\xff" * 16).hex(), "public_key": PROV2_PK.hex(),
     "code": code(1, b"\xff" * 16, PROV2_PK)},
    {"name": "address of zero bytes", "address": (b"\x00" * 16).hex(), "public_key": PROV_PK.hex(), "code": code(1, b"\x00" * 16, PROV_PK)},
]
for c in link_valid:
    assert len(c["code"]) == 81

good = code(1, ADDR, PROV_PK)
body = good[len(PREFIX):]

def swap_char(s, i, ch):
    return s[:i] + ch + s[i + 1:]

# The last character carries 2 unused bits (53 bytes = 17 groups of 3 and 2 bytes): set one.
last_index = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(body[-1])
noncanon = PREFIX + body[:-1] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last_index | 1]
assert last_index & 3 == 0

typo = swap_char(body, 30, "A" if body[30] != "A" else "B")
link_invalid = [
    {"name": "empty", "code": "", "error": "missing_prefix"},
    {"name": "no prefix", "code": body, "error": "missing_prefix"},
    {"name": "prefix in capitals", "code": "HUSH-LINK:" + body, "error": "missing_prefix"},
    {"name": "one character short", "code": good[:-1], "error": "wrong_length"},
    {"name": "one character more", "code": good + "A", "error": "wrong_length"},
    {"name": "padding added", "code": good + "=", "error": "wrong_length"},
    {"name": "standard base64 '+' instead of '-'", "code": PREFIX + swap_char(body, 5, "+"), "error": "invalid_character"},
    {"name": "a space inside", "code": PREFIX + swap_char(body, 40, " "), "error": "invalid_character"},
    {"name": "unused bits set in the last character", "code": noncanon, "error": "non_canonical"},
    {"name": "version 2 (check correct)", "code": code(2, ADDR, PROV_PK), "error": "unsupported_version"},
    {"name": "version 0 (check correct)", "code": code(0, ADDR, PROV_PK), "error": "unsupported_version"},
    {"name": "one character changed (a typo)", "code": PREFIX + typo, "error": "checksum_mismatch"},
    {"name": "check bytes zero", "code": code(1, ADDR, PROV_PK, b"\x00" * 4), "error": "checksum_mismatch"},
    {"name": "key all zero (low order, check correct)", "code": code(1, ADDR, b"\x00" * 32), "error": "invalid_key"},
    {"name": "key p (non-canonical, check correct)", "code": code(1, ADDR, bytes.fromhex("ed" + "ff" * 30 + "7f")), "error": "invalid_key"},
]
# Surrounding whitespace is ignored (a valid case).
link_valid.append({"name": "surrounded by a space and a line break", "address": ADDR.hex(), "public_key": PROV_PK.hex(),
                   "code": " " + good + "\n", "canonical": good})

# --- §7.2 provisioning messages ---

def be32(v):
    return v.to_bytes(4, "big")

# Version 2: the link token (16 bytes, relay.md §22.4) follows the device id.
TOKEN = bytes(range(0x60, 0x70))

def message(account, device, sk, pk, flags, secret=b"", token=TOKEN, version=2):
    a = account.encode() if isinstance(account, str) else account
    return bytes([version, len(a)]) + a + be32(device) + token + sk + pk + bytes([flags]) + secret

ID_SK, ID_PK = keypair(0x10)
SECRET = bytes(range(0xA0, 0xC0))

def valid_message(name, account, device, flags, secret, token=TOKEN):
    m = message(account, device, ID_SK, ID_PK, flags, secret, token)
    return {"name": name, "hex": m.hex(), "account": account, "device_id": device, "link_token": token.hex(),
            "identity_private": ID_SK.hex(),
            "identity_public": ID_PK.hex(), "sealed_secret": secret.hex() if secret else None,
            "read_receipts": bool(flags & 1), "sealed_from_anyone": bool(flags & 2)}

prov_valid = [
    valid_message("alice device 2, read receipts, secret", "alice", 2, 0b101, SECRET),
    valid_message("bob device 16, nothing set, no secret", "bob", 16, 0, b""),
    valid_message("32-byte name, device 65535, every flag", "a" * 30 + "._", 65_535, 0b111, SECRET),
    valid_message("from anyone without a secret, token of ff bytes", "x-9", 3, 0b010, b"", b"\xff" * 16),
]

def bad(name, data, error):
    return {"name": name, "hex": data.hex(), "error": error}

ok = message("alice", 2, ID_SK, ID_PK, 0b101, SECRET)
unclamped = bytearray(ID_SK); unclamped[0] |= 1
high = bytearray(ID_SK); high[31] |= 0x80
nobit = bytearray(ID_SK); nobit[31] &= 0xBF
_, OTHER_PK = keypair(0x11)
prov_invalid = [
    bad("empty", b"", "empty"),
    bad("version 1 (the format before link tokens)", message("alice", 2, ID_SK, ID_PK, 0b101, SECRET, b"", 1), "unsupported_version"),
    bad("version 3", bytes([3]) + ok[1:], "unsupported_version"),
    bad("version only", bytes([2]), "truncated"),
    bad("name length 0", bytes([2, 0]) + ok[2:], "bad_account"),
    bad("name length 33", bytes([2, 33]) + b"a" * 33 + ok[7:], "bad_account"),
    bad("name runs past the end", bytes([2, 5]) + b"ali", "truncated"),
    bad("name with a capital", message("Alice", 2, ID_SK, ID_PK, 0), "bad_account"),
    bad("name not UTF-8", message(b"al\xffce", 2, ID_SK, ID_PK, 0), "bad_account"),
    bad("device id 0", message("alice", 0, ID_SK, ID_PK, 0), "bad_device_id"),
    bad("device id 1", message("alice", 1, ID_SK, ID_PK, 0), "bad_device_id"),
    bad("device id 65536", message("alice", 65_536, ID_SK, ID_PK, 0), "bad_device_id"),
    bad("device id 2^31", message("alice", 2**31, ID_SK, ID_PK, 0), "bad_device_id"),
    bad("device id cut", ok[:9], "truncated"),
    bad("link token cut", ok[:11 + 15], "truncated"),
    bad("private key cut", ok[:11 + 16 + 31], "truncated"),
    bad("private key not clamped (low bits)", message("alice", 2, bytes(unclamped), ID_PK, 0), "bad_identity_key"),
    bad("private key not clamped (top bit)", message("alice", 2, bytes(high), ID_PK, 0), "bad_identity_key"),
    bad("private key not clamped (bit 254 clear)", message("alice", 2, bytes(nobit), ID_PK, 0), "bad_identity_key"),
    bad("public key cut", ok[:11 + 16 + 32 + 31], "truncated"),
    bad("public key of another private key", message("alice", 2, ID_SK, OTHER_PK, 0), "identity_key_mismatch"),
    bad("no flags byte", ok[:11 + 16 + 64], "truncated"),
    bad("flag bit 3", message("alice", 2, ID_SK, ID_PK, 0b1000), "unknown_flags"),
    bad("flag bit 7", message("alice", 2, ID_SK, ID_PK, 0x80), "unknown_flags"),
    bad("secret flagged, absent", message("alice", 2, ID_SK, ID_PK, 0b100), "truncated"),
    bad("secret flagged, 31 bytes", message("alice", 2, ID_SK, ID_PK, 0b100, SECRET[:31]), "truncated"),
    bad("one byte after the secret", ok + b"\x00", "trailing_bytes"),
    bad("secret present, not flagged", message("alice", 2, ID_SK, ID_PK, 0b001, SECRET), "trailing_bytes"),
]

# --- §7.3 sealed bodies (libsodium's crypto_box_seal, built with a fixed ephemeral key) ---

def seal(plain, recipient_pk, eph_seed):
    esk, epk = keypair(eph_seed)
    nonce = nacl.hash.blake2b(epk + recipient_pk, digest_size=24, encoder=nacl.encoding.RawEncoder)
    sealed = epk + b.crypto_box(plain, nonce, recipient_pk, esk)
    # pynacl's SealedBox is libsodium's crypto_box_seal_open: it must open this.
    assert nacl.public.SealedBox(nacl.public.PrivateKey(PROV_SK if recipient_pk == PROV_PK else PROV2_SK)).decrypt(sealed) == plain
    return sealed

sealed_cases = []
for name, plain, eph in [("alice device 2 with a secret", ok, 0x20), ("bob device 16", bytes.fromhex(prov_valid[1]["hex"]), 0x21)]:
    s = seal(plain, PROV_PK, eph)
    sealed_cases.append({"name": name, "provisioning_private": PROV_SK.hex(), "sealed": s.hex(), "plaintext": plain.hex()})
    # Any changed byte: the box does not open.
    t = bytearray(s); t[len(t) // 2] ^= 0x01
    sealed_cases.append({"name": name + ", one bit flipped", "provisioning_private": PROV_SK.hex(), "sealed": bytes(t).hex(), "error": "cannot_open"})
s = seal(ok, PROV2_PK, 0x22)
sealed_cases.append({"name": "sealed to another provisioning key", "provisioning_private": PROV_SK.hex(), "sealed": s.hex(), "error": "cannot_open"})
sealed_cases.append({"name": "47 bytes", "provisioning_private": PROV_SK.hex(), "sealed": s[:47].hex(), "error": "cannot_open"})
sealed_cases.append({"name": "4,097 bytes", "provisioning_private": PROV_SK.hex(), "sealed": (b"\x00" * 4097).hex(), "error": "too_large"})
# A box that opens but holds an invalid message: the message's error.
s = seal(ok + b"\x00", PROV_PK, 0x23)
sealed_cases.append({"name": "opens, trailing byte inside", "provisioning_private": PROV_SK.hex(), "sealed": s.hex(), "error": "trailing_bytes"})

print(json.dumps({
    "format": "hush-link-vectors/2",
    "spec": "Docs/spec/client.md §7",
    "link_codes": {"valid": link_valid, "invalid": link_invalid},
    "provisioning": {"valid": prov_valid, "invalid": prov_invalid},
    "sealed": sealed_cases,
}, indent=1, ensure_ascii=False))
