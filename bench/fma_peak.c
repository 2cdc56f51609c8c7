/* bench/fma_peak.c — the machine's multiply-add ceiling, the number gemm speeds and the
 * seed step's targets are judged against (docs/benchmarks.md, "What the hardware allows").
 *
 * Each thread runs 12 independent FMA chains (enough to cover the FMA latency on two ports)
 * in 256-bit (AVX2+FMA) and, where the CPU has it, 512-bit (AVX-512F) registers, f32 and f64,
 * and the program prints GFLOP/s per thread and for all threads together (one FMA = 2 FLOP).
 * Usage: fma_peak [threads] [seconds per measurement]. x86-64 with GCC or Clang only. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static volatile double sink;

/* One kernel per register width and dtype: 12 chains a = a * b + c, `iters` times; returns
 * the FLOP done. The chains are summed into `sink` so nothing is optimised away. */
#define CHAINS(VT, SET1, FMA, ADD, STORE, LANES, ET, NAME, TARGET)                          \
    __attribute__((target(TARGET))) static double NAME(long iters)                          \
    {                                                                                       \
        VT a[12], b = SET1((ET)0.999999), c = SET1((ET)1e-7);                               \
        for (int i = 0; i < 12; i++)                                                        \
            a[i] = SET1((ET)i);                                                             \
        for (long k = 0; k < iters; k++) {                                                  \
            _Pragma("GCC unroll 12") for (int i = 0; i < 12; i++) a[i] = FMA(a[i], b, c);   \
        }                                                                                   \
        VT s = a[0];                                                                        \
        for (int i = 1; i < 12; i++)                                                        \
            s = ADD(s, a[i]);                                                               \
        ET out[LANES];                                                                      \
        STORE(out, s);                                                                      \
        sink = (double)out[0];                                                              \
        return (double)iters * 12.0 * LANES * 2.0;                                          \
    }

CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8, float,
       ymm_f32, "avx2,fma")
CHAINS(__m256d, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd, _mm256_storeu_pd, 4, double,
       ymm_f64, "avx2,fma")
CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16, float,
       zmm_f32, "avx512f")
CHAINS(__m512d, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_storeu_pd, 8, double,
       zmm_f64, "avx512f")

typedef double (*kern_fn)(long);

typedef struct job {
    kern_fn fn;
    long iters;
    double flop, secs;
    pthread_barrier_t *start;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    pthread_barrier_wait(j->start);
    double t = now();
    j->flop = j->fn(j->iters);
    j->secs = now() - t;
    return NULL;
}

/* GFLOP/s of `nt` threads running fn together (the slowest thread's time counts) */
static double measure(kern_fn fn, int nt, double seconds)
{
    long iters = 1000;
    double per = 0.0;
    for (;;) {   /* calibrate: double the count until one run takes 50 ms */
        double t = now();
        fn(iters);
        per = now() - t;
        if (per >= 0.05 || iters >= (1L << 40))
            break;
        iters *= 2;
    }
    iters = (long)((double)iters * seconds / per) + 1;
    job *jobs = calloc((size_t)nt, sizeof *jobs);
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    pthread_barrier_t start;
    if (!jobs || !th || pthread_barrier_init(&start, NULL, (unsigned)nt) != 0) {
        free(jobs);
        free(th);
        return 0.0;
    }
    int made = 0;
    for (; made < nt; made++) {
        jobs[made] = (job){.fn = fn, .iters = iters, .start = &start};
        if (pthread_create(&th[made], NULL, run_job, &jobs[made]) != 0)
            break;
    }
    double flop = 0.0, secs = 0.0;
    if (made == nt) {
        for (int i = 0; i < nt; i++) {
            pthread_join(th[i], NULL);
            flop += jobs[i].flop;
            if (jobs[i].secs > secs)
                secs = jobs[i].secs;
        }
    } else {
        fprintf(stderr, "fma_peak: cannot start %d threads\n", nt);
        exit(1);   /* threads blocked in the barrier cannot be joined */
    }
    pthread_barrier_destroy(&start);
    free(jobs);
    free(th);
    return secs > 0 ? flop / secs / 1e9 : 0.0;
}

int main(int argc, char **argv)
{
    int nt = argc > 1 ? atoi(argv[1]) : 1;
    double seconds = argc > 2 ? atof(argv[2]) : 0.5;
    if (nt < 1 || nt > 1024 || !(seconds > 0.0) || seconds > 60.0) {
        fprintf(stderr, "usage: fma_peak [threads 1..1024] [seconds per measurement, <= 60]\n");
        return 2;
    }
    __builtin_cpu_init();
    struct {
        const char *name;
        kern_fn fn;
        int ok;
    } k[4] = {
        {"avx2 f32", ymm_f32, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
        {"avx2 f64", ymm_f64, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
        {"avx512 f32", zmm_f32, __builtin_cpu_supports("avx512f")},
        {"avx512 f64", zmm_f64, __builtin_cpu_supports("avx512f")},
    };
    printf("%-11s %14s %14s\n", "registers", "GFLOP/s/thread", "GFLOP/s total");
    for (int i = 0; i < 4; i++) {
        if (!k[i].ok) {
            printf("%-11s %14s %14s  (the CPU lacks it)\n", k[i].name, "-", "-");
            continue;
        }
        double one = measure(k[i].fn, 1, seconds);
        double all = nt > 1 ? measure(k[i].fn, nt, seconds) : one;
        printf("%-11s %14.1f %14.1f\n", k[i].name, one, all);
    }
    return 0;
}
#else
int main(void)
{
    fprintf(stderr, "fma_peak: x86-64 with GCC or Clang only\n");
    return 0;
}
#endif
