#!/usr/bin/env python3
"""Writes the malformed GGUF fixtures beside this script, with plain struct packing (not our
reader's code, so the fixtures check it from outside). Run once; the outputs are committed.

    python3 Tests/GGUFTests/Fixtures/make_fixtures.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def kv_u32(key, v):
    return s(key) + struct.pack("<II", 4, v)


def kv_str(key, v):
    return s(key) + struct.pack("<I", 8) + s(v)


def tensor(name, dims, ggml_type, offset):
    out = s(name) + struct.pack("<I", len(dims))
    for d in dims:
        out += struct.pack("<Q", d)
    return out + struct.pack("<IQ", ggml_type, offset)


def gguf(kvs, tensors, data=b"", version=3, alignment=32, n_tensors=None, n_kv=None):
    head = b"GGUF" + struct.pack("<IQQ", version,
                                 len(tensors) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(tensors)
    pad = (-len(body)) % alignment
    return body + b"\0" * pad + data


def valid():
    kvs = [kv_str("general.architecture", "llama"), kv_u32("llama.block_count", 1)]
    # one F32 tensor 8x2 (64 bytes) and one Q8_0 row of 32 (34 bytes) at offset 64
    ts = [tensor("a", [8, 2], 0, 0), tensor("b", [32], 8, 64)]
    return gguf(kvs, ts, data=bytes(range(64)) + b"\x01" * 34)


FIXTURES = {
    "empty.gguf": b"",
    "magic-only.gguf": b"GGUF",
    "wrong-magic.gguf": b"GGML" + valid()[4:],
    "version-1.gguf": gguf([kv_u32("x", 1)], [], version=1),
    "version-99.gguf": gguf([kv_u32("x", 1)], [], version=99),
    "header-truncated.gguf": valid()[:20],
    "huge-kv-count.gguf": gguf([kv_u32("x", 1)], [], n_kv=0xFFFF_FFFF_FFFF),
    "huge-tensor-count.gguf": gguf([kv_u32("x", 1)], [], n_tensors=1 << 60),
    "huge-string-length.gguf": b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 62) + b"key" + b"\0" * 16,
    "huge-array-length.gguf": gguf([s("arr") + struct.pack("<IIQ", 9, 4, 1 << 58)], []),
    "bad-value-type.gguf": gguf([s("k") + struct.pack("<II", 13, 0)], []),
    "tensor-past-end.gguf": gguf([kv_u32("x", 1)], [tensor("t", [32], 0, 1 << 20)], data=b"\0" * 128),
    "tensor-data-truncated.gguf": valid()[:-10],
    "misaligned-tensor-offset.gguf": gguf([kv_u32("x", 1)], [tensor("t", [4], 0, 3)], data=b"\0" * 64),
    "bad-alignment.gguf": gguf([kv_u32("general.alignment", 48)], [], alignment=48),
    "too-many-dims.gguf": gguf([], [tensor("t", [1, 1, 1, 1, 1], 0, 0)], data=b"\0" * 32),
    "dim-overflow.gguf": gguf([], [tensor("t", [1 << 40, 1 << 40], 0, 0)], data=b"\0" * 32),
    "byte-size-overflow.gguf": gguf([], [tensor("t", [1 << 61, 1], 0, 0)], data=b"\0" * 32),
    "row-not-block-multiple.gguf": gguf([], [tensor("t", [33], 8, 0)], data=b"\0" * 64),
    "duplicate-key.gguf": gguf([kv_u32("x", 1), kv_u32("x", 2)], []),
    "duplicate-tensor.gguf": gguf([], [tensor("t", [8], 0, 0), tensor("t", [8], 0, 32)], data=b"\0" * 64),
    "nested-arrays.gguf": gguf([s("deep") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQ", 9, 1) * 6
                                + struct.pack("<IQ", 4, 0)], []),
    "truncated-in-metadata.gguf": valid()[:40],
    "truncated-in-tensor-table.gguf": valid()[:100],
    "bad-bool.gguf": gguf([s("flag") + struct.pack("<IB", 7, 2)], []),
}


def main():
    for name, data in FIXTURES.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    with open(os.path.join(HERE, "valid-small.gguf"), "wb") as f:
        f.write(valid())


if __name__ == "__main__":
    main()
