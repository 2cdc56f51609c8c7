/* tools/conform_optim.c — ember-conform cases for the fused optimizer kernels: the steps of
 * em_optim_adam and em_optim_adamw (ABI 1.3's adam: every combination of amsgrad, maximize and
 * weight decay) and of em_optim_sgd (ABI 1.7's sgd: momentum, dampening, Nesterov, weight
 * decay, maximize), over parameters below and above the threading thresholds and a 0-dim one.
 * They run through the plugin's kernel when it has one and are composed from its elementwise
 * kernels when not. The parameters and the state tensors are compared after each step with
 * PyTorch 1.13's update computed in double on the host. */
#include "conform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define STEPS 4

/* One parameter's host reference state */
typedef struct ref_state {
    double *p, *m, *v, *vmax;
} ref_state;

static void ref_step(ref_state *s, const double *g, int64_t n, const em_adam_options *a,
                     bool adamw, int step)
{
    const double bc1 = 1 - pow(a->beta1, step), bc2 = 1 - pow(a->beta2, step);
    for (int64_t i = 0; i < n; i++) {
        double x = a->maximize ? -g[i] : g[i];
        if (a->weight_decay != 0) {
            if (adamw)
                s->p[i] *= 1 - a->lr * a->weight_decay;
            else
                x += a->weight_decay * s->p[i];
        }
        s->m[i] = a->beta1 * s->m[i] + (1 - a->beta1) * x;
        s->v[i] = a->beta2 * s->v[i] + (1 - a->beta2) * x * x;
        double d = s->v[i];
        if (a->amsgrad) {
            s->vmax[i] = fmax(s->vmax[i], s->v[i]);
            d = s->vmax[i];
        }
        s->p[i] -= a->lr / bc1 * s->m[i] / (sqrt(d) / sqrt(bc2) + a->eps);
    }
}

static void compare_state(cf_row *r, em_optim *o, const char *name, const double *want, int64_t n,
                          em_dtype dt, const char *label)
{
    em_tensor *t = em_optim_state(o, 0, name);
    const char *l = cf_fmt("%s, %s", label, name);
    if (!t) {
        cf_fail(r, "%s: no state tensor", l);
        return;
    }
    double *got = cf_read(r, t, l);
    if (got)
        cf_compare(r, l, cf_bucket(dt), got, want, NULL, n, cf_tol(dt));
}

static void adam_case(cf_row *r, em_dtype dt, bool adamw, int flags, int nd, const int64_t *shape)
{
    cf_case_begin();
    em_adam_options a = adamw ? em_adamw_defaults() : em_adam_defaults();
    a.lr = 0.01;
    a.beta1 = 0.85;
    a.beta2 = 0.99;
    a.amsgrad = flags & 1;
    a.maximize = flags & 2;
    a.weight_decay = flags & 4 ? 0.05 : 0;
    const int64_t n = cf_numel(nd, shape);
    const char *label = cf_fmt("%s %s %s amsgrad=%d maximize=%d weight_decay=%g",
                               em_dtype_name(dt), adamw ? "AdamW" : "Adam",
                               cf_shape_str(nd, shape), a.amsgrad, a.maximize, a.weight_decay);
    const cf_gen pg = {-2, 2, CF_UNIFORM}, gg = {-1, 1, CF_UNIFORM | CF_AWAY};
    ref_state s = {NULL, cf_tmp((size_t)n * sizeof(double)), cf_tmp((size_t)n * sizeof(double)),
                   cf_tmp((size_t)n * sizeof(double))};
    memset(s.m, 0, (size_t)n * sizeof(double));
    memset(s.v, 0, (size_t)n * sizeof(double));
    memset(s.vmax, 0, (size_t)n * sizeof(double));
    em_tensor *p = cf_make(r, dt, nd, shape, CF_CONTIG, &pg, &s.p, NULL);
    em_tensor *keep = p ? em_tensor_keep(p) : NULL;
    if (keep)
        em_tensor_set_requires_grad(keep, true);
    em_optim *o = keep ? (adamw ? em_optim_adamw(&keep, 1, &a) : em_optim_adam(&keep, 1, &a))
                       : NULL;
    for (int step = 1; o && step <= STEPS; step++) {
        double *g = NULL;
        em_tensor *gt = cf_make(r, dt, nd, shape, CF_CONTIG, &gg, &g, NULL);
        em_tensor_clear_grad(keep);
        em_tensor *l = gt ? em_sum(em_mul(keep, gt)) : NULL;
        if (!cf_status(r, l ? em_backward(l) : EM_ERR_INVALID, label) ||
            !cf_status(r, em_optim_step(o), label))
            break;
        ref_step(&s, g, n, &a, adamw, step);
        const char *sl = cf_fmt("%s, step %d", label, step);
        double *got = cf_read(r, keep, sl);
        if (!got || !cf_compare(r, sl, cf_bucket(dt), got, s.p, NULL, n, cf_tol(dt)))
            break;
        compare_state(r, o, "exp_avg", s.m, n, dt, sl);
        compare_state(r, o, "exp_avg_sq", s.v, n, dt, sl);
        if (a.amsgrad)
            compare_state(r, o, "max_exp_avg_sq", s.vmax, n, dt, sl);
    }
    if (keep && !o)
        cf_got(r, NULL, label);
    em_optim_free(o);
    em_tensor_free(keep);
    cf_case_end();
}

/* torch.optim.SGD's step in double (PyTorch 1.13, _single_tensor_sgd); b: the momentum
 * buffer, used from the second step on */
static void sgd_ref_step(double *p, double *b, const double *g, int64_t n,
                         const em_sgd_options *o, int step)
{
    for (int64_t i = 0; i < n; i++) {
        double x = o->maximize ? -g[i] : g[i];
        if (o->weight_decay != 0)
            x += o->weight_decay * p[i];
        if (o->momentum != 0) {
            b[i] = step == 1 ? x : o->momentum * b[i] + (1 - o->dampening) * x;
            x = o->nesterov ? x + o->momentum * b[i] : b[i];
        }
        p[i] -= o->lr * x;
    }
}

/* flags: 1 momentum, 2 Nesterov, 4 dampening, 8 weight decay, 16 maximize */
static void sgd_case(cf_row *r, em_dtype dt, int flags, int nd, const int64_t *shape)
{
    cf_case_begin();
    const em_sgd_options o = {.lr = 0.02, .momentum = flags & 1 ? 0.8 : 0,
                              .dampening = flags & 4 ? 0.25 : 0,
                              .weight_decay = flags & 8 ? 0.05 : 0, .nesterov = flags & 2,
                              .maximize = flags & 16};
    const int64_t n = cf_numel(nd, shape);
    const char *label = cf_fmt("%s SGD %s momentum=%g dampening=%g nesterov=%d weight_decay=%g "
                               "maximize=%d", em_dtype_name(dt), cf_shape_str(nd, shape),
                               o.momentum, o.dampening, o.nesterov, o.weight_decay, o.maximize);
    const cf_gen pg = {-2, 2, CF_UNIFORM}, gg = {-1, 1, CF_UNIFORM | CF_AWAY};
    double *p0 = NULL, *b = cf_tmp((size_t)n * sizeof(double));
    em_tensor *p = cf_make(r, dt, nd, shape, CF_CONTIG, &pg, &p0, NULL);
    em_tensor *keep = p ? em_tensor_keep(p) : NULL;
    if (keep)
        em_tensor_set_requires_grad(keep, true);
    em_optim *opt = keep ? em_optim_sgd(&keep, 1, &o) : NULL;
    for (int step = 1; opt && step <= STEPS; step++) {
        double *g = NULL;
        em_tensor *gt = cf_make(r, dt, nd, shape, CF_CONTIG, &gg, &g, NULL);
        em_tensor_clear_grad(keep);
        em_tensor *l = gt ? em_sum(em_mul(keep, gt)) : NULL;
        if (!cf_status(r, l ? em_backward(l) : EM_ERR_INVALID, label) ||
            !cf_status(r, em_optim_step(opt), label))
            break;
        sgd_ref_step(p0, b, g, n, &o, step);
        const char *sl = cf_fmt("%s, step %d", label, step);
        double *got = cf_read(r, keep, sl);
        if (!got || !cf_compare(r, sl, cf_bucket(dt), got, p0, NULL, n, cf_tol(dt)))
            break;
        if (o.momentum != 0)
            compare_state(r, opt, "momentum_buffer", b, n, dt, sl);
    }
    if (keep && !opt)
        cf_got(r, NULL, label);
    em_optim_free(opt);
    em_tensor_free(keep);
    cf_case_end();
}

void cf_run_optim(void)
{
    static const struct {
        int nd;
        int64_t shape[2];
    } shapes[] = {{0, {0}}, {1, {37}}, {2, {3, 4}}, {1, {70001}}};
    for (int w = 0; w < 2; w++) {
        cf_row *r = cf_row_get(w ? "optim_adamw" : "optim_adam", "adam");
        if (!r)
            continue;
        for (int d = 0; d < 2; d++) {
            em_dtype dt = d ? EM_F64 : EM_F32;
            if (!cf_dtype_enabled(dt))
                continue;
            for (int f = 0; f < 8; f++)
                for (size_t k = 0; k < NELEMS(shapes); k++)
                    if (f == 7 || k < NELEMS(shapes) - 1)   /* the large one: all options */
                        adam_case(r, dt, w == 1, f, shapes[k].nd, shapes[k].shape);
        }
    }
    cf_row *r = cf_row_get("optim_sgd", "sgd");
    for (int d = 0; r && d < 2; d++) {
        em_dtype dt = d ? EM_F64 : EM_F32;
        if (!cf_dtype_enabled(dt))
            continue;
        for (int f = 0; f < 32; f++) {
            if ((f & 6) && !(f & 1))
                continue;   /* Nesterov and dampening need momentum */
            if ((f & 2) && (f & 4))
                continue;   /* Nesterov needs zero dampening */
            for (size_t k = 0; k < NELEMS(shapes); k++)
                if (f == 27 || k < NELEMS(shapes) - 1)   /* the large one: all but dampening */
                    sgd_case(r, dt, f, shapes[k].nd, shapes[k].shape);
        }
    }
}
