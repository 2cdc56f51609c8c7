/* layers/profile/profile.c — ember-layer-profile.so: times every kernel, gemm, copy and op of a
 * context, counts buffer allocations and the core's cache hits and misses, and follows the
 * autograd phase (forward, backward, optimizer) from the core's events. When the context is
 * freed it prints a table sorted by total time (like torch.autograd.profiler's
 * key_averages().table()) and closes the trace-event JSON file of [profile] trace.
 *
 * [profile] keys:
 *   trace = FILE        write a Chrome trace-event JSON file (Perfetto, chrome://tracing)
 *   table = stderr|stdout|off|FILE  where the table goes (default stderr)
 *   sort = total|self|calls|mean|max|name                        (default total)
 *   sync = auto|on|off  call synchronize after each timed kernel and copy, so that the time
 *                       is the device's and not the enqueue's. auto (the default): on unless
 *                       the device's buffers are host memory (a synchronous backend such as
 *                       cpu). Synchronising stops the device queue from overlapping host work:
 *                       the footer states how many calls and how much time it took. */
#include "profile.h"

#include <ember/plugin_kit.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

static layer_map g_map;

static const char *const profile_keys[] = {"trace", "table", "sort", "sync", NULL};

double prof_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int prof_row_get(prof *p, const char *name, int kind)
{
    /* FNV-1a of kind and name into an open-addressing table of row numbers */
    uint32_t h = 2166136261u ^ (uint32_t)kind;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 16777619u;
    const uint32_t mask = sizeof p->hash_row / sizeof p->hash_row[0] - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        int r = p->hash_row[i] - 1;
        if (r < 0)
            break;
        if (p->rows[r].kind == kind && !strcmp(p->rows[r].name, name))
            return r;
    }
    if (p->n_rows == PROF_MAX_ROWS) {   /* at most half the hash table is ever used */
        p->dropped++;
        return -1;
    }
    prof_row *r = &p->rows[p->n_rows];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->kind = kind;
    uint32_t i = h & mask;
    while (p->hash_row[i])
        i = (i + 1) & mask;
    p->hash_row[i] = p->n_rows + 1;
    return p->n_rows++;
}

int prof_kernel_row(prof *p, int slot, const char *name)
{
    if (slot < 0 || slot >= (int)(sizeof p->kernel_row / sizeof p->kernel_row[0]))
        return prof_row_get(p, name, ROW_KERNEL);
    if (!p->kernel_row[slot])
        p->kernel_row[slot] = prof_row_get(p, name, ROW_KERNEL) + 1;
    return p->kernel_row[slot] - 1;
}

static void row_add(prof *p, int row, double us, uint64_t bytes)
{
    if (row < 0)
        return;
    prof_row *r = &p->rows[row];
    r->calls++;
    r->total_us += us;
    r->self_us += us;
    if (us > r->max_us)
        r->max_us = us;
    r->bytes += bytes;
}

static void touch(prof *p, double t0, double t1)
{
    if (p->first_us == 0 || t0 < p->first_us)
        p->first_us = t0;
    if (t1 > p->last_us)
        p->last_us = t1;
}

/* ------------------------------------------------------------------ timing a call */

typedef struct timing {
    double t0;
} timing;

static inline void t_begin(timing *t)
{
    t->t0 = prof_now_us();
}

/* End of a timed call of the next table: synchronise if configured, record, trace. */
static void t_end(prof *p, timing *t, const char *name, int kind, int slot, uint64_t bytes)
{
    double t1 = prof_now_us();
    if (p->sync) {
        p->next->ops->synchronize(p->dev);
        double t2 = prof_now_us();
        p->sync_us += t2 - t1;
        p->sync_calls++;
        t1 = t2;
    }
    double us = t1 - t->t0;
    if (p->depth == 0)
        p->outside_us += us;
    row_add(p, kind == ROW_KERNEL ? prof_kernel_row(p, slot, name) : prof_row_get(p, name, kind),
            us, bytes);
    touch(p, t->t0, t1);
    if (p->trace) {
        char args[256];
        const char *op = p->depth > 0 && p->stack[p->depth - 1].row >= 0
                             ? p->rows[p->stack[p->depth - 1].row].name : "";
        if (kind == ROW_COPY)
            snprintf(args, sizeof args, "\"bytes\": %llu, \"phase\": \"%s\"",
                     (unsigned long long)bytes, prof_phase_names[p->phase]);
        else
            snprintf(args, sizeof args, "\"op\": \"%s\", \"phase\": \"%s\"", op,
                     prof_phase_names[p->phase]);
        prof_trace_event(p, name, kind == ROW_COPY ? "copy" : "kernel", 2, t->t0, us, args);
    }
}

static prof *find(void *dev)
{
    return layer_map_get(&g_map, dev);
}

/* ------------------------------------------------------------------ wrappers */

#define WRAP_KERNEL(k)                                                                       \
    static em_status w_##k(void *dev, const em_kargs *a)                                     \
    {                                                                                        \
        prof *p = find(dev);                                                                 \
        timing t;                                                                            \
        t_begin(&t);                                                                         \
        em_status st = p->next->ops->k(dev, a);                                              \
        t_end(p, &t, #k, ROW_KERNEL, (int)(offsetof(em_backend_ops, k) / sizeof(void *)), 0); \
        return st;                                                                           \
    }
LAYER_KERNELS(WRAP_KERNEL)
#undef WRAP_KERNEL

static em_status w_gemm(void *dev, const em_gemm_args *g)
{
    prof *p = find(dev);
    timing t;
    t_begin(&t);
    em_status st = p->next->ops->gemm(dev, g);
    t_end(p, &t, "gemm", ROW_KERNEL, (int)(offsetof(em_backend_ops, gemm) / sizeof(void *)), 0);
    return st;
}

static em_status w_copy_h2d(void *dev, void *dst, size_t off, const void *src, size_t bytes)
{
    prof *p = find(dev);
    timing t;
    t_begin(&t);
    em_status st = p->next->ops->copy_h2d(dev, dst, off, src, bytes);
    t_end(p, &t, "copy_h2d", ROW_COPY, -1, bytes);
    return st;
}

static em_status w_copy_d2h(void *dev, void *dst, const void *src, size_t off, size_t bytes)
{
    prof *p = find(dev);
    timing t;
    t_begin(&t);
    em_status st = p->next->ops->copy_d2h(dev, dst, src, off, bytes);
    t_end(p, &t, "copy_d2h", ROW_COPY, -1, bytes);
    return st;
}

static em_status w_copy_h2d_async(void *dev, void *stream, void *dst, size_t off, const void *src,
                                  size_t bytes)
{
    prof *p = find(dev);
    timing t;
    t_begin(&t);
    em_status st = p->next->ops->copy_h2d_async(dev, stream, dst, off, src, bytes);
    t_end(p, &t, "copy_h2d_async", ROW_COPY, -1, bytes);
    return st;
}

static em_status w_copy_d2h_async(void *dev, void *stream, void *dst, const void *src, size_t off,
                                  size_t bytes)
{
    prof *p = find(dev);
    timing t;
    t_begin(&t);
    em_status st = p->next->ops->copy_d2h_async(dev, stream, dst, src, off, bytes);
    t_end(p, &t, "copy_d2h_async", ROW_COPY, -1, bytes);
    return st;
}

static em_status w_buffer_alloc(void *dev, size_t bytes, void **buf)
{
    prof *p = find(dev);
    em_status st = p->next->ops->buffer_alloc(dev, bytes, buf);
    if (st == EM_OK) {
        p->allocs++;
        p->alloc_bytes += bytes;
    }
    return st;
}

static void w_buffer_free(void *dev, void *buf)
{
    prof *p = find(dev);
    p->frees++;
    p->next->ops->buffer_free(dev, buf);
}

#define ENTRY(k) .k = w_##k,
static const em_backend_ops profile_ops = {
    .struct_size = sizeof(em_backend_ops),
    .buffer_alloc = w_buffer_alloc,
    .buffer_free = w_buffer_free,
    .copy_h2d = w_copy_h2d,
    .copy_d2h = w_copy_d2h,
    .gemm = w_gemm,
    .copy_h2d_async = w_copy_h2d_async,
    .copy_d2h_async = w_copy_d2h_async,
    LAYER_KERNELS(ENTRY)
};
#undef ENTRY

/* ------------------------------------------------------------------ events */

const char *const prof_phase_names[N_PHASES] = {"forward", "backward", "optimizer"};

/* The phase span in progress ends at t (if any op ran in it) and `phase` begins. */
static void phase_switch(prof *p, int phase, double t)
{
    if (p->phase_ops > 0) {
        p->phase_us[p->phase] += t - p->phase_t0;
        p->phase_count[p->phase]++;
        prof_trace_event(p, prof_phase_names[p->phase], "phase", 3, p->phase_t0, t - p->phase_t0,
                         NULL);
    }
    p->phase = phase;
    p->phase_t0 = t;
    p->phase_ops = 0;
}

static void shapes_text(const em_layer_event *ev, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ev->n_in && used < n; i++) {
        used += (size_t)snprintf(buf + used, n - used, "%s[", i ? ", " : "");
        for (int d = 0; d < ev->in_ndim[i] && used < n; d++)
            used += (size_t)snprintf(buf + used, n - used, "%s%lld", d ? ", " : "",
                                     (long long)ev->in_shape[i][d]);
        if (used < n)
            used += (size_t)snprintf(buf + used, n - used, "]");
    }
    if (used < n)
        snprintf(buf + used, n - used, "]");
    if (used >= n && n > 5)
        memcpy(buf + n - 5, "...]", 5);   /* truncated: still a JSON-safe string */
}

static void on_event(void *ctx, const em_layer_event *ev)
{
    prof *p = ctx;
    double t = prof_now_us();
    switch (ev->kind) {
    case EM_LAYER_OP_BEGIN: {
        if (p->phase_ops == 0 && p->phase == PHASE_FORWARD)
            p->phase_t0 = t;   /* a forward span starts at its first op */
        p->phase_ops++;
        if (p->depth < PROF_MAX_DEPTH) {
            prof_frame *f = &p->stack[p->depth];
            f->row = prof_row_get(p, ev->name ? ev->name : "?", ROW_OP);
            f->t0_us = t;
            f->child_us = 0;
            f->shapes[0] = 0;
            if (p->trace)
                shapes_text(ev, f->shapes, sizeof f->shapes);
        }
        p->depth++;
        break;
    }
    case EM_LAYER_OP_END: {
        if (p->depth == 0)
            break;
        p->depth--;
        if (p->depth >= PROF_MAX_DEPTH)
            break;
        prof_frame *f = &p->stack[p->depth];
        double us = t - f->t0_us;
        if (f->row >= 0) {
            prof_row *r = &p->rows[f->row];
            r->calls++;
            r->total_us += us;
            r->self_us += us - f->child_us;
            if (us > r->max_us)
                r->max_us = us;
        }
        if (p->depth > 0)
            p->stack[p->depth - 1].child_us += us;
        touch(p, f->t0_us, t);
        if (p->trace) {
            char args[256];
            snprintf(args, sizeof args, "\"shapes\": \"%s\", \"phase\": \"%s\"%s", f->shapes,
                     prof_phase_names[p->phase], ev->status != EM_OK ? ", \"failed\": true" : "");
            prof_trace_event(p, ev->name ? ev->name : "?", "op", 1, f->t0_us, us, args);
        }
        break;
    }
    case EM_LAYER_BACKWARD_BEGIN:
        phase_switch(p, PHASE_BACKWARD, t);
        p->phase_ops = 1;   /* the span is the engine's, ops or not */
        break;
    case EM_LAYER_OPTIM_BEGIN:
        phase_switch(p, PHASE_OPTIMIZER, t);
        p->phase_ops = 1;
        break;
    case EM_LAYER_BACKWARD_END:
    case EM_LAYER_OPTIM_END:
        phase_switch(p, PHASE_FORWARD, t);
        break;
    case EM_LAYER_CACHE_HIT:
        p->cache_hits++;
        p->cache_hit_bytes += ev->bytes;
        break;
    case EM_LAYER_CACHE_MISS:
        p->cache_misses++;
        break;
    default:
        break;   /* kinds of a later minor */
    }
}

static void destroy(void *ctx)
{
    prof *p = ctx;
    phase_switch(p, PHASE_FORWARD, p->last_us > 0 ? p->last_us : prof_now_us());
    if (p->table && p->n_rows > 0)   /* nothing ran (a context only opened): no table */
        prof_print_table(p);
    prof_trace_close(p);
    layer_map_del(&g_map, p->dev, p);
    p->host->free(p->hc, p);
}

/* ------------------------------------------------------------------ entry */

EM_LAYER_ENTRY
{
    out->abi_major = EM_LAYER_ABI_MAJOR;
    out->abi_minor = EM_LAYER_ABI_MINOR;
    out->name = "profile";
    out->version = "1.0";
    out->description = "times ops, kernels and copies; prints a sorted table, writes a trace";
    out->config_keys = profile_keys;
    out->ops = &profile_ops;
    if (host->struct_size >= offsetof(em_host, flags) + sizeof host->flags &&
        (host->flags & EM_HOST_DESCRIBE))
        return EM_OK;
    if (host->abi_major != EM_ABI_MAJOR)
        return host->error(hc, EM_ERR_PLUGIN, "profile: built for plugin ABI %d, the core has %u",
                           EM_ABI_MAJOR, host->abi_major);
    static const char *const sync_names[] = {"auto", "on", "off", NULL};
    static const char *const sort_names[] = {"total", "self", "calls", "mean", "max", "name", NULL};
    int sync = 0, table = 1, sort = 0;
    em_status st;
    if ((st = layer_config_choice(host, hc, config, n_config, "sync", sync_names, &sync)) != EM_OK ||
        (st = layer_config_choice(host, hc, config, n_config, "sort", sort_names, &sort)) != EM_OK)
        return st;
    const char *tv = emk_config_value(config, n_config, "table");
    if (tv && !*tv)
        return host->error(hc, EM_ERR_CONFIG, "table: expected off, stderr, stdout or a file name");
    if (tv && strlen(tv) >= sizeof((prof *)0)->table_path)
        return host->error(hc, EM_ERR_CONFIG, "table: the file name is too long");
    table = !tv || !strcmp(tv, "stderr") ? 1 : !strcmp(tv, "off") ? 0 : !strcmp(tv, "stdout") ? 2 : 3;
    const char *trace = emk_config_value(config, n_config, "trace");
    if (trace && (!*trace || strlen(trace) >= sizeof((prof *)0)->trace_path))
        return host->error(hc, EM_ERR_CONFIG, "trace: expected a file name, got '%s'", trace);
    prof *p = host->alloc(hc, sizeof *p);
    if (!p)
        return host->error(hc, EM_ERR_OOM, "profile: out of memory");
    memset(p, 0, sizeof *p);
    p->host = host;
    p->hc = hc;
    p->next = next;
    p->dev = next->dev;
    p->table = table;
    if (table == 3)
        snprintf(p->table_path, sizeof p->table_path, "%s", tv);
    p->sort = sort;
    bool host_buffers = next->props &&
                        next->props->struct_size >= offsetof(em_device_props, flags) + 4 &&
                        (next->props->flags & EM_DEVICE_HOST_BUFFERS);
    p->sync = sync == 1 || (sync == 0 && !host_buffers);
    p->t_origin = prof_now_us();
    p->phase_t0 = p->t_origin;
    if (trace) {
        snprintf(p->trace_path, sizeof p->trace_path, "%s", trace);
        prof_trace_open(p);
        if (!p->trace) {
            host->free(hc, p);
            return host->error(hc, EM_ERR_CONFIG, "trace: cannot write '%s'", trace);
        }
    }
    if (!layer_map_put(&g_map, p->dev, p)) {
        prof_trace_close(p);
        host->free(hc, p);
        return host->error(hc, EM_ERR_PLUGIN, "profile: too many contexts in one process");
    }
    out->ctx = p;
    out->event = on_event;
    out->destroy = destroy;
    return EM_OK;
}
