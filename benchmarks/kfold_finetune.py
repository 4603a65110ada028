#!/usr/bin/env python3
"""Fine-tuning against the frozen baseline on the same folds: k-fold cross-validation.

One 10% test split of a small dataset (212 texts for bbc-news: one text is 0.47%) cannot tell
two methods apart that differ by a few texts. This pools train, dev and test of a prepared
dataset (already deduplicated: no text twice), cuts it into k stratified folds (seeded), and
for each fold k scores on fold k:

  fine-tuned  `kd finetune` on the other folds (7/8 train, 1/8 dev for best-checkpoint
              keeping, stratified: the 80/10/10 proportions of `kd data prepare`), then
              `kd predict` on fold k;
  frozen      `kd embed` of the starting model (its own pooling), then the logistic
              regression of frozen_baseline.py (C = 1) fitted on all the other folds (train
              and dev: the baseline gets more training data, not less).

Every text is scored once by each method, so the two are compared text by text over the whole
dataset: pooled accuracy and macro-F1, the texts only one method gets right, and an exact
two-sided McNemar (binomial) p-value on those.

Each fold's folder, model and log stay in --work; a rerun skips the folds whose model exists,
so a long run can be stopped and continued.

Usage: .venv-ref/bin/python benchmarks/kfold_finetune.py --data data/bbc-news --max-length 256 \
           --work out/kfold/bbc-news -- --epochs 4 --pooling mean
(flags after -- go to kd finetune).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frozen_baseline import fit, one_line  # noqa: E402


def read_rows(data: Path) -> list[dict]:
    rows = []
    for split in ("train", "dev", "test"):
        rows += [json.loads(line) for line in (data / f"{split}.jsonl").read_text().splitlines() if line.strip()]
    return rows


def stratified_folds(rows: list[dict], k: int, seed: int) -> list[int]:
    """fold[i] for every row: per label, a seeded shuffle dealt round-robin."""
    rng = random.Random(seed)
    fold = [0] * len(rows)
    for label in sorted({r["label"] for r in rows}):
        members = sorted((i for i, r in enumerate(rows) if r["label"] == label), key=lambda i: rows[i]["id"])
        rng.shuffle(members)
        for n, i in enumerate(members):
            fold[i] = n % k
    return fold


def write_fold(folder: Path, rows, train, dev, test, manifest: dict, k: int, fold: int, seed: int):
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, members in (("train", train), ("dev", dev), ("test", test)):
        with open(folder / f"{split}.jsonl", "w") as f:
            for i in members:
                f.write(json.dumps({"id": rows[i]["id"], "text": rows[i]["text"], "label": rows[i]["label"]}) + "\n")
        per = {}
        for i in members:
            per[rows[i]["label"]] = per.get(rows[i]["label"], 0) + 1
        counts[split] = dict(sorted(per.items()))
    (folder / "test.txt").write_text("".join(one_line(rows[i]["text"]) + "\n" for i in test))
    m = dict(manifest)
    m["name"] = f"{manifest['name']}-fold{fold}of{k}"
    m["seed"] = seed
    m["counts"] = counts
    m["totals"] = {s: sum(c.values()) for s, c in counts.items()}
    m["files"] = {s: f"{s}.jsonl" for s in ("train", "dev", "test")}
    (folder / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")


def macro_f1(pred: list[str], gold: list[str], labels: list[str]) -> float:
    f1s = []
    for c in labels:
        tp = sum(p == c and g == c for p, g in zip(pred, gold))
        fp = sum(p == c and g != c for p, g in zip(pred, gold))
        fn = sum(p != c and g == c for p, g in zip(pred, gold))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar: P(a Binomial(b + c, 1/2) count this far from the middle)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def main() -> None:
    argv = sys.argv[1:]
    finetune_args = []
    if "--" in argv:
        cut = argv.index("--")
        argv, finetune_args = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kd", default=".build/release/kd")
    ap.add_argument("--model", default="teachers/minilm-l6/teacher.h5", help="the model to fine-tune and to freeze")
    ap.add_argument("--data", required=True, help="prepared dataset folder (kd data prepare)")
    ap.add_argument("--work", required=True, help="folder for the folds, their models and logs (kept)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--only", type=int, nargs="*", help="run only these folds (0-based); the report covers the folds done")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13, help="seed of the folds (kd finetune gets its own --seed default)")
    ap.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the frozen baseline")
    ap.add_argument("--json", help="also write the report as JSON here (with every text's predictions)")
    ap.add_argument("--against", help="the --json of another run on the same folds (e.g. other fine-tuning flags): "
                                      "compare the two fine-tuned models text by text on the texts both scored")
    args = ap.parse_args(argv)
    if args.folds < 2 or any(k < 0 or k >= args.folds for k in args.only or []):
        sys.exit(f"--folds must be at least 2 and --only folds in 0..{args.folds - 1}")
    kd, data, work = args.kd, Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    rows = read_rows(data)
    manifest = json.loads((data / "manifest.json").read_text())
    labels = sorted({r["label"] for r in rows})
    fold_of = stratified_folds(rows, args.folds, args.seed)
    gold = [r["label"] for r in rows]

    # The frozen encoder's embeddings of every text, once.
    all_txt = work / "all.txt"
    all_txt.write_text("".join(one_line(r["text"]) + "\n" for r in rows))
    emb_file = work / f"frozen-embeddings-{args.max_length}.jsonl"
    if not emb_file.exists():
        subprocess.run([kd, "embed", "--model", args.model, "--input", str(all_txt), "--out", str(emb_file),
                        "--max-length", str(args.max_length), "--threads", str(args.threads)], check=True)
    x = torch.tensor([json.loads(line)["embedding"] for line in emb_file.read_text().splitlines()], dtype=torch.float64)
    y = torch.tensor([labels.index(g) for g in gold])
    assert len(x) == len(rows), f"{emb_file}: {len(x)} embeddings for {len(rows)} texts — delete it and rerun"

    tuned_pred: dict[int, str] = {}
    frozen_pred: dict[int, str] = {}
    per_fold = []
    for k in (args.only if args.only is not None else range(args.folds)):
        test = [i for i in range(len(rows)) if fold_of[i] == k]
        rest = [i for i in range(len(rows)) if fold_of[i] != k]
        # dev: every 8th of the rest per label, after a seeded shuffle (stratified, ~10% of all).
        rng = random.Random(args.seed * 1000 + k)
        dev = []
        for label in labels:
            members = [i for i in rest if gold[i] == label]
            rng.shuffle(members)
            dev += members[::8]
        dev_set = set(dev)
        train = [i for i in rest if i not in dev_set]
        folder = work / f"fold{k}"
        write_fold(folder, rows, train, dev, test, manifest, args.folds, k, args.seed)

        model = folder / "model.h5"
        started = time.time()
        if not model.exists():
            with open(folder / "finetune.log", "w") as log:
                subprocess.run([kd, "finetune", "--model", args.model, "--data", str(folder), "--out", str(model),
                                "--max-length", str(args.max_length), "--threads", str(args.threads), *finetune_args],
                               check=True, stdout=log, stderr=subprocess.STDOUT)
            minutes = (time.time() - started) / 60
        else:
            minutes = None
        out = subprocess.run([kd, "predict", "--model", str(model), "--input", str(folder / "test.txt"),
                              "--max-length", str(args.max_length), "--threads", str(args.threads)],
                             check=True, capture_output=True, text=True).stdout
        preds = [json.loads(line)["label"] for line in out.splitlines()]
        assert len(preds) == len(test)
        for i, p in zip(test, preds):
            tuned_pred[i] = p

        w, b = fit(x[rest], y[rest], len(labels), args.c)
        for i, p in zip(test, (x[test] @ w + b).argmax(1).tolist()):
            frozen_pred[i] = labels[p]
        tuned_acc = sum(tuned_pred[i] == gold[i] for i in test) / len(test)
        frozen_acc = sum(frozen_pred[i] == gold[i] for i in test) / len(test)
        per_fold.append({"fold": k, "train": len(train), "dev": len(dev), "test": len(test),
                         "finetuned_accuracy": tuned_acc, "frozen_accuracy": frozen_acc,
                         "finetune_minutes": minutes})
        took = f", fine-tune {minutes:.1f} min" if minutes is not None else ""
        print(f"fold {k}: {len(train)} train / {len(dev)} dev / {len(test)} test — fine-tuned {tuned_acc:.4f}, "
              f"frozen {frozen_acc:.4f}{took}", flush=True)

    scored = sorted(tuned_pred)
    if not scored:
        sys.exit("no fold was run (--only names none)")
    g = [gold[i] for i in scored]
    t = [tuned_pred[i] for i in scored]
    f = [frozen_pred[i] for i in scored]
    only_tuned = sum(a == c and b != c for a, b, c in zip(t, f, g))
    only_frozen = sum(a != c and b == c for a, b, c in zip(t, f, g))
    report = {
        "dataset": data.name, "model": args.model, "max_length": args.max_length, "folds": args.folds,
        "folds_done": [p["fold"] for p in per_fold], "finetune_args": finetune_args, "texts": len(scored),
        "finetuned": {"accuracy": sum(a == c for a, c in zip(t, g)) / len(g), "macro_f1": macro_f1(t, g, labels),
                      "correct": sum(a == c for a, c in zip(t, g))},
        "frozen": {"accuracy": sum(b == c for b, c in zip(f, g)) / len(g), "macro_f1": macro_f1(f, g, labels),
                   "correct": sum(b == c for b, c in zip(f, g)), "c": args.c},
        "only_finetuned_right": only_tuned, "only_frozen_right": only_frozen,
        "mcnemar_p": mcnemar_exact(only_tuned, only_frozen), "per_fold": per_fold,
        "predictions": [{"id": rows[i]["id"], "fold": fold_of[i], "label": gold[i], "finetuned": tuned_pred[i],
                   "frozen": frozen_pred[i]} for i in scored],
    }
    print(f"{data.name}, {len(scored)} texts scored out of fold ({len(per_fold)} of {args.folds} folds), "
          f"max length {args.max_length}:")
    for name in ("finetuned", "frozen"):
        r = report[name]
        print(f"  {name:9s}  accuracy {r['accuracy']:.4f} ({r['correct']}/{len(g)}), macro-F1 {r['macro_f1']:.4f}")
    print(f"  right only when fine-tuned: {only_tuned}, only when frozen: {only_frozen}; "
          f"exact McNemar p = {report['mcnemar_p']:.3g}")
    if args.against:
        other = {t["id"]: t for t in json.loads(Path(args.against).read_text())["predictions"]}
        common = [i for i in scored if rows[i]["id"] in other]
        mine = sum(tuned_pred[i] == gold[i] for i in common)
        theirs = sum(other[rows[i]["id"]]["finetuned"] == gold[i] for i in common)
        only_mine = sum(tuned_pred[i] == gold[i] and other[rows[i]["id"]]["finetuned"] != gold[i] for i in common)
        only_theirs = sum(tuned_pred[i] != gold[i] and other[rows[i]["id"]]["finetuned"] == gold[i] for i in common)
        print(f"  against {args.against} on the {len(common)} texts both scored: this run {mine}, that run {theirs} right; "
              f"only this run {only_mine}, only that run {only_theirs}; exact McNemar p = {mcnemar_exact(only_mine, only_theirs):.3g}")
        report["against"] = {"file": args.against, "texts": len(common), "this_correct": mine, "that_correct": theirs,
                             "only_this": only_mine, "only_that": only_theirs, "mcnemar_p": mcnemar_exact(only_mine, only_theirs)}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
