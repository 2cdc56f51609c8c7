/* examples/two_layer_numpy.c — the seed's numpy cell: a two-layer ReLU network trained by
 * a hand-written forward and backward pass, f64, N, D_in, H, D_out = 64, 1000, 100, 10,
 * learning rate 1e-6, 1000 iterations, printing "t loss" every 100. No autograd: mm,
 * maximum, transpose, a mask and in-place updates, on the device from device.ini.
 * Usage: two_layer_numpy [--steps N] [--seed S] */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyfmt.h"

int main(int argc, char **argv)
{
    int steps = 1000;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--steps N] [--seed S]\n", argv[0]);
            return 2;
        }
    }
    em_context *ctx;
    if (em_context_create(&ctx, NULL) != EM_OK) {
        fprintf(stderr, "two_layer_numpy: %s\n", em_last_error());
        return 1;
    }
    fprintf(stderr, "two_layer_numpy: running on %s:%d (%s)\n", em_context_backend(ctx),
            em_context_device_index(ctx), em_context_device_name(ctx));
    em_manual_seed(ctx, seed);

    const int64_t N = 64, D_in = 1000, H = 100, D_out = 10;
    /* random input and output data, and random weights */
    em_tensor *x = em_randn(ctx, EM_F64, EM_SHAPE(N, D_in));
    em_tensor *y = em_randn(ctx, EM_F64, EM_SHAPE(N, D_out));
    em_tensor *w1 = em_randn(ctx, EM_F64, EM_SHAPE(D_in, H));
    em_tensor *w2 = em_randn(ctx, EM_F64, EM_SHAPE(H, D_out));
    em_tensor *zero = em_scalar(ctx, EM_F64, 0.0);
    const double learning_rate = 1e-6;

    for (int t = 0; t < steps; t++) {
        em_scope_begin(ctx);   /* every temporary below is released at em_scope_end */
        /* forward: predict y */
        em_tensor *h = em_mm(x, w1);                 /* [N, H] */
        em_tensor *h_relu = em_maximum(h, zero);     /* [N, H] */
        em_tensor *y_pred = em_mm(h_relu, w2);       /* [N, D_out] */

        /* loss */
        em_tensor *diff = em_sub(y_pred, y);
        double loss = em_item(em_sum(em_pow(diff, 2.0)));
        if (t % 100 == 0) {
            char s[64];
            py_repr(loss, s, sizeof s);
            printf("%d %s\n", t, s);
        }

        /* backward: gradients of the loss with respect to w1 and w2 */
        em_tensor *grad_y_pred = em_mul_scalar(diff, 2.0);        /* [N, D_out] */
        em_tensor *grad_w2 = em_mm(em_t(h_relu), grad_y_pred);    /* [H, D_out] */
        em_tensor *grad_h_relu = em_mm(grad_y_pred, em_t(w2));    /* [N, H] */
        em_tensor *grad_h = em_clone(grad_h_relu);
        em_masked_fill_(grad_h, em_lt_scalar(h, 0.0), 0.0);       /* grad_h[h < 0] = 0 */
        em_tensor *grad_w1 = em_mm(em_t(x), grad_h);              /* [D_in, H] */

        /* update the weights */
        em_sub_(w1, em_mul_scalar(grad_w1, learning_rate));
        em_sub_(w2, em_mul_scalar(grad_w2, learning_rate));
        em_scope_end(ctx);
        if (em_context_status(ctx) != EM_OK)
            break;
    }
    int rc = 0;
    if (em_context_status(ctx) != EM_OK) {
        fprintf(stderr, "two_layer_numpy: %s\n", em_context_error(ctx));
        rc = 1;
    }
    em_context_free(ctx);
    return rc;
}
