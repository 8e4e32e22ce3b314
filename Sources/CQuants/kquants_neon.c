// aarch64 variants of the K-quant kernels: Q4_K, Q5_K and Q6_K weights dotted with Q8_K
// activations (plain NEON and NEON + SDOT), and the Q8_K activation quantizer (plain NEON, both
// paths). The tables that route here are in quants_neon.c.
//
// Each super-block is summed exactly in integers, as kquants_scalar.c does: one int32x4 of partial
// sums per sub-block (SDOT, or plain NEON's widening multiply-adds), reduced across by pairwise adds
// into [sub-block 0, 1, 2, 3] and multiplied by the sub-block scales in int32; the mins go against
// the activation's 16-element sums (bsums). Then d_x * d_y * sum - dmin_x * d_y * msum in float, super-block
// after super-block, so the results differ from the reference only in the order of float additions.
//
// Plain NEON has no SDOT: the quants here are at most 63 in magnitude (Q4_K 0...15, Q5_K 0...31,
// Q6_K -32...31), so an int16 lane may gather four products with an int8 activation (at most
// 4 * 63 * 128 = 32256, -128 included) before one widening to int32.
#include "quants_impl.h"

#if defined(CQ_HAVE_NEON_VARIANTS)

#include <arm_neon.h>

#if defined(__clang__)
#define CQ_DOTPROD __attribute__((target("dotprod")))
#else
#define CQ_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

/// Before the loops over sub-blocks: unrolled, their partial sums stay in registers (GCC at -O2
/// keeps the loops and the sums on the stack otherwise).
#define CQ_UNROLL_SUBBLOCKS _Pragma("GCC unroll 8")

/// F16 -> F32 with the FCVT instruction.
static inline float cq_h2f(cq_f16 h) {
    __fp16 v;
    memcpy(&v, &h, sizeof v);
    return (float)v;
}

/// [sum p0, sum p1, sum p2, sum p3] (each across its four lanes), exactly.
static inline int32x4_t cq_hsum4_s32(int32x4_t p0, int32x4_t p1, int32x4_t p2, int32x4_t p3) {
    return vpaddq_s32(vpaddq_s32(p0, p1), vpaddq_s32(p2, p3));
}

/// Four int32 partial sums of the 32 products of (a0, a1) with (b0, b1), quants |a| <= 63.
static inline int32x4_t cq_dot32_plain(int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
    int16x8_t p = vmull_s8(vget_low_s8(a0), vget_low_s8(b0));
    p = vmlal_high_s8(p, a0, b0);
    p = vmlal_s8(p, vget_low_s8(a1), vget_low_s8(b1));
    p = vmlal_high_s8(p, a1, b1);
    return vpaddlq_s16(p);
}

/// Four int32 partial sums of the 16 products of a with b, quants |a| <= 63.
static inline int32x4_t cq_dot16_plain(int8x16_t a, int8x16_t b) {
    return vpaddlq_s16(vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b));
}

static inline CQ_DOTPROD int32x4_t cq_dot32_sdot(int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), a0, b0), a1, b1);
}

static inline CQ_DOTPROD int32x4_t cq_dot16_sdot(int8x16_t a, int8x16_t b) {
    return vdotq_s32(vdupq_n_s32(0), a, b);
}

// ---- Q4_K / Q5_K scales ------------------------------------------------------------------------

/// The eight 6-bit scales of a Q4_K / Q5_K block as int32 (sub-blocks 0...3 in *sc_lo, 4...7 in
/// *sc_hi), and the eight mins as int16. Bytes as ggml's get_scale_min_k4, four at a time: scales
/// and mins of sub-blocks 0...3 are the low 6 bits of bytes 0...3 and 4...7; those of 4...7 take
/// their low 4 bits from the nibbles of bytes 8...11 and their top 2 bits from the tops of bytes
/// 0...3 (scales) and 4...7 (mins).
static inline void cq_k4_scales_neon(const uint8_t scales[12], int32x4_t *sc_lo, int32x4_t *sc_hi, int16x8_t *mins) {
    uint32_t u[3];
    memcpy(u, scales, 12);
    const uint32_t sc03 = u[0] & 0x3f3f3f3fu, m03 = u[1] & 0x3f3f3f3fu;
    const uint32_t sc47 = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u);
    const uint32_t m47 = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u);
    const uint16x8_t sc = vmovl_u8(vcreate_u8((uint64_t)sc03 | ((uint64_t)sc47 << 32)));
    *sc_lo = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(sc)));
    *sc_hi = vreinterpretq_s32_u32(vmovl_high_u16(sc));
    *mins = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8((uint64_t)m03 | ((uint64_t)m47 << 32))));
}

/// sum over sub-blocks j of mins[j] * (the activation sum over sub-block j's 32 elements).
static inline int32_t cq_k4_min_sum_neon(int16x8_t mins, const int16_t bsums[16]) {
    // pairs of 16-element sums: at most 32 * 128 in magnitude, exact in int16
    const int16x8_t s = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
    return vaddvq_s32(vmlal_high_s16(vmull_s16(vget_low_s16(s), vget_low_s16(mins)), s, mins));
}

/// sum_j sc[j] * p[j] over the eight sub-blocks' partial sums p[j].
static inline int32_t cq_k4_scaled_sum(const int32x4_t p[8], int32x4_t sc_lo, int32x4_t sc_hi) {
    const int32x4_t lo = cq_hsum4_s32(p[0], p[1], p[2], p[3]), hi = cq_hsum4_s32(p[4], p[5], p[6], p[7]);
    return vaddvq_s32(vmlaq_s32(vmulq_s32(lo, sc_lo), hi, sc_hi));
}

// ---- Q4_K --------------------------------------------------------------------------------------
// Chunk k (0...3) of 32 bytes holds sub-block 2k in its low nibbles and 2k + 1 in its high ones.

#define CQ_Q4_K_BODY(DOT32)                                                                                     \
    const cq_block_q4_K *x = vx;                                                                                \
    const cq_block_q8_K *y = vy;                                                                                \
    const uint8x16_t m4 = vdupq_n_u8(0x0f);                                                                     \
    float sum = 0.0f;                                                                                           \
    for (int64_t i = 0; i < n / CQ_QK_K; i++) {                                                                 \
        int32x4_t sc_lo, sc_hi;                                                                                 \
        int16x8_t mins;                                                                                         \
        cq_k4_scales_neon(x[i].scales, &sc_lo, &sc_hi, &mins);                                                  \
        const int32_t msum = cq_k4_min_sum_neon(mins, y[i].bsums);                                              \
        const uint8_t *q = x[i].qs;                                                                             \
        const int8_t *a = y[i].qs;                                                                              \
        int32x4_t p[8];                                                                                         \
        CQ_UNROLL_SUBBLOCKS                                                                                     \
        for (int k = 0; k < 4; k++, q += 32, a += 64) {                                                         \
            const uint8x16_t b0 = vld1q_u8(q), b1 = vld1q_u8(q + 16);                                           \
            p[2 * k] = DOT32(vreinterpretq_s8_u8(vandq_u8(b0, m4)), vld1q_s8(a),                                \
                             vreinterpretq_s8_u8(vandq_u8(b1, m4)), vld1q_s8(a + 16));                          \
            p[2 * k + 1] = DOT32(vreinterpretq_s8_u8(vshrq_n_u8(b0, 4)), vld1q_s8(a + 32),                      \
                                 vreinterpretq_s8_u8(vshrq_n_u8(b1, 4)), vld1q_s8(a + 48));                     \
        }                                                                                                       \
        const int32_t sumi = cq_k4_scaled_sum(p, sc_lo, sc_hi);                                                 \
        const float dy = y[i].d;                                                                                \
        sum += cq_h2f(x[i].d) * dy * (float)sumi - cq_h2f(x[i].dmin) * dy * (float)msum;                        \
    }                                                                                                           \
    return sum;

float cq_vec_dot_q4_K_q8_K_neon(int64_t n, const void *vx, const void *vy) { CQ_Q4_K_BODY(cq_dot32_plain) }

CQ_DOTPROD float cq_vec_dot_q4_K_q8_K_neon_dotprod(int64_t n, const void *vx, const void *vy) {
    CQ_Q4_K_BODY(cq_dot32_sdot)
}

// ---- Q5_K --------------------------------------------------------------------------------------
// As Q4_K, with bit 2k of qh[l] on top of element 64k + l and bit 2k + 1 on top of 64k + 32 + l:
// the two qh vectors move down two bits per chunk.

#define CQ_Q5_K_BODY(DOT32)                                                                                     \
    const cq_block_q5_K *x = vx;                                                                                \
    const cq_block_q8_K *y = vy;                                                                                \
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m16 = vdupq_n_u8(0x10);                                             \
    float sum = 0.0f;                                                                                           \
    for (int64_t i = 0; i < n / CQ_QK_K; i++) {                                                                 \
        int32x4_t sc_lo, sc_hi;                                                                                 \
        int16x8_t mins;                                                                                         \
        cq_k4_scales_neon(x[i].scales, &sc_lo, &sc_hi, &mins);                                                  \
        const int32_t msum = cq_k4_min_sum_neon(mins, y[i].bsums);                                              \
        const uint8_t *q = x[i].qs;                                                                             \
        const int8_t *a = y[i].qs;                                                                              \
        uint8x16_t h0 = vld1q_u8(x[i].qh), h1 = vld1q_u8(x[i].qh + 16);                                         \
        int32x4_t p[8];                                                                                         \
        CQ_UNROLL_SUBBLOCKS                                                                                     \
        for (int k = 0; k < 4; k++, q += 32, a += 64) {                                                         \
            const uint8x16_t b0 = vld1q_u8(q), b1 = vld1q_u8(q + 16);                                           \
            const uint8x16_t l0 = vorrq_u8(vandq_u8(b0, m4), vandq_u8(vshlq_n_u8(h0, 4), m16));                 \
            const uint8x16_t l1 = vorrq_u8(vandq_u8(b1, m4), vandq_u8(vshlq_n_u8(h1, 4), m16));                 \
            const uint8x16_t u0 = vorrq_u8(vshrq_n_u8(b0, 4), vandq_u8(vshlq_n_u8(h0, 3), m16));                \
            const uint8x16_t u1 = vorrq_u8(vshrq_n_u8(b1, 4), vandq_u8(vshlq_n_u8(h1, 3), m16));                \
            h0 = vshrq_n_u8(h0, 2);                                                                             \
            h1 = vshrq_n_u8(h1, 2);                                                                             \
            p[2 * k] = DOT32(vreinterpretq_s8_u8(l0), vld1q_s8(a), vreinterpretq_s8_u8(l1), vld1q_s8(a + 16));  \
            p[2 * k + 1] = DOT32(vreinterpretq_s8_u8(u0), vld1q_s8(a + 32), vreinterpretq_s8_u8(u1),            \
                                 vld1q_s8(a + 48));                                                             \
        }                                                                                                       \
        const int32_t sumi = cq_k4_scaled_sum(p, sc_lo, sc_hi);                                                 \
        const float dy = y[i].d;                                                                                \
        sum += cq_h2f(x[i].d) * dy * (float)sumi - cq_h2f(x[i].dmin) * dy * (float)msum;                        \
    }                                                                                                           \
    return sum;

float cq_vec_dot_q5_K_q8_K_neon(int64_t n, const void *vx, const void *vy) { CQ_Q5_K_BODY(cq_dot32_plain) }

CQ_DOTPROD float cq_vec_dot_q5_K_q8_K_neon_dotprod(int64_t n, const void *vx, const void *vy) {
    CQ_Q5_K_BODY(cq_dot32_sdot)
}

// ---- Q6_K --------------------------------------------------------------------------------------
// Each half (128 elements) has 64 bytes of ql (L0...L3, 16 each) and 32 of qh (H0, H1). Its eight
// sub-blocks of 16, in element order:
//   L0, L1 low nibbles | qh bits 0-1;   L2, L3 low nibbles | qh bits 2-3;
//   L0, L1 high nibbles | qh bits 4-5;  L2, L3 high nibbles | qh bits 6-7  (L0, L2 with H0; L1, L3 with H1),
// minus 32. The 16 int8 scales are widened to int32 once per block.

/// Eight sub-blocks' quants of one half of a Q6_K block, minus 32, in element order.
static inline void cq_q6_K_half(const uint8_t *ql, const uint8_t *qh, int8x16_t q[8]) {
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m48 = vdupq_n_u8(0x30);
    const int8x16_t m32 = vdupq_n_s8(32);
    const uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 16), l2 = vld1q_u8(ql + 32), l3 = vld1q_u8(ql + 48);
    const uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
    const uint8x16_t u[8] = {
        vorrq_u8(vandq_u8(l0, m4), vandq_u8(vshlq_n_u8(h0, 4), m48)), // bits 0-1 -> 4-5
        vorrq_u8(vandq_u8(l1, m4), vandq_u8(vshlq_n_u8(h1, 4), m48)),
        vorrq_u8(vandq_u8(l2, m4), vandq_u8(vshlq_n_u8(h0, 2), m48)), // bits 2-3 -> 4-5
        vorrq_u8(vandq_u8(l3, m4), vandq_u8(vshlq_n_u8(h1, 2), m48)),
        vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(h0, m48)),               // bits 4-5 in place
        vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(h1, m48)),
        vorrq_u8(vshrq_n_u8(l2, 4), vandq_u8(vshrq_n_u8(h0, 2), m48)), // bits 6-7 -> 4-5
        vorrq_u8(vshrq_n_u8(l3, 4), vandq_u8(vshrq_n_u8(h1, 2), m48)),
    };
    CQ_UNROLL_SUBBLOCKS
    for (int s = 0; s < 8; s++) q[s] = vsubq_s8(vreinterpretq_s8_u8(u[s]), m32);
}

#define CQ_Q6_K_BODY(DOT16)                                                                                     \
    const cq_block_q6_K *x = vx;                                                                                \
    const cq_block_q8_K *y = vy;                                                                                \
    float sum = 0.0f;                                                                                           \
    for (int64_t i = 0; i < n / CQ_QK_K; i++) {                                                                 \
        const int8x16_t sc8 = vld1q_s8(x[i].scales);                                                            \
        const int16x8_t sc16l = vmovl_s8(vget_low_s8(sc8)), sc16h = vmovl_high_s8(sc8);                         \
        const int32x4_t sc[4] = {vmovl_s16(vget_low_s16(sc16l)), vmovl_high_s16(sc16l),                         \
                                 vmovl_s16(vget_low_s16(sc16h)), vmovl_high_s16(sc16h)};                        \
        int32x4_t acc = vdupq_n_s32(0);                                                                         \
        CQ_UNROLL_SUBBLOCKS                                                                                     \
        for (int h = 0; h < 2; h++) {                                                                           \
            int8x16_t q[8];                                                                                     \
            cq_q6_K_half(x[i].ql + 64 * h, x[i].qh + 32 * h, q);                                                \
            const int8_t *a = y[i].qs + 128 * h;                                                                \
            int32x4_t p[8];                                                                                     \
            CQ_UNROLL_SUBBLOCKS                                                                                 \
            for (int s = 0; s < 8; s++) p[s] = DOT16(q[s], vld1q_s8(a + 16 * s));                               \
            acc = vmlaq_s32(acc, cq_hsum4_s32(p[0], p[1], p[2], p[3]), sc[2 * h]);                              \
            acc = vmlaq_s32(acc, cq_hsum4_s32(p[4], p[5], p[6], p[7]), sc[2 * h + 1]);                          \
        }                                                                                                       \
        sum += cq_h2f(x[i].d) * y[i].d * (float)vaddvq_s32(acc);                                                \
    }                                                                                                           \
    return sum;

float cq_vec_dot_q6_K_q8_K_neon(int64_t n, const void *vx, const void *vy) { CQ_Q6_K_BODY(cq_dot16_plain) }

CQ_DOTPROD float cq_vec_dot_q6_K_q8_K_neon_dotprod(int64_t n, const void *vx, const void *vy) {
    CQ_Q6_K_BODY(cq_dot16_sdot)
}

// ---- Q8_K quantization -------------------------------------------------------------------------
// The same bytes as cq_quantize_row_q8_K: the sign of the first element of the largest magnitude,
// iscale = -127 / max, FCVTNS (round to nearest, ties to even: what the reference's 12582912 trick
// gives for every |v| < 2^22, and so for every v here), the clamp at 127, bsums, d = 1 / iscale.
// Blocks the trick treats otherwise (NaNs, whose payload it turns into a quant; a |max| so small
// that iscale overflows) go to the reference.

void cq_quantize_row_q8_K_neon(const float *x, void *dst, int64_t n) {
    cq_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / CQ_QK_K; i++, x += CQ_QK_K) {
        float32x4_t am = vdupq_n_f32(0.0f);
        uint32x4_t ordered = vdupq_n_u32(~0u);
        for (int k = 0; k < CQ_QK_K; k += 4) {
            const float32x4_t v = vld1q_f32(x + k);
            am = vmaxnmq_f32(am, vabsq_f32(v)); // NaNs skipped, as by the reference's strict >
            ordered = vandq_u32(ordered, vceqq_f32(v, v));
        }
        if (vminvq_u32(ordered) == 0) {
            cq_quantize_row_q8_K(x, &y[i], CQ_QK_K);
            continue;
        }
        const float amax = vmaxnmvq_f32(am);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = amax; // the reference keeps the first element of that magnitude (a strict >)
        const float32x4_t va = vdupq_n_f32(amax);
        for (int k = 0; k < CQ_QK_K; k += 4) {
            if (vmaxvq_u32(vceqq_f32(vabsq_f32(vld1q_f32(x + k)), va)) != 0) {
                int l = 0;
                while (fabsf(x[k + l]) != amax) l++;
                max = x[k + l];
                break;
            }
        }
        const float iscale = -127.0f / max;
        if (isinf(iscale)) { // |max| below 127 / FLT_MAX
            cq_quantize_row_q8_K(x, &y[i], CQ_QK_K);
            continue;
        }
        const int32x4_t lim = vdupq_n_s32(127);
        for (int g = 0; g < CQ_QK_K / 16; g++) {
            int32x4_t v[4];
            for (int k = 0; k < 4; k++) v[k] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 16 * g + 4 * k), iscale)), lim);
            const int16x8_t a = vcombine_s16(vqmovn_s32(v[0]), vqmovn_s32(v[1]));
            const int16x8_t b = vcombine_s16(vqmovn_s32(v[2]), vqmovn_s32(v[3]));
            const int8x16_t q = vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)); // within -127...127
            vst1q_s8(y[i].qs + 16 * g, q);
            y[i].bsums[g] = vaddlvq_s8(q);
        }
        y[i].d = 1.0f / iscale;
    }
}

#endif // CQ_HAVE_NEON_VARIANTS
