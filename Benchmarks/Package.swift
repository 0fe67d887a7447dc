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
    ]
)
