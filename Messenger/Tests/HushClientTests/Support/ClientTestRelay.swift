import Foundation
import Hush
import HushClient
import HushRelay
import HushTransport
import HushTestSupport
import Logging
import Synchronization

/// An in-process relay on loopback with SQLite stores in a temporary directory. It can be
/// stopped and started again on the same port with the same keys and data (a relay restart).
final class ClientTestRelay: @unchecked Sendable {
    let clock: TestClock
    let directory: URL
    let identity: RelayIdentity
    private(set) var relay: Relay!
    private(set) var presenceStore: SQLitePresenceStore!
    private(set) var port = 0
    private var task: Task<Void, any Error>?
    /// Data generation: ``resetData()`` starts over with empty databases (a relay that lost its data).
    private var generation = 0
    /// The relay's stanza hook (see `RelayConfiguration.stanzaHook`), read at ``start()``.
    var hook: (@Sendable (RelayStanza) throws -> Void)?
    /// Wraps the relay's store (e.g. a misbehaving relay), read at ``start()``.
    var wrapStore: (@Sendable (any RelayStore) -> any RelayStore)?
    /// Every line the relay logs, at trace level, when set (read at ``start()``).
    var logCapture: LogCapture?
    /// Changes to the relay's configuration (limits), applied at ``start()``.
    var tune: (@Sendable (inout RelayConfiguration) -> Void)?

    var trustRoot: Curve25519.KeyAgreement.PublicKey { identity.trustRoot }
    var endpoint: RelayEndpoint { RelayEndpoint(host: "127.0.0.1", port: port) }

    init(clock: TestClock = TestClock()) throws {
        self.clock = clock
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("hush-client-relay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        identity = try TestRelayKeys.identity(clock: clock)
    }

    static func start(clock: TestClock = TestClock()) async throws -> ClientTestRelay {
        let r = try ClientTestRelay(clock: clock)
        try await r.start()
        return r
    }

    /// A bind that failed even after retries.
    struct CannotBind: Error { let port: Int }

    /// Starts (again) on the same port once one was bound. The first start takes a port below
    /// the kernel's ephemeral range (32768–60999 here), so that no client socket of this or a
    /// parallel test process can be holding it when the relay restarts; a restart retries the
    /// bind for a while (the previous listener may still be closing) and throws, never hangs.
    func start() async throws {
        if port == 0 {
            for _ in 0..<200 {
                if try await startOnce(port: Int.random(in: 20_000..<32_000)) { return }
            }
            throw CannotBind(port: 0)
        }
        for _ in 0..<100 {
            if try await startOnce(port: port) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CannotBind(port: port)
    }

    /// One attempt: `false` when the port could not be bound.
    private func startOnce(port wanted: Int) async throws -> Bool {
        var config = RelayConfiguration()
        config.clock = { [clock] in clock.now }
        config.handshakeTimeout = .seconds(5)
        config.pingInterval = .zero
        config.stanzaHook = hook
        tune?(&config)
        var logger = Logger(label: "client-test-relay")
        logger.logLevel = ProcessInfo.processInfo.environment["RELAY_TEST_DEBUG"] != nil ? .trace : .critical
        if let capture = logCapture {
            logger = Logger(label: "client-test-relay") { _ in CapturingLogHandler(capture: capture) }
            logger.logLevel = .trace
        }
        let store = try SQLiteRelayStore(path: directory.appendingPathComponent("relay-\(generation).sqlite").path)
        let presence = try SQLitePresenceStore(path: directory.appendingPathComponent("presence-\(generation).sqlite").path)
        let relay = Relay(store: wrapStore?(store) ?? store, identity: identity, configuration: config, logger: logger,
                          presenceStore: presence)
        presenceStore = presence
        self.relay = relay
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = RelayServer.application(relay: relay, port: wanted, logger: logger) { continuation.yield($0) }
        let group = RelayServer.serviceGroup(application: app, relay: relay, gracefulShutdownSignals: [], logger: logger)
        // A server that fails (the port is taken) ends the stream, so the wait below ends too.
        let t = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var it = ports.makeAsyncIterator()
        guard let bound = await it.next() else {
            _ = try? await t.value
            return false
        }
        task = t
        port = bound
        return true
    }

    /// Stops the server (connections closed with 1001); data and keys stay.
    func stop() async {
        task?.cancel()
        _ = try? await task?.value
        task = nil
    }

    /// Stops, forgets every account, message and prekey (same keys and port), starts again.
    func resetData() async throws {
        await stop()
        generation += 1
        try await start()
    }

    func finish() async {
        await stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A configuration for a client of this relay: test clock, quick backoff.
    func configuration(suite: CipherSuite = .hush1) -> ClientConfiguration {
        var c = ClientConfiguration(endpoint: endpoint, trustRoot: trustRoot)
        c.clock = { [clock] in clock.now }
        c.suite = suite
        c.backoff = Backoff(base: .milliseconds(20), maximum: .milliseconds(200))
        c.pingInterval = .seconds(3_600)
        c.requestTimeout = .seconds(20)
        return c
    }
}

/// Records a client's events and lets a test wait for one (no timing: it waits for the event).
actor EventLog {
    private(set) var all: [ClientEvent] = []
    private var waiters: [(id: Int, match: @Sendable (ClientEvent) -> Bool, c: CheckedContinuation<ClientEvent, Never>)] = []
    private var consumed = 0
    private var nextID = 0
    private var task: Task<Void, Never>?

    init(_ client: HushClient) {
        let events = client.events
        Task { await self.run(events) }
    }

    private func run(_ events: AsyncStream<ClientEvent>) async {
        for await e in events { record(e) }
    }

    private func record(_ e: ClientEvent) {
        all.append(e)
        var still: [(id: Int, match: @Sendable (ClientEvent) -> Bool, c: CheckedContinuation<ClientEvent, Never>)] = []
        for w in waiters {
            if w.match(e) { w.c.resume(returning: e) } else { still.append(w) }
        }
        waiters = still
    }

    /// What a wait returns when the test's time limit cancels it (no test waits for this).
    static let cancelled = ClientEvent.connection(.failed(.unspecified))

    /// The first event (ever recorded) that matches.
    func first(where match: @escaping @Sendable (ClientEvent) -> Bool) async -> ClientEvent {
        await next(after: 0, where: match)
    }

    /// Waits until an event matches, counting only events after `index` (see ``mark()``).
    /// Cancellation (the suite's time limit) ends the wait with ``cancelled``.
    func next(after index: Int, where match: @escaping @Sendable (ClientEvent) -> Bool) async -> ClientEvent {
        if let e = all.dropFirst(index).first(where: match) { return e }
        nextID += 1
        let id = nextID
        return await withTaskCancellationHandler {
            await withCheckedContinuation { c in
                if Task.isCancelled { c.resume(returning: Self.cancelled); return }
                waiters.append((id, match, c))
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    private func cancelWaiter(_ id: Int) {
        guard let i = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: i).c.resume(returning: Self.cancelled)
    }

    /// The number of events so far.
    func mark() -> Int { all.count }

    func messages(from account: String) -> [StoredMessage] {
        all.compactMap { if case .message(let m) = $0, m.conversation == account { m } else { nil } }
    }

    func ticks(_ id: MessageID) -> [TickState] {
        all.compactMap { if case .tick(let m, let t) = $0, m == id { t } else { nil } }
    }
}

/// The lines a logger wrote (message and metadata, as a log line would show them).
final class LogCapture: Sendable {
    private let storage = Mutex<[String]>([])
    var lines: [String] { storage.withLock { $0 } }
    func append(_ line: String) { storage.withLock { $0.append(line) } }
}

/// A log handler that appends each record, formatted like a stream handler's line, to a ``LogCapture``.
struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
             function: String, line: UInt) {
        let all = self.metadata.merging(metadata ?? [:]) { $1 }
        capture.append("\(level) [\(source)] \(message) \(all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
    }
}
