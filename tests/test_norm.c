/* tests/test_norm.c — pooling and normalisation against PyTorch 1.13 on one backend
 * (EM_TEST_BACKEND): avg_pool2d (stride, padding, ceil_mode, count_include_pad,
 * divisor_override), adaptive_avg_pool2d, batch_norm (training and eval, with and without
 * affine parameters and running statistics) and layer_norm: values, grad_fn names and
 * gradients from tests/data/ref_norm.h (tests/data/gen_norm.py) in f64 and f32, with
 * em_gradcheck; the running statistics over two training steps; strided inputs; the error
 * cases with PyTorch's messages; the functional dropout; and the modules (buffers, train and
 * eval, checkpoints). */
#include "ref_runner.h"

#include <unistd.h>

enum { NORM_AVG_POOL = 100, NORM_ADAPTIVE_POOL, NORM_BATCH_NORM, NORM_LAYER_NORM };

#include "data/ref_norm.h"

static em_tensor *call_op(const ref_case *c, em_tensor *const *in, em_tensor *target)
{
    (void)target;
    const int *ia = c->ia;
    em_tensor *x = in[0];
    switch (c->op) {
    case NORM_AVG_POOL: {
        int64_t k[2] = {ia[0], ia[1]}, s[2] = {ia[2], ia[3]}, p[2] = {ia[4], ia[5]};
        return em_avg_pool2d(x, k, ia[2] ? s : NULL, p, c->da[0] != 0, c->da[1] != 0,
                             (int64_t)c->da[2]);
    }
    case NORM_ADAPTIVE_POOL: {
        int64_t o[2] = {ia[0], ia[1]};
        return em_adaptive_avg_pool2d(x, o);
    }
    case NORM_BATCH_NORM: {
        int k = 1;
        em_tensor *w = NULL, *b = NULL, *rm = NULL, *rv = NULL;
        if (ia[1])
            w = in[k++];
        if (ia[2])
            b = in[k++];
        if (ia[3]) {   /* fresh copies: training updates them */
            rm = em_clone(in[k]);
            rv = em_clone(in[k + 1]);
        }
        return em_batch_norm(x, rm, rv, w, b, ia[0] != 0, c->da[0], c->da[1]);
    }
    case NORM_LAYER_NORM: {
        int k = 1, nd = em_tensor_ndim(x);
        em_tensor *w = ia[1] ? in[k++] : NULL, *b = ia[2] ? in[k] : NULL;
        return em_layer_norm(x, ia[0], em_tensor_shape(x) + nd - ia[0], w, b, c->da[0]);
    }
    default:
        return NULL;
    }
}

static void test_reference(void **state)
{
    (void)state;
    ref_run_all(norm_cases, sizeof norm_cases / sizeof norm_cases[0], call_op);
}

static void expect_close(em_tensor *t, const double *want, int64_t n, double tol)
{
    assert_non_null(t);
    assert_int_equal(em_tensor_numel(t), n);
    double *v = to_doubles(t);
    for (int64_t i = 0; i < n; i++)
        if (!close_enough(v[i], want[i], tol))
            fail_msg("element %lld: got %.17g, want %.17g", (long long)i, v[i], want[i]);
    free(v);
}

/* running_mean / running_var over two training steps (momentum 0.1 then 0.5; the variance
 * unbiased), then eval with them */
static void test_running_stats(void **state)
{
    (void)state;
    static const em_dtype dts[2] = {EM_F64, EM_F32};
    for (int k = 0; k < 2; k++) {
        em_dtype dt = dts[k];
        double tol = dt == EM_F64 ? 1e-12 : 1e-5;
        em_scope_begin(g_ctx);
        em_tensor *x = from_doubles(dt, EM_SHAPE(2, 3, 2, 2), bn_run_x);
        em_tensor *rm = from_doubles(dt, EM_SHAPE(3), bn_run_mean0);
        em_tensor *rv = from_doubles(dt, EM_SHAPE(3), bn_run_var0);
        assert_non_null(em_batch_norm(x, rm, rv, NULL, NULL, true, 0.1, 1e-5));
        em_tensor *x2 = em_add_scalar(em_mul_scalar(x, 2.0), 1.0);
        assert_non_null(em_batch_norm(x2, rm, rv, NULL, NULL, true, 0.5, 1e-5));
        expect_close(rm, bn_run_mean, 3, tol);
        expect_close(rv, bn_run_var, 3, tol);
        expect_close(em_batch_norm(x, rm, rv, NULL, NULL, false, 0.1, 1e-5), bn_run_eval, 24, tol);
        /* eval leaves them alone */
        expect_close(rm, bn_run_mean, 3, tol);
        em_scope_end(g_ctx);
    }
    assert_ok_ctx();
}

/* a strided (transposed) input gives what its contiguous copy gives, values and gradients */
static void test_strided(void **state)
{
    (void)state;
    em_scope_begin(g_ctx);
    em_manual_seed(g_ctx, 7);
    em_tensor *base = em_randn(g_ctx, EM_F64, EM_SHAPE(3, 2, 5, 6));
    em_tensor_set_requires_grad(base, true);
    em_tensor *xt = em_transpose(base, 0, 1);           /* (2, 3, 5, 6), not contiguous */
    em_tensor *xc = em_contiguous(xt);
    int64_t k[2] = {3, 2}, s[2] = {2, 1}, p[2] = {1, 1}, o[2] = {3, 4};
    em_tensor *a = em_avg_pool2d(xt, k, s, p, true, false, 0);
    em_tensor *b = em_avg_pool2d(xc, k, s, p, true, false, 0);
    bool same = false;
    assert_int_equal(em_equal(a, b, &same), EM_OK);
    assert_true(same);
    a = em_adaptive_avg_pool2d(xt, o);
    b = em_adaptive_avg_pool2d(xc, o);
    assert_int_equal(em_equal(a, b, &same), EM_OK);
    assert_true(same);
    /* the gradient through the transpose lands in base's layout */
    assert_int_equal(em_backward(em_sum(em_mul(a, a))), EM_OK);
    em_tensor *g1 = em_clone(em_grad(base));
    em_tensor_set_requires_grad(base, false);
    em_tensor *xd = em_contiguous(em_transpose(base, 0, 1));
    em_tensor_set_requires_grad(xd, true);
    em_tensor *c = em_adaptive_avg_pool2d(xd, o);
    assert_int_equal(em_backward(em_sum(em_mul(c, c))), EM_OK);
    assert_int_equal(em_equal(g1, em_contiguous(em_transpose(em_grad(xd), 0, 1)), &same), EM_OK);
    assert_true(same);
    /* batch_norm and layer_norm on strided input */
    em_tensor *bn1 = em_batch_norm(xt, NULL, NULL, NULL, NULL, true, 0.1, 1e-5);
    em_tensor *bn2 = em_batch_norm(xc, NULL, NULL, NULL, NULL, true, 0.1, 1e-5);
    em_tensor *d = em_max(em_abs(em_sub(bn1, bn2)));
    assert_true(em_item(d) < 1e-12);
    em_tensor *ln1 = em_layer_norm(xt, EM_SHAPE(5, 6), NULL, NULL, 1e-5);
    em_tensor *ln2 = em_layer_norm(xc, EM_SHAPE(5, 6), NULL, NULL, 1e-5);
    assert_true(em_item(em_max(em_abs(em_sub(ln1, ln2)))) < 1e-12);
    em_scope_end(g_ctx);
    assert_ok_ctx();
}

/* an empty batch and an empty output */
static void test_empty(void **state)
{
    (void)state;
    em_scope_begin(g_ctx);
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(0, 3, 4, 4));
    em_tensor_set_requires_grad(x, true);
    int64_t k[2] = {2, 2}, o0[2] = {0, 2};
    em_tensor *y = em_avg_pool2d(x, k, NULL, NULL, false, true, 0);
    assert_non_null(y);
    assert_int_equal(em_tensor_size(y, 2), 2);
    assert_int_equal(em_backward(em_sum(y)), EM_OK);
    em_tensor *x2 = em_ones(g_ctx, EM_F32, EM_SHAPE(2, 3, 4, 4));
    em_tensor_set_requires_grad(x2, true);
    em_tensor *z = em_adaptive_avg_pool2d(x2, o0);
    assert_non_null(z);
    assert_int_equal(em_tensor_numel(z), 0);
    assert_int_equal(em_backward(em_sum(z)), EM_OK);
    assert_true(em_item(em_sum(em_abs(em_grad(x2)))) == 0.0);
    /* batch_norm of an empty batch: a copy, the running statistics untouched (PyTorch) */
    em_tensor *rm = em_zeros(g_ctx, EM_F32, EM_SHAPE(3)), *rv = em_ones(g_ctx, EM_F32, EM_SHAPE(3));
    em_tensor *e = em_batch_norm(x, rm, rv, NULL, NULL, true, 0.1, 1e-5);
    assert_non_null(e);
    assert_string_equal(em_tensor_grad_fn_name(e), "CloneBackward0");
    assert_true(em_item(em_sum(rv)) == 3.0 && em_item(em_sum(em_abs(rm))) == 0.0);
    assert_int_equal(em_tensor_numel(em_layer_norm(x, EM_SHAPE(4, 4), NULL, NULL, 1e-5)), 0);
    em_scope_end(g_ctx);
    assert_ok_ctx();
}

#define EXPECT_FAIL(call, st, ...)                                                                 \
    do {                                                                                           \
        assert_null(call);                                                                         \
        TH_EXPECT_MSG(em_context_status(g_ctx), st, em_context_error(g_ctx), __VA_ARGS__);        \
        em_context_clear_error(g_ctx);                                                             \
    } while (0)

static void test_errors(void **state)
{
    (void)state;
    em_scope_begin(g_ctx);
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3, 5, 5));
    int64_t k2[2] = {2, 2}, k6[2] = {6, 6}, k0[2] = {0, 2}, s0[2] = {0, 1}, p2[2] = {2, 2};
    EXPECT_FAIL(em_avg_pool2d(x, k2, s0, NULL, false, true, 0), EM_ERR_INVALID,
                "stride should not be zero");
    EXPECT_FAIL(em_avg_pool2d(x, k0, k2, NULL, false, true, 0), EM_ERR_INVALID,
                "kernel size should be greater than zero, but got kH: 0 kW: 2");
    EXPECT_FAIL(em_avg_pool2d(x, k2, NULL, p2, false, true, 0), EM_ERR_INVALID,
                "pad should be at most half of kernel size, but got pad=2 and kernel_size=2");
    EXPECT_FAIL(em_avg_pool2d(x, k6, NULL, NULL, false, true, 0), EM_ERR_SHAPE,
                "Given input size: (3x5x5). Calculated output size: (3x0x0). Output size is too "
                "small");
    EXPECT_FAIL(em_avg_pool2d(em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3, 0, 5)), k2, NULL, NULL,
                              false, true, 0),
                EM_ERR_SHAPE, "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch "
                "size for input, but got:[2, 3, 0, 5]");
    EXPECT_FAIL(em_avg_pool2d(em_zeros(g_ctx, EM_F32, EM_SHAPE(5, 5)), k2, NULL, NULL, false,
                              true, 0),
                EM_ERR_SHAPE, "[5, 5]");
    EXPECT_FAIL(em_avg_pool2d(em_zeros(g_ctx, EM_I64, EM_SHAPE(1, 5, 5)), k2, NULL, NULL, false,
                              true, 0),
                EM_ERR_DTYPE, "floating point");
    EXPECT_FAIL(em_adaptive_avg_pool2d(em_zeros(g_ctx, EM_F32, EM_SHAPE(5, 5)), k2), EM_ERR_SHAPE,
                "adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got [5, 5]");
    EXPECT_FAIL(em_adaptive_avg_pool2d(em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3, 0, 5)), k2),
                EM_ERR_SHAPE, "adaptive_avg_pool2d(): Expected input to have non-zero size for "
                "non-batch dimensions, but input has sizes [2, 3, 0, 5] with dimension 2 being "
                "empty");
    EXPECT_FAIL(em_adaptive_avg_pool2d(x, (const int64_t[]){-1, 2}), EM_ERR_INVALID,
                "output_size");
    /* batch_norm */
    em_tensor *rm = em_zeros(g_ctx, EM_F32, EM_SHAPE(3)), *rv = em_ones(g_ctx, EM_F32, EM_SHAPE(3));
    EXPECT_FAIL(em_batch_norm(em_zeros(g_ctx, EM_F32, EM_SHAPE(1, 3)), rm, rv, NULL, NULL, true,
                              0.1, 1e-5),
                EM_ERR_INVALID, "Expected more than 1 value per channel when training, got "
                "input size [1, 3]");
    EXPECT_FAIL(em_batch_norm(em_zeros(g_ctx, EM_F32, EM_SHAPE(1, 3, 1)), NULL, NULL, NULL, NULL,
                              true, 0.1, 1e-5),
                EM_ERR_INVALID, "Expected more than 1 value per channel when training");
    /* eval mode takes one value per channel */
    assert_non_null(em_batch_norm(em_zeros(g_ctx, EM_F32, EM_SHAPE(1, 3)), rm, rv, NULL, NULL,
                                  false, 0.1, 1e-5));
    EXPECT_FAIL(em_batch_norm(em_zeros(g_ctx, EM_F32, EM_SHAPE(4, 3)),
                              em_zeros(g_ctx, EM_F32, EM_SHAPE(4)), rv, NULL, NULL, true, 0.1, 1e-5),
                EM_ERR_SHAPE, "running_mean should contain 3 elements not 4");
    EXPECT_FAIL(em_batch_norm(em_zeros(g_ctx, EM_F32, EM_SHAPE(4, 3)), NULL, NULL,
                              em_ones(g_ctx, EM_F32, EM_SHAPE(4)), NULL, true, 0.1, 1e-5),
                EM_ERR_SHAPE, "weight should contain 3 elements not 4");
    EXPECT_FAIL(em_batch_norm(em_zeros(g_ctx, EM_F32, EM_SHAPE(4)), NULL, NULL, NULL, NULL, true,
                              0.1, 1e-5),
                EM_ERR_SHAPE, "Dimension out of range");
    EXPECT_FAIL(em_batch_norm(em_zeros(g_ctx, EM_F32, EM_SHAPE(4, 3)), NULL, NULL, NULL, NULL,
                              false, 0.1, 1e-5),
                EM_ERR_INVALID, "running_mean must be defined in evaluation mode");
    EXPECT_FAIL(em_batch_norm(em_zeros(g_ctx, EM_F32, EM_SHAPE(4, 3)), NULL, NULL,
                              em_ones(g_ctx, EM_F64, EM_SHAPE(3)), NULL, true, 0.1, 1e-5),
                EM_ERR_DTYPE, "weight", "f64");
    /* a failed call leaves the running statistics as they were */
    EXPECT_FAIL(em_batch_norm(em_zeros(g_ctx, EM_F32, EM_SHAPE(4, 3)), rm, rv,
                              em_ones(g_ctx, EM_F32, EM_SHAPE(2)), NULL, true, 0.1, 1e-5),
                EM_ERR_SHAPE, "weight should contain 3 elements not 2");
    assert_true(em_item(em_sum(em_abs(rm))) == 0.0);
    assert_true(em_item(em_sum(rv)) == 3.0);
    /* layer_norm */
    em_tensor *y = em_zeros(g_ctx, EM_F32, EM_SHAPE(4, 3));
    EXPECT_FAIL(em_layer_norm(y, EM_SHAPE(4), NULL, NULL, 1e-5), EM_ERR_SHAPE,
                "Given normalized_shape=[4], expected input with shape [*, 4], but got input of "
                "size[4, 3]");
    EXPECT_FAIL(em_layer_norm(y, EM_SHAPE(3), em_ones(g_ctx, EM_F32, EM_SHAPE(4)), NULL, 1e-5),
                EM_ERR_SHAPE, "Expected weight to be of same shape as normalized_shape, but got "
                "weight of shape [4] and normalized_shape = [3]");
    EXPECT_FAIL(em_layer_norm(y, 0, NULL, NULL, NULL, 1e-5), EM_ERR_SHAPE,
                "Expected normalized_shape to be at least 1-dimensional");
    /* dropout */
    EXPECT_FAIL(em_dropout_functional(y, 1.5, true), EM_ERR_INVALID,
                "dropout probability has to be between 0 and 1, but got 1.5");
    assert_null(em_avg_pool2d(NULL, k2, NULL, NULL, false, true, 0));
    assert_null(em_batch_norm(NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
    em_scope_end(g_ctx);
    assert_ok_ctx();
}

static void test_dropout(void **state)
{
    (void)state;
    em_scope_begin(g_ctx);
    const int64_t n = 50000;
    em_tensor *x = em_full(g_ctx, EM_F32, EM_SHAPE(n), 3.0);
    em_tensor_set_requires_grad(x, true);
    em_tensor *y = em_dropout_functional(x, 0.25, true);
    assert_string_equal(em_tensor_grad_fn_name(y), "MulBackward0");
    double *v = to_doubles(y);
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] == 0.0)
            zeros++;
        else
            assert_true(fabs(v[i] - 3.0 / 0.75) < 1e-5);
    }
    free(v);
    assert_true(fabs((double)zeros / (double)n - 0.25) < 5 * sqrt(0.25 * 0.75 / (double)n));
    /* one seed, one mask */
    em_manual_seed(g_ctx, 3);
    em_tensor *a = em_dropout_functional(x, 0.5, true);
    em_manual_seed(g_ctx, 3);
    em_tensor *b = em_dropout_functional(x, 0.5, true);
    bool same = false;
    assert_int_equal(em_equal(a, b, &same), EM_OK);
    assert_true(same);
    /* eval and p = 0: the input itself; p = 1: zeros, still recorded */
    em_tensor *e = em_dropout_functional(x, 0.5, false);
    assert_null(em_tensor_grad_fn_name(e));
    assert_int_equal(em_equal(e, x, &same), EM_OK);
    assert_true(same);
    assert_null(em_tensor_grad_fn_name(em_dropout_functional(x, 0.0, true)));
    em_tensor *z = em_dropout_functional(x, 1.0, true);
    assert_string_equal(em_tensor_grad_fn_name(z), "MulBackward0");
    assert_true(em_item(em_sum(em_abs(z))) == 0.0);
    em_scope_end(g_ctx);
    assert_ok_ctx();
}

/* the modules: names, parameters and buffers, train / eval, checks, checkpoints */
static void test_modules(void **state)
{
    (void)state;
    em_module *net = em_sequential(g_ctx, (em_module *[]){
        em_batch_norm2d(g_ctx, 3, 1e-5, 0.1, true, true),
        em_avg_pool2d_module(g_ctx, (const int64_t[]){2, 2}, NULL, NULL, false, true, 0),
        em_adaptive_avg_pool2d_module(g_ctx, (const int64_t[]){1, 1}),
        em_layer_norm_module(g_ctx, EM_SHAPE(3, 1, 1), 1e-5, true),
        em_batch_norm2d(g_ctx, 3, 1e-5, 0.1, false, false)}, 5);
    assert_non_null(net);
    const char *names[8];
    em_tensor *ts[8];
    assert_int_equal(em_module_parameters(net, names, ts, 8), 4);
    assert_string_equal(names[0], "0.weight");
    assert_string_equal(names[3], "3.bias");
    assert_int_equal(em_module_buffers(net, names, ts, 8), 3);
    assert_string_equal(names[0], "0.running_mean");
    assert_string_equal(names[1], "0.running_var");
    assert_string_equal(names[2], "0.num_batches_tracked");
    assert_int_equal(em_tensor_dtype(ts[2]), EM_I64);
    assert_int_equal(em_tensor_ndim(ts[2]), 0);
    em_tensor *rm = ts[0], *nb = ts[2];
    em_manual_seed(g_ctx, 1);
    em_tensor *x = em_add_scalar(em_randn(g_ctx, EM_F32, EM_SHAPE(4, 3, 4, 4)), 2.0);
    em_tensor *y = em_module_forward(net, x);
    assert_non_null(y);
    assert_int_equal(em_tensor_ndim(y), 4);
    assert_int_equal(em_tensor_size(y, 3), 1);
    assert_true(em_item(nb) == 1.0);
    /* training moved running_mean towards the batch mean (about 2) */
    double *m = to_doubles(rm);
    for (int c = 0; c < 3; c++)
        assert_true(m[c] > 0.1 && m[c] < 0.3);
    free(m);
    em_module_train(net, false);
    assert_non_null(em_module_forward(net, x));
    assert_true(em_item(nb) == 1.0);
    /* BatchNorm2d wants 4-D input; BatchNorm1d 2-D or 3-D */
    em_module *bn = em_batch_norm2d(g_ctx, 3, 1e-5, 0.1, true, true);
    assert_null(em_module_forward(bn, em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3, 4))));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_SHAPE, em_context_error(g_ctx),
                  "BatchNorm2d: expected 4D input (got 3D input)");
    em_context_clear_error(g_ctx);
    em_module *bn1 = em_batch_norm1d(g_ctx, 3, 1e-5, NAN, true, true);
    assert_null(em_module_forward(bn1, em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3, 4, 4))));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_SHAPE, em_context_error(g_ctx),
                  "BatchNorm1d: expected 2D or 3D input (got 4D input)");
    em_context_clear_error(g_ctx);
    /* momentum NAN: the cumulative average; two batches give the mean of their means */
    em_tensor *a = em_full(g_ctx, EM_F32, EM_SHAPE(2, 3), 1.0), *b = em_full(g_ctx, EM_F32, EM_SHAPE(2, 3), 4.0);
    assert_non_null(em_module_forward(bn1, a));
    assert_non_null(em_module_forward(bn1, b));
    assert_int_equal(em_module_buffers(bn1, NULL, ts, 8), 3);
    m = to_doubles(ts[0]);
    for (int c = 0; c < 3; c++)
        assert_true(fabs(m[c] - 2.5) < 1e-6);
    free(m);
    /* a checkpoint of the net holds parameters and buffers; a module without them refuses it */
    char path[] = "norm-ckpt-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(em_module_save(net, path, NULL), EM_OK);
    em_module *other = em_sequential(g_ctx, (em_module *[]){
        em_batch_norm2d(g_ctx, 3, 1e-5, 0.1, true, true),
        em_avg_pool2d_module(g_ctx, (const int64_t[]){2, 2}, NULL, NULL, false, true, 0),
        em_adaptive_avg_pool2d_module(g_ctx, (const int64_t[]){1, 1}),
        em_layer_norm_module(g_ctx, EM_SHAPE(3, 1, 1), 1e-5, true),
        em_batch_norm2d(g_ctx, 3, 1e-5, 0.1, false, false)}, 5);
    assert_int_equal(em_module_load(other, path), EM_OK);
    assert_int_equal(em_module_buffers(other, NULL, ts, 8), 3);
    assert_true(em_item(ts[2]) == 1.0);
    bool same = false;
    assert_int_equal(em_equal(ts[0], rm, &same), EM_OK);
    assert_true(same);
    em_module *untracked = em_sequential(g_ctx, (em_module *[]){
        em_batch_norm2d(g_ctx, 3, 1e-5, 0.1, true, false),
        em_avg_pool2d_module(g_ctx, (const int64_t[]){2, 2}, NULL, NULL, false, true, 0),
        em_adaptive_avg_pool2d_module(g_ctx, (const int64_t[]){1, 1}),
        em_layer_norm_module(g_ctx, EM_SHAPE(3, 1, 1), 1e-5, true),
        em_batch_norm2d(g_ctx, 3, 1e-5, 0.1, false, false)}, 5);
    assert_int_equal(em_module_load(untracked, path), EM_ERR_INVALID);
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_INVALID, em_context_error(g_ctx),
                  "Unexpected key(s) in state_dict: \"0.running_mean\", \"0.running_var\", "
                  "\"0.num_batches_tracked\"");
    em_context_clear_error(g_ctx);
    unlink(path);
    em_module_free(untracked);
    em_module_free(other);
    em_module_free(bn1);
    em_module_free(bn);
    em_module_free(net);
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_reference), EM_TEST(test_running_stats), EM_TEST(test_strided),
        EM_TEST(test_empty),     EM_TEST(test_errors),        EM_TEST(test_dropout),
        EM_TEST(test_modules),
    };
    char name[64];
    snprintf(name, sizeof name, "pooling and normalisation on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
