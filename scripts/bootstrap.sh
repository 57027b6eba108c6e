#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install
# codecpickle, both plugin packages and everything the tests, examples and
# benchmarks use.  Needs only python3 (>= 3.11) with pip and venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -e ".[test,docs,cli]" \
    -e plugins/codecpickle-brotli \
    -e plugins/codecpickle-blosc2
