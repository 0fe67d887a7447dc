#!/usr/bin/env bash
# Proves that a package depending only on the `Hush` product fetches and builds no server
# dependency (Docs/architecture.md §5): its .build/checkouts must stay empty.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/Consumer/Sources/Consumer"
cat > "$work/Consumer/Package.swift" <<MANIFEST
// swift-tools-version: 6.1
import PackageDescription
let package = Package(
    name: "Consumer",
    dependencies: [.package(name: "Hush", path: "$root")],
    targets: [.executableTarget(name: "Consumer", dependencies: [.product(name: "Hush", package: "Hush")])]
)
MANIFEST
cat > "$work/Consumer/Sources/Consumer/main.swift" <<'SWIFT'
import Hush
let key = try Curve25519.KeyAgreement.PrivateKey()
print(key.publicKey.rawRepresentation.count)
SWIFT
cd "$work/Consumer"
start=$(date +%s)
swift build --product Consumer >/dev/null
end=$(date +%s)
count=$(find .build/checkouts -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
echo "consumer of product Hush: cold build $((end - start)) s, $count packages checked out"
if [ "$count" -ne 0 ]; then
  ls .build/checkouts
  echo "FAIL: a Hush-only consumer checked out dependencies" >&2
  exit 1
fi
