// Repacked (row-interleaved) Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K and Q6_K weights: the layout, the
// repacker, row dequantization and the portable reference of cq_matmul_repacked that every path
// matches bit for bit (see cquants.h). The reference takes the same steps per (row, token) as the SIMD kernels: an
// exact integer sum per block, then fused multiply-adds in block order.
#include "quants_impl.h"

#include <stdlib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

size_t cq_repacked_block_bytes(int type) {
    switch (type) {
    case CQ_TYPE_Q4_0: return CQ_REPACK_ROWS * sizeof(cq_block_q4_0); // 144
    case CQ_TYPE_Q4_1: return CQ_REPACK_ROWS * sizeof(cq_block_q4_1); // 160
    case CQ_TYPE_Q5_0: return CQ_REPACK_ROWS * sizeof(cq_block_q5_0); // 176
    case CQ_TYPE_Q5_1: return CQ_REPACK_ROWS * sizeof(cq_block_q5_1); // 192
    case CQ_TYPE_Q8_0: return CQ_REPACK_ROWS * sizeof(cq_block_q8_0); // 272
    case CQ_TYPE_Q4_K: return CQ_REPACK_ROWS * sizeof(cq_block_q4_K); // 1152
    case CQ_TYPE_Q6_K: return CQ_REPACK_ROWS * sizeof(cq_block_q6_K); // 1680
    default: return 0;
    }
}

/// Elements per block of a repackable type.
static int64_t cq_repack_block_elems(int type) {
    return type == CQ_TYPE_Q4_K || type == CQ_TYPE_Q6_K ? CQ_QK_K : CQ_QK;
}

size_t cq_repacked_size(int type, int64_t rows, int64_t n) {
    const size_t block = cq_repacked_block_bytes(type);
    const int64_t qk = cq_repack_block_elems(type);
    if (block == 0 || rows <= 0 || n <= 0 || rows % CQ_REPACK_ROWS != 0 || n % qk != 0) return 0;
    return (size_t)(rows / CQ_REPACK_ROWS) * (size_t)(n / qk) * block;
}

static int cq_repack_range_ok(int type, int64_t n, int64_t row_begin, int64_t row_end) {
    return cq_repacked_block_bytes(type) != 0 && n > 0 && n % cq_repack_block_elems(type) == 0 && row_begin >= 0 &&
           row_begin <= row_end && row_begin % CQ_REPACK_ROWS == 0 && row_end % CQ_REPACK_ROWS == 0;
}

// ---- Q4_K scales ------------------------------------------------------------------------------
// The 96 scale bytes of a repacked Q4_K block (offset 32) hold the 6-bit scale sc and min m of
// sub-block j of row r as: at 32 * (j / 4) + i, the low four bits of sc | those of m << 4; at
// 64 + i, bits 4 * (j / 4) ... + 1 the top two bits of sc, + 2 ... + 3 those of m; where
// i = 16 * (r / 4) + 4 * (j % 4) + r % 4 (rows 0-3 in the first 16 bytes of each 32, rows 4-7 in
// the second: one 16-byte half per four rows, as the quants).

static inline int cq_k4r_index(int r, int j) { return 16 * (r >> 2) + 4 * (j & 3) + (r & 3); }

/// Row r's scales and mins of one repacked Q4_K block's scale bytes `s` (96 bytes).
static void cq_k4r_get(const uint8_t *s, int r, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 8; j++) {
        const int i = cq_k4r_index(r, j);
        const uint8_t lo = s[32 * (j >> 2) + i], hi = (uint8_t)(s[64 + i] >> (4 * (j >> 2)));
        sc[j] = (uint8_t)((lo & 15) | (hi & 3) << 4);
        m[j] = (uint8_t)((lo >> 4) | (hi >> 2 & 3) << 4);
    }
}

/// ggml's 12-byte packing of eight 6-bit scales and mins (the inverse of cq_k4_scales_mins).
static void cq_k4_pack_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t scales[12]) {
    for (int j = 0; j < 4; j++) {
        scales[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        scales[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        scales[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

// ---- Q5_0 / Q5_1 quants -----------------------------------------------------------------------
// A repacked Q5 block holds d[8] (and m[8] for Q5_1), then 32 bytes of top bits, then four chunks
// of 32 bytes. Byte 4r + k of chunk c holds row r's 5-bit quant of element 4c + k in bits 0-4 and
// the low three bits of that of element 16 + 4c + k in bits 5-7; byte 4r + k of the top bits holds
// the top two bits of the latter, chunk c's in bits 2c and 2c + 1. So the first quant of a byte is
// one AND away, and the second a shift of each and an OR: fewer steps per 32 quants than ggml's
// nibbles and qh, whose fifth bits would be moved next to every nibble.

/// Offset of the top bits in a repacked Q5_0 (16) or Q5_1 (32) block; the chunks follow at + 32.
static inline size_t cq_q5r_head(int type) { return type == CQ_TYPE_Q5_1 ? 32 : 16; }

_Static_assert(16 + 32 + 128 == CQ_REPACK_ROWS * sizeof(cq_block_q5_0), "repacked Q5_0 keeps the plain size");
_Static_assert(32 + 32 + 128 == CQ_REPACK_ROWS * sizeof(cq_block_q5_1), "repacked Q5_1 keeps the plain size");

/// Row r's 5-bit quants 4c + k (*lo) and 16 + 4c + k (*hi) of a repacked Q5 block `in`.
static inline void cq_q5r_quants(const uint8_t *in, size_t head, int r, int c, int k, int *lo, int *hi) {
    const uint8_t q = in[head + 32 + 32 * c + 4 * r + k], top = in[head + 4 * r + k];
    *lo = q & 31;
    *hi = q >> 5 | (top >> (2 * c) & 3) << 3;
}

/// Writes one plain Q5 block's quants (qs, qh) as row r of a repacked block `out`.
static void cq_q5r_put(uint8_t *out, size_t head, int r, const uint8_t qs[16], const uint8_t qh_bytes[4]) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, 4);
    for (int k = 0; k < 4; k++) {
        uint8_t top = 0;
        for (int c = 0; c < 4; c++) {
            const int lo = cq_q5_low(qs, qh, 4 * c + k), hi = cq_q5_high(qs, qh, 4 * c + k);
            out[head + 32 + 32 * c + 4 * r + k] = (uint8_t)(lo | (hi & 7) << 5);
            top |= (uint8_t)((hi >> 3) << (2 * c));
        }
        out[head + 4 * r + k] = top;
    }
}

/// Row r's quants of a repacked block `in` as a plain Q5 block's qs and qh.
static void cq_q5r_get(const uint8_t *in, size_t head, int r, uint8_t qs[16], uint8_t qh_bytes[4]) {
    uint32_t qh = 0;
    for (int c = 0; c < 4; c++) {
        for (int k = 0; k < 4; k++) {
            int lo, hi;
            cq_q5r_quants(in, head, r, c, k, &lo, &hi);
            qs[4 * c + k] = (uint8_t)((lo & 15) | (hi & 15) << 4);
            qh |= (uint32_t)(lo >> 4) << (4 * c + k) | (uint32_t)(hi >> 4) << (16 + 4 * c + k);
        }
    }
    memcpy(qh_bytes, &qh, 4);
}

// ---- Q6_K quants -------------------------------------------------------------------------------
// A repacked Q6_K block holds d[8], then the int8 scales, sub-block j of row r at byte 16 + 8j + r,
// then at 144 one quad of 96 bytes per sub-block j (elements 16j ... 16j + 15 of each row): three
// chunks of 32 bytes, byte 4r + i of chunk k (k = 0, 1, 2) holding row r's 6-bit quant of element
// 16j + 4k + i in bits 0-5 and, in bits 6-7, two bits of that of element 16j + 12 + i: its bits
// 4-5 in chunk 0, 2-3 in chunk 1, 0-1 in chunk 2. So three quants of four are one AND away and the
// fourth is the three chunks' top bits gathered (two SRIs and a shift on NEON; three ANDs, three
// shifts and two ORs on x86): 11 operations per four chunks on x86, where ggml's ql nibbles and qh
// pairs take 17 (an AND and an OR for every quant besides the shifts). A sub-block's scales of the
// eight rows are one 8-byte load.

enum { CQ_Q6R_SCALES = 16, CQ_Q6R_QUANTS = 144, CQ_Q6R_QUAD = 96 };
_Static_assert(CQ_Q6R_QUANTS + 16 * CQ_Q6R_QUAD == CQ_REPACK_ROWS * sizeof(cq_block_q6_K),
               "repacked Q6_K keeps the plain size");

/// Row r's 6-bit quant (0...63) of element e (0...15) of sub-block j of a repacked Q6_K block `in`.
static inline int cq_q6r_quant(const uint8_t *in, int r, int j, int e) {
    const uint8_t *quad = in + CQ_Q6R_QUANTS + CQ_Q6R_QUAD * j;
    const int k = e >> 2, i = 4 * r + (e & 3);
    if (k < 3) return quad[32 * k + i] & 63;
    return (quad[i] >> 6) << 4 | (quad[32 + i] >> 6) << 2 | quad[64 + i] >> 6;
}

/// Writes one plain Q6_K block's scales and quants as row r of a repacked block `out`.
static void cq_q6r_put(uint8_t *out, int r, const cq_block_q6_K *x) {
    int8_t q[CQ_QK_K];
    cq_q6_K_unpack(x, q);
    for (int j = 0; j < 16; j++) {
        out[CQ_Q6R_SCALES + 8 * j + r] = (uint8_t)x->scales[j];
        uint8_t *quad = out + CQ_Q6R_QUANTS + CQ_Q6R_QUAD * j;
        for (int i = 0; i < 4; i++) {
            const int fourth = q[16 * j + 12 + i] + 32;
            for (int k = 0; k < 3; k++) {
                quad[32 * k + 4 * r + i] = (uint8_t)((q[16 * j + 4 * k + i] + 32) | (fourth >> (4 - 2 * k) & 3) << 6);
            }
        }
    }
}

/// Row r of a repacked block `in` as a plain Q6_K block (ggml's ql / qh split, d and scales).
static void cq_q6r_get(const uint8_t *in, int r, cq_block_q6_K *x) {
    uint8_t q[CQ_QK_K];
    for (int j = 0; j < 16; j++) {
        x->scales[j] = (int8_t)in[CQ_Q6R_SCALES + 8 * j + r];
        for (int e = 0; e < 16; e++) q[16 * j + e] = (uint8_t)cq_q6r_quant(in, r, j, e);
    }
    // the inverse of cq_q6_K_unpack: per half of 128, elements l and l + 64 share ql[l], l + 32
    // and l + 96 share ql[l + 32] (low nibble first); qh[l] holds the top bits of all four
    for (int h = 0; h < 2; h++) {
        const uint8_t *qq = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            x->ql[64 * h + l] = (uint8_t)((qq[l] & 15) | (qq[l + 64] & 15) << 4);
            x->ql[64 * h + l + 32] = (uint8_t)((qq[l + 32] & 15) | (qq[l + 96] & 15) << 4);
            x->qh[32 * h + l] =
                (uint8_t)(qq[l] >> 4 | (qq[l + 32] >> 4) << 2 | (qq[l + 64] >> 4) << 4 | (qq[l + 96] >> 4) << 6);
        }
    }
    memcpy(&x->d, in + 2 * r, 2);
}

// ---- Layout -----------------------------------------------------------------------------------

int cq_repack(int type, const void *src, size_t row_bytes, void *dst, int64_t n, int64_t row_begin, int64_t row_end) {
    if (!cq_repack_range_ok(type, n, row_begin, row_end)) return -1;
    const int64_t nb = n / cq_repack_block_elems(type);
    const size_t block = cq_repacked_block_bytes(type), group_bytes = (size_t)nb * block;
    for (int64_t g = row_begin / CQ_REPACK_ROWS; g < row_end / CQ_REPACK_ROWS; g++) {
        uint8_t *out = (uint8_t *)dst + (size_t)g * group_bytes;
        for (int64_t b = 0; b < nb; b++, out += block) {
            if (type == CQ_TYPE_Q4_K) memset(out + 96, 0, 32); // the top bits are or-ed in below
            for (int r = 0; r < CQ_REPACK_ROWS; r++) {
                const char *row = (const char *)src + (size_t)(g * CQ_REPACK_ROWS + r) * row_bytes;
                if (type == CQ_TYPE_Q4_0) {
                    const cq_block_q4_0 *x = (const cq_block_q4_0 *)row + b;
                    memcpy(out + 2 * r, &x->d, 2);
                    for (int c = 0; c < 4; c++) memcpy(out + 16 + 32 * c + 4 * r, x->qs + 4 * c, 4);
                } else if (type == CQ_TYPE_Q4_1) {
                    const cq_block_q4_1 *x = (const cq_block_q4_1 *)row + b;
                    memcpy(out + 2 * r, &x->d, 2);
                    memcpy(out + 16 + 2 * r, &x->m, 2);
                    for (int c = 0; c < 4; c++) memcpy(out + 32 + 32 * c + 4 * r, x->qs + 4 * c, 4);
                } else if (type == CQ_TYPE_Q5_0 || type == CQ_TYPE_Q5_1) {
                    const cq_block_q5_0 *x0 = (const cq_block_q5_0 *)row + b;
                    const cq_block_q5_1 *x1 = (const cq_block_q5_1 *)row + b;
                    const int m = type == CQ_TYPE_Q5_1;
                    const size_t head = cq_q5r_head(type);
                    memcpy(out + 2 * r, m ? &x1->d : &x0->d, 2);
                    if (m) memcpy(out + 16 + 2 * r, &x1->m, 2);
                    cq_q5r_put(out, head, r, m ? x1->qs : x0->qs, m ? x1->qh : x0->qh);
                } else if (type == CQ_TYPE_Q8_0) {
                    const cq_block_q8_0 *x = (const cq_block_q8_0 *)row + b;
                    memcpy(out + 2 * r, &x->d, 2);
                    for (int c = 0; c < 8; c++) memcpy(out + 16 + 32 * c + 4 * r, x->qs + 4 * c, 4);
                } else if (type == CQ_TYPE_Q6_K) {
                    const cq_block_q6_K *x = (const cq_block_q6_K *)row + b;
                    memcpy(out + 2 * r, &x->d, 2);
                    cq_q6r_put(out, r, x);
                } else {
                    const cq_block_q4_K *x = (const cq_block_q4_K *)row + b;
                    memcpy(out + 2 * r, &x->d, 2);
                    memcpy(out + 16 + 2 * r, &x->dmin, 2);
                    uint8_t sc[8], m[8];
                    cq_k4_scales_mins(x->scales, sc, m);
                    for (int j = 0; j < 8; j++) {
                        const int i = cq_k4r_index(r, j);
                        out[32 + 32 * (j >> 2) + i] = (uint8_t)((sc[j] & 15) | (m[j] & 15) << 4);
                        out[96 + i] |= (uint8_t)(((sc[j] >> 4) | (m[j] >> 4) << 2) << (4 * (j >> 2)));
                    }
                    for (int c = 0; c < 32; c++) memcpy(out + 128 + 32 * c + 4 * r, x->qs + 4 * c, 4);
                }
            }
        }
    }
    return 0;
}

int cq_dequantize_row_repacked(int type, const void *w, int64_t n, int64_t row, float *dst) {
    const int64_t qk = cq_repack_block_elems(type);
    if (cq_repacked_block_bytes(type) == 0 || n <= 0 || n % qk != 0 || row < 0) return -1;
    const int64_t nb = n / qk;
    const size_t block = cq_repacked_block_bytes(type);
    const uint8_t *in = (const uint8_t *)w + (size_t)(row / CQ_REPACK_ROWS) * (size_t)nb * block;
    const int r = (int)(row % CQ_REPACK_ROWS);
    for (int64_t b = 0; b < nb; b++, in += block) {
        if (type == CQ_TYPE_Q4_0) {
            cq_block_q4_0 x;
            memcpy(&x.d, in + 2 * r, 2);
            for (int c = 0; c < 4; c++) memcpy(x.qs + 4 * c, in + 16 + 32 * c + 4 * r, 4);
            cq_dequantize_row_q4_0(&x, dst + b * qk, qk);
        } else if (type == CQ_TYPE_Q4_1) {
            cq_block_q4_1 x;
            memcpy(&x.d, in + 2 * r, 2);
            memcpy(&x.m, in + 16 + 2 * r, 2);
            for (int c = 0; c < 4; c++) memcpy(x.qs + 4 * c, in + 32 + 32 * c + 4 * r, 4);
            cq_dequantize_row_q4_1(&x, dst + b * qk, qk);
        } else if (type == CQ_TYPE_Q5_0 || type == CQ_TYPE_Q5_1) {
            // rebuilt as a Q5_1 block for Q5_1, or its Q5_0 fields (d, qh, qs) for Q5_0
            cq_block_q5_0 x0;
            cq_block_q5_1 x1;
            const int m = type == CQ_TYPE_Q5_1;
            const size_t head = cq_q5r_head(type);
            memcpy(m ? &x1.d : &x0.d, in + 2 * r, 2);
            if (m) memcpy(&x1.m, in + 16 + 2 * r, 2);
            cq_q5r_get(in, head, r, m ? x1.qs : x0.qs, m ? x1.qh : x0.qh);
            if (m) cq_dequantize_row_q5_1(&x1, dst + b * qk, qk);
            else cq_dequantize_row_q5_0(&x0, dst + b * qk, qk);
        } else if (type == CQ_TYPE_Q8_0) {
            cq_block_q8_0 x;
            memcpy(&x.d, in + 2 * r, 2);
            for (int c = 0; c < 8; c++) memcpy(x.qs + 4 * c, in + 16 + 32 * c + 4 * r, 4);
            cq_dequantize_row_q8_0(&x, dst + b * qk, qk);
        } else if (type == CQ_TYPE_Q6_K) {
            cq_block_q6_K x;
            cq_q6r_get(in, r, &x);
            cq_dequantize_row_q6_K(&x, dst + b * qk, qk);
        } else {
            cq_block_q4_K x;
            memcpy(&x.d, in + 2 * r, 2);
            memcpy(&x.dmin, in + 16 + 2 * r, 2);
            uint8_t sc[8], m[8];
            cq_k4r_get(in + 32, r, sc, m);
            cq_k4_pack_scales(sc, m, x.scales);
            for (int c = 0; c < 32; c++) memcpy(x.qs + 4 * c, in + 128 + 32 * c + 4 * r, 4);
            cq_dequantize_row_q4_K(&x, dst + b * qk, qk);
        }
    }
    return 0;
}

// ---- Reference --------------------------------------------------------------------------------

/// One repacked block `in` of row r against an activation block: the exact integer sum, folded
/// into acc (and macc) as every path does.
static inline void cq_repacked_block_dot(int type, const uint8_t *in, int r, const void *xblock, float *acc,
                                         float *macc) {
    cq_f16 dw;
    memcpy(&dw, in + 2 * r, 2);
    int32_t sum = 0;
    if (type == CQ_TYPE_Q4_0) {
        const cq_block_q8_0 *xb = xblock;
        for (int c = 0; c < 4; c++) {
            for (int k = 0; k < 4; k++) {
                const uint8_t q = in[16 + 32 * c + 4 * r + k];
                sum += ((int32_t)(q & 0x0f) - 8) * xb->qs[4 * c + k] + ((int32_t)(q >> 4) - 8) * xb->qs[16 + 4 * c + k];
            }
        }
        *acc = fmaf(CQ_FP16(dw) * CQ_FP16(xb->d), (float)sum, *acc);
    } else if (type == CQ_TYPE_Q4_1) {
        const cq_block_q8_1 *xb = xblock;
        for (int c = 0; c < 4; c++) {
            for (int k = 0; k < 4; k++) {
                const uint8_t q = in[32 + 32 * c + 4 * r + k];
                sum += (int32_t)(q & 0x0f) * xb->qs[4 * c + k] + (int32_t)(q >> 4) * xb->qs[16 + 4 * c + k];
            }
        }
        cq_f16 mw;
        memcpy(&mw, in + 16 + 2 * r, 2);
        *acc = fmaf(CQ_FP16(dw) * CQ_FP16(xb->d), (float)sum, *acc);
        *macc = fmaf(CQ_FP16(mw), CQ_FP16(xb->s), *macc);
    } else if (type == CQ_TYPE_Q5_0 || type == CQ_TYPE_Q5_1) {
        // Q5_0: sum of (q - 16) * x against Q8_0; Q5_1: of q * x against Q8_1, and the min term
        const cq_block_q8_0 *x0 = xblock;
        const cq_block_q8_1 *x1 = xblock;
        const int m = type == CQ_TYPE_Q5_1, offset = m ? 0 : 16;
        const int8_t *xq = m ? x1->qs : x0->qs;
        for (int c = 0; c < 4; c++) {
            for (int k = 0; k < 4; k++) {
                int lo, hi;
                cq_q5r_quants(in, cq_q5r_head(type), r, c, k, &lo, &hi);
                sum += (lo - offset) * xq[4 * c + k] + (hi - offset) * xq[16 + 4 * c + k];
            }
        }
        *acc = fmaf(CQ_FP16(dw) * CQ_FP16(m ? x1->d : x0->d), (float)sum, *acc);
        if (m) {
            cq_f16 mw;
            memcpy(&mw, in + 16 + 2 * r, 2);
            *macc = fmaf(CQ_FP16(mw), CQ_FP16(x1->s), *macc);
        }
    } else if (type == CQ_TYPE_Q8_0) {
        const cq_block_q8_0 *xb = xblock;
        for (int c = 0; c < 8; c++) {
            for (int k = 0; k < 4; k++) sum += (int32_t)(int8_t)in[16 + 32 * c + 4 * r + k] * xb->qs[4 * c + k];
        }
        *acc = fmaf(CQ_FP16(dw) * CQ_FP16(xb->d), (float)sum, *acc);
    } else if (type == CQ_TYPE_Q6_K) {
        // Q6_K: sum = sum_j sc_j * (sum over sub-block j of (q - 32) * a), |sum| <= 2^27
        const cq_block_q8_K *xb = xblock;
        for (int j = 0; j < 16; j++) {
            int32_t s = 0;
            for (int e = 0; e < 16; e++) s += (cq_q6r_quant(in, r, j, e) - 32) * xb->qs[16 * j + e];
            sum += (int8_t)in[CQ_Q6R_SCALES + 8 * j + r] * s;
        }
        *acc = fmaf(CQ_FP16(dw) * xb->d, (float)sum, *acc);
    } else {
        // Q4_K: sum = sum_j sc_j * (sum over sub-block j of q * a), nmsum = -sum_j m_j * (the
        // activation sum of sub-block j); sub-block j's quants are the low (j even) or high (j
        // odd) nibbles of bytes 32 * (j / 2) ... + 31 of the row, in chunks 8 * (j / 2) ... + 7.
        const cq_block_q8_K *xb = xblock;
        uint8_t sc[8], m[8];
        cq_k4r_get(in + 32, r, sc, m);
        int32_t nmsum = 0;
        for (int j = 0; j < 8; j++) {
            const int k = j >> 1, shift = 4 * (j & 1);
            const int8_t *a = xb->qs + 64 * k + 32 * (j & 1);
            int32_t s = 0;
            for (int l = 0; l < 32; l++) s += (in[128 + 32 * (8 * k + l / 4) + 4 * r + l % 4] >> shift & 15) * a[l];
            sum += sc[j] * s;
            nmsum -= m[j] * (xb->bsums[2 * j] + xb->bsums[2 * j + 1]);
        }
        cq_f16 mw;
        memcpy(&mw, in + 16 + 2 * r, 2);
        *acc = fmaf(CQ_FP16(dw) * xb->d, (float)sum, *acc);
        *acc = fmaf(CQ_FP16(mw) * xb->d, (float)nmsum, *acc);
    }
}

int cq_matmul_repacked_scalar(int type, const void *w, const void *x, size_t x_stride, float *y, size_t y_stride,
                              int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens) {
    if (!cq_repack_range_ok(type, n, row_begin, row_end)) return -1;
    const int64_t nb = n / cq_repack_block_elems(type);
    const size_t block = cq_repacked_block_bytes(type), group_bytes = (size_t)nb * block;
    const size_t xblock = cq_get_type_traits(cq_vec_dot_type(type))->type_size;
    for (int64_t row = row_begin; row < row_end; row++) {
        const uint8_t *group = (const uint8_t *)w + (size_t)(row / CQ_REPACK_ROWS) * group_bytes;
        const int r = (int)(row % CQ_REPACK_ROWS);
        for (int64_t t = 0; t < tokens; t++) {
            const char *xt = (const char *)x + (size_t)t * x_stride;
            float acc = 0, macc = 0;
            for (int64_t b = 0; b < nb; b++) {
                cq_repacked_block_dot(type, group + (size_t)b * block, r, xt + (size_t)b * xblock, &acc, &macc);
            }
            y[(size_t)t * y_stride + row] = acc + macc;
        }
    }
    return 0;
}
