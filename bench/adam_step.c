/* bench/adam_step.c — the time of one em_optim_step of Adam, AdamW and SGD (plain, and with
 * Nesterov momentum) over the parameters of the Fashion-MNIST MLP 784-256-128-10 (235,146 f32
 * values in six tensors) on a backend, through the backend's fused kernel (adam, ABI 1.3; sgd,
 * ABI 1.7) and through the step composed from elementwise kernels (em__test_optim_composed,
 * the libember test hook). A measuring program, not a test:
 *
 *   cc -O2 -Iinclude bench/adam_step.c -L.libs -lember -o adam_step
 *   EMBER_BACKEND_PATH=$PWD/.libs LD_LIBRARY_PATH=.libs ./adam_step [backend] [steps]
 */
#include <ember/ember.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void em__test_optim_composed(int on);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *const kinds[4] = {"Adam", "AdamW", "SGD", "SGD+N"};

/* median of n step times (ms); kind: 0 Adam, 1 AdamW, 2 SGD, 3 SGD with Nesterov momentum */
static double run(em_context *ctx, em_tensor **p, int np, int kind, int composed, int steps)
{
    em_adam_options o = kind == 1 ? em_adamw_defaults() : em_adam_defaults();
    em_sgd_options so = {.lr = 1e-3, .momentum = kind == 3 ? 0.9 : 0, .nesterov = kind == 3};
    em_optim *opt = kind == 0   ? em_optim_adam(p, np, &o)
                    : kind == 1 ? em_optim_adamw(p, np, &o)
                                : em_optim_sgd(p, np, &so);
    double *t = malloc(sizeof *t * (size_t)steps);
    em__test_optim_composed(composed);
    for (int s = -3; s < steps; s++) {   /* three warm-up steps */
        em_synchronize(ctx);
        double t0 = now();
        if (em_optim_step(opt) != EM_OK) {
            fprintf(stderr, "step failed: %s\n", em_context_error(ctx));
            exit(1);
        }
        em_synchronize(ctx);
        if (s >= 0)
            t[s] = (now() - t0) * 1e3;
    }
    em__test_optim_composed(0);
    em_optim_free(opt);
    for (int i = 1; i < steps; i++)   /* insertion sort */
        for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    double med = t[steps / 2];
    free(t);
    return med;
}

int main(int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : "cpu";
    int steps = argc > 2 ? atoi(argv[2]) : 200;
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", backend);
    em_context *ctx = NULL;
    if (em_context_create_with(&ctx, cfg) != EM_OK) {
        fprintf(stderr, "%s\n", em_last_error());
        return 1;
    }
    em_config_free(cfg);
    static const int64_t shapes[6][2] = {{256, 784}, {256, 1}, {128, 256}, {128, 1},
                                         {10, 128}, {10, 1}};
    em_tensor *p[6];
    int64_t total = 0;
    for (int i = 0; i < 6; i++) {
        int nd = shapes[i][1] == 1 ? 1 : 2;
        p[i] = em_tensor_keep(em_randn(ctx, EM_F32, nd, shapes[i]));
        em_tensor_set_requires_grad(p[i], true);
        total += shapes[i][0] * shapes[i][1];
    }
    /* grads: backward of sum(p * r) gives r */
    em_scope_begin(ctx);
    em_tensor *l = NULL;
    for (int i = 0; i < 6; i++) {
        em_tensor *r = em_randn(ctx, EM_F32, shapes[i][1] == 1 ? 1 : 2, shapes[i]);
        em_tensor *s = em_sum(em_mul(p[i], r));
        l = l ? em_add(l, s) : s;
    }
    if (em_backward(l) != EM_OK) {
        fprintf(stderr, "%s\n", em_context_error(ctx));
        return 1;
    }
    em_scope_end(ctx);
    printf("backend %s, %lld f32 parameters in 6 tensors, median of %d steps\n", backend,
           (long long)total, steps);
    for (int w = 0; w < 4; w++) {
        double c = run(ctx, p, 6, w, 1, steps), f = run(ctx, p, 6, w, 0, steps);
        printf("%-6s composed %8.3f ms   fused %8.3f ms   (%.1fx)\n", kinds[w], c, f, c / f);
    }
    for (int i = 0; i < 6; i++)
        em_tensor_free(p[i]);
    em_context_free(ctx);
    return 0;
}
