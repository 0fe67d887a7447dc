#!/usr/bin/env bash
# Builds one libFuzzer target and runs it on its seed corpus.
#   Fuzz/run.sh FuzzVectorFile 600     # ten minutes
#   Fuzz/run.sh FuzzKeyDecoding 60
# New inputs go to .build-fuzz/corpus-NAME (not committed); crashes to ./crash-*.
set -euo pipefail
name=${1:?usage: Fuzz/run.sh TARGET [SECONDS]}
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
swift build -c release --scratch-path .build-fuzz --product "$name" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
work=".build-fuzz/corpus-$name"
mkdir -p "$work"
exec ".build-fuzz/release/$name" -max_total_time="$seconds" -max_len=65536 "$work" "corpus/$name"
