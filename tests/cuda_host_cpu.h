/* tests/cuda_host_cpu.h — what the host tests of the cuda backend's ABI 1.2 logic share
 * (tests/test_cuda_math_host.c, tests/test_cuda_dim_host.c): the cpu plugin loaded through
 * its entry from EMBER_TEST_BACKEND_DIR, one call of any of its kernels, element access
 * by dtype, and random strided views. Include once per test program, after <cmocka.h>,
 * "cuda_math.h" and "test_host.h"; everything is static inline. */
#ifndef EMBER_TEST_CUDA_HOST_CPU_H
#define EMBER_TEST_CUDA_HOST_CPU_H

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the cpu plugin */

static em_backend g_be;  /* the cpu plugin, its device */
static const em_backend_ops *g_ops;
static void *g_dev;
static void *g_dl;

static inline int load_cpu(void **state)
{
    (void)state;
    em_backend_entry_fn entry = th_plugin_entry("cpu", &g_dl);
    if (!entry)
        return -1;
    memset(&g_be, 0, sizeof g_be);
    g_be.struct_size = sizeof g_be;
    if (entry(&g_host, NULL, NULL, 0, &g_be) != EM_OK || !g_be.ops) {
        fprintf(stderr, "cpu plugin entry failed: %s\n", g_msg);
        return -1;
    }
    g_ops = g_be.ops;
    if (g_ops->device_open(g_be.ctx, 0, &g_dev) != EM_OK) {
        fprintf(stderr, "cpu device_open failed: %s\n", g_msg);
        return -1;
    }
    return 0;
}

static inline int unload_cpu(void **state)
{
    (void)state;
    if (g_ops) {
        g_ops->device_close(g_dev);
        g_ops->shutdown(g_be.ctx);
    }
    if (g_dl)
        dlclose(g_dl);
    return 0;
}

#define OFF(name) offsetof(em_backend_ops, name)

/* One cpu kernel call: outs[0..n_out), ins[0..n_in), p[0..1], ip[0..n_ip). */
static inline void cpu_call(size_t off, const em_kview *o0, const em_kview *o1, const em_kview *i0,
                     const em_kview *i1, const em_kview *i2, double p0, double p1,
                     const int64_t *ip, int n_ip)
{
    const em_kview *outs[2] = {o0, o1}, *ins[3] = {i0, i1, i2};
    em_kargs a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.out = o0;
    for (int i = 0; i < 3; i++)
        a.in[i] = ins[i];
    a.n_out = o1 ? 2 : 1;
    a.outs = outs;
    a.n_in = i2 ? 3 : i1 ? 2 : i0 ? 1 : 0;
    a.ins = ins;
    a.p[0] = p0;
    a.p[1] = p1;
    a.ip = ip;
    a.n_ip = (uint32_t)n_ip;
    em_kernel_fn fn;
    memcpy(&fn, (const char *)g_ops + off, sizeof fn);
    assert_non_null(fn);
    if (fn(g_dev, &a) != EM_OK)
        fail_msg("cpu kernel failed: %s", g_msg);
}

static inline em_kview view1(void *buf, int32_t dt, int64_t n)
{
    em_kview v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    v.buf = buf;
    v.dtype = dt;
    v.ndim = 1;
    v.shape[0] = n;
    v.strides[0] = 1;
    return v;
}

static inline size_t dsize(int32_t dt)
{
    return dt == EM_F64 || dt == EM_I64 ? 8 : dt == EM_F32 || dt == EM_I32 ? 4 : 1;
}

/* element i of an integer buffer, widened (sign- or zero-extended), and its store */
static inline int64_t geti(const void *b, int32_t dt, int64_t i)
{
    switch (dt) {
    case EM_I64: return ((const int64_t *)b)[i];
    case EM_I32: return ((const int32_t *)b)[i];
    default: return ((const uint8_t *)b)[i];
    }
}

static inline void seti(void *b, int32_t dt, int64_t i, int64_t v)
{
    switch (dt) {
    case EM_I64: ((int64_t *)b)[i] = v; break;
    case EM_I32: ((int32_t *)b)[i] = (int32_t)(uint32_t)(uint64_t)v; break;
    default: ((uint8_t *)b)[i] = (uint8_t)(uint64_t)v; break;
    }
}

static inline int same_f32(float a, float b)
{
    return isnan(a) || isnan(b) ? isnan(a) && isnan(b) : memcmp(&a, &b, sizeof a) == 0;
}

static inline int same_f64(double a, double b)
{
    return isnan(a) || isnan(b) ? isnan(a) && isnan(b) : memcmp(&a, &b, sizeof a) == 0;
}

/* ------------------------------------------------------------------ random views */

static uint64_t g_lcg = 0x2545f4914f6cdd1dULL;
static inline uint32_t rnd_u32(void)
{
    g_lcg = g_lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(g_lcg >> 33);
}
static inline int rnd_int(int lo, int hi) { return lo + (int)(rnd_u32() % (uint32_t)(hi - lo + 1)); }

/* A view of `shape` into a fresh zeroed buffer, its dims laid out in a random order with
 * contiguous, stepped, padded or negative strides. Returns the buffer; elements in *cap. */
static inline void *make_view(em_kview *v, int32_t dt, int nd, const int64_t *shape, int64_t *cap)
{
    memset(v, 0, sizeof *v);
    v->struct_size = sizeof *v;
    v->dtype = dt;
    v->ndim = nd;
    int perm[EM_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        perm[d] = d;
    if (rnd_int(0, 2) == 0)
        for (int d = nd - 1; d > 0; d--) {
            int j = rnd_int(0, d), t = perm[d];
            perm[d] = perm[j];
            perm[j] = t;
        }
    int64_t s = 1, lo = 0, hi = 0;
    for (int k = nd - 1; k >= 0; k--) {
        const int d = perm[k];
        const int kind = rnd_int(0, 7);
        v->shape[d] = shape[d];
        v->strides[d] = (kind == 0 ? 2 * s : s) * (kind == 1 ? -1 : 1);
        s *= shape[d] * (kind == 0 ? 2 : 1) + (kind == 2 ? 1 : 0);
        const int64_t ext = shape[d] > 0 ? (shape[d] - 1) * v->strides[d] : 0;
        if (ext < 0)
            lo += ext;
        else
            hi += ext;
    }
    v->offset = -lo + rnd_int(0, 2);
    *cap = v->offset + hi + 1;
    void *buf = calloc((size_t)*cap, dsize(dt));
    assert_non_null(buf);
    v->buf = buf;
    return buf;
}

/* a copy of view v on a copy of its buffer (cap elements) */
static inline em_kview twin(const em_kview *v, int64_t cap)
{
    em_kview w = *v;
    w.buf = malloc((size_t)cap * dsize(v->dtype));
    assert_non_null(w.buf);
    memcpy(w.buf, v->buf, (size_t)cap * dsize(v->dtype));
    return w;
}

/* element values with many ties: floats from a small set with some NaN and infinities */
static inline void fill_ties(void *buf, int32_t dt, int64_t cap)
{
    static const double fv[] = {0, 1, 2, -1, -0.0, 2, 1, INFINITY, -INFINITY, 0.5};
    for (int64_t i = 0; i < cap; i++) {
        const uint32_t r = rnd_u32();
        if (dt == EM_F32 || dt == EM_F64) {
            const double x = r % 97 == 0 ? NAN : fv[r % 10];
            if (dt == EM_F32)
                ((float *)buf)[i] = (float)x;
            else
                ((double *)buf)[i] = x;
        } else {
            seti(buf, dt, i, (int64_t)(r % 7) - 3 + (r % 53 == 0 ? 250 : 0));
        }
    }
}

#endif
