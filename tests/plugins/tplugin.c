/* tests/plugins/tplugin.c — the loader suite's test backend. One source, compiled once per
 * failure the loader must report precisely:
 *   TPLUGIN_GOOD      ember-backend-tgood.so: a minimal working backend on host memory
 *   TPLUGIN_BADABI    reports abi_major EM_ABI_MAJOR + 1
 *   TPLUGIN_NOSYM     exports no ember_backend_entry
 *   TPLUGIN_INITFAIL  the entry fails with a message, as a driver-less GPU plugin would
 *   TPLUGIN_MISMATCH  calls itself "somethingelse"
 *   TPLUGIN_NODEV     loads, but device_count finds "no test hardware"
 * The good one accepts one config key, mode, whose values also let a test make it return
 * short or odd tables (ABI edge cases that need no extra build of this file). */
#include <ember/backend.h>

#include <stdint.h>
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
#else
#error "define one TPLUGIN_* variant"
#endif

enum tp_mode {
    TP_FAST,           /* normal */
    TP_EXACT,          /* normal */
    TP_SHORT_BACKEND,  /* em_backend.struct_size too small to reach ops */
    TP_SHORT_OPS,      /* ops table ends before the memory entries */
    TP_OLD_MINOR,      /* ops table of an "older minor": ends before `add` */
    TP_NO_OPS,         /* ops NULL */
    TP_FAIL_OPEN,      /* device_open fails */
};

static const char *const mode_names[] = {"fast", "exact", "short-backend", "short-ops",
                                         "old-minor", "no-ops", "fail-open", NULL};

typedef struct tp_inst {
    const em_host *host;
    em_host_ctx *hc;
    enum tp_mode mode;
    int open_devices;
} tp_inst;

typedef struct tp_dev {
    tp_inst *inst;
} tp_dev;

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
    d->inst = in;
    in->open_devices++;
    *dev = d;
    return EM_OK;
}

static void tp_device_close(void *dev)
{
    tp_dev *d = dev;
    d->inst->open_devices--;
    d->inst->host->free(d->inst->hc, d);
}

static em_status tp_buffer_alloc(void *dev, size_t bytes, void **buf)
{
    tp_dev *d = dev;
    void *p = d->inst->host->alloc(d->inst->hc, bytes);
    if (!p)
        return d->inst->host->error(d->inst->hc, EM_ERR_OOM, "out of memory (%zu bytes)", bytes);
    *buf = p;
    return EM_OK;
}

static void tp_buffer_free(void *dev, void *buf)
{
    tp_dev *d = dev;
    d->inst->host->free(d->inst->hc, buf);
}

static em_status tp_copy_h2d(void *dev, void *dst, size_t off, const void *src, size_t bytes)
{
    (void)dev;
    memcpy((char *)dst + off, src, bytes);
    return EM_OK;
}

static em_status tp_copy_d2h(void *dev, void *dst, const void *src, size_t off, size_t bytes)
{
    (void)dev;
    memcpy(dst, (const char *)src + off, bytes);
    return EM_OK;
}

static em_status tp_copy_d2d(void *dev, void *dst, size_t doff, const void *src, size_t soff,
                             size_t bytes)
{
    (void)dev;
    memmove((char *)dst + doff, (const char *)src + soff, bytes);
    return EM_OK;
}

static em_status tp_synchronize(void *dev)
{
    (void)dev;
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

static double tp_get(const em_kview *v, int64_t off)
{
    switch (v->dtype) {
    case EM_F32: return ((const float *)v->buf)[off];
    case EM_F64: return ((const double *)v->buf)[off];
    default: return ((const uint8_t *)v->buf)[off] != 0;
    }
}

static void tp_set(const em_kview *v, int64_t off, double x)
{
    switch (v->dtype) {
    case EM_F32: ((float *)v->buf)[off] = (float)x; break;
    case EM_F64: ((double *)v->buf)[off] = x; break;
    default: ((uint8_t *)v->buf)[off] = x != 0; break;
    }
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
    (void)dev;
    int64_t n = tp_numel(a->out);
    for (int64_t i = 0; i < n; i++)
        tp_set(a->out, tp_offset(a->out, a->out, i), a->p[0]);
    return EM_OK;
}

static em_status tp_copy(void *dev, const em_kargs *a)
{
    (void)dev;
    int64_t n = tp_numel(a->out);
    /* out may be the very same view as in[0], never a partial overlap: element order is safe */
    for (int64_t i = 0; i < n; i++)
        tp_set(a->out, tp_offset(a->out, a->out, i), tp_get(a->in[0], tp_offset(a->out, a->in[0], i)));
    return EM_OK;
}

static em_status tp_add(void *dev, const em_kargs *a)
{
    tp_dev *d = dev;
    if (a->out->dtype != EM_F32 && a->out->dtype != EM_F64)
        return d->inst->host->error(d->inst->hc, EM_ERR_DTYPE, "add: float dtypes only");
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
    return host->error(hc, EM_ERR_BACKEND,
                       "simulated driver failure: libtplugin-driver.so.1: cannot open shared "
                       "object file");
#else
    enum tp_mode mode = TP_FAST;
    for (size_t i = 0; i < n_config; i++) {
        if (strcmp(config[i].key, "mode"))
            continue;   /* unknown keys: the core checks them against config_keys */
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
    return 0;
}
#endif
