#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds, and runs every
# test: the C++ suite (warnings as errors), again under ASan+UBSan, the concurrency
# tests under TSan, then the Python package's pytest suite against an installed kvdex.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== C++: default build (RelWithDebInfo, -Werror)"
cmake --preset default >/dev/null
cmake --build --preset default
ctest --preset default -j2

echo "== C++: AddressSanitizer + UndefinedBehaviorSanitizer"
cmake --preset asan >/dev/null
cmake --build --preset asan
ctest --preset asan -j2

echo "== C++: ThreadSanitizer (tests labelled 'concurrency')"
cmake --preset tsan >/dev/null
cmake --build --preset tsan
ctest --preset tsan -j2

echo "== Python: pip install . into .venv, then pytest (package and CLI tests)"
scripts/python-env.sh
python_tests=(tests/cli)
if [[ -f pyproject.toml ]]; then python_tests+=(python/tests); fi
KVDEX_CLI="$PWD/build/default/tools/kvdex" .venv/bin/python -m pytest -q "${python_tests[@]}"
