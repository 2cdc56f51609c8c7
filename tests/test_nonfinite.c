/* tests/test_nonfinite.c — NaN and Inf inputs: every op category propagates them as
 * PyTorch does (no crash, no error, no silent cleanup), through forward and backward, on
 * the backend under test. */
#include "backend_harness.h"

static bool any_nan(em_tensor *t)
{
    double *v = to_doubles(t);
    bool r = false;
    for (int64_t i = 0; i < em_tensor_numel(t); i++)
        r |= isnan(v[i]);
    free(v);
    return r;
}

static void test_forward_propagates(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = k ? EM_F64 : EM_F32;
        const double v[6] = {1, NAN, INFINITY, -INFINITY, 0, -2};
        em_tensor *x = from_doubles(dt, EM_SHAPE(2, 3), v);
        /* elementwise: NaN stays NaN */
        em_tensor *outs[] = {em_add(x, x), em_mul_scalar(x, 2), em_exp(x), em_tanh(x),
                             em_sigmoid(x), em_relu(x), em_clamp(x, -1, 1), em_maximum(x, x),
                             em_abs(x), em_neg(x), em_pow(x, 2), em_sqrt(em_abs(x))};
        for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
            assert_non_null(outs[i]);
            double *o = to_doubles(outs[i]);
            assert_true(isnan(o[1]));
            free(o);
        }
        /* infinities follow IEEE: inf - inf = NaN, exp(-inf) = 0, relu(-inf) = 0 */
        double *d = to_doubles(em_sub(x, x));
        assert_true(isnan(d[2]) && isnan(d[3]) && d[0] == 0);
        free(d);
        double *e = to_doubles(em_exp(x));
        assert_true(isinf(e[2]) && e[3] == 0);
        free(e);
        double *r = to_doubles(em_relu(x));
        assert_true(isinf(r[2]) && r[3] == 0);
        free(r);
        /* reductions and products carry NaN to every affected output */
        assert_true(isnan(em_item(em_sum(x))));
        assert_true(isnan(em_item(em_mean(x))));
        em_tensor *m = em_mm(x, em_t(x));
        double *mv = to_doubles(m);
        assert_true(isnan(mv[0]) && isnan(mv[1]) && isnan(mv[2]) && isinf(mv[3]));
        free(mv);
        /* comparisons with NaN are false (ne true), and never an error */
        double *lt = to_doubles(em_lt_scalar(x, 5)), *ne = to_doubles(em_ne(x, x));
        assert_true(lt[1] == 0 && ne[1] == 1 && ne[0] == 0);
        free(lt);
        free(ne);
        /* log of 0 and negatives, division by zero */
        double *lg = to_doubles(em_log(x));
        assert_true(isinf(lg[4]) && lg[4] < 0 && isnan(lg[5]));
        free(lg);
        double *dz = to_doubles(em_rdiv_scalar(x, 1));
        assert_true(isinf(dz[4]));
        free(dz);
        assert_ok_ctx();
    }
}

static void test_backward_propagates(void **state)
{
    (void)state;
    em_tensor *x = from_doubles(EM_F64, EM_SHAPE(3), (double[]){NAN, 1, 2});
    em_tensor *w = from_doubles(EM_F64, EM_SHAPE(3), (double[]){1, 1, 1});
    em_tensor_set_requires_grad(w, true);
    em_tensor *loss = em_sum(em_mul(em_tanh(em_mul(x, w)), w));
    assert_true(isnan(em_item(loss)));
    assert_int_equal(em_backward(loss), EM_OK);
    em_tensor *g = em_grad(w);
    assert_non_null(g);
    double *gv = to_doubles(g);
    assert_true(isnan(gv[0]) && !isnan(gv[1]) && !isnan(gv[2]));
    free(gv);
    /* an infinite weight makes an infinite or NaN gradient, and training code can check it */
    em_tensor *u = from_doubles(EM_F32, EM_SHAPE(2), (double[]){INFINITY, 1});
    em_tensor_set_requires_grad(u, true);
    assert_int_equal(em_backward(em_sum(em_pow(u, 2))), EM_OK);
    double *gu = to_doubles(em_grad(u));
    assert_true(isinf(gu[0]) && gu[1] == 2);
    free(gu);
    assert_true(any_nan(em_grad(w)));
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_forward_propagates),
        EM_TEST(test_backward_propagates),
    };
    rc = _cmocka_run_group_tests("non-finite values", tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
