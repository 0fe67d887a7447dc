import ArgumentParser
import Foundation
import Hush
import HushRelay
import HushTransport
import Logging

/// `hush-load relay`: a relay process for load runs and the smoke test, with fresh keys in
/// memory and a SQLite store in `--data-dir` (the production entry point is `hush-relay serve`).
struct LocalRelay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Run a loopback relay with fresh in-memory keys (prints its trust root), for load runs and tests."
    )
    @Option var port = 7_400
    @Option(name: .customLong("data-dir")) var dataDir: String
    @Option(name: .customLong("stanza-rate"), help: "Sustained stanzas/s allowed per connection (the relay's default when omitted).")
    var stanzaRate: Double?
    @Option(name: .customLong("heap-report"), help: "Print glibc malloc_stats() (heap bytes in use) to stderr every this many seconds; 0 = never.")
    var heapReport: Double = 0

    func run() async throws {
        _ = raiseOpenFileLimit()
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        let store = try SQLiteRelayStore(path: dataDir + "/relay.sqlite")
        let root = try Curve25519.KeyAgreement.PrivateKey()
        let key = try Curve25519.KeyAgreement.PrivateKey()
        let now = unixSeconds()
        let cert = try RelayCertificate.issue(keyID: 1, relayKey: key.publicKey, notBefore: now - 3_600, notAfter: now + 86_400, trustRoot: root)
        let identity = try RelayIdentity(staticKey: key, certificate: cert, trustRoot: root.publicKey, now: now)
        var config = RelayConfiguration()
        if let stanzaRate {
            config.stanzaRate = stanzaRate
            config.stanzaBurst = stanzaRate * 2
        }
        var logger = Logger(label: "hush-load-relay")
        logger.logLevel = .warning
        let relay = Relay(store: store, identity: identity, configuration: config, logger: logger)
        let hex = root.publicKey.rawRepresentation.map { String(format: "%02x", $0) }.joined()
        let app = RelayServer.application(relay: relay, port: port, logger: logger) { bound in
            print("trust-root \(hex)")
            print("listening ws://127.0.0.1:\(bound) pid \(getpid())")
            fflush(nil)
        }
        if heapReport > 0 {
            let interval = heapReport
            Thread.detachNewThread {
                while true {
                    // glibc's malloc_stats() prints per-arena and total "in use bytes" to stderr.
                    log("online \(relay.onlineDevices); glibc malloc_stats:")
                    if let f = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_stats") {
                        unsafeBitCast(f, to: (@convention(c) () -> Void).self)()
                    }
                    Thread.sleep(forTimeInterval: interval)
                }
            }
        }
        try await app.runService()
    }
}
