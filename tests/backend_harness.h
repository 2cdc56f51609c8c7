/* tests/backend_harness.h — what every per-backend suite shares: opening a context on the
 * backend under test (EM_TEST_BACKEND, from the build), reporting SKIP in TAP when it has
 * no usable device (unless EMBER_TEST_REQUIRE lists it, as CI does for opencl), and small
 * helpers to move data in and out and compare against reference loops in double. */
#ifndef EMBER_TESTS_BACKEND_HARNESS_H
#define EMBER_TESTS_BACKEND_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ember/ember.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef EM_TEST_BACKEND
#define EM_TEST_BACKEND "cpu"
#endif

static em_context *g_ctx;

static inline const char *test_backend_name(void)
{
    const char *b = getenv("EMBER_TEST_BACKEND_OVERRIDE");
    return b && *b ? b : EM_TEST_BACKEND;
}

/* The variable naming the plugins' directory: the build's backends, or (for a test plugin
 * under test) EMBER_TEST_PLUGIN_DIR. */
#ifndef EM_TEST_BACKEND_DIR_ENV
#define EM_TEST_BACKEND_DIR_ENV "EMBER_TEST_BACKEND_DIR"
#endif

/* A config for backend `name` with plugins from the build tree. */
static inline em_config *test_config(const char *name)
{
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", name);
    const char *dir = getenv(EM_TEST_BACKEND_DIR_ENV);
    if (dir && *dir)
        em_config_set(cfg, "backends", "path", dir);
    return cfg;
}

static inline em_context *test_open(const char *name, char *why, size_t n)
{
    em_config *cfg = test_config(name);
    em_context *ctx = NULL;
    if (em_context_create_with(&ctx, cfg) != EM_OK)
        snprintf(why, n, "%s", em_last_error());
    em_config_free(cfg);
    return ctx;
}

/* Returns 0 to run the suite, or the exit code after printing the TAP plan for a skip or a
 * required-but-missing failure. */
static inline int test_backend_setup(void)
{
    char why[1024] = "";
    const char *name = test_backend_name();
    g_ctx = test_open(name, why, sizeof why);
    if (g_ctx)
        return -1;
    for (char *p = why; *p; p++)
        if (*p == '\n')
            *p = ' ';
    const char *req = getenv("EMBER_TEST_REQUIRE");
    if (req && strstr(req, name)) {
        printf("1..1\nnot ok 1 - backend %s is required (EMBER_TEST_REQUIRE) but unusable: %s\n", name, why);
        return 1;
    }
    printf("1..0 # SKIP backend %s not usable here: %s\n", name, why);
    return 0;
}

/* ---- data helpers ---- */

static inline size_t dt_size(em_dtype dt) { return em_dtype_size(dt); }

/* Tensor of dtype dt from doubles. */
static inline em_tensor *from_doubles(em_dtype dt, int nd, const int64_t *shape, const double *v)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    void *buf = malloc((size_t)(n ? n : 1) * dt_size(dt));
    for (int64_t i = 0; i < n; i++) {
        if (dt == EM_F32)
            ((float *)buf)[i] = (float)v[i];
        else if (dt == EM_F64)
            ((double *)buf)[i] = v[i];
        else
            ((uint8_t *)buf)[i] = v[i] != 0;
    }
    em_tensor *t = em_tensor_from_data(g_ctx, dt, nd, shape, buf);
    free(buf);
    return t;
}

/* All values of t as doubles (malloc'd), via em_tensor_to_host. */
static inline double *to_doubles(em_tensor *t)
{
    int64_t n = em_tensor_numel(t);
    em_dtype dt = em_tensor_dtype(t);
    void *buf = malloc((size_t)(n ? n : 1) * dt_size(dt));
    double *out = malloc(sizeof(double) * (size_t)(n ? n : 1));
    assert_int_equal(em_tensor_to_host(t, buf, (size_t)n * dt_size(dt)), EM_OK);
    for (int64_t i = 0; i < n; i++)
        out[i] = dt == EM_F32 ? ((float *)buf)[i] : dt == EM_F64 ? ((double *)buf)[i] : ((uint8_t *)buf)[i];
    free(buf);
    return out;
}

/* Deterministic pseudo-random doubles in [lo, hi). */
static uint64_t g_lcg = 0x9e3779b97f4a7c15ULL;
static inline double rnd(double lo, double hi)
{
    g_lcg = g_lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (double)(g_lcg >> 11) * (1.0 / 9007199254740992.0);
}

static inline double *rnd_array(int64_t n, double lo, double hi)
{
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = rnd(lo, hi);
    return v;
}

static inline double tol_for(em_dtype dt) { return dt == EM_F32 ? 2e-5 : 1e-12; }

/* |got - want| <= tol * max(1, |want|), NaN equal to NaN, inf equal to inf. */
static inline bool close_enough(double got, double want, double tol)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want;
    return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

#define assert_close_arrays(got, want, n, tol)                                                     \
    do {                                                                                           \
        for (int64_t i_ = 0; i_ < (int64_t)(n); i_++) {                                           \
            if (!close_enough((got)[i_], (want)[i_], (tol))) {                                     \
                fail_msg("element %lld: got %.17g, want %.17g (tol %g)", (long long)i_,           \
                         (got)[i_], (want)[i_], (double)(tol));                                    \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define assert_ok_ctx()                                                                            \
    do {                                                                                           \
        if (em_context_status(g_ctx) != EM_OK)                                                     \
            fail_msg("context error: %s", em_context_error(g_ctx));                               \
    } while (0)

/* Every test runs in a scope; errors must not leak across tests. */
static inline int test_setup(void **state)
{
    (void)state;
    em_context_clear_error(g_ctx);
    em_scope_begin(g_ctx);
    return 0;
}

static inline int test_teardown(void **state)
{
    (void)state;
    em_scope_end(g_ctx);
    em_context_clear_error(g_ctx);
    return 0;
}

#define EM_TEST(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)

#endif
