import Hush

/// A device with stores, for benchmarks.
final class BenchDevice: @unchecked Sendable {
    let address: ProtocolAddress
    let identity: IdentityKeyPair
    let store: InMemorySignalProtocolStore
    let signedPreKey: SignedPreKeyRecord

    init(_ name: String, seed: UInt64) {
        let random = SeededRandom(seed: seed)
        address = ProtocolAddress(name: name, deviceID: 1)
        identity = try! IdentityKeyPair.generate(using: random)
        store = InMemorySignalProtocolStore(identity: identity, registrationID: 1 + UInt32(seed % 1000))
        signedPreKey = try! SignedPreKeyRecord.generate(id: 1, signedBy: identity, using: random)
        store.storeSignedPreKey(signedPreKey)
    }

    /// A fresh store with the same identity and signed prekey (for "new session" operations).
    func freshStore() -> InMemorySignalProtocolStore {
        let s = InMemorySignalProtocolStore(identity: identity, registrationID: store.localRegistrationID())
        s.storeSignedPreKey(signedPreKey)
        return s
    }

    func bundle(oneTimePreKey: PreKeyRecord?) -> PreKeyBundle {
        PreKeyBundle(registrationID: store.localRegistrationID(), deviceID: 1, identityKey: identity.identityKey,
                     signedPreKey: signedPreKey.publicSignedPreKey, oneTimePreKey: oneTimePreKey?.publicPreKey)
    }
}

let payload100 = [UInt8](repeating: 0x61, count: 100)
let payload1k = [UInt8](repeating: 0x62, count: 1024)
let payload64k = [UInt8](repeating: 0x63, count: 65536)

/// Alice and Bob after a complete handshake (both have sent and received).
func establishedPair(suite: CipherSuite = .signalV3) throws -> (BenchDevice, BenchDevice) {
    let alice = BenchDevice("alice", seed: 1)
    let bob = BenchDevice("bob", seed: 2)
    let otk = try PreKeyRecord.generate(id: 1)
    bob.store.storePreKey(otk)
    try SessionBuilder.process(bob.bundle(oneTimePreKey: otk), for: bob.address, store: alice.store, suite: suite)
    _ = try SessionCipher.decrypt(try SessionCipher.encrypt(payload100, for: bob.address, store: alice.store), from: alice.address, store: bob.store)
    _ = try SessionCipher.decrypt(try SessionCipher.encrypt(payload100, for: alice.address, store: bob.store), from: bob.address, store: alice.store)
    // One more message from Alice, so that Bob's receiving chain for her current ratchet key
    // exists: what follows is steady state on both sides.
    _ = try SessionCipher.decrypt(try SessionCipher.encrypt(payload100, for: bob.address, store: alice.store), from: alice.address, store: bob.store)
    return (alice, bob)
}

/// Hush's implementations of the shared operations.
public enum HushOperations {
    /// Every operation: the session operations for Signal v3 and (suffixed `_hush1`) for
    /// hush-1, records, signatures, sender keys and envelopes.
    public static let all: [BenchOperation] = sessionOperations(suite: .signalV3) + others + sessionOperations(suite: .hush1) + envelopes

    static func sessionOperations(suite: CipherSuite) -> [BenchOperation] {
        let suffix = suite == .signalV3 ? "" : "_hush1"
        let kind: CiphertextMessage.Kind = suite == .signalV3 ? .signal : .hush
        let preKeyKind: CiphertextMessage.Kind = suite == .signalV3 ? .preKeySignal : .hushPreKey
        return [
        BenchOperation("x3dh_initiator" + suffix) { n in
            let bob = BenchDevice("bob", seed: 2)
            let alice = BenchDevice("alice", seed: 1)
            var bundles: [PreKeyBundle] = []
            for i in 0..<n {
                let otk = try PreKeyRecord.generate(id: UInt32(i + 1))
                bundles.append(bob.bundle(oneTimePreKey: otk))
            }
            let stores = (0..<n).map { _ in alice.freshStore() }
            return {
                for i in 0..<n {
                    try SessionBuilder.process(bundles[i], for: bob.address, store: stores[i], suite: suite)
                    _ = try SessionCipher.encrypt(payload100, for: bob.address, store: stores[i])
                }
            }
        },
        BenchOperation("x3dh_responder" + suffix) { n in
            let bob = BenchDevice("bob", seed: 2)
            let alice = BenchDevice("alice", seed: 1)
            var messages: [CiphertextMessage] = []
            var bobStores: [InMemorySignalProtocolStore] = []
            for i in 0..<n {
                let otk = try PreKeyRecord.generate(id: UInt32(i + 1))
                let store = bob.freshStore()
                store.storePreKey(otk)
                bobStores.append(store)
                let aliceStore = alice.freshStore()
                try SessionBuilder.process(bob.bundle(oneTimePreKey: otk), for: bob.address, store: aliceStore, suite: suite)
                messages.append(try SessionCipher.encrypt(payload100, for: bob.address, store: aliceStore))
            }
            let bytes = messages.map(\.serialized)
            return {
                for i in 0..<n {
                    _ = try SessionCipher.decrypt(try CiphertextMessage(kind: preKeyKind, serialized: bytes[i]), from: alice.address, store: bobStores[i])
                }
            }
        },
        BenchOperation("encrypt_100" + suffix) { n in
            let (alice, bob) = try establishedPair(suite: suite)
            return { for _ in 0..<n { _ = try SessionCipher.encrypt(payload100, for: bob.address, store: alice.store) } }
        },
        BenchOperation("decrypt_100" + suffix) { n in
            let (alice, bob) = try establishedPair(suite: suite)
            // Received as bytes: parsing is part of the operation.
            let messages = try (0..<n).map { _ in try SessionCipher.encrypt(payload100, for: bob.address, store: alice.store).serialized }
            return {
                for bytes in messages {
                    _ = try SessionCipher.decrypt(try CiphertextMessage(kind: kind, serialized: bytes), from: alice.address, store: bob.store)
                }
            }
        },
        BenchOperation("ping_pong" + suffix) { n in
            let (alice, bob) = try establishedPair(suite: suite)
            return {
                // n messages, alternating direction: every message is a DH ratchet step.
                // Alice sent last, so Bob's next message already starts a new ratchet chain.
                for i in 0..<n {
                    let (from, to) = i % 2 == 0 ? (bob, alice) : (alice, bob)
                    let bytes = try SessionCipher.encrypt(payload100, for: to.address, store: from.store).serialized
                    _ = try SessionCipher.decrypt(try CiphertextMessage(kind: kind, serialized: bytes), from: from.address, store: to.store)
                }
            }
        },
        roundtrip("roundtrip_1k" + suffix, payload1k, suite: suite),
        roundtrip("roundtrip_64k" + suffix, payload64k, suite: suite),
        ]
    }

    static let others: [BenchOperation] = [
        BenchOperation("record_serialize_fresh") { n in
            let (alice, bob) = try establishedPair()
            let record = alice.store.loadSession(for: bob.address)!
            return { for _ in 0..<n { _ = record.serialized() } }
        },
        BenchOperation("record_deserialize_fresh") { n in
            let (alice, bob) = try establishedPair()
            let bytes = alice.store.loadSession(for: bob.address)!.serialized()
            return { for _ in 0..<n { _ = try SessionRecord(serialized: bytes) } }
        },
        BenchOperation("record_serialize_2000") { n in
            let record = try recordWith2000SkippedKeys()
            return { for _ in 0..<n { _ = record.serialized() } }
        },
        BenchOperation("record_deserialize_2000") { n in
            let bytes = try recordWith2000SkippedKeys().serialized()
            return { for _ in 0..<n { _ = try SessionRecord(serialized: bytes) } }
        },
        BenchOperation("xeddsa_sign") { n in
            let identity = try IdentityKeyPair.generate(using: SeededRandom(seed: 3))
            let message = [UInt8](repeating: 7, count: 32)
            return { for _ in 0..<n { _ = try identity.signature(for: message) } }
        },
        BenchOperation("xeddsa_verify") { n in
            let identity = try IdentityKeyPair.generate(using: SeededRandom(seed: 3))
            let message = [UInt8](repeating: 7, count: 32)
            let signature = try identity.signature(for: message)
            return { for _ in 0..<n { precondition(identity.identityKey.isValidSignature(signature, for: message)) } }
        },
        BenchOperation("senderkey_encrypt_100") { n in
            let (alice, _, name) = try groupPair()
            return { for _ in 0..<n { _ = try GroupCipher.encrypt(payload100, for: name, store: alice.store) } }
        },
        BenchOperation("senderkey_decrypt_100") { n in
            let (alice, bob, name) = try groupPair()
            let messages = try (0..<n).map { _ in try GroupCipher.encrypt(payload100, for: name, store: alice.store).serialized }
            return { for bytes in messages { _ = try GroupCipher.decrypt(bytes, from: name, store: bob.store) } }
        },
    ]

    static func roundtrip(_ name: String, _ payload: [UInt8], suite: CipherSuite) -> BenchOperation {
        BenchOperation(name) { n in
            let (alice, bob) = try establishedPair(suite: suite)
            let kind: CiphertextMessage.Kind = suite == .signalV3 ? .signal : .hush
            return {
                for _ in 0..<n {
                    let bytes = try SessionCipher.encrypt(payload, for: bob.address, store: alice.store).serialized
                    _ = try SessionCipher.decrypt(try CiphertextMessage(kind: kind, serialized: bytes), from: alice.address, store: bob.store)
                }
            }
        }
    }

    static func recordWith2000SkippedKeys() throws -> SessionRecord {
        let (alice, bob) = try establishedPair()
        var last: CiphertextMessage?
        for _ in 0...2000 { last = try SessionCipher.encrypt(payload100, for: bob.address, store: alice.store) }
        _ = try SessionCipher.decrypt(last!, from: alice.address, store: bob.store)
        return bob.store.loadSession(for: alice.address)!
    }

    /// Sealing and opening a hush-1 message of 100 bytes in an envelope (certificate included).
    static let envelopes: [BenchOperation] = [
        BenchOperation("envelope_seal") { n in
            let (alice, bob, certificate, _) = try envelopeFixture()
            return {
                for _ in 0..<n {
                    _ = try SealedEnvelope.seal(payload100, contentType: .message, certificate: certificate,
                                                senderIdentity: alice.identity, to: bob.identity.identityKey)
                }
            }
        },
        BenchOperation("envelope_open") { n in
            let (alice, bob, certificate, validator) = try envelopeFixture()
            let envelope = try SealedEnvelope.seal(payload100, contentType: .message, certificate: certificate,
                                                   senderIdentity: alice.identity, to: bob.identity.identityKey)
            return {
                for _ in 0..<n { _ = try SealedEnvelope.open(envelope, recipientIdentity: bob.identity, validator: validator, now: 1) }
            }
        },
    ]

    /// Issue 12's group goal: one group message to 100 member devices costs one sender-key
    /// encryption and one multi-recipient envelope (one payload, 100 headers: 200 X25519) against
    /// 100 pairwise encryptions each sealed in its own envelope (200 X25519 too, and 100 ratchet
    /// steps and payload encryptions). The bytes on the wire: `GroupWireSizeTests`.
    public static let fanout: [BenchOperation] = [
        BenchOperation("group_send_100_devices") { n in
            let (alice, members, certificate) = try fanoutFixture()
            let name = SenderKeyName(groupID: "bench-group-100", sender: alice.address)
            _ = try GroupSessionBuilder.distributionMessage(for: name, store: alice.store)
            let keys = members.map(\.identity.identityKey)
            let groupID = [UInt8](repeating: 7, count: 16)
            return {
                for _ in 0..<n {
                    let message = try GroupCipher.encrypt(payload100, for: name, store: alice.store)
                    _ = try MultiRecipientEnvelope.seal(groupID + message.serialized, contentType: .groupMessage, certificate: certificate,
                                                        senderIdentity: alice.identity, to: keys)
                }
            }
        },
        // The same with the sender's StaticAgreementCache warm (what HushClient does for every
        // group message after the first to the same members): 100 X25519 fewer per message.
        BenchOperation("group_send_100_devices_cached") { n in
            let (alice, members, certificate) = try fanoutFixture()
            let name = SenderKeyName(groupID: "bench-group-100", sender: alice.address)
            _ = try GroupSessionBuilder.distributionMessage(for: name, store: alice.store)
            let keys = members.map(\.identity.identityKey)
            let groupID = [UInt8](repeating: 7, count: 16)
            let cache = StaticAgreementCache()
            let first = try GroupCipher.encrypt(payload100, for: name, store: alice.store)
            _ = try MultiRecipientEnvelope.seal(groupID + first.serialized, contentType: .groupMessage, certificate: certificate,
                                                senderIdentity: alice.identity, to: keys, staticAgreements: cache)
            return {
                for _ in 0..<n {
                    let message = try GroupCipher.encrypt(payload100, for: name, store: alice.store)
                    _ = try MultiRecipientEnvelope.seal(groupID + message.serialized, contentType: .groupMessage, certificate: certificate,
                                                        senderIdentity: alice.identity, to: keys, staticAgreements: cache)
                }
            }
        },
        BenchOperation("pairwise_send_100_devices") { n in
            let (alice, members, certificate) = try fanoutFixture()
            return {
                for _ in 0..<n {
                    for m in members {
                        let message = try SessionCipher.encrypt(payload100, for: m.address, store: alice.store)
                        _ = try SealedEnvelope.seal(message.serialized, contentType: .message, certificate: certificate,
                                                    senderIdentity: alice.identity, to: m.identity.identityKey)
                    }
                }
            }
        },
    ]

    /// Alice with an established hush-1 session to each of 100 member devices, and her sender certificate.
    static func fanoutFixture() throws -> (BenchDevice, [BenchDevice], SenderCertificate) {
        let (alice, _, certificate, _) = try envelopeFixture()
        var members: [BenchDevice] = []
        for i in 0..<100 {
            let m = BenchDevice("member\(i)", seed: 100 + UInt64(i))
            try SessionBuilder.process(m.bundle(oneTimePreKey: nil), for: m.address, store: alice.store, suite: .hush1)
            _ = try SessionCipher.decrypt(try SessionCipher.encrypt(payload100, for: m.address, store: alice.store), from: alice.address, store: m.store)
            _ = try SessionCipher.decrypt(try SessionCipher.encrypt(payload100, for: alice.address, store: m.store), from: m.address, store: alice.store)
            members.append(m)
        }
        return (alice, members, certificate)
    }

    static func envelopeFixture() throws -> (BenchDevice, BenchDevice, SenderCertificate, CertificateValidator) {
        let random = SeededRandom(seed: 9)
        let root = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let serverKey = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let server = try ServerCertificate.issue(keyID: 1, key: serverKey.publicKey, expiration: UInt64.max, signedBy: root, random: random)
        let alice = BenchDevice("alice", seed: 1), bob = BenchDevice("bob", seed: 2)
        let certificate = try SenderCertificate.issue(senderID: "alice", deviceID: 1, identityKey: alice.identity.identityKey,
                                                      expiration: UInt64.max, server: server, signedBy: serverKey, random: random)
        return (alice, bob, certificate, CertificateValidator(trustRoot: root.publicKey))
    }

    static func groupPair() throws -> (BenchDevice, BenchDevice, SenderKeyName) {
        let alice = BenchDevice("alice", seed: 1)
        let bob = BenchDevice("bob", seed: 2)
        let name = SenderKeyName(groupID: "bench", sender: alice.address)
        let d = try GroupSessionBuilder.distributionMessage(for: name, store: alice.store)
        try GroupSessionBuilder.process(d, from: name, store: bob.store)
        return (alice, bob, name)
    }
}
