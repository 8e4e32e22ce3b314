// The tiles of the repacked Q4_1 and Q8_0 kernels on x86, written once and included by
// repack_avx2.c once per instruction set (a C "template": the includer defines the three macros
// below first). Eight rows per register: a block of eight rows takes one unpack and, per token,
// byte multiplies whose exact integer sums land in eight int32 lanes, one lane per row, so there
// is no horizontal sum. Both instruction sets take exactly the steps of cq_matmul_repacked_scalar
// per (row, token): the integer block sums are exact either way, so their results are the same bits.
//
//   CQ_TILE_TARGET  the function attribute naming the instruction set
//   CQ_TILE_NAME(x) x with the set's suffix (cq_rtile_q4_1_1 -> cq_rtile_q4_1_1_avx2)
//   CQ_TILE_VNNI    0: AVX2 (maddubs into int16, then madd into int32); 1: AVX-512 VNNI on
//                   256-bit registers (vpdpbusd: four u8 x s8 products into an int32 lane at once)
#if !defined(CQ_TILE_TARGET) || !defined(CQ_TILE_NAME) || !defined(CQ_TILE_VNNI)
#error "define CQ_TILE_TARGET, CQ_TILE_NAME and CQ_TILE_VNNI before including repack_x86_tiles.h"
#endif

// gcc keeps the per-token sums in memory unless these short loops are unrolled (clang unrolls
// them anyway).
#ifndef CQ_UNROLL
#define CQ_UNROLL _Pragma("GCC unroll 8")
#endif

/// Four bytes at p broadcast to the eight 32-bit lanes.
static inline CQ_TILE_TARGET __m256i CQ_TILE_NAME(cq_bcast4)(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/// Eight rows (one group) x T tokens of Q4_1 x Q8_1. `dx` holds the tokens' activation scales
/// as floats, [block][token] pairs (d, s): dx[(b * T + t) * 2].
static inline __attribute__((always_inline)) CQ_TILE_TARGET void
CQ_TILE_NAME(cq_rtile_q4_1)(const int T, int64_t nb, const uint8_t *g, const char *x, size_t x_stride,
                            const float *dx, float *y, size_t y_stride) {
    __m256 acc[4], macc[4];
    CQ_UNROLL
    for (int t = 0; t < T; t++) acc[t] = macc[t] = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0f);
#if !CQ_TILE_VNNI
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    for (int64_t b = 0; b < nb; b++, g += 160) {
        _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH + 128, _MM_HINT_T0);
        // AVX2: int16 sums (16 products of at most 15 x 128 per lane fit); VNNI: int32 sums, the
        // low and the high nibbles in separate chains.
        __m256i s[4], s_hi[4];
#if CQ_TILE_VNNI
        CQ_UNROLL
        for (int t = 0; t < T; t++) s[t] = s_hi[t] = _mm256_setzero_si256();
#endif
        CQ_UNROLL
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(g + 32 + 32 * c));
            const __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            CQ_UNROLL
            for (int t = 0; t < T; t++) {
                const int8_t *xq = ((const cq_block_q8_1 *)(x + (size_t)t * x_stride) + b)->qs;
                const __m256i xl = CQ_TILE_NAME(cq_bcast4)(xq + 4 * c), xh = CQ_TILE_NAME(cq_bcast4)(xq + 16 + 4 * c);
#if CQ_TILE_VNNI
                s[t] = _mm256_dpbusd_epi32(s[t], lo, xl);
                s_hi[t] = _mm256_dpbusd_epi32(s_hi[t], hi, xh);
#else
                const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh));
                s[t] = c == 0 ? p : _mm256_add_epi16(s[t], p);
                (void)s_hi;
#endif
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16)));
        CQ_UNROLL
        for (int t = 0; t < T; t++) {
            const float *d = dx + (b * T + t) * 2;
#if CQ_TILE_VNNI
            const __m256 sum = _mm256_cvtepi32_ps(_mm256_add_epi32(s[t], s_hi[t]));
#else
            const __m256 sum = _mm256_cvtepi32_ps(_mm256_madd_epi16(s[t], ones));
#endif
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(d)), sum, acc[t]);
            macc[t] = _mm256_fmadd_ps(mw, _mm256_broadcast_ss(d + 1), macc[t]);
        }
    }
    CQ_UNROLL
    for (int t = 0; t < T; t++) _mm256_storeu_ps(y + (size_t)t * y_stride, _mm256_add_ps(acc[t], macc[t]));
}

/// Eight rows x T tokens of Q8_0 x Q8_0: |w| times the activation carrying w's sign (exact while
/// activations stay in -127...127; |w| may be 128, which is still a valid u8). dx: [block][token].
static inline __attribute__((always_inline)) CQ_TILE_TARGET void
CQ_TILE_NAME(cq_rtile_q8_0)(const int T, int64_t nb, const uint8_t *g, const char *x, size_t x_stride,
                            const float *dx, float *y, size_t y_stride) {
    __m256 acc[4];
    CQ_UNROLL
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
#if !CQ_TILE_VNNI
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    for (int64_t b = 0; b < nb; b++, g += 272) {
        CQ_UNROLL
        for (int k = 0; k < 5; k++) _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH + 64 * k, _MM_HINT_T0);
        __m256i s32[4];
#if CQ_TILE_VNNI
        CQ_UNROLL
        for (int t = 0; t < T; t++) s32[t] = _mm256_setzero_si256();
#endif
        CQ_UNROLL
        for (int c = 0; c < 8; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(g + 16 + 32 * c));
            const __m256i aq = _mm256_abs_epi8(q);
            CQ_UNROLL
            for (int t = 0; t < T; t++) {
                const int8_t *xq = ((const cq_block_q8_0 *)(x + (size_t)t * x_stride) + b)->qs;
                const __m256i sx = _mm256_sign_epi8(CQ_TILE_NAME(cq_bcast4)(xq + 4 * c), q);
#if CQ_TILE_VNNI
                s32[t] = _mm256_dpbusd_epi32(s32[t], aq, sx);
#else
                // each chunk widened to int32 at once (|w| = 128 could overflow int16 sums)
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, sx), ones);
                s32[t] = c == 0 ? p : _mm256_add_epi32(s32[t], p);
#endif
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        CQ_UNROLL
        for (int t = 0; t < T; t++) {
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(dx + b * T + t)), _mm256_cvtepi32_ps(s32[t]),
                                     acc[t]);
        }
    }
    CQ_UNROLL
    for (int t = 0; t < T; t++) _mm256_storeu_ps(y + (size_t)t * y_stride, acc[t]);
}

/// The tile for T tokens as a function of its own (the kernels pick one per token group).
#define CQ_RTILE_VARIANT(kind, T)                                                                                 \
    static CQ_TILE_TARGET void CQ_TILE_NAME(cq_rtile_##kind##_##T)(int64_t nb, const uint8_t *g, const char *x,     \
                                                                   size_t x_stride, const float *dx, float *y,     \
                                                                   size_t y_stride) {                              \
        CQ_TILE_NAME(cq_rtile_##kind)(T, nb, g, x, x_stride, dx, y, y_stride);                                    \
    }
CQ_RTILE_VARIANT(q4_1, 1)
CQ_RTILE_VARIANT(q4_1, 4)
CQ_RTILE_VARIANT(q8_0, 1)
CQ_RTILE_VARIANT(q8_0, 4)
#undef CQ_RTILE_VARIANT

/// This instruction set's tiles, for cq_matmul_repacked_tiles.
static const cq_rtiles CQ_TILE_NAME(cq_rtiles) = {
    .q4_1_single = CQ_TILE_NAME(cq_rtile_q4_1_1),
    .q4_1_quad = CQ_TILE_NAME(cq_rtile_q4_1_4),
    .q8_0_single = CQ_TILE_NAME(cq_rtile_q8_0_1),
    .q8_0_quad = CQ_TILE_NAME(cq_rtile_q8_0_4),
};

#undef CQ_TILE_TARGET
#undef CQ_TILE_NAME
#undef CQ_TILE_VNNI
