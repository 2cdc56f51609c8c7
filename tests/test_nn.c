/* tests/test_nn.c — modules against torch.nn (PyTorch 1.13): Linear's forward and backward with
 * PyTorch's weights loaded through the parameter handles, its default initialisation (bounds,
 * bit-identical to the cpu backend's for one seed), Dropout in training and eval mode with
 * p = 0 and p = 1, Sequential's parameter names and order, train/eval recursion, an MLP whose
 * loss falls under a few Adam steps, and the error cases. Reference numbers: tests/data/ref_nn.h
 * (tests/data/gen_nn.py). Built once per backend. */
#include "backend_harness.h"
#include "data/ref_nn.h"

#define TOL 2e-5

static void load(em_tensor *p, const double *v)
{
    em_tensor *src = from_doubles(EM_F32, em_tensor_ndim(p), em_tensor_shape(p), v);
    em_no_grad_begin(g_ctx);
    assert_int_equal(em_copy_(p, src), EM_OK);
    em_no_grad_end(g_ctx);
}

static void assert_tensor(em_tensor *t, const double *want, int64_t n)
{
    assert_non_null(t);
    assert_int_equal(em_tensor_numel(t), n);
    double *got = to_doubles(t);
    assert_close_arrays(got, want, n, TOL);
    free(got);
}

static void test_linear_reference(void **state)
{
    (void)state;
    em_module *lin = em_linear(g_ctx, 4, 3, true);
    assert_non_null(lin);
    const char *names[2];
    em_tensor *p[2];
    assert_int_equal(em_module_parameters(lin, names, p, 2), 2);
    assert_string_equal(names[0], "weight");
    assert_string_equal(names[1], "bias");
    assert_int_equal(em_tensor_ndim(p[0]), 2);
    assert_int_equal(em_tensor_size(p[0], 0), 3);
    assert_int_equal(em_tensor_size(p[0], 1), 4);
    assert_int_equal(em_tensor_size(p[1], 0), 3);
    assert_true(em_tensor_requires_grad(p[0]) && em_tensor_is_leaf(p[0]));
    load(p[0], nn_w);
    load(p[1], nn_b);
    em_tensor *x = from_doubles(EM_F32, EM_SHAPE(2, 4), nn_x);
    em_tensor_set_requires_grad(x, true);
    em_tensor *y = em_module_forward(lin, x);
    assert_tensor(y, nn_y, 6);
    assert_string_equal(em_tensor_grad_fn_name(y), "AddBackward0");
    assert_int_equal(em_backward(em_sum(em_mul(y, y))), EM_OK);
    assert_tensor(em_grad(p[0]), nn_dw, 12);
    assert_tensor(em_grad(p[1]), nn_db, 3);
    assert_tensor(em_grad(x), nn_dx, 8);
    assert_ok_ctx();
    em_module_free(lin);

    /* without bias: x @ W^T only */
    lin = em_linear(g_ctx, 4, 3, false);
    assert_int_equal(em_module_parameter_count(lin), 1);
    assert_int_equal(em_module_parameters(lin, NULL, p, 2), 1);
    load(p[0], nn_w);
    y = em_module_forward(lin, x);
    double want[6];
    for (int i = 0; i < 6; i++)
        want[i] = nn_y[i] - nn_b[i % 3];
    assert_tensor(y, want, 6);
    assert_ok_ctx();
    em_module_free(lin);
}

/* the weights of Linear(in, out) for seed s, as floats */
static float *linear_weights(em_context *ctx, uint64_t seed, int64_t in, int64_t out, float *bias)
{
    em_manual_seed(ctx, seed);
    em_module *lin = em_linear(ctx, in, out, true);
    assert_non_null(lin);
    em_tensor *p[2];
    assert_int_equal(em_module_parameters(lin, NULL, p, 2), 2);
    float *w = malloc(sizeof *w * (size_t)(in * out));
    assert_int_equal(em_tensor_to_host(p[0], w, sizeof *w * (size_t)(in * out)), EM_OK);
    assert_int_equal(em_tensor_to_host(p[1], bias, sizeof *bias * (size_t)out), EM_OK);
    em_module_free(lin);
    return w;
}

static void test_linear_init(void **state)
{
    (void)state;
    const int64_t in = 50, out = 40;
    float b[40], b2[40], bc[40];
    float *w = linear_weights(g_ctx, 5, in, out, b);
    float *w2 = linear_weights(g_ctx, 5, in, out, b2);
    double bound = 1.0 / sqrt((double)in), lo = 1, hi = -1, mean = 0, sq = 0;
    for (int i = 0; i < in * out; i++) {
        assert_true(fabs(w[i]) <= bound);
        lo = fmin(lo, w[i]);
        hi = fmax(hi, w[i]);
        mean += w[i];
        sq += (double)w[i] * w[i];
    }
    mean /= (double)(in * out);
    sq /= (double)(in * out);
    /* U(-bound, bound): spread to near both bounds, mean 0, variance bound^2 / 3 */
    assert_true(lo < -0.95 * bound && hi > 0.95 * bound);
    assert_true(fabs(mean) < 0.05 * bound);
    assert_true(fabs(sq - bound * bound / 3) < 0.1 * bound * bound / 3);
    for (int i = 0; i < out; i++)
        assert_true(fabs(b[i]) <= bound);
    /* one seed, one model; another seed, another */
    assert_memory_equal(w, w2, sizeof *w * (size_t)(in * out));
    assert_memory_equal(b, b2, sizeof b);
    float *w3 = linear_weights(g_ctx, 6, in, out, b2);
    assert_true(memcmp(w, w3, sizeof *w * (size_t)(in * out)) != 0);
    free(w3);
    /* the same bits as the cpu backend's */
    char why[512];
    em_context *cpu = test_open("cpu", why, sizeof why);
    assert_non_null(cpu);
    float *wc = linear_weights(cpu, 5, in, out, bc);
    assert_memory_equal(w, wc, sizeof *w * (size_t)(in * out));
    assert_memory_equal(b, bc, sizeof b);
    free(wc);
    em_context_free(cpu);
    free(w);
    free(w2);
    /* in_features 0: empty weight, zero bias (PyTorch's bound 0) */
    em_module *lin = em_linear(g_ctx, 0, 3, true);
    em_tensor *p[2];
    assert_int_equal(em_module_parameters(lin, NULL, p, 2), 2);
    assert_int_equal(em_tensor_numel(p[0]), 0);
    double *bz = to_doubles(p[1]);
    for (int i = 0; i < 3; i++)
        assert_true(bz[i] == 0.0);
    free(bz);
    em_module_free(lin);
    assert_ok_ctx();
}

static void test_dropout(void **state)
{
    (void)state;
    const int64_t n = 100000;
    em_module *d = em_dropout(g_ctx, 0.3);
    assert_non_null(d);
    assert_string_equal(em_module_name(d), "Dropout");
    em_tensor *x = em_full(g_ctx, EM_F32, EM_SHAPE(n), 2.0);
    em_tensor_set_requires_grad(x, true);
    em_tensor *y = em_module_forward(d, x);
    double *v = to_doubles(y);
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] == 0.0)
            zeros++;
        else
            assert_true(fabs(v[i] - 2.0 / 0.7) < 1e-5);
    }
    free(v);
    /* 0.3 +- 5 standard deviations of the binomial fraction */
    assert_true(fabs((double)zeros / (double)n - 0.3) < 5 * sqrt(0.3 * 0.7 / (double)n));
    /* gradient: the mask times the scale */
    assert_int_equal(em_backward(em_sum(y)), EM_OK);
    double *g = to_doubles(em_grad(x));
    v = to_doubles(y);
    for (int64_t i = 0; i < n; i++)
        assert_true(v[i] == 0.0 ? g[i] == 0.0 : fabs(g[i] - 1 / 0.7) < 1e-5);
    free(g);
    free(v);
    /* eval: identity */
    em_module_train(d, false);
    assert_false(em_module_is_training(d));
    em_tensor *e = em_module_forward(d, x);
    bool same = false;
    assert_int_equal(em_equal(e, x, &same), EM_OK);
    assert_true(same);
    em_module_free(d);
    /* p = 0 keeps everything, p = 1 zeroes everything (training mode) */
    d = em_dropout(g_ctx, 0.0);
    assert_int_equal(em_equal(em_module_forward(d, x), x, &same), EM_OK);
    assert_true(same);
    em_module_free(d);
    d = em_dropout(g_ctx, 1.0);
    assert_int_equal(em_equal(em_module_forward(d, x), em_zeros_like(x), &same), EM_OK);
    assert_true(same);
    em_module_free(d);
    assert_ok_ctx();
    /* PyTorch's message for p outside [0, 1] */
    assert_null(em_dropout(g_ctx, 1.5));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    assert_non_null(strstr(em_context_error(g_ctx),
                           "dropout probability has to be between 0 and 1, but got 1.5"));
    em_context_clear_error(g_ctx);
    assert_null(em_dropout(g_ctx, -0.1));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    em_context_clear_error(g_ctx);
    assert_null(em_dropout(g_ctx, NAN));
    em_context_clear_error(g_ctx);
}

static em_module *mlp(void)
{
    return em_sequential(g_ctx, (em_module *[]){
        em_linear(g_ctx, 6, 8, true), em_relu_module(g_ctx), em_dropout(g_ctx, 0.1),
        em_linear(g_ctx, 8, 5, false), em_function_module(g_ctx, "Tanh", em_tanh),
        em_sequential(g_ctx, (em_module *[]){em_linear(g_ctx, 5, 3, true)}, 1)}, 6);
}

static void test_sequential(void **state)
{
    (void)state;
    em_module *net = mlp();
    assert_non_null(net);
    assert_string_equal(em_module_name(net), "Sequential");
    static const char *want[] = {"0.weight", "0.bias", "3.weight", "5.0.weight", "5.0.bias"};
    static const int64_t rows[] = {8, 8, 5, 3, 3};
    assert_int_equal(em_module_parameter_count(net), 5);
    const char *names[5];
    em_tensor *p[5];
    assert_int_equal(em_module_parameters(net, names, p, 5), 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(names[i], want[i]);
        assert_int_equal(em_tensor_size(p[i], 0), rows[i]);
    }
    /* a short buffer gets the first ones; the count is still the total */
    const char *two[2];
    assert_int_equal(em_module_parameters(net, two, NULL, 2), 5);
    assert_string_equal(two[1], "0.bias");
    /* forward: the layers in order */
    em_module_train(net, false);
    em_tensor *x = em_randn(g_ctx, EM_F32, EM_SHAPE(7, 6));
    em_tensor *y = em_module_forward(net, x);
    assert_non_null(y);
    assert_int_equal(em_tensor_size(y, 0), 7);
    assert_int_equal(em_tensor_size(y, 1), 3);
    em_tensor *h = em_add(em_matmul(x, em_t(p[0])), p[1]);
    h = em_tanh(em_matmul(em_relu(h), em_t(p[2])));
    h = em_add(em_matmul(h, em_t(p[3])), p[4]);
    double *a = to_doubles(y), *b = to_doubles(h);
    assert_close_arrays(a, b, 21, TOL);
    free(a);
    free(b);
    assert_ok_ctx();
    /* an empty sequential returns its input */
    em_module *empty = em_sequential(g_ctx, NULL, 0);
    assert_non_null(empty);
    assert_int_equal(em_module_parameter_count(empty), 0);
    bool same = false;
    assert_int_equal(em_equal(em_module_forward(empty, x), x, &same), EM_OK);
    assert_true(same);
    em_module_free(empty);
    em_module_free(net);
}

static void test_train_eval(void **state)
{
    (void)state;
    em_module *inner = em_dropout(g_ctx, 0.5);
    em_module *net = em_sequential(g_ctx, (em_module *[]){
        em_linear(g_ctx, 2, 2, true),
        em_sequential(g_ctx, (em_module *[]){em_relu_module(g_ctx), inner}, 2)}, 2);
    assert_non_null(net);
    assert_true(em_module_is_training(net) && em_module_is_training(inner));
    em_module_train(net, false);
    assert_false(em_module_is_training(net));
    assert_false(em_module_is_training(inner));
    em_module_train(net, true);
    assert_true(em_module_is_training(inner));
    em_module_free(net);
    assert_ok_ctx();
}

static void test_mlp_adam(void **state)
{
    (void)state;
    em_manual_seed(g_ctx, 3);
    em_module *net = em_sequential(g_ctx, (em_module *[]){
        em_linear(g_ctx, 4, 16, true), em_relu_module(g_ctx), em_linear(g_ctx, 16, 3, true)}, 3);
    assert_non_null(net);
    em_tensor *p[4];
    assert_int_equal(em_module_parameters(net, NULL, p, 4), 4);
    em_adam_options o = em_adam_defaults();
    o.lr = 1e-2;
    em_optim *opt = em_optim_adam(p, 4, &o);
    assert_non_null(opt);
    em_tensor *x = em_randn(g_ctx, EM_F32, EM_SHAPE(32, 4));
    em_tensor *target = em_argmax(x, 1, false);   /* a learnable rule, 4 -> 3 classes */
    target = em_clamp_max(target, 2);
    double first = 0, last = 0;
    for (int step = 0; step < 30; step++) {
        em_scope_begin(g_ctx);
        em_tensor *loss = em_cross_entropy(em_module_forward(net, x), target);
        double l = em_item(loss);
        if (step == 0)
            first = l;
        last = l;
        assert_int_equal(em_optim_zero_grad(opt, false), EM_OK);
        assert_int_equal(em_backward(loss), EM_OK);
        assert_int_equal(em_optim_step(opt), EM_OK);
        em_scope_end(g_ctx);
    }
    assert_ok_ctx();
    assert_true(last < 0.7 * first);
    em_optim_free(opt);
    em_module_free(net);
}

static void test_errors(void **state)
{
    (void)state;
    em_module *lin = em_linear(g_ctx, 4, 3, true);
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 5));
    assert_null(em_module_forward(lin, x));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_SHAPE);
    assert_non_null(strstr(em_context_error(g_ctx),
                           "Linear(in_features=4, out_features=3, bias=True): input of shape [2, 5]"));
    em_context_clear_error(g_ctx);
    assert_null(em_module_forward(lin, em_zeros(g_ctx, EM_F64, EM_SHAPE(2, 4))));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_DTYPE);
    em_context_clear_error(g_ctx);
    /* NULL in, NULL out, nothing recorded */
    assert_null(em_module_forward(lin, NULL));
    assert_null(em_module_forward(NULL, x));
    assert_int_equal(em_module_parameters(NULL, NULL, NULL, 0), -1);
    assert_ok_ctx();
    assert_null(em_linear(g_ctx, -1, 3, true));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    assert_non_null(strstr(em_context_error(g_ctx), "negative dimension -1"));
    em_context_clear_error(g_ctx);
    /* a failed child: the sequential frees the others and fails */
    assert_null(em_sequential(g_ctx, (em_module *[]){em_linear(g_ctx, 2, 2, true),
                                                       em_dropout(g_ctx, 2.0)}, 2));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    em_context_clear_error(g_ctx);
    /* a module with an owner cannot be adopted again */
    em_module *net = em_sequential(g_ctx, (em_module *[]){lin}, 1);
    assert_non_null(net);
    assert_null(em_sequential(g_ctx, (em_module *[]){em_relu_module(g_ctx), lin}, 2));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    em_context_clear_error(g_ctx);
    assert_null(em_function_module(g_ctx, "F", NULL));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    em_context_clear_error(g_ctx);
    em_module_free(net);
    em_module_free(NULL);
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_linear_reference), EM_TEST(test_linear_init), EM_TEST(test_dropout),
        EM_TEST(test_sequential),       EM_TEST(test_train_eval), EM_TEST(test_mlp_adam),
        EM_TEST(test_errors),
    };
    char name[64];
    snprintf(name, sizeof name, "nn modules on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
