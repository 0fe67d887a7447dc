#!/usr/bin/env bash
# Proves that a package depending only on the `Hush` product fetches no server dependency and
# builds nothing but Hush's own targets (Docs/architecture.md §5, "Keeping Hush-only consumers
# free of server dependencies"):
#   - no server package is checked out (Hummingbird, SwiftNIO, GRDB, swift-protobuf, …): the
#     only checkouts allowed are swift-crypto and its swift-asn1, which the root manifest
#     declares for the HushPQ product — SwiftPM resolves (clones) every dependency a manifest
#     declares, but builds only those of the products used;
#   - swift-crypto is not BUILT: no object file or module of Crypto, CCryptoBoringSSL,
#     SwiftASN1 or HushPQ.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${HUSH_CONSUMER_DIR:-$(mktemp -d)}"
[ -n "${HUSH_CONSUMER_DIR:-}" ] || trap 'rm -rf "$work"' EXIT
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
checkouts=$(find .build/checkouts -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort | tr '\n' ' ')
echo "consumer of product Hush: cold build $((end - start)) s, checked out: ${checkouts:-nothing}"
fail=0
for name in $checkouts; do
  case "$name" in
    swift-crypto|swift-asn1) ;;
    *) echo "FAIL: a Hush-only consumer checked out $name" >&2; fail=1 ;;
  esac
done
# SwiftPM lays out a build directory (an output file map) for every target of the resolved
# graph; what counts is whether anything was compiled: object files or a module.
built=$(find .build \( -path '*/Crypto.build/*.o' -o -path '*/CCryptoBoringSSL.build/*.o' -o -path '*/CryptoBoringWrapper.build/*.o' \
  -o -path '*/SwiftASN1.build/*.o' -o -path '*/HushPQ.build/*.o' -o -name 'Crypto.swiftmodule' -o -name 'SwiftASN1.swiftmodule' \
  -o -name 'HushPQ.swiftmodule' \) 2>/dev/null | head -5)
if [ -n "$built" ]; then
  echo "FAIL: a Hush-only consumer built swift-crypto, swift-asn1 or HushPQ:" >&2
  echo "$built" >&2
  fail=1
fi
[ "$fail" -eq 0 ] && echo "ok: no server package checked out; swift-crypto, swift-asn1 and HushPQ not built"
exit $fail
