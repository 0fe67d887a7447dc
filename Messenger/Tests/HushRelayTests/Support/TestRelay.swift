import Foundation
import Hummingbird
import Hush
import HushTransport
import Logging
import Synchronization
@testable import HushRelay

/// A settable clock (Unix milliseconds).
final class TestClock: Sendable {
    private let value: Atomic<UInt64>
    init(_ ms: UInt64 = 1_800_000_000_000) { value = Atomic(ms) }
    var now: UInt64 { value.load(ordering: .relaxed) }
    func advance(by ms: UInt64) { value.add(ms, ordering: .relaxed) }
}

/// An in-process relay on a loopback port with a fresh SQLite store.
final class TestRelay: @unchecked Sendable {
    let relay: Relay
    let identity: RelayIdentity
    let clock: TestClock
    let directory: URL
    private(set) var port = 0
    private var task: Task<Void, any Error>?

    var clockSeconds: @Sendable () -> UInt64 { { [clock] in clock.now / 1_000 } }

    static func start(_ configure: (inout RelayConfiguration) -> Void = { _ in }) async throws -> TestRelay {
        let clock = TestClock()
        var config = RelayConfiguration()
        config.clock = { [clock] in clock.now }
        config.handshakeTimeout = .seconds(2)
        if ProcessInfo.processInfo.environment["RELAY_TEST_NOPING"] != nil { config.pingInterval = .zero }
        configure(&config)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hush-relay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try SQLiteRelayStore(path: directory.appendingPathComponent("relay.sqlite").path)
        let root = try Curve25519.KeyAgreement.PrivateKey()
        let key = try Curve25519.KeyAgreement.PrivateKey()
        let seconds = clock.now / 1_000
        let cert = try RelayCertificate.issue(keyID: 1, relayKey: key.publicKey, notBefore: seconds - 86_400,
                                              notAfter: seconds + 400 * 86_400, trustRoot: root)
        var identity = try RelayIdentity(staticKey: key, certificate: cert, trustRoot: root.publicKey, now: seconds)
        let serverKey = try Curve25519.KeyAgreement.PrivateKey()
        let serverCert = try ServerCertificate.issue(keyID: 1, key: serverKey.publicKey, expiration: clock.now + 90 * 86_400_000,
                                                     signedBy: root)
        identity.senderCertificates = try SenderCertificateAuthority(serverKey: serverKey, certificate: serverCert,
                                                                     trustRoot: root.publicKey)
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
        var it = portStream.makeAsyncIterator()
        port = await it.next() ?? 0
    }

    func stop() async {
        task?.cancel()
        _ = try? await task?.value
        try? FileManager.default.removeItem(at: directory)
    }
}
