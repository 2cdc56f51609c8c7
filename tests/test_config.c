/* tests/test_config.c — device.ini: every malformed or meaningless file must be refused
 * with a message naming file, line and key (corpus in tests/data/config/, plus cases that
 * are easier to generate here), where the file is looked for and which source wins,
 * EMBER_DEVICE, and the em_config object itself. Public API only. */
#include "harness.h"

static const char *plugin_dir(void)
{
    return th_env("EMBER_TEST_PLUGIN_DIR");
}

static char *data_file(const char *rel)
{
    char *d = th_join(th_env("EMBER_TEST_DATA_DIR"), "config");
    char *p = th_join(d, rel);
    free(d);
    return p;
}

/* Load `path` the way em_context_create does (it fails before any backend is needed). */
static em_status create_from(const char *path)
{
    em_context *ctx = NULL;
    em_status st = em_context_create(&ctx, path);
    em_context_free(ctx);
    return st;
}

/* ------------------------------------------------------------------ bad files */

static void test_bad_corpus(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        em_status st;
        const char *text[3];
    } cases[] = {
        {"bad-index-word.ini", EM_ERR_CONFIG,
         {"bad-index-word.ini:4: [device] index: expected a non-negative integer, got 'two'"}},
        {"bad-index-negative.ini", EM_ERR_CONFIG,
         {"bad-index-negative.ini:3: [device] index: expected a non-negative integer, got '-1'"}},
        {"bad-index-overflow.ini", EM_ERR_CONFIG,
         {"bad-index-overflow.ini:3: [device] index:", "(too large)"}},
        {"bad-log.ini", EM_ERR_CONFIG,
         {"bad-log.ini:2: [device] log:", "error, warn, info, debug", "'verbose'"}},
        {"bad-op-fallback.ini", EM_ERR_CONFIG,
         {"bad-op-fallback.ini:2: [device] op_fallback: expected cpu or error, got 'maybe'"}},
        {"bad-backend-name.ini", EM_ERR_CONFIG,
         {"bad-backend-name.ini:2: [device] backend: invalid backend name 'CUDA'"}},
        {"bad-fallback-name.ini", EM_ERR_CONFIG,
         {"bad-fallback-name.ini:3: [device] fallback: invalid backend name"}},
        {"long-backend-name.ini", EM_ERR_CONFIG,
         {"long-backend-name.ini:2: [device] backend: invalid backend name", "at most 63"}},
        {"empty-backend.ini", EM_ERR_CONFIG,
         {"empty-backend.ini:2: [device] backend: empty value"}},
        {"unknown-device-key.ini", EM_ERR_CONFIG,
         {"unknown-device-key.ini:3: [device] backned: unknown key",
          "backend, index, fallback, log, op_fallback", "did you mean 'backend'?"}},
        {"unknown-backends-key.ini", EM_ERR_CONFIG,
         {"unknown-backends-key.ini:5: [backends] paths: unknown key", "did you mean 'path'?"}},
        {"unknown-section.ini", EM_ERR_CONFIG,
         {"unknown-section.ini:5: unknown section [cdua]",
          "no backend plugin named 'cdua' was found in:", "did you mean [cuda]?"}},
        {"duplicate-key.ini", EM_ERR_CONFIG,
         {"duplicate-key.ini:4: [device] backend: duplicate key (already set on line 2)"}},
        {"key-outside-section.ini", EM_ERR_CONFIG,
         {"key-outside-section.ini:1: key 'backend' is outside any section"}},
        {"unterminated-section.ini", EM_ERR_CONFIG,
         {"unterminated-section.ini:1: unterminated section header '[device'"}},
        {"no-equals.ini", EM_ERR_CONFIG,
         {"no-equals.ini:2: expected 'key = value' or '[section]', got 'backend cpu'"}},
        {"continuation.ini", EM_ERR_CONFIG,
         {"continuation.ini:3: continuation lines are not supported", "'backend'"}},
        {"empty-section-name.ini", EM_ERR_CONFIG, {"empty-section-name.ini:1: empty section name"}},
        {"text-after-section.ini", EM_ERR_CONFIG,
         {"text-after-section.ini:1: unexpected text 'backend = cpu' after the section header"}},
        {"missing-key-name.ini", EM_ERR_CONFIG, {"missing-key-name.ini:2: missing key name"}},
        {"long-line.ini", EM_ERR_CONFIG,
         {"long-line.ini:3: line 3 is longer than 199 characters"}},
        {"library-relative.ini", EM_ERR_CONFIG,
         {"library-relative.ini:4: [cpu] library: 'lib/ember-backend-cpu.so' is not an absolute path"}},
        {"library-empty.ini", EM_ERR_CONFIG, {"library-empty.ini:4: [cpu] library: empty value"}},
        {"too-many-dirs.ini", EM_ERR_CONFIG,
         {"too-many-dirs.ini:4: [backends] path: more than 16 directories"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = data_file(cases[i].file);
        em_status st = create_from(path);
        const char *msg = em_last_error();
        if (st != cases[i].st)
            fail_msg("%s: expected %s, got %s: %s", cases[i].file, em_status_name(cases[i].st),
                     em_status_name(st), msg);
        for (int k = 0; k < 3 && cases[i].text[k]; k++)
            if (!strstr(msg, cases[i].text[k]))
                fail_msg("%s: message lacks \"%s\":\n  %s", cases[i].file, cases[i].text[k], msg);
        /* the message names the file by the path it was given */
        if (!strstr(msg, path))
            fail_msg("%s: message does not name %s:\n  %s", cases[i].file, path, msg);
        free(path);
    }
}

static void test_binary_and_long_lines(void **state)
{
    (void)state;
    static const char elf[] = "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
    char *p = th_write_n("bin/device.ini", elf, sizeof elf);
    TH_EXPECT(create_from(p), EM_ERR_CONFIG, "device.ini:1: binary data (byte 0x7f at column 1)");
    free(p);
    p = th_write_n("bin/nul.ini", "[device]\nbackend = c\0pu\n", 25);
    TH_EXPECT(create_from(p), EM_ERR_CONFIG, "nul.ini:2: binary data (byte 0x00 at column 12)");
    free(p);

    /* 199 characters is the most a line may have; 200 is refused, not split */
    char line[512];
    em_config *cfg = em_config_create();
    snprintf(line, sizeof line, "[device]\nbackend = cpu\n;%0198d\n", 0);
    assert_int_equal(em_config_load_string(cfg, line, "ok.ini"), EM_OK);
    snprintf(line, sizeof line, "[device]\nbackend = cpu\r\n;%0199d\r\nindex = 1\n", 0);
    TH_EXPECT(em_config_load_string(cfg, line, "long.ini"), EM_ERR_CONFIG,
              "long.ini:3: line 3 is longer than 199 characters");
    /* the failed load left the config as it was */
    assert_string_equal(em_config_get(cfg, "device", "backend"), "cpu");
    assert_null(em_config_get(cfg, "device", "index"));
    em_config_free(cfg);
}

static void test_good_syntax_variants(void **state)
{
    (void)state;
    em_config *cfg = em_config_create();
    /* BOM, CRLF, comments of both kinds, inline comment, ':' separator, blank lines */
    const char *text = "\xEF\xBB\xBF; comment\r\n# another\r\n\r\n[device]\r\n"
                       "  log = info\r\nbackend = cpu ; inline comment\r\nindex: 2\r\n"
                       "[backends]\r\npath = /opt/a;b:/opt/c\r\n";
    TH_EXPECT(em_config_load_string(cfg, text, "variants.ini"), EM_OK, "");
    assert_string_equal(em_config_get(cfg, "device", "backend"), "cpu");
    assert_string_equal(em_config_get(cfg, "device", "index"), "2");
    /* an indented first key of a section is a key, not a continuation */
    assert_string_equal(em_config_get(cfg, "device", "log"), "info");
    /* ';' starts a comment only after whitespace */
    assert_string_equal(em_config_get(cfg, "backends", "path"), "/opt/a;b:/opt/c");
    em_registry *reg = NULL;
    TH_EXPECT(em_registry_scan(cfg, &reg), EM_OK, "");
    assert_string_equal(em_registry_dir(reg, 0)->path, "/opt/a;b");
    assert_string_equal(em_registry_dir(reg, 1)->path, "/opt/c");
    em_registry_free(reg);
    em_config_free(cfg);
}

static void test_installed_default_is_valid(void **state)
{
    (void)state;
    char *p = th_join(th_env("EMBER_TEST_DATA_DIR"), "../../data/device.ini");
    em_config *cfg = em_config_create();
    TH_EXPECT(em_config_load_file(cfg, p), EM_OK, "");
    assert_string_equal(em_config_get(cfg, "device", "backend"), "cpu");
    em_registry *reg = NULL;
    TH_EXPECT(em_registry_scan(cfg, &reg), EM_OK, "");
    em_registry_free(reg);
    em_config_free(cfg);
    free(p);
}

static void test_sections_of_plugins(void **state)
{
    (void)state;
    /* a section named after a plugin that exists in the search path is accepted ... */
    em_config *cfg = em_config_create();
    char text[PATH_MAX + 256];
    snprintf(text, sizeof text, "[device]\nbackend = tgood\n[backends]\npath = %s\n[tgood]\nmode = fast\n",
             plugin_dir());
    TH_EXPECT(em_config_load_string(cfg, text, "sec.ini"), EM_OK, "");
    em_registry *reg = NULL;
    TH_EXPECT(em_registry_scan(cfg, &reg), EM_OK, "");
    em_registry_free(reg);
    em_config_free(cfg);
    /* ... and refused, listing where it was looked for, when it is not there */
    cfg = em_config_create();
    snprintf(text, sizeof text, "[device]\nbackend = tgood\n[backends]\npath = %s\n[tgoood]\nmode = fast\n",
             plugin_dir());
    TH_EXPECT(em_config_load_string(cfg, text, "sec.ini"), EM_OK, "");
    reg = NULL;
    TH_EXPECT(em_registry_scan(cfg, &reg), EM_ERR_CONFIG,
              "sec.ini:6: unknown section [tgoood] (no backend plugin named 'tgoood' was found in: ",
              plugin_dir());
    em_config_free(cfg);
}

/* Keys of backend sections are checked when the file is read, for backends not in use too:
 * file:line, the keys the plugin accepts and a suggestion. */
static void test_backend_section_keys(void **state)
{
    (void)state;
    char *p = th_write("keys/cpu.ini", "[device]\nbackend = cpu\n\n[cpu]\nthread = 2\n");
    TH_EXPECT(create_from(p), EM_ERR_CONFIG, p, ":5: [cpu] thread: unknown key",
              "threads", "did you mean 'threads'?");
    free(p);
    /* [opencl] while the cpu backend is used: only where the opencl plugin is built */
    char *ocl = th_join(th_env("EMBER_TEST_BACKEND_DIR"), "ember-backend-opencl.so");
    if (access(ocl, F_OK) != 0) {
        print_message("# no opencl plugin in this build: [opencl] keys not checked\n");
    } else {
        p = th_write("keys/opencl.ini", "[device]\nbackend = cpu\n\n[opencl]\ndevcie = 0\n");
        TH_EXPECT(create_from(p), EM_ERR_CONFIG, p, ":5: [opencl] devcie: unknown key",
                  "platform, device, type, cache", "did you mean 'device'?");
        free(p);
    }
    free(ocl);
}

/* A backend name that is neither one of ember's own nor an installed plugin is a typo: a
 * configuration error with where it was set, a suggestion and the installed backends, and
 * no fallback. */
static void test_unknown_backend_name(void **state)
{
    (void)state;
    char text[PATH_MAX + 256];
    snprintf(text, sizeof text, "[device]\nbackend = cpux\nfallback = cpu\n[backends]\npath = %s\n",
             plugin_dir());
    char *p = th_write("names/cpux.ini", text);
    int fd;
    char *cap = th_capture_stderr_begin(&fd);
    em_status st = create_from(p);
    char *err = th_capture_stderr_end(fd, cap);
    TH_EXPECT(st, EM_ERR_CONFIG, p, ":2: [device] backend: unknown backend 'cpux'; did you mean 'cpu'?",
              "installed backends: ", "tgood", "ember's own: cpu, opencl, cuda",
              "no ember-backend-cpux.so");
    assert_string_equal(err, "");   /* no fallback warning: nothing was tried */
    free(err);
    free(p);
    /* a typo in fallback is reported as well, even while the backend works */
    snprintf(text, sizeof text, "[device]\nbackend = tgood\nfallback = tgod\n[backends]\npath = %s\n",
             plugin_dir());
    p = th_write("names/fallback.ini", text);
    TH_EXPECT(create_from(p), EM_ERR_CONFIG, p, ":3: [device] fallback: unknown backend 'tgod'; "
              "did you mean 'tgood'?");
    free(p);
    /* EMBER_DEVICE names its source */
    p = th_write("names/cpu.ini", "[device]\nbackend = cpu\n");
    setenv("EMBER_DEVICE", "cdua:0", 1);
    TH_EXPECT(create_from(p), EM_ERR_CONFIG, "EMBER_DEVICE=cdua:0: unknown backend 'cdua'; "
              "did you mean 'cuda'?");
    unsetenv("EMBER_DEVICE");
    free(p);
    /* an installed plugin that cannot run still falls back, as documented */
    snprintf(text, sizeof text, "[device]\nbackend = tnodev\nfallback = tgood\nop_fallback = error\n"
             "[backends]\npath = %s\n", plugin_dir());
    p = th_write("names/nodev.ini", text);
    cap = th_capture_stderr_begin(&fd);
    em_context *ctx = NULL;
    st = em_context_create(&ctx, p);
    err = th_capture_stderr_end(fd, cap);
    TH_EXPECT(st, EM_OK, "");
    assert_string_equal(em_context_backend(ctx), "tgood");
    assert_non_null(strstr(err, "using fallback 'tgood'"));
    em_context_free(ctx);
    free(err);
    free(p);
}

/* ------------------------------------------------------------------ the object */

static void test_set_get(void **state)
{
    (void)state;
    em_config *cfg = em_config_create();
    assert_non_null(cfg);
    assert_null(em_config_get(cfg, "device", "backend"));
    assert_int_equal(em_config_set(cfg, "device", "backend", "cuda"), EM_OK);
    assert_string_equal(em_config_get(cfg, "device", "backend"), "cuda");
    assert_int_equal(em_config_set(cfg, "device", "backend", "opencl"), EM_OK);
    assert_string_equal(em_config_get(cfg, "device", "backend"), "opencl");
    assert_int_equal(em_config_set(cfg, "device", "backend", NULL), EM_OK);   /* unset */
    assert_null(em_config_get(cfg, "device", "backend"));
    TH_EXPECT(em_config_set(cfg, "", "k", "v"), EM_ERR_INVALID, "invalid section name");
    TH_EXPECT(em_config_set(cfg, "dev]ice", "k", "v"), EM_ERR_INVALID, "invalid section name");
    TH_EXPECT(em_config_set(cfg, "device", "a=b", "v"), EM_ERR_INVALID, "invalid key name");
    TH_EXPECT(em_config_set(cfg, "device", "index", "1\n2"), EM_ERR_INVALID, "control characters");
    TH_EXPECT(em_config_set(NULL, "device", "index", "1"), EM_ERR_INVALID, "");
    assert_null(em_config_get(NULL, "device", "index"));

    /* keys from text meet keys set in code: a duplicate names both places */
    assert_int_equal(em_config_set(cfg, "device", "index", "1"), EM_OK);
    TH_EXPECT(em_config_load_string(cfg, "[device]\nlog = info\nindex = 2\n", "more.ini"),
              EM_ERR_CONFIG, "more.ini:3: [device] index: duplicate key (already set at "
                             "(in-code configuration))");
    assert_null(em_config_get(cfg, "device", "log"));   /* nothing of the failed load stays */
    em_config_free(cfg);
    em_config_free(NULL);
}

static void test_in_code_errors(void **state)
{
    (void)state;
    em_config *cfg = em_config_create();
    assert_int_equal(em_config_set(cfg, "device", "index", "two"), EM_OK);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG,
              "(in-code configuration): [device] index: expected a non-negative integer, got 'two'");
    assert_null(ctx);
    em_config_free(cfg);
}

static void test_in_code_config_runs(void **state)
{
    (void)state;
    em_config *cfg = em_config_create();
    assert_int_equal(em_config_set(cfg, "device", "backend", "tgood"), EM_OK);
    assert_int_equal(em_config_set(cfg, "device", "index", "0"), EM_OK);
    assert_int_equal(em_config_set(cfg, "backends", "path", plugin_dir()), EM_OK);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create_with(&ctx, cfg), EM_OK, "");
    assert_string_equal(em_context_backend(ctx), "tgood");
    assert_string_equal(em_context_config_source(ctx), "(in-code configuration)");
    em_context_free(ctx);
    em_config_free(cfg);
}

/* ------------------------------------------------------------------ where it is found */

/* A device.ini that selects the good test plugin, at <tmp>/<rel>. */
static char *write_good_ini(const char *rel, const char *extra)
{
    char text[PATH_MAX + 256];
    snprintf(text, sizeof text, "[device]\nbackend = tgood\n%s[backends]\npath = %s\n",
             extra ? extra : "", plugin_dir());
    return th_write(rel, text);
}

static void test_locate_precedence(void **state)
{
    (void)state;
    char *env_ini = write_good_ini("prec/env.ini", NULL);
    char *cwd_dir = th_mkdir("prec/cwd");
    char *cwd_ini = write_good_ini("prec/cwd/device.ini", NULL);
    char *xdg = th_mkdir("prec/xdg");
    char *xdg_ini = write_good_ini("prec/xdg/ember/device.ini", NULL);
    char *home = th_mkdir("prec/home");
    char *home_ini = write_good_ini("prec/home/.config/ember/device.ini", NULL);
    char *empty = th_mkdir("prec/empty");
    char real[PATH_MAX];

    setenv("EMBER_CONFIG", env_ini, 1);
    setenv("XDG_CONFIG_HOME", xdg, 1);
    setenv("HOME", home, 1);
    assert_int_equal(chdir(cwd_dir), 0);
    char *report = NULL;
    char *got = em_config_locate(&report);
    assert_non_null(got);
    assert_string_equal(got, env_ini);
    assert_non_null(report);
    TH_EXPECT_MSG(EM_OK, EM_OK, report, "$EMBER_CONFIG", env_ini, "<- used", "found  (not used)");
    free(got);
    free(report);

    unsetenv("EMBER_CONFIG");
    got = em_config_locate(NULL);
    assert_non_null(got);
    assert_non_null(realpath(cwd_ini, real));
    assert_string_equal(got, real);
    free(got);

    assert_int_equal(chdir(empty), 0);
    got = em_config_locate(NULL);
    assert_string_equal(got, xdg_ini);
    free(got);

    unsetenv("XDG_CONFIG_HOME");
    got = em_config_locate(NULL);
    assert_string_equal(got, home_ini);
    free(got);

    /* a relative XDG_CONFIG_HOME is ignored (per the XDG spec) */
    setenv("XDG_CONFIG_HOME", "relative/xdg", 1);
    got = em_config_locate(NULL);
    assert_string_equal(got, home_ini);
    free(got);

    /* nothing: the built-in defaults (unless a system-wide file is installed) */
    setenv("HOME", empty, 1);
    report = NULL;
    got = em_config_locate(&report);
    if (got)
        assert_null(strstr(got, th_tmpdir()));
    else
        TH_EXPECT_MSG(EM_OK, EM_OK, report, "built-in defaults", "<- used");
    free(got);
    free(report);

    /* the located file is what a context uses */
    setenv("EMBER_CONFIG", env_ini, 1);
    em_context *ctx = NULL;
    TH_EXPECT(em_context_create(&ctx, NULL), EM_OK, "");
    assert_string_equal(em_context_config_source(ctx), env_ini);
    em_context_free(ctx);

    free(env_ini);
    free(cwd_dir);
    free(cwd_ini);
    free(xdg);
    free(xdg_ini);
    free(home);
    free(home_ini);
    free(empty);
}

static void test_explicit_missing_is_error(void **state)
{
    (void)state;
    setenv("EMBER_CONFIG", "/nonexistent/ember/device.ini", 1);
    TH_EXPECT(create_from(NULL), EM_ERR_IO, "/nonexistent/ember/device.ini", "EMBER_CONFIG",
              "No such file");
    char *report = NULL;
    char *got = em_config_locate(&report);
    assert_string_equal(got, "/nonexistent/ember/device.ini");
    TH_EXPECT_MSG(EM_OK, EM_OK, report, "MISSING");
    free(got);
    free(report);
    /* a path given in code wins over EMBER_CONFIG, and must exist too */
    TH_EXPECT(create_from("/nonexistent/given.ini"), EM_ERR_IO, "/nonexistent/given.ini",
              "given in code");
    char *good = write_good_ini("explicit/device.ini", NULL);
    TH_EXPECT(create_from(good), EM_OK, "");
    char *dir = th_mkdir("explicit/adir");
    TH_EXPECT(create_from(dir), EM_ERR_IO, "it is a directory");
    free(dir);
    /* an unreadable file (opens, but reading fails; works even when run as root) */
    TH_EXPECT(create_from("/proc/self/mem"), EM_ERR_IO, "/proc/self/mem", "read error");
    /* EMBER_CONFIG=/dev/null: an empty file, i.e. the built-in defaults */
    em_config *cfg = em_config_create();
    TH_EXPECT(em_config_load_file(cfg, "/dev/null"), EM_OK, "");
    em_registry *reg = NULL;
    TH_EXPECT(em_registry_scan(cfg, &reg), EM_OK, "");
    em_registry_free(reg);
    em_config_free(cfg);
    free(good);
}

/* A FIFO with no writer (or a socket, a device) named as device.ini: refused at once, not
 * a process blocked forever in open(). alarm() turns a hang into a failure. */
static void test_config_not_regular(void **state)
{
    (void)state;
    char *dir = th_mkdir("fifo");
    char *fifo = th_join(dir, "device.ini");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(20);
    setenv("EMBER_CONFIG", fifo, 1);
    TH_EXPECT(create_from(NULL), EM_ERR_CONFIG, fifo, "EMBER_CONFIG", "is a FIFO",
              "must be a regular file");
    em_config *cfg = em_config_create();
    TH_EXPECT(em_config_load_file(cfg, fifo), EM_ERR_CONFIG, fifo, "is a FIFO");
    /* found by the search in the current directory: the same refusal */
    unsetenv("EMBER_CONFIG");
    assert_int_equal(chdir(dir), 0);
    TH_EXPECT(create_from(NULL), EM_ERR_CONFIG, "device.ini", "is a FIFO");
    /* a character device other than /dev/null */
    TH_EXPECT(em_config_load_file(cfg, "/dev/zero"), EM_ERR_CONFIG, "/dev/zero",
              "is a character device");
    alarm(0);
    em_config_free(cfg);
    free(fifo);
    free(dir);
}

/* Like git's safe.directory: a ./device.ini that other users could have written (its
 * library= would run their code) is refused, naming the override; EMBER_UNSAFE_OK=1
 * accepts it. A file named explicitly (EMBER_CONFIG, in code) is the user's choice. */
static void test_cwd_ini_unsafe(void **state)
{
    (void)state;
    char *ini = write_good_ini("cwdsafe/device.ini", NULL);
    char *dir = th_join(th_tmpdir(), "cwdsafe");
    unsetenv("EMBER_CONFIG");
    setenv("HOME", "/nonexistent", 1);
    unsetenv("XDG_CONFIG_HOME");
    assert_int_equal(chdir(dir), 0);
    /* what the umask made: accepted */
    TH_EXPECT(create_from(NULL), EM_OK, "");
    assert_int_equal(chmod(ini, 0666), 0);
    TH_EXPECT(create_from(NULL), EM_ERR_CONFIG, "refusing ./device.ini", ini,
              "writable by all users", "EMBER_UNSAFE_OK=1");
    setenv("EMBER_UNSAFE_OK", "1", 1);
    TH_EXPECT(create_from(NULL), EM_OK, "");
    unsetenv("EMBER_UNSAFE_OK");
    TH_EXPECT(create_from(ini), EM_OK, "");   /* named: not checked */
    assert_int_equal(chmod(ini, 0644), 0);
    /* the directory writable by all (not sticky) */
    assert_int_equal(chmod(dir, 0777), 0);
    TH_EXPECT(create_from(NULL), EM_ERR_CONFIG, "refusing ./device.ini",
              "the current directory is writable by all users");
    assert_int_equal(chmod(dir, 01777), 0);
    TH_EXPECT(create_from(NULL), EM_OK, "");
    assert_int_equal(chmod(dir, 0700), 0);
    if (geteuid() == 0) {   /* only root can give a file to another user */
        assert_int_equal(chown(ini, 4242, 0), 0);
        TH_EXPECT(create_from(NULL), EM_ERR_CONFIG, "refusing ./device.ini",
                  "owned by user 4242");
        assert_int_equal(chown(ini, 0, 0), 0);
    }
    free(dir);
    free(ini);
}

static void test_ember_device(void **state)
{
    (void)state;
    char *ini = write_good_ini("envdev/device.ini", "index = 0\n");
    static const struct {
        const char *value;
        em_status st;
        const char *text;
    } cases[] = {
        {"tgood", EM_OK, ""},
        {"tgood:0", EM_OK, ""},
        {"", EM_OK, ""},   /* empty: unset */
        {"tgood:x", EM_ERR_CONFIG, "EMBER_DEVICE='tgood:x': the device index 'x'"},
        {"tgood:", EM_ERR_CONFIG, "EMBER_DEVICE='tgood:'"},
        {"tgood:-1", EM_ERR_CONFIG, "EMBER_DEVICE='tgood:-1'"},
        {"tgood:99999999999", EM_ERR_CONFIG, "not a non-negative integer"},
        {":1", EM_ERR_CONFIG, "EMBER_DEVICE=':1': '' is not a backend name"},
        {"TGOOD", EM_ERR_CONFIG, "EMBER_DEVICE='TGOOD': 'TGOOD' is not a backend name"},
        {"tgood:2", EM_ERR_NO_DEVICE, "device index 2 (from EMBER_DEVICE=tgood:2)"},
        {"tnodev", EM_ERR_NO_DEVICE, "no test hardware"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("EMBER_DEVICE", cases[i].value, 1);
        em_status st = create_from(ini);
        if (st != cases[i].st || !strstr(em_last_error(), cases[i].text))
            fail_msg("EMBER_DEVICE=%s: expected %s with \"%s\", got %s: %s", cases[i].value,
                     em_status_name(cases[i].st), cases[i].text, em_status_name(st), em_last_error());
    }
    free(ini);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_env_save, th_env_restore)
        T(test_bad_corpus),
        T(test_binary_and_long_lines),
        T(test_good_syntax_variants),
        T(test_installed_default_is_valid),
        T(test_sections_of_plugins),
        T(test_backend_section_keys),
        T(test_unknown_backend_name),
        T(test_set_get),
        T(test_in_code_errors),
        T(test_in_code_config_runs),
        T(test_locate_precedence),
        T(test_explicit_missing_is_error),
        T(test_config_not_regular),
        T(test_cwd_ini_unsafe),
        T(test_ember_device),
#undef T
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
