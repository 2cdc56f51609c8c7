/* bench/conv_step.c — conv2d forward + backward alone at the shapes of examples/fashion_cnn
 * (batch 128: conv 1->32 on 28x28 and conv 32->64 on 14x14, 3x3, padding 1), and max_pool2d
 * forward + backward on their outputs, on the backend device.ini names. Prints the median
 * milliseconds of each over a number of repeats; bench/fashion_cnn.py --conv runs it beside
 * torch.nn.functional on the same shapes. A measuring program, not a test:
 *
 *   ./bench/conv_step [repeats]        (built by make; EMBER_CONFIG picks the backend)
 *   ./bench/conv_step repeats C OC HW  (one 3x3 padding-1 convolution of batch 128 instead)
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
    return x < y ? -1 : x > y;
}

/* median ms of fwd+bwd of one conv (pool: max_pool2d 2x2 instead) */
static double run(em_context *ctx, int64_t c, int64_t oc, int64_t hw, int pool, int reps)
{
    const int pad[2] = {1, 1}, k2[2] = {2, 2};
    em_tensor *x = em_tensor_keep(em_randn(ctx, EM_F32, EM_SHAPE(128, c, hw, hw)));
    em_tensor *w = em_tensor_keep(em_randn(ctx, EM_F32, EM_SHAPE(oc, c, 3, 3)));
    em_tensor *b = em_tensor_keep(em_randn(ctx, EM_F32, EM_SHAPE(oc)));
    em_tensor_set_requires_grad(x, true);
    em_tensor_set_requires_grad(w, true);
    em_tensor_set_requires_grad(b, true);
    double *t = malloc(sizeof *t * (size_t)reps);
    for (int r = -2; r < reps; r++) {
        em_scope_begin(ctx);
        double t0 = now();
        em_tensor *y = pool ? em_max_pool2d(x, k2, NULL, NULL, NULL, false)
                            : em_conv2d(x, w, b, NULL, pad, NULL, 1);
        em_backward(em_sum(y));
        em_synchronize(ctx);
        if (r >= 0)
            t[r] = (now() - t0) * 1e3;
        em_tensor_zero_grad(x);
        em_tensor_zero_grad(w);
        em_tensor_zero_grad(b);
        em_scope_end(ctx);
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    double m = t[reps / 2];
    free(t);
    em_tensor_free(x);
    em_tensor_free(w);
    em_tensor_free(b);
    return m;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 20;
    if (reps < 1)
        reps = 1;
    em_context *ctx;
    if (em_context_create(&ctx, NULL) != EM_OK) {
        fprintf(stderr, "conv_step: %s\n", em_last_error());
        return 1;
    }
    if (argc > 4) {
        int64_t c = atoll(argv[2]), oc = atoll(argv[3]), hw = atoll(argv[4]);
        printf("conv %lld->%lld %lldx%lld fwd+bwd ms %.3f\n", (long long)c, (long long)oc,
               (long long)hw, (long long)hw, run(ctx, c, oc, hw, 0, reps));
        int rc = em_context_status(ctx) == EM_OK ? 0 : 1;
        em_context_free(ctx);
        return rc;
    }
    printf("conv1 1->32 28x28 fwd+bwd ms %.3f\n", run(ctx, 1, 32, 28, 0, reps));
    printf("conv2 32->64 14x14 fwd+bwd ms %.3f\n", run(ctx, 32, 64, 14, 0, reps));
    printf("pool1 32x28x28 fwd+bwd ms %.3f\n", run(ctx, 32, 32, 28, 1, reps));
    printf("pool2 64x14x14 fwd+bwd ms %.3f\n", run(ctx, 64, 64, 14, 1, reps));
    int rc = em_context_status(ctx) == EM_OK ? 0 : 1;
    if (rc)
        fprintf(stderr, "conv_step: %s\n", em_context_error(ctx));
    em_context_free(ctx);
    return rc;
}
