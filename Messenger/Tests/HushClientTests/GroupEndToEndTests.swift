import Foundation
import Hush
import HushTransport
import Synchronization
import Testing
@testable import HushClient

/// Groups end to end (Docs/client.md §Groups, Docs/spec/client.md §6, relay spec §21): real
/// clients and a real relay over loopback; the relay's stanza hook shows what went on the wire.
@Suite(.serialized, .timeLimit(.minutes(2))) struct GroupEndToEndTests {
    /// The MultiSends the relay was handed.
    final class Wire: Sendable {
        let multi = Mutex<[RelayMultiSend]>([])
        func hook(_ stanza: RelayStanza) {
            if case .multiSend(let m)? = stanza.body { multi.withLock { $0.append(m) } }
        }
        var sends: [RelayMultiSend] { multi.withLock { $0 } }
    }

    func message(_ user: User, in group: GroupID, _ body: String) async -> StoredMessage {
        let e = await user.log.first { if case .message(let m) = $0 { m.conversation == group.conversation && m.body == body } else { false } }
        guard case .message(let m) = e else { fatalError() }
        return m
    }

    func groupChange(_ user: User, _ match: @escaping @Sendable (GroupState) -> Bool) async -> GroupState {
        let e = await user.log.first { if case .groupChanged(let s) = $0 { match(s) } else { false } }
        guard case .groupChanged(let s) = e else { fatalError() }
        return s
    }

    @Test func threeMembersOneEnvelopeTicksPerMemberAndARemovalRotatesTheKey() async throws {
        let relay = try ClientTestRelay()
        let wire = Wire()
        relay.hook = { wire.hook($0) }
        try await relay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay), carol = try User.make("carol", relay)
        for u in [alice, bob, carol] { await u.online() }

        let created = try await alice.client.createGroup(name: "trip", members: ["bob", "carol"])
        let group = created.id
        #expect(created.members == ["alice", "bob", "carol"] && created.admins == ["alice"] && created.revision == 1)
        _ = await groupChange(bob) { $0 == created }
        _ = await groupChange(carol) { $0 == created }

        // One message: one MultiSend, one payload, a header per device of bob and carol.
        let hello = try await alice.client.sendGroup("hello all", to: group)
        let atBob = await message(bob, in: group, "hello all")
        let atCarol = await message(carol, in: group, "hello all")
        #expect(atBob.id == hello && atCarol.id == hello)
        #expect(atBob.conversation == group.conversation)
        #expect(wire.sends.count == 1)
        let first = try #require(wire.sends.first)
        #expect(first.recipients.map(\.account) == ["bob", "carol"] && first.recipients.map(\.devices) == [[1], [1]])
        let parsed = try MultiRecipientEnvelope(serialized: Array(first.envelope))
        #expect(parsed.recipientCount == 2)

        // Ticks: sent, then delivered once both members' devices have it; read by some is not read.
        await alice.waitTick(hello, .delivered)
        #expect(try await alice.client.memberTicks(hello) == ["bob": .delivered, "carol": .delivered])
        #expect(try await bob.client.markRead(group.conversation) == 1)
        _ = await alice.log.first { $0 == .memberTick(hello, account: "bob", .read) }
        #expect(try await alice.client.memberTicks(hello) == ["bob": .read, "carol": .delivered])
        #expect(try alice.store.message(hello)?.state == .delivered)
        #expect(try await carol.client.markRead(group.conversation) == 1)
        await alice.waitTick(hello, .read)
        #expect(await alice.log.ticks(hello) == [.sent, .delivered, .read])

        // Members reply in the group; everyone else gets it.
        _ = try await bob.client.sendGroup("hi from bob", to: group)
        _ = await message(alice, in: group, "hi from bob")
        _ = await message(carol, in: group, "hi from bob")

        // Carol is removed: she learns it, the others too; alice's next message is under a new
        // sender key that carol never got, and goes to bob only.
        let removed = try await alice.client.removeMembers(["carol"], from: group)
        #expect(removed.members == ["alice", "bob"] && removed.revision == 2)
        _ = await groupChange(bob) { $0 == removed }
        _ = await groupChange(carol) { $0 == removed }
        #expect(try await carol.client.group(group)?.isMember("carol") == false)
        await #expect(throws: ClientError.notGroupMember(group)) { try await carol.client.sendGroup("still?", to: group) }
        let before = wire.sends.count
        let after = try await alice.client.sendGroup("without carol", to: group)
        let atBob2 = await message(bob, in: group, "without carol")
        #expect(atBob2.id == after)
        let last = try #require(wire.sends.dropFirst(before).first)
        #expect(last.recipients.map(\.account) == ["bob"])
        // Carol holds the old sender key of alice and not the new one: bob's copy, opened with
        // bob's keys, is a group message carol cannot decrypt.
        let copy = try MultiRecipientEnvelope(serialized: Array(last.envelope)).delivered(to: 0)
        let opened = try MultiRecipientEnvelope.open(copy, recipientIdentity: try bob.store.identityKeyPair(),
                                                     validator: CertificateValidator(trustRoot: relay.trustRoot), now: relay.clock.now)
        #expect(opened.contentType == .groupMessage)
        #expect(Array(opened.message.prefix(16)) == group.bytes)
        let sealedMessage = try SenderKeyMessage(serialized: Array(opened.message.dropFirst(16)))
        let aliceName = SenderKeyName(groupID: group.hex, sender: ProtocolAddress(name: "alice", deviceID: 1))
        #expect(try carol.store.loadSenderKey(for: aliceName) != nil)  // the key from before the removal
        #expect(throws: SignalProtocolError.noSenderKey(aliceName, keyID: sealedMessage.keyID)) {
            try GroupCipher.decrypt(sealedMessage, from: aliceName, store: carol.store)
        }
        // Bob decrypted it with the new key (his copy was processed: decrypting again is a duplicate).
        #expect(throws: SignalProtocolError.self) { try GroupCipher.decrypt(sealedMessage, from: aliceName, store: bob.store) }
        let carolSaw = await carol.log.all
        #expect(!carolSaw.contains { if case .message(let m) = $0 { m.body == "without carol" } else { false } })

        for u in [alice, bob, carol] { await u.client.stop() }
        await relay.finish()
    }

    @Test func aMemberCannotForgeAnAdminsChangeAndLeavingIsAnnounced() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        var bob = try User.make("bob", relay)
        let carol = try User.make("carol", relay)
        for u in [alice, bob, carol] { await u.online() }
        let state = try await alice.client.createGroup(name: "g", members: ["bob", "carol"])
        let group = state.id
        _ = await groupChange(bob) { $0 == state }
        _ = await groupChange(carol) { $0 == state }
        await #expect(throws: ClientError.notGroupAdmin(group)) { try await bob.client.removeMembers(["alice"], from: group) }

        // A modified client of bob's sends carol a state that makes bob the admin and drops alice.
        await bob.client.stop()
        let forged = try #require(GroupState(id: group, revision: 9, name: "mine", members: ["bob", "carol"], admins: ["bob"]))
        try bob.store.enqueue(OutboxItem(clientMessageID: try bob.store.takeID(), account: "carol", devices: [],
                                         payload: MessageContent.groupState(forged).encoded, message: nil, createdAt: relay.clock.now))
        bob = try bob.reopened(relay)
        await bob.online()
        // Carol processes bob's messages in order: by the time his next group message arrives,
        // the forged state was seen, and ignored.
        _ = try await bob.client.sendGroup("after the forgery", to: group)
        _ = await message(carol, in: group, "after the forgery")
        #expect(try await carol.client.group(group) == state)

        // Alice leaves: the others drop her; as the last admin goes, bob (first in order) is one.
        try await alice.client.leaveGroup(group)
        let atCarol = await groupChange(carol) { !$0.isMember("alice") }
        #expect(atCarol.members == ["bob", "carol"] && atCarol.admins == ["bob"])
        _ = await groupChange(bob) { !$0.isMember("alice") }
        await #expect(throws: ClientError.notGroupMember(group)) { try await alice.client.sendGroup("x", to: group) }
        // Bob, now admin, can change the group; the message after it reaches carol only.
        let grown = try await bob.client.addMembers(["dave"], to: group)
        #expect(grown.members == ["bob", "carol", "dave"] && grown.revision == 2)
        _ = await groupChange(carol) { $0 == grown }
        _ = try await bob.client.sendGroup("bye alice", to: group)
        _ = await message(carol, in: group, "bye alice")
        let aliceSaw = await alice.log.all
        #expect(!aliceSaw.contains { if case .message(let m) = $0 { m.body == "bye alice" } else { false } })

        for u in [alice, bob, carol] { await u.client.stop() }
        await relay.finish()
    }

    /// A member's phone is lost and restored from a backup: its groups come back (state,
    /// history, member ticks), and group messages flow both ways again — the others send it
    /// their sender keys anew after its session reset, and it distributes a new one of its own.
    @Test func groupsSurviveABackupRestore() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay), carol = try User.make("carol", relay)
        for u in [alice, bob, carol] { await u.online() }
        let state = try await alice.client.createGroup(name: "g", members: ["bob", "carol"])
        _ = await groupChange(bob) { $0 == state }
        _ = await groupChange(carol) { $0 == state }
        let before = try await bob.client.sendGroup("before", to: state.id)
        _ = await message(alice, in: state.id, "before")
        _ = await message(carol, in: state.id, "before")
        await bob.waitTick(before, .delivered)
        _ = try await carol.client.sendGroup("carol before", to: state.id)
        _ = await message(bob, in: state.id, "carol before")

        await bob.client.stop()
        var sink = BackupBytesSink()
        let secret = BackupSecret.passphrase("p", limits: Argon2id.Limits(operations: 1, memoryBytes: 8 * 1024))
        _ = try HushBackup.export(store: bob.store, to: &sink, secret: secret, now: relay.clock.now)
        let restored = try HushBackup.restore(from: BackupBytesSource(sink.bytes), secret: secret, configuration: relay.configuration()) { p in
            InMemoryClientStore(identity: p.identity, registrationID: p.registrationID)
        }
        let again = try bob.reopened(relay, store: restored.store)
        #expect(try await again.client.group(state.id) == state)
        #expect(try await again.client.messages(in: state.id.conversation).map(\.body) == ["before", "carol before"])
        #expect(try await again.client.memberTicks(before) == ["alice": .delivered, "carol": .delivered])
        let (aliceMark, carolMark) = (await alice.log.mark(), await carol.log.mark())
        await again.online()
        // Both must have processed bob's reset before they send: a message sent under the old
        // session cannot be read by the restored device.
        _ = await alice.log.next(after: aliceMark) { $0 == .sessionReset(account: "bob", device: 1) }
        _ = await carol.log.next(after: carolMark) { $0 == .sessionReset(account: "bob", device: 1) }

        // Alice and carol got bob's session reset: their next group messages carry their sender keys again.
        let fromAlice = try await alice.client.sendGroup("welcome back", to: state.id)
        _ = await message(again, in: state.id, "welcome back")
        await alice.waitTick(fromAlice, .delivered)
        _ = try await carol.client.sendGroup("hi again", to: state.id)
        _ = await message(again, in: state.id, "hi again")
        // The restored device's own new sender key reaches both.
        let after = try await again.client.sendGroup("I'm back", to: state.id)
        _ = await message(alice, in: state.id, "I'm back")
        _ = await message(carol, in: state.id, "I'm back")
        await again.waitTick(after, .delivered)

        for u in [alice, again, carol] { await u.client.stop() }
        await relay.finish()
    }
}
