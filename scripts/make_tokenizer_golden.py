#!/usr/bin/env python3
"""Write the tokenizer golden files that Tests/TokenizationTests compares against.

Reference: HuggingFace's *slow* (pure-Python) BERT tokenizer. In transformers 5 it is
`transformers.models.bert.tokenization_bert_legacy.BertTokenizerLegacy`; the name
`BertTokenizer` now means the Rust-backed (`tokenizers`) class. We use the slow one as
the reference because it is the readable specification of BERT tokenization, and we
record the fast tokenizer's ids too wherever they differ ("fast_ids"), so the known
slow/fast differences are visible in the golden file itself:

  * Greek final sigma: slow lowercases whole words with Python's `str.lower()`, which
    maps a word-final 'Σ' to 'ς'; the Rust normalizer lowercases per character ('σ').
  * Unicode version: Python 3.11's `unicodedata` is Unicode 14.0, where characters added
    later (e.g. U+1FAE8 SHAKING FACE, Unicode 15) are unassigned (Cn) and dropped as
    "control"; the Rust side keeps them and yields [UNK].
  * NFC: the slow basic tokenizer NFC-normalizes the text before splitting; the Rust
    normalizer does not. Only visible with lowercase=False (no NFD afterwards).

Outputs (all under Tests/Fixtures/tokenizer/):
  golden.jsonl        real bert-base-uncased vocab (30522 tokens), lowercase=True
  small-vocab.txt     a ~300-token vocabulary generated here
  golden-small.jsonl  small vocab, both lowercase=True and lowercase=False (cased)

Every .jsonl starts with one header object {"format": "distillery-tokenizer-golden",
"version": 1, ...}; every later line is one case. Run with the reference venv:

  .venv-ref/bin/python scripts/make_tokenizer_golden.py [--vocab .cache/minilm-l6/vocab.txt]
"""

import argparse
import hashlib
import json
import os
import platform
import random
import sys
import unicodedata

import tokenizers
import transformers
from transformers import BertTokenizer as BertTokenizerFast  # Rust-backed in transformers 5
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "Tests", "Fixtures", "tokenizer")
FORMAT = "distillery-tokenizer-golden"
VERSION = 1
SEED = 20240531
MAX_LENGTH = 16  # the "ids_max16" field: single-sequence truncation to 16 ids
PAIR_MAX_LENGTHS = [7, 8, 11, 16, 24]  # odd and even, to cover longest_first's split rule

# ---------------------------------------------------------------------------
# Hand-written lines, grouped by what they exercise.
# ---------------------------------------------------------------------------
ENGLISH = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Knowledge distillation compresses a large teacher into a small student.",
    "I can't believe it's not butter -- isn't it?",
    "unaffable unbelievable antidisestablishmentarianism",
    "She said: \"Don't go there.\" He replied; 'Why not?'",
    "THIS IS ALL UPPERCASE AND SHOUTING",
    "MiXeD CaSe WoRdS aNd CamelCaseIdentifiers like getHTTPResponseCode",
    "snake_case_identifier and kebab-case-identifier and dotted.name.path",
    "The year 1999, the price $1,234.56, and 3.14159 are numbers.",
    "Phone: +1 (555) 123-4567; ZIP 94103-1234; 10,000,000 people; 1.000.000,00 EUR",
    "E=mc^2 and a+b=c; x<y>z; 50% off; #1 rank; a&b; a|b; a~b; a`b`",
    "Ellipsis... and dashes — en – em — and bullets • here",
    "“Curly quotes” and ‘single curly’ and «guillemets» and „low quotes“",
    "Mr. Smith went to Washington D.C. at 5 p.m. on Jan. 3rd.",
    "a",
    "I",
    ".",
    "...",
    "!!!???",
    "hello world",
    "  leading and trailing spaces  ",
]
ACCENTS = [
    "café naïve Ångström résumé",
    "Café NAÏVE ÅNGSTRÖM RÉSUMÉ",
    "crème brûlée, jalapeño, piñata, façade, coöperate, Zoë, Brontë",
    "São Paulo, Málaga, Kraków, Łódź, Dvořák, Erdős, Ærøskøbing",
    "cafe\u0301 (decomposed e + U+0301) vs café (precomposed)",
    "A\u030a vs \u00c5 vs \u212b (Angstrom sign)",
    "Straße, STRASSE, Fußball, groß, ẞ capital sharp s",
    "İstanbul, ıslak, Iİ ıi, DİYARBAKIR, İİİ",
    "Ÿ ÿ Œuvre œuvre Æsir æsir Ð ð Þ þ Ø ø",
    "ǅ ǆ Ǆ ǈ ǋ (titlecase digraphs)",
    "ﬁne ﬂow ﬀ ﬃ (ligatures)",
]
SCRIPTS = [
    "Η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο.",
    "ΟΔΟΣ ΟΔΟΣ. ΣΟΦΟΣ ΣΟΦΟΣ! Σ ΣΣ ΑΣ ΑΣ' ΑΣ-Β",
    "Ἀθῆναι ᾅδης ὤ ᾠδή (polytonic Greek)",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "ПРИВЕТ МИР Ёлка ёлка Й й",
    "Українська: ґанок, їжак, є, і",
    "مرحبا بالعالم، كيف حالك؟",
    "السَّلَامُ عَلَيْكُمْ (with harakat)",
    "שלום עולם! מה שלומך?",
    "בְּרֵאשִׁית בָּרָא (with niqqud)",
    "नमस्ते दुनिया। आप कैसे हैं?",
    "हिन्दी में क्षत्रिय ज्ञान",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง",
    "我爱自然语言处理。今天天气很好！",
    "知識蒸留は大きなモデルを小さくします。",
    "ひらがな カタカナ ｶﾀｶﾅ (halfwidth katakana)",
    "한국어 문장입니다. 안녕하세요!",
    "混合 text 中文English日本語한국어",
    "𠀀𠀁 𪜀 𫝀 𫠠 𬺰 (CJK extension B-F)",
    "豈 更 車 (CJK compatibility ideographs) 丽 丸",
    "Ⓐ ⓑ ① ⅻ Ⅻ ㈠ ㊀ (enclosed and roman numerals)",
    "ქართული ენა, Հայերեն, አማርኛ, ᏣᎳᎩ",
    "Tiếng Việt có nhiều dấu: Nguyễn, Đường, ướt",
    "Yorùbá: Ẹ ǹlẹ́ o, Ọ̀rẹ́",
]
EMOJI = [
    "I love it 😀😃😄 so much!!!",
    "👍🏽 thumbs up with skin tone, 👋🏿 wave",
    "family 👨‍👩‍👧‍👦 and couple 👩‍❤️‍👨 ZWJ sequences",
    "flags 🇺🇸 🇯🇵 🇩🇪 🏴‍☠️ 🏳️‍🌈",
    "keycaps 1️⃣ #️⃣ *️⃣ and hearts ❤️ ♥ 💔",
    "new emoji from Unicode 15: 🫨 🩷 🫎 and 14: 🫠 🫶",
    "text🙂without🙂spaces",
    "🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖",
]
WEB = [
    "Visit https://www.example.com/path/to/page?query=1&lang=en#section now",
    "http://user:pass@host.example.org:8080/a_b-c.d~e",
    "Email me at john.doe+tag@example.co.uk or JANE_DOE@Example.COM",
    "@mention @User_123 #hashtag #NLProc #DeepLearning2024",
    "RT @nlp_fan: Distillation FTW!!! 🔥🔥 https://t.co/AbC123xyz #ml #ai",
    "lol omg this is sooooo goooood 😂😂 #blessed",
    "<html><body class=\"x\">Hello &amp; welcome</body></html>",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "C:\\Users\\name\\Documents\\file.txt and /usr/local/bin/python3",
    "v1.2.3-beta+build.456 and 192.168.0.1:443",
    "[CLS] already here [SEP] and [MASK] inside, [PAD] and [UNK]",
    "x[MASK]y[SEP]z and [sep] [Cls] lowercase are not special",
    "[[SEP]] [SEP[SEP]]",
    "[SE\u0001P] and [MA\u200bSK] re-form special tokens after cleanup",
]
WHITESPACE = [
    "tab\tseparated\tvalues",
    "new\nline\r\ncarriage\rreturn",
    "no\u00a0break\u00a0space",
    "em\u2003space\u2002en\u2009thin\u200ahair",
    "ideographic\u3000space\u3000here",
    "zero\u200bwidth\u200bspace",
    "zero\u200dwidth\u200cjoiners",
    "\ufeffBOM at start",
    "line\u2028separator\u2029paragraph",
    "narrow\u202fnbsp\u205fmath\u1680ogham",
    "   ",
    "\t\t\n",
    "\u00a0\u3000\u2003",
    "",
]
CONTROL = [
    "control\u0001chars\u0007here\u007f",
    "next\u0085line and vertical\u000btab and form\u000cfeed",
    "null\u0000byte",
    "replacement \ufffd char \ufffd\ufffd",
    "\u001c\u001d\u001e\u001f separators",
    "soft\u00adhyphen and\u2060word joiner and \u200eLRM\u200f",
    "private use \ue000\uf8ff and noncharacter \ufdd0",
    "\u0301 combining acute alone",
    "\u0301\u0308\u0327",
    "a\u0301\u0301\u0301 stacked",
    "Zalgo: Z\u0351\u036b\u0343a\u0352l\u0313g\u0301o\u0358",
]
SYMBOLS = [
    "∀x∈ℝ: x² ≥ 0, ∑ᵢ aᵢ = ∫ f(x) dx ≈ π ≠ ∞",
    "√2 ≤ ∛9, α+β=γ, ∂f/∂x, ∇·F, ⊕ ⊗ ⊂ ⊆ ∪ ∩",
    "Prices: $5, €10, £20, ¥300, ₹400, ₩500, ₿0.01, ¢99",
    "Ｆｕｌｌｗｉｄｔｈ　ｌｅｔｔｅｒｓ　ＡＢＣ　１２３！？",
    "°C ℃ ℉ № ™ ® © § ¶ † ‡ ‰",
    "←→↑↓⇒⇔ ★☆ ♠♣♥♦ ✓✗ ☺☹",
    "½ ¼ ¾ ⅓ ² ³ ¹ ⁰ ₀ ₁",
    "ｈｅｌｌｏ ｗｏｒｌｄ",
    "¿Qué? ¡Olé! «Oui» ‹non›",
    "a/b\\c|d_e-f+g=h*i&j^k%l$m#n@o!p~q`r",
    "((((nested)))) [[[brackets]]] {{{braces}}}",
    "--- *** ___ === ~~~ ^^^",
]
LONG = [
    "a" * 100,
    "a" * 101,
    "b" * 99 + " short",
    "x" * 250,
    "supercalifragilisticexpialidocious" * 3,
    "ab" * 49 + "é",  # 99 characters, the last one accented (stripped before counting)
    "ab" * 50 + "e\u0301",  # 100 characters + a combining mark removed by stripping
    "é" * 101,
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    ("word " * 80).strip(),
    "中" * 120,
    "1234567890" * 11,
]

# ---------------------------------------------------------------------------
# Seeded random lines: fragments from pools, joined by random separators.
# ---------------------------------------------------------------------------
POOL_WORDS = (
    "the of and to in is was for on that with as by at from this be are it an or "
    "distillation student teacher model layer attention embedding token vocabulary "
    "running jumped happily unbelievable tokenization preprocessing reimplementation "
    "Apple GOOGLE Microsoft OpenAI iPhone eBay McDonald's O'Neil rock'n'roll "
    "café naïve résumé Ångström Straße İzmir ıspanak Ελλάδα Москва Київ "
    "東京 北京 서울 ไทย مرحبا שלום नमस्ते"
).split()
POOL_PUNCT = list(".,;:!?-—–…'\"()[]{}<>/\\|@#$%^&*_+=~`“”‘’«»¿¡§¶•")
POOL_EMOJI = ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "🔥", "🫠", "🫨", "🤷‍♀️", "✌🏻", "🏳️‍🌈", "1️⃣"]
POOL_NUMBERS = ["42", "3.14", "1,000", "10.000,5", "-7", "+1e-9", "0x1F", "2024-05-31", "12:30", "½", "٣", "५"]
POOL_SEPARATORS = [" ", " ", " ", " ", "", "  ", "\t", "\n", "\u00a0", "\u3000", "\u200b", "\u2003", "\u0001", "\ufeff"]
# Code-point ranges to sample single characters from (no surrogates: not valid in Swift strings).
POOL_RANGES = [
    (0x00A0, 0x024F), (0x0300, 0x036F), (0x0370, 0x03FF), (0x0400, 0x04FF),
    (0x0590, 0x06FF), (0x0900, 0x097F), (0x0E00, 0x0E7F), (0x1E00, 0x1FFF),
    (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x22FF), (0x2460, 0x24FF),
    (0x3000, 0x30FF), (0x3400, 0x3420), (0x4E00, 0x4E80), (0xAC00, 0xAC80),
    (0xF900, 0xF920), (0xFB00, 0xFB4F), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF),
    (0x1F300, 0x1F64F), (0x1F900, 0x1FAFF), (0x20000, 0x20010), (0x1D400, 0x1D4FF),
]


def random_fragment(rng):
    kind = rng.random()
    if kind < 0.45:
        word = rng.choice(POOL_WORDS)
        case = rng.random()
        if case < 0.15:
            word = word.upper()
        elif case < 0.25:
            word = word.capitalize()
        return word
    if kind < 0.60:
        return "".join(rng.choice(POOL_PUNCT) for _ in range(rng.randint(1, 4)))
    if kind < 0.70:
        return rng.choice(POOL_EMOJI)
    if kind < 0.80:
        return rng.choice(POOL_NUMBERS)
    lo, hi = rng.choice(POOL_RANGES)
    return "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 5)))


def random_line(rng):
    parts = []
    for _ in range(rng.randint(1, 14)):
        parts.append(random_fragment(rng))
        parts.append(rng.choice(POOL_SEPARATORS))
    return "".join(parts[:-1])


def all_lines():
    rng = random.Random(SEED)
    lines = ENGLISH + ACCENTS + SCRIPTS + EMOJI + WEB + WHITESPACE + CONTROL + SYMBOLS + LONG
    while len(lines) < 480:
        lines.append(random_line(rng))
    return lines


# ---------------------------------------------------------------------------
# Small vocabulary: specials, characters, continuation pieces, some words.
# ---------------------------------------------------------------------------
def small_vocab():
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [chr(c) for c in range(33, 127)]  # every printable ASCII character
    tokens += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    tokens += ["##" + c for c in "ABCDEFGHIJ"]
    tokens += ("the of and to in is was for hello world un ##aff ##able ##s ##ed ##ing ##ly "
               "dist ##ill ##ation student teacher model token ##izer run ##ning jump ##ed "
               "happy ##ily quick brown fox lazy dog over great ##est").split()
    tokens += ["The", "Hello", "World", "UN", "##AFF", "Dog", "Fox", "STUDENT"]  # cased forms
    tokens += ["é", "##é", "è", "ü", "##ü", "ö", "ñ", "ç", "ß", "##ß", "å", "ø", "æ", "ı", "i\u0307"]
    tokens += ["café", "naïve", "Café", "Ångström", "angstrom", "resume", "résumé", "##ï", "ï",
               "straße", "Straße", "##ve", "na", "caf", "##e", "Ö", "É", "Å", "İ"]
    tokens += ["σ", "ς", "ο", "##ς", "##σ", "##ο", "##δ", "##ος", "δ", "σοφ", "##οφ", "α", "β", "γ", "π"]
    tokens += ["中", "文", "日", "本", "한", "##국", "ア", "##イ", "😀", "##😀", "€", "$", "£", "¥", "–", "—", "…"]
    tokens += ["##" + w for w in ["world", "hello", "the", "model", "er", "est", "ation"]]
    tokens += ["12", "##34", "100", "##00", "2024", "##.", "##,", "x", "##x"]
    seen, out = set(), []
    for t in tokens:  # first occurrence wins here; duplicates are tested separately in Swift
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def header(extra):
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "reference": "transformers.models.bert.tokenization_bert_legacy.BertTokenizerLegacy (slow, pure Python)",
        "also_compared": "transformers.BertTokenizer (Rust tokenizers backend); 'fast_ids' present only where it differs",
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
        "unicodedata": unicodedata.unidata_version,
        "seed": SEED,
    }
    meta.update(extra)
    return meta


def write_jsonl(path, meta, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(meta, ensure_ascii=False) + "\n")
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", default=os.path.join(ROOT, ".cache", "minilm-l6", "vocab.txt"),
                        help="bert-base-uncased vocab.txt (30522 lines)")
    args = parser.parse_args()
    if not os.path.isfile(args.vocab):
        sys.exit(f"error: no vocabulary at {args.vocab} — run scripts/fetch-teacher.sh first, or pass --vocab")
    os.makedirs(OUT_DIR, exist_ok=True)
    lines = all_lines()

    # Real vocabulary, uncased.
    slow = BertTokenizerLegacy(args.vocab, do_lower_case=True, tokenize_chinese_chars=True, strip_accents=None)
    fast = BertTokenizerFast(vocab=args.vocab, do_lower_case=True, tokenize_chinese_chars=True, strip_accents=None)
    rows, fast_diffs = [], 0
    for i, text in enumerate(lines):
        ids = slow(text)["input_ids"]
        row = {"text": text, "tokens": slow.tokenize(text), "ids": ids,
               "ids_max16": slow(text, max_length=MAX_LENGTH, truncation=True)["input_ids"]}
        fast_ids = fast(text)["input_ids"]
        if fast_ids != ids:
            row["fast_ids"] = fast_ids
            fast_diffs += 1
        if i % 4 == 1:  # a quarter of the lines also get a sentence pair
            pair = lines[(i * 7 + 3) % len(lines)]
            enc = slow(text, pair, return_token_type_ids=True)
            max_len = PAIR_MAX_LENGTHS[(i // 4) % len(PAIR_MAX_LENGTHS)]
            trunc = slow(text, pair, max_length=max_len, truncation=True, return_token_type_ids=True)
            row.update({"pair": pair, "pair_ids": enc["input_ids"], "pair_type_ids": enc["token_type_ids"],
                        "pair_max_length": max_len, "pair_ids_trunc": trunc["input_ids"],
                        "pair_type_ids_trunc": trunc["token_type_ids"]})
        rows.append(row)
    meta = header({"vocab": "bert-base-uncased (MiniLM-L6 vocab.txt)", "vocab_sha256": sha256_file(args.vocab),
                   "lowercase": True, "strip_accents": None, "tokenize_chinese_chars": True,
                   "lines": len(rows), "fast_differs": fast_diffs})
    write_jsonl(os.path.join(OUT_DIR, "golden.jsonl"), meta, rows)
    print(f"golden.jsonl: {len(rows)} lines, {fast_diffs} differ between slow and fast")

    # Small committed vocabulary, uncased and cased.
    vocab_path = os.path.join(OUT_DIR, "small-vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(small_vocab()) + "\n")
    small = {"uncased": (BertTokenizerLegacy(vocab_path, do_lower_case=True),
                         BertTokenizerFast(vocab=vocab_path, do_lower_case=True)),
             "cased": (BertTokenizerLegacy(vocab_path, do_lower_case=False),
                       BertTokenizerFast(vocab=vocab_path, do_lower_case=False))}
    rows, fast_diffs = [], 0
    for text in lines:
        row = {"text": text}
        for name, (s, f) in small.items():
            ids = s(text)["input_ids"]
            row[name] = {"tokens": s.tokenize(text), "ids": ids}
            fast_ids = f(text)["input_ids"]
            if fast_ids != ids:
                row[name]["fast_ids"] = fast_ids
                fast_diffs += 1
        rows.append(row)
    meta = header({"vocab": "Tests/Fixtures/tokenizer/small-vocab.txt", "vocab_sha256": sha256_file(vocab_path),
                   "strip_accents": None, "tokenize_chinese_chars": True,
                   "lines": len(rows), "fast_differs": fast_diffs})
    write_jsonl(os.path.join(OUT_DIR, "golden-small.jsonl"), meta, rows)
    print(f"golden-small.jsonl: {len(rows)} lines, {fast_diffs} (line, casing) results differ between slow and fast")


if __name__ == "__main__":
    main()
