#!/usr/bin/env bash
# Creates .venv (once), installs the pinned test requirements from PyPI and then
# kvdex itself with `pip install .` (scikit-build-core builds the native module).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r python/requirements-test.txt
if [[ -f pyproject.toml ]]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check .
fi
