/* core/ops/compose.c — the helpers of compose.h: private scopes for forwards written with the
 * public API, kernel calls on handles and objects (elementwise, reductions, max/min along a
 * dim, softmax, gather, scatter_add) that record nothing, and the autograd record of an op
 * whose outputs were computed outside em__apply. */
#include "config.h"
#include "compose.h"

#include <string.h>

/* ----------------------------------------------------------------- scopes */

em_status em__fw_begin(em_context *ctx)
{
    int depth = ctx->n_scopes;
    em_scope_begin(ctx);
    if (ctx->n_scopes != depth + 1) {
        if (ctx->scope_overflow > 0)
            em_scope_end(ctx);
        return em__failed(ctx) != EM_OK ? em__failed(ctx) : em__error(ctx, EM_ERR_OOM, "out of memory");
    }
    ctx->no_grad_depth++;
    return EM_OK;
}

void em__fw_end(em_context *ctx)
{
    ctx->no_grad_depth--;
    em_scope_end(ctx);
}

em_tensor *em__h(em__tensor *t)
{
    return t ? em__give(em__tensor_ref(t)) : NULL;
}

void em__local_begin(em_context *ctx)
{
    em_scope_begin(ctx);
}

em_tensor *em__local_end(em_context *ctx, em_tensor *r)
{
    r = em_tensor_keep(r);
    em_scope_end(ctx);
    if (r && em__scope_add(ctx, r) != EM_OK) {
        em__handle_release(r);
        return NULL;
    }
    return r;
}

/* ----------------------------------------------------------------- shapes and dims */

int em__reduced_shape(int ndim, const int64_t *shape, uint32_t mask, bool keepdim, int64_t *out)
{
    int n = 0;
    for (int d = 0; d < ndim; d++) {
        if (mask & (1u << d)) {
            if (keepdim)
                out[n++] = 1;
        } else {
            out[n++] = shape[d];
        }
    }
    return n;
}

int64_t em__mask_count(const em__tensor *a, uint32_t mask)
{
    int64_t n = 1;
    for (int d = 0; d < a->ndim; d++)
        if (mask & (1u << d))
            n *= a->shape[d];
    return n;
}

bool em__dims_mask(em_context *ctx, const char *op, int ndim, int ndims, const int *dims,
                   uint32_t *mask)
{
    *mask = 0;
    if (ndims < 0 || (ndims > 0 && !dims)) {
        em__error(ctx, EM_ERR_INVALID, "%s: invalid dims list (%d dims)", op, ndims);
        return false;
    }
    for (int i = 0; i < ndims; i++) {
        bool ok;
        int d = em__wrap_dim(ctx, dims[i], ndim, op, &ok);
        if (!ok)
            return false;
        if (*mask & (1u << d)) {
            em__error(ctx, EM_ERR_INVALID, "%s: dim %d appears multiple times in the list of dims",
                      op, d);
            return false;
        }
        *mask |= 1u << d;
    }
    if (ndims == 0)
        *mask = ndim ? (uint32_t)((1u << ndim) - 1) : 0;
    if (ndim == 0)
        *mask = 0;
    return true;
}

em__tensor *em__keepdim_view(em__tensor *out, const em__tensor *a, uint32_t mask)
{
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++)
        shape[d] = (mask & (1u << d)) ? 1 : a->shape[d];
    em__contiguous_strides(a->ndim, shape, strides);
    return em__tensor_alias(out, a->ndim, shape, strides, out->offset);
}

/* ----------------------------------------------------------------- kernels on objects */

em_status em__kfill(em__tensor *t, double v)
{
    em_context *ctx = t->ctx;
    double p[4] = {v, 0, 0, 0};
    if (t->dtype == EM_I64 || t->dtype == EM_I32 || t->dtype == EM_U8) {
        int64_t ip[1] = {(int64_t)v};
        return em__launch_ip(ctx, EM_K(fill), t, NULL, 0, p, NULL, ip, 1);
    }
    return em__launch(ctx, EM_K(fill), t, NULL, 0, p, NULL);
}

em__tensor *em__kreduce(size_t k, em__tensor *a, uint32_t mask, bool keepdim, double scale)
{
    em_context *ctx = a->ctx;
    int64_t shape[EM_MAX_DIMS];
    int nd = em__reduced_shape(a->ndim, a->shape, mask, keepdim, shape);
    em__tensor *out = em__tensor_new(ctx, a->dtype, nd, shape);
    if (!out)
        return NULL;
    em__tensor *kv = em__keepdim_view(out, a, mask);
    em_status st = kv ? EM_OK : em__failed(ctx);
    if (st == EM_OK && em__numel(a->ndim, a->shape) == 0)
        st = em__kfill(kv, k == EM_K(prod) ? 1.0 : 0.0);
    else if (st == EM_OK)
        st = em__launch_reduce(ctx, k, kv, a, scale);
    em__tensor_unref(kv);
    if (st != EM_OK) {
        em__tensor_unref(out);
        return NULL;
    }
    return out;
}

static em__tensor *cast(em__tensor *a, em_dtype dt)
{
    em__tensor *c = em__tensor_new(a->ctx, dt, a->ndim, a->shape);
    em__tensor *in[1] = {a};
    if (c && em__launch(a->ctx, EM_K(copy), c, in, 1, NULL, NULL) != EM_OK) {
        em__tensor_unref(c);
        return NULL;
    }
    return c;
}

em_status em__kmaxmin(size_t k, em__tensor *a, int dim, bool keepdim, em__tensor **values,
                      em__tensor **indices)
{
    em_context *ctx = a->ctx;
    /* the kernels take numbers: bool is compared as u8, and converted back */
    em__tensor *src = a->dtype == EM_BOOL ? cast(a, EM_U8) : em__tensor_ref(a);
    if (!src)
        return em__failed(ctx);
    uint32_t mask = a->ndim ? 1u << dim : 0;
    int64_t shape[EM_MAX_DIMS];
    int nd = em__reduced_shape(a->ndim, a->shape, mask, keepdim, shape);
    em__tensor *v = em__tensor_new(ctx, src->dtype, nd, shape);
    em__tensor *ix = v ? em__tensor_new(ctx, EM_I64, nd, shape) : NULL;
    em__tensor *kv = ix ? em__keepdim_view(v, a, mask) : NULL;
    em__tensor *ki = kv ? em__keepdim_view(ix, a, mask) : NULL;
    em_status st = ki ? EM_OK : em__failed(ctx);
    if (st == EM_OK) {
        em__tensor *outs[2] = {kv, ki};
        st = em__launch_dim(ctx, k, outs, 2, src, dim, NULL);
    }
    em__tensor_unref(kv);
    em__tensor_unref(ki);
    em__tensor_unref(src);
    if (st == EM_OK && a->dtype == EM_BOOL) {
        em__tensor *b = cast(v, EM_BOOL);
        em__tensor_unref(v);
        v = b;
        st = b ? EM_OK : em__failed(ctx);
    }
    if (st != EM_OK) {
        em__tensor_unref(v);
        em__tensor_unref(ix);
        return st;
    }
    if (values)
        *values = v;
    else
        em__tensor_unref(v);
    if (indices)
        *indices = ix;
    else
        em__tensor_unref(ix);
    return EM_OK;
}

/* ----------------------------------------------------------------- kernels on handles */

em_tensor *em__hk(size_t k, int out_dt, em_tensor *const *in, int n, double p0, double p1)
{
    em__tensor *o[EM_MAX_ARITY];
    if (n < 1 || n > EM_MAX_ARITY)
        return NULL;
    for (int i = 0; i < n; i++)
        if (!(o[i] = em__obj(in[i])))
            return NULL;
    em_context *ctx = o[0]->ctx;
    int nd = o[0]->ndim;
    int64_t shape[EM_MAX_DIMS];
    memcpy(shape, o[0]->shape, sizeof(int64_t) * (size_t)nd);
    for (int i = 1; i < n; i++) {
        int64_t tmp[EM_MAX_DIMS];
        int nt;
        if (em__broadcast_shapes(ctx, em__kernel_name(k), nd, shape, o[i]->ndim, o[i]->shape, &nt,
                                 tmp) != EM_OK)
            return NULL;
        nd = nt;
        memcpy(shape, tmp, sizeof(int64_t) * (size_t)nd);
    }
    em__tensor *out = em__tensor_new(ctx, out_dt < 0 ? o[0]->dtype : (em_dtype)out_dt, nd, shape);
    if (!out)
        return NULL;
    double p[4] = {p0, p1, 0, 0};
    if (em__launch(ctx, k, out, o, n, p, NULL) != EM_OK) {
        em__tensor_unref(out);
        return NULL;
    }
    return em__give(out);
}

em_tensor *em__hk1(size_t k, em_tensor *a)
{
    return em__hk(k, -1, &a, 1, 0, 0);
}

em_tensor *em__hk2(size_t k, em_tensor *a, em_tensor *b)
{
    em_tensor *in[2] = {a, b};
    return em__hk(k, -1, in, 2, 0, 0);
}

static em_status inplace(size_t k, em_tensor *self, em_tensor *other, int n, double p0, double p1)
{
    em__tensor *s = em__obj(self), *o = n > 1 ? em__obj(other) : NULL;
    if (!s || (n > 1 && !o))
        return s ? (em__failed(s->ctx) != EM_OK ? em__failed(s->ctx) : EM_ERR_INVALID) : EM_ERR_INVALID;
    em__tensor *in[2] = {s, o};
    double p[4] = {p0, p1, 0, 0};
    return em__launch(s->ctx, k, s, in, n, p, NULL);
}

em_status em__hk_(size_t k, em_tensor *self, em_tensor *other)
{
    return inplace(k, self, other, 2, 0, 0);
}

em_status em__hk1_(size_t k, em_tensor *self, double p0, double p1)
{
    return inplace(k, self, NULL, 1, p0, p1);
}

em_tensor *em__hfull(em_context *ctx, em_dtype dt, int nd, const int64_t *shape, double v)
{
    em__tensor *t = em__tensor_new(ctx, dt, nd, shape);
    if (t && em__kfill(t, v) != EM_OK) {
        em__tensor_unref(t);
        return NULL;
    }
    return em__give(t);
}

em_tensor *em__hscalar(em_context *ctx, em_dtype dt, double v)
{
    return em__hfull(ctx, dt, 0, NULL, v);
}

em_tensor *em__hreduce(size_t k, em_tensor *a, uint32_t mask, bool keepdim, double scale)
{
    em__tensor *o = em__obj(a);
    return o ? em__give(em__kreduce(k, o, mask, keepdim, scale)) : NULL;
}

em_status em__hmaxmin(size_t k, em_tensor *a, int dim, bool keepdim, em_tensor **values,
                      em_tensor **indices)
{
    em__tensor *o = em__obj(a), *v = NULL, *ix = NULL;
    if (values)
        *values = NULL;
    if (indices)
        *indices = NULL;
    if (!o)
        return EM_ERR_INVALID;
    em_status st = em__kmaxmin(k, o, dim, keepdim, values ? &v : NULL, indices ? &ix : NULL);
    if (st != EM_OK)
        return st;
    if (values)
        *values = em__give(v);
    if (indices)
        *indices = em__give(ix);
    return EM_OK;
}

em_tensor *em__halong(size_t k, em_tensor *a, int dim)
{
    em__tensor *o = em__obj(a);
    if (!o)
        return NULL;
    em__tensor *out = em__tensor_new(o->ctx, o->dtype, o->ndim, o->shape);
    if (!out)
        return NULL;
    em__tensor *outs[1] = {out};
    if (em__launch_dim(o->ctx, k, outs, 1, o, dim, NULL) != EM_OK) {
        em__tensor_unref(out);
        return NULL;
    }
    return em__give(out);
}

em_tensor *em__hgather(em_tensor *src, int dim, em_tensor *index)
{
    em__tensor *s = em__obj(src), *ix = em__obj(index);
    if (!s || !ix)
        return NULL;
    em__tensor *out = em__tensor_new(s->ctx, s->dtype, ix->ndim, ix->shape);
    if (!out)
        return NULL;
    em__tensor *outs[1] = {out}, *in[2] = {s, ix};
    int64_t ip[1] = {dim};
    if (em__launch_views(s->ctx, EM_K(gather), outs, 1, in, 2, NULL, ip, 1) != EM_OK) {
        em__tensor_unref(out);
        return NULL;
    }
    return em__give(out);
}

em_status em__hscatter_add_(em_tensor *out, int dim, em_tensor *index, em_tensor *src)
{
    em__tensor *o = em__obj(out), *ix = em__obj(index), *s = em__obj(src);
    if (!o || !ix || !s)
        return o ? em__failed(o->ctx) : EM_ERR_INVALID;
    em__tensor *outs[1] = {o}, *in[2] = {ix, s};
    int64_t ip[1] = {dim};
    return em__launch_views(o->ctx, EM_K(scatter_add), outs, 1, in, 2, NULL, ip, 1);
}

/* ----------------------------------------------------------------- autograd */

em_status em__record_for(const em_op *op, em__tensor *const *in, int n_in, const em_op_params *p,
                         em__tensor *out)
{
    em_context *ctx = out->ctx;
    bool any = false;
    for (int i = 0; i < n_in; i++)
        any = any || in[i]->requires_grad;
    if (!any || !em__grad_mode(ctx))
        return EM_OK;
    em_call c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.op = op;
    c.n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        c.in[i] = in[i];
        c.in_version[i] = in[i]->storage->version;
    }
    if (p)
        c.p = *p;
    c.out = out;
    return em__record(&c);
}
