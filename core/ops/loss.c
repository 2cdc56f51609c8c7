/* core/ops/loss.c — element-wise losses as torch.nn.functional has them: mse_loss, l1_loss,
 * smooth_l1_loss and binary_cross_entropy_with_logits, each reduced as `reduction` says
 * (mean, sum, none). mse, smooth L1 and BCE-with-logits record one node with PyTorch's name
 * (MseLossBackward0, SmoothL1LossBackward0, BinaryCrossEntropyWithLogitsBackward0) for
 * every reduction; l1_loss is PyTorch's composition (|input - target|, then mean or sum), so
 * it prints as PyTorch's does (MeanBackward0, SumBackward0, AbsBackward0). Input and target
 * share a float dtype; mse and smooth L1 broadcast them (the engine sums each gradient back
 * to its input's shape); BCE wants them of one shape.
 * Gradients (norm = 1 / numel for mean, else 1; g the incoming gradient):
 *   mse        d input = 2 norm (x - t) g                      d target = -d input
 *   smooth L1  d input = norm g * clamp((x - t) / beta, -1, 1)   d target = -d input
 *   BCE        d input = w norm g ((1 + (pw - 1) t) sigmoid(x) - pw t)
 *              d target = w norm g (log(1 - sigmoid(x)) - pw log(sigmoid(x)))   (pw = 1 absent) */
#include "config.h"
#include "compose.h"

#include <math.h>
#include <string.h>

#define K EM_K

/* params: i[0] = reduction, i[1] = which optional tensors BCE has (1: weight, 2: pos_weight);
 * s[0] = beta (smooth L1) */
#define HAS_WEIGHT 1
#define HAS_POS_WEIGHT 2

bool em__reduction_ok(em_context *ctx, const char *op, int r)
{
    if (r == EM_REDUCTION_MEAN || r == EM_REDUCTION_SUM || r == EM_REDUCTION_NONE)
        return true;
    em__error(ctx, EM_ERR_INVALID, "%s: %d is not a valid value for reduction", op, (int)r);
    return false;
}

/* input and target: one float dtype, broadcast (or equal shapes); out: that shape for
 * reduction none, else 0-dim */
static em_status shape_pair(em_call *c, bool broadcast)
{
    em__tensor *x = c->in[0], *t = c->in[1];
    if (!em__is_float(x->dtype))
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected a floating point input (f32 or f64), "
                         "got %s", c->op->name, em_dtype_name(x->dtype));
    if (t->dtype != x->dtype)
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected a target of the input's dtype %s, got "
                         "%s", c->op->name, em_dtype_name(x->dtype), em_dtype_name(t->dtype));
    int nd;
    int64_t shape[EM_MAX_DIMS];
    if (broadcast) {
        if (em__broadcast_shapes(c->ctx, c->op->name, x->ndim, x->shape, t->ndim, t->shape, &nd,
                                 shape) != EM_OK)
            return em__failed(c->ctx);
    } else {
        if (x->ndim != t->ndim || memcmp(x->shape, t->shape, sizeof(int64_t) * (size_t)x->ndim)) {
            char xs[160], ts[160];
            em__shape_str(x->ndim, x->shape, xs, sizeof xs);
            em__shape_str(t->ndim, t->shape, ts, sizeof ts);
            return em__error(c->ctx, EM_ERR_SHAPE, "%s: Target size (%s) must be the same as "
                             "input size (%s)", c->op->name, ts, xs);
        }
        nd = x->ndim;
        memcpy(shape, x->shape, sizeof(int64_t) * (size_t)nd);
    }
    c->out_dtype = x->dtype;
    if (c->p.i[0] == EM_REDUCTION_NONE) {
        c->out_ndim = nd;
        memcpy(c->out_shape, shape, sizeof(int64_t) * (size_t)nd);
    } else {
        c->out_ndim = 0;
    }
    return EM_OK;
}

/* The per-element losses l (a handle) into c->out, reduced as c->p.i[0] says; the mean of
 * nothing is NaN. */
static em_status finish(em_call *c, em_tensor *l)
{
    em__tensor *lo = em__obj(l);
    if (!lo)
        return em__failed(c->ctx) != EM_OK ? em__failed(c->ctx) : EM_ERR_INVALID;
    em__tensor *in[1] = {lo};
    if (c->p.i[0] == EM_REDUCTION_NONE)
        return em__launch(c->ctx, K(copy), c->out, in, 1, NULL, NULL);
    uint32_t all = lo->ndim ? (uint32_t)((1u << lo->ndim) - 1) : 0;
    em__tensor *kv = em__keepdim_view(c->out, lo, all);
    if (!kv)
        return em__failed(c->ctx);
    int64_t n = em__numel(lo->ndim, lo->shape);
    double scale = c->p.i[0] == EM_REDUCTION_MEAN ? 1.0 / (double)n : 1.0;
    em_status st = em__launch_reduce(c->ctx, K(sum), kv, lo, scale);
    em__tensor_unref(kv);
    return st;
}

/* norm of the gradient: 1 / numel of the broadcast inputs for mean, else 1 */
static double grad_norm(const em_bw *b)
{
    if (b->p->i[0] != EM_REDUCTION_MEAN)
        return 1.0;
    int nd;
    int64_t shape[EM_MAX_DIMS];
    if (em__broadcast_shapes(b->ctx, "loss", b->in_ndim[0], b->in_shape[0], b->in_ndim[1],
                             b->in_shape[1], &nd, shape) != EM_OK)
        return NAN;
    return 1.0 / (double)em__numel(nd, shape);
}

typedef em_status (*compose_fn)(em_call *c, em_tensor *x, em_tensor *t, em_tensor *w);

static em_status fw_composed(em_call *c, compose_fn body)
{
    em_status st = em__fw_begin(c->ctx);
    if (st != EM_OK)
        return st;
    st = body(c, em__h(c->in[0]), em__h(c->in[1]), c->n_in > 2 ? em__h(c->in[2]) : NULL);
    em__fw_end(c->ctx);
    return st;
}

/* ================================================================= mse */

static em_status body_mse(em_call *c, em_tensor *x, em_tensor *t, em_tensor *w)
{
    (void)w;
    em_tensor *d = em_sub(x, t);
    em_status st = em__hk_(K(mul), d, d);
    return st == EM_OK ? finish(c, d) : st;
}
static em_status fw_mse(em_call *c) { return fw_composed(c, body_mse); }
static em_status shape_mse(em_call *c) { return shape_pair(c, true); }

static em_status bw_mse(em_bw *b)
{
    em_tensor *gx = em_mul(em_mul_scalar(em_sub(b->saved[0], b->saved[1]), 2.0 * grad_norm(b)),
                           b->grad_out);
    if (b->needs[0])
        b->grad_in[0] = gx;
    if (b->needs[1])
        b->grad_in[1] = em_neg(gx);
    return EM_OK;
}

static const em_op op_mse = {.name = "mse_loss", .grad_fn = "MseLossBackward0", .arity = 2,
                             .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1), .kernel = K(sub),
                             .shape = shape_mse, .forward = fw_mse, .backward = bw_mse};

static em_tensor *apply2(const em_op *op, em_tensor *x, em_tensor *t, em_tensor *w, int reduction,
                         int flags, double s0)
{
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = reduction;
    p.i[1] = flags;
    p.s[0] = s0;
    em_tensor *in[3] = {x, t, w};
    return em__apply_h(op, in, w ? 3 : 2, &p);
}

EMBER_API em_tensor *em_mse_loss(em_tensor *input, em_tensor *target, em_reduction reduction)
{
    em__tensor *x = em__obj(input);
    if (!x || !em__reduction_ok(x->ctx, "mse_loss", reduction))
        return NULL;
    return apply2(&op_mse, input, target, NULL, reduction, 0, 0);
}

/* ================================================================= l1 */

EMBER_API em_tensor *em_l1_loss(em_tensor *input, em_tensor *target, em_reduction reduction)
{
    em__tensor *x = em__obj(input), *t = em__obj(target);
    if (!x || !t || !em__reduction_ok(x->ctx, "l1_loss", reduction))
        return NULL;
    if (!em__is_float(x->dtype) || t->dtype != x->dtype)
        return em__error(x->ctx, EM_ERR_DTYPE, "l1_loss: expected a floating point input and a "
                         "target of its dtype, got %s and %s", em_dtype_name(x->dtype),
                         em_dtype_name(t->dtype)), NULL;
    em__local_begin(x->ctx);
    em_tensor *l = em_abs(em_sub(input, target));
    if (reduction == EM_REDUCTION_MEAN)
        l = em_mean(l);
    else if (reduction == EM_REDUCTION_SUM)
        l = em_sum(l);
    return em__local_end(x->ctx, l);
}

/* ================================================================= smooth l1 */

/* z = |x - t|:  z < beta ? 0.5 z^2 / beta : z - 0.5 beta */
static em_status body_smooth_l1(em_call *c, em_tensor *x, em_tensor *t, em_tensor *w)
{
    (void)w;
    double beta = c->p.s[0];
    em_tensor *z = em_abs(em_sub(x, t));
    em_tensor *quad = em_div_scalar(em_mul(em_mul_scalar(z, 0.5), z), beta);
    return finish(c, em_where(em_lt_scalar(z, beta), quad, em_add_scalar(z, -0.5 * beta)));
}
static em_status fw_smooth_l1(em_call *c) { return fw_composed(c, body_smooth_l1); }

/* d = x - t:  d <= -beta ? -norm g : d >= beta ? norm g : norm d g / beta */
static em_status bw_smooth_l1(em_bw *b)
{
    double beta = b->p->s[0], norm = grad_norm(b);
    em_tensor *d = em_sub(b->saved[0], b->saved[1]);
    em_tensor *gn = em_mul_scalar(b->grad_out, norm);
    em_tensor *mid = em_div_scalar(em_mul(em_mul_scalar(d, norm), b->grad_out), beta);
    em_tensor *gx = em_where(em_le_scalar(d, -beta), em_neg(gn),
                             em_where(em_ge_scalar(d, beta), gn, mid));
    if (b->needs[0])
        b->grad_in[0] = gx;
    if (b->needs[1])
        b->grad_in[1] = em_neg(gx);
    return EM_OK;
}

static const em_op op_smooth_l1 = {.name = "smooth_l1_loss", .grad_fn = "SmoothL1LossBackward0",
                                   .arity = 2, .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1),
                                   .kernel = K(where), .shape = shape_mse,
                                   .forward = fw_smooth_l1, .backward = bw_smooth_l1};

EMBER_API em_tensor *em_smooth_l1_loss(em_tensor *input, em_tensor *target,
                                       em_reduction reduction, double beta)
{
    em__tensor *x = em__obj(input);
    if (!x || !em__reduction_ok(x->ctx, "smooth_l1_loss", reduction))
        return NULL;
    if (!(beta >= 0))
        return em__error(x->ctx, EM_ERR_INVALID, "smooth_l1_loss does not support negative values "
                         "for beta (got %g)", beta), NULL;
    return apply2(&op_smooth_l1, input, target, NULL, reduction, 0, beta);
}

/* ================================================================= BCE with logits */

/* in[2] holds weight, pos_weight, or both stacked along a new leading dim (flags say which):
 * its parts as handles */
static void bce_parts(int flags, em_tensor *wp, em_tensor **weight, em_tensor **pos_weight)
{
    *weight = *pos_weight = NULL;
    if (flags == (HAS_WEIGHT | HAS_POS_WEIGHT)) {
        em__tensor *s = em__obj(wp);
        for (int i = 0; s && i < 2; i++) {
            em__tensor *v = em__tensor_alias(s, s->ndim - 1, s->shape + 1, s->strides + 1,
                                             s->offset + i * s->strides[0]);
            em_tensor *h = em__give(v);
            if (i == 0)
                *weight = h;
            else
                *pos_weight = h;
        }
    } else if (flags == HAS_WEIGHT) {
        *weight = wp;
    } else if (flags == HAS_POS_WEIGHT) {
        *pos_weight = wp;
    }
}

static em_status shape_bce(em_call *c)
{
    if (shape_pair(c, false) != EM_OK)
        return em__failed(c->ctx);
    if (c->n_in > 2) {
        em__tensor *x = c->in[0], *w = c->in[2];
        int nd;
        int64_t shape[EM_MAX_DIMS];
        bool stacked = c->p.i[1] == (HAS_WEIGHT | HAS_POS_WEIGHT);
        if (w->dtype != x->dtype)
            return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected weights of the input's dtype %s, "
                             "got %s", c->op->name, em_dtype_name(x->dtype), em_dtype_name(w->dtype));
        if (em__broadcast_shapes(c->ctx, c->op->name, x->ndim, x->shape, w->ndim - stacked,
                                 w->shape + stacked, &nd, shape) != EM_OK)
            return em__failed(c->ctx);
        if (nd != x->ndim || memcmp(shape, x->shape, sizeof(int64_t) * (size_t)nd)) {
            char xs[160], ws[160];
            em__shape_str(x->ndim, x->shape, xs, sizeof xs);
            em__shape_str(w->ndim - stacked, w->shape + stacked, ws, sizeof ws);
            return em__error(c->ctx, EM_ERR_SHAPE, "%s: weights of shape %s do not broadcast to "
                             "the input's shape %s", c->op->name, ws, xs);
        }
    }
    return EM_OK;
}

/* m = max(-x, 0);  loss = (1 - t) x + lw (log(exp(-m) + exp(-x - m)) + m), lw = 1 + (pw - 1) t
 * (without pos_weight: (1 - t) x + m + log(exp(-m) + exp(-x - m))), times weight */
static em_status body_bce(em_call *c, em_tensor *x, em_tensor *t, em_tensor *wp)
{
    em_tensor *weight, *pos_weight;
    bce_parts(c->p.i[1], wp, &weight, &pos_weight);
    em_tensor *nx = em_neg(x);
    em_tensor *m = em_clamp_min(nx, 0.0);
    em_tensor *lse = em_log(em_add(em_exp(em_neg(m)), em_exp(em_sub(nx, m))));
    em_tensor *loss = em_mul(em_rsub_scalar(t, 1.0), x);
    if (pos_weight) {
        em_tensor *lw = em_add_scalar(em_mul(em_sub_scalar(pos_weight, 1.0), t), 1.0);
        loss = em_add(loss, em_mul(lw, em_add(lse, m)));
    } else {
        loss = em_add(em_add(loss, m), lse);
    }
    if (weight)
        loss = em_mul(loss, weight);
    return finish(c, loss);
}
static em_status fw_bce(em_call *c) { return fw_composed(c, body_bce); }

static em_status bw_bce(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *t = b->saved[1];
    em_tensor *weight, *pos_weight;
    bce_parts(b->p->i[1], b->saved[2], &weight, &pos_weight);
    double norm = b->p->i[0] == EM_REDUCTION_MEAN ? 1.0 / (double)em_tensor_numel(x) : 1.0;
    em_tensor *sig = em_sigmoid(x);
    em_tensor *gx = NULL, *gt = NULL;
    if (b->needs[0]) {
        if (pos_weight) {
            em_tensor *pt = em_mul(pos_weight, t);
            gx = em_mul(em_sub(em_mul(em_sub(em_add_scalar(pt, 1.0), t), sig), pt), g);
        } else {
            gx = em_mul(em_sub(sig, t), g);
        }
    }
    if (b->needs[1]) {
        if (pos_weight)
            gt = em_mul(em_sub(em_log(em_rsub_scalar(sig, 1.0)), em_mul(pos_weight, em_log(sig))), g);
        else
            gt = em_mul(x, em_neg(g));
    }
    if (weight) {
        gx = gx ? em_mul(gx, weight) : NULL;
        gt = gt ? em_mul(gt, weight) : NULL;
    }
    if (norm != 1.0) {
        gx = gx ? em_mul_scalar(gx, norm) : NULL;
        gt = gt ? em_mul_scalar(gt, norm) : NULL;
    }
    b->grad_in[0] = gx;
    b->grad_in[1] = gt;
    return EM_OK;
}

static const em_op op_bce = {.name = "binary_cross_entropy_with_logits",
                             .grad_fn = "BinaryCrossEntropyWithLogitsBackward0", .arity = 3,
                             .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1) | EM_SAVE_IN(2),
                             .kernel = K(log), .shape = shape_bce, .forward = fw_bce,
                             .backward = bw_bce};
static const em_op op_bce2 = {.name = "binary_cross_entropy_with_logits",
                              .grad_fn = "BinaryCrossEntropyWithLogitsBackward0", .arity = 2,
                              .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1), .kernel = K(log),
                              .shape = shape_bce, .forward = fw_bce, .backward = bw_bce};

EMBER_API em_bce_options em_bce_defaults(void)
{
    em_bce_options o;
    memset(&o, 0, sizeof o);
    o.reduction = EM_REDUCTION_MEAN;
    return o;
}

/* weight and pos_weight receive no gradient (as in PyTorch, where they are not
 * differentiable): the node sees them detached */
static em__tensor *detached(em__tensor *w)
{
    em__tensor *d = em__tensor_alias(w, w->ndim, w->shape, w->strides, w->offset);
    if (d)
        d->is_view = w->is_view;
    return d;
}

EMBER_API em_tensor *em_binary_cross_entropy_with_logits_ex(em_tensor *input, em_tensor *target,
                                                            const em_bce_options *opt)
{
    em__tensor *x = em__obj(input);
    if (!x)
        return NULL;
    em_context *ctx = x->ctx;
    em_bce_options o = opt ? *opt : em_bce_defaults();
    if (!em__reduction_ok(ctx, "binary_cross_entropy_with_logits", o.reduction))
        return NULL;
    em__tensor *w = o.weight ? em__obj(o.weight) : NULL, *pw = o.pos_weight ? em__obj(o.pos_weight) : NULL;
    if ((o.weight && !w) || (o.pos_weight && !pw))
        return NULL;
    int flags = (w ? HAS_WEIGHT : 0) | (pw ? HAS_POS_WEIGHT : 0);
    if (!flags)
        return apply2(&op_bce2, input, target, NULL, o.reduction, 0, 0);
    em__local_begin(ctx);
    em_tensor *wp;
    if (flags == (HAS_WEIGHT | HAS_POS_WEIGHT)) {
        /* both, stacked: [2, broadcast(weight, pos_weight)] */
        int nd;
        int64_t shape[EM_MAX_DIMS + 1];
        wp = NULL;
        if (w->ctx != ctx || pw->ctx != ctx)
            em__error(ctx, EM_ERR_DEVICE, "binary_cross_entropy_with_logits: weights are on "
                      "another context");
        else if (pw->dtype != w->dtype)
            em__error(ctx, EM_ERR_DTYPE, "binary_cross_entropy_with_logits: weight (%s) and "
                      "pos_weight (%s) differ in dtype", em_dtype_name(w->dtype),
                      em_dtype_name(pw->dtype));
        else if (em__broadcast_shapes(ctx, "binary_cross_entropy_with_logits", w->ndim, w->shape,
                                      pw->ndim, pw->shape, &nd, shape + 1) == EM_OK) {
            if (nd + 1 > EM_MAX_DIMS) {
                em__error(ctx, EM_ERR_SHAPE, "binary_cross_entropy_with_logits: too many dims");
            } else {
                shape[0] = 2;
                em__tensor *s = em__tensor_new(ctx, w->dtype, nd + 1, shape);
                em__tensor *part[2] = {w, pw};
                bool ok = s != NULL;
                for (int i = 0; ok && i < 2; i++) {
                    em__tensor *v = em__tensor_alias(s, nd, shape + 1, s->strides + 1,
                                                     s->offset + i * s->strides[0]);
                    em__tensor *in[1] = {part[i]};
                    ok = v && em__launch(ctx, K(copy), v, in, 1, NULL, NULL) == EM_OK;
                    em__tensor_unref(v);
                }
                wp = ok ? em__give(s) : NULL;
                if (!ok)
                    em__tensor_unref(s);
            }
        }
    } else {
        wp = em__give(detached(w ? w : pw));
    }
    em_tensor *r = wp ? apply2(&op_bce, input, target, wp, o.reduction, flags, 0) : NULL;
    return em__local_end(ctx, r);
}

EMBER_API em_tensor *em_binary_cross_entropy_with_logits(em_tensor *input, em_tensor *target)
{
    return em_binary_cross_entropy_with_logits_ex(input, target, NULL);
}
