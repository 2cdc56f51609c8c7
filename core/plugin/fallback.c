/* core/plugin/fallback.c — every kernel call goes through here. A backend that leaves an entry of
 * its ops table NULL, or does not declare the dtype of a call (em_kernel_dtypes), still runs
 * the op: on the cpu backend, loaded on first need ([device] op_fallback = cpu, the default).
 * When both the device and the cpu backend say their buffers are host memory
 * (EM_DEVICE_HOST_BUFFERS), the cpu kernel runs on the device's buffers in place; otherwise
 * the operands' buffer ranges are copied to the host and back. So a new backend can start
 * with memory + gemm and grow. It is never silent: one warning when the context is created
 * lists the ops (and dtypes) that will fall back, a notice per op at the first fallback goes
 * to the log at info level, and op_fallback = error turns every such call into "op <name> is
 * not supported by backend <name>". */
#include "config.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct em__fallback {
    em_plugin *plugin;
    void *dev;
    bool in_place;                       /* both sides have host buffers: no copies */
    em_dtype_mask kmask[EM__MAX_KERNELS];/* what the cpu backend runs */
    uint64_t noticed[2];                 /* kernels already announced (bit per index) */
};

_Static_assert(EM__MAX_KERNELS <= 128, "em__fallback.noticed has 128 bits");

/* dt < 0: the kernel is NULL; else the call's dtype is not declared. */
static em_status unsupported(em_context *ctx, size_t offset, int dt, const char *who)
{
    const char *why = !ctx->res.op_fallback_cpu ? " (and [device] op_fallback = error)"
                    : who ? who : "";
    if (dt < 0)
        return em__error(ctx, EM_ERR_UNSUPPORTED, "op %s is not supported by backend %s%s",
                         em__kernel_name(offset), ctx->backend_name, why);
    bool nofp64 = dt == EM_F64 && !ctx->props.fp64;
    return em__error(ctx, EM_ERR_UNSUPPORTED, "op %s is not supported by backend %s for dtype "
                     "%s%s%s", em__kernel_name(offset), ctx->backend_name,
                     em_dtype_name((em_dtype)dt),
                     nofp64 ? " (the device has no fp64 support)" : "", why);
}

void em__fallback_free(em_context *ctx)
{
    em__fallback *fb = ctx->fallback;
    if (!fb)
        return;
    if (fb->dev)
        fb->plugin->ops.device_close(fb->dev);
    em__plugin_unload(fb->plugin);
    free(fb);
    ctx->fallback = NULL;
}

static em__fallback *fallback_get(em_context *ctx)
{
    if (ctx->fallback)
        return ctx->fallback;
    em__fallback *fb = em__calloc(1, sizeof *fb);
    if (!fb) {
        em__error(ctx, EM_ERR_OOM, "out of memory loading the cpu backend for op fallback");
        return NULL;
    }
    char msg[1024];
    em_load_stage stage;
    em_status st = em__plugin_load(ctx->cfg, &ctx->res, "cpu", &fb->plugin, &stage, msg, sizeof msg);
    if (st != EM_OK) {
        free(fb);
        em__error(ctx, st, "op fallback to cpu: %s", msg);
        return NULL;
    }
    fb->plugin->ctx = ctx;
    st = fb->plugin->ops.device_open(fb->plugin->be.ctx, -1, &fb->dev);
    if (st != EM_OK) {
        em__error(ctx, st, "op fallback to cpu: opening the cpu device failed: %s",
                  fb->plugin->last_msg[0] ? fb->plugin->last_msg : em_status_name(st));
        em__plugin_unload(fb->plugin);
        free(fb);
        return NULL;
    }
    em_device_props props;
    memset(&props, 0, sizeof props);
    props.struct_size = sizeof props;
    if (fb->plugin->ops.device_props(fb->plugin->be.ctx, 0, &props) != EM_OK) {
        memset(&props, 0, sizeof props);
        props.fp64 = 1;
    }
    em__device_masks(fb->plugin, &props, fb->kmask);
    fb->in_place = (ctx->props.flags & EM_DEVICE_HOST_BUFFERS) &&
                   (props.flags & EM_DEVICE_HOST_BUFFERS);
    ctx->fallback = fb;
    return fb;
}

em_status em__fallback_reference(em_context *ctx, const em_backend_ops **ops, void **dev)
{
    em__fallback *fb = fallback_get(ctx);
    if (!fb) {
        em_status st = em__failed(ctx);
        /* the layer gets the message through the host's error service */
        em__snprintf(ctx->plugin->last_msg, sizeof ctx->plugin->last_msg, "%s", ctx->errmsg);
        return st != EM_OK ? st : EM_ERR_PLUGIN;
    }
    *ops = &fb->plugin->ops;
    *dev = fb->dev;
    return EM_OK;
}

/* ------------------------------------------------------------------ buffer ranges */

/* A byte range of one primary buffer, mirrored in a cpu buffer. */
typedef struct range {
    void *pbuf, *fbuf;
    size_t lo, hi;
    bool written;
} range;

typedef struct mirror {
    range r[8];
    int n;
} mirror;

static range *mirror_add(mirror *m, void *buf, size_t lo, size_t hi, bool write)
{
    for (int i = 0; i < m->n; i++) {
        if (m->r[i].pbuf == buf) {   /* views of one buffer share one mirror (aliasing) */
            if (lo < m->r[i].lo)
                m->r[i].lo = lo;
            if (hi > m->r[i].hi)
                m->r[i].hi = hi;
            m->r[i].written |= write;
            return &m->r[i];
        }
    }
    m->r[m->n] = (range){.pbuf = buf, .lo = lo, .hi = hi, .written = write};
    return &m->r[m->n++];
}

static range *mirror_find(mirror *m, void *buf)
{
    for (int i = 0; i < m->n; i++)
        if (m->r[i].pbuf == buf)
            return &m->r[i];
    return NULL;
}

/* Copy every range primary -> cpu. */
static em_status mirror_in(em_context *ctx, em__fallback *fb, mirror *m)
{
    const em_backend_ops *co = &fb->plugin->ops;
    for (int i = 0; i < m->n; i++) {
        range *r = &m->r[i];
        size_t bytes = r->hi - r->lo;
        void *host = em__malloc(bytes);
        if (!host)
            return em__error(ctx, EM_ERR_OOM, "op fallback: out of memory (%zu bytes)", bytes);
        em_status st = ctx->ops->copy_d2h(ctx->dev, host, r->pbuf, r->lo, bytes);
        if (st != EM_OK) {
            free(host);
            return em__backend_failed(ctx, st, "op fallback: copy_d2h");
        }
        st = co->buffer_alloc(fb->dev, bytes, &r->fbuf);
        if (st != EM_OK)
            r->fbuf = NULL;
        else
            st = co->copy_h2d(fb->dev, r->fbuf, 0, host, bytes);
        free(host);
        if (st != EM_OK)
            return em__error(ctx, st, "op fallback: cpu buffer of %zu bytes: %s", bytes,
                             fb->plugin->last_msg[0] ? fb->plugin->last_msg : em_status_name(st));
    }
    return EM_OK;
}

/* Copy written ranges cpu -> primary, and free the cpu buffers. */
static em_status mirror_out(em_context *ctx, em__fallback *fb, mirror *m, bool copy_back)
{
    const em_backend_ops *co = &fb->plugin->ops;
    em_status st = EM_OK;
    for (int i = 0; i < m->n; i++) {
        range *r = &m->r[i];
        if (!r->fbuf)
            continue;
        if (copy_back && r->written && st == EM_OK) {
            size_t bytes = r->hi - r->lo;
            void *host = em__malloc(bytes);
            if (!host) {
                st = em__error(ctx, EM_ERR_OOM, "op fallback: out of memory (%zu bytes)", bytes);
            } else {
                st = co->copy_d2h(fb->dev, host, r->fbuf, 0, bytes);
                if (st == EM_OK) {
                    st = ctx->ops->copy_h2d(ctx->dev, r->pbuf, r->lo, host, bytes);
                    if (st != EM_OK)
                        em__backend_failed(ctx, st, "op fallback: copy_h2d");
                } else {
                    em__error(ctx, st, "op fallback: reading the cpu result failed");
                }
                free(host);
            }
        }
        co->buffer_free(fb->dev, r->fbuf);
        r->fbuf = NULL;
    }
    return st;
}

/* Element range [lo, hi) that a view touches. */
static void view_extent(const em_kview *v, int64_t *lo, int64_t *hi)
{
    int64_t a = v->offset, b = v->offset;
    for (int d = 0; d < v->ndim; d++) {
        if (v->shape[d] == 0) {
            *lo = *hi = v->offset;
            return;
        }
        int64_t span = (v->shape[d] - 1) * v->strides[d];
        if (span < 0)
            a += span;
        else
            b += span;
    }
    *lo = a;
    *hi = b + 1;
}

static void notice(em_context *ctx, em__fallback *fb, size_t offset, int dt)
{
    int k = em__kernel_index(offset);
    if (k < 0 || (fb->noticed[k / 64] >> (k % 64) & 1))
        return;
    fb->noticed[k / 64] |= 1ull << (k % 64);
    char what[64] = "";
    if (em__kernel_at(ctx->ops, offset))
        em__snprintf(what, sizeof what, " for dtype %s", em_dtype_name((em_dtype)dt));
    em__log(ctx, EM_LOG_INFO, "op %s is not implemented by backend %s%s: running it on cpu (%s)",
            em__kernels[k].name, ctx->backend_name, what,
            fb->in_place ? "in place: its buffers are host memory"
                         : "operands copied to the host and back");
}

/* The device's queued work must be done before the host touches its buffers. */
static em_status quiesce(em_context *ctx)
{
    em_status st = ctx->ops->synchronize(ctx->dev);
    return st == EM_OK ? EM_OK : em__backend_failed(ctx, st, "op fallback: synchronize");
}

static em_status fallback_kernel(em_context *ctx, size_t offset, const em_kargs *a, int dt)
{
    em__fallback *fb = fallback_get(ctx);
    if (!fb)
        return ctx->status;
    em_kernel_fn fn = em__kernel_at(&fb->plugin->ops, offset);
    int k = em__kernel_index(offset);
    if (!fn)
        return unsupported(ctx, offset, dt, " (nor by the cpu backend)");
    int bad = em__kargs_undeclared(k, fb->kmask[k], a);
    if (bad >= 0)
        return unsupported(ctx, offset, bad, " (nor by the cpu backend)");
    notice(ctx, fb, offset, dt);
    if (fb->in_place) {
        em_status st = quiesce(ctx);
        if (st == EM_OK && (st = fn(fb->dev, a)) != EM_OK)
            em__error(ctx, st, "op %s (fallback on cpu): %s", em__kernel_name(offset),
                      fb->plugin->last_msg[0] ? fb->plugin->last_msg : em_status_name(st));
        return st;
    }
    /* Every view of the call: outputs first (written), then inputs (ABI 1.1 lists when
     * present, else out and in[0..2]). */
    enum { MAXV = 8 };
    const em_kview *views[MAXV];
    bool is_out[MAXV];
    int nv = 0;
    uint32_t n_out = a->outs && a->n_out ? a->n_out : 1;
    uint32_t n_in = a->ins ? a->n_in : 3;
    if (n_out + n_in > MAXV)
        return em__error(ctx, EM_ERR_INTERNAL, "op fallback: %s has %u views (at most %d)",
                         em__kernel_name(offset), n_out + n_in, MAXV);
    for (uint32_t i = 0; i < n_out; i++) {
        views[nv] = a->outs && a->n_out ? a->outs[i] : a->out;
        is_out[nv++] = true;
    }
    for (uint32_t i = 0; i < n_in; i++) {
        views[nv] = a->ins ? a->ins[i] : a->in[i];
        is_out[nv++] = false;
    }
    em_kview mapped[MAXV];
    const em_kview *mout[MAXV], *min[MAXV];
    mirror m = {.n = 0};
    for (int i = 0; i < nv; i++) {
        if (!views[i])
            continue;
        int64_t lo, hi;
        view_extent(views[i], &lo, &hi);
        size_t es = em_dtype_size((em_dtype)views[i]->dtype);
        mirror_add(&m, views[i]->buf, (size_t)lo * es, (size_t)hi * es, is_out[i]);
    }
    em_status st = mirror_in(ctx, fb, &m);
    em_kargs b = *a;
    if (st == EM_OK) {
        for (int i = 0; i < nv; i++) {
            if (!views[i])
                continue;
            range *r = mirror_find(&m, views[i]->buf);
            size_t es = em_dtype_size((em_dtype)views[i]->dtype);
            mapped[i] = *views[i];
            mapped[i].buf = r->fbuf;
            mapped[i].offset = views[i]->offset - (int64_t)(r->lo / es);
        }
        for (uint32_t i = 0; i < n_out; i++)
            mout[i] = views[i] ? &mapped[i] : NULL;
        for (uint32_t i = 0; i < n_in; i++)
            min[i] = views[n_out + i] ? &mapped[n_out + i] : NULL;
        b.out = mout[0];
        for (uint32_t i = 0; i < 3; i++)
            b.in[i] = i < n_in ? min[i] : NULL;
        b.outs = mout;
        b.n_out = n_out;
        b.ins = min;
        b.n_in = a->ins ? n_in : a->n_in;
        st = fn(fb->dev, &b);
        if (st != EM_OK)
            em__error(ctx, st, "op %s (fallback on cpu): %s", em__kernel_name(offset),
                      fb->plugin->last_msg[0] ? fb->plugin->last_msg : em_status_name(st));
    }
    em_status st2 = mirror_out(ctx, fb, &m, st == EM_OK);
    return st != EM_OK ? st : st2;
}

/* Elements a gemm operand spans: rows x cols with leading dim ld, over batches. */
static void gemm_extent(int64_t off, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                        int64_t bstride, int64_t *lo, int64_t *hi)
{
    int64_t last = off + (rows - 1) * ld + (cols - 1);
    int64_t span = (batch - 1) * bstride;
    *lo = off + (span < 0 ? span : 0);
    *hi = last + (span > 0 ? span : 0) + 1;
}

static em_status fallback_gemm(em_context *ctx, const em_gemm_args *g)
{
    em__fallback *fb = fallback_get(ctx);
    if (!fb)
        return ctx->status;
    if (!fb->plugin->ops.gemm || !(fb->kmask[0] & EM_DTYPE_BIT(g->dtype)))
        return unsupported(ctx, EM_KERNEL_OFFSET(gemm), fb->plugin->ops.gemm ? g->dtype : -1,
                           " (nor by the cpu backend)");
    notice(ctx, fb, EM_KERNEL_OFFSET(gemm), g->dtype);
    if (fb->in_place) {
        em_status st = quiesce(ctx);
        if (st == EM_OK && (st = fb->plugin->ops.gemm(fb->dev, g)) != EM_OK)
            em__error(ctx, st, "op gemm (fallback on cpu): %s",
                      fb->plugin->last_msg[0] ? fb->plugin->last_msg : em_status_name(st));
        return st;
    }
    size_t es = em_dtype_size((em_dtype)g->dtype);
    int64_t lo[3], hi[3];
    gemm_extent(g->a_offset, g->trans_a ? g->k : g->m, g->trans_a ? g->m : g->k, g->lda, g->batch,
                g->a_batch_stride, &lo[0], &hi[0]);
    gemm_extent(g->b_offset, g->trans_b ? g->n : g->k, g->trans_b ? g->k : g->n, g->ldb, g->batch,
                g->b_batch_stride, &lo[1], &hi[1]);
    gemm_extent(g->c_offset, g->m, g->n, g->ldc, g->batch, g->c_batch_stride, &lo[2], &hi[2]);
    mirror m = {.n = 0};
    void *bufs[3] = {g->a, g->b, g->c};
    for (int i = 0; i < 3; i++)
        mirror_add(&m, bufs[i], (size_t)lo[i] * es, (size_t)hi[i] * es, i == 2);
    em_status st = mirror_in(ctx, fb, &m);
    if (st == EM_OK) {
        em_gemm_args h = *g;
        range *ra = mirror_find(&m, g->a), *rb = mirror_find(&m, g->b), *rc = mirror_find(&m, g->c);
        h.a = ra->fbuf;
        h.a_offset -= (int64_t)(ra->lo / es);
        h.b = rb->fbuf;
        h.b_offset -= (int64_t)(rb->lo / es);
        h.c = rc->fbuf;
        h.c_offset -= (int64_t)(rc->lo / es);
        st = fb->plugin->ops.gemm(fb->dev, &h);
        if (st != EM_OK)
            em__error(ctx, st, "op gemm (fallback on cpu): %s",
                      fb->plugin->last_msg[0] ? fb->plugin->last_msg : em_status_name(st));
    }
    em_status st2 = mirror_out(ctx, fb, &m, st == EM_OK);
    return st != EM_OK ? st : st2;
}

/* ------------------------------------------------------------------ the entry points */

em_status em__kernel_call(em_context *ctx, size_t offset, const em_kargs *a)
{
    em_status fault = em__kernel_fault(ctx, offset, NULL);
    if (fault != EM_OK)
        return fault;
    int k = em__kernel_index(offset);
    em_kernel_fn fn = em__kernel_at(ctx->ops, offset);
    int bad = fn ? em__kargs_undeclared(k, ctx->kmask[k], a) : a->out->dtype;
    if (fn && bad < 0) {
        em_status st = fn(ctx->dev, a);
        return st == EM_OK ? EM_OK : em__backend_failed(ctx, st, em__kernel_name(offset));
    }
    if (!ctx->res.op_fallback_cpu || !strcmp(ctx->backend_name, "cpu"))
        return unsupported(ctx, offset, fn ? bad : -1, NULL);
    return fallback_kernel(ctx, offset, a, bad);
}

em_status em__gemm_call(em_context *ctx, const em_gemm_args *g)
{
    em_status fault = em__kernel_fault(ctx, 0, "gemm");
    if (fault != EM_OK)
        return fault;
    if (ctx->ops->gemm && (ctx->kmask[0] & EM_DTYPE_BIT(g->dtype))) {
        em_status st = ctx->ops->gemm(ctx->dev, g);
        return st == EM_OK ? EM_OK : em__backend_failed(ctx, st, "gemm");
    }
    if (!ctx->res.op_fallback_cpu || !strcmp(ctx->backend_name, "cpu"))
        return unsupported(ctx, EM_KERNEL_OFFSET(gemm), ctx->ops->gemm ? g->dtype : -1, NULL);
    return fallback_gemm(ctx, g);
}

/* "add" for a NULL entry, "add[f64]" for a declared entry that lacks dtypes the core uses. */
static int describe_missing(const em_context *ctx, int k, char *buf, size_t n)
{
    const em__kernel_desc *kd = &em__kernels[k];
    if (!em__kernel_at(ctx->ops, kd->offset))
        return snprintf(buf, n, "%s", kd->name);
    em_dtype_mask miss = kd->uses & ~ctx->kmask[k];
    if (!ctx->props.fp64)   /* said once for all ops, not per op */
        miss &= ~EM_DTYPE_BIT(EM_F64);
    if (!miss)
        return 0;
    int used = snprintf(buf, n, "%s[", kd->name);
    for (int d = 0, first = 1; d < EM_DTYPE_COUNT_; d++) {
        if (miss & EM_DTYPE_BIT(d)) {
            used += snprintf(buf + used, n > (size_t)used ? n - (size_t)used : 0, "%s%s",
                             first ? "" : ",", em_dtype_name((em_dtype)d));
            first = 0;
        }
    }
    return used + snprintf(buf + used, n > (size_t)used ? n - (size_t)used : 0, "]");
}

void em__announce_fallbacks(em_context *ctx)
{
    char list[1024];
    size_t used = 0;
    int missing = 0;
    list[0] = 0;
    for (int i = 0; i < em__n_kernels; i++) {
        if (em__kernels[i].optional)
            continue;
        char one[96];
        if (describe_missing(ctx, i, one, sizeof one) <= 0)
            continue;
        missing++;
        if (used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", missing > 1 ? ", " : "",
                                     one);
    }
    const char *how = ctx->props.flags & EM_DEVICE_HOST_BUFFERS
                          ? "in place, on the device's host-memory buffers"
                          : "copying operands to the host and back";
    if (!ctx->props.fp64) {
        if (ctx->res.op_fallback_cpu)
            em__log(ctx, EM_LOG_WARN, "device %s:%d (%s) has no fp64 support: f64 ops run on cpu, "
                    "%s ([device] op_fallback = cpu)", ctx->backend_name, ctx->device_index,
                    ctx->props.name, how);
        else
            em__log(ctx, EM_LOG_INFO, "device %s:%d (%s) has no fp64 support: f64 ops fail "
                    "([device] op_fallback = error)", ctx->backend_name, ctx->device_index,
                    ctx->props.name);
    }
    if (!missing)
        return;
    if (ctx->res.op_fallback_cpu)
        em__log(ctx, EM_LOG_WARN, "backend '%s' does not implement %d op%s (%s): they run on "
                "cpu, %s ([device] op_fallback = cpu)", ctx->backend_name, missing,
                missing > 1 ? "s" : "", list, how);
    else
        em__log(ctx, EM_LOG_INFO, "backend '%s' does not implement %d op%s (%s): calls fail "
                "([device] op_fallback = error)", ctx->backend_name, missing, missing > 1 ? "s" : "",
                list);
}
