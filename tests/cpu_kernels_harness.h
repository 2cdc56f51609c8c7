/* tests/cpu_kernels_harness.h — what the tests of the cpu backend's kernels share: loading
 * the plugin through its entry symbol (dlopen, as the core's loader does) and calling its
 * kernels directly through the ops table; typed element access, views over host arrays,
 * the elementwise layouts (strided, broadcast), float comparisons and test values. Include
 * once per test program. */
#ifndef EMBER_TEST_CPU_KERNELS_HARNESS_H
#define EMBER_TEST_CPU_KERNELS_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_host.h"

/* ------------------------------------------------------------------ plugin */

static void *g_dl;
static em_backend_entry_fn g_entry;
static em_backend g_be;
static const em_backend_ops *g_ops;
static void *g_dev;

/* isa: the [cpu] isa key (NULL: the default) */
static inline void open_inst_isa(em_backend *be, void **dev, const char *threads, const char *isa)
{
    em_config_kv cfg[2] = {{"threads", threads}, {"isa", isa}};
    memset(be, 0, sizeof *be);
    be->struct_size = sizeof *be;
    if (g_entry(&g_host, NULL, cfg, isa ? 2 : 1, be) != EM_OK)
        fail_msg("cpu entry: %s", g_msg);
    if (be->ops->device_open(be->ctx, 0, dev) != EM_OK)
        fail_msg("cpu device_open: %s", g_msg);
}

static inline void open_inst(em_backend *be, void **dev, const char *threads)
{
    open_inst_isa(be, dev, threads, NULL);
}

static inline void close_inst(em_backend *be, void *dev)
{
    if (!be->ops || !be->ctx)
        return;
    be->ops->device_close(dev);
    be->ops->shutdown(be->ctx);
}

static inline int setup(void **state)
{
    (void)state;
    if (!(g_entry = th_plugin_entry("cpu", &g_dl)))
        return -1;
    open_inst(&g_be, &g_dev, "1");
    g_ops = g_be.ops;
    return 0;
}

static inline int teardown(void **state)
{
    (void)state;
    close_inst(&g_be, g_dev);
    if (g_dl)
        dlclose(g_dl);
    return 0;
}

/* ------------------------------------------------------------------ values and views */

#define NDT 6
static const int32_t g_ints[] = {EM_I64, EM_I32, EM_U8};
static const char *const g_dtn[NDT] = {"f32", "f64", "bool", "i64", "i32", "u8"};

static inline int is_int(int32_t dt) { return dt == EM_I64 || dt == EM_I32 || dt == EM_U8; }
static inline int is_float(int32_t dt) { return dt == EM_F32 || dt == EM_F64; }

/* v narrowed to dt as two's complement / modulo 256 (how the kernels wrap) */
static inline int64_t wrapv(int32_t dt, int64_t v)
{
    switch (dt) {
    case EM_I32: return (int32_t)(uint32_t)(uint64_t)v;
    case EM_U8: return (uint8_t)(uint64_t)v;
    case EM_BOOL: return v != 0;
    default: return v;
    }
}

/* element i of buffer b: stores and loads as double (floats) or int64 (the rest) */
static inline void putd(int32_t dt, void *b, int64_t i, double v)
{
    switch (dt) {
    case EM_F32: ((float *)b)[i] = (float)v; break;
    case EM_F64: ((double *)b)[i] = v; break;
    case EM_BOOL: ((uint8_t *)b)[i] = v != 0; break;
    case EM_I64: ((int64_t *)b)[i] = (int64_t)v; break;
    case EM_I32: ((int32_t *)b)[i] = (int32_t)v; break;
    default: ((uint8_t *)b)[i] = (uint8_t)v; break;
    }
}

static inline void puti(int32_t dt, void *b, int64_t i, int64_t v)
{
    switch (dt) {
    case EM_F32: ((float *)b)[i] = (float)v; break;
    case EM_F64: ((double *)b)[i] = (double)v; break;
    case EM_BOOL: ((uint8_t *)b)[i] = v != 0; break;
    case EM_I64: ((int64_t *)b)[i] = v; break;
    case EM_I32: ((int32_t *)b)[i] = (int32_t)wrapv(EM_I32, v); break;
    default: ((uint8_t *)b)[i] = (uint8_t)wrapv(EM_U8, v); break;
    }
}

static inline double getd(int32_t dt, const void *b, int64_t i)
{
    switch (dt) {
    case EM_F32: return ((const float *)b)[i];
    case EM_F64: return ((const double *)b)[i];
    case EM_BOOL: return ((const uint8_t *)b)[i];
    case EM_I64: return (double)((const int64_t *)b)[i];
    case EM_I32: return ((const int32_t *)b)[i];
    default: return ((const uint8_t *)b)[i];
    }
}

static inline int64_t geti(int32_t dt, const void *b, int64_t i)
{
    switch (dt) {
    case EM_I64: return ((const int64_t *)b)[i];
    case EM_I32: return ((const int32_t *)b)[i];
    case EM_U8: case EM_BOOL: return ((const uint8_t *)b)[i];
    default: return (int64_t)getd(dt, b, i);
    }
}

static inline em_kview mkv(void *buf, int32_t dt, int64_t off, int nd, const int64_t *shape,
                    const int64_t *strides)
{
    em_kview v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    v.buf = buf;
    v.offset = off;
    v.dtype = dt;
    v.ndim = nd;
    for (int d = 0; d < nd; d++) {
        v.shape[d] = shape[d];
        v.strides[d] = strides[d];
    }
    return v;
}

/* Call kernel f with out (and outs[1] when out2), up to three inputs, p[0..1] and ip[]. */
static inline em_status callk(em_kernel_fn f, const em_kview *out, const em_kview *out2,
                       const em_kview *a, const em_kview *b, const em_kview *c, double p0,
                       double p1, const int64_t *ip, int nip)
{
    assert_non_null(f);
    em_kargs k;
    memset(&k, 0, sizeof k);
    k.struct_size = sizeof k;
    const em_kview *outs[2] = {out, out2};
    const em_kview *ins[3] = {a, b, c};
    k.out = out;
    k.in[0] = a;
    k.in[1] = b;
    k.in[2] = c;
    k.p[0] = p0;
    k.p[1] = p1;
    k.n_out = out2 ? 2 : 1;
    k.outs = outs;
    k.n_in = (uint32_t)(c ? 3 : b ? 2 : a ? 1 : 0);
    k.ins = ins;
    k.ip = ip;
    k.n_ip = (uint32_t)nip;
    g_msg[0] = '\0';
    return f(g_dev, &k);
}

#define K(name) (g_ops->name)

/* Elementwise layouts over a logical 2x3 (index q = 3*i + j): out contiguous; operand A
 * transposed, offset 1 (element at 1 + i + 2*j); operand B a broadcast row (element at j). */
static const int64_t g_shape[2] = {2, 3};
static const int64_t g_st_out[2] = {3, 1};
static const int64_t g_st_a[2] = {1, 2};
static const int64_t g_st_b[2] = {0, 1};
#define POS_A(q) (1 + (q) / 3 + 2 * ((q) % 3))
#define POS_B(q) ((q) % 3)

/* float bit-identity with NaN == NaN and -0 != +0 */
static inline int same_double(double a, double b)
{
    if (a != a || b != b)
        return a != a && b != b;
    return a == b && signbit(a) == signbit(b);
}

/* |got - want| within `ulps` units of dt's epsilon relative to |want| (NaN, infinities
 * and zeros exact, signs included) */
static inline int close_to(int32_t dt, double got, double want, double ulps)
{
    if (got != got || want != want || isinf(want) || want == 0)
        return same_double(got, want);
    double eps = dt == EM_F32 ? 1.1920928955078125e-07 : 2.220446049250313e-16;
    return fabs(got - want) <= ulps * eps * fabs(want);
}


/* ------------------------------------------------------------------ test values */

static const int64_t g_vals_i64[] = {INT64_MAX, INT64_MIN, -1, 0, 1, 7, -7, 123456789012345};
static const int64_t g_vals_i32[] = {INT32_MAX, INT32_MIN, -1, 0, 1, 5, -9, 100000};
static const int64_t g_vals_u8[] = {255, 0, 1, 128, 200, 7, 254, 3};

static inline const int64_t *int_vals(int32_t dt)
{
    return dt == EM_I64 ? g_vals_i64 : dt == EM_I32 ? g_vals_i32 : g_vals_u8;
}

/* A buffer of 8 elements of dt holding int_vals rotated by r (so A and B differ). */
static inline void fill_int_buf(int32_t dt, void *b, int r)
{
    const int64_t *v = int_vals(dt);
    for (int i = 0; i < 8; i++)
        puti(dt, b, i, v[(i + r) % 8]);
}

/* a distinct value per element (q) of dt */
static inline void put_q(int32_t dt, void *b, int64_t i, int64_t q)
{
    if (dt == EM_BOOL)
        puti(dt, b, i, q % 3 == 1);
    else if (is_float(dt))
        putd(dt, b, i, (double)q + 0.25);
    else
        puti(dt, b, i, dt == EM_I64 ? INT64_MIN + 1000 * q : q * 37);
}

#endif
