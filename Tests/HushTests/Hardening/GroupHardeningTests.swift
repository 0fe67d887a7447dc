import Foundation
@testable import Hush
import Testing

/// Sender keys: atomic updates, rotation, and the end of a chain (issue 14, defects 3, 4, 7).
@Suite struct GroupHardeningTests {
    static let group = "hardening"

    struct Member {
        let device: Device
        var name: SenderKeyName { SenderKeyName(groupID: GroupHardeningTests.group, sender: device.address) }
    }

    /// Concurrent encryptions through one store never share an iteration (hence never a
    /// message key and IV). The loads wait at a barrier, so a load-then-store cipher interleaves.
    @Test func concurrentEncryptionsUseDistinctIterations() async throws {
        let alice = Member(device: Device("alice", seed: 1440))
        _ = try GroupSessionBuilder.distributionMessage(for: alice.name, store: alice.device.store, random: alice.device.random)
        let store = WrappedStore(alice.device.store)
        store.loadBarrier = Barrier(parties: 2)
        let name = alice.name
        let iterations = await withTaskGroup(of: UInt32?.self) { group in
            for i in 0..<16 {
                group.addTask {
                    (try? GroupCipher.encrypt(Array("message \(i)".utf8), for: name, store: store, random: SeededRandom(seed: UInt64(i))))?.iteration
                }
            }
            var all: [UInt32?] = []
            for await iteration in group { all.append(iteration) }
            return all
        }
        #expect(iterations.compactMap { $0 }.sorted() == Array(0..<16))
    }

    /// A message decrypted concurrently twice succeeds once; the other attempt is a duplicate.
    @Test func concurrentDecryptionsOfOneMessageSucceedOnce() async throws {
        let alice = Member(device: Device("alice", seed: 1441))
        let bob = Device("bob", seed: 1442)
        let distribution = try GroupSessionBuilder.distributionMessage(for: alice.name, store: alice.device.store, random: alice.device.random)
        try GroupSessionBuilder.process(distribution, from: alice.name, store: bob.store)
        let message = try GroupCipher.encrypt(Array("once".utf8), for: alice.name, store: alice.device.store, random: alice.device.random)
        let store = WrappedStore(bob.store)
        store.loadBarrier = Barrier(parties: 2)
        let name = alice.name
        let results = await withTaskGroup(of: Result<[UInt8], SignalProtocolError>.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    do throws(SignalProtocolError) { return .success(try GroupCipher.decrypt(message, from: name, store: store)) } catch {
                        return .failure(error)
                    }
                }
            }
            var all: [Result<[UInt8], SignalProtocolError>] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.filter { (try? $0.get()) == Array("once".utf8) }.count == 1, "\(results)")
        #expect(results.contains { if case .failure(.duplicateMessage(counter: 0)) = $0 { return true }; return false }, "\(results)")
    }

    /// Defect 4: after a rotation the removed member cannot read; late messages of the old
    /// key still decrypt for those who stay.
    @Test func rotationLocksOutARemovedMemberAndKeepsLateMessages() throws {
        let alice = Member(device: Device("alice", seed: 1443))
        let bob = Device("bob", seed: 1444)
        let carol = Device("carol", seed: 1445)
        let first = try GroupSessionBuilder.distributionMessage(for: alice.name, store: alice.device.store, random: alice.device.random)
        for member in [bob, carol] { try GroupSessionBuilder.process(first, from: alice.name, store: member.store) }
        let before = try GroupCipher.encrypt(Array("before".utf8), for: alice.name, store: alice.device.store, random: alice.device.random)
        let late = try GroupCipher.encrypt(Array("late".utf8), for: alice.name, store: alice.device.store, random: alice.device.random)
        for member in [bob, carol] { #expect(try GroupCipher.decrypt(before, from: alice.name, store: member.store) == Array("before".utf8)) }

        // Carol leaves: Alice rotates and sends the new key to Bob only.
        let rotated = try GroupSessionBuilder.rotateSenderKey(for: alice.name, store: alice.device.store, random: alice.device.random)
        #expect(rotated.keyID != first.keyID)
        #expect(rotated.iteration == 0)
        #expect(rotated.signingKey != first.signingKey)
        try GroupSessionBuilder.process(rotated, from: alice.name, store: bob.store)
        let after = try GroupCipher.encrypt(Array("after".utf8), for: alice.name, store: alice.device.store, random: alice.device.random)
        #expect(after.keyID == rotated.keyID)
        #expect(try GroupCipher.decrypt(after, from: alice.name, store: bob.store) == Array("after".utf8))
        let carolBefore = carol.store.snapshot()
        #expect(throws: SignalProtocolError.noSenderKey(alice.name, keyID: rotated.keyID)) {
            try GroupCipher.decrypt(after, from: alice.name, store: carol.store)
        }
        #expect(carol.store.snapshot() == carolBefore)
        // A message of the old key that arrives after the rotation still decrypts.
        #expect(try GroupCipher.decrypt(late, from: alice.name, store: bob.store) == Array("late".utf8))
        // Re-exporting now gives the new key; the old state cannot send any more.
        let record = try #require(alice.device.store.loadSenderKey(for: alice.name))
        #expect(record.currentKeyID == rotated.keyID && record.stateCount == 2)
        #expect(record.states.dropFirst().allSatisfy { $0.signingPrivateKey == nil })
        #expect(try GroupSessionBuilder.distributionMessage(for: alice.name, store: alice.device.store).keyID == rotated.keyID)
    }

    /// Defect 7: iteration UInt32.max can neither be distributed, sent nor received.
    @Test func iterationsStopBeforeUInt32Max() throws {
        let alice = Member(device: Device("alice", seed: 1446))
        let bob = Device("bob", seed: 1447)
        let distribution = try GroupSessionBuilder.distributionMessage(for: alice.name, store: alice.device.store, random: alice.device.random)
        let atMax = SenderKeyDistributionMessage(keyID: distribution.keyID, iteration: .max, chainKey: distribution.chainKey,
                                                 signingKey: distribution.signingKey)
        let parsed = try SenderKeyDistributionMessage(serialized: atMax.serialized)
        #expect(parsed.iteration == .max)
        #expect(throws: SignalProtocolError.chainExhausted(counter: .max)) {
            try GroupSessionBuilder.process(parsed, from: alice.name, store: bob.store)
        }
        #expect(bob.store.loadSenderKey(for: alice.name) == nil)

        // A sender whose chain reached UInt32.max must rotate.
        var record = try #require(alice.device.store.loadSenderKey(for: alice.name))
        record.states[0].chainKey = SenderChainKey(key: record.states[0].chainKey.key, iteration: .max - 1)
        alice.device.store.storeSenderKey(record, for: alice.name)
        let last = try GroupCipher.encrypt(Array("last".utf8), for: alice.name, store: alice.device.store, random: alice.device.random)
        #expect(last.iteration == UInt32.max - 1)
        let senderBefore = alice.device.store.snapshot()
        #expect(throws: SignalProtocolError.chainExhausted(counter: .max)) {
            try GroupCipher.encrypt(Array("wrapped".utf8), for: alice.name, store: alice.device.store, random: alice.device.random)
        }
        #expect(alice.device.store.snapshot() == senderBefore)

        // A receiver at UInt32.max − 1 reads that message, and refuses one numbered UInt32.max.
        let near = SenderKeyDistributionMessage(keyID: distribution.keyID, iteration: .max - 1, chainKey: record.states[0].chainKey.key,
                                                signingKey: distribution.signingKey)
        try GroupSessionBuilder.process(near, from: alice.name, store: bob.store)
        #expect(try GroupCipher.decrypt(last, from: alice.name, store: bob.store) == Array("last".utf8))
        var forgedRecord = try #require(alice.device.store.loadSenderKey(for: alice.name))
        forgedRecord.states[0].chainKey = SenderChainKey(key: forgedRecord.states[0].chainKey.key, iteration: .max)
        let signing = try #require(forgedRecord.states[0].signingPrivateKey)
        let beyond = try SenderKeyMessage(keyID: distribution.keyID, iteration: .max, ciphertext: [UInt8](repeating: 0, count: 16),
                                          signingKey: signing, random: alice.device.random)
        let receiverBefore = bob.store.snapshot()
        #expect(throws: SignalProtocolError.chainExhausted(counter: .max)) { try GroupCipher.decrypt(beyond, from: alice.name, store: bob.store) }
        #expect(bob.store.snapshot() == receiverBefore)
    }
}
