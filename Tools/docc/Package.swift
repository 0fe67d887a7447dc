// swift-tools-version: 6.1
//
// Builds Hush's DocC documentation (Sources/Hush/Hush.docc) without making swift-docc-plugin a
// dependency of Hush, or of any package that imports it: this package depends on Hush by path
// and carries the plugin. Run Tools/docc/check.sh (CI), or from this folder:
//   swift package --allow-writing-to-directory ../../.build-docc \
//       generate-documentation --target Hush --output-path ../../.build-docc/Hush.doccarchive
import PackageDescription

let package = Package(
    name: "HushDocumentation",
    dependencies: [
        // `name:` fixes the identity: CI clones the project into folders of other names.
        .package(name: "Hush", path: "../.."),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", exact: "1.5.0"),
    ],
    targets: [
        // SwiftPM wants a target in a package; this one only re-exports Hush.
        .target(name: "HushDocumentation", dependencies: [.product(name: "Hush", package: "Hush")]),
    ]
)
