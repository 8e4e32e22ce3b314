// AVX2 kernels for the repacked Q4_1 and Q8_0 layouts (cquants.h, "Repacked weights"): eight rows
// per register, so a block of eight rows takes one unpack and, per token, eight byte-multiplies
// whose int16 sums are added before one widening to int32, with no horizontal sum per row.
// Per (row, token) they take exactly the steps of cq_matmul_repacked_scalar, so the results are
// equal bit for bit, and equal whether a token is evaluated alone or in a batch.
#include "quants_impl.h"

#if defined(CQ_HAVE_AVX2_VARIANTS)

#include <immintrin.h>
#include <stdlib.h>

#define CQ_AVX2 __attribute__((target("avx2,fma,f16c")))

/// How far ahead of the block being read the kernels prefetch, in bytes of the group stream.
#ifndef CQ_REPACK_PREFETCH
#define CQ_REPACK_PREFETCH 1024
#endif

/// Four bytes at p broadcast to the eight 32-bit lanes.
static inline CQ_AVX2 __m256i cq_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/// Eight rows (one group) x T tokens of Q4_1 x Q8_1. `dx` holds the tokens' activation scales
/// as floats, [block][token] pairs (d, s): dx[(b * T + t) * 2].
static inline __attribute__((always_inline)) CQ_AVX2 void
cq_rtile_q4_1(const int T, int64_t nb, const uint8_t *g, const char *x, size_t x_stride, const float *dx, float *y,
              size_t y_stride) {
    __m256 acc[4], macc[4];
    for (int t = 0; t < T; t++) acc[t] = macc[t] = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++, g += 160) {
        _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH + 128, _MM_HINT_T0);
        __m256i s16[4];
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(g + 32 + 32 * c));
            const __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            for (int t = 0; t < T; t++) {
                const int8_t *xq = ((const cq_block_q8_1 *)(x + (size_t)t * x_stride) + b)->qs;
                const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, cq_bcast4(xq + 4 * c)),
                                                   _mm256_maddubs_epi16(hi, cq_bcast4(xq + 16 + 4 * c)));
                s16[t] = c == 0 ? p : _mm256_add_epi16(s16[t], p);
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16)));
        for (int t = 0; t < T; t++) {
            const float *d = dx + (b * T + t) * 2;
            const __m256 sum = _mm256_cvtepi32_ps(_mm256_madd_epi16(s16[t], ones));
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(d)), sum, acc[t]);
            macc[t] = _mm256_fmadd_ps(mw, _mm256_broadcast_ss(d + 1), macc[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm256_storeu_ps(y + (size_t)t * y_stride, _mm256_add_ps(acc[t], macc[t]));
}

/// Eight rows x T tokens of Q8_0 x Q8_0: |w| times the activation carrying w's sign (exact while
/// activations stay in -127...127), each chunk widened to int32 (|w| may be 128). dx: [block][token].
static inline __attribute__((always_inline)) CQ_AVX2 void
cq_rtile_q8_0(const int T, int64_t nb, const uint8_t *g, const char *x, size_t x_stride, const float *dx, float *y,
              size_t y_stride) {
    __m256 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++, g += 272) {
        for (int k = 0; k < 5; k++) _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH + 64 * k, _MM_HINT_T0);
        __m256i s32[4];
        for (int c = 0; c < 8; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(g + 16 + 32 * c));
            const __m256i aq = _mm256_abs_epi8(q);
            for (int t = 0; t < T; t++) {
                const int8_t *xq = ((const cq_block_q8_0 *)(x + (size_t)t * x_stride) + b)->qs;
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(cq_bcast4(xq + 4 * c), q)), ones);
                s32[t] = c == 0 ? p : _mm256_add_epi32(s32[t], p);
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        for (int t = 0; t < T; t++) {
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(dx + b * T + t)), _mm256_cvtepi32_ps(s32[t]),
                                     acc[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm256_storeu_ps(y + (size_t)t * y_stride, acc[t]);
}

typedef void (*cq_rtile_fn)(int64_t nb, const uint8_t *g, const char *x, size_t x_stride, const float *dx, float *y,
                            size_t y_stride);

#define CQ_RTILE_VARIANT(kind, T)                                                                                 \
    static CQ_AVX2 void cq_rtile_##kind##_##T(int64_t nb, const uint8_t *g, const char *x, size_t x_stride,        \
                                               const float *dx, float *y, size_t y_stride) {                       \
        cq_rtile_##kind(T, nb, g, x, x_stride, dx, y, y_stride);                                                  \
    }
CQ_RTILE_VARIANT(q4_1, 1)
CQ_RTILE_VARIANT(q4_1, 4)
CQ_RTILE_VARIANT(q8_0, 1)
CQ_RTILE_VARIANT(q8_0, 4)

/// Groups of rows walked per pass over the token groups, so the rows stay in L1/L2 meanwhile.
enum { CQ_RTILE_GROUPS_CHUNK = 2 };

int cq_matmul_repacked_avx2(int type, const void *w, const void *x, size_t x_stride, float *y, size_t y_stride,
                            int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens) {
    cq_rtile_fn single, quad;
    size_t block, xblock;
    int scales; // floats per (block, token)
    switch (type) {
    case CQ_TYPE_Q4_1:
        single = cq_rtile_q4_1_1, quad = cq_rtile_q4_1_4, block = 160, xblock = sizeof(cq_block_q8_1), scales = 2;
        break;
    case CQ_TYPE_Q8_0:
        single = cq_rtile_q8_0_1, quad = cq_rtile_q8_0_4, block = 272, xblock = sizeof(cq_block_q8_0), scales = 1;
        break;
    default: return -1;
    }
    if (n <= 0 || n % CQ_QK != 0 || row_begin < 0 || row_begin > row_end || row_begin % CQ_REPACK_ROWS != 0 ||
        row_end % CQ_REPACK_ROWS != 0)
        return -1;
    if (row_begin == row_end || tokens <= 0) return 0;
    const int64_t nb = n / CQ_QK;
    const size_t group_bytes = (size_t)nb * block;
    // The activations' f16 scales as floats, per token group: [block][token][scales].
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

#endif // CQ_HAVE_AVX2_VARIANTS
