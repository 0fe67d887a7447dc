import HushPQ
import Testing

/// A device with X25519 prekeys and Kyber prekeys (ids 200–202 one-time, 300 last-resort),
/// all drawn from a seeded source.
final class PQDevice: Sendable {
    let address: ProtocolAddress
    let store: InMemorySignalProtocolStore
    let kyberStore = InMemoryKyberPreKeyStore()
    let random: SeededRandom
    let identity: IdentityKeyPair
    let signedPreKey: SignedPreKeyRecord
    let preKeys: [PreKeyRecord]
    let kyberPreKeys: [KyberPreKeyRecord]

    init(_ name: String, seed: UInt64) {
        address = ProtocolAddress(name: name, deviceID: 1)
        random = SeededRandom(seed: seed)
        identity = try! IdentityKeyPair.generate(using: random)
        let registrationID = try! RegistrationID.generate(using: random)
        store = InMemorySignalProtocolStore(identity: identity, registrationID: registrationID)
        signedPreKey = try! SignedPreKeyRecord.generate(id: 1, signedBy: identity, using: random)
        preKeys = try! PreKeyRecord.generate(ids: 100..<103, using: random)
        var kyber: [KyberPreKeyRecord] = []
        for id in UInt32(200)..<203 { kyber.append(try! KyberPreKeyRecord.generate(id: id, kind: .oneTime, signedBy: identity, using: random)) }
        kyber.append(try! KyberPreKeyRecord.generate(id: 300, kind: .lastResort, signedBy: identity, using: random))
        kyberPreKeys = kyber
        store.storeSignedPreKey(signedPreKey)
        for key in preKeys { store.storePreKey(key) }
        for key in kyber { try! kyberStore.storeKyberPreKey(key) }
    }

    func bundle(oneTimePreKeyID: UInt32? = 100, kyberID: UInt32? = 200) -> PostQuantumPreKeyBundle {
        PostQuantumPreKeyBundle(
            bundle: PreKeyBundle(
                registrationID: store.localRegistrationID(), deviceID: 1, identityKey: identity.identityKey,
                signedPreKey: signedPreKey.publicSignedPreKey,
                oneTimePreKey: oneTimePreKeyID.flatMap { id in preKeys.first { $0.id == id }?.publicPreKey }),
            kyberPreKey: kyberID.flatMap { id in kyberPreKeys.first { $0.id == id }?.publicKyberPreKey })
    }

    /// Sends `text` to `other` and returns the bytes with their kind, as a transport would.
    func send(_ text: String, to other: PQDevice) throws -> (CiphertextMessage.Kind, [UInt8]) {
        let message = try SessionCipher.encrypt(Array(text.utf8), for: other.address, store: store)
        return (message.kind, message.serialized)
    }

    func receive(_ wire: (CiphertextMessage.Kind, [UInt8]), from other: PQDevice, policy: PostQuantumPolicy = .acceptEither) throws -> String {
        let message = try PQXDH.message(kind: wire.0, serialized: wire.1)
        let plaintext = try PQXDH.decrypt(message, from: other.address, store: store, kyberStore: kyberStore, policy: policy, random: random)
        return String(decoding: plaintext, as: UTF8.self)
    }
}
