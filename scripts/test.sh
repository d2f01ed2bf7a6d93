#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds, and runs every
# test: the C++ suite (warnings as errors), again built by clang with its
# thread-safety analysis, again under ASan+UBSan, the concurrency
# tests under TSan, a short libFuzzer run of every fuzz target, then the Python
# package's pytest suite against an installed kvdex.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/check-format.sh

echo "== C++: default build (RelWithDebInfo, -Werror)"
cmake --preset default >/dev/null
cmake --build --preset default
ctest --preset default -j2

echo "== C++: clang (thread-safety analysis, -Werror; library and C++ tests only)"
cmake --preset clang >/dev/null
cmake --build --preset clang
ctest --preset clang -j2

echo "== C++: AddressSanitizer + UndefinedBehaviorSanitizer"
cmake --preset asan >/dev/null
cmake --build --preset asan
ctest --preset asan -j2

echo "== C++: ThreadSanitizer (tests labelled 'concurrency')"
cmake --preset tsan >/dev/null
cmake --build --preset tsan
ctest --preset tsan -j2

echo "== Python: pip install . into .venv"
scripts/python-env.sh

echo "== Fuzzing smoke run: each libFuzzer target for 10 s from its seed corpus (longer: scripts/fuzz.sh 600)"
KVDEX_FUZZ_SEED=1 scripts/fuzz.sh 10

echo "== Benchmark harness at a tiny size (so it cannot rot; the numbers mean nothing)"
.venv/bin/python bench/run.py --nodes 300 --small 3000 --threads 1,2 --out build/bench-smoke >/dev/null
echo "benchmark smoke run: ok"

echo "== Python: pytest (package and CLI tests)"
python_tests=(tests/cli)
if [[ -f pyproject.toml ]]; then python_tests+=(python/tests); fi
KVDEX_CLI="$PWD/build/default/tools/kvdex" .venv/bin/python -m pytest -q "${python_tests[@]}"
