#!/usr/bin/env python3
"""Writes TestVectors/client/group-state.json (Docs/spec/client.md §6.2–§6.4): group states as
bytes, malformed inputs with the decoding error of §6.2's order, and acceptance cases of §6.3
and §6.4. Deterministic (no randomness). The Swift implementation is checked against the file by
Messenger/Tests/HushClientTests/GroupStateVectorTests.swift, an independent reader by
Tools/spec-check/client_check.py.

    python3 Tools/group-vectors/group_state_vectors.py > TestVectors/client/group-state.json
"""
import json

def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)

def state(gid, revision, name, members):
    """members: [(account, admin)] already in the order to write (may be wrong on purpose)."""
    out = bytearray([0x01]) + gid + varint(revision)
    nb = name.encode() if isinstance(name, str) else name
    out += varint(len(nb)) + nb + varint(len(members))
    for account, admin in members:
        ab = account.encode() if isinstance(account, str) else account
        out += varint(len(ab)) + ab + bytes([admin if isinstance(admin, int) else (1 if admin else 0)])
    return bytes(out)

G = bytes(range(16))
G2 = bytes([0xA5] * 16)

def valid_case(name, gid, revision, gname, members):
    members = sorted(members, key=lambda m: m[0].encode())
    return {"name": name, "hex": state(gid, revision, gname, members).hex(), "group_id": gid.hex(), "revision": revision,
            "group_name": gname, "members": [{"account": a, "admin": bool(x)} for a, x in members]}

valid = [
    valid_case("spec example", G, 300, "hi", [("alice", True), ("bob", False), ("carol", False)]),
    valid_case("one member, empty name", G2, 1, "", [("solo", True)]),
    valid_case("revision 2^64-1, two admins", G, 2**64 - 1, "été ✓", [("a.b_c-d", True), ("z9", True), ("m", False)]),
    valid_case("256 members", G, 7, "big", [("m%03d" % i, i == 255) for i in range(256)]),
    valid_case("name of 100 bytes, account of 32", G2, 128, "n" * 100, [("x" * 32, True)]),
]

def bad(name, data, error):
    return {"name": name, "hex": data.hex(), "error": error}

head = bytes([0x01]) + G + varint(1) + varint(0)  # revision 1, empty name
def m(account, role):
    ab = account.encode() if isinstance(account, str) else account
    return varint(len(ab)) + ab + bytes([role])

invalid = [
    bad("empty", b"", "empty"),
    bad("version 2", bytes([0x02]) + G + varint(1) + varint(0) + varint(1) + m("a", 1), "unsupported_version"),
    bad("version 0 on a short input", bytes([0x00]), "unsupported_version"),
    bad("no group id", bytes([0x01]) + G[:15], "truncated"),
    bad("no revision", bytes([0x01]) + G, "truncated"),
    bad("revision runs past the end", bytes([0x01]) + G + bytes([0x80]), "truncated"),
    bad("revision not canonical", bytes([0x01]) + G + bytes([0x81, 0x00]) + varint(0) + varint(1) + m("a", 1), "bad_varint"),
    bad("revision over 64 bits", bytes([0x01]) + G + bytes([0xFF] * 9 + [0x02]) + varint(0) + varint(1) + m("a", 1), "bad_varint"),
    bad("name length 101", bytes([0x01]) + G + varint(1) + varint(101) + b"n" * 101 + varint(1) + m("a", 1), "bad_name"),
    bad("name length 101 past the end", bytes([0x01]) + G + varint(1) + varint(101), "bad_name"),
    bad("name cut", bytes([0x01]) + G + varint(1) + varint(5) + b"ab", "truncated"),
    bad("name not UTF-8", bytes([0x01]) + G + varint(1) + varint(1) + b"\xff" + varint(1) + m("a", 1), "bad_name"),
    bad("no member count", head, "truncated"),
    bad("no members", head + varint(0), "bad_member_count"),
    bad("257 members", head + varint(257), "bad_member_count"),
    bad("member count not canonical", head + bytes([0x81, 0x00]), "bad_varint"),
    bad("account length 33", head + varint(1) + varint(33) + b"x" * 33 + bytes([1]), "bad_account"),
    bad("account length 40 past the end", head + varint(1) + varint(40), "bad_account"),
    bad("account cut", head + varint(1) + varint(5) + b"ali", "truncated"),
    bad("empty account", head + varint(1) + varint(0) + bytes([1]), "bad_account"),
    bad("uppercase account", head + varint(1) + m("Bob", 1), "bad_account"),
    bad("account with #", head + varint(1) + m("#bob", 1), "bad_account"),
    bad("account not UTF-8", head + varint(1) + varint(1) + b"\xff" + bytes([1]), "bad_account"),
    bad("members out of order", head + varint(2) + m("bob", 1) + m("alice", 0), "not_ascending"),
    bad("member repeated", head + varint(2) + m("bob", 1) + m("bob", 0), "not_ascending"),
    bad("byte order, not length: b before ab", head + varint(2) + m("b", 1) + m("ab", 0), "not_ascending"),
    bad("role missing", head + varint(1) + varint(3) + b"bob", "truncated"),
    bad("role 2", head + varint(1) + m("bob", 2), "bad_role"),
    bad("no admin", head + varint(1) + m("bob", 0), "no_admin"),
    bad("second member missing", head + varint(2) + m("bob", 1), "truncated"),
    bad("trailing byte", head + varint(1) + m("bob", 1) + b"\x00", "trailing_bytes"),
    bad("no admin and trailing: no_admin first", head + varint(1) + m("bob", 0) + b"\x00", "no_admin"),
    bad("bad role before a later ordering error", head + varint(2) + m("bob", 3) + m("alice", 1), "bad_role"),
]

def S(revision, name, members, gid=G):
    return state(gid, revision, name, sorted(members, key=lambda x: x[0].encode()))

s1 = S(1, "g", [("alice", 1), ("bob", 0), ("carol", 0)])
s2_by_alice = S(2, "g", [("alice", 1), ("bob", 0)])
s2_forged = S(2, "mine", [("bob", 1), ("carol", 0)])
s2_other = S(2, "h", [("alice", 1), ("bob", 0), ("carol", 0)])
s2_promote = S(2, "g", [("alice", 1), ("bob", 1), ("carol", 0)])
s3_by_bob = S(3, "g", [("alice", 1), ("bob", 1)])

def greater(a, b):
    return a > b  # bytes compare lexicographically (shorter prefix first)

accept = [
    {"name": "invitation from the admin", "held": None, "receiver": "bob", "sender": "alice", "state": s1.hex(), "result": s1.hex()},
    {"name": "invitation from a non-admin", "held": None, "receiver": "bob", "sender": "carol", "state": s1.hex(), "result": None},
    {"name": "invitation that does not name the receiver", "held": None, "receiver": "dave", "sender": "alice", "state": s1.hex(), "result": None},
    {"name": "admin change, next revision", "held": s1.hex(), "receiver": "bob", "sender": "alice", "state": s2_by_alice.hex(), "result": s2_by_alice.hex()},
    {"name": "removed member keeps the state that removes it", "held": s1.hex(), "receiver": "carol", "sender": "alice", "state": s2_by_alice.hex(), "result": s2_by_alice.hex()},
    {"name": "a member's forgery (admin in the new state only)", "held": s1.hex(), "receiver": "carol", "sender": "bob", "state": s2_forged.hex(), "result": s1.hex()},
    {"name": "same state again", "held": s1.hex(), "receiver": "bob", "sender": "alice", "state": s1.hex(), "result": s1.hex()},
    {"name": "older revision", "held": s2_by_alice.hex(), "receiver": "bob", "sender": "alice", "state": s1.hex(), "result": s2_by_alice.hex()},
    {"name": "same revision, greater encoding wins", "held": s2_by_alice.hex(), "receiver": "bob", "sender": "alice",
     "state": s2_other.hex(), "result": (s2_other if greater(s2_other, s2_by_alice) else s2_by_alice).hex()},
    {"name": "same revision, smaller encoding loses", "held": s2_other.hex(), "receiver": "bob", "sender": "alice",
     "state": s2_by_alice.hex(), "result": (s2_by_alice if greater(s2_by_alice, s2_other) else s2_other).hex()},
    {"name": "a promoted admin's later change", "held": s2_promote.hex(), "receiver": "alice", "sender": "bob", "state": s3_by_bob.hex(), "result": s3_by_bob.hex()},
    {"name": "the same change before the promotion arrived", "held": s1.hex(), "receiver": "alice", "sender": "bob", "state": s3_by_bob.hex(), "result": s1.hex()},
    {"name": "leave by a member", "held": s1.hex(), "receiver": "bob", "sender": "carol", "leave": True,
     "result": S(1, "g", [("alice", 1), ("bob", 0)]).hex()},
    {"name": "leave by the last admin: the first remaining member becomes admin", "held": s1.hex(), "receiver": "carol", "sender": "alice", "leave": True,
     "result": S(1, "g", [("bob", 1), ("carol", 0)]).hex()},
    {"name": "leave by a non-member", "held": s1.hex(), "receiver": "bob", "sender": "dave", "leave": True, "result": s1.hex()},
    {"name": "leave naming the receiver itself", "held": s1.hex(), "receiver": "bob", "sender": "bob", "leave": True, "result": s1.hex()},
    {"name": "leave for a group not held", "held": None, "receiver": "bob", "sender": "alice", "leave": True, "result": None},
]

print(json.dumps({"format": "hush-group-state-vectors/1", "spec": "Docs/spec/client.md §6.2-§6.4",
                  "valid": valid, "invalid": invalid, "accept": accept}, indent=1, ensure_ascii=False))
