/* tests/test_cpu_conv_wgrad.c — the cpu backend's conv2d_grad_weight (images in fixed groups,
 * each group's products accumulated in one task, the groups' sums added in order): the
 * weight's and bias's gradients of conv2d against direct loops in double, over batches that
 * fill no group, one group, several and a partial last one, strides, paddings, dilations,
 * groups and 1x1 windows, in f32 and f64; the same bits on 1, 2 and 3 threads; and the input's
 * gradient, lowered beside it in the same backward, still right. */
#include "backend_harness.h"

#include <string.h>

typedef struct wcase {
    int n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups;
} wcase;

static const wcase cases[] = {
    {1, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {8, 2, 9, 9, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1},
    {9, 4, 8, 10, 6, 3, 2, 2, 1, 1, 0, 1, 2, 2},
    {20, 1, 12, 12, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {17, 6, 5, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1, 3},
    {3, 2, 11, 7, 3, 5, 3, 2, 3, 2, 1, 1, 1, 1},
    {2, 4, 6, 6, 4, 3, 3, 1, 1, 2, 2, 2, 2, 4},
    /* Winograd's shapes (3x3, stride 1, 32+ channels each way): unequal padding and odd
     * outputs, odd channel counts, two tile rows per image, several chunks in three groups;
     * and one it leaves to the column matrices (a 7-wide output: half its tile row padding) */
    {3, 32, 9, 13, 32, 3, 3, 1, 1, 0, 2, 1, 1, 1},
    {2, 33, 5, 14, 34, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {2, 32, 2, 14, 32, 3, 3, 1, 1, 2, 2, 1, 1, 1},
    {24, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {3, 32, 7, 7, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1},
};

static const char *g_isa;   /* [cpu] isa for the contexts, NULL: the default */

static int64_t osz(int in, int k, int s, int p, int d)
{
    return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

typedef struct grads {
    double *gx, *gw, *gb;
    unsigned char *bits;   /* gw then gb as stored */
    size_t nbits;
} grads;

static void grads_free(grads *g)
{
    free(g->gx);
    free(g->gw);
    free(g->gb);
    free(g->bits);
}

/* the gradients of sum(conv2d(x, w, b) * r) on a cpu context with `threads` threads */
static void run(const wcase *c, em_dtype dt, int threads, const double *xv, const double *wv,
                const double *bv, const double *rv, grads *out)
{
    em_config *cfg = test_config("cpu");
    char tv[16];
    snprintf(tv, sizeof tv, "%d", threads);
    em_config_set(cfg, "cpu", "threads", tv);
    if (g_isa)
        em_config_set(cfg, "cpu", "isa", g_isa);
    em_context *ctx = NULL;
    em_status st = em_context_create_with(&ctx, cfg);
    em_config_free(cfg);
    if (st != EM_OK)
        fail_msg("context: %s", em_last_error());
    int64_t oh = osz(c->h, c->kh, c->sh, c->ph, c->dh), ow = osz(c->w, c->kw, c->sw, c->pw, c->dw);
    em_tensor *x = from_doubles(dt, EM_SHAPE(c->n, c->c, c->h, c->w), xv);
    em_tensor *w = from_doubles(dt, EM_SHAPE(c->oc, c->c / c->groups, c->kh, c->kw), wv);
    em_tensor *b = from_doubles(dt, EM_SHAPE(c->oc), bv);
    em_tensor *r = from_doubles(dt, EM_SHAPE(c->n, c->oc, oh, ow), rv);
    em_tensor_set_requires_grad(x, true);
    em_tensor_set_requires_grad(w, true);
    em_tensor_set_requires_grad(b, true);
    const int stride[2] = {c->sh, c->sw}, pad[2] = {c->ph, c->pw}, dil[2] = {c->dh, c->dw};
    em_tensor *y = em_conv2d(x, w, b, stride, pad, dil, c->groups);
    if (!y || em_backward(em_sum(em_mul(y, r))) != EM_OK)
        fail_msg("conv2d / backward: %s", em_context_error(ctx));
    out->gx = to_doubles(em_grad(x));
    out->gw = to_doubles(em_grad(w));
    out->gb = to_doubles(em_grad(b));
    size_t es = dt == EM_F32 ? 4 : 8, nw = (size_t)em_tensor_numel(w);
    out->nbits = es * (nw + (size_t)c->oc);
    out->bits = malloc(out->nbits);
    em_tensor_to_host(em_grad(w), out->bits, es * nw);
    em_tensor_to_host(em_grad(b), out->bits + es * nw, es * (size_t)c->oc);
    if (em_context_status(ctx) != EM_OK)
        fail_msg("%s", em_context_error(ctx));
    em_context_free(ctx);
}

static void check_case(const wcase *c, em_dtype dt)
{
    int cg = c->c / c->groups, ocg = c->oc / c->groups;
    int64_t oh = osz(c->h, c->kh, c->sh, c->ph, c->dh), ow = osz(c->w, c->kw, c->sw, c->pw, c->dw);
    int64_t nx = (int64_t)c->n * c->c * c->h * c->w, nw = (int64_t)c->oc * cg * c->kh * c->kw;
    int64_t ny = (int64_t)c->n * c->oc * oh * ow;
    double *xv = rnd_array(nx, -1, 1), *wv = rnd_array(nw, -1, 1), *bv = rnd_array(c->oc, -1, 1);
    double *rv = rnd_array(ny, -1, 1);
    if (dt == EM_F32) {   /* the values the f32 run sees */
        double *all[4] = {xv, wv, bv, rv};
        int64_t len[4] = {nx, nw, c->oc, ny};
        for (int i = 0; i < 4; i++)
            for (int64_t j = 0; j < len[i]; j++)
                all[i][j] = (double)(float)all[i][j];
    }
    /* direct loops: dw, db, dx of sum(y * r), and the sums of magnitudes for the bounds */
    double *gw = calloc((size_t)nw, sizeof(double)), *mw = calloc((size_t)nw, sizeof(double));
    double *gx = calloc((size_t)nx, sizeof(double)), *gb = calloc((size_t)c->oc, sizeof(double));
    for (int n = 0; n < c->n; n++)
        for (int o = 0; o < c->oc; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double g = rv[(((int64_t)n * c->oc + o) * oh + i) * ow + j];
                    gb[o] += g;
                    int grp = o / ocg;
                    for (int ci = 0; ci < cg; ci++)
                        for (int a = 0; a < c->kh; a++)
                            for (int e = 0; e < c->kw; e++) {
                                int64_t yi = i * c->sh - c->ph + a * c->dh;
                                int64_t xj = j * c->sw - c->pw + e * c->dw;
                                if (yi < 0 || yi >= c->h || xj < 0 || xj >= c->w)
                                    continue;
                                int64_t xi = (((int64_t)n * c->c + grp * cg + ci) * c->h + yi) *
                                                 c->w + xj;
                                int64_t wi = (((int64_t)o * cg + ci) * c->kh + a) * c->kw + e;
                                gw[wi] += g * xv[xi];
                                mw[wi] += fabs(g * xv[xi]);
                                gx[xi] += g * wv[wi];
                            }
                }
    grads ref, got;
    run(c, dt, 1, xv, wv, bv, rv, &ref);
    double eps = dt == EM_F32 ? 6e-8 : 1.2e-16;
    int64_t depth = (int64_t)c->n * oh * ow + 8;
    /* Winograd (3x3, stride 1, 32+ channels each way) rounds tile sums that include
     * products of other taps, so its error is bounded by the magnitudes of the nine taps of
     * the same (o, c) together, not by each tap's own */
    const bool wino = c->kh == 3 && c->kw == 3 && c->sh == 1 && c->sw == 1 && c->dh == 1 &&
                      c->dw == 1 && c->groups == 1 && c->c >= 32 && c->oc >= 32;
    for (int64_t i = 0; i < nw; i++) {
        double m = mw[i];
        if (wino) {
            m = 0;
            for (int64_t k = i / 9 * 9; k < i / 9 * 9 + 9; k++)
                m += 4 * mw[k];
        }
        if (!(fabs(ref.gw[i] - gw[i]) <= 2 * eps * (double)depth * m + 1e-300))
            fail_msg("case n=%d c=%d oc=%d groups=%d [%s]: dw[%lld] = %.17g, loops %.17g", c->n,
                     c->c, c->oc, c->groups, em_dtype_name(dt), (long long)i, ref.gw[i], gw[i]);
    }
    for (int o = 0; o < c->oc; o++)
        if (!close_enough(ref.gb[o], gb[o], dt == EM_F32 ? 1e-5 : 1e-12))
            fail_msg("case n=%d c=%d oc=%d [%s]: db[%d] = %.17g, loops %.17g", c->n, c->c,
                     c->oc, em_dtype_name(dt), o, ref.gb[o], gb[o]);
    assert_close_arrays(ref.gx, gx, nx, dt == EM_F32 ? 1e-4 : 1e-12);
    for (int t = 2; t <= 3; t++) {
        run(c, dt, t, xv, wv, bv, rv, &got);
        if (got.nbits != ref.nbits || memcmp(got.bits, ref.bits, ref.nbits))
            fail_msg("case n=%d c=%d oc=%d [%s]: dw/db differ between 1 and %d threads", c->n,
                     c->c, c->oc, em_dtype_name(dt), t);
        grads_free(&got);
    }
    grads_free(&ref);
    free(xv);
    free(wv);
    free(bv);
    free(rv);
    free(gw);
    free(mw);
    free(gx);
    free(gb);
}

static void test_against_loops_and_threads(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_case(&cases[i], EM_F64);
        check_case(&cases[i], EM_F32);
    }
}

/* the same on the portable code (isa = generic) */
static void test_generic_isa(void **state)
{
    (void)state;
    g_isa = "generic";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_case(&cases[i], EM_F64);
        check_case(&cases[i], EM_F32);
    }
    g_isa = NULL;
}

/* the example's second convolution at a batch of 40: Winograd over 14 chunks in 7 groups */
static void test_fashion_shape(void **state)
{
    (void)state;
    const wcase c = {40, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    check_case(&c, EM_F32);
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_loops_and_threads),
        cmocka_unit_test(test_generic_isa),
        cmocka_unit_test(test_fashion_shape),
    };
    return cmocka_run_group_tests_name("cpu conv2d_grad_weight", tests, NULL, NULL);
}
