@_spi(HushPQ) import HushPQ
import Testing

@Suite struct PQXDHSessionTests {
    @Test(arguments: CipherSuite.allCases) func bothRolesBothSuites(suite: CipherSuite) throws {
        let alice = PQDevice("alice", seed: 1), bob = PQDevice("bob", seed: 2)
        try PQXDH.process(bob.bundle(), for: bob.address, store: alice.store, suite: suite, random: alice.random)
        #expect(alice.store.loadSession(for: bob.address)?.establishment == .pqxdh)
        let first = try alice.send("hello", to: bob)
        #expect(first.0 == (suite == .signalV3 ? .preKeySignal : .hushPreKey))
        if suite == .signalV3 { #expect(first.1[0] == 0x44) }
        // Hush without HushPQ refuses the PQXDH forms as a newer protocol / unknown encoding.
        let refusal: SignalProtocolError = suite == .signalV3 ? .invalidVersion(4) : .malformed(.invalidEncoding)
        #expect(throws: refusal) { try CiphertextMessage(kind: first.0, serialized: first.1) }
        // …and Hush's public decrypt of a parsed PQXDH message (no Kyber store) refuses to build a state.
        let parsed = try PQXDH.message(kind: first.0, serialized: first.1)
        #expect(throws: SignalProtocolError.unknownPreKey(.kyber(200))) {
            try SessionCipher.decrypt(parsed, from: alice.address, store: bob.store)
        }
        #expect(bob.store.loadSession(for: alice.address) == nil && bob.store.loadPreKey(id: 100) != nil)
        #expect(try bob.receive(first, from: alice) == "hello")
        #expect(bob.store.loadSession(for: alice.address)?.establishment == .pqxdh)
        #expect(try bob.kyberStore.loadKyberPreKey(id: 200) == nil)
        #expect(bob.store.loadPreKey(id: 100) == nil)
        let reply = try bob.send("hi", to: alice)
        #expect(reply.0 == (suite == .signalV3 ? .signal : .hush))
        if suite == .signalV3 { #expect(reply.1[0] == 0x44) }
        #expect(try alice.receive(reply, from: bob) == "hi")
        #expect(try bob.receive(try alice.send("again", to: bob), from: alice) == "again")
        // The record keeps how it was set up.
        let record = try SessionRecord(serialized: alice.store.loadSession(for: bob.address)!.serialized())
        #expect(record.establishment == .pqxdh)
    }

    @Test func pendingKEMHeaderSurvivesSerialization() throws {
        let alice = PQDevice("alice", seed: 1), bob = PQDevice("bob", seed: 2)
        try PQXDH.process(bob.bundle(), for: bob.address, store: alice.store, random: alice.random)
        let record = alice.store.loadSession(for: bob.address)!
        alice.store.storeSession(try SessionRecord(serialized: record.serialized()), for: bob.address)
        #expect(try bob.receive(try alice.send("after reload", to: bob), from: alice) == "after reload")
    }

    @Test func x3dhStillWorksWhenAccepted() throws {
        let alice = PQDevice("alice", seed: 1), bob = PQDevice("bob", seed: 2)
        try PQXDH.process(bob.bundle(kyberID: nil), for: bob.address, store: alice.store, random: alice.random)
        #expect(alice.store.loadSession(for: bob.address)?.establishment == .x3dh)
        let first = try alice.send("classic", to: bob)
        #expect(first.1[0] == 0x33)
        #expect(try bob.receive(first, from: alice) == "classic")
        #expect(bob.store.loadSession(for: alice.address)?.establishment == .x3dh)
    }

    @Test func requirePQXDHRefusesStrippedBundlesAndX3DHMessages() throws {
        let alice = PQDevice("alice", seed: 1), bob = PQDevice("bob", seed: 2)
        #expect(throws: SignalProtocolError.invalidBundle(.missingKyberPreKey)) {
            try PQXDH.process(bob.bundle(kyberID: nil), for: bob.address, store: alice.store, policy: .requirePQXDH, random: alice.random)
        }
        #expect(alice.store.loadSession(for: bob.address) == nil)
        // Alice accepts either, the server stripped the Kyber prekey: Bob detects it.
        try PQXDH.process(bob.bundle(kyberID: nil), for: bob.address, store: alice.store, random: alice.random)
        let first = try alice.send("downgraded", to: bob)
        #expect(throws: SignalProtocolError.postQuantumRequired) { try bob.receive(first, from: alice, policy: .requirePQXDH) }
        #expect(bob.store.loadSession(for: alice.address) == nil)
        #expect(bob.store.loadPreKey(id: 100) != nil)
    }

    @Test(arguments: CipherSuite.allCases) func rejections(suite: CipherSuite) throws {
        let bob = PQDevice("bob", seed: 2)
        // Bad Kyber prekey signature.
        do {
            let alice = PQDevice("alice", seed: 1)
            let good = bob.bundle()
            let forged = PostQuantumPreKeyBundle(bundle: good.bundle, kyberPreKey: KyberPreKey(
                id: 200, publicKey: bob.kyberPreKeys[1].keyPair.publicKey, signature: good.kyberPreKey!.signature))
            #expect(throws: SignalProtocolError.invalidBundle(.badKyberPreKeySignature)) {
                try PQXDH.process(forged, for: bob.address, store: alice.store, suite: suite, random: alice.random)
            }
        }
        // Unknown Kyber prekey id: Bob no longer has it.
        do {
            let alice = PQDevice("alice", seed: 3)
            let stranger = PQDevice("bob", seed: 2)
            try PQXDH.process(stranger.bundle(kyberID: 201), for: bob.address, store: alice.store, suite: suite, random: alice.random)
            try bob.kyberStore.markKyberPreKeyUsed(id: 201)
            let first = try alice.send("x", to: bob)
            #expect(throws: SignalProtocolError.unknownPreKey(.kyber(201))) { try bob.receive(first, from: alice) }
        }
        // Wrong KEM ciphertext: implicit rejection, then the MAC / AEAD fails; nothing changes.
        do {
            let alice = PQDevice("alice", seed: 4)
            try PQXDH.process(bob.bundle(oneTimePreKeyID: 101, kyberID: 202), for: bob.address, store: alice.store, suite: suite, random: alice.random)
            let first = try alice.send("y", to: bob)
            let message = try PQXDH.message(kind: first.0, serialized: first.1)
            let ciphertext: [UInt8]
            switch message {
            case .preKeySignal(let m): ciphertext = m.kyberCiphertext!
            case .hushPreKey(let m): ciphertext = m.kyberCiphertext!
            default: Issue.record("not a prekey message"); return
            }
            var tampered = first.1
            let at = tampered.firstRange(of: ciphertext)!.lowerBound + ciphertext.count - 1
            tampered[at] ^= 1
            #expect(throws: SignalProtocolError.badMAC) { try bob.receive((first.0, tampered), from: alice) }
            #expect(try bob.kyberStore.loadKyberPreKey(id: 202) != nil)
            #expect(bob.store.loadPreKey(id: 101) != nil)
            #expect(try bob.receive(first, from: alice) == "y")
        }
    }

    @Test func oneTimeKyberPreKeyIsUsedOnceLastResortAgain() throws {
        let bob = PQDevice("bob", seed: 2)
        let a1 = PQDevice("a1", seed: 5), a2 = PQDevice("a2", seed: 6), a3 = PQDevice("a3", seed: 7), a4 = PQDevice("a4", seed: 8)
        try PQXDH.process(bob.bundle(oneTimePreKeyID: nil, kyberID: 200), for: bob.address, store: a1.store, random: a1.random)
        try PQXDH.process(bob.bundle(oneTimePreKeyID: nil, kyberID: 200), for: bob.address, store: a2.store, random: a2.random)
        #expect(try bob.receive(try a1.send("one", to: bob), from: a1) == "one")
        #expect(throws: SignalProtocolError.unknownPreKey(.kyber(200))) { try bob.receive(try a2.send("two", to: bob), from: a2) }
        try PQXDH.process(bob.bundle(oneTimePreKeyID: nil, kyberID: 300), for: bob.address, store: a3.store, random: a3.random)
        try PQXDH.process(bob.bundle(oneTimePreKeyID: nil, kyberID: 300), for: bob.address, store: a4.store, random: a4.random)
        #expect(try bob.receive(try a3.send("three", to: bob), from: a3) == "three")
        #expect(try bob.receive(try a4.send("four", to: bob), from: a4) == "four")
        #expect(try bob.kyberStore.loadKyberPreKey(id: 300) != nil)
    }
}
