/* tests/test_cpu_kernels_12.c — the cpu backend's kernels of plugin ABI 1.2, called
 * directly through its ops table on small strided views, for every dtype the core uses
 * them with, against values from PyTorch 1.13 and references computed here:
 *  - log1p, expm1, sin, cos, erf, floor, ceil, round, sign with NaN, -0 and infinities;
 *  - pow; floor_divide and remainder (PyTorch on floats, Python on integers, INT64_MIN //
 *    -1 wrapping); prod (i64 wrapping); max_dim / min_dim (the first NaN wins, first index
 *    on ties); softmax / log_softmax (all -inf rows NaN), strided and in place;
 *  - index_select, gather, scatter_add on every dtype, collisions added in index order,
 *    out-of-range indices refused before anything is written. */
#include "cpu_kernels_harness.h"

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
    /* sign: 0 for NaN, as PyTorch 1.13 */
    {0, 0, 0, 1, -1, 1, 1, 1, -1, -1, 1, 1, -1, 1},
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

/* Contiguous f32 rows (the fast path: a vectorised exp): every row length 1..40 (the 8-lane
 * tails), rows with -inf, large spreads, a NaN; against double-precision references, and the
 * portable copy ([cpu] isa = generic) against the AVX2 one bit for bit. */
static void run_rows(void *dev, em_kernel_fn f, float *x, float *o, int64_t rows, int64_t n)
{
    int64_t shp[3] = {rows, n, 1}, st[3] = {n, 1, 1};
    em_kview in = mkv(x, EM_F32, 0, 3, shp, st), out = mkv(o, EM_F32, 0, 3, shp, st);
    em_kargs k;
    memset(&k, 0, sizeof k);
    k.struct_size = sizeof k;
    const em_kview *outs[1] = {&out}, *ins[1] = {&in};
    k.out = &out;
    k.in[0] = &in;
    k.n_out = 1;
    k.outs = outs;
    k.n_in = 1;
    k.ins = ins;
    assert_int_equal(f(dev, &k), EM_OK);
}

static void test_softmax_rows(void **state)
{
    (void)state;
    enum { R = 4, NMAX = 40 };
    static float x[R * NMAX], o[R * NMAX], og[R * NMAX];
    em_backend be2;
    void *dev2;
    open_inst_isa(&be2, &dev2, "1", "generic");
    for (int lg = 0; lg < 2; lg++) {
        em_kernel_fn f = lg ? K(log_softmax) : K(softmax);
        for (int64_t n = 1; n <= NMAX; n++) {
            for (int64_t j = 0; j < n; j++) {
                x[j] = (float)(j % 7) * 0.75f - 2.0f;                 /* ordinary */
                x[n + j] = j % 3 ? -INFINITY : (float)j * 3.0f;        /* masked */
                x[2 * n + j] = (float)j * -11.0f;                       /* spread past -87 */
                x[3 * n + j] = j == n / 2 ? NAN : 1.0f;                 /* a NaN */
            }
            run_rows(g_dev, f, x, o, R, n);
            run_rows(dev2, lg ? be2.ops->log_softmax : be2.ops->softmax, x, og, R, n);
            assert_memory_equal(o, og, sizeof(float) * (size_t)(R * n));
            for (int r = 0; r < 3; r++) {
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < n; j++)
                    mx = x[r * n + j] > mx ? x[r * n + j] : mx;
                for (int64_t j = 0; j < n; j++)
                    sum += exp((double)x[r * n + j] - mx);
                for (int64_t j = 0; j < n; j++) {
                    double d = (double)x[r * n + j] - mx;
                    double want = lg ? d - log(sum) : exp(d) / sum;
                    double got = o[r * n + j];
                    if (!(got == want || fabs(got - want) <= 1e-6 * fabs(want) + 1e-37))
                        fail_msg("%s n %lld row %d [%lld] = %a, want %a",
                                 lg ? "log_softmax" : "softmax", (long long)n, r, (long long)j,
                                 got, want);
                }
            }
            for (int64_t j = 0; j < n; j++)
                assert_true(isnan(o[3 * n + j]));
        }
    }
    close_inst(&be2, dev2);
}

/* ------------------------------------------------------------------ indexing */


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
            /* src (2, 4) at strides (1, 3) spans 11 elements */
            int64_t ob[12], rb[12], sb[11], ib[8];
            for (int q = 0; q < 12; q++) {
                put_q(dt, ob, q, q + 100);
                put_q(dt, rb, q, q + 100);
            }
            for (int q = 0; q < 11; q++)
                put_q(dt, sb, q, 3 * q + 1);
            for (int q = 0; q < 8; q++)
                ib[q] = ivals[dim][q];
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_math_unary),
        cmocka_unit_test(test_floor_divide_remainder),
        cmocka_unit_test(test_pow),
        cmocka_unit_test(test_prod),
        cmocka_unit_test(test_max_min_dim),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_softmax_rows),
        cmocka_unit_test(test_index_select),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_scatter_add),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
