/* core/optim/adam.c — the update of torch.optim.Adam and AdamW (PyTorch 1.13,
 * _single_tensor_adam / _single_tensor_adamw), for one parameter:
 *   g = maximize ? -grad : grad
 *   Adam:  g += weight_decay * p              AdamW: p *= 1 - lr * weight_decay
 *   exp_avg    = beta1 * exp_avg    + (1 - beta1) * g        (state starts at zero)
 *   exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g
 *   bc1 = 1 - beta1^step,  bc2 = 1 - beta2^step
 *   amsgrad: max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq), used below for exp_avg_sq
 *   denom = sqrt(exp_avg_sq) / sqrt(bc2) + eps
 *   p -= (lr / bc1) * exp_avg / denom
 * Everything is computed into new tensors (optim.c stages and commits them).
 *
 * When the context's backend has the fused kernel adam (ABI 1.3) for the parameter's dtype,
 * one launch per parameter computes all of it into fresh buffers; otherwise (an older
 * plugin, a dtype it did not declare, a non-contiguous parameter or state) the update is
 * composed from elementwise ops. The kernel's definition (ember/backend.h) is that
 * composition operation for operation, so on the cpu backend both give the same bits. */
#include "config.h"
#include "internal.h"
#include "optim_impl.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* Test hook: nonzero makes every step take the composed path (to compare the two), for the
 * adam kernel here and the sgd kernel in sgd.c. */
static _Atomic int force_composed;

EMBER_API void em__test_optim_composed(int on);
EMBER_API void em__test_optim_composed(int on)
{
    atomic_store(&force_composed, on);
}

bool em__optim_force_composed(void)
{
    return atomic_load(&force_composed) != 0;
}

/* The update through the adam kernel: *used false (and nothing recorded) when it does not
 * apply; else the new value (NULL on failure, recorded) and the new state in out[]. */
static em_tensor *fused(em_optim *o, int i, em_tensor *ph, em_tensor *gh, int64_t step,
                        em_tensor **out, bool *used)
{
    const em_adam_options *a = &o->adam;
    em_tensor **st = o->state[i];
    *used = false;
    if (em__optim_force_composed())
        return NULL;
    em__tensor *p = em__obj(ph), *g = em__obj(gh);
    if (!p || !g || !em__kernel_native(p->ctx, EM_KERNEL_OFFSET(adam), p->dtype))
        return NULL;
    const int n_st = a->amsgrad ? 3 : 2;
    bool first = !st[0];
    em__tensor *in[5] = {p, g, NULL, NULL, NULL};
    if (!em__optim_flat_like(p, p) || !em__optim_flat_like(g, p))
        return NULL;
    for (int k = 0; k < n_st; k++) {
        if (!st[k] != first)
            return NULL;   /* a partial state: the composed path knows what to do */
        if (!first && !em__optim_flat_like(in[2 + k] = em__obj(st[k]), p))
            return NULL;
    }
    *used = true;
    em_context *ctx = p->ctx;
    em__tensor *res[4] = {NULL, NULL, NULL, NULL};
    const int n_out = 1 + n_st;
    em_status rc = EM_OK;
    for (int k = 0; k < n_out && rc == EM_OK; k++)
        if (!(res[k] = em__tensor_new(ctx, p->dtype, p->ndim, p->shape)))
            rc = em__failed(ctx) ? em__failed(ctx) : EM_ERR_OOM;
    if (rc == EM_OK) {
        const double pp[4] = {a->lr, a->beta1, a->beta2, a->eps};
        const double fp[3] = {a->weight_decay, 1.0 - pow(a->beta1, (double)step),
                              1.0 - pow(a->beta2, (double)step)};
        const int64_t ip[4] = {o->kind == EM__OPT_ADAMW, a->amsgrad, a->maximize, first};
        rc = em__launch_flat(ctx, EM_KERNEL_OFFSET(adam), res, n_out, in, first ? 2 : 2 + n_st,
                             pp, fp, 3, ip, 4);
    }
    if (rc != EM_OK) {
        for (int k = 0; k < n_out; k++)
            em__tensor_unref(res[k]);
        return NULL;
    }
    for (int k = 1; k < n_out; k++)
        out[k - 1] = em__give(res[k]);
    em_tensor *r = em__give(res[0]);
    for (int k = 0; k < n_st; k++)
        if (!out[k])
            return NULL;
    return r;
}

em_tensor *em__adam_update(em_optim *o, int i, em_tensor *p, em_tensor *g, int64_t step,
                           em_tensor **out)
{
    bool used;
    em_tensor *fr = fused(o, i, p, g, step, out, &used);
    if (used)
        return fr;
    const em_adam_options *a = &o->adam;
    em_tensor **st = o->state[i];
    if (a->maximize)
        g = em_neg(g);
    if (a->weight_decay != 0) {
        if (o->kind == EM__OPT_ADAMW)
            p = em_mul_scalar(p, 1.0 - a->lr * a->weight_decay);
        else
            g = em_add(g, em_mul_scalar(p, a->weight_decay));
    }
    em_tensor *m = em_mul_scalar(g, 1.0 - a->beta1);
    if (st[0])
        m = em_add(em_mul_scalar(st[0], a->beta1), m);
    em_tensor *v = em_mul_scalar(em_mul(g, g), 1.0 - a->beta2);
    if (st[1])
        v = em_add(em_mul_scalar(st[1], a->beta2), v);
    out[0] = m;
    out[1] = v;
    double bc1 = 1.0 - pow(a->beta1, (double)step);
    double bc2 = 1.0 - pow(a->beta2, (double)step);
    em_tensor *vd = v;
    if (a->amsgrad) {
        vd = st[2] ? em_maximum(st[2], v) : em_clone(v);
        out[2] = vd;
    }
    em_tensor *denom = em_add_scalar(em_div_scalar(em_sqrt(vd), sqrt(bc2)), a->eps);
    em_tensor *r = em_sub(p, em_mul_scalar(em_div(m, denom), a->lr / bc1));
    if (!r || !m || !v || (a->amsgrad && !vd))
        return NULL;
    return r;
}
