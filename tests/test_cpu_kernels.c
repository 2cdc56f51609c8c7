/* tests/test_cpu_kernels.c — the cpu backend's kernels of plugin ABI 1.2, called directly
 * through its entry symbol and ops table (dlopen, as the core's loader does), on small
 * strided and broadcast views, for every dtype the core uses them with
 * (core/plugin/kernels.c), against references computed here (and, for some float cases,
 * values from PyTorch 1.13):
 *  - integer dtypes on the kernels of 1.0: fill and the scalar ops take ip[] exactly,
 *    arithmetic wraps, copy converts every pair (float to integer saturating, NaN to 0),
 *    comparisons, where, masked_fill, sum on i64;
 *  - the math kernels of 1.2 with NaN, -0 and infinities; pow, floor_divide, remainder
 *    (Python semantics on integers, INT64_MIN // -1 wraps); prod; max_dim / min_dim (NaN
 *    wins, first index on ties); softmax / log_softmax; index_select, gather, scatter_add;
 *  - relu keeps -0 and NaN;
 *  - the dtype masks declare every dtype the core uses;
 *  - results do not depend on the thread count. */
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

static void open_inst(em_backend *be, void **dev, const char *threads)
{
    em_config_kv cfg[1] = {{"threads", threads}};
    memset(be, 0, sizeof *be);
    be->struct_size = sizeof *be;
    if (g_entry(&g_host, NULL, cfg, 1, be) != EM_OK)
        fail_msg("cpu entry: %s", g_msg);
    if (be->ops->device_open(be->ctx, 0, dev) != EM_OK)
        fail_msg("cpu device_open: %s", g_msg);
}

static void close_inst(em_backend *be, void *dev)
{
    be->ops->device_close(dev);
    be->ops->shutdown(be->ctx);
}

static int setup(void **state)
{
    (void)state;
    const char *dir = getenv("EMBER_TEST_BACKEND_DIR");
    if (!dir || !*dir) {
        fprintf(stderr, "EMBER_TEST_BACKEND_DIR is not set: run the tests with `make check`\n");
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/ember-backend-cpu.so", dir);
    g_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!g_dl) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return -1;
    }
    void *sym = dlsym(g_dl, EM_BACKEND_ENTRY_NAME);
    if (!sym)
        return -1;
    memcpy(&g_entry, &sym, sizeof g_entry);
    open_inst(&g_be, &g_dev, "1");
    g_ops = g_be.ops;
    return 0;
}

static int teardown(void **state)
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

static int is_int(int32_t dt) { return dt == EM_I64 || dt == EM_I32 || dt == EM_U8; }
static int is_float(int32_t dt) { return dt == EM_F32 || dt == EM_F64; }

/* v narrowed to dt as two's complement / modulo 256 (how the kernels wrap) */
static int64_t wrapv(int32_t dt, int64_t v)
{
    switch (dt) {
    case EM_I32: return (int32_t)(uint32_t)(uint64_t)v;
    case EM_U8: return (uint8_t)(uint64_t)v;
    case EM_BOOL: return v != 0;
    default: return v;
    }
}

/* element i of buffer b: stores and loads as double (floats) or int64 (the rest) */
static void putd(int32_t dt, void *b, int64_t i, double v)
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

static void puti(int32_t dt, void *b, int64_t i, int64_t v)
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

static double getd(int32_t dt, const void *b, int64_t i)
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

static int64_t geti(int32_t dt, const void *b, int64_t i)
{
    switch (dt) {
    case EM_I64: return ((const int64_t *)b)[i];
    case EM_I32: return ((const int32_t *)b)[i];
    case EM_U8: case EM_BOOL: return ((const uint8_t *)b)[i];
    default: return (int64_t)getd(dt, b, i);
    }
}

static em_kview mkv(void *buf, int32_t dt, int64_t off, int nd, const int64_t *shape,
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
static em_status callk(em_kernel_fn f, const em_kview *out, const em_kview *out2,
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
static int same_double(double a, double b)
{
    if (a != a || b != b)
        return a != a && b != b;
    return a == b && signbit(a) == signbit(b);
}

/* |got - want| within `ulps` units of dt's epsilon relative to |want| (NaN, infinities
 * and zeros exact, signs included) */
static int close_to(int32_t dt, double got, double want, double ulps)
{
    if (got != got || want != want || isinf(want) || want == 0)
        return same_double(got, want);
    double eps = dt == EM_F32 ? 1.1920928955078125e-07 : 2.220446049250313e-16;
    return fabs(got - want) <= ulps * eps * fabs(want);
}

/* ------------------------------------------------------------------ masks */

/* Every kernel declares at least the dtypes the core uses it with: the fallback for
 * other backends relies on it. */
static void test_masks(void **state)
{
    (void)state;
    const em_kernel_dtypes *d = g_ops->dtypes;
    assert_non_null(d);
    assert_true(d->struct_size >= sizeof(em_kernel_dtypes));
    const em_dtype_mask F = EM_DTYPES_FLOAT, N = EM_DTYPES_INT, ALL = EM_DTYPES_ALL;
    const em_dtype_mask I64 = EM_DTYPE_BIT(EM_I64);
#define HAS(field, want) assert_int_equal(d->field & (want), (want))
    HAS(fill, ALL); HAS(copy, ALL);
    HAS(neg, F | N); HAS(abs, F | N);
    HAS(add_scalar, F | N); HAS(mul_scalar, F | N); HAS(rsub_scalar, F | N); HAS(clamp, F | N);
    HAS(add, F | N); HAS(sub, F | N); HAS(mul, F | N); HAS(maximum, F | N); HAS(minimum, F | N);
    HAS(lt, ALL); HAS(le, ALL); HAS(gt, ALL); HAS(ge, ALL); HAS(eq, ALL); HAS(ne, ALL);
    HAS(where, ALL); HAS(masked_fill, ALL);
    HAS(sum, F | I64);
    HAS(log1p, F); HAS(expm1, F); HAS(sin, F); HAS(cos, F); HAS(erf, F);
    HAS(floor, F); HAS(ceil, F); HAS(round, F); HAS(sign, F | N);
    HAS(pow, F); HAS(floor_divide, F | N); HAS(remainder, F | N);
    HAS(prod, F | I64);
    HAS(max_dim, F | N); HAS(min_dim, F | N); HAS(softmax, F); HAS(log_softmax, F);
    HAS(index_select, ALL); HAS(gather, ALL); HAS(scatter_add, F | N);
#undef HAS
}

/* ------------------------------------------------------------------ integer dtypes, 1.0 kernels */

static const int64_t g_vals_i64[] = {INT64_MAX, INT64_MIN, -1, 0, 1, 7, -7, 123456789012345};
static const int64_t g_vals_i32[] = {INT32_MAX, INT32_MIN, -1, 0, 1, 5, -9, 100000};
static const int64_t g_vals_u8[] = {255, 0, 1, 128, 200, 7, 254, 3};

static const int64_t *int_vals(int32_t dt)
{
    return dt == EM_I64 ? g_vals_i64 : dt == EM_I32 ? g_vals_i32 : g_vals_u8;
}

/* A buffer of 8 elements of dt holding int_vals rotated by r (so A and B differ). */
static void fill_int_buf(int32_t dt, void *b, int r)
{
    const int64_t *v = int_vals(dt);
    for (int i = 0; i < 8; i++)
        puti(dt, b, i, v[(i + r) % 8]);
}

typedef int64_t (*iref1)(int32_t dt, int64_t x, int64_t s0, int64_t s1);

static int64_t r_neg(int32_t dt, int64_t x, int64_t s0, int64_t s1)
{
    (void)s0, (void)s1;
    return wrapv(dt, (int64_t)(0 - (uint64_t)x));
}
static int64_t r_abs(int32_t dt, int64_t x, int64_t s0, int64_t s1)
{
    (void)s0, (void)s1;
    return wrapv(dt, x < 0 ? (int64_t)(0 - (uint64_t)x) : x);
}
static int64_t r_adds(int32_t dt, int64_t x, int64_t s0, int64_t s1)
{
    (void)s1;
    return wrapv(dt, (int64_t)((uint64_t)x + (uint64_t)s0));
}
static int64_t r_muls(int32_t dt, int64_t x, int64_t s0, int64_t s1)
{
    (void)s1;
    return wrapv(dt, (int64_t)((uint64_t)x * (uint64_t)s0));
}
static int64_t r_rsubs(int32_t dt, int64_t x, int64_t s0, int64_t s1)
{
    (void)s1;
    return wrapv(dt, (int64_t)((uint64_t)s0 - (uint64_t)x));
}
static int64_t r_clamp(int32_t dt, int64_t x, int64_t lo, int64_t hi)
{
    int64_t m = x < lo ? lo : x;
    return wrapv(dt, m > hi ? hi : m);
}

static void check_int_unary(const char *name, em_kernel_fn f, iref1 ref, int nip, int64_t s0,
                            int64_t s1)
{
    for (size_t t = 0; t < 3; t++) {
        int32_t dt = g_ints[t];
        int64_t ab[8], ob[8];
        fill_int_buf(dt, ab, 0);
        memset(ob, 0x5a, sizeof ob);
        em_kview a = mkv(ab, dt, 0, 2, g_shape, g_st_a), o = mkv(ob, dt, 0, 2, g_shape, g_st_out);
        a.offset = 1;
        int64_t ip[2] = {s0, s1};
        /* p[] holds the same values rounded: the kernel must take ip[] */
        if (callk(f, &o, NULL, &a, NULL, NULL, (double)s0, (double)s1, ip, nip) != EM_OK)
            fail_msg("%s %s: %s", name, g_dtn[dt], g_msg);
        for (int q = 0; q < 6; q++) {
            int64_t x = geti(dt, ab, POS_A(q));
            int64_t want = ref(dt, x, s0, s1), got = geti(dt, ob, q);
            if (got != want)
                fail_msg("%s %s: x=%lld got %lld want %lld", name, g_dtn[dt], (long long)x,
                         (long long)got, (long long)want);
        }
        /* contiguous, in place */
        fill_int_buf(dt, ab, 3);
        int64_t n8[1] = {8}, s1v[1] = {1};
        em_kview c = mkv(ab, dt, 0, 1, n8, s1v);
        int64_t orig[8];
        for (int i = 0; i < 8; i++)
            orig[i] = geti(dt, ab, i);
        assert_int_equal(callk(f, &c, NULL, &c, NULL, NULL, (double)s0, (double)s1, ip, nip), EM_OK);
        for (int i = 0; i < 8; i++)
            if (geti(dt, ab, i) != ref(dt, orig[i], s0, s1))
                fail_msg("%s %s in place: x=%lld got %lld", name, g_dtn[dt], (long long)orig[i],
                         (long long)geti(dt, ab, i));
    }
}

static void test_int_unary(void **state)
{
    (void)state;
    check_int_unary("neg", K(neg), r_neg, 0, 0, 0);
    check_int_unary("abs", K(abs), r_abs, 0, 0, 0);
    /* a scalar a double cannot hold: 2^53 + 1 */
    const int64_t big = 9007199254740993LL;
    check_int_unary("add_scalar", K(add_scalar), r_adds, 1, big, 0);
    check_int_unary("add_scalar", K(add_scalar), r_adds, 1, -3, 0);
    check_int_unary("mul_scalar", K(mul_scalar), r_muls, 1, big, 0);
    check_int_unary("mul_scalar", K(mul_scalar), r_muls, 1, -2, 0);
    check_int_unary("rsub_scalar", K(rsub_scalar), r_rsubs, 1, big, 0);
    check_int_unary("clamp", K(clamp), r_clamp, 2, -5, 100);
    check_int_unary("clamp", K(clamp), r_clamp, 2, INT64_MIN, 6);
    check_int_unary("clamp", K(clamp), r_clamp, 2, 2, INT64_MAX);
    check_int_unary("clamp", K(clamp), r_clamp, 2, 9, 4);   /* lo > hi: hi */

    /* the edges spelled out */
    int64_t x[3] = {INT64_MIN, INT64_MAX, -1}, o[3];
    int64_t n3[1] = {3}, s1[1] = {1};
    em_kview v = mkv(x, EM_I64, 0, 1, n3, s1), w = mkv(o, EM_I64, 0, 1, n3, s1);
    assert_int_equal(callk(K(neg), &w, NULL, &v, NULL, NULL, 0, 0, NULL, 0), EM_OK);
    assert_true(o[0] == INT64_MIN && o[1] == -INT64_MAX && o[2] == 1);
    assert_int_equal(callk(K(abs), &w, NULL, &v, NULL, NULL, 0, 0, NULL, 0), EM_OK);
    assert_true(o[0] == INT64_MIN && o[1] == INT64_MAX && o[2] == 1);
    int64_t one = 1;
    assert_int_equal(callk(K(add_scalar), &w, NULL, &v, NULL, NULL, 1, 0, &one, 1), EM_OK);
    assert_true(o[0] == INT64_MIN + 1 && o[1] == INT64_MIN && o[2] == 0);
    uint8_t u[3] = {250, 0, 5}, uo[3];
    em_kview uv = mkv(u, EM_U8, 0, 1, n3, s1), uw = mkv(uo, EM_U8, 0, 1, n3, s1);
    int64_t ten = 10;
    assert_int_equal(callk(K(add_scalar), &uw, NULL, &uv, NULL, NULL, 10, 0, &ten, 1), EM_OK);
    assert_true(uo[0] == 4 && uo[1] == 10 && uo[2] == 15);
    assert_int_equal(callk(K(neg), &uw, NULL, &uv, NULL, NULL, 0, 0, NULL, 0), EM_OK);
    assert_true(uo[0] == 6 && uo[1] == 0 && uo[2] == 251);
    int64_t m300 = 300;   /* a u8 scalar wraps to 44 */
    assert_int_equal(callk(K(mul_scalar), &uw, NULL, &uv, NULL, NULL, 300, 0, &m300, 1), EM_OK);
    assert_true(uo[0] == (uint8_t)(250 * 44) && uo[1] == 0 && uo[2] == 220);
}

typedef int64_t (*iref2)(int32_t dt, int64_t a, int64_t b);
static int64_t r_add(int32_t dt, int64_t a, int64_t b) { return wrapv(dt, (int64_t)((uint64_t)a + (uint64_t)b)); }
static int64_t r_sub(int32_t dt, int64_t a, int64_t b) { return wrapv(dt, (int64_t)((uint64_t)a - (uint64_t)b)); }
static int64_t r_mul(int32_t dt, int64_t a, int64_t b) { return wrapv(dt, (int64_t)((uint64_t)a * (uint64_t)b)); }
static int64_t r_max(int32_t dt, int64_t a, int64_t b) { (void)dt; return a > b ? a : b; }
static int64_t r_min(int32_t dt, int64_t a, int64_t b) { (void)dt; return a < b ? a : b; }
static int64_t r_lt(int32_t dt, int64_t a, int64_t b) { (void)dt; return a < b; }
static int64_t r_le(int32_t dt, int64_t a, int64_t b) { (void)dt; return a <= b; }
static int64_t r_gt(int32_t dt, int64_t a, int64_t b) { (void)dt; return a > b; }
static int64_t r_ge(int32_t dt, int64_t a, int64_t b) { (void)dt; return a >= b; }
static int64_t r_eq(int32_t dt, int64_t a, int64_t b) { (void)dt; return a == b; }
static int64_t r_ne(int32_t dt, int64_t a, int64_t b) { (void)dt; return a != b; }

/* out = f(A, B) over the strided / broadcast layouts; cmp: out is bool */
static void check_int_binary(const char *name, em_kernel_fn f, iref2 ref, int cmp)
{
    for (size_t t = 0; t < 3; t++) {
        int32_t dt = g_ints[t], odt = cmp ? EM_BOOL : dt;
        for (int r = 0; r < 8; r++) {
            int64_t ab[8], bb[8], ob[8];
            fill_int_buf(dt, ab, 0);
            fill_int_buf(dt, bb, r);
            memset(ob, 0x5a, sizeof ob);
            em_kview a = mkv(ab, dt, 1, 2, g_shape, g_st_a), b = mkv(bb, dt, 0, 2, g_shape, g_st_b);
            em_kview o = mkv(ob, odt, 0, 2, g_shape, g_st_out);
            if (callk(f, &o, NULL, &a, &b, NULL, 0, 0, NULL, 0) != EM_OK)
                fail_msg("%s %s: %s", name, g_dtn[dt], g_msg);
            for (int q = 0; q < 6; q++) {
                int64_t x = geti(dt, ab, POS_A(q)), y = geti(dt, bb, POS_B(q));
                int64_t want = ref(dt, x, y), got = geti(odt, ob, q);
                if (got != want)
                    fail_msg("%s %s: %lld, %lld: got %lld want %lld", name, g_dtn[dt],
                             (long long)x, (long long)y, (long long)got, (long long)want);
            }
        }
    }
}

static void test_int_binary(void **state)
{
    (void)state;
    check_int_binary("add", K(add), r_add, 0);
    check_int_binary("sub", K(sub), r_sub, 0);
    check_int_binary("mul", K(mul), r_mul, 0);
    check_int_binary("maximum", K(maximum), r_max, 0);
    check_int_binary("minimum", K(minimum), r_min, 0);
    check_int_binary("lt", K(lt), r_lt, 1);
    check_int_binary("le", K(le), r_le, 1);
    check_int_binary("gt", K(gt), r_gt, 1);
    check_int_binary("ge", K(ge), r_ge, 1);
    check_int_binary("eq", K(eq), r_eq, 1);
    check_int_binary("ne", K(ne), r_ne, 1);
    /* wrap-around spelled out */
    int32_t a[2] = {INT32_MAX, INT32_MIN}, b[2] = {1, -1}, o[2];
    int64_t n2[1] = {2}, s1[1] = {1};
    em_kview va = mkv(a, EM_I32, 0, 1, n2, s1), vb = mkv(b, EM_I32, 0, 1, n2, s1),
             vo = mkv(o, EM_I32, 0, 1, n2, s1);
    assert_int_equal(callk(K(add), &vo, NULL, &va, &vb, NULL, 0, 0, NULL, 0), EM_OK);
    assert_true(o[0] == INT32_MIN && o[1] == INT32_MAX);
    assert_int_equal(callk(K(mul), &vo, NULL, &va, &va, NULL, 0, 0, NULL, 0), EM_OK);
    assert_true(o[0] == 1 && o[1] == 0);
}

/* fill, where, masked_fill and the comparisons on every dtype */
static void test_fill_where_masked(void **state)
{
    (void)state;
    int64_t n5[1] = {5}, s2[1] = {2};
    for (int32_t dt = 0; dt < NDT; dt++) {
        int64_t buf[10];
        memset(buf, 0x77, sizeof buf);
        em_kview o = mkv(buf, dt, 1, 1, n5, s2);
        /* an integer value a double cannot hold */
        int64_t v = is_int(dt) ? (dt == EM_I64 ? 9007199254740993LL : -1234567) : 1;
        double pv = is_float(dt) ? -2.5 : dt == EM_BOOL ? 1.0 : (double)v;
        assert_int_equal(callk(K(fill), &o, NULL, NULL, NULL, NULL, pv, 0, &v, is_int(dt)), EM_OK);
        for (int i = 0; i < 5; i++) {
            if (is_float(dt))
                assert_true(getd(dt, buf, 1 + 2 * i) == -2.5);
            else
                assert_true(geti(dt, buf, 1 + 2 * i) == wrapv(dt, v));
        }
        /* untouched in between */
        assert_true(((unsigned char *)buf)[0] == 0x77);

        /* where(cond, A, B): cond strided, A transposed, B broadcast */
        uint8_t cond[6] = {1, 0, 0, 1, 1, 0};
        int64_t ab[8], bb[8], ob[8];
        for (int i = 0; i < 8; i++) {
            puti(dt, ab, i, 10 + i);
            puti(dt, bb, i, -(int64_t)i - 1);
        }
        int64_t cst[2] = {1, 2};
        em_kview c = mkv(cond, EM_BOOL, 0, 2, g_shape, cst);
        em_kview a = mkv(ab, dt, 1, 2, g_shape, g_st_a), b = mkv(bb, dt, 0, 2, g_shape, g_st_b);
        em_kview w = mkv(ob, dt, 0, 2, g_shape, g_st_out);
        if (callk(K(where), &w, NULL, &c, &a, &b, 0, 0, NULL, 0) != EM_OK)
            fail_msg("where %s: %s", g_dtn[dt], g_msg);
        for (int q = 0; q < 6; q++) {
            int i = q / 3, j = q % 3;
            double want = cond[i + 2 * j] ? getd(dt, ab, POS_A(q)) : getd(dt, bb, POS_B(q));
            assert_true(getd(dt, ob, q) == want);
        }
        /* masked_fill(A, mask, value) */
        em_kview m = mkv(cond, EM_BOOL, 0, 2, g_shape, cst);
        int64_t mv = dt == EM_I64 ? INT64_MIN + 3 : 77;
        if (callk(K(masked_fill), &w, NULL, &a, &m, NULL, (double)mv, 0, &mv, 1) != EM_OK)
            fail_msg("masked_fill %s: %s", g_dtn[dt], g_msg);
        for (int q = 0; q < 6; q++) {
            int i = q / 3, j = q % 3;
            if (!cond[i + 2 * j])
                assert_true(getd(dt, ob, q) == getd(dt, ab, POS_A(q)));
            else if (is_int(dt))
                assert_true(geti(dt, ob, q) == wrapv(dt, mv));
            else
                assert_true(getd(dt, ob, q) == (dt == EM_BOOL ? 1.0 : (double)(float)mv));
        }
        /* comparisons: A against B */
        uint8_t cb[6];
        em_kview co = mkv(cb, EM_BOOL, 0, 2, g_shape, g_st_out);
        for (int i = 0; i < 8; i++)
            puti(dt, bb, i, 10 + 2 * i);
        assert_int_equal(callk(K(lt), &co, NULL, &a, &b, NULL, 0, 0, NULL, 0), EM_OK);
        for (int q = 0; q < 6; q++)
            assert_int_equal(cb[q], getd(dt, ab, POS_A(q)) < getd(dt, bb, POS_B(q)));
        assert_int_equal(callk(K(eq), &co, NULL, &a, &b, NULL, 0, 0, NULL, 0), EM_OK);
        for (int q = 0; q < 6; q++)
            assert_int_equal(cb[q], getd(dt, ab, POS_A(q)) == getd(dt, bb, POS_B(q)));
    }
}

/* copy between every pair of dtypes */
static void test_copy_all(void **state)
{
    (void)state;
    /* sources per dtype; float sources include NaN, infinities, out-of-range values and
     * fractions of both signs */
    const double fsrc[8] = {NAN, INFINITY, -INFINITY, 1e30, -1e30, 2.9, -2.9, 255.5};
    int64_t n8[1] = {8}, s1[1] = {1}, s3[1] = {3};
    for (int32_t ti = 0; ti < NDT; ti++)
        for (int32_t to = 0; to < NDT; to++) {
            int64_t src[24], dst[8];
            memset(dst, 0x33, sizeof dst);
            for (int i = 0; i < 8; i++) {
                if (is_float(ti))
                    putd(ti, src, 3 * i, fsrc[i]);
                else if (ti == EM_BOOL)
                    puti(ti, src, 3 * i, i & 1);
                else
                    puti(ti, src, 3 * i, int_vals(ti)[i]);
            }
            em_kview a = mkv(src, ti, 0, 1, n8, s3), o = mkv(dst, to, 0, 1, n8, s1);
            if (callk(K(copy), &o, NULL, &a, NULL, NULL, 0, 0, NULL, 0) != EM_OK)
                fail_msg("copy %s -> %s: %s", g_dtn[ti], g_dtn[to], g_msg);
            for (int i = 0; i < 8; i++) {
                double x = getd(ti, src, 3 * i);
                if (is_float(to)) {
                    double want = ti == EM_I64 ? (double)geti(ti, src, 3 * i) : x;
                    if (to == EM_F32)
                        want = ti == EM_I64 ? (double)(float)geti(ti, src, 3 * i) : (double)(float)want;
                    if (!same_double(getd(to, dst, i), want))
                        fail_msg("copy %s -> %s: %g gave %g", g_dtn[ti], g_dtn[to], x,
                                 getd(to, dst, i));
                } else if (to == EM_BOOL) {
                    assert_int_equal(geti(to, dst, i), x != 0);
                } else {
                    int64_t want;
                    if (is_float(ti)) {
                        /* truncation toward zero, saturated, NaN 0 */
                        double lo = to == EM_I64 ? -9223372036854775808.0 : to == EM_I32 ? -2147483648.0 : 0;
                        double hi = to == EM_I64 ? 9223372036854775807.0 : to == EM_I32 ? 2147483647.0 : 255;
                        double tr = x != x ? 0 : trunc(x);
                        if (tr <= lo)
                            want = to == EM_I64 ? INT64_MIN : (int64_t)lo;
                        else if (tr >= hi)
                            want = to == EM_I64 ? INT64_MAX : (int64_t)hi;
                        else
                            want = (int64_t)tr;
                    } else {
                        want = wrapv(to, geti(ti, src, 3 * i));
                    }
                    if (geti(to, dst, i) != want)
                        fail_msg("copy %s -> %s: element %d (%g) gave %lld, want %lld", g_dtn[ti],
                                 g_dtn[to], i, x, (long long)geti(to, dst, i), (long long)want);
                }
            }
        }
    /* the values of PyTorch 1.13 for in-range conversions */
    float f[4] = {-2.7f, 2.7f, -0.5f, 100.9f};
    int32_t o32[4];
    uint8_t o8[4];
    int64_t n4[1] = {4};
    em_kview vf = mkv(f, EM_F32, 0, 1, n4, s1), v32 = mkv(o32, EM_I32, 0, 1, n4, s1),
             v8 = mkv(o8, EM_U8, 0, 1, n4, s1);
    assert_int_equal(callk(K(copy), &v32, NULL, &vf, NULL, NULL, 0, 0, NULL, 0), EM_OK);
    assert_true(o32[0] == -2 && o32[1] == 2 && o32[2] == 0 && o32[3] == 100);
    assert_int_equal(callk(K(copy), &v8, NULL, &v32, NULL, NULL, 0, 0, NULL, 0), EM_OK);
    assert_true(o8[0] == 254 && o8[1] == 2 && o8[2] == 0 && o8[3] == 100);
}

/* sum with an i64 output: wraps, exact beyond 2^53, strided, over chosen dims */
static void test_sum_i64(void **state)
{
    (void)state;
    /* in: 3x4 transposed view of a 4x3 buffer; reduce dim 1 -> out 3x1, then all */
    int64_t buf[12];
    for (int i = 0; i < 12; i++)
        buf[i] = (i % 2 ? INT64_MAX - i : 9007199254740993LL * (i + 1));
    int64_t shp[2] = {3, 4}, st[2] = {1, 3}, oshp[2] = {3, 1}, ost[2] = {1, 1};
    int64_t out[3];
    em_kview in = mkv(buf, EM_I64, 0, 2, shp, st), o = mkv(out, EM_I64, 0, 2, oshp, ost);
    if (callk(K(sum), &o, NULL, &in, NULL, NULL, 1.0, 0, NULL, 0) != EM_OK)
        fail_msg("sum i64: %s", g_msg);
    for (int r = 0; r < 3; r++) {
        uint64_t want = 0;
        for (int c = 0; c < 4; c++)
            want += (uint64_t)buf[r + 3 * c];
        assert_true(out[r] == (int64_t)want);
    }
    int64_t one[2] = {1, 1}, all;
    em_kview oa = mkv(&all, EM_I64, 0, 2, one, one);
    assert_int_equal(callk(K(sum), &oa, NULL, &in, NULL, NULL, 1.0, 0, NULL, 0), EM_OK);
    uint64_t want = 0;
    for (int i = 0; i < 12; i++)
        want += (uint64_t)buf[i];
    assert_true(all == (int64_t)want);
}

/* ------------------------------------------------------------------ math of 1.2 */

#define NX 14
static const double g_mx[NX] = {-0.0, 0.0, NAN, INFINITY, -INFINITY, 0.5, 1.5, 2.5, -2.5,
                                -0.5, 1e-8, 3.7, -3.7, 100.0};

/* PyTorch 1.13 on g_mx as f32 (torch.<op>(torch.tensor(x))) */
static const double g_pt_f32[9][NX] = {
    /* log1p */ {-0x0.0p+0, 0x0.0p+0, NAN, INFINITY, NAN, 0x1.9f323ep-2, 0x1.d5241p-1,
                 0x1.40b512p+0, NAN, -0x1.62e43p-1, 0x1.5798eep-27, 0x1.8c2d0ep+0, NAN,
                 0x1.275e22p+2},
    /* expm1 */ {-0x0.0p+0, 0x0.0p+0, NAN, INFINITY, -0x1p+0, 0x1.4c2532p-1, 0x1.bda7fcp+1,
                 0x1.65d6fep+3, -0x1.d5f8f4p-1, -0x1.92e9ap-2, 0x1.5798eep-27, 0x1.3b9416p+5,
                 -0x1.f3577p-1, INFINITY},
    /* sin */ {-0x0.0p+0, 0x0.0p+0, NAN, NAN, NAN, 0x1.eaee88p-2, 0x1.feb7aap-1, 0x1.326af0p-1,
               -0x1.326af0p-1, -0x1.eaee88p-2, 0x1.5798eep-27, -0x1.0f46b0p-1, 0x1.0f46b0p-1,
               -0x1.03425cp-1},
    /* cos */ {0x1p+0, 0x1p+0, NAN, NAN, NAN, 0x1.c1528p-1, 0x1.21bd54p-4, -0x1.9a2f7ep-1,
               -0x1.9a2f7ep-1, 0x1.c1528p-1, 0x1p+0, -0x1.b23a2ap-1, -0x1.b23a2ap-1,
               0x1.b981dcp-1},
    /* erf */ {-0x0.0p+0, 0x0.0p+0, NAN, 0x1p+0, -0x1p+0, 0x1.0a7ef6p-1, 0x1.eea556p-1,
               0x1.ffcaa8p-1, -0x1.ffcaa8p-1, -0x1.0a7ef6p-1, 0x1.83b548p-27, 0x1.fffffap-1,
               -0x1.fffffap-1, 0x1p+0},
    /* floor */ {-0.0, 0.0, NAN, INFINITY, -INFINITY, 0, 1, 2, -3, -1, 0, 3, -4, 100},
    /* ceil */ {-0.0, 0.0, NAN, INFINITY, -INFINITY, 1, 2, 3, -2, -0.0, 1, 4, -3, 100},
    /* round */ {-0.0, 0.0, NAN, INFINITY, -INFINITY, 0, 2, 2, -2, -0.0, 0, 4, -4, 100},
    /* sign: PyTorch 1.13 gives 0 for NaN; the ABI (backend.h) keeps NaN */
    {0, 0, NAN, 1, -1, 1, 1, 1, -1, -1, 1, 1, -1, 1},
};

static void test_math_unary(void **state)
{
    (void)state;
    static const char *const names[9] = {"log1p", "expm1", "sin", "cos", "erf",
                                         "floor", "ceil", "round", "sign"};
    double (*const ref[9])(double) = {log1p, expm1, sin, cos, erf, floor, ceil, nearbyint, NULL};
    const em_kernel_fn fns[9] = {K(log1p), K(expm1), K(sin), K(cos), K(erf),
                                 K(floor), K(ceil), K(round), K(sign)};
    int64_t nx[1] = {NX}, s1[1] = {1}, s2[1] = {2};
    for (int k = 0; k < 9; k++)
        for (int32_t dt = EM_F32; dt <= EM_F64; dt++) {
            double ib[2 * NX + 1], ob[NX];
            for (int i = 0; i < NX; i++)
                putd(dt, ib, 1 + 2 * i, g_mx[i]);
            em_kview a = mkv(ib, dt, 1, 1, nx, s2), o = mkv(ob, dt, 0, 1, nx, s1);
            if (callk(fns[k], &o, NULL, &a, NULL, NULL, 0, 0, NULL, 0) != EM_OK)
                fail_msg("%s %s: %s", names[k], g_dtn[dt], g_msg);
            for (int i = 0; i < NX; i++) {
                double x = getd(dt, ib, 1 + 2 * i), got = getd(dt, ob, i), want;
                if (dt == EM_F32)
                    want = g_pt_f32[k][i];
                else
                    want = ref[k] ? ref[k](x) : g_pt_f32[k][i];
                if (!close_to(dt, got, want, k < 5 ? 2 : 0))
                    fail_msg("%s %s(%a) = %a, want %a", names[k], g_dtn[dt], x, got, want);
            }
        }
    /* sign on integers */
    for (size_t t = 0; t < 3; t++) {
        int32_t dt = g_ints[t];
        int64_t ib[8], ob[8];
        fill_int_buf(dt, ib, 0);
        int64_t n8[1] = {8};
        em_kview a = mkv(ib, dt, 0, 1, n8, s1), o = mkv(ob, dt, 0, 1, n8, s1);
        assert_int_equal(callk(K(sign), &o, NULL, &a, NULL, NULL, 0, 0, NULL, 0), EM_OK);
        for (int i = 0; i < 8; i++) {
            int64_t x = geti(dt, ib, i);
            assert_true(geti(dt, ob, i) == (x > 0) - (x < 0));
        }
    }
    /* a float kernel refuses integers without writing */
    int64_t ib[2] = {1, 2}, ob[2] = {7, 7}, n2[1] = {2};
    em_kview a = mkv(ib, EM_I64, 0, 1, n2, s1), o = mkv(ob, EM_I64, 0, 1, n2, s1);
    assert_int_equal(callk(K(sin), &o, NULL, &a, NULL, NULL, 0, 0, NULL, 0), EM_ERR_UNSUPPORTED);
    assert_true(ob[0] == 7 && ob[1] == 7);
}

/* floor_divide and remainder: floats against PyTorch 1.13, integers against Python */
#define NQ 16
static const double g_qa[NQ] = {5, -5, 5.5, -0.0, 0.0, 1, -1, 0, INFINITY, 2, -2, NAN, 7.5, -7.5,
                                1e-30, -3};
static const double g_qb[NQ] = {-3, 3, 2, 1, -1, 0, 0, 0, 2, INFINITY, INFINITY, 1, -2.5, 2.5,
                                1e30, -3};
static const double g_pt_fdiv[NQ] = {-2, -2, 2, -0.0, -0.0, INFINITY, -INFINITY, NAN, NAN, 0,
                                     -1, NAN, -3, -3, 0, 1};
static const double g_pt_rem[NQ] = {-1, 1, 1.5, -0.0, 0.0, NAN, NAN, NAN, NAN, 2, INFINITY, NAN,
                                    0, -0.0, 0 /* 1e-30 as the dtype */, -0.0};

/* Python's // and % for small integers, from floor of the exact quotient */
static int64_t py_floordiv(int64_t a, int64_t b) { return (int64_t)floor((double)a / (double)b); }
static int64_t py_mod(int64_t a, int64_t b) { return a - b * py_floordiv(a, b); }

static void test_floor_divide_remainder(void **state)
{
    (void)state;
    int64_t nq[1] = {NQ}, s1[1] = {1}, s3[1] = {3};
    for (int32_t dt = EM_F32; dt <= EM_F64; dt++) {
        double ab[NQ], bb[3 * NQ], ob[NQ];
        for (int i = 0; i < NQ; i++) {
            putd(dt, ab, i, g_qa[i]);
            putd(dt, bb, 3 * i, g_qb[i]);
        }
        em_kview a = mkv(ab, dt, 0, 1, nq, s1), b = mkv(bb, dt, 0, 1, nq, s3),
                 o = mkv(ob, dt, 0, 1, nq, s1);
        assert_int_equal(callk(K(floor_divide), &o, NULL, &a, &b, NULL, 0, 0, NULL, 0), EM_OK);
        for (int i = 0; i < NQ; i++)
            if (!same_double(getd(dt, ob, i), g_pt_fdiv[i]))
                fail_msg("floor_divide %s(%g, %g) = %g, want %g", g_dtn[dt], g_qa[i], g_qb[i],
                         getd(dt, ob, i), g_pt_fdiv[i]);
        assert_int_equal(callk(K(remainder), &o, NULL, &a, &b, NULL, 0, 0, NULL, 0), EM_OK);
        for (int i = 0; i < NQ; i++) {
            double want = i == 14 ? getd(dt, ab, 14) : g_pt_rem[i];
            if (!same_double(getd(dt, ob, i), want))
                fail_msg("remainder %s(%g, %g) = %g, want %g", g_dtn[dt], g_qa[i], g_qb[i],
                         getd(dt, ob, i), want);
        }
    }
    /* integers: a grid of signs, strided and broadcast */
    for (size_t t = 0; t < 3; t++) {
        int32_t dt = g_ints[t];
        const int64_t bs[6] = {-3, -2, -1, 1, 2, 7};
        for (int k = 0; k < 6; k++) {
            if (dt == EM_U8 && bs[k] < 0)
                continue;
            int64_t ab[15], bv[1], ob[15];
            for (int i = 0; i < 15; i++)
                puti(dt, ab, i, dt == EM_U8 ? 200 + i : i - 7);
            puti(dt, bv, 0, bs[k]);
            int64_t n15[1] = {15}, s0[1] = {0};
            em_kview a = mkv(ab, dt, 0, 1, n15, s1), b = mkv(bv, dt, 0, 1, n15, s0),
                     o = mkv(ob, dt, 0, 1, n15, s1);
            assert_int_equal(callk(K(floor_divide), &o, NULL, &a, &b, NULL, 0, 0, NULL, 0), EM_OK);
            for (int i = 0; i < 15; i++)
                assert_true(geti(dt, ob, i) == py_floordiv(geti(dt, ab, i), bs[k]));
            assert_int_equal(callk(K(remainder), &o, NULL, &a, &b, NULL, 0, 0, NULL, 0), EM_OK);
            for (int i = 0; i < 15; i++)
                assert_true(geti(dt, ob, i) == py_mod(geti(dt, ab, i), bs[k]));
        }
    }
    /* the edges, as Python (and two's complement for the one overflow) */
    int64_t a[6] = {INT64_MIN, INT64_MIN, INT64_MAX, INT64_MIN, -7, 7};
    int64_t b[6] = {-1, 3, -1, 1, 2, -2};
    const int64_t q[6] = {INT64_MIN, -3074457345618258603LL, -INT64_MAX, INT64_MIN, -4, -4};
    const int64_t r[6] = {0, 1, 0, 0, 1, -1};
    int64_t o[6], n6[1] = {6};
    em_kview va = mkv(a, EM_I64, 0, 1, n6, s1), vb = mkv(b, EM_I64, 0, 1, n6, s1),
             vo = mkv(o, EM_I64, 0, 1, n6, s1);
    assert_int_equal(callk(K(floor_divide), &vo, NULL, &va, &vb, NULL, 0, 0, NULL, 0), EM_OK);
    for (int i = 0; i < 6; i++)
        assert_true(o[i] == q[i]);
    assert_int_equal(callk(K(remainder), &vo, NULL, &va, &vb, NULL, 0, 0, NULL, 0), EM_OK);
    for (int i = 0; i < 6; i++)
        assert_true(o[i] == r[i]);
    int32_t a32[2] = {INT32_MIN, INT32_MIN}, b32[2] = {-1, 7}, o32[2];
    int64_t n2[1] = {2};
    em_kview wa = mkv(a32, EM_I32, 0, 1, n2, s1), wb = mkv(b32, EM_I32, 0, 1, n2, s1),
             wo = mkv(o32, EM_I32, 0, 1, n2, s1);
    assert_int_equal(callk(K(floor_divide), &wo, NULL, &wa, &wb, NULL, 0, 0, NULL, 0), EM_OK);
    assert_true(o32[0] == INT32_MIN && o32[1] == -306783379);
    assert_int_equal(callk(K(remainder), &wo, NULL, &wa, &wb, NULL, 0, 0, NULL, 0), EM_OK);
    assert_true(o32[0] == 0 && o32[1] == 5);
}

static void test_pow(void **state)
{
    (void)state;
    const double pa[9] = {2.0, -8.0, 0.0, -0.0, NAN, 1.0, -2.0, INFINITY, 1.7};
    const double pb[9] = {0.5, 1.0 / 3, -1.0, -1.0, 0.0, NAN, 3.0, -1.0, 2.3};
    /* PyTorch 1.13, f32 */
    const double pt[9] = {0x1.6a09e6p+0, NAN, INFINITY, -INFINITY, 1, 1, -8, 0, 0x1.b1c0c6p+1};
    int64_t n9[1] = {9}, s1[1] = {1}, s2[1] = {2};
    for (int32_t dt = EM_F32; dt <= EM_F64; dt++) {
        double ab[9], bb[18], ob[9];
        for (int i = 0; i < 9; i++) {
            putd(dt, ab, i, pa[i]);
            putd(dt, bb, 2 * i, pb[i]);
        }
        em_kview a = mkv(ab, dt, 0, 1, n9, s1), b = mkv(bb, dt, 0, 1, n9, s2),
                 o = mkv(ob, dt, 0, 1, n9, s1);
        assert_int_equal(callk(K(pow), &o, NULL, &a, &b, NULL, 0, 0, NULL, 0), EM_OK);
        for (int i = 0; i < 9; i++) {
            double want = dt == EM_F32 ? pt[i] : pow(pa[i], pb[i]);
            if (!close_to(dt, getd(dt, ob, i), want, 1))
                fail_msg("pow %s(%g, %g) = %a, want %a", g_dtn[dt], pa[i], pb[i],
                         getd(dt, ob, i), want);
        }
    }
}

static void test_prod(void **state)
{
    (void)state;
    /* [[1.5, -2, 3.25], [0.1, 0.2, 0.3]] stored transposed; PyTorch 1.13 (f32):
     * prod(1) = [-9.75, 0x1.89374ep-8], prod() = -0x1.df3b66p-5 */
    const double v[6] = {1.5, -2.0, 3.25, 0.1, 0.2, 0.3};
    int64_t shp[2] = {2, 3}, st[2] = {1, 2}, oshp[2] = {2, 1}, ost[2] = {1, 1}, one[2] = {1, 1};
    for (int32_t dt = EM_F32; dt <= EM_F64; dt++) {
        double buf[6], out[2], all;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                putd(dt, buf, i + 2 * j, v[3 * i + j]);
        em_kview in = mkv(buf, dt, 0, 2, shp, st), o = mkv(out, dt, 0, 2, oshp, ost),
                 oa = mkv(&all, dt, 0, 2, one, one);
        assert_int_equal(callk(K(prod), &o, NULL, &in, NULL, NULL, 0, 0, NULL, 0), EM_OK);
        assert_int_equal(callk(K(prod), &oa, NULL, &in, NULL, NULL, 0, 0, NULL, 0), EM_OK);
        if (dt == EM_F32) {
            assert_true(getd(dt, out, 0) == -9.75 && getd(dt, out, 1) == 0x1.89374ep-8);
            assert_true(getd(dt, &all, 0) == -0x1.df3b66p-5);
        } else {
            assert_true(out[0] == 1.5 * -2.0 * 3.25 && out[1] == 0.1 * 0.2 * 0.3);
            assert_true(close_to(dt, all, 1.5 * -2.0 * 3.25 * 0.1 * 0.2 * 0.3, 2));
        }
    }
    /* i64 wraps: 2^32 * 2^32 = 0, INT64_MAX * 2 = -2 */
    int64_t ib[4] = {1LL << 32, INT64_MAX, 1LL << 32, 2}, io[2];
    int64_t s22[2] = {1, 2};
    em_kview in = mkv(ib, EM_I64, 0, 2, shp, s22);
    int64_t shp22[2] = {2, 2};
    in.shape[0] = shp22[0];
    in.shape[1] = shp22[1];
    em_kview o = mkv(io, EM_I64, 0, 2, oshp, ost);
    assert_int_equal(callk(K(prod), &o, NULL, &in, NULL, NULL, 0, 0, NULL, 0), EM_OK);
    assert_true(io[0] == 0 && io[1] == -2);
    /* an empty reduction is 1 */
    int64_t z[2] = {2, 0}, zo[2] = {2, 1};
    double fb[1], fo[2];
    em_kview ze = mkv(fb, EM_F64, 0, 2, z, s22), zout = mkv(fo, EM_F64, 0, 2, zo, ost);
    assert_int_equal(callk(K(prod), &zout, NULL, &ze, NULL, NULL, 0, 0, NULL, 0), EM_OK);
    assert_true(fo[0] == 1 && fo[1] == 1);
}

/* max_dim / min_dim over the middle of (outer, n, inner) */
static void test_max_min_dim(void **state)
{
    (void)state;
    /* PyTorch 1.13: [[1, nan, 3, nan], [2, 5, 5, -1]]: max (nan, 5) at (1, 1), min (nan, -1)
     * at (1, 3). Stored with n outermost: element (o, j) at 2*j + o. */
    const double m[2][4] = {{1, NAN, 3, NAN}, {2, 5, 5, -1}};
    int64_t shp[3] = {2, 4, 1}, st[3] = {1, 2, 1}, oshp[3] = {2, 1, 1}, ost[3] = {1, 1, 1};
    for (int32_t dt = EM_F32; dt <= EM_F64; dt++) {
        double buf[8], vo[2];
        int64_t io[2];
        for (int o = 0; o < 2; o++)
            for (int j = 0; j < 4; j++)
                putd(dt, buf, 2 * j + o, m[o][j]);
        em_kview in = mkv(buf, dt, 0, 3, shp, st), v = mkv(vo, dt, 0, 3, oshp, ost),
                 ix = mkv(io, EM_I64, 0, 3, oshp, ost);
        assert_int_equal(callk(K(max_dim), &v, &ix, &in, NULL, NULL, 0, 0, NULL, 0), EM_OK);
        assert_true(isnan(getd(dt, vo, 0)) && io[0] == 1 && getd(dt, vo, 1) == 5 && io[1] == 1);
        assert_int_equal(callk(K(min_dim), &v, &ix, &in, NULL, NULL, 0, 0, NULL, 0), EM_OK);
        assert_true(isnan(getd(dt, vo, 0)) && io[0] == 1 && getd(dt, vo, 1) == -1 && io[1] == 3);
    }
    /* every dtype, (outer 2, n 5, inner 3) with inner strided; reference here */
    int64_t shp2[3] = {2, 5, 3}, st2[3] = {1, 6, 2}, oshp2[3] = {2, 1, 3}, ost2[3] = {3, 3, 1};
    const int32_t dts[5] = {EM_F32, EM_F64, EM_I64, EM_I32, EM_U8};
    for (int t = 0; t < 5; t++) {
        int32_t dt = dts[t];
        int64_t buf[30], vo[6], io[6];
        const int64_t *iv = is_int(dt) ? int_vals(dt) : g_vals_i32;
        for (int i = 0; i < 30; i++) {
            /* ties: values repeat */
            int64_t x = iv[(i * 5) % 7];
            if (is_float(dt))
                putd(dt, buf, i, (double)(x % 1000));
            else
                puti(dt, buf, i, x);
        }
        em_kview in = mkv(buf, dt, 0, 3, shp2, st2), v = mkv(vo, dt, 0, 3, oshp2, ost2),
                 ix = mkv(io, EM_I64, 0, 3, oshp2, ost2);
        for (int mx = 0; mx < 2; mx++) {
            memset(io, 0xff, sizeof io);
            em_kernel_fn f = mx ? K(max_dim) : K(min_dim);
            if (callk(f, &v, &ix, &in, NULL, NULL, 0, 0, NULL, 0) != EM_OK)
                fail_msg("%s %s: %s", mx ? "max_dim" : "min_dim", g_dtn[dt], g_msg);
            for (int o = 0; o < 2; o++)
                for (int i = 0; i < 3; i++) {
                    int64_t bj = 0;
                    double best = getd(dt, buf, o + 2 * i);
                    for (int j = 1; j < 5; j++) {
                        double x = getd(dt, buf, o + 6 * j + 2 * i);
                        if (mx ? x > best : x < best) {
                            best = x;
                            bj = j;
                        }
                    }
                    if (io[3 * o + i] != bj || getd(dt, vo, 3 * o + i) != best)
                        fail_msg("%s %s (%d, %d): got %g at %lld, want %g at %lld",
                                 mx ? "max_dim" : "min_dim", g_dtn[dt], o, i,
                                 getd(dt, vo, 3 * o + i), (long long)io[3 * o + i], best,
                                 (long long)bj);
                }
        }
    }
}

static void test_softmax(void **state)
{
    (void)state;
    /* x: (2, 3, 2), over dim 1; PyTorch 1.13 */
    const double x[12] = {1.0, -2.0, 0.5, 3.0, 2.0, 0.25,
                          1000.0, -INFINITY, 1001.0, -INFINITY, 999.0, -INFINITY};
    const double sm32[12] = {0x1.d98beap-3, 0x1.9c6ee4p-8, 0x1.1f3872p-3, 0x1.de3504p-1,
                             0x1.41cee8p-1, 0x1.e921d0p-5, 0x1.f53434p-3, NAN,
                             0x1.549a76p-1, NAN, 0x1.70c3e6p-4, NAN};
    const double ls32[12] = {-0x1.76e0e0p+0, -0x1.445eb6p+2, -0x1.f6e0e0p+0, -0x1.17ad8ap-4,
                             -0x1.db837ep-2, -0x1.68bd6cp+1, -0x1.6858dcp+0, NAN,
                             -0x1.a16374p-2, NAN, -0x1.342c6ep+1, NAN};
    const double sm64[12] = {0x1.d98bea32b9ec2p-3, 0x1.9c6ee44e22724p-8, 0x1.1f3872792b189p-3,
                             0x1.de35050b27020p-1, 0x1.41cee8d506bedp-1, 0x1.e921d2c3cb922p-5,
                             0x1.f534335ca4bcfp-3, NAN, 0x1.549a766a06790p-1, NAN,
                             0x1.70c3e5f682bdap-4, NAN};
    const double ls64[12] = {-0x1.76e0df6506e37p+0, -0x1.445eb60964524p+2, -0x1.f6e0df6506e37p+0,
                             -0x1.17ad8259148f1p-4, -0x1.db837d941b8dcp-2, -0x1.68bd6c12c8a48p+1,
                             -0x1.6858dd4ef1727p+0, NAN, -0x1.a163753bc5c9dp-2, NAN,
                             -0x1.342c6ea778b94p+1, NAN};
    int64_t shp[3] = {2, 3, 2}, cst[3] = {6, 2, 1}, tst[3] = {1, 2, 6};
    for (int32_t dt = EM_F32; dt <= EM_F64; dt++)
        for (int layout = 0; layout < 2; layout++)
            for (int lg = 0; lg < 2; lg++) {
                /* layout 1: the input stored (inner, n, outer), element (o, j, i) at
                 * o + 2j + 6i; out contiguous, or (layout 0) the input itself */
                double ib[12], ob[12];
                for (int q = 0; q < 12; q++) {
                    int o = q / 6, j = (q / 2) % 3, i = q % 2;
                    putd(dt, ib, layout ? o + 2 * j + 6 * i : q, x[q]);
                }
                em_kview in = mkv(ib, dt, 0, 3, shp, layout ? tst : cst);
                em_kview out = layout ? mkv(ob, dt, 0, 3, shp, cst) : in;
                void *res = layout ? (void *)ob : (void *)ib;
                em_kernel_fn f = lg ? K(log_softmax) : K(softmax);
                assert_int_equal(callk(f, &out, NULL, &in, NULL, NULL, 0, 0, NULL, 0), EM_OK);
                const double *want = dt == EM_F32 ? (lg ? ls32 : sm32) : (lg ? ls64 : sm64);
                for (int q = 0; q < 12; q++)
                    if (!close_to(dt, getd(dt, res, q), want[q], 4))
                        fail_msg("%s %s layout %d [%d] = %a, want %a", lg ? "log_softmax" : "softmax",
                                 g_dtn[dt], layout, q, getd(dt, res, q), want[q]);
            }
}

/* ------------------------------------------------------------------ indexing */

/* a distinct value per element (q) of dt */
static void put_q(int32_t dt, void *b, int64_t i, int64_t q)
{
    if (dt == EM_BOOL)
        puti(dt, b, i, q % 3 == 1);
    else if (is_float(dt))
        putd(dt, b, i, (double)q + 0.25);
    else
        puti(dt, b, i, dt == EM_I64 ? INT64_MIN + 1000 * q : q * 37);
}

static void test_index_select(void **state)
{
    (void)state;
    /* x (outer 2, n 4, inner 3) stored (n, inner, outer): (o, j, i) at o + 2*(3j + i);
     * index [3, 0, 3, 1, 2] at stride 2; out (2, 5, 3) contiguous */
    int64_t xs[3] = {2, 4, 3}, xst[3] = {1, 6, 2};
    int64_t ixv[10] = {3, -1, 0, -1, 3, -1, 1, -1, 2, -1}, ish[1] = {5}, ist[1] = {2};
    int64_t os[3] = {2, 5, 3}, ost[3] = {15, 3, 1};
    for (int32_t dt = 0; dt < NDT; dt++) {
        int64_t xb[24], ob[30];
        for (int q = 0; q < 24; q++)
            put_q(dt, xb, q, q);
        memset(ob, 0, sizeof ob);
        em_kview x = mkv(xb, dt, 0, 3, xs, xst), ix = mkv(ixv, EM_I64, 0, 1, ish, ist),
                 o = mkv(ob, dt, 0, 3, os, ost);
        if (callk(K(index_select), &o, NULL, &x, &ix, NULL, 0, 0, NULL, 0) != EM_OK)
            fail_msg("index_select %s: %s", g_dtn[dt], g_msg);
        for (int oo = 0; oo < 2; oo++)
            for (int j = 0; j < 5; j++)
                for (int i = 0; i < 3; i++) {
                    int64_t k = ixv[2 * j];
                    assert_true(getd(dt, ob, 15 * oo + 3 * j + i) ==
                                getd(dt, xb, oo + 2 * (3 * k + i)));
                }
    }
    /* an index out of range fails without writing */
    int64_t bad[5] = {0, 1, 4, 2, 0}, s1[1] = {1};
    float xb[24] = {0}, ob[30];
    memset(ob, 0x3c, sizeof ob);
    em_kview x = mkv(xb, EM_F32, 0, 3, xs, xst), ix = mkv(bad, EM_I64, 0, 1, ish, s1),
             o = mkv(ob, EM_F32, 0, 3, os, ost);
    assert_int_equal(callk(K(index_select), &o, NULL, &x, &ix, NULL, 0, 0, NULL, 0), EM_ERR_INVALID);
    assert_non_null(strstr(g_msg, "index 4 is out of bounds"));
    for (int i = 0; i < 30; i++)
        assert_true(((unsigned char *)ob)[i * 4] == 0x3c);
}

static void test_gather(void **state)
{
    (void)state;
    /* PyTorch 1.13: gather([[1, 2], [3, 4]], 1, [[0, 0], [1, 0]]) = [[1, 1], [4, 3]] */
    {
        int64_t x[4] = {1, 2, 3, 4}, ix[4] = {0, 0, 1, 0}, o[4];
        int64_t s22[2] = {2, 2}, st[2] = {2, 1}, dim = 1;
        em_kview vx = mkv(x, EM_I64, 0, 2, s22, st), vi = mkv(ix, EM_I64, 0, 2, s22, st),
                 vo = mkv(o, EM_I64, 0, 2, s22, st);
        assert_int_equal(callk(K(gather), &vo, NULL, &vx, &vi, NULL, 0, 0, &dim, 1), EM_OK);
        assert_true(o[0] == 1 && o[1] == 1 && o[2] == 4 && o[3] == 3);
    }
    /* src (3, 4) stored transposed: (r, c) at r + 3c; index (2, 3), smaller than src in
     * both dims, stored transposed too: (i, j) at i + 2j; along dim 0 and dim 1 */
    int64_t xs[2] = {3, 4}, xst[2] = {1, 3}, is[2] = {2, 3}, ist[2] = {1, 2}, ost[2] = {3, 1};
    const int64_t ivals[2][6] = {{2, 0, 1, 1, 0, 2}, {3, 0, 1, 3, 2, 2}};
    for (int32_t dt = 0; dt < NDT; dt++)
        for (int64_t dim = 0; dim < 2; dim++) {
            int64_t xb[12], ob[6], ib[6];
            for (int q = 0; q < 12; q++)
                put_q(dt, xb, q, q);
            for (int q = 0; q < 6; q++)
                ib[q] = ivals[dim][q];
            em_kview x = mkv(xb, dt, 0, 2, xs, xst), ix = mkv(ib, EM_I64, 0, 2, is, ist),
                     o = mkv(ob, dt, 0, 2, is, ost);
            if (callk(K(gather), &o, NULL, &x, &ix, NULL, 0, 0, &dim, 1) != EM_OK)
                fail_msg("gather %s dim %lld: %s", g_dtn[dt], (long long)dim, g_msg);
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++) {
                    int64_t k = ib[i + 2 * j];
                    int64_t r = dim == 0 ? k : i, c = dim == 0 ? j : k;
                    assert_true(getd(dt, ob, 3 * i + j) == getd(dt, xb, r + 3 * c));
                }
        }
    /* out of range along dim 0 (size 3) */
    int64_t xb[12] = {0}, ob[6] = {0}, ib[6] = {0, 1, 2, 3, 0, 0}, dim = 0;
    em_kview x = mkv(xb, EM_I64, 0, 2, xs, xst), ix = mkv(ib, EM_I64, 0, 2, is, ist),
             o = mkv(ob, EM_I64, 0, 2, is, ost);
    assert_int_equal(callk(K(gather), &o, NULL, &x, &ix, NULL, 0, 0, &dim, 1), EM_ERR_INVALID);
    assert_non_null(strstr(g_msg, "index 3 is out of bounds for dimension 0 with size 3"));
}

/* out[q with q[dim] = index[q]] += src[q], sequentially in row-major order of q */
static void scatter_ref(int32_t dt, void *out, const int64_t *ost, const int64_t *ix,
                        const int64_t *ist, const void *src, const int64_t *sst,
                        const int64_t *shape, int dim)
{
    for (int64_t i = 0; i < shape[0]; i++)
        for (int64_t j = 0; j < shape[1]; j++) {
            int64_t k = ix[i * ist[0] + j * ist[1]];
            int64_t p = dim == 0 ? k * ost[0] + j * ost[1] : i * ost[0] + k * ost[1];
            int64_t sp = i * sst[0] + j * sst[1];
            if (is_float(dt))
                putd(dt, out, p, dt == EM_F32 ? (double)((float)getd(dt, out, p) +
                                                         (float)getd(dt, src, sp))
                                              : getd(dt, out, p) + getd(dt, src, sp));
            else
                puti(dt, out, p, (int64_t)((uint64_t)geti(dt, out, p) + (uint64_t)geti(dt, src, sp)));
        }
}

static void test_scatter_add(void **state)
{
    (void)state;
    /* out (3, 4) transposed; index and src (2, 4), src strided; collisions */
    int64_t os[2] = {3, 4}, ost[2] = {1, 3}, is[2] = {2, 4}, ist[2] = {4, 1}, sst[2] = {1, 3};
    const int64_t ivals[2][8] = {{0, 2, 2, 1, 0, 2, 1, 1}, {3, 3, 0, 1, 3, 2, 3, 3}};
    const int32_t dts[5] = {EM_F32, EM_F64, EM_I64, EM_I32, EM_U8};
    for (int t = 0; t < 5; t++)
        for (int dim = 0; dim < 2; dim++) {
            int32_t dt = dts[t];
            int64_t ob[12], rb[12], sb[8], ib[8];
            for (int q = 0; q < 12; q++) {
                put_q(dt, ob, q, q + 100);
                put_q(dt, rb, q, q + 100);
            }
            for (int q = 0; q < 8; q++) {
                put_q(dt, sb, q, 3 * q + 1);
                ib[q] = ivals[dim][q];
            }
            if (dt == EM_U8)
                puti(dt, sb, 0, 250);    /* wraps */
            int64_t dm = dim;
            em_kview o = mkv(ob, dt, 0, 2, os, ost), ix = mkv(ib, EM_I64, 0, 2, is, ist),
                     s = mkv(sb, dt, 0, 2, is, sst);
            if (callk(K(scatter_add), &o, NULL, &ix, &s, NULL, 0, 0, &dm, 1) != EM_OK)
                fail_msg("scatter_add %s dim %d: %s", g_dtn[dt], dim, g_msg);
            scatter_ref(dt, rb, ost, ib, ist, sb, sst, is, dim);
            for (int q = 0; q < 12; q++)
                if (!same_double(getd(dt, ob, q), getd(dt, rb, q)) || geti(dt, ob, q) != geti(dt, rb, q))
                    fail_msg("scatter_add %s dim %d [%d]: %g, want %g", g_dtn[dt], dim, q,
                             getd(dt, ob, q), getd(dt, rb, q));
        }
    /* PyTorch 1.13: zeros(3, 5).scatter_add_(0, [[0, 1, 2, 0, 0], [2, 0, 0, 1, 2]],
     * ones(2, 5)) = [[1, 1, 1, 1, 1], [0, 1, 0, 1, 0], [1, 0, 1, 0, 1]] */
    float o[15] = {0}, s[10];
    int64_t ix[10] = {0, 1, 2, 0, 0, 2, 0, 0, 1, 2}, dim = 0;
    for (int i = 0; i < 10; i++)
        s[i] = 1;
    int64_t o35[2] = {3, 5}, o35s[2] = {5, 1}, i25[2] = {2, 5};
    em_kview vo = mkv(o, EM_F32, 0, 2, o35, o35s), vi = mkv(ix, EM_I64, 0, 2, i25, o35s),
             vs = mkv(s, EM_F32, 0, 2, i25, o35s);
    assert_int_equal(callk(K(scatter_add), &vo, NULL, &vi, &vs, NULL, 0, 0, &dim, 1), EM_OK);
    const float want[15] = {1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
    for (int i = 0; i < 15; i++)
        assert_true(o[i] == want[i]);
    /* bad index: nothing written */
    ix[7] = 3;
    assert_int_equal(callk(K(scatter_add), &vo, NULL, &vi, &vs, NULL, 0, 0, &dim, 1), EM_ERR_INVALID);
    for (int i = 0; i < 15; i++)
        assert_true(o[i] == want[i]);
}

/* ------------------------------------------------------------------ threads */

/* Big enough for the pool: results of 3 threads equal those of 1, bit for bit, and
 * scatter_add's equal a sequential reference (collisions added in index order). */
static void test_threads_deterministic(void **state)
{
    (void)state;
    em_backend be3;
    void *dev3;
    open_inst(&be3, &dev3, "3");
    const int64_t R = 4096, C = 24, N = R * C;
    float *src = malloc(sizeof(float) * (size_t)N), *o1 = calloc(64 * C, sizeof(float)),
          *o3 = calloc(64 * C, sizeof(float)), *ref = calloc(64 * C, sizeof(float));
    int64_t *ix = malloc(sizeof(int64_t) * (size_t)N), *isrc = malloc(sizeof(int64_t) * (size_t)N);
    assert_true(src && o1 && o3 && ref && ix && isrc);
    uint64_t r = 88172645463325252ull;
    for (int64_t i = 0; i < N; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        src[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0) * 1000.0f;
        ix[i] = (int64_t)(r % 64);
        isrc[i] = (int64_t)r;
    }
    int64_t is[2] = {R, C}, ist[2] = {C, 1}, os[2] = {64, C}, dim = 0;
    em_kview vo1 = mkv(o1, EM_F32, 0, 2, os, ist), vo3 = mkv(o3, EM_F32, 0, 2, os, ist);
    em_kview vi = mkv(ix, EM_I64, 0, 2, is, ist), vs = mkv(src, EM_F32, 0, 2, is, ist);
    em_kargs k;
    memset(&k, 0, sizeof k);
    const em_kview *ins[2] = {&vi, &vs}, *outs[1] = {&vo3};
    k.struct_size = sizeof k;
    k.out = &vo3;
    k.in[0] = &vi;
    k.in[1] = &vs;
    k.n_out = 1;
    k.outs = outs;
    k.n_in = 2;
    k.ins = ins;
    k.ip = &dim;
    k.n_ip = 1;
    assert_int_equal(be3.ops->scatter_add(dev3, &k), EM_OK);
    assert_int_equal(callk(K(scatter_add), &vo1, NULL, &vi, &vs, NULL, 0, 0, &dim, 1), EM_OK);
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++)
            ref[ix[i * C + j] * C + j] += src[i * C + j];
    assert_memory_equal(o1, o3, sizeof(float) * 64 * (size_t)C);
    assert_memory_equal(o1, ref, sizeof(float) * 64 * (size_t)C);

    /* sum (i64) and prod over dim 0; max_dim and softmax over the middle of (1, R, C) */
    int64_t s1[24], s3[24], one_c[2] = {1, C};
    em_kview vin = mkv(isrc, EM_I64, 0, 2, is, ist), vs1 = mkv(s1, EM_I64, 0, 2, one_c, ist),
             vs3 = mkv(s3, EM_I64, 0, 2, one_c, ist);
    int64_t sh3[3] = {1, R, C}, st3[3] = {N, C, 1}, oh3[3] = {1, 1, C}, ost3[3] = {C, C, 1};
    em_kview f3 = mkv(src, EM_F32, 0, 3, sh3, st3);
    float *sm1 = malloc(sizeof(float) * (size_t)N), *sm3 = malloc(sizeof(float) * (size_t)N);
    float mv1[64], mv3[64];
    int64_t mi1[64], mi3[64];
    em_kview vsm1 = mkv(sm1, EM_F32, 0, 3, sh3, st3), vsm3 = mkv(sm3, EM_F32, 0, 3, sh3, st3);
    em_kview vm1 = mkv(mv1, EM_F32, 0, 3, oh3, ost3), vm3 = mkv(mv3, EM_F32, 0, 3, oh3, ost3);
    em_kview vi1 = mkv(mi1, EM_I64, 0, 3, oh3, ost3), vi3 = mkv(mi3, EM_I64, 0, 3, oh3, ost3);
    for (int kind = 0; kind < 4; kind++) {
        const em_backend_ops *ops[2] = {g_ops, be3.ops};
        void *devs[2] = {g_dev, dev3};
        for (int w = 0; w < 2; w++) {
            em_kargs a;
            memset(&a, 0, sizeof a);
            const em_kview *aouts[2], *ains[1];
            a.struct_size = sizeof a;
            a.p[0] = 1.0;
            a.outs = aouts;
            a.ins = ains;
            a.n_in = 1;
            a.n_out = 1;
            em_status st;
            if (kind <= 1) {
                a.out = aouts[0] = w ? &vs3 : &vs1;
                a.in[0] = ains[0] = &vin;
                st = kind == 0 ? ops[w]->sum(devs[w], &a) : ops[w]->prod(devs[w], &a);
            } else if (kind == 2) {
                a.out = aouts[0] = w ? &vm3 : &vm1;
                aouts[1] = w ? &vi3 : &vi1;
                a.n_out = 2;
                a.in[0] = ains[0] = &f3;
                st = ops[w]->max_dim(devs[w], &a);
            } else {
                a.out = aouts[0] = w ? &vsm3 : &vsm1;
                a.in[0] = ains[0] = &f3;
                st = ops[w]->softmax(devs[w], &a);
            }
            assert_int_equal(st, EM_OK);
        }
        if (kind <= 1)
            assert_memory_equal(s1, s3, sizeof s1);
        else if (kind == 2) {
            assert_memory_equal(mv1, mv3, sizeof(float) * (size_t)C);
            assert_memory_equal(mi1, mi3, sizeof(int64_t) * (size_t)C);
        } else {
            assert_memory_equal(sm1, sm3, sizeof(float) * (size_t)N);
        }
        if (kind == 0) {
            for (int64_t j = 0; j < C; j++) {
                uint64_t want = 0;
                for (int64_t i = 0; i < R; i++)
                    want += (uint64_t)isrc[i * C + j];
                assert_true(s1[j] == (int64_t)want);
            }
        }
    }
    free(sm1);
    free(sm3);
    free(src);
    free(o1);
    free(o3);
    free(ref);
    free(ix);
    free(isrc);
    close_inst(&be3, dev3);
}

/* relu keeps -0 and NaN (PyTorch); relu_backward masks where y <= 0 */
static void test_relu(void **state)
{
    (void)state;
    const double x[6] = {-0.0, 0.0, NAN, -1.5, 2.0, -INFINITY};
    const double want[6] = {-0.0, 0.0, NAN, 0.0, 2.0, 0.0};
    int64_t n6[1] = {6}, s1[1] = {1};
    for (int32_t dt = EM_F32; dt <= EM_F64; dt++) {
        double xb[6], ob[6];
        for (int i = 0; i < 6; i++)
            putd(dt, xb, i, x[i]);
        em_kview a = mkv(xb, dt, 0, 1, n6, s1), o = mkv(ob, dt, 0, 1, n6, s1);
        assert_int_equal(callk(K(relu), &o, NULL, &a, NULL, NULL, 0, 0, NULL, 0), EM_OK);
        for (int i = 0; i < 6; i++)
            if (!same_double(getd(dt, ob, i), want[i]))
                fail_msg("relu %s(%g) = %g", g_dtn[dt], x[i], getd(dt, ob, i));
        /* backward with y = relu(x): g passes where y > 0 or y is NaN */
        double gb[6];
        for (int i = 0; i < 6; i++)
            putd(dt, gb, i, 10 + i);
        em_kview g = mkv(gb, dt, 0, 1, n6, s1);
        double yb[6];
        memcpy(yb, ob, sizeof yb);
        em_kview y = mkv(yb, dt, 0, 1, n6, s1);
        assert_int_equal(callk(K(relu_backward), &o, NULL, &g, &y, NULL, 0, 0, NULL, 0), EM_OK);
        const double wg[6] = {0, 0, 12, 0, 14, 0};
        for (int i = 0; i < 6; i++)
            assert_true(getd(dt, ob, i) == wg[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_masks),
        cmocka_unit_test(test_int_unary),
        cmocka_unit_test(test_int_binary),
        cmocka_unit_test(test_fill_where_masked),
        cmocka_unit_test(test_copy_all),
        cmocka_unit_test(test_sum_i64),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_math_unary),
        cmocka_unit_test(test_floor_divide_remainder),
        cmocka_unit_test(test_pow),
        cmocka_unit_test(test_prod),
        cmocka_unit_test(test_max_min_dim),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_index_select),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_scatter_add),
        cmocka_unit_test(test_threads_deterministic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
