/* core/ops/stats.c — reductions beyond sum and mean: max/min of the whole tensor and along a
 * dim (values and i64 indices), argmax/argmin, prod, var/std, logsumexp and any. Forwards
 * lower to the max_dim/min_dim, prod and sum kernels (em__launch_dim, em__launch_reduce) or
 * compose them; each differentiable op records one node named as PyTorch 1.13 names it, and
 * its backward follows PyTorch's derivative:
 *   max()/min()          MaxBackward1/MinBackward1: g split evenly among the elements equal
 *                        to the result (evenly_distribute_backward; NaN equals NaN there)
 *   max(dim)/min(dim)    MaxBackward0/MinBackward0: g scattered to the indices
 *   prod()/prod(dim)     ProdBackward0/ProdBackward1: g * prod of the others (exact with
 *                        zeros: one zero in a slice gets the product of the rest, two give 0)
 *   var/std              VarBackward0/StdBackward0: 2/(N - correction) * g * (x - mean);
 *                        std: g / (2 std), 0 where std is 0
 *   logsumexp            LogsumexpBackward0: g * exp(x - result)
 * Shapes: a [d0..dn]; reduced dims are removed, or kept with size 1 (keepdim). */
#include "config.h"
#include "compose.h"

#include <math.h>
#include <string.h>

#define K EM_K

/* params: dim_mask = reduced dims, i[0] = keepdim, i[1] = dim (one-dim ops),
 * i[2] = unbiased (var/std) */

/* g (of the reduced shape) with size 1 in the reduced dims, as the input's ndim */
static em_tensor *keepdim_grad(const em_bw *b, em_tensor *g)
{
    int nd = b->in_ndim[0];
    int64_t kshape[EM_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        kshape[d] = (b->p->dim_mask & (1u << d)) ? 1 : b->in_shape[0][d];
    return em_reshape(g, nd, kshape);
}

static int64_t grad_count(const em_bw *b)
{
    int64_t n = 1;
    for (int d = 0; d < b->in_ndim[0]; d++)
        if (b->p->dim_mask & (1u << d))
            n *= b->in_shape[0][d];
    return n;
}

static em_status shape_reduced(em_call *c, em_dtype out_dt)
{
    em__tensor *a = c->in[0];
    c->out_ndim = em__reduced_shape(a->ndim, a->shape, c->p.dim_mask, c->p.i[0] != 0, c->out_shape);
    c->out_dtype = out_dt;
    return EM_OK;
}

static em_status need_float(em_call *c, const char *msg)
{
    if (!em__is_float(c->in[0]->dtype))
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: %s, got %s", c->op->name, msg,
                         em_dtype_name(c->in[0]->dtype));
    return EM_OK;
}

/* ================================================================= max / min of everything */

static em_status shape_extreme(em_call *c)
{
    em__tensor *a = c->in[0];
    if (em__numel(a->ndim, a->shape) == 0)
        return em__error(c->ctx, EM_ERR_INVALID, "%s(): Expected reduction dim to be specified for "
                         "input.numel() == 0. Specify the reduction dim with the 'dim' argument.",
                         c->op->name);
    c->out_ndim = 0;
    c->out_dtype = a->dtype;
    return EM_OK;
}

/* a as one contiguous row */
static em__tensor *flat(em__tensor *a)
{
    int64_t n = em__numel(a->ndim, a->shape), one = 1;
    em__tensor *src = em__tensor_ref(a);
    if (!em__is_contiguous(a)) {
        em__tensor_unref(src);
        src = em__tensor_new(a->ctx, a->dtype, a->ndim, a->shape);
        em__tensor *in[1] = {a};
        if (src && em__launch(a->ctx, K(copy), src, in, 1, NULL, NULL) != EM_OK) {
            em__tensor_unref(src);
            return NULL;
        }
        if (!src)
            return NULL;
    }
    em__tensor *f = em__tensor_alias(src, 1, &n, &one, src->offset);
    em__tensor_unref(src);
    return f;
}

static em_status fw_extreme(em_call *c, size_t k)
{
    em__tensor *f = flat(c->in[0]), *v = NULL;
    em_status st = f ? em__kmaxmin(k, f, 0, false, &v, NULL) : em__failed(c->ctx);
    em__tensor_unref(f);
    if (st == EM_OK) {
        em__tensor *in[1] = {v};
        st = em__launch(c->ctx, K(copy), c->out, in, 1, NULL, NULL);
    }
    em__tensor_unref(v);
    return st;
}
static em_status fw_max(em_call *c) { return fw_extreme(c, K(max_dim)); }
static em_status fw_min(em_call *c) { return fw_extreme(c, K(min_dim)); }

/* evenly_distribute_backward: mask = (x == y) or both NaN; grad = mask ? g / count : 0 */
static em_status bw_extreme(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *y = b->saved[3];
    em_tensor *mask = em_where(em_ne(y, y), em_ne(x, x), em_eq(x, y));
    em_tensor *count = em_sum(em_to_dtype(mask, b->in_dtype[0]));
    b->grad_in[0] = em_where(mask, em_div(g, count), em__hscalar(b->ctx, b->in_dtype[0], 0.0));
    return EM_OK;
}

static const em_op op_max = {.name = "max", .grad_fn = "MaxBackward1", .arity = 1,
                             .saves = EM_SAVE_IN(0) | EM_SAVE_OUT, .kernel = K(max_dim),
                             .shape = shape_extreme, .forward = fw_max, .backward = bw_extreme};
static const em_op op_min = {.name = "min", .grad_fn = "MinBackward1", .arity = 1,
                             .saves = EM_SAVE_IN(0) | EM_SAVE_OUT, .kernel = K(min_dim),
                             .shape = shape_extreme, .forward = fw_min, .backward = bw_extreme};

/* ================================================================= max / min along a dim */

/* value_selecting_reduction_backward: zeros of the input's shape, g scattered to the
 * indices (saved[1]) along dim. */
static em_status bw_extreme_dim(em_bw *b)
{
    em_tensor *g = b->grad_out, *ix = b->saved[1];
    int nd = b->in_ndim[0], dim = b->p->i[1];
    if (nd == 0) {
        b->grad_in[0] = em__dup(g);
        return EM_OK;
    }
    if (!b->p->i[0]) {
        g = em_unsqueeze(g, dim);
        ix = em_unsqueeze(ix, dim);
    }
    em_tensor *z = em_zeros(b->ctx, b->in_dtype[0], nd, b->in_shape[0]);
    if (em__hscatter_add_(z, dim, ix, g) == EM_OK)
        b->grad_in[0] = z;
    return EM_OK;
}

/* Recorded by em__record_for only (the forward has two outputs): in = {a, indices}. */
static const em_op op_max_dim = {.name = "max", .grad_fn = "MaxBackward0", .arity = 2,
                                 .saves = EM_SAVE_IN(1), .kernel = K(max_dim),
                                 .backward = bw_extreme_dim};
static const em_op op_min_dim = {.name = "min", .grad_fn = "MinBackward0", .arity = 2,
                                 .saves = EM_SAVE_IN(1), .kernel = K(min_dim),
                                 .backward = bw_extreme_dim};

/* Wrapped dim of a, checked not to be empty; -1 on error (recorded). */
static int reduction_dim(em__tensor *a, int dim, const char *name)
{
    bool ok;
    int d = em__wrap_dim(a->ctx, dim, a->ndim, name, &ok);
    if (!ok)
        return -1;
    if (a->ndim && a->shape[d] == 0) {
        em__error(a->ctx, EM_ERR_INVALID, "%s(): Expected reduction dim %d to have non-zero size.",
                  name, d);
        return -1;
    }
    return d;
}

static em_status extreme_dim(bool is_max, em_tensor *h, int dim, bool keepdim, em_tensor **values,
                             em_tensor **indices)
{
    const char *name = is_max ? "max" : "min";
    if (!h)
        return em__error_global(EM_ERR_INVALID, "%s: NULL tensor", name);
    em__tensor *a = em__obj(h);
    if (!a)
        return EM_ERR_FREED;
    em_context *ctx = a->ctx;
    int d = reduction_dim(a, dim, name);
    if (d < 0)
        return em__failed(ctx);
    em__tensor *v = NULL, *ix = NULL;
    em_status st = em__kmaxmin(is_max ? K(max_dim) : K(min_dim), a, d, keepdim, &v, &ix);
    if (st != EM_OK)
        return st;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = keepdim;
    p.i[1] = d;
    em__tensor *in[2] = {a, ix};
    if (values)
        st = em__record_for(is_max ? &op_max_dim : &op_min_dim, in, 2, &p, v);
    em_tensor *vh = NULL, *ih = NULL;
    if (st == EM_OK && values && !(vh = em__give(em__tensor_ref(v))))
        st = em__failed(ctx);
    if (st == EM_OK && indices && !(ih = em__give(em__tensor_ref(ix))))
        st = em__failed(ctx);
    em__tensor_unref(v);
    em__tensor_unref(ix);
    if (st != EM_OK) {
        em_tensor_free(vh);
        return st;
    }
    if (values)
        *values = vh;
    if (indices)
        *indices = ih;
    return EM_OK;
}

EMBER_API em_status em_max_dim(em_tensor *a, int dim, bool keepdim, em_tensor **values,
                               em_tensor **indices)
{
    return extreme_dim(true, a, dim, keepdim, values, indices);
}

EMBER_API em_status em_min_dim(em_tensor *a, int dim, bool keepdim, em_tensor **values,
                               em_tensor **indices)
{
    return extreme_dim(false, a, dim, keepdim, values, indices);
}

static em_tensor *arg_extreme(bool is_max, em_tensor *h, int dim, bool keepdim)
{
    const char *name = is_max ? "argmax" : "argmin";
    em__tensor *a = em__obj(h);
    if (!a)
        return NULL;
    int d = reduction_dim(a, dim, name);
    if (d < 0)
        return NULL;
    /* PyTorch's check is in the kernel, which it does not run for an empty input nor along a
     * dim of size 1 (the indices are all 0 there; a 0-dim input does run it) */
    if (a->dtype == EM_BOOL && em__numel(a->ndim, a->shape) > 0 &&
        (a->ndim == 0 || a->shape[d] != 1))
        return em__error(a->ctx, EM_ERR_DTYPE, "%s: \"%s_%s\" not implemented for 'Bool'", name,
                         name, a->ctx->backend_name), NULL;
    em__tensor *ix = NULL;
    if (em__kmaxmin(is_max ? K(max_dim) : K(min_dim), a, d, keepdim, NULL, &ix) != EM_OK)
        return NULL;
    return em__give(ix);
}

EMBER_API em_tensor *em_argmax(em_tensor *a, int dim, bool keepdim) { return arg_extreme(true, a, dim, keepdim); }
EMBER_API em_tensor *em_argmin(em_tensor *a, int dim, bool keepdim) { return arg_extreme(false, a, dim, keepdim); }

EMBER_API em_tensor *em_max(em_tensor *a) { em_tensor *in[1] = {a}; return em__apply_h(&op_max, in, 1, NULL); }
EMBER_API em_tensor *em_min(em_tensor *a) { em_tensor *in[1] = {a}; return em__apply_h(&op_min, in, 1, NULL); }

/* ================================================================= prod */

/* floats keep their dtype; bool and integers multiply as i64, as PyTorch */
static em_status shape_prod(em_call *c)
{
    em_dtype dt = c->in[0]->dtype;
    return shape_reduced(c, em__is_float(dt) ? dt : EM_I64);
}

static em_status fw_prod(em_call *c)
{
    em__tensor *a = c->in[0], *src = a;
    em_context *ctx = c->ctx;
    em__tensor *kv = em__keepdim_view(c->out, a, c->p.dim_mask);
    if (!kv)
        return em__failed(ctx);
    em_status st = EM_OK;
    if (em__numel(a->ndim, a->shape) == 0) {
        st = em__kfill(kv, 1.0);
    } else {
        if (a->dtype != c->out_dtype) {
            src = em__tensor_new(ctx, c->out_dtype, a->ndim, a->shape);
            em__tensor *in[1] = {a};
            st = src ? em__launch(ctx, K(copy), src, in, 1, NULL, NULL) : em__failed(ctx);
        }
        if (st == EM_OK)
            st = em__launch_reduce(ctx, K(prod), kv, src, 1.0);
        if (src != a)
            em__tensor_unref(src);
    }
    em__tensor_unref(kv);
    return st;
}

/* d prod / d x_i = the product of the other elements of x_i's slice: y / x_i when the slice
 * has no zero; at the one zero of a slice, the product of the rest; else 0. */
static em_status bw_prod(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *y = b->saved[3];
    em_dtype dt = b->in_dtype[0];
    uint32_t mask = b->p->dim_mask;
    if (b->in_ndim[0] == 0) {
        b->grad_in[0] = em__dup(g);
        return EM_OK;
    }
    em_tensor *gk = keepdim_grad(b, g), *yk = keepdim_grad(b, y);
    em_tensor *zero = em_eq_scalar(x, 0.0);
    em_tensor *nzero = em__hreduce(K(sum), em_to_dtype(zero, dt), mask, true, 1.0);
    em_tensor *rest = em__hreduce(K(prod), em_masked_fill(x, zero, 1.0), mask, true, 1.0);
    em_tensor *z = em__hscalar(b->ctx, dt, 0.0);
    em_tensor *at_zero = em_where(em_eq_scalar(nzero, 1.0), rest, z);
    em_tensor *others = em_where(em_eq_scalar(nzero, 0.0), em_div(yk, x), z);
    b->grad_in[0] = em_mul(gk, em_where(zero, at_zero, others));
    return EM_OK;
}

static const em_op op_prod = {.name = "prod", .grad_fn = "ProdBackward0", .arity = 1,
                              .saves = EM_SAVE_IN(0) | EM_SAVE_OUT, .kernel = K(prod),
                              .shape = shape_prod, .forward = fw_prod, .backward = bw_prod};
static const em_op op_prod_dim = {.name = "prod", .grad_fn = "ProdBackward1", .arity = 1,
                                  .saves = EM_SAVE_IN(0) | EM_SAVE_OUT, .kernel = K(prod),
                                  .shape = shape_prod, .forward = fw_prod, .backward = bw_prod};

static em_tensor *apply_mask(const em_op *op, em__tensor *a, uint32_t mask, bool keepdim, int i1,
                             int i2)
{
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.dim_mask = mask;
    p.i[0] = keepdim;
    p.i[1] = i1;
    p.i[2] = i2;
    em__tensor *in[1] = {a};
    return em__give(em__apply(op, in, 1, &p));
}

EMBER_API em_tensor *em_prod(em_tensor *h)
{
    em__tensor *a = em__obj(h);
    if (!a)
        return NULL;
    return apply_mask(&op_prod, a, a->ndim ? (uint32_t)((1u << a->ndim) - 1) : 0, false, 0, 0);
}

EMBER_API em_tensor *em_prod_dim(em_tensor *h, int dim, bool keepdim)
{
    em__tensor *a = em__obj(h);
    if (!a)
        return NULL;
    bool ok;
    int d = em__wrap_dim(a->ctx, dim, a->ndim, "prod", &ok);
    if (!ok)
        return NULL;
    return apply_mask(&op_prod_dim, a, a->ndim ? 1u << d : 0, keepdim, d, 0);
}

/* ================================================================= var / std */

static em_status shape_var(em_call *c)
{
    if (need_float(c, "std and var only support floating point and complex dtypes"))
        return em__failed(c->ctx);
    return shape_reduced(c, c->in[0]->dtype);
}

/* two passes: the mean, then the sum of squared deviations / (N - correction); N = 0
 * gives NaN, N - correction = 0 gives 0/0 = NaN (inf * 0), as PyTorch */
static em_status fw_var_std(em_call *c, bool is_std)
{
    em_context *ctx = c->ctx;
    em__tensor *a = c->in[0];
    uint32_t mask = c->p.dim_mask;
    int64_t n = em__mask_count(a, mask);
    double dof = (double)n - (c->p.i[2] ? 1.0 : 0.0);
    em__tensor *kv = em__keepdim_view(c->out, a, mask);
    if (!kv)
        return em__failed(ctx);
    em_status st;
    if (n == 0) {
        st = em__kfill(kv, NAN);
    } else if ((st = em__fw_begin(ctx)) == EM_OK) {
        em_tensor *x = em__h(a);
        em_tensor *d = em_sub(x, em__hreduce(K(sum), x, mask, true, 1.0 / (double)n));
        st = em__hk_(K(mul), d, d);
        if (st == EM_OK)
            st = em__launch_reduce(ctx, K(sum), kv, em__obj(d), 1.0 / dof);
        if (st == EM_OK && is_std) {
            em__tensor *in[1] = {kv};
            st = em__launch(ctx, K(sqrt), kv, in, 1, NULL, NULL);
        }
        em__fw_end(ctx);
    }
    em__tensor_unref(kv);
    return st;
}
static em_status fw_var(em_call *c) { return fw_var_std(c, false); }
static em_status fw_std(em_call *c) { return fw_var_std(c, true); }

/* var_backward: (2 / (N - correction)) * g * (x - mean(x)) */
static em_tensor *var_grad(em_bw *b, em_tensor *g)
{
    em_tensor *x = b->saved[0];
    int64_t n = grad_count(b);
    double dof = (double)n - (b->p->i[2] ? 1.0 : 0.0);
    em_tensor *mean = em__hreduce(K(sum), x, b->p->dim_mask, true, n ? 1.0 / (double)n : 0.0);
    return em_mul(em_mul_scalar(keepdim_grad(b, g), 2.0 / dof), em_sub(x, mean));
}

static em_status bw_var(em_bw *b)
{
    b->grad_in[0] = var_grad(b, b->grad_out);
    return EM_OK;
}

/* std_backward: var_backward of g / (2 std), with 0 where std is 0 */
static em_status bw_std(em_bw *b)
{
    em_tensor *y = b->saved[3];
    em_tensor *gv = em_masked_fill(em_div(b->grad_out, em_mul_scalar(y, 2.0)), em_eq_scalar(y, 0.0),
                                   0.0);
    b->grad_in[0] = var_grad(b, gv);
    return EM_OK;
}

static const em_op op_var = {.name = "var", .grad_fn = "VarBackward0", .arity = 1,
                             .saves = EM_SAVE_IN(0), .kernel = K(sum), .shape = shape_var,
                             .forward = fw_var, .backward = bw_var};
static const em_op op_std = {.name = "std", .grad_fn = "StdBackward0", .arity = 1,
                             .saves = EM_SAVE_IN(0) | EM_SAVE_OUT, .kernel = K(sum),
                             .shape = shape_var, .forward = fw_std, .backward = bw_std};

static em_tensor *var_std(const em_op *op, em_tensor *h, int ndims, const int *dims, bool unbiased,
                          bool keepdim)
{
    em__tensor *a = em__obj(h);
    uint32_t mask;
    if (!a || !em__dims_mask(a->ctx, op->name, a->ndim, ndims, dims, &mask))
        return NULL;
    return apply_mask(op, a, mask, keepdim, 0, unbiased);
}

EMBER_API em_tensor *em_var(em_tensor *a, bool unbiased) { return var_std(&op_var, a, 0, NULL, unbiased, false); }
EMBER_API em_tensor *em_std(em_tensor *a, bool unbiased) { return var_std(&op_std, a, 0, NULL, unbiased, false); }

EMBER_API em_tensor *em_var_dims(em_tensor *a, int ndims, const int *dims, bool unbiased,
                                 bool keepdim)
{
    return var_std(&op_var, a, ndims, dims, unbiased, keepdim);
}

EMBER_API em_tensor *em_std_dims(em_tensor *a, int ndims, const int *dims, bool unbiased,
                                 bool keepdim)
{
    return var_std(&op_std, a, ndims, dims, unbiased, keepdim);
}

/* ================================================================= logsumexp */

static em_status shape_logsumexp(em_call *c)
{
    if (need_float(c, "expected a floating point tensor (f32 or f64)"))
        return em__failed(c->ctx);
    return shape_reduced(c, c->in[0]->dtype);
}

/* m = max over the dims (0 where it is infinite), log(sum(exp(x - m))) + m; reducing
 * nothing gives -inf */
static em_status fw_logsumexp(em_call *c)
{
    em_context *ctx = c->ctx;
    em__tensor *a = c->in[0];
    uint32_t mask = c->p.dim_mask;
    em__tensor *kv = em__keepdim_view(c->out, a, mask);
    if (!kv)
        return em__failed(ctx);
    em_status st;
    if (em__mask_count(a, mask) == 0) {
        st = em__kfill(kv, -INFINITY);
    } else if ((st = em__fw_begin(ctx)) == EM_OK) {
        em_tensor *x = em__h(a), *m = x;
        for (int d = 0; d < a->ndim && st == EM_OK; d++)
            if (mask & (1u << d))
                st = em__hmaxmin(K(max_dim), m, d, true, &m, NULL);
        em_tensor *ms = em_masked_fill(m, em_eq_scalar(em_abs(m), INFINITY), 0.0);
        em_tensor *e = em_sub(x, ms);
        if (st == EM_OK)
            st = em__hk1_(K(exp), e, 0, 0);
        em_tensor *s = em__hreduce(K(sum), e, mask, true, 1.0);
        if (st == EM_OK)
            st = em__hk1_(K(log), s, 0, 0);
        if (st == EM_OK) {
            em__tensor *in[2] = {em__obj(s), em__obj(ms)};
            st = em__launch(ctx, K(add), kv, in, 2, NULL, NULL);
        }
        em__fw_end(ctx);
    }
    em__tensor_unref(kv);
    return st;
}

static em_status bw_logsumexp(em_bw *b)
{
    em_tensor *x = b->saved[0], *y = b->saved[3];
    b->grad_in[0] = em_mul(keepdim_grad(b, b->grad_out), em_exp(em_sub(x, keepdim_grad(b, y))));
    return EM_OK;
}

static const em_op op_logsumexp = {.name = "logsumexp", .grad_fn = "LogsumexpBackward0",
                                   .arity = 1, .saves = EM_SAVE_IN(0) | EM_SAVE_OUT,
                                   .kernel = K(max_dim), .shape = shape_logsumexp,
                                   .forward = fw_logsumexp, .backward = bw_logsumexp};

EMBER_API em_tensor *em_logsumexp(em_tensor *h, int ndims, const int *dims, bool keepdim)
{
    em__tensor *a = em__obj(h);
    uint32_t mask;
    if (!a || !em__dims_mask(a->ctx, "logsumexp", a->ndim, ndims, dims, &mask))
        return NULL;
    if (em__is_float(a->dtype))
        return apply_mask(&op_logsumexp, a, mask, keepdim, 0, 0);
    /* integers and bool are promoted to the default float dtype, as PyTorch */
    em__local_begin(a->ctx);
    em__tensor *f = em__obj(em_to_dtype(h, EM_F32));
    em_tensor *r = f ? apply_mask(&op_logsumexp, f, mask, keepdim, 0, 0) : NULL;
    return em__local_end(a->ctx, r);
}

/* ================================================================= any */

static em_tensor *any_over(em_tensor *h, uint32_t mask, bool keepdim)
{
    em__tensor *a = em__obj(h);
    if (!a)
        return NULL;
    em_context *ctx = a->ctx;
    em__local_begin(ctx);
    em_tensor *nz = a->dtype == EM_BOOL ? h : em_ne(h, em__hscalar(ctx, a->dtype, 0.0));
    em_tensor *count = em__hreduce(K(sum), em_to_dtype(nz, EM_F32), mask, keepdim, 1.0);
    return em__local_end(ctx, em_gt_scalar(count, 0.0));
}

EMBER_API em_tensor *em_any(em_tensor *h)
{
    em__tensor *a = em__obj(h);
    return a ? any_over(h, a->ndim ? (uint32_t)((1u << a->ndim) - 1) : 0, false) : NULL;
}

EMBER_API em_tensor *em_any_dim(em_tensor *h, int dim, bool keepdim)
{
    em__tensor *a = em__obj(h);
    if (!a)
        return NULL;
    bool ok;
    int d = em__wrap_dim(a->ctx, dim, a->ndim, "any", &ok);
    return ok ? any_over(h, a->ndim ? 1u << d : 0, keepdim) : NULL;
}
