// Stand-alone C test driver for CQuants, built by scripts/test-neon.sh natively (x86_64: scalar
// vs AVX2) and for aarch64 (run under qemu: scalar vs NEON vs NEON+dotprod). It checks
//   - which kernel path the dispatcher chose (--expect-kernel NAME) and how OUTPOST_KERNEL is
//     honoured or refused (in forked children, before this process initialises the dispatcher),
//   - F32 -> F16 rounding against the CPU's own conversion instruction (F16C / FCVTN),
//   - the quantizers and dequantizers against fixtures written by the gguf package (--fixtures),
//   - every SIMD vec-dot against the scalar reference, within the named bounds below, at odd
//     lengths and with extreme values (-128, all-0xF nibbles), and cq_matvec over row ranges,
//   - cq_attend_f16 (dispatched, AVX2, NEON) against its scalar reference, and cq_attend_f16_group
//     against cq_attend_f16 once per head, bit for bit,
//   - cq_matmul (dispatched, and the AVX2 tiles on x86_64) against the scalar dots of every pair,
//   - the repacked layouts: round trip, and every repacked kernel bit for bit against the reference
//     (also at the model's Q5_0 / Q5_1 / Q6_K shapes).
// Prints failures as they happen and ends with one line: "<label>: N passed, M failed".
#include "cquants.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

// Block-type dots: the integer sums are exact in every variant, so only the float accumulation
// order differs: bound relative to sum |x_i * y_i| of the dequantized operands.
#define QUANT_DOT_REL_BOUND 1e-5
// F16/F32 dots: the reference accumulates in double, the SIMD variants in float lanes.
#define FLOAT_DOT_REL_BOUND 1e-4

static int passed, failed;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...) {
    if (ok) {
        passed++;
        return;
    }
    failed++;
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

// ---- deterministic random numbers ----------------------------------------------------------------

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rnd_unit(void) { return (float)(rnd_u32() & 0xffffff) / (float)0x1000000 * 2.0f - 1.0f; }
static void rnd_bytes(void *p, size_t n) {
    for (size_t i = 0; i < n; i++) ((uint8_t *)p)[i] = (uint8_t)rnd_u32();
}

// ---- variants ------------------------------------------------------------------------------------

typedef float (*dot_fn)(int64_t, const void *, const void *);
typedef struct {
    const char *path;
    dot_fn q4_0, q4_1, q8_0, f16, f32;
} variant;

static const variant variants[] = {
    {"scalar", cq_vec_dot_q4_0_q8_0_scalar, cq_vec_dot_q4_1_q8_1_scalar, cq_vec_dot_q8_0_q8_0_scalar,
     cq_vec_dot_f16_f32_scalar, cq_vec_dot_f32_f32_scalar},
#if defined(CQ_HAVE_AVX2_VARIANTS)
    {"avx2", cq_vec_dot_q4_0_q8_0_avx2, cq_vec_dot_q4_1_q8_1_avx2, cq_vec_dot_q8_0_q8_0_avx2,
     cq_vec_dot_f16_f32_avx2, cq_vec_dot_f32_f32_avx2},
#endif
#if defined(CQ_HAVE_NEON_VARIANTS)
    {"neon", cq_vec_dot_q4_0_q8_0_neon, cq_vec_dot_q4_1_q8_1_neon, cq_vec_dot_q8_0_q8_0_neon,
     cq_vec_dot_f16_f32_neon, cq_vec_dot_f32_f32_neon},
    {"neon-dotprod", cq_vec_dot_q4_0_q8_0_neon_dotprod, cq_vec_dot_q4_1_q8_1_neon_dotprod,
     cq_vec_dot_q8_0_q8_0_neon_dotprod, cq_vec_dot_f16_f32_neon, cq_vec_dot_f32_f32_neon},
#endif
};
enum { N_VARIANTS = sizeof variants / sizeof variants[0] };

// ---- dispatcher and OUTPOST_KERNEL ----------------------------------------------------------------

/// Runs in a fresh child: with OUTPOST_KERNEL=value, the init error is set iff expect_error, and
/// the chosen path is expect_name (or the best one when expect_name is NULL).
static void check_env_choice(const char *value, int expect_error, const char *expect_name) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("OUTPOST_KERNEL", value, 1);
        const char *err = cq_kernel_init_error();
        int ok = (err != NULL) == (expect_error != 0);
        if (expect_name != NULL) ok = ok && strcmp(cq_kernel_name(), expect_name) == 0;
        if (!ok) printf("  child: OUTPOST_KERNEL=%s -> path %s, error %s\n", value, cq_kernel_name(), err ? err : "(none)");
        if (err != NULL && expect_error) printf("  (expected) %s\n", err);
        fflush(stdout);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "OUTPOST_KERNEL=%s: expected %s and path %s", value,
          expect_error ? "an init error" : "no init error", expect_name ? expect_name : "(the best)");
}

static void test_dispatch(const char *expect_kernel) {
    static const char *all[] = {"neon-dotprod", "neon", "avx2", "avx512-vnni", "scalar"};
    // In children first: this process's own dispatcher must not be initialised yet.
    unsetenv("OUTPOST_KERNEL");
    check_env_choice("scalar", 0, "scalar");
    check_env_choice("no-such-path", 1, NULL);
    for (int i = 0; i < 5; i++) {
        if (cq_kernel_supported(all[i])) check_env_choice(all[i], 0, all[i]);
        else check_env_choice(all[i], 1, NULL);
    }

    const char *name = cq_kernel_name();
    printf("kernel path: %s\n", name);
    check(cq_kernel_init_error() == NULL, "no init error without OUTPOST_KERNEL");
    if (expect_kernel != NULL) {
        check(strcmp(name, expect_kernel) == 0, "kernel path is %s, expected %s", name, expect_kernel);
    }
    check(cq_kernel_supported(name), "the chosen path %s is supported", name);
    check(cq_kernel_select("bogus") != 0 && strcmp(cq_kernel_name(), name) == 0, "select(bogus) refused, choice kept");
    for (int i = 0; i < 5; i++) {
        const int ok = cq_kernel_select(all[i]) == 0;
        check(ok == cq_kernel_supported(all[i]), "select(%s) agrees with supported()", all[i]);
        if (ok) check(strcmp(cq_kernel_name(), all[i]) == 0, "select(%s) took effect", all[i]);
    }
    cq_kernel_select(name);
}

// ---- F16 ---------------------------------------------------------------------------------------------

static cq_f16 hw_f32_to_f16(float f);
#if defined(__x86_64__)
__attribute__((target("f16c"))) static cq_f16 hw_f32_to_f16_f16c(float f) { return (cq_f16)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
static int hw_f16_available(void) { return cq_kernel_supported("avx2"); }
static cq_f16 hw_f32_to_f16(float f) { return hw_f32_to_f16_f16c(f); }
#elif defined(__aarch64__)
static int hw_f16_available(void) { return 1; }
static cq_f16 hw_f32_to_f16(float f) {
    float16x4_t h = vcvt_f16_f32(vdupq_n_f32(f));
    return vget_lane_u16(vreinterpret_u16_f16(h), 0);
}
#else
static int hw_f16_available(void) { return 0; }
static cq_f16 hw_f32_to_f16(float f) { return cq_f32_to_f16(f); }
#endif

static void test_f16(void) {
    // Every finite half survives F16 -> F32 -> F16; NaNs stay NaNs.
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = cq_f16_to_f32((cq_f16)h);
        const int is_nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff) != 0;
        if (is_nan ? !isnan(f) : cq_f32_to_f16(f) != h) bad++;
    }
    check(bad == 0, "F16 round trip: %d of 65536 halves changed", bad);
    if (!hw_f16_available()) return;
    // Against the CPU's conversion: random bit patterns (all exponents) and values near halves.
    bad = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = rnd_u32();
        if (i & 1) u = (u & 0x83ffffffu) | (((rnd_u32() % 40) + 100u) << 23); // exponents near F16 range
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f)) continue;
        if (cq_f32_to_f16(f) != hw_f32_to_f16(f)) {
            if (bad++ < 5) printf("  f32 %a (0x%08x): ours 0x%04x, cpu 0x%04x\n", f, u, cq_f32_to_f16(f), hw_f32_to_f16(f));
        }
    }
    check(bad == 0, "F32 -> F16 agrees with the CPU's conversion instruction (%d differ)", bad);
    for (uint32_t h = 0; h < 65536; h++) {
        // F16 -> F32 against the CPU too (NaNs compare as NaNs).
        float ours = cq_f16_to_f32((cq_f16)h), cpu;
#if defined(__aarch64__)
        cpu = vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16((uint16_t)h))), 0);
#else
        cpu = ours;
#endif
        if (!(isnan(ours) && isnan(cpu)) && memcmp(&ours, &cpu, 4) != 0) bad++;
    }
    check(bad == 0, "F16 -> F32 agrees with the CPU (%d differ)", bad);
}

// ---- fixtures from the gguf package -------------------------------------------------------------------

static void *read_file(const char *dir, const char *name, size_t *size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)n + 1);
    if (fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return p;
}

static void test_fixtures(const char *dir) {
    size_t n_in = 0;
    float *in = read_file(dir, "input.f32", &n_in);
    check(in != NULL, "fixture %s/input.f32 readable", dir);
    if (in == NULL) return;
    const int64_t n = (int64_t)(n_in / 4);
    static const struct { const char *name; int type; } types[] = {
        {"q4_0", CQ_TYPE_Q4_0}, {"q4_1", CQ_TYPE_Q4_1}, {"q5_0", CQ_TYPE_Q5_0}, {"q5_1", CQ_TYPE_Q5_1},
        {"q8_0", CQ_TYPE_Q8_0}};
    for (int t = 0; t < 5; t++) {
        char name[64];
        size_t n_q = 0, n_d = 0;
        snprintf(name, sizeof name, "%s.bin", types[t].name);
        uint8_t *want_q = read_file(dir, name, &n_q);
        snprintf(name, sizeof name, "%s.deq.f32", types[t].name);
        float *want_d = read_file(dir, name, &n_d);
        check(want_q && want_d && n_q == cq_row_size(types[t].type, n) && n_d == n_in, "fixtures for %s", types[t].name);
        if (!want_q || !want_d) continue;
        uint8_t *q = calloc(n_q, 1);
        float *d = calloc((size_t)n, 4);
        cq_quantize_row(types[t].type, in, q, n);
        size_t first = n_q;
        for (size_t i = 0; i < n_q; i++) if (q[i] != want_q[i]) { first = i; break; }
        check(first == n_q, "quantize %s matches gguf byte for byte (first difference at byte %zu)", types[t].name, first);
        cq_dequantize_row(types[t].type, want_q, d, n);
        check(memcmp(d, want_d, n_in) == 0, "dequantize %s matches gguf bit for bit", types[t].name);
        free(q); free(d); free(want_q); free(want_d);
    }
    // K types: gguf has no quantizer for them; random super-blocks dequantized by gguf, and real
    // rows of llama.cpp's Q4_K_M re-quantization of the default model (every kmodel-* file).
    static const struct { const char *prefix; int type; } ktypes[] = {
        {"q4_k", CQ_TYPE_Q4_K}, {"q5_k", CQ_TYPE_Q5_K}, {"q6_k", CQ_TYPE_Q6_K}, {"q5_0", CQ_TYPE_Q5_0},
        {"q8_0", CQ_TYPE_Q8_0}};
    int kmodel_files = 0;
    DIR *dp = opendir(dir);
    struct dirent *de;
    while (dp != NULL && (de = readdir(dp)) != NULL) {
        const size_t len = strlen(de->d_name);
        const int random = strstr(de->d_name, "-random.bin") != NULL;
        const int kmodel = strncmp(de->d_name, "kmodel-", 7) == 0 && len > 4 && strcmp(de->d_name + len - 4, ".bin") == 0;
        if (!random && !kmodel) continue;
        const char *tname = kmodel ? de->d_name + 7 : de->d_name;
        int type = -1;
        for (size_t k = 0; k < sizeof ktypes / sizeof ktypes[0]; k++) {
            if (strncmp(tname, ktypes[k].prefix, 4) == 0 && tname[4] == '-') type = ktypes[k].type;
        }
        check(type >= 0, "fixture %s names a known type", de->d_name);
        if (type < 0) continue;
        char fname[300];
        snprintf(fname, sizeof fname, "%.*s.f32", (int)(len - 4), de->d_name);
        if (random) snprintf(fname, sizeof fname, "%.*s.deq.f32", (int)(len - 4), de->d_name);
        size_t n_q = 0, n_d = 0;
        uint8_t *q = read_file(dir, de->d_name, &n_q);
        float *want = read_file(dir, fname, &n_d);
        const int64_t elems = (int64_t)(n_d / 4);
        check(q && want && cq_row_size(type, elems) == n_q, "fixture pair %s / %s", de->d_name, fname);
        if (q && want && cq_row_size(type, elems) == n_q) {
            float *got = calloc((size_t)elems, 4);
            cq_dequantize_row(type, q, got, elems);
            int64_t bad = 0;
            for (int64_t i = 0; i < elems; i++) bad += memcmp(&got[i], &want[i], 4) != 0;
            check(bad == 0, "dequantize %s matches gguf bit for bit (%lld of %lld differ)", de->d_name, (long long)bad,
                  (long long)elems);
            free(got);
        }
        kmodel_files += kmodel;
        free(q); free(want);
    }
    if (dp != NULL) closedir(dp);
    check(kmodel_files >= 3, "at least three kmodel-* fixtures (real Q4_K, Q6_K, Q5_0 rows), found %d", kmodel_files);
    size_t n_h = 0;
    cq_f16 *want_h = read_file(dir, "f16.bin", &n_h);
    if (want_h && n_h == (size_t)n * 2) {
        cq_f16 *h = calloc((size_t)n, 2);
        cq_f32_to_f16_row(in, h, n);
        check(memcmp(h, want_h, n_h) == 0, "F32 -> F16 matches numpy on input.f32");
        free(h);
    } else check(0, "fixture f16.bin");
    free(want_h);
    size_t n_e = 0, n_eh = 0;
    float *edge = read_file(dir, "f16-edge.f32", &n_e);
    cq_f16 *edge_h = read_file(dir, "f16-edge.bin", &n_eh);
    if (edge && edge_h && n_e / 4 == n_eh / 2) {
        int bad = 0;
        for (size_t i = 0; i < n_e / 4; i++) {
            if (cq_f32_to_f16(edge[i]) != edge_h[i]) {
                if (bad++ < 5) printf("  f16 edge %a: ours 0x%04x numpy 0x%04x\n", edge[i], cq_f32_to_f16(edge[i]), edge_h[i]);
            }
        }
        check(bad == 0, "F32 -> F16 matches numpy on the edge values (%d differ)", bad);
    } else check(0, "fixtures f16-edge");
    free(edge); free(edge_h); free(in);
}

// ---- quantizer properties --------------------------------------------------------------------------

static void test_quantizer_properties(void) {
    enum { N = 32 * 19 };
    float x[N], back[N];
    for (int i = 0; i < N; i++) x[i] = rnd_unit() * (float)(1 + i % 7) * 3.0f;
    cq_block_q8_1 q81[N / 32];
    cq_quantize_row_q8_1(x, q81, N);
    int s_ok = 1;
    for (int b = 0; b < N / 32; b++) {
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += q81[b].qs[j];
        // as ggml: s = F16(sum(qs) * d) with the F32 scale d = amax / 127, before its F16 rounding
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        if (q81[b].s != cq_f32_to_f16((float)sum * (amax / 127.0f))) s_ok = 0;
    }
    check(s_ok, "Q8_1 s = d * sum(qs)");
    cq_block_q8_0 q80[N / 32];
    cq_quantize_row_q8_0(x, q80, N);
    check(memcmp(q80[3].qs, q81[3].qs, 32) == 0 && q80[3].d == q81[3].d, "Q8_0 and Q8_1 quants agree");
    cq_dequantize_row_q8_1(q81, back, N);
    double worst = 0;
    for (int b = 0; b < N / 32; b++) {
        const float d = cq_f16_to_f32(q81[b].d);
        for (int j = 0; j < 32; j++) {
            const double e = fabs(back[b * 32 + j] - x[b * 32 + j]) / (d > 0 ? d : 1);
            if (e > worst) worst = e;
        }
    }
    // half a step, plus the scale's own F16 rounding (2^-11 relative) times the largest quant
    check(worst <= 0.5 + 127.0 / 2048.0, "Q8_1 round trip within half a step (worst %.3f steps)", worst);
}

// ---- vec-dot variants against the scalar reference -------------------------------------------------

typedef enum { DATA_QUANTIZED, DATA_RANDOM_BYTES, DATA_EXTREME_MIN, DATA_EXTREME_MAX } data_kind;
static const char *data_names[] = {"quantized", "random-bytes", "extreme(-128, 0x0 nibbles)", "extreme(-128, 0xF nibbles)"};

/// Fills a weight row of `type` and its activation row, dequantizes both, returns sum |x y|.
static double make_operands(int type, int64_t n, data_kind kind, void *w, void *a, float *wf, float *af) {
    const int atype = cq_vec_dot_type(type);
    float *tmp = malloc((size_t)n * 4);
    const size_t wbytes = cq_row_size(type, n), abytes = cq_row_size(atype, n);
    if (kind == DATA_QUANTIZED || type == CQ_TYPE_F16 || type == CQ_TYPE_F32) {
        // quantized: mixed magnitudes; otherwise F16-sized extremes up to near its max (65504)
        for (int64_t i = 0; i < n; i++) tmp[i] = kind == DATA_QUANTIZED ? rnd_unit() * 2.0f * (float)(1 + (i % 5)) : rnd_unit() * 65000.0f;
        cq_quantize_row(type, tmp, w, n);
        for (int64_t i = 0; i < n; i++) tmp[i] = rnd_unit() * 0.5f;
        cq_quantize_row(atype, tmp, a, n);
    } else {
        rnd_bytes(w, wbytes);
        rnd_bytes(a, abytes);
        const size_t wb = wbytes / (size_t)(n / 32), ab = abytes / (size_t)(n / 32);
        for (int64_t b = 0; b < n / 32; b++) {
            uint8_t *wp = (uint8_t *)w + (size_t)b * wb, *ap = (uint8_t *)a + (size_t)b * ab;
            // sane scales; quants as generated, or forced to the extremes
            cq_f16 d = cq_f32_to_f16(0.001f + (float)(rnd_u32() % 1000) * 1e-3f);
            memcpy(wp, &d, 2);
            if (type == CQ_TYPE_Q4_1) { cq_f16 m = cq_f32_to_f16(rnd_unit()); memcpy(wp + 2, &m, 2); }
            d = cq_f32_to_f16(0.001f + (float)(rnd_u32() % 1000) * 1e-3f);
            memcpy(ap, &d, 2);
            if (atype == CQ_TYPE_Q8_1) { cq_f16 s = cq_f32_to_f16(rnd_unit() * 50.0f); memcpy(ap + 2, &s, 2); }
            const size_t wq = type == CQ_TYPE_Q4_1 ? 4 : 2, aq = atype == CQ_TYPE_Q8_1 ? 4 : 2;
            if (kind == DATA_EXTREME_MIN || kind == DATA_EXTREME_MAX) {
                const uint8_t wfill = type == CQ_TYPE_Q8_0 ? 0x80 : (kind == DATA_EXTREME_MAX ? 0xff : 0x00);
                memset(wp + wq, wfill, wb - wq);
                memset(ap + aq, 0x80, ab - aq);
            }
        }
    }
    cq_dequantize_row(type, w, wf, n);
    cq_dequantize_row(atype, a, af, n);
    double mag = 0;
    for (int64_t i = 0; i < n; i++) mag += fabs((double)wf[i] * (double)af[i]);
    free(tmp);
    return mag;
}

static void test_variants(void) {
    static const struct { const char *name; int type; } types[] = {
        {"q4_0_q8_0", CQ_TYPE_Q4_0}, {"q4_1_q8_1", CQ_TYPE_Q4_1}, {"q8_0_q8_0", CQ_TYPE_Q8_0},
        {"f16_f32", CQ_TYPE_F16}, {"f32_f32", CQ_TYPE_F32}};
    static const int64_t quant_lengths[] = {32, 64, 96, 160, 544, 576, 1536, 4096};
    static const int64_t float_lengths[] = {1, 3, 7, 15, 16, 17, 31, 33, 100, 576, 1537, 4096};
    const int64_t maxn = 4096;
    void *w = malloc(cq_row_size(CQ_TYPE_F32, maxn)), *a = malloc(cq_row_size(CQ_TYPE_F32, maxn));
    float *wf = malloc(maxn * 4), *af = malloc(maxn * 4);
    for (int v = 1; v < N_VARIANTS; v++) {
        if (!cq_kernel_supported(variants[v].path)) {
            printf("skipping %s: this CPU lacks it\n", variants[v].path);
            continue;
        }
        for (int t = 0; t < 5; t++) {
            const int is_float = types[t].type == CQ_TYPE_F16 || types[t].type == CQ_TYPE_F32;
            const int64_t *lengths = is_float ? float_lengths : quant_lengths;
            const int nl = is_float ? 12 : 8;
            const dot_fn fns[] = {variants[v].q4_0, variants[v].q4_1, variants[v].q8_0, variants[v].f16, variants[v].f32};
            const dot_fn refs[] = {variants[0].q4_0, variants[0].q4_1, variants[0].q8_0, variants[0].f16, variants[0].f32};
            for (int k = 0; k < (is_float ? 2 : 4); k++) {
                for (int li = 0; li < nl; li++) {
                    const int64_t n = lengths[li];
                    const double mag = make_operands(types[t].type, n, (data_kind)k, w, a, wf, af);
                    const float ref = refs[t](n, w, a), got = fns[t](n, w, a);
                    const double bound = (is_float ? FLOAT_DOT_REL_BOUND : QUANT_DOT_REL_BOUND) * mag + 1e-30;
                    check(fabs((double)got - (double)ref) <= bound,
                          "%s %s n=%lld %s: got %.9g, scalar %.9g, |diff| %.3g > bound %.3g", variants[v].path,
                          types[t].name, (long long)n, data_names[k], got, ref, fabs((double)got - ref), bound);
                }
            }
        }
        // Exact extremes: all -128 x all -128 with unit scales sums to 16384 per element.
        {
            enum { NB = 37 };
            cq_block_q8_0 x[NB], y[NB];
            for (int b = 0; b < NB; b++) {
                x[b].d = y[b].d = cq_f32_to_f16(1.0f);
                memset(x[b].qs, 0x80, 32);
                memset(y[b].qs, 0x80, 32);
            }
            const float got = variants[v].q8_0(NB * 32, x, y);
            check(got == 16384.0f * 32 * NB, "%s q8_0_q8_0 all -128: got %.9g, want %.9g", variants[v].path, got, 16384.0f * 32 * NB);
            cq_block_q4_0 x4[NB];
            cq_block_q4_1 x41[NB];
            cq_block_q8_1 y1[NB];
            for (int b = 0; b < NB; b++) {
                x4[b].d = x41[b].d = y1[b].d = cq_f32_to_f16(1.0f);
                x41[b].m = cq_f32_to_f16(0.0f);
                y1[b].s = cq_f32_to_f16(-128.0f * 32);
                memset(x4[b].qs, 0x00, 16); // q - 8 = -8
                memset(x41[b].qs, 0xff, 16); // q = 15
                memset(y1[b].qs, 0x80, 32);
            }
            const float g40 = variants[v].q4_0(NB * 32, x4, y);
            check(g40 == 1024.0f * 32 * NB, "%s q4_0_q8_0 nibbles 0 x -128: got %.9g", variants[v].path, g40);
            const float g41 = variants[v].q4_1(NB * 32, x41, y1);
            check(g41 == -1920.0f * 32 * NB, "%s q4_1_q8_1 nibbles 0xF x -128: got %.9g", variants[v].path, g41);
        }
    }
    free(w); free(a); free(wf); free(af);
}

// ---- mat-vec ---------------------------------------------------------------------------------------

static void test_matvec(void) {
    static const int types[] = {CQ_TYPE_Q4_0, CQ_TYPE_Q4_1, CQ_TYPE_Q8_0, CQ_TYPE_F16, CQ_TYPE_F32};
    static const char *names[] = {"Q4_0", "Q4_1", "Q8_0", "F16", "F32"};
    const int64_t n = 576, rows = 37;
    float *x = malloc(n * 4), *wf = malloc(n * rows * 4), *y = malloc(rows * 4);
    for (int64_t i = 0; i < n; i++) x[i] = rnd_unit();
    for (int64_t i = 0; i < n * rows; i++) wf[i] = rnd_unit() * 0.1f;
    for (int t = 0; t < 5; t++) {
        const size_t rb = cq_row_size(types[t], n);
        uint8_t *w = malloc(rb * rows), *xq = malloc(cq_row_size(CQ_TYPE_F32, n));
        for (int64_t r = 0; r < rows; r++) cq_quantize_row(types[t], wf + r * n, w + r * rb, n);
        cq_quantize_row(cq_vec_dot_type(types[t]), x, xq, n);
        for (int64_t r = 0; r < rows; r++) y[r] = -12345.0f;
        int rc = cq_matvec(types[t], w, rb, xq, y, n, 5, 17) | cq_matvec(types[t], w, rb, xq, y, n, 17, 30);
        int ok = rc == 0;
        for (int64_t r = 0; r < rows; r++) {
            float want = -12345.0f;
            if (r >= 5 && r < 30) {
                switch (types[t]) {
                case CQ_TYPE_Q4_0: want = cq_vec_dot_q4_0_q8_0(n, w + r * rb, xq); break;
                case CQ_TYPE_Q4_1: want = cq_vec_dot_q4_1_q8_1(n, w + r * rb, xq); break;
                case CQ_TYPE_Q8_0: want = cq_vec_dot_q8_0_q8_0(n, w + r * rb, xq); break;
                case CQ_TYPE_F16: want = cq_vec_dot_f16_f32(n, w + r * rb, xq); break;
                default: want = cq_vec_dot_f32_f32(n, w + r * rb, xq); break;
                }
            }
            if (memcmp(&want, &y[r], 4) != 0) ok = 0;
        }
        check(ok, "matvec %s over rows [5,17)+[17,30) equals the row dots and leaves other rows alone", names[t]);
        // and it approximates the float mat-vec
        double worst = 0;
        for (int64_t r = 5; r < 30; r++) {
            double exact = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                exact += (double)wf[r * n + i] * x[i];
                mag += fabs((double)wf[r * n + i] * x[i]);
            }
            const double e = fabs(y[r] - exact) / mag;
            if (e > worst) worst = e;
        }
        const double bound = types[t] == CQ_TYPE_Q4_0 || types[t] == CQ_TYPE_Q4_1 ? 0.1 : types[t] == CQ_TYPE_Q8_0 ? 0.02 : 1e-3;
        check(worst < bound, "matvec %s close to the float product (worst rel err %.3g, bound %.3g)", names[t], worst, bound);
        free(w); free(xq);
    }
    check(cq_matvec(10, x, 4, x, y, n, 0, 1) != 0, "matvec refuses an unsupported type");
    free(x); free(wf); free(y);
}

// ---- mat-mat (several tokens) -----------------------------------------------------------------------

/// cq_matmul (dispatched, and each explicit variant) against the scalar reference dot of every
/// (row, token) pair: token counts around the tile sizes, row ranges with odd ends.
static void test_matmul(void) {
    static const int types[] = {CQ_TYPE_Q4_0, CQ_TYPE_Q4_1, CQ_TYPE_Q8_0, CQ_TYPE_F16, CQ_TYPE_F32};
    static const char *names[] = {"Q4_0", "Q4_1", "Q8_0", "F16", "F32"};
    static const int64_t token_counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 32, 37};
    static const int64_t lengths[] = {32, 576, 1536};
    const int64_t rows = 23, maxt = 37, maxn = 1536;
    float *x = malloc(maxn * 4), *wf = malloc(maxn * 4);
    float *y = malloc(rows * maxt * 4);
    typedef int (*mm_fn)(int, const void *, size_t, const void *, size_t, float *, size_t, int64_t, int64_t, int64_t, int64_t);
    static const struct { const char *name; mm_fn fn; } impls[] = {
        {"dispatched", cq_matmul},
#if defined(CQ_HAVE_AVX2_VARIANTS)
        {"avx2", cq_matmul_avx2},
#endif
    };
    for (size_t im = 0; im < sizeof impls / sizeof impls[0]; im++) {
        if (strcmp(impls[im].name, "avx2") == 0 && !cq_kernel_supported("avx2")) continue;
        for (int t = 0; t < 5; t++) {
            for (int li = 0; li < 3; li++) {
                const int64_t n = lengths[li];
                const size_t rb = cq_row_size(types[t], n), ab = cq_row_size(cq_vec_dot_type(types[t]), n);
                uint8_t *w = malloc(rb * rows), *a = malloc(ab * maxt);
                for (int64_t r = 0; r < rows; r++) {
                    for (int64_t i = 0; i < n; i++) wf[i] = rnd_unit() * (float)(1 + (i % 3));
                    cq_quantize_row(types[t], wf, w + r * rb, n);
                }
                for (int64_t k = 0; k < maxt; k++) {
                    for (int64_t i = 0; i < n; i++) x[i] = rnd_unit() * (k % 4 == 0 ? 100.0f : 0.5f);
                    cq_quantize_row(cq_vec_dot_type(types[t]), x, a + k * ab, n);
                }
                for (int ti = 0; ti < 10; ti++) {
                    const int64_t nt = token_counts[ti];
                    for (int64_t i = 0; i < rows * nt; i++) y[i] = -12345.0f;
                    const int rc = impls[im].fn(types[t], w, rb, a, ab, y, rows, n, 2, 21, nt);
                    int ok = rc == 0;
                    double worst = 0;
                    for (int64_t k = 0; k < nt && ok; k++) {
                        for (int64_t r = 0; r < rows; r++) {
                            const float got = y[k * rows + r];
                            if (r < 2 || r >= 21) {
                                if (got != -12345.0f) ok = 0;
                                continue;
                            }
                            float ref;
                            switch (types[t]) {
                            case CQ_TYPE_Q4_0: ref = cq_vec_dot_q4_0_q8_0_scalar(n, w + r * rb, a + k * ab); break;
                            case CQ_TYPE_Q4_1: ref = cq_vec_dot_q4_1_q8_1_scalar(n, w + r * rb, a + k * ab); break;
                            case CQ_TYPE_Q8_0: ref = cq_vec_dot_q8_0_q8_0_scalar(n, w + r * rb, a + k * ab); break;
                            case CQ_TYPE_F16: ref = cq_vec_dot_f16_f32_scalar(n, w + r * rb, a + k * ab); break;
                            default: ref = cq_vec_dot_f32_f32_scalar(n, w + r * rb, a + k * ab); break;
                            }
                            // magnitude: sum |w a| of the dequantized operands
                            float wd[1536], ad[1536];
                            cq_dequantize_row(types[t], w + r * rb, wd, n);
                            cq_dequantize_row(cq_vec_dot_type(types[t]), a + k * ab, ad, n);
                            double mag = 1e-30;
                            for (int64_t i = 0; i < n; i++) mag += fabs((double)wd[i] * ad[i]);
                            const int is_float = types[t] == CQ_TYPE_F16 || types[t] == CQ_TYPE_F32;
                            const double e = fabs((double)got - ref) / mag;
                            if (e > worst) worst = e;
                            if (e > (is_float ? FLOAT_DOT_REL_BOUND : QUANT_DOT_REL_BOUND)) ok = 0;
                        }
                    }
                    // A token's sums must not depend on the batch it came in (prefix KV reuse relies on it).
                    if (ok && nt > 1) {
                        float one[23];
                        for (int64_t k = 0; k < nt && ok; k++) {
                            impls[im].fn(types[t], w, rb, a + k * ab, ab, one, rows, n, 2, 21, 1);
                            if (memcmp(one + 2, y + k * rows + 2, 19 * sizeof(float)) != 0) ok = 0;
                        }
                        if (!ok) worst = -1;
                    }
                    check(ok, "matmul %s %s n=%lld tokens=%lld rows [2,21): within bound of the scalar dots, other rows "
                          "untouched, each token as if alone (worst rel err %.3g)", impls[im].name, names[t], (long long)n, (long long)nt, worst);
                }
                free(w); free(a);
            }
        }
    }
    check(cq_matmul(10, x, 4, x, 4, y, 1, 32, 0, 1, 1) != 0, "matmul refuses an unsupported type");
    free(x); free(wf); free(y);
}

// ---- repacked weights -------------------------------------------------------------------------------

static void force_activation_min(int atype, void *a, int64_t n);
static void sanitize_weight_row(int type, void *row, int64_t n);

typedef int (*rm_fn)(int, const void *, const void *, size_t, float *, size_t, int64_t, int64_t, int64_t, int64_t);
/// The repacked mat-mats under test: the dispatched one and every path's kernel this build has.
static const struct { const char *name; rm_fn fn; } repacked_impls[] = {
    {"dispatched", cq_matmul_repacked},
#if defined(CQ_HAVE_AVX2_VARIANTS)
    {"avx2", cq_matmul_repacked_avx2},
    {"avx512-vnni", cq_matmul_repacked_avx512_vnni},
#endif
#if defined(CQ_HAVE_NEON_VARIANTS)
    {"neon-dotprod", cq_matmul_repacked_neon_dotprod},
#endif
};
enum { N_REPACKED_IMPLS = sizeof repacked_impls / sizeof repacked_impls[0] };

/// Whether the repacked kernel `im` runs on this CPU (the dispatched one always does).
static int repacked_impl_runs(size_t im) {
    return strcmp(repacked_impls[im].name, "dispatched") == 0 || cq_kernel_supported(repacked_impls[im].name);
}

/// The plain scalar vec-dot of a repackable type (the reference the repacked one is held to).
static float plain_scalar_dot(int type, int64_t n, const void *w, const void *a) {
    switch (type) {
    case CQ_TYPE_Q4_0: return cq_vec_dot_q4_0_q8_0_scalar(n, w, a);
    case CQ_TYPE_Q4_1: return cq_vec_dot_q4_1_q8_1_scalar(n, w, a);
    case CQ_TYPE_Q5_0: return cq_vec_dot_q5_0_q8_0_scalar(n, w, a);
    case CQ_TYPE_Q5_1: return cq_vec_dot_q5_1_q8_1_scalar(n, w, a);
    case CQ_TYPE_Q8_0: return cq_vec_dot_q8_0_q8_0_scalar(n, w, a);
    case CQ_TYPE_Q6_K: return cq_vec_dot_q6_K_q8_K_scalar(n, w, a);
    default: return cq_vec_dot_q4_K_q8_K_scalar(n, w, a);
    }
}

/// The worst error of the repacked reference's `want` (rows x tokens, token-major) against the
/// plain scalar dots of the plain matrix `w`, relative to sum |x y| of the dequantized operands.
/// f and g hold n floats each (scratch).
static double repacked_reference_error(int type, const uint8_t *w, size_t rb, const uint8_t *a, size_t ab,
                                       const float *want, int64_t rows, int64_t n, int64_t tokens, float *f, float *g) {
    double worst = 0;
    for (int64_t k = 0; k < tokens; k++) {
        cq_dequantize_row(cq_vec_dot_type(type), a + k * ab, g, n);
        for (int64_t r = 0; r < rows; r++) {
            cq_dequantize_row(type, w + r * rb, f, n);
            double mag = 1e-30;
            for (int64_t i = 0; i < n; i++) mag += fabs((double)f[i] * g[i]);
            const double ref = plain_scalar_dot(type, n, w + r * rb, a + k * ab);
            const double e = fabs((double)want[k * rows + r] - ref) / mag;
            if (e > worst) worst = e;
        }
    }
    return worst;
}

/// Runs repacked kernel `im` on rows [lo, hi) of the repacked matrix `wr` for `tokens` tokens into
/// y (rows x tokens, pre-filled with a sentinel): 1 when those rows equal the reference's `want` bit
/// for bit and every other row still holds the sentinel.
static int repacked_matches_reference(size_t im, int type, const uint8_t *wr, const uint8_t *a, size_t ab,
                                      const float *want, float *y, int64_t rows, int64_t n, int64_t lo, int64_t hi,
                                      int64_t tokens) {
    const float sentinel = -12345.0f;
    for (int64_t i = 0; i < rows * tokens; i++) y[i] = sentinel;
    int good = repacked_impls[im].fn(type, wr, a, ab, y, (size_t)rows, n, lo, hi, tokens) == 0;
    for (int64_t k = 0; k < tokens && good; k++) {
        for (int64_t r = 0; r < rows; r++) {
            const float expect = r >= lo && r < hi ? want[k * rows + r] : sentinel;
            if (memcmp(&y[k * rows + r], &expect, 4) != 0) good = 0;
        }
    }
    return good;
}

/// cq_repack and the repacked kernels (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K): the layout round-trips
/// (every row dequantizes to the same floats as the plain row), the scalar reference is within
/// bound of the plain scalar dots, and the dispatched kernel and every repacked kernel this CPU
/// runs (avx2, avx512-vnni, neon-dotprod) equal the reference bit for bit for every token count and
/// a row range inside the matrix, leaving other rows alone; misaligned ranges and other types are
/// refused.
static void test_repack(void) {
    static const int types[] = {CQ_TYPE_Q4_0, CQ_TYPE_Q4_1, CQ_TYPE_Q5_0, CQ_TYPE_Q5_1, CQ_TYPE_Q8_0, CQ_TYPE_Q4_K,
                                CQ_TYPE_Q6_K};
    static const char *names[] = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q6_K"};
    static const int64_t lengths[] = {32, 96, 576}, k_lengths[] = {256, 768, 2304};
    static const int64_t token_counts[] = {1, 2, 3, 4, 5, 8, 9, 13};
    const int64_t rows = 24, maxt = 13, maxn = 2304;
    float *f = malloc(maxn * 4), *g = malloc(maxn * 4);
    float *y = malloc(rows * maxt * 4), *want = malloc(rows * maxt * 4);
    // Paths with a repacked kernel prefer the repacked layouts; plain NEON and scalar do not.
    const int has_repacked = strcmp(cq_kernel_name(), "avx2") == 0 || strcmp(cq_kernel_name(), "avx512-vnni") == 0 ||
                             strcmp(cq_kernel_name(), "neon-dotprod") == 0;
    for (int t = 0; t < (int)(sizeof types / sizeof types[0]); t++) {
        const int preferred = cq_repack_preferred(types[t]);
        check(preferred == has_repacked, "repack of %s preferred on %s: %d", names[t], cq_kernel_name(), preferred);
        const int is_q6 = types[t] == CQ_TYPE_Q6_K, is_k = types[t] == CQ_TYPE_Q4_K || is_q6;
        const int is_q5 = types[t] == CQ_TYPE_Q5_0 || types[t] == CQ_TYPE_Q5_1;
        for (int li = 0; li < 3; li++) {
            const int64_t n = is_k ? k_lengths[li] : lengths[li];
            const int atype = cq_vec_dot_type(types[t]);
            const size_t rb = cq_row_size(types[t], n), ab = cq_row_size(atype, n);
            check(cq_repacked_size(types[t], rows, n) == rows * rb, "repacked %s %lldx%lld keeps the size", names[t],
                  (long long)rows, (long long)n);
            // 0: quantized floats; 1: random bytes, sane scales; Q5 also 2: every quant 31 (even
            // rows) or 0 (odd rows), activations all -127 (even tokens) or -128 (odd tokens), where
            // the AVX2 kernel's int16 sums peak. Q4_K (no quantizer here): 0: random bytes, sane d
            // and dmin; 1: every scale, min and quant at its top (0xFF bytes), odd tokens'
            // activations all -127 (integer sums past 2^24, rounded when converted). Q6_K (no quantizer
            // either): 0: random bytes, sane d; 1: every quant 63 and scale -128 (even rows) or every
            // quant 0 and scale 127 (odd rows), activations all -127 (even tokens) or -128 (odd
            // tokens): the AVX2 kernel's int16 sums of four products peak at 4 * 63 * -128, and the
            // sums at -2^27.
            for (int kind = 0; kind < (is_q5 ? 3 : 2); kind++) {
                const char *kind_name = is_k ? (kind ? "extremes" : "random bytes")
                                             : (kind == 2 ? "extremes" : kind ? "random bytes" : "quantized");
                uint8_t *w = malloc(rb * rows), *wr = malloc(rb * rows), *a = malloc(ab * maxt);
                for (int64_t r = 0; r < rows; r++) {
                    if (is_q6) {
                        if (kind == 0) {
                            rnd_bytes(w + r * rb, rb);
                        } else {
                            for (int64_t b = 0; b < n / CQ_QK_K; b++) {
                                uint8_t *blk = w + r * rb + (size_t)b * sizeof(cq_block_q6_K);
                                memset(blk, r % 2 ? 0x00 : 0xff, 192);      // ql, qh
                                memset(blk + 192, r % 2 ? 0x7f : 0x80, 16); // scales
                            }
                        }
                        sanitize_weight_row(types[t], w + r * rb, n);
                        continue;
                    }
                    if (is_k) {
                        if (kind == 0) rnd_bytes(w + r * rb, rb);
                        else memset(w + r * rb, 0xff, rb);
                        for (int64_t b = 0; b < n / CQ_QK_K; b++) {
                            const cq_f16 d = cq_f32_to_f16(1e-4f + (float)(rnd_u32() % 500) * 1e-4f);
                            const cq_f16 dmin = cq_f32_to_f16(1e-4f + (float)(rnd_u32() % 500) * 1e-4f);
                            memcpy(w + r * rb + (size_t)b * sizeof(cq_block_q4_K), &d, 2);
                            memcpy(w + r * rb + (size_t)b * sizeof(cq_block_q4_K) + 2, &dmin, 2);
                        }
                        continue;
                    }
                    for (int64_t i = 0; i < n; i++) f[i] = rnd_unit() * (float)(1 + (i + r) % 4);
                    cq_quantize_row(types[t], f, w + r * rb, n);
                    if (kind >= 1) {
                        const size_t bb = rb / (size_t)(n / 32);
                        const size_t head = types[t] == CQ_TYPE_Q4_1 || types[t] == CQ_TYPE_Q5_1 ? 4 : 2;
                        for (int64_t b = 0; b < n / 32; b++) {
                            uint8_t *q = w + r * rb + (size_t)b * bb + head;
                            if (kind == 1) rnd_bytes(q, bb - head);
                            else memset(q, r % 2 ? 0x00 : 0xff, bb - head);
                        }
                    }
                }
                for (int64_t k = 0; k < maxt; k++) {
                    for (int64_t i = 0; i < n; i++) f[i] = rnd_unit() * (k % 3 == 0 ? 50.0f : 0.5f);
                    const int extreme = (is_k && kind == 1 && (is_q6 || k % 2 == 1)) || kind == 2;
                    if (extreme) for (int64_t i = 0; i < n; i++) f[i] = -1.0f;
                    cq_quantize_row(atype, f, a + k * ab, n);
                    if ((kind == 2 || (is_q6 && kind == 1)) && k % 2 == 1) force_activation_min(atype, a + k * ab, n);
                }
                check(cq_repack(types[t], w, rb, wr, n, 0, rows) == 0, "repack %s n=%lld", names[t], (long long)n);
                int same = 1;
                for (int64_t r = 0; r < rows; r++) {
                    cq_dequantize_row(types[t], w + r * rb, f, n);
                    if (cq_dequantize_row_repacked(types[t], wr, n, r, g) != 0 || memcmp(f, g, (size_t)n * 4) != 0) same = 0;
                }
                check(same, "repacked %s n=%lld %s: every row dequantizes as the plain row", names[t], (long long)n,
                      kind_name);
                // the reference against the plain scalar dots
                const int ok = cq_matmul_repacked_scalar(types[t], wr, a, ab, want, rows, n, 0, rows, maxt) == 0;
                const double worst =
                    ok ? repacked_reference_error(types[t], w, rb, a, ab, want, rows, n, maxt, f, g) : 0;
                check(ok && worst <= QUANT_DOT_REL_BOUND, "repacked %s n=%lld %s: scalar reference within bound of the "
                      "plain dots (worst rel err %.3g)", names[t], (long long)n, kind_name, worst);
                for (size_t im = 0; im < N_REPACKED_IMPLS; im++) {
                    if (!repacked_impl_runs(im)) continue;
                    for (int ti = 0; ti < 8; ti++) {
                        const int64_t nt = token_counts[ti];
                        check(repacked_matches_reference(im, types[t], wr, a, ab, want, y, rows, n, 8, 24, nt),
                              "repacked %s %s n=%lld %s tokens=%lld rows [8,24): equal to the reference bit for bit, "
                              "rows [0,8) untouched", repacked_impls[im].name, names[t], (long long)n, kind_name,
                              (long long)nt);
                    }
                    check(repacked_impls[im].fn(types[t], wr, a, ab, y, rows, n, 4, 24, 1) != 0 &&
                          repacked_impls[im].fn(types[t], wr, a, ab, y, rows, n, 0, 12, 1) != 0,
                          "repacked %s %s refuses row ranges that are not whole groups of 8", repacked_impls[im].name,
                          names[t]);
                }
                free(w); free(wr); free(a);
            }
        }
    }
    check(cq_repacked_size(CQ_TYPE_Q5_K, 8, 256) == 0 && cq_repacked_size(CQ_TYPE_Q4_1, 12, 32) == 0 &&
          cq_repacked_size(CQ_TYPE_Q4_0, 12, 32) == 0 && cq_repacked_size(CQ_TYPE_Q8_0, 8, 48) == 0 &&
          cq_repacked_size(CQ_TYPE_Q5_0, 12, 32) == 0 && cq_repacked_size(CQ_TYPE_Q5_1, 8, 48) == 0 &&
          cq_repacked_size(CQ_TYPE_Q4_K, 8, 288) == 0 && cq_repacked_size(CQ_TYPE_Q4_K, 12, 256) == 0 &&
          cq_repacked_size(CQ_TYPE_Q6_K, 8, 288) == 0 && cq_repacked_size(CQ_TYPE_Q6_K, 12, 256) == 0 &&
          !cq_repack_preferred(CQ_TYPE_Q5_K),
          "repacking refused for Q5_K, rows not a multiple of 8, columns not a multiple of the block");
    for (int k = 0; k < 2; k++) {
        const int type = k ? CQ_TYPE_Q6_K : CQ_TYPE_Q4_K;
        check(cq_repack(type, f, cq_get_type_traits(type)->type_size, g, 288, 0, 8) != 0 &&
              cq_matmul_repacked_scalar(type, f, f, 4, y, 1, 288, 0, 8, 1) != 0 &&
              cq_matmul_repacked(type, f, f, 4, y, 1, 288, 0, 8, 1) != 0,
              "repacked %s refuses rows that are not whole super-blocks", cq_get_type_traits(type)->name);
    }
    const int before = cq_repack_preferred(CQ_TYPE_Q4_1);
    setenv("OUTPOST_REPACK", "0", 1);
    const int off = cq_repack_preferred(CQ_TYPE_Q4_1);
    setenv("OUTPOST_REPACK", "1", 1);
    const int on = cq_repack_preferred(CQ_TYPE_Q4_1);
    unsetenv("OUTPOST_REPACK");
    check(off == 0 && on == before, "OUTPOST_REPACK=0 turns repacking off (preferred %d, with 0: %d, with 1: %d)", before,
          off, on);
    check(cq_repack(CQ_TYPE_F32, f, 4, g, 32, 0, 8) != 0 && cq_matmul_repacked(CQ_TYPE_F16, f, f, 4, y, 1, 32, 0, 8, 1) != 0,
          "repack and the repacked mat-mat refuse other types");
    free(f); free(g); free(y); free(want);
}

/// Q5_0 and Q5_1 at the shapes of SmolLM2's Q5 matrices (576 columns x 2048 rows, 1536 columns x
/// 576 rows), and Q6_K at the shapes with whole super-blocks (1536 columns x 576 rows, its
/// ffn_down; 768 columns x 2048 rows, an odd number of super-blocks): the reference within bound of
/// the plain scalar dots, and every repacked kernel this CPU runs equal to it bit for bit for
/// 1...9 tokens, over every row and over a range of whole groups inside the matrix (rows outside
/// it untouched).
static void test_repack_model_shapes(void) {
    static const struct { int type; int64_t rows, n; } cases[] = {
        {CQ_TYPE_Q5_0, 2048, 576}, {CQ_TYPE_Q5_1, 2048, 576}, {CQ_TYPE_Q5_0, 576, 1536},
        {CQ_TYPE_Q5_1, 576, 1536}, {CQ_TYPE_Q6_K, 576, 1536}, {CQ_TYPE_Q6_K, 2048, 768}};
    enum { MAXT = 9 };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int64_t rows = cases[ci].rows, n = cases[ci].n;
        float *f = malloc((size_t)n * 4), *g = malloc((size_t)n * 4);
        float *y = malloc((size_t)(rows * MAXT) * 4), *want = malloc((size_t)(rows * MAXT) * 4);
        const int type = cases[ci].type, atype = cq_vec_dot_type(type);
        const char *name = cq_get_type_traits(type)->name;
        const size_t rb = cq_row_size(type, n), ab = cq_row_size(atype, n);
        uint8_t *w = malloc(rb * (size_t)rows), *wr = malloc(rb * (size_t)rows), *a = malloc(ab * MAXT);
        for (int64_t r = 0; r < rows; r++) {
            if (type == CQ_TYPE_Q6_K) { // no quantizer here: random quants and scales, sane d
                rnd_bytes(w + r * rb, rb);
                sanitize_weight_row(type, w + r * rb, n);
                continue;
            }
            for (int64_t i = 0; i < n; i++) f[i] = rnd_unit() * (float)(1 + (i + r) % 4);
            cq_quantize_row(type, f, w + r * rb, n);
        }
        for (int64_t k = 0; k < MAXT; k++) {
            for (int64_t i = 0; i < n; i++) f[i] = rnd_unit() * (k % 3 == 0 ? 50.0f : 0.5f);
            cq_quantize_row(atype, f, a + k * ab, n);
        }
        check(cq_repacked_size(type, rows, n) == rb * (size_t)rows && cq_repack(type, w, rb, wr, n, 0, rows) == 0,
              "repack %s %lldx%lld", name, (long long)rows, (long long)n);
        const int ok = cq_matmul_repacked_scalar(type, wr, a, ab, want, (size_t)rows, n, 0, rows, MAXT) == 0;
        const double worst = ok ? repacked_reference_error(type, w, rb, a, ab, want, rows, n, MAXT, f, g) : 0;
        check(ok && worst <= QUANT_DOT_REL_BOUND, "repacked %s %lldx%lld: scalar reference within bound of the "
              "plain dots (worst rel err %.3g)", name, (long long)rows, (long long)n, worst);
        for (size_t im = 0; im < N_REPACKED_IMPLS; im++) {
            if (!repacked_impl_runs(im)) continue;
            for (int64_t nt = 1; nt <= MAXT; nt++) {
                for (int whole = 0; whole < 2; whole++) {
                    const int64_t lo = whole ? 0 : 8, hi = whole ? rows : rows - 16;
                    check(repacked_matches_reference(im, type, wr, a, ab, want, y, rows, n, lo, hi, nt),
                          "repacked %s %s %lldx%lld tokens=%lld rows [%lld,%lld): equal to the reference "
                          "bit for bit, other rows untouched", repacked_impls[im].name, name, (long long)rows,
                          (long long)n, (long long)nt, (long long)lo, (long long)hi);
                }
            }
        }
        free(w); free(wr); free(a);
        free(f); free(g); free(y); free(want);
    }
}

// ---- activation quantizers ---------------------------------------------------------------------------

/// The dispatched Q8_0 / Q8_1 / Q8_K quantizers (and the AVX2 and NEON ones) give the reference's
/// bytes, ties included.
static void test_activation_quantizers(void) {
    enum { N = 32 * 40 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = rnd_unit() * (float)(1 + i % 7) * 3.0f;
    // blocks 0-3: exact ties after scaling (amax 127 gives d = 1, so k + 0.5 is a tie)
    for (int i = 0; i < 128; i++) x[i] = (i % 32 == 0) ? 127.0f : (float)((int)(rnd_u32() % 200) - 100) + 0.5f;
    for (int i = 128; i < 160; i++) x[i] = 0.0f; // all-zero block
    uint8_t want[36 * 40], got[36 * 40];
    for (int t = 0; t < 2; t++) {
        const int type = t == 0 ? CQ_TYPE_Q8_0 : CQ_TYPE_Q8_1;
        const size_t bytes = cq_row_size(type, N);
        if (t == 0) cq_quantize_row_q8_0(x, want, N); else cq_quantize_row_q8_1(x, want, N);
        memset(got, 0xaa, sizeof got);
        cq_quantize_row(type, x, got, N);
        check(memcmp(want, got, bytes) == 0, "dispatched quantize %s (%s) equals the reference byte for byte",
              t == 0 ? "Q8_0" : "Q8_1", cq_kernel_name());
#if defined(CQ_HAVE_AVX2_VARIANTS)
        if (cq_kernel_supported("avx2")) {
            memset(got, 0xaa, sizeof got);
            if (t == 0) cq_quantize_row_q8_0_avx2(x, got, N); else cq_quantize_row_q8_1_avx2(x, got, N);
            check(memcmp(want, got, bytes) == 0, "avx2 quantize %s equals the reference byte for byte", t == 0 ? "Q8_0" : "Q8_1");
        }
#endif
#if defined(CQ_HAVE_NEON_VARIANTS)
        memset(got, 0xaa, sizeof got);
        if (t == 0) cq_quantize_row_q8_0_neon(x, got, N); else cq_quantize_row_q8_1_neon(x, got, N);
        check(memcmp(want, got, bytes) == 0, "neon quantize %s equals the reference byte for byte", t == 0 ? "Q8_0" : "Q8_1");
#endif
    }
    // Q8_K (ties to even): block 0 ties (max 127 gives iscale -1), block 1 two largest magnitudes of
    // opposite signs (the first one's sign counts), block 2 zeros, block 3 subnormals (iscale
    // overflows), block 4 a NaN with a payload, block 5 ties again at another scale.
    enum { NK = 256 * 6 };
    static float xk[NK];
    for (int i = 0; i < NK; i++) xk[i] = rnd_unit() * (float)(1 + i % 5);
    for (int i = 0; i < 256; i++) xk[i] = i == 7 ? -127.0f : (float)((int)(rnd_u32() % 200) - 100) + 0.5f;
    for (int i = 256; i < 512; i++) xk[i] = rnd_unit();
    xk[256 + 9] = -3.0f;
    xk[256 + 200] = 3.0f;
    for (int i = 512; i < 768; i++) xk[i] = 0.0f;
    for (int i = 768; i < 1024; i++) xk[i] = rnd_unit() * 1e-39f;
    const uint32_t nan_bits = 0x7fc00123u;
    memcpy(&xk[1024 + 17], &nan_bits, 4);
    for (int i = 1280; i < 1536; i++) xk[i] = i == 1300 ? 254.0f : (float)((int)(rnd_u32() % 200) - 100) + 1.0f;
    static uint8_t wantk[292 * 6], gotk[292 * 6];
    cq_quantize_row_q8_K(xk, wantk, NK);
    memset(gotk, 0xaa, sizeof gotk);
    cq_quantize_row(CQ_TYPE_Q8_K, xk, gotk, NK);
    check(memcmp(wantk, gotk, sizeof wantk) == 0, "dispatched quantize Q8_K (%s) equals the reference byte for byte",
          cq_kernel_name());
#if defined(CQ_HAVE_NEON_VARIANTS)
    memset(gotk, 0xaa, sizeof gotk);
    cq_quantize_row_q8_K_neon(xk, gotk, NK);
    size_t first = sizeof wantk;
    for (size_t i = 0; i < sizeof wantk; i++) if (wantk[i] != gotk[i]) { first = i; break; }
    check(first == sizeof wantk, "neon quantize Q8_K equals the reference byte for byte (first difference at byte %zu)",
          first);
#endif
#if defined(CQ_HAVE_AVX2_VARIANTS)
    if (cq_kernel_supported("avx2")) {
        memset(gotk, 0xaa, sizeof gotk);
        cq_quantize_row_q8_K_avx2(xk, gotk, NK);
        size_t first_avx2 = sizeof wantk;
        for (size_t i = 0; i < sizeof wantk; i++) if (wantk[i] != gotk[i]) { first_avx2 = i; break; }
        check(first_avx2 == sizeof wantk, "avx2 quantize Q8_K equals the reference byte for byte (first difference at "
              "byte %zu)", first_avx2);
        // More edges: an infinity (iscale -0, so NaN and zero products), all NaNs (a zero block, as all
        // zeros), all -0.0, the largest magnitude in the last element, the extreme of +-127 exactly, and
        // products iscale * x that round to a tie k + 0.5 in f32 but are not one exactly (a multiply
        // fused into the add of 12582912 rounds those differently).
        enum { NE = 256 * 6 };
        static float xe[NE];
        static uint8_t wante[292 * 6], gote[292 * 6];
        for (int i = 0; i < NE; i++) xe[i] = rnd_unit() * 4.0f;
        xe[5] = INFINITY;
        xe[77] = -INFINITY;
        for (int i = 256; i < 512; i++) {
            const uint32_t bits = (i % 2 ? 0xffc00000u : 0x7fc00000u) | (uint32_t)i;
            memcpy(&xe[i], &bits, 4);
        }
        for (int i = 512; i < 768; i++) xe[i] = -0.0f;
        xe[1023] = -9.0f;
        for (int i = 1024; i < 1280; i++) xe[i] = i % 3 == 0 ? -1.0f : i % 3 == 1 ? 1.0f : 0.5f;
        xe[1280] = -3.0f;
        const float iscale = -127.0f / xe[1280];
        int found = 1;
        for (int k = -120; k < 120 && found < 256; k++) {
            float v = ((float)k + 0.5f) / iscale;
            for (int step = 0; step < 8 && found < 256; step++, v = nextafterf(v, INFINITY)) {
                const double exact = (double)iscale * (double)v; // exact: 24 + 24 bits
                if ((float)exact == (float)k + 0.5f && exact != (double)k + 0.5 && fabsf(v) < 3.0f) xe[1280 + found++] = v;
            }
            v = ((float)k + 0.5f) / iscale;
            for (int step = 0; step < 8 && found < 256; step++, v = nextafterf(v, -INFINITY)) {
                const double exact = (double)iscale * (double)v;
                if ((float)exact == (float)k + 0.5f && exact != (double)k + 0.5 && fabsf(v) < 3.0f) xe[1280 + found++] = v;
            }
        }
        check(found > 32, "Q8_K edge: %d inexact products that round to ties found", found - 1);
        cq_quantize_row_q8_K(xe, wante, NE);
        memset(gote, 0xaa, sizeof gote);
        cq_quantize_row_q8_K_avx2(xe, gote, NE);
        first_avx2 = sizeof wante;
        for (size_t i = 0; i < sizeof wante; i++) if (wante[i] != gote[i]) { first_avx2 = i; break; }
        check(first_avx2 == sizeof wante, "avx2 quantize Q8_K equals the reference on infinities, NaNs, -0.0, "
              "+-127 and near-ties (first difference at byte %zu)", first_avx2);
    }
#endif
}

// ---- every type on every path (the type table) --------------------------------------------------------

static const char *all_paths[] = {"avx2", "avx512-vnni", "neon", "neon-dotprod"};
static const int weight_types[] = {CQ_TYPE_Q4_0, CQ_TYPE_Q4_1, CQ_TYPE_Q5_0, CQ_TYPE_Q5_1, CQ_TYPE_Q8_0,
                                   CQ_TYPE_Q4_K, CQ_TYPE_Q5_K, CQ_TYPE_Q6_K};

/// Puts sane f16 scales (and mins) into every block of a random-bytes weight row of `type`:
/// d in (0, 0.05], mins in [-0.5, 0.5] (Q5_1) or dmin in (0, 0.05] (K types).
static void sanitize_weight_row(int type, void *row, int64_t n) {
    const cq_type_traits *t = cq_get_type_traits(type);
    for (int64_t b = 0; b < n / t->block_size; b++) {
        uint8_t *p = (uint8_t *)row + (size_t)b * t->type_size;
        const cq_f16 d = cq_f32_to_f16(1e-4f + (float)(rnd_u32() % 500) * 1e-4f);
        const cq_f16 d2 = cq_f32_to_f16(1e-4f + (float)(rnd_u32() % 500) * 1e-4f);
        const cq_f16 m = cq_f32_to_f16(rnd_unit() * 0.5f);
        switch (type) {
        case CQ_TYPE_Q6_K: memcpy(p + 208, &d, 2); break;
        case CQ_TYPE_Q4_K: case CQ_TYPE_Q5_K: memcpy(p, &d, 2); memcpy(p + 2, &d2, 2); break;
        case CQ_TYPE_Q4_1: case CQ_TYPE_Q5_1: memcpy(p, &d, 2); memcpy(p + 2, &m, 2); break;
        default: memcpy(p, &d, 2); break;
        }
    }
}

/// Every quant of an activation row of `atype` (Q8_0, Q8_1, Q8_K) set to -128, the value no
/// quantizer makes and where int8 products peak, with s (Q8_1) and bsums (Q8_K) to match.
static void force_activation_min(int atype, void *a, int64_t n) {
    const cq_type_traits *ta = cq_get_type_traits(atype);
    for (int64_t b = 0; b < n / ta->block_size; b++) {
        uint8_t *p = (uint8_t *)a + (size_t)b * ta->type_size;
        if (atype == CQ_TYPE_Q8_K) {
            const int16_t bsum = -128 * 16;
            memset(p + 4, 0x80, CQ_QK_K);
            for (int j = 0; j < CQ_QK_K / 16; j++) memcpy(p + 4 + CQ_QK_K + 2 * j, &bsum, 2);
        } else if (atype == CQ_TYPE_Q8_1) {
            cq_f16 d;
            memcpy(&d, p, 2);
            const cq_f16 s = cq_f32_to_f16(cq_f16_to_f32(d) * (-128.0f * CQ_QK));
            memcpy(p + 2, &s, 2);
            memset(p + 4, 0x80, CQ_QK);
        } else {
            memset(p + 2, 0x80, CQ_QK);
        }
    }
}

/// Weight row of `type` (random bytes with sane scales, or every quant byte 0x00 / 0xFF) and an
/// activation row (quantized by the reference, or all -128/127 extremes); kind 0: random weights,
/// activations quantized; 1: weights 0x00, activations +/-127; 2: weights 0xFF, activations -127;
/// 3: random weights, activations -128. Returns sum |x y| of the dequantized operands.
static double make_typed_operands(int type, int64_t n, int kind, void *w, void *a, float *wf, float *af) {
    const int atype = cq_vec_dot_type(type);
    const cq_type_traits *tw = cq_get_type_traits(type), *ta = cq_get_type_traits(atype);
    const size_t wbytes = cq_row_size(type, n);
    if (kind == 0 || kind == 3) rnd_bytes(w, wbytes);
    else memset(w, kind == 1 ? 0x00 : 0xff, wbytes);
    if (type == CQ_TYPE_Q6_K && (kind == 1 || kind == 2)) { // keep the int8 scales sane: +/-127 on extremes
        for (int64_t b = 0; b < n / CQ_QK_K; b++) memset((uint8_t *)w + (size_t)b * 210 + 192, kind == 1 ? 0x81 : 0x7f, 16);
    }
    sanitize_weight_row(type, w, n);
    float *tmp = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) tmp[i] = kind == 0 ? rnd_unit() * (float)(1 + i % 7) : (i % 2 ? 1.0f : -1.0f);
    if (kind == 2) for (int64_t i = 0; i < n; i++) tmp[i] = -1.0f; // every activation at the extreme
    ta->from_float_ref(tmp, a, n);
    if (kind == 3) force_activation_min(atype, a, n);
    free(tmp);
    tw->to_float(w, wf, n);
    ta->to_float(a, af, n);
    double mag = 0;
    for (int64_t i = 0; i < n; i++) mag += fabs((double)wf[i] * (double)af[i]);
    return mag;
}

/// For every path this CPU runs and every weight type: the path has a vec-dot, and it agrees with
/// the scalar reference within QUANT_DOT_REL_BOUND of sum |x y| (the integer sums are exact, only
/// the float accumulation order may differ); the path's activation quantizers give the
/// reference's bytes. Row lengths: one block, odd block counts, the model's widths (the lengths
/// below 256 only for the 32-element block types).
static void test_type_table(void) {
    static const int64_t lengths[] = {32, 96, 544, 256, 512, 768, 1536, 2304, 4096};
    const int64_t maxn = 4096;
    void *w = malloc(cq_row_size(CQ_TYPE_F32, maxn)), *a = malloc(cq_row_size(CQ_TYPE_F32, maxn));
    float *wf = malloc(maxn * 4), *af = malloc(maxn * 4);
    for (size_t t = 0; t < sizeof weight_types / sizeof weight_types[0]; t++) {
        const int type = weight_types[t];
        check(cq_type_supported(type), "type %s runs on the dispatched path %s", cq_get_type_traits(type)->name,
              cq_kernel_name());
    }
    check(!cq_type_supported(10) && !cq_type_supported(CQ_TYPE_Q8_K) && !cq_type_supported(-1) &&
              !cq_type_supported(99),
          "Q2_K, Q8_K (an activation type), -1 and 99 are not weight types here");
    check(cq_row_size(CQ_TYPE_Q4_K, 576) == 0 && cq_row_size(CQ_TYPE_Q4_K, 512) == 288 &&
              cq_row_size(CQ_TYPE_Q6_K, 256) == 210 && cq_row_size(CQ_TYPE_Q5_0, 64) == 44,
          "row sizes: K types need whole super-blocks");
    for (size_t p = 0; p < sizeof all_paths / sizeof all_paths[0]; p++) {
        const char *path = all_paths[p];
        if (!cq_kernel_supported(path)) continue;
        for (size_t t = 0; t < sizeof weight_types / sizeof weight_types[0]; t++) {
            const int type = weight_types[t];
            const char *name = cq_get_type_traits(type)->name;
            const dot_fn fn = cq_vec_dot_variant(path, type), ref = cq_vec_dot_variant("scalar", type);
            check(fn != NULL, "%s has a vec-dot for %s", path, name);
            if (fn == NULL) continue;
            for (int kind = 0; kind < 4; kind++) {
                for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                    const int64_t n = lengths[li];
                    if (n % cq_block_size(type) != 0) continue;
                    const double mag = make_typed_operands(type, n, kind, w, a, wf, af);
                    const float want = ref(n, w, a), got = fn(n, w, a);
                    const double bound = QUANT_DOT_REL_BOUND * mag + 1e-30;
                    check(fabs((double)got - (double)want) <= bound,
                          "%s %s n=%lld kind %d: got %.9g, scalar %.9g, |diff| %.3g > bound %.3g", path, name,
                          (long long)n, kind, got, want, fabs((double)got - want), bound);
                }
            }
        }
        static const int act_types[] = {CQ_TYPE_Q8_0, CQ_TYPE_Q8_1, CQ_TYPE_Q8_K};
        for (int t = 0; t < 3; t++) {
            const int type = act_types[t];
            void (*q)(const float *, void *, int64_t) = cq_quantize_variant(path, type);
            if (q == NULL) continue;
            enum { N = 256 * 6 };
            float x[N];
            for (int i = 0; i < N; i++) x[i] = rnd_unit() * (float)(1 + i % 7) * 3.0f;
            for (int i = 0; i < 256; i++) x[i] = (i == 0) ? 127.0f : (float)((int)(rnd_u32() % 200) - 100) + 0.5f;
            for (int i = 256; i < 512; i++) x[i] = 0.0f;
            for (int i = 512; i < 768; i++) x[i] = i == 600 ? -8.0f : rnd_unit();
            static uint8_t want[292 * 6], got[292 * 6];
            memset(want, 0x55, sizeof want);
            memset(got, 0x55, sizeof got);
            cq_get_type_traits(type)->from_float_ref(x, want, N);
            q(x, got, N);
            check(memcmp(want, got, cq_row_size(type, N)) == 0, "%s quantize %s equals the reference byte for byte",
                  path, cq_get_type_traits(type)->name);
        }
    }
    free(w); free(a); free(wf); free(af);
}

/// cq_matmul on every type through the dispatched path equals the same path's vec-dot per pair.
static void test_matmul_all_types(void) {
    const int64_t n = 768, rows = 16, tokens = 5;
    for (size_t t = 0; t < sizeof weight_types / sizeof weight_types[0]; t++) {
        const int type = weight_types[t], atype = cq_vec_dot_type(type);
        const size_t rb = cq_row_size(type, n), ab = cq_row_size(atype, n);
        uint8_t *w = malloc(rb * rows), *x = malloc(ab * tokens);
        float *y = malloc(sizeof(float) * rows * tokens), *wf = malloc(n * 4), *af = malloc(n * 4);
        for (int64_t r = 0; r < rows; r++) make_typed_operands(type, n, 0, w + r * rb, x + (r % tokens) * ab, wf, af);
        check(cq_matmul(type, w, rb, x, ab, y, rows, n, 3, rows, tokens) == 0, "cq_matmul runs %s",
              cq_get_type_traits(type)->name);
        int ok = 1;
        for (int64_t r = 3; r < rows; r++) {
            for (int64_t k = 0; k < tokens; k++) {
                float want;
                cq_vec_dot(type, n, w + r * rb, x + k * ab, &want);
                cq_dequantize_row(type, w + r * rb, wf, n);
                cq_dequantize_row(atype, x + k * ab, af, n);
                double mag = 0;
                for (int64_t i = 0; i < n; i++) mag += fabs((double)wf[i] * (double)af[i]);
                const double bound = QUANT_DOT_REL_BOUND * mag + 1e-30;
                if (fabs((double)y[k * rows + r] - want) > bound) ok = 0;
            }
        }
        check(ok, "cq_matmul %s equals the dispatched vec-dot of every pair", cq_get_type_traits(type)->name);
        free(w); free(x); free(y); free(wf); free(af);
    }
}

/// Activations at -128 (which no quantizer makes, but every activation format holds) against weights
/// with every quant byte 0x00, 0xFF or 0x80 (the largest quants, scales and mins; Q6_K scales -128
/// or 127), on every path: each sum stays exact (no int16 saturation), so every path agrees with
/// the scalar reference within QUANT_DOT_REL_BOUND. Q8_1 s and Q8_K bsums agree with the quants.
static void test_extreme_activations(void) {
    const int64_t n = 768;
    static const uint8_t fills[] = {0x00, 0xff, 0x80};
    void *w = malloc(cq_row_size(CQ_TYPE_F32, n)), *a = malloc(cq_row_size(CQ_TYPE_F32, n));
    float *wf = malloc(n * 4), *af = malloc(n * 4);
    for (size_t p = 0; p < sizeof all_paths / sizeof all_paths[0]; p++) {
        if (!cq_kernel_supported(all_paths[p])) continue;
        for (size_t t = 0; t < sizeof weight_types / sizeof weight_types[0]; t++) {
            const int type = weight_types[t], atype = cq_vec_dot_type(type);
            const dot_fn fn = cq_vec_dot_variant(all_paths[p], type), ref = cq_vec_dot_variant("scalar", type);
            if (fn == NULL) continue;
            const cq_type_traits *tw = cq_get_type_traits(type), *ta = cq_get_type_traits(atype);
            for (size_t f = 0; f < sizeof fills; f++) {
                for (int pattern = 0; pattern < 2; pattern++) { // all -128, or -128 and 127 alternating
                    memset(w, fills[f], cq_row_size(type, n));
                    sanitize_weight_row(type, w, n);
                    if (type == CQ_TYPE_Q6_K) {
                        for (int64_t b = 0; b < n / CQ_QK_K; b++) memset((uint8_t *)w + b * 210 + 192, pattern ? 0x7f : 0x80, 16);
                    }
                    for (int64_t b = 0; b < n / ta->block_size; b++) {
                        uint8_t *blk = (uint8_t *)a + (size_t)b * ta->type_size;
                        int8_t *qs = (int8_t *)(blk + (atype == CQ_TYPE_Q8_K ? 4 : atype == CQ_TYPE_Q8_1 ? 4 : 2));
                        int sum = 0;
                        for (int64_t j = 0; j < ta->block_size; j++) {
                            qs[j] = (int8_t)(pattern && j % 2 ? 127 : -128);
                            sum += qs[j];
                        }
                        if (atype == CQ_TYPE_Q8_K) {
                            const float d = 0.01f;
                            memcpy(blk, &d, 4);
                            for (int j = 0; j < 16; j++) {
                                const int16_t bs = (int16_t)(pattern ? 8 * (127 - 128) : 16 * -128);
                                memcpy(blk + 4 + 256 + 2 * j, &bs, 2);
                            }
                        } else {
                            const cq_f16 d = cq_f32_to_f16(0.01f), sv = cq_f32_to_f16(0.01f * (float)sum);
                            memcpy(blk, &d, 2);
                            if (atype == CQ_TYPE_Q8_1) memcpy(blk + 2, &sv, 2);
                        }
                    }
                    tw->to_float(w, wf, n);
                    ta->to_float(a, af, n);
                    double mag = 0;
                    for (int64_t i = 0; i < n; i++) mag += fabs((double)wf[i] * (double)af[i]);
                    const float want = ref(n, w, a), got = fn(n, w, a);
                    const double bound = QUANT_DOT_REL_BOUND * mag + 1e-30;
                    check(fabs((double)got - (double)want) <= bound,
                          "%s %s weights 0x%02x, activations %s: got %.9g, scalar %.9g, |diff| %.3g > bound %.3g",
                          all_paths[p], tw->name, fills[f], pattern ? "-128/127" : "-128", got, want,
                          fabs((double)got - want), bound);
                }
            }
        }
    }
    free(w); free(a); free(wf); free(af);
}

// ---- attention ---------------------------------------------------------------------------------------

/// cq_attend_f16 (dispatched, and AVX2 on x86_64 or NEON on aarch64) against the scalar reference:
/// the scores differ only in float summation order, so a probability may move by one f16 step
/// (2^-11 relative). Head dimension 20 takes the kernels' fallback (not a multiple of 8 or 16).
static void test_attend(void) {
    static const int64_t dims[] = {64, 48, 32, 20};
    static const int64_t lengths[] = {1, 2, 7, 8, 15, 16, 17, 33, 129, 300};
    const int64_t ctx = 300, maxd = 64;
    cq_f16 *keys = malloc(ctx * maxd * 2), *values = malloc(ctx * maxd * 2);
    float q[64], want[64], got[64];
    float *scratch = malloc((2 * ctx + maxd + 16) * 4);
    typedef void (*att_fn)(int64_t, int64_t, const float *, const cq_f16 *, size_t, const cq_f16 *, size_t, float, float *, float *);
    static const struct { const char *name; att_fn fn; } impls[] = {
        {"dispatched", cq_attend_f16},
#if defined(CQ_HAVE_AVX2_VARIANTS)
        {"avx2", cq_attend_f16_avx2},
#endif
#if defined(CQ_HAVE_NEON_VARIANTS)
        {"neon", cq_attend_f16_neon},
#endif
    };
    for (size_t im = 0; im < sizeof impls / sizeof impls[0]; im++) {
        if (strcmp(impls[im].name, "avx2") == 0 && !cq_kernel_supported("avx2")) continue;
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
            const int64_t hd = dims[di];
            for (int64_t i = 0; i < ctx * maxd; i++) {
                keys[i] = cq_f32_to_f16(rnd_unit() * 3.0f);
                values[i] = cq_f32_to_f16(rnd_unit() * 2.0f);
            }
            for (int64_t d = 0; d < hd; d++) q[d] = rnd_unit() * 2.0f;
            for (int li = 0; li < 10; li++) {
                const int64_t len = lengths[li];
                // keys of dimension hd, kv stride maxd (two heads side by side); values transposed
                cq_attend_f16_scalar(hd, len, q, keys + 16, maxd, values, ctx, 0.125f, scratch, want);
                impls[im].fn(hd, len, q, keys + 16, maxd, values, ctx, 0.125f, scratch, got);
                double worst = 0;
                for (int64_t d = 0; d < hd; d++) {
                    const double e = fabs((double)got[d] - want[d]);
                    if (e > worst) worst = e;
                }
                check(worst <= 2e-3 * 2.0, "attend %s hd=%lld length=%lld: worst |diff| %.3g", impls[im].name,
                      (long long)hd, (long long)len, worst);
            }
        }
    }
    free(keys); free(values); free(scratch);
}

/// cq_attend_f16_group (dispatched, and AVX2 on x86_64 or NEON on aarch64) against cq_attend_f16 of
/// the same path once per head: bit for bit, at head dimensions that take the inline kernels (16,
/// 64, 80; 24 on NEON) and ones that do not (24 on AVX2, 20), up to 7 heads (both kernels keep at
/// most 4 in registers). The scratch is refilled with garbage before each call, and the group call
/// gets exactly the documented size.
static void test_attend_group(void) {
    static const int64_t dims[] = {16, 64, 80, 24, 20};
    static const int64_t lengths[] = {1, 7, 8, 15, 16, 17, 100, 300};
    static const int64_t head_counts[] = {1, 2, 3, 4, 5, 7};
    enum { MAX_HEADS = 7 };
    const int64_t ctx = 300, maxd = 80, kv_stride = 2 * maxd; // two kv heads side by side
    cq_f16 *keys = malloc(ctx * kv_stride * 2), *values = malloc(ctx * kv_stride * 2);
    float q[MAX_HEADS * 80], want[MAX_HEADS * 80], got[MAX_HEADS * 80];
    float *scratch = malloc(MAX_HEADS * (2 * ctx + maxd) * 4);
    typedef void (*att_fn)(int64_t, int64_t, const float *, const cq_f16 *, size_t, const cq_f16 *, size_t, float, float *, float *);
    typedef void (*group_fn)(int64_t, int64_t, int64_t, const float *, const cq_f16 *, size_t, const cq_f16 *, size_t, float,
                             float *, float *);
    static const struct { const char *name; att_fn one; group_fn group; } impls[] = {
        {"dispatched", cq_attend_f16, cq_attend_f16_group},
#if defined(CQ_HAVE_AVX2_VARIANTS)
        {"avx2", cq_attend_f16_avx2, cq_attend_f16_group_avx2},
#endif
#if defined(CQ_HAVE_NEON_VARIANTS)
        {"neon", cq_attend_f16_neon, cq_attend_f16_group_neon},
#endif
    };
    for (int64_t i = 0; i < ctx * kv_stride; i++) {
        keys[i] = cq_f32_to_f16(rnd_unit() * 3.0f);
        values[i] = cq_f32_to_f16(rnd_unit() * 2.0f);
    }
    for (size_t im = 0; im < sizeof impls / sizeof impls[0]; im++) {
        if (strcmp(impls[im].name, "avx2") == 0 && !cq_kernel_supported("avx2")) continue;
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
            const int64_t hd = dims[di];
            for (int64_t i = 0; i < MAX_HEADS * hd; i++) q[i] = rnd_unit() * 2.0f;
            for (size_t hi = 0; hi < sizeof head_counts / sizeof head_counts[0]; hi++) {
                const int64_t heads = head_counts[hi];
                for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                    const int64_t len = lengths[li];
                    // the second kv head: keys at column maxd, values from row maxd of the transposed cache
                    const cq_f16 *k = keys + maxd, *v = values + maxd * ctx;
                    for (int64_t h = 0; h < heads; h++) {
                        rnd_bytes(scratch, (2 * len + hd) * 4);
                        impls[im].one(hd, len, q + h * hd, k, kv_stride, v, ctx, 0.125f, scratch, want + h * hd);
                    }
                    rnd_bytes(scratch, heads * (2 * len + hd) * 4);
                    memset(got, 0xff, sizeof got);
                    float *tight = scratch + MAX_HEADS * (2 * ctx + maxd) - heads * (2 * len + hd);
                    impls[im].group(heads, hd, len, q, k, kv_stride, v, ctx, 0.125f, tight, got);
                    check(memcmp(want, got, heads * hd * 4) == 0,
                          "attend group %s heads=%lld hd=%lld length=%lld equals one head at a time bit for bit",
                          impls[im].name, (long long)heads, (long long)hd, (long long)len);
                }
            }
        }
    }
    free(keys); free(values); free(scratch);
}

int main(int argc, char **argv) {
    const char *label = "cquants", *expect_kernel = NULL, *fixtures = NULL, *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--label") == 0 && i + 1 < argc) label = argv[++i];
        else if (strcmp(argv[i], "--expect-kernel") == 0 && i + 1 < argc) expect_kernel = argv[++i];
        else if (strcmp(argv[i], "--fixtures") == 0 && i + 1 < argc) fixtures = argv[++i];
        else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc) path = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--label L] [--expect-kernel NAME] [--fixtures DIR] [--path NAME]\n", argv[0]);
            return 2;
        }
    }
    test_dispatch(expect_kernel);
    // --path: the dispatched entry points run on that path instead of the best one (a machine
    // whose best path is avx512-vnni tests its avx2 path this way too).
    if (path != NULL) {
        check(cq_kernel_select(path) == 0, "--path %s: the path is supported here and selected", path);
        printf("dispatched path: %s\n", cq_kernel_name());
    }
    test_f16();
    if (fixtures != NULL) test_fixtures(fixtures);
    test_quantizer_properties();
    test_variants();
    test_matvec();
    test_matmul();
    test_repack();
    test_repack_model_shapes();
    test_attend();
    test_attend_group();
    test_activation_quantizers();
    test_type_table();
    test_matmul_all_types();
    test_extreme_activations();
    printf("%s: %d passed, %d failed\n", label, passed, failed);
    return failed == 0 ? 0 : 1;
}
