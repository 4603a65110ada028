#!/usr/bin/env python3
"""Where llama.cpp's Q8_0 embeddings lose cosine: a NumPy BERT forward that does what
llama.cpp's Q8_0 matmul does, one piece at a time, against the same weights in fp32 math.

llama.cpp multiplies a Q8_0 weight by first quantizing the activation row to Q8_0 blocks
(ggml `quantize_row_q8_0`: per 32 inputs d = max|x| / 127 stored as fp16, q = round(x / d)),
then sums int8 × int8 per block times d_w · d_x. This script runs the parity sentences
through the model (HF directory of `kd export --format safetensors`) with
  weights:      fp32 | Q8_0-dequantized (gguf package quantizer = llama.cpp's converter)
                | kd int8 per-row (a `kd quantize --scheme int8-dynamic` file)
  activations:  fp32 | Q8_0 blocks with fp16 scale (llama.cpp) | blocks of 32 with fp32
                scale (kd's int8-dynamic kernels)
and prints the cosine of the final embeddings (mean pool + normalize) between configurations,
per layer the cosine of the hidden states, and which projection's activation quantization
costs the most (quantizing one kind of input at a time).

  .venv-ref/bin/python benchmarks/q8_activation_study.py --hf out/teacher-hf [--kd-int8 teacher-int8.h5]
"""
import argparse
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SENTENCES = os.path.join(HERE, "..", "Tests", "Fixtures", "minilm-l6", "sentences.txt")
KINDS = ("qkv", "attn_out", "ffn_up", "ffn_down")


def q8_blocks(x, fp16_scale):
    """x [..., K] quantized per 32 inputs and dequantized (K a multiple of 32)."""
    shape = x.shape
    b = x.reshape(-1, shape[-1] // 32, 32).astype(np.float32)
    amax = np.abs(b).max(-1, keepdims=True)
    d = amax / 127
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(d > 0, np.rint(b * np.where(d > 0, 1 / d, 0)), 0)
    if fp16_scale:
        d = d.astype(np.float16).astype(np.float32)
    return (q * d).reshape(shape).astype(np.float64)


def layer_norm(x, g, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def gelu(x):
    from scipy.special import erf  # noqa: F401  (scipy ships with the reference venv via sentence-transformers)
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def forward(W, cfg, ids, act, kinds):
    """Hidden states after the embeddings and each layer, for one unpadded sentence."""
    T = len(ids)
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:T] + W["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], cfg["layer_norm_eps"])
    states = [x]
    H, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    d = H // heads

    def lin(v, name, kind):
        if act != "fp32" and kind in kinds:
            v = q8_blocks(v, fp16_scale=(act == "q8_0"))
        return v @ W[name + ".weight"].T + W[name + ".bias"]

    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        q = lin(x, p + "attention.self.query", "qkv").reshape(T, heads, d).transpose(1, 0, 2)
        k = lin(x, p + "attention.self.key", "qkv").reshape(T, heads, d).transpose(1, 0, 2)
        v = lin(x, p + "attention.self.value", "qkv").reshape(T, heads, d).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(T, H)
        x = layer_norm(lin(ctx, p + "attention.output.dense", "attn_out") + x, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], cfg["layer_norm_eps"])
        up = gelu(lin(x, p + "intermediate.dense", "ffn_up"))
        x = layer_norm(lin(up, p + "output.dense", "ffn_down") + x, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], cfg["layer_norm_eps"])
        states.append(x)
    return states


def embedding(states):
    e = states[-1].mean(0)
    return e / np.linalg.norm(e)


def cos_rows(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hf", required=True, help="kd export --format safetensors directory of the model")
    p.add_argument("--kd-int8", help="the model quantized by kd quantize --scheme int8-dynamic (.h5)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    import gguf
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer
    cfg = json.load(open(os.path.join(args.hf, "config.json")))
    raw = {k.removeprefix("bert."): v.astype(np.float64) for k, v in load_file(os.path.join(args.hf, "model.safetensors")).items()}
    tok = AutoTokenizer.from_pretrained(args.hf)
    sentences = [l.rstrip("\n") for l in open(SENTENCES, encoding="utf-8")]
    ids = [tok(s, truncation=True, max_length=cfg["max_position_embeddings"])["input_ids"] for s in sentences]
    matrices = [k for k in raw if k.endswith(".weight") and raw[k].ndim == 2 and "token_type" not in k and "position" not in k]
    q8w = dict(raw)
    for k in matrices:
        w = raw[k].astype(np.float32)
        q8w[k] = gguf.quants.dequantize(gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0).reshape(w.shape).astype(np.float64)
    weights = {"fp32": raw, "q8_0": q8w}
    if args.kd_int8:
        import h5py
        kdw = dict(raw)
        with h5py.File(args.kd_int8, "r") as f:
            for k in matrices:
                if k + ".scales" in f:
                    kdw[k] = f[k][()].astype(np.int8).astype(np.float64) * f[k + ".scales"][()].astype(np.float64)[:, None]
        weights["kd_int8"] = kdw
    runs = {}

    def run(wname, act, kinds=KINDS):
        key = (wname, act, kinds)
        if key not in runs:
            runs[key] = [forward(weights[wname], cfg, i, act, kinds) for i in ids]
        return runs[key]

    def compare(a, b, label):
        ea = np.array([embedding(s) for s in a]); eb = np.array([embedding(s) for s in b])
        c = cos_rows(ea, eb)
        layers = [float(min(cos_rows(x[l], y[l]).min() for x, y in zip(a, b))) for l in range(len(a[0]))]
        print(f"{label}: embedding cosine min {c.min():.6f} mean {c.mean():.6f} (worst: {sentences[int(c.argmin())][:50]!r}); "
              f"per-layer token cosine min " + " ".join(f"{v:.5f}" for v in layers), flush=True)
        return {"min": float(c.min()), "mean": float(c.mean()), "layers_token_min": layers}

    out = {}
    out["q8w_fp32act_vs_fp32"] = compare(run("q8_0", "fp32"), run("fp32", "fp32"), "Q8_0 weights, fp32 activations vs fp32 (weight error alone)")
    out["llama_emul_vs_q8w"] = compare(run("q8_0", "q8_0"), run("q8_0", "fp32"), "Q8_0 weights + Q8_0 activations vs Q8_0 weights fp32 math (= the old gate)")
    out["llama_emul_vs_fp32"] = compare(run("q8_0", "q8_0"), run("fp32", "fp32"), "Q8_0 weights + Q8_0 activations vs fp32")
    for kind in KINDS:
        out[f"only_{kind}"] = compare(run("q8_0", "q8_0", (kind,)), run("q8_0", "fp32"), f"  activations quantized only at {kind}")
    if args.kd_int8:
        out["kd_int8dyn_vs_fp32"] = compare(run("kd_int8", "kd"), run("fp32", "fp32"), "kd int8-dynamic (per-row weights, block-32 fp32-scale activations) vs fp32")
        out["kd_int8_fp16act_vs_kd"] = compare(run("kd_int8", "q8_0"), run("kd_int8", "kd"), "kd int8 weights with llama.cpp's fp16 activation scale vs kd int8-dynamic")
    if args.json:
        json.dump(out, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
