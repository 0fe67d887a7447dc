import Hush
import Testing

@Suite struct SessionTests {
    @Test(arguments: CipherSuite.allCases)
    func conversationWithOneTimePreKey(suite: CipherSuite) throws {
        let alice = Device("alice", seed: 1)
        let bob = Device("bob", seed: 2)
        try alice.startSession(with: bob, suite: suite)
        // Until Bob answers, every message from Alice is a prekey message.
        let first = try alice.encrypt("one", to: bob)
        let second = try alice.encrypt("two", to: bob)
        let (preKeyKind, kind): (CiphertextMessage.Kind, CiphertextMessage.Kind) = suite == .signalV3 ? (.preKeySignal, .signal) : (.hushPreKey, .hush)
        #expect(first.kind == preKeyKind && second.kind == preKeyKind)
        #expect(bob.store.preKeyIDs.contains(100))
        #expect(try bob.decrypt(first, from: alice) == "one")
        #expect(!bob.store.preKeyIDs.contains(100), "the one-time prekey is deleted once used")
        #expect(try bob.decrypt(second, from: alice) == "two")
        let reply = try bob.encrypt("three", to: alice)
        #expect(reply.kind == kind)
        #expect(try alice.decrypt(reply, from: bob) == "three")
        #expect(try alice.encrypt("four", to: bob).kind == kind, "an answer acknowledges the prekey message")
        #expect(bob.store.identity(for: alice.address) == alice.identity.identityKey)
        #expect(alice.store.identity(for: bob.address) == bob.identity.identityKey)
    }

    @Test(arguments: CipherSuite.allCases)
    func conversationWithoutOneTimePreKey(suite: CipherSuite) throws {
        let alice = Device("alice", seed: 3)
        let bob = Device("bob", seed: 4)
        try alice.startSession(with: bob, oneTimePreKeyID: nil, suite: suite)
        let first = try alice.encrypt("hi", to: bob)
        switch first {
        case .preKeySignal(let m): #expect(m.preKeyID == nil && suite == .signalV3)
        case .hushPreKey(let m): #expect(m.preKeyID == nil && suite == .hush1)
        default: Issue.record("expected a prekey message")
        }
        #expect(try bob.decrypt(first, from: alice) == "hi")
        #expect(bob.store.preKeyIDs.count == 10, "no one-time prekey consumed")
        #expect(try alice.decrypt(try bob.encrypt("yo", to: alice), from: bob) == "yo")
    }

    @Test(arguments: CipherSuite.allCases)
    func pingPongManyRatchetSteps(suite: CipherSuite) throws {
        let (alice, bob) = try establishedPair(seed: 5, suite: suite)
        for i in 0..<50 {
            #expect(try bob.decrypt(try alice.encrypt("a\(i)", to: bob), from: alice) == "a\(i)")
            #expect(try alice.decrypt(try bob.encrypt("b\(i)", to: alice), from: bob) == "b\(i)")
        }
    }

    @Test(arguments: CipherSuite.allCases)
    func sameSeedsSameBytes(suite: CipherSuite) throws {
        func transcript() throws -> [[UInt8]] {
            let (alice, bob) = try establishedPair(seed: 9, suite: suite)
            var out: [[UInt8]] = []
            for i in 0..<5 {
                let a = try alice.encrypt("m\(i)", to: bob)
                out.append(a.serialized)
                _ = try bob.decrypt(a, from: alice)
                let b = try bob.encrypt("r\(i)", to: alice)
                out.append(b.serialized)
                _ = try alice.decrypt(b, from: bob)
            }
            return out
        }
        #expect(try transcript() == transcript())
    }

    @Test(arguments: CipherSuite.allCases)
    func outOfOrderAndDuplicates(suite: CipherSuite) throws {
        let (alice, bob) = try establishedPair(seed: 6, suite: suite)
        let messages = try (0..<10).map { try alice.encrypt("m\($0)", to: bob) }
        for i in [3, 0, 9, 5, 1, 2, 8, 4, 7, 6] {
            #expect(try bob.decrypt(messages[i], from: alice) == "m\(i)")
        }
        let before = bob.store.snapshot()
        for i in [0, 9, 4] {
            #expect(throws: SignalProtocolError.duplicateMessage(counter: UInt32(i))) { try bob.decrypt(messages[i], from: alice) }
        }
        #expect(bob.store.snapshot() == before)
        // Messages from an older chain still decrypt after a ratchet step.
        let late = try alice.encrypt("late", to: bob)
        #expect(try alice.decrypt(try bob.encrypt("ratchet", to: alice), from: bob) == "ratchet")
        let next = try alice.encrypt("new chain", to: bob)
        #expect(try bob.decrypt(next, from: alice) == "new chain")
        #expect(try bob.decrypt(late, from: alice) == "late")
    }

    @Test(arguments: CipherSuite.allCases)
    func counterJumpLimit(suite: CipherSuite) throws {
        let (alice, bob) = try establishedPair(seed: 7, suite: suite)
        // Bob's receiving chain for Alice's current ratchet key is at index 0 after the handshake
        // ratchet: Alice sends 2002 messages; #2000 is exactly 2000 ahead, #2001 is too far.
        var messages: [CiphertextMessage] = []
        for i in 0..<2002 { messages.append(try alice.encrypt("m\(i)", to: bob)) }
        let before = bob.store.snapshot()
        #expect(throws: SignalProtocolError.tooFarInFuture(counter: 2001, chainIndex: 0, limit: 2000)) {
            try bob.decrypt(messages[2001], from: alice)
        }
        #expect(bob.store.snapshot() == before)
        #expect(try bob.decrypt(messages[2000], from: alice) == "m2000")
        // 2000 skipped keys were stored: every earlier message still decrypts, once.
        for i in [0, 1, 999, 1999] { #expect(try bob.decrypt(messages[i], from: alice) == "m\(i)") }
        #expect(try bob.decrypt(messages[2001], from: alice) == "m2001")
    }

    @Test(arguments: CipherSuite.allCases)
    func receiverChainsAreBoundedToFive(suite: CipherSuite) throws {
        let (alice, bob) = try establishedPair(seed: 8, suite: suite)
        // Two messages on Alice's current chain: the second is held back.
        _ = try bob.decrypt(try alice.encrypt("a", to: bob), from: alice)
        let held = try alice.encrypt("held", to: bob)
        var heldAfter4: CiphertextMessage?
        for round in 0..<6 {
            _ = try alice.decrypt(try bob.encrypt("b\(round)", to: alice), from: bob)
            let m = try alice.encrypt("a\(round)", to: bob)
            _ = try bob.decrypt(m, from: alice)
            if round == 2 { heldAfter4 = try alice.encrypt("held2", to: bob) }
        }
        // `held`'s chain is now more than five chains back: it was evicted with its keys.
        #expect(throws: SignalProtocolError.self) { try bob.decrypt(held, from: alice) }
        // A chain three ratchet steps back is still kept.
        #expect(try bob.decrypt(heldAfter4!, from: alice) == "held2")
    }

    @Test(arguments: CipherSuite.allCases)
    func simultaneousInitiationConverges(suite: CipherSuite) throws {
        let alice = Device("alice", seed: 21)
        let bob = Device("bob", seed: 22)
        try alice.startSession(with: bob, suite: suite)
        try bob.startSession(with: alice, suite: suite)
        let a1 = try alice.encrypt("a1", to: bob)
        let b1 = try bob.encrypt("b1", to: alice)
        let a2 = try alice.encrypt("a2", to: bob)
        #expect(try alice.decrypt(b1, from: bob) == "b1")
        #expect(try bob.decrypt(a1, from: alice) == "a1")
        for i in 0..<5 {
            #expect(try bob.decrypt(try alice.encrypt("x\(i)", to: bob), from: alice) == "x\(i)")
            #expect(try alice.decrypt(try bob.encrypt("y\(i)", to: alice), from: bob) == "y\(i)")
        }
        #expect(try bob.decrypt(a2, from: alice) == "a2", "a late message of the other session still decrypts")
        for i in 0..<3 {
            #expect(try alice.decrypt(try bob.encrypt("p\(i)", to: alice), from: bob) == "p\(i)")
            #expect(try bob.decrypt(try alice.encrypt("q\(i)", to: bob), from: alice) == "q\(i)")
        }
    }

    @Test func archiveKeepsFortyStates() throws {
        let alice = Device("alice", seed: 31)
        let bob = Device("bob", seed: 32, preKeyIDs: Array(1...60))
        for id in 1...45 { try alice.startSession(with: bob, oneTimePreKeyID: UInt32(id)) }
        let record = try #require(alice.store.loadSession(for: bob.address))
        #expect(record.archivedStateCount == SignalConstants.maximumArchivedStates)
        // The newest session is current and works.
        #expect(try bob.decrypt(try alice.encrypt("latest", to: bob), from: alice) == "latest")
    }

    @Test(arguments: CipherSuite.allCases)
    func archivedStateDecryptsAndIsPromoted(suite: CipherSuite) throws {
        let (alice, bob) = try establishedPair(seed: 33, suite: suite)
        let inFlight = try bob.encrypt("old session", to: alice)
        // Alice starts over (for example after losing Bob's answer); her old state is archived.
        try alice.startSession(with: bob, oneTimePreKeyID: 101, suite: suite)
        #expect(try alice.decrypt(inFlight, from: bob) == "old session")
        // The archived state that decrypted became current again.
        #expect(try alice.encrypt("on old", to: bob).kind == (suite == .signalV3 ? .signal : .hush))
    }

    @Test func noSession() throws {
        let alice = Device("alice", seed: 41)
        let bob = Device("bob", seed: 42)
        #expect(throws: SignalProtocolError.noSession(bob.address)) { try alice.encrypt("x", to: bob) }
        try bob.startSession(with: alice)
        _ = try bob.encrypt("x", to: alice)
        let (a2, b2) = try establishedPair(seed: 43)
        let whisper = try a2.encrypt("x", to: b2)
        let carol = Device("carol", seed: 44)
        let before = carol.store.snapshot()
        #expect(throws: SignalProtocolError.noSession(a2.address)) { try carol.decrypt(whisper, from: a2) }
        #expect(carol.store.snapshot() == before)
    }

    @Test func unknownPreKeys() throws {
        let alice = Device("alice", seed: 51)
        let bob = Device("bob", seed: 52)
        try alice.startSession(with: bob)
        _ = try bob.decrypt(try alice.encrypt("x", to: bob), from: alice)
        // Someone else tries the same (now deleted) one-time prekey.
        let carol = Device("carol", seed: 53)
        try carol.startSession(with: bob)
        let m = try carol.encrypt("x", to: bob)
        let before = bob.store.snapshot()
        #expect(throws: SignalProtocolError.unknownPreKey(.oneTime(100))) { try bob.decrypt(m, from: carol) }
        #expect(bob.store.snapshot() == before)
        // A signed prekey that was rotated away.
        let dave = Device("dave", seed: 54)
        try dave.startSession(with: bob, oneTimePreKeyID: 101)
        bob.store.removeSignedPreKey(id: 1)
        #expect(throws: SignalProtocolError.unknownPreKey(.signed(1))) { try bob.decrypt(try dave.encrypt("x", to: bob), from: dave) }
    }

    @Test func bundleVerification() throws {
        let alice = Device("alice", seed: 61)
        let bob = Device("bob", seed: 62)
        let good = bob.bundle()
        var signature = good.signedPreKey!.signature
        signature[5] ^= 1
        let forged = PreKeyBundle(
            registrationID: good.registrationID, deviceID: 1, identityKey: good.identityKey,
            signedPreKey: .init(id: 1, publicKey: good.signedPreKey!.publicKey, signature: signature), oneTimePreKey: good.oneTimePreKey)
        #expect(throws: SignalProtocolError.invalidBundle(.badSignedPreKeySignature)) {
            try SessionBuilder.process(forged, for: bob.address, store: alice.store, random: alice.random)
        }
        let missing = PreKeyBundle(registrationID: good.registrationID, deviceID: 1, identityKey: good.identityKey,
                                   signedPreKey: nil, oneTimePreKey: good.oneTimePreKey)
        #expect(throws: SignalProtocolError.invalidBundle(.missingSignedPreKey)) {
            try SessionBuilder.process(missing, for: bob.address, store: alice.store, random: alice.random)
        }
        // Signed by another identity.
        let mallory = Device("bob", seed: 63)
        let swapped = PreKeyBundle(registrationID: good.registrationID, deviceID: 1, identityKey: mallory.identity.identityKey,
                                   signedPreKey: good.signedPreKey, oneTimePreKey: nil)
        #expect(throws: SignalProtocolError.invalidBundle(.badSignedPreKeySignature)) {
            try SessionBuilder.process(swapped, for: bob.address, store: alice.store, random: alice.random)
        }
        #expect(alice.store.loadSession(for: bob.address) == nil)
        #expect(alice.store.identity(for: bob.address) == nil)
    }

    @Test(arguments: CipherSuite.allCases)
    func identityChangeIsATypedErrorTheAppResolves(suite: CipherSuite) throws {
        let (alice, bob) = try establishedPair(seed: 71, suite: suite)
        // Bob reinstalls: same address, new identity.
        let newBob = Device("bob", seed: 72)
        let before = alice.store.snapshot()
        #expect(throws: SignalProtocolError.untrustedIdentity(bob.address, identity: newBob.identity.identityKey)) {
            try alice.startSession(with: newBob, suite: suite)
        }
        // His new install also writes first: rejected too, nothing changes.
        try newBob.startSession(with: alice, oneTimePreKeyID: 105, suite: suite)
        let m = try newBob.encrypt("it's me", to: alice)
        #expect(throws: SignalProtocolError.untrustedIdentity(bob.address, identity: newBob.identity.identityKey)) {
            try alice.decrypt(m, from: newBob)
        }
        #expect(alice.store.snapshot() == before)
        // The app shows the safety-number change, the user accepts, the app trusts the new key.
        #expect(alice.store.saveIdentity(newBob.identity.identityKey, for: bob.address))
        #expect(try alice.decrypt(m, from: newBob) == "it's me")
        #expect(try newBob.decrypt(try alice.encrypt("welcome back", to: newBob), from: alice) == "welcome back")
        // Old Bob's session was archived; his messages are no longer trusted for sending.
        _ = bob
    }

    @Test(arguments: CipherSuite.allCases)
    func lowOrderRatchetKeyIsRejected(suite: CipherSuite) throws {
        let (alice, bob) = try establishedPair(seed: 81, suite: suite)
        let genuine = try alice.encrypt("x", to: bob)
        // Same message with the ratchet key (after `33 0a 21 05` in v3, after `11` in hush-1)
        // replaced by a low-order point (u = 0).
        var bytes = genuine.serialized
        let keyStart = suite == .signalV3 ? 4 : 1
        for i in keyStart..<(keyStart + 32) { bytes[i] = 0 }
        let before = bob.store.snapshot()
        #expect(throws: SignalProtocolError.invalidRatchetKey) { try bob.decrypt(bytes: bytes, kind: genuine.kind, from: alice) }
        #expect(bob.store.snapshot() == before)
        #expect(try bob.decrypt(genuine, from: alice) == "x")
    }

    @Test func concurrentUseAcrossAddresses() async throws {
        let bob = Device("bob", seed: 90, preKeyIDs: Array(1...16))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 1...16 {
                group.addTask {
                    let peer = Device("peer\(i)", seed: 900 + UInt64(i))
                    try peer.startSession(with: bob, oneTimePreKeyID: UInt32(i))
                    for j in 0..<5 {
                        let m = try peer.encrypt("\(i)-\(j)", to: bob)
                        #expect(try bob.decrypt(m, from: peer) == "\(i)-\(j)")
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(bob.store.preKeyIDs.isEmpty)
    }
}

/// With `InMemorySignalProtocolStore`, an established session's record is updated under the
/// store's lock (`updateSession`), so concurrent encryptions and decryptions for the same
/// address never lose an update.
@Suite struct SameAddressConcurrencyTests {
    @Test func concurrentEncryptionsAndDecryptionsOnOneSession() async throws {
        let (alice, bob) = try establishedPair(seed: 95)
        let messages = try await withThrowingTaskGroup(of: CiphertextMessage.self) { group in
            for i in 0..<200 { group.addTask { try alice.encrypt("m\(i)", to: bob) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Every message got its own counter.
        let counters = Set(messages.compactMap { m -> UInt32? in if case .signal(let s) = m { s.counter } else { nil } })
        #expect(counters.count == 200)
        let texts = try await withThrowingTaskGroup(of: String.self) { group in
            for m in messages { group.addTask { try bob.decrypt(m, from: alice) } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(texts == Set((0..<200).map { "m\($0)" }))
    }
}
