#!/usr/bin/env python3
"""Writes the golden outputs that the Swift BERT forward pass is checked against.

Two fixtures, both made with HF transformers (PyTorch, fp32, eval mode, eager attention,
one thread) and written with h5py:

  tiny    Tests/Fixtures/tiny-bert/: a deterministic random BertForSequenceClassification
          (vocab ~100, hidden 32, 2 layers, 4 heads) with config.json, model.safetensors,
          vocab.txt and golden.h5 holding four input cases and every intermediate that
          parity and distillation tests need (all hidden states and attention maps).
  minilm  Tests/Fixtures/minilm-l6/: the real teacher (all-MiniLM-L6-v2) run over
          sentences.txt; golden.h5 holds token ids, last_hidden_state, pooler_output and
          the sentence-transformers embedding (masked mean, then L2 normalization).

Every parameter of the tiny model is randomized, LayerNorm gammas/betas and biases
included, so that a Swift forward pass that forgets any of them fails parity.
Nothing is fetched from a hub (HF_HUB_OFFLINE=1); the teacher is read from the local
directory that scripts/fetch-teacher.sh fills.

Run with the reference venv (scripts/setup-reference-env.sh):
  .venv-ref/bin/python scripts/make_model_golden.py tiny
  .venv-ref/bin/python scripts/make_model_golden.py minilm [--model-dir .cache/minilm-l6]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FORMAT = "distillery-golden"
FORMAT_VERSION = 1

# Sentence-embedding cross-check: torch float32 pooling vs an independent numpy float64
# computation. Both sum at most 128 vectors of magnitude ~1 and divide by a norm of ~1,
# so float32 rounding stays near 1e-7; 1e-6 leaves room without hiding a wrong formula.
EMBEDDING_CROSSCHECK_TOL = 1e-6


def generator_attr() -> str:
    return (f"scripts/make_model_golden.py (torch {torch.__version__}, "
            f"transformers {transformers.__version__}, h5py {h5py.__version__}, numpy {np.__version__})")


def write_root_attrs(f: h5py.File, **extra) -> None:
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["generator"] = generator_attr()
    for k, v in extra.items():
        f.attrs[k] = v


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# tiny: random BERT classifier
# ---------------------------------------------------------------------------------------

TINY_SEED = 20240611
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_vocab() -> list[str]:
    """A ~100-token WordPiece vocabulary: specials, single characters, words, ##pieces."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    digits = [str(d) for d in range(10)]
    punct = list(".,!?'-:;()\"")
    words = ["the", "a", "is", "was", "not", "good", "bad", "movie", "film", "great",
             "terrible", "very", "and", "but", "it", "this", "that", "i", "love", "hate",
             "plot", "actor", "ok", "fine", "boring", "fun", "story", "end", "play", "run"]
    pieces = ["##s", "##ed", "##ing", "##ly", "##er", "##est", "##a", "##e", "##i", "##o",
              "##n", "##t", "##y", "##1", "##0"]
    vocab = SPECIAL + letters + digits + punct + words + pieces
    # "i" and "a" are both letters and words: keep the first occurrence only.
    seen, out = set(), []
    for tok in vocab:
        if tok not in seen:
            seen.add(tok)
            out.append(tok)
    return out


def tiny_config(vocab_size: int) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
        hidden_act="gelu", layer_norm_eps=1e-12, hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1, pad_token_id=0, num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
        architectures=["BertForSequenceClassification"],
        tie_word_embeddings=False,  # no LM head here; say so instead of transformers' default
    )


@torch.no_grad()
def randomize_all(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Draws every parameter so each one moves the outputs.

    Matrices and embeddings use std 0.2 rather than BERT's 0.02 init: with hidden 32 the
    0.02 init gives attention scores ~0.05, i.e. near-uniform attention, where a wrong
    softmax scale or a dropped mask would hide inside the tolerance.
    """
    for name, p in model.named_parameters():
        if "LayerNorm.weight" in name:
            p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
        elif name.endswith(".bias") or "LayerNorm.bias" in name:
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        elif "embeddings" in name:
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
        else:
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))


def tiny_cases(vocab: list[str], gen: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    """Four input cases: single, padded (lengths 5/12/9), pair (two segments), maxlen (64)."""
    pad, cls, sep = vocab.index("[PAD]"), vocab.index("[CLS]"), vocab.index("[SEP]")
    first_normal = len(SPECIAL)

    def body(n: int) -> list[int]:
        ids = torch.randint(first_normal, len(vocab), (n,), generator=gen).tolist()
        if n >= 4:
            ids[n // 2] = vocab.index("[UNK]")  # one unknown token inside each longer body
        return ids

    def batch(rows: list[tuple[list[int], list[int]]], T: int) -> dict[str, torch.Tensor]:
        B = len(rows)
        ids = torch.full((B, T), pad, dtype=torch.int64)
        mask = torch.zeros((B, T), dtype=torch.int64)
        types = torch.zeros((B, T), dtype=torch.int64)
        for b, (toks, segs) in enumerate(rows):
            ids[b, :len(toks)] = torch.tensor(toks)
            mask[b, :len(toks)] = 1
            types[b, :len(toks)] = torch.tensor(segs)
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def single(n: int) -> tuple[list[int], list[int]]:
        toks = [cls] + body(n - 2) + [sep]
        return toks, [0] * n

    def pair(n_a: int, n_b: int) -> tuple[list[int], list[int]]:
        toks = [cls] + body(n_a) + [sep] + body(n_b) + [sep]
        return toks, [0] * (n_a + 2) + [1] * (n_b + 1)

    return {
        "single": batch([single(12)], 12),
        "padded": batch([single(5), single(12), single(9)], 12),
        "pair": batch([pair(4, 6), pair(3, 4)], 13),  # lengths 13 and 10
        "maxlen": batch([single(64)], 64),
    }


def make_tiny(out_dir: Path) -> None:
    torch.manual_seed(TINY_SEED)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(TINY_SEED)
    vocab = tiny_vocab()
    config = tiny_config(len(vocab))
    model = BertForSequenceClassification(config).to(torch.float32)
    randomize_all(model, gen)
    model.eval()
    model.config._attn_implementation = "eager"  # noqa: SLF001 -- explicit attention path

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(Path(tmp) / name, out_dir / name)
    (out_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")

    # Reload from disk so the golden comes from exactly the committed files.
    model = BertForSequenceClassification.from_pretrained(out_dir, attn_implementation="eager",
                                                          dtype=torch.float32).eval()
    cases = tiny_cases(vocab, gen)
    with h5py.File(out_dir / "golden.h5", "w") as f:
        write_root_attrs(f, seed=TINY_SEED, attn_implementation="eager", dtype="float32",
                         model_class="BertForSequenceClassification",
                         padded_positions="kept: outputs at attention_mask=0 positions are "
                                          "HF's values; compare only mask=1 positions")
        for case, inputs in cases.items():
            with torch.inference_mode():
                out = model(**inputs, output_hidden_states=True, output_attentions=True,
                            return_dict=True)
                base = model.bert(**inputs, return_dict=True)  # pooler_output lives here
            g = f.create_group(case)
            for k, v in inputs.items():
                g.create_dataset(k, data=v.numpy().astype(np.int64))
            g.create_dataset("last_hidden_state", data=out.hidden_states[-1].numpy().astype(np.float32))
            g.create_dataset("pooler_output", data=base.pooler_output.numpy().astype(np.float32))
            g.create_dataset("logits", data=out.logits.numpy().astype(np.float32))
            g.create_dataset("hidden_states",
                             data=torch.stack(out.hidden_states).numpy().astype(np.float32))
            g.create_dataset("attentions", data=torch.stack(out.attentions).numpy().astype(np.float32))
            # The classifier path must agree with the bare encoder it wraps.
            assert torch.equal(base.last_hidden_state, out.hidden_states[-1]), case
    size = sum(p.stat().st_size for p in out_dir.iterdir())
    print(f"tiny: wrote {out_dir.relative_to(ROOT)} ({size / 1024:.0f} KiB, "
          f"vocab {len(vocab)}, {sum(p.numel() for p in model.parameters())} parameters)")


# ---------------------------------------------------------------------------------------
# minilm: real teacher golden
# ---------------------------------------------------------------------------------------

MINILM_MAX_LENGTH = 128  # the golden's truncation length (the teacher's ST config says 256)
MINILM_BATCH = 16


def mean_pool_normalize_torch(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sentence-transformers Pooling(mean) + Normalize, as they compute it (float32)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * m).sum(1)
    counts = torch.clamp(m.sum(1), min=1e-9)
    return torch.nn.functional.normalize(summed / counts, p=2, dim=1)


def mean_pool_normalize_numpy(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Independent float64 re-computation from the stored hidden states."""
    out = np.empty((hidden.shape[0], hidden.shape[2]), dtype=np.float64)
    for i in range(hidden.shape[0]):
        rows = hidden[i][mask[i] == 1].astype(np.float64)
        mean = rows.mean(axis=0)
        out[i] = mean / np.linalg.norm(mean)
    return out


def make_minilm(model_dir: Path, out_dir: Path) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    sentences_path = out_dir / "sentences.txt"
    sentences = [s for s in sentences_path.read_text(encoding="utf-8").split("\n") if s]
    if any(not s.strip() for s in sentences):
        sys.exit(f"{sentences_path}: blank line found — one sentence per line, no empty lines")
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager",
                                      dtype=torch.float32).eval()
    has_pooler = model.pooler is not None

    enc = tokenizer(sentences, padding="longest", truncation=True, max_length=MINILM_MAX_LENGTH,
                    return_tensors="pt")
    ids, mask, types = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
    N, T = ids.shape
    hidden = torch.zeros((N, T, model.config.hidden_size), dtype=torch.float32)
    pooled = torch.zeros((N, model.config.hidden_size), dtype=torch.float32)
    with torch.inference_mode():
        for s in range(0, N, MINILM_BATCH):
            sl = slice(s, s + MINILM_BATCH)
            # Each batch is run at the global padded length T, as the Swift test will.
            out = model(input_ids=ids[sl], attention_mask=mask[sl], token_type_ids=types[sl])
            hidden[sl] = out.last_hidden_state
            if has_pooler:
                pooled[sl] = out.pooler_output
    embedding = mean_pool_normalize_torch(hidden, mask)
    hidden_zeroed = hidden * mask.unsqueeze(-1).to(hidden.dtype)

    # Cross-check the pooling against numpy (float64) from the stored states.
    ref = mean_pool_normalize_numpy(hidden_zeroed.numpy(), mask.numpy())
    err = float(np.abs(ref - embedding.numpy().astype(np.float64)).max())
    if err > EMBEDDING_CROSSCHECK_TOL:
        sys.exit(f"sentence_embedding cross-check failed: max |torch - numpy| = {err:.3g} "
                 f"> {EMBEDDING_CROSSCHECK_TOL}")

    weights = model_dir / "model.safetensors"
    lengths = mask.sum(1)
    truncated = sum(len(tokenizer(s)["input_ids"]) > MINILM_MAX_LENGTH for s in sentences)
    gz = {"compression": "gzip", "compression_opts": 9, "shuffle": True}
    with h5py.File(out_dir / "golden.h5", "w") as f:
        write_root_attrs(
            f, teacher="sentence-transformers/all-MiniLM-L6-v2",
            teacher_weights_sha256=sha256_file(weights), attn_implementation="eager",
            dtype="float32", max_length=MINILM_MAX_LENGTH, sentence_count=N,
            sentences_file="sentences.txt", truncated_sentences=int(truncated),
            padded_positions="zeroed: last_hidden_state is 0 where attention_mask=0",
            pooling="mean over attention_mask=1 tokens, then L2 normalize (eps 1e-12)",
            has_pooler=has_pooler,
            embedding_crosscheck_max_abs=err,
        )
        f.create_dataset("input_ids", data=ids.numpy().astype(np.int64), **gz)
        f.create_dataset("attention_mask", data=mask.numpy().astype(np.int64), **gz)
        f.create_dataset("token_type_ids", data=types.numpy().astype(np.int64), **gz)
        f.create_dataset("last_hidden_state", data=hidden_zeroed.numpy().astype(np.float32), **gz)
        f.create_dataset("sentence_embedding", data=embedding.numpy().astype(np.float32), **gz)
        if has_pooler:
            f.create_dataset("pooler_output", data=pooled.numpy().astype(np.float32), **gz)
    size = (out_dir / "golden.h5").stat().st_size
    print(f"minilm: {N} sentences, padded length {T}, token lengths {int(lengths.min())}.."
          f"{int(lengths.max())}, {truncated} truncated, pooler={has_pooler}, "
          f"embedding cross-check max abs {err:.2e}, golden.h5 {size / 1024:.0f} KiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="which", required=True)
    t = sub.add_parser("tiny", help="random tiny BERT classifier fixture")
    t.add_argument("--out", type=Path, default=ROOT / "Tests/Fixtures/tiny-bert")
    m = sub.add_parser("minilm", help="all-MiniLM-L6-v2 golden over sentences.txt")
    m.add_argument("--model-dir", type=Path, default=ROOT / ".cache/minilm-l6")
    m.add_argument("--out", type=Path, default=ROOT / "Tests/Fixtures/minilm-l6")
    args = ap.parse_args()
    if args.which == "tiny":
        make_tiny(args.out)
    else:
        if not (args.model_dir / "model.safetensors").exists():
            sys.exit(f"no teacher weights at {args.model_dir}/model.safetensors — "
                     "run scripts/fetch-teacher.sh first")
        make_minilm(args.model_dir, args.out)


if __name__ == "__main__":
    main()
