#!/usr/bin/env bash
# Regenerates TestVectors/xeddsa-libsignal.json from libsignal-protocol-c (see xeddsa_vectors.c).
# Needs: apt-get install -y libsignal-protocol-c-dev libssl-dev
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -Wall -Wextra -o "$tmp/xeddsa_vectors" "$here/xeddsa_vectors.c" $(pkg-config --cflags --libs libsignal-protocol-c libcrypto)
"$tmp/xeddsa_vectors" > "$tmp/out.json"
python3 -m json.tool "$tmp/out.json" > /dev/null
mv "$tmp/out.json" "$root/TestVectors/xeddsa-libsignal.json"
echo "wrote TestVectors/xeddsa-libsignal.json"
