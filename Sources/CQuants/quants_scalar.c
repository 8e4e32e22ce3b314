// Portable reference implementations: F16 conversion, row (de)quantization as ggml's *_ref
// functions do it, and the scalar vec-dots every SIMD variant is tested against and falls back
// to for its tail.
#include "quants_impl.h"

// Bit-exact agreement with ggml and the gguf package needs every `a * b + c` here rounded twice,
// as written: no fused multiply-add contraction (GCC contracts across statements by default).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>

// ---- F16 <-> F32 -----------------------------------------------------------------------------

float cq_f16_to_f32(cq_f16 h) { return cq_f16_to_f32_inline(h); }

cq_f16 cq_f32_to_f16(float f) {
    const uint32_t x = cq_f32_to_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) { // NaN: quiet it, keep the top payload bits (as F16C does)
        return (cq_f16)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    }
    if (ax >= 0x477ff000u) return (cq_f16)(sign | 0x7c00u); // >= 65520 rounds to infinity
    if (ax >= 0x38800000u) { // normal half (>= 2^-14): rebias, round to nearest even on 13 bits
        uint32_t r = ax - (112u << 23);
        r += 0xfffu + ((r >> 13) & 1u);
        return (cq_f16)(sign | (r >> 13));
    }
    if (ax < 0x33000000u) return (cq_f16)sign; // < 2^-25: rounds to zero (2^-25 ties to 0 too)
    // Subnormal half: round(|f| * 2^24) to nearest even, from the f32 mantissa.
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e; // 14...24
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (cq_f16)(sign | q);
}

void cq_f16_to_f32_row(const cq_f16 *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = CQ_FP16(x[i]);
}

void cq_f32_to_f16_row(const float *x, cq_f16 *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cq_f32_to_f16(x[i]);
}

// ---- Rows ------------------------------------------------------------------------------------

void cq_dequantize_row_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void cq_dequantize_row_f16(const void *src, float *dst, int64_t n) {
    cq_f16_to_f32_row((const cq_f16 *)src, dst, n);
}

void cq_dequantize_row_q4_0(const void *src, float *dst, int64_t n) {
    const cq_block_q4_0 *x = src;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        const float d = CQ_FP16(x[i].d);
        for (int j = 0; j < CQ_QK / 2; j++) {
            dst[i * CQ_QK + j] = (float)((x[i].qs[j] & 0x0f) - 8) * d;
            dst[i * CQ_QK + j + CQ_QK / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void cq_dequantize_row_q4_1(const void *src, float *dst, int64_t n) {
    const cq_block_q4_1 *x = src;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        const float d = CQ_FP16(x[i].d);
        const float m = CQ_FP16(x[i].m);
        for (int j = 0; j < CQ_QK / 2; j++) {
            dst[i * CQ_QK + j] = (float)(x[i].qs[j] & 0x0f) * d + m;
            dst[i * CQ_QK + j + CQ_QK / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

void cq_dequantize_row_q8_0(const void *src, float *dst, int64_t n) {
    const cq_block_q8_0 *x = src;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        const float d = CQ_FP16(x[i].d);
        for (int j = 0; j < CQ_QK; j++) dst[i * CQ_QK + j] = (float)x[i].qs[j] * d;
    }
}

void cq_dequantize_row_q8_1(const void *src, float *dst, int64_t n) {
    const cq_block_q8_1 *x = src;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        const float d = CQ_FP16(x[i].d);
        for (int j = 0; j < CQ_QK; j++) dst[i * CQ_QK + j] = (float)x[i].qs[j] * d;
    }
}

void cq_dequantize_row_q5_0(const void *src, float *dst, int64_t n) {
    const cq_block_q5_0 *x = src;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        const float d = CQ_FP16(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < CQ_QK / 2; j++) {
            dst[i * CQ_QK + j] = (float)(cq_q5_low(x[i].qs, qh, j) - 16) * d;
            dst[i * CQ_QK + j + CQ_QK / 2] = (float)(cq_q5_high(x[i].qs, qh, j) - 16) * d;
        }
    }
}

void cq_dequantize_row_q5_1(const void *src, float *dst, int64_t n) {
    const cq_block_q5_1 *x = src;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        const float d = CQ_FP16(x[i].d);
        const float m = CQ_FP16(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < CQ_QK / 2; j++) {
            dst[i * CQ_QK + j] = (float)cq_q5_low(x[i].qs, qh, j) * d + m;
            dst[i * CQ_QK + j + CQ_QK / 2] = (float)cq_q5_high(x[i].qs, qh, j) * d + m;
        }
    }
}

// The quantizers follow ggml's quantize_row_*_ref step for step (scale from the f32 extreme,
// inverse of the unrounded scale, the same truncation / roundf), so they produce the same bytes.

void cq_quantize_row_q4_0(const float *x, void *dst, int64_t n) {
    cq_block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / CQ_QK; i++, x += CQ_QK) {
        float amax = 0.0f, max = 0.0f; // max keeps the sign of the largest magnitude
        for (int j = 0; j < CQ_QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = cq_f32_to_f16(d);
        for (int j = 0; j < CQ_QK / 2; j++) {
            int q0 = (int8_t)(x[j] * id + 8.5f);
            int q1 = (int8_t)(x[j + CQ_QK / 2] * id + 8.5f);
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void cq_quantize_row_q4_1(const float *x, void *dst, int64_t n) {
    cq_block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / CQ_QK; i++, x += CQ_QK) {
        float min = INFINITY, max = -INFINITY;
        for (int j = 0; j < CQ_QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = cq_f32_to_f16(d);
        y[i].m = cq_f32_to_f16(min);
        for (int j = 0; j < CQ_QK / 2; j++) {
            int q0 = (int8_t)((x[j] - min) * id + 0.5f);
            int q1 = (int8_t)((x[j + CQ_QK / 2] - min) * id + 0.5f);
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void cq_quantize_row_q8_0(const float *x, void *dst, int64_t n) {
    cq_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / CQ_QK; i++, x += CQ_QK) {
        float amax = 0.0f;
        for (int j = 0; j < CQ_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = cq_f32_to_f16(d);
        for (int j = 0; j < CQ_QK; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void cq_quantize_row_q8_1(const float *x, void *dst, int64_t n) {
    cq_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / CQ_QK; i++, x += CQ_QK) {
        float amax = 0.0f;
        for (int j = 0; j < CQ_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = cq_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < CQ_QK; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = cq_f32_to_f16((float)sum * d);
    }
}

void cq_quantize_row_q5_0(const float *x, void *dst, int64_t n) {
    cq_block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / CQ_QK; i++, x += CQ_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < CQ_QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = cq_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < CQ_QK / 2; j++) {
            int q0 = (int8_t)(x[j] * id + 16.5f);
            int q1 = (int8_t)(x[j + CQ_QK / 2] * id + 16.5f);
            q0 = q0 > 31 ? 31 : q0;
            q1 = q1 > 31 ? 31 : q1;
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (((uint32_t)q0 & 0x10u) >> 4) << j;
            qh |= (((uint32_t)q1 & 0x10u) >> 4) << (j + CQ_QK / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

void cq_quantize_row_q5_1(const float *x, void *dst, int64_t n) {
    cq_block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / CQ_QK; i++, x += CQ_QK) {
        float min = x[0], max = x[0];
        for (int j = 1; j < CQ_QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = cq_f32_to_f16(d);
        y[i].m = cq_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < CQ_QK / 2; j++) {
            const int q0 = (uint8_t)((x[j] - min) * id + 0.5f);
            const int q1 = (uint8_t)((x[j + CQ_QK / 2] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (((uint32_t)q0 & 0x10u) >> 4) << j;
            qh |= (((uint32_t)q1 & 0x10u) >> 4) << (j + CQ_QK / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

// ---- Reference dot products ------------------------------------------------------------------

float cq_vec_dot_q4_0_q8_0_scalar(int64_t n, const void *vx, const void *vy) {
    const cq_block_q4_0 *x = vx;
    const cq_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        int sumi = 0;
        for (int j = 0; j < CQ_QK / 2; j++) {
            sumi += ((x[i].qs[j] & 0x0f) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + CQ_QK / 2];
        }
        sum += (float)sumi * (CQ_FP16(x[i].d) * CQ_FP16(y[i].d));
    }
    return sum;
}

float cq_vec_dot_q4_1_q8_1_scalar(int64_t n, const void *vx, const void *vy) {
    const cq_block_q4_1 *x = vx;
    const cq_block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        int sumi = 0;
        for (int j = 0; j < CQ_QK / 2; j++) {
            sumi += (x[i].qs[j] & 0x0f) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + CQ_QK / 2];
        }
        // sum(d_x q_x + m_x)(d_y q_y) = d_x d_y sum(q_x q_y) + m_x s_y
        sum += (float)sumi * (CQ_FP16(x[i].d) * CQ_FP16(y[i].d)) + CQ_FP16(x[i].m) * CQ_FP16(y[i].s);
    }
    return sum;
}

float cq_vec_dot_q8_0_q8_0_scalar(int64_t n, const void *vx, const void *vy) {
    const cq_block_q8_0 *x = vx;
    const cq_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        int sumi = 0;
        for (int j = 0; j < CQ_QK; j++) sumi += x[i].qs[j] * y[i].qs[j];
        sum += (float)sumi * (CQ_FP16(x[i].d) * CQ_FP16(y[i].d));
    }
    return sum;
}

float cq_vec_dot_q5_0_q8_0_scalar(int64_t n, const void *vx, const void *vy) {
    const cq_block_q5_0 *x = vx;
    const cq_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < CQ_QK / 2; j++) {
            sumi += (cq_q5_low(x[i].qs, qh, j) - 16) * y[i].qs[j];
            sumi += (cq_q5_high(x[i].qs, qh, j) - 16) * y[i].qs[j + CQ_QK / 2];
        }
        sum += (float)sumi * (CQ_FP16(x[i].d) * CQ_FP16(y[i].d));
    }
    return sum;
}

float cq_vec_dot_q5_1_q8_1_scalar(int64_t n, const void *vx, const void *vy) {
    const cq_block_q5_1 *x = vx;
    const cq_block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CQ_QK; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < CQ_QK / 2; j++) {
            sumi += cq_q5_low(x[i].qs, qh, j) * y[i].qs[j];
            sumi += cq_q5_high(x[i].qs, qh, j) * y[i].qs[j + CQ_QK / 2];
        }
        sum += (float)sumi * (CQ_FP16(x[i].d) * CQ_FP16(y[i].d)) + CQ_FP16(x[i].m) * CQ_FP16(y[i].s);
    }
    return sum;
}

float cq_vec_dot_f16_f32_scalar(int64_t n, const void *vx, const void *vy) {
    const cq_f16 *x = vx;
    const float *y = vy;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)CQ_FP16(x[i]) * (double)y[i];
    return (float)sum;
}

float cq_vec_dot_f32_f32_scalar(int64_t n, const void *vx, const void *vy) {
    const float *x = vx;
    const float *y = vy;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * (double)y[i];
    return (float)sum;
}

int cq_matmul_scalar(int type, const void *w, size_t row_bytes, const void *x, size_t x_stride, float *y,
                     size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens) {
    return cq_matmul_by_dots(cq_kernels_dot(&cq_kernels_scalar, type), w, row_bytes, x, x_stride, y, y_stride, n,
                             row_begin, row_end, tokens);
}

// ---- Attention -------------------------------------------------------------------------------

void cq_attend_by_dots(cq_vec_dot_fn dot, int64_t hd, int64_t length, const float *q, const cq_f16 *keys,
                       size_t key_stride, const cq_f16 *values, size_t value_stride, float scale, float *scratch,
                       float *out) {
    float *qr = scratch, *scores = scratch + hd, *probs = scores + length;
    for (int64_t d = 0; d < hd; d++) qr[d] = CQ_FP16(cq_f32_to_f16(q[d]));
    float max = -INFINITY;
    for (int64_t j = 0; j < length; j++) {
        const float s = dot(hd, keys + (size_t)j * key_stride, qr) * scale;
        scores[j] = s;
        if (s > max) max = s;
    }
    const float inv = cq_softmax_exp(scores, length, max);
    for (int64_t j = 0; j < length; j++) probs[j] = CQ_FP16(cq_f32_to_f16(scores[j] * inv));
    for (int64_t d = 0; d < hd; d++) out[d] = dot(length, values + (size_t)d * value_stride, probs);
}

void cq_attend_f16_scalar(int64_t hd, int64_t length, const float *q, const cq_f16 *keys, size_t key_stride,
                          const cq_f16 *values, size_t value_stride, float scale, float *scratch, float *out) {
    cq_attend_by_dots(cq_vec_dot_f16_f32_scalar, hd, length, q, keys, key_stride, values, value_stride, scale,
                      scratch, out);
}

// ---- Memory ------------------------------------------------------------------------------------

// 16-byte vectors (GCC/Clang vector extension: SSE2 on x86_64, NEON on aarch64, both baseline)
// with four independent sums, so the loop is limited by memory, not by the adds.
typedef uint64_t cq_u64x2 __attribute__((vector_size(16)));

uint64_t cq_read_probe(const void *buf, size_t bytes) {
    const cq_u64x2 *p = buf;
    cq_u64x2 a0 = {0, 0}, a1 = {0, 0}, a2 = {0, 0}, a3 = {0, 0};
    for (size_t i = 0; i + 4 <= bytes / 16; i += 4) { // one 64-byte line per step
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
    }
    const cq_u64x2 s = a0 ^ a1 ^ a2 ^ a3;
    return s[0] ^ s[1];
}

const cq_kernels cq_kernels_scalar = {
    .name = "scalar",
    .vec_dot = {
        [CQ_TYPE_F32] = cq_vec_dot_f32_f32_scalar,
        [CQ_TYPE_F16] = cq_vec_dot_f16_f32_scalar,
        [CQ_TYPE_Q4_0] = cq_vec_dot_q4_0_q8_0_scalar,
        [CQ_TYPE_Q4_1] = cq_vec_dot_q4_1_q8_1_scalar,
        [CQ_TYPE_Q5_0] = cq_vec_dot_q5_0_q8_0_scalar,
        [CQ_TYPE_Q5_1] = cq_vec_dot_q5_1_q8_1_scalar,
        [CQ_TYPE_Q8_0] = cq_vec_dot_q8_0_q8_0_scalar,
        [CQ_TYPE_Q4_K] = cq_vec_dot_q4_K_q8_K_scalar,
        [CQ_TYPE_Q5_K] = cq_vec_dot_q5_K_q8_K_scalar,
        [CQ_TYPE_Q6_K] = cq_vec_dot_q6_K_q8_K_scalar,
    },
    .matmul = NULL,
};
