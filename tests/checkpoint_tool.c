/* tests/checkpoint_tool.c — the ember side of tests/test_checkpoint_torch.sh, on the MLP
 * Sequential(Linear(784, 256), ReLU, Linear(256, 128), ReLU, Linear(128, 10)):
 *   checkpoint_tool forward MODEL BATCH OUT
 *       em_module_load MODEL (a torch state_dict), y = model(x) for BATCH's "x"; OUT gets "y"
 *   checkpoint_tool train MODEL BATCH DIR
 *       from MODEL, Adam (lr 0.01, betas (0.9, 0.99), weight_decay 0.01, amsgrad) takes 3
 *       steps of cross_entropy(model(x), label) on BATCH; DIR/model_k.safetensors and
 *       DIR/optim_k.safetensors are saved, then the grads of the next step (DIR/grads,
 *       under the parameters' names), then after that step DIR/model_final and
 *       DIR/optim_final
 *   checkpoint_tool compare-optim A B
 *       two such Adam optimizers load A and B (em_optim_load); their step counts and options
 *       must agree and every state tensor within 1e-6; prints the largest difference
 * Runs on the cpu backend. */
#include <ember/ember.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PARAMS 6

static em_module *mlp(em_context *ctx)
{
    return em_sequential(ctx, (em_module *[]){em_linear(ctx, 784, 256, true), em_relu_module(ctx),
                                              em_linear(ctx, 256, 128, true), em_relu_module(ctx),
                                              em_linear(ctx, 128, 10, true)}, 5);
}

static em_optim *adam(em_module *m)
{
    em_tensor *p[N_PARAMS];
    if (em_module_parameters(m, NULL, p, N_PARAMS) != N_PARAMS)
        return NULL;
    em_adam_options o = em_adam_defaults();
    o.lr = 0.01;
    o.beta2 = 0.99;
    o.weight_decay = 0.01;
    o.amsgrad = true;
    return em_optim_adam(p, N_PARAMS, &o);
}

static em_tensor *load_one(em_context *ctx, const char *path, const char *name)
{
    em_safetensors *st;
    if (em_safetensors_open(ctx, path, &st) != EM_OK)
        return NULL;
    em_tensor *t = em_safetensors_load(st, name, ctx);
    em_safetensors_close(st);
    return t;
}

static int forward(em_context *ctx, const char *model, const char *batch, const char *out)
{
    em_module *m = mlp(ctx);
    if (!m || em_module_load(m, model) != EM_OK) {
        em_module_free(m);
        return 1;
    }
    em_module_train(m, false);
    em_tensor *y = em_module_forward(m, load_one(ctx, batch, "x"));
    int rc = !y || em_save_safetensors(out, (const char *[]){"y"}, &y, 1, NULL) != EM_OK;
    em_module_free(m);
    return rc;
}

static em_status step(em_module *m, em_optim *o, em_tensor *x, em_tensor *label)
{
    em_context *ctx = em_tensor_context(x);
    em_scope_begin(ctx);
    em_status st = em_backward(em_cross_entropy(em_module_forward(m, x), label));
    if (st == EM_OK)
        st = em_optim_step(o);
    if (st == EM_OK)
        st = em_optim_zero_grad(o, false);
    em_scope_end(ctx);
    return st;
}

static int train(em_context *ctx, const char *model, const char *batch, const char *dir)
{
    char path[4096];
    em_module *m = mlp(ctx);
    em_optim *o = m && em_module_load(m, model) == EM_OK ? adam(m) : NULL;
    em_tensor *x = load_one(ctx, batch, "x"), *label = load_one(ctx, batch, "label");
    em_status st = o && x && label ? EM_OK : EM_ERR_INVALID;
    for (int k = 0; k < 3 && st == EM_OK; k++)
        st = step(m, o, x, label);
#define SAVE(fn, obj, name)                                                                  \
    do {                                                                                     \
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);                         \
        if (st == EM_OK)                                                                     \
            st = fn(obj, path, NULL);                                                        \
    } while (0)
    SAVE(em_module_save, m, "model_k");
    SAVE(em_optim_save, o, "optim_k");
    /* the grads of step 4, as ember computes them */
    const char *names[N_PARAMS];
    em_tensor *p[N_PARAMS], *g[N_PARAMS];
    if (st == EM_OK) {
        em_module_parameters(m, names, p, N_PARAMS);
        em_scope_begin(ctx);
        st = em_backward(em_cross_entropy(em_module_forward(m, x), label));
        em_scope_end(ctx);
        for (int i = 0; i < N_PARAMS; i++)
            g[i] = em_grad(p[i]);
        snprintf(path, sizeof path, "%s/grads.safetensors", dir);
        if (st == EM_OK)
            st = em_save_safetensors(path, names, g, N_PARAMS, NULL);
        if (st == EM_OK)
            st = em_optim_step(o);
    }
    SAVE(em_module_save, m, "model_final");
    SAVE(em_optim_save, o, "optim_final");
#undef SAVE
    em_optim_free(o);
    em_module_free(m);
    return st != EM_OK;
}

static double max_diff(em_tensor *a, em_tensor *b)
{
    int64_t n = em_tensor_numel(a);
    if (n != em_tensor_numel(b))
        return INFINITY;
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    double d = INFINITY;
    if (x && y && em_tensor_to_host(a, x, sizeof(float) * (size_t)n) == EM_OK &&
        em_tensor_to_host(b, y, sizeof(float) * (size_t)n) == EM_OK) {
        d = 0;
        for (int64_t i = 0; i < n; i++)
            d = fmax(d, fabs((double)x[i] - (double)y[i]));
    }
    free(x);
    free(y);
    return d;
}

static int compare_optim(em_context *ctx, const char *a, const char *b)
{
    static const char *const names[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    em_module *ma = mlp(ctx), *mb = mlp(ctx);
    em_optim *oa = ma ? adam(ma) : NULL, *ob = mb ? adam(mb) : NULL;
    int rc = !oa || !ob || em_optim_load(oa, a) != EM_OK || em_optim_load(ob, b) != EM_OK;
    double worst = 0;
    for (int i = 0; !rc && i < N_PARAMS; i++) {
        if (em_optim_state_steps(oa, i) != em_optim_state_steps(ob, i)) {
            fprintf(stderr, "parameter %d: %lld steps against %lld\n", i,
                    (long long)em_optim_state_steps(oa, i), (long long)em_optim_state_steps(ob, i));
            rc = 1;
        }
        for (int k = 0; k < 3 && !rc; k++) {
            em_tensor *x = em_optim_state(oa, i, names[k]), *y = em_optim_state(ob, i, names[k]);
            double d = x && y ? max_diff(x, y) : INFINITY;
            worst = fmax(worst, d);
        }
    }
    if (!rc && em_optim_get_lr(oa) != em_optim_get_lr(ob))
        rc = 1;
    if (!rc)
        printf("optimizer state: max abs diff %.3g\n", worst);
    rc |= !(worst <= 1e-6);
    em_optim_free(oa);
    em_optim_free(ob);
    em_module_free(ma);
    em_module_free(mb);
    return rc;
}

int main(int argc, char **argv)
{
    bool ok = (argc == 5 && (!strcmp(argv[1], "forward") || !strcmp(argv[1], "train"))) ||
              (argc == 4 && !strcmp(argv[1], "compare-optim"));
    if (!ok) {
        fprintf(stderr, "usage: %s forward MODEL BATCH OUT | train MODEL BATCH DIR | "
                "compare-optim A B\n", argv[0]);
        return 2;
    }
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", "cpu");
    const char *dir = getenv("EMBER_TEST_BACKEND_DIR");
    if (dir && *dir)
        em_config_set(cfg, "backends", "path", dir);
    em_context *ctx = NULL;
    em_status s = em_context_create_with(&ctx, cfg);
    em_config_free(cfg);
    if (s != EM_OK)
        return fprintf(stderr, "%s\n", em_last_error()), 1;
    int rc = !strcmp(argv[1], "forward") ? forward(ctx, argv[2], argv[3], argv[4])
           : !strcmp(argv[1], "train")   ? train(ctx, argv[2], argv[3], argv[4])
                                         : compare_optim(ctx, argv[2], argv[3]);
    if (rc && em_context_status(ctx) != EM_OK)
        fprintf(stderr, "%s\n", em_context_error(ctx));
    em_context_free(ctx);
    return rc;
}
