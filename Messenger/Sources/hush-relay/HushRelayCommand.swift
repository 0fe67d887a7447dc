import ArgumentParser
import Foundation

import Hush
import HushRelay
import HushRelayPostgres
import HushTransport
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `hush-relay`: the Hush relay server (`Docs/spec/relay.md`, README "Running the relay").
@main
struct HushRelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hush-relay",
        abstract: "The Hush relay: Noise-encrypted WebSocket connections, routing and a durable offline queue.",
        subcommands: [Serve.self, Keygen.self],
        defaultSubcommand: Serve.self
    )
}

/// Settings from a config file (`key = value` lines, `#` comments) and the environment
/// (`HUSH_RELAY_<KEY>`, upper case). Command-line flags win over the environment, which wins
/// over the file.
struct Settings {
    var values: [String: String] = [:]

    init(file: String?) throws {
        if let file {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            for raw in text.split(whereSeparator: \.isNewline) {
                let line = raw.split(separator: "#", maxSplits: 1).first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
                guard !line.isEmpty else { continue }
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 else { throw ValidationError("config \(file): not key = value: \(line)") }
                values[parts[0].replacingOccurrences(of: "_", with: "-")] = parts[1]
            }
        }
        for (k, v) in ProcessInfo.processInfo.environment where k.hasPrefix("HUSH_RELAY_") {
            values[k.dropFirst("HUSH_RELAY_".count).lowercased().replacingOccurrences(of: "_", with: "-")] = v
        }
    }

    func string(_ flag: String?, _ key: String, _ fallback: String) -> String { flag ?? values[key] ?? fallback }
    func int(_ flag: Int?, _ key: String, _ fallback: Int) throws -> Int {
        if let flag { return flag }
        guard let v = values[key] else { return fallback }
        guard let i = Int(v) else { throw ValidationError("\(key): not a number: \(v)") }
        return i
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the relay: WebSocket at /v1/ws, GET /health and GET /metrics on one port.",
        discussion: """
            On an empty data directory the relay creates its trust root, its Noise key and a certificate, \
            and prints the trust root's public key (what clients pin). Settings come from flags, then \
            HUSH_RELAY_* environment variables (HUSH_RELAY_PORT, HUSH_RELAY_HOST, HUSH_RELAY_DATA_DIR, \
            HUSH_RELAY_QUEUE_CAP, HUSH_RELAY_LOG_LEVEL, HUSH_RELAY_STORE, HUSH_RELAY_MEDIA_STORE), then the config file. \
            --store postgres://user@host:port/db?schema=…&pool=…&timeout_ms=…&startup_timeout_ms=… keeps the state in \
            PostgreSQL instead of data-dir/relay.sqlite; several relay processes may then share \
            that database (any device may connect to any of them), and media blobs go into it too \
            unless --media-store disk. SIGTERM or SIGINT shut \
            the relay down gracefully (connections are closed with 1001).
            """
    )

    @Option(help: "TCP port (0: any free port). Default 8080.") var port: Int?
    @Option(help: "Address to bind. Default 127.0.0.1.") var host: String?
    @Option(help: "Directory for the database and key files. Default ./relay-data.") var dataDir: String?
    @Option(help: "Config file with key = value lines (port, host, data-dir, queue-cap, log-level, store, media-store).") var config: String?
    @Option(help: "Messages queued per device before sends fail with QUEUE_FULL. Default 10000.") var queueCap: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. Default info.") var logLevel: String?
    @Option(help: "sqlite (data-dir/relay.sqlite, one node) or a postgres:// URL (one or more nodes). Default sqlite.") var store: String?
    @Option(help: "Media blobs: disk (data-dir/media) or postgres (the --store database, shared by every node). Default postgres with a postgres:// store, else disk.")
    var mediaStore: String?

    func run() async throws {
        let settings = try Settings(file: config)
        let port = try settings.int(self.port, "port", 8080)
        let host = settings.string(self.host, "host", "127.0.0.1")
        let dataDir = settings.string(self.dataDir, "data-dir", "relay-data")
        let level = Logger.Level(rawValue: settings.string(logLevel, "log-level", "info")) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "hush-relay")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let identity: RelayIdentity
        if RelayKeyFiles.exist(in: dataDir) {
            identity = try RelayKeyFiles.load(from: dataDir)
        } else {
            identity = try RelayKeyFiles.generate(in: dataDir)
            say("hush-relay: created keys in \(dataDir)")
        }
        say("trust root: \(Hex.encode(identity.trustRoot.rawRepresentation))")
        say("relay key: \(Hex.encode(identity.staticKey.publicKey.rawRepresentation)) (certificate key id \(identity.certificate.keyID))")

        var configuration = RelayConfiguration()
        configuration.queueCap = try settings.int(queueCap, "queue-cap", configuration.queueCap)
        let storeSetting = settings.string(self.store, "store", "sqlite")
        let relayStore: any RelayStore
        var postgres: (PostgresRelayStore, PostgresRelayCluster)?
        if storeSetting == "sqlite" {
            relayStore = try SQLiteRelayStore(path: URL(fileURLWithPath: dataDir).appendingPathComponent("relay.sqlite").path)
        } else if storeSetting.hasPrefix("postgres://") || storeSetting.hasPrefix("postgresql://") {
            let pg = try await PostgresRelayStore.connect(try PostgresStoreConfiguration(url: storeSetting), notifyCommits: true, logger: logger)
            let cluster = PostgresRelayCluster(store: pg, logger: logger)
            configuration.cluster = cluster
            relayStore = pg
            postgres = (pg, cluster)
            say("store: postgresql (node \(pg.configuration.nodeID), schema \(pg.configuration.schema))")
        } else {
            throw ValidationError("--store: sqlite or a postgres:// URL")
        }
        // Media blobs (Docs/spec/relay.md §19): in data-dir/media with the capability key of
        // data-dir/media.key (nodes serving one media folder share both), or, by default with
        // PostgreSQL, in the database with a capability key kept there (every node serves
        // every node's media and honours every node's grants).
        let mediaSetting = settings.string(self.mediaStore, "media-store", postgres == nil ? "disk" : "postgres")
        switch mediaSetting {
        case "disk":
            configuration.media = try MediaService(store: DiskMediaStore(folder: URL(fileURLWithPath: dataDir).appendingPathComponent("media")),
                                                   capabilityKey: RelayKeyFiles.mediaKey(in: dataDir))
        case "postgres":
            guard let (pg, _) = postgres else { throw ValidationError("--media-store postgres needs a postgres:// --store") }
            let media = PostgresMediaStore(store: pg)
            configuration.media = try MediaService(store: media, capabilityKey: try await media.sharedCapabilityKey())
            say("media: postgresql")
        default:
            throw ValidationError("--media-store: disk or postgres")
        }
        // Presence (last seen, privacy) stays per node in the data dir, also with PostgreSQL
        // (Docs/architecture.md §5b: presence is not yet shared between nodes).
        let presence = try SQLitePresenceStore(path: URL(fileURLWithPath: dataDir).appendingPathComponent("presence.sqlite").path)
        let relay = Relay(store: relayStore, identity: identity, configuration: configuration, logger: logger, presenceStore: presence)
        let listener = postgres.map { _, cluster in Task { await cluster.run(relay: relay) } }
        let app = RelayServer.application(relay: relay, host: host, port: port, registry: registry, logger: logger) { bound in
            say("listening on \(host):\(bound)")
        }
        try await RelayServer.serviceGroup(application: app, relay: relay, logger: logger).run()
        listener?.cancel()
        await listener?.value
        await postgres?.0.shutdown()
        logger.info("stopped")
    }
}

struct Keygen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the trust root (if absent) and a new relay key with a certificate signed by it.",
        discussion: """
            Run it again to rotate the relay key: the trust root stays, a new relay key and certificate \
            (key id + 1) replace relay.key and relay.cert; restart the relay. Clients that pinned the old \
            relay key fail IK (close 4000) and fall back to XX, which presents the new certificate.
            """
    )

    @Option(help: "Directory for the key files. Default ./relay-data.") var dataDir: String = "relay-data"
    @Option(help: "Days the relay certificate is valid.") var validityDays: UInt64 = 365

    func run() async throws {
        let identity = try RelayKeyFiles.generate(in: dataDir, validityDays: validityDays)
        say("trust root: \(Hex.encode(identity.trustRoot.rawRepresentation))")
        say("relay key: \(Hex.encode(identity.staticKey.publicKey.rawRepresentation)) (certificate key id \(identity.certificate.keyID))")
    }
}

/// One line to standard output, unbuffered (scripts read the port and the trust root from it).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
