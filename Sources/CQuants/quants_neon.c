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

/// F16 -> F32 with the FCVT instruction (baseline on aarch64), not the portable bit twiddling.
static inline float cq_h2f(cq_f16 h) {
    __fp16 v;
    memcpy(&v, &h, sizeof v);
    return (float)v;
}

/// Q4_1 keeps (d, m) and Q8_1 keeps (d, s) side by side: [d_x d_y, m_x s_y, ...] in one multiply.
static inline float32x4_t cq_q4_1_q8_1_scales(const cq_block_q4_1 *x, const cq_block_q8_1 *y) {
    uint32_t xdm, yds;
    memcpy(&xdm, &x->d, 4);
    memcpy(&yds, &y->d, 4);
    return vmulq_f32(vcvt_f32_f16(vreinterpret_f16_u32(vdup_n_u32(xdm))),
                     vcvt_f32_f16(vreinterpret_f16_u32(vdup_n_u32(yds))));
}

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
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), cq_h2f(x->d) * cq_h2f(y->d));
}

/// Also adds m_x s_y to lane 1 of *ms.
static inline float32x4_t cq_block_q4_1_q8_1_neon(const cq_block_q4_1 *x, const cq_block_q8_1 *y, float32x4_t acc, float32x4_t *ms) {
    int8x16_t lo, hi;
    cq_unpack_nibbles(x->qs, &lo, &hi);
    int32x4_t s = cq_dot_s8_plain(vdupq_n_s32(0), lo, vld1q_s8(y->qs));
    s = cq_dot_s8_plain(s, hi, vld1q_s8(y->qs + 16));
    const float32x4_t scales = cq_q4_1_q8_1_scales(x, y);
    *ms = vaddq_f32(*ms, scales);
    return vfmaq_laneq_f32(acc, vcvtq_f32_s32(s), scales, 0);
}

static inline float32x4_t cq_block_q8_0_q8_0_neon(const cq_block_q8_0 *x, const cq_block_q8_0 *y, float32x4_t acc) {
    int32x4_t s = cq_dot_s8_plain(vdupq_n_s32(0), vld1q_s8(x->qs), vld1q_s8(y->qs));
    s = cq_dot_s8_plain(s, vld1q_s8(x->qs + 16), vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), cq_h2f(x->d) * cq_h2f(y->d));
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
    float32x4_t ms0 = vdupq_n_f32(0.0f), ms1 = vdupq_n_f32(0.0f); // lane 1: sums of m_x * s_y
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = cq_block_q4_1_q8_1_neon(&x[i], &y[i], acc0, &ms0);
        acc1 = cq_block_q4_1_q8_1_neon(&x[i + 1], &y[i + 1], acc1, &ms1);
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1)) + vgetq_lane_f32(vaddq_f32(ms0, ms1), 1);
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
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), cq_h2f(x->d) * cq_h2f(y->d));
}

/// Also adds m_x s_y to lane 1 of *ms.
static inline CQ_DOTPROD float32x4_t cq_block_q4_1_q8_1_sdot(const cq_block_q4_1 *x, const cq_block_q8_1 *y, float32x4_t acc, float32x4_t *ms) {
    int8x16_t lo, hi;
    cq_unpack_nibbles(x->qs, &lo, &hi);
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(y->qs));
    s = vdotq_s32(s, hi, vld1q_s8(y->qs + 16));
    const float32x4_t scales = cq_q4_1_q8_1_scales(x, y);
    *ms = vaddq_f32(*ms, scales);
    return vfmaq_laneq_f32(acc, vcvtq_f32_s32(s), scales, 0);
}

static inline CQ_DOTPROD float32x4_t cq_block_q8_0_q8_0_sdot(const cq_block_q8_0 *x, const cq_block_q8_0 *y, float32x4_t acc) {
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), vld1q_s8(x->qs), vld1q_s8(y->qs));
    s = vdotq_s32(s, vld1q_s8(x->qs + 16), vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), cq_h2f(x->d) * cq_h2f(y->d));
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
    float32x4_t ms0 = vdupq_n_f32(0.0f), ms1 = vdupq_n_f32(0.0f); // lane 1: sums of m_x * s_y
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = cq_block_q4_1_q8_1_sdot(&x[i], &y[i], acc0, &ms0);
        acc1 = cq_block_q4_1_q8_1_sdot(&x[i + 1], &y[i + 1], acc1, &ms1);
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1)) + vgetq_lane_f32(vaddq_f32(ms0, ms1), 1);
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
    .vec_dot = {
        [CQ_TYPE_F32] = cq_vec_dot_f32_f32_neon,
        [CQ_TYPE_F16] = cq_vec_dot_f16_f32_neon,
        [CQ_TYPE_Q4_0] = cq_vec_dot_q4_0_q8_0_neon,
        [CQ_TYPE_Q4_1] = cq_vec_dot_q4_1_q8_1_neon,
        [CQ_TYPE_Q5_0] = cq_vec_dot_q5_0_q8_0_scalar,
        [CQ_TYPE_Q5_1] = cq_vec_dot_q5_1_q8_1_scalar,
        [CQ_TYPE_Q8_0] = cq_vec_dot_q8_0_q8_0_neon,
        [CQ_TYPE_Q4_K] = cq_vec_dot_q4_K_q8_K_scalar,
        [CQ_TYPE_Q5_K] = cq_vec_dot_q5_K_q8_K_scalar,
        [CQ_TYPE_Q6_K] = cq_vec_dot_q6_K_q8_K_scalar,
    },
};

// F16 and F32 dots have no SDOT form: the dotprod path shares the plain NEON ones. Only this path
// has a repacked kernel, so plain NEON (Cortex-A53 / Pi 4 class) keeps the plain layouts.
const cq_kernels cq_kernels_neon_dotprod = {
    .name = "neon-dotprod",
    .vec_dot = {
        [CQ_TYPE_F32] = cq_vec_dot_f32_f32_neon,
        [CQ_TYPE_F16] = cq_vec_dot_f16_f32_neon,
        [CQ_TYPE_Q4_0] = cq_vec_dot_q4_0_q8_0_neon_dotprod,
        [CQ_TYPE_Q4_1] = cq_vec_dot_q4_1_q8_1_neon_dotprod,
        [CQ_TYPE_Q5_0] = cq_vec_dot_q5_0_q8_0_scalar,
        [CQ_TYPE_Q5_1] = cq_vec_dot_q5_1_q8_1_scalar,
        [CQ_TYPE_Q8_0] = cq_vec_dot_q8_0_q8_0_neon_dotprod,
        [CQ_TYPE_Q4_K] = cq_vec_dot_q4_K_q8_K_scalar,
        [CQ_TYPE_Q5_K] = cq_vec_dot_q5_K_q8_K_scalar,
        [CQ_TYPE_Q6_K] = cq_vec_dot_q6_K_q8_K_scalar,
    },
    .matmul_repacked = cq_matmul_repacked_neon_dotprod, // repack_neon.c
    .repacked_types = (1u << CQ_TYPE_Q4_1) | (1u << CQ_TYPE_Q8_0),
};

#endif // CQ_HAVE_NEON_VARIANTS
