#!/usr/bin/env bash
# Installs the system packages kvdex builds and tests with (Debian 12), only those
# missing, so it is cheap to run again. Python packages go into a venv elsewhere.
# The Redis and PostgreSQL servers are started by scripts/servers.sh on their own
# ports; the 'main' cluster Debian's postgresql package may create on 5432 is unused.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git
  nlohmann-json3-dev libsimdjson-dev liblmdb-dev lmdb-utils
  libgtest-dev libgmock-dev libcli11-dev
  python3 python3-dev python3-venv clang-format-14 clang libclang-rt-14-dev
  redis-server redis-tools postgresql libhiredis-dev libpq-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "kvdex: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
