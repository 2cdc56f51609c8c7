/* tests/test_views.c — views that select by integers (permute, narrow, select, slice,
 * split, chunk) on one backend (EM_TEST_BACKEND): values and gradients against PyTorch 1.13
 * (inputs of any strides), the names of the recorded nodes, storage sharing and the version
 * counter, empty results, and the errors (status and message) for bad dims, indices and
 * sizes. Built once per backend; skips (TAP plan 1..0) where that backend has no device.
 * Inputs and weights: see index_harness.h. */
#include "index_harness.h"

/* ------------------------------------------------------------------ PyTorch 1.13 values */

static const double ref_permute[24] = {-2.5, 0, 2.5, -0.75, 1.75, -1.5, 1, -2.25, 0.25, 2.75, -0.5, 2, -1.25, 1.25, -2, 0.5, 3, -0.25, 2.25, -1, 1.5, -1.75, 0.75, -2.5};
static const double ref_permute_grad[24] = {-3, -2, -1, 0, 3, -3, -2, -1, 2, 3, -3, -2, 1, 2, 3, -3, 0, 1, 2, 3, -1, 0, 1, 2};
static const double ref_narrow[6] = {1.25, 0.25, -1, -2, 2.5, 1.5};
static const double ref_narrow_grad[15] = {0, 0, 0, 0, 0, 0, -3, 2, 0, 3, 1, -1, 0, 0, 0};
static const double ref_select[3] = {-0.75, 2.75, 0.5};
static const double ref_select_grad[15] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -3, 3, 2};
static const double ref_select0[5] = {-1.25, -2.25, 2.5, 1.5, 0.5};
static const double ref_select0_grad[15] = {0, 0, -3, 0, 0, 3, 0, 0, 2, 0, 0, 1, 0, 0, 0};
static const double ref_slice2[12] = {0, -0.75, -1.5, -2.25, 2.75, 2, 1.25, 0.5, -0.25, -1, -1.75, -2.5};
static const double ref_slice2_grad[24] = {0, 0, 0, 0, -3, 1, -2, 2, 0, 0, 0, 0, 3, 0, -3, 1, 0, 0, 0, 0, 2, -1, 3, 0};
static const double ref_split_grad[15] = {-3, 3, 2, 1, 0, -1, 0, 0, 0, 0, 0, 0, -3, 3, 2};

/* ------------------------------------------------------------------ permute */

static void test_permute(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        em_tensor *x = input(dt, EM_SHAPE(2, 3, 4), 0);
        em_tensor *y = em_permute(x, 3, (const int[]){2, 0, 1});
        check_shape(y, EM_SHAPE(4, 2, 3));
        assert_int_equal(em_tensor_stride(y, 0), 1);   /* a view: strides permuted */
        assert_int_equal(em_tensor_stride(y, 1), 12);
        assert_int_equal(em_tensor_stride(y, 2), 4);
        check_values(y, ref_permute, 24);
        check_grad_fn(y, "PermuteBackward0");
        backward_weighted(y);
        check_grad(x, ref_permute_grad);
        /* negative dims count from the end */
        check_values(em_permute(x, 3, (const int[]){-1, 0, -2}), ref_permute, 24);
    }
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 4));
    assert_null(em_permute(x, 2, (const int[]){0, 0}));
    expect_error(EM_ERR_INVALID, "permute(): duplicate dims are not allowed.");
    assert_null(em_permute(x, 2, (const int[]){0, -2}));
    expect_error(EM_ERR_INVALID, "duplicate dims");
    assert_null(em_permute(x, 1, (const int[]){0}));
    expect_error(EM_ERR_SHAPE, "input.dim() = 2 is not equal to len(dims) = 1");
    assert_null(em_permute(x, 2, (const int[]){0, 2}));
    expect_error(EM_ERR_INVALID, "expected to be in range of [-2, 1], but got 2");
    /* 0-dim: the empty permutation */
    em_tensor *s = em_permute(em_scalar(g_ctx, EM_F32, 2), 0, NULL);
    assert_int_equal(em_tensor_ndim(s), 0);
    assert_true(em_item(s) == 2);
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ narrow, select, slice */

static void test_narrow_select(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        /* on a non-contiguous input: base (5, 3) transposed */
        em_tensor *b = input(dt, EM_SHAPE(5, 3), 0);
        em_tensor *y = em_narrow(em_t(b), 1, -3, 2);
        check_shape(y, EM_SHAPE(3, 2));
        check_values(y, ref_narrow, 6);
        check_grad_fn(y, "SliceBackward0");   /* PyTorch's narrow is a slice */
        backward_weighted(y);
        check_grad(b, ref_narrow_grad);

        b = input(dt, EM_SHAPE(5, 3), 0);
        y = em_select(em_t(b), 1, -1);
        check_shape(y, EM_SHAPE(3));
        check_values(y, ref_select, 3);
        check_grad_fn(y, "SelectBackward0");
        backward_weighted(y);
        check_grad(b, ref_select_grad);

        b = input(dt, EM_SHAPE(5, 3), 0);
        y = em_select(em_t(b), 0, 2);
        check_values(y, ref_select0, 5);
        backward_weighted(y);
        check_grad(b, ref_select0_grad);
    }
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 4));
    assert_null(em_select(x, 0, 5));
    expect_error(EM_ERR_INVALID, "select(): index 5 out of range for tensor of size [3, 4] at dimension 0");
    assert_null(em_select(x, 1, -5));
    expect_error(EM_ERR_INVALID, "select(): index -5 out of range for tensor of size [3, 4] at dimension 1");
    assert_null(em_select(x, 2, 0));
    expect_error(EM_ERR_INVALID, "dimension out of range");
    assert_null(em_select(em_scalar(g_ctx, EM_F32, 1), 0, 0));
    expect_error(EM_ERR_SHAPE, "select() cannot be applied to a 0-dim tensor.");
    em_tensor *v = em_zeros(g_ctx, EM_F32, EM_SHAPE(5));
    assert_null(em_narrow(v, 0, 4, 2));
    expect_error(EM_ERR_INVALID, "start (4) + length (2) exceeds dimension size (5).");
    assert_null(em_narrow(v, 0, 2, -1));
    expect_error(EM_ERR_INVALID, "start (2) + length (-1) exceeds dimension size (5).");
    assert_null(em_narrow(v, 0, -6, 1));
    expect_error(EM_ERR_INVALID, "start out of range");
    assert_null(em_narrow(em_scalar(g_ctx, EM_F32, 1), 0, 0, 1));
    expect_error(EM_ERR_SHAPE, "narrow() cannot be applied to a 0-dim tensor.");
    /* empty results */
    check_shape(em_narrow(v, 0, 5, 0), EM_SHAPE(0));
    check_shape(em_narrow(x, -1, -4, 0), EM_SHAPE(3, 0));
    assert_ok_ctx();
}

static void test_slice(void **state)
{
    (void)state;
    em_tensor *r = em_arange(g_ctx, EM_F64, 0, 10, 1);
    /* Python semantics: list(range(10))[start:end:step] */
    static const struct {
        int64_t start, end, step, n;
        double v[5];
    } cases[] = {
        {2, EM_END, 3, 3, {2, 5, 8}},      {-4, -1, 1, 3, {6, 7, 8}},
        {-100, 100, 4, 3, {0, 4, 8}},      {7, 3, 1, 0, {0}},
        {3, 100, 2, 4, {3, 5, 7, 9}},      {INT64_MIN, EM_END, 5, 2, {0, 5}},
        {10, EM_END, 1, 0, {0}},           {-1, EM_END, 1, 1, {9}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        em_tensor *s = em_slice(r, 0, cases[c].start, cases[c].end, cases[c].step);
        check_shape(s, 1, (const int64_t[]){cases[c].n});
        if (cases[c].n)
            check_values(s, cases[c].v, cases[c].n);
    }
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        em_tensor *b = input(dt, EM_SHAPE(6, 4), 0);
        em_tensor *y = em_slice(em_t(b), 1, 1, 6, 2);
        check_shape(y, EM_SHAPE(4, 3));
        check_values(y, ref_slice2, 12);
        check_grad_fn(y, "SliceBackward0");
        backward_weighted(y);
        check_grad(b, ref_slice2_grad);
        /* a slice of a slice: the geometry composes */
        em_tensor *z = em_slice(em_slice(r, 0, 1, EM_END, 2), 0, 1, EM_END, 2);
        check_values(z, (const double[]){3, 7}, 2);
    }
    assert_null(em_slice(r, 0, 0, 5, 0));
    expect_error(EM_ERR_INVALID, "slice step must be positive");
    assert_null(em_slice(r, 0, 5, 0, -1));
    expect_error(EM_ERR_INVALID, "slice step must be positive");
    assert_null(em_slice(r, 1, 0, 5, 1));
    expect_error(EM_ERR_INVALID, "dimension out of range");
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ split, chunk */

static void piece_sizes(int n, em_tensor **p, int dim, const int64_t *want)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(em_tensor_size(p[i], dim), want[i]);
}

static void test_split_chunk(void **state)
{
    (void)state;
    em_tensor *p[8] = {0};
    em_tensor *x5 = input(EM_F32, EM_SHAPE(5), 0);
    /* torch.chunk: pieces of ceil(5 / 4) = 2, so only 3 pieces */
    assert_int_equal(em_chunk(x5, 4, 0, p, 8), 3);
    piece_sizes(3, p, 0, (const int64_t[]){2, 2, 1});
    check_grad_fn(p[0], "SplitBackward0");
    check_values(p[1], (const double[]){-1.25, 2.25}, 2);   /* elements 2 and 3 */
    em_tensor *x6 = em_zeros(g_ctx, EM_F32, EM_SHAPE(6, 2));
    assert_int_equal(em_chunk(x6, 4, 0, p, 8), 3);
    piece_sizes(3, p, 0, (const int64_t[]){2, 2, 2});
    assert_int_equal(em_chunk(x6, 5, -1, p, 8), 2);
    piece_sizes(2, p, 1, (const int64_t[]){1, 1});
    assert_int_equal(em_split(x5, 2, 0, p, 8), 3);
    piece_sizes(3, p, 0, (const int64_t[]){2, 2, 1});
    assert_int_equal(em_split(x5, 7, -1, p, 8), 1);
    piece_sizes(1, p, 0, (const int64_t[]){5});
    /* an empty dim: split gives one empty piece, chunk `chunks` of them (split_with_sizes) */
    em_tensor *e = em_zeros(g_ctx, EM_F32, EM_SHAPE(0));
    em_tensor_set_requires_grad(e, true);
    assert_int_equal(em_split(e, 0, 0, p, 8), 1);
    piece_sizes(1, p, 0, (const int64_t[]){0});
    check_grad_fn(p[0], "SplitBackward0");
    assert_int_equal(em_chunk(e, 3, 0, p, 8), 3);
    piece_sizes(3, p, 0, (const int64_t[]){0, 0, 0});
    check_grad_fn(p[2], "SplitWithSizesBackward0");
    assert_ok_ctx();
    /* gradients of some pieces: zero elsewhere */
    for (int k = 0; k < 2; k++) {
        em_tensor *x = input(float_dtypes[k], EM_SHAPE(5, 3), 0);
        assert_int_equal(em_split(x, 2, 0, p, 3), 3);
        em_tensor *w0 = from_doubles(float_dtypes[k], EM_SHAPE(2, 3), (const double[]){-3, 3, 2, 1, 0, -1});
        em_tensor *w2 = from_doubles(float_dtypes[k], EM_SHAPE(1, 3), (const double[]){-3, 3, 2});
        assert_int_equal(em_backward(em_add(em_sum(em_mul(p[0], w0)), em_sum(em_mul(p[2], w2)))), EM_OK);
        check_grad(x, ref_split_grad);
    }
    /* errors write no handle */
    em_tensor *q[2] = {NULL, NULL};
    assert_int_equal(em_split(x5, 1, 0, q, 2), -1);
    expect_error(EM_ERR_INVALID, "5 pieces do not fit in the 2 handles given");
    assert_null(q[0]);
    assert_int_equal(em_split(x5, 0, 0, q, 2), -1);
    expect_error(EM_ERR_INVALID, "split_size can only be 0 if dimension size is 0, but got dimension size of 5");
    assert_int_equal(em_split(x5, -1, 0, q, 2), -1);
    expect_error(EM_ERR_INVALID, "split expects split_size be non-negative, but got split_size=-1");
    assert_int_equal(em_chunk(x5, 0, 0, q, 2), -1);
    expect_error(EM_ERR_INVALID, "chunk expects `chunks` to be greater than 0, got: 0");
    assert_int_equal(em_chunk(em_scalar(g_ctx, EM_F32, 1), 1, 0, q, 2), -1);
    expect_error(EM_ERR_SHAPE, "chunk expects at least a 1-dimensional tensor");
    assert_int_equal(em_split(x5, 2, 1, q, 2), -1);
    expect_error(EM_ERR_INVALID, "dimension out of range");
    assert_null(q[0]);
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ views share storage */

static double at(em_tensor *t, int64_t i)
{
    double *v = to_doubles(t);
    double r = v[i];
    free(v);
    return r;
}

static void test_views_share_storage(void **state)
{
    (void)state;
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(4, 6));
    /* writes through each view land in the base (x[1, 2:4], x[:, 5], x[::3, 1::4], x.T[0]) */
    assert_int_equal(em_fill_(em_narrow(em_select(x, 0, 1), 0, 2, 2), 1), EM_OK);
    assert_int_equal(em_fill_(em_select(x, 1, -1), 2), EM_OK);
    assert_int_equal(em_fill_(em_slice(em_slice(x, 0, 0, EM_END, 3), 1, 1, EM_END, 4), 3), EM_OK);
    assert_int_equal(em_fill_(em_select(em_permute(x, 2, (const int[]){1, 0}), 0, 0), 4), EM_OK);
    em_tensor *pieces[3];
    assert_int_equal(em_chunk(x, 3, 1, pieces, 3), 3);
    assert_int_equal(em_add_scalar_(em_select(pieces[1], 0, 2), 10), EM_OK);
    double *v = to_doubles(x);
    static const double want[24] = {4, 3, 0, 0, 0, 3,  4, 0, 1, 1, 0, 2,
                                    4, 0, 10, 10, 0, 2, 4, 3, 0, 0, 0, 3};
    assert_close_arrays(v, want, 24, 0.0);
    free(v);
    assert_ok_ctx();

    /* the version counter: a view written under no_grad invalidates what autograd saved */
    em_tensor *leaf = input(EM_F64, EM_SHAPE(3, 4), 0);
    em_tensor *a = em_mul_scalar(leaf, 2);
    em_tensor *y = em_sum(em_mul(a, a));   /* MulBackward0 saves a */
    em_no_grad_begin(g_ctx);
    assert_int_equal(em_fill_(em_select(em_narrow(a, 1, 1, 2), 0, 2), 0), EM_OK);
    em_no_grad_end(g_ctx);
    assert_true(at(a, 9) == 0 && at(a, 10) == 0);
    assert_int_equal(em_backward(y), EM_ERR_AUTOGRAD);
    expect_error(EM_ERR_AUTOGRAD, "modified by an inplace operation");
    assert_null(em_grad(leaf));
}

/* ------------------------------------------------------------------ gradcheck */

static em_tensor *gc_permute(em_tensor *const *in, int n, void *u)
{
    (void)n, (void)u;
    return em_permute(in[0], 3, (const int[]){1, 2, 0});
}
static em_tensor *gc_narrow(em_tensor *const *in, int n, void *u)
{
    (void)n, (void)u;
    return em_narrow(em_t(in[0]), 0, 1, 2);
}
static em_tensor *gc_select(em_tensor *const *in, int n, void *u)
{
    (void)n, (void)u;
    return em_select(em_t(in[0]), 1, -2);
}
static em_tensor *gc_slice(em_tensor *const *in, int n, void *u)
{
    (void)n, (void)u;
    return em_slice(in[0], 1, -3, EM_END, 2);
}
static em_tensor *gc_chunk(em_tensor *const *in, int n, void *u)
{
    (void)n, (void)u;
    em_tensor *p[4];
    if (em_chunk(in[0], 4, 1, p, 4) != 3)
        return NULL;
    return em_add(em_mul(p[0], p[1]), em_cat((em_tensor *[]){p[2], p[2]}, 2, 1));
}

static void test_gradcheck_views(void **state)
{
    (void)state;
    static const gc_case cases[] = {
        {"permute", gc_permute, 1, {{2, 3, 4}}, {3}},
        {"narrow", gc_narrow, 1, {{3, 4}}, {2}},
        {"select", gc_select, 1, {{3, 4}}, {2}},
        {"slice", gc_slice, 1, {{3, 7}}, {2}},
        {"chunk", gc_chunk, 1, {{2, 5}}, {2}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        run_gradcheck(&cases[c]);
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_permute),
        EM_TEST(test_narrow_select),
        EM_TEST(test_slice),
        EM_TEST(test_split_chunk),
        EM_TEST(test_views_share_storage),
        EM_TEST(test_gradcheck_views),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
