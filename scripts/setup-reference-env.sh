#!/usr/bin/env bash
# Creates the git-ignored Python reference environment .venv-ref/ that the golden-output
# script (scripts/make_model_golden.py) and the peer latency benchmark
# (benchmarks/peer_latency.py) run in: PyTorch (CPU build), HF transformers, ONNX Runtime,
# sentence-transformers, gguf and onnx-ir (ONNX Runtime's int4 quantizer imports it).
# llama-cpp-python (a 12-40 min compile) is left out; the checks that need it skip without it.
# Idempotent: does nothing when .venv-ref already holds exactly the pinned versions.
# The CPU-only torch wheel (a "+cpu" local version) is taken from /opt/wheels when that
# folder exists (pip's find-links on the project machines); everything else from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-ref
PINS=(
  "torch==2.13.0+cpu"
  "transformers==5.24.0"
  "tokenizers==0.23.3"
  "safetensors==0.8.0"
  "onnxruntime==1.32.0"
  "onnx==1.23.2"
  "h5py==3.16.0"
  "numpy==2.4.6"
  "sentence-transformers==6.3.0"
  "gguf==0.19.0"
  "onnx-ir==1.1.0"
)

pins_satisfied() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" - "${PINS[@]}" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if have != want:
        sys.exit(1)
PY
}

if pins_satisfied; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
FIND_LINKS=()
[ -d /opt/wheels ] && FIND_LINKS=(--find-links /opt/wheels)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${FIND_LINKS[@]}" "${PINS[@]}" || {
  echo "setup-reference-env: pip could not install ${PINS[*]} into $VENV." >&2
  echo "  torch==2.13.0+cpu comes from a local wheel folder (/opt/wheels); without it, edit the" >&2
  echo "  torch pin in $0 to a build pip can reach." >&2
  exit 1
}
pins_satisfied || { echo "setup-reference-env: $VENV still lacks a pinned version after install" >&2; exit 1; }
echo "setup-reference-env: $VENV ready ($("$VENV/bin/python" --version), ${PINS[*]})"
