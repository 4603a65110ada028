#!/usr/bin/env python3
"""Accurate int8 ONNX forms vs the fast one: cosine against the fp32 ONNX export.

`kd export --type int8` writes DynamicQuantizeLinear + MatMulInteger: one uint8 scale per
activation tensor, which MiniLM's outlier features make coarse (cosine min 0.958 vs fp32).
This script builds, from kd's fp32 ONNX export of the same model, the candidate int8 forms
that keep per-channel int8 weights but quantize activations more finely, writes them next to
the input, and prints the sentence_embedding cosine of each vs the fp32 file on the parity
sentences (max length 128). Time them with ort_int8_forms.py.

  rowwise   x → per-row (per-token) symmetric int8: s = max|x_row| / 127, q = round(x / s)
            (ReduceMax, Div, Round, Cast — opset 17 ops), MatMulInteger(q, W_int8) int8×int8,
            then × s_row × s_col. Same weights as kd's int8 export (per-column scales).
  nbits8    com.microsoft MatMulNBits, 8-bit weights in blocks of 32 (ORT's own quantizer,
            symmetric), accuracy_level 4 (int8 activations per block of 32, like kd).
  nbits8-l0 the same at accuracy_level 0 (fp32 activations; weights dequantized on the fly).

  .venv-ref/bin/python benchmarks/onnx_int8_accuracy.py --fp32 m.onnx --int8 m-int8.onnx --out-dir /tmp/forms
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = os.path.dirname(os.path.abspath(__file__))
SENTENCES = os.path.join(HERE, "..", "Tests", "Fixtures", "minilm-l6", "sentences.txt")
ROW_SCALE_FLOOR = 1e-12   # a row of zeros (padding) gets this scale instead of 0 (no division by zero)


def linear_matmuls(model):
    inits = {i.name: i for i in model.graph.initializer}
    return [(n, inits[n.input[1]]) for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]


def rowwise(model):
    """Per-row int8 activations + per-column int8 weights, MatMulInteger int8 × int8."""
    g = model.graph
    nodes, shared = [], {}
    replace = {id(n): (n, w) for n, w in linear_matmuls(model)}
    drop = set()
    for n in list(g.node):
        if id(n) not in replace:
            nodes.append(n)
            continue
        _, w = replace[id(n)]
        x, y = n.input[0], n.output[0]
        W = numpy_helper.to_array(w).astype(np.float32)          # [K, N]
        ws = np.maximum(np.abs(W).max(0), ROW_SCALE_FLOOR) / 127  # per output column
        Wq = np.clip(np.rint(W / ws), -127, 127).astype(np.int8)
        g.initializer.append(numpy_helper.from_array(Wq, w.name + "_rq"))
        g.initializer.append(numpy_helper.from_array(ws.astype(np.float32), w.name + "_rs"))
        drop.add(w.name)
        if x not in shared:
            p = f"{x}_row"
            nodes += [helper.make_node("Abs", [x], [p + "_abs"]),
                      helper.make_node("ReduceMax", [p + "_abs"], [p + "_max"], axes=[-1], keepdims=1),
                      helper.make_node("Max", [p + "_max", "row_floor"], [p + "_m"]),
                      helper.make_node("Div", [p + "_m", "c127"], [p + "_s"]),
                      helper.make_node("Div", [x, p + "_s"], [p + "_d"]),
                      helper.make_node("Round", [p + "_d"], [p + "_r"]),
                      helper.make_node("Cast", [p + "_r"], [p + "_q"], to=TensorProto.INT8)]
            shared[x] = (p + "_q", p + "_s")
        q, s = shared[x]
        nodes += [helper.make_node("MatMulInteger", [q, w.name + "_rq"], [y + "_i32"]),
                  helper.make_node("Cast", [y + "_i32"], [y + "_f"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", [y + "_f", s], [y + "_fs"]),
                  helper.make_node("Mul", [y + "_fs", w.name + "_rs"], [y])]
    g.initializer.extend([numpy_helper.from_array(np.array(ROW_SCALE_FLOOR, np.float32), "row_floor"),
                          numpy_helper.from_array(np.array(127, np.float32), "c127")])
    keep = [i for i in g.initializer if i.name not in drop]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.node[:]
    g.node.extend(nodes)
    return model


def nbits8(path, level):
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    model = onnx.load(path)
    cfg = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=level, bits=8)
    q = MatMulNBitsQuantizer(model, algo_config=cfg)
    q.process()
    return q.model.model


def embeddings(path, feeds):
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = s.run(["sentence_embedding"], feeds)[0].astype(np.float64)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fp32", required=True, help="kd export --format onnx file")
    p.add_argument("--int8", help="kd export --format onnx --type int8 file (measured too)")
    p.add_argument("--hf", required=True, help="kd export --format safetensors directory (its tokenizer)")
    p.add_argument("--out-dir", required=True)
    args = p.parse_args()
    from transformers import AutoTokenizer
    os.makedirs(args.out_dir, exist_ok=True)
    paths = {}
    m = rowwise(onnx.load(args.fp32))
    paths["rowwise"] = os.path.join(args.out_dir, "rowwise.onnx")
    onnx.save(m, paths["rowwise"])
    for level in (4, 0):
        paths[f"nbits8-l{level}"] = os.path.join(args.out_dir, f"nbits8-l{level}.onnx")
        onnx.save(nbits8(args.fp32, level), paths[f"nbits8-l{level}"])
    if args.int8:
        paths = {"kd-int8 (MatMulInteger)": args.int8, **paths}
    sentences = [l.rstrip("\n") for l in open(SENTENCES, encoding="utf-8")]
    tok = AutoTokenizer.from_pretrained(args.hf)
    enc = tok(sentences, padding=True, truncation=True, max_length=128, return_tensors="np")
    feeds = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64),
             "token_type_ids": enc["token_type_ids"].astype(np.int64)}
    ref = embeddings(args.fp32, feeds)
    for name, path in paths.items():
        c = (embeddings(path, feeds) * ref).sum(1)
        print(f"{name:<26} {os.path.getsize(path):>11,} bytes  cos vs fp32 ONNX min {c.min():.6f} mean {c.mean():.6f} "
              f"(worst {sentences[int(c.argmin())][:30]!r})  {path}", flush=True)


if __name__ == "__main__":
    main()
