/* core/dist/dist.c — the process group (<ember/dist.h>): [distributed] settings, joining
 * and leaving the group through the communication plugin, and the collectives on tensors
 * with their cross-rank signature check. The lifetime is the process's: MPI cannot be
 * initialised again after MPI_Finalize. */
#include "config.h"
#include "dist_impl.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ settings */

static const char *const dist_keys[] = {"backend", "timeout", "library", NULL};

em_status em__dist_read_settings(const em_config *cfg, bool apply_env, em__dist_settings *out)
{
    memset(out, 0, sizeof *out);
    strcpy(out->backend, "mpi");
    strcpy(out->backend_from, "the default");
    out->timeout_s = 600;
    for (int i = 0; cfg && i < cfg->n; i++) {
        const em__cfg_entry *e = &cfg->entries[i];
        if (strcmp(e->section, "distributed"))
            continue;
        char where[600];
        em__config_where(cfg, e, where, sizeof where);
        if (!strcmp(e->key, "backend")) {
            if (!em__valid_backend_name(e->value))
                return em__error_global(EM_ERR_CONFIG, "%s: [distributed] backend: '%s' is not "
                                        "a plugin name (lower-case letters, digits, '_' and "
                                        "'-'; e.g. mpi or nccl)", where, e->value);
            em__snprintf(out->backend, sizeof out->backend, "%s", e->value);
            em__snprintf(out->backend_from, sizeof out->backend_from, "%s", where);
        } else if (!strcmp(e->key, "timeout")) {
            char *end;
            errno = 0;
            double v = strtod(e->value, &end);
            if (!*e->value || *end || errno || !isfinite(v) || v < 0)
                return em__error_global(EM_ERR_CONFIG, "%s: [distributed] timeout: expected "
                                        "seconds >= 0 (0: wait forever), got '%s'", where,
                                        e->value);
            out->timeout_s = v;
        } else if (!strcmp(e->key, "library")) {
            if (e->value[0] != '/')
                return em__error_global(EM_ERR_CONFIG, "%s: [distributed] library: '%s' is not "
                                        "an absolute path (the current directory is never "
                                        "searched)", where, e->value);
            out->library = e->value;
        } else {
            const char *s = em__suggest(dist_keys, e->key);
            return em__error_global(EM_ERR_CONFIG, "%s: [distributed] %s: unknown key "
                                    "(accepted in [distributed]: backend, timeout, library)%s%s%s",
                                    where, e->key, s ? "; did you mean '" : "", s ? s : "",
                                    s ? "'?" : "");
        }
    }
    const char *env = apply_env ? em__getenv("EMBER_DIST") : NULL;
    if (env && *env) {
        if (!em__valid_backend_name(env))
            return em__error_global(EM_ERR_CONFIG, "EMBER_DIST='%s' is not a plugin name (e.g. "
                                    "mpi or nccl)", env);
        em__snprintf(out->backend, sizeof out->backend, "%s", env);
        strcpy(out->backend_from, "EMBER_DIST");
    }
    return EM_OK;
}

/* ------------------------------------------------------------------ the group */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static em_dist *g_dist;
static bool g_finalized;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static em_status open_group(const em_dist_options *opt, em_dist **out)
{
    em_config *cfg = NULL;
    em_status st = em__config_load_for_context(opt ? opt->config : NULL, &cfg);
    if (st != EM_OK)
        return st;
    em__resolved r;
    if ((st = em__config_resolve(cfg, &r, false)) != EM_OK) {
        em_config_free(cfg);
        return st;
    }
    em__dist_settings s;
    st = em__dist_read_settings(cfg, true, &s);
    if (st == EM_OK && opt && opt->backend) {
        if (!em__valid_backend_name(opt->backend))
            st = em__error_global(EM_ERR_INVALID, "em_dist_init: backend '%s' is not a plugin "
                                  "name", opt->backend);
        em__snprintf(s.backend, sizeof s.backend, "%s", opt->backend);
        s.library = NULL;
    }
    if (st == EM_OK && opt && opt->timeout_s > 0)
        s.timeout_s = opt->timeout_s;
    char path[PATH_MAX + 80], msg[2048];
    if (st == EM_OK) {
        st = em__comm_find(cfg, &r, s.backend, s.library, path, sizeof path, msg, sizeof msg);
        if (st != EM_OK)
            st = em__error_global(st, "em_dist_init: %s (backend set by %s)", msg,
                                  s.backend_from);
    }
    em__resolved_free(&r);
    em_config_free(cfg);
    if (st != EM_OK)
        return st;
    em_dist *d = em__calloc(1, sizeof *d);
    if (!d)
        return em__error_global(EM_ERR_OOM, "em_dist_init: out of memory");
    em_comm_init init = {.struct_size = sizeof init, .timeout_s = s.timeout_s};
    em_load_stage stage;
    st = em__comm_open(s.backend, path, &init, &d->comm, &stage, msg, sizeof msg);
    if (st != EM_OK) {
        free(d);
        return em__error_global(st, "em_dist_init: %s (stage %s)", msg, em_load_stage_name(stage));
    }
    pthread_mutex_init(&d->lock, NULL);
    d->refs = 1;
    d->rank = d->comm->be.rank;
    d->world = d->comm->be.world_size;
    d->timeout_s = s.timeout_s;
    d->stats.struct_size = sizeof d->stats;
    *out = d;
    return EM_OK;
}

EMBER_API em_status em_dist_init(em_dist **out, const em_dist_options *opt)
{
    if (!out)
        return em__error_global(EM_ERR_INVALID, "em_dist_init: out is NULL");
    *out = NULL;
    em_dist_options o = {0};
    if (opt)   /* struct_size 0: the struct of this header (a compound literal leaves it 0) */
        memcpy(&o, opt, opt->struct_size && opt->struct_size < sizeof o ? opt->struct_size
                                                                         : sizeof o);
    pthread_mutex_lock(&g_lock);
    em_status st = EM_OK;
    if (g_dist) {
        if (o.backend && strcmp(o.backend, g_dist->comm->name))
            st = em__error_global(EM_ERR_INVALID, "em_dist_init: this process already belongs "
                                  "to a '%s' group; it cannot join a '%s' one too",
                                  g_dist->comm->name, o.backend);
        else {
            g_dist->refs++;
            *out = g_dist;
        }
    } else if (g_finalized) {
        st = em__error_global(EM_ERR_INVALID, "em_dist_init: the process group was finalized; "
                              "MPI cannot be initialised again in the same process (keep the "
                              "group until the process ends)");
    } else if ((st = open_group(&o, &g_dist)) == EM_OK) {
        *out = g_dist;
    }
    pthread_mutex_unlock(&g_lock);
    return st;
}

EMBER_API em_status em_dist_finalize(em_dist *d)
{
    if (!d)
        return EM_OK;
    pthread_mutex_lock(&g_lock);
    if (d != g_dist) {
        pthread_mutex_unlock(&g_lock);
        return em__error_global(EM_ERR_INVALID, "em_dist_finalize: not a live process group");
    }
    if (--d->refs == 0) {
        em__comm_close(d->comm, true);
        pthread_mutex_destroy(&d->lock);
        free(d);
        g_dist = NULL;
        g_finalized = true;
    }
    pthread_mutex_unlock(&g_lock);
    return EM_OK;
}

EMBER_API int em_dist_rank(const em_dist *d) { return d ? d->rank : -1; }
EMBER_API int em_dist_world_size(const em_dist *d) { return d ? d->world : -1; }
EMBER_API const char *em_dist_backend(const em_dist *d) { return d ? d->comm->name : NULL; }
EMBER_API double em_dist_timeout(const em_dist *d) { return d ? d->timeout_s : 0; }

EMBER_API const char *em_dist_backend_version(const em_dist *d)
{
    return d ? (d->comm->be.version ? d->comm->be.version : "") : NULL;
}

EMBER_API const char *em_dist_thread_level(const em_dist *d)
{
    return d ? (d->comm->be.thread_text ? d->comm->be.thread_text : "") : NULL;
}

EMBER_API em_status em_dist_get_stats(const em_dist *d, em_dist_stats *out)
{
    if (!d || !out)
        return em__error_global(EM_ERR_INVALID, "em_dist_get_stats: %s is NULL",
                                d ? "out" : "the group");
    size_t n = out->struct_size && out->struct_size < sizeof *out ? out->struct_size : sizeof *out;
    pthread_mutex_lock((pthread_mutex_t *)&d->lock);
    em_dist_stats s = d->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
    s.struct_size = n;
    memcpy(out, &s, n);
    return EM_OK;
}

/* ------------------------------------------------------------------ calls */

static const char *kind_name(int64_t k)
{
    switch (k) {
    case EM__C_ALL_REDUCE: return "all_reduce_";
    case EM__C_BROADCAST: return "broadcast_";
    case EM__C_ALL_GATHER: return "all_gather";
    case EM__C_REDUCE_SCATTER: return "reduce_scatter";
    case EM__C_BARRIER: return "barrier";
    case EM__C_DDP: return "ddp gradient sync";
    }
    return "?";
}

em_status em__dist_call(em_dist *d, em_context *ctx, const char *opname, int kind,
                        em_comm_args *a)
{
    em__comm *c = d->comm;
    em_status (*fn)(void *, const em_comm_args *) =
        kind == EM__C_BROADCAST ? c->ops.broadcast : kind == EM__C_ALL_GATHER ? c->ops.all_gather
        : kind == EM__C_REDUCE_SCATTER ? c->ops.reduce_scatter
        : kind == EM__C_BARRIER ? c->ops.barrier : c->ops.all_reduce;
    a->struct_size = sizeof *a;
    c->last_msg[0] = 0;
    double t0 = now();
    em_status st = fn(c->be.ctx, a);
    d->stats.seconds += now() - t0;
    d->stats.collectives++;
    size_t es = a->count ? em_dtype_size((em_dtype)a->dtype) : 0;
    d->stats.bytes += (uint64_t)(a->count * es * (kind == EM__C_REDUCE_SCATTER ? (size_t)d->world : 1));
    if (st == EM_OK)
        return EM_OK;
    if ((unsigned)st > EM_ERR_INTERNAL)
        st = EM_ERR_BACKEND;
    const char *m = c->last_msg[0] ? c->last_msg : "the communication plugin gave no reason";
    return ctx ? em__error(ctx, st, "%s: %s", opname, m) : em__error_global(st, "%s: %s", opname, m);
}

em_status em__dist_check(em_dist *d, em_context *ctx, const char *opname, const char *what,
                         const int64_t *sig, int n, void (*describe)(const int64_t *sig, char *buf, size_t len))
{
    if (d->world == 1)
        return EM_OK;
    int64_t *all = em__calloc((size_t)d->world * (size_t)n, sizeof *all);
    if (!all)
        return ctx ? em__error(ctx, EM_ERR_OOM, "%s: out of memory", opname)
                   : em__error_global(EM_ERR_OOM, "%s: out of memory", opname);
    char label[400];
    em__snprintf(label, sizeof label, "the ranks' signatures before %s of %s", opname, what);
    em_comm_args a = {.dtype = EM_I64, .mem = EM_COMM_MEM_HOST, .send = sig, .recv = all,
                      .count = (size_t)n, .what = label};
    em_status st = em__dist_call(d, ctx, opname, EM__C_ALL_GATHER, &a);
    int bad = -1;
    for (int r = 1; st == EM_OK && r < d->world && bad < 0; r++)
        if (memcmp(all, all + (size_t)r * (size_t)n, sizeof *all * (size_t)n))
            bad = r;
    if (bad >= 0) {
        char list[900] = "", one[160];
        size_t used = 0;
        int shown = 0;
        for (int r = 0; r < d->world && used < sizeof list; r++) {
            bool differs = memcmp(all, all + (size_t)r * (size_t)n, sizeof *all * (size_t)n);
            if (r != 0 && !differs && r != d->rank)
                continue;
            if (shown == 6) {
                used += (size_t)snprintf(list + used, sizeof list - used, ", ...");
                break;
            }
            describe(all + (size_t)r * (size_t)n, one, sizeof one);
            used += (size_t)snprintf(list + used, sizeof list - used, "%srank %d%s: %s",
                                     shown ? "; " : "", r, r == d->rank ? " (this one)" : "", one);
            shown++;
        }
        const char *fmt = "%s: the ranks disagree (every rank must call the same collective on "
                          "the same dtype and shape): %s";
        st = ctx ? em__error(ctx, EM_ERR_SHAPE, fmt, opname, list)
                 : em__error_global(EM_ERR_SHAPE, fmt, opname, list);
    }
    free(all);
    return st;
}

/* sig: kind, dtype, param, ndim, shape[EM_MAX_DIMS] */
enum { SIG_N = 4 + EM_MAX_DIMS };

static void tensor_sig(int kind, const em__tensor *t, int64_t param, int64_t *sig)
{
    memset(sig, 0, sizeof *sig * SIG_N);
    sig[0] = kind;
    sig[1] = t->dtype;
    sig[2] = param;
    sig[3] = t->ndim;
    for (int i = 0; i < t->ndim; i++)
        sig[4 + i] = t->shape[i];
}

static void describe_sig(const int64_t *sig, char *buf, size_t len)
{
    char shape[200];
    int64_t sh[EM_MAX_DIMS];
    int nd = sig[3] >= 0 && sig[3] <= EM_MAX_DIMS ? (int)sig[3] : 0;
    for (int i = 0; i < nd; i++)
        sh[i] = sig[4 + i];
    em__shape_str(nd, sh, shape, sizeof shape);
    const char *dt = em_dtype_name((em_dtype)sig[1]);
    if (sig[0] == EM__C_BROADCAST)
        em__snprintf(buf, len, "%s of %s%s from root %lld", kind_name(sig[0]), dt ? dt : "?",
                     shape, (long long)sig[2]);
    else
        em__snprintf(buf, len, "%s of %s%s", kind_name(sig[0]), dt ? dt : "?", shape);
}

static void tensor_what(const em__tensor *t, char *buf, size_t n)
{
    char shape[200];
    em__shape_str(t->ndim, t->shape, shape, sizeof shape);
    em__snprintf(buf, n, "tensor %s%s (%lld bytes)", em_dtype_name(t->dtype), shape,
                 (long long)(em__numel(t->ndim, t->shape) * (int64_t)em_dtype_size(t->dtype)));
}

em_status em__dist_inplace(em_dist *d, const char *opname, int kind, em__tensor *t, int op,
                           int root, const char *what)
{
    em_context *ctx = t->ctx;
    size_t es = em_dtype_size(t->dtype);
    int64_t numel = em__numel(t->ndim, t->shape);
    if (numel == 0)
        return EM_OK;
    size_t bytes = (size_t)numel * es;
    em_comm_args a = {.dtype = t->dtype, .op = op, .root = root, .count = (size_t)numel,
                      .what = what};
    const char *devb = d->comm->be.device_backend;
    bool contig = em__is_contiguous(t);
    bool host_bufs = ctx->props.flags & EM_DEVICE_HOST_BUFFERS;
    em_status st;
    if (contig && (host_bufs || (devb && !strcmp(devb, ctx->backend_name)))) {
        if ((st = em__async_synchronize(ctx)) != EM_OK)
            return st;
        if (host_bufs) {
            a.mem = EM_COMM_MEM_HOST;
            a.send = a.recv = (char *)t->storage->buf + (size_t)t->offset * es;
        } else {
            a.mem = EM_COMM_MEM_DEVICE;
            a.send = a.recv = t->storage->buf;
            a.send_offset = a.recv_offset = (size_t)t->offset * es;
        }
        st = em__dist_call(d, ctx, opname, kind, &a);
        if (st == EM_OK)
            em__storage_bump(t->storage);
        return st;
    }
    void *host = em__malloc(bytes);
    if (!host)
        return em__error(ctx, EM_ERR_OOM, "%s: out of memory staging %zu bytes", opname, bytes);
    double t0 = now(), before = d->stats.seconds;
    st = em__to_host_as(t, t->dtype, host);
    a.mem = EM_COMM_MEM_HOST;
    a.send = a.recv = host;
    if (st == EM_OK)
        st = em__dist_call(d, ctx, opname, kind, &a);
    if (st == EM_OK) {
        /* back into t (any layout) without autograd, as a copy_ under no_grad */
        em_tensor *h = em__hold(em__tensor_ref(t));
        em_tensor *src = h ? em_tensor_from_data(ctx, t->dtype, t->ndim, t->shape, host) : NULL;
        em_no_grad_begin(ctx);
        st = src ? em_copy_(h, src) : em_context_status(ctx);
        em_no_grad_end(ctx);
        em_tensor_free(src);
        em__handle_release(h);
        if (st == EM_OK && em_context_status(ctx) != EM_OK)
            st = em_context_status(ctx);
    }
    d->stats.seconds = before + (now() - t0);   /* the staging counted too */
    free(host);
    return st;
}

/* Common checks of the tensor calls; the tensor object or NULL (error recorded). */
static em__tensor *check_args(em_dist *d, const char *opname, em_tensor *h, int op, bool reduce)
{
    if (!d) {
        em__error_global(EM_ERR_INVALID, "%s: the process group is NULL (call em_dist_init "
                         "first)", opname);
        return NULL;
    }
    if (!h) {
        em__error_global(EM_ERR_INVALID, "%s: the tensor is NULL", opname);
        return NULL;
    }
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    if (reduce && (op < EM_REDUCE_SUM || op > EM_REDUCE_MIN)) {
        em__error(t->ctx, EM_ERR_INVALID, "%s: unknown reduce op %d (EM_REDUCE_SUM, AVG, MAX "
                  "or MIN)", opname, op);
        return NULL;
    }
    if (reduce && t->dtype == EM_BOOL) {
        em__error(t->ctx, EM_ERR_DTYPE, "%s: cannot reduce a bool tensor (convert it to an "
                  "integer dtype first)", opname);
        return NULL;
    }
    if (reduce && op == EM_REDUCE_AVG && !em_dtype_is_floating(t->dtype)) {
        em__error(t->ctx, EM_ERR_DTYPE, "%s: EM_REDUCE_AVG needs a floating-point tensor, got %s "
                  "(use EM_REDUCE_SUM)", opname, em_dtype_name(t->dtype));
        return NULL;
    }
    return t;
}

/* The status check_args recorded. */
static em_status failed(em_dist *d, em_tensor *h)
{
    if (!d || !h)
        return EM_ERR_INVALID;
    em_context *ctx = em_tensor_context(h);
    em_status st = ctx ? em_context_status(ctx) : EM_ERR_FREED;
    return st != EM_OK ? st : EM_ERR_FREED;
}

EMBER_API em_status em_dist_all_reduce_(em_dist *d, em_tensor *h, em_reduce_op op)
{
    static const char name[] = "em_dist_all_reduce_";
    em__tensor *t = check_args(d, name, h, op, true);
    if (!t)
        return failed(d, h);
    int64_t sig[SIG_N];
    tensor_sig(EM__C_ALL_REDUCE, t, op, sig);
    char what[300];
    tensor_what(t, what, sizeof what);
    pthread_mutex_lock(&d->lock);
    em_status st = em__dist_check(d, t->ctx, name, what, sig, SIG_N, describe_sig);
    if (st == EM_OK)
        st = em__dist_inplace(d, name, EM__C_ALL_REDUCE, t, op, 0, what);
    pthread_mutex_unlock(&d->lock);
    return st;
}

EMBER_API em_status em_dist_broadcast_(em_dist *d, em_tensor *h, int root)
{
    static const char name[] = "em_dist_broadcast_";
    em__tensor *t = check_args(d, name, h, 0, false);
    if (!t)
        return failed(d, h);
    if (root < 0 || root >= d->world)
        return em__error(t->ctx, EM_ERR_INVALID, "%s: root %d is not a rank of this group "
                         "(world size %d)", name, root, d->world);
    int64_t sig[SIG_N];
    tensor_sig(EM__C_BROADCAST, t, root, sig);
    char what[300];
    tensor_what(t, what, sizeof what);
    pthread_mutex_lock(&d->lock);
    em_status st = em__dist_check(d, t->ctx, name, what, sig, SIG_N, describe_sig);
    if (st == EM_OK)
        st = em__dist_inplace(d, name, EM__C_BROADCAST, t, 0, root, what);
    pthread_mutex_unlock(&d->lock);
    return st;
}

/* all_gather and reduce_scatter: through host memory, into a new tensor. */
static em_status gather_scatter(em_dist *d, const char *name, int kind, em_tensor *h, int op,
                                em_tensor **out)
{
    if (out)
        *out = NULL;
    em__tensor *t = check_args(d, name, h, op, kind == EM__C_REDUCE_SCATTER);
    if (!t)
        return failed(d, h);
    em_context *ctx = t->ctx;
    if (!out)
        return em__error(ctx, EM_ERR_INVALID, "%s: out is NULL", name);
    int nd = t->ndim ? t->ndim : 1;
    int64_t shape[EM_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++)
        shape[i] = t->shape[i];
    if (!t->ndim)
        shape[0] = 1;
    if (kind == EM__C_ALL_GATHER) {
        shape[0] *= d->world;
    } else {
        if (t->ndim == 0 || t->shape[0] % d->world)
            return em__error(ctx, EM_ERR_SHAPE, "%s: the first dimension (%lld) must be a "
                             "multiple of the world size %d", name,
                             (long long)(t->ndim ? t->shape[0] : 0), d->world);
        shape[0] /= d->world;
    }
    int64_t sig[SIG_N];
    tensor_sig(kind, t, op, sig);
    char what[300];
    tensor_what(t, what, sizeof what);
    size_t es = em_dtype_size(t->dtype);
    size_t in_n = (size_t)em__numel(t->ndim, t->shape), out_n = (size_t)em__numel(nd, shape);
    void *in = em__malloc(in_n * es + 1), *res = em__malloc(out_n * es + 1);
    em_status st = EM_OK;
    if (!in || !res)
        st = em__error(ctx, EM_ERR_OOM, "%s: out of memory staging the tensors", name);
    pthread_mutex_lock(&d->lock);
    if (st == EM_OK)
        st = em__dist_check(d, ctx, name, what, sig, SIG_N, describe_sig);
    if (st == EM_OK)
        st = em__to_host_as(t, t->dtype, in);
    if (st == EM_OK && in_n) {
        em_comm_args a = {.dtype = t->dtype, .op = op, .mem = EM_COMM_MEM_HOST, .send = in,
                          .recv = res, .count = kind == EM__C_ALL_GATHER ? in_n : out_n,
                          .what = what};
        st = em__dist_call(d, ctx, name, kind, &a);
    }
    pthread_mutex_unlock(&d->lock);
    if (st == EM_OK) {
        *out = em_tensor_from_data(ctx, t->dtype, nd, shape, res);
        if (!*out)
            st = em_context_status(ctx) ? em_context_status(ctx) : EM_ERR_OOM;
    }
    free(in);
    free(res);
    return st;
}

EMBER_API em_status em_dist_all_gather(em_dist *d, em_tensor *t, em_tensor **out)
{
    return gather_scatter(d, "em_dist_all_gather", EM__C_ALL_GATHER, t, 0, out);
}

EMBER_API em_status em_dist_reduce_scatter(em_dist *d, em_tensor *t, em_reduce_op op,
                                           em_tensor **out)
{
    return gather_scatter(d, "em_dist_reduce_scatter", EM__C_REDUCE_SCATTER, t, op, out);
}

EMBER_API em_status em_dist_barrier(em_dist *d)
{
    if (!d)
        return em__error_global(EM_ERR_INVALID, "em_dist_barrier: the process group is NULL");
    em_comm_args a = {.mem = EM_COMM_MEM_HOST, .what = "barrier"};
    pthread_mutex_lock(&d->lock);
    em_status st = em__dist_call(d, NULL, "em_dist_barrier", EM__C_BARRIER, &a);
    pthread_mutex_unlock(&d->lock);
    return st;
}
