#!/usr/bin/env python3
"""Makes synthetic test models of the qwen2, qwen3, llama (Llama 3) and phi3 architectures.

Each file is the default model (SmolLM2-135M-Instruct, Q4_1, a `llama` file) written again with
gguf.GGUFWriter under another architecture's tensor names and metadata keys, plus the tensors that
architecture has and SmolLM2 lacks, made from fixed seeds. The quantized tensors are copied as raw
bytes (read with gguf.GGUFReader); a row of a quantized tensor is a whole number of blocks, so
reordering or concatenating rows moves bytes and never re-quantizes. The engine's tests compare it
with llama.cpp on these files (scripts/llamacpp-reference.py writes <file>.llamacpp.json beside
each); they are not models anyone trained, but they behave like one (perplexity on long-text.txt
near the base model's 42; qwen3's about 250, see QWEN3_NORM_SCALE), so a wrong step in the engine
shows as a wrong top token, not as noise against noise.

    SmolLM2-135M-Instruct.as-qwen2.gguf  qwen2.*: attn_q/k/v .bias added (f32, seeded normal);
                                         tokenizer.ggml.pre = qwen2
    SmolLM2-135M-Instruct.as-qwen3.gguf  qwen3.*: attn_q_norm / attn_k_norm .weight added (f32,
                                         head_dim values near 2, seeded); pre = qwen2
    SmolLM2-135M-Instruct.as-llama3.gguf llama.*: rope_freqs.weight added (Llama 3.1's factors for
                                         rope.freq_base 500000); pre = llama-bpe
    SmolLM2-135M-Instruct.as-phi3.gguf   phi3.*: attn_qkv.weight (q, k, v rows concatenated) and
                                         ffn_up.weight (gate rows, then up rows) fused; no
                                         attn_q/k/v, no ffn_gate

RoPE: SmolLM2's attn_q / attn_k rows were permuted by convert_hf_to_gguf.py (LlamaModel.permute) for
llama.cpp's "normal" RoPE, which rotates adjacent pairs (x[2i], x[2i+1]). qwen2, qwen3 and phi3 use
NeoX RoPE in llama.cpp, which rotates (x[i], x[i + head_dim/2]) as Hugging Face does, so for them the
permutation is undone (within each head, row j*head_dim/2 + k comes from row 2k + j) and the model
computes what SmolLM2 computes. The llama3 file keeps the rows as they are (llama = normal RoPE).

Everything else stays SmolLM2's: the vocabulary, merges, special tokens, add_bos_token (false),
chat template, the other tensors' bytes, general.file_type.

How each file was made is recorded in it as the metadata string `outpost.recipe` (JSON: source file
and sha256, this script's sha256, the seeds, the tensors added, fused, un-permuted and removed, the
metadata changed), the second key after general.architecture; llamacpp-reference.py copies it into
the header of the file's JSON.

Run by scripts/make-test-models.sh with the Python of its venv (gguf 0.19.0, numpy); by hand:
    <venv>/bin/python scripts/make-arch-models.py --base "$(scripts/fetch-model.sh)" --out-dir DIR
Prints the paths of the four files on stdout, progress on stderr. Idempotent: a file whose recorded
recipe equals the one this script would write (same source sha256, same script) is kept.
Deterministic: the same source, script, gguf and numpy give the same bytes.
"""
import argparse
import hashlib
import json
import math
import os
import struct
import sys
from importlib.metadata import version

import gguf
import numpy as np

from reference_common import sha256_of

RECIPE_KEY = "outpost.recipe"
SOURCE_ARCH = "llama"

# The added tensors' values: each addition moves the logits well beyond the engine's tolerance
# (a forgotten bias or norm shows), and the model stays a language model. Perplexity on
# long-text.txt with llama.cpp, SmolLM2's tokenization (the base model: 42.3; the un-permuted
# qwen2 file without biases: 42.4):
#   qwen2 biases std q, k 0.1, v 0.02: 45.8, top-1 equal to the base model's at 86% of the
#   positions (std 0.3 / 0.05: 78; 0.5 / 0.05: 130).
#   qwen3 norms: normalizing every head's q and k to one RMS takes away the per-token magnitudes
#   SmolLM2's attention was trained with, whatever the weights. A constant weight m gives (a numpy
#   forward pass over the first 300 tokens, base 57) m 1: 464, 1.5: 325, 1.75: 273, 2: 269,
#   2.25: 314, 2.5: 368; per-dimension least-squares weights fitted to SmolLM2's own q and k only
#   reach 197. So 2 * (1 + normal * 0.1): 228 with llama.cpp over the whole text.
QWEN2_SEED = 2
QWEN2_BIAS_STD = {"attn_q": 0.1, "attn_k": 0.1, "attn_v": 0.02}
QWEN3_SEED = 3
QWEN3_NORM_SCALE, QWEN3_NORM_STD = 2.0, 0.1
# Llama 3.1's rope_scaling (config.json of Llama-3.1-8B): the factors convert_hf_to_gguf.py's
# LlamaModel.generate_extra_tensors computes from them, for the freq_base below.
LLAMA3_FREQ_BASE = 500000.0
LLAMA3_ROPE_SCALING = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192}


def log(msg):
    print(f"make-arch-models: {msg}", file=sys.stderr, flush=True)


class Base:
    """The source file: its metadata (key -> (value, types)) and tensors (name -> ReaderTensor),
    both in file order."""

    def __init__(self, path):
        self.path = path
        self.reader = gguf.GGUFReader(path)
        arch = self.reader.fields["general.architecture"].contents()
        if arch != SOURCE_ARCH:
            raise RuntimeError(f"{path}: architecture {arch!r}, expected {SOURCE_ARCH!r}")
        self.fields = {k: (f.contents(), list(f.types)) for k, f in self.reader.fields.items()
                       if not k.startswith("GGUF.")}
        self.tensors = {t.name: t for t in self.reader.tensors}
        self.n_layer = self.value("llama.block_count")
        self.n_head = self.value("llama.attention.head_count")
        self.n_head_kv = self.value("llama.attention.head_count_kv")
        self.n_embd = self.value("llama.embedding_length")
        self.head_dim = self.n_embd // self.n_head

    def value(self, key):
        return self.fields[key][0]

    def rows(self, name):
        """The tensor's data as a C-contiguous array with one row per output (ne1) index: uint8
        bytes per row for quantized types, the values for f32."""
        return np.ascontiguousarray(self.tensors[name].data)


def unpermute(rows, head_dim):
    """The inverse of convert_hf_to_gguf.py's LlamaModel.permute on whole rows: within each head,
    row j*head_dim/2 + k (j in 0, 1) comes from row 2k + j."""
    n, width = rows.shape
    n_heads = n // head_dim
    return np.ascontiguousarray(
        rows.reshape(n_heads, head_dim // 2, 2, width).swapaxes(1, 2).reshape(n, width))


def llama3_rope_factors(head_dim, base, scaling):
    """convert_hf_to_gguf.py LlamaModel.generate_extra_tensors for rope_type llama3 (in float32,
    as torch computes freqs there)."""
    freqs = 1.0 / (np.float32(base) ** (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)))
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_ctx = scaling["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for freq in freqs.astype(np.float32):
        wavelen = 2 * math.pi / float(freq)
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def layer_part(name):
    """(7, 'attn_q.weight') for blk.7.attn_q.weight, None for a tensor outside the layers."""
    parts = name.split(".", 2)
    if parts[0] == "blk" and len(parts) == 3:
        return int(parts[1]), parts[2]
    return None


def plan(arch, base):
    """One file's tensors as [(name, GGMLQuantizationType, rows)] in the source's order (added
    tensors after each layer's attn_v, rope_freqs first), and the recipe: what was done to them."""
    b = base
    out = []
    recipe = {"architecture": arch, "added": {}, "fused": {}, "unpermuted": [], "removed": []}
    unpermute_qk = arch in ("qwen2", "qwen3", "phi3")
    if unpermute_qk:
        recipe["unpermuted"] = ["blk.*.attn_q.weight", "blk.*.attn_k.weight"]
        recipe["unpermute_rule"] = ("inverse of convert_hf_to_gguf.py LlamaModel.permute: within each "
                                    f"head of {b.head_dim} rows, row j*{b.head_dim // 2} + k (j in 0, 1) "
                                    "comes from row 2k + j of the source; rows moved as whole byte rows")

    def source(name):
        t = b.tensors[name]
        rows = b.rows(name)
        il = layer_part(name)
        if unpermute_qk and il and il[1] in ("attn_q.weight", "attn_k.weight"):
            rows = unpermute(rows, b.head_dim)
        return t.tensor_type, rows

    extra_per_layer = {}  # layer -> [(name, type, rows)] appended after the layer's attn_v
    if arch == "qwen2":
        rng = np.random.default_rng(QWEN2_SEED)
        recipe["seed"] = QWEN2_SEED
        sizes = {"attn_q": b.n_head * b.head_dim, "attn_k": b.n_head_kv * b.head_dim,
                 "attn_v": b.n_head_kv * b.head_dim}
        for il in range(b.n_layer):
            extra_per_layer[il] = [
                (f"blk.{il}.{p}.bias", gguf.GGMLQuantizationType.F32,
                 (rng.standard_normal(n) * QWEN2_BIAS_STD[p]).astype(np.float32))
                for p, n in sizes.items()]
        recipe["added"] = {f"blk.*.{p}.bias": f"F32 [{n}], normal(0, {QWEN2_BIAS_STD[p]})"
                           for p, n in sizes.items()}
        recipe["values"] = (f"numpy.random.default_rng({QWEN2_SEED}).standard_normal: for each layer "
                            "in order, q then k then v bias, times the std above, as float32")
    elif arch == "qwen3":
        rng = np.random.default_rng(QWEN3_SEED)
        recipe["seed"] = QWEN3_SEED
        for il in range(b.n_layer):
            extra_per_layer[il] = [
                (f"blk.{il}.{p}.weight", gguf.GGMLQuantizationType.F32,
                 (QWEN3_NORM_SCALE * (1 + rng.standard_normal(b.head_dim) * QWEN3_NORM_STD)).astype(np.float32))
                for p in ("attn_q_norm", "attn_k_norm")]
        recipe["added"] = {f"blk.*.{p}.weight": f"F32 [{b.head_dim}], {QWEN3_NORM_SCALE} * (1 + normal(0, {QWEN3_NORM_STD}))"
                           for p in ("attn_q_norm", "attn_k_norm")}
        recipe["values"] = (f"numpy.random.default_rng({QWEN3_SEED}).standard_normal: for each layer "
                            "in order, q_norm then k_norm, as float32")
    elif arch == "llama":
        factors = llama3_rope_factors(b.head_dim, LLAMA3_FREQ_BASE, LLAMA3_ROPE_SCALING)
        out.append(("rope_freqs.weight", gguf.GGMLQuantizationType.F32, factors))
        recipe["added"] = {"rope_freqs.weight": f"F32 [{b.head_dim // 2}], Llama 3.1 rope factors "
                                                "(convert_hf_to_gguf.py LlamaModel.generate_extra_tensors, "
                                                f"rope_type llama3) for rope_theta {LLAMA3_FREQ_BASE:g}, "
                                                f"head_dim {b.head_dim}, {json.dumps(LLAMA3_ROPE_SCALING)}"}
        recipe["rope_freqs"] = [float(x) for x in factors]

    for name, t in b.tensors.items():
        il = layer_part(name)
        if arch == "phi3" and il:
            layer, part = il
            if part == "attn_q.weight":
                parts = [source(f"blk.{layer}.attn_{x}.weight") for x in ("q", "k", "v")]
                types = {p[0] for p in parts}
                if len(types) != 1:
                    raise RuntimeError(f"layer {layer}: q, k, v of types {types} cannot be fused byte-wise")
                out.append((f"blk.{layer}.attn_qkv.weight", parts[0][0],
                            np.concatenate([p[1] for p in parts], axis=0)))
                continue
            if part in ("attn_k.weight", "attn_v.weight", "ffn_gate.weight"):
                continue
            if part == "ffn_up.weight":
                gate, up = source(f"blk.{layer}.ffn_gate.weight"), source(name)
                if gate[0] != up[0]:
                    raise RuntimeError(f"layer {layer}: gate {gate[0]} and up {up[0]} cannot be fused byte-wise")
                out.append((name, up[0], np.concatenate([gate[1], up[1]], axis=0)))
                continue
        out.append((name, *source(name)))
        if il and il[1] == "attn_v.weight" and il[0] in extra_per_layer:
            out.extend(extra_per_layer.pop(il[0]))
    if extra_per_layer:
        raise RuntimeError(f"layers without attn_v.weight: {sorted(extra_per_layer)}")
    if arch == "phi3":
        recipe["fused"] = {
            "blk.*.attn_qkv.weight": "rows of attn_q (un-permuted), then attn_k (un-permuted), then "
                                     "attn_v, byte-wise (same type): ne = [n_embd, n_embd + 2 * n_embd_kv]",
            "blk.*.ffn_up.weight": "rows of ffn_gate, then ffn_up, byte-wise: ne = [n_embd, 2 * n_ff]; "
                                   "llama.cpp's phi3 graph applies ggml_swiglu (not swapped) to its "
                                   "output: silu(first n_ff) * (second n_ff), so the first half is the gate",
        }
        recipe["removed"] = ["blk.*.attn_q.weight", "blk.*.attn_k.weight", "blk.*.attn_v.weight",
                             "blk.*.ffn_gate.weight"]
    return out, recipe


ARCHS = {  # file suffix -> (architecture, tokenizer.ggml.pre, metadata overrides in the arch's namespace)
    "as-qwen2": ("qwen2", "qwen2", {}),
    "as-qwen3": ("qwen3", "qwen2", {}),
    "as-llama3": ("llama", "llama-bpe", {"rope.freq_base": LLAMA3_FREQ_BASE}),
    "as-phi3": ("phi3", "smollm", {}),  # SmolLM2's BPE vocabulary and pre-tokenizer, unchanged
}


def metadata(base, arch, pre, overrides, recipe_json):
    """[(key, value, types)] in the source's order: general.architecture is written by GGUFWriter,
    then outpost.recipe, then the source's keys with llama.* renamed to <arch>.*."""
    out = [(RECIPE_KEY, recipe_json, [gguf.GGUFValueType.STRING])]
    prefix = SOURCE_ARCH + "."
    for key, (value, types) in base.fields.items():
        if key == "general.architecture":
            continue
        if key.startswith(prefix):
            key = arch + "." + key[len(prefix):]
            sub = key[len(arch) + 1:]
            if sub in overrides:
                value = overrides[sub]
        elif key == "tokenizer.ggml.pre":
            value = pre
        elif key == "general.name":
            # Without the architecture's name: llama.cpp gives special tokens other attributes
            # when general.name contains "phi3" or "phi-3" (llama-vocab.cpp, RSTRIP), and then
            # fails on this vocabulary, which has no "</s>".
            value = f"{value} (synthetic test model, scripts/make-arch-models.py)"
        out.append((key, value, types))
    return out


def recorded_recipe(path):
    """The outpost.recipe string when it is the file's second key (as written here), else None.
    Reads the header only: gguf.GGUFReader parses the whole vocabulary (seconds)."""
    try:
        with open(path, "rb") as f:
            magic, ver, _n_tensors, n_kv = struct.unpack("<IIQQ", f.read(24))
            if magic != gguf.GGUF_MAGIC or ver != 3 or n_kv < 2:
                return None
            for i in range(2):
                (klen,) = struct.unpack("<Q", f.read(8))
                key = f.read(klen).decode()
                (vtype,) = struct.unpack("<I", f.read(4))
                if vtype != gguf.GGUFValueType.STRING:
                    return None
                (vlen,) = struct.unpack("<Q", f.read(8))
                value = f.read(vlen).decode()
                if i == 1:
                    return value if key == RECIPE_KEY else None
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None


def write(path, arch, kvs, tensors):
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        w = gguf.GGUFWriter(tmp, arch)
        for key, value, types in kvs:
            w.add_key_value(key, value, types[0], sub_type=types[-1] if len(types) > 1 else None)
        for name, ggml_type, rows in tensors:
            if ggml_type == gguf.GGMLQuantizationType.F32:
                w.add_tensor(name, np.ascontiguousarray(rows, dtype=np.float32))
            else:
                w.add_tensor(name, np.ascontiguousarray(rows, dtype=np.uint8), raw_dtype=ggml_type)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the default model, SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out-dir", help="where the files go (default: beside --base)")
    args = ap.parse_args()

    out_dir = args.out_dir or os.path.dirname(os.path.abspath(args.base))
    base_name = os.path.basename(args.base)
    stem = base_name.rsplit(".", 2)[0]  # SmolLM2-135M-Instruct
    with open(os.path.abspath(__file__), "rb") as f:
        script_sha = hashlib.sha256(f.read()).hexdigest()
    source_sha = sha256_of(args.base)
    common = {"generator": "scripts/make-arch-models.py (run by scripts/make-test-models.sh)",
              "generator_sha256": script_sha, "gguf_version": version("gguf"),
              "numpy_version": np.__version__, "source": base_name, "source_sha256": source_sha}
    base = None
    for suffix, (arch, pre, overrides) in ARCHS.items():
        path = os.path.join(out_dir, f"{stem}.{suffix}.gguf")
        recorded = recorded_recipe(path)
        if recorded is not None:
            r = json.loads(recorded)
            if {k: r.get(k) for k in common} == common:
                log(f"{os.path.basename(path)}: up to date")
                print(path)
                continue
        base = base or Base(args.base)
        tensors, recipe = plan(arch, base)
        recipe = {**common, **recipe}
        recipe["metadata"] = {"renamed": f"{SOURCE_ARCH}.* -> {arch}.*",
                              "tokenizer.ggml.pre": f"{base.value('tokenizer.ggml.pre')} -> {pre}",
                              **{f"{arch}.{k}": v for k, v in overrides.items()},
                              "general.name": "suffixed with (synthetic ...)"}
        recipe_json = json.dumps(recipe, sort_keys=True)
        kvs = metadata(base, arch, pre, overrides, recipe_json)
        log(f"{os.path.basename(path)}: writing ({arch}, {len(tensors)} tensors)")
        write(path, arch, kvs, tensors)
        if recorded_recipe(path) != recipe_json:
            raise RuntimeError(f"{path}: the recipe does not read back as the second key")
        print(path)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
