import Hush
import Testing

@Suite struct GroupTests {
    /// Three members; each sends its distribution message to the others.
    func group(seed: UInt64) throws -> [Device] {
        let members = [Device("alice", seed: seed), Device("bob", seed: seed + 1), Device("carol", seed: seed + 2)]
        for sender in members {
            let distribution = try GroupSessionBuilder.distributionMessage(for: name(sender), store: sender.store, random: sender.random)
            for member in members where member !== sender {
                // In an app this travels inside the pairwise session; parsing proves the bytes suffice.
                let received = try SenderKeyDistributionMessage(serialized: distribution.serialized)
                try GroupSessionBuilder.process(received, from: name(sender), store: member.store)
            }
        }
        return members
    }

    func name(_ sender: Device) -> SenderKeyName { SenderKeyName(groupID: "family", sender: sender.address) }

    func send(_ text: String, from sender: Device) throws -> [UInt8] {
        try GroupCipher.encrypt(Array(text.utf8), for: name(sender), store: sender.store, random: sender.random).serialized
    }

    func read(_ bytes: [UInt8], by member: Device, from sender: Device) throws(SignalProtocolError) -> String {
        String(decoding: try GroupCipher.decrypt(bytes, from: name(sender), store: member.store), as: UTF8.self)
    }

    @Test func everyoneReadsEveryoneInAnyOrder() throws {
        let members = try group(seed: 500)
        var sent: [(Device, [UInt8], String)] = []
        for round in 0..<5 {
            for sender in members { sent.append((sender, try send("\(sender.address.name) \(round)", from: sender), "\(sender.address.name) \(round)")) }
        }
        for (sender, bytes, text) in sent.reversed() {
            for member in members where member !== sender {
                #expect(try read(bytes, by: member, from: sender) == text)
            }
        }
        // Each message decrypts once per member.
        let (sender, bytes, _) = sent[3]
        let member = members.first { $0 !== sender }!
        #expect(throws: SignalProtocolError.duplicateMessage(counter: 1)) { try read(bytes, by: member, from: sender) }
    }

    @Test func lateJoinerReadsOnlyFromWhenItJoined() throws {
        let members = try group(seed: 510)
        let alice = members[0]
        let early = try send("before dave", from: alice)
        let dave = Device("dave", seed: 513)
        // Alice re-exports her sender key at its current iteration for the newcomer.
        let distribution = try GroupSessionBuilder.distributionMessage(for: name(alice), store: alice.store, random: alice.random)
        #expect(distribution.iteration == 1)
        try GroupSessionBuilder.process(distribution, from: name(alice), store: dave.store)
        let later = try send("after dave", from: alice)
        #expect(try read(later, by: dave, from: alice) == "after dave")
        #expect(throws: SignalProtocolError.duplicateMessage(counter: 0)) { try read(early, by: dave, from: alice) }
        #expect(try read(early, by: members[1], from: alice) == "before dave")
    }

    @Test func failuresChangeNothing() throws {
        let members = try group(seed: 520)
        let (alice, bob) = (members[0], members[1])
        let genuine = try send("genuine", from: alice)
        let before = bob.store.snapshot()
        for index in genuine.indices {
            var tampered = genuine
            tampered[index] ^= 0x01
            #expect(throws: SignalProtocolError.self) { try read(tampered, by: bob, from: alice) }
        }
        var forged = genuine
        forged[forged.count - 1] ^= 0x01
        #expect(throws: SignalProtocolError.badSignature) { try read(forged, by: bob, from: alice) }
        #expect(throws: SignalProtocolError.malformed(.tooShort(65))) { try read(Array(genuine.prefix(65)), by: bob, from: alice) }
        let stranger = Device("eve", seed: 529)
        #expect(throws: SignalProtocolError.noSenderKey(name(stranger), keyID: nil)) {
            _ = try GroupCipher.encrypt([1], for: name(stranger), store: stranger.store)
        }
        #expect(throws: SignalProtocolError.noSenderKey(name(alice), keyID: try SenderKeyMessage(serialized: genuine).keyID)) {
            try read(genuine, by: stranger, from: alice)
        }
        #expect(bob.store.snapshot() == before)
        #expect(try read(genuine, by: bob, from: alice) == "genuine")
    }

    @Test func iterationJumpLimit() throws {
        let members = try group(seed: 530)
        let (alice, bob) = (members[0], members[1])
        var messages: [[UInt8]] = []
        for i in 0..<2002 { messages.append(try send("m\(i)", from: alice)) }
        #expect(throws: SignalProtocolError.tooFarInFuture(counter: 2001, chainIndex: 0, limit: 2000)) {
            try read(messages[2001], by: bob, from: alice)
        }
        #expect(try read(messages[2000], by: bob, from: alice) == "m2000")
        #expect(try read(messages[0], by: bob, from: alice) == "m0")
        #expect(try read(messages[2001], by: bob, from: alice) == "m2001")
    }

    @Test func recordsKeepFiveStatesAndRoundTrip() throws {
        let alice = Device("alice", seed: 540)
        let bob = Device("bob", seed: 541)
        var keyIDs: [UInt32] = []
        for round in 0..<7 {
            // Alice rotates: a fresh store per rotation stands for "create a new sender key".
            let fresh = InMemorySignalProtocolStore(identity: alice.identity, registrationID: 1)
            let d = try GroupSessionBuilder.distributionMessage(for: name(alice), store: fresh, random: SeededRandom(seed: 9000 + UInt64(round)))
            keyIDs.append(d.keyID)
            try GroupSessionBuilder.process(d, from: name(alice), store: bob.store)
        }
        let record = try #require(bob.store.loadSenderKey(for: name(alice)))
        #expect(record.stateCount == SignalConstants.maximumSenderKeyStates)
        #expect(record.currentKeyID == keyIDs.last)
        let bytes = record.serialized()
        #expect(try SenderKeyRecord(serialized: bytes).serialized() == bytes)
        for cut in 0..<bytes.count {
            #expect(throws: SessionRecordError.self) { try SenderKeyRecord(serialized: Array(bytes.bytes.prefix(cut))) }
        }
        _ = try GroupSessionBuilder.distributionMessage(for: name(alice), store: alice.store, random: alice.random)
        let sender = try #require(alice.store.loadSenderKey(for: name(alice)))
        let senderBytes = sender.serialized()
        #expect(try SenderKeyRecord(serialized: senderBytes).serialized() == senderBytes)
        #expect(!"\(sender)".contains(Hex.encode(senderBytes.bytes.suffix(40))))
    }

    @Test func distributionMessageDecoderIsTotal() {
        let random = SeededRandom(seed: 550)
        for _ in 0..<2000 {
            let n = Int(try! random.secureBytes(count: 1).bytes[0])
            let bytes = [0x33] + (try! random.secureBytes(count: n).bytes)
            expectParse(bytes, "SenderKeyDistributionMessage",
                        { (b: [UInt8]) throws(SignalProtocolError) in try SenderKeyDistributionMessage(serialized: b) }, encoded: { $0.serialized.bytes })
            expectParse(bytes, "SenderKeyMessage", { (b: [UInt8]) throws(SignalProtocolError) in try SenderKeyMessage(serialized: b) }, encoded: \.serialized)
            #expect(throws: SessionRecordError.unsupportedFormat(version: nil)) { try SenderKeyRecord(serialized: bytes) }
        }
    }
}
