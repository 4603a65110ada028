#!/usr/bin/env python3
"""Write the tokenizer golden files that Tests/TokenizationTests compares against.

Reference: transformers 5's default `BertTokenizer`, i.e. the Rust `tokenizers` backend
(BertNormalizer + BertPreTokenizer + WordPiece) — also what sentence-transformers runs.
The slow pure-Python class, `transformers.models.bert.tokenization_bert_legacy.
BertTokenizerLegacy`, is recorded too wherever it differs ("slow_ids"), so the known
slow/fast differences are visible in the golden files themselves (README "Tokenizer"):

  * Greek final sigma: slow lowercases whole words with Python's `str.lower()`, which
    maps a word-final 'Σ' to 'ς'; the Rust normalizer lowercases per character ('σ').
  * Unicode versions: slow uses Python 3.11's `unicodedata` (Unicode 14.0, and unassigned
    code points count as "control" and vanish); the Rust side takes control/Mn/P* classes
    from the `unicode_categories` crate (Unicode 8.0, no Cn: unassigned code points stay
    and become [UNK]), White_Space and lowercase from Rust's std, NFD from a crate older
    than Unicode 13.
  * NFC: the slow basic tokenizer NFC-normalizes the text first; Rust does not (visible
    with lowercase=False).
  * Order: slow lowercases then strips accents; Rust strips then lowercases.
  * Special tokens re-formed by cleanup ("[SE\\x01P]"): slow keeps them whole (never_split).
  * CJK: Rust's table skips U+2B820..U+2B91F (part of Extension E); slow spaces them.
  * Token type ids of a pair without special tokens: slow 0s, Rust 1s for the pair.

Outputs (all under Tests/Fixtures/tokenizer/):
  golden.jsonl         real bert-base-uncased vocab (30522 tokens), lowercase=True
  small-vocab.txt      a ~300-token vocabulary generated here
  golden-small.jsonl   small vocab, both lowercase=True and lowercase=False (cased)
  golden-hostile.jsonl the hostile-Unicode corpus (HOSTILE below) on the real vocab under
                       five settings (casing, strip_accents, tokenize_chinese_chars), with
                       ids and offsets (offset_mapping without [CLS]/[SEP])
  unicode-classes.txt  for every code point alone: removed by cleanup, whitespace, CJK,
                       punctuation, what accent stripping and lowercasing make of it

Every .jsonl starts with one header object {"format": "distillery-tokenizer-golden",
"version": 2, ...}; every later line is one case. Run with the reference venv:

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
from tokenizers import normalizers, pre_tokenizers
from transformers import BertTokenizer as BertTokenizerFast  # Rust-backed in transformers 5
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "Tests", "Fixtures", "tokenizer")
FORMAT = "distillery-tokenizer-golden"
VERSION = 2
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


# ---------------------------------------------------------------------------
# The hostile-Unicode corpus: (name, text). Lone surrogates are left out on purpose: a
# Swift String cannot hold one (nor can valid UTF-8), so `kd` never sees them — invalid
# UTF-8 input is refused before tokenization.
# ---------------------------------------------------------------------------
HOSTILE = [
    ("final sigma", "ΟΔΟΣ ΣΟΦΟΣ. ΑΣ' Σ ΣΑ ὈΔΥΣΣΕΎΣ λόγος ΛΌΓΟΣ"),
    ("final sigma after mark", "ΑΣ\u0301 ΑΣ\u00ad ΑΣ\u200d Α\u0301Σ"),
    ("greek casing", "ΐ ΰ ᾼ ᾳ Ω Ω ϴ ϑ ς ϲ Ϲ"),
    ("turkish i", "İstanbul ISPARTA ıspanak DİYARBAKIR İi Iı i\u0307 I\u0307"),
    ("german sharp s", "Straße STRASSE ẞ groß GROẞ ß"),
    ("ligatures", "ﬁne ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ Ĳ ĳ ǆ ǅ Ǆ"),
    ("full-width", "ＡＢＣ ａｂｃ １２３ ！？＃ ［ＭＡＳＫ］ Ｆｕｌｌ"),
    ("half-width kana", "ｶﾀｶﾅ ﾊﾟ ﾞ ﾟ ｰ"),
    ("NFC vs NFD", "caf\u00e9 cafe\u0301 \u00c5 A\u030a \u212b \u1e9b\u0323 \u0171 u\u030b"),
    ("combining marks", "a\u0301\u0301\u0301 \u0301 x\u20dd \u0e01\u0e34 \u0915\u093f Z\u0351\u036b\u0343a\u0352"),
    ("combining order", "a\u0323\u0301 a\u0301\u0323 q\u0307\u0323 \u1e0b\u0323"),
    ("hangul syllables vs jamo", "한국어 \u1112\u1161\u11ab\u1100\u116e\u11a8 \u3131\u314f \uac00\u11a8"),
    ("CJK base and extensions", "中文 㐀 䶿 𠀀 𪛟 𪜀 𫜹 𫝀 𫠝 𫠠 𬺡 𬺰 𮯠"),
    ("CJK extension E gap", "\U0002B820 \U0002B8FF \U0002B91F \U0002B920 a\U0002B820b a\U0002B91Fb a\U0002B920b"),
    ("CJK extension G H I", "\U00030000 \U0003134A \U00031350 \U000323AF \U0002EBF0 \U0002EE5D"),
    ("CJK compatibility", "豈 更 丽 \U0002F800 \U0002FA1D ⺀ ⼀ ㇀"),
    ("unicode 15 and 16", "\U0001FAE8 \U0001FA77 \U0001FACE \U0001FAE9 \U0001FAC6 \U0001FABE \U0001FADC \U0001FAEF \U00011F00 \U0001CC00 \U000105C0"),
    ("unicode 13+ decompositions", "\U00011938 \U00011935\U00011930 \U000113C5 \U00016D68 \U000105C9"),
    ("emoji zwj", "👨‍👩‍👧‍👦 👩‍❤️‍👨 🏳️‍🌈 🏴‍☠️ 🧑🏽‍💻 👁️‍🗨️"),
    ("skin tones", "👍🏽 👋🏿 🏻 x🏼y ✌🏻"),
    ("flags and tags", "🇺🇸 🇯🇵 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"),
    ("keycaps and selectors", "1️⃣ #️⃣ ❤️ ❤︎ ︎ ️ \U000E0100"),
    ("rtl marks", "\u200fمرحبا\u200e abc \u202bשלום\u202c \u2067x\u2069 \u061c"),
    ("zero width", "a\u200bb c\u200cd e\u200df \u2060g \ufeffh \u180ei"),
    ("controls", "a\u0001b\u0007c\u001bd\u007fe\u0085f\u009fg \u000b \u000c \u001c\u001d\u001e\u001f"),
    ("NUL", "null\u0000byte \u0000 \u0000\u0000x"),
    ("tabs and newlines", "tab\tsep\nline\r\ncrlf\rcr\u2028ls\u2029ps \t\n"),
    ("spaces", "nb\u00a0sp em\u2003sp id\u3000sp og\u1680sp nn\u202fsp mm\u205fsp"),
    ("private use and nonchar", "\ue000 \uf8ff \U000f0000 \U0010fffd \ufdd0 \uffff \U0001ffff \U0010ffff"),
    ("unassigned", "\u0378 \u2fff \U0001fb00 \U000e0000 \U0003ffff x\u0378y"),
    ("replacement char", "\ufffd a\ufffdb \ufffd\ufffd"),
    ("punctuation old and new", "a\u2e43b a\u2e5db a\u061db a\u166db a\U000111c9b a\u00a7b a\u2e42b ¿¡"),
    ("marks changed since 8.0", "a\u1734b a\u1885b a\ua9bdb a\U0001171eb a\u0f39b"),
    ("symbols", "$ € ¢ ± × ÷ ∑ √ ∞ ≠ ≤ ← ★ ♠ © ® ™ ° µ"),
    ("long word", "a" * 100 + " " + "a" * 101 + " " + "é" * 100 + " " + "é" * 101),
    ("long word after stripping", "e\u0301" * 60 + " " + "ab" * 50 + "e\u0301"),
    ("long cjk run", "中" * 150),
    ("long emoji run", "😀" * 120),
    ("special tokens", "[CLS] x[SEP]y [MASK][MASK] [UNK] [PAD] [mask] [SE\u0001P] [MA\u200bSK] ［SEP］"),
    ("accents mixed", "Crème BRÛLÉE naïve Ångström ŁÓDŹ Dvořák Nguyễn Ọ̀rẹ́ ǸǹǾǿ"),
    ("scripts", "Привет ПРИВЕТ Ёлка γειά σου שָׁלוֹם مَرْحَبًا नमस्ते สวัสดี ქართული"),
    ("empty", ""),
    ("only removed", "\u0000\u0001\u200b\ufeff\ufffd"),
]

# Tokenizer settings the hostile corpus runs under: (name, do_lower_case, strip_accents, tokenize_chinese_chars).
HOSTILE_SETTINGS = [
    ("uncased", True, None, True),
    ("cased", False, None, True),
    ("uncased-keep-accents", True, False, True),
    ("cased-strip-accents", False, True, True),
    ("uncased-no-chinese", True, None, False),
]


def ranges_text(cps):
    """'41-5A 61' style ranges of sorted code points."""
    out, start, prev = [], None, None
    for c in cps:
        if prev is not None and c == prev + 1:
            prev = c
            continue
        if start is not None:
            out.append((start, prev))
        start = prev = c
    if start is not None:
        out.append((start, prev))
    return " ".join("%X-%X" % (a, b) if a != b else "%X" % a for a, b in out)


def unicode_class_lines():
    """How the Rust normalizer and pre-tokenizer treat every code point on its own."""
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    chinese = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    lower = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    removed, spaces, cjk, punct, stripped, strip_map, lower_map = [], [], [], [], [], [], []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue  # surrogates: not scalars
        c = chr(cp)
        cleaned = clean.normalize_str(c)
        if cleaned == "":
            removed.append(cp)
        elif cleaned == " " and c != " ":
            spaces.append(cp)
        if chinese.normalize_str(c) != c:
            cjk.append(cp)
        pieces = pre.pre_tokenize_str("a" + c + "b")
        if len(pieces) == 3 and pieces[1][0] == c:
            punct.append(cp)
        s = strip.normalize_str(c)
        if s == "":
            stripped.append(cp)
        elif s != c:
            strip_map.append("strip %X %s" % (cp, " ".join("%X" % ord(x) for x in s)))
        low = lower.normalize_str(c)
        if low != c:
            lower_map.append("lower %X %s" % (cp, " ".join("%X" % ord(x) for x in low)))
    return (["removed " + ranges_text(removed), "whitespace " + ranges_text(spaces), "chinese " + ranges_text(cjk),
             "punctuation " + ranges_text(punct), "strip_removed " + ranges_text(stripped)] + strip_map + lower_map)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def header(extra):
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "reference": "transformers.BertTokenizer (transformers 5: Rust tokenizers backend)",
        "also_compared": "transformers.models.bert.tokenization_bert_legacy.BertTokenizerLegacy (slow, pure Python); "
                         "'slow_ids' present only where it differs",
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
        "unicodedata": unicodedata.unidata_version,
        "seed": SEED,
    }
    meta.update(extra)
    return meta


def json_line(obj):
    # U+FEFF stays escaped: swift-corelibs-foundation's JSONSerialization drops a raw BOM
    # at the start of a string value (the escaped form survives).
    return json.dumps(obj, ensure_ascii=False).replace("\ufeff", "\\ufeff") + "\n"


def write_jsonl(path, meta, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write(json_line(meta))
        for row in rows:
            f.write(json_line(row))


def inner_offsets(encoding):
    """offset_mapping without the [CLS]/[SEP] entries, as [[start, end], ...]."""
    return [list(pair) for pair in encoding["offset_mapping"][1:-1]]


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
    rows, slow_diffs = [], 0
    for i, text in enumerate(lines):
        enc = fast(text, return_offsets_mapping=True)
        row = {"text": text, "tokens": fast.tokenize(text), "ids": enc["input_ids"], "offsets": inner_offsets(enc),
               "ids_max16": fast(text, max_length=MAX_LENGTH, truncation=True)["input_ids"]}
        slow_ids = slow(text)["input_ids"]
        if slow_ids != row["ids"]:
            row["slow_ids"] = slow_ids
            slow_diffs += 1
        if i % 4 == 1:  # a quarter of the lines also get a sentence pair
            pair = lines[(i * 7 + 3) % len(lines)]
            enc = fast(text, pair, return_token_type_ids=True)
            max_len = PAIR_MAX_LENGTHS[(i // 4) % len(PAIR_MAX_LENGTHS)]
            trunc = fast(text, pair, max_length=max_len, truncation=True, return_token_type_ids=True)
            row.update({"pair": pair, "pair_ids": enc["input_ids"], "pair_type_ids": enc["token_type_ids"],
                        "pair_max_length": max_len, "pair_ids_trunc": trunc["input_ids"],
                        "pair_type_ids_trunc": trunc["token_type_ids"]})
        rows.append(row)
    meta = header({"vocab": "bert-base-uncased (MiniLM-L6 vocab.txt)", "vocab_sha256": sha256_file(args.vocab),
                   "lowercase": True, "strip_accents": None, "tokenize_chinese_chars": True,
                   "lines": len(rows), "slow_differs": slow_diffs})
    write_jsonl(os.path.join(OUT_DIR, "golden.jsonl"), meta, rows)
    print(f"golden.jsonl: {len(rows)} lines, {slow_diffs} differ between fast and slow")

    # Small committed vocabulary, uncased and cased.
    vocab_path = os.path.join(OUT_DIR, "small-vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(small_vocab()) + "\n")
    small = {"uncased": (BertTokenizerFast(vocab=vocab_path, do_lower_case=True),
                         BertTokenizerLegacy(vocab_path, do_lower_case=True)),
             "cased": (BertTokenizerFast(vocab=vocab_path, do_lower_case=False),
                       BertTokenizerLegacy(vocab_path, do_lower_case=False))}
    rows, slow_diffs = [], 0
    for text in lines:
        row = {"text": text}
        for name, (f, s) in small.items():
            enc = f(text, return_offsets_mapping=True)
            row[name] = {"tokens": f.tokenize(text), "ids": enc["input_ids"], "offsets": inner_offsets(enc)}
            slow_ids = s(text)["input_ids"]
            if slow_ids != enc["input_ids"]:
                row[name]["slow_ids"] = slow_ids
                slow_diffs += 1
        rows.append(row)
    meta = header({"vocab": "Tests/Fixtures/tokenizer/small-vocab.txt", "vocab_sha256": sha256_file(vocab_path),
                   "strip_accents": None, "tokenize_chinese_chars": True,
                   "lines": len(rows), "slow_differs": slow_diffs})
    write_jsonl(os.path.join(OUT_DIR, "golden-small.jsonl"), meta, rows)
    print(f"golden-small.jsonl: {len(rows)} lines, {slow_diffs} (line, casing) results differ between fast and slow")

    # The hostile corpus, real vocabulary, every setting.
    settings = []
    for name, lower, strip, chinese in HOSTILE_SETTINGS:
        settings.append((name, BertTokenizerFast(vocab=args.vocab, do_lower_case=lower, strip_accents=strip,
                                                 tokenize_chinese_chars=chinese),
                         BertTokenizerLegacy(args.vocab, do_lower_case=lower, strip_accents=strip,
                                             tokenize_chinese_chars=chinese)))
    rows, slow_diffs = [], 0
    for case, text in HOSTILE:
        row = {"case": case, "text": text}
        for name, f, s in settings:
            enc = f(text, return_offsets_mapping=True)
            row[name] = {"ids": enc["input_ids"], "offsets": inner_offsets(enc)}
            slow_ids = s(text)["input_ids"]
            if slow_ids != enc["input_ids"]:
                row[name]["slow_ids"] = slow_ids
                slow_diffs += 1
        rows.append(row)
    meta = header({"vocab": "bert-base-uncased (MiniLM-L6 vocab.txt)", "vocab_sha256": sha256_file(args.vocab),
                   "settings": [{"name": n, "lowercase": l, "strip_accents": s, "tokenize_chinese_chars": c}
                                for n, l, s, c in HOSTILE_SETTINGS],
                   "lines": len(rows), "slow_differs": slow_diffs})
    write_jsonl(os.path.join(OUT_DIR, "golden-hostile.jsonl"), meta, rows)
    print(f"golden-hostile.jsonl: {len(rows)} texts x {len(settings)} settings, {slow_diffs} differ between fast and slow")

    # Every code point on its own.
    with open(os.path.join(OUT_DIR, "unicode-classes.txt"), "w", encoding="utf-8") as f:
        f.write(json.dumps(header({"what": "per code point: removed by clean_text, whitespace, chinese, punctuation "
                                           "(ranges); strip_removed (ranges); 'strip CP MAPPING' and 'lower CP MAPPING' "
                                           "where the result differs from the code point"}), ensure_ascii=False) + "\n")
        f.write("\n".join(unicode_class_lines()) + "\n")
    print("unicode-classes.txt written")


if __name__ == "__main__":
    main()
