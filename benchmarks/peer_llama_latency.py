#!/usr/bin/env python3
"""llama.cpp (llama-cpp-python) latency on a `kd export` GGUF beside `kd bench latency`, in turns.

For each (batch, threads) configuration the two runtimes take turns for --rounds rounds:
llama.cpp embeds `batch` sequences of exactly --seq tokens ([CLS] + words + [SEP]) in one
`embed` call (one llama_decode; tokenization of the 32×128 tokens is included and is small),
then `kd bench latency` runs the Distillery model file at the same batch, length and
threads. Reports the median over all timed passes of each runtime, in ms per batch.
Run it under an exclusive lock on a shared machine:

  flock -x /work/cpu.lock .venv-ref/bin/python benchmarks/peer_llama_latency.py \
      --gguf minilm-f32.gguf --model teachers/minilm-l6/teacher.h5 --kd .build/release/kd
"""
import argparse
import json
import statistics
import subprocess
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gguf", required=True)
    p.add_argument("--model", required=True, help="the Distillery model file kd runs")
    p.add_argument("--kd", default=".build/release/kd")
    p.add_argument("--batch-size", default="1,32")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=0, help="passes per turn (0: 20 at batch 1, 3 at larger batches)")
    p.add_argument("--n-batch", type=int, default=512,
                   help="llama.cpp tokens per decode (n_batch = n_ubatch; llama.cpp's default 512): embed() packs whole "
                        "sequences up to this many tokens per llama_decode, and BERT attends over the whole ubatch, so "
                        "one 4096-token decode of 32 sequences costs 8x the attention of eight 512-token ones")
    args = p.parse_args()
    try:
        from llama_cpp import Llama
    except ImportError as e:
        print(f"skip: llama-cpp-python not installed ({e})")
        return 0
    text = " ".join(["hello"] * (args.seq - 2))   # one WordPiece token per word for the uncased BERT vocabulary
    rows = []
    for threads in map(int, args.threads.split(",")):
        for batch in map(int, args.batch_size.split(",")):
            tokens = batch * args.seq
            t0 = time.time()
            n_batch = max(args.n_batch, args.seq)
            llm = Llama(model_path=args.gguf, embedding=True, n_ctx=n_batch, n_batch=n_batch,
                        n_ubatch=n_batch, n_threads=threads, n_threads_batch=threads, verbose=False)
            load_s = time.time() - t0
            n = len(llm.tokenize(text.encode()))
            assert n == args.seq, f"the probe text tokenizes to {n} tokens, expected {args.seq}"
            inputs = [text] * batch
            iters = args.iters or (20 if batch == 1 else 3)
            for _ in range(2):
                llm.embed(inputs)   # warm-up
            llama_ms, kd_ms = [], []
            for _ in range(args.rounds):
                for _ in range(iters):
                    t = time.perf_counter()
                    llm.embed(inputs)
                    llama_ms.append((time.perf_counter() - t) * 1000)
                out = subprocess.run([args.kd, "bench", "latency", "--model", args.model, "--batch-size", str(batch),
                                      "--seq", str(args.seq), "--threads", str(threads), "--iters", str(iters),
                                      "--warmup", "2", "--json"], capture_output=True, text=True, check=True).stdout
                kd_ms.append(json.loads(out)[0]["median_ms"])
            del llm
            row = {"batch": batch, "seq": args.seq, "threads": threads, "llama_cpp_ms": statistics.median(llama_ms),
                   "kd_ms": statistics.median(kd_ms), "llama_load_s": round(load_s, 3), "llama_n_batch": n_batch, "llama_passes": len(llama_ms),
                   "kd_turns": len(kd_ms)}
            row["kd_over_llama"] = row["kd_ms"] / row["llama_cpp_ms"]
            rows.append(row)
            print(f"batch {batch:3d} × {args.seq}, {threads} thread(s): llama.cpp {row['llama_cpp_ms']:.1f} ms, "
                  f"kd {row['kd_ms']:.1f} ms, kd/llama.cpp {row['kd_over_llama']:.2f}×", flush=True)
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
