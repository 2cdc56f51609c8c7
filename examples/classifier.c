/* examples/classifier.c — a classifier trained from C with the tensor vocabulary beyond the
 * seed: integer labels (i64), slicing into mini-batches, cross-entropy on logits, argmax for
 * accuracy, exact integer reads. Three interleaved spirals in 2-D (generated here, the
 * classic toy set), a two-layer MLP, SGD with momentum; the mean loss every 100 steps and
 * the training accuracy at the end. The PyTorch program it mirrors is in README.md.
 * Usage: classifier [--steps N] [--seed S] */
#include <ember/ember.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CLASSES = 3, PER_CLASS = 200, N = CLASSES * PER_CLASS, HIDDEN = 64, BATCH = 100 };

/* Points of the spirals with uniform jitter from a fixed LCG, so the data set is the same on
 * every machine; labels are int64_t, as torch.long. */
static void spirals(float *x, int64_t *y)
{
    uint64_t s = 88172645463325252ull;
    for (int k = 0; k < CLASSES; k++) {
        for (int i = 0; i < PER_CLASS; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double jitter = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.3;
            double r = (double)i / PER_CLASS;
            double th = 4.0 * k + 4.0 * r + jitter;
            int n = k * PER_CLASS + i;
            x[2 * n] = (float)(r * sin(th));
            x[2 * n + 1] = (float)(r * cos(th));
            y[n] = k;
        }
    }
}

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
        fprintf(stderr, "classifier: %s\n", em_last_error());
        return 1;
    }
    em_manual_seed(ctx, seed);

    static float xs[N * 2];
    static int64_t ys[N];
    spirals(xs, ys);
    em_tensor *x = em_tensor_from_data(ctx, EM_F32, EM_SHAPE(N, 2), xs);
    em_tensor *y = em_tensor_from_data(ctx, EM_I64, EM_SHAPE(N), ys);
    /* shuffled once: a permutation as an i64 index, applied with index_select */
    int64_t perm[N];
    for (int i = 0; i < N; i++)
        perm[i] = (int64_t)((i * 7919) % N);   /* 7919 is prime, so this is a permutation */
    em_tensor *p = em_tensor_from_data(ctx, EM_I64, EM_SHAPE(N), perm);
    x = em_index_select(x, 0, p);
    y = em_index_select(y, 0, p);

    /* parameters, scaled like PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    em_tensor *w1 = em_mul_scalar(em_add_scalar(em_rand(ctx, EM_F32, EM_SHAPE(2, HIDDEN)), -0.5),
                                  2.0 / sqrt(2.0));
    em_tensor *b1 = em_zeros(ctx, EM_F32, EM_SHAPE(HIDDEN));
    em_tensor *w2 = em_mul_scalar(em_add_scalar(em_rand(ctx, EM_F32, EM_SHAPE(HIDDEN, CLASSES)), -0.5),
                                  2.0 / sqrt((double)HIDDEN));
    em_tensor *b2 = em_zeros(ctx, EM_F32, EM_SHAPE(CLASSES));
    em_tensor *params[] = {w1, b1, w2, b2};
    for (int i = 0; i < 4; i++)
        em_tensor_set_requires_grad(params[i], true);
    em_sgd *opt = em_sgd_create(params, 4, &(em_sgd_options){.lr = 0.2, .momentum = 0.9});

    for (int t = 0; t < steps; t++) {
        em_scope_begin(ctx);
        int64_t start = (int64_t)(t % (N / BATCH)) * BATCH;
        em_tensor *xb = em_narrow(x, 0, start, BATCH);            /* x[start:start+BATCH] */
        em_tensor *yb = em_narrow(y, 0, start, BATCH);
        em_tensor *h = em_relu(em_add(em_mm(xb, w1), b1));
        em_tensor *logits = em_add(em_mm(h, w2), b2);
        em_tensor *loss = em_cross_entropy(logits, yb);
        if (em_backward(loss) == EM_OK && em_sgd_step(opt) == EM_OK)
            em_sgd_zero_grad(opt, false);
        if (t % 100 == 0)
            printf("%d %.4f\n", t, em_item(loss));
        em_scope_end(ctx);
        if (em_context_status(ctx) != EM_OK)
            break;
    }

    em_scope_begin(ctx);
    em_no_grad_begin(ctx);
    em_tensor *logits = em_add(em_mm(em_relu(em_add(em_mm(x, w1), b1)), w2), b2);
    em_tensor *correct = em_sum(em_eq(em_argmax(logits, 1, false), y));   /* i64 */
    int64_t right = em_item_i64(correct);
    em_no_grad_end(ctx);
    em_scope_end(ctx);

    int rc = 0;
    if (em_context_status(ctx) != EM_OK) {
        fprintf(stderr, "classifier: %s\n", em_context_error(ctx));
        rc = 1;
    } else {
        printf("accuracy %lld/%d\n", (long long)right, N);
    }
    em_sgd_free(opt);
    em_context_free(ctx);
    return rc;
}
