// AVX2 and AVX-512 VNNI kernels for the repacked Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K and Q6_K layouts
// (cquants.h, "Repacked weights"): the tiles (repack_x86_tiles.h, once per instruction set) and
// the driver that walks row groups and token groups through them. Per (row, token) both take exactly the steps of
// cq_matmul_repacked_scalar, so the results are equal bit for bit, and equal whether a token is
// evaluated alone or in a batch.
#include "quants_impl.h"

#if defined(CQ_HAVE_AVX2_VARIANTS)

#include <immintrin.h>
#include <stdlib.h>

/// How far ahead of the block being read the kernels prefetch, in bytes of the group stream.
#ifndef CQ_REPACK_PREFETCH
#define CQ_REPACK_PREFETCH 1024
#endif

typedef void (*cq_rtile_fn)(int64_t nb, const uint8_t *g, const char *x, size_t x_stride, const float *dx, float *y,
                            size_t y_stride);

/// One instruction set's tiles: eight rows x one token, eight rows x four tokens.
typedef struct {
    cq_rtile_fn q4_0_single, q4_0_quad, q4_1_single, q4_1_quad, q5_0_single, q5_0_quad, q5_1_single, q5_1_quad;
    cq_rtile_fn q8_0_single, q8_0_quad, q4_K_single, q4_K_quad, q6_K_single, q6_K_quad;
} cq_rtiles;

#define CQ_TILE_TARGET __attribute__((target("avx2,fma,f16c")))
#define CQ_TILE_NAME(x) x##_avx2
#define CQ_TILE_VNNI 0
#include "repack_x86_tiles.h"

#define CQ_TILE_TARGET __attribute__((target("avx2,fma,f16c,avx512vnni,avx512vl")))
#define CQ_TILE_NAME(x) x##_avx512_vnni
#define CQ_TILE_VNNI 1
#include "repack_x86_tiles.h"

/// Groups of rows walked per pass over the token groups, so the rows stay in L1/L2 meanwhile.
enum { CQ_RTILE_GROUPS_CHUNK = 2 };

/// cq_matmul_repacked through one instruction set's tiles.
static int cq_matmul_repacked_tiles(const cq_rtiles *tiles, int type, const void *w, const void *x, size_t x_stride,
                                    float *y, size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end,
                                    int64_t tokens) {
    cq_rtile_fn single, quad;
    size_t block, xblock;
    int scales; // floats per (block, token)
    int64_t qk = CQ_QK;
    switch (type) {
    case CQ_TYPE_Q4_0:
        single = tiles->q4_0_single, quad = tiles->q4_0_quad, block = 144, xblock = sizeof(cq_block_q8_0), scales = 2;
        break;
    case CQ_TYPE_Q4_1:
        single = tiles->q4_1_single, quad = tiles->q4_1_quad, block = 160, xblock = sizeof(cq_block_q8_1), scales = 2;
        break;
    case CQ_TYPE_Q5_0:
        single = tiles->q5_0_single, quad = tiles->q5_0_quad, block = 176, xblock = sizeof(cq_block_q8_0), scales = 2;
        break;
    case CQ_TYPE_Q5_1:
        single = tiles->q5_1_single, quad = tiles->q5_1_quad, block = 192, xblock = sizeof(cq_block_q8_1), scales = 2;
        break;
    case CQ_TYPE_Q8_0:
        single = tiles->q8_0_single, quad = tiles->q8_0_quad, block = 272, xblock = sizeof(cq_block_q8_0), scales = 1;
        break;
    case CQ_TYPE_Q4_K:
        single = tiles->q4_K_single, quad = tiles->q4_K_quad, block = 1152, xblock = sizeof(cq_block_q8_K), scales = 5;
        qk = CQ_QK_K;
        break;
    case CQ_TYPE_Q6_K:
        single = tiles->q6_K_single, quad = tiles->q6_K_quad, block = 1680, xblock = sizeof(cq_block_q8_K), scales = 1;
        qk = CQ_QK_K;
        break;
    default: return -1;
    }
    if (n <= 0 || n % qk != 0 || row_begin < 0 || row_begin > row_end || row_begin % CQ_REPACK_ROWS != 0 ||
        row_end % CQ_REPACK_ROWS != 0)
        return -1;
    if (row_begin == row_end || tokens <= 0) return 0;
    const int64_t nb = n / qk;
    const size_t group_bytes = (size_t)nb * block;
    // The activations' f16 scales as floats, per token group: [block][token][scales]; for Q4_0 the
    // second slot holds the bits of the int32 -8 * sum(activation) of the block (Q5_0: -16 *, the
    // quants' offset); for Q4_K, d_x and the bits of four int16 pairs (-bs_2p, -bs_2p+1), bs_j the
    // activation sum of sub-block j; for Q6_K, d_x alone (its tiles read the bsums themselves).
    static _Thread_local float *dx;
    static _Thread_local size_t dx_capacity;
    const size_t need = (size_t)tokens * (size_t)nb * (size_t)scales;
    if (need > dx_capacity) {
        free(dx);
        dx_capacity = (need + 1023) & ~(size_t)1023;
        dx = malloc(dx_capacity * sizeof(float));
        if (dx == NULL) {
            dx_capacity = 0;
            return -1;
        }
    }
    const int64_t quads = tokens / 4, groups = quads + tokens % 4;
    for (int64_t q = 0; q < groups; q++) {
        const int64_t first = q < quads ? q * 4 : quads * 4 + (q - quads), size = q < quads ? 4 : 1;
        float *out = dx + (size_t)first * (size_t)nb * (size_t)scales;
        for (int64_t b = 0; b < nb; b++) {
            for (int64_t t = 0; t < size; t++) {
                const cq_f16 *h = (const cq_f16 *)((const char *)x + (size_t)(first + t) * x_stride + (size_t)b * xblock);
                if (type == CQ_TYPE_Q4_K) {
                    const cq_block_q8_K *xb = (const cq_block_q8_K *)h;
                    float *o = out + (b * size + t) * 5;
                    o[0] = xb->d;
                    for (int p = 0; p < 4; p++) {
                        const int16_t pair[2] = {(int16_t)-(xb->bsums[4 * p] + xb->bsums[4 * p + 1]),
                                                 (int16_t)-(xb->bsums[4 * p + 2] + xb->bsums[4 * p + 3])};
                        memcpy(o + 1 + p, pair, 4); // bits, never a float value
                    }
                    continue;
                }
                if (type == CQ_TYPE_Q6_K) {
                    out[b * size + t] = ((const cq_block_q8_K *)h)->d;
                    continue;
                }
                if (type == CQ_TYPE_Q4_0 || type == CQ_TYPE_Q5_0) {
                    const cq_block_q8_0 *xb = (const cq_block_q8_0 *)h;
                    int32_t sum = 0;
                    for (int k = 0; k < CQ_QK; k++) sum += xb->qs[k];
                    out[(b * size + t) * 2] = CQ_FP16(xb->d);
                    sum *= type == CQ_TYPE_Q5_0 ? -16 : -8;
                    memcpy(&out[(b * size + t) * 2 + 1], &sum, 4); // bits, never a float value
                    continue;
                }
                for (int s = 0; s < scales; s++) out[(b * size + t) * scales + s] = CQ_FP16(h[s]);
            }
        }
    }
    const int64_t g_begin = row_begin / CQ_REPACK_ROWS, g_end = row_end / CQ_REPACK_ROWS;
    for (int64_t g0 = g_begin; g0 < g_end; g0 += CQ_RTILE_GROUPS_CHUNK) {
        const int64_t g1 = g0 + CQ_RTILE_GROUPS_CHUNK < g_end ? g0 + CQ_RTILE_GROUPS_CHUNK : g_end;
        for (int64_t q = 0; q < groups; q++) {
            const int64_t first = q < quads ? q * 4 : quads * 4 + (q - quads);
            const cq_rtile_fn tile = q < quads ? quad : single;
            const char *xq = (const char *)x + (size_t)first * x_stride;
            const float *dq = dx + (size_t)first * (size_t)nb * (size_t)scales;
            for (int64_t g = g0; g < g1; g++) {
                tile(nb, (const uint8_t *)w + (size_t)g * group_bytes, xq, x_stride, dq,
                     y + (size_t)first * y_stride + (size_t)g * CQ_REPACK_ROWS, y_stride);
            }
        }
    }
    return 0;
}

int cq_matmul_repacked_avx2(int type, const void *w, const void *x, size_t x_stride, float *y, size_t y_stride,
                            int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens) {
    return cq_matmul_repacked_tiles(&cq_rtiles_avx2, type, w, x, x_stride, y, y_stride, n, row_begin, row_end, tokens);
}

int cq_matmul_repacked_avx512_vnni(int type, const void *w, const void *x, size_t x_stride, float *y,
                                   size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens) {
    return cq_matmul_repacked_tiles(&cq_rtiles_avx512_vnni, type, w, x, x_stride, y, y_stride, n, row_begin, row_end,
                                    tokens);
}

#endif // CQ_HAVE_AVX2_VARIANTS
