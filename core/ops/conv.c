/* core/ops/conv.c — conv2d and conv1d (PyTorch's F.conv2d / F.conv1d: NCHW, stride, padding
 * as numbers or "same"/"valid", dilation, groups, optional bias), their checks with
 * PyTorch's messages and their one autograd node, ConvolutionBackward0. conv1d is conv2d
 * over a height of 1: the same kernels, the same node. An unbatched input (no N) goes
 * through unsqueeze/squeeze as in PyTorch. The lowering is in conv_lower.c, the backend's
 * whole-convolution kernels in conv_native.c; max_pool2d in pool_max.c. */
#include "config.h"
#include "conv.h"

#include <stdio.h>
#include <string.h>

/* PyTorch's names of dtypes, as its messages print them */
const char *em__torch_type(em_dtype dt, bool lower)
{
    switch (dt) {
    case EM_F32: return lower ? "float" : "Float";
    case EM_F64: return lower ? "double" : "Double";
    case EM_I64: return lower ? "long" : "Long";
    case EM_I32: return lower ? "int" : "Int";
    case EM_U8: return lower ? "unsigned char" : "Byte";
    case EM_BOOL: return lower ? "bool" : "Bool";
    default: return "?";
    }
}

/* node params: shape[0..7] = sh, sw, ph, pw, dh, dw, oh, ow; i[0] = groups, i[1] = spatial
 * dims (1 or 2); the kernel size comes from the weight's shape */
static void win_of(const em_op_params *p, const int64_t *wshape, int sd, em__win *w)
{
    w->kh = sd == 2 ? wshape[2] : 1;
    w->kw = wshape[sd + 1];
    w->sh = p->shape[0];
    w->sw = p->shape[1];
    w->ph = p->shape[2];
    w->pw = p->shape[3];
    w->dh = p->shape[4];
    w->dw = p->shape[5];
    w->oh = p->shape[6];
    w->ow = p->shape[7];
}

/* t (N, C, L) or (N, C, H, W) as (N, C, 1, L) / itself: +1 ref */
static em__tensor *as4d(em__tensor *t)
{
    if (t->ndim == 4)
        return em__tensor_ref(t);
    int64_t shape[4] = {t->shape[0], t->shape[1], 1, t->shape[2]};
    int64_t strides[4] = {t->strides[0], t->strides[1], t->strides[2] * t->shape[2], t->strides[2]};
    return em__tensor_alias(t, 4, shape, strides, t->offset);
}

static em_status bw_conv(em_bw *b)
{
    em_context *ctx = b->ctx;
    int sd = b->p->i[1];
    em__tensor *x = em__obj(b->saved[0]), *w = em__obj(b->saved[1]), *g = em__obj(b->grad_out);
    if (!x || !w || !g)
        return em__failed(ctx) != EM_OK ? em__failed(ctx) : EM_ERR_FREED;
    em__win win;
    win_of(b->p, w->shape, sd, &win);
    em__tensor *x4 = as4d(x), *w4 = as4d(w), *g4 = as4d(g), *gx = NULL, *gw = NULL, *gb = NULL;
    /* the backend's kernels for the gradients they serve, the lowering for the rest */
    em_status st = x4 && w4 && g4 ? em__conv_native_backward(x4, w4, g4, &win, b->p->i[0],
                                                             b->needs[0] ? &gx : NULL,
                                                             b->needs[1] ? &gw : NULL,
                                                             b->needs[1] && b->needs[2] ? &gb : NULL)
                                  : em__failed(ctx);
    bool lower_x = b->needs[0] && !gx, lower_w = b->needs[1] && !gw;
    if (st == EM_OK && (lower_x || lower_w)) {
        em__tensor *lx = NULL, *lw = NULL;
        st = em__conv_backward(x4, w4, g4, &win, b->p->i[0], lower_x ? &lx : NULL,
                               lower_w ? &lw : NULL);
        if (lx)
            gx = lx;
        if (lw)
            gw = lw;
    }
    em__tensor_unref(x4);
    em__tensor_unref(w4);
    em__tensor_unref(g4);
    if (st != EM_OK) {   /* nothing handed back: the native results go too */
        em__tensor_unref(gx);
        em__tensor_unref(gw);
        em__tensor_unref(gb);
        return st;
    }
    if (gx) {
        em__tensor *r = em__conv_reshape(gx, b->in_ndim[0], b->in_shape[0]);
        em__tensor_unref(gx);
        b->grad_in[0] = em__give(r);
    }
    if (gw) {
        em__tensor *r = em__conv_reshape(gw, b->in_ndim[1], b->in_shape[1]);
        em__tensor_unref(gw);
        b->grad_in[1] = em__give(r);
    }
    if (gb) {
        b->grad_in[2] = em__give(gb);
    } else if (b->needs[2]) {
        int dims[3] = {0, 2, 3};
        if (sd == 1)
            dims[1] = 2;
        b->grad_in[2] = em_sum_dims(b->grad_out, sd + 1, dims, false);
    }
    return em__failed(ctx) != EM_OK && ((b->needs[0] && !b->grad_in[0]) ||
                                         (b->needs[1] && !b->grad_in[1]) ||
                                         (b->needs[2] && !b->grad_in[2]))
               ? em__failed(ctx)
               : EM_OK;
}

static const em_op op_conv = {.name = "convolution", .grad_fn = "ConvolutionBackward0",
                              .arity = 3, .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1),
                              .kernel = EM_K(im2col), .backward = bw_conv};

/* "[2, 3, 5, 5]" */
static void shape_str(const em__tensor *t, char *buf, size_t n)
{
    em__shape_str(t->ndim, t->shape, buf, n);
}

/* The checks of F.conv{1,2}d in PyTorch's order and words; the window in win. */
static em_status conv_check(const char *name, int sd, em__tensor *x, em__tensor *w,
                            em__tensor *bias, const int *stride, const int *padding,
                            const char *mode, const int *dilation, int groups, em__win *win)
{
    em_context *ctx = x->ctx;
    char xs[96], ws[96], bs[96];
    shape_str(x, xs, sizeof xs);
    shape_str(w, ws, sizeof ws);
    for (int i = 0; i < sd; i++) {
        if (stride && stride[i] <= 0)
            return em__error(ctx, EM_ERR_INVALID, "%s: non-positive stride is not supported", name);
        if (!mode && padding && padding[i] < 0)
            return em__error(ctx, EM_ERR_INVALID, "%s: negative padding is not supported", name);
        if (dilation && dilation[i] <= 0)
            return em__error(ctx, EM_ERR_INVALID, "%s: non-positive dilation is not supported", name);
    }
    if (mode && strcmp(mode, "same") && strcmp(mode, "valid"))
        return em__error(ctx, EM_ERR_INVALID, "%s: Invalid padding string: '%s'", name, mode);
    if (mode && !strcmp(mode, "same"))
        for (int i = 0; i < sd; i++)
            if (stride && stride[i] != 1)
                return em__error(ctx, EM_ERR_INVALID,
                                 "%s: padding='same' is not supported for strided convolutions",
                                 name);
    if (groups <= 0)
        return em__error(ctx, EM_ERR_INVALID, "%s: non-positive groups is not supported", name);
    if (w->ndim != x->ndim)
        return em__error(ctx, EM_ERR_SHAPE,
                         "%s: Expected %d-dimensional input for %d-dimensional weight %s, but got "
                         "%d-dimensional input of size %s instead",
                         name, w->ndim, w->ndim, ws, x->ndim, xs);
    if (w->shape[0] % groups)
        return em__error(ctx, EM_ERR_SHAPE,
                         "%s: Given groups=%d, expected weight to be divisible by %d at dimension "
                         "0, but got weight of size [%s] instead",
                         name, groups, groups, ws);
    if (x->shape[1] != w->shape[1] * groups)
        return em__error(ctx, EM_ERR_SHAPE,
                         "%s: Given groups=%d, weight of size %s, expected input%s to have %lld "
                         "channels, but got %lld channels instead",
                         name, groups, ws, xs, (long long)(w->shape[1] * groups),
                         (long long)x->shape[1]);
    if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0])) {
        shape_str(bias, bs, sizeof bs);
        return em__error(ctx, EM_ERR_SHAPE,
                         "%s: Given weight of size %s, expected bias to be 1-dimensional with %lld "
                         "elements, but got bias of size %s instead",
                         name, ws, (long long)w->shape[0], bs);
    }
    if (!em__is_float(x->dtype))
        return em__error(ctx, EM_ERR_DTYPE, "%s: \"%s\" not implemented for '%s'", name, name,
                         em__torch_type(x->dtype, false));
    if (w->dtype != x->dtype)
        return em__error(ctx, EM_ERR_DTYPE, "%s: expected scalar type %s but found %s", name,
                         em__torch_type(x->dtype, false), em__torch_type(w->dtype, false));
    if (bias && bias->dtype != x->dtype)
        return em__error(ctx, EM_ERR_DTYPE, "%s: Input type (%s) and bias type (%s) should be "
                         "the same", name, em__torch_type(x->dtype, true),
                         em__torch_type(bias->dtype, true));
    /* the window, per spatial dim (conv1d: height 1, kernel 1) */
    int64_t k[2], s[2], p[2], d[2], in[2], o[2];
    for (int i = 0; i < 2; i++) {
        int j = i - (2 - sd);   /* index into the caller's arrays; < 0: the height of conv1d */
        in[i] = j < 0 ? 1 : x->shape[2 + j];
        k[i] = j < 0 ? 1 : w->shape[2 + j];
        s[i] = j < 0 || !stride ? 1 : stride[j];
        d[i] = j < 0 || !dilation ? 1 : dilation[j];
        int64_t eff = d[i] * (k[i] - 1);
        p[i] = j < 0 || (mode && !strcmp(mode, "valid")) ? 0
               : mode ? eff / 2 : (padding ? padding[j] : 0);
    }
    int64_t pad_in[2], kern[2];
    bool small = false;
    for (int i = 0; i < 2; i++) {
        /* "same" pads the end by the rest of d*(k-1) */
        int64_t extra = mode && !strcmp(mode, "same") ? d[i] * (k[i] - 1) - p[i] : p[i];
        pad_in[i] = in[i] + p[i] + extra;
        kern[i] = d[i] * (k[i] - 1) + 1;
        small = small || pad_in[i] < kern[i];
        o[i] = small ? 0 : (pad_in[i] - kern[i]) / s[i] + 1;
    }
    if (small) {
        if (sd == 2)
            return em__error(ctx, EM_ERR_SHAPE,
                             "%s: Calculated padded input size per channel: (%lld x %lld). Kernel "
                             "size: (%lld x %lld). Kernel size can't be greater than actual input "
                             "size", name, (long long)pad_in[0], (long long)pad_in[1],
                             (long long)kern[0], (long long)kern[1]);
        return em__error(ctx, EM_ERR_SHAPE,
                         "%s: Calculated padded input size per channel: (%lld). Kernel size: "
                         "(%lld). Kernel size can't be greater than actual input size",
                         name, (long long)pad_in[1], (long long)kern[1]);
    }
    *win = (em__win){.kh = k[0], .kw = k[1], .sh = s[0], .sw = s[1], .ph = p[0], .pw = p[1],
                     .dh = d[0], .dw = d[1], .oh = o[0], .ow = o[1]};
    return EM_OK;
}

/* relu(out), out (the convolution's output, its node recorded) holding relu's values
 * already (the kernel applied it): relu's node is recorded over out with an alias of out
 * as its result, so the graph is em_relu's. Takes out's reference. */
static em_tensor *relu_applied(em__tensor *out)
{
    em_context *ctx = out->ctx;
    em__tensor *r = em__tensor_alias(out, out->ndim, out->shape, out->strides, out->offset);
    em_op_params p;
    memset(&p, 0, sizeof p);
    em_status st = r ? em__record_for(&em__op_relu, &out, 1, &p, r) : EM_ERR_OOM;
    em__tensor_unref(out);
    if (st != EM_OK) {
        if (!r)
            em__error(ctx, EM_ERR_OOM, "relu: out of memory");
        em__tensor_unref(r);
        return NULL;
    }
    r->is_view = false;   /* relu's result, not a view: out is never seen again */
    return em__give(r);
}

static em_tensor *conv_nd(int sd, em_tensor *xh, em_tensor *wh, em_tensor *bh, const int *stride,
                          const int *padding, const char *mode, const int *dilation, int groups,
                          bool relu)
{
    const char *name = sd == 2 ? "conv2d" : "conv1d";
    if (!xh || !wh)
        return NULL;
    em__tensor *x = em__obj(xh), *w = em__obj(wh), *bias = bh ? em__obj(bh) : NULL;
    if (!x || !w || (bh && !bias))
        return NULL;
    em_context *ctx = x->ctx;
    em__tensor *all[3] = {x, w, bias};
    for (int i = 1; i < 3; i++)
        if (all[i] && all[i]->ctx != ctx)
            return em__error(ctx, EM_ERR_DEVICE,
                             "%s: expected all tensors to be on the same context, but found %s:%d "
                             "and %s:%d", name, ctx->backend_name, ctx->device_index,
                             all[i]->ctx->backend_name, all[i]->ctx->device_index), NULL;
    if (x->ndim != sd + 1 && x->ndim != sd + 2) {
        char xs[96];
        shape_str(x, xs, sizeof xs);
        return em__error(ctx, EM_ERR_SHAPE, "%s: Expected %dD (unbatched) or %dD (batched) input "
                         "to %s, but got input of size: %s", name, sd + 1, sd + 2, name, xs), NULL;
    }
    if (x->ndim == sd + 1) {   /* unbatched: PyTorch's unsqueeze(0) ... squeeze(0) */
        em__local_begin(ctx);
        em_tensor *y = conv_nd(sd, em_unsqueeze(xh, 0), wh, bh, stride, padding, mode, dilation,
                               groups, false);
        if (y && relu)
            y = em_relu(y);
        return em__local_end(ctx, y ? em_squeeze(y, 0) : NULL);
    }
    em__win win;
    if (conv_check(name, sd, x, w, bias, stride, padding, mode, dilation, groups, &win) != EM_OK)
        return NULL;
    em__tensor *x4 = as4d(x), *w4 = as4d(w), *out4 = NULL;
    bool native = false, fused = relu && sd == 2;
    if (x4 && w4)
        out4 = em__conv_native_forward(x4, w4, bias, &win, groups, &fused, &native);
    if (x4 && w4 && !native)
        out4 = em__conv_forward(x4, w4, bias, &win, groups);
    em__tensor_unref(x4);
    em__tensor_unref(w4);
    if (!out4)
        return NULL;
    em__tensor *out = out4;
    if (sd == 1) {
        int64_t shape[3] = {out4->shape[0], out4->shape[1], out4->shape[3]};
        out = em__conv_reshape(out4, 3, shape);
        em__tensor_unref(out4);
        if (!out)
            return NULL;
    }
    em_op_params p;
    memset(&p, 0, sizeof p);
    int64_t v[8] = {win.sh, win.sw, win.ph, win.pw, win.dh, win.dw, win.oh, win.ow};
    memcpy(p.shape, v, sizeof v);
    p.i[0] = groups;
    p.i[1] = sd;
    if (em__record_for(&op_conv, all, bias ? 3 : 2, &p, out) != EM_OK) {
        em__tensor_unref(out);
        return NULL;
    }
    if (fused)
        return relu_applied(out);
    em_tensor *y = em__give(out);
    if (!relu || !y)
        return y;
    em_tensor *r = em_relu(y);   /* the kernel did not apply it: a pass of its own */
    em_tensor_free(y);
    return r;
}

EMBER_API em_tensor *em_conv2d(em_tensor *x, em_tensor *w, em_tensor *bias, const int *stride,
                               const int *padding, const int *dilation, int groups)
{
    return conv_nd(2, x, w, bias, stride, padding, NULL, dilation, groups, false);
}

EMBER_API em_tensor *em_conv2d_mode(em_tensor *x, em_tensor *w, em_tensor *bias, const int *stride,
                                    const char *padding, const int *dilation, int groups)
{
    if (!padding)
        return conv_nd(2, x, w, bias, stride, NULL, NULL, dilation, groups, false);
    return conv_nd(2, x, w, bias, stride, NULL, padding, dilation, groups, false);
}

EMBER_API em_tensor *em_conv1d(em_tensor *x, em_tensor *w, em_tensor *bias, const int *stride,
                               const int *padding, const int *dilation, int groups)
{
    return conv_nd(1, x, w, bias, stride, padding, NULL, dilation, groups, false);
}

EMBER_API em_tensor *em_conv1d_mode(em_tensor *x, em_tensor *w, em_tensor *bias, const int *stride,
                                    const char *padding, const int *dilation, int groups)
{
    if (!padding)
        return conv_nd(1, x, w, bias, stride, NULL, NULL, dilation, groups, false);
    return conv_nd(1, x, w, bias, stride, NULL, padding, dilation, groups, false);
}

em_tensor *em__conv2d_relu(em_tensor *x, em_tensor *w, em_tensor *bias, const int *stride,
                           const int *padding, const int *dilation, int groups)
{
    return conv_nd(2, x, w, bias, stride, padding, NULL, dilation, groups, true);
}
