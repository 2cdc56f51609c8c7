/* tests/cuda_probe.c — probes of a GPU that the test suites cannot afford or do not cover,
 * run by the GPU check (tools/gpu-bundle.sh's run script) and under compute-sanitizer:
 *
 *   cuda_probe [--backend NAME] big [N]  N (default 2^31+1000) elements: a sum of ones with a
 *                                      changed tail, a copy read back at indices past 2^31,
 *                                      the rng against the cpu backend's at those indices,
 *                                      and a gemm with a dimension past INT_MAX (about
 *                                      35 GB of device memory at the peak, 9 GB of host)
 *   cuda_probe [--backend NAME] oom    allocations until the device is out of memory, then
 *                                      the context must still work (and an absurd request
 *                                      must fail with EM_ERR_OOM, not abort)
 *   cuda_probe [--backend NAME] sum [N]   one sum of N (default 1000003) f32 values,
 *                                      checked; small enough for racecheck and synccheck
 *
 * The backend defaults to cuda (any backend works; the cpu runs the same checks here). Prints
 * "ok - ..." or "FAIL - ..." per check; exits 0 if all passed, 1 if one failed, 77 (with
 * "no device: <reason>") when the backend cannot open a device. */
#include <ember/ember.h>

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_failed;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", ok ? "ok" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (!ok)
        g_failed = 1;
}

static em_context *open_ctx(const char *backend)
{
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", backend);
    const char *dir = getenv("EMBER_TEST_BACKEND_DIR");
    if (dir && *dir)
        em_config_set(cfg, "backends", "path", dir);
    em_context *ctx = NULL;
    if (em_context_create_with(&ctx, cfg) != EM_OK)
        ctx = NULL;
    em_config_free(cfg);
    return ctx;
}

/* The context's error, or "ok", and the error cleared. */
static bool ctx_ok(em_context *ctx, const char *what)
{
    if (em_context_status(ctx) == EM_OK)
        return true;
    check(false, "%s: %s", what, em_context_error(ctx));
    em_context_clear_error(ctx);
    return false;
}

/* values [start, start + n) of a 1-D f32 tensor */
static bool tail(em_tensor *t, int64_t start, int64_t n, float *out)
{
    return em_tensor_to_host(em_narrow(t, 0, start, n), out, sizeof(float) * (size_t)n) == EM_OK;
}

static void probe_big(em_context *ctx, int64_t big)
{
    enum { T = 16 };
    float v[T];

    /* sum of ones with the last 1000 set to 3: big + 2000, exact in double partials */
    em_scope_begin(ctx);
    em_tensor *x = em_ones(ctx, EM_F32, EM_SHAPE(big));
    em_fill_(em_narrow(x, 0, big - 1000, 1000), 3.0);
    const double s = em_item(em_sum(em_to_dtype(x, EM_F64)));
    const double s32 = em_item(em_sum(x));
    if (ctx_ok(ctx, "sum past 2^31 elements")) {
        check(s == (double)(big + 2000), "sum (f64) of %lld elements: %.17g, want %lld",
              (long long)big, s, (long long)(big + 2000));
        check(fabs(s32 - (double)(big + 2000)) <= 1e-6 * (double)big,
              "sum (f32) of %lld elements: %.9g, want %lld within 1e-6", (long long)big, s32,
              (long long)(big + 2000));
    }
    /* a copy, read back past 2^31 */
    em_tensor *y = em_clone(x);
    em_add_scalar_(em_narrow(y, 0, big - T, T), 1.0);
    bool ok = tail(y, big - T, T, v);
    for (int i = 0; ok && i < T; i++)
        ok = v[i] == 4.0f;
    if (ctx_ok(ctx, "copy past 2^31 elements"))
        check(ok, "clone of %lld elements, updated and read back at index %lld: %g", (long long)big,
              (long long)(big - T),
              (double)v[0]);
    em_scope_end(ctx);

    /* the rng at indices past 2^31 agrees with the cpu backend's */
    {
        em_context *cpu = open_ctx("cpu");
        if (!cpu) {
            check(false, "the cpu backend to compare the rng with cannot be opened: %s", em_last_error());
        } else {
            float w[T];
            em_scope_begin(ctx);
            em_scope_begin(cpu);
            em_manual_seed(ctx, 20240531);
            em_manual_seed(cpu, 20240531);
            bool got = tail(em_rand(ctx, EM_F32, EM_SHAPE(big)), big - T, T, v);
            bool want = tail(em_rand(cpu, EM_F32, EM_SHAPE(big)), big - T, T, w);
            if (ctx_ok(ctx, "rng past 2^31 elements") && ctx_ok(cpu, "rng past 2^31 elements (cpu)")) {
                ok = got && want;
                for (int i = 0; ok && i < T; i++)
                    ok = v[i] == w[i];
                check(ok, "rand of %lld elements: %s at index %lld (%.9g vs cpu %.9g)",
                      (long long)big, ok ? "same numbers as cpu" : "differs from cpu", (long long)(big - T),
                      (double)v[0], (double)w[0]);
            }
            em_scope_end(cpu);
            em_scope_end(ctx);
            em_context_free(cpu);
        }
    }

    /* a gemm with m past INT_MAX: (big x 1) @ (1 x 1) */
    em_scope_begin(ctx);
    em_tensor *a = em_full(ctx, EM_F32, EM_SHAPE(big, 1), 2.0);
    em_tensor *b = em_full(ctx, EM_F32, EM_SHAPE(1, 1), 1.5);
    em_tensor *c = em_mm(a, b);
    if (ctx_ok(ctx, "mm with m past 2^31")) {
        ok = tail(em_reshape(c, EM_SHAPE(big)), big - T, T, v);
        for (int i = 0; ok && i < T; i++)
            ok = v[i] == 3.0f;
        check(ok && em_context_status(ctx) == EM_OK, "mm (%lld x 1) @ (1 x 1): %g at index %lld, want 3",
              (long long)big, (double)v[0], (long long)(big - T));
        em_context_clear_error(ctx);
    }
    em_scope_end(ctx);
}

static void probe_oom(em_context *ctx)
{
    /* one absurd request: refused with EM_ERR_OOM, nothing else changed */
    em_scope_begin(ctx);
    em_tensor *t = em_empty(ctx, EM_F32, EM_SHAPE((int64_t)1 << 48));
    check(t == NULL && em_context_status(ctx) == EM_ERR_OOM, "2^50 bytes: %s",
          em_context_status(ctx) == EM_OK ? "no error" : em_context_error(ctx));
    em_context_clear_error(ctx);
    em_scope_end(ctx);

    /* 4 GiB at a time until the device is full (at most 1 TiB) */
    em_scope_begin(ctx);
    int n = 0;
    const int64_t chunk = (int64_t)1 << 30;   /* f32 elements */
    for (; n < 256; n++) {
        em_tensor *c = em_empty(ctx, EM_F32, EM_SHAPE(chunk));
        if (!c)
            break;
        em_fill_(c, 1.0);   /* touch it */
        if (em_context_status(ctx) != EM_OK)
            break;
    }
    const em_status st = em_context_status(ctx);
    check(st == EM_ERR_OOM, "filled the device: %d x 4 GiB, then %s", n,
          st == EM_OK ? "no error" : em_context_error(ctx));
    em_context_clear_error(ctx);
    em_scope_end(ctx);

    /* still usable: the seed's first layer, checked */
    em_scope_begin(ctx);
    em_tensor *x = em_full(ctx, EM_F32, EM_SHAPE(64, 1000), 0.5);
    em_tensor *w = em_full(ctx, EM_F32, EM_SHAPE(1000, 100), 0.25);
    const double s = em_item(em_sum(em_mm(x, w)));
    check(em_context_status(ctx) == EM_OK && s == 64.0 * 100 * 1000 * 0.125,
          "after the OOM the context still computes: sum(mm) = %.17g, want %.17g (%s)", s,
          64.0 * 100 * 1000 * 0.125, em_context_status(ctx) == EM_OK ? "no error" : em_context_error(ctx));
    em_scope_end(ctx);
}

static void probe_sum(em_context *ctx, int64_t n)
{
    em_scope_begin(ctx);
    em_tensor *x = em_arange(ctx, EM_F32, 0, (double)n, 1);
    const double got = em_item(em_sum(em_remainder_scalar(x, 7.0)));
    double want = 0;
    for (int64_t i = 0; i < n; i++)
        want += (double)(i % 7);
    check(em_context_status(ctx) == EM_OK && fabs(got - want) <= 1e-6 * want,
          "sum of (arange(%lld) %% 7): %.9g, want %.9g", (long long)n, got, want);
    em_context_clear_error(ctx);
    em_scope_end(ctx);
}

int main(int argc, char **argv)
{
    const char *backend = "cuda";
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "--backend")) {
        backend = argv[i + 1];
        i += 2;
    }
    if (i >= argc || (strcmp(argv[i], "big") && strcmp(argv[i], "oom") && strcmp(argv[i], "sum"))) {
        fprintf(stderr, "usage: cuda_probe [--backend NAME] big [N] | oom | sum [N]\n");
        return 2;
    }
    const char *mode = argv[i];
    em_context *ctx = open_ctx(backend);
    if (!ctx) {
        printf("no device: %s\n", em_last_error());
        return 77;
    }
    printf("# %s on %s (%s)\n", mode, em_context_backend(ctx), em_context_device_name(ctx));
    if (!strcmp(mode, "big"))   /* past INT_MAX, and past UINT_MAX / 2 */
        probe_big(ctx, i + 1 < argc ? atoll(argv[i + 1]) : ((int64_t)1 << 31) + 1000);
    else if (!strcmp(mode, "oom"))
        probe_oom(ctx);
    else
        probe_sum(ctx, i + 1 < argc ? atoll(argv[i + 1]) : 1000003);
    em_context_free(ctx);
    return g_failed;
}
