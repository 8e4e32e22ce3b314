// Repacked (row-interleaved) Q4_1 and Q8_0 weights: the layout, the repacker, row dequantization
// and the portable reference of cq_matmul_repacked that every path matches bit for bit (see
// cquants.h). The reference takes the same steps per (row, token) as the SIMD kernels: an exact
// integer sum per block, then fused multiply-adds in block order.
#include "quants_impl.h"

#include <stdlib.h>

size_t cq_repacked_block_bytes(int type) {
    switch (type) {
    case CQ_TYPE_Q4_1: return CQ_REPACK_ROWS * sizeof(cq_block_q4_1); // 160
    case CQ_TYPE_Q8_0: return CQ_REPACK_ROWS * sizeof(cq_block_q8_0); // 272
    default: return 0;
    }
}

size_t cq_repacked_size(int type, int64_t rows, int64_t n) {
    const size_t block = cq_repacked_block_bytes(type);
    if (block == 0 || rows <= 0 || n <= 0 || rows % CQ_REPACK_ROWS != 0 || n % CQ_QK != 0) return 0;
    return (size_t)(rows / CQ_REPACK_ROWS) * (size_t)(n / CQ_QK) * block;
}

static int cq_repack_range_ok(int type, int64_t n, int64_t row_begin, int64_t row_end) {
    return cq_repacked_block_bytes(type) != 0 && n > 0 && n % CQ_QK == 0 && row_begin >= 0 && row_begin <= row_end &&
           row_begin % CQ_REPACK_ROWS == 0 && row_end % CQ_REPACK_ROWS == 0;
}

int cq_repack(int type, const void *src, size_t row_bytes, void *dst, int64_t n, int64_t row_begin, int64_t row_end) {
    if (!cq_repack_range_ok(type, n, row_begin, row_end)) return -1;
    const int64_t nb = n / CQ_QK;
    const size_t block = cq_repacked_block_bytes(type), group_bytes = (size_t)nb * block;
    for (int64_t g = row_begin / CQ_REPACK_ROWS; g < row_end / CQ_REPACK_ROWS; g++) {
        uint8_t *out = (uint8_t *)dst + (size_t)g * group_bytes;
        for (int64_t b = 0; b < nb; b++, out += block) {
            for (int r = 0; r < CQ_REPACK_ROWS; r++) {
                const char *row = (const char *)src + (size_t)(g * CQ_REPACK_ROWS + r) * row_bytes;
                if (type == CQ_TYPE_Q4_1) {
                    const cq_block_q4_1 *x = (const cq_block_q4_1 *)row + b;
                    memcpy(out + 2 * r, &x->d, 2);
                    memcpy(out + 16 + 2 * r, &x->m, 2);
                    for (int c = 0; c < 4; c++) memcpy(out + 32 + 32 * c + 4 * r, x->qs + 4 * c, 4);
                } else {
                    const cq_block_q8_0 *x = (const cq_block_q8_0 *)row + b;
                    memcpy(out + 2 * r, &x->d, 2);
                    for (int c = 0; c < 8; c++) memcpy(out + 16 + 32 * c + 4 * r, x->qs + 4 * c, 4);
                }
            }
        }
    }
    return 0;
}

int cq_dequantize_row_repacked(int type, const void *w, int64_t n, int64_t row, float *dst) {
    if (cq_repacked_block_bytes(type) == 0 || n <= 0 || n % CQ_QK != 0 || row < 0) return -1;
    const int64_t nb = n / CQ_QK;
    const size_t block = cq_repacked_block_bytes(type);
    const uint8_t *in = (const uint8_t *)w + (size_t)(row / CQ_REPACK_ROWS) * (size_t)nb * block;
    const int r = (int)(row % CQ_REPACK_ROWS);
    for (int64_t b = 0; b < nb; b++, in += block) {
        if (type == CQ_TYPE_Q4_1) {
            cq_block_q4_1 x;
            memcpy(&x.d, in + 2 * r, 2);
            memcpy(&x.m, in + 16 + 2 * r, 2);
            for (int c = 0; c < 4; c++) memcpy(x.qs + 4 * c, in + 32 + 32 * c + 4 * r, 4);
            cq_dequantize_row_q4_1(&x, dst + b * CQ_QK, CQ_QK);
        } else {
            cq_block_q8_0 x;
            memcpy(&x.d, in + 2 * r, 2);
            for (int c = 0; c < 8; c++) memcpy(x.qs + 4 * c, in + 16 + 32 * c + 4 * r, 4);
            cq_dequantize_row_q8_0(&x, dst + b * CQ_QK, CQ_QK);
        }
    }
    return 0;
}

int cq_matmul_repacked_scalar(int type, const void *w, const void *x, size_t x_stride, float *y, size_t y_stride,
                              int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens) {
    if (!cq_repack_range_ok(type, n, row_begin, row_end)) return -1;
    const int64_t nb = n / CQ_QK;
    const size_t block = cq_repacked_block_bytes(type), group_bytes = (size_t)nb * block;
    for (int64_t row = row_begin; row < row_end; row++) {
        const uint8_t *group = (const uint8_t *)w + (size_t)(row / CQ_REPACK_ROWS) * group_bytes;
        const int r = (int)(row % CQ_REPACK_ROWS);
        for (int64_t t = 0; t < tokens; t++) {
            const char *xt = (const char *)x + (size_t)t * x_stride;
            float acc = 0, macc = 0;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *in = group + (size_t)b * block;
                cq_f16 dw;
                memcpy(&dw, in + 2 * r, 2);
                int32_t sum = 0;
                if (type == CQ_TYPE_Q4_1) {
                    const cq_block_q8_1 *xb = (const cq_block_q8_1 *)xt + b;
                    for (int c = 0; c < 4; c++) {
                        for (int k = 0; k < 4; k++) {
                            const uint8_t q = in[32 + 32 * c + 4 * r + k];
                            sum += (int32_t)(q & 0x0f) * xb->qs[4 * c + k] + (int32_t)(q >> 4) * xb->qs[16 + 4 * c + k];
                        }
                    }
                    cq_f16 mw;
                    memcpy(&mw, in + 16 + 2 * r, 2);
                    acc = fmaf(CQ_FP16(dw) * CQ_FP16(xb->d), (float)sum, acc);
                    macc = fmaf(CQ_FP16(mw), CQ_FP16(xb->s), macc);
                } else {
                    const cq_block_q8_0 *xb = (const cq_block_q8_0 *)xt + b;
                    for (int c = 0; c < 8; c++) {
                        for (int k = 0; k < 4; k++) sum += (int32_t)(int8_t)in[16 + 32 * c + 4 * r + k] * xb->qs[4 * c + k];
                    }
                    acc = fmaf(CQ_FP16(dw) * CQ_FP16(xb->d), (float)sum, acc);
                }
            }
            y[(size_t)t * y_stride + row] = acc + macc;
        }
    }
    return 0;
}
