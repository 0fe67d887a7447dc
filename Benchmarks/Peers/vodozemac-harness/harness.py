"""vodozemac-harness: vodozemac (Matrix's Rust Olm/Megolm, through its PyPI bindings) measured
with the shared harness protocol (Benchmarks/Peers/README.md):

    python harness.py [--ops a,b,c] [--quick] [--list]

One JSON object per line: {"impl":"vodozemac","op":…,"ns":…,"iterations":…,"calls":…}. `calls`
is the number of calls into the bindings one operation makes; the `call_overhead` operation
measures one such call that does (almost) nothing, in the same loop shape, so hush-compare can
show vodozemac's time net of Python: ns − calls × call_overhead.

Loop: as PeerHarness/peer_harness.c (warm-up batches doubling until the warm-up time has passed,
then batches of about the target time; the median over batches of ns per operation).
Time is time.perf_counter_ns() around the whole batch, untimed preparation done before.
"""

import json
import sys
import time

import vodozemac as vz

PICKLE_KEY = b"hush-bench pickle key, 32 bytes!"
FULL = (150_000_000, 50_000_000, 11)  # warm-up ns, batch target ns, batches
QUICK = (50_000_000, 25_000_000, 7)
now = time.perf_counter_ns


class Pair:
    """Alice and Bob with an established Olm session, as the other harnesses' `establishedPair`:
    Alice's pre-key message decrypted by Bob, Bob's reply decrypted by Alice."""

    def __init__(self):
        self.alice_account = vz.Account()
        self.bob_account = vz.Account()
        self.bob_account.generate_one_time_keys(1)
        one_time_key = list(self.bob_account.one_time_keys.values())[0]
        self.bob_account.mark_keys_as_published()
        self.alice = self.alice_account.create_outbound_session(self.bob_account.curve25519_key, one_time_key)
        first = self.alice.encrypt(b"\x01" * 100)
        self.bob, plain = self.bob_account.create_inbound_session(self.alice_account.curve25519_key, first.to_pre_key())
        check(plain == b"\x01" * 100, "first message")
        check(self.alice.decrypt(self.bob.encrypt(b"\x02" * 100)) == b"\x02" * 100, "reply")


def check(condition, what):
    if not condition:
        raise RuntimeError(what)


class Op:
    """setup() -> state; prepare(state, n) untimed; run(state, n) timed; calls per operation."""

    def __init__(self, name, setup, run, prepare=None, calls=1, cap=1_000_000):
        self.name, self.setup, self.run, self.prepare, self.calls, self.cap = name, setup, run, prepare, calls, cap


def plaintext(size):
    return bytes(i & 0xFF for i in range(size))


# MARK: - operations

def setup_bare():
    state = Pair()
    state.plain = plaintext(100)
    return state


def run_x3dh_initiator(s, n):
    # create_outbound_session (3 DH, Olm has no signed pre key) + the first encrypt + its bytes.
    account, identity, one_time = s.alice_account, s.bob_account.curve25519_key, s.one_time_key
    plain = s.plain
    t0 = now()
    for _ in range(n):
        account.create_outbound_session(identity, one_time).encrypt(plain).to_parts()
    return now() - t0


def prepare_x3dh_initiator(s, n):
    if not hasattr(s, "one_time_key"):
        s.bob_account.generate_one_time_keys(1)
        s.one_time_key = list(s.bob_account.one_time_keys.values())[0]
        s.bob_account.mark_keys_as_published()


def prepare_x3dh_responder(s, n):
    # Per iteration: a fresh one-time key of Bob's and Alice's pre-key message to it (untimed).
    s.messages = []
    for _ in range(n):
        s.bob_account.generate_one_time_keys(1)
        key = list(s.bob_account.one_time_keys.values())[0]
        s.bob_account.mark_keys_as_published()
        session = s.alice_account.create_outbound_session(s.bob_account.curve25519_key, key)
        s.messages.append(session.encrypt(s.plain).to_parts())


def run_x3dh_responder(s, n):
    # Bytes → PreKeyMessage, create_inbound_session (3 DH + the decrypt; removes the one-time key).
    account, sender = s.bob_account, s.alice_account.curve25519_key
    from_parts = vz.AnyOlmMessage.from_parts
    t0 = now()
    for kind, body in s.messages:
        account.create_inbound_session(sender, from_parts(kind, body).to_pre_key())
    return now() - t0


def setup_established():
    state = Pair()
    state.plain = plaintext(100)
    return state


def run_encrypt_100(s, n):
    alice, plain = s.alice, s.plain
    t0 = now()
    for _ in range(n):
        alice.encrypt(plain).to_parts()
    return now() - t0


def prepare_decrypt_100(s, n):
    s.messages = [s.alice.encrypt(s.plain).to_parts() for _ in range(n)]


def run_decrypt_100(s, n):
    bob, from_parts = s.bob, vz.AnyOlmMessage.from_parts
    t0 = now()
    for kind, body in s.messages:
        bob.decrypt(from_parts(kind, body))
    return now() - t0


def run_ping_pong(s, n):
    # Strictly alternating: every decrypt is a DH ratchet step (Olm makes the key on encrypt).
    from_parts, plain = vz.AnyOlmMessage.from_parts, s.plain
    sides = ((s.alice, s.bob), (s.bob, s.alice))
    t0 = now()
    for i in range(n):
        sender, receiver = sides[i & 1]
        kind, body = sender.encrypt(plain).to_parts()
        receiver.decrypt(from_parts(kind, body))
    elapsed = now() - t0
    if n & 1:  # keep Alice the next sender
        s.bob.encrypt(plain)
        s.alice.decrypt(s.bob.encrypt(plain))
    return elapsed


def roundtrip(size):
    def run(s, n):
        plain = s.plains.setdefault(size, plaintext(size))
        alice, bob, from_parts = s.alice, s.bob, vz.AnyOlmMessage.from_parts
        t0 = now()
        for _ in range(n):
            kind, body = alice.encrypt(plain).to_parts()
            bob.decrypt(from_parts(kind, body))
        return now() - t0
    return run


def setup_roundtrip():
    state = setup_established()
    state.plains = {}
    return state


def setup_record_fresh():
    state = Pair()
    state.record = state.alice
    state.pickle = state.record.pickle(PICKLE_KEY)
    return state


def setup_record_2000():
    # Alice sends counters 0–2000 of a new chain, Bob decrypts only the last. vodozemac, like
    # libolm, keeps at most 40 skipped message keys.
    state = Pair()
    plain = plaintext(100)
    messages = [state.alice.encrypt(plain) for _ in range(2001)]
    check(state.bob.decrypt(messages[-1]) == plain, "message 2000")
    state.record = state.bob
    state.pickle = state.record.pickle(PICKLE_KEY)
    return state


def run_record_serialize(s, n):
    record = s.record
    t0 = now()
    for _ in range(n):
        record.pickle(PICKLE_KEY)
    return now() - t0


def run_record_deserialize(s, n):
    pickle, from_pickle = s.pickle, vz.Session.from_pickle
    t0 = now()
    for _ in range(n):
        from_pickle(pickle, PICKLE_KEY)
    return now() - t0


def setup_signatures():
    state = Pair()
    state.digest = bytes(range(32))
    state.key = state.alice_account.ed25519_key
    state.signature = state.alice_account.sign(state.digest)
    state.key.verify_signature(state.digest, state.signature)
    return state


def run_sign(s, n):
    account, digest = s.alice_account, s.digest
    t0 = now()
    for _ in range(n):
        account.sign(digest)
    return now() - t0


def run_verify(s, n):
    key, digest, signature = s.key, s.digest, s.signature
    t0 = now()
    for _ in range(n):
        key.verify_signature(digest, signature)
    return now() - t0


def setup_megolm():
    state = Pair()
    state.plain = plaintext(100)
    state.group_out = vz.GroupSession()
    state.group_in = vz.InboundGroupSession(state.group_out.session_key)
    return state


def run_senderkey_encrypt_100(s, n):
    group, plain = s.group_out, s.plain
    t0 = now()
    for _ in range(n):
        group.encrypt(plain).to_bytes()
    return now() - t0


def prepare_senderkey_decrypt_100(s, n):
    s.messages = [s.group_out.encrypt(s.plain).to_bytes() for _ in range(n)]


def run_senderkey_decrypt_100(s, n):
    group, from_bytes = s.group_in, vz.MegolmMessage.from_bytes
    t0 = now()
    for body in s.messages:
        group.decrypt(from_bytes(body))
    return now() - t0


def setup_overhead():
    state = Pair()
    state.key_bytes = bytes(state.alice_account.curve25519_key.to_bytes())
    return state


def run_call_overhead(s, n):
    # One call into the bindings that does almost nothing: bytes in, a new object out — the shape
    # of encrypt (plaintext in, message out) and of from_parts/from_bytes.
    key_bytes, from_bytes = s.key_bytes, vz.Curve25519PublicKey.from_bytes
    t0 = now()
    for _ in range(n):
        from_bytes(key_bytes)
    return now() - t0


OPS = [
    Op("x3dh_initiator", setup_bare, run_x3dh_initiator, prepare_x3dh_initiator, calls=3),
    Op("x3dh_responder", setup_bare, run_x3dh_responder, prepare_x3dh_responder, calls=3, cap=2000),
    Op("encrypt_100", setup_established, run_encrypt_100, calls=2),
    Op("decrypt_100", setup_established, run_decrypt_100, prepare_decrypt_100, calls=2, cap=100_000),
    Op("ping_pong", setup_established, run_ping_pong, calls=4),
    Op("roundtrip_1k", setup_roundtrip, roundtrip(1024), calls=4),
    Op("roundtrip_64k", setup_roundtrip, roundtrip(65536), calls=4),
    Op("record_serialize_fresh", setup_record_fresh, run_record_serialize, calls=1),
    Op("record_deserialize_fresh", setup_record_fresh, run_record_deserialize, calls=1),
    Op("record_serialize_2000", setup_record_2000, run_record_serialize, calls=1),
    Op("record_deserialize_2000", setup_record_2000, run_record_deserialize, calls=1),
    Op("xeddsa_sign", setup_signatures, run_sign, calls=1),
    Op("xeddsa_verify", setup_signatures, run_verify, calls=1),
    Op("senderkey_encrypt_100", setup_megolm, run_senderkey_encrypt_100, calls=2),
    Op("senderkey_decrypt_100", setup_megolm, run_senderkey_decrypt_100, prepare_senderkey_decrypt_100, calls=2,
       cap=100_000),
    Op("call_overhead", setup_overhead, run_call_overhead, calls=1),
]


def batch(op, state, n):
    if op.prepare:
        op.prepare(state, n)
    return op.run(state, n)


def measure(op, config):
    warmup_ns, target_ns, batches = config
    state = op.setup()
    start, n = now(), 1
    while True:
        elapsed = batch(op, state, n)
        estimate = elapsed / n if elapsed else 1.0
        if now() - start >= warmup_ns:
            break
        if elapsed * 2 <= target_ns and n * 2 <= op.cap:
            n *= 2
    per_batch = max(1, min(op.cap, int(target_ns / estimate)))
    per_op = sorted(batch(op, state, per_batch) / per_batch for _ in range(batches))
    middle = len(per_op) // 2
    ns = per_op[middle] if len(per_op) % 2 else (per_op[middle - 1] + per_op[middle]) / 2
    line = {"impl": "vodozemac", "op": op.name, "ns": round(ns, 1), "iterations": per_batch * batches,
            "calls": op.calls}
    print(json.dumps(line, separators=(",", ":")), flush=True)


def main(argv):
    quick, listing, selection = False, False, None
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--quick":
            quick = True
        elif arg == "--list":
            listing = True
        elif arg == "--ops" and i + 1 < len(argv):
            i += 1
            selection = argv[i].split(",")
        elif arg.startswith("--ops="):
            selection = arg[6:].split(",")
        elif arg in ("--help", "-h"):
            print(f"usage: {argv[0]} [--ops a,b,c] [--quick] [--list]")
            return 0
        else:
            print(f"{argv[0]}: unknown argument '{arg}'", file=sys.stderr)
            return 2
        i += 1
    if listing:
        for op in OPS:
            print(op.name)
        return 0
    by_name = {op.name: op for op in OPS}
    chosen = OPS if selection is None else []
    for name in selection or []:
        if name in by_name:
            chosen.append(by_name[name])
        else:
            print(f"vodozemac-harness: unknown operation '{name}', skipped", file=sys.stderr)
    status = 0
    for op in chosen:
        try:
            measure(op, QUICK if quick else FULL)
        except Exception as error:  # report and go on with the next operation
            print(f"vodozemac {op.name}: {type(error).__name__}: {error}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
