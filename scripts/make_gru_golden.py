#!/usr/bin/env python3
"""Writes Tests/Fixtures/bigru/golden.json: a tiny BiGRU classifier in PyTorch and what it
computes, for Distillery's parity test of the BiGRU student (ModelTests/BiGRUParityTests).

The model is the one Distillery builds: nn.Embedding -> nn.GRU(bidirectional=True,
batch_first=True, num_layers=2) over packed sequences (each sequence its own length; the
reverse direction starts at its last token) -> [max over tokens, mean over tokens] of the
last layer's outputs -> nn.Linear. The fixture holds the weights (state-dict names), the
ids and lengths, the logits, the pooled vector, and the gradients of every parameter and of
the embedded input for the loss sum(logits * seed) with a fixed random seed matrix.
Sizes are awkward on purpose (H = 7, E = 5: tails of every vector loop).

Run: /work/main/.venv-ref/bin/python scripts/make_gru_golden.py
"""
import json
import os

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

torch.manual_seed(20261202)
V, E, H, LAYERS, C = 13, 5, 7, 2, 3
lengths = [6, 2, 5, 1]
B, T = len(lengths), max(lengths)

emb = torch.nn.Embedding(V, E)
gru = torch.nn.GRU(E, H, num_layers=LAYERS, bidirectional=True, batch_first=True)
cls = torch.nn.Linear(4 * H, C)
with torch.no_grad():
    for p in list(gru.parameters()) + list(cls.parameters()):
        p.uniform_(-0.6, 0.6)

ids = torch.randint(1, V, (B, T))
for b, n in enumerate(lengths):
    ids[b, n:] = 0  # padding id 0

x = emb(ids)
x.retain_grad()
packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
out, _ = gru(packed)
out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # zeros past each length
mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).unsqueeze(-1)
mx = out.masked_fill(~mask, float("-inf")).max(dim=1).values
mean = out.sum(dim=1) / torch.tensor(lengths, dtype=out.dtype)[:, None]
pooled = torch.cat([mx, mean], dim=1)
logits = cls(pooled)
seed = torch.empty(B, C).uniform_(-1, 1)
(logits * seed).sum().backward()

def flat(t):
    return [round(float(v), 9) for v in t.detach().reshape(-1).tolist()]

params = {"embeddings.word_embeddings.weight": emb.weight}
params.update({f"gru.{k}": v for k, v in gru.named_parameters()})
params.update({f"classifier.{k}": v for k, v in cls.named_parameters()})
fixture = {
    "about": "made by scripts/make_gru_golden.py with torch " + torch.__version__,
    "sizes": {"vocab": V, "embedding": E, "hidden": H, "layers": LAYERS, "classes": C, "batch": B, "length": T},
    "lengths": lengths,
    "ids": ids.reshape(-1).tolist(),
    "parameters": {k: {"shape": list(v.shape), "data": flat(v)} for k, v in params.items()},
    "outputs": flat(out),
    "pooled": flat(pooled),
    "logits": flat(logits),
    "seed": flat(seed),
    "gradients": {k: flat(v.grad) for k, v in params.items()},
    "embedded_gradient": flat(x.grad),
}
path = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "bigru", "golden.json")
with open(path, "w") as f:
    json.dump(fixture, f, indent=None, separators=(",", ":"))
print(path, os.path.getsize(path), "bytes")
