/* core/nn/layers_conv.c — the modules of convolutional nets: Conv2d (PyTorch's default
 * initialisation from the context's generator), MaxPool2d and Flatten. Their parameters are
 * named as torch.nn's ("weight", "bias"), so a model's state_dict saves and loads through
 * em_module_save / em_module_load with PyTorch's keys. */
#include "nn_impl.h"

#include <math.h>
#include <ember/conv.h>

static bool pair_ok(em_context *ctx, const char *mod, const char *what, const int *v, int min)
{
    if (v && (v[0] < min || v[1] < min)) {
        em__error(ctx, EM_ERR_INVALID, "%s: %s must be at least %d, but got (%d, %d)", mod, what,
                  min, v[0], v[1]);
        return false;
    }
    return true;
}

static void pair_set(int *dst, const int *v, int dflt0, int dflt1)
{
    dst[0] = v ? v[0] : dflt0;
    dst[1] = v ? v[1] : dflt1;
}

EMBER_API em_module *em_conv2d_module(em_context *ctx, int64_t in_channels, int64_t out_channels,
                                      const int *kernel, const int *stride, const int *padding,
                                      const int *dilation, int groups, bool bias)
{
    if (!ctx)
        return NULL;
    if (!kernel) {
        em__error(ctx, EM_ERR_INVALID, "Conv2d: kernel_size must be given");
        return NULL;
    }
    if (groups <= 0) {
        em__error(ctx, EM_ERR_INVALID, "Conv2d: groups must be a positive integer");
        return NULL;
    }
    if (in_channels % groups) {
        em__error(ctx, EM_ERR_INVALID, "Conv2d: in_channels must be divisible by groups");
        return NULL;
    }
    if (out_channels % groups) {
        em__error(ctx, EM_ERR_INVALID, "Conv2d: out_channels must be divisible by groups");
        return NULL;
    }
    if (in_channels < 0 || out_channels < 0 || !pair_ok(ctx, "Conv2d", "kernel_size", kernel, 1) ||
        !pair_ok(ctx, "Conv2d", "stride", stride, 1) ||
        !pair_ok(ctx, "Conv2d", "padding", padding, 0) ||
        !pair_ok(ctx, "Conv2d", "dilation", dilation, 1)) {
        if (em_context_status(ctx) == EM_OK)
            em__error(ctx, EM_ERR_INVALID, "Conv2d: negative channels (%lld, %lld)",
                      (long long)in_channels, (long long)out_channels);
        return NULL;
    }
    em_module *m = em__module_new(ctx, EM__MOD_CONV2D, "Conv2d");
    if (!m)
        return NULL;
    m->in_features = in_channels;
    m->out_features = out_channels;
    pair_set(m->kernel, kernel, 1, 1);
    pair_set(m->stride, stride, 1, 1);
    pair_set(m->padding, padding, 0, 0);
    pair_set(m->dilation, dilation, 1, 1);
    m->groups = groups;
    /* reset_parameters(): kaiming_uniform_(a=sqrt(5)) gives bound 1 / sqrt(fan_in), fan_in =
     * in_channels / groups * kh * kw; the bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    int64_t fan_in = in_channels / groups * kernel[0] * kernel[1];
    double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
    int64_t ws[4] = {out_channels, in_channels / groups, kernel[0], kernel[1]};
    m->param_names[0] = "weight";
    m->params[0] = em__uniform_param(ctx, 4, ws, bound);
    m->n_params = m->params[0] ? 1 : 0;
    if (m->params[0] && bias) {
        m->param_names[1] = "bias";
        m->params[1] = em__uniform_param(ctx, 1, (const int64_t[]){out_channels}, bound);
        m->n_params = m->params[1] ? 2 : 1;
    }
    if (!m->params[0] || (bias && !m->params[1])) {
        em_module_free(m);
        return NULL;
    }
    return m;
}

em_tensor *em__conv2d_forward(em_module *m, em_tensor *x, bool relu)
{
    em_tensor *b = m->n_params > 1 ? m->params[1] : NULL;
    if (relu)
        return em__conv2d_relu(x, m->params[0], b, m->stride, m->padding, m->dilation, m->groups);
    return em_conv2d(x, m->params[0], b, m->stride, m->padding, m->dilation, m->groups);
}

EMBER_API em_module *em_max_pool2d_module(em_context *ctx, const int *kernel, const int *stride,
                                          const int *padding, const int *dilation, bool ceil_mode)
{
    if (!ctx)
        return NULL;
    if (!kernel) {
        em__error(ctx, EM_ERR_INVALID, "MaxPool2d: kernel_size must be given");
        return NULL;
    }
    em_module *m = em__module_new(ctx, EM__MOD_MAXPOOL2D, "MaxPool2d");
    if (!m)
        return NULL;
    pair_set(m->kernel, kernel, 1, 1);
    pair_set(m->stride, stride ? stride : kernel, 1, 1);
    pair_set(m->padding, padding, 0, 0);
    pair_set(m->dilation, dilation, 1, 1);
    m->ceil_mode = ceil_mode;
    return m;
}

em_tensor *em__max_pool2d_forward(em_module *m, em_tensor *x)
{
    return em_max_pool2d(x, m->kernel, m->stride, m->padding, m->dilation, m->ceil_mode);
}

/* torch.flatten(x, 1): (N, ...) as (N, -1) */
static em_tensor *flatten1(em_tensor *x)
{
    int nd = em_tensor_ndim(x);
    if (nd < 0)
        return NULL;
    if (nd <= 1)
        return em_reshape(x, nd, em_tensor_shape(x));
    return em_reshape(x, 2, (const int64_t[]){em_tensor_size(x, 0), -1});
}

EMBER_API em_module *em_flatten_module(em_context *ctx)
{
    return em_function_module(ctx, "Flatten", flatten1);
}
