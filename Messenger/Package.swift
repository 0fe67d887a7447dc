// swift-tools-version: 6.1
//
// Messenger — the relay (server role) and the transport shared with clients, built on Hush.
//
// Its own package so that a consumer of the `Hush` product never fetches or builds
// SwiftNIO, GRDB or swift-protobuf (SwiftPM checks out every dependency a manifest declares).
// See Docs/architecture.md §"Messenger" and Docs/spec/relay.md.
//
//   HushTransport   stanzas (protobuf), framing, relay certificate, Noise session glue,
//                   a thin client connection; no server dependencies
//   HushRelay       accounts, devices, prekeys, routing, durable offline queue (RelayStore +
//                   SQLite), limits, metrics, the SwiftNIO HTTP/WebSocket server
//   HushClient      the client an app embeds: keys, sessions, relay connection, encrypted
//                   local store, ticks, presence (Docs/client.md)
//   HushRelayPostgres  RelayStore on PostgreSQL (postgres-nio) and the multi-node RelayCluster
//                   over LISTEN/NOTIFY; only hush-relay and the tests depend on it, so a consumer
//                   of the HushRelay library never compiles postgres-nio
//   hush-relay      the executable: serve, keygen
//   HushCLIKit      the `hush` command's parts: home folder, secrets, the chat screen, the demo
//   hush            the messenger command (target HushCLI): init, send, inbox, contacts, verify,
//                   chat, demo (README "Try it")
import PackageDescription

let package = Package(
    name: "Messenger",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "HushTransport", targets: ["HushTransport"]),
        .library(name: "HushRelay", targets: ["HushRelay"]),
        .library(name: "HushRelayPostgres", targets: ["HushRelayPostgres"]),
        .library(name: "RelayStoreConformance", targets: ["RelayStoreConformance"]),
        .library(name: "HushClient", targets: ["HushClient"]),
        .executable(name: "hush-relay", targets: ["hush-relay"]),
        .executable(name: "hush", targets: ["HushCLI"]),
    ],
    dependencies: [
        // The root package. Its name must be given: a path dependency otherwise takes the
        // folder's name as identity, which differs between checkouts.
        .package(name: "Hush", path: ".."),
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", exact: "0.2.0"),
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),
    ],
    targets: [
        .target(
            name: "HushTransport",
            dependencies: [
                .product(name: "Hush", package: "Hush"),
                .product(name: "HushNoise", package: "Hush"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .target(
            name: "HushRelay",
            dependencies: [
                "HushTransport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // The messaging client an app embeds: keys, sessions, the relay connection, the encrypted
        // local store, ticks, presence (Docs/client.md). No server dependencies beyond NIO's
        // WebSocket client.
        .target(
            name: "HushClient",
            dependencies: [
                "HushTransport",
                .product(name: "Hush", package: "Hush"),
                .product(name: "HushPQ", package: "Hush"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        // RelayStore on PostgreSQL and the multi-node cluster (Docs/architecture.md §"PostgreSQL").
        .target(
            name: "HushRelayPostgres",
            dependencies: [
                "HushRelay",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The checks every RelayStore implementation must pass (SQLite and PostgreSQL).
        .target(name: "RelayStoreConformance", dependencies: ["HushRelay"]),
        // What the test targets share: a settable clock and test relay keys.
        .target(name: "HushTestSupport", dependencies: ["HushRelay", "HushTransport", .product(name: "Hush", package: "Hush")]),
        .executableTarget(
            name: "hush-relay",
            dependencies: [
                "HushRelay",
                "HushRelayPostgres",
                .product(name: "Hush", package: "Hush"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The `hush` command's logic, testable without a terminal: the home folder and its
        // secret, message lines with their ticks, the chat screen, the demo (its embedded relay is
        // why this depends on HushRelay; nothing else here does).
        .target(
            name: "HushCLIKit",
            dependencies: [
                "HushClient",
                "HushRelay",
                "HushTransport",
                .product(name: "Hush", package: "Hush"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `hush` (the executable's target has another name than the library `Hush`: one folder on
        // a case-insensitive file system otherwise).
        .executableTarget(
            name: "HushCLI",
            dependencies: [
                "HushCLIKit",
                "HushClient",
                .product(name: "Hush", package: "Hush"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The load generator (Docs/relay.md); not a product, never built by consumers.
        .executableTarget(
            name: "hush-load",
            dependencies: [
                "HushTransport",
                "HushRelay",
                // client-latency / client-restart: two HushClients and the demo's embedded relay.
                "HushClient",
                "HushCLIKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "HushTransportTests",
            dependencies: ["HushTransport", .product(name: "HushNoise", package: "Hush")]
        ),
        .testTarget(
            name: "HushClientTests",
            dependencies: ["HushClient", "HushRelay", "HushTransport", "HushTestSupport", .product(name: "Hush", package: "Hush"),
                           .product(name: "HushPQ", package: "Hush"),
                           // The sealed-sender test reads every row of the relay's database.
                           .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "HushCLITests",
            dependencies: ["HushCLIKit", "HushClient", .product(name: "Hush", package: "Hush")]
        ),
        .testTarget(
            name: "HushRelayTests",
            dependencies: [
                "HushRelay",
                "HushRelayPostgres",
                "HushTransport",
                "RelayStoreConformance",
                "HushTestSupport",
                // TestWebSocket wraps the client's WebSocketConnection (raw-frame hooks only).
                "HushClient",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
    ]
)
