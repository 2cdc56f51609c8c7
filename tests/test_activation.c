/* tests/test_activation.c — softmax, log_softmax, leaky_relu, gelu (erf and tanh forms), elu,
 * silu and softplus against PyTorch 1.13 on one backend (EM_TEST_BACKEND): values, grad_fn
 * names and gradients from tests/data/ref_activation.h in f64 and f32, em_gradcheck; then
 * what they save (the result, for softmax), errors and views. */
#include "ref_runner.h"

#include "data/ref_activation.h"

static em_tensor *call_op(const ref_case *c, em_tensor *const *in, em_tensor *target)
{
    (void)target;
    em_tensor *x = in[0];
    switch (c->op) {
    case REF_SOFTMAX: return em_softmax(x, c->ia[0]);
    case REF_LOG_SOFTMAX: return em_log_softmax(x, c->ia[0]);
    case REF_LEAKY_RELU: return em_leaky_relu(x, c->da[0]);
    case REF_GELU: return em_gelu(x, c->ia[0] ? EM_GELU_TANH : EM_GELU_NONE);
    case REF_ELU: return em_elu(x, c->da[0]);
    case REF_SILU: return em_silu(x);
    case REF_SOFTPLUS: return em_softplus(x, c->da[0], c->da[1]);
    default: return NULL;
    }
}

static void test_reference(void **state)
{
    (void)state;
    ref_run_all(activation_cases, sizeof activation_cases / sizeof activation_cases[0], call_op);
}

/* softmax and log_softmax save their result (as PyTorch): modifying the input after the
 * call does not break backward, modifying the result does */
static void test_saved(void **state)
{
    (void)state;
    em_tensor *x = from_doubles(EM_F64, EM_SHAPE(2, 3), (const double[]){1, 2, 3, -1, 0, 4});
    assert_int_equal(em_tensor_set_requires_grad(x, true), EM_OK);
    em_tensor *h = em_mul_scalar(x, 1.0);
    em_tensor *s = em_softmax(h, 1);
    em_tensor *l = em_sum(em_mul(s, from_doubles(EM_F64, EM_SHAPE(3), (const double[]){1, 2, 3})));
    assert_int_equal(em_add_scalar_(h, 5.0), EM_OK);
    assert_int_equal(em_backward(l), EM_OK);
    em_tensor *y = em_log_softmax(em_mul_scalar(x, 1.0), 0);
    em_tensor *l2 = em_sum(y);
    assert_int_equal(em_mul_scalar_(y, 2.0), EM_OK);
    TH_EXPECT_MSG(em_backward(l2), EM_ERR_AUTOGRAD, em_context_error(g_ctx), "modified by an inplace");
    em_context_clear_error(g_ctx);
    /* the composed activations save their input */
    em_tensor *z = em_mul_scalar(x, 1.0);
    em_tensor *g = em_gelu(z, EM_GELU_NONE);
    assert_int_equal(em_add_scalar_(z, 1.0), EM_OK);
    TH_EXPECT_MSG(em_backward(em_sum(g)), EM_ERR_AUTOGRAD, em_context_error(g_ctx),
                  "modified by an inplace", "GeluBackward0");
    em_context_clear_error(g_ctx);
    assert_ok_ctx();
}

/* along a dim of a non-contiguous view, the same as of its contiguous copy */
static void test_views(void **state)
{
    (void)state;
    double v[60];
    for (int i = 0; i < 60; i++)
        v[i] = sin(i * 0.7) * 3;
    em_tensor *x = from_doubles(EM_F32, EM_SHAPE(3, 4, 5), v);
    em_tensor *t = em_transpose(x, 0, 2);
    for (int d = 0; d < 3; d++) {
        double *a = to_doubles(em_softmax(t, d)), *b = to_doubles(em_softmax(em_contiguous(t), d));
        assert_close_arrays(a, b, 60, 1e-6);
        free(a);
        free(b);
        a = to_doubles(em_log_softmax(t, d));
        b = to_doubles(em_log_softmax(em_contiguous(t), d));
        assert_close_arrays(a, b, 60, 1e-6);
        free(a);
        free(b);
    }
    /* empty tensors give empty results */
    em_tensor *e = em_zeros(g_ctx, EM_F64, EM_SHAPE(0, 4));
    assert_int_equal(em_tensor_numel(em_softmax(e, 1)), 0);
    assert_int_equal(em_tensor_numel(em_gelu(e, EM_GELU_TANH)), 0);
    assert_int_equal(em_tensor_numel(em_softplus(e, 1, 20)), 0);
    assert_ok_ctx();
}

static void test_errors(void **state)
{
    (void)state;
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3));
    assert_null(em_softmax(x, 2));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_INVALID, em_context_error(g_ctx),
                  "softmax: dimension out of range (expected to be in range of [-2, 1], but got 2)");
    em_context_clear_error(g_ctx);
    em_tensor *i = em_tensor_from_data(g_ctx, EM_I64, EM_SHAPE(2), (const int64_t[]){1, 2});
    assert_null(em_log_softmax(i, 0));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_DTYPE, em_context_error(g_ctx), "log_softmax",
                  "floating point");
    em_context_clear_error(g_ctx);
    assert_null(em_silu(i));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_DTYPE);
    em_context_clear_error(g_ctx);
    assert_null(em_gelu(x, (em_gelu_approximate)7));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_INVALID, em_context_error(g_ctx), "approximate");
    em_context_clear_error(g_ctx);
    assert_null(em_elu(NULL, 1.0));
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_reference), EM_TEST(test_saved), EM_TEST(test_views), EM_TEST(test_errors),
    };
    char name[64];
    snprintf(name, sizeof name, "activations on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
