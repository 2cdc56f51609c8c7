/* tests/test_opencl.c — the opencl backend's own suite (the op suites of cpu run on opencl
 * as tests/test_ops_opencl and tests/test_autograd_opencl):
 *  - no OpenCL platform (OCL_ICD_VENDORS=/nonexistent): the plugin loads and reports
 *    "no OpenCL device" with the loader's reason; fallback = cpu runs on cpu after one
 *    warning. ICD loaders read OCL_ICD_VENDORS once per process, so this runs in a child
 *    process (this program re-executed with --no-device-child);
 *  - [opencl] keys: bad values are EM_ERR_CONFIG naming key and value; platform=, device=
 *    and type= select devices or say why there is none;
 *  - against the cpu backend in the same process: the same seed gives the same random
 *    numbers; elementwise ops on strided and broadcast views, reductions of every shape
 *    class (split ones too), gemm with both kernels in every transpose, gradients;
 *  - f64 on a device without cl_khr_fp64 (EMBER_OPENCL_NO_FP64=1) is never handed to it: it
 *    runs on cpu (plugin ABI 1.1), or is a clear error under op_fallback = error;
 *  - a failed program build reports the build log; the disk program cache is written,
 *    hit by the next context, and survives corrupt files and unwritable directories.
 * Without an OpenCL device: TAP SKIP with the reason (EMBER_TEST_REQUIRE=opencl makes that
 * a failure). */
#include "harness.h"

#define EM_TEST_BACKEND "opencl"
#include "backend_harness.h"

#include <ember/philox.h>
#include <ctype.h>
#include <dirent.h>
#include <sys/wait.h>

static em_context *g_cpu;
static const char *g_self;   /* this program, for the no-device child */
static char *g_saved_xdg_cache;

/* Setup/teardown for tests that change the environment: harness.h's variables, plus the
 * plugin's test knobs and XDG_CACHE_HOME (restored even when a test fails midway). */
static int ocl_env_save(void **state)
{
    const char *x = getenv("XDG_CACHE_HOME");
    free(g_saved_xdg_cache);
    g_saved_xdg_cache = x ? strdup(x) : NULL;
    return th_env_save(state);
}

static int ocl_env_restore(void **state)
{
    unsetenv("EMBER_OPENCL_NO_FP64");
    unsetenv("EMBER_OPENCL_GEMM");
    unsetenv("EMBER_OPENCL_BUILD_OPTIONS");
    if (g_saved_xdg_cache)
        setenv("XDG_CACHE_HOME", g_saved_xdg_cache, 1);
    else
        unsetenv("XDG_CACHE_HOME");
    free(g_saved_xdg_cache);
    g_saved_xdg_cache = NULL;
    return th_env_restore(state);
}

/* ------------------------------------------------------------------ contexts */

/* A config for backend `name` with plugins from the build tree, then `kv` triples
 * (section, key, value), NULL-terminated. */
static em_config *cfg_with(const char *name, const char *const *kv)
{
    em_config *cfg = test_config(name);
    assert_non_null(cfg);
    for (int i = 0; kv && kv[i]; i += 3)
        assert_int_equal(em_config_set(cfg, kv[i], kv[i + 1], kv[i + 2]), EM_OK);
    return cfg;
}

/* Create a context; returns the status, *ctx (NULL on failure), the message in why. */
static em_status open_with(const char *name, const char *const *kv, em_context **ctx,
                           char *why, size_t n)
{
    em_config *cfg = cfg_with(name, kv);
    *ctx = NULL;
    em_status st = em_context_create_with(ctx, cfg);
    snprintf(why, n, "%s", st == EM_OK ? "" : em_last_error());
    em_config_free(cfg);
    return st;
}

/* ------------------------------------------------------------------ no device (child) */

/* Runs in the child with OCL_ICD_VENDORS=/nonexistent. Prints "fail: ..." lines and
 * returns non-zero on a problem. */
static int no_device_child(void)
{
    int bad = 0;
    char why[2048];
    em_context *ctx;
#define CHILD_CHECK(cond, ...)                                                            \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            printf("fail: " __VA_ARGS__);                                                 \
            printf("\n");                                                                 \
            bad = 1;                                                                      \
        }                                                                                 \
    } while (0)
    /* 1. no fallback: EM_ERR_NO_DEVICE with the reason */
    em_status st = open_with("opencl", NULL, &ctx, why, sizeof why);
    CHILD_CHECK(st == EM_ERR_NO_DEVICE, "no device: got %s (%s)", em_status_name(st), why);
    CHILD_CHECK(strstr(why, "no OpenCL device"), "message lacks 'no OpenCL device': %s", why);
    CHILD_CHECK(strstr(why, "OCL_ICD_VENDORS=/nonexistent"), "message lacks the env: %s", why);
    CHILD_CHECK(strstr(why, "clGetPlatformIDs"), "message lacks the failed call: %s", why);
    if (ctx)
        em_context_free(ctx);
    /* 2. fallback = cpu: runs on cpu after exactly one warning */
    static const char *const fb[] = {"device", "fallback", "cpu", NULL};
    int fd;
    char *cap = th_capture_stderr_begin(&fd);
    st = open_with("opencl", fb, &ctx, why, sizeof why);
    char *err = th_capture_stderr_end(fd, cap);
    CHILD_CHECK(st == EM_OK, "fallback: got %s (%s)", em_status_name(st), why);
    if (st == EM_OK) {
        CHILD_CHECK(!strcmp(em_context_backend(ctx), "cpu"), "fallback ran on %s",
                    em_context_backend(ctx));
        const char *r = em_context_fallback_reason(ctx);
        CHILD_CHECK(r && strstr(r, "no OpenCL device"), "fallback reason: %s", r ? r : "(null)");
        em_tensor *t = em_add(em_ones(ctx, EM_F32, EM_SHAPE(3)), em_ones(ctx, EM_F32, EM_SHAPE(3)));
        CHILD_CHECK(t && em_item(em_sum(t)) == 6.0, "ops on the fallback");
        em_context_free(ctx);
    }
    int lines = 0;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    CHILD_CHECK(lines == 1 && strstr(err, "warning") && strstr(err, "opencl") &&
                    strstr(err, "no OpenCL device") && strstr(err, "fallback 'cpu'"),
                "expected one warning line, stderr was: %s", err);
    free(err);
    /* 3. the registry shows the plugin at stage 'devices' with the reason */
    em_config *cfg = cfg_with("opencl", NULL);
    em_registry *reg = NULL;
    CHILD_CHECK(em_registry_scan(cfg, &reg) == EM_OK, "registry scan: %s", em_last_error());
    bool seen = false;
    for (int i = 0; reg && i < em_registry_plugin_count(reg); i++) {
        const em_plugin_info *pi = em_registry_plugin(reg, i);
        if (strcmp(pi->name, "opencl") || pi->shadowed_by)
            continue;
        seen = true;
        CHILD_CHECK(pi->stage == EM_STAGE_DEVICES, "registry stage %s",
                    em_load_stage_name(pi->stage));
        CHILD_CHECK(pi->message && strstr(pi->message, "no OpenCL device"), "registry message %s",
                    pi->message ? pi->message : "(null)");
    }
    CHILD_CHECK(seen, "opencl plugin not in the registry");
    em_registry_free(reg);
    em_config_free(cfg);
    printf("child done\n");
    return bad;
}

static void test_no_device(void **state)
{
    (void)state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        setenv("OCL_ICD_VENDORS", "/nonexistent", 1);
        execl(g_self, g_self, "--no-device-child", (char *)NULL);
        printf("fail: exec %s: %s\n", g_self, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    char out[16384];
    size_t used = 0;
    ssize_t got;
    while ((got = read(pfd[0], out + used, sizeof out - 1 - used)) > 0)
        used += (size_t)got;
    out[used] = 0;
    close(pfd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !strstr(out, "child done"))
        fail_msg("no-device child (status %d):\n%s", status, out);
}

/* ------------------------------------------------------------------ config keys */

static void test_config_values(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value;
    } bad[] = {
        {"type", "fpga"},  {"type", ""},      {"device", "-1"},  {"device", "abc"},
        {"device", "1.5"}, {"device", "99999999999"}, {"cache", "maybe"},
        {"platform", "99999999999"},
    };
    char why[2048];
    em_context *ctx;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *kv[] = {"opencl", bad[i].key, bad[i].value, "device", "fallback", "cpu", NULL};
        em_status st = open_with("opencl", kv, &ctx, why, sizeof why);
        /* a typo is reported, never hidden behind the fallback */
        TH_EXPECT_MSG(st, EM_ERR_CONFIG, why, bad[i].key);
        if (bad[i].value[0] && !strstr(why, bad[i].value))
            fail_msg("message for %s=%s lacks the value: %s", bad[i].key, bad[i].value, why);
        assert_null(ctx);
    }
    const char *unk[] = {"opencl", "platfrom", "0", NULL};
    TH_EXPECT_MSG(open_with("opencl", unk, &ctx, why, sizeof why), EM_ERR_CONFIG, why,
                  "platfrom");
    /* good values */
    static const char *const good[][2] = {{"cache", "off"}, {"cache", "on"}, {"cache", "auto"},
                                          {"type", "ALL"}, {"platform", "0"}, {"device", "0"}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *kv[] = {"opencl", good[i][0], good[i][1], NULL};
        if (open_with("opencl", kv, &ctx, why, sizeof why) != EM_OK)
            fail_msg("%s=%s: %s", good[i][0], good[i][1], why);
        em_context_free(ctx);
    }
}

/* Every device of the default list as "<platform>\t<type>" lines, from the registry. */
static int device_list(char lines[][256], int max)
{
    em_config *cfg = cfg_with("opencl", NULL);
    em_registry *reg = NULL;
    assert_int_equal(em_registry_scan(cfg, &reg), EM_OK);
    int n = 0;
    for (int i = 0; i < em_registry_plugin_count(reg); i++) {
        const em_plugin_info *pi = em_registry_plugin(reg, i);
        if (strcmp(pi->name, "opencl") || pi->shadowed_by)
            continue;
        for (int d = 0; d < pi->device_count && n < max; d++, n++) {
            const char *ex = pi->devices[d].extra;
            const char *p = strstr(ex, "platform: "), *t = strstr(ex, "type: ");
            assert_non_null(p);
            assert_non_null(t);
            p += 10;
            t += 6;
            size_t pl = strcspn(p, "(\n"), tl = strcspn(t, "\n");
            while (pl > 0 && p[pl - 1] == ' ')
                pl--;
            snprintf(lines[n], 256, "%.*s\t%.*s", (int)pl, p, (int)tl, t);
            print_message("# device %d: %s, fp64 %u, %s\n", n, pi->devices[d].name,
                          (unsigned)pi->devices[d].fp64, lines[n]);
        }
    }
    em_registry_free(reg);
    em_config_free(cfg);
    return n;
}

static void test_device_selection(void **state)
{
    (void)state;
    char devs[16][256];
    int n = device_list(devs, 16);
    assert_true(n >= 1);
    char why[2048];
    em_context *ctx;
    /* type=: a type some device has opens; one no device has says so */
    static const char *const types[][2] = {{"gpu", "GPU"}, {"cpu", "CPU"},
                                           {"accelerator", "accelerator"}};
    for (int t = 0; t < 3; t++) {
        bool have = false;
        for (int i = 0; i < n; i++)
            have = have || !strcmp(strchr(devs[i], '\t') + 1, types[t][1]);
        const char *kv[] = {"opencl", "type", types[t][0], NULL};
        em_status st = open_with("opencl", kv, &ctx, why, sizeof why);
        if (have) {
            if (st != EM_OK)
                fail_msg("type=%s: %s", types[t][0], why);
            em_context_free(ctx);
        } else {
            char want[64];
            snprintf(want, sizeof want, "no OpenCL device of type %s", types[t][0]);
            TH_EXPECT_MSG(st, EM_ERR_NO_DEVICE, why, want);
        }
    }
    /* platform= by a part of the name, in another case */
    char part[64];
    size_t plen = strcspn(devs[0], "\t");
    snprintf(part, sizeof part, "%.*s", (int)(plen < 6 ? plen : 6), devs[0] + (plen > 8 ? 2 : 0));
    for (char *p = part; *p; p++)
        *p = (char)(islower((unsigned char)*p) ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
    const char *byname[] = {"opencl", "platform", part, NULL};
    if (open_with("opencl", byname, &ctx, why, sizeof why) != EM_OK)
        fail_msg("platform=%s: %s", part, why);
    em_context_free(ctx);
    const char *noname[] = {"opencl", "platform", "no such platform anywhere", NULL};
    TH_EXPECT_MSG(open_with("opencl", noname, &ctx, why, sizeof why), EM_ERR_NO_DEVICE, why,
                  "no OpenCL platform name contains 'no such platform anywhere'");
    const char *noidx[] = {"opencl", "platform", "64", NULL};
    TH_EXPECT_MSG(open_with("opencl", noidx, &ctx, why, sizeof why), EM_ERR_NO_DEVICE, why,
                  "platform=64");
    /* device=: the plugin's default device; out of range names the key */
    char idx[16];
    snprintf(idx, sizeof idx, "%d", n);
    const char *nodev[] = {"opencl", "device", idx, NULL};
    TH_EXPECT_MSG(open_with("opencl", nodev, &ctx, why, sizeof why), EM_ERR_NO_DEVICE, why,
                  "device=");
    snprintf(idx, sizeof idx, "%d", n - 1);
    const char *last[] = {"opencl", "device", idx, NULL};
    if (open_with("opencl", last, &ctx, why, sizeof why) != EM_OK)
        fail_msg("device=%s: %s", idx, why);
    assert_int_equal(em_context_device_index(ctx), n - 1);
    em_context_free(ctx);
}

/* ------------------------------------------------------------------ agreement with cpu */

/* t (any context) as doubles, with its shape checked against ref's */
static void expect_match(em_tensor *got, em_tensor *want, double tol, const char *what)
{
    if (!got || !want)
        fail_msg("%s: NULL result (opencl: %s; cpu: %s)", what,
                 em_context_error(g_ctx) ? em_context_error(g_ctx) : "-",
                 em_context_error(g_cpu) ? em_context_error(g_cpu) : "-");
    assert_int_equal(em_tensor_ndim(got), em_tensor_ndim(want));
    for (int d = 0; d < em_tensor_ndim(want); d++)
        assert_int_equal(em_tensor_size(got, d), em_tensor_size(want, d));
    assert_int_equal(em_tensor_dtype(got), em_tensor_dtype(want));
    int64_t n = em_tensor_numel(want);
    double *g = to_doubles(got), *w = to_doubles(want);
    for (int64_t i = 0; i < n; i++)
        if (!close_enough(g[i], w[i], tol))
            fail_msg("%s: element %lld: opencl %.17g, cpu %.17g (tol %g)", what, (long long)i,
                     g[i], w[i], tol);
    free(g);
    free(w);
}

/* The same tensor on opencl (from the cpu one) */
static em_tensor *on_ocl(em_tensor *t)
{
    em_tensor *r = em_to_context(t, g_ctx);
    assert_non_null(r);
    return r;
}

static void test_rng_matches_cpu(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = k ? EM_F64 : EM_F32;
        em_manual_seed(g_ctx, 12345);
        em_manual_seed(g_cpu, 12345);
        /* counters advance alike: draw something first */
        em_tensor *u0 = em_rand(g_ctx, dt, EM_SHAPE(3, 7)), *c0 = em_rand(g_cpu, dt, EM_SHAPE(3, 7));
        em_tensor *u1 = em_rand(g_ctx, dt, EM_SHAPE(1001)), *c1 = em_rand(g_cpu, dt, EM_SHAPE(1001));
        em_tensor *n1 = em_randn(g_ctx, dt, EM_SHAPE(17, 61)), *m1 = em_randn(g_cpu, dt, EM_SHAPE(17, 61));
        size_t es = em_dtype_size(dt);
        for (int j = 0; j < 2; j++) {
            em_tensor *a = j ? u1 : u0, *b = j ? c1 : c0;
            size_t bytes = (size_t)em_tensor_numel(a) * es;
            void *ha = malloc(bytes), *hb = malloc(bytes);
            assert_int_equal(em_tensor_to_host(a, ha, bytes), EM_OK);
            assert_int_equal(em_tensor_to_host(b, hb, bytes), EM_OK);
            if (memcmp(ha, hb, bytes))
                fail_msg("uniform %s draws differ from cpu (bit-exact required)", em_dtype_name(dt));
            free(ha);
            free(hb);
        }
        /* normal: double math to the last ulp of the device's log/cos */
        expect_match(n1, m1, dt == EM_F32 ? 1.2e-7 : 1e-13, "randn");
    }
    assert_ok_ctx();
}

/* Inputs shared by the agreement tests, made on cpu and copied (same values). */
static em_tensor *rnd_cpu(em_dtype dt, int nd, const int64_t *shape, double lo, double hi)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    double *v = rnd_array(n, lo, hi);
    em_context *save = g_ctx;
    g_ctx = g_cpu;   /* from_doubles builds on g_ctx */
    em_tensor *t = from_doubles(dt, nd, shape, v);
    g_ctx = save;
    free(v);
    assert_non_null(t);
    return t;
}

typedef em_tensor *(*unary_fn)(em_tensor *);

static void test_elementwise_matches_cpu(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = k ? EM_F64 : EM_F32;
        const double tol = dt == EM_F32 ? 2e-6 : 1e-13;
        em_tensor *xc = rnd_cpu(dt, EM_SHAPE(37, 53), -3, 3), *x = on_ocl(xc);
        em_tensor *yc = rnd_cpu(dt, EM_SHAPE(53), 0.5, 2), *y = on_ocl(yc);
        em_tensor *zc = rnd_cpu(dt, EM_SHAPE(37, 1), -1, 1), *z = on_ocl(zc);
        em_tensor *pc = rnd_cpu(dt, EM_SHAPE(4, 5, 6, 7), 0.1, 4), *p = on_ocl(pc);
        static const unary_fn un[] = {em_neg, em_exp, em_abs, em_relu, em_tanh, em_sigmoid};
        for (size_t i = 0; i < sizeof un / sizeof un[0]; i++)
            expect_match(un[i](x), un[i](xc), tol, "unary");
        expect_match(em_log(p), em_log(pc), tol, "log");
        expect_match(em_sqrt(p), em_sqrt(pc), tol, "sqrt");
        expect_match(em_pow(p, 1.7), em_pow(pc, 1.7), tol, "pow 1.7");
        expect_match(em_pow(x, 2), em_pow(xc, 2), 0, "pow 2");
        expect_match(em_pow(p, -1), em_pow(pc, -1), 0, "pow -1");
        expect_match(em_div_scalar(x, 3), em_div_scalar(xc, 3), 0, "div_scalar");
        expect_match(em_rdiv_scalar(p, 3), em_rdiv_scalar(pc, 3), 0, "rdiv_scalar");
        expect_match(em_clamp(x, -1, 0.5), em_clamp(xc, -1, 0.5), 0, "clamp");
        /* broadcast and strided operands (4-d, permuted, expanded) */
        expect_match(em_add(x, y), em_add(xc, yc), 0, "add broadcast row");
        expect_match(em_mul(x, z), em_mul(xc, zc), 0, "mul broadcast column");
        expect_match(em_div(em_t(x), em_unsqueeze(y, 1)), em_div(em_t(xc), em_unsqueeze(yc, 1)), 0,
                     "div transposed");
        em_tensor *pt = em_transpose(em_transpose(p, 0, 3), 1, 2);
        em_tensor *ptc = em_transpose(em_transpose(pc, 0, 3), 1, 2);
        expect_match(em_sub(pt, em_contiguous(pt)), em_sub(ptc, em_contiguous(ptc)), 0,
                     "sub permuted 4-d");
        expect_match(em_maximum(em_transpose(p, 1, 3), em_transpose(p, 1, 3)),
                     em_maximum(em_transpose(pc, 1, 3), em_transpose(pc, 1, 3)), 0, "maximum");
        expect_match(em_minimum(x, em_zeros(g_ctx, dt, EM_SHAPE(1, 1))),
                     em_minimum(xc, em_zeros(g_cpu, dt, EM_SHAPE(1, 1))), 0, "minimum");
        /* comparisons, selection, conversions */
        expect_match(em_ge(x, z), em_ge(xc, zc), 0, "ge");
        expect_match(em_ne(em_gt_scalar(x, 0), em_lt_scalar(z, 0)),
                     em_ne(em_gt_scalar(xc, 0), em_lt_scalar(zc, 0)), 0, "ne bool");
        expect_match(em_where(em_gt(x, y), x, em_neg(y)), em_where(em_gt(xc, yc), xc, em_neg(yc)), 0,
                     "where");
        expect_match(em_masked_fill(em_t(x), em_lt_scalar(em_t(z), 0), 7),
                     em_masked_fill(em_t(xc), em_lt_scalar(em_t(zc), 0), 7), 0, "masked_fill");
        em_dtype other = k ? EM_F32 : EM_F64;
        expect_match(em_to_dtype(em_t(x), other), em_to_dtype(em_t(xc), other), 0, "to_dtype");
        expect_match(em_to_dtype(em_to_dtype(x, EM_BOOL), dt),
                     em_to_dtype(em_to_dtype(xc, EM_BOOL), dt), 0, "to bool and back");
        em_tensor *w = em_zeros(g_ctx, dt, EM_SHAPE(53, 37)), *wc = em_zeros(g_cpu, dt, EM_SHAPE(53, 37));
        assert_int_equal(em_copy_(em_t(w), x), EM_OK);   /* strided output */
        assert_int_equal(em_copy_(em_t(wc), xc), EM_OK);
        expect_match(w, wc, 0, "copy_ into a transposed view");
        assert_ok_ctx();
    }
}

static void test_reductions_match_cpu(void **state)
{
    (void)state;
    static const struct {
        int nd;
        int64_t shape[4];
        int ndims;
        int dims[3];
    } cases[] = {
        {1, {1 << 20}, 1, {0}},                 /* reduce-all, split into chunks */
        {2, {5000, 3}, 1, {0}},                 /* leading dim, few columns: split */
        {2, {3, 5000}, 1, {1}},                 /* last dim, long rows */
        {2, {300, 700}, 1, {0}},                /* leading dim, many columns */
        {2, {700, 300}, 1, {1}},                /* last dim, many rows */
        {2, {64, 10}, 1, {1}},                  /* short rows */
        {3, {20, 30, 40}, 2, {0, 2}},           /* outer and inner */
        {3, {20, 30, 40}, 1, {1}},              /* middle */
        {4, {3, 4, 5, 6}, 3, {0, 1, 3}},
        {2, {1, 1}, 2, {0, 1}},
    };
    for (int k = 0; k < 2; k++) {
        em_dtype dt = k ? EM_F64 : EM_F32;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            em_tensor *xc = rnd_cpu(dt, cases[c].nd, cases[c].shape, -1, 1), *x = on_ocl(xc);
            int64_t n = em_tensor_numel(xc);
            double tol = tol_for(dt) * (dt == EM_F32 ? 0.05 : 0.1) * (n > 1000 ? 10 : 1);
            char what[64];
            snprintf(what, sizeof what, "sum case %zu (%s)", c, em_dtype_name(dt));
            expect_match(em_sum_dims(x, cases[c].ndims, cases[c].dims, false),
                         em_sum_dims(xc, cases[c].ndims, cases[c].dims, false), tol, what);
            expect_match(em_mean_dims(x, cases[c].ndims, cases[c].dims, true),
                         em_mean_dims(xc, cases[c].ndims, cases[c].dims, true), tol, what);
            /* the same on a transposed (non-contiguous) input */
            if (cases[c].nd >= 2) {
                em_tensor *xt = em_transpose(x, 0, cases[c].nd - 1);
                em_tensor *xtc = em_transpose(xc, 0, cases[c].nd - 1);
                expect_match(em_sum_dims(xt, cases[c].ndims, cases[c].dims, false),
                             em_sum_dims(xtc, cases[c].ndims, cases[c].dims, false), tol, what);
            }
            expect_match(em_sum(x), em_sum(xc), tol, what);
        }
        /* an expanded (stride 0) input */
        em_tensor *rc = rnd_cpu(dt, EM_SHAPE(1, 300), -1, 1), *r = on_ocl(rc);
        int d0[1] = {0};
        expect_match(em_sum_dims(em_expand(r, EM_SHAPE(200, 300)), 1, d0, false),
                     em_sum_dims(em_expand(rc, EM_SHAPE(200, 300)), 1, d0, false), 1e-12,
                     "sum of expanded");
    }
    /* f32 sums accumulate in double (or pairwise): exact for integers up to 2^24 */
    assert_true(em_item(em_sum(em_ones(g_ctx, EM_F32, EM_SHAPE(3, 1 << 22)))) == (double)(3 << 22));
    assert_ok_ctx();
}

static void gemm_cases(const char *kernel)
{
    static const int64_t shapes[][3] = {{1, 1, 1},   {7, 13, 5},    {64, 100, 10}, {33, 65, 17},
                                        {129, 257, 65}, {1, 300, 1}, {200, 3, 150},
                                        {64, 1000, 100}, {5, 0, 4}};
    for (int k = 0; k < 2; k++) {
        em_dtype dt = k ? EM_F64 : EM_F32;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t m = shapes[s][0], kk = shapes[s][1], n = shapes[s][2];
            for (int t = 0; t < 4; t++) {
                em_tensor *ac = t & 1 ? em_t(rnd_cpu(dt, EM_SHAPE(kk, m), -1, 1))
                                      : rnd_cpu(dt, EM_SHAPE(m, kk), -1, 1);
                em_tensor *bc = t & 2 ? em_t(rnd_cpu(dt, EM_SHAPE(n, kk), -1, 1))
                                      : rnd_cpu(dt, EM_SHAPE(kk, n), -1, 1);
                em_tensor *a = t & 1 ? em_t(on_ocl(em_t(ac))) : on_ocl(ac);
                em_tensor *b = t & 2 ? em_t(on_ocl(em_t(bc))) : on_ocl(bc);
                char what[96];
                snprintf(what, sizeof what, "%s gemm %lldx%lldx%lld ta=%d tb=%d %s", kernel,
                         (long long)m, (long long)kk, (long long)n, t & 1, t >> 1,
                         em_dtype_name(dt));
                double tol = (dt == EM_F32 ? 1e-6 : 1e-14) * (double)(kk > 1 ? kk : 1);
                expect_match(em_mm(a, b), em_mm(ac, bc), tol, what);
            }
        }
        /* batched, with a broadcast batch and beta != 0 paths through autograd's += */
        em_tensor *ac = rnd_cpu(dt, EM_SHAPE(3, 17, 33), -1, 1), *bc = rnd_cpu(dt, EM_SHAPE(3, 33, 9), -1, 1);
        em_tensor *a = on_ocl(ac), *b = on_ocl(bc);
        expect_match(em_bmm(a, b), em_bmm(ac, bc), dt == EM_F32 ? 4e-5 : 1e-13, "bmm");
        expect_match(em_matmul(em_transpose(b, 1, 2), em_transpose(a, 1, 2)),
                     em_matmul(em_transpose(bc, 1, 2), em_transpose(ac, 1, 2)),
                     dt == EM_F32 ? 4e-5 : 1e-13, "bmm transposed");
        em_tensor *b2c = rnd_cpu(dt, EM_SHAPE(33, 9), -1, 1), *b2 = on_ocl(b2c);
        expect_match(em_matmul(a, b2), em_matmul(ac, b2c), dt == EM_F32 ? 4e-5 : 1e-13,
                     "matmul broadcast");
    }
}

/* Both gemm kernels, whatever the device: the register-blocked one (the default on CPU
 * devices) and the tiled one (the default elsewhere), chosen by EMBER_OPENCL_GEMM. */
static void test_gemm_matches_cpu(void **state)
{
    (void)state;
    static const char *const kernels[] = {"reg", "tiled"};
    for (int i = 0; i < 2; i++) {
        setenv("EMBER_OPENCL_GEMM", kernels[i], 1);
        char why[2048];
        em_context *ctx, *save = g_ctx;
        em_status st = open_with("opencl", NULL, &ctx, why, sizeof why);
        unsetenv("EMBER_OPENCL_GEMM");
        if (st != EM_OK)
            fail_msg("EMBER_OPENCL_GEMM=%s: %s", kernels[i], why);
        g_ctx = ctx;
        em_scope_begin(ctx);
        gemm_cases(kernels[i]);
        assert_ok_ctx();
        em_scope_end(ctx);
        g_ctx = save;
        em_context_free(ctx);
    }
}

/* The backward helpers (relu, clamp, pow, tanh, sigmoid) and reductions of gradients. */
static em_tensor *grad_graph(em_tensor *x, em_tensor *w)
{
    em_tensor *h = em_relu(em_mm(x, w));
    em_tensor *l = em_add(em_sum(em_pow(h, 2)), em_sum(em_sigmoid(em_clamp(x, -0.5, 0.7))));
    l = em_add(l, em_mean(em_tanh(em_mul(x, x))));
    return em_add(l, em_sum(em_pow(em_add_scalar(em_abs(w), 0.1), 1.5)));
}

static void test_gradients_match_cpu(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        em_dtype dt = k ? EM_F64 : EM_F32;
        em_tensor *xc = rnd_cpu(dt, EM_SHAPE(16, 40), -1, 1), *wc = rnd_cpu(dt, EM_SHAPE(40, 12), -1, 1);
        em_tensor *x = on_ocl(xc), *w = on_ocl(wc);
        em_tensor *leaves[4] = {x, w, xc, wc};
        for (int i = 0; i < 4; i++)
            assert_int_equal(em_tensor_set_requires_grad(leaves[i], true), EM_OK);
        em_tensor *l = grad_graph(x, w), *lc = grad_graph(xc, wc);
        double tol = dt == EM_F32 ? 2e-5 : 1e-12;
        expect_match(l, lc, tol, "loss");
        assert_int_equal(em_backward(l), EM_OK);
        assert_int_equal(em_backward(lc), EM_OK);
        expect_match(em_grad(x), em_grad(xc), tol, "grad x");
        expect_match(em_grad(w), em_grad(wc), tol, "grad w");
    }
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ no fp64 */

static void test_f64_without_fp64(void **state)
{
    (void)state;
    setenv("EMBER_OPENCL_NO_FP64", "1", 1);
    char why[2048];
    em_context *ctx, *save = g_ctx;
    static const char *const error_kv[] = {"device", "op_fallback", "error", NULL};
    em_status st = open_with("opencl", error_kv, &ctx, why, sizeof why);
    if (st != EM_OK) {
        unsetenv("EMBER_OPENCL_NO_FP64");
        fail_msg("EMBER_OPENCL_NO_FP64=1: %s", why);
    }
    /* op_fallback = error: f64 is a clear error naming the dtype, not a wrong answer */
    em_scope_begin(ctx);
    assert_null(em_zeros(ctx, EM_F64, EM_SHAPE(4)));
    TH_EXPECT_MSG(em_context_status(ctx), EM_ERR_UNSUPPORTED, em_context_error(ctx),
                  "for dtype f64", "no fp64");
    em_context_clear_error(ctx);
    em_tensor *f = em_ones(ctx, EM_F32, EM_SHAPE(4));
    assert_null(em_to_dtype(f, EM_F64));
    TH_EXPECT_MSG(em_context_status(ctx), EM_ERR_UNSUPPORTED, em_context_error(ctx), "f64");
    em_context_clear_error(ctx);
    em_scope_end(ctx);
    em_context_free(ctx);

    /* the default, op_fallback = cpu: f64 ops run on cpu, on this device's tensors */
    st = open_with("opencl", NULL, &ctx, why, sizeof why);
    unsetenv("EMBER_OPENCL_NO_FP64");
    if (st != EM_OK)
        fail_msg("EMBER_OPENCL_NO_FP64=1: %s", why);
    g_ctx = ctx;
    em_scope_begin(ctx);
    em_tensor *x64c = rnd_cpu(EM_F64, EM_SHAPE(20, 30), -1, 1), *x64 = on_ocl(x64c);
    expect_match(em_mm(em_t(x64), x64), em_mm(em_t(x64c), x64c), 1e-12, "mm f64 through cpu");
    expect_match(em_exp(x64), em_exp(x64c), 1e-12, "exp f64 through cpu");
    assert_int_equal(em_tensor_dtype(em_to_dtype(em_ones(ctx, EM_F32, EM_SHAPE(4)), EM_F64)), EM_F64);
    /* f32 still runs on the device, uniform numbers still bit-exact, normals close */
    em_tensor *xc = rnd_cpu(EM_F32, EM_SHAPE(50, 70), -1, 1), *x = on_ocl(xc);
    int d0[1] = {0};
    expect_match(em_sum_dims(x, 1, d0, false), em_sum_dims(xc, 1, d0, false), 1e-5, "sum no fp64");
    expect_match(em_sum(x), em_sum(xc), 1e-5, "sum all no fp64");
    expect_match(em_mm(em_t(x), x), em_mm(em_t(xc), xc), 1e-4, "mm no fp64");
    expect_match(em_pow(em_abs(x), 1.3), em_pow(em_abs(xc), 1.3), 1e-5, "pow no fp64");
    em_manual_seed(ctx, 3);
    em_manual_seed(g_cpu, 3);
    expect_match(em_rand(ctx, EM_F32, EM_SHAPE(999)), em_rand(g_cpu, EM_F32, EM_SHAPE(999)), 0,
                 "rand no fp64");
    expect_match(em_randn(ctx, EM_F32, EM_SHAPE(999)), em_randn(g_cpu, EM_F32, EM_SHAPE(999)), 2e-5,
                 "randn no fp64");
    assert_ok_ctx();
    em_scope_end(ctx);
    g_ctx = save;
    em_context_free(ctx);
}

/* ------------------------------------------------------------------ program build and cache */

static void test_build_error_reports_log(void **state)
{
    (void)state;
    setenv("EMBER_OPENCL_BUILD_OPTIONS", "-D EM_TEST_BUILD_ERROR", 1);
    char why[2048];
    em_context *ctx;
    int fd;
    char *cap = th_capture_stderr_begin(&fd);
    em_status st = open_with("opencl", NULL, &ctx, why, sizeof why);
    char *err = th_capture_stderr_end(fd, cap);
    unsetenv("EMBER_OPENCL_BUILD_OPTIONS");
    TH_EXPECT_MSG(st, EM_ERR_BACKEND, why, "clBuildProgram", "CL_BUILD_PROGRAM_FAILURE",
                  "EM_TEST_BUILD_ERROR");
    /* the whole log goes to the error log */
    if (!strstr(err, "build log") || !strstr(err, "EM_TEST_BUILD_ERROR"))
        fail_msg("stderr lacks the build log: %s", err);
    free(err);
}

/* Count *.bin files in dir (-1: no dir); the first one's path in first. */
static int count_bins(const char *dir, char *first, size_t n)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int c = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".bin")) {
            if (!c && first)
                snprintf(first, n, "%s/%s", dir, e->d_name);
            c++;
        }
    }
    closedir(d);
    return c;
}

/* A context with the given cache= value and log = info; its stderr in *err. Runs an op
 * and checks it against cpu. */
static em_context *cache_ctx(const char *cache, char **err)
{
    const char *kv[] = {"opencl", "cache", cache, "device", "log", "info", NULL};
    char why[2048];
    em_context *ctx;
    int fd;
    char *cap = th_capture_stderr_begin(&fd);
    em_status st = open_with("opencl", kv, &ctx, why, sizeof why);
    *err = th_capture_stderr_end(fd, cap);
    if (st != EM_OK)
        fail_msg("cache=%s: %s (stderr: %s)", cache, why, *err);
    em_context *save = g_ctx;
    g_ctx = ctx;
    em_scope_begin(ctx);
    em_tensor *xc = rnd_cpu(EM_F32, EM_SHAPE(33, 20), -1, 1), *x = on_ocl(xc);
    expect_match(em_mm(x, em_t(x)), em_mm(xc, em_t(xc)), 1e-5, "op after cache");
    em_scope_end(ctx);
    g_ctx = save;
    return ctx;
}

/* No warning or error, but the one that announces f64 on cpu (EMBER_OPENCL_NO_FP64). */
static void expect_quiet(const char *err)
{
    for (const char *l = err; *l;) {
        size_t n = strcspn(l, "\n");
        char line[2048];
        snprintf(line, sizeof line, "%.*s", (int)n, l);
        if ((strstr(line, "warning") || strstr(line, "error")) && !strstr(line, "no fp64 support"))
            fail_msg("unexpected warning or error: %s", line);
        l += n + (l[n] == '\n');
    }
}

static void test_program_cache(void **state)
{
    (void)state;
    /* the f32-only program: the cache mechanism is the same, and PoCL compiles every
     * kernel when asked for the binary, so half the kernels is half the wait */
    setenv("EMBER_OPENCL_NO_FP64", "1", 1);
    char *base = th_mkdir("xdg");
    char *dir = th_join(base, "ember/opencl");
    setenv("XDG_CACHE_HOME", base, 1);
    char *err, bin[4096] = "";
    /* 1. miss: built from source and stored */
    em_context *ctx = cache_ctx("on", &err);
    if (!strstr(err, "built from source") || !strstr(err, "stored in the cache"))
        fail_msg("first context: %s", err);
    expect_quiet(err);
    free(err);
    em_context_free(ctx);
    assert_int_equal(count_bins(dir, bin, sizeof bin), 1);
    /* 2. hit */
    ctx = cache_ctx("on", &err);
    if (!strstr(err, "loaded from the cache"))
        fail_msg("second context did not use the cache: %s", err);
    expect_quiet(err);
    free(err);
    em_context_free(ctx);
    /* 3. a corrupt (truncated) entry is rebuilt from source, silently, and replaced */
    assert_int_equal(truncate(bin, 1000), 0);
    ctx = cache_ctx("on", &err);
    if (!strstr(err, "built from source"))
        fail_msg("corrupt cache entry: %s", err);
    expect_quiet(err);
    free(err);
    em_context_free(ctx);
    ctx = cache_ctx("on", &err);
    if (!strstr(err, "loaded from the cache"))
        fail_msg("rewritten cache entry not used: %s", err);
    free(err);
    em_context_free(ctx);
    assert_int_equal(count_bins(dir, NULL, 0), 1);
    /* 4. an unusable cache directory is no error */
    char *file = th_write("files/not-a-dir", "x");
    setenv("XDG_CACHE_HOME", file, 1);
    ctx = cache_ctx("on", &err);
    expect_quiet(err);
    free(err);
    em_context_free(ctx);
    /* 5. cache=off writes nothing */
    char *off = th_mkdir("xdg-off");
    setenv("XDG_CACHE_HOME", off, 1);
    ctx = cache_ctx("off", &err);
    if (strstr(err, "cache"))
        fail_msg("cache=off mentioned the cache: %s", err);
    free(err);
    em_context_free(ctx);
    char *offdir = th_join(off, "ember/opencl");
    assert_true(count_bins(offdir, NULL, 0) <= 0);
    unsetenv("EMBER_OPENCL_NO_FP64");
    free(offdir);
    free(off);
    free(file);
    free(dir);
    free(base);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    g_self = "/proc/self/exe";
    if (argc > 1 && !strcmp(argv[1], "--no-device-child"))
        return no_device_child();
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    char why[1024] = "";
    g_cpu = test_open("cpu", why, sizeof why);
    if (!g_cpu) {
        printf("1..1\nnot ok 1 - cpu backend unusable: %s\n", why);
        return 1;
    }
    /* the tests below change these; th_env_save/restore put them back */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_device, ocl_env_save, ocl_env_restore),
        cmocka_unit_test_setup_teardown(test_config_values, ocl_env_save, ocl_env_restore),
        cmocka_unit_test_setup_teardown(test_device_selection, ocl_env_save, ocl_env_restore),
        EM_TEST(test_rng_matches_cpu),
        EM_TEST(test_elementwise_matches_cpu),
        EM_TEST(test_reductions_match_cpu),
        cmocka_unit_test_setup_teardown(test_gemm_matches_cpu, ocl_env_save, ocl_env_restore),
        EM_TEST(test_gradients_match_cpu),
        cmocka_unit_test_setup_teardown(test_f64_without_fp64, ocl_env_save, ocl_env_restore),
        cmocka_unit_test_setup_teardown(test_build_error_reports_log, ocl_env_save, ocl_env_restore),
        cmocka_unit_test_setup_teardown(test_program_cache, ocl_env_save, ocl_env_restore),
    };
    rc = _cmocka_run_group_tests("opencl backend", tests, sizeof tests / sizeof tests[0], NULL,
                                 NULL);
    em_context_free(g_cpu);
    em_context_free(g_ctx);
    return rc;
}
