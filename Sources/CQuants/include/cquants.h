// CQuants: ggml-compatible low-bit block formats and the kernels Outpost's engine runs on them.
//
// Block layouts are byte-for-byte those of ggml (ggml-common.h), so rows of a mmap'd GGUF tensor
// are passed here as they are. Every kernel has a portable `_scalar` reference; per-arch variants
// (`_avx2` on x86_64, `_neon` / `_neon_dotprod` on aarch64) are compiled with per-function target
// attributes and picked once, at first use, from the CPU's features (see cq_kernel_name()).
// The unsuffixed entry points (cq_vec_dot_q4_1_q8_1, cq_matvec, ...) go through that choice.
//
// Lengths `n` are element counts; for block types they must be multiples of CQ_QK (32).
#ifndef CQUANTS_H
#define CQUANTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// IEEE 754 binary16, stored as its bits (ggml_fp16_t).
typedef uint16_t cq_f16;

/// Elements per block of the 32-element block types (Q4_0 ... Q8_1).
#define CQ_QK 32
/// Elements per super-block of the K-quant types (Q4_K, Q5_K, Q6_K, Q8_K).
#define CQ_QK_K 256

/// Q4_0: x = d * (q - 8), q in 0...15; element j in low nibble of qs[j], j+16 in the high nibble.
typedef struct {
    cq_f16 d;
    uint8_t qs[CQ_QK / 2];
} cq_block_q4_0;

/// Q4_1: x = d * q + m, q in 0...15; same nibble order as Q4_0.
typedef struct {
    cq_f16 d;
    cq_f16 m;
    uint8_t qs[CQ_QK / 2];
} cq_block_q4_1;

/// Q8_0: x = d * q.
typedef struct {
    cq_f16 d;
    int8_t qs[CQ_QK];
} cq_block_q8_0;

/// Q8_1: x = d * q, with s = d * sum(q) (the activation side of Q4_1 dots).
typedef struct {
    cq_f16 d;
    cq_f16 s;
    int8_t qs[CQ_QK];
} cq_block_q8_1;

/// Q5_0: x = d * (q - 16), q in 0...31: the low four bits as Q4_0's nibbles, bit 4 of element j
/// in bit j of qh (little-endian u32).
typedef struct {
    cq_f16 d;
    uint8_t qh[4];
    uint8_t qs[CQ_QK / 2];
} cq_block_q5_0;

/// Q5_1: x = d * q + m, q in 0...31, bits as Q5_0.
typedef struct {
    cq_f16 d;
    cq_f16 m;
    uint8_t qh[4];
    uint8_t qs[CQ_QK / 2];
} cq_block_q5_1;

/// Q4_K: 256 elements in 8 sub-blocks of 32; sub-block j has a 6-bit scale sc_j and min m_j packed
/// in scales[12] (ggml get_scale_min_k4); x = d * sc_j * q - dmin * m_j, q in 0...15. Elements
/// 64k...64k+31 are the low nibbles of qs[32k...32k+31], 64k+32...64k+63 their high nibbles.
typedef struct {
    cq_f16 d;
    cq_f16 dmin;
    uint8_t scales[12];
    uint8_t qs[CQ_QK_K / 2];
} cq_block_q4_K;

/// Q5_K: Q4_K with a fifth bit: bit 2k of qh[l] for element 64k + l, bit 2k+1 for 64k + 32 + l.
typedef struct {
    cq_f16 d;
    cq_f16 dmin;
    uint8_t scales[12];
    uint8_t qh[CQ_QK_K / 8];
    uint8_t qs[CQ_QK_K / 2];
} cq_block_q5_K;

/// Q6_K: 16 sub-blocks of 16 with int8 scales; x = d * scales[j] * (q - 32), q in 0...63: low four
/// bits in ql, high two in qh (ggml's order, see cq_dequantize_row_q6_K).
typedef struct {
    uint8_t ql[CQ_QK_K / 2];
    uint8_t qh[CQ_QK_K / 4];
    int8_t scales[CQ_QK_K / 16];
    cq_f16 d;
} cq_block_q6_K;

/// Q8_K: the activation side of the K-quant dots: x = d * q (d in f32), with the sums of each
/// 16 quants in bsums.
typedef struct {
    float d;
    int8_t qs[CQ_QK_K];
    int16_t bsums[CQ_QK_K / 16];
} cq_block_q8_K;

_Static_assert(sizeof(cq_block_q4_0) == 18, "cq_block_q4_0 must match ggml block_q4_0");
_Static_assert(sizeof(cq_block_q4_1) == 20, "cq_block_q4_1 must match ggml block_q4_1");
_Static_assert(sizeof(cq_block_q8_0) == 34, "cq_block_q8_0 must match ggml block_q8_0");
_Static_assert(sizeof(cq_block_q8_1) == 36, "cq_block_q8_1 must match ggml block_q8_1");
_Static_assert(sizeof(cq_block_q5_0) == 22, "cq_block_q5_0 must match ggml block_q5_0");
_Static_assert(sizeof(cq_block_q5_1) == 24, "cq_block_q5_1 must match ggml block_q5_1");
_Static_assert(sizeof(cq_block_q4_K) == 144, "cq_block_q4_K must match ggml block_q4_K");
_Static_assert(sizeof(cq_block_q5_K) == 176, "cq_block_q5_K must match ggml block_q5_K");
_Static_assert(sizeof(cq_block_q6_K) == 210, "cq_block_q6_K must match ggml block_q6_K");
_Static_assert(sizeof(cq_block_q8_K) == 292, "cq_block_q8_K must match ggml block_q8_K");

/// ggml type ids (ggml.h `enum ggml_type`, the raw value of a GGUF tensor's type) understood here.
enum {
    CQ_TYPE_F32 = 0,
    CQ_TYPE_F16 = 1,
    CQ_TYPE_Q4_0 = 2,
    CQ_TYPE_Q4_1 = 3,
    CQ_TYPE_Q5_0 = 6,
    CQ_TYPE_Q5_1 = 7,
    CQ_TYPE_Q8_0 = 8,
    CQ_TYPE_Q8_1 = 9,
    CQ_TYPE_Q4_K = 12,
    CQ_TYPE_Q5_K = 13,
    CQ_TYPE_Q6_K = 14,
    CQ_TYPE_Q8_K = 15,
    /// One past the largest type id here (the size of per-type tables).
    CQ_TYPE_COUNT = 16,
};

/// What CQuants knows of one ggml type (ggml's type_traits): the same for every kernel path.
typedef struct {
    const char *name;    // ggml's name: "Q4_K"
    int64_t block_size;  // elements per block (1 for F32 and F16)
    size_t type_size;    // bytes per block
    int vec_dot_type;    // the activation type its weights are dotted with; -1: not a weight type here
    /// Reference dequantizer (n a multiple of block_size).
    void (*to_float)(const void *src, float *dst, int64_t n);
    /// Reference quantizer (ggml's quantize_row_*_ref), or NULL where CQuants has none (the K-quant
    /// weight types: the engine reads them, it does not make them).
    void (*from_float_ref)(const float *src, void *dst, int64_t n);
} cq_type_traits;

/// The traits of a ggml type id, or NULL for a type CQuants does not know.
const cq_type_traits *cq_get_type_traits(int type);
/// 1 when weights of `type` can be multiplied here (it has an activation type and the active path
/// a vec-dot for it), else 0.
int cq_type_supported(int type);

// ---- F16 <-> F32 -----------------------------------------------------------------------------

float cq_f16_to_f32(cq_f16 h);
/// Round to nearest even, overflow to infinity, NaN stays NaN (same results as F16C / ggml).
cq_f16 cq_f32_to_f16(float f);
void cq_f16_to_f32_row(const cq_f16 *x, float *y, int64_t n);
void cq_f32_to_f16_row(const float *x, cq_f16 *y, int64_t n);

// ---- Rows ------------------------------------------------------------------------------------

/// Bytes taken by a row of `n` elements of `type`; 0 for an unsupported type or an `n` that is
/// not a whole number of blocks.
size_t cq_row_size(int type, int64_t n);
/// Elements per block of `type` (32, 256, or 1 for F32/F16); 0 for an unknown type.
int64_t cq_block_size(int type);

/// The activation type a weight type is dotted with: Q8_0 for Q4_0, Q5_0 and Q8_0 weights, Q8_1
/// for Q4_1 and Q5_1, Q8_K for Q4_K, Q5_K and Q6_K, F32 for F16 and F32; -1 for any other type.
int cq_vec_dot_type(int type);

void cq_dequantize_row_f32(const void *src, float *dst, int64_t n);
void cq_dequantize_row_f16(const void *src, float *dst, int64_t n);
void cq_dequantize_row_q4_0(const void *src, float *dst, int64_t n);
void cq_dequantize_row_q4_1(const void *src, float *dst, int64_t n);
void cq_dequantize_row_q8_0(const void *src, float *dst, int64_t n);
void cq_dequantize_row_q8_1(const void *src, float *dst, int64_t n);
void cq_dequantize_row_q5_0(const void *src, float *dst, int64_t n);
void cq_dequantize_row_q5_1(const void *src, float *dst, int64_t n);
void cq_dequantize_row_q4_K(const void *src, float *dst, int64_t n);
void cq_dequantize_row_q5_K(const void *src, float *dst, int64_t n);
void cq_dequantize_row_q6_K(const void *src, float *dst, int64_t n);
void cq_dequantize_row_q8_K(const void *src, float *dst, int64_t n);
/// Dequantizes a row of any supported type; returns 0, or -1 for an unsupported type.
int cq_dequantize_row(int type, const void *src, float *dst, int64_t n);

/// ggml's reference quantizers (quantize_row_*_ref): same scales, same roundf, same bytes.
void cq_quantize_row_q4_0(const float *x, void *dst, int64_t n);
void cq_quantize_row_q4_1(const float *x, void *dst, int64_t n);
void cq_quantize_row_q8_0(const float *x, void *dst, int64_t n);
void cq_quantize_row_q8_1(const float *x, void *dst, int64_t n);
void cq_quantize_row_q5_0(const float *x, void *dst, int64_t n);
void cq_quantize_row_q5_1(const float *x, void *dst, int64_t n);
void cq_quantize_row_q8_K(const float *x, void *dst, int64_t n);
/// Quantizes (or converts, for F32/F16) a row to any supported type; returns 0, or -1 for an
/// unsupported type. Typical use: cq_quantize_row(cq_vec_dot_type(weight_type), x, buf, n).
/// The activation types (Q8_0, Q8_1, Q8_K) go through the chosen path's quantizer where it has
/// one; those give the same bytes as the reference (tested byte for byte, ties included).
int cq_quantize_row(int type, const float *x, void *dst, int64_t n);

// ---- Dot products (dispatched) ---------------------------------------------------------------
// x is the weight row, y the activation row in cq_vec_dot_type() of x's type.

float cq_vec_dot_q4_0_q8_0(int64_t n, const void *x, const void *y);
float cq_vec_dot_q4_1_q8_1(int64_t n, const void *x, const void *y);
float cq_vec_dot_q8_0_q8_0(int64_t n, const void *x, const void *y);
float cq_vec_dot_f16_f32(int64_t n, const void *x, const void *y);
float cq_vec_dot_f32_f32(int64_t n, const void *x, const void *y);
/// The active path's vec-dot of weights of `type` with activations of cq_vec_dot_type(type).
/// Returns 0, or -1 (and leaves *out alone) for an unsupported type.
int cq_vec_dot(int type, int64_t n, const void *x, const void *y, float *out);

/// y[r] = dot(row r of w, xq) for r in [row_begin, row_end). Row r starts at w + r * row_bytes
/// and holds `n` elements of `type`; xq holds `n` elements of cq_vec_dot_type(type). Disjoint row
/// ranges may run on different threads. Returns 0, or -1 for an unsupported type.
int cq_matvec(int type, const void *w, size_t row_bytes, const void *xq, float *y, int64_t n,
              int64_t row_begin, int64_t row_end);

/// Mat-mat over several activation rows ("tokens"): y[t * y_stride + r] = dot(row r of w, token t)
/// for r in [row_begin, row_end) and t in [0, tokens). Token t's converted activation row starts at
/// x + t * x_stride bytes. Same types and row layout as cq_matvec. Paths with a tiled kernel unpack
/// each weight block once for several tokens (prefill) or share one activation block across several
/// rows (decode); the others loop over their vec-dot. Q8_0 activations must lie in -127...127, as
/// cq_quantize_row makes them (the tiled kernels move the weight's sign onto the activation).
/// Returns 0, or -1 for an unsupported type.
int cq_matmul(int type, const void *w, size_t row_bytes, const void *x, size_t x_stride, float *y,
              size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens);

// ---- Repacked weights (dispatched) -------------------------------------------------------------
// A matrix of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K or Q6_K rows can be repacked once, at load time, into
// groups of CQ_REPACK_ROWS rows interleaved block by block, so one SIMD register holds four
// elements of each of the eight rows and one pass computes eight rows' sums in eight lanes (as
// llama.cpp's CPU repacks do).
// Group g (rows 8g...8g+7) starts at g * 8 * row_size bytes and holds, for each block b in turn:
//   Q4_0: d[8] (f16, row order), then qs[128]: four chunks of 32 bytes, chunk c holding bytes
//         4c...4c+3 of each row's 16 nibble bytes (as Q4_1, without m);              144 bytes
//   Q4_1: d[8], m[8] (f16, row order), then qs[128]: four chunks of 32 bytes, chunk c holding
//         bytes 4c...4c+3 of each row's 16 nibble bytes (so low nibbles are elements 4c...4c+3 of
//         the 8 rows, high nibbles 16+4c...16+4c+3);                                  160 bytes
//   Q5_0: d[8], then top[32], then q[128]: four chunks of 32 bytes. With the 5-bit quants
//         (0...31) of row r's elements 4c + k (a) and 16 + 4c + k (b), k = 0...3, byte 4r + k of
//         chunk c holds a | (b & 7) << 5 and bits 2c, 2c + 1 of top[4r + k] hold b >> 3
//         (so the places are those of Q4_0's nibbles, a the low and b the high);      176 bytes
//   Q5_1: d[8], m[8], then top[32] and q[128] as Q5_0's;                              192 bytes
//   Q8_0: d[8], then qs[256]: eight chunks of 32 bytes, chunk c holding bytes 4c...4c+3 of
//         each row's 32 int8;                                                         272 bytes
//   Q4_K: d[8], dmin[8] (f16), then the 6-bit scales and mins in 96 bytes: with
//         i = 16 * (r / 4) + 4 * (j % 4) + r % 4 for row r's sub-block j, byte 32 * (j / 4) + i
//         of those holds the low four bits of sc | those of m << 4, and bits 4 * (j / 4) ... + 3
//         of byte 64 + i the top two bits of sc, then those of m; then qs[1024]: 32 chunks of 32
//         bytes, chunk c holding bytes 4c...4c+3 of each row's 128 nibble bytes;      1152 bytes
//   Q6_K: d[8] (f16), then the int8 scales in 128 bytes, sub-block j (elements 16j...16j+15) of
//         row r at byte 8j + r; then 16 quads of 96 bytes, quad j three chunks of 32 bytes: byte
//         4r + i of chunk k (k = 0, 1, 2) holds row r's 6-bit quant (0...63) of element
//         16j + 4k + i in bits 0-5, and in bits 6-7 bits 4 - 2k and 5 - 2k of that of element
//         16j + 12 + i (so chunk 0 has its top two bits, chunk 2 its low two);       1680 bytes
// The same bytes as the plain rows, reordered (Q4_K's scales and the Q5 and Q6_K quant bits
// re-packed, losslessly): the repacked matrix has the size of the original.
// Results per (row, token): exact integer block sums (for Q4_0 of (q - 8) * x, for Q5_0 of
// (q - 16) * x), then acc += (d_w * d_x) * sum and, for Q4_1 and Q5_1, macc += m_w * s_x block
// after block (fused multiply-adds), y = acc + macc (Q4_0, Q5_0, Q8_0: y = acc). Q4_K, per
// super-block: the exact sum = sum_j sc_j * (sum of q * a over sub-block j) and
// nmsum = -sum_j m_j * (bsums of sub-block j), then acc += (d_w * d_x) * sum,
// acc += (dmin_w * d_x) * nmsum (fused, in that order); y = acc. Q6_K, per super-block: the exact
// sum = sum_j sc_j * (sum of (q - 32) * a over sub-block j), then acc += (d_w * d_x) * sum
// (fused); y = acc. Every path computes exactly that, whatever the batch or row range, so it is
// bit for bit reproducible.

#define CQ_REPACK_ROWS 8

/// 1 when the active path has a repacked kernel for weights of `type` (avx2, avx512-vnni and
/// neon-dotprod: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K and Q6_K), so repacking them is worth it; 0
/// otherwise (the repacked forms still work there, slower), and 0 when the environment variable
/// OUTPOST_REPACK is "0" (to compare both layouts).
int cq_repack_preferred(int type);
/// Bytes of the repacked form of `rows` rows of `n` elements of `type`: the plain size when the
/// type is Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K or Q6_K, rows is a multiple of CQ_REPACK_ROWS and n
/// of the type's block size (CQ_QK, or CQ_QK_K for Q4_K and Q6_K); else 0.
size_t cq_repacked_size(int type, int64_t rows, int64_t n);
/// Repacks the groups holding rows [row_begin, row_end) (multiples of CQ_REPACK_ROWS) of a plain
/// matrix `src` (rows `row_bytes` apart) into `dst`, the start of the whole repacked matrix.
/// Returns 0, or -1 for an unsupported type or misaligned range.
int cq_repack(int type, const void *src, size_t row_bytes, void *dst, int64_t n, int64_t row_begin, int64_t row_end);
/// Row `row` of a repacked matrix `w` as f32 (the same floats as cq_dequantize_row of the plain
/// row). Returns 0, or -1 for an unsupported type.
int cq_dequantize_row_repacked(int type, const void *w, int64_t n, int64_t row, float *dst);
/// cq_matmul for a repacked matrix `w`: y[t * y_stride + r] = dot(row r, token t) for r in
/// [row_begin, row_end) (multiples of CQ_REPACK_ROWS), t in [0, tokens). Activations as for
/// cq_matmul (Q8_0 for Q4_0 and Q5_0, Q8_1 for Q4_1 and Q5_1, Q8_0 within -127...127 for Q8_0,
/// Q8_K for Q4_K and Q6_K, bsums the sums of its quants, as cq_quantize_row makes them). Returns 0, or -1
/// for an unsupported type, a misaligned range or no memory for scratch.
int cq_matmul_repacked(int type, const void *w, const void *x, size_t x_stride, float *y, size_t y_stride, int64_t n,
                       int64_t row_begin, int64_t row_end, int64_t tokens);
/// The portable reference of cq_matmul_repacked (every path must match it bit for bit).
int cq_matmul_repacked_scalar(int type, const void *w, const void *x, size_t x_stride, float *y, size_t y_stride,
                              int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens);

// ---- Attention (dispatched) -------------------------------------------------------------------

/// One query head against `length` cached positions, as ggml without flash attention: the query
/// rounded to f16, scores = scale * (k_j . q), softmax in f32 (sum in double), the probabilities
/// rounded to f16, out[d] = sum_j p_j v[d][j]. Position j's key is keys[j * key_stride ...
/// + head_dim); dimension d's values are values[d * value_stride ... + length) (a transposed V
/// cache). `scratch` holds at least 2 * length + head_dim floats.
void cq_attend_f16(int64_t head_dim, int64_t length, const float *q, const cq_f16 *keys, size_t key_stride,
                   const cq_f16 *values, size_t value_stride, float scale, float *scratch, float *out);

/// cq_attend_f16 for `heads` query heads that share one key/value head (grouped-query attention):
/// query h is q[h * head_dim ... + head_dim), its output out[h * head_dim ... + head_dim). Each
/// head's output is bit for bit that of cq_attend_f16 on the same path for that head alone; paths
/// with a grouped kernel (AVX2) read and convert each key and value once for all the heads.
/// `scratch` holds at least heads * (2 * length + head_dim) floats.
void cq_attend_f16_group(int64_t heads, int64_t head_dim, int64_t length, const float *q, const cq_f16 *keys,
                         size_t key_stride, const cq_f16 *values, size_t value_stride, float scale, float *scratch,
                         float *out);

// ---- Explicit variants (for tests and benchmarks) ---------------------------------------------

float cq_vec_dot_q4_0_q8_0_scalar(int64_t n, const void *x, const void *y);
float cq_vec_dot_q4_1_q8_1_scalar(int64_t n, const void *x, const void *y);
float cq_vec_dot_q8_0_q8_0_scalar(int64_t n, const void *x, const void *y);
float cq_vec_dot_f16_f32_scalar(int64_t n, const void *x, const void *y);
float cq_vec_dot_f32_f32_scalar(int64_t n, const void *x, const void *y);
float cq_vec_dot_q5_0_q8_0_scalar(int64_t n, const void *x, const void *y);
float cq_vec_dot_q5_1_q8_1_scalar(int64_t n, const void *x, const void *y);
float cq_vec_dot_q4_K_q8_K_scalar(int64_t n, const void *x, const void *y);
float cq_vec_dot_q5_K_q8_K_scalar(int64_t n, const void *x, const void *y);
float cq_vec_dot_q6_K_q8_K_scalar(int64_t n, const void *x, const void *y);
/// The vec-dot of weights of `type` on the named path ("scalar", "avx2", ...), or NULL when this
/// build lacks the path or the path has no vec-dot for the type. For tests and benchmarks: the
/// CPU must support the path (cq_kernel_supported) before the function is called.
float (*cq_vec_dot_variant(const char *path, int type))(int64_t n, const void *x, const void *y);
/// The named path's quantizer of activation `type` (Q8_0, Q8_1, Q8_K), or NULL as above.
void (*cq_quantize_variant(const char *path, int type))(const float *x, void *dst, int64_t n);
void cq_attend_f16_scalar(int64_t head_dim, int64_t length, const float *q, const cq_f16 *keys, size_t key_stride,
                          const cq_f16 *values, size_t value_stride, float scale, float *scratch, float *out);
/// cq_matmul with the scalar reference vec-dots, one (row, token) pair at a time.
int cq_matmul_scalar(int type, const void *w, size_t row_bytes, const void *x, size_t x_stride, float *y,
                     size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens);

#if defined(__x86_64__) || defined(_M_X64)
#define CQ_HAVE_AVX2_VARIANTS 1
// Need AVX2, FMA and F16C (cq_kernel_supported("avx2")).
float cq_vec_dot_q4_0_q8_0_avx2(int64_t n, const void *x, const void *y);
float cq_vec_dot_q4_1_q8_1_avx2(int64_t n, const void *x, const void *y);
float cq_vec_dot_q8_0_q8_0_avx2(int64_t n, const void *x, const void *y);
float cq_vec_dot_f16_f32_avx2(int64_t n, const void *x, const void *y);
float cq_vec_dot_f32_f32_avx2(int64_t n, const void *x, const void *y);
/// Q5_0 / Q5_1 blocks: bit 4 spread from qh by a byte shuffle, exact int16 multiply-adds as Q4_0 / Q4_1.
float cq_vec_dot_q5_0_q8_0_avx2(int64_t n, const void *x, const void *y);
float cq_vec_dot_q5_1_q8_1_avx2(int64_t n, const void *x, const void *y);
/// K-quants (kquants_avx2.c): exact int32 sums per super-block, sub-block scales by int16 multiply-adds.
float cq_vec_dot_q4_K_q8_K_avx2(int64_t n, const void *x, const void *y);
float cq_vec_dot_q5_K_q8_K_avx2(int64_t n, const void *x, const void *y);
float cq_vec_dot_q6_K_q8_K_avx2(int64_t n, const void *x, const void *y);
/// Byte-identical to cq_quantize_row_q8_0 / _q8_1 (roundf's ties away from zero, rebuilt from truncation).
void cq_quantize_row_q8_0_avx2(const float *x, void *dst, int64_t n);
void cq_quantize_row_q8_1_avx2(const float *x, void *dst, int64_t n);
/// Byte-identical to cq_quantize_row_q8_K (its 12582912 trick, ties to even, NaN and infinity included); kquants_avx2.c.
void cq_quantize_row_q8_K_avx2(const float *x, void *dst, int64_t n);
void cq_attend_f16_avx2(int64_t head_dim, int64_t length, const float *q, const cq_f16 *keys, size_t key_stride,
                        const cq_f16 *values, size_t value_stride, float scale, float *scratch, float *out);
void cq_attend_f16_group_avx2(int64_t heads, int64_t head_dim, int64_t length, const float *q, const cq_f16 *keys,
                              size_t key_stride, const cq_f16 *values, size_t value_stride, float scale,
                              float *scratch, float *out);
/// Tiled for Q4_1 and Q8_0 weights (2 rows x 4 tokens, or 4 rows x 1 token); other types loop
/// over the AVX2 vec-dots.
int cq_matmul_avx2(int type, const void *w, size_t row_bytes, const void *x, size_t x_stride, float *y,
                   size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens);
/// cq_matmul_repacked for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K and Q6_K (eight rows per register, 1
/// or 4 tokens per pass).
int cq_matmul_repacked_avx2(int type, const void *w, const void *x, size_t x_stride, float *y, size_t y_stride,
                            int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens);
/// The same with VPDPBUSD on 256-bit registers: needs AVX-512 VNNI and VL besides AVX2, FMA and
/// F16C (cq_kernel_supported("avx512-vnni")). The avx512-vnni path is the avx2 path with this
/// repacked mat-mat; its results are the same bits.
int cq_matmul_repacked_avx512_vnni(int type, const void *w, const void *x, size_t x_stride, float *y,
                                   size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens);
#endif

#if defined(__aarch64__)
#define CQ_HAVE_NEON_VARIANTS 1
float cq_vec_dot_q4_0_q8_0_neon(int64_t n, const void *x, const void *y);
float cq_vec_dot_q4_1_q8_1_neon(int64_t n, const void *x, const void *y);
float cq_vec_dot_q8_0_q8_0_neon(int64_t n, const void *x, const void *y);
float cq_vec_dot_f16_f32_neon(int64_t n, const void *x, const void *y);
float cq_vec_dot_f32_f32_neon(int64_t n, const void *x, const void *y);
/// Q5_0 / Q5_1 blocks: bit 4 spread from qh by a table lookup, int16 multiply-adds widened once.
float cq_vec_dot_q5_0_q8_0_neon(int64_t n, const void *x, const void *y);
float cq_vec_dot_q5_1_q8_1_neon(int64_t n, const void *x, const void *y);
/// K-quants (kquants_neon.c): per super-block exact int32 sums, scales applied in int32.
float cq_vec_dot_q4_K_q8_K_neon(int64_t n, const void *x, const void *y);
float cq_vec_dot_q5_K_q8_K_neon(int64_t n, const void *x, const void *y);
float cq_vec_dot_q6_K_q8_K_neon(int64_t n, const void *x, const void *y);
/// Byte-identical to cq_quantize_row_q8_0 / _q8_1 (FCVTAS: roundf's ties away from zero); both NEON paths.
void cq_quantize_row_q8_0_neon(const float *x, void *dst, int64_t n);
void cq_quantize_row_q8_1_neon(const float *x, void *dst, int64_t n);
/// Byte-identical to cq_quantize_row_q8_K (FCVTNS: ties to even, as its 12582912 trick); kquants_neon.c.
void cq_quantize_row_q8_K_neon(const float *x, void *dst, int64_t n);
/// cq_attend_f16 with the F16 products inline (head dimensions not a multiple of 8: by the NEON vec-dot).
void cq_attend_f16_neon(int64_t head_dim, int64_t length, const float *q, const cq_f16 *keys, size_t key_stride,
                        const cq_f16 *values, size_t value_stride, float scale, float *scratch, float *out);
/// cq_attend_f16_group reading each key and value once for up to 4 heads; each head bit for bit cq_attend_f16_neon.
void cq_attend_f16_group_neon(int64_t heads, int64_t head_dim, int64_t length, const float *q, const cq_f16 *keys,
                              size_t key_stride, const cq_f16 *values, size_t value_stride, float scale,
                              float *scratch, float *out);
// Need ARMv8.2 dot product (cq_kernel_supported("neon-dotprod")).
float cq_vec_dot_q4_0_q8_0_neon_dotprod(int64_t n, const void *x, const void *y);
float cq_vec_dot_q4_1_q8_1_neon_dotprod(int64_t n, const void *x, const void *y);
float cq_vec_dot_q8_0_q8_0_neon_dotprod(int64_t n, const void *x, const void *y);
float cq_vec_dot_q5_0_q8_0_neon_dotprod(int64_t n, const void *x, const void *y);
float cq_vec_dot_q5_1_q8_1_neon_dotprod(int64_t n, const void *x, const void *y);
float cq_vec_dot_q4_K_q8_K_neon_dotprod(int64_t n, const void *x, const void *y);
float cq_vec_dot_q5_K_q8_K_neon_dotprod(int64_t n, const void *x, const void *y);
float cq_vec_dot_q6_K_q8_K_neon_dotprod(int64_t n, const void *x, const void *y);
/// cq_matmul_repacked for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K and Q6_K (SDOT by lane: eight rows in
/// two registers, 1 or 4 tokens per pass). Plain NEON has no repacked kernel, so cq_repack_preferred() is 0 there.
int cq_matmul_repacked_neon_dotprod(int type, const void *w, const void *x, size_t x_stride, float *y,
                                    size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens);
#endif

// ---- Kernel path -----------------------------------------------------------------------------
// The path is chosen once, at the first call of any dispatched function or of the functions
// below: the best the CPU supports, or the one named by the environment variable OUTPOST_KERNEL.
// An OUTPOST_KERNEL this build or CPU cannot run leaves the best path in place and sets
// cq_kernel_init_error(); callers (the executable's main) print it and exit.

/// "neon-dotprod", "neon", "avx2", "avx512-vnni" or "scalar".
const char *cq_kernel_name(void);
/// 1 when this build has the named path and this CPU can run it, else 0.
int cq_kernel_supported(const char *name);
/// Forces a path. Returns 0, or -1 (choice unchanged) for a path this build or CPU lacks.
/// Not safe to call while other threads run kernels.
int cq_kernel_select(const char *name);
/// NULL, or a message saying why OUTPOST_KERNEL was refused.
const char *cq_kernel_init_error(void);

// ---- Memory -----------------------------------------------------------------------------------

/// Reads `bytes` bytes (a multiple of 64, 64-byte aligned) and returns a value that depends on
/// all of them, so the reads cannot be optimised away. The bench times it for read bandwidth.
uint64_t cq_read_probe(const void *buf, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif // CQUANTS_H
