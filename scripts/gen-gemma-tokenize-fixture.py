#!/usr/bin/env python3
"""Makes Tests/InferenceTests/Fixtures/gemma3-tokenize.json: llama.cpp's own tokenization and
detokenization with the SentencePiece vocabulary of Gemma 3 270M (tokenizer.ggml.model = llama,
262,144 tokens), the reference Tests/InferenceTests/SentencePieceTokenizerTests.swift checks the
engine against.

Run with the Python of the llama-cpp-python venv that scripts/make-test-models.sh builds
(llama-cpp-python 0.3.36, gguf, numpy):
    <venv>/bin/python scripts/gen-gemma-tokenize-fixture.py "$(scripts/fetch-gemma.sh)" \
        > Tests/InferenceTests/Fixtures/gemma3-tokenize.json

What it records (llama_cpp.Llama(model_path, vocab_only=True), so only the vocabulary is loaded):
    model        file name, sha256, llama-cpp-python version
    tokenize     [{"text", "add_space_prefix", "add_bos", "special", "ids"}]: for every text in
                 TEXTS and every combination of add_bos (llama.cpp's add_special) and special
                 (parse_special), llm.tokenize(text.encode(), add_bos=..., special=...).
                 add_space_prefix false is the file as published (its tokenizer.ggml.add_space_prefix);
                 true is a temporary copy of the file with that key set to true (the other SPM
                 setting, which Gemma does not use), so the prefix-space path is checked too.
    detokenize   [{"ids", "add_space_prefix", "special", "bytes_hex", "text"}]: llama.cpp's
                 llama_detokenize(vocab, ids, remove_special=False, unparse_special=special), called
                 directly (llm.detokenize post-processes the leading space in its own way), for
                 every distinct id list above plus EXTRA_IDS; bytes_hex is the exact output (it may
                 be invalid UTF-8), text the same decoded with errors="replace".
Output is deterministic (sorted keys, fixed order, one case a line); progress goes to stderr.
"""
import ctypes
import json
import os
import shutil
import sys
import tempfile

import llama_cpp

from reference_common import sha256_of

TEXTS = [
    "",
    "a",
    "Hello world",
    "Hello, world! How are you?",
    " leading space",
    "  two leading spaces",
    "trailing space ",
    "multiple   spaces   inside",
    " ",
    "   ",
    "line one\nline two",
    "\n\nparagraph\n\n\nbreak\n",
    "tab\tseparated\tvalues",
    "\t\tindented with tabs",
    "mixed \t\n whitespace \r\n windows\r\n\r\n",
    "12345 67890 3.14159 1,000,000",
    "The year 2024 had 366 days.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    'for (int i = 0; i < 10; ++i) { printf("%d\\n", i); }',
    '{"key": [1, 2, 3], "nested": {"a": null}}',
    "Punctuation!!! ??? ... ;;; --- ''' \"\"\"",
    "can't won't it's I'm they're we've",
    "https://example.com/path?query=1&b=2#frag email@example.org +1 (555) 123-4567",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "你好，世界！今天天气很好。",
    "日本語のテキストとカタカナ",
    "한국어 문장입니다",
    "Mixed 中文 and English 混合",
    "Ünïcödé àccents: café, naïve, Zürich",
    "Привет, мир! Как дела?",
    "مرحبا بالعالم",
    "emoji 😀🎉👍🏽 and 🧑‍💻",
    "rare symbols: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ꙮ 𓀀 𒀀 \U0010FFFD",
    "\x01\x02 control chars \x7f\x1b[0m",
    "\u00a0non-breaking\u2009thin\u3000ideographic spaces",
    "▁ already has the marker ▁▁",
    "<start_of_turn>user\nhi<end_of_turn>\n",
    "<start_of_turn>model\nHello! How can I help?<end_of_turn>",
    "<bos>text after bos",
    "<eos>",
    "<unused0> and <unused12>",
    "html <b>bold</b> and <table><tr><td>cell</td></tr></table>",
    "strike <s>old</s> new",
    "<0x41> literal byte text",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs! "
    "Sphinx of black quartz, judge my vow.",
]

# Id lists detokenized besides the tokenizations: BOS then text (the leading-space rule),
# control, unused, user-defined and byte tokens alone, a UTF-8 sequence cut in the middle.
EXTRA_IDS = [
    [2],
    [0, 1, 2, 3, 4],
    [6, 105, 106],
    [5, 107, 138, 212, 255968],
    [238, 239, 240],
    [238 + 0x41, 238 + 0xE4, 238 + 0xBD],
    [238 + 0xF0, 238 + 0x9F, 238 + 0x98, 238 + 0x80],
    [236764],
]


def detokenize(llm, ids, special):
    vocab = llm._model.vocab
    arr = (llama_cpp.llama_token * max(len(ids), 1))(*ids)
    size = 64 + 64 * len(ids)
    buf = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, special)
    if n < 0:
        size = -n
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, special)
    assert n >= 0
    return buf.raw[:n]


def record(llm, add_space_prefix, tokenize_out, detok_out):
    seen = set()
    lists = []
    for text in TEXTS:
        for add_bos in (False, True):
            for special in (False, True):
                ids = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)
                tokenize_out.append({"text": text, "add_space_prefix": add_space_prefix,
                                     "add_bos": add_bos, "special": special, "ids": ids})
                if tuple(ids) not in seen:
                    seen.add(tuple(ids))
                    lists.append(ids)
    for ids in EXTRA_IDS:
        if tuple(ids) not in seen:
            seen.add(tuple(ids))
            lists.append(ids)
    for ids in lists:
        for special in (False, True):
            out = detokenize(llm, ids, special)
            detok_out.append({"ids": ids, "add_space_prefix": add_space_prefix, "special": special,
                              "bytes_hex": out.hex(), "text": out.decode("utf-8", errors="replace")})


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen-gemma-tokenize-fixture.py GEMMA_GGUF > gemma3-tokenize.json")
    path = sys.argv[1]
    import gguf

    tokenize_out, detok_out = [], []
    print("gen-gemma-tokenize-fixture: the file as published", file=sys.stderr)
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    assert llama_cpp.llama_vocab_type(llm._model.vocab) == llama_cpp.LLAMA_VOCAB_TYPE_SPM
    record(llm, False, tokenize_out, detok_out)
    del llm

    print("gen-gemma-tokenize-fixture: a copy with add_space_prefix = true", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "gemma-add-space-prefix.gguf")
        shutil.copyfile(path, copy)
        reader = gguf.GGUFReader(copy, "r+")
        field = reader.get_field("tokenizer.ggml.add_space_prefix")
        field.parts[field.data[0]][0] = True
        reader.data.flush()
        del reader, field
        llm = llama_cpp.Llama(model_path=copy, vocab_only=True, verbose=False)
        record(llm, True, tokenize_out, detok_out)
        del llm

    out = {
        "model": {"file": os.path.basename(path), "sha256": sha256_of(path),
                  "llama_cpp_python": llama_cpp.__version__},
        "tokenize": tokenize_out,
        "detokenize": detok_out,
    }
    # One case a line: readable diffs, a small file.
    def dumps(value):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    w = sys.stdout.write
    w('{"model":' + dumps(out["model"]) + ",\n")
    for i, key in enumerate(("detokenize", "tokenize")):
        w('"' + key + '":[\n' + ",\n".join(dumps(c) for c in out[key]) + "\n]")
        w(",\n" if i == 0 else "\n}\n")


if __name__ == "__main__":
    main()
