/* core/ops/conv_lower.c — convolution lowered to kernels: im2col then one batched gemm per
 * group for the forward; for the backward, the transposed gemm then col2im (the input's
 * gradient) and im2col then a batched gemm and a sum over the images (the weight's). A
 * 1x1 convolution with stride 1 and no padding skips im2col/col2im (the input is its own
 * column matrix). Images go through in chunks whose column matrix stays under a budget, so
 * a big batch needs no batch-sized buffer; every buffer comes from the context's cache. */
#include "config.h"
#include "conv.h"

#include <string.h>

#define K EM_K

/* the largest column matrix of one chunk of images */
#define COLS_BUDGET ((int64_t)8 << 20)

static em__tensor *alias3(em__tensor *t, int64_t a, int64_t b, int64_t c, int64_t sa, int64_t sb,
                          int64_t sc, int64_t off)
{
    int64_t shape[3] = {a, b, c}, strides[3] = {sa, sb, sc};
    return em__tensor_alias(t, 3, shape, strides, t->offset + off);
}

static em__tensor *alias2(em__tensor *t, int64_t a, int64_t b, int64_t sa, int64_t sb, int64_t off)
{
    int64_t shape[2] = {a, b}, strides[2] = {sa, sb};
    return em__tensor_alias(t, 2, shape, strides, t->offset + off);
}

em__tensor *em__conv_reshape(em__tensor *t, int ndim, const int64_t *shape)
{
    int64_t strides[EM_MAX_DIMS];
    em__contiguous_strides(ndim, shape, strides);
    em__tensor *r = em__tensor_alias(t, ndim, shape, strides, t->offset);
    if (r)
        r->is_view = false;   /* the only tensor over its fresh storage */
    return r;
}

static em__tensor *contiguous(em__tensor *t)
{
    return em__is_contiguous(t) ? em__tensor_ref(t) : em__cast(t, t->dtype);
}

static void win_ip(const em__win *w, int64_t *ip)
{
    int64_t v[10] = {w->kh, w->kw, w->sh, w->sw, w->ph, w->pw, w->dh, w->dw, w->oh, w->ow};
    memcpy(ip, v, sizeof v);
}

/* the input is its own column matrix */
static bool is_identity(const em__tensor *x, const em__win *w)
{
    return w->kh == 1 && w->kw == 1 && w->sh == 1 && w->sw == 1 && w->ph == 0 && w->pw == 0 &&
           w->oh == x->shape[2] && w->ow == x->shape[3] && em__is_contiguous(x);
}

static int64_t chunk_of(int64_t n, int64_t ckk, int64_t l, em_dtype dt)
{
    int64_t per = ckk * l * (int64_t)em_dtype_size(dt);
    int64_t c = per > 0 ? COLS_BUDGET / per : n;
    return c < 1 ? 1 : c > n ? n : c;
}

/* The column matrix of images [n0, n0 + nc) of x: an alias of x itself (identity), or
 * im2col into cols. +1 ref, or NULL (error recorded). */
static em__tensor *columns(em__tensor *x, const em__win *win, bool identity, em__tensor *cols,
                           int64_t n0, int64_t nc)
{
    em_context *ctx = x->ctx;
    int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t ckk = C * win->kh * win->kw, l = win->oh * win->ow;
    if (identity)
        return alias3(x, nc, C, H * W, C * H * W, H * W, 1, n0 * C * H * W);
    int64_t shape[4] = {nc, C, H, W};
    em__tensor *xv = em__tensor_alias(x, 4, shape, x->strides, x->offset + n0 * x->strides[0]);
    em__tensor *cv = alias3(cols, nc, ckk, l, ckk * l, l, 1, 0);
    int64_t ip[10];
    win_ip(win, ip);
    em_status st = xv && cv ? em__launch_views(ctx, K(im2col), &cv, 1, &xv, 1, NULL, ip, 10)
                            : em__failed(ctx);
    em__tensor_unref(xv);
    if (st != EM_OK) {
        em__tensor_unref(cv);
        return NULL;
    }
    return cv;
}

/* out = a @ b over three aliases made here (each may be NULL after a failure) */
static em_status gemm3(em_context *ctx, em__tensor *c, em__tensor *a, em__tensor *b, double beta)
{
    em_status st = a && b && c ? em__launch_gemm(ctx, c, a, b, 1.0, beta)
                               : (em__failed(ctx) != EM_OK ? em__failed(ctx) : EM_ERR_OOM);
    em__tensor_unref(a);
    em__tensor_unref(b);
    em__tensor_unref(c);
    return st;
}

em__tensor *em__conv_forward(em__tensor *x, em__tensor *w, em__tensor *bias, const em__win *win,
                             int64_t groups)
{
    em_context *ctx = x->ctx;
    em_dtype dt = x->dtype;
    int64_t N = x->shape[0], C = x->shape[1], OC = w->shape[0];
    int64_t l = win->oh * win->ow, cg = C / groups, ocg = OC / groups;
    int64_t ck = cg * win->kh * win->kw, ckk = C * win->kh * win->kw;
    int64_t oshape[4] = {N, OC, win->oh, win->ow};
    em__tensor *out = em__tensor_new(ctx, dt, 4, oshape);
    if (!out || em__numel(4, oshape) == 0)
        return out;
    em__tensor *wc = contiguous(w), *cols = NULL;
    em_status st = wc ? EM_OK : em__failed(ctx);
    if (st == EM_OK && bias) {
        int64_t bs[4] = {1, OC, 1, 1}, bst[4] = {0, bias->strides[0], 0, 0};
        em__tensor *bv = em__tensor_alias(bias, 4, bs, bst, bias->offset);
        st = bv ? em__launch(ctx, K(copy), out, &bv, 1, NULL, NULL) : em__failed(ctx);
        em__tensor_unref(bv);
    }
    bool identity = is_identity(x, win);
    int64_t chunk = identity ? N : chunk_of(N, ckk, l, dt);
    if (st == EM_OK && !identity) {
        int64_t cs[3] = {chunk, ckk, l};
        if (!(cols = em__tensor_new(ctx, dt, 3, cs)))
            st = em__failed(ctx);
    }
    for (int64_t n0 = 0; st == EM_OK && n0 < N; n0 += chunk) {
        int64_t nc = N - n0 < chunk ? N - n0 : chunk;
        em__tensor *cv = columns(x, win, identity, cols, n0, nc);
        if (!cv) {
            st = em__failed(ctx);
            break;
        }
        for (int64_t g = 0; st == EM_OK && g < groups; g++)
            st = gemm3(ctx, alias3(out, nc, ocg, l, OC * l, l, 1, (n0 * OC + g * ocg) * l),
                       alias3(wc, nc, ocg, ck, 0, ck, 1, g * ocg * ck),
                       alias3(cv, nc, ck, l, ckk * l, l, 1, g * ck * l), bias ? 1.0 : 0.0);
        em__tensor_unref(cv);
    }
    em__tensor_unref(cols);
    em__tensor_unref(wc);
    if (st != EM_OK) {
        em__tensor_unref(out);
        return NULL;
    }
    return out;
}

/* gx = col2im(w^T @ g), chunk by chunk */
static em_status grad_input(em__tensor *x, em__tensor *wc, em__tensor *gc, const em__win *win,
                            int64_t groups, em__tensor *gx)
{
    em_context *ctx = x->ctx;
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t OC = wc->shape[0], l = win->oh * win->ow, cg = C / groups, ocg = OC / groups;
    int64_t ck = cg * win->kh * win->kw, ckk = C * win->kh * win->kw;
    if (is_identity(x, win)) {
        em_status st = EM_OK;
        for (int64_t g = 0; st == EM_OK && g < groups; g++)
            st = gemm3(ctx, alias3(gx, N, ck, l, C * l, l, 1, g * ck * l),
                       alias3(wc, N, ck, ocg, 0, 1, ck, g * ocg * ck),
                       alias3(gc, N, ocg, l, OC * l, l, 1, g * ocg * l), 0.0);
        return st;
    }
    int64_t chunk = chunk_of(N, ckk, l, x->dtype), cs[3] = {chunk, ckk, l};
    em__tensor *cols = em__tensor_new(ctx, x->dtype, 3, cs);
    em_status st = cols ? EM_OK : em__failed(ctx);
    int64_t ip[10];
    win_ip(win, ip);
    for (int64_t n0 = 0; st == EM_OK && n0 < N; n0 += chunk) {
        int64_t nc = N - n0 < chunk ? N - n0 : chunk;
        for (int64_t g = 0; st == EM_OK && g < groups; g++)
            st = gemm3(ctx, alias3(cols, nc, ck, l, ckk * l, l, 1, g * ck * l),
                       alias3(wc, nc, ck, ocg, 0, 1, ck, g * ocg * ck),
                       alias3(gc, nc, ocg, l, OC * l, l, 1, (n0 * OC + g * ocg) * l), 0.0);
        if (st != EM_OK)
            break;
        int64_t shape[4] = {nc, C, H, W}, strides[4] = {C * H * W, H * W, W, 1};
        em__tensor *ov = em__tensor_alias(gx, 4, shape, strides, gx->offset + n0 * C * H * W);
        em__tensor *cv = alias3(cols, nc, ckk, l, ckk * l, l, 1, 0);
        st = ov && cv ? em__launch_views(ctx, K(col2im), &ov, 1, &cv, 1, NULL, ip, 10)
                      : em__failed(ctx);
        em__tensor_unref(ov);
        em__tensor_unref(cv);
    }
    em__tensor_unref(cols);
    return st;
}

/* gw = sum over images of g_n @ cols_n^T. When an image's product (ocg x ck) is no bigger
 * than its column matrix, the images of a chunk go through one batched gemm into a buffer
 * of per-image products, summed over the chunk by the reduction kernel (then added across
 * chunks): a few large launches instead of one small gemm per image. Otherwise (few output
 * positions, many channels) one gemm per image accumulates into gw. */
static em_status grad_weight(em__tensor *x, em__tensor *gc, const em__win *win, int64_t groups,
                             em__tensor *gw)
{
    em_context *ctx = x->ctx;
    int64_t N = x->shape[0], C = x->shape[1];
    int64_t OC = gw->shape[0], l = win->oh * win->ow, cg = C / groups, ocg = OC / groups;
    int64_t ck = cg * win->kh * win->kw, ckk = C * win->kh * win->kw, wn = OC * ck;
    if (N == 0)
        return em__kfill(gw, 0.0);
    bool identity = is_identity(x, win), batched = ocg <= l;
    int64_t per = identity ? 0 : ckk * l;   /* buffer elements per image */
    if (batched && wn > per)
        per = wn;
    int64_t chunk = chunk_of(N, per, 1, x->dtype);
    em__tensor *cols = NULL, *part = NULL, *tmp = NULL;
    em_status st = EM_OK;
    if (!identity) {
        int64_t cs[3] = {chunk, ckk, l};
        if (!(cols = em__tensor_new(ctx, x->dtype, 3, cs)))
            st = em__failed(ctx);
    }
    if (st == EM_OK && batched) {
        int64_t ps[2] = {chunk, wn}, ts[2] = {1, wn};
        if (!(part = em__tensor_new(ctx, x->dtype, 2, ps)) ||
            (chunk < N && !(tmp = em__tensor_new(ctx, x->dtype, 2, ts))))
            st = em__failed(ctx);
    }
    for (int64_t n0 = 0; st == EM_OK && n0 < N; n0 += chunk) {
        int64_t nc = N - n0 < chunk ? N - n0 : chunk;
        em__tensor *cv = columns(x, win, identity, cols, n0, nc);
        if (!cv) {
            st = em__failed(ctx);
            break;
        }
        if (batched) {
            for (int64_t g = 0; st == EM_OK && g < groups; g++)
                st = gemm3(ctx, alias3(part, nc, ocg, ck, wn, ck, 1, g * ocg * ck),
                           alias3(gc, nc, ocg, l, OC * l, l, 1, (n0 * OC + g * ocg) * l),
                           alias3(cv, nc, l, ck, ckk * l, 1, l, g * ck * l), 0.0);
            em__tensor *pv = alias2(part, nc, wn, wn, 1, 0);
            em__tensor *sv = n0 == 0 ? alias2(gw, 1, wn, wn, 1, 0) : em__tensor_ref(tmp);
            if (st == EM_OK)
                st = pv && sv ? em__launch_reduce(ctx, K(sum), sv, pv, 1.0) : em__failed(ctx);
            if (st == EM_OK && n0 > 0) {
                em__tensor *gv = alias2(gw, 1, wn, wn, 1, 0), *in[2] = {gv, tmp};
                st = gv ? em__launch(ctx, K(add), gv, in, 2, NULL, NULL) : em__failed(ctx);
                em__tensor_unref(gv);
            }
            em__tensor_unref(pv);
            em__tensor_unref(sv);
        } else {
            for (int64_t i = 0; st == EM_OK && i < nc; i++)
                for (int64_t g = 0; st == EM_OK && g < groups; g++)
                    st = gemm3(ctx, alias2(gw, ocg, ck, ck, 1, g * ocg * ck),
                               alias2(gc, ocg, l, l, 1, ((n0 + i) * OC + g * ocg) * l),
                               alias2(cv, l, ck, 1, l, i * ckk * l + g * ck * l),
                               n0 + i == 0 ? 0.0 : 1.0);
        }
        em__tensor_unref(cv);
    }
    em__tensor_unref(cols);
    em__tensor_unref(part);
    em__tensor_unref(tmp);
    return st;
}

em_status em__conv_backward(em__tensor *x, em__tensor *w, em__tensor *g, const em__win *win,
                            int64_t groups, em__tensor **gx, em__tensor **gw)
{
    em_context *ctx = x->ctx;
    em__tensor *gc = contiguous(g), *wc = gx ? contiguous(w) : NULL, *rx = NULL, *rw = NULL;
    em_status st = gc && (wc || !gx) ? EM_OK : em__failed(ctx);
    if (st == EM_OK && gx) {
        if (!(rx = em__tensor_new(ctx, x->dtype, 4, x->shape)))
            st = em__failed(ctx);
        else if (em__numel(4, x->shape) > 0)
            st = grad_input(x, wc, gc, win, groups, rx);
    }
    if (st == EM_OK && gw) {
        if (!(rw = em__tensor_new(ctx, w->dtype, 4, w->shape)))
            st = em__failed(ctx);
        else if (em__numel(4, w->shape) > 0)
            st = grad_weight(x, gc, win, groups, rw);
    }
    em__tensor_unref(gc);
    em__tensor_unref(wc);
    if (st != EM_OK) {
        em__tensor_unref(rx);
        em__tensor_unref(rw);
        return st;
    }
    if (gx)
        *gx = rx;
    if (gw)
        *gw = rw;
    return EM_OK;
}
