#!/usr/bin/env python3
"""Writes the PyTorch "debug state" the Swift training engine is checked against.

Output: Tests/Fixtures/tiny-bert/training-golden.h5, made from the committed tiny
BertForSequenceClassification (config.json + model.safetensors in the same folder) with
HF transformers, fp32, eager attention, one thread, model.train() with every dropout
probability set to 0 (so the pass is deterministic and Distillery's own dropout RNG
does not have to reproduce torch's).

Three cases, each a group:
  base    the fixture as committed (2 layers x 4 heads, FFN 64).
  mean    the same encoder and classifier with a mean-pooling head instead of the pooler
          (Distillery's `distillery_classifier_pooling: "mean"`): logits =
          classifier(sum_t mask_t h_t / sum_t mask_t) over the last hidden states; HF has no
          such class, so it is `MeanPooledClassifier` below around the fixture's BertModel.
  pruned  the same weights with heads and FFN neurons removed per layer (layer 0 keeps
          heads 0,2,3 and 48 neurons, layer 1 heads 1,3 and 40 neurons), the shapes
          Distillery's config keys `distillery_layer_heads` and
          `distillery_layer_intermediate_sizes` describe. Its initial parameters are
          stored under `pruned/parameters/<name>` (the safetensors holds the full model).

Each group holds the batch (input_ids, token_type_ids, attention_mask, labels [B]), the
logits and loss of the first forward, `gradients/<name>` for EVERY parameter (canonical
HF names without the `bert.` prefix) before clipping, then 5 optimizer steps of
torch.optim.AdamW (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01 on all but
biases and LayerNorm weights) with clip_grad_norm_(max_norm=1.0) and HF
get_linear_schedule_with_warmup(warmup 2, total 5): `losses` [5] (the loss before each
step), `grad_norms` [5] (the norm clip_grad_norm_ returned), `learning_rates` [5],
`final_loss` (after the 5th step). `base` also holds `final_parameters/<name>`.

The batch: 4 sequences padded to 10 — one full length with a [PAD] id (0) at a real
position (nn.Embedding's padding_idx must give word row 0 no gradient), one segment pair,
one of length 4, one of just [CLS] [SEP].

Run with the reference venv:  .venv-ref/bin/python scripts/make_training_golden.py
"""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import BertForSequenceClassification, get_linear_schedule_with_warmup  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "Tests/Fixtures/tiny-bert"
OUT = FIXTURE / "training-golden.h5"
FORMAT = "distillery-training-golden"
FORMAT_VERSION = 1

LR, BETAS, EPS, WEIGHT_DECAY, MAX_NORM = 1e-3, (0.9, 0.999), 1e-8, 0.01, 1.0
WARMUP, TOTAL_STEPS = 2, 5
PRUNED_HEADS = {0: [0, 2, 3], 1: [1, 3]}        # heads kept per layer
PRUNED_NEURONS = {0: 48, 1: 40}                 # FFN neurons kept per layer
PRUNE_SEED = 7


def batch() -> dict[str, torch.Tensor]:
    T = 10
    rows = [
        ([2, 17, 23, 0, 41, 56, 60, 72, 88, 3], [0] * 10),          # full, [PAD] id at a real position
        ([2, 5, 6, 7, 3, 30, 31, 3], [0] * 5 + [1] * 3),              # segment pair
        ([2, 44, 45, 3], [0] * 4),
        ([2, 3], [0, 0]),                                             # [CLS] [SEP] only
    ]
    ids, types, mask = [], [], []
    for tokens, tt in rows:
        pad = T - len(tokens)
        ids.append(tokens + [0] * pad)
        types.append(tt + [0] * pad)
        mask.append([1] * len(tokens) + [0] * pad)
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "token_type_ids": torch.tensor(types, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
        "labels": torch.tensor([2, 0, 1, 2], dtype=torch.long),
    }


def load_model() -> BertForSequenceClassification:
    model = BertForSequenceClassification.from_pretrained(
        FIXTURE, attn_implementation="eager", hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    model.float().train()
    return model


def prune(model: BertForSequenceClassification) -> None:
    """Keeps PRUNED_HEADS and a seeded subset of PRUNED_NEURONS in each layer, in place."""
    gen = torch.Generator().manual_seed(PRUNE_SEED)
    d = model.config.hidden_size // model.config.num_attention_heads
    with torch.no_grad():
        for l, layer in enumerate(model.bert.encoder.layer):
            cols = torch.tensor([h * d + i for h in PRUNED_HEADS[l] for i in range(d)])
            sa = layer.attention.self
            for name in ("query", "key", "value"):
                old = getattr(sa, name)
                new = torch.nn.Linear(old.in_features, len(cols))
                new.weight.copy_(old.weight[cols])
                new.bias.copy_(old.bias[cols])
                setattr(sa, name, new)
            sa.num_attention_heads = len(PRUNED_HEADS[l])
            sa.all_head_size = len(cols)
            out = layer.attention.output.dense
            new = torch.nn.Linear(len(cols), out.out_features)
            new.weight.copy_(out.weight[:, cols])
            new.bias.copy_(out.bias)
            layer.attention.output.dense = new
            keep = torch.randperm(layer.intermediate.dense.out_features, generator=gen)[:PRUNED_NEURONS[l]].sort().values
            inter = layer.intermediate.dense
            new = torch.nn.Linear(inter.in_features, len(keep))
            new.weight.copy_(inter.weight[keep])
            new.bias.copy_(inter.bias[keep])
            layer.intermediate.dense = new
            out2 = layer.output.dense
            new = torch.nn.Linear(len(keep), out2.out_features)
            new.weight.copy_(out2.weight[:, keep])
            new.bias.copy_(out2.bias)
            layer.output.dense = new
    model.train()


class MeanPooledClassifier(torch.nn.Module):
    """The fixture's encoder (pooler dropped) and classifier on the masked mean."""

    def __init__(self, model: BertForSequenceClassification) -> None:
        super().__init__()
        self.bert = model.bert
        self.bert.pooler = None
        self.classifier = model.classifier

    def forward(self, input_ids, token_type_ids, attention_mask, labels):
        states = self.bert(input_ids=input_ids, token_type_ids=token_type_ids,
                           attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)
        logits = self.classifier(pooled)
        return SimpleNamespace(logits=logits, loss=torch.nn.functional.cross_entropy(logits, labels))


def canonical(name: str) -> str:
    return name[len("bert."):] if name.startswith("bert.") else name


def decays(name: str) -> bool:
    return not (name.endswith(".bias") or name.endswith("LayerNorm.weight"))


def run_case(g: h5py.Group, model: torch.nn.Module, inputs: dict, store_initial: bool,
             store_final: bool) -> None:
    for k, v in inputs.items():
        g.create_dataset(k, data=v.numpy().astype(np.int64))
    named = list(model.named_parameters())
    if store_initial:
        for n, p in named:
            g.create_dataset(f"parameters/{canonical(n)}", data=p.detach().numpy().astype(np.float32))
    groups = [
        {"params": [p for n, p in named if decays(canonical(n))], "weight_decay": WEIGHT_DECAY},
        {"params": [p for n, p in named if not decays(canonical(n))], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=WARMUP, num_training_steps=TOTAL_STEPS)
    losses, norms, rates = [], [], []
    for step in range(TOTAL_STEPS):
        opt.zero_grad(set_to_none=True)
        out = model(**inputs)
        out.loss.backward()
        if step == 0:
            g.create_dataset("logits", data=out.logits.detach().numpy().astype(np.float32))
            g.create_dataset("loss", data=np.float64(out.loss.item()))
            for n, p in named:
                g.create_dataset(f"gradients/{canonical(n)}", data=p.grad.numpy().astype(np.float32))
        losses.append(out.loss.item())
        rates.append(opt.param_groups[0]["lr"])
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM).item())
        opt.step()
        sched.step()
    with torch.no_grad():
        final = model(**inputs).loss.item()
    g.create_dataset("losses", data=np.array(losses, dtype=np.float64))
    g.create_dataset("grad_norms", data=np.array(norms, dtype=np.float64))
    g.create_dataset("learning_rates", data=np.array(rates, dtype=np.float64))
    g.create_dataset("final_loss", data=np.float64(final))
    if store_final:
        for n, p in named:
            g.create_dataset(f"final_parameters/{canonical(n)}", data=p.detach().numpy().astype(np.float32))
    print(f"{g.name}: losses {losses} -> {final}; grad norms {norms}; lrs {rates}")


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    inputs = batch()
    with h5py.File(OUT, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["generator"] = (f"scripts/make_training_golden.py (torch {torch.__version__}, "
                                f"transformers {transformers.__version__}, h5py {h5py.__version__})")
        f.attrs["optimizer"] = (f"AdamW lr={LR} betas={BETAS} eps={EPS} weight_decay={WEIGHT_DECAY} "
                                f"(none on *.bias, *LayerNorm.weight); clip_grad_norm_ {MAX_NORM}; "
                                f"linear warmup {WARMUP} of {TOTAL_STEPS} steps")
        f.attrs["pruned_heads"] = str(PRUNED_HEADS)
        f.attrs["pruned_layer_heads"] = np.array([len(PRUNED_HEADS[l]) for l in sorted(PRUNED_HEADS)], dtype=np.int64)
        f.attrs["pruned_layer_intermediate_sizes"] = np.array([PRUNED_NEURONS[l] for l in sorted(PRUNED_NEURONS)], dtype=np.int64)
        run_case(f.create_group("base"), load_model(), inputs, store_initial=False, store_final=True)
        pruned = load_model()
        prune(pruned)
        run_case(f.create_group("pruned"), pruned, inputs, store_initial=True, store_final=False)
        run_case(f.create_group("mean"), MeanPooledClassifier(load_model()).train(), inputs, store_initial=False,
                 store_final=False)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
