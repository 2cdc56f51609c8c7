/* plugins/template/template.c — a complete, minimal ember backend plugin to copy and grow.
 * It runs on host memory, implements the memory entries and a handful of kernels (gemm,
 * fill, copy, add, mul, relu, sum) and leaves every other kernel NULL: the core then runs
 * those ops on the cpu backend ([device] op_fallback = cpu), so every op works from day
 * one and ember-conform reports the missing ones as "fallback". Because its buffers are
 * plain host memory it says so (EM_DEVICE_HOST_BUFFERS), and those fallbacks run in place,
 * with no copies. docs/writing-a-backend.md walks through this file.
 *
 * It needs nothing but the installed <ember/backend.h> (pkg-config --cflags ember); a
 * plugin never links against libember. Build switches:
 *   -DTEMPLATE_NAME='"name"'  the backend's name; it must equal <name> in the file name
 *                            ember-backend-<name>.so (the Makefile keeps the two in step)
 *   -DTEMPLATE_MINIMAL       only memory + gemm: every other kernel is NULL, the smallest
 *                            backend that still trains a network (through the fallback) */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L   /* posix_memalign, sysconf under -std=c11 */
#endif
#include <ember/backend.h>
#include <ember/plugin_kit.h>   /* dtype helpers, gemm checks, the strided walk */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TEMPLATE_NAME
#ifdef TEMPLATE_MINIMAL
#define TEMPLATE_NAME "tminimal"
#else
#define TEMPLATE_NAME "template"
#endif
#endif
#define TEMPLATE_VERSION "1.0.0"

/* ------------------------------------------------------------------------------------
 * Instance and device. The entry point creates one instance per ember context. An
 * instance is used from one thread at a time, but two instances (two contexts) may run at
 * once on different threads, and the entry itself may be called concurrently. So all
 * mutable state lives in the instance or the device, never in globals.
 * ------------------------------------------------------------------------------------ */

typedef struct tp_inst {
    const em_host *host;     /* the core's services: error, log, alloc, free */
    em_host_ctx *hc;         /* our token for them */
    size_t memory_limit;     /* [template] memory_limit, bytes (0: no limit) */
    int open_devices;
} tp_inst;

typedef struct tp_dev {
    tp_inst *inst;
    size_t in_use;           /* bytes of live buffers, checked against memory_limit */
} tp_dev;

/* Report an error for the call in progress: the core prefixes the op and backend names
 * and hands the text to the user. host->error returns its status argument. */
#define TP_ERR(inst, st, ...) ((inst)->host->error((inst)->hc, (st), __VA_ARGS__))

/* ------------------------------------------------------------------------------------
 * Devices. One device: the host's memory.
 * ------------------------------------------------------------------------------------ */

static void tp_shutdown(void *bctx)
{
    tp_inst *in = bctx;
    in->host->free(in->hc, in);
}

static em_status tp_device_count(void *bctx, int *count)
{
    (void)bctx;
    /* A GPU plugin asks its driver here and, with no driver or no device, returns
     * host->error(hc, EM_ERR_NO_DEVICE, "<the reason>"): ember-info shows that reason. */
    *count = 1;
    return EM_OK;
}

static em_status tp_device_props(void *bctx, int index, em_device_props *p)
{
    tp_inst *in = bctx;
    if (index != 0)
        return TP_ERR(in, EM_ERR_NO_DEVICE, "no device %d (this backend has one, index 0)", index);
    /* The core zeroed *p and set struct_size; strings must fit and be NUL-terminated. */
    snprintf(p->name, sizeof p->name, "%s host memory device", TEMPLATE_NAME);
    snprintf(p->vendor, sizeof p->vendor, "ember plugin template");
    snprintf(p->driver, sizeof p->driver, "none (host memory)");
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    p->total_memory = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    if (in->memory_limit && in->memory_limit < p->total_memory)
        p->total_memory = in->memory_limit;
    p->compute_units = 1;
    p->fp64 = 1;
    /* ABI 1.1: our buffers are host memory (the handle is the data's address, 64-byte
     * aligned), so the cpu backend may run the ops we lack on them in place. A field added
     * in a later minor than the core's is only written when the core's struct has it. */
    if (p->struct_size >= offsetof(em_device_props, flags) + sizeof p->flags)
        p->flags = EM_DEVICE_HOST_BUFFERS;
    snprintf(p->extra, sizeof p->extra, "kernels: %s\nmemory_limit: %zu%s",
#ifdef TEMPLATE_MINIMAL
             "gemm only (the rest runs on cpu)",
#else
             "gemm fill copy add mul relu sum (the rest runs on cpu)",
#endif
             in->memory_limit, in->memory_limit ? " bytes" : " (none)");
    return EM_OK;
}

static em_status tp_device_open(void *bctx, int index, void **dev)
{
    tp_inst *in = bctx;
    if (index > 0)   /* -1: our default device, which is 0 */
        return TP_ERR(in, EM_ERR_NO_DEVICE, "no device %d (this backend has one, index 0)", index);
    /* Bookkeeping memory comes from host->alloc, so the core's fault injection
     * (EMBER_FAIL_ALLOC) reaches the plugin too. */
    tp_dev *d = in->host->alloc(in->hc, sizeof *d);
    if (!d)
        return TP_ERR(in, EM_ERR_OOM, "out of memory opening the device");
    d->inst = in;
    d->in_use = 0;
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

/* ------------------------------------------------------------------------------------
 * Memory. A buffer is an opaque handle to the core; here it points at host memory, with
 * its size kept in a 64-byte header so buffer_free can account for it. A GPU plugin
 * returns its device pointer or memory object instead. The core caches buffers and
 * reuses them without clearing: a new buffer's contents are undefined.
 * ------------------------------------------------------------------------------------ */

#define TP_HEADER 64   /* keeps the data 64-byte aligned */

static em_status tp_buffer_alloc(void *dev, size_t bytes, void **buf)
{
    tp_dev *d = dev;
    tp_inst *in = d->inst;
    if (in->memory_limit && (bytes > in->memory_limit || d->in_use > in->memory_limit - bytes))
        /* EM_ERR_OOM lets the core free its cached buffers and try once more */
        return TP_ERR(in, EM_ERR_OOM, "%zu more bytes would exceed memory_limit = %zu (%zu in use)",
                      bytes, in->memory_limit, d->in_use);
    void *p = NULL;
    if (bytes > SIZE_MAX - TP_HEADER || posix_memalign(&p, TP_HEADER, TP_HEADER + bytes) != 0)
        return TP_ERR(in, EM_ERR_OOM, "cannot allocate %zu bytes", bytes);
    memcpy(p, &bytes, sizeof bytes);
    d->in_use += bytes;
    *buf = (char *)p + TP_HEADER;
    return EM_OK;
}

static void tp_buffer_free(void *dev, void *buf)
{
    tp_dev *d = dev;
    char *p = (char *)buf - TP_HEADER;
    size_t bytes;
    memcpy(&bytes, p, sizeof bytes);
    d->in_use -= bytes;
    free(p);
}

/* Offsets of the copies are in bytes. Host memory: plain memcpy. A device with its own
 * memory may make copy_h2d asynchronous (the core does not touch the source again before
 * synchronize), but copy_d2h must return with the data in dst. */
static em_status tp_copy_h2d(void *dev, void *dst, size_t dst_offset, const void *src, size_t bytes)
{
    (void)dev;
    memcpy((char *)dst + dst_offset, src, bytes);
    return EM_OK;
}

static em_status tp_copy_d2h(void *dev, void *dst, const void *src, size_t src_offset, size_t bytes)
{
    (void)dev;
    memcpy(dst, (const char *)src + src_offset, bytes);
    return EM_OK;
}

static em_status tp_copy_d2d(void *dev, void *dst, size_t dst_offset, const void *src,
                             size_t src_offset, size_t bytes)
{
    (void)dev;
    /* memmove: source and destination may be ranges of one buffer */
    memmove((char *)dst + dst_offset, (const char *)src + src_offset, bytes);
    return EM_OK;
}

static em_status tp_synchronize(void *dev)
{
    (void)dev;   /* everything above is synchronous */
    return EM_OK;
}

/* ------------------------------------------------------------------------------------
 * GEMM: C_b = alpha * op(A_b) * op(B_b) + beta * C_b for each batch b, row-major, with
 * transpose flags and leading dimensions (em_gemm_args in <ember/backend.h>). Naive, with
 * a row of double accumulators: simple and correct; a real backend calls its BLAS here.
 * Which sizes the core passes (k = 0 among them) is stated once, next to em_gemm_args.
 * ------------------------------------------------------------------------------------ */

/* One instantiation per element type T; acc holds n doubles. */
#define TP_GEMM_LOOPS(NAME, T)                                                               \
    static void NAME(const em_gemm_args *g, double *acc)                                     \
    {                                                                                        \
        const T *A = g->a, *B = g->b;                                                        \
        T *C = g->c;                                                                         \
        for (int64_t b = 0; b < g->batch; b++) {                                             \
            const T *a = A + g->a_offset + b * g->a_batch_stride;                            \
            const T *bb = B + g->b_offset + b * g->b_batch_stride;                           \
            T *c = C + g->c_offset + b * g->c_batch_stride;                                  \
            for (int64_t i = 0; i < g->m; i++) {                                             \
                for (int64_t j = 0; j < g->n; j++)                                           \
                    acc[j] = 0;                                                              \
                for (int64_t p = 0; p < g->k; p++) {                                         \
                    /* op(A)[i][p]: A stored m x k (row stride lda), or k x m if trans_a */  \
                    double av = g->trans_a ? a[p * g->lda + i] : a[i * g->lda + p];          \
                    if (g->trans_b) /* B stored n x k */                                     \
                        for (int64_t j = 0; j < g->n; j++)                                   \
                            acc[j] += av * bb[j * g->ldb + p];                               \
                    else            /* B stored k x n: a contiguous row */                   \
                        for (int64_t j = 0; j < g->n; j++)                                   \
                            acc[j] += av * bb[p * g->ldb + j];                               \
                }                                                                            \
                T *crow = c + i * g->ldc;                                                    \
                for (int64_t j = 0; j < g->n; j++) /* beta 0: C is write-only (NaN too) */ \
                    crow[j] = (T)(g->beta != 0 ? g->alpha * acc[j] + g->beta * crow[j]      \
                                               : g->alpha * acc[j]);                         \
            }                                                                                \
        }                                                                                    \
    }
TP_GEMM_LOOPS(gemm_f32, float)
TP_GEMM_LOOPS(gemm_f64, double)

static em_status tp_gemm(void *dev, const em_gemm_args *g)
{
    tp_dev *d = dev;
    tp_inst *in = d->inst;
    /* dtype, sizes, leading dimensions, buffers (<ember/plugin_kit.h>); nothing to do for
     * an empty product */
    int empty;
    em_status st = emk_gemm_check(in->host, in->hc, TEMPLATE_NAME,
                                  EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64), g, &empty);
    if (st != EM_OK || empty)
        return st;
    double *acc = in->host->alloc(in->hc, sizeof(double) * (size_t)g->n);
    if (!acc)
        return TP_ERR(in, EM_ERR_OOM, "gemm: out of memory for %lld accumulators", (long long)g->n);
    if (g->dtype == EM_F32)
        gemm_f32(g, acc);
    else
        gemm_f64(g, acc);
    in->host->free(in->hc, acc);
    return EM_OK;
}

#ifndef TEMPLATE_MINIMAL
/* ------------------------------------------------------------------------------------
 * Element access. Views carry their dtype; these read any element as a double and
 * write a double back in the view's dtype, which is all the conversions the ABI asks
 * for (bool: 0/1 on read, x != 0 on write, so NaN becomes true). Doing the arithmetic in
 * double and rounding once on the store gives exactly float's result for +, -, *, / of
 * f32 operands, so the f32 kernels below are correctly rounded too.
 * ------------------------------------------------------------------------------------ */

static double tp_load(int32_t dtype, const void *buf, int64_t off)
{
    switch (dtype) {
    case EM_F32: return ((const float *)buf)[off];
    case EM_F64: return ((const double *)buf)[off];
    default: return ((const uint8_t *)buf)[off] != 0;
    }
}

static void tp_store(int32_t dtype, void *buf, int64_t off, double x)
{
    switch (dtype) {
    case EM_F32: ((float *)buf)[off] = (float)x; break;
    case EM_F64: ((double *)buf)[off] = x; break;
    default: ((uint8_t *)buf)[off] = x != 0; break;
    }
}

/* ------------------------------------------------------------------------------------
 * Walking strided views. The core guarantees (docs/writing-a-backend.md, "What the core
 * guarantees"): out and every input have the same ndim and shape, 1 <= ndim <= 8, at
 * least one element, broadcast inputs have stride 0, and out never partially overlaps an
 * input (it may be the very same view: in-place ops). So one odometer over the shape,
 * carrying an element offset per view, serves every elementwise kernel, in any order.
 * ------------------------------------------------------------------------------------ */

/* The walk itself is emk_walk of <ember/plugin_kit.h>: emk_walk_kargs(&w, a, n) starts one
 * over a->out (view 0) and its first n inputs (views 1 .. n), emk_walk_next advances. */

/* ------------------------------------------------------------------------------------
 * Kernels: (void *dev, const em_kargs *a). a->out is the output view, a->in[] the inputs,
 * a->p[] the scalars; their meaning per kernel is in <ember/backend.h>. Return EM_OK, or an
 * error through host->error (a dtype you do not handle, a driver failure): the user sees
 * "<op> on backend template: <your message>".
 * ------------------------------------------------------------------------------------ */

/* fill: out = p[0], any dtype. */
static em_status tp_fill(void *dev, const em_kargs *a)
{
    (void)dev;
    emk_walk w;
    emk_walk_kargs(&w, a, 0);
    do
        tp_store(a->out->dtype, a->out->buf, w.off[0], a->p[0]);
    while (emk_walk_next(&w));
    return EM_OK;
}

/* copy: out = in[0], converting between any two dtypes. */
static em_status tp_copy(void *dev, const em_kargs *a)
{
    (void)dev;
    emk_walk w;
    emk_walk_kargs(&w, a, 1);
    do
        tp_store(a->out->dtype, a->out->buf, w.off[0],
                 tp_load(a->in[0]->dtype, a->in[0]->buf, w.off[1]));
    while (emk_walk_next(&w));
    return EM_OK;
}

/* add and mul: float dtypes, all views of one dtype (the core checks that; a defensive
 * plugin says so rather than computing garbage if it ever is not so). */
static em_status binary(void *dev, const em_kargs *a, const char *name, int op)
{
    tp_dev *d = dev;
    int32_t dt = a->out->dtype;
    if (!emk_dtype_is_float(dt) || a->in[0]->dtype != dt || a->in[1]->dtype != dt)
        return TP_ERR(d->inst, EM_ERR_DTYPE, "%s: expected f32 or f64 views of one dtype", name);
    emk_walk w;
    emk_walk_kargs(&w, a, 2);
    do {
        double x = tp_load(dt, a->in[0]->buf, w.off[1]);
        double y = tp_load(dt, a->in[1]->buf, w.off[2]);
        tp_store(dt, a->out->buf, w.off[0], op ? x * y : x + y);
    } while (emk_walk_next(&w));
    return EM_OK;
}

static em_status tp_add(void *dev, const em_kargs *a) { return binary(dev, a, "add", 0); }
static em_status tp_mul(void *dev, const em_kargs *a) { return binary(dev, a, "mul", 1); }

/* relu: x > 0 ? x : 0, and NaN stays NaN (as PyTorch): only a number <= 0 becomes 0. */
static em_status tp_relu(void *dev, const em_kargs *a)
{
    tp_dev *d = dev;
    int32_t dt = a->out->dtype;
    if (!emk_dtype_is_float(dt) || a->in[0]->dtype != dt)
        return TP_ERR(d->inst, EM_ERR_DTYPE, "relu: expected f32 or f64 views of one dtype");
    emk_walk w;
    emk_walk_kargs(&w, a, 1);
    do {
        double x = tp_load(dt, a->in[0]->buf, w.off[1]);
        tp_store(dt, a->out->buf, w.off[0], x <= 0 ? 0.0 : x);
    } while (emk_walk_next(&w));
    return EM_OK;
}

/* sum: out has in[0]'s ndim with size 1 in each reduced dim; out = p[0] * the sum over
 * the reduced dims (p[0] is 1 for sum, 1/count for mean). For each output element, walk
 * the reduced sub-box of the input. Accumulating in double keeps long f32 sums accurate,
 * which the ABI asks for (pairwise or wider accumulation). */
static em_status tp_sum(void *dev, const em_kargs *a)
{
    tp_dev *d = dev;
    const em_kview *out = a->out, *x = a->in[0];
    if (!emk_dtype_is_float(out->dtype) || x->dtype != out->dtype)
        return TP_ERR(d->inst, EM_ERR_DTYPE, "sum: expected f32 or f64 views of one dtype");
    int64_t inner_shape[EM_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++)
        inner_shape[k] = out->shape[k] == 1 ? x->shape[k] : 1;
    emk_walk outer;
    emk_walk_start(&outer, out->ndim, out->shape);   /* reduced dims have size 1 here */
    emk_walk_view(&outer, out->offset, out->strides);
    emk_walk_view(&outer, x->offset, x->strides);
    do {
        double s = 0;
        emk_walk inner;
        emk_walk_start(&inner, x->ndim, inner_shape);
        emk_walk_view(&inner, outer.off[1], x->strides);
        do
            s += tp_load(x->dtype, x->buf, inner.off[0]);
        while (emk_walk_next(&inner));
        tp_store(out->dtype, out->buf, outer.off[0], a->p[0] * s);
    } while (emk_walk_next(&outer));
    return EM_OK;
}
#endif /* !TEMPLATE_MINIMAL */

/* ------------------------------------------------------------------------------------
 * The ops table: static, lives as long as the plugin is loaded. Designated initialisers
 * leave every entry we do not name NULL. NULL kernel = "not implemented here": the core
 * runs the op on the cpu backend (copying the operands to the host and back), announces
 * it once per context, and ember-info / ember-conform list it as a fallback. Grow the
 * backend by filling in entries one at a time; the *_backward helpers are optional (the
 * core composes them from other kernels when NULL).
 * ------------------------------------------------------------------------------------ */

/* ABI 1.1: the dtypes each kernel implements. A mask left 0 means what ABI 1.0 promised
 * for that kernel (f32/f64, and bool for fill, copy, comparisons, where, masked_fill); a
 * kernel is never called with a dtype outside its mask: the core runs those calls on cpu.
 * Declare a new dtype here when a kernel learns it. */
#define TP_FLOAT (EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64))
static const em_kernel_dtypes tp_dtypes = {
    .struct_size = sizeof(em_kernel_dtypes),
    .gemm = TP_FLOAT,
#ifndef TEMPLATE_MINIMAL
    .fill = TP_FLOAT | EM_DTYPE_BIT(EM_BOOL),
    .copy = TP_FLOAT | EM_DTYPE_BIT(EM_BOOL),
    .add = TP_FLOAT,
    .mul = TP_FLOAT,
    .relu = TP_FLOAT,
    .sum = TP_FLOAT,
#endif
};

static const em_backend_ops tp_ops = {
    .struct_size = sizeof(em_backend_ops),   /* the size we were compiled with */
    .shutdown = tp_shutdown,
    /* required: devices and memory */
    .device_count = tp_device_count,
    .device_props = tp_device_props,
    .device_open = tp_device_open,
    .device_close = tp_device_close,
    .buffer_alloc = tp_buffer_alloc,
    .buffer_free = tp_buffer_free,
    .copy_h2d = tp_copy_h2d,
    .copy_d2h = tp_copy_d2h,
    .copy_d2d = tp_copy_d2d,
    .synchronize = tp_synchronize,
    /* kernels */
    .gemm = tp_gemm,
#ifndef TEMPLATE_MINIMAL
    .fill = tp_fill,
    .copy = tp_copy,
    .add = tp_add,
    .mul = tp_mul,
    .relu = tp_relu,
    .sum = tp_sum,
#endif
    .dtypes = &tp_dtypes,
    /* The asynchrony entries (pinned memory, async copies, streams, events) stay NULL: a
     * host-memory device has nothing to overlap, and the core is correct without them. */
};

/* ------------------------------------------------------------------------------------
 * The entry point: the plugin's one exported symbol. It checks the ABI, reads its
 * device.ini section, creates an instance and fills *out. On error it returns the status
 * (through host->error, with a message) and leaves nothing allocated.
 * ------------------------------------------------------------------------------------ */

/* Keys accepted in [template] (library= is the core's own and never reaches us). The
 * core checks the section against these through our describe call when it reads the
 * configuration, naming file and line of any other key, so an instance never sees one. */
static const char *const tp_config_keys[] = {"memory_limit", NULL};

/* memory_limit = N: bytes, a plain decimal integer with an optional k, M or G suffix. */
static int parse_bytes(const char *s, size_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return 0;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'M')
        shift = 20;
    else if (*end == 'G')
        shift = 30;
    if (shift)
        end++;
    if (errno || *end || v > (SIZE_MAX >> shift))
        return 0;
    *out = (size_t)(v << shift);
    return 1;
}

EM_BACKEND_ENTRY
{
    /* Say who we are first: even when we fail below, the core can then tell an ABI
     * mismatch from our own error and check the config keys against ours. */
    out->abi_major = EM_ABI_MAJOR;
    out->abi_minor = EM_ABI_MINOR;
    out->name = TEMPLATE_NAME;
    out->version = TEMPLATE_VERSION;
#ifdef TEMPLATE_MINIMAL
    out->description = "ember plugin template, minimal: memory + gemm only (host memory)";
#else
    out->description = "ember plugin template: host memory, gemm fill copy add mul relu sum";
#endif
    out->config_keys = tp_config_keys;

    /* A different major means the structs changed incompatibly: refuse. A core with a
     * newer minor is fine (it zero-extends our shorter tables); to use an entry added in
     * a later minor, check host->abi_minor before relying on it. */
    if (host->abi_major != EM_ABI_MAJOR)
        return host->error(hc, EM_ERR_PLUGIN, "built for plugin ABI %d.%d, the core speaks %u.%u",
                           EM_ABI_MAJOR, EM_ABI_MINOR, (unsigned)host->abi_major,
                           (unsigned)host->abi_minor);

    /* A describe call (ABI 1.1: the core only wants the fields above, e.g. to check a
     * device.ini section of a backend it will not use): create nothing, touch no driver.
     * A core older than 1.1 has no flags field: read it only if its struct has it. */
    if (host->struct_size >= offsetof(em_host, flags) + sizeof host->flags &&
        (host->flags & EM_HOST_DESCRIBE)) {
        out->ops = &tp_ops;
        return EM_OK;
    }

    /* keys and values belong to the core and live only during this call */
    size_t memory_limit = 0;
    const char *ml = emk_config_value(config, n_config, "memory_limit");
    if (ml && !parse_bytes(ml, &memory_limit))
        /* start the message with the key: the core then points at its line */
        return host->error(hc, EM_ERR_CONFIG, "memory_limit: expected a byte count such as "
                           "1048576 or 512M, got '%s'", ml);

    tp_inst *in = host->alloc(hc, sizeof *in);
    if (!in)
        return host->error(hc, EM_ERR_OOM, "out of memory creating the instance");
    memset(in, 0, sizeof *in);
    in->host = host;
    in->hc = hc;
    in->memory_limit = memory_limit;
    out->ops = &tp_ops;
    out->ctx = in;
    host->log(hc, EM_LOG_DEBUG, "instance created (memory_limit %zu)", memory_limit);
    return EM_OK;
}
