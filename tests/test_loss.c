/* tests/test_loss.c — mse_loss, l1_loss, smooth_l1_loss, binary_cross_entropy_with_logits,
 * nll_loss and cross_entropy against PyTorch 1.13 on one backend (EM_TEST_BACKEND): values,
 * grad_fn names and gradients from tests/data/ref_loss.h over reductions, shapes ((N, C),
 * (C), (N, C, d1, d2)), weights, ignore_index and label smoothing, in f64 and f32, with
 * em_gradcheck; then the error cases with PyTorch's messages, and the memory of the
 * cross-entropy's backward (one logits-sized tensor: the gradient itself), and ignored
 * targets whose rows hold NaN or +-inf. */
#include "ref_runner.h"

#include "data/ref_loss.h"

static em_tensor *call_op(const ref_case *c, em_tensor *const *in, em_tensor *target)
{
    const int *ia = c->ia;
    em_bce_options bo = em_bce_defaults();
    em_class_loss_options co = em_class_loss_defaults();
    switch (c->op) {
    case REF_MSE: return em_mse_loss(in[0], in[1], (em_reduction)ia[0]);
    case REF_L1: return em_l1_loss(in[0], in[1], (em_reduction)ia[0]);
    case REF_SMOOTH_L1: return em_smooth_l1_loss(in[0], in[1], (em_reduction)ia[0], c->da[0]);
    case REF_BCE:
        bo.reduction = (em_reduction)ia[0];
        bo.weight = ia[1] ? in[2] : NULL;
        bo.pos_weight = ia[2] ? in[2 + ia[1]] : NULL;
        if (ia[0] == EM_REDUCTION_MEAN && !ia[1] && !ia[2])
            return em_binary_cross_entropy_with_logits(in[0], in[1]);
        return em_binary_cross_entropy_with_logits_ex(in[0], in[1], &bo);
    case REF_NLL:
    case REF_CE:
        co.reduction = (em_reduction)ia[0];
        co.ignore_index = ia[1];
        co.weight = ia[2] ? in[1] : NULL;
        co.label_smoothing = c->da[0];
        if (ia[0] == EM_REDUCTION_MEAN && ia[1] == -100 && !ia[2] && c->da[0] == 0)
            return c->op == REF_CE ? em_cross_entropy(in[0], target) : em_nll_loss(in[0], target);
        return c->op == REF_CE ? em_cross_entropy_ex(in[0], target, &co)
                               : em_nll_loss_ex(in[0], target, &co);
    default: return NULL;
    }
}

static void test_reference(void **state)
{
    (void)state;
    ref_run_all(loss_cases, sizeof loss_cases / sizeof loss_cases[0], call_op);
}

static em_tensor *targets(int n, const int64_t *v)
{
    return em_tensor_from_data(g_ctx, EM_I64, EM_SHAPE(n), v);
}

#define EXPECT_FAIL(call, st, ...)                                                                 \
    do {                                                                                           \
        assert_null(call);                                                                         \
        TH_EXPECT_MSG(em_context_status(g_ctx), st, em_context_error(g_ctx), __VA_ARGS__);        \
        em_context_clear_error(g_ctx);                                                             \
    } while (0)

static void test_class_errors(void **state)
{
    (void)state;
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 4));
    EXPECT_FAIL(em_cross_entropy(x, targets(3, (const int64_t[]){0, 7, 1})), EM_ERR_INVALID,
                "Target 7 is out of bounds.");
    EXPECT_FAIL(em_nll_loss(x, targets(3, (const int64_t[]){0, -1, 1})), EM_ERR_INVALID,
                "Target -1 is out of bounds.");
    /* ignore_index is not out of bounds */
    em_class_loss_options o = em_class_loss_defaults();
    o.ignore_index = -1;
    assert_non_null(em_nll_loss_ex(x, targets(3, (const int64_t[]){0, -1, 1}), &o));
    o = em_class_loss_defaults();
    em_tensor *ft = em_zeros(g_ctx, EM_F32, EM_SHAPE(3));
    EXPECT_FAIL(em_nll_loss(x, ft), EM_ERR_DTYPE, "expected scalar type i64 but found f32");
    EXPECT_FAIL(em_cross_entropy(x, targets(2, (const int64_t[]){0, 1})), EM_ERR_SHAPE,
                "Expected input batch_size (3) to match target batch_size (2).");
    EXPECT_FAIL(em_nll_loss(em_zeros(g_ctx, EM_F32, EM_SHAPE(4)), targets(1, (const int64_t[]){1})),
                EM_ERR_SHAPE, "size mismatch (got input: [4], target: [1])");
    EXPECT_FAIL(em_cross_entropy(em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 4, 3)),
                                 em_zeros(g_ctx, EM_I64, EM_SHAPE(2, 2))),
                EM_ERR_SHAPE, "Expected target size [2, 3], got [2, 2]");
    EXPECT_FAIL(em_cross_entropy(em_scalar(g_ctx, EM_F32, 1), em_zeros(g_ctx, EM_I64, 0, NULL)),
                EM_ERR_SHAPE, "Expected 1 or more dimensions (got 0)");
    o.weight = em_ones(g_ctx, EM_F32, EM_SHAPE(3));
    EXPECT_FAIL(em_cross_entropy_ex(x, targets(3, (const int64_t[]){0, 1, 2}), &o), EM_ERR_SHAPE,
                "weight tensor should be defined either for all 4 classes or no classes but got "
                "weight tensor of shape: [3]");
    o.weight = em_ones(g_ctx, EM_F64, EM_SHAPE(4));
    EXPECT_FAIL(em_nll_loss_ex(x, targets(3, (const int64_t[]){0, 1, 2}), &o), EM_ERR_DTYPE,
                "expected scalar type f32 but found f64");
    o = em_class_loss_defaults();
    o.label_smoothing = 1.5;
    EXPECT_FAIL(em_cross_entropy_ex(x, targets(3, (const int64_t[]){0, 1, 2}), &o), EM_ERR_INVALID,
                "label_smoothing must be between 0.0 and 1.0. Got: 1.5");
    o.label_smoothing = 0.1;
    EXPECT_FAIL(em_nll_loss_ex(x, targets(3, (const int64_t[]){0, 1, 2}), &o), EM_ERR_INVALID,
                "label_smoothing");
    o = em_class_loss_defaults();
    o.reduction = (em_reduction)9;
    EXPECT_FAIL(em_cross_entropy_ex(x, targets(3, (const int64_t[]){0, 1, 2}), &o), EM_ERR_INVALID,
                "9 is not a valid value for reduction");
    EXPECT_FAIL(em_cross_entropy(em_zeros(g_ctx, EM_I64, EM_SHAPE(3, 4)),
                                 targets(3, (const int64_t[]){0, 1, 2})),
                EM_ERR_DTYPE, "floating point");
    assert_null(em_cross_entropy(NULL, NULL));
    assert_ok_ctx();
}

static void test_pair_errors(void **state)
{
    (void)state;
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 4));
    EXPECT_FAIL(em_mse_loss(x, em_zeros(g_ctx, EM_F64, EM_SHAPE(3, 4)), EM_REDUCTION_MEAN),
                EM_ERR_DTYPE, "mse_loss", "f32", "f64");
    EXPECT_FAIL(em_l1_loss(x, em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 4)), EM_REDUCTION_SUM),
                EM_ERR_SHAPE, "cannot be broadcast");
    EXPECT_FAIL(em_mse_loss(x, em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 4)), EM_REDUCTION_NONE),
                EM_ERR_SHAPE, "mse_loss");
    EXPECT_FAIL(em_smooth_l1_loss(x, x, EM_REDUCTION_MEAN, -1.0), EM_ERR_INVALID,
                "smooth_l1_loss does not support negative values for beta");
    EXPECT_FAIL(em_binary_cross_entropy_with_logits(x, em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 4))),
                EM_ERR_SHAPE, "Target size ([2, 4]) must be the same as input size ([3, 4])");
    em_bce_options o = em_bce_defaults();
    o.pos_weight = em_ones(g_ctx, EM_F32, EM_SHAPE(3));
    EXPECT_FAIL(em_binary_cross_entropy_with_logits_ex(x, x, &o), EM_ERR_SHAPE, "");
    o.pos_weight = em_ones(g_ctx, EM_F64, EM_SHAPE(4));
    EXPECT_FAIL(em_binary_cross_entropy_with_logits_ex(x, x, &o), EM_ERR_DTYPE, "f64");
    o = em_bce_defaults();
    o.reduction = (em_reduction)-1;
    EXPECT_FAIL(em_binary_cross_entropy_with_logits_ex(x, x, &o), EM_ERR_INVALID,
                "-1 is not a valid value for reduction");
    assert_ok_ctx();
}

/* The weights get no gradient, and the losses keep working when they require one. */
static void test_weights_no_grad(void **state)
{
    (void)state;
    em_tensor *x = em_randn(g_ctx, EM_F64, EM_SHAPE(4, 3));
    em_tensor *w = em_rand(g_ctx, EM_F64, EM_SHAPE(3));
    assert_int_equal(em_tensor_set_requires_grad(x, true), EM_OK);
    assert_int_equal(em_tensor_set_requires_grad(w, true), EM_OK);
    em_class_loss_options o = em_class_loss_defaults();
    o.weight = w;
    o.label_smoothing = 0.2;
    em_tensor *l = em_cross_entropy_ex(x, targets(4, (const int64_t[]){0, 2, 1, 2}), &o);
    assert_string_equal(em_tensor_grad_fn_name(l), "AddBackward0");
    assert_int_equal(em_backward(l), EM_OK);
    assert_non_null(em_grad(x));
    assert_null(em_grad(w));
    em_bce_options b = em_bce_defaults();
    b.weight = w;
    b.pos_weight = w;
    em_tensor *l2 = em_binary_cross_entropy_with_logits_ex(x, em_sigmoid(em_detach(x)), &b);
    assert_int_equal(em_backward(l2), EM_OK);
    assert_null(em_grad(w));
    assert_ok_ctx();
}

/* The cross-entropy's backward holds at most one extra logits-sized tensor: the gradient,
 * which becomes .grad without a copy. */
static void test_ce_backward_memory(void **state)
{
    (void)state;
    const int64_t N = 128, C = 1000;
    size_t logits_bytes = (size_t)(N * C) * sizeof(float);
    for (int weighted = 0; weighted < 2; weighted++) {
        em_scope_begin(g_ctx);
        em_tensor *x = em_randn(g_ctx, EM_F32, EM_SHAPE(N, C));
        assert_int_equal(em_tensor_set_requires_grad(x, true), EM_OK);
        int64_t *tv = malloc(sizeof(int64_t) * (size_t)N);
        for (int64_t i = 0; i < N; i++)
            tv[i] = (i * 37) % C;
        tv[3] = -100;
        em_tensor *t = targets((int)N, tv);
        free(tv);
        em_class_loss_options o = em_class_loss_defaults();
        o.label_smoothing = 0.1;
        o.weight = weighted ? em_rand(g_ctx, EM_F32, EM_SHAPE(C)) : NULL;
        em_tensor *l = em_cross_entropy_ex(x, t, &o);
        assert_non_null(l);
        size_t before = em_context_memory_in_use(g_ctx);
        em_context_reset_peak(g_ctx);
        assert_int_equal(em_backward(l), EM_OK);
        size_t peak = em_context_memory_peak(g_ctx);
        if (peak > before + logits_bytes + logits_bytes / 8)
            fail_msg("backward peaked at %zu bytes over %zu; one logits tensor is %zu",
                     peak - before, before, logits_bytes);
        em_scope_end(g_ctx);
    }
    assert_ok_ctx();
}

/* Targets equal to ignore_index contribute exactly 0 to the loss and to the gradient,
 * whatever their rows hold (NaN, +-inf). Values from PyTorch 1.13 with the ignored
 * positions' logits replaced by finite ones (which changes nothing else there); PyTorch's
 * own cross-entropy gradient is NaN at an ignored row whose softmax is NaN
 * (pytorch/pytorch#11551), where ember gives 0 as ignore_index promises. */
typedef struct ignored_case {
    const char *what;
    int ce, reduction;
    int64_t ignore;
    double ls;
    int weighted;
    double w[3];
    int nd;
    int64_t shape[3];
    double x[12];
    int tnd;
    int64_t tshape[2];
    int64_t t[4];
    double loss[4];
    double grad[12];
} ignored_case;

static const ignored_case ignored_cases[] = {
    {"nll: ignored rows of -inf and NaN", 0, EM_REDUCTION_MEAN, -100, 0.0, 0, {0.0, 0.0, 0.0},
     2, {4, 3}, {-INFINITY, -INFINITY, -INFINITY, 0.5, 1.0, 2.0, NAN, 1.0, 2.0, 0.0, -1.0, 1.0},
     1, {4}, {-100, 1, -100, 2},
     {-1.0},
     {0.0, 0.0, 0.0, 0.0, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.5}},
    {"cross_entropy: ignored rows of -inf and NaN", 1, EM_REDUCTION_MEAN, -100, 0.0, 0, {0.0, 0.0, 0.0},
     2, {4, 3}, {-INFINITY, -INFINITY, -INFINITY, 0.5, 1.0, 2.0, NAN, 1.0, 2.0, 0.0, -1.0, 1.0},
     1, {4}, {-100, 1, -100, 2},
     {0.9359873742761626},
     {0.0, 0.0, 0.0, 0.07012219158304424, -0.3843880511889255, 0.3142658596058812, 0.0, 0.0, 0.0, 0.12236423552739882, 0.04501528658519022, -0.1673795221125891}},
    {"cross_entropy, smoothing 0.25, no reduction", 1, EM_REDUCTION_NONE, -100, 0.25, 0, {0.0, 0.0, 0.0},
     2, {4, 3}, {-INFINITY, -INFINITY, -INFINITY, 0.5, 1.0, 2.0, NAN, 1.0, 2.0, 0.0, -1.0, 1.0},
     1, {4}, {-100, 1, -100, 2},
     {0.0, 1.4227021174412782, 0.0, 0.6576059644443805},
     {0.0, 0.0, 0.0, 0.05691104983275515, -0.6021094357111844, 0.5451983858784291, 0.0, 0.0, 0.0, 0.1613951377214643, 0.006697239837047106, -0.16809237755851159}},
    {"cross_entropy, ignore_index 0, weights, smoothing 0.1, sum", 1, EM_REDUCTION_SUM, 0, 0.1, 1, {0.5, 2.0, 1.0},
     2, {4, 3}, {-INFINITY, -INFINITY, -INFINITY, 0.5, 1.0, 2.0, 1.0, INFINITY, 2.0, 0.0, -1.0, 1.0},
     1, {4}, {0, 1, 0, 2},
     {3.346106233392015},
     {0.0, 0.0, 0.0, 0.25213506773500294, -1.4234875295575478, 1.1713524618225446, 0.0, 0.0, 0.0, 0.23214061223904425, 0.024864416056553436, -0.2570050282955979}},
    {"nll, ignore_index 0, weights, no reduction", 0, EM_REDUCTION_NONE, 0, 0.0, 1, {0.5, 2.0, 1.0},
     2, {4, 3}, {INFINITY, INFINITY, INFINITY, 0.5, 1.0, 2.0, NAN, NAN, NAN, 0.0, -1.0, 1.0},
     1, {4}, {0, 1, 0, 2},
     {0.0, -2.0, 0.0, -1.0},
     {0.0, 0.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0}},
    {"cross_entropy: every target ignored", 1, EM_REDUCTION_MEAN, -100, 0.0, 0, {0.0, 0.0, 0.0},
     2, {2, 3}, {-INFINITY, -INFINITY, -INFINITY, NAN, 0.0, 1.0},
     1, {2}, {-100, -100},
     {NAN},
     {0.0, 0.0, 0.0, 0.0, 0.0, 0.0}},
    {"cross_entropy (N, C, d), smoothing 0.2, mean", 1, EM_REDUCTION_MEAN, -100, 0.2, 0, {0.0, 0.0, 0.0},
     3, {2, 3, 2}, {-INFINITY, 0.3, -INFINITY, -0.2, -INFINITY, 1.5, 0.1, INFINITY, 0.7, 0.0, -1.0, 2.0},
     2, {2, 2}, {-100, 2, 0, -100},
     {0.8851553547654729},
     {0.0, 0.06815555777006388, 0.0, 0.0282227907411138, 0.0, -0.09637834851117766, -0.2748542198117255, 0.0, 0.2554344388836101, 0.0, 0.019419780928115277, 0.0}},
};

static void test_ignored_nonfinite(void **state)
{
    (void)state;
    const em_dtype dts[2] = {EM_F64, EM_F32};
    for (size_t k = 0; k < sizeof ignored_cases / sizeof ignored_cases[0]; k++) {
        const ignored_case *c = &ignored_cases[k];
        for (int j = 0; j < 2; j++) {
            em_scope_begin(g_ctx);
            em_tensor *x = from_doubles(dts[j], c->nd, c->shape, c->x);
            assert_int_equal(em_tensor_set_requires_grad(x, true), EM_OK);
            em_tensor *t = em_tensor_from_data(g_ctx, EM_I64, c->tnd, c->tshape, c->t);
            em_class_loss_options o = em_class_loss_defaults();
            o.reduction = (em_reduction)c->reduction;
            o.ignore_index = c->ignore;
            o.label_smoothing = c->ls;
            o.weight = c->weighted ? from_doubles(dts[j], 1, c->shape + 1, c->w) : NULL;
            em_tensor *l = c->ce ? em_cross_entropy_ex(x, t, &o) : em_nll_loss_ex(x, t, &o);
            if (!l)
                fail_msg("%s: %s", c->what, em_context_error(g_ctx));
            double *got = to_doubles(l);
            for (int64_t i = 0; i < em_tensor_numel(l); i++)
                if (!close_enough(got[i], c->loss[i], tol_for(dts[j])))
                    fail_msg("%s (%s): loss[%lld] = %.17g, want %.17g", c->what,
                             em_dtype_name(dts[j]), (long long)i, got[i], c->loss[i]);
            free(got);
            assert_int_equal(em_backward(em_sum(l)), EM_OK);
            got = to_doubles(em_grad(x));
            for (int64_t i = 0; i < em_tensor_numel(x); i++)
                if (c->grad[i] == 0.0 ? got[i] != 0.0
                                      : !close_enough(got[i], c->grad[i], tol_for(dts[j])))
                    fail_msg("%s (%s): grad[%lld] = %.17g, want %.17g", c->what,
                             em_dtype_name(dts[j]), (long long)i, got[i], c->grad[i]);
            free(got);
            em_scope_end(g_ctx);
        }
    }
    assert_ok_ctx();
}

/* Exported by libember for tests only (not in a public header). */
void em__test_fail_alloc_after(long n);

/* For N = 1, 2, ... the Nth allocation fails during a step through the composed ops (class
 * and pair losses, reductions, activations, forward and backward): each run succeeds or
 * fails with a message, grad mode is on again afterwards, and no device memory is left. */
static void test_fault_sweep(void **state)
{
    (void)state;
    em_tensor *x = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(6, 5)));
    em_tensor *t = em_tensor_keep(targets(6, (const int64_t[]){0, 1, 2, 3, 4, -100}));
    em_tensor *w = em_tensor_keep(em_rand(g_ctx, EM_F32, EM_SHAPE(5)));
    assert_int_equal(em_tensor_set_requires_grad(x, true), EM_OK);
    size_t base = em_context_memory_in_use(g_ctx);
    bool done = false;
    long n = 1;
    for (; n < 20000 && !done; n++) {
        em_scope_begin(g_ctx);
        em__test_fail_alloc_after(n);
        em_class_loss_options o = em_class_loss_defaults();
        o.weight = w;
        o.label_smoothing = 0.1;
        em_bce_options b = em_bce_defaults();
        b.pos_weight = w;
        b.weight = w;
        em_tensor *v = NULL;
        em_status st = em_max_dim(x, 1, false, &v, NULL);
        em_class_loss_options o2 = em_class_loss_defaults();
        o2.weight = w;
        o2.reduction = EM_REDUCTION_SUM;
        em_tensor *l = em_add(em_cross_entropy_ex(x, t, &o), em_nll_loss_ex(em_log_softmax(x, 1), t, &o2));
        l = em_add(l, em_binary_cross_entropy_with_logits_ex(x, em_sigmoid(em_detach(x)), &b));
        l = em_add(l, em_smooth_l1_loss(em_gelu(x, EM_GELU_TANH), em_softplus(em_detach(x), 2, 3), EM_REDUCTION_MEAN, 0.5));
        l = em_add(l, em_add(em_sum(st == EM_OK ? v : NULL), em_std(em_logsumexp(x, 0, NULL, true), true)));
        l = em_add(l, em_add(em_max(x), em_prod(em_softmax(x, 0))));
        if (l)
            st = em_backward(l);
        else
            st = em_context_status(g_ctx);
        em__test_fail_alloc_after(0);
        if (st != EM_OK) {
            assert_true(strlen(em_context_error(g_ctx)) > 0);
        } else {
            assert_ok_ctx();
            done = true;
        }
        em_tensor_clear_grad(x);
        em_scope_end(g_ctx);
        em_context_clear_error(g_ctx);
        assert_true(em_is_grad_enabled(g_ctx));
        assert_int_equal(em_context_memory_in_use(g_ctx), base);
    }
    assert_true(done);
    assert_true(n > 100);   /* the step allocates: many runs failed before one succeeded */
    em_tensor_free(x);
    em_tensor_free(t);
    em_tensor_free(w);
    assert_ok_ctx();
}

static void test_memory_steady(void **state)
{
    (void)state;
    em_tensor *x = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(8, 5)));
    em_tensor *t = em_tensor_keep(targets(8, (const int64_t[]){0, 1, 2, 3, 4, 0, 1, -100}));
    assert_int_equal(em_tensor_set_requires_grad(x, true), EM_OK);
    size_t in_use = 0;
    for (int it = 0; it < 40; it++) {
        em_scope_begin(g_ctx);
        em_class_loss_options o = em_class_loss_defaults();
        o.label_smoothing = 0.05;
        em_tensor *l = em_add(em_cross_entropy_ex(x, t, &o),
                              em_add(em_mse_loss(x, em_mul_scalar(em_detach(x), 0.5), EM_REDUCTION_SUM),
                                     em_binary_cross_entropy_with_logits(x, em_sigmoid(em_detach(x)))));
        assert_int_equal(em_backward(l), EM_OK);
        em_tensor_clear_grad(x);
        em_scope_end(g_ctx);
        if (it == 5)
            in_use = em_context_memory_in_use(g_ctx);
        if (it > 5)
            assert_int_equal(em_context_memory_in_use(g_ctx), in_use);
    }
    em_tensor_free(x);
    em_tensor_free(t);
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_reference),          EM_TEST(test_class_errors),
        EM_TEST(test_pair_errors),        EM_TEST(test_weights_no_grad),
        EM_TEST(test_ce_backward_memory), EM_TEST(test_fault_sweep),
        EM_TEST(test_memory_steady),      EM_TEST(test_ignored_nonfinite),
    };
    char name[64];
    snprintf(name, sizeof name, "losses on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
