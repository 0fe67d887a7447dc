#!/usr/bin/env bash
# Independent relay check: builds hush-relay, then relay_check.py starts it (`hush-relay serve`
# on a free loopback port with a temporary data directory), waits for /health, runs every
# check over real WebSockets and Noise, restarts it (SIGTERM, kill -9, keygen), and stops it
# with SIGTERM, checking that it exits 0 each time. Ends with "N passed, M failed"; exits
# non-zero on any failure.
#
#   Tools/relay-check/run.sh                                  # build (debug) and run
#   HUSH_RELAY_BIN=/path/to/hush-relay Tools/relay-check/run.sh   # use a built binary
#   Tools/relay-check/run.sh -v --keep                        # more detail; keep the data dir and log
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV="$HERE/.venv"
PY="$VENV/bin/python"

# 1. The Python environment (git-ignored): created on first use, re-created if a package is missing.
if ! { [ -x "$PY" ] && "$PY" -c 'import noise, websockets, nacl, kyber_py' 2>/dev/null; }; then
    echo "relay-check: creating $VENV" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" >&2
fi

# 2. The relay binary.
if [ -n "${HUSH_RELAY_BIN:-}" ]; then
    BIN="$HUSH_RELAY_BIN"
else
    swift build --package-path "$ROOT/Messenger" --product hush-relay >&2
    BIN="$(swift build --package-path "$ROOT/Messenger" --show-bin-path)/hush-relay"
fi
[ -x "$BIN" ] || { echo "relay-check: no relay binary at $BIN" >&2; exit 1; }

# 3. The checks (relay_check.py owns the relay process: start, /health, SIGTERM, exit code).
exec "$PY" "$HERE/relay_check.py" --relay-bin "$BIN" "$@"
