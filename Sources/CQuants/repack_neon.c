// aarch64 NEON + SDOT kernel for the repacked Q4_1 and Q8_0 layouts (cquants.h, "Repacked
// weights"). A 32-byte chunk of a repacked block holds four bytes of each of the eight rows: two
// 16-byte registers, rows 0-3 and rows 4-7. SDOT by lane (vdotq_laneq_s32) multiplies each row's
// four bytes by four activation bytes taken from one 32-bit lane of a 16-byte activation load and
// adds them into that row's int32 lane, so eight rows' block sums take no horizontal sums.
//   Q4_1: nibbles are 0...15, so the signed SDOT is exact as it is; low nibbles of chunk c pair
//         with activation elements 4c...4c+3 (lane c of qs[0..15]), high nibbles with 16+4c...
//         (lane c of qs[16..31]).
//   Q8_0: signed x signed, no sign trick needed (SDOT sums -128 * -128 exactly too).
// The float part runs on four rows per vector: d_w (vcvt_f32_f16, exact) times d_x (one FMUL,
// rounded to float), then one fused multiply-add by the exact block sum converted to float, and for
// Q4_1 a fused m_w * s_x into a second accumulator, block after block; y = acc + macc. Those are
// the steps of cq_matmul_repacked_scalar per (row, token), so the results are equal bit for bit,
// and equal whether a token is evaluated alone or in a batch of any size.
// Runs only after dispatch.c has seen HWCAP_ASIMDDP (the neon-dotprod path).
#include "quants_impl.h"

#if defined(CQ_HAVE_NEON_VARIANTS)

#include <arm_neon.h>

#if defined(__clang__)
#define CQ_DOTPROD __attribute__((target("dotprod")))
#else
#define CQ_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

#if defined(__clang__)
#define CQ_UNROLL _Pragma("unroll")
#else
#define CQ_UNROLL _Pragma("GCC unroll 4")
#endif

/// Four f16 at p (any alignment) as floats (exact).
static inline float32x4_t cq_load_f16x4(const uint8_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
}

/// The two f16 at p (a Q8_1 block's d and s) as floats: lanes [d, s, d, s].
static inline float32x4_t cq_load_f16x2(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return vcvt_f32_f16(vreinterpret_f16_u32(vdup_n_u32(v)));
}

/// Eight rows (one group) x T tokens of Q4_1 x Q8_1. Token t's activation row starts at
/// x + t * x_stride; row r of token t goes to y[t * y_stride + r]. With one token, the low and high
/// nibbles sum into separate int32 accumulators (four independent SDOT chains per block); with
/// more, the tokens give the independence and the registers are needed for them.
static inline __attribute__((always_inline)) CQ_DOTPROD void
cq_rtile_q4_1_sdot(const int T, int64_t nb, const uint8_t *g, const char *x, size_t x_stride, float *y,
                   size_t y_stride) {
    enum { H = 1 }; // index of the high-nibble accumulator when split
    const int split = T == 1;
    float32x4_t acc[4][2], macc[4][2];
    CQ_UNROLL for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = macc[t][0] = macc[t][1] = vdupq_n_f32(0.0f);
    const uint8x16_t low = vdupq_n_u8(0x0f);
    for (int64_t b = 0; b < nb; b++, g += 160) {
        int8x16_t xl[4], xh[4];
        int32x4_t s[4][2][2]; // [token][rows 0-3, 4-7][low nibbles, high nibbles when split]
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const int8_t *xq = ((const cq_block_q8_1 *)(x + (size_t)t * x_stride) + b)->qs;
            xl[t] = vld1q_s8(xq);
            xh[t] = vld1q_s8(xq + 16);
            s[t][0][0] = s[t][0][H] = s[t][1][0] = s[t][1][H] = vdupq_n_s32(0);
        }
#define CQ_Q4_1_CHUNK(c)                                                                                           \
        do {                                                                                                       \
            const uint8x16_t q0 = vld1q_u8(g + 32 + 32 * (c)), q1 = vld1q_u8(g + 48 + 32 * (c));                   \
            const int8x16_t l0 = vreinterpretq_s8_u8(vandq_u8(q0, low)), h0 = vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)); \
            const int8x16_t l1 = vreinterpretq_s8_u8(vandq_u8(q1, low)), h1 = vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)); \
            CQ_UNROLL for (int t = 0; t < T; t++) {                                                                \
                s[t][0][0] = vdotq_laneq_s32(s[t][0][0], l0, xl[t], (c));                                          \
                s[t][1][0] = vdotq_laneq_s32(s[t][1][0], l1, xl[t], (c));                                          \
                s[t][0][split] = vdotq_laneq_s32(s[t][0][split], h0, xh[t], (c));                                  \
                s[t][1][split] = vdotq_laneq_s32(s[t][1][split], h1, xh[t], (c));                                  \
            }                                                                                                      \
        } while (0)
        CQ_Q4_1_CHUNK(0);
        CQ_Q4_1_CHUNK(1);
        CQ_Q4_1_CHUNK(2);
        CQ_Q4_1_CHUNK(3);
#undef CQ_Q4_1_CHUNK
        const float32x4_t dw0 = cq_load_f16x4(g), dw1 = cq_load_f16x4(g + 8);
        const float32x4_t mw0 = cq_load_f16x4(g + 16), mw1 = cq_load_f16x4(g + 24);
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const float32x4_t ds = cq_load_f16x2((const cq_block_q8_1 *)(x + (size_t)t * x_stride) + b); // [d, s, ..]
            int32x4_t s0 = s[t][0][0], s1 = s[t][1][0];
            if (split) s0 = vaddq_s32(s0, s[t][0][H]), s1 = vaddq_s32(s1, s[t][1][H]);
            acc[t][0] = vfmaq_f32(acc[t][0], vmulq_laneq_f32(dw0, ds, 0), vcvtq_f32_s32(s0));
            acc[t][1] = vfmaq_f32(acc[t][1], vmulq_laneq_f32(dw1, ds, 0), vcvtq_f32_s32(s1));
            macc[t][0] = vfmaq_laneq_f32(macc[t][0], mw0, ds, 1);
            macc[t][1] = vfmaq_laneq_f32(macc[t][1], mw1, ds, 1);
        }
    }
    CQ_UNROLL for (int t = 0; t < T; t++) {
        vst1q_f32(y + (size_t)t * y_stride, vaddq_f32(acc[t][0], macc[t][0]));
        vst1q_f32(y + (size_t)t * y_stride + 4, vaddq_f32(acc[t][1], macc[t][1]));
    }
}

/// Eight rows x T tokens of Q8_0 x Q8_0 (same conventions). Chunks 0-3 pair with lanes of the
/// activation's qs[0..15], chunks 4-7 with qs[16..31]; with one token, even and odd chunks sum
/// into separate accumulators.
static inline __attribute__((always_inline)) CQ_DOTPROD void
cq_rtile_q8_0_sdot(const int T, int64_t nb, const uint8_t *g, const char *x, size_t x_stride, float *y,
                   size_t y_stride) {
    enum { H = 1 };
    const int split = T == 1;
    float32x4_t acc[4][2];
    CQ_UNROLL for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++, g += 272) {
        int8x16_t xl[4], xh[4];
        int32x4_t s[4][2][2]; // [token][rows 0-3, 4-7][even chunks, odd chunks when split]
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const int8_t *xq = ((const cq_block_q8_0 *)(x + (size_t)t * x_stride) + b)->qs;
            xl[t] = vld1q_s8(xq);
            xh[t] = vld1q_s8(xq + 16);
            s[t][0][0] = s[t][0][H] = s[t][1][0] = s[t][1][H] = vdupq_n_s32(0);
        }
#define CQ_Q8_0_CHUNK(c, xv, k)                                                                                    \
        do {                                                                                                       \
            const int8x16_t q0 = vld1q_s8((const int8_t *)g + 16 + 32 * (c));                                      \
            const int8x16_t q1 = vld1q_s8((const int8_t *)g + 32 + 32 * (c));                                      \
            CQ_UNROLL for (int t = 0; t < T; t++) {                                                                \
                s[t][0][k] = vdotq_laneq_s32(s[t][0][k], q0, xv[t], (c) & 3);                                      \
                s[t][1][k] = vdotq_laneq_s32(s[t][1][k], q1, xv[t], (c) & 3);                                      \
            }                                                                                                      \
        } while (0)
        CQ_Q8_0_CHUNK(0, xl, 0);
        CQ_Q8_0_CHUNK(1, xl, split);
        CQ_Q8_0_CHUNK(2, xl, 0);
        CQ_Q8_0_CHUNK(3, xl, split);
        CQ_Q8_0_CHUNK(4, xh, 0);
        CQ_Q8_0_CHUNK(5, xh, split);
        CQ_Q8_0_CHUNK(6, xh, 0);
        CQ_Q8_0_CHUNK(7, xh, split);
#undef CQ_Q8_0_CHUNK
        const float32x4_t dw0 = cq_load_f16x4(g), dw1 = cq_load_f16x4(g + 8);
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const float32x4_t d = cq_load_f16x2((const cq_block_q8_0 *)(x + (size_t)t * x_stride) + b); // lane 0: d
            int32x4_t s0 = s[t][0][0], s1 = s[t][1][0];
            if (split) s0 = vaddq_s32(s0, s[t][0][H]), s1 = vaddq_s32(s1, s[t][1][H]);
            acc[t][0] = vfmaq_f32(acc[t][0], vmulq_laneq_f32(dw0, d, 0), vcvtq_f32_s32(s0));
            acc[t][1] = vfmaq_f32(acc[t][1], vmulq_laneq_f32(dw1, d, 0), vcvtq_f32_s32(s1));
        }
    }
    CQ_UNROLL for (int t = 0; t < T; t++) {
        vst1q_f32(y + (size_t)t * y_stride, acc[t][0]);
        vst1q_f32(y + (size_t)t * y_stride + 4, acc[t][1]);
    }
}

typedef void (*cq_rtile_sdot_fn)(int64_t nb, const uint8_t *g, const char *x, size_t x_stride, float *y,
                                 size_t y_stride);

#define CQ_RTILE_SDOT_VARIANT(kind, T)                                                                            \
    static CQ_DOTPROD void cq_rtile_##kind##_sdot_##T(int64_t nb, const uint8_t *g, const char *x, size_t x_stride, \
                                                      float *y, size_t y_stride) {                                 \
        cq_rtile_##kind##_sdot(T, nb, g, x, x_stride, y, y_stride);                                                \
    }
CQ_RTILE_SDOT_VARIANT(q4_1, 1)
CQ_RTILE_SDOT_VARIANT(q4_1, 4)
CQ_RTILE_SDOT_VARIANT(q8_0, 1)
CQ_RTILE_SDOT_VARIANT(q8_0, 4)

/// Groups of rows walked per pass over the token groups, so the rows stay in L1/L2 meanwhile.
enum { CQ_RTILE_SDOT_GROUPS_CHUNK = 2 };

CQ_DOTPROD int cq_matmul_repacked_neon_dotprod(int type, const void *w, const void *x, size_t x_stride, float *y,
                                               size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end,
                                               int64_t tokens) {
    cq_rtile_sdot_fn single, quad;
    size_t block;
    switch (type) {
    case CQ_TYPE_Q4_1: single = cq_rtile_q4_1_sdot_1, quad = cq_rtile_q4_1_sdot_4, block = 160; break;
    case CQ_TYPE_Q8_0: single = cq_rtile_q8_0_sdot_1, quad = cq_rtile_q8_0_sdot_4, block = 272; break;
    default: return -1;
    }
    if (n <= 0 || n % CQ_QK != 0 || row_begin < 0 || row_begin > row_end || row_begin % CQ_REPACK_ROWS != 0 ||
        row_end % CQ_REPACK_ROWS != 0)
        return -1;
    if (row_begin == row_end || tokens <= 0) return 0;
    const int64_t nb = n / CQ_QK;
    const size_t group_bytes = (size_t)nb * block;
    const int64_t quads = tokens / 4, groups = quads + tokens % 4;
    const int64_t g_begin = row_begin / CQ_REPACK_ROWS, g_end = row_end / CQ_REPACK_ROWS;
    for (int64_t g0 = g_begin; g0 < g_end; g0 += CQ_RTILE_SDOT_GROUPS_CHUNK) {
        const int64_t g1 = g0 + CQ_RTILE_SDOT_GROUPS_CHUNK < g_end ? g0 + CQ_RTILE_SDOT_GROUPS_CHUNK : g_end;
        for (int64_t q = 0; q < groups; q++) {
            const int64_t first = q < quads ? q * 4 : quads * 4 + (q - quads);
            const cq_rtile_sdot_fn tile = q < quads ? quad : single;
            const char *xq = (const char *)x + (size_t)first * x_stride;
            for (int64_t g = g0; g < g1; g++) {
                tile(nb, (const uint8_t *)w + (size_t)g * group_bytes, xq, x_stride,
                     y + (size_t)first * y_stride + (size_t)g * CQ_REPACK_ROWS, y_stride);
            }
        }
    }
    return 0;
}

#endif // CQ_HAVE_NEON_VARIANTS
