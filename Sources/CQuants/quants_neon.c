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

/// Four int32 partial sums of the products of a0 with b0 and a1 with b1 (16 signed bytes each) for
/// quants |a| <= 63 (Q5's): each int16 lane gathers four products, at most 4 * 63 * 128 = 32256,
/// so one widening at the end is exact.
static inline int32x4_t cq_dot_s8x2_small(int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
    int16x8_t p = vmull_s8(vget_low_s8(a0), vget_low_s8(b0));
    p = vmlal_high_s8(p, a0, b0);
    p = vmlal_s8(p, vget_low_s8(a1), vget_low_s8(b1));
    p = vmlal_high_s8(p, a1, b1);
    return vpaddlq_s16(p);
}

/// Bit 4 of the 32 quants of a Q5 block (bit j of the little-endian qh for element j): 0xff in the
/// lanes of elements 0...15 (*lo) and 16...31 (*hi) whose bit is set, else 0.
static inline void cq_q5_high_masks(const uint8_t qh[4], uint8x16_t *lo, uint8x16_t *hi) {
    static const uint8_t spread_lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    static const uint8_t spread_hi[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint32_t bits;
    memcpy(&bits, qh, 4);
    const uint8x16_t b = vreinterpretq_u8_u32(vdupq_n_u32(bits)); // qh bytes 0-3, four times
    *lo = vtstq_u8(vqtbl1q_u8(b, vld1q_u8(spread_lo)), vld1q_u8(bit));
    *hi = vtstq_u8(vqtbl1q_u8(b, vld1q_u8(spread_hi)), vld1q_u8(bit));
}

/// Q5_0 quants minus 16 (-16...15): elements 0...15 in *lo, 16...31 in *hi.
static inline void cq_unpack_q5_0(const cq_block_q5_0 *x, int8x16_t *lo, int8x16_t *hi) {
    uint8x16_t mlo, mhi;
    cq_q5_high_masks(x->qh, &mlo, &mhi);
    cq_unpack_nibbles(x->qs, lo, hi);
    const uint8x16_t sixteen = vdupq_n_u8(16);
    // nibble + 16 * bit - 16 = nibble - (bit ? 0 : 16)
    *lo = vsubq_s8(*lo, vreinterpretq_s8_u8(vbicq_u8(sixteen, mlo)));
    *hi = vsubq_s8(*hi, vreinterpretq_s8_u8(vbicq_u8(sixteen, mhi)));
}

/// Q5_1 quants (0...31): elements 0...15 in *lo, 16...31 in *hi.
static inline void cq_unpack_q5_1(const cq_block_q5_1 *x, int8x16_t *lo, int8x16_t *hi) {
    uint8x16_t mlo, mhi;
    cq_q5_high_masks(x->qh, &mlo, &mhi);
    cq_unpack_nibbles(x->qs, lo, hi);
    const uint8x16_t sixteen = vdupq_n_u8(16);
    *lo = vorrq_s8(*lo, vreinterpretq_s8_u8(vandq_u8(mlo, sixteen)));
    *hi = vorrq_s8(*hi, vreinterpretq_s8_u8(vandq_u8(mhi, sixteen)));
}

/// Q5_1 keeps (d, m) and Q8_1 keeps (d, s) side by side, as Q4_1: [d_x d_y, m_x s_y, ...].
static inline float32x4_t cq_q5_1_q8_1_scales(const cq_block_q5_1 *x, const cq_block_q8_1 *y) {
    uint32_t xdm, yds;
    memcpy(&xdm, &x->d, 4);
    memcpy(&yds, &y->d, 4);
    return vmulq_f32(vcvt_f32_f16(vreinterpret_f16_u32(vdup_n_u32(xdm))),
                     vcvt_f32_f16(vreinterpret_f16_u32(vdup_n_u32(yds))));
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

static inline float32x4_t cq_block_q5_0_q8_0_neon(const cq_block_q5_0 *x, const cq_block_q8_0 *y, float32x4_t acc) {
    int8x16_t lo, hi;
    cq_unpack_q5_0(x, &lo, &hi);
    const int32x4_t s = cq_dot_s8x2_small(lo, vld1q_s8(y->qs), hi, vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), cq_h2f(x->d) * cq_h2f(y->d));
}

/// Also adds m_x s_y to lane 1 of *ms.
static inline float32x4_t cq_block_q5_1_q8_1_neon(const cq_block_q5_1 *x, const cq_block_q8_1 *y, float32x4_t acc, float32x4_t *ms) {
    int8x16_t lo, hi;
    cq_unpack_q5_1(x, &lo, &hi);
    const int32x4_t s = cq_dot_s8x2_small(lo, vld1q_s8(y->qs), hi, vld1q_s8(y->qs + 16));
    const float32x4_t scales = cq_q5_1_q8_1_scales(x, y);
    *ms = vaddq_f32(*ms, scales);
    return vfmaq_laneq_f32(acc, vcvtq_f32_s32(s), scales, 0);
}

static inline float32x4_t cq_block_q8_0_q8_0_neon(const cq_block_q8_0 *x, const cq_block_q8_0 *y, float32x4_t acc) {
    int32x4_t s = cq_dot_s8_plain(vdupq_n_s32(0), vld1q_s8(x->qs), vld1q_s8(y->qs));
    s = cq_dot_s8_plain(s, vld1q_s8(x->qs + 16), vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), cq_h2f(x->d) * cq_h2f(y->d));
}

// Two blocks per step on two accumulators; an odd last block goes to the reference. One loop for
// every 32-element weight type: CQ_DOT_TWO_BLOCKS for the types whose block adds d_x d_y sum only,
// CQ_DOT_TWO_BLOCKS_MS for those that also add m_x s_y (lane 1 of the ms accumulators).

#define CQ_DOT_TWO_BLOCKS(ATTR, NAME, WBLOCK, ABLOCK, BLOCK_FN, REF)                                     \
    ATTR float NAME(int64_t n, const void *vx, const void *vy) {                                       \
        const WBLOCK *x = vx;                                                                          \
        const ABLOCK *y = vy;                                                                          \
        const int64_t nb = n / CQ_QK;                                                                  \
        float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);                                \
        int64_t i = 0;                                                                                 \
        for (; i + 2 <= nb; i += 2) {                                                                  \
            acc0 = BLOCK_FN(&x[i], &y[i], acc0);                                                       \
            acc1 = BLOCK_FN(&x[i + 1], &y[i + 1], acc1);                                               \
        }                                                                                              \
        float sum = vaddvq_f32(vaddq_f32(acc0, acc1));                                                 \
        if (i < nb) sum += REF((nb - i) * CQ_QK, x + i, y + i);                                        \
        return sum;                                                                                    \
    }

#define CQ_DOT_TWO_BLOCKS_MS(ATTR, NAME, WBLOCK, ABLOCK, BLOCK_FN, REF)                                  \
    ATTR float NAME(int64_t n, const void *vx, const void *vy) {                                       \
        const WBLOCK *x = vx;                                                                          \
        const ABLOCK *y = vy;                                                                          \
        const int64_t nb = n / CQ_QK;                                                                  \
        float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);                                \
        float32x4_t ms0 = vdupq_n_f32(0.0f), ms1 = vdupq_n_f32(0.0f);                                  \
        int64_t i = 0;                                                                                 \
        for (; i + 2 <= nb; i += 2) {                                                                  \
            acc0 = BLOCK_FN(&x[i], &y[i], acc0, &ms0);                                                 \
            acc1 = BLOCK_FN(&x[i + 1], &y[i + 1], acc1, &ms1);                                         \
        }                                                                                              \
        float sum = vaddvq_f32(vaddq_f32(acc0, acc1)) + vgetq_lane_f32(vaddq_f32(ms0, ms1), 1);        \
        if (i < nb) sum += REF((nb - i) * CQ_QK, x + i, y + i);                                        \
        return sum;                                                                                    \
    }

CQ_DOT_TWO_BLOCKS(, cq_vec_dot_q4_0_q8_0_neon, cq_block_q4_0, cq_block_q8_0, cq_block_q4_0_q8_0_neon,
                  cq_vec_dot_q4_0_q8_0_scalar)

CQ_DOT_TWO_BLOCKS_MS(, cq_vec_dot_q4_1_q8_1_neon, cq_block_q4_1, cq_block_q8_1, cq_block_q4_1_q8_1_neon,
                  cq_vec_dot_q4_1_q8_1_scalar)

CQ_DOT_TWO_BLOCKS(, cq_vec_dot_q5_0_q8_0_neon, cq_block_q5_0, cq_block_q8_0, cq_block_q5_0_q8_0_neon,
                  cq_vec_dot_q5_0_q8_0_scalar)

CQ_DOT_TWO_BLOCKS_MS(, cq_vec_dot_q5_1_q8_1_neon, cq_block_q5_1, cq_block_q8_1, cq_block_q5_1_q8_1_neon,
                  cq_vec_dot_q5_1_q8_1_scalar)

CQ_DOT_TWO_BLOCKS(, cq_vec_dot_q8_0_q8_0_neon, cq_block_q8_0, cq_block_q8_0, cq_block_q8_0_q8_0_neon,
                  cq_vec_dot_q8_0_q8_0_scalar)

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

static inline CQ_DOTPROD float32x4_t cq_block_q5_0_q8_0_sdot(const cq_block_q5_0 *x, const cq_block_q8_0 *y, float32x4_t acc) {
    int8x16_t lo, hi;
    cq_unpack_q5_0(x, &lo, &hi);
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(y->qs));
    s = vdotq_s32(s, hi, vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), cq_h2f(x->d) * cq_h2f(y->d));
}

/// Also adds m_x s_y to lane 1 of *ms.
static inline CQ_DOTPROD float32x4_t cq_block_q5_1_q8_1_sdot(const cq_block_q5_1 *x, const cq_block_q8_1 *y, float32x4_t acc, float32x4_t *ms) {
    int8x16_t lo, hi;
    cq_unpack_q5_1(x, &lo, &hi);
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(y->qs));
    s = vdotq_s32(s, hi, vld1q_s8(y->qs + 16));
    const float32x4_t scales = cq_q5_1_q8_1_scales(x, y);
    *ms = vaddq_f32(*ms, scales);
    return vfmaq_laneq_f32(acc, vcvtq_f32_s32(s), scales, 0);
}

static inline CQ_DOTPROD float32x4_t cq_block_q8_0_q8_0_sdot(const cq_block_q8_0 *x, const cq_block_q8_0 *y, float32x4_t acc) {
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), vld1q_s8(x->qs), vld1q_s8(y->qs));
    s = vdotq_s32(s, vld1q_s8(x->qs + 16), vld1q_s8(y->qs + 16));
    return vmlaq_n_f32(acc, vcvtq_f32_s32(s), cq_h2f(x->d) * cq_h2f(y->d));
}

CQ_DOT_TWO_BLOCKS(CQ_DOTPROD, cq_vec_dot_q4_0_q8_0_neon_dotprod, cq_block_q4_0, cq_block_q8_0, cq_block_q4_0_q8_0_sdot,
                  cq_vec_dot_q4_0_q8_0_scalar)

CQ_DOT_TWO_BLOCKS_MS(CQ_DOTPROD, cq_vec_dot_q4_1_q8_1_neon_dotprod, cq_block_q4_1, cq_block_q8_1, cq_block_q4_1_q8_1_sdot,
                  cq_vec_dot_q4_1_q8_1_scalar)

CQ_DOT_TWO_BLOCKS(CQ_DOTPROD, cq_vec_dot_q5_0_q8_0_neon_dotprod, cq_block_q5_0, cq_block_q8_0, cq_block_q5_0_q8_0_sdot,
                  cq_vec_dot_q5_0_q8_0_scalar)

CQ_DOT_TWO_BLOCKS_MS(CQ_DOTPROD, cq_vec_dot_q5_1_q8_1_neon_dotprod, cq_block_q5_1, cq_block_q8_1, cq_block_q5_1_q8_1_sdot,
                  cq_vec_dot_q5_1_q8_1_scalar)

CQ_DOT_TWO_BLOCKS(CQ_DOTPROD, cq_vec_dot_q8_0_q8_0_neon_dotprod, cq_block_q8_0, cq_block_q8_0, cq_block_q8_0_q8_0_sdot,
                  cq_vec_dot_q8_0_q8_0_scalar)

// ---- Activation quantizers (plain NEON, both paths) ---------------------------------------------
// The same bytes as cq_quantize_row_q8_0 / _q8_1: the absolute maximum by FMAXNM (which skips NaNs,
// as fmaxf does), the same f32 divisions, and FCVTAS, which rounds to nearest with ties away from
// zero: roundf's rounding in one instruction.

/// One block of 32 floats -> the f16 d and the 32 int8 as the reference makes them; *sum gets
/// sum(q) and *d_value the f32 d. Returns 0 (writing nothing) for a block so small that 1 / d
/// overflows, which the reference then quantizes (its float -> int8 casts of infinity).
static inline int cq_quantize_block_q8_neon(const float *x, cq_f16 *d_out, int8_t *qs, int *sum, float *d_value) {
    float32x4_t v[8];
    float32x4_t amax = vdupq_n_f32(0.0f);
    for (int i = 0; i < 8; i++) {
        v[i] = vld1q_f32(x + 4 * i);
        amax = vmaxnmq_f32(amax, vabsq_f32(v[i]));
    }
    const float d = vmaxnmvq_f32(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (isinf(id)) return 0;
    *d_out = cq_f32_to_f16(d);
    *d_value = d;
    int16x8_t q16[4];
    for (int i = 0; i < 4; i++) {
        const int32x4_t a = vcvtaq_s32_f32(vmulq_n_f32(v[2 * i], id));
        const int32x4_t b = vcvtaq_s32_f32(vmulq_n_f32(v[2 * i + 1], id));
        q16[i] = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b)); // within -127...127
    }
    const int8x16_t q0 = vcombine_s8(vqmovn_s16(q16[0]), vqmovn_s16(q16[1]));
    const int8x16_t q1 = vcombine_s8(vqmovn_s16(q16[2]), vqmovn_s16(q16[3]));
    vst1q_s8(qs, q0);
    vst1q_s8(qs + 16, q1);
    *sum = vaddlvq_s8(q0) + vaddlvq_s8(q1);
    return 1;
}

void cq_quantize_row_q8_0_neon(const float *x, void *dst, int64_t n) {
    cq_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        int sum;
        float d;
        if (!cq_quantize_block_q8_neon(x + i * CQ_QK, &y[i].d, y[i].qs, &sum, &d)) {
            cq_quantize_row_q8_0(x + i * CQ_QK, &y[i], CQ_QK);
        }
    }
}

void cq_quantize_row_q8_1_neon(const float *x, void *dst, int64_t n) {
    cq_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        int sum;
        float d;
        if (cq_quantize_block_q8_neon(x + i * CQ_QK, &y[i].d, y[i].qs, &sum, &d)) {
            y[i].s = cq_f32_to_f16((float)sum * d);
        } else {
            cq_quantize_row_q8_1(x + i * CQ_QK, &y[i], CQ_QK);
        }
    }
}

// ---- Attention (plain NEON, both paths) ----------------------------------------------------------
// As cq_attend_by_dots, with the F16 products inline: the query rounded to f16 (FCVTN, round to
// nearest even, the same as cq_f32_to_f16), scores from two accumulators of four lanes over the
// head dimension and one FADDP reduction, the shared softmax (cq_softmax_exp), the probabilities
// rounded to f16 and kept as the f32 values of those halves (exact), then each output dimension
// from two accumulators over the positions, the last positions by scalar fmaf. Every operation is
// an explicit fused or unfused intrinsic (no a * b + c the compiler could contract one way here and
// another way there), so a head's output is the same bits whatever the number of heads run with it.

/// Heads kept in registers at once: two accumulators per head for each of two keys (or value rows)
/// in flight take 16 of the 32 vector registers at four heads.
#define CQ_ATTEND_NEON_MAX_HEADS 4
/// Before each loop over the heads, so the per-head accumulators become registers.
#define CQ_UNROLL_HEADS_NEON _Pragma("GCC unroll 4")

/// The products of one key (hd f16, hd a multiple of 8) with `H` rounded queries (head h's at
/// qr + h * hd), summed across: dots[h].
static inline __attribute__((always_inline)) void cq_attend_key_neon(const int H, int64_t hd, const cq_f16 *k,
                                                                     const float *qr, float *dots) {
    float32x4_t a0[CQ_ATTEND_NEON_MAX_HEADS], a1[CQ_ATTEND_NEON_MAX_HEADS];
    CQ_UNROLL_HEADS_NEON
    for (int h = 0; h < H; h++) a0[h] = a1[h] = vdupq_n_f32(0.0f);
    for (int64_t d = 0; d < hd; d += 8) {
        const float16x8_t kh = vreinterpretq_f16_u16(vld1q_u16(k + d));
        const float32x4_t k0 = vcvt_f32_f16(vget_low_f16(kh)), k1 = vcvt_high_f32_f16(kh);
        CQ_UNROLL_HEADS_NEON
        for (int h = 0; h < H; h++) {
            a0[h] = vfmaq_f32(a0[h], k0, vld1q_f32(qr + h * hd + d));
            a1[h] = vfmaq_f32(a1[h], k1, vld1q_f32(qr + h * hd + d + 4));
        }
    }
    CQ_UNROLL_HEADS_NEON
    for (int h = 0; h < H; h++) dots[h] = vaddvq_f32(vaddq_f32(a0[h], a1[h]));
}

/// The products of one value row (dimension d over `length` positions) with `H` heads'
/// probabilities (head h's at p + h * length): dots[h].
static inline __attribute__((always_inline)) void cq_attend_value_neon(const int H, int64_t length, const cq_f16 *v,
                                                                       const float *p, float *dots) {
    float32x4_t a0[CQ_ATTEND_NEON_MAX_HEADS], a1[CQ_ATTEND_NEON_MAX_HEADS];
    float tail[CQ_ATTEND_NEON_MAX_HEADS];
    CQ_UNROLL_HEADS_NEON
    for (int h = 0; h < H; h++) {
        a0[h] = a1[h] = vdupq_n_f32(0.0f);
        tail[h] = 0.0f;
    }
    int64_t i = 0;
    for (; i + 8 <= length; i += 8) {
        const float16x8_t vh = vreinterpretq_f16_u16(vld1q_u16(v + i));
        const float32x4_t v0 = vcvt_f32_f16(vget_low_f16(vh)), v1 = vcvt_high_f32_f16(vh);
        CQ_UNROLL_HEADS_NEON
        for (int h = 0; h < H; h++) {
            a0[h] = vfmaq_f32(a0[h], v0, vld1q_f32(p + h * length + i));
            a1[h] = vfmaq_f32(a1[h], v1, vld1q_f32(p + h * length + i + 4));
        }
    }
    if (i + 4 <= length) {
        const float32x4_t v0 = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(v + i)));
        CQ_UNROLL_HEADS_NEON
        for (int h = 0; h < H; h++) a0[h] = vfmaq_f32(a0[h], v0, vld1q_f32(p + h * length + i));
        i += 4;
    }
    for (; i < length; i++) {
        const float vi = cq_h2f(v[i]);
        CQ_UNROLL_HEADS_NEON
        for (int h = 0; h < H; h++) tail[h] = fmaf(vi, p[h * length + i], tail[h]);
    }
    CQ_UNROLL_HEADS_NEON
    for (int h = 0; h < H; h++) dots[h] = vaddvq_f32(vaddq_f32(a0[h], a1[h])) + tail[h];
}

/// cq_attend_f16 for `H` (1...CQ_ATTEND_NEON_MAX_HEADS, a constant after inlining) query heads that
/// share keys and values, head dimension a multiple of 8: each key and value row is read and
/// converted once for all of them; per head, the operations are those of one head alone.
/// Scratch: H * (head_dim + length) floats (the rounded queries, then the scores, turned into
/// probabilities in place).
static inline __attribute__((always_inline)) void
cq_attend_heads_neon(const int H, int64_t hd, int64_t length, const float *q, const cq_f16 *keys, size_t key_stride,
                     const cq_f16 *values, size_t value_stride, float scale, float *scratch, float *out) {
    float *qr = scratch, *p = scratch + (size_t)H * hd;
    for (int64_t d = 0; d < H * hd; d += 4) vst1q_f32(qr + d, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(q + d))));
    float max[CQ_ATTEND_NEON_MAX_HEADS];
    CQ_UNROLL_HEADS_NEON
    for (int h = 0; h < H; h++) max[h] = -INFINITY;
    // Two keys per step (independent chains for in-order cores); a key's score does not depend on
    // which slot it took.
    int64_t j = 0;
    for (; j + 2 <= length; j += 2) {
        float s0[CQ_ATTEND_NEON_MAX_HEADS], s1[CQ_ATTEND_NEON_MAX_HEADS];
        cq_attend_key_neon(H, hd, keys + (size_t)j * key_stride, qr, s0);
        cq_attend_key_neon(H, hd, keys + (size_t)(j + 1) * key_stride, qr, s1);
        CQ_UNROLL_HEADS_NEON
        for (int h = 0; h < H; h++) {
            const float a = s0[h] * scale, b = s1[h] * scale;
            p[h * length + j] = a;
            p[h * length + j + 1] = b;
            if (a > max[h]) max[h] = a;
            if (b > max[h]) max[h] = b;
        }
    }
    if (j < length) {
        float s0[CQ_ATTEND_NEON_MAX_HEADS];
        cq_attend_key_neon(H, hd, keys + (size_t)j * key_stride, qr, s0);
        CQ_UNROLL_HEADS_NEON
        for (int h = 0; h < H; h++) {
            const float a = s0[h] * scale;
            p[h * length + j] = a;
            if (a > max[h]) max[h] = a;
        }
    }
    CQ_UNROLL_HEADS_NEON
    for (int h = 0; h < H; h++) {
        float *ph = p + h * length;
        const float inv = cq_softmax_exp(ph, length, max[h]);
        int64_t i = 0;
        for (; i + 4 <= length; i += 4) vst1q_f32(ph + i, vcvt_f32_f16(vcvt_f16_f32(vmulq_n_f32(vld1q_f32(ph + i), inv))));
        for (; i < length; i++) ph[i] = CQ_FP16(cq_f32_to_f16(ph[i] * inv));
    }
    // Two output dimensions per step (hd is even).
    for (int64_t d = 0; d < hd; d += 2) {
        float o0[CQ_ATTEND_NEON_MAX_HEADS], o1[CQ_ATTEND_NEON_MAX_HEADS];
        cq_attend_value_neon(H, length, values + (size_t)d * value_stride, p, o0);
        cq_attend_value_neon(H, length, values + (size_t)(d + 1) * value_stride, p, o1);
        CQ_UNROLL_HEADS_NEON
        for (int h = 0; h < H; h++) {
            out[h * hd + d] = o0[h];
            out[h * hd + d + 1] = o1[h];
        }
    }
}

void cq_attend_f16_neon(int64_t hd, int64_t length, const float *q, const cq_f16 *keys, size_t key_stride,
                        const cq_f16 *values, size_t value_stride, float scale, float *scratch, float *out) {
    if (hd % 8 != 0) {
        cq_attend_by_dots(cq_vec_dot_f16_f32_neon, hd, length, q, keys, key_stride, values, value_stride, scale,
                          scratch, out);
        return;
    }
    cq_attend_heads_neon(1, hd, length, q, keys, key_stride, values, value_stride, scale, scratch, out);
}

/// The heads in chunks of at most CQ_ATTEND_NEON_MAX_HEADS, as even as they go (7 heads: 4 + 3).
void cq_attend_f16_group_neon(int64_t heads, int64_t hd, int64_t length, const float *q, const cq_f16 *keys,
                              size_t key_stride, const cq_f16 *values, size_t value_stride, float scale,
                              float *scratch, float *out) {
    if (hd % 8 != 0) {
        for (int64_t h = 0; h < heads; h++) {
            cq_attend_by_dots(cq_vec_dot_f16_f32_neon, hd, length, q + h * hd, keys, key_stride, values, value_stride,
                              scale, scratch, out + h * hd);
        }
        return;
    }
    for (int64_t h0 = 0; h0 < heads;) {
        const int64_t left = heads - h0, chunks = (left + CQ_ATTEND_NEON_MAX_HEADS - 1) / CQ_ATTEND_NEON_MAX_HEADS;
        const int64_t n = (left + chunks - 1) / chunks;
        const float *qh = q + h0 * hd;
        float *oh = out + h0 * hd;
        switch (n) {
        case 4: cq_attend_heads_neon(4, hd, length, qh, keys, key_stride, values, value_stride, scale, scratch, oh); break;
        case 3: cq_attend_heads_neon(3, hd, length, qh, keys, key_stride, values, value_stride, scale, scratch, oh); break;
        case 2: cq_attend_heads_neon(2, hd, length, qh, keys, key_stride, values, value_stride, scale, scratch, oh); break;
        default: cq_attend_heads_neon(1, hd, length, qh, keys, key_stride, values, value_stride, scale, scratch, oh); break;
        }
        h0 += n;
    }
}

const cq_kernels cq_kernels_neon = {
    .name = "neon",
    .vec_dot = {
        [CQ_TYPE_F32] = cq_vec_dot_f32_f32_neon,
        [CQ_TYPE_F16] = cq_vec_dot_f16_f32_neon,
        [CQ_TYPE_Q4_0] = cq_vec_dot_q4_0_q8_0_neon,
        [CQ_TYPE_Q4_1] = cq_vec_dot_q4_1_q8_1_neon,
        [CQ_TYPE_Q5_0] = cq_vec_dot_q5_0_q8_0_neon,
        [CQ_TYPE_Q5_1] = cq_vec_dot_q5_1_q8_1_neon,
        [CQ_TYPE_Q8_0] = cq_vec_dot_q8_0_q8_0_neon,
        [CQ_TYPE_Q4_K] = cq_vec_dot_q4_K_q8_K_neon, // kquants_neon.c
        [CQ_TYPE_Q5_K] = cq_vec_dot_q5_K_q8_K_neon,
        [CQ_TYPE_Q6_K] = cq_vec_dot_q6_K_q8_K_neon,
    },
    .quantize = {
        [CQ_TYPE_Q8_0] = cq_quantize_row_q8_0_neon,
        [CQ_TYPE_Q8_1] = cq_quantize_row_q8_1_neon,
        [CQ_TYPE_Q8_K] = cq_quantize_row_q8_K_neon, // kquants_neon.c
    },
    .attend_f16 = cq_attend_f16_neon,
    .attend_f16_group = cq_attend_f16_group_neon,
};

// F16 and F32 dots, the activation quantizers and attention have no SDOT form: the dotprod path
// shares the plain NEON ones. Only this path has a repacked kernel, so plain NEON (Cortex-A53 /
// Pi 4 class) keeps the plain layouts.
const cq_kernels cq_kernels_neon_dotprod = {
    .name = "neon-dotprod",
    .vec_dot = {
        [CQ_TYPE_F32] = cq_vec_dot_f32_f32_neon,
        [CQ_TYPE_F16] = cq_vec_dot_f16_f32_neon,
        [CQ_TYPE_Q4_0] = cq_vec_dot_q4_0_q8_0_neon_dotprod,
        [CQ_TYPE_Q4_1] = cq_vec_dot_q4_1_q8_1_neon_dotprod,
        [CQ_TYPE_Q5_0] = cq_vec_dot_q5_0_q8_0_neon_dotprod,
        [CQ_TYPE_Q5_1] = cq_vec_dot_q5_1_q8_1_neon_dotprod,
        [CQ_TYPE_Q8_0] = cq_vec_dot_q8_0_q8_0_neon_dotprod,
        [CQ_TYPE_Q4_K] = cq_vec_dot_q4_K_q8_K_neon_dotprod, // kquants_neon.c
        [CQ_TYPE_Q5_K] = cq_vec_dot_q5_K_q8_K_neon_dotprod,
        [CQ_TYPE_Q6_K] = cq_vec_dot_q6_K_q8_K_neon_dotprod,
    },
    .quantize = {
        [CQ_TYPE_Q8_0] = cq_quantize_row_q8_0_neon,
        [CQ_TYPE_Q8_1] = cq_quantize_row_q8_1_neon,
        [CQ_TYPE_Q8_K] = cq_quantize_row_q8_K_neon,
    },
    .attend_f16 = cq_attend_f16_neon,
    .attend_f16_group = cq_attend_f16_group_neon,
    .matmul_repacked = cq_matmul_repacked_neon_dotprod, // repack_neon.c
    .repacked_types = (1u << CQ_TYPE_Q4_0) | (1u << CQ_TYPE_Q4_1) | (1u << CQ_TYPE_Q5_0) | (1u << CQ_TYPE_Q5_1) |
                      (1u << CQ_TYPE_Q8_0) | (1u << CQ_TYPE_Q4_K) | (1u << CQ_TYPE_Q6_K),
};

#endif // CQ_HAVE_NEON_VARIANTS
