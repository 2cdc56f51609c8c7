/* layers/validate/validate.c — ember-layer-validate.so: every kernel and gemm call is checked
 * against the core's documented preconditions, then run twice: on the backend, and on the
 * cpu backend (the core's reference device) on copies of its operands' buffer ranges. The
 * outputs are compared (integers and bool exactly; floats within [validate] ulps units in the
 * last place, or an absolute tolerance grown with the number of terms summed and the
 * operands' magnitude for the reductions and gemm), and an output holding NaN or Inf where
 * the inputs had none is flagged. The first divergence is reported with the kernel, the op it
 * ran for, the shapes and dtype, the first wrong element and the largest error; under
 * `divergence = error` (the default) the call fails with that message and its outputs are
 * restored, so the failed call changed nothing.
 *
 * [validate] keys:
 *   nan = warn|error|off     NaN/Inf in an output whose inputs had none (default warn)
 *   divergence = error|warn  a result beyond tolerance (default error)
 *   ulps = N                 tolerance in units in the last place (default 64)
 * The cost: every call copies its operands to the host and runs on the cpu as well. */
#include "validate.h"

#include <ember/plugin_kit.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static layer_map g_map;

static const char *const validate_keys[] = {"nan", "divergence", "ulps", NULL};

/* ------------------------------------------------------------------ buffer bookkeeping */

static bool buf_put(val *p, void *buf, size_t bytes)
{
    if ((p->n_bufs + 1) * 2 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        vbuf *nb = p->host->alloc(p->hc, sizeof *nb * cap);
        if (!nb)
            return false;
        memset(nb, 0, sizeof *nb * cap);
        for (size_t i = 0; i < p->cap; i++) {
            if (!p->bufs[i].buf)
                continue;
            size_t h = ((uintptr_t)p->bufs[i].buf >> 4) % cap;
            while (nb[h].buf)
                h = (h + 1) % cap;
            nb[h] = p->bufs[i];
        }
        if (p->bufs)
            p->host->free(p->hc, p->bufs);
        p->bufs = nb;
        p->cap = cap;
    }
    size_t h = ((uintptr_t)buf >> 4) % p->cap;
    while (p->bufs[h].buf && p->bufs[h].buf != buf)
        h = (h + 1) % p->cap;
    if (!p->bufs[h].buf)
        p->n_bufs++;
    p->bufs[h] = (vbuf){buf, bytes};
    return true;
}

static void buf_del(val *p, void *buf)
{
    if (!p->cap)
        return;
    size_t h = ((uintptr_t)buf >> 4) % p->cap;
    for (size_t i = 0; i < p->cap && p->bufs[h].buf; i++, h = (h + 1) % p->cap) {
        if (p->bufs[h].buf != buf)
            continue;
        /* remove and re-insert the rest of the cluster */
        p->bufs[h].buf = NULL;
        p->n_bufs--;
        for (size_t j = (h + 1) % p->cap; p->bufs[j].buf; j = (j + 1) % p->cap) {
            vbuf b = p->bufs[j];
            p->bufs[j].buf = NULL;
            p->n_bufs--;
            buf_put(p, b.buf, b.bytes);
        }
        return;
    }
}

/* ------------------------------------------------------------------ mirrors */

#define MAX_MIRRORS 16

typedef struct mirror {
    void *dbuf;            /* the device buffer */
    size_t lo, hi;         /* byte range copied (lo aligned down to 64) */
    unsigned char *host;   /* its contents before the call */
    void *rbuf;            /* the reference copy */
    bool written;          /* an output lies in it */
} mirror;

typedef struct mirrors {
    mirror m[MAX_MIRRORS];
    int n;
} mirrors;

static mirror *mirror_add(mirrors *ms, void *buf, size_t lo, size_t hi, bool written)
{
    lo &= ~(size_t)63;   /* keep the elements' alignment in the copy */
    for (int i = 0; i < ms->n; i++)
        if (ms->m[i].dbuf == buf) {
            if (lo < ms->m[i].lo)
                ms->m[i].lo = lo;
            if (hi > ms->m[i].hi)
                ms->m[i].hi = hi;
            ms->m[i].written |= written;
            return &ms->m[i];
        }
    if (ms->n == MAX_MIRRORS)
        return NULL;
    ms->m[ms->n] = (mirror){.dbuf = buf, .lo = lo, .hi = hi, .written = written};
    return &ms->m[ms->n++];
}

static mirror *mirror_of(mirrors *ms, const void *buf)
{
    for (int i = 0; i < ms->n; i++)
        if (ms->m[i].dbuf == buf)
            return &ms->m[i];
    return NULL;
}

static void mirrors_free(val *p, mirrors *ms)
{
    for (int i = 0; i < ms->n; i++) {
        if (ms->m[i].rbuf)
            p->ref->buffer_free(p->rdev, ms->m[i].rbuf);
        if (ms->m[i].host)
            p->host->free(p->hc, ms->m[i].host);
    }
    ms->n = 0;
}

/* Copy every range to the host and to the reference device. false: could not (the check is
 * skipped; the reason is in p->ref_problem). */
static bool mirrors_fill(val *p, mirrors *ms)
{
    for (int i = 0; i < ms->n; i++) {
        mirror *m = &ms->m[i];
        size_t bytes = m->hi - m->lo;
        if (!(m->host = p->host->alloc(p->hc, bytes)) ||
            (p->ref && p->ref->buffer_alloc(p->rdev, bytes, &m->rbuf) != EM_OK)) {
            snprintf(p->ref_problem, sizeof p->ref_problem, "out of memory mirroring %zu bytes",
                     bytes);
            return false;
        }
        if (p->next->ops->copy_d2h(p->dev, m->host, m->dbuf, m->lo, bytes) != EM_OK ||
            (p->ref && p->ref->copy_h2d(p->rdev, m->rbuf, 0, m->host, bytes) != EM_OK)) {
            snprintf(p->ref_problem, sizeof p->ref_problem, "copying an operand failed");
            return false;
        }
    }
    return true;
}

/* v on the reference: its buffer's mirror, the offset moved by the range's start. */
static void ref_view(mirrors *ms, const em_kview *v, em_kview *r)
{
    *r = *v;
    mirror *m = mirror_of(ms, v->buf);
    r->buf = m->rbuf;
    r->offset = v->offset - (int64_t)(m->lo / emk_dtype_size(v->dtype));
}

/* ------------------------------------------------------------------ scanning */

typedef struct scan {
    bool nonfinite;
    double maxabs;
} scan;

static void scan_view(const mirror *m, const em_kview *v, scan *s)
{
    if (!emk_dtype_is_float(v->dtype))
        return;
    const unsigned char *base = m->host;
    int64_t off = v->offset - (int64_t)(m->lo / emk_dtype_size(v->dtype));
    emk_walk w;
    emk_walk_start(&w, v->ndim, v->shape);
    emk_walk_view(&w, off, v->strides);
    do {
        double x = v_get(base, v->dtype, w.off[0]);
        if (!isfinite(x))
            s->nonfinite = true;
        else if (fabs(x) > s->maxabs)
            s->maxabs = fabs(x);
    } while (emk_walk_next(&w));
}

static double eps_of(int32_t dt)
{
    return dt == EM_F32 ? (double)FLT_EPSILON : DBL_EPSILON;
}

/* ------------------------------------------------------------------ comparing */

typedef struct verdict {
    int64_t bad, total;
    int64_t first_idx[EM_MAX_DIMS], worst_idx[EM_MAX_DIMS];
    double first_got, first_want, worst_err;
    bool any_bad;
    bool new_nonfinite;        /* NaN/Inf in the backend's output */
    int64_t nf_idx[EM_MAX_DIMS];
    double nf_val;
} verdict;

/* Compare out view v: the backend's result (dev_host, a copy of its mirror range) with the
 * reference's (ref_host). */
static void compare_view(const val *p, const mirror *m, const unsigned char *dev_host,
                         const unsigned char *ref_host, const em_kview *v, double tol,
                         double ulps, verdict *vd)
{
    int64_t off = v->offset - (int64_t)(m->lo / emk_dtype_size(v->dtype));
    emk_walk w;
    emk_walk_start(&w, v->ndim, v->shape);
    emk_walk_view(&w, off, v->strides);
    (void)p;
    do {
        double got = v_get(dev_host, v->dtype, w.off[0]);
        double want = v_get(ref_host, v->dtype, w.off[0]);
        vd->total++;
        if (emk_dtype_is_float(v->dtype) && !isfinite(got) && !vd->new_nonfinite) {
            vd->new_nonfinite = true;
            memcpy(vd->nf_idx, w.idx, sizeof vd->nf_idx);
            vd->nf_val = got;
        }
        if (v_close(got, want, v->dtype, ulps, tol))
            continue;
        double err = isnan(got) || isnan(want) || isinf(got) || isinf(want) ? INFINITY
                                                                            : fabs(got - want);
        if (!vd->any_bad) {
            vd->any_bad = true;
            memcpy(vd->first_idx, w.idx, sizeof vd->first_idx);
            vd->first_got = got;
            vd->first_want = want;
        }
        if (vd->bad == 0 || err > vd->worst_err) {
            vd->worst_err = err;
            memcpy(vd->worst_idx, w.idx, sizeof vd->worst_idx);
        }
        vd->bad++;
    } while (emk_walk_next(&w));
}

static void num_text(double x, int32_t dt, char *buf, size_t n)
{
    if (emk_dtype_is_float(dt))
        snprintf(buf, n, "%.9g", x);
    else
        snprintf(buf, n, "%.0f", x);
}

static const char *op_name(const val *p)
{
    return p->depth > 0 && p->depth <= VAL_MAX_DEPTH ? p->op[p->depth - 1] : "(none)";
}

/* ------------------------------------------------------------------ one checked call */

/* What a kernel needs from the generic path. */
typedef struct call {
    const char *name;
    int slot;                  /* for one warning per kernel */
    const em_kview *outs[4];
    int n_out;
    const em_kview *ins[8];
    int n_in;
    bool has_nonfinite_param;
} call;

static void restore(val *p, mirrors *ms)
{
    for (int i = 0; i < ms->n; i++)
        if (ms->m[i].written)
            p->next->ops->copy_h2d(p->dev, ms->m[i].dbuf, ms->m[i].lo, ms->m[i].host,
                                   ms->m[i].hi - ms->m[i].lo);
}

/* Report (log or fail) a finding; returns the status the wrapper returns. */
static em_status finding(val *p, const call *c, mirrors *ms, int mode, const char *text)
{
    if (!p->first_reported) {
        p->first_reported = true;
        snprintf(p->first, sizeof p->first, "%s", text);
    }
    if (mode == MODE_ERROR) {
        restore(p, ms);
        return p->host->error(p->hc, EM_ERR_BACKEND, "%s", text);
    }
    if (c->slot >= 0 && c->slot < 128 * 8 && !(p->warned[c->slot / 8] & (1u << (c->slot % 8)))) {
        p->warned[c->slot / 8] |= (unsigned char)(1u << (c->slot % 8));
        p->host->log(p->hc, EM_LOG_WARN, "%s (further findings in kernel %s are counted, not "
                     "shown)", text, c->name);
    }
    return EM_OK;
}

static void views_text(const call *c, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < c->n_in && used < n; i++) {
        char s[160];
        v_shape_text(c->ins[i]->ndim, c->ins[i]->shape, s, sizeof s);
        used += (size_t)snprintf(buf + used, n - used, "%sin[%d] %s %s", i ? ", " : "", i, s,
                                 emk_dtype_name(c->ins[i]->dtype));
    }
}

/* After the backend ran (status st): compare with the reference, check NaN. */
static em_status judge(val *p, const call *c, mirrors *ms, bool compared, double tol, double ulps,
                       bool inputs_nonfinite)
{
    em_status st = EM_OK;
    for (int o = 0; o < c->n_out && st == EM_OK; o++) {
        const em_kview *v = c->outs[o];
        mirror *m = mirror_of(ms, v->buf);
        size_t bytes = m->hi - m->lo;
        unsigned char *dh = p->host->alloc(p->hc, bytes), *rh = p->host->alloc(p->hc, bytes);
        if (!dh || !rh || p->next->ops->copy_d2h(p->dev, dh, m->dbuf, m->lo, bytes) != EM_OK ||
            (compared && p->ref->copy_d2h(p->rdev, rh, m->rbuf, 0, bytes) != EM_OK)) {
            if (dh)
                p->host->free(p->hc, dh);
            if (rh)
                p->host->free(p->hc, rh);
            return EM_OK;   /* cannot look: say nothing rather than something wrong */
        }
        if (!compared)
            memcpy(rh, dh, bytes);
        verdict vd;
        memset(&vd, 0, sizeof vd);
        compare_view(p, m, dh, rh, v, tol, ulps, &vd);
        p->host->free(p->hc, dh);
        p->host->free(p->hc, rh);
        char shape[160], ins[600], text[1024];
        v_shape_text(v->ndim, v->shape, shape, sizeof shape);
        views_text(c, ins, sizeof ins);
        char outname[16];
        snprintf(outname, sizeof outname, c->n_out > 1 ? "outs[%d]" : "out", o);
        if (vd.any_bad) {
            p->diverged++;
            char at[160], worst[160], got[40], want[40];
            v_index_text(v->ndim, vd.first_idx, at, sizeof at);
            v_index_text(v->ndim, vd.worst_idx, worst, sizeof worst);
            num_text(vd.first_got, v->dtype, got, sizeof got);
            num_text(vd.first_want, v->dtype, want, sizeof want);
            snprintf(text, sizeof text, "validate: kernel %s (op %s) diverges from the cpu "
                     "reference: %s %s %s, first wrong element %s%s = %s where cpu gives %s; %lld "
                     "of %lld elements beyond tolerance (%g ulp or %.3g), largest error %.6g at "
                     "%s%s; inputs: %s", c->name, op_name(p), outname, shape,
                     emk_dtype_name(v->dtype), outname, at, got, want, (long long)vd.bad,
                     (long long)vd.total, emk_dtype_is_float(v->dtype) ? ulps : 0, tol,
                     vd.worst_err, outname, worst, ins[0] ? ins : "none");
            st = finding(p, c, ms, p->div_mode, text);
            continue;
        }
        if (vd.new_nonfinite && !inputs_nonfinite && !c->has_nonfinite_param &&
            p->nan_mode != MODE_OFF) {
            p->nans++;
            char at[160];
            v_index_text(v->ndim, vd.nf_idx, at, sizeof at);
            snprintf(text, sizeof text, "validate: kernel %s (op %s) wrote %s to %s %s %s at %s "
                     "although no input holds NaN or Inf%s; inputs: %s", c->name, op_name(p),
                     isnan(vd.nf_val) ? "NaN" : vd.nf_val > 0 ? "Inf" : "-Inf", outname, shape,
                     emk_dtype_name(v->dtype), at,
                     compared ? " (the cpu reference gives the same)" : "", ins[0] ? ins : "none");
            st = finding(p, c, ms, p->nan_mode, text);
        }
    }
    return st;
}

/* The layer's view of a kernel: its outputs, inputs and the tolerance rule. */
enum { TOL_ELEMENTWISE, TOL_SUM, TOL_PROD, TOL_SOFTMAX, TOL_SCATTER, TOL_WINDOW, TOL_CONV,
       TOL_NONE };

static int tol_kind(const char *name)
{
    if (!strcmp(name, "sum"))
        return TOL_SUM;
    if (!strcmp(name, "prod"))
        return TOL_PROD;
    if (!strcmp(name, "softmax") || !strcmp(name, "log_softmax"))
        return TOL_SOFTMAX;
    if (!strcmp(name, "scatter_add"))
        return TOL_SCATTER;
    /* sums over pooling windows, or over the column entries of one pixel */
    if (!strcmp(name, "avg_pool2d") || !strcmp(name, "avg_pool2d_grad") ||
        !strcmp(name, "col2im") || !strcmp(name, "max_pool2d_grad"))
        return TOL_WINDOW;
    /* whole convolutions: sums of products over windows, channels (and the batch) */
    if (!strcmp(name, "conv2d") || !strcmp(name, "conv2d_grad_input") ||
        !strcmp(name, "conv2d_grad_weight"))
        return TOL_CONV;
    return TOL_ELEMENTWISE;   /* im2col and max_pool2d copy: exact, as elementwise */
}

static bool is_elementwise(const char *name)
{
    static const char *const not_ew[] = {"sum", "prod", "max_dim", "min_dim", "softmax",
                                         "log_softmax", "index_select", "gather", "scatter_add",
                                         "avg_pool2d", "avg_pool2d_grad", "im2col", "col2im",
                                         "max_pool2d", "conv2d", "conv2d_grad_input",
                                         "conv2d_grad_weight", "max_pool2d_grad", NULL};
    for (int i = 0; not_ew[i]; i++)
        if (!strcmp(name, not_ew[i]))
            return false;
    return true;
}

static int64_t numel(const em_kview *v)
{
    int64_t n = 1;
    for (int d = 0; d < v->ndim; d++)
        n *= v->shape[d];
    return n;
}

static em_status check_kernel(val *p, const char *name, size_t off, void *dev, const em_kargs *a)
{
    em_kernel_fn fn = layer_kernel_at(p->next->ops, off);
    p->calls++;
    char msg[700];
    if (!v_check_kargs(p, name, is_elementwise(name), a, msg, sizeof msg)) {
        p->precondition_failures++;
        return p->host->error(p->hc, EM_ERR_INTERNAL, "validate: kernel %s (op %s) called against "
                              "its preconditions: %s", name, op_name(p), msg);
    }
    call c = {.name = name, .slot = (int)(off / sizeof(void *))};
    c.n_out = a->n_out ? (int)a->n_out : 1;
    if (c.n_out > 4)
        c.n_out = 4;
    for (int i = 0; i < c.n_out; i++)
        c.outs[i] = a->outs ? a->outs[i] : a->out;
    int n_in = a->n_in ? (int)a->n_in : 3;
    for (int i = 0; i < n_in && c.n_in < 8; i++) {
        const em_kview *v = a->n_in ? a->ins[i] : a->in[i];
        if (v)
            c.ins[c.n_in++] = v;
    }
    for (int i = 0; i < 4; i++)
        c.has_nonfinite_param |= !isfinite(a->p[i]);
    for (uint32_t i = 0; a->fp && i < a->n_fp; i++)
        c.has_nonfinite_param |= !isfinite(a->fp[i]);
    /* copies of every operand's range, also on the reference */
    mirrors ms = {.n = 0};
    bool ok = true;
    for (int i = 0; i < c.n_out && ok; i++) {
        size_t lo, hi;
        v_view_range(c.outs[i], &lo, &hi);
        ok = mirror_add(&ms, c.outs[i]->buf, lo, hi, true) != NULL;
    }
    for (int i = 0; i < c.n_in && ok; i++) {
        size_t lo, hi;
        v_view_range(c.ins[i], &lo, &hi);
        ok = mirror_add(&ms, c.ins[i]->buf, lo, hi, false) != NULL;
    }
    em_kernel_fn rfn = p->ref ? layer_kernel_at(p->ref, off) : NULL;
    ok = ok && mirrors_fill(p, &ms);
    scan in_scan = {0};
    for (int i = 0; ok && i < c.n_in; i++)
        scan_view(mirror_of(&ms, c.ins[i]->buf), c.ins[i], &in_scan);
    /* the reference first, on its copies (a float to integer copy of NaN or of values out of
     * range is unspecified: not compared) */
    bool unspecified = !strcmp(name, "copy") && emk_dtype_is_float(a->in[0]->dtype) &&
                       !emk_dtype_is_float(a->out->dtype) && a->out->dtype != EM_BOOL;
    bool compared = false;
    if (ok && rfn && !unspecified) {
        em_kview rv[12];
        const em_kview *routs[4], *rins[8];
        for (int i = 0; i < c.n_out; i++) {
            ref_view(&ms, c.outs[i], &rv[i]);
            routs[i] = &rv[i];
        }
        em_kargs r = *a;
        r.out = routs[0];
        r.outs = routs;
        int k = 0;
        for (int i = 0; i < n_in; i++) {
            const em_kview *v = a->n_in ? a->ins[i] : a->in[i];
            rins[i] = NULL;
            if (v) {
                ref_view(&ms, v, &rv[4 + k]);
                rins[i] = &rv[4 + k++];
            }
        }
        for (int i = 0; i < 3; i++)
            r.in[i] = i < n_in ? rins[i] : NULL;
        if (a->n_in)
            r.ins = rins;
        compared = rfn(p->rdev, &r) == EM_OK;
    }
    em_status st = fn(dev, a);
    if (st != EM_OK || !ok) {
        mirrors_free(p, &ms);
        return st;
    }
    p->compared += compared;
    /* the tolerance: ulps, and an absolute one from the operands */
    int32_t dt = a->out->dtype;
    double e = emk_dtype_is_float(dt) ? eps_of(dt) : 0, u = p->ulps, tol = u * e *
               (in_scan.maxabs > 1 ? in_scan.maxabs : 1);
    switch (tol_kind(name)) {
    case TOL_SUM: {
        double terms = (double)numel(a->in[0]) / (double)numel(a->out);
        tol = u * e * terms * in_scan.maxabs * fabs(a->p[0]);
        break;
    }
    case TOL_PROD:
        u *= (double)numel(a->in[0]) / (double)numel(a->out);
        break;
    case TOL_SOFTMAX:
        tol = u * e * (double)a->in[0]->shape[1] * (1 + in_scan.maxabs);
        break;
    case TOL_SCATTER:
        tol = u * e * (double)numel(a->in[1]) * (1 + in_scan.maxabs);
        break;
    case TOL_WINDOW: {
        /* terms per output: the window (ip[0] x ip[1]; an adaptive one spans at most the
         * size ratio plus one per dim), so bound by both */
        double in_n = (double)numel(a->in[0]), out_n = (double)numel(a->out);
        double terms = in_n > out_n ? in_n / out_n : out_n / in_n;
        if (a->ip && a->n_ip >= 2 && (double)(a->ip[0] * a->ip[1]) > terms)
            terms = (double)(a->ip[0] * a->ip[1]);
        tol = u * e * (terms + 4) * (1 + in_scan.maxabs);
        break;
    }
    case TOL_CONV: {
        /* products summed per output: C/g * kh * kw (conv2d), OC/g * kh * kw (the input's
         * gradient), N * oh * ow (the weight's) */
        const em_kview *w1 = a->n_in >= 2 ? a->ins[1] : NULL;
        double terms = 1;
        if (w1 && w1->ndim == 4 && a->ip && a->n_ip >= 11 && a->ip[10] > 0)
            terms = !strcmp(name, "conv2d") ? (double)(w1->shape[1] * w1->shape[2] * w1->shape[3])
                    : !strcmp(name, "conv2d_grad_input")
                        ? (double)(w1->shape[0] / a->ip[10] * w1->shape[2] * w1->shape[3])
                        : (double)(w1->shape[0] * w1->shape[2] * w1->shape[3]);
        tol = u * e * (terms + 4) * (1 + in_scan.maxabs * in_scan.maxabs);
        break;
    }
    default:
        break;
    }
    st = judge(p, &c, &ms, compared, tol, u, in_scan.nonfinite);
    mirrors_free(p, &ms);
    return st;
}

#define WRAP_KERNEL(k)                                                                       \
    static em_status w_##k(void *dev, const em_kargs *a)                                     \
    {                                                                                        \
        return check_kernel(layer_map_get(&g_map, dev), #k, offsetof(em_backend_ops, k), dev, \
                            a);                                                              \
    }
LAYER_KERNELS(WRAP_KERNEL)
#undef WRAP_KERNEL

/* gemm's operands as 3-D views (batch, rows, cols), so that the kernels' machinery serves */
static void gemm_view(em_kview *v, int32_t dt, void *buf, int64_t off, int64_t rows, int64_t cols,
                      int64_t ld, int64_t bstride, int64_t batch)
{
    memset(v, 0, sizeof *v);
    v->struct_size = sizeof *v;
    v->buf = buf;
    v->offset = off;
    v->dtype = dt;
    v->ndim = 3;
    v->shape[0] = batch;
    v->shape[1] = rows;
    v->shape[2] = cols;
    v->strides[0] = bstride;
    v->strides[1] = ld;
    v->strides[2] = 1;
}

static em_status w_gemm(void *dev, const em_gemm_args *g)
{
    val *p = layer_map_get(&g_map, dev);
    p->calls++;
    char msg[700];
    if (!v_check_gemm(p, g, msg, sizeof msg)) {
        p->precondition_failures++;
        return p->host->error(p->hc, EM_ERR_INTERNAL, "validate: kernel gemm (op %s) called "
                              "against its preconditions: %s", op_name(p), msg);
    }
    em_kview va, vb, vc;
    gemm_view(&vc, g->dtype, g->c, g->c_offset, g->m, g->n, g->ldc, g->c_batch_stride, g->batch);
    call c = {.name = "gemm", .slot = (int)(offsetof(em_backend_ops, gemm) / sizeof(void *)),
              .n_out = 1, .outs = {&vc}};
    if (g->k > 0) {
        gemm_view(&va, g->dtype, g->a, g->a_offset, g->trans_a ? g->k : g->m,
                  g->trans_a ? g->m : g->k, g->lda, g->a_batch_stride, g->batch);
        gemm_view(&vb, g->dtype, g->b, g->b_offset, g->trans_b ? g->n : g->k,
                  g->trans_b ? g->k : g->n, g->ldb, g->b_batch_stride, g->batch);
        c.ins[c.n_in++] = &va;
        c.ins[c.n_in++] = &vb;
    }
    if (g->beta != 0)
        c.ins[c.n_in++] = &vc;   /* C is read */
    c.has_nonfinite_param = !isfinite(g->alpha) || !isfinite(g->beta);
    mirrors ms = {.n = 0};
    bool ok = true;
    for (int i = 0; i < c.n_in + 1 && ok; i++) {
        const em_kview *v = i == 0 ? &vc : c.ins[i - 1];
        size_t lo, hi;
        v_view_range(v, &lo, &hi);
        ok = mirror_add(&ms, v->buf, lo, hi, i == 0) != NULL;
    }
    ok = ok && mirrors_fill(p, &ms);
    scan sa = {0}, sb = {0}, sc = {0};
    if (ok && g->k > 0) {
        scan_view(mirror_of(&ms, va.buf), &va, &sa);
        scan_view(mirror_of(&ms, vb.buf), &vb, &sb);
    }
    if (ok && g->beta != 0)
        scan_view(mirror_of(&ms, vc.buf), &vc, &sc);
    bool compared = false;
    if (ok && p->ref && p->ref->gemm) {
        em_gemm_args r = *g;
        mirror *m = mirror_of(&ms, g->c);
        size_t es = emk_dtype_size(g->dtype);
        r.c = m->rbuf;
        r.c_offset = g->c_offset - (int64_t)(m->lo / es);
        if (g->k > 0) {
            m = mirror_of(&ms, g->a);
            r.a = m->rbuf;
            r.a_offset = g->a_offset - (int64_t)(m->lo / es);
            m = mirror_of(&ms, g->b);
            r.b = m->rbuf;
            r.b_offset = g->b_offset - (int64_t)(m->lo / es);
        }
        compared = p->ref->gemm(p->rdev, &r) == EM_OK;
    }
    em_status st = p->next->ops->gemm(dev, g);
    if (st != EM_OK || !ok) {
        mirrors_free(p, &ms);
        return st;
    }
    p->compared += compared;
    /* |alpha| k max|A| max|B| + |beta| max|C| bounds every term summed */
    double e = eps_of(g->dtype);
    double tol = p->ulps * e * (fabs(g->alpha) * (double)g->k * sa.maxabs * sb.maxabs +
                                fabs(g->beta) * sc.maxabs);
    st = judge(p, &c, &ms, compared, tol, p->ulps, sa.nonfinite || sb.nonfinite || sc.nonfinite);
    mirrors_free(p, &ms);
    return st;
}

static em_status w_buffer_alloc(void *dev, size_t bytes, void **buf)
{
    val *p = layer_map_get(&g_map, dev);
    em_status st = p->next->ops->buffer_alloc(dev, bytes, buf);
    if (st == EM_OK && !buf_put(p, *buf, bytes)) {
        p->next->ops->buffer_free(dev, *buf);
        *buf = NULL;
        return p->host->error(p->hc, EM_ERR_OOM, "validate: out of memory tracking buffers");
    }
    return st;
}

static void w_buffer_free(void *dev, void *buf)
{
    val *p = layer_map_get(&g_map, dev);
    buf_del(p, buf);
    p->next->ops->buffer_free(dev, buf);
}

#define ENTRY(k) .k = w_##k,
static const em_backend_ops validate_ops = {
    .struct_size = sizeof(em_backend_ops),
    .buffer_alloc = w_buffer_alloc,
    .buffer_free = w_buffer_free,
    .gemm = w_gemm,
    LAYER_KERNELS(ENTRY)
};
#undef ENTRY

/* ------------------------------------------------------------------ events, lifetime */

static void on_event(void *ctx, const em_layer_event *ev)
{
    val *p = ctx;
    if (ev->kind == EM_LAYER_OP_BEGIN) {
        if (p->depth < VAL_MAX_DEPTH)
            snprintf(p->op[p->depth], sizeof p->op[0], "%s", ev->name ? ev->name : "?");
        p->depth++;
    } else if (ev->kind == EM_LAYER_OP_END && p->depth > 0) {
        p->depth--;
    }
}

static void destroy(void *ctx)
{
    val *p = ctx;
    em_log_level lvl = p->diverged || p->nans || p->precondition_failures ? EM_LOG_WARN
                                                                         : EM_LOG_INFO;
    p->host->log(p->hc, lvl, "validate: %llu kernel calls checked, %llu compared with the cpu "
                 "reference%s%s: %llu diverged, %llu wrote NaN/Inf from finite inputs, %llu broke "
                 "a precondition%s%s", (unsigned long long)p->calls,
                 (unsigned long long)p->compared, p->ref ? "" : " (no reference: ",
                 p->ref ? "" : p->ref_problem, (unsigned long long)p->diverged,
                 (unsigned long long)p->nans, (unsigned long long)p->precondition_failures,
                 p->first_reported ? "; the first: " : "", p->first_reported ? p->first : "");
    layer_map_del(&g_map, p->dev, p);
    if (p->bufs)
        p->host->free(p->hc, p->bufs);
    p->host->free(p->hc, p);
}

/* layer_config_choice, mapped through values */
static em_status choice(const em_host *host, em_host_ctx *hc, const em_config_kv *config,
                        size_t n, const char *key, const char *const *names, const int *values,
                        int *out)
{
    int i = -1;
    em_status st = layer_config_choice(host, hc, config, n, key, names, &i);
    if (st == EM_OK && i >= 0)
        *out = values[i];
    return st;
}

EM_LAYER_ENTRY
{
    out->abi_major = EM_LAYER_ABI_MAJOR;
    out->abi_minor = EM_LAYER_ABI_MINOR;
    out->name = "validate";
    out->version = "1.0";
    out->description = "checks every kernel's preconditions and result against the cpu backend";
    out->config_keys = validate_keys;
    out->ops = &validate_ops;
    if (host->struct_size >= offsetof(em_host, flags) + sizeof host->flags &&
        (host->flags & EM_HOST_DESCRIBE))
        return EM_OK;
    if (host->abi_major != EM_ABI_MAJOR)
        return host->error(hc, EM_ERR_PLUGIN, "validate: built for plugin ABI %d, the core has %u",
                           EM_ABI_MAJOR, host->abi_major);
    static const char *const nan_names[] = {"warn", "error", "off", NULL};
    static const int nan_values[] = {MODE_WARN, MODE_ERROR, MODE_OFF};
    static const char *const div_names[] = {"error", "warn", NULL};
    static const int div_values[] = {MODE_ERROR, MODE_WARN};
    int nan_mode = MODE_WARN, div_mode = MODE_ERROR;
    em_status st;
    if ((st = choice(host, hc, config, n_config, "nan", nan_names, nan_values, &nan_mode)) != EM_OK ||
        (st = choice(host, hc, config, n_config, "divergence", div_names, div_values,
                     &div_mode)) != EM_OK)
        return st;
    double ulps = 64;
    const char *uv = emk_config_value(config, n_config, "ulps");
    if (uv) {
        unsigned long long u = 0;
        if (emk_parse_uint(uv, 1ull << 40, &u) != 1)
            return host->error(hc, EM_ERR_CONFIG, "ulps: expected a non-negative integer, got '%s'",
                               uv);
        ulps = (double)u;
    }
    val *p = host->alloc(hc, sizeof *p);
    if (!p)
        return host->error(hc, EM_ERR_OOM, "validate: out of memory");
    memset(p, 0, sizeof *p);
    p->host = host;
    p->hc = hc;
    p->next = next;
    p->dev = next->dev;
    p->nan_mode = nan_mode;
    p->div_mode = div_mode;
    p->ulps = ulps;
    if (next->reference && next->reference(hc, &p->ref, &p->rdev) != EM_OK) {
        /* preconditions and NaN are still checked; the summary says why nothing was compared */
        p->ref = NULL;
        snprintf(p->ref_problem, sizeof p->ref_problem, "the cpu backend could not be loaded)");
    }
    if (!layer_map_put(&g_map, p->dev, p)) {
        host->free(hc, p);
        return host->error(hc, EM_ERR_PLUGIN, "validate: too many contexts in one process");
    }
    out->ctx = p;
    out->event = on_event;
    out->destroy = destroy;
    return EM_OK;
}
