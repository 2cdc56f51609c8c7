/* tests/test_ops.c — the API semantics of ops on one backend (EM_TEST_BACKEND): creation
 * edge cases, views, in-place rules, errors and messages, result shapes, memory.
 * The numeric checks of every op (each dtype, broadcast and stride case, edge shapes, the
 * RNG, gemm, reductions) are ember-conform's (tools/conform_*.c), which make check runs on
 * every backend: one source of truth for them.
 * Built once per backend; skips (TAP plan 1..0) where that backend has no device. */
#include "backend_harness.h"
#include <ember/info.h>

static const em_dtype float_dtypes[] = {EM_F32, EM_F64};

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
    assert_true(isnan(em_item(em_mean(e))));   /* as PyTorch: the mean of nothing is NaN */
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ comparisons */

/* em_all and em_equal (the comparison kernels are checked by ember-conform) */
static void test_compare_select(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        double va[6] = {1, 2, 3, 4, NAN, -1}, vb[3] = {2, 2, 5};
        em_tensor *a = from_doubles(dt, EM_SHAPE(2, 3), va), *b = from_doubles(dt, EM_SHAPE(3), vb);
        assert_int_equal(em_tensor_dtype(em_lt(a, b)), EM_BOOL);
        bool all;
        assert_int_equal(em_all(em_le_scalar(b, 5), &all), EM_OK);
        assert_true(all);
        assert_int_equal(em_all(em_le_scalar(b, 2), &all), EM_OK);
        assert_false(all);
        assert_int_equal(em_equal(a, a, &all), EM_OK);
        assert_false(all);   /* NaN != NaN */
        assert_int_equal(em_equal(b, b, &all), EM_OK);
        assert_true(all);
        assert_int_equal(em_equal(a, b, &all), EM_OK);
        assert_false(all);   /* different shapes are not equal */
        assert_int_equal(em_all(a, &all), EM_ERR_DTYPE);   /* em_all wants a bool tensor */
        em_context_clear_error(g_ctx);
    }
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ matrix products */

/* Result shapes of matmul's rules and the shape error (values: ember-conform) */
static void test_bmm_matmul(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        em_tensor *a = em_zeros(g_ctx, dt, EM_SHAPE(3, 4, 5)), *b = em_zeros(g_ctx, dt, EM_SHAPE(3, 5, 2));
        em_tensor *bm = em_bmm(a, b);
        assert_int_equal(em_tensor_ndim(bm), 3);
        assert_int_equal(em_tensor_size(bm, 1), 4);
        assert_int_equal(em_tensor_size(bm, 2), 2);
        /* matmul: (5,) @ (5,6) -> (6); (12,5) @ (5,) -> (12); (5,)@(5,) -> (); batch broadcast */
        em_tensor *v = em_zeros(g_ctx, dt, EM_SHAPE(5));
        em_tensor *r1 = em_matmul(v, em_zeros(g_ctx, dt, EM_SHAPE(5, 6)));
        assert_non_null(r1);
        assert_int_equal(em_tensor_ndim(r1), 1);
        assert_int_equal(em_tensor_size(r1, 0), 6);
        em_tensor *r2 = em_matmul(em_reshape(a, EM_SHAPE(12, 5)), v);
        assert_int_equal(em_tensor_ndim(r2), 1);
        assert_int_equal(em_tensor_size(r2, 0), 12);
        em_tensor *r3 = em_matmul(v, v);
        assert_int_equal(em_tensor_ndim(r3), 0);
        em_tensor *r4 = em_matmul(em_reshape(a, EM_SHAPE(1, 3, 4, 5)), em_reshape(b, EM_SHAPE(3, 1, 5, 2)));
        assert_int_equal(em_tensor_ndim(r4), 4);
        assert_int_equal(em_tensor_size(r4, 0), 3);
        assert_int_equal(em_tensor_size(r4, 1), 3);
    }
    assert_ok_ctx();
    /* shape errors name both shapes */
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(64, 1000)), *y = em_zeros(g_ctx, EM_F32, EM_SHAPE(100, 10));
    assert_null(em_mm(x, y));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_SHAPE);
    assert_non_null(strstr(em_context_error(g_ctx), "64x1000 and 100x10"));
}

/* ------------------------------------------------------------------ reductions */

/* Result shapes (dims, keepdim, negative dims) and the bad-dim error (values: ember-conform) */
static void test_reduce(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        double *v = rnd_array(24, -1, 1), total = 0;
        em_tensor *x = from_doubles(dt, EM_SHAPE(2, 3, 4), v);
        double *rx = to_doubles(x);
        for (int i = 0; i < 24; i++)
            total += rx[i];
        free(v);
        free(rx);
        assert_true(close_enough(em_item(em_sum(x)), total, tol_for(dt)));   /* a smoke test */
        assert_int_equal(em_tensor_ndim(em_sum(x)), 0);
        assert_int_equal(em_tensor_ndim(em_mean(x)), 0);
        int d0[1] = {0}, d12[2] = {1, -1}, d02[2] = {0, 2};
        em_tensor *s0 = em_sum_dims(x, 1, d0, false);
        em_tensor *s12 = em_sum_dims(x, 2, d12, true);
        em_tensor *m02 = em_mean_dims(x, 2, d02, false);
        assert_int_equal(em_tensor_ndim(s0), 2);
        assert_int_equal(em_tensor_size(s0, 0), 3);
        assert_int_equal(em_tensor_ndim(s12), 3);
        assert_int_equal(em_tensor_size(s12, 1), 1);
        assert_int_equal(em_tensor_size(s12, 2), 1);
        assert_int_equal(em_tensor_ndim(m02), 1);
        assert_int_equal(em_tensor_size(m02, 0), 3);
        int bad[1] = {3};
        assert_null(em_sum_dims(x, 1, bad, false));
        assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
        em_context_clear_error(g_ctx);
    }
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
        /* writing through an expanded view (several elements, one location) is refused ... */
        em_tensor *row1 = em_zeros(g_ctx, dt, EM_SHAPE(1, 3));
        em_tensor *ex = em_expand(row1, EM_SHAPE(4, 3));
        assert_int_equal(em_add_scalar_(ex, 1), EM_ERR_INVALID);
        assert_non_null(strstr(em_context_error(g_ctx), "single memory location"));
        em_context_clear_error(g_ctx);
        assert_int_equal(em_mul_(ex, em_ones(g_ctx, dt, EM_SHAPE(4, 3))), EM_ERR_INVALID);
        em_context_clear_error(g_ctx);
        assert_int_equal(em_copy_(ex, em_ones(g_ctx, dt, EM_SHAPE(3))), EM_ERR_INVALID);
        em_context_clear_error(g_ctx);
        assert_int_equal(em_neg_(ex), EM_ERR_INVALID);
        em_context_clear_error(g_ctx);
        assert_true(em_item(em_sum(row1)) == 0);
        /* ... but for fill_, zero_ and masked_fill_, which write the base, as PyTorch 1.13
         * (masked_fill_: an element where the mask holds at any of its positions) */
        em_tensor *r3 = from_doubles(dt, EM_SHAPE(3), (double[]){3, -6, 3});
        assert_int_equal(em_fill_(em_expand(r3, EM_SHAPE(3, 3)), 2), EM_OK);
        double *rv = to_doubles(r3);
        assert_true(rv[0] == 2 && rv[1] == 2 && rv[2] == 2);
        free(rv);
        em_tensor *c2 = from_doubles(dt, EM_SHAPE(2, 1), (double[]){1, 2});
        em_tensor *cx = em_expand(c2, EM_SHAPE(2, 3));
        const uint8_t mbits[6] = {0, 1, 0, 0, 0, 0};
        assert_int_equal(em_masked_fill_(cx, em_tensor_from_data(g_ctx, EM_BOOL, EM_SHAPE(2, 3),
                                                                 mbits), 9), EM_OK);
        rv = to_doubles(c2);
        assert_true(rv[0] == 9 && rv[1] == 2);
        free(rv);
        em_tensor *r4 = from_doubles(dt, EM_SHAPE(3), (double[]){1, 2, 3});
        const uint8_t mbits2[6] = {1, 0, 0, 0, 0, 1};
        assert_int_equal(em_masked_fill_(em_expand(r4, EM_SHAPE(2, 3)),
                                         em_tensor_from_data(g_ctx, EM_BOOL, EM_SHAPE(2, 3), mbits2),
                                         -1), EM_OK);
        rv = to_doubles(r4);
        assert_true(rv[0] == -1 && rv[1] == 2 && rv[2] == -1);
        free(rv);
        assert_int_equal(em_zero_(cx), EM_OK);
        assert_true(em_item(em_sum(c2)) == 0);
        /* an empty expanded tensor has no element to write twice */
        em_tensor *none = em_expand(em_zeros(g_ctx, dt, EM_SHAPE(0, 1)), EM_SHAPE(0, 3));
        assert_int_equal(em_add_scalar_(none, 1), EM_OK);
        assert_int_equal(em_copy_(none, em_ones(g_ctx, dt, EM_SHAPE(3))), EM_OK);
        /* the result of an in-place op must fit self */
        em_tensor *small = em_zeros(g_ctx, dt, EM_SHAPE(3));
        assert_int_equal(em_add_(small, a), EM_ERR_SHAPE);
        assert_non_null(strstr(em_context_error(g_ctx), "doesn't match the broadcast shape"));
        em_context_clear_error(g_ctx);
        /* copy_ too: src must broadcast to self's shape (PyTorch's message) */
        em_tensor *col = em_zeros(g_ctx, dt, EM_SHAPE(2, 1));
        assert_int_equal(em_copy_(col, from_doubles(dt, EM_SHAPE(2, 3), (double[]){0, 1, 2, 3, 4, 5})),
                         EM_ERR_SHAPE);
        assert_non_null(strstr(em_context_error(g_ctx), "output with shape [2, 1] doesn't match "
                                                        "the broadcast shape [2, 3]"));
        em_context_clear_error(g_ctx);
        assert_true(em_item(em_sum(col)) == 0);
        assert_int_equal(em_copy_(em_scalar(g_ctx, dt, 0), em_ones(g_ctx, dt, EM_SHAPE(1))),
                         EM_ERR_SHAPE);
        em_context_clear_error(g_ctx);
        assert_int_equal(em_masked_fill_(col, em_ones(g_ctx, EM_BOOL, EM_SHAPE(2, 3)), 1),
                         EM_ERR_SHAPE);
        em_context_clear_error(g_ctx);
    }
}

/* fill_ of an expanded integer tensor writes its base (PyTorch 1.13: [3, -6, 3] expanded to
 * 3x3 and filled with 2 is [2, 2, 2]) */
static void test_fill_expanded_int(void **state)
{
    (void)state;
    em_tensor *b = em_to_dtype(from_doubles(EM_F64, EM_SHAPE(3), (double[]){3, -6, 3}), EM_I64);
    assert_int_equal(em_fill_(em_expand(b, EM_SHAPE(3, 3)), 2), EM_OK);
    double *v = to_doubles(em_to_dtype(em_add_scalar(b, 1), EM_F64));
    assert_true(v[0] == 3 && v[1] == 3 && v[2] == 3);
    free(v);
    assert_int_equal(em_zero_(em_expand(b, EM_SHAPE(2, 3))), EM_OK);
    assert_true(em_item(em_sum(b)) == 0);
    assert_ok_ctx();
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
    /* arithmetic on bool is refused as in PyTorch (neg, add of two masks); comparisons of
     * mixed dtypes too */
    em_tensor *m = em_gt_scalar(a, 0);
    assert_null(em_neg(m));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_DTYPE);
    em_context_clear_error(g_ctx);
    assert_null(em_add(m, m));
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
    /* in place and binary entry points return the status they record */
    em_status (*const binary_[])(em_tensor *, em_tensor *) = {em_add_, em_sub_, em_mul_, em_div_,
                                                              em_copy_};
    for (size_t i = 0; i < sizeof binary_ / sizeof binary_[0]; i++) {
        assert_int_equal(binary_[i](a, o), EM_ERR_DEVICE);
        assert_int_equal(em_context_status(g_ctx), EM_ERR_DEVICE);
        em_context_clear_error(g_ctx);
        assert_int_equal(binary_[i](o, a), EM_ERR_DEVICE);
        assert_int_equal(em_context_status(other), EM_ERR_DEVICE);
        em_context_clear_error(other);
        assert_int_equal(em_context_status(g_ctx), EM_OK);
    }
    em_tensor *mask = em_gt_scalar(o, 0), *index = em_zeros(other, EM_I64, EM_SHAPE(2, 3));
    assert_int_equal(em_masked_fill_(a, mask, 1), EM_ERR_DEVICE);
    assert_int_equal(em_context_status(g_ctx), EM_ERR_DEVICE);
    em_context_clear_error(g_ctx);
    assert_int_equal(em_scatter_add_(a, 0, index, o), EM_ERR_DEVICE);
    assert_int_equal(em_context_status(g_ctx), EM_ERR_DEVICE);
    em_context_clear_error(g_ctx);
    /* with an earlier error still pending (kept by em_context_status), a call returns its
     * own failure, the one em_last_error describes */
    bool same = true;
    for (size_t i = 0; i < sizeof binary_ / sizeof binary_[0] + 3; i++) {
        assert_null(em_neg(gone));
        assert_int_equal(em_context_status(g_ctx), EM_ERR_FREED);
        em_status st = i < sizeof binary_ / sizeof binary_[0] ? binary_[i](a, o)
                       : i == sizeof binary_ / sizeof binary_[0] ? em_masked_fill_(a, mask, 1)
                       : i == sizeof binary_ / sizeof binary_[0] + 1 ? em_scatter_add_(a, 0, index, o)
                                                                     : em_equal(a, o, &same);
        assert_int_equal(st, EM_ERR_DEVICE);
        assert_non_null(strstr(em_last_error(), "same context"));
        assert_int_equal(em_context_status(g_ctx), EM_ERR_FREED);
        em_context_clear_error(g_ctx);
    }
    em_tensor *moved = em_to_context(o, g_ctx);
    assert_non_null(moved);
    assert_ptr_equal(em_tensor_context(moved), g_ctx);
    em_context_free(other);
}

/* ------------------------------------------------------------------ hardening */

/* The error recorded in g_ctx is `st` and its message contains `part`; then cleared. */
static void expect_ctx_error(em_status st, const char *part)
{
    if (em_context_status(g_ctx) != st || !strstr(em_context_error(g_ctx), part))
        fail_msg("expected %s with '%s', got %s: %s", em_status_name(st), part,
                 em_status_name(em_context_status(g_ctx)), em_context_error(g_ctx));
    em_context_clear_error(g_ctx);
}

static em_tensor *square_sum(em_tensor *const *in, int n, void *user)
{
    (void)n;
    (void)user;
    return em_sum(em_mul(in[0], in[0]));
}

/* Every output pointer of the public API: NULL is EM_ERR_INVALID naming the argument. */
static void test_null_outputs(void **state)
{
    (void)state;
    em_tensor *s = em_scalar(g_ctx, EM_F64, 2.5);
    em_tensor *v = em_zeros(g_ctx, EM_F32, EM_SHAPE(4));
    em_tensor *e = em_zeros(g_ctx, EM_F32, EM_SHAPE(0));
    assert_int_equal(em_item_get(s, NULL), EM_ERR_INVALID);
    expect_ctx_error(EM_ERR_INVALID, "out is NULL");
    assert_int_equal(em_item_get_i64(s, NULL), EM_ERR_INVALID);
    expect_ctx_error(EM_ERR_INVALID, "out is NULL");
    assert_int_equal(em_all(em_gt_scalar(v, 0), NULL), EM_ERR_INVALID);
    expect_ctx_error(EM_ERR_INVALID, "em_all: out is NULL");
    assert_int_equal(em_equal(v, v, NULL), EM_ERR_INVALID);
    expect_ctx_error(EM_ERR_INVALID, "em_equal: out is NULL");
    assert_int_equal(em_tensor_to_host(v, NULL, 16), EM_ERR_INVALID);
    expect_ctx_error(EM_ERR_INVALID, "dst is NULL");
    assert_int_equal(em_tensor_to_host(e, NULL, 0), EM_ERR_INVALID);
    expect_ctx_error(EM_ERR_INVALID, "dst is NULL");
    assert_int_equal(em_tensor_to_host_async(v, NULL, 16), EM_ERR_INVALID);
    expect_ctx_error(EM_ERR_INVALID, "dst is NULL");
    assert_int_equal(em_split(v, 2, 0, NULL, 0), -1);
    expect_ctx_error(EM_ERR_INVALID, "split: out is NULL");
    assert_int_equal(em_chunk(v, 2, 0, NULL, 4), -1);
    expect_ctx_error(EM_ERR_INVALID, "chunk: out is NULL");
    em_tensor *ts[1] = {v};
    em_batches *b = em_batches_create(ts, 1, 2, false, 0, false);
    assert_non_null(b);
    assert_false(em_batches_next(b, NULL));
    expect_ctx_error(EM_ERR_INVALID, "em_batches_next: out is NULL");
    em_batches_free(b);
    em_tensor *x = em_ones(g_ctx, EM_F64, EM_SHAPE(2));
    assert_int_equal(em_tensor_set_requires_grad(x, true), EM_OK);
    assert_int_equal(em_gradcheck(square_sum, &x, 1, NULL, 1e-6, 1e-5, 1e-3, NULL), EM_ERR_INVALID);
    assert_non_null(strstr(em_last_error(), "result is NULL"));
    assert_int_equal(em_context_create(NULL, NULL), EM_ERR_INVALID);
    assert_non_null(strstr(em_last_error(), "out is NULL"));
    assert_int_equal(em_safetensors_open(g_ctx, "unused.safetensors", NULL), EM_ERR_INVALID);
    expect_ctx_error(EM_ERR_INVALID, "out is NULL");
    assert_int_equal(em_registry_scan(NULL, NULL), EM_ERR_INVALID);
    assert_non_null(strstr(em_last_error(), "out is NULL"));
    assert_ok_ctx();
}

/* Element counts, byte counts and strides are computed with overflow checks: a shape whose
 * count (zeros counted as ones, as strides need) overflows is EM_ERR_SHAPE naming it. */
static void test_count_overflow(void **state)
{
    (void)state;
    const int64_t big = (int64_t)1 << 32, huge = (int64_t)1 << 40;
    em_tensor *one = em_ones(g_ctx, EM_F32, EM_SHAPE(1, 1));
    /* 2^64 elements: a wrapped count would be 0, and sum 0 with EM_OK */
    em_tensor *x = em_expand(one, EM_SHAPE(big, big));
    assert_null(x);
    assert_null(em_sum(x));
    expect_ctx_error(EM_ERR_SHAPE, "expand: shape [4294967296, 4294967296] has too many elements");
    em_tensor *z = em_zeros(g_ctx, EM_F32, EM_SHAPE(0));
    assert_null(em_view(z, EM_SHAPE(big, big)));
    expect_ctx_error(EM_ERR_SHAPE, "view: shape [4294967296, 4294967296] has too many elements");
    assert_null(em_reshape(z, EM_SHAPE(big, -1, big)));
    expect_ctx_error(EM_ERR_SHAPE, "reshape: shape [4294967296, -1, 4294967296] has too many");
    /* no elements, but the strides of the other sizes overflow */
    assert_null(em_view(z, EM_SHAPE(0, huge, huge)));
    expect_ctx_error(EM_ERR_SHAPE, "[0, 1099511627776, 1099511627776] has too many elements");
    assert_null(em_zeros(g_ctx, EM_F32, EM_SHAPE(0, huge, huge)));
    expect_ctx_error(EM_ERR_SHAPE, "em_zeros: shape [0, 1099511627776, 1099511627776]");
    assert_null(em_tensor_from_data(g_ctx, EM_F64, EM_SHAPE(huge, 0, huge), NULL));
    expect_ctx_error(EM_ERR_SHAPE, "em_tensor_from_data: shape [1099511627776, 0, 1099511627776]");
    assert_null(em_randn(g_ctx, EM_F32, EM_SHAPE(2, INT64_MAX, 0)));
    expect_ctx_error(EM_ERR_SHAPE, "em_randn: shape [2, 9223372036854775807, 0]");
    assert_null(em_randn(g_ctx, EM_F64, EM_SHAPE(INT64_MAX)));
    expect_ctx_error(EM_ERR_SHAPE, "em_randn: shape [9223372036854775807]");
    /* broadcasting two valid views into a result of 2^64 elements */
    em_tensor *col = em_expand(one, EM_SHAPE(big, 1)), *row = em_expand(one, EM_SHAPE(1, big));
    assert_non_null(col);
    assert_non_null(row);
    assert_null(em_add(col, row));
    expect_ctx_error(EM_ERR_SHAPE, "add: shape [4294967296, 4294967296] has too many elements");
    /* cat: 64 views of 2^58 elements sum to 2^64 along dim 0 */
    em_tensor *part = em_expand(em_ones(g_ctx, EM_F32, EM_SHAPE(1)), EM_SHAPE((int64_t)1 << 58));
    assert_non_null(part);
    em_tensor *parts[64];
    for (int i = 0; i < 64; i++)
        parts[i] = part;
    assert_null(em_cat(parts, 64, 0));
    expect_ctx_error(EM_ERR_SHAPE, "cat: the sizes along dimension 0 overflow");
    /* a step whose stride product overflows, on a slice of one element */
    em_tensor *sl = em_slice(em_arange(g_ctx, EM_F32, 0, 5, 1), 0, 1, 5, INT64_MAX);
    assert_int_equal(em_tensor_numel(sl), 1);
    assert_true(em_item(sl) == 1.0);
    /* reshape of an empty tensor to sizes whose strides overflow (before any view is tried) */
    assert_null(em_reshape(z, EM_SHAPE(huge, huge, 0)));
    expect_ctx_error(EM_ERR_SHAPE, "reshape: shape [1099511627776, 1099511627776, 0] has too many");
    /* arange whose length overflows int64 before it is counted */
    assert_null(em_arange(g_ctx, EM_I64, -9e18, 9e18, 1));
    expect_ctx_error(EM_ERR_INVALID, "em_arange");
    /* the largest shapes still accepted as views */
    int64_t most = INT64_MAX / 16;
    em_tensor *wide = em_expand(em_ones(g_ctx, EM_F32, EM_SHAPE(1)), EM_SHAPE(most));
    assert_non_null(wide);
    assert_int_equal(em_tensor_numel(wide), most);
    assert_null(em_expand(em_ones(g_ctx, EM_F32, EM_SHAPE(1)), EM_SHAPE(most + 1)));
    expect_ctx_error(EM_ERR_SHAPE, "has too many elements");
    assert_ok_ctx();
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
        EM_TEST(test_creation),   EM_TEST(test_compare_select), EM_TEST(test_bmm_matmul),
        EM_TEST(test_reduce),     EM_TEST(test_views),          EM_TEST(test_inplace),
        EM_TEST(test_fill_expanded_int),
        EM_TEST(test_errors),     EM_TEST(test_null_outputs),   EM_TEST(test_count_overflow),
        EM_TEST(test_memory_steady),
    };
    char name[64];
    snprintf(name, sizeof name, "ops on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
