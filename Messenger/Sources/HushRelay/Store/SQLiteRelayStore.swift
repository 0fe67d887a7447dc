import Dispatch
import Foundation
import GRDB
import Synchronization

/// ``RelayStore`` on SQLite through GRDB (`Docs/spec/relay.md` §7.4).
///
/// - WAL journal, `synchronous = FULL`: a commit is on disk (fsync) before the call returns,
///   so nothing acknowledged is lost on `kill -9` or power loss.
/// - Group commit: writes from all connections are queued and committed together, one
///   transaction (one fsync) per batch, each write in its own savepoint so that one failing
///   write changes nothing while the others commit. Writes run on one dedicated dispatch
///   queue, reads on GRDB's reader pool: never on an event loop.
public final class SQLiteRelayStore: RelayStore {
    let pool: DatabasePool
    private let batcher: GroupCommitter

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) throws(RelayStoreError) {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        config.maximumReaderCount = 4
        do {
            pool = try DatabasePool(path: path, configuration: config)
            try Self.migrator.migrate(pool)
        } catch {
            throw .storage("open: \(error)")
        }
        batcher = GroupCommitter(pool: pool)
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE accounts (
                    name TEXT PRIMARY KEY NOT NULL,
                    identity_key BLOB NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE devices (
                    id INTEGER PRIMARY KEY,
                    account TEXT NOT NULL REFERENCES accounts(name),
                    device_id INTEGER NOT NULL,
                    static_key BLOB NOT NULL UNIQUE,
                    registration_id INTEGER NOT NULL DEFAULT 0,
                    queue_depth INTEGER NOT NULL DEFAULT 0,
                    signed_prekey_id INTEGER,
                    signed_prekey BLOB,
                    signed_prekey_signature BLOB,
                    UNIQUE (account, device_id)
                );
                CREATE TABLE prekeys (
                    device_ref INTEGER NOT NULL,
                    prekey_id INTEGER NOT NULL,
                    public_key BLOB NOT NULL,
                    PRIMARY KEY (device_ref, prekey_id)
                ) WITHOUT ROWID;
                CREATE TABLE messages (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    device_ref INTEGER NOT NULL,
                    sender_account TEXT NOT NULL,
                    sender_device INTEGER NOT NULL,
                    server_time INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    payload BLOB NOT NULL
                );
                CREATE INDEX messages_by_device ON messages (device_ref, id);
                CREATE INDEX messages_by_expiry ON messages (expires_at);
                CREATE TABLE dedupe (
                    sender_account TEXT NOT NULL,
                    sender_device INTEGER NOT NULL,
                    client_message_id INTEGER NOT NULL,
                    server_time INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    PRIMARY KEY (sender_account, sender_device, client_message_id)
                ) WITHOUT ROWID;
                CREATE INDEX dedupe_by_expiry ON dedupe (expires_at);
                """)
        }
        return m
    }

    // MARK: helpers

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T,
                                    committed: (@Sendable (T) -> Void)? = nil) async throws(RelayStoreError) -> T {
        let result: Result<T, RelayStoreError> = await withCheckedContinuation { continuation in
            batcher.submit(body: body, committed: committed) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(RelayStoreError) -> T {
        do { return try await pool.read(body) } catch { throw Self.map(error) }
    }

    static func map(_ error: any Error) -> RelayStoreError {
        if let e = error as? RelayStoreError { return e }
        return .storage("\(error)")
    }

    static func deviceRef(_ db: Database, _ account: String, _ deviceID: UInt32) throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM devices WHERE account = ? AND device_id = ?"), arguments: [account, Int64(deviceID)])
    }

    // MARK: accounts

    public func register(account: String, identityKey: Data, deviceID: UInt32, staticKey: Data,
                         maxDevices: Int) async throws(RelayStoreError) -> RegisterOutcome {
        try await write { db in
            var outcome = RegisterOutcome.addedDevice
            if let stored = try Data.fetchOne(db.cachedStatement(sql: "SELECT identity_key FROM accounts WHERE name = ?"), arguments: [account]) {
                guard stored == identityKey else { throw RelayStoreError.accountTaken }
            } else {
                try db.cachedStatement(sql: "INSERT INTO accounts (name, identity_key) VALUES (?, ?)").execute(arguments: [account, identityKey])
                outcome = .createdAccount
            }
            if let key = try Data.fetchOne(db.cachedStatement(sql: "SELECT static_key FROM devices WHERE account = ? AND device_id = ?"),
                                           arguments: [account, Int64(deviceID)]) {
                guard key == staticKey else { throw RelayStoreError.deviceTaken(deviceID) }
                return .alreadyRegistered
            }
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM devices WHERE static_key = ?"), arguments: [staticKey]) == true {
                throw RelayStoreError.deviceTaken(deviceID)
            }
            let count = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM devices WHERE account = ?"), arguments: [account]) ?? 0
            guard count < maxDevices else { throw RelayStoreError.tooManyDevices(limit: maxDevices) }
            try db.cachedStatement(sql: "INSERT INTO devices (account, device_id, static_key) VALUES (?, ?, ?)")
                           .execute(arguments: [account, Int64(deviceID), staticKey])
            return outcome
        }
    }

    public func account(named name: String) async throws(RelayStoreError) -> AccountRecord? {
        try await read { db in
            try Data.fetchOne(db.cachedStatement(sql: "SELECT identity_key FROM accounts WHERE name = ?"), arguments: [name])
                .map { AccountRecord(name: name, identityKey: $0) }
        }
    }

    static func deviceRecord(_ row: Row) -> DeviceRecord {
        DeviceRecord(account: row["account"], deviceID: UInt32(truncatingIfNeeded: row["device_id"] as Int64),
                     staticKey: row["static_key"], registrationID: UInt32(truncatingIfNeeded: row["registration_id"] as Int64))
    }

    public func device(account: String, deviceID: UInt32) async throws(RelayStoreError) -> DeviceRecord? {
        try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT account, device_id, static_key, registration_id FROM devices WHERE account = ? AND device_id = ?"),
                             arguments: [account, Int64(deviceID)]).map(Self.deviceRecord)
        }
    }

    public func devices(account: String) async throws(RelayStoreError) -> [DeviceRecord] {
        try await read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT account, device_id, static_key, registration_id FROM devices WHERE account = ? ORDER BY device_id"),
                             arguments: [account]).map(Self.deviceRecord)
        }
    }

    // MARK: prekeys

    public func storePrekeys(account: String, deviceID: UInt32, registrationID: UInt32, signed: SignedPrekeyRecord?,
                             oneTime: [OneTimePrekeyRecord], maxStored: Int) async throws(RelayStoreError) -> Int {
        try await write { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM accounts WHERE name = ?"), arguments: [account]) == true else {
                throw RelayStoreError.unknownAccount
            }
            guard let ref = try Self.deviceRef(db, account, deviceID) else { throw RelayStoreError.unknownDevice(deviceID) }
            try db.cachedStatement(sql: "UPDATE devices SET registration_id = ? WHERE id = ?").execute(arguments: [Int64(registrationID), ref])
            if let signed {
                try db.cachedStatement(sql: "UPDATE devices SET signed_prekey_id = ?, signed_prekey = ?, signed_prekey_signature = ? WHERE id = ?")
                               .execute(arguments: [Int64(signed.id), signed.publicKey, signed.signature, ref])
            }
            for key in oneTime {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO prekeys (device_ref, prekey_id, public_key) VALUES (?, ?, ?)")
                               .execute(arguments: [ref, Int64(key.id), key.publicKey])
            }
            let count = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM prekeys WHERE device_ref = ?"), arguments: [ref]) ?? 0
            guard count <= maxStored else { throw RelayStoreError.tooManyPrekeys(limit: maxStored) }
            return count
        }
    }

    public func claimBundles(account: String, devices: [UInt32]?) async throws(RelayStoreError) -> [PrekeyBundleRecord] {
        try await write { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM accounts WHERE name = ?"), arguments: [account]) == true else {
                throw RelayStoreError.unknownAccount
            }
            var rows: [Row] = []
            let sql = "SELECT id, device_id, registration_id, signed_prekey_id, signed_prekey, signed_prekey_signature FROM devices"
            if let devices {
                for d in devices {
                    guard let row = try Row.fetchOne(db.cachedStatement(sql: sql + " WHERE account = ? AND device_id = ?"), arguments: [account, Int64(d)]) else {
                        throw RelayStoreError.unknownDevice(d)
                    }
                    rows.append(row)
                }
            } else {
                rows = try Row.fetchAll(db.cachedStatement(sql: sql + " WHERE account = ? ORDER BY device_id"), arguments: [account])
            }
            return try rows.map { row in
                let ref: Int64 = row["id"]
                var signed: SignedPrekeyRecord?
                if let id = row["signed_prekey_id"] as Int64?, let key = row["signed_prekey"] as Data?, let sig = row["signed_prekey_signature"] as Data? {
                    signed = SignedPrekeyRecord(id: UInt32(truncatingIfNeeded: id), publicKey: key, signature: sig)
                }
                var oneTime: OneTimePrekeyRecord?
                if let pk = try Row.fetchOne(db.cachedStatement(sql: "SELECT prekey_id, public_key FROM prekeys WHERE device_ref = ? ORDER BY prekey_id LIMIT 1"),
                                             arguments: [ref]) {
                    let id: Int64 = pk["prekey_id"]
                    oneTime = OneTimePrekeyRecord(id: UInt32(truncatingIfNeeded: id), publicKey: pk["public_key"])
                    try db.cachedStatement(sql: "DELETE FROM prekeys WHERE device_ref = ? AND prekey_id = ?").execute(arguments: [ref, id])
                }
                let remaining = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM prekeys WHERE device_ref = ?"), arguments: [ref]) ?? 0
                return PrekeyBundleRecord(deviceID: UInt32(truncatingIfNeeded: row["device_id"] as Int64),
                                          registrationID: UInt32(truncatingIfNeeded: row["registration_id"] as Int64),
                                          signedPrekey: signed, oneTime: oneTime, remaining: remaining)
            }
        }
    }

    public func prekeyCount(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        try await read { db in
            guard let ref = try Self.deviceRef(db, account, deviceID) else { throw RelayStoreError.unknownDevice(deviceID) }
            return try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM prekeys WHERE device_ref = ?"), arguments: [ref]) ?? 0
        }
    }

    // MARK: queue

    public func enqueue(_ r: EnqueueRequest,
                        committed: @escaping @Sendable ([QueuedMessage]) -> Void) async throws(RelayStoreError) -> EnqueueOutcome {
        try await write({ db in
            if let time = try Int64.fetchOne(db.cachedStatement(sql: """
                SELECT server_time FROM dedupe WHERE sender_account = ? AND sender_device = ? AND client_message_id = ?
                """), arguments: [r.senderAccount, Int64(r.senderDevice), Int64(bitPattern: r.clientMessageID)]) {
                return EnqueueOutcome.duplicate(serverTime: UInt64(time))
            }
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM accounts WHERE name = ?"), arguments: [r.recipient]) == true else {
                throw RelayStoreError.unknownAccount
            }
            var refs: [Int64] = []
            refs.reserveCapacity(r.devices.count)
            for d in r.devices {
                guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT id, queue_depth FROM devices WHERE account = ? AND device_id = ?"),
                                                 arguments: [r.recipient, Int64(d)]) else { throw RelayStoreError.unknownDevice(d) }
                let depth: Int = row["queue_depth"]
                guard depth < r.queueCap else { throw RelayStoreError.queueFull(device: d, cap: r.queueCap) }
                refs.append(row["id"])
            }
            let expires = Int64(clamping: r.now &+ r.ttlMilliseconds)
            var messages: [QueuedMessage] = []
            messages.reserveCapacity(refs.count)
            for (ref, d) in zip(refs, r.devices) {
                try db.cachedStatement(sql: """
                    INSERT INTO messages (device_ref, sender_account, sender_device, server_time, expires_at, payload) VALUES (?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [ref, r.senderAccount, Int64(r.senderDevice), Int64(r.now), expires, r.payload])
                try db.cachedStatement(sql: "UPDATE devices SET queue_depth = queue_depth + 1 WHERE id = ?").execute(arguments: [ref])
                messages.append(QueuedMessage(serverID: UInt64(db.lastInsertedRowID), account: r.recipient, deviceID: d,
                                              senderAccount: r.senderAccount, senderDevice: r.senderDevice,
                                              serverTime: r.now, payload: r.payload))
            }
            try db.cachedStatement(sql: """
                INSERT INTO dedupe (sender_account, sender_device, client_message_id, server_time, expires_at) VALUES (?, ?, ?, ?, ?)
                """).execute(arguments: [r.senderAccount, Int64(r.senderDevice), Int64(bitPattern: r.clientMessageID), Int64(r.now), expires])
            return EnqueueOutcome.stored(serverTime: r.now, messages: messages)
        }, committed: { outcome in
            if case .stored(_, let messages) = outcome { committed(messages) }
        })
    }

    public func pending(account: String, deviceID: UInt32, after: UInt64, limit: Int) async throws(RelayStoreError) -> [QueuedMessage] {
        try await read { db in
            guard let ref = try Self.deviceRef(db, account, deviceID) else { throw RelayStoreError.unknownDevice(deviceID) }
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT id, sender_account, sender_device, server_time, payload FROM messages
                WHERE device_ref = ? AND id > ? ORDER BY id LIMIT ?
                """), arguments: [ref, Int64(clamping: after), limit])
            return rows.map { row in
                QueuedMessage(serverID: UInt64(row["id"] as Int64), account: account, deviceID: deviceID,
                              senderAccount: row["sender_account"], senderDevice: UInt32(truncatingIfNeeded: row["sender_device"] as Int64),
                              serverTime: UInt64(row["server_time"] as Int64), payload: row["payload"])
            }
        }
    }

    public func acknowledge(account: String, deviceID: UInt32, serverIDs: [UInt64]) async throws(RelayStoreError) -> Int {
        guard !serverIDs.isEmpty else { return 0 }
        return try await write { db in
            guard let ref = try Self.deviceRef(db, account, deviceID) else { throw RelayStoreError.unknownDevice(deviceID) }
            var deleted = 0
            for id in serverIDs {
                try db.cachedStatement(sql: "DELETE FROM messages WHERE id = ? AND device_ref = ?").execute(arguments: [Int64(clamping: id), ref])
                deleted += db.changesCount
            }
            if deleted > 0 {
                try db.cachedStatement(sql: "UPDATE devices SET queue_depth = queue_depth - ? WHERE id = ?").execute(arguments: [deleted, ref])
            }
            return deleted
        }
    }

    public func queueDepth(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        try await read { db in
            guard let depth = try Int.fetchOne(db, sql: "SELECT queue_depth FROM devices WHERE account = ? AND device_id = ?",
                                               arguments: [account, Int64(deviceID)]) else { throw RelayStoreError.unknownDevice(deviceID) }
            return depth
        }
    }

    public func totalQueueDepth() async throws(RelayStoreError) -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(queue_depth), 0) FROM devices") ?? 0 }
    }

    public func purgeExpired(now: UInt64) async throws(RelayStoreError) -> Int {
        try await write { db in
            let cutoff = Int64(clamping: now)
            try db.execute(sql: """
                UPDATE devices SET queue_depth = queue_depth -
                    (SELECT COUNT(*) FROM messages WHERE messages.device_ref = devices.id AND messages.expires_at <= ?1)
                WHERE id IN (SELECT DISTINCT device_ref FROM messages WHERE expires_at <= ?1)
                """, arguments: [cutoff])
            try db.execute(sql: "DELETE FROM messages WHERE expires_at <= ?", arguments: [cutoff])
            let deleted = db.changesCount
            try db.execute(sql: "DELETE FROM dedupe WHERE expires_at <= ?", arguments: [cutoff])
            return deleted
        }
    }
}

/// Collects writes and commits them in batches: one transaction and one fsync per batch,
/// each write in its own savepoint. `committed` callbacks run in commit order on the writer
/// queue, before the next batch begins.
final class GroupCommitter: Sendable {
    struct Pending: Sendable {
        let apply: @Sendable (Database) throws -> Void
        let finish: @Sendable ((any Error)?) -> Void
    }

    private struct State {
        var pending: [Pending] = []
        var flushing = false
    }

    private let pool: DatabasePool
    private let queue = DispatchQueue(label: "hush-relay.sqlite.writer")
    private let state = Mutex(State())
    /// Most writes committed in one transaction (bounds a batch's latency and memory).
    static let maxBatch = 512

    init(pool: DatabasePool) { self.pool = pool }

    func submit<T: Sendable>(body: @escaping @Sendable (Database) throws -> T, committed: (@Sendable (T) -> Void)?,
                             done: @escaping @Sendable (Result<T, RelayStoreError>) -> Void) {
        let box = Mutex<T?>(nil)
        let pending = Pending(apply: { db in
            let value = try body(db)
            box.withLock { $0 = value }
        }, finish: { error in
            if let error { done(.failure(SQLiteRelayStore.map(error))); return }
            guard let value = box.withLock({ $0 }) else { done(.failure(.storage("no result"))); return }
            committed?(value)
            done(.success(value))
        })
        let start = state.withLock { s -> Bool in
            s.pending.append(pending)
            if s.flushing { return false }
            s.flushing = true
            return true
        }
        if start { queue.async { self.flushLoop() } }
    }

    private func flushLoop() {
        while true {
            let batch = state.withLock { s -> [Pending] in
                if s.pending.isEmpty {
                    s.flushing = false
                    return []
                }
                let n = min(s.pending.count, Self.maxBatch)
                let batch = Array(s.pending.prefix(n))
                s.pending.removeFirst(n)
                return batch
            }
            if batch.isEmpty { return }
            var errors = [(any Error)?](repeating: nil, count: batch.count)
            do {
                try pool.writeWithoutTransaction { db in
                    try db.inTransaction(.immediate) {
                        for (i, w) in batch.enumerated() {
                            do {
                                try db.inSavepoint {
                                    try w.apply(db)
                                    return .commit
                                }
                            } catch { errors[i] = error }
                        }
                        return .commit
                    }
                }
            } catch {
                for i in errors.indices where errors[i] == nil { errors[i] = error }
            }
            for (i, w) in batch.enumerated() { w.finish(errors[i]) }
        }
    }
}
