#!/usr/bin/env bash
# The PQXDH part of the independent check: pqxdh_check.py (written from Docs/spec/pqxdh.md)
# replays TestVectors/pqxdh with ML-KEM-1024 from kyber-py. Needs PyPI packages (kyber-py,
# pynacl, cryptography: requirements.txt), so it runs in its own git-ignored venv, created on
# first use (and re-created if a package is missing). Ends "pqxdh: N passed, M failed".
# Then pqxdh_independent.py, a second replay written by a reviewer from the spec alone (without
# reading the Swift code or pqxdh_check.py), ends "pqxdh-independent: N passed, M failed".
# Both must pass; --only-check or --only-independent runs one of them.
# (spec_check.py, for TestVectors/hush-1, needs only Debian's python3-nacl and runs without it.)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV="$HERE/.venv"
PY="$VENV/bin/python"
if ! { [ -x "$PY" ] && "$PY" -c 'import kyber_py, nacl, cryptography' 2>/dev/null; }; then
    echo "spec-check: creating $VENV" >&2
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" >&2
fi
WHICH=both
case "${1:-}" in
    --only-check) WHICH=check; shift ;;
    --only-independent) WHICH=independent; shift ;;
esac
DIR="${1:-$ROOT/TestVectors/pqxdh}"
STATUS=0
if [ "$WHICH" != independent ]; then
    "$PY" "$HERE/pqxdh_check.py" "$DIR" || STATUS=1
fi
if [ "$WHICH" != check ]; then
    "$PY" "$HERE/pqxdh_independent.py" "$DIR" || STATUS=1
fi
exit $STATUS
