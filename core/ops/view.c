/* core/ops/view.c — ops that only change geometry (transpose, view/reshape, expand,
 * (un)squeeze): they alias the input's storage, no kernel runs; every forward makes its
 * result with em__tensor_view, which records the view's base for autograd. Also the copying
 * companions: contiguous, clone, dtype conversion, transfer between contexts.
 * Backward of a view is the inverse geometry change applied to g. */
#include "config.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- view strides */

/* Strides that let (nd, shape) view the storage of t, or false (PyTorch's computeStride). */
static bool view_strides(const em__tensor *t, int nd, const int64_t *shape, int64_t *out)
{
    int ond = t->ndim;
    int64_t oshape[EM_MAX_DIMS], ostride[EM_MAX_DIMS];
    memcpy(oshape, t->shape, sizeof(int64_t) * (size_t)ond);
    memcpy(ostride, t->strides, sizeof(int64_t) * (size_t)ond);
    if (ond == 0) {
        ond = 1;
        oshape[0] = 1;
        ostride[0] = 1;
    }
    if (em__numel(ond, oshape) == 0) {
        em__contiguous_strides(nd, shape, out);
        return true;
    }
    int view_d = nd - 1;
    int64_t chunk_base = ostride[ond - 1], tensor_numel = 1, view_numel = 1;
    for (int td = ond - 1; td >= 0; td--) {
        tensor_numel *= oshape[td];
        if (td == 0 || (oshape[td - 1] != 1 && ostride[td - 1] != tensor_numel * chunk_base)) {
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                out[view_d] = view_numel * chunk_base;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel)
                return false;
            if (td > 0) {
                chunk_base = ostride[td - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

/* Resolve a -1 size and check the element count. */
static bool infer_shape(em_context *ctx, const char *opname, const em__tensor *t, int nd,
                        const int64_t *shape, int64_t *out)
{
    if (nd < 0 || nd > EM_MAX_DIMS || (nd > 0 && !shape)) {
        em__error(ctx, EM_ERR_SHAPE, "%s: invalid shape (%d dimensions)", opname, nd);
        return false;
    }
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < nd; i++) {
        if (shape[i] == -1) {
            if (infer >= 0) {
                em__error(ctx, EM_ERR_SHAPE, "%s: only one dimension can be inferred", opname);
                return false;
            }
            infer = i;
        } else if (shape[i] < 0) {
            em__error(ctx, EM_ERR_SHAPE, "%s: invalid shape dimension %lld", opname, (long long)shape[i]);
            return false;
        } else if (__builtin_mul_overflow(known, shape[i], &known) || known > EM__MAX_NUMEL) {
            char s[200];
            em__shape_str(nd, shape, s, sizeof s);
            em__error(ctx, EM_ERR_SHAPE, "%s: shape %s has too many elements (the product of its "
                      "sizes overflows: at most %lld elements)", opname, s, (long long)EM__MAX_NUMEL);
            return false;
        }
        out[i] = shape[i];
    }
    int64_t numel = em__numel(t->ndim, t->shape);
    if (infer >= 0) {
        if (known == 0 || numel % known) {
            char s[160];
            em__shape_str(nd, shape, s, sizeof s);
            em__error(ctx, EM_ERR_SHAPE, "%s: shape '%s' is invalid for input of size %lld", opname, s,
                      (long long)numel);
            return false;
        }
        out[infer] = numel / known;
    } else if (known != numel) {
        char s[160];
        em__shape_str(nd, shape, s, sizeof s);
        em__error(ctx, EM_ERR_SHAPE, "%s: shape '%s' is invalid for input of size %lld", opname, s,
                  (long long)numel);
        return false;
    }
    /* a zero size hides the product of the others, which the strides would need */
    return em__check_shape_size(ctx, opname, nd, out) == EM_OK;
}

/* ----------------------------------------------------------------- descriptors */

/* The public function puts the target shape in params; forward derives the strides. */
static em_status shape_target(em_call *c)
{
    c->out_ndim = c->p.ndim;
    memcpy(c->out_shape, c->p.shape, sizeof(int64_t) * (size_t)c->p.ndim);
    c->out_dtype = c->in[0]->dtype;
    return EM_OK;
}

static em_status fw_view(em_call *c)
{
    int64_t strides[EM_MAX_DIMS];
    if (!view_strides(c->in[0], c->out_ndim, c->out_shape, strides)) {
        char s[160], o[160];
        em__shape_str(c->out_ndim, c->out_shape, s, sizeof s);
        em__shape_str(c->in[0]->ndim, c->in[0]->shape, o, sizeof o);
        return em__error(c->ctx, EM_ERR_SHAPE, "view: view size %s is not compatible with input "
                         "tensor's size %s and stride (at least one dimension spans across two "
                         "contiguous subspaces). Use em_reshape instead.", s, o);
    }
    c->out = em__tensor_view(c->in[0], c->out_ndim, c->out_shape, strides, c->in[0]->offset);
    return c->out ? EM_OK : em__failed(c->ctx);
}

static em_status bw_reshape_back(em_bw *b)
{
    b->grad_in[0] = em_reshape(b->grad_out, b->in_ndim[0], b->in_shape[0]);
    return EM_OK;
}

#define VIEW_OP(ident, opname, gradname, fw, bw)                                                  \
    const em_op em__op_##ident = {.name = opname, .grad_fn = gradname, .arity = 1,               \
                                  .is_view = true, .shape = shape_target, .forward = fw,         \
                                  .backward = bw}

VIEW_OP(view, "view", "ViewBackward0", fw_view, bw_reshape_back);
VIEW_OP(reshape_alias, "reshape", "ReshapeAliasBackward0", fw_view, bw_reshape_back);
VIEW_OP(unsafe_view, "reshape", "UnsafeViewBackward0", fw_view, bw_reshape_back);
VIEW_OP(unsqueeze, "unsqueeze", "UnsqueezeBackward0", fw_view, bw_reshape_back);
VIEW_OP(squeeze, "squeeze", "SqueezeBackward1", fw_view, bw_reshape_back);

/* transpose(d0 = p.i[0], d1 = p.i[1]):  da = transpose(g, d0, d1) */
static em_status shape_transpose(em_call *c)
{
    em__tensor *a = c->in[0];
    c->out_ndim = a->ndim;
    memcpy(c->out_shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    if (a->ndim > 1) {
        int d0 = c->p.i[0], d1 = c->p.i[1];
        int64_t t = c->out_shape[d0];
        c->out_shape[d0] = c->out_shape[d1];
        c->out_shape[d1] = t;
    }
    c->out_dtype = a->dtype;
    return EM_OK;
}
static em_status fw_transpose(em_call *c)
{
    em__tensor *a = c->in[0];
    int64_t strides[EM_MAX_DIMS];
    memcpy(strides, a->strides, sizeof(int64_t) * (size_t)a->ndim);
    if (a->ndim > 1) {
        int d0 = c->p.i[0], d1 = c->p.i[1];
        int64_t t = strides[d0];
        strides[d0] = strides[d1];
        strides[d1] = t;
    }
    c->out = em__tensor_view(a, c->out_ndim, c->out_shape, strides, a->offset);
    return c->out ? EM_OK : em__failed(c->ctx);
}
static em_status bw_transpose(em_bw *b)
{
    /* t() of a 0-D or 1-D tensor is the tensor itself */
    b->grad_in[0] = b->in_ndim[0] < 2 ? em__dup(b->grad_out)
                                      : em_transpose(b->grad_out, b->p->i[0], b->p->i[1]);
    return EM_OK;
}
const em_op em__op_transpose = {.name = "transpose", .grad_fn = "TransposeBackward0", .arity = 1,
                                .is_view = true, .shape = shape_transpose,
                                .forward = fw_transpose, .backward = bw_transpose};
const em_op em__op_t = {.name = "t", .grad_fn = "TBackward0", .arity = 1, .is_view = true,
                        .shape = shape_transpose, .forward = fw_transpose, .backward = bw_transpose};

/* expand to p.shape: broadcast dims get stride 0.  da = g summed back (by the engine) */
static em_status fw_expand(em_call *c)
{
    em__tensor *a = c->in[0];
    int nd = c->out_ndim, off = nd - a->ndim;
    int64_t strides[EM_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int j = i - off;
        strides[i] = (j < 0 || (a->shape[j] == 1 && c->out_shape[i] != 1)) ? 0 : a->strides[j];
    }
    c->out = em__tensor_view(a, nd, c->out_shape, strides, a->offset);
    return c->out ? EM_OK : em__failed(c->ctx);
}
static em_status bw_expand(em_bw *b)
{
    b->grad_in[0] = em__dup(b->grad_out);
    return EM_OK;
}
const em_op em__op_expand = {.name = "expand", .grad_fn = "ExpandBackward0", .arity = 1,
                             .is_view = true, .shape = shape_target, .forward = fw_expand,
                             .backward = bw_expand};

/* ================================================================= public API */

static em_tensor *apply_target(const em_op *op, em__tensor *a, int nd, const int64_t *shape)
{
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.ndim = nd;
    memcpy(p.shape, shape, sizeof(int64_t) * (size_t)nd);
    em__tensor *in[1] = {a};
    return em__give(em__apply(op, in, 1, &p));
}

EMBER_API em_tensor *em_transpose(em_tensor *h, int dim0, int dim1)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    bool ok0, ok1;
    int d0 = em__wrap_dim(t->ctx, dim0, t->ndim, "transpose", &ok0);
    int d1 = ok0 ? em__wrap_dim(t->ctx, dim1, t->ndim, "transpose", &ok1) : 0;
    if (!ok0 || !ok1)
        return NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = d0;
    p.i[1] = d1;
    em__tensor *in[1] = {t};
    return em__give(em__apply(&em__op_transpose, in, 1, &p));
}

EMBER_API em_tensor *em_t(em_tensor *h)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    if (t->ndim > 2)
        return em__error(t->ctx, EM_ERR_SHAPE, "t: expects a tensor with <= 2 dimensions, but self "
                         "is %dD", t->ndim), NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = 0;
    p.i[1] = 1;
    em__tensor *in[1] = {t};
    return em__give(em__apply(&em__op_t, in, 1, &p));
}

EMBER_API em_tensor *em_view(em_tensor *h, int ndim, const int64_t *shape)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    int64_t s[EM_MAX_DIMS];
    if (!infer_shape(t->ctx, "view", t, ndim, shape, s))
        return NULL;
    return apply_target(&em__op_view, t, ndim, s);
}

EMBER_API em_tensor *em_reshape(em_tensor *h, int ndim, const int64_t *shape)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    int64_t s[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    if (!infer_shape(t->ctx, "reshape", t, ndim, shape, s))
        return NULL;
    if (view_strides(t, ndim, s, strides))
        return apply_target(&em__op_reshape_alias, t, ndim, s);
    /* not viewable: clone to contiguous, then view that (PyTorch's _unsafe_view) */
    em__tensor *in[1] = {t};
    em__tensor *c = em__apply(&em__op_clone, in, 1, NULL);
    if (!c)
        return NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.ndim = ndim;
    memcpy(p.shape, s, sizeof(int64_t) * (size_t)ndim);
    em__tensor *in2[1] = {c};
    em__tensor *r = em__apply(&em__op_unsafe_view, in2, 1, &p);
    em__tensor_unref(c);
    if (r)
        em__tensor_unview(r);   /* it owns the fresh copy */
    return em__give(r);
}

EMBER_API em_tensor *em_flatten(em_tensor *t)
{
    int64_t s[1] = {-1};
    return em_reshape(t, 1, s);
}

EMBER_API em_tensor *em_expand(em_tensor *h, int ndim, const int64_t *shape)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    if (ndim < t->ndim || ndim > EM_MAX_DIMS || (ndim > 0 && !shape)) {
        return em__error(t->ctx, EM_ERR_SHAPE, "expand: the number of sizes provided (%d) must be "
                         "greater or equal to the number of dimensions in the tensor (%d)", ndim,
                         t->ndim), NULL;
    }
    int64_t s[EM_MAX_DIMS];
    int off = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int j = i - off;
        int64_t want = shape[i];
        if (j < 0) {
            if (want < 0)
                return em__error(t->ctx, EM_ERR_SHAPE, "expand: -1 is not allowed in a leading, "
                                 "non-existing dimension %d", i), NULL;
            s[i] = want;
        } else if (want == -1 || want == t->shape[j]) {
            s[i] = t->shape[j];
        } else if (t->shape[j] == 1 && want >= 0) {
            s[i] = want;
        } else {
            char a[160], b[160];
            em__shape_str(t->ndim, t->shape, a, sizeof a);
            em__shape_str(ndim, shape, b, sizeof b);
            return em__error(t->ctx, EM_ERR_SHAPE, "expand: the expanded size of the tensor (%lld) "
                             "must match the existing size (%lld) at non-singleton dimension %d. "
                             "Target sizes: %s. Tensor sizes: %s", (long long)want,
                             (long long)t->shape[j], i, b, a), NULL;
        }
    }
    return apply_target(&em__op_expand, t, ndim, s);
}

EMBER_API em_tensor *em_unsqueeze(em_tensor *h, int dim)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    if (t->ndim >= EM_MAX_DIMS)
        return em__error(t->ctx, EM_ERR_SHAPE, "unsqueeze: tensor already has %d dimensions",
                         EM_MAX_DIMS), NULL;
    bool ok;
    int d = em__wrap_dim(t->ctx, dim, t->ndim + 1, "unsqueeze", &ok);
    if (!ok)
        return NULL;
    int64_t s[EM_MAX_DIMS];
    for (int i = 0, j = 0; i <= t->ndim; i++)
        s[i] = i == d ? 1 : t->shape[j++];
    return apply_target(&em__op_unsqueeze, t, t->ndim + 1, s);
}

EMBER_API em_tensor *em_squeeze(em_tensor *h, int dim)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    bool ok;
    int d = em__wrap_dim(t->ctx, dim, t->ndim, "squeeze", &ok);
    if (!ok)
        return NULL;
    int64_t s[EM_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < t->ndim; i++)
        if (i != d || t->shape[i] != 1)
            s[n++] = t->shape[i];
    return apply_target(&em__op_squeeze, t, n, s);
}

EMBER_API em_tensor *em_clone(em_tensor *t)
{
    em_tensor *in[1] = {t};
    return em__apply_h(&em__op_clone, in, 1, NULL);
}

EMBER_API em_tensor *em_contiguous(em_tensor *h)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    if (em__is_contiguous(t))
        return em__give(em__tensor_ref(t));
    return em_clone(h);
}

EMBER_API em_tensor *em_to_dtype(em_tensor *h, em_dtype dt)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    if (t->dtype == dt)
        return em__give(em__tensor_ref(t));
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = (int)dt;
    em__tensor *in[1] = {t};
    return em__give(em__apply(&em__op_cast, in, 1, &p));
}

EMBER_API em_tensor *em_to_context(em_tensor *h, em_context *dst)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    if (!dst)
        return em__error(t->ctx, EM_ERR_INVALID, "em_to_context: NULL destination context"), NULL;
    if (dst == t->ctx)
        return em__give(em__tensor_ref(t));
    size_t bytes = (size_t)em__numel(t->ndim, t->shape) * em_dtype_size(t->dtype);
    void *host = em__malloc(bytes);
    if (!host)
        return em__error(t->ctx, EM_ERR_OOM, "em_to_context: out of memory (%zu bytes)", bytes), NULL;
    em_tensor *r = NULL;
    if (em__to_host_as(t, t->dtype, host) == EM_OK)
        r = em_tensor_from_data(dst, t->dtype, t->ndim, t->shape, host);
    free(host);
    return r;
}
