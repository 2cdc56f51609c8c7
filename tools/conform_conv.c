/* tools/conform_conv.c — ember-conform cases for convolution and pooling (ABI 1.4: im2col,
 * col2im, max_pool2d; ABI 1.5: max_pool2d_grad; ABI 1.6: conv2d's ReLU): conv2d and conv1d
 * (strides, padding, "same", dilation, groups, bias or none, a transposed input, a batch
 * past the column budget, 1x1 kernels), a Sequential's Conv2d then ReLU, and max_pool2d
 * (stride, padding, dilation, ceil_mode, ties on a grid, NaN), forward and the gradients of
 * sum(out * r), against host loops in double; em_gradcheck on small cases. */
#include "conform.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

typedef struct conv_case {
    const char *what;
    int sd;                  /* spatial dims: 2 conv2d, 1 conv1d */
    int64_t n, c, h, w, oc, kh, kw;
    int stride[2], pad[2], dil[2], groups;
    bool same, bias, transposed, gradcheck;
} conv_case;

static const conv_case conv_cases[] = {
    {"3x3 pad 1, bias", 2, 2, 3, 7, 6, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, false, true, false, true},
    {"stride 2x1, pad 0x2, dilation 1x2", 2, 2, 2, 9, 8, 3, 3, 2, {2, 1}, {0, 2}, {1, 2}, 1, false,
     true, false, true},
    {"groups 2, no bias, transposed input", 2, 2, 4, 6, 5, 6, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2,
     false, false, true, true},
    {"depthwise, stride 2", 2, 1, 3, 8, 8, 3, 3, 3, {2, 2}, {1, 1}, {1, 1}, 3, false, true, false,
     false},
    {"1x1", 2, 3, 5, 4, 4, 2, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, false, true, false, true},
    {"same, even kernel", 2, 1, 2, 5, 6, 3, 2, 4, {1, 1}, {0, 0}, {1, 1}, 1, true, true, false,
     true},
    {"batch 40 of 16x28x28 (column chunks)", 2, 40, 16, 28, 28, 8, 3, 3, {1, 1}, {1, 1}, {1, 1},
     1, false, true, false, false},
    {"conv1d stride 2, pad 1, dilation 2", 1, 2, 3, 1, 11, 4, 1, 3, {1, 2}, {0, 1}, {1, 2}, 1,
     false, true, false, true},
};

/* out = conv(x, w) + b in double; gx, gw, gb = gradients of sum(out * r) */
static void conv_ref(const conv_case *k, const int *s, const int *p, const int *d, int64_t oh,
                     int64_t ow, const double *x, const double *w, const double *b, double *out,
                     const double *r, double *gx, double *gw, double *gb)
{
    int64_t cg = k->c / k->groups, ocg = k->oc / k->groups;
    for (int64_t n = 0; n < k->n; n++)
        for (int64_t o = 0; o < k->oc; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    int64_t oi = ((n * k->oc + o) * oh + i) * ow + j;
                    double acc = b ? b[o] : 0, rr = r[oi];
                    if (gb)
                        gb[o] += rr;
                    int64_t g = o / ocg;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t a = 0; a < k->kh; a++)
                            for (int64_t e = 0; e < k->kw; e++) {
                                int64_t y = i * s[0] - p[0] + a * d[0];
                                int64_t xx = j * s[1] - p[1] + e * d[1];
                                if (y < 0 || y >= k->h || xx < 0 || xx >= k->w)
                                    continue;
                                int64_t xi = ((n * k->c + g * cg + c) * k->h + y) * k->w + xx;
                                int64_t wi = ((o * cg + c) * k->kh + a) * k->kw + e;
                                acc += x[xi] * w[wi];
                                gx[xi] += w[wi] * rr;
                                gw[wi] += x[xi] * rr;
                            }
                    out[oi] = acc;
                }
}

static em_tensor *conv_call(const conv_case *k, em_tensor *x, em_tensor *w, em_tensor *b)
{
    const int *st = k->sd == 2 ? k->stride : k->stride + 1, *pd = k->sd == 2 ? k->pad : k->pad + 1;
    const int *dl = k->sd == 2 ? k->dil : k->dil + 1;
    if (k->sd == 2)
        return k->same ? em_conv2d_mode(x, w, b, st, "same", dl, k->groups)
                       : em_conv2d(x, w, b, st, pd, dl, k->groups);
    return k->same ? em_conv1d_mode(x, w, b, st, "same", dl, k->groups)
                   : em_conv1d(x, w, b, st, pd, dl, k->groups);
}

static const conv_case *gc_conv;

static em_tensor *gc_conv_fn(em_tensor *const *in, int n, void *user)
{
    (void)user;
    return conv_call(gc_conv, in[0], in[1], n > 2 ? in[2] : NULL);
}

static void run_conv(cf_row *r, cf_row *rg, const conv_case *k, em_dtype dt)
{
    cf_case_begin();
    int64_t xs4[4] = {k->n, k->c, k->h, k->w}, ws4[4] = {k->oc, k->c / k->groups, k->kh, k->kw};
    int64_t xs3[3] = {k->n, k->c, k->w}, ws3[3] = {k->oc, k->c / k->groups, k->kw};
    int nd = k->sd + 2;
    const int64_t *xs = k->sd == 2 ? xs4 : xs3, *ws = k->sd == 2 ? ws4 : ws3;
    int p[2] = {k->pad[0], k->pad[1]};
    if (k->same)
        for (int i = 0; i < 2; i++)
            p[i] = k->dil[i] * ((i ? k->kw : k->kh) - 1) / 2;
    int64_t oh = k->same ? k->h : (k->h + 2 * p[0] - k->dil[0] * (k->kh - 1) - 1) / k->stride[0] + 1;
    int64_t ow = k->same ? k->w : (k->w + 2 * p[1] - k->dil[1] * (k->kw - 1) - 1) / k->stride[1] + 1;
    cf_gen g = {-1, 1, CF_UNIFORM | CF_AWAY};
    double *xv, *wv, *bv = NULL;
    em_tensor *x = cf_make(r, dt, nd, xs, k->transposed ? CF_TRANSPOSED : CF_CONTIG, &g, &xv, NULL);
    em_tensor *w = cf_make(r, dt, nd, ws, CF_CONTIG, &g, &wv, NULL);
    em_tensor *b = k->bias ? cf_make(r, dt, 1, &k->oc, CF_CONTIG, &g, &bv, NULL) : NULL;
    if (!x || !w || (k->bias && !b))
        goto done;
    if (k->transposed)
        x = em_detach(x);
    em_tensor_set_requires_grad(x, true);
    em_tensor_set_requires_grad(w, true);
    if (b)
        em_tensor_set_requires_grad(b, true);
    em_tensor *y = conv_call(k, x, w, b);
    if (!cf_got(r, y, "conv"))
        goto done;
    int64_t ny = k->n * k->oc * oh * ow, nx = cf_numel(nd, xs), nw = cf_numel(nd, ws);
    double *want = cf_tmp(sizeof(double) * (size_t)(ny + 1));
    double *rv = cf_tmp(sizeof(double) * (size_t)(ny + 1));
    double *gx = cf_tmp(sizeof(double) * (size_t)(nx + 1));
    double *gw = cf_tmp(sizeof(double) * (size_t)(nw + 1));
    double *gb = cf_tmp(sizeof(double) * (size_t)(k->oc + 1));
    memset(gx, 0, sizeof(double) * (size_t)nx);
    memset(gw, 0, sizeof(double) * (size_t)nw);
    memset(gb, 0, sizeof(double) * (size_t)k->oc);
    for (int64_t i = 0; i < ny; i++)
        rv[i] = cf_round(dt, 0.5 + (double)(i % 7) / 8);
    conv_ref(k, k->stride, p, k->dil, oh, ow, xv, wv, bv, want, rv, gx, gw, b ? gb : NULL);
    double tol = cf_tol(dt) * sqrt((double)(k->c / k->groups * k->kh * k->kw));
    int64_t os4[4] = {k->n, k->oc, oh, ow}, os3[3] = {k->n, k->oc, ow};
    const int64_t *os = k->sd == 2 ? os4 : os3;
    double *got = cf_check_shape(r, y, nd, os, dt, "conv") ? cf_read(r, y, "conv") : NULL;
    if (got && cf_compare(r, cf_fmt("%s %s", em_dtype_name(dt), k->what), cf_bucket(dt), got,
                          want, NULL, ny, tol))
        cf_pass(r);
    if (rg) {
        em_tensor *rt = cf_upload(rg, dt, nd, os, rv);
        if (!rt || !cf_status(rg, em_backward(em_sum(em_mul(y, rt))), "backward"))
            goto done;
        double tolg = cf_tol(dt) * sqrt((double)(ny / k->oc + 1));
        double *a = cf_read(rg, em_grad(x), "grad x"), *c = cf_read(rg, em_grad(w), "grad w");
        bool ok = a && c &&
                  cf_compare(rg, cf_fmt("%s %s: grad x", em_dtype_name(dt), k->what),
                             cf_bucket(dt), a, gx, NULL, nx, tolg) &&
                  cf_compare(rg, cf_fmt("%s %s: grad w", em_dtype_name(dt), k->what),
                             cf_bucket(dt), c, gw, NULL, nw, tolg);
        if (ok && b) {
            double *e = cf_read(rg, em_grad(b), "grad bias");
            ok = e && cf_compare(rg, cf_fmt("%s %s: grad bias", em_dtype_name(dt), k->what),
                                 cf_bucket(dt), e, gb, NULL, k->oc, tolg);
        }
        if (ok)
            cf_pass(rg);
        if (ok && k->gradcheck && dt == EM_F64) {
            em_tensor *in[3] = {x, w, b};
            em_gradcheck_result res;
            gc_conv = k;
            em_status st = em_gradcheck(gc_conv_fn, in, b ? 3 : 2, NULL, 1e-6, CF_GC_ATOL_F64,
                                        CF_GC_RTOL_F64, &res);
            if (st != EM_OK || !res.passed)
                cf_fail(rg, "em_gradcheck %s: %s", k->what,
                        st != EM_OK ? em_context_error(cf.ctx) : res.message);
            else
                cf_pass(rg);
        }
    }
done:
    cf_case_end();
}

/* A Sequential's Conv2d then ReLU, f32 (ABI 1.6: the plugin's conv2d may apply the ReLU
 * itself, asked through ip[11]; a plugin that ignores the ask leaves negatives): relu of the
 * reference loops. */
static void run_conv_relu(cf_row *r, const conv_case *k)
{
    cf_case_begin();
    int64_t xs[4] = {k->n, k->c, k->h, k->w}, ws[4] = {k->oc, k->c / k->groups, k->kh, k->kw};
    int64_t oh = (k->h + 2 * k->pad[0] - k->dil[0] * (k->kh - 1) - 1) / k->stride[0] + 1;
    int64_t ow = (k->w + 2 * k->pad[1] - k->dil[1] * (k->kw - 1) - 1) / k->stride[1] + 1;
    cf_gen g = {-1, 1, CF_UNIFORM | CF_AWAY};
    double *xv, *wv, *bv = NULL;
    em_tensor *x = cf_make(r, EM_F32, 4, xs, CF_CONTIG, &g, &xv, NULL);
    em_tensor *w = cf_make(r, EM_F32, 4, ws, CF_CONTIG, &g, &wv, NULL);
    em_tensor *b = k->bias ? cf_make(r, EM_F32, 1, &k->oc, CF_CONTIG, &g, &bv, NULL) : NULL;
    const int kern[2] = {(int)k->kh, (int)k->kw};
    em_module *net = em_sequential(cf.ctx, (em_module *[]){
        em_conv2d_module(cf.ctx, k->c, k->oc, kern, k->stride, k->pad, k->dil, k->groups, k->bias),
        em_relu_module(cf.ctx)}, 2);
    em_tensor *prm[2] = {NULL, NULL};
    if (!x || !w || (k->bias && !b) || !cf_status(r, net ? EM_OK : em_context_status(cf.ctx),
                                                    "Sequential(Conv2d, ReLU)"))
        goto done;
    em_module_parameters(net, NULL, prm, 2);
    em_no_grad_begin(cf.ctx);
    em_status st = em_copy_(prm[0], w);
    if (st == EM_OK && b)
        st = em_copy_(prm[1], b);
    em_no_grad_end(cf.ctx);
    em_tensor_set_requires_grad(x, true);
    em_tensor *y = st == EM_OK ? em_module_forward(net, x) : NULL;
    if (!cf_got(r, y, "Sequential(Conv2d, ReLU)"))
        goto done;
    int64_t ny = k->n * k->oc * oh * ow, os[4] = {k->n, k->oc, oh, ow};
    double *want = cf_tmp(sizeof(double) * (size_t)(ny + 1));
    double *rv = cf_tmp(sizeof(double) * (size_t)(ny + 1));
    int64_t nx = cf_numel(4, xs), nw = cf_numel(4, ws);
    double *gx = cf_tmp(sizeof(double) * (size_t)(nx + 1));
    double *gw = cf_tmp(sizeof(double) * (size_t)(nw + 1));
    memset(gx, 0, sizeof(double) * (size_t)nx);
    memset(gw, 0, sizeof(double) * (size_t)nw);
    for (int64_t i = 0; i < ny; i++)
        rv[i] = 0;
    conv_ref(k, k->stride, k->pad, k->dil, oh, ow, xv, wv, bv, want, rv, gx, gw, NULL);
    for (int64_t i = 0; i < ny; i++)
        want[i] = want[i] < 0 ? 0 : want[i];
    double tol = cf_tol(EM_F32) * sqrt((double)(k->c / k->groups * k->kh * k->kw));
    double *got = cf_check_shape(r, y, 4, os, EM_F32, "conv relu") ? cf_read(r, y, "conv relu")
                                                                   : NULL;
    if (got && cf_compare(r, cf_fmt("f32 %s, then ReLU", k->what), cf_bucket(EM_F32), got, want,
                          NULL, ny, tol))
        cf_pass(r);
done:
    if (net)
        em_module_free(net);
    cf_case_end();
}

/* ------------------------------------------------------------------ max_pool2d */

typedef struct pool_case {
    const char *what;
    int64_t n, c, h, w;
    int k[2], s[2], p[2], d[2];
    bool ceil, transposed;
    int values;              /* cf_values | CF_NAN */
} pool_case;

static const pool_case pool_cases[] = {
    {"2x2", 2, 3, 8, 6, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, false, CF_UNIFORM},
    {"3x2 stride 2x1 pad 1 dilation 1x2", 2, 2, 7, 8, {3, 2}, {2, 1}, {1, 1}, {1, 2}, false,
     false, CF_UNIFORM},
    {"3x3 stride 2 pad 1 ceil_mode", 1, 2, 6, 7, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true, false,
     CF_UNIFORM},
    {"2x2 ceil_mode, last window dropped", 1, 2, 5, 5, {2, 2}, {2, 2}, {1, 1}, {1, 1}, true,
     false, CF_UNIFORM},
    {"ties on a grid, transposed input", 2, 3, 6, 6, {2, 2}, {1, 1}, {0, 0}, {1, 1}, false, true,
     CF_GRID},
    {"NaN", 1, 2, 6, 6, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, false, CF_UNIFORM | CF_NAN},
    {"2x2, odd sizes, transposed input", 2, 3, 7, 9, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, true,
     CF_UNIFORM},
    {"3x3 stride 1 pad 1, ties (overlap)", 2, 2, 7, 6, {3, 3}, {1, 1}, {1, 1}, {1, 1}, false,
     false, CF_GRID},
    {"2x2 stride 3 dilation 2", 1, 3, 9, 10, {2, 2}, {3, 3}, {0, 0}, {2, 2}, false, false,
     CF_UNIFORM},
    {"batch 64 of 32x28x28", 64, 32, 28, 28, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, false,
     CF_UNIFORM},
};

static int64_t pool_size(int64_t in, int k, int s, int p, int d, bool ceil)
{
    int64_t num = in + 2 * p - (int64_t)d * (k - 1) - 1 + (ceil ? s - 1 : 0);
    int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil && (o - 1) * s >= in + p)
        o--;
    return o;
}

static void run_pool(cf_row *r, cf_row *rg, const pool_case *k, em_dtype dt)
{
    cf_case_begin();
    int64_t xs[4] = {k->n, k->c, k->h, k->w};
    int64_t oh = pool_size(k->h, k->k[0], k->s[0], k->p[0], k->d[0], k->ceil);
    int64_t ow = pool_size(k->w, k->k[1], k->s[1], k->p[1], k->d[1], k->ceil);
    cf_gen g = {-2, 2, k->values};
    double *xv;
    em_tensor *x = cf_make(r, dt, 4, xs, k->transposed ? CF_TRANSPOSED : CF_CONTIG, &g, &xv, NULL);
    if (!x)
        goto done;
    if (k->transposed)
        x = em_detach(x);
    em_tensor_set_requires_grad(x, true);
    em_tensor *y = NULL, *ix = NULL;
    if (!cf_status(r, em_max_pool2d_with_indices(x, k->k, k->s, k->p, k->d, k->ceil, &y, &ix),
                   "max_pool2d"))
        goto done;
    int64_t ny = k->n * k->c * oh * ow, nx = cf_numel(4, xs), os[4] = {k->n, k->c, oh, ow};
    double *want = cf_tmp(sizeof(double) * (size_t)(ny + 1));
    int64_t *wix = cf_tmp(sizeof(int64_t) * (size_t)(ny + 1));
    double *gx = cf_tmp(sizeof(double) * (size_t)(nx + 1));
    memset(gx, 0, sizeof(double) * (size_t)nx);
    for (int64_t pl = 0; pl < k->n * k->c; pl++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                double m = -INFINITY;
                int64_t best = -1, first = -1;
                for (int a = 0; a < k->k[0]; a++)
                    for (int e = 0; e < k->k[1]; e++) {
                        int64_t yy = i * k->s[0] - k->p[0] + a * k->d[0];
                        int64_t xx = j * k->s[1] - k->p[1] + e * k->d[1];
                        if (yy < 0 || yy >= k->h || xx < 0 || xx >= k->w)
                            continue;
                        double v = xv[pl * k->h * k->w + yy * k->w + xx];
                        if (first < 0)
                            first = yy * k->w + xx;
                        if (v > m || isnan(v)) {   /* PyTorch's cpu kernel: the last NaN */
                            m = v;
                            best = yy * k->w + xx;
                        }
                    }
                if (best < 0)
                    best = first;
                int64_t oi = (pl * oh + i) * ow + j;
                want[oi] = m;
                wix[oi] = best;
                gx[pl * k->h * k->w + best] += 0.5 + (double)(oi % 7) / 8;
            }
    double *got = cf_check_shape(r, y, 4, os, dt, "max_pool2d") ? cf_read(r, y, "max_pool2d") : NULL;
    int64_t *gi = got ? cf_read_i64(r, ix, "indices") : NULL;
    if (!gi || !cf_compare(r, cf_fmt("%s %s", em_dtype_name(dt), k->what), cf_bucket(dt), got,
                           want, NULL, ny, 0))
        goto done;
    for (int64_t i = 0; i < ny; i++)
        if (gi[i] != wix[i]) {
            cf_fail(r, "%s %s: index %lld is %lld, want %lld", em_dtype_name(dt), k->what,
                    (long long)i, (long long)gi[i], (long long)wix[i]);
            goto done;
        }
    cf_pass(r);
    if (rg) {
        double *rv = cf_tmp(sizeof(double) * (size_t)(ny + 1));
        for (int64_t i = 0; i < ny; i++)
            rv[i] = 0.5 + (double)(i % 7) / 8;
        em_tensor *rt = cf_upload(rg, dt, 4, os, rv);
        if (!rt || !cf_status(rg, em_backward(em_sum(em_mul(y, rt))), "backward"))
            goto done;
        double *a = cf_read(rg, em_grad(x), "grad x");
        if (a && cf_compare(rg, cf_fmt("%s %s: grad x", em_dtype_name(dt), k->what),
                            cf_bucket(dt), a, gx, NULL, nx, cf_tol(dt) * 4))
            cf_pass(rg);
    }
done:
    cf_case_end();
}

void cf_run_conv(void)
{
    static const em_dtype dts[2] = {EM_F32, EM_F64};
    for (int di = 0; di < 2; di++) {
        em_dtype dt = dts[di];
        if (!cf_dtype_enabled(dt))
            continue;
        for (size_t i = 0; i < NELEMS(conv_cases); i++) {
            const conv_case *k = &conv_cases[i];
            const char *name = k->sd == 2 ? "conv2d" : "conv1d";
            /* conv2d and its gradients (optional, ABI 1.4) where the plugin has them, the
             * lowering otherwise */
            cf_row *r = cf_row_get(name, "conv2d im2col gemm");
            cf_row *rg = cf_row_get(k->sd == 2 ? "conv2d.grad" : "conv1d.grad",
                                    "conv2d_grad_input conv2d_grad_weight im2col col2im gemm sum");
            if (r)
                run_conv(r, rg, k, dt);
        }
        for (size_t i = 0; i < NELEMS(conv_cases) && dt == EM_F32; i++) {
            /* ABI 1.6: the ReLU asked of conv2d (ip[11]) where the plugin has it */
            cf_row *r = cf_row_get("conv2d.relu", "conv2d relu im2col gemm");
            if (r && conv_cases[i].sd == 2 && !conv_cases[i].same)
                run_conv_relu(r, &conv_cases[i]);
        }
        for (size_t i = 0; i < NELEMS(pool_cases); i++) {
            cf_row *r = cf_row_get("max_pool2d", "max_pool2d");
            /* the gradient: max_pool2d_grad (optional, ABI 1.5) where the plugin has it,
             * a fill and a scatter_add otherwise */
            cf_row *rg = cf_row_get("max_pool2d.grad",
                                    "max_pool2d max_pool2d_grad scatter_add fill");
            if (r)
                run_pool(r, rg, &pool_cases[i], dt);
        }
    }
}
