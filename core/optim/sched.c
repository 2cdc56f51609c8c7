/* core/optim/sched.c — learning-rate schedulers (torch.optim.lr_scheduler's StepLR,
 * CosineAnnealingLR and LinearLR, in their closed forms over base_lr, the optimiser's lr when
 * the scheduler is made) and torch.nn.utils.clip_grad_norm_. */
#include "config.h"
#include "internal.h"
#include "optim_impl.h"

#include <math.h>
#include <stdlib.h>

typedef enum { SCHED_STEP, SCHED_COSINE, SCHED_LINEAR } sched_kind;

struct em_sched {
    sched_kind kind;
    em_optim *opt;
    double base_lr;
    int64_t epoch;           /* PyTorch's last_epoch */
    int step_size, t_max, total_iters;
    double gamma, eta_min, start, end;
};

static double sched_lr(const em_sched *s)
{
    double e = (double)s->epoch;
    switch (s->kind) {
    case SCHED_STEP:
        return s->base_lr * pow(s->gamma, (double)(s->epoch / s->step_size));
    case SCHED_COSINE:
        return s->eta_min + (s->base_lr - s->eta_min) * (1 + cos(M_PI * e / s->t_max)) / 2;
    default: {
        int64_t t = s->epoch < s->total_iters ? s->epoch : s->total_iters;
        return s->base_lr * (s->start + (s->end - s->start) * (double)t / s->total_iters);
    }
    }
}

static em_sched *sched_new(em_optim *opt, sched_kind kind, const char *what)
{
    if (!opt)
        return em__error_global(EM_ERR_INVALID, "%s: NULL optimizer", what), NULL;
    em_sched *s = em__calloc(1, sizeof *s);
    if (!s)
        return em__error_global(EM_ERR_OOM, "%s: out of memory", what), NULL;
    s->kind = kind;
    s->opt = opt;
    s->base_lr = em_optim_get_lr(opt);
    return s;
}

EMBER_API em_sched *em_lr_step(em_optim *opt, int step_size, double gamma)
{
    if (step_size <= 0 || !(gamma >= 0))
        return em__error_global(EM_ERR_INVALID, "em_lr_step: step_size must be > 0 and gamma "
                                ">= 0 (got step_size %d, gamma %g)", step_size, gamma), NULL;
    em_sched *s = sched_new(opt, SCHED_STEP, "em_lr_step");
    if (s) {
        s->step_size = step_size;
        s->gamma = gamma;
    }
    return s;
}

EMBER_API em_sched *em_lr_cosine(em_optim *opt, int T_max, double eta_min)
{
    if (T_max <= 0 || !isfinite(eta_min))
        return em__error_global(EM_ERR_INVALID, "em_lr_cosine: T_max must be > 0 and eta_min "
                                "finite (got T_max %d, eta_min %g)", T_max, eta_min), NULL;
    em_sched *s = sched_new(opt, SCHED_COSINE, "em_lr_cosine");
    if (s) {
        s->t_max = T_max;
        s->eta_min = eta_min;
    }
    return s;
}

EMBER_API em_sched *em_lr_linear_warmup(em_optim *opt, double start_factor, double end_factor,
                                        int total_iters)
{
    if (!(start_factor > 0 && start_factor <= 1))
        return em__error_global(EM_ERR_INVALID, "Starting multiplicative factor expected to be "
                                "greater than 0 and less or equal to 1."), NULL;
    if (!(end_factor >= 0 && end_factor <= 1))
        return em__error_global(EM_ERR_INVALID, "Ending multiplicative factor expected to be "
                                "between 0 and 1."), NULL;
    if (total_iters <= 0)
        return em__error_global(EM_ERR_INVALID, "em_lr_linear_warmup: total_iters must be > 0 "
                                "(got %d)", total_iters), NULL;
    em_sched *s = sched_new(opt, SCHED_LINEAR, "em_lr_linear_warmup");
    if (!s)
        return NULL;
    s->start = start_factor;
    s->end = end_factor;
    s->total_iters = total_iters;
    em_optim_set_lr(opt, sched_lr(s));   /* epoch 0, as PyTorch's constructor */
    return s;
}

EMBER_API em_status em_sched_step(em_sched *s)
{
    if (!s)
        return em__error_global(EM_ERR_INVALID, "em_sched_step: NULL scheduler");
    s->epoch++;
    return em_optim_set_lr(s->opt, sched_lr(s));
}

EMBER_API void em_sched_free(em_sched *s)
{
    free(s);
}

/* ---- clip_grad_norm_ ---- */

EMBER_API em_status em_clip_grad_norm_(em_tensor *const *params, int n_params, double max_norm,
                                       double norm_type, double *total_norm_out)
{
    if (total_norm_out)
        *total_norm_out = 0;
    if (!params || n_params < 0)
        return em__error_global(EM_ERR_INVALID, "em_clip_grad_norm_: no parameter list");
    if (n_params == 0)
        return EM_OK;
    em_context *ctx = NULL;
    for (int i = 0; i < n_params; i++) {
        em__tensor *p = em__obj(params[i]);
        if (!p)
            return params[i] ? EM_ERR_FREED
                             : em__error_global(EM_ERR_INVALID, "em_clip_grad_norm_: parameter "
                                                "%d is NULL", i);
        if (!ctx)
            ctx = p->ctx;
        else if (p->ctx != ctx)
            return em__error(ctx, EM_ERR_DEVICE, "em_clip_grad_norm_: parameter %d is on "
                             "another context", i);
    }
    if (norm_type != 2.0 && !(isinf(norm_type) && norm_type > 0))
        return em__error(ctx, EM_ERR_INVALID, "em_clip_grad_norm_: norm_type %g is not "
                         "supported (2.0 or INFINITY)", norm_type);
    if (!(max_norm >= 0))
        return em__error(ctx, EM_ERR_INVALID, "em_clip_grad_norm_: max_norm must be >= 0 (got "
                         "%g)", max_norm);
    bool inf = isinf(norm_type);
    double total = 0;
    em_status st = EM_OK;
    em_no_grad_begin(ctx);
    em_scope_begin(ctx);
    for (int i = 0; i < n_params && st == EM_OK; i++) {
        em__tensor *g = em__obj(params[i])->grad;
        if (!g)
            continue;
        if ((st = em__grad_settle(em__obj(params[i]))) != EM_OK)
            break;
        em_tensor *gh = em__give(em__tensor_ref(g));
        double v;
        if (inf)
            st = em_tensor_numel(gh) ? em_item_get(em_max(em_abs(gh)), &v) : (v = 0, EM_OK);
        else
            st = em_item_get(em_sum(em_mul(gh, gh)), &v);
        if (st == EM_OK)
            total = inf ? fmax(total, v) : total + v;
    }
    if (!inf)
        total = sqrt(total);
    double coef = max_norm / (total + 1e-6);
    if (st == EM_OK && coef < 1) {
        em__txn x;
        em__txn_begin(&x, ctx);
        for (int i = 0; i < n_params && st == EM_OK; i++) {
            em__tensor *g = em__obj(params[i])->grad;
            if (!g)
                continue;
            em__tensor *v = em__obj(em_mul_scalar(em__give(em__tensor_ref(g)), coef));
            st = v ? em__txn_write(&x, g, v) : em__failed(ctx) ? em__failed(ctx) : EM_ERR_INTERNAL;
        }
        if (st == EM_OK)
            em__txn_commit(&x);
        else
            em__txn_abort(&x);
    }
    em_scope_end(ctx);
    em_no_grad_end(ctx);
    if (st == EM_OK && total_norm_out)
        *total_norm_out = total;
    return st;
}
