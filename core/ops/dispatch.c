/* core/ops/dispatch.c — from an op call to kernels. em__apply runs one op descriptor: argument
 * checks, the op's shape rule, the output, its forward, and the autograd record. The
 * em__launch* helpers turn tensors into kernel views: broadcast to the output's shape,
 * alias-safe, and with dimensions coalesced so contiguous work reaches a backend as 1-D. */
#include "config.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>


/* ----------------------------------------------------------------- apply */

/* Common checks of op inputs: all present, one context. Returns the context or NULL. */
static em_context *inputs_context(const char *opname, em__tensor *const *in, int n_in)
{
    for (int i = 0; i < n_in; i++)
        if (!in[i])
            return NULL;   /* NULL in -> NULL out: the first error is already recorded */
    em_context *ctx = in[0]->ctx;
    for (int i = 1; i < n_in; i++) {
        if (in[i]->ctx != ctx) {
            em__error(ctx, EM_ERR_DEVICE,
                      "%s: expected all tensors to be on the same context, but found %s:%d and %s:%d",
                      opname, ctx->backend_name, ctx->device_index, in[i]->ctx->backend_name,
                      in[i]->ctx->device_index);
            return NULL;
        }
    }
    return ctx;
}

static bool any_requires_grad(em__tensor *const *in, int n_in)
{
    for (int i = 0; i < n_in; i++)
        if (em__requires_grad(in[i]))
            return true;
    return false;
}

unsigned em__op_saves(const em_op *op, em__tensor *const *in, int n_in)
{
    unsigned s = op->saves;
    for (int i = 0; i < n_in && i < EM_MAX_ARITY; i++)
        if (em__requires_grad(in[i]))
            s |= op->saves_for[i];
    return s;
}

/* Whether a call records a node: the op is differentiable, grad mode is on, an input
 * requires grad, and the result is floating (as in PyTorch, an integer or bool result
 * never requires grad, whatever its inputs). */
static bool records(const em_op *op, em_context *ctx, em_dtype out_dtype, em__tensor *const *in,
                    int n_in)
{
    return op->backward && em_dtype_is_floating(out_dtype) && em__grad_mode(ctx) &&
           any_requires_grad(in, n_in);
}

/* With grad recorded, views among the inputs bring their history up to date (their base
 * may have been written in place since). */
static em_status refresh_views(em__tensor *const *in, int n_in)
{
    for (int i = 0; i < n_in; i++) {
        em_status st = em__view_refresh(in[i]);
        if (st != EM_OK)
            return st;
    }
    return EM_OK;
}

/* A call of op on in[], before its shape rule runs. */
static void call_init(em_call *c, em_context *ctx, const em_op *op, em__tensor *const *in,
                      int n_in, const em_op_params *p)
{
    memset(c, 0, sizeof *c);
    c->ctx = ctx;
    c->op = op;
    c->n_in = n_in;
    for (int i = 0; i < n_in; i++)
        c->in[i] = in[i];
    if (p)
        c->p = *p;
}

static em__tensor *apply(em_context *ctx, const em_op *op, em__tensor *const *in, int n_in,
                         const em_op_params *p)
{
    em_call c;
    call_init(&c, ctx, op, in, n_in, p);
    if (op->shape(&c) != EM_OK)
        return NULL;
    /* every result's shape is checked here, views included (expand, broadcasting) */
    if (em__check_shape_size(ctx, op->name, c.out_ndim, c.out_shape) != EM_OK)
        return NULL;
    bool record = records(op, ctx, c.out_dtype, in, n_in);
    if (record && refresh_views(in, n_in) != EM_OK)
        return NULL;
    for (int i = 0; i < n_in; i++)
        c.in_version[i] = in[i]->storage->version;
    if (!op->is_view) {
        c.out = em__tensor_new(ctx, c.out_dtype, c.out_ndim, c.out_shape);
        if (!c.out)
            return NULL;
    }
    if (op->forward(&c) != EM_OK) {
        em__tensor_unref(c.out);
        return NULL;
    }
    if (record) {
        if (em__record(&c) != EM_OK) {
            em__tensor_unref(c.out);
            return NULL;
        }
    }
    return c.out;
}

em__tensor *em__apply(const em_op *op, em__tensor *const *in, int n_in, const em_op_params *p)
{
    em_context *ctx = inputs_context(op->name, in, n_in);
    if (!ctx)
        return NULL;
    if (!ctx->layer_events)   /* the hook's whole cost without layers */
        return apply(ctx, op, in, n_in, p);
    em__layer_op(ctx, EM_LAYER_OP_BEGIN, op->name, in, n_in, NULL, EM_OK);
    em__tensor *out = apply(ctx, op, in, n_in, p);
    em__layer_op(ctx, EM_LAYER_OP_END, op->name, in, n_in, out,
                 out ? EM_OK : em__failed(ctx) ? em__failed(ctx) : EM_ERR_INTERNAL);
    return out;
}

/* Handles to objects for the public forms: false when one is NULL or stale (a stale one
 * has recorded EM_ERR_FREED). */
static bool resolve(em_tensor *const *in, int n_in, em__tensor **out)
{
    bool ok = true;
    for (int i = 0; i < n_in; i++) {
        out[i] = em__obj(in[i]);
        ok = ok && out[i];
    }
    return ok;
}

em_tensor *em__apply_h(const em_op *op, em_tensor *const *in, int n_in, const em_op_params *p)
{
    em__tensor *obj[EM_MAX_ARITY];
    if (!resolve(in, n_in, obj))
        return NULL;
    return em__give(em__apply(op, obj, n_in, p));
}

em_status em__apply_inplace_h(const em_op *op, em_tensor *self, em_tensor *const *in, int n_in,
                              const em_op_params *p)
{
    if (!self)
        return em__error_global(EM_ERR_INVALID, "%s_: NULL tensor", op->name);
    em__tensor *s = em__obj(self);
    if (!s)
        return EM_ERR_FREED;
    em__tensor *obj[EM_MAX_ARITY];
    for (int i = 0; i < n_in; i++) {
        obj[i] = em__obj(in[i]);
        if (in[i] && !obj[i])
            return EM_ERR_FREED;
    }
    return em__apply_inplace(op, s, obj, n_in, p);
}

static em_status apply_inplace(const em_op *op, em__tensor *self, em__tensor *const *in,
                               int n_in, const em_op_params *p);

em_status em__apply_inplace(const em_op *op, em__tensor *self, em__tensor *const *in, int n_in,
                            const em_op_params *p)
{
    em_context *ctx = self->ctx;
    if (!ctx->layer_events)
        return apply_inplace(op, self, in, n_in, p);
    char name[80];
    em__snprintf(name, sizeof name, "%s_", op->name);
    em__tensor *all[EM_MAX_ARITY + 1] = {self};
    for (int i = 0; i < n_in && i < EM_MAX_ARITY; i++)
        all[i + 1] = in[i];
    int n = n_in < EM_MAX_ARITY ? n_in + 1 : EM_MAX_ARITY + 1;
    em__layer_op(ctx, EM_LAYER_OP_BEGIN, name, all, n, NULL, EM_OK);
    em_status st = apply_inplace(op, self, in, n_in, p);
    em__layer_op(ctx, EM_LAYER_OP_END, name, all, n, self, st);
    return st;
}

static em_status apply_inplace(const em_op *op, em__tensor *self, em__tensor *const *in,
                               int n_in, const em_op_params *p)
{
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) {   /* NULL in: an earlier failure (already recorded) or a caller bug */
            em_status prior = em__failed(self->ctx);
            return prior != EM_OK ? prior
                                  : em__error(self->ctx, EM_ERR_INVALID, "%s_: NULL tensor argument",
                                              op->name);
        }
    }
    em_context *ctx = inputs_context(op->name, in, n_in);
    if (!ctx)
        return em__failed(in[0]->ctx);
    if (self->ctx != ctx)
        return em__error(ctx, EM_ERR_DEVICE, "%s_: tensors on different contexts", op->name);
    em_call c;
    call_init(&c, ctx, op, in, n_in, p);
    if (op->shape(&c) != EM_OK)
        return em__failed(ctx);
    if (c.out_ndim != self->ndim || memcmp(c.out_shape, self->shape, sizeof(int64_t) * (size_t)self->ndim)) {
        char so[160], ss[160];
        em__shape_str(c.out_ndim, c.out_shape, so, sizeof so);
        em__shape_str(self->ndim, self->shape, ss, sizeof ss);
        return em__error(ctx, EM_ERR_SHAPE, "%s_: output with shape %s doesn't match the broadcast "
                         "shape %s", op->name, ss, so);
    }
    if (c.out_dtype != self->dtype)
        return em__error(ctx, EM_ERR_DTYPE, "%s_: result type %s can't be cast to the desired "
                         "output type %s", op->name, em_dtype_name(c.out_dtype),
                         em_dtype_name(self->dtype));
    bool grad = em__grad_mode(ctx);
    bool any_rg = em__requires_grad(self) || any_requires_grad(c.in, n_in);
    bool record = op->backward && grad && any_rg && em_dtype_is_floating(self->dtype);
    /* PyTorch's check_inplace: views made under no_grad or by multi-output ops, views of
     * leaves, and leaves that require grad may not be written with grad recorded */
    if (grad && any_rg) {
        em_status st = em__view_check_inplace(self, op->name);
        if (st != EM_OK)
            return st;
    }
    /* then its kernels' check: an expanded self only for fill_, zero_ and masked_fill_ */
    int64_t unexpanded[EM_MAX_DIMS];
    bool expanded = em__unexpanded_shape(self, unexpanded);
    if (expanded && !op->writes_expanded)
        return em__error(ctx, EM_ERR_INVALID, "%s_: unsupported operation: more than one element "
                         "of the written-to tensor refers to a single memory location. Please "
                         "clone() the tensor before performing the operation (em_clone).",
                         op->name);
    if (record) {
        em_status st = em__view_refresh(self);
        if (st == EM_OK)
            st = refresh_views(c.in, n_in);
        if (st != EM_OK)
            return st;
    }
    /* A view written with grad recorded rebases its base's history (views.c). */
    bool rebase = record && self->view_base;
    em__tensor *old = NULL;
    if (record) {
        /* History is rebased as in PyTorch: the pre-op value becomes an input of the new
         * node, carrying self's old grad_fn. */
        old = em__tensor_alias(self, self->ndim, self->shape, self->strides, self->offset);
        if (!old)
            return em__failed(ctx);
        old->is_view = self->is_view;
        old->requires_grad = self->requires_grad;
        old->grad_fn = self->grad_fn;
        self->grad_fn = NULL;
        for (int i = 0; i < n_in; i++)
            if (c.in[i] == self)
                c.in[i] = old;
        /* The op overwrites self: if backward needs self's old value, save a copy of it
         * (PyTorch's original_self). Other saved operands that alias self are caught by
         * the version check at backward, as in PyTorch. */
        if ((em__op_saves(op, c.in, n_in) & EM_SAVE_IN(0)) && c.in[0] == old) {
            em__tensor *src[1] = {old};
            c.save_override[0] = em__apply(&em__op_clone, src, 1, NULL);
            if (!c.save_override[0]) {
                self->grad_fn = old->grad_fn;
                old->grad_fn = NULL;
                em__tensor_unref(old);
                return em__failed(ctx);
            }
        }
    }
    for (int i = 0; i < n_in; i++)
        c.in_version[i] = c.in[i]->storage->version;
    c.out = self;
    /* Everything that can fail happens before forward writes self: the node is prepared
     * first and committed after, so a failed in-place op leaves self as it was. */
    em_node *node = NULL;
    em__rebase rb = {0};
    em_status st = record ? em__record_prepare(&c, &node) : EM_OK;
    if (st == EM_OK && rebase) {
        st = em__view_rebase_prepare(self, node, &rb);   /* takes node */
        node = NULL;
    }
    /* an expanded self is written through its un-expanded view (em_op.writes_expanded) */
    em__tensor *written = NULL;
    if (st == EM_OK && expanded &&
        !(written = em__tensor_alias(self, self->ndim, unexpanded, self->strides, self->offset)))
        st = em__failed(ctx);
    uint32_t version = self->storage->version;
    if (st == EM_OK) {
        c.out = written ? written : self;
        st = op->forward(&c);
        c.out = self;
    }
    em__tensor_unref(written);
    /* Every in-place op bumps the version, also one that wrote nothing (an empty self), as
     * PyTorch: a saved value it "modified" makes backward fail. */
    if (st == EM_OK && self->storage->version == version)
        em__storage_bump(self->storage);
    if (st == EM_OK && old && old->grad_fn && old->grad_fn->retained_out == self)
        old->grad_fn->retained_out = NULL;   /* self's retained .grad follows its new history */
    if (node) {
        if (st == EM_OK)
            em__record_commit(&c, node);
        else
            em__node_unref(node);
    }
    if (rb.copy_slices) {
        if (st == EM_OK)
            em__view_rebase_commit(self, &rb);
        else
            em__view_rebase_abort(&rb);
    }
    if (old) {
        if (st != EM_OK) {  /* restore the history we took */
            self->grad_fn = old->grad_fn;
            old->grad_fn = NULL;
        }
        em__tensor_unref(old);
    }
    em__tensor_unref(c.save_override[0]);
    return st == EM_OK ? EM_OK : em__failed(ctx);
}

bool em__unexpanded_shape(const em__tensor *t, int64_t *shape)
{
    bool expanded = false;
    bool empty = em__numel(t->ndim, t->shape) == 0;
    for (int d = 0; d < t->ndim; d++) {
        bool rep = !empty && t->strides[d] == 0 && t->shape[d] > 1;
        shape[d] = rep ? 1 : t->shape[d];
        expanded = expanded || rep;
    }
    return expanded;
}

/* ----------------------------------------------------------------- elementwise launch */

/* Merge dims that are contiguous in every view; drop size-1 dims. */
static int coalesce(int nd, int64_t *shape, int nv, int64_t (*st)[EM_MAX_DIMS])
{
    int out = 0;
    for (int d = 0; d < nd; d++) {
        if (shape[d] == 1)
            continue;
        if (out > 0) {
            bool merge = true;
            for (int v = 0; v < nv && merge; v++)
                merge = st[v][out - 1] == st[v][d] * shape[d];
            if (merge) {
                shape[out - 1] *= shape[d];
                for (int v = 0; v < nv; v++)
                    st[v][out - 1] = st[v][d];
                continue;
            }
        }
        shape[out] = shape[d];
        for (int v = 0; v < nv; v++)
            st[v][out] = st[v][d];
        out++;
    }
    if (out == 0) {
        shape[0] = 1;
        for (int v = 0; v < nv; v++)
            st[v][0] = v == 0 ? 1 : 0;
        out = 1;
    }
    return out;
}

static bool same_geometry(const em__tensor *a, const em__tensor *b)
{
    return a->offset == b->offset && a->ndim == b->ndim &&
           !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) &&
           !memcmp(a->strides, b->strides, sizeof(int64_t) * (size_t)a->ndim);
}

static em__tensor *contiguous_copy(em_context *ctx, em__tensor *t)
{
    em__tensor *c = em__tensor_new(ctx, t->dtype, t->ndim, t->shape);
    if (!c)
        return NULL;
    em__tensor *in[1] = {t};
    if (em__launch(ctx, EM_KERNEL_OFFSET(copy), c, in, 1, NULL, NULL) != EM_OK) {
        em__tensor_unref(c);
        return NULL;
    }
    return c;
}

em_status em__launch(em_context *ctx, size_t offset, em__tensor *out, em__tensor *const *in,
                     int n_in, const double *p, const uint64_t *u)
{
    return em__launch_ip(ctx, offset, out, in, n_in, p, u, NULL, 0);
}

em_status em__launch_ip(em_context *ctx, size_t offset, em__tensor *out, em__tensor *const *in,
                        int n_in, const double *p, const uint64_t *u, const int64_t *ip, int n_ip)
{
    if (em__numel(out->ndim, out->shape) == 0)
        return EM_OK;
    em__tensor *src[EM_MAX_ARITY] = {0}, *tmp[EM_MAX_ARITY] = {0};
    em_status st = EM_OK;
    for (int i = 0; i < n_in; i++) {
        src[i] = in[i];
        /* An input overlapping the output other than exactly would be read after being
         * written: give the kernel a private copy. */
        if (in[i]->storage == out->storage && !same_geometry(in[i], out)) {
            tmp[i] = contiguous_copy(ctx, in[i]);
            if (!tmp[i]) {
                st = em__failed(ctx) ? em__failed(ctx) : EM_ERR_OOM;
                goto done;
            }
            src[i] = tmp[i];
        }
    }
    int64_t shape[EM_MAX_DIMS];
    int64_t strides[1 + EM_MAX_ARITY][EM_MAX_DIMS];
    int nd = out->ndim;
    memcpy(shape, out->shape, sizeof(int64_t) * (size_t)nd);
    memcpy(strides[0], out->strides, sizeof(int64_t) * (size_t)nd);
    for (int i = 0; i < n_in; i++)
        em__broadcast_strides(src[i], nd, shape, strides[1 + i]);
    nd = coalesce(nd, shape, 1 + n_in, strides);

    em_kview views[1 + EM_MAX_ARITY];
    em_kargs a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    for (int v = 0; v <= n_in; v++) {
        const em__tensor *t = v == 0 ? out : src[v - 1];
        em_kview *w = &views[v];
        w->struct_size = sizeof *w;
        w->buf = t->storage->buf;
        w->offset = t->offset;
        w->dtype = (int32_t)t->dtype;
        w->ndim = nd;
        memcpy(w->shape, shape, sizeof(int64_t) * (size_t)nd);
        memcpy(w->strides, strides[v], sizeof(int64_t) * (size_t)nd);
    }
    a.out = &views[0];
    for (int i = 0; i < n_in; i++)
        a.in[i] = &views[1 + i];
    a.n_out = 1;
    a.outs = &a.out;
    a.n_in = (uint32_t)n_in;
    a.ins = a.in;
    if (p)
        memcpy(a.p, p, sizeof a.p);
    if (u)
        memcpy(a.u, u, sizeof a.u);
    a.ip = ip;
    a.n_ip = (uint32_t)n_ip;
    st = em__storage_ready(ctx, out, true);
    for (int i = 0; i < n_in && st == EM_OK; i++)
        st = em__storage_ready(ctx, src[i], false);
    if (st == EM_OK)
        st = em__kernel_call(ctx, offset, &a);
    if (st == EM_OK)
        em__storage_bump(out->storage);
done:
    for (int i = 0; i < n_in; i++)
        em__tensor_unref(tmp[i]);
    return st;
}

/* ----------------------------------------------------------------- reduction launch */

em_status em__launch_reduce(em_context *ctx, size_t offset, em__tensor *out, em__tensor *in,
                            double scale)
{
    int64_t nout = em__numel(out->ndim, out->shape);
    if (nout == 0)
        return EM_OK;
    if (em__numel(in->ndim, in->shape) == 0) {   /* sum of nothing is 0, mean of it NaN */
        double p[4] = {0.0 * scale};
        return em__launch(ctx, EM_KERNEL_OFFSET(fill), out, NULL, 0, p, NULL);
    }
    /* Classify dims (kept / reduced), drop size-1 dims of the input, merge neighbours of
     * the same class that are contiguous in both views. */
    int64_t ishape[EM_MAX_DIMS], oshape[EM_MAX_DIMS], ist[EM_MAX_DIMS], ost[EM_MAX_DIMS];
    bool red[EM_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < in->ndim; d++) {
        if (in->shape[d] == 1)
            continue;
        bool r = out->shape[d] == 1;
        if (nd > 0 && red[nd - 1] == r && ist[nd - 1] == in->strides[d] * in->shape[d] &&
            (r || ost[nd - 1] == out->strides[d] * out->shape[d])) {
            ishape[nd - 1] *= in->shape[d];
            oshape[nd - 1] = r ? 1 : ishape[nd - 1];
            ist[nd - 1] = in->strides[d];
            ost[nd - 1] = r ? 0 : out->strides[d];
            continue;
        }
        ishape[nd] = in->shape[d];
        oshape[nd] = r ? 1 : in->shape[d];
        ist[nd] = in->strides[d];
        ost[nd] = r ? 0 : out->strides[d];
        red[nd] = r;
        nd++;
    }
    if (nd == 0) {   /* single element: sum is a scaled copy */
        ishape[0] = oshape[0] = 1;
        ist[0] = ost[0] = 1;
        nd = 1;
    }
    em_kview vo = {.struct_size = sizeof vo, .buf = out->storage->buf, .offset = out->offset,
                  .dtype = (int32_t)out->dtype, .ndim = nd};
    em_kview vi = {.struct_size = sizeof vi, .buf = in->storage->buf, .offset = in->offset,
                  .dtype = (int32_t)in->dtype, .ndim = nd};
    for (int d = 0; d < nd; d++) {
        vo.shape[d] = oshape[d];
        vo.strides[d] = ost[d] ? ost[d] : 1;
        vi.shape[d] = ishape[d];
        vi.strides[d] = ist[d];
    }
    /* out strides of reduced dims are irrelevant (size 1); give them a harmless value */
    em_kargs a = {.struct_size = sizeof a, .out = &vo, .in = {&vi}, .p = {scale}, .n_out = 1,
                  .n_in = 1};
    a.outs = &a.out;
    a.ins = a.in;
    em_status st = em__storage_ready(ctx, out, true);
    if (st == EM_OK)
        st = em__storage_ready(ctx, in, false);
    if (st == EM_OK)
        st = em__kernel_call(ctx, offset, &a);
    if (st != EM_OK)
        return st;
    em__storage_bump(out->storage);
    return EM_OK;
}

/* ----------------------------------------------------------------- gemm launch */

/* How a (rows x cols) matrix at dims (d0, d1) of t can be given to gemm: row-major with
 * leading dim ld (trans 0) or column-major, i.e. transposed storage (trans 1). */
static bool gemm_layout(const em__tensor *t, int d0, int d1, int *trans, int64_t *ld)
{
    int64_t r = t->shape[d0], c = t->shape[d1];
    int64_t s0 = t->strides[d0], s1 = t->strides[d1];
    if ((c == 1 || s1 == 1) && (r == 1 || s0 >= (c > 1 ? c : 1))) {
        *trans = 0;
        *ld = r == 1 ? (c > 1 ? c : 1) : s0;
        return *ld >= 1;
    }
    if ((r == 1 || s0 == 1) && (c == 1 || s1 >= (r > 1 ? r : 1))) {
        *trans = 1;
        *ld = c == 1 ? (r > 1 ? r : 1) : s1;
        return *ld >= 1;
    }
    return false;
}

em_status em__launch_gemm(em_context *ctx, em__tensor *out, em__tensor *a, em__tensor *b,
                          double alpha, double beta)
{
    int nd = out->ndim;   /* 2, or 3 when batched */
    int64_t batch = nd == 3 ? out->shape[0] : 1;
    int64_t m = out->shape[nd - 2], n = out->shape[nd - 1], k = a->shape[nd - 1];
    if (m == 0 || n == 0 || batch == 0)
        return EM_OK;
    em__tensor *ta = NULL, *tb = NULL, *tc = NULL;
    em_status st = EM_OK;
    em_gemm_args g = {.struct_size = sizeof g, .dtype = (int32_t)out->dtype, .m = m, .n = n,
                      .k = k, .batch = batch, .alpha = alpha, .beta = beta};
    int tr;
    int64_t ld;
    if (!gemm_layout(a, nd - 2, nd - 1, &tr, &ld)) {
        if (!(ta = contiguous_copy(ctx, a)))
            goto fail;
        a = ta;
        gemm_layout(a, nd - 2, nd - 1, &tr, &ld);
    }
    g.trans_a = tr;
    g.lda = ld;
    if (!gemm_layout(b, nd - 2, nd - 1, &tr, &ld)) {
        if (!(tb = contiguous_copy(ctx, b)))
            goto fail;
        b = tb;
        gemm_layout(b, nd - 2, nd - 1, &tr, &ld);
    }
    g.trans_b = tr;
    g.ldb = ld;
    em__tensor *c = out;
    if (!gemm_layout(out, nd - 2, nd - 1, &tr, &ld) || tr) {
        /* C must be row-major: compute into a fresh tensor, copy back */
        if (!(tc = em__tensor_new(ctx, out->dtype, out->ndim, out->shape)))
            goto fail;
        if (beta != 0) {
            em__tensor *in[1] = {out};
            if (em__launch(ctx, EM_KERNEL_OFFSET(copy), tc, in, 1, NULL, NULL) != EM_OK)
                goto fail;
        }
        c = tc;
        gemm_layout(c, nd - 2, nd - 1, &tr, &ld);
    }
    g.ldc = ld;
    g.a = a->storage->buf;
    g.a_offset = a->offset;
    g.a_batch_stride = nd == 3 ? a->strides[0] : 0;
    g.b = b->storage->buf;
    g.b_offset = b->offset;
    g.b_batch_stride = nd == 3 ? b->strides[0] : 0;
    g.c = c->storage->buf;
    g.c_offset = c->offset;
    g.c_batch_stride = nd == 3 ? c->strides[0] : 0;
    if (k == 0 && beta == 0) {
        double p[4] = {0};
        st = em__launch(ctx, EM_KERNEL_OFFSET(fill), c, NULL, 0, p, NULL);
    } else {
        st = em__storage_ready(ctx, c, true);
        if (st == EM_OK)
            st = em__storage_ready(ctx, a, false);
        if (st == EM_OK)
            st = em__storage_ready(ctx, b, false);
        if (st == EM_OK)
            st = em__gemm_call(ctx, &g);
    }
    if (st == EM_OK && tc) {
        em__tensor *in[1] = {tc};
        st = em__launch(ctx, EM_KERNEL_OFFSET(copy), out, in, 1, NULL, NULL);
    }
    if (st == EM_OK)
        em__storage_bump(out->storage);
    em__tensor_unref(ta);
    em__tensor_unref(tb);
    em__tensor_unref(tc);
    return st;
fail:
    em__tensor_unref(ta);
    em__tensor_unref(tb);
    em__tensor_unref(tc);
    return em__failed(ctx) ? em__failed(ctx) : EM_ERR_OOM;
}
