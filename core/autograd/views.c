/* core/autograd/views.c — in-place writes to views under autograd, as PyTorch does them.
 *
 * A view (em__tensor_view) records its base: the tensor whose storage it shows, and the
 * version of that storage when its history was made. When an in-place op writes a view v of
 * base b with grad recorded, b's history is rebased: b's grad_fn becomes a CopySlices node
 * that, from b's gradient G, gives b's previous history G with v's region replaced by the
 * op's gradient for its self input (computed from G's region), and gives the op's other
 * inputs their gradients from G's region. v's grad_fn becomes an AsStridedBackward0 of b's
 * new history: the gradient of v placed at v's region of a zero gradient of b.
 *
 * Every other view of b learns of the write through the storage version: the next time it
 * is used with grad recorded, its grad_fn is regenerated the same way (em__view_refresh).
 * Views made under no_grad, or by ops that return several views, refuse both (PyTorch's
 * messages). */
#include "config.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- geometry */

static void geometry_of(const em__tensor *t, em__geometry *g)
{
    memset(g, 0, sizeof *g);
    g->ndim = t->ndim;
    memcpy(g->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    memcpy(g->strides, t->strides, sizeof(int64_t) * (size_t)t->ndim);
    g->offset = t->offset;
}

/* Elements of storage from the geometry's first element to its last (0 when empty). */
static int64_t extent(const em__geometry *g)
{
    if (em__numel(g->ndim, g->shape) == 0)
        return 0;
    int64_t e = 1;
    for (int d = 0; d < g->ndim; d++)
        e += (g->shape[d] - 1) * g->strides[d];
    return e;
}

/* A fresh buffer laid out as base (offset 0), filled with zeros (src NULL) or with src (base's
 * shape); *store receives the 1-D tensor over the whole buffer. The result owns nothing but
 * the buffer: it is not a view. */
static em__tensor *base_layout(em_context *ctx, em_dtype dt, const em__geometry *base,
                               em__tensor *src, em__tensor **store)
{
    int64_t n = extent(base);
    *store = em__tensor_new(ctx, dt, 1, &n);
    if (!*store)
        return NULL;
    em__tensor *r = em__tensor_alias(*store, base->ndim, base->shape, base->strides, 0);
    if (!r)
        return NULL;
    r->is_view = false;
    em_status st;
    if (src) {
        em__tensor *in[1] = {src};
        st = em__launch(ctx, EM_KERNEL_OFFSET(copy), r, in, 1, NULL, NULL);
    } else {
        double zero[4] = {0};
        st = em__launch(ctx, EM_KERNEL_OFFSET(fill), *store, NULL, 0, zero, NULL);
    }
    if (st != EM_OK) {
        em__tensor_unref(r);
        return NULL;
    }
    return r;
}

/* ----------------------------------------------------------------- state of a view */

/* t's storage was written since its history was made, and it has (or will have) one. */
static bool stale(const em__tensor *t)
{
    return t->view_base && t->view_version != t->storage->version &&
           (t->grad_fn || t->view_base->requires_grad);
}

bool em__requires_grad(const em__tensor *t)
{
    return t->requires_grad || t->grad_fn || (t->view_base && t->view_base->requires_grad);
}

const char *em__grad_fn_name(const em__tensor *t)
{
    if (stale(t))
        return t->view_creation == EM__VIEW_DEFAULT ? em__op_as_strided_bw.grad_fn : NULL;
    return t->grad_fn ? t->grad_fn->op->grad_fn : NULL;
}

bool em__is_leaf(const em__tensor *t)
{
    return !t->grad_fn && !stale(t);
}

/* PyTorch's handle_view_on_rebase: a view that may not be rebased. direct: it is the one
 * being written (opname), else its base or another view of it was. */
static em_status rebase_refused(const em__tensor *t, const char *opname, bool direct)
{
    const char *what = direct ? "is being" : "its base or another view of its base has been";
    char head[256];
    if (t->grad_fn)
        em__snprintf(head, sizeof head, "Output %d of %s is a view and %s modified inplace.",
                     t->view_output_nr, t->grad_fn->op->grad_fn, what);
    else
        em__snprintf(head, sizeof head, "A view was created in no_grad mode and %s modified "
                     "inplace with grad mode enabled.", what);
    const char *tail = t->view_creation == EM__VIEW_MULTI_OUTPUT
        ? " This view is the output of a function that returns multiple views. Such functions "
          "do not allow the output views to be modified inplace. You should replace the "
          "inplace operation by an out-of-place one."
        : " Given that this use case is ambiguous and error-prone, it is forbidden. You can "
          "clarify your code by moving both the view and the inplace either both inside the "
          "no_grad block (if you don't want the inplace to be tracked) or both outside (if you "
          "want the inplace to be tracked).";
    return em__error(t->ctx, EM_ERR_AUTOGRAD, "%s%s%s%s", opname ? opname : "",
                     opname ? "_: " : "", head, tail);
}

/* ----------------------------------------------------------------- nodes */

/* An AsStridedBackward0 node for view t: its gradient goes to t's base, through base_fn (the
 * base's history to be) or, when NULL, the base's present history. */
static em_node *view_fn_node(em__tensor *t, em_node *base_fn)
{
    em__tensor *b = t->view_base;
    em_node *n = em__node_new(t->ctx, &em__op_as_strided_bw);
    if (!n)
        return NULL;
    if (!(n->geom = em__calloc(2, sizeof *n->geom))) {
        em__node_unref(n);
        em__error(t->ctx, EM_ERR_OOM, "out of memory recording the autograd graph of a view");
        return NULL;
    }
    geometry_of(b, &n->geom[0]);
    geometry_of(t, &n->geom[1]);
    n->n_in = 1;
    n->in_ndim[0] = b->ndim;
    memcpy(n->in_shape[0], b->shape, sizeof(int64_t) * (size_t)b->ndim);
    n->in_dtype[0] = b->dtype;
    em_node *fn = base_fn ? base_fn : b->grad_fn;
    if (fn) {
        n->next_fn[0] = fn;
        fn->refcount++;
    } else if (b->requires_grad) {
        n->next_leaf[0] = em__tensor_ref(b);
    }
    return n;
}

em_status em__view_refresh(em__tensor *t)
{
    em__tensor *b = t->view_base;
    if (!b || (!t->grad_fn && !b->requires_grad))
        return EM_OK;
    if (t->view_version == t->storage->version) {
        /* made without history from a base that requires grad (under no_grad, or before the
         * base was made to): a leaf that requires grad, as in PyTorch */
        if (!t->grad_fn)
            t->requires_grad = true;
        return EM_OK;
    }
    if (t->view_creation != EM__VIEW_DEFAULT)
        return rebase_refused(t, NULL, false);
    em_node *n = view_fn_node(t, NULL);
    if (!n)
        return em__failed(t->ctx);
    em__set_grad_fn(t, n);
    t->requires_grad = true;
    t->view_version = t->storage->version;
    return EM_OK;
}

em_status em__view_check_inplace(em__tensor *self, const char *opname)
{
    em__tensor *b = self->view_base;
    if (b) {
        if (self->view_creation != EM__VIEW_DEFAULT)
            return rebase_refused(self, opname, true);
        if (em__requires_grad(self) && !b->grad_fn)
            return em__error(self->ctx, EM_ERR_AUTOGRAD, "%s_: a view of a leaf Variable that "
                             "requires grad is being used in an in-place operation.", opname);
        return EM_OK;
    }
    if (self->requires_grad && !self->grad_fn)
        return em__error(self->ctx, EM_ERR_AUTOGRAD, "%s_: a leaf Variable that requires grad "
                         "is being used in an in-place operation.", opname);
    return EM_OK;
}

em_status em__view_rebase_prepare(em__tensor *self, em_node *inner, em__rebase *r)
{
    em_context *ctx = self->ctx;
    em__tensor *b = self->view_base;
    r->copy_slices = r->view_fn = NULL;
    em_node *cs = em__node_new(ctx, &em__op_copy_slices);
    if (!cs) {
        em__node_unref(inner);
        return em__failed(ctx);
    }
    cs->inner = inner;
    if (!(cs->geom = em__calloc(2, sizeof *cs->geom))) {
        em__node_unref(cs);
        return em__error(ctx, EM_ERR_OOM, "out of memory recording the autograd graph of a view");
    }
    geometry_of(b, &cs->geom[0]);
    geometry_of(self, &cs->geom[1]);
    /* edge 0: the base's present history, in place of the view's (the op's input 0) */
    cs->n_in = inner->n_in;
    cs->in_ndim[0] = b->ndim;
    memcpy(cs->in_shape[0], b->shape, sizeof(int64_t) * (size_t)b->ndim);
    cs->in_dtype[0] = b->dtype;
    if (b->grad_fn) {
        cs->next_fn[0] = b->grad_fn;
        b->grad_fn->refcount++;
    } else if (b->requires_grad) {
        cs->next_leaf[0] = em__tensor_ref(b);
    }
    em__node_unref(inner->next_fn[0]);
    em__tensor_unref(inner->next_leaf[0]);
    inner->next_fn[0] = NULL;
    inner->next_leaf[0] = NULL;
    /* the op's other inputs: its own edges, moved */
    for (int i = 1; i < inner->n_in; i++) {
        cs->next_fn[i] = inner->next_fn[i];
        cs->next_leaf[i] = inner->next_leaf[i];
        inner->next_fn[i] = NULL;
        inner->next_leaf[i] = NULL;
        cs->in_ndim[i] = inner->in_ndim[i];
        memcpy(cs->in_shape[i], inner->in_shape[i], sizeof cs->in_shape[i]);
        cs->in_dtype[i] = inner->in_dtype[i];
    }
    em_node *vf = view_fn_node(self, cs);
    if (!vf) {
        em__node_unref(cs);
        return em__failed(ctx);
    }
    r->copy_slices = cs;
    r->view_fn = vf;
    return EM_OK;
}

void em__view_rebase_commit(em__tensor *self, em__rebase *r)
{
    em_node *inner = r->copy_slices->inner;
    if (inner->saved[EM_MAX_ARITY])   /* the output's value as the op left it */
        inner->saved_version[EM_MAX_ARITY] = self->storage->version;
    em__tensor *b = self->view_base;
    em__set_grad_fn(b, r->copy_slices);
    b->requires_grad = true;
    em__set_grad_fn(self, r->view_fn);
    self->requires_grad = true;
    self->view_version = self->storage->version;
    r->copy_slices = r->view_fn = NULL;
}

void em__view_rebase_abort(em__rebase *r)
{
    em__node_unref(r->view_fn);
    em__node_unref(r->copy_slices);
    r->copy_slices = r->view_fn = NULL;
}

/* ----------------------------------------------------------------- backward */

/* AsStridedBackward0 (a view after its storage was written): the base's gradient is zero but
 * for the view's region, which gets g. Dims along which the view repeats an element
 * (stride 0, an expanded view) add up into it. */
static em_status bw_as_strided(em_bw *b)
{
    em_context *ctx = b->ctx;
    const em__geometry *base = &b->geom[0], *view = &b->geom[1];
    em__tensor *g = em__obj(b->grad_out);
    if (!g)
        return em__failed(ctx);
    int64_t vshape[EM_MAX_DIMS];
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = 1;   /* keepdim */
    for (int d = 0; d < view->ndim; d++) {
        bool rep = view->strides[d] == 0 && view->shape[d] > 1;
        vshape[d] = rep ? 1 : view->shape[d];
        if (rep)
            p.dim_mask |= 1u << d;
    }
    em__tensor *gs = em__tensor_ref(g), *store = NULL, *slice = NULL, *result = NULL;
    em_status st = EM_OK;
    if (p.dim_mask) {
        em__tensor *in[1] = {g};
        em__tensor_unref(gs);
        if (!(gs = em__apply(&em__op_sum_dims, in, 1, &p)))
            st = em__failed(ctx);
    }
    if (st == EM_OK && !(result = base_layout(ctx, g->dtype, base, NULL, &store)))
        st = em__failed(ctx);
    if (st == EM_OK && !(slice = em__tensor_alias(store, view->ndim, vshape, view->strides,
                                                  view->offset - base->offset)))
        st = em__failed(ctx);
    if (st == EM_OK) {
        em__tensor *in[1] = {gs};
        st = em__launch(ctx, EM_KERNEL_OFFSET(copy), slice, in, 1, NULL, NULL);
    }
    em__tensor_unref(gs);
    em__tensor_unref(slice);
    em__tensor_unref(store);
    if (st != EM_OK) {
        em__tensor_unref(result);
        return st;
    }
    b->grad_in[0] = em__give(result);
    return b->grad_in[0] ? EM_OK : em__failed(ctx);
}

const em_op em__op_as_strided_bw = {.name = "as_strided", .grad_fn = "AsStridedBackward0",
                                    .arity = 1, .backward = bw_as_strided};
/* run by the engine through em__copy_slices_backward */
const em_op em__op_copy_slices = {.name = "copy_slices", .grad_fn = "CopySlices",
                                  .arity = EM_MAX_ARITY};

/* Several elements of the (not empty) geometry at one memory location. */
static bool overlapping(const em__geometry *g)
{
    if (em__numel(g->ndim, g->shape) == 0)
        return false;
    for (int d = 0; d < g->ndim; d++)
        if (g->strides[d] == 0 && g->shape[d] > 1)
            return true;
    return false;
}

em_status em__copy_slices_backward(em_context *ctx, em_node *n, em__tensor *g, em__tensor **grads)
{
    const em__geometry *base = &n->geom[0], *view = &n->geom[1];
    bool needs[EM_MAX_ARITY] = {0};
    for (int i = 0; i < n->n_in; i++)
        needs[i] = n->next_fn[i] || n->next_leaf[i];
    em__tensor *store = NULL, *slice = NULL, *gs = NULL, *res[EM_MAX_ARITY] = {0};
    em_status st = EM_OK;
    /* the base's gradient in the base's layout, so that the view's geometry finds its region */
    em__tensor *result = base_layout(ctx, g->dtype, base, g, &store);
    if (!result)
        st = em__failed(ctx);
    if (st == EM_OK && !(slice = em__tensor_alias(store, view->ndim, view->shape, view->strides,
                                                  view->offset - base->offset)))
        st = em__failed(ctx);
    if (st == EM_OK) {
        em__tensor *in[1] = {slice};
        if (!(gs = em__apply(&em__op_clone, in, 1, NULL)))
            st = em__failed(ctx);
    }
    if (st == EM_OK)
        st = em__node_call_backward(ctx, n->inner, needs, gs, res);
    if (st == EM_OK && needs[0]) {
        em__tensor *r0 = res[0] ? em__sum_to(res[0], view->ndim, view->shape) : NULL;
        if (!r0) {
            st = em__failed(ctx) ? em__failed(ctx)
                             : em__error(ctx, EM_ERR_INTERNAL, "%s produced no gradient for "
                                         "input 0", n->inner->op->grad_fn);
        } else if (overlapping(view)) {
            /* PyTorch copies the gradient into the view's region of the base's: refused
             * for an expanded view (fill_, zero_ and masked_fill_ may have written one) */
            st = em__error(ctx, EM_ERR_INVALID, "CopySlices: unsupported operation: more than "
                           "one element of the written-to tensor refers to a single memory "
                           "location. Please clone() the tensor before performing the "
                           "operation.");
            em__tensor_unref(r0);
        } else {
            em__tensor *in[1] = {r0};
            st = em__launch(ctx, EM_KERNEL_OFFSET(copy), slice, in, 1, NULL, NULL);
            em__tensor_unref(r0);
        }
    }
    em__tensor_unref(res[0]);
    res[0] = NULL;
    if (st == EM_OK) {
        grads[0] = needs[0] ? em__tensor_ref(result) : NULL;
        for (int i = 1; i < n->n_in; i++) {
            grads[i] = res[i];
            res[i] = NULL;
        }
    }
    for (int i = 1; i < EM_MAX_ARITY; i++)
        em__tensor_unref(res[i]);
    em__tensor_unref(gs);
    em__tensor_unref(slice);
    em__tensor_unref(result);
    em__tensor_unref(store);
    return st;
}
