/* examples/two_layer_autograd.c — the seed's autograd cell, the README's main job: the same
 * two-layer network in f32, forward with tensor ops, loss.backward(), weights updated under
 * no_grad and gradients zeroed; "t loss" every 100 iterations. Runs on the device chosen
 * in device.ini (default cpu). --sgd trains with em_sgd instead of the manual update.
 * --stats prints peak RSS and device memory to stderr at the end (tests use it to check that
 * memory does not grow with the number of steps).
 * --distributed: data-parallel over the processes of an MPI job (`mpirun -np 2
 * two_layer_autograd --distributed`, <ember/dist.h>): every rank makes the same data and
 * weights from the seed, keeps its slice of the 64 rows (32 + 32 on two), and after backward
 * the gradients, sums over its rows, are summed over the ranks (em_ddp_sync_sum): the update
 * is the single-process one up to float summation order. Rank 0 prints the global loss.
 * Usage: two_layer_autograd [--sgd] [--steps N] [--seed S] [--lr LR] [--stats] [--distributed]
 *
 * Compared with the notebook: its f32 cell ran on a GPU and its loss levels off at 5-10 from
 * step 200 on, while this program's keeps falling, to ~1e-5 by step 900 (cpu and opencl).
 * Nothing is wrong on either side. PyTorch ran f32 matrix products there in TF32 (Ampere and
 * newer GPUs; the default up to PyTorch 1.11, torch.backends.cuda.matmul.allow_tf32 since):
 * inputs rounded to a 10-bit mantissa, a relative error of ~5e-4 per term. Each y_pred
 * element sums 100 terms of magnitude ~30 that cancel to ~1, so it is off by ~0.1, and the
 * loss, a sum of 640 squared errors, cannot fall below a few units: the curve flattens where
 * that noise floor is reached. ember computes f32 products in f32 (the cuda backend sets
 * cuBLAS to full f32, no TF32), so the loss falls as the notebook's f64 numpy cell does until
 * f32 rounding stops it near 1e-5. Emulating TF32 rounding in the products of an f32 run
 * reproduces the notebook's floor (~10-20). Accumulation order (blocked gemm, parallel
 * reductions, another device) changes the digits after step ~100, not the trend. */
#include <ember/ember.h>
#include <sys/resource.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyfmt.h"

int main(int argc, char **argv)
{
    int steps = 1000;
    bool use_sgd = false, stats = false, distributed = false;
    uint64_t seed = 0;
    double learning_rate = 1e-6;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sgd"))
            use_sgd = true;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--lr") && i + 1 < argc)
            learning_rate = atof(argv[++i]);
        else if (!strcmp(argv[i], "--stats"))
            stats = true;
        else if (!strcmp(argv[i], "--distributed"))
            distributed = true;
        else {
            fprintf(stderr, "usage: %s [--sgd] [--steps N] [--seed S] [--lr LR] [--stats] "
                    "[--distributed]\n", argv[0]);
            return 2;
        }
    }
    em_dist *dist = NULL;
    int rank = 0, world = 1;
    if (distributed) {
        if (em_dist_init(&dist, NULL) != EM_OK) {
            fprintf(stderr, "two_layer_autograd: %s\n", em_last_error());
            return 1;
        }
        rank = em_dist_rank(dist);
        world = em_dist_world_size(dist);
    }
    em_context *ctx;
    if (em_context_create(&ctx, NULL) != EM_OK) {
        fprintf(stderr, "two_layer_autograd: %s\n", em_last_error());
        em_dist_finalize(dist);
        return 1;
    }
    fprintf(stderr, "two_layer_autograd: running on %s:%d (%s)%s\n", em_context_backend(ctx),
            em_context_device_index(ctx), em_context_device_name(ctx),
            use_sgd ? ", updates by em_sgd" : "");
    em_manual_seed(ctx, seed);

    const int64_t N = 64, D_in = 1000, H = 100, D_out = 10;
    em_tensor *x = em_randn(ctx, EM_F32, EM_SHAPE(N, D_in));
    em_tensor *y = em_randn(ctx, EM_F32, EM_SHAPE(N, D_out));
    em_tensor *w1 = em_randn(ctx, EM_F32, EM_SHAPE(D_in, H));
    em_tensor *w2 = em_randn(ctx, EM_F32, EM_SHAPE(H, D_out));
    em_tensor_set_requires_grad(w1, true);
    em_tensor_set_requires_grad(w2, true);
    em_ddp *ddp = NULL;
    if (dist) {   /* this rank's rows of x and y; rank 0's weights everywhere */
        int64_t lo = N * rank / world, hi = N * (rank + 1) / world;
        x = em_narrow(x, 0, lo, hi - lo);
        y = em_narrow(y, 0, lo, hi - lo);
        ddp = em_ddp_create(dist, (em_tensor *[]){w1, w2}, 2, NULL);
    }

    em_sgd *opt = NULL;
    if (use_sgd) {
        em_tensor *params[] = {w1, w2};
        opt = em_sgd_create(params, 2, &(em_sgd_options){.lr = learning_rate});
    }

    for (int t = 0; t < steps; t++) {
        em_scope_begin(ctx);
        /* y_pred = x.mm(w1).clamp(min=0).mm(w2) */
        em_tensor *y_pred = em_mm(em_clamp(em_mm(x, w1), 0.0, INFINITY), w2);
        /* loss = (y_pred - y).pow(2).sum() */
        em_tensor *loss = em_sum(em_pow(em_sub(y_pred, y), 2.0));
        if (t % 100 == 0) {
            char s[64];
            double v = em_item(loss);
            if (dist) {   /* the global loss: the ranks' sums added */
                em_tensor *l = em_clone(loss);
                em_dist_all_reduce_(dist, l, EM_REDUCE_SUM);
                v = em_item(l);
            }
            py_repr(v, s, sizeof s);
            if (rank == 0)
                printf("%d %s\n", t, s);
        }
        em_backward(loss);
        if (ddp)
            em_ddp_sync_sum(ddp);
        if (opt) {
            em_sgd_step(opt);
            em_sgd_zero_grad(opt, false);
        } else {
            em_no_grad_begin(ctx);   /* with torch.no_grad(): */
            em_sub_(w1, em_mul_scalar(em_grad(w1), learning_rate));
            em_sub_(w2, em_mul_scalar(em_grad(w2), learning_rate));
            em_tensor_zero_grad(w1);
            em_tensor_zero_grad(w2);
            em_no_grad_end(ctx);
        }
        em_scope_end(ctx);
        if (em_context_status(ctx) != EM_OK)
            break;
    }
    int rc = 0;
    if (em_context_status(ctx) != EM_OK) {
        fprintf(stderr, "two_layer_autograd: %s\n", em_context_error(ctx));
        rc = 1;
    }
    if (stats) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr, "stats: steps %d peak_rss_kb %ld device_in_use %zu device_cached %zu\n", steps,
                ru.ru_maxrss, em_context_memory_in_use(ctx), em_context_memory_cached(ctx));
    }
    em_sgd_free(opt);
    em_ddp_free(ddp);
    em_context_free(ctx);
    em_dist_finalize(dist);
    return rc;
}
