// The type table (ggml's type_traits): block size, bytes per block, the activation type each
// weight type is dotted with, and the reference (de)quantizers. Kernels live in the per-path
// tables (cq_kernels); this table is the same for every path.
#include "quants_impl.h"

static void cq_copy_row_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * sizeof(float)); }
static void cq_convert_row_f16(const float *x, void *dst, int64_t n) { cq_f32_to_f16_row(x, dst, n); }

static const cq_type_traits cq_types[CQ_TYPE_COUNT] = {
    [CQ_TYPE_F32] = {"F32", 1, 4, CQ_TYPE_F32, cq_dequantize_row_f32, cq_copy_row_f32},
    [CQ_TYPE_F16] = {"F16", 1, 2, CQ_TYPE_F32, cq_dequantize_row_f16, cq_convert_row_f16},
    [CQ_TYPE_Q4_0] = {"Q4_0", CQ_QK, sizeof(cq_block_q4_0), CQ_TYPE_Q8_0, cq_dequantize_row_q4_0, cq_quantize_row_q4_0},
    [CQ_TYPE_Q4_1] = {"Q4_1", CQ_QK, sizeof(cq_block_q4_1), CQ_TYPE_Q8_1, cq_dequantize_row_q4_1, cq_quantize_row_q4_1},
    [CQ_TYPE_Q5_0] = {"Q5_0", CQ_QK, sizeof(cq_block_q5_0), CQ_TYPE_Q8_0, cq_dequantize_row_q5_0, cq_quantize_row_q5_0},
    [CQ_TYPE_Q5_1] = {"Q5_1", CQ_QK, sizeof(cq_block_q5_1), CQ_TYPE_Q8_1, cq_dequantize_row_q5_1, cq_quantize_row_q5_1},
    [CQ_TYPE_Q8_0] = {"Q8_0", CQ_QK, sizeof(cq_block_q8_0), CQ_TYPE_Q8_0, cq_dequantize_row_q8_0, cq_quantize_row_q8_0},
    [CQ_TYPE_Q8_1] = {"Q8_1", CQ_QK, sizeof(cq_block_q8_1), -1, cq_dequantize_row_q8_1, cq_quantize_row_q8_1},
    [CQ_TYPE_Q4_K] = {"Q4_K", CQ_QK_K, sizeof(cq_block_q4_K), CQ_TYPE_Q8_K, cq_dequantize_row_q4_K, NULL},
    [CQ_TYPE_Q5_K] = {"Q5_K", CQ_QK_K, sizeof(cq_block_q5_K), CQ_TYPE_Q8_K, cq_dequantize_row_q5_K, NULL},
    [CQ_TYPE_Q6_K] = {"Q6_K", CQ_QK_K, sizeof(cq_block_q6_K), CQ_TYPE_Q8_K, cq_dequantize_row_q6_K, NULL},
    [CQ_TYPE_Q8_K] = {"Q8_K", CQ_QK_K, sizeof(cq_block_q8_K), -1, cq_dequantize_row_q8_K, cq_quantize_row_q8_K},
};

const cq_type_traits *cq_get_type_traits(int type) {
    if (type < 0 || type >= CQ_TYPE_COUNT || cq_types[type].name == NULL) return NULL;
    return &cq_types[type];
}

int64_t cq_block_size(int type) {
    const cq_type_traits *t = cq_get_type_traits(type);
    return t != NULL ? t->block_size : 0;
}

size_t cq_row_size(int type, int64_t n) {
    const cq_type_traits *t = cq_get_type_traits(type);
    if (t == NULL || n < 0 || n % t->block_size != 0) return 0;
    return (size_t)(n / t->block_size) * t->type_size;
}

int cq_vec_dot_type(int type) {
    const cq_type_traits *t = cq_get_type_traits(type);
    return t != NULL ? t->vec_dot_type : -1;
}

int cq_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    const cq_type_traits *t = cq_get_type_traits(type);
    if (t == NULL || n % t->block_size != 0) return -1;
    t->to_float(src, dst, n);
    return 0;
}
