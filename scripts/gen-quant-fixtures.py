#!/usr/bin/env python3
"""Generates the quantization fixtures CQuants is tested against, with the PyPI `gguf` package's
numpy quantizers (an implementation that is not ours, written to match ggml bit for bit).

Run once, commit the output:
    python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install gguf==0.19.0 numpy
    /tmp/gguf-venv/bin/python scripts/gen-quant-fixtures.py Tests/CQuantsTests/Fixtures \
        "$(scripts/fetch-model.sh)"

Files (little-endian, raw):
    input.f32            2048 float32 values (64 blocks of 32), including edge-case blocks
    <type>.bin           gguf.quants.quantize(input, type) for type in q4_0, q4_1, q5_0, q5_1, q8_0
    <type>.deq.f32       gguf.quants.dequantize(<type>.bin, type)
    <ktype>-random.bin   8 super-blocks of q4_k, q5_k, q6_k with random quants and scale bytes and
                         sane f16 scales (gguf has no K-quant quantizer), and
    <ktype>-random.deq.f32  gguf.quants.dequantize of them
    f16.bin              input.astype(float16): F32 -> F16 rounding as numpy does it
    f16-edge.f32 / f16-edge.bin   values around F16's rounding, subnormal and overflow edges
    model-<tensor>.rows0-3.f32     with a model path as second argument: the first four rows of
                         a few tensors of the default model, dequantized by gguf's reader
    kmodel-<tensor>.rows0-3.bin / .f32  with the Q4_K_M re-quantization of the default model
                         (scripts/make-test-models.sh) as third argument: the raw bytes of the first
                         four rows of a Q4_K, a Q6_K and a Q5_0 (or Q8_0) tensor, and gguf's
                         dequantization of them
"""
import os
import sys

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T



def make_input() -> np.ndarray:
    rng = np.random.default_rng(20261125)
    blocks = []
    # 48 blocks of gaussian data with scales spanning 1e-4 ... 1e3
    for i in range(48):
        scale = 10.0 ** rng.uniform(-4, 3)
        blocks.append(rng.standard_normal(32) * scale + rng.uniform(-1, 1) * scale * (i % 3 == 0))
    blocks.append(np.zeros(32))                                  # all zero: d = 0
    blocks.append(np.full(32, 0.75))                             # constant: q4_1 d = 0
    blocks.append(np.full(32, -3.5))                             # constant negative
    spike = np.zeros(32); spike[7] = -1000.0; blocks.append(spike)   # single negative extreme
    spike = np.zeros(32); spike[31] = 65000.0; blocks.append(spike)  # near F16 max
    blocks.append(np.linspace(-1, 1, 32))                        # ramps hit rounding ties
    blocks.append(np.linspace(0, 15, 32))
    blocks.append(np.arange(32) - 16.0)
    blocks.append(np.where(np.arange(32) % 2 == 0, 127.0, -127.0))
    blocks.append(np.where(np.arange(32) % 2 == 0, 1e-6, -2e-6))  # subnormal F16 scales
    blocks.append(rng.uniform(-1, 1, 32) * 1e-8)                  # scale underflows F16
    blocks.append(np.abs(rng.standard_normal(32)))                # all positive (q4_0 max > 0)
    blocks.append(-np.abs(rng.standard_normal(32)))               # all negative
    blocks.append(rng.integers(-8, 8, 32).astype(np.float64))     # exactly representable q4_0
    blocks.append(rng.integers(-127, 128, 32).astype(np.float64)) # exactly representable q8_0
    blocks.append(rng.standard_normal(32) * 3.0)
    assert len(blocks) == 64
    return np.concatenate(blocks).astype(np.float32)


def f16_edges() -> np.ndarray:
    v = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, -65520.0, 1e9, -1e9,
         np.inf, -np.inf, 6.1035156e-05, 6.0975552e-05, 5.9604645e-08, 2.9802322e-08,
         2.9802326e-08, 8.940697e-08, 1e-10, 0.1, 0.2, 0.3, 1.0009765625, 1.00048828125,
         1.00146484375, 2049.0, 2051.0, 4097.0, 4099.0, 3.14159265]
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, 226, dtype=np.uint64).astype(np.uint32)
    rand = bits.view(np.float32)
    rand = rand[np.isfinite(rand)]
    return np.concatenate([np.array(v, dtype=np.float32), rand]).astype(np.float32)


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/CQuantsTests/Fixtures"
    os.makedirs(out, exist_ok=True)
    x = make_input()
    x.tofile(os.path.join(out, "input.f32"))
    for name, qt in (("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q5_0", T.Q5_0), ("q5_1", T.Q5_1), ("q8_0", T.Q8_0)):
        q = gguf.quants.quantize(x.reshape(1, -1), qt)
        q.tofile(os.path.join(out, f"{name}.bin"))
        d = gguf.quants.dequantize(q, qt).astype(np.float32)
        d.tofile(os.path.join(out, f"{name}.deq.f32"))
    with np.errstate(over="ignore"):
        x.astype(np.float16).tofile(os.path.join(out, "f16.bin"))
        e = f16_edges()
        e.tofile(os.path.join(out, "f16-edge.f32"))
        e.astype(np.float16).tofile(os.path.join(out, "f16-edge.bin"))
    rng = np.random.default_rng(20261203)
    for name, qt, size, scale_offsets in (("q4_k", T.Q4_K, 144, (0, 2)), ("q5_k", T.Q5_K, 176, (0, 2)),
                                          ("q6_k", T.Q6_K, 210, (208,))):
        blocks = rng.integers(0, 256, (8, size), dtype=np.uint8)
        for b in range(8):
            for off in scale_offsets:
                blocks[b, off:off + 2] = np.array([rng.uniform(1e-4, 0.05)], dtype=np.float16).view(np.uint8)
        blocks.tofile(os.path.join(out, f"{name}-random.bin"))
        d = gguf.quants.dequantize(blocks.reshape(1, -1), qt).astype(np.float32)
        d.tofile(os.path.join(out, f"{name}-random.deq.f32"))
    if len(sys.argv) > 3:
        reader = gguf.GGUFReader(sys.argv[3])
        done = set()
        for t in reader.tensors:
            tn = t.tensor_type.name
            if tn in ("Q4_K", "Q6_K", "Q5_0", "Q8_0") and tn not in done and len(t.shape) == 2:
                done.add(tn)
                raw = np.asarray(t.data)[:4]
                raw.tofile(os.path.join(out, f"kmodel-{tn.lower()}-{t.name}.rows0-3.bin"))
                rows = gguf.quants.dequantize(raw, t.tensor_type).astype(np.float32)
                rows.tofile(os.path.join(out, f"kmodel-{tn.lower()}-{t.name}.rows0-3.f32"))
    if len(sys.argv) > 2:
        reader = gguf.GGUFReader(sys.argv[2])
        wanted = ("blk.0.attn_q.weight", "blk.29.ffn_down.weight", "token_embd.weight")
        for t in reader.tensors:
            if t.name in wanted:
                rows = gguf.quants.dequantize(t.data, t.tensor_type)[:4].astype(np.float32)
                rows.tofile(os.path.join(out, f"model-{t.name}.rows0-3.f32"))
    print(f"wrote fixtures to {out} with gguf from {os.path.dirname(gguf.__file__)}")


if __name__ == "__main__":
    main()
