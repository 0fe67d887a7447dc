import HushPQ

/// PQXDH in both suites (HushPQ), beside X3DH: the same operations as `x3dh_initiator` /
/// `x3dh_responder` (process the bundle and encrypt the first 100-byte message; decrypt it as
/// the responder), with a one-time X25519 prekey and a one-time Kyber prekey.
public enum PQXDHOperations {
    public static let all: [BenchOperation] = operations(suite: .signalV3) + operations(suite: .hush1)

    static func operations(suite: CipherSuite) -> [BenchOperation] {
        let suffix = suite == .signalV3 ? "" : "_hush1"
        let preKeyKind: CiphertextMessage.Kind = suite == .signalV3 ? .preKeySignal : .hushPreKey
        return [
            BenchOperation("pqxdh_initiator" + suffix) { n in
                let bob = BenchDevice("bob", seed: 2)
                let alice = BenchDevice("alice", seed: 1)
                let kyber = try KyberPreKeyRecord.generate(id: 1, kind: .oneTime, signedBy: bob.identity)
                var bundles: [PostQuantumPreKeyBundle] = []
                for i in 0..<n {
                    let otk = try PreKeyRecord.generate(id: UInt32(i + 1))
                    bundles.append(PostQuantumPreKeyBundle(bundle: bob.bundle(oneTimePreKey: otk), kyberPreKey: kyber.publicKyberPreKey))
                }
                let stores = (0..<n).map { _ in alice.freshStore() }
                return {
                    for i in 0..<n {
                        try PQXDH.process(bundles[i], for: bob.address, store: stores[i], suite: suite, policy: .requirePQXDH)
                        _ = try SessionCipher.encrypt(payload100, for: bob.address, store: stores[i])
                    }
                }
            },
            BenchOperation("pqxdh_responder" + suffix) { n in
                let bob = BenchDevice("bob", seed: 2)
                let alice = BenchDevice("alice", seed: 1)
                var messages: [[UInt8]] = []
                var bobStores: [(InMemorySignalProtocolStore, InMemoryKyberPreKeyStore)] = []
                for i in 0..<n {
                    let otk = try PreKeyRecord.generate(id: UInt32(i + 1))
                    let kyber = try KyberPreKeyRecord.generate(id: UInt32(i + 1), kind: .oneTime, signedBy: bob.identity)
                    let store = bob.freshStore()
                    store.storePreKey(otk)
                    let kyberStore = InMemoryKyberPreKeyStore()
                    try kyberStore.storeKyberPreKey(kyber)
                    bobStores.append((store, kyberStore))
                    let aliceStore = alice.freshStore()
                    try PQXDH.process(PostQuantumPreKeyBundle(bundle: bob.bundle(oneTimePreKey: otk), kyberPreKey: kyber.publicKyberPreKey),
                                      for: bob.address, store: aliceStore, suite: suite)
                    messages.append(try SessionCipher.encrypt(payload100, for: bob.address, store: aliceStore).serialized)
                }
                return {
                    for i in 0..<n {
                        _ = try PQXDH.decrypt(try PQXDH.message(kind: preKeyKind, serialized: messages[i]), from: alice.address,
                                              store: bobStores[i].0, kyberStore: bobStores[i].1, policy: .requirePQXDH)
                    }
                }
            },
        ]
    }

    /// The bytes PQXDH adds to the first message of each suite (one-time prekeys of both kinds).
    public static func addedBytes(suite: CipherSuite) throws -> (x3dh: Int, pqxdh: Int) {
        let bob = BenchDevice("bob", seed: 2)
        let alice = BenchDevice("alice", seed: 1)
        let otk = try PreKeyRecord.generate(id: 1)
        let kyber = try KyberPreKeyRecord.generate(id: 1, kind: .oneTime, signedBy: bob.identity)
        let x = alice.freshStore(), p = alice.freshStore()
        try SessionBuilder.process(bob.bundle(oneTimePreKey: otk), for: bob.address, store: x, suite: suite)
        try PQXDH.process(PostQuantumPreKeyBundle(bundle: bob.bundle(oneTimePreKey: otk), kyberPreKey: kyber.publicKyberPreKey),
                          for: bob.address, store: p, suite: suite)
        return (try SessionCipher.encrypt(payload100, for: bob.address, store: x).serialized.count,
                try SessionCipher.encrypt(payload100, for: bob.address, store: p).serialized.count)
    }
}
