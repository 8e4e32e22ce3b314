// aarch64 variants. Plain NEON (ARMv8.0 Advanced SIMD) is baseline on aarch64; the `_dotprod`
// functions use the ARMv8.2 SDOT instruction, enabled per function with a target attribute, and
// run only after dispatch.c has seen HWCAP_ASIMDDP.
//
// Integer sums are exact for every byte value, -128 included: plain NEON widens each product to
// int16 (vmull_s8, |p| <= 16384) and accumulates pairwise into int32 (vpadalq_s16); SDOT sums
// four products straight into int32.
#include "quants_impl.h"

#if defined(CQ_HAVE_NEON_VARIANTS)

#include <arm_neon.h>

#if defined(__clang__)
#define CQ_DOTPROD __attribute__((target("dotprod")))
#else
#define CQ_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

/// 16 bytes of packed nibbles -> elements 0...15 (low nibbles) and 16...31 (high nibbles).
static inline void cq_unpack_nibbles(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t v = vld1q_u8(qs);
    *lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f)));
    *hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
}

/// acc + pairwise int32 sums of the products of a and b (16 signed bytes each), exactly.
static inline int32x4_t cq_dot_s8_plain(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}

// ---- Plain NEON --------------------------------------------------------------------------------
// One block each: acc + d_x d_y * (four int32 partial sums of the block's integer dot).

static inline float32x4_t cq_block_q4_0_q8_0_neon(const cq_block_q4_0 *x, const cq_block_q8_0 *y, float32x4_t acc) {
    int8x16_t lo, hi;
    cq_unpack_nibbles(x->qs, &lo, &hi);
    const int8x16_t eight = vdupq_n_s8(8);
    int32x4_t s = cq_dot_s8_plain(vdupq_n_s32(0), vsubq_s8(lo, eight), vld1q_s8(y->qs));
    s = cq_dot_s8_plain(s, vsubq_s8(hi, eight), vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), CQ_FP16(x->d) * CQ_FP16(y->d));
}

static inline float32x4_t cq_block_q4_1_q8_1_neon(const cq_block_q4_1 *x, const cq_block_q8_1 *y, float32x4_t acc) {
    int8x16_t lo, hi;
    cq_unpack_nibbles(x->qs, &lo, &hi);
    int32x4_t s = cq_dot_s8_plain(vdupq_n_s32(0), lo, vld1q_s8(y->qs));
    s = cq_dot_s8_plain(s, hi, vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), CQ_FP16(x->d) * CQ_FP16(y->d));
}

static inline float32x4_t cq_block_q8_0_q8_0_neon(const cq_block_q8_0 *x, const cq_block_q8_0 *y, float32x4_t acc) {
    int32x4_t s = cq_dot_s8_plain(vdupq_n_s32(0), vld1q_s8(x->qs), vld1q_s8(y->qs));
    s = cq_dot_s8_plain(s, vld1q_s8(x->qs + 16), vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), CQ_FP16(x->d) * CQ_FP16(y->d));
}

// Two blocks per step on two accumulators; an odd last block goes to the reference.

float cq_vec_dot_q4_0_q8_0_neon(int64_t n, const void *vx, const void *vy) {
    const cq_block_q4_0 *x = vx;
    const cq_block_q8_0 *y = vy;
    const int64_t nb = n / CQ_QK;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = cq_block_q4_0_q8_0_neon(&x[i], &y[i], acc0);
        acc1 = cq_block_q4_0_q8_0_neon(&x[i + 1], &y[i + 1], acc1);
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    if (i < nb) sum += cq_vec_dot_q4_0_q8_0_scalar((nb - i) * CQ_QK, x + i, y + i);
    return sum;
}

float cq_vec_dot_q4_1_q8_1_neon(int64_t n, const void *vx, const void *vy) {
    const cq_block_q4_1 *x = vx;
    const cq_block_q8_1 *y = vy;
    const int64_t nb = n / CQ_QK;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    float summs0 = 0.0f, summs1 = 0.0f; // sums of m_x * s_y
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = cq_block_q4_1_q8_1_neon(&x[i], &y[i], acc0);
        acc1 = cq_block_q4_1_q8_1_neon(&x[i + 1], &y[i + 1], acc1);
        summs0 += CQ_FP16(x[i].m) * CQ_FP16(y[i].s);
        summs1 += CQ_FP16(x[i + 1].m) * CQ_FP16(y[i + 1].s);
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1)) + (summs0 + summs1);
    if (i < nb) sum += cq_vec_dot_q4_1_q8_1_scalar((nb - i) * CQ_QK, x + i, y + i);
    return sum;
}

float cq_vec_dot_q8_0_q8_0_neon(int64_t n, const void *vx, const void *vy) {
    const cq_block_q8_0 *x = vx;
    const cq_block_q8_0 *y = vy;
    const int64_t nb = n / CQ_QK;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = cq_block_q8_0_q8_0_neon(&x[i], &y[i], acc0);
        acc1 = cq_block_q8_0_q8_0_neon(&x[i + 1], &y[i + 1], acc1);
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    if (i < nb) sum += cq_vec_dot_q8_0_q8_0_scalar((nb - i) * CQ_QK, x + i, y + i);
    return sum;
}

float cq_vec_dot_f16_f32_neon(int64_t n, const void *vx, const void *vy) {
    const cq_f16 *x = vx;
    const float *y = vy;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4_t x0 = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i)));
        const float32x4_t x1 = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i + 4)));
        acc0 = vfmaq_f32(acc0, x0, vld1q_f32(y + i));
        acc1 = vfmaq_f32(acc1, x1, vld1q_f32(y + i + 4));
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    if (i < n) sum += cq_vec_dot_f16_f32_scalar(n - i, x + i, y + i);
    return sum;
}

float cq_vec_dot_f32_f32_neon(int64_t n, const void *vx, const void *vy) {
    const float *x = vx;
    const float *y = vy;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(x + i), vld1q_f32(y + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    if (i < n) sum += cq_vec_dot_f32_f32_scalar(n - i, x + i, y + i);
    return sum;
}

// ---- NEON + SDOT (ARMv8.2 dot product) ---------------------------------------------------------

static inline CQ_DOTPROD float32x4_t cq_block_q4_0_q8_0_sdot(const cq_block_q4_0 *x, const cq_block_q8_0 *y, float32x4_t acc) {
    int8x16_t lo, hi;
    cq_unpack_nibbles(x->qs, &lo, &hi);
    const int8x16_t eight = vdupq_n_s8(8);
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), vsubq_s8(lo, eight), vld1q_s8(y->qs));
    s = vdotq_s32(s, vsubq_s8(hi, eight), vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), CQ_FP16(x->d) * CQ_FP16(y->d));
}

static inline CQ_DOTPROD float32x4_t cq_block_q4_1_q8_1_sdot(const cq_block_q4_1 *x, const cq_block_q8_1 *y, float32x4_t acc) {
    int8x16_t lo, hi;
    cq_unpack_nibbles(x->qs, &lo, &hi);
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(y->qs));
    s = vdotq_s32(s, hi, vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), CQ_FP16(x->d) * CQ_FP16(y->d));
}

static inline CQ_DOTPROD float32x4_t cq_block_q8_0_q8_0_sdot(const cq_block_q8_0 *x, const cq_block_q8_0 *y, float32x4_t acc) {
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), vld1q_s8(x->qs), vld1q_s8(y->qs));
    s = vdotq_s32(s, vld1q_s8(x->qs + 16), vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), CQ_FP16(x->d) * CQ_FP16(y->d));
}

// Two blocks per step on two accumulators; an odd last block goes to the reference.

CQ_DOTPROD float cq_vec_dot_q4_0_q8_0_neon_dotprod(int64_t n, const void *vx, const void *vy) {
    const cq_block_q4_0 *x = vx;
    const cq_block_q8_0 *y = vy;
    const int64_t nb = n / CQ_QK;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = cq_block_q4_0_q8_0_sdot(&x[i], &y[i], acc0);
        acc1 = cq_block_q4_0_q8_0_sdot(&x[i + 1], &y[i + 1], acc1);
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    if (i < nb) sum += cq_vec_dot_q4_0_q8_0_scalar((nb - i) * CQ_QK, x + i, y + i);
    return sum;
}

CQ_DOTPROD float cq_vec_dot_q4_1_q8_1_neon_dotprod(int64_t n, const void *vx, const void *vy) {
    const cq_block_q4_1 *x = vx;
    const cq_block_q8_1 *y = vy;
    const int64_t nb = n / CQ_QK;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    float summs0 = 0.0f, summs1 = 0.0f; // sums of m_x * s_y
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = cq_block_q4_1_q8_1_sdot(&x[i], &y[i], acc0);
        acc1 = cq_block_q4_1_q8_1_sdot(&x[i + 1], &y[i + 1], acc1);
        summs0 += CQ_FP16(x[i].m) * CQ_FP16(y[i].s);
        summs1 += CQ_FP16(x[i + 1].m) * CQ_FP16(y[i + 1].s);
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1)) + (summs0 + summs1);
    if (i < nb) sum += cq_vec_dot_q4_1_q8_1_scalar((nb - i) * CQ_QK, x + i, y + i);
    return sum;
}

CQ_DOTPROD float cq_vec_dot_q8_0_q8_0_neon_dotprod(int64_t n, const void *vx, const void *vy) {
    const cq_block_q8_0 *x = vx;
    const cq_block_q8_0 *y = vy;
    const int64_t nb = n / CQ_QK;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = cq_block_q8_0_q8_0_sdot(&x[i], &y[i], acc0);
        acc1 = cq_block_q8_0_q8_0_sdot(&x[i + 1], &y[i + 1], acc1);
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    if (i < nb) sum += cq_vec_dot_q8_0_q8_0_scalar((nb - i) * CQ_QK, x + i, y + i);
    return sum;
}

const cq_kernels cq_kernels_neon = {
    .name = "neon",
    .q4_0_q8_0 = cq_vec_dot_q4_0_q8_0_neon,
    .q4_1_q8_1 = cq_vec_dot_q4_1_q8_1_neon,
    .q8_0_q8_0 = cq_vec_dot_q8_0_q8_0_neon,
    .f16_f32 = cq_vec_dot_f16_f32_neon,
    .f32_f32 = cq_vec_dot_f32_f32_neon,
};

// F16 and F32 dots have no SDOT form: the dotprod path shares the plain NEON ones.
const cq_kernels cq_kernels_neon_dotprod = {
    .name = "neon-dotprod",
    .q4_0_q8_0 = cq_vec_dot_q4_0_q8_0_neon_dotprod,
    .q4_1_q8_1 = cq_vec_dot_q4_1_q8_1_neon_dotprod,
    .q8_0_q8_0 = cq_vec_dot_q8_0_q8_0_neon_dotprod,
    .f16_f32 = cq_vec_dot_f16_f32_neon,
    .f32_f32 = cq_vec_dot_f32_f32_neon,
};

#endif // CQ_HAVE_NEON_VARIANTS
