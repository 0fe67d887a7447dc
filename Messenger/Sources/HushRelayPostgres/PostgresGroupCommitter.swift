import Foundation
import HushRelay
import Logging
import PostgresNIO
import Synchronization

/// Commits this process's writes in batches, one transaction per batch, strictly one batch
/// after another, so that `committed` callbacks run in commit order (the ``RelayStore``
/// contract) and one device's pushes arrive in server-id order.
///
/// A lost connection: a batch whose `COMMIT` was never sent is rolled back by the server and
/// is retried on a new connection (a failed connection is closed, never reused; attempts are
/// bounded in count and time). A batch whose `COMMIT` was sent but not answered is
/// ambiguous; it is retried too, and each write is told so (`retry: true`): the enqueue
/// function then recognises its own earlier commit through the dedupe row and reports it as
/// stored, so nothing is stored twice and nothing committed is reported as failed. Callers
/// wait at most the operation timeout, then get ``RelayStoreError/unavailable`` (not
/// acknowledged); the batch itself is finished (retried until the deadline, or its outcome
/// known) before the next one starts, so order is never broken.
final class PostgresGroupCommitter: Sendable {
    struct Write: Sendable {
        /// Runs the write's statement on the batch connection; `retry` after an ambiguous commit.
        let apply: @Sendable (PostgresConnection, _ retry: Bool) async throws -> Void
        /// Called once, in batch order: nil after the commit, or the error.
        let finish: @Sendable (RelayStoreError?) -> Void
        /// Called once if the caller stopped waiting (timeout).
        let abandon: @Sendable () -> Void
        /// Set when the write can share one statement with the writes of the same kind next
        /// to it in a batch (`hush_enqueue_many`, `hush_acknowledge_many`); `apply` is then
        /// used only for a write with no such neighbour.
        var shared: SharedWrite? = nil
    }

    /// A write that a run of its kind can carry in one statement: its arguments, and what to do
    /// with its own result row (store the outcome for `finish`, as `apply` would).
    enum SharedWrite: Sendable {
        case enqueue(EnqueueArguments, take: @Sendable (_ status: Int64, _ detail: Int64, _ ids: [Int64]?, _ retry: Bool) -> Void)
        case acknowledge(account: String, device: Int64, ids: [Int64], take: @Sendable (_ status: Int64, _ deleted: Int64) -> Void)

        var kind: Int {
            switch self {
            case .enqueue: return 0
            case .acknowledge: return 1
            }
        }
    }

    /// The arguments of one `hush_enqueue` call.
    struct EnqueueArguments: Sendable {
        let sender: String
        let senderDevice: Int64
        let clientMessageID: Int64
        let recipient: String
        let devices: [Int64]
        let payload: ByteBuffer
        let now: Int64
        let expires: Int64
        let cap: Int64
        let origin: String
        let channel: String?
    }

    private struct State {
        var pending: [Write] = []
        var flushing = false
    }

    /// What the batches did, for tests and diagnostics.
    struct Statistics: Sendable, Equatable {
        /// Statements that carried two or more writes (`hush_enqueue_many`, `hush_acknowledge_many`).
        var sharedStatements = 0
        /// Writes carried by those statements.
        var sharedWrites = 0
        /// Batches retried after a transient server error (deadlock, serialization failure).
        var transientRetries = 0
    }
    private let stats = Mutex(Statistics())
    var statistics: Statistics { stats.withLock { $0 } }
    /// Test hook: the next commit is applied, then this runs, then the commit is reported as
    /// lost, as if the connection had dropped before the `COMMIT`'s answer (an ambiguous
    /// commit, which is retried). Cleared when taken.
    let ambiguousCommit = Mutex<(@Sendable () async -> Void)?>(nil)

    private let client: PostgresClient
    private let state = Mutex(State())
    private let logger: Logger
    private let timeout: Duration
    /// Most writes committed in one transaction.
    static let maxBatch = 256

    init(client: PostgresClient, timeout: Duration, logger: Logger) {
        self.client = client
        self.timeout = timeout
        self.logger = logger
    }

    /// Runs `body` in the next batch; `committed` runs after the commit, in commit order.
    /// `shared`, when given, lets the write share one statement with its neighbours of the same
    /// kind: it gets the arguments and a `take` that must store the outcome the way `body`
    /// would (see ``SharedWrite``); `body` still runs when the write has no such neighbour.
    func submit<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection, Bool) async throws -> T,
                             shared: ((_ store: @escaping @Sendable (Result<T, RelayStoreError>) -> Void) -> SharedWrite)? = nil,
                             committed: (@Sendable (T) -> Void)? = nil) async throws(RelayStoreError) -> T {
        // The write's own outcome: a value, or a typed rejection (the functions check before they
        // change anything, so a rejected write leaves the batch's transaction usable).
        let box = Mutex<Result<T, RelayStoreError>?>(nil)
        let sharedWrite = shared?({ outcome in box.withLock { $0 = outcome } })
        let result: Result<T, RelayStoreError> = await withCheckedContinuation { continuation in
            let resumed = Mutex(false)
            let resume: @Sendable (Result<T, RelayStoreError>) -> Void = { r in
                let first = resumed.withLock { done -> Bool in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: r) }
            }
            let write = Write(apply: { connection, retry in
                do {
                    let value = try await body(connection, retry)
                    box.withLock { $0 = .success(value) }
                } catch let rejected as RelayStoreError {
                    box.withLock { $0 = .failure(rejected) }
                }
            }, finish: { error in
                if let error { resume(.failure(error)); return }
                switch box.withLock({ $0 }) {
                case .success(let value)?:
                    committed?(value)
                    resume(.success(value))
                case .failure(let rejected)?: resume(.failure(rejected))
                case nil: resume(.failure(.storage("no result")))
                }
            }, abandon: { resume(.failure(.unavailable)) },
               shared: sharedWrite)
            // Every caller waits at most the timeout from its own submission, also while its
            // write is still queued behind a batch that waits for the database.
            let timer = Task { [timeout] in
                do { try await Task.sleep(for: timeout) } catch { return }
                resume(.failure(.unavailable))
            }
            let original = write
            enqueue(Write(apply: original.apply, finish: { error in
                timer.cancel()
                original.finish(error)
            }, abandon: original.abandon, shared: original.shared))
        }
        return try result.get()
    }

    private func enqueue(_ write: Write) {
        let start = state.withLock { s -> Bool in
            s.pending.append(write)
            if s.flushing { return false }
            s.flushing = true
            return true
        }
        if start { Task { await self.flushLoop() } }
    }

    private func flushLoop() async {
        while true {
            let batch = state.withLock { s -> [Write] in
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
            await commit(batch)
        }
    }

    enum Failure: Error {
        /// One statement failed on the server: the transaction is aborted, nothing committed.
        case statement(index: Int, any Error)
        /// The leased connection was already closed: nothing was sent on it.
        case closedConnection
    }

    /// Most attempts at one batch (each also bounded by the batch's deadline).
    static let maxAttempts = 64
    /// How long past the deadline a begun attempt may still finish before its connection is
    /// closed under it (postgres-nio does not answer some queries on a connection whose session
    /// ended; this bounds the wait).
    static let grace = Duration.seconds(2)
    /// Longest wait for a ROLLBACK after a failed statement.
    static let rollbackTimeout = Duration.seconds(2)

    /// How one attempt at a batch ended.
    private enum Outcome {
        case committed
        case statement(index: Int, any Error)
        /// The connection failed (or was closed) before the commit's outcome was known.
        case lost(any Error)
        /// Not finished by the deadline plus ``grace``: its connection was closed.
        case timedOut
    }

    /// Commits `batch`, retrying lost connections until the deadline (or ``maxAttempts``).
    /// A batch whose `COMMIT` was sent but not answered is retried with `retry: true` (the
    /// dedupe rows tell what committed); if its outcome is still unknown at the end, every
    /// write fails with ``RelayStoreError/unavailable``: it is never acknowledged as committed,
    /// the client resends it with the same id, and the dedupe id makes that safe.
    private func commit(_ batch: [Write]) async {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        // The callers stop waiting at the deadline; the batch is still finished here first.
        let watchdog = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            if !Task.isCancelled { for w in batch { w.abandon() } }
        }
        defer { watchdog.cancel() }
        var ambiguous = false
        var backoff = Duration.milliseconds(20)
        var attempts = 0
        while true {
            attempts += 1
            let flags = AttemptFlags()
            let outcome = await attempt(batch, ambiguous: ambiguous, flags: flags, deadline: deadline)
            let more = ContinuousClock.now < deadline && attempts < Self.maxAttempts
            switch outcome {
            case .committed:
                for w in batch { w.finish(nil) }
                return
            case .statement(let index, let error):
                if Self.isTransient(error), more {
                    // Deadlock with another node, or the server is shutting down: nothing committed.
                    logger.warning("batch failed with a transient server error; retrying", metadata: ["error": "\(Self.describe(error))"])
                    stats.withLock { $0.transientRetries += 1 }
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .milliseconds(500))
                    continue
                }
                if Self.isTransient(error) {
                    logger.error("database unavailable; writes not acknowledged", metadata: ["writes": "\(batch.count)", "error": "\(Self.describe(error))"])
                    for w in batch { w.finish(.unavailable) }
                    return
                }
                // A bad write aborts only its own batch: commit the others one by one.
                if batch.count == 1 {
                    logger.error("store write failed", metadata: ["error": "\(String(reflecting: error))"])
                    batch[0].finish(.storage(Self.describe(error)))
                    return
                }
                logger.warning("batch aborted by one write; committing its writes one by one", metadata: ["index": "\(index)"])
                for w in batch { await commit([w]) }
                return
            case .lost(let error):
                if flags.commitSent.withLock({ $0 }) { ambiguous = true }
                guard more else {
                    logger.error("database unavailable; writes not acknowledged", metadata: ["writes": "\(batch.count)", "error": "\(Self.describe(error))"])
                    for w in batch { w.finish(.unavailable) }
                    return
                }
                logger.warning("database connection lost; retrying batch", metadata: ["ambiguous": "\(ambiguous)", "error": "\(Self.describe(error))"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .milliseconds(500))
            case .timedOut:
                logger.error("database did not answer; writes not acknowledged",
                             metadata: ["writes": "\(batch.count)", "stage": "\(flags.stage.withLock { $0 })", "attempts": "\(attempts)"])
                for w in batch { w.finish(.unavailable) }
                return
            }
        }
    }

    /// One transaction for `batch` on a leased connection. A connection that fails in any way
    /// is closed before it goes back to the pool (it is never reused in an unknown state); no
    /// ROLLBACK is sent after an error that ended the session (it would never be answered).
    private func attempt(_ batch: [Write], ambiguous: Bool, flags: AttemptFlags, deadline: ContinuousClock.Instant) async -> Outcome {
        let started = ContinuousClock.now
        return await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            // The first of: the attempt's own outcome, its connection closing under it (after a
            // server shutdown postgres-nio may never answer the query in flight), the deadline.
            let done = Mutex(false)
            let timer = Mutex<Task<Void, Never>?>(nil)
            let finish: @Sendable (Outcome) -> Bool = { outcome in
                let first = done.withLock { d -> Bool in
                    defer { d = true }
                    return !d
                }
                guard first else { return false }
                timer.withLock { $0 }?.cancel()
                continuation.resume(returning: outcome)
                return true
            }
            let task = Task { [client, logger] in
                let outcome: Outcome
                do {
                    try await client.withConnection { connection in
                        flags.connection.withLock { $0 = connection }
                        guard !connection.isClosed else { throw Failure.closedConnection }
                        connection.closeFuture.whenComplete { _ in _ = finish(.lost(Failure.closedConnection)) }
                        do {
                            flags.began.withLock { $0 = true }
                            flags.stage.withLock { $0 = "BEGIN" }
                            try await connection.query("BEGIN", logger: logger)
                            flags.stage.withLock { $0 = "lock" }
                            do {
                                try await Self.lockDevices(of: batch, on: connection, logger: logger)
                            } catch let e as PSQLError where e.code == .server {
                                if Self.endsSession(e) || connection.isClosed {
                                    connection.close().whenComplete { _ in }
                                } else if await !Self.rollback(connection, logger: logger) {
                                    connection.close().whenComplete { _ in }
                                }
                                throw Failure.statement(index: 0, e)
                            }
                            var i = 0
                            while i < batch.count {
                                // A run of writes of one shared kind is one statement; any other
                                // write is its own.
                                var end = i + 1
                                if let kind = batch[i].shared?.kind {
                                    while end < batch.count, batch[end].shared?.kind == kind { end += 1 }
                                }
                                flags.stage.withLock { $0 = end - i > 1 ? "writes \(i)..<\(end)" : "write \(i)" }
                                do {
                                    if end - i > 1 {
                                        try await Self.applyShared(batch[i..<end], on: connection, retry: ambiguous, logger: logger)
                                        self.stats.withLock { $0.sharedStatements += 1; $0.sharedWrites += end - i }
                                    } else {
                                        try await batch[i].apply(connection, ambiguous)
                                    }
                                } catch let e as PSQLError where e.code == .server {
                                    if Self.endsSession(e) || connection.isClosed {
                                        connection.close().whenComplete { _ in }
                                    } else if await !Self.rollback(connection, logger: logger) {
                                        connection.close().whenComplete { _ in }
                                    }
                                    throw Failure.statement(index: i, e)
                                }
                                i = end
                            }
                            flags.commitSent.withLock { $0 = true }
                            flags.stage.withLock { $0 = "COMMIT" }
                            try await connection.query("COMMIT", logger: logger)
                            if let hook = self.ambiguousCommit.withLock({ h in defer { h = nil }; return h }) {
                                await hook()
                                throw Failure.closedConnection
                            }
                        } catch let failure as Failure {
                            throw failure
                        } catch {
                            // Lost mid-transaction (or a failed BEGIN/COMMIT): never hand it back open.
                            connection.close().whenComplete { _ in }
                            throw error
                        }
                    }
                    outcome = .committed
                } catch Failure.statement(let index, let error) {
                    outcome = .statement(index: index, error)
                } catch {
                    outcome = .lost(error)
                }
                if !finish(outcome) {
                    // Given up on already (its connection closed, or the deadline): it ended late.
                    logger.debug("abandoned commit attempt ended", metadata: ["after": "\(ContinuousClock.now - started)", "stage": "\(flags.stage.withLock { $0 })"])
                }
            }
            // The lease may wait for a server that is not back yet: past the deadline, a wait
            // that has not begun a transaction is cancelled; a begun one gets the grace, then
            // its connection is closed under it.
            let t = Task {
                do { try await Task.sleep(until: deadline, clock: .continuous) } catch { return }
                if !flags.began.withLock({ $0 }) {
                    task.cancel()
                    _ = finish(.lost(CancellationError()))
                    return
                }
                do { try await Task.sleep(until: deadline.advanced(by: Self.grace), clock: .continuous) } catch { return }
                // Still the attempt's own connection: the attempt has not returned it to the pool.
                guard !done.withLock({ $0 }) else { return }
                task.cancel()
                flags.connection.withLock { $0 }?.close().whenComplete { _ in }
                _ = finish(.timedOut)
            }
            let late = timer.withLock { slot -> Bool in
                slot = t
                return done.withLock { $0 }
            }
            if late { t.cancel() }
        }
    }

    /// Locks, in one global order (the devices' row ids), every device row the batch's enqueues
    /// and acks will update. Without it two nodes' batches lock rows of the same devices in
    /// their own batch orders and deadlock: PostgreSQL resolves that only after
    /// `deadlock_timeout` (1 s) by aborting one batch, which then retries — measured as
    /// multi-second p99 latency with three nodes (Docs/scale.md §4). Writes of other kinds lock
    /// their rows when they run (rarer; a deadlock there is retried as transient).
    private static func lockDevices(of batch: [Write], on connection: PostgresConnection, logger: Logger) async throws {
        struct Key: Hashable { let account: String; let device: Int64 }
        var keys = Set<Key>()
        for w in batch {
            switch w.shared {
            case .enqueue(let a, _)?: for d in a.devices { keys.insert(Key(account: a.recipient, device: d)) }
            case .acknowledge(let account, let device, _, _)?: keys.insert(Key(account: account, device: device))
            case nil: break
            }
        }
        // One write's own locks cannot deadlock with itself; a single-device write needs none.
        guard keys.count > 1 else { return }
        let accounts = keys.map(\.account), devices = keys.map(\.device)
        let rows = try await connection.query("""
            SELECT count(*) FROM (SELECT d.id FROM devices d
                JOIN unnest(\(accounts)::text[], \(devices)::bigint[]) AS u(a, dv) ON d.account = u.a AND d.device_id = u.dv
                ORDER BY d.id FOR UPDATE OF d) l
            """, logger: logger)
        for try await _ in rows.decode(Int64.self) {}
    }

    /// Runs a run of two or more writes of one shared kind as one statement, and hands each
    /// write its own result row. A write whose row is missing gets a storage error.
    private static func applyShared(_ run: ArraySlice<Write>, on connection: PostgresConnection, retry: Bool,
                                    logger: Logger) async throws {
        let writes = run.compactMap(\.shared)
        guard let first = writes.first else { return }
        switch first {
        case .enqueue(let a0, _):
            var senders: [String] = [], senderDevices: [Int64] = [], cmids: [Int64] = [], recipients: [String] = []
            var counts: [Int64] = [], devices: [Int64] = [], payloads: [ByteBuffer] = [], nows: [Int64] = []
            var expires: [Int64] = [], caps: [Int64] = []
            var takes: [@Sendable (Int64, Int64, [Int64]?, Bool) -> Void] = []
            for w in writes {
                guard case .enqueue(let a, let take) = w else { continue }
                senders.append(a.sender); senderDevices.append(a.senderDevice); cmids.append(a.clientMessageID)
                recipients.append(a.recipient); counts.append(Int64(a.devices.count)); devices += a.devices
                payloads.append(a.payload); nows.append(a.now); expires.append(a.expires); caps.append(a.cap)
                takes.append(take)
            }
            let rows = try await connection.query("""
                SELECT r_ord, r_status, r_detail, r_ids FROM hush_enqueue_many(\(senders), \(senderDevices), \(cmids),
                    \(recipients), \(counts), \(devices), \(payloads), \(nows), \(expires), \(caps), \(a0.origin), \(a0.channel))
                """, logger: logger)
            var seen = [Bool](repeating: false, count: takes.count)
            for try await (ord, status, detail, ids) in rows.decode((Int64, Int64, Int64, [Int64]?).self) {
                let k = Int(ord) - 1
                guard takes.indices.contains(k), !seen[k] else { continue }
                seen[k] = true
                takes[k](status, detail, ids, retry)
            }
            for k in takes.indices where !seen[k] { takes[k](-1, 0, nil, retry) }
        case .acknowledge:
            var accounts: [String] = [], deviceIDs: [Int64] = [], counts: [Int64] = [], ids: [Int64] = []
            var takes: [@Sendable (Int64, Int64) -> Void] = []
            for w in writes {
                guard case .acknowledge(let account, let device, let serverIDs, let take) = w else { continue }
                accounts.append(account); deviceIDs.append(device); counts.append(Int64(serverIDs.count)); ids += serverIDs
                takes.append(take)
            }
            let rows = try await connection.query("""
                SELECT r_ord, r_status, r_deleted FROM hush_acknowledge_many(\(accounts), \(deviceIDs), \(counts), \(ids))
                """, logger: logger)
            var seen = [Bool](repeating: false, count: takes.count)
            for try await (ord, status, deleted) in rows.decode((Int64, Int64, Int64).self) {
                let k = Int(ord) - 1
                guard takes.indices.contains(k), !seen[k] else { continue }
                seen[k] = true
                takes[k](status, deleted)
            }
            for k in takes.indices where !seen[k] { takes[k](-1, 0) }
        }
    }

    /// Rolls back after a failed statement; false when the server did not confirm in time.
    private static func rollback(_ connection: PostgresConnection, logger: Logger) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: rollbackTimeout)
        let ok = await withDeadline(deadline) {
            do { try await connection.query("ROLLBACK", logger: logger); return true } catch { return false }
        }
        return ok ?? false
    }

    /// A server error after which the session is over (the server closes the connection):
    /// FATAL or PANIC severity, operator intervention (57P: shutdown, crash, cannot connect
    /// now), connection exceptions (08).
    static func endsSession(_ e: PSQLError) -> Bool {
        let severity = e.serverInfo?[.severity] ?? ""
        let state = e.serverInfo?[.sqlState] ?? ""
        return severity == "FATAL" || severity == "PANIC" || state.hasPrefix("57P") || state.hasPrefix("08")
    }

    /// Server errors that mean "try again": serialization failure, deadlock, the server
    /// shutting down or starting up, connection-class errors.
    static func isTransient(_ error: any Error) -> Bool {
        guard let e = error as? PSQLError else { return false }
        guard e.code == .server else { return true }
        let state = e.serverInfo?[.sqlState] ?? ""
        return state == "40001" || state == "40P01" || state.hasPrefix("08") || state.hasPrefix("57P")
    }

    /// Error text without query binds (which could carry payloads or keys).
    static func describe(_ error: any Error) -> String {
        if let e = error as? PostgresError, case .server(let message) = e {
            return "postgres \(message.fields[.sqlState] ?? "?"): \(message.fields[.message] ?? "")"
        }
        guard let e = error as? PSQLError else { return "\(type(of: error))" }
        if e.code == .server {
            let state = e.serverInfo?[.sqlState] ?? "?"
            let message = e.serverInfo?[.message] ?? ""
            return "postgres \(state): \(message)"
        }
        return "postgres client: \(e.code)"
    }
}

/// What one commit attempt got to.
final class AttemptFlags: Sendable {
    let began = Mutex(false)
    let commitSent = Mutex(false)
    /// The statement the attempt is at (for the log when it does not finish).
    let stage = Mutex("lease")
    /// The leased connection (closed under a query that does not finish in time).
    let connection = Mutex<PostgresConnection?>(nil)
}

/// Runs `body`, retrying transient failures (lost connections, restarts) until `timeout` has
/// passed; then throws ``RelayStoreError/unavailable``. For reads, which are safe to repeat.
func retrying<T: Sendable>(timeout: Duration, logger: Logger, _ body: @escaping @Sendable () async throws -> T) async throws(RelayStoreError) -> T {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    var backoff = Duration.milliseconds(20)
    while true {
        let result: Result<T, any Error>? = await withDeadline(deadline) {
            do { return .success(try await body()) } catch { return .failure(error) }
        }
        switch result {
        case nil: throw .unavailable
        case .success(let value)?: return value
        case .failure(let error)?:
            if let e = error as? RelayStoreError { throw e }
            if error is CancellationError { throw .storage("cancelled") }
            guard PostgresGroupCommitter.isTransient(error) else { throw .storage(PostgresGroupCommitter.describe(error)) }
            guard ContinuousClock.now < deadline else { throw .unavailable }
            logger.debug("database read failed; retrying", metadata: ["error": "\(PostgresGroupCommitter.describe(error))"])
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .milliseconds(500))
        }
    }
}

/// `body`'s value, or nil once `deadline` passed (the body keeps running detached; it is a
/// read, and its result is dropped).
func withDeadline<T: Sendable>(_ deadline: ContinuousClock.Instant, _ body: @escaping @Sendable () async -> T) async -> T? {
    await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
        let done = Mutex(false)
        let finish: @Sendable (T?) -> Void = { value in
            let first = done.withLock { d -> Bool in
                defer { d = true }
                return !d
            }
            if first { continuation.resume(returning: value) }
        }
        let timer = Task {
            do { try await Task.sleep(until: deadline, clock: .continuous) } catch { return }  // cancelled: the body finished
            finish(nil)
        }
        Task {
            let value = await body()
            timer.cancel()
            finish(value)
        }
    }
}
