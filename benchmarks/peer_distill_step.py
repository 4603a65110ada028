#!/usr/bin/env python3
"""Peer distillation-step benchmark: one step of a 3-layer student learning from cached
teacher signals in PyTorch eager, optionally side by side with `kd bench distill-step`.

One step, as both sides define it: zero the gradients, student forward (train mode, the
config's dropout) returning its hidden states, loss = KL(teacher ‖ student) at temperature
T (scaled by T²) + Σ_m MSE(student hidden m, teacher hidden g(m)) over the mapped layers,
backward, clip the global gradient norm to 1.0, one AdamW update. The teacher's logits and
hidden states are computed once before timing, as a soft-label cache provides them.

  torch  HF transformers BertForSequenceClassification from --model-dir (teacher, eval mode)
         and a student with its first `--student-layers` config layers, initialized from the
         teacher's layers g(m)-1 (every other layer: 1, 3, 5 for 3 of 6), embeddings copied;
         fp32, attn_implementation="eager"; torch.optim.AdamW(lr 5e-5, weight_decay 0.01)
         with no decay on biases and LayerNorm weights; torch.set_num_threads(t).
  kd     `KD bench distill-step --teacher M --student S --batch-size B --seq L --threads T
         --warmup W --iters N --json` as a subprocess (only with --kd).

Inputs: random token ids (fixed seed, [CLS] ... [SEP], every position valid); no gold
labels (soft and hidden losses only). The backends take turns (--rounds, who goes first
alternates) so both see the same drift of a shared host; median and p90 ms per step are
medians over rounds, kd/PyTorch the median of the rounds' ratios.

  .venv-ref/bin/python benchmarks/peer_distill_step.py --model-dir .cache/minilm-l6 \
      --batch 32 --seq 128 --threads 2 \
      [--kd .build/release/kd --kd-model teachers/minilm-l6/teacher.h5 \
       --kd-student students/distil-l3-h384.json --out FILE.md]
"""
from __future__ import annotations

import argparse
import copy
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from transformers import BertForSequenceClassification  # noqa: E402
from peer_common import (IDLE_LOAD, in_turns, load_average, log, machine_info, run_kd_step_bench,  # noqa: E402
                         rounds_line, summarize, time_steps)

ROOT = Path(__file__).resolve().parent.parent
INPUT_SEED = 1234
LEARNING_RATE, WEIGHT_DECAY, CLIP_NORM, TEMPERATURE = 5e-5, 0.01, 1.0, 2.0


def torch_round(model_dir: Path, batch: int, seq: int, threads: int, labels: int, layers: int,
                warmup: int, iters: int):
    """Builds teacher signals, student and optimizer once; returns a function that runs one
    round (warm-up + timed steps, continuing the same run) and returns its result."""
    torch.set_num_threads(threads)
    torch.manual_seed(INPUT_SEED)
    teacher = BertForSequenceClassification.from_pretrained(
        model_dir, num_labels=labels, attn_implementation="eager", dtype=torch.float32).eval()
    n = teacher.config.num_hidden_layers
    mapped = [round(m * n / layers) for m in range(1, layers + 1)]  # g(m) = m·N/M
    scfg = copy.deepcopy(teacher.config)
    scfg.num_hidden_layers = layers
    student = BertForSequenceClassification(scfg)
    student.bert.embeddings.load_state_dict(teacher.bert.embeddings.state_dict())
    for m, g in enumerate(mapped):
        student.bert.encoder.layer[m].load_state_dict(teacher.bert.encoder.layer[g - 1].state_dict())
    student.train()
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for k, p in student.named_parameters() if not k.endswith(no_decay)], "weight_decay": WEIGHT_DECAY},
        {"params": [p for k, p in student.named_parameters() if k.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=LEARNING_RATE)
    rng = np.random.default_rng(INPUT_SEED)
    ids = rng.integers(1000, teacher.config.vocab_size, size=(batch, seq), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    feed = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.ones(batch, seq, dtype=torch.long),
            "token_type_ids": torch.zeros(batch, seq, dtype=torch.long)}
    with torch.no_grad():
        t_out = teacher(**feed, output_hidden_states=True)
    t_logits = t_out.logits
    t_hidden = [t_out.hidden_states[g] for g in mapped]
    losses: list[float] = []

    def step():
        optimizer.zero_grad(set_to_none=True)
        out = student(**feed, output_hidden_states=True)
        T = TEMPERATURE
        loss = F.kl_div(F.log_softmax(out.logits / T, -1), F.softmax(t_logits / T, -1),
                        reduction="batchmean") * T * T
        for m in range(layers):
            loss = loss + F.mse_loss(out.hidden_states[m + 1], t_hidden[m])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), CLIP_NORM)
        optimizer.step()
        losses.append(loss.item())

    def run() -> dict:
        losses.clear()
        times = time_steps(step, warmup, iters)
        r = {"backend": "torch-eager", "batch": batch, "seq": seq, "threads": threads, "student_layers": layers,
             "teacher_layers_mapped": mapped, **summarize(times, batch, warmup),
             "loss_first": losses[0], "loss_last": losses[-1]}
        log(f"  torch-eager: median {r['median_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms ({r['iters']} steps); "
            f"loss {losses[0]:.4f} -> {losses[-1]:.4f}; student layers from teacher layers {mapped}")
        return r
    return run


def bench_kd(kd: Path, kd_model: str, kd_student: str, batch: int, seq: int, threads: int, labels: int,
             warmup: int, iters: int) -> dict | None:
    return run_kd_step_bench(kd, ["distill-step", "--teacher", kd_model, "--student", kd_student,
                                  "--batch-size", str(batch), "--seq", str(seq), "--threads", str(threads),
                                  "--labels", str(labels), "--losses", "soft_ce=1,hidden_mse=1",
                                  "--temperature", str(TEMPERATURE), "--warmup", str(warmup),
                                  "--iters", str(iters)], batch, seq, threads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=ROOT / ".cache/minilm-l6")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--labels", type=int, default=3)
    ap.add_argument("--student-layers", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3, help="the backends take turns this many times")
    ap.add_argument("--backends", default="torch,kd", help="subset of torch,kd")
    ap.add_argument("--kd", type=Path, help="path to the kd binary")
    ap.add_argument("--kd-model", default="teachers/minilm-l6/teacher.h5")
    ap.add_argument("--kd-student", default="students/distil-l3-h384.json")
    ap.add_argument("--out", type=Path, help="write the markdown report here")
    args = ap.parse_args()
    if not (args.model_dir / "model.safetensors").exists():
        sys.exit(f"no model at {args.model_dir}/model.safetensors — run scripts/fetch-teacher.sh")
    if args.warmup < 0 or args.iters < 1 or args.rounds < 1:
        sys.exit("--warmup must be >= 0, --iters and --rounds >= 1")

    backends = set(args.backends.split(","))
    info = machine_info(torch=torch.__version__, transformers=transformers.__version__)
    busy = info["load_at_start"] is not None and info["load_at_start"] > IDLE_LOAD
    if busy:
        log(f"warning: load average {info['load_at_start']} at start — numbers will be inflated")
    shape = (args.batch, args.seq, args.threads, args.labels)
    torch_r, kd_r, ratio = in_turns(
        args.rounds,
        torch_round(args.model_dir, *shape, args.student_layers, args.warmup, args.iters)
        if "torch" in backends else None,
        (lambda: bench_kd(args.kd, args.kd_model, args.kd_student, *shape, args.warmup, args.iters))
        if "kd" in backends and args.kd else None)
    info["load_at_end"] = load_average()
    ratio = f"{ratio:.2f}×" if ratio is not None else "—"

    def ms(r, k):
        return f"{r[k]:.1f}" if r else "—"

    report = "\n".join([
        "| config | kd median ms | kd p90 ms | PyTorch median ms | PyTorch p90 ms | kd/PyTorch |",
        "|---|---:|---:|---:|---:|---:|",
        f"| {args.student_layers}-layer student, batch {args.batch}, seq {args.seq}, {args.threads} thr | "
        f"{ms(kd_r, 'median_ms')} | {ms(kd_r, 'p90_ms')} | {ms(torch_r, 'median_ms')} | {ms(torch_r, 'p90_ms')} | {ratio} |",
        "", rounds_line(torch_r, kd_r)])
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            f"# Peer distillation step: {args.student_layers}-layer student of {args.model_dir.name}\n\n"
            f"- date: {info['date']}\n- CPU: {info['cpu']}, {info['cores']} cores\n"
            f"- versions: Python {info['python']}, torch {info['torch']}, transformers {info['transformers']}\n"
            f"- load average at start / end: {info['load_at_start']} / {info['load_at_end']}"
            f"{' (machine busy: numbers inflated)' if busy else ''}\n"
            f"- step: student forward (dropout on) + KL at T={TEMPERATURE} (×T²) + hidden-state MSE on every "
            f"student layer, backward, clip {CLIP_NORM}, AdamW (lr {LEARNING_RATE}, wd {WEIGHT_DECAY}); "
            f"teacher signals cached before timing\n"
            f"- {args.rounds} rounds in turns, each {args.warmup} warm-up + {args.iters} timed steps per backend; "
            f"ms are medians over rounds, the ratio the median of the rounds' ratios\n"
            f"- command: `{shlex.join(sys.argv)}`\n\nRatios < 1 mean kd is faster.\n\n{report}\n")


if __name__ == "__main__":
    main()
