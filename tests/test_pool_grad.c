/* tests/test_pool_grad.c — max_pool2d's backward on one backend (EM_TEST_BACKEND), through
 * its max_pool2d_grad kernel (ABI 1.5) where it has one, else the fill + scatter_add: the
 * gradient has, bit for bit, the sums the contract fixes (from +0, over the outputs whose index
 * is the pixel, in row-major order, in the dtype) — computed here on the host from the indices
 * — and the bits of a zero tensor scatter_add-ed on the same backend (where its order is
 * fixed); over windows that
 * overlap or not, padding, dilation, ceil_mode, ties, NaN and -inf inputs, gradients that are
 * contiguous, transposed or broadcast, unbatched and empty inputs; and on the cpu backend the
 * same bits on 1 and 2 threads. PyTorch's own values are checked by tests/test_conv.c. */
#include "harness.h"
#include "backend_harness.h"

typedef struct pg_case {
    const char *what;
    int64_t n, c, h, w;   /* n = 0: an unbatched (C, H, W) input */
    int k[2], s[2], p[2], d[2];
    bool ceil;
} pg_case;

static const pg_case cases[] = {
    {"2x2", 2, 3, 8, 10, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false},
    {"2x2, odd sizes", 2, 3, 7, 11, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false},
    {"2x2 ceil_mode, odd sizes", 1, 2, 7, 9, {2, 2}, {2, 2}, {0, 0}, {1, 1}, true},
    {"2x2 pad 1", 1, 2, 6, 9, {2, 2}, {2, 2}, {1, 1}, {1, 1}, false},
    {"3x3 stride 1 (overlap)", 2, 2, 6, 7, {3, 3}, {1, 1}, {0, 0}, {1, 1}, false},
    {"3x3 stride 2 pad 1 ceil_mode", 1, 2, 7, 6, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true},
    {"3x2 stride 2x1 pad 1 dilation 1x2", 2, 2, 7, 8, {3, 2}, {2, 1}, {1, 1}, {1, 2}, false},
    {"2x2 stride 3 dilation 2", 1, 3, 9, 10, {2, 2}, {3, 3}, {0, 0}, {2, 2}, false},
    {"4x4 stride 1 pad 2 dilation 2", 1, 2, 9, 9, {4, 4}, {1, 1}, {2, 2}, {2, 2}, false},
    {"1x1", 1, 2, 3, 4, {1, 1}, {1, 1}, {0, 0}, {1, 1}, false},
    {"unbatched 3x3 stride 2 pad 1", 0, 3, 5, 5, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false},
    {"2x2, 8 x 16 x 28 x 28", 8, 16, 28, 28, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false},
    {"3x3 stride 2, 4 x 16 x 27 x 27", 4, 16, 27, 27, {3, 3}, {2, 2}, {0, 0}, {1, 1}, false},
};

static int64_t out_size(int64_t in, int k, int s, int p, int d, bool ceil)
{
    int64_t num = in + 2 * p - (int64_t)d * (k - 1) - 1 + (ceil ? s - 1 : 0);
    int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil && (o - 1) * s >= in + p)
        o--;
    return o;
}

/* inputs full of ties (small integers), some NaNs, and a block of -inf in each plane */
static double *tie_input(int64_t planes, int64_t h, int64_t w)
{
    int64_t n = planes * h * w;
    double *v = rnd_array(n, -2, 2);
    for (int64_t i = 0; i < n; i++) {
        int64_t y = i / w % h, x = i % w;
        v[i] = floor(v[i]);
        if (i * 7919 % 23 == 0)
            v[i] = NAN;
        if (y < 3 && x < 3 && (i / (h * w)) % 2 == 0)
            v[i] = -INFINITY;
    }
    return v;
}

/* gradients of very different magnitudes (the order of the sums shows in the bits), with -0 */
static double *grad_values(int64_t n)
{
    double *v = rnd_array(n, -1, 1);
    for (int64_t i = 0; i < n; i++)
        v[i] = i % 11 == 3 ? -0.0 : ldexp(v[i], (int)(i % 5) * 9 - 18);
    return v;
}

/* the host's sums in dtype dt: ref (x's numel elements of dt) from g (the output's values,
 * as stored in dt) and the indices */
static void host_sums(em_dtype dt, int64_t planes, int64_t hw, int64_t ohw, const double *g,
                      const int64_t *ix, void *ref)
{
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t i = 0; i < hw; i++) {
            if (dt == EM_F32)
                ((float *)ref)[pl * hw + i] = 0.0f;
            else
                ((double *)ref)[pl * hw + i] = 0.0;
        }
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t o = 0; o < ohw; o++) {
            int64_t q = pl * ohw + o, at = pl * hw + ix[q];
            if (dt == EM_F32)
                ((float *)ref)[at] += (float)g[q];
            else
                ((double *)ref)[at] += g[q];
        }
}

static void *host_bytes(em_tensor *t, size_t *bytes)
{
    *bytes = (size_t)em_tensor_numel(t) * em_dtype_size(em_tensor_dtype(t));
    void *b = malloc(*bytes ? *bytes : 1);
    assert_int_equal(em_tensor_to_host(t, b, *bytes), EM_OK);
    return b;
}

/* the first element whose bits differ, or -1 */
static int64_t first_diff(const void *a, const void *b, int64_t n, size_t esz)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp((const char *)a + (size_t)i * esz, (const char *)b + (size_t)i * esz, esz))
            return i;
    return -1;
}

static double elem(const void *p, em_dtype dt, int64_t i)
{
    return dt == EM_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

/* One case in one dtype: the gradient for a contiguous, a transposed and a broadcast output
 * gradient, against the host's sums and a scatter_add into zeros. */
static void run_case(const pg_case *c, em_dtype dt)
{
    em_scope_begin(g_ctx);
    int64_t n = c->n ? c->n : 1, planes = n * c->c, hw = c->h * c->w;
    int64_t oh = out_size(c->h, c->k[0], c->s[0], c->p[0], c->d[0], c->ceil);
    int64_t ow = out_size(c->w, c->k[1], c->s[1], c->p[1], c->d[1], c->ceil), ohw = oh * ow;
    int nd = c->n ? 4 : 3;
    int64_t xs4[4] = {c->n, c->c, c->h, c->w}, ys4[4] = {c->n, c->c, oh, ow};
    const int64_t *xs = c->n ? xs4 : xs4 + 1, *ys = c->n ? ys4 : ys4 + 1;
    double *xv = tie_input(planes, c->h, c->w);
    em_tensor *x = from_doubles(dt, nd, xs, xv);
    assert_int_equal(em_tensor_set_requires_grad(x, true), EM_OK);
    em_tensor *y = NULL, *ix = NULL;
    assert_int_equal(em_max_pool2d_with_indices(x, c->k, c->s, c->p, c->d, c->ceil, &y, &ix),
                     EM_OK);
    int64_t *iv = malloc(sizeof(int64_t) * (size_t)(planes * ohw));
    assert_int_equal(em_tensor_to_host(ix, iv, sizeof(int64_t) * (size_t)(planes * ohw)), EM_OK);
    for (int64_t q = 0; q < planes * ohw; q++)
        if (iv[q] < 0 || iv[q] >= hw)
            fail_msg("%s: index %lld is %lld", c->what, (long long)q, (long long)iv[q]);
    size_t esz = em_dtype_size(dt);
    void *ref = malloc((size_t)(planes * hw) * esz);
    for (int layout = 0; layout < 3; layout++) {
        /* 0: contiguous; 1: a transposed view of the same values; 2: one value per output row,
         * broadcast along it (stride 0) */
        double *gv = grad_values(planes * ohw);
        em_tensor *g;
        if (layout == 2) {
            for (int64_t r = 0; r < planes * oh; r++)
                for (int64_t j = 0; j < ow; j++)
                    gv[r * ow + j] = gv[r * ow];
            int64_t rs[4];
            memcpy(rs, ys, sizeof(int64_t) * (size_t)nd);
            rs[nd - 1] = 1;
            double *rv = malloc(sizeof(double) * (size_t)(planes * oh));
            for (int64_t r = 0; r < planes * oh; r++)
                rv[r] = gv[r * ow];
            g = em_expand(from_doubles(dt, nd, rs, rv), nd, ys);
            free(rv);
        } else {
            g = from_doubles(dt, nd, ys, gv);
            if (layout == 1)
                g = em_transpose(em_contiguous(em_transpose(g, nd - 2, nd - 1)), nd - 2, nd - 1);
        }
        assert_non_null(g);
        /* the values as stored in dt */
        double *gs = to_doubles(em_contiguous(g));
        host_sums(dt, planes, hw, ohw, gs, iv, ref);
        em_tensor_clear_grad(x);
        if (em_backward_ex(y, g, true) != EM_OK)
            fail_msg("%s: backward: %s", c->what, em_context_error(g_ctx));
        em_tensor *gx = em_grad(x);
        assert_non_null(gx);
        assert_int_equal(em_tensor_ndim(gx), nd);
        for (int i = 0; i < nd; i++)
            assert_int_equal(em_tensor_size(gx, i), xs[i]);
        size_t bytes;
        void *got = host_bytes(gx, &bytes);
        int64_t at = first_diff(got, ref, planes * hw, esz);
        if (at >= 0)
            fail_msg("%s [%s, layout %d]: element %lld is %.17g, the sums give %.17g", c->what,
                     em_dtype_name(dt), layout, (long long)at, elem(got, dt, at),
                     elem(ref, dt, at));
        /* a scatter_add into zeros on the same backend: the same bits, where its order is
         * fixed (the cpu backend's; elsewhere it may add with atomics when two outputs share
         * a pixel) */
        bool disjoint = (int64_t)(c->k[0] - 1) * c->d[0] + 1 <= c->s[0] &&
                        (int64_t)(c->k[1] - 1) * c->d[1] + 1 <= c->s[1];
        if (!disjoint && strcmp(test_backend_name(), "cpu") && strcmp(test_backend_name(), "tconv")) {
            free(got);
            free(gs);
            free(gv);
            continue;
        }
        int64_t zs[2] = {planes, hw}, s2[2] = {planes, ohw};
        em_tensor *z = em_scatter_add(em_zeros(g_ctx, dt, 2, zs), 1, em_reshape(ix, 2, s2),
                                      em_reshape(em_contiguous(g), 2, s2));
        assert_non_null(z);
        void *sc = host_bytes(z, &bytes);
        at = first_diff(got, sc, planes * hw, esz);
        if (at >= 0)
            fail_msg("%s [%s, layout %d]: element %lld is %.17g, scatter_add gives %.17g",
                     c->what, em_dtype_name(dt), layout, (long long)at, elem(got, dt, at),
                     elem(sc, dt, at));
        free(sc);
        free(got);
        free(gs);
        free(gv);
    }
    free(ref);
    free(iv);
    free(xv);
    em_scope_end(g_ctx);
    assert_ok_ctx();
}

static void test_sums(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_case(&cases[i], EM_F32);
        run_case(&cases[i], EM_F64);
    }
}

/* a lone -0 gradient gives +0, as a sum from zero does (PyTorch too); two -0 sent to one pixel
 * by overlapping windows give +0 */
static void test_negative_zero(void **state)
{
    (void)state;
    const int k2[2] = {2, 2}, s1[2] = {1, 1};
    const double xv[9] = {0, 0, 0, 0, 5, 0, 0, 0, 0};
    for (int dt = 0; dt < 2; dt++) {
        em_dtype t = dt ? EM_F64 : EM_F32;
        for (int overlap = 0; overlap < 2; overlap++) {
            em_tensor *x = from_doubles(t, EM_SHAPE(1, 1, 3, 3), xv);
            em_tensor_set_requires_grad(x, true);
            em_tensor *y = em_max_pool2d(x, k2, overlap ? s1 : NULL, NULL, NULL, false);
            assert_non_null(y);
            em_tensor *g = em_mul_scalar(em_ones_like(y), -0.0);
            assert_int_equal(em_backward_ex(y, g, false), EM_OK);
            double *gx = to_doubles(em_grad(x));
            for (int i = 0; i < 9; i++)
                if (gx[i] != 0.0 || signbit(gx[i]))
                    fail_msg("%s, %s: element %d is %g", em_dtype_name(t),
                             overlap ? "stride 1" : "stride 2", i, gx[i]);
            free(gx);
        }
    }
    assert_ok_ctx();
}

/* an empty batch: an empty gradient of the input's shape */
static void test_empty(void **state)
{
    (void)state;
    const int k2[2] = {2, 2}, s1[2] = {1, 1};
    for (int overlap = 0; overlap < 2; overlap++) {
        em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(0, 3, 6, 5));
        em_tensor_set_requires_grad(x, true);
        em_tensor *y = em_max_pool2d(x, k2, overlap ? s1 : NULL, NULL, NULL, false);
        assert_non_null(y);
        assert_int_equal(em_tensor_numel(y), 0);
        assert_int_equal(em_backward(em_sum(y)), EM_OK);
        em_tensor *gx = em_grad(x);
        assert_non_null(gx);
        assert_int_equal(em_tensor_ndim(gx), 4);
        assert_int_equal(em_tensor_size(gx, 0), 0);
        assert_int_equal(em_tensor_size(gx, 1), 3);
        assert_int_equal(em_tensor_size(gx, 2), 6);
        assert_int_equal(em_tensor_size(gx, 3), 5);
    }
    assert_ok_ctx();
}

/* the gradient of one pooling on a cpu context with `threads` threads, as bytes */
static void *grad_on_threads(const char *threads, const pg_case *c, em_dtype dt, size_t *bytes)
{
    em_config *cfg = test_config("cpu");
    em_config_set(cfg, "cpu", "threads", threads);
    em_context *ctx = NULL;
    assert_int_equal(em_context_create_with(&ctx, cfg), EM_OK);
    em_config_free(cfg);
    int64_t planes = c->n * c->c;
    int64_t oh = out_size(c->h, c->k[0], c->s[0], c->p[0], c->d[0], c->ceil);
    int64_t ow = out_size(c->w, c->k[1], c->s[1], c->p[1], c->d[1], c->ceil);
    g_lcg = 0x9e3779b97f4a7c15ULL;
    double *xv = tie_input(planes, c->h, c->w), *gv = grad_values(planes * oh * ow);
    em_context *keep = g_ctx;
    g_ctx = ctx;
    em_tensor *x = from_doubles(dt, EM_SHAPE(c->n, c->c, c->h, c->w), xv);
    em_tensor *g = from_doubles(dt, EM_SHAPE(c->n, c->c, oh, ow), gv);
    g_ctx = keep;
    em_tensor_set_requires_grad(x, true);
    em_tensor *y = em_max_pool2d(x, c->k, c->s, c->p, c->d, c->ceil);
    assert_int_equal(em_backward_ex(y, g, false), EM_OK);
    void *b = host_bytes(em_grad(x), bytes);
    if (em_context_status(ctx) != EM_OK)
        fail_msg("%s", em_context_error(ctx));
    em_context_free(ctx);
    free(xv);
    free(gv);
    return b;
}

/* the cpu backend: 1 and 2 threads give the same bits (planes big enough to be shared); run in
 * the cpu suite only */
static void test_threads(void **state)
{
    (void)state;
    const pg_case big[2] = {
        {"2x2", 8, 16, 28, 28, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false},
        {"3x3 stride 1 pad 1", 4, 16, 20, 20, {3, 3}, {1, 1}, {1, 1}, {1, 1}, false},
    };
    for (int i = 0; i < 2; i++)
        for (int dt = 0; dt < 2; dt++) {
            size_t b1, b2;
            em_dtype t = dt ? EM_F64 : EM_F32;
            void *one = grad_on_threads("1", &big[i], t, &b1);
            void *two = grad_on_threads("2", &big[i], t, &b2);
            assert_int_equal(b1, b2);
            if (memcmp(one, two, b1))
                fail_msg("%s [%s]: 1 and 2 threads differ", big[i].what, em_dtype_name(t));
            free(one);
            free(two);
        }
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_sums), EM_TEST(test_negative_zero), EM_TEST(test_empty),
        EM_TEST(test_threads),   /* last: cpu only */
    };
    size_t n = sizeof tests / sizeof tests[0] - (strcmp(test_backend_name(), "cpu") ? 1 : 0);
    char name[64];
    snprintf(name, sizeof name, "max_pool2d's backward on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
