// swift-tools-version: 6.1
//
// Hush — the Signal protocol in Swift, over libsodium and OpenSSL's libcrypto.
//
// Layers (see Docs/architecture.md):
//   CSodium, CCrypto      system-library bindings (module maps + shim headers)
//   HushCrypto            primitives with a CryptoKit-like API; no protocol logic
//   Hush                  the protocol layer (re-exports HushCrypto)
//   HushNoise             the Noise protocol framework (XX, IK, NK) on HushCrypto; Hush does not depend on it
//   HushConformance       test-vector runner (Wycheproof, Hush KATs, Signal transcripts)
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
        .library(name: "HushConformance", targets: ["HushConformance"]),
        .executable(name: "hush-conformance", targets: ["hush-conformance"]),
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
        .target(name: "HushConformance", dependencies: ["Hush", "HushNoise"]),
        .executableTarget(name: "hush-conformance", dependencies: ["HushConformance"]),
        // Writes TestVectors/hush-1 (Hush's own suite and envelopes) from fixed seeds.
        .executableTarget(name: "hush-vectors", dependencies: ["Hush", "CSodium", "CCrypto"], path: "Tools/hush-vectors"),
        .testTarget(name: "HushCryptoTests", dependencies: ["HushCrypto"]),
        .testTarget(name: "HushTests", dependencies: ["Hush"]),
        .testTarget(name: "HushNoiseTests", dependencies: ["HushNoise"]),
        .testTarget(name: "HushConformanceTests", dependencies: ["HushConformance"]),
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
