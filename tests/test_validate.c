/* tests/test_validate.c — the validate layer on a deliberately broken backend
 * (tests/plugins/tbroken.c: the cpu backend with EMBER_TBROKEN=gemm_trans, add_short or
 * exp_nan): each wrong kernel is caught by comparison with the cpu reference, and the error
 * names the kernel, the op, the output's shape and dtype, the first wrong element with both
 * values, the largest error and the inputs; a failed in-place call leaves its destination
 * as it was; divergence = warn and nan = error change what is fatal; NaN written by a correct
 * kernel from finite inputs (log of a negative number) is flagged as such; bad [validate]
 * values are configuration errors. Without the layer the broken kernels go unnoticed. */
#include "harness.h"

#include <math.h>

static char *g_path;

static em_context *ctx_for(const char *broken, const char *layers, const char *nan,
                           const char *divergence)
{
    setenv("EMBER_TBROKEN", broken, 1);
    em_config *cfg = em_config_create();
    assert_non_null(cfg);
    assert_int_equal(em_config_set(cfg, "device", "backend", "tbroken"), EM_OK);
    assert_int_equal(em_config_set(cfg, "device", "log", "error"), EM_OK);
    assert_int_equal(em_config_set(cfg, "backends", "path", g_path), EM_OK);
    if (layers)
        assert_int_equal(em_config_set(cfg, "device", "layers", layers), EM_OK);
    if (nan)
        assert_int_equal(em_config_set(cfg, "validate", "nan", nan), EM_OK);
    if (divergence)
        assert_int_equal(em_config_set(cfg, "validate", "divergence", divergence), EM_OK);
    em_context *ctx = NULL;
    if (em_context_create_with(&ctx, cfg) != EM_OK)
        fail_msg("context: %s", em_last_error());
    em_config_free(cfg);
    return ctx;
}

static em_tensor *from(em_context *ctx, const float *v, int ndim, const int64_t *shape)
{
    em_tensor *t = em_tensor_from_data(ctx, EM_F32, ndim, shape, v);
    assert_non_null(t);
    return t;
}

static void expect(const char *needle)
{
    if (!strstr(em_last_error(), needle))
        fail_msg("expected \"%s\" in: %s", needle, em_last_error());
}

static void test_wrong_gemm_transpose(void **state)
{
    (void)state;
    float a[12], b[16];
    for (int i = 0; i < 12; i++)
        a[i] = (float)(i + 1);
    for (int i = 0; i < 16; i++)
        b[i] = (float)(i + 1);
    /* unnoticed without the layer */
    em_context *ctx = ctx_for("gemm_trans", NULL, NULL, NULL);
    em_tensor *c = em_mm(from(ctx, a, EM_SHAPE(3, 4)), from(ctx, b, EM_SHAPE(4, 4)));
    assert_non_null(c);
    float out[12];
    assert_int_equal(em_tensor_to_host(c, out, sizeof out), EM_OK);
    assert_true(out[0] == 30.0f);   /* a[0] . b's first row: the transposed product */
    em_context_free(ctx);
    /* caught with it: the right C[0][0] is 1*1 + 2*5 + 3*9 + 4*13 = 90 */
    ctx = ctx_for("gemm_trans", "validate", NULL, NULL);
    c = em_mm(from(ctx, a, EM_SHAPE(3, 4)), from(ctx, b, EM_SHAPE(4, 4)));
    assert_null(c);
    assert_int_equal(em_context_status(ctx), EM_ERR_BACKEND);
    expect("validate: kernel gemm (op mm) diverges from the cpu reference: out [1, 3, 4] f32, "
           "first wrong element out[0, 0, 0] = 30 where cpu gives 90; ");
    expect(" of 12 elements beyond tolerance");
    expect("largest error ");
    expect("inputs: in[0] [1, 3, 4] f32, in[1] [1, 4, 4] f32");
    em_context_free(ctx);
}

static void test_off_by_one_add(void **state)
{
    (void)state;
    const float x[5] = {1, 2, 3, 4, 5}, y[5] = {10, 20, 30, 40, 50};
    em_context *ctx = ctx_for("add_short", "validate", NULL, NULL);
    em_tensor *a = from(ctx, x, EM_SHAPE(5)), *b = from(ctx, y, EM_SHAPE(5));
    /* the result's buffer comes from the core's cache: make it one of known contents (the
     * last element is what the broken kernel leaves there) */
    em_tensor_free(em_full(ctx, EM_F32, EM_SHAPE(5), -7.0));
    assert_null(em_add(a, b));
    expect("validate: kernel add (op add) diverges from the cpu reference: out [5] f32, first "
           "wrong element out[4] = -7 where cpu gives 55; 1 of 5 elements beyond tolerance");
    expect("inputs: in[0] [5] f32, in[1] [5] f32");
    /* in place: the call fails and a is as it was */
    em_context_clear_error(ctx);
    assert_int_equal(em_add_(a, b), EM_ERR_BACKEND);
    expect("kernel add (op add_) diverges");
    expect("first wrong element out[4] = 5 where cpu gives 55");
    float back[5];
    em_context_clear_error(ctx);
    assert_int_equal(em_tensor_to_host(a, back, sizeof back), EM_OK);
    assert_memory_equal(back, x, sizeof x);
    em_context_free(ctx);
    /* divergence = warn: reported on the log, the call goes on */
    ctx = ctx_for("add_short", "validate", NULL, "warn");
    a = from(ctx, x, EM_SHAPE(5));
    b = from(ctx, y, EM_SHAPE(5));
    assert_non_null(em_add(a, b));
    assert_int_equal(em_context_status(ctx), EM_OK);
    em_context_free(ctx);
}

static void test_nan_writing_kernel(void **state)
{
    (void)state;
    const float x[3] = {1, 0, -1};
    em_context *ctx = ctx_for("exp_nan", "validate", NULL, NULL);
    assert_null(em_exp(from(ctx, x, EM_SHAPE(3))));
    expect("validate: kernel exp (op exp) diverges from the cpu reference: out [3] f32, first "
           "wrong element out[0] = nan where cpu gives 2.71828175");
    em_context_free(ctx);
}

static void test_nan_from_finite_inputs(void **state)
{
    (void)state;
    const float x[3] = {1, -1, 2};
    /* a correct kernel (log of -1 is NaN on both sides): warn by default, error on request */
    em_context *ctx = ctx_for("none", "validate", NULL, NULL);
    assert_non_null(em_log(from(ctx, x, EM_SHAPE(3))));
    assert_int_equal(em_context_status(ctx), EM_OK);
    em_context_free(ctx);
    ctx = ctx_for("none", "validate", "error", NULL);
    assert_null(em_log(from(ctx, x, EM_SHAPE(3))));
    expect("validate: kernel log (op log) wrote NaN to out [3] f32 at [1] although no input holds "
           "NaN or Inf (the cpu reference gives the same); inputs: in[0] [3] f32");
    em_context_free(ctx);
    /* NaN in, NaN out: nothing to say */
    const float y[2] = {NAN, 1};
    ctx = ctx_for("none", "validate", "error", NULL);
    assert_non_null(em_exp(from(ctx, y, EM_SHAPE(2))));
    em_context_free(ctx);
}

static void test_config(void **state)
{
    (void)state;
    em_config *cfg = em_config_create();
    assert_int_equal(em_config_set(cfg, "backends", "path", g_path), EM_OK);
    assert_int_equal(em_config_set(cfg, "device", "layers", "validate"), EM_OK);
    assert_int_equal(em_config_set(cfg, "validate", "nan", "maybe"), EM_OK);
    em_context *ctx;
    assert_int_equal(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG);
    expect("[validate] nan: expected one of warn, error, off, got 'maybe'");
    assert_int_equal(em_config_set(cfg, "validate", "nan", "warn"), EM_OK);
    assert_int_equal(em_config_set(cfg, "validate", "ulps", "-3"), EM_OK);
    assert_int_equal(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG);
    expect("[validate] ulps: expected a non-negative integer, got '-3'");
    em_config_free(cfg);
}

int main(void)
{
    const char *plugins = th_env("EMBER_TEST_PLUGIN_DIR");
    const char *libs = th_env("EMBER_TEST_BACKEND_DIR");
    size_t n = strlen(plugins) + strlen(libs) + 2;
    g_path = malloc(n);
    snprintf(g_path, n, "%s:%s", plugins, libs);
    unsetenv("EMBER_LAYERS");
    unsetenv("EMBER_DEVICE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_gemm_transpose),
        cmocka_unit_test(test_off_by_one_add),
        cmocka_unit_test(test_nan_writing_kernel),
        cmocka_unit_test(test_nan_from_finite_inputs),
        cmocka_unit_test(test_config),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_path);
    return rc;
}
