/* core/optim/optim_impl.h — what the optimiser files share (private to core/optim/): the
 * em_optim object, the per-algorithm update functions, and SGD's internals that the common
 * interface wraps. */
#ifndef EMBER_CORE_OPTIM_IMPL_H
#define EMBER_CORE_OPTIM_IMPL_H

#include "internal.h"

#include <string.h>

#define EM__OPTIM_STATES 3

typedef enum em__optim_kind { EM__OPT_SGD, EM__OPT_ADAM, EM__OPT_ADAMW, EM__OPT_RMSPROP } em__optim_kind;

struct em_optim {
    em__optim_kind kind;
    const char *name;            /* "Adam", ... for messages */
    em_sgd *sgd;                 /* EM__OPT_SGD: the wrapped optimiser */
    em_adam_options adam;
    em_rmsprop_options rms;
    int n;
    em_tensor **params;          /* our handles */
    em_tensor *(*state)[EM__OPTIM_STATES];    /* per parameter, NULL until its first step */
    em_tensor *(*scratch)[EM__OPTIM_STATES];  /* new state of the step in progress */
    int64_t *steps;
};

/* The update of parameter i on handles in an open scope (grad mode off): its new value, and
 * its new state in out[] (handles in the scope; the caller keeps them). NULL on failure. */
EM_INTERNAL em_tensor *em__adam_update(em_optim *o, int i, em_tensor *p, em_tensor *g,
                                       int64_t step, em_tensor **out);
EM_INTERNAL em_tensor *em__rmsprop_update(em_optim *o, int i, em_tensor *p, em_tensor *g,
                                          em_tensor **out);

/* Whether t can be an operand of a fused optimizer kernel beside the parameter p: present,
 * contiguous, of p's dtype and shape (the kernels see every operand as one flat run). */
static inline bool em__optim_flat_like(const em__tensor *t, const em__tensor *p)
{
    return t && t->dtype == p->dtype && em__is_contiguous(t) && t->ndim == p->ndim &&
           !memcmp(t->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim);
}

/* Test hook (adam.c, em__test_optim_composed): true while the fused optimizer kernels (adam,
 * sgd) are to be bypassed, so that tests compare them with the composed steps. */
EM_INTERNAL bool em__optim_force_composed(void);

/* A double as Python's repr writes it ("-1.0", "0.001", "inf"), for PyTorch's messages. */
EM_INTERNAL void em__pyfloat(char *buf, size_t n, double v);

/* sgd.c */
EM_INTERNAL double em__sgd_lr(const em_sgd *s);
EM_INTERNAL void em__sgd_set_lr(em_sgd *s, double lr);
EM_INTERNAL em_tensor *em__sgd_momentum(const em_sgd *s, int i);
/* For checkpoints (core/io/checkpoint_optim.c): the options (read and replaced as a whole),
 * parameter i's handle, and replacing i's momentum buffer by h (a kept handle, taken over;
 * NULL for none; the old one is released). */
EM_INTERNAL em_sgd_options *em__sgd_options(em_sgd *s);
EM_INTERNAL em_tensor *em__sgd_param(const em_sgd *s, int i);
EM_INTERNAL void em__sgd_set_momentum(em_sgd *s, int i, em_tensor *h);
/* Zero (in place, one transaction: all or none) or drop the grads of params. */
EM_INTERNAL em_status em__zero_grads(em_context *ctx, em_tensor *const *params, int n,
                                     bool set_to_none);

#endif
