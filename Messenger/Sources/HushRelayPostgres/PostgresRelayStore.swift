import Foundation
import HushRelay
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// ``RelayStore`` on PostgreSQL through postgres-nio (`Docs/architecture.md` §"PostgreSQL").
///
/// - Durable: a write returns after `COMMIT` (the server's `synchronous_commit`, on by
///   default, makes that an fsync of its WAL), so nothing acknowledged is lost on `kill -9` of
///   the relay.
/// - Writes go through a ``PostgresGroupCommitter`` (one transaction per batch, batches one
///   after another); reads use the pool directly. Every call waits at most
///   ``PostgresStoreConfiguration/operationTimeout`` for an unreachable database, retrying,
///   then throws ``RelayStoreError/unavailable``.
/// - Several relay processes may share one database: every function locks the rows it
///   changes, one device's message ids increase in commit order across processes, and each
///   committed message NOTIFYs ``PostgresStoreConfiguration/wakeChannel`` (when
///   `notifyCommits` is on) for ``PostgresRelayCluster``.
public final class PostgresRelayStore: RelayStore {
    /// The connection settings.
    public let configuration: PostgresStoreConfiguration
    let client: PostgresClient
    private let runner: Task<Void, Never>
    private let writer: PostgresGroupCommitter
    private let logger: Logger
    private let notifyCommits: Bool

    /// Connects (the pool keeps connecting in the background), creates the schema if needed
    /// and applies pending migrations, trying for at most
    /// ``PostgresStoreConfiguration/startupTimeout``. `notifyCommits`: NOTIFY each committed message (several
    /// relay nodes; see ``PostgresRelayCluster``).
    public static func connect(_ configuration: PostgresStoreConfiguration, notifyCommits: Bool = false,
                               logger: Logger = Logger(label: "hush-relay.postgres")) async throws(RelayStoreError) -> PostgresRelayStore {
        let store = PostgresRelayStore(configuration: configuration, notifyCommits: notifyCommits, logger: logger)
        do {
            try await store.migrate()
        } catch {
            await store.shutdown()
            throw error
        }
        return store
    }

    private init(configuration: PostgresStoreConfiguration, notifyCommits: Bool, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.notifyCommits = notifyCommits
        let client = PostgresClient(configuration: configuration.clientConfiguration, backgroundLogger: logger)
        self.client = client
        runner = Task { await client.run() }
        writer = PostgresGroupCommitter(client: client, timeout: configuration.operationTimeout, logger: logger)
    }

    /// Closes the pool.
    public func shutdown() async {
        runner.cancel()
        await runner.value
    }

    // MARK: schema

    func migrate() async throws(RelayStoreError) {
        let schema = configuration.schema
        let logger = logger
        try await retrying(timeout: configuration.startupTimeout, logger: logger) { [client] in
            try await client.withConnection { c in
                try await c.query("BEGIN", logger: logger)
                do {
                    try await c.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))", logger: logger)
                    try await c.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)
                    try await c.query("CREATE TABLE IF NOT EXISTS hush_schema_version (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                                      logger: logger)
                    var applied = Set<Int64>()
                    for try await v in try await c.query("SELECT version FROM hush_schema_version", logger: logger).decode(Int64.self) {
                        applied.insert(v)
                    }
                    for (version, sql) in PostgresSchema.migrations where !applied.contains(version) {
                        for statement in PostgresSchema.statements(sql) {
                            try await c.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        try await c.query("INSERT INTO hush_schema_version (version) VALUES (\(version))", logger: logger)
                    }
                    try await c.query("COMMIT", logger: logger)
                } catch {
                    // A failed statement leaves the transaction aborted; without a ROLLBACK the
                    // pool would hand this connection back in that state and every retry on it
                    // would fail with "current transaction is aborted". If the connection itself
                    // is gone the ROLLBACK fails too, which is fine: the pool discards it.
                    _ = try? await c.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        }
    }

    /// How this node's batches were committed (tests, diagnostics).
    var batchStatistics: PostgresGroupCommitter.Statistics { writer.statistics }
    /// Test hook: the next write batch commits, `meanwhile` runs, then the commit is reported
    /// lost (ambiguous) and the batch retried.
    func loseNextCommit(meanwhile: @escaping @Sendable () async -> Void) { writer.ambiguousCommit.withLock { $0 = meanwhile } }

    /// The schema versions applied, ascending (for tests and diagnostics).
    public func schemaVersions() async throws(RelayStoreError) -> [Int64] {
        try await read { c in
            var out: [Int64] = []
            for try await v in try await c.query("SELECT version FROM hush_schema_version ORDER BY version").decode(Int64.self) { out.append(v) }
            return out
        }
    }

    // MARK: helpers

    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws(RelayStoreError) -> T {
        try await retrying(timeout: configuration.operationTimeout, logger: logger) { [client] in try await body(client) }
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection, Bool) async throws -> T,
                                    committed: (@Sendable (T) -> Void)? = nil) async throws(RelayStoreError) -> T {
        try await writer.submit(body, committed: committed)
    }

    // MARK: accounts

    public func register(account: String, identityKey: Data, deviceID: UInt32, staticKey: Data,
                         maxDevices: Int, linkToken: LinkTokenProof?) async throws(RelayStoreError) -> RegisterOutcome {
        let logger = logger
        let tokenHash = linkToken?.tokenHash, now = Int64(clamping: linkToken?.now ?? 0)
        let status = try await write { c, _ in
            let rows = try await c.query("""
                SELECT hush_register(\(account), \(identityKey), \(Int64(deviceID)), \(staticKey), \(Int64(maxDevices)), \(tokenHash), \(now))
                """, logger: logger)
            for try await s in rows.decode(Int64.self) { return s }
            throw RelayStoreError.storage("no row")
        }
        switch status {
        case PostgresSchema.Status.createdAccount: return .createdAccount
        case PostgresSchema.Status.addedDevice: return .addedDevice
        case PostgresSchema.Status.alreadyRegistered: return .alreadyRegistered
        case PostgresSchema.Status.accountTaken: throw .accountTaken
        case PostgresSchema.Status.deviceTaken: throw .deviceTaken(deviceID)
        case PostgresSchema.Status.tooManyDevices: throw .tooManyDevices(limit: maxDevices)
        case PostgresSchema.Status.invalidLinkToken: throw .invalidLinkToken
        default: throw .storage("register: status \(status)")
        }
    }

    public func issueLinkToken(_ r: LinkTokenIssue) async throws(RelayStoreError) -> UInt32 {
        let logger = logger
        let (status, device) = try await write { c, _ in
            let rows = try await c.query("""
                SELECT r_status, r_device FROM hush_issue_link_token(\(r.account), \(r.tokenHash), \(Int64(clamping: r.now)),
                    \(Int64(clamping: r.expiresAt)), \(Int64(r.maxDevices)), \(Int64(r.maxOpenTokens)))
                """, logger: logger)
            for try await row in rows.decode((Int64, Int64).self) { return row }
            throw RelayStoreError.storage("no row")
        }
        switch status {
        case PostgresSchema.Status.ok: return UInt32(truncatingIfNeeded: device)
        case PostgresSchema.Status.unknownAccount: throw .unknownAccount
        case PostgresSchema.Status.tooManyDevices: throw .tooManyDevices(limit: r.maxDevices)
        default: throw .storage("issue link token: status \(status)")
        }
    }

    public func removeDevice(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        let logger = logger
        let origin = configuration.nodeID
        let channel: String? = notifyCommits ? configuration.onlineChannel : nil
        let (status, deleted) = try await write { c, _ in
            let rows = try await c.query("""
                SELECT r_status, r_deleted FROM hush_remove_device(\(account), \(Int64(deviceID)), \(origin), \(channel))
                """, logger: logger)
            for try await r in rows.decode((Int64, Int64).self) { return r }
            throw RelayStoreError.storage("no row")
        }
        switch status {
        case PostgresSchema.Status.ok: return Int(deleted)
        case PostgresSchema.Status.unknownAccount: throw .unknownAccount
        case PostgresSchema.Status.unknownDevice: throw .unknownDevice(deviceID)
        default: throw .storage("remove device: status \(status)")
        }
    }

    public func account(named name: String) async throws(RelayStoreError) -> AccountRecord? {
        try await read { client in
            for try await key in try await client.query("SELECT identity_key FROM accounts WHERE name = \(name)").decode(Data.self) {
                return AccountRecord(name: name, identityKey: key)
            }
            return nil
        }
    }

    public func device(account: String, deviceID: UInt32) async throws(RelayStoreError) -> DeviceRecord? {
        try await read { client in
            let rows = try await client.query("""
                SELECT static_key, registration_id FROM devices WHERE account = \(account) AND device_id = \(Int64(deviceID))
                """)
            for try await (key, reg) in rows.decode((Data, Int64).self) {
                return DeviceRecord(account: account, deviceID: deviceID, staticKey: key, registrationID: UInt32(truncatingIfNeeded: reg))
            }
            return nil
        }
    }

    public func devices(account: String) async throws(RelayStoreError) -> [DeviceRecord] {
        try await read { client in
            let rows = try await client.query("""
                SELECT device_id, static_key, registration_id FROM devices WHERE account = \(account) ORDER BY device_id
                """)
            var out: [DeviceRecord] = []
            for try await (id, key, reg) in rows.decode((Int64, Data, Int64).self) {
                out.append(DeviceRecord(account: account, deviceID: UInt32(truncatingIfNeeded: id), staticKey: key,
                                        registrationID: UInt32(truncatingIfNeeded: reg)))
            }
            return out
        }
    }

    // MARK: prekeys

    public func storePrekeys(account: String, deviceID: UInt32, _ upload: PrekeyUpload) async throws(RelayStoreError) -> PrekeyCounts {
        let logger = logger
        let ids = upload.oneTime.map { Int64($0.id) }
        let keys = upload.oneTime.map { ByteBuffer(bytes: Array($0.publicKey)) }
        let kIDs = upload.kyberOneTime.map { Int64($0.id) }
        let kKeys = upload.kyberOneTime.map { ByteBuffer(bytes: Array($0.publicKey)) }
        let kSigs = upload.kyberOneTime.map { ByteBuffer(bytes: Array($0.signature)) }
        let signed = upload.signed, last = upload.kyberLastResort
        let maxStored = Int64(clamping: upload.maxStored), maxKyber = Int64(clamping: upload.maxStoredKyber)
        let replace = upload.replaceOneTime
        let (status, count, kyber) = try await write { c, retry in
            // Retrying after an ambiguous COMMIT (it may have applied): the one-time prekeys are
            // not written again, since one of them may have been claimed meanwhile and must never
            // be handed out twice. If the first attempt did not apply, they are simply missing:
            // the counts returned (and PrekeysLow) make the client upload more.
            let (ids, keys, kIDs, kKeys, kSigs) = retry ? ([], [], [], [], []) : (ids, keys, kIDs, kKeys, kSigs)
            if replace {
                // Same transaction as the upload below (the batch's); an unknown device deletes nothing.
                try await c.query("""
                    DELETE FROM prekeys WHERE device_ref = (SELECT id FROM devices WHERE account = \(account) AND device_id = \(Int64(deviceID)))
                    """, logger: logger)
                try await c.query("""
                    DELETE FROM kyber_prekeys WHERE device_ref = (SELECT id FROM devices WHERE account = \(account) AND device_id = \(Int64(deviceID)))
                    """, logger: logger)
            }
            let rows = try await c.query("""
                SELECT r_status, r_count, r_kyber_count FROM hush_store_prekeys_pq(\(account), \(Int64(deviceID)), \(Int64(upload.registrationID)),
                    \(signed.map { Int64($0.id) }), \(signed?.publicKey), \(signed?.signature), \(ids), \(keys), \(maxStored),
                    \(last.map { Int64($0.id) }), \(last?.publicKey), \(last?.signature), \(kIDs), \(kKeys), \(kSigs), \(maxKyber))
                """, logger: logger)
            for try await r in rows.decode((Int64, Int64, Int64).self) { return r }
            throw RelayStoreError.storage("no row")
        }
        switch status {
        case PostgresSchema.Status.ok: return PrekeyCounts(oneTime: Int(count), kyberOneTime: Int(kyber))
        case PostgresSchema.Status.unknownAccount: throw .unknownAccount
        case PostgresSchema.Status.unknownDevice: throw .unknownDevice(deviceID)
        case PostgresSchema.Status.tooManyPrekeys: throw .tooManyPrekeys(limit: upload.maxStored)
        case PostgresSchema.Status.tooManyKyberPrekeys: throw .tooManyPrekeys(limit: upload.maxStoredKyber)
        default: throw .storage("store prekeys: status \(status)")
        }
    }

    public func claimBundles(account: String, devices: [UInt32]?) async throws(RelayStoreError) -> [PrekeyBundleRecord] {
        let logger = logger
        let list = devices.map { $0.map(Int64.init) }
        typealias Row = (Int64, Int64, Int64, Int64?, Data?, Data?, Int64?, Data?, Int64, Int64?, Data?, Data?, Bool, Int64)
        let rows: [PrekeyBundleRow] = try await write { c, _ in
            let rows = try await c.query("""
                SELECT r_status, r_device, r_registration, r_signed_id, r_signed_key, r_signed_sig, r_ot_id, r_ot_key, r_remaining,
                       r_k_id, r_k_key, r_k_sig, r_k_last_resort, r_k_remaining
                FROM hush_claim_pq(\(account), \(list))
                """, logger: logger)
            var out: [PrekeyBundleRow] = []
            for try await r in rows.decode(Row.self) { out.append(PrekeyBundleRow(r)) }
            return out
        }
        if let first = rows.first {
            if first.status == PostgresSchema.Status.unknownAccount { throw .unknownAccount }
            if first.status == PostgresSchema.Status.unknownDevice { throw .unknownDevice(UInt32(truncatingIfNeeded: first.device)) }
        }
        return rows.map(\.record)
    }

    public func prekeyCount(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        let count: Int64? = try await read { client in
            let rows = try await client.query("""
                SELECT (SELECT count(*) FROM prekeys WHERE device_ref = d.id) FROM devices d
                WHERE d.account = \(account) AND d.device_id = \(Int64(deviceID))
                """)
            for try await n in rows.decode(Int64.self) { return n }
            return nil
        }
        guard let count else { throw .unknownDevice(deviceID) }
        return Int(count)
    }

    public func kyberPrekeyCount(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        let count: Int64? = try await read { client in
            let rows = try await client.query("""
                SELECT (SELECT count(*) FROM kyber_prekeys WHERE device_ref = d.id) FROM devices d
                WHERE d.account = \(account) AND d.device_id = \(Int64(deviceID))
                """)
            for try await n in rows.decode(Int64.self) { return n }
            return nil
        }
        guard let count else { throw .unknownDevice(deviceID) }
        return Int(count)
    }

    // MARK: queue

    public func enqueue(_ r: EnqueueRequest,
                        committed: @escaping @Sendable ([QueuedMessage]) -> Void) async throws(RelayStoreError) -> EnqueueOutcome {
        let logger = logger
        let devices = r.devices.map(Int64.init)
        let expires = Int64(clamping: r.now &+ r.ttlMilliseconds)
        let channel: String? = notifyCommits ? configuration.wakeChannel : nil
        let origin = configuration.nodeID
        let arguments = PostgresGroupCommitter.EnqueueArguments(
            sender: r.senderAccount, senderDevice: Int64(r.senderDevice), clientMessageID: Int64(bitPattern: r.clientMessageID),
            recipient: r.recipient, devices: devices, payload: ByteBuffer(bytes: r.payload), now: Int64(clamping: r.now),
            expires: expires, cap: Int64(r.queueCap), origin: origin, channel: channel)
        let outcome: EnqueueOutcome = try await writer.submit({ c, retry in
            let rows = try await c.query("""
                SELECT r_status, r_detail, r_ids FROM hush_enqueue(\(r.senderAccount), \(Int64(r.senderDevice)),
                    \(Int64(bitPattern: r.clientMessageID)), \(r.recipient), \(devices), \(r.payload), \(Int64(clamping: r.now)),
                    \(expires), \(Int64(r.queueCap)), \(origin), \(channel))
                """, logger: logger)
            for try await (status, detail, ids) in rows.decode((Int64, Int64, [Int64]?).self) {
                return try Self.enqueueOutcome(r, status: status, detail: detail, ids: ids, retry: retry)
            }
            throw RelayStoreError.storage("no row")
        }, shared: { store in
            .enqueue(arguments, take: { status, detail, ids, retry in
                do throws(RelayStoreError) {
                    store(.success(try Self.enqueueOutcome(r, status: status, detail: detail, ids: ids, retry: retry)))
                } catch {
                    store(.failure(error))
                }
            })
        }, committed: { outcome in
            if case .stored(_, let messages) = outcome { committed(messages) }
        })
        return outcome
    }

    /// What one `hush_enqueue` result row means for request `r` (status -1: no row came back).
    private static func enqueueOutcome(_ r: EnqueueRequest, status: Int64, detail: Int64, ids: [Int64]?,
                                       retry: Bool) throws(RelayStoreError) -> EnqueueOutcome {
        switch status {
        case PostgresSchema.Status.ok, PostgresSchema.Status.duplicate:
            // A duplicate found while retrying an ambiguous commit is this request's own
            // earlier commit: it is reported (and pushed) as stored, once.
            if status == PostgresSchema.Status.duplicate && !retry { return .duplicate(serverTime: UInt64(detail)) }
            let ids = ids ?? []
            guard ids.count == r.devices.count else { return .duplicate(serverTime: UInt64(detail)) }
            let messages = zip(ids, r.devices).map { id, d in
                QueuedMessage(serverID: UInt64(id), account: r.recipient, deviceID: d, senderAccount: r.senderAccount,
                              senderDevice: r.senderDevice, serverTime: UInt64(detail), payload: r.payload)
            }
            return .stored(serverTime: UInt64(detail), messages: messages)
        case PostgresSchema.Status.unknownAccount: throw .unknownAccount
        case PostgresSchema.Status.unknownDevice: throw .unknownDevice(UInt32(truncatingIfNeeded: detail))
        case PostgresSchema.Status.queueFull: throw .queueFull(device: UInt32(truncatingIfNeeded: detail), cap: r.queueCap)
        case -1: throw .storage("no row")
        default: throw .storage("enqueue: status \(status)")
        }
    }

    public func pending(account: String, deviceID: UInt32, after: UInt64, limit: Int) async throws(RelayStoreError) -> [QueuedMessage] {
        let result: [QueuedMessage]? = try await read { client in
            let rows = try await client.query("""
                SELECT d.id, m.id, m.sender_account, m.sender_device, m.server_time, m.payload
                FROM devices d LEFT JOIN LATERAL (
                    SELECT id, sender_account, sender_device, server_time, payload FROM messages
                    WHERE device_ref = d.id AND id > \(Int64(clamping: after)) ORDER BY id LIMIT \(Int64(limit))) m ON true
                WHERE d.account = \(account) AND d.device_id = \(Int64(deviceID))
                ORDER BY m.id
                """)
            var found = false
            var out: [QueuedMessage] = []
            for try await (_, id, sender, senderDevice, time, payload) in rows.decode((Int64, Int64?, String?, Int64?, Int64?, Data?).self) {
                found = true
                guard let id, let sender, let senderDevice, let time, let payload else { continue }
                out.append(QueuedMessage(serverID: UInt64(id), account: account, deviceID: deviceID, senderAccount: sender,
                                         senderDevice: UInt32(truncatingIfNeeded: senderDevice), serverTime: UInt64(time), payload: payload))
            }
            return found ? out : nil
        }
        guard let result else { throw .unknownDevice(deviceID) }
        return result
    }

    public func acknowledge(account: String, deviceID: UInt32, serverIDs: [UInt64]) async throws(RelayStoreError) -> Int {
        guard !serverIDs.isEmpty else { return 0 }
        let logger = logger
        let ids = serverIDs.map { Int64(clamping: $0) }
        let (status, deleted) = try await writer.submit({ c, _ in
            let rows = try await c.query("SELECT r_status, r_deleted FROM hush_acknowledge(\(account), \(Int64(deviceID)), \(ids))", logger: logger)
            for try await r in rows.decode((Int64, Int64).self) { return r }
            throw RelayStoreError.storage("no row")
        }, shared: { store in
            .acknowledge(account: account, device: Int64(deviceID), ids: ids, take: { status, deleted in
                store(status == -1 ? .failure(.storage("no row")) : .success((status, deleted)))
            })
        })
        guard status == PostgresSchema.Status.ok else { throw .unknownDevice(deviceID) }
        return Int(deleted)
    }

    public func queueDepth(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        let depth: Int64? = try await read { client in
            let rows = try await client.query("SELECT queue_depth FROM devices WHERE account = \(account) AND device_id = \(Int64(deviceID))")
            for try await n in rows.decode(Int64.self) { return n }
            return nil
        }
        guard let depth else { throw .unknownDevice(deviceID) }
        return Int(depth)
    }

    public func totalQueueDepth() async throws(RelayStoreError) -> Int {
        let total: Int64 = try await read { client in
            for try await n in try await client.query("SELECT coalesce(sum(queue_depth), 0)::bigint FROM devices").decode(Int64.self) { return n }
            return 0
        }
        return Int(total)
    }

    public func purgeExpired(now: UInt64) async throws(RelayStoreError) -> Int {
        let logger = logger
        let deleted = try await write { c, _ in
            for try await n in try await c.query("SELECT hush_purge(\(Int64(clamping: now)))", logger: logger).decode(Int64.self) { return n }
            throw RelayStoreError.storage("no row")
        }
        return Int(deleted)
    }

    // MARK: cluster

    /// Records that a device logged in on this node and tells the other nodes; returns its
    /// session number (higher = newer).
    func announce(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int64 {
        let logger = logger
        let origin = configuration.nodeID
        let channel = configuration.onlineChannel
        return try await write { c, _ in
            for try await n in try await c.query("SELECT hush_announce(\(account), \(Int64(deviceID)), \(origin), \(channel))",
                                                 logger: logger).decode(Int64.self) { return n }
            throw RelayStoreError.storage("no row")
        }
    }
}

extension PostgresRelayStore {
    // MARK: sealed sender (spec §20)

    public func sealedAccess(account: String) async throws(RelayStoreError) -> SealedAccess? {
        try await read { client in
            let rows = try await client.query("SELECT access_key, allow_anyone FROM sealed_access WHERE account = \(account)")
            for try await (key, anyone) in rows.decode((Data?, Bool).self) { return SealedAccess(accessKey: key, allowAnyone: anyone) }
            return nil
        }
    }

    public func acceptedTime(senderAccount: String, senderDevice: UInt32, clientMessageID: UInt64) async throws(RelayStoreError) -> UInt64? {
        try await read { client in
            let rows = try await client.query("""
                SELECT server_time FROM dedupe WHERE sender_account = \(senderAccount) AND sender_device = \(Int64(senderDevice))
                AND client_message_id = \(Int64(bitPattern: clientMessageID))
                """)
            for try await t in rows.decode(Int64.self) { return UInt64(t) }
            return nil
        }
    }

    public func setSealedAccess(account: String, _ access: SealedAccess) async throws(RelayStoreError) {
        let logger = logger
        let key = access.accessKey, anyone = access.allowAnyone
        let stored: Bool = try await writer.submit({ c, _ in
            let rows = try await c.query("""
                INSERT INTO sealed_access (account, access_key, allow_anyone)
                SELECT name, \(key), \(anyone) FROM accounts WHERE name = \(account)
                ON CONFLICT (account) DO UPDATE SET access_key = excluded.access_key, allow_anyone = excluded.allow_anyone
                RETURNING account
                """, logger: logger)
            for try await _ in rows.decode(String.self) { return true }
            return false
        }, committed: nil)
        guard stored else { throw .unknownAccount }
    }
}

extension PostgresRelayStore {
    /// Tells every node that `body` is for provisioning `address` (spec §22.3): "origin
    /// hex(address) base64(body)" on the provisioning channel (at most 5,530 bytes, under
    /// PostgreSQL's 8,000-byte NOTIFY limit). Not stored: a node that does not listen now never
    /// sees it.
    func notifyProvisioning(address: Data, body: Data) async throws(RelayStoreError) {
        let payload = configuration.nodeID + " " + address.map { String(format: "%02x", $0) }.joined() + " " + body.base64EncodedString()
        let channel = configuration.provisioningChannel
        _ = try await read { client in
            for try await _ in try await client.query("SELECT pg_notify(\(channel), \(payload))").decode(String.self) {}
            return 0
        }
    }

    /// A device's current session number (0 before its first login on a cluster node).
    func session(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int64? {
        try await read { client in
            let rows = try await client.query("SELECT session FROM devices WHERE account = \(account) AND device_id = \(Int64(deviceID))")
            for try await n in rows.decode(Int64.self) { return n }
            return nil
        }
    }
}

/// One row of `hush_claim`.
struct PrekeyBundleRow: Sendable {
    let status: Int64
    let device: Int64
    let record: PrekeyBundleRecord

    init(_ r: (Int64, Int64, Int64, Int64?, Data?, Data?, Int64?, Data?, Int64, Int64?, Data?, Data?, Bool, Int64)) {
        status = r.0
        device = r.1
        var signed: SignedPrekeyRecord?
        if let id = r.3, let key = r.4, let sig = r.5 { signed = SignedPrekeyRecord(id: UInt32(truncatingIfNeeded: id), publicKey: key, signature: sig) }
        var oneTime: OneTimePrekeyRecord?
        if let id = r.6, let key = r.7 { oneTime = OneTimePrekeyRecord(id: UInt32(truncatingIfNeeded: id), publicKey: key) }
        var kyber: KyberPrekeyRecord?
        if let id = r.9, let key = r.10, let sig = r.11 { kyber = KyberPrekeyRecord(id: UInt32(truncatingIfNeeded: id), publicKey: key, signature: sig) }
        record = PrekeyBundleRecord(deviceID: UInt32(truncatingIfNeeded: r.1), registrationID: UInt32(truncatingIfNeeded: r.2),
                                    signedPrekey: signed, oneTime: oneTime, remaining: Int(r.8),
                                    kyber: kyber, kyberIsLastResort: kyber != nil && r.12, kyberRemaining: Int(r.13))
    }
}
