"""Helpers shared by the peer benchmark scripts (peer_latency.py, peer_train_step.py):
logging, timing summaries, machine facts, and reading `kd ... --json` output."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
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
