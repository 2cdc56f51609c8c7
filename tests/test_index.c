/* tests/test_index.c — indexing with i64 index tensors (index_select, gather, scatter_add)
 * and joining (cat, stack) on one backend (EM_TEST_BACKEND): values and gradients against
 * PyTorch 1.13 (non-contiguous inputs, negative dims, repeated indices), the names of the
 * recorded nodes, empty results, large indices (checked on the device), the errors (status
 * and message) for bad dims, indices, shapes and dtypes, and allocation failures. Built once
 * per backend; skips (TAP plan 1..0) where that backend has no device. Inputs and weights:
 * see index_harness.h. */
#include "index_harness.h"

/* ------------------------------------------------------------------ PyTorch 1.13 values */

static const double ref_isel1[12] = {0, -2.5, 0, 1, 0.25, -2.25, 0.25, 1.25, 0.5, -2, 0.5, 1.5};
static const double ref_isel1_grad[15] = {3, 1, 0, 0, -1, -1, -3, 0, 0, -2, 2, 0, 0, 0, 4};
static const double ref_isel0[15] = {-1.25, -2.25, 2.5, 1.5, 0.5, -1.25, -2.25, 2.5, 1.5, 0.5, -2.5, 2.25, 1.25, 0.25, -0.75};
static const double ref_isel0_grad[15] = {1, 0, -4, 0, 0, 1, -1, 0, -1, -2, 0, 4, -3, 0, 2};
static const double ref_gather1[6] = {-2.5, -2.5, 2.25, -2.25, 1.25, -2.25};
static const double ref_gather1_grad[12] = {0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0};
static const double ref_gather0[4] = {2.5, 1, 2.5, 0.25};
static const double ref_gather0_grad[12] = {0, 3, 0, 0, 0, 0, 0, 0, -1, 1, 0, 0};
static const double ref_scat[15] = {-2.5, 1, -1.25, 2.25, 1, -2.25, -2, -1, 3.75, 0.25, -2, 1.5, -0.75, 2.75, 0.5};
static const double ref_scat_gself[15] = {-3, 3, 2, 1, 0, -1, -2, -3, 3, 2, 1, 0, -1, -2, -3};
static const double ref_scat_gsrc[6] = {0, 0, -3, -2, 3, -2};
static const double ref_scat0[15] = {-2.5, 4, 1.25, -2.25, 0, 1, 0, -1, 1, 3.75, -4.5, -0.25, 1.75, 1.5, 0.5};
static const double ref_scat0_gbase[15] = {-3, -1, 1, 3, -2, 0, 2, -3, -1, 1, 3, -2, 0, 2, -3};
static const double ref_scat0_gsrc[10] = {1, 3, -1, 3, 0, 1, 0, -1, 1, 2};
static const double ref_cat3[12] = {-2.5, 1, -1.25, -2.25, -2, 1.5, 2.25, 0, -2.25, 1.25, -0.75, 2.75};
static const double ref_cat3_ga[6] = {-3, 3, 2, -2, -3, 3};
static const double ref_cat3_gb[2] = {1, 2};
static const double ref_cat3_gc[4] = {0, -1, 1, 0};
static const double ref_cat7[26] = {-2.5, 1, -2.25, 1.25, -1, 2.5, -2, 1.5, -0.75, 2.75, 0.5, -1.75, -1.75, 1.75, -1.5, 2, -0.25, -2.5, -1.25, 2.25, 0, -2.25, 1.25, -1, -1, 2.5};
static const double ref_cat7_grads[26] = {-3, 3, 2, 1, 0, -1, -2, -3, 3, 2, 1, 0, -1, -2, -3, 3, 2, 1, 0, -1, -2, -3, 3, 2, 1, 0};
static const double ref_stack1[30] = {-2.5, 1, -1.25, -2.25, 1.25, -1, -2, 1.5, -0.75, -1.75, 1.75, -0.5, -1.5, 2, -0.25, 2.25, 0, -2.25, 2.5, 0.25, -2, 2.75, 0.5, -1.75, 3, 0.75, -1.5, -2.5, 1, -1.25};
static const double ref_stack1_grads[30] = {-3, 3, 2, 3, 2, 1, 1, 0, -1, 0, -1, -2, -2, -3, 3, -3, 3, 2, 2, 1, 0, 1, 0, -1, -1, -2, -3, -2, -3, 3};
static const double ref_stackm1[30] = {-2.5, -2.25, -2, -1.75, -1.5, 1, 1.25, 1.5, 1.75, 2, -1.25, -1, -0.75, -0.5, -0.25, 2.25, 2.5, 2.75, 3, -2.5, 0, 0.25, 0.5, 0.75, 1, -2.25, -2, -1.75, -1.5, -1.25};
static const double ref_stackm1_grads[30] = {-3, -1, 1, 3, -2, 0, 3, -2, 0, 2, -3, -1, 2, -3, -1, 1, 3, -2, 1, 3, -2, 0, 2, -3, 0, 2, -3, -1, 1, 3};
static const double ref_catT[15] = {-2.5, 2.25, -1.5, -2.5, 2.25, 1, 0, 2, 1, 0, -1.25, -2.25, -0.25, -1.25, -2.25};
static const double ref_catT_gb[6] = {-2, 2, -1, 3, 0, -3};
static const double ref_catT_gc[3] = {2, -3, -1};

/* ------------------------------------------------------------------ index_select */

static void test_index_select(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        em_tensor *x = input(dt, EM_SHAPE(3, 5), 0);
        em_tensor *y = em_index_select(x, 1, IDX(EM_SHAPE(4), 4, 0, 4, 1));
        check_shape(y, EM_SHAPE(3, 4));
        check_values(y, ref_isel1, 12);
        check_grad_fn(y, "IndexSelectBackward0");
        backward_weighted(y);   /* the repeated index 4 accumulates */
        check_grad(x, ref_isel1_grad);
        /* non-contiguous input, negative dim */
        em_tensor *b = input(dt, EM_SHAPE(5, 3), 0);
        y = em_index_select(em_t(b), -2, IDX(EM_SHAPE(3), 2, 2, 0));
        check_values(y, ref_isel0, 15);
        backward_weighted(y);
        check_grad(b, ref_isel0_grad);
        /* an empty index: an empty result, a zero gradient */
        x = input(dt, EM_SHAPE(3, 4), 0);
        y = em_index_select(x, 0, index_of(EM_SHAPE(0), NULL));
        check_shape(y, EM_SHAPE(0, 4));
        assert_int_equal(em_backward(em_sum(y)), EM_OK);
        check_values(em_grad(x), (const double[12]){0}, 12);
        /* a 0-dim source takes a one-element index */
        em_tensor *s = em_scalar(g_ctx, dt, 5);
        y = em_index_select(s, 0, IDX(EM_SHAPE(1), 0));
        assert_int_equal(em_tensor_ndim(y), 0);
        assert_true(em_item(y) == 5);
    }
    assert_ok_ctx();
    /* bool data */
    em_tensor *m = em_tensor_from_data(g_ctx, EM_BOOL, EM_SHAPE(2, 2), (const uint8_t[]){1, 0, 0, 1});
    check_values(em_index_select(m, 1, IDX(EM_SHAPE(3), 1, 1, 0)), (const double[]){0, 0, 1, 1, 1, 0}, 6);
    /* errors */
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 5));
    assert_null(em_index_select(x, 1, IDX(EM_SHAPE(2), 0, 7)));
    expect_error(EM_ERR_INVALID, "index 7 is out of bounds for dimension 1 with size 5");
    assert_null(em_index_select(x, 1, IDX(EM_SHAPE(2), 0, -1)));
    expect_error(EM_ERR_INVALID, "index -1 is out of bounds for dimension 1 with size 5");
    assert_null(em_index_select(x, 0, IDX(EM_SHAPE(2), 3, 0)));
    expect_error(EM_ERR_INVALID, "index 3 is out of bounds for dimension 0 with size 3");
    assert_null(em_index_select(x, 1, from_doubles(EM_F32, EM_SHAPE(2), (const double[]){0, 1})));
    expect_error(EM_ERR_DTYPE, "Expected dtype int64 for index");
    assert_null(em_index_select(x, 1, IDX(EM_SHAPE(1, 2), 0, 1)));
    expect_error(EM_ERR_SHAPE, "Index is supposed to be a vector");
    assert_null(em_index_select(x, 2, IDX(EM_SHAPE(1), 0)));
    expect_error(EM_ERR_INVALID, "expected to be in range of [-2, 1], but got 2");
    assert_null(em_index_select(em_scalar(g_ctx, EM_F32, 1), 0, IDX(EM_SHAPE(2), 0, 0)));
    expect_error(EM_ERR_SHAPE, "Index to scalar can have only 1 value, got 2 value(s)");
    assert_ok_ctx();
}

/* A large index is checked on the device (its min and max are read back). */
static void test_index_large(void **state)
{
    (void)state;
    enum { N = 5000 };
    int64_t *iv = malloc(sizeof(int64_t) * N);
    for (int i = 0; i < N; i++)
        iv[i] = (i * 7) % 5;
    em_tensor *x = input(EM_F64, EM_SHAPE(5), 0);
    em_tensor *idx = index_of(EM_SHAPE(N), iv);
    em_tensor *y = em_index_select(x, 0, idx);
    assert_non_null(y);
    double *xv = to_doubles(x), *yv = to_doubles(y);
    for (int i = 0; i < N; i++)
        assert_true(yv[i] == xv[iv[i]]);
    free(xv);
    free(yv);
    assert_int_equal(em_backward(em_sum(y)), EM_OK);
    check_values(em_grad(x), (const double[]){1000, 1000, 1000, 1000, 1000}, 5);
    /* a non-contiguous large index (every second element of a 2N index) */
    int64_t *jv = malloc(sizeof(int64_t) * 2 * N);
    for (int i = 0; i < 2 * N; i++)
        jv[i] = i % 2 ? 9 : (i / 2) % 5;
    em_tensor *j = em_slice(index_of(EM_SHAPE(2 * N), jv), 0, 0, EM_END, 2);
    assert_non_null(em_index_select(x, 0, j));
    iv[N - 1] = 5;
    assert_null(em_index_select(x, 0, index_of(EM_SHAPE(N), iv)));
    expect_error(EM_ERR_INVALID, "index 5 is out of bounds for dimension 0 with size 5");
    iv[17] = -3;
    assert_null(em_gather(x, 0, index_of(EM_SHAPE(N), iv)));
    expect_error(EM_ERR_INVALID, "index -3 is out of bounds for dimension 0 with size 5");
    assert_null(em_index_select(x, 0, em_slice(index_of(EM_SHAPE(2 * N), jv), 0, 1, EM_END, 2)));
    expect_error(EM_ERR_INVALID, "index 9 is out of bounds for dimension 0 with size 5");
    free(iv);
    free(jv);
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ gather */

static void test_gather(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        em_tensor *x = input(dt, EM_SHAPE(3, 4), 0);
        em_tensor *y = em_gather(x, 1, IDX(EM_SHAPE(2, 3), 0, 0, 3, 1, 2, 1));
        check_shape(y, EM_SHAPE(2, 3));
        check_values(y, ref_gather1, 6);
        check_grad_fn(y, "GatherBackward0");
        backward_weighted(y);
        check_grad(x, ref_gather1_grad);
        x = input(dt, EM_SHAPE(3, 4), 0);
        y = em_gather(x, -2, IDX(EM_SHAPE(2, 2), 2, 0, 2, 2));
        check_values(y, ref_gather0, 4);
        backward_weighted(y);
        check_grad(x, ref_gather0_grad);
        /* empty index */
        check_shape(em_gather(x, 1, index_of(EM_SHAPE(3, 0), NULL)), EM_SHAPE(3, 0));
    }
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 5));
    assert_null(em_gather(x, 1, IDX(EM_SHAPE(3, 1), 0, 7, 4)));
    expect_error(EM_ERR_INVALID, "index 7 is out of bounds for dimension 1 with size 5");
    assert_null(em_gather(x, 1, IDX(EM_SHAPE(3, 1), 0, -1, 4)));
    expect_error(EM_ERR_INVALID, "index -1 is out of bounds for dimension 1 with size 5");
    assert_null(em_gather(x, 1, IDX(EM_SHAPE(2), 0, 1)));
    expect_error(EM_ERR_SHAPE, "Index tensor must have the same number of dimensions as input tensor");
    assert_null(em_gather(x, 1, IDX(EM_SHAPE(4, 1), 0, 0, 0, 0)));
    expect_error(EM_ERR_SHAPE, "Size does not match at dimension 0 expected index [4, 1] to be "
                 "smaller than self [3, 5] apart from dimension 1");
    assert_null(em_gather(x, 0, from_doubles(EM_F64, EM_SHAPE(1, 1), (const double[]){0})));
    expect_error(EM_ERR_DTYPE, "Expected dtype int64 for index");
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ scatter_add */

static void test_scatter_add(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        em_tensor *s = input(dt, EM_SHAPE(3, 5), 0), *src = input(dt, EM_SHAPE(2, 3), 5);
        em_tensor *i = IDX(EM_SHAPE(2, 3), 4, 4, 0, 1, 3, 1);
        em_tensor *y = em_scatter_add(s, 1, i, src);
        check_values(y, ref_scat, 15);
        check_grad_fn(y, "ScatterAddBackward0");
        backward_weighted(y);
        check_grad(s, ref_scat_gself);
        check_grad(src, ref_scat_gsrc);
        /* in place, on a non-leaf: the same values and gradients */
        s = input(dt, EM_SHAPE(3, 5), 0);
        src = input(dt, EM_SHAPE(2, 3), 5);
        em_tensor *c = em_mul_scalar(s, 1);
        assert_int_equal(em_scatter_add_(c, 1, i, src), EM_OK);
        check_values(c, ref_scat, 15);
        check_grad_fn(c, "ScatterAddBackward0");
        backward_weighted(c);
        check_grad(s, ref_scat_gself);
        check_grad(src, ref_scat_gsrc);
        /* into a transposed self along dim 0 */
        em_tensor *b = input(dt, EM_SHAPE(5, 3), 0);
        src = input(dt, EM_SHAPE(2, 5), 3);
        y = em_scatter_add(em_t(b), 0, IDX(EM_SHAPE(2, 5), 2, 0, 2, 1, 0, 2, 2, 2, 0, 1), src);
        check_values(y, ref_scat0, 15);
        backward_weighted(y);
        check_grad(b, ref_scat0_gbase);
        check_grad(src, ref_scat0_gsrc);
        /* src larger than the index: only its leading part is used; the rest gets zero
         * gradient (PyTorch 1.13 fails in backward here, with a shape mismatch) */
        s = input(dt, EM_SHAPE(3, 5), 0);
        src = em_zeros(g_ctx, dt, EM_SHAPE(3, 4));
        assert_int_equal(em_copy_(em_narrow(em_narrow(src, 0, 0, 2), 1, 0, 3),
                                  em_detach(input(dt, EM_SHAPE(2, 3), 5))), EM_OK);
        em_tensor_set_requires_grad(src, true);
        y = em_scatter_add(s, 1, i, src);
        check_values(y, ref_scat, 15);
        backward_weighted(y);
        double want[12] = {0};
        for (int r = 0; r < 2; r++)
            for (int q = 0; q < 3; q++)
                want[r * 4 + q] = ref_scat_gsrc[r * 3 + q];
        check_grad(src, want);
    }
    assert_ok_ctx();
    /* errors, and a failed in-place call changes nothing */
    em_tensor *z = em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 5)), *one = em_ones(g_ctx, EM_F32, EM_SHAPE(3, 5));
    assert_null(em_scatter_add(z, 1, IDX(EM_SHAPE(3, 1), 0, 7, 4), one));
    expect_error(EM_ERR_INVALID, "index 7 is out of bounds for dimension 1 with size 5");
    assert_int_equal(em_scatter_add_(z, 1, IDX(EM_SHAPE(3, 1), 0, 1, -1), one), EM_ERR_INVALID);
    expect_error(EM_ERR_INVALID, "index -1 is out of bounds for dimension 1 with size 5");
    check_values(z, (const double[15]){0}, 15);
    assert_null(em_scatter_add(z, 1, IDX(EM_SHAPE(3, 1), 0, 1, 4), em_ones(g_ctx, EM_F64, EM_SHAPE(3, 5))));
    expect_error(EM_ERR_DTYPE, "Expected self.dtype to be equal to src.dtype");
    assert_null(em_scatter_add(z, 1, IDX(EM_SHAPE(3, 2), 0, 0, 0, 0, 0, 0), em_ones(g_ctx, EM_F32, EM_SHAPE(3, 1))));
    expect_error(EM_ERR_SHAPE, "Expected index [3, 2] to be smaller than self [3, 5] apart from "
                 "dimension 1 and to be smaller size than src [3, 1]");
    assert_null(em_scatter_add(z, 1, IDX(EM_SHAPE(3), 0, 0, 0), one));
    expect_error(EM_ERR_SHAPE, "Index tensor must have the same number of dimensions as self tensor");
    em_tensor *leaf = input(EM_F32, EM_SHAPE(3, 5), 0);
    assert_int_equal(em_scatter_add_(leaf, 1, IDX(EM_SHAPE(1, 1), 0), one), EM_ERR_AUTOGRAD);
    expect_error(EM_ERR_AUTOGRAD, "a leaf Variable that requires grad is being used in an in-place operation.");
    /* the index allows a size larger than self's along dim itself */
    em_tensor *r = em_scatter_add(em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 4)), 1,
                                  index_of(EM_SHAPE(2, 7), (const int64_t[14]){0}),
                                  em_ones(g_ctx, EM_F32, EM_SHAPE(2, 7)));
    check_values(r, (const double[]){7, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0}, 12);
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ cat, stack */

static void test_cat(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        em_tensor *a = input(dt, EM_SHAPE(2, 3), 0), *b = input(dt, EM_SHAPE(2, 1), 1),
                  *c = input(dt, EM_SHAPE(2, 2), 2);
        em_tensor *y = em_cat((em_tensor *[]){a, b, c}, 3, 1);
        check_shape(y, EM_SHAPE(2, 6));
        check_values(y, ref_cat3, 12);
        check_grad_fn(y, "CatBackward0");
        backward_weighted(y);
        check_grad(a, ref_cat3_ga);
        check_grad(b, ref_cat3_gb);
        check_grad(c, ref_cat3_gc);
        /* seven inputs (more than one node holds) along dim 0 */
        em_tensor *ts[7];
        int64_t off = 0;
        for (int i = 0; i < 7; i++)
            ts[i] = input(dt, EM_SHAPE((i % 3) + 1, 2), i);
        y = em_cat(ts, 7, -2);
        check_shape(y, EM_SHAPE(13, 2));
        check_values(y, ref_cat7, 26);
        check_grad_fn(y, "CatBackward0");
        backward_weighted(y);
        for (int i = 0; i < 7; i++) {
            check_grad(ts[i], ref_cat7_grads + off);
            off += em_tensor_numel(ts[i]);
        }
        /* non-contiguous inputs */
        em_tensor *bt = input(dt, EM_SHAPE(2, 3), 0), *ct = input(dt, EM_SHAPE(3, 1), 4);
        y = em_cat((em_tensor *[]){em_t(bt), ct, em_t(bt)}, 3, 1);
        check_values(y, ref_catT, 15);
        backward_weighted(y);
        check_grad(bt, ref_catT_gb);
        check_grad(ct, ref_catT_gc);
        /* 1-D empty tensors are skipped, whatever the others' shapes (PyTorch's legacy
         * rule); their gradient is empty */
        em_tensor *e = em_zeros(g_ctx, dt, EM_SHAPE(0));
        em_tensor_set_requires_grad(e, true);
        a = input(dt, EM_SHAPE(2, 3), 0);
        y = em_cat((em_tensor *[]){a, e, a}, 3, 0);
        check_shape(y, EM_SHAPE(4, 3));
        assert_int_equal(em_backward(em_sum(y)), EM_OK);
        check_shape(em_grad(e), EM_SHAPE(0));
        check_values(em_grad(a), (const double[]){2, 2, 2, 2, 2, 2}, 6);
        check_shape(em_cat((em_tensor *[]){e, e}, 2, 1), EM_SHAPE(0));
        check_shape(em_cat((em_tensor *[]){em_zeros(g_ctx, dt, EM_SHAPE(0, 3)), a}, 2, 0), EM_SHAPE(2, 3));
    }
    /* integer and bool data are concatenated too */
    em_tensor *i1 = IDX(EM_SHAPE(2), 5, -6), *i2 = IDX(EM_SHAPE(1), 7);
    em_tensor *ic = em_cat((em_tensor *[]){i1, i2}, 2, 0);
    assert_int_equal(em_tensor_dtype(ic), EM_I64);
    int64_t iv[3];
    assert_int_equal(em_tensor_to_host(ic, iv, sizeof iv), EM_OK);
    assert_true(iv[0] == 5 && iv[1] == -6 && iv[2] == 7);
    assert_ok_ctx();
    /* errors */
    em_tensor *a = em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3));
    assert_null(em_cat((em_tensor *[]){a, em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 3))}, 2, 1));
    expect_error(EM_ERR_SHAPE, "Sizes of tensors must match except in dimension 1. Expected size 2 "
                 "but got size 3 for tensor number 1 in the list.");
    assert_null(em_cat((em_tensor *[]){a, em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3, 1))}, 2, 0));
    expect_error(EM_ERR_SHAPE, "Tensors must have same number of dimensions: got 2 and 3");
    assert_null(em_cat((em_tensor *[]){a, em_zeros(g_ctx, EM_F64, EM_SHAPE(2, 3))}, 2, 0));
    expect_error(EM_ERR_DTYPE, "tensor number 1 is f64");
    assert_null(em_cat((em_tensor *[]){em_scalar(g_ctx, EM_F32, 1), a}, 2, 0));
    expect_error(EM_ERR_SHAPE, "zero-dimensional tensor (at position 0) cannot be concatenated");
    assert_null(em_cat((em_tensor *[]){a}, 1, 2));
    expect_error(EM_ERR_INVALID, "expected to be in range of [-2, 1], but got 2");
    assert_null(em_cat(NULL, 0, 0));
    assert_non_null(strstr(em_last_error(), "expected a non-empty list of Tensors"));
    assert_ok_ctx();
}

static void test_stack(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        em_tensor *ts[5];
        for (int i = 0; i < 5; i++)
            ts[i] = input(dt, EM_SHAPE(2, 3), i);
        em_tensor *y = em_stack(ts, 5, 1);
        check_shape(y, EM_SHAPE(2, 5, 3));
        check_values(y, ref_stack1, 30);
        check_grad_fn(y, "StackBackward0");
        backward_weighted(y);
        for (int i = 0; i < 5; i++)
            check_grad(ts[i], ref_stack1_grads + 6 * i);
        for (int i = 0; i < 5; i++)
            ts[i] = input(dt, EM_SHAPE(2, 3), i);
        y = em_stack(ts, 5, -1);
        check_shape(y, EM_SHAPE(2, 3, 5));
        check_values(y, ref_stackm1, 30);
        backward_weighted(y);
        for (int i = 0; i < 5; i++)
            check_grad(ts[i], ref_stackm1_grads + 6 * i);
        /* 0-dim inputs stack into a vector */
        em_tensor *s = em_stack((em_tensor *[]){em_scalar(g_ctx, dt, 1), em_scalar(g_ctx, dt, 2)}, 2, 0);
        check_values(s, (const double[]){1, 2}, 2);
    }
    em_tensor *a = em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3));
    assert_null(em_stack((em_tensor *[]){a, em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 1))}, 2, 0));
    expect_error(EM_ERR_SHAPE, "stack expects each tensor to be equal size, but got [2, 3] at entry 0 "
                 "and [2, 1] at entry 1");
    assert_null(em_stack((em_tensor *[]){a, a}, 2, 3));
    expect_error(EM_ERR_INVALID, "expected to be in range of [-3, 2], but got 3");
    assert_null(em_stack(NULL, 0, 0));
    assert_non_null(strstr(em_last_error(), "stack expects a non-empty TensorList"));
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ gradcheck */

static em_tensor *g_index;   /* the index the gradcheck functions use */

static em_tensor *gc_index_select(em_tensor *const *in, int n, void *u)
{
    (void)n, (void)u;
    return em_index_select(em_t(in[0]), 1, g_index);
}
static em_tensor *gc_gather(em_tensor *const *in, int n, void *u)
{
    (void)n, (void)u;
    return em_gather(in[0], 0, g_index);
}
static em_tensor *gc_scatter_add(em_tensor *const *in, int n, void *u)
{
    (void)n, (void)u;
    return em_scatter_add(in[0], 0, g_index, in[1]);
}
static em_tensor *gc_cat(em_tensor *const *in, int n, void *u)
{
    (void)u;
    return em_cat(in, n, 1);
}
static em_tensor *gc_stack(em_tensor *const *in, int n, void *u)
{
    (void)u;
    return em_stack(in, n, 2);
}

static void test_gradcheck_index(void **state)
{
    (void)state;
    static const gc_case cases[] = {
        {"index_select", gc_index_select, 1, {{4, 3}}, {2}},
        {"gather", gc_gather, 1, {{3, 4}}, {2}},
        {"scatter_add", gc_scatter_add, 2, {{3, 4}, {2, 4}}, {2, 2}},
        {"cat", gc_cat, 4, {{2, 1}, {2, 3}, {2, 2}, {2, 1}}, {2, 2, 2, 2}},
        {"stack", gc_stack, 4, {{2, 3}, {2, 3}, {2, 3}, {2, 3}}, {2, 2, 2, 2}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (!strcmp(cases[c].name, "index_select"))
            g_index = IDX(EM_SHAPE(5), 1, 3, 1, 0, 1);
        else
            g_index = IDX(EM_SHAPE(2, 4), 2, 0, 2, 1, 2, 2, 0, 2);   /* repeated targets */
        run_gradcheck(&cases[c]);
    }
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ allocation failures */

/* Exported by libember for tests only (not in a public header). */
void em__test_fail_alloc_after(long n);

typedef struct fault_env {
    em_tensor *x, *src, *idx, *gidx, *sidx, *big;
} fault_env;

/* The ops of this file and the views once, forward and backward; the first error status
 * (EM_OK if none). */
static em_status fault_step(const fault_env *e)
{
    em_scope_begin(g_ctx);
    em_tensor *x = e->x;
    em_tensor *y1 = em_index_select(x, 1, e->idx);                      /* [3, 4] */
    em_tensor *y2 = em_gather(x, 1, e->gidx);                           /* [3, 2] */
    em_tensor *c = em_mul_scalar(x, 1);
    em_scatter_add_(c, 1, e->sidx, e->src);                             /* [3, 5] */
    em_tensor *p[3] = {NULL, NULL, NULL};
    em_split(em_t(x), 2, 0, p, 3);                                      /* [2, 3] [2, 3] [1, 3] */
    em_tensor *pc = em_cat((em_tensor *[]){p[0], p[2], p[1]}, 3, 0);    /* [5, 3] */
    em_tensor *cat = em_cat((em_tensor *[]){x, y1, y2, c, em_t(pc), em_narrow(x, 1, 1, 2),
                                            em_slice(x, 1, 0, EM_END, 2)}, 7, 1);
    em_tensor *st = em_stack((em_tensor *[]){x, c, em_permute(em_t(x), 2, (const int[]){1, 0}),
                                             c, em_select(em_unsqueeze(x, 0), 0, 0)}, 5, 1);
    em_tensor *big = em_index_select(em_flatten(x), 0, e->big);
    em_tensor *loss = em_add(em_add(em_sum(cat), em_sum(st)), em_sum(big));
    em_backward(loss);
    em_tensor_clear_grad(e->x);
    em_tensor_clear_grad(e->src);
    em_scope_end(g_ctx);
    return em_context_status(g_ctx);
}

static void test_faults(void **state)
{
    (void)state;
    fault_env e;
    e.x = em_tensor_keep(input(EM_F32, EM_SHAPE(3, 5), 0));
    e.src = em_tensor_keep(input(EM_F32, EM_SHAPE(2, 3), 1));
    e.idx = em_tensor_keep(IDX(EM_SHAPE(4), 4, 0, 4, 1));
    e.gidx = em_tensor_keep(IDX(EM_SHAPE(3, 2), 0, 4, 1, 1, 2, 3));
    e.sidx = em_tensor_keep(IDX(EM_SHAPE(2, 3), 4, 4, 0, 1, 3, 1));
    int64_t *bv = malloc(sizeof(int64_t) * 5000);
    for (int i = 0; i < 5000; i++)
        bv[i] = (i * 11) % 15;
    e.big = em_tensor_keep(index_of(EM_SHAPE(5000), bv));
    free(bv);
    for (int i = 0; i < 2; i++)   /* warm up the buffer cache */
        assert_int_equal(fault_step(&e), EM_OK);
    size_t baseline = em_context_memory_in_use(g_ctx);
    int n, failures = 0;
    for (n = 1; n <= 5000; n++) {
        em_context_clear_error(g_ctx);
        em__test_fail_alloc_after(n);
        em_status st = fault_step(&e);
        em__test_fail_alloc_after(0);
        if (st == EM_OK)
            break;
        failures++;
        if (!em_context_error(g_ctx)[0])
            fail_msg("N=%d: status %s without a message", n, em_status_name(st));
        em_context_clear_error(g_ctx);
        if (em_context_memory_in_use(g_ctx) != baseline)
            fail_msg("N=%d: %zu bytes of device memory in use after a failed step, %zu before", n,
                     em_context_memory_in_use(g_ctx), baseline);
        if (fault_step(&e) != EM_OK)
            fail_msg("N=%d: the context is not usable after the failure: %s", n,
                     em_context_error(g_ctx));
    }
    print_message("# index ops: %d injected failures handled, succeeded at N=%d\n", failures, n);
    assert_true(n <= 5000);
    assert_true(failures > 0);
    em_tensor *keep[] = {e.x, e.src, e.idx, e.gidx, e.sidx, e.big};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        em_tensor_free(keep[i]);
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_index_select),
        EM_TEST(test_index_large),
        EM_TEST(test_gather),
        EM_TEST(test_scatter_add),
        EM_TEST(test_cat),
        EM_TEST(test_stack),
        EM_TEST(test_gradcheck_index),
        EM_TEST(test_faults),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
