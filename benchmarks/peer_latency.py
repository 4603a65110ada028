#!/usr/bin/env python3
"""Peer latency benchmark: the fp32 BERT forward pass in PyTorch eager and ONNX Runtime,
optionally side by side with Distillery's own `kd bench latency`.

For every (batch, threads) configuration it times one full encoder forward
(BertModel -> last_hidden_state + pooler_output) on random token ids (fixed seed, every
position valid, sequence length exactly --seq):

  torch-eager / torch-sdpa  HF transformers BertModel, fp32, eval, torch.inference_mode(),
                            torch.set_num_threads(t); both attention implementations are
                            timed and the faster one is reported as "PyTorch".
  ort                       the same model exported once with torch.onnx.export (opset 17,
                            dynamic batch/seq axes) to a git-ignored cache, run by an
                            InferenceSession with intra_op_num_threads=t,
                            inter_op_num_threads=1, ORT_ENABLE_ALL, ORT_SEQUENTIAL.
  kd                        `KD bench latency --model M --batch-size B --seq S --threads T --json`
                            as a subprocess (only with --kd; skipped if the binary is absent).

Backends run one after another (all torch configs, then ORT, then kd) so that no thread
pool of one spins while another is being timed, and take turns: the whole sequence runs
--rounds times, starting each round with the next backend, so all see the same drift of a
shared host's speed. Reported ms are medians over rounds of each round's median (p90,
p99); kd/PyTorch and kd/ORT are medians over rounds of the rounds' ratios. Not measured on purpose: tokenization,
pooling/normalization, int8 paths, and any GPU.

  .venv-ref/bin/python benchmarks/peer_latency.py --model-dir .cache/minilm-l6 \
      --batch 1,32 --seq 128 --threads 1,2 --json out/peer.json \
      [--kd .build/release/kd --kd-model teachers/minilm-l6/teacher.h5 --out benchmarks/peer-latency.md]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import BertModel  # noqa: E402
from peer_common import IDLE_LOAD, combine, log, machine_info, parse_kd_json, summarize  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
INPUT_SEED = 1234
# ORT output vs PyTorch output on a padded check batch. Both are fp32 over 6 post-LN layers
# with differently fused kernels; observed differences are ~1e-5, 1e-3 flags a wrong graph
# (e.g. an attention mask folded into a constant while tracing) without flaking.
ORT_PARITY_TOL = 1e-3
# Auto mode: time each (config, backend) for about this long, within the iteration bounds.
AUTO_SECONDS_PER_RUN = 8.0
AUTO_MIN_ITERS, AUTO_MAX_ITERS = 10, 200
AUTO_WARMUP_SECONDS, AUTO_MIN_WARMUP = 1.0, 2


def int_list(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def make_inputs(batch: int, seq: int, vocab_size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(INPUT_SEED)
    ids = rng.integers(1000, vocab_size, size=(batch, seq), dtype=np.int64)  # skip specials
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP] in the BERT uncased vocab
    return {"input_ids": ids, "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids)}


def time_fn(fn, warmup: int | None, iters: int | None) -> tuple[list[float], int]:
    """Runs fn warmup times (auto: >= AUTO_WARMUP_SECONDS), then iters timed calls (auto:
    about AUTO_SECONDS_PER_RUN). Returns per-call milliseconds and the warmup count."""
    done, start, warm_ms = 0, time.perf_counter(), []
    while True:
        t0 = time.perf_counter_ns()
        fn()
        warm_ms.append((time.perf_counter_ns() - t0) / 1e6)
        done += 1
        if warmup is not None:
            if done >= warmup:
                break
        elif done >= AUTO_MIN_WARMUP and time.perf_counter() - start >= AUTO_WARMUP_SECONDS:
            break
    if iters is None:
        est = float(np.median(warm_ms[-AUTO_MIN_WARMUP:]))
        iters = int(min(AUTO_MAX_ITERS, max(AUTO_MIN_ITERS, AUTO_SECONDS_PER_RUN * 1000 / est)))
    times = []
    for _ in range(iters):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times, done


# ----------------------------------------------------------------------------- PyTorch

def bench_torch(model_dir: Path, configs, seq, warmup, iters) -> list[dict]:
    results = []
    for attn in ("eager", "sdpa"):
        model = BertModel.from_pretrained(model_dir, attn_implementation=attn,
                                          dtype=torch.float32).eval()
        for batch, threads in configs:
            torch.set_num_threads(threads)
            feed = {k: torch.from_numpy(v) for k, v in make_inputs(batch, seq, model.config.vocab_size).items()}

            def run():
                with torch.inference_mode():
                    model(**feed)

            times, w = time_fn(run, warmup, iters)
            r = {"backend": f"torch-{attn}", "batch": batch, "seq": seq, "threads": threads,
                 **summarize(times, batch, w)}
            log(f"  torch-{attn:5s} batch {batch:3d} threads {threads}: median {r['median_ms']:.2f} ms "
                f"p90 {r['p90_ms']:.2f} p99 {r['p99_ms']:.2f} ({r['iters']} iters)")
            results.append(r)
        del model
        gc.collect()
    return results


# ----------------------------------------------------------------------------- ONNX Runtime

class _Encoder(torch.nn.Module):
    """Keyword-only call into BertModel, so tracing binds the three inputs by name."""

    def __init__(self, model: BertModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids)
        return out.last_hidden_state, out.pooler_output


def export_onnx(model_dir: Path, onnx_path: Path) -> Path:
    """Exports once; the sidecar .json records what the cached file was made from."""
    weights = model_dir / "model.safetensors"
    stamp = {"weights_mtime_ns": weights.stat().st_mtime_ns, "weights_size": weights.stat().st_size,
             "torch": torch.__version__, "transformers": transformers.__version__, "opset": 17}
    sidecar = onnx_path.with_suffix(".json")
    if onnx_path.exists() and sidecar.exists() and json.loads(sidecar.read_text()) == stamp:
        return onnx_path
    log(f"exporting ONNX to {onnx_path} ...")
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager", dtype=torch.float32).eval()
    # Trace with a padded mask so the masking arithmetic stays in the graph.
    ex = make_inputs(2, 16, model.config.vocab_size)
    ex["attention_mask"][1, 10:] = 0
    args = tuple(torch.from_numpy(ex[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    axes = {k: {0: "batch", 1: "seq"} for k in ("input_ids", "attention_mask", "token_type_ids",
                                                "last_hidden_state")}
    axes["pooler_output"] = {0: "batch"}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # dynamo=False: the TorchScript exporter needs no onnxscript package.
        # .eval() on the wrapper matters: the exporter restores the wrapper's training flag
        # recursively afterwards, which would otherwise switch the model's dropout on.
        torch.onnx.export(_Encoder(model).eval(), args, str(onnx_path), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state", "pooler_output"],
                          dynamic_axes=axes, do_constant_folding=True)
    check_onnx_parity(model.eval(), onnx_path)
    sidecar.write_text(json.dumps(stamp))
    return onnx_path


def check_onnx_parity(model: BertModel, onnx_path: Path) -> None:
    feed = make_inputs(3, 23, model.config.vocab_size)  # shapes unlike the traced ones
    feed["attention_mask"][2, 9:] = 0
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(["last_hidden_state"], feed)[0]
    with torch.inference_mode():
        want = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).last_hidden_state.numpy()
    valid = feed["attention_mask"].astype(bool)
    err = float(np.abs(got - want)[valid].max())
    if err > ORT_PARITY_TOL:
        onnx_path.unlink(missing_ok=True)
        sys.exit(f"ONNX export disagrees with PyTorch: max |diff| {err:.3g} > {ORT_PARITY_TOL} "
                 f"on a padded batch — the exported graph is wrong; file removed")
    log(f"ONNX parity vs PyTorch on a padded [3, 23] batch: max |diff| {err:.2e}")


def bench_ort(onnx_path: Path, configs, seq, warmup, iters, vocab_size) -> list[dict]:
    results = []
    for batch, threads in configs:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        feed = make_inputs(batch, seq, vocab_size)
        times, w = time_fn(lambda: sess.run(None, feed), warmup, iters)
        r = {"backend": "ort", "batch": batch, "seq": seq, "threads": threads,
             **summarize(times, batch, w)}
        log(f"  ort         batch {batch:3d} threads {threads}: median {r['median_ms']:.2f} ms "
            f"p90 {r['p90_ms']:.2f} p99 {r['p99_ms']:.2f} ({r['iters']} iters)")
        results.append(r)
        del sess
        gc.collect()
    return results


# ----------------------------------------------------------------------------- kd

def bench_kd(kd: Path, kd_model: str, configs, seq, extra: list[str]) -> list[dict]:
    if not (kd.is_file() and os.access(kd, os.X_OK)):
        log(f"kd: no executable at {kd} — skipping the kd column (build it with "
            f"`swift build -c release`)")
        return []
    results = []
    for batch, threads in configs:
        cmd = [str(kd), "bench", "latency", "--model", kd_model, "--batch-size", str(batch),
               "--seq", str(seq), "--threads", str(threads), "--json", *extra]
        log(f"  kd          batch {batch:3d} threads {threads}: {shlex.join(cmd)}")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            log(f"    kd failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
            continue
        try:
            rows = parse_kd_json(proc.stdout)
        except (json.JSONDecodeError, ValueError) as e:
            log(f"    kd printed no JSON list ({e}); stdout tail: {proc.stdout.strip()[-400:]}")
            continue
        for row in rows:
            if row.get("batch", batch) == batch and row.get("threads", threads) == threads:
                results.append({"backend": "kd", "batch": batch, "seq": seq, "threads": threads,
                                **{k: row[k] for k in ("median_ms", "p90_ms", "p99_ms", "seq_per_s")
                                   if k in row}})
                log(f"    median {row.get('median_ms')} ms")
                break
    return results


# ----------------------------------------------------------------------------- report

def side_by_side(results: list[dict], configs, seq) -> str:
    """`results` are the combined rows; each carries its rounds, so a ratio is the median
    over rounds of the two backends' ratio in the same round."""
    def find(backend, b, t):
        return next((r for r in results if r["backend"] == backend and r["batch"] == b
                     and r["threads"] == t), None)

    def ms(r):
        return f"{r['median_ms']:.2f}" if r else "—"

    def ratio(a, b):
        if not (a and b):
            return "—"
        theirs = {y["round"]: y["median_ms"] for y in b["rounds"]}
        per_round = [x["median_ms"] / theirs[x["round"]] for x in a["rounds"] if x["round"] in theirs]
        return f"{float(np.median(per_round)):.2f}×" if per_round else "—"

    lines = ["| config | kd median ms | PyTorch median ms | ORT median ms | kd/PyTorch | kd/ORT |",
             "|---|---:|---:|---:|---:|---:|"]
    for b, t in configs:
        eager, sdpa = find("torch-eager", b, t), find("torch-sdpa", b, t)
        best = min((r for r in (eager, sdpa) if r), key=lambda r: r["median_ms"], default=None)
        pt = f"{ms(best)} ({best['backend'][6:]})" if best else "—"
        kd, ortr = find("kd", b, t), find("ort", b, t)
        lines.append(f"| batch {b}, seq {seq}, {t} thr | {ms(kd)} | {pt} | {ms(ortr)} | "
                     f"{ratio(kd, best)} | {ratio(kd, ortr)} |")
    return "\n".join(lines)


def detail_table(results: list[dict]) -> str:
    lines = ["| backend | batch | seq | threads | median ms | p90 ms | p99 ms | seq/s | iters | round medians ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        p99 = f"{r['p99_ms']:.2f}" if "p99_ms" in r else "—"
        rounds = ", ".join(f"{x['median_ms']:.2f}" for x in r["rounds"])
        lines.append(f"| {r['backend']} | {r['batch']} | {r['seq']} | {r['threads']} | "
                     f"{r['median_ms']:.2f} | {r['p90_ms']:.2f} | {p99} | "
                     f"{r['seq_per_s']:.1f} | {r.get('iters', '—')} | {rounds} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=ROOT / ".cache/minilm-l6",
                    help="HF BertModel directory (config.json + model.safetensors)")
    ap.add_argument("--batch", type=int_list, default=[1, 32], help="comma list, e.g. 1,32")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int_list, default=[1, 2], help="comma list, e.g. 1,2")
    ap.add_argument("--warmup", type=int, default=None,
                    help=f"untimed runs per config (default: >= {AUTO_MIN_WARMUP} and >= "
                         f"{AUTO_WARMUP_SECONDS:g} s)")
    ap.add_argument("--iters", type=int, default=None,
                    help=f"timed runs per config (default: ~{AUTO_SECONDS_PER_RUN:g} s worth, "
                         f"{AUTO_MIN_ITERS}..{AUTO_MAX_ITERS})")
    ap.add_argument("--rounds", type=int, default=3, help="the backends take turns this many times")
    ap.add_argument("--onnx-path", type=Path, default=ROOT / ".cache/onnx/minilm-l6.onnx",
                    help="git-ignored export cache")
    ap.add_argument("--backends", default="torch,ort,kd", help="subset of torch,ort,kd")
    ap.add_argument("--kd", type=Path, help="path to the kd binary")
    ap.add_argument("--kd-model", default="teachers/minilm-l6/teacher.h5")
    ap.add_argument("--kd-args", default="", help="extra arguments for `kd bench latency`")
    ap.add_argument("--json", type=Path, help="write all results as JSON here")
    ap.add_argument("--out", type=Path, help="write the markdown report here")
    args = ap.parse_args()
    if not (args.model_dir / "model.safetensors").exists():
        sys.exit(f"no model at {args.model_dir}/model.safetensors — run scripts/fetch-teacher.sh")

    configs = [(b, t) for b in args.batch for t in args.threads]
    backends = set(args.backends.split(","))
    info = machine_info(torch=torch.__version__, transformers=transformers.__version__,
                        onnxruntime=ort.__version__, numpy=np.__version__)
    log(f"{info['cpu']}, {info['cores']} cores; torch {info['torch']}, ORT {info['onnxruntime']}")
    busy = info["load_at_start"] is not None and info["load_at_start"] > IDLE_LOAD
    if busy:
        log(f"warning: load average {info['load_at_start']} at start — other work is running; "
            f"numbers will be inflated")
    if args.rounds < 1:
        sys.exit("--rounds must be >= 1")
    t_start = time.perf_counter()
    runs = {}
    if "torch" in backends:
        runs["torch"] = lambda: bench_torch(args.model_dir, configs, args.seq, args.warmup, args.iters)
    if "ort" in backends:
        vocab = json.loads((args.model_dir / "config.json").read_text())["vocab_size"]
        onnx_path = export_onnx(args.model_dir, args.onnx_path)
        runs["ort"] = lambda: bench_ort(onnx_path, configs, args.seq, args.warmup, args.iters, vocab)
    if "kd" in backends and args.kd:
        runs["kd"] = lambda: bench_kd(args.kd, args.kd_model, configs, args.seq, shlex.split(args.kd_args))
    rows: list[dict] = []
    names = list(runs)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        log(f"round {r + 1}/{args.rounds}: {', '.join(order)}")
        for name in order:
            rows += [{**x, "round": r} for x in runs[name]()]
    keys = list(dict.fromkeys((x["backend"], x["batch"], x["threads"]) for x in rows))
    # A configuration that failed in some round is compared over the rounds both sides have.
    results = [combine([x for x in rows if (x["backend"], x["batch"], x["threads"]) == k]) for k in keys]
    elapsed = time.perf_counter() - t_start

    table = side_by_side(results, configs, args.seq)
    print(table)
    log(f"total {elapsed:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"format": "distillery-peer-latency", "format_version": 1,
                                         "machine": info, "command": shlex.join(sys.argv),
                                         "results": results}, indent=2) + "\n")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            f"# Peer latency: fp32 BERT forward ({args.model_dir.name})\n\n"
            f"- date: {info['date']}\n- CPU: {info['cpu']}, {info['cores']} cores\n"
            f"- versions: Python {info['python']}, torch {info['torch']}, transformers "
            f"{info['transformers']}, onnxruntime {info['onnxruntime']}, numpy {info['numpy']}\n"
            f"- load average at start: {info['load_at_start']}"
            f"{' (machine busy: numbers inflated)' if busy else ''}\n"
            f"- inputs: random token ids (seed {INPUT_SEED}), all positions valid\n"
            f"- {args.rounds} rounds, the backends in turns; ms are medians over rounds, ratios the "
            f"median of the rounds' ratios\n"
            f"- command: `{shlex.join(sys.argv)}`\n\n"
            f"PyTorch = the faster of eager and sdpa attention (named in the cell); "
            f"ratios < 1 mean kd is faster.\n\n{table}\n\n## All runs\n\n{detail_table(results)}\n")


if __name__ == "__main__":
    main()
