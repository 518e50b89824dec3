#!/usr/bin/env bash
# One-command set-up: a virtual environment in .venv holding vaultlens, its models' runtime and
# the test tools. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "vaultlens needs Python 3.11 or newer ($PY is older)" >&2; exit 1; }
"$PY" -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
# torch first and pinned: 2.13.0 is a CPU build that pip finds on this kind of machine; any
# other spec would pull several GB of CUDA wheels. Later specs that 2.13.0 meets add nothing.
.venv/bin/pip install --quiet torch==2.13.0
.venv/bin/pip install --quiet -e '.[dev]'
echo "vaultlens is set up: .venv/bin/vaultlens --help"
