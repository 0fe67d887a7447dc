import Foundation
import Hush
import Testing
@testable import HushClient

/// Measurements for Docs/client.md §Store, not assertions: run with
/// `HUSH_STORE_BENCH=1 swift test --package-path Messenger --skip-build --filter StoreBenchmark`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["HUSH_STORE_BENCH"] != nil), .serialized)
struct StoreBenchmark {
    static func residentMegabytes() -> Double {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let pages = statm.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
    }

    static func milliseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1_000 + Double(d.components.attoseconds) / 1e15
    }

    @Test func open100kMessages() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("bench.sqlite")
        let secret = ClientStoreSecret.keyFile(SQLiteFactory.keyFile)
        let identity = try IdentityKeyPair.generate()
        let clock = ContinuousClock()
        var store = try SQLiteClientStore.create(path: path, secret: secret, identity: identity, registrationID: 1)
        let total = 100_000, conversations = 50, batch = 2_000
        let insertTime = try clock.measure {
            for start in stride(from: 0, to: total, by: batch) {
                try store.atomically {
                    for n in start..<(start + batch) {
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
        }
        try store.close()
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        var summaries: [ConversationSummary] = []
        var page: [StoredMessage] = []
        let openTime = try clock.measure {
            store = try SQLiteClientStore.open(path: path, secret: secret)
        }
        let firstScreen = try clock.measure {
            summaries = try store.conversations()
            page = try store.messages(in: summaries[0].account, before: nil, limit: 50)
        }
        // Page back through one whole conversation (2,000 messages), 50 at a time.
        let rssBefore = Self.residentMegabytes()
        var pages = 0
        let pagingTime = try clock.measure {
            for peer in 0..<conversations {
                var before: Int64? = nil
                while true {
                    let p = try store.messages(in: "user\(peer)", before: before, limit: 50)
                    guard let first = p.first else { break }
                    before = first.sequence
                    pages += 1
                }
            }
        }
        let rssAfter = Self.residentMegabytes()
        // A receive step: insert + markProcessed, one transaction, fsynced.
        let steps = 200
        let stepTime = try clock.measure {
            for n in 0..<steps {
                try store.atomically {
                    _ = try store.insertMessage(StoredMessage(
                        id: MessageID(account: "user1", device: 1, clientMessageID: UInt64(total + n)), conversation: "user1",
                        direction: .incoming, body: "live", sentAt: 1, state: .delivered))
                    try store.markProcessed(serverID: UInt64(n), at: 1)
                }
            }
        }
        let argon = try clock.measure {
            _ = try Argon2id.deriveKey(fromPassword: Array("passphrase".utf8), salt: [UInt8](repeating: 1, count: 16), limits: .moderate)
        }
        let argonInteractive = try clock.measure {
            _ = try Argon2id.deriveKey(fromPassword: Array("passphrase".utf8), salt: [UInt8](repeating: 1, count: 16), limits: .interactive)
        }
        // The real thing: reopening the 100,000-message store under a passphrase at the default limits.
        try store.rekey(to: .passphrase("a passphrase of ordinary length", limits: .moderate))
        try store.close()
        let passphraseOpen = try clock.measure {
            store = try SQLiteClientStore.open(path: path, secret: .passphrase("a passphrase of ordinary length"))
        }
        print("""
            StoreBenchmark: \(total) messages in \(conversations) conversations, file \(size / 1_048_576) MiB
              insert (batches of \(batch)): \(Self.milliseconds(insertTime)) ms
              open (key file): \(Self.milliseconds(openTime)) ms
              first screen (conversations + 50 messages): \(Self.milliseconds(firstScreen)) ms (\(summaries.count) conversations, \(page.count) messages)
              paging all history, \(pages) pages of 50: \(Self.milliseconds(pagingTime)) ms; RSS \(rssBefore) MiB -> \(rssAfter) MiB
              receive step (insert + markProcessed, fsync): \(Self.milliseconds(stepTime) / Double(steps)) ms each
              Argon2id moderate: \(Self.milliseconds(argon)) ms; interactive: \(Self.milliseconds(argonInteractive)) ms
              open (passphrase, moderate): \(Self.milliseconds(passphraseOpen)) ms
            """)
        try store.close()
    }
}
