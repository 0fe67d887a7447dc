import Foundation
import Testing
@testable import HushCLIKit

/// `hush backup export` / `hush backup restore` with the real binaries: a passphrase backup and a
/// recovery-key backup, a wrong passphrase, a damaged file, then the restored home talking to bob.
@Suite struct BackupCommandTests {
    @Test func exportRestoreAndTalkAgain() async throws {
        try #require(FileManager.default.fileExists(atPath: Binaries.hush.path),
                     "build it first: swift build --package-path Messenger --product hush")
        try #require(FileManager.default.fileExists(atPath: Binaries.relay.path),
                     "build it first: swift build --package-path Messenger --product hush-relay")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-cmd-backup-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let relay = try RelayChild(dataDir: dir.appendingPathComponent("relay"))
        defer {
            relay.stop()
            try? FileManager.default.removeItem(at: dir)
        }
        try await relay.ready()
        let url = "ws://127.0.0.1:\(relay.port)"
        let alice = ["--home", dir.appendingPathComponent("alice").path]
        let restored = ["--home", dir.appendingPathComponent("alice-new").path]
        let bob = ["--home", dir.appendingPathComponent("bob").path]
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        env["HUSH_PASSPHRASE"] = "store passphrase"
        env["HUSH_BACKUP_PASSPHRASE"] = "backup passphrase"
        func hush(_ args: [String], _ e: [String: String]? = nil) async throws -> Finished {
            try await run(Binaries.hush, args, environment: e ?? env, timeout: .seconds(60))
        }
        #expect(try await hush(["init", "--relay", url, "--name", "alice", "--kdf", "interactive"] + alice).status == 0)
        #expect(try await hush(["init", "--relay", url, "--name", "bob", "--kdf", "interactive"] + bob).status == 0)
        #expect(try await hush(["send", "bob", "kept in the backup"] + alice).status == 0)
        #expect(try await hush(["inbox"] + bob).status == 0)
        #expect(try await hush(["send", "alice", "bob's reply"] + bob).status == 0)
        #expect(try await hush(["inbox"] + alice).status == 0)

        let file = dir.appendingPathComponent("alice.hushbackup").path
        let exported = try await hush(["backup", "export", file, "--kdf", "interactive"] + alice)
        #expect(exported.status == 0, "\(exported.stderr)")
        #expect(exported.stdout == "backup of alice: 2 messages, 1 contacts → \(file)\n")
        let again = try await hush(["backup", "export", file, "--kdf", "interactive"] + alice)
        #expect(again.status == 1 && again.stderr.contains("exists"), "never overwrites a backup")

        // A recovery-key backup prints its key once.
        let keyed = dir.appendingPathComponent("alice.keyed").path
        let k = try await hush(["backup", "export", keyed, "--recovery-key"] + alice)
        #expect(k.status == 0, "\(k.stderr)")
        let keyLine = try #require(k.stdout.split(separator: "\n").first { $0.hasPrefix("recovery key: ") })
        let digits = String(keyLine.dropFirst("recovery key: ".count))
        #expect(digits.split(separator: " ").count == 16)

        // Refusals: a wrong passphrase, a damaged file, a passphrase for a recovery-key backup.
        var wrong = env
        wrong["HUSH_BACKUP_PASSPHRASE"] = "not it"
        let refused = try await hush(["backup", "restore", file, "--offline"] + restored, wrong)
        #expect(refused.status == 1)
        #expect(refused.stderr == "hush: wrong passphrase or recovery key for this backup\n")
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        bytes[bytes.count - 5] ^= 1
        let damagedFile = dir.appendingPathComponent("damaged").path
        try Data(bytes).write(to: URL(fileURLWithPath: damagedFile))
        let damaged = try await hush(["backup", "restore", damagedFile, "--offline"] + restored)
        #expect(damaged.stderr == "hush: the backup is damaged (chunk 0 fails authentication)\n", "\(damaged.stderr)")
        let kind = try await hush(["backup", "restore", keyed, "--offline"] + restored)
        #expect(kind.stderr == "hush: this backup was made with a recovery key: give --recovery-key-file\n")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("alice-new/config.json").path), "nothing left behind")

        // The real restore (recovery key), connected: prekeys replaced, bob's session reset.
        let keyFile = dir.appendingPathComponent("key.txt")
        try Data((digits + "\n").utf8).write(to: keyFile)
        let r = try await hush(["backup", "restore", keyed, "--recovery-key-file", keyFile.path, "--kdf", "interactive"] + restored)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.hasPrefix("restored alice (device 1): 2 messages, 1 contacts\n"), "\(r.stdout)")
        let history = try await hush(["inbox"] + restored)
        #expect(history.stdout.contains("you: kept in the backup"), "\(history.stdout)")
        #expect(history.stdout.contains("bob: bob's reply"), "\(history.stdout)")
        // Bob takes the reset, answers; the restored home reads it.
        #expect(try await hush(["inbox"] + bob).status == 0)
        #expect(try await hush(["send", "alice", "after the restore"] + bob).status == 0)
        let later = try await hush(["inbox"] + restored)
        #expect(later.stdout.contains("bob: after the restore"), "\(later.stdout)\(later.stderr)")
    }
}
