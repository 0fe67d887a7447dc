#!/usr/bin/env bash
# Builds one Messenger fuzz target with libFuzzer + AddressSanitizer and runs it.
#   Messenger/Fuzz/run.sh FuzzStanza 600
#   Messenger/Fuzz/run.sh FuzzRelayHandshake 600
#   Messenger/Fuzz/run.sh FuzzKyberPreKeyRecord 600
#   Messenger/Fuzz/run.sh FuzzClientContent 600
#   Messenger/Fuzz/run.sh FuzzClientStore 600
#   Messenger/Fuzz/run.sh FuzzMediaPointer 600
#   Messenger/Fuzz/run.sh FuzzMediaBlob 600
#   Messenger/Fuzz/run.sh FuzzBackup 600
#   Messenger/Fuzz/run.sh FuzzLink 600
set -euo pipefail
cd "$(dirname "$0")"
target="${1:?target: FuzzStanza, FuzzRelayHandshake, FuzzKyberPreKeyRecord, FuzzClientContent, FuzzClientStore, FuzzMediaPointer, FuzzMediaBlob, FuzzBackup or FuzzLink}"
seconds="${2:-60}"
swift build -c release --product "$target" -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
bin="$(swift build -c release --show-bin-path)/$target"
mkdir -p "corpus/$target" ".findings/$target"
"$bin" -max_total_time="$seconds" -max_len=70000 -artifact_prefix=".findings/$target/" ".findings/$target" "corpus/$target"
