/* tests/test_ops.c — forward ops on one backend (EM_TEST_BACKEND) against straightforward
 * reference loops in double: creation, RNG, broadcasting, views, every elementwise op,
 * comparisons, selection, reductions, matrix products, in-place forms, errors, memory.
 * Built once per backend; skips (TAP plan 1..0) where that backend has no device. */
#include "backend_harness.h"

#include <ember/philox.h>

static const em_dtype float_dtypes[] = {EM_F32, EM_F64};

/* Row-major index of an input of shape (nd, shape) broadcast into (ond, oshape). */
static int64_t bcast_index(int64_t lin, int ond, const int64_t *oshape, int nd, const int64_t *shape)
{
    int64_t idx = 0, stride = 1;
    for (int d = ond - 1; d >= 0; d--) {
        int64_t coord = lin % oshape[d];
        lin /= oshape[d];
        int j = d - (ond - nd);
        if (j >= 0) {
            if (shape[j] != 1)
                idx += coord * stride;
            stride *= shape[j];
        }
    }
    return idx;
}

static int64_t numel_of(int nd, const int64_t *s)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= s[i];
    return n;
}

/* ------------------------------------------------------------------ creation */

static void test_creation(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        double *z = to_doubles(em_zeros(g_ctx, dt, EM_SHAPE(2, 3)));
        double *o = to_doubles(em_ones(g_ctx, dt, EM_SHAPE(2, 3)));
        double *f = to_doubles(em_full(g_ctx, dt, EM_SHAPE(2, 3), -2.5));
        for (int i = 0; i < 6; i++) {
            assert_true(z[i] == 0.0);
            assert_true(o[i] == 1.0);
            assert_true(f[i] == -2.5);
        }
        free(z);
        free(o);
        free(f);
        em_tensor *a = em_arange(g_ctx, dt, 0, 1, 0.1);
        assert_int_equal(em_tensor_numel(a), 10);
        double *av = to_doubles(a);
        for (int i = 0; i < 10; i++)
            assert_true(close_enough(av[i], i * 0.1, tol_for(dt)));
        free(av);
        assert_int_equal(em_tensor_numel(em_arange(g_ctx, dt, 5, 0, -2)), 3);
        em_tensor *s = em_scalar(g_ctx, dt, 3.25);
        assert_int_equal(em_tensor_ndim(s), 0);
        assert_true(em_item(s) == 3.25);
    }
    const uint8_t mask[4] = {1, 0, 0, 1};
    em_tensor *m = em_tensor_from_data(g_ctx, EM_BOOL, EM_SHAPE(4), mask);
    uint8_t back[4];
    assert_int_equal(em_tensor_to_host(m, back, sizeof back), EM_OK);
    assert_memory_equal(back, mask, 4);
    /* empty tensors work end to end */
    em_tensor *e = em_zeros(g_ctx, EM_F32, EM_SHAPE(0, 3));
    assert_int_equal(em_tensor_numel(e), 0);
    assert_non_null(em_add(e, e));
    assert_true(em_item(em_sum(e)) == 0.0);
    assert_ok_ctx();
}

static void test_rng(void **state)
{
    (void)state;
    em_manual_seed(g_ctx, 7);
    em_tensor *u = em_rand(g_ctx, EM_F32, EM_SHAPE(1000));
    em_tensor *n = em_randn(g_ctx, EM_F64, EM_SHAPE(10, 100));
    double *uv = to_doubles(u), *nv = to_doubles(n);
    for (int i = 0; i < 1000; i++) {
        float want = em_philox_uniform01_f32(em_philox4x32_10(7, (uint64_t)i));
        assert_true((float)uv[i] == want);   /* uniform is bit-exact across backends */
    }
    for (int i = 0; i < 1000; i++) {
        double want = em_philox_normal(em_philox4x32_10(7, 1000 + (uint64_t)i));
        assert_true(close_enough(nv[i], want, 1e-13));
    }
    free(uv);
    free(nv);
    /* the counter advances by numel: two draws of 10 == one draw of 20 */
    em_manual_seed(g_ctx, 99);
    double *a = to_doubles(em_rand(g_ctx, EM_F64, EM_SHAPE(10)));
    double *b = to_doubles(em_rand(g_ctx, EM_F64, EM_SHAPE(10)));
    em_manual_seed(g_ctx, 99);
    double *c = to_doubles(em_rand(g_ctx, EM_F64, EM_SHAPE(20)));
    for (int i = 0; i < 10; i++) {
        assert_true(a[i] == c[i]);
        assert_true(b[i] == c[10 + i]);
        assert_true(a[i] >= 0 && a[i] < 1);
    }
    free(a);
    free(b);
    free(c);
    /* normal statistics are sane */
    em_manual_seed(g_ctx, 1);
    em_tensor *big = em_randn(g_ctx, EM_F32, EM_SHAPE(100000));
    double mean = em_item(em_mean(big));
    double var = em_item(em_mean(em_pow(em_sub_scalar(big, mean), 2)));
    assert_true(fabs(mean) < 0.02);
    assert_true(fabs(var - 1.0) < 0.02);
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ binary */

typedef em_tensor *(*binop_fn)(em_tensor *, em_tensor *);

static double ref_binary(int op, double a, double b)
{
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return isnan(a) || isnan(b) ? NAN : fmax(a, b);
    default: return isnan(a) || isnan(b) ? NAN : fmin(a, b);
    }
}

static const binop_fn binops[] = {em_add, em_sub, em_mul, em_div, em_maximum, em_minimum};

static void check_binary(em_dtype dt, int na, const int64_t *sa, int nb, const int64_t *sb,
                         int nout, const int64_t *sout)
{
    int64_t n_a = numel_of(na, sa), n_b = numel_of(nb, sb), n_o = numel_of(nout, sout);
    double *va = rnd_array(n_a, -2, 2), *vb = rnd_array(n_b, 0.5, 2.5);
    if (n_a > 2)
        va[1] = vb[0];   /* a tie for maximum/minimum */
    em_tensor *a = from_doubles(dt, na, sa, va), *b = from_doubles(dt, nb, sb, vb);
    /* inputs as the device holds them (f32 rounding) */
    double *ra = to_doubles(a), *rb = to_doubles(b);
    for (int op = 0; op < 6; op++) {
        em_tensor *o = binops[op](a, b);
        assert_non_null(o);
        assert_int_equal(em_tensor_ndim(o), nout);
        for (int d = 0; d < nout; d++)
            assert_int_equal(em_tensor_size(o, d), sout[d]);
        double *got = to_doubles(o), *want = malloc(sizeof(double) * (size_t)(n_o ? n_o : 1));
        for (int64_t i = 0; i < n_o; i++) {
            double x = ra[bcast_index(i, nout, sout, na, sa)], y = rb[bcast_index(i, nout, sout, nb, sb)];
            want[i] = ref_binary(op, x, y);
            if (dt == EM_F32)
                want[i] = (float)want[i];
        }
        assert_close_arrays(got, want, n_o, tol_for(dt));
        free(got);
        free(want);
    }
    free(va);
    free(vb);
    free(ra);
    free(rb);
}

static void test_binary_broadcast(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        check_binary(dt, EM_SHAPE(3, 4), EM_SHAPE(3, 4), EM_SHAPE(3, 4));
        check_binary(dt, EM_SHAPE(3, 4), EM_SHAPE(4), EM_SHAPE(3, 4));
        check_binary(dt, EM_SHAPE(3, 1), EM_SHAPE(1, 5), EM_SHAPE(3, 5));
        check_binary(dt, EM_SHAPE(2, 1, 4), EM_SHAPE(3, 1), EM_SHAPE(2, 3, 4));
        check_binary(dt, EM_SHAPE(5), EM_SCALAR_SHAPE, EM_SHAPE(5));
        check_binary(dt, EM_SCALAR_SHAPE, EM_SCALAR_SHAPE, EM_SCALAR_SHAPE);
        check_binary(dt, EM_SHAPE(1000, 33), EM_SHAPE(1, 33), EM_SHAPE(1000, 33));
        check_binary(dt, EM_SHAPE(2, 3, 4, 5), EM_SHAPE(3, 1, 5), EM_SHAPE(2, 3, 4, 5));
        check_binary(dt, EM_SHAPE(2, 1, 2, 1, 2, 1, 2, 1), EM_SHAPE(2, 1, 2, 1, 2, 1, 2),
                     EM_SHAPE(2, 2, 2, 2, 2, 2, 2, 2));
    }
    assert_ok_ctx();
}

static void test_binary_strided(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        double *va = rnd_array(12, -3, 3), *vb = rnd_array(12, 1, 2);
        em_tensor *a = em_t(from_doubles(dt, EM_SHAPE(4, 3), va));   /* [3,4], strides (1,3) */
        em_tensor *b = from_doubles(dt, EM_SHAPE(3, 4), vb);
        assert_false(em_tensor_is_contiguous(a));
        double *ra = to_doubles(a);   /* the copy kernel un-transposes */
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                assert_true(close_enough(ra[i * 4 + j], va[j * 3 + i], tol_for(dt)));
        for (int op = 0; op < 6; op++) {
            double *got = to_doubles(binops[op](a, b));
            for (int i = 0; i < 12; i++) {
                double want = ref_binary(op, ra[i], dt == EM_F32 ? (float)vb[i] : vb[i]);
                assert_true(close_enough(got[i], dt == EM_F32 ? (float)want : want, tol_for(dt)));
            }
            free(got);
        }
        /* a transposed view against an expanded one */
        em_tensor *row = from_doubles(dt, EM_SHAPE(1, 4), vb);
        em_tensor *ex = em_expand(row, EM_SHAPE(3, 4));
        double *got = to_doubles(em_mul(a, ex));
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++) {
                double want = ra[i * 4 + j] * (dt == EM_F32 ? (float)vb[j] : vb[j]);
                assert_true(close_enough(got[i * 4 + j], dt == EM_F32 ? (float)want : want, tol_for(dt)));
            }
        free(got);
        free(ra);
        free(va);
        free(vb);
    }
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ unary and scalar */

typedef struct unary_case {
    const char *name;
    em_tensor *(*fn)(em_tensor *);
    double (*ref)(double);
    double lo, hi;
} unary_case;

static double r_neg(double x) { return -x; }
static double r_relu(double x) { return isnan(x) ? x : x > 0 ? x : 0; }
static double r_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static void test_unary(void **state)
{
    (void)state;
    const unary_case cases[] = {
        {"neg", em_neg, r_neg, -3, 3},     {"exp", em_exp, exp, -5, 5},
        {"log", em_log, log, 0.01, 10},    {"sqrt", em_sqrt, sqrt, 0, 9},
        {"abs", em_abs, fabs, -3, 3},      {"relu", em_relu, r_relu, -3, 3},
        {"tanh", em_tanh, tanh, -4, 4},    {"sigmoid", em_sigmoid, r_sigmoid, -30, 30},
    };
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            double *v = rnd_array(257, cases[c].lo, cases[c].hi);
            em_tensor *x = from_doubles(dt, EM_SHAPE(257), v);
            double *rx = to_doubles(x);
            double *got = to_doubles(cases[c].fn(x));
            for (int i = 0; i < 257; i++) {
                double want = cases[c].ref(rx[i]);
                if (!close_enough(got[i], want, dt == EM_F32 ? 1e-5 : 1e-12))
                    fail_msg("%s(%s) element %d: got %.17g want %.17g", cases[c].name,
                             em_dtype_name(dt), i, got[i], want);
            }
            free(v);
            free(rx);
            free(got);
        }
        /* NaN propagates through relu, as PyTorch */
        double nanv[3] = {NAN, -1, 2};
        double *r = to_doubles(em_relu(from_doubles(dt, EM_SHAPE(3), nanv)));
        assert_true(isnan(r[0]) && r[1] == 0 && r[2] == 2);
        free(r);
    }
    assert_ok_ctx();
}

static void test_scalar_ops(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        double *v = rnd_array(100, 0.25, 4);
        em_tensor *x = from_doubles(dt, EM_SHAPE(10, 10), v);
        double *rx = to_doubles(x);
        struct {
            em_tensor *t;
            int kind;
            double s;
        } cs[] = {
            {em_add_scalar(x, 1.5), 0, 1.5},  {em_sub_scalar(x, 1.5), 1, 1.5},
            {em_rsub_scalar(x, 1.5), 2, 1.5}, {em_mul_scalar(x, -3), 3, -3},
            {em_div_scalar(x, 3), 4, 3},      {em_rdiv_scalar(x, 2), 5, 2},
            {em_pow(x, 2), 6, 2},             {em_pow(x, 3), 6, 3},
            {em_pow(x, 0.5), 6, 0.5},         {em_pow(x, -1), 6, -1},
            {em_pow(x, 1.7), 6, 1.7},         {em_pow(x, 0), 6, 0},
        };
        for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
            double *got = to_doubles(cs[c].t);
            for (int i = 0; i < 100; i++) {
                double a = rx[i], s = cs[c].s, want;
                switch (cs[c].kind) {
                case 0: want = a + s; break;
                case 1: want = a - s; break;
                case 2: want = s - a; break;
                case 3: want = a * s; break;
                case 4: want = a / s; break;
                case 5: want = s / a; break;
                default: want = pow(a, s); break;
                }
                if (!close_enough(got[i], want, dt == EM_F32 ? 1e-6 : 1e-13))
                    fail_msg("scalar case %zu (%s) element %d: got %.17g want %.17g", c,
                             em_dtype_name(dt), i, got[i], want);
            }
            free(got);
        }
        free(v);
        free(rx);
    }
    assert_ok_ctx();
}

static void test_clamp(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        double v[6] = {-3, 0, 1.5, 2, 9, NAN};
        em_tensor *x = from_doubles(dt, EM_SHAPE(6), v);
        double *a = to_doubles(em_clamp(x, 0, 2));
        double *b = to_doubles(em_clamp_min(x, 1));
        double *c = to_doubles(em_clamp_max(x, 1));
        double *d = to_doubles(em_clamp(x, 3, 1));   /* min > max: everything becomes max */
        const double wa[6] = {0, 0, 1.5, 2, 2, NAN}, wb[6] = {1, 1, 1.5, 2, 9, NAN},
                     wc[6] = {-3, 0, 1, 1, 1, NAN}, wd[6] = {1, 1, 1, 1, 1, NAN};
        assert_close_arrays(a, wa, 6, 0);
        assert_close_arrays(b, wb, 6, 0);
        assert_close_arrays(c, wc, 6, 0);
        assert_close_arrays(d, wd, 6, 0);
        free(a);
        free(b);
        free(c);
        free(d);
        assert_null(em_clamp(x, NAN, 1));
        assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
        em_context_clear_error(g_ctx);
    }
}

static void test_compare_select(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        double va[6] = {1, 2, 3, 4, NAN, -1}, vb[3] = {2, 2, 5};
        em_tensor *a = from_doubles(dt, EM_SHAPE(2, 3), va), *b = from_doubles(dt, EM_SHAPE(3), vb);
        em_tensor *(*fns[6])(em_tensor *, em_tensor *) = {em_lt, em_le, em_gt, em_ge, em_eq, em_ne};
        for (int op = 0; op < 6; op++) {
            em_tensor *m = fns[op](a, b);
            assert_int_equal(em_tensor_dtype(m), EM_BOOL);
            double *got = to_doubles(m);
            for (int i = 0; i < 6; i++) {
                double x = va[i], y = vb[i % 3];
                bool want = op == 0 ? x < y : op == 1 ? x <= y : op == 2 ? x > y
                          : op == 3 ? x >= y : op == 4 ? x == y : x != y;
                assert_int_equal((int)got[i], (int)want);
            }
            free(got);
        }
        em_tensor *(*sfns[6])(em_tensor *, double) = {em_lt_scalar, em_le_scalar, em_gt_scalar,
                                                      em_ge_scalar, em_eq_scalar, em_ne_scalar};
        for (int op = 0; op < 6; op++) {
            double *got = to_doubles(sfns[op](a, 2));
            for (int i = 0; i < 6; i++) {
                double x = va[i];
                bool want = op == 0 ? x < 2 : op == 1 ? x <= 2 : op == 2 ? x > 2
                          : op == 3 ? x >= 2 : op == 4 ? x == 2 : x != 2;
                assert_int_equal((int)got[i], (int)want);
            }
            free(got);
        }
        /* where and masked_fill, with broadcasting */
        em_tensor *cond = em_gt_scalar(a, 2);             /* [2,3] */
        em_tensor *w = em_where(cond, a, b);              /* [2,3] */
        double *gw = to_doubles(w);
        for (int i = 0; i < 6; i++)
            assert_true(close_enough(gw[i], va[i] > 2 ? va[i] : vb[i % 3], 0));
        free(gw);
        double *gm = to_doubles(em_masked_fill(a, em_lt_scalar(b, 3), -7));   /* mask [3] */
        for (int i = 0; i < 6; i++)
            assert_true(close_enough(gm[i], vb[i % 3] < 3 ? -7 : va[i], 0));
        free(gm);
        bool all;
        assert_int_equal(em_all(em_le_scalar(b, 5), &all), EM_OK);
        assert_true(all);
        assert_int_equal(em_equal(a, a, &all), EM_OK);
        assert_false(all);   /* NaN != NaN */
        assert_int_equal(em_equal(b, b, &all), EM_OK);
        assert_true(all);
    }
    /* comparisons of bool tensors */
    const uint8_t m1[3] = {1, 0, 1}, m2[3] = {1, 1, 0};
    em_tensor *x = em_tensor_from_data(g_ctx, EM_BOOL, EM_SHAPE(3), m1);
    em_tensor *y = em_tensor_from_data(g_ctx, EM_BOOL, EM_SHAPE(3), m2);
    double *e = to_doubles(em_eq(x, y));
    assert_true(e[0] == 1 && e[1] == 0 && e[2] == 0);
    free(e);
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ matrix products */

static void ref_mm(const double *a, const double *b, double *c, int64_t n, int64_t k, int64_t m)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++)
                s += a[i * k + p] * b[p * m + j];
            c[i * m + j] = s;
        }
}

static void check_mm(em_dtype dt, int64_t n, int64_t k, int64_t m, bool ta, bool tb)
{
    double *va = rnd_array(n * k, -1, 1), *vb = rnd_array(k * m, -1, 1);
    /* store transposed when asked, then view back with em_t: same logical matrix */
    em_tensor *a, *b;
    if (ta) {
        double *tr = malloc(sizeof(double) * (size_t)(n * k + 1));
        for (int64_t i = 0; i < n; i++)
            for (int64_t p = 0; p < k; p++)
                tr[p * n + i] = va[i * k + p];
        a = em_t(from_doubles(dt, EM_SHAPE(k, n), tr));
        free(tr);
    } else {
        a = from_doubles(dt, EM_SHAPE(n, k), va);
    }
    if (tb) {
        double *tr = malloc(sizeof(double) * (size_t)(k * m + 1));
        for (int64_t p = 0; p < k; p++)
            for (int64_t j = 0; j < m; j++)
                tr[j * k + p] = vb[p * m + j];
        b = em_t(from_doubles(dt, EM_SHAPE(m, k), tr));
        free(tr);
    } else {
        b = from_doubles(dt, EM_SHAPE(k, m), vb);
    }
    double *ra = to_doubles(a), *rb = to_doubles(b);
    double *want = malloc(sizeof(double) * (size_t)(n * m + 1));
    ref_mm(ra, rb, want, n, k, m);
    em_tensor *c = em_mm(a, b);
    assert_non_null(c);
    double *got = to_doubles(c);
    double tol = (dt == EM_F32 ? 1e-5 : 1e-12) * (double)(k > 1 ? k : 1);
    for (int64_t i = 0; i < n * m; i++)
        if (!close_enough(got[i], want[i], tol))
            fail_msg("mm %lldx%lldx%lld ta=%d tb=%d %s: element %lld got %.10g want %.10g",
                     (long long)n, (long long)k, (long long)m, ta, tb, em_dtype_name(dt),
                     (long long)i, got[i], want[i]);
    free(va);
    free(vb);
    free(ra);
    free(rb);
    free(want);
    free(got);
}

static void test_mm(void **state)
{
    (void)state;
    const int64_t shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {64, 100, 10}, {33, 65, 17}, {3, 0, 4}, {1, 50, 1}};
    for (int k = 0; k < 2; k++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int t = 0; t < 4; t++)
                check_mm(float_dtypes[k], shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t & 2);
    check_mm(EM_F32, 64, 1000, 100, false, false);
    check_mm(EM_F64, 100, 64, 10, true, false);
    assert_ok_ctx();
}

static void test_bmm_matmul(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        double *va = rnd_array(3 * 4 * 5, -1, 1), *vb = rnd_array(3 * 5 * 2, -1, 1);
        em_tensor *a = from_doubles(dt, EM_SHAPE(3, 4, 5), va), *b = from_doubles(dt, EM_SHAPE(3, 5, 2), vb);
        double *ra = to_doubles(a), *rb = to_doubles(b);
        double *got = to_doubles(em_bmm(a, b));
        double *mm = to_doubles(em_matmul(a, b));
        for (int bt = 0; bt < 3; bt++) {
            double want[8];
            ref_mm(ra + bt * 20, rb + bt * 10, want, 4, 5, 2);
            for (int i = 0; i < 8; i++) {
                assert_true(close_enough(got[bt * 8 + i], want[i], tol_for(dt) * 5));
                assert_true(close_enough(mm[bt * 8 + i], want[i], tol_for(dt) * 5));
            }
        }
        free(got);
        free(mm);
        /* matmul: (5,) @ (5,2) -> (2); (4,5) @ (5,) -> (4); (5,)@(5,) -> (); batch broadcast */
        em_tensor *v = from_doubles(dt, EM_SHAPE(5), va);
        em_tensor *w56 = em_view(em_contiguous(em_transpose(b, 0, 1)), EM_SHAPE(5, 6));
        em_tensor *r1 = em_matmul(v, w56);
        assert_non_null(r1);
        assert_int_equal(em_tensor_ndim(r1), 1);
        assert_int_equal(em_tensor_size(r1, 0), 6);
        em_tensor *r2 = em_matmul(em_reshape(a, EM_SHAPE(12, 5)), v);
        assert_int_equal(em_tensor_ndim(r2), 1);
        assert_int_equal(em_tensor_size(r2, 0), 12);
        em_tensor *r3 = em_matmul(v, v);
        assert_int_equal(em_tensor_ndim(r3), 0);
        double dot = 0;
        double *rv = to_doubles(v);
        for (int i = 0; i < 5; i++)
            dot += rv[i] * rv[i];
        assert_true(close_enough(em_item(r3), dot, tol_for(dt) * 5));
        em_tensor *r4 = em_matmul(em_reshape(a, EM_SHAPE(1, 3, 4, 5)), em_reshape(b, EM_SHAPE(3, 1, 5, 2)));
        assert_int_equal(em_tensor_ndim(r4), 4);
        assert_int_equal(em_tensor_size(r4, 0), 3);
        assert_int_equal(em_tensor_size(r4, 1), 3);
        free(rv);
        free(va);
        free(vb);
        free(ra);
        free(rb);
    }
    assert_ok_ctx();
    /* shape errors name both shapes */
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(64, 1000)), *y = em_zeros(g_ctx, EM_F32, EM_SHAPE(100, 10));
    assert_null(em_mm(x, y));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_SHAPE);
    assert_non_null(strstr(em_context_error(g_ctx), "64x1000 and 100x10"));
}

/* ------------------------------------------------------------------ reductions */

static void test_reduce(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        double *v = rnd_array(2 * 3 * 4, -1, 1);
        em_tensor *x = from_doubles(dt, EM_SHAPE(2, 3, 4), v);
        double *rx = to_doubles(x);
        double total = 0;
        for (int i = 0; i < 24; i++)
            total += rx[i];
        assert_true(close_enough(em_item(em_sum(x)), total, tol_for(dt)));
        assert_true(close_enough(em_item(em_mean(x)), total / 24, tol_for(dt)));
        assert_int_equal(em_tensor_ndim(em_sum(x)), 0);
        /* over dims, with and without keepdim, negative dims */
        int d0[1] = {0}, d12[2] = {1, -1}, d02[2] = {0, 2};
        em_tensor *s0 = em_sum_dims(x, 1, d0, false);
        em_tensor *s12 = em_sum_dims(x, 2, d12, true);
        em_tensor *m02 = em_mean_dims(x, 2, d02, false);
        assert_int_equal(em_tensor_ndim(s0), 2);
        assert_int_equal(em_tensor_ndim(s12), 3);
        assert_int_equal(em_tensor_size(s12, 1), 1);
        assert_int_equal(em_tensor_ndim(m02), 1);
        double *g0 = to_doubles(s0), *g12 = to_doubles(s12), *g02 = to_doubles(m02);
        for (int j = 0; j < 3; j++)
            for (int l = 0; l < 4; l++)
                assert_true(close_enough(g0[j * 4 + l], rx[j * 4 + l] + rx[12 + j * 4 + l], tol_for(dt)));
        for (int i = 0; i < 2; i++) {
            double s = 0;
            for (int j = 0; j < 12; j++)
                s += rx[i * 12 + j];
            assert_true(close_enough(g12[i], s, tol_for(dt)));
        }
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int i = 0; i < 2; i++)
                for (int l = 0; l < 4; l++)
                    s += rx[i * 12 + j * 4 + l];
            assert_true(close_enough(g02[j], s / 8, tol_for(dt)));
        }
        free(g0);
        free(g12);
        free(g02);
        /* a non-contiguous input */
        em_tensor *xt = em_transpose(x, 0, 2);   /* [4,3,2] */
        int d1[1] = {1};
        double *gt = to_doubles(em_sum_dims(xt, 1, d1, false));   /* [4,2] */
        for (int l = 0; l < 4; l++)
            for (int i = 0; i < 2; i++) {
                double s = 0;
                for (int j = 0; j < 3; j++)
                    s += rx[i * 12 + j * 4 + l];
                assert_true(close_enough(gt[l * 2 + i], s, tol_for(dt)));
            }
        free(gt);
        free(v);
        free(rx);
        int bad[1] = {3};
        assert_null(em_sum_dims(x, 1, bad, false));
        assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
        em_context_clear_error(g_ctx);
    }
    /* a long f32 sum stays accurate (accumulation in higher precision or pairwise) */
    em_tensor *ones = em_ones(g_ctx, EM_F32, EM_SHAPE(1 << 24));
    assert_true(em_item(em_sum(ones)) == (double)(1 << 24));
    em_tensor *tenth = em_full(g_ctx, EM_F32, EM_SHAPE(1000000), 0.1);
    assert_true(fabs(em_item(em_sum(tenth)) - 100000.0 * (double)0.1f * 10) < 1.0);
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ views */

static void test_views(void **state)
{
    (void)state;
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = i;
    em_tensor *x = from_doubles(EM_F32, EM_SHAPE(2, 3, 4), v);
    em_tensor *t = em_transpose(x, 0, 2);   /* [4,3,2] */
    assert_int_equal(em_tensor_size(t, 0), 4);
    assert_int_equal(em_tensor_stride(t, 0), 1);
    double *tv = to_doubles(t);
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 2; c++)
                assert_true(tv[a * 6 + b * 2 + c] == v[c * 12 + b * 4 + a]);
    free(tv);
    /* view shares storage; a view of a transposed tensor is refused, reshape copies */
    em_tensor *w = em_view(x, EM_SHAPE(6, -1));
    assert_int_equal(em_tensor_size(w, 1), 4);
    em_fill_(em_view(x, EM_SHAPE(24)), 1.0);
    assert_true(em_item(em_sum(w)) == 24);
    assert_null(em_view(t, EM_SHAPE(24)));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_SHAPE);
    em_context_clear_error(g_ctx);
    em_tensor *r = em_reshape(t, EM_SHAPE(24));
    assert_non_null(r);
    assert_true(em_tensor_is_contiguous(r));
    assert_null(em_view(x, EM_SHAPE(5, 5)));
    em_context_clear_error(g_ctx);
    /* expand, unsqueeze, squeeze, flatten, contiguous, dtype conversion */
    em_tensor *col = from_doubles(EM_F64, EM_SHAPE(3, 1), (double[]){1, 2, 3});
    em_tensor *ex = em_expand(col, EM_SHAPE(2, 3, 4));
    assert_int_equal(em_tensor_stride(ex, 0), 0);
    assert_int_equal(em_tensor_stride(ex, 2), 0);
    assert_true(em_item(em_sum(ex)) == 8 * 6);
    assert_null(em_expand(col, EM_SHAPE(3, 2, 2)));   /* 3 is not broadcastable to 2 */
    em_context_clear_error(g_ctx);
    em_tensor *u = em_unsqueeze(col, 0);
    assert_int_equal(em_tensor_ndim(u), 3);
    em_tensor *s = em_squeeze(u, -1);
    assert_int_equal(em_tensor_ndim(s), 2);
    assert_int_equal(em_tensor_size(s, 1), 3);
    assert_int_equal(em_tensor_ndim(em_flatten(ex)), 1);
    assert_int_equal(em_tensor_numel(em_flatten(ex)), 24);
    em_tensor *c = em_contiguous(ex);
    assert_true(em_tensor_is_contiguous(c));
    em_tensor *f = em_to_dtype(col, EM_F32);
    assert_int_equal(em_tensor_dtype(f), EM_F32);
    em_tensor *bl = em_to_dtype(from_doubles(EM_F32, EM_SHAPE(3), (double[]){0, 2, -0.5}), EM_BOOL);
    double *bv = to_doubles(bl);
    assert_true(bv[0] == 0 && bv[1] == 1 && bv[2] == 1);
    free(bv);
    double *back = to_doubles(em_to_dtype(bl, EM_F64));
    assert_true(back[0] == 0 && back[1] == 1);
    free(back);
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ in-place */

static void test_inplace(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        em_tensor *a = from_doubles(dt, EM_SHAPE(2, 3), (double[]){1, 2, 3, 4, 5, 6});
        em_tensor *row = from_doubles(dt, EM_SHAPE(3), (double[]){10, 20, 30});
        assert_int_equal(em_add_(a, row), EM_OK);
        assert_int_equal(em_sub_(a, em_scalar(g_ctx, dt, 1)), EM_OK);
        assert_int_equal(em_mul_(a, row), EM_OK);
        assert_int_equal(em_mul_scalar_(a, 0.5), EM_OK);
        assert_int_equal(em_add_scalar_(a, 1), EM_OK);
        double *g = to_doubles(a);
        const double want[6] = {51, 211, 481, 66, 241, 526};
        assert_close_arrays(g, want, 6, 1e-7);
        free(g);
        /* in-place on a transposed view writes through to the base */
        em_tensor *base = em_zeros(g_ctx, dt, EM_SHAPE(3, 2));
        em_tensor *tv = em_t(base);
        assert_int_equal(em_copy_(tv, a), EM_OK);
        double *b = to_doubles(base);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 2; j++)
                assert_true(b[i * 2 + j] == want[j * 3 + i]);
        free(b);
        /* copy_ broadcasts and casts */
        em_tensor *m = em_zeros(g_ctx, dt, EM_SHAPE(2, 3));
        const uint8_t bits[3] = {1, 0, 1};
        assert_int_equal(em_copy_(m, em_tensor_from_data(g_ctx, EM_BOOL, EM_SHAPE(3), bits)), EM_OK);
        assert_true(em_item(em_sum(m)) == 4);
        assert_int_equal(em_masked_fill_(m, em_gt_scalar(m, 0.5), -1), EM_OK);
        assert_true(em_item(em_sum(m)) == -4);
        assert_int_equal(em_zero_(m), EM_OK);
        assert_true(em_item(em_sum(m)) == 0);
        assert_int_equal(em_clamp_(a, 100, 300), EM_OK);
        assert_true(em_item(em_sum(a)) == 100 + 211 + 300 + 100 + 241 + 300);
        /* in-place with self as the other operand (exact alias) */
        assert_int_equal(em_add_(a, a), EM_OK);
        assert_true(em_item(em_sum(a)) == 2 * (100 + 211 + 300 + 100 + 241 + 300));
        /* overlapping but not identical: add_(x, x.t()) must read the old values */
        em_tensor *sq = from_doubles(dt, EM_SHAPE(2, 2), (double[]){1, 2, 3, 4});
        assert_int_equal(em_add_(sq, em_t(sq)), EM_OK);
        double *q = to_doubles(sq);
        assert_true(q[0] == 2 && q[1] == 5 && q[2] == 5 && q[3] == 8);
        free(q);
        /* the result of an in-place op must fit self */
        em_tensor *small = em_zeros(g_ctx, dt, EM_SHAPE(3));
        assert_int_equal(em_add_(small, a), EM_ERR_SHAPE);
        assert_non_null(strstr(em_context_error(g_ctx), "doesn't match the broadcast shape"));
        em_context_clear_error(g_ctx);
    }
}

/* ------------------------------------------------------------------ errors */

static void test_errors(void **state)
{
    (void)state;
    em_tensor *a = em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3));
    em_tensor *b = em_zeros(g_ctx, EM_F32, EM_SHAPE(4));
    em_tensor *d = em_zeros(g_ctx, EM_F64, EM_SHAPE(2, 3));
    /* broadcasting failure names the op and both shapes */
    assert_null(em_add(a, b));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_SHAPE);
    assert_non_null(strstr(em_context_error(g_ctx), "[2, 3]"));
    assert_non_null(strstr(em_context_error(g_ctx), "[4]"));
    assert_non_null(strstr(em_context_error(g_ctx), "add"));
    /* the first error is kept; NULL flows through a chain without a new error */
    assert_null(em_mul(a, d));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_SHAPE);
    assert_null(em_mm(em_clamp_min(em_mm(NULL, a), 0), a));
    em_context_clear_error(g_ctx);
    assert_null(em_mul(a, d));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_DTYPE);
    em_context_clear_error(g_ctx);
    /* arithmetic on bool is refused; comparisons of mixed dtypes too */
    em_tensor *m = em_gt_scalar(a, 0);
    assert_null(em_exp(m));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_DTYPE);
    em_context_clear_error(g_ctx);
    /* item of a non-scalar */
    assert_true(isnan(em_item(a)));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_SHAPE);
    em_context_clear_error(g_ctx);
    /* bad creation arguments */
    assert_null(em_zeros(g_ctx, EM_F32, 9, (const int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_SHAPE);
    em_context_clear_error(g_ctx);
    assert_null(em_zeros(g_ctx, EM_F32, EM_SHAPE(-1)));
    em_context_clear_error(g_ctx);
    assert_null(em_transpose(a, 0, 5));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    em_context_clear_error(g_ctx);
    /* a freed handle is reported, not used */
    em_tensor *gone = em_tensor_keep(em_zeros(g_ctx, EM_F32, EM_SHAPE(2)));
    em_tensor_free(gone);
    assert_null(em_neg(gone));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_FREED);
    em_context_clear_error(g_ctx);
    /* tensors of two contexts do not mix */
    char why[256];
    em_context *other = test_open(test_backend_name(), why, sizeof why);
    assert_non_null(other);
    em_tensor *o = em_zeros(other, EM_F32, EM_SHAPE(2, 3));
    assert_null(em_add(a, o));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_DEVICE);
    em_context_clear_error(g_ctx);
    em_tensor *moved = em_to_context(o, g_ctx);
    assert_non_null(moved);
    assert_ptr_equal(em_tensor_context(moved), g_ctx);
    em_context_free(other);
}

/* ------------------------------------------------------------------ memory */

static void test_memory_steady(void **state)
{
    (void)state;
    em_tensor *w = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(50, 20)));
    em_tensor *x = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(8, 50)));
    size_t in_use = 0;
    for (int it = 0; it < 300; it++) {
        em_scope_begin(g_ctx);
        em_tensor *y = em_sum(em_pow(em_clamp_min(em_mm(x, w), 0), 2));
        (void)em_item(y);
        em_sub_(w, em_mul_scalar(em_mm(em_t(x), em_mm(x, w)), 1e-6));
        em_scope_end(g_ctx);
        if (it == 10)
            in_use = em_context_memory_in_use(g_ctx);
        if (it > 10)
            assert_int_equal(em_context_memory_in_use(g_ctx), in_use);
    }
    em_tensor_free(w);
    em_tensor_free(x);
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_creation),       EM_TEST(test_rng),         EM_TEST(test_binary_broadcast),
        EM_TEST(test_binary_strided), EM_TEST(test_unary),       EM_TEST(test_scalar_ops),
        EM_TEST(test_clamp),          EM_TEST(test_compare_select), EM_TEST(test_mm),
        EM_TEST(test_bmm_matmul),     EM_TEST(test_reduce),      EM_TEST(test_views),
        EM_TEST(test_inplace),        EM_TEST(test_errors),      EM_TEST(test_memory_steady),
    };
    char name[64];
    snprintf(name, sizeof name, "ops on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
