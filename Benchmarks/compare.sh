#!/usr/bin/env bash
# Side-by-side comparison of Hush with libsignal-protocol-c, libolm and vodozemac on this machine.
#
#   Benchmarks/compare.sh [--scratch-path DIR] [--quick] [hush-compare options...]
#
# Builds (release) hush-harness, libsignal-harness, olm-harness and hush-compare, then runs
# hush-compare, which runs the harnesses interleaved for several rounds and prints one
# Markdown table on stdout (progress on stderr). vodozemac (PyPI, pinned below) is installed into
# a venv of this script's own, Benchmarks/.build-venv (git-ignored; HUSH_VENV overrides), made
# with python3 on the first run; without python3 or PyPI, its column stays empty. --quick: 2 rounds of shorter runs (< 3 min after
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

vodozemac_version=0.10.0
venv="${HUSH_VENV:-$here/.build-venv}"
vodozemac=()
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import vodozemac" 2>/dev/null; then
    echo "compare.sh: installing vodozemac==$vodozemac_version into $venv" >&2
    { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "vodozemac==$vodozemac_version"; } >&2 \
        || echo "compare.sh: could not install vodozemac; its column will be empty" >&2
fi
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import vodozemac" 2>/dev/null; then
    vodozemac=(--vodozemac "$venv/bin/python" "$here/Peers/vodozemac-harness/harness.py")
fi

bin="$("${build[@]}" --show-bin-path)"
exec "$bin/hush-compare" "${vodozemac[@]+"${vodozemac[@]}"}" "${args[@]+"${args[@]}"}"
