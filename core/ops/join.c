/* core/ops/join.c — cat and stack: the result is allocated once and each input copied into
 * its part of it (a narrow view for cat, a select view for stack) with the copy kernel.
 * Backward hands each input its part of g as a view (CatBackward0 / StackBackward0).
 *
 * A node has at most EM_MAX_ARITY inputs, but cat and stack take any number: the inputs are
 * grouped into a tree of nodes of the same op whose inner "outputs" are views of the
 * result covering a run of consecutive inputs (so nothing is copied twice). A node's
 * backward tells a group (an input with the result's ndim, for stack) from a single input
 * by its ndim, and cuts g by the inputs' extents along dim.
 *
 * Params: i[0] = dim (wrapped against the result). As torch.cat (1.13), 1-D empty tensors
 * are skipped whatever the other inputs' shapes (legacy behaviour); their gradient is an
 * empty tensor. */
#include "config.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static bool cat_skipped(const em__tensor *t)
{
    return t->ndim == 1 && t->shape[0] == 0;
}

/* Checks shared by the public functions and the ops' shape rules: one context and dtype;
 * cat: no 0-dim input, equal shapes apart from dim; stack: equal shapes. Wraps *dim and
 * fills the result's shape. */
static em_status join_check(em_context *ctx, bool stack, em__tensor *const *ts, int n, int *dim,
                            int *out_ndim, int64_t *out_shape)
{
    const char *name = stack ? "stack" : "cat";
    for (int i = 1; i < n; i++) {
        if (ts[i]->ctx != ctx)
            return em__error(ctx, EM_ERR_DEVICE, "%s: expected all tensors to be on the same "
                             "context, but found %s:%d and %s:%d", name, ctx->backend_name,
                             ctx->device_index, ts[i]->ctx->backend_name,
                             ts[i]->ctx->device_index);
        if (ts[i]->dtype != ts[0]->dtype)
            return em__error(ctx, EM_ERR_DTYPE, "%s: expected all tensors to have one dtype, but "
                             "tensor number 0 is %s and tensor number %d is %s", name,
                             em_dtype_name(ts[0]->dtype), i, em_dtype_name(ts[i]->dtype));
    }
    bool ok;
    if (stack) {
        const em__tensor *t0 = ts[0];
        for (int i = 1; i < n; i++) {
            if (ts[i]->ndim != t0->ndim ||
                memcmp(ts[i]->shape, t0->shape, sizeof(int64_t) * (size_t)t0->ndim)) {
                char a[160], b[160];
                em__shape_str(t0->ndim, t0->shape, a, sizeof a);
                em__shape_str(ts[i]->ndim, ts[i]->shape, b, sizeof b);
                return em__error(ctx, EM_ERR_SHAPE, "stack expects each tensor to be equal size, "
                                 "but got %s at entry 0 and %s at entry %d", a, b, i);
            }
        }
        if (t0->ndim >= EM_MAX_DIMS)
            return em__error(ctx, EM_ERR_SHAPE, "stack: the inputs already have %d dimensions",
                             EM_MAX_DIMS);
        int d = em__wrap_dim(ctx, *dim, t0->ndim + 1, "stack", &ok);
        if (!ok)
            return em__failed(ctx);
        *dim = d;
        *out_ndim = t0->ndim + 1;
        for (int i = 0, j = 0; i <= t0->ndim; i++)
            out_shape[i] = i == d ? n : t0->shape[j++];
        return EM_OK;
    }
    int valid = -1;
    for (int i = 0; i < n; i++) {
        if (ts[i]->ndim == 0)
            return em__error(ctx, EM_ERR_SHAPE, "cat: zero-dimensional tensor (at position %d) "
                             "cannot be concatenated", i);
        if (valid < 0 && !cat_skipped(ts[i]))
            valid = i;
    }
    if (valid < 0) {   /* only legacy empty tensors: the result is one of them */
        *dim = 0;
        *out_ndim = 1;
        out_shape[0] = 0;
        return EM_OK;
    }
    const em__tensor *v = ts[valid];
    int d = em__wrap_dim(ctx, *dim, v->ndim, "cat", &ok);
    if (!ok)
        return em__failed(ctx);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const em__tensor *t = ts[i];
        if (cat_skipped(t))
            continue;
        if (t->ndim != v->ndim)
            return em__error(ctx, EM_ERR_SHAPE, "cat: Tensors must have same number of dimensions: "
                             "got %d and %d", v->ndim, t->ndim);
        for (int k = 0; k < v->ndim; k++)
            if (k != d && t->shape[k] != v->shape[k])
                return em__error(ctx, EM_ERR_SHAPE, "cat: Sizes of tensors must match except in "
                                 "dimension %d. Expected size %lld but got size %lld for tensor "
                                 "number %d in the list.", d, (long long)v->shape[k],
                                 (long long)t->shape[k], i);
        if (__builtin_add_overflow(total, t->shape[d], &total) || total > EM__MAX_NUMEL) {
            char a[200];
            em__shape_str(t->ndim, t->shape, a, sizeof a);
            return em__error(ctx, EM_ERR_SHAPE, "cat: the sizes along dimension %d overflow (at "
                             "most %lld elements; tensor number %d has shape %s)", d,
                             (long long)EM__MAX_NUMEL, i, a);
        }
    }
    *dim = d;
    *out_ndim = v->ndim;
    memcpy(out_shape, v->shape, sizeof(int64_t) * (size_t)v->ndim);
    out_shape[d] = total;
    return EM_OK;
}

/* How far input t reaches along dim of the result. */
static int64_t extent(bool stack, const em__tensor *t, int dim)
{
    return stack ? 1 : cat_skipped(t) ? 0 : t->shape[dim];
}

/* The view of out covering [start, start + len) along dim (len = -1: the select view of a
 * single stacked input at start). */
static em__tensor *part_of(em__tensor *out, int dim, int64_t start, int64_t len)
{
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    int64_t offset = out->offset + (len ? start * out->strides[dim] : 0);
    int nd = 0;
    for (int i = 0; i < out->ndim; i++) {
        if (i == dim && len < 0)
            continue;
        shape[nd] = i == dim ? len : out->shape[i];
        strides[nd++] = out->strides[i];
    }
    return em__tensor_alias(out, nd, shape, strides, offset);
}

/* Copy every input into its part of out. */
static em_status join_fill(em_context *ctx, bool stack, em__tensor *out, em__tensor *const *ts,
                           int n, int dim)
{
    int64_t start = 0;
    for (int i = 0; i < n; i++) {
        int64_t ext = extent(stack, ts[i], dim);
        if (ext > 0 && em__numel(ts[i]->ndim, ts[i]->shape) > 0) {
            em__tensor *dst = part_of(out, dim, start, stack ? -1 : ext);
            if (!dst)
                return em__failed(ctx);
            em__tensor *in[1] = {ts[i]};
            em_status st = em__launch(ctx, EM_KERNEL_OFFSET(copy), dst, in, 1, NULL, NULL);
            em__tensor_unref(dst);
            if (st != EM_OK)
                return st;
        }
        start += ext;
    }
    return EM_OK;
}

/* ----------------------------------------------------------------- descriptors */

static em_status shape_join(em_call *c, bool stack)
{
    int d = c->p.i[0];
    em_status st = join_check(c->ctx, stack, c->in, c->n_in, &d, &c->out_ndim, c->out_shape);
    c->p.i[0] = d;
    c->out_dtype = c->in[0]->dtype;
    return st;
}
static em_status shape_cat(em_call *c) { return shape_join(c, false); }
static em_status shape_stack(em_call *c) { return shape_join(c, true); }
static em_status fw_cat(em_call *c) { return join_fill(c->ctx, false, c->out, c->in, c->n_in, c->p.i[0]); }
static em_status fw_stack(em_call *c) { return join_fill(c->ctx, true, c->out, c->in, c->n_in, c->p.i[0]); }

static em_status bw_join(em_bw *b, bool stack)
{
    em_tensor *g = b->grad_out;
    int d = b->p->i[0], gnd = em_tensor_ndim(g);
    int64_t start = 0;
    for (int i = 0; i < EM_MAX_ARITY && b->in_shape[i]; i++) {
        int nd = b->in_ndim[i];
        const int64_t *s = b->in_shape[i];
        bool single = stack && nd == gnd - 1;
        bool skipped = !stack && nd == 1 && s[0] == 0;
        int64_t ext = single ? 1 : skipped ? 0 : s[d];
        if (b->needs[i]) {
            if (skipped && gnd != 1)
                b->grad_in[i] = em_zeros(b->ctx, b->in_dtype[i], nd, s);
            else if (single)
                b->grad_in[i] = em_select(g, d, start);
            else
                b->grad_in[i] = em_narrow(g, d, start, ext);
            if (!b->grad_in[i])
                return em__failed(b->ctx);
        }
        start += ext;
    }
    return EM_OK;
}
static em_status bw_cat(em_bw *b) { return bw_join(b, false); }
static em_status bw_stack(em_bw *b) { return bw_join(b, true); }

const em_op em__op_cat = {.name = "cat", .grad_fn = "CatBackward0", .arity = EM_MAX_ARITY,
                          .kernel = EM_KERNEL_OFFSET(copy), .shape = shape_cat,
                          .forward = fw_cat, .backward = bw_cat};
const em_op em__op_stack = {.name = "stack", .grad_fn = "StackBackward0", .arity = EM_MAX_ARITY,
                            .kernel = EM_KERNEL_OFFSET(copy), .shape = shape_stack,
                            .forward = fw_stack, .backward = bw_stack};

/* ----------------------------------------------------------------- recording */

static bool any_requires_grad(em__tensor *const *ts, int n)
{
    for (int i = 0; i < n; i++)
        if (ts[i]->requires_grad)
            return true;
    return false;
}

/* Record the node(s) making `rep` (out itself, or a view of it covering ts[0..n), which
 * start at `start` along dim) from ts[0..n): up to EM_MAX_ARITY inputs, each a single
 * input or a group recorded the same way. */
static em_status record_tree(em_context *ctx, const em_op *op, bool stack, const em_op_params *p,
                             em__tensor *out, em__tensor *rep, em__tensor *const *ts, int n,
                             int64_t start)
{
    int k = n < EM_MAX_ARITY ? n : EM_MAX_ARITY;
    em_call c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.op = op;
    c.p = *p;
    c.n_in = k;
    c.out = rep;
    em__tensor *groups[EM_MAX_ARITY] = {0};
    em_status st = EM_OK;
    int first = 0;
    for (int j = 0; j < k && st == EM_OK; j++) {
        int m = n / k + (j < n % k);   /* group sizes differ by at most one */
        if (m == 1) {
            c.in[j] = ts[first];
        } else {
            int64_t len = 0;
            for (int i = first; i < first + m; i++)
                len += extent(stack, ts[i], p->i[0]);
            if (!(groups[j] = part_of(out, p->i[0], start, len))) {
                st = em__failed(ctx);
                break;
            }
            if (any_requires_grad(ts + first, m))
                st = record_tree(ctx, op, stack, p, out, groups[j], ts + first, m, start);
            c.in[j] = groups[j];
        }
        for (int i = first; i < first + m; i++)
            start += extent(stack, ts[i], p->i[0]);
        first += m;
    }
    if (st == EM_OK)
        st = em__record(&c);
    for (int j = 0; j < k; j++)
        em__tensor_unref(groups[j]);
    return st;
}

/* ----------------------------------------------------------------- public API */

static em_tensor *join(bool stack, em_tensor *const *hs, int n, int dim)
{
    const char *name = stack ? "stack" : "cat";
    if (n <= 0 || !hs)
        return em__error_global(EM_ERR_INVALID, stack ? "stack expects a non-empty TensorList"
                                : "torch.cat(): expected a non-empty list of Tensors"), NULL;
    em__tensor **ts = em__malloc(sizeof *ts * (size_t)n);
    if (!ts) {
        em__tensor *t0 = em__obj(hs[0]);
        if (t0)
            em__error(t0->ctx, EM_ERR_OOM, "%s: out of memory", name);
        return NULL;
    }
    em__tensor *out = NULL;
    for (int i = 0; i < n; i++)
        if (!(ts[i] = em__obj(hs[i])))
            goto done;   /* NULL in, NULL out; a stale handle recorded EM_ERR_FREED */
    em_context *ctx = ts[0]->ctx;
    int d = dim, ond;
    int64_t oshape[EM_MAX_DIMS];
    if (join_check(ctx, stack, ts, n, &d, &ond, oshape) != EM_OK)
        goto done;
    if (!(out = em__tensor_new(ctx, ts[0]->dtype, ond, oshape)))
        goto done;
    if (join_fill(ctx, stack, out, ts, n, d) != EM_OK)
        goto fail;
    if (em__grad_mode(ctx) && any_requires_grad(ts, n)) {
        em_op_params p;
        memset(&p, 0, sizeof p);
        p.i[0] = d;
        if (record_tree(ctx, stack ? &em__op_stack : &em__op_cat, stack, &p, out, out, ts, n, 0)
            != EM_OK)
            goto fail;
    }
    goto done;
fail:
    em__tensor_unref(out);
    out = NULL;
done:
    free(ts);
    return em__give(out);
}

EMBER_API em_tensor *em_cat(em_tensor *const *ts, int n, int dim) { return join(false, ts, n, dim); }
EMBER_API em_tensor *em_stack(em_tensor *const *ts, int n, int dim) { return join(true, ts, n, dim); }
