#!/usr/bin/env bash
# Builds the fuzz preset (clang, libFuzzer, ASan+UBSan) and runs each target for
# SECONDS (default 60), seeded from tests/golden/. A crash leaves its input in
# build/fuzz/crashes/<target>/ and fails the script: turn it into a unit test.
#   scripts/fuzz.sh [seconds]
# KVDEX_FUZZ_SEED fixes libFuzzer's seed (CI's smoke run uses 1, so that it explores
# the same inputs every time and never fails by chance); unset, each run differs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

# fuzz_py_decoder embeds CPython and builds nanobind from .venv (python-env.sh).
if ! .venv/bin/python -m nanobind --cmake_dir >/dev/null 2>&1; then scripts/python-env.sh; fi
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

out=build/fuzz
seeds="$out/seeds"
rm -rf "$seeds"
mkdir -p "$seeds/json" "$seeds/record" "$seeds/uri" "$seeds/key"
# Golden persist files (CPython-written, canonical and not, and invalid ones).
find tests/golden -name '*.json' -size -64k -exec cp {} "$seeds/json/" \;
printf '{"collection": "c", "key": "k", "value": {"v": 1}}\n' >"$seeds/record/1"
printf '\xef\xbb\xbf{"key": "k", "value": {"a": [1, 2.5, "x"]}}\r\n' >"$seeds/record/2"
printf 'lmdb:/tmp/x' >"$seeds/uri/1"; printf 'store.json' >"$seeds/uri/2"
printf 'memory:' >"$seeds/uri/3"; printf 'redis://host:1/0' >"$seeds/uri/4"
printf '\x05hellopayload' >"$seeds/key/1"; printf '\xc3abcpayload' >"$seeds/key/2"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run() {
  local target=$1 corpus=$2
  local crashes="$out/crashes/$target" work="$out/corpus/$target"
  mkdir -p "$crashes" "$work"
  echo "== fuzz $target (${seconds}s)"
  "$out/fuzz/$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    ${KVDEX_FUZZ_SEED:+-seed="$KVDEX_FUZZ_SEED"} \
    -rss_limit_mb=2048 -artifact_prefix="$crashes/" -print_final_stats=1 \
    "$work" "$corpus" 2>"$out/$target.log" || {
    tail -40 "$out/$target.log"
    echo "fuzz $target: crash, input in $crashes/" >&2
    return 1
  }
  grep -E "stat::number_of_executed_units|cov:" "$out/$target.log" | tail -1
}
run fuzz_loader "$seeds/json"
run fuzz_canonical "$seeds/json"
run fuzz_record "$seeds/record"
run fuzz_py_decoder "$seeds/json"
run fuzz_store_uri "$seeds/uri"
if [[ -x "$out/fuzz/fuzz_key_codec" ]]; then run fuzz_key_codec "$seeds/key"; fi
