import Foundation
import HushRelay
import PostgresNIO

/// Where and how ``PostgresRelayStore`` connects, parsed from a `postgres://` URL.
public struct PostgresStoreConfiguration: Sendable {
    /// Host (TCP) or, when it starts with `/`, a Unix socket directory.
    public var host: String
    /// TCP port (also names the Unix socket file `.s.PGSQL.<port>`).
    public var port: Int
    /// Role.
    public var username: String
    /// Password, if any (never logged).
    public var password: String?
    /// Database name.
    public var database: String
    /// Schema holding the relay's tables (`search_path`); created on first use. Several relays
    /// (or tests) can share one database in different schemas. Default `public`.
    public var schema: String
    /// `true`: TLS required (`sslmode=require`); default off (loopback or a private network).
    public var requireTLS: Bool
    /// Pool size per relay process.
    public var maxConnections: Int
    /// A store call that cannot reach the database retries until this time has passed, then fails
    /// with ``RelayStoreError/unavailable``.
    public var operationTimeout: Duration
    /// How long ``PostgresRelayStore/connect(_:notifyCommits:logger:)`` keeps trying to reach the
    /// database and apply migrations before it fails with ``RelayStoreError/unavailable``
    /// (URL `startup_timeout_ms`, default 60 s). Longer than ``operationTimeout``: a relay started
    /// together with its database, or beside others migrating (migrations take one advisory lock
    /// per database), should wait for it rather than exit.
    public var startupTimeout: Duration
    /// This node's id in NOTIFY payloads (random per process).
    public var nodeID: String

    /// Parses `postgres://user[:password]@host[:port]/database[?schema=…&sslmode=…&pool=…&timeout_ms=…&startup_timeout_ms=…]`.
    /// `host=/path` in the query selects a Unix socket directory.
    public init(url: String) throws(RelayStoreError) {
        guard let c = URLComponents(string: url), c.scheme == "postgres" || c.scheme == "postgresql" else {
            throw .storage("not a postgres:// URL")
        }
        let query = Dictionary((c.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        host = query["host"] ?? c.host ?? "127.0.0.1"
        if host.isEmpty { host = "127.0.0.1" }
        port = c.port ?? 5432
        username = c.user.map { $0.removingPercentEncoding ?? $0 } ?? "postgres"
        password = c.password.map { $0.removingPercentEncoding ?? $0 }
        let path = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        database = path.isEmpty ? username : path
        schema = query["schema"] ?? "public"
        guard schema.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) != nil else {
            throw .storage("schema must be a lower-case SQL identifier")
        }
        requireTLS = query["sslmode"] == "require"
        maxConnections = Int(query["pool"] ?? "") ?? 16
        operationTimeout = .milliseconds(Int(query["timeout_ms"] ?? "") ?? 10_000)
        startupTimeout = .milliseconds(Int(query["startup_timeout_ms"] ?? "") ?? 60_000)
        nodeID = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16).description
    }

    /// The NOTIFY channel for "a message was committed for a device".
    public var wakeChannel: String { schema == "public" ? "hush_wake" : "hush_wake_\(schema)" }
    /// The NOTIFY channel for "a device logged in on a node".
    public var onlineChannel: String { schema == "public" ? "hush_online" : "hush_online_\(schema)" }
    /// The NOTIFY channel for "a provisioning message for an address another node may hold" (spec §22.3).
    public var provisioningChannel: String { schema == "public" ? "hush_provisioning" : "hush_provisioning_\(schema)" }

    var clientConfiguration: PostgresClient.Configuration {
        var config: PostgresClient.Configuration
        if host.hasPrefix("/") {
            config = .init(unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: username, password: password, database: database)
        } else {
            config = .init(host: host, port: port, username: username, password: password, database: database,
                           tls: requireTLS ? .require(.makeClientConfiguration()) : .disable)
        }
        config.options.maximumConnections = maxConnections
        config.options.minimumConnections = 1
        config.options.connectTimeout = .seconds(2)
        config.options.additionalStartupParameters = [("search_path", schema)]
        return config
    }
}
