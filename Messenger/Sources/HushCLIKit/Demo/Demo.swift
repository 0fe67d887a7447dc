import Foundation
import Hush
import HushClient

/// Everything a client reported, for the demo's waits.
actor EventLog {
    private(set) var events: [ClientEvent] = []
    private var task: Task<Void, Never>?

    /// Records `client`'s events until ``stop()``.
    func follow(_ client: HushClient) {
        task = Task { [weak self] in
            for await e in client.events { await self?.append(e) }
        }
    }

    func append(_ e: ClientEvent) { events.append(e) }
    func stop() { task?.cancel() }
    var count: Int { events.count }

    /// Waits for an event after index `since` that `match` accepts.
    func first(since: Int, _ match: @Sendable (ClientEvent) -> Bool) -> ClientEvent? {
        events.dropFirst(since).first(where: match)
    }
}

/// `hush demo`: a relay in this process on a free loopback port with its data in a temporary
/// folder, two users with encrypted stores there too, and a scripted conversation that goes
/// through every tick — ✓ (the relay has it), ✓✓ (bob's device has it), read (bob opened the
/// chat) — with bob offline and coming back, and the relay restarted in the middle. Every step
/// is awaited with a timeout; the first one that does not happen ends the demo with its name.
/// The temporary folder is removed and nothing keeps running afterwards.
public struct Demo {
    /// Each step's limit.
    public var stepTimeout: Duration = .seconds(10)
    public var style: TerminalStyle
    public var timeZone: TimeZone
    /// Where lines go.
    public var output: @Sendable (String) -> Void

    public init(style: TerminalStyle, timeZone: TimeZone = .current, output: @escaping @Sendable (String) -> Void) {
        self.style = style
        self.timeZone = timeZone
        self.output = output
    }

    /// Runs the demo; throws the first failure (after cleaning up).
    public func run() async throws {
        let started = ContinuousClock.now
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hush-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var accounts: [Account] = []
        var logs: [EventLog] = []
        var relay: EmbeddedRelay?
        do {
            try await script(root: root, relay: &relay, accounts: &accounts, logs: &logs)
        } catch {
            await cleanUp(root: root, relay: relay, accounts: accounts, logs: logs)
            throw error
        }
        await cleanUp(root: root, relay: relay, accounts: accounts, logs: logs)
        let elapsed = ContinuousClock.now - started
        output("")
        output("demo passed in \(String(format: "%.1f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)) s; temporary data removed.")
    }

    private func cleanUp(root: URL, relay: EmbeddedRelay?, accounts: [Account], logs: [EventLog]) async {
        for a in accounts { await a.close() }
        for l in logs { await l.stop() }
        await relay?.stop()
        // A store's last write (a WAL checkpoint, a last-seen update) may still be landing while
        // the tree is removed, which makes one removal fail ("directory not empty"): retry, bounded.
        for _ in 0..<100 {
            try? FileManager.default.removeItem(at: root)
            if !FileManager.default.fileExists(atPath: root.path) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        output("warning: could not remove \(root.path)")
    }

    func step(_ text: String) { output("  ✔ " + text) }

    private func line(_ m: StoredMessage, viewer: String) -> String {
        MessageLine.render(m, style: style, timeZone: timeZone).joined(separator: "\n")
    }

    private func script(root: URL, relay relayOut: inout EmbeddedRelay?, accounts: inout [Account], logs: inout [EventLog]) async throws {
        let limit = stepTimeout
        output("hush demo: a relay on loopback, alice and bob, one conversation, a photo, sealed sender, a group of three, a second device")
        output("")

        // 1. The relay.
        let relayData = root.appendingPathComponent("relay")
        try FileManager.default.createDirectory(at: relayData, withIntermediateDirectories: true)
        let relay = try EmbeddedRelay(dataDirectory: relayData)
        relayOut = relay
        try await relay.start()
        let address = RelayAddress(host: "127.0.0.1", port: relay.port)
        step("relay listening on \(address) (keys and SQLite queue in a temporary folder)")

        // 2. Two users, each a home with an encrypted store unlocked by a key file.
        func makeUser(_ name: String) throws -> Account {
            let keyFile = root.appendingPathComponent("\(name).key").path
            try SecretMaterial.createKeyFile(at: keyFile)
            return try Account.create(home: HushHome(directory: root.appendingPathComponent(name)), relay: address, name: name,
                                      trustRoot: relay.trustRoot, secret: try SecretMaterial.load(.keyFile(keyFile)),
                                      keyFile: keyFile, tune: Self.tune)
        }
        let alice = try makeUser("alice")
        accounts.append(alice)
        var bob = try makeUser("bob")
        accounts.append(bob)
        let aliceLog = EventLog(), bobLog0 = EventLog()
        logs += [aliceLog, bobLog0]
        await aliceLog.follow(alice.client)
        await bobLog0.follow(bob.client)
        try await alice.connect(timeout: limit)
        try await bob.connect(timeout: limit)
        step("alice and bob registered: identity keys, signed prekey, 100 one-time prekeys, sender certificates")

        try await alice.client.subscribePresence(["bob"])
        try await waitEvent(aliceLog, since: 0, "alice to see bob online") {
            if case .presence(let p) = $0 { return p.account == "bob" && p.online }
            return false
        }
        step("alice sees bob online")

        // 3. ✓, ✓✓, read.
        let hi = "Hi Bob! Are you around?"
        var mark = await aliceLog.count
        let first = try await alice.client.send(hi, to: "bob")
        try await waitState(alice, first, .sent, "✓ (the relay has alice's first message)")
        try await waitState(alice, first, .delivered, "✓✓ (bob's device decrypted it)")
        let ticks = await tickSequence(aliceLog, first, since: mark)
        step("alice → bob \"\(hi)\": ticks seen by alice, in order: \(ticks)")
        try await waitIncoming(bob, from: "alice", count: 1, "bob to receive it")
        _ = try await bob.client.markRead("alice")
        try await waitState(alice, first, .read, "read (bob opened the conversation)")
        step("bob opens the chat: alice's message turns read, \(TickMark.mark(.read, style: style))")

        // 4. Typing, then a reply, read by alice.
        mark = await aliceLog.count
        guard await bob.client.setTyping(true, to: "alice") else { throw CLIError.failed("bob could not send a typing indicator") }
        try await waitEvent(aliceLog, since: mark, "alice to see \"bob: typing…\"") {
            if case .typing(let who, let on, _) = $0 { return who == "bob" && on }
            return false
        }
        step("alice sees \"bob: typing…\" (ephemeral: sent only because both are online)")
        let reply = "Yes! Just a minute, my battery is dying."
        let second = try await bob.client.send(reply, to: "alice")
        _ = await bob.client.setTyping(false, to: "alice")
        try await waitIncoming(alice, from: "bob", count: 1, "alice to receive bob's reply")
        _ = try await alice.client.markRead("bob")
        try await waitState(bob, second, .read, "bob's reply to be read by alice")
        step("bob → alice \"\(reply)\": ✓, ✓✓, then read when alice reads it")

        // 5. Bob goes offline.
        mark = await aliceLog.count
        await bob.close()
        accounts.removeAll { $0 === bob }
        await bobLog0.stop()
        try await waitEvent(aliceLog, since: mark, "alice to see bob offline") {
            if case .presence(let p) = $0 { return p.account == "bob" && !p.online }
            return false
        }
        step("bob's phone dies (client stopped): alice sees \"bob: last seen …\"")
        let third = try await alice.client.send("Call me when you're back.", to: "bob")
        try await waitState(alice, third, .sent, "✓ for a message to offline bob")
        guard try alice.store.message(third)?.state == .sent else { throw CLIError.failed("a message to offline bob got past ✓") }
        step("alice → bob \"Call me when you're back.\": ✓ only (queued at the relay, bob is offline)")
        // Alice holds bob's access key since his reply: the queued rows (this message, perhaps a
        // receipt) name bob, and no sender.
        let queued = try await relay.queuedSenders(account: "bob")
        guard !queued.isEmpty, queued.allSatisfy({ $0 == "*bob" }) else { throw CLIError.failed("the relay's queue for bob names a sender: \(queued)") }
        step("sealed sender: it went over an anonymous connection; the relay's queue names bob and no sender")

        // 6. The relay restarts.
        mark = await aliceLog.count
        try await relay.restart()
        try await waitEvent(aliceLog, since: mark, "alice to reconnect after the relay restart") { $0 == .connection(.online) }
        step("relay restarted on the same port: alice reconnected by herself (backoff with jitter)")
        let fourth = try await alice.client.send("(the relay restarted, this one is queued too)", to: "bob")
        try await waitState(alice, fourth, .sent, "✓ after the restart")
        step("alice → bob another message: ✓")

        // 7. Bob comes back: the same store, a new process's client.
        bob = try Account.open(home: HushHome(directory: root.appendingPathComponent("bob")),
                               secret: try SecretMaterial.load(.keyFile(root.appendingPathComponent("bob.key").path)), tune: Self.tune)
        accounts.append(bob)
        let bobLog = EventLog()
        logs.append(bobLog)
        await bobLog.follow(bob.client)
        try await bob.connect(timeout: limit)
        try await waitIncoming(bob, from: "alice", count: 3, "bob to receive what was queued while he was away")
        let texts = try bob.store.messages(in: "alice", before: nil, limit: 10).filter { $0.direction == .incoming }.map(\.body)
        guard texts == [hi, "Call me when you're back.", "(the relay restarted, this one is queued too)"] else {
            throw CLIError.failed("bob's messages from alice are not the three sent, in order: \(texts)")
        }
        try await waitState(alice, third, .delivered, "✓✓ once bob is back")
        try await waitState(alice, fourth, .delivered, "✓✓ for the message sent after the restart")
        step("bob is back (store reopened): both queued messages arrive in order, alice sees ✓✓")
        _ = try await bob.client.markRead("alice")
        try await waitState(alice, third, .read, "read once bob opens the chat")
        try await waitState(alice, fourth, .read, "read for the second queued message")
        step("bob reads them: \(TickMark.mark(.read, style: style)) (one read receipt covers both)")
        try await alice.flush(timeout: limit)
        try await bob.flush(timeout: limit)

        // 8. A photo (Docs/spec/media.md): encrypted, uploaded, a pointer sent, downloaded and checked.
        try await photo(from: alice, to: bob, root: root)

        // 9. A sealed message (Docs/spec/relay.md §20), counted at the relay.
        try await sealedMessage(from: alice, to: bob, relay: relay)

        // 10. A group of three, one member removed (Docs/spec/client.md §6).
        let carol = try makeUser("carol")
        accounts.append(carol)
        let carolLog = EventLog()
        logs.append(carolLog)
        await carolLog.follow(carol.client)
        try await carol.connect(timeout: limit)
        try await group(alice: alice, bob: bob, carol: carol, aliceLog: aliceLog, relay: relay)

        // 11. A second device for alice (Docs/spec/client.md §7), with a sync transcript.
        let laptop = try await secondDevice(alice: alice, bob: bob, root: root, relay: relay, address: address)
        accounts.append(laptop)

        // 12. The conversation as each sees it.
        for (who, account, peer) in [("alice", alice, "bob"), ("bob", bob, "alice")] {
            output("")
            output("\(who)'s screen:")
            for m in try account.store.messages(in: peer, before: nil, limit: 50) {
                for l in MessageLine.render(m, style: style, timeZone: timeZone) { output("    " + l) }
            }
        }
        guard let safety = try await alice.client.safetyNumber(with: "bob"),
              try await bob.client.safetyNumber(with: "alice") == safety else {
            throw CLIError.failed("alice and bob do not see the same safety number")
        }
        output("")
        output("safety number (the same on both sides): \(safety)")
        // Both sides' session with the other was set up with PQXDH (the default policy requires it).
        guard try await alice.client.sessionEstablishment(with: "bob") == .pqxdh,
              try await bob.client.sessionEstablishment(with: "alice") == .pqxdh else {
            throw CLIError.failed("the session was not set up with PQXDH")
        }
        output("session: PQXDH (post-quantum), on both sides")
    }

    /// The demo's clients retry fast (the relay restart).
    static func tune(_ c: inout ClientConfiguration) {
        c.backoff = Backoff(base: .milliseconds(50), maximum: .milliseconds(500))
        c.requestTimeout = .seconds(5)
    }

    func waitEvent(_ log: EventLog, since: Int, _ what: String, _ match: @escaping @Sendable (ClientEvent) -> Bool) async throws {
        try await waitUntil(what, timeout: stepTimeout) { await log.first(since: since, match) != nil }
    }

    func waitState(_ account: Account, _ id: MessageID, _ state: TickState, _ what: String) async throws {
        let store = account.store
        try await waitUntil(what, timeout: stepTimeout) { (try store.message(id)?.state ?? .pending) >= state }
    }

    func waitIncoming(_ account: Account, from peer: String, count: Int, _ what: String) async throws {
        let store = account.store
        try await waitUntil(what, timeout: stepTimeout) {
            try store.messages(in: peer, before: nil, limit: 100).filter { $0.direction == .incoming }.count >= count
        }
    }

    /// The ticks `log` reported for `id` since `since`, as marks.
    private func tickSequence(_ log: EventLog, _ id: MessageID, since: Int) async -> String {
        let seen = await log.events.dropFirst(since).compactMap { e -> TickState? in
            if case .tick(let i, let s) = e, i == id { return s }
            return nil
        }
        return seen.map { TickMark.mark($0, style: style) }.joined(separator: " then ")
    }
}
