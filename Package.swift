// swift-tools-version: 6.1
//
// Hush — the Signal protocol in Swift, over libsodium and OpenSSL's libcrypto.
//
// Layers (see Docs/architecture.md):
//   CSodium, CCrypto      system-library bindings (module maps + shim headers)
//   HushCrypto            primitives with a CryptoKit-like API; no protocol logic
//   Hush                  the protocol layer (re-exports HushCrypto)
//   HushNoise             the Noise protocol framework (XX, IK, NK) on HushCrypto; Hush does not depend on it
//   HushPQ                post-quantum session setup: ML-KEM-1024 (swift-crypto), Kyber prekeys, PQXDH;
//                         Hush itself never depends on it (or on swift-crypto)
//   HushConformance       test-vector runner (Wycheproof, Hush KATs, Signal transcripts, PQXDH)
//   hush-conformance      command-line front end of HushConformance
//
// Heavy tooling (benchmarks, fuzzers) lives in its own packages under Benchmarks/ and Fuzz/
// so that building the library stays small.
import PackageDescription

let package = Package(
    name: "Hush",
    products: [
        .library(name: "Hush", targets: ["Hush"]),
        .library(name: "HushCrypto", targets: ["HushCrypto"]),
        .library(name: "HushNoise", targets: ["HushNoise"]),
        .library(name: "HushPQ", targets: ["HushPQ"]),
        .library(name: "HushConformance", targets: ["HushConformance"]),
        .executable(name: "hush-conformance", targets: ["hush-conformance"]),
    ],
    dependencies: [
        // ML-KEM-1024 for HushPQ only. A package that uses just the Hush product resolves (checks
        // out) swift-crypto but never builds it (.ci/check-consumer.sh, Docs/architecture.md §5).
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"]), .brew(["libsodium"])]
        ),
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        .target(name: "HushCrypto", dependencies: ["CSodium", "CCrypto"]),
        .target(name: "Hush", dependencies: ["HushCrypto"]),
        // Noise (revision 34) for the relay's connections; beside Hush, not inside it.
        .target(name: "HushNoise", dependencies: ["HushCrypto"]),
        // PQXDH (Signal's PQXDH specification, revision 3) for both suites, on Hush's SPI.
        .target(name: "HushPQ", dependencies: ["Hush", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "HushConformance", dependencies: ["Hush", "HushNoise", "HushPQ"]),
        .executableTarget(name: "hush-conformance", dependencies: ["HushConformance"]),
        // Writes TestVectors/hush-1 (Hush's own suite and envelopes) from fixed seeds.
        .executableTarget(name: "hush-vectors", dependencies: ["Hush", "CSodium", "CCrypto"], path: "Tools/hush-vectors"),
        // Writes TestVectors/pqxdh (its seeded ML-KEM encapsulation comes from kyber-py: see the tool).
        .executableTarget(name: "hush-pq-vectors", dependencies: ["HushPQ"], path: "Tools/hush-pq-vectors"),
        .testTarget(name: "HushCryptoTests", dependencies: ["HushCrypto"]),
        .testTarget(name: "HushTests", dependencies: ["Hush"]),
        .testTarget(name: "HushNoiseTests", dependencies: ["HushNoise"]),
        .testTarget(name: "HushConformanceTests", dependencies: ["HushConformance"]),
        .testTarget(name: "HushPQTests", dependencies: ["HushPQ"]),
        // Test-only libsignal-protocol-c peer and the Signal transcript generator
        // (Tests/Peers/README.md). Nothing here depends on Hush, and Hush depends on none of it.
        .systemLibrary(
            name: "CLibSignalProtocol",
            path: "Tests/Peers/CLibSignalProtocol",
            pkgConfig: "libsignal-protocol-c",
            providers: [.apt(["libsignal-protocol-c-dev"])]
        ),
        .target(
            name: "CSignalPeer",
            dependencies: ["CLibSignalProtocol"],
            path: "Tests/Peers/CSignalPeer",
            linkerSettings: [.linkedLibrary("crypto")]
        ),
        .target(name: "LibSignalPeer", dependencies: ["CSignalPeer"], path: "Tests/Peers/LibSignalPeer"),
        .executableTarget(
            name: "hush-signal-vectors",
            dependencies: ["LibSignalPeer"],
            path: "Tools/hush-signal-vectors",
            exclude: ["README.md"]
        ),
        .testTarget(name: "SignalPeerTests", dependencies: ["LibSignalPeer"], path: "Tests/Peers/SignalPeerTests"),
        // Live interoperability: Hush against the libsignal-protocol-c peer.
        .testTarget(name: "HushInteropTests", dependencies: ["Hush", "LibSignalPeer"]),
    ]
)
