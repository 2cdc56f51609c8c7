/* core/io/checkpoint_optim.c — an optimizer's state_dict() as a safetensors file, laid out as
 * PyTorch's optimizer.state_dict() flattened (docs/pytorch-interop.md, "Optimizer state in
 * safetensors"):
 *   tensors       state.<i>.<name>           exp_avg, exp_avg_sq, max_exp_avg_sq (Adam, AdamW),
 *                                            square_avg, momentum_buffer, grad_avg (RMSprop),
 *                                            momentum_buffer (SGD); i = the parameter's index
 *   __metadata__  format = "ember.optimizer", version = "1", optimizer = "Adam" | ...,
 *                 state.<i>.step             the parameter's step count (decimal)
 *                 param_groups.0.params      "[0, 1, ..., n-1]"
 *                 param_groups.0.<option>    JSON text: doubles with %.17g (exact round trip),
 *                                            true / false, betas as "[b1, b2]"
 * em_optim_load checks everything (kind, parameter count, names, shapes, dtypes, options,
 * step counts) and reads every tensor before it replaces anything: all or nothing. */
#include "config.h"
#include "internal.h"
#include "optim/optim_impl.h"

#include <ember/io.h>
#include <ember/optim.h>

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_NAME "ember.optimizer"
#define FORMAT_VERSION "1"
#define NAME_MAX_ 64

static const char *const ADAM_STATE[EM__OPTIM_STATES] = {"exp_avg", "exp_avg_sq",
                                                        "max_exp_avg_sq"};
static const char *const RMS_STATE[EM__OPTIM_STATES] = {"square_avg", "momentum_buffer",
                                                       "grad_avg"};
static const char *const SGD_STATE[EM__OPTIM_STATES] = {"momentum_buffer", NULL, NULL};

static const char *const *state_names(const em_optim *o)
{
    return o->kind == EM__OPT_SGD ? SGD_STATE : o->kind == EM__OPT_RMSPROP ? RMS_STATE
                                                                          : ADAM_STATE;
}

/* ---------------------------------------------------------------- the options table */
typedef enum hp_type { HP_DOUBLE, HP_BOOL, HP_BETAS } hp_type;
typedef enum hp_check { HP_NOT_NAN, HP_NONNEG, HP_UNIT } hp_check;

typedef struct hp {
    const char *name;     /* PyTorch's param_groups key */
    hp_type type;
    hp_check check;
    const char *invalid;  /* PyTorch's "Invalid <what>" */
    double *d;            /* HP_DOUBLE, HP_BETAS (d, d2) */
    double *d2;
    bool *b;
} hp;

typedef struct hparams {
    em_adam_options adam;
    em_rmsprop_options rms;
    em_sgd_options sgd;
} hparams;

/* The options of kind in h as a table; returns its length. */
static int hp_table(em__optim_kind kind, hparams *h, hp *t)
{
    int n = 0;
    if (kind == EM__OPT_ADAM || kind == EM__OPT_ADAMW) {
        em_adam_options *a = &h->adam;
        t[n++] = (hp){"lr", HP_DOUBLE, HP_NONNEG, "learning rate", &a->lr, 0, 0};
        t[n++] = (hp){"betas", HP_BETAS, HP_UNIT, "beta parameter", &a->beta1, &a->beta2, 0};
        t[n++] = (hp){"eps", HP_DOUBLE, HP_NONNEG, "epsilon value", &a->eps, 0, 0};
        t[n++] = (hp){"weight_decay", HP_DOUBLE, HP_NONNEG, "weight_decay value",
                      &a->weight_decay, 0, 0};
        t[n++] = (hp){"amsgrad", HP_BOOL, 0, 0, 0, 0, &a->amsgrad};
        t[n++] = (hp){"maximize", HP_BOOL, 0, 0, 0, 0, &a->maximize};
    } else if (kind == EM__OPT_RMSPROP) {
        em_rmsprop_options *r = &h->rms;
        t[n++] = (hp){"lr", HP_DOUBLE, HP_NONNEG, "learning rate", &r->lr, 0, 0};
        t[n++] = (hp){"momentum", HP_DOUBLE, HP_NONNEG, "momentum value", &r->momentum, 0, 0};
        t[n++] = (hp){"alpha", HP_DOUBLE, HP_NONNEG, "alpha value", &r->alpha, 0, 0};
        t[n++] = (hp){"eps", HP_DOUBLE, HP_NONNEG, "epsilon value", &r->eps, 0, 0};
        t[n++] = (hp){"centered", HP_BOOL, 0, 0, 0, 0, &r->centered};
        t[n++] = (hp){"weight_decay", HP_DOUBLE, HP_NONNEG, "weight_decay value",
                      &r->weight_decay, 0, 0};
        t[n++] = (hp){"maximize", HP_BOOL, 0, 0, 0, 0, &r->maximize};
    } else {
        em_sgd_options *s = &h->sgd;
        t[n++] = (hp){"lr", HP_DOUBLE, HP_NONNEG, "learning rate", &s->lr, 0, 0};
        t[n++] = (hp){"momentum", HP_DOUBLE, HP_NONNEG, "momentum value", &s->momentum, 0, 0};
        t[n++] = (hp){"dampening", HP_DOUBLE, HP_NOT_NAN, "dampening value", &s->dampening, 0,
                      0};
        t[n++] = (hp){"weight_decay", HP_DOUBLE, HP_NONNEG, "weight_decay value",
                      &s->weight_decay, 0, 0};
        t[n++] = (hp){"nesterov", HP_BOOL, 0, 0, 0, 0, &s->nesterov};
        t[n++] = (hp){"maximize", HP_BOOL, 0, 0, 0, 0, &s->maximize};
    }
    return n;
}

#define HP_MAX 8

static void current_hparams(em_optim *o, hparams *h)
{
    memset(h, 0, sizeof *h);
    h->adam = o->adam;
    h->rms = o->rms;
    if (o->kind == EM__OPT_SGD)
        h->sgd = *em__sgd_options(o->sgd);
}

/* A double as JSON text that reads back exactly (strtod and Python's json both read it). */
static void fmt_double(char *buf, size_t n, double v)
{
    if (isnan(v))
        em__snprintf(buf, n, "NaN");
    else if (isinf(v))
        em__snprintf(buf, n, v < 0 ? "-Infinity" : "Infinity");
    else
        em__snprintf(buf, n, "%.17g", v);
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || (errno == ERANGE && isinf(v)))
        return false;
    *out = v;
    return true;
}

static bool parse_betas(const char *s, double *b1, double *b2)
{
    char buf[128];
    size_t len = strlen(s);
    if (len < 2 || len >= sizeof buf || s[0] != '[' || s[len - 1] != ']')
        return false;
    memcpy(buf, s + 1, len - 2);
    buf[len - 2] = '\0';
    char *comma = strchr(buf, ',');
    if (!comma)
        return false;
    *comma = '\0';
    char *a = buf, *b = comma + 1;
    while (*b == ' ')
        b++;
    return parse_double(a, b1) && parse_double(b, b2);
}

/* ---------------------------------------------------------------- common access */
static em_tensor *param_handle(const em_optim *o, int i)
{
    return o->kind == EM__OPT_SGD ? em__sgd_param(o->sgd, i) : o->params[i];
}

static em_tensor *state_handle(const em_optim *o, int i, int k)
{
    if (o->kind == EM__OPT_SGD)
        return k == 0 ? em__sgd_momentum(o->sgd, i) : NULL;
    return o->state[i][k];
}

/* Every parameter and state tensor alive; *ctx the parameters' context. */
static em_status live(em_optim *o, const char *what, em_context **ctx)
{
    *ctx = NULL;
    for (int i = 0; i < o->n; i++) {
        em__tensor *p = em__obj(param_handle(o, i));
        if (!p)
            return *ctx ? em__error(*ctx, EM_ERR_FREED, "%s: parameter %d of %s is gone", what,
                                    i, o->name)
                        : EM_ERR_FREED;
        if (!*ctx)
            *ctx = p->ctx;
        for (int k = 0; k < EM__OPTIM_STATES; k++) {
            em_tensor *s = state_handle(o, i, k);
            if (s && !em__obj(s))
                return em__error(*ctx, EM_ERR_FREED, "%s: a state tensor of %s is gone", what,
                                 o->name);
        }
    }
    return EM_OK;
}

static bool reserved_key(const char *k)
{
    return !strcmp(k, "format") || !strcmp(k, "version") || !strcmp(k, "optimizer") ||
           !strncmp(k, "state.", 6) || !strncmp(k, "param_groups.", 13);
}

/* "[0, 1, ..., n-1]" (malloc'd) */
static char *params_list(int n)
{
    size_t cap = 3 + (size_t)n * 13;
    char *s = em__malloc(cap);
    if (!s)
        return NULL;
    size_t len = 0;
    s[len++] = '[';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, i ? ", %d" : "%d", i);
    s[len++] = ']';
    s[len] = '\0';
    return s;
}

/* ---------------------------------------------------------------- save */
typedef struct strlist {
    char **s;
    int n, cap;
    bool oom;
} strlist;

static void sl_add(strlist *l, const char *fmt, ...) EM_PRINTF(2, 3);
static void sl_add(strlist *l, const char *fmt, ...)
{
    if (l->oom)
        return;
    if (l->n + 2 > l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        char **s = em__realloc(l->s, sizeof *s * (size_t)cap);
        if (!s) {
            l->oom = true;
            return;
        }
        l->s = s;
        l->cap = cap;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *str = k >= 0 && (size_t)k < sizeof buf ? em__strdup(buf) : NULL;
    if (!str) {
        l->oom = true;
        return;
    }
    l->s[l->n++] = str;
    l->s[l->n] = NULL;
}

static void sl_free(strlist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
}

EMBER_API em_status em_optim_save(em_optim *o, const char *path, const char *const *metadata_kv)
{
    if (!o)
        return em__error_global(EM_ERR_INVALID, "em_optim_save: NULL optimizer");
    em_context *ctx;
    em_status st = live(o, "em_optim_save", &ctx);
    if (st != EM_OK)
        return st;
    if (!path || !*path)
        return em__error(ctx, EM_ERR_INVALID, "em_optim_save: no path given");
    for (int i = 0; metadata_kv && metadata_kv[i]; i += 2) {
        if (!metadata_kv[i + 1])
            return em__error(ctx, EM_ERR_INVALID, "em_optim_save: '%s': metadata key '%s' has "
                             "no value", path, metadata_kv[i]);
        if (reserved_key(metadata_kv[i]))
            return em__error(ctx, EM_ERR_INVALID, "em_optim_save: '%s': metadata key '%s' is "
                             "reserved for the optimizer's state (format, version, optimizer, "
                             "state.*, param_groups.*)", path, metadata_kv[i]);
    }
    strlist meta = {0};
    for (int i = 0; metadata_kv && metadata_kv[i]; i++)
        sl_add(&meta, "%s", metadata_kv[i]);
    sl_add(&meta, "format");
    sl_add(&meta, FORMAT_NAME);
    sl_add(&meta, "version");
    sl_add(&meta, FORMAT_VERSION);
    sl_add(&meta, "optimizer");
    sl_add(&meta, "%s", o->name);
    char *plist = params_list(o->n);
    sl_add(&meta, "param_groups.0.params");
    sl_add(&meta, "%s", plist ? plist : "");
    meta.oom |= !plist;
    free(plist);
    hparams h;
    current_hparams(o, &h);
    hp t[HP_MAX];
    int nt = hp_table(o->kind, &h, t);
    for (int j = 0; j < nt; j++) {
        char a[40], b[40];
        sl_add(&meta, "param_groups.0.%s", t[j].name);
        if (t[j].type == HP_BOOL) {
            sl_add(&meta, "%s", *t[j].b ? "true" : "false");
        } else if (t[j].type == HP_BETAS) {
            fmt_double(a, sizeof a, *t[j].d);
            fmt_double(b, sizeof b, *t[j].d2);
            sl_add(&meta, "[%s, %s]", a, b);
        } else {
            fmt_double(a, sizeof a, *t[j].d);
            sl_add(&meta, "%s", a);
        }
    }
    for (int i = 0; o->kind != EM__OPT_SGD && i < o->n; i++)
        if (o->steps[i] > 0) {
            sl_add(&meta, "state.%d.step", i);
            sl_add(&meta, "%lld", (long long)o->steps[i]);
        }
    char (*names)[NAME_MAX_] = em__calloc((size_t)o->n * EM__OPTIM_STATES + 1, sizeof *names);
    const char **np = em__calloc((size_t)o->n * EM__OPTIM_STATES + 1, sizeof *np);
    em_tensor **ts = em__calloc((size_t)o->n * EM__OPTIM_STATES + 1, sizeof *ts);
    if (meta.oom || !names || !np || !ts) {
        st = em__error(ctx, EM_ERR_OOM, "em_optim_save: '%s': out of memory", path);
    } else {
        const char *const *sn = state_names(o);
        int nn = 0;
        for (int i = 0; i < o->n; i++)
            for (int k = 0; k < EM__OPTIM_STATES; k++) {
                em_tensor *s = state_handle(o, i, k);
                if (!s)
                    continue;
                em__snprintf(names[nn], NAME_MAX_, "state.%d.%s", i, sn[k]);
                np[nn] = names[nn];
                ts[nn++] = s;
            }
        st = em_save_safetensors(path, np, ts, nn, (const char *const *)meta.s);
        if (st != EM_OK && nn == 0 && em__failed(ctx) == EM_OK)   /* the error went to em_last_error */
            em__error(ctx, st, "%s", em_last_error());
    }
    free(names);
    free(np);
    free(ts);
    sl_free(&meta);
    return st;
}

/* ---------------------------------------------------------------- load */
/* The options of the file into h (starting from the optimizer's own), checked. */
static em_status read_hparams(em_optim *o, em_context *ctx, em_safetensors *sf,
                              const char *path, hparams *h)
{
    current_hparams(o, h);
    hp t[HP_MAX];
    int nt = hp_table(o->kind, h, t);
    for (int j = 0; j < nt; j++) {
        char key[NAME_MAX_];
        em__snprintf(key, sizeof key, "param_groups.0.%s", t[j].name);
        const char *v = em_safetensors_metadata(sf, key);
        if (!v)
            return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': metadata key '%s' is "
                             "missing (a %s state_dict has it)", path, key, o->name);
        bool ok;
        if (t[j].type == HP_BOOL) {
            ok = !strcmp(v, "true") || !strcmp(v, "false");
            if (ok)
                *t[j].b = !strcmp(v, "true");
        } else if (t[j].type == HP_BETAS) {
            ok = parse_betas(v, t[j].d, t[j].d2);
        } else {
            ok = parse_double(v, t[j].d);
        }
        if (!ok)
            return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': metadata %s = '%s' is "
                             "not a %s", path, key, v, t[j].type == HP_BOOL ? "boolean (true or "
                             "false)" : t[j].type == HP_BETAS ? "pair [beta1, beta2]"
                             : "number");
        for (int w = 0; t[j].type != HP_BOOL && w < (t[j].type == HP_BETAS ? 2 : 1); w++) {
            double x = w ? *t[j].d2 : *t[j].d;
            bool good = t[j].check == HP_NOT_NAN ? !isnan(x)
                      : t[j].check == HP_NONNEG ? x >= 0 : x >= 0 && x < 1;
            if (good)
                continue;
            char b[64];
            em__pyfloat(b, sizeof b, x);
            if (t[j].type == HP_BETAS)
                return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': %s: Invalid %s at "
                                 "index %d: %s", path, key, t[j].invalid, w, b);
            return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': %s: Invalid %s: %s",
                             path, key, t[j].invalid, b);
        }
    }
    if (o->kind == EM__OPT_SGD && h->sgd.nesterov &&
        (h->sgd.momentum <= 0 || h->sgd.dampening != 0))
        return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': Nesterov momentum requires "
                         "a momentum and zero dampening", path);
    return EM_OK;
}

/* The kind, format and parameter count of the file against o. */
static em_status check_header(em_optim *o, em_context *ctx, em_safetensors *sf,
                              const char *path)
{
    const char *f = em_safetensors_metadata(sf, "format");
    const char *v = em_safetensors_metadata(sf, "version");
    if (!f || strcmp(f, FORMAT_NAME))
        return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s' is not an optimizer state "
                         "file (its metadata has format %s%s%s, not '" FORMAT_NAME "')", path,
                         f ? "'" : "", f ? f : "(none)", f ? "'" : "");
    if (!v || strcmp(v, FORMAT_VERSION))
        return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': optimizer state format "
                         "version %s is not supported (this build reads version "
                         FORMAT_VERSION ")", path, v ? v : "(none)");
    const char *kind = em_safetensors_metadata(sf, "optimizer");
    if (!kind || strcmp(kind, o->name))
        return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s' holds the state of %s "
                         "optimizer, which cannot be loaded into %s", path,
                         kind ? kind : "no named", o->name);
    const char *pl = em_safetensors_metadata(sf, "param_groups.0.params");
    if (!pl)
        return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': metadata key "
                         "'param_groups.0.params' is missing", path);
    char *want = params_list(o->n);
    if (!want)
        return em__error(ctx, EM_ERR_OOM, "em_optim_load: out of memory");
    bool same = !strcmp(pl, want);
    free(want);
    if (same)
        return EM_OK;
    /* count the file's entries for the message */
    long count = 0;
    const char *p = pl;
    bool ok = *p++ == '[';
    while (ok && *p && *p != ']') {
        char *end;
        long idx = strtol(p, &end, 10);
        ok = end != p && idx == count;
        count++;
        p = end;
        if (*p == ',')
            p++;
        while (*p == ' ')
            p++;
    }
    if (!ok || *p != ']' || p[1])
        return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': param_groups.0.params = "
                         "'%s' is not a list [0, 1, ..., n-1]", path, pl);
    return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': loaded state dict contains a "
                     "parameter group that doesn't match the size of optimizer's group (%ld "
                     "parameters in the file, %d in the optimizer)", path, count, o->n);
}

/* "state.<i>.<rest>": i in [0, n) and rest, or false. */
static bool split_state(const char *name, int n, int *i, const char **rest)
{
    if (strncmp(name, "state.", 6))
        return false;
    const char *p = name + 6;
    if (*p < '0' || *p > '9' || (*p == '0' && p[1] != '.'))
        return false;
    char *end;
    long v = strtol(p, &end, 10);
    if (*end != '.' || v < 0 || v >= n)
        return false;
    *i = (int)v;
    *rest = end + 1;
    return true;
}

static int slot_of(const em_optim *o, const char *name)
{
    const char *const *sn = state_names(o);
    for (int k = 0; k < EM__OPTIM_STATES; k++)
        if (sn[k] && !strcmp(sn[k], name))
            return k;
    return -1;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t len = 0;
    len += (size_t)snprintf(buf + len, n - len, "[");
    for (int d = 0; d < ndim && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (len < n)
        snprintf(buf + len, n - len, "]");
}

/* The step counts of the file into steps[] (0 when absent), checked. */
static em_status read_steps(em_optim *o, em_context *ctx, em_safetensors *sf, const char *path,
                            int64_t *steps)
{
    int nm = em_safetensors_metadata_count(sf);
    for (int j = 0; j < nm; j++) {
        const char *key = em_safetensors_metadata_key(sf, j);
        if (strncmp(key, "state.", 6))
            continue;
        int i;
        const char *rest;
        if (!split_state(key, o->n, &i, &rest) || strcmp(rest, "step") ||
            o->kind == EM__OPT_SGD)
            return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': unexpected metadata "
                             "key '%s' (a %s with %d parameters keeps %s)", path, key, o->name,
                             o->n, o->kind == EM__OPT_SGD ? "no step counts"
                                                          : "state.<i>.step, i < n");
        const char *v = em_safetensors_metadata(sf, key);
        char *end;
        errno = 0;
        long long s = strtoll(v, &end, 10);
        if (end == v || *end || errno || s < 1)
            return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': metadata %s = '%s' is "
                             "not a step count (an integer >= 1)", path, key, v);
        steps[i] = s;
    }
    return EM_OK;
}

/* Names, dtypes and shapes of the file's tensors against o; which slots each parameter has. */
static em_status check_tensors(em_optim *o, em_context *ctx, em_safetensors *sf,
                               const char *path, bool (*has)[EM__OPTIM_STATES])
{
    int nf = em_safetensors_count(sf);
    for (int j = 0; j < nf; j++) {
        const char *name = em_safetensors_name(sf, j);
        int i, k = -1;
        const char *rest;
        if (split_state(name, o->n, &i, &rest))
            k = slot_of(o, rest);
        if (k < 0)
            return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': unexpected tensor '%s' "
                             "(a %s with %d parameters keeps state.<i>.<name>, i < %d, name "
                             "one of %s%s%s%s%s)", path, name, o->name, o->n, o->n,
                             state_names(o)[0], state_names(o)[1] ? ", " : "",
                             state_names(o)[1] ? state_names(o)[1] : "",
                             state_names(o)[2] ? ", " : "",
                             state_names(o)[2] ? state_names(o)[2] : "");
        const char *dt = em_safetensors_dtype(sf, j);
        if (strcmp(dt, "F32") && strcmp(dt, "F64") && strcmp(dt, "F16") && strcmp(dt, "BF16"))
            return em__error(ctx, EM_ERR_DTYPE, "em_optim_load: '%s': tensor '%s' has dtype %s; "
                             "state loads from F32, F64, F16 or BF16", path, name, dt);
        em__tensor *p = em__obj(param_handle(o, i));
        int nd = em_safetensors_ndim(sf, j);
        const int64_t *sh = em_safetensors_shape(sf, j);
        if (nd != p->ndim || (nd && memcmp(sh, p->shape, sizeof *sh * (size_t)nd))) {
            char a[256], b[256];
            shape_str(a, sizeof a, nd, sh);
            shape_str(b, sizeof b, p->ndim, p->shape);
            return em__error(ctx, EM_ERR_SHAPE, "em_optim_load: '%s': tensor '%s' has shape "
                             "%s, but parameter %d of the optimizer has shape %s", path, name,
                             a, i, b);
        }
        has[i][k] = true;
    }
    return EM_OK;
}

/* What each parameter's state must hold, given its step count and the loaded options. */
static em_status check_complete(em_optim *o, em_context *ctx, const char *path,
                                bool (*has)[EM__OPTIM_STATES], const int64_t *steps,
                                const hparams *h)
{
    if (o->kind == EM__OPT_SGD)
        return EM_OK;   /* a buffer exists from a parameter's first step with momentum */
    const char *const *sn = state_names(o);
    for (int i = 0; i < o->n; i++) {
        bool need[EM__OPTIM_STATES] = {true, false, false};
        if (o->kind == EM__OPT_RMSPROP) {
            need[1] = h->rms.momentum > 0;
            need[2] = h->rms.centered;
        } else {
            need[1] = true;
            need[2] = h->adam.amsgrad;
        }
        bool any = has[i][0] || has[i][1] || has[i][2];
        if (any && !steps[i])
            return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': parameter %d has state "
                             "tensors but no step count (metadata state.%d.step)", path, i, i);
        for (int k = 0; steps[i] && k < EM__OPTIM_STATES; k++)
            if (need[k] && !has[i][k])
                return em__error(ctx, EM_ERR_INVALID, "em_optim_load: '%s': parameter %d has "
                                 "taken %lld steps but its state has no tensor state.%d.%s",
                                 path, i, (long long)steps[i], i, sn[k]);
    }
    return EM_OK;
}

EMBER_API em_status em_optim_load(em_optim *o, const char *path)
{
    if (!o)
        return em__error_global(EM_ERR_INVALID, "em_optim_load: NULL optimizer");
    em_context *ctx;
    em_status st = live(o, "em_optim_load", &ctx);
    if (st != EM_OK)
        return st;
    if (!path || !*path)
        return em__error(ctx, EM_ERR_INVALID, "em_optim_load: no path given");
    em_safetensors *sf = NULL;
    st = em_safetensors_open(ctx, path, &sf);
    if (st != EM_OK)
        return st;
    hparams h;
    int64_t *steps = em__calloc((size_t)o->n, sizeof *steps);
    bool (*has)[EM__OPTIM_STATES] = em__calloc((size_t)o->n, sizeof *has);
    em_tensor *(*fresh)[EM__OPTIM_STATES] = em__calloc((size_t)o->n, sizeof *fresh);
    if (!steps || !has || !fresh)
        st = em__error(ctx, EM_ERR_OOM, "em_optim_load: out of memory");
    if (st == EM_OK)
        st = check_header(o, ctx, sf, path);
    if (st == EM_OK)
        st = read_hparams(o, ctx, sf, path, &h);
    if (st == EM_OK)
        st = read_steps(o, ctx, sf, path, steps);
    if (st == EM_OK)
        st = check_tensors(o, ctx, sf, path, has);
    if (st == EM_OK)
        st = check_complete(o, ctx, path, has, steps, &h);
    /* every tensor read (into the parameters' context, as their dtype) before anything changes */
    const char *const *sn = state_names(o);
    em_no_grad_begin(ctx);
    em_scope_begin(ctx);
    for (int i = 0; st == EM_OK && i < o->n; i++)
        for (int k = 0; st == EM_OK && k < EM__OPTIM_STATES; k++) {
            if (!has[i][k])
                continue;
            char name[NAME_MAX_];
            em__snprintf(name, sizeof name, "state.%d.%s", i, sn[k]);
            em_dtype pdt = em__obj(param_handle(o, i))->dtype;
            em_tensor *t = em_safetensors_load(sf, name, ctx);
            if (t && em_tensor_dtype(t) != pdt)
                t = em_to_dtype(t, pdt);
            /* a tensor of its own (from_data / to_dtype results), kept out of the scope */
            fresh[i][k] = t ? em_tensor_keep(t) : NULL;
            if (!fresh[i][k])
                st = em__failed(ctx) ? em__failed(ctx) : EM_ERR_INTERNAL;
        }
    em_scope_end(ctx);
    em_no_grad_end(ctx);
    if (st == EM_OK) {   /* commit: nothing below can fail */
        for (int i = 0; i < o->n; i++) {
            if (o->kind == EM__OPT_SGD) {
                em__sgd_set_momentum(o->sgd, i, fresh[i][0]);
                continue;
            }
            for (int k = 0; k < EM__OPTIM_STATES; k++) {
                em__handle_release(o->state[i][k]);
                o->state[i][k] = fresh[i][k];
            }
            o->steps[i] = steps[i];
        }
        if (o->kind == EM__OPT_SGD)
            *em__sgd_options(o->sgd) = h.sgd;
        else if (o->kind == EM__OPT_RMSPROP)
            o->rms = h.rms;
        else
            o->adam = h.adam;
    } else {
        for (int i = 0; fresh && i < o->n; i++)
            for (int k = 0; k < EM__OPTIM_STATES; k++)
                em_tensor_free(fresh[i][k]);
    }
    free(steps);
    free(has);
    free(fresh);
    em_safetensors_close(sf);
    return st;
}
