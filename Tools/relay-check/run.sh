#!/usr/bin/env bash
# Builds hush-relay, starts it on a free loopback port with a temporary data directory,
# waits for /health, runs relay_check.py against it, then stops the relay with SIGTERM and
# checks that it exits 0. Prints relay_check.py's lines, ending with "N passed, M failed".
#
#   Tools/relay-check/run.sh                 # build (debug) and run
#   HUSH_RELAY_BIN=/path/hush-relay Tools/relay-check/run.sh   # use a built binary
#   Tools/relay-check/run.sh -v              # extra arguments go to relay_check.py
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV="$HERE/.venv"
PY="$VENV/bin/python"

# 1. The Python environment (git-ignored): created once, re-created if a package is missing.
if ! { [ -x "$PY" ] && "$PY" -c 'import noise, websockets, nacl' 2>/dev/null; }; then
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

# 3. A free loopback port and a temporary data directory.
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WORK=$(mktemp -d "${TMPDIR:-/tmp}/relay-check.XXXXXX")
DATA="$WORK/data"
LOG="$WORK/relay.log"
mkdir -p "$DATA"
RELAY_PID=""
cleanup() {
    if [ -n "$RELAY_PID" ] && kill -0 "$RELAY_PID" 2>/dev/null; then
        kill -KILL "$RELAY_PID" 2>/dev/null || true
    fi
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "relay-check: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# 4. Start the relay (command line: Docs/spec/relay.md, "running the relay").
RELAY_ARGS=(serve --host 127.0.0.1 --port "$PORT" --data "$DATA")
"$BIN" "${RELAY_ARGS[@]}" >"$LOG" 2>&1 &
RELAY_PID=$!

# 5. Wait for /health (at most 30 s).
for _ in $(seq 1 300); do
    if curl -fsS --max-time 1 "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$RELAY_PID" 2>/dev/null; then
        echo "relay-check: the relay exited before it was healthy; its log:" >&2; cat "$LOG" >&2; exit 1
    fi
    sleep 0.1
done
if ! curl -fsS --max-time 1 "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
    echo "relay-check: /health did not answer within 30 s; the relay's log:" >&2; cat "$LOG" >&2; exit 1
fi

# 6. The checks.
set +e
"$PY" "$HERE/relay_check.py" --url "ws://127.0.0.1:$PORT" --health "http://127.0.0.1:$PORT/health" \
    --data "$DATA" --log "$LOG" "$@"
CHECK_RC=$?
set -e

# 7. Stop with SIGTERM: the relay must exit 0 within 20 s.
kill -TERM "$RELAY_PID"
STOP_RC=""
for _ in $(seq 1 200); do
    if ! kill -0 "$RELAY_PID" 2>/dev/null; then
        set +e; wait "$RELAY_PID"; STOP_RC=$?; set -e
        break
    fi
    sleep 0.1
done
RELAY_PID_DONE=$RELAY_PID
if [ -z "$STOP_RC" ]; then
    echo "relay-check: FAIL the relay did not exit within 20 s of SIGTERM" >&2
    CHECK_RC=1
elif [ "$STOP_RC" != 0 ]; then
    echo "relay-check: FAIL the relay exited $STOP_RC after SIGTERM; its log:" >&2; tail -20 "$LOG" >&2
    CHECK_RC=1
else
    echo "relay-check: the relay exited 0 after SIGTERM" >&2
fi
RELAY_PID=""
[ -n "$STOP_RC" ] || kill -KILL "$RELAY_PID_DONE" 2>/dev/null || true
exit "$CHECK_RC"
