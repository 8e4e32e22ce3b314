// Stand-alone benchmark of decode attention on one thread: one token's query heads against the KV
// cache of one layer, laid out as the engine keeps it (keys [position][kv_dim], values transposed
// [kv_dim][context]), evaluated by cq_attend_f16 once per query head and by cq_attend_f16_group
// once per KV head. Prints the time per token-layer of each (best of several passes), their ratio,
// and whether both give the same bits.
//
//   cc -O2 -std=gnu11 -ISources/CQuants/include -o /tmp/cq-att
//      Tests/CQuantsDriver/cquants_attend_bench.c Sources/CQuants/*.c -lm -lpthread   (one line)
//   /tmp/cq-att [HEADS KV_HEADS HEAD_DIM LENGTH...]   # default: 9 3 64 64 192 512 (SmolLM2-135M)
//
// Benchmarks are noisy on a shared machine: run it more than once.
#include "cquants.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int64_t heads = 9, kv_heads = 3, hd = 64;
    int64_t lengths[16] = {64, 192, 512};
    int count = 3;
    if (argc > 1) {
        if (argc < 5) {
            fprintf(stderr, "usage: %s [HEADS KV_HEADS HEAD_DIM LENGTH...]\n", argv[0]);
            return 2;
        }
        heads = atoll(argv[1]);
        kv_heads = atoll(argv[2]);
        hd = atoll(argv[3]);
        count = 0;
        for (int i = 4; i < argc && count < 16; i++) lengths[count++] = atoll(argv[i]);
    }
    if (heads < 1 || kv_heads < 1 || heads % kv_heads != 0 || hd < 1) {
        fprintf(stderr, "HEADS must be a multiple of KV_HEADS\n");
        return 2;
    }
    const int64_t group = heads / kv_heads, kv_dim = kv_heads * hd;
    int64_t ctx = 0;
    for (int i = 0; i < count; i++) ctx = lengths[i] > ctx ? lengths[i] : ctx;
    cq_f16 *keys = malloc(ctx * kv_dim * 2), *values = malloc(ctx * kv_dim * 2);
    float *q = malloc(heads * hd * 4), *one = malloc(heads * hd * 4), *grouped = malloc(heads * hd * 4);
    float *scratch = malloc(group * (2 * ctx + hd) * 4);
    srand(1);
    for (int64_t i = 0; i < ctx * kv_dim; i++) {
        keys[i] = cq_f32_to_f16((rand() / (float)RAND_MAX - 0.5f) * 4);
        values[i] = cq_f32_to_f16((rand() / (float)RAND_MAX - 0.5f) * 2);
    }
    for (int64_t i = 0; i < heads * hd; i++) q[i] = (rand() / (float)RAND_MAX - 0.5f) * 3;
    const float scale = 1.0f / 8;
    int same_all = 1;
    for (int li = 0; li < count; li++) {
        const int64_t len = lengths[li];
        const int reps = (int)(2e7 / (len * heads * hd)) + 1;
        double best[2] = {1e9, 1e9};
        for (int pass = 0; pass < 14; pass++) {
            const int which = pass % 2;
            const double t0 = now();
            for (int r = 0; r < reps; r++) {
                for (int64_t kvh = 0; kvh < kv_heads; kvh++) {
                    const cq_f16 *k = keys + kvh * hd, *v = values + kvh * hd * ctx;
                    const float *qg = q + kvh * group * hd;
                    if (which == 0) {
                        float *o = one + kvh * group * hd;
                        for (int64_t h = 0; h < group; h++) {
                            cq_attend_f16(hd, len, qg + h * hd, k, kv_dim, v, ctx, scale, scratch, o + h * hd);
                        }
                    } else {
                        cq_attend_f16_group(group, hd, len, qg, k, kv_dim, v, ctx, scale, scratch,
                                            grouped + kvh * group * hd);
                    }
                }
            }
            const double t = (now() - t0) / reps;
            if (t < best[which]) best[which] = t;
        }
        const int same = memcmp(one, grouped, heads * hd * 4) == 0;
        same_all &= same;
        printf("%s heads %lld kv %lld hd %lld length %lld: per head %.2f us, grouped %.2f us, %.2fx, same bits: %s\n",
               cq_kernel_name(), (long long)heads, (long long)kv_heads, (long long)hd, (long long)len, best[0] * 1e6,
               best[1] * 1e6, best[0] / best[1], same ? "yes" : "NO");
    }
    return same_all ? 0 : 1;
}
