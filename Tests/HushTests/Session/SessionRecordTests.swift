import Hush
import Testing

@Suite struct SessionRecordTests {
    @Test func roundTripKeepsTheSessionWorking() throws {
        let (alice, bob) = try establishedPair(seed: 401)
        // Leave skipped keys and a second receiving chain in Bob's record, and archive a state.
        let held = try (0..<5).map { try alice.encrypt("held \($0)", to: bob) }
        _ = try bob.decrypt(try alice.encrypt("skip ahead", to: bob), from: alice)
        let record = try #require(bob.store.loadSession(for: alice.address))
        let bytes = record.serialized()
        let restored = try SessionRecord(serialized: bytes)
        #expect(restored.serialized() == bytes)
        bob.store.storeSession(restored, for: alice.address)
        for (i, m) in held.enumerated() { #expect(try bob.decrypt(m, from: alice) == "held \(i)") }
        #expect(try alice.decrypt(try bob.encrypt("after restore", to: alice), from: bob) == "after restore")

        try alice.startSession(with: bob, oneTimePreKeyID: 101)
        let archived = try #require(alice.store.loadSession(for: bob.address))
        #expect(archived.archivedStateCount == 1)
        #expect(archived.hasUnacknowledgedPreKeyMessage)
        let again = try SessionRecord(serialized: archived.serialized())
        #expect(again.archivedStateCount == 1)
        #expect(again.hasUnacknowledgedPreKeyMessage)
        #expect(again.serialized() == archived.serialized())
    }

    @Test func fullSkippedKeyStoreRoundTrips() throws {
        let (alice, bob) = try establishedPair(seed: 402)
        var last: CiphertextMessage?
        for _ in 0...2000 { last = try alice.encrypt("x", to: bob) }
        _ = try bob.decrypt(last!, from: alice)
        let record = try #require(bob.store.loadSession(for: alice.address))
        let bytes = record.serialized()
        #expect(bytes.count > 2000 * 80)
        #expect(try SessionRecord(serialized: bytes).serialized() == bytes)
    }

    /// A chain's skipped keys live in one buffer (SkippedMessageKeys): removing from the middle,
    /// sliding the 2,000-key window and a serialized round trip keep exactly the right keys.
    @Test(arguments: CipherSuite.allCases)
    func skippedKeyWindowSlidesAndSurvivesRoundTrips(suite: CipherSuite) throws {
        let (alice, bob) = try establishedPair(seed: 405, suite: suite)
        var messages: [CiphertextMessage] = []
        for i in 0..<2011 { messages.append(try alice.encrypt("m\(i)", to: bob)) }
        #expect(try bob.decrypt(messages[2000], from: alice) == "m2000")  // keys 0–1999 stored
        #expect(try bob.decrypt(messages[1000], from: alice) == "m1000")  // one from the middle
        // Restore from bytes, then skip 9 more (2001–2009): 1999 + 9 > 2000 drops the 8 oldest.
        let bytes = try #require(bob.store.loadSession(for: alice.address)).serialized()
        let restored = try SessionRecord(serialized: bytes)
        #expect(restored.serialized() == bytes)
        bob.store.storeSession(restored, for: alice.address)
        #expect(try bob.decrypt(messages[2010], from: alice) == "m2010")
        for i in 0..<8 {
            #expect(throws: SignalProtocolError.duplicateMessage(counter: UInt32(i))) { try bob.decrypt(messages[i], from: alice) }
        }
        #expect(throws: SignalProtocolError.duplicateMessage(counter: 1000)) { try bob.decrypt(messages[1000], from: alice) }
        let again = try SessionRecord(serialized: try #require(bob.store.loadSession(for: alice.address)).serialized())
        bob.store.storeSession(again, for: alice.address)
        for i in [8, 9, 999, 1001, 1999, 2001, 2009] { #expect(try bob.decrypt(messages[i], from: alice) == "m\(i)") }
        #expect(throws: SignalProtocolError.duplicateMessage(counter: 2009)) { try bob.decrypt(messages[2009], from: alice) }
    }

    @Test func corruptRecordsGiveTypedErrors() throws {
        let (alice, bob) = try establishedPair(seed: 403)
        _ = alice
        let bytes = try #require(bob.store.loadSession(for: alice.address)).serialized().bytes
        #expect(throws: SessionRecordError.unsupportedFormat(version: nil)) { try SessionRecord(serialized: [UInt8]()) }
        #expect(throws: SessionRecordError.unsupportedFormat(version: nil)) { try SessionRecord(serialized: Array("XYZ\u{1}".utf8)) }
        var future = bytes
        future[3] = 3
        #expect(throws: SessionRecordError.unsupportedFormat(version: 3)) { try SessionRecord(serialized: future) }
        #expect(throws: SessionRecordError.trailingBytes(1)) { try SessionRecord(serialized: bytes + [0]) }
        for cut in 4..<bytes.count {
            #expect(throws: SessionRecordError.self) { try SessionRecord(serialized: Array(bytes.prefix(cut))) }
        }
        var badVersion = bytes
        badVersion[5] = 2
        #expect(throws: SessionRecordError.invalidValue(field: "session version")) { try SessionRecord(serialized: badVersion) }
        // Any single-byte change parses to a record or fails with a typed error; never traps.
        for i in bytes.indices {
            var m = bytes
            m[i] ^= 0xFF
            _ = try? SessionRecord(serialized: m)
        }
    }

    @Test func recordsDoNotLeakSecretsInDescriptions() throws {
        let (alice, bob) = try establishedPair(seed: 404)
        let record = try #require(alice.store.loadSession(for: bob.address))
        var dumped = ""
        dump(record, to: &dumped)
        let text = "\(record) \(String(reflecting: record)) \(dumped) \(alice.identity) \(bob.signedPreKey) \(bob.preKeys[0])"
        let secrets = [alice.identity.privateKey.rawRepresentation, bob.signedPreKey.keyPair.rawRepresentation,
                       bob.preKeys[0].keyPair.rawRepresentation].map { Hex.encode($0.bytes) }
        for secret in secrets { #expect(!text.contains(secret)) }
        #expect(text.contains(Hex.encode(bob.identity.identityKey.publicKey.rawRepresentation)))
    }
}
