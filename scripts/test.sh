#!/usr/bin/env bash
# The whole test suite: the daemon's (pytest) and the Obsidian plugin's (vitest, including an
# end-to-end run against the real daemon from .venv). Run scripts/setup.sh first.
#   --fast  the quick tier: pytest -m "not slow" and the plugin's unit tests without the daemon run
# Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
e2e=required
if [ "${1:-}" = "--fast" ]; then
  shift
  set -- -m "not slow" "$@"
  e2e=off
fi
set +e
.venv/bin/pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  # pytest's 5 means it collected no test at all: a broken suite, never a pass
  echo "pytest collected no tests: the test suite did not load" >&2
  exit 1
fi
[ "$code" -eq 0 ] || exit "$code"
cd plugin-bridge
[ -d node_modules ] || npm ci --no-audit --no-fund
VAULTLENS_E2E=$e2e npm test
