/* core/ops/norm.c — normalisation and dropout: em_batch_norm (torch.nn.functional.batch_norm:
 * batch statistics and running-statistics updates in training, running statistics in eval),
 * em_layer_norm and em_dropout_functional.
 *
 * batch_norm and layer_norm are composed of the sum reduction and elementwise kernels (no
 * kernel of their own: each is two reductions and a few broadcast passes, which every backend
 * already runs well) and record ONE node each, PyTorch's NativeBatchNormBackward0 and
 * NativeLayerNormBackward0, whose backward is PyTorch's formula from the saved mean and
 * inverse standard deviation (native_batch_norm_backward, layer_norm_backward):
 *   batch_norm, training   dx = (g - mean(g) - (x - mu) * invstd^2 * mean(g * (x - mu)))
 *                               * invstd * w     (means over every dim but the channel's)
 *              eval        dx = g * invstd * w   (mu, invstd from the running statistics)
 *              dw = sum(g * (x - mu)) * invstd,  db = sum(g)
 *   layer_norm             dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), gw = g * w,
 *                               xhat = (x - mu) * rstd  (means over the normalized dims)
 *                          dw = sum(g * xhat),  db = sum(g)  (over the leading dims)
 * The node's inputs are (x, weight, bias); the statistics (mu and invstd stacked into one
 * (2, ...) tensor) are saved in the bias's slot, and an absent weight or bias is stood in for
 * by that tensor (it never requires grad, so it gets no gradient).
 *
 * batch_norm's running-statistics update is an all-or-nothing write (a transaction, as an
 * optimizer step): running_mean and running_var both change, together with the result being
 * returned, or neither does. */
#include "config.h"
#include "compose.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define K EM_K

/* A double as Python writes it, for PyTorch's messages (core/optim/optim.c). */
EM_INTERNAL void em__pyfloat(char *buf, size_t n, double v);

/* params: i[0] = training (batch_norm), i[1] = has weight, i[2] = has bias, i[3] = number of
 * normalized dims (layer_norm) */

static em_tensor *row(em_tensor *stats, int i, int nd, const int64_t *shape)
{
    return em_reshape(em_select(stats, 0, i), nd, shape);
}

/* ================================================================= batch_norm */

static int bn_shape(int nd, const int64_t *xshape, int64_t *bshape)
{
    for (int d = 0; d < nd; d++)
        bshape[d] = d == 1 ? xshape[1] : 1;
    return nd;
}

static em_status bw_batch_norm(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *stats = b->saved[2];
    int nd = b->in_ndim[0];
    const int64_t *xs = b->in_shape[0];
    int64_t C = xs[1], bshape[EM_MAX_DIMS];
    bn_shape(nd, xs, bshape);
    uint32_t mask = (uint32_t)((1u << nd) - 1) & ~2u;
    int64_t numel = 1;
    for (int d = 0; d < nd; d++)
        numel *= xs[d];
    double cnt = C ? (double)(numel / C) : 0.0;
    em_tensor *mean = row(stats, 0, nd, bshape), *invstd = row(stats, 1, nd, bshape);
    em_tensor *xc = em_sub(x, mean);
    em_tensor *sum_g = em__hreduce(K(sum), g, mask, true, 1.0);
    em_tensor *dotp = (b->needs[0] && b->p->i[0]) || b->needs[1]
                          ? em__hreduce(K(sum), em_mul(g, xc), mask, true, 1.0)
                          : NULL;
    if (b->needs[0]) {
        em_tensor *w_invstd = b->p->i[1] ? em_mul(invstd, em_reshape(b->saved[1], nd, bshape))
                                         : invstd;
        if (b->p->i[0]) {
            em_tensor *proj = em_mul_scalar(em_mul(dotp, em_mul(invstd, invstd)), 1.0 / cnt);
            em_tensor *gm = em_mul_scalar(sum_g, 1.0 / cnt);
            b->grad_in[0] = em_mul(em_sub(em_sub(g, gm), em_mul(xc, proj)), w_invstd);
        } else {
            b->grad_in[0] = em_mul(g, w_invstd);
        }
    }
    if (b->needs[1])
        b->grad_in[1] = em_reshape(em_mul(dotp, invstd), 1, &C);
    if (b->needs[2])
        b->grad_in[2] = em_reshape(sum_g, 1, &C);
    return EM_OK;
}

static const em_op op_batch_norm = {.name = "batch_norm", .grad_fn = "NativeBatchNormBackward0",
                                    .arity = 3,
                                    .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1) | EM_SAVE_IN(2),
                                    .kernel = K(sum), .backward = bw_batch_norm};

/* Records op for out with inputs in[0..3), the statistics saved in slot 2. */
static em_status record_stats(const em_op *op, em__tensor *const *in, em__tensor *stats,
                              const em_op_params *p, em__tensor *out, em_node **node)
{
    *node = NULL;
    em_context *ctx = out->ctx;
    bool any = false;
    for (int i = 0; i < 3; i++)
        any = any || em__requires_grad(in[i]);
    if (!any || !em__grad_mode(ctx) || !em_dtype_is_floating(out->dtype))
        return EM_OK;
    for (int i = 0; i < 3; i++) {
        em_status st = em__view_refresh(in[i]);
        if (st != EM_OK)
            return st;
    }
    em_call c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.op = op;
    c.n_in = 3;
    for (int i = 0; i < 3; i++) {
        c.in[i] = in[i];
        c.in_version[i] = in[i]->storage->version;
    }
    c.save_override[2] = stats;
    c.p = *p;
    c.out = out;
    return em__record_prepare(&c, node);
}

static void record_finish(em__tensor *out, em_node *node, const em_op *op, em__tensor *const *in,
                          const em_op_params *p)
{
    if (!node)
        return;
    em_call c;
    memset(&c, 0, sizeof c);
    c.ctx = out->ctx;
    c.op = op;
    c.n_in = 3;
    for (int i = 0; i < 3; i++)
        c.in[i] = in[i];
    c.p = *p;
    c.out = out;
    em__record_commit(&c, node);
}

static em_status check_param(em_context *ctx, const char *op, const char *what, em__tensor *t,
                             em__tensor *x, int64_t n)
{
    if (!t)
        return EM_OK;
    if (t->dtype != x->dtype)
        return em__error(ctx, EM_ERR_DTYPE, "%s: expected %s to have dtype %s (the input's), "
                         "got %s", op, what, em_dtype_name(x->dtype), em_dtype_name(t->dtype));
    int64_t m = em__numel(t->ndim, t->shape);
    if (m != n)
        return em__error(ctx, EM_ERR_SHAPE, "%s: %s should contain %lld elements not %lld", op,
                         what, (long long)n, (long long)m);
    return EM_OK;
}

/* a handle-only NULL-tolerant lookup: NULL stays NULL, a stale handle fails */
static bool lookup(em_tensor *h, em__tensor **o)
{
    *o = h ? em__obj(h) : NULL;
    return !h || *o;
}

EMBER_API em_tensor *em_batch_norm(em_tensor *x, em_tensor *running_mean, em_tensor *running_var,
                                   em_tensor *weight, em_tensor *bias, bool training,
                                   double momentum, double eps)
{
    em__tensor *xo = em__obj(x), *rm, *rv, *w, *bo;
    if (!xo || !lookup(running_mean, &rm) || !lookup(running_var, &rv) || !lookup(weight, &w) ||
        !lookup(bias, &bo))
        return NULL;
    em_context *ctx = xo->ctx;
    const char *op = "batch_norm";
    char s[160];
    em__shape_str(xo->ndim, xo->shape, s, sizeof s);
    em__tensor *all[4] = {rm, rv, w, bo};
    for (int i = 0; i < 4; i++)
        if (all[i] && all[i]->ctx != ctx)
            return em__error(ctx, EM_ERR_DEVICE, "%s: tensors of two contexts", op), NULL;
    if (xo->ndim < 2)
        return em__error(ctx, EM_ERR_SHAPE, "%s: input of shape %s has no channel dimension "
                         "(Dimension out of range (expected to be in range of [-1, 0], but got "
                         "1))", op, s), NULL;
    if (!em__is_float(xo->dtype))
        return em__error(ctx, EM_ERR_DTYPE, "%s: expected a floating point input (f32 or f64), "
                         "got %s", op, em_dtype_name(xo->dtype)), NULL;
    int nd = xo->ndim;
    int64_t C = xo->shape[1], numel = em__numel(nd, xo->shape);
    if (check_param(ctx, op, "running_mean", rm, xo, C) != EM_OK ||
        check_param(ctx, op, "running_var", rv, xo, C) != EM_OK ||
        check_param(ctx, op, "weight", w, xo, C) != EM_OK ||
        check_param(ctx, op, "bias", bo, xo, C) != EM_OK)
        return NULL;
    if (!rm != !rv)
        return em__error(ctx, EM_ERR_INVALID, "%s: running_mean and running_var must be given "
                         "together", op), NULL;
    if (!training && !rm)
        return em__error(ctx, EM_ERR_INVALID, "%s: running_mean must be defined in evaluation "
                         "mode", op), NULL;
    int64_t cnt = C ? numel / C : 0, size_prods = xo->shape[0];
    for (int d = 2; d < nd; d++)
        size_prods *= xo->shape[d];
    if (training && size_prods == 1)
        return em__error(ctx, EM_ERR_INVALID, "Expected more than 1 value per channel when "
                         "training, got input size %s", s), NULL;
    if (!(eps >= 0) || !(momentum == momentum))
        return em__error(ctx, EM_ERR_INVALID, "%s: eps must be >= 0 and momentum a number, got "
                         "eps %g, momentum %g", op, eps, momentum), NULL;
    /* an empty input: PyTorch returns a copy (CloneBackward0), the running statistics as
     * they were */
    if (numel == 0)
        return em_clone(x);
    int64_t bshape[EM_MAX_DIMS];
    bn_shape(nd, xo->shape, bshape);
    uint32_t mask = (uint32_t)((1u << nd) - 1) & ~2u;

    if (em__fw_begin(ctx) != EM_OK)
        return NULL;
    em_tensor *xh = em__h(xo), *mean, *invstd, *new_rm = NULL, *new_rv = NULL;
    if (training) {
        mean = em__hreduce(K(sum), xh, mask, true, cnt ? 1.0 / (double)cnt : NAN);
        em_tensor *xc = em_sub(xh, mean);
        em_tensor *var = em__hreduce(K(sum), em_mul(xc, xc), mask, true,
                                     cnt ? 1.0 / (double)cnt : NAN);
        invstd = em_rdiv_scalar(em_sqrt(em_add_scalar(var, eps)), 1.0);
        if (rm) {
            /* running = (1 - momentum) * running + momentum * batch (var: unbiased) */
            em_tensor *m1 = em_reshape(mean, 1, &C);
            em_tensor *v1 = em_reshape(em_mul_scalar(var, (double)cnt / (double)(cnt - 1)), 1, &C);
            new_rm = em_add(em_mul_scalar(em__h(rm), 1.0 - momentum), em_mul_scalar(m1, momentum));
            new_rv = em_add(em_mul_scalar(em__h(rv), 1.0 - momentum), em_mul_scalar(v1, momentum));
            new_rm = em_reshape(new_rm, rm->ndim, rm->shape);
            new_rv = em_reshape(new_rv, rv->ndim, rv->shape);
        }
    } else {
        mean = em_reshape(em__h(rm), nd, bshape);
        invstd = em_rdiv_scalar(em_sqrt(em_add_scalar(em_reshape(em__h(rv), nd, bshape), eps)),
                                1.0);
    }
    /* y = x * alpha + beta: alpha = invstd * w, beta = b - mean * alpha (as PyTorch's cpu
     * batch_norm_cpu_transform_input) */
    em_tensor *alpha = w ? em_mul(invstd, em_reshape(em__h(w), nd, bshape)) : invstd;
    em_tensor *beta = em_neg(em_mul(mean, alpha));
    if (bo)
        beta = em_add(beta, em_reshape(em__h(bo), nd, bshape));
    em_tensor *y = em_add(em_mul(xh, alpha), beta);
    int64_t c1 = C;
    em_tensor *pair[2] = {em_reshape(mean, 1, &c1), em_reshape(invstd, 1, &c1)};
    em_tensor *stats = em_stack(pair, 2, 0);
    em__tensor *yo = y ? em__obj(y) : NULL, *so = stats ? em__obj(stats) : NULL;
    em__tensor *rmo = new_rm ? em__obj(new_rm) : NULL, *rvo = new_rv ? em__obj(new_rv) : NULL;
    bool ok = yo && so && (!training || !rm || (rmo && rvo));
    if (ok) {
        yo = em__tensor_ref(yo);
        so = em__tensor_ref(so);
        if (rm) {
            rmo = em__tensor_ref(rmo);
            rvo = em__tensor_ref(rvo);
        }
    }
    em__fw_end(ctx);
    if (!ok)
        return NULL;

    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = training;
    p.i[1] = w != NULL;
    p.i[2] = bo != NULL;
    p.s[0] = eps;
    em__tensor *in[3] = {xo, w ? w : so, bo ? bo : so};
    em_node *node = NULL;
    em__txn txn;
    em__txn_begin(&txn, ctx);
    em_status st = EM_OK;
    if (training && rm) {
        st = em__txn_write(&txn, rm, rmo);
        if (st == EM_OK)
            st = em__txn_write(&txn, rv, rvo);
    }
    if (st == EM_OK)
        st = record_stats(&op_batch_norm, in, so, &p, yo, &node);
    if (st != EM_OK) {
        em__txn_abort(&txn);
        if (node)
            em__node_unref(node);
        em__tensor_unref(yo);
    } else {
        em__txn_commit(&txn);
        record_finish(yo, node, &op_batch_norm, in, &p);
    }
    em__tensor_unref(so);
    em__tensor_unref(rmo);
    em__tensor_unref(rvo);
    return st == EM_OK ? em__give(yo) : NULL;
}

/* ================================================================= layer_norm */

static em_status bw_layer_norm(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *stats = b->saved[2];
    int nd = b->in_ndim[0], k = b->p->i[3];
    const int64_t *xs = b->in_shape[0];
    int64_t kshape[EM_MAX_DIMS], nnorm = 1;
    for (int d = 0; d < nd; d++) {
        kshape[d] = d < nd - k ? xs[d] : 1;
        if (d >= nd - k)
            nnorm *= xs[d];
    }
    uint32_t norm_mask = (uint32_t)((1u << nd) - 1) & ~(uint32_t)((1u << (nd - k)) - 1);
    uint32_t lead_mask = (uint32_t)((1u << (nd - k)) - 1);
    em_tensor *mean = row(stats, 0, nd, kshape), *rstd = row(stats, 1, nd, kshape);
    em_tensor *xhat = em_mul(em_sub(x, mean), rstd);
    if (b->needs[0]) {
        em_tensor *gw = b->p->i[1] ? em_mul(g, b->saved[1]) : g;
        double inv = nnorm ? 1.0 / (double)nnorm : NAN;
        em_tensor *m1 = em__hreduce(K(sum), gw, norm_mask, true, inv);
        em_tensor *m2 = em__hreduce(K(sum), em_mul(gw, xhat), norm_mask, true, inv);
        b->grad_in[0] = em_mul(em_sub(em_sub(gw, m1), em_mul(xhat, m2)), rstd);
    }
    if (b->needs[1])
        b->grad_in[1] = em__hreduce(K(sum), em_mul(g, xhat), lead_mask, false, 1.0);
    if (b->needs[2])
        b->grad_in[2] = em__hreduce(K(sum), g, lead_mask, false, 1.0);
    return EM_OK;
}

static const em_op op_layer_norm = {.name = "layer_norm", .grad_fn = "NativeLayerNormBackward0",
                                    .arity = 3,
                                    .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1) | EM_SAVE_IN(2),
                                    .kernel = K(sum), .backward = bw_layer_norm};

static bool same_shape(const em__tensor *t, int n, const int64_t *shape)
{
    if (t->ndim != n)
        return false;
    for (int d = 0; d < n; d++)
        if (t->shape[d] != shape[d])
            return false;
    return true;
}

EMBER_API em_tensor *em_layer_norm(em_tensor *x, int n_normalized,
                                   const int64_t *normalized_shape, em_tensor *weight,
                                   em_tensor *bias, double eps)
{
    em__tensor *xo = em__obj(x), *w, *bo;
    if (!xo || !lookup(weight, &w) || !lookup(bias, &bo))
        return NULL;
    em_context *ctx = xo->ctx;
    const char *op = "layer_norm";
    if ((w && w->ctx != ctx) || (bo && bo->ctx != ctx))
        return em__error(ctx, EM_ERR_DEVICE, "%s: tensors of two contexts", op), NULL;
    if (n_normalized < 1 || !normalized_shape)
        return em__error(ctx, EM_ERR_SHAPE, "%s: Expected normalized_shape to be at least "
                         "1-dimensional, i.e., containing at least one element, but got "
                         "normalized_shape = []", op), NULL;
    char ns[160], s[160];
    em__shape_str(n_normalized > EM_MAX_DIMS ? EM_MAX_DIMS : n_normalized, normalized_shape, ns,
                  sizeof ns);
    em__shape_str(xo->ndim, xo->shape, s, sizeof s);
    int nd = xo->ndim, k = n_normalized;
    bool fits = k <= nd;
    for (int i = 0; fits && i < k; i++)
        fits = xo->shape[nd - k + i] == normalized_shape[i];
    if (!fits) {
        char star[180];
        snprintf(star, sizeof star, "[*, %s", ns + 1);
        return em__error(ctx, EM_ERR_SHAPE, "%s: Given normalized_shape=%s, expected input with "
                         "shape %s, but got input of size%s", op, ns, star, s), NULL;
    }
    const char *names[2] = {"weight", "bias"};
    em__tensor *wb[2] = {w, bo};
    for (int i = 0; i < 2; i++) {
        if (!wb[i])
            continue;
        if (!same_shape(wb[i], k, normalized_shape)) {
            char ws[160];
            em__shape_str(wb[i]->ndim, wb[i]->shape, ws, sizeof ws);
            return em__error(ctx, EM_ERR_SHAPE, "%s: Expected %s to be of same shape as "
                             "normalized_shape, but got %s of shape %s and normalized_shape = %s",
                             op, names[i], names[i], ws, ns), NULL;
        }
        if (wb[i]->dtype != xo->dtype)
            return em__error(ctx, EM_ERR_DTYPE, "%s: expected %s to have dtype %s (the "
                             "input's), got %s", op, names[i], em_dtype_name(xo->dtype),
                             em_dtype_name(wb[i]->dtype)), NULL;
    }
    if (!em__is_float(xo->dtype))
        return em__error(ctx, EM_ERR_DTYPE, "%s: expected a floating point input (f32 or f64), "
                         "got %s", op, em_dtype_name(xo->dtype)), NULL;
    int64_t nnorm = 1;
    for (int i = 0; i < k; i++)
        nnorm *= normalized_shape[i];
    uint32_t mask = (uint32_t)((1u << nd) - 1) & ~(uint32_t)((1u << (nd - k)) - 1);
    double inv = nnorm ? 1.0 / (double)nnorm : NAN;

    if (em__fw_begin(ctx) != EM_OK)
        return NULL;
    em_tensor *xh = em__h(xo);
    em_tensor *mean = em__hreduce(K(sum), xh, mask, true, inv);
    em_tensor *xc = em_sub(xh, mean);
    em_tensor *var = em__hreduce(K(sum), em_mul(xc, xc), mask, true, inv);
    em_tensor *rstd = em_rdiv_scalar(em_sqrt(em_add_scalar(var, eps)), 1.0);
    em_tensor *y = em_mul(xc, rstd);
    if (w)
        y = em_mul(y, em__h(w));
    if (bo)
        y = em_add(y, em__h(bo));
    em_tensor *pair[2] = {mean, rstd};
    em_tensor *stats = em_stack(pair, 2, 0);
    em__tensor *yo = y ? em__obj(y) : NULL, *so = stats ? em__obj(stats) : NULL;
    bool ok = yo && so;
    if (ok) {
        yo = em__tensor_ref(yo);
        so = em__tensor_ref(so);
    }
    em__fw_end(ctx);
    if (!ok)
        return NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[1] = w != NULL;
    p.i[2] = bo != NULL;
    p.i[3] = k;
    p.s[0] = eps;
    em__tensor *in[3] = {xo, w ? w : so, bo ? bo : so};
    em_node *node = NULL;
    em_status st = record_stats(&op_layer_norm, in, so, &p, yo, &node);
    if (st == EM_OK)
        record_finish(yo, node, &op_layer_norm, in, &p);
    else
        em__tensor_unref(yo);
    em__tensor_unref(so);
    return st == EM_OK ? em__give(yo) : NULL;
}

/* ================================================================= dropout */

EMBER_API em_tensor *em_dropout_functional(em_tensor *x, double p, bool training)
{
    em__tensor *xo = em__obj(x);
    if (!xo)
        return NULL;
    em_context *ctx = xo->ctx;
    if (!(p >= 0.0 && p <= 1.0)) {
        char v[64];
        em__pyfloat(v, sizeof v, p);
        return em__error(ctx, EM_ERR_INVALID, "dropout probability has to be between 0 and 1, "
                         "but got %s", v), NULL;
    }
    /* PyTorch returns the input itself when nothing is dropped */
    if (p == 0.0 || !training || em__numel(xo->ndim, xo->shape) == 0)
        return em__dup(x);
    if (!em__is_float(xo->dtype))
        return em__error(ctx, EM_ERR_DTYPE, "dropout: expected a floating input, got %s",
                         em_dtype_name(xo->dtype)), NULL;
    em__local_begin(ctx);
    em_tensor *y;
    if (p == 1.0) {
        y = em_mul(x, em__hscalar(ctx, xo->dtype, 0.0));
    } else {
        /* keep where u >= p (probability 1 - p), scaled by 1 / (1 - p): one multiply is
         * recorded (MulBackward0, as PyTorch) */
        em_tensor *u = em_rand(ctx, xo->dtype, xo->ndim, xo->shape);
        em_tensor *mask = em_mul_scalar(em_to_dtype(em_ge_scalar(u, p), xo->dtype),
                                        1.0 / (1.0 - p));
        y = em_mul(x, mask);
    }
    return em__local_end(ctx, y);
}
