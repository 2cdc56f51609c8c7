/* tests/test_cuda.c — the cuda backend's own suite, built twice:
 *
 *  tests/test_cuda      what holds with or without a GPU: the plugin loads; with a GPU the
 *                       context opens and ember-info shows its properties, without one
 *                       creation fails with EM_ERR_NO_DEVICE and "no usable CUDA device:
 *                       <reason>" (registry stage 'devices', and in ember-info); [device]
 *                       fallback = cpu runs on cpu after exactly one warning line; [cuda]
 *                       device= is validated (EM_ERR_CONFIG naming the key, no fallback).
 *  tests/test_cuda_gpu  (-DEM_TEST_CUDA_GPU) on a GPU, against the cpu backend in the same
 *                       process: the rng gives the same numbers, every kernel agrees on
 *                       broadcast / strided / special-value inputs, split reductions, gemm
 *                       in every transpose, the seed's training step, and uploads that reuse
 *                       the host buffer at once. Without a GPU: TAP SKIP with the reason
 *                       (EMBER_TEST_REQUIRE=cuda makes that a failure). */
#include "harness.h"

#ifdef EM_TEST_CUDA_GPU
#define EM_TEST_BACKEND "cuda"
#include "backend_harness.h"
#endif

static bool cuda_required(void)
{
    const char *r = getenv("EMBER_TEST_REQUIRE");
    return r && strstr(r, "cuda");
}

#ifndef EM_TEST_CUDA_GPU
/* ================================================================== device-independent */

static em_config *cuda_cfg(void)
{
    em_config *cfg = em_config_create();
    assert_non_null(cfg);
    assert_int_equal(em_config_set(cfg, "device", "backend", "cuda"), EM_OK);
    assert_int_equal(em_config_set(cfg, "backends", "path", th_env("EMBER_TEST_BACKEND_DIR")),
                     EM_OK);
    return cfg;
}

static const em_plugin_info *find_plugin(const em_registry *reg, const char *name)
{
    for (int i = 0; i < em_registry_plugin_count(reg); i++) {
        const em_plugin_info *pi = em_registry_plugin(reg, i);
        if (!strcmp(pi->name, name) && !pi->shadowed_by)
            return pi;
    }
    return NULL;
}

static void test_device_or_reason(void **state)
{
    (void)state;
    em_config *cfg = cuda_cfg();
    em_context *ctx = NULL;
    em_status st = em_context_create_with(&ctx, cfg);
    if (st == EM_OK) {
        assert_string_equal(em_context_backend(ctx), "cuda");
        assert_true(strlen(em_context_device_name(ctx)) > 0);
        print_message("# CUDA device %d: %s\n", em_context_device_index(ctx),
                      em_context_device_name(ctx));
        em_context_free(ctx);
    } else {
        if (cuda_required())
            fail_msg("EMBER_TEST_REQUIRE=cuda, but: %s", em_last_error());
        TH_EXPECT(st, EM_ERR_NO_DEVICE, "backend 'cuda' has no usable device: ",
                  "no usable CUDA device: ", "ember-backend-cuda.so");
        print_message("# no CUDA device here, as expected on CI: %s\n", em_last_error());
    }
    /* the registry (what ember-info shows) agrees */
    em_registry *reg = NULL;
    assert_int_equal(em_registry_scan(cfg, &reg), EM_OK);
    const em_plugin_info *pi = find_plugin(reg, "cuda");
    assert_non_null(pi);
    if (st == EM_OK) {
        assert_int_equal(pi->stage, EM_STAGE_READY);
        assert_true(pi->device_count >= 1);
        const em_device_props *p = &pi->devices[0];
        assert_string_equal(p->vendor, "NVIDIA");
        TH_EXPECT_MSG(EM_OK, EM_OK, p->driver, "CUDA driver ", ", runtime ");
        TH_EXPECT_MSG(EM_OK, EM_OK, p->extra, "compute capability: ", "gemm: cuBLAS");
        assert_true(p->total_memory > 0);
        assert_true(p->compute_units > 0);
        assert_int_equal(p->fp64, 1);
    } else {
        assert_int_equal(pi->stage, EM_STAGE_DEVICES);
        TH_EXPECT_MSG(pi->status, EM_ERR_NO_DEVICE, pi->message, "no usable CUDA device: ");
    }
    /* every kernel of the table is implemented: nothing falls back per op */
    if (pi->stage >= EM_STAGE_DEVICES)
        for (int k = 0; k < pi->kernel_count; k++)
            if (!pi->kernel_present[k])
                fail_msg("kernel %s missing from the cuda ops table", pi->kernel_names[k]);
    em_registry_free(reg);
    em_config_free(cfg);
}

/* ember-info lists the plugin with its devices or the reason it has none. */
static void test_ember_info(void **state)
{
    (void)state;
    char ini[8192];
    snprintf(ini, sizeof ini, "[device]\nbackend = cuda\n[backends]\npath = %s\n",
             th_env("EMBER_TEST_BACKEND_DIR"));
    char *path = th_write("info/device.ini", ini);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s/tools/ember-info' --config '%s' 2>&1",
             th_env("EMBER_TEST_BUILD_DIR"), path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char *out = calloc(1, 1 << 20);
    size_t n = fread(out, 1, (1 << 20) - 1, f);
    out[n] = 0;
    pclose(f);
    const char *at = strstr(out, "ember-backend-cuda.so");
    if (!at)
        fail_msg("ember-info does not list the cuda plugin:\n%s", out);
    if (!strstr(at, "no usable CUDA device: ") && !strstr(at, "compute capability: "))
        fail_msg("ember-info shows neither CUDA devices nor the reason:\n%s", at);
    if (strstr(at, "no usable CUDA device: "))
        TH_EXPECT_MSG(EM_OK, EM_OK, at, "FAILED at stage 'devices' (EM_ERR_NO_DEVICE)");
    free(out);
    free(path);
}

/* [device] fallback = cpu: the context runs on cpu and says so once. device = 99 makes cuda
 * unusable on a machine with GPUs too. */
static void test_fallback_cpu(void **state)
{
    (void)state;
    em_config *cfg = cuda_cfg();
    assert_int_equal(em_config_set(cfg, "device", "fallback", "cpu"), EM_OK);
    assert_int_equal(em_config_set(cfg, "cuda", "device", "99"), EM_OK);
    em_context *ctx = NULL;
    int fd;
    char *cap = th_capture_stderr_begin(&fd);
    em_status st = em_context_create_with(&ctx, cfg);
    char *err = th_capture_stderr_end(fd, cap);
    TH_EXPECT(st, EM_OK, "");
    assert_string_equal(em_context_backend(ctx), "cpu");
    const char *why = em_context_fallback_reason(ctx);
    assert_non_null(why);
    if (!strstr(why, "no usable CUDA device: ") && !strstr(why, "device=99"))
        fail_msg("unexpected fallback reason: %s", why);
    /* exactly one line, a warning naming both backends */
    TH_EXPECT_MSG(EM_OK, EM_OK, err, "ember: warning: backend 'cuda' unavailable (",
                  "); using fallback 'cpu'\n");
    assert_string_equal(strchr(err, '\n') + 1, "");
    free(err);
    /* and it computes */
    em_scope_begin(ctx);
    em_tensor *s = em_sum(em_ones(ctx, EM_F32, EM_SHAPE(2, 3)));
    assert_true(em_item(s) == 6.0);
    em_scope_end(ctx);
    assert_int_equal(em_context_status(ctx), EM_OK);
    em_context_free(ctx);
    em_config_free(cfg);
}

static void test_config_device(void **state)
{
    (void)state;
    static const char *const bad[] = {"abc", "-1", "1.5", "0x1", "1 2", "99999", "+1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        em_config *cfg = cuda_cfg();
        /* a fallback must not hide a typo */
        assert_int_equal(em_config_set(cfg, "device", "fallback", "cpu"), EM_OK);
        assert_int_equal(em_config_set(cfg, "cuda", "device", bad[i]), EM_OK);
        em_context *ctx = NULL;
        TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG, "[cuda] device", bad[i]);
        assert_null(ctx);
        em_config_free(cfg);
    }
    em_config *cfg = cuda_cfg();
    assert_int_equal(em_config_set(cfg, "cuda", "devcie", "0"), EM_OK);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG, "[cuda]", "devcie");
    em_config_free(cfg);
    /* a valid index passes the entry: then it is up to the hardware */
    cfg = cuda_cfg();
    assert_int_equal(em_config_set(cfg, "cuda", "device", "0"), EM_OK);
    em_status st = em_context_create_with(&ctx, cfg);
    if (st != EM_OK)
        TH_EXPECT(st, EM_ERR_NO_DEVICE, "no usable CUDA device: ");
    em_context_free(ctx);
    em_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_device_or_reason, th_env_save, th_env_restore),
        cmocka_unit_test_setup_teardown(test_ember_info, th_env_save, th_env_restore),
        cmocka_unit_test_setup_teardown(test_fallback_cpu, th_env_save, th_env_restore),
        cmocka_unit_test_setup_teardown(test_config_device, th_env_save, th_env_restore),
    };
    return cmocka_run_group_tests_name("cuda plugin", tests, NULL, NULL);
}

#else
/* ================================================================== on a GPU, vs cpu */

static em_context *g_cpu;

static em_tensor *upload(em_context *ctx, em_dtype dt, int nd, const int64_t *shape, const double *v)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    void *buf = malloc((size_t)(n ? n : 1) * em_dtype_size(dt));
    for (int64_t i = 0; i < n; i++) {
        if (dt == EM_F32)
            ((float *)buf)[i] = (float)v[i];
        else if (dt == EM_F64)
            ((double *)buf)[i] = v[i];
        else
            ((uint8_t *)buf)[i] = v[i] != 0;
    }
    em_tensor *t = em_tensor_from_data(ctx, dt, nd, shape, buf);
    free(buf);
    return t;
}

static void compare(const char *what, em_tensor *g, em_tensor *c, double tol)
{
    if (em_context_status(g_ctx) != EM_OK)
        fail_msg("%s: cuda: %s", what, em_context_error(g_ctx));
    if (em_context_status(g_cpu) != EM_OK)
        fail_msg("%s: cpu: %s", what, em_context_error(g_cpu));
    assert_non_null(g);
    assert_non_null(c);
    assert_int_equal(em_tensor_dtype(g), em_tensor_dtype(c));
    assert_int_equal(em_tensor_ndim(g), em_tensor_ndim(c));
    for (int d = 0; d < em_tensor_ndim(g); d++)
        assert_int_equal(em_tensor_size(g, d), em_tensor_size(c, d));
    int64_t n = em_tensor_numel(g);
    double *a = to_doubles(g), *b = to_doubles(c);
    for (int64_t i = 0; i < n; i++)
        if (!close_enough(a[i], b[i], tol))
            fail_msg("%s: element %lld: cuda %.17g, cpu %.17g (tol %g)", what, (long long)i, a[i],
                     b[i], tol);
    free(a);
    free(b);
}

/* Random values with a sprinkle of specials. */
static double *values(int64_t n, bool specials)
{
    static const double sp[] = {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, 1e-40, 88.0, -88.0};
    double *v = rnd_array(n, -3, 3);
    if (specials)
        for (int64_t i = 0; i < n; i += 7)
            v[i] = sp[(i / 7) % 10];
    return v;
}

typedef em_tensor *(*case_fn)(em_tensor **x);

typedef struct in_spec {
    int nd;
    int64_t shape[4];
    int transpose;   /* give the op a transposed (non-contiguous) view of dims 0, 1 */
} in_spec;

/* Like compare, for a sum of k products: the bound of ember-conform's matrix products
 * (tools/conform_linalg.c), |error| <= tol(dtype) * sqrt(k) * max(1, sum |a*b|), where
 * norm holds sum |a*b| per element. Both backends may be off by that much in opposite
 * directions (cuBLAS sums in its own order and blocking), hence twice the bound. */
static void compare_sum_of_products(const char *what, em_tensor *g, em_tensor *c, em_tensor *norm,
                                    int64_t k)
{
    if (em_context_status(g_ctx) != EM_OK)
        fail_msg("%s: cuda: %s", what, em_context_error(g_ctx));
    if (em_context_status(g_cpu) != EM_OK)
        fail_msg("%s: cpu: %s", what, em_context_error(g_cpu));
    assert_non_null(g);
    assert_non_null(c);
    assert_non_null(norm);
    assert_int_equal(em_tensor_numel(g), em_tensor_numel(c));
    assert_int_equal(em_tensor_numel(norm), em_tensor_numel(c));
    const double tol = 2 * (em_tensor_dtype(g) == EM_F32 ? 1e-5 : 1e-12) * sqrt(k > 1 ? (double)k : 1.0);
    int64_t n = em_tensor_numel(g);
    double *a = to_doubles(g), *b = to_doubles(c), *s = to_doubles(norm);
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= tol * fmax(1.0, s[i])))
            fail_msg("%s: element %lld: cuda %.17g, cpu %.17g, sum |a*b| %.9g, k %lld: error "
                     "%.3g over the bound %.3g",
                     what, (long long)i, a[i], b[i], s[i], (long long)k,
                     fabs(a[i] - b[i]) / fmax(1.0, s[i]), tol);
    free(a);
    free(b);
    free(s);
}

/* Run f on the same inputs on cuda and on cpu and compare: element by element within tol,
 * or, when nterms > 0 (a product summing nterms terms per element), within the bound of
 * compare_sum_of_products, sum |a*b| being f of the inputs' absolute values in f64 on cpu. */
static void run_case_k(const char *name, case_fn f, em_dtype dt, int nin, const in_spec *spec,
                       bool specials, double tol, int64_t nterms)
{
    em_scope_begin(g_cpu);
    em_tensor *xg[3], *xc[3];
    for (int k = 0; k < nin; k++) {
        int64_t n = 1;
        for (int d = 0; d < spec[k].nd; d++)
            n *= spec[k].shape[d];
        double *v = values(n, specials);
        xg[k] = upload(g_ctx, dt, spec[k].nd, spec[k].shape, v);
        xc[k] = upload(g_cpu, dt, spec[k].nd, spec[k].shape, v);
        free(v);
        if (spec[k].transpose) {
            xg[k] = em_transpose(xg[k], 0, 1);
            xc[k] = em_transpose(xc[k], 0, 1);
        }
    }
    char what[160];
    snprintf(what, sizeof what, "%s (%s)", name, em_dtype_name(dt));
    if (nterms > 0) {
        em_tensor *xa[3];
        for (int j = 0; j < nin; j++)
            xa[j] = em_to_dtype(em_abs(xc[j]), EM_F64);
        compare_sum_of_products(what, f(xg), f(xc), f(xa), nterms);
    } else {
        compare(what, f(xg), f(xc), tol);
    }
    em_scope_end(g_cpu);
}

static void run_case(const char *name, case_fn f, em_dtype dt, int nin, const in_spec *spec,
                     bool specials, double tol)
{
    run_case_k(name, f, dt, nin, spec, specials, tol, 0);
}

#define CASE1(NAME, EXPR) \
    static em_tensor *c_##NAME(em_tensor **x) { return EXPR; }
CASE1(neg, em_neg(x[0]))
CASE1(exp, em_exp(x[0]))
CASE1(log, em_log(x[0]))
CASE1(sqrt, em_sqrt(x[0]))
CASE1(abs, em_abs(x[0]))
CASE1(relu, em_relu(x[0]))
CASE1(tanh, em_tanh(x[0]))
CASE1(sigmoid, em_sigmoid(x[0]))
CASE1(add_scalar, em_add_scalar(x[0], 0.3))
CASE1(mul_scalar, em_mul_scalar(x[0], -1.7))
CASE1(rsub_scalar, em_rsub_scalar(x[0], 2.0))
CASE1(div_scalar, em_div_scalar(x[0], 3.0))
CASE1(rdiv_scalar, em_rdiv_scalar(x[0], 3.0))
CASE1(pow2, em_pow(x[0], 2.0))
CASE1(pow3, em_pow(x[0], 3.0))
CASE1(powh, em_pow(x[0], 0.5))
CASE1(powm1, em_pow(x[0], -1.0))
CASE1(pow25, em_pow(x[0], 2.5))
CASE1(clamp, em_clamp(x[0], -0.5, 1.0))
CASE1(clamp_inv, em_clamp(x[0], 2.0, -2.0))
CASE1(clamp_min, em_clamp(x[0], 0.0, INFINITY))
CASE1(add, em_add(x[0], x[1]))
CASE1(sub, em_sub(x[0], x[1]))
CASE1(mul, em_mul(x[0], x[1]))
CASE1(div, em_div(x[0], x[1]))
CASE1(maximum, em_maximum(x[0], x[1]))
CASE1(minimum, em_minimum(x[0], x[1]))
CASE1(lt, em_lt(x[0], x[1]))
CASE1(ge, em_ge(x[0], x[1]))
CASE1(eq, em_eq(x[0], x[1]))
CASE1(ne, em_ne(x[0], x[1]))
CASE1(where, em_where(em_gt(x[0], x[1]), x[0], x[1]))
CASE1(masked_fill, em_masked_fill(x[0], em_lt(x[0], x[1]), -7.25))
CASE1(to_f64, em_to_dtype(x[0], EM_F64))
CASE1(to_f32, em_to_dtype(x[0], EM_F32))
CASE1(to_bool, em_to_dtype(em_to_dtype(x[0], EM_BOOL), EM_F32))
CASE1(contig, em_contiguous(x[0]))
CASE1(sum_all, em_sum(x[0]))
CASE1(mean_all, em_mean(x[0]))
CASE1(sum_d0, em_sum_dims(x[0], 1, (const int[]){0}, false))
CASE1(sum_d1, em_sum_dims(x[0], 1, (const int[]){1}, true))
CASE1(sum_d02, em_sum_dims(x[0], 2, (const int[]){0, 2}, false))
CASE1(mm, em_mm(x[0], x[1]))
CASE1(mm_tb, em_mm(x[0], em_t(x[1])))
CASE1(bmm, em_bmm(x[0], x[1]))
CASE1(matmul, em_matmul(x[0], x[1]))

/* The harness's setup and teardown clear the cuda context; errors of the cpu reference
 * (where an op refused its operands) must not leak into the next test either. */
static int cu_setup(void **state)
{
    em_context_clear_error(g_cpu);
    return test_setup(state);
}

static int cu_teardown(void **state)
{
    em_context_clear_error(g_cpu);
    return test_teardown(state);
}

#define CU_TEST(fn) cmocka_unit_test_setup_teardown(fn, cu_setup, cu_teardown)

static void test_rng_matches_cpu(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = k ? EM_F64 : EM_F32;
        em_manual_seed(g_ctx, 1234);
        em_manual_seed(g_cpu, 1234);
        for (int draw = 0; draw < 3; draw++) {
            em_scope_begin(g_cpu);
            /* uniform: bit for bit; normal: to the device's last ulp of log/cos/sqrt */
            compare("rand", em_rand(g_ctx, dt, EM_SHAPE(37, 129)), em_rand(g_cpu, dt, EM_SHAPE(37, 129)), 0);
            compare("randn", em_randn(g_ctx, dt, EM_SHAPE(1000)), em_randn(g_cpu, dt, EM_SHAPE(1000)),
                    dt == EM_F32 ? 2.5e-7 : 1e-14);
            em_scope_end(g_cpu);
        }
    }
}

static void test_elementwise_matches_cpu(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        case_fn f;
        double tol32, tol64;   /* 0: bit for bit (+ and * round exactly as on the host) */
    } unary[] = {
        {"neg", c_neg, 0, 0},           {"exp", c_exp, 1e-6, 1e-14},
        {"log", c_log, 1e-6, 1e-14},    {"sqrt", c_sqrt, 0, 0},
        {"abs", c_abs, 0, 0},           {"relu", c_relu, 0, 0},
        {"tanh", c_tanh, 1e-6, 1e-14},  {"sigmoid", c_sigmoid, 1e-6, 1e-14},
        {"add_scalar", c_add_scalar, 0, 0}, {"mul_scalar", c_mul_scalar, 0, 0},
        {"rsub_scalar", c_rsub_scalar, 0, 0}, {"div_scalar", c_div_scalar, 0, 0},
        {"rdiv_scalar", c_rdiv_scalar, 0, 0}, {"pow 2", c_pow2, 0, 0},
        {"pow 3", c_pow3, 1e-6, 1e-14}, {"pow 0.5", c_powh, 0, 0},
        {"pow -1", c_powm1, 0, 0},      {"pow 2.5", c_pow25, 1e-6, 1e-14},
        {"clamp", c_clamp, 0, 0},       {"clamp min>max", c_clamp_inv, 0, 0},
        {"clamp_min", c_clamp_min, 0, 0}, {"to f64", c_to_f64, 0, 0},
        {"to f32", c_to_f32, 0, 0},     {"to bool", c_to_bool, 0, 0},
        {"contiguous", c_contig, 0, 0},
    };
    static const struct {
        const char *name;
        case_fn f;
    } binary[] = {
        {"add", c_add}, {"sub", c_sub}, {"mul", c_mul}, {"div", c_div}, {"maximum", c_maximum},
        {"minimum", c_minimum}, {"lt", c_lt}, {"ge", c_ge}, {"eq", c_eq}, {"ne", c_ne},
        {"where", c_where}, {"masked_fill", c_masked_fill},
    };
    /* contiguous (flat, vector path), odd length (vector tail), transposed (nd path) */
    static const in_spec shapes1[] = {
        {1, {4099}, 0}, {2, {33, 65}, 0}, {2, {17, 9}, 1}, {3, {4, 5, 6}, 0}};
    for (int k = 0; k < 2; k++) {
        em_dtype dt = k ? EM_F64 : EM_F32;
        for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++)
            for (size_t s = 0; s < sizeof shapes1 / sizeof shapes1[0]; s++)
                run_case(unary[i].name, unary[i].f, dt, 1, &shapes1[s], true,
                         k ? unary[i].tol64 : unary[i].tol32);
        /* same shape, broadcast both ways, a scalar, and transposed operands */
        static const in_spec pairs[][2] = {
            {{1, {1001}, 0}, {1, {1001}, 0}},
            {{3, {5, 1, 7}, 0}, {3, {1, 4, 7}, 0}},
            {{2, {6, 9}, 0}, {1, {1}, 0}},
            {{1, {1}, 0}, {2, {6, 9}, 0}},
            {{2, {9, 6}, 1}, {2, {6, 9}, 0}},
            {{2, {12, 10}, 1}, {2, {12, 10}, 1}},   /* both operands transposed views */
        };
        for (size_t i = 0; i < sizeof binary / sizeof binary[0]; i++)
            for (size_t s = 0; s < sizeof pairs / sizeof pairs[0]; s++)
                run_case(binary[i].name, binary[i].f, dt, 2, pairs[s], true, 0);
    }
}

static void test_reductions_match_cpu(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        case_fn f;
        in_spec in;
    } cases[] = {
        {"sum all (seed loss size)", c_sum_all, {2, {64, 10}, 0}},
        {"sum all, split", c_sum_all, {1, {1000003}, 0}},
        {"mean all", c_mean_all, {2, {300, 7}, 0}},
        {"sum dim 0 (column sums)", c_sum_d0, {2, {64, 100}, 0}},
        {"sum dim 0, split columns", c_sum_d0, {2, {50000, 3}, 0}},
        {"sum dim 0, wide", c_sum_d0, {2, {700, 1000}, 0}},
        {"sum dim 1 keepdim, split rows", c_sum_d1, {2, {3, 50000}, 0}},
        {"sum dim 1 of a transposed view", c_sum_d1, {2, {300, 40}, 1}},
        {"sum dims 0,2", c_sum_d02, {3, {30, 7, 90}, 0}},
    };
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            run_case(cases[i].name, cases[i].f, k ? EM_F64 : EM_F32, 1, &cases[i].in, false,
                     k ? 1e-12 : 1e-6);
}

static void test_gemm_matches_cpu(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        case_fn f;
        in_spec a, b;
        int64_t k;   /* terms per output element */
    } cases[] = {
        {"mm", c_mm, {2, {33, 65}, 0}, {2, {65, 17}, 0}, 65},
        {"mm seed", c_mm, {2, {64, 1000}, 0}, {2, {1000, 100}, 0}, 1000},
        {"mm A^T", c_mm, {2, {65, 33}, 1}, {2, {65, 17}, 0}, 65},
        {"mm B^T", c_mm_tb, {2, {33, 65}, 0}, {2, {17, 65}, 0}, 65},
        {"mm A^T B^T", c_mm_tb, {2, {65, 33}, 1}, {2, {17, 65}, 0}, 65},
        {"mm vector", c_mm, {2, {1, 50}, 0}, {2, {50, 1}, 0}, 50},
        {"bmm", c_bmm, {3, {4, 8, 16}, 0}, {3, {4, 16, 5}, 0}, 16},
        {"matmul broadcast", c_matmul, {3, {2, 3, 4}, 0}, {2, {4, 5}, 0}, 4},
    };
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            in_spec ab[2] = {cases[i].a, cases[i].b};
            run_case_k(cases[i].name, cases[i].f, k ? EM_F64 : EM_F32, 2, ab, false, 0,
                       cases[i].k);
        }
}

/* The seed's training loop, a few steps, on both backends from the same numbers. */
static double seed_steps(em_context *ctx, int steps)
{
    em_manual_seed(ctx, 0);
    em_scope_begin(ctx);
    em_tensor *x = em_randn(ctx, EM_F32, EM_SHAPE(64, 1000));
    em_tensor *y = em_randn(ctx, EM_F32, EM_SHAPE(64, 10));
    em_tensor *w1 = em_randn(ctx, EM_F32, EM_SHAPE(1000, 100));
    em_tensor *w2 = em_randn(ctx, EM_F32, EM_SHAPE(100, 10));
    em_tensor_set_requires_grad(w1, true);
    em_tensor_set_requires_grad(w2, true);
    double loss = 0;
    for (int t = 0; t < steps; t++) {
        em_scope_begin(ctx);
        em_tensor *l = em_sum(em_pow(em_sub(em_mm(em_clamp(em_mm(x, w1), 0.0, INFINITY), w2), y), 2.0));
        loss = em_item(l);
        em_backward(l);
        em_no_grad_begin(ctx);
        em_sub_(w1, em_mul_scalar(em_grad(w1), 1e-6));
        em_sub_(w2, em_mul_scalar(em_grad(w2), 1e-6));
        em_tensor_zero_grad(w1);
        em_tensor_zero_grad(w2);
        em_no_grad_end(ctx);
        em_scope_end(ctx);
    }
    em_scope_end(ctx);
    return loss;
}

static void test_seed_step_matches_cpu(void **state)
{
    (void)state;
    double lg = seed_steps(g_ctx, 20), lc = seed_steps(g_cpu, 20);
    assert_ok_ctx();
    assert_int_equal(em_context_status(g_cpu), EM_OK);
    print_message("# loss after 20 steps: cuda %.9g, cpu %.9g\n", lg, lc);
    assert_true(fabs(lg - lc) <= 1e-3 * fabs(lc));
}

/* Uploads return before the GPU has the data; the host buffer is rewritten at once, and
 * recycled device buffers are written while earlier kernels may still read them. */
static void test_async_uploads(void **state)
{
    (void)state;
    enum { N_SMALL = 12000, N_BIG = 100000, COUNT = 60 };
    float *host = malloc(sizeof(float) * N_BIG);
    em_tensor *small[COUNT], *doubled[COUNT];
    for (int i = 0; i < COUNT; i++) {
        const int n = i % 5 == 4 ? N_BIG : N_SMALL;   /* some beyond the staging slot */
        for (int j = 0; j < n; j++)
            host[j] = (float)(i * 1000 + j % 997);
        em_tensor *t = em_tensor_from_data(g_ctx, EM_F32, EM_SHAPE(n), host);
        small[i] = em_clone(t);
        doubled[i] = em_mul_scalar(t, 2.0);
        em_tensor_free(t);   /* back to the cache, reused by the next upload */
    }
    for (int i = 0; i < COUNT; i++) {
        const int n = i % 5 == 4 ? N_BIG : N_SMALL;
        double *a = to_doubles(small[i]), *b = to_doubles(doubled[i]);
        for (int j = 0; j < n; j++) {
            if (a[j] != (double)(i * 1000 + j % 997) || b[j] != 2 * a[j])
                fail_msg("upload %d element %d: %g / %g, expected %d", i, j, a[j], b[j],
                         i * 1000 + j % 997);
        }
        free(a);
        free(b);
    }
    free(host);
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    /* the reference runs on cpu even when EMBER_DEVICE (which overrides every context's
     * backend) says cuda, as tools/gpu-check.sh sets it */
    char why[1024] = "", *env = getenv("EMBER_DEVICE") ? strdup(getenv("EMBER_DEVICE")) : NULL;
    unsetenv("EMBER_DEVICE");
    g_cpu = test_open("cpu", why, sizeof why);
    if (env)
        setenv("EMBER_DEVICE", env, 1);
    free(env);
    if (!g_cpu || strcmp(em_context_backend(g_cpu), "cpu")) {
        printf("1..1\nnot ok 1 - the cpu backend to compare with cannot be opened: %s\n", why);
        em_context_free(g_ctx);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        CU_TEST(test_rng_matches_cpu),       CU_TEST(test_elementwise_matches_cpu),
        CU_TEST(test_reductions_match_cpu),  CU_TEST(test_gemm_matches_cpu),
        CU_TEST(test_seed_step_matches_cpu), CU_TEST(test_async_uploads),
    };
    (void)cuda_required;
    (void)from_doubles;
    (void)tol_for;
    rc = cmocka_run_group_tests_name("cuda agrees with cpu", tests, NULL, NULL);
    em_context_free(g_cpu);
    em_context_free(g_ctx);
    return rc;
}
#endif
