import ArgumentParser
import Foundation
import Hush
import HushClient

/// `hush-load client-restart`: the second client goal of Docs/client.md §Measured — a client
/// restarts from a store of 100,000 messages in under 1 s, and its memory does not grow with
/// history it is not showing. It writes two encrypted SQLite stores (an empty device and one
/// with `--messages` messages), then opens each in a fresh child process (so the resident memory
/// is that of a restart, not of the writing), and prints JSON.
///
/// A restart is: `SQLiteClientStore.open` (unwrap the database key; with a passphrase,
/// Argon2id at the default `.moderate` limits), `HushClient(store:configuration:)` (the device
/// profile), then the first screen (`conversations()` and the newest 50 messages of the first).
struct ClientRestart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client-restart",
        abstract: "Measure a HushClient restart from an empty and a 100,000-message SQLite store (time, resident memory); prints JSON."
    )

    @Option(help: "Messages in the big store.")
    var messages = 100_000
    @Option(help: "Conversations they are spread over.")
    var conversations = 50
    @Option(help: "Internal: open this store and report (child process).")
    var open: String?
    @Option(name: .customLong("key-file"), help: "Internal: the key file of --open.")
    var keyFile: String?
    @Option(help: "Internal: open with this passphrase file instead of the key file.")
    var passphraseFile: String?
    @Option(help: "Seconds the whole run may take before the process exits with status 3.")
    var deadline: Double = 900

    func run() async throws {
        startWatchdog(seconds: deadline)
        if let open {
            try measureOpen(path: open)
            return
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hush-client-restart-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: root) }
        let key = try SecureBytes(randomCount: 32)
        let keyPath = root.appendingPathComponent("key").path
        key.withUnsafeBytes { FileManager.default.createFile(atPath: keyPath, contents: Data($0), attributes: [.posixPermissions: 0o600]) }
        let passPath = root.appendingPathComponent("passphrase").path
        FileManager.default.createFile(atPath: passPath, contents: Data("a passphrase of ordinary length".utf8), attributes: [.posixPermissions: 0o600])

        let empty = root.appendingPathComponent("empty.sqlite").path
        let full = root.appendingPathComponent("full.sqlite").path
        let fullPass = root.appendingPathComponent("full-passphrase.sqlite").path
        try makeStore(path: empty, key: key, messages: 0)
        let t0 = monotonicNanos()
        try makeStore(path: full, key: key, messages: messages)
        let insertSeconds = Double(monotonicNanos() - t0) / 1e9
        try FileManager.default.copyItem(atPath: full, toPath: fullPass)
        let s = try SQLiteClientStore.open(path: fullPass, secret: .keyFile(key))
        try s.rekey(to: .passphrase("a passphrase of ordinary length", limits: .moderate))
        try s.close()
        let size = (try FileManager.default.attributesOfItem(atPath: full)[.size] as? NSNumber)?.intValue ?? 0

        var runs: [String: OpenReport] = [:]
        for (name, path, secret) in [("empty_key_file", empty, ["--key-file", keyPath]), ("full_key_file", full, ["--key-file", keyPath]),
                                     ("full_passphrase", fullPass, ["--passphrase-file", passPath])] {
            runs[name] = try child(["client-restart", "--open", path] + secret)
        }
        let report = RestartReport(messages: messages, conversations: conversations, fileBytes: size, insertSeconds: insertSeconds, runs: runs)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    /// A provisioned device (as `HushClient.create` leaves it) with `messages` messages.
    private func makeStore(path: String, key: SecureBytes, messages: Int) throws {
        let keys = try HushClient.generateIdentity()
        let store = try SQLiteClientStore.create(path: path, secret: .keyFile(key), identity: keys.identity, registrationID: keys.registrationID)
        let root = try Curve25519.KeyAgreement.PrivateKey()
        _ = try HushClient.create(account: "me", store: store,
                                  configuration: ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: 1), trustRoot: root.publicKey))
        let batch = 2_000
        for start in stride(from: 0, to: messages, by: batch) {
            try store.atomically {
                for n in start..<min(messages, start + batch) {
                    let peer = "user\(n % conversations)"
                    let incoming = n % 2 == 0
                    _ = try store.insertMessage(StoredMessage(
                        id: MessageID(account: incoming ? peer : "me", device: 1, clientMessageID: UInt64(n)),
                        conversation: peer, direction: incoming ? .incoming : .outgoing,
                        body: "message number \(n), an ordinary line of chat text of moderate length",
                        sentAt: 1_700_000_000_000 + UInt64(n), state: incoming ? .read : .delivered))
                }
            }
        }
        try store.close()
    }

    /// Runs this executable with `arguments` and decodes the JSON line it prints.
    private func child(_ arguments: [String]) throws -> OpenReport {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = arguments + ["--deadline", "120"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ClientLatency.Failure(description: "child \(arguments) exited \(p.terminationStatus)") }
        return try JSONDecoder().decode(OpenReport.self, from: data)
    }

    /// In the child: open, build the client, read the first screen; report times and memory.
    private func measureOpen(path: String) throws {
        let secret: ClientStoreSecret
        if let passphraseFile {
            secret = .passphrase(SecureBytes(copying: [UInt8](try Data(contentsOf: URL(fileURLWithPath: passphraseFile)))))
        } else if let keyFile {
            secret = .keyFile(SecureBytes(copying: [UInt8](try Data(contentsOf: URL(fileURLWithPath: keyFile)))))
        } else {
            throw ValidationError("--open needs --key-file or --passphrase-file")
        }
        let rssBefore = ProcessProbe(pid: getpid()).rssBytes ?? 0
        let t0 = monotonicNanos()
        let store = try SQLiteClientStore.open(path: path, secret: secret)
        let t1 = monotonicNanos()
        let root = try Curve25519.KeyAgreement.PrivateKey()
        let client = try HushClient(store: store, configuration: ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: 1),
                                                                                      trustRoot: root.publicKey))
        let t2 = monotonicNanos()
        let list = try store.conversations()
        let page = try list.first.map { try store.messages(in: $0.account, before: nil, limit: 50) } ?? []
        let t3 = monotonicNanos()
        let rssAfter = ProcessProbe(pid: getpid()).rssBytes ?? 0
        _ = client
        let r = OpenReport(openMs: Double(t1 - t0) / 1e6, clientMs: Double(t2 - t1) / 1e6, firstScreenMs: Double(t3 - t2) / 1e6,
                           totalMs: Double(t3 - t0) / 1e6, conversationsShown: list.count, messagesShown: page.count,
                           rssBeforeBytes: rssBefore, rssAfterBytes: rssAfter)
        print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self))
        try store.close()
    }
}

/// One restart, measured in a fresh process.
struct OpenReport: Codable {
    let openMs, clientMs, firstScreenMs, totalMs: Double
    let conversationsShown, messagesShown: Int
    let rssBeforeBytes, rssAfterBytes: Int

    enum CodingKeys: String, CodingKey {
        case openMs = "open_ms", clientMs = "client_ms", firstScreenMs = "first_screen_ms", totalMs = "total_ms"
        case conversationsShown = "conversations_shown", messagesShown = "messages_shown"
        case rssBeforeBytes = "rss_before_bytes", rssAfterBytes = "rss_after_bytes"
    }
}

/// What `client-restart` prints.
struct RestartReport: Encodable {
    let messages, conversations, fileBytes: Int
    let insertSeconds: Double
    let runs: [String: OpenReport]
    let build: String = {
        #if DEBUG
        "debug"
        #else
        "release"
        #endif
    }()

    enum CodingKeys: String, CodingKey {
        case messages, conversations, runs, build
        case fileBytes = "file_bytes", insertSeconds = "insert_seconds"
    }
}
