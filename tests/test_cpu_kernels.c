/* tests/test_cpu_kernels.c — the cpu backend's kernels of plugin ABI 1.0 on the integer
 * dtypes of 1.2, called directly through its ops table on small strided and broadcast
 * views, against references computed here (and values from PyTorch 1.13):
 *  - the dtype masks declare every dtype the core uses (core/plugin/kernels.c), for the
 *    kernels of 1.2 too (the fallback for other backends relies on it);
 *  - fill and the scalar ops take their integer scalars exactly from ip[]; arithmetic
 *    wraps; copy converts every pair of dtypes (float to integer truncating, saturated,
 *    NaN to 0); comparisons, where and masked_fill on every dtype; sum with an i64 output;
 *  - relu keeps -0 and NaN;
 *  - results of the kernels of 1.2 do not depend on the thread count.
 * The kernels of 1.2 themselves are tested in test_cpu_kernels_12.c. */
#include "cpu_kernels_harness.h"

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
    HAS(adam, F); HAS(sgd, F);
#undef HAS
}

/* ------------------------------------------------------------------ integer dtypes, 1.0 kernels */


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
        cmocka_unit_test(test_threads_deterministic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
