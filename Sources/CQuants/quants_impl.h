// Private to CQuants: helpers shared by the reference and the per-arch files, and the dispatch
// table layout. Not part of the public header.
#ifndef CQUANTS_IMPL_H
#define CQUANTS_IMPL_H

#include "include/cquants.h"

#include <math.h>
#include <string.h>

typedef float (*cq_vec_dot_fn)(int64_t n, const void *x, const void *y);
typedef int (*cq_matmul_fn)(int type, const void *w, size_t row_bytes, const void *x, size_t x_stride,
                            float *y, size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end,
                            int64_t tokens);

typedef void (*cq_quantize_fn)(const float *x, void *dst, int64_t n);

/// One kernel path: a name, one vec-dot per weight type (indexed by ggml type id) and the
/// optional faster kernels. A type without a vec-dot here does not run on this path.
typedef struct {
    const char *name;
    cq_vec_dot_fn vec_dot[CQ_TYPE_COUNT];
    cq_quantize_fn quantize[CQ_TYPE_COUNT]; // activation quantizers; NULL: the reference
    cq_matmul_fn matmul; // NULL: cq_matmul loops over this path's vec-dots
    // NULL: the repacked layouts go through cq_matmul_repacked_scalar (and are not preferred)
    uint32_t repacked_types; // bit t set: matmul_repacked runs type t fast (cq_repack_preferred)
    int (*matmul_repacked)(int type, const void *w, const void *x, size_t x_stride, float *y, size_t y_stride,
                           int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens);
    void (*attend_f16)(int64_t, int64_t, const float *, const cq_f16 *, size_t, const cq_f16 *, size_t, float,
                       float *, float *); // NULL: cq_attend_by_dots with this path's F16 vec-dot
    void (*attend_f16_group)(int64_t, int64_t, int64_t, const float *, const cq_f16 *, size_t, const cq_f16 *, size_t,
                             float, float *, float *); // NULL: the single-head attention once per head
} cq_kernels;

/// cq_attend_f16 through a vec-dot (F16 x F32) for both products; the softmax is shared by every
/// path (declared in quants_scalar.c).
void cq_attend_by_dots(cq_vec_dot_fn dot, int64_t head_dim, int64_t length, const float *q, const cq_f16 *keys,
                       size_t key_stride, const cq_f16 *values, size_t value_stride, float scale, float *scratch,
                       float *out);

/// The vec-dot of `k` for weights of `type`, or NULL for a type the path does not run.
static inline cq_vec_dot_fn cq_kernels_dot(const cq_kernels *k, int type) {
    return type >= 0 && type < CQ_TYPE_COUNT ? k->vec_dot[type] : NULL;
}

/// cq_matmul by one vec-dot per (row, token) pair, rows outer so a weight row stays in cache.
static inline int cq_matmul_by_dots(cq_vec_dot_fn dot, const void *w, size_t row_bytes, const void *x,
                                    size_t x_stride, float *y, size_t y_stride, int64_t n, int64_t row_begin,
                                    int64_t row_end, int64_t tokens) {
    if (dot == NULL) return -1;
    const char *row = (const char *)w + (size_t)row_begin * row_bytes;
    for (int64_t r = row_begin; r < row_end; r++, row += row_bytes) {
        for (int64_t t = 0; t < tokens; t++) y[(size_t)t * y_stride + r] = dot(n, row, (const char *)x + (size_t)t * x_stride);
    }
    return 0;
}

/// The softmax every attention variant shares, so they agree exactly: scores[j] becomes
/// exp(scores[j] - max), and the return value is 1 / their sum (summed in double).
static inline float cq_softmax_exp(float *scores, int64_t length, float max) {
    double sum = 0;
    for (int64_t j = 0; j < length; j++) {
        const float e = expf(scores[j] - max);
        scores[j] = e;
        sum += (double)e;
    }
    return (float)(1.0 / sum);
}

static inline float cq_bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t cq_f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/// Inline F16 -> F32 for inner loops (exact; same as cq_f16_to_f32).
static inline float cq_f16_to_f32_inline(cq_f16 h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return cq_bits_to_f32(sign | 0x7f800000u | (man << 13)); // inf, NaN
    if (exp != 0) return cq_bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
    const float sub = (float)man * 0x1p-24f; // zero or subnormal: man * 2^-24, exact in f32
    return sign ? -sub : sub;
}

#define CQ_FP16(h) cq_f16_to_f32_inline(h)

/// Element j (and j + 16) of a Q5 block: its low nibble (high nibble) and bit j (j + 16) of qh.
/// Shared by the reference kernels and the repacker (repack.c), which must read the same bits.
static inline int cq_q5_low(const uint8_t *qs, uint32_t qh, int j) { return (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4); }
static inline int cq_q5_high(const uint8_t *qs, uint32_t qh, int j) { return (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4); }

/// The 256 quants of a Q6_K block, minus 32, in element order. Shared by the reference kernels and
/// the repacker (repack.c), which must read the same bits.
static inline void cq_q6_K_unpack(const cq_block_q6_K *x, int8_t q[CQ_QK_K]) {
    const uint8_t *ql = x->ql, *qh = x->qh;
    for (int h = 0; h < 2; h++, q += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            q[l] = (int8_t)((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            q[l + 32] = (int8_t)((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            q[l + 64] = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            q[l + 96] = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        }
    }
}

/// The 6-bit scales and mins of the eight sub-blocks of a Q4_K / Q5_K block (ggml get_scale_min_k4).
void cq_k4_scales_mins(const uint8_t scales[12], uint8_t sc[8], uint8_t m[8]);

/// Bytes of one repacked block of CQ_REPACK_ROWS rows; 0 for a type without a repacked layout
/// (repack.c).
size_t cq_repacked_block_bytes(int type);

// Kernel tables defined by the per-arch files (dispatch.c picks one).
extern const cq_kernels cq_kernels_scalar;
#if defined(CQ_HAVE_AVX2_VARIANTS)
extern const cq_kernels cq_kernels_avx2;
extern const cq_kernels cq_kernels_avx512_vnni;
#endif
#if defined(CQ_HAVE_NEON_VARIANTS)
extern const cq_kernels cq_kernels_neon;
extern const cq_kernels cq_kernels_neon_dotprod;
#endif

#endif // CQUANTS_IMPL_H
