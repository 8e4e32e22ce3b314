// Stand-alone benchmark of cq_matmul on one thread (the tiles the engine runs, which
// `outpost bench --kernels` does not time: that one times cq_matvec's vec-dots). Prints the weight
// bytes read per second (best of several passes), the worst relative error against the scalar
// vec-dot, and whether every token's sums equal those of the same token evaluated alone.
//
//   cc -O2 -std=gnu11 -ISources/CQuants/include -o /tmp/cq-mm
//      Tests/CQuantsDriver/cquants_matmul_bench.c Sources/CQuants/*.c -lm -lpthread   (one line)
//   /tmp/cq-mm MB TYPE COLUMNS [TOKENS [r]]   # e.g. 2 3 576 (Q4_1, in cache), 100 3 1536, 30 8 576 1, 2 3 576 32
//   (a last argument "r" times cq_matmul_repacked on the matrix repacked by cq_repack)
//
// MB is the matrix size in megabytes (2: stays in L2; 100: streamed from memory), TYPE a ggml type
// id (2 Q4_0, 3 Q4_1, 8 Q8_0). Benchmarks are noisy on a shared machine: alternate binaries.
#include "cquants.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MB TYPE COLUMNS [TOKENS]\n", argv[0]);
        return 2;
    }
    const size_t bytes = (size_t)(atof(argv[1]) * 1e6);
    const int type = atoi(argv[2]), cols = atoi(argv[3]), tokens = argc > 4 ? atoi(argv[4]) : 1;
    const int repacked = argc > 5 && argv[5][0] == 'r';
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
    double best = 1e9;
    for (int k = 0; k < reps; k++) {
        const double t0 = now();
        if (repacked) cq_matmul_repacked(type, wr, xq, xb, y, rows, cols, 0, rows, tokens);
        else cq_matmul(type, w, rb, xq, xb, y, rows, cols, 0, rows, tokens);
        const double t = now() - t0;
        if (t < best) best = t;
    }
    double worst = 0;
    for (size_t r = 0; r < rows; r += rows / 97 + 1) {
        for (int t = 0; t < tokens; t++) {
            float ref = 0;
            switch (type) {
            case CQ_TYPE_Q4_0: ref = cq_vec_dot_q4_0_q8_0_scalar(cols, w + r * rb, xq + t * xb); break;
            case CQ_TYPE_Q4_1: ref = cq_vec_dot_q4_1_q8_1_scalar(cols, w + r * rb, xq + t * xb); break;
            case CQ_TYPE_Q8_0: ref = cq_vec_dot_q8_0_q8_0_scalar(cols, w + r * rb, xq + t * xb); break;
            default: ref = y[t * rows + r]; break;
            }
            const double e = fabs(ref - y[t * rows + r]) / (fabs(ref) + 1e-3);
            if (e > worst) worst = e;
        }
    }
    int alone = 1;
    for (int t = 0; t < tokens && alone; t++) {
        if (repacked) cq_matmul_repacked(type, wr, xq + t * xb, xb, one, rows, cols, 0, rows, 1);
        else cq_matmul(type, w, rb, xq + t * xb, xb, one, rows, cols, 0, rows, 1);
        for (size_t r = 0; r < rows; r++) {
            if (one[r] != y[t * rows + r]) {
                alone = 0;
                break;
            }
        }
    }
    printf("%s%s %.1f MB type %d cols %d tokens %d: %.2f GB/s (%.3f ms), worst rel err %.1e, tokens as if alone: %s\n",
           cq_kernel_name(), repacked ? " repacked" : "", bytes / 1e6, type, cols, tokens, rows * rb / best / 1e9, best * 1e3, worst,
           alone ? "yes" : "NO");
    return alone ? 0 : 1;
}
