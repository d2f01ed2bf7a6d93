#!/usr/bin/env bash
# Fails if any C++ file differs from what clang-format (the repo's .clang-format,
# Google style) would write. Fix with: clang-format-14 -i $(git ls-files '*.cc' '*.h')
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h' '*.inc')
clang-format-14 --dry-run --Werror "${files[@]}"
echo "clang-format: ${#files[@]} files clean"
