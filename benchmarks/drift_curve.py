#!/usr/bin/env python3
"""The detection curve of `kd monitor` on real shifts (issue 16).

Runs kd monitor with an SMS-spam student (and its teacher) against the sms-spam training
split on:
  - no drift: the sms-spam test and dev splits (random held-out splits of the same data);
  - strong drift: tweet-sentiment test texts (same count as sms-spam test);
  - mixtures: sms-spam test with a fraction f of its texts replaced by tweets, for
    f = 5, 10, 20, 30, 50 %, each with several seeds (which texts are replaced).
Every run's --json report is parsed; the script prints a markdown table of each
statistic's value and level (ok / W = warn / D = drift), the exit code, and how many seeds
fired per statistic at each fraction.

Usage (from the repository root, after `swift build -c release --product kd`):
  python3 benchmarks/drift_curve.py --kd .build/release/kd \
      --model out/demo/sms-l3.h5 --teacher out/demo/sms-teacher.h5 \
      --sms data/sms-spam --tweets data/tweet-sentiment --seeds 3 > table.md
Only the standard library is needed.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

FRACTIONS = [0.05, 0.10, 0.20, 0.30, 0.50]
ORDER = ["length_psi", "unk_rate_increase", "unseen_piece_rate", "piece_js", "piece_psi", "embedding_mmd_p",
         "label_psi", "confidence_psi", "teacher_agreement_drop"]
SHORT = {"ok": "", "warn": "W", "drift": "D"}


def texts(folder, split):
    with open(os.path.join(folder, f"{split}.jsonl"), encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def write_jsonl(path, items):
    with open(path, "w", encoding="utf-8") as f:
        for t in items:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")


def run(args, path):
    cmd = [args.kd, "monitor", "--model", args.model, "--reference", args.sms, "--split", "train", "--input", path,
           "--json", "--threads", str(args.threads), "--model-sample", str(args.model_sample)]
    if args.teacher:
        cmd += ["--teacher", args.teacher]
    start = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.time() - start
    if p.returncode not in (0, 1, 2):
        sys.exit(f"kd monitor failed ({p.returncode}): {p.stderr}")
    report = json.loads(p.stdout)
    assert report["level"] == ["ok", "warn", "drift"][p.returncode], "exit code and level disagree"
    return p.returncode, report, seconds


def cell(stat):
    v = stat["value"]
    text = f"{v:.2e}" if v != 0 and abs(v) < 1e-3 else f"{v:.3f}"
    mark = SHORT[stat["level"]]
    return f"{text} {mark}".strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kd", default=".build/release/kd")
    ap.add_argument("--model", required=True)
    ap.add_argument("--teacher")
    ap.add_argument("--sms", default="data/sms-spam")
    ap.add_argument("--tweets", default="data/tweet-sentiment")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--fractions", default=",".join(str(f) for f in FRACTIONS), help="comma-separated fractions of tweets")
    ap.add_argument("--no-baselines", action="store_true", help="only the mixtures (skip the no-drift and tweets-only runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model-sample", type=int, default=2000, help="kd monitor --model-sample: texts per side through the model")
    args = ap.parse_args()

    sms_test, sms_dev = texts(args.sms, "test"), texts(args.sms, "dev")
    tweets = texts(args.tweets, "test")
    n = len(sms_test)
    fractions = [float(f) for f in args.fractions.split(",")]
    cases = [] if args.no_baselines else [("sms-spam test (no drift)", sms_test, None), ("sms-spam dev (no drift)", sms_dev, None),
                                          ("tweets only", random.Random(0).sample(tweets, n), None)]
    for f in fractions:
        k = round(f * n)
        for seed in range(args.seeds):
            rng = random.Random(1000 * seed + int(f * 100))
            mixed = list(sms_test)
            for i, t in zip(rng.sample(range(n), k), rng.sample(tweets, k)):
                mixed[i] = t
            cases.append((f"{int(f * 100)}% tweets, seed {seed}", mixed, f))

    rows, fired, total_seconds = [], {}, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, items, fraction in cases:
            path = os.path.join(tmp, "input.jsonl")
            write_jsonl(path, items)
            code, report, seconds = run(args, path)
            total_seconds += seconds
            stats = {s["statistic"]: s for s in report["statistics"]}
            rows.append((name, len(items), code, stats, seconds))
            if fraction is not None:
                for key, s in stats.items():
                    counts = fired.setdefault((fraction, key), [0, 0])
                    counts[0] += s["level"] != "ok"
                    counts[1] += s["level"] == "drift"
            print(f"{name}: exit {code} ({seconds:.1f} s)", file=sys.stderr)

    present = [k for k in ORDER if any(k in r[3] for r in rows)]
    print("| input | texts | exit | " + " | ".join(present) + " |")
    print("|---|---:|---:|" + "---:|" * len(present))
    for name, count, code, stats, _ in rows:
        print(f"| {name} | {count} | {code} | " + " | ".join(cell(stats[k]) if k in stats else "–" for k in present) + " |")
    print()
    print(f"Seeds per fraction: {args.seeds}. Cell: fired (warn or drift) / of which drift, over the seeds.")
    print()
    print("| tweets | " + " | ".join(present) + " |")
    print("|---:|" + "---:|" * len(present))
    for f in fractions:
        print(f"| {int(f * 100)}% | " + " | ".join(f"{fired[(f, k)][0]}/{fired[(f, k)][1]}" if (f, k) in fired else "–" for k in present) + " |")
    print()
    print(f"{len(rows)} runs, {total_seconds:.0f} s of kd monitor in total ({total_seconds / len(rows):.1f} s per run).")


if __name__ == "__main__":
    main()
