#!/usr/bin/env python3
"""Independent reader of Hush encrypted backups (Docs/spec/backup.md, version 1).

First written from Docs/spec/backup.md (with README.md and client.md for context) and the
primary specifications it cites (libsodium crypto_pwhash Argon2id13 and
crypto_secretstream_xchacha20poly1305, RFC 5869) only, without reading Hush's sources, tests
or vector generator; the places where that page left a reading open are REVIEW.md, section
"backup.md" (B1…B16).  The page now states each of them, and every check here follows its
text (section cited at the check): none asserts a reading the page leaves open.

It opens the kept files of TestVectors/backup/, compares every decoded value with
expected.json (§7), and runs a rejection suite built from the kept files: each broken file must
be refused with the error, and the error fields, backup.md §2 / §4 / §5 name for it, in §2's
order (chunks and records interleaved, §2 step 6).  Besides the reader's checks it makes the
checks a restore makes at each record (§4 step 4: setting keys, the application-entry limit),
since Hush reads a backup only to restore it; the rest of §6 needs a store and is not checked.

Usage: /usr/bin/python3 Tools/spec-check/backup_check.py TestVectors/backup [-v]

Primitives: PyNaCl (Argon2id via nacl.pwhash.argon2id.kdf, which is libsodium's crypto_pwhash
with p = 1 as §3 requires; secretstream via nacl.bindings; X25519 for the profile's key pair),
hashlib/hmac for HKDF-SHA256 (RFC 5869, written out).
Prints one line per check and a summary; exits 0 only if every check passes.
"""

import hashlib
import hmac
import json
import os
import struct
import sys
import time
import unicodedata

try:
    import nacl.bindings as sodium
    import nacl.exceptions
    import nacl.pwhash.argon2id as argon2id
except ImportError:
    system = "/usr/bin/python3"
    if os.path.exists(system) and os.path.realpath(sys.executable) != os.path.realpath(system):
        os.execv(system, [system] + sys.argv)
    sys.exit("backup_check.py needs PyNaCl (Debian python3-nacl, or pip install pynacl)")

VERBOSE = False

# ---------------------------------------------------------------------------
# Constants (backup.md §1, §3, §4)
# ---------------------------------------------------------------------------

MAGIC = b"HUSHBKUP"
HEADER_LEN = 82
VERSION = 1
KDF_PASSPHRASE = 0x01
KDF_RECOVERY = 0x02
OPS_MIN, OPS_MAX = 1, 16
MEM_MIN, MEM_MAX = 8, 1_048_576          # KiB
SS_HEADER = 24
SS_ABYTES = 17
CHUNK_PLAIN_MAX = 65_536
L_MIN, L_MAX = SS_ABYTES, CHUNK_PLAIN_MAX + SS_ABYTES   # 17 ... 65,553
TAG_MESSAGE = 0
TAG_FINAL = 3
RECORD_MAX = 1_048_576
APPLICATION_MAX = 64

LABEL_RECOVERY = b"hush-backup/1 recovery key"
LABEL_KEY_CHECK = b"hush-backup/1 key check"
LABEL_STREAM = b"hush-backup/1 stream key"

T_PROFILE, T_SETTING, T_IDENTITY, T_MESSAGE, T_APPLICATION = 1, 2, 3, 4, 5
TYPE_NAMES = {T_PROFILE: "profile", T_SETTING: "setting", T_IDENTITY: "identity",
              T_MESSAGE: "message", T_APPLICATION: "application"}

# §5: settings a backup may carry (exact keys, and prefixes for the two families ending ".*").
SETTINGS_EXACT = {"relay.pinned-key", "privacy.read-receipts", "presence.setting",
                  "presence.subscriptions", "group.index"}
SETTINGS_PREFIX = ("media.pointer.", "identity.pending.", "group.state.", "group.ticks.")

assert sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES == SS_HEADER
assert sodium.crypto_secretstream_xchacha20poly1305_ABYTES == SS_ABYTES
assert sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE == TAG_MESSAGE
assert sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL == TAG_FINAL


# ---------------------------------------------------------------------------
# Errors: one class per name of backup.md §2 / §3 / §4 / §5.  `spec()` renders the name with
# its associated values in the spec's notation, which is what the checks compare.
# ---------------------------------------------------------------------------

class BackupError(Exception):
    name = "?"

    def __init__(self, *values):
        super().__init__(*values)
        self.values = values

    def spec(self):
        return self.name if not self.values else f"{self.name}({', '.join(map(str, self.values))})"

    def __str__(self):
        return self.spec()


class NotABackup(BackupError):
    name = "notABackup"


class Truncated(BackupError):
    name = "truncated"


class UnsupportedVersion(BackupError):
    name = "unsupportedVersion"


class UnsupportedKDF(BackupError):
    name = "unsupportedKDF"


class KdfLimitsOutOfRange(BackupError):
    name = "kdfLimitsOutOfRange"

    def spec(self):
        return f"kdfLimitsOutOfRange(operations: {self.values[0]}, memoryKiB: {self.values[1]})"


class SecretKindMismatch(BackupError):
    """expected = the kind the file needs (its kdf byte), §2 step 4."""
    name = "secretKindMismatch"

    def spec(self):
        return f"secretKindMismatch(expected: {self.values[0]})"


class WrongSecret(BackupError):
    name = "wrongSecret"


class Damaged(BackupError):
    name = "damaged"

    def spec(self):
        return f"damaged(chunk: {self.values[0]})"


class TrailingData(BackupError):
    name = "trailingData"


class InvalidRecord(BackupError):
    """invalidRecord(index:problem:); index counts records from 0 (the profile is record 0),
    the record being read (§4); problem rendered as §2's list spells it."""
    name = "invalidRecord"

    def spec(self):
        return inv(self.values[0], self.values[1])


class InvalidRecoveryKey(BackupError):
    name = "invalidRecoveryKey"


def inv(index, problem):
    return f"invalidRecord(index: {index}, problem: {problem})"


def malformed(t):
    return f"malformed(type: {t})"


def too_long(length):
    return f"tooLong({length})"


def unknown_type(t):
    return f"unknownType({t})"


def setting_not_allowed(key):
    return f"settingNotAllowed({key})"


# ---------------------------------------------------------------------------
# HKDF-SHA256 (RFC 5869)
# ---------------------------------------------------------------------------

def hkdf_extract(salt, ikm):
    return hmac.new(salt if salt else bytes(32), ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def hkdf(ikm, salt, info, length):
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)


# ---------------------------------------------------------------------------
# Secrets (§3)
# ---------------------------------------------------------------------------

class Passphrase:
    kind = "passphrase"

    def __init__(self, text):
        self.bytes = text.encode("utf-8")        # exactly, no normalization

    def __repr__(self):
        return "Passphrase(…)"


class RecoveryKey:
    kind = "recoveryKey"

    def __init__(self, typed):
        # §3: through the typed key's UTF-8 bytes, U+0020 and U+002D skipped wherever they are;
        # any other byte, or a count of digits other than 64, is invalidRecoveryKey (§2 step 0:
        # before the file is read).  IKM = the 64 digits, bytes 0x30-0x39, no separators.
        digits = bytearray()
        for c in typed.encode("utf-8"):
            if c in (0x20, 0x2D):
                continue
            if not 0x30 <= c <= 0x39:
                raise InvalidRecoveryKey()
            digits.append(c)
        if len(digits) != 64:
            raise InvalidRecoveryKey()
        self.bytes = bytes(digits)

    def __repr__(self):
        return "RecoveryKey(…)"


KDF_KIND = {KDF_PASSPHRASE: "passphrase", KDF_RECOVERY: "recoveryKey"}

_derive_cache = {}
DERIVE_STATS = {"argon2id": 0, "argon2id_seconds": 0.0, "hkdf": 0}


def derive_k(kdf, secret_bytes, salt, ops, mem):
    """K of §3 (cached: the rejection suite opens the same file many times)."""
    key = (kdf, secret_bytes, salt, ops, mem)
    if key in _derive_cache:
        return _derive_cache[key]
    if kdf == KDF_PASSPHRASE:
        t0 = time.time()
        k = argon2id.kdf(32, secret_bytes, salt, opslimit=ops, memlimit=mem * 1024)
        DERIVE_STATS["argon2id"] += 1
        DERIVE_STATS["argon2id_seconds"] += time.time() - t0
    else:
        k = hkdf(secret_bytes, salt, LABEL_RECOVERY, 32)
        DERIVE_STATS["hkdf"] += 1
    _derive_cache[key] = k
    return k


def key_check_of(k):
    return hkdf_expand(k, LABEL_KEY_CHECK, 16)


def stream_key_of(k):
    return hkdf_expand(k, LABEL_STREAM, 32)


# ---------------------------------------------------------------------------
# Records (§4)
# ---------------------------------------------------------------------------

class Body:
    """A cursor over one record body; running out or bad UTF-8 is malformed(type)."""

    def __init__(self, data, rtype):
        self.data, self.pos, self.rtype = data, 0, rtype

    def bad(self):
        return ValueError(malformed(self.rtype))

    def take(self, n):
        if self.pos + n > len(self.data):
            raise self.bad()
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def be32(self):
        return struct.unpack(">I", self.take(4))[0]

    def be64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def utf8(self, b):
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            raise self.bad()

    def lp8(self):
        return self.utf8(self.take(self.u8()))

    def lp16(self):
        return self.utf8(self.take(struct.unpack(">H", self.take(2))[0]))

    def rest(self):
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out


ACCOUNT_NAME_BYTES = set(b"abcdefghijklmnopqrstuvwxyz0123456789._-")


def is_valid_account_name(name):
    """relay.md §5, as backup.md §4 restates it: 1 to 32 bytes of a-z 0-9 . _ -."""
    b = name.encode("utf-8")
    return 1 <= len(b) <= 32 and all(c in ACCOUNT_NAME_BYTES for c in b)


def setting_allowed(key):
    """§5: the four exact keys, or a plain prefix match on the two families (any suffix)."""
    return key in SETTINGS_EXACT or key.startswith(SETTINGS_PREFIX)


def parse_body(rtype, body):
    """§4 step 2 for a known type: the record as a dict shaped like expected.json's records,
    or ValueError(malformed(type)) when the body "does not parse" as §4 lists it."""
    b = Body(body, rtype)
    if rtype == T_PROFILE:
        r = {"type": "profile", "account": b.lp8(), "device_id": b.be32(),
             "registration_id": b.be32()}
        pub, priv, noise = b.take(33), b.take(32), b.take(32)
        r.update(identity_public=pub.hex(), identity_private=priv.hex(), noise_private=noise.hex(),
                 next_id=b.be64(), next_prekey_id=b.be64(), signed_prekey_id=b.be64(),
                 next_kyber_prekey_id=b.be64())
        # "exactly 138 + len(account) bytes": nothing left over
        if len(body) != 138 + len(r["account"].encode("utf-8")) or b.pos != len(body):
            raise b.bad()
        # "a valid name of relay.md §5 — 1 to 32 bytes, each a–z, 0–9, ., _ or -"
        if not is_valid_account_name(r["account"]):
            raise b.bad()
        # "the public key is 05 ‖ X25519(clamp(private key), 9)"; the private key may be any 32
        # bytes (libsodium's crypto_scalarmult_base clamps, RFC 7748 §5). Noise key, ids and
        # counters: not checked.
        if pub[0] != 0x05 or sodium.crypto_scalarmult_base(priv) != pub[1:]:
            raise b.bad()
        return r
    if rtype in (T_SETTING, T_APPLICATION):
        # key fits and is UTF-8 (empty allowed); the value is the rest, any bytes. Setting
        # values are not validated (§5), privacy.read-receipts included.
        key = b.lp16()
        value = b.rest()
        return {"type": TYPE_NAMES[rtype], "key": key, "value": value.hex()}
    if rtype == T_IDENTITY:
        # exactly 38 + len(account) bytes; the key's first byte 05; account, device and the
        # 32 key bytes not checked
        r = {"type": "identity", "account": b.lp8(), "device": b.be32()}
        key = b.take(33)
        if b.pos != len(body) or key[0] != 0x05:
            raise b.bad()
        r["key"] = key.hex()
        return r
    if rtype == T_MESSAGE:
        r = {"type": "message", "sender_account": b.lp8(), "sender_device": b.be32(),
             "message_id": b.be64(), "conversation": b.lp8(), "direction": b.u8(),
             "state": b.u8(), "sent_at": b.be64(), "server_time": b.be64()}
        r["body"] = b.utf8(b.rest())
        if r["direction"] not in (0, 1) or r["state"] not in (0, 1, 2, 3):
            raise b.bad()
        return r
    raise AssertionError(rtype)


class RecordReader:
    """Incremental record parser (§2 step 6.6, §4): chunk plaintexts are fed in as they are
    authenticated; it holds at most one record (plus less than one record header) at a time.
    It also makes §4 step 4's restore checks, as a restore (the only reader Hush has) does."""

    def __init__(self):
        self.buf = bytearray()
        self.records = []
        self.raw = []            # (type, body) as read, for byte-exact comparisons
        self.application_keys = set()

    def fail(self, problem):
        raise InvalidRecord(len(self.records), problem)

    def feed(self, data):
        self.buf += data
        while True:
            if len(self.buf) < 5:
                return
            rtype = self.buf[0]
            length = struct.unpack(">I", bytes(self.buf[1:5]))[0]
            if length > RECORD_MAX:
                self.fail(too_long(length))           # §4 step 1: before reading the body
            if len(self.buf) < 5 + length:
                return
            body = bytes(self.buf[5:5 + length])
            del self.buf[:5 + length]
            self.record(rtype, body)

    def record(self, rtype, body):
        index = len(self.records)
        # §4 step 2: type, then the body
        if rtype not in TYPE_NAMES:
            self.fail(unknown_type(rtype))
        try:
            r = parse_body(rtype, body)
        except ValueError as e:
            self.fail(str(e))
        # §4 step 3: position of the profile
        if index > 0 and rtype == T_PROFILE:
            self.fail("duplicateProfile")
        if index == 0 and rtype != T_PROFILE:
            self.fail("missingProfile")
        # §4 step 4: restore checks
        if rtype == T_SETTING and not setting_allowed(r["key"]):
            self.fail(setting_not_allowed(r["key"]))
        if rtype == T_APPLICATION:
            # refused when 64 distinct keys are already held, even if its key is one of them
            if len(self.application_keys) >= APPLICATION_MAX:
                self.fail(malformed(T_APPLICATION))
            self.application_keys.add(r["key"])
        self.records.append(r)
        self.raw.append((rtype, body))

    def finish(self):
        """§2 step 7."""
        if self.buf:
            self.fail("cutOff")
        if not self.records:
            self.fail("missingProfile")


# ---------------------------------------------------------------------------
# The file (§1, §2)
# ---------------------------------------------------------------------------

def parse_header(data):
    """Steps 1–3 of §2.  Returns the header fields."""
    if len(data) < 8:
        raise Truncated()
    if data[:8] != MAGIC:
        raise NotABackup()
    if len(data) < HEADER_LEN:
        raise Truncated()
    h = data[:HEADER_LEN]
    version, kdf = h[8], h[9]
    if version != VERSION:
        raise UnsupportedVersion(version)
    if kdf not in (KDF_PASSPHRASE, KDF_RECOVERY):
        raise UnsupportedKDF(kdf)
    ops, mem = struct.unpack(">II", h[10:18])
    if kdf == KDF_PASSPHRASE:
        ok = OPS_MIN <= ops <= OPS_MAX and MEM_MIN <= mem <= MEM_MAX
    else:
        ok = ops == 0 and mem == 0
    if not ok:
        raise KdfLimitsOutOfRange(ops, mem)
    return {"bytes": h, "version": version, "kdf": kdf, "operations": ops, "memory_kib": mem,
            "salt": h[18:34], "created_at": struct.unpack(">Q", h[34:42])[0],
            "key_check": h[42:58], "ss_header": h[58:82]}


def open_backup(data, secret):
    """The whole of §2: returns (header, RecordReader, chunk info) or raises a BackupError."""
    hdr = parse_header(data)
    # step 4
    if KDF_KIND[hdr["kdf"]] != secret.kind:
        raise SecretKindMismatch(KDF_KIND[hdr["kdf"]])
    # step 5
    k = derive_k(hdr["kdf"], secret.bytes, hdr["salt"], hdr["operations"], hdr["memory_kib"])
    if not hmac.compare_digest(key_check_of(k), hdr["key_check"]):
        raise WrongSecret()
    # step 6–7
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, hdr["ss_header"], stream_key_of(k))
    records = RecordReader()
    chunks = []                  # (L, tag, plaintext length)
    pos, i = HEADER_LEN, 0
    while True:
        if pos == len(data):
            raise Truncated()                       # end of file before a FINAL chunk
        if pos + 4 > len(data):
            raise Truncated()                       # inside a length
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        if not L_MIN <= length <= L_MAX:
            raise Damaged(i)
        if pos + 4 + length > len(data):
            raise Truncated()                       # inside a ciphertext
        c = data[pos + 4:pos + 4 + length]
        try:
            m, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                state, c, hdr["bytes"] if i == 0 else None)
        except nacl.exceptions.CryptoError:
            raise Damaged(i)
        if tag not in (TAG_MESSAGE, TAG_FINAL):
            raise Damaged(i)
        pos += 4 + length
        chunks.append((length, tag, len(m)))
        if tag == TAG_FINAL and pos != len(data):
            raise TrailingData()
        records.feed(m)
        i += 1
        if tag == TAG_FINAL:
            break
    records.finish()
    return hdr, records, chunks


# ---------------------------------------------------------------------------
# A writer, used only to build test files under a kept file's key (§1, §4)
# ---------------------------------------------------------------------------

def lp8(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return bytes([len(b)]) + b


def lp16(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def record(rtype, body):
    return bytes([rtype]) + struct.pack(">I", len(body)) + body


def encode_record(r):
    """expected.json's record dict → record bytes (§4 table)."""
    t = r["type"]
    if t == "profile":
        body = (lp8(r["account"]) + struct.pack(">II", r["device_id"], r["registration_id"])
                + bytes.fromhex(r["identity_public"]) + bytes.fromhex(r["identity_private"])
                + bytes.fromhex(r["noise_private"])
                + struct.pack(">QQQQ", r["next_id"], r["next_prekey_id"], r["signed_prekey_id"],
                              r["next_kyber_prekey_id"]))
        return record(T_PROFILE, body)
    if t in ("setting", "application"):
        return record(T_SETTING if t == "setting" else T_APPLICATION,
                      lp16(r["key"]) + bytes.fromhex(r["value"]))
    if t == "identity":
        return record(T_IDENTITY, lp8(r["account"]) + struct.pack(">I", r["device"])
                      + bytes.fromhex(r["key"]))
    if t == "message":
        body = (lp8(r["sender_account"]) + struct.pack(">IQ", r["sender_device"], r["message_id"])
                + lp8(r["conversation"]) + bytes([r["direction"], r["state"]])
                + struct.pack(">QQ", r["sent_at"], r["server_time"]) + r["body"].encode("utf-8"))
        return record(T_MESSAGE, body)
    raise KeyError(t)


def message_body(sender="alice", device=3, mid=1, conv="bob", direction=1, state=1,
                 sent_at=1, server_time=2, text=b"x"):
    return (lp8(sender) + struct.pack(">IQ", device, mid) + lp8(conv) + bytes([direction, state])
            + struct.pack(">QQ", sent_at, server_time) + text)


def split(data, sizes):
    """Cut data into pieces of the given sizes, the rest in a last piece."""
    out, pos = [], 0
    for s in sizes:
        out.append(data[pos:pos + s])
        pos += s
    out.append(data[pos:])
    return out


def fill(data):
    """A writer's chunking (§1): 65,536-byte chunks, the last (FINAL, maybe empty) the rest."""
    pieces = [data[i:i + CHUNK_PLAIN_MAX] for i in range(0, len(data), CHUNK_PLAIN_MAX)]
    if not pieces or len(pieces[-1]) == CHUNK_PLAIN_MAX:
        pieces.append(b"")
    return pieces


class Writer:
    """Builds files sharing a kept file's header fields (kdf, limits, salt, created at, key
    check), hence its K, under a fresh secretstream header."""

    def __init__(self, kept_header, k):
        self.prefix = kept_header[:58]
        self.stream_key = stream_key_of(k)

    def chunks(self, pieces, tags=None, header_prefix=None):
        """Returns (header bytes, [chunk bytes ...]).  tags default: MESSAGE … FINAL."""
        state = sodium.crypto_secretstream_xchacha20poly1305_state()
        ss = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, self.stream_key)
        header = (header_prefix or self.prefix) + ss
        if tags is None:
            tags = [TAG_MESSAGE] * (len(pieces) - 1) + [TAG_FINAL]
        out = []
        for i, (p, tag) in enumerate(zip(pieces, tags)):
            c = sodium.crypto_secretstream_xchacha20poly1305_push(
                state, p, header if i == 0 else None, tag)
            out.append(struct.pack(">I", len(c)) + c)
        return header, out

    def file(self, pieces, tags=None):
        header, chunks = self.chunks(pieces, tags)
        return header + b"".join(chunks)


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

class Tally:
    def __init__(self):
        self.passed = self.failed = 0
        self.failures = []

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS  {name}")
        else:
            self.failed += 1
            self.failures.append(name)
            print(f"FAIL  {name}" + (f": {detail}" if detail else ""))
        if VERBOSE and detail and ok:
            for line in str(detail).splitlines():
                print(f"        {line}")
        return ok


def outcome(data, secret):
    try:
        open_backup(data, secret)
        return "ok"
    except BackupError as e:
        return e.spec()


def expect(t, name, data, secret, want):
    got = outcome(data, secret)
    t.check(got == want, name, f"expected {want}, got {got}" if got != want else f"-> {got}")


def expect_many(t, name, cases):
    """One check over many (label, data, secret, want) cases; -v lists each."""
    bad, lines = [], []
    for label, data, secret, want in cases:
        got = outcome(data, secret)
        lines.append(f"{label}: {got}" + ("" if got == want else f"  (expected {want})"))
        if got != want:
            bad.append(f"{label}: expected {want}, got {got}")
    t.check(not bad, f"{name} ({len(cases)} cases)", "\n".join(bad[:5]) if bad else "\n".join(lines))


def flip(data, pos, mask):
    b = bytearray(data)
    b[pos] ^= mask
    return bytes(b)


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------

def secret_of(f):
    return Passphrase(f["passphrase"]) if f["kdf"] == "passphrase" else RecoveryKey(f["recovery_key"])


def check_kept_file(t, root, f, expected, raw_streams):
    name = f["file"]
    data = open(os.path.join(root, name), "rb").read()
    secret = secret_of(f)
    try:
        hdr, recs, chunks = open_backup(data, secret)
    except BackupError as e:
        t.check(False, f"{name}: opens", e.spec())
        return None
    t.check(True, f"{name}: opens with the listed {f['kdf']} ({len(data)} bytes, "
                  f"{len(chunks)} chunk(s), {len(recs.records)} records)")
    want_kdf = KDF_PASSPHRASE if f["kdf"] == "passphrase" else KDF_RECOVERY
    t.check(data[:8] == MAGIC and hdr["version"] == 1, f"{name}: header magic and version 1")
    t.check(hdr["kdf"] == want_kdf, f"{name}: header kdf = {want_kdf:#04x} ({f['kdf']})")
    if f["kdf"] == "passphrase":
        t.check((hdr["operations"], hdr["memory_kib"]) == (f["operations"], f["memory_kib"]),
                f"{name}: header operations/memory = {f['operations']}/{f['memory_kib']} KiB",
                f"got {hdr['operations']}/{hdr['memory_kib']}")
        t.check((hdr["operations"], hdr["memory_kib"]) == (2, 64),
                f"{name}: Argon2id 2 passes, 64 KiB as §7 says")
    else:
        t.check((hdr["operations"], hdr["memory_kib"]) == (0, 0),
                f"{name}: header operations/memory 0/0 for a recovery key")
    t.check(hdr["created_at"] == expected["created_at"],
            f"{name}: header created at = {expected['created_at']}", f"got {hdr['created_at']}")
    k = derive_k(hdr["kdf"], secret.bytes, hdr["salt"], hdr["operations"], hdr["memory_kib"])
    t.check(key_check_of(k) == hdr["key_check"], f"{name}: key check = HKDF-Expand(K, key check, 16)")
    tags_ok = all(tag == TAG_MESSAGE for _, tag, _ in chunks[:-1]) and chunks[-1][1] == TAG_FINAL
    t.check(tags_ok, f"{name}: every chunk MESSAGE but the last, FINAL")
    sizes_ok = all(n == CHUNK_PLAIN_MAX for _, _, n in chunks[:-1]) and all(
        L == n + SS_ABYTES for L, _, n in chunks)
    t.check(sizes_ok, f"{name}: chunk sizes (non-final chunks full, L = plaintext + 17)",
            f"{chunks}")
    # records, one check each
    want = expected["records"]
    t.check(len(recs.records) == len(want), f"{name}: {len(want)} records",
            f"got {len(recs.records)}")
    for i, (got, exp) in enumerate(zip(recs.records, want)):
        diff = [kk for kk in sorted(set(got) | set(exp)) if got.get(kk) != exp.get(kk)]
        label = exp["type"] + (f" {exp['key']}" if "key" in exp and exp["type"] != "identity"
                               else f" id {exp['message_id']}" if exp["type"] == "message" else "")
        t.check(not diff, f"{name}: record {i} ({label}) equals expected.json field by field",
                "; ".join(f"{kk}: got {got.get(kk)!r} want {exp.get(kk)!r}" for kk in diff)
                or json.dumps(got, ensure_ascii=False))
    stream = b"".join(record(rt, body) for rt, body in recs.raw)
    enc = b"".join(encode_record(r) for r in want)
    t.check(stream == enc, f"{name}: record stream = expected.json re-encoded by §4, byte for byte")
    prof = stream[5:5 + 1 + 5 + 4]
    t.check(stream[:6] == bytes([1, 0, 0, 0, 138 + 5, 5]) and stream[6:11] == b"alice"
            and stream[11:15] == struct.pack(">I", want[0]["device_id"]),
            f"{name}: profile starts as §4's example (01 00 00 00 8f 05 'alice' be32 device)",
            prof.hex())
    p = want[0]
    t.check(bytes.fromhex(p["identity_public"])[1:]
            == sodium.crypto_scalarmult_base(bytes.fromhex(p["identity_private"])),
            f"{name}: profile identity public key is the private key's")
    raw_streams[name] = stream
    return data, hdr, k


def check_recovery_forms(t, data, f):
    typed = f["recovery_key"]
    digits = typed.replace(" ", "")
    forms = [("as typed (spaces)", typed), ("no separators", digits),
             ("hyphens", "-".join(digits[i:i + 4] for i in range(0, 64, 4))),
             ("mixed and doubled separators", " " + digits[:10] + "- -" + digits[10:] + " ")]
    for label, form in forms:
        try:
            got = outcome(data, RecoveryKey(form))
        except BackupError as e:
            got = e.spec()
        t.check(got == "ok", f"recovery key typed {label}: opens", got)
    bad = [("63 digits", digits[:63]), ("65 digits", digits + "0"), ("a letter", digits[:63] + "a"),
           ("a dot", digits[:32] + "." + digits[32:]), ("a tab", digits[:32] + "\t" + digits[32:]),
           ("a trailing newline", typed + "\n"), ("NBSP", digits[:32] + "\u00a0" + digits[32:]),
           ("an en dash", digits[:32] + "\u2013" + digits[32:]), ("an underscore", digits[:32] + "_" + digits[32:]),
           ("full-width digit", digits[:63] + "\uff10"), ("Arabic-Indic digit", digits[:63] + "\u0660"),
           ("empty", ""), ("only separators", " - - ")]
    for label, form in bad:
        try:
            RecoveryKey(form)
            got = "accepted"
        except BackupError as e:
            got = e.spec()
        t.check(got == "invalidRecoveryKey", f"recovery key with {label}: invalidRecoveryKey", got)


def header_flip_expectation(data, pos, mask, kind):
    """What §2 says a file with byte `pos` xor `mask` gives (from the field it lands in)."""
    new = flip(data, pos, mask)
    if pos < 8:
        return "notABackup"
    if pos == 8:
        return f"unsupportedVersion({new[8]})"
    if pos == 9:
        if new[9] not in (1, 2):
            return f"unsupportedKDF({new[9]})"
    kdf = new[9]
    ops, mem = struct.unpack(">II", new[10:18])
    in_range = (OPS_MIN <= ops <= OPS_MAX and MEM_MIN <= mem <= MEM_MAX) if kdf == 1 else (ops == 0 and mem == 0)
    if pos < 18 or pos == 9:
        if not in_range:
            return f"kdfLimitsOutOfRange(operations: {ops}, memoryKiB: {mem})"
        if KDF_KIND[kdf] != kind:
            return f"secretKindMismatch(expected: {KDF_KIND[kdf]})"
        return "wrongSecret"                       # another limit derives another key
    if pos < 34:
        return "wrongSecret"                       # salt
    if pos < 42:
        return "damaged(chunk: 0)"                 # created at: chunk 0's AD
    if pos < 58:
        return "wrongSecret"                       # key check
    return "damaged(chunk: 0)"                     # secretstream header


def check_flips(t, name, data, secret):
    """Every byte of the kept file flipped: the error §2 names for the field it lands in."""
    regions = [("magic", 0, 8), ("version", 8, 9), ("kdf", 9, 10), ("operations", 10, 14),
               ("memory", 14, 18), ("salt", 18, 34), ("created at", 34, 42),
               ("key check", 42, 58), ("secretstream header", 58, 82)]
    for label, a, b in regions:
        cases = []
        for pos in range(a, b):
            for mask in (0x01, 0x80, 0xFF):
                cases.append((f"byte {pos} ^ {mask:#04x}", flip(data, pos, mask), secret,
                              header_flip_expectation(data, pos, mask, secret.kind)))
        expect_many(t, f"{name}: {label} (bytes {a}..{b - 1}) altered", cases)
    # chunk 0's length field: out of range → damaged; beyond the file → truncated; else the
    # ciphertext is misframed and fails authentication → damaged.
    cases = []
    L = struct.unpack(">I", data[82:86])[0]
    for pos in range(82, 86):
        for mask in (0x01, 0x80, 0xFF):
            nl = struct.unpack(">I", flip(data, pos, mask)[82:86])[0]
            want = ("damaged(chunk: 0)" if not L_MIN <= nl <= L_MAX
                    else "truncated" if 86 + nl > len(data) else "damaged(chunk: 0)")
            cases.append((f"L {L} -> {nl}", flip(data, pos, mask), secret, want))
    expect_many(t, f"{name}: chunk 0 length field altered", cases)
    cases = [(f"byte {pos}", flip(data, pos, 0x01), secret, "damaged(chunk: 0)")
             for pos in range(86, len(data))]
    cases += [(f"byte {pos} ^ 0xff", flip(data, pos, 0xFF), secret, "damaged(chunk: 0)")
              for pos in (86, 87, len(data) - 17, len(data) - 1)]
    expect_many(t, f"{name}: every ciphertext byte of chunk 0 flipped", cases)


def check_header_rules(t, name, data, secret, other_secret, wrong_secret):
    """Explicit header values and the order of §2's checks."""
    kind = secret.kind

    def with_fields(kdf=None, ops=None, mem=None, version=None, magic=None, base=data):
        b = bytearray(base)
        if magic is not None:
            b[0:8] = magic
        if version is not None:
            b[8] = version
        if kdf is not None:
            b[9] = kdf
        if ops is not None:
            b[10:14] = struct.pack(">I", ops)
        if mem is not None:
            b[14:18] = struct.pack(">I", mem)
        return bytes(b)

    for m in (b"HUSHBKUQ", b"hushbkup", bytes(8), b"HUSHMEDI"):
        expect(t, f"{name}: magic {m!r}: notABackup", with_fields(magic=m), secret, "notABackup")
    for v in (0, 2, 255):
        expect(t, f"{name}: version {v}: unsupportedVersion({v})", with_fields(version=v), secret,
               f"unsupportedVersion({v})")
    for k in (0, 3, 255):
        expect(t, f"{name}: kdf {k}: unsupportedKDF({k})", with_fields(kdf=k), secret,
               f"unsupportedKDF({k})")
    if kind == "passphrase":
        for ops, mem in ((0, 64), (17, 64), (2, 7), (2, 0), (2, 1_048_577), (0xFFFFFFFF, 64),
                         (2, 0xFFFFFFFF), (0, 0)):
            expect(t, f"{name}: limits {ops}/{mem} KiB: kdfLimitsOutOfRange",
                   with_fields(ops=ops, mem=mem), secret, f"kdfLimitsOutOfRange(operations: {ops}, memoryKiB: {mem})")
        for ops, mem in ((1, 64), (16, 64), (2, 8), (3, 64), (2, 65)):
            expect(t, f"{name}: limits {ops}/{mem} KiB (allowed, another key): wrongSecret",
                   with_fields(ops=ops, mem=mem), secret, "wrongSecret")
        expect(t, f"{name}: kdf 2 with the passphrase limits: kdfLimitsOutOfRange(2, 64)",
               with_fields(kdf=2), other_secret, "kdfLimitsOutOfRange(operations: 2, memoryKiB: 64)")
        expect(t, f"{name}: kdf 2, limits 0/0, opened with a recovery key: wrongSecret",
               with_fields(kdf=2, ops=0, mem=0), other_secret, "wrongSecret")
        expect(t, f"{name}: kdf 2, limits 0/0, opened with the passphrase: secretKindMismatch(recoveryKey)",
               with_fields(kdf=2, ops=0, mem=0), secret, "secretKindMismatch(expected: recoveryKey)")
    else:
        for ops, mem in ((1, 0), (0, 1), (2, 64), (0xFFFFFFFF, 0xFFFFFFFF)):
            expect(t, f"{name}: limits {ops}/{mem} with a recovery key: kdfLimitsOutOfRange",
                   with_fields(ops=ops, mem=mem), secret, f"kdfLimitsOutOfRange(operations: {ops}, memoryKiB: {mem})")
        expect(t, f"{name}: kdf 1 with limits 0/0: kdfLimitsOutOfRange(0, 0)",
               with_fields(kdf=1), other_secret, "kdfLimitsOutOfRange(operations: 0, memoryKiB: 0)")
        expect(t, f"{name}: kdf 1, limits 2/64, opened with the recovery key: secretKindMismatch(passphrase)",
               with_fields(kdf=1, ops=2, mem=64), secret, "secretKindMismatch(expected: passphrase)")
        expect(t, f"{name}: kdf 1, limits 2/64, opened with a passphrase: wrongSecret",
               with_fields(kdf=1, ops=2, mem=64), other_secret, "wrongSecret")
    # secrets
    expect(t, f"{name}: opened with a wrong {kind}: wrongSecret", data, wrong_secret, "wrongSecret")
    expect(t, f"{name}: opened with the other kind of secret: secretKindMismatch({kind})", data,
           other_secret, f"secretKindMismatch(expected: {kind})")
    # order of §2's steps
    expect(t, f"{name}: order: bad magic beats a short header (50 bytes)",
           with_fields(magic=b"XUSHBKUP")[:50], secret, "notABackup")
    expect(t, f"{name}: order: short header (81 bytes) beats a bad version",
           with_fields(version=9)[:81], secret, "truncated")
    expect(t, f"{name}: order: version beats kdf", with_fields(version=2, kdf=9), secret,
           "unsupportedVersion(2)")
    expect(t, f"{name}: order: kdf beats limits", with_fields(kdf=9, ops=99), secret,
           "unsupportedKDF(9)")
    expect(t, f"{name}: order: limits beat the secret kind",
           with_fields(ops=99, mem=99), other_secret, "kdfLimitsOutOfRange(operations: 99, memoryKiB: 99)")
    expect(t, f"{name}: order: limits beat a wrong secret",
           with_fields(ops=99, mem=99), wrong_secret, "kdfLimitsOutOfRange(operations: 99, memoryKiB: 99)")
    expect(t, f"{name}: order: kind beats the key check", flip(data, 50, 1), other_secret,
           f"secretKindMismatch(expected: {kind})")
    expect(t, f"{name}: order: header only (82 bytes), wrong secret: wrongSecret",
           data[:82], wrong_secret, "wrongSecret")
    expect(t, f"{name}: order: wrong secret beats a damaged chunk",
           flip(data, 100, 1), wrong_secret, "wrongSecret")


def check_truncation_and_trailer(t, name, data, secret):
    cuts = [0, 1, 7, 8, 9, 40, 57, 81, 82, 83, 85, 86, 87, 100, len(data) - 17,
            len(data) - 16, len(data) - 1]
    expect_many(t, f"{name}: cut at {cuts}: truncated",
                [(f"cut at {c}", data[:c], secret, "truncated") for c in cuts])
    expect_many(t, f"{name}: 5 or 7 foreign bytes: truncated",
                [("5 bytes", b"HELLO", secret, "truncated"), ("7 bytes", b"HUSHBKX", secret, "truncated")])
    last_chunk = data[82:]
    tails = [("one zero byte", b"\x00"), ("four zero bytes", bytes(4)),
             ("the FINAL chunk again", last_chunk), ("a length 17 and 17 bytes", struct.pack(">I", 17) + bytes(17)),
             ("the header again", data[:82])]
    expect_many(t, f"{name}: bytes after the FINAL chunk: trailingData",
                [(label, data + tail, secret, "trailingData") for label, tail in tails])


def check_chunks(t, name, hdr, k, secret, stream):
    """Multi-chunk files under the kept file's key: the reader's acceptance and every chunk rule."""
    w = Writer(hdr["bytes"], k)

    def reads_back(label, pieces, tags=None):
        f = w.file(pieces, tags)
        try:
            _, recs, chunks = open_backup(f, secret)
            got = b"".join(record(rt, b) for rt, b in recs.raw)
            t.check(got == stream, f"{name}: {label}: same records",
                    f"{len(chunks)} chunks, plaintexts {[n for _, _, n in chunks]}")
        except BackupError as e:
            t.check(False, f"{name}: {label}: same records", e.spec())

    reads_back("re-chunked 1/7/100/rest + empty FINAL (records span chunks)",
               split(stream, [1, 7, 100, len(stream) - 108]))
    reads_back("one record header split over two chunks (2 + 3 bytes)", split(stream, [2, 3]))
    reads_back("empty MESSAGE chunks between (a reader accepts 0 … 65,536)",
               [b"", stream[:300], b"", stream[300:]])
    reads_back("one byte per chunk", [stream[i:i + 1] for i in range(len(stream))])

    header, cs = w.chunks(split(stream, [200, 200]))          # 3 chunks, last FINAL
    three = header + b"".join(cs)
    expect(t, f"{name}: 3-chunk file opens", three, secret, "ok")
    off = [82]
    for c in cs:
        off.append(off[-1] + len(c))
    expect_many(t, f"{name}: 3-chunk file, a ciphertext byte flipped in each chunk: damaged(chunk: i)",
                [(f"chunk {i} byte {p}", flip(three, p, 0x01), secret, f"damaged(chunk: {i})")
                 for i in range(3) for p in (off[i] + 4, off[i] + 4 + 20, off[i + 1] - 1)])
    expect_many(t, f"{name}: 3-chunk file, a length out of 17 … 65,553 in each chunk: damaged(chunk: i)",
                [(f"chunk {i} L={L}", three[:off[i]] + struct.pack(">I", L) + three[off[i] + 4:], secret,
                  f"damaged(chunk: {i})") for i in range(3) for L in (0, 16, 65_554, 0xFFFFFFFF)])
    expect(t, f"{name}: 3-chunk file, created at changed: damaged(chunk: 0)",
           flip(three, 41, 0x01), secret, "damaged(chunk: 0)")
    expect_many(t, f"{name}: 3-chunk file cut before FINAL: truncated",
                [(f"cut at {c}", three[:c], secret, "truncated")
                 for c in (off[1], off[2], off[1] + 2, off[1] + 30, off[2] + 4, len(three) - 1)])
    perms = [("chunks 1 and 2 swapped", [0, 2, 1], "damaged(chunk: 1)"),
             ("chunks 0 and 1 swapped", [1, 0, 2], "damaged(chunk: 0)"),
             ("chunk 0 dropped", [1, 2], "damaged(chunk: 0)"),
             ("chunk 1 dropped", [0, 2], "damaged(chunk: 1)"),
             ("FINAL chunk dropped", [0, 1], "truncated"),
             ("chunk 1 repeated", [0, 1, 1, 2], "damaged(chunk: 2)"),
             ("FINAL chunk repeated", [0, 1, 2, 2], "trailingData"),
             ("chunk 0 repeated after FINAL", [0, 1, 2, 0], "trailingData")]
    expect_many(t, f"{name}: 3-chunk file, chunks reordered / dropped / repeated",
                [(label, header + b"".join(cs[i] for i in order), secret, want)
                 for label, order, want in perms])
    header2, cs2 = w.chunks(split(stream, [200, 200]))        # same key, another stream header
    expect_many(t, f"{name}: chunks taken from another file under the same key: damaged",
                [("chunk 1 from the other file", header + cs[0] + cs2[1] + cs[2], secret, "damaged(chunk: 1)"),
                 ("FINAL chunk from the other file", header + cs[0] + cs[1] + cs2[2], secret, "damaged(chunk: 2)"),
                 ("chunk 0 under the other file's header", header2 + cs[0] + cs[1] + cs[2], secret,
                  "damaged(chunk: 0)")])
    pieces = split(stream, [200, 200])
    tag_cases = [("tag PUSH on chunk 1", [0, 1, 3], "damaged(chunk: 1)"),
                 ("tag REKEY on chunk 1", [0, 2, 3], "damaged(chunk: 1)"),
                 ("tag PUSH on the last chunk", [0, 0, 1], "damaged(chunk: 2)"),
                 ("tag FINAL on chunk 1 (chunk 2 follows)", [0, 3, 0], "trailingData"),
                 ("tag FINAL on chunk 0 (two chunks follow)", [3, 0, 3], "trailingData"),
                 ("no FINAL tag (all MESSAGE)", [0, 0, 0], "truncated")]
    expect_many(t, f"{name}: chunk tags other than MESSAGE … FINAL",
                [(label, w.file(pieces, tags), secret, want) for label, tags, want in tag_cases])
    # §2 step 6: chunks and records interleaved — the records a chunk completes are checked
    # before the next chunk is read; the FINAL chunk's trailing check comes before its records.
    n = len(expected_records_global)
    bad = record(0x09, b"")
    h3, c3 = w.chunks([stream + bad, b"more", b""])
    interleaved = [
        ("record error in chunk 0, chunk 1 damaged: the record error", h3 + c3[0] + flip(c3[1], 10, 1) + c3[2],
         inv(n, unknown_type(9))),
        ("record error in chunk 0, the file ends after it: the record error", h3 + c3[0],
         inv(n, unknown_type(9))),
        ("record error in the FINAL chunk and a trailing byte: trailingData", w.file([stream + bad]) + b"\x00",
         "trailingData")]
    # a record header of length > 1 MiB at the end of chunk 0: tooLong before chunk 1 is read
    h4, c4 = w.chunks([stream + b"\x04" + struct.pack(">I", RECORD_MAX + 1), b"more", b""])
    interleaved.append(("tooLong header in chunk 0, chunk 1 damaged: tooLong (step 1 before the body)",
                        h4 + c4[0] + flip(c4[1], 10, 1) + c4[2], inv(n, too_long(RECORD_MAX + 1))))
    # a record completed only by chunk 1 is checked after chunk 1: the chunk error first
    h5, c5 = w.chunks([stream + bad[:3], bad[3:], b""])
    interleaved.append(("bad record split over chunks 0 and 1, chunk 1 damaged: damaged(chunk: 1)",
                        h5 + c5[0] + flip(c5[1], 10, 1) + c5[2], "damaged(chunk: 1)"))
    interleaved.append(("bad record split over chunks 0 and 1, chunk 1 intact: the record error",
                        h5 + b"".join(c5), inv(n, unknown_type(9))))
    # a partial record at the end of chunk 0 is only cutOff at the end of the stream
    h6, c6 = w.chunks([stream + bad[:3], b"", b""])
    interleaved.append(("partial record at the end of chunk 0, chunk 1 damaged: damaged(chunk: 1)",
                        h6 + c6[0] + flip(c6[1], 10, 1) + c6[2], "damaged(chunk: 1)"))
    interleaved.append(("partial record at the end of chunk 0, chunk 1 missing: truncated",
                        h6 + c6[0], "truncated"))
    interleaved.append(("partial record at the end of the stream: cutOff", h6 + b"".join(c6), inv(n, "cutOff")))
    expect_many(t, f"{name}: §2 step 6, chunk and record errors interleaved",
                [(label, data, secret, want) for label, data, want in interleaved])
    # §2 step 6.2: L is checked when read, before the ciphertext is looked for
    h7, c7 = w.chunks([stream[:100], stream[100:]])
    expect_many(t, f"{name}: §2 step 6.2, chunk 1's length as the file's last bytes",
                [("L ff ff ff ff, nothing after it: damaged(chunk: 1)", h7 + c7[0] + b"\xff\xff\xff\xff", secret,
                  "damaged(chunk: 1)"),
                 ("L 65,554, nothing after it: damaged(chunk: 1)", h7 + c7[0] + struct.pack(">I", 65_554), secret,
                  "damaged(chunk: 1)"),
                 ("L 16, nothing after it: damaged(chunk: 1)", h7 + c7[0] + struct.pack(">I", 16), secret,
                  "damaged(chunk: 1)"),
                 ("L 65,553, nothing after it: truncated", h7 + c7[0] + struct.pack(">I", 65_553), secret,
                  "truncated"),
                 ("L 17, nothing after it: truncated", h7 + c7[0] + struct.pack(">I", 17), secret, "truncated"),
                 ("3 bytes of a length: truncated", h7 + c7[0] + b"\xff\xff\xff", secret, "truncated")])
    # FINAL chunk and another authentic chunk of the same stream after it
    expect(t, f"{name}: an authentic chunk pushed after FINAL: trailingData",
           w.file([stream, b"more"], [TAG_FINAL, TAG_FINAL]), secret, "trailingData")
    # full chunks: a writer's chunking with 65,536-byte chunks (L = 65,553), and one too big
    big = stream + record(T_MESSAGE, message_body(mid=9000, text=b"z" * 140_000))
    f = w.file(fill(big))
    try:
        _, recs, chunks = open_backup(f, secret)
        t.check([L for L, _, _ in chunks] == [65_553, 65_553, len(big) - 2 * 65_536 + 17]
                and len(recs.records) == len(expected_records_global) + 1,
                f"{name}: writer-filled file, two full chunks (L = 65,553) and a FINAL rest: opens",
                f"L = {[L for L, _, _ in chunks]}")
    except BackupError as e:
        t.check(False, f"{name}: writer-filled file opens", e.spec())
    # §1, writers: a record stream of exactly k × 65,536 bytes is k full MESSAGE chunks and an
    # empty FINAL chunk (what fill() builds, as Hush's writer does)
    for k in (1, 2):
        pad = k * CHUNK_PLAIN_MAX - len(stream) - 5 - len(message_body(mid=9001, text=b""))
        exact = stream + record(T_MESSAGE, message_body(mid=9001, text=b"e" * pad))
        assert len(exact) == k * CHUNK_PLAIN_MAX
        try:
            _, recs, chunks = open_backup(w.file(fill(exact)), secret)
            t.check([(L, tag) for L, tag, _ in chunks] == [(65_553, TAG_MESSAGE)] * k + [(17, TAG_FINAL)],
                    f"{name}: §1 writer chunking of a {k} × 65,536-byte stream: {k} full MESSAGE chunk(s), "
                    f"then an empty FINAL chunk: opens", f"{[(L, tag) for L, tag, _ in chunks]}")
        except BackupError as e:
            t.check(False, f"{name}: §1 writer chunking of a {k} × 65,536-byte stream opens", e.spec())
    # the records, then zero bytes up to a full 65,536-byte chunk, then an empty FINAL: the chunk
    # layer accepts it and the record layer then sees a record of type 0 (unknownType)
    f = w.file([stream + bytes(CHUNK_PLAIN_MAX - len(stream)), b""])
    expect(t, f"{name}: a 65,536-byte chunk (L = 65,553) is read; the zero padding is then record type 0",
           f, secret, inv(len(expected_records_global), unknown_type(0)))
    expect(t, f"{name}: an authentic chunk of 65,537 bytes (L = 65,554): damaged(chunk: 0)",
           w.file([big[:65_537], big[65_537:]]), secret, "damaged(chunk: 0)")
    expect(t, f"{name}: an authentic 65,537-byte chunk as chunk 1: damaged(chunk: 1)",
           w.file([big[:10], big[10:65_547], big[65_547:]]), secret, "damaged(chunk: 1)")
    return w


expected_records_global = []


def check_records(t, name, w, secret, stream, profile_raw):
    """Record-stream rules (§4, §5), each file valid at the chunk layer."""
    n = len(expected_records_global)
    prof_rec = profile_raw
    prof_body = prof_rec[5:]
    rest = stream[len(prof_rec):]
    p = expected_records_global[0]

    def f(recs_bytes, sizes=None):
        return w.file(split(recs_bytes, sizes) if sizes else [recs_bytes])

    def prof_with(body):
        return record(T_PROFILE, body)

    def prof_named(account):
        return encode_record(dict(p, account=account))

    def setting(key, value):
        return record(T_SETTING, lp16(key) + value)

    def app(key, value=b"v"):
        return record(T_APPLICATION, lp16(key) + value)

    good_setting = setting("privacy.read-receipts", b"\x01")
    cases = []
    # §4 steps 1-2 and §2 step 7: framing
    for ty in (0x00, 0x06, 0x30, 0xFF):
        cases.append((f"record {n} of unknown type {ty:#04x}", stream + record(ty, b"abc"), inv(n, unknown_type(ty))))
    cases.append((f"unknown type {0x06:#04x} with an empty body", stream + record(6, b""), inv(n, unknown_type(6))))
    cases.append(("length 1,048,577, no body follows: tooLong (before the body)",
                  stream + b"\x04" + struct.pack(">I", RECORD_MAX + 1), inv(n, too_long(RECORD_MAX + 1))))
    cases.append(("length 0xFFFFFFFF: tooLong", stream + b"\x04" + struct.pack(">I", 0xFFFFFFFF),
                  inv(n, too_long(0xFFFFFFFF))))
    cases.append(("unknown type 0x09 with length 1,048,577: tooLong (step 1 before the type)",
                  stream + b"\x09" + struct.pack(">I", RECORD_MAX + 1), inv(n, too_long(RECORD_MAX + 1))))
    cases.append(("unknown type 0x09, body cut by the end: cutOff (the type is checked on the whole body)",
                  stream + b"\x09" + struct.pack(">I", 10) + b"abc", inv(n, "cutOff")))
    cases.append(("length 1,048,576, stream ends: cutOff", stream + b"\x04" + struct.pack(">I", RECORD_MAX) + b"abc",
                  inv(n, "cutOff")))
    for k in (1, 2, 4):
        cases.append((f"stream ends {k} byte(s) into a record header", stream + good_setting[:k], inv(n, "cutOff")))
    cases.append(("stream ends inside a body", stream + good_setting[:-1], inv(n, "cutOff")))
    cases.append(("the last record cut by one byte", stream[:-1], inv(n - 1, "cutOff")))
    # §4 step 3 (and §2 step 7): the profile's place
    cases.append(("no records at all (empty FINAL chunk)", b"", inv(0, "missingProfile")))
    cases.append(("first record a setting", good_setting + stream, inv(0, "missingProfile")))
    cases.append(("first record a setting §5 does not allow: missingProfile (step 3 before 4)",
                  setting("device.account", b"x") + stream, inv(0, "missingProfile")))
    cases.append(("profile dropped", rest, inv(0, "missingProfile")))
    cases.append(("profile twice (second right after)", prof_rec + prof_rec + rest, inv(1, "duplicateProfile")))
    cases.append(("profile again at the end", stream + prof_rec, inv(n, "duplicateProfile")))
    # §4: step 2 before step 3
    cases.append(("first record a setting that does not parse: malformed(type: 2), not missingProfile",
                  record(T_SETTING, b"\x00\x09abc") + stream, inv(0, malformed(2))))
    cases.append(("first record of unknown type 0x07: unknownType, not missingProfile",
                  record(0x07, b"") + stream, inv(0, unknown_type(7))))
    cases.append(("first record too long: tooLong", b"\x02" + struct.pack(">I", RECORD_MAX + 1) + stream,
                  inv(0, too_long(RECORD_MAX + 1))))
    cases.append(("a second profile that does not parse: malformed(type: 1), not duplicateProfile",
                  prof_rec + prof_with(prof_body[:-1]) + rest, inv(1, malformed(1))))
    # §4 "does not parse": the profile
    cases.append(("profile one byte longer", prof_with(prof_body + b"\x00") + rest, inv(0, malformed(1))))
    cases.append(("profile one byte shorter", prof_with(prof_body[:-1]) + rest, inv(0, malformed(1))))
    cases.append(("profile with lp8(account) overrunning", prof_with(b"\xff" + prof_body[1:]) + rest,
                  inv(0, malformed(1))))
    pk = 1 + 5 + 8
    cases.append(("profile public key not the private key's", prof_with(flip(prof_body, pk + 5, 0x01)) + rest,
                  inv(0, malformed(1))))
    cases.append(("profile public key type byte 0x06", prof_with(flip(prof_body, pk, 0x03)) + rest,
                  inv(0, malformed(1))))
    cases.append(("profile private key changed", prof_with(flip(prof_body, pk + 33, 0x01 << 3)) + rest,
                  inv(0, malformed(1))))
    cases.append(("profile account not UTF-8", prof_with(b"\x05al\xffce" + prof_body[6:]) + rest,
                  inv(0, malformed(1))))
    for label, account in (("empty (length 138)", ""), ("33 bytes", "a" * 33), ("uppercase", "Alice"),
                           ("a space", "al ice"), ("'@'", "al@ce"), ("'+'", "al+ce"), ("non-ASCII", "alicé"),
                           ("a slash", "a/b")):
        cases.append((f"profile account {label}: not a relay §5 name", prof_named(account) + rest,
                      inv(0, malformed(1))))
    # §4 "does not parse": settings and application records
    cases.append(("setting with lp16(key) overrunning the body", stream + record(T_SETTING, b"\x00\x09abc"),
                  inv(n, malformed(2))))
    cases.append(("setting body of one byte", stream + record(T_SETTING, b"\x00"), inv(n, malformed(2))))
    cases.append(("setting key not UTF-8", stream + record(T_SETTING, b"\x00\x02\xc3\x28" + b"\x01"),
                  inv(n, malformed(2))))
    cases.append(("application with lp16(key) overrunning", stream + record(T_APPLICATION, b"\x01\x00"),
                  inv(n, malformed(5))))
    # §5 / §4 step 4: setting keys
    for key in ("device.identity-private", "outbox.next", "media.pointer", "privacy.read-receipts.x", "",
                "Relay.pinned-key", "counter.next-id", "identity.pendingx", "group.key-shared.00", "group.statex", "group.index."):
        cases.append((f"setting key {key!r}: settingNotAllowed", stream + setting(key, b"\x01"),
                      inv(n, setting_not_allowed(key))))
    # §4 "does not parse": identity
    ident = encode_record(expected_records_global[-1])
    cases.append(("identity one byte short", stream + record(T_IDENTITY, ident[5:-1]), inv(n, malformed(3))))
    cases.append(("identity one byte long", stream + record(T_IDENTITY, ident[5:] + b"\x00"), inv(n, malformed(3))))
    cases.append(("identity key type byte 0x06", stream + record(T_IDENTITY, flip(ident[5:], len(ident) - 5 - 33, 0x03)),
                  inv(n, malformed(3))))
    cases.append(("identity account not UTF-8", stream + record(T_IDENTITY, lp8(b"\xff") + ident[5 + 4:]),
                  inv(n, malformed(3))))
    # §4 "does not parse": message
    for label, body in (("direction 2", message_body(direction=2)), ("direction 255", message_body(direction=255)),
                        ("state 4", message_body(state=4)),
                        ("body not UTF-8", message_body(text=b"\xc3\x28")),
                        ("body a lone surrogate", message_body(text=b"\xed\xa0\x80")),
                        ("body an overlong '/'", message_body(text=b"\xc0\xaf")),
                        ("body above U+10FFFF", message_body(text=b"\xf4\x90\x80\x80")),
                        ("conversation not UTF-8", message_body(conv=b"\xff")),
                        ("cut in the fixed part", message_body()[:20]),
                        ("lp8(sender) overrunning", b"\x40abc")):
        cases.append((f"message {label}", stream + record(T_MESSAGE, body), inv(n, malformed(4))))
    # §4 step 4: at most 64 distinct application keys (`stream` already holds cli.relay)
    apps63 = b"".join(app(f"app.{i}") for i in range(APPLICATION_MAX - 1))
    cases.append(("65 distinct application keys", stream + apps63 + app("app.63"), inv(n + 63, malformed(5))))
    cases.append(("64 distinct application keys, then one of them again: refused (64 already held)",
                  stream + apps63 + app("app.0", b"again"), inv(n + 63, malformed(5))))
    cases.append(("64 distinct application keys, then cli.relay again: refused",
                  stream + apps63 + app("cli.relay"), inv(n + 63, malformed(5))))
    # chunk boundary placement does not change a record error
    cases.append(("a record error spanning chunks", stream + record(0x07, b"xyz"), inv(n, unknown_type(7))))
    for label, body, want in cases:
        data = f(body, [len(body) // 2] if label.startswith("a record error spanning") else None)
        expect(t, f"{name}: {label}: {want}", data, secret, want)
    # accepted record variants
    ok_cases = [
        ("64 distinct application keys", stream + apps63),
        ("100 application records of one key (1 distinct key)", stream + app("cli.relay") * 100),
        ("every §5 setting key", stream + b"".join(setting(k, v) for k, v in (
            ("relay.pinned-key", bytes(32)), ("privacy.read-receipts", b"\x01"),
            ("presence.setting", b"everyone"), ("presence.subscriptions", b"bob"),
            ("media.pointer.bob.2.9", b"\x01\x02"), ("identity.pending.bob", b"\x05")))),
        ("§5 prefixes with an empty suffix and any value",
         stream + setting("media.pointer.", b"") + setting("identity.pending.", b"\x00")),
        ("§5 values not validated: privacy.read-receipts 02", stream + setting("privacy.read-receipts", b"\x02")),
        ("§5 values not validated: privacy.read-receipts empty", stream + setting("privacy.read-receipts", b"")),
        ("§5 values not validated: relay.pinned-key of 3 bytes", stream + setting("relay.pinned-key", b"abc")),
        ("a setting with an empty value, an application entry with an empty key",
         stream + setting("presence.setting", b"") + app("", b"")),
        ("duplicates: a setting twice, an identity twice, a message twice",
         stream + good_setting + good_setting + ident + ident
         + record(T_MESSAGE, message_body(mid=5)) * 2),
        ("profile account of 32 bytes", prof_named("a" * 32) + rest),
        ("profile account of 1 byte", prof_named("a") + rest),
        ("profile account with every punctuation allowed", prof_named("a.b_c-9") + rest),
        ("profile private key unclamped (low 3 bits set, top bit set): clamped, same public key",
         prof_with(flip(flip(prof_body, pk + 33, 0x07), pk + 33 + 31, 0x80)) + rest),
        ("profile Noise key any 32 bytes (all ff)", prof_with(prof_body[:pk + 65] + b"\xff" * 32 + prof_body[pk + 97:]) + rest),
        # (§6 step 3: the restore needs next Kyber prekey id < 2^32, so that one stays below)
        ("profile ids and counters not checked (device 0, registration 0, counters 2^64 - 1, "
         "next Kyber prekey id 2^32 - 1)",
         encode_record(dict(p, device_id=0, registration_id=0, next_id=2**64 - 1, next_prekey_id=2**64 - 1,
                            signed_prekey_id=2**64 - 1, next_kyber_prekey_id=2**32 - 1)) + rest),
        ("identity of an empty account, device 0, key bytes ff…ff (not canonical)",
         stream + record(T_IDENTITY, lp8("") + struct.pack(">I", 0) + b"\x05" + b"\xff" * 32)),
        ("identity of a name relay §5 refuses", stream + record(T_IDENTITY, lp8("Bob Smith") + ident[5 + 4:])),
        ("message from a non-name sender to an empty conversation",
         stream + record(T_MESSAGE, message_body(sender="Not A Name", conv=""))),
        ("a record of exactly 1,048,576 bytes",
         stream + record(T_MESSAGE, message_body(text=b"m" * (RECORD_MAX - len(message_body(text=b"")))))),
        ("a message with an empty body and an identity before it", stream +
         ident + record(T_MESSAGE, message_body(text=b""))),
        ("records in another order after the profile",
         prof_rec + b"".join(encode_record(r) for r in reversed(expected_records_global[1:])))]
    for label, body in ok_cases:
        expect(t, f"{name}: accepted: {label}", w.file(fill(body)), secret, "ok")


def main(argv):
    global VERBOSE
    args = [a for a in argv[1:] if not a.startswith("-")]
    VERBOSE = "-v" in argv
    if len(args) != 1:
        print(__doc__)
        return 2
    root = args[0]
    started = time.time()
    expected = json.load(open(os.path.join(root, "expected.json"), encoding="utf-8"))
    t = Tally()
    t.check(expected.get("format") == "hush-backup-vectors/1", "expected.json format hush-backup-vectors/1",
            expected.get("format"))
    # every key of expected.json is one this checker compares (nothing silently ignored)
    file_keys = {"passphrase": {"file", "kdf", "passphrase", "operations", "memory_kib"},
                 "recovery-key": {"file", "kdf", "recovery_key"}}
    t.check(set(expected) == {"format", "created_at", "files", "records"}
            and all(set(f) == file_keys.get(f.get("kdf"), set()) for f in expected["files"]),
            "expected.json holds only fields this checker compares",
            f"{sorted(expected)}; {[sorted(f) for f in expected['files']]}")
    record_keys = {"profile": {"type", "account", "device_id", "registration_id", "identity_public",
                               "identity_private", "noise_private", "next_id", "next_prekey_id",
                               "signed_prekey_id", "next_kyber_prekey_id"},
                   "setting": {"type", "key", "value"}, "application": {"type", "key", "value"},
                   "identity": {"type", "account", "device", "key"},
                   "message": {"type", "sender_account", "sender_device", "message_id", "conversation",
                               "direction", "state", "sent_at", "server_time", "body"}}
    t.check(all(set(r) == record_keys.get(r.get("type"), set()) for r in expected["records"]),
            "expected.json records: every field is a §4 field")
    expected_records_global[:] = expected["records"]
    files = {f["file"]: f for f in expected["files"]}
    t.check(set(files) == {n for n in os.listdir(root) if n.endswith(".hushbackup")},
            "expected.json lists every .hushbackup file in the folder")
    raw_streams, opened = {}, {}
    for f in expected["files"]:
        r = check_kept_file(t, root, f, expected, raw_streams)
        if r:
            opened[f["file"]] = (f, r)
    if len(raw_streams) == 2:
        a, b = raw_streams.values()
        t.check(a == b, "both files hold the same record stream")
    pf = next(f for f in expected["files"] if f["kdf"] == "passphrase")
    rf = next(f for f in expected["files"] if f["kdf"] == "recovery-key")
    good_pass, good_rk = secret_of(pf), secret_of(rf)
    digits = rf["recovery_key"].replace(" ", "")
    wrong_rk = RecoveryKey(digits[:-1] + str((int(digits[-1]) + 1) % 10))
    pw = pf["passphrase"]
    if pf["file"] in opened:
        data = opened[pf["file"]][1][0]
        nfd = unicodedata.normalize("NFD", pw)
        t.check(nfd.encode() != pw.encode(), "the vector passphrase has a distinct NFD form (tests 'no normalization')")
        expect_many(t, f"{pf['file']}: wrong passphrases: wrongSecret",
                    [(label, data, Passphrase(p), "wrongSecret") for label, p in (
                        ("NFD form", nfd), ("trailing space", pw + " "), ("case changed", pw.upper()),
                        ("empty", ""), ("the recovery key's digits as a passphrase", digits))])
    for fname, (f, (data, hdr, k)) in opened.items():
        secret = secret_of(f)
        other = good_rk if secret.kind == "passphrase" else good_pass
        wrong = Passphrase(pw + "x") if secret.kind == "passphrase" else wrong_rk
        check_header_rules(t, fname, data, secret, other, wrong)
        check_flips(t, fname, data, secret)
        check_truncation_and_trailer(t, fname, data, secret)
        if f["kdf"] == "recovery-key":
            check_recovery_forms(t, data, f)
        stream = raw_streams[fname]
        w = check_chunks(t, fname, hdr, k, secret, stream)
        check_records(t, fname, w, secret, stream, encode_record(expected["records"][0]))
    elapsed = time.time() - started
    print(f"backup-check: {t.passed} passed, {t.failed} failed "
          f"({elapsed:.1f} s; {DERIVE_STATS['argon2id']} Argon2id derivations, "
          f"{DERIVE_STATS['argon2id_seconds']:.1f} s of them)")
    if t.failed:
        for n in t.failures:
            print(f"  failed: {n}")
    return 0 if t.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
