import Dispatch
import Foundation
import GRDB
import Hush
import Synchronization

/// ``RelayStore`` on SQLite through GRDB (`Docs/spec/relay.md` §7.4).
///
/// - WAL journal, `synchronous = FULL`: a commit is on disk (fsync) before the call returns,
///   so nothing acknowledged is lost on `kill -9` or power loss.
/// - Group commit: writes from all connections are queued and committed together, one
///   transaction (one fsync) per batch. The hot writes (enqueue, acknowledge) validate
///   everything before their first statement, so they need no savepoint: a rejected one has
///   written nothing, and a storage error fails the whole batch. The rare writes (register,
///   prekeys, purge) keep a savepoint each. Writes run on one dedicated dispatch queue, reads
///   on GRDB's reader pool: never on an event loop.
/// - In memory (``StoreCache``): accounts, devices (row id, static key, registration id),
///   queue depths and prekey counts (X25519 and Kyber), loaded at open and changed only by the writer, so login,
///   routing checks and depth queries touch no table. Registrations and prekey counts enter
///   the cache after their commit; queue depths change inside the batch (later writes of the
///   batch see them) and the cache is reloaded from the database if a batch fails.
public final class SQLiteRelayStore: RelayStore, CallbackRelayStore {
    let pool: DatabasePool
    private let batcher: GroupCommitter
    let cache: SharedCache

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) throws(RelayStoreError) {
        var config = Configuration()
        // Another connection to the file (a previous instance still closing, e.g. across a
        // restart in one process) is waited for, up to 5 s, instead of failing at once.
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        config.maximumReaderCount = 4
        do {
            pool = try DatabasePool(path: path, configuration: config)
            try Self.migrator.migrate(pool)
            cache = SharedCache(try pool.read(StoreCache.load))
        } catch {
            throw .storage("open: \(error)")
        }
        let cache = self.cache
        batcher = GroupCommitter(pool: pool) { db in
            // A failed batch rolled back: forget the depths it counted.
            if let fresh = try? StoreCache.load(db) { cache.withLock { $0 = fresh } }
        }
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
        // Queue depths are counted in memory (from the messages table at open): the column
        // cost an UPDATE per stored and per acknowledged message.
        m.registerMigration("v2") { db in
            try db.execute(sql: "ALTER TABLE devices DROP COLUMN queue_depth")
        }
        // Kyber prekeys (spec §8.3): the last-resort one on the device row, one-time ones in
        // their own table.
        m.registerMigration("v3") { db in
            try db.execute(sql: """
                ALTER TABLE devices ADD COLUMN kyber_last_resort_id INTEGER;
                ALTER TABLE devices ADD COLUMN kyber_last_resort BLOB;
                ALTER TABLE devices ADD COLUMN kyber_last_resort_signature BLOB;
                CREATE TABLE kyber_prekeys (
                    device_ref INTEGER NOT NULL,
                    prekey_id INTEGER NOT NULL,
                    public_key BLOB NOT NULL,
                    signature BLOB NOT NULL,
                    PRIMARY KEY (device_ref, prekey_id)
                ) WITHOUT ROWID;
                """)
        }
        // Sealed sender (spec §20.1): each account's access key and whether anyone may send.
        m.registerMigration("v4") { db in
            try db.execute(sql: """
                CREATE TABLE sealed_access (
                    account TEXT PRIMARY KEY NOT NULL REFERENCES accounts(name),
                    access_key BLOB,
                    allow_anyone INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        // Link tokens (spec §22.4): SHA-256 of each open token with the device id it reserves;
        // one open token per (account, device id). Deleted when used, purged when expired.
        m.registerMigration("v5") { db in
            try db.execute(sql: """
                CREATE TABLE link_tokens (
                    account TEXT NOT NULL REFERENCES accounts(name),
                    device_id INTEGER NOT NULL,
                    token_hash BLOB NOT NULL,
                    expires_at INTEGER NOT NULL,
                    PRIMARY KEY (account, device_id)
                ) WITHOUT ROWID;
                CREATE INDEX link_tokens_by_expiry ON link_tokens (expires_at);
                """)
        }
        return m
    }

    // MARK: helpers

    /// Runs `body` in the writer's next batch. `isolated`: in its own savepoint (a throw rolls
    /// back only this write); otherwise `body` must throw only before its first statement that
    /// writes, and a storage error fails the batch. `committed` runs after the commit, on the
    /// writer, in commit order.
    private func write<T: Sendable>(isolated: Bool, _ body: @escaping @Sendable (Database) throws -> T,
                                    committed: (@Sendable (T) -> Void)? = nil) async throws(RelayStoreError) -> T {
        let result: Result<T, RelayStoreError> = await withCheckedContinuation { continuation in
            batcher.submit(isolated: isolated, body: body, committed: committed) { continuation.resume(returning: $0) }
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
                         maxDevices: Int, linkToken: LinkTokenProof?) async throws(RelayStoreError) -> RegisterOutcome {
        let cache = self.cache
        return try await write(isolated: true, { db -> (RegisterOutcome, Int64?) in
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
                return (.alreadyRegistered, nil)
            }
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM devices WHERE static_key = ?"), arguments: [staticKey]) == true {
                throw RelayStoreError.deviceTaken(deviceID)
            }
            let count = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM devices WHERE account = ?"), arguments: [account]) ?? 0
            // An account with devices adds one only with a link token for this id (§5.1, §22.4);
            // a new account, or one whose devices are all gone (recovery), needs none.
            let needsToken = outcome != .createdAccount && count > 0
            if needsToken {
                guard let linkToken,
                      let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT token_hash, expires_at FROM link_tokens WHERE account = ? AND device_id = ?"),
                                                 arguments: [account, Int64(deviceID)]),
                      (row["expires_at"] as Int64) > Int64(clamping: linkToken.now),
                      ConstantTime.equals(row["token_hash"] as Data, linkToken.tokenHash) else {
                    throw RelayStoreError.invalidLinkToken
                }
            }
            guard count < maxDevices else { throw RelayStoreError.tooManyDevices(limit: maxDevices) }
            try db.cachedStatement(sql: "INSERT INTO devices (account, device_id, static_key) VALUES (?, ?, ?)")
                           .execute(arguments: [account, Int64(deviceID), staticKey])
            let ref = db.lastInsertedRowID
            if needsToken {
                // Used: in the transaction of the insert.
                try db.cachedStatement(sql: "DELETE FROM link_tokens WHERE account = ? AND device_id = ?").execute(arguments: [account, Int64(deviceID)])
            }
            return (outcome, ref)
        }, committed: { outcome, ref in
            guard let ref else { return }
            cache.withLock { c in
                c.accounts[account] = identityKey
                c.add(StoreCache.Device(ref: ref, account: account, deviceID: deviceID, staticKey: staticKey))
            }
        }).0
    }

    public func issueLinkToken(_ r: LinkTokenIssue) async throws(RelayStoreError) -> UInt32 {
        try await write(isolated: true) { db -> UInt32 in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM accounts WHERE name = ?"), arguments: [r.account]) == true else {
                throw RelayStoreError.unknownAccount
            }
            let registered = try Int64.fetchAll(db.cachedStatement(sql: "SELECT device_id FROM devices WHERE account = ?"), arguments: [r.account])
            guard registered.count < r.maxDevices else { throw RelayStoreError.tooManyDevices(limit: r.maxDevices) }
            try db.cachedStatement(sql: "DELETE FROM link_tokens WHERE account = ? AND expires_at <= ?")
                           .execute(arguments: [r.account, Int64(clamping: r.now)])
            // Oldest first: those over either limit are revoked (the newest request wins, §22.4).
            var reserved = try Int64.fetchAll(db.cachedStatement(sql: "SELECT device_id FROM link_tokens WHERE account = ? ORDER BY expires_at, device_id"),
                                              arguments: [r.account])
            while !reserved.isEmpty, reserved.count >= r.maxOpenTokens || registered.count + reserved.count >= r.maxDevices {
                try db.cachedStatement(sql: "DELETE FROM link_tokens WHERE account = ? AND device_id = ?").execute(arguments: [r.account, reserved[0]])
                reserved.removeFirst()
            }
            let taken = Set(registered).union(reserved)
            var id: Int64 = 2
            while taken.contains(id) { id += 1 }
            try db.cachedStatement(sql: "INSERT INTO link_tokens (account, device_id, token_hash, expires_at) VALUES (?, ?, ?, ?)")
                           .execute(arguments: [r.account, id, r.tokenHash, Int64(clamping: r.expiresAt)])
            return UInt32(id)
        }
    }

    public func account(named name: String) async throws(RelayStoreError) -> AccountRecord? {
        cache.withLock { $0.accounts[name] }.map { AccountRecord(name: name, identityKey: $0) }
    }

    public func device(account: String, deviceID: UInt32) async throws(RelayStoreError) -> DeviceRecord? {
        cache.withLock { c in
            c.device(account, deviceID).map {
                DeviceRecord(account: account, deviceID: deviceID, staticKey: $0.staticKey, registrationID: $0.registrationID)
            }
        }
    }

    public func loginRecord(account: String, deviceID: UInt32) async throws(RelayStoreError) -> LoginRecord? {
        try loginRecordNow(account: account, deviceID: deviceID).get()
    }

    public func loginRecordNow(account: String, deviceID: UInt32) -> Result<LoginRecord?, RelayStoreError> {
        cache.withLock { c -> Result<LoginRecord?, RelayStoreError> in
            guard let identity = c.accounts[account] else { return .failure(.unknownAccount) }
            return .success(c.device(account, deviceID).map { LoginRecord(identityKey: identity, staticKey: $0.staticKey, prekeyCount: $0.prekeys,
                                                                         kyberPrekeyCount: $0.kyberPrekeys) })
        }
    }

    public func queueDepthNow(account: String, deviceID: UInt32) -> Int? {
        cache.withLock { $0.device(account, deviceID)?.depth }
    }

    public func devices(account: String) async throws(RelayStoreError) -> [DeviceRecord] {
        try await read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT account, device_id, static_key, registration_id FROM devices WHERE account = ? ORDER BY device_id"),
                             arguments: [account]).map { row in
                DeviceRecord(account: row["account"], deviceID: UInt32(truncatingIfNeeded: row["device_id"] as Int64),
                             staticKey: row["static_key"], registrationID: UInt32(truncatingIfNeeded: row["registration_id"] as Int64))
            }
        }
    }

    public func removeDevice(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        let cache = self.cache
        return try await write(isolated: true, { db -> Int in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM accounts WHERE name = ?"), arguments: [account]) == true else {
                throw RelayStoreError.unknownAccount
            }
            guard let ref = try Self.deviceRef(db, account, deviceID) else { throw RelayStoreError.unknownDevice(deviceID) }
            try db.cachedStatement(sql: "DELETE FROM messages WHERE device_ref = ?").execute(arguments: [ref])
            let deleted = db.changesCount
            try db.cachedStatement(sql: "DELETE FROM prekeys WHERE device_ref = ?").execute(arguments: [ref])
            try db.cachedStatement(sql: "DELETE FROM kyber_prekeys WHERE device_ref = ?").execute(arguments: [ref])
            try db.cachedStatement(sql: "DELETE FROM devices WHERE id = ?").execute(arguments: [ref])
            // What it sent is forgotten for dedupe too: a device registered later under this id
            // starts its client message ids afresh (§22.2).
            try db.cachedStatement(sql: "DELETE FROM dedupe WHERE sender_account = ? AND sender_device = ?")
                           .execute(arguments: [account, Int64(deviceID)])
            // In the writer's order, so that an enqueue later in this batch no longer finds the
            // device (a failed batch reloads the cache from the database).
            cache.withLock { $0.remove(ref) }
            return deleted
        }, committed: nil)
    }

    // MARK: prekeys

    public func storePrekeys(account: String, deviceID: UInt32, _ upload: PrekeyUpload) async throws(RelayStoreError) -> PrekeyCounts {
        let cache = self.cache
        return try await write(isolated: true, { db -> (Int64, PrekeyCounts) in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM accounts WHERE name = ?"), arguments: [account]) == true else {
                throw RelayStoreError.unknownAccount
            }
            guard let ref = try Self.deviceRef(db, account, deviceID) else { throw RelayStoreError.unknownDevice(deviceID) }
            try db.cachedStatement(sql: "UPDATE devices SET registration_id = ? WHERE id = ?").execute(arguments: [Int64(upload.registrationID), ref])
            if let signed = upload.signed {
                try db.cachedStatement(sql: "UPDATE devices SET signed_prekey_id = ?, signed_prekey = ?, signed_prekey_signature = ? WHERE id = ?")
                               .execute(arguments: [Int64(signed.id), signed.publicKey, signed.signature, ref])
            }
            if upload.replaceOneTime {
                try db.cachedStatement(sql: "DELETE FROM prekeys WHERE device_ref = ?").execute(arguments: [ref])
                try db.cachedStatement(sql: "DELETE FROM kyber_prekeys WHERE device_ref = ?").execute(arguments: [ref])
            }
            for key in upload.oneTime {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO prekeys (device_ref, prekey_id, public_key) VALUES (?, ?, ?)")
                               .execute(arguments: [ref, Int64(key.id), key.publicKey])
            }
            if let last = upload.kyberLastResort {
                try db.cachedStatement(sql: "UPDATE devices SET kyber_last_resort_id = ?, kyber_last_resort = ?, kyber_last_resort_signature = ? WHERE id = ?")
                               .execute(arguments: [Int64(last.id), last.publicKey, last.signature, ref])
            }
            for key in upload.kyberOneTime {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO kyber_prekeys (device_ref, prekey_id, public_key, signature) VALUES (?, ?, ?, ?)")
                               .execute(arguments: [ref, Int64(key.id), key.publicKey, key.signature])
            }
            let count = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM prekeys WHERE device_ref = ?"), arguments: [ref]) ?? 0
            guard count <= upload.maxStored else { throw RelayStoreError.tooManyPrekeys(limit: upload.maxStored) }
            let kyber = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM kyber_prekeys WHERE device_ref = ?"), arguments: [ref]) ?? 0
            guard kyber <= upload.maxStoredKyber else { throw RelayStoreError.tooManyPrekeys(limit: upload.maxStoredKyber) }
            return (ref, PrekeyCounts(oneTime: count, kyberOneTime: kyber))
        }, committed: { ref, counts in
            cache.withLock { c in
                c.devices[ref]?.prekeys = counts.oneTime
                c.devices[ref]?.kyberPrekeys = counts.kyberOneTime
                c.devices[ref]?.registrationID = upload.registrationID
            }
        }).1
    }

    public func claimBundles(account: String, devices: [UInt32]?) async throws(RelayStoreError) -> [PrekeyBundleRecord] {
        let cache = self.cache
        return try await write(isolated: true, { db -> [(Int64, PrekeyBundleRecord)] in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM accounts WHERE name = ?"), arguments: [account]) == true else {
                throw RelayStoreError.unknownAccount
            }
            var rows: [Row] = []
            let sql = """
                SELECT id, device_id, registration_id, signed_prekey_id, signed_prekey, signed_prekey_signature,
                       kyber_last_resort_id, kyber_last_resort, kyber_last_resort_signature FROM devices
                """
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
                var kyber: KyberPrekeyRecord?
                var lastResort = false
                if let k = try Row.fetchOne(db.cachedStatement(sql: "SELECT prekey_id, public_key, signature FROM kyber_prekeys WHERE device_ref = ? ORDER BY prekey_id LIMIT 1"),
                                            arguments: [ref]) {
                    let id: Int64 = k["prekey_id"]
                    kyber = KyberPrekeyRecord(id: UInt32(truncatingIfNeeded: id), publicKey: k["public_key"], signature: k["signature"])
                    try db.cachedStatement(sql: "DELETE FROM kyber_prekeys WHERE device_ref = ? AND prekey_id = ?").execute(arguments: [ref, id])
                } else if let id = row["kyber_last_resort_id"] as Int64?, let key = row["kyber_last_resort"] as Data?,
                          let sig = row["kyber_last_resort_signature"] as Data? {
                    kyber = KyberPrekeyRecord(id: UInt32(truncatingIfNeeded: id), publicKey: key, signature: sig)
                    lastResort = true
                }
                let kyberRemaining = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM kyber_prekeys WHERE device_ref = ?"), arguments: [ref]) ?? 0
                return (ref, PrekeyBundleRecord(deviceID: UInt32(truncatingIfNeeded: row["device_id"] as Int64),
                                                registrationID: UInt32(truncatingIfNeeded: row["registration_id"] as Int64),
                                                signedPrekey: signed, oneTime: oneTime, remaining: remaining,
                                                kyber: kyber, kyberIsLastResort: lastResort, kyberRemaining: kyberRemaining))
            }
        }, committed: { bundles in
            cache.withLock { c in
                for (ref, b) in bundles {
                    c.devices[ref]?.prekeys = b.remaining
                    c.devices[ref]?.kyberPrekeys = b.kyberRemaining
                }
            }
        }).map(\.1)
    }

    public func prekeyCount(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        guard let n = cache.withLock({ $0.device(account, deviceID)?.prekeys }) else { throw .unknownDevice(deviceID) }
        return n
    }

    public func kyberPrekeyCount(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        guard let n = cache.withLock({ $0.device(account, deviceID)?.kyberPrekeys }) else { throw .unknownDevice(deviceID) }
        return n
    }

    // MARK: queue

    public func enqueue(_ r: EnqueueRequest,
                        committed: @escaping @Sendable ([QueuedMessage]) -> Void) async throws(RelayStoreError) -> EnqueueOutcome {
        let result: Result<EnqueueOutcome, RelayStoreError> = await withCheckedContinuation { continuation in
            enqueue(r, committed: committed) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    public func enqueue(_ r: EnqueueRequest, committed: @escaping @Sendable ([QueuedMessage]) -> Void,
                        completion: @escaping @Sendable (Result<EnqueueOutcome, RelayStoreError>) -> Void) {
        let cache = self.cache
        batcher.submit(isolated: false, body: { db in
            if let time = try Int64.fetchOne(db.cachedStatement(sql: """
                SELECT server_time FROM dedupe WHERE sender_account = ? AND sender_device = ? AND client_message_id = ?
                """), arguments: [r.senderAccount, Int64(r.senderDevice), Int64(bitPattern: r.clientMessageID)]) {
                return EnqueueOutcome.duplicate(serverTime: UInt64(time))
            }
            // Every check before the first write (no savepoint, see write(isolated:)).
            let refs = try cache.withLock { c throws(RelayStoreError) -> [Int64] in
                guard c.accounts[r.recipient] != nil else { throw .unknownAccount }
                var refs: [Int64] = []
                refs.reserveCapacity(r.devices.count)
                for d in r.devices {
                    guard let device = c.device(r.recipient, d) else { throw .unknownDevice(d) }
                    guard device.depth < r.queueCap else { throw .queueFull(device: d, cap: r.queueCap) }
                    refs.append(device.ref)
                }
                for ref in refs { c.changeDepth(ref, by: 1) }
                return refs
            }
            let expires = Int64(clamping: r.now &+ r.ttlMilliseconds)
            var messages: [QueuedMessage] = []
            messages.reserveCapacity(refs.count)
            let insert = try db.cachedStatement(sql: """
                INSERT INTO messages (device_ref, sender_account, sender_device, server_time, expires_at, payload) VALUES (?, ?, ?, ?, ?, ?)
                """)
            for (ref, d) in zip(refs, r.devices) {
                try insert.execute(arguments: [ref, r.senderAccount, Int64(r.senderDevice), Int64(r.now), expires, r.payload])
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
        }, done: completion)
    }

    public func pending(account: String, deviceID: UInt32, after: UInt64, limit: Int) async throws(RelayStoreError) -> [QueuedMessage] {
        guard let ref = cache.withLock({ $0.device(account, deviceID)?.ref }) else { throw .unknownDevice(deviceID) }
        return try await read { db in
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
        let result: Result<Int, RelayStoreError> = await withCheckedContinuation { continuation in
            acknowledge(account: account, deviceID: deviceID, serverIDs: serverIDs) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// `DELETE … WHERE device_ref = ? AND id IN (?, …)` with `n` ids (cached per `n`).
    static func deleteSQL(_ n: Int) -> String {
        "DELETE FROM messages WHERE device_ref = ? AND id IN (" + Array(repeating: "?", count: n).joined(separator: ",") + ")"
    }

    public func acknowledge(account: String, deviceID: UInt32, serverIDs: [UInt64],
                            completion: @escaping @Sendable (Result<Int, RelayStoreError>) -> Void) {
        guard !serverIDs.isEmpty else { return completion(.success(0)) }
        let cache = self.cache
        batcher.submit(isolated: false, body: { db -> Int in
            guard let ref = cache.withLock({ $0.device(account, deviceID)?.ref }) else { throw RelayStoreError.unknownDevice(deviceID) }
            // One statement per ack stanza (at most 64 ids; larger lists in chunks of 64).
            var deleted = 0
            var start = 0
            while start < serverIDs.count {
                let chunk = serverIDs[start..<min(start + 64, serverIDs.count)]
                var args: [any DatabaseValueConvertible] = [ref]
                args.reserveCapacity(chunk.count + 1)
                for id in chunk { args.append(Int64(clamping: id)) }
                try db.cachedStatement(sql: Self.deleteSQL(chunk.count)).execute(arguments: StatementArguments(args))
                deleted += db.changesCount
                start += chunk.count
            }
            if deleted > 0 { cache.withLock { $0.changeDepth(ref, by: -deleted) } }
            return deleted
        }, committed: nil, done: completion)
    }

    public func queueDepth(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        guard let depth = cache.withLock({ $0.device(account, deviceID)?.depth }) else { throw .unknownDevice(deviceID) }
        return depth
    }

    public func totalQueueDepth() async throws(RelayStoreError) -> Int {
        cache.withLock { $0.totalDepth }
    }

    public func purgeExpired(now: UInt64) async throws(RelayStoreError) -> Int {
        let cache = self.cache
        return try await write(isolated: true) { db in
            let cutoff = Int64(clamping: now)
            let counts = try Row.fetchAll(db, sql: "SELECT device_ref, COUNT(*) AS n FROM messages WHERE expires_at <= ? GROUP BY device_ref",
                                          arguments: [cutoff])
            try db.execute(sql: "DELETE FROM messages WHERE expires_at <= ?", arguments: [cutoff])
            let deleted = db.changesCount
            try db.execute(sql: "DELETE FROM dedupe WHERE expires_at <= ?", arguments: [cutoff])
            try db.execute(sql: "DELETE FROM link_tokens WHERE expires_at <= ?", arguments: [cutoff])
            cache.withLock { c in for row in counts { c.changeDepth(row["device_ref"], by: -(row["n"] as Int)) } }
            return deleted
        }
    }

    // MARK: sealed sender (spec §20)

    public func sealedAccess(account: String) async throws(RelayStoreError) -> SealedAccess? {
        try await read { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT access_key, allow_anyone FROM sealed_access WHERE account = ?"),
                                             arguments: [account]) else { return nil }
            return SealedAccess(accessKey: row["access_key"], allowAnyone: row["allow_anyone"])
        }
    }

    public func acceptedTime(senderAccount: String, senderDevice: UInt32, clientMessageID: UInt64) async throws(RelayStoreError) -> UInt64? {
        try await read { db in
            try Int64.fetchOne(db.cachedStatement(sql: """
                SELECT server_time FROM dedupe WHERE sender_account = ? AND sender_device = ? AND client_message_id = ?
                """), arguments: [senderAccount, Int64(senderDevice), Int64(bitPattern: clientMessageID)]).map { UInt64($0) }
        }
    }

    public func setSealedAccess(account: String, _ access: SealedAccess) async throws(RelayStoreError) {
        guard cache.withLock({ $0.accounts[account] != nil }) else { throw .unknownAccount }
        try await write(isolated: true) { db in
            try db.cachedStatement(sql: """
                INSERT INTO sealed_access (account, access_key, allow_anyone) VALUES (?, ?, ?)
                ON CONFLICT (account) DO UPDATE SET access_key = excluded.access_key, allow_anyone = excluded.allow_anyone
                """).execute(arguments: [account, access.accessKey, access.allowAnyone])
        }
    }
}

/// The store's cache behind a lock (a class, so that closures can share it).
final class SharedCache: Sendable {
    private let mutex: Mutex<StoreCache>
    init(_ cache: StoreCache) { mutex = Mutex(cache) }
    func withLock<R, E: Error>(_ body: (inout sending StoreCache) throws(E) -> sending R) throws(E) -> sending R {
        try mutex.withLock(body)
    }
}

/// What ``SQLiteRelayStore`` keeps in memory (about 200 bytes per registered device).
struct StoreCache: Sendable {
    struct Device: Sendable {
        let ref: Int64
        let account: String
        let deviceID: UInt32
        let staticKey: Data
        var registrationID: UInt32 = 0
        var depth = 0
        var prekeys = 0
        var kyberPrekeys = 0
    }
    struct Address: Hashable, Sendable {
        let account: String
        let deviceID: UInt32
    }

    /// Identity keys by account name.
    var accounts: [String: Data] = [:]
    /// Devices by row id.
    var devices: [Int64: Device] = [:]
    /// Row ids by address.
    var refs: [Address: Int64] = [:]
    /// Messages queued for all devices.
    var totalDepth = 0

    func device(_ account: String, _ deviceID: UInt32) -> Device? {
        refs[Address(account: account, deviceID: deviceID)].flatMap { devices[$0] }
    }

    mutating func add(_ device: Device) {
        devices[device.ref] = device
        refs[Address(account: device.account, deviceID: device.deviceID)] = device.ref
        totalDepth += device.depth
    }

    mutating func remove(_ ref: Int64) {
        guard let device = devices.removeValue(forKey: ref) else { return }
        refs[Address(account: device.account, deviceID: device.deviceID)] = nil
        totalDepth -= device.depth
    }

    mutating func changeDepth(_ ref: Int64, by delta: Int) {
        guard devices[ref] != nil else { return }
        devices[ref]!.depth += delta
        totalDepth += delta
    }

    /// Reads everything from the database.
    static func load(_ db: Database) throws -> StoreCache {
        var c = StoreCache()
        for row in try Row.fetchAll(db, sql: "SELECT name, identity_key FROM accounts") {
            c.accounts[row["name"]] = row["identity_key"]
        }
        var depths: [Int64: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT device_ref, COUNT(*) AS n FROM messages GROUP BY device_ref") {
            depths[row["device_ref"]] = row["n"]
        }
        var prekeys: [Int64: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT device_ref, COUNT(*) AS n FROM prekeys GROUP BY device_ref") {
            prekeys[row["device_ref"]] = row["n"]
        }
        var kyber: [Int64: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT device_ref, COUNT(*) AS n FROM kyber_prekeys GROUP BY device_ref") {
            kyber[row["device_ref"]] = row["n"]
        }
        for row in try Row.fetchAll(db, sql: "SELECT id, account, device_id, static_key, registration_id FROM devices") {
            let ref: Int64 = row["id"]
            c.add(Device(ref: ref, account: row["account"], deviceID: UInt32(truncatingIfNeeded: row["device_id"] as Int64),
                         staticKey: row["static_key"], registrationID: UInt32(truncatingIfNeeded: row["registration_id"] as Int64),
                         depth: depths[ref] ?? 0, prekeys: prekeys[ref] ?? 0, kyberPrekeys: kyber[ref] ?? 0))
        }
        return c
    }
}

/// Collects writes and commits them in batches: one transaction and one fsync per batch.
/// `committed` callbacks run in commit order on the writer queue, before the next batch
/// begins, then the completions.
final class GroupCommitter: Sendable {
    struct Pending: Sendable {
        let isolated: Bool
        let apply: @Sendable (Database) throws -> Void
        let finish: @Sendable ((any Error)?) -> Void
    }

    /// A write's result, touched only on the writer queue.
    final class Box<T>: @unchecked Sendable { var value: T? }

    private struct State {
        var pending: [Pending] = []
        var flushing = false
    }

    private let pool: DatabasePool
    private let recover: @Sendable (Database) -> Void
    private let queue = DispatchQueue(label: "hush-relay.sqlite.writer")
    private let state = Mutex(State())
    /// Most writes committed in one transaction (bounds a batch's latency and memory).
    static let maxBatch = 1_024

    /// `recover` runs on the writer after a batch failed (its transaction rolled back).
    init(pool: DatabasePool, recover: @escaping @Sendable (Database) -> Void) {
        self.pool = pool
        self.recover = recover
    }

    func submit<T: Sendable>(isolated: Bool, body: @escaping @Sendable (Database) throws -> T, committed: (@Sendable (T) -> Void)?,
                             done: @escaping @Sendable (Result<T, RelayStoreError>) -> Void) {
        let box = Box<T>()
        let pending = Pending(isolated: isolated, apply: { db in
            box.value = try body(db)
        }, finish: { error in
            if let error { done(.failure(SQLiteRelayStore.map(error))); return }
            guard let value = box.value else { done(.failure(.storage("no result"))); return }
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
                if s.pending.count <= Self.maxBatch {
                    defer { s.pending = [] }
                    return s.pending
                }
                let batch = Array(s.pending.prefix(Self.maxBatch))
                s.pending.removeFirst(Self.maxBatch)
                return batch
            }
            if batch.isEmpty { return }
            var errors = [(any Error)?](repeating: nil, count: batch.count)
            var failed = false
            do {
                try pool.writeWithoutTransaction { db in
                    try db.inTransaction(.immediate) {
                        for (i, w) in batch.enumerated() {
                            if w.isolated {
                                do {
                                    try db.inSavepoint {
                                        try w.apply(db)
                                        return .commit
                                    }
                                } catch { errors[i] = error }
                            } else {
                                // A rejection (RelayStoreError) happens before any write; a
                                // storage error aborts the batch.
                                do { try w.apply(db) } catch let e as RelayStoreError { errors[i] = e }
                            }
                        }
                        return .commit
                    }
                }
            } catch {
                failed = true
                for i in errors.indices where errors[i] == nil { errors[i] = error }
            }
            if failed { pool.writeWithoutTransaction { db in recover(db) } }
            for (i, w) in batch.enumerated() { w.finish(errors[i]) }
        }
    }
}
