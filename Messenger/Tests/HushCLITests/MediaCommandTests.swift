import Foundation
import HushClient
import Testing
@testable import HushCLIKit

@Suite struct MediaCLITests {
    @Test func progressBarAndTypes() {
        #expect(MediaCLI.bar(MediaProgress(done: 3_100_000, total: 10_400_000), ascii: true) == "[#####---------------]  29%  3.1/10.4 MB")
        #expect(MediaCLI.bar(MediaProgress(done: 10, total: 10)) == "[████████████████████] 100%  0.0/0.0 MB")
        #expect(MediaCLI.contentType(forFileName: "Cat.JPG") == "image/jpeg")
        #expect(MediaCLI.contentType(forFileName: "notes") == "application/octet-stream")
    }

    /// `hush send bob --file photo.jpg` (progress bar on stderr) and bob's `hush inbox`, which
    /// saves the decrypted file under Media/Hush Images/ and shows the message.
    @Test func sendFileAndInboxSavesIt() async throws {
        try #require(FileManager.default.fileExists(atPath: Binaries.hush.path),
                     "build it first: swift build --package-path Messenger --product hush")
        try #require(FileManager.default.fileExists(atPath: Binaries.relay.path),
                     "build it first: swift build --package-path Messenger --product hush-relay")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-cmd-media-\(UUID().uuidString)")
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
        env["HUSH_PASSPHRASE"] = "a passphrase"
        func hush(_ args: [String]) async throws -> Finished {
            try await run(Binaries.hush, args, environment: env, timeout: .seconds(60))
        }
        #expect(try await hush(["init", "--relay", url, "--name", "alice", "--kdf", "interactive"] + alice).status == 0)
        #expect(try await hush(["init", "--relay", url, "--name", "bob", "--kdf", "interactive"] + bob).status == 0)
        let bytes = (0..<250_000).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ $0 >> 10) }
        let photo = dir.appendingPathComponent("photo.jpg")
        try Data(bytes).write(to: photo)

        let both = try await hush(["send", "bob", "text", "--file", photo.path] + alice)
        #expect(both.status != 0 && both.stderr.contains("give a text or --file PATH"))
        let sent = try await hush(["send", "bob", "--file", photo.path] + alice)
        #expect(sent.status == 0, "\(sent.stdout)\(sent.stderr)")
        #expect(sent.stdout == "✓ to bob: 📎 photo.jpg (image/jpeg, 250,000 bytes)\n")
        #expect(sent.stderr.hasSuffix("↑ photo.jpg [####################] 100%  0.3/0.3 MB\n"), "\(sent.stderr)")
        #expect(try Data(contentsOf: dir.appendingPathComponent("alice/Media/Hush Images/Sent/photo.jpg")) == Data(bytes))

        let inbox = try await hush(["inbox"] + bob)
        #expect(inbox.status == 0, "\(inbox.stdout)\(inbox.stderr)")
        #expect(inbox.stdout.hasPrefix("saved Media/Hush Images/photo.jpg (from alice)\nalice (1 unread)\n"), "\(inbox.stdout)")
        #expect(inbox.stdout.contains(" alice: 📎 photo.jpg (image/jpeg, 250,000 bytes)\n"))
        #expect(try Data(contentsOf: dir.appendingPathComponent("bob/Media/Hush Images/photo.jpg")) == Data(bytes))
        // Saved once: the next inbox does not download it again.
        let again = try await hush(["inbox"] + bob)
        #expect(!again.stdout.contains("saved "), "\(again.stdout)")
    }

    /// In `hush chat`, `/file PATH` sends a file; the other chat shows the media line and saves
    /// the decrypted file under Media/ in the background, saying where.
    @Test func chatSendsAndSavesAFile() async throws {
        try #require(FileManager.default.fileExists(atPath: Binaries.hush.path),
                     "build it first: swift build --package-path Messenger --product hush")
        try #require(FileManager.default.fileExists(atPath: Binaries.relay.path),
                     "build it first: swift build --package-path Messenger --product hush-relay")
        let tmux = try #require(Binaries.tmux, "tmux is needed (apt-get install tmux)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-tmux-media-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let relay = try RelayChild(dataDir: dir.appendingPathComponent("relay"))
        let screens = TmuxScreens(tmux: tmux, socket: dir.appendingPathComponent("tmux.sock").path)
        do {
            try await relay.ready()
            let url = "ws://127.0.0.1:\(relay.port)"
            for name in ["alice", "bob"] {
                let r = try await run(Binaries.hush, ["init", "--home", dir.appendingPathComponent(name).path, "--relay", url, "--name", name,
                                                      "--key-file", dir.appendingPathComponent("\(name).key").path,
                                                      "--trust-root", dir.appendingPathComponent("relay/trust-root.pub").path])
                try #require(r.status == 0, "\(r.stdout)\(r.stderr)")
            }
            let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 11) }
            try Data(bytes).write(to: dir.appendingPathComponent("notes.pdf"))
            for (me, peer) in [("alice", "bob"), ("bob", "alice")] {
                try await screens.start(me, "TERM=xterm-256color exec \(Binaries.hush.path) chat \(peer) --home \(dir.appendingPathComponent(me).path) --plain")
            }
            try await screens.waitFor("alice", "relay online")
            try await screens.waitFor("bob", "relay online")
            try await screens.type("alice", "/file \(dir.appendingPathComponent("notes.pdf").path)")
            try await screens.waitFor("alice", "you: 📎 notes.pdf (application/pdf, 70,000 bytes)")
            try await screens.waitFor("bob", "alice: 📎 notes.pdf (application/pdf, 70,000 bytes)")
            try await screens.waitFor("bob", "saved Media/Hush Documents/notes.pdf (from alice)")
            #expect(try Data(contentsOf: dir.appendingPathComponent("bob/Media/Hush Documents/notes.pdf")) == Data(bytes))
            #expect(try Data(contentsOf: dir.appendingPathComponent("alice/Media/Hush Documents/Sent/notes.pdf")) == Data(bytes))
        } catch {
            Issue.record("the chat steps stopped: \(error)")
        }
        await screens.killAll()
        relay.stop()
        try? FileManager.default.removeItem(at: dir)
    }
}
