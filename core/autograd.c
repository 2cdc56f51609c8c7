/* core/autograd.c — the autograd engine. Recording: an op whose input requires grad gets a
 * node {op, params, producers of its inputs, saved tensors}. Backward: a topological sort
 * of the nodes reachable from the root, then, root first, each node's backward (from its op
 * descriptor) and `grad +=` into its producers and leaves. That is all there is. */
#include "config.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct em__bw_frame {
    em_node *n;
    int next;
};

/* ----------------------------------------------------------------- nodes */

static void node_free_now(em_context *ctx, em_node *n)
{
    for (int i = 0; i < n->n_in; i++) {
        em__node_unref(n->next_fn[i]);
        em__tensor_unref(n->next_leaf[i]);
    }
    for (int i = 0; i <= EM_MAX_ARITY; i++)
        em__tensor_unref(n->saved[i]);
    em__tensor_unref(n->acc);
    if (n->live_prev)
        n->live_prev->live_next = n->live_next;
    else
        ctx->nodes = n->live_next;
    if (n->live_next)
        n->live_next->live_prev = n->live_prev;
    free(n);
}

/* Releasing a long chain recursively could exhaust the stack: nodes whose count drops to
 * zero while another release is running are queued and freed by the outermost call. */
void em__node_unref(em_node *n)
{
    if (!n || --n->refcount > 0)
        return;
    em_context *c = n->ctx;
    if (c->freeing_nodes) {
        if (c->n_node_free == c->cap_node_free) {
            int cap = c->cap_node_free ? c->cap_node_free * 2 : 64;
            em_node **s = realloc(c->node_free_stack, sizeof *s * (size_t)cap);
            if (!s) {   /* cannot queue: free it here (deep recursion is only a risk) */
                node_free_now(c, n);
                return;
            }
            c->node_free_stack = s;
            c->cap_node_free = cap;
        }
        c->node_free_stack[c->n_node_free++] = n;
        return;
    }
    c->freeing_nodes = true;
    node_free_now(c, n);
    while (c->n_node_free > 0)
        node_free_now(c, c->node_free_stack[--c->n_node_free]);
    c->freeing_nodes = false;
}

em_status em__record(em_call *c)
{
    em_context *ctx = c->ctx;
    em_node *n = em__calloc(1, sizeof *n);
    if (!n)
        return em__error(ctx, EM_ERR_OOM, "%s: out of memory recording the autograd graph", c->op->name);
    n->ctx = ctx;
    n->refcount = 1;
    n->op = c->op;
    n->p = c->p;
    n->n_in = c->n_in;
    n->live_next = ctx->nodes;
    if (ctx->nodes)
        ctx->nodes->live_prev = n;
    ctx->nodes = n;
    for (int i = 0; i < c->n_in; i++) {
        em_tensor *t = c->in[i];
        n->in_ndim[i] = t->ndim;
        memcpy(n->in_shape[i], t->shape, sizeof(int64_t) * (size_t)t->ndim);
        n->in_dtype[i] = t->dtype;
        if (t->requires_grad) {
            if (t->grad_fn) {
                n->next_fn[i] = t->grad_fn;
                t->grad_fn->refcount++;
            } else {
                n->next_leaf[i] = em__tensor_ref(t);
            }
        }
        if (c->op->saves & EM_SAVE_IN(i)) {
            /* Saved values only: an alias without history. Holding the input itself would
             * make a cycle once the input is modified in place (its new grad_fn can lead
             * back to this node). */
            em_tensor *s = c->save_override[i] ? c->save_override[i] : t;
            n->saved[i] = em__tensor_alias(s, s->ndim, s->shape, s->strides, s->offset);
            if (!n->saved[i]) {
                em__node_unref(n);
                return ctx->status;
            }
            n->saved_version[i] = c->save_override[i] ? s->storage->version : c->in_version[i];
        }
    }
    if (c->op->saves & EM_SAVE_OUT) {
        /* an alias, not the output itself: the output holds the node (no cycle) */
        em_tensor *o = c->out;
        n->saved[EM_MAX_ARITY] = em__tensor_alias(o, o->ndim, o->shape, o->strides, o->offset);
        if (!n->saved[EM_MAX_ARITY]) {
            em__node_unref(n);
            return ctx->status;
        }
        n->saved[EM_MAX_ARITY]->is_view = o->is_view;
        n->saved_version[EM_MAX_ARITY] = o->storage->version;
    }
    em__node_unref(c->out->grad_fn);
    c->out->grad_fn = n;
    c->out->requires_grad = true;
    return EM_OK;
}

/* ----------------------------------------------------------------- backward */

/* Depth-first post-order of the nodes reachable from root (each node after the producers
 * of its inputs, root last) in ctx->bw_order; returns the count or -1 (out of memory). */
static int topo_sort(em_context *ctx, em_node *root)
{
    uint64_t epoch = ++ctx->bw_epoch;
    int n_order = 0, n_stack = 0;
#define PUSH_FRAME(node)                                                                           \
    do {                                                                                           \
        if (n_stack == ctx->cap_bw_stack) {                                                        \
            int cap = ctx->cap_bw_stack ? ctx->cap_bw_stack * 2 : 64;                              \
            struct em__bw_frame *s = em__realloc(ctx->bw_stack, sizeof *s * (size_t)cap);          \
            if (!s)                                                                                \
                return -1;                                                                         \
            ctx->bw_stack = s;                                                                     \
            ctx->cap_bw_stack = cap;                                                               \
        }                                                                                          \
        ctx->bw_stack[n_stack++] = (struct em__bw_frame){(node), 0};                               \
        (node)->epoch = epoch;                                                                     \
    } while (0)
    PUSH_FRAME(root);
    while (n_stack > 0) {
        struct em__bw_frame *f = &ctx->bw_stack[n_stack - 1];
        if (f->next < f->n->n_in) {
            em_node *child = f->n->next_fn[f->next++];
            if (child && child->epoch != epoch)
                PUSH_FRAME(child);
            continue;
        }
        if (n_order == ctx->cap_bw_order) {
            int cap = ctx->cap_bw_order ? ctx->cap_bw_order * 2 : 64;
            em_node **o = em__realloc(ctx->bw_order, sizeof *o * (size_t)cap);
            if (!o)
                return -1;
            ctx->bw_order = o;
            ctx->cap_bw_order = cap;
        }
        ctx->bw_order[n_order++] = f->n;
        n_stack--;
    }
#undef PUSH_FRAME
    return n_order;
}

/* Add g (an owned reference) into *slot, which holds an owned reference or NULL. */
static em_status accumulate(em_context *ctx, em_tensor **slot, em_tensor *g, bool leaf_semantics)
{
    em_tensor *cur = *slot;
    if (!cur) {
        bool exclusive = g->refcount == 1 && g->storage->refcount == 1 && !g->is_view &&
                         em__is_contiguous(g);
        if (!leaf_semantics || exclusive) {
            *slot = g;
            return EM_OK;
        }
        /* a leaf's .grad must be its own contiguous tensor (PyTorch clones shared grads) */
        em_tensor *in[1] = {g};
        em_tensor *c = em__apply(&em__op_clone, in, 1, NULL);
        em__tensor_unref(g);
        if (!c)
            return ctx->status;
        *slot = c;
        return EM_OK;
    }
    em_status st;
    if (cur->refcount == 1 && cur->storage->refcount == 1 && !cur->is_view) {
        em_tensor *in[2] = {cur, g};
        st = em__apply_inplace(&em__op_add, cur, in, 2, NULL);
    } else {
        em_tensor *in[2] = {cur, g};
        em_tensor *sum = em__apply(&em__op_add, in, 2, NULL);
        st = sum ? EM_OK : ctx->status;
        if (sum) {
            em__tensor_unref(cur);
            *slot = sum;
        }
    }
    em__tensor_unref(g);
    return st;
}

static em_status check_saved(em_context *ctx, em_node *n)
{
    for (int i = 0; i <= EM_MAX_ARITY; i++) {
        em_tensor *s = n->saved[i];
        if (s && s->storage->version != n->saved_version[i]) {
            char sh[160];
            em__shape_str(s->ndim, s->shape, sh, sizeof sh);
            return em__error(ctx, EM_ERR_AUTOGRAD,
                             "one of the variables needed for gradient computation has been "
                             "modified by an inplace operation: [%s %s], which is %s %d of %s, is "
                             "at version %u; expected version %u instead",
                             em_dtype_name(s->dtype), sh, i == EM_MAX_ARITY ? "output" : "input",
                             i == EM_MAX_ARITY ? 0 : i, n->op->grad_fn, s->storage->version,
                             n->saved_version[i]);
        }
    }
    return EM_OK;
}

/* Run one node: its backward in a private scope, then accumulate into its inputs. */
static em_status run_node(em_context *ctx, em_node *n, bool retain)
{
    em_tensor *g = n->acc;
    n->acc = NULL;
    em_status st = EM_OK;
    if (n->released && n->op->saves)
        st = em__error(ctx, EM_ERR_AUTOGRAD,
                       "Trying to backward through the graph a second time (or directly access "
                       "saved tensors after they have already been freed). Saved intermediate "
                       "values of the graph are freed when you call backward(). Specify "
                       "retain_graph=true (em_backward_ex) if you need to backward through the "
                       "graph a second time (at %s)", n->op->grad_fn);
    if (st == EM_OK)
        st = check_saved(ctx, n);
    if (st == EM_OK && n->retained_out) {
        em_tensor *r = n->retained_out;
        st = accumulate(ctx, &r->grad, em__tensor_ref(g), true);
    }
    em_bw b;
    memset(&b, 0, sizeof b);
    if (st == EM_OK) {
        b.ctx = ctx;
        b.p = &n->p;
        b.grad_out = g;
        for (int i = 0; i <= EM_MAX_ARITY; i++)
            b.saved[i] = n->saved[i];
        for (int i = 0; i < n->n_in; i++) {
            b.in_ndim[i] = n->in_ndim[i];
            b.in_shape[i] = n->in_shape[i];
            b.in_dtype[i] = n->in_dtype[i];
            b.needs[i] = n->next_fn[i] || n->next_leaf[i];
        }
        int depth = ctx->n_scopes;
        em_scope_begin(ctx);
        if (ctx->n_scopes != depth + 1) {
            if (ctx->scope_overflow > 0)
                em_scope_end(ctx);
            st = em__error(ctx, EM_ERR_OOM, "backward: out of memory");
        } else {
            st = n->op->backward(&b);
            for (int i = 0; i < n->n_in; i++)
                if (b.grad_in[i])
                    em__scope_take_top(ctx, b.grad_in[i]);
            em_scope_end(ctx);
        }
    }
    em__tensor_unref(g);
    for (int i = 0; i < n->n_in; i++) {
        em_tensor *gi = b.grad_in[i];
        b.grad_in[i] = NULL;
        if (st != EM_OK || !b.needs[i]) {
            em__tensor_unref(gi);
            continue;
        }
        if (!gi) {
            st = ctx->status ? ctx->status
                             : em__error(ctx, EM_ERR_INTERNAL, "%s produced no gradient for input %d",
                                         n->op->grad_fn, i);
            continue;
        }
        em_tensor *r = em__sum_to(gi, n->in_ndim[i], n->in_shape[i]);
        em__tensor_unref(gi);
        if (!r) {
            st = ctx->status;
            continue;
        }
        if (n->next_fn[i])
            st = accumulate(ctx, &n->next_fn[i]->acc, r, false);
        else
            st = accumulate(ctx, &n->next_leaf[i]->grad, r, true);
    }
    if (st == EM_OK && !retain) {
        for (int i = 0; i <= EM_MAX_ARITY; i++) {
            em__tensor_unref(n->saved[i]);
            n->saved[i] = NULL;
        }
        n->released = true;
    }
    return st;
}

EMBER_API em_status em_backward_ex(em_tensor *t, em_tensor *gradient, bool retain_graph)
{
    if (!t)
        return em__error_global(EM_ERR_INVALID, "backward: NULL tensor");
    if (!em__live(t) || (gradient && !em__live(gradient)))
        return EM_ERR_FREED;
    em_context *ctx = t->ctx;
    if (!t->requires_grad)
        return em__error(ctx, EM_ERR_AUTOGRAD, "element 0 of tensors does not require grad and "
                         "does not have a grad_fn");
    em_tensor *g;
    if (gradient) {
        if (gradient->ctx != ctx)
            return em__error(ctx, EM_ERR_DEVICE, "backward: gradient is on another context");
        if (gradient->ndim != t->ndim ||
            memcmp(gradient->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim)) {
            char a[160], b[160];
            em__shape_str(gradient->ndim, gradient->shape, a, sizeof a);
            em__shape_str(t->ndim, t->shape, b, sizeof b);
            return em__error(ctx, EM_ERR_SHAPE, "backward: mismatch in shape: grad_output has a "
                             "shape of %s and output has a shape of %s", a, b);
        }
        if (gradient->dtype != t->dtype)
            return em__error(ctx, EM_ERR_DTYPE, "backward: gradient has dtype %s, output has %s",
                             em_dtype_name(gradient->dtype), em_dtype_name(t->dtype));
        g = em__tensor_ref(gradient);
    } else {
        if (em__numel(t->ndim, t->shape) != 1)
            return em__error(ctx, EM_ERR_AUTOGRAD, "grad can be implicitly created only for scalar "
                             "outputs (this output has %lld elements; pass a gradient to "
                             "em_backward_ex)", (long long)em__numel(t->ndim, t->shape));
        g = em__tensor_new(ctx, t->dtype, t->ndim, t->shape);
        double one[4] = {1.0};
        if (!g || em__launch(ctx, EM_KERNEL_OFFSET(fill), g, NULL, 0, one, NULL) != EM_OK) {
            em__tensor_unref(g);
            return ctx->status;
        }
    }
    bool was_enabled = ctx->grad_enabled;
    ctx->grad_enabled = false;
    em_status st = EM_OK;
    if (!t->grad_fn) {   /* a leaf: its gradient is g itself */
        st = accumulate(ctx, &t->grad, g, true);
        ctx->grad_enabled = was_enabled;
        return st;
    }
    int n = topo_sort(ctx, t->grad_fn);
    if (n < 0) {
        em__tensor_unref(g);
        ctx->grad_enabled = was_enabled;
        return em__error(ctx, EM_ERR_OOM, "backward: out of memory sorting the graph");
    }
    t->grad_fn->acc = g;
    /* Reverse post-order is a topological order: every node runs after all the nodes that
     * send it gradient, so its accumulated gradient is complete when it runs. */
    for (int k = n - 1; k >= 0; k--) {
        em_node *node = ctx->bw_order[k];
        if (!node->acc)
            continue;   /* no gradient reached it */
        st = run_node(ctx, node, retain_graph);
        if (st != EM_OK)
            break;
    }
    if (st != EM_OK) {
        for (int k = 0; k < n; k++) {
            em__tensor_unref(ctx->bw_order[k]->acc);
            ctx->bw_order[k]->acc = NULL;
        }
    }
    ctx->grad_enabled = was_enabled;
    return st;
}

EMBER_API em_status em_backward(em_tensor *t)
{
    return em_backward_ex(t, NULL, false);
}

/* ----------------------------------------------------------------- grad mode */

EMBER_API void em_no_grad_begin(em_context *ctx)
{
    if (ctx)
        ctx->no_grad_depth++;
}

EMBER_API void em_no_grad_end(em_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->no_grad_depth == 0) {
        em__error(ctx, EM_ERR_INVALID, "em_no_grad_end without a matching em_no_grad_begin");
        return;
    }
    ctx->no_grad_depth--;
}

EMBER_API bool em_is_grad_enabled(const em_context *ctx)
{
    return ctx && em__grad_mode(ctx);
}

EMBER_API bool em_set_grad_enabled(em_context *ctx, bool enabled)
{
    if (!ctx)
        return false;
    bool prev = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return prev;
}

/* ----------------------------------------------------------------- tensor flags */

EMBER_API em_status em_tensor_set_requires_grad(em_tensor *t, bool requires_grad)
{
    if (!t)
        return em__error_global(EM_ERR_INVALID, "set_requires_grad: NULL tensor");
    if (!em__live(t))
        return EM_ERR_FREED;
    if (t->grad_fn)
        return em__error(t->ctx, EM_ERR_AUTOGRAD, "you can only change requires_grad flags of leaf "
                         "variables (this tensor has grad_fn=<%s>)", t->grad_fn->op->grad_fn);
    if (requires_grad && t->dtype != EM_F32 && t->dtype != EM_F64)
        return em__error(t->ctx, EM_ERR_AUTOGRAD, "only Tensors of floating point dtype can "
                         "require gradients (got %s)", em_dtype_name(t->dtype));
    t->requires_grad = requires_grad;
    return EM_OK;
}

EMBER_API bool em_tensor_requires_grad(const em_tensor *t)
{
    return t && t->magic == EM_TENSOR_MAGIC && t->requires_grad;
}

EMBER_API bool em_tensor_is_leaf(const em_tensor *t)
{
    return t && t->magic == EM_TENSOR_MAGIC && !t->grad_fn;
}

EMBER_API const char *em_tensor_grad_fn_name(const em_tensor *t)
{
    if (!t || t->magic != EM_TENSOR_MAGIC || !t->grad_fn)
        return NULL;
    return t->grad_fn->op->grad_fn;
}

EMBER_API em_tensor *em_grad(em_tensor *t)
{
    if (!t || !em__live(t) || !t->grad)
        return NULL;
    return em__give(em__tensor_ref(t->grad));
}

EMBER_API em_status em_tensor_zero_grad(em_tensor *t)
{
    if (!t)
        return em__error_global(EM_ERR_INVALID, "zero_grad: NULL tensor");
    if (!em__live(t))
        return EM_ERR_FREED;
    if (!t->grad)
        return EM_OK;
    return em_zero_(t->grad);
}

EMBER_API void em_tensor_clear_grad(em_tensor *t)
{
    if (!t || !em__live(t))
        return;
    em__tensor_unref(t->grad);
    t->grad = NULL;
}

EMBER_API em_status em_tensor_retain_grad(em_tensor *t)
{
    if (!t)
        return em__error_global(EM_ERR_INVALID, "retain_grad: NULL tensor");
    if (!em__live(t))
        return EM_ERR_FREED;
    if (!t->requires_grad)
        return em__error(t->ctx, EM_ERR_AUTOGRAD, "can't retain_grad on Tensor that has "
                         "requires_grad=False");
    if (t->grad_fn) {
        t->retains_grad = true;
        t->grad_fn->retained_out = t;
    }
    return EM_OK;
}

EMBER_API em_tensor *em_detach(em_tensor *t)
{
    if (!t || !em__live(t))
        return NULL;
    em_tensor *d = em__tensor_alias(t, t->ndim, t->shape, t->strides, t->offset);
    if (d)
        d->is_view = false;
    return em__give(d);
}
