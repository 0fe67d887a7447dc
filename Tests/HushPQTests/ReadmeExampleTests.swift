import HushPQ
import Testing

/// The README's PQXDH example, verbatim between the setup and the check.
@Test func readmePQXDHExample() throws {
    let aliceDevice = PQDevice("alice", seed: 11), bobDevice = PQDevice("bob", seed: 12)
    let (alice, bob) = (aliceDevice.address, bobDevice.address)
    let (aliceStore, bobStore, bobKyberStore) = (aliceDevice.store, bobDevice.store, bobDevice.kyberStore)
    let bobsPQBundle = bobDevice.bundle()

    try PQXDH.process(bobsPQBundle, for: bob, store: aliceStore, policy: .requirePQXDH)    // PQXDH
    let first = try SessionCipher.encrypt(Array("Hi Bob!".utf8), for: bob, store: aliceStore)
    // on Bob's device, with his Kyber prekeys:
    let message = try PQXDH.message(kind: first.kind, serialized: first.serialized)
    let text = try PQXDH.decrypt(message, from: alice, store: bobStore, kyberStore: bobKyberStore, policy: .requirePQXDH)

    #expect(text == Array("Hi Bob!".utf8))
    #expect(bobStore.loadSession(for: alice)?.establishment == .pqxdh)
}
