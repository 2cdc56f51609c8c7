/* tests/test_cpu_conv.c — the cpu backend's whole-convolution kernels (conv2d: Winograd
 * F(2x2, 3x3) and the direct kernel for few taps; conv2d_grad_input: Winograd), called
 * through the plugin's ops table:
 *  - values against a reference loop in double, over padding 0, 1, 2, odd sizes, outputs
 *    smaller than a tile, batch 1, bias or none, several chunks of tile rows, output-channel
 *    counts that are not multiples of the direct kernel's block, f32 (within 2e-6 of the sum
 *    of the products' magnitudes) and f64 (1e-13 of it), on the best and the portable ISA;
 *  - the same bits on 1 and 2 threads;
 *  - every output element written (the output starts as NaN);
 *  - calls outside what the kernels run (stride, dilation, groups, padding past 2, kernels
 *    other than 3x3 with many taps, too few input channels for Winograd) decline with
 *    EM_ERR_UNSUPPORTED and leave the output as it was.
 * conv2d with ABI 1.6's relu (ip[11]): relu of the plain output, bit for bit.
 * conv2d_grad_weight with few taps per output channel (dot products, not declined) against
 * loops, on both ISAs and 1 and 2 threads.
 * Through the core, the cpu backend's conv2d and its gradients (the weight's and bias's
 * native; the input's native for C >= 16, lowered for C = 1) against the same loops. */
#include "backend_harness.h"

#include <dlfcn.h>

#include "test_host.h"

static void *g_dl;
static em_backend_entry_fn g_entry;

typedef struct inst {
    em_backend be;
    void *dev;
} inst;

static void inst_open(inst *in, int threads, const char *simd)
{
    char tv[16];
    snprintf(tv, sizeof tv, "%d", threads);
    em_config_kv cfg[2] = {{"threads", tv}, {"isa", simd}};
    memset(in, 0, sizeof *in);
    in->be.struct_size = sizeof in->be;
    if (g_entry(&g_host, NULL, cfg, simd ? 2 : 1, &in->be) != EM_OK)
        fail_msg("cpu entry: %s", g_msg);
    if (in->be.ops->device_open(in->be.ctx, 0, &in->dev) != EM_OK)
        fail_msg("cpu device_open: %s", g_msg);
}

static void inst_close(inst *in)
{
    in->be.ops->device_close(in->dev);
    in->be.ops->shutdown(in->be.ctx);
}

static uint64_t g_rng = 0x2545f4914f6cdd1dull;

static double urand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

typedef struct ccase {
    int64_t n, c, h, w, oc, kh, kw, ph, pw;
    bool bias;
} ccase;

/* Winograd (3x3, C >= 5; the input gradient from C >= 16) and direct (C*kh*kw <= 36) shapes:
 * padding 0, 1, 2 (and unequal), odd sizes, outputs smaller than a tile, batch 1, several
 * chunks of tile rows (C = OC = 64 on 30x30) */
static const ccase g_cases[] = {
    {2, 5, 6, 6, 5, 3, 3, 1, 1, true},     {1, 5, 7, 5, 3, 3, 3, 0, 0, false},
    {2, 6, 5, 9, 4, 3, 3, 2, 2, true},     {1, 5, 3, 3, 2, 3, 3, 0, 0, true},
    {3, 8, 1, 1, 4, 3, 3, 1, 1, false},    {1, 5, 2, 3, 3, 3, 3, 2, 1, true},
    {2, 7, 4, 4, 6, 3, 3, 1, 2, false},    {3, 64, 30, 30, 64, 3, 3, 1, 1, true},
    {2, 32, 14, 14, 64, 3, 3, 1, 1, true}, {1, 16, 3, 3, 4, 3, 3, 0, 0, false},
    {2, 16, 5, 9, 6, 3, 3, 2, 2, true},    {1, 17, 1, 1, 4, 3, 3, 1, 1, true},
    {2, 16, 7, 5, 5, 3, 3, 0, 1, false},   {1, 20, 2, 2, 7, 3, 3, 2, 2, true},
    {2, 1, 28, 28, 32, 3, 3, 1, 1, true},  {1, 1, 5, 7, 3, 3, 3, 0, 0, false},
    {1, 1, 2, 2, 5, 3, 3, 2, 2, true},     {3, 1, 9, 20, 6, 3, 3, 1, 1, true},
    {2, 4, 6, 6, 5, 3, 3, 1, 1, true},     {1, 4, 2, 3, 3, 3, 3, 2, 1, false},
    {2, 16, 5, 6, 7, 1, 1, 0, 0, true},    {2, 1, 6, 9, 5, 3, 5, 1, 2, false},
    {1, 1, 1, 40, 9, 1, 3, 0, 1, true},  {1, 6, 5, 37, 4, 3, 3, 2, 2, true},
    {2, 16, 4, 33, 5, 3, 3, 0, 0, false}, {1, 5, 3, 17, 3, 3, 3, 1, 1, true},
};

static int64_t out_dim(int64_t in, int64_t k, int64_t p)
{
    return in + 2 * p - k + 1;
}

/* reference: y (and the sums of the products' magnitudes) in double */
static void ref_forward(const ccase *c, const double *x, const double *w, const double *b,
                        double *y, double *mag)
{
    const int64_t oh = out_dim(c->h, c->kh, c->ph), ow = out_dim(c->w, c->kw, c->pw);
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t o = 0; o < c->oc; o++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    double s = b ? b[o] : 0.0, m = b ? fabs(b[o]) : 0.0;
                    for (int64_t ci = 0; ci < c->c; ci++)
                        for (int64_t i = 0; i < c->kh; i++)
                            for (int64_t j = 0; j < c->kw; j++) {
                                int64_t iy = oy - c->ph + i, ix = ox - c->pw + j;
                                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                                    continue;
                                double t = w[((o * c->c + ci) * c->kh + i) * c->kw + j] *
                                           x[((n * c->c + ci) * c->h + iy) * c->w + ix];
                                s += t;
                                m += fabs(t);
                            }
                    int64_t k = ((n * c->oc + o) * oh + oy) * ow + ox;
                    y[k] = s;
                    mag[k] = m;
                }
}

/* reference: dx for the output gradient dy */
static void ref_grad_input(const ccase *c, const double *dy, const double *w, double *dx,
                           double *mag)
{
    const int64_t oh = out_dim(c->h, c->kh, c->ph), ow = out_dim(c->w, c->kw, c->pw);
    for (int64_t k = 0; k < c->n * c->c * c->h * c->w; k++)
        dx[k] = mag[k] = 0;
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t o = 0; o < c->oc; o++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++)
                    for (int64_t ci = 0; ci < c->c; ci++)
                        for (int64_t i = 0; i < c->kh; i++)
                            for (int64_t j = 0; j < c->kw; j++) {
                                int64_t iy = oy - c->ph + i, ix = ox - c->pw + j;
                                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                                    continue;
                                double t = w[((o * c->c + ci) * c->kh + i) * c->kw + j] *
                                           dy[((n * c->oc + o) * oh + oy) * ow + ox];
                                int64_t k = ((n * c->c + ci) * c->h + iy) * c->w + ix;
                                dx[k] += t;
                                mag[k] += fabs(t);
                            }
}

static void *conv_buf(const double *v, int64_t n, int32_t dt)
{
    if (dt == EM_F64) {
        double *p = malloc(sizeof *p * (size_t)(n ? n : 1));
        for (int64_t i = 0; i < n; i++)
            p[i] = v ? v[i] : NAN;
        return p;
    }
    float *p = malloc(sizeof *p * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        p[i] = v ? (float)v[i] : NAN;
    return p;
}

static em_kview view(void *buf, int32_t dt, int nd, const int64_t *shape)
{
    em_kview v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    v.buf = buf;
    v.dtype = dt;
    v.ndim = nd;
    int64_t s = 1;
    for (int d = nd - 1; d >= 0; d--) {
        v.shape[d] = shape[d];
        v.strides[d] = s;
        s *= shape[d];
    }
    return v;
}

/* One kernel call: grad = 0 conv2d (ins x, w[, b]), 1 conv2d_grad_input (ins dy, w). ip[]
 * as the core builds it, with stride, dilation and groups given. */
static int g_n_ip = 11;   /* 12: conv2d's ABI 1.6 relu in ip[11] */

static em_status call(inst *in, int grad, int32_t dt, const int64_t *s0, void *a0,
                      const int64_t *sw, void *w, const int64_t *sb, void *b,
                      const int64_t *so, void *out, const int64_t *ip)
{
    em_kview v0 = view(a0, dt, 4, s0), vw = view(w, dt, 4, sw), vo = view(out, dt, 4, so);
    em_kview vb = b ? view(b, dt, 1, sb) : vo;
    const em_kview *ins[3] = {&v0, &vw, &vb}, *outs[1] = {&vo};
    em_kargs a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.out = &vo;
    a.in[0] = &v0;
    a.in[1] = &vw;
    a.in[2] = b ? &vb : NULL;
    a.n_out = 1;
    a.n_in = b ? 3 : 2;
    a.outs = outs;
    a.ins = ins;
    a.n_ip = (uint32_t)g_n_ip;
    a.ip = ip;
    em_kernel_fn k = grad ? in->be.ops->conv2d_grad_input : in->be.ops->conv2d;
    assert_non_null(k);
    return k(in->dev, &a);
}

static double elem(const void *p, int32_t dt, int64_t i)
{
    return dt == EM_F64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

/* Run case c (forward, and the input gradient for 3x3 Winograd shapes) on `in`, check it
 * against the reference; return the outputs (malloc'ed) for the bit comparisons. */
static void run_case(inst *in, const ccase *c, int32_t dt, void **yout, void **dxout)
{
    const int64_t oh = out_dim(c->h, c->kh, c->ph), ow = out_dim(c->w, c->kw, c->pw);
    const int64_t nx = c->n * c->c * c->h * c->w, nw = c->oc * c->c * c->kh * c->kw;
    const int64_t ny = c->n * c->oc * oh * ow;
    double *x = malloc(sizeof *x * (size_t)nx), *w = malloc(sizeof *w * (size_t)nw);
    double *b = malloc(sizeof *b * (size_t)c->oc), *dy = malloc(sizeof *dy * (size_t)ny);
    g_rng = 0x2545f4914f6cdd1dull ^ (uint64_t)(c->c * 131 + c->oc * 7 + c->h);
    for (int64_t i = 0; i < nx; i++)
        x[i] = urand();
    for (int64_t i = 0; i < nw; i++)
        w[i] = urand();
    for (int64_t i = 0; i < c->oc; i++)
        b[i] = urand();
    for (int64_t i = 0; i < ny; i++)
        dy[i] = urand();
    const int64_t sx[4] = {c->n, c->c, c->h, c->w}, sw[4] = {c->oc, c->c, c->kh, c->kw};
    const int64_t sy[4] = {c->n, c->oc, oh, ow}, sb[1] = {c->oc};
    const int64_t ip[11] = {c->kh, c->kw, 1, 1, c->ph, c->pw, 1, 1, oh, ow, 1};
    const double rel = dt == EM_F64 ? 1e-13 : 2e-6;
    double *ry = malloc(sizeof *ry * (size_t)ny), *my = malloc(sizeof *my * (size_t)ny);
    ref_forward(c, x, w, c->bias ? b : NULL, ry, my);
    void *bx = conv_buf(x, nx, dt), *bw = conv_buf(w, nw, dt), *bb = conv_buf(b, c->oc, dt);
    void *by = conv_buf(NULL, ny, dt);
    if (call(in, 0, dt, sx, bx, sw, bw, sb, c->bias ? bb : NULL, sy, by, ip) != EM_OK)
        fail_msg("conv2d %lldx%lld C %lld: %s", (long long)c->kh, (long long)c->kw,
                 (long long)c->c, g_msg);
    for (int64_t i = 0; i < ny; i++)
        if (!(fabs(elem(by, dt, i) - ry[i]) <= rel * (my[i] + 1e-30)))
            fail_msg("conv2d case C %lld OC %lld %lldx%lld pad %lld,%lld [%s]: y[%lld] = %.17g, "
                     "want %.17g", (long long)c->c, (long long)c->oc, (long long)c->h,
                     (long long)c->w, (long long)c->ph, (long long)c->pw,
                     dt == EM_F64 ? "f64" : "f32", (long long)i, elem(by, dt, i), ry[i]);
    *yout = by;
    *dxout = NULL;
    if (c->kh == 3 && c->kw == 3 && c->c >= 16 && c->oc >= 4) {
        double *rx = malloc(sizeof *rx * (size_t)nx), *mx = malloc(sizeof *mx * (size_t)nx);
        ref_grad_input(c, dy, w, rx, mx);
        void *bdy = conv_buf(dy, ny, dt), *bdx = conv_buf(NULL, nx, dt);
        if (call(in, 1, dt, sy, bdy, sw, bw, NULL, NULL, sx, bdx, ip) != EM_OK)
            fail_msg("conv2d_grad_input C %lld: %s", (long long)c->c, g_msg);
        for (int64_t i = 0; i < nx; i++)
            if (!(fabs(elem(bdx, dt, i) - rx[i]) <= rel * (mx[i] + 1e-30)))
                fail_msg("conv2d_grad_input case C %lld OC %lld %lldx%lld pad %lld,%lld [%s]: "
                         "dx[%lld] = %.17g, want %.17g", (long long)c->c, (long long)c->oc,
                         (long long)c->h, (long long)c->w, (long long)c->ph, (long long)c->pw,
                         dt == EM_F64 ? "f64" : "f32", (long long)i, elem(bdx, dt, i), rx[i]);
        *dxout = bdx;
        free(bdy);
        free(rx);
        free(mx);
    }
    free(bx);
    free(bw);
    free(bb);
    free(ry);
    free(my);
    free(x);
    free(w);
    free(b);
    free(dy);
}

static void run_all(const char *simd)
{
    inst one, two;
    inst_open(&one, 1, simd);
    inst_open(&two, 2, simd);
    for (size_t k = 0; k < sizeof g_cases / sizeof g_cases[0]; k++)
        for (int d = 0; d < 2; d++) {
            const ccase *c = &g_cases[k];
            const int32_t dt = d ? EM_F64 : EM_F32;
            const size_t es = d ? 8 : 4;
            void *y1, *dx1, *y2, *dx2;
            run_case(&one, c, dt, &y1, &dx1);
            run_case(&two, c, dt, &y2, &dx2);
            const int64_t ny = c->n * c->oc * out_dim(c->h, c->kh, c->ph) *
                               out_dim(c->w, c->kw, c->pw);
            if (memcmp(y1, y2, es * (size_t)ny))
                fail_msg("conv2d case %zu: 1 and 2 threads differ", k);
            if (dx1 && memcmp(dx1, dx2, es * (size_t)(c->n * c->c * c->h * c->w)))
                fail_msg("conv2d_grad_input case %zu: 1 and 2 threads differ", k);
            free(y1);
            free(y2);
            free(dx1);
            free(dx2);
        }
    inst_close(&one);
    inst_close(&two);
}

static void test_values_best(void **state)
{
    (void)state;
    run_all(NULL);
}

static void test_values_generic(void **state)
{
    (void)state;
    run_all("generic");
}

/* Calls outside the kernels' shapes: EM_ERR_UNSUPPORTED, the output untouched. */
static void test_declines(void **state)
{
    (void)state;
    inst in;
    inst_open(&in, 2, NULL);
    typedef struct dcase {
        int grad;
        int64_t c, oc, k, stride, pad, dil, groups;
    } dcase;
    static const dcase ds[] = {
        {0, 8, 4, 3, 2, 1, 1, 1},   /* stride 2 */
        {0, 8, 4, 3, 1, 1, 2, 1},   /* dilation 2 */
        {0, 8, 4, 3, 1, 1, 1, 2},   /* groups 2 */
        {0, 8, 4, 3, 1, 3, 1, 1},   /* padding 3 */
        {0, 4, 4, 5, 1, 2, 1, 1},   /* 5x5, 100 taps */
        {0, 2, 4, 3, 1, 1, 2, 1},   /* direct-sized, dilation 2 */
        {0, 5, 4, 5, 1, 2, 1, 1},   /* 5x5 with 5 channels (125 taps) */
        {0, 1, 4, 3, 2, 1, 1, 1},   /* direct-sized, stride 2 */
        {1, 16, 2, 3, 1, 1, 1, 1},  /* input gradient of 2 output channels */
        {1, 8, 4, 3, 1, 1, 1, 1},   /* input gradient into 8 channels */
        {1, 16, 4, 3, 2, 1, 1, 1},  /* input gradient, stride 2 */
        {1, 16, 4, 5, 1, 2, 1, 1},  /* input gradient, 5x5 */
    };
    for (size_t k = 0; k < sizeof ds / sizeof ds[0]; k++)
        for (int d = 0; d < 2; d++) {
            const dcase *c = &ds[k];
            const int32_t dt = d ? EM_F64 : EM_F32;
            const int64_t H = 9, ext = c->dil * (c->k - 1) + 1;
            const int64_t oh = (H + 2 * c->pad - ext) / c->stride + 1;
            const int64_t sx[4] = {2, c->c, H, H}, sw[4] = {c->oc, c->c / c->groups, c->k, c->k};
            const int64_t sy[4] = {2, c->oc, oh, oh};
            const int64_t ip[11] = {c->k, c->k, c->stride, c->stride, c->pad, c->pad,
                                    c->dil, c->dil, oh, oh, c->groups};
            const int64_t nx = 2 * c->c * H * H, ny = 2 * c->oc * oh * oh;
            const int64_t nw = c->oc * (c->c / c->groups) * c->k * c->k;
            double *v = malloc(sizeof *v * (size_t)(nx > ny ? nx : ny));
            for (int64_t i = 0; i < (nx > ny ? nx : ny); i++)
                v[i] = 0.5 + (double)(i % 7);
            void *bx = conv_buf(v, nx, dt), *bw = conv_buf(v, nw, dt), *by = conv_buf(v, ny, dt);
            void *ref = conv_buf(v, c->grad ? nx : ny, dt);
            g_msg[0] = 0;
            em_status st = c->grad ? call(&in, 1, dt, sy, by, sw, bw, NULL, NULL, sx, bx, ip)
                                   : call(&in, 0, dt, sx, bx, sw, bw, NULL, NULL, sy, by, ip);
            if (st != EM_ERR_UNSUPPORTED)
                fail_msg("decline case %zu: status %d (%s)", k, (int)st, g_msg);
            assert_true(strlen(g_msg) > 0);
            const size_t es = d ? 8 : 4;
            assert_memory_equal(c->grad ? bx : by, ref, es * (size_t)(c->grad ? nx : ny));
            free(v);
            free(bx);
            free(bw);
            free(by);
            free(ref);
        }
    inst_close(&in);
}

/* Through the core on the cpu backend: y and the three gradients of a Winograd-shaped and
 * a direct-shaped conv2d against the reference loops (the weight's and bias's gradients
 * native; the input's native for the first, lowered for the second). */
static void test_through_core(void **state)
{
    (void)state;
    static const ccase cs[] = {{2, 16, 7, 6, 5, 3, 3, 1, 1, true}, {3, 1, 9, 10, 6, 3, 3, 1, 1, true}};
    for (size_t k = 0; k < 2; k++) {
        const ccase *c = &cs[k];
        const int64_t oh = out_dim(c->h, 3, c->ph), ow = out_dim(c->w, 3, c->pw);
        const int64_t nx = c->n * c->c * c->h * c->w, nw = c->oc * c->c * 9;
        const int64_t ny = c->n * c->oc * oh * ow;
        double *x = rnd_array(nx, -1, 1), *w = rnd_array(nw, -1, 1), *b = rnd_array(c->oc, -1, 1);
        double *dy = rnd_array(ny, -1, 1);
        double *ry = malloc(sizeof *ry * (size_t)ny), *my = malloc(sizeof *my * (size_t)ny);
        double *rx = malloc(sizeof *rx * (size_t)nx), *mx = malloc(sizeof *mx * (size_t)nx);
        ref_forward(c, x, w, b, ry, my);
        ref_grad_input(c, dy, w, rx, mx);
        em_scope_begin(g_ctx);
        const int64_t sx[4] = {c->n, c->c, c->h, c->w}, sw[4] = {c->oc, c->c, 3, 3};
        const int64_t sy[4] = {c->n, c->oc, oh, ow}, sb[1] = {c->oc};
        em_tensor *tx = from_doubles(EM_F32, 4, sx, x), *tw = from_doubles(EM_F32, 4, sw, w);
        em_tensor *tb = from_doubles(EM_F32, 1, sb, b), *tdy = from_doubles(EM_F32, 4, sy, dy);
        em_tensor_set_requires_grad(tx, true);
        em_tensor_set_requires_grad(tw, true);
        em_tensor_set_requires_grad(tb, true);
        const int pad[2] = {(int)c->ph, (int)c->pw};
        em_tensor *y = em_conv2d(tx, tw, tb, NULL, pad, NULL, 1);
        assert_non_null(y);
        assert_int_equal(em_backward(em_sum(em_mul(y, tdy))), EM_OK);
        double *gy = to_doubles(y), *gx = to_doubles(em_grad(tx)), *gw = to_doubles(em_grad(tw));
        double *gb = to_doubles(em_grad(tb));
        for (int64_t i = 0; i < ny; i++)
            assert_true(fabs(gy[i] - ry[i]) <= 2e-6 * my[i] + 1e-6);
        for (int64_t i = 0; i < nx; i++)
            assert_true(fabs(gx[i] - rx[i]) <= 2e-6 * mx[i] + 1e-6);
        for (int64_t o = 0; o < c->oc; o++) {
            double sbias = 0, mb = 0;
            for (int64_t n = 0; n < c->n; n++)
                for (int64_t p = 0; p < oh * ow; p++) {
                    sbias += dy[(n * c->oc + o) * oh * ow + p];
                    mb += fabs(dy[(n * c->oc + o) * oh * ow + p]);
                }
            assert_true(fabs(gb[o] - sbias) <= 2e-6 * mb + 1e-6);
            for (int64_t ci = 0; ci < c->c; ci++)
                for (int64_t i = 0; i < 3; i++)
                    for (int64_t j = 0; j < 3; j++) {
                        double s = 0, m = 0;
                        for (int64_t n = 0; n < c->n; n++)
                            for (int64_t oy = 0; oy < oh; oy++)
                                for (int64_t ox = 0; ox < ow; ox++) {
                                    int64_t iy = oy - c->ph + i, ix = ox - c->pw + j;
                                    if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                                        continue;
                                    double t = dy[((n * c->oc + o) * oh + oy) * ow + ox] *
                                               x[((n * c->c + ci) * c->h + iy) * c->w + ix];
                                    s += t;
                                    m += fabs(t);
                                }
                        double got = gw[((o * c->c + ci) * 3 + i) * 3 + j];
                        if (!(fabs(got - s) <= 2e-6 * m + 1e-6))
                            fail_msg("grad of w [%lld]: %.9g, want %.9g", (long long)o, got, s);
                    }
        }
        em_scope_end(g_ctx);
        assert_int_equal(em_context_status(g_ctx), EM_OK);
        free(gy);
        free(gx);
        free(gw);
        free(gb);
        free(x);
        free(w);
        free(b);
        free(dy);
        free(ry);
        free(my);
        free(rx);
        free(mx);
    }
}

/* conv2d with ABI 1.6's ip[11] = 1: relu of the plain call's output, bit for bit (v < 0 ? 0 :
 * v, so a NaN passes, as the relu kernel passes it), through the direct and the Winograd
 * kernels, on both ISAs; ip[11] = 2 is refused with the output untouched. */
static void test_conv_relu_flag(void **state)
{
    (void)state;
    static const ccase cs[] = {{2, 1, 9, 10, 6, 3, 3, 1, 1, true},
                               {2, 8, 7, 6, 5, 3, 3, 1, 1, true}};
    for (int isa = 0; isa < 2; isa++)
        for (size_t k = 0; k < 2; k++)
            for (int d = 0; d < 2; d++) {
                const ccase *c = &cs[k];
                const int32_t dt = d ? EM_F64 : EM_F32;
                const size_t es = d ? 8 : 4;
                const int64_t oh = out_dim(c->h, 3, c->ph), ow = out_dim(c->w, 3, c->pw);
                const int64_t nx = c->n * c->c * c->h * c->w, nw = c->oc * c->c * 9;
                const int64_t ny = c->n * c->oc * oh * ow;
                double *x = rnd_array(nx, -1, 1), *w = rnd_array(nw, -1, 1);
                double *b = rnd_array(c->oc, -1, 1);
                x[nx / 2] = NAN;
                const int64_t sx[4] = {c->n, c->c, c->h, c->w}, sw[4] = {c->oc, c->c, 3, 3};
                const int64_t sy[4] = {c->n, c->oc, oh, ow}, sb[1] = {c->oc};
                int64_t ip[12] = {3, 3, 1, 1, c->ph, c->pw, 1, 1, oh, ow, 1, 0};
                void *bx = conv_buf(x, nx, dt), *bw = conv_buf(w, nw, dt);
                void *bb = conv_buf(b, c->oc, dt), *plain = conv_buf(NULL, ny, dt);
                void *fused = conv_buf(NULL, ny, dt), *bad = conv_buf(NULL, ny, dt);
                void *untouched = conv_buf(NULL, ny, dt);
                inst in;
                inst_open(&in, 2, isa ? "generic" : NULL);
                assert_int_equal(call(&in, 0, dt, sx, bx, sw, bw, sb, bb, sy, plain, ip), EM_OK);
                g_n_ip = 12;
                ip[11] = 1;
                assert_int_equal(call(&in, 0, dt, sx, bx, sw, bw, sb, bb, sy, fused, ip), EM_OK);
                ip[11] = 2;
                assert_int_equal(call(&in, 0, dt, sx, bx, sw, bw, sb, bb, sy, bad, ip),
                                 EM_ERR_INVALID);
                g_n_ip = 11;
                assert_memory_equal(bad, untouched, es * (size_t)ny);
                int cut = 0, nans = 0;
                for (int64_t i = 0; i < ny; i++) {
                    double v = elem(plain, dt, i);
                    cut += v < 0;
                    nans += isnan(v);
                    unsigned char want[8];
                    if (d) {
                        double r = v < 0 ? 0.0 : v;
                        memcpy(want, &r, 8);
                    } else {
                        float r = (float)v < 0 ? 0.0f : ((const float *)plain)[i];
                        memcpy(want, &r, 4);
                    }
                    if (memcmp((const char *)fused + es * (size_t)i, want, es))
                        fail_msg("relu case %zu [%s]: y[%lld] = %.9g, plain %.9g", k,
                                 d ? "f64" : "f32", (long long)i, elem(fused, dt, i), v);
                }
                assert_true(cut > 0 && nans > 0);   /* the cases do cut, and carry a NaN */
                inst_close(&in);
                free(x);
                free(w);
                free(b);
                free(bx);
                free(bw);
                free(bb);
                free(plain);
                free(fused);
                free(bad);
                free(untouched);
            }
}

/* conv2d_grad_weight with few taps per output channel (C/g*kh*kw < 16: a first layer, a
 * depthwise one) runs in the kernel as dot products, not declined: dw and db against loops in
 * double, on the best and the portable ISA, 1 and 2 threads giving the same bits. */
static void test_wgrad_few_taps(void **state)
{
    (void)state;
    typedef struct fcase {
        int64_t n, c, h, w, oc, groups, pad;
    } fcase;
    static const fcase fs[] = {
        {20, 1, 28, 28, 32, 1, 1},   /* the example's first layer, three image groups */
        {9, 1, 5, 7, 3, 1, 0},       /* an odd channel count, a row tail (15 outputs) */
        {3, 4, 6, 6, 4, 4, 1},       /* depthwise */
    };
    for (int isa = 0; isa < 2; isa++)
        for (size_t k = 0; k < sizeof fs / sizeof fs[0]; k++)
            for (int d = 0; d < 2; d++) {
                const fcase *c = &fs[k];
                const int32_t dt = d ? EM_F64 : EM_F32;
                const int64_t oh = c->h + 2 * c->pad - 2, ow = c->w + 2 * c->pad - 2;
                const int64_t cg = c->c / c->groups, ocg = c->oc / c->groups;
                const int64_t nx = c->n * c->c * c->h * c->w, ny = c->n * c->oc * oh * ow;
                const int64_t nw = c->oc * cg * 9;
                double *x = rnd_array(nx, -1, 1), *dy = rnd_array(ny, -1, 1);
                double *rw = calloc((size_t)nw, sizeof *rw), *mw = calloc((size_t)nw, sizeof *mw);
                double *rb = calloc((size_t)c->oc, sizeof *rb);
                for (int64_t n = 0; n < c->n; n++)
                    for (int64_t o = 0; o < c->oc; o++)
                        for (int64_t oy = 0; oy < oh; oy++)
                            for (int64_t ox = 0; ox < ow; ox++) {
                                double g = dy[((n * c->oc + o) * oh + oy) * ow + ox];
                                rb[o] += g;
                                for (int64_t ci = 0; ci < cg; ci++)
                                    for (int64_t t = 0; t < 9; t++) {
                                        int64_t iy = oy - c->pad + t / 3, ix = ox - c->pad + t % 3;
                                        if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                                            continue;
                                        int64_t xc = (o / ocg) * cg + ci;
                                        double v = g * x[((n * c->c + xc) * c->h + iy) * c->w + ix];
                                        rw[(o * cg + ci) * 9 + t] += v;
                                        mw[(o * cg + ci) * 9 + t] += fabs(v);
                                    }
                            }
                const int64_t sx[4] = {c->n, c->c, c->h, c->w}, sy[4] = {c->n, c->oc, oh, ow};
                const int64_t sw[4] = {c->oc, cg, 3, 3}, sb[1] = {c->oc};
                const int64_t ip[11] = {3, 3, 1, 1, c->pad, c->pad, 1, 1, oh, ow, c->groups};
                void *bx = conv_buf(x, nx, dt), *bdy = conv_buf(dy, ny, dt);
                void *got[2][2];
                for (int th = 0; th < 2; th++) {
                    inst in;
                    inst_open(&in, th + 1, isa ? "generic" : NULL);
                    got[th][0] = conv_buf(NULL, nw, dt);
                    got[th][1] = conv_buf(NULL, c->oc, dt);
                    em_kview vx = view(bx, dt, 4, sx), vdy = view(bdy, dt, 4, sy);
                    em_kview vw = view(got[th][0], dt, 4, sw), vb = view(got[th][1], dt, 1, sb);
                    const em_kview *ins[2] = {&vx, &vdy}, *outs[2] = {&vw, &vb};
                    em_kargs a;
                    memset(&a, 0, sizeof a);
                    a.struct_size = sizeof a;
                    a.out = &vw;
                    a.in[0] = &vx;
                    a.in[1] = &vdy;
                    a.n_in = 2;
                    a.n_out = 2;
                    a.ins = ins;
                    a.outs = outs;
                    a.n_ip = 11;
                    a.ip = ip;
                    assert_non_null(in.be.ops->conv2d_grad_weight);
                    em_status st = in.be.ops->conv2d_grad_weight(in.dev, &a);
                    if (st != EM_OK)
                        fail_msg("few-tap case %zu [%s]: status %d (%s)", k,
                                 dt == EM_F64 ? "f64" : "f32", (int)st, g_msg);
                    inst_close(&in);
                }
                const double eps = dt == EM_F64 ? 1.2e-16 : 6e-8;
                const double depth = (double)(c->n * oh * ow + 16);
                for (int64_t i = 0; i < nw; i++)
                    if (!(fabs(elem(got[0][0], dt, i) - rw[i]) <= 2 * eps * depth * mw[i] + 1e-300))
                        fail_msg("few-tap case %zu [%s, %s]: dw[%lld] = %.17g, want %.17g", k,
                                 dt == EM_F64 ? "f64" : "f32", isa ? "generic" : "best",
                                 (long long)i, elem(got[0][0], dt, i), rw[i]);
                for (int64_t o = 0; o < c->oc; o++)
                    assert_true(fabs(elem(got[0][1], dt, o) - rb[o]) <=
                                (dt == EM_F64 ? 1e-12 : 1e-5) * (1 + fabs(rb[o])));
                const size_t es = d ? 8 : 4;
                if (memcmp(got[0][0], got[1][0], es * (size_t)nw) ||
                    memcmp(got[0][1], got[1][1], es * (size_t)c->oc))
                    fail_msg("few-tap case %zu: 1 and 2 threads differ", k);
                for (int th = 0; th < 2; th++) {
                    free(got[th][0]);
                    free(got[th][1]);
                }
                free(bx);
                free(bdy);
                free(x);
                free(dy);
                free(rw);
                free(mw);
                free(rb);
            }
}

static int load_plugin(void **state)
{
    (void)state;
    return (g_entry = th_plugin_entry("cpu", &g_dl)) ? 0 : -1;
}

static int unload_plugin(void **state)
{
    (void)state;
    if (g_dl)
        dlclose(g_dl);
    return 0;
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_best),
        cmocka_unit_test(test_values_generic),
        cmocka_unit_test(test_declines),
        cmocka_unit_test(test_through_core),
        cmocka_unit_test(test_wgrad_few_taps),
        cmocka_unit_test(test_conv_relu_flag),
    };
    rc = _cmocka_run_group_tests("cpu_conv", tests, sizeof tests / sizeof tests[0], load_plugin,
                                 unload_plugin);
    em_context_free(g_ctx);
    return rc;
}
