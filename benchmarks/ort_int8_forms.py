#!/usr/bin/env python3
"""ONNX Runtime latency of the int8 forms of one model, in turns: which form to export.

Times each given ONNX file (e.g. fp32, QDQ signed int8, MatMulInteger + dynamic
quantization, MatMulNBits) on batches of --seq tokens, at each batch size and thread
count; within a configuration the files take turns for --rounds rounds (--iters passes
each). Prints the median ms per batch. Run it under an exclusive lock on a shared machine:

  flock -x /work/cpu.lock .venv-ref/bin/python benchmarks/ort_int8_forms.py \
      fp32=model.onnx qdq=model-qdq.onnx matmulinteger=model-dyn.onnx --batch-size 1,32 --threads 1,2
"""
import argparse
import json
import statistics
import time

import numpy as np
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="name=path.onnx")
    p.add_argument("--batch-size", default="1,32")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=0, help="passes per turn (0: 10 at batch 1, 2 at larger batches)")
    args = p.parse_args()
    models = [m.split("=", 1) for m in args.models]
    rows = []
    rng = np.random.default_rng(0)
    for threads in map(int, args.threads.split(",")):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sessions = {}
        for name, path in models:
            t0 = time.time()
            sessions[name] = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            print(f"{name}: session {time.time() - t0:.2f} s", flush=True)
        for batch in map(int, args.batch_size.split(",")):
            ids = rng.integers(1000, 20000, size=(batch, args.seq)).astype(np.int64)
            ids[:, 0], ids[:, -1] = 101, 102
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            iters = args.iters or (10 if batch == 1 else 2)
            times = {name: [] for name, _ in models}
            for s in sessions.values():
                s.run(None, feeds)   # warm-up
            for _ in range(args.rounds):
                for name, _ in models:
                    for _ in range(iters):
                        t = time.perf_counter()
                        sessions[name].run(None, feeds)
                        times[name].append((time.perf_counter() - t) * 1000)
            row = {"batch": batch, "seq": args.seq, "threads": threads, **{name: statistics.median(v) for name, v in times.items()}}
            rows.append(row)
            print(f"batch {batch:3d} × {args.seq}, {threads} thread(s): " + ", ".join(f"{n} {row[n]:.1f} ms" for n, _ in models), flush=True)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
