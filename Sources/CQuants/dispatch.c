// Chooses the kernel path once (CPU features, or OUTPOST_KERNEL) and routes the unsuffixed
// entry points through it. The choice is a pointer to a const table, published atomically.
#include "quants_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(CQ_HAVE_AVX2_VARIANTS)
#include <cpuid.h>
#endif
#if defined(CQ_HAVE_NEON_VARIANTS) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#endif
#if defined(CQ_HAVE_NEON_VARIANTS) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

// ---- CPU features ----------------------------------------------------------------------------

#if defined(CQ_HAVE_AVX2_VARIANTS)
static int cq_cpu_has_avx2_fma_f16c(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    // F16C (CPUID.1:ECX bit 29) is not a __builtin_cpu_supports name on every compiler.
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    return (ecx >> 29) & 1u;
}

/// VPDPBUSD on ymm registers (EVEX): AVX512_VNNI with AVX512VL. __builtin_cpu_supports checks that
/// the OS saves the AVX-512 state too (XCR0), not only CPUID.
static int cq_cpu_has_avx512_vnni(void) {
    return cq_cpu_has_avx2_fma_f16c() && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
}
#endif

#if defined(CQ_HAVE_NEON_VARIANTS)
static int cq_cpu_has_dotprod(void) {
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v != 0;
#else
    return 0;
#endif
}
#endif

// ---- Known paths -----------------------------------------------------------------------------

typedef struct {
    const char *name;
    const cq_kernels *table; // NULL: not built into this binary
    int (*cpu_has)(void);    // NULL: every CPU of this arch can run it
} cq_path;

// Best first.
static const cq_path cq_paths[] = {
#if defined(CQ_HAVE_AVX2_VARIANTS)
    {"avx512-vnni", &cq_kernels_avx512_vnni, cq_cpu_has_avx512_vnni},
    {"avx2", &cq_kernels_avx2, cq_cpu_has_avx2_fma_f16c},
#else
    {"avx512-vnni", NULL, NULL},
    {"avx2", NULL, NULL},
#endif
#if defined(CQ_HAVE_NEON_VARIANTS)
    {"neon-dotprod", &cq_kernels_neon_dotprod, cq_cpu_has_dotprod},
    {"neon", &cq_kernels_neon, NULL},
#else
    {"neon-dotprod", NULL, NULL},
    {"neon", NULL, NULL},
#endif
    {"scalar", &cq_kernels_scalar, NULL},
};
enum { CQ_PATH_COUNT = sizeof cq_paths / sizeof cq_paths[0] };

static const cq_path *cq_find_path(const char *name) {
    if (name == NULL) return NULL;
    for (int i = 0; i < CQ_PATH_COUNT; i++) {
        if (strcmp(cq_paths[i].name, name) == 0) return &cq_paths[i];
    }
    return NULL;
}

static int cq_path_usable(const cq_path *p) {
    return p != NULL && p->table != NULL && (p->cpu_has == NULL || p->cpu_has());
}

// ---- Choice ----------------------------------------------------------------------------------

static _Atomic(const cq_kernels *) cq_active_kernels;
static pthread_once_t cq_init_once = PTHREAD_ONCE_INIT;
static char cq_init_error_text[256];
static const char *cq_init_error_message; // NULL or cq_init_error_text

static void cq_kernel_init(void) {
    const cq_kernels *best = &cq_kernels_scalar;
    for (int i = 0; i < CQ_PATH_COUNT; i++) {
        if (cq_path_usable(&cq_paths[i])) {
            best = cq_paths[i].table;
            break;
        }
    }
    const char *wanted = getenv("OUTPOST_KERNEL");
    if (wanted != NULL && wanted[0] != '\0') {
        const cq_path *p = cq_find_path(wanted);
        if (p == NULL) {
            snprintf(cq_init_error_text, sizeof cq_init_error_text,
                     "OUTPOST_KERNEL=%s is not a kernel path; use one of neon-dotprod, neon, avx2, "
                     "avx512-vnni, scalar, or unset it to pick the best (here %s)",
                     wanted, best->name);
            cq_init_error_message = cq_init_error_text;
        } else if (p->table == NULL) {
            snprintf(cq_init_error_text, sizeof cq_init_error_text,
                     "OUTPOST_KERNEL=%s: this build has no %s kernels (another architecture's, or not "
                     "implemented yet); the best here is %s", wanted, wanted, best->name);
            cq_init_error_message = cq_init_error_text;
        } else if (!cq_path_usable(p)) {
            snprintf(cq_init_error_text, sizeof cq_init_error_text,
                     "OUTPOST_KERNEL=%s: this CPU lacks the instructions the %s kernels need; "
                     "the best here is %s", wanted, wanted, best->name);
            cq_init_error_message = cq_init_error_text;
        } else {
            best = p->table;
        }
    }
    atomic_store_explicit(&cq_active_kernels, best, memory_order_release);
}

static inline const cq_kernels *cq_active(void) {
    // Fast path (every call after the first): the table is set once init has run.
    const cq_kernels *k = atomic_load_explicit(&cq_active_kernels, memory_order_acquire);
    if (k != NULL) return k;
    pthread_once(&cq_init_once, cq_kernel_init);
    return atomic_load_explicit(&cq_active_kernels, memory_order_acquire);
}

const char *cq_kernel_name(void) { return cq_active()->name; }


int cq_kernel_supported(const char *name) { return cq_path_usable(cq_find_path(name)); }

int cq_kernel_select(const char *name) {
    const cq_path *p = cq_find_path(name);
    pthread_once(&cq_init_once, cq_kernel_init);
    if (!cq_path_usable(p)) return -1;
    atomic_store_explicit(&cq_active_kernels, p->table, memory_order_release);
    return 0;
}

const char *cq_kernel_init_error(void) {
    pthread_once(&cq_init_once, cq_kernel_init);
    return cq_init_error_message;
}

// ---- Dispatched entry points -----------------------------------------------------------------

float cq_vec_dot_q4_0_q8_0(int64_t n, const void *x, const void *y) { return cq_active()->vec_dot[CQ_TYPE_Q4_0](n, x, y); }
float cq_vec_dot_q4_1_q8_1(int64_t n, const void *x, const void *y) { return cq_active()->vec_dot[CQ_TYPE_Q4_1](n, x, y); }
float cq_vec_dot_q8_0_q8_0(int64_t n, const void *x, const void *y) { return cq_active()->vec_dot[CQ_TYPE_Q8_0](n, x, y); }
float cq_vec_dot_f16_f32(int64_t n, const void *x, const void *y) { return cq_active()->vec_dot[CQ_TYPE_F16](n, x, y); }
float cq_vec_dot_f32_f32(int64_t n, const void *x, const void *y) { return cq_active()->vec_dot[CQ_TYPE_F32](n, x, y); }

int cq_vec_dot(int type, int64_t n, const void *x, const void *y, float *out) {
    const cq_vec_dot_fn dot = cq_kernels_dot(cq_active(), type);
    if (dot == NULL) return -1;
    *out = dot(n, x, y);
    return 0;
}

int cq_type_supported(int type) {
    return cq_vec_dot_type(type) >= 0 && cq_kernels_dot(cq_active(), type) != NULL;
}

int cq_quantize_row(int type, const float *x, void *dst, int64_t n) {
    const cq_type_traits *t = cq_get_type_traits(type);
    if (t == NULL || t->from_float_ref == NULL || n % t->block_size != 0) return -1;
    const cq_quantize_fn fast = cq_active()->quantize[type];
    (fast != NULL ? fast : t->from_float_ref)(x, dst, n);
    return 0;
}

cq_vec_dot_fn cq_vec_dot_variant(const char *path, int type) {
    const cq_path *p = cq_find_path(path);
    return p != NULL && p->table != NULL ? cq_kernels_dot(p->table, type) : NULL;
}

cq_quantize_fn cq_quantize_variant(const char *path, int type) {
    const cq_path *p = cq_find_path(path);
    if (p == NULL || p->table == NULL || type < 0 || type >= CQ_TYPE_COUNT) return NULL;
    return p->table->quantize[type];
}

int cq_matvec(int type, const void *w, size_t row_bytes, const void *xq, float *y, int64_t n,
              int64_t row_begin, int64_t row_end) {
    const cq_vec_dot_fn dot = cq_kernels_dot(cq_active(), type);
    if (dot == NULL) return -1;
    const char *row = (const char *)w + (size_t)row_begin * row_bytes;
    for (int64_t r = row_begin; r < row_end; r++, row += row_bytes) y[r] = dot(n, row, xq);
    return 0;
}

int cq_matmul(int type, const void *w, size_t row_bytes, const void *x, size_t x_stride, float *y,
              size_t y_stride, int64_t n, int64_t row_begin, int64_t row_end, int64_t tokens) {
    const cq_kernels *k = cq_active();
    if (k->matmul != NULL) return k->matmul(type, w, row_bytes, x, x_stride, y, y_stride, n, row_begin, row_end, tokens);
    return cq_matmul_by_dots(cq_kernels_dot(k, type), w, row_bytes, x, x_stride, y, y_stride, n, row_begin, row_end,
                             tokens);
}

int cq_repack_preferred(int type) {
    const char *env = getenv("OUTPOST_REPACK");
    if (env != NULL && strcmp(env, "0") == 0) return 0;
    const cq_kernels *k = cq_active();
    return cq_repacked_block_bytes(type) != 0 && k->matmul_repacked != NULL && type >= 0 && type < 32 &&
           (k->repacked_types >> type & 1u) != 0;
}

int cq_matmul_repacked(int type, const void *w, const void *x, size_t x_stride, float *y, size_t y_stride, int64_t n,
                       int64_t row_begin, int64_t row_end, int64_t tokens) {
    const cq_kernels *k = cq_active();
    if (k->matmul_repacked != NULL) {
        return k->matmul_repacked(type, w, x, x_stride, y, y_stride, n, row_begin, row_end, tokens);
    }
    return cq_matmul_repacked_scalar(type, w, x, x_stride, y, y_stride, n, row_begin, row_end, tokens);
}

/// One head on path `k`.
static inline void cq_attend_one(const cq_kernels *k, int64_t head_dim, int64_t length, const float *q,
                                 const cq_f16 *keys, size_t key_stride, const cq_f16 *values, size_t value_stride,
                                 float scale, float *scratch, float *out) {
    if (k->attend_f16 != NULL) {
        k->attend_f16(head_dim, length, q, keys, key_stride, values, value_stride, scale, scratch, out);
    } else {
        cq_attend_by_dots(k->vec_dot[CQ_TYPE_F16], head_dim, length, q, keys, key_stride, values, value_stride, scale, scratch, out);
    }
}

void cq_attend_f16(int64_t head_dim, int64_t length, const float *q, const cq_f16 *keys, size_t key_stride,
                   const cq_f16 *values, size_t value_stride, float scale, float *scratch, float *out) {
    cq_attend_one(cq_active(), head_dim, length, q, keys, key_stride, values, value_stride, scale, scratch, out);
}

void cq_attend_f16_group(int64_t heads, int64_t head_dim, int64_t length, const float *q, const cq_f16 *keys,
                         size_t key_stride, const cq_f16 *values, size_t value_stride, float scale, float *scratch,
                         float *out) {
    const cq_kernels *k = cq_active();
    if (k->attend_f16_group != NULL) {
        k->attend_f16_group(heads, head_dim, length, q, keys, key_stride, values, value_stride, scale, scratch, out);
        return;
    }
    for (int64_t h = 0; h < heads; h++) {
        cq_attend_one(k, head_dim, length, q + h * head_dim, keys, key_stride, values, value_stride, scale, scratch,
                      out + h * head_dim);
    }
}
