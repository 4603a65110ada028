#!/usr/bin/env python3
"""Two kd binaries taking turns on the same `kd bench ...` command: is the new engine
slower than the old one?

Each round runs binary A then binary B (the order alternates between rounds), each once
with the same arguments and `--json`; per configuration (batch, threads) the report gives
each binary's median over rounds of its per-run median, and the median over rounds of the
B/A ratio, so a drift of the host's speed over minutes hits both sides alike. Works for
`bench latency`, `bench train-step` and `bench distill-step`.

    benchmarks/kd_ab.py --a /tmp/kd-old --b .build/release/kd --rounds 5 \\
        -- bench latency --model teachers/minilm-l6/teacher.h5 --batch-size 1,32 --threads 1,2
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_common import log, machine_info, parse_kd_json  # noqa: E402


def run_once(kd: Path, args: list[str]) -> dict[tuple, float]:
    """One `kd <args> --json` run: median ms per (batch, threads)."""
    cmd = [str(kd), *args, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{shlex.join(cmd)} failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    rows = parse_kd_json(proc.stdout)
    return {(row.get("batch"), row.get("threads")): float(row["median_ms"]) for row in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", type=Path, required=True, help="baseline kd binary")
    ap.add_argument("--b", type=Path, required=True, help="candidate kd binary")
    ap.add_argument("--label-a", default="A (baseline)")
    ap.add_argument("--label-b", default="B (candidate)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, help="append the markdown table here")
    ap.add_argument("kd_args", nargs=argparse.REMAINDER, help="-- then the kd arguments, e.g. bench latency ...")
    args = ap.parse_args()
    kd_args = args.kd_args[1:] if args.kd_args[:1] == ["--"] else args.kd_args
    if not kd_args or args.rounds < 1:
        sys.exit("give kd arguments after --, and --rounds >= 1")
    info = machine_info()
    runs: dict[str, list[dict[tuple, float]]] = {"a": [], "b": []}
    for r in range(args.rounds):
        order = ["a", "b"] if r % 2 == 0 else ["b", "a"]
        for side in order:
            runs[side].append(run_once(args.a if side == "a" else args.b, kd_args))
        log(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{k}: A {runs['a'][-1][k]:.2f} ms, B {runs['b'][-1][k]:.2f} ms" for k in runs["a"][-1]))
    lines = [f"`kd {shlex.join(kd_args)}` — {info['cpu']}, {info['cores']} cores, {info['date']}, "
             f"load at start {info['load_at_start']}, {args.rounds} rounds in turns",
             "", f"| batch | threads | {args.label_a} ms | {args.label_b} ms | B/A (median of rounds) | B/A range |",
             "|---:|---:|---:|---:|---:|---:|"]
    for key in runs["a"][0]:
        a = [run[key] for run in runs["a"]]
        b = [run[key] for run in runs["b"]]
        ratios = [y / x for x, y in zip(a, b)]
        lines.append(f"| {key[0]} | {key[1]} | {statistics.median(a):.2f} | {statistics.median(b):.2f} | "
                     f"{statistics.median(ratios):.3f} | {min(ratios):.3f}–{max(ratios):.3f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        with args.out.open("a") as f:
            f.write(table + "\n\n")


if __name__ == "__main__":
    main()
