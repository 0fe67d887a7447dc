// swift-tools-version: 6.1
//
// libFuzzer targets, one per decoder. Kept out of the library's package: they are built only
// by Fuzz/run.sh with -sanitize=fuzzer,address.
import PackageDescription

let package = Package(
    name: "HushFuzz",
    dependencies: [.package(name: "Hush", path: "..")],
    targets: [
        .executableTarget(name: "FuzzVectorFile", dependencies: [.product(name: "HushConformance", package: "Hush")]),
        .executableTarget(name: "FuzzKeyDecoding", dependencies: [.product(name: "HushCrypto", package: "Hush")]),
        .executableTarget(name: "FuzzSignalMessage", dependencies: [.product(name: "Hush", package: "Hush")]),
        .executableTarget(name: "FuzzSenderKeyMessage", dependencies: [.product(name: "Hush", package: "Hush")]),
        .executableTarget(name: "FuzzSessionRecord", dependencies: [.product(name: "Hush", package: "Hush")]),
        .executableTarget(name: "FuzzSessionDecrypt", dependencies: [.product(name: "Hush", package: "Hush")]),
        .executableTarget(name: "FuzzEnvelope", dependencies: [.product(name: "Hush", package: "Hush")]),
        .executableTarget(name: "FuzzNoise", dependencies: [.product(name: "HushNoise", package: "Hush")]),
        .executableTarget(name: "FuzzPQXDH", dependencies: [.product(name: "HushPQ", package: "Hush")]),
    ]
)
