#!/bin/bash
# Regenerate the joblib golden files: one throwaway venv per joblib version
# (Python 3.11; joblib < 1.4 needs numpy < 2, which removed ndarray.tostring).
# Usage: bash tests/data/joblib/make_all_versions.sh [output dir]
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
for v in 0.10.3 0.11 0.12.5 0.13.2 0.14.1 0.16.0 0.17.0 1.0.1 1.1.1 1.2.0 1.3.2 1.4.2 1.5.2; do
  venv=/tmp/joblib-golden-$v
  [ -d "$venv" ] || python3 -m venv "$venv"
  case $v in 1.4.*|1.5.*) numpy=numpy;; *) numpy="numpy<2";; esac
  if ! "$venv/bin/pip" install -q "joblib==$v" "$numpy" lz4; then
    echo "joblib $v: install failed"; continue
  fi
  "$venv/bin/python" -W ignore "$here/make_joblib_golden.py" "$out"
done
