// Portable references for the K-quant types (super-blocks of 256): Q4_K, Q5_K and Q6_K weights,
// dequantized as ggml's dequantize_row_*, and dotted with Q8_K activations, which are quantized as
// ggml's quantize_row_q8_K_ref. Every SIMD variant is tested against these.
//
// The dots sum each super-block exactly in integers (scale x quant x activation, and the mins
// against the activation's 16-element sums), then add d_x * d_y * sum - dmin_x * d_y * msum in
// float, block after block. The SIMD variants get the same integers and differ only in the order
// of the float additions.
#include "quants_impl.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>

// ---- Scales ----------------------------------------------------------------------------------

void cq_k4_scales_mins(const uint8_t scales[12], uint8_t sc[8], uint8_t m[8]) {
    // ggml get_scale_min_k4: sub-blocks 0...3 keep 6 bits in scales[j] / scales[j + 4]; 4...7 take
    // their low 4 bits from scales[j + 4] and their top 2 bits from the top of scales[j - 4] / [j].
    for (int j = 0; j < 4; j++) {
        sc[j] = scales[j] & 63;
        m[j] = scales[j + 4] & 63;
    }
    for (int j = 4; j < 8; j++) {
        sc[j] = (uint8_t)((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4));
        m[j] = (uint8_t)((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

// ---- Dequantization ----------------------------------------------------------------------------

void cq_dequantize_row_q4_K(const void *src, float *dst, int64_t n) {
    const cq_block_q4_K *x = src;
    for (int64_t i = 0; i < n / CQ_QK_K; i++) {
        const float d = CQ_FP16(x[i].d), dmin = CQ_FP16(x[i].dmin);
        uint8_t sc[8], m[8];
        cq_k4_scales_mins(x[i].scales, sc, m);
        const uint8_t *q = x[i].qs;
        for (int k = 0; k < 4; k++, q += 32) {
            const float d1 = d * sc[2 * k], m1 = dmin * m[2 * k];
            const float d2 = d * sc[2 * k + 1], m2 = dmin * m[2 * k + 1];
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)(q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void cq_dequantize_row_q5_K(const void *src, float *dst, int64_t n) {
    const cq_block_q5_K *x = src;
    for (int64_t i = 0; i < n / CQ_QK_K; i++) {
        const float d = CQ_FP16(x[i].d), dmin = CQ_FP16(x[i].dmin);
        uint8_t sc[8], m[8];
        cq_k4_scales_mins(x[i].scales, sc, m);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        for (int k = 0; k < 4; k++, ql += 32) {
            const float d1 = d * sc[2 * k], m1 = dmin * m[2 * k];
            const float d2 = d * sc[2 * k + 1], m2 = dmin * m[2 * k + 1];
            const uint8_t u1 = (uint8_t)(1u << (2 * k)), u2 = (uint8_t)(2u << (2 * k));
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)((ql[l] & 0x0f) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

void cq_dequantize_row_q6_K(const void *src, float *dst, int64_t n) {
    const cq_block_q6_K *x = src;
    for (int64_t i = 0; i < n / CQ_QK_K; i++) {
        const float d = CQ_FP16(x[i].d);
        int8_t q[CQ_QK_K];
        cq_q6_K_unpack(&x[i], q);
        // ggml computes d * scale first, then times the quant: the same two roundings here.
        for (int j = 0; j < CQ_QK_K; j++) *dst++ = d * (float)x[i].scales[j / 16] * (float)q[j];
    }
}

void cq_dequantize_row_q8_K(const void *src, float *dst, int64_t n) {
    const cq_block_q8_K *x = src;
    for (int64_t i = 0; i < n / CQ_QK_K; i++) {
        for (int j = 0; j < CQ_QK_K; j++) *dst++ = x[i].d * (float)x[i].qs[j];
    }
}

// ---- Q8_K quantization -------------------------------------------------------------------------

/// Round to nearest, ties to even, for |f| < 2^22 (ggml's nearest_int).
static inline int cq_nearest_int(float f) {
    const float v = f + 12582912.0f;
    const uint32_t bits = cq_f32_to_bits(v);
    return (int)(bits & 0x007fffffu) - 0x00400000;
}

void cq_quantize_row_q8_K(const float *x, void *dst, int64_t n) {
    cq_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / CQ_QK_K; i++, x += CQ_QK_K) {
        float max = 0.0f, amax = 0.0f; // max keeps the sign of the largest magnitude
        for (int j = 0; j < CQ_QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < CQ_QK_K; j++) {
            const int v = cq_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < CQ_QK_K / 16; j++) {
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += y[i].qs[j * 16 + k];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1.0f / iscale;
    }
}

// ---- Reference dot products --------------------------------------------------------------------

/// sum over sub-blocks j of m[j] * (the activation sum over sub-block j's 32 elements).
static inline int cq_k4_min_sum(const uint8_t m[8], const int16_t bsums[16]) {
    int s = 0;
    for (int j = 0; j < 8; j++) s += m[j] * (bsums[2 * j] + bsums[2 * j + 1]);
    return s;
}

float cq_vec_dot_q4_K_q8_K_scalar(int64_t n, const void *vx, const void *vy) {
    const cq_block_q4_K *x = vx;
    const cq_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CQ_QK_K; i++) {
        uint8_t sc[8], m[8];
        cq_k4_scales_mins(x[i].scales, sc, m);
        const uint8_t *q = x[i].qs;
        const int8_t *a = y[i].qs;
        int sumi = 0;
        for (int k = 0; k < 4; k++, q += 32, a += 64) {
            int lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                lo += (q[l] & 0x0f) * a[l];
                hi += (q[l] >> 4) * a[l + 32];
            }
            sumi += sc[2 * k] * lo + sc[2 * k + 1] * hi;
        }
        const int msum = cq_k4_min_sum(m, y[i].bsums);
        sum += CQ_FP16(x[i].d) * y[i].d * (float)sumi - CQ_FP16(x[i].dmin) * y[i].d * (float)msum;
    }
    return sum;
}

float cq_vec_dot_q5_K_q8_K_scalar(int64_t n, const void *vx, const void *vy) {
    const cq_block_q5_K *x = vx;
    const cq_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CQ_QK_K; i++) {
        uint8_t sc[8], m[8];
        cq_k4_scales_mins(x[i].scales, sc, m);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        const int8_t *a = y[i].qs;
        int sumi = 0;
        for (int k = 0; k < 4; k++, ql += 32, a += 64) {
            const uint8_t u1 = (uint8_t)(1u << (2 * k)), u2 = (uint8_t)(2u << (2 * k));
            int lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                lo += ((ql[l] & 0x0f) + (qh[l] & u1 ? 16 : 0)) * a[l];
                hi += ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) * a[l + 32];
            }
            sumi += sc[2 * k] * lo + sc[2 * k + 1] * hi;
        }
        const int msum = cq_k4_min_sum(m, y[i].bsums);
        sum += CQ_FP16(x[i].d) * y[i].d * (float)sumi - CQ_FP16(x[i].dmin) * y[i].d * (float)msum;
    }
    return sum;
}

float cq_vec_dot_q6_K_q8_K_scalar(int64_t n, const void *vx, const void *vy) {
    const cq_block_q6_K *x = vx;
    const cq_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CQ_QK_K; i++) {
        int8_t q[CQ_QK_K];
        cq_q6_K_unpack(&x[i], q);
        int sumi = 0;
        for (int j = 0; j < CQ_QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += x[i].scales[j] * s;
        }
        sum += CQ_FP16(x[i].d) * y[i].d * (float)sumi;
    }
    return sum;
}
