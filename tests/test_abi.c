/* tests/test_abi.c — the clauses of plugin ABI 1.1, each against a plugin that keeps it and
 * one that breaks it (tests/plugins/tplugin.c's modes):
 *   per-kernel dtypes   an undeclared dtype is never passed: it falls back (or fails under
 *                       op_fallback = error); a 1.0 plugin gets 1.0's promise;
 *   kernel arguments    a 1.1 core's lists agree with out/in[] on every call;
 *   describe calls      keys read without an instance; every device.ini section checked;
 *                       a describe call that creates an instance or lies is reported;
 *   host buffers        ops fall back in place, with no copies; em_tensor_data_ptr;
 *   asynchrony          async copies ordered with events; a device that ignores the events
 *                       gives wrong data (so the ordering is really what is tested);
 *                       a half group of entries is refused.
 * The test plugin counts what it was handed (tplugin_stats_), read here through dlsym. */
#include "harness.h"

#include <dlfcn.h>
#include <stdatomic.h>

#include "plugins/tplugin.h"

static const char *plugin_dir(void)
{
    return th_env("EMBER_TEST_PLUGIN_DIR");
}

/* The test plugins' shared object, kept loaded so its counters survive contexts. */
static void *g_dl;
static tplugin_stats *stats(void)
{
    if (!g_dl) {
        char *f = th_join(plugin_dir(), "ember-backend-tgood.so");
        g_dl = dlopen(f, RTLD_NOW | RTLD_LOCAL);
        free(f);
        assert_non_null(g_dl);
    }
    tplugin_stats *s = dlsym(g_dl, "tplugin_stats_");
    assert_non_null(s);
    return s;
}

static long count(atomic_long *c)
{
    return atomic_load(c);
}

/* A context on test plugin `backend` in `mode` (NULL: none), op_fallback cpu or error. */
static em_context *open_mode(const char *backend, const char *mode, const char *op_fallback)
{
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", backend);
    em_config_set(cfg, "backends", "path", plugin_dir());
    if (mode)
        em_config_set(cfg, backend, "mode", mode);
    if (op_fallback)
        em_config_set(cfg, "device", "op_fallback", op_fallback);
    em_context *ctx = NULL;
    em_status st = em_context_create_with(&ctx, cfg);
    em_config_free(cfg);
    if (st != EM_OK)
        fail_msg("%s (mode %s): %s", backend, mode ? mode : "-", em_last_error());
    return ctx;
}

static em_tensor *vec(em_context *ctx, em_dtype dt, int n, double base)
{
    double v[64];
    float f[64];
    for (int i = 0; i < n; i++) {
        v[i] = base + i;
        f[i] = (float)v[i];
    }
    return em_tensor_from_data(ctx, dt, EM_SHAPE(n), dt == EM_F32 ? (void *)f : (void *)v);
}

static double at(em_tensor *t, int i)
{
    double v[64];
    em_tensor *d = em_to_dtype(t, EM_F64);
    assert_int_equal(em_tensor_to_host(d, v, sizeof v), EM_OK);
    return v[i];
}

/* ------------------------------------------------------------------ dtypes */

static void test_undeclared_dtype_falls_back(void **state)
{
    (void)state;
    tplugin_stats *s = stats();
    em_context *ctx = open_mode("tgood", "f32-only", NULL);
    em_scope_begin(ctx);
    long k0 = count(&s->kernel_calls);
    em_tensor *a = vec(ctx, EM_F32, 5, 1), *b = vec(ctx, EM_F32, 5, 10);
    em_tensor *c32 = em_add(a, b);
    assert_true(count(&s->kernel_calls) > k0);   /* f32: the plugin's own kernels */
    em_tensor *c64 = em_add(em_to_dtype(a, EM_F64), em_to_dtype(b, EM_F64));   /* f64: cpu */
    assert_int_equal(em_context_status(ctx), EM_OK);
    assert_true(at(c32, 4) == 19.0 && at(c64, 4) == 19.0);
    assert_int_equal(count(&s->undeclared_calls), 0);
    assert_int_equal(count(&s->bad_kargs), 0);
    em_scope_end(ctx);
    em_context_free(ctx);

    /* op_fallback = error: the same f64 add is refused, naming the dtype */
    ctx = open_mode("tgood", "f32-only", "error");
    em_scope_begin(ctx);
    a = vec(ctx, EM_F32, 5, 1);
    assert_non_null(em_add(a, a));
    em_tensor *a64 = em_zeros(ctx, EM_F64, EM_SHAPE(5));   /* fill of f64: not declared */
    assert_null(a64);
    TH_EXPECT_MSG(em_context_status(ctx), EM_ERR_UNSUPPORTED, em_context_error(ctx),
                  "op fill is not supported by backend tgood for dtype f64",
                  "op_fallback = error");
    em_scope_end(ctx);
    em_context_free(ctx);
    assert_int_equal(count(&s->undeclared_calls), 0);
}

/* The plugin built from the frozen 1.0 headers: loads, is told nothing it cannot read, is
 * handed only what 1.0 promised, and the registry shows that promise as its dtypes. */
static void test_abi10_plugin(void **state)
{
    (void)state;
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", "tabi10");
    em_config_set(cfg, "backends", "path", plugin_dir());
    em_registry *reg = NULL;
    assert_int_equal(em_registry_scan(cfg, &reg), EM_OK);
    const em_plugin_info *pi = NULL;
    for (int i = 0; i < em_registry_plugin_count(reg); i++)
        if (!strcmp(em_registry_plugin(reg, i)->name, "tabi10"))
            pi = em_registry_plugin(reg, i);
    assert_non_null(pi);
    assert_int_equal(pi->stage, EM_STAGE_READY);
    assert_int_equal(pi->abi_minor, 0);
    assert_true(pi->described_by_init);
    assert_non_null(pi->described_keys);
    assert_string_equal(pi->described_keys[0], "mode");
    for (int k = 0; k < pi->kernel_count; k++) {
        em_dtype_mask want = 0;
        const char *n = pi->kernel_names[k];
        if (!strcmp(n, "fill") || !strcmp(n, "copy"))
            want = EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64) | EM_DTYPE_BIT(EM_BOOL);
        else if (!strcmp(n, "add"))
            want = EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64);
        if (pi->kernel_dtypes[k] != want)
            fail_msg("tabi10 %s: dtypes %#x, want %#x", n, pi->kernel_dtypes[k], want);
    }
    assert_int_equal(pi->features, 0);
    em_registry_free(reg);

    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_OK, "");
    em_config_free(cfg);
    em_scope_begin(ctx);
    /* every dtype through fill, copy, add (its kernels, which check what they get) and the
     * rest through the fallback */
    for (int dt = 0; dt < 2; dt++) {
        em_tensor *a = vec(ctx, (em_dtype)dt, 6, 1);
        em_tensor *r = em_mul(em_add(a, a), a);
        assert_true(at(r, 5) == 72.0);
        em_tensor *m = em_where(em_gt_scalar(a, 3), a, em_neg(a));
        assert_true(at(m, 1) == -2.0 && at(m, 4) == 5.0);
    }
    assert_int_equal(em_context_status(ctx), EM_OK);
    em_scope_end(ctx);
    em_context_free(ctx);
}

/* ------------------------------------------------------------------ describe */

static void test_unused_section_keys_checked(void **state)
{
    (void)state;
    char text[4096];
    snprintf(text, sizeof text,
             "[device]\nbackend = cpu\n[backends]\npath = %s\n[tgood]\nmode = fast\ncolour = blue\n",
             plugin_dir());
    em_config *cfg = em_config_create();
    assert_int_equal(em_config_load_string(cfg, text, "unused.ini"), EM_OK);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG, "unused.ini:7", "[tgood] colour",
              "unknown key", "mode");
    assert_null(ctx);
    em_config_free(cfg);
    /* first-party sections too: the cpu plugin describes its keys */
    cfg = em_config_create();
    assert_int_equal(em_config_load_string(cfg, "[device]\nbackend = cpu\n[cpu]\nthreds = 2\n",
                                           "cpu.ini"), EM_OK);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG, "cpu.ini:4", "[cpu] threds",
              "did you mean 'threads'?");
    em_config_free(cfg);
}

/* An unknown key of the section in use is caught when the configuration is read, through
 * the describe call's keys: the entry of an instance never receives it. */
static void test_unknown_keys_never_reach_entry(void **state)
{
    (void)state;
    char text[4096];
    snprintf(text, sizeof text, "[device]\nbackend = tgood\n[backends]\npath = %s\n[tgood]\n"
             "colour = blue\nmode = fast\n", plugin_dir());
    tplugin_stats *s = stats();
    long before = count(&s->unknown_keys);
    em_config *cfg = em_config_create();
    assert_int_equal(em_config_load_string(cfg, text, "used.ini"), EM_OK);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG, "used.ini:6", "[tgood] colour",
              "unknown key", "accepts: mode");
    assert_null(ctx);
    em_config_free(cfg);
    assert_int_equal(count(&s->unknown_keys), before);
}

static const em_plugin_info *scan_tgood(em_registry **reg)
{
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", "cpu");
    em_config_set(cfg, "backends", "path", plugin_dir());
    assert_int_equal(em_registry_scan(cfg, reg), EM_OK);
    em_config_free(cfg);
    for (int i = 0; i < em_registry_plugin_count(*reg); i++)
        if (!strcmp(em_registry_plugin(*reg, i)->name, "tgood"))
            return em_registry_plugin(*reg, i);
    fail_msg("tgood not scanned");
    return NULL;
}

static void test_describe_call(void **state)
{
    (void)state;
    em_registry *reg;
    const em_plugin_info *pi = scan_tgood(&reg);
    assert_false(pi->described_by_init);
    assert_string_equal(pi->describe_problem, "");
    assert_non_null(pi->described_keys);
    assert_string_equal(pi->described_keys[0], "mode");
    assert_null(pi->described_keys[1]);
    em_registry_free(reg);
}

/* Breaches of the describe contract are reported (descriptions are cached per file, so each
 * case uses a copy of the plugin under a path of its own). */
static const em_plugin_info *scan_copy(const char *how, em_registry **reg)
{
    static int n;
    char sub[96];
    snprintf(sub, sizeof sub, "describe-%s-%d/ember-backend-tgood.so", how, n++);
    char *from = th_join(plugin_dir(), "ember-backend-tgood.so");
    char *to = th_copy(from, sub, (size_t)-1);
    char *dir = strdup(to);
    *strrchr(dir, '/') = 0;
    setenv("EMBER_TPLUGIN_DESCRIBE", how, 1);
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", "cpu");
    em_config_set(cfg, "backends", "path", dir);
    em_status st = em_registry_scan(cfg, reg);
    unsetenv("EMBER_TPLUGIN_DESCRIBE");
    assert_int_equal(st, EM_OK);
    em_config_free(cfg);
    free(from);
    free(to);
    free(dir);
    for (int i = 0; i < em_registry_plugin_count(*reg); i++)
        if (!strcmp(em_registry_plugin(*reg, i)->name, "tgood"))
            return em_registry_plugin(*reg, i);
    fail_msg("tgood copy not scanned");
    return NULL;
}

static void test_describe_breaches(void **state)
{
    (void)state;
    em_registry *reg;
    const em_plugin_info *pi = scan_copy("instance", &reg);
    assert_non_null(strstr(pi->describe_problem, "created an instance"));
    em_registry_free(reg);
    pi = scan_copy("fail", &reg);
    assert_null(pi->described_keys);
    assert_non_null(strstr(pi->describe_problem, "describe refused on purpose"));
    em_registry_free(reg);
    pi = scan_copy("lie", &reg);
    /* the keys of the description differ from the instance's: ember-conform fails this */
    assert_non_null(pi->described_keys[1]);
    assert_string_equal(pi->described_keys[1], "extra");
    assert_null(pi->config_keys[1]);
    em_registry_free(reg);
}

/* ------------------------------------------------------------------ host buffers */

static void test_host_buffers_in_place(void **state)
{
    (void)state;
    tplugin_stats *s = stats();
    for (int host = 0; host < 2; host++) {
        em_context *ctx = open_mode("tgood", host ? "host" : "fast", NULL);
        em_scope_begin(ctx);
        em_tensor *a = vec(ctx, EM_F32, 8, 1), *b = vec(ctx, EM_F32, 8, 2);
        long h0 = count(&s->copies_h2d), d0 = count(&s->copies_d2h);
        /* mul, relu, sum, pow: none in the plugin, all through the fallback */
        em_tensor *r = em_sum(em_pow(em_relu(em_mul(a, b)), 2.0));
        assert_non_null(r);
        long copies = count(&s->copies_h2d) - h0 + count(&s->copies_d2h) - d0;
        if (host)
            assert_int_equal(copies, 0);
        else
            assert_true(copies >= 8);   /* a round trip per fallback op */
        double want = 0;
        for (int i = 0; i < 8; i++)
            want += ((1.0 + i) * (2.0 + i)) * ((1.0 + i) * (2.0 + i));
        assert_true(at(r, 0) == want);
        float *p = em_tensor_data_ptr(a);
        if (host) {
            assert_non_null(p);
            assert_true(((uintptr_t)p & 63) == 0);
            assert_true(p[3] == 4.0f);
            p[3] = 40;   /* the host's write is the tensor's */
            assert_true(at(a, 3) == 40.0);
        } else {
            assert_null(p);
            TH_EXPECT_MSG(em_context_status(ctx), EM_ERR_UNSUPPORTED, em_context_error(ctx),
                          "em_tensor_data_ptr", "device memory");
            em_context_clear_error(ctx);
        }
        assert_int_equal(em_context_status(ctx), EM_OK);
        em_scope_end(ctx);
        em_context_free(ctx);
    }
}

/* A plugin claiming host buffers whose handles are not the data's address: the pointer the
 * core hands out does not show the tensor (what ember-conform checks and fails). */
static void test_host_buffer_liar_is_visible(void **state)
{
    (void)state;
    em_context *ctx = open_mode("tgood", "host-liar", NULL);
    em_scope_begin(ctx);
    em_tensor *a = vec(ctx, EM_F32, 8, 1);
    float *p = em_tensor_data_ptr(a);
    assert_non_null(p);
    assert_true(p[0] != 1.0f);   /* the header, not the data */
    em_scope_end(ctx);
    em_context_free(ctx);
}

/* ------------------------------------------------------------------ asynchrony */

static void async_round(const char *mode, bool *correct)
{
    em_context *ctx = open_mode("tgood", mode, NULL);
    em_scope_begin(ctx);
    enum { N = 1000 };
    float *in = em_pinned_alloc(ctx, N * sizeof(float));
    float *out = em_pinned_alloc(ctx, N * sizeof(float));
    assert_non_null(in);
    assert_non_null(out);
    for (int i = 0; i < N; i++)
        in[i] = (float)i;
    em_tensor *t = em_zeros(ctx, EM_F32, EM_SHAPE(N));
    assert_int_equal(em_tensor_from_host_async(t, in, N * sizeof(float)), EM_OK);
    em_tensor *u = em_add(t, t);          /* must see the upload */
    memset(out, 0xff, N * sizeof(float));
    assert_int_equal(em_tensor_to_host_async(u, out, N * sizeof(float)), EM_OK);
    bool early = out[7] == 14.0f;          /* not guaranteed before synchronize */
    (void)early;
    assert_int_equal(em_synchronize(ctx), EM_OK);
    *correct = true;
    for (int i = 0; i < N; i++)
        *correct = *correct && out[i] == 2.0f * (float)i;
    /* a second upload into the same tensor, then a kernel writing it and a download */
    for (int i = 0; i < N; i++)
        in[i] = 1.0f;
    assert_int_equal(em_tensor_from_host_async(t, in, N * sizeof(float)), EM_OK);
    assert_int_equal(em_add_(t, t), EM_OK);
    assert_int_equal(em_tensor_to_host_async(t, out, N * sizeof(float)), EM_OK);
    assert_int_equal(em_synchronize(ctx), EM_OK);
    for (int i = 0; i < N; i++)
        *correct = *correct && out[i] == 2.0f;
    em_pinned_free(ctx, in);
    em_pinned_free(ctx, (void *)0x1000);   /* not ours: reported, nothing freed */
    TH_EXPECT_MSG(em_context_status(ctx), EM_ERR_INVALID, em_context_error(ctx), "em_pinned_free");
    em_context_clear_error(ctx);
    /* `out` stays: em_context_free releases what is left, and copies still in flight */
    assert_int_equal(em_tensor_to_host_async(u, out, N * sizeof(float)), EM_OK);
    em_scope_end(ctx);
    em_context_free(ctx);
}

static void test_async_copies_ordered(void **state)
{
    (void)state;
    bool ok;
    async_round("async", &ok);
    assert_true(ok);
    async_round("fast", &ok);    /* no async entries: synchronous, same results */
    assert_true(ok);
    /* the device that does not wait for events reads stale data: the ordering is tested */
    async_round("async-broken", &ok);
    assert_false(ok);
}

static void test_half_async_refused(void **state)
{
    (void)state;
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", "tgood");
    em_config_set(cfg, "backends", "path", plugin_dir());
    em_config_set(cfg, "tgood", "mode", "half-async");
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_PLUGIN, "streams and events",
              "event_create", "all there or all NULL");
    em_config_free(cfg);
}

/* A kernel returning a number outside em_status (1234, -1), or EM_OK on failure's behalf:
 * the call fails with EM_ERR_BACKEND, the raw value in the message, in the functional and
 * the in-place forms; a status inside the enum is kept as it is. */
static void test_odd_kernel_statuses(void **state)
{
    (void)state;
    stats();   /* loads the plugin's shared object */
    atomic_int *forced = dlsym(g_dl, "tplugin_kernel_status_");
    assert_non_null(forced);
    em_context *ctx = open_mode("tgood", NULL, "error");
    em_tensor *a = vec(ctx, EM_F32, 4, 1), *b = vec(ctx, EM_F32, 4, 10);
    const int odd[] = {1234, -1, (int)EM_ERR_INTERNAL + 1};
    char raw[64];
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        snprintf(raw, sizeof raw, "returned status %d,", odd[i]);
        atomic_store(forced, odd[i]);
        assert_null(em_add(a, b));
        TH_EXPECT_MSG(em_context_status(ctx), EM_ERR_BACKEND, em_context_error(ctx), "add", raw);
        em_context_clear_error(ctx);
        assert_int_equal(em_add_(a, b), EM_ERR_BACKEND);
        TH_EXPECT_MSG(em_context_status(ctx), EM_ERR_BACKEND, em_context_error(ctx), raw);
        em_context_clear_error(ctx);
        atomic_store(forced, 0);
        assert_true(at(a, 3) == 4);   /* the failed in-place add changed nothing */
    }
    atomic_store(forced, EM_ERR_OOM);
    assert_null(em_add(a, b));
    assert_int_equal(em_context_status(ctx), EM_ERR_OOM);
    em_context_clear_error(ctx);
    atomic_store(forced, 0);
    assert_true(at(em_add(a, b), 3) == 17);
    em_context_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_undeclared_dtype_falls_back),
        cmocka_unit_test(test_abi10_plugin),
        cmocka_unit_test(test_unused_section_keys_checked),
        cmocka_unit_test(test_unknown_keys_never_reach_entry),
        cmocka_unit_test(test_describe_call),
        cmocka_unit_test(test_describe_breaches),
        cmocka_unit_test(test_host_buffers_in_place),
        cmocka_unit_test(test_host_buffer_liar_is_visible),
        cmocka_unit_test(test_async_copies_ordered),
        cmocka_unit_test(test_half_async_refused),
        cmocka_unit_test(test_odd_kernel_statuses),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (g_dl)
        dlclose(g_dl);
    return rc;
}
