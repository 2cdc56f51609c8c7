/* tests/plugins/tplugin.c — the loader suite's test backend. One source, compiled once per
 * failure the loader must report precisely:
 *   TPLUGIN_GOOD      ember-backend-tgood.so: a minimal working backend on host memory
 *   TPLUGIN_BADABI    reports abi_major EM_ABI_MAJOR + 1
 *   TPLUGIN_NOSYM     exports no ember_backend_entry
 *   TPLUGIN_INITFAIL  the entry fails with a message, as a driver-less GPU plugin would
 *   TPLUGIN_MISMATCH  calls itself "somethingelse"
 *   TPLUGIN_NODEV     loads, but device_count finds "no test hardware"
 *   TPLUGIN_ABI10     ember-backend-tabi10.so, built from the frozen ABI 1.0 headers
 *                     (tests/abi/1.0): what a plugin built before 1.1 gives the core
 *   TPLUGIN_ABI11     ember-backend-tabi11.so, the good one built from the frozen ABI 1.1
 *                     headers (tests/abi/1.1): its table ends before the kernels of 1.2
 *   TPLUGIN_ABI12     ember-backend-tabi12.so, the same from the frozen ABI 1.2 headers
 *                     (tests/abi/1.2): its table ends before adam (1.3)
 * The good one accepts one config key, mode, whose values also let a test make it return
 * short or odd tables, or exercise (and break) each clause of ABI 1.1: declared dtypes, host
 * buffers, asynchrony (tplugin_async.c). EMBER_TPLUGIN_DESCRIBE=lie|instance|fail makes its
 * describe call break that clause. Every kernel checks that it was handed only dtypes it
 * declared and, from a 1.1 core, consistent kernel-argument lists; it fails loudly (and
 * counts, in tplugin_stats_) otherwise. */
#include "tplugin.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(TPLUGIN_GOOD)
#define TP_NAME "tgood"
#elif defined(TPLUGIN_BADABI)
#define TP_NAME "tbadabi"
#elif defined(TPLUGIN_NOSYM)
#define TP_NAME "tnosym"
#elif defined(TPLUGIN_INITFAIL)
#define TP_NAME "tinitfail"
#elif defined(TPLUGIN_MISMATCH)
#define TP_NAME "tmismatch"
#elif defined(TPLUGIN_NODEV)
#define TP_NAME "tnodev"
#elif defined(TPLUGIN_ABI10)
#define TP_NAME "tabi10"
#if EM_ABI_MAJOR != 1 || EM_ABI_MINOR != 0
#error "tabi10 must be built against the frozen 1.0 headers (-I tests/abi/1.0 first)"
#endif
#elif defined(TPLUGIN_ABI11)
#define TP_NAME "tabi11"
#if EM_ABI_MAJOR != 1 || EM_ABI_MINOR != 1
#error "tabi11 must be built against the frozen 1.1 headers (-I tests/abi/1.1 first)"
#endif
#elif defined(TPLUGIN_ABI12)
#define TP_NAME "tabi12"
#if EM_ABI_MAJOR != 1 || EM_ABI_MINOR != 2
#error "tabi12 must be built against the frozen 1.2 headers (-I tests/abi/1.2 first)"
#endif
#else
#error "define one TPLUGIN_* variant"
#endif

static const char *const mode_names[] = {"fast", "exact", "short-backend", "short-ops",
                                         "old-minor", "no-ops", "fail-open", "f32-only", "host",
                                         "host-liar", "async", "async-broken", "half-async",
                                         NULL};
_Static_assert(sizeof mode_names / sizeof mode_names[0] == TP_MODE_COUNT + 1, "a name per mode");

EM_BACKEND_EXPORT tplugin_stats tplugin_stats_;
EM_BACKEND_EXPORT atomic_int tplugin_kernel_status_;

/* host-liar: a buffer handle points at a header; the data follows it */
#define LIAR_HEADER 64

/* ------------------------------------------------------------------ devices, memory */

static void tp_shutdown(void *bctx)
{
    tp_inst *in = bctx;
    in->host->free(in->hc, in);
}

static em_status tp_device_count(void *bctx, int *count)
{
    tp_inst *in = bctx;
#ifdef TPLUGIN_NODEV
    *count = 0;
    return in->host->error(in->hc, EM_ERR_NO_DEVICE, "no test hardware");
#else
    (void)in;
    *count = 1;
    return EM_OK;
#endif
}

static em_status tp_device_props(void *bctx, int index, em_device_props *p)
{
    tp_inst *in = bctx;
    if (index != 0)
        return in->host->error(in->hc, EM_ERR_INVALID, "no device %d", index);
    strcpy(p->name, "tplugin host memory device");
    strcpy(p->vendor, "ember test suite");
    strcpy(p->driver, "none");
    p->total_memory = 1u << 30;
    p->compute_units = 1;
    p->fp64 = 1;
    strcpy(p->extra, "mode: ");
    strcat(p->extra, mode_names[in->mode]);
    strcat(p->extra, "\nkind: test double");
#if EM_ABI_MINOR >= 1
    if (p->struct_size >= offsetof(em_device_props, flags) + sizeof p->flags)
        p->flags = in->mode == TP_HOST || in->mode == TP_HOST_LIAR ? EM_DEVICE_HOST_BUFFERS : 0;
#endif
    return EM_OK;
}

static em_status tp_device_open(void *bctx, int index, void **dev)
{
    tp_inst *in = bctx;
    if (in->mode == TP_FAIL_OPEN)
        return in->host->error(in->hc, EM_ERR_BACKEND, "simulated failure opening device %d", index);
    if (index > 0)
        return in->host->error(in->hc, EM_ERR_INVALID, "no device %d", index);
    tp_dev *d = in->host->alloc(in->hc, sizeof *d);
    if (!d)
        return in->host->error(in->hc, EM_ERR_OOM, "out of memory");
    memset(d, 0, sizeof *d);
    d->inst = in;
    in->open_devices++;
    *dev = d;
    return EM_OK;
}

static void tp_device_close(void *dev)
{
    tp_dev *d = dev;
#if EM_ABI_MINOR >= 1
    tp_streams_free(d);
#endif
    d->inst->open_devices--;
    d->inst->host->free(d->inst->hc, d);
}

/* A buffer handle is the data's address, except for host-liar (data after a header). Buffers
 * are aligned to 64 bytes, as EM_DEVICE_HOST_BUFFERS requires. */
static char *tp_data(const tp_dev *d, const void *buf)
{
    return (char *)(uintptr_t)buf + (d->inst->mode == TP_HOST_LIAR ? LIAR_HEADER : 0);
}

static em_status tp_buffer_alloc(void *dev, size_t bytes, void **buf)
{
    tp_dev *d = dev;
    size_t extra = d->inst->mode == TP_HOST_LIAR ? LIAR_HEADER : 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes + extra) != 0 || !p)
        return d->inst->host->error(d->inst->hc, EM_ERR_OOM, "out of memory (%zu bytes)", bytes);
    memset(p, 0x5a, extra);
    *buf = p;
    return EM_OK;
}

static void tp_buffer_free(void *dev, void *buf)
{
    (void)dev;
    free(buf);
}

static em_status tp_copy_h2d(void *dev, void *dst, size_t off, const void *src, size_t bytes)
{
    atomic_fetch_add(&tplugin_stats_.copies_h2d, 1);
    memcpy(tp_data(dev, dst) + off, src, bytes);
    return EM_OK;
}

static em_status tp_copy_d2h(void *dev, void *dst, const void *src, size_t off, size_t bytes)
{
    atomic_fetch_add(&tplugin_stats_.copies_d2h, 1);
    memcpy(dst, tp_data(dev, src) + off, bytes);
    return EM_OK;
}

static em_status tp_copy_d2d(void *dev, void *dst, size_t doff, const void *src, size_t soff,
                             size_t bytes)
{
    memmove(tp_data(dev, dst) + doff, tp_data(dev, src) + soff, bytes);
    return EM_OK;
}

static em_status tp_synchronize(void *dev)
{
#if EM_ABI_MINOR >= 1
    tp_streams_flush(dev);
#else
    (void)dev;
#endif
    return EM_OK;
}

/* ------------------------------------------------------------------ kernels */

/* Element `i` (row-major over out's shape) of view v, as an offset in elements. */
static int64_t tp_offset(const em_kview *out, const em_kview *v, int64_t i)
{
    int64_t off = v->offset;
    for (int d = out->ndim - 1; d >= 0; d--) {
        int64_t idx = i % out->shape[d];
        i /= out->shape[d];
        off += idx * v->strides[d];
    }
    return off;
}

static _Thread_local const tp_dev *g_view_dev;   /* set per call: whose buffer layout views use */

static double tp_get(const em_kview *v, int64_t off)
{
    const char *b = tp_data(g_view_dev, v->buf);
    switch (v->dtype) {
    case EM_F32: return ((const float *)(const void *)b)[off];
    case EM_F64: return ((const double *)(const void *)b)[off];
    default: return ((const uint8_t *)b)[off] != 0;
    }
}

static void tp_set(const em_kview *v, int64_t off, double x)
{
    char *b = tp_data(g_view_dev, v->buf);
    switch (v->dtype) {
    case EM_F32: ((float *)(void *)b)[off] = (float)x; break;
    case EM_F64: ((double *)(void *)b)[off] = x; break;
    default: ((uint8_t *)b)[off] = x != 0; break;
    }
}

/* What each kernel implements. The 1.0 build states 1.0's promise (fill and copy: f32, f64,
 * bool; add: f32, f64); f32-only leaves f64 out. */
#define BIT(dt) (1u << (unsigned)(dt))
#define TP_ANY (BIT(EM_F32) | BIT(EM_F64) | BIT(EM_BOOL))
#define TP_FLOAT (BIT(EM_F32) | BIT(EM_F64))

/* Entry checks of every kernel: the dtypes (declared ones only, or the call is the core's
 * bug), and from a 1.1 core the kernel-argument lists. */
static em_status tp_enter(tp_dev *d, const char *name, const em_kargs *a, unsigned declared,
                          int n_in)
{
    g_view_dev = d;
    atomic_fetch_add(&tplugin_stats_.kernel_calls, 1);
    int forced = atomic_load(&tplugin_kernel_status_);
    if (forced)
        return (em_status)forced;
    if (d->inst->mode == TP_F32_ONLY)
        declared &= ~BIT(EM_F64);
    const em_kview *v[4] = {a->out, a->in[0], a->in[1], a->in[2]};
    for (int i = 0; i < 1 + n_in; i++) {
        if (!v[i] || !(declared & BIT(v[i]->dtype))) {
            atomic_fetch_add(&tplugin_stats_.undeclared_calls, 1);
            return d->inst->host->error(d->inst->hc, EM_ERR_INTERNAL, "%s: handed dtype %d, "
                                        "which this plugin did not declare", name,
                                        v[i] ? (int)v[i]->dtype : -1);
        }
    }
#if EM_ABI_MINOR >= 1
    if (d->inst->host->abi_minor >= 1 &&
        a->struct_size >= offsetof(em_kargs, fp) + sizeof a->fp) {
        bool ok = a->n_out == 1 && a->outs && a->outs[0] == a->out && a->n_in == (uint32_t)n_in &&
                  a->ins && a->n_ip == 0 && a->n_fp == 0;
        for (int i = 0; ok && i < n_in; i++)
            ok = a->ins[i] == a->in[i];
        if (!ok) {
            atomic_fetch_add(&tplugin_stats_.bad_kargs, 1);
            return d->inst->host->error(d->inst->hc, EM_ERR_INTERNAL, "%s: em_kargs lists "
                                        "(n_out %u, n_in %u, n_ip %u, n_fp %u) disagree with "
                                        "out/in[]", name, a->n_out, a->n_in, a->n_ip, a->n_fp);
        }
    }
#endif
    return EM_OK;
}

static int64_t tp_numel(const em_kview *v)
{
    int64_t n = 1;
    for (int d = 0; d < v->ndim; d++)
        n *= v->shape[d];
    return n;
}

static em_status tp_fill(void *dev, const em_kargs *a)
{
    em_status st = tp_enter(dev, "fill", a, TP_ANY, 0);
    if (st != EM_OK)
        return st;
    int64_t n = tp_numel(a->out);
    for (int64_t i = 0; i < n; i++)
        tp_set(a->out, tp_offset(a->out, a->out, i), a->p[0]);
    return EM_OK;
}

static em_status tp_copy(void *dev, const em_kargs *a)
{
    em_status st = tp_enter(dev, "copy", a, TP_ANY, 1);
    if (st != EM_OK)
        return st;
    int64_t n = tp_numel(a->out);
    /* out may be the very same view as in[0], never a partial overlap: element order is safe */
    for (int64_t i = 0; i < n; i++)
        tp_set(a->out, tp_offset(a->out, a->out, i), tp_get(a->in[0], tp_offset(a->out, a->in[0], i)));
    return EM_OK;
}

static em_status tp_add(void *dev, const em_kargs *a)
{
    em_status st = tp_enter(dev, "add", a, TP_FLOAT, 2);
    if (st != EM_OK)
        return st;
    int64_t n = tp_numel(a->out);
    for (int64_t i = 0; i < n; i++) {
        double x = tp_get(a->in[0], tp_offset(a->out, a->in[0], i));
        double y = tp_get(a->in[1], tp_offset(a->out, a->in[1], i));
        if (a->out->dtype == EM_F32)
            tp_set(a->out, tp_offset(a->out, a->out, i), (double)((float)x + (float)y));
        else
            tp_set(a->out, tp_offset(a->out, a->out, i), x + y);
    }
    return EM_OK;
}

#define TP_OPS_BODY                                                                     \
    .shutdown = tp_shutdown, .device_count = tp_device_count,                          \
    .device_props = tp_device_props, .device_open = tp_device_open,                    \
    .device_close = tp_device_close, .buffer_alloc = tp_buffer_alloc,                  \
    .buffer_free = tp_buffer_free, .copy_h2d = tp_copy_h2d, .copy_d2h = tp_copy_d2h,   \
    .copy_d2d = tp_copy_d2d, .synchronize = tp_synchronize, .fill = tp_fill,           \
    .copy = tp_copy, .add = tp_add

#if EM_ABI_MINOR >= 1
/* what f32-only declares; the other modes declare nothing (the 1.0 defaults) */
static const em_kernel_dtypes tp_f32_dtypes = {
    .struct_size = sizeof(em_kernel_dtypes),
    .fill = BIT(EM_F32) | BIT(EM_BOOL),
    .copy = BIT(EM_F32) | BIT(EM_BOOL),
    .add = BIT(EM_F32),
};
#define TP_ASYNC_BODY                                                                   \
    .host_alloc = tp_host_alloc, .host_free = tp_host_free,                            \
    .copy_h2d_async = tp_copy_h2d_async, .copy_d2h_async = tp_copy_d2h_async,          \
    .stream_create = tp_stream_create, .stream_destroy = tp_stream_destroy,            \
    .event_create = tp_event_create, .event_destroy = tp_event_destroy,                \
    .event_record = tp_event_record, .event_wait = tp_event_wait,                      \
    .event_synchronize = tp_event_synchronize
static const em_backend_ops tp_ops_f32 = {.struct_size = sizeof(em_backend_ops), TP_OPS_BODY,
                                          .dtypes = &tp_f32_dtypes};
static const em_backend_ops tp_ops_async = {.struct_size = sizeof(em_backend_ops), TP_OPS_BODY,
                                            TP_ASYNC_BODY};
/* streams without their events and copies: a table the loader must refuse */
static const em_backend_ops tp_ops_half_async = {.struct_size = sizeof(em_backend_ops),
                                                 TP_OPS_BODY, .stream_create = tp_stream_create,
                                                 .stream_destroy = tp_stream_destroy};
#endif
static const em_backend_ops tp_ops = {.struct_size = sizeof(em_backend_ops), TP_OPS_BODY};
/* The same entries, but declaring a shorter table, as an older or broken build would. */
static const em_backend_ops tp_ops_short = {
    .struct_size = offsetof(em_backend_ops, device_open), TP_OPS_BODY};
static const em_backend_ops tp_ops_old_minor = {
    .struct_size = offsetof(em_backend_ops, add), TP_OPS_BODY};

/* ------------------------------------------------------------------ entry */

static const char *const tp_config_keys[] = {"mode", NULL};

#ifndef TPLUGIN_NOSYM
EM_BACKEND_ENTRY
{
    /* Say who we are first, so the core can judge our config keys even if we fail. */
    out->abi_major = EM_ABI_MAJOR;
    out->abi_minor = EM_ABI_MINOR;
#ifdef TPLUGIN_BADABI
    out->abi_major = EM_ABI_MAJOR + 1;
#endif
#ifdef TPLUGIN_MISMATCH
    out->name = "somethingelse";
#else
    out->name = TP_NAME;
#endif
    out->version = "1.2.3-test";
    out->description = "ember test plugin (" TP_NAME ")";
    out->config_keys = tp_config_keys;
#if EM_ABI_MINOR >= 1 && !defined(TPLUGIN_BADABI)
    if (host->struct_size >= offsetof(em_host, flags) + sizeof host->flags &&
        (host->flags & EM_HOST_DESCRIBE)) {
        /* EMBER_TPLUGIN_DESCRIBE breaks the describe contract on purpose */
        const char *how = getenv("EMBER_TPLUGIN_DESCRIBE");
        static const char *const lying_keys[] = {"mode", "extra", NULL};
        if (how && !strcmp(how, "lie"))
            out->config_keys = lying_keys;
        if (how && !strcmp(how, "fail"))
            return host->error(hc, EM_ERR_BACKEND, "describe refused on purpose");
        if (how && !strcmp(how, "instance")) {
            tp_inst *in = host->alloc(hc, sizeof *in);
            if (!in)
                return host->error(hc, EM_ERR_OOM, "out of memory");
            memset(in, 0, sizeof *in);
            in->host = host;
            in->hc = hc;
            out->ctx = in;
            out->ops = &tp_ops;
        }
        return EM_OK;
    }
#endif
#ifdef TPLUGIN_BADABI
    /* Claims success with a foreign ABI: the core must stop at abi_major and never look
     * at (or call into) anything else, so this returns no instance to leak. */
    (void)config;
    (void)n_config;
    return EM_OK;
#endif
    if (host->abi_major != EM_ABI_MAJOR)
        return host->error(hc, EM_ERR_PLUGIN, "built for plugin ABI %d, the host has %u",
                           EM_ABI_MAJOR, (unsigned)host->abi_major);
#ifdef TPLUGIN_INITFAIL
    (void)config;
    (void)n_config;
    (void)tp_ops;   /* built for the shared code only */
    (void)tp_ops_short;
    (void)tp_ops_old_minor;
    (void)mode_names;
#if EM_ABI_MINOR >= 1
    (void)tp_ops_f32;
    (void)tp_ops_async;
    (void)tp_ops_half_async;
#endif
    return host->error(hc, EM_ERR_BACKEND,
                       "simulated driver failure: libtplugin-driver.so.1: cannot open shared "
                       "object file");
#else
    enum tp_mode mode = TP_FAST;
    for (size_t i = 0; i < n_config; i++) {
        if (strcmp(config[i].key, "mode")) {
            /* unknown keys: the core checks them against config_keys (a describable plugin
             * never sees one: tests/test_abi.c counts them) */
            atomic_fetch_add(&tplugin_stats_.unknown_keys, 1);
            continue;
        }
        int m = 0;
        while (mode_names[m] && strcmp(mode_names[m], config[i].value))
            m++;
        if (!mode_names[m])
            return host->error(hc, EM_ERR_CONFIG, "mode: expected fast or exact, got '%s'",
                               config[i].value);
        mode = (enum tp_mode)m;
    }
    tp_inst *in = host->alloc(hc, sizeof *in);
    if (!in)
        return host->error(hc, EM_ERR_OOM, "out of memory");
    memset(in, 0, sizeof *in);
    in->host = host;
    in->hc = hc;
    in->mode = mode;
    out->ctx = in;
    out->ops = &tp_ops;
    switch (mode) {
    case TP_SHORT_BACKEND:
        /* a plugin whose em_backend ends before ops: the core cannot reach shutdown,
         * so this one frees its instance at once */
        out->struct_size = offsetof(em_backend, description);
        host->free(hc, in);
        out->ctx = NULL;
        break;
    case TP_SHORT_OPS: out->ops = &tp_ops_short; break;
    case TP_OLD_MINOR: out->ops = &tp_ops_old_minor; break;
#if EM_ABI_MINOR >= 1
    case TP_F32_ONLY: out->ops = &tp_ops_f32; break;
    case TP_ASYNC:
    case TP_ASYNC_BROKEN: out->ops = &tp_ops_async; break;
    case TP_HALF_ASYNC: out->ops = &tp_ops_half_async; break;
#else
    case TP_F32_ONLY:
    case TP_HOST:
    case TP_HOST_LIAR:
    case TP_ASYNC:
    case TP_ASYNC_BROKEN:
    case TP_HALF_ASYNC:
        host->free(hc, in);
        return host->error(hc, EM_ERR_CONFIG, "mode: '%s' needs ABI 1.1", mode_names[mode]);
#endif
    case TP_NO_OPS:
        out->ops = NULL;
        host->free(hc, in);   /* the core has no shutdown to call */
        out->ctx = NULL;
        break;
    default: break;
    }
    host->log(hc, EM_LOG_DEBUG, "instance created (mode %s)", mode_names[mode]);
    return EM_OK;
#endif
}
#else
/* No entry symbol: a shared object that merely looks like a plugin by its name. */
EM_BACKEND_EXPORT int tplugin_not_an_entry(void);
EM_BACKEND_EXPORT int tplugin_not_an_entry(void)
{
    (void)tp_ops_short;
    (void)tp_ops_old_minor;
    (void)tp_config_keys;
    (void)tp_ops;
    (void)mode_names;
#if EM_ABI_MINOR >= 1
    (void)tp_ops_f32;
    (void)tp_ops_async;
    (void)tp_ops_half_async;
#endif
    return 0;
}
#endif
