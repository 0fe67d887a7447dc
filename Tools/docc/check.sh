#!/usr/bin/env bash
# Builds Hush's DocC documentation (Sources/Hush/Hush.docc and the symbols' doc comments) with
# swift-docc-plugin, from the separate package in this folder (so that no package importing Hush
# depends on the plugin), and fails on any DocC warning: a broken symbol or article link, an
# unresolved topic, a bad parameter name. CI runs it; so can you:
#
#   Tools/docc/check.sh [--output DIR]     (default DIR: .build-docc/Hush.doccarchive)
#
# Build products go to .build-docc/ at the repository root (git-ignored).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/.build-docc"
output="$work/Hush.doccarchive"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --output) output="$2"; shift 2 ;;
        *) echo "usage: $0 [--output DIR]" >&2; exit 2 ;;
    esac
done
mkdir -p "$work" "$(dirname "$output")"
log="$work/docc.log"

cd "$here"
# --warnings-as-errors is passed through to docc: it exits non-zero on any warning.
if ! swift package --scratch-path "$work/build" \
        --allow-writing-to-directory "$work" --allow-writing-to-directory "$(dirname "$output")" \
        generate-documentation --target Hush --output-path "$output" --warnings-as-errors >"$log" 2>&1; then
    grep -E -A8 "^(warning|error):" "$log" >&2 || tail -40 "$log" >&2
    echo "docc check: FAILED (full log: $log)" >&2
    exit 1
fi
# Belt and braces: a docc that does not honour --warnings-as-errors still fails here.
if grep -qE "^(warning|error):" "$log"; then
    grep -E -A8 "^(warning|error):" "$log" >&2
    echo "docc check: FAILED: DocC reported problems (full log: $log)" >&2
    exit 1
fi
echo "docc check: passed; archive at $output"
