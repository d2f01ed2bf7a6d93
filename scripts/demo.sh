#!/usr/bin/env bash
# The README's main job: build kvdex, then walk through the CLI on the embedded
# default store (LMDB): import a real LlamaIndex persist directory, look inside,
# copy it back to docstore.json and show the result is byte-identical.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default --target kvdex_cli >/dev/null

kvdex=build/default/tools/kvdex
source_dir=python/tests/data/llamaindex_persist   # made by real LlamaIndex (tools/golden/)
work=$(mktemp -d "${TMPDIR:-/tmp}/kvdex-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
store="$work/store"   # a bare path: the default lmdb: store

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$kvdex" --version
step "$kvdex" copy "$source_dir/docstore.json" "$store"
step "$kvdex" copy "$source_dir/index_store.json" "$store"
step "$kvdex" collections "$store"
step "$kvdex" stats "$store"
step "$kvdex" verify "$store"
node_id=$("$kvdex" keys "$store" -c docstore/data | head -n 1)
printf '\n\033[1m$ %s\033[0m\n' "$kvdex get $store $node_id -c docstore/data --pretty | head -n 12"
"$kvdex" get "$store" "$node_id" -c docstore/data --pretty | head -n 12
step "$kvdex" copy "$store" "$work/roundtrip/docstore.json" \
  -c docstore/metadata -c docstore/ref_doc_info -c docstore/data
step cmp "$source_dir/docstore.json" "$work/roundtrip/docstore.json"
echo
echo "docstore.json -> LMDB -> docstore.json: byte-identical ($(wc -c < "$source_dir/docstore.json") bytes)"
