// aarch64 NEON + SDOT kernel for the repacked Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K and Q6_K layouts
// (cquants.h, "Repacked weights"). A 32-byte chunk of a repacked block holds four bytes of each of
// the eight rows: two 16-byte registers, rows 0-3 and rows 4-7. SDOT by lane (vdotq_laneq_s32)
// multiplies each row's four bytes by four activation bytes taken from one 32-bit lane of a 16-byte
// activation load and adds them into that row's int32 lane, so eight rows' block sums take no
// horizontal sums.
//   Q4_1: nibbles are 0...15, so the signed SDOT is exact as it is; low nibbles of chunk c pair
//         with activation elements 4c...4c+3 (lane c of qs[0..15]), high nibbles with 16+4c...
//         (lane c of qs[16..31]).
//   Q4_0: the nibbles' top bits flipped, so shifts make int8 16 * (q - 8) (see cq_rtile_q4_0_sdot).
//   Q5_0 / Q5_1: two quants per byte, the second's top bits inserted by SRI (see cq_rtile_q5_sdot).
//   Q8_0: signed x signed, no sign trick needed (SDOT sums -128 * -128 exactly too).
//   Q4_K: nibbles as Q4_1, one sub-block at a time (see cq_rtile_q4_K_sdot).
//   Q6_K: q - 32 as int8, one 16-element sub-block at a time (see cq_rtile_q6_K_sdot).
// The float part runs on four rows per vector: d_w (vcvt_f32_f16, exact) times d_x (one FMUL,
// rounded to float), then one fused multiply-add by the exact block sum converted to float, and for
// Q4_1 and Q5_1 a fused m_w * s_x into a second accumulator, block after block; y = acc + macc
// (Q4_0, Q5_0 and Q8_0: y = acc). Those are the steps of cq_matmul_repacked_scalar per (row,
// token), so the results are equal bit for bit, and equal whether a token is evaluated alone or in
// a batch.
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

/// Zeroes a tile's accumulators: T tokens x R halves.
static inline __attribute__((always_inline)) void cq_rtile_zero(const int T, const int R, float32x4_t acc[4][2]) {
    CQ_UNROLL for (int t = 0; t < T; t++) {
        CQ_UNROLL for (int h = 0; h < R; h++) acc[t][h] = vdupq_n_f32(0.0f);
    }
}

/// Stores a tile's sums: acc[t][h] to token t's rows 4 * (half0 + h) ... + 3.
static inline __attribute__((always_inline)) void cq_rtile_store(const int T, const int R, const int half0,
                                                                 float32x4_t acc[4][2], float *y, size_t y_stride) {
    CQ_UNROLL for (int t = 0; t < T; t++) {
        CQ_UNROLL for (int h = 0; h < R; h++) vst1q_f32(y + (size_t)t * y_stride + 4 * (half0 + h), acc[t][h]);
    }
}

// A tile is R halves of a group (R = 2: rows 0-7; R = 1: rows 4 * half0 ... 4 * half0 + 3) x T
// tokens. Token t's activation row starts at x + t * x_stride; row r of the group for token t goes
// to y[t * y_stride + r]. Decode (T = 1) takes both halves in one pass over the block stream and
// splits each row's block sum over two int32 accumulators, for four independent SDOT chains. Four
// tokens take one half per pass (the other half's bytes are then in cache), so the accumulators of
// four tokens, their activations and the sums fit the 32 registers without spilling.

/// Q4_0 x Q8_0. With v = q ^ 0x88 (each nibble's top bit flipped), v << 4 is the int8
/// 16 * (low nibble - 8) and v & 0xf0 the int8 16 * (high nibble - 8), so SDOT sums 16 times the
/// exact block sum, and the conversion with four fraction bits (vcvtq_n_f32_s32) gives the sum
/// itself as a float, exactly (|sum| <= 32768).
static inline __attribute__((always_inline)) CQ_DOTPROD void
cq_rtile_q4_0_sdot(const int T, const int R, const int half0, int64_t nb, const uint8_t *g, const char *x,
                   size_t x_stride, float *y, size_t y_stride) {
    const int split = T == 1; // index of the high nibbles' accumulator
    float32x4_t acc[4][2];
    cq_rtile_zero(T, R, acc);
    const uint8x16_t flip = vdupq_n_u8(0x88), high = vdupq_n_u8(0xf0);
    for (int64_t b = 0; b < nb; b++, g += 144) {
        int8x16_t xl[4], xh[4];
        int32x4_t s[4][2][2]; // [token][half][low nibbles, high nibbles when split]
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const int8_t *xq = ((const cq_block_q8_0 *)(x + (size_t)t * x_stride) + b)->qs;
            xl[t] = vld1q_s8(xq);
            xh[t] = vld1q_s8(xq + 16);
            CQ_UNROLL for (int h = 0; h < R; h++) s[t][h][0] = s[t][h][1] = vdupq_n_s32(0);
        }
#define CQ_Q4_0_CHUNK(c)                                                                                           \
        CQ_UNROLL for (int h = 0; h < R; h++) {                                                                    \
            const uint8x16_t v = veorq_u8(vld1q_u8(g + 16 + 32 * (c) + 16 * (half0 + h)), flip);                   \
            const int8x16_t l = vreinterpretq_s8_u8(vshlq_n_u8(v, 4)), u = vreinterpretq_s8_u8(vandq_u8(v, high)); \
            CQ_UNROLL for (int t = 0; t < T; t++) {                                                                \
                s[t][h][0] = vdotq_laneq_s32(s[t][h][0], l, xl[t], (c));                                           \
                s[t][h][split] = vdotq_laneq_s32(s[t][h][split], u, xh[t], (c));                                   \
            }                                                                                                      \
        }
        CQ_Q4_0_CHUNK(0)
        CQ_Q4_0_CHUNK(1)
        CQ_Q4_0_CHUNK(2)
        CQ_Q4_0_CHUNK(3)
#undef CQ_Q4_0_CHUNK
        CQ_UNROLL for (int h = 0; h < R; h++) {
            const float32x4_t dw = cq_load_f16x4(g + 8 * (half0 + h));
            CQ_UNROLL for (int t = 0; t < T; t++) {
                const float32x4_t d = cq_load_f16x2((const cq_block_q8_0 *)(x + (size_t)t * x_stride) + b); // lane 0: d
                const int32x4_t sum16 = split ? vaddq_s32(s[t][h][0], s[t][h][1]) : s[t][h][0];
                acc[t][h] = vfmaq_f32(acc[t][h], vmulq_laneq_f32(dw, d, 0), vcvtq_n_f32_s32(sum16, 4));
            }
        }
    }
    cq_rtile_store(T, R, half0, acc, y, y_stride);
}

/// Q4_1 x Q8_1.
static inline __attribute__((always_inline)) CQ_DOTPROD void
cq_rtile_q4_1_sdot(const int T, const int R, const int half0, int64_t nb, const uint8_t *g, const char *x,
                   size_t x_stride, float *y, size_t y_stride) {
    const int split = T == 1; // index of the high nibbles' accumulator
    float32x4_t acc[4][2], macc[4][2];
    cq_rtile_zero(T, R, acc);
    cq_rtile_zero(T, R, macc);
    const uint8x16_t low = vdupq_n_u8(0x0f);
    for (int64_t b = 0; b < nb; b++, g += 160) {
        int8x16_t xl[4], xh[4];
        int32x4_t s[4][2][2]; // [token][half][low nibbles, high nibbles when split]
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const int8_t *xq = ((const cq_block_q8_1 *)(x + (size_t)t * x_stride) + b)->qs;
            xl[t] = vld1q_s8(xq);
            xh[t] = vld1q_s8(xq + 16);
            CQ_UNROLL for (int h = 0; h < R; h++) s[t][h][0] = s[t][h][1] = vdupq_n_s32(0);
        }
#define CQ_Q4_1_CHUNK(c)                                                                                           \
        CQ_UNROLL for (int h = 0; h < R; h++) {                                                                    \
            const uint8x16_t q = vld1q_u8(g + 32 + 32 * (c) + 16 * (half0 + h));                                   \
            const int8x16_t l = vreinterpretq_s8_u8(vandq_u8(q, low)), u = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));   \
            CQ_UNROLL for (int t = 0; t < T; t++) {                                                                \
                s[t][h][0] = vdotq_laneq_s32(s[t][h][0], l, xl[t], (c));                                           \
                s[t][h][split] = vdotq_laneq_s32(s[t][h][split], u, xh[t], (c));                                   \
            }                                                                                                      \
        }
        CQ_Q4_1_CHUNK(0)
        CQ_Q4_1_CHUNK(1)
        CQ_Q4_1_CHUNK(2)
        CQ_Q4_1_CHUNK(3)
#undef CQ_Q4_1_CHUNK
        CQ_UNROLL for (int h = 0; h < R; h++) {
            const float32x4_t dw = cq_load_f16x4(g + 8 * (half0 + h)), mw = cq_load_f16x4(g + 16 + 8 * (half0 + h));
            CQ_UNROLL for (int t = 0; t < T; t++) {
                const float32x4_t ds = cq_load_f16x2((const cq_block_q8_1 *)(x + (size_t)t * x_stride) + b); // [d s d s]
                const int32x4_t sum = split ? vaddq_s32(s[t][h][0], s[t][h][1]) : s[t][h][0];
                acc[t][h] = vfmaq_f32(acc[t][h], vmulq_laneq_f32(dw, ds, 0), vcvtq_f32_s32(sum));
                macc[t][h] = vfmaq_laneq_f32(macc[t][h], mw, ds, 1);
            }
        }
    }
    CQ_UNROLL for (int t = 0; t < T; t++) {
        CQ_UNROLL for (int h = 0; h < R; h++) {
            vst1q_f32(y + (size_t)t * y_stride + 4 * (half0 + h), vaddq_f32(acc[t][h], macc[t][h]));
        }
    }
}

/// Q5_0 x Q8_0 (M = 0) or Q5_1 x Q8_1 (M = 1). Per chunk, the first quant of each byte is its low
/// five bits and the second its top three bits below two top bits from the block's top-bit bytes
/// (repack.c), which SRI puts together once those are shifted to bits 3-4. Q5_1 masks both to the
/// quants q (0...31); Q5_0 flips bit 4 of both (the first's by EOR, the second's once per block
/// in the top bits) and shifts them left by 3, which gives the int8 8 * (q - 16) (as Q4_0's
/// 16 * (q - 8)), and the conversion with three fraction bits gives the exact sum (|sum| <= 65536).
static inline __attribute__((always_inline)) CQ_DOTPROD void
cq_rtile_q5_sdot(const int T, const int R, const int half0, const int M, int64_t nb, const uint8_t *g, const char *x,
                 size_t x_stride, float *y, size_t y_stride) {
    const int split = T == 1; // index of the second quants' accumulator
    const size_t block = M ? 192 : 176, head = M ? 32 : 16; // top bits at head, chunks at head + 32
    const size_t xblock = M ? sizeof(cq_block_q8_1) : sizeof(cq_block_q8_0), xqs = M ? 4 : 2;
    float32x4_t acc[4][2], macc[4][2];
    cq_rtile_zero(T, R, acc);
    cq_rtile_zero(T, R, macc);
    const uint8x16_t quant = vdupq_n_u8(0x1f), flip = vdupq_n_u8(0x10), flip_top = vdupq_n_u8(0xaa);
    for (int64_t b = 0; b < nb; b++, g += block) {
        int8x16_t xl[4], xh[4];
        int32x4_t s[4][2][2]; // [token][half][first quants, second quants when split]
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const int8_t *xq = (const int8_t *)(x + (size_t)t * x_stride + (size_t)b * xblock + xqs);
            xl[t] = vld1q_s8(xq);
            xh[t] = vld1q_s8(xq + 16);
            CQ_UNROLL for (int h = 0; h < R; h++) s[t][h][0] = s[t][h][1] = vdupq_n_s32(0);
        }
        uint8x16_t top[2]; // Q5_0: the upper bit of each pair (bit 4 of a quant) flipped
        CQ_UNROLL for (int h = 0; h < R; h++) {
            const uint8x16_t v = vld1q_u8(g + head + 16 * (half0 + h));
            top[h] = M ? v : veorq_u8(v, flip_top);
        }
        // TOP(h): chunk c's two top bits (bits 2c, 2c + 1) moved to bits 3-4
#define CQ_Q5_CHUNK(c, TOP)                                                                                        \
        CQ_UNROLL for (int h = 0; h < R; h++) {                                                                    \
            const uint8x16_t q = vld1q_u8(g + head + 32 + 32 * (c) + 16 * (half0 + h));                            \
            const uint8x16_t lo = M ? q : veorq_u8(q, flip), hi = vsriq_n_u8(TOP(h), q, 5);                        \
            const int8x16_t l = vreinterpretq_s8_u8(M ? vandq_u8(lo, quant) : vshlq_n_u8(lo, 3));                  \
            const int8x16_t u = vreinterpretq_s8_u8(M ? vandq_u8(hi, quant) : vshlq_n_u8(hi, 3));                  \
            CQ_UNROLL for (int t = 0; t < T; t++) {                                                                \
                s[t][h][0] = vdotq_laneq_s32(s[t][h][0], l, xl[t], (c));                                           \
                s[t][h][split] = vdotq_laneq_s32(s[t][h][split], u, xh[t], (c));                                   \
            }                                                                                                      \
        }
#define CQ_Q5_TOP0(h) vshlq_n_u8(top[h], 3)
#define CQ_Q5_TOP1(h) vshlq_n_u8(top[h], 1)
#define CQ_Q5_TOP2(h) vshrq_n_u8(top[h], 1)
#define CQ_Q5_TOP3(h) vshrq_n_u8(top[h], 3)
        CQ_Q5_CHUNK(0, CQ_Q5_TOP0)
        CQ_Q5_CHUNK(1, CQ_Q5_TOP1)
        CQ_Q5_CHUNK(2, CQ_Q5_TOP2)
        CQ_Q5_CHUNK(3, CQ_Q5_TOP3)
#undef CQ_Q5_TOP0
#undef CQ_Q5_TOP1
#undef CQ_Q5_TOP2
#undef CQ_Q5_TOP3
#undef CQ_Q5_CHUNK
        CQ_UNROLL for (int h = 0; h < R; h++) {
            const float32x4_t dw = cq_load_f16x4(g + 8 * (half0 + h));
            const float32x4_t mw = M ? cq_load_f16x4(g + 16 + 8 * (half0 + h)) : vdupq_n_f32(0.0f);
            CQ_UNROLL for (int t = 0; t < T; t++) {
                const float32x4_t ds = cq_load_f16x2(x + (size_t)t * x_stride + (size_t)b * xblock); // lane 0: d (1: s)
                const int32x4_t sum = split ? vaddq_s32(s[t][h][0], s[t][h][1]) : s[t][h][0];
                const float32x4_t fsum = M ? vcvtq_f32_s32(sum) : vcvtq_n_f32_s32(sum, 3);
                acc[t][h] = vfmaq_f32(acc[t][h], vmulq_laneq_f32(dw, ds, 0), fsum);
                if (M) macc[t][h] = vfmaq_laneq_f32(macc[t][h], mw, ds, 1);
            }
        }
    }
    CQ_UNROLL for (int t = 0; t < T; t++) {
        CQ_UNROLL for (int h = 0; h < R; h++) {
            vst1q_f32(y + (size_t)t * y_stride + 4 * (half0 + h), M ? vaddq_f32(acc[t][h], macc[t][h]) : acc[t][h]);
        }
    }
}

/// The Q5 tile per type, for CQ_RTILE_SDOT_VARIANTS.
static inline __attribute__((always_inline)) CQ_DOTPROD void
cq_rtile_q5_0_sdot(const int T, const int R, const int half0, int64_t nb, const uint8_t *g, const char *x,
                   size_t x_stride, float *y, size_t y_stride) {
    cq_rtile_q5_sdot(T, R, half0, 0, nb, g, x, x_stride, y, y_stride);
}
static inline __attribute__((always_inline)) CQ_DOTPROD void
cq_rtile_q5_1_sdot(const int T, const int R, const int half0, int64_t nb, const uint8_t *g, const char *x,
                   size_t x_stride, float *y, size_t y_stride) {
    cq_rtile_q5_sdot(T, R, half0, 1, nb, g, x, x_stride, y, y_stride);
}

/// Q8_0 x Q8_0. Chunks 0-3 pair with lanes of the activation's qs[0..15], chunks 4-7 with
/// qs[16..31]; split: even and odd chunks sum into separate accumulators.
static inline __attribute__((always_inline)) CQ_DOTPROD void
cq_rtile_q8_0_sdot(const int T, const int R, const int half0, int64_t nb, const uint8_t *g, const char *x,
                   size_t x_stride, float *y, size_t y_stride) {
    const int split = T == 1;
    float32x4_t acc[4][2];
    cq_rtile_zero(T, R, acc);
    for (int64_t b = 0; b < nb; b++, g += 272) {
        int8x16_t xl[4], xh[4];
        int32x4_t s[4][2][2]; // [token][half][even chunks, odd chunks when split]
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const int8_t *xq = ((const cq_block_q8_0 *)(x + (size_t)t * x_stride) + b)->qs;
            xl[t] = vld1q_s8(xq);
            xh[t] = vld1q_s8(xq + 16);
            CQ_UNROLL for (int h = 0; h < R; h++) s[t][h][0] = s[t][h][1] = vdupq_n_s32(0);
        }
#define CQ_Q8_0_CHUNK(c, xv, k)                                                                                    \
        CQ_UNROLL for (int h = 0; h < R; h++) {                                                                    \
            const int8x16_t q = vld1q_s8((const int8_t *)g + 16 + 32 * (c) + 16 * (half0 + h));                    \
            CQ_UNROLL for (int t = 0; t < T; t++) s[t][h][k] = vdotq_laneq_s32(s[t][h][k], q, xv[t], (c) & 3);    \
        }
        CQ_Q8_0_CHUNK(0, xl, 0)
        CQ_Q8_0_CHUNK(1, xl, split)
        CQ_Q8_0_CHUNK(2, xl, 0)
        CQ_Q8_0_CHUNK(3, xl, split)
        CQ_Q8_0_CHUNK(4, xh, 0)
        CQ_Q8_0_CHUNK(5, xh, split)
        CQ_Q8_0_CHUNK(6, xh, 0)
        CQ_Q8_0_CHUNK(7, xh, split)
#undef CQ_Q8_0_CHUNK
        CQ_UNROLL for (int h = 0; h < R; h++) {
            const float32x4_t dw = cq_load_f16x4(g + 8 * (half0 + h));
            CQ_UNROLL for (int t = 0; t < T; t++) {
                const float32x4_t d = cq_load_f16x2((const cq_block_q8_0 *)(x + (size_t)t * x_stride) + b); // lane 0: d
                const int32x4_t sum = split ? vaddq_s32(s[t][h][0], s[t][h][1]) : s[t][h][0];
                acc[t][h] = vfmaq_f32(acc[t][h], vmulq_laneq_f32(dw, d, 0), vcvtq_f32_s32(sum));
            }
        }
    }
    cq_rtile_store(T, R, half0, acc, y, y_stride);
}

/// The scales (sc) or mins (m) of the four rows of half `hh` of a repacked Q4_K block `g`: byte
/// 4 * j + i of the result for sub-blocks j = 4 * upper ... + 3 (see cq_k4r_index in repack.c).
static inline uint8x16_t cq_k4r_bytes(const uint8_t *g, int hh, int upper, int mins) {
    const uint8x16_t l = vld1q_u8(g + 32 + 32 * upper + 16 * hh), h = vld1q_u8(g + 96 + 16 * hh);
    const uint8x16_t top = vdupq_n_u8(0x30);
    if (!mins) return vorrq_u8(vandq_u8(l, vdupq_n_u8(0x0f)), vandq_u8(upper ? h : vshlq_n_u8(h, 4), top));
    return vorrq_u8(vshrq_n_u8(l, 4), vandq_u8(upper ? vshrq_n_u8(h, 2) : vshlq_n_u8(h, 2), top));
}

/// Q4_K x Q8_K. Sub-block j's sums per row come from eight SDOTs (chunks 8 * (j / 2) ... + 7, low
/// nibbles for even j, high for odd, against lanes of the activation's 32 quants of the sub-block),
/// then times the rows' scales (MLA) into the block sum; the min sum by eight MLALs of the rows'
/// mins by the activation's sub-block sums (pairs of bsums), negated. Both exact in int32.
static inline __attribute__((always_inline)) CQ_DOTPROD void
cq_rtile_q4_K_sdot(const int T, const int R, const int half0, int64_t nb, const uint8_t *g, const char *x,
                   size_t x_stride, float *y, size_t y_stride) {
    const int split = T == 1; // index of the odd chunks' accumulator
    float32x4_t acc[4][2];
    cq_rtile_zero(T, R, acc);
    const uint8x16_t low = vdupq_n_u8(0x0f);
    for (int64_t b = 0; b < nb; b++, g += 1152) {
        int32x4_t scw[2][8]; // [half][sub-block]: the four rows' scales
        CQ_UNROLL for (int h = 0; h < R; h++) {
            CQ_UNROLL for (int u = 0; u < 2; u++) {
                const uint8x16_t sc = cq_k4r_bytes(g, half0 + h, u, 0);
                const uint16x8_t w0 = vmovl_u8(vget_low_u8(sc)), w1 = vmovl_high_u8(sc);
                scw[h][4 * u + 0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(w0)));
                scw[h][4 * u + 1] = vreinterpretq_s32_u32(vmovl_high_u16(w0));
                scw[h][4 * u + 2] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(w1)));
                scw[h][4 * u + 3] = vreinterpretq_s32_u32(vmovl_high_u16(w1));
            }
        }
        int32x4_t sumi[4][2];
        CQ_UNROLL for (int t = 0; t < T; t++) {
            CQ_UNROLL for (int h = 0; h < R; h++) sumi[t][h] = vdupq_n_s32(0);
        }
        for (int k = 0; k < 4; k++) {
            const uint8_t *qk = g + 128 + 256 * k;
            CQ_UNROLL for (int h2 = 0; h2 < 2; h2++) { // sub-block 2k + h2
                int8x16_t a[4][2];
                int32x4_t s[4][2][2]; // [token][half][even chunks, odd chunks when split]
                CQ_UNROLL for (int t = 0; t < T; t++) {
                    const int8_t *xq = ((const cq_block_q8_K *)(x + (size_t)t * x_stride) + b)->qs + 64 * k + 32 * h2;
                    a[t][0] = vld1q_s8(xq);
                    a[t][1] = vld1q_s8(xq + 16);
                    CQ_UNROLL for (int h = 0; h < R; h++) s[t][h][0] = s[t][h][1] = vdupq_n_s32(0);
                }
#define CQ_Q4_K_CHUNK(i)                                                                                           \
                CQ_UNROLL for (int h = 0; h < R; h++) {                                                            \
                    const uint8x16_t q = vld1q_u8(qk + 32 * (i) + 16 * (half0 + h));                               \
                    const int8x16_t nib = vreinterpretq_s8_u8(h2 ? vshrq_n_u8(q, 4) : vandq_u8(q, low));           \
                    CQ_UNROLL for (int t = 0; t < T; t++) {                                                        \
                        s[t][h][(i) & split] = vdotq_laneq_s32(s[t][h][(i) & split], nib, a[t][(i) >> 2], (i) & 3); \
                    }                                                                                              \
                }
                CQ_Q4_K_CHUNK(0)
                CQ_Q4_K_CHUNK(1)
                CQ_Q4_K_CHUNK(2)
                CQ_Q4_K_CHUNK(3)
                CQ_Q4_K_CHUNK(4)
                CQ_Q4_K_CHUNK(5)
                CQ_Q4_K_CHUNK(6)
                CQ_Q4_K_CHUNK(7)
#undef CQ_Q4_K_CHUNK
                CQ_UNROLL for (int t = 0; t < T; t++) {
                    CQ_UNROLL for (int h = 0; h < R; h++) {
                        const int32x4_t sj = split ? vaddq_s32(s[t][h][0], s[t][h][1]) : s[t][h][0];
                        sumi[t][h] = vmlaq_s32(sumi[t][h], sj, scw[h][2 * k + h2]);
                    }
                }
            }
        }
        CQ_UNROLL for (int h = 0; h < R; h++) {
            const float32x4_t dw = cq_load_f16x4(g + 8 * (half0 + h)), dmw = cq_load_f16x4(g + 16 + 8 * (half0 + h));
            const uint8x16_t m0 = cq_k4r_bytes(g, half0 + h, 0, 1), m1 = cq_k4r_bytes(g, half0 + h, 1, 1);
            const int16x8_t m01 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m0)));
            const int16x8_t m23 = vreinterpretq_s16_u16(vmovl_high_u8(m0));
            const int16x8_t m45 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m1)));
            const int16x8_t m67 = vreinterpretq_s16_u16(vmovl_high_u8(m1));
            CQ_UNROLL for (int t = 0; t < T; t++) {
                const cq_block_q8_K *xb = (const cq_block_q8_K *)(x + (size_t)t * x_stride) + b;
                const int16x8_t bs = vpaddq_s16(vld1q_s16(xb->bsums), vld1q_s16(xb->bsums + 8)); // sub-block sums
                int32x4_t nmsum = vmull_laneq_s16(vget_low_s16(m01), bs, 0);
                nmsum = vmlal_laneq_s16(nmsum, vget_high_s16(m01), bs, 1);
                nmsum = vmlal_laneq_s16(nmsum, vget_low_s16(m23), bs, 2);
                nmsum = vmlal_laneq_s16(nmsum, vget_high_s16(m23), bs, 3);
                nmsum = vmlal_laneq_s16(nmsum, vget_low_s16(m45), bs, 4);
                nmsum = vmlal_laneq_s16(nmsum, vget_high_s16(m45), bs, 5);
                nmsum = vmlal_laneq_s16(nmsum, vget_low_s16(m67), bs, 6);
                nmsum = vmlal_laneq_s16(nmsum, vget_high_s16(m67), bs, 7);
                acc[t][h] = vfmaq_f32(acc[t][h], vmulq_n_f32(dw, xb->d), vcvtq_f32_s32(sumi[t][h]));
                acc[t][h] = vfmaq_f32(acc[t][h], vmulq_n_f32(dmw, xb->d), vcvtq_f32_s32(vnegq_s32(nmsum)));
            }
        }
    }
    cq_rtile_store(T, R, half0, acc, y, y_stride);
}

/// Q6_K x Q8_K. Sub-block j of the rows is quad j of the block: three chunks whose low six bits are
/// the quants of its elements 4k ... 4k + 3, and whose top two bits SRI gathers into those of
/// elements 12 ... 15 (repack.c); each minus 32 is an int8, so SDOT by lane against the activation's
/// 16 quants of the sub-block sums (q - 32) * a exactly, with no bsums. Then times the rows' scales
/// (MLA) into the block sum: |sum| <= 2^27, exact in int32.
static inline __attribute__((always_inline)) CQ_DOTPROD void
cq_rtile_q6_K_sdot(const int T, const int R, const int half0, int64_t nb, const uint8_t *g, const char *x,
                   size_t x_stride, float *y, size_t y_stride) {
    const int split = T == 1; // index of the odd chunks' accumulator
    float32x4_t acc[4][2];
    cq_rtile_zero(T, R, acc);
    const uint8x16_t six = vdupq_n_u8(0x3f);
    const int8x16_t offset = vdupq_n_s8(32);
    for (int64_t b = 0; b < nb; b++, g += 1680) {
        int32x4_t sumi[4][2];
        CQ_UNROLL for (int t = 0; t < T; t++) {
            CQ_UNROLL for (int h = 0; h < R; h++) sumi[t][h] = vdupq_n_s32(0);
        }
        for (int j = 0; j < 16; j++) {
            const int16x8_t sc16 = vmovl_s8(vld1_s8((const int8_t *)g + 16 + 8 * j)); // the eight rows' sc_j
            int8x16_t a[4];
            CQ_UNROLL for (int t = 0; t < T; t++) {
                a[t] = vld1q_s8(((const cq_block_q8_K *)(x + (size_t)t * x_stride) + b)->qs + 16 * j);
            }
            const uint8_t *qj = g + 144 + 96 * j;
            CQ_UNROLL for (int h = 0; h < R; h++) {
                const int hh = half0 + h;
                const uint8x16_t r0 = vld1q_u8(qj + 16 * hh), r1 = vld1q_u8(qj + 32 + 16 * hh);
                const uint8x16_t r2 = vld1q_u8(qj + 64 + 16 * hh);
                // chunk 0's top bits to bits 4-5 of the fourth quant, chunk 1's to 2-3, chunk 2's to 0-1
                const uint8x16_t r3 = vshrq_n_u8(vsriq_n_u8(r0, vsriq_n_u8(r1, r2, 2), 2), 2);
                const int8x16_t q0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(r0, six)), offset);
                const int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(r1, six)), offset);
                const int8x16_t q2 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(r2, six)), offset);
                const int8x16_t q3 = vsubq_s8(vreinterpretq_s8_u8(r3), offset);
                const int32x4_t sc = vmovl_s16(hh ? vget_high_s16(sc16) : vget_low_s16(sc16));
                CQ_UNROLL for (int t = 0; t < T; t++) {
                    int32x4_t s[2] = {vdupq_n_s32(0), vdupq_n_s32(0)}; // [even chunks, odd chunks when split]
                    s[0] = vdotq_laneq_s32(s[0], q0, a[t], 0);
                    s[split] = vdotq_laneq_s32(s[split], q1, a[t], 1);
                    s[0] = vdotq_laneq_s32(s[0], q2, a[t], 2);
                    s[split] = vdotq_laneq_s32(s[split], q3, a[t], 3);
                    sumi[t][h] = vmlaq_s32(sumi[t][h], split ? vaddq_s32(s[0], s[1]) : s[0], sc);
                }
            }
        }
        CQ_UNROLL for (int h = 0; h < R; h++) {
            const float32x4_t dw = cq_load_f16x4(g + 8 * (half0 + h));
            CQ_UNROLL for (int t = 0; t < T; t++) {
                const float dx = ((const cq_block_q8_K *)(x + (size_t)t * x_stride) + b)->d;
                acc[t][h] = vfmaq_f32(acc[t][h], vmulq_n_f32(dw, dx), vcvtq_f32_s32(sumi[t][h]));
            }
        }
    }
    cq_rtile_store(T, R, half0, acc, y, y_stride);
}

/// One group x T tokens: one tile of both halves for one token, two of one half each for four.
typedef void (*cq_rtile_sdot_fn)(int64_t nb, const uint8_t *g, const char *x, size_t x_stride, float *y,
                                 size_t y_stride);

#define CQ_RTILE_SDOT_VARIANTS(kind)                                                                              \
    static CQ_DOTPROD void cq_rtile_##kind##_sdot_1(int64_t nb, const uint8_t *g, const char *x, size_t x_stride, \
                                                    float *y, size_t y_stride) {                                   \
        cq_rtile_##kind##_sdot(1, 2, 0, nb, g, x, x_stride, y, y_stride);                                          \
    }                                                                                                              \
    static CQ_DOTPROD void cq_rtile_##kind##_sdot_4(int64_t nb, const uint8_t *g, const char *x, size_t x_stride, \
                                                    float *y, size_t y_stride) {                                   \
        cq_rtile_##kind##_sdot(4, 1, 0, nb, g, x, x_stride, y, y_stride);                                          \
        cq_rtile_##kind##_sdot(4, 1, 1, nb, g, x, x_stride, y, y_stride);                                          \
    }
CQ_RTILE_SDOT_VARIANTS(q4_0)
CQ_RTILE_SDOT_VARIANTS(q4_1)
CQ_RTILE_SDOT_VARIANTS(q5_0)
CQ_RTILE_SDOT_VARIANTS(q5_1)
CQ_RTILE_SDOT_VARIANTS(q8_0)
CQ_RTILE_SDOT_VARIANTS(q4_K)
CQ_RTILE_SDOT_VARIANTS(q6_K)

/// Groups of rows walked per pass over the token groups, so the rows stay in L1/L2 meanwhile.
enum { CQ_RTILE_SDOT_GROUPS_CHUNK = 2 };

CQ_DOTPROD int cq_matmul_repacked_neon_dotprod(int type, const void *w, const void *x, size_t x_stride, float *y,
                                               size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end,
                                               int64_t tokens) {
    cq_rtile_sdot_fn single, quad;
    size_t block;
    switch (type) {
    case CQ_TYPE_Q4_0: single = cq_rtile_q4_0_sdot_1, quad = cq_rtile_q4_0_sdot_4, block = 144; break;
    case CQ_TYPE_Q4_1: single = cq_rtile_q4_1_sdot_1, quad = cq_rtile_q4_1_sdot_4, block = 160; break;
    case CQ_TYPE_Q5_0: single = cq_rtile_q5_0_sdot_1, quad = cq_rtile_q5_0_sdot_4, block = 176; break;
    case CQ_TYPE_Q5_1: single = cq_rtile_q5_1_sdot_1, quad = cq_rtile_q5_1_sdot_4, block = 192; break;
    case CQ_TYPE_Q8_0: single = cq_rtile_q8_0_sdot_1, quad = cq_rtile_q8_0_sdot_4, block = 272; break;
    case CQ_TYPE_Q4_K: single = cq_rtile_q4_K_sdot_1, quad = cq_rtile_q4_K_sdot_4, block = 1152; break;
    case CQ_TYPE_Q6_K: single = cq_rtile_q6_K_sdot_1, quad = cq_rtile_q6_K_sdot_4, block = 1680; break;
    default: return -1;
    }
    const int64_t qk = type == CQ_TYPE_Q4_K || type == CQ_TYPE_Q6_K ? CQ_QK_K : CQ_QK;
    if (n <= 0 || n % qk != 0 || row_begin < 0 || row_begin > row_end || row_begin % CQ_REPACK_ROWS != 0 ||
        row_end % CQ_REPACK_ROWS != 0)
        return -1;
    if (row_begin == row_end || tokens <= 0) return 0;
    const int64_t nb = n / qk;
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
