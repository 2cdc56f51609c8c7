/* tools/conform_direct.c — clauses of the plugin contract that today's core does not (or not
 * always) exercise through the public API, checked by calling the plugin's ops table
 * directly: the plugin file under test is opened a second time, its entry called with a
 * minimal host of our own (error, log, alloc, free) and the keys of its device.ini section,
 * and one instance and device are driven through <ember/backend.h> alone, as a future core
 * may drive them. Each clause is one case, named in the failure message:
 *   abi.copy_offsets  copy_h2d writes at dst_offset and copy_d2h reads at src_offset (the
 *                     op fallback copies sub-ranges of buffers), and neither touches bytes
 *                     outside its range;
 *   abi.gemm          the general formula C = alpha op(A) op(B) + beta C: beta != 0 (C
 *                     read), beta == 0 (C write-only, NaN ignored), nonzero a_offset,
 *                     b_offset and c_offset, leading dimensions wider than a row (the
 *                     padding of C left alone), both transposes, k = 0 with beta != 0
 *                     (C = beta C), batch strides (0: a broadcast operand).
 * A plugin without gemm, or without an f32/f64 declaration for it, skips those cases. */
#include "conform.h"

#include <ember/backend.h>

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ a minimal host */

struct em_host_ctx {
    char msg[512];
};

static em_status dh_error(em_host_ctx *hc, em_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hc->msg, sizeof hc->msg, fmt, ap);
    va_end(ap);
    return st;
}

static void dh_log(em_host_ctx *hc, em_log_level level, const char *fmt, ...)
{
    (void)hc;
    if (!cf.verbose || level > EM_LOG_WARN)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ember-conform: plugin (direct instance): ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void *dh_alloc(em_host_ctx *hc, size_t bytes)
{
    (void)hc;
    return malloc(bytes);
}

static void dh_free(em_host_ctx *hc, void *p)
{
    (void)hc;
    free(p);
}

static const em_host dh_host = {
    .struct_size = sizeof(em_host), .abi_major = EM_ABI_MAJOR, .abi_minor = EM_ABI_MINOR,
    .error = dh_error, .log = dh_log, .alloc = dh_alloc, .free = dh_free, .flags = 0};

/* One instance and one open device of the plugin under test. */
typedef struct direct {
    void *dl;
    em_host_ctx hc;
    em_backend be;
    em_backend_ops ops;   /* zero-extended copy, as the core keeps it */
    void *dev;
} direct;

static const char *direct_why(const direct *d, em_status st)
{
    return cf_fmt("%s%s%s", em_status_name(st), d->hc.msg[0] ? ": " : "", d->hc.msg);
}

static bool direct_open(direct *d, cf_row *r)
{
    memset(d, 0, sizeof *d);
    const em_plugin_info *pi = cf.info;
    d->dl = dlopen(pi->path, RTLD_NOW | RTLD_LOCAL);
    void *sym = d->dl ? dlsym(d->dl, EM_BACKEND_ENTRY_NAME) : NULL;
    if (!sym) {
        cf_fail(r, "direct instance: cannot open %s: %s", pi->path, dlerror());
        if (d->dl)
            dlclose(d->dl);
        return false;
    }
    em_backend_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    /* the keys of the backend's own section, as the core hands them */
    enum { MAX_KV = 64 };
    em_config_kv kv[MAX_KV];
    size_t n = 0;
    for (int i = 0; pi->config_keys && pi->config_keys[i] && n < MAX_KV; i++) {
        const char *v = em_config_get(cf.cfg, pi->name, pi->config_keys[i]);
        if (v)
            kv[n++] = (em_config_kv){pi->config_keys[i], v};
    }
    d->be.struct_size = sizeof d->be;
    em_status st = entry(&dh_host, &d->hc, n ? kv : NULL, n, &d->be);
    if (st != EM_OK || !d->be.ops) {
        cf_fail(r, "direct instance: the entry failed: %s", direct_why(d, st));
        dlclose(d->dl);
        return false;
    }
    size_t sz = d->be.ops->struct_size < sizeof d->ops ? d->be.ops->struct_size : sizeof d->ops;
    memcpy(&d->ops, d->be.ops, sz);
    d->hc.msg[0] = 0;
    st = d->ops.device_open(d->be.ctx, em_context_device_index(cf.ctx), &d->dev);
    if (st != EM_OK) {
        cf_fail(r, "direct instance: device_open(%d): %s", em_context_device_index(cf.ctx),
                direct_why(d, st));
        if (d->ops.shutdown)
            d->ops.shutdown(d->be.ctx);
        dlclose(d->dl);
        return false;
    }
    return true;
}

static void direct_close(direct *d)
{
    d->ops.device_close(d->dev);
    if (d->ops.shutdown)
        d->ops.shutdown(d->be.ctx);
    dlclose(d->dl);
}

/* A device buffer holding `bytes` from host memory src; NULL on failure (recorded). */
static void *dbuf(direct *d, cf_row *r, const void *src, size_t bytes, const char *label)
{
    void *buf = NULL;
    d->hc.msg[0] = 0;
    em_status st = d->ops.buffer_alloc(d->dev, bytes, &buf);
    if (st == EM_OK && (st = d->ops.copy_h2d(d->dev, buf, 0, src, bytes)) != EM_OK)
        d->ops.buffer_free(d->dev, buf);
    if (st != EM_OK) {
        cf_fail(r, "%s: buffer of %zu bytes: %s", label, bytes, direct_why(d, st));
        return NULL;
    }
    return buf;
}

/* ------------------------------------------------------------------ copies */

static void copy_offsets(direct *d)
{
    cf_row *r = cf_row_get("abi.copy_offsets", "copy_h2d copy_d2h");
    if (!r)
        return;
    enum { N = 256 };
    unsigned char pat[N], part[40], got[N];
    for (int i = 0; i < N; i++)
        pat[i] = (unsigned char)(i * 7 + 1);
    for (int i = 0; i < 40; i++)
        part[i] = (unsigned char)(200 - i);
    void *buf = dbuf(d, r, pat, N, "copy_offsets");
    if (!buf)
        return;
    /* copy_h2d at dst_offset 24: bytes 24..63 change, nothing else */
    em_status st = d->ops.copy_h2d(d->dev, buf, 24, part, sizeof part);
    if (st == EM_OK)
        st = d->ops.synchronize(d->dev);
    if (st == EM_OK)
        st = d->ops.copy_d2h(d->dev, got, buf, 0, N);
    if (st != EM_OK) {
        cf_fail(r, "copy_h2d at dst_offset 24: %s", direct_why(d, st));
    } else {
        int bad = -1;
        for (int i = 0; i < N && bad < 0; i++)
            if (got[i] != (i >= 24 && i < 64 ? part[i - 24] : pat[i]))
                bad = i;
        if (bad >= 0)
            cf_fail(r, "copy_h2d of 40 bytes at dst_offset 24: byte %d of the buffer is %u, "
                    "expected %u (offsets are in bytes and must be honoured)", bad, got[bad],
                    bad >= 24 && bad < 64 ? part[bad - 24] : pat[bad]);
        else
            cf_pass(r);
    }
    /* copy_d2h at src_offset 88: exactly bytes 88..127, and nothing past dst's 40 bytes */
    memset(got, 0xee, sizeof got);
    st = d->ops.copy_d2h(d->dev, got, buf, 88, 40);
    if (st != EM_OK) {
        cf_fail(r, "copy_d2h at src_offset 88: %s", direct_why(d, st));
    } else {
        int bad = -1;
        for (int i = 0; i < 48 && bad < 0; i++)
            if (got[i] != (i < 40 ? pat[88 + i] : 0xee))
                bad = i;
        if (bad >= 0)
            cf_fail(r, "copy_d2h of 40 bytes at src_offset 88: byte %d of the result is %u, "
                    "expected %u (offsets are in bytes and must be honoured)", bad, got[bad],
                    bad < 40 ? pat[88 + bad] : 0xee);
        else
            cf_pass(r);
    }
    d->ops.buffer_free(d->dev, buf);
}

/* ------------------------------------------------------------------ gemm */

typedef struct gcase {
    const char *clause;     /* named in a failure */
    int64_t m, n, k, batch;
    int trans_a, trans_b;
    double alpha, beta;
    int64_t a_off, b_off, c_off;
    int64_t pad_a, pad_b, pad_c;   /* leading dimension minus the row length */
    bool a_bcast;                  /* a_batch_stride 0 */
    bool c_nan;                    /* C starts as NaN (beta must be 0) */
} gcase;

static const gcase gcases[] = {
    {"beta == 0: C write-only (it holds NaN)", 5, 7, 3, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, false, true},
    {"beta != 0: C = alpha AB + beta C", 5, 7, 3, 1, 0, 0, -1.5, 0.75, 0, 0, 0, 0, 0, 0, false, false},
    {"alpha != 1", 4, 3, 6, 1, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0, false, false},
    {"a_offset", 5, 7, 3, 1, 0, 0, 1, 0, 5, 0, 0, 0, 0, 0, false, false},
    {"b_offset", 5, 7, 3, 1, 0, 0, 1, 0, 0, 6, 0, 0, 0, 0, false, false},
    {"c_offset", 5, 7, 3, 1, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, false, false},
    {"c_offset with beta != 0", 5, 7, 3, 1, 0, 0, 1, 1, 0, 0, 9, 0, 0, 0, false, false},
    {"lda wider than a row", 5, 7, 3, 1, 0, 0, 1, 0, 0, 0, 0, 4, 0, 0, false, false},
    {"ldb wider than a row", 5, 7, 3, 1, 0, 0, 1, 0, 0, 0, 0, 0, 3, 0, false, false},
    {"ldc wider than a row (padding left alone)", 5, 7, 3, 1, 0, 0, 1, 0.5, 0, 0, 0, 0, 0, 5, false, false},
    {"trans_a", 6, 4, 5, 1, 1, 0, 1, 0, 2, 0, 0, 3, 0, 0, false, false},
    {"trans_b", 6, 4, 5, 1, 0, 1, 1, 0, 0, 3, 0, 0, 2, 0, false, false},
    {"k = 0 with beta != 0: C = beta C", 4, 5, 0, 1, 0, 0, 1, 2, 0, 0, 3, 0, 0, 2, false, false},
    {"batch strides", 3, 4, 5, 3, 0, 0, 1, 0, 1, 2, 3, 1, 1, 1, false, false},
    {"a_batch_stride 0 (broadcast A)", 3, 4, 5, 3, 0, 1, 1, 0.25, 0, 0, 0, 0, 0, 0, true, false},
};

/* Element (i, j) of op(X) for X stored rows x cols with leading dim ld. */
static double opx(const double *x, int trans, int64_t ld, int64_t i, int64_t j)
{
    return trans ? x[j * ld + i] : x[i * ld + j];
}

static void to_dtype(em_dtype dt, const double *v, void *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (dt == EM_F32)
            ((float *)out)[i] = (float)v[i];
        else
            ((double *)out)[i] = v[i];
    }
}

static void gemm_case(direct *d, cf_row *r, em_dtype dt, const gcase *c)
{
    int b = dt == EM_F32 ? 0 : 1;
    size_t es = dt == EM_F32 ? sizeof(float) : sizeof(double);
    /* stored shapes: A m x k (k x m if trans_a), B k x n (n x k if trans_b) */
    int64_t ar = c->trans_a ? c->k : c->m, ac = c->trans_a ? c->m : c->k;
    int64_t br = c->trans_b ? c->n : c->k, bc = c->trans_b ? c->k : c->n;
    int64_t lda = (ac ? ac : 1) + c->pad_a, ldb = (bc ? bc : 1) + c->pad_b, ldc = c->n + c->pad_c;
    int64_t sa = c->a_bcast ? 0 : ar * lda, sb = br * ldb, sc = c->m * ldc + 2;
    int64_t na = c->a_off + (c->a_bcast ? 1 : c->batch) * (ar * lda) + 1;
    int64_t nb = c->b_off + c->batch * sb + 1, nc = c->c_off + c->batch * sc;
    double *A = cf_tmp((size_t)na * sizeof *A), *B = cf_tmp((size_t)nb * sizeof *B);
    double *C = cf_tmp((size_t)nc * sizeof *C), *want = cf_tmp((size_t)nc * sizeof *C);
    double *got = cf_tmp((size_t)nc * sizeof *C), *norm = cf_tmp((size_t)nc * sizeof *C);
    void *host = cf_tmp((size_t)(na > nb ? (na > nc ? na : nc) : (nb > nc ? nb : nc)) * es);
    for (int64_t i = 0; i < na; i++)
        A[i] = cf_round(dt, cf_uniform(-2, 2));
    for (int64_t i = 0; i < nb; i++)
        B[i] = cf_round(dt, cf_uniform(-2, 2));
    for (int64_t i = 0; i < nc; i++)
        C[i] = c->c_nan ? NAN : cf_round(dt, cf_uniform(-2, 2));
    /* the reference: C's elements outside the matrices (offsets, padding) keep their value */
    for (int64_t i = 0; i < nc; i++) {
        want[i] = C[i];
        norm[i] = 1;
    }
    for (int64_t q = 0; q < c->batch; q++)
        for (int64_t i = 0; i < c->m; i++)
            for (int64_t j = 0; j < c->n; j++) {
                double acc = 0, mag = 0;
                for (int64_t t = 0; t < c->k; t++) {
                    double x = opx(A + c->a_off + q * sa, c->trans_a, lda, i, t) *
                               opx(B + c->b_off + q * sb, c->trans_b, ldb, t, j);
                    acc += x;
                    mag += fabs(x);
                }
                int64_t ci = c->c_off + q * sc + i * ldc + j;
                double old = C[ci];
                want[ci] = c->alpha * acc + (c->beta != 0 ? c->beta * old : 0);
                norm[ci] = fabs(c->alpha) * mag + (c->beta != 0 ? fabs(c->beta * old) : 0);
            }
    void *ba = NULL, *bb = NULL, *bcb = NULL;
    to_dtype(dt, A, host, na);
    ba = dbuf(d, r, host, (size_t)na * es, c->clause);
    to_dtype(dt, B, host, nb);
    bb = ba ? dbuf(d, r, host, (size_t)nb * es, c->clause) : NULL;
    to_dtype(dt, C, host, nc);
    bcb = bb ? dbuf(d, r, host, (size_t)nc * es, c->clause) : NULL;
    if (bcb) {
        em_gemm_args g = {.struct_size = sizeof g, .dtype = (int32_t)dt, .trans_a = c->trans_a,
                          .trans_b = c->trans_b, .m = c->m, .n = c->n, .k = c->k,
                          .batch = c->batch, .alpha = c->alpha, .beta = c->beta,
                          .a = ba, .a_offset = c->a_off, .lda = lda, .a_batch_stride = sa,
                          .b = bb, .b_offset = c->b_off, .ldb = ldb, .b_batch_stride = sb,
                          .c = bcb, .c_offset = c->c_off, .ldc = ldc,
                          .c_batch_stride = c->batch > 1 ? sc : 0};
        d->hc.msg[0] = 0;
        em_status st = d->ops.gemm(d->dev, &g);
        if (st == EM_OK)
            st = d->ops.synchronize(d->dev);
        if (st == EM_OK)
            st = d->ops.copy_d2h(d->dev, host, bcb, 0, (size_t)nc * es);
        if (st != EM_OK) {
            cf_fail(r, "gemm %s (%s): %s", c->clause, b ? "f64" : "f32", direct_why(d, st));
        } else {
            for (int64_t i = 0; i < nc; i++)
                got[i] = dt == EM_F32 ? (double)((float *)host)[i] : ((double *)host)[i];
            double tol = cf_tol(dt) * sqrt((double)(c->k > 1 ? c->k : 1));
            const char *label = cf_fmt("gemm %s: m %lld n %lld k %lld batch %lld, trans %d %d, "
                                       "alpha %g beta %g, offsets %lld %lld %lld, ld %lld %lld "
                                       "%lld (index into C's buffer)", c->clause,
                                       (long long)c->m, (long long)c->n, (long long)c->k,
                                       (long long)c->batch, c->trans_a, c->trans_b, c->alpha,
                                       c->beta, (long long)c->a_off, (long long)c->b_off,
                                       (long long)c->c_off, (long long)lda, (long long)ldb,
                                       (long long)ldc);
            cf_compare(r, label, b, got, want, norm, nc, tol);   /* records pass or FAIL */
        }
    }
    if (ba)
        d->ops.buffer_free(d->dev, ba);
    if (bb)
        d->ops.buffer_free(d->dev, bb);
    if (bcb)
        d->ops.buffer_free(d->dev, bcb);
}

static void gemm_cases(direct *d)
{
    cf_row *r = cf_row_get("abi.gemm", "gemm");
    if (!r || !d->ops.gemm)
        return;
    int gi = -1;
    for (int i = 0; i < cf.info->kernel_count; i++)
        if (!strcmp(cf.info->kernel_names[i], "gemm"))
            gi = i;
    for (int b = 0; b < 2; b++) {
        em_dtype dt = b ? EM_F64 : EM_F32;
        if (!cf.dtype_on[b] || gi < 0 ||
            (cf.info->kernel_dtypes && !(cf.info->kernel_dtypes[gi] & EM_DTYPE_BIT(dt))))
            continue;
        for (size_t i = 0; i < sizeof gcases / sizeof gcases[0]; i++) {
            cf_case_begin();
            gemm_case(d, r, dt, &gcases[i]);
            cf_case_end();
        }
    }
}

void cf_run_direct(void)
{
    bool want_copy = !cf.filter || strstr("abi.copy_offsets", cf.filter);
    bool want_gemm = !cf.filter || strstr("abi.gemm", cf.filter);
    if ((!want_copy && !want_gemm) || !cf.info)
        return;
    cf_row *r = cf_row_get(want_copy ? "abi.copy_offsets" : "abi.gemm",
                           want_copy ? "copy_h2d copy_d2h" : "gemm");
    direct d;
    if (!direct_open(&d, r))
        return;
    cf_case_begin();
    copy_offsets(&d);
    cf_case_end();
    gemm_cases(&d);
    direct_close(&d);
}
