#!/usr/bin/env python3
"""Writes TestVectors/noise/noiseprotocol-25519.json: Noise_XX/IK/NK_25519_ChaChaPoly_SHA256
sessions made by an independent implementation, PyPI's `noiseprotocol` (pip install
noiseprotocol==0.3.1), in the cacophony format that hush-conformance reads.

Each vector lists both parties' keys (static, remote static, a fixed ephemeral), the prologue,
the handshake hash and every message (handshake messages, then transport messages, alternating
directions from the initiator). A transport message with "rekey": true is sent after the
sender rekeyed its sending cipher and the receiver its receiving one (Noise §4.2, §11.3); that
field is this file's only addition to the cacophony format. Keys and payloads derive from fixed
labels, so the output is the same on every run:

    python3 Tools/noise-vectors/generate.py > TestVectors/noise/noiseprotocol-25519.json
"""
import hashlib
import json

import noise
from noise.connection import Keypair, NoiseConnection


def key(label: str) -> bytes:
    return hashlib.sha256(("hush noise vectors " + label).encode()).digest()


def public(private: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def payload(label: str, length: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"{label} {counter}".encode()).digest()
        counter += 1
    return out[:length]


def session(pattern: str, case: int, prologue: bytes, handshake_sizes, transport):
    name = f"Noise_{pattern}_25519_ChaChaPoly_SHA256"
    i_static, r_static = key(f"{pattern} {case} initiator static"), key(f"{pattern} {case} responder static")
    i_eph, r_eph = key(f"{pattern} {case} initiator ephemeral"), key(f"{pattern} {case} responder ephemeral")
    initiator, responder = NoiseConnection.from_name(name.encode()), NoiseConnection.from_name(name.encode())
    initiator.set_as_initiator()
    responder.set_as_responder()
    vector = {"protocol_name": name, "init_prologue": prologue.hex(), "resp_prologue": prologue.hex()}
    if pattern != "NK":
        initiator.set_keypair_from_private_bytes(Keypair.STATIC, i_static)
        vector["init_static"] = i_static.hex()
    responder.set_keypair_from_private_bytes(Keypair.STATIC, r_static)
    vector["resp_static"] = r_static.hex()
    if pattern in ("IK", "NK"):
        initiator.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, public(r_static))
        vector["init_remote_static"] = public(r_static).hex()
    initiator.set_keypair_from_private_bytes(Keypair.EPHEMERAL, i_eph)
    responder.set_keypair_from_private_bytes(Keypair.EPHEMERAL, r_eph)
    vector["init_ephemeral"], vector["resp_ephemeral"] = i_eph.hex(), r_eph.hex()
    for side in (initiator, responder):
        side.set_prologue(prologue)
        side.start_handshake()
    messages = []
    index = 0
    for size in handshake_sizes:
        sender, receiver = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        p = payload(f"{name} {case} message {index}", size)
        ciphertext = sender.write_message(p)
        assert receiver.read_message(ciphertext) == p
        messages.append({"payload": p.hex(), "ciphertext": ciphertext.hex()})
        index += 1
    assert initiator.handshake_finished and responder.handshake_finished
    assert initiator.get_handshake_hash() == responder.get_handshake_hash()
    vector["handshake_hash"] = initiator.get_handshake_hash().hex()
    for size, rekey in transport:
        sender, receiver = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        if rekey:
            sender.rekey_outbound_cipher()
            receiver.rekey_inbound_cipher()
        p = payload(f"{name} {case} message {index}", size)
        ciphertext = sender.encrypt(p)
        assert receiver.decrypt(ciphertext) == p
        entry = {"payload": p.hex(), "ciphertext": ciphertext.hex()}
        if rekey:
            entry["rekey"] = True
        messages.append(entry)
        index += 1
    vector["messages"] = messages
    return vector


def main():
    counts = {"XX": 3, "IK": 2, "NK": 2}
    vectors = []
    for pattern, count in counts.items():
        # Empty payloads and an empty prologue; then payloads of several sizes, one of 2,000
        # bytes, and rekeys in both directions, one of them twice in a row.
        vectors.append(session(pattern, 0, b"", [0] * count, [(0, False), (0, False)]))
        vectors.append(session(pattern, 1, b"hush relay v1", [1, 100, 37][:count],
                               [(100, False), (1, False), (2000, False), (5, True), (5, True), (16, False), (0, True), (64, False)]))
    print(json.dumps({
        "generator": "Tools/noise-vectors/generate.py with noiseprotocol " + getattr(noise, "__version__", "0.3.1") + " (PyPI)",
        "vectors": vectors,
    }, indent=1))


if __name__ == "__main__":
    main()
