/* core/ops/conv_native.c — conv2d through the backend's whole-convolution kernels (ABI 1.4,
 * optional: conv2d, conv2d_grad_input, conv2d_grad_weight) when it declares them natively for
 * the dtype and the window fits their contract (symmetric padding); conv.c falls back to the
 * lowering (conv_lower.c) otherwise, and also when a kernel declines the call
 * (EM_ERR_UNSUPPORTED: its library has no algorithm for it, cannot be loaded, ...). Inputs are
 * made contiguous first; every result is a fresh contiguous tensor. */
#include "config.h"
#include "conv.h"

#define K EM_K

/* the window as the kernels' ip[] (n_ip = 11) */
static void win_ip(const em__win *w, int64_t groups, int64_t *ip)
{
    const int64_t v[11] = {w->kh, w->kw, w->sh, w->sw, w->ph, w->pw, w->dh, w->dw,
                           w->oh, w->ow, groups};
    for (int i = 0; i < 11; i++)
        ip[i] = v[i];
}

/* the output size one dimension reaches with padding p on both sides */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

/* Whether kernel k runs this convolution: declared natively for the dtype, every view non-empty
 * and the padding symmetric. */
static bool applies(const em__tensor *x, const em__tensor *w, const em__win *win, size_t k)
{
    return em__kernel_native(x->ctx, k, x->dtype) && em__numel(4, x->shape) > 0 &&
           em__numel(4, w->shape) > 0 && win->oh > 0 && win->ow > 0 &&
           out_size(x->shape[2], win->kh, win->sh, win->ph, win->dh) == win->oh &&
           out_size(x->shape[3], win->kw, win->sw, win->pw, win->dw) == win->ow;
}

static em_status failed(em_context *ctx)
{
    return em__failed(ctx) != EM_OK ? em__failed(ctx) : EM_ERR_OOM;
}

/* One kernel call. A kernel may decline (EM_ERR_UNSUPPORTED, nothing written): then the error
 * it recorded is forgotten, *declined is set and the caller lowers the convolution instead. */
static em_status launch(em_context *ctx, size_t k, em__tensor *const *outs, int n_out,
                        em__tensor *const *in, int n_in, const int64_t *ip, int n_ip,
                        bool *declined)
{
    em__errstate saved;
    em__error_save(ctx, &saved);
    em_status st = em__launch_views(ctx, k, outs, n_out, in, n_in, NULL, ip, n_ip);
    if (st == EM_ERR_UNSUPPORTED) {
        em__log(ctx, EM_LOG_DEBUG, "%s declined on backend %s (%s): lowered instead",
                em__kernel_name(k), ctx->backend_name,
                saved.status == EM_OK ? ctx->errmsg : em_status_name(st));
        em__error_restore(ctx, &saved);
        *declined = true;
        return EM_OK;
    }
    return st;
}

static em__tensor *contiguous(em__tensor *t)
{
    return em__is_contiguous(t) ? em__tensor_ref(t) : em__cast(t, t->dtype);
}

em__tensor *em__conv_native_forward(em__tensor *x, em__tensor *w, em__tensor *bias,
                                    const em__win *win, int64_t groups, bool *relu, bool *used)
{
    *used = false;
    bool want_relu = relu && *relu;
    if (relu)
        *relu = false;
    if (!applies(x, w, win, K(conv2d)))
        return NULL;
    *used = true;
    em_context *ctx = x->ctx;
    int64_t oshape[4] = {x->shape[0], w->shape[0], win->oh, win->ow}, ip[12];
    win_ip(win, groups, ip);
    ip[11] = 1;
    em__tensor *in[3] = {contiguous(x), contiguous(w), bias ? contiguous(bias) : NULL};
    em__tensor *out = in[0] && in[1] && (in[2] || !bias) ? em__tensor_new(ctx, x->dtype, 4, oshape)
                                                         : NULL;
    bool declined = false;
    em_status st = EM_OK;
    /* the ReLU in the kernel (ip[11] = 1) only for a plugin of ABI 1.6 on; a kernel that
     * declines it is asked again for the plain convolution */
    if (out && want_relu && ctx->plugin->be.abi_minor >= 6) {
        st = launch(ctx, K(conv2d), &out, 1, in, bias ? 3 : 2, ip, 12, &declined);
        if (st == EM_OK && !declined)
            *relu = true;
    }
    if (st == EM_OK && !*relu) {
        declined = false;
        st = out ? launch(ctx, K(conv2d), &out, 1, in, bias ? 3 : 2, ip, 11, &declined)
                 : failed(ctx);
    }
    for (int i = 0; i < 3; i++)
        em__tensor_unref(in[i]);
    if (st != EM_OK || declined) {
        *used = !declined;
        em__tensor_unref(out);
        return NULL;
    }
    return out;
}

em_status em__conv_native_backward(em__tensor *x, em__tensor *w, em__tensor *g, const em__win *win,
                                   int64_t groups, em__tensor **gx, em__tensor **gw,
                                   em__tensor **gb)
{
    bool want_x = gx && applies(x, w, win, K(conv2d_grad_input));
    bool want_w = gw && applies(x, w, win, K(conv2d_grad_weight));
    if ((!want_x && !want_w) || em__numel(4, g->shape) == 0)
        return EM_OK;
    em_context *ctx = x->ctx;
    int64_t ip[11];
    win_ip(win, groups, ip);
    bool declined_x = false, declined_w = false;
    em__tensor *gc = contiguous(g), *xc = want_w ? contiguous(x) : NULL;
    em__tensor *wc = want_x ? contiguous(w) : NULL, *rx = NULL, *rw = NULL, *rb = NULL;
    em_status st = gc && (xc || !want_w) && (wc || !want_x) ? EM_OK : failed(ctx);
    if (st == EM_OK && want_x) {
        em__tensor *in[2] = {gc, wc};
        st = (rx = em__tensor_new(ctx, x->dtype, 4, x->shape))
                 ? launch(ctx, K(conv2d_grad_input), &rx, 1, in, 2, ip, 11, &declined_x)
                 : failed(ctx);
    }
    if (st == EM_OK && want_w) {
        /* dw is always computed (outs[0]); db rides along when asked for */
        em__tensor *in[2] = {xc, gc};
        int64_t bs[1] = {w->shape[0]};
        if (!(rw = em__tensor_new(ctx, w->dtype, 4, w->shape)) ||
            (gb && !(rb = em__tensor_new(ctx, w->dtype, 1, bs))))
            st = failed(ctx);
        else {
            em__tensor *outs[2] = {rw, rb};
            st = launch(ctx, K(conv2d_grad_weight), outs, gb ? 2 : 1, in, 2, ip, 11,
                        &declined_w);
        }
    }
    em__tensor_unref(gc);
    em__tensor_unref(xc);
    em__tensor_unref(wc);
    if (st != EM_OK || declined_x) {
        em__tensor_unref(rx);
        rx = NULL;
    }
    if (st != EM_OK || declined_w) {   /* declined: the caller lowers that gradient */
        em__tensor_unref(rw);
        em__tensor_unref(rb);
        rw = rb = NULL;
    }
    if (st != EM_OK)
        return st;
    if (gx)
        *gx = rx;
    if (gw)
        *gw = rw;
    if (gb)
        *gb = rb;
    return EM_OK;
}
