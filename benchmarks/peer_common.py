"""Helpers shared by the peer benchmark scripts (peer_latency.py, peer_train_step.py):
logging, timing summaries, machine facts, and reading `kd ... --json` output."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

# 1-minute load average above this before we start means someone else is using the CPU.
IDLE_LOAD = 0.5


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def summarize(times_ms: list[float], batch: int, warmup: int) -> dict:
    a = np.asarray(times_ms)
    median = float(np.median(a))
    return {"median_ms": round(median, 3), "p90_ms": round(float(np.percentile(a, 90)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3),
            "seq_per_s": round(batch / (median / 1000.0), 2), "iters": len(a), "warmup": warmup}


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine_info(**versions: str) -> dict:
    """Date, CPU, cores, load at start, Python version, plus the given library versions."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"load_at_start": load_average(),
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu, "cores": os.cpu_count(),
            "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "python": platform.python_version(), **versions}


def parse_kd_json(text: str) -> list[dict]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("["), text.rfind("]")  # tolerate log lines around the JSON
        if start < 0 or end <= start:
            raise
        data = json.loads(text[start:end + 1])
    return data if isinstance(data, list) else [data]


def run_kd_step_bench(kd: Path, args: list[str], batch: int, seq: int, threads: int) -> dict | None:
    """Runs `kd bench <args> --json` (a step benchmark: train-step, distill-step) and returns
    its row as a result dict, or None (logged) when kd is missing, fails or prints no JSON."""
    if not (kd.is_file() and os.access(kd, os.X_OK)):
        log(f"kd: no executable at {kd} — skipping the kd column (build it with `swift build -c release`)")
        return None
    cmd = [str(kd), "bench", *args, "--json"]
    log(f"  kd: {shlex.join(cmd)}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log(f"    kd failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
        return None
    try:
        row = parse_kd_json(proc.stdout)[0]
    except (json.JSONDecodeError, ValueError, IndexError) as e:
        log(f"    kd printed no JSON ({e}); stdout tail: {proc.stdout.strip()[-400:]}")
        return None
    r = {"backend": "kd", "batch": batch, "seq": seq, "threads": threads,
         **{k: row[k] for k in ("median_ms", "p90_ms", "seq_per_s", "iters", "warmup", "loss_first", "loss_last")
            if k in row}}
    log(f"    median {r['median_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms")
    return r
