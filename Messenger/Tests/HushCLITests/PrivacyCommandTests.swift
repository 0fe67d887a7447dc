import Foundation
import Testing

/// `hush verify NAME --approve` after a contact's identity changed, and `hush settings
/// --read-receipts off` seen from the other side, end to end with the real executables.
extension CommandTests {
    /// bob reinstalls with a new identity (the relay lost its data, keys kept): alice's contacts
    /// flag it, sending to him is refused until she compares and approves, then works again.
    @Test func verifyApproveAcceptsAChangedIdentity() async throws {
        try #require(FileManager.default.fileExists(atPath: Binaries.hush.path),
                     "build it first: swift build --package-path Messenger --product hush")
        try #require(FileManager.default.fileExists(atPath: Binaries.relay.path),
                     "build it first: swift build --package-path Messenger --product hush-relay")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-verify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let relayDir = dir.appendingPathComponent("relay")
        let relays = Relays(try RelayChild(dataDir: relayDir))
        defer {
            relays.current.stop()
            try? FileManager.default.removeItem(at: dir)
        }
        try await relays.current.ready()
        let port = relays.current.port
        let url = "ws://127.0.0.1:\(port)"
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        func hush(_ args: [String]) async throws -> Finished {
            try await run(Binaries.hush, args, environment: env, timeout: .seconds(60))
        }
        let alice = ["--home", dir.appendingPathComponent("alice").path]
        let bob = ["--home", dir.appendingPathComponent("bob").path]
        func initBob() async throws -> Finished {
            try await hush(["init", "--relay", url, "--name", "bob", "--key-file", dir.appendingPathComponent("bob.key").path] + bob)
        }

        let a = try await hush(["init", "--relay", url, "--name", "alice", "--key-file", dir.appendingPathComponent("alice.key").path] + alice)
        let b = try await initBob()
        try #require(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        let first = try await hush(["send", "bob", "before"] + alice)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try await hush(["inbox"] + bob).stdout.contains(" alice: before\n"))

        // The relay loses its data (same keys, same port); bob reinstalls: a new identity key.
        relays.current.stop()
        for name in try FileManager.default.contentsOfDirectory(atPath: relayDir.path) where name.contains(".sqlite") {
            try FileManager.default.removeItem(at: relayDir.appendingPathComponent(name))
        }
        relays.current = try RelayChild(dataDir: relayDir, port: port)
        try await relays.current.ready()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("bob"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("bob.key"))
        let again = try await initBob()
        try #require(again.status == 0, "\(again.stderr)")
        // alice's device registers again by itself; new bob writes to her.
        let reconnect = try await hush(["inbox"] + alice)
        #expect(reconnect.status == 0, "\(reconnect.stderr)")
        let newPhone = try await hush(["send", "alice", "new phone"] + bob)
        #expect(newPhone.status == 0, "\(newPhone.stderr)")
        let inbox = try await hush(["inbox"] + alice)
        #expect(inbox.stdout.contains(" bob: new phone\n"), "\(inbox.stdout)\(inbox.stderr)")

        let contacts = try await hush(["contacts"] + alice)
        #expect(contacts.stdout.contains("bob") && contacts.stdout.contains("IDENTITY CHANGED (hush verify bob)"), "\(contacts.stdout)")
        let blocked = try await hush(["send", "bob", "are you really bob?"] + alice)
        #expect(blocked.status == 1)
        #expect(blocked.stderr == "hush: bob's identity key changed: compare safety numbers with `hush verify bob`, then `hush verify bob --approve`\n")

        let number = { (s: String) in s.split(separator: "\n").dropFirst().first.map { String($0).trimmingCharacters(in: .whitespaces) } }
        let shown = try await hush(["verify", "bob"] + alice)
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("bob's identity key CHANGED"))
        #expect(shown.stdout.hasSuffix("  hush verify bob --approve\n"))
        let theirs = try await hush(["verify", "alice"] + bob)
        #expect(number(shown.stdout) != nil && number(shown.stdout) == number(theirs.stdout))

        let approved = try await hush(["verify", "bob", "--approve"] + alice)
        #expect(approved.status == 0, "\(approved.stderr)")
        #expect(approved.stdout.hasSuffix("bob's new identity is approved: sending works again\n"))
        #expect(number(approved.stdout) == number(theirs.stdout))
        #expect(try await hush(["contacts"] + alice).stdout == "bob  1 unread\n")
        let after = try await hush(["verify", "bob"] + alice)
        #expect(after.stdout.hasSuffix("compare it with the number bob sees; they must be equal\n"))

        let welcome = try await hush(["send", "bob", "welcome back"] + alice)
        #expect(welcome.status == 0, "\(welcome.stderr)")
        #expect(welcome.stdout.hasPrefix("✓ to bob: welcome back"))
        #expect(try await hush(["inbox"] + bob).stdout.contains(" alice: welcome back\n"))
    }

    /// bob turns read receipts off: alice's messages reach ✓✓ but never read, although bob's
    /// chat has them on screen; bob's own messages never show read either (reciprocity).
    @Test func readReceiptsOffUnderTmux() async throws {
        try #require(FileManager.default.fileExists(atPath: Binaries.hush.path),
                     "build it first: swift build --package-path Messenger --product hush")
        try #require(FileManager.default.fileExists(atPath: Binaries.relay.path),
                     "build it first: swift build --package-path Messenger --product hush-relay")
        let tmux = try #require(Binaries.tmux, "tmux is needed (apt-get install tmux)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-receipts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let screens = TmuxScreens(tmux: tmux, socket: dir.appendingPathComponent("tmux.sock").path)
        let relay = try RelayChild(dataDir: dir.appendingPathComponent("relay"))
        do {
            try await receiptSteps(screens, dir: dir, relay: relay)
        } catch {
            Issue.record("the read-receipt steps stopped: \(error)")
        }
        await screens.killAll()
        relay.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    func receiptSteps(_ screens: TmuxScreens, dir: URL, relay: RelayChild) async throws {
        try await relay.ready()
        let url = "ws://127.0.0.1:\(relay.port)"
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        for name in ["alice", "bob"] {
            let r = try await run(Binaries.hush, ["init", "--home", dir.appendingPathComponent(name).path, "--relay", url, "--name", name,
                                                  "--key-file", dir.appendingPathComponent("\(name).key").path], environment: env)
            try #require(r.status == 0, "\(r.stdout)\(r.stderr)")
        }
        let off = try await run(Binaries.hush, ["settings", "--read-receipts", "off", "--home", dir.appendingPathComponent("bob").path],
                                environment: env)
        #expect(off.status == 0 && off.stdout == "read receipts: off\n", "\(off.stdout)\(off.stderr)")

        func chat(_ me: String, _ peer: String) async throws {
            try await screens.start(me, "TERM=xterm-256color exec \(Binaries.hush.path) chat \(peer) --home \(dir.appendingPathComponent(me).path) --plain")
        }

        try await chat("alice", "bob")
        try await chat("bob", "alice")
        try await screens.waitFor("alice", "bob: online")
        try await screens.waitFor("bob", "alice: online")

        // alice → bob, shown on bob's open chat (marked read there): ✓✓ for alice, no read.
        try await screens.type("alice", "Read this, bob")
        try await screens.waitFor("bob", "alice: Read this, bob")
        try await screens.waitFor("alice", "you: Read this, bob ✓✓")
        // bob answers after reading. His outbox sends in order per contact, so a read receipt,
        // had one been queued when he read, would reach alice before this reply.
        try await screens.type("bob", "I did")
        try await screens.waitFor("alice", "bob: I did")
        let aliceScreen = try await screens.waitFor("alice", "you: Read this, bob ✓✓")
        #expect(!aliceScreen.contains("you: Read this, bob ✓✓ read"), "\(aliceScreen)")
        // alice has receipts on and reads bob's reply; bob ignores read receipts: ✓✓, not read.
        try await screens.waitFor("bob", "you: I did ✓✓")
        try await screens.type("alice", "Good")
        try await screens.waitFor("bob", "alice: Good")
        let bobScreen = try await screens.waitFor("bob", "you: I did ✓✓")
        #expect(!bobScreen.contains("you: I did ✓✓ read"), "\(bobScreen)")
    }
}
