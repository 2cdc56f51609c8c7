/* tools/conform.c — the harness of ember-conform: result rows, per-case scopes and host
 * temporaries, making inputs in a chosen memory layout (contiguous, transposed, expanded
 * with stride 0), reading results back and comparing them with host references. Inputs
 * are generated on the host and uploaded with em_tensor_from_data, and results are fresh
 * contiguous tensors read with em_tensor_to_host, so the reference never depends on a
 * kernel of the backend under test. */
#include "conform.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cf_suite cf;

/* ------------------------------------------------------------------ host temporaries */

static void **g_tmp;
static size_t g_ntmp, g_captmp;

static void out_of_memory(void)
{
    fprintf(stderr, "ember-conform: out of host memory\n");
    exit(2);
}

void *cf_tmp(size_t bytes)
{
    if (g_ntmp == g_captmp) {
        size_t cap = g_captmp ? g_captmp * 2 : 256;
        void **n = realloc(g_tmp, sizeof *n * cap);
        if (!n)
            out_of_memory();
        g_tmp = n;
        g_captmp = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p)
        out_of_memory();
    g_tmp[g_ntmp++] = p;
    return p;
}

static void tmp_release(void)
{
    for (size_t i = 0; i < g_ntmp; i++)
        free(g_tmp[i]);
    g_ntmp = 0;
}

void cf_tmp_shutdown(void)
{
    tmp_release();
    free(g_tmp);
    g_tmp = NULL;
    g_captmp = 0;
}

const char *cf_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = cf_tmp((size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

const char *cf_shape_str(int nd, const int64_t *shape)
{
    char buf[160];
    size_t used = (size_t)snprintf(buf, sizeof buf, "[");
    for (int d = 0; d < nd && used < sizeof buf; d++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%lld", d ? ", " : "",
                                 (long long)shape[d]);
    if (used < sizeof buf)
        snprintf(buf + used, sizeof buf - used, "]");
    return cf_fmt("%s", buf);
}

int64_t cf_numel(int nd, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= shape[d];
    return n;
}

/* ------------------------------------------------------------------ rows */

bool cf_kernel_partial(int k)
{
    const em_plugin_info *pi = cf.info;
    if (!pi || pi->struct_size < offsetof(em_plugin_info, kernel_dtypes) + sizeof(void *) ||
        !pi->kernel_dtypes || !pi->kernel_present[k])
        return false;
    em_dtype_mask m = pi->kernel_dtypes[k];
    return (cf.dtype_on[0] && !(m & EM_DTYPE_BIT(EM_F32))) ||
           (cf.dtype_on[1] && !(m & EM_DTYPE_BIT(EM_F64)));
}

/* The op runs (in part) on cpu: its kernel is NULL, or declared for only some dtypes. */
static bool kernel_missing(const char *name)
{
    const em_plugin_info *pi = cf.info;
    if (!pi)
        return false;
    for (int k = 0; k < pi->kernel_count; k++)
        if (!strcmp(pi->kernel_names[k], name))
            return (!pi->kernel_present[k] && !pi->kernel_optional[k]) || cf_kernel_partial(k);
    return false;
}

static bool kernel_missing_dt(const char *name, uint32_t dtypes)
{
    const em_plugin_info *pi = cf.info;
    if (!pi)
        return false;
    for (int k = 0; k < pi->kernel_count; k++) {
        if (strcmp(pi->kernel_names[k], name))
            continue;
        if (!pi->kernel_present[k])
            return !pi->kernel_optional[k];
        if (pi->struct_size < offsetof(em_plugin_info, kernel_dtypes) + sizeof(void *) ||
            !pi->kernel_dtypes)
            return true;   /* a plugin declaring nothing runs only 1.0's float dtypes */
        return (pi->kernel_dtypes[k] & dtypes) != dtypes;
    }
    return false;
}

static cf_row *row_get(const char *op, const char *kernels, uint32_t dtypes);

cf_row *cf_row_get(const char *op, const char *kernels)
{
    return row_get(op, kernels, 0);
}

cf_row *cf_row_get_dt(const char *op, const char *kernels, uint32_t dtypes)
{
    return row_get(op, kernels, dtypes);
}

static cf_row *row_get(const char *op, const char *kernels, uint32_t dtypes)
{
    if (cf.filter && !strstr(op, cf.filter))
        return NULL;
    for (int i = 0; i < cf.n_rows; i++)
        if (!strcmp(cf.rows[i].op, op))
            return &cf.rows[i];
    if (cf.n_rows == CF_MAX_ROWS) {
        fprintf(stderr, "ember-conform: more than %d ops (raise CF_MAX_ROWS)\n", CF_MAX_ROWS);
        exit(2);
    }
    cf_row *r = &cf.rows[cf.n_rows++];
    memset(r, 0, sizeof *r);
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->kernels, sizeof r->kernels, "%s", kernels);
    /* fallback: some kernel it lowers to is NULL in the plugin's table */
    char k[64];
    for (const char *s = kernels; *s;) {
        size_t w = strcspn(s, " ");
        if (w && w < sizeof k) {
            memcpy(k, s, w);
            k[w] = 0;
            r->fallback |= dtypes ? kernel_missing_dt(k, dtypes) : kernel_missing(k);
        }
        s += w;
        s += strspn(s, " ");
    }
    return r;
}

void cf_case_begin(void)
{
    em_context_clear_error(cf.ctx);
    em_scope_begin(cf.ctx);
    if (cf.cpu)
        em_scope_begin(cf.cpu);
}

void cf_case_end(void)
{
    em_scope_end(cf.ctx);
    em_context_clear_error(cf.ctx);
    if (cf.cpu) {
        em_scope_end(cf.cpu);
        em_context_clear_error(cf.cpu);
    }
    tmp_release();
}

void cf_fail(cf_row *r, const char *fmt, ...)
{
    char msg[sizeof r->first_failure];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
    r->checks++;
    if (r->failures++ == 0)
        snprintf(r->first_failure, sizeof r->first_failure, "%s", msg);
    if (cf.verbose)
        fprintf(stderr, "FAIL %s: %s\n", r->op, msg);
}

void cf_pass(cf_row *r)
{
    r->checks++;
}

bool cf_got(cf_row *r, em_tensor *t, const char *label)
{
    if (t && em_context_status(cf.ctx) == EM_OK)
        return true;
    const char *why = em_context_status(cf.ctx) != EM_OK ? em_context_error(cf.ctx)
                                                         : "returned NULL with no error recorded";
    cf_fail(r, "%s: %s", label, why);
    em_context_clear_error(cf.ctx);
    return false;
}

bool cf_status(cf_row *r, em_status st, const char *label)
{
    if (st == EM_OK && em_context_status(cf.ctx) == EM_OK)
        return true;
    cf_fail(r, "%s: %s: %s", label, em_status_name(st != EM_OK ? st : em_context_status(cf.ctx)),
            em_context_status(cf.ctx) != EM_OK ? em_context_error(cf.ctx) : em_last_error());
    em_context_clear_error(cf.ctx);
    return false;
}

/* ------------------------------------------------------------------ values */

int cf_bucket(em_dtype dt)
{
    return dt == EM_F32 ? 0 : dt == EM_F64 ? 1 : -1;
}

/* v wrapped to the range of an integer dtype, for |v| < 2^53 */
static double wrap_int(em_dtype dt, double v)
{
    int64_t i = (int64_t)v;
    if (dt == EM_I32)
        return (double)(int32_t)(uint32_t)(uint64_t)i;
    if (dt == EM_U8)
        return (double)(uint8_t)(uint64_t)i;
    return (double)i;
}

double cf_tol(em_dtype dt)
{
    return dt == EM_F32 ? CF_TOL_F32 : dt == EM_F64 ? CF_TOL_F64 : 0;
}

double cf_round(em_dtype dt, double v)
{
    if (dt == EM_F32)   /* (float) of a value past the rounding range is undefined in C */
        return isfinite(v) && fabs(v) >= 0x1.ffffffp+127 ? copysign(INFINITY, v) : (double)(float)v;
    if (dt == EM_BOOL)
        return v != 0;
    if (em_dtype_is_integer(dt))
        return isfinite(v) ? wrap_int(dt, trunc(v)) : 0;
    return v;
}

bool cf_dtype_enabled(em_dtype dt)
{
    return cf_bucket(dt) < 0 || cf.dtype_on[cf_bucket(dt)];
}

static uint64_t g_lcg = 0x9e3779b97f4a7c15ULL;

double cf_uniform(double lo, double hi)
{
    g_lcg = g_lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (double)(g_lcg >> 11) * (1.0 / 9007199254740992.0);
}

static double gen_value(const cf_gen *g, int64_t i)
{
    int kind = g->kind & 0xff;
    double v;
    if (kind == CF_BOOLS) {
        v = cf_uniform(0, 1) < 0.5 ? 0 : 1;
    } else if (kind == CF_INTS) {
        v = g->lo + floor(cf_uniform(0, g->hi - g->lo + 1));
        if ((g->kind & CF_AWAY) && v == 0)
            v = 1;   /* divisors */
    } else if (kind == CF_GRID) {
        double steps = floor((g->hi - g->lo) / 0.5);
        v = g->lo + 0.5 * floor(cf_uniform(0, steps + 1));
    } else {
        v = cf_uniform(g->lo, g->hi);
        if (g->kind & CF_AWAY) {
            /* away from the kinks of relu/abs (0), the clamp bounds used (+-0.5, 0.1, 0.7) */
            if (fabs(v) < 0.05 || fabs(v - 0.1) < 0.05 || fabs(fabs(v) - 0.5) < 0.05 || fabs(v - 0.7) < 0.05)
                v += 0.13;
        }
    }
    if ((g->kind & CF_NAN) && i % 7 == 3)
        v = NAN;
    return v;
}

/* ------------------------------------------------------------------ tensors */

em_tensor *cf_upload(cf_row *r, em_dtype dt, int nd, const int64_t *shape, const double *v)
{
    int64_t n = cf_numel(nd, shape);
    size_t es = em_dtype_size(dt);
    void *buf = cf_tmp((size_t)n * es);
    for (int64_t i = 0; i < n; i++) {
        if (dt == EM_F32)
            ((float *)buf)[i] = (float)cf_round(EM_F32, v[i]);
        else if (dt == EM_F64)
            ((double *)buf)[i] = v[i];
        else if (dt == EM_I64)
            ((int64_t *)buf)[i] = (int64_t)cf_round(dt, v[i]);
        else if (dt == EM_I32)
            ((int32_t *)buf)[i] = (int32_t)cf_round(dt, v[i]);
        else if (dt == EM_U8)
            ((uint8_t *)buf)[i] = (uint8_t)cf_round(dt, v[i]);
        else
            ((uint8_t *)buf)[i] = v[i] != 0;
    }
    em_tensor *t = em_tensor_from_data(cf.ctx, dt, nd, shape, buf);
    return cf_got(r, t, cf_fmt("em_tensor_from_data %s %s", em_dtype_name(dt), cf_shape_str(nd, shape)))
               ? t : NULL;
}

/* Coordinates of a transposed layout: logical (.., i, j) of (.., A, B) is stored at
 * (.., j, i) of (.., B, A). */
static int64_t transposed_index(int64_t lin, int nd, const int64_t *shape)
{
    int64_t A = shape[nd - 2], B = shape[nd - 1];
    int64_t plane = A * B, prefix = lin / plane, i = (lin / B) % A, j = lin % B;
    return prefix * plane + j * A + i;
}

em_tensor *cf_make(cf_row *r, em_dtype dt, int nd, const int64_t *shape, cf_layout lay,
                   const cf_gen *g, double **logical, em_tensor **base)
{
    int64_t n = cf_numel(nd, shape);
    if (lay == CF_TRANSPOSED && nd < 2)
        lay = CF_CONTIG;
    if (lay == CF_EXPANDED && (nd < 1 || shape[0] <= 1))
        lay = CF_CONTIG;
    double *L = cf_tmp(sizeof(double) * (size_t)n);
    int64_t sshape[EM_MAX_DIMS];
    memcpy(sshape, shape, sizeof(int64_t) * (size_t)nd);
    double *S = L;
    if (lay == CF_EXPANDED) {
        int64_t inner = n / shape[0];
        for (int64_t i = 0; i < inner; i++)
            L[i] = cf_round(dt, gen_value(g, i));
        for (int64_t i = inner; i < n; i++)
            L[i] = L[i % inner];
        sshape[0] = 1;
    } else {
        for (int64_t i = 0; i < n; i++)
            L[i] = cf_round(dt, gen_value(g, i));
    }
    if (lay == CF_TRANSPOSED) {
        sshape[nd - 2] = shape[nd - 1];
        sshape[nd - 1] = shape[nd - 2];
        S = cf_tmp(sizeof(double) * (size_t)n);
        for (int64_t i = 0; i < n; i++)
            S[transposed_index(i, nd, shape)] = L[i];
    }
    em_tensor *b = cf_upload(r, dt, nd, sshape, S);
    if (!b)
        return NULL;
    em_tensor *v = b;
    if (lay == CF_TRANSPOSED)
        v = em_transpose(b, nd - 2, nd - 1);
    else if (lay == CF_EXPANDED)
        v = em_expand(b, nd, shape);
    if (!cf_got(r, v, "making a strided view"))
        return NULL;
    if (logical)
        *logical = L;
    if (base)
        *base = b;
    return v;
}

double *cf_read(cf_row *r, em_tensor *t, const char *label)
{
    if (!cf_got(r, t, label))
        return NULL;
    int64_t n = em_tensor_numel(t);
    em_dtype dt = em_tensor_dtype(t);
    size_t es = em_dtype_size(dt);
    void *buf = cf_tmp((size_t)n * es);
    double *out = cf_tmp(sizeof(double) * (size_t)n);
    if (!cf_status(r, em_tensor_to_host(t, buf, (size_t)n * es), cf_fmt("%s: reading the result", label)))
        return NULL;
    for (int64_t i = 0; i < n; i++)
        out[i] = dt == EM_F32 ? ((float *)buf)[i] : dt == EM_F64 ? ((double *)buf)[i]
               : dt == EM_I64 ? (double)((int64_t *)buf)[i] : dt == EM_I32 ? ((int32_t *)buf)[i]
               : ((uint8_t *)buf)[i];
    return out;
}

int64_t *cf_read_i64(cf_row *r, em_tensor *t, const char *label)
{
    if (!cf_got(r, t, label))
        return NULL;
    int64_t n = em_tensor_numel(t);
    em_dtype dt = em_tensor_dtype(t);
    size_t es = em_dtype_size(dt);
    void *buf = cf_tmp((size_t)n * es);
    int64_t *out = cf_tmp(sizeof(int64_t) * (size_t)n);
    if (!cf_status(r, em_tensor_to_host(t, buf, (size_t)n * es), cf_fmt("%s: reading the result", label)))
        return NULL;
    for (int64_t i = 0; i < n; i++)
        out[i] = dt == EM_I64 ? ((int64_t *)buf)[i] : dt == EM_I32 ? ((int32_t *)buf)[i]
               : dt == EM_F32 ? (int64_t)((float *)buf)[i] : dt == EM_F64 ? (int64_t)((double *)buf)[i]
               : ((uint8_t *)buf)[i];
    return out;
}

double *cf_read_base(cf_row *r, em_tensor *base, cf_layout lay, int nd, const int64_t *shape,
                     const char *label)
{
    double *S = cf_read(r, base, label);
    if (!S || lay != CF_TRANSPOSED || nd < 2)
        return S;
    int64_t n = cf_numel(nd, shape);
    double *L = cf_tmp(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        L[i] = S[transposed_index(i, nd, shape)];
    return L;
}

bool cf_check_shape(cf_row *r, em_tensor *t, int nd, const int64_t *shape, em_dtype dt,
                    const char *label)
{
    if (!cf_got(r, t, label))
        return false;
    bool ok = em_tensor_ndim(t) == nd && em_tensor_dtype(t) == dt;
    for (int d = 0; ok && d < nd; d++)
        ok = em_tensor_size(t, d) == shape[d];
    if (!ok) {
        cf_fail(r, "%s: result is %s %s, want %s %s", label, em_dtype_name(em_tensor_dtype(t)),
                cf_shape_str(em_tensor_ndim(t), em_tensor_shape(t)), em_dtype_name(dt),
                cf_shape_str(nd, shape));
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ comparing */

void cf_note(cf_row *r, int bucket, double err, double tol)
{
    if (bucket < 0)
        return;
    double ratio = tol > 0 ? err / tol : err > 0 ? INFINITY : 0;
    double old = !r->seen[bucket] ? -1
                 : r->tol[bucket] > 0 ? r->err[bucket] / r->tol[bucket]
                 : r->err[bucket] > 0 ? INFINITY : 0;
    if (!r->seen[bucket] || ratio > old || (ratio == old && tol > r->tol[bucket])) {
        r->err[bucket] = err;
        r->tol[bucket] = tol;
        r->seen[bucket] = true;
    }
}

bool cf_compare(cf_row *r, const char *label, int bucket, const double *got, const double *want,
                const double *norm, int64_t n, double tol)
{
    double worst = 0;
    int64_t bad = -1;
    double bad_err = 0;
    for (int64_t i = 0; i < n; i++) {
        double e;
        if (isnan(want[i]))
            e = isnan(got[i]) ? 0 : INFINITY;
        else if (isinf(want[i]))
            e = got[i] == want[i] ? 0 : INFINITY;
        else if (!isfinite(got[i]))
            e = INFINITY;
        else
            e = fabs(got[i] - want[i]) / fmax(1.0, norm ? norm[i] : fabs(want[i]));
        if (e > worst)
            worst = e;
        if (e > tol && bad < 0) {
            bad = i;
            bad_err = e;
        }
    }
    cf_note(r, bucket, worst, tol);
    if (bad < 0) {
        cf_pass(r);
        return true;
    }
    int digits = bucket == 0 ? 9 : 17;
    cf_fail(r, "%s: element %lld of %lld: got %.*g, want %.*g (error %.3g > tolerance %.3g)", label,
            (long long)bad, (long long)n, digits, got[bad], digits, want[bad], bad_err, tol);
    return false;
}

/* ------------------------------------------------------------------ broadcasting */

int64_t cf_bcast_index(int64_t lin, int ond, const int64_t *oshape, int nd, const int64_t *shape)
{
    int64_t idx = 0, stride = 1;
    for (int d = ond - 1; d >= 0; d--) {
        int64_t coord = lin % oshape[d];
        lin /= oshape[d];
        int j = d - (ond - nd);
        if (j >= 0) {
            if (shape[j] != 1)
                idx += coord * stride;
            stride *= shape[j];
        }
    }
    return idx;
}

bool cf_broadcast(int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out)
{
    int n = na > nb ? na : nb;
    for (int d = 0; d < n; d++) {
        int ia = d - (n - na), ib = d - (n - nb);
        int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1)
            return false;
        out[d] = sa == 1 ? sb : sa;
    }
    *nout = n;
    return true;
}
