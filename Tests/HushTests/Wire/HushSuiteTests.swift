import Hush
import Testing

/// The hush-1 suite: wire format, authentication of every byte, suite separation.
@Suite struct HushSuiteTests {
    @Test func messageLayout() throws {
        let (alice, bob) = try establishedPair(seed: 601, suite: .hush1)
        let message = try alice.encrypt("hello", to: bob)
        guard case .hush(let m) = message else { Issue.record("expected a hush-1 message"); return }
        let bytes = m.serialized
        // 0x11 | ratchet key (32) | counter | previous counter | ciphertext (5) | tag (16)
        #expect(bytes[0] == 0x11)
        #expect(bytes.count == 1 + 32 + 1 + 1 + 5 + 16)
        #expect(Array(bytes[1..<33]) == m.ratchetKey.rawRepresentation)
        #expect(bytes[33] == UInt8(m.counter) && bytes[34] == UInt8(m.previousCounter))
        #expect(try HushMessage(serialized: bytes) == m)
    }

    @Test func preKeyMessageLayout() throws {
        let alice = Device("alice", seed: 602)
        let bob = Device("bob", seed: 603)
        try alice.startSession(with: bob, suite: .hush1)
        guard case .hushPreKey(let m) = try alice.encrypt("hi", to: bob) else { Issue.record("expected a prekey message"); return }
        let bytes = m.serialized
        // 0x12 | flags 1 | otk id 100 | spk id 1 | registration id (2 bytes) | base key | identity key | message
        #expect(Array(bytes[0..<4]) == [0x12, 0x01, 100, 1])
        let regID = alice.store.localRegistrationID()
        #expect(m.registrationID == regID && m.preKeyID == 100 && m.signedPreKeyID == 1)
        let afterReg = 4 + (regID < 128 ? 1 : 2)
        #expect(Array(bytes[afterReg..<(afterReg + 32)]) == m.baseKey.rawRepresentation)
        #expect(Array(bytes[(afterReg + 32)..<(afterReg + 64)]) == alice.identity.identityKey.publicKey.rawRepresentation)
        #expect(bytes[afterReg + 64] == 0x11)
        #expect(try HushPreKeyMessage(serialized: bytes) == m)
    }

    /// Unlike Signal v3, hush-1 leaves no byte unauthenticated: every change of every byte of
    /// a prekey message or a message is rejected and changes nothing.
    @Test(arguments: [CiphertextMessage.Kind.hush, .hushPreKey])
    func everyByteIsAuthenticated(kind: CiphertextMessage.Kind) throws {
        let alice = Device("alice", seed: 610)
        let bob = Device("bob", seed: 611)
        try alice.startSession(with: bob, suite: .hush1)
        if kind == .hush {
            _ = try bob.decrypt(try alice.encrypt("first", to: bob), from: alice)
            _ = try alice.decrypt(try bob.encrypt("ack", to: alice), from: bob)
        }
        let genuine = try alice.encrypt("the genuine message", to: bob)
        #expect(genuine.kind == kind)
        let bytes = genuine.serialized
        let before = bob.store.snapshot()
        for index in bytes.indices {
            for delta: UInt8 in [0x01, 0x10, 0x80, 0xFF] {
                var tampered = bytes
                tampered[index] ^= delta
                #expect(throws: SignalProtocolError.self, "byte \(index) ^ \(delta)") { try bob.decrypt(bytes: tampered, kind: kind, from: alice) }
                #expect(bob.store.snapshot() == before)
            }
        }
        for cut in 1..<bytes.count {
            #expect(throws: SignalProtocolError.self) { try bob.decrypt(bytes: Array(bytes.prefix(cut)), kind: kind, from: alice) }
        }
        #expect(throws: SignalProtocolError.self) { try bob.decrypt(bytes: bytes + [0], kind: kind, from: alice) }
        #expect(bob.store.snapshot() == before)
        #expect(String(decoding: try bob.decrypt(bytes: bytes, kind: kind, from: alice), as: UTF8.self) == "the genuine message")
    }

    /// A session never mixes suites; messages of the other suite are typed errors.
    @Test func suitesDoNotMix() throws {
        let (alice, bob) = try establishedPair(seed: 620, suite: .hush1)
        let (carol, dave) = try establishedPair(seed: 621, suite: .signalV3)
        let hush = try alice.encrypt("hush", to: bob)
        let v3 = try carol.encrypt("v3", to: dave)
        // Parsing one suite's bytes as the other's.
        #expect(throws: SignalProtocolError.suiteMismatch(expected: .hush1, received: .signalV3)) { try HushMessage(serialized: v3.serialized) }
        #expect(throws: SignalProtocolError.self) { try SignalMessage(serialized: hush.serialized) }
        // A v3 message delivered to a hush-1 session (same addresses) is refused, and nothing changes.
        let (alice2, bob2) = try establishedPair(seed: 622, suite: .signalV3)
        let wrongSuite = try alice2.encrypt("v3 into hush", to: bob2)
        let before = bob.store.snapshot()
        #expect(throws: SignalProtocolError.suiteMismatch(expected: .hush1, received: .signalV3)) {
            try SessionCipher.decrypt(wrongSuite, from: alice.address, store: bob.store)
        }
        #expect(bob.store.snapshot() == before)
        #expect(try bob.decrypt(hush, from: alice) == "hush")
        // Unknown formats are version errors.
        var future = hush.serialized
        future[0] = 0x21
        #expect(throws: SignalProtocolError.invalidVersion(2)) { try HushMessage(serialized: future) }
        future[0] = 0x12
        #expect(throws: SignalProtocolError.malformed(.unexpectedType(0x12))) { try HushMessage(serialized: future) }
    }

    @Test func recordsRoundTripWithTheirSuite() throws {
        let (alice, bob) = try establishedPair(seed: 630, suite: .hush1)
        let held = try (0..<3).map { try alice.encrypt("held \($0)", to: bob) }
        _ = try bob.decrypt(try alice.encrypt("skip", to: bob), from: alice)
        let bytes = try #require(bob.store.loadSession(for: alice.address)).serialized()
        let restored = try SessionRecord(serialized: bytes)
        #expect(restored.serialized() == bytes)
        bob.store.storeSession(restored, for: alice.address)
        for (i, m) in held.enumerated() { #expect(try bob.decrypt(m, from: alice) == "held \(i)") }
    }

    @Test func decodersAreTotal() {
        let random = SeededRandom(seed: 640)
        for _ in 0..<3000 {
            let n = Int(try! random.secureBytes(count: 1).bytes[0])
            var bytes = try! random.secureBytes(count: n).bytes
            let first = [UInt8(0x11), 0x12, 0x33][Int(try! random.secureBytes(count: 1).bytes[0]) % 3]
            if !bytes.isEmpty { bytes[0] = first }
            expectParse(bytes, "HushMessage", { (b: [UInt8]) throws(SignalProtocolError) in try HushMessage(serialized: b) }, encoded: \.serialized)
            expectParse(bytes, "HushPreKeyMessage", { (b: [UInt8]) throws(SignalProtocolError) in try HushPreKeyMessage(serialized: b) }, encoded: \.serialized)
            // A Signal v3 byte is the other suite; a prekey byte is the wrong kind for the message parser.
            if bytes.count >= 51, bytes[0] == 0x33 {
                #expect(throws: SignalProtocolError.suiteMismatch(expected: .hush1, received: .signalV3)) { try HushMessage(serialized: bytes) }
            }
            if bytes.count >= 51, bytes[0] == 0x12 {
                #expect(throws: SignalProtocolError.malformed(.unexpectedType(0x12))) { try HushMessage(serialized: bytes) }
            }
        }
    }
}
