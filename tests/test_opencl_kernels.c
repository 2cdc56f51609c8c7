/* tests/test_opencl_kernels.c — the opencl plugin's kernels of ABI 1.2 and its integer
 * dtypes, called directly through its ops table (as the core calls them) on small strided
 * views, against references computed here (PyTorch 1.13's semantics: wrapping integer
 * arithmetic, Python's floor division, first index on ties and NaN first in max/min, NaN
 * rows in softmax) and, where the cpu plugin declares the same kernel and dtype, against
 * the cpu plugin called the same way. Every dtype the plugin declares for these kernels is
 * run, on the 1-D and the N-d kernel variants, both kernels of scatter_add and of the dim
 * reductions, with NaN, -0 and infinities; no kernel writes outside its output view.
 * This file: integers on the elementwise kernels, copies, float math; the reductions, dim
 * kernels and indexing are in test_opencl_kernels_dim.c.
 * Without an OpenCL device: TAP SKIP (EMBER_TEST_REQUIRE=opencl makes that a failure). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "plugin_pair.h"
#include "test_opencl_kernels.h"

static plugin g_ocl, g_cpu;
static int g_have_cpu;
static long g_ncpu;   /* calls also run on the cpu plugin */

static const int32_t g_all[6] = {EM_F32, EM_F64, EM_BOOL, EM_I64, EM_I32, EM_U8};

int runs(int32_t dt)
{
    return dt != EM_F64 || g_ocl.fp64;
}

void check(kdesc k, int32_t dt, const hv *outs, int nout, hv *ins, int nin, const double *p,
           const int64_t *ip, int nip, const hv *want, double tol, double atol,
           const char *what)
{
    plugin *ps[2] = {&g_ocl, &g_cpu};
    char label[160];
    for (int w = 0; w < 2; w++) {
        if (w == 0 && !declares(&g_ocl, k, dt))
            fail_msg("opencl does not declare %s for dtype %d", k.name, (int)dt);
        if (w == 1 && (!g_have_cpu || !declares(&g_cpu, k, dt) ||
                       (!strcmp(k.name, "copy") && !declares(&g_cpu, k, ins[0].dt))))
            continue;
        hv got[4];
        for (int i = 0; i < nout; i++)
            got[i] = hv_copy(&outs[i]);
        em_status st = run_on(ps[w], k, got, nout, ins, nin, p, ip, nip);
        g_ncpu += w;
        if (st != EM_OK)
            fail_msg("%s: %s (dtype %d, %s): status %d: %s", ps[w]->name, k.name, (int)dt, what,
                     (int)st, g_msg);
        snprintf(label, sizeof label, "%s dtype %d, %s", k.name, (int)dt, what);
        for (int i = 0; i < nout; i++) {
            expect(ps[w]->name, label, &got[i], &want[i], &outs[i], tol, atol);
            hv_free(&got[i]);
        }
    }
}

void refused(kdesc k, hv *outs, int nout, hv *ins, int nin, const int64_t *ip, int nip,
             const char *what)
{
    hv got[4];
    for (int i = 0; i < nout; i++)
        got[i] = hv_copy(&outs[i]);
    em_status st = run_on(&g_ocl, k, got, nout, ins, nin, NULL, ip, nip);
    if (st == EM_OK)
        fail_msg("%s: %s was accepted", k.name, what);
    for (int i = 0; i < nout; i++) {
        if (memcmp(got[i].b, outs[i].b, outs[i].n * dtsize(outs[i].dt)))
            fail_msg("%s: %s failed (%s) but wrote output %d", k.name, what, g_msg, i);
        hv_free(&got[i]);
    }
}

em_status run_ocl(kdesc k, hv *outs, int nout, hv *ins, int nin, const double *p,
                  const int64_t *ip, int nip)
{
    return run_on(&g_ocl, k, outs, nout, ins, nin, p, ip, nip);
}

/* ------------------------------------------------------------------ geometries */

/* Two geometries of 12 elements for the elementwise kernels (operand 0 is out):
 * g = 0: 1-D, strided and offset (the _1d kernels);
 * g = 1: (3, 4), out contiguous, in[0] transposed, in[1] broadcast along dim 0, in[2]
 * contiguous (the _nd kernels). */
static hv ew_view(int g, int operand, int32_t dt)
{
    if (g == 0) {
        const int64_t sh[1] = {12}, st[1] = {operand == 0 ? 3 : operand};
        return hv_make(dt, 1, sh, st, operand + 1);
    }
    const int64_t sh[2] = {3, 4};
    const int64_t st[4][2] = {{4, 1}, {1, 3}, {0, 1}, {4, 1}};
    return hv_make(dt, 2, sh, st[operand], 0);
}

/* ------------------------------------------------------------------ integers */

static const int64_t g_ivals[3][12] = {
    {0, 1, -1, 7, -7, 3, -3, INT64_MAX, INT64_MIN, (int64_t)1 << 40, -((int64_t)1 << 40) + 3, 100},
    {0, 1, -1, 7, -7, 3, -3, INT32_MAX, INT32_MIN, 65536, -65535, 100},
    {0, 1, 255, 7, 249, 3, 128, 127, 200, 2, 100, 13},
};

static const int32_t g_ints[3] = {EM_I64, EM_I32, EM_U8};

static int64_t wrap(int32_t dt, uint64_t v)
{
    return dt == EM_I64   ? (int64_t)v
           : dt == EM_I32 ? (int64_t)(int32_t)(uint32_t)v
                          : (int64_t)(uint8_t)v;
}

enum { I_NEG, I_ABS, I_ADDS, I_MULS, I_RSUBS, I_CLAMP, I_SIGN, I_ADD, I_SUB, I_MUL, I_MAX, I_MIN,
       I_FDIV, I_REM, I_LT, I_LE, I_GT, I_GE, I_EQ, I_NE, I_NOPS };

static int64_t iref(int op, int32_t dt, int64_t a, int64_t b, const int64_t *ip)
{
    const uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    switch (op) {
    case I_NEG: return wrap(dt, 0 - ua);
    case I_ABS: return a < 0 ? wrap(dt, 0 - ua) : a;
    case I_ADDS: return wrap(dt, ua + (uint64_t)ip[0]);
    case I_MULS: return wrap(dt, ua * (uint64_t)ip[0]);
    case I_RSUBS: return wrap(dt, (uint64_t)ip[0] - ua);
    case I_CLAMP: return wrap(dt, (uint64_t)(a < ip[0] ? ip[0] : a > ip[1] ? ip[1] : a));
    case I_SIGN: return (a > 0) - (a < 0);
    case I_ADD: return wrap(dt, ua + ub);
    case I_SUB: return wrap(dt, ua - ub);
    case I_MUL: return wrap(dt, ua * ub);
    case I_MAX: return a > b ? a : b;
    case I_MIN: return a < b ? a : b;
    case I_FDIV:
    case I_REM: {
        if (b == -1)   /* MIN // -1 wraps (and must not trap) */
            return op == I_FDIV ? wrap(dt, 0 - ua) : 0;
        int64_t q = a / b, r = a % b;
        if (r != 0 && ((r < 0) != (b < 0))) {
            q--;
            r += b;
        }
        return op == I_FDIV ? q : r;
    }
    case I_LT: return a < b;
    case I_LE: return a <= b;
    case I_GT: return a > b;
    case I_GE: return a >= b;
    case I_EQ: return a == b;
    default: return a != b;
    }
}

static void test_int_elementwise(void **state)
{
    (void)state;
    const kdesc ks[I_NOPS] = {KD(neg), KD(abs), KD(add_scalar), KD(mul_scalar), KD(rsub_scalar),
                              KD(clamp), KD(sign), KD(add), KD(sub), KD(mul), KD(maximum),
                              KD(minimum), KD(floor_divide), KD(remainder), KD(lt), KD(le),
                              KD(gt), KD(ge), KD(eq), KD(ne)};
    /* scalars per dtype (exact in ip, rounded in p): wrapping, and bounds past the range */
    const int64_t sc[3][3][2] = {
        {{INT64_MAX, 0}, {3, 0}, {-3, 100}},
        {{((int64_t)1 << 32) + 5, 0}, {65537, 0}, {INT64_MIN, 7}},
        {{250, 0}, {7, 0}, {5, 300}},
    };
    for (int t = 0; t < 3; t++) {
        const int32_t dt = g_ints[t];
        for (int g = 0; g < 2; g++) {
            for (int op = 0; op < I_NOPS; op++) {
                const int bin = op >= I_ADD, cmp = op >= I_LT;
                hv out = ew_view(g, 0, cmp ? EM_BOOL : dt), a = ew_view(g, 1, dt);
                hv b = ew_view(g, 2, dt), want = hv_contig(cmp ? EM_BOOL : dt, out.ndim, out.shape);
                for (int64_t i = 0; i < 12; i++)
                    hv_seti(&a, i, g_ivals[t][i]);
                for (int64_t i = 0; i < 12; i++) {   /* divisors: never 0; -1 included */
                    int64_t v = g_ivals[t][(i * 5 + 2) % 12];
                    hv_seti(&b, i, v == 0 ? 2 : v);
                }
                const int64_t *ip = op == I_ADDS ? sc[t][0] : op == I_MULS ? sc[t][1]
                                  : op == I_RSUBS ? sc[t][0] : sc[t][2];
                for (int64_t i = 0; i < 12; i++)
                    hv_seti(&want, i, iref(op, dt, hv_geti(&a, i), bin ? hv_geti(&b, i) : 0, ip));
                double p[4] = {(double)ip[0], (double)ip[1], 0, 0};
                int nip = op == I_CLAMP ? 2 : (op >= I_ADDS && op <= I_RSUBS) ? 1 : 0;
                hv ins[2] = {a, b};
                check(ks[op], dt, &out, 1, ins, bin ? 2 : 1, p, ip, nip, &want, -1, 0,
                      g ? "nd" : "1d");
                hv_free(&out);
                hv_free(&a);
                hv_free(&b);
                hv_free(&want);
            }
        }
    }
}

/* fill, where and masked_fill on integers take exact values; the 64-bit one is not a
 * double */
static void test_int_fill_where(void **state)
{
    (void)state;
    const int64_t vals[3] = {((int64_t)1 << 62) + 1, -123456789, 250};
    for (int t = 0; t < 3; t++) {
        const int32_t dt = g_ints[t];
        for (int g = 0; g < 2; g++) {
            hv out = ew_view(g, 0, dt), want = hv_contig(dt, out.ndim, out.shape);
            const int64_t ip[1] = {vals[t]};
            const double p[4] = {(double)vals[t], 0, 0, 0};
            for (int64_t i = 0; i < 12; i++)
                hv_seti(&want, i, vals[t]);
            check(KD(fill), dt, &out, 1, NULL, 0, p, ip, 1, &want, -1, 0, "fill");
            /* where(c, a, b) and masked_fill(a, m, value) */
            hv c = ew_view(g, 1, EM_BOOL), a = ew_view(g, 2, dt), b = ew_view(g, 3, dt);
            for (int64_t i = 0; i < 12; i++) {
                hv_seti(&c, i, (i * 7) % 3 == 0);
                hv_seti(&a, i, g_ivals[t][i]);
                hv_seti(&b, i, g_ivals[t][11 - i]);
            }
            for (int64_t i = 0; i < 12; i++)
                hv_seti(&want, i, hv_geti(&c, i) ? hv_geti(&a, i) : hv_geti(&b, i));
            hv wins[3] = {c, a, b};
            check(KD(where), dt, &out, 1, wins, 3, NULL, NULL, 0, &want, -1, 0, "where");
            hv m2 = ew_view(g, 2, EM_BOOL);   /* broadcast in the nd geometry */
            for (int64_t i = 0; i < 12; i++)
                hv_seti(&m2, i, i % 5 == 1);
            for (int64_t i = 0; i < 12; i++)
                hv_seti(&want, i, hv_geti(&m2, i) ? vals[t] : hv_geti(&a, i));
            hv mins[2] = {a, m2};
            check(KD(masked_fill), dt, &out, 1, mins, 2, p, ip, 1, &want, -1, 0, "masked_fill");
            hv_free(&out);
            hv_free(&want);
            hv_free(&c);
            hv_free(&a);
            hv_free(&b);
            hv_free(&m2);
        }
    }
}

/* ------------------------------------------------------------------ copies */

static const double g_cvals[12] = {-1.5, 2.75, -0.0, 300.7, -300.2, NAN, INFINITY, -INFINITY,
                                   3e9, 9007199254740993.0, 0.999, -7.0};

/* what a copy from a float value gives for dtype to: truncation, saturation, NaN 0 */
static int64_t sat(int32_t to, double x)
{
    if (to == EM_BOOL)
        return x != 0;
    double lo = to == EM_I64 ? -0x1p63 : to == EM_I32 ? -0x1p31 : 0;
    double hi = to == EM_I64 ? 0x1p63 : to == EM_I32 ? 0x1p31 : 256;
    if (isnan(x))
        return 0;
    if (x <= lo)
        return to == EM_I64 ? INT64_MIN : to == EM_I32 ? INT32_MIN : 0;
    if (x >= hi)
        return to == EM_I64 ? INT64_MAX : to == EM_I32 ? INT32_MAX : 255;
    return (int64_t)trunc(x);
}

static void test_copy_conversions(void **state)
{
    (void)state;
    for (int a = 0; a < 6; a++) {
        for (int b = 0; b < 6; b++) {
            const int32_t to = g_all[a], from = g_all[b];
            if (!runs(to) || !runs(from))
                continue;
            for (int g = 0; g < 2; g++) {
                hv out = ew_view(g, 0, to), in = ew_view(g, 1, from);
                hv want = hv_contig(to, out.ndim, out.shape);
                for (int64_t i = 0; i < 12; i++) {
                    if (from == EM_F32 || from == EM_F64)
                        hv_setd(&in, i, g_cvals[i]);
                    else if (from == EM_BOOL)
                        hv_seti(&in, i, i % 3 == 0);
                    else
                        hv_seti(&in, i, g_ivals[from == EM_I64 ? 0 : from == EM_I32 ? 1 : 2][i]);
                }
                for (int64_t i = 0; i < 12; i++) {
                    const int ffrom = from == EM_F32 || from == EM_F64;
                    if (to == EM_F32 || to == EM_F64)
                        hv_setd(&want, i, ffrom ? hv_getd(&in, i) : (double)hv_geti(&in, i));
                    else if (ffrom)
                        hv_seti(&want, i, sat(to, hv_getd(&in, i)));
                    else if (to == EM_BOOL)
                        hv_seti(&want, i, hv_geti(&in, i) != 0);
                    else
                        hv_seti(&want, i, wrap(to, (uint64_t)hv_geti(&in, i)));
                }
                /* i64 -> float rounds to nearest: the double of the exact value rounded
                 * again could differ, so build that reference from the integer */
                if ((to == EM_F32 || to == EM_F64) && from == EM_I64)
                    for (int64_t i = 0; i < 12; i++) {
                        if (to == EM_F32)
                            hv_setd(&want, i, (float)hv_geti(&in, i));
                    }
                char what[32];
                snprintf(what, sizeof what, "from %d, %s", (int)from, g ? "nd" : "1d");
                check(KD(copy), to, &out, 1, &in, 1, NULL, NULL, 0, &want, -1, 0, what);
                hv_free(&out);
                hv_free(&in);
                hv_free(&want);
            }
        }
    }
}

/* ------------------------------------------------------------------ float math */

#define NF 24
static const double g_fvals[NF] = {-3.7, -2.5, -1.5, -0.5, -0.0, 0.0, 0.5, 1.5, 2.5, 3.7,
                                   1e-7, -1e-7, 100.3, -88.0, INFINITY, -INFINITY, NAN, 0.3,
                                   20.0, -20.0, 0.75, 1e30, -1.0, 7.0};

/* PyTorch's div_floor and remainder, in the dtype's arithmetic */
#define PT_DIV(T, FMOD, FLOOR, COPYSIGN)                                                  \
    static T rem_##T(T a, T b)                                                            \
    {                                                                                     \
        T m = FMOD(a, b);                                                                 \
        if (m != 0 && ((b < 0) != (m < 0)))                                              \
            m += b;                                                                       \
        return m;                                                                         \
    }                                                                                     \
    static T fdiv_##T(T a, T b)                                                           \
    {                                                                                     \
        if (b == 0)                                                                       \
            return a / b;                                                                 \
        T m = FMOD(a, b), q = (a - m) / b;                                                \
        if (m != 0 && ((b < 0) != (m < 0)))                                              \
            q -= 1;                                                                       \
        if (q == 0)                                                                       \
            return COPYSIGN((T)0, a / b);                                                 \
        T f = FLOOR(q);                                                                   \
        return q - f > (T)0.5 ? f + 1 : f;                                                \
    }
PT_DIV(float, fmodf, floorf, copysignf)
PT_DIV(double, fmod, floor, copysign)

static double sign_ref(double x)
{
    return x > 0 ? 1 : x < 0 ? -1 : x == 0 ? 0 : x;
}

enum { F_LOG1P, F_EXPM1, F_SIN, F_COS, F_ERF, F_FLOOR, F_CEIL, F_ROUND, F_SIGN, F_RELU, F_TANH,
       F_POW, F_FDIV, F_REM, F_NOPS };

static void test_float_math(void **state)
{
    (void)state;
    const kdesc ks[F_NOPS] = {KD(log1p), KD(expm1), KD(sin), KD(cos), KD(erf), KD(floor),
                              KD(ceil), KD(round), KD(sign), KD(relu), KD(tanh), KD(pow),
                              KD(floor_divide), KD(remainder)};
    double (*const fn[5])(double) = {log1p, expm1, sin, cos, erf};
    for (int f = 0; f < 2; f++) {
        const int32_t dt = f ? EM_F64 : EM_F32;
        if (!runs(dt))
            continue;
        for (int op = 0; op < F_NOPS; op++) {
            const int bin = op >= F_POW;
            /* exact where the result is exact (with -0), else 1 ulp of the value rounded
             * from double (f32, computed in double by both; tanhf itself is off by up to
             * 2; 4 on a device without doubles) or 4 ulps (f64) */
            const double tol = op >= F_FLOOR && op != F_TANH && op != F_POW ? -1
                             : f || !g_ocl.fp64 ? 4 : op == F_TANH ? 2 : 1;
            hv out = hv_contig(dt, 1, (int64_t[]){NF}), a = hv_contig(dt, 1, (int64_t[]){NF});
            const int64_t bst[1] = {2};
            hv b = hv_make(dt, 1, (int64_t[]){NF}, bst, 1);
            hv want = hv_contig(dt, 1, out.shape);
            for (int64_t i = 0; i < NF; i++) {
                hv_setd(&a, i, g_fvals[i]);
                hv_setd(&b, i, g_fvals[(i * 7 + 3) % NF]);
            }
            for (int64_t i = 0; i < NF; i++) {
                const double x = hv_getd(&a, i), y = hv_getd(&b, i);
                double r;
                switch (op) {
                case F_FLOOR: r = floor(x); break;
                case F_CEIL: r = ceil(x); break;
                case F_ROUND: r = nearbyint(x); break;
                case F_SIGN: r = sign_ref(x); break;
                case F_RELU: r = x < 0 ? 0 : x; break;
                case F_TANH: r = f ? tanh(x) : (double)tanhf((float)x); break;
                case F_POW: r = pow(x, y); break;
                case F_FDIV: r = f ? fdiv_double(x, y) : fdiv_float((float)x, (float)y); break;
                case F_REM: r = f ? rem_double(x, y) : rem_float((float)x, (float)y); break;
                default: r = fn[op](x);
                }
                hv_setd(&want, i, r);
            }
            hv ins[2] = {a, b};
            check(ks[op], dt, &out, 1, ins, bin ? 2 : 1, NULL, NULL, 0, &want, tol, 0, "values");
            hv_free(&out);
            hv_free(&a);
            hv_free(&b);
            hv_free(&want);
        }
    }
}

/* Values PyTorch 1.13 gives (torch.floor_divide, torch.remainder on float32) */
static void test_float_division_torch(void **state)
{
    (void)state;
    const double a[9] = {5, -5, 5, -0.0, 1e30, 0.3, 1, -1, 0};
    const double b[9] = {-0.0, 3, -3, 2, 3e-8, 0.1, INFINITY, INFINITY, -2};
    const double fd[9] = {-INFINITY, -2, -2, -0.0, 3.3333333957819775e+37, 3, 0, -1, -0.0};
    const double ra[7] = {5, -5, 5, -0.0, 1, -1, INFINITY};
    const double rb[7] = {-0.0, 3, -3, 2, INFINITY, INFINITY, 2};
    const double rm[7] = {NAN, 1, -1, -0.0, 1, INFINITY, NAN};
    for (int k = 0; k < 2; k++) {
        const int n = k ? 7 : 9;
        hv out = hv_contig(EM_F32, 1, (int64_t[]){n}), x = hv_contig(EM_F32, 1, out.shape);
        hv y = hv_contig(EM_F32, 1, out.shape), want = hv_contig(EM_F32, 1, out.shape);
        for (int i = 0; i < n; i++) {
            hv_setd(&x, i, k ? ra[i] : a[i]);
            hv_setd(&y, i, k ? rb[i] : b[i]);
            hv_setd(&want, i, k ? rm[i] : fd[i]);
        }
        hv ins[2] = {x, y};
        check(k ? KD(remainder) : KD(floor_divide), EM_F32, &out, 1, ins, 2, NULL, NULL, 0,
              &want, -1, 0, "PyTorch's values");
        hv_free(&out);
        hv_free(&x);
        hv_free(&y);
        hv_free(&want);
    }
}

/* tanh saturates to exactly +-1 (20 -> 1, as cpu and PyTorch), keeps -0, and agrees with
 * the C library over the whole range (f32: within 2 ulps of tanhf, which is itself up to 2
 * ulps from the correctly rounded value the kernel gives, e.g. at -0.24) */
static void test_tanh_range(void **state)
{
    (void)state;
    enum { N = 6001 };
    for (int f = 0; f < 2; f++) {
        const int32_t dt = f ? EM_F64 : EM_F32;
        if (!runs(dt))
            continue;
        hv out = hv_contig(dt, 1, (int64_t[]){N + 6}), x = hv_contig(dt, 1, out.shape);
        hv want = hv_contig(dt, 1, out.shape);
        const double edge[6] = {20, -20, INFINITY, -INFINITY, -0.0, 9.5};
        for (int64_t i = 0; i < N + 6; i++) {
            hv_setd(&x, i, i < N ? -30 + (double)i * 0.01 : edge[i - N]);
            const double v = hv_getd(&x, i);
            hv_setd(&want, i, f ? tanh(v) : (double)tanhf((float)v));
        }
        check(KD(tanh), dt, &out, 1, &x, 1, NULL, NULL, 0, &want, 2, 0, "range");
        /* and exactly: the saturated ends and the sign of zero */
        hv got = hv_copy(&out);
        assert_int_equal(run_ocl(KD(tanh), &got, 1, &x, 1, NULL, NULL, 0), EM_OK);
        assert_true(hv_getd(&got, N) == 1.0 && hv_getd(&got, N + 1) == -1.0);
        assert_true(hv_getd(&got, N + 2) == 1.0 && hv_getd(&got, N + 3) == -1.0);
        assert_true(hv_getd(&got, N + 4) == 0 && signbit(hv_getd(&got, N + 4)));
        hv_free(&got);
        hv_free(&out);
        hv_free(&x);
        hv_free(&want);
    }
}

int main(void)
{
    char why[1200];
    if (plugin_open(&g_ocl, "opencl", why, sizeof why) != 0) {
        const char *req = getenv("EMBER_TEST_REQUIRE");
        if (req && strstr(req, "opencl")) {
            printf("1..1\nnot ok 1 - backend opencl is required (EMBER_TEST_REQUIRE) but "
                   "unusable: %s\n", why);
            return 1;
        }
        printf("1..0 # SKIP backend opencl not usable here: %s\n", why);
        return 0;
    }
    /* the plugin's test knob hides fp64 from its kernels (device_props still reports it) */
    const char *nofp64 = getenv("EMBER_OPENCL_NO_FP64");
    if (nofp64 && *nofp64 && strcmp(nofp64, "0"))
        g_ocl.fp64 = 0;
    g_have_cpu = plugin_open(&g_cpu, "cpu", why, sizeof why) == 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_elementwise),
        cmocka_unit_test(test_int_fill_where),
        cmocka_unit_test(test_copy_conversions),
        cmocka_unit_test(test_float_math),
        cmocka_unit_test(test_float_division_torch),
        cmocka_unit_test(test_tanh_range),
        cmocka_unit_test(test_reductions),
        cmocka_unit_test(test_max_min_dim),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_index_select_gather),
        cmocka_unit_test(test_scatter_add),
        cmocka_unit_test(test_refusals),
    };
    int rc = cmocka_run_group_tests_name("opencl kernels of ABI 1.2", tests, NULL, NULL);
    printf("# %ld calls were also run on the cpu plugin%s\n", g_ncpu,
           g_have_cpu ? "" : " (it did not load)");
    if (g_have_cpu)
        plugin_close(&g_cpu);
    plugin_close(&g_ocl);
    return rc;
}
