#!/usr/bin/env python3
"""Peer training-step benchmark: one fine-tuning step of a BERT sequence classifier in
PyTorch eager, optionally side by side with Distillery's `kd bench train-step`.

One step, as both sides define it: zero the gradients, forward with a loss, backward,
clip the global gradient norm to 1.0, one AdamW update. Setup:

  torch  HF transformers BertForSequenceClassification from --model-dir (num_labels
         --labels, fresh head), fp32, attn_implementation="eager", train() mode with the
         config's dropout; torch.optim.AdamW(lr 5e-5, weight_decay 0.01) with HF Trainer's
         groups (no decay on biases and LayerNorm weights, as kd); clip_grad_norm_(1.0);
         torch.set_num_threads(t).
  kd     `KD bench train-step --model M --batch-size B --seq S --threads T --labels L
         --warmup W --iters N --json` as a subprocess (only with --kd; skipped if absent).

Inputs: random token ids (fixed seed, [CLS] ... [SEP], every position valid, length exactly
--seq), random labels. The backends take turns (--rounds, who goes first alternates),
each round warm-up steps then timed steps, so both see the same drift of a shared host;
the median and p90 ms per step are medians over rounds, and kd/PyTorch is the median of
the rounds' ratios. Not measured: data loading, padding, the LR
schedule, evaluation, mixed precision, SDPA attention (kd has no fused attention either).

  .venv-ref/bin/python benchmarks/peer_train_step.py --model-dir .cache/minilm-l6 \
      --batch 32 --seq 128 --threads 2 \
      [--kd .build/release/kd --kd-model teachers/minilm-l6/teacher.h5 --out FILE.md]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import BertForSequenceClassification  # noqa: E402
from peer_common import (IDLE_LOAD, in_turns, load_average, log, machine_info, run_kd_step_bench,  # noqa: E402
                         rounds_line, summarize, time_steps)

ROOT = Path(__file__).resolve().parent.parent
INPUT_SEED = 1234
# `kd finetune`'s defaults, used by `kd bench train-step` too.
LEARNING_RATE, WEIGHT_DECAY, CLIP_NORM = 5e-5, 0.01, 1.0


def torch_round(model_dir: Path, batch: int, seq: int, threads: int, labels: int,
                warmup: int, iters: int):
    """Builds the PyTorch model and optimizer once; returns a function that runs one round
    (warm-up + timed steps, continuing the same training run) and returns its result."""
    torch.set_num_threads(threads)
    torch.manual_seed(INPUT_SEED)
    model = BertForSequenceClassification.from_pretrained(
        model_dir, num_labels=labels, attn_implementation="eager", dtype=torch.float32)
    model.train()
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": WEIGHT_DECAY},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=LEARNING_RATE)
    rng = np.random.default_rng(INPUT_SEED)
    ids = rng.integers(1000, model.config.vocab_size, size=(batch, seq), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP] in the BERT uncased vocab
    feed = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.ones(batch, seq, dtype=torch.long),
            "token_type_ids": torch.zeros(batch, seq, dtype=torch.long),
            "labels": torch.from_numpy(rng.integers(0, labels, size=batch, dtype=np.int64))}
    losses: list[float] = []

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(**feed).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        losses.append(loss.item())

    def run() -> dict:
        losses.clear()
        times = time_steps(step, warmup, iters)
        r = {"backend": "torch-eager", "batch": batch, "seq": seq, "threads": threads,
             **summarize(times, batch, warmup), "loss_first": losses[0], "loss_last": losses[-1]}
        log(f"  torch-eager: median {r['median_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms ({r['iters']} steps); "
            f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
        return r
    return run


def bench_kd(kd: Path, kd_model: str, batch: int, seq: int, threads: int, labels: int,
             warmup: int, iters: int, extra: list[str]) -> dict | None:
    return run_kd_step_bench(kd, ["train-step", "--model", kd_model, "--batch-size", str(batch), "--seq", str(seq),
                                  "--threads", str(threads), "--labels", str(labels), "--warmup", str(warmup),
                                  "--iters", str(iters), *extra], batch, seq, threads)


def table(torch_r: dict | None, kd_r: dict | None, ratio: float | None, batch: int, seq: int, threads: int) -> str:
    def ms(r, k):
        return f"{r[k]:.1f}" if r else "—"

    ratio = f"{ratio:.2f}×" if ratio is not None else "—"
    return "\n".join([
        "| config | kd median ms | kd p90 ms | PyTorch median ms | PyTorch p90 ms | kd/PyTorch |",
        "|---|---:|---:|---:|---:|---:|",
        f"| batch {batch}, seq {seq}, {threads} thr | {ms(kd_r, 'median_ms')} | {ms(kd_r, 'p90_ms')} | "
        f"{ms(torch_r, 'median_ms')} | {ms(torch_r, 'p90_ms')} | {ratio} |"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=ROOT / ".cache/minilm-l6",
                    help="HF BERT directory (config.json + model.safetensors)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--labels", type=int, default=3, help="classes of the fresh head")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps")
    ap.add_argument("--iters", type=int, default=5, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3, help="the backends take turns this many times")
    ap.add_argument("--backends", default="torch,kd", help="subset of torch,kd")
    ap.add_argument("--kd", type=Path, help="path to the kd binary")
    ap.add_argument("--kd-model", default="teachers/minilm-l6/teacher.h5")
    ap.add_argument("--kd-args", default="", help="extra arguments for `kd bench train-step`")
    ap.add_argument("--json", type=Path, help="write all results as JSON here")
    ap.add_argument("--out", type=Path, help="write the markdown report here")
    args = ap.parse_args()
    if not (args.model_dir / "model.safetensors").exists():
        sys.exit(f"no model at {args.model_dir}/model.safetensors — run scripts/fetch-teacher.sh")
    if args.warmup < 0 or args.iters < 1 or args.rounds < 1:
        sys.exit("--warmup must be >= 0, --iters and --rounds >= 1")

    backends = set(args.backends.split(","))
    info = machine_info(torch=torch.__version__, transformers=transformers.__version__)
    log(f"{info['cpu']}, {info['cores']} cores; torch {info['torch']}, transformers {info['transformers']}")
    busy = info["load_at_start"] is not None and info["load_at_start"] > IDLE_LOAD
    if busy:
        log(f"warning: load average {info['load_at_start']} at start — other work is running; "
            f"numbers will be inflated")
    shape = (args.batch, args.seq, args.threads, args.labels, args.warmup, args.iters)
    torch_r, kd_r, ratio = in_turns(
        args.rounds,
        torch_round(args.model_dir, *shape) if "torch" in backends else None,
        (lambda: bench_kd(args.kd, args.kd_model, *shape, shlex.split(args.kd_args)))
        if "kd" in backends and args.kd else None)
    info["load_at_end"] = load_average()

    report = table(torch_r, kd_r, ratio, args.batch, args.seq, args.threads) + "\n\n" + rounds_line(torch_r, kd_r)
    print(report)
    results = [r for r in (torch_r, kd_r) if r]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"format": "distillery-peer-train-step", "format_version": 1,
                                         "machine": info, "command": shlex.join(sys.argv),
                                         "kd_over_torch": ratio, "results": results}, indent=2) + "\n")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            f"# Peer training step: BERT sequence classifier ({args.model_dir.name})\n\n"
            f"- date: {info['date']}\n- CPU: {info['cpu']}, {info['cores']} cores\n"
            f"- versions: Python {info['python']}, torch {info['torch']}, transformers {info['transformers']}\n"
            f"- load average at start / end: {info['load_at_start']} / {info['load_at_end']}"
            f"{' (machine busy: numbers inflated)' if busy else ''}\n"
            f"- step: zero grads, forward + cross-entropy ({args.labels} labels, dropout on), backward, "
            f"clip 1.0, AdamW (lr {LEARNING_RATE}, wd {WEIGHT_DECAY}); PyTorch eager attention\n"
            f"- inputs: random token ids (seed {INPUT_SEED}), all positions valid; "
            f"{args.rounds} rounds in turns, each {args.warmup} warm-up + {args.iters} timed steps per backend; "
            f"ms are medians over rounds, the ratio the median of the rounds' ratios\n"
            f"- command: `{shlex.join(sys.argv)}`\n\n"
            f"Ratios < 1 mean kd is faster.\n\n{report}\n")


if __name__ == "__main__":
    main()
