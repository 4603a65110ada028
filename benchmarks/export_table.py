#!/usr/bin/env python3
"""Markdown table of check_exports.py summaries: one row per model x format/type, with the
file size, export and runtime load time, and the check's figure.

  python3 benchmarks/export_table.py NAME=summary.json [NAME=summary.json ...]
"""
import json
import sys


def figure(d):
    out = []
    for key, label in [("transformers_embed_max_diff", "HF max Δ {:.2e}"),
                       ("transformers_logits_max_diff", "HF logits max Δ {:.2e}"),
                       ("sentence_transformers_max_diff", "ST max Δ {:.2e}"),
                       ("classifier_probs_max_diff", "HF classifier probs max Δ {:.2e}"),
                       ("embedding_max_diff", "ORT max Δ {:.2e}"),
                       ("probs_max_diff", "ORT probs max Δ {:.2e}"),
                       ("gguf_package_vs_kd_import_max_diff", "gguf pkg vs kd import {:.2g}"),
                       ("llama_cos_min_vs_kd", "llama.cpp vs kd cos min {:.6f}"),
                       ("llama_cos_min_vs_fp32", "vs fp32 {:.6f}"),
                       ("llama_rank_head_argmax_agreement", "llama.cpp class head argmax agreement {:.3f}"),
                       ("cos_min_vs_kd", "ORT vs kd (same file) cos min {:.6f}"),
                       ("cos_min_vs_fp32", "vs fp32 {:.6f}"),
                       ("ort_quantize_dynamic_cos_min_vs_fp32", "ORT quantize_dynamic vs fp32 {:.6f}"),
                       ("argmax_agreement_vs_kd", "predictions vs kd (same file) {:.3f}"),
                       ("argmax_agreement_vs_fp32", "vs fp32 {:.3f}")]:
        if isinstance(d.get(key), (int, float)):
            out.append(label.format(d[key]))
    return "; ".join(out)


def load(d):
    parts = [f"{k[:-7]} {d[k]:.2f}" for k in sorted(d) if k.endswith("_load_s") and isinstance(d[k], (int, float))]
    return ", ".join(parts)


rows = ["| model | export | bytes | export s | load s | check |", "|---|---|---:|---:|---|---|"]
for arg in sys.argv[1:]:
    name, path = arg.split("=", 1)
    summary = json.load(open(path))
    for model, formats in summary.items():
        for fmt, d in formats.items():
            if not isinstance(d, dict):
                continue
            rows.append(f"| {name} | {fmt} | {d.get('bytes', 0):,} | {d.get('export_s', '')} | {load(d)} | {figure(d)} |")
print("\n".join(rows))
