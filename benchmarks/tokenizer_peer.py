#!/usr/bin/env python3
"""Peer throughput of HuggingFace's Rust BERT tokenizer, to compare with `kd bench tokenizer`.

Times `tokenizers` (the Rust backend behind transformers 5's `BertTokenizer`) on one thread
over a corpus of lines and prints word pieces per second, counted without [CLS]/[SEP] —
the same count Distillery's `measureTokenizerThroughput` reports. Two ways are timed:

  batch   Tokenizer.encode_batch(lines) with rayon limited to --threads
          (TOKENIZERS_PARALLELISM=false for 1 thread, RAYON_NUM_THREADS otherwise)
  single  a Python loop of Tokenizer.encode(line) — includes per-call Python overhead

and optionally (--slow) the pure-Python `BertTokenizerLegacy` (the golden set records its ids where they differ).

Corpus: --input FILE (one text per line), or by default the texts of
Tests/Fixtures/tokenizer/golden.jsonl repeated in a seeded shuffle until about --tokens
word pieces. --write-corpus PATH saves the lines used, so the Swift side can time the
identical input. Example:

  .venv-ref/bin/python benchmarks/tokenizer_peer.py --vocab .cache/minilm-l6/vocab.txt \
      --threads 1 --write-corpus /tmp/tok-corpus.txt
"""

import argparse
import json
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "Tests", "Fixtures", "tokenizer", "golden.jsonl")
SEED = 1234


def parse_args():
    p = argparse.ArgumentParser(description="HF tokenizers BERT WordPiece throughput (tokens/s)")
    p.add_argument("--vocab", default=os.path.join(ROOT, ".cache", "minilm-l6", "vocab.txt"))
    p.add_argument("--input", help="corpus, one text per line (default: golden texts, repeated)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tokens", type=int, default=200_000, help="target corpus size for the default corpus")
    p.add_argument("--repeats", type=int, default=5, help="timed passes; the best is reported")
    p.add_argument("--slow", action="store_true", help="also time the pure-Python slow tokenizer (one pass)")
    p.add_argument("--write-corpus", help="write the corpus lines used to this file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--kd", help="path to the kd binary: also run 'kd bench tokenizer' on the same corpus, same run")
    p.add_argument("--kd-model", default=os.path.join(ROOT, "teachers", "minilm-l6", "teacher.h5"),
                   help="Distillery model whose tokenizer kd uses (same vocabulary)")
    return p.parse_args()


def main():
    args = parse_args()
    # Thread limits must be in the environment before tokenizers starts its rayon pool.
    if args.threads <= 1:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        os.environ["RAYON_NUM_THREADS"] = "1"
    else:
        os.environ["TOKENIZERS_PARALLELISM"] = "true"
        os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    import tokenizers
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    if not os.path.isfile(args.vocab):
        sys.exit(f"error: no vocabulary at {args.vocab} — run scripts/fetch-teacher.sh or pass --vocab")
    tok = Tokenizer(WordPiece.from_file(args.vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()

    if args.input:
        with open(args.input, encoding="utf-8") as f:
            lines = f.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
    else:
        if not os.path.isfile(GOLDEN):
            sys.exit(f"error: no golden file at {GOLDEN} — run scripts/make_tokenizer_golden.py")
        with open(GOLDEN, encoding="utf-8") as f:
            texts = [json.loads(l)["text"] for l in f.read().split("\n")[1:] if l]
        # One corpus line per golden text; newlines inside texts would change line splitting.
        texts = [t.replace("\n", " ").replace("\r", " ") for t in texts]
        rng = random.Random(SEED)
        lines, count = [], 0
        while count < args.tokens:
            batch = texts[:]
            rng.shuffle(batch)
            for t in batch:
                lines.append(t)
                count += len(tok.encode(t, add_special_tokens=False).ids)
    if args.write_corpus:
        with open(args.write_corpus, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    def time_best(fn):
        fn()  # warm-up
        best, tokens = 0.0, 0
        for _ in range(args.repeats):
            start = time.perf_counter()
            tokens = fn()
            best = max(best, tokens / (time.perf_counter() - start))
        return tokens, best

    tokens, batch_rate = time_best(
        lambda: sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False)))
    _, single_rate = time_best(lambda: sum(len(tok.encode(l, add_special_tokens=False).ids) for l in lines))
    result = {"tokenizers": tokenizers.__version__, "threads": args.threads, "lines": len(lines),
              "tokens_per_pass": tokens, "batch_tokens_per_s": round(batch_rate),
              "single_tokens_per_s": round(single_rate)}
    if args.slow:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
        slow = BertTokenizerLegacy(args.vocab, do_lower_case=True)
        start = time.perf_counter()
        n = sum(len(slow.encode(l, add_special_tokens=False)) for l in lines)
        result["slow_python_tokens_per_s"] = round(n / (time.perf_counter() - start))
    if args.kd:
        import subprocess
        import tempfile
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
            f.write("\n".join(lines) + "\n")
            corpus = f.name
        try:
            out = subprocess.run([args.kd, "bench", "tokenizer", "--model", args.kd_model, "--input", corpus,
                                  "--repeats", str(args.repeats), "--json"], check=True, capture_output=True, text=True)
        finally:
            os.unlink(corpus)
        kd = json.loads(out.stdout)
        result["kd_tokens_per_s"] = round(kd["tokens_per_s"])
        result["kd_tokens_per_pass"] = kd["tokens"] // args.repeats
        result["kd_over_hf_loop"] = round(kd["tokens_per_s"] / single_rate, 2)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"HF tokenizers {result['tokenizers']} ({args.threads} thread): {len(lines)} lines, "
              f"{tokens} tokens/pass")
        print(f"  encode_batch : {result['batch_tokens_per_s']:>12,} tokens/s")
        print(f"  encode loop  : {result['single_tokens_per_s']:>12,} tokens/s")
        if "kd_tokens_per_s" in result:
            print(f"  kd (Swift)   : {result['kd_tokens_per_s']:>12,} tokens/s  "
                  f"({result['kd_over_hf_loop']}x HF's encode loop; {result['kd_tokens_per_pass']} tokens/pass)")
        if "slow_python_tokens_per_s" in result:
            print(f"  slow (Python): {result['slow_python_tokens_per_s']:>12,} tokens/s")


if __name__ == "__main__":
    main()
