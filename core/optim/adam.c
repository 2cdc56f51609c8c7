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
 * Everything is computed into new tensors (optim.c stages and commits them). */
#include "config.h"
#include "internal.h"
#include "optim_impl.h"

#include <math.h>

em_tensor *em__adam_update(em_optim *o, int i, em_tensor *p, em_tensor *g, int64_t step,
                           em_tensor **out)
{
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
