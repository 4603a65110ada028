#!/usr/bin/env python3
"""Peer for `kd quantize`: ONNX Runtime's own quantizers on the same teacher — accuracy
(embedding cosine vs fp32) and latency, side by side with kd's quantized files.

Models (all from the fp32 ONNX export of peer_latency.py, cached under .cache/onnx/):
  ort-fp32            the export itself
  ort-int8-tensor     onnxruntime.quantization.quantize_dynamic, QInt8 weights, per tensor
  ort-int8-channel    the same with per_channel=True
  ort-int4-b32        MatMulNBitsQuantizer, block 32, symmetric (MatMulNBits int4)
For each: mean and min cosine of the mean-pooled, L2-normalized sentence embeddings against
the fp32 export on the sentence file (HF BertTokenizer, max length 128), the file size, and
the latency of one forward (random ids, every position valid) per --batch and --threads,
the models taking turns (--rounds rounds, each round starting with the next model).
With --kd and --kd-models, `kd bench latency` times kd's files in the same turns and
benchmarks/embed_cosine.py-style cosines are computed from `kd embed` outputs.

  .venv-ref/bin/python benchmarks/peer_quant.py --model-dir .cache/minilm-l6 \
      --sentences benchmarks/data/cosine-sentences.txt --batch 1,32 --seq 128 --threads 2 \
      [--kd .build/release/kd --kd-models fp32=teachers/minilm-l6/teacher.h5,int8=q8.h5,...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402
from transformers import BertTokenizer  # noqa: E402

from peer_common import log, machine_info  # noqa: E402
from peer_latency import export_onnx, make_inputs, time_fn  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def quantized_models(fp32: Path) -> dict[str, Path]:
    """ORT's quantized variants of `fp32`, made once (cached beside it)."""
    out = {"ort-fp32": fp32}
    for name, per_channel in [("ort-int8-tensor", False), ("ort-int8-channel", True)]:
        path = fp32.with_name(f"{fp32.stem}-{name}.onnx")
        if not path.exists():
            log(f"quantize_dynamic per_channel={per_channel} -> {path}")
            quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=per_channel)
        out[name] = path
    path = fp32.with_name(f"{fp32.stem}-ort-int4-b32.onnx")
    if not path.exists():
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
        log(f"MatMulNBitsQuantizer block 32 -> {path}")
        q = MatMulNBitsQuantizer(onnx.load(str(fp32)), block_size=32, is_symmetric=True)
        q.process()
        q.model.save_model_to_file(str(path), use_external_data_format=False)
    out["ort-int4-b32"] = path
    return out


def session(path: Path, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def embeddings(path: Path, tokenizer, sentences: list[str]) -> np.ndarray:
    """Mean-pooled, L2-normalized last hidden states (sentence-transformers' MiniLM pooling)."""
    sess = session(path, 1)
    rows = []
    for s in sentences:
        enc = tokenizer(s, truncation=True, max_length=128, return_tensors="np")
        feed = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64),
                "token_type_ids": enc["token_type_ids"].astype(np.int64)}
        h = sess.run(None, feed)[0][0].astype(np.float64)
        e = h.mean(axis=0)
        rows.append(e / np.linalg.norm(e))
    return np.stack(rows)


def kd_embeddings(kd: Path, model: str, sentences_file: Path) -> np.ndarray:
    out = subprocess.run([str(kd), "embed", "--model", model, "--input", str(sentences_file), "--threads", "1"],
                         capture_output=True, text=True, check=True).stdout
    rows = [np.asarray(json.loads(line)["embedding"], dtype=np.float64) for line in out.splitlines() if line.strip()]
    return np.stack([r / np.linalg.norm(r) for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--onnx-path", type=Path, default=ROOT / ".cache/onnx/minilm-l6.onnx")
    ap.add_argument("--sentences", default=str(ROOT / "benchmarks/data/cosine-sentences.txt"),
                    help="sentence file for the cosines, or none (latency only)")
    ap.add_argument("--kd-seconds", default="4", help="kd bench latency --seconds per model and round")
    ap.add_argument("--batch", default="1,32", help="batch sizes to time, or none (accuracy only)")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=None, help="timed passes per model and round (default: auto)")
    ap.add_argument("--kd", type=Path)
    ap.add_argument("--kd-models", default="", help="name=path,… of kd files to time and score")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    info = machine_info(onnxruntime=ort.__version__, numpy=np.__version__)
    log(f"{info['cpu']}, {info['cores']} cores; ORT {info['onnxruntime']}")
    fp32 = export_onnx(args.model_dir, args.onnx_path)
    models = quantized_models(fp32)
    tokenizer = BertTokenizer.from_pretrained(str(args.model_dir))
    kd_models = dict(p.split("=", 1) for p in args.kd_models.split(",") if p)
    rows = {name: {"cos_mean": float("nan"), "cos_min": float("nan"), "bytes": path.stat().st_size} for name, path in models.items()}
    rows.update({f"kd-{name}": {"cos_mean": float("nan"), "cos_min": float("nan"), "bytes": Path(path).stat().st_size}
                 for name, path in kd_models.items()})
    if args.sentences != "none":
        sentences = [l for l in Path(args.sentences).read_text().splitlines() if l.strip()]
        reference = embeddings(fp32, tokenizer, sentences)
        for name, path in models.items():
            cos = (embeddings(path, tokenizer, sentences) * reference).sum(axis=1)
            rows[name].update(cos_mean=float(cos.mean()), cos_min=float(cos.min()))
        for name, path in kd_models.items():
            cos = (kd_embeddings(args.kd, path, Path(args.sentences)) * reference).sum(axis=1)
            rows[f"kd-{name}"].update(cos_mean=float(cos.mean()), cos_min=float(cos.min()))

    batches = [] if args.batch == "none" else [int(b) for b in args.batch.split(",")]
    vocab = tokenizer.vocab_size
    for b in batches:
        feed = make_inputs(b, args.seq, vocab)
        times: dict[str, list[float]] = {}
        names = list(models) + [f"kd-{n}" for n in kd_models]
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                if name.startswith("kd-"):
                    cmd = [str(args.kd), "bench", "latency", "--model", kd_models[name[3:]], "--batch-size", str(b),
                           "--seq", str(args.seq), "--threads", str(args.threads), "--json", "--seconds", args.kd_seconds]
                    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
                    times.setdefault(name, []).append(float(out[0]["median_ms"]))
                else:
                    sess = session(models[name], args.threads)
                    t, _ = time_fn(lambda: sess.run(None, feed), None, args.iters)
                    times.setdefault(name, []).append(float(np.median(t)))
        for name, ts in times.items():
            rows[name][f"batch{b}_ms"] = float(np.median(ts))
            log(f"  {name:18s} batch {b:2d}: {np.median(ts):8.2f} ms (rounds: {', '.join(f'{x:.1f}' for x in ts)})")

    print(f"| model | batch {' | batch '.join(map(str, batches))} | cosine mean / min | file MB |")
    print("|---|" + "---:|" * len(batches) + "---|---:|")
    for name, r in rows.items():
        cells = " | ".join(f"{r.get(f'batch{b}_ms', float('nan')):.1f} ms" for b in batches)
        print(f"| {name} | {cells} | {r['cos_mean']:.4f} / {r['cos_min']:.4f} | {r['bytes'] / 1e6:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
