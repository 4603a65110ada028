#!/usr/bin/env python3
"""Generate the kd CLI test fixtures in Tests/Fixtures/cli/ (deterministic, no randomness).

  weightio-vocab.txt   50-token WordPiece vocabulary matching the weightio state dict (vocab 50)
  weightio-config.json HF config.json for the weightio state dict (hidden 8, 2 layers, 2 heads,
                       FFN 16, 10 positions, 3 labels), so `kd import` reads every weightio layout
  sentences.txt        test lines: punctuation, WordPiece splits, accents, quotes, tab,
                       backslash, emoji, a CJK ideograph
  sentences.ids        HF BertTokenizer(tiny-bert/vocab.txt, do_lower_case=True) ids of each line,
                       [CLS]/[SEP] included — the expected output of `kd tokenize`

Bad inputs are not committed: Tests/CLITests makes them in a temp directory.
Needs transformers (the reference venv). Usage: .venv-ref/bin/python scripts/make_cli_fixtures.py
"""
import json
from pathlib import Path

from transformers import BertTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "cli"

SENTENCES = [
    "The movie was great!",
    "I love this film, but the plot is boring.",
    "Playing runs ended fun-ly",
    "Naïve CAFÉ 2024?",
    'zzz qqq "ok" (fine)',
    "it\twas \\ ok \U0001F600 \u201cfine\u201d \u4e2d end",
]

CONFIG = {
    "architectures": ["BertForSequenceClassification"],
    "model_type": "bert", "hidden_act": "gelu",
    "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16,
    "max_position_embeddings": 10, "type_vocab_size": 2, "vocab_size": 50,
    "layer_norm_eps": 1e-12, "pad_token_id": 0,
    "id2label": {"0": "negative", "1": "neutral", "2": "positive"},
    "label2id": {"negative": 0, "neutral": 1, "positive": 2},
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    vocab = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
             + [str(d) for d in range(10)] + [".", "!", "?", "the", "is", "good", "bad", "##s", "##ed"])
    assert len(vocab) == CONFIG["vocab_size"]
    (OUT / "weightio-vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (OUT / "weightio-config.json").write_text(json.dumps(CONFIG, indent=2) + "\n", encoding="utf-8")
    (OUT / "sentences.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8", newline="\n")
    tokenizer = BertTokenizer(str(ROOT / "Tests" / "Fixtures" / "tiny-bert" / "vocab.txt"), do_lower_case=True)
    ids = [" ".join(map(str, tokenizer(s)["input_ids"])) for s in SENTENCES]
    (OUT / "sentences.ids").write_text("\n".join(ids) + "\n", encoding="utf-8")
    print(f"wrote {len(list(OUT.iterdir()))} files to {OUT}")


if __name__ == "__main__":
    main()
