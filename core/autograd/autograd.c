/* core/autograd/autograd.c — the autograd engine. Recording: an op whose input requires grad gets a
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
    em__node_unref(n->inner);
    free(n->geom);
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

em_node *em__node_new(em_context *ctx, const em_op *op)
{
    em_node *n = em__calloc(1, sizeof *n);
    if (!n) {
        em__error(ctx, EM_ERR_OOM, "%s: out of memory recording the autograd graph", op->name);
        return NULL;
    }
    n->ctx = ctx;
    n->refcount = 1;
    n->op = op;
    n->live_next = ctx->nodes;
    if (ctx->nodes)
        ctx->nodes->live_prev = n;
    ctx->nodes = n;
    return n;
}

void em__set_grad_fn(em__tensor *t, em_node *n)
{
    em_node *old = t->grad_fn;
    if (old && old->retained_out == t)
        old->retained_out = NULL;
    t->grad_fn = n;
    if (n && t->retains_grad)
        n->retained_out = t;
    em__node_unref(old);
}

/* Recording has two halves so that an in-place op can do everything that may fail before
 * it writes: prepare allocates the node and its saved aliases (the output, if it exists yet,
 * is aliased too); commit, which cannot fail, makes it the output's grad_fn. */
em_status em__record_prepare(em_call *c, em_node **out)
{
    *out = NULL;
    em_context *ctx = c->ctx;
    em_node *n = em__node_new(ctx, c->op);
    if (!n)
        return em__failed(ctx);
    n->p = c->p;
    n->n_in = c->n_in;
    unsigned saves = em__op_saves(c->op, c->in, c->n_in);
    for (int i = 0; i < c->n_in; i++) {
        em__tensor *t = c->in[i];
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
        if (saves & EM_SAVE_IN(i)) {
            /* Saved values only: an alias without history. Holding the input itself would
             * make a cycle once the input is modified in place (its new grad_fn can lead
             * back to this node). */
            em__tensor *s = c->save_override[i] ? c->save_override[i] : t;
            n->saved[i] = em__tensor_alias(s, s->ndim, s->shape, s->strides, s->offset);
            if (!n->saved[i]) {
                em__node_unref(n);
                return em__failed(ctx);
            }
            n->saved_version[i] = c->save_override[i] ? s->storage->version : c->in_version[i];
        }
    }
    if ((saves & EM_SAVE_OUT) && c->out) {
        /* an alias, not the output itself: the output holds the node (no cycle) */
        em__tensor *o = c->out;
        n->saved[EM_MAX_ARITY] = em__tensor_alias(o, o->ndim, o->shape, o->strides, o->offset);
        if (!n->saved[EM_MAX_ARITY]) {
            em__node_unref(n);
            return em__failed(ctx);
        }
        n->saved[EM_MAX_ARITY]->is_view = o->is_view;
    }
    *out = n;
    return EM_OK;
}

void em__record_commit(em_call *c, em_node *n)
{
    if (n->saved[EM_MAX_ARITY])   /* the output's value as forward left it */
        n->saved_version[EM_MAX_ARITY] = c->out->storage->version;
    em__set_grad_fn(c->out, n);
    c->out->requires_grad = true;
}

em_status em__record(em_call *c)
{
    em_node *n;
    em_status st = em__record_prepare(c, &n);
    if (st == EM_OK)
        em__record_commit(c, n);
    return st;
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

static bool exclusive(const em__tensor *g)
{
    return g->refcount == 1 && g->storage->refcount == 1 && !g->is_view;
}

/* Add g (an owned reference) into *slot, which holds an owned reference or NULL. Used for
 * the gradients flowing between nodes and for staged .grad values: both are the engine's
 * own, so an in-place add that fails half-way harms nothing the user can see. */
static em_status accumulate(em_context *ctx, em__tensor **slot, em__tensor *g)
{
    em__tensor *cur = *slot;
    if (!cur) {
        *slot = g;
        return EM_OK;
    }
    em_status st;
    em__tensor *in[2] = {cur, g};
    if (exclusive(cur)) {
        st = em__apply_inplace(&em__op_add, cur, in, 2, NULL);
    } else {
        em__tensor *sum = em__apply(&em__op_add, in, 2, NULL);
        st = sum ? EM_OK : em__failed(ctx);
        if (sum) {
            em__tensor_unref(cur);
            *slot = sum;
        }
    }
    em__tensor_unref(g);
    return st;
}

/* A gradient for t's .grad (a leaf, or a non-leaf that retains its grad), kept aside until
 * the whole backward has succeeded. */
static em_status stage(em_context *ctx, em__tensor *t, em__tensor *g)
{
    if (!t->grad_staged) {
        if (ctx->n_bw_staged == ctx->cap_bw_staged) {
            int cap = ctx->cap_bw_staged ? ctx->cap_bw_staged * 2 : 32;
            em__tensor **l = em__realloc(ctx->bw_staged, sizeof *l * (size_t)cap);
            if (!l) {
                em__tensor_unref(g);
                return em__error(ctx, EM_ERR_OOM, "backward: out of memory");
            }
            ctx->bw_staged = l;
            ctx->cap_bw_staged = cap;
        }
        ctx->bw_staged[ctx->n_bw_staged++] = em__tensor_ref(t);
    }
    return accumulate(ctx, &t->grad_staged, g);
}

/* Turn every staged gradient into the tensor that will become .grad: old .grad + staged as
 * a new tensor, or the staged one itself when there was none (cloned unless it is the
 * engine's alone: a .grad must be its own contiguous tensor, as PyTorch's). May fail; the
 * .grad values are not touched yet. */
static em_status stage_finish(em_context *ctx)
{
    for (int k = 0; k < ctx->n_bw_staged; k++) {
        em__tensor *t = ctx->bw_staged[k], *g = t->grad_staged, *r;
        bool own = exclusive(g) && em__is_contiguous(g);
        if (t->grad_zeroed) {
            /* zero_grad folded into this accumulation: the zeros are not read but added as
             * the scalar 0, one pass instead of a fill and an add (g + 0 and 0 + g agree bit
             * for bit: -0 gives +0, as PyTorch's grad += new_grad) */
            em__tensor *in[1] = {g};
            em_op_params zero;
            memset(&zero, 0, sizeof zero);
            if (own) {
                em_status st = em__apply_inplace(&em__op_add_scalar, g, in, 1, &zero);
                if (st != EM_OK)
                    return st;
                continue;
            }
            r = em__apply(&em__op_add_scalar, in, 1, &zero);
        } else if (t->grad && own) {   /* into the engine's own tensor: no extra buffer */
            em__tensor *in[2] = {g, t->grad};
            em_status st = em__apply_inplace(&em__op_add, g, in, 2, NULL);
            if (st != EM_OK)
                return st;
            continue;
        } else if (t->grad) {
            em__tensor *in[2] = {t->grad, g};
            r = em__apply(&em__op_add, in, 2, NULL);
        } else if (own) {
            continue;
        } else {
            em__tensor *in[1] = {g};
            r = em__apply(&em__op_clone, in, 1, NULL);
        }
        if (!r)
            return em__failed(ctx);
        em__tensor_unref(g);
        t->grad_staged = r;
    }
    return EM_OK;
}

/* commit: the staged values become .grad (nothing here can fail); abort: they are dropped */
static void stage_end(em_context *ctx, bool commit)
{
    for (int k = 0; k < ctx->n_bw_staged; k++) {
        em__tensor *t = ctx->bw_staged[k];
        if (commit) {
            em__tensor_unref(t->grad);
            t->grad = t->grad_staged;
            t->grad_zeroed = false;
        } else {
            em__tensor_unref(t->grad_staged);
        }
        t->grad_staged = NULL;
        em__tensor_unref(t);
    }
    ctx->n_bw_staged = 0;
}

em_status em__node_check_saved(em_context *ctx, em_node *n)
{
    for (int i = 0; i <= EM_MAX_ARITY; i++) {
        em__tensor *s = n->saved[i];
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

/* The node's backward function, in a private scope: its inputs get handles there (it is
 * written with the public API), and the gradients it returns for the inputs marked in needs
 * are kept as objects (grads[i], one reference each) before the scope releases every
 * handle. */
em_status em__node_call_backward(em_context *ctx, em_node *n, const bool *needs, em__tensor *g,
                                 em__tensor **grads)
{
    em_bw b;
    memset(&b, 0, sizeof b);
    b.ctx = ctx;
    b.p = &n->p;
    b.geom = n->geom;
    for (int i = 0; i < n->n_in; i++) {
        b.in_ndim[i] = n->in_ndim[i];
        b.in_shape[i] = n->in_shape[i];
        b.in_dtype[i] = n->in_dtype[i];
        b.needs[i] = needs[i];
    }
    int depth = ctx->n_scopes;
    em_scope_begin(ctx);
    if (ctx->n_scopes != depth + 1) {
        if (ctx->scope_overflow > 0)
            em_scope_end(ctx);
        return em__error(ctx, EM_ERR_OOM, "backward: out of memory");
    }
    em_status st = EM_OK;
    b.grad_out = em__give(em__tensor_ref(g));
    if (!b.grad_out)
        st = em__failed(ctx);
    for (int i = 0; i <= EM_MAX_ARITY && st == EM_OK; i++) {
        if (n->saved[i] && !(b.saved[i] = em__give(em__tensor_ref(n->saved[i]))))
            st = em__failed(ctx);
    }
    if (st == EM_OK)
        st = n->op->backward(&b);
    for (int i = 0; i < n->n_in; i++) {
        em__tensor *gi = em__obj_quiet(b.grad_in[i]);
        grads[i] = st == EM_OK && b.needs[i] && gi ? em__tensor_ref(gi) : NULL;
    }
    em_scope_end(ctx);
    return st;
}

/* Run one node: its backward, then each input's gradient into its producer's accumulator or
 * a leaf's staged .grad. */
static em_status run_node(em_context *ctx, em_node *n)
{
    em__tensor *g = n->acc;
    n->acc = NULL;
    n->ran = true;
    em_status st = EM_OK;
    /* a CopySlices node runs its in-place op's backward, with that op's saved tensors (and
     * has that op's edges) */
    em_node *fn = n->inner ? n->inner : n;
    bool saved_any = fn->op->saves != 0;
    for (int i = 0; i < n->n_in; i++)
        saved_any = saved_any || ((n->next_fn[i] || n->next_leaf[i]) && fn->op->saves_for[i]);
    if (fn->released && saved_any)
        st = em__error(ctx, EM_ERR_AUTOGRAD,
                       "Trying to backward through the graph a second time (or directly access "
                       "saved tensors after they have already been freed). Saved intermediate "
                       "values of the graph are freed when you call backward(). Specify "
                       "retain_graph=true (em_backward_ex) if you need to backward through the "
                       "graph a second time (at %s)", fn->op->grad_fn);
    if (st == EM_OK)
        st = em__node_check_saved(ctx, fn);
    if (st == EM_OK && n->retained_out)
        st = stage(ctx, n->retained_out, em__tensor_ref(g));
    em__tensor *grads[EM_MAX_ARITY] = {0};
    bool needs[EM_MAX_ARITY] = {0};
    for (int i = 0; i < n->n_in; i++)
        needs[i] = n->next_fn[i] || n->next_leaf[i];
    if (st == EM_OK)
        st = n->inner ? em__copy_slices_backward(ctx, n, g, grads)
                      : em__node_call_backward(ctx, n, needs, g, grads);
    em__tensor_unref(g);
    for (int i = 0; i < n->n_in; i++) {
        em__tensor *gi = grads[i];
        grads[i] = NULL;
        if (st != EM_OK || !(n->next_fn[i] || n->next_leaf[i])) {
            em__tensor_unref(gi);
            continue;
        }
        if (!gi) {
            st = em__failed(ctx) ? em__failed(ctx)
                             : em__error(ctx, EM_ERR_INTERNAL, "%s produced no gradient for input %d",
                                         n->op->grad_fn, i);
            continue;
        }
        em__tensor *r = em__sum_to(gi, n->in_ndim[i], n->in_shape[i]);
        em__tensor_unref(gi);
        if (!r) {
            st = em__failed(ctx);
            continue;
        }
        if (n->next_fn[i])
            st = accumulate(ctx, &n->next_fn[i]->acc, r);
        else
            st = stage(ctx, n->next_leaf[i], r);
    }
    return st;
}

/* The whole backward is one transaction: gradients are staged while the graph runs and
 * become .grad only when every node succeeded; saved tensors are released only then too.
 * So a failed backward leaves every .grad, and the graph, exactly as they were. */
static em_status backward(em_context *ctx, em__tensor *t, em__tensor *g, bool retain)
{
    ctx->n_bw_staged = 0;
    if (!t->grad_fn) {   /* a leaf: its gradient is g itself */
        em_status st = stage(ctx, t, g);
        if (st == EM_OK)
            st = stage_finish(ctx);
        stage_end(ctx, st == EM_OK);
        return st;
    }
    int n = topo_sort(ctx, t->grad_fn);
    if (n < 0) {
        em__tensor_unref(g);
        return em__error(ctx, EM_ERR_OOM, "backward: out of memory sorting the graph");
    }
    t->grad_fn->acc = g;
    em_status st = EM_OK;
    /* Reverse post-order is a topological order: every node runs after all the nodes that
     * send it gradient, so its accumulated gradient is complete when it runs. */
    for (int k = n - 1; k >= 0 && st == EM_OK; k--) {
        em_node *node = ctx->bw_order[k];
        if (node->acc)
            st = run_node(ctx, node);
    }
    if (st == EM_OK)
        st = stage_finish(ctx);
    stage_end(ctx, st == EM_OK);
    for (int k = 0; k < n; k++) {
        em_node *node = ctx->bw_order[k];
        em__tensor_unref(node->acc);
        node->acc = NULL;
        if (node->ran && st == EM_OK && !retain) {
            for (em_node *r = node; r; r = r == node ? node->inner : NULL) {
                for (int i = 0; i <= EM_MAX_ARITY; i++) {
                    em__tensor_unref(r->saved[i]);
                    r->saved[i] = NULL;
                }
                r->released = true;
            }
        }
        node->ran = false;
    }
    return st;
}

EMBER_API em_status em_backward_ex(em_tensor *th, em_tensor *gradient_h, bool retain_graph)
{
    if (!th)
        return em__error_global(EM_ERR_INVALID, "backward: NULL tensor");
    em__tensor *t = em__obj(th), *gradient = em__obj(gradient_h);
    if (!t || (gradient_h && !gradient))
        return EM_ERR_FREED;
    em_context *ctx = t->ctx;
    em_status vst = em__view_refresh(t);
    if (vst != EM_OK)
        return vst;
    if (!t->requires_grad)
        return em__error(ctx, EM_ERR_AUTOGRAD, "element 0 of tensors does not require grad and "
                         "does not have a grad_fn");
    em__tensor *g;
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
            return em__failed(ctx);
        }
    }
    bool was_enabled = ctx->grad_enabled;
    ctx->grad_enabled = false;
    if (ctx->layer_events)
        em__layer_mark(ctx, EM_LAYER_BACKWARD_BEGIN, "backward", EM_OK, 0);
    em_status st = backward(ctx, t, g, retain_graph);
    if (ctx->layer_events)
        em__layer_mark(ctx, EM_LAYER_BACKWARD_END, "backward", st, 0);
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

EMBER_API em_status em_tensor_set_requires_grad(em_tensor *h, bool requires_grad)
{
    if (!h)
        return em__error_global(EM_ERR_INVALID, "set_requires_grad: NULL tensor");
    em__tensor *t = em__obj(h);
    if (!t)
        return EM_ERR_FREED;
    if (!em__is_leaf(t))
        return em__error(t->ctx, EM_ERR_AUTOGRAD, "you can only change requires_grad flags of leaf "
                         "variables (this tensor has grad_fn=<%s>)",
                         em__grad_fn_name(t) ? em__grad_fn_name(t) : "?");
    if (requires_grad && t->dtype != EM_F32 && t->dtype != EM_F64)
        return em__error(t->ctx, EM_ERR_AUTOGRAD, "only Tensors of floating point dtype can "
                         "require gradients (got %s)", em_dtype_name(t->dtype));
    t->requires_grad = requires_grad;
    return EM_OK;
}

EMBER_API bool em_tensor_requires_grad(const em_tensor *h)
{
    em__tensor *t = em__obj_quiet(h);
    return t && em__requires_grad(t);
}

EMBER_API bool em_tensor_is_leaf(const em_tensor *h)
{
    em__tensor *t = em__obj_quiet(h);
    return t && em__is_leaf(t);
}

EMBER_API const char *em_tensor_grad_fn_name(const em_tensor *h)
{
    em__tensor *t = em__obj_quiet(h);
    return t ? em__grad_fn_name(t) : NULL;
}

EMBER_API em_tensor *em_grad(em_tensor *h)
{
    em__tensor *t = em__obj(h);
    if (!t || !t->grad || em__grad_settle(t) != EM_OK)
        return NULL;
    return em__give(em__tensor_ref(t->grad));
}

em_status em__grad_settle(em__tensor *t)
{
    if (!t->grad || !t->grad_zeroed)
        return EM_OK;
    em__tensor *in[1] = {t->grad};
    em_status st = em__apply_inplace(&em__op_zero_, t->grad, in, 1, NULL);
    if (st == EM_OK)
        t->grad_zeroed = false;
    return st;
}

bool em__grad_private(const em__tensor *t)
{
    return t->grad && exclusive(t->grad);
}

/* PyTorch's grad.zero_(). A .grad no one else holds is only marked (see em__tensor's
 * grad_zeroed): the next backward then writes its gradient without a fill and an add, and
 * a read before that fills it. */
EMBER_API em_status em_tensor_zero_grad(em_tensor *h)
{
    if (!h)
        return em__error_global(EM_ERR_INVALID, "zero_grad: NULL tensor");
    em__tensor *t = em__obj(h);
    if (!t)
        return EM_ERR_FREED;
    if (!t->grad || t->grad_zeroed)
        return EM_OK;
    if (em__grad_private(t)) {
        t->grad_zeroed = true;
        return EM_OK;
    }
    em__tensor *in[1] = {t->grad};
    return em__apply_inplace(&em__op_zero_, t->grad, in, 1, NULL);
}

EMBER_API void em_tensor_clear_grad(em_tensor *h)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return;
    em__tensor_unref(t->grad);
    t->grad = NULL;
    t->grad_zeroed = false;
}

EMBER_API em_status em_tensor_retain_grad(em_tensor *h)
{
    if (!h)
        return em__error_global(EM_ERR_INVALID, "retain_grad: NULL tensor");
    em__tensor *t = em__obj(h);
    if (!t)
        return EM_ERR_FREED;
    em_status st = em__view_refresh(t);
    if (st != EM_OK)
        return st;
    if (!t->requires_grad)
        return em__error(t->ctx, EM_ERR_AUTOGRAD, "can't retain_grad on Tensor that has "
                         "requires_grad=False");
    if (t->grad_fn) {
        t->retains_grad = true;
        t->grad_fn->retained_out = t;
    }
    return EM_OK;
}

EMBER_API em_tensor *em_detach(em_tensor *h)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    em__tensor *d = em__tensor_alias(t, t->ndim, t->shape, t->strides, t->offset);
    if (d)
        d->is_view = false;
    return em__give(d);
}
