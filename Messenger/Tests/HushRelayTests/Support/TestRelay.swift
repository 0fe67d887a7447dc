import Foundation

import Hush
import HushTransport
import Logging
import HushTestSupport
import Synchronization
@testable import HushRelay

/// An in-process relay on a loopback port with a fresh SQLite store.
final class TestRelay: @unchecked Sendable {
    let relay: Relay
    let identity: RelayIdentity
    let clock: TestClock
    let directory: URL
    private(set) var port = 0
    private var task: Task<Void, any Error>?
    /// Link tokens issued for tests but not used yet, by "account/device id" (``RelayTestClient/registerLinked(_:_:via:pattern:)``).
    let linkTokens = Mutex<[String: Data]>([:])

    var clockSeconds: @Sendable () -> UInt64 { { [clock] in clock.now / 1_000 } }

    /// `store`: the relay's store (default: a fresh SQLite database in a temporary directory).
    static func start(store givenStore: (any RelayStore)? = nil, _ configure: (inout RelayConfiguration) -> Void = { _ in }) async throws -> TestRelay {
        let clock = TestClock()
        var config = RelayConfiguration()
        config.clock = { [clock] in clock.now }
        // The relay's default (10 s): at 2 s, handshakes of other tests timed out (4001) while
        // the half-open test loaded the machine; tests of the timeout set their own.
        config.handshakeTimeout = .seconds(10)
        if ProcessInfo.processInfo.environment["RELAY_TEST_NOPING"] != nil { config.pingInterval = .zero }
        configure(&config)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hush-relay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try givenStore ?? SQLiteRelayStore(path: directory.appendingPathComponent("relay.sqlite").path)
        let identity = try TestRelayKeys.identity(clock: clock, serverCertificateDays: 90)
        var logger = Logger(label: "test-relay")
        logger.logLevel = ProcessInfo.processInfo.environment["RELAY_TEST_DEBUG"] != nil ? .trace : .warning
        let relay = Relay(store: store, identity: identity, configuration: config, logger: logger)
        let t = TestRelay(relay: relay, identity: identity, clock: clock, directory: directory)
        try await t.run()
        return t
    }

    private init(relay: Relay, identity: RelayIdentity, clock: TestClock, directory: URL) {
        self.relay = relay
        self.identity = identity
        self.clock = clock
        self.directory = directory
    }

    private func run() async throws {
        let (portStream, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "test-relay-http")
        logger.logLevel = ProcessInfo.processInfo.environment["RELAY_TEST_DEBUG"] != nil ? .trace : .warning
        let app = RelayServer.application(relay: relay, port: 0, logger: logger) { port in continuation.yield(port) }
        let group = RelayServer.serviceGroup(application: app, relay: relay, gracefulShutdownSignals: [], logger: logger)
        task = Task { try await group.run() }
        port = await firstElement(of: portStream) ?? 0  // bounded; 0: the connects then fail
    }

    func stop() async {
        task?.cancel()
        _ = try? await task?.value
        try? FileManager.default.removeItem(at: directory)
    }
}
