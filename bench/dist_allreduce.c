/* bench/dist_allreduce.c — the time of em_dist_all_reduce_ (sum, f32, in place on the cpu
 * backend) for payloads from 4 KiB to 16 MiB and for the Fashion-MNIST MLP's gradient bucket
 * (940,588 bytes), each after a barrier, the median of R repetitions; with the ring
 * all-reduce's bus bandwidth 2 (p-1)/p * bytes / time. A measuring program, not a test:
 *
 *   cc -O2 -Iinclude bench/dist_allreduce.c -L.libs -lember -o dist_allreduce
 *   LD_LIBRARY_PATH=.libs EMBER_BACKEND_PATH=$PWD/.libs \
 *       mpirun -np 2 ./dist_allreduce [repetitions]
 */
#include <ember/ember.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 50;
    if (reps < 1)
        reps = 1;
    em_dist *d;
    em_context *ctx;
    if (em_dist_init(&d, NULL) != EM_OK || em_context_create(&ctx, NULL) != EM_OK) {
        fprintf(stderr, "dist_allreduce: %s\n", em_last_error());
        return 1;
    }
    int rank = em_dist_rank(d), p = em_dist_world_size(d);
    if (rank == 0)
        printf("%d processes, %s (%s), timeout %g s\n%12s %12s %12s %14s\n", p,
               em_dist_backend(d), em_dist_backend_version(d), em_dist_timeout(d), "bytes",
               "median us", "min us", "bus GB/s");
    static const long sizes[] = {4096, 65536, 940588, 1 << 20, 4 << 20, 16 << 20};
    double *t = malloc(sizeof *t * (size_t)reps);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t n = sizes[s] / 4;
        em_tensor *x = em_ones(ctx, EM_F32, EM_SHAPE(n));
        for (int r = -2; r < reps; r++) {   /* two warm-up rounds */
            em_dist_barrier(d);
            double t0 = now();
            em_dist_all_reduce_(d, x, EM_REDUCE_SUM);
            if (r >= 0)
                t[r] = now() - t0;
        }
        em_tensor_free(x);
        qsort(t, (size_t)reps, sizeof *t, cmp);
        double med = t[reps / 2];
        if (rank == 0)
            printf("%12ld %12.1f %12.1f %14.2f\n", sizes[s], 1e6 * med, 1e6 * t[0],
                   p > 1 ? 2.0 * (p - 1) / p * (double)sizes[s] / med / 1e9 : 0.0);
    }
    free(t);
    int rc = em_context_status(ctx) == EM_OK ? 0 : 1;
    if (rc)
        fprintf(stderr, "dist_allreduce: %s\n", em_context_error(ctx));
    em_context_free(ctx);
    em_dist_finalize(d);
    return rc;
}
