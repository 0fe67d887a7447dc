import Foundation
import Hush
import Testing

func hex(_ s: String) -> [UInt8] { try! Hex.decode(s) }

/// A device for tests: identity, registration id, a signed prekey and one-time prekeys, all
/// drawn from a seeded source so that every test run produces the same bytes.
final class Device: Sendable {
    let address: ProtocolAddress
    let store: InMemorySignalProtocolStore
    let random: SeededRandom
    let identity: IdentityKeyPair
    let signedPreKey: SignedPreKeyRecord
    let preKeys: [PreKeyRecord]

    init(_ name: String, deviceID: UInt32 = 1, seed: UInt64, preKeyIDs: [UInt32] = Array(100..<110)) {
        address = ProtocolAddress(name: name, deviceID: deviceID)
        random = SeededRandom(seed: seed)
        identity = try! IdentityKeyPair.generate(using: random)
        let registrationID = try! RegistrationID.generate(using: random)
        store = InMemorySignalProtocolStore(identity: identity, registrationID: registrationID)
        signedPreKey = try! SignedPreKeyRecord.generate(id: 1, signedBy: identity, using: random)
        preKeys = try! PreKeyRecord.generate(ids: preKeyIDs, using: random)
        store.storeSignedPreKey(signedPreKey)
        for key in preKeys { store.storePreKey(key) }
    }

    /// A bundle with the signed prekey and, if given, the one-time prekey with that id.
    func bundle(oneTimePreKeyID: UInt32? = 100) -> PreKeyBundle {
        PreKeyBundle(
            registrationID: store.localRegistrationID(), deviceID: address.deviceID, identityKey: identity.identityKey,
            signedPreKey: signedPreKey.publicSignedPreKey,
            oneTimePreKey: oneTimePreKeyID.flatMap { id in preKeys.first { $0.id == id }?.publicPreKey })
    }

    func startSession(with other: Device, oneTimePreKeyID: UInt32? = 100, suite: CipherSuite = .signalV3) throws {
        try SessionBuilder.process(other.bundle(oneTimePreKeyID: oneTimePreKeyID), for: other.address, store: store, suite: suite, random: random)
    }

    func encrypt(_ text: String, to other: Device) throws -> CiphertextMessage {
        try SessionCipher.encrypt(Array(text.utf8), for: other.address, store: store)
    }

    func decrypt(_ message: CiphertextMessage, from other: Device) throws(SignalProtocolError) -> String {
        String(decoding: try SessionCipher.decrypt(message, from: other.address, store: store, random: random), as: UTF8.self)
    }

    /// Decrypts bytes of the given kind (parsing included).
    func decrypt(bytes: [UInt8], kind: CiphertextMessage.Kind, from other: Device) throws(SignalProtocolError) -> [UInt8] {
        let message = try CiphertextMessage(kind: kind, serialized: bytes)
        return try SessionCipher.decrypt(message, from: other.address, store: store, random: random)
    }
}

/// Alice and Bob with a session in both directions (Alice initiated, Bob answered).
func establishedPair(seed: UInt64 = 1, suite: CipherSuite = .signalV3) throws -> (Device, Device) {
    let alice = Device("alice", seed: seed)
    let bob = Device("bob", seed: seed &+ 1000)
    try alice.startSession(with: bob, suite: suite)
    #expect(try bob.decrypt(try alice.encrypt("hello", to: bob), from: alice) == "hello")
    #expect(try alice.decrypt(try bob.encrypt("hi", to: alice), from: bob) == "hi")
    return (alice, bob)
}

/// Bytes of a PreKeySignalMessage that Signal's v3 format does not authenticate: the low
/// nibble of the version byte and the registration id field (tag and value). Changing them
/// cannot change the plaintext or any key (libsignal-protocol-c accepts such changes too);
/// every other byte is bound by the inner MAC or by X3DH. See Docs/protocol.md.
func unauthenticatedPositions(of message: PreKeySignalMessage) -> Set<Int> {
    func varintSize(_ v: UInt32) -> Int { v < 1 << 7 ? 1 : v < 1 << 14 ? 2 : v < 1 << 21 ? 3 : v < 1 << 28 ? 4 : 5 }
    let count = message.serialized.count
    let spk = 1 + varintSize(message.signedPreKeyID)
    let reg = 1 + varintSize(message.registrationID)
    return Set([0]).union((count - spk - reg)..<(count - spk))
}
