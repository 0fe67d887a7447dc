#!/usr/bin/env bash
# Regenerates Sources/HushTransport/Generated/relay.pb.swift from relay.proto.
# Needs Debian's protoc (apt-get install protobuf-compiler) and protoc-gen-swift from the
# swift-protobuf 1.39.0 this package depends on (built here once, in debug, from the same checkout).
# The output is committed; builds never run protoc.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product protoc-gen-swift
PLUGIN="$(swift build --show-bin-path)/protoc-gen-swift"
mkdir -p Sources/HushTransport/Generated
protoc --version
protoc --plugin=protoc-gen-swift="$PLUGIN" \
  --swift_out=Sources/HushTransport/Generated \
  --swift_opt=Visibility=Public \
  --proto_path=Proto Proto/relay.proto
echo "wrote Sources/HushTransport/Generated/relay.pb.swift"
