#!/usr/bin/env python3
"""Prints the cosine-similarity matrix of `kd embed` output (standard library only)."""
import json
import math
import sys

rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
vecs = [r["embedding"] for r in rows]
def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
print(f"{len(rows)} embeddings of dimension {len(vecs[0])} written to {sys.argv[1]}")
print("nearest neighbour of each sentence (cosine):")
for i, r in enumerate(rows):
    j = max((k for k in range(len(rows)) if k != i), key=lambda k: cos(vecs[i], vecs[k]))
    print(f"  {cos(vecs[i], vecs[j]):.3f}  {r['text'][:48]:48s} -> {rows[j]['text'][:48]}")
