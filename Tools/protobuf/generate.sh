#!/usr/bin/env bash
# Regenerates Benchmarks/Benchmarks/WireCodecBenchmarks/WhisperTextProtocol.pb.swift from
# Tools/protobuf/WhisperTextProtocol.proto.
#
# Needs: Debian's protoc (apt-get install -y protobuf-compiler) and Swift. protoc-gen-swift is
# built here, in release, from apple/swift-protobuf at the same version the benchmark package
# depends on, in its own scratch folder (.build-protoc, git-ignored). The SwiftProtobufPlugin
# build plugin is deliberately not used: it compiles protoc from C++ on every clean build.
set -euo pipefail

version=1.39.0   # keep equal to the swift-protobuf version in Benchmarks/Package.swift

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/Benchmarks/Benchmarks/WireCodecBenchmarks"
scratch="$root/.build-protoc"
src="$scratch/swift-protobuf-$version"

command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler" >&2; exit 1; }

if [ ! -f "$src/Package.swift" ]; then
    rm -rf "$src"
    mkdir -p "$scratch"
    git -c advice.detachedHead=false clone --quiet --branch "$version" \
        https://github.com/apple/swift-protobuf "$src"
fi

swift build -c release --product protoc-gen-swift \
    --package-path "$src" --scratch-path "$scratch/build"
plugin="$(swift build -c release --product protoc-gen-swift \
    --package-path "$src" --scratch-path "$scratch/build" --show-bin-path)/protoc-gen-swift"

echo "protoc: $(protoc --version); protoc-gen-swift: $("$plugin" --version)"
mkdir -p "$out"
protoc --plugin=protoc-gen-swift="$plugin" \
    --proto_path="$here" \
    --swift_opt=Visibility=Internal \
    --swift_out="$out" \
    "$here/WhisperTextProtocol.proto"
echo "wrote ${out#"$root"/}/WhisperTextProtocol.pb.swift"
