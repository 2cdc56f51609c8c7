/* core/ops/pool_avg.c — average pooling: em_avg_pool2d (kernel, stride, padding, ceil_mode,
 * count_include_pad, divisor_override) and em_adaptive_avg_pool2d, over (C, H, W) or
 * (N, C, H, W) inputs, with PyTorch 1.13's output-size rules, checks and messages. Both lower
 * to the avg_pool2d kernel (ABI 1.4) on 3-D (N * C, H, W) views; their backward
 * (AvgPool2DBackward0, AdaptiveAvgPool2DBackward0) to avg_pool2d_grad, which gathers each
 * input element's gradient from the windows that contain it. */
#include "config.h"
#include "compose.h"

#include <string.h>

#define K EM_K

/* params: shape[0..5] = kH, kW, sH, sW, pH, pW (adaptive: shape[0..1] = OH, OW),
 * shape[6] = divisor_override (0: none); i[0] = count_include_pad, i[1] = adaptive,
 * i[2] = ceil_mode */

/* t (3-D or 4-D) as a 3-D (B, H, W) tensor: an alias when its leading dims merge, else a
 * contiguous copy. +1 reference, NULL on error (recorded). */
static em__tensor *as_bhw(em__tensor *t)
{
    if (t->ndim == 3)
        return em__tensor_ref(t);
    int64_t shape[3] = {t->shape[0] * t->shape[1], t->shape[2], t->shape[3]};
    int64_t strides[3] = {t->strides[1], t->strides[2], t->strides[3]};
    if (t->shape[1] == 1)
        strides[0] = t->strides[0];
    else if (t->shape[0] != 1 && t->strides[0] != t->strides[1] * t->shape[1]) {
        em__tensor *c = em__cast(t, t->dtype);
        if (!c)
            return NULL;
        em__tensor *a = em__tensor_alias(c, 3, shape, (int64_t[]){shape[1] * shape[2], shape[2], 1},
                                         c->offset);
        em__tensor_unref(c);
        return a;
    }
    return em__tensor_alias(t, 3, shape, strides, t->offset);
}

static void kernel_ip(const em_op_params *p, int64_t *ip)
{
    for (int i = 0; i < 6; i++)
        ip[i] = p->i[1] ? 0 : p->shape[i];
    ip[6] = p->i[0];
    ip[7] = p->i[1] ? 0 : p->shape[6];
    ip[8] = p->i[1];
}

/* out = kernel k (avg_pool2d or its backward) of in, both 3-D or both 4-D */
static em_status launch_pool(size_t k, em__tensor *out, em__tensor *in, const em_op_params *p)
{
    em_context *ctx = out->ctx;
    if (em__numel(out->ndim, out->shape) == 0)
        return EM_OK;
    if (em__numel(in->ndim, in->shape) == 0)   /* backward of an empty output: no window */
        return em__kfill(out, 0.0);
    em__tensor *o3 = as_bhw(out), *i3 = o3 ? as_bhw(in) : NULL;
    em_status st = i3 ? EM_OK : em__failed(ctx);
    if (st == EM_OK) {
        int64_t ip[9];
        kernel_ip(p, ip);
        em__tensor *outs[1] = {o3}, *ins[1] = {i3};
        st = em__launch_views(ctx, k, outs, 1, ins, 1, NULL, ip, 9);
    }
    em__tensor_unref(o3);
    em__tensor_unref(i3);
    return st;
}

static em_status fw_pool(em_call *c)
{
    return launch_pool(K(avg_pool2d), c->out, c->in[0], &c->p);
}

static em_status bw_pool(em_bw *b)
{
    em__tensor *g = em__obj(b->grad_out);
    if (!g)
        return em__failed(b->ctx);
    em__tensor *gi = em__tensor_new(b->ctx, b->in_dtype[0], b->in_ndim[0], b->in_shape[0]);
    if (!gi)
        return em__failed(b->ctx);
    em_status st = launch_pool(K(avg_pool2d_grad), gi, g, b->p);
    if (st != EM_OK) {
        em__tensor_unref(gi);
        return st;
    }
    b->grad_in[0] = em__give(gi);
    return b->grad_in[0] ? EM_OK : em__failed(b->ctx);
}

static em_status check_input(em_call *c)
{
    em__tensor *x = c->in[0];
    char s[160];
    em__shape_str(x->ndim, x->shape, s, sizeof s);
    bool adaptive = c->p.i[1];
    if (x->ndim != 3 && x->ndim != 4) {
        if (adaptive)
            return em__error(c->ctx, EM_ERR_SHAPE, "adaptive_avg_pool2d(): Expected 3D or 4D "
                             "tensor, but got %s", s);
        return em__error(c->ctx, EM_ERR_SHAPE, "avg_pool2d: Expected 3D or 4D (batch mode) "
                         "tensor with optional 0 dim batch size for input, but got:%s", s);
    }
    for (int d = adaptive ? 1 : x->ndim - 3; d < x->ndim; d++)
        if (x->shape[d] == 0) {
            if (adaptive)
                return em__error(c->ctx, EM_ERR_SHAPE, "adaptive_avg_pool2d(): Expected input "
                                 "to have non-zero size for non-batch dimensions, but input has "
                                 "sizes %s with dimension %d being empty", s, d);
            return em__error(c->ctx, EM_ERR_SHAPE, "avg_pool2d: Expected 3D or 4D (batch mode) "
                             "tensor with optional 0 dim batch size for input, but got:%s", s);
        }
    if (!em__is_float(x->dtype))
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected a floating point tensor (f32 or "
                         "f64), got %s", c->op->name, em_dtype_name(x->dtype));
    c->out_ndim = x->ndim;
    memcpy(c->out_shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    c->out_dtype = x->dtype;
    return EM_OK;
}

/* PyTorch's pooling_output_shape (dilation 1) */
static int64_t out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, bool ceil_mode)
{
    int64_t num = in + 2 * pad - (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    int64_t q = num / stride;
    if (num % stride != 0 && num < 0)
        q--;
    int64_t o = q + 1;
    if (ceil_mode && (o - 1) * stride >= in + pad)
        o--;
    return o;
}

static em_status shape_avg_pool(em_call *c)
{
    if (check_input(c) != EM_OK)
        return em__failed(c->ctx);
    const int64_t *q = c->p.shape;
    int nd = c->out_ndim;
    if (q[0] <= 0 || q[1] <= 0)
        return em__error(c->ctx, EM_ERR_INVALID, "avg_pool2d: kernel size should be greater than "
                         "zero, but got kH: %lld kW: %lld", (long long)q[0], (long long)q[1]);
    if (q[2] == 0 || q[3] == 0)
        return em__error(c->ctx, EM_ERR_INVALID, "avg_pool2d: stride should not be zero");
    if (q[2] < 0 || q[3] < 0)
        return em__error(c->ctx, EM_ERR_INVALID, "avg_pool2d: stride should be greater than "
                         "zero, but got dH: %lld dW: %lld", (long long)q[2], (long long)q[3]);
    for (int d = 0; d < 2; d++) {
        if (q[4 + d] < 0)
            return em__error(c->ctx, EM_ERR_INVALID, "avg_pool2d: pad must be non-negative, but "
                             "got pad: %lld", (long long)q[4 + d]);
        if (q[4 + d] > q[d] / 2)
            return em__error(c->ctx, EM_ERR_INVALID, "avg_pool2d: pad should be at most half of "
                             "kernel size, but got pad=%lld and kernel_size=%lld",
                             (long long)q[4 + d], (long long)q[d]);
    }
    int64_t oh = out_size(c->out_shape[nd - 2], q[0], q[4], q[2], c->p.i[2]);
    int64_t ow = out_size(c->out_shape[nd - 1], q[1], q[5], q[3], c->p.i[2]);
    if (oh < 1 || ow < 1)
        return em__error(c->ctx, EM_ERR_SHAPE, "avg_pool2d: Given input size: (%lldx%lldx%lld). "
                         "Calculated output size: (%lldx%lldx%lld). Output size is too small",
                         (long long)c->out_shape[nd - 3], (long long)c->out_shape[nd - 2],
                         (long long)c->out_shape[nd - 1], (long long)c->out_shape[nd - 3],
                         (long long)oh, (long long)ow);
    c->out_shape[nd - 2] = oh;
    c->out_shape[nd - 1] = ow;
    return EM_OK;
}

static em_status shape_adaptive(em_call *c)
{
    if (check_input(c) != EM_OK)
        return em__failed(c->ctx);
    const int64_t *q = c->p.shape;
    if (q[0] < 0 || q[1] < 0)
        return em__error(c->ctx, EM_ERR_INVALID, "adaptive_avg_pool2d: elements of output_size "
                         "must be greater than or equal to 0 but received {%lld, %lld}",
                         (long long)q[0], (long long)q[1]);
    c->out_shape[c->out_ndim - 2] = q[0];
    c->out_shape[c->out_ndim - 1] = q[1];
    return EM_OK;
}

static const em_op op_avg_pool2d = {.name = "avg_pool2d", .grad_fn = "AvgPool2DBackward0",
                                    .arity = 1, .kernel = K(avg_pool2d), .shape = shape_avg_pool,
                                    .forward = fw_pool, .backward = bw_pool};
static const em_op op_adaptive_avg_pool2d = {
    .name = "adaptive_avg_pool2d", .grad_fn = "AdaptiveAvgPool2DBackward0", .arity = 1,
    .kernel = K(avg_pool2d), .shape = shape_adaptive, .forward = fw_pool, .backward = bw_pool};

EMBER_API em_tensor *em_avg_pool2d(em_tensor *x, const int64_t kernel_size[2],
                                   const int64_t stride[2], const int64_t padding[2],
                                   bool ceil_mode, bool count_include_pad,
                                   int64_t divisor_override)
{
    em__tensor *o = em__obj(x);
    if (!o)
        return NULL;
    if (!kernel_size)
        return em__error(o->ctx, EM_ERR_INVALID, "avg_pool2d: kernel_size is NULL"), NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    for (int d = 0; d < 2; d++) {
        p.shape[d] = kernel_size[d];
        p.shape[2 + d] = stride ? stride[d] : kernel_size[d];
        p.shape[4 + d] = padding ? padding[d] : 0;
    }
    if (divisor_override < 0 || divisor_override > INT32_MAX)
        return em__error(o->ctx, EM_ERR_INVALID, "avg_pool2d: divisor_override %lld is out of "
                         "range", (long long)divisor_override), NULL;
    p.shape[6] = divisor_override;
    p.i[0] = count_include_pad;
    p.i[2] = ceil_mode;
    return em__apply_h(&op_avg_pool2d, &x, 1, &p);
}

EMBER_API em_tensor *em_adaptive_avg_pool2d(em_tensor *x, const int64_t output_size[2])
{
    em__tensor *o = em__obj(x);
    if (!o)
        return NULL;
    if (!output_size)
        return em__error(o->ctx, EM_ERR_INVALID, "adaptive_avg_pool2d: output_size is NULL"),
               NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.shape[0] = output_size[0];
    p.shape[1] = output_size[1];
    p.i[0] = 1;
    p.i[1] = 1;
    /* PyTorch takes the mean over the last two dims for a 1 x 1 output (MeanBackward1) */
    if (output_size[0] == 1 && output_size[1] == 1 && (o->ndim == 3 || o->ndim == 4) &&
        em__is_float(o->dtype) && em__numel(o->ndim, o->shape) > 0)
        return em_mean_dims(x, 2, (const int[]){-1, -2}, true);
    return em__apply_h(&op_adaptive_avg_pool2d, &x, 1, &p);
}
