import Foundation
import Testing

/// `hush` as a person runs it: the demo, and two `hush chat` screens under tmux.
@Suite(.serialized) struct CommandTests {
    /// `hush demo` passes (exit 0) and leaves no temporary folder behind.
    @Test func demoExitsZero() async throws {
        try #require(FileManager.default.fileExists(atPath: Binaries.hush.path),
                     "build it first: swift build --package-path Messenger --product hush")
        let tmp = FileManager.default.temporaryDirectory
        func demoFolders() -> Set<String> {
            Set(((try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []).filter { $0.hasPrefix("hush-demo-") })
        }
        let before = demoFolders()
        let result = try await run(Binaries.hush, ["demo", "--plain"], timeout: .seconds(120))
        #expect(result.status == 0, "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
        #expect(result.stdout.contains("demo passed in "))
        #expect(result.stdout.contains("✓✓ read"))
        // A photo sent and received (digest checked), and sealed sender.
        #expect(result.stdout.contains("every chunk checked, decrypted into"))
        #expect(result.stdout.contains("the relay's queue names bob and no sender"))
        #expect(result.stdout.contains("SealedSend on an anonymous connection"))
        // A three-member group, one MultiSend, a member removed.
        #expect(result.stdout.contains("one MultiSend of"))
        #expect(result.stdout.contains("reaches bob (✓✓), not carol"))
        #expect(!result.stdout.contains("\u{1B}["))
        #expect(demoFolders() == before)
    }

    /// The one-shot commands: send (✓), inbox (fetches, unread count), contacts, verify (the same
    /// safety number on both sides), a passphrase store, a wrong passphrase refused.
    @Test func sendInboxContactsVerify() async throws {
        try #require(FileManager.default.fileExists(atPath: Binaries.hush.path),
                     "build it first: swift build --package-path Messenger --product hush")
        try #require(FileManager.default.fileExists(atPath: Binaries.relay.path),
                     "build it first: swift build --package-path Messenger --product hush-relay")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-cmd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let relay = try RelayChild(dataDir: dir.appendingPathComponent("relay"))
        defer {
            relay.stop()
            try? FileManager.default.removeItem(at: dir)
        }
        try await relay.ready()
        let url = "ws://127.0.0.1:\(relay.port)"
        let alice = ["--home", dir.appendingPathComponent("alice").path]
        let bob = ["--home", dir.appendingPathComponent("bob").path]
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        var bobEnv = env
        bobEnv["HUSH_PASSPHRASE"] = "bob's passphrase"
        func hush(_ args: [String], _ environment: [String: String]) async throws -> Finished {
            try await run(Binaries.hush, args, environment: environment, timeout: .seconds(60))
        }

        let a = try await hush(["init", "--relay", url, "--name", "alice", "--key-file", dir.appendingPathComponent("a.key").path] + alice, env)
        #expect(a.status == 0, "\(a.stdout)\(a.stderr)")
        let b = try await hush(["init", "--relay", url, "--name", "bob", "--kdf", "interactive"] + bob, bobEnv)
        #expect(b.status == 0, "\(b.stdout)\(b.stderr)")

        let sent = try await hush(["send", "bob", "Hi Bob, from the command line"] + alice, env)
        #expect(sent.status == 0, "\(sent.stdout)\(sent.stderr)")
        #expect(sent.stdout.hasPrefix("✓ to bob: Hi Bob, from the command line"))

        let nobody = try await hush(["send", "nobody", "hello?"] + alice, env)
        #expect(nobody.status == 1)
        #expect(nobody.stderr == "hush: there is no account named nobody on this relay\n")

        var wrong = bobEnv
        wrong["HUSH_PASSPHRASE"] = "not bob's"
        let refused = try await hush(["inbox"] + bob, wrong)
        #expect(refused.status == 1)
        #expect(refused.stderr == "hush: wrong passphrase (or key file) for this store\n")

        let inbox = try await hush(["inbox"] + bob, bobEnv)
        #expect(inbox.status == 0, "\(inbox.stdout)\(inbox.stderr)")
        #expect(inbox.stdout.hasPrefix("alice (1 unread)\n"))
        #expect(inbox.stdout.contains(" alice: Hi Bob, from the command line\n"))

        let contacts = try await hush(["contacts"] + bob, bobEnv)
        #expect(contacts.stdout == "alice  1 unread\n", "\(contacts.stderr)")

        let va = try await hush(["verify", "bob"] + alice, env)
        let vb = try await hush(["verify", "alice"] + bob, bobEnv)
        #expect(va.status == 0 && vb.status == 0, "\(va.stderr)\(vb.stderr)")
        let number = { (s: String) in s.split(separator: "\n").dropFirst().first.map { String($0).trimmingCharacters(in: .whitespaces) } }
        #expect(number(va.stdout) != nil && number(va.stdout) == number(vb.stdout))
        #expect(number(va.stdout)?.count == 71)
        #expect(va.stdout.contains("\nsession: PQXDH (post-quantum)\n") && vb.stdout.contains("\nsession: PQXDH (post-quantum)\n"))

        // alice's inbox now shows ✓✓ for her message (bob's inbox fetched it).
        let aliceInbox = try await hush(["inbox"] + alice, env)
        #expect(aliceInbox.stdout.contains("you: Hi Bob, from the command line ✓✓"), "\(aliceInbox.stdout)\(aliceInbox.stderr)")

        let settings = try await hush(["settings", "--read-receipts", "off", "--presence", "contacts:alice"] + bob, bobEnv)
        #expect(settings.status == 0, "\(settings.stderr)")
        #expect(settings.stdout == "read receipts: off\n")
        #expect(try await hush(["settings"] + bob, bobEnv).stdout == "read receipts: off\n")

        let again = try await hush(["init", "--relay", url, "--name", "alice"] + alice, env)
        #expect(again.status == 1)
        #expect(again.stderr.contains("already holds a Hush account"))

        // A name someone else registered: refused, and the new home is left empty (init can be retried).
        let other = dir.appendingPathComponent("other")
        let taken = try await hush(["init", "--relay", url, "--name", "alice", "--home", other.path,
                                    "--key-file", dir.appendingPathComponent("o.key").path], env)
        #expect(taken.status == 1)
        #expect(taken.stderr == "hush: relay: the name alice is taken on this relay\n")
        #expect(!FileManager.default.fileExists(atPath: other.appendingPathComponent("config.json").path))
        #expect(!FileManager.default.fileExists(atPath: other.appendingPathComponent("store.sqlite").path))
    }

    /// `hush group`: create, send, inbox with the group's name and the sender of each message,
    /// remove a member (who no longer gets messages), list, leave.
    @Test func groupsFromTheCommandLine() async throws {
        try #require(FileManager.default.fileExists(atPath: Binaries.hush.path),
                     "build it first: swift build --package-path Messenger --product hush")
        try #require(FileManager.default.fileExists(atPath: Binaries.relay.path),
                     "build it first: swift build --package-path Messenger --product hush-relay")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-group-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let relay = try RelayChild(dataDir: dir.appendingPathComponent("relay"))
        defer {
            relay.stop()
            try? FileManager.default.removeItem(at: dir)
        }
        try await relay.ready()
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        func home(_ name: String) -> [String] {
            ["--home", dir.appendingPathComponent(name).path, "--key-file", dir.appendingPathComponent("\(name).key").path]
        }
        func hush(_ args: [String]) async throws -> Finished {
            try await run(Binaries.hush, args, environment: env, timeout: .seconds(60))
        }
        for name in ["alice", "bob", "carol"] {
            let r = try await hush(["init", "--relay", "ws://127.0.0.1:\(relay.port)", "--name", name] + home(name))
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        }
        let created = try await hush(["group", "create", "trip", "bob", "carol"] + home("alice"))
        #expect(created.status == 0, "\(created.stderr)")
        let id = try #require(created.stdout.firstRange(of: "#").map { String(created.stdout[$0.lowerBound...].prefix(33)) })
        #expect(created.stdout == "created trip (\(id)): alice (admin), bob, carol\n")
        let sent = try await hush(["group", "send", "trip", "hello group"] + home("alice"))
        #expect(sent.stdout == "✓ to trip: hello group\n", "\(sent.stderr)")
        for name in ["bob", "carol"] {
            let inbox = try await hush(["inbox"] + home(name))
            #expect(inbox.stdout.hasPrefix("trip (\(id)) (1 unread)\n"), "\(inbox.stdout)\(inbox.stderr)")
            #expect(inbox.stdout.contains(" alice: hello group\n"))
        }
        let notAdmin = try await hush(["group", "remove", String(id.dropFirst()), "alice"] + home("bob"))
        #expect(notAdmin.status == 1)
        #expect(notAdmin.stderr.contains("admin"), "\(notAdmin.stderr)")
        let removed = try await hush(["group", "remove", id, "carol"] + home("alice"))
        #expect(removed.stdout == "trip (\(id)): alice (admin), bob\n", "\(removed.stderr)")
        _ = try await hush(["group", "send", "trip", "without carol"] + home("alice"))
        let bobInbox = try await hush(["inbox"] + home("bob"))
        #expect(bobInbox.stdout.contains(" alice: without carol\n"), "\(bobInbox.stdout)")
        let carolInbox = try await hush(["inbox"] + home("carol"))
        #expect(!carolInbox.stdout.contains("without carol"))
        let carolList = try await hush(["group", "list"] + home("carol"))
        #expect(carolList.stdout == "trip (\(id)): alice (admin), bob  — you are no longer a member\n", "\(carolList.stderr)")
        let left = try await hush(["group", "leave", "trip"] + home("bob"))
        #expect(left.stdout == "left trip (\(id))\n", "\(left.stderr)")
        let unknown = try await hush(["group", "send", "nosuch", "x"] + home("alice"))
        #expect(unknown.status == 1 && unknown.stderr == "hush: no group nosuch here (hush group list)\n", "\(unknown.stderr)")
    }

    /// Two terminals: alice and bob each run `hush chat` in a tmux session; what one types shows
    /// in the other, and the sender's screen shows ✓✓ then read (blue ✓✓ in colour, "✓✓ read"
    /// with --plain); "typing…" shows while the other types.
    @Test func chatUnderTmux() async throws {
        try #require(FileManager.default.fileExists(atPath: Binaries.hush.path),
                     "build it first: swift build --package-path Messenger --product hush")
        try #require(FileManager.default.fileExists(atPath: Binaries.relay.path),
                     "build it first: swift build --package-path Messenger --product hush-relay")
        let tmux = try #require(Binaries.tmux, "tmux is needed (apt-get install tmux)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-tmux-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let socket = dir.appendingPathComponent("tmux.sock").path
        let relays = Relays(try RelayChild(dataDir: dir.appendingPathComponent("relay")))
        let screens = TmuxScreens(tmux: tmux, socket: socket)
        do {
            try await chatSteps(screens, dir: dir, relays: relays)
        } catch {
            Issue.record("the chat steps stopped: \(error)")
        }
        // The chats end with the tmux server, the relay on SIGTERM.
        await screens.killAll()
        relays.current.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    /// The relay process of the moment (the test restarts it).
    final class Relays: @unchecked Sendable {
        var current: RelayChild
        init(_ r: RelayChild) { current = r }
    }

    func chatSteps(_ screens: TmuxScreens, dir: URL, relays: Relays) async throws {
        let relay = relays.current
        try await relay.ready()
        let url = "ws://127.0.0.1:\(relay.port)"

        // alice pins the trust root on first contact; bob is given it (the relay's file).
        let a = try await run(Binaries.hush, ["init", "--home", dir.appendingPathComponent("alice").path, "--relay", url,
                                              "--name", "alice", "--key-file", dir.appendingPathComponent("alice.key").path])
        #expect(a.status == 0, "\(a.stdout)\(a.stderr)")
        let pinned = try String(contentsOf: dir.appendingPathComponent("relay/trust-root.pub"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(a.stdout.contains("trust root: \(pinned)"))
        let b = try await run(Binaries.hush, ["init", "--home", dir.appendingPathComponent("bob").path, "--relay", url, "--name", "bob",
                                              "--key-file", dir.appendingPathComponent("bob.key").path,
                                              "--trust-root", dir.appendingPathComponent("relay/trust-root.pub").path])
        #expect(b.status == 0, "\(b.stdout)\(b.stderr)")
        try #require(a.status == 0 && b.status == 0)

        func chat(_ session: String, _ me: String, _ peer: String, _ extra: String) async throws {
            try await screens.start(session, "TERM=xterm-256color exec \(Binaries.hush.path) chat \(peer) --home \(dir.appendingPathComponent(me).path) \(extra)")
        }
        try await chat("alice", "alice", "bob", "--color")
        try await chat("bob", "bob", "alice", "--plain")
        try await screens.waitFor("alice", "relay online")
        try await screens.waitFor("bob", "relay online")
        try await screens.waitFor("alice", "bob: online")
        try await screens.waitFor("bob", "alice: online")

        // alice → bob: it shows on bob's screen; alice's goes ✓✓, then blue ✓✓ (bob has the chat open).
        try await screens.type("alice", "Hello from alice")
        let bobScreen = try await screens.waitFor("bob", "alice: Hello from alice")
        #expect(bobScreen.contains("hush · bob ⇄ alice"))
        try await screens.waitFor("alice", "you: Hello from alice ✓✓")
        try await screens.waitFor("alice", "you: Hello from alice \u{1B}[34m✓✓", escapes: true)

        // bob types: alice sees "bob: typing…"; bob's reply goes ✓✓ read (plain text) once alice has it.
        try await screens.run(["send-keys", "-t", "bob", "-l", "Hi alice"])
        try await screens.waitFor("alice", "bob: typing…")
        try await screens.run(["send-keys", "-t", "bob", "Enter"])
        try await screens.waitFor("alice", "bob: Hi alice")
        try await screens.waitFor("bob", "you: Hi alice ✓✓ read")
        try await screens.waitFor("alice", "bob: online")

        // The relay restarts (SIGTERM, then the same data on the same port): both chats say so,
        // reconnect by themselves and carry on.
        relay.stop()
        try await screens.waitFor("alice", "relay offline")
        // Typed while the relay is down: pending (…) in the outbox.
        try await screens.type("alice", "Typed while the relay was down")
        try await screens.waitFor("alice", "you: Typed while the relay was down …")
        relays.current = try RelayChild(dataDir: dir.appendingPathComponent("relay"), port: relay.port)
        try await relays.current.ready()
        try await screens.waitFor("alice", "relay online")
        try await screens.waitFor("bob", "relay online")
        try await screens.waitFor("bob", "alice: Typed while the relay was down")
        try await screens.type("alice", "Still there after the restart?")
        try await screens.waitFor("bob", "alice: Still there after the restart?")
        try await screens.waitFor("alice", "you: Still there after the restart? \u{1B}[34m✓✓", escapes: true)

        // Ctrl-C leaves the chat cleanly (the session ends with the process).
        try await screens.run(["send-keys", "-t", "bob", "C-c"])
        try await screens.waitFor("alice", "bob: last seen")
    }

    /// `hush link` on a new home and `hush devices link CODE` on the account's first device (two
    /// `hush` processes, one `hush-relay`): both list devices 1 and 2; a garbled code and a
    /// linked device removing device 1 are refused; device 1 removes device 2, which then cannot
    /// connect.
    @Test func linkListAndRemoveDevicesFromTheCommandLine() async throws {
        try #require(FileManager.default.fileExists(atPath: Binaries.hush.path),
                     "build it first: swift build --package-path Messenger --product hush")
        try #require(FileManager.default.fileExists(atPath: Binaries.relay.path),
                     "build it first: swift build --package-path Messenger --product hush-relay")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-link-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let relay = try RelayChild(dataDir: dir.appendingPathComponent("relay"))
        defer {
            relay.stop()
            try? FileManager.default.removeItem(at: dir)
        }
        try await relay.ready()
        let url = "ws://127.0.0.1:\(relay.port)"
        let first = ["--home", dir.appendingPathComponent("alice").path, "--key-file", dir.appendingPathComponent("a.key").path]
        let second = ["--home", dir.appendingPathComponent("alice-laptop").path, "--key-file", dir.appendingPathComponent("b.key").path]
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        func hush(_ args: [String]) async throws -> Finished {
            try await run(Binaries.hush, args, environment: env, timeout: .seconds(60))
        }
        let a = try await hush(["init", "--relay", url, "--name", "alice"] + first)
        #expect(a.status == 0, "\(a.stdout)\(a.stderr)")

        let codeFile = dir.appendingPathComponent("code.txt").path
        let linkEnv = env
        async let linking = run(Binaries.hush, ["link", "--relay", url, "--code-file", codeFile, "--timeout", "50"] + second,
                                environment: linkEnv, timeout: .seconds(60))
        // Wait for the new device's code (it writes the file once the relay gave it an address).
        var code = ""
        for _ in 0..<2_500 where code.isEmpty {
            code = ((try? String(contentsOfFile: codeFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if code.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        }
        try #require(code.hasPrefix("hush-link:") && code.count == 81, "no code: \(code)")

        let garbled = try await hush(["devices", "link", "hush-link:abc"] + first)
        #expect(garbled.status == 1)
        #expect(garbled.stderr == "hush: not a link code: the part after hush-link: has 3 characters, not 71\n")
        var typo = Array(code)
        typo[50] = typo[50] == "A" ? "B" : "A"
        let mistyped = try await hush(["devices", "link", String(typo)] + first)
        #expect(mistyped.stderr == "hush: not a link code: a character is wrong (check failed)\n")

        let added = try await hush(["devices", "link", code] + first)
        #expect(added.status == 0, "\(added.stdout)\(added.stderr)")
        #expect(added.stdout == "linked device 2 to alice\n")
        let linked = try await linking
        #expect(linked.status == 0, "\(linked.stdout)\(linked.stderr)")
        #expect(linked.stdout.contains("link code: \(code)\n"))
        #expect(linked.stdout.hasSuffix("linked: alice device 2 is registered on \(url)/v1/ws (home \(dir.appendingPathComponent("alice-laptop").path))\n"))
        let reused = try await hush(["devices", "link", code] + first)
        #expect(reused.stderr == "hush: no device is waiting with this code (expired, already used, or its `hush link` stopped)\n")

        let listed1 = try await hush(["devices"] + first)
        let listed2 = try await hush(["devices", "list"] + second)
        #expect(listed1.status == 0 && listed2.status == 0, "\(listed1.stderr)\(listed2.stderr)")
        let lines1 = listed1.stdout.split(separator: "\n").map(String.init)
        let lines2 = listed2.stdout.split(separator: "\n").map(String.init)
        #expect(lines1.count == 2 && lines2.count == 2, "\(listed1.stdout)\(listed2.stdout)")
        #expect(lines1.first?.hasPrefix("device 1 (primary) (this device)  key ") == true)
        #expect(lines1.last?.hasPrefix("device 2  key ") == true)
        #expect(lines2.first?.hasPrefix("device 1 (primary)  key ") == true)
        #expect(lines2.last?.hasPrefix("device 2 (this device)  key ") == true)
        // The same keys seen from both devices.
        let key = { (l: String?) in l?.components(separatedBy: "key ").last }
        #expect(key(lines1.first) == key(lines2.first) && key(lines1.last) == key(lines2.last))

        let forbidden = try await hush(["devices", "remove", "1"] + second)
        #expect(forbidden.status == 1)
        #expect(forbidden.stderr == "hush: only device 1 removes other devices; another device can remove only itself\n")
        let nobody = try await hush(["devices", "remove", "7"] + first)
        #expect(nobody.stderr == "hush: this account has no device 7 (hush devices)\n")

        let removed = try await hush(["devices", "remove", "2"] + first)
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(removed.stdout == "removed device 2 from alice\n")
        #expect(try await hush(["devices"] + first).stdout.split(separator: "\n").count == 1)
        let gone = try await hush(["devices"] + second)
        #expect(gone.status == 1)
        #expect(gone.stderr == "hush: this device was removed from the account alice (hush devices remove): it cannot connect again\n")
        let help = try await hush(["devices", "--help"])
        #expect(help.stdout.contains("link") && help.stdout.contains("remove") && help.stdout.contains("list"))
    }

}

