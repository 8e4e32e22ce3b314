// The tiles of the repacked Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K and Q6_K kernels on x86, written
// once and included by repack_avx2.c once per instruction set (a C "template": the includer
// defines the three macros below first). Eight rows per register: a block of eight rows takes one unpack and,
// per token, byte multiplies whose exact integer sums land in eight int32 lanes, one lane per row,
// so there is no horizontal sum. Both instruction sets take exactly the steps of
// cq_matmul_repacked_scalar per (row, token): the integer block sums are exact either way, so their
// results are the same bits.
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
// The loops over a block's chunks for four tokens (Q4_0, Q4_K): gcc computes every product of a
// fully unrolled chunk loop before adding them up and spills them, so with gcc that loop stays
// rolled (CQ_CHUNK_ROLLED); clang, and one token, unroll it (nothing spills then).
#ifndef CQ_CHUNK_ROLLED
#if defined(__clang__)
#define CQ_CHUNK_ROLLED 0
#else
#define CQ_CHUNK_ROLLED 1
#endif
#endif

/// Four bytes at p broadcast to the eight 32-bit lanes.
static inline CQ_TILE_TARGET __m256i CQ_TILE_NAME(cq_bcast4)(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/// Eight rows (one group) x T tokens of Q4_0 x Q8_0: the nibbles q (0...15) unsigned times the
/// activation, whose integer sum minus 8 * sum(activation) is the exact sum of (q - 8) * x. `dx`
/// holds, per [block][token], the activation scale as a float, then the int32 -8 * sum(activation)
/// (its bits in a float slot): dx[(b * T + t) * 2], dx[(b * T + t) * 2 + 1].
static inline __attribute__((always_inline)) CQ_TILE_TARGET void
CQ_TILE_NAME(cq_rtile_q4_0)(const int T, int64_t nb, const uint8_t *g, const char *x, size_t x_stride,
                            const float *dx, float *y, size_t y_stride) {
    __m256 acc[4];
    CQ_UNROLL
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0f);
#if !CQ_TILE_VNNI
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    for (int64_t b = 0; b < nb; b++, g += 144) {
        _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH + 128, _MM_HINT_T0);
        // AVX2: int16 sums (16 products of at most 15 x 128 per lane fit); VNNI: int32 sums, the
        // low nibbles' chain starting from -8 * sum(activation), the high nibbles' from 0.
        __m256i s[4];
#if CQ_TILE_VNNI
        __m256i s_hi[4];
#endif
        CQ_UNROLL
        for (int t = 0; t < T; t++) {
#if CQ_TILE_VNNI
            s[t] = _mm256_castps_si256(_mm256_broadcast_ss(dx + (b * T + t) * 2 + 1));
            s_hi[t] = _mm256_setzero_si256();
#else
            s[t] = _mm256_setzero_si256();
#endif
        }
        // (first: the chunk's products replace the zeros in s, which clang schedules better)
#if CQ_TILE_VNNI
#define CQ_Q4_0_MUL(t, first, lo, xl, hi, xh) \
    (s[t] = _mm256_dpbusd_epi32(s[t], lo, xl), s_hi[t] = _mm256_dpbusd_epi32(s_hi[t], hi, xh))
#else
#define CQ_Q4_0_MUL(t, first, lo, xl, hi, xh)                                                                     \
    {                                                                                                              \
        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh));           \
        s[t] = (first) ? p : _mm256_add_epi16(s[t], p);                                                            \
    }
#endif
#define CQ_Q4_0_CHUNK(c, first)                                                                                    \
        {                                                                                                          \
            const __m256i q = _mm256_loadu_si256((const __m256i *)(g + 16 + 32 * (c)));                            \
            const __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);     \
            CQ_UNROLL                                                                                              \
            for (int t = 0; t < T; t++) {                                                                          \
                const int8_t *xq = ((const cq_block_q8_0 *)(x + (size_t)t * x_stride) + b)->qs;                    \
                const __m256i xl = CQ_TILE_NAME(cq_bcast4)(xq + 4 * (c));                                          \
                const __m256i xh = CQ_TILE_NAME(cq_bcast4)(xq + 16 + 4 * (c));                                     \
                CQ_Q4_0_MUL(t, first, lo, xl, hi, xh);                                                             \
            }                                                                                                      \
        }
        if (T == 1 || !CQ_CHUNK_ROLLED) {
            CQ_UNROLL
            for (int c = 0; c < 4; c++) CQ_Q4_0_CHUNK(c, c == 0)
        } else {
            _Pragma("GCC unroll 1")
            for (int c = 0; c < 4; c++) CQ_Q4_0_CHUNK(c, 0)
        }
#undef CQ_Q4_0_CHUNK
#undef CQ_Q4_0_MUL
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        CQ_UNROLL
        for (int t = 0; t < T; t++) {
            const float *d = dx + (b * T + t) * 2;
#if CQ_TILE_VNNI
            const __m256i isum = _mm256_add_epi32(s[t], s_hi[t]);
#else
            const __m256i isum = _mm256_add_epi32(_mm256_madd_epi16(s[t], ones),
                                                  _mm256_castps_si256(_mm256_broadcast_ss(d + 1)));
#endif
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(d)), _mm256_cvtepi32_ps(isum), acc[t]);
        }
    }
    CQ_UNROLL
    for (int t = 0; t < T; t++) _mm256_storeu_ps(y + (size_t)t * y_stride, acc[t]);
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

/// Eight rows x T tokens of Q5_0 x Q8_0 (M = 0) or Q5_1 x Q8_1 (M = 1). The 5-bit quants q
/// (0...31) are unsigned against the activation: per chunk, the first quant of each byte is its low
/// five bits, the second its top three bits with two top bits from the block's top-bit bytes (see
/// repack.c), which are shifted to bits 3-4 once per block. Q5_0 then subtracts
/// 16 * sum(activation) as Q4_0 subtracts 8 *. `dx` per [block][token] as Q4_0's (M = 0: d, then
/// the bits of the int32 -16 * sum(activation)) or Q4_1's (M = 1: d, s). AVX2: the first and the
/// second quants' products in separate int16 chains (eight products of at most 31 x 128 fit; one
/// chain of sixteen would not), widened once per block.
static inline __attribute__((always_inline)) CQ_TILE_TARGET void
CQ_TILE_NAME(cq_rtile_q5)(const int T, const int M, int64_t nb, const uint8_t *g, const char *x, size_t x_stride,
                          const float *dx, float *y, size_t y_stride) {
    const size_t block = M ? 192 : 176, head = M ? 32 : 16; // top bits at head, chunks at head + 32
    const size_t xblock = M ? sizeof(cq_block_q8_1) : sizeof(cq_block_q8_0), xqs = M ? 4 : 2;
    __m256 acc[4], macc[4];
    CQ_UNROLL
    for (int t = 0; t < T; t++) acc[t] = macc[t] = _mm256_setzero_ps();
    const __m256i five = _mm256_set1_epi8(0x1f), three = _mm256_set1_epi8(0x07), two = _mm256_set1_epi8(0x18);
#if !CQ_TILE_VNNI
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    for (int64_t b = 0; b < nb; b++, g += block) {
        CQ_UNROLL
        for (int k = 0; k < 3; k++) _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH + 64 * k, _MM_HINT_T0);
        // Chunk c's top bits (bits 2c, 2c + 1) at bits 3-4; 16-bit shifts by at most 3 keep each
        // byte's bits 3-4 from that byte.
        const __m256i top = _mm256_loadu_si256((const __m256i *)(g + head));
        const __m256i tops[4] = {_mm256_and_si256(_mm256_slli_epi16(top, 3), two),
                                 _mm256_and_si256(_mm256_slli_epi16(top, 1), two),
                                 _mm256_and_si256(_mm256_srli_epi16(top, 1), two),
                                 _mm256_and_si256(_mm256_srli_epi16(top, 3), two)};
        __m256i s[4], s_hi[4];
#if CQ_TILE_VNNI
        CQ_UNROLL
        for (int t = 0; t < T; t++) {
            s[t] = M ? _mm256_setzero_si256() : _mm256_castps_si256(_mm256_broadcast_ss(dx + (b * T + t) * 2 + 1));
            s_hi[t] = _mm256_setzero_si256();
        }
#define CQ_Q5_MUL(t, first, lo, xl, hi, xh) \
    (s[t] = _mm256_dpbusd_epi32(s[t], lo, xl), s_hi[t] = _mm256_dpbusd_epi32(s_hi[t], hi, xh))
#else
#define CQ_Q5_MUL(t, first, lo, xl, hi, xh)                                                                       \
    {                                                                                                              \
        const __m256i pl = _mm256_maddubs_epi16(lo, xl), ph = _mm256_maddubs_epi16(hi, xh);                         \
        s[t] = (first) ? pl : _mm256_add_epi16(s[t], pl);                                                          \
        s_hi[t] = (first) ? ph : _mm256_add_epi16(s_hi[t], ph);                                                    \
    }
        CQ_UNROLL
        for (int t = 0; t < T; t++) s[t] = s_hi[t] = _mm256_setzero_si256();
#endif
#define CQ_Q5_CHUNK(c, first)                                                                                      \
        {                                                                                                          \
            const __m256i q = _mm256_loadu_si256((const __m256i *)(g + head + 32 + 32 * (c)));                     \
            const __m256i lo = _mm256_and_si256(q, five);                                                          \
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 5), three), tops[c]);        \
            CQ_UNROLL                                                                                              \
            for (int t = 0; t < T; t++) {                                                                          \
                const int8_t *xq = (const int8_t *)(x + (size_t)t * x_stride + (size_t)b * xblock + xqs);         \
                const __m256i xl = CQ_TILE_NAME(cq_bcast4)(xq + 4 * (c));                                          \
                const __m256i xh = CQ_TILE_NAME(cq_bcast4)(xq + 16 + 4 * (c));                                     \
                CQ_Q5_MUL(t, first, lo, xl, hi, xh);                                                               \
            }                                                                                                      \
        }
        // Four tokens take the rolled loop with either compiler: unrolled, clang unpacks all four
        // chunks before the products and spills, as gcc does with Q4_0's (576 x 1536, 32 tokens on
        // Zen 3: 0.45 ms unrolled, 0.38 ms rolled).
        if (T == 1) {
            CQ_UNROLL
            for (int c = 0; c < 4; c++) CQ_Q5_CHUNK(c, c == 0)
        } else {
            _Pragma("GCC unroll 1")
            for (int c = 0; c < 4; c++) CQ_Q5_CHUNK(c, 0)
        }
#undef CQ_Q5_CHUNK
#undef CQ_Q5_MUL
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        const __m256 mw = M ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16))) : _mm256_setzero_ps();
        CQ_UNROLL
        for (int t = 0; t < T; t++) {
            const float *d = dx + (b * T + t) * 2;
#if CQ_TILE_VNNI
            const __m256i isum = _mm256_add_epi32(s[t], s_hi[t]);
#else
            __m256i isum = _mm256_add_epi32(_mm256_madd_epi16(s[t], ones), _mm256_madd_epi16(s_hi[t], ones));
            if (!M) isum = _mm256_add_epi32(isum, _mm256_castps_si256(_mm256_broadcast_ss(d + 1)));
#endif
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(d)), _mm256_cvtepi32_ps(isum), acc[t]);
            if (M) macc[t] = _mm256_fmadd_ps(mw, _mm256_broadcast_ss(d + 1), macc[t]);
        }
    }
    CQ_UNROLL
    for (int t = 0; t < T; t++) _mm256_storeu_ps(y + (size_t)t * y_stride, M ? _mm256_add_ps(acc[t], macc[t]) : acc[t]);
}

/// The Q5 tile per type, for CQ_RTILE_VARIANT.
static inline __attribute__((always_inline)) CQ_TILE_TARGET void
CQ_TILE_NAME(cq_rtile_q5_0)(const int T, int64_t nb, const uint8_t *g, const char *x, size_t x_stride,
                            const float *dx, float *y, size_t y_stride) {
    CQ_TILE_NAME(cq_rtile_q5)(T, 0, nb, g, x, x_stride, dx, y, y_stride);
}
static inline __attribute__((always_inline)) CQ_TILE_TARGET void
CQ_TILE_NAME(cq_rtile_q5_1)(const int T, int64_t nb, const uint8_t *g, const char *x, size_t x_stride,
                            const float *dx, float *y, size_t y_stride) {
    CQ_TILE_NAME(cq_rtile_q5)(T, 1, nb, g, x, x_stride, dx, y, y_stride);
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

/// The byte shuffle that spreads four rows' bytes 4 * j + i (i = 0...3: the rows of a 128-bit
/// half) of a 16-byte half to int16 pairs in the rows' 32-bit lanes: (byte j0, byte j1) as int16.
static inline CQ_TILE_TARGET __m256i CQ_TILE_NAME(cq_k4_spread)(int j0, int j1) {
    int32_t c[4];
    for (int i = 0; i < 4; i++) c[i] = (4 * j0 + i) | 0x80 << 8 | (4 * j1 + i) << 16 | 0x80 << 24;
    return _mm256_setr_epi32(c[0], c[1], c[2], c[3], c[0], c[1], c[2], c[3]);
}

/// Eight rows x T tokens of Q4_K x Q8_K. Sub-block j of the rows is the low (j even) or high (j
/// odd) nibbles of chunks 8 * (j / 2) ... + 7; its int16 sums (16 products of at most 15 x 128 per
/// lane) go to int32 multiplied by the rows' scales at once (madd with (sc, sc) pairs), and the
/// mins by madd of (m_2p, m_2p+1) pairs with the token's negated activation sums. `dx` holds per
/// [block][token] five slots: d_x, then the bits of four int16 pairs (-bs_2p, -bs_2p+1), p = 0...3,
/// bs_j the activation sum of sub-block j. VNNI: the sub-block sums in int32 by vpdpbusd, times the
/// scales by vpmulld (the same exact integers).
static inline __attribute__((always_inline)) CQ_TILE_TARGET void
CQ_TILE_NAME(cq_rtile_q4_K)(const int T, int64_t nb, const uint8_t *g, const char *x, size_t x_stride,
                            const float *dx, float *y, size_t y_stride) {
    __m256 acc[4];
    CQ_UNROLL
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0f), top = _mm256_set1_epi8(0x30);
#if CQ_TILE_VNNI
    // (sc_j) as int32 per row: the pair shuffle with its second byte index made "zero" (bit 7)
    const __m256i hi_zero = _mm256_set1_epi32((int)0x80800000u);
    const __m256i spread_sc[4] = {
        _mm256_or_si256(CQ_TILE_NAME(cq_k4_spread)(0, 0), hi_zero),
        _mm256_or_si256(CQ_TILE_NAME(cq_k4_spread)(1, 1), hi_zero),
        _mm256_or_si256(CQ_TILE_NAME(cq_k4_spread)(2, 2), hi_zero),
        _mm256_or_si256(CQ_TILE_NAME(cq_k4_spread)(3, 3), hi_zero),
    };
#else
    const __m256i spread_sc[4] = {CQ_TILE_NAME(cq_k4_spread)(0, 0), CQ_TILE_NAME(cq_k4_spread)(1, 1),
                                  CQ_TILE_NAME(cq_k4_spread)(2, 2), CQ_TILE_NAME(cq_k4_spread)(3, 3)};
#endif
    const __m256i spread_m[2] = {CQ_TILE_NAME(cq_k4_spread)(0, 1), CQ_TILE_NAME(cq_k4_spread)(2, 3)};
    for (int64_t b = 0; b < nb; b++, g += 1152) {
        _Pragma("GCC unroll 18")
        for (int k = 0; k < 18; k++) _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH + 64 * k, _MM_HINT_T0);
        // The scales and mins of the eight rows: 32 bytes for sub-blocks 0-3, 32 for 4-7.
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(g + 32));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(g + 64));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(g + 96));
        const __m256i sc[2] = {
            _mm256_or_si256(_mm256_and_si256(l0, low), _mm256_and_si256(_mm256_slli_epi16(hb, 4), top)),
            _mm256_or_si256(_mm256_and_si256(l1, low), _mm256_and_si256(hb, top))};
        const __m256i mn[2] = {
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low),
                            _mm256_and_si256(_mm256_slli_epi16(hb, 2), top)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low),
                            _mm256_and_si256(_mm256_srli_epi16(hb, 2), top))};
        __m256i scj[8];
        CQ_UNROLL
        for (int j = 0; j < 8; j++) scj[j] = _mm256_shuffle_epi8(sc[j >> 2], spread_sc[j & 3]);
        __m256i sumi[4];
        CQ_UNROLL
        for (int t = 0; t < T; t++) sumi[t] = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) { // sub-blocks 2k (low nibbles) and 2k + 1 (high nibbles)
            const uint8_t *qk = g + 128 + 256 * k;
            CQ_UNROLL
            for (int h = 0; h < 2; h++) {
                const int aoff = 4 + 64 * k + 32 * h; // the Q8_K quants start at byte 4
                __m256i s[4];
                CQ_UNROLL
                for (int t = 0; t < T; t++) s[t] = _mm256_setzero_si256();
#if CQ_TILE_VNNI
#define CQ_Q4_K_MUL(t, first, nib, a) (s[t] = _mm256_dpbusd_epi32(s[t], nib, a))
#else
#define CQ_Q4_K_MUL(t, first, nib, a) \
    (s[t] = (first) ? _mm256_maddubs_epi16(nib, a) : _mm256_add_epi16(s[t], _mm256_maddubs_epi16(nib, a)))
#endif
#define CQ_Q4_K_CHUNK(i, first)                                                                                    \
                {                                                                                                  \
                    const __m256i q = _mm256_loadu_si256((const __m256i *)(qk + 32 * (i)));                        \
                    const __m256i nib = _mm256_and_si256(h ? _mm256_srli_epi16(q, 4) : q, low);                    \
                    CQ_UNROLL                                                                                      \
                    for (int t = 0; t < T; t++) {                                                                  \
                        const int8_t *xq =                                                                         \
                            (const int8_t *)(x + (size_t)t * x_stride + (size_t)b * sizeof(cq_block_q8_K) + aoff); \
                        CQ_Q4_K_MUL(t, first, nib, CQ_TILE_NAME(cq_bcast4)(xq + 4 * (i)));                        \
                    }                                                                                              \
                }
                if (T == 1 || !CQ_CHUNK_ROLLED) {
                    CQ_UNROLL
                    for (int i = 0; i < 8; i++) CQ_Q4_K_CHUNK(i, i == 0)
                } else {
                    _Pragma("GCC unroll 1")
                    for (int i = 0; i < 8; i++) CQ_Q4_K_CHUNK(i, 0)
                }
#undef CQ_Q4_K_CHUNK
#undef CQ_Q4_K_MUL
                CQ_UNROLL
                for (int t = 0; t < T; t++) {
#if CQ_TILE_VNNI
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(s[t], scj[2 * k + h]));
#else
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(s[t], scj[2 * k + h]));
#endif
                }
            }
        }
        const __m256i mp[4] = {_mm256_shuffle_epi8(mn[0], spread_m[0]), _mm256_shuffle_epi8(mn[0], spread_m[1]),
                               _mm256_shuffle_epi8(mn[1], spread_m[0]), _mm256_shuffle_epi8(mn[1], spread_m[1])};
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16)));
        CQ_UNROLL
        for (int t = 0; t < T; t++) {
            const float *d = dx + (b * T + t) * 5;
            __m256i nmsum = _mm256_madd_epi16(mp[0], _mm256_castps_si256(_mm256_broadcast_ss(d + 1)));
            CQ_UNROLL
            for (int p = 1; p < 4; p++) {
                const __m256i pair = _mm256_castps_si256(_mm256_broadcast_ss(d + 1 + p));
                nmsum = _mm256_add_epi32(nmsum, _mm256_madd_epi16(mp[p], pair));
            }
            const __m256 xd = _mm256_broadcast_ss(d);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, xd), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dmw, xd), _mm256_cvtepi32_ps(nmsum), acc[t]);
        }
    }
    CQ_UNROLL
    for (int t = 0; t < T; t++) _mm256_storeu_ps(y + (size_t)t * y_stride, acc[t]);
}

/// Eight rows x T tokens of Q6_K x Q8_K. Quad j of a block holds sub-block j (16 elements) of the
/// eight rows: three chunks whose low six bits are the quants of elements 4k ... 4k + 3 and whose
/// top bits gather into the fourth chunk's (repack.c). The quants q (0...63) go unsigned into the
/// byte products and the offset of 32 comes off once per block: sum = sum_j sc_j * (sum of q * a
/// over j) - 32 * sum_j sc_j * bs_j, bs_j the activation sum of sub-block j (bsums): the exact
/// integer of cq_matmul_repacked_scalar, every partial sum below 2^29. AVX2 sums two chunks in
/// int16 (four products of at most 63 x 128 per lane: 32256; a whole sub-block could reach 64512)
/// and madds them by the rows' (sc_j, sc_j) pairs into int32; VNNI sums the sub-block in int32 by
/// vpdpbusd and multiplies by sc_j with vpmulld. The offset: madd of the rows' (32 sc_2p,
/// 32 sc_2p+1) pairs (at most 4096: int16) by the token's (bs_2p, bs_2p+1), read from the
/// activation block. dx: d_x per [block][token].
static inline __attribute__((always_inline)) CQ_TILE_TARGET void
CQ_TILE_NAME(cq_rtile_q6_K)(const int T, int64_t nb, const uint8_t *g, const char *x, size_t x_stride,
                            const float *dx, float *y, size_t y_stride) {
    __m256 acc[4];
    CQ_UNROLL
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i six = _mm256_set1_epi8(0x3f), top = _mm256_set1_epi8((char)0xc0);
#if !CQ_TILE_VNNI
    // (sc, sc) as int16 from the int32 sc of each row
    const __m256i dup = _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, 0, 1, 0, 1, 4, 5, 4, 5, 8,
                                         9, 8, 9, 12, 13, 12, 13);
#endif
    // the 16 scale bytes of sub-blocks 2p and 2p + 1 (rows 0-7 each) to (sc_2p, sc_2p+1) per row
    const __m128i pairs = _mm_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    for (int64_t b = 0; b < nb; b++, g += 1680) {
        _Pragma("GCC unroll 27")
        for (int k = 0; k < 27; k++) _mm_prefetch((const char *)g + CQ_REPACK_PREFETCH + 64 * k, _MM_HINT_T0);
        const char *xb = x + (size_t)b * sizeof(cq_block_q8_K);
        __m256i sumi[4];
        CQ_UNROLL
        for (int t = 0; t < T; t++) sumi[t] = _mm256_setzero_si256();
        // rolled with either compiler: gcc's four-token tile fully unrolled took 1.5-2x the time
        // (576 x 1536, 32 tokens), and unrolled by two neither build gained measurably
        _Pragma("GCC unroll 1")
        for (int j = 0; j < 16; j++) {
            const __m256i sc = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(g + 16 + 8 * j)));
#if !CQ_TILE_VNNI
            const __m256i scd = _mm256_shuffle_epi8(sc, dup);
#endif
            const uint8_t *qj = g + 144 + 96 * j;
            const __m256i r0 = _mm256_loadu_si256((const __m256i *)qj);
            const __m256i r1 = _mm256_loadu_si256((const __m256i *)(qj + 32));
            const __m256i r2 = _mm256_loadu_si256((const __m256i *)(qj + 64));
            // the fourth quants: chunk 2's top bits to bits 0-1, chunk 1's to 2-3, chunk 0's to 4-5
            // (each masked first, so the 16-bit shifts move nothing across bytes)
            __m256i q3 = _mm256_or_si256(_mm256_srli_epi16(_mm256_and_si256(r2, top), 2), _mm256_and_si256(r1, top));
            q3 = _mm256_or_si256(_mm256_srli_epi16(q3, 2), _mm256_and_si256(r0, top));
            const __m256i q[4] = {_mm256_and_si256(r0, six), _mm256_and_si256(r1, six), _mm256_and_si256(r2, six),
                                  _mm256_srli_epi16(q3, 2)};
            CQ_UNROLL
            for (int t = 0; t < T; t++) {
                const int8_t *a = ((const cq_block_q8_K *)(xb + (size_t)t * x_stride))->qs + 16 * j;
#if CQ_TILE_VNNI
                __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q[0], CQ_TILE_NAME(cq_bcast4)(a));
                s = _mm256_dpbusd_epi32(s, q[1], CQ_TILE_NAME(cq_bcast4)(a + 4));
                s = _mm256_dpbusd_epi32(s, q[2], CQ_TILE_NAME(cq_bcast4)(a + 8));
                s = _mm256_dpbusd_epi32(s, q[3], CQ_TILE_NAME(cq_bcast4)(a + 12));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(s, sc));
#else
                const __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(q[0], CQ_TILE_NAME(cq_bcast4)(a)),
                                                     _mm256_maddubs_epi16(q[1], CQ_TILE_NAME(cq_bcast4)(a + 4)));
                const __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(q[2], CQ_TILE_NAME(cq_bcast4)(a + 8)),
                                                     _mm256_maddubs_epi16(q[3], CQ_TILE_NAME(cq_bcast4)(a + 12)));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_madd_epi16(p01, scd),
                                                                     _mm256_madd_epi16(p23, scd)));
#endif
            }
        }
        CQ_UNROLL
        for (int p = 0; p < 8; p++) {
            const __m128i s16 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(g + 16 + 16 * p)), pairs);
            const __m256i sc32 = _mm256_slli_epi16(_mm256_cvtepi8_epi16(s16), 5);
            CQ_UNROLL
            for (int t = 0; t < T; t++) {
                const int8_t *bs = (const int8_t *)(((const cq_block_q8_K *)(xb + (size_t)t * x_stride))->bsums + 2 * p);
                sumi[t] = _mm256_sub_epi32(sumi[t], _mm256_madd_epi16(sc32, CQ_TILE_NAME(cq_bcast4)(bs)));
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        CQ_UNROLL
        for (int t = 0; t < T; t++) {
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(dx + b * T + t)), _mm256_cvtepi32_ps(sumi[t]),
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
CQ_RTILE_VARIANT(q4_0, 1)
CQ_RTILE_VARIANT(q4_0, 4)
CQ_RTILE_VARIANT(q4_1, 1)
CQ_RTILE_VARIANT(q4_1, 4)
CQ_RTILE_VARIANT(q5_0, 1)
CQ_RTILE_VARIANT(q5_0, 4)
CQ_RTILE_VARIANT(q5_1, 1)
CQ_RTILE_VARIANT(q5_1, 4)
CQ_RTILE_VARIANT(q8_0, 1)
CQ_RTILE_VARIANT(q8_0, 4)
CQ_RTILE_VARIANT(q4_K, 1)
CQ_RTILE_VARIANT(q4_K, 4)
CQ_RTILE_VARIANT(q6_K, 1)
CQ_RTILE_VARIANT(q6_K, 4)
#undef CQ_RTILE_VARIANT

/// This instruction set's tiles, for cq_matmul_repacked_tiles.
static const cq_rtiles CQ_TILE_NAME(cq_rtiles) = {
    .q4_0_single = CQ_TILE_NAME(cq_rtile_q4_0_1),
    .q4_0_quad = CQ_TILE_NAME(cq_rtile_q4_0_4),
    .q4_1_single = CQ_TILE_NAME(cq_rtile_q4_1_1),
    .q4_1_quad = CQ_TILE_NAME(cq_rtile_q4_1_4),
    .q5_0_single = CQ_TILE_NAME(cq_rtile_q5_0_1),
    .q5_0_quad = CQ_TILE_NAME(cq_rtile_q5_0_4),
    .q5_1_single = CQ_TILE_NAME(cq_rtile_q5_1_1),
    .q5_1_quad = CQ_TILE_NAME(cq_rtile_q5_1_4),
    .q8_0_single = CQ_TILE_NAME(cq_rtile_q8_0_1),
    .q8_0_quad = CQ_TILE_NAME(cq_rtile_q8_0_4),
    .q4_K_single = CQ_TILE_NAME(cq_rtile_q4_K_1),
    .q4_K_quad = CQ_TILE_NAME(cq_rtile_q4_K_4),
    .q6_K_single = CQ_TILE_NAME(cq_rtile_q6_K_1),
    .q6_K_quad = CQ_TILE_NAME(cq_rtile_q6_K_4),
};

#undef CQ_TILE_TARGET
#undef CQ_TILE_NAME
#undef CQ_TILE_VNNI
