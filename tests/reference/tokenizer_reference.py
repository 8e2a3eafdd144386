#!/usr/bin/python3
"""Independent reference for core/formats/TokenizerDecoder (standard library only: there is no
`tokenizers` package here). Writes a small synthetic byte-level BPE tokenizer.json in GPT-NeoX
layout and the decodings tests/formats/tst_tokenizer_decoder.cpp must reproduce.

Run:  /usr/bin/python3 tests/reference/tokenizer_reference.py
Writes tests/fixtures/tokenizer/{tokenizer.json,expected.json}.

Decoding follows Hugging Face tokenizers (docs/formats.md §3): added tokens emit their content
verbatim (special ones dropped with skip_special_tokens); other tokens map each character back to
a byte with the inverse of GPT-2's bytes_to_unicode, except that a token with a character outside
that table contributes its own UTF-8 bytes (the ByteLevel decoder's fallback); all bytes are
joined and decoded with bytes.decode("utf-8", errors="replace").
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "tokenizer")


def bytes_to_unicode():
    """openai/gpt-2 src/encoder.py, verbatim in substance."""
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
U2B = {u: b for b, u in B2U.items()}


def encode_bytes(data):
    """Vocabulary string for raw bytes (what the BPE trainer would store)."""
    return "".join(B2U[b] for b in data)


def build_tokenizer():
    vocab = {}
    # GPT-NeoX-digits layout: three specials first (id 2 is stored as "<|padding|>" in the vocab
    # and overwritten by added_tokens, to check that added_tokens wins), then the 256 byte tokens
    # in GPT-2 order, so "!" = 3.
    vocab["<|EOS|>"] = 0
    vocab["<|BOS|>"] = 1
    vocab["<|padding|>"] = 2
    for b in B2U:
        vocab[B2U[b]] = len(vocab)
    words = ["Hello", ",", "Ġworld", "!", "ĠSolid", "Gold", "Mag", "ik", "arp", "Ċ", "ĊĊ",
             "Ġthe", "Ġof", "Ġand", "Ġto", "Ġa", "Ġin", "Ġis", "Ġthat", "Ġit", "Ġfor", "Ġon",
             "Ġwith", "Ġas", "Ġwas", "Ġhe", "Ġby", "ĠThe", "ing", "ed", "er", "ĠĠ", "ĠĠĠĠ",
             "ĉ", "Ġ(", ")", "ĠcafÃ©", "ĠâĤ¬"]
    # Multi-byte UTF-8 characters, whole and split across tokens at every byte boundary.
    for text in ["é", "€", "你好", "😀", "ß", "Ω"]:
        data = text.encode("utf-8")
        for cut in range(1, len(data)):
            words.append(encode_bytes(data[:cut]))
            words.append(encode_bytes(data[cut:]))
        words.append(encode_bytes(data))
        words.append("Ġ" + encode_bytes(data))
    # Characters outside the byte table: the decoder falls back to the string's own UTF-8.
    words += ["€uro", "Ġ日本"]
    for w in words:
        if w not in vocab:
            vocab[w] = len(vocab)
    n_vocab = len(vocab)
    added = [
        {"id": 0, "content": "<|EOS|>", "special": True},
        {"id": 1, "content": "<|BOS|>", "special": True},
        {"id": 2, "content": "<|PAD|>", "special": True},
        # NeoX-style non-special added token (a run of spaces, stored literally, not as "Ġ"),
        # past the vocab with a hole at n_vocab: decoding the hole must fail.
        {"id": n_vocab + 1, "content": "    ", "special": False},
    ]
    for a in added:
        a.update({"single_word": False, "lstrip": False, "rstrip": False, "normalized": False})
    merges = ["Ġ w", "Ġw o", "Ġwo r", "Ġwor l", "Ġworl d", "H e", "He l", "Hel l", "Hell o"]
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {k: a[k] for k in ["id", "content", "single_word", "lstrip", "rstrip", "normalized",
                               "special"]} for a in added],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "vocab": vocab, "merges": merges},
    }
    return tok


def token_bytes(tok_str):
    if all(c in U2B for c in tok_str):
        return bytes(U2B[c] for c in tok_str)
    return tok_str.encode("utf-8")


def make_decoder(tok):
    id_to = {}  # id -> (bytes, special)
    for s, i in tok["model"]["vocab"].items():
        id_to[i] = (token_bytes(s), False, s)
    for a in tok["added_tokens"]:
        id_to[a["id"]] = (a["content"].encode("utf-8"), a["special"], a["content"])

    def decode(ids, skip_special=False):
        out = b""
        for i in ids:
            data, special, _ = id_to[i]
            if skip_special and special:
                continue
            out += data
        return out.decode("utf-8", errors="replace")

    return id_to, decode


def main():
    tok = build_tokenizer()
    vocab = tok["model"]["vocab"]
    id_to, decode = make_decoder(tok)
    vocab_size = max(id_to) + 1
    byte_id = {U2B[s]: i for s, i in vocab.items() if len(s) == 1 and s in U2B}

    def ids_of(*pieces):
        return [vocab[p] if p in vocab else next(a["id"] for a in tok["added_tokens"]
                                                 if a["content"] == p) for p in pieces]

    def bytes_ids(data):
        return [byte_id[b] for b in data]

    euro = "€".encode("utf-8")
    smile = "😀".encode("utf-8")
    nihao = "你好".encode("utf-8")
    cases = [
        ("hello_world", ids_of("<|BOS|>", "Hello", ",", "Ġworld", "!")),
        ("solidgoldmagikarp", ids_of("ĠSolid", "Gold", "Mag", "ik", "arp")),
        ("newlines_tabs", ids_of("Hello", "Ċ", "ĉ", "Ġworld", "ĊĊ", "ĠĠĠĠ", "!")),
        ("specials_everywhere", ids_of("<|BOS|>", "Ġthe", "<|PAD|>", "<|EOS|>", "Ġof")),
        ("added_non_special", ids_of("<|BOS|>", "Hello", "    ", "Ġworld")),
        ("cafe_euro", ids_of("ĠcafÃ©", "ĠâĤ¬")),
        ("euro_split_joined", bytes_ids(euro[:1]) + bytes_ids(euro[1:])),
        ("euro_cut_end", bytes_ids(euro[:2])),
        ("euro_cut_then_text", bytes_ids(euro[:2]) + ids_of("Hello")),
        ("euro_cut_then_special", bytes_ids(euro[:2]) + ids_of("<|EOS|>")),
        ("smile_split_3_1", ids_of(encode_bytes(smile[:3]), encode_bytes(smile[3:]))),
        ("smile_cut_3", ids_of(encode_bytes(smile[:3]))),
        ("smile_tail_only", ids_of(encode_bytes(smile[1:]))),
        ("nihao_split", ids_of(encode_bytes(nihao[:1]), encode_bytes(nihao[1:]))),
        ("nihao_cut_4", ids_of(encode_bytes(nihao[:4]))),
        ("fallback_non_table_chars", ids_of("€uro", "Ġ日本", "!")),
        ("empty", []),
    ]
    # Hand-picked invalid byte sequences: overlong, surrogate, too large, stray continuation,
    # truncated sequences at the end and in the middle.
    edges = [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf5\x80",
             b"\xff", b"\x80\x80a", b"\xf0\x9f\x98", b"\xf0\x9f\x98a", b"\xe2\x82\xe2\x82\xac",
             b"\xc3", b"a\xc3\xa9\xa9", b"\xf0\x90\x80\x80", b"\xed\x9f\xbf", b"\xee\x80\x80",
             b"\xf1\x80\x80", b"\xe1\x80\xc3\xa9", b"\x00\x7f\xad"]
    for k, e in enumerate(edges):
        cases.append(("utf8_edge_%d_%s" % (k, e.hex()), bytes_ids(e)))
    # Random sequences over every id (fixed seed): mixes of byte tokens give many invalid and
    # valid multi-byte combinations.
    rng = random.Random(20240603)
    valid_ids = sorted(id_to)
    byte_ids = sorted(byte_id.values())
    for k in range(20):
        pool = byte_ids if k % 2 else valid_ids
        cases.append(("random_%d" % k, [rng.choice(pool) for _ in range(rng.randint(1, 30))]))

    expected_cases = []
    for name, ids in cases:
        for skip in (False, True):
            expected_cases.append({"name": name, "ids": ids, "skip_special": skip,
                                   "text": decode(ids, skip)})
    tokens = [{"id": i, "raw": id_to[i][2], "text": decode([i]), "special": id_to[i][1],
               "added": any(a["id"] == i for a in tok["added_tokens"])} for i in valid_ids]
    expected = {
        "vocab_size": vocab_size,
        "bos_id": 1, "eos_id": 0, "pad_id": 2,
        "hole_id": len(vocab),
        "cases": expected_cases,
        "tokens": tokens,
    }
    os.makedirs(FIXTURES, exist_ok=True)
    with open(os.path.join(FIXTURES, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=2)
        f.write("\n")
    with open(os.path.join(FIXTURES, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("vocab %d entries, vocab_size %d, %d cases" % (len(vocab), vocab_size,
                                                          len(expected_cases)))


if __name__ == "__main__":
    main()
