/* core/optim.c — torch.optim.SGD, same update rule (PyTorch 1.13, _single_tensor_sgd):
 *   d = maximize ? -grad : grad;  d += weight_decay * p
 *   buf = first step ? d : momentum * buf + (1 - dampening) * d
 *   d = nesterov ? d + momentum * buf : buf          (when momentum != 0)
 *   p -= lr * d */
#include "config.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>

struct em_sgd {
    em_context *ctx;
    em_sgd_options opt;
    int n;
    em_tensor **params;
    em_tensor **momentum;   /* per-parameter buffer, NULL until the first step */
};

EMBER_API em_sgd *em_sgd_create(em_tensor *const *params, int n_params, const em_sgd_options *opt)
{
    if (!params || n_params <= 0 || !opt)
        return em__error_global(EM_ERR_INVALID, "em_sgd_create: need at least one parameter and "
                                "options"), NULL;
    for (int i = 0; i < n_params; i++)
        if (!params[i] || !em__live(params[i]))
            return em__error_global(EM_ERR_INVALID, "em_sgd_create: parameter %d is not a live "
                                    "tensor", i), NULL;
    em_context *ctx = params[0]->ctx;
    if (!(opt->lr >= 0) || !(opt->momentum >= 0) || !(opt->weight_decay >= 0) || isnan(opt->dampening))
        return em__error(ctx, EM_ERR_INVALID, "em_sgd_create: invalid option (lr %g, momentum %g, "
                         "weight_decay %g, dampening %g): lr, momentum and weight_decay must be "
                         ">= 0", opt->lr, opt->momentum, opt->weight_decay, opt->dampening), NULL;
    if (opt->nesterov && (opt->momentum <= 0 || opt->dampening != 0))
        return em__error(ctx, EM_ERR_INVALID, "em_sgd_create: Nesterov momentum requires a "
                         "momentum and zero dampening"), NULL;
    for (int i = 0; i < n_params; i++) {
        em_tensor *p = params[i];
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
    if (!s || !ps || !ms) {
        free(s);
        free(ps);
        free(ms);
        return em__error(ctx, EM_ERR_OOM, "em_sgd_create: out of memory"), NULL;
    }
    s->ctx = ctx;
    s->opt = *opt;
    s->n = n_params;
    s->params = ps;
    s->momentum = ms;
    for (int i = 0; i < n_params; i++)
        ps[i] = em__tensor_ref(params[i]);
    return s;
}

EMBER_API void em_sgd_free(em_sgd *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        em__tensor_unref(s->params[i]);
        em__tensor_unref(s->momentum[i]);
    }
    free(s->params);
    free(s->momentum);
    free(s);
}

EMBER_API em_status em_sgd_step(em_sgd *s)
{
    if (!s)
        return em__error_global(EM_ERR_INVALID, "em_sgd_step: NULL optimizer");
    em_context *ctx = s->ctx;
    const em_sgd_options *o = &s->opt;
    em_status st = EM_OK;
    em_no_grad_begin(ctx);
    em_scope_begin(ctx);
    for (int i = 0; i < s->n && st == EM_OK; i++) {
        em_tensor *p = s->params[i];
        if (!p->grad)
            continue;
        em_tensor *d = o->maximize ? em_neg(p->grad) : p->grad;
        if (o->weight_decay != 0)
            d = em_add(d, em_mul_scalar(p, o->weight_decay));
        if (o->momentum != 0) {
            em_tensor *buf = s->momentum[i];
            if (!buf) {
                buf = s->momentum[i] = em_tensor_keep(em_clone(d));
            } else {
                st = em_mul_scalar_(buf, o->momentum);
                if (st == EM_OK)
                    st = em_add_(buf, em_mul_scalar(d, 1.0 - o->dampening));
            }
            if (!buf) {
                st = ctx->status ? ctx->status : EM_ERR_OOM;
                break;
            }
            d = o->nesterov ? em_add(d, em_mul_scalar(buf, o->momentum)) : buf;
        }
        if (st == EM_OK)
            st = em_sub_(p, em_mul_scalar(d, o->lr));
    }
    em_scope_end(ctx);
    em_no_grad_end(ctx);
    return st;
}

EMBER_API em_status em_sgd_zero_grad(em_sgd *s, bool set_to_none)
{
    if (!s)
        return em__error_global(EM_ERR_INVALID, "em_sgd_zero_grad: NULL optimizer");
    for (int i = 0; i < s->n; i++) {
        if (set_to_none) {
            em_tensor_clear_grad(s->params[i]);
        } else {
            em_status st = em_tensor_zero_grad(s->params[i]);
            if (st != EM_OK)
                return st;
        }
    }
    return EM_OK;
}
