import Foundation
import Hush
import HushRelay
import HushTransport
import Logging
import Synchronization

/// A relay inside this process for `hush demo`: keys and SQLite databases in `dataDirectory`
/// (as `hush-relay serve` keeps them), a free loopback port, and a restart on the same port with
/// the same data (the durable offline queue survives it).
public final class EmbeddedRelay: @unchecked Sendable {
    // Touched only by the demo's one task (start, stop, restart in sequence).
    public let dataDirectory: URL
    public let identity: RelayIdentity
    public private(set) var port = 0
    private var task: Task<Void, any Error>?
    private var relay: Relay?
    private var currentStore: SQLiteRelayStore?
    /// Messages sent to each account logged in (`Send`) and sealed (`SealedSend`), for the
    /// demo to show which way they went.
    private final class Counts: Sendable {
        let m = Mutex<(sent: [String: Int], sealed: [String: Int])>(([:], [:]))
        /// Each MultiSend's recipient devices and envelope size.
        let multi = Mutex<[(devices: Int, bytes: Int)]>([])
    }
    private let counts = Counts()
    /// How long a start may take to bind.
    public static let startTimeout: Duration = .seconds(10)

    /// Creates the relay's keys in `dataDirectory` (which must exist). Nothing listens yet.
    public init(dataDirectory: URL) throws {
        self.dataDirectory = dataDirectory
        identity = try RelayKeyFiles.generate(in: dataDirectory.path)
    }

    /// The key clients pin.
    public var trustRoot: Curve25519.KeyAgreement.PublicKey { identity.trustRoot }

    /// Listens: the first time on a free port below the kernel's ephemeral range (so that no
    /// outgoing socket — the demo's own clients included — can be holding it when the relay
    /// restarts), afterwards on the same port, retrying for a while if it is still closing.
    public func start() async throws {
        guard task == nil else { return }
        if port == 0 {
            for _ in 0..<100 {
                do { return try await startOnce(Int.random(in: 20_000..<32_000)) } catch CLIError.relay {}
            }
        } else {
            for _ in 0..<40 {
                do { return try await startOnce(port) } catch CLIError.relay {}
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        throw CLIError.relay("the embedded relay did not start (port \(port) taken)")
    }

    private func startOnce(_ wanted: Int) async throws {
        var logger = Logger(label: "hush-demo-relay")
        logger.logLevel = ProcessInfo.processInfo.environment["HUSH_DEMO_DEBUG"] != nil ? .debug : .critical
        let store = try SQLiteRelayStore(path: dataDirectory.appendingPathComponent("relay.sqlite").path)
        let presence = try SQLitePresenceStore(path: dataDirectory.appendingPathComponent("presence.sqlite").path)
        var configuration = RelayConfiguration()
        configuration.handshakeTimeout = .seconds(5)
        let counts = self.counts
        configuration.stanzaHook = { stanza in
            switch stanza.body {
            case .send(let m)?: counts.m.withLock { $0.sent[m.account, default: 0] += 1 }
            case .sealedSend(let m)?: counts.m.withLock { $0.sealed[m.account, default: 0] += 1 }
            case .multiSend(let m)?: counts.multi.withLock { $0.append((m.recipients.reduce(0) { $0 + $1.devices.count }, m.envelope.count)) }
            default: break
            }
        }
        configuration.media = try MediaService(store: DiskMediaStore(folder: dataDirectory.appendingPathComponent("media")))
        let relay = Relay(store: store, identity: identity, configuration: configuration, logger: logger, presenceStore: presence)
        self.relay = relay
        currentStore = store
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = RelayServer.application(relay: relay, host: "127.0.0.1", port: wanted, logger: logger) { continuation.yield($0) }
        let group = RelayServer.serviceGroup(application: app, relay: relay, gracefulShutdownSignals: [], logger: logger)
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        self.task = task
        let bound = try await withTimeout(Self.startTimeout, "the relay to listen") {
            var it = ports.makeAsyncIterator()
            return await it.next()
        }
        guard let bound else {
            self.task = nil
            _ = try? await task.value
            throw CLIError.relay("the embedded relay did not start (port \(wanted) taken?)")
        }
        port = bound
    }

    /// How many messages to `account` came logged in and how many sealed (since this process began).
    public func sends(to account: String) -> (loggedIn: Int, sealed: Int) {
        counts.m.withLock { ($0.sent[account] ?? 0, $0.sealed[account] ?? 0) }
    }

    /// The MultiSends taken so far: each one's recipient devices and envelope bytes.
    public var multiSends: [(devices: Int, bytes: Int)] { counts.multi.withLock { $0 } }

    /// The sender accounts of the messages queued for a device, as the relay stores them.
    public func queuedSenders(account: String, deviceID: UInt32 = 1) async throws -> [String] {
        guard let store = currentStore else { return [] }
        return try await store.pending(account: account, deviceID: deviceID, after: 0, limit: 100).map(\.senderAccount)
    }

    /// Stops listening; connections are closed with 1001 (going away). Data and keys stay.
    public func stop() async {
        guard let task else { return }
        self.task = nil
        task.cancel()
        _ = try? await task.value
        relay = nil
    }

    /// Stop, then start on the same port.
    public func restart() async throws {
        await stop()
        try await start()
    }
}

/// Runs `body`, or throws ``CLIError/timeout(_:)`` naming `what` after `limit`.
public func withTimeout<R: Sendable>(_ limit: Duration, _ what: String,
                                     _ body: @escaping @Sendable () async throws -> R) async throws -> R {
    try await withThrowingTaskGroup(of: R?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw CLIError.timeout("\(what) (waited \(limit.seconds) s)")
        }
        return value
    }
}

/// Polls `condition` every 10 ms until it holds, or throws ``CLIError/timeout(_:)`` naming
/// `what` after `limit`.
public func waitUntil(_ what: String, timeout limit: Duration = .seconds(10),
                      _ condition: @escaping @Sendable () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while true {
        if try await condition() { return }
        guard ContinuousClock.now < deadline else { throw CLIError.timeout("\(what) (waited \(limit.seconds) s)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

extension Duration {
    /// Whole seconds (for messages).
    var seconds: String {
        let c = components
        let s = Double(c.seconds) + Double(c.attoseconds) / 1e18
        return s == s.rounded() ? String(Int(s)) : String(format: "%.1f", s)
    }
}
