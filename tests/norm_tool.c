/* tests/norm_tool.c — the ember side of tests/test_norm_torch.sh, on the net
 * Sequential(BatchNorm2d(3), ReLU, AvgPool2d(2), AdaptiveAvgPool2d((2, 2)), LayerNorm([3, 2, 2]))
 * followed by a BatchNorm1d(3) (momentum None) on (N, 3, 4) inputs:
 *   norm_tool run MODEL MODEL1D BATCH DIR
 *       em_module_load MODEL and MODEL1D (torch state_dicts, strict); for BATCH's "x" and
 *       "x1": two forwards in training mode, saving the state after them (DIR/ember_model,
 *       DIR/ember_model1d), then one in eval mode; DIR/ember_y holds y_train (the second
 *       training output), y_eval, y1_train, y1_eval
 * Runs on the cpu backend. */
#include <ember/ember.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static em_tensor *load_one(em_context *ctx, const char *path, const char *name)
{
    em_safetensors *st;
    if (em_safetensors_open(ctx, path, &st) != EM_OK)
        return NULL;
    em_tensor *t = em_safetensors_load(st, name, ctx);
    em_safetensors_close(st);
    return t;
}

static int run(em_context *ctx, const char *model, const char *model1d, const char *batch,
               const char *dir)
{
    em_module *net = em_sequential(ctx, (em_module *[]){
        em_batch_norm2d(ctx, 3, 1e-5, 0.1, true, true), em_relu_module(ctx),
        em_avg_pool2d_module(ctx, (const int64_t[]){2, 2}, NULL, NULL, false, true, 0),
        em_adaptive_avg_pool2d_module(ctx, (const int64_t[]){2, 2}),
        em_layer_norm_module(ctx, 3, (const int64_t[]){3, 2, 2}, 1e-5, true)}, 5);
    em_module *bn1 = em_batch_norm1d(ctx, 3, 1e-5, NAN, true, true);
    int rc = 1;
    char path[4096];
    if (!net || !bn1 || em_module_load(net, model) != EM_OK || em_module_load(bn1, model1d) != EM_OK)
        goto out;
    em_tensor *x = load_one(ctx, batch, "x"), *x1 = load_one(ctx, batch, "x1");
    em_tensor *y = em_module_forward(net, x);
    y = em_module_forward(net, em_add_scalar(x, 0.5));
    em_tensor *y1 = em_module_forward(bn1, x1);
    y1 = em_module_forward(bn1, em_mul_scalar(x1, 2.0));
    if (!y || !y1)
        goto out;
    snprintf(path, sizeof path, "%s/ember_model.safetensors", dir);
    if (em_module_save(net, path, NULL) != EM_OK)
        goto out;
    snprintf(path, sizeof path, "%s/ember_model1d.safetensors", dir);
    if (em_module_save(bn1, path, NULL) != EM_OK)
        goto out;
    em_module_train(net, false);
    em_module_train(bn1, false);
    em_tensor *ys[4] = {y, em_module_forward(net, x), y1, em_module_forward(bn1, x1)};
    const char *names[4] = {"y_train", "y_eval", "y1_train", "y1_eval"};
    snprintf(path, sizeof path, "%s/ember_y.safetensors", dir);
    if (!ys[1] || !ys[3] || em_save_safetensors(path, names, ys, 4, NULL) != EM_OK)
        goto out;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "norm_tool: %s\n", em_context_error(ctx));
    em_module_free(net);
    em_module_free(bn1);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 6 || strcmp(argv[1], "run")) {
        fprintf(stderr, "usage: norm_tool run MODEL MODEL1D BATCH DIR\n");
        return 2;
    }
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", "cpu");
    em_context *ctx;
    em_status st = em_context_create_with(&ctx, cfg);
    em_config_free(cfg);
    if (st != EM_OK) {
        fprintf(stderr, "norm_tool: %s\n", em_last_error());
        return 1;
    }
    int rc = run(ctx, argv[2], argv[3], argv[4], argv[5]);
    em_context_free(ctx);
    return rc;
}
