#!/usr/bin/env bash
# Side-by-side comparison of Hush with libsignal-protocol-c and libolm on this machine.
#
#   Benchmarks/compare.sh [--scratch-path DIR] [--quick] [hush-compare options...]
#
# Builds (release) hush-harness, libsignal-harness, olm-harness and hush-compare, then runs
# hush-compare, which runs the three harnesses interleaved for several rounds and prints one
# Markdown table on stdout (progress on stderr). --quick: 2 rounds of shorter runs (< 3 min after
# building). Other options (--rounds N, --ops a,b, --json FILE) go to hush-compare; see
# Benchmarks/README.md. Needs apt packages libsignal-protocol-c-dev, libolm-dev, libssl-dev.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

build=(swift build -c release)
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --scratch-path) build+=(--scratch-path "$2"); shift 2 ;;
        --scratch-path=*) build+=(--scratch-path "${1#*=}"); shift ;;
        *) args+=("$1"); shift ;;
    esac
done

for package in libsignal-protocol-c olm libcrypto; do
    if ! pkg-config --exists "$package"; then
        echo "compare.sh: pkg-config does not know '$package';" \
            "install: apt-get install libsignal-protocol-c-dev libolm-dev libssl-dev pkg-config" >&2
        exit 1
    fi
done

products=(libsignal-harness olm-harness hush-compare)
if grep -q 'name: "hush-harness"' Package.swift; then
    products=(hush-harness "${products[@]}")
else
    echo "compare.sh: Package.swift has no hush-harness target; the Hush columns will be empty" >&2
fi
for product in "${products[@]}"; do
    echo "compare.sh: building $product" >&2
    "${build[@]}" --product "$product" >&2
done

bin="$("${build[@]}" --show-bin-path)"
exec "$bin/hush-compare" "${args[@]+"${args[@]}"}"
