import Foundation
import GRDB
import Hush
import HushPQ

/// The encrypted ``ClientStore`` on SQLite through GRDB, like WhatsApp's msgstore.db
/// (Docs/client.md §Store).
///
/// - One connection (`DatabaseQueue`), WAL journal, `synchronous = FULL`: a step is on disk
///   (fsync) before it returns, so a kill -9 or a power loss keeps every step that returned and
///   nothing of one that did not.
/// - ``atomically(_:)`` is one write transaction; store calls made inside it, from the thread
///   running it (including those Hush makes from ``updateSession(for:_:)``), join it through a
///   per-thread frame (``TransactionFrame``) as savepoints. Other threads wait for the step.
/// - Every sensitive column is sealed with XChaCha20-Poly1305 under the database key, bound to
///   its table, column and row (``ColumnSeal``); the database key is wrapped by a key from
///   Argon2id over a passphrase, or by a key file (``KeyWrap``).
/// - Reads page (`messages(in:before:limit:)`): nothing loads the history.
public final class SQLiteClientStore: ClientStore, @unchecked Sendable {
    // Immutable after init; the queue serializes every access to the connection.
    private let queue: DatabaseQueue
    let seal: ColumnSeal
    private let identity: IdentityKeyPair
    private let registrationID: UInt32
    private let random: any RandomSource
    /// The file's path.
    public let path: String

    private init(queue: DatabaseQueue, seal: ColumnSeal, identity: IdentityKeyPair, registrationID: UInt32,
                 random: any RandomSource, path: String) {
        self.queue = queue
        self.seal = seal
        self.identity = identity
        self.registrationID = registrationID
        self.random = random
        self.path = path
    }

    // MARK: Opening

    /// Creates a store at `path` (a missing or empty file) for the device `identity` /
    /// `registrationID`, with a fresh random database key wrapped under `secret`.
    ///
    /// - Throws: `.alreadyExists` if a store is there, `.notAHushStore` for another file,
    ///   `.invalidKeyFile`, `.keyDerivationFailed`, `.storage`.
    public static func create(
        path: String, secret: ClientStoreSecret, identity: IdentityKeyPair, registrationID: UInt32,
        random: some RandomSource = SystemRandom()
    ) throws(ClientStoreError) -> SQLiteClientStore {
        // Owner-only from the first byte; SQLite gives the -wal and -shm files the same mode.
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw .storage(code: 0, message: "cannot create \(path)")
            }
        } else if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber, size.intValue == 0 {
            guard chmod(path, 0o600) == 0 else { throw .storage(code: 0, message: "cannot chmod \(path)") }
        }
        let queue = try makeQueue(path)
        return try mapErrors {
            try queue.inDatabase { db in
                let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                if applicationID == ClientStoreSchema.applicationID { throw ClientStoreError.alreadyExists }
                guard applicationID == 0 else { throw ClientStoreError.notAHushStore }
                let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
                guard tables.allSatisfy(ClientStoreSchema.knownTables.contains) else { throw ClientStoreError.notAHushStore }
            }
            try ClientStoreSchema.migrator.migrate(queue)
            let databaseKey = try SymmetricKey(randomByteCount: XChaChaPoly.keyByteCount, using: random)
            let wrap = try KeyWrap.wrap(databaseKey, under: secret, random: random)
            let seal = ColumnSeal(key: databaseKey, random: random)
            try queue.write { db in
                try db.execute(sql: "DELETE FROM store_keys")
                try db.execute(sql: "DELETE FROM device")
                try db.execute(
                    sql: """
                        INSERT INTO store_keys (id, method, salt, operations, memory_bytes, wrapped_key, digest)
                        VALUES (1, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [wrap.method, Data(wrap.salt), wrap.operations, wrap.memoryBytes, Data(wrap.wrappedKey), Data(wrap.digest)])
                let row = ColumnSeal.RowKey(.integer(1))
                var registration = [UInt8](); ColumnSeal.appendUInt32(&registration, registrationID)
                try db.execute(
                    sql: "INSERT INTO device (id, identity_key_pair, registration_id) VALUES (1, ?, ?)",
                    arguments: [try seal.seal(identity.privateKey.rawRepresentation, "device", "identity_key_pair", row),
                                try seal.seal(registration, "device", "registration_id", row)])
                try db.execute(sql: "PRAGMA application_id = \(ClientStoreSchema.applicationID)")
            }
            return SQLiteClientStore(queue: queue, seal: seal, identity: identity, registrationID: registrationID,
                                     random: random, path: path)
        }
    }

    /// Opens the store at `path` with `secret`, upgrading an older schema.
    ///
    /// - Throws: `.notFound`, `.notAHushStore`, `.unsupportedSchema` (written by a newer version),
    ///   `.wrongPassphrase`, `.corrupted(table:)`, `.keyDerivationFailed`, `.storage`.
    public static func open(
        path: String, secret: ClientStoreSecret, random: some RandomSource = SystemRandom()
    ) throws(ClientStoreError) -> SQLiteClientStore {
        guard FileManager.default.fileExists(atPath: path) else { throw .notFound }
        let queue = try makeQueue(path)
        return try mapErrors {
            let wrap = try queue.inDatabase { db -> KeyWrap in
                let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                guard applicationID == ClientStoreSchema.applicationID else { throw ClientStoreError.notAHushStore }
                if try ClientStoreSchema.migrator.hasBeenSuperseded(db) { throw ClientStoreError.unsupportedSchema }
                guard let row = try Row.fetchOne(
                    db, sql: "SELECT method, salt, operations, memory_bytes, wrapped_key, digest FROM store_keys WHERE id = 1")
                else { throw ClientStoreError.corrupted(table: "store_keys") }
                let c = Columns(row, "store_keys")
                let method: String = try c[0], salt: Data = try c[1], operations: Int = try c[2]
                let memory: Int = try c[3], wrapped: Data = try c[4], digest: Data = try c[5]
                return KeyWrap(method: method, salt: [UInt8](salt), operations: operations, memoryBytes: memory,
                               wrappedKey: [UInt8](wrapped), digest: [UInt8](digest))
            }
            let databaseKey = try wrap.unwrap(with: secret)
            try ClientStoreSchema.migrator.migrate(queue)
            let seal = ColumnSeal(key: databaseKey, random: random)
            let (identity, registrationID) = try queue.inDatabase { db -> (IdentityKeyPair, UInt32) in
                guard let row = try Row.fetchOne(db, sql: "SELECT identity_key_pair, registration_id FROM device WHERE id = 1")
                else { throw ClientStoreError.corrupted(table: "device") }
                let c = Columns(row, "device")
                let pair: Data = try c[0], registration: Data = try c[1]
                let key = ColumnSeal.RowKey(.integer(1))
                let scalar = try seal.openSecret(pair, "device", "identity_key_pair", key)
                let registrationBytes = try seal.open(registration, "device", "registration_id", key)
                guard let id = StoredValues.u32(registrationBytes),
                      let privateKey = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: scalar)
                else { throw ClientStoreError.corrupted(table: "device") }
                return (IdentityKeyPair(privateKey: privateKey), id)
            }
            return SQLiteClientStore(queue: queue, seal: seal, identity: identity, registrationID: registrationID,
                                     random: random, path: path)
        }
    }

    /// Re-wraps the database key under `secret` (a new passphrase, new limits or a key file).
    /// Nothing else is rewritten.
    public func rekey(to secret: ClientStoreSecret) throws(ClientStoreError) {
        let wrap = try KeyWrap.wrap(seal.key, under: secret, random: StoredRandom(base: random))
        try mapErrors {
            try step { db in
                try db.execute(
                    sql: "UPDATE store_keys SET method = ?, salt = ?, operations = ?, memory_bytes = ?, wrapped_key = ?, digest = ? WHERE id = 1",
                    arguments: [wrap.method, Data(wrap.salt), wrap.operations, wrap.memoryBytes, Data(wrap.wrappedKey), Data(wrap.digest)])
            }
        }
    }

    /// Closes the connection (checkpointing the WAL into the file). Later calls fail with `.storage`.
    public func close() throws(ClientStoreError) {
        try mapErrors { try queue.close() }
    }

    private static func makeQueue(_ path: String) throws(ClientStoreError) -> DatabaseQueue {
        var config = Configuration()
        config.prepareDatabase { db in
            // WAL first: a fresh file gets it before any table exists.
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        config.label = "HushClient.store"
        // Another process holding the file (a second `hush` on the same home) is waited for, not forever.
        config.busyMode = .timeout(5)
        return try mapErrors { try DatabaseQueue(path: path, configuration: config) }
    }

    private static func mapErrors<R>(_ body: () throws -> R) throws(ClientStoreError) -> R {
        do { return try body() } catch { throw map(error) }
    }

    private func mapErrors<R>(_ body: () throws -> R) throws(ClientStoreError) -> R {
        try Self.mapErrors(body)
    }

    static func map(_ error: any Error) -> ClientStoreError {
        if let e = error as? ClientStoreError { return e }
        if error is RowDecodingError { return .corrupted(table: "sqlite") }
        if let e = error as? DatabaseError {
            switch e.resultCode.primaryResultCode {
            case .SQLITE_NOTADB: return .notAHushStore
            case .SQLITE_CORRUPT: return .corrupted(table: "sqlite")
            default: return .storage(code: e.resultCode.rawValue, message: e.message ?? "")
            }
        }
        return .storage(code: 0, message: String(describing: type(of: error)))
    }

    // MARK: Steps

    /// Runs `body` as one write step: a transaction, or a savepoint of the transaction this
    /// thread is already in. SQLite errors become ``ClientStoreError``; others pass through.
    private func step<R>(_ body: (Database) throws -> R) throws -> R {
        let owner = ObjectIdentifier(self)
        do {
            if let db = TransactionFrame.current(for: owner) {
                var result: R?
                try db.inSavepoint {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
            return try queue.writeWithoutTransaction { db in
                try TransactionFrame.with(owner, db) {
                    var result: R?
                    try db.inTransaction(.immediate) {
                        result = try body(db)
                        return .commit
                    }
                    return result!
                }
            }
        } catch let error as DatabaseError {
            throw Self.map(error)
        } catch let error as RowDecodingError {
            throw Self.map(error)
        }
    }

    /// Runs `body` for reading: inside this thread's transaction if there is one.
    private func read<R>(_ body: (Database) throws -> R) throws -> R {
        let owner = ObjectIdentifier(self)
        do {
            if let db = TransactionFrame.current(for: owner) { return try body(db) }
            return try queue.inDatabase { db in try TransactionFrame.with(owner, db) { try body(db) } }
        } catch let error as DatabaseError {
            throw Self.map(error)
        } catch let error as RowDecodingError {
            throw Self.map(error)
        }
    }

    public func atomically<R>(_ body: () throws -> R) throws -> R {
        try step { _ in try body() }
    }

    // MARK: IdentityKeyStore

    public func identityKeyPair() throws -> IdentityKeyPair { identity }
    public func localRegistrationID() throws -> UInt32 { registrationID }

    private static func addressKey(_ address: ProtocolAddress) -> ColumnSeal.RowKey {
        ColumnSeal.RowKey(.text(address.name), .integer(Int64(address.deviceID)))
    }

    private func loadIdentity(_ db: Database, _ address: ProtocolAddress) throws -> IdentityKey? {
        guard let sealed = try Data.fetchOne(
            db.cachedStatement(sql: "SELECT identity_key FROM identities WHERE name = ? AND device_id = ?"),
            arguments: [address.name, Int64(address.deviceID)])
        else { return nil }
        let bytes = try seal.open(sealed, "identities", "identity_key", Self.addressKey(address))
        guard let key = try? IdentityKey(serialized: bytes) else { throw ClientStoreError.corrupted(table: "identities") }
        return key
    }

    @discardableResult
    public func saveIdentity(_ identity: IdentityKey, for address: ProtocolAddress) throws -> Bool {
        try step { db in
            let previous = try loadIdentity(db, address)
            guard previous != identity else { return false }
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO identities (name, device_id, identity_key) VALUES (?, ?, ?)")
                .execute(arguments: [address.name, Int64(address.deviceID),
                                     try seal.seal(identity.serialized, "identities", "identity_key", Self.addressKey(address))])
            return previous != nil
        }
    }

    /// Trust on first use, in both directions.
    public func isTrustedIdentity(_ identity: IdentityKey, for address: ProtocolAddress, direction: IdentityDirection) throws -> Bool {
        try read { db in try loadIdentity(db, address).map { $0 == identity } ?? true }
    }

    public func identity(for address: ProtocolAddress) throws -> IdentityKey? {
        try read { db in try loadIdentity(db, address) }
    }

    // MARK: PreKeyStore

    public func loadPreKey(id: UInt32) throws -> PreKeyRecord? {
        try read { db in
            guard let sealed = try Data.fetchOne(db.cachedStatement(sql: "SELECT record FROM prekeys WHERE id = ?"), arguments: [Int64(id)])
            else { return nil }
            let scalar = try seal.openSecret(sealed, "prekeys", "record", ColumnSeal.RowKey(.integer(Int64(id))))
            guard let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: scalar) else {
                throw ClientStoreError.corrupted(table: "prekeys")
            }
            return PreKeyRecord(id: id, keyPair: key)
        }
    }

    public func storePreKey(_ record: PreKeyRecord) throws {
        try step { db in
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO prekeys (id, record) VALUES (?, ?)")
                .execute(arguments: [Int64(record.id),
                                     try seal.seal(record.keyPair.rawRepresentation, "prekeys", "record", ColumnSeal.RowKey(.integer(Int64(record.id))))])
        }
    }

    public func removePreKey(id: UInt32) throws {
        try step { db in try db.cachedStatement(sql: "DELETE FROM prekeys WHERE id = ?").execute(arguments: [Int64(id)]) }
    }

    public func preKeyIDs() throws -> [UInt32] {
        try read { db in try Int64.fetchAll(db.cachedStatement(sql: "SELECT id FROM prekeys ORDER BY id")).map { UInt32(truncatingIfNeeded: $0) } }
    }

    // MARK: SignedPreKeyStore

    /// `timestamp (u64be) || private key (32) || signature`.
    private func decodeSignedPreKey(_ id: Int64, _ sealed: Data) throws -> SignedPreKeyRecord {
        var plain = try seal.open(sealed, "signed_prekeys", "record", ColumnSeal.RowKey(.integer(id)))
        defer { ColumnSeal.wipe(&plain) }
        guard plain.count > 40 else { throw ClientStoreError.corrupted(table: "signed_prekeys") }
        let timestamp = plain[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: plain[8..<40]) else {
            throw ClientStoreError.corrupted(table: "signed_prekeys")
        }
        return SignedPreKeyRecord(id: UInt32(truncatingIfNeeded: id), timestamp: timestamp, keyPair: key, signature: Array(plain[40...]))
    }

    public func loadSignedPreKey(id: UInt32) throws -> SignedPreKeyRecord? {
        try read { db in
            guard let sealed = try Data.fetchOne(db.cachedStatement(sql: "SELECT record FROM signed_prekeys WHERE id = ?"), arguments: [Int64(id)])
            else { return nil }
            return try decodeSignedPreKey(Int64(id), sealed)
        }
    }

    public func storeSignedPreKey(_ record: SignedPreKeyRecord) throws {
        var plain = [UInt8]()
        ColumnSeal.appendUInt64(&plain, record.timestamp)
        record.keyPair.rawRepresentation.withUnsafeBytes { plain += $0 }
        plain += record.signature
        defer { ColumnSeal.wipe(&plain) }
        let sealed = try seal.seal(plain, "signed_prekeys", "record", ColumnSeal.RowKey(.integer(Int64(record.id))))
        try step { db in
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO signed_prekeys (id, record) VALUES (?, ?)")
                .execute(arguments: [Int64(record.id), sealed])
        }
    }

    public func signedPreKeys() throws -> [SignedPreKeyRecord] {
        try read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT id, record FROM signed_prekeys ORDER BY id")).map { row in
                let c = Columns(row, "signed_prekeys")
                return try decodeSignedPreKey(try c[0], try c[1])
            }
        }
    }

    public func removeSignedPreKey(id: UInt32) throws {
        try step { db in try db.cachedStatement(sql: "DELETE FROM signed_prekeys WHERE id = ?").execute(arguments: [Int64(id)]) }
    }

    // MARK: KyberPreKeyStore

    /// `KyberPreKeyRecordCoding` bytes, sealed (they hold the ML-KEM seed).
    private func decodeKyberPreKey(_ id: Int64, _ sealed: Data) throws -> KyberPreKeyRecord {
        var plain = try seal.open(sealed, "kyber_prekeys", "record", ColumnSeal.RowKey(.integer(id)))
        defer { ColumnSeal.wipe(&plain) }
        do { return try KyberPreKeyRecordCoding.decode(id: UInt32(truncatingIfNeeded: id), plain) } catch {
            throw ClientStoreError.corrupted(table: "kyber_prekeys")
        }
    }

    public func loadKyberPreKey(id: UInt32) throws -> KyberPreKeyRecord? {
        try read { db in
            guard let sealed = try Data.fetchOne(db.cachedStatement(sql: "SELECT record FROM kyber_prekeys WHERE id = ?"), arguments: [Int64(id)])
            else { return nil }
            return try decodeKyberPreKey(Int64(id), sealed)
        }
    }

    public func storeKyberPreKey(_ record: KyberPreKeyRecord) throws {
        var plain = KyberPreKeyRecordCoding.encode(record)
        defer { ColumnSeal.wipe(&plain) }
        let sealed = try seal.seal(plain, "kyber_prekeys", "record", ColumnSeal.RowKey(.integer(Int64(record.id))))
        try step { db in
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO kyber_prekeys (id, record) VALUES (?, ?)")
                .execute(arguments: [Int64(record.id), sealed])
        }
    }

    /// A one-time key is deleted; a last-resort key stays (until rotated away).
    public func markKyberPreKeyUsed(id: UInt32) throws {
        try step { _ in
            if try loadKyberPreKey(id: id)?.kind == .oneTime { try removeKyberPreKey(id: id) }
        }
    }

    public func kyberPreKeys() throws -> [KyberPreKeyRecord] {
        try read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT id, record FROM kyber_prekeys ORDER BY id")).map { row in
                let c = Columns(row, "kyber_prekeys")
                return try decodeKyberPreKey(try c[0], try c[1])
            }
        }
    }

    public func removeKyberPreKey(id: UInt32) throws {
        try step { db in try db.cachedStatement(sql: "DELETE FROM kyber_prekeys WHERE id = ?").execute(arguments: [Int64(id)]) }
    }

    // MARK: SessionStore

    private func loadSession(_ db: Database, _ address: ProtocolAddress) throws -> SessionRecord? {
        guard let sealed = try Data.fetchOne(
            db.cachedStatement(sql: "SELECT record FROM sessions WHERE name = ? AND device_id = ?"),
            arguments: [address.name, Int64(address.deviceID)])
        else { return nil }
        let bytes = try seal.openSecret(sealed, "sessions", "record", Self.addressKey(address))
        guard let record = try? SessionRecord(serialized: bytes) else { throw ClientStoreError.corrupted(table: "sessions") }
        return record
    }

    private func storeSession(_ db: Database, _ record: SessionRecord, _ address: ProtocolAddress) throws {
        let sealed = try seal.seal(record.serialized(), "sessions", "record", Self.addressKey(address))
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO sessions (name, device_id, record) VALUES (?, ?, ?)")
            .execute(arguments: [address.name, Int64(address.deviceID), sealed])
    }

    public func loadSession(for address: ProtocolAddress) throws -> SessionRecord? {
        try read { db in try loadSession(db, address) }
    }

    public func storeSession(_ record: SessionRecord, for address: ProtocolAddress) throws {
        try step { db in try storeSession(db, record, address) }
    }

    public func deleteSession(for address: ProtocolAddress) throws {
        try step { db in
            try db.cachedStatement(sql: "DELETE FROM sessions WHERE name = ? AND device_id = ?")
                .execute(arguments: [address.name, Int64(address.deviceID)])
        }
    }

    public func sessionDevices(for name: String) throws -> [UInt32] {
        try read { db in
            try Int64.fetchAll(db.cachedStatement(sql: "SELECT device_id FROM sessions WHERE name = ? ORDER BY device_id"), arguments: [name])
                .map { UInt32(truncatingIfNeeded: $0) }
        }
    }

    /// One step: load, run `body` (whose identity and prekey calls join the step), store; when
    /// `body` throws, the savepoint or transaction rolls back everything.
    public func updateSession<R, E: Error>(for address: ProtocolAddress, _ body: (inout SessionRecord?) throws(E) -> R) throws -> R {
        try step { db in
            var record = try loadSession(db, address)
            let result = try body(&record)
            if let record { try storeSession(db, record, address) }
            return result
        }
    }

    // MARK: SenderKeyStore

    private static func senderKey(_ name: SenderKeyName) -> ColumnSeal.RowKey {
        ColumnSeal.RowKey(.text(name.groupID), .text(name.sender.name), .integer(Int64(name.sender.deviceID)))
    }

    private func loadSenderKey(_ db: Database, _ name: SenderKeyName) throws -> SenderKeyRecord? {
        guard let sealed = try Data.fetchOne(
            db.cachedStatement(sql: "SELECT record FROM sender_keys WHERE group_id = ? AND sender_name = ? AND sender_device = ?"),
            arguments: [name.groupID, name.sender.name, Int64(name.sender.deviceID)])
        else { return nil }
        let bytes = try seal.openSecret(sealed, "sender_keys", "record", Self.senderKey(name))
        guard let record = try? SenderKeyRecord(serialized: bytes) else { throw ClientStoreError.corrupted(table: "sender_keys") }
        return record
    }

    private func storeSenderKey(_ db: Database, _ record: SenderKeyRecord, _ name: SenderKeyName) throws {
        let sealed = try seal.seal(record.serialized(), "sender_keys", "record", Self.senderKey(name))
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO sender_keys (group_id, sender_name, sender_device, record) VALUES (?, ?, ?, ?)")
            .execute(arguments: [name.groupID, name.sender.name, Int64(name.sender.deviceID), sealed])
    }

    public func loadSenderKey(for name: SenderKeyName) throws -> SenderKeyRecord? {
        try read { db in try loadSenderKey(db, name) }
    }

    public func storeSenderKey(_ record: SenderKeyRecord, for name: SenderKeyName) throws {
        try step { db in try storeSenderKey(db, record, name) }
    }

    public func updateSenderKey<R, E: Error>(for name: SenderKeyName, _ body: (inout SenderKeyRecord?) throws(E) -> R) throws -> R {
        try step { db in
            var record = try loadSenderKey(db, name)
            let result = try body(&record)
            if let record { try storeSenderKey(db, record, name) }
            return result
        }
    }

    // MARK: Settings

    public func setting(_ key: String) throws -> [UInt8]? {
        try read { db in
            guard let sealed = try Data.fetchOne(db.cachedStatement(sql: "SELECT value FROM settings WHERE key = ?"), arguments: [key])
            else { return nil }
            return try seal.open(sealed, "settings", "value", ColumnSeal.RowKey(.text(key)))
        }
    }

    public func setSetting(_ key: String, _ value: [UInt8]?) throws {
        let sealed = try value.map { v throws(ClientStoreError) in try seal.seal(v, "settings", "value", ColumnSeal.RowKey(.text(key))) }
        try step { db in
            if let sealed {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)").execute(arguments: [key, sealed])
            } else {
                try db.cachedStatement(sql: "DELETE FROM settings WHERE key = ?").execute(arguments: [key])
            }
        }
    }

    // MARK: Messages

    private static let messageColumns =
        "sequence, sender_account, sender_device, client_message_id, conversation, direction, sent_at, server_time, state, body"

    /// The body's row key: the message id and the columns that never change after insertion.
    private static func bodyKey(_ id: MessageID, _ conversation: String, _ direction: MessageDirection, _ sentAt: UInt64) -> ColumnSeal.RowKey {
        ColumnSeal.RowKey(.text(id.account), .integer(Int64(id.device)), .integer(Int64(bitPattern: id.clientMessageID)),
                          .text(conversation), .integer(Int64(direction.rawValue)), .integer(Int64(bitPattern: sentAt)))
    }

    /// A message from `messageColumns`, starting at column `o`.
    private func decodeMessage(_ row: Row, at o: Int = 0) throws -> StoredMessage {
        let c = Columns(row, "messages")
        let id = MessageID(account: try c[o + 1], device: UInt32(truncatingIfNeeded: try c[o + 2] as Int64),
                           clientMessageID: UInt64(bitPattern: try c[o + 3] as Int64))
        let conversation: String = try c[o + 4]
        guard let direction = MessageDirection(rawValue: try c[o + 5]), let state = TickState(rawValue: try c[o + 8]) else {
            throw ClientStoreError.corrupted(table: "messages")
        }
        let sentAt = UInt64(bitPattern: try c[o + 6] as Int64)
        let body = try seal.open(try c[o + 9], "messages", "body", Self.bodyKey(id, conversation, direction, sentAt))
        guard let text = StoredValues.text(body) else { throw ClientStoreError.corrupted(table: "messages") }
        return StoredMessage(id: id, conversation: conversation, direction: direction, body: text, sentAt: sentAt,
                             serverTime: UInt64(bitPattern: try c[o + 7] as Int64), state: state, sequence: try c[o + 0])
    }

    public func insertMessage(_ message: StoredMessage) throws -> StoredMessage? {
        let sealed = try seal.seal(Array(message.body.utf8), "messages", "body",
                                   Self.bodyKey(message.id, message.conversation, message.direction, message.sentAt))
        return try step { db in
            try db.cachedStatement(sql: """
                INSERT INTO messages (sender_account, sender_device, client_message_id, conversation, direction, sent_at, server_time, state, body)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """).execute(arguments: [
                    message.id.account, Int64(message.id.device), Int64(bitPattern: message.id.clientMessageID), message.conversation,
                    message.direction.rawValue, Int64(bitPattern: message.sentAt), Int64(bitPattern: message.serverTime),
                    message.state.rawValue, sealed,
                ])
            guard db.changesCount > 0 else { return nil }
            var stored = message
            stored.sequence = db.lastInsertedRowID
            let unread = message.direction == .incoming && message.state < .read ? 1 : 0
            try db.cachedStatement(sql: """
                INSERT INTO conversations (account, last_sequence, unread) VALUES (?, ?, ?)
                ON CONFLICT (account) DO UPDATE SET last_sequence = excluded.last_sequence, unread = unread + excluded.unread
                """).execute(arguments: [message.conversation, stored.sequence, unread])
            return stored
        }
    }

    private func fetchMessage(_ db: Database, _ id: MessageID) throws -> StoredMessage? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT \(Self.messageColumns) FROM messages WHERE sender_account = ? AND sender_device = ? AND client_message_id = ?"),
            arguments: [id.account, Int64(id.device), Int64(bitPattern: id.clientMessageID)]
        ).map { try decodeMessage($0) }
    }

    public func message(_ id: MessageID) throws -> StoredMessage? {
        try read { db in try fetchMessage(db, id) }
    }

    @discardableResult
    public func advance(_ id: MessageID, to state: TickState, serverTime: UInt64?) throws -> Bool {
        try step { db in
            guard let row = try Row.fetchOne(
                db.cachedStatement(sql: """
                    SELECT sequence, state, server_time, direction, conversation FROM messages
                    WHERE sender_account = ? AND sender_device = ? AND client_message_id = ?
                    """),
                arguments: [id.account, Int64(id.device), Int64(bitPattern: id.clientMessageID)])
            else { return false }
            let c = Columns(row, "messages")
            let sequence: Int64 = try c[0]
            guard let current = TickState(rawValue: try c[1]), let direction = MessageDirection(rawValue: try c[3]) else {
                throw ClientStoreError.corrupted(table: "messages")
            }
            let changed = state > current
            let newServerTime: Int64 = try c[2]
            let setTime = newServerTime == 0 && (serverTime ?? 0) != 0
            guard changed || setTime else { return false }
            try db.cachedStatement(sql: "UPDATE messages SET state = ?, server_time = ? WHERE sequence = ?").execute(arguments: [
                max(state, current).rawValue, setTime ? Int64(bitPattern: serverTime!) : newServerTime, sequence,
            ])
            if changed, direction == .incoming, current < .read, state == .read {
                try db.cachedStatement(sql: "UPDATE conversations SET unread = unread - 1 WHERE account = ?").execute(arguments: [try c[4] as String])
            }
            return changed
        }
    }

    public func messages(in conversation: String, before: Int64?, limit: Int) throws -> [StoredMessage] {
        guard limit > 0 else { return [] }
        return try read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(Self.messageColumns) FROM messages WHERE conversation = ? AND sequence < ? ORDER BY sequence DESC LIMIT ?"),
                arguments: [conversation, before ?? Int64.max, limit]
            ).reversed().map { try decodeMessage($0) }
        }
    }

    public func allMessages(after: Int64, limit: Int) throws -> [StoredMessage] {
        guard limit > 0 else { return [] }
        return try read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(Self.messageColumns) FROM messages WHERE sequence > ? ORDER BY sequence LIMIT ?"),
                arguments: [after, limit]
            ).map { try decodeMessage($0) }
        }
    }

    public func unreadIncoming(in conversation: String) throws -> [StoredMessage] {
        try read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(Self.messageColumns) FROM messages WHERE conversation = ? AND direction = 0 AND state < 3 ORDER BY sequence"),
                arguments: [conversation]
            ).map { try decodeMessage($0) }
        }
    }

    public func conversations() throws -> [ConversationSummary] {
        try read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT c.unread, m.sequence, m.sender_account, m.sender_device, m.client_message_id, m.conversation, m.direction,
                       m.sent_at, m.server_time, m.state, m.body
                FROM conversations c JOIN messages m ON m.sequence = c.last_sequence
                ORDER BY c.last_sequence DESC
                """)).map { row in
                let message = try decodeMessage(row, at: 1)
                return ConversationSummary(account: message.conversation, lastMessage: message, unread: try Columns(row, "conversations")[0])
            }
        }
    }

    // MARK: Inbound dedupe

    public func isProcessed(serverID: UInt64) throws -> Bool {
        try read { db in
            try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM processed WHERE server_id = ?"), arguments: [Int64(bitPattern: serverID)]) ?? false
        }
    }

    public func markProcessed(serverID: UInt64, at time: UInt64) throws {
        try step { db in
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO processed (server_id, processed_at) VALUES (?, ?)")
                .execute(arguments: [Int64(bitPattern: serverID), Int64(bitPattern: time)])
        }
    }

    public func pruneProcessed(before time: UInt64) throws {
        try step { db in
            try db.cachedStatement(sql: "DELETE FROM processed WHERE processed_at < ?").execute(arguments: [Int64(bitPattern: time)])
        }
    }

    // MARK: Outbox

    private static func encodeDevices(_ devices: [UInt32]) -> Data {
        var out = [UInt8]()
        for d in devices { ColumnSeal.appendUInt32(&out, d) }
        return Data(out)
    }

    private static func payloadKey(_ clientMessageID: UInt64, _ account: String, _ devices: Data) -> ColumnSeal.RowKey {
        ColumnSeal.RowKey(.integer(Int64(bitPattern: clientMessageID)), .text(account), .bytes([UInt8](devices)))
    }

    @discardableResult
    public func enqueue(_ item: OutboxItem) throws -> Bool {
        let devices = Self.encodeDevices(item.devices)
        let key = Self.payloadKey(item.clientMessageID, item.account, devices)
        let sealed = try seal.seal(item.payload, "outbox", "payload", key)
        let inner = try item.inner.map { try seal.seal($0.encoded, "outbox", "inner", key) }
        return try step { db in
            try db.cachedStatement(sql: """
                INSERT INTO outbox (client_message_id, account, devices, payload, message_account, message_device, message_client_id, created_at, inner)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """).execute(arguments: [
                    Int64(bitPattern: item.clientMessageID), item.account, devices, sealed, item.message?.account,
                    item.message.map { Int64($0.device) }, item.message.map { Int64(bitPattern: $0.clientMessageID) },
                    Int64(bitPattern: item.createdAt), inner,
                ])
            return db.changesCount > 0
        }
    }

    public func outbox() throws -> [OutboxItem] {
        try read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT sequence, client_message_id, account, devices, payload, message_account, message_device, message_client_id, created_at, inner
                FROM outbox ORDER BY sequence
                """)).map { row in
                let c = Columns(row, "outbox")
                let clientMessageID = UInt64(bitPattern: try c[1] as Int64)
                let account: String = try c[2]
                let devices: Data = try c[3]
                guard let deviceList = StoredValues.u32List([UInt8](devices)) else { throw ClientStoreError.corrupted(table: "outbox") }
                let key = Self.payloadKey(clientMessageID, account, devices)
                let payload = try seal.open(try c[4], "outbox", "payload", key)
                var message: MessageID?
                if let a = try c[5] as String?, let d = try c[6] as Int64?, let m = try c[7] as Int64? {
                    message = MessageID(account: a, device: UInt32(truncatingIfNeeded: d), clientMessageID: UInt64(bitPattern: m))
                }
                var inner: SessionCiphertext?
                if let sealedInner = try c[9] as Data? {
                    do { inner = try SessionCiphertext(decoding: try seal.open(sealedInner, "outbox", "inner", key)) } catch is SessionCiphertext.DecodeError {
                        throw ClientStoreError.corrupted(table: "outbox")
                    }
                }
                return OutboxItem(clientMessageID: clientMessageID, account: account, devices: deviceList, payload: payload,
                                  message: message, createdAt: UInt64(bitPattern: try c[8] as Int64), sequence: try c[0], inner: inner)
            }
        }
    }

    public func removeFromOutbox(clientMessageID: UInt64) throws {
        try step { db in
            try db.cachedStatement(sql: "DELETE FROM outbox WHERE client_message_id = ?").execute(arguments: [Int64(bitPattern: clientMessageID)])
        }
    }

    @discardableResult
    public func replaceOutboxPayload(clientMessageID: UInt64, payload: [UInt8], inner: SessionCiphertext?, devices: [UInt32]?) throws -> Bool {
        try step { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT account, devices FROM outbox WHERE client_message_id = ?"),
                                             arguments: [Int64(bitPattern: clientMessageID)]) else { return false }
            let c = Columns(row, "outbox")
            // The devices are part of the row key the columns are sealed under: new devices, new key.
            let deviceColumn: Data = try devices.map(Self.encodeDevices) ?? c[1]
            let key = Self.payloadKey(clientMessageID, try c[0], deviceColumn)
            let sealed = try seal.seal(payload, "outbox", "payload", key)
            let sealedInner = try inner.map { try seal.seal($0.encoded, "outbox", "inner", key) }
            try db.cachedStatement(sql: "UPDATE outbox SET payload = ?, inner = ?, devices = ? WHERE client_message_id = ?")
                .execute(arguments: [sealed, sealedInner, deviceColumn, Int64(bitPattern: clientMessageID)])
            return true
        }
    }
}

/// Typed column access that reports a value of the wrong type (a file edited outside the store)
/// as `.corrupted(table:)`: GRDB's `row[i]` traps on such a value.
struct Columns {
    let row: Row
    let table: String
    init(_ row: Row, _ table: String) {
        self.row = row
        self.table = table
    }
    subscript<T: DatabaseValueConvertible>(_ index: Int) -> T {
        get throws {
            do { return try row.decode(T.self, atIndex: index) } catch { throw ClientStoreError.corrupted(table: table) }
        }
    }
}
