/* tests/kernel_views.h — host arrays with the strided views a backend kernel is given (hv:
 * a buffer of n elements and its view, for building inputs and references and reading
 * outputs back by logical index), kernel entries by their place in em_backend_ops and
 * em_kernel_dtypes (kdesc), and comparisons in ulps that also check a kernel wrote nothing
 * outside its output view. Include after <cmocka.h>. */
#ifndef EMBER_TEST_KERNEL_VIEWS_H
#define EMBER_TEST_KERNEL_VIEWS_H

#include <ember/backend.h>

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A kernel entry: its place in em_backend_ops and in em_kernel_dtypes. */
typedef struct kdesc {
    const char *name;
    size_t op, mask;
} kdesc;
#define KD(k) ((kdesc){#k, offsetof(em_backend_ops, k), offsetof(em_kernel_dtypes, k)})

/* ------------------------------------------------------------------ host views */

static inline size_t dtsize(int32_t dt)
{
    return dt == EM_F64 || dt == EM_I64 ? 8 : dt == EM_F32 || dt == EM_I32 ? 4 : 1;
}

/* A buffer of n elements of dt and the view of it a kernel is given */
typedef struct hv {
    int32_t dt;
    int ndim;
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS], offset;
    size_t n;
    unsigned char *b;
} hv;

/* view (shape, strides, offset) over a buffer just large enough, filled with 0x5a bytes
 * (elements outside the view must keep them) */
static inline hv hv_make(int32_t dt, int ndim, const int64_t *shape, const int64_t *strides,
                  int64_t offset)
{
    hv v;
    memset(&v, 0, sizeof v);
    v.dt = dt;
    v.ndim = ndim;
    v.offset = offset;
    int64_t lo = offset, hi = offset;
    for (int k = 0; k < ndim; k++) {
        v.shape[k] = shape[k];
        v.strides[k] = strides[k];
        if (shape[k] > 0)
            *(strides[k] < 0 ? &lo : &hi) += (shape[k] - 1) * strides[k];
    }
    assert_true(lo >= 0);
    v.n = (size_t)hi + 1;
    v.b = malloc(v.n * dtsize(dt));
    assert_non_null(v.b);
    memset(v.b, 0x5a, v.n * dtsize(dt));
    return v;
}

static inline hv hv_contig(int32_t dt, int ndim, const int64_t *shape)
{
    int64_t st[EM_MAX_DIMS], s = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        st[k] = s;
        s *= shape[k] > 0 ? shape[k] : 1;
    }
    return hv_make(dt, ndim, shape, st, 0);
}

static inline void hv_free(hv *v)
{
    free(v->b);
    v->b = NULL;
}

static inline int64_t hv_numel(const hv *v)
{
    int64_t n = 1;
    for (int k = 0; k < v->ndim; k++)
        n *= v->shape[k];
    return n;
}

/* element offset of row-major logical index i */
static inline size_t hv_at(const hv *v, int64_t i)
{
    int64_t off = v->offset;
    for (int k = v->ndim - 1; k >= 0; k--) {
        off += (i % v->shape[k]) * v->strides[k];
        i /= v->shape[k];
    }
    return (size_t)off;
}

static inline double hv_getd(const hv *v, int64_t i)
{
    const unsigned char *p = v->b + hv_at(v, i) * dtsize(v->dt);
    switch (v->dt) {
    case EM_F32: { float f; memcpy(&f, p, 4); return f; }
    case EM_F64: { double f; memcpy(&f, p, 8); return f; }
    case EM_I64: { int64_t x; memcpy(&x, p, 8); return (double)x; }
    case EM_I32: { int32_t x; memcpy(&x, p, 4); return x; }
    default: return *p;
    }
}

static inline int64_t hv_geti(const hv *v, int64_t i)
{
    const unsigned char *p = v->b + hv_at(v, i) * dtsize(v->dt);
    switch (v->dt) {
    case EM_I64: { int64_t x; memcpy(&x, p, 8); return x; }
    case EM_I32: { int32_t x; memcpy(&x, p, 4); return x; }
    case EM_U8: case EM_BOOL: return *p;
    default: return (int64_t)hv_getd(v, i);
    }
}

/* integers are stored wrapped to the dtype's width, floats rounded */
static inline void hv_setd(hv *v, int64_t i, double x)
{
    unsigned char *p = v->b + hv_at(v, i) * dtsize(v->dt);
    if (v->dt == EM_F32) {
        float f = (float)x;
        memcpy(p, &f, 4);
    } else if (v->dt == EM_F64) {
        memcpy(p, &x, 8);
    } else if (v->dt == EM_BOOL) {
        *p = x != 0;
    } else {
        int64_t q = (int64_t)x;
        memcpy(p, &q, dtsize(v->dt));   /* little-endian: the low bytes */
    }
}

static inline void hv_seti(hv *v, int64_t i, int64_t x)
{
    if (v->dt == EM_F32 || v->dt == EM_F64) {
        hv_setd(v, i, (double)x);
        return;
    }
    unsigned char *p = v->b + hv_at(v, i) * dtsize(v->dt);
    if (v->dt == EM_BOOL)
        *p = x != 0;
    else
        memcpy(p, &x, dtsize(v->dt));
}

static inline hv hv_copy(const hv *v)
{
    hv c = *v;
    c.b = malloc(v->n * dtsize(v->dt));
    assert_non_null(c.b);
    memcpy(c.b, v->b, v->n * dtsize(v->dt));
    return c;
}

/* ulps between two values of dt (0 when both NaN or equal, huge across signs) */
static inline double ulps(int32_t dt, double got, double want)
{
    if (isnan(got) || isnan(want))
        return isnan(got) && isnan(want) ? 0 : INFINITY;
    if (got == want)
        return 0;
    if (isinf(got) || isinf(want))
        return INFINITY;
    double e = dt == EM_F32 ? (double)nextafterf((float)fabs(want), INFINITY) - fabs((float)want)
                            : nextafter(fabs(want), INFINITY) - fabs(want);
    if (want == 0)
        e = dt == EM_F32 ? (double)FLT_TRUE_MIN : 4.9e-324;
    return fabs(got - want) / e;
}

/* Compare out (what a plugin wrote) with want element by element: integers exactly, floats
 * within tol ulps or atol (tol < 0: the same bits, so -0 differs from 0); elements of the
 * buffer outside the view must keep init's bytes. */
static inline void expect(const char *who, const char *what, const hv *out, const hv *want,
                   const hv *init, double tol, double atol)
{
    const int64_t n = hv_numel(want);
    const size_t es = dtsize(out->dt);
    unsigned char *in_view = calloc(out->n ? out->n : 1, 1);
    assert_non_null(in_view);
    for (int64_t i = 0; i < n; i++) {
        in_view[hv_at(out, i)] = 1;
        int bad;
        double g = hv_getd(out, i), w = hv_getd(want, i);
        if (out->dt == EM_F32 || out->dt == EM_F64)
            bad = tol < 0 ? memcmp(out->b + hv_at(out, i) * es, want->b + hv_at(want, i) * es,
                                   es) && !(isnan(g) && isnan(w))
                          : ulps(out->dt, g, w) > tol && !(fabs(g - w) <= atol);
        else
            bad = hv_geti(out, i) != hv_geti(want, i);
        if (bad) {
            free(in_view);
            fail_msg("%s: %s: element %lld is %.17g, expected %.17g", who, what, (long long)i,
                     g, w);
        }
    }
    for (size_t e = 0; e < out->n; e++)
        if (!in_view[e] && memcmp(out->b + e * es, init->b + e * es, es)) {
            free(in_view);
            fail_msg("%s: %s: wrote element %zu of the buffer, outside the view", who, what, e);
        }
    free(in_view);
}

#endif
