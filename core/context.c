/* core/context.c — context lifetime, scopes (ownership of temporaries), the random
 * generator state and the device buffer cache. The context owns everything made in it, so
 * em_context_free releases even tensors the user forgot. */
#include "config.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* fork(): a device context (OpenCL, CUDA) holds driver state that does not survive into a
 * child. Each context records the fork generation it was made in (bumped in every child by
 * a pthread_atfork handler); in a later generation a device context refuses all work (see
 * em__fork_guard) and em_context_free releases its host memory only. A cpu context works
 * on (the cpu backend rebuilds its thread pool in the child). */
static atomic_uint fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static void fork_register(void)
{
    pthread_atfork(NULL, NULL, fork_child);
}

static bool context_forked(const em_context *ctx)
{
    return !ctx->host_backend &&
           ctx->fork_gen != atomic_load_explicit(&fork_generation, memory_order_relaxed);
}

em_status em__fork_guard(em_context *ctx)
{
    if (!context_forked(ctx))
        return EM_OK;
    return em__error(ctx, EM_ERR_DEVICE, "backend %s: this context was created in process %ld; "
                     "device contexts cannot cross fork() (this is process %ld): create a new "
                     "context in the child", ctx->backend_name, (long)ctx->pid, (long)getpid());
}

static void noop_free(void *dev, void *p) { (void)dev; (void)p; }
static void noop_close(void *dev) { (void)dev; }
static em_status noop_sync(void *dev) { (void)dev; return EM_OK; }

/* In a child, a device context's driver objects belong to the parent: free() what is ours
 * and make no driver call (they could hang or crash, and would touch the parent's device
 * state). The plugin stays mapped: dlclose would run the driver's destructors. */
static void forget_driver(em_context *ctx)
{
    em_backend_ops *o = &ctx->plugin->ops;
    o->buffer_free = noop_free;
    o->host_free = noop_free;
    o->stream_destroy = noop_free;
    o->event_destroy = noop_free;
    o->synchronize = noop_sync;
    o->device_close = noop_close;
    o->shutdown = NULL;
    ctx->plugin->dl = NULL;
    em__layers_forget(ctx, o);
}

static em_status context_create(em_config *cfg, em_context **out)
{
    pthread_once(&fork_once, fork_register);
    em_context *ctx = em__calloc(1, sizeof *ctx);
    if (!ctx) {
        em_config_free(cfg);
        return em__error_global(EM_ERR_OOM, "out of memory creating a context");
    }
    ctx->cfg = cfg;
    ctx->grad_enabled = true;
    ctx->res.log_level = EM_LOG_WARN;
    ctx->print_precision = 4;
    ctx->print_threshold = 1000;
    ctx->print_edgeitems = 3;
    ctx->print_linewidth = 80;
    em_status st = em__backend_open(ctx);
    if (st != EM_OK) {
        em__resolved_free(&ctx->res);
        em_config_free(cfg);
        free(ctx->fallback_reason);
        free(ctx);
        return st;
    }
    ctx->host_backend = !strcmp(ctx->backend_name, "cpu");
    ctx->fork_gen = atomic_load_explicit(&fork_generation, memory_order_relaxed);
    ctx->pid = (long)getpid();
    em__announce_fallbacks(ctx);
    *out = ctx;
    return EM_OK;
}

EMBER_API em_status em_context_create(em_context **out, const char *config_path)
{
    if (!out)
        return em__error_global(EM_ERR_INVALID, "em_context_create: out is NULL");
    *out = NULL;
    em_config *cfg = NULL;
    em_status st = em__config_load_for_context(config_path, &cfg);
    if (st != EM_OK)
        return st;
    return context_create(cfg, out);
}

EMBER_API em_status em_context_create_with(em_context **out, const em_config *cfg)
{
    if (!out)
        return em__error_global(EM_ERR_INVALID, "em_context_create_with: out is NULL");
    *out = NULL;
    if (!cfg)
        return em__error_global(EM_ERR_INVALID, "em_context_create_with: cfg is NULL");
    em_config *copy = em__config_clone(cfg);
    if (!copy)
        return em__error_global(EM_ERR_OOM, "out of memory copying the configuration");
    return context_create(copy, out);
}

static void cache_drain(em_context *ctx)
{
    for (int i = 0; i < ctx->n_bins; i++) {
        em__cache_bin *b = &ctx->bins[i];
        for (int j = 0; j < b->n; j++)
            ctx->ops->buffer_free(ctx->dev, b->bufs[j]);
        ctx->mem_cached -= b->bytes * (size_t)b->n;
        b->n = 0;
    }
}

EMBER_API void em_context_free(em_context *ctx)
{
    if (!ctx)
        return;
    if (context_forked(ctx))
        forget_driver(ctx);
    /* Everything is released wholesale: no refcount walking, so cycles or forgotten
     * handles cannot leak. */
    for (int i = 0; i < ctx->cap_scopes; i++)
        free(ctx->scopes[i].items);
    free(ctx->scopes);
    for (em_node *n = ctx->nodes, *next; n; n = next) {
        next = n->live_next;
        free(n->geom);
        free(n);
    }
    free(ctx->node_free_stack);
    free(ctx->bw_order);
    free(ctx->bw_staged);
    free(ctx->bw_stack);
    em__async_free(ctx);
    /* every handle of the context goes stale before its object goes away */
    em__handles_context_free(ctx);
    for (em__tensor *t = ctx->tensor_live, *next; t; t = next) {
        next = t->live_next;
        free(t);
    }
    for (em__tensor *t = ctx->tensor_free, *next; t; t = next) {
        next = t->live_next;
        free(t);
    }
    for (em_storage *s = ctx->storages, *next; s; s = next) {
        next = s->next;
        if (s->buf)
            ctx->ops->buffer_free(ctx->dev, s->buf);
        free(s);
    }
    cache_drain(ctx);
    for (int i = 0; i < ctx->n_bins; i++)
        free(ctx->bins[i].bufs);
    free(ctx->bins);
    em__layers_close(ctx);   /* before the fallback: a layer may use it as its reference */
    em__fallback_free(ctx);
    em__backend_close(ctx);
    em__resolved_free(&ctx->res);
    em_config_free(ctx->cfg);
    free(ctx->fallback_reason);
    free(ctx);
}

EMBER_API const char *em_context_backend(const em_context *ctx)
{
    return ctx ? ctx->backend_name : NULL;
}

EMBER_API int em_context_device_index(const em_context *ctx)
{
    return ctx ? ctx->device_index : -1;
}

EMBER_API const char *em_context_device_name(const em_context *ctx)
{
    return ctx ? ctx->props.name : NULL;
}

EMBER_API const char *em_context_config_source(const em_context *ctx)
{
    return ctx && ctx->cfg ? ctx->cfg->source : NULL;
}

EMBER_API const char *em_context_fallback_reason(const em_context *ctx)
{
    return ctx ? ctx->fallback_reason : NULL;
}

EMBER_API void em_manual_seed(em_context *ctx, uint64_t seed)
{
    if (!ctx)
        return;
    ctx->seed = seed;
    ctx->counter = 0;
}

EMBER_API em_status em_synchronize(em_context *ctx)
{
    if (!ctx)
        return em__error_global(EM_ERR_INVALID, "em_synchronize: NULL context");
    return em__async_synchronize(ctx);
}

EMBER_API void em_context_empty_cache(em_context *ctx)
{
    if (ctx)
        cache_drain(ctx);
}

EMBER_API size_t em_context_memory_in_use(const em_context *ctx)
{
    return ctx ? ctx->mem_in_use : 0;
}

EMBER_API size_t em_context_memory_cached(const em_context *ctx)
{
    return ctx ? ctx->mem_cached : 0;
}

EMBER_API size_t em_context_memory_peak(const em_context *ctx)
{
    return ctx ? ctx->mem_peak : 0;
}

EMBER_API void em_context_reset_peak(em_context *ctx)
{
    if (ctx)
        ctx->mem_peak = ctx->mem_in_use;
}

EMBER_API void em_set_printoptions(em_context *ctx, int precision, int threshold, int edgeitems,
                                   int linewidth)
{
    if (!ctx)
        return;
    if (precision > EM__PRINT_MAX_PRECISION) {   /* the setting is kept */
        em__error(ctx, EM_ERR_INVALID, "em_set_printoptions: precision %d is above the largest "
                  "accepted, %d (a double has no more decimals)", precision,
                  EM__PRINT_MAX_PRECISION);
        precision = -1;
    }
    if (precision >= 0)
        ctx->print_precision = precision;
    if (threshold >= 0)
        ctx->print_threshold = threshold;
    if (edgeitems >= 0)
        ctx->print_edgeitems = edgeitems;
    if (linewidth >= 0)
        ctx->print_linewidth = linewidth;
}

/* ------------------------------------------------------------------------ scopes */

EMBER_API void em_scope_begin(em_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->n_scopes == ctx->cap_scopes) {
        int cap = ctx->cap_scopes ? ctx->cap_scopes * 2 : 8;
        em__scope *s = em__realloc(ctx->scopes, sizeof *s * (size_t)cap);
        if (!s) {
            /* Tensors then go to the enclosing scope; em_scope_end stays balanced. */
            ctx->scope_overflow++;
            em__error(ctx, EM_ERR_OOM, "em_scope_begin: out of memory");
            return;
        }
        memset(s + ctx->cap_scopes, 0, sizeof *s * (size_t)(cap - ctx->cap_scopes));
        ctx->scopes = s;
        ctx->cap_scopes = cap;
    }
    ctx->scopes[ctx->n_scopes++].n = 0;
}

EMBER_API void em_scope_end(em_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->scope_overflow > 0) {
        ctx->scope_overflow--;
        return;
    }
    if (ctx->n_scopes == 0) {
        em__error(ctx, EM_ERR_INVALID, "em_scope_end without a matching em_scope_begin");
        return;
    }
    em__scope *s = &ctx->scopes[ctx->n_scopes - 1];
    /* Release newest first: later temporaries tend to depend on earlier ones. The scope is
     * popped first, so nothing released below can land in it. */
    ctx->n_scopes--;
    for (int i = s->n - 1; i >= 0; i--)
        em__handle_release(s->items[i]);
    s->n = 0;
}

em_status em__scope_add(em_context *ctx, em_tensor *h)
{
    if (ctx->n_scopes == 0)
        return EM_OK;
    em__scope *s = &ctx->scopes[ctx->n_scopes - 1];
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        em_tensor **items = em__realloc(s->items, sizeof *items * (size_t)cap);
        if (!items)
            return em__error(ctx, EM_ERR_OOM, "out of memory registering a tensor in its scope");
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = h;
    return EM_OK;
}

/* Remove h's scope entry, innermost scope and newest entry first. */
static bool scope_take(em_context *ctx, em_tensor *h)
{
    for (int i = ctx->n_scopes - 1; i >= 0; i--) {
        em__scope *s = &ctx->scopes[i];
        for (int j = s->n - 1; j >= 0; j--) {
            if (s->items[j] == h) {
                memmove(s->items + j, s->items + j + 1, sizeof *s->items * (size_t)(s->n - j - 1));
                s->n--;
                return true;
            }
        }
    }
    return false;
}

EMBER_API void em_tensor_free(em_tensor *h)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return;
    scope_take(t->ctx, h);
    em__handle_release(h);
}

EMBER_API em_tensor *em_tensor_keep(em_tensor *h)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    scope_take(t->ctx, h);
    return h;
}

/* ------------------------------------------------------------------ buffer cache */

/* Size classes: 512-byte minimum, then four classes per power of two (<= 25% slack). */
static size_t size_class(size_t bytes)
{
    if (bytes <= 512)
        return 512;
    size_t p = (size_t)1 << (63 - __builtin_clzll((unsigned long long)bytes));
    size_t step = p >= 2048 ? p / 4 : 512;
    return (bytes + step - 1) / step * step;
}

static em__cache_bin *find_bin(em_context *ctx, size_t bytes, bool create)
{
    int lo = 0, hi = ctx->n_bins;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ctx->bins[mid].bytes < bytes)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < ctx->n_bins && ctx->bins[lo].bytes == bytes)
        return &ctx->bins[lo];
    if (!create)
        return NULL;
    if (ctx->n_bins == ctx->cap_bins) {
        int cap = ctx->cap_bins ? ctx->cap_bins * 2 : 16;
        em__cache_bin *b = em__realloc(ctx->bins, sizeof *b * (size_t)cap);
        if (!b)
            return NULL;
        ctx->bins = b;
        ctx->cap_bins = cap;
    }
    memmove(ctx->bins + lo + 1, ctx->bins + lo, sizeof *ctx->bins * (size_t)(ctx->n_bins - lo));
    ctx->bins[lo] = (em__cache_bin){.bytes = bytes};
    ctx->n_bins++;
    return &ctx->bins[lo];
}

em_status em__buffer_alloc(em_context *ctx, size_t bytes, void **buf)
{
    em_status fg = em__fork_guard(ctx);
    if (fg != EM_OK) {
        *buf = NULL;
        return fg;
    }
    size_t cls = size_class(bytes);
    em__cache_bin *b = find_bin(ctx, cls, false);
    if (ctx->layer_events)
        em__layer_mark(ctx, b && b->n > 0 ? EM_LAYER_CACHE_HIT : EM_LAYER_CACHE_MISS, NULL, EM_OK,
                       cls);
    if (b && b->n > 0) {
        *buf = b->bufs[--b->n];
        ctx->mem_cached -= cls;
        ctx->mem_in_use += cls;
        if (ctx->mem_in_use > ctx->mem_peak)
            ctx->mem_peak = ctx->mem_in_use;
        return EM_OK;
    }
    em_status st = EM_ERR_OOM;
    if (!em__fail_injected()) {
        st = ctx->ops->buffer_alloc(ctx->dev, cls, buf);
        if (st == EM_ERR_OOM && ctx->mem_cached > 0) {
            /* Cached buffers of other sizes may be what the device is missing. */
            cache_drain(ctx);
            ctx->plugin->last_msg[0] = 0;
            st = ctx->ops->buffer_alloc(ctx->dev, cls, buf);
        }
    }
    if (st != EM_OK) {
        *buf = NULL;
        if (st == EM_ERR_OOM) {
            ctx->plugin->last_msg[0] = 0;
            return em__error(ctx, EM_ERR_OOM, "out of memory allocating %zu bytes on %s:%d",
                             cls, ctx->backend_name, ctx->device_index);
        }
        return em__backend_failed(ctx, st, "buffer_alloc");
    }
    ctx->mem_in_use += cls;
    if (ctx->mem_in_use > ctx->mem_peak)
        ctx->mem_peak = ctx->mem_in_use;
    return EM_OK;
}

void em__buffer_release(em_context *ctx, void *buf, size_t bytes)
{
    if (!buf)
        return;
    size_t cls = size_class(bytes);
    ctx->mem_in_use -= cls;
    em__cache_bin *b = find_bin(ctx, cls, true);
    if (b && b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 8;
        void **bufs = em__realloc(b->bufs, sizeof *bufs * (size_t)cap);
        if (bufs) {
            b->bufs = bufs;
            b->cap = cap;
        }
    }
    if (!b || b->n == b->cap) {
        ctx->ops->buffer_free(ctx->dev, buf);   /* cannot cache: give it back */
        return;
    }
    b->bufs[b->n++] = buf;
    ctx->mem_cached += cls;
}

em_status em__backend_failed(em_context *ctx, em_status st, const char *what)
{
    em_plugin *p = ctx->plugin;
    /* a failure reported as EM_OK, or with a number outside em_status (as the loader treats
     * init's): EM_ERR_BACKEND, the raw value in the message */
    char raw[96] = "";
    if (st == EM_OK || (unsigned)st > EM_ERR_INTERNAL) {
        em__snprintf(raw, sizeof raw, " (the backend returned status %d, which is not an "
                     "em_status error)", (int)st);
        st = EM_ERR_BACKEND;
    }
    if (p && p->last_msg[0]) {
        em__error(ctx, st, "%s on backend %s: %s%s", what, ctx->backend_name, p->last_msg, raw);
        p->last_msg[0] = 0;
    } else {
        em__error(ctx, st, "%s failed on backend %s (%s)%s", what, ctx->backend_name,
                  em_status_name(st), raw);
    }
    return st;
}

bool em__grad_mode(const em_context *ctx)
{
    return ctx->grad_enabled && ctx->no_grad_depth == 0;
}
