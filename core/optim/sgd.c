/* core/optim/sgd.c — torch.optim.SGD, same update rule (PyTorch 1.13, _single_tensor_sgd):
 *   d = maximize ? -grad : grad;  d += weight_decay * p
 *   buf = first step ? d : momentum * buf + (1 - dampening) * d
 *   d = nesterov ? d + momentum * buf : buf          (when momentum != 0)
 *   p -= lr * d
 *
 * A step is all-or-nothing: every new parameter value and momentum buffer is computed first
 * (into new tensors, from the old values), and only when all of them exist are the parameters
 * committed (txn.c: their storages' buffers swapped, which cannot fail) and the buffers
 * replaced. A step that fails anywhere leaves parameters and state exactly as they were.
 *
 * When the context's backend has the fused kernel sgd (ABI 1.7) for the parameter's dtype,
 * one launch per parameter reads p, its grad (and buffer) once and writes the new value (and
 * buffer); otherwise the update is composed from elementwise ops. The kernel's definition
 * (ember/backend.h) is that composition operation for operation: the same bits on cpu.
 *
 * The optimizer holds handles of its own to the parameters and buffers (it keeps them alive
 * after the user frees theirs). If the context is freed first those handles go stale: every
 * call then reports EM_ERR_FREED, and em_sgd_free releases only the optimizer's own memory. */
#include "config.h"
#include "internal.h"
#include "optim_impl.h"

#include <math.h>
#include <stdlib.h>

struct em_sgd {
    em_sgd_options opt;
    int n;
    em_tensor **params;     /* our handles */
    em_tensor **momentum;   /* per-parameter buffer, NULL until the first step */
    em_tensor **scratch;    /* new buffers of the step in progress */
};

EMBER_API em_sgd *em_sgd_create(em_tensor *const *params, int n_params, const em_sgd_options *opt)
{
    if (!params || n_params <= 0 || !opt)
        return em__error_global(EM_ERR_INVALID, "em_sgd_create: need at least one parameter and "
                                "options"), NULL;
    for (int i = 0; i < n_params; i++)
        if (!em__obj_quiet(params[i]))
            return em__error_global(params[i] ? EM_ERR_FREED : EM_ERR_INVALID,
                                    "em_sgd_create: parameter %d is not a live tensor", i), NULL;
    em_context *ctx = em__obj_quiet(params[0])->ctx;
    if (!(opt->lr >= 0) || !(opt->momentum >= 0) || !(opt->weight_decay >= 0) || isnan(opt->dampening))
        return em__error(ctx, EM_ERR_INVALID, "em_sgd_create: invalid option (lr %g, momentum %g, "
                         "weight_decay %g, dampening %g): lr, momentum and weight_decay must be "
                         ">= 0", opt->lr, opt->momentum, opt->weight_decay, opt->dampening), NULL;
    if (opt->nesterov && (opt->momentum <= 0 || opt->dampening != 0))
        return em__error(ctx, EM_ERR_INVALID, "em_sgd_create: Nesterov momentum requires a "
                         "momentum and zero dampening"), NULL;
    for (int i = 0; i < n_params; i++) {
        em__tensor *p = em__obj_quiet(params[i]);
        if (p->ctx != ctx)
            return em__error(ctx, EM_ERR_DEVICE, "em_sgd_create: parameter %d is on another "
                             "context", i), NULL;
        if (p->grad_fn)
            return em__error(ctx, EM_ERR_INVALID, "em_sgd_create: can't optimize a non-leaf "
                             "Tensor (parameter %d)", i), NULL;
    }
    em_sgd *s = em__calloc(1, sizeof *s);
    em_tensor **ps = em__calloc((size_t)n_params, sizeof *ps);
    em_tensor **ms = em__calloc((size_t)n_params, sizeof *ms);
    em_tensor **sc = em__calloc((size_t)n_params, sizeof *sc);
    if (!s || !ps || !ms || !sc) {
        free(s);
        free(ps);
        free(ms);
        free(sc);
        return em__error(ctx, EM_ERR_OOM, "em_sgd_create: out of memory"), NULL;
    }
    s->opt = *opt;
    s->n = n_params;
    s->params = ps;
    s->momentum = ms;
    s->scratch = sc;
    for (int i = 0; i < n_params; i++) {
        ps[i] = em__hold(em__tensor_ref(em__obj_quiet(params[i])));
        if (!ps[i]) {
            em_sgd_free(s);
            return NULL;
        }
    }
    return s;
}

EMBER_API void em_sgd_free(em_sgd *s)
{
    if (!s)
        return;
    /* stale handles (the context is gone) are ignored: nothing of the context is touched */
    for (int i = 0; i < s->n; i++) {
        em__handle_release(s->params[i]);
        em__handle_release(s->momentum[i]);
    }
    free(s->params);
    free(s->momentum);
    free(s->scratch);
    free(s);
}

/* Every parameter as an object, or EM_ERR_FREED (the context, or a parameter, is gone). */
static em_status live_params(em_sgd *s, const char *what, em_context **ctx)
{
    *ctx = NULL;
    for (int i = 0; i < s->n; i++) {
        em__tensor *p = em__obj(s->params[i]);
        if (!p)
            return EM_ERR_FREED;
        if (!*ctx)
            *ctx = p->ctx;
        if (s->momentum[i] && !em__obj(s->momentum[i]))
            return em__error(*ctx, EM_ERR_FREED, "%s: a momentum buffer is gone", what);
    }
    return EM_OK;
}

/* Parameter i's step through the backend's sgd kernel (ABI 1.7): *used false (and nothing
 * recorded) when it does not apply (an older plugin, an undeclared dtype, a non-contiguous
 * operand); else the new value (held by the step's scope; NULL on failure, recorded) and the
 * new momentum buffer into s->scratch[i]. */
static em__tensor *fused(em_sgd *s, int i, bool *used)
{
    const em_sgd_options *o = &s->opt;
    *used = false;
    if (em__optim_force_composed())
        return NULL;
    em__tensor *p = em__obj(s->params[i]), *g = p->grad;
    em_context *ctx = p->ctx;
    if (!em__kernel_native(ctx, EM_KERNEL_OFFSET(sgd), p->dtype) ||
        !em__optim_flat_like(p, p) || !em__optim_flat_like(g, p))
        return NULL;
    const bool mom = o->momentum != 0, first = !s->momentum[i];
    em__tensor *in[3] = {p, g, NULL};
    if (mom && !first && !em__optim_flat_like(in[2] = em__obj(s->momentum[i]), p))
        return NULL;
    *used = true;
    em__tensor *res[2] = {NULL, NULL};
    const int n_out = mom ? 2 : 1;
    em_status rc = EM_OK;
    for (int k = 0; k < n_out && rc == EM_OK; k++)
        if (!(res[k] = em__tensor_new(ctx, p->dtype, p->ndim, p->shape)))
            rc = em__failed(ctx) ? em__failed(ctx) : EM_ERR_OOM;
    if (rc == EM_OK) {
        const double pp[4] = {o->lr, o->momentum, o->dampening, o->weight_decay};
        const int64_t ip[3] = {o->nesterov, o->maximize, first};
        rc = em__launch_flat(ctx, EM_KERNEL_OFFSET(sgd), res, n_out, in, mom && !first ? 3 : 2,
                             pp, NULL, 0, ip, 3);
    }
    if (rc == EM_OK && mom && !(s->scratch[i] = em__hold(em__tensor_ref(res[1]))))
        rc = em__failed(ctx) ? em__failed(ctx) : EM_ERR_OOM;
    em__tensor_unref(res[1]);
    if (rc != EM_OK) {
        em__tensor_unref(res[0]);
        return NULL;
    }
    return em__obj_quiet(em__give(res[0]));   /* the step's scope holds it */
}

/* The step's computation for parameter i: its new value (held by the step's scope), and its
 * new momentum buffer into s->scratch[i] (a handle out of any scope). Only new tensors
 * are written: in one pass by the backend's sgd kernel where it has one, else composed from
 * elementwise ops, operation for operation the kernel's definition (ember/backend.h). */
static em__tensor *new_value(em_sgd *s, int i)
{
    bool used;
    em__tensor *fr = fused(s, i, &used);
    if (used)
        return fr;
    const em_sgd_options *o = &s->opt;
    em__tensor *po = em__obj(s->params[i]);
    em_tensor *p = em__give(em__tensor_ref(po));
    em_tensor *g = em__give(em__tensor_ref(po->grad));
    em_tensor *d = o->maximize ? em_neg(g) : g;
    if (o->weight_decay != 0)
        d = em_add(d, em_mul_scalar(p, o->weight_decay));
    if (o->momentum != 0) {
        em_tensor *buf = s->momentum[i];
        em_tensor *nb = buf ? em_add(em_mul_scalar(buf, o->momentum),
                                     em_mul_scalar(d, 1.0 - o->dampening))
                            : em_clone(d);
        s->scratch[i] = em_tensor_keep(nb);
        if (!s->scratch[i])
            return NULL;
        d = o->nesterov ? em_add(d, em_mul_scalar(nb, o->momentum)) : nb;
    }
    return em__obj_quiet(em_sub(p, em_mul_scalar(d, o->lr)));
}

static em_status sgd_step(em_sgd *s, em_context *ctx);

EMBER_API em_status em_sgd_step(em_sgd *s)
{
    if (!s)
        return em__error_global(EM_ERR_INVALID, "em_sgd_step: NULL optimizer");
    em_context *ctx;
    em_status st = live_params(s, "em_sgd_step", &ctx);
    if (st != EM_OK)
        return st;
    if (!ctx || !ctx->layer_events)
        return sgd_step(s, ctx);
    em__layer_mark(ctx, EM_LAYER_OPTIM_BEGIN, "sgd", EM_OK, 0);
    st = sgd_step(s, ctx);
    em__layer_mark(ctx, EM_LAYER_OPTIM_END, "sgd", st, 0);
    return st;
}

static em_status sgd_step(em_sgd *s, em_context *ctx)
{
    em_status st = EM_OK;
    em_no_grad_begin(ctx);
    em_scope_begin(ctx);
    em__txn x;
    em__txn_begin(&x, ctx);
    for (int i = 0; i < s->n && st == EM_OK; i++) {
        em__tensor *p = em__obj(s->params[i]);
        if (!p->grad)
            continue;
        if ((st = em__grad_settle(p)) != EM_OK)
            break;
        em__tensor *v = new_value(s, i);
        st = v ? em__txn_write(&x, p, v) : em__failed(ctx) ? em__failed(ctx) : EM_ERR_INTERNAL;
    }
    if (st == EM_OK) {
        em__txn_commit(&x);
        for (int i = 0; i < s->n; i++) {
            if (!s->scratch[i])
                continue;
            em__handle_release(s->momentum[i]);
            s->momentum[i] = s->scratch[i];
            s->scratch[i] = NULL;
        }
    } else {
        em__txn_abort(&x);
        for (int i = 0; i < s->n; i++) {
            em_tensor_free(s->scratch[i]);
            s->scratch[i] = NULL;
        }
    }
    em_scope_end(ctx);
    em_no_grad_end(ctx);
    return st;
}

EMBER_API em_status em_sgd_zero_grad(em_sgd *s, bool set_to_none)
{
    if (!s)
        return em__error_global(EM_ERR_INVALID, "em_sgd_zero_grad: NULL optimizer");
    em_context *ctx;
    em_status st = live_params(s, "em_sgd_zero_grad", &ctx);
    if (st != EM_OK)
        return st;
    return em__zero_grads(ctx, s->params, s->n, set_to_none);
}

em_status em__zero_grads(em_context *ctx, em_tensor *const *params, int n, bool set_to_none)
{
    em_status st = EM_OK;
    if (set_to_none) {   /* cannot fail */
        for (int i = 0; i < n; i++)
            em_tensor_clear_grad(params[i]);
        return EM_OK;
    }
    /* all grads zeroed, or none: one transaction. A .grad no one else holds is only marked
     * zeroed (em_tensor_zero_grad's rule), after the others are written. */
    em__txn x;
    em__txn_begin(&x, ctx);
    em__tensor *zero[EM_DTYPE_COUNT_] = {0};
    for (int i = 0; i < n && st == EM_OK; i++) {
        em__tensor *t = em__obj(params[i]), *g = t->grad;
        if (!g || t->grad_zeroed || em__grad_private(t))
            continue;
        if (!zero[g->dtype]) {
            double p[4] = {0};
            zero[g->dtype] = em__tensor_new(ctx, g->dtype, 0, NULL);
            if (!zero[g->dtype] ||
                em__launch(ctx, EM_KERNEL_OFFSET(fill), zero[g->dtype], NULL, 0, p, NULL) != EM_OK) {
                st = em__failed(ctx);
                break;
            }
        }
        st = em__txn_write(&x, g, zero[g->dtype]);
    }
    if (st == EM_OK) {
        em__txn_commit(&x);
        for (int i = 0; i < n; i++) {
            em__tensor *t = em__obj(params[i]);
            if (em__grad_private(t))
                t->grad_zeroed = true;
        }
    } else {
        em__txn_abort(&x);
    }
    for (int d = 0; d < EM_DTYPE_COUNT_; d++)
        em__tensor_unref(zero[d]);
    return st;
}

double em__sgd_lr(const em_sgd *s)
{
    return s->opt.lr;
}

void em__sgd_set_lr(em_sgd *s, double lr)
{
    s->opt.lr = lr;
}

em_tensor *em__sgd_momentum(const em_sgd *s, int i)
{
    return s->momentum[i];
}

em_sgd_options *em__sgd_options(em_sgd *s)
{
    return &s->opt;
}

em_tensor *em__sgd_param(const em_sgd *s, int i)
{
    return s->params[i];
}

void em__sgd_set_momentum(em_sgd *s, int i, em_tensor *h)
{
    em__handle_release(s->momentum[i]);
    s->momentum[i] = h;
}
