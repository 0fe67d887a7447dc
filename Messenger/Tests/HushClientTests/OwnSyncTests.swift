import Foundation
import Hush
import HushRelay
import HushTransport
import Synchronization
import Testing
@testable import HushClient

/// A user's own devices in step (Docs/client.md §Several devices, Docs/spec/client.md §3b, §3c,
/// §6.7): read state, groups created, joined and left, a member's new device in a group, and
/// sends that find devices another device linked. Real clients and a real relay over loopback;
/// devices are linked with the public linking API.
@Suite(.serialized, .timeLimit(.minutes(3))) struct OwnSyncTests {
    /// What logged-in connections handed the relay; `blockSendsTo` makes every `Send` to that
    /// account crash its connection at the relay (nothing stored).
    final class Wire: Sendable {
        let multi = Mutex<[RelayMultiSend]>([])
        let listDevices = Atomic<Int>(0)
        let blockSendsTo = Mutex<String?>(nil)
        struct Blocked: Error {}
        func hook(_ stanza: RelayStanza) throws {
            switch stanza.body {
            case .multiSend(let m)?: multi.withLock { $0.append(m) }
            case .listDevices?: listDevices.add(1, ordering: .relaxed)
            case .send(let s)?: if blockSendsTo.withLock({ $0 }) == s.account { throw Blocked() }
            default: break
            }
        }
        func multiSends(_ id: UInt64) -> [RelayMultiSend] { multi.withLock { $0.filter { $0.clientMessageID == id } } }
    }

    func relay(_ wire: Wire) async throws -> ClientTestRelay {
        let relay = try ClientTestRelay()
        relay.hook = { try wire.hook($0) }
        try await relay.start()
        return relay
    }

    /// Another device of `primary`'s account, linked with a code and started. `greets: false`
    /// keeps it from sending its hello (0x08), as if that had not arrived yet: the older
    /// devices then do not know it until they check.
    func linked(_ primary: User, _ relay: ClientTestRelay, greets: Bool = true) async throws -> User {
        let (user, _, _) = try await DeviceLinkTests.link(primary, relay)
        #expect(try user.store.flag(OwnSyncKey.helloDue))
        if !greets { try user.store.setFlag(OwnSyncKey.helloDue, false) }
        await user.online()
        return user
    }

    func readSync(_ log: EventLog) async -> ClientEvent {
        await log.first { if case .readOnOtherDevice = $0 { true } else { false } }
    }

    @Test func readingOnOneDeviceMarksTheSameMessagesReadOnTheOthers() async throws {
        let wire = Wire()
        let relay = try await relay(wire)
        let alice1 = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice1.online()
        await bob.online()
        let alice2 = try await linked(alice1, relay)
        // Read sync does not depend on read receipts: alice/1 sends none.
        try await alice1.client.setReadReceipts(false)

        let one = try await bob.client.send("one", to: "alice"), two = try await bob.client.send("two", to: "alice")
        for u in [alice1, alice2] {
            _ = await u.waitMessage(from: "bob", "one")
            _ = await u.waitMessage(from: "bob", "two")
        }
        #expect(try await alice2.client.conversations().first { $0.account == "bob" }?.unread == 2)
        #expect(try await alice1.client.markRead("bob") == 2)
        // alice/1 knows alice/2 from its hello (or, had that not arrived yet, asks the relay).
        #expect(await readSync(alice2.log) == .readOnOtherDevice(conversation: "bob", messages: [one, two]))
        #expect(try alice2.store.message(one)?.state == .read && alice2.store.message(two)?.state == .read)
        #expect(try await alice2.client.conversations().first { $0.account == "bob" }?.unread == 0)
        #expect(try await alice2.client.markRead("bob") == 0)
        #expect(try await alice1.client.ownDevices() == [2])
        // No read receipt went to bob from either device: a later message from alice/1 reaches bob
        // after anything queued before it, and bob's messages are still only delivered.
        let marker = try await alice1.client.send("marker", to: "bob")
        _ = await bob.waitMessage(from: "alice", "marker")
        #expect(try bob.store.message(one)?.state == .delivered && bob.store.message(two)?.state == .delivered)

        // The other way, with read receipts on (alice/2's setting came from alice/1 when it was
        // linked, before alice/1 turned them off): bob's tick goes blue, alice/1 marks it read.
        #expect(await alice2.client.readReceiptsEnabled)
        let three = try await bob.client.send("three", to: "alice")
        _ = await alice1.waitMessage(from: "bob", "three")
        _ = await alice2.waitMessage(from: "bob", "three")
        let mark = await alice1.log.mark()
        #expect(try await alice2.client.markRead("bob") == 1)
        await bob.waitTick(three, .read)
        let back = await alice1.log.next(after: mark) { if case .readOnOtherDevice = $0 { true } else { false } }
        #expect(back == .readOnOtherDevice(conversation: "bob", messages: [three]))
        #expect(try alice1.store.message(three)?.state == .read)
        #expect(try await alice1.client.markRead("bob") == 0)
        _ = marker
        for u in [alice1, alice2, bob] { await u.client.stop() }
        await relay.finish()
    }

    /// The same on the encrypted SQLite store (its unread counters): alice/2 is linked into one.
    @Test func aReadSyncOnTheEncryptedStoreCountsTheConversationRead() async throws {
        let wire = Wire()
        let relay = try await relay(wire)
        let alice1 = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice1.online()
        await bob.online()
        let pending = try await HushLink.begin(configuration: relay.configuration())
        let code = pending.code
        async let id = alice1.client.linkDevice(code: code)
        let path = relay.directory.appendingPathComponent("alice2-client.sqlite").path
        let client = try await pending.client { identity, registrationID in
            try SQLiteClientStore.create(path: path, secret: .keyFile(User.sqliteKey), identity: identity, registrationID: registrationID)
        }
        #expect(try await id == 2)
        let alice2 = User(client: client, store: client.store, log: EventLog(client))
        await alice2.online()
        let ids = [try await bob.client.send("a", to: "alice"), try await bob.client.send("b", to: "alice"),
                   try await bob.client.send("c", to: "alice")]
        for u in [alice1, alice2] { _ = await u.waitMessage(from: "bob", "c") }
        #expect(try await alice2.client.conversations().first { $0.account == "bob" }?.unread == 3)
        #expect(try await alice1.client.markRead("bob") == 3)
        #expect(await readSync(alice2.log) == .readOnOtherDevice(conversation: "bob", messages: ids))
        #expect(try await alice2.client.conversations().first { $0.account == "bob" }?.unread == 0)
        #expect(try await alice2.client.messages(in: "bob").map(\.state) == [.read, .read, .read])
        // After a restart the store says the same.
        await alice2.client.stop()
        let reopened = try alice2.reopened(relay)
        #expect(try await reopened.client.conversations().first { $0.account == "bob" }?.unread == 0)
        for u in [alice1, bob] { await u.client.stop() }
        await relay.finish()
    }

    /// A read sync for a message not stored yet is kept and used when the message arrives; one
    /// for another conversation's message, an outgoing one or an invalid conversation is not.
    @Test func aReadSyncAheadOfItsMessageIsKeptForIt() throws {
        let keys = try HushClient.generateIdentity()
        let store = InMemoryClientStore(identity: keys.identity, registrationID: keys.registrationID)
        let me = ProtocolAddress(name: "alice", deviceID: 2)
        let early = MessageID(account: "bob", device: 1, clientMessageID: 7)
        let mine = MessageID(account: "alice", device: 2, clientMessageID: 3)
        let here = MessageID(account: "bob", device: 1, clientMessageID: 8)
        let out = MessageID(account: "alice", device: 1, clientMessageID: 9)
        try store.atomically {
            #expect(try HushClient.applyReadSync("bob", [early, mine], store: store, me: me).isEmpty)
            #expect(try HushClient.readElsewhere(early, in: "carol", store: store) == false)
            #expect(try HushClient.readElsewhere(mine, in: "bob", store: store) == false)
            #expect(try HushClient.readElsewhere(early, in: "bob", store: store) == true)
            #expect(try HushClient.readElsewhere(early, in: "bob", store: store) == false)  // used up
            _ = try store.insertMessage(StoredMessage(id: here, conversation: "bob", direction: .incoming, body: "x", sentAt: 1, state: .delivered))
            _ = try store.insertMessage(StoredMessage(id: out, conversation: "bob", direction: .outgoing, body: "y", sentAt: 1, state: .sent))
            #expect(try HushClient.applyReadSync("carol", [here], store: store, me: me).isEmpty)
            #expect(try store.message(here)?.state == .delivered)
            #expect(try HushClient.applyReadSync("bob", [here, out], store: store, me: me) == [here])
            #expect(try store.message(here)?.state == .read && store.message(out)?.state == .sent)
            #expect(try HushClient.applyReadSync("bob", [here], store: store, me: me).isEmpty)
            #expect(try HushClient.applyReadSync("Bob!", [early], store: store, me: me).isEmpty)
            #expect(try HushClient.readElsewhere(early, in: "Bob!", store: store) == false)
            // At most maxReadAhead are kept, the oldest dropped.
            let many = (1...UInt64(HushClient.maxReadAhead + 1)).map { MessageID(account: "bob", device: 3, clientMessageID: $0) }
            for chunk in stride(from: 0, to: many.count, by: 256) {
                _ = try HushClient.applyReadSync("bob", Array(many[chunk..<min(many.count, chunk + 256)]), store: store, me: me)
            }
            #expect(try store.strings(OwnSyncKey.readAhead).count == HushClient.maxReadAhead)
            #expect(try HushClient.readElsewhere(many[0], in: "bob", store: store) == false)
            #expect(try HushClient.readElsewhere(many[1], in: "bob", store: store) == true)
        }
    }

    @Test func groupsCreatedJoinedAndLeftOnOneDeviceAreTheSameOnTheOthers() async throws {
        let wire = Wire()
        let relay = try await relay(wire)
        let alice1 = try User.make("alice", relay), bob = try User.make("bob", relay), carol = try User.make("carol", relay)
        for u in [alice1, bob, carol] { await u.online() }
        let alice2 = try await linked(alice1, relay)

        // Created on alice/1 (which knows alice/2 from its hello, or asks the relay first).
        let trip = try await alice1.client.createGroup(name: "trip", members: ["bob"])
        _ = await alice2.log.first { $0 == .groupChanged(trip) }
        #expect(try await alice2.client.group(trip.id) == trip)
        // Joined: carol adds alice; both of alice's devices get it.
        let party = try await carol.client.createGroup(name: "party", members: ["alice"])
        for u in [alice1, alice2] { _ = await u.log.first { $0 == .groupChanged(party) } }

        // bob's message reaches both of alice's devices; read on alice/1, it is read on alice/2.
        _ = await bob.log.first { $0 == .groupChanged(trip) }
        let hello = try await bob.client.sendGroup("hello", to: trip.id)
        _ = await alice1.waitMessage(in: trip.id.conversation, "hello", .incoming)
        _ = await alice2.waitMessage(in: trip.id.conversation, "hello", .incoming)
        #expect(try await alice1.client.markRead(trip.id.conversation) == 1)
        #expect(await readSync(alice2.log) == .readOnOtherDevice(conversation: trip.id.conversation, messages: [hello]))
        await bob.waitTick(hello, .read)
        for u in [alice1, alice2, bob] {
            #expect(try await eventually { try await u.client.outboxCount() == 0 }, "\(u.name).\(u.client.deviceID)")
        }

        // alice/1 leaves; the relay holds back her leave to bob (so bob still sends to her), but
        // alice/2 leaves with her: it shows no later message and cannot send as a member.
        wire.blockSendsTo.withLock { $0 = "bob" }
        try await alice1.client.leaveGroup(trip.id)
        let left = try #require(trip.without("alice"))
        _ = await alice2.log.first { $0 == .groupChanged(left) }
        #expect(try await alice2.client.group(trip.id)?.isMember("alice") == false)
        await #expect(throws: ClientError.notGroupMember(trip.id)) { try await alice2.client.sendGroup("still here?", to: trip.id) }
        #expect(try await alice2.client.group(party.id) == party)  // the other group is untouched
        #expect(try await bob.client.group(trip.id) == trip)       // bob has not heard of it
        _ = try await bob.client.sendGroup("after the leave", to: trip.id)
        // bob's next message to alice comes after the group message in alice/2's queue.
        _ = try await bob.client.send("marker", to: "alice")
        _ = await alice2.waitMessage(from: "bob", "marker")
        #expect(try await alice2.client.messages(in: trip.id.conversation).map(\.body) == ["hello"])
        wire.blockSendsTo.withLock { $0 = nil }
        // The leave reaches bob now.
        _ = await bob.log.first { $0 == .groupChanged(left) }
        for u in [alice1, alice2, bob, carol] { await u.client.stop() }
        await relay.finish()
    }

    @Test func aMembersNewlyLinkedDeviceReadsTheVeryNextGroupMessage() async throws {
        let wire = Wire()
        let relay = try await relay(wire)
        let alice = try User.make("alice", relay), bob1 = try User.make("bob", relay), carol = try User.make("carol", relay)
        for u in [alice, bob1, carol] { await u.online() }
        let g = try await alice.client.createGroup(name: "g", members: ["bob", "carol"])
        for u in [bob1, carol] { _ = await u.log.first { $0 == .groupChanged(g) } }
        let first = try await alice.client.sendGroup("first", to: g.id)
        _ = await bob1.waitMessage(in: g.id.conversation, "first", .incoming)
        _ = await carol.waitMessage(in: g.id.conversation, "first", .incoming)

        // bob links a second device; alice has no session with it. bob/2 greets bob/1 (0x08),
        // which sends it the account's groups.
        let bob2 = try await linked(bob1, relay)
        _ = await bob2.log.first { $0 == .groupChanged(g) }
        #expect(try await bob1.client.ownDevices() == [2])
        #expect(try alice.store.sessionDevices(for: "bob") == [1])
        let second = try await alice.client.sendGroup("second", to: g.id)
        let got = await bob2.waitMessage(in: g.id.conversation, "second", .incoming)
        #expect(got.id == second)
        #expect(try await bob2.client.group(g.id) == g)  // from alice, an admin, before her sender key
        #expect(try alice.store.sessionDevices(for: "bob") == [1, 2])
        // On the wire: refused once (bob's devices mismatched, nothing stored), then to bob's two.
        let sends = wire.multiSends(second.clientMessageID)
        #expect(sends.count == 2)
        #expect(sends.first?.recipients.first { $0.account == "bob" }?.devices == [1])
        #expect(sends.last?.recipients.first { $0.account == "bob" }?.devices == [1, 2])
        #expect(sends.allSatisfy { $0.recipients.allSatisfy(\.allDevices) })
        #expect(wire.multiSends(first.clientMessageID).count == 1)
        await alice.waitTick(second, .delivered)

        // carol (no admin) learns bob/2 the same way; bob/2 holds the state already.
        let fromCarol = try await carol.client.sendGroup("carol too", to: g.id)
        #expect(await bob2.waitMessage(in: g.id.conversation, "carol too", .incoming).id == fromCarol)
        #expect(try await bob2.client.messages(in: g.id.conversation).map(\.body) == ["second", "carol too"])
        for u in [alice, bob1, bob2, carol] { await u.client.stop() }
        await relay.finish()
    }

    /// The brief's case: device 1 links devices 2 and 3; device 2, which saw only device 1 at its
    /// login, sends to bob and device 3 gets the transcript (all_devices, MISMATCHED_DEVICES).
    /// Before that, device 1, which knows no other device at all (the new devices' hellos are held
    /// back), sends: its transcript waits for a ListDevices, which finds both.
    @Test func sendsFindOwnDevicesThatAnotherDeviceLinked() async throws {
        let wire = Wire()
        let relay = try await relay(wire)
        let alice1 = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice1.online()
        await bob.online()
        // Neither new device's hello (0x08) is sent: alice/1 does not know them.
        let alice2 = try await linked(alice1, relay, greets: false)
        let alice3 = try await linked(alice1, relay, greets: false)
        #expect(try await alice1.client.ownDevices() == [])
        #expect(try await alice2.client.ownDevices() == [1])
        #expect(try await alice3.client.ownDevices() == [1, 2])

        let lists = wire.listDevices.load(ordering: .relaxed)
        let fromOne = try await alice1.client.send("from one", to: "bob")
        for u in [alice2, alice3] { #expect(await u.waitMessage(in: "bob", "from one", .outgoing).id == fromOne) }
        #expect(wire.listDevices.load(ordering: .relaxed) > lists)
        #expect(try await alice1.client.ownDevices() == [2, 3])

        let fromTwo = try await alice2.client.send("from two", to: "bob")
        let copy = await alice3.waitMessage(in: "bob", "from two", .outgoing)
        #expect(copy.id == fromTwo && copy.state == .sent)
        _ = await alice1.waitMessage(in: "bob", "from two", .outgoing)
        #expect(try await alice2.client.ownDevices() == [1, 3])
        _ = await bob.waitMessage(from: "alice", "from two")
        // Every device of alice holds the same conversation.
        for u in [alice1, alice2, alice3] {
            #expect(try await u.client.messages(in: "bob").map(\.body) == ["from one", "from two"])
        }
        // A device alone in its account that linked nobody (most accounts): what it would sync
        // is dropped at once — nothing kept aside, no ListDevices per message.
        let solo = try User.make("dave", relay)
        await solo.online()
        let listsBefore = wire.listDevices.load(ordering: .relaxed)
        for n in 1...3 {
            let lone = try await solo.client.send("just me \(n)", to: "bob")
            await solo.waitTick(lone, .sent)
            #expect(try solo.store.ids(OwnSyncKey.aside).isEmpty)
        }
        #expect(wire.listDevices.load(ordering: .relaxed) == listsBefore)
        for u in [alice1, alice2, alice3, bob, solo] { await u.client.stop() }
        await relay.finish()
    }
}
