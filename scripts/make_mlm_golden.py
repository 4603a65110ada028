#!/usr/bin/env python3
"""Writes the masked-LM fixture and its golden outputs (Tests/Fixtures/tiny-mlm/).

A deterministic random BertForMaskedLM (the tiny-bert vocabulary and sizes of
make_model_golden.py: vocab 95, hidden 32, 2 layers, 4 heads), saved with HF transformers
(PyTorch, fp32, eval mode, eager attention, one thread) as config.json, model.safetensors
and vocab.txt; the decoder is tied to the word embeddings (HF's default), so the
safetensors file holds `cls.predictions.transform.{dense,LayerNorm}.*` and
`cls.predictions.bias` but no decoder weight. Every parameter is randomized (LayerNorm and
biases included) so a Swift head that forgets one fails parity.

golden.h5 holds
  logits/{input_ids,attention_mask,logits}   a padded batch with [MASK] tokens, the MLM
                                             logits [B, T, V] at every position;
  pppl/sentences, pppl/token_ids (ragged, as one flat array + offsets), pppl/token_log_probs
                                             (one per scored piece: every piece but [CLS] and
                                             [SEP], each masked in turn — Salazar et al. 2020),
  pppl/pll                                   each sentence's pseudo-log-likelihood, and the
                                             root attribute `pppl` = exp(−Σ PLL / Σ pieces).

The pseudo-log-likelihoods come from two independent computations: HF's model on each
masked copy in torch float32, and a float64 numpy re-implementation of the MLM head over
HF's last hidden states; they must agree within PLL_CROSSCHECK_TOL.

Run with the reference venv:
  .venv-ref/bin/python scripts/make_mlm_golden.py
"""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import BertConfig, BertForMaskedLM, BertTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/Fixtures/tiny-mlm"
SEED = 20261202
# float32 torch vs float64 numpy over 95-way log-softmaxes of O(10) logits summed over at
# most ~12 pieces: float32 rounding gives ~1e-5; 1e-4 catches any formula difference.
PLL_CROSSCHECK_TOL = 1e-4

spec = importlib.util.spec_from_file_location("golden", ROOT / "scripts/make_model_golden.py")
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)

SENTENCES = [
    "the movie was very good",
    "i love this film and the story",
    "it was boring, but the end was fun!",
    "terrible plot",
    "the actor is great and the film is not bad",
    "ok",
]


def config(vocab_size: int) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
        hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0,
        architectures=["BertForMaskedLM"], tie_word_embeddings=True)


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def head64(model: BertForMaskedLM, hidden: np.ndarray) -> np.ndarray:
    """The MLM head in float64: dense → GELU → LayerNorm → tied decoder + bias."""
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    p = "cls.predictions."
    x = hidden @ sd[p + "transform.dense.weight"].T + sd[p + "transform.dense.bias"]
    x = gelu(x)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    x = (x - mean) / np.sqrt(var + model.config.layer_norm_eps)
    x = x * sd[p + "transform.LayerNorm.weight"] + sd[p + "transform.LayerNorm.bias"]
    return x @ sd["bert.embeddings.word_embeddings.weight"].T + sd[p + "bias"]


def log_softmax64(z: np.ndarray) -> np.ndarray:
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


@torch.no_grad()
def main() -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)
    vocab = golden.tiny_vocab()
    model = BertForMaskedLM(config(len(vocab))).to(torch.float32)
    golden.randomize_all(model, gen)
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(Path(tmp) / name, OUT / name)
    (OUT / "vocab.txt").write_text("\n".join(vocab) + "\n")
    model = BertForMaskedLM.from_pretrained(OUT, attn_implementation="eager", dtype=torch.float32).eval()
    tokenizer = BertTokenizer(str(OUT / "vocab.txt"), do_lower_case=True)
    mask_id = vocab.index("[MASK]")

    # Logits parity: three sequences (lengths 7, 12, 4), padded to 12, with [MASK]s.
    lengths = [7, 12, 4]
    T = max(lengths)
    ids = torch.zeros((len(lengths), T), dtype=torch.int64)
    att = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        body = torch.randint(5, len(vocab), (n - 2,), generator=gen)
        row = torch.cat([torch.tensor([vocab.index("[CLS]")]), body, torch.tensor([vocab.index("[SEP]")])])
        if n > 3:
            row[1 + b % (n - 2)] = mask_id
            row[n - 2] = mask_id
        ids[b, :n] = row
        att[b, :n] = 1
    logits = model(input_ids=ids, attention_mask=att).logits.numpy()

    # Pseudo-log-likelihoods: mask each piece in turn.
    flat, offsets, token_lp, plls = [], [0], [], []
    for text in SENTENCES:
        enc = tokenizer(text)["input_ids"]
        n = len(enc)
        copies = torch.tensor([enc] * (n - 2))
        for i in range(1, n - 1):
            copies[i - 1, i] = mask_id
        out = model(input_ids=copies, output_hidden_states=True)
        lp32 = torch.log_softmax(out.logits, -1).numpy()
        hidden = out.hidden_states[-1].double().numpy()
        lps, lps64 = [], []
        for i in range(1, n - 1):
            lps.append(float(lp32[i - 1, i, enc[i]]))
            lps64.append(float(log_softmax64(head64(model, hidden[i - 1, i]))[enc[i]]))
        assert abs(sum(lps) - sum(lps64)) < PLL_CROSSCHECK_TOL, (text, sum(lps), sum(lps64))
        flat += enc
        offsets.append(len(flat))
        token_lp += lps64
        plls.append(sum(lps64))
    pieces = sum(offsets[i + 1] - offsets[i] - 2 for i in range(len(SENTENCES)))
    pppl = math.exp(-sum(plls) / pieces)

    with h5py.File(OUT / "golden.h5", "w") as f:
        golden.write_root_attrs(f, seed=SEED, attn_implementation="eager", dtype="float32",
                                model_class="BertForMaskedLM", generator_script="scripts/make_mlm_golden.py",
                                pppl=pppl, scored_pieces=pieces)
        g = f.create_group("logits")
        g["input_ids"] = ids.numpy().astype(np.int64)
        g["attention_mask"] = att.numpy().astype(np.int64)
        g["logits"] = logits.astype(np.float32)
        g = f.create_group("pppl")
        g["sentences"] = np.array([s.encode() for s in SENTENCES], dtype=h5py.string_dtype())
        g["token_ids"] = np.array(flat, dtype=np.int64)
        g["offsets"] = np.array(offsets, dtype=np.int64)
        g["token_log_probs"] = np.array(token_lp, dtype=np.float32)
        g["pll"] = np.array(plls, dtype=np.float32)
    print(f"wrote {OUT}: pppl {pppl:.6f} over {pieces} pieces; PLL {[round(p, 4) for p in plls]}")


if __name__ == "__main__":
    main()
