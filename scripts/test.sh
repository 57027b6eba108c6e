#!/usr/bin/env bash
# Install everything into .venv, lint, and run the whole test suite
# (codecpickle's own tests, both plugins' suites, a quick benchmark smoke).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest tests plugins/codecpickle-brotli/tests plugins/codecpickle-blosc2/tests "$@"
