"""Helpers shared by the peer benchmark scripts (peer_latency.py, peer_train_step.py,
peer_distill_step.py): logging, timing summaries, machine facts, reading `kd ... --json`
output, and running two backends in turns."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

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


def time_steps(step: Callable[[], None], warmup: int, iters: int) -> list[float]:
    """Runs `step` warmup times untimed, then iters times; the timed ones in ms."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter_ns()
        step()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times


def in_turns(rounds: int, torch_round: Callable[[], dict] | None,
             kd_round: Callable[[], dict | None] | None) -> tuple[dict | None, dict | None, float | None]:
    """Runs the two backends' step benchmarks in turns, `rounds` times (who goes first
    alternates), so both see the same drift of a shared host's speed; each round is one
    `warmup + iters` run of each. Returns each backend's result with median_ms and p90_ms the
    medians over rounds of the rounds' own values (per-round rows under "rounds"), and the
    median over rounds of kd/torch median time. A backend that is None, or whose round
    returns None (kd failed), is left out."""
    torch_rows: list[dict] = []
    kd_rows: list[dict] = []
    for r in range(rounds):
        turns = [(torch_round, torch_rows), (kd_round, kd_rows)]
        for run, rows in (turns if r % 2 == 0 else turns[::-1]):
            if run is None:
                continue
            row = run()
            if row is None:
                return combine(torch_rows), None, None
            rows.append(row)
    torch_r, kd_r = combine(torch_rows), combine(kd_rows)
    ratio = (float(np.median([k["median_ms"] / t["median_ms"] for k, t in zip(kd_rows, torch_rows)]))
             if torch_rows and kd_rows else None)
    return torch_r, kd_r, ratio


def combine(rows: list[dict]) -> dict | None:
    """One result from per-round results of one backend and configuration: medians over
    rounds of median_ms, p90_ms and p99_ms (those every round has), seq/s from that median,
    the first round's loss_first and the last round's loss_last, the rounds under "rounds"."""
    if not rows:
        return None
    r = dict(rows[-1])
    timing = [k for k in ("median_ms", "p90_ms", "p99_ms") if all(k in row for row in rows)]
    r.pop("p99_ms", None)
    for key in timing:
        r[key] = round(float(np.median([row[key] for row in rows])), 3)
    r["seq_per_s"] = round(r["batch"] / (r["median_ms"] / 1000.0), 2)
    if "loss_first" in rows[0]:
        r["loss_first"] = rows[0]["loss_first"]
    r.pop("round", None)
    r["rounds"] = [{k: row[k] for k in ("round", *timing) if k in row} for row in rows]
    return r


def rounds_line(torch_r: dict | None, kd_r: dict | None) -> str:
    """A markdown line with each round's medians and kd/PyTorch ratio ("" without both)."""
    if not (torch_r and kd_r):
        return ""
    pairs = list(zip(kd_r["rounds"], torch_r["rounds"]))
    return ("Rounds (kd / PyTorch median ms, ratio): "
            + "; ".join(f"{k['median_ms']:.0f} / {t['median_ms']:.0f}, {k['median_ms'] / t['median_ms']:.2f}×" for k, t in pairs))
