/* layers/validate/validate_check.c — what the validate layer checks on every call before the
 * backend sees it: the core's documented preconditions (<ember/backend.h>: view sizes and
 * dims, out and inputs of one shape for the elementwise kernels, no zero stride in out, no
 * partial overlap of out with an input, every view inside its buffer, gemm's size and
 * leading-dimension rules and its operands inside their buffers); and how results are
 * compared: exactly for integers and bool, within a number of units in the last place
 * (or an absolute tolerance the caller derives from the operands) for floats. */
#include "validate.h"

#include <ember/plugin_kit.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

bool v_view_range(const em_kview *v, size_t *lo, size_t *hi)
{
    int64_t mn = v->offset, mx = v->offset;
    for (int d = 0; d < v->ndim; d++) {
        int64_t span = (v->shape[d] - 1) * v->strides[d];
        if (span < 0)
            mn += span;
        else
            mx += span;
    }
    if (mn < 0)
        return false;
    size_t es = emk_dtype_size(v->dtype);
    *lo = (size_t)mn * es;
    *hi = ((size_t)mx + 1) * es;
    return true;
}

size_t v_buf_bytes(const val *p, const void *buf)
{
    if (!p->cap)
        return 0;
    size_t h = ((uintptr_t)buf >> 4) % p->cap;
    for (size_t i = 0; i < p->cap; i++) {
        const vbuf *b = &p->bufs[(h + i) % p->cap];
        if (b->buf == buf)
            return b->bytes;
        if (!b->buf)
            return 0;
    }
    return 0;
}

void v_shape_text(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
}

void v_index_text(int ndim, const int64_t *idx, char *buf, size_t n)
{
    v_shape_text(ndim, idx, buf, n);
}

static bool view_ok(const val *p, const char *what, const em_kview *v, char *msg, size_t n)
{
    if (!v || v->struct_size < sizeof(size_t)) {
        snprintf(msg, n, "%s is missing", what);
        return false;
    }
    if (!v->buf) {
        snprintf(msg, n, "%s has no buffer", what);
        return false;
    }
    if (v->ndim < 1 || v->ndim > EM_MAX_DIMS) {
        snprintf(msg, n, "%s has ndim %d (1 to %d expected)", what, (int)v->ndim, EM_MAX_DIMS);
        return false;
    }
    if (emk_dtype_size(v->dtype) == 0) {
        snprintf(msg, n, "%s has an unknown dtype %d", what, (int)v->dtype);
        return false;
    }
    for (int d = 0; d < v->ndim; d++)
        if (v->shape[d] < 1) {
            char s[160];
            v_shape_text(v->ndim, v->shape, s, sizeof s);
            snprintf(msg, n, "%s has shape %s (every size must be at least 1)", what, s);
            return false;
        }
    size_t lo, hi, bytes = v_buf_bytes(p, v->buf);
    if (!v_view_range(v, &lo, &hi)) {
        snprintf(msg, n, "%s (offset %lld) reaches before the start of its buffer", what,
                 (long long)v->offset);
        return false;
    }
    if (bytes && hi > bytes) {
        char s[160];
        v_shape_text(v->ndim, v->shape, s, sizeof s);
        snprintf(msg, n, "%s (shape %s, offset %lld, %s) ends at byte %zu of a buffer of %zu bytes",
                 what, s, (long long)v->offset, emk_dtype_name(v->dtype), hi, bytes);
        return false;
    }
    return true;
}

/* Whether views a and b of one buffer share an element without being the same view. */
static bool partial_overlap(const em_kview *a, const em_kview *b)
{
    if (a->buf != b->buf)
        return false;
    bool same = a->offset == b->offset && a->ndim == b->ndim && a->dtype == b->dtype;
    for (int d = 0; same && d < a->ndim; d++)   /* a size-1 dim's stride means nothing */
        same = a->shape[d] == b->shape[d] && (a->shape[d] == 1 || a->strides[d] == b->strides[d]);
    if (same)
        return false;   /* the very same view: an in-place op */
    size_t alo, ahi, blo, bhi;
    if (!v_view_range(a, &alo, &ahi) || !v_view_range(b, &blo, &bhi))
        return false;
    if (ahi <= blo || bhi <= alo)
        return false;
    /* ranges intersect; views with a zero stride in b (broadcast) over a's range count */
    return true;
}

bool v_check_kargs(const val *p, const char *name, bool elementwise, const em_kargs *a,
                   char *msg, size_t n)
{
    char what[32];
    if (!a || !a->out) {
        snprintf(msg, n, "no arguments or no out view");
        return false;
    }
    uint32_t n_out = a->n_out ? a->n_out : 1;
    for (uint32_t i = 0; i < n_out; i++) {
        const em_kview *o = a->outs ? a->outs[i] : a->out;
        snprintf(what, sizeof what, n_out > 1 ? "outs[%u]" : "out", i);
        if (!view_ok(p, what, o, msg, n))
            return false;
        for (int d = 0; d < o->ndim; d++)
            if (o->strides[d] == 0 && o->shape[d] > 1) {
                snprintf(msg, n, "%s has a zero stride in dim %d of size %lld", what, d,
                         (long long)o->shape[d]);
                return false;
            }
    }
    int n_in = a->n_in ? (int)a->n_in : 3;
    for (int i = 0; i < n_in; i++) {
        const em_kview *v = a->n_in ? a->ins[i] : a->in[i];
        if (!v)
            continue;
        snprintf(what, sizeof what, "in[%d]", i);
        if (!view_ok(p, what, v, msg, n))
            return false;
        if (elementwise && (v->ndim != a->out->ndim ||
                            memcmp(v->shape, a->out->shape, sizeof(int64_t) * (size_t)v->ndim))) {
            char so[160], si[160];
            v_shape_text(a->out->ndim, a->out->shape, so, sizeof so);
            v_shape_text(v->ndim, v->shape, si, sizeof si);
            snprintf(msg, n, "%s has shape %s but out has %s (elementwise views share one shape)",
                     what, si, so);
            return false;
        }
        for (uint32_t o = 0; o < n_out; o++) {
            const em_kview *ov = a->outs ? a->outs[o] : a->out;
            if (partial_overlap(ov, v) && strcmp(name, "scatter_add")) {
                snprintf(msg, n, "out%s partially overlaps %s (same buffer, different view)",
                         n_out > 1 ? "s" : "", what);
                return false;
            }
        }
    }
    return true;
}

static bool gemm_operand(const val *p, const char *what, void *buf, int64_t off, int64_t rows,
                         int64_t cols, int64_t ld, int64_t bstride, int64_t batch, size_t es,
                         char *msg, size_t n)
{
    if (off < 0 || bstride < 0) {
        snprintf(msg, n, "gemm: %s has a negative offset or batch stride", what);
        return false;
    }
    size_t bytes = v_buf_bytes(p, buf);
    int64_t last = off + (batch - 1) * bstride + (rows - 1) * ld + cols;   /* one past */
    if (bytes && (size_t)last * es > bytes) {
        snprintf(msg, n, "gemm: %s (offset %lld, %lld x %lld, ld %lld, batch %lld) ends at byte "
                 "%lld of a buffer of %zu bytes", what, (long long)off, (long long)rows,
                 (long long)cols, (long long)ld, (long long)batch, (long long)last * (long long)es,
                 bytes);
        return false;
    }
    return true;
}

bool v_check_gemm(const val *p, const em_gemm_args *g, char *msg, size_t n)
{
    if (!g) {
        snprintf(msg, n, "gemm: no arguments");
        return false;
    }
    if (g->m < 1 || g->n < 1 || g->batch < 1 || g->k < 0) {
        snprintf(msg, n, "gemm: m %lld, n %lld, batch %lld must be at least 1 and k %lld at least "
                 "0", (long long)g->m, (long long)g->n, (long long)g->batch, (long long)g->k);
        return false;
    }
    if (g->k == 0 && g->beta == 0) {
        snprintf(msg, n, "gemm: k = 0 with beta = 0 (the core turns that into a fill)");
        return false;
    }
    size_t es = emk_dtype_size(g->dtype);
    if (!emk_dtype_is_float(g->dtype)) {
        snprintf(msg, n, "gemm: dtype %s is not a float dtype", emk_dtype_name(g->dtype));
        return false;
    }
    if (g->ldc < g->n) {
        snprintf(msg, n, "gemm: ldc %lld is less than n %lld", (long long)g->ldc, (long long)g->n);
        return false;
    }
    if (!gemm_operand(p, "C", g->c, g->c_offset, g->m, g->n, g->ldc, g->c_batch_stride, g->batch,
                      es, msg, n))
        return false;
    if (g->k == 0)
        return true;
    int64_t ar = g->trans_a ? g->k : g->m, ac = g->trans_a ? g->m : g->k;
    int64_t br = g->trans_b ? g->n : g->k, bc = g->trans_b ? g->k : g->n;
    if (g->lda < ac || g->ldb < bc) {
        snprintf(msg, n, "gemm: lda %lld or ldb %lld is less than its row length (%lld, %lld)",
                 (long long)g->lda, (long long)g->ldb, (long long)ac, (long long)bc);
        return false;
    }
    return gemm_operand(p, "A", g->a, g->a_offset, ar, ac, g->lda, g->a_batch_stride, g->batch, es,
                        msg, n) &&
           gemm_operand(p, "B", g->b, g->b_offset, br, bc, g->ldb, g->b_batch_stride, g->batch, es,
                        msg, n);
}

double v_get(const void *base, int32_t dt, int64_t i)
{
    switch (dt) {
    case EM_F32: return ((const float *)base)[i];
    case EM_F64: return ((const double *)base)[i];
    case EM_BOOL: return ((const unsigned char *)base)[i];
    case EM_I64: return (double)((const int64_t *)base)[i];
    case EM_I32: return ((const int32_t *)base)[i];
    case EM_U8: return ((const unsigned char *)base)[i];
    default: return 0;
    }
}

/* Distance in representable values of dt between two finite numbers. */
static double ulp_distance(double a, double b, int32_t dt)
{
    if (dt == EM_F32) {
        float fa = (float)a, fb = (float)b;
        int32_t ia, ib;
        memcpy(&ia, &fa, sizeof ia);
        memcpy(&ib, &fb, sizeof ib);
        int64_t x = ia < 0 ? (int64_t)INT32_MIN - ia : ia;
        int64_t y = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
        return fabs((double)(x - y));
    }
    int64_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    double x = ia < 0 ? (double)INT64_MIN - (double)ia : (double)ia;
    double y = ib < 0 ? (double)INT64_MIN - (double)ib : (double)ib;
    return fabs(x - y);
}

bool v_close(double got, double want, int32_t dt, double ulps, double tol)
{
    if (!emk_dtype_is_float(dt))
        return got == want;
    if (isnan(got) || isnan(want))
        return isnan(got) && isnan(want);
    if (isinf(got) || isinf(want))
        return got == want;
    if (got == want || fabs(got - want) <= tol)
        return true;
    return ulp_distance(got, want, dt) <= ulps;
}
