// x86_64 AVX2 + FMA + F16C variants of the K-quant kernels (super-blocks of 256): Q4_K, Q5_K and
// Q6_K weights dotted with Q8_K activations, and the Q8_K activation quantizer. As quants_avx2.c
// (whose tables route here): per-function target attributes, no global -m flags.
//
// Each super-block is summed exactly in integers, as kquants_scalar.c does: quant x activation
// through _mm256_maddubs_epi16 (unsigned quant x signed byte; pairs at most 2 * 63 * 128 = 16128,
// -128 included, so never saturated), times the sub-block scales by _mm256_madd_epi16 into int32
// lanes; the mins (Q4_K, Q5_K) and Q6_K's offset of 32 go against the activation's 16-element sums
// (bsums, as cq_quantize_row_q8_K makes them). Then d_x * d_y * sum - dmin_x * d_y * msum in float,
// super-block after super-block, so the results differ from the reference only in the order of the
// float additions.
#include "quants_impl.h"

#if defined(CQ_HAVE_AVX2_VARIANTS)

#include <immintrin.h>

#define CQ_AVX2 __attribute__((target("avx2,fma,f16c")))

/// How far ahead of the super-block being summed the vec-dots prefetch the weights (as
/// CQ_PREFETCH_BYTES in quants_avx2.c: a mat-vec walks its rows as one sequential stream). Streamed
/// 576 x 1536 mat-vecs: 1024 beat 640 by about 10 % and none by 10-15 %; 1536 and 2048 were no better.
#define CQ_K_PREFETCH_BYTES 1024

/// Before each loop over the 64-element steps of a super-block: unrolled, their scale shuffles
/// take constant control vectors.
#define CQ_UNROLL_STEPS _Pragma("GCC unroll 4")

static inline CQ_AVX2 float cq_k_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Int16 lane j of each 128-bit half of v, broadcast across that half (j a constant).
static inline CQ_AVX2 __m256i cq_bcast_epi16(__m256i v, int j) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(0x0100 + 0x0202 * j)));
}

/// [d_x * d_y, dmin_x * d_y, 0, 0] from the block's f16 pair (d, dmin) and the activation's f32 d.
static inline CQ_AVX2 __m128 cq_k_scales(const cq_f16 *dm, float dy) {
    uint32_t bits;
    memcpy(&bits, dm, 4);
    return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)bits)), _mm_set1_ps(dy));
}

// ---- Q4_K, Q5_K --------------------------------------------------------------------------------

/// The eight 6-bit scales and mins of a Q4_K / Q5_K block (cq_k4_scales_mins), as bytes: scales in
/// *sc, mins in *m (byte j: sub-block j).
static inline void cq_k4_unpack_scales(const uint8_t s[12], uint64_t *sc, uint64_t *m) {
    uint64_t a;
    uint32_t b;
    memcpy(&a, s, 8);
    memcpy(&b, s + 8, 4);
    // sub-blocks 0...3: the low 6 bits of bytes 0...3 (scales) and 4...7 (mins)
    const uint64_t low = a & 0x3f3f3f3f3f3f3f3full;
    // sub-blocks 4...7: 4 bits from bytes 8...11 (low nibbles: scales, high: mins), the top 2 bits
    // from the tops of bytes 0...3 (scales) and 4...7 (mins)
    const uint64_t nib = ((uint64_t)b | ((uint64_t)(b >> 4) << 32)) & 0x0f0f0f0f0f0f0f0full;
    const uint64_t high = nib | (((a >> 6) & 0x0303030303030303ull) << 4);
    *sc = (low & 0xffffffffull) | (high << 32);
    *m = (low >> 32) | (high & 0xffffffff00000000ull);
}

/// Eight int32 lanes summing to sum_j m_j * (bsums[2j] + bsums[2j + 1]) (the mins' part).
static inline CQ_AVX2 __m256i cq_k4_min_products(uint64_t m, const int16_t *bsums) {
    const __m128i mb = _mm_cvtsi64_si128((long long)m);
    const __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mb, mb)); // [m0, m0, m1, m1, ...]
    return _mm256_madd_epi16(m16, _mm256_loadu_si256((const __m256i *)bsums));
}

/// One 64-element step k of a Q4_K / Q5_K block: quants `lo` (sub-block 2k) and `hi` (2k + 1),
/// 0...31, with their 64 activations at a; eight int32 sums of scale x quant x activation.
/// sc16 holds the eight scales as int16 in both halves.
static inline CQ_AVX2 __m256i cq_k4_step(__m256i lo, __m256i hi, const int8_t *a, __m256i sc16, int k) {
    const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)a));
    const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(a + 32)));
    return _mm256_add_epi32(_mm256_madd_epi16(plo, cq_bcast_epi16(sc16, 2 * k)),
                            _mm256_madd_epi16(phi, cq_bcast_epi16(sc16, 2 * k + 1)));
}

CQ_AVX2 float cq_vec_dot_q4_K_q8_K_avx2(int64_t n, const void *vx, const void *vy) {
    const cq_block_q4_K *x = vx;
    const cq_block_q8_K *y = vy;
    const int64_t nb = n / CQ_QK_K;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps(); // d sums, dmin * min sums
    for (int64_t i = 0; i < nb; i++) {
        const char *pf = (const char *)&x[i] + CQ_K_PREFETCH_BYTES;
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
        _mm_prefetch(pf + 128, _MM_HINT_T0);
        uint64_t sc, m;
        cq_k4_unpack_scales(x[i].scales, &sc, &m);
        const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_set1_epi64x((long long)sc));
        const uint8_t *q = x[i].qs;
        const int8_t *a = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        CQ_UNROLL_STEPS
        for (int k = 0; k < 4; k++) {
            const __m256i qb = _mm256_loadu_si256((const __m256i *)(q + 32 * k));
            const __m256i lo = _mm256_and_si256(qb, low4), hi = _mm256_and_si256(_mm256_srli_epi16(qb, 4), low4);
            sumi = _mm256_add_epi32(sumi, cq_k4_step(lo, hi, a + 64 * k, sc16, k));
        }
        const __m128 s = cq_k_scales(&x[i].d, y[i].d);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(s), _mm256_cvtepi32_ps(sumi), acc);
        accm = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(s)),
                               _mm256_cvtepi32_ps(cq_k4_min_products(m, y[i].bsums)), accm);
    }
    return cq_k_hsum_ps(_mm256_sub_ps(acc, accm));
}

CQ_AVX2 float cq_vec_dot_q5_K_q8_K_avx2(int64_t n, const void *vx, const void *vy) {
    const cq_block_q5_K *x = vx;
    const cq_block_q8_K *y = vy;
    const int64_t nb = n / CQ_QK_K;
    const __m256i low4 = _mm256_set1_epi8(0x0f), bit4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const char *pf = (const char *)&x[i] + CQ_K_PREFETCH_BYTES;
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
        _mm_prefetch(pf + 128, _MM_HINT_T0);
        uint64_t sc, m;
        cq_k4_unpack_scales(x[i].scales, &sc, &m);
        const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_set1_epi64x((long long)sc));
        const uint8_t *q = x[i].qs;
        const int8_t *a = y[i].qs;
        // Step k takes bits 2k (sub-block 2k) and 2k + 1 of each qh byte: shifted down by 2 per
        // step, they are bits 0 and 1 (bits shifted in from the next byte stay above bit 1).
        __m256i h = _mm256_loadu_si256((const __m256i *)x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        CQ_UNROLL_STEPS
        for (int k = 0; k < 4; k++) {
            const __m256i qb = _mm256_loadu_si256((const __m256i *)(q + 32 * k));
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(qb, low4), _mm256_and_si256(_mm256_slli_epi16(h, 4), bit4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), low4),
                                               _mm256_and_si256(_mm256_slli_epi16(h, 3), bit4));
            h = _mm256_srli_epi16(h, 2);
            sumi = _mm256_add_epi32(sumi, cq_k4_step(lo, hi, a + 64 * k, sc16, k));
        }
        const __m128 s = cq_k_scales(&x[i].d, y[i].d);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(s), _mm256_cvtepi32_ps(sumi), acc);
        accm = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(s)),
                               _mm256_cvtepi32_ps(cq_k4_min_products(m, y[i].bsums)), accm);
    }
    return cq_k_hsum_ps(_mm256_sub_ps(acc, accm));
}

// ---- Q6_K --------------------------------------------------------------------------------------

/// One 32-element group g (0...7) of a Q6_K block: quants q (0...63, 32 is subtracted later through
/// bsums) with their activations at a; eight int32 sums of scale x quant x activation. sc16 holds
/// the even sub-blocks' scales in its low half, the odd ones' in its high half (int16), so lane g
/// of each half is the scale of that half's 16 elements.
static inline CQ_AVX2 __m256i cq_q6_group(__m256i q, const int8_t *a, __m256i sc16, int g) {
    const __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)a));
    return _mm256_madd_epi16(p, cq_bcast_epi16(sc16, g));
}

CQ_AVX2 float cq_vec_dot_q6_K_q8_K_avx2(int64_t n, const void *vx, const void *vy) {
    const cq_block_q6_K *x = vx;
    const cq_block_q8_K *y = vy;
    const int64_t nb = n / CQ_QK_K;
    const __m256i low4 = _mm256_set1_epi8(0x0f), bits45 = _mm256_set1_epi8(0x30);
    const __m128i evens_odds = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const char *pf = (const char *)&x[i] + CQ_K_PREFETCH_BYTES;
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
        _mm_prefetch(pf + 128, _MM_HINT_T0);
        _mm_prefetch(pf + 192, _MM_HINT_T0);
        const __m128i scales = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, evens_odds));
        // sum (q - 32) a = sum q a - 32 sum_j scale_j bsums_j
        const __m256i offset = _mm256_slli_epi32(
            _mm256_madd_epi16(_mm256_cvtepi8_epi16(scales), _mm256_loadu_si256((const __m256i *)y[i].bsums)), 5);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *a = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        // Half h (elements 128h...128h+127): ql[64h...64h+63], qh[32h...32h+31]; element 128h + 32c
        // + l has its low 4 bits in the low (c = 0, 1) or high (c = 2, 3) nibble of ql[64h + 32(c & 1)
        // + l] and its top 2 bits at bit 2c of qh[32h + l].
        _Pragma("GCC unroll 2")
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, a += 128) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            const __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), bits45));
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), bits45));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_and_si256(hb, bits45));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                                               _mm256_and_si256(_mm256_srli_epi16(hb, 2), bits45));
            const __m256i s01 = _mm256_add_epi32(cq_q6_group(q0, a, sc16, 4 * h), cq_q6_group(q1, a + 32, sc16, 4 * h + 1));
            const __m256i s23 = _mm256_add_epi32(cq_q6_group(q2, a + 64, sc16, 4 * h + 2), cq_q6_group(q3, a + 96, sc16, 4 * h + 3));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(s01, s23));
        }
        const __m128 d = _mm_mul_ss(_mm_cvtph_ps(_mm_cvtsi32_si128(x[i].d)), _mm_set_ss(y[i].d));
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(d), _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi, offset)), acc);
    }
    return cq_k_hsum_ps(acc);
}

// ---- Q8_K quantization -------------------------------------------------------------------------

/// cq_quantize_row_q8_K step for step: the first element of largest magnitude (NaNs skipped) sets
/// iscale = -127 / max; each quant is (iscale * x + 12582912)'s low mantissa bits - 2^22 (round to
/// nearest even), at most 127, truncated to int8; bsums from those bytes; d = 1 / iscale. The
/// product is kept from fusing with the add (GCC contracts across intrinsics), so every input,
/// NaN and infinity included, gives the reference's bytes.
CQ_AVX2 void cq_quantize_row_q8_K_avx2(const float *x, void *dst, int64_t n) {
    cq_block_q8_K *y = dst;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    const __m256i mantissa = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
    const __m256i top = _mm256_set1_epi32(127), byte = _mm256_set1_epi32(0xff);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < n / CQ_QK_K; i++, x += CQ_QK_K) {
        // max(|x|, acc) keeps acc when |x| is NaN, as the reference's `ax > amax` does
        __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
        for (int j = 0; j < CQ_QK_K; j += 16) {
            m0 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), absmask), m0);
            m1 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + j + 8), absmask), m1);
        }
        __m256 m = _mm256_max_ps(m0, m1);
        m = _mm256_max_ps(m, _mm256_permute2f128_ps(m, m, 1));
        m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
        m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1))); // amax in every lane
        if (_mm256_cvtss_f32(m) == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int first = 0;
        for (int j = 0; j < CQ_QK_K; j += 8) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), absmask), m, _CMP_EQ_OQ));
            if (hit != 0) {
                first = j + __builtin_ctz((unsigned)hit);
                break;
            }
        }
        const float iscale = -127.0f / x[first];
        const __m256 vscale = _mm256_set1_ps(iscale);
        __m256i sums[8]; // per 32 quants: four int32 partial sums of each 16
        for (int g = 0; g < 8; g++) {
            __m256i v[4];
            for (int k = 0; k < 4; k++) {
                __m256 f = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * g + 8 * k), vscale);
                __asm__("" : "+x"(f)); // not fused into the add below
                const __m256i bits = _mm256_castps_si256(_mm256_add_ps(f, magic));
                const __m256i q = _mm256_min_epi32(_mm256_sub_epi32(_mm256_and_si256(bits, mantissa), bias), top);
                v[k] = _mm256_and_si256(q, byte); // (int8_t) keeps the low byte
            }
            // bytes in lane order [0-3 4-7 | ...] interleaved by the packs; the permute restores it
            const __m256i p = _mm256_packus_epi16(_mm256_packus_epi32(v[0], v[1]), _mm256_packus_epi32(v[2], v[3]));
            const __m256i q8 = _mm256_permutevar8x32_epi32(p, order);
            _mm256_storeu_si256((__m256i *)(y[i].qs + 32 * g), q8);
            sums[g] = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q8), ones16);
        }
        // [bs0 bs2 bs4 bs6 | bs1 bs3 bs5 bs7] and the same for 8...15, then interleaved
        const __m256i e = _mm256_hadd_epi32(_mm256_hadd_epi32(sums[0], sums[1]), _mm256_hadd_epi32(sums[2], sums[3]));
        const __m256i f = _mm256_hadd_epi32(_mm256_hadd_epi32(sums[4], sums[5]), _mm256_hadd_epi32(sums[6], sums[7]));
        const __m256i b16 = _mm256_packs_epi32(e, f); // [bs0 bs2 ... bs14 | bs1 bs3 ... bs15]
        const __m128i evens = _mm256_castsi256_si128(b16), odds = _mm256_extracti128_si256(b16, 1);
        _mm_storeu_si128((__m128i *)y[i].bsums, _mm_unpacklo_epi16(evens, odds));
        _mm_storeu_si128((__m128i *)(y[i].bsums + 8), _mm_unpackhi_epi16(evens, odds));
        y[i].d = 1.0f / iscale;
    }
}

#endif // CQ_HAVE_AVX2_VARIANTS
