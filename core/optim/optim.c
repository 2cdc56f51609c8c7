/* core/optim/optim.c — the one optimiser interface (em_optim): construction and option checks
 * with PyTorch's messages, the all-or-nothing step shared by Adam, AdamW and RMSprop, zero_grad,
 * lr access and state inspection. SGD is the existing em_sgd, wrapped.
 *
 * A step computes every parameter's new value and new state tensors from the old ones (adam.c,
 * rmsprop.c), stages the values with a transaction (txn.c) and commits only when all exist:
 * then the parameters' buffers are swapped in, the new state replaces the old and the step
 * counts advance. A failure anywhere aborts it all: parameters, state and counts stay as they
 * were. Parameters without .grad are skipped and get no state, as in PyTorch. */
#include "config.h"
#include "internal.h"
#include "optim_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void em__pyfloat(char *buf, size_t n, double v)
{
    if (isnan(v)) {
        em__snprintf(buf, n, "nan");
        return;
    }
    if (isinf(v)) {
        em__snprintf(buf, n, v < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {   /* the shortest text that reads back as v */
        char t[64];
        double a = fabs(v);
        bool sci = a != 0 && (a >= 1e16 || a < 1e-4);
        snprintf(t, sizeof t, sci ? "%.*e" : "%.*g", sci ? prec - 1 : prec, v);
        if (strtod(t, NULL) != v)
            continue;
        if (sci) {   /* 1e-05 as Python: mantissa without trailing zeros, two-digit exponent */
            em__snprintf(buf, n, "%s", t);
        } else if (!strpbrk(t, ".e")) {
            em__snprintf(buf, n, "%s.0", t);
        } else {
            em__snprintf(buf, n, "%s", t);
        }
        return;
    }
    em__snprintf(buf, n, "%.17g", v);
}

/* params as our handles; ctx of the first. NULL with the error recorded. */
static em_optim *optim_new(em_tensor *const *params, int n, const char *what, em_context **pctx)
{
    if (!params || n <= 0)
        return em__error_global(EM_ERR_INVALID, "%s: optimizer got an empty parameter list",
                                what), NULL;
    for (int i = 0; i < n; i++)
        if (!em__obj_quiet(params[i]))
            return em__error_global(params[i] ? EM_ERR_FREED : EM_ERR_INVALID,
                                    "%s: parameter %d is not a live tensor", what, i), NULL;
    em_context *ctx = em__obj_quiet(params[0])->ctx;
    for (int i = 0; i < n; i++) {
        em__tensor *p = em__obj_quiet(params[i]);
        if (p->ctx != ctx)
            return em__error(ctx, EM_ERR_DEVICE, "%s: parameter %d is on another context", what,
                             i), NULL;
        if (p->grad_fn)
            return em__error(ctx, EM_ERR_INVALID, "%s: can't optimize a non-leaf Tensor "
                             "(parameter %d)", what, i), NULL;
        if (p->dtype != EM_F32 && p->dtype != EM_F64)
            return em__error(ctx, EM_ERR_DTYPE, "%s: parameter %d is of dtype %s; optimizers "
                             "update floating-point parameters", what, i,
                             em_dtype_name(p->dtype)), NULL;
    }
    *pctx = ctx;
    em_optim *o = em__calloc(1, sizeof *o);
    if (!o)
        return em__error(ctx, EM_ERR_OOM, "%s: out of memory", what), NULL;
    o->n = n;
    o->params = em__calloc((size_t)n, sizeof *o->params);
    o->state = em__calloc((size_t)n, sizeof *o->state);
    o->scratch = em__calloc((size_t)n, sizeof *o->scratch);
    o->steps = em__calloc((size_t)n, sizeof *o->steps);
    if (!o->params || !o->state || !o->scratch || !o->steps) {
        em_optim_free(o);
        return em__error(ctx, EM_ERR_OOM, "%s: out of memory", what), NULL;
    }
    for (int i = 0; i < n; i++) {
        o->params[i] = em__hold(em__tensor_ref(em__obj_quiet(params[i])));
        if (!o->params[i]) {
            em_optim_free(o);
            return NULL;
        }
    }
    return o;
}

/* "Invalid <what>: <v>" unless ok */
static bool bad(em_context *ctx, bool ok, const char *what, double v)
{
    if (ok)
        return false;
    char b[64];
    em__pyfloat(b, sizeof b, v);
    em__error(ctx, EM_ERR_INVALID, "Invalid %s: %s", what, b);
    return true;
}

EMBER_API em_adam_options em_adam_defaults(void)
{
    return (em_adam_options){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
}

EMBER_API em_adam_options em_adamw_defaults(void)
{
    em_adam_options o = em_adam_defaults();
    o.weight_decay = 1e-2;
    return o;
}

EMBER_API em_rmsprop_options em_rmsprop_defaults(void)
{
    return (em_rmsprop_options){.lr = 1e-2, .alpha = 0.99, .eps = 1e-8};
}

EMBER_API em_optim *em_optim_sgd(em_tensor *const *params, int n_params, const em_sgd_options *opt)
{
    em_sgd *s = em_sgd_create(params, n_params, opt);
    if (!s)
        return NULL;
    em_optim *o = em__calloc(1, sizeof *o);
    if (!o) {
        em__error(em__obj_quiet(params[0])->ctx, EM_ERR_OOM, "em_optim_sgd: out of memory");
        em_sgd_free(s);
        return NULL;
    }
    o->kind = EM__OPT_SGD;
    o->name = "SGD";
    o->sgd = s;
    o->n = n_params;
    return o;
}

static em_optim *adam_common(em_tensor *const *params, int n, const em_adam_options *opt,
                             em__optim_kind kind, const char *what)
{
    if (!opt)
        return em__error_global(EM_ERR_INVALID, "%s: NULL options", what), NULL;
    em_context *ctx;
    em_optim *o = optim_new(params, n, what, &ctx);
    if (!o)
        return NULL;
    if (bad(ctx, opt->lr >= 0, "learning rate", opt->lr) ||
        bad(ctx, opt->eps >= 0, "epsilon value", opt->eps) ||
        bad(ctx, opt->beta1 >= 0 && opt->beta1 < 1, "beta parameter at index 0", opt->beta1) ||
        bad(ctx, opt->beta2 >= 0 && opt->beta2 < 1, "beta parameter at index 1", opt->beta2) ||
        bad(ctx, opt->weight_decay >= 0, "weight_decay value", opt->weight_decay)) {
        em_optim_free(o);
        return NULL;
    }
    o->kind = kind;
    o->name = kind == EM__OPT_ADAM ? "Adam" : "AdamW";
    o->adam = *opt;
    return o;
}

EMBER_API em_optim *em_optim_adam(em_tensor *const *params, int n_params, const em_adam_options *opt)
{
    return adam_common(params, n_params, opt, EM__OPT_ADAM, "em_optim_adam");
}

EMBER_API em_optim *em_optim_adamw(em_tensor *const *params, int n_params, const em_adam_options *opt)
{
    return adam_common(params, n_params, opt, EM__OPT_ADAMW, "em_optim_adamw");
}

EMBER_API em_optim *em_optim_rmsprop(em_tensor *const *params, int n_params,
                                     const em_rmsprop_options *opt)
{
    if (!opt)
        return em__error_global(EM_ERR_INVALID, "em_optim_rmsprop: NULL options"), NULL;
    em_context *ctx;
    em_optim *o = optim_new(params, n_params, "em_optim_rmsprop", &ctx);
    if (!o)
        return NULL;
    if (bad(ctx, opt->lr >= 0, "learning rate", opt->lr) ||
        bad(ctx, opt->eps >= 0, "epsilon value", opt->eps) ||
        bad(ctx, opt->momentum >= 0, "momentum value", opt->momentum) ||
        bad(ctx, opt->weight_decay >= 0, "weight_decay value", opt->weight_decay) ||
        bad(ctx, opt->alpha >= 0, "alpha value", opt->alpha)) {
        em_optim_free(o);
        return NULL;
    }
    o->kind = EM__OPT_RMSPROP;
    o->name = "RMSprop";
    o->rms = *opt;
    return o;
}

EMBER_API void em_optim_free(em_optim *o)
{
    if (!o)
        return;
    em_sgd_free(o->sgd);
    for (int i = 0; o->params && i < o->n; i++) {
        em__handle_release(o->params[i]);
        for (int k = 0; o->state && k < EM__OPTIM_STATES; k++)
            em__handle_release(o->state[i][k]);
    }
    free(o->params);
    free(o->state);
    free(o->scratch);
    free(o->steps);
    free(o);
}

/* Every parameter and state tensor as an object, or EM_ERR_FREED. */
static em_status live(em_optim *o, em_context **ctx)
{
    *ctx = NULL;
    for (int i = 0; i < o->n; i++) {
        em__tensor *p = em__obj(o->params[i]);
        if (!p)
            return EM_ERR_FREED;
        if (!*ctx)
            *ctx = p->ctx;
        for (int k = 0; k < EM__OPTIM_STATES; k++)
            if (o->state[i][k] && !em__obj(o->state[i][k]))
                return em__error(*ctx, EM_ERR_FREED, "em_optim_step: a state tensor of %s is "
                                 "gone", o->name);
    }
    return EM_OK;
}

static void drop_scratch(em_optim *o)
{
    for (int i = 0; i < o->n; i++)
        for (int k = 0; k < EM__OPTIM_STATES; k++) {
            em_tensor_free(o->scratch[i][k]);
            o->scratch[i][k] = NULL;
        }
}

static em_status optim_step(em_optim *o, em_context *ctx);

EMBER_API em_status em_optim_step(em_optim *o)
{
    if (!o)
        return em__error_global(EM_ERR_INVALID, "em_optim_step: NULL optimizer");
    if (o->kind == EM__OPT_SGD)
        return em_sgd_step(o->sgd);
    em_context *ctx;
    em_status st = live(o, &ctx);
    if (st != EM_OK)
        return st;
    if (!ctx || !ctx->layer_events)
        return optim_step(o, ctx);
    static const char *const kind_name[] = {"sgd", "adam", "adamw", "rmsprop"};
    em__layer_mark(ctx, EM_LAYER_OPTIM_BEGIN, kind_name[o->kind], EM_OK, 0);
    st = optim_step(o, ctx);
    em__layer_mark(ctx, EM_LAYER_OPTIM_END, kind_name[o->kind], st, 0);
    return st;
}

static em_status optim_step(em_optim *o, em_context *ctx)
{
    em_status st = EM_OK;
    bool *did = em__calloc((size_t)o->n, sizeof *did);
    if (!did)
        return em__error(ctx, EM_ERR_OOM, "em_optim_step: out of memory");
    em_no_grad_begin(ctx);
    em_scope_begin(ctx);
    em__txn x;
    em__txn_begin(&x, ctx);
    for (int i = 0; i < o->n && st == EM_OK; i++) {
        em__tensor *po = em__obj(o->params[i]);
        if (!po->grad)
            continue;
        if ((st = em__grad_settle(po)) != EM_OK)
            break;
        em_tensor *p = em__give(em__tensor_ref(po));
        em_tensor *g = em__give(em__tensor_ref(po->grad));
        em_tensor *out[EM__OPTIM_STATES] = {0};
        em_tensor *v = o->kind == EM__OPT_RMSPROP ? em__rmsprop_update(o, i, p, g, out)
                                                  : em__adam_update(o, i, p, g, o->steps[i] + 1, out);
        for (int k = 0; v && k < EM__OPTIM_STATES; k++)
            if (out[k] && !(o->scratch[i][k] = em_tensor_keep(out[k])))
                v = NULL;
        em__tensor *vo = v ? em__obj(v) : NULL;
        st = vo ? em__txn_write(&x, po, vo) : em__failed(ctx) ? em__failed(ctx) : EM_ERR_INTERNAL;
        did[i] = true;
    }
    if (st == EM_OK) {
        em__txn_commit(&x);
        for (int i = 0; i < o->n; i++) {
            if (!did[i])
                continue;
            for (int k = 0; k < EM__OPTIM_STATES; k++) {
                em__handle_release(o->state[i][k]);
                o->state[i][k] = o->scratch[i][k];
                o->scratch[i][k] = NULL;
            }
            o->steps[i]++;
        }
    } else {
        em__txn_abort(&x);
        drop_scratch(o);
    }
    em_scope_end(ctx);
    em_no_grad_end(ctx);
    free(did);
    return st;
}

EMBER_API em_status em_optim_zero_grad(em_optim *o, bool set_to_none)
{
    if (!o)
        return em__error_global(EM_ERR_INVALID, "em_optim_zero_grad: NULL optimizer");
    if (o->kind == EM__OPT_SGD)
        return em_sgd_zero_grad(o->sgd, set_to_none);
    em_context *ctx;
    em_status st = live(o, &ctx);
    return st != EM_OK ? st : em__zero_grads(ctx, o->params, o->n, set_to_none);
}

EMBER_API double em_optim_get_lr(const em_optim *o)
{
    if (!o)
        return NAN;
    switch (o->kind) {
    case EM__OPT_SGD: return em__sgd_lr(o->sgd);
    case EM__OPT_RMSPROP: return o->rms.lr;
    default: return o->adam.lr;
    }
}

EMBER_API em_status em_optim_set_lr(em_optim *o, double lr)
{
    if (!o)
        return em__error_global(EM_ERR_INVALID, "em_optim_set_lr: NULL optimizer");
    if (!(lr >= 0)) {
        char b[64];
        em__pyfloat(b, sizeof b, lr);
        return em__error_global(EM_ERR_INVALID, "Invalid learning rate: %s", b);
    }
    switch (o->kind) {
    case EM__OPT_SGD: em__sgd_set_lr(o->sgd, lr); break;
    case EM__OPT_RMSPROP: o->rms.lr = lr; break;
    default: o->adam.lr = lr; break;
    }
    return EM_OK;
}

static int state_index(const em_optim *o, const char *name)
{
    static const char *const adam[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    static const char *const rms[] = {"square_avg", "momentum_buffer", "grad_avg"};
    const char *const *names = o->kind == EM__OPT_RMSPROP ? rms : adam;
    for (int k = 0; k < EM__OPTIM_STATES; k++)
        if (!strcmp(name, names[k]))
            return k;
    return -1;
}

EMBER_API em_tensor *em_optim_state(em_optim *o, int param, const char *name)
{
    if (!o || !name || param < 0 || param >= o->n)
        return em__error_global(EM_ERR_INVALID, "em_optim_state: no parameter %d (%d "
                                "parameters)", param, o ? o->n : 0), NULL;
    em_tensor *h;
    if (o->kind == EM__OPT_SGD) {
        if (strcmp(name, "momentum_buffer"))
            return NULL;
        h = em__sgd_momentum(o->sgd, param);
    } else {
        int k = state_index(o, name);
        if (k < 0)
            return NULL;
        h = o->state[param][k];
    }
    return h ? em__dup(h) : NULL;
}

EMBER_API int64_t em_optim_state_steps(const em_optim *o, int param)
{
    if (!o || o->kind == EM__OPT_SGD || param < 0 || param >= o->n)
        return 0;
    return o->steps[param];
}
