#!/usr/bin/env python3
"""Independent checker of Hush group states (Docs/spec/client.md §6.2-§6.4) and, through
link_check.py, of device linking (§7.1-§7.3: link codes, provisioning messages, sealing).

Written from the specification pages alone -- Docs/spec/client.md §6 (with §2 for the varint
rules), Docs/spec/relay.md §5 (account names) and Docs/spec/README.md (conventions) -- and the
vector file, by a reviewer who did not read Hush's Swift sources or tests (Messenger/,
Sources/) or the vector generator (Tools/group-vectors/).  Where the page leaves a reading
open, or the vectors decide something the page does not say, the check is marked [guess] and
the finding is REVIEW.md, section "client.md §6 (groups)", items G1, G2, ...

It replays TestVectors/client/group-state.json (format hush-group-state-vectors/1, §6.2):

* valid:   decodes `hex` (§6.2) and compares every field (group id, revision, name, members in
           order with their admin flags); encodes the listed fields and compares the bytes;
* invalid: decodes `hex` and compares the first error, in the order of §6.2's "Decoding, in this
           order", by its snake-case name;
* accept:  applies §6.3 (an incoming `state` from `sender`) or §6.4 (`leave: true`) to `held`
           with receiver `receiver`, and compares the state held afterwards with `result`.

Then a few self-checks of rules no vector pins (the page's own example bytes, §2's varint
bounds, RFC 3629 UTF-8), and of the [guess] readings, each labelled.

Usage: python3 Tools/spec-check/client_check.py TestVectors/client [-v]
       (the folder holding group-state.json and link.json -- both are checked and both must be
       there -- or one of the files itself)

§6 needs the standard library only; §7 (link_check.py, written separately from §7 alone, see
its docstring and REVIEW.md "client.md §7", L1...) needs PyNaCl: without it the script re-runs
itself under Debian's /usr/bin/python3 (python3-nacl).  Prints a line per failed check (with
-v: one per check, the vector cases one line each), then, for the folder, a line per file and
"client-check: N passed, M failed"; exits 1 if any check failed.
"""

import json
import os
import sys

VERBOSE = False

# ---------------------------------------------------------------------------
# Constants (client.md §6.2, relay.md §5)
# ---------------------------------------------------------------------------

VERSION = 0x01
GROUP_ID_LEN = 16
NAME_MAX = 100                    # §6.2: name 0-100 bytes of UTF-8
MEMBERS_MIN, MEMBERS_MAX = 1, 256  # §6.2: 1 <= n <= 256
ACCOUNT_MAX = 32                  # §6.2 "a length over 32 -> bad_account"; relay.md §5: 1-32 bytes
ROLE_MEMBER, ROLE_ADMIN = 0x00, 0x01
ACCOUNT_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789._-")   # relay.md §5

# §6.2's error names, in the order its "Decoding, in this order" paragraph introduces them.
ERROR_NAMES = ("empty", "unsupported_version", "truncated", "bad_varint", "bad_name",
               "bad_member_count", "bad_account", "not_ascending", "bad_role", "no_admin",
               "trailing_bytes")

# ---------------------------------------------------------------------------
# Guesses: each [guess] reading registers its REVIEW.md item when a case relies on it, so that
# -v shows which vector cases (or self-checks) depend on a reading the page does not state.
# ---------------------------------------------------------------------------

_guesses_used = []


def guess(item):
    if item not in _guesses_used:
        _guesses_used.append(item)


def take_guesses():
    used = list(_guesses_used)
    _guesses_used.clear()
    return used


# ---------------------------------------------------------------------------
# State and decoding (§6.2)
# ---------------------------------------------------------------------------

class DecodeError(Exception):
    """§6.2's decode errors, by the snake-case name the vectors use."""

    def __init__(self, name):
        assert name in ERROR_NAMES, name
        super().__init__(name)
        self.name = name


class Member:
    __slots__ = ("account", "admin")

    def __init__(self, account, admin):
        self.account = account      # bytes (relay.md §5 names are ASCII)
        self.admin = admin          # bool

    def __eq__(self, other):
        return (self.account, self.admin) == (other.account, other.admin)

    def __repr__(self):
        return f"{self.account.decode('ascii', 'replace')}{' (admin)' if self.admin else ''}"


class GroupState:
    def __init__(self, group_id, revision, name, members):
        self.group_id = group_id    # 16 bytes
        self.revision = revision    # int
        self.name = name            # str
        self.members = members      # [Member], ascending by account bytes

    def member(self, account):
        return next((m for m in self.members if m.account == account), None)

    def is_member(self, account):
        return self.member(account) is not None

    def is_admin(self, account):
        m = self.member(account)
        return m is not None and m.admin


def is_valid_account_name(b):
    """relay.md §5: 1-32 bytes of a-z 0-9 . _ - (lowercase ASCII)."""
    return 1 <= len(b) <= ACCOUNT_MAX and all(c in ACCOUNT_BYTES for c in b)


class Reader:
    def __init__(self, data, pos):
        self.data, self.pos = data, pos

    def remaining(self):
        return len(self.data) - self.pos

    def varint(self):
        """client.md §2: unsigned LEB128, at most 10 bytes, the 10th at most 0x01, canonical (a
        multi-byte varint does not end in 0x00).  §6.2: running past the end is `truncated`, a
        non-canonical or over-long one `bad_varint`.  Read byte by byte, each byte checked as it
        is read: a 10th byte above 0x01 is `bad_varint` whatever follows, a varint cut before its
        last byte `truncated` whatever it held so far ([guess] G3: the order inside a varint)."""
        value = 0
        for i in range(10):
            if self.pos >= len(self.data):
                raise DecodeError("truncated")
            b = self.data[self.pos]
            self.pos += 1
            if i == 9 and b > 0x01:
                raise DecodeError("bad_varint")     # over 64 bits, or an 11th byte announced
            value |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                if i > 0 and b == 0:
                    raise DecodeError("bad_varint")  # redundant zero group
                return value
        raise AssertionError("unreachable: a 10th byte <= 0x01 has no continuation bit")

    def take(self, n):
        if n > self.remaining():
            raise DecodeError("truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out


def decode_state(data):
    """§6.2, "Decoding, in this order": the first failure is the error."""
    if len(data) == 0:
        raise DecodeError("empty")
    if data[0] != VERSION:
        raise DecodeError("unsupported_version")
    if len(data) < 1 + GROUP_ID_LEN:
        raise DecodeError("truncated")
    group_id = bytes(data[1:1 + GROUP_ID_LEN])
    r = Reader(data, 1 + GROUP_ID_LEN)
    revision = r.varint()
    # Revision 0 decodes: §6.2's list has no check for it ([guess] G6).
    name_len = r.varint()
    if name_len > NAME_MAX:
        raise DecodeError("bad_name")               # before the bytes are looked for
    name_bytes = r.take(name_len)
    try:
        # RFC 3629 UTF-8 (Python's strict decoder: no surrogates, no overlong forms, <= U+10FFFF);
        # the vectors pin only a lone 0xff ([guess] G5 for the rest).
        name = name_bytes.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise DecodeError("bad_name")
    n = r.varint()
    if n < MEMBERS_MIN or n > MEMBERS_MAX:
        raise DecodeError("bad_member_count")
    members, previous = [], None
    for _ in range(n):
        account_len = r.varint()
        if account_len > ACCOUNT_MAX:
            raise DecodeError("bad_account")        # before its bytes are read
        account = bytes(r.take(account_len))
        if not is_valid_account_name(account):
            raise DecodeError("bad_account")
        if previous is not None and not account > previous:
            raise DecodeError("not_ascending")      # strictly ascending byte order
        role = r.take(1)[0]
        if role not in (ROLE_MEMBER, ROLE_ADMIN):
            raise DecodeError("bad_role")
        members.append(Member(account, role == ROLE_ADMIN))
        previous = account
    if not any(m.admin for m in members):
        raise DecodeError("no_admin")
    if r.remaining():
        raise DecodeError("trailing_bytes")
    return GroupState(group_id, revision, name, members)


# ---------------------------------------------------------------------------
# Encoding (§6.2: canonical, one state has one encoding)
# ---------------------------------------------------------------------------

def varint(value):
    """The shortest LEB128 (§2), of a value below 2^64."""
    assert 0 <= value < 1 << 64, value
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_state(s):
    """Refuses (ValueError) a state §6.2's rules forbid, so that it never writes one the decoder
    refuses."""
    name = s.name.encode("utf-8")
    accounts = [m.account for m in s.members]
    if len(s.group_id) != GROUP_ID_LEN:
        raise ValueError("group id not 16 bytes")
    if len(name) > NAME_MAX:
        raise ValueError("name over 100 bytes")
    if not MEMBERS_MIN <= len(s.members) <= MEMBERS_MAX:
        raise ValueError(f"{len(s.members)} members")
    if not all(is_valid_account_name(a) for a in accounts):
        raise ValueError("invalid account name")
    if any(not a < b for a, b in zip(accounts, accounts[1:])):
        raise ValueError("accounts not strictly ascending")
    if not any(m.admin for m in s.members):
        raise ValueError("no admin")
    out = bytearray([VERSION]) + s.group_id + varint(s.revision) + varint(len(name)) + name
    out += varint(len(s.members))
    for m in s.members:
        out += varint(len(m.account)) + m.account + bytes([ROLE_ADMIN if m.admin else ROLE_MEMBER])
    return bytes(out)


# ---------------------------------------------------------------------------
# Accepting a state (§6.3) and leaving (§6.4)
# ---------------------------------------------------------------------------

def supersedes(s, c):
    """§6.3 rule 2: a greater revision, or the same revision and a greater encoding in byte
    order (Python compares bytes lexicographically, a proper prefix being smaller)."""
    return s.revision > c.revision or (s.revision == c.revision and encode_state(s) > encode_state(c))


def accept_state(held, incoming, receiver, sender):
    """§6.3: the state the receiver holds after `incoming` from `sender` (None: it holds none).
    `held` is the receiver's state for the incoming state's group (the caller checks the ids)."""
    if held is None:
        # An invitation: the sender an admin in S, the receiver's own account a member of S.
        return incoming if incoming.is_admin(sender) and incoming.is_member(receiver) else None
    # The sender an admin in C (not in S), and S supersedes C; anything else is ignored.  The
    # page asks nothing of the receiver here: a device removed earlier (not in C) still applies
    # a later state from an admin of C, e.g. one re-adding it ([guess] G8 when it does).
    if not held.is_member(receiver):
        guess("G8")
    if held.is_admin(sender) and supersedes(incoming, held):
        return incoming
    return held


def leave(held, receiver, sender):
    """§6.4: `0x12 || group_id` from `sender`."""
    if held is None:
        return None                                 # no state for the group: nothing to change
    if sender == receiver:
        # [guess] G1: the page's rule would remove the receiver's own account; the vector "leave
        # naming the receiver itself" keeps the state unchanged, so a leave from the receiver's
        # own account is ignored.
        guess("G1")
        return held
    if not held.is_member(sender):
        return held
    members = [Member(m.account, m.admin) for m in held.members if m.account != sender]
    if not members:
        # [guess] G2: the leaver was the only member (the receiver, removed earlier, is not in
        # the state): no state of 0 members exists (§6.2), so the receiver keeps the one it holds.
        guess("G2")
        return held
    if not any(m.admin for m in members):
        members[0].admin = True                     # first remaining member in byte order
    return GroupState(held.group_id, held.revision, held.name, members)


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

class Tally:
    def __init__(self):
        self.passed = self.failed = 0
        self.failures = []

    def check(self, ok, name, detail=""):
        used = take_guesses()
        label = name + (f"  [guess {', '.join(used)}]" if used else "")
        if ok:
            self.passed += 1
            if VERBOSE:
                print(f"PASS  {label}")
        else:
            self.failed += 1
            self.failures.append(name)
            print(f"FAIL  {label}" + (f": {detail}" if detail else ""))
        return ok


def outcome(data):
    try:
        decode_state(data)
        return "ok"
    except DecodeError as e:
        return e.name


def unhex(h, what):
    try:
        return bytes.fromhex(h)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not hex: {h!r}")


def state_fields(s):
    return (s.group_id.hex(), s.revision, s.name, [(m.account.decode("ascii"), m.admin) for m in s.members])


# ---------------------------------------------------------------------------
# The vector cases
# ---------------------------------------------------------------------------

# Each case holds exactly these keys (§6.2's format paragraph; `name` is the case's label, and the
# decoded name of a valid case is `group_name`: G4).
CASE_KEYS = {
    "valid": {"name", "hex", "group_id", "revision", "group_name", "members"},
    "invalid": {"name", "hex", "error"},
}
ACCEPT_KEYS = ({"name", "held", "receiver", "sender", "state", "result"},
               {"name", "held", "receiver", "sender", "leave", "result"})


def check_valid(t, case):
    label = f"valid: {case.get('name')}"
    try:
        data = unhex(case["hex"], "hex")
        want = (case["group_id"], case["revision"], case["group_name"],
                [(m["account"], m["admin"]) for m in case["members"]])
        if set(case) != CASE_KEYS["valid"] or any(set(m) != {"account", "admin"} for m in case["members"]):
            return t.check(False, label, f"unexpected fields {sorted(case)}")
        s = decode_state(data)
    except DecodeError as e:
        return t.check(False, label, f"decoding failed: {e.name}")
    except (KeyError, TypeError, ValueError) as e:
        return t.check(False, label, f"malformed case: {e}")
    got = state_fields(s)
    problems = [f"{field}: decoded {g!r}, listed {w!r}"
                for field, g, w in zip(("group_id", "revision", "group_name", "members"), got, want) if g != w]
    # Re-encode from the listed fields (not from the decoded state) and compare the bytes.
    try:
        listed = GroupState(bytes.fromhex(want[0]), want[1], want[2],
                            [Member(a.encode("utf-8"), bool(adm)) for a, adm in want[3]])
        encoded = encode_state(listed)
        if encoded != data:
            problems.append(f"encoding of the listed fields {encoded.hex()} != hex")
    except ValueError as e:
        problems.append(f"the listed fields cannot be encoded: {e}")
    return t.check(not problems, label, "; ".join(problems))


def check_invalid(t, case):
    label = f"invalid: {case.get('name')}"
    if set(case) != CASE_KEYS["invalid"]:
        return t.check(False, label, f"unexpected fields {sorted(case)}")
    want = case["error"]
    if want not in ERROR_NAMES:
        return t.check(False, label, f"listed error {want!r} is not one of §6.2's names")
    try:
        got = outcome(unhex(case["hex"], "hex"))
    except ValueError as e:
        return t.check(False, label, str(e))
    return t.check(got == want, f"{label} -> {want}", f"expected {want}, got {got}")


def check_accept(t, case):
    label = f"accept: {case.get('name')}"
    if set(case) not in ACCEPT_KEYS or ("leave" in case and case["leave"] is not True):
        return t.check(False, label, f"unexpected fields {sorted(case)}")
    try:
        held = None if case["held"] is None else decode_state(unhex(case["held"], "held"))
        want = None if case["result"] is None else unhex(case["result"], "result")
        if want is not None:
            decode_state(want)                       # a result must itself be a valid state
        receiver = case["receiver"].encode("utf-8")
        sender = case["sender"].encode("utf-8")
    except DecodeError as e:
        return t.check(False, label, f"held or result does not decode: {e.name}")
    except (TypeError, ValueError, AttributeError) as e:
        return t.check(False, label, f"malformed case: {e}")
    if "leave" in case:
        after = leave(held, receiver, sender)
    else:
        try:
            incoming = decode_state(unhex(case["state"], "state"))
        except DecodeError:
            incoming = None                          # §6.2: an invalid content is dropped
        except ValueError as e:
            return t.check(False, label, str(e))
        if incoming is None:
            after = held
        elif held is not None and held.group_id != incoming.group_id:
            # The format has one group per case: `held` is the receiver's state *for the group*
            # (G4); a held state of another group would leave the result undefined here.
            return t.check(False, label, "held and state name different groups")
        else:
            after = accept_state(held, incoming, receiver, sender)
    got = None if after is None else encode_state(after)
    return t.check(got == want, label,
                   f"expected {want.hex() if want else None}, got {got.hex() if got else None}")


# ---------------------------------------------------------------------------
# Self-checks: rules no vector pins, and the [guess] readings (labelled)
# ---------------------------------------------------------------------------

GID = bytes(range(16))


def st(revision, members, name="g"):
    """A state of group 00 01 ... 0f from 'account' / 'account*' (admin) strings."""
    return GroupState(GID, revision, name, [Member(a.rstrip("*").encode(), a.endswith("*")) for a in members])


def raw(revision=b"\x01", name=b"\x00", members=b"\x01\x01a\x01", count=None):
    """Hand-made bytes, for inputs the encoder refuses to write."""
    return b"\x01" + GID + revision + name + (count if count is not None else b"") + members


def self_checks(t):
    # The page's own example (§6.2), typed from the page, not from the vector file.
    example = bytes.fromhex("01 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f ac 02 02 68 69 03 05 61 6c 69 63"
                            " 65 01 03 62 6f 62 00 05 63 61 72 6f 6c 00")
    t.check(encode_state(GroupState(GID, 300, "hi", [Member(b"alice", True), Member(b"bob", False),
                                                   Member(b"carol", False)])) == example,
            "self: §6.2's example bytes")

    # §2's varint bounds inside the revision (the vectors have 2^64-1 and ff*9 02).
    cases = [
        ("revision 2^63 (10 bytes, 10th 0x01)", raw(revision=b"\x80" * 9 + b"\x01"), "ok"),
        ("revision: 10th byte 0x81 (an 11th byte announced)", raw(revision=b"\xff" * 9 + b"\x81" + b"\x00"), "bad_varint"),
        ("revision: 11 bytes", raw(revision=b"\xff" * 10 + b"\x01"), "bad_varint"),
        ("revision 0 (no check in §6.2's list)", raw(revision=b"\x00"), "ok", "G6"),
        ("name length not canonical (80 00)", raw(name=b"\x80\x00"), "bad_varint"),
        ("account length not canonical (81 00)", raw(members=b"\x81\x00", count=b"\x01"), "bad_varint"),
        ("account length runs past the end (80)", b"\x01" + GID + b"\x01\x00\x01\x80", "truncated"),
        ("name length 2^64-1 (bad_name before truncated)", raw(name=b"\xff" * 9 + b"\x01"), "bad_name"),
        ("member count 2^64-1", raw(name=b"\x00" + b"\xff" * 9 + b"\x01", members=b""), "bad_member_count"),
    ]
    for label, data, want, *item in cases:
        for g in item:
            guess(g)
        t.check(outcome(data) == want, f"self: {label} -> {want}", f"got {outcome(data)}")
    # G3: a 10th byte above 0x01 is refused as read, before the end of the input is looked for.
    guess("G3")
    t.check(outcome(b"\x01" + GID + b"\xff" * 10) == "bad_varint",
            "self: revision ff*10 at the end of the input -> bad_varint", outcome(b"\x01" + GID + b"\xff" * 10))
    guess("G3")
    t.check(outcome(b"\x01" + GID + b"\xff" * 9) == "truncated",
            "self: revision ff*9 at the end of the input -> truncated", outcome(b"\x01" + GID + b"\xff" * 9))

    # UTF-8 as RFC 3629 (G5): surrogates, overlong forms and code points above U+10FFFF refused;
    # any valid scalar value, including U+0000 and noncharacters, allowed.
    for label, name_bytes, want in [("a surrogate (ed a0 80)", b"\xed\xa0\x80", "bad_name"),
                                    ("an overlong NUL (c0 80)", b"\xc0\x80", "bad_name"),
                                    ("above U+10FFFF (f4 90 80 80)", b"\xf4\x90\x80\x80", "bad_name"),
                                    ("a cut sequence (e2 9c)", b"\xe2\x9c", "bad_name"),
                                    ("U+0000", b"\x00", "ok"),
                                    ("U+FFFF (a noncharacter)", b"\xef\xbf\xbf", "ok")]:
        guess("G5")
        data = raw(name=bytes([len(name_bytes)]) + name_bytes)
        t.check(outcome(data) == want, f"self: name {label} -> {want}", f"got {outcome(data)}")

    # Account names (relay.md §5): every allowed byte, and the first refused neighbours.
    for account, want in [(b"a.b_c-0z9", "ok"), (b"a" * 32, "ok"), (b"a/", "bad_account"),
                          (b"a:", "bad_account"), (b"a`", "bad_account"), (b"a{", "bad_account"),
                          (b"a ", "bad_account"), (b"*a", "bad_account")]:
        data = raw(members=bytes([len(account)]) + account + b"\x01", count=b"\x01")
        t.check(outcome(data) == want, f"self: account {account!r} -> {want}", f"got {outcome(data)}")

    # §6.3 and §6.4 on states no vector has.
    c = st(5, ["alice*", "bob", "carol"])
    t.check(accept_state(c, st(5, ["alice*", "bob", "carol"]), b"bob", b"alice") is c,
            "self: §6.3 the same state again is not accepted (not greater)")
    t.check(accept_state(c, st(4, ["alice*", "bob", "zed"], name="zzz"), b"bob", b"alice") is c,
            "self: §6.3 a lower revision loses whatever its bytes")
    t.check(accept_state(None, st(1, ["alice*", "bob", "carol"]), b"carol", b"bob") is None,
            "self: §6.3 an invitation from a member that is no admin in S is ignored")
    removed = st(6, ["alice*", "bob"])              # carol was removed at revision 6
    readd = st(7, ["alice*", "bob", "carol"])
    t.check(accept_state(removed, readd, b"carol", b"alice") is readd,
            "self: §6.3 a removed device accepts a later state re-adding it")
    # G7: a leave keeps the revision, so the state it leaves behind is smaller in byte order
    # than the one the leaver was still in (a greater member count); a copy of that earlier
    # state re-adds the leaver at this receiver (beyond §6.4's "known gap": no change is made).
    before = st(2, ["alice*", "bob", "carol"])
    after_leave = leave(before, b"bob", b"carol")
    t.check(accept_state(after_leave, before, b"bob", b"alice") is before,
            "self: §6.4 after a leave, the same earlier state again re-adds the leaver (G7)")
    big = st(2, ["a*"] + [f"m{i:03d}" for i in range(255)])      # 256 members
    big_after = leave(big, b"m000", b"m001")
    t.check(accept_state(big_after, big, b"m000", b"a") is big_after,
            "self: §6.4 ... but not from 256 members: varint(255) = ff 01 > varint(256) = 80 02 (G7)")
    guess("G2")
    t.check(leave(st(3, ["alice*"]), b"bob", b"alice") is not None,
            "self: §6.4 the only member leaves a removed receiver's state: state kept")
    t.check(state_fields(leave(st(3, ["alice*", "bob*", "carol"]), b"carol", b"alice"))[3]
            == [("bob", True), ("carol", False)],
            "self: §6.4 an admin leaves while another admin remains: nobody promoted")


# ---------------------------------------------------------------------------

def load_link_check():
    """link_check.py (client.md §7) needs PyNaCl.  Without it, re-run under Debian's
    /usr/bin/python3 (python3-nacl), as spec_check.py does; if that is no help, None (a failed
    check, never a silent skip)."""
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import link_check
        return link_check
    except ImportError:
        debian = "/usr/bin/python3"
        if os.path.exists(debian) and os.path.realpath(sys.executable) != os.path.realpath(debian) \
                and not os.environ.get("CLIENT_CHECK_REEXEC"):
            os.environ["CLIENT_CHECK_REEXEC"] = "1"
            os.execv(debian, [debian, os.path.abspath(__file__)] + sys.argv[1:])
        return None


def check_group_file(t, path):
    with open(path, encoding="utf-8") as f:
        vectors = json.load(f)
    t.check(vectors.get("format") == "hush-group-state-vectors/1",
            "group-state.json: format hush-group-state-vectors/1", repr(vectors.get("format")))
    t.check(set(vectors) == {"format", "spec", "valid", "invalid", "accept"},
            "group-state.json: only the keys this checker reads (and `spec`, G4)", str(sorted(vectors)))
    for case in vectors.get("valid", []):
        check_valid(t, case)
    for case in vectors.get("invalid", []):
        check_invalid(t, case)
    for case in vectors.get("accept", []):
        check_accept(t, case)
    self_checks(t)


def main(argv):
    global VERBOSE
    args = [a for a in argv[1:] if not a.startswith("-")]
    VERBOSE = "-v" in argv
    if len(args) != 1 or any(a not in ("-v",) for a in argv[1:] if a.startswith("-")):
        print(__doc__)
        return 2
    path = args[0]
    if os.path.isdir(path):
        # The folder: both files must be there (a missing one fails, it is not skipped).
        files = [("group", os.path.join(path, "group-state.json")), ("link", os.path.join(path, "link.json"))]
    elif os.path.basename(path) == "link.json":
        files = [("link", path)]
    else:
        files = [("group", path)]
    t = Tally()
    parts = []
    for kind, file in files:
        before = (t.passed, t.failed)
        if not os.path.exists(file):
            t.check(False, f"{os.path.basename(file)}: present", f"no {file}")
        elif kind == "group":
            check_group_file(t, file)
        else:
            link_check = load_link_check()
            if link_check is None:
                t.check(False, "link.json: PyNaCl importable (needed for client.md §7.3)",
                        "install python3-nacl or pynacl")
            else:
                link_check.check_file(t, file)
        parts.append(f"{os.path.basename(file)}: {t.passed - before[0]} passed, {t.failed - before[1]} failed")
    if len(parts) > 1:
        print("client-check: " + "; ".join(parts))
    print(f"client-check: {t.passed} passed, {t.failed} failed")
    return 0 if t.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
