import Foundation
import GRDB
import Hush
import HushRelay
import HushTransport
import Synchronization
import Testing
@testable import HushClient

/// Sealed sender on the wire, end to end (Docs/client.md §Sealed sender, Docs/spec/relay.md
/// §20): real clients, a real relay over loopback with its SQLite database and its log.
@Suite(.serialized, .timeLimit(.minutes(2))) struct SealedSenderTests {
    /// Counts the relay's Send and SealedSend stanzas per recipient.
    final class Stanzas: Sendable {
        let sends = Mutex<[String: Int]>([:]), sealed = Mutex<[String: Int]>([:])
        func hook(_ stanza: RelayStanza) {
            if case .send(let m)? = stanza.body { sends.withLock { $0[m.account, default: 0] += 1 }}
            if case .sealedSend(let m)? = stanza.body { sealed.withLock { $0[m.account, default: 0] += 1 } }
        }
        func count(_ sealedOnes: Bool, to account: String) -> Int {
            sealedOnes ? sealed.withLock { $0[account] ?? 0 } : sends.withLock { $0[account] ?? 0 }
        }
    }

    @Test func afterTheFirstExchangeMessagesGoSealedAndTheRelayHoldsNoSender() async throws {
        let relay = try ClientTestRelay()
        let capture = LogCapture(), stanzas = Stanzas()
        relay.logCapture = capture
        relay.hook = { stanzas.hook($0) }
        try await relay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()

        // First contact goes logged in (alice holds no key of bob's) and shares alice's key.
        let hi = try await alice.client.send("hi bob", to: "bob")
        _ = await bob.waitMessage(from: "alice", "hi bob")
        await alice.waitTick(hi, .delivered)   // bob's receipt: sealed already, with alice's key
        #expect(stanzas.count(false, to: "bob") == 2)   // the message and alice's access key
        #expect(stanzas.count(true, to: "alice") >= 1)
        let back = try await bob.client.send("hi alice", to: "alice")
        _ = await alice.waitMessage(from: "bob", "hi alice")
        await bob.waitTick(back, .delivered)
        #expect(stanzas.count(false, to: "alice") == 0)   // everything bob sent alice went sealed

        // Now alice sends sealed; bob is offline, so the messages wait in the relay's queue.
        await bob.client.stop()
        let dbPath = relay.directory.appendingPathComponent("relay-0.sqlite").path
        let earlier = Set(try Self.rows(of: dbPath).map(Self.rowKey))
        let mark = capture.lines.count
        let before = stanzas.count(false, to: "bob")
        var ids: [MessageID] = []
        for i in 1...3 { ids.append(try await alice.client.send("sealed \(i)", to: "bob")) }
        for id in ids { await alice.waitTick(id, .sent) }
        #expect(stanzas.count(false, to: "bob") == before)
        #expect(try await relay.relay.store.queueDepth(account: "bob", deviceID: 1) == 3)

        // What the relay holds for these messages names the recipient and never the sender.
        let aliceIdentity = try #require(try await relay.relay.store.account(named: "alice")?.identityKey)
        let aliceStatic = try #require(try await relay.relay.store.device(account: "alice", deviceID: 1)?.staticKey)
        let needles: [Data] = [Data("alice".utf8), aliceIdentity, aliceStatic,
                               Data(Hex.encode(Array(aliceIdentity)).utf8), Data(Hex.encode(Array(aliceStatic)).utf8),
                               Data(aliceIdentity.base64EncodedString().utf8), Data(aliceStatic.base64EncodedString().utf8)]
        // Every row the sealed sends wrote (the queue, dedupe; alice's earlier logged-in sends
        // are remembered for dedupe under her name, as they should be) holds nothing of hers.
        let rows = try Self.rows(of: dbPath).filter { !earlier.contains(Self.rowKey($0)) }
        var queueRows = 0
        for (table, values) in rows {
            if table == "messages" { queueRows += 1 }
            for value in values { for n in needles { #expect(value.range(of: n) == nil, "table \(table) holds alice") } }
        }
        #expect(queueRows == 3)
        #expect(Set(rows.map(\.0)).isSubset(of: ["messages", "dedupe", "sqlite_sequence"]))
        #expect(rows.filter { $0.0 == "dedupe" }.count == 3)
        let pending = try await relay.relay.store.pending(account: "bob", deviceID: 1, after: 0, limit: 10)
        #expect(pending.map(\.senderAccount) == ["*bob", "*bob", "*bob"])
        // Nor does the log (at trace level) say anything of alice from the first sealed send on.
        let lines = capture.lines.dropFirst(mark)
        for line in lines {
            for n in needles { #expect(!Data(line.utf8).contains(n), "log line names alice: \(line)") }
        }

        // Bob comes back: the three, from alice (the certificate inside the envelope says so),
        // in order, and his receipts reach her (sealed too).
        await bob.online()
        let bodies = await bob.log.messages(from: "alice").map(\.body)
        #expect(bodies == ["hi bob", "sealed 1", "sealed 2", "sealed 3"])
        for id in ids { await alice.waitTick(id, .delivered) }
        #expect(stanzas.count(false, to: "alice") == 0)
        await alice.client.stop()
        await bob.client.stop()
        await relay.finish()
    }

    @Test func aWithdrawnAccessKeyFallsBackToALoggedInSendAndAnyoneCanBeAllowed() async throws {
        let relay = try ClientTestRelay()
        let stanzas = Stanzas()
        relay.hook = { stanzas.hook($0) }
        try await relay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay), carol = try User.make("carol", relay)
        for u in [alice, bob, carol] { await u.online() }
        let hi = try await alice.client.send("hi", to: "bob")
        await alice.waitTick(hi, .delivered)
        let back = try await bob.client.send("hello", to: "alice")
        await bob.waitTick(back, .delivered)

        // Bob's relay record changes (as after a reinstall on another phone): his key is stale.
        try await relay.relay.store.setSealedAccess(account: "bob", SealedAccess(accessKey: Data(repeating: 9, count: 16), allowAnyone: false))
        let sentBefore = stanzas.count(false, to: "bob")
        let again = try await alice.client.send("after the change", to: "bob")
        _ = await bob.waitMessage(from: "alice", "after the change")
        await alice.waitTick(again, .delivered)
        // Refused sealed (ACCESS_DENIED, nothing stored), then sent logged in: exactly once.
        #expect(stanzas.count(false, to: "bob") == sentBefore + 1)
        #expect(await bob.log.messages(from: "alice").filter { $0.body == "after the change" }.count == 1)
        #expect(try alice.store.setting(SettingKey.sealedKey("bob")) == nil)

        // Carol accepts sealed messages from anyone; with no key, alice still sends logged in
        // (she cannot know), and the relay accepts any key for carol.
        try await carol.client.setSealedFromAnyone(true)
        #expect(try await relay.relay.store.sealedAccess(account: "carol")?.allowAnyone == true)
        await alice.client.stop()
        await bob.client.stop()
        await carol.client.stop()
        await relay.finish()
    }

    static func rowKey(_ row: (String, [Data])) -> String { row.0 + " " + row.1.map { Hex.encode(Array($0)) }.joined(separator: " ") }

    /// Every row of every table of a SQLite database, each value as bytes.
    static func rows(of path: String) throws -> [(String, [Data])] {
        let queue = try DatabaseQueue(path: path)
        return try queue.read { db in
            var out: [(String, [Data])] = []
            for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") {
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \"\(table)\"") {
                    out.append((table, row.databaseValues.map { value -> Data in
                        switch value.storage {
                        case .blob(let d): d
                        case .string(let s): Data(s.utf8)
                        case .int64(let i): Data(String(i).utf8)
                        case .double(let x): Data(String(x).utf8)
                        case .null: Data()
                        }
                    }))
                }
            }
            return out
        }
    }
}
