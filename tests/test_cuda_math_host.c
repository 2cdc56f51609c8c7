/* tests/test_cuda_math_host.c — the cuda backend's elementwise logic of ABI 1.2, checked on
 * the host. backends/cuda/cuda_math.h is the code the CUDA kernels run (as __host__
 * __device__ functions); here it is compiled as plain C and compared with the cpu
 * backend's kernels (tests/cuda_host_cpu.h loads them):
 *  - integer dtypes (i64, i32, u8): every op's scalar function with exact ip[] scalars,
 *    wrapping, floor division and remainder, sign, comparisons, fill and masked_fill
 *    values, and float to integer conversions (truncating, saturating, NaN -> 0);
 *  - the float ops of 1.2 (log1p .. sign, pow, floor_divide, remainder) bit for bit on
 *    special values, and a few of PyTorch 1.13's own answers;
 *  - the fused adam kernel of ABI 1.3 (emcu_adam_*) bit for bit against the cpu backend's,
 *    every flag combination, on ordinary and special values;
 *  - the fused sgd kernel of ABI 1.7 (emcu_sgd_*) likewise.
 * Needs neither nvcc nor a GPU. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cuda_math.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_host.h"
#include "cuda_host_cpu.h"

/* ------------------------------------------------------------------ integer ops */

static const int64_t ivals[] = {
    0, 1, -1, 2, -2, 3, -3, 7, -7, 100, -100, 127, -128, 128, 255, 256, -255, 1000003,
    -1000003, INT32_MAX, INT32_MIN, (int64_t)INT32_MAX + 1, INT64_MAX, INT64_MIN, INT64_MIN + 1,
    0x123456789abcdefLL,
};
#define NI ((int)(sizeof ivals / sizeof ivals[0]))

static const int64_t iparams[][2] = {
    {0, 0}, {1, 0}, {-1, 5}, {5, -3}, {INT64_MAX, INT64_MIN}, {INT64_MIN, INT64_MAX},
    {-200, 300}, {300, -200}, {7, 7}, {0x100000001LL, 2}, {INT64_MIN, 100}, {-5, INT64_MAX},
};
#define NIP ((int)(sizeof iparams / sizeof iparams[0]))

static const int32_t idts[3] = {EM_I64, EM_I32, EM_U8};

#define IU_WRAP(N)                                                                        \
    static int64_t iu_##N(int32_t dt, int64_t x, int64_t p0, int64_t p1)                  \
    {                                                                                     \
        switch (dt) {                                                                     \
        case EM_I64: return emcu_##N##_i64(x, p0, p1);                                    \
        case EM_I32: return emcu_##N##_i32((int32_t)x, p0, p1);                           \
        default: return emcu_##N##_u8((uint8_t)x, p0, p1);                                \
        }                                                                                 \
    }
EMCU_INT_UNARY_OPS(IU_WRAP)

#define IB_WRAP(N)                                                                        \
    static int64_t ib_##N(int32_t dt, int64_t a, int64_t b)                               \
    {                                                                                     \
        switch (dt) {                                                                     \
        case EM_I64: return emcu_##N##_i64(a, b);                                         \
        case EM_I32: return emcu_##N##_i32((int32_t)a, (int32_t)b);                       \
        default: return emcu_##N##_u8((uint8_t)a, (uint8_t)b);                            \
        }                                                                                 \
    }
EMCU_INT_BINARY_OPS(IB_WRAP)
IB_WRAP(floor_divide)
IB_WRAP(remainder)
EMCU_COMPARE_OPS(IB_WRAP)

static int64_t is_sign(int32_t dt, int64_t x, int64_t p0, int64_t p1)
{
    (void)p0;
    (void)p1;
    return dt == EM_I64 ? emcu_sign_i64(x) : dt == EM_I32 ? emcu_sign_i32((int32_t)x)
                                                          : emcu_sign_u8((uint8_t)x);
}

typedef struct {
    const char *name;
    size_t off;
    int64_t (*f)(int32_t, int64_t, int64_t, int64_t);
} iu_case;
#define IU_CASE(N) {#N, OFF(N), iu_##N},
static const iu_case iu_cases[] = {EMCU_INT_UNARY_OPS(IU_CASE){"sign", OFF(sign), is_sign}};

typedef struct {
    const char *name;
    size_t off;
    int64_t (*f)(int32_t, int64_t, int64_t);
    int divides;   /* no zero divisors */
    int compare;   /* bool output */
} ib_case;
#define IB_CASE(N) {#N, OFF(N), ib_##N, 0, 0},
#define IC_CASE(N) {#N, OFF(N), ib_##N, 0, 1},
static const ib_case ib_cases[] = {EMCU_INT_BINARY_OPS(IB_CASE){"floor_divide", OFF(floor_divide),
                                                                ib_floor_divide, 1, 0},
                                   {"remainder", OFF(remainder), ib_remainder, 1, 0},
                                   EMCU_COMPARE_OPS(IC_CASE)};

static void test_int_ops(void **state)
{
    (void)state;
    const int n = NI * NI;
    int64_t *a = malloc(8 * n), *b = malloc(8 * n), *o = malloc(8 * n);
    uint8_t *ob = malloc(n), *mask = malloc(n);
    assert_true(a && b && o && ob && mask);
    long checked = 0;
    for (int t = 0; t < 3; t++) {
        const int32_t dt = idts[t];
        for (int i = 0; i < n; i++) {
            seti(a, dt, i, ivals[i / NI]);
            seti(b, dt, i, ivals[i % NI]);
            mask[i] = (uint8_t)((i * 7 + 3) % 5 < 2);
        }
        em_kview va = view1(a, dt, n), vb = view1(b, dt, n), vo = view1(o, dt, n);
        em_kview vob = view1(ob, EM_BOOL, n), vm = view1(mask, EM_BOOL, n);
        for (size_t c = 0; c < sizeof iu_cases / sizeof iu_cases[0]; c++)
            for (int p = 0; p < NIP; p++) {
                const int64_t *ip = iparams[p];
                cpu_call(iu_cases[c].off, &vo, NULL, &va, NULL, NULL, (double)ip[0],
                         (double)ip[1], ip, 2);
                for (int i = 0; i < n; i++) {
                    const int64_t want = iu_cases[c].f(dt, geti(a, dt, i), ip[0], ip[1]);
                    if (geti(o, dt, i) != want)
                        fail_msg("%s %s (x %lld, ip %lld %lld): cpu %lld, cuda logic %lld",
                                 iu_cases[c].name, t == 0 ? "i64" : t == 1 ? "i32" : "u8",
                                 (long long)geti(a, dt, i), (long long)ip[0], (long long)ip[1],
                                 (long long)geti(o, dt, i), (long long)want);
                    checked++;
                }
            }
        /* divisors never 0 (the core never passes one): b = 0 becomes 3 */
        int64_t *bz = malloc(8 * n);
        assert_non_null(bz);
        for (int i = 0; i < n; i++)
            seti(bz, dt, i, geti(b, dt, i) ? geti(b, dt, i) : 3);
        em_kview vbz = view1(bz, dt, n);
        for (size_t c = 0; c < sizeof ib_cases / sizeof ib_cases[0]; c++) {
            const ib_case *bc = &ib_cases[c];
            const em_kview *rhs = bc->divides ? &vbz : &vb;
            const void *rb = bc->divides ? (const void *)bz : (const void *)b;
            cpu_call(bc->off, bc->compare ? &vob : &vo, NULL, &va, rhs, NULL, 0, 0, NULL, 0);
            for (int i = 0; i < n; i++) {
                const int64_t want = bc->f(dt, geti(a, dt, i), geti(rb, dt, i));
                const int64_t got = bc->compare ? ob[i] : geti(o, dt, i);
                if (got != want)
                    fail_msg("%s (a %lld, b %lld, dtype %d): cpu %lld, cuda logic %lld", bc->name,
                             (long long)geti(a, dt, i), (long long)geti(rb, dt, i), dt,
                             (long long)got, (long long)want);
                checked++;
            }
        }
        free(bz);
        /* fill and masked_fill take the exact ip[0], wrapped to the width */
        for (int k = 0; k < NI; k++) {
            const int64_t v = ivals[k];
            const int64_t want = dt == EM_I64   ? emcu_scalar_i64(v)
                                 : dt == EM_I32 ? emcu_scalar_i32(v)
                                                : emcu_scalar_u8(v);
            cpu_call(OFF(fill), &vo, NULL, NULL, NULL, NULL, (double)v, 0, &v, 1);
            for (int i = 0; i < n; i++)
                assert_true(geti(o, dt, i) == want);
            cpu_call(OFF(masked_fill), &vo, NULL, &va, &vm, NULL, (double)v, 0, &v, 1);
            for (int i = 0; i < n; i++)
                assert_true(geti(o, dt, i) == (mask[i] ? want : geti(a, dt, i)));
        }
    }
    print_message("# %ld integer results identical to the cpu backend\n", checked);
    free(a);
    free(b);
    free(o);
    free(ob);
    free(mask);
}

/* float -> integer copies: truncation, saturation, NaN -> 0 */
static void test_float_to_int(void **state)
{
    (void)state;
    static const double xs[] = {
        0.0, -0.0, 0.5, -0.5, 0.999, -0.999, 1.0, -1.0, -1.5, 2.5, 127.9, 128.0, 254.99, 255.0,
        255.5, 256.0, -255.7, 1e6, -1e6, 2147483647.0, 2147483647.9, 2147483648.0, -2147483648.0,
        -2147483648.9, -2147483649.0, 3e9, -3e9, 9.2e18, 9223372036854775807.0, -9.3e18, 1e30,
        -1e30, INFINITY, -INFINITY, NAN, -NAN, DBL_MIN, 4503599627370497.0,
    };
    enum { N = sizeof xs / sizeof xs[0] };
    float f[N];
    double d[N];
    int64_t o[N];
    for (int i = 0; i < N; i++) {
        f[i] = (float)xs[i];
        d[i] = xs[i];
    }
    em_kview vf = view1(f, EM_F32, N), vd = view1(d, EM_F64, N);
    for (int t = 0; t < 3; t++) {
        const int32_t dt = idts[t];
        em_kview vo = view1(o, dt, N);
        for (int src = 0; src < 2; src++) {
            cpu_call(OFF(copy), &vo, NULL, src ? &vd : &vf, NULL, NULL, 0, 0, NULL, 0);
            for (int i = 0; i < N; i++) {
                const double x = src ? d[i] : (double)f[i];
                const int64_t want = dt == EM_I64   ? emcu_f2i_i64(x)
                                     : dt == EM_I32 ? emcu_f2i_i32(x)
                                                    : emcu_f2i_u8(x);
                if (geti(o, dt, i) != want)
                    fail_msg("copy %s -> dtype %d of %.17g: cpu %lld, cuda logic %lld",
                             src ? "f64" : "f32", dt, x, (long long)geti(o, dt, i),
                             (long long)want);
            }
        }
    }
}

/* ------------------------------------------------------------------ float ops of 1.2 */

static const double specials[] = {
    0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 2.0, -2.0, 3.0, -3.0, 3.75, -3.75,
    1e-3, 0.1, 10.0, -10.0, 88.5, -88.5, 700.0, -700.0, 1e30, -1e30, 1e300, -1e300, 1e-40,
    1e-310, DBL_MIN, (double)FLT_MAX, 4503599627370496.5, 8388608.5, INFINITY, -INFINITY, NAN,
    0.7853981633974483, 3.141592653589793, -1e-7,
};
#define NSPEC ((int)(sizeof specials / sizeof specials[0]))

typedef struct {
    const char *name;
    size_t off;
    float (*f32)(float);
    double (*f64)(double);
} mu_case;
#define MU_CASE(N) {#N, OFF(N), emcu_##N##_f32, emcu_##N##_f64},
static const mu_case mu_cases[] = {EMCU_MATH_UNARY_OPS(MU_CASE)};

typedef struct {
    const char *name;
    size_t off;
    float (*f32)(float, float);
    double (*f64)(double, double);
} mb_case;
static const mb_case mb_cases[] = {
    {"pow", OFF(pow), emcu_pow_tensor_f32, emcu_pow_tensor_f64},
    {"floor_divide", OFF(floor_divide), emcu_floor_divide_f32, emcu_floor_divide_f64},
    {"remainder", OFF(remainder), emcu_remainder_f32, emcu_remainder_f64},
};

static void test_float_math(void **state)
{
    (void)state;
    const int n = NSPEC * NSPEC;
    float *af = malloc(4 * n), *bf = malloc(4 * n), *of = malloc(4 * n);
    double *ad = malloc(8 * n), *bd = malloc(8 * n), *od = malloc(8 * n);
    assert_true(af && bf && of && ad && bd && od);
    for (int i = 0; i < n; i++) {
        af[i] = (float)specials[i / NSPEC];
        bf[i] = (float)specials[i % NSPEC];
        ad[i] = specials[i / NSPEC];
        bd[i] = specials[i % NSPEC];
    }
    em_kview vaf = view1(af, EM_F32, n), vbf = view1(bf, EM_F32, n), vof = view1(of, EM_F32, n);
    em_kview vad = view1(ad, EM_F64, n), vbd = view1(bd, EM_F64, n), vod = view1(od, EM_F64, n);
    long checked = 0;
    for (size_t c = 0; c < sizeof mu_cases / sizeof mu_cases[0]; c++) {
        cpu_call(mu_cases[c].off, &vof, NULL, &vaf, NULL, NULL, 0, 0, NULL, 0);
        cpu_call(mu_cases[c].off, &vod, NULL, &vad, NULL, NULL, 0, 0, NULL, 0);
        for (int i = 0; i < n; i += NSPEC) {
            if (!same_f32(of[i], mu_cases[c].f32(af[i])))
                fail_msg("%s f32 (%.9g): cpu %.9g, cuda logic %.9g", mu_cases[c].name,
                         (double)af[i], (double)of[i], (double)mu_cases[c].f32(af[i]));
            if (!same_f64(od[i], mu_cases[c].f64(ad[i])))
                fail_msg("%s f64 (%.17g): cpu %.17g, cuda logic %.17g", mu_cases[c].name, ad[i],
                         od[i], mu_cases[c].f64(ad[i]));
            checked += 2;
        }
    }
    for (size_t c = 0; c < sizeof mb_cases / sizeof mb_cases[0]; c++) {
        cpu_call(mb_cases[c].off, &vof, NULL, &vaf, &vbf, NULL, 0, 0, NULL, 0);
        cpu_call(mb_cases[c].off, &vod, NULL, &vad, &vbd, NULL, 0, 0, NULL, 0);
        for (int i = 0; i < n; i++) {
            if (!same_f32(of[i], mb_cases[c].f32(af[i], bf[i])))
                fail_msg("%s f32 (%.9g, %.9g): cpu %.9g, cuda logic %.9g", mb_cases[c].name,
                         (double)af[i], (double)bf[i], (double)of[i],
                         (double)mb_cases[c].f32(af[i], bf[i]));
            if (!same_f64(od[i], mb_cases[c].f64(ad[i], bd[i])))
                fail_msg("%s f64 (%.17g, %.17g): cpu %.17g, cuda logic %.17g", mb_cases[c].name,
                         ad[i], bd[i], od[i], mb_cases[c].f64(ad[i], bd[i]));
            checked += 2;
        }
    }
    /* PyTorch 1.13's own answers on a few (torch.floor_divide, torch.remainder) */
    assert_true(same_f64(emcu_floor_divide_f64(-0.0, 3.0), -0.0));
    assert_true(same_f64(emcu_floor_divide_f64(5.0, -0.0), -INFINITY));
    assert_true(same_f64(emcu_floor_divide_f64(-5.0, 3.0), -2.0));
    assert_true(same_f64(emcu_remainder_f64(-5.0, 3.0), 1.0));
    assert_true(same_f64(emcu_remainder_f64(5.0, -3.0), -1.0));
    assert_true(same_f32(emcu_round_f32(2.5f), 2.0f) && same_f32(emcu_round_f32(-0.5f), -0.0f));
    assert_true(same_f32(emcu_sign_f32(-0.0f), 0.0f) && same_f32(emcu_sign_f32(NAN), 0.0f));
    assert_int_equal(emcu_floor_divide_i64(INT64_MIN, -1), INT64_MIN);
    assert_int_equal(emcu_floor_divide_i32(-7, 2), -4);
    assert_int_equal(emcu_remainder_i32(-7, 2), 1);
    print_message("# %ld float results identical to the cpu backend\n", checked);
    free(af);
    free(bf);
    free(of);
    free(ad);
    free(bd);
    free(od);
}


/* ------------------------------------------------------------------ adam (ABI 1.3) */

static double adam_value(int64_t i, int which)
{
    static const double sp[] = {0.0, -0.0, 1e-41, -3e-39, 1e30, -2e25, 1e-20, NAN, INFINITY,
                                -INFINITY, 1.0, -0.5};
    const int nsp = (int)(sizeof sp / sizeof sp[0]);
    if ((i + which) % 5 == 0)
        return sp[(i / 5 + which) % nsp];
    return ((double)rnd_u32() / 4294967296.0 * 2 - 1) * (which == 1 ? 4.0 : 1.0) *
           (which >= 3 ? 0.01 : 1.0) * (which >= 3 ? ((double)rnd_u32() / 4294967296.0) : 1.0);
}

static void adam_case(int32_t dt, int flags_in, const double *p4, double wd, int64_t n,
                      long *checked)
{
    const int adamw = flags_in & 1, ams = (flags_in >> 1) & 1, mx = (flags_in >> 2) & 1,
              first = (flags_in >> 3) & 1;
    const size_t es = dsize(dt);
    void *buf[9];
    em_kview v[9];
    const em_kview *outs[4], *ins[5];
    for (int k = 0; k < 9; k++) {
        buf[k] = calloc((size_t)n, es);
        v[k] = view1(buf[k], dt, n);
        if (k >= 4)
            for (int64_t i = 0; i < n; i++) {
                /* v and vmax (exp_avg_sq) are squares: non-negative */
                double x = adam_value(i, k - 4);
                if (k >= 7 && x < 0)
                    x = -x;
                if (dt == EM_F32)
                    ((float *)buf[k])[i] = (float)x;
                else
                    ((double *)buf[k])[i] = x;
            }
        if (k < 4)
            outs[k] = &v[k];
        else
            ins[k - 4] = &v[k];
    }
    const int64_t ip[4] = {adamw, ams, mx, first};
    const double fp[3] = {wd, 1.0 - pow(p4[1], 3.0), 1.0 - pow(p4[2], 3.0)};
    em_kargs a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.out = outs[0];
    a.in[0] = ins[0];
    a.in[1] = ins[1];
    a.in[2] = first ? NULL : ins[2];
    memcpy(a.p, p4, sizeof a.p);
    a.n_out = ams ? 4 : 3;
    a.outs = outs;
    a.n_in = first ? 2 : ams ? 5 : 4;
    a.ins = ins;
    a.n_ip = 4;
    a.ip = ip;
    a.n_fp = 3;
    a.fp = fp;
    assert_non_null(g_ops->adam);
    if (g_ops->adam(g_dev, &a) != EM_OK)
        fail_msg("cpu adam failed: %s", g_msg);
    const int flags = emcu_adam_flags(ip, fp);
    double sc[EMCU_ADAM_NSC];
    emcu_adam_scalars(a.p, fp, sc);
    for (int64_t i = 0; i < n; i++) {
        int ok = 1;
        if (dt == EM_F32) {
            emcu_adam_sc_f32 s;
            for (int k = 0; k < EMCU_ADAM_NSC; k++)
                s.v[k] = (float)sc[k];
            float o[4] = {0, 0, 0, 0};
            float in[5];
            for (int k = 0; k < 5; k++)
                in[k] = ((float *)buf[4 + k])[i];
            emcu_adam_f32(flags, &s, 0, &o[0], &o[1], &o[2], &o[3], &in[0], &in[1], &in[2],
                          &in[3], &in[4]);
            for (int k = 0; k < (ams ? 4 : 3); k++)
                ok = ok && same_f32(o[k], ((float *)buf[k])[i]);
        } else {
            emcu_adam_sc_f64 s;
            for (int k = 0; k < EMCU_ADAM_NSC; k++)
                s.v[k] = sc[k];
            double o[4] = {0, 0, 0, 0};
            double in[5];
            for (int k = 0; k < 5; k++)
                in[k] = ((double *)buf[4 + k])[i];
            emcu_adam_f64(flags, &s, 0, &o[0], &o[1], &o[2], &o[3], &in[0], &in[1], &in[2],
                          &in[3], &in[4]);
            for (int k = 0; k < (ams ? 4 : 3); k++)
                ok = ok && same_f64(o[k], ((double *)buf[k])[i]);
        }
        if (!ok)
            fail_msg("adam %s, adamw %d amsgrad %d maximize %d first %d weight_decay %g: element "
                     "%lld differs from the cpu backend", dt == EM_F32 ? "f32" : "f64", adamw,
                     ams, mx, first, wd, (long long)i);
        (*checked)++;
    }
    for (int k = 0; k < 9; k++)
        free(buf[k]);
}

static void test_adam(void **state)
{
    (void)state;
    static const double hp[2][4] = {{1e-3, 0.9, 0.999, 1e-8}, {0.02, 0.8, 0.99, 1e-6}};
    long checked = 0;
    for (int d = 0; d < 2; d++)
        for (int f = 0; f < 16; f++)
            for (int h = 0; h < 2; h++)
                for (int w = 0; w < 2; w++)
                    adam_case(d ? EM_F64 : EM_F32, f, hp[h], w ? 0.03 : 0.0, 1031, &checked);
    print_message("# %ld adam elements identical to the cpu backend\n", checked);
}

/* ------------------------------------------------------------------ sgd (ABI 1.7) */

/* flags_in: 1 maximize, 2 weight decay, 4 nesterov; mom: 0 none, 1 first step, 2 later */
static void sgd_case(int32_t dt, int flags_in, int mom, const double *p4, int64_t n,
                     long *checked)
{
    const int mx = flags_in & 1, nesterov = (flags_in >> 2) & 1;
    double p[4] = {p4[0], mom ? p4[1] : 0.0, p4[2], (flags_in & 2) ? p4[3] : 0.0};
    const size_t es = dsize(dt);
    void *buf[5];
    em_kview v[5];
    const em_kview *outs[2], *ins[3];
    for (int k = 0; k < 5; k++) {
        buf[k] = calloc((size_t)n, es);
        v[k] = view1(buf[k], dt, n);
        if (k >= 2)
            for (int64_t i = 0; i < n; i++) {
                double x = adam_value(i, k - 2);
                if (dt == EM_F32)
                    ((float *)buf[k])[i] = (float)x;
                else
                    ((double *)buf[k])[i] = x;
            }
        if (k < 2)
            outs[k] = &v[k];
        else
            ins[k - 2] = &v[k];
    }
    const int64_t ip[3] = {nesterov, mx, mom == 1};
    em_kargs a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.out = outs[0];
    a.in[0] = ins[0];
    a.in[1] = ins[1];
    a.in[2] = mom == 2 ? ins[2] : NULL;
    memcpy(a.p, p, sizeof a.p);
    a.n_out = mom ? 2 : 1;
    a.outs = outs;
    a.n_in = mom == 2 ? 3 : 2;
    a.ins = ins;
    a.n_ip = 3;
    a.ip = ip;
    assert_non_null(g_ops->sgd);
    if (g_ops->sgd(g_dev, &a) != EM_OK)
        fail_msg("cpu sgd failed: %s", g_msg);
    const int flags = emcu_sgd_flags(a.p, ip);
    double sc[EMCU_SGD_NSC];
    emcu_sgd_scalars(a.p, sc);
    for (int64_t i = 0; i < n; i++) {
        int ok = 1;
        if (dt == EM_F32) {
            emcu_sgd_sc_f32 s;
            for (int k = 0; k < EMCU_SGD_NSC; k++)
                s.v[k] = (float)sc[k];
            float o[2] = {0, 0}, in[3];
            for (int k = 0; k < 3; k++)
                in[k] = ((float *)buf[2 + k])[i];
            emcu_sgd_f32(flags, &s, 0, &o[0], &o[1], &in[0], &in[1], &in[2]);
            for (int k = 0; k < (mom ? 2 : 1); k++)
                ok = ok && same_f32(o[k], ((float *)buf[k])[i]);
        } else {
            emcu_sgd_sc_f64 s;
            for (int k = 0; k < EMCU_SGD_NSC; k++)
                s.v[k] = sc[k];
            double o[2] = {0, 0}, in[3];
            for (int k = 0; k < 3; k++)
                in[k] = ((double *)buf[2 + k])[i];
            emcu_sgd_f64(flags, &s, 0, &o[0], &o[1], &in[0], &in[1], &in[2]);
            for (int k = 0; k < (mom ? 2 : 1); k++)
                ok = ok && same_f64(o[k], ((double *)buf[k])[i]);
        }
        if (!ok)
            fail_msg("sgd %s, maximize %d weight_decay %g momentum %d (of 0/first/later) "
                     "nesterov %d: element %lld differs from the cpu backend",
                     dt == EM_F32 ? "f32" : "f64", mx, p[3], mom, nesterov, (long long)i);
        (*checked)++;
    }
    for (int k = 0; k < 5; k++)
        free(buf[k]);
}

static void test_sgd(void **state)
{
    (void)state;
    static const double hp[2][4] = {{1e-3, 0.9, 0.0, 1e-4}, {0.05, 0.7, 0.1, 0.03}};
    long checked = 0;
    for (int d = 0; d < 2; d++)
        for (int f = 0; f < 8; f++)
            for (int mom = 0; mom < 3; mom++)
                for (int h = 0; h < 2; h++)
                    if (mom || !(f & 4))   /* nesterov needs momentum */
                        sgd_case(d ? EM_F64 : EM_F32, f, mom, hp[h], 1031, &checked);
    print_message("# %ld sgd elements identical to the cpu backend\n", checked);
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_ops),
        cmocka_unit_test(test_float_to_int),
        cmocka_unit_test(test_float_math),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_sgd),
    };
    return cmocka_run_group_tests_name("cuda elementwise logic of ABI 1.2 on the host", tests,
                                       load_cpu, unload_cpu);
}
