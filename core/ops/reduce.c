/* core/ops/reduce.c — sum and mean, over everything or over chosen dims (keepdim).
 * Shape legend: a [d0..dn]; out has the reduced dims removed (or 1 with keepdim); g has
 * out's shape, and the gradient is g broadcast back over the reduced dims (scaled 1/n for
 * mean). As PyTorch, a bool or integer tensor sums to i64 (converted first, then the sum
 * kernel on i64), and its mean is an error. */
#include "config.h"
#include "internal.h"

#include <string.h>

/* params: dim_mask = reduced dims, i[0] = keepdim */

static em_status shape_reduce(em_call *c)
{
    em__tensor *a = c->in[0];
    bool floating = em_dtype_is_floating(a->dtype);
    if (!floating && !strcmp(c->op->name, "mean"))
        return em__error(c->ctx, EM_ERR_DTYPE, "mean(): could not infer output dtype. Input dtype "
                         "must be either a floating point or complex dtype. Got: %s (convert with "
                         "em_to_dtype)", em_dtype_name(a->dtype));
    bool keep = c->p.i[0] != 0;
    int n = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (c->p.dim_mask & (1u << d)) {
            if (keep)
                c->out_shape[n++] = 1;
        } else {
            c->out_shape[n++] = a->shape[d];
        }
    }
    c->out_ndim = n;
    c->out_dtype = floating ? a->dtype : EM_I64;
    return EM_OK;
}

/* A view of out with size 1 in every reduced dim, as the sum kernel wants. */
static em__tensor *keepdim_view(em__tensor *out, const em__tensor *a, uint32_t mask)
{
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++)
        shape[d] = (mask & (1u << d)) ? 1 : a->shape[d];
    em__contiguous_strides(a->ndim, shape, strides);
    return em__tensor_alias(out, a->ndim, shape, strides, out->offset);
}

static em_status fw_reduce(em_call *c, bool mean)
{
    em__tensor *a = c->in[0];
    int64_t count = 1;
    for (int d = 0; d < a->ndim; d++)
        if (c->p.dim_mask & (1u << d))
            count *= a->shape[d];
    /* mean of nothing is NaN, as PyTorch */
    double scale = mean ? (count ? 1.0 / (double)count : __builtin_nan("")) : 1.0;
    em__tensor *kv = keepdim_view(c->out, a, c->p.dim_mask);
    if (!kv)
        return em__failed(c->ctx);
    em__tensor *cast = a->dtype != c->out_dtype ? em__cast(a, c->out_dtype) : NULL;
    em_status st = a->dtype != c->out_dtype && !cast
                       ? em__failed(c->ctx)
                       : em__launch_reduce(c->ctx, EM_KERNEL_OFFSET(sum), kv, cast ? cast : a, scale);
    em__tensor_unref(cast);
    em__tensor_unref(kv);
    return st;
}
static em_status fw_sum(em_call *c) { return fw_reduce(c, false); }
static em_status fw_mean(em_call *c) { return fw_reduce(c, true); }

/* g -> g reshaped with 1 in the reduced dims, expanded to the input shape, times scale */
static em_status bw_reduce(em_bw *b, bool mean)
{
    em_tensor *g = b->grad_out;
    int nd = b->in_ndim[0];
    const int64_t *shape = b->in_shape[0];
    int64_t kshape[EM_MAX_DIMS];
    int64_t count = 1;
    for (int d = 0; d < nd; d++) {
        bool r = b->p->dim_mask & (1u << d);
        kshape[d] = r ? 1 : shape[d];
        if (r)
            count *= shape[d];
    }
    em_tensor *gk = em_reshape(g, nd, kshape);
    if (mean)
        gk = em_div_scalar(gk, (double)count);
    b->grad_in[0] = em_expand(gk, nd, shape);
    return EM_OK;
}
static em_status bw_sum(em_bw *b) { return bw_reduce(b, false); }
static em_status bw_mean(em_bw *b) { return bw_reduce(b, true); }

const em_op em__op_sum = {.name = "sum", .grad_fn = "SumBackward0", .arity = 1,
                          .kernel = EM_KERNEL_OFFSET(sum), .shape = shape_reduce,
                          .forward = fw_sum, .backward = bw_sum};
const em_op em__op_sum_dims = {.name = "sum", .grad_fn = "SumBackward1", .arity = 1,
                               .kernel = EM_KERNEL_OFFSET(sum), .shape = shape_reduce,
                               .forward = fw_sum, .backward = bw_sum};
const em_op em__op_mean = {.name = "mean", .grad_fn = "MeanBackward0", .arity = 1,
                           .kernel = EM_KERNEL_OFFSET(sum), .shape = shape_reduce,
                           .forward = fw_mean, .backward = bw_mean};
const em_op em__op_mean_dims = {.name = "mean", .grad_fn = "MeanBackward1", .arity = 1,
                                .kernel = EM_KERNEL_OFFSET(sum), .shape = shape_reduce,
                                .forward = fw_mean, .backward = bw_mean};

/* ================================================================= public API */

static em_tensor *reduce_all(const em_op *op, em_tensor *h)
{
    em__tensor *a = em__obj(h);
    if (!a)
        return NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.dim_mask = a->ndim ? (uint32_t)((1u << a->ndim) - 1) : 0;
    em__tensor *in[1] = {a};
    return em__give(em__apply(op, in, 1, &p));
}

static em_tensor *reduce_dims(const em_op *op, em_tensor *h, int ndims, const int *dims, bool keepdim)
{
    em__tensor *a = em__obj(h);
    if (!a)
        return NULL;
    if (ndims < 0 || (ndims > 0 && !dims))
        return em__error(a->ctx, EM_ERR_INVALID, "%s: invalid dims list", op->name), NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = keepdim;
    if (ndims == 0)   /* x.sum(dim=[]): every dim */
        p.dim_mask = a->ndim ? (uint32_t)((1u << a->ndim) - 1) : 0;
    for (int i = 0; i < ndims; i++) {
        bool ok;
        int d = em__wrap_dim(a->ctx, dims[i], a->ndim, op->name, &ok);
        if (!ok)
            return NULL;
        if (p.dim_mask & (1u << d))
            return em__error(a->ctx, EM_ERR_INVALID, "%s: dim %d appears multiple times in the "
                             "list of dims", op->name, d), NULL;
        p.dim_mask |= 1u << d;
    }
    if (a->ndim == 0)
        p.dim_mask = 0;
    em__tensor *in[1] = {a};
    return em__give(em__apply(op, in, 1, &p));
}

EMBER_API em_tensor *em_sum(em_tensor *a) { return reduce_all(&em__op_sum, a); }
EMBER_API em_tensor *em_mean(em_tensor *a) { return reduce_all(&em__op_mean, a); }

EMBER_API em_tensor *em_sum_dims(em_tensor *a, int ndims, const int *dims, bool keepdim)
{
    return reduce_dims(&em__op_sum_dims, a, ndims, dims, keepdim);
}

EMBER_API em_tensor *em_mean_dims(em_tensor *a, int ndims, const int *dims, bool keepdim)
{
    return reduce_dims(&em__op_mean_dims, a, ndims, dims, keepdim);
}

/* Used by the autograd engine: sum g over the dims it was broadcast along. */
em__tensor *em__sum_to(em__tensor *g, int ndim, const int64_t *shape)
{
    if (g->ndim == ndim && !memcmp(g->shape, shape, sizeof(int64_t) * (size_t)ndim))
        return em__tensor_ref(g);
    int lead = g->ndim - ndim;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = 1;
    for (int d = 0; d < g->ndim; d++)
        if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1))
            p.dim_mask |= 1u << d;
    em__tensor *in[1] = {g};
    em__tensor *s = em__apply(&em__op_sum_dims, in, 1, &p);
    if (!s)
        return NULL;
    if (s->ndim == ndim)
        return s;
    /* drop the leading (now size-1) dims: a view of contiguous storage */
    int64_t strides[EM_MAX_DIMS];
    em__contiguous_strides(ndim, shape, strides);
    em__tensor *v = em__tensor_alias(s, ndim, shape, strides, s->offset);
    em__tensor_unref(s);
    if (v)
        v->is_view = false;
    return v;
}
