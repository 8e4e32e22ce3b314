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
#include <math.h>

#define CQ_AVX2 __attribute__((target("avx2,fma,f16c")))

/// How far ahead of the block being summed the weight vec-dots prefetch: a mat-vec walks its
/// rows as one sequential stream, and this distance (tried 640, 1024, 2048) gave the best decode.
#define CQ_PREFETCH_BYTES 640
/// How far ahead the single-token tiles of cq_matmul prefetch, in rows: they walk two rows at a
/// time, and four rows (two tiles) ahead beat 640 bytes by 30-40 % from memory for Q4_1 at 576 and
/// 1536 columns and for Q8_0 at 576 (tried 2, 3, 4, 6, 8 rows).
#define CQ_PREFETCH_ROWS 4

static inline CQ_AVX2 float cq_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// 16 bytes of packed nibbles -> 32 bytes 0...15 in element order (low nibbles, then high). The
/// bytes are loaded into both halves and the high half shifted (no cross-lane insert): 7-8 % faster
/// Q4_0 and Q5_0 mat-vecs at 576 columns than shift + vinserti128.
static inline CQ_AVX2 __m256i cq_unpack_nibbles(const uint8_t *qs) {
    const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
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

/// Bit 4 of the 32 quants of a Q5 block from its qh (bit j: element j): 32 bytes, byte j holding
/// bit j % 8 of qh byte j / 8 (the rest of that byte cleared), so zero exactly where the bit is clear.
static inline CQ_AVX2 __m256i cq_q5_bits(const uint8_t qh[4]) {
    int32_t bits;
    memcpy(&bits, qh, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(bits),
                                               _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    return _mm256_and_si256(spread, _mm256_set1_epi64x(0x8040201008040201ll));
}

static inline CQ_AVX2 __m256 cq_block_q5_0_q8_0(const cq_block_q5_0 *x, const cq_block_q8_0 *y, __m256 acc) {
    // q - 16 = low nibble - (16 where bit 4 is clear): sum (q - 16) y = sum nib y - sum 16 (1 - b) y,
    // each half exact in int16 (as Q4_0's)
    const __m256i clear16 = _mm256_and_si256(_mm256_cmpeq_epi8(cq_q5_bits(x->qh), _mm256_setzero_si256()),
                                             _mm256_set1_epi8(16));
    const __m256i yq = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(cq_unpack_nibbles(x->qs), yq), _mm256_maddubs_epi16(clear16, yq));
    const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
    return _mm256_fmadd_ps(cq_scale_product(x->d, y->d), p, acc);
}

/// As cq_block_q4_1_q8_1, with the fifth bit: returns acc + d_x d_y * sums, adds m_x s_y to lane 1 of *ms.
static inline CQ_AVX2 __m256 cq_block_q5_1_q8_1(const cq_block_q5_1 *x, const cq_block_q8_1 *y, __m256 acc, __m128 *ms) {
    int32_t xdm, yds;
    memcpy(&xdm, &x->d, 4);
    memcpy(&yds, &y->d, 4);
    const __m128 scales = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(xdm)), _mm_cvtph_ps(_mm_cvtsi32_si128(yds)));
    *ms = _mm_add_ps(*ms, scales);
    const __m256i set16 = _mm256_andnot_si256(_mm256_cmpeq_epi8(cq_q5_bits(x->qh), _mm256_setzero_si256()),
                                              _mm256_set1_epi8(16));
    const __m256i q = _mm256_or_si256(cq_unpack_nibbles(x->qs), set16);
    const __m256i yq = _mm256_loadu_si256((const __m256i *)y->qs);
    const __m256 p = _mm256_cvtepi32_ps(cq_dot_u8_s8(q, yq));
    return _mm256_fmadd_ps(_mm256_broadcastss_ps(scales), p, acc);
}

// Two blocks per step on two accumulators; an odd last block goes to the reference.

CQ_AVX2 float cq_vec_dot_q4_0_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const cq_block_q4_0 *x = vx;
    const cq_block_q8_0 *y = vy;
    const int64_t nb = n / CQ_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        _mm_prefetch((const char *)&x[i] + CQ_PREFETCH_BYTES, _MM_HINT_T0);
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
        _mm_prefetch((const char *)&x[i] + CQ_PREFETCH_BYTES, _MM_HINT_T0);
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
        _mm_prefetch((const char *)&x[i] + CQ_PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)&x[i] + CQ_PREFETCH_BYTES + 64, _MM_HINT_T0);
        acc0 = cq_block_q8_0_q8_0(&x[i], &y[i], acc0);
        acc1 = cq_block_q8_0_q8_0(&x[i + 1], &y[i + 1], acc1);
    }
    float sum = cq_hsum_ps(_mm256_add_ps(acc0, acc1));
    if (i < nb) sum += cq_vec_dot_q8_0_q8_0_scalar((nb - i) * CQ_QK, x + i, y + i);
    return sum;
}

CQ_AVX2 float cq_vec_dot_q5_0_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const cq_block_q5_0 *x = vx;
    const cq_block_q8_0 *y = vy;
    const int64_t nb = n / CQ_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        _mm_prefetch((const char *)&x[i] + CQ_PREFETCH_BYTES, _MM_HINT_T0);
        acc0 = cq_block_q5_0_q8_0(&x[i], &y[i], acc0);
        acc1 = cq_block_q5_0_q8_0(&x[i + 1], &y[i + 1], acc1);
    }
    float sum = cq_hsum_ps(_mm256_add_ps(acc0, acc1));
    if (i < nb) sum += cq_vec_dot_q5_0_q8_0_scalar((nb - i) * CQ_QK, x + i, y + i);
    return sum;
}

CQ_AVX2 float cq_vec_dot_q5_1_q8_1_avx2(int64_t n, const void *vx, const void *vy) {
    const cq_block_q5_1 *x = vx;
    const cq_block_q8_1 *y = vy;
    const int64_t nb = n / CQ_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m128 ms0 = _mm_setzero_ps(), ms1 = _mm_setzero_ps(); // lane 1: sums of m_x * s_y
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        _mm_prefetch((const char *)&x[i] + CQ_PREFETCH_BYTES, _MM_HINT_T0);
        acc0 = cq_block_q5_1_q8_1(&x[i], &y[i], acc0, &ms0);
        acc1 = cq_block_q5_1_q8_1(&x[i + 1], &y[i + 1], acc1, &ms1);
    }
    const __m128 ms = _mm_add_ps(ms0, ms1);
    float sum = cq_hsum_ps(_mm256_add_ps(acc0, acc1)) + _mm_cvtss_f32(_mm_shuffle_ps(ms, ms, 1));
    if (i < nb) sum += cq_vec_dot_q5_1_q8_1_scalar((nb - i) * CQ_QK, x + i, y + i);
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

// ---- Tiled mat-mat (cq_matmul) ---------------------------------------------------------------
//
// Tiles of R weight rows x T tokens. T = 4 (prefill batches): each weight block is unpacked once
// and dotted with four activation blocks. T = 1 (decode, and a batch's last tokens % 4): two rows
// at a time with a software prefetch CQ_PREFETCH_ROWS rows ahead. (Tiles of 4 rows x 1 token, four
// interleaved streams, ran 25% slower here; two rows run as fast as the one-row vec-dot.) Every
// (row, token) pair goes through the same operations in the same order whichever tile it lands
// in, so a token's logits do not depend on how the tokens were split into batches (prefix KV
// reuse relies on it). The activations' f16 scales (d, and s for Q8_1) are converted once per
// call into [block][4] floats per group of tokens, which the tiles broadcast straight from
// memory; Q4_1 tiles take two weight blocks per step and read the activations repacked to match
// (see cq_tile_q4_1_q8_1). Rows are walked in chunks that stay in L1 while every group passes over
// them. Against the vec-dots: exact integer block sums, float accumulation in another order.

/// Tokens per pass over the rows: 16 keeps the per-thread scratch of repacked Q4_1 activations at
/// 16 x 96 bytes per block pair (37 KB at 1536 columns) and prefills as fast as 32 in the C harness.
enum { CQ_TILE_ROWS_CHUNK = 16, CQ_TOKEN_CHUNK = 16 };

/// a[0..3] each summed across lanes, as [sum a0, sum a1, sum a2, sum a3].
static inline CQ_AVX2 __m128 cq_hsum4_ps(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/// Q4_1 x Q8_1 tile: R rows from `w`, T tokens (1 or 4), two weight blocks (A, B) per step. The
/// nibbles of A and B are loaded into one register: its low nibbles are elements 0...15 of A and of
/// B, its high nibbles elements 16...31, so the activations come repacked to match (`x`: per token,
/// per pair of blocks, 64 bytes [A 0-15 | B 0-15 | A 16-31 | B 16-31], token t at x + t * x_stride)
/// with their d per pair as [dA x4, dB x4] (`ds`: 8 floats per pair, token t at ds + t * ds_stride).
/// `ss` holds the tokens' s as [block][4]. An odd last block is a pair whose B half is zero.
/// Writes y[t * y_stride + r].
static inline __attribute__((always_inline)) CQ_AVX2 void
cq_tile_q4_1_q8_1(const int R, const int T, int64_t nb, const char *w, size_t row_bytes, const char *x,
                  size_t x_stride, const float *ds, size_t ds_stride, const float *ss, float *y, size_t y_stride) {
    __m256 acc[4][4];
    // Sums of m_x s_y: T = 4 keeps the even blocks in msa and the odd ones in msb (lanes = tokens);
    // T = 1 keeps both in msa, lane 1 (even blocks) and lane 3 (odd), from ss laid out per pair as
    // [0, s_A, 0, s_B]. Either way a token's sum is (even chain + odd chain), the same floats.
    __m128 msa[4], msb[4];
    for (int r = 0; r < R; r++) {
        msa[r] = msb[r] = _mm_setzero_ps();
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    }
    const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0f);
    const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2);
    const int64_t pairs = (nb + 1) / 2;
    for (int64_t p = 0; p < pairs; p++) {
        const int64_t b = 2 * p;
        const int full = b + 1 < nb;
        for (int r = 0; r < R; r++) {
            const cq_block_q4_1 *xa = (const cq_block_q4_1 *)(w + (size_t)r * row_bytes) + b;
            if (T == 1) _mm_prefetch((const char *)xa + CQ_PREFETCH_ROWS * row_bytes, _MM_HINT_T0);
            int32_t dma, dmb = 0;
            memcpy(&dma, &xa->d, 4);
            __m256i q = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)xa->qs));
            if (full) {
                memcpy(&dmb, &xa[1].d, 4);
                q = _mm256_inserti128_si256(q, _mm_loadu_si128((const __m128i *)xa[1].qs), 1);
            } else {
                q = _mm256_zextsi128_si256(_mm256_castsi256_si128(q));
            }
            const __m128 dm = _mm_cvtph_ps(_mm_insert_epi32(_mm_cvtsi32_si128(dma), dmb, 1)); // [dA, mA, dB, mB]
            if (T == 1) {
                msa[r] = _mm_fmadd_ps(dm, _mm_loadu_ps(ss + b * 4), msa[r]);
            } else {
                msa[r] = _mm_fmadd_ps(_mm_shuffle_ps(dm, dm, 0x55), _mm_loadu_ps(ss + b * 4), msa[r]);
                if (full) msb[r] = _mm_fmadd_ps(_mm_shuffle_ps(dm, dm, 0xff), _mm_loadu_ps(ss + b * 4 + 4), msb[r]);
            }
            const __m256 dx = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(dm), spread);
            const __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            for (int t = 0; t < T; t++) {
                const __m256i *yp = (const __m256i *)(x + (size_t)t * x_stride + (size_t)p * 64);
                const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_load_si256(yp)),
                                                     _mm256_maddubs_epi16(hi, _mm256_load_si256(yp + 1)));
                const __m256 scale = _mm256_mul_ps(dx, _mm256_load_ps(ds + (size_t)t * ds_stride + p * 8));
                acc[r][t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(_mm256_madd_epi16(s16, ones)), acc[r][t]);
            }
        }
    }
    if (T == 4) {
        for (int r = 0; r < R; r++) {
            float out[4];
            _mm_storeu_ps(out, _mm_add_ps(cq_hsum4_ps(acc[r][0], acc[r][1], acc[r][2], acc[r][3]),
                                          _mm_add_ps(msa[r], msb[r])));
            for (int t = 0; t < 4; t++) y[(size_t)t * y_stride + r] = out[t];
        }
    } else { // the same reduction as lane 0 of a quad, so a token's sums never depend on its batch
        for (int r = 0; r < R; r++) {
            const __m256 a = acc[r][0];
            const __m128 m = _mm_add_ss(_mm_shuffle_ps(msa[r], msa[r], 1), _mm_shuffle_ps(msa[r], msa[r], 3));
            y[r] = _mm_cvtss_f32(_mm_add_ps(cq_hsum4_ps(a, a, a, a), m));
        }
    }
}

/// Q8_0 x Q8_0 tile, as above (no s; ss unused). The products go through maddubs on |w| and the
/// activation with w's sign: exact while activations stay in -127...127.
static inline __attribute__((always_inline)) CQ_AVX2 void
cq_tile_q8_0_q8_0(const int R, const int T, int64_t nb, const char *w, size_t row_bytes, const char *x,
                  size_t x_stride, const float *ds, size_t ds_stride, const float *ss, float *y, size_t y_stride) {
    (void)ss;
    (void)ds_stride;
    __m256 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        for (int r = 0; r < R; r++) {
            const cq_block_q8_0 *xb = (const cq_block_q8_0 *)(w + (size_t)r * row_bytes) + b;
            if (T == 1) _mm_prefetch((const char *)xb + CQ_PREFETCH_ROWS * row_bytes, _MM_HINT_T0);
            const __m256 dx = _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(xb->d))); // F16C, exact
            const __m256i q = _mm256_loadu_si256((const __m256i *)xb->qs);
            const __m256i aq = _mm256_sign_epi8(q, q); // |q|; -128 stays 0x80 = 128 unsigned
            for (int t = 0; t < T; t++) {
                const cq_block_q8_0 *yb = (const cq_block_q8_0 *)(x + (size_t)t * x_stride) + b;
                const __m256i sy = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)yb->qs), q);
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, sy), ones);
                const __m256 scale = _mm256_mul_ps(dx, _mm256_broadcast_ss(ds + b * 4 + t));
                acc[r][t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(p), acc[r][t]);
            }
        }
    }
    if (T == 4) {
        for (int r = 0; r < R; r++) {
            float out[4];
            _mm_storeu_ps(out, cq_hsum4_ps(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
            for (int t = 0; t < 4; t++) y[(size_t)t * y_stride + r] = out[t];
        }
    } else { // the same reduction as lane 0 of a quad
        for (int r = 0; r < R; r++) {
            const __m256 a = acc[r][0];
            y[r] = _mm_cvtss_f32(cq_hsum4_ps(a, a, a, a));
        }
    }
}

typedef void (*cq_tile_fn)(int64_t nb, const char *w, size_t row_bytes, const char *x, size_t x_stride,
                           const float *ds, size_t ds_stride, const float *ss, float *y, size_t y_stride);

#define CQ_TILE_VARIANT(kind, R, T)                                                                          \
    static CQ_AVX2 void cq_tile_##kind##_##R##x##T(int64_t nb, const char *w, size_t row_bytes, const char *x, \
                                                   size_t x_stride, const float *ds, size_t ds_stride,       \
                                                   const float *ss, float *y, size_t y_stride) {             \
        cq_tile_##kind(R, T, nb, w, row_bytes, x, x_stride, ds, ds_stride, ss, y, y_stride);                 \
    }
CQ_TILE_VARIANT(q4_1_q8_1, 2, 4)
CQ_TILE_VARIANT(q4_1_q8_1, 1, 4)
CQ_TILE_VARIANT(q4_1_q8_1, 2, 1)
CQ_TILE_VARIANT(q4_1_q8_1, 1, 1)
CQ_TILE_VARIANT(q8_0_q8_0, 2, 4)
CQ_TILE_VARIANT(q8_0_q8_0, 1, 4)
CQ_TILE_VARIANT(q8_0_q8_0, 2, 1)
CQ_TILE_VARIANT(q8_0_q8_0, 1, 1)

/// Per-thread scratch for the repacked activations of one cq_matmul call (grown, never shrunk;
/// tens of kilobytes for the models in use), 64-byte aligned.
static void *cq_avx2_scratch(size_t bytes) {
    static _Thread_local void *buffer;
    static _Thread_local size_t capacity;
    if (bytes > capacity) {
        free(buffer);
        capacity = (bytes + 4095) & ~(size_t)4095;
        buffer = aligned_alloc(64, capacity);
        if (buffer == NULL) capacity = 0;
    }
    return buffer;
}

/// The tokens of one chunk in groups: quads first, then the last tokens % 4 one at a time. Group g
/// starts at token g * 4 (quads) and has its tokens' scales at ds/ss + g * nb * 4. For Q4_1 (has_s)
/// the activations are first repacked as cq_tile_q4_1_q8_1 reads them; returns -1 when the
/// scratch for that cannot be allocated.
static CQ_AVX2 int cq_matmul_groups(int has_s, const cq_tile_fn tiles[4], int64_t nb, size_t block_bytes,
                                    const char *w, size_t row_bytes, const char *x, size_t x_stride, float *y,
                                    size_t y_stride, int64_t row_begin, int64_t row_end, int64_t tokens) {
    const int64_t quads = tokens / 4, groups = quads + tokens % 4;
    float ds[groups * nb * 4], ss[has_s ? groups * nb * 4 : 1];
    for (int64_t g = 0; g < groups; g++) {
        const int64_t first = g < quads ? g * 4 : quads * 4 + (g - quads), size = g < quads ? 4 : 1;
        for (int64_t b = 0; b < nb; b++) {
            for (int64_t t = 0; t < 4; t++) {
                float d = 0, sv = 0;
                if (t < size) {
                    const cq_f16 *h = (const cq_f16 *)(x + (size_t)(first + t) * x_stride + (size_t)b * block_bytes);
                    d = CQ_FP16(h[0]);
                    sv = CQ_FP16(h[1]);
                }
                ds[(g * nb + b) * 4 + t] = d;
                if (has_s) ss[(g * nb + b) * 4 + t] = sv;
            }
        }
        if (has_s && size == 1) { // the Q4_1 single-token tile reads s per pair as [0, s_A, 0, s_B]
            for (int64_t b = 0; b < nb; b += 2) {
                const float sa = ss[(g * nb + b) * 4], sb = b + 1 < nb ? ss[(g * nb + b + 1) * 4] : 0.0f;
                float *o = ss + (g * nb + b) * 4;
                o[0] = 0;
                o[1] = sa;
                o[2] = 0;
                o[3] = sb;
            }
        }
    }
    const int64_t pairs = (nb + 1) / 2;
    const char *xr = x;
    size_t xr_stride = x_stride, dr_stride = 0;
    float *dr = NULL;
    if (has_s) { // Q8_1 blocks -> [A 0-15 | B 0-15 | A 16-31 | B 16-31] and [dA x4, dB x4] per pair
        char *buf = cq_avx2_scratch((size_t)tokens * (size_t)pairs * 96);
        if (buf == NULL) return -1;
        xr_stride = (size_t)pairs * 64;
        dr_stride = (size_t)pairs * 8;
        dr = (float *)(buf + (size_t)tokens * xr_stride);
        for (int64_t t = 0; t < tokens; t++) {
            const cq_block_q8_1 *yb = (const cq_block_q8_1 *)(x + (size_t)t * x_stride);
            char *xt = buf + (size_t)t * xr_stride;
            float *dt = dr + (size_t)t * dr_stride;
            for (int64_t p = 0; p < pairs; p++) {
                const cq_block_q8_1 *a = yb + 2 * p, *b = 2 * p + 1 < nb ? a + 1 : NULL;
                char *o = xt + p * 64;
                memcpy(o, a->qs, 16);
                memcpy(o + 32, a->qs + 16, 16);
                if (b != NULL) {
                    memcpy(o + 16, b->qs, 16);
                    memcpy(o + 48, b->qs + 16, 16);
                } else {
                    memset(o + 16, 0, 16);
                    memset(o + 48, 0, 16);
                }
                const float da = CQ_FP16(a->d), db = b != NULL ? CQ_FP16(b->d) : 0.0f;
                for (int i = 0; i < 4; i++) {
                    dt[p * 8 + i] = da;
                    dt[p * 8 + 4 + i] = db;
                }
            }
        }
        xr = buf;
    }
    const float *ssp = has_s ? ss : ds;
    for (int64_t r0 = row_begin; r0 < row_end; r0 += CQ_TILE_ROWS_CHUNK) {
        const int64_t r1 = r0 + CQ_TILE_ROWS_CHUNK < row_end ? r0 + CQ_TILE_ROWS_CHUNK : row_end;
        for (int64_t g = 0; g < groups; g++) {
            const int64_t first = g < quads ? g * 4 : quads * 4 + (g - quads);
            const char *xg = xr + (size_t)first * xr_stride;
            float *yg = y + (size_t)first * y_stride;
            const float *dg = has_s ? dr + (size_t)first * dr_stride : ds + g * nb * 4, *sg = ssp + g * nb * 4;
            const cq_tile_fn pair = g < quads ? tiles[0] : tiles[2], single = g < quads ? tiles[1] : tiles[3];
            int64_t r = r0;
            for (; r + 2 <= r1; r += 2)
                pair(nb, w + (size_t)r * row_bytes, row_bytes, xg, xr_stride, dg, dr_stride, sg, yg + r, y_stride);
            for (; r < r1; r++)
                single(nb, w + (size_t)r * row_bytes, row_bytes, xg, xr_stride, dg, dr_stride, sg, yg + r, y_stride);
        }
    }
    return 0;
}

int cq_matmul_avx2(int type, const void *w, size_t row_bytes, const void *x, size_t x_stride, float *y,
                   size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens) {
    static const cq_tile_fn q4_1[4] = {cq_tile_q4_1_q8_1_2x4, cq_tile_q4_1_q8_1_1x4, cq_tile_q4_1_q8_1_2x1,
                                       cq_tile_q4_1_q8_1_1x1};
    static const cq_tile_fn q8_0[4] = {cq_tile_q8_0_q8_0_2x4, cq_tile_q8_0_q8_0_1x4, cq_tile_q8_0_q8_0_2x1,
                                       cq_tile_q8_0_q8_0_1x1};
    const cq_tile_fn *tiles;
    size_t block_bytes;
    int has_s;
    switch (type) {
    case CQ_TYPE_Q4_1: tiles = q4_1; block_bytes = sizeof(cq_block_q8_1); has_s = 1; break;
    case CQ_TYPE_Q8_0: tiles = q8_0; block_bytes = sizeof(cq_block_q8_0); has_s = 0; break;
    default:
        return cq_matmul_by_dots(cq_kernels_dot(&cq_kernels_avx2, type), w, row_bytes, x, x_stride, y, y_stride, n,
                                 row_begin, row_end, tokens);
    }
    const int64_t nb = n / CQ_QK;
    if (nb == 0 || row_begin >= row_end) return 0;
    for (int64_t t0 = 0; t0 < tokens; t0 += CQ_TOKEN_CHUNK) {
        const int64_t count = tokens - t0 < CQ_TOKEN_CHUNK ? tokens - t0 : CQ_TOKEN_CHUNK;
        if (cq_matmul_groups(has_s, tiles, nb, block_bytes, w, row_bytes, (const char *)x + (size_t)t0 * x_stride,
                             x_stride, y + (size_t)t0 * y_stride, y_stride, row_begin, row_end, count) != 0) {
            return cq_matmul_by_dots(cq_kernels_dot(&cq_kernels_avx2, type), w, row_bytes, x, x_stride, y, y_stride,
                                     n, row_begin, row_end, tokens);
        }
    }
    return 0;
}

// ---- Activation quantizers ---------------------------------------------------------------------

/// One block of 32 floats -> d and 32 int8 as the reference computes them; returns sum(q).
static inline CQ_AVX2 int cq_quantize_block_q8(const float *x, cq_f16 *d_out, int8_t *qs, float *d_value) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        amax = _mm256_max_ps(amax, _mm256_and_ps(v[i], absmask));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float d = _mm_cvtss_f32(m) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *d_out = cq_f32_to_f16(d);
    *d_value = d;
    const __m256 vid = _mm256_set1_ps(id), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 signmask = _mm256_set1_ps(-0.0f);
    __m256i q[4];
    __m256i sum = _mm256_setzero_si256();
    for (int i = 0; i < 4; i++) {
        const __m256 p = _mm256_mul_ps(v[i], vid);
        // roundf: truncate, then step away from zero when the dropped fraction is >= 0.5
        const __m256 t = _mm256_round_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __m256 up = _mm256_cmp_ps(_mm256_andnot_ps(signmask, _mm256_sub_ps(p, t)), half, _CMP_GE_OQ);
        const __m256 step = _mm256_and_ps(up, _mm256_or_ps(one, _mm256_and_ps(p, signmask)));
        q[i] = _mm256_cvttps_epi32(_mm256_add_ps(t, step));
        sum = _mm256_add_epi32(sum, q[i]);
    }
    // int32 -> int8 (values within -127...127), undoing the per-lane interleave of the packs
    const __m256i p16 = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256((__m256i *)qs, _mm256_permutevar8x32_epi32(p16, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

CQ_AVX2 void cq_quantize_row_q8_0_avx2(const float *x, void *dst, int64_t n) {
    cq_block_q8_0 *y = dst;
    float d;
    for (int64_t i = 0; i < n / CQ_QK; i++) (void)cq_quantize_block_q8(x + i * CQ_QK, &y[i].d, y[i].qs, &d);
}

CQ_AVX2 void cq_quantize_row_q8_1_avx2(const float *x, void *dst, int64_t n) {
    cq_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        float d;
        const int sum = cq_quantize_block_q8(x + i * CQ_QK, &y[i].d, y[i].qs, &d);
        y[i].s = cq_f32_to_f16((float)sum * d);
    }
}

// ---- Attention -------------------------------------------------------------------------------

/// Heads the attention body keeps in registers at once: two accumulators per head, plus the two
/// converted key (or value) vectors they share, fit the sixteen ymm registers up to four heads.
#define CQ_ATTEND_MAX_HEADS 4
/// Before each loop over the heads: unrolled, the per-head accumulators stay in registers (GCC
/// at -O2 does not unroll them by itself and keeps them in memory, which made the grouped kernel
/// slower than one head at a time).
#define CQ_UNROLL_HEADS _Pragma("GCC unroll 4")

/// Eight horizontal sums at once: lane p of the result is cq_hsum_ps(x[p]) bit for bit (the same
/// additions of the same pairs: halves, then lanes two apart, then neighbours).
static inline CQ_AVX2 __m256 cq_hsum8_ps(const __m256 *x) {
    // [lo + hi of x[p] | lo + hi of x[p + 4]]
    const __m256 y0 = _mm256_add_ps(_mm256_permute2f128_ps(x[0], x[4], 0x20), _mm256_permute2f128_ps(x[0], x[4], 0x31));
    const __m256 y1 = _mm256_add_ps(_mm256_permute2f128_ps(x[1], x[5], 0x20), _mm256_permute2f128_ps(x[1], x[5], 0x31));
    const __m256 y2 = _mm256_add_ps(_mm256_permute2f128_ps(x[2], x[6], 0x20), _mm256_permute2f128_ps(x[2], x[6], 0x31));
    const __m256 y3 = _mm256_add_ps(_mm256_permute2f128_ps(x[3], x[7], 0x20), _mm256_permute2f128_ps(x[3], x[7], 0x31));
    // lanes 0 + 2 and 1 + 3 of each: [x0 x0 x1 x1 | x4 x4 x5 x5] and [x2 x2 x3 x3 | x6 x6 x7 x7]
    const __m256 z0 = _mm256_add_ps(_mm256_shuffle_ps(y0, y1, _MM_SHUFFLE(1, 0, 1, 0)), _mm256_shuffle_ps(y0, y1, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 z1 = _mm256_add_ps(_mm256_shuffle_ps(y2, y3, _MM_SHUFFLE(1, 0, 1, 0)), _mm256_shuffle_ps(y2, y3, _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm256_hadd_ps(z0, z1); // [x0 x1 x2 x3 | x4 x5 x6 x7]
}

/// The products of one key with `H` rounded queries (head h's at qr + h * hd): per head the sum
/// of its two accumulators, ready for the horizontal sum.
static inline __attribute__((always_inline)) CQ_AVX2 void
cq_attend_key_avx2(const int H, int64_t hd, const cq_f16 *k, const float *qr, __m256 *u) {
    __m256 a0[CQ_ATTEND_MAX_HEADS], a1[CQ_ATTEND_MAX_HEADS];
    CQ_UNROLL_HEADS
    for (int h = 0; h < H; h++) a0[h] = a1[h] = _mm256_setzero_ps();
    for (int64_t d = 0; d < hd; d += 16) {
        const __m256 k0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + d)));
        const __m256 k1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + d + 8)));
        CQ_UNROLL_HEADS
        for (int h = 0; h < H; h++) {
            a0[h] = _mm256_fmadd_ps(k0, _mm256_loadu_ps(qr + h * hd + d), a0[h]);
            a1[h] = _mm256_fmadd_ps(k1, _mm256_loadu_ps(qr + h * hd + d + 8), a1[h]);
        }
    }
    CQ_UNROLL_HEADS
    for (int h = 0; h < H; h++) u[h] = _mm256_add_ps(a0[h], a1[h]);
}

/// cq_attend_f16 for `H` (1...CQ_ATTEND_MAX_HEADS, a constant after inlining) query heads that
/// share keys and values, head dimension a multiple of 16. Each key and value vector is converted
/// once and multiplied into every head; per head, the operations and their order are those of a
/// single head (the same two accumulators over d, the same horizontal sum, the shared softmax),
/// so every head's output is the same whatever H. F16C rounds the query and the probabilities
/// (the same round-to-nearest-even as cq_f32_to_f16); the probabilities are kept as the f32 values
/// of those f16 (exact), so the V pass does not convert them again.
/// Scratch: H * (head_dim + length) floats (the rounded queries, then the scores, turned into
/// probabilities in place).
static inline __attribute__((always_inline)) CQ_AVX2 void
cq_attend_heads_avx2(const int H, int64_t hd, int64_t length, const float *q, const cq_f16 *keys, size_t key_stride,
                     const cq_f16 *values, size_t value_stride, float scale, float *scratch, float *out) {
    float *qr = scratch, *p = scratch + (size_t)H * hd;
    for (int64_t d = 0; d < H * hd; d += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(q + d), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_ps(qr + d, _mm256_cvtph_ps(h));
    }
    // Scores, eight positions at a time: each head's eight vectors of products are summed across
    // by one transposed reduction (cq_hsum8_ps, the same additions as cq_hsum_ps on each).
    float max[CQ_ATTEND_MAX_HEADS];
    __m256 vmax[CQ_ATTEND_MAX_HEADS];
    CQ_UNROLL_HEADS
    for (int h = 0; h < H; h++) {
        max[h] = -INFINITY;
        vmax[h] = _mm256_set1_ps(-INFINITY);
    }
    const __m256 vscale = _mm256_set1_ps(scale);
    int64_t j = 0;
    for (; j + 8 <= length; j += 8) {
        __m256 sums[CQ_ATTEND_MAX_HEADS][8];
        for (int jj = 0; jj < 8; jj++) {
            __m256 u[CQ_ATTEND_MAX_HEADS];
            cq_attend_key_avx2(H, hd, keys + (size_t)(j + jj) * key_stride, qr, u);
            CQ_UNROLL_HEADS
            for (int h = 0; h < H; h++) sums[h][jj] = u[h];
        }
        CQ_UNROLL_HEADS
        for (int h = 0; h < H; h++) {
            const __m256 sc = _mm256_mul_ps(cq_hsum8_ps(sums[h]), vscale);
            _mm256_storeu_ps(p + h * length + j, sc);
            vmax[h] = _mm256_max_ps(sc, vmax[h]); // a NaN score leaves the max as it was
        }
    }
    for (; j < length; j++) {
        __m256 u[CQ_ATTEND_MAX_HEADS];
        cq_attend_key_avx2(H, hd, keys + (size_t)j * key_stride, qr, u);
        CQ_UNROLL_HEADS
        for (int h = 0; h < H; h++) {
            const float sc = cq_hsum_ps(u[h]) * scale;
            p[h * length + j] = sc;
            if (sc > max[h]) max[h] = sc;
        }
    }
    CQ_UNROLL_HEADS
    for (int h = 0; h < H; h++) {
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax[h]), _mm256_extractf128_ps(vmax[h], 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float mv = _mm_cvtss_f32(m);
        if (mv > max[h]) max[h] = mv;
    }
    CQ_UNROLL_HEADS
    for (int h = 0; h < H; h++) {
        float *ph = p + h * length;
        const float inv = cq_softmax_exp(ph, length, max[h]);
        const __m256 vinv = _mm256_set1_ps(inv);
        int64_t j = 0;
        for (; j + 8 <= length; j += 8) {
            const __m128i r = _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(ph + j), vinv),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_storeu_ps(ph + j, _mm256_cvtph_ps(r));
        }
        for (; j < length; j++) ph[j] = CQ_FP16(cq_f32_to_f16(ph[j] * inv));
    }
    // Outputs, eight dimensions at a time (head_dim is a multiple of 16), summed across as the
    // scores are.
    for (int64_t d0 = 0; d0 < hd; d0 += 8) {
        __m256 sums[CQ_ATTEND_MAX_HEADS][8];
        float tails[CQ_ATTEND_MAX_HEADS][8];
        for (int dd = 0; dd < 8; dd++) {
            const cq_f16 *v = values + (size_t)(d0 + dd) * value_stride;
            __m256 a0[CQ_ATTEND_MAX_HEADS], a1[CQ_ATTEND_MAX_HEADS];
            CQ_UNROLL_HEADS
            for (int h = 0; h < H; h++) a0[h] = a1[h] = _mm256_setzero_ps();
            int64_t i = 0;
            for (; i + 16 <= length; i += 16) {
                const __m256 v0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
                const __m256 v1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i + 8)));
                CQ_UNROLL_HEADS
                for (int h = 0; h < H; h++) {
                    a0[h] = _mm256_fmadd_ps(v0, _mm256_loadu_ps(p + h * length + i), a0[h]);
                    a1[h] = _mm256_fmadd_ps(v1, _mm256_loadu_ps(p + h * length + i + 8), a1[h]);
                }
            }
            // The tail as explicit scalar FMAs, so no compiler's contraction choice can make one
            // instantiation round differently from another.
            __m128 tail[CQ_ATTEND_MAX_HEADS];
            CQ_UNROLL_HEADS
            for (int h = 0; h < H; h++) tail[h] = _mm_setzero_ps();
            for (; i < length; i++) {
                const __m128 vi = _mm_set_ss(CQ_FP16(v[i]));
                CQ_UNROLL_HEADS
                for (int h = 0; h < H; h++) tail[h] = _mm_fmadd_ss(vi, _mm_load_ss(p + h * length + i), tail[h]);
            }
            CQ_UNROLL_HEADS
            for (int h = 0; h < H; h++) {
                sums[h][dd] = _mm256_add_ps(a0[h], a1[h]);
                tails[h][dd] = _mm_cvtss_f32(tail[h]);
            }
        }
        CQ_UNROLL_HEADS
        for (int h = 0; h < H; h++) {
            _mm256_storeu_ps(out + h * hd + d0, _mm256_add_ps(cq_hsum8_ps(sums[h]), _mm256_loadu_ps(tails[h])));
        }
    }
}

/// cq_attend_f16 with the products inline (cq_attend_heads_avx2 for one head); head dimensions
/// that are not a multiple of 16 go through the AVX2 vec-dot.
CQ_AVX2 void cq_attend_f16_avx2(int64_t hd, int64_t length, const float *q, const cq_f16 *keys, size_t key_stride,
                                const cq_f16 *values, size_t value_stride, float scale, float *scratch, float *out) {
    if (hd % 16 != 0) {
        cq_attend_by_dots(cq_vec_dot_f16_f32_avx2, hd, length, q, keys, key_stride, values, value_stride, scale,
                          scratch, out);
        return;
    }
    cq_attend_heads_avx2(1, hd, length, q, keys, key_stride, values, value_stride, scale, scratch, out);
}

/// The heads in chunks of at most CQ_ATTEND_MAX_HEADS, as even as they go (7 heads: 4 + 3).
CQ_AVX2 void cq_attend_f16_group_avx2(int64_t heads, int64_t hd, int64_t length, const float *q, const cq_f16 *keys,
                                      size_t key_stride, const cq_f16 *values, size_t value_stride, float scale,
                                      float *scratch, float *out) {
    if (hd % 16 != 0) {
        for (int64_t h = 0; h < heads; h++) {
            cq_attend_by_dots(cq_vec_dot_f16_f32_avx2, hd, length, q + h * hd, keys, key_stride, values, value_stride,
                              scale, scratch, out + h * hd);
        }
        return;
    }
    for (int64_t h0 = 0; h0 < heads;) {
        const int64_t left = heads - h0, chunks = (left + CQ_ATTEND_MAX_HEADS - 1) / CQ_ATTEND_MAX_HEADS;
        const int64_t n = (left + chunks - 1) / chunks;
        const float *qh = q + h0 * hd;
        float *oh = out + h0 * hd;
        switch (n) {
        case 4: cq_attend_heads_avx2(4, hd, length, qh, keys, key_stride, values, value_stride, scale, scratch, oh); break;
        case 3: cq_attend_heads_avx2(3, hd, length, qh, keys, key_stride, values, value_stride, scale, scratch, oh); break;
        case 2: cq_attend_heads_avx2(2, hd, length, qh, keys, key_stride, values, value_stride, scale, scratch, oh); break;
        default: cq_attend_heads_avx2(1, hd, length, qh, keys, key_stride, values, value_stride, scale, scratch, oh); break;
        }
        h0 += n;
    }
}

/// The entries the avx2 and avx512-vnni paths share (the latter differs in its repacked mat-mat).
#define CQ_KERNELS_AVX2_COMMON                                                                               \
    .vec_dot = {[CQ_TYPE_F32] = cq_vec_dot_f32_f32_avx2, [CQ_TYPE_F16] = cq_vec_dot_f16_f32_avx2,               \
                [CQ_TYPE_Q4_0] = cq_vec_dot_q4_0_q8_0_avx2, [CQ_TYPE_Q4_1] = cq_vec_dot_q4_1_q8_1_avx2,          \
                [CQ_TYPE_Q5_0] = cq_vec_dot_q5_0_q8_0_avx2, [CQ_TYPE_Q5_1] = cq_vec_dot_q5_1_q8_1_avx2,          \
                [CQ_TYPE_Q8_0] = cq_vec_dot_q8_0_q8_0_avx2, [CQ_TYPE_Q4_K] = cq_vec_dot_q4_K_q8_K_avx2,          \
                [CQ_TYPE_Q5_K] = cq_vec_dot_q5_K_q8_K_avx2, [CQ_TYPE_Q6_K] = cq_vec_dot_q6_K_q8_K_avx2},         \
    .quantize = {[CQ_TYPE_Q8_0] = cq_quantize_row_q8_0_avx2, [CQ_TYPE_Q8_1] = cq_quantize_row_q8_1_avx2,        \
                 [CQ_TYPE_Q8_K] = cq_quantize_row_q8_K_avx2},                                                    \
    .matmul = cq_matmul_avx2, .attend_f16 = cq_attend_f16_avx2, .attend_f16_group = cq_attend_f16_group_avx2,   \
    .repacked_types = (1u << CQ_TYPE_Q4_0) | (1u << CQ_TYPE_Q4_1) | (1u << CQ_TYPE_Q5_0) |                       \
                      (1u << CQ_TYPE_Q5_1) | (1u << CQ_TYPE_Q8_0) | (1u << CQ_TYPE_Q4_K) | (1u << CQ_TYPE_Q6_K)

const cq_kernels cq_kernels_avx2 = {
    .name = "avx2",
    CQ_KERNELS_AVX2_COMMON,
    .matmul_repacked = cq_matmul_repacked_avx2,
};

const cq_kernels cq_kernels_avx512_vnni = {
    .name = "avx512-vnni",
    CQ_KERNELS_AVX2_COMMON,
    .matmul_repacked = cq_matmul_repacked_avx512_vnni,
};

#endif // CQ_HAVE_AVX2_VARIANTS
