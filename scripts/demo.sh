#!/usr/bin/env bash
# Install everything into .venv and run the end-to-end demonstration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/python examples/quickstart.py "$@"
