/* tests/test_cuda_host.c — the cuda backend's GPU-independent logic, checked on the host.
 * backends/cuda/cuda_index.h is the code the CUDA kernels run (as __host__ __device__
 * functions); here it is compiled as plain C and compared with the cpu backend's kernels,
 * which are loaded from EMBER_TEST_BACKEND_DIR through their plugin entry, as the core does:
 *  - each op's scalar function, bit for bit, on special values (signed zeros, infinities,
 *    NaN, subnormals, huge values; clamp with min > max; every pow fast-path exponent);
 *  - fill, copy conversions, where, masked_fill, comparisons on f32/f64/bool;
 *  - the Philox draws (uniform and normal, f32 and f64) bit for bit;
 *  - strided / broadcast / negative-stride offsets (emcu_geom) by emulating the nd and flat
 *    kernels' loops over real views, against the cpu kernels on the same views;
 *  - sum: the reduction plan, and a host emulation of the kernel's whole partition (blocks,
 *    threads, chunks, fixed trees, last-block finalisation): every (output, element) pair
 *    summed exactly once, results equal to the cpu backend's within rounding.
 * Needs neither nvcc nor a GPU, so it runs everywhere the cpu plugin is built. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cuda_index.h"

#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_host.h"

/* ------------------------------------------------------------------ the cpu plugin */

static em_backend g_be;
static const em_backend_ops *g_ops;
static void *g_dev;
static void *g_dl;

static int load_cpu(void **state)
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

static int unload_cpu(void **state)
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

static em_kernel_fn cpu_kernel(size_t off)
{
    em_kernel_fn fn;
    memcpy(&fn, (const char *)g_ops + off, sizeof fn);
    assert_non_null(fn);
    return fn;
}

static em_kview view1(void *buf, int32_t dt, int64_t n, int64_t stride)
{
    em_kview v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    v.buf = buf;
    v.dtype = dt;
    v.ndim = 1;
    v.shape[0] = n;
    v.strides[0] = stride;
    return v;
}

static void run_cpu(size_t off, const em_kview *out, const em_kview *i0, const em_kview *i1,
                    const em_kview *i2, double p0, double p1, uint64_t u0, uint64_t u1)
{
    em_kargs a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.out = out;
    a.in[0] = i0;
    a.in[1] = i1;
    a.in[2] = i2;
    a.p[0] = p0;
    a.p[1] = p1;
    a.u[0] = u0;
    a.u[1] = u1;
    em_status st = cpu_kernel(off)(g_dev, &a);
    if (st != EM_OK)
        fail_msg("cpu kernel failed: %s", g_msg);
}

#define OFF(name) offsetof(em_backend_ops, name)

/* ------------------------------------------------------------------ values */

static const double specials[] = {
    0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.75, -3.75, 1e-3, 0.1, 10.0, -10.0, 20.0,
    -20.0, 88.5, -88.5, 100.0, -100.0, 700.0, -700.0, 1e30, -1e30, 1e300, -1e300, 1e-40,
    -1e-40, 1e-310, DBL_MIN, (double)FLT_MAX, INFINITY, -INFINITY, NAN, -NAN, 0.7853981633974483,
};
#define NSPEC ((int)(sizeof specials / sizeof specials[0]))

static const double scalar_pairs[][2] = {
    {0, 0}, {0, INFINITY}, {-INFINITY, 0}, {-1, 1}, {2, -2}, {0.5, 3}, {-0.0, 0.0},
    {NAN, 1}, {3, NAN}, {1e-3, 1e30}, {-INFINITY, INFINITY}, {1e300, -1e300},
};
#define NPAIRS ((int)(sizeof scalar_pairs / sizeof scalar_pairs[0]))

static const double exponents[] = {2, 1, 0, 0.5, -1, 3, -2, 2.5, -0.5, 0.3, 1e10, -INFINITY,
                                   INFINITY, NAN, -0.0};
#define NEXP ((int)(sizeof exponents / sizeof exponents[0]))

static int same_f32(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

static int same_f64(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ------------------------------------------------------------------ unary and binary ops */

typedef struct unary_case {
    const char *name;
    size_t off;
    float (*f32)(float, float, float);
    double (*f64)(double, double, double);
} unary_case;

#define UNARY_CASE(N) {#N, OFF(N), emcu_##N##_f32, emcu_##N##_f64},
static const unary_case unary_cases[] = {EMCU_UNARY_OPS(UNARY_CASE)};

typedef struct binary_case {
    const char *name;
    size_t off;
    float (*f32)(float, float, float, float);
    double (*f64)(double, double, double, double);
} binary_case;

#define BINARY_CASE(N) {#N, OFF(N), emcu_##N##_f32, emcu_##N##_f64},
static const binary_case binary_cases[] = {EMCU_BINARY_OPS(BINARY_CASE)};

static void test_unary_ops(void **state)
{
    (void)state;
    float xf[NSPEC], of[NSPEC];
    double xd[NSPEC], od[NSPEC];
    for (int i = 0; i < NSPEC; i++) {
        xf[i] = (float)specials[i];
        xd[i] = specials[i];
    }
    em_kview vif = view1(xf, EM_F32, NSPEC, 1), vof = view1(of, EM_F32, NSPEC, 1);
    em_kview vid = view1(xd, EM_F64, NSPEC, 1), vod = view1(od, EM_F64, NSPEC, 1);
    int checked = 0;
    for (size_t c = 0; c < sizeof unary_cases / sizeof unary_cases[0]; c++) {
        const unary_case *uc = &unary_cases[c];
        for (int p = 0; p < NPAIRS; p++) {
            const double p0 = scalar_pairs[p][0], p1 = scalar_pairs[p][1];
            run_cpu(uc->off, &vof, &vif, NULL, NULL, p0, p1, 0, 0);
            run_cpu(uc->off, &vod, &vid, NULL, NULL, p0, p1, 0, 0);
            for (int i = 0; i < NSPEC; i++) {
                float wf = uc->f32(xf[i], (float)p0, (float)p1);
                double wd = uc->f64(xd[i], p0, p1);
                if (!same_f32(of[i], wf))
                    fail_msg("%s f32 (x %.9g, p0 %g, p1 %g): cpu %.9g, cuda logic %.9g", uc->name,
                             (double)xf[i], p0, p1, (double)of[i], (double)wf);
                if (!same_f64(od[i], wd))
                    fail_msg("%s f64 (x %.17g, p0 %g, p1 %g): cpu %.17g, cuda logic %.17g",
                             uc->name, xd[i], p0, p1, od[i], wd);
                checked += 2;
            }
        }
    }
    /* pow_scalar, every fast path and the generic one */
    for (int e = 0; e < NEXP; e++) {
        const double ex = exponents[e];
        run_cpu(OFF(pow_scalar), &vof, &vif, NULL, NULL, ex, 0, 0, 0);
        run_cpu(OFF(pow_scalar), &vod, &vid, NULL, NULL, ex, 0, 0, 0);
        const int mode = emcu_pow_mode(ex);
        for (int i = 0; i < NSPEC; i++) {
            float wf = emcu_pow_f32(xf[i], (float)ex, mode);
            double wd = emcu_pow_f64(xd[i], ex, mode);
            if (!same_f32(of[i], wf))
                fail_msg("pow_scalar f32 (x %.9g, e %g): cpu %.9g, cuda logic %.9g", (double)xf[i],
                         ex, (double)of[i], (double)wf);
            if (!same_f64(od[i], wd))
                fail_msg("pow_scalar f64 (x %.17g, e %g): cpu %.17g, cuda logic %.17g", xd[i], ex,
                         od[i], wd);
            checked += 2;
        }
    }
    print_message("# %d unary results identical to the cpu backend\n", checked);
}

static void test_binary_ops(void **state)
{
    (void)state;
    const int n = NSPEC * NSPEC;
    float *af = malloc(sizeof(float) * n), *bf = malloc(sizeof(float) * n), *of = malloc(sizeof(float) * n);
    double *ad = malloc(sizeof(double) * n), *bd = malloc(sizeof(double) * n),
           *od = malloc(sizeof(double) * n);
    for (int i = 0; i < NSPEC; i++)
        for (int j = 0; j < NSPEC; j++) {
            af[i * NSPEC + j] = (float)specials[i];
            bf[i * NSPEC + j] = (float)specials[j];
            ad[i * NSPEC + j] = specials[i];
            bd[i * NSPEC + j] = specials[j];
        }
    em_kview vaf = view1(af, EM_F32, n, 1), vbf = view1(bf, EM_F32, n, 1), vof = view1(of, EM_F32, n, 1);
    em_kview vad = view1(ad, EM_F64, n, 1), vbd = view1(bd, EM_F64, n, 1), vod = view1(od, EM_F64, n, 1);
    long checked = 0;
    for (size_t c = 0; c < sizeof binary_cases / sizeof binary_cases[0]; c++) {
        const binary_case *bc = &binary_cases[c];
        for (int p = 0; p < NPAIRS; p++) {
            const double p0 = scalar_pairs[p][0], p1 = scalar_pairs[p][1];
            run_cpu(bc->off, &vof, &vaf, &vbf, NULL, p0, p1, 0, 0);
            run_cpu(bc->off, &vod, &vad, &vbd, NULL, p0, p1, 0, 0);
            for (int i = 0; i < n; i++) {
                float wf = bc->f32(af[i], bf[i], (float)p0, (float)p1);
                double wd = bc->f64(ad[i], bd[i], p0, p1);
                if (!same_f32(of[i], wf))
                    fail_msg("%s f32 (a %.9g, b %.9g, p0 %g, p1 %g): cpu %.9g, cuda logic %.9g",
                             bc->name, (double)af[i], (double)bf[i], p0, p1, (double)of[i], (double)wf);
                if (!same_f64(od[i], wd))
                    fail_msg("%s f64 (a %.17g, b %.17g, p0 %g, p1 %g): cpu %.17g, cuda logic %.17g",
                             bc->name, ad[i], bd[i], p0, p1, od[i], wd);
                checked += 2;
            }
        }
    }
    for (int e = 0; e < NEXP; e++) {
        const double ex = exponents[e];
        run_cpu(OFF(pow_backward), &vof, &vaf, &vbf, NULL, ex, 0, 0, 0);
        run_cpu(OFF(pow_backward), &vod, &vad, &vbd, NULL, ex, 0, 0, 0);
        const int mode = emcu_pow_backward_mode(ex);
        for (int i = 0; i < n; i++) {
            float wf = emcu_pow_backward_f32(af[i], bf[i], (float)ex, mode);
            double wd = emcu_pow_backward_f64(ad[i], bd[i], ex, mode);
            if (!same_f32(of[i], wf))
                fail_msg("pow_backward f32 (g %.9g, x %.9g, e %g): cpu %.9g, cuda logic %.9g",
                         (double)af[i], (double)bf[i], ex, (double)of[i], (double)wf);
            if (!same_f64(od[i], wd))
                fail_msg("pow_backward f64 (g %.17g, x %.17g, e %g): cpu %.17g, cuda logic %.17g",
                         ad[i], bd[i], ex, od[i], wd);
            checked += 2;
        }
    }
    print_message("# %ld binary results identical to the cpu backend\n", checked);
    free(af);
    free(bf);
    free(of);
    free(ad);
    free(bd);
    free(od);
}

/* ------------------------------------------------------------------ bool-producing ops */

typedef struct compare_case {
    const char *name;
    size_t off;
    uint8_t (*f32)(float, float);
    uint8_t (*f64)(double, double);
    uint8_t (*b8)(uint8_t, uint8_t);
} compare_case;

#define COMPARE_CASE(N) {#N, OFF(N), emcu_##N##_f32, emcu_##N##_f64, emcu_##N##_bool},
static const compare_case compare_cases[] = {EMCU_COMPARE_OPS(COMPARE_CASE)};

static void test_compare_select(void **state)
{
    (void)state;
    const int n = NSPEC * NSPEC;
    float *af = malloc(sizeof(float) * n), *bf = malloc(sizeof(float) * n), *of = malloc(sizeof(float) * n);
    double *ad = malloc(sizeof(double) * n), *bd = malloc(sizeof(double) * n), *od = malloc(sizeof(double) * n);
    uint8_t *ab = malloc(n), *bb = malloc(n), *ob = malloc(n), *mb = malloc(n);
    for (int i = 0; i < n; i++) {
        af[i] = (float)specials[i / NSPEC];
        bf[i] = (float)specials[i % NSPEC];
        ad[i] = specials[i / NSPEC];
        bd[i] = specials[i % NSPEC];
        ab[i] = (uint8_t)(i & 1);
        bb[i] = (uint8_t)((i >> 1) & 1);
        mb[i] = (uint8_t)((i * 7 + 3) % 5 < 2);
    }
    em_kview vaf = view1(af, EM_F32, n, 1), vbf = view1(bf, EM_F32, n, 1), vof = view1(of, EM_F32, n, 1);
    em_kview vad = view1(ad, EM_F64, n, 1), vbd = view1(bd, EM_F64, n, 1), vod = view1(od, EM_F64, n, 1);
    em_kview vab = view1(ab, EM_BOOL, n, 1), vbb = view1(bb, EM_BOOL, n, 1), vob = view1(ob, EM_BOOL, n, 1);
    em_kview vmb = view1(mb, EM_BOOL, n, 1);
    for (size_t c = 0; c < sizeof compare_cases / sizeof compare_cases[0]; c++) {
        const compare_case *cc = &compare_cases[c];
        run_cpu(cc->off, &vob, &vaf, &vbf, NULL, 0, 0, 0, 0);
        for (int i = 0; i < n; i++)
            if (ob[i] != cc->f32(af[i], bf[i]))
                fail_msg("%s f32 (%g, %g): cpu %d", cc->name, (double)af[i], (double)bf[i], ob[i]);
        run_cpu(cc->off, &vob, &vad, &vbd, NULL, 0, 0, 0, 0);
        for (int i = 0; i < n; i++)
            if (ob[i] != cc->f64(ad[i], bd[i]))
                fail_msg("%s f64 (%g, %g): cpu %d", cc->name, ad[i], bd[i], ob[i]);
        run_cpu(cc->off, &vob, &vab, &vbb, NULL, 0, 0, 0, 0);
        for (int i = 0; i < n; i++)
            if (ob[i] != cc->b8(ab[i], bb[i]))
                fail_msg("%s bool (%d, %d): cpu %d", cc->name, ab[i], bb[i], ob[i]);
    }
    /* where: out = cond ? a : b */
    run_cpu(OFF(where), &vof, &vmb, &vaf, &vbf, 0, 0, 0, 0);
    for (int i = 0; i < n; i++)
        assert_true(same_f32(of[i], mb[i] ? af[i] : bf[i]));
    run_cpu(OFF(where), &vod, &vmb, &vad, &vbd, 0, 0, 0, 0);
    for (int i = 0; i < n; i++)
        assert_true(same_f64(od[i], mb[i] ? ad[i] : bd[i]));
    run_cpu(OFF(where), &vob, &vmb, &vab, &vbb, 0, 0, 0, 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(ob[i], mb[i] ? ab[i] : bb[i]);
    /* masked_fill and fill: the value rounded to the dtype, != 0 for bool */
    const double fills[] = {0.0, -0.0, 1.5, -2.0, 1e300, 0.1, NAN, INFINITY, 3.0};
    for (size_t k = 0; k < sizeof fills / sizeof fills[0]; k++) {
        const double v = fills[k];
        run_cpu(OFF(masked_fill), &vof, &vaf, &vmb, NULL, v, 0, 0, 0);
        for (int i = 0; i < n; i++)
            assert_true(same_f32(of[i], mb[i] ? emcu_scalar_f32(v) : af[i]));
        run_cpu(OFF(masked_fill), &vod, &vad, &vmb, NULL, v, 0, 0, 0);
        for (int i = 0; i < n; i++)
            assert_true(same_f64(od[i], mb[i] ? emcu_scalar_f64(v) : ad[i]));
        run_cpu(OFF(masked_fill), &vob, &vab, &vmb, NULL, v, 0, 0, 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(ob[i], mb[i] ? emcu_scalar_bool(v) : ab[i]);
        run_cpu(OFF(fill), &vof, NULL, NULL, NULL, v, 0, 0, 0);
        run_cpu(OFF(fill), &vod, NULL, NULL, NULL, v, 0, 0, 0);
        run_cpu(OFF(fill), &vob, NULL, NULL, NULL, v, 0, 0, 0);
        for (int i = 0; i < n; i++) {
            assert_true(same_f32(of[i], emcu_scalar_f32(v)));
            assert_true(same_f64(od[i], emcu_scalar_f64(v)));
            assert_int_equal(ob[i], emcu_scalar_bool(v));
        }
    }
    /* copy conversions */
    run_cpu(OFF(copy), &vob, &vaf, NULL, NULL, 0, 0, 0, 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(ob[i], emcu_to_bool_f32(af[i]));
    run_cpu(OFF(copy), &vob, &vad, NULL, NULL, 0, 0, 0, 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(ob[i], emcu_to_bool_f64(ad[i]));
    run_cpu(OFF(copy), &vof, &vad, NULL, NULL, 0, 0, 0, 0);
    for (int i = 0; i < n; i++)
        assert_true(same_f32(of[i], (float)ad[i]));
    run_cpu(OFF(copy), &vod, &vaf, NULL, NULL, 0, 0, 0, 0);
    for (int i = 0; i < n; i++)
        assert_true(same_f64(od[i], (double)af[i]));
    run_cpu(OFF(copy), &vof, &vab, NULL, NULL, 0, 0, 0, 0);
    run_cpu(OFF(copy), &vod, &vab, NULL, NULL, 0, 0, 0, 0);
    for (int i = 0; i < n; i++) {
        assert_true(same_f32(of[i], (float)ab[i]));
        assert_true(same_f64(od[i], (double)ab[i]));
    }
    free(af);
    free(bf);
    free(of);
    free(ad);
    free(bd);
    free(od);
    free(ab);
    free(bb);
    free(ob);
    free(mb);
}

/* ------------------------------------------------------------------ rng */

static void test_rng(void **state)
{
    (void)state;
    enum { N = 3000 };
    static float of[N];
    static double od[N];
    em_kview vof = view1(of, EM_F32, N, 1), vod = view1(od, EM_F64, N, 1);
    const uint64_t seeds[] = {0, 1, 0xdeadbeefcafebabeULL};
    const uint64_t ctrs[] = {0, 12345, 0xfffffff0ULL, 0xfffffffffffffff0ULL};
    const double ps[][2] = {{0, 1}, {-2, 3}, {5, 0.5}};
    for (int s = 0; s < 3; s++)
        for (int c = 0; c < 4; c++)
            for (int p = 0; p < 3; p++) {
                const double p0 = ps[p][0], p1 = ps[p][1];
                run_cpu(OFF(rng_uniform), &vof, NULL, NULL, NULL, p0, p1, seeds[s], ctrs[c]);
                run_cpu(OFF(rng_uniform), &vod, NULL, NULL, NULL, p0, p1, seeds[s], ctrs[c]);
                for (int64_t i = 0; i < N; i++) {
                    assert_true(same_f32(of[i], emcu_uniform_f32(seeds[s], ctrs[c], i, p0, p1 - p0)));
                    assert_true(same_f64(od[i], emcu_uniform_f64(seeds[s], ctrs[c], i, p0, p1 - p0)));
                }
                run_cpu(OFF(rng_normal), &vof, NULL, NULL, NULL, p0, p1, seeds[s], ctrs[c]);
                run_cpu(OFF(rng_normal), &vod, NULL, NULL, NULL, p0, p1, seeds[s], ctrs[c]);
                for (int64_t i = 0; i < N; i++) {
                    assert_true(same_f32(of[i], (float)emcu_normal(seeds[s], ctrs[c], i, p0, p1)));
                    assert_true(same_f64(od[i], emcu_normal(seeds[s], ctrs[c], i, p0, p1)));
                }
            }
}

/* ------------------------------------------------------------------ random views */

static uint64_t g_lcg = 0x853c49e6748fea9bULL;
static uint32_t rnd_u32(void)
{
    g_lcg = g_lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(g_lcg >> 33);
}
static int rnd_int(int lo, int hi) { return lo + (int)(rnd_u32() % (uint32_t)(hi - lo + 1)); }
static double rnd_val(void) { return ((double)rnd_u32() / 4294967296.0) * 8.0 - 4.0; }

/* A strided view of `shape` into a fresh buffer: per dim a stride that is contiguous,
 * permuted, stepped, negative or 0 (broadcast; only if allow_zero). Returns the buffer;
 * its element count in *cap. */
static void *make_view(em_kview *v, int32_t dt, int nd, const int64_t *shape, int allow_zero,
                       int64_t *cap)
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
    int64_t s = 1;
    for (int k = nd - 1; k >= 0; k--) {
        int d = perm[k];
        v->shape[d] = shape[d];
        int kind = rnd_int(0, 9);
        int64_t step = kind == 0 ? 2 : 1;
        int64_t st = s * step;
        if (kind == 1)
            st = -st;
        if (kind == 2 && allow_zero)
            st = 0;
        v->strides[d] = st;
        s *= shape[d] * step + (kind == 3 ? 1 : 0);   /* kind 3: padded rows */
    }
    /* offset so that the lowest address is at element 0 (+ a little) */
    int64_t lo = 0, hi = 0;
    for (int d = 0; d < nd; d++) {
        int64_t ext = (v->shape[d] - 1) * v->strides[d];
        if (v->shape[d] == 0)
            ext = 0;
        if (ext < 0)
            lo += ext;
        else
            hi += ext;
    }
    v->offset = -lo + rnd_int(0, 3);
    *cap = v->offset + hi + 1;
    size_t es = dt == EM_F32 ? 4 : dt == EM_F64 ? 8 : 1;
    void *buf = calloc((size_t)*cap, es);
    assert_non_null(buf);
    v->buf = buf;
    return buf;
}

static double get_at(const em_kview *v, int64_t off)
{
    const int64_t i = v->offset + off;
    switch (v->dtype) {
    case EM_F32: return ((const float *)v->buf)[i];
    case EM_F64: return ((const double *)v->buf)[i];
    default: return ((const uint8_t *)v->buf)[i];
    }
}

static void fill_random(void *buf, int32_t dt, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double x = rnd_val();
        if (dt == EM_F32)
            ((float *)buf)[i] = (float)x;
        else if (dt == EM_F64)
            ((double *)buf)[i] = x;
        else
            ((uint8_t *)buf)[i] = x > 0;
    }
}

/* Naive row-major offset of lin in view v (the reference for emcu_geom_offsets). */
static int64_t naive_offset(const em_kview *v, int64_t lin)
{
    int64_t off = 0;
    for (int d = v->ndim - 1; d >= 0; d--) {
        off += (lin % v->shape[d]) * v->strides[d];
        lin /= v->shape[d];
    }
    return off;
}

/* ------------------------------------------------------------------ elementwise geometry */

static void test_geom_offsets(void **state)
{
    (void)state;
    for (int iter = 0; iter < 400; iter++) {
        int nd = rnd_int(1, EM_MAX_DIMS);
        int64_t shape[EM_MAX_DIMS];
        int64_t numel = 1;
        for (int d = 0; d < nd; d++) {
            shape[d] = rnd_int(1, nd > 5 ? 3 : 5);
            numel *= shape[d];
        }
        em_kview v[4];
        void *bufs[4];
        int64_t cap;
        for (int k = 0; k < 4; k++)
            bufs[k] = make_view(&v[k], EM_F32, nd, shape, k > 0, &cap);
        const em_kview *pv[4] = {&v[0], &v[1], &v[2], &v[3]};
        emcu_geom g;
        assert_int_equal(emcu_geom_init(&g, pv, 4), numel);
        for (int64_t lin = 0; lin < numel; lin++) {
            int64_t off[4];
            emcu_geom_offsets(&g, lin, off, 4);
            for (int k = 0; k < 4; k++)
                if (off[k] != naive_offset(&v[k], lin))
                    fail_msg("iter %d: operand %d, index %lld: offset %lld, expected %lld", iter, k,
                             (long long)lin, (long long)off[k], (long long)naive_offset(&v[k], lin));
        }
        /* flat only for 1-D with out stride 1 and inputs 0/1 */
        int flat = nd == 1 && v[0].strides[0] == 1;
        for (int k = 1; k < 4; k++)
            flat = flat && (v[k].strides[0] == 0 || v[k].strides[0] == 1);
        assert_int_equal(emcu_geom_flat(&g), flat);
        for (int k = 0; k < 4; k++)
            free(bufs[k]);
    }
}

/* The two elementwise kernels' loops, emulated thread by thread for `add`: results and
 * coverage must equal the cpu add kernel on the same views. */
static void emulate_add(const em_kview *const *v, int64_t blocks, int threads)
{
    emcu_geom g;
    const int64_t n = emcu_geom_init(&g, v, 3);
    float *o = (float *)v[0]->buf + v[0]->offset;
    const float *a = (const float *)v[1]->buf + v[1]->offset;
    const float *b = (const float *)v[2]->buf + v[2]->offset;
    const int64_t stride = blocks * threads;
    if (emcu_geom_flat(&g)) {
        const int vec = 4;
        const unsigned bc = (g.st[1][0] == 0 ? 1u : 0u) | (g.st[2][0] == 0 ? 2u : 0u);
        for (int aligned = 0; aligned < 2; aligned++) {
            const int64_t nvec = aligned ? n / vec : 0;
            for (int64_t t0 = 0; t0 < stride; t0++) {
                for (int64_t q = t0; q < nvec; q += stride)
                    for (int j = 0; j < vec; j++) {
                        const int64_t i = q * vec + j;
                        o[i] = emcu_add_f32((bc & 1) ? a[0] : a[i], (bc & 2) ? b[0] : b[i], 0, 0);
                    }
                for (int64_t i = nvec * vec + t0; i < n; i += stride)
                    o[i] = emcu_add_f32((bc & 1) ? a[0] : a[i], (bc & 2) ? b[0] : b[i], 0, 0);
            }
        }
    } else {
        for (int64_t t0 = 0; t0 < stride; t0++)
            for (int64_t lin = t0; lin < g.numel; lin += stride) {
                int64_t off[3];
                emcu_geom_offsets(&g, lin, off, 3);
                o[off[0]] = emcu_add_f32(a[off[1]], b[off[2]], 0, 0);
            }
    }
}

static void test_elementwise_emulation(void **state)
{
    (void)state;
    for (int iter = 0; iter < 300; iter++) {
        const int flat = iter < 80;   /* 1-D views for the flat path, else random views */
        int nd = flat ? 1 : rnd_int(1, 5);
        int64_t shape[EM_MAX_DIMS];
        for (int d = 0; d < nd; d++)
            shape[d] = flat ? rnd_int(0, 2100) : rnd_int(1, 9);
        em_kview v[3], w;
        int64_t cap[3];
        void *bufs[3];
        for (int k = 0; k < 3; k++) {
            if (flat) {
                /* out contiguous; inputs contiguous or broadcast; offsets that break or
                 * keep 16-byte alignment */
                v[k] = view1(NULL, EM_F32, shape[0], k > 0 && rnd_int(0, 3) == 0 ? 0 : 1);
                v[k].offset = rnd_int(0, 1) ? 0 : rnd_int(1, 5);
                cap[k] = v[k].offset + shape[0] + 1;
                bufs[k] = v[k].buf = calloc((size_t)cap[k], 4);
            } else {
                bufs[k] = make_view(&v[k], EM_F32, nd, shape, k > 0, &cap[k]);
            }
            fill_random(bufs[k], EM_F32, cap[k]);
        }
        /* the cpu result goes to an identical copy of out */
        w = v[0];
        w.buf = malloc((size_t)cap[0] * 4);
        memcpy(w.buf, v[0].buf, (size_t)cap[0] * 4);
        run_cpu(OFF(add), &w, &v[1], &v[2], NULL, 0, 0, 0, 0);
        const em_kview *pv[3] = {&v[0], &v[1], &v[2]};
        emcu_geom g;
        emcu_geom_init(&g, pv, 3);
        if (flat)   /* random views may happen to be flat too */
            assert_int_equal(emcu_geom_flat(&g), 1);
        emulate_add(pv, 1 + iter % 5, 256);
        if (memcmp(w.buf, v[0].buf, (size_t)cap[0] * 4) != 0)
            fail_msg("iter %d: emulated add differs from the cpu kernel", iter);
        free(w.buf);
        for (int k = 0; k < 3; k++)
            free(bufs[k]);
    }
    assert_int_equal(emcu_grid_blocks(0, 256, 10), 1);
    assert_int_equal(emcu_grid_blocks(257, 256, 10), 2);
    assert_int_equal(emcu_grid_blocks(1 << 30, 256, 10), 10);
}

/* ------------------------------------------------------------------ sum */

/* The k_sum kernel, block by block and thread by thread, with the same trees. visits[o*L+r]
 * counts how often output o's element r was added. */
static void emulate_sum(const emcu_red_plan *p, const em_kview *in, double scale, double *out_vals,
                        int64_t *out_offs, unsigned char *visits)
{
    const int T = EMCU_RED_THREADS;
    double sm[EMCU_RED_THREADS];
    double *partial = calloc((size_t)(p->M * p->nch), sizeof(double));
    assert_non_null(partial);
    for (int64_t blk = 0; blk < p->nblocks; blk++) {
        int64_t tile, ch;
        emcu_red_block(p, blk, &tile, &ch);
        for (int tid = 0; tid < T; tid++) {
            const int tx = tid % p->bx, ty = tid / p->bx;
            const int64_t o = emcu_red_output(p, tile, tx);
            double acc = 0;
            if (o < p->M) {
                int64_t ioff, ooff, r, end, step;
                emcu_red_kept(p, o, &ioff, &ooff);
                out_offs[o] = ooff;
                emcu_red_range(p, ch, ty, &r, &end, &step);
                for (; r < end; r += step) {
                    double x = get_at(in, ioff + emcu_red_roff(p, r));
                    acc += in->dtype == EM_BOOL ? (double)(x != 0) : x;
                    visits[o * p->L + r]++;
                }
            }
            sm[tid] = acc;
        }
        for (int s = p->by / 2; s > 0; s >>= 1)
            for (int tid = 0; tid < T; tid++) {
                const int ty = tid / p->bx;
                if (ty < s)
                    sm[tid] += sm[tid + s * p->bx];
            }
        for (int tx = 0; tx < p->bx; tx++) {
            const int64_t o = emcu_red_output(p, tile, tx);
            if (o >= p->M)
                continue;
            if (p->nch == 1)
                out_vals[o] = sm[tx] * scale;
            else
                partial[o * p->nch + ch] = sm[tx];
        }
        /* the tile's last chunk: which block finishes last does not change the order */
        if (p->nch > 1 && ch == p->nch - 1) {
            for (int tid = 0; tid < T; tid++) {
                const int tx = tid % p->bx, ty = tid / p->bx;
                const int64_t o = emcu_red_output(p, tile, tx);
                double tot = 0;
                if (o < p->M)
                    for (int64_t j = ty; j < p->nch; j += p->by)
                        tot += partial[o * p->nch + j];
                sm[tid] = tot;
            }
            for (int s = p->by / 2; s > 0; s >>= 1)
                for (int tid = 0; tid < T; tid++)
                    if (tid / p->bx < s)
                        sm[tid] += sm[tid + s * p->bx];
            for (int tx = 0; tx < p->bx; tx++) {
                const int64_t o = emcu_red_output(p, tile, tx);
                if (o < p->M)
                    out_vals[o] = sm[tx] * scale;
            }
        }
    }
    free(partial);
}

/* One sum case: in of `shape` (random strides), reduced over `mask`, out keepdim-shaped
 * with contiguous or permuted strides. */
static void sum_case(int nd, const int64_t *shape, unsigned mask, int32_t idt, int32_t odt,
                     double scale, int *modes_seen)
{
    em_kview in, out;
    int64_t icap, ocap;
    void *ib = make_view(&in, idt, nd, shape, 1, &icap);
    fill_random(ib, idt, icap);
    int64_t oshape[EM_MAX_DIMS] = {0};
    for (int d = 0; d < nd; d++)
        oshape[d] = (mask >> d) & 1u ? 1 : shape[d];
    void *ob = make_view(&out, odt, nd, oshape, 0, &ocap);
    emcu_red_plan p;
    memset(&p, 0, sizeof p);
    int bad = -1;
    int r = emcu_red_plan_build(nd, in.shape, in.strides, out.shape, out.strides, &p, &bad);
    int64_t in_numel = 1, out_numel = 1;
    for (int d = 0; d < nd; d++) {
        in_numel *= shape[d];
        out_numel *= oshape[d];
    }
    if (out_numel == 0) {
        assert_int_equal(r, EMCU_RED_EMPTY_OUT);
        goto done;
    }
    if (in_numel == 0) {
        assert_int_equal(r, EMCU_RED_EMPTY_IN);
        goto done;
    }
    assert_int_equal(r, EMCU_RED_OK);
    assert_int_equal(p.M, out_numel);
    assert_int_equal(p.M * p.L, in_numel);
    assert_int_equal(p.bx * p.by, EMCU_RED_THREADS);
    assert_true(p.nblocks == p.ntiles * p.nch && p.nch * p.chunk >= p.L);
    modes_seen[p.mode * 2 + (p.nch > 1)]++;
    {
        double *vals = calloc((size_t)p.M, sizeof(double));
        int64_t *offs = calloc((size_t)p.M, sizeof(int64_t));
        unsigned char *visits = calloc((size_t)(p.M * p.L), 1);
        emulate_sum(&p, &in, scale, vals, offs, visits);
        for (int64_t i = 0; i < p.M * p.L; i++)
            if (visits[i] != 1)
                fail_msg("output %lld element %lld summed %d times (mode %d, nch %lld)",
                         (long long)(i / p.L), (long long)(i % p.L), visits[i], p.mode,
                         (long long)p.nch);
        /* the cpu backend on the same views */
        run_cpu(OFF(sum), &out, &in, NULL, NULL, scale, 0, 0, 0);
        /* every output offset distinct and the cpu's value there */
        for (int64_t o = 0; o < p.M; o++) {
            double want = get_at(&out, offs[o]);
            double got = odt == EM_F32 ? (double)(float)vals[o] : vals[o];
            double tol = (odt == EM_F32 ? 2e-6 : 1e-12) * (1.0 + fabs(want)) * (1.0 + (double)p.L / 64);
            if (!(fabs(got - want) <= tol))
                fail_msg("sum output %lld: emulated %.17g, cpu %.17g (mode %d, M %lld, L %lld, nch %lld)",
                         (long long)o, got, want, p.mode, (long long)p.M, (long long)p.L,
                         (long long)p.nch);
        }
        /* and the outputs the plan addresses are exactly out's elements */
        int64_t *sorted = malloc(sizeof(int64_t) * (size_t)p.M);
        memcpy(sorted, offs, sizeof(int64_t) * (size_t)p.M);
        for (int64_t i = 1; i < p.M; i++)
            for (int64_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
                int64_t t = sorted[j];
                sorted[j] = sorted[j - 1];
                sorted[j - 1] = t;
            }
        for (int64_t i = 1; i < p.M; i++)
            assert_true(sorted[i] != sorted[i - 1]);
        free(sorted);
        free(vals);
        free(offs);
        free(visits);
    }
done:
    free(ib);
    free(ob);
}

static void test_sum_partition(void **state)
{
    (void)state;
    int modes[6] = {0};
    const int32_t dts[3] = {EM_F32, EM_F64, EM_BOOL};
    /* fixed shapes hitting every mode, split or not */
    static const struct {
        int nd;
        int64_t shape[4];
        unsigned mask;
    } fixed[] = {
        {1, {640}, 1},            /* the seed's loss: one output, row mode */
        {1, {10000}, 1},          /* row, split into chunks */
        {2, {64, 100}, 1},        /* column sums (bias grads): serial */
        {2, {100, 50}, 1},        /* col */
        {2, {300, 5}, 1},         /* col, split */
        {2, {1000, 33}, 1},       /* col, split, ragged tile */
        {2, {3, 9000}, 2},        /* row, split, several outputs */
        {2, {100, 3}, 2},         /* serial */
        {3, {7, 80, 9}, 5},       /* two reduced dims */
        {3, {70, 3, 70}, 5},
        {2, {1, 1}, 3},
        {2, {5, 0}, 2},           /* empty reduction: zeros */
        {2, {0, 5}, 2},           /* no outputs */
        {3, {4, 5, 6}, 0},        /* nothing reduced: scaled copy */
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        for (int k = 0; k < 3; k++)
            sum_case(fixed[i].nd, fixed[i].shape, fixed[i].mask, dts[k], k == 1 ? EM_F64 : EM_F32,
                     k == 0 ? 0.5 : 1.0, modes);
    for (int iter = 0; iter < 500; iter++) {
        /* every fourth case long enough to split; at most ~100k elements */
        int nd = iter % 4 == 0 ? rnd_int(1, 3) : rnd_int(1, 5);
        int64_t shape[EM_MAX_DIMS], numel = 1;
        for (int d = 0; d < nd; d++) {
            shape[d] = rnd_int(1, iter % 4 == 0 ? (nd == 3 ? 45 : 300) : 12);
            numel *= shape[d];
        }
        if (iter % 8 == 0 && nd == 1)
            shape[0] = rnd_int(4000, 20000);
        (void)numel;
        unsigned mask = rnd_u32() & ((1u << nd) - 1u);
        sum_case(nd, shape, mask, dts[iter % 3], iter % 2 ? EM_F64 : EM_F32,
                 iter % 5 == 0 ? 1.0 / 3.0 : 1.0, modes);
    }
    print_message("# sum plans: serial %d, col %d (split %d), row %d (split %d)\n",
                  modes[0] + modes[1], modes[2], modes[3], modes[4], modes[5]);
    for (int m = 0; m < 6; m++)
        if (m != 1)   /* serial mode never splits */
            assert_true(modes[m] > 0);
    assert_int_equal(modes[1], 0);

    /* a bad out shape names the dim */
    int64_t is[2] = {3, 4}, ist[2] = {4, 1}, os[2] = {3, 2}, ost[2] = {2, 1};
    emcu_red_plan p;
    int bad = -1;
    assert_int_equal(emcu_red_plan_build(2, is, ist, os, ost, &p, &bad), EMCU_RED_BAD_SHAPE);
    assert_int_equal(bad, 1);
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_ops),
        cmocka_unit_test(test_binary_ops),
        cmocka_unit_test(test_compare_select),
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_geom_offsets),
        cmocka_unit_test(test_elementwise_emulation),
        cmocka_unit_test(test_sum_partition),
    };
    return cmocka_run_group_tests_name("cuda kernel logic on the host", tests, load_cpu, unload_cpu);
}
