/* core/ops/pool_max.c — max_pool2d (PyTorch's F.max_pool2d with return_indices): kernel, stride
 * (default: the kernel), padding, dilation, ceil_mode, PyTorch's output-size rule and
 * messages; one max_pool2d kernel call (ABI 1.4) gives the values and the i64 indices of
 * the maxima in their planes. Its node, MaxPool2DWithIndicesBackward0, sends each window's
 * gradient to its argmax: one max_pool2d_grad call (ABI 1.5) where the backend has it, else
 * a zero gradient and a scatter_add of the output's gradient at those indices (the same sums
 * in the same order). */
#include "config.h"
#include "conv.h"

#include <string.h>

/* params: shape[0..7] = kh, kw, sh, sw, ph, pw, dh, dw (the output size is the gradient's) */

/* The gradient through max_pool2d_grad: gi (x's shape, contiguous) from g (any strides) and the
 * saved indices, as 4-D views. */
static em_status bw_kernel(em_bw *b, em__tensor *g, em__tensor *ix)
{
    int nd = b->in_ndim[0];
    const int64_t *xs = b->in_shape[0];
    em__tensor *gi = em__tensor_new(b->ctx, b->in_dtype[0], nd, xs);
    if (!gi)
        return em__failed(b->ctx);
    int64_t x4[4], g4[4], g4s[4], i4s[4];
    for (int i = 0; i < 4; i++) {
        int d = nd - 4 + i;
        x4[i] = d >= 0 ? xs[d] : 1;
        g4[i] = d >= 0 ? g->shape[d] : 1;
        g4s[i] = d >= 0 ? g->strides[d] : 0;
    }
    em__contiguous_strides(4, g4, i4s);
    em__tensor *gi4 = em__conv_reshape(gi, 4, x4);
    em__tensor *ix4 = em__tensor_alias(ix, 4, g4, i4s, ix->offset);
    em__tensor *g44 = em__tensor_alias(g, 4, g4, g4s, g->offset);
    em_status st = gi4 && ix4 && g44 ? EM_OK : em__failed(b->ctx);
    if (st == EM_OK) {
        int64_t ip[10];
        for (int i = 0; i < 8; i++)
            ip[i] = b->p->shape[i];
        ip[8] = g4[2];
        ip[9] = g4[3];
        em__tensor *ins[2] = {g44, ix4};
        st = em__launch_views(b->ctx, EM_K(max_pool2d_grad), &gi4, 1, ins, 2, NULL, ip, 10);
    }
    em__tensor_unref(gi4);
    em__tensor_unref(ix4);
    em__tensor_unref(g44);
    if (st == EM_OK && !(b->grad_in[0] = em__give(em__tensor_ref(gi))))
        st = em__failed(b->ctx);
    em__tensor_unref(gi);
    return st;
}

static em_status bw_max_pool(em_bw *b)
{
    int nd = b->in_ndim[0];
    const int64_t *xs = b->in_shape[0];
    int64_t hw = xs[nd - 2] * xs[nd - 1], planes = em__numel(nd, xs) / (hw ? hw : 1);
    em__tensor *g = em__obj(b->grad_out), *ix = em__obj(b->saved[1]);
    if (!g || !ix)
        return em__failed(b->ctx);
    if (em__numel(nd, xs) > 0 && em__is_contiguous(ix) &&
        em__kernel_native(b->ctx, EM_K(max_pool2d_grad), b->in_dtype[0]))
        return bw_kernel(b, g, ix);
    int64_t ohw = g->shape[g->ndim - 2] * g->shape[g->ndim - 1];
    int64_t zs[2] = {planes, hw}, gs[2] = {planes, ohw};
    em_tensor *z = em_zeros(b->ctx, b->in_dtype[0], 2, zs);
    em_tensor *g2 = em_reshape(b->grad_out, 2, gs), *i2 = em_reshape(b->saved[1], 2, gs);
    if (z && g2 && i2 && em__hscatter_add_(z, 1, i2, g2) == EM_OK)
        b->grad_in[0] = em_reshape(z, nd, xs);
    return EM_OK;
}

/* Recorded by em__record_for only (two outputs): in = {x, indices}. */
static const em_op op_max_pool = {.name = "max_pool2d", .grad_fn = "MaxPool2DWithIndicesBackward0",
                                  .arity = 2, .saves = EM_SAVE_IN(1),
                                  .kernel = EM_K(max_pool2d), .backward = bw_max_pool};

/* floor division (PyTorch's div_rtn) */
static int64_t div_floor(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* pooling_output_shape of one dim into *o, with its checks (errors recorded) */
static em_status pool_out(em_context *ctx, int64_t in, int64_t k, int64_t pad, int64_t s,
                          int64_t d, bool ceil_mode, int64_t *o)
{
    if (s == 0)
        return em__error(ctx, EM_ERR_INVALID, "max_pool2d: stride should not be zero");
    if (pad < 0)
        return em__error(ctx, EM_ERR_INVALID, "max_pool2d: pad must be non-negative, but got "
                         "pad: %lld", (long long)pad);
    if (pad > k / 2)
        return em__error(ctx, EM_ERR_INVALID, "max_pool2d: pad should be at most half of kernel "
                         "size, but got pad=%lld and kernel_size=%lld", (long long)pad,
                         (long long)k);
    *o = div_floor(in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
    if (ceil_mode && (*o - 1) * s >= in + pad)
        --*o;
    return EM_OK;
}

EMBER_API em_status em_max_pool2d_with_indices(em_tensor *xh, const int *kernel, const int *stride,
                                               const int *padding, const int *dilation,
                                               bool ceil_mode, em_tensor **out,
                                               em_tensor **indices)
{
    if (!xh)
        return em__error_global(EM_ERR_INVALID, "max_pool2d: NULL tensor");
    em__tensor *x = em__obj(xh);
    if (!x)
        return EM_ERR_FREED;
    em_context *ctx = x->ctx;
    if (!kernel)
        return em__error(ctx, EM_ERR_INVALID, "max_pool2d: kernel_size must be given");
    int64_t k[2] = {kernel[0], kernel[1]}, s[2], p[2], d[2], o[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        s[i] = stride ? stride[i] : k[i];
        p[i] = padding ? padding[i] : 0;
        d[i] = dilation ? dilation[i] : 1;
    }
    int nd = x->ndim;
    if (nd == 3 || nd == 4) {
        for (int i = 0; i < 2; i++)
            if (pool_out(ctx, x->shape[nd - 2 + i], k[i], p[i], s[i], d[i], ceil_mode, &o[i]) !=
                EM_OK)
                return em__failed(ctx);
    }
    if (k[0] <= 0 || k[1] <= 0)
        return em__error(ctx, EM_ERR_INVALID, "max_pool2d: kernel size should be greater than "
                         "zero, but got kH: %lld kW: %lld", (long long)k[0], (long long)k[1]);
    if (s[0] <= 0 || s[1] <= 0)
        return em__error(ctx, EM_ERR_INVALID, "max_pool2d: stride should be greater than zero, "
                         "but got dH: %lld dW: %lld", (long long)s[0], (long long)s[1]);
    if (d[0] <= 0 || d[1] <= 0)
        return em__error(ctx, EM_ERR_INVALID, "max_pool2d: dilation should be greater than zero, "
                         "but got dilationH: %lld dilationW: %lld", (long long)d[0],
                         (long long)d[1]);
    bool ok = nd == 3 || nd == 4;
    for (int i = nd == 4 ? 1 : 0; ok && i < nd; i++)
        ok = x->shape[i] != 0;
    if (!ok) {
        char xs[96];
        em__shape_str(x->ndim, x->shape, xs, sizeof xs);
        return em__error(ctx, EM_ERR_SHAPE, "max_pool2d: Expected 3D or 4D (batch mode) tensor "
                         "with optional 0 dim batch size for input, but got:%s", xs);
    }
    if (o[0] < 1 || o[1] < 1)
        return em__error(ctx, EM_ERR_SHAPE, "max_pool2d: Given input size: (%lldx%lldx%lld). "
                         "Calculated output size: (%lldx%lldx%lld). Output size is too small",
                         (long long)x->shape[nd - 3], (long long)x->shape[nd - 2],
                         (long long)x->shape[nd - 1], (long long)x->shape[nd - 3],
                         (long long)o[0], (long long)o[1]);
    if (!em__is_float(x->dtype))
        return em__error(ctx, EM_ERR_DTYPE, "max_pool2d: \"max_pool2d\" not implemented for '%s'",
                         em__torch_type(x->dtype, false));
    int64_t oshape[4], x4s[4], x4st[4];
    for (int i = 0; i < nd - 2; i++)
        oshape[i] = x->shape[i];
    oshape[nd - 2] = o[0];
    oshape[nd - 1] = o[1];
    x4s[0] = nd == 4 ? x->shape[0] : 1;
    x4st[0] = nd == 4 ? x->strides[0] : 0;
    for (int i = 1; i < 4; i++) {
        x4s[i] = x->shape[nd - 4 + i];
        x4st[i] = x->strides[nd - 4 + i];
    }
    int64_t v4s[4] = {x4s[0], x4s[1], o[0], o[1]};
    em__tensor *v = em__tensor_new(ctx, x->dtype, nd, oshape);
    em__tensor *ix = em__tensor_new(ctx, EM_I64, nd, oshape);
    em__tensor *x4 = em__tensor_alias(x, 4, x4s, x4st, x->offset);
    em__tensor *v4 = v ? em__conv_reshape(v, 4, v4s) : NULL;
    em__tensor *i4 = ix ? em__conv_reshape(ix, 4, v4s) : NULL;
    em_status st = v && ix && x4 && v4 && i4 ? EM_OK : em__failed(ctx);
    if (st == EM_OK) {
        int64_t ip[10] = {k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1], o[0], o[1]};
        em__tensor *outs[2] = {v4, i4};
        st = em__launch_views(ctx, EM_K(max_pool2d), outs, 2, &x4, 1, NULL, ip, 10);
    }
    em__tensor_unref(x4);
    em__tensor_unref(v4);
    em__tensor_unref(i4);
    if (st == EM_OK) {
        em_op_params pp;
        memset(&pp, 0, sizeof pp);
        for (int i = 0; i < 2; i++) {
            pp.shape[i] = k[i];
            pp.shape[2 + i] = s[i];
            pp.shape[4 + i] = p[i];
            pp.shape[6 + i] = d[i];
        }
        em__tensor *in[2] = {x, ix};
        if (out)
            st = em__record_for(&op_max_pool, in, 2, &pp, v);
    }
    em_tensor *vh = NULL, *ih = NULL;
    if (st == EM_OK && out && !(vh = em__give(em__tensor_ref(v))))
        st = em__failed(ctx);
    if (st == EM_OK && indices && !(ih = em__give(em__tensor_ref(ix))))
        st = em__failed(ctx);
    em__tensor_unref(v);
    em__tensor_unref(ix);
    if (st != EM_OK) {
        em_tensor_free(vh);
        return st;
    }
    if (out)
        *out = vh;
    if (indices)
        *indices = ih;
    return EM_OK;
}

EMBER_API em_tensor *em_max_pool2d(em_tensor *x, const int *kernel, const int *stride,
                                   const int *padding, const int *dilation, bool ceil_mode)
{
    em_tensor *out = NULL;
    if (!x)
        return NULL;
    return em_max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode, &out,
                                      NULL) == EM_OK ? out : NULL;
}
