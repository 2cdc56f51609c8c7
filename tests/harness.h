/* tests/harness.h — small helpers shared by the cmocka suites: a private temp directory
 * (removed at exit; the source tree may be read-only under distcheck), file writing,
 * environment access, and status + message assertions that print the message on failure.
 * Header-only; every helper is static inline so a suite may use any subset. */
#ifndef EMBER_TESTS_HARNESS_H
#define EMBER_TESTS_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ember/ember.h>
#include <ember/info.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char th_tmp_root[PATH_MAX];

static inline int th_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline void th_cleanup(void)
{
    if (th_tmp_root[0])
        nftw(th_tmp_root, th_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    th_tmp_root[0] = 0;
}

/* The suite's private temp directory, created on first use. */
static inline const char *th_tmpdir(void)
{
    if (!th_tmp_root[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(th_tmp_root, sizeof th_tmp_root, "%s/ember-test-XXXXXX",
                 base && base[0] == '/' ? base : "/tmp");
        if (!mkdtemp(th_tmp_root)) {
            fprintf(stderr, "mkdtemp(%s): %s\n", th_tmp_root, strerror(errno));
            abort();
        }
        atexit(th_cleanup);
    }
    return th_tmp_root;
}

/* "<a>/<b>", malloc'ed (the tests free it). */
static inline char *th_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* mkdir -p of a path inside the temp dir; returns the full path (malloc'ed). */
static inline char *th_mkdir(const char *rel)
{
    char *full = th_join(th_tmpdir(), rel);
    for (char *s = full + strlen(th_tmpdir()) + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            mkdir(full, 0700);
            *s = '/';
        }
    }
    mkdir(full, 0700);
    return full;
}

/* Write `len` bytes (len (size_t)-1: strlen) to <tmp>/<rel>, creating directories. */
static inline char *th_write_n(const char *rel, const char *content, size_t len)
{
    char *full = th_join(th_tmpdir(), rel);
    char *slash = strrchr(full, '/');
    *slash = 0;
    free(th_mkdir(full + strlen(th_tmpdir()) + 1));
    *slash = '/';
    FILE *f = fopen(full, "wb");
    assert_non_null(f);
    if (len == (size_t)-1)
        len = strlen(content);
    assert_int_equal(fwrite(content, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return full;
}

static inline char *th_write(const char *rel, const char *content)
{
    return th_write_n(rel, content, (size_t)-1);
}

/* Copy a file (at most `max` bytes: a truncated copy) to <tmp>/<rel>. */
static inline char *th_copy(const char *src, const char *rel, size_t max)
{
    FILE *f = fopen(src, "rb");
    if (!f)
        fail_msg("cannot open %s: %s", src, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    char *dst = th_write_n(rel, buf, len < max ? len : max);
    free(buf);
    return dst;
}

/* A variable the test environment (Makefile.am) must set. */
static inline const char *th_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set: run the tests with `make check`", name);
    return v;
}

static inline bool th_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Assert a status, then that `msg` contains every substring (NULL-terminated list).
 * Prints the whole message on failure: it is what the user would have seen. */
static inline void th_expect_(const char *file, int line, em_status got, em_status want,
                              const char *msg, ...)
{
    if (got != want) {
        print_error("expected %s, got %s; message: %s\n", em_status_name(want),
                    em_status_name(got), msg ? msg : "(null)");
        _fail(file, line);
    }
    va_list ap;
    va_start(ap, msg);
    const char *sub;
    while ((sub = va_arg(ap, const char *))) {
        if (!msg || !strstr(msg, sub)) {
            print_error("message lacks \"%s\":\n  %s\n", sub, msg ? msg : "(null)");
            va_end(ap);
            _fail(file, line);
        }
    }
    va_end(ap);
}
/* TH_EXPECT(status, EM_ERR_X, "substring", ...): checks em_last_error(). */
#define TH_EXPECT(got, want, ...) \
    th_expect_(__FILE__, __LINE__, (got), (want), em_last_error(), __VA_ARGS__, (const char *)NULL)
/* The same for an explicit message. */
#define TH_EXPECT_MSG(got, want, msg, ...) \
    th_expect_(__FILE__, __LINE__, (got), (want), (msg), __VA_ARGS__, (const char *)NULL)

/* Environment variables a test changes, restored by th_env_restore (setup/teardown). */
#define TH_ENV_VARS "EMBER_CONFIG", "EMBER_DEVICE", "EMBER_BACKEND_PATH", "XDG_CONFIG_HOME", "HOME"
static char *th_saved_env[5];
static char th_saved_cwd[PATH_MAX];

static inline int th_env_save(void **state)
{
    (void)state;
    static const char *const vars[] = {TH_ENV_VARS};
    for (int i = 0; i < 5; i++) {
        const char *v = getenv(vars[i]);
        free(th_saved_env[i]);
        th_saved_env[i] = v ? strdup(v) : NULL;
    }
    if (!getcwd(th_saved_cwd, sizeof th_saved_cwd))
        th_saved_cwd[0] = 0;
    /* every test starts with no EMBER_DEVICE / EMBER_BACKEND_PATH influence */
    unsetenv("EMBER_DEVICE");
    unsetenv("EMBER_BACKEND_PATH");
    return 0;
}

static inline int th_env_restore(void **state)
{
    (void)state;
    static const char *const vars[] = {TH_ENV_VARS};
    for (int i = 0; i < 5; i++) {
        if (th_saved_env[i])
            setenv(vars[i], th_saved_env[i], 1);
        else
            unsetenv(vars[i]);
        free(th_saved_env[i]);
        th_saved_env[i] = NULL;
    }
    if (th_saved_cwd[0] && chdir(th_saved_cwd) != 0)
        return -1;
    return 0;
}

/* Run f with stderr captured into a malloc'ed string (what the user would see). */
static inline char *th_capture_stderr_begin(int *saved_fd)
{
    char *path = th_join(th_tmpdir(), "stderr.txt");
    fflush(stderr);
    *saved_fd = dup(2);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    dup2(fileno(f), 2);
    fclose(f);
    return path;
}

static inline char *th_capture_stderr_end(int saved_fd, char *path)
{
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = 0;
    fclose(f);
    remove(path);
    free(path);
    return buf;
}

#endif
