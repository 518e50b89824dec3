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
# torch first and pinned, so that the later specs that 2.13.0 meets add nothing. Which build
# comes depends on the index: from the public PyPI on Linux it is the CUDA build with its
# libraries (several GB); TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu takes the CPU one.
.venv/bin/pip install --quiet torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
.venv/bin/pip install --quiet -e '.[dev]'
echo "vaultlens is set up: .venv/bin/vaultlens --help"
