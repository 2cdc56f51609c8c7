/* tests/test_loader.c — the plugin loader and registry, through the public API only: each
 * broken test plugin (tests/plugins/tplugin.c) and each corpus file made here at run time
 * must fail at its own stage with a message that names the file and says what is wrong;
 * the fallback must be taken and announced; duplicates are shadowed; nothing leaks. */
#include "harness.h"

/* alloc.c's fault-injection hook (exported for tests) */
void em__test_fail_alloc_after(long n);

static const char *plugin_dir(void)
{
    return th_env("EMBER_TEST_PLUGIN_DIR");
}

static char *plugin_file(const char *name)
{
    char f[128];
    snprintf(f, sizeof f, "ember-backend-%s.so", name);
    return th_join(plugin_dir(), f);
}

/* [device] backend = <backend>, [backends] path = <path> (the test plugins when NULL). */
static em_config *cfg_for(const char *backend, const char *path)
{
    em_config *cfg = em_config_create();
    assert_non_null(cfg);
    assert_int_equal(em_config_set(cfg, "device", "backend", backend), EM_OK);
    assert_int_equal(em_config_set(cfg, "backends", "path", path ? path : plugin_dir()), EM_OK);
    return cfg;
}

/* Create a context on `backend` from the test plugins; returns the status. */
static em_status try_backend(const char *backend)
{
    em_config *cfg = cfg_for(backend, NULL);
    em_context *ctx = NULL;
    em_status st = em_context_create_with(&ctx, cfg);
    em_config_free(cfg);
    if (st == EM_OK)
        assert_non_null(ctx);
    else
        assert_null(ctx);
    em_context_free(ctx);
    return st;
}

static const em_plugin_info *find_info(const em_registry *reg, const char *name, int nth)
{
    for (int i = 0; i < em_registry_plugin_count(reg); i++) {
        const em_plugin_info *pi = em_registry_plugin(reg, i);
        if (!strcmp(pi->name, name) && nth-- == 0)
            return pi;
    }
    return NULL;
}

static bool kernel_present(const em_plugin_info *pi, const char *kname)
{
    for (int k = 0; k < pi->kernel_count; k++)
        if (!strcmp(pi->kernel_names[k], kname))
            return pi->kernel_present[k];
    fail_msg("no kernel named %s", kname);
    return false;
}

/* ------------------------------------------------------------------ loading */

static void test_good_plugin_loads(void **state)
{
    (void)state;
    em_config *cfg = cfg_for("tgood", NULL);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_OK, "");
    em_config_free(cfg);
    assert_non_null(ctx);
    assert_string_equal(em_context_backend(ctx), "tgood");
    assert_int_equal(em_context_device_index(ctx), 0);
    assert_string_equal(em_context_device_name(ctx), "tplugin host memory device");
    assert_string_equal(em_context_config_source(ctx), "(in-code configuration)");
    assert_null(em_context_fallback_reason(ctx));
    em_context_free(ctx);
}

static void test_good_plugin_config_key(void **state)
{
    (void)state;
    em_config *cfg = cfg_for("tgood", NULL);
    assert_int_equal(em_config_set(cfg, "tgood", "mode", "exact"), EM_OK);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_OK, "");
    em_context_free(ctx);
    /* the plugin's own rejection, located at the key's line in the file */
    em_config_free(cfg);
    cfg = em_config_create();
    char text[4096];
    snprintf(text, sizeof text, "[device]\nbackend = tgood\n[backends]\npath = %s\n[tgood]\nmode = bogus\n",
             plugin_dir());
    assert_int_equal(em_config_load_string(cfg, text, "plug.ini"), EM_OK);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG,
              "plug.ini:6: [tgood] mode: expected fast or exact, got 'bogus'");
    assert_null(ctx);
    em_config_free(cfg);
}

static void test_unknown_backend_key(void **state)
{
    (void)state;
    em_config *cfg = em_config_create();
    char text[4096];
    snprintf(text, sizeof text,
             "[device]\nbackend = tgood\n[backends]\npath = %s\n[tgood]\nmode = fast\ncolour = blue\n",
             plugin_dir());
    assert_int_equal(em_config_load_string(cfg, text, "keys.ini"), EM_OK);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG,
              "keys.ini:7: [tgood] colour: unknown key", "accepts: mode");
    em_config_free(cfg);
}

static void test_missing_plugin(void **state)
{
    (void)state;
    char *extra = th_mkdir("empty-plugins");
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s:%s:/nonexistent/ember-plugins", plugin_dir(), extra);
    em_config *cfg = cfg_for("tnothere", path);
    em_context *ctx = NULL;
    /* not one of ember's own backends: a configuration error, with where it looked */
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG, "unknown backend 'tnothere'",
              "ember-backend-tnothere.so", plugin_dir(), extra,
              "/nonexistent/ember-plugins ([backends] path; does not exist)");
    em_config_free(cfg);
    free(extra);
}

static void test_not_elf(void **state)
{
    (void)state;
    char *f = th_write("notelf/ember-backend-notelf.so", "this is not a shared object\n");
    char *dir = th_join(th_tmpdir(), "notelf");
    em_config *cfg = cfg_for("notelf", dir);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_PLUGIN, f, "dlopen failed");
    em_config_free(cfg);
    free(dir);
    free(f);
}

static void test_truncated(void **state)
{
    (void)state;
    char *good = plugin_file("tgood");
    char *f = th_copy(good, "trunc/ember-backend-ttrunc.so", 2000);
    char *dir = th_join(th_tmpdir(), "trunc");
    em_config *cfg = cfg_for("ttrunc", dir);
    em_context *ctx = NULL;
    /* dlopen itself would map it and die of SIGBUS: the loader checks the file first */
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_PLUGIN, f, "has only 2000 bytes",
              "it is truncated");
    em_config_free(cfg);
    free(dir);
    free(f);
    /* cut inside the program headers */
    f = th_copy(good, "trunc/ember-backend-ttrunc.so", 100);
    dir = th_join(th_tmpdir(), "trunc");
    cfg = cfg_for("ttrunc", dir);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_PLUGIN, f, "program headers");
    em_config_free(cfg);
    free(dir);
    free(f);
    /* cut inside the ELF header: dlopen's own words */
    f = th_copy(good, "trunc/ember-backend-ttrunc.so", 40);
    dir = th_join(th_tmpdir(), "trunc");
    cfg = cfg_for("ttrunc", dir);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_PLUGIN, f, "dlopen failed");
    em_config_free(cfg);
    free(dir);
    free(f);
    free(good);
}

static void test_no_symbol(void **state)
{
    (void)state;
    char *f = plugin_file("tnosym");
    TH_EXPECT(try_backend("tnosym"), EM_ERR_PLUGIN, f, "not an ember backend plugin",
              "no symbol 'ember_backend_entry'");
    free(f);
}

static void test_bad_abi(void **state)
{
    (void)state;
    char want[64], have[64];
    snprintf(want, sizeof want, "ABI %d.%d,", EM_ABI_MAJOR + 1, EM_ABI_MINOR);
    snprintf(have, sizeof have, "uses ABI %d.%d", EM_ABI_MAJOR, EM_ABI_MINOR);
    char *f = plugin_file("tbadabi");
    TH_EXPECT(try_backend("tbadabi"), EM_ERR_PLUGIN, f, want, have, "major versions must match");
    free(f);
}

static void test_init_failure(void **state)
{
    (void)state;
    char *f = plugin_file("tinitfail");
    TH_EXPECT(try_backend("tinitfail"), EM_ERR_BACKEND, f, "failed to initialise",
              "simulated driver failure: libtplugin-driver.so.1");
    free(f);
}

static void test_name_mismatch(void **state)
{
    (void)state;
    char *f = plugin_file("tmismatch");
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "plugin at %s calls itself 'somethingelse', expected 'tmismatch'", f);
    TH_EXPECT(try_backend("tmismatch"), EM_ERR_PLUGIN, want);
    free(f);
}

static void test_no_device(void **state)
{
    (void)state;
    TH_EXPECT(try_backend("tnodev"), EM_ERR_NO_DEVICE, "backend 'tnodev' has no usable device",
              "no test hardware");
}

static void test_index_out_of_range(void **state)
{
    (void)state;
    em_config *cfg = cfg_for("tgood", NULL);
    assert_int_equal(em_config_set(cfg, "device", "index", "3"), EM_OK);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_NO_DEVICE, "has 1 device",
              "device index 3", "out of range");
    assert_int_equal(em_config_set(cfg, "device", "index", "0"), EM_OK);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_OK, "");
    em_context_free(ctx);
    em_config_free(cfg);
}

/* Odd tables, made by the good plugin on request (tplugin.c, config key mode). */
static em_status try_mode(const char *mode)
{
    em_config *cfg = cfg_for("tgood", NULL);
    assert_int_equal(em_config_set(cfg, "tgood", "mode", mode), EM_OK);
    em_context *ctx = NULL;
    em_status st = em_context_create_with(&ctx, cfg);
    em_context_free(ctx);
    em_config_free(cfg);
    return st;
}

static void test_abi_tables(void **state)
{
    (void)state;
    TH_EXPECT(try_mode("short-backend"), EM_ERR_PLUGIN, "em_backend of", "through 'ops'");
    TH_EXPECT(try_mode("short-ops"), EM_ERR_PLUGIN, "ops table of", "through 'synchronize'");
    TH_EXPECT(try_mode("no-ops"), EM_ERR_PLUGIN, "no ops table");
    TH_EXPECT(try_mode("fail-open"), EM_ERR_BACKEND, "cannot open its default device",
              "simulated failure opening device -1");
    /* an older minor's shorter table loads; the entries it lacks read as NULL */
    TH_EXPECT(try_mode("old-minor"), EM_OK, "");
}

/* ------------------------------------------------------------------ fallback */

static void test_fallback_taken(void **state)
{
    (void)state;
    em_config *cfg = cfg_for("tnodev", NULL);
    assert_int_equal(em_config_set(cfg, "device", "fallback", "tgood"), EM_OK);
    /* tgood is a partial backend: keep its op-fallback announcement out of this check */
    assert_int_equal(em_config_set(cfg, "device", "op_fallback", "error"), EM_OK);
    em_context *ctx = NULL;
    int fd;
    char *cap = th_capture_stderr_begin(&fd);
    em_status st = em_context_create_with(&ctx, cfg);
    char *err = th_capture_stderr_end(fd, cap);
    TH_EXPECT(st, EM_OK, "");
    assert_string_equal(em_context_backend(ctx), "tgood");
    assert_non_null(em_context_fallback_reason(ctx));
    TH_EXPECT_MSG(EM_OK, EM_OK, em_context_fallback_reason(ctx), "tnodev", "no test hardware");
    /* exactly one line, in the documented form */
    TH_EXPECT_MSG(EM_OK, EM_OK, err, "ember: warning: backend 'tnodev' unavailable (",
                  "no test hardware", "); using fallback 'tgood'\n");
    assert_non_null(strchr(err, '\n'));
    assert_string_equal(strchr(err, '\n') + 1, "");
    free(err);
    em_context_free(ctx);
    em_config_free(cfg);
}

static void test_fallback_fails_too(void **state)
{
    (void)state;
    em_config *cfg = cfg_for("tnodev", NULL);
    assert_int_equal(em_config_set(cfg, "device", "fallback", "tnosym"), EM_OK);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_NO_DEVICE, "no test hardware",
              "the fallback 'tnosym' failed too", "no symbol");
    assert_null(ctx);
    em_config_free(cfg);
}

static void test_no_fallback_on_config_error(void **state)
{
    (void)state;
    /* a typo is the user's to fix: it must not be papered over by switching device */
    em_config *cfg = cfg_for("tgood", NULL);
    assert_int_equal(em_config_set(cfg, "device", "fallback", "tgood2"), EM_OK);
    assert_int_equal(em_config_set(cfg, "tgood", "mdoe", "fast"), EM_OK);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG, "[tgood] mdoe: unknown key");
    em_config_free(cfg);
}

static void test_fallback_to_cpu(void **state)
{
    (void)state;
    const char *bdir = getenv("EMBER_TEST_BACKEND_DIR");
    char *cpu = bdir ? th_join(bdir, "ember-backend-cpu.so") : NULL;
    if (!cpu || !th_exists(cpu)) {
        /* cmocka's skip() is a failure under TAP: say so and pass */
        print_message("# no cpu plugin in EMBER_TEST_BACKEND_DIR; fallback to cpu not tested\n");
        free(cpu);
        return;
    }
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s:%s", plugin_dir(), bdir);
    em_config *cfg = cfg_for("tinitfail", path);
    assert_int_equal(em_config_set(cfg, "device", "fallback", "cpu"), EM_OK);
    em_context *ctx = NULL;
    int fd;
    char *cap = th_capture_stderr_begin(&fd);
    em_status st = em_context_create_with(&ctx, cfg);
    char *err = th_capture_stderr_end(fd, cap);
    TH_EXPECT(st, EM_OK, "");
    assert_string_equal(em_context_backend(ctx), "cpu");
    TH_EXPECT_MSG(EM_OK, EM_OK, em_context_fallback_reason(ctx), "simulated driver failure");
    TH_EXPECT_MSG(EM_OK, EM_OK, err, "using fallback 'cpu'");
    free(err);
    em_context_free(ctx);
    em_config_free(cfg);
    free(cpu);
}

/* ------------------------------------------------------------------ library= */

static void test_library_key(void **state)
{
    (void)state;
    em_context *ctx = NULL;
    char *good = plugin_file("tgood");
    char *dir = th_mkdir("libdir");
    char text[PATH_MAX * 3];

    /* a directory */
    em_config *cfg = em_config_create();
    snprintf(text, sizeof text, "[device]\nbackend = tgood\n\n[tgood]\nlibrary = %s\n", dir);
    assert_int_equal(em_config_load_string(cfg, text, "lib.ini"), EM_OK);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG, "lib.ini:5: [tgood] library: ",
              dir, "is a directory");
    em_config_free(cfg);

    /* a missing file */
    cfg = em_config_create();
    snprintf(text, sizeof text, "[device]\nbackend = tgood\n[tgood]\nlibrary = %s/nope.so\n", dir);
    assert_int_equal(em_config_load_string(cfg, text, "lib.ini"), EM_OK);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG, "lib.ini:4: [tgood] library: ",
              "nope.so' does not exist");
    em_config_free(cfg);

    /* the right file: no search path needed at all */
    cfg = em_config_create();
    assert_int_equal(em_config_set(cfg, "device", "backend", "tgood"), EM_OK);
    assert_int_equal(em_config_set(cfg, "tgood", "library", good), EM_OK);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_OK, "");
    assert_string_equal(em_context_backend(ctx), "tgood");
    em_context_free(ctx);
    ctx = NULL;
    em_config_free(cfg);

    /* the file of another backend */
    cfg = em_config_create();
    assert_int_equal(em_config_set(cfg, "device", "backend", "tother"), EM_OK);
    assert_int_equal(em_config_set(cfg, "tother", "library", good), EM_OK);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_PLUGIN, "calls itself 'tgood', expected 'tother'");
    em_config_free(cfg);

    /* a stale library= in a section not in use does not matter */
    cfg = cfg_for("tgood", NULL);
    assert_int_equal(em_config_set(cfg, "cuda", "library", "/nonexistent/ember-backend-cuda.so"), EM_OK);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_OK, "");
    em_context_free(ctx);
    em_config_free(cfg);
    free(dir);
    free(good);
}

/* ------------------------------------------------------------------ search path */

static void test_backend_path_env(void **state)
{
    (void)state;
    em_config *cfg = em_config_create();
    assert_int_equal(em_config_set(cfg, "device", "backend", "tgood"), EM_OK);
    em_context *ctx = NULL;
    /* relative entries are ignored, never resolved against the current directory */
    char env[PATH_MAX + 64];
    snprintf(env, sizeof env, "relative/plugins::%s", plugin_dir());
    setenv("EMBER_BACKEND_PATH", env, 1);
    int saved;
    char *cap = th_capture_stderr_begin(&saved);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_OK, "");
    em_context_free(ctx);
    ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_OK, "");
    em_context_free(ctx);
    /* a warning, once per process, however many contexts */
    char *err = th_capture_stderr_end(saved, cap);
    const char *w = strstr(err, "EMBER_BACKEND_PATH: ignoring 1 relative directory 'relative/plugins'");
    if (!w || strstr(w + 1, "EMBER_BACKEND_PATH: ignoring"))
        fail_msg("expected one warning about the relative entry, got:\n%s", err);
    free(err);
    em_registry *reg = NULL;
    assert_int_equal(em_registry_scan(cfg, &reg), EM_OK);
    assert_true(em_registry_dir_count(reg) >= 1);
    const em_search_dir *d0 = em_registry_dir(reg, 0);
    assert_string_equal(d0->path, plugin_dir());
    assert_int_equal(d0->origin, EM_SEARCH_ENV);
    assert_true(d0->exists);
    for (int i = 0; i < em_registry_dir_count(reg); i++)
        assert_null(strstr(em_registry_dir(reg, i)->path, "relative"));
    em_registry_free(reg);
    unsetenv("EMBER_BACKEND_PATH");
    em_config_free(cfg);
}

/* Plugin files that are there but cannot be used: the error names the real reason rather
 * than "not found", and the registry (ember-info) lists them with it. */
static em_status try_dir(const char *backend, const char *dir)
{
    em_config *cfg = cfg_for(backend, dir);
    em_context *ctx = NULL;
    em_status st = em_context_create_with(&ctx, cfg);
    em_context_free(ctx);
    em_config_free(cfg);
    return st;
}

static const em_plugin_info *scan_one(const char *dir, const char *name, em_registry **reg)
{
    em_config *cfg = cfg_for("cpu", dir);
    assert_int_equal(em_registry_scan(cfg, reg), EM_OK);
    em_config_free(cfg);
    return find_info(*reg, name, 0);
}

static void test_unusable_plugin_files(void **state)
{
    (void)state;
    char *dir = th_mkdir("unusable");
    char *loop = th_join(dir, "ember-backend-tloop.so");
    char *loop2 = th_join(dir, "loop2");
    assert_int_equal(symlink(loop2, loop), 0);
    assert_int_equal(symlink(loop, loop2), 0);
    char *adir = th_mkdir("unusable/ember-backend-tdir.so");
    char *fifo = th_join(dir, "ember-backend-tfifo.so");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    TH_EXPECT(try_dir("tloop", dir), EM_ERR_PLUGIN, "backend 'tloop' cannot be loaded", loop,
              "Too many levels of symbolic links");
    TH_EXPECT(try_dir("tdir", dir), EM_ERR_PLUGIN, "backend 'tdir' cannot be loaded", adir,
              "is a directory");
    TH_EXPECT(try_dir("tfifo", dir), EM_ERR_PLUGIN, "backend 'tfifo' cannot be loaded", fifo,
              "not a regular file (a FIFO)");
    /* library= naming a symlink loop */
    em_config *cfg = em_config_create();
    assert_int_equal(em_config_set(cfg, "device", "backend", "tloop"), EM_OK);
    assert_int_equal(em_config_set(cfg, "tloop", "library", loop), EM_OK);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG, "[tloop] library: ", loop,
              "Too many levels of symbolic links");
    em_config_free(cfg);
    /* listed by the registry (ember-info) with the reason, never opened */
    em_registry *reg = NULL;
    const em_plugin_info *pi = scan_one(dir, "tloop", &reg);
    assert_non_null(pi);
    assert_int_equal(pi->status, EM_ERR_PLUGIN);
    TH_EXPECT_MSG(EM_OK, EM_OK, pi->message, "Too many levels of symbolic links");
    pi = find_info(reg, "tdir", 0);
    assert_non_null(pi);
    TH_EXPECT_MSG(EM_OK, EM_OK, pi->message, "is a directory");
    pi = find_info(reg, "tfifo", 0);
    assert_non_null(pi);
    TH_EXPECT_MSG(EM_OK, EM_OK, pi->message, "a FIFO");
    em_registry_free(reg);

    if (geteuid() == 0) {
        /* root reads and searches everything: the permission cases cannot fail */
        print_message("unusable plugin files: running as root, the permission-denied cases "
                      "are skipped\n");
    } else {
        char *good = plugin_file("tgood");
        char *unreadable = th_copy(good, "unusable/ember-backend-tgood.so", SIZE_MAX);
        assert_int_equal(chmod(unreadable, 0200), 0);
        TH_EXPECT(try_dir("tgood", dir), EM_ERR_PLUGIN, unreadable, "Permission denied");
        char *locked = th_mkdir("locked");
        char *inner = th_mkdir("locked/inner");
        char *copy = th_copy(good, "locked/inner/ember-backend-tgood.so", SIZE_MAX);
        assert_int_equal(chmod(locked, 0), 0);
        TH_EXPECT(try_dir("tgood", inner), EM_ERR_PLUGIN, inner, "Permission denied");
        assert_int_equal(chmod(locked, 0700), 0);
        chmod(unreadable, 0600);
        free(copy);
        free(inner);
        free(locked);
        free(unreadable);
        free(good);
    }
    free(fifo);
    free(adir);
    free(loop2);
    free(loop);
    free(dir);
}

/* Like git's safe.directory: a plugin (or its directory) writable by other users is
 * refused, with the override named; EMBER_UNSAFE_OK=1 accepts it. */
static void test_unsafe_plugin(void **state)
{
    (void)state;
    char *src = plugin_file("tgood");
    char *dir = th_mkdir("unsafe");
    char *copy = th_copy(src, "unsafe/ember-backend-tgood.so", SIZE_MAX);
    /* what the umask made is accepted (the build tree's own plugins load the same way) */
    TH_EXPECT(try_dir("tgood", dir), EM_OK, "");
    assert_int_equal(chmod(copy, 0757), 0);
    TH_EXPECT(try_dir("tgood", dir), EM_ERR_PLUGIN, copy, "writable by all users",
              "EMBER_UNSAFE_OK=1");
    em_registry *reg = NULL;
    const em_plugin_info *pi = scan_one(dir, "tgood", &reg);
    assert_non_null(pi);
    assert_int_equal(pi->stage, EM_STAGE_OPEN);
    TH_EXPECT_MSG(EM_OK, EM_OK, pi->message, "writable by all users");
    em_registry_free(reg);
    setenv("EMBER_UNSAFE_OK", "1", 1);
    TH_EXPECT(try_dir("tgood", dir), EM_OK, "");
    unsetenv("EMBER_UNSAFE_OK");
    /* the directory writable by others (not sticky): the same */
    assert_int_equal(chmod(copy, 0755), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    TH_EXPECT(try_dir("tgood", dir), EM_ERR_PLUGIN, dir, "writable by all users");
    /* sticky, as /tmp: others cannot replace our file */
    assert_int_equal(chmod(dir, 01777), 0);
    TH_EXPECT(try_dir("tgood", dir), EM_OK, "");
    assert_int_equal(chmod(dir, 0700), 0);
    /* owned by another user (only root can make one) */
    if (geteuid() == 0) {
        assert_int_equal(chown(copy, 12345, 0), 0);
        TH_EXPECT(try_dir("tgood", dir), EM_ERR_PLUGIN, copy, "owned by user 12345");
        assert_int_equal(chown(copy, 0, 0), 0);
    }
    free(copy);
    free(dir);
    free(src);
}

/* Bad EMBER_BACKEND_PATH entries: one summarised warning, not one line each; relative
 * entries: warned about once per process. */
static void test_backend_path_summarised(void **state)
{
    (void)state;
    size_t cap = 7000 * 24 + 64;
    char *env = malloc(cap);
    size_t used = 0;
    for (int i = 0; i < 6500; i++)
        used += (size_t)snprintf(env + used, cap - used, "%s/nonexistent/d%d",
                                 i ? ":" : "", i);
    used += (size_t)snprintf(env + used, cap - used, ":rel/a:rel/b:rel/c:rel/d");
    setenv("EMBER_BACKEND_PATH", env, 1);
    free(env);
    em_config *cfg = cfg_for("tgood", NULL);
    int saved;
    char *path = th_capture_stderr_begin(&saved);
    for (int k = 0; k < 2; k++) {
        em_context *ctx = NULL;
        em_status st = em_context_create_with(&ctx, cfg);
        em_context_free(ctx);
        (void)st;
    }
    char *err = th_capture_stderr_end(saved, path);
    int lines = 0, too_many = 0, relative = 0;
    for (char *p = err; *p; p++)
        lines += *p == '\n';
    for (char *p = err; (p = strstr(p, "too many plugin directories")); p++)
        too_many++;
    for (char *p = err; (p = strstr(p, "relative director")); p++)
        relative++;
    /* the relative entries were warned about in test_backend_path_env already: once per
     * process */
    if (lines > 20 || relative != 0 || too_many != 1 ||
        !strstr(err, "ignoring 6480: '/nonexistent/d24', '/nonexistent/d25', "
                     "'/nonexistent/d26' and 6477 more"))
        fail_msg("stderr (%d lines, %d relative warnings, %d summaries):\n%.2000s", lines,
                 relative, too_many, err);
    free(err);
    unsetenv("EMBER_BACKEND_PATH");
    em_config_free(cfg);
}

static void test_ember_device_env(void **state)
{
    (void)state;
    em_config *cfg = cfg_for("tnodev", NULL);
    em_context *ctx = NULL;
    setenv("EMBER_DEVICE", "tgood", 1);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_OK, "");
    assert_string_equal(em_context_backend(ctx), "tgood");
    em_context_free(ctx);
    setenv("EMBER_DEVICE", "tgood:4", 1);
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_NO_DEVICE, "EMBER_DEVICE=tgood:4",
              "out of range");
    unsetenv("EMBER_DEVICE");
    em_config_free(cfg);
}

static void test_registry_scan(void **state)
{
    (void)state;
    /* a corpus dir next to the test plugins: junk that must be skipped or reported */
    char *junk = th_mkdir("corpus");
    free(th_write("corpus/ember-backend-notelf.so", "not an ELF file\n"));
    free(th_write("corpus/libsomething.so", "never opened\n"));
    free(th_write("corpus/ember-backend-Upper.so", "never opened: not a backend name\n"));
    free(th_write("corpus/ember-backend-x.so.1", "never opened\n"));
    char *good = plugin_file("tgood");
    free(th_copy(good, "corpus/ember-backend-tgood.so", (size_t)-1));   /* shadowed */
    char path[PATH_MAX * 3];
    snprintf(path, sizeof path, "%s:%s:/nonexistent/ember-plugins", plugin_dir(), junk);
    em_config *cfg = cfg_for("tgood", path);
    assert_int_equal(em_config_set(cfg, "device", "fallback", "tmissing"), EM_OK);
    em_registry *reg = NULL;
    TH_EXPECT(em_registry_scan(cfg, &reg), EM_OK, "");

    assert_string_equal(em_registry_dir(reg, 0)->path, plugin_dir());
    assert_int_equal(em_registry_dir(reg, 0)->origin, EM_SEARCH_CONFIG_PATH);
    assert_true(em_registry_dir(reg, 0)->exists);
    assert_string_equal(em_registry_dir(reg, 2)->path, "/nonexistent/ember-plugins");
    assert_false(em_registry_dir(reg, 2)->exists);
    assert_null(em_registry_dir(reg, em_registry_dir_count(reg)));

    const em_plugin_info *pi = find_info(reg, "tgood", 0);
    assert_non_null(pi);
    assert_int_equal(pi->stage, EM_STAGE_READY);
    assert_int_equal(pi->status, EM_OK);
    assert_string_equal(pi->message, "");
    assert_string_equal(pi->path, good);
    assert_null(pi->shadowed_by);
    assert_int_equal(pi->abi_major, EM_ABI_MAJOR);
    assert_string_equal(pi->version, "1.2.3-test");
    assert_int_equal(pi->device_count, 1);
    assert_string_equal(pi->devices[0].name, "tplugin host memory device");
    assert_true(pi->devices[0].fp64);
    assert_true(kernel_present(pi, "add"));
    assert_true(kernel_present(pi, "fill"));
    assert_false(kernel_present(pi, "gemm"));
    assert_false(kernel_present(pi, "relu_backward"));
    /* optional: the fused backward helpers, the fused optimizer steps (adam, sgd), the whole
     * convolutions (conv2d, conv2d_grad_input, conv2d_grad_weight) and max_pool2d_grad */
    for (int k = 0; k < pi->kernel_count; k++)
        assert_int_equal(pi->kernel_optional[k], strstr(pi->kernel_names[k], "_backward") != NULL ||
                                                     !strcmp(pi->kernel_names[k], "adam") ||
                                                     !strcmp(pi->kernel_names[k], "sgd") ||
                                                     !strncmp(pi->kernel_names[k], "conv2d", 6) ||
                                                     !strcmp(pi->kernel_names[k], "max_pool2d_grad"));

    const em_plugin_info *dup = find_info(reg, "tgood", 1);
    assert_non_null(dup);
    assert_string_equal(dup->shadowed_by, good);
    assert_non_null(strstr(dup->path, "corpus/ember-backend-tgood.so"));

    struct {
        const char *name;
        em_load_stage stage;
        em_status status;
        const char *text;
    } want[] = {
        {"tbadabi", EM_STAGE_ABI, EM_ERR_PLUGIN, "major versions must match"},
        {"tnosym", EM_STAGE_SYMBOL, EM_ERR_PLUGIN, "no symbol 'ember_backend_entry'"},
        {"tinitfail", EM_STAGE_INIT, EM_ERR_BACKEND, "simulated driver failure"},
        {"tmismatch", EM_STAGE_ABI, EM_ERR_PLUGIN, "calls itself 'somethingelse'"},
        {"tnodev", EM_STAGE_DEVICES, EM_ERR_NO_DEVICE, "no test hardware"},
        {"notelf", EM_STAGE_OPEN, EM_ERR_PLUGIN, "dlopen failed"},
        {"tmissing", EM_STAGE_FIND, EM_ERR_PLUGIN, "not found"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        pi = find_info(reg, want[i].name, 0);
        if (!pi)
            fail_msg("no registry entry for %s", want[i].name);
        if (pi->stage != want[i].stage)
            fail_msg("%s: stage %s, expected %s (%s)", want[i].name, em_load_stage_name(pi->stage),
                     em_load_stage_name(want[i].stage), pi->message);
        TH_EXPECT_MSG(pi->status, want[i].status, pi->message, want[i].text);
    }
    assert_null(find_info(reg, "Upper", 0));
    assert_null(find_info(reg, "something", 0));
    assert_string_equal(em_load_stage_name(EM_STAGE_SYMBOL), "symbol");
    em_registry_free(reg);
    em_config_free(cfg);
    free(good);
    free(junk);
}

static void test_registry_old_minor(void **state)
{
    (void)state;
    em_config *cfg = cfg_for("tgood", NULL);
    assert_int_equal(em_config_set(cfg, "tgood", "mode", "old-minor"), EM_OK);
    em_registry *reg = NULL;
    assert_int_equal(em_registry_scan(cfg, &reg), EM_OK);
    const em_plugin_info *pi = find_info(reg, "tgood", 0);
    assert_non_null(pi);
    assert_int_equal(pi->stage, EM_STAGE_READY);
    assert_true(kernel_present(pi, "fill"));
    assert_true(kernel_present(pi, "copy"));
    /* the table says it ends before add: add reads as absent although the pointer is set */
    assert_false(kernel_present(pi, "add"));
    em_registry_free(reg);
    em_config_free(cfg);
}

static void test_registry_rejects_bad_config(void **state)
{
    (void)state;
    em_config *cfg = cfg_for("tgood", NULL);
    assert_int_equal(em_config_set(cfg, "device", "log", "loud"), EM_OK);
    em_registry *reg = (em_registry *)1;
    TH_EXPECT(em_registry_scan(cfg, &reg), EM_ERR_CONFIG, "[device] log");
    assert_null(reg);
    em_config_free(cfg);
}

/* ------------------------------------------------------------------ out of memory */

static void test_alloc_failures(void **state)
{
    (void)state;
    em_config *cfg = cfg_for("tnodev", NULL);
    assert_int_equal(em_config_set(cfg, "device", "fallback", "tgood"), EM_OK);
    assert_int_equal(em_config_set(cfg, "tgood", "mode", "fast"), EM_OK);
    int fd;
    char *cap = th_capture_stderr_begin(&fd);   /* the fallback warning, many times */
    bool ok_ctx = false, ok_reg = false;
    for (long n = 1; n < 2000 && !(ok_ctx && ok_reg); n++) {
        if (!ok_ctx) {
            em_context *ctx = NULL;
            em__test_fail_alloc_after(n);
            em_status st = em_context_create_with(&ctx, cfg);
            em__test_fail_alloc_after(0);
            if (st == EM_OK) {
                ok_ctx = true;
                em_context_free(ctx);
            } else {
                assert_null(ctx);
            }
        }
        if (!ok_reg) {
            em_registry *reg = NULL;
            em__test_fail_alloc_after(n);
            em_status st = em_registry_scan(cfg, &reg);
            em__test_fail_alloc_after(0);
            if (st == EM_OK) {
                ok_reg = true;
                em_registry_free(reg);
            } else {
                assert_int_equal(st, EM_ERR_OOM);
                assert_null(reg);
            }
        }
    }
    free(th_capture_stderr_end(fd, cap));
    assert_true(ok_ctx);
    assert_true(ok_reg);
    em_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_env_save, th_env_restore)
        T(test_good_plugin_loads),
        T(test_good_plugin_config_key),
        T(test_unknown_backend_key),
        T(test_missing_plugin),
        T(test_not_elf),
        T(test_truncated),
        T(test_no_symbol),
        T(test_bad_abi),
        T(test_init_failure),
        T(test_name_mismatch),
        T(test_no_device),
        T(test_index_out_of_range),
        T(test_abi_tables),
        T(test_fallback_taken),
        T(test_fallback_fails_too),
        T(test_no_fallback_on_config_error),
        T(test_fallback_to_cpu),
        T(test_library_key),
        T(test_backend_path_env),
        T(test_unusable_plugin_files),
        T(test_unsafe_plugin),
        T(test_backend_path_summarised),
        T(test_ember_device_env),
        T(test_registry_scan),
        T(test_registry_old_minor),
        T(test_registry_rejects_bad_config),
        T(test_alloc_failures),
#undef T
    };
    return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
