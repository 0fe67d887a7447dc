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
    ]
)
