/* tests/test_conv_native.c — the optional whole-convolution kernels of ABI 1.4 (conv2d,
 * conv2d_grad_input, conv2d_grad_weight) as the core uses them: on the test backend tconv
 * (tests/plugins/tconv.c: the cpu backend plus direct-loop convolution kernels), conv2d and
 * conv1d forward and backward (values, the input's, weight's and bias's gradients) match the
 * cpu backend's lowering (im2col / col2im + gemm) in f32 and f64, over strides, padding,
 * dilation, groups, bias or none, non-contiguous inputs and partial requires_grad; the
 * kernels are called exactly when they apply (counted by the plugin), and never for the
 * one-sided padding of padding="same" with an even kernel extent, which stays lowered; a
 * call the plugin declines is lowered, leaving no error behind; when only the weight's
 * gradient declines, the input's stays native and the weight's and bias's are lowered. */
#include "harness.h"
#include "backend_harness.h"

#include <dlfcn.h>
#include <stdatomic.h>

static em_context *g_cpu, *g_tconv;
static atomic_int *g_calls;   /* tconv_calls_: conv2d, grad_input, grad_weight, with db */
static atomic_int *g_decline, *g_declined;   /* tconv_decline_, tconv_declined_ */
static atomic_int *g_decline_weight;         /* tconv_decline_weight_ */

static em_context *open_on(const char *backend, const char *dir)
{
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", backend);
    em_config_set(cfg, "backends", "path", dir);
    em_context *ctx = NULL;
    if (em_context_create_with(&ctx, cfg) != EM_OK)
        fprintf(stderr, "# %s: %s\n", backend, em_last_error());
    em_config_free(cfg);
    return ctx;
}

typedef struct ncase {
    const char *name;
    int sd;                       /* spatial dims: 2 (conv2d) or 1 (conv1d) */
    int64_t n, c, h, w, oc, kh, kw;
    int stride[2], pad[2], dil[2], groups;
    const char *mode;             /* "same" / "valid" / NULL (padding as numbers) */
    bool bias, transposed;        /* transposed: x is a transposed view (not contiguous) */
    bool need[3];                 /* requires_grad of x, w, bias */
    bool native;                  /* the kernels apply */
} ncase;

static const ncase cases[] = {
    {"plain", 2, 2, 3, 6, 5, 4, 3, 3, {1, 1}, {0, 0}, {1, 1}, 1, NULL, true, false,
     {true, true, true}, true},
    {"strided_padded", 2, 2, 2, 7, 8, 3, 3, 2, {2, 1}, {1, 2}, {1, 1}, 1, NULL, true, false,
     {true, true, true}, true},
    {"dilated_groups", 2, 3, 4, 9, 7, 6, 2, 3, {1, 2}, {2, 1}, {2, 1}, 2, NULL, false, false,
     {true, true, false}, true},
    {"depthwise", 2, 1, 3, 5, 5, 6, 3, 3, {1, 1}, {1, 1}, {1, 1}, 3, NULL, true, false,
     {true, true, true}, true},
    {"transposed_input", 2, 2, 2, 5, 6, 3, 2, 2, {1, 1}, {0, 1}, {1, 1}, 1, NULL, true, true,
     {true, true, true}, true},
    {"input_grad_only", 2, 2, 2, 5, 5, 2, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, NULL, true, false,
     {true, false, false}, true},
    {"weight_grad_only", 2, 2, 2, 5, 5, 2, 3, 3, {2, 2}, {1, 1}, {1, 1}, 1, NULL, false, false,
     {false, true, false}, true},
    {"bias_grad_only", 2, 2, 2, 5, 5, 2, 3, 3, {1, 1}, {0, 0}, {1, 1}, 1, NULL, true, false,
     {false, false, true}, true},
    {"same_odd", 2, 1, 2, 6, 6, 3, 3, 3, {1, 1}, {0, 0}, {1, 1}, 1, "same", true, false,
     {true, true, true}, true},
    {"same_even", 2, 1, 2, 6, 6, 3, 2, 4, {1, 1}, {0, 0}, {1, 1}, 1, "same", true, false,
     {true, true, true}, false},
    {"conv1d", 1, 2, 3, 1, 11, 4, 1, 3, {2, 0}, {1, 0}, {2, 0}, 1, NULL, true, false,
     {true, true, true}, true},
};

typedef struct result {
    double *v[4];   /* y, grad of x, of w, of bias */
    int64_t n[4];
} result;

static void take(result *r, int i, em_tensor *t)
{
    r->v[i] = NULL;
    r->n[i] = 0;
    if (t) {
        r->n[i] = em_tensor_numel(t);
        r->v[i] = to_doubles(t);
    }
}

/* The case on one context (g_ctx): forward, backward of sum(y * rv), everything read back. */
static void run_on(em_context *ctx, const ncase *c, em_dtype dt, const double *const *data,
                   result *r)
{
    g_ctx = ctx;
    em_scope_begin(ctx);
    int64_t xs[4], ws[4], bs[1] = {c->oc};
    int nd = c->sd + 2;
    if (c->sd == 2) {
        int64_t x4[4] = {c->n, c->c, c->h, c->w}, w4[4] = {c->oc, c->c / c->groups, c->kh, c->kw};
        memcpy(xs, x4, sizeof xs);
        memcpy(ws, w4, sizeof ws);
    } else {
        int64_t x3[3] = {c->n, c->c, c->w}, w3[3] = {c->oc, c->c / c->groups, c->kw};
        memcpy(xs, x3, sizeof x3);
        memcpy(ws, w3, sizeof w3);
    }
    em_tensor *x;
    if (c->transposed) {   /* the same values, stored with the last two dims swapped */
        int64_t ts[4] = {xs[0], xs[1], xs[3], xs[2]}, plane = xs[2] * xs[3];
        double *tv = malloc(sizeof(double) * (size_t)(xs[0] * xs[1] * plane));
        for (int64_t p = 0; p < xs[0] * xs[1]; p++)
            for (int64_t i = 0; i < xs[2]; i++)
                for (int64_t j = 0; j < xs[3]; j++)
                    tv[p * plane + j * xs[2] + i] = data[0][p * plane + i * xs[3] + j];
        x = em_transpose(from_doubles(dt, 4, ts, tv), 2, 3);
        free(tv);
        assert_false(em_tensor_is_contiguous(x));
    } else {
        x = from_doubles(dt, nd, xs, data[0]);
    }
    em_tensor *w = from_doubles(dt, nd, ws, data[1]);
    em_tensor *b = c->bias ? from_doubles(dt, 1, bs, data[2]) : NULL;
    em_tensor *in[3] = {x, w, b};
    for (int i = 0; i < 3; i++)
        if (in[i] && c->need[i])
            assert_int_equal(em_tensor_set_requires_grad(in[i], true), EM_OK);
    em_tensor *y = c->sd == 2
                       ? (c->mode ? em_conv2d_mode(x, w, b, c->stride, c->mode, c->dil, c->groups)
                                  : em_conv2d(x, w, b, c->stride, c->pad, c->dil, c->groups))
                       : (c->mode ? em_conv1d_mode(x, w, b, c->stride, c->mode, c->dil, c->groups)
                                  : em_conv1d(x, w, b, c->stride, c->pad, c->dil, c->groups));
    if (!y)
        fail_msg("%s: conv: %s", c->name, em_context_error(ctx));
    int64_t ny = em_tensor_numel(y);
    double *rv = malloc(sizeof(double) * (size_t)ny);
    for (int64_t j = 0; j < ny; j++)
        rv[j] = 0.25 + (double)(j % 5) / 4.0;
    em_tensor *rt = from_doubles(dt, em_tensor_ndim(y), em_tensor_shape(y), rv);
    free(rv);
    take(r, 0, y);
    if (em_backward(em_sum(em_mul(y, rt))) != EM_OK)
        fail_msg("%s: backward: %s", c->name, em_context_error(ctx));
    for (int i = 0; i < 3; i++)
        take(r, 1 + i, in[i] && c->need[i] ? em_grad(in[i]) : NULL);
    em_scope_end(ctx);
    if (em_context_status(ctx) != EM_OK)
        fail_msg("%s: %s", c->name, em_context_error(ctx));
}

static void run_case(const ncase *c, em_dtype dt)
{
    int64_t nx = c->n * c->c * c->h * c->w, nw = c->oc * (c->c / c->groups) * c->kh * c->kw;
    double *data[3] = {rnd_array(nx, -1, 1), rnd_array(nw, -1, 1), rnd_array(c->oc, -1, 1)};
    int before[4];
    for (int i = 0; i < 4; i++)
        before[i] = atomic_load(&g_calls[i]);
    result want, got;
    run_on(g_cpu, c, dt, (const double *const *)data, &want);
    run_on(g_tconv, c, dt, (const double *const *)data, &got);
    static const char *const what[4] = {"y", "grad of x", "grad of w", "grad of bias"};
    double tol = dt == EM_F32 ? 1e-5 : 1e-12;
    for (int i = 0; i < 4; i++) {
        if (!want.v[i] != !got.v[i] || want.n[i] != got.n[i])
            fail_msg("%s [%s]: %s present on one backend only", c->name, em_dtype_name(dt),
                     what[i]);
        for (int64_t j = 0; j < want.n[i]; j++)
            if (!close_enough(got.v[i][j], want.v[i][j], tol))
                fail_msg("%s [%s]: %s element %lld: tconv %.17g, cpu %.17g", c->name,
                         em_dtype_name(dt), what[i], (long long)j, got.v[i][j], want.v[i][j]);
        free(want.v[i]);
        free(got.v[i]);
    }
    /* which kernels ran: the forward always; grad_input for x's gradient; grad_weight for
     * w's, with db when the bias's is wanted too (alone, the bias's gradient is a sum) */
    bool gw = c->need[1], gb = c->need[1] && c->need[2] && c->bias;
    int want_calls[4] = {1, c->need[0], gw && !gb, gb};
    for (int i = 0; i < 4; i++) {
        int n = atomic_load(&g_calls[i]) - before[i];
        if (n != (c->native ? want_calls[i] : 0))
            fail_msg("%s [%s]: tconv kernel %d called %d times, want %d", c->name,
                     em_dtype_name(dt), i, n, c->native ? want_calls[i] : 0);
    }
    for (int i = 0; i < 3; i++)
        free(data[i]);
}

/* Every kernel declines: the same results through the lowering, no error left behind (run_on
 * checks the context's status), nothing counted as run. */
static void test_declined(void **state)
{
    (void)state;
    int before = atomic_load(g_declined);
    atomic_store(g_decline, 1);
    ncase c = cases[1];
    c.native = false;
    run_case(&c, EM_F64);
    run_case(&c, EM_F32);
    atomic_store(g_decline, 0);
    /* the forward and each gradient's kernel (a declined one does not stop the other from
     * being tried), for two dtypes */
    assert_int_equal(atomic_load(g_declined) - before, 6);
    assert_string_equal(em_context_error(g_tconv), "");
}

/* Only conv2d_grad_weight declines: the input's gradient is still the kernel's (called once
 * per backward), the weight's and bias's come from the lowering; the same values, no error
 * left behind. */
static void test_weight_declined(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        const em_dtype dt = k ? EM_F32 : EM_F64;
        int before = atomic_load(g_declined), gi = atomic_load(&g_calls[1]);
        atomic_store(g_decline_weight, 1);
        ncase c = cases[0];   /* every gradient wanted, with a bias */
        c.native = false;     /* (run_case's call counts do not apply) */
        int64_t nx = c.n * c.c * c.h * c.w, nw = c.oc * c.c * c.kh * c.kw;
        double *data[3] = {rnd_array(nx, -1, 1), rnd_array(nw, -1, 1), rnd_array(c.oc, -1, 1)};
        result want, got;
        run_on(g_cpu, &c, dt, (const double *const *)data, &want);
        run_on(g_tconv, &c, dt, (const double *const *)data, &got);
        atomic_store(g_decline_weight, 0);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(want.n[i], got.n[i]);
            for (int64_t j = 0; j < want.n[i]; j++)
                if (!close_enough(got.v[i][j], want.v[i][j], dt == EM_F32 ? 1e-5 : 1e-12))
                    fail_msg("weight declined [%s]: result %d element %lld: tconv %.17g, cpu "
                             "%.17g", em_dtype_name(dt), i, (long long)j, got.v[i][j],
                             want.v[i][j]);
            free(want.v[i]);
            free(got.v[i]);
        }
        for (int i = 0; i < 3; i++)
            free(data[i]);
        assert_int_equal(atomic_load(g_declined) - before, 1);
        assert_int_equal(atomic_load(&g_calls[1]) - gi, 1);
        assert_string_equal(em_context_error(g_tconv), "");
    }
}

static void test_matches_lowering(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_case(&cases[i], EM_F64);
        run_case(&cases[i], EM_F32);
    }
}

int main(void)
{
    const char *pdir = th_env("EMBER_TEST_PLUGIN_DIR"), *bdir = th_env("EMBER_TEST_BACKEND_DIR");
    if (!pdir || !bdir) {
        printf("1..0 # SKIP EMBER_TEST_PLUGIN_DIR and EMBER_TEST_BACKEND_DIR are not set\n");
        return 0;
    }
    g_cpu = open_on("cpu", bdir);
    g_tconv = open_on("tconv", pdir);
    char *lib = th_join(pdir, "ember-backend-tconv.so");
    void *dl = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
    free(lib);
    g_calls = dl ? dlsym(dl, "tconv_calls_") : NULL;
    g_decline = dl ? dlsym(dl, "tconv_decline_") : NULL;
    g_declined = dl ? dlsym(dl, "tconv_declined_") : NULL;
    g_decline_weight = dl ? dlsym(dl, "tconv_decline_weight_") : NULL;
    if (!g_cpu || !g_tconv || !g_calls || !g_decline || !g_declined || !g_decline_weight) {
        printf("1..1\nnot ok 1 - the cpu and tconv backends open and tconv counts its calls\n");
        return 1;
    }
    g_ctx = g_cpu;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_lowering),
        cmocka_unit_test(test_declined),
        cmocka_unit_test(test_weight_declined),
    };
    int rc = cmocka_run_group_tests_name("whole-convolution kernels (tconv) against the lowering",
                                         tests, NULL, NULL);
    em_context_free(g_tconv);
    em_context_free(g_cpu);
    dlclose(dl);
    return rc;
}
