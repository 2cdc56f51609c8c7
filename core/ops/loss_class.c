/* core/ops/loss_class.c — losses over classes, as F.nll_loss and F.cross_entropy: input
 * (N, C), (C) or (N, C, d1, ...) with the classes along dim 1 (dim 0 for (C)), target of
 * i64 class indices of the input's shape without the class dim. Every target is checked
 * to be in [0, C) or equal to ignore_index before anything is computed ("Target 7 is out of
 * bounds."). Optional per-class weights w; ignored targets count nothing; the mean divides
 * by the sum of the weights of the targets not ignored (their count without weights), so
 * that a batch of only ignored targets gives NaN, as PyTorch. An ignored target contributes
 * exactly 0 to the loss and to the gradient whatever its row holds (NaN, +-inf): as PyTorch's
 * documentation says; PyTorch 1.13's cross_entropy backward gives NaN for an ignored row
 * whose softmax is NaN (pytorch/pytorch#11551), a propagation artefact not followed here.
 *
 * Inside, the input is seen as (B, C, D): B the batch (1 for (C)), D the product of the
 * dims after the classes; targets as (B, 1, D).
 *   nll_loss:       l_i = -w[t_i] x[i, t_i]                       node NllLossBackward0
 *   cross_entropy:  with lp = log_softmax(x) over the classes and smoothing ls,
 *                   l_i = (1 - ls) (-w[t_i] lp[i, t_i]) + ls / C (-sum_c w_c lp[i, c])
 *                   (PyTorch 1.13's formula).
 * Each records one node, named as the last node of PyTorch's composition: NllLossBackward0
 * ((N, C) and (C)), NllLoss2DBackward0 (more dims), ViewBackward0 (unreduced, 3 or 5+
 * dims), AddBackward0 (cross-entropy with smoothing).
 * The cross-entropy's backward: with q_ic = (1 - ls) w[t_i] [c == t_i] + ls / C w_c and
 * Q_i = sum_c q_ic, dl_i/dx_ic = softmax_ic Q_i - q_ic. It computes softmax(x) once into a
 * fresh tensor, which it turns into the gradient in place (scale by g_i Q_i, subtract the
 * smoothing term, scatter-add -(1 - ls) g_i w[t_i] at the targets): no other tensor of the
 * logits' size is made. */
#include "config.h"
#include "compose.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define K EM_K

/* params: i[0] = reduction, s[0] = label_smoothing, shape[0] = ignore_index;
 * in = {input, target[, weight]} */

static bool is_ce(const em_op *op);

/* (B, C, D) of an input */
static void geometry(int ndim, const int64_t *shape, int64_t *b, int64_t *c, int64_t *d)
{
    *b = ndim >= 2 ? shape[0] : 1;
    *c = ndim >= 2 ? shape[1] : shape[0];
    *d = 1;
    for (int i = 2; i < ndim; i++)
        *d *= shape[i];
}

/* Every target in [0, C) or ignore_index. */
static em_status check_targets(em_call *c, em__tensor *t, int64_t n_classes)
{
    int64_t n = em__numel(t->ndim, t->shape);
    if (n == 0)
        return EM_OK;
    int64_t *h = em__malloc(sizeof(int64_t) * (size_t)n);
    if (!h)
        return em__error(c->ctx, EM_ERR_OOM, "%s: out of memory reading the targets", c->op->name);
    em_status st = em__to_host_as(t, EM_I64, h);
    for (int64_t i = 0; i < n && st == EM_OK; i++)
        if (h[i] != c->p.shape[0] && (h[i] < 0 || h[i] >= n_classes))
            st = em__error(c->ctx, EM_ERR_INVALID, "Target %lld is out of bounds.", (long long)h[i]);
    free(h);
    return st;
}

static em_status shape_class(em_call *c)
{
    em__tensor *x = c->in[0], *t = c->in[1], *w = c->n_in > 2 ? c->in[2] : NULL;
    const char *name = c->op->name;
    char xs[160], ts[160];
    if (!em__is_float(x->dtype))
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected a floating point input (f32 or f64), "
                         "got %s", name, em_dtype_name(x->dtype));
    if (t->dtype != EM_I64)
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected scalar type i64 but found %s (the "
                         "target holds class indices)", name, em_dtype_name(t->dtype));
    if (x->ndim == 0)
        return em__error(c->ctx, EM_ERR_SHAPE, "%s: Expected 1 or more dimensions (got 0)", name);
    em__shape_str(x->ndim, x->shape, xs, sizeof xs);
    em__shape_str(t->ndim, t->shape, ts, sizeof ts);
    if (x->ndim == 1 && t->ndim != 0)
        return em__error(c->ctx, EM_ERR_SHAPE, "%s: size mismatch (got input: %s, target: %s)",
                         name, xs, ts);
    if (x->ndim >= 2 && (t->ndim == 0 || t->shape[0] != x->shape[0]))
        return em__error(c->ctx, EM_ERR_SHAPE, "%s: Expected input batch_size (%lld) to match "
                         "target batch_size (%lld).", name, (long long)x->shape[0],
                         (long long)(t->ndim ? t->shape[0] : 0));
    int64_t want[EM_MAX_DIMS];
    int nw = 0;
    for (int d = 0; d < x->ndim; d++)
        if (d != (x->ndim >= 2 ? 1 : 0))
            want[nw++] = x->shape[d];
    if (t->ndim != nw || memcmp(t->shape, want, sizeof(int64_t) * (size_t)nw)) {
        char ws[160];
        em__shape_str(nw, want, ws, sizeof ws);
        return em__error(c->ctx, EM_ERR_SHAPE, "%s: Expected target size %s, got %s", name, ws, ts);
    }
    int64_t B, C, D;
    geometry(x->ndim, x->shape, &B, &C, &D);
    if (w) {
        if (w->dtype != x->dtype)
            return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected scalar type %s but found %s (the "
                             "weight)", name, em_dtype_name(x->dtype), em_dtype_name(w->dtype));
        if (w->ndim != 1 || w->shape[0] != C) {
            char s[160];
            em__shape_str(w->ndim, w->shape, s, sizeof s);
            return em__error(c->ctx, EM_ERR_SHAPE, "%s: weight tensor should be defined either for "
                             "all %lld classes or no classes but got weight tensor of shape: %s",
                             name, (long long)C, s);
        }
    }
    if (check_targets(c, t, C) != EM_OK)
        return em__failed(c->ctx);
    c->out_dtype = x->dtype;
    if (c->p.i[0] == EM_REDUCTION_NONE) {
        c->out_ndim = t->ndim;
        memcpy(c->out_shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    } else {
        c->out_ndim = 0;
    }
    return EM_OK;
}

/* What forward and backward both derive from the targets, all (B, 1, D): the targets with
 * ignored ones replaced by 0 (safe to index with), a mask of the ignored ones, and the
 * weight of each target (0 where ignored). */
typedef struct targets {
    em_tensor *safe, *ignored, *wt;
} targets;

static targets prepare(em_context *ctx, em_tensor *t3, em_tensor *w, em_dtype dt, int64_t ignore,
                       int64_t B, int64_t C, int64_t D)
{
    targets T;
    em_tensor *zero = em__hscalar(ctx, EM_I64, 0.0);
    em__tensor *ign = em__tensor_new(ctx, EM_I64, 0, NULL);
    if (ign) {
        double p[4] = {(double)ignore, 0, 0, 0};
        int64_t ip[1] = {ignore};
        if (em__launch_ip(ctx, K(fill), ign, NULL, 0, p, NULL, ip, 1) != EM_OK) {
            em__tensor_unref(ign);
            ign = NULL;
        }
    }
    T.ignored = em_eq(t3, em__give(ign));
    T.safe = em_where(T.ignored, zero, t3);
    em_tensor *wt;
    if (w && C > 0) {
        em_tensor *w3 = em_expand(em_reshape(w, EM_SHAPE(1, C, 1)), EM_SHAPE(B, C, D));
        wt = em__hgather(w3, 1, T.safe);
    } else {
        wt = em__hfull(ctx, dt, EM_SHAPE(B, 1, D), C > 0 ? 1.0 : 0.0);
    }
    T.wt = em_masked_fill(wt, T.ignored, 0.0);
    return T;
}

/* The per-target losses l (B, 1, D) into c->out: reshaped to the target's shape, summed,
 * or summed and divided by the sum of the weights wt. */
static em_status finish(em_call *c, em_tensor *l, em_tensor *wt)
{
    int red = c->p.i[0];
    em__tensor *lo;
    if (red == EM_REDUCTION_NONE) {
        lo = em__obj(em_reshape(l, c->out_ndim, c->out_shape));
    } else {
        em_tensor *s = em__hreduce(K(sum), l, 7u, false, 1.0);
        lo = em__obj(red == EM_REDUCTION_MEAN ? em_div(s, em__hreduce(K(sum), wt, 7u, false, 1.0)) : s);
    }
    if (!lo)
        return em__failed(c->ctx) != EM_OK ? em__failed(c->ctx) : EM_ERR_INVALID;
    em__tensor *in[1] = {lo};
    return em__launch(c->ctx, K(copy), c->out, in, 1, NULL, NULL);
}

static em_status fw_class(em_call *c)
{
    em_context *ctx = c->ctx;
    em__tensor *xo = c->in[0];
    int64_t B, C, D;
    geometry(xo->ndim, xo->shape, &B, &C, &D);
    em_dtype dt = xo->dtype;
    double ls = c->p.s[0];
    em_status st = em__fw_begin(ctx);
    if (st != EM_OK)
        return st;
    em_tensor *x3 = em_reshape(em__h(xo), EM_SHAPE(B, C, D));
    em_tensor *t3 = em_reshape(em__h(c->in[1]), EM_SHAPE(B, 1, D));
    em_tensor *w = c->n_in > 2 ? em__h(c->in[2]) : NULL;
    em_tensor *lp = is_ce(c->op) ? em__halong(K(log_softmax), x3, 1) : x3;
    targets T = prepare(ctx, t3, w, dt, c->p.shape[0], B, C, D);
    em_tensor *picked = C > 0 ? em__hgather(lp, 1, T.safe) : em__hfull(ctx, dt, EM_SHAPE(B, 1, D), 0);
    /* masked, not only weighted by 0: an ignored row may hold NaN or +-inf */
    em_tensor *l = em_masked_fill(em_neg(em_mul(picked, T.wt)), T.ignored, 0.0);
    if (ls > 0 && C > 0) {
        em_tensor *lw = w ? em_mul(lp, em_reshape(w, EM_SHAPE(1, C, 1))) : lp;
        em_tensor *smooth = em_neg(em__hreduce(K(sum), lw, 2u, true, 1.0));
        smooth = em_masked_fill(smooth, T.ignored, 0.0);
        l = em_add(em_mul_scalar(l, 1.0 - ls), em_mul_scalar(smooth, ls / (double)C));
    }
    st = finish(c, l, T.wt);
    em__fw_end(ctx);
    return st;
}

/* g per target (B, 1, D): divided by the weight sum for mean, 0 at ignored targets (which
 * get no gradient, even when every target is ignored and the mean's g is infinite) */
static em_tensor *grad_per_target(em_bw *b, const targets *T, int64_t B, int64_t D)
{
    em_tensor *g = b->grad_out;
    if (b->p->i[0] == EM_REDUCTION_NONE)
        g = em_reshape(g, EM_SHAPE(B, 1, D));
    else if (b->p->i[0] == EM_REDUCTION_MEAN)
        g = em_div(g, em__hreduce(K(sum), T->wt, 7u, false, 1.0));
    return em_masked_fill(g, T->ignored, 0.0);
}

/* d nll / d x: zeros, and -g_i w[t_i] at each target */
static em_status bw_nll(em_bw *b)
{
    em_context *ctx = b->ctx;
    em_dtype dt = b->in_dtype[0];
    int64_t B, C, D;
    geometry(b->in_ndim[0], b->in_shape[0], &B, &C, &D);
    em_tensor *t3 = em_reshape(b->saved[1], EM_SHAPE(B, 1, D));
    targets T = prepare(ctx, t3, b->saved[2], dt, b->p->shape[0], B, C, D);
    em_tensor *gi = grad_per_target(b, &T, B, D);
    /* made in the input's shape, written through a (B, C, D) view: the gradient itself
     * becomes .grad without a copy */
    em_tensor *z = em_zeros(ctx, dt, b->in_ndim[0], b->in_shape[0]);
    if (C > 0 && em__hscatter_add_(em_view(z, EM_SHAPE(B, C, D)), 1, T.safe,
                                   em_mul(em_neg(T.wt), gi)) != EM_OK)
        return EM_OK;
    b->grad_in[0] = z;
    return EM_OK;
}

/* d ce / d x = g_i (softmax_ic Q_i - q_ic), built in place in one fresh softmax tensor */
static em_status bw_ce(em_bw *b)
{
    em_context *ctx = b->ctx;
    em_dtype dt = b->in_dtype[0];
    double ls = b->p->s[0];
    int64_t B, C, D;
    geometry(b->in_ndim[0], b->in_shape[0], &B, &C, &D);
    em_tensor *w = b->saved[2];
    em_tensor *t3 = em_reshape(b->saved[1], EM_SHAPE(B, 1, D));
    targets T = prepare(ctx, t3, w, dt, b->p->shape[0], B, C, D);
    em_tensor *gi = grad_per_target(b, &T, B, D);
    em_tensor *grad = em__halong(K(softmax), b->saved[0], b->in_ndim[0] >= 2 ? 1 : 0);
    em_tensor *p = em_view(grad, EM_SHAPE(B, C, D));
    /* Q_i = (1 - ls) w[t_i] + ls / C sum_c w_c (0 where ignored) */
    em_tensor *q = em_mul_scalar(T.wt, 1.0 - ls);
    em_tensor *valid = NULL;
    if (ls > 0 && C > 0) {
        valid = em_masked_fill(em__hfull(ctx, dt, EM_SHAPE(B, 1, D), 1.0), T.ignored, 0.0);
        em_tensor *wsum = w ? em_sum(w) : em__hscalar(ctx, dt, (double)C);
        q = em_add(q, em_mul(em_mul_scalar(valid, ls / (double)C), wsum));
    }
    em_status st = em__hk_(K(mul), p, em_mul(q, gi));
    if (st == EM_OK && valid) {
        /* minus ls / C g_i w_c: per target without weights, an outer product with them */
        em_tensor *a = em_mul(em_mul_scalar(valid, ls / (double)C), gi);
        if (!w) {
            st = em__hk_(K(sub), p, a);
        } else {
            em_tensor *wcol = em_expand(em_reshape(w, EM_SHAPE(1, C, 1)), EM_SHAPE(B, C, 1));
            em__tensor *po = em__obj(p), *wo = em__obj(wcol), *ao = em__obj(a);
            st = po && wo && ao ? em__launch_gemm(ctx, po, wo, ao, -1.0, 1.0) : em__failed(ctx);
        }
    }
    if (st == EM_OK && C > 0)
        st = em__hscatter_add_(p, 1, T.safe, em_mul(em_mul_scalar(T.wt, -(1.0 - ls)), gi));
    /* ignored rows: exactly 0, also where their softmax is NaN (a row of NaN or of equal
     * infinities, which the scaling by 0 above leaves NaN); the mask broadcast along the
     * classes, filled with em__hk_'s p0 = 0 */
    if (st == EM_OK && C > 0)
        st = em__hk_(K(masked_fill), p, T.ignored);
    if (st == EM_OK)
        b->grad_in[0] = grad;
    return EM_OK;
}

/* One descriptor per name PyTorch's composition prints for the node: nll_loss_nd calls
 * nll_loss for (N, C) and (C), nll_loss2d for (N, C, H, W), and for other ranks nll_loss2d
 * on a reshaped input, whose unreduced result is then a view; smoothing ends in an add. */
#define CLASS_OP(ident, opname, gradname, saves_, kern, bw)                                       \
    static const em_op ident = {.name = opname, .grad_fn = gradname, .arity = 3,                \
                                .saves = saves_, .kernel = K(kern), .shape = shape_class,       \
                                .forward = fw_class, .backward = bw}
#define NLL_SAVES (EM_SAVE_IN(1) | EM_SAVE_IN(2))
#define CE_SAVES (EM_SAVE_IN(0) | EM_SAVE_IN(1) | EM_SAVE_IN(2))
CLASS_OP(op_nll, "nll_loss", "NllLossBackward0", NLL_SAVES, gather, bw_nll);
CLASS_OP(op_nll_2d, "nll_loss", "NllLoss2DBackward0", NLL_SAVES, gather, bw_nll);
CLASS_OP(op_nll_view, "nll_loss", "ViewBackward0", NLL_SAVES, gather, bw_nll);
CLASS_OP(op_ce, "cross_entropy", "NllLossBackward0", CE_SAVES, log_softmax, bw_ce);
CLASS_OP(op_ce_2d, "cross_entropy", "NllLoss2DBackward0", CE_SAVES, log_softmax, bw_ce);
CLASS_OP(op_ce_view, "cross_entropy", "ViewBackward0", CE_SAVES, log_softmax, bw_ce);
CLASS_OP(op_ce_smooth, "cross_entropy", "AddBackward0", CE_SAVES, log_softmax, bw_ce);

static bool is_ce(const em_op *op)
{
    return op->backward == bw_ce;
}

static const em_op *class_op(bool ce, int ndim, int reduction, double ls)
{
    if (ce && ls > 0)
        return &op_ce_smooth;
    if (ndim <= 2)
        return ce ? &op_ce : &op_nll;
    if (ndim != 4 && reduction == EM_REDUCTION_NONE)
        return ce ? &op_ce_view : &op_nll_view;
    return ce ? &op_ce_2d : &op_nll_2d;
}

/* ================================================================= public API */

EMBER_API em_class_loss_options em_class_loss_defaults(void)
{
    em_class_loss_options o;
    memset(&o, 0, sizeof o);
    o.ignore_index = -100;
    o.reduction = EM_REDUCTION_MEAN;
    return o;
}

static em_tensor *class_loss(bool ce, em_tensor *input, em_tensor *target,
                             const em_class_loss_options *opt)
{
    const char *name = ce ? "cross_entropy" : "nll_loss";
    em__tensor *x = em__obj(input), *t = em__obj(target);
    if (!x || !t)
        return NULL;
    em_context *ctx = x->ctx;
    em_class_loss_options o = opt ? *opt : em_class_loss_defaults();
    if (!em__reduction_ok(ctx, name, o.reduction))
        return NULL;
    if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0))
        return em__error(ctx, EM_ERR_INVALID, "%s: label_smoothing must be between 0.0 and 1.0. "
                         "Got: %g", name, o.label_smoothing), NULL;
    if (!ce && o.label_smoothing != 0.0)
        return em__error(ctx, EM_ERR_INVALID, "nll_loss: label_smoothing applies to cross_entropy "
                         "only"), NULL;
    em__tensor *w = NULL;
    if (o.weight) {
        em__tensor *wo = em__obj(o.weight);
        if (!wo)
            return NULL;
        /* the weight receives no gradient (not differentiable in PyTorch either) */
        if (!(w = em__tensor_alias(wo, wo->ndim, wo->shape, wo->strides, wo->offset)))
            return NULL;
    }
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = o.reduction;
    p.s[0] = o.label_smoothing;
    p.shape[0] = o.ignore_index;
    const em_op *op = class_op(ce, x->ndim, o.reduction, o.label_smoothing);
    em__tensor *in[3] = {x, t, w};
    em__tensor *r = em__apply(op, in, w ? 3 : 2, &p);
    em__tensor_unref(w);
    return em__give(r);
}

EMBER_API em_tensor *em_cross_entropy(em_tensor *logits, em_tensor *target)
{
    return class_loss(true, logits, target, NULL);
}

EMBER_API em_tensor *em_cross_entropy_ex(em_tensor *logits, em_tensor *target,
                                         const em_class_loss_options *opt)
{
    return class_loss(true, logits, target, opt);
}

EMBER_API em_tensor *em_nll_loss(em_tensor *log_probs, em_tensor *target)
{
    return class_loss(false, log_probs, target, NULL);
}

EMBER_API em_tensor *em_nll_loss_ex(em_tensor *log_probs, em_tensor *target,
                                    const em_class_loss_options *opt)
{
    return class_loss(false, log_probs, target, opt);
}
