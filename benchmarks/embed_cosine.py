#!/usr/bin/env python3
"""Cosine between two `kd embed` outputs (JSON lines, same inputs in the same order).

Usage: benchmarks/embed_cosine.py REFERENCE.jsonl OTHER.jsonl [more.jsonl ...]
Prints mean and min cosine of each OTHER against REFERENCE (plain Python, no packages):
the accuracy column of the quantization table in /work/notes/quant.md and issue 12.
"""
import json
import math
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line)["embedding"] for line in f if line.strip()]


def cosine(a, b):
    ab = sum(x * y for x, y in zip(a, b))
    return ab / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    reference = load(sys.argv[1])
    for path in sys.argv[2:]:
        other = load(path)
        if len(other) != len(reference):
            sys.exit(f"{path}: {len(other)} embeddings, {sys.argv[1]} has {len(reference)}")
        c = [cosine(a, b) for a, b in zip(reference, other)]
        print(f"{path}: n={len(c)} mean={sum(c) / len(c):.6f} min={min(c):.6f}")


if __name__ == "__main__":
    main()
