import Foundation
import HushRelay
@testable import HushRelayPostgres
import RelayStoreConformance
import Synchronization
import Testing

/// Every PostgreSQL suite, one test at a time: the fault tests restart the shared server.
@Suite(.serialized, .enabled(if: TestPostgres.enabled, TestPostgres.skipReason))
struct PostgresTests {}

/// The store conformance suite against a real PostgreSQL (see ``TestPostgres``).
extension PostgresTests {
    @Test(arguments: RelayStoreConformance.names)
    func storeConformance(check: String) async throws {
        let factory = try PostgresFactory()
        do {
            try await RelayStoreConformance.run(check, factory)
        } catch {
            await factory.close()
            throw error
        }
        await factory.close()
    }

    /// The media store checks every ``MediaStore`` passes, on ``PostgresMediaStore`` (its calls
    /// block: run off the cooperative pool), and the shared capability key is made once.
    @Test func mediaStoreConformance() async throws {
        let config = try TestPostgres.configuration()
        let a = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let b = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let media = PostgresMediaStore(store: a)
        do {
            try await withTaskExecutorPreference(BlockingTestExecutor.shared) {
                try MediaStoreConformanceTests.check("postgres", media, nil)
            }
            // Two nodes asking for the capability key get the same one.
            let keyA = try await media.sharedCapabilityKey(), keyB = try await PostgresMediaStore(store: b).sharedCapabilityKey()
            #expect(keyA.count == 32 && keyA == keyB)
        } catch {
            await a.shutdown(); await b.shutdown()
            throw error
        }
        await a.shutdown(); await b.shutdown()
    }

    /// Versioned migrations: applied once, recorded, and a second instance (another node
    /// starting) applies nothing again.
    @Test func migrationsAreRecordedOnce() async throws {
        let config = try TestPostgres.configuration()
        let a = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let b = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        #expect(try await a.schemaVersions() == [1, 2, 3, 4, 5, 6, 7])
        #expect(try await b.schemaVersions() == [1, 2, 3, 4, 5, 6, 7])
        await a.shutdown()
        await b.shutdown()
    }

    /// Writes that share one statement (`hush_enqueue_many`, `hush_acknowledge_many`) each get
    /// their own outcome, exactly as separate calls would: stored, duplicate, unknown account,
    /// unknown device and queue full mixed in the same batches; and two nodes enqueueing to the
    /// same multi-device recipients in opposite device orders never deadlock (the batch locks
    /// its device rows in one global order first).
    @Test func sharedStatementsKeepEachWritesOutcome() async throws {
        let config = try TestPostgres.configuration()
        let a = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let b = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let key = { (x: UInt8) in Data(repeating: x, count: 32) }
        _ = try await a.register(account: "alice", identityKey: key(0xA0), deviceID: 1, staticKey: key(0xA1), maxDevices: 16)
        _ = try await a.register(account: "bob", identityKey: key(0xB0), deviceID: 1, staticKey: key(0xB1), maxDevices: 16)
        for d in UInt32(2)...3 {
            _ = try await RelayStoreConformance.link(a, account: "bob", identityKey: key(0xB0), deviceID: d, staticKey: key(0xB0 + UInt8(d)))
        }
        _ = try await a.register(account: "carol", identityKey: key(0xC0), deviceID: 1, staticKey: key(0xC1), maxDevices: 16)
        @Sendable func request(_ id: UInt64, to recipient: String, _ devices: [UInt32], cap: Int = 10_000) -> EnqueueRequest {
            EnqueueRequest(senderAccount: "alice", senderDevice: 1, clientMessageID: id, recipient: recipient, devices: devices,
                           payload: Data("m\(id)".utf8), now: 1_000, ttlMilliseconds: 60_000, queueCap: cap)
        }
        enum Seen: Equatable { case stored(Int), duplicate, unknownAccount, unknownDevice(UInt32), queueFull(UInt32), other(String) }
        // Node a: ids 1...120 to bob's three devices; every 15th to an unknown account, every
        // 20th names an unknown device, every 7th goes to carol, whose queue holds 5; ids that
        // are multiples of 11 are sent twice at once (one must be stored, one a duplicate).
        // Node b: ids 1001...1120 to bob's devices in the opposite order.
        let outcomes = try await withThrowingTaskGroup(of: (UInt64, Seen).self) { group in
            for i in UInt64(1)...120 {
                group.addTask {
                    let r: EnqueueRequest
                    if i % 15 == 0 { r = request(i, to: "nobody", [1]) }
                    else if i % 20 == 0 { r = request(i, to: "bob", [1, 9]) }
                    else if i % 7 == 0 { r = request(i, to: "carol", [1], cap: 5) }
                    else { r = request(i, to: "bob", [1, 2, 3]) }
                    do {
                        switch try await a.enqueue(r, committed: { _ in }) {
                        case .stored(_, let messages): return (i, .stored(messages.count))
                        case .duplicate: return (i, .duplicate)
                        }
                    } catch RelayStoreError.unknownAccount { return (i, .unknownAccount) }
                    catch RelayStoreError.unknownDevice(let d) { return (i, .unknownDevice(d)) }
                    catch RelayStoreError.queueFull(let d, _) { return (i, .queueFull(d)) }
                    catch { return (i, .other("\(error)")) }
                }
                if i % 11 == 0, i % 7 != 0, i % 15 != 0, i % 20 != 0 {
                    group.addTask {
                        switch try await a.enqueue(request(i, to: "bob", [1, 2, 3]), committed: { _ in }) {
                        case .stored(_, let messages): return (10_000 + i, .stored(messages.count))
                        case .duplicate: return (10_000 + i, .duplicate)
                        }
                    }
                }
                group.addTask {
                    let r = request(1_000 + i, to: "bob", [3, 2, 1])
                    switch try await b.enqueue(r, committed: { _ in }) {
                    case .stored(_, let messages): return (1_000 + i, .stored(messages.count))
                    case .duplicate: return (1_000 + i, .duplicate)
                    }
                }
            }
            var out: [UInt64: Seen] = [:]
            for try await (i, seen) in group { out[i] = seen }
            return out
        }
        // Resends after the fact of every id that was stored: duplicates, nothing stored again.
        for i in UInt64(1)...120 {
            guard case .stored? = outcomes[i] else { continue }
            let again = try await a.enqueue(request(i, to: i % 7 == 0 ? "carol" : "bob", i % 7 == 0 ? [1] : [1, 2, 3], cap: 5),
                                            committed: { _ in })
            #expect(again == .duplicate(serverTime: 1_000), "\(i)")
        }
        var carolStored = 0
        for i in UInt64(1)...120 {
            let seen = outcomes[i]
            if i % 15 == 0 { #expect(seen == .unknownAccount, "\(i)") }
            else if i % 20 == 0 { #expect(seen == .unknownDevice(9), "\(i)") }
            else if i % 7 == 0 {
                if seen == .stored(1) { carolStored += 1 } else { #expect(seen == .queueFull(1), "\(i)") }
            } else if let twin = outcomes[10_000 + i] {
                #expect([seen, twin].filter { $0 == .stored(3) }.count == 1 && [seen, twin].contains(.duplicate), "\(i)")
            } else { #expect(seen == .stored(3), "\(i)") }
            #expect(outcomes[1_000 + i] == .stored(3), "\(1_000 + i)")
        }
        #expect(carolStored == 5)
        #expect(try await b.queueDepth(account: "carol", deviceID: 1) == 5)
        let toBob = (1...120).filter { $0 % 15 != 0 && $0 % 20 != 0 && $0 % 7 != 0 }.count + 120
        for d in UInt32(1)...3 {
            #expect(try await b.queueDepth(account: "bob", deviceID: d) == toBob)
            // One device's server ids increase, whichever node committed them.
            let pending = try await b.pending(account: "bob", deviceID: d, after: 0, limit: 1_000)
            #expect(pending.count == toBob)
            #expect(pending.map(\.serverID) == pending.map(\.serverID).sorted())
        }
        // Acks of every queued message of bob's three devices, concurrently, in small groups:
        // each deletes exactly its own rows.
        let deleted = try await withThrowingTaskGroup(of: Int.self) { group in
            for d in UInt32(1)...3 {
                let ids = try await a.pending(account: "bob", deviceID: d, after: 0, limit: 1_000).map(\.serverID)
                for k in stride(from: 0, to: ids.count, by: 4) {
                    let slice = Array(ids[k..<min(k + 4, ids.count)])
                    group.addTask { try await (k % 8 == 0 ? a : b).acknowledge(account: "bob", deviceID: d, serverIDs: slice) }
                }
            }
            group.addTask { (try? await a.acknowledge(account: "bob", deviceID: 9, serverIDs: [1])) == nil ? 0 : -1_000 }
            return try await group.reduce(0, +)
        }
        #expect(deleted == 3 * toBob)
        for d in UInt32(1)...3 { #expect(try await a.queueDepth(account: "bob", deviceID: d) == 0) }
        let sa = a.batchStatistics, sb = b.batchStatistics
        #expect(sa.sharedStatements + sb.sharedStatements > 0, "no batch shared a statement: the test did not exercise it")
        #expect(sa.sharedWrites + sb.sharedWrites >= 2 * (sa.sharedStatements + sb.sharedStatements))
        #expect(sa.transientRetries == 0 && sb.transientRetries == 0, "deadlocks or serialization failures: \(sa) \(sb)")
        await a.shutdown()
        await b.shutdown()
    }

    /// A link token issued through one node (store instance) is used through another (§22.4:
    /// the new device may register on any node), once; concurrent issues on both nodes reserve
    /// distinct ids.
    @Test func linkTokenIssuedOnOneNodeIsUsedOnAnother() async throws {
        let config = try TestPostgres.configuration()
        let a = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let b = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let key = { (x: UInt8) in Data(repeating: x, count: 32) }
        _ = try await a.register(account: "lena", identityKey: key(0xE0), deviceID: 1, staticKey: key(0xE1), maxDevices: 16)
        let issue = { @Sendable (s: PostgresRelayStore, hash: UInt8) async throws -> UInt32 in
            try await s.issueLinkToken(LinkTokenIssue(account: "lena", tokenHash: Data(repeating: hash, count: 32), now: 1_000, expiresAt: 601_000,
                                                      maxDevices: 16, maxOpenTokens: 4))
        }
        #expect(try await issue(a, 0x01) == 2)
        let proof = LinkTokenProof(tokenHash: key(0x01), now: 2_000)
        #expect(try await b.register(account: "lena", identityKey: key(0xE0), deviceID: 2, staticKey: key(0xE2), maxDevices: 16,
                                     linkToken: proof) == .addedDevice)
        // Used: after device 2 is removed (on node a), its token registers no other device 2.
        _ = try await a.removeDevice(account: "lena", deviceID: 2)
        await #expect(throws: RelayStoreError.invalidLinkToken) {
            try await a.register(account: "lena", identityKey: key(0xE0), deviceID: 2, staticKey: key(0xE3), maxDevices: 16, linkToken: proof)
        }
        let ids = try await withThrowingTaskGroup(of: UInt32.self) { group in
            for i in 0..<4 {
                let s = i % 2 == 0 ? a : b
                group.addTask { try await issue(s, UInt8(0x10 + i)) }
            }
            var out: [UInt32] = []
            for try await id in group { out.append(id) }
            return out
        }
        #expect(ids.sorted() == [2, 3, 4, 5])
        // A fifth, on either node, revokes the oldest open one and reserves its id again.
        let fifth = try await issue(b, 0x20)
        #expect((2...5).contains(fifth))
        await a.shutdown()
        await b.shutdown()
    }

    /// Many concurrent claims over two store instances (two relay nodes) on one database hand
    /// out each one-time prekey exactly once.
    @Test func prekeyConsumptionAcrossTwoNodes() async throws {
        let config = try TestPostgres.configuration()
        let a = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let b = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let key = { (x: UInt8) in Data(repeating: x, count: 32) }
        _ = try await a.register(account: "bob", identityKey: key(0xB0), deviceID: 1, staticKey: key(0xB1), maxDevices: 16)
        let keys = (1...40).map { OneTimePrekeyRecord(id: UInt32($0), publicKey: key(UInt8($0))) }
        _ = try await a.storePrekeys(account: "bob", deviceID: 1, registrationID: 1, signed: nil, oneTime: keys, maxStored: 100)
        let handed = try await withThrowingTaskGroup(of: OneTimePrekeyRecord?.self) { group in
            for i in 0..<60 {
                let s = i % 2 == 0 ? a : b
                group.addTask { try await s.claimBundles(account: "bob", devices: [1])[0].oneTime }
            }
            var out: [OneTimePrekeyRecord] = []
            for try await r in group { if let r { out.append(r) } }
            return out
        }
        #expect(handed.count == 40)
        #expect(Set(handed.map(\.id)) == Set(1...40))
        #expect(try await b.prekeyCount(account: "bob", deviceID: 1) == 0)
        await a.shutdown()
        await b.shutdown()
    }

    /// A prekey upload whose COMMIT applied but whose answer was lost is retried without its
    /// one-time prekeys: one claimed in between is never stored (and handed out) again.
    @Test func aRetriedUploadNeverRestoresAClaimedPrekey() async throws {
        let config = try TestPostgres.configuration()
        let a = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let b = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let key = { (x: UInt8) in Data(repeating: x, count: 32) }
        _ = try await a.register(account: "rhea", identityKey: key(0xC0), deviceID: 1, staticKey: key(0xC1), maxDevices: 16)
        let claimed = Mutex<[UInt32]>([])
        a.loseNextCommit {
            let id = (try? await b.claimBundles(account: "rhea", devices: [1]))?.first?.oneTime?.id
            claimed.withLock { $0 += id.map { [$0] } ?? [] }
        }
        let keys = (1...3).map { OneTimePrekeyRecord(id: UInt32($0), publicKey: key(UInt8($0))) }
        let counts = try await a.storePrekeys(account: "rhea", deviceID: 1, registrationID: 9, signed: nil, oneTime: keys, maxStored: 100)
        #expect(claimed.withLock { $0 } == [1])
        #expect(counts == 2)
        let rest = [try await b.claimBundles(account: "rhea", devices: [1]), try await b.claimBundles(account: "rhea", devices: [1]),
                    try await b.claimBundles(account: "rhea", devices: [1])].map { $0.first?.oneTime?.id }
        #expect(rest == [2, 3, nil])
        await a.shutdown()
        await b.shutdown()
    }

    /// An unreachable database: calls fail with the typed error after the timeout, none hangs.
    @Test func unreachableDatabaseIsTyped() async throws {
        var config = try PostgresStoreConfiguration(url: "postgres://postgres@127.0.0.1:1/postgres")
        config.operationTimeout = .milliseconds(300)
        config.startupTimeout = .milliseconds(300)
        await #expect(throws: RelayStoreError.unavailable) {
            _ = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        }
    }
}

/// The `--store postgres://…` URL (no database needed).
@Suite struct PostgresConfigurationTests {
    @Test func urlParameters() throws {
        let c = try PostgresStoreConfiguration(url: "postgres://relay:p%40ss@db.internal:6543/hush?schema=node_a&pool=8&timeout_ms=2500&startup_timeout_ms=90000&sslmode=require")
        #expect(c.host == "db.internal")
        #expect(c.port == 6543)
        #expect(c.username == "relay")
        #expect(c.password == "p@ss")
        #expect(c.database == "hush")
        #expect(c.schema == "node_a")
        #expect(c.maxConnections == 8)
        #expect(c.operationTimeout == .milliseconds(2500))
        #expect(c.startupTimeout == .milliseconds(90_000))
        #expect(c.requireTLS)
        #expect(c.wakeChannel == "hush_wake_node_a")
    }

    @Test func defaults() throws {
        let c = try PostgresStoreConfiguration(url: "postgres://postgres@127.0.0.1/postgres")
        #expect(c.port == 5432)
        #expect(c.schema == "public")
        #expect(c.maxConnections == 16)
        #expect(c.operationTimeout == .seconds(10))
        #expect(c.startupTimeout == .seconds(60))
        #expect(!c.requireTLS)
        #expect(c.wakeChannel == "hush_wake")
    }

    @Test func rejectedURLs() {
        #expect(throws: RelayStoreError.self) { try PostgresStoreConfiguration(url: "mysql://x@y/z") }
        #expect(throws: RelayStoreError.self) { try PostgresStoreConfiguration(url: "postgres://x@y/z?schema=Drop%20Table") }
    }
}
