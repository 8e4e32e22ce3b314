// Stand-alone benchmark of cq_matmul on one thread (the tiles the engine runs, which
// `outpost bench --kernels` does not time: that one times cq_matvec's vec-dots). Prints the weight
// bytes read per second (best of several passes), the worst relative error against the scalar
// vec-dot, and whether every token's sums equal those of the same token evaluated alone.
//
//   cc -O2 -std=gnu11 -ISources/CQuants/include -o /tmp/cq-mm
//      Tests/CQuantsDriver/cquants_matmul_bench.c Sources/CQuants/*.c -lm -lpthread   (one line)
//   /tmp/cq-mm MB TYPE COLUMNS [TOKENS [r|b]]   # e.g. 2 3 576 (Q4_1, in cache), 100 3 1536, 30 8 576 1, 2 3 576 32
//   (a last argument "r" times cq_matmul_repacked on the matrix repacked by cq_repack; "b" times
//   both layouts, passes alternating, and prints both lines and the speed-up of the repacked one)
//
// MB is the matrix size in megabytes (2: stays in L2; 100: streamed from memory), TYPE a ggml type
// id (2 Q4_0, 3 Q4_1, 6 Q5_0, 7 Q5_1, 8 Q8_0; 12 Q4_K and 14 Q6_K: random quants, scales and
// mins, as CQuants has no K-quant weight quantizer). Times are the thread's CPU time (best pass),
// so time slices lost to other processes do not count; benchmarks are still noisy on a shared
// machine: alternate runs. Gop/s counts a multiply and an add per weight and token. SwiftPM builds
// CQuants with clang: time clang builds (gcc's code for the tiles differs).
#include "cquants.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// One timed pass of either layout.
static double pass(int repacked, int type, const char *w, const char *wr, size_t rb, const char *xq, size_t xb,
                   float *y, size_t rows, int cols, int tokens) {
    const double t0 = now();
    if (repacked) cq_matmul_repacked(type, wr, xq, xb, y, rows, cols, 0, rows, tokens);
    else cq_matmul(type, w, rb, xq, xb, y, rows, cols, 0, rows, tokens);
    return now() - t0;
}

/// The worst relative error of either layout's y against the scalar vec-dot, and whether every
/// token's sums equal those of the token evaluated alone; prints the line. Returns 1 when alone.
static int report(int repacked, int type, const char *w, const char *wr, size_t rb, const char *xq, size_t xb,
                  float *y, float *one, size_t rows, int cols, int tokens, double best, double mb) {
    pass(repacked, type, w, wr, rb, xq, xb, y, rows, cols, tokens);
    double worst = 0;
    for (size_t r = 0; r < rows; r += rows / 97 + 1) {
        for (int t = 0; t < tokens; t++) {
            float ref = 0;
            switch (type) {
            case CQ_TYPE_Q4_0: ref = cq_vec_dot_q4_0_q8_0_scalar(cols, w + r * rb, xq + t * xb); break;
            case CQ_TYPE_Q4_1: ref = cq_vec_dot_q4_1_q8_1_scalar(cols, w + r * rb, xq + t * xb); break;
            case CQ_TYPE_Q5_0: ref = cq_vec_dot_q5_0_q8_0_scalar(cols, w + r * rb, xq + t * xb); break;
            case CQ_TYPE_Q5_1: ref = cq_vec_dot_q5_1_q8_1_scalar(cols, w + r * rb, xq + t * xb); break;
            case CQ_TYPE_Q8_0: ref = cq_vec_dot_q8_0_q8_0_scalar(cols, w + r * rb, xq + t * xb); break;
            case CQ_TYPE_Q4_K: ref = cq_vec_dot_q4_K_q8_K_scalar(cols, w + r * rb, xq + t * xb); break;
            case CQ_TYPE_Q6_K: ref = cq_vec_dot_q6_K_q8_K_scalar(cols, w + r * rb, xq + t * xb); break;
            default: ref = y[t * rows + r]; break;
            }
            const double e = fabs(ref - y[t * rows + r]) / (fabs(ref) + 1e-3);
            if (e > worst) worst = e;
        }
    }
    int alone = 1;
    for (int t = 0; t < tokens && alone; t++) {
        pass(repacked, type, w, wr, rb, xq + t * xb, xb, one, rows, cols, 1);
        for (size_t r = 0; r < rows; r++) {
            if (one[r] != y[t * rows + r]) {
                alone = 0;
                break;
            }
        }
    }
    const double ops = 2.0 * (double)rows * cols * tokens;
    printf("%s%s %.1f MB type %d cols %d tokens %d: %.2f GB/s, %.1f Gop/s (%.3f ms), worst rel err %.1e, "
           "tokens as if alone: %s\n",
           cq_kernel_name(), repacked ? " repacked" : "", mb, type, cols, tokens, rows * rb / best / 1e9,
           ops / best / 1e9, best * 1e3, worst, alone ? "yes" : "NO");
    return alone;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MB TYPE COLUMNS [TOKENS [r|b]]\n", argv[0]);
        return 2;
    }
    const size_t bytes = (size_t)(atof(argv[1]) * 1e6);
    const int type = atoi(argv[2]), cols = atoi(argv[3]), tokens = argc > 4 ? atoi(argv[4]) : 1;
    const int repacked = argc > 5 && (argv[5][0] == 'r' || argv[5][0] == 'b'), both = argc > 5 && argv[5][0] == 'b';
    const size_t rb = cq_row_size(type, cols), rows = rb ? bytes / rb / CQ_REPACK_ROWS * CQ_REPACK_ROWS : 0;
    const int at = cq_vec_dot_type(type);
    if (rows == 0 || at < 0 || tokens < 1) {
        fprintf(stderr, "unsupported type or size\n");
        return 2;
    }
    char *w = aligned_alloc(64, (rows * rb + 63) / 64 * 64);
    float *f = malloc(cols * sizeof(float));
    srand(1);
    for (size_t r = 0; r < rows; r++) {
        if (type == CQ_TYPE_Q4_K || type == CQ_TYPE_Q6_K) {
            // random bytes, then sane f16 scales: Q4_K's d and dmin first in the block, Q6_K's d last
            // (its int8 sub-block scales stay random)
            const int k6 = type == CQ_TYPE_Q6_K;
            const size_t block = k6 ? sizeof(cq_block_q6_K) : sizeof(cq_block_q4_K);
            for (size_t i = 0; i < rb; i++) w[r * rb + i] = (char)rand();
            for (int b = 0; b < cols / CQ_QK_K; b++) {
                char *p = w + r * rb + (size_t)b * block;
                const cq_f16 d = cq_f32_to_f16((k6 ? 1e-4f : 1e-3f) * (float)(1 + rand() % 50));
                memcpy(p + (k6 ? offsetof(cq_block_q6_K, d) : 0), &d, 2);
                if (k6) continue;
                const cq_f16 dmin = cq_f32_to_f16(1e-3f * (float)(1 + rand() % 50));
                memcpy(p + 2, &dmin, 2);
            }
            continue;
        }
        for (int i = 0; i < cols; i++) f[i] = (rand() / (float)RAND_MAX - 0.5f) * (float)(1 + r % 7);
        cq_quantize_row(type, f, w + r * rb, cols);
    }
    char *wr = NULL;
    if (repacked) {
        wr = aligned_alloc(64, (cq_repacked_size(type, rows, cols) + 63) / 64 * 64);
        if (cq_repack(type, w, rb, wr, cols, 0, rows) != 0) {
            fprintf(stderr, "type %d cannot be repacked\n", type);
            return 2;
        }
    }
    const size_t xb = cq_row_size(at, cols);
    char *xq = malloc(xb * tokens);
    for (int t = 0; t < tokens; t++) {
        for (int i = 0; i < cols; i++) f[i] = sinf(i * 0.37f + t);
        cq_quantize_row(at, f, xq + t * xb, cols);
    }
    float *y = malloc(rows * sizeof(float) * tokens), *one = malloc(rows * sizeof(float));
    int reps = (int)(3e9 / bytes / tokens);
    if (reps < 3) reps = 3;
    double best[2] = {1e9, 1e9}; // plain, repacked
    for (int k = 0; k < reps; k++) {
        for (int layout = both ? 0 : repacked; layout <= repacked; layout++) {
            const double t = pass(layout, type, w, wr, rb, xq, xb, y, rows, cols, tokens);
            if (t < best[layout]) best[layout] = t;
        }
    }
    int alone = 1;
    for (int layout = both ? 0 : repacked; layout <= repacked; layout++) {
        alone &= report(layout, type, w, wr, rb, xq, xb, y, one, rows, cols, tokens, best[layout], bytes / 1e6);
    }
    if (both) printf("repacked / plain speed: %.2fx\n", best[0] / best[1]);
    return alone ? 0 : 1;
}
