// swift-tools-version: 6.1
//
// Hush's benchmarks, kept out of the library's own package so that building Hush stays small.
// Run from this folder:  swift package benchmark
import PackageDescription

let package = Package(
    name: "HushBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        // `name:` fixes the identity: CI clones the project into folders of other names.
        .package(name: "Hush", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // Only for WireCodecBenchmarks (swift-protobuf vs Hush's hand-written wire codec). Exact:
        // Tools/protobuf/generate.sh builds protoc-gen-swift at this same version.
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
    ],
    targets: [
        .executableTarget(
            name: "PrimitiveBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "HushCrypto", package: "Hush"),
            ],
            path: "Benchmarks/PrimitiveBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "WireCodecBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "Hush", package: "Hush"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Benchmarks/WireCodecBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        // HushNoise: the IK handshake's server side against its scalar multiplications, and
        // transport encryption against ChaCha20-Poly1305.
        .executableTarget(
            name: "NoiseBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "HushNoise", package: "Hush"),
                "CFloor",
            ],
            path: "Benchmarks/NoiseBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        // The same comparison interleaved (robust on a shared machine): swift run -c release noise-floor
        .executableTarget(
            name: "noise-floor",
            dependencies: [.product(name: "HushNoise", package: "Hush"), "CFloor"],
            path: "Sources/noise-floor"
        ),
        // Protocol benchmarks: shared operation bodies (Hush and the floor), the package-benchmark
        // target, and hush-harness for the side-by-side comparison (hush-compare).
        .systemLibrary(name: "CFloor", path: "Sources/CFloor"),
        .target(
            name: "ProtocolBodies",
            dependencies: ["CFloor", .product(name: "Hush", package: "Hush"), .product(name: "HushPQ", package: "Hush"),
                           // The floor of PQXDH calls swift-crypto's ML-KEM directly (the root package's pin).
                           .product(name: "Crypto", package: "swift-crypto")],
            path: "Sources/ProtocolBodies"
        ),
        .executableTarget(name: "hush-harness", dependencies: ["ProtocolBodies"], path: "Sources/hush-harness"),
        .executableTarget(
            name: "ProtocolBenchmarks",
            dependencies: [.product(name: "Benchmark", package: "package-benchmark"), "ProtocolBodies"],
            path: "Benchmarks/ProtocolBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        // Side-by-side comparison (compare.sh): C harnesses over Debian's libsignal-protocol-c
        // (crypto provider on OpenSSL libcrypto) and libolm, and hush-compare, which runs them
        // interleaved with hush-harness and prints one table. See Peers/README.md.
        .systemLibrary(
            name: "CLibSignalProtocolC", path: "Peers/CLibSignalProtocolC",
            pkgConfig: "libsignal-protocol-c", providers: [.apt(["libsignal-protocol-c-dev"])]
        ),
        .systemLibrary(name: "COlm", path: "Peers/COlm", pkgConfig: "olm", providers: [.apt(["libolm-dev"])]),
        .target(name: "PeerHarness", path: "Peers/PeerHarness"),
        .executableTarget(
            name: "libsignal-harness",
            dependencies: ["CLibSignalProtocolC", "PeerHarness"],
            path: "Peers/libsignal-harness",
            linkerSettings: [.linkedLibrary("crypto")]
        ),
        .executableTarget(name: "olm-harness", dependencies: ["COlm", "PeerHarness"], path: "Peers/olm-harness"),
        .executableTarget(name: "hush-compare", path: "Sources/hush-compare"),
    ]
)
