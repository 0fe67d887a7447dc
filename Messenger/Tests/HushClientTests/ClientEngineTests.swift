import Foundation
import Hush
import HushTransport
import Synchronization
import Testing
@testable import HushClient

/// One test user: a client, its store and its event log.
struct User {
    let client: HushClient
    let store: any ClientStore
    let log: EventLog

    var name: String { client.account }

    static func make(_ name: String, _ relay: ClientTestRelay, suite: CipherSuite = .hush1,
                     configure: (inout ClientConfiguration) -> Void = { _ in }) throws -> User {
        let keys = try HushClient.generateIdentity()
        let store = InMemoryClientStore(identity: keys.identity, registrationID: keys.registrationID)
        var config = relay.configuration(suite: suite)
        configure(&config)
        let client = try HushClient.create(account: name, store: store, configuration: config)
        return User(client: client, store: store, log: EventLog(client))
    }

    /// The same store opened by a new client (an app restart).
    func reopened(_ relay: ClientTestRelay, store: (any ClientStore)? = nil) throws -> User {
        let store = store ?? self.store
        let client = try HushClient(store: store, configuration: relay.configuration())
        return User(client: client, store: store, log: EventLog(client))
    }

    /// A user whose store is an encrypted SQLite file at `path`.
    static func makeSQLite(_ name: String, _ relay: ClientTestRelay, path: String) throws -> User {
        let keys = try HushClient.generateIdentity()
        let store = try SQLiteClientStore.create(path: path, secret: .keyFile(sqliteKey), identity: keys.identity,
                                                 registrationID: keys.registrationID)
        let client = try HushClient.create(account: name, store: store, configuration: relay.configuration())
        return User(client: client, store: store, log: EventLog(client))
    }

    static let sqliteKey = SecureBytes(copying: [UInt8](repeating: 0x5A, count: 32))

    /// Starts and waits until the offline queue is drained.
    func online() async {
        let mark = await log.mark()
        await client.start()
        _ = await log.next(after: mark) { $0 == .connection(.online) }
    }

    func waitMessage(from account: String, _ body: String) async -> StoredMessage {
        let e = await log.first { if case .message(let m) = $0 { m.conversation == account && m.body == body } else { false } }
        guard case .message(let m) = e else { fatalError() }
        return m
    }

    func waitTick(_ id: MessageID, _ state: TickState) async {
        _ = await log.first { $0 == .tick(id, state) }
    }

}

@Suite(.serialized, .timeLimit(.minutes(2))) struct ClientEngineTests {
    @Test func fullTickSequenceSentDeliveredRead() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()

        let id = try await alice.client.send("Hi Bob", to: "bob")
        #expect(id == MessageID(account: "alice", device: 1, clientMessageID: id.clientMessageID))
        let received = await bob.waitMessage(from: "alice", "Hi Bob")
        #expect(received.id == id)
        #expect(received.state == .delivered)
        await alice.waitTick(id, .delivered)
        #expect(try await bob.client.markRead("alice") == 1)
        await alice.waitTick(id, .read)
        #expect(await alice.log.ticks(id) == [.sent, .delivered, .read])
        #expect(try alice.store.message(id)?.state == .read)
        #expect(try bob.store.message(id)?.state == .read)
        #expect(try await alice.client.outboxCount() == 0)
        // Safety numbers agree on both sides.
        let a = try #require(try await alice.client.safetyNumber(with: "bob"))
        let b = try #require(try await bob.client.safetyNumber(with: "alice"))
        #expect(a == b)
        #expect(a.digits.count == 60 && a.digits.allSatisfy(\.isNumber))
        await alice.client.stop()
        await bob.client.stop()
        await relay.finish()
    }

    @Test func threeClientsAndSignalSuite() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay, suite: .signalV3), bob = try User.make("bob", relay), carol = try User.make("carol", relay)
        for u in [alice, bob, carol] { await u.online() }
        let toBob = try await alice.client.send("to bob", to: "bob")
        let toCarol = try await alice.client.send("to carol", to: "carol")
        let carolToBob = try await carol.client.send("carol here", to: "bob")
        _ = await bob.waitMessage(from: "alice", "to bob")
        _ = await bob.waitMessage(from: "carol", "carol here")
        _ = await carol.waitMessage(from: "alice", "to carol")
        await alice.waitTick(toBob, .delivered)
        await alice.waitTick(toCarol, .delivered)
        await carol.waitTick(carolToBob, .delivered)
        let list = try await bob.client.conversations()
        #expect(Set(list.map(\.account)) == ["alice", "carol"])
        #expect(list.allSatisfy { $0.unread == 1 })
        // Bob answers alice's Signal v3 session in the same suite.
        let reply = try await bob.client.send("back", to: "alice")
        _ = await alice.waitMessage(from: "bob", "back")
        await bob.waitTick(reply, .delivered)
        for u in [alice, bob, carol] { await u.client.stop() }
        await relay.finish()
    }

    @Test func offlineDeliveryWithOneBatchedReceipt() async throws {
        let relay = try ClientTestRelay()
        let toAlice = Atomic<Int>(0)
        relay.hook = { stanza in
            // Bob holds alice's access key (her first message shared it): his receipt goes sealed.
            if case .send(let m)? = stanza.body, m.account == "alice" { toAlice.add(1, ordering: .relaxed) }
            if case .sealedSend(let m)? = stanza.body, m.account == "alice" { toAlice.add(1, ordering: .relaxed) }
        }
        try await relay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()   // registers and uploads prekeys
        await bob.client.stop()
        var ids: [MessageID] = []
        for i in 1...3 { ids.append(try await alice.client.send("m\(i)", to: "bob")) }
        for id in ids { await alice.waitTick(id, .sent) }
        // Bob comes back: three messages in order, then one delivery receipt covering all three.
        await bob.online()
        let bodies = await bob.log.messages(from: "alice").map(\.body)
        #expect(bodies == ["m1", "m2", "m3"])
        for id in ids { await alice.waitTick(id, .delivered) }
        let deliveredTicks = await alice.log.all.filter { if case .tick(_, .delivered) = $0 { true } else { false } }
        #expect(deliveredTicks.count == 3)
        #expect(toAlice.load(ordering: .relaxed) == 1)  // one receipt stanza for the three
        await alice.client.stop()
        await bob.client.stop()
        await relay.finish()
    }

    @Test func outboxSentAfterReconnectIncludingANewContact() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay), carol = try User.make("carol", relay)
        for u in [alice, bob, carol] { await u.online() }
        let first = try await alice.client.send("online", to: "bob")
        await alice.waitTick(first, .delivered)
        await alice.client.stop()
        // Written offline: one to bob (session exists), one to carol (no session yet).
        let offline1 = try await alice.client.send("offline 1", to: "bob")
        let offline2 = try await alice.client.send("offline 2", to: "carol")
        #expect(try alice.store.message(offline1)?.state == .pending)
        // Two messages, and alice's access key for carol (shared with her first message).
        #expect(try await alice.client.outboxCount() == 3)
        await alice.online()
        _ = await bob.waitMessage(from: "alice", "offline 1")
        _ = await carol.waitMessage(from: "alice", "offline 2")
        await alice.waitTick(offline1, .delivered)
        await alice.waitTick(offline2, .delivered)
        #expect(await alice.log.ticks(offline1).first == .sent)
        for u in [alice, bob, carol] { await u.client.stop() }
        await relay.finish()
    }

    @Test func relayRestartMidConversation() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()
        let one = try await alice.client.send("before", to: "bob")
        await alice.waitTick(one, .delivered)
        let aMark = await alice.log.mark(), bMark = await bob.log.mark()
        await relay.stop()
        let during = try await alice.client.send("during", to: "bob")
        try await relay.start()
        // Both reconnect by themselves (backoff) and drain.
        _ = await alice.log.next(after: aMark) { $0 == .connection(.online) }
        _ = await bob.log.next(after: bMark) { $0 == .connection(.online) }
        _ = await bob.waitMessage(from: "alice", "during")
        await alice.waitTick(during, .delivered)
        let reply = try await bob.client.send("after", to: "alice")
        _ = await alice.waitMessage(from: "bob", "after")
        await bob.waitTick(reply, .delivered)
        #expect(await bob.log.messages(from: "alice").map(\.body) == ["before", "during"])
        await alice.client.stop()
        await bob.client.stop()
        await relay.finish()
    }

    @Test func clientRestartFromItsStore() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()
        let one = try await alice.client.send("one", to: "bob")
        await alice.waitTick(one, .delivered)
        await alice.client.stop()
        let again = try alice.reopened(relay)
        #expect(again.client.account == "alice")
        await again.online()
        let two = try await again.client.send("two", to: "bob")
        _ = await bob.waitMessage(from: "alice", "two")
        await again.waitTick(two, .delivered)
        let back = try await bob.client.send("three", to: "alice")
        _ = await again.waitMessage(from: "bob", "three")
        await bob.waitTick(back, .delivered)
        #expect(try await again.client.messages(in: "bob").map(\.body) == ["one", "two", "three"])
        #expect(two.clientMessageID > one.clientMessageID)
        await again.client.stop()
        await bob.client.stop()
        await relay.finish()
    }

    @Test func clientRestartFromAnEncryptedSQLiteFile() async throws {
        let relay = try await ClientTestRelay.start()
        let path = relay.directory.appendingPathComponent("alice-client.sqlite").path
        let alice = try User.makeSQLite("alice", relay, path: path), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()
        let one = try await alice.client.send("one", to: "bob")
        await alice.waitTick(one, .delivered)
        await bob.client.stop()
        let offline = try await alice.client.send("while bob is away", to: "bob")
        await alice.waitTick(offline, .sent)
        await alice.client.stop()
        // A new process: the file opened again with its key.
        let reopened = try SQLiteClientStore.open(path: path, secret: .keyFile(User.sqliteKey))
        let again = try alice.reopened(relay, store: reopened)
        await again.online()
        await bob.online()
        _ = await bob.waitMessage(from: "alice", "while bob is away")
        await again.waitTick(offline, .delivered)
        let back = try await bob.client.send("back", to: "alice")
        _ = await again.waitMessage(from: "bob", "back")
        await bob.waitTick(back, .delivered)
        #expect(try await again.client.messages(in: "bob").map(\.body) == ["one", "while bob is away", "back"])
        await again.client.stop()
        await bob.client.stop()
        await relay.finish()
    }

    @Test func readReceiptsOffSendsNoneAndShowsNone() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()
        try await bob.client.setReadReceipts(false)
        let id = try await alice.client.send("read me", to: "bob")
        _ = await bob.waitMessage(from: "alice", "read me")
        await alice.waitTick(id, .delivered)
        #expect(try await bob.client.markRead("alice") == 1)
        #expect(try bob.store.message(id)?.state == .read)
        // A later message from bob arrives after any receipt bob would have queued before it.
        let marker = try await bob.client.send("marker", to: "alice")
        _ = await alice.waitMessage(from: "bob", "marker")
        #expect(await alice.log.ticks(id) == [.sent, .delivered])
        #expect(try alice.store.message(id)?.state == .delivered)

        // Bob (receipts off) does not show alice's read receipts either.
        await bob.waitTick(marker, .delivered)
        try await alice.client.markRead("bob")
        let marker2 = try await alice.client.send("marker 2", to: "bob")
        _ = await bob.waitMessage(from: "alice", "marker 2")
        #expect(await bob.log.ticks(marker) == [.sent, .delivered])
        await alice.waitTick(marker2, .delivered)
        await alice.client.stop()
        await bob.client.stop()
        await relay.finish()
    }

    @Test func typingReachesAnOnlineContactAndIsNeverQueued() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()
        let hello = try await alice.client.send("hello", to: "bob")
        await alice.waitTick(hello, .delivered)
        #expect(await alice.client.setTyping(true, to: "bob"))
        let e = await bob.log.first { if case .typing("alice", true, _) = $0 { true } else { false } }
        #expect(e == .typing(account: "alice", isTyping: true, expiresAt: relay.clock.now + 6_000))
        // A message from alice ends the indicator.
        _ = try await alice.client.send("done typing", to: "bob")
        _ = await bob.log.first { if case .typing("alice", false, _) = $0 { true } else { false } }

        await bob.client.stop()
        #expect(await alice.client.setTyping(true, to: "bob"))  // sent; the relay drops it
        let marker = try await alice.client.send("marker", to: "bob")
        await alice.waitTick(marker, .sent)
        let mark = await bob.log.mark()
        await bob.online()
        _ = await bob.waitMessage(from: "alice", "marker")
        let after = await bob.log.all.dropFirst(mark)
        #expect(!after.contains { if case .typing = $0 { true } else { false } })
        // Offline: nothing is sent at all.
        await alice.client.stop()
        #expect(await alice.client.setTyping(true, to: "bob") == false)
        await bob.client.stop()
        await relay.finish()
    }

    @Test func presenceAndPrivacyThroughTheClient() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()
        try await bob.client.subscribePresence(["alice"])
        _ = await bob.log.first { $0 == .presence(PresenceInfo(account: "alice", online: true, lastSeen: relay.clock.now, hidden: false)) }
        relay.clock.advance(by: 1_000)
        await alice.client.stop()
        _ = await bob.log.first { $0 == .presence(PresenceInfo(account: "alice", online: false, lastSeen: relay.clock.now, hidden: false)) }
        // Last seen survives a relay restart (durable presence store).
        let seen = relay.clock.now
        // The relay writes last seen in the background: wait until it is on disk.
        while try await relay.presenceStore.lastSeen("alice") != seen { try await Task.sleep(for: .milliseconds(2)) }
        let mark = await bob.log.mark()
        await relay.stop()
        relay.clock.advance(by: 1_000)
        try await relay.start()
        _ = await bob.log.next(after: mark) { $0 == .connection(.online) }
        _ = await bob.log.next(after: mark) { $0 == .presence(PresenceInfo(account: "alice", online: false, lastSeen: seen, hidden: false)) }
        // Alice hides from everyone; kept locally and sent when she connects.
        try await alice.client.setPresence(.nobody)
        await alice.online()
        _ = await bob.log.first { $0 == .presence(PresenceInfo(account: "alice", online: false, lastSeen: nil, hidden: true)) }
        await alice.client.stop()
        await bob.client.stop()
        await relay.finish()
    }

    @Test func identityChangeNeedsApproval() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()
        let one = try await alice.client.send("hi", to: "bob")
        await alice.waitTick(one, .delivered)
        let before = try #require(try await alice.client.safetyNumber(with: "bob"))
        await bob.client.stop()

        // The relay loses its data; bob reinstalls with a new identity; alice re-registers.
        let mark = await alice.log.mark()
        try await relay.resetData()
        _ = await alice.log.next(after: mark) { $0 == .connection(.online) }
        let newBob = try User.make("bob", relay)
        await newBob.online()
        _ = try await newBob.client.send("new phone", to: "alice")
        _ = await alice.waitMessage(from: "bob", "new phone")
        _ = await alice.log.first { $0 == .identityChanged(account: "bob") }
        #expect(try await alice.client.identityNeedsApproval("bob"))
        await #expect(throws: ClientError.identityNotApproved("bob")) { try await alice.client.send("blocked", to: "bob") }
        let after = try #require(try await alice.client.safetyNumber(with: "bob"))
        #expect(after != before)
        #expect(after == (try await newBob.client.safetyNumber(with: "alice")))
        try await alice.client.approveIdentity(of: "bob")
        let ok = try await alice.client.send("welcome back", to: "bob")
        _ = await newBob.waitMessage(from: "alice", "welcome back")
        await alice.waitTick(ok, .delivered)
        await alice.client.stop()
        await newBob.client.stop()
        await relay.finish()
    }

    @Test func concurrentSendsFromTwoTasks() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()
        let client = alice.client
        async let a: [MessageID] = { var out: [MessageID] = []; for i in 0..<10 { out.append(try await client.send("a\(i)", to: "bob")) }; return out }()
        async let b: [MessageID] = { var out: [MessageID] = []; for i in 0..<10 { out.append(try await client.send("b\(i)", to: "bob")) }; return out }()
        let ids = try await a + b
        #expect(Set(ids).count == 20)
        for id in ids { await alice.waitTick(id, .delivered) }
        let bodies = await bob.log.messages(from: "alice").map(\.body)
        #expect(bodies.count == 20)
        #expect(bodies.filter { $0.hasPrefix("a") } == (0..<10).map { "a\($0)" })
        #expect(bodies.filter { $0.hasPrefix("b") } == (0..<10).map { "b\($0)" })
        await alice.client.stop()
        await bob.client.stop()
        await relay.finish()
    }

    @Test func redeliveryAfterALostAckIsShownOnce() async throws {
        let relay = try ClientTestRelay()
        // Crash bob's connection handler on his first ack once armed: the message stays queued.
        let armed = Atomic<Bool>(false)
        relay.hook = { stanza in
            if case .ack? = stanza.body, armed.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged {
                throw CancellationError()
            }
        }
        try await relay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()
        let warm = try await alice.client.send("warm up", to: "bob")
        await alice.waitTick(warm, .delivered)
        // Alice's ack of the warm-up receipt must be handled before arming (the relay has
        // nothing of hers in flight then); the next ack is bob's.
        while relay.relay.inFlight(account: "alice", deviceID: 1) != 0 { try await Task.sleep(for: .milliseconds(2)) }
        let mark = await bob.log.mark()
        armed.store(true, ordering: .relaxed)
        let id = try await alice.client.send("once", to: "bob")
        _ = await bob.waitMessage(from: "alice", "once")
        // Bob's connection dropped with the ack; he reconnects, gets it again, shows it once.
        _ = await bob.log.next(after: mark) { if case .connection(.waiting) = $0 { true } else { false } }
        _ = await bob.log.next(after: mark) { $0 == .connection(.online) }
        await alice.waitTick(id, .delivered)
        let marker = try await alice.client.send("marker", to: "bob")
        _ = await bob.waitMessage(from: "alice", "marker")
        #expect(await bob.log.messages(from: "alice").map(\.body) == ["warm up", "once", "marker"])
        #expect(try bob.store.messages(in: "alice", before: nil, limit: 10).map(\.body) == ["warm up", "once", "marker"])
        await alice.waitTick(marker, .delivered)
        await alice.client.stop()
        await bob.client.stop()
        await relay.finish()
    }
}
