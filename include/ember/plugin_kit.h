/* include/ember/plugin_kit.h — small helpers for backend plugins, the code every backend
 * otherwise writes again: dtype names and sizes, reading and parsing the entry's config
 * keys, the argument checks of gemm, and an odometer over strided kernel views. Plugin
 * side only: it uses nothing but <ember/backend.h> (the core never includes it), is
 * header-only (static inline: nothing to link, nothing exported), and compiles as C11 and
 * as C++ (a .cu file built by nvcc). The first-party backends and the plugin template use
 * it; docs/writing-a-backend.md describes it. */
#ifndef EMBER_PLUGIN_KIT_H
#define EMBER_PLUGIN_KIT_H

#include <ember/backend.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ dtypes */

/* "f32", "f64", "bool", "i64", "i32", "u8"; "(invalid dtype)" for anything else. */
static inline const char *emk_dtype_name(int32_t dt)
{
    switch (dt) {
    case EM_F32: return "f32";
    case EM_F64: return "f64";
    case EM_BOOL: return "bool";
    case EM_I64: return "i64";
    case EM_I32: return "i32";
    case EM_U8: return "u8";
    default: return "(invalid dtype)";
    }
}

/* Bytes per element; 0 for an invalid dtype. */
static inline size_t emk_dtype_size(int32_t dt)
{
    switch (dt) {
    case EM_F32: return 4;
    case EM_F64: return 8;
    case EM_BOOL: return 1;
    case EM_I64: return 8;
    case EM_I32: return 4;
    case EM_U8: return 1;
    default: return 0;
    }
}

static inline int emk_dtype_is_float(int32_t dt)
{
    return dt == EM_F32 || dt == EM_F64;
}

/* The names of the dtypes in mask, ", "-separated ("f32, f64"), into buf (as many whole
 * names as fit). */
static inline const char *emk_dtype_list(em_dtype_mask mask, char *buf, size_t n)
{
    size_t used = 0;
    if (n)
        buf[0] = 0;
    for (int32_t dt = 0; dt < 32 && n; dt++) {
        if (!(mask & EM_DTYPE_BIT(dt)) || !emk_dtype_size(dt))
            continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", emk_dtype_name(dt));
        if (w < 0 || (size_t)w >= n - used) {
            buf[used] = 0;   /* whole names only */
            break;
        }
        used += (size_t)w;
    }
    return buf;
}

/* ------------------------------------------------------------------ config keys */

/* The value of `key` among the entry's config (the last one if repeated), or NULL. */
static inline const char *emk_config_value(const em_config_kv *config, size_t n_config,
                                           const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; config && i < n_config; i++)
        if (!strcmp(config[i].key, key))
            v = config[i].value;
    return v;
}

/* A plain non-negative decimal integer (digits only: no sign, space or suffix) no larger
 * than max. Returns 1 and sets *out; 0 when s is not such a number; -1 when it is larger
 * than max. Report the last two with EM_ERR_CONFIG and a message starting with the key
 * ("threads: expected ..."), so the core points at the key's line. */
static inline int emk_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!s || !*s)
        return 0;
    unsigned long long v = 0;
    int over = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        unsigned d = (unsigned)(*p - '0');
        if (over || d > max || v > (max - d) / 10)
            over = 1;   /* keep scanning: "99999x" is not a number, not a large one */
        else
            v = v * 10 + d;
    }
    if (over)
        return -1;
    *out = v;
    return 1;
}

/* ------------------------------------------------------------------ gemm */

/* The checks a gemm owes before it touches memory (<ember/backend.h>, em_gemm_args), with
 * messages naming the backend: arguments present, a dtype in `dtypes` (EM_DTYPE_BIT bits),
 * no negative size, each leading dimension covering its row (for matrices of more than one
 * row), the buffers present. Returns EM_OK, with *empty = 1 when there is nothing to
 * compute (m, n or batch 0: return EM_OK at once), or the error through host->error. */
static inline em_status emk_gemm_check(const em_host *host, em_host_ctx *hc, const char *backend,
                                       em_dtype_mask dtypes, const em_gemm_args *g, int *empty)
{
    *empty = 0;
    if (!g)
        return host->error(hc, EM_ERR_INVALID, "gemm: no arguments");
    if (g->dtype < 0 || g->dtype >= 32 || !(dtypes & EM_DTYPE_BIT(g->dtype))) {
        char list[64];
        return host->error(hc, EM_ERR_UNSUPPORTED,
                           "gemm: dtype %s is not supported by the %s backend (%s are)",
                           emk_dtype_name(g->dtype), backend, emk_dtype_list(dtypes, list, sizeof list));
    }
    if (g->m < 0 || g->n < 0 || g->k < 0 || g->batch < 0)
        return host->error(hc, EM_ERR_INVALID,
                           "gemm: negative size (m %lld, n %lld, k %lld, batch %lld)",
                           (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->batch);
    if (g->m == 0 || g->n == 0 || g->batch == 0) {
        *empty = 1;
        return EM_OK;
    }
    /* row widths each leading dim must cover (rows of more than one element) */
    const int64_t aw = g->trans_a ? g->m : g->k, ah = g->trans_a ? g->k : g->m;
    const int64_t bw = g->trans_b ? g->k : g->n, bh = g->trans_b ? g->n : g->k;
    if (g->k > 0 && ah > 1 && g->lda < aw)
        return host->error(hc, EM_ERR_INVALID, "gemm: lda %lld is less than the row width %lld",
                           (long long)g->lda, (long long)aw);
    if (g->k > 0 && bh > 1 && g->ldb < bw)
        return host->error(hc, EM_ERR_INVALID, "gemm: ldb %lld is less than the row width %lld",
                           (long long)g->ldb, (long long)bw);
    if (g->m > 1 && g->ldc < g->n)
        return host->error(hc, EM_ERR_INVALID, "gemm: ldc %lld is less than the row width %lld",
                           (long long)g->ldc, (long long)g->n);
    if (!g->c || (g->k > 0 && (!g->a || !g->b)))
        return host->error(hc, EM_ERR_INVALID, "gemm: a buffer is missing");
    return EM_OK;
}

/* ------------------------------------------------------------------ strided views */

/* An odometer over a shape carrying one element offset per view, for the elementwise
 * kernels: the core guarantees that out and every input have the same ndim and shape
 * (1 <= ndim <= EM_MAX_DIMS, at least one element), broadcast inputs have stride 0, and out
 * never partially overlaps an input, so one walk in any order serves every such kernel.
 *
 *     emk_walk w;
 *     emk_walk_kargs(&w, a, 2);            // out, in[0], in[1]
 *     do
 *         out[w.off[0]] = in0[w.off[1]] + in1[w.off[2]];
 *     while (emk_walk_next(&w));
 */
#define EMK_WALK_VIEWS 4

typedef struct emk_walk {
    int ndim;
    const int64_t *shape;
    int nviews;
    const int64_t *strides[EMK_WALK_VIEWS];
    int64_t idx[EM_MAX_DIMS];
    int64_t off[EMK_WALK_VIEWS];   /* the current element offset of each view */
} emk_walk;

static inline void emk_walk_start(emk_walk *w, int ndim, const int64_t *shape)
{
    w->ndim = ndim;
    w->shape = shape;
    w->nviews = 0;
    memset(w->idx, 0, sizeof w->idx);
}

/* Adds a view (at most EMK_WALK_VIEWS): its offset and strides, in elements. */
static inline void emk_walk_view(emk_walk *w, int64_t offset, const int64_t *strides)
{
    if (w->nviews == EMK_WALK_VIEWS)
        return;
    w->strides[w->nviews] = strides;
    w->off[w->nviews] = offset;
    w->nviews++;
}

/* Advances to the next element in row-major order; 0 after the last one. */
static inline int emk_walk_next(emk_walk *w)
{
    for (int d = w->ndim - 1; d >= 0; d--) {
        if (++w->idx[d] < w->shape[d]) {
            for (int v = 0; v < w->nviews; v++)
                w->off[v] += w->strides[v][d];
            return 1;
        }
        w->idx[d] = 0;
        for (int v = 0; v < w->nviews; v++)
            w->off[v] -= (w->shape[d] - 1) * w->strides[v][d];
    }
    return 0;
}

/* A walk over a->out (view 0) and its first n_in inputs (views 1 .. n_in, n_in <= 3). */
static inline void emk_walk_kargs(emk_walk *w, const em_kargs *a, int n_in)
{
    emk_walk_start(w, a->out->ndim, a->out->shape);
    emk_walk_view(w, a->out->offset, a->out->strides);
    for (int i = 0; i < n_in && i < EMK_WALK_VIEWS - 1; i++)
        emk_walk_view(w, a->in[i]->offset, a->in[i]->strides);
}

#endif
