/* core/ops/index.c — indexing with i64 index tensors (index_select, gather, scatter_add)
 * and joining (cat, stack). Every index is checked against its dim's size before any kernel
 * writes (the kernels may assume indices in range); the check reads only the index's min
 * and max back to the host. Backward (g has the output's shape):
 *   index_select(t, dim, i):  dt = zeros(t).index_add(dim, i, g)  (a scatter_add with i
 *                             expanded to g's shape)
 *   gather(t, dim, i):        dt = zeros(t).scatter_add(dim, i, g)
 *   scatter_add(t, dim, i, s): dt = g, ds = g.gather(dim, i) (zero where s is larger than i)
 *   cat / stack:              each input gets its part of g (narrow / select views).
 * cat and stack take any number of inputs: a node has at most EM_MAX_ARITY inputs, so the
 * inputs are grouped into a tree of nodes whose inner outputs are views of the result. */
#include "config.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- index checks */

/* Indices up to this many are read to the host whole; larger ones are reduced on the
 * device to their min and max first. */
#define HOST_SCAN_MAX 4096

/* The smallest and largest element of a non-empty i64 tensor. */
static em_status index_min_max(em_context *ctx, em__tensor *idx, int64_t *lo, int64_t *hi)
{
    int64_t n = em__numel(idx->ndim, idx->shape);
    if (n <= HOST_SCAN_MAX) {
        int64_t *v = em__malloc(sizeof *v * (size_t)n);
        if (!v)
            return em__error(ctx, EM_ERR_OOM, "out of memory reading an index");
        em_status st = em__to_host_as(idx, EM_I64, v);
        if (st == EM_OK) {
            *lo = *hi = v[0];
            for (int64_t i = 1; i < n; i++) {
                if (v[i] < *lo)
                    *lo = v[i];
                if (v[i] > *hi)
                    *hi = v[i];
            }
        }
        free(v);
        return st;
    }
    /* max_dim / min_dim over the index seen as 1-D: values into vals[0] and vals[1] */
    em_status st = EM_ERR_OOM;
    int64_t two = 2, one = 1, stride1 = 1, shape_n = n;
    em__tensor *flat = NULL, *vals = NULL, *pos = NULL, *o[4] = {0};
    if (em__is_contiguous(idx)) {
        flat = em__tensor_alias(idx, 1, &shape_n, &stride1, idx->offset);
    } else if ((flat = em__tensor_new(ctx, EM_I64, idx->ndim, idx->shape))) {
        em__tensor *in[1] = {idx};
        st = em__launch(ctx, EM_KERNEL_OFFSET(copy), flat, in, 1, NULL, NULL);
        if (st != EM_OK)
            goto done;
        flat->ndim = 1;
        flat->shape[0] = n;
        flat->strides[0] = 1;
    }
    if (!flat || !(vals = em__tensor_new(ctx, EM_I64, 1, &two)) ||
        !(pos = em__tensor_new(ctx, EM_I64, 1, &two)))
        goto done;
    for (int k = 0; k < 2; k++)
        if (!(o[2 * k] = em__tensor_alias(vals, 1, &one, &stride1, k)) ||
            !(o[2 * k + 1] = em__tensor_alias(pos, 1, &one, &stride1, k)))
            goto done;
    st = em__launch_dim(ctx, EM_KERNEL_OFFSET(min_dim), o, 2, flat, 0, NULL);
    if (st == EM_OK)
        st = em__launch_dim(ctx, EM_KERNEL_OFFSET(max_dim), o + 2, 2, flat, 0, NULL);
    int64_t mm[2];
    if (st == EM_OK)
        st = em__to_host_as(vals, EM_I64, mm);
    if (st == EM_OK) {
        *lo = mm[0];
        *hi = mm[1];
    }
done:
    if (st == EM_ERR_OOM && em__failed(ctx) == EM_OK)
        em__error(ctx, EM_ERR_OOM, "out of memory checking an index");
    for (int k = 0; k < 4; k++)
        em__tensor_unref(o[k]);
    em__tensor_unref(flat);
    em__tensor_unref(vals);
    em__tensor_unref(pos);
    return st == EM_OK ? EM_OK : em__failed(ctx);
}

/* Every element of idx in [0, size): "index 7 is out of bounds for dimension 1 with size 5". */
static em_status check_range(em_context *ctx, const char *opname, em__tensor *idx, int dim,
                             int64_t size)
{
    if (em__numel(idx->ndim, idx->shape) == 0)
        return EM_OK;
    int64_t lo = 0, hi = 0;
    em_status st = index_min_max(ctx, idx, &lo, &hi);
    if (st != EM_OK)
        return st;
    int64_t bad = lo < 0 ? lo : hi >= size ? hi : 0;
    if (lo < 0 || hi >= size)
        return em__error(ctx, EM_ERR_INVALID, "%s: index %lld is out of bounds for dimension %d "
                         "with size %lld", opname, (long long)bad, dim, (long long)size);
    return EM_OK;
}

static em_status need_i64(em_context *ctx, const char *opname, const em__tensor *idx)
{
    if (idx->dtype != EM_I64)
        return em__error(ctx, EM_ERR_DTYPE, "%s: Expected dtype int64 for index (got %s)", opname,
                         em_dtype_name(idx->dtype));
    return EM_OK;
}

static int64_t size_at(const em__tensor *t, int d)
{
    return t->ndim ? t->shape[d] : 1;
}

static int ndim1(const em__tensor *t)
{
    return t->ndim ? t->ndim : 1;
}

/* ----------------------------------------------------------------- index_select */

/* params: i[0] = dim (wrapped) */
static em_status shape_index_select(em_call *c)
{
    em__tensor *a = c->in[0], *idx = c->in[1];
    int d = c->p.i[0];
    em_status st = need_i64(c->ctx, "index_select()", idx);
    if (st != EM_OK)
        return st;
    if (idx->ndim > 1)
        return em__error(c->ctx, EM_ERR_SHAPE, "index_select(): Index is supposed to be a vector "
                         "(got %d dimensions)", idx->ndim);
    int64_t m = em__numel(idx->ndim, idx->shape);
    if (a->ndim == 0 && m != 1)
        return em__error(c->ctx, EM_ERR_SHAPE, "index_select(): Index to scalar can have only 1 "
                         "value, got %lld value(s)", (long long)m);
    c->out_ndim = a->ndim;
    memcpy(c->out_shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    if (a->ndim)
        c->out_shape[d] = m;
    c->out_dtype = a->dtype;
    return EM_OK;
}

static em_status fw_index_select(em_call *c)
{
    em__tensor *outs[1] = {c->out};
    return em__launch_dim(c->ctx, EM_KERNEL_OFFSET(index_select), outs, 1, c->in[0], c->p.i[0],
                          c->in[1]);
}

static em_tensor *scatter_add_nocheck(em_tensor *t, int dim, em_tensor *index, em_tensor *src);
static em_tensor *gather_nocheck(em_tensor *t, int dim, em_tensor *index);

static em_status bw_index_select(em_bw *b)
{
    int d = b->p->i[0], nd = b->in_ndim[0];
    em_tensor *g = b->grad_out;
    int64_t shape[EM_MAX_DIMS];
    for (int i = 0; i < nd; i++)
        shape[i] = i == d ? em_tensor_numel(b->saved[1]) : 1;
    em_tensor *idx = em_expand(em_reshape(b->saved[1], nd, shape), nd, em_tensor_shape(g));
    em_tensor *z = em_zeros(b->ctx, b->in_dtype[0], nd, b->in_shape[0]);
    b->grad_in[0] = scatter_add_nocheck(z, d, idx, g);
    return b->grad_in[0] ? EM_OK : em__failed(b->ctx);
}

const em_op em__op_index_select = {.name = "index_select", .grad_fn = "IndexSelectBackward0",
                                   .arity = 2, .saves = EM_SAVE_IN(1),
                                   .kernel = EM_KERNEL_OFFSET(index_select),
                                   .shape = shape_index_select, .forward = fw_index_select,
                                   .backward = bw_index_select};

/* ----------------------------------------------------------------- gather */

static em_status shape_gather(em_call *c)
{
    em__tensor *a = c->in[0], *idx = c->in[1];
    int d = c->p.i[0];
    em_status st = need_i64(c->ctx, "gather()", idx);
    if (st != EM_OK)
        return st;
    if (ndim1(idx) != ndim1(a))
        return em__error(c->ctx, EM_ERR_SHAPE, "gather(): Index tensor must have the same number "
                         "of dimensions as input tensor (%d and %d)", idx->ndim, a->ndim);
    for (int i = 0; i < ndim1(a); i++) {
        if (i != d && size_at(idx, i) > size_at(a, i)) {
            char si[160], sa[160];
            em__shape_str(idx->ndim, idx->shape, si, sizeof si);
            em__shape_str(a->ndim, a->shape, sa, sizeof sa);
            return em__error(c->ctx, EM_ERR_SHAPE, "gather(): Size does not match at dimension %d "
                             "expected index %s to be smaller than self %s apart from dimension "
                             "%d", i, si, sa, d);
        }
    }
    c->out_ndim = idx->ndim;
    memcpy(c->out_shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    c->out_dtype = a->dtype;
    return EM_OK;
}

static em_status fw_gather(em_call *c)
{
    em__tensor *outs[1] = {c->out}, *ins[2] = {c->in[0], c->in[1]};
    int64_t ip[1] = {c->p.i[0]};
    return em__launch_views(c->ctx, EM_KERNEL_OFFSET(gather), outs, 1, ins, 2, NULL, ip, 1);
}

static em_status bw_gather(em_bw *b)
{
    em_tensor *z = em_zeros(b->ctx, b->in_dtype[0], b->in_ndim[0], b->in_shape[0]);
    b->grad_in[0] = scatter_add_nocheck(z, b->p->i[0], b->saved[1], b->grad_out);
    return b->grad_in[0] ? EM_OK : em__failed(b->ctx);
}

const em_op em__op_gather = {.name = "gather", .grad_fn = "GatherBackward0", .arity = 2,
                             .saves = EM_SAVE_IN(1), .kernel = EM_KERNEL_OFFSET(gather),
                             .shape = shape_gather, .forward = fw_gather, .backward = bw_gather};

/* ----------------------------------------------------------------- scatter_add */

static em_status shape_scatter_add(em_call *c)
{
    em__tensor *a = c->in[0], *idx = c->in[1], *src = c->in[2];
    int d = c->p.i[0];
    if (a->dtype != src->dtype)
        return em__error(c->ctx, EM_ERR_DTYPE, "scatter_add(): Expected self.dtype to be equal to "
                         "src.dtype (got %s and %s)", em_dtype_name(a->dtype),
                         em_dtype_name(src->dtype));
    if (a->dtype == EM_BOOL)
        return em__error(c->ctx, EM_ERR_DTYPE, "scatter_add(): not implemented for bool tensors");
    em_status st = need_i64(c->ctx, "scatter_add()", idx);
    if (st != EM_OK)
        return st;
    if (ndim1(idx) != ndim1(a))
        return em__error(c->ctx, EM_ERR_SHAPE, "scatter_add(): Index tensor must have the same "
                         "number of dimensions as self tensor (%d and %d)", idx->ndim, a->ndim);
    if (ndim1(idx) != ndim1(src))
        return em__error(c->ctx, EM_ERR_SHAPE, "scatter_add(): Index tensor must have the same "
                         "number of dimensions as src tensor (%d and %d)", idx->ndim, src->ndim);
    for (int i = 0; i < ndim1(a); i++) {
        if ((i != d && size_at(idx, i) > size_at(a, i)) || size_at(idx, i) > size_at(src, i)) {
            char si[160], sa[160], ss[160];
            em__shape_str(idx->ndim, idx->shape, si, sizeof si);
            em__shape_str(a->ndim, a->shape, sa, sizeof sa);
            em__shape_str(src->ndim, src->shape, ss, sizeof ss);
            return em__error(c->ctx, EM_ERR_SHAPE, "scatter_add(): Expected index %s to be smaller "
                             "than self %s apart from dimension %d and to be smaller size than "
                             "src %s", si, sa, d, ss);
        }
    }
    c->out_ndim = a->ndim;
    memcpy(c->out_shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    c->out_dtype = a->dtype;
    return EM_OK;
}

static bool same_view(const em__tensor *a, const em__tensor *b)
{
    return a->storage == b->storage && a->offset == b->offset && a->ndim == b->ndim &&
           !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) &&
           !memcmp(a->strides, b->strides, sizeof(int64_t) * (size_t)a->ndim);
}

static em_status fw_scatter_add(em_call *c)
{
    em__tensor *a = c->in[0], *idx = c->in[1], *src = c->in[2];
    em_status st = EM_OK;
    if (!same_view(c->out, a)) {   /* out of place: start from a copy of self */
        em__tensor *in[1] = {a};
        st = em__launch(c->ctx, EM_KERNEL_OFFSET(copy), c->out, in, 1, NULL, NULL);
        if (st != EM_OK)
            return st;
    }
    if (em__numel(idx->ndim, idx->shape) == 0)
        return EM_OK;
    /* the kernel takes src with the index's shape: the leading part of src */
    em__tensor *s = em__tensor_alias(src, idx->ndim, idx->shape, src->strides, src->offset);
    if (!s)
        return em__failed(c->ctx);
    em__tensor *outs[1] = {c->out}, *ins[2] = {idx, s};
    int64_t ip[1] = {c->p.i[0]};
    st = em__launch_views(c->ctx, EM_KERNEL_OFFSET(scatter_add), outs, 1, ins, 2, NULL, ip, 1);
    em__tensor_unref(s);
    return st;
}

static em_status bw_scatter_add(em_bw *b)
{
    int d = b->p->i[0];
    if (b->needs[0])
        b->grad_in[0] = em__dup(b->grad_out);
    if (!b->needs[2])
        return EM_OK;
    em_tensor *gs = gather_nocheck(b->grad_out, d, b->saved[1]);
    if (!gs)
        return em__failed(b->ctx);
    int nd = b->in_ndim[2];
    const int64_t *ss = b->in_shape[2], *is = em_tensor_shape(gs);
    bool same = em_tensor_ndim(gs) == nd && !memcmp(is, ss, sizeof(int64_t) * (size_t)nd);
    if (same) {
        b->grad_in[2] = gs;
        return EM_OK;
    }
    /* src larger than the index: its other elements were not used (zero gradient) */
    em_tensor *z = em_zeros(b->ctx, b->in_dtype[2], nd, ss), *part = z;
    for (int i = 0; i < nd && part; i++)
        part = em_narrow(part, i, 0, is[i]);
    if (!part)
        return em__failed(b->ctx);
    em_status st = em_copy_(part, gs);
    b->grad_in[2] = st == EM_OK ? z : NULL;
    return st;
}

const em_op em__op_scatter_add = {.name = "scatter_add", .grad_fn = "ScatterAddBackward0",
                                  .arity = 3, .saves = EM_SAVE_IN(1),
                                  .kernel = EM_KERNEL_OFFSET(scatter_add),
                                  .shape = shape_scatter_add, .forward = fw_scatter_add,
                                  .backward = bw_scatter_add};

/* ----------------------------------------------------------------- public indexing API */

static em__tensor *apply_dim(const em_op *op, em__tensor *const *in, int n, int dim)
{
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = dim;
    return em__apply(op, in, n, &p);
}

/* Resolve handles (NULL or stale: NULL, already recorded), check one context, wrap dim
 * against t's ndim. */
static bool prologue(const char *opname, em_tensor *const *h, em__tensor **o, int n, int dim,
                     int *d)
{
    for (int i = 0; i < n; i++)
        if (!(o[i] = em__obj(h[i])))
            return false;
    for (int i = 1; i < n; i++)
        if (o[i]->ctx != o[0]->ctx)
            return em__error(o[0]->ctx, EM_ERR_DEVICE, "%s: expected all tensors to be on the same "
                             "context, but found %s:%d and %s:%d", opname,
                             o[0]->ctx->backend_name, o[0]->ctx->device_index,
                             o[i]->ctx->backend_name, o[i]->ctx->device_index), false;
    bool ok;
    *d = em__wrap_dim(o[0]->ctx, dim, o[0]->ndim, opname, &ok);
    return ok;
}

/* The shape rule's checks, then the range check, then the op (which checks again: cheap). */
static em__tensor *checked(const em_op *op, const char *opname, em__tensor *const *o, int n,
                           int d, em__tensor *idx, em__tensor *self)
{
    em_call c;
    memset(&c, 0, sizeof c);
    c.ctx = o[0]->ctx;
    c.op = op;
    c.n_in = n;
    for (int i = 0; i < n; i++)
        c.in[i] = o[i];
    c.p.i[0] = d;
    if (op->shape(&c) != EM_OK)
        return NULL;
    if (check_range(c.ctx, opname, idx, d, size_at(self, d)) != EM_OK)
        return NULL;
    return apply_dim(op, o, n, d);
}

EMBER_API em_tensor *em_index_select(em_tensor *t, int dim, em_tensor *index)
{
    em_tensor *h[2] = {t, index};
    em__tensor *o[2];
    int d;
    if (!prologue("index_select()", h, o, 2, dim, &d))
        return NULL;
    return em__give(checked(&em__op_index_select, "index_select()", o, 2, d, o[1], o[0]));
}

EMBER_API em_tensor *em_gather(em_tensor *t, int dim, em_tensor *index)
{
    em_tensor *h[2] = {t, index};
    em__tensor *o[2];
    int d;
    if (!prologue("gather()", h, o, 2, dim, &d))
        return NULL;
    return em__give(checked(&em__op_gather, "gather()", o, 2, d, o[1], o[0]));
}

EMBER_API em_tensor *em_scatter_add(em_tensor *t, int dim, em_tensor *index, em_tensor *src)
{
    em_tensor *h[3] = {t, index, src};
    em__tensor *o[3];
    int d;
    if (!prologue("scatter_add()", h, o, 3, dim, &d))
        return NULL;
    return em__give(checked(&em__op_scatter_add, "scatter_add()", o, 3, d, o[1], o[0]));
}

EMBER_API em_status em_scatter_add_(em_tensor *self, int dim, em_tensor *index, em_tensor *src)
{
    if (!self)
        return em__error_global(EM_ERR_INVALID, "scatter_add_: NULL tensor");
    em_tensor *h[3] = {self, index, src};
    em__tensor *o[3];
    int d;
    if (!prologue("scatter_add_()", h, o, 3, dim, &d)) {
        em__tensor *s = em__obj_quiet(self);
        if (!s)
            return EM_ERR_FREED;
        return em__failed(s->ctx) != EM_OK ? em__failed(s->ctx)
                                       : em__error(s->ctx, EM_ERR_INVALID, "scatter_add_(): NULL "
                                                   "tensor argument");
    }
    em_context *ctx = o[0]->ctx;
    em_call c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.op = &em__op_scatter_add;
    c.n_in = 3;
    for (int i = 0; i < 3; i++)
        c.in[i] = o[i];
    c.p.i[0] = d;
    if (em__op_scatter_add.shape(&c) != EM_OK)
        return em__failed(ctx);
    em_status st = check_range(ctx, "scatter_add_()", o[1], d, size_at(o[0], d));
    if (st != EM_OK)
        return st;
    return em__apply_inplace(&em__op_scatter_add, o[0], o, 3, &c.p);
}

/* For backward functions: the index was checked when the forward ran (and the version
 * check guarantees it is unchanged). */
static em_tensor *scatter_add_nocheck(em_tensor *t, int dim, em_tensor *index, em_tensor *src)
{
    em_tensor *h[3] = {t, index, src};
    em__tensor *o[3];
    int d;
    if (!prologue("scatter_add()", h, o, 3, dim, &d))
        return NULL;
    return em__give(apply_dim(&em__op_scatter_add, o, 3, d));
}

static em_tensor *gather_nocheck(em_tensor *t, int dim, em_tensor *index)
{
    em_tensor *h[2] = {t, index};
    em__tensor *o[2];
    int d;
    if (!prologue("gather()", h, o, 2, dim, &d))
        return NULL;
    return em__give(apply_dim(&em__op_gather, o, 2, d));
}
