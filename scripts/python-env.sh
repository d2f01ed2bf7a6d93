#!/usr/bin/env bash
# Creates .venv (once), installs the pinned test and benchmark requirements from PyPI
# (one resolve, so they stay consistent) and then kvdex itself with `pip install .`
# (scikit-build-core builds the native module).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r python/requirements-test.txt \
  -r bench/requirements.txt
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r python/requirements-nodeps.txt
if [[ -f pyproject.toml ]]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check .
fi
