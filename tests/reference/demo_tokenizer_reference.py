#!/usr/bin/python3
"""Independent reference for core/demo/BpeTokenizer (standard library only: Debian has no
`tokenizers` package). Reads the byte-level BPE tokenizer.json that the C++ trainer wrote for
the test corpus and encodes sample strings the way Hugging Face's ByteLevel + BPE pipeline does:

1. split out the added token "<|endoftext|>";
2. pre-tokenize with GPT-2's pattern
       's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
   (Python's `re` has no \\p{..}: letters are [^\\W\\d_], digits \\d, and "other" is
   [^\\s\\w] or "_", which agree with the Unicode classes on the characters sampled here);
3. spell each piece's UTF-8 bytes with GPT-2's bytes_to_unicode;
4. apply the merges by rank: repeatedly merge every occurrence of the lowest-ranked adjacent pair
   (openai/gpt-2 src/encoder.py `bpe`).

Run:  /usr/bin/python3 tests/reference/demo_tokenizer_reference.py
Reads tests/fixtures/demo/tokenizer.json (regenerate it first with
`SAEWB_WRITE_DEMO_FIXTURE=1 build/tests/tst_demo_tokenizer` when the trainer changes),
writes tests/fixtures/demo/encodings.json.
"""
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "demo")

PATTERN = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")

SAMPLES = [
    "Hello world",
    "The storm moved across the coast on Monday.",
    "Temperatures in Lisbon reached 23°C by the afternoon; tickets cost €14.50 or $3.99.",
    "def count_items(values, limit=42):\n    total = 0\n    for i, item in enumerate(values):\n"
    "        if item > limit:\n            continue\n    return total\n",
    "int main(void) {\n    printf(\"%d\\n\", sum_rows(data, 3));\n    return 0;\n}\n",
    "She's sure they'll say we've won, I'm told he'd agree, they're right. 'S and 'LL stay.",
    "   leading spaces, trailing spaces   \n\n\n  indented line\t\ttabs\r\nCRLF",
    "2021-03-14, 14/03/2021, March 14, 2021 at 7:30 pm; 1,234,567 fans; 99.5%",
    "snake_case_name __dunder__ x_1 a--b ... !!! ??? (parens) [brackets] {braces}",
    "José and Chloé visited Montréal café 🙂 — naïve façade",
    "doc one<|endoftext|>doc two<|endoftext|>",
    "",
    " ",
    "\n",
    "zzzzqqqq xylophone Zebra QUIET",
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()


def load(path):
    with open(path, encoding="utf-8") as f:
        tok = json.load(f)
    vocab = tok["model"]["vocab"]
    ranks = {}
    for r, m in enumerate(tok["model"]["merges"]):
        a, b = m.split(" ") if isinstance(m, str) else m
        ranks[(a, b)] = r
    added = {a["content"]: a["id"] for a in tok["added_tokens"]}
    return vocab, ranks, added


def bpe(piece, ranks):
    word = [B2U[b] for b in piece.encode("utf-8")]
    while len(word) > 1:
        pairs = [(ranks.get((word[i], word[i + 1]), None), i) for i in range(len(word) - 1)]
        known = [r for r, _ in pairs if r is not None]
        if not known:
            break
        best = min(known)
        first, second = [(word[i], word[i + 1]) for r, i in pairs if r == best][0]
        merged, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


def encode(text, vocab, ranks, added):
    ids = []
    parts = re.split("(" + "|".join(re.escape(a) for a in added) + ")", text)
    for part in parts:
        if part in added:
            ids.append(added[part])
            continue
        for piece in PATTERN.findall(part):
            ids.extend(vocab[t] for t in bpe(piece, ranks))
    return ids


def main():
    vocab, ranks, added = load(os.path.join(FIXTURES, "tokenizer.json"))
    cases = []
    for s in SAMPLES:
        cases.append({"text": s, "pieces": PATTERN.findall(s.replace("<|endoftext|>", "")),
                      "ids": encode(s, vocab, ranks, added)})
    out = os.path.join(FIXTURES, "encodings.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote", out, "with", len(cases), "cases")


if __name__ == "__main__":
    main()
