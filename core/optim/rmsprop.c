/* core/optim/rmsprop.c — the update of torch.optim.RMSprop (PyTorch 1.13,
 * _single_tensor_rmsprop), for one parameter:
 *   g = maximize ? -grad : grad;  g += weight_decay * p
 *   square_avg = alpha * square_avg + (1 - alpha) * g * g       (state starts at zero)
 *   centered:  grad_avg = alpha * grad_avg + (1 - alpha) * g
 *              avg = sqrt(square_avg - grad_avg^2) + eps
 *   else:      avg = sqrt(square_avg) + eps
 *   momentum > 0: buf = momentum * buf + g / avg;  p -= lr * buf
 *   else:         p -= lr * g / avg
 * State slots: 0 square_avg, 1 momentum_buffer, 2 grad_avg. New tensors only (optim.c
 * stages and commits them). */
#include "config.h"
#include "internal.h"
#include "optim_impl.h"

em_tensor *em__rmsprop_update(em_optim *o, int i, em_tensor *p, em_tensor *g, em_tensor **out)
{
    const em_rmsprop_options *r = &o->rms;
    em_tensor **st = o->state[i];
    if (r->maximize)
        g = em_neg(g);
    if (r->weight_decay != 0)
        g = em_add(g, em_mul_scalar(p, r->weight_decay));
    em_tensor *sq = em_mul_scalar(em_mul(g, g), 1.0 - r->alpha);
    if (st[0])
        sq = em_add(em_mul_scalar(st[0], r->alpha), sq);
    out[0] = sq;
    em_tensor *avg;
    if (r->centered) {
        em_tensor *ga = em_mul_scalar(g, 1.0 - r->alpha);
        if (st[2])
            ga = em_add(em_mul_scalar(st[2], r->alpha), ga);
        out[2] = ga;
        if (!ga)
            return NULL;
        avg = em_sqrt(em_sub(sq, em_mul(ga, ga)));
    } else {
        avg = em_sqrt(sq);
    }
    avg = em_add_scalar(avg, r->eps);
    em_tensor *d = em_div(g, avg);
    if (r->momentum > 0) {
        em_tensor *buf = st[1] ? em_add(em_mul_scalar(st[1], r->momentum), d) : d;
        out[1] = buf;
        if (!buf)
            return NULL;
        d = buf;
    }
    em_tensor *res = em_sub(p, em_mul_scalar(d, r->lr));
    if (!res || !sq)
        return NULL;
    return res;
}
