#!/usr/bin/env bash
# Smoke test of hush-load (Docs/relay.md): a subprocess relay on loopback, 10 connections,
# 2 s of sends with a share to offline devices that drain at the end. Passes when every
# acknowledged message was delivered exactly once (messages_lost == 0, duplicates == 0).
# Usage: Messenger/Scripts/load-smoke.sh            (CONFIG=release for a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${CONFIG:-debug}
swift build -c "$config" --product hush-load >/dev/null
bin="$(swift build -c "$config" --show-bin-path)/hush-load"
dir=$(mktemp -d)
port=$((21000 + RANDOM % 20000))
"$bin" relay --port "$port" --data-dir "$dir/relay" >"$dir/relay.out" 2>"$dir/relay.err" &
relay=$!
cleanup() {
  kill -TERM "$relay" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$relay" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$relay" 2>/dev/null || true   # graceful shutdown should take < 10 s; do not hang the test on it
  wait "$relay" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 100); do grep -q '^listening' "$dir/relay.out" 2>/dev/null && break; sleep 0.2; done
grep -q '^listening' "$dir/relay.out" || { echo "relay did not start"; cat "$dir/relay.err"; exit 1; }
root=$(awk '/^trust-root/ {print $2}' "$dir/relay.out")
"$bin" run --relay "ws://127.0.0.1:$port" --trust-root "$root" --relay-pid "$relay" \
  --connections 10 --duration 2 --offline-share 0.2 --offline-devices 2 --idle 0 >"$dir/result.json"
python3 - "$dir/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
problems = []
if r["connections"] != 10: problems.append(f"connections {r['connections']} != 10")
if r["messages_sent"] <= 0: problems.append("no message acknowledged")
if r["messages_lost"] != 0: problems.append(f"messages_lost {r['messages_lost']}")
if r["duplicates"] != 0: problems.append(f"duplicates {r['duplicates']}")
if r["messages_delivered"] != r["messages_sent"]: problems.append(f"delivered {r['messages_delivered']} != sent {r['messages_sent']}")
if r["offline"]["queued"] <= 0: problems.append("nothing queued for the offline devices")
print(json.dumps({k: r[k] for k in ("connections", "messages_sent", "messages_delivered", "messages_lost", "duplicates", "msgs_per_s")}))
if problems:
    print("FAIL: " + "; ".join(problems)); sys.exit(1)
print("PASS")
PY
