/* tests/test_stats.c — reductions beyond sum/mean (max/min, max_dim/min_dim with indices,
 * argmax/argmin, prod, var/std, logsumexp, any) against PyTorch 1.13 on one backend
 * (EM_TEST_BACKEND): values, grad_fn names and gradients from tests/data/ref_stats.h, in f64
 * and f32, with em_gradcheck; then integer and bool inputs, the error cases with PyTorch's
 * messages, the two-output API, and that a failed call changes nothing. */
#include "ref_runner.h"

#include "data/ref_stats.h"

static em_tensor *call_op(const ref_case *c, em_tensor *const *in, em_tensor *target)
{
    (void)target;
    em_tensor *x = in[0], *v = NULL, *ix = NULL;
    const int *ia = c->ia;
    int dims[2] = {ia[1], ia[2]};
    switch (c->op) {
    case REF_MAX: return em_max(x);
    case REF_MIN: return em_min(x);
    case REF_MAX_DIM:
    case REF_MAX_DIM_IDX:
        if (em_max_dim(x, ia[0], ia[1], &v, &ix) != EM_OK)
            return NULL;
        return c->op == REF_MAX_DIM ? v : ix;
    case REF_MIN_DIM:
    case REF_MIN_DIM_IDX:
        if (em_min_dim(x, ia[0], ia[1], &v, &ix) != EM_OK)
            return NULL;
        return c->op == REF_MIN_DIM ? v : ix;
    case REF_ARGMAX: return em_argmax(x, ia[0], ia[1]);
    case REF_ARGMIN: return em_argmin(x, ia[0], ia[1]);
    case REF_PROD: return em_prod(x);
    case REF_PROD_DIM: return em_prod_dim(x, ia[0], ia[1]);
    case REF_VAR:
        if (ia[0] == 0 && !ia[4])
            return em_var(x, ia[3]);
        return em_var_dims(x, ia[0], dims, ia[3], ia[4]);
    case REF_STD:
        if (ia[0] == 0 && !ia[4])
            return em_std(x, ia[3]);
        return em_std_dims(x, ia[0], dims, ia[3], ia[4]);
    case REF_LOGSUMEXP: return em_logsumexp(x, ia[0], dims, ia[3]);
    case REF_ANY: return em_any(x);
    case REF_ANY_DIM: return em_any_dim(x, ia[0], ia[1]);
    default: return NULL;
    }
}

static void test_reference(void **state)
{
    (void)state;
    ref_run_all(stats_cases, sizeof stats_cases / sizeof stats_cases[0], call_op);
}

/* ------------------------------------------------------------------ integer and bool inputs */

static em_tensor *i64s(int nd, const int64_t *shape, const int64_t *v)
{
    return em_tensor_from_data(g_ctx, EM_I64, nd, shape, v);
}

static void expect_values(em_tensor *t, em_dtype dt, int n, const double *want)
{
    assert_non_null(t);
    assert_int_equal(em_tensor_dtype(t), dt);
    assert_int_equal(em_tensor_numel(t), n);
    double *v = ref_values(t);
    for (int i = 0; i < n; i++)
        if (v[i] != want[i])
            fail_msg("element %d: got %g, want %g", i, v[i], want[i]);
    free(v);
}

static void test_integer_inputs(void **state)
{
    (void)state;
    /* torch.tensor([[1, 5, 3], [-7, 5, 0]]) */
    em_tensor *a = i64s(EM_SHAPE(2, 3), (const int64_t[]){1, 5, 3, -7, 5, 0});
    expect_values(em_max(a), EM_I64, 1, (const double[]){5});
    expect_values(em_min(a), EM_I64, 1, (const double[]){-7});
    em_tensor *v, *ix;
    assert_int_equal(em_max_dim(a, 1, false, &v, &ix), EM_OK);
    expect_values(v, EM_I64, 2, (const double[]){5, 5});
    expect_values(ix, EM_I64, 2, (const double[]){1, 1});
    expect_values(em_argmin(a, 0, false), EM_I64, 3, (const double[]){1, 0, 1});
    /* a.prod() = 0, a.prod(1) = [15, 0]: i64 */
    expect_values(em_prod(a), EM_I64, 1, (const double[]){0});
    expect_values(em_prod_dim(a, 1, false), EM_I64, 2, (const double[]){15, 0});
    expect_values(em_any(a), EM_BOOL, 1, (const double[]){1});
    expect_values(em_any_dim(em_mul_scalar(a, 0), 1, true), EM_BOOL, 2, (const double[]){0, 0});
    /* logsumexp of integers promotes to float: tensor([5.1429, 5.0067]) (float32) */
    em_tensor *l = em_logsumexp(a, 1, (const int[]){1}, false);
    assert_non_null(l);
    assert_int_equal(em_tensor_dtype(l), EM_F32);
    double *lv = to_doubles(l);
    assert_true(close_enough(lv[0], 5.142931938171387, 1e-6));
    assert_true(close_enough(lv[1], 5.006721496582031, 1e-6));
    free(lv);
    /* bool: max of [True, False] is True; prod of bools is i64 */
    em_tensor *b = em_tensor_from_data(g_ctx, EM_BOOL, EM_SHAPE(2), (const uint8_t[]){1, 0});
    expect_values(em_max(b), EM_BOOL, 1, (const double[]){1});
    expect_values(em_min(b), EM_BOOL, 1, (const double[]){0});
    expect_values(em_prod(b), EM_I64, 1, (const double[]){0});
    expect_values(em_any(b), EM_BOOL, 1, (const double[]){1});
    /* i32 and u8 */
    em_tensor *c = em_tensor_from_data(g_ctx, EM_I32, EM_SHAPE(3), (const int32_t[]){4, -2, 9});
    expect_values(em_max(c), EM_I32, 1, (const double[]){9});
    expect_values(em_prod(c), EM_I64, 1, (const double[]){-72});
    em_tensor *u = em_tensor_from_data(g_ctx, EM_U8, EM_SHAPE(3), (const uint8_t[]){4, 200, 9});
    expect_values(em_min_dim(u, 0, false, &v, NULL) == EM_OK ? v : NULL, EM_U8, 1,
                  (const double[]){4});
    expect_values(em_argmax(u, 0, false), EM_I64, 1, (const double[]){1});
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ API semantics */

static void test_max_dim_outputs(void **state)
{
    (void)state;
    em_tensor *x = from_doubles(EM_F32, EM_SHAPE(2, 3), (const double[]){1, 7, 3, 9, 0, 2});
    assert_int_equal(em_tensor_set_requires_grad(x, true), EM_OK);
    /* either output may be omitted */
    em_tensor *ix = NULL, *v = NULL;
    assert_int_equal(em_max_dim(x, 1, false, NULL, &ix), EM_OK);
    expect_values(ix, EM_I64, 2, (const double[]){1, 0});
    assert_int_equal(em_min_dim(x, 0, true, &v, NULL), EM_OK);
    assert_string_equal(em_tensor_grad_fn_name(v), "MinBackward0");
    assert_int_equal(em_tensor_ndim(v), 2);
    /* the indices never require grad */
    assert_int_equal(em_max_dim(x, 1, false, &v, &ix), EM_OK);
    assert_true(em_tensor_requires_grad(v));
    assert_false(em_tensor_requires_grad(ix));
    assert_null(em_tensor_grad_fn_name(ix));
    /* the values' grad flows through whatever else uses them */
    assert_int_equal(em_backward(em_sum(em_mul(v, v))), EM_OK);
    double *g = to_doubles(em_grad(x));
    const double want[6] = {0, 14, 0, 18, 0, 0};
    assert_close_arrays(g, want, 6, 1e-6);
    free(g);
    /* no grad mode: nothing recorded */
    em_no_grad_begin(g_ctx);
    assert_int_equal(em_max_dim(x, 0, false, &v, NULL), EM_OK);
    assert_false(em_tensor_requires_grad(v));
    assert_null(em_max(x) ? em_tensor_grad_fn_name(em_max(x)) : "failed");
    em_no_grad_end(g_ctx);
    /* a modified saved input is caught, as PyTorch: max() saves the input and the result */
    em_tensor *y = em_mul_scalar(x, 1.0);
    em_tensor *m = em_max(y);
    assert_int_equal(em_mul_scalar_(y, 2.0), EM_OK);
    TH_EXPECT_MSG(em_backward(m), EM_ERR_AUTOGRAD, em_context_error(g_ctx), "modified by an inplace");
    em_context_clear_error(g_ctx);
    assert_ok_ctx();
}

static void test_errors(void **state)
{
    (void)state;
    em_tensor *e = em_zeros(g_ctx, EM_F32, EM_SHAPE(0, 3));
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3));
    em_tensor *v = (em_tensor *)1, *ix = (em_tensor *)1;
    /* empty tensors, as PyTorch */
    assert_null(em_max(e));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_INVALID, em_context_error(g_ctx),
                  "max(): Expected reduction dim to be specified for input.numel() == 0.");
    em_context_clear_error(g_ctx);
    assert_null(em_min(e));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_INVALID, em_context_error(g_ctx), "min(): Expected");
    em_context_clear_error(g_ctx);
    assert_int_equal(em_max_dim(e, 0, false, &v, &ix), EM_ERR_INVALID);
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_INVALID, em_context_error(g_ctx),
                  "max(): Expected reduction dim 0 to have non-zero size.");
    assert_ptr_equal(v, (em_tensor *)1);   /* a failed call writes no output */
    assert_ptr_equal(ix, (em_tensor *)1);
    em_context_clear_error(g_ctx);
    assert_null(em_argmax(e, 0, false));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_INVALID, em_context_error(g_ctx),
                  "argmax(): Expected reduction dim 0 to have non-zero size.");
    em_context_clear_error(g_ctx);
    /* over a non-empty dim of an empty tensor: empty results */
    assert_int_equal(em_max_dim(e, 1, false, &v, &ix), EM_OK);
    assert_int_equal(em_tensor_numel(v), 0);
    assert_int_equal(em_tensor_dtype(ix), EM_I64);
    /* dims out of range and repeated */
    assert_null(em_argmin(x, 2, false));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_INVALID, em_context_error(g_ctx),
                  "dimension out of range (expected to be in range of [-2, 1], but got 2)");
    em_context_clear_error(g_ctx);
    assert_null(em_var_dims(x, 2, (const int[]){1, -1}, true, false));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_INVALID, em_context_error(g_ctx),
                  "dim 1 appears multiple times in the list of dims");
    em_context_clear_error(g_ctx);
    assert_null(em_logsumexp(x, 1, (const int[]){-3}, false));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    em_context_clear_error(g_ctx);
    assert_null(em_prod_dim(x, 5, false));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    em_context_clear_error(g_ctx);
    /* var/std of integers, as PyTorch */
    em_tensor *i = em_tensor_from_data(g_ctx, EM_I64, EM_SHAPE(2), (const int64_t[]){1, 2});
    assert_null(em_std(i, true));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_DTYPE, em_context_error(g_ctx),
                  "std and var only support floating point and complex dtypes");
    em_context_clear_error(g_ctx);
    /* NULL in, NULL out; NULL handle for the two-output form */
    assert_null(em_max(NULL));
    assert_null(em_var(NULL, true));
    assert_int_equal(em_max_dim(NULL, 0, false, &v, &ix), EM_ERR_INVALID);
    assert_ok_ctx();
}

/* Bool inputs, as PyTorch 1.13: max/min along a dim (and of the whole tensor) work;
 * argmax/argmin fail ("argmax_cpu" not implemented for 'Bool', named after the backend),
 * except over an empty input or along a dim of size 1, where PyTorch runs no kernel. */
static void test_bool_arg(void **state)
{
    (void)state;
    /* torch.tensor([[True, False], [False, True]]) */
    em_tensor *b = em_tensor_from_data(g_ctx, EM_BOOL, EM_SHAPE(2, 2), (const uint8_t[]){1, 0, 0, 1});
    em_tensor *v, *ix;
    /* b.max(1) = (values=[True, True], indices=[0, 1]); b.min(1) = ([False, False], [1, 0]) */
    assert_int_equal(em_max_dim(b, 1, false, &v, &ix), EM_OK);
    expect_values(v, EM_BOOL, 2, (const double[]){1, 1});
    expect_values(ix, EM_I64, 2, (const double[]){0, 1});
    assert_int_equal(em_min_dim(b, 1, false, &v, &ix), EM_OK);
    expect_values(v, EM_BOOL, 2, (const double[]){0, 0});
    expect_values(ix, EM_I64, 2, (const double[]){1, 0});
    char want[64];
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "argmin" : "argmax";
        em_tensor *(*fn)(em_tensor *, int, bool) = k ? em_argmin : em_argmax;
        snprintf(want, sizeof want, "\"%s_%s\" not implemented for 'Bool'", name,
                 test_backend_name());
        assert_null(fn(b, 1, false));
        TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_DTYPE, em_context_error(g_ctx), want);
        em_context_clear_error(g_ctx);
        /* torch.tensor(True).argmax(0) fails the same way */
        assert_null(fn(em_tensor_from_data(g_ctx, EM_BOOL, 0, NULL, (const uint8_t[]){1}), -1, true));
        TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_DTYPE, em_context_error(g_ctx), want);
        em_context_clear_error(g_ctx);
        /* the dim is checked first: Dimension out of range */
        assert_null(fn(b, 2, false));
        TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_INVALID, em_context_error(g_ctx),
                      "out of range");
        em_context_clear_error(g_ctx);
        /* torch.zeros(0, 2, dtype=torch.bool).argmax(1, keepdim=True): empty, size (0, 1) */
        em_tensor *r = fn(em_zeros(g_ctx, EM_BOOL, EM_SHAPE(0, 2)), 1, true);
        assert_non_null(r);
        assert_int_equal(em_tensor_dtype(r), EM_I64);
        assert_int_equal(em_tensor_ndim(r), 2);
        assert_int_equal(em_tensor_numel(r), 0);
        /* torch.ones(3, 1, 2, dtype=torch.bool).argmax(1): zeros of shape (3, 2) */
        r = fn(em_ones(g_ctx, EM_BOOL, EM_SHAPE(3, 1, 2)), -2, false);
        assert_non_null(r);
        assert_int_equal(em_tensor_ndim(r), 2);
        expect_values(r, EM_I64, 6, (const double[]){0, 0, 0, 0, 0, 0});
        /* torch.tensor([[True], [False]]).argmax(0) fails */
        assert_null(fn(em_view(b, EM_SHAPE(4, 1)), 0, false));
        TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_DTYPE, em_context_error(g_ctx), want);
        em_context_clear_error(g_ctx);
    }
    assert_ok_ctx();
}

/* x.max() of a view and of a non-contiguous tensor; prod with keepdim of an empty dim */
static void test_layouts(void **state)
{
    (void)state;
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = (i * 7) % 24 - 11.5;
    em_tensor *x = from_doubles(EM_F64, EM_SHAPE(2, 3, 4), v);
    em_tensor *t = em_transpose(x, 0, 2);
    assert_true(em_item(em_max(t)) == 11.5);
    assert_true(em_item(em_min(t)) == -11.5);
    em_tensor *ix;
    assert_int_equal(em_max_dim(t, 1, false, NULL, &ix), EM_OK);
    em_tensor *ix2 = em_argmax(em_contiguous(t), 1, false);
    bool eq;
    assert_int_equal(em_equal(ix, ix2, &eq), EM_OK);
    assert_true(eq);
    /* prod over an empty dim is 1, its other dims kept */
    em_tensor *p = em_prod_dim(em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 0)), 1, true);
    assert_int_equal(em_tensor_ndim(p), 2);
    assert_int_equal(em_tensor_size(p, 0), 3);
    double *pv = to_doubles(p);
    for (int k = 0; k < 3; k++)
        assert_true(pv[k] == 1.0);
    free(pv);
    assert_ok_ctx();
}

/* var/std over dims [] reduce over every dim, and so does their gradient (PyTorch 1.13's
 * backward takes [] as no dims, giving infinities: ember gives the gradient of the whole
 * reduction, the same as em_var's) */
static void test_var_all_dims_grad(void **state)
{
    (void)state;
    double v[6] = {0.5, -1.25, 2, 0.75, 3, -0.5};
    for (int s = 0; s < 2; s++) {
        em_tensor *a = from_doubles(EM_F64, EM_SHAPE(2, 3), v);
        em_tensor *b = from_doubles(EM_F64, EM_SHAPE(2, 3), v);
        assert_int_equal(em_tensor_set_requires_grad(a, true), EM_OK);
        assert_int_equal(em_tensor_set_requires_grad(b, true), EM_OK);
        em_tensor *ra = s ? em_std_dims(a, 0, NULL, true, true) : em_var_dims(a, 0, NULL, true, true);
        em_tensor *rb = s ? em_std(b, true) : em_var(b, true);
        assert_int_equal(em_tensor_ndim(ra), 2);
        assert_true(close_enough(em_item(ra), em_item(rb), 1e-14));
        assert_int_equal(em_backward(em_sum(ra)), EM_OK);
        assert_int_equal(em_backward(rb), EM_OK);
        double *ga = to_doubles(em_grad(a)), *gb = to_doubles(em_grad(b));
        assert_close_arrays(ga, gb, 6, 1e-14);
        free(ga);
        free(gb);
    }
    assert_ok_ctx();
}

static void test_memory_steady(void **state)
{
    (void)state;
    em_tensor *x = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(16, 12)));
    assert_int_equal(em_tensor_set_requires_grad(x, true), EM_OK);
    size_t in_use = 0;
    for (int it = 0; it < 60; it++) {
        em_scope_begin(g_ctx);
        em_tensor *v, *ix;
        assert_int_equal(em_max_dim(x, 1, false, &v, &ix), EM_OK);
        em_tensor *l = em_add(em_add(em_sum(v), em_prod(em_mul_scalar(x, 0.01))),
                              em_add(em_std(x, true), em_sum(em_logsumexp(x, 1, (const int[]){0}, false))));
        assert_int_equal(em_backward(l), EM_OK);
        em_tensor_clear_grad(x);
        em_scope_end(g_ctx);
        if (it == 5)
            in_use = em_context_memory_in_use(g_ctx);
        if (it > 5)
            assert_int_equal(em_context_memory_in_use(g_ctx), in_use);
    }
    em_tensor_free(x);
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_reference), EM_TEST(test_integer_inputs), EM_TEST(test_max_dim_outputs),
        EM_TEST(test_errors),    EM_TEST(test_layouts),        EM_TEST(test_var_all_dims_grad),
        EM_TEST(test_memory_steady), EM_TEST(test_bool_arg),
    };
    char name[64];
    snprintf(name, sizeof name, "reductions on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
