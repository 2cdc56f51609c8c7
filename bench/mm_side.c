/* bench/mm_side.c — one matrix product, em_mm(op(A), B), timed on several contexts side by
 * side in one process: each device.ini names its own build of a plugin (`library =` in the
 * backend's section), a thread count or a backend, and their timed repetitions alternate,
 * so a slow spell of a shared machine slows every side of a ratio alike. Prints each
 * context's median µs and GFLOP/s, and its median ratio to the first context over the
 * side-by-side repetitions. A measuring program, not a test:
 *
 *   bench/mm_side M K N [--ta] [--f64] [--reps R] A.ini B.ini...
 *
 * --ta multiplies A^T (A stored K x M, as the seed's x.T @ gh), --f64 in double. */
#include <ember/ember.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CTX 8
#define MAX_REPS 201

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int usage(void)
{
    fprintf(stderr, "usage: mm_side M K N [--ta] [--f64] [--reps R] A.ini [B.ini...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return usage();
    const long long m = atoll(argv[1]), k = atoll(argv[2]), n = atoll(argv[3]);
    if (m < 1 || k < 1 || n < 1)
        return usage();
    int ta = 0, reps = 21, nc = 0;
    em_dtype dt = EM_F32;
    const char *ini[MAX_CTX];
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--ta"))
            ta = 1;
        else if (!strcmp(argv[i], "--f64"))
            dt = EM_F64;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (nc < MAX_CTX)
            ini[nc++] = argv[i];
        else
            return usage();
    }
    if (nc < 1 || reps < 1 || reps > MAX_REPS)
        return usage();

    em_context *ctx[MAX_CTX] = {NULL};
    em_tensor *a[MAX_CTX], *b[MAX_CTX];
    int rc = 0, opened = 0;
    for (int c = 0; c < nc; c++, opened++) {
        if (em_context_create(&ctx[c], ini[c]) != EM_OK) {
            fprintf(stderr, "mm_side: %s: %s\n", ini[c], em_last_error());
            rc = 1;
            break;
        }
        em_manual_seed(ctx[c], 0);
        a[c] = ta ? em_randn(ctx[c], dt, EM_SHAPE(k, m)) : em_randn(ctx[c], dt, EM_SHAPE(m, k));
        b[c] = em_randn(ctx[c], dt, EM_SHAPE(k, n));
    }
    /* 2 GFLOP of products per repetition (tens of milliseconds), at least 3 */
    const double flops = 2.0 * (double)m * (double)n * (double)k;
    int steps = (int)(2e9 / flops);
    if (steps < 3)
        steps = 3;
    static double t[MAX_CTX][MAX_REPS];
    for (int r = 0; r < reps && rc == 0; r++)
        for (int c = 0; c < nc; c++) {
            const double t0 = now_us();
            for (int s = 0; s < steps; s++) {
                em_scope_begin(ctx[c]);
                em_mm(ta ? em_t(a[c]) : a[c], b[c]);
                em_scope_end(ctx[c]);
            }
            em_synchronize(ctx[c]);
            t[c][r] = (now_us() - t0) / steps;
        }
    for (int c = 0; c < nc && rc == 0; c++)
        if (em_context_status(ctx[c]) != EM_OK) {
            fprintf(stderr, "mm_side: %s: %s\n", ini[c], em_context_error(ctx[c]));
            rc = 1;
        }
    if (rc == 0) {
        printf("# %lld x %lld x %lld%s %s, %d repetitions of %d products\n", m, k, n,
               ta ? " (A transposed)" : "", dt == EM_F64 ? "f64" : "f32", reps, steps);
        double ratio[MAX_CTX][MAX_REPS];
        for (int c = 0; c < nc; c++)
            for (int r = 0; r < reps; r++)
                ratio[c][r] = t[c][r] / t[0][r];
        for (int c = 0; c < nc; c++) {
            const double med = median(t[c], reps);
            printf("%-40s %10.2f us  %7.1f GFLOP/s  ratio %.3f\n", ini[c], med,
                   flops / med * 1e-3, median(ratio[c], reps));
        }
    }
    for (int c = 0; c < opened; c++)
        em_context_free(ctx[c]);
    return rc;
}
