#!/usr/bin/env python3
"""Which tensors of a Q8_0 GGUF cost llama.cpp's accuracy: mixed Q8_0 / F16 files measured
with llama.cpp itself against HF transformers fp32.

llama.cpp multiplies a Q8_0 weight by quantizing the activation row to Q8_0 blocks first;
an F16 weight gets an F16 activation instead. So a tensor kept at F16 removes both its
weight rounding and its input's rounding. This script takes two `kd export` GGUFs of the
same model (`--type q8_0` and `--type f16`), writes for each candidate set of tensors a
file that is the Q8_0 one with those tensors taken from the F16 one (GGUF gives every
tensor its own type), embeds the 64 parity sentences with llama.cpp (mean pool, as the
model) and compares with transformers' fp32 BertModel on the HF directory (`kd export
--format safetensors`), mean pool + L2 normalize. Sentences llama.cpp tokenizes differently
from HF (Hangul, see check_exports.py) are left out and counted.

A candidate is a comma list of tensor kinds (token_embd, attn_q, attn_k, attn_v,
attn_output, ffn_up, ffn_down), each optionally restricted to layers: `attn_q@3-5`.

  .venv-ref/bin/python benchmarks/q8_mixed_study.py --q8 m-q8_0.gguf --f16 m-f16.gguf \
      --hf m-hf --work /tmp/mixed [--candidate attn_q,attn_k,attn_v ...] [--json out.json]
"""
import argparse
import json
import os
import re

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = os.path.dirname(os.path.abspath(__file__))
SENTENCES = os.path.join(HERE, "..", "Tests", "Fixtures", "minilm-l6", "sentences.txt")
DEFAULT_CANDIDATES = ["", "token_embd", "attn_q", "attn_k", "attn_v", "attn_q,attn_k,attn_v", "attn_output",
                      "ffn_up", "ffn_down", "attn_q,attn_k,attn_v,ffn_up", "attn_q,attn_k,attn_v,ffn_up,ffn_down",
                      "attn_q,attn_k,attn_v,attn_output,ffn_up,ffn_down"]


def selected(name, candidate):
    """Whether GGUF tensor `name` is in the candidate set."""
    for part in filter(None, candidate.split(",")):
        kind, _, layers = part.partition("@")
        if name == f"{kind}.weight" and kind == "token_embd":
            return True
        m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", name)
        if m and m.group(2) == kind:
            if not layers:
                return True
            lo, _, hi = layers.partition("-")
            if int(lo) <= int(m.group(1)) <= int(hi or lo):
                return True
    return False


def write_mixed(q8_path, f16_path, candidate, out):
    import gguf
    q8, f16 = gguf.GGUFReader(q8_path), gguf.GGUFReader(f16_path)
    f16_tensors = {t.name: t for t in f16.tensors}
    arch = q8.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(out, arch=arch)
    for field in q8.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    kept = 0
    for t in q8.tensors:
        src = f16_tensors[t.name] if selected(t.name, candidate) else t
        kept += src is not t
        w.add_tensor(src.name, src.data, raw_shape=src.data.shape, raw_dtype=src.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return kept


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--q8", required=True)
    p.add_argument("--f16", required=True)
    p.add_argument("--hf", required=True, help="kd export --format safetensors directory of the same model")
    p.add_argument("--work", required=True)
    p.add_argument("--candidate", action="append", help="tensor set kept at F16 (repeatable; '' = plain Q8_0)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    args = p.parse_args()
    import torch
    from llama_cpp import Llama
    from transformers import AutoModel, AutoTokenizer
    os.makedirs(args.work, exist_ok=True)
    sentences = [l.rstrip("\n") for l in open(SENTENCES, encoding="utf-8")]
    tok = AutoTokenizer.from_pretrained(args.hf)
    model = AutoModel.from_pretrained(args.hf).eval()
    full = model.config.max_position_embeddings
    batch = tok(sentences, padding=True, truncation=True, max_length=full, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state.double()
    mask = batch["attention_mask"].unsqueeze(-1).double()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    hf_ids = [tok(s, truncation=True, max_length=full)["input_ids"] for s in sentences]
    results = {}
    for candidate in (args.candidate if args.candidate is not None else DEFAULT_CANDIDATES):
        path = os.path.join(args.work, "mixed-" + (re.sub(r"[^\w@-]+", "+", candidate) or "plain") + ".gguf")
        kept = write_mixed(args.q8, args.f16, candidate, path)
        llm = Llama(model_path=path, embedding=True, n_ctx=full, n_batch=full, n_ubatch=full, n_threads=args.threads,
                    verbose=False, pooling_type=1)
        same = np.array([llm.tokenize(s.encode("utf-8")) == ids for s, ids in zip(sentences, hf_ids)])
        emb = np.array([llm.embed(s, normalize=False) for s in sentences], dtype=np.float64)
        del llm
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        cos = (emb * ref).sum(1)[same]
        size = os.path.getsize(path)
        results[candidate or "plain"] = {"f16_tensors": kept, "bytes": size, "cos_min": float(cos.min()), "cos_mean": float(cos.mean()),
                                         "sentences": int(same.sum()), "worst": sentences[int(np.flatnonzero(same)[cos.argmin()])]}
        print(f"{candidate or 'plain Q8_0':<48} F16 tensors {kept:3d}  {size:>11,} bytes  cos vs HF fp32 min {cos.min():.6f} "
              f"mean {cos.mean():.6f} over {int(same.sum())}  worst {results[candidate or 'plain']['worst'][:30]!r}", flush=True)
        os.remove(path)
    if args.json:
        json.dump(results, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
