// x86_64 AVX2 + FMA + F16C variants. Each function carries its own target attribute, so the
// file builds without global -m flags and the rest of the binary stays baseline x86_64;
// dispatch.c only routes here after checking the CPU.
//
// Integer sums are exact for every byte value, -128 included: nibble x int8 products go through
// _mm256_maddubs_epi16 (unsigned x signed, pair sums <= 3840, no saturation), int8 x int8
// products through sign extension to int16 and _mm256_madd_epi16.
#include "quants_impl.h"

#if defined(CQ_HAVE_AVX2_VARIANTS)

#include <immintrin.h>

#define CQ_AVX2 __attribute__((target("avx2,fma,f16c")))

static inline CQ_AVX2 float cq_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// 16 bytes of packed nibbles -> 32 bytes 0...15 in element order (low nibbles, then high).
static inline CQ_AVX2 __m256i cq_unpack_nibbles(const uint8_t *qs) {
    const __m128i packed = _mm_loadu_si128((const __m128i *)qs);
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

/// Eight int32 partial sums of the byte-wise products of unsigned `u` and signed `s`.
static inline CQ_AVX2 __m256i cq_dot_u8_s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/// Eight int32 partial sums of the products of 32 signed bytes at x and at y.
static inline CQ_AVX2 __m256i cq_dot_s8_s8(const int8_t *x, const int8_t *y) {
    const __m256i x0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x));
    const __m256i x1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + 16)));
    const __m256i y0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)y));
    const __m256i y1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(y + 16)));
    return _mm256_add_epi32(_mm256_madd_epi16(x0, y0), _mm256_madd_epi16(x1, y1));
}

/// d_a * d_b broadcast to eight lanes, from one F16C conversion of both halves. (Built from a
/// general-purpose register: clang compiles _cvtsh_ss to a vpinsrw that merges into whatever
/// register is free, often an accumulator, which chains every block to the previous FMA.)
static inline CQ_AVX2 __m256 cq_scale_product(cq_f16 a, cq_f16 b) {
    const __m128 v = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)a | ((uint32_t)b << 16))));
    return _mm256_broadcastss_ps(_mm_mul_ss(v, _mm_movehdup_ps(v)));
}

// One block each: acc + d_x d_y * (eight int32 partial sums of the block's integer dot).

static inline CQ_AVX2 __m256 cq_block_q4_0_q8_0(const cq_block_q4_0 *x, const cq_block_q8_0 *y, __m256 acc) {
    const __m256i q = cq_unpack_nibbles(x->qs);
    const __m256i yq = _mm256_loadu_si256((const __m256i *)y->qs);
    // sum (q - 8) y = sum q y - sum 8 y, each half exact in int16
    const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, yq), _mm256_maddubs_epi16(_mm256_set1_epi8(8), yq));
    const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
    return _mm256_fmadd_ps(cq_scale_product(x->d, y->d), p, acc);
}

/// Q4_1 keeps (d, m) and Q8_1 keeps (d, s) side by side: one conversion gives both halves, one
/// multiply gives [d_x d_y, m_x s_y]. Returns acc + d_x d_y * sums; adds m_x s_y to lane 1 of *ms.
static inline CQ_AVX2 __m256 cq_block_q4_1_q8_1(const cq_block_q4_1 *x, const cq_block_q8_1 *y, __m256 acc, __m128 *ms) {
    int32_t xdm, yds;
    memcpy(&xdm, &x->d, 4);
    memcpy(&yds, &y->d, 4);
    const __m128 scales = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(xdm)), _mm_cvtph_ps(_mm_cvtsi32_si128(yds)));
    *ms = _mm_add_ps(*ms, scales);
    const __m256i q = cq_unpack_nibbles(x->qs);
    const __m256i yq = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256 p = _mm256_cvtepi32_ps(cq_dot_u8_s8(q, yq));
    return _mm256_fmadd_ps(_mm256_broadcastss_ps(scales), p, acc);
}

static inline CQ_AVX2 __m256 cq_block_q8_0_q8_0(const cq_block_q8_0 *x, const cq_block_q8_0 *y, __m256 acc) {
    const __m256 p = _mm256_cvtepi32_ps(cq_dot_s8_s8(x->qs, y->qs));
    return _mm256_fmadd_ps(cq_scale_product(x->d, y->d), p, acc);
}

// Two blocks per step on two accumulators; an odd last block goes to the reference.

CQ_AVX2 float cq_vec_dot_q4_0_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const cq_block_q4_0 *x = vx;
    const cq_block_q8_0 *y = vy;
    const int64_t nb = n / CQ_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = cq_block_q4_0_q8_0(&x[i], &y[i], acc0);
        acc1 = cq_block_q4_0_q8_0(&x[i + 1], &y[i + 1], acc1);
    }
    float sum = cq_hsum_ps(_mm256_add_ps(acc0, acc1));
    if (i < nb) sum += cq_vec_dot_q4_0_q8_0_scalar((nb - i) * CQ_QK, x + i, y + i);
    return sum;
}

CQ_AVX2 float cq_vec_dot_q4_1_q8_1_avx2(int64_t n, const void *vx, const void *vy) {
    const cq_block_q4_1 *x = vx;
    const cq_block_q8_1 *y = vy;
    const int64_t nb = n / CQ_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m128 ms0 = _mm_setzero_ps(), ms1 = _mm_setzero_ps(); // lane 1: sums of m_x * s_y
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = cq_block_q4_1_q8_1(&x[i], &y[i], acc0, &ms0);
        acc1 = cq_block_q4_1_q8_1(&x[i + 1], &y[i + 1], acc1, &ms1);
    }
    const __m128 ms = _mm_add_ps(ms0, ms1);
    float sum = cq_hsum_ps(_mm256_add_ps(acc0, acc1)) + _mm_cvtss_f32(_mm_shuffle_ps(ms, ms, 1));
    if (i < nb) sum += cq_vec_dot_q4_1_q8_1_scalar((nb - i) * CQ_QK, x + i, y + i);
    return sum;
}

CQ_AVX2 float cq_vec_dot_q8_0_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const cq_block_q8_0 *x = vx;
    const cq_block_q8_0 *y = vy;
    const int64_t nb = n / CQ_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = cq_block_q8_0_q8_0(&x[i], &y[i], acc0);
        acc1 = cq_block_q8_0_q8_0(&x[i + 1], &y[i + 1], acc1);
    }
    float sum = cq_hsum_ps(_mm256_add_ps(acc0, acc1));
    if (i < nb) sum += cq_vec_dot_q8_0_q8_0_scalar((nb - i) * CQ_QK, x + i, y + i);
    return sum;
}

CQ_AVX2 float cq_vec_dot_f16_f32_avx2(int64_t n, const void *vx, const void *vy) {
    const cq_f16 *x = vx;
    const float *y = vy;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        const __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8)));
        acc0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(y + i), acc0);
        acc1 = _mm256_fmadd_ps(x1, _mm256_loadu_ps(y + i + 8), acc1);
    }
    float sum = cq_hsum_ps(_mm256_add_ps(acc0, acc1));
    if (i < n) sum += cq_vec_dot_f16_f32_scalar(n - i, x + i, y + i);
    return sum;
}

CQ_AVX2 float cq_vec_dot_f32_f32_avx2(int64_t n, const void *vx, const void *vy) {
    const float *x = vx;
    const float *y = vy;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
    }
    float sum = cq_hsum_ps(_mm256_add_ps(acc0, acc1));
    if (i < n) sum += cq_vec_dot_f32_f32_scalar(n - i, x + i, y + i);
    return sum;
}

const cq_kernels cq_kernels_avx2 = {
    .name = "avx2",
    .q4_0_q8_0 = cq_vec_dot_q4_0_q8_0_avx2,
    .q4_1_q8_1 = cq_vec_dot_q4_1_q8_1_avx2,
    .q8_0_q8_0 = cq_vec_dot_q8_0_q8_0_avx2,
    .f16_f32 = cq_vec_dot_f16_f32_avx2,
    .f32_f32 = cq_vec_dot_f32_f32_avx2,
};

#endif // CQ_HAVE_AVX2_VARIANTS
