/* tests/plugins/tconv.c — ember-backend-tconv.so: the cpu backend of this build, wrapped, plus
 * the optional whole-convolution kernels of ABI 1.4 (conv2d, conv2d_grad_input,
 * conv2d_grad_weight) written as plain direct loops on its host-memory buffers, so that the
 * core's dispatch to them (core/ops/conv_native.c) runs and is checked without a GPU library
 * (tests/test_conv_native.c, ember-conform's conv rows). The entry opens the cpu plugin
 * (EMBER_TCONV_CPU, else the build tree's), calls its entry and hands the core a copy of its
 * table under the name tconv with the three entries filled in. tconv_calls_ counts the calls
 * of each (read by the test through dlsym), tconv_decline_weight_ makes conv2d_grad_weight
 * decline, and tconv_decline_ makes every call decline (as
 * a library without an algorithm for it would); every kernel checks the contract it relies
 * on (contiguous 4-D views of one dtype, the window's geometry) and fails loudly otherwise. */
#include <ember/backend.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef TCONV_CPU_PLUGIN
#define TCONV_CPU_PLUGIN "ember-backend-cpu.so"
#endif

/* calls of conv2d, conv2d_grad_input, conv2d_grad_weight (with db: [3]) */
EM_BACKEND_EXPORT atomic_int tconv_calls_[4];
/* set by the test: every kernel declines (EM_ERR_UNSUPPORTED, nothing written); counted */
EM_BACKEND_EXPORT atomic_int tconv_decline_, tconv_declined_;
/* set by the test: conv2d_grad_weight alone declines; counted in tconv_declined_ too */
EM_BACKEND_EXPORT atomic_int tconv_decline_weight_;

static em_backend_entry_fn g_cpu_entry;
static char g_open_error[512];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const em_backend_ops *g_cpu_ops;
static em_backend_ops g_ops;
/* the host services of the last entry call, for the kernels' messages (a test process opens
 * one instance at a time) */
static const em_host *g_host;
static em_host_ctx *g_hc;

static void open_cpu(void)
{
    const char *path = getenv("EMBER_TCONV_CPU");
    void *dl = dlopen(path && *path ? path : TCONV_CPU_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    void *sym = dl ? dlsym(dl, EM_BACKEND_ENTRY_NAME) : NULL;
    if (!sym) {
        const char *e = dlerror();
        strncpy(g_open_error, e ? e : "no entry symbol", sizeof g_open_error - 1);
        return;   /* the handle stays open for the life of the process, as the core's do */
    }
    memcpy(&g_cpu_entry, &sym, sizeof g_cpu_entry);
}

/* ------------------------------------------------------------------ views */

static double get(const em_kview *v, int64_t i)
{
    return v->dtype == EM_F32 ? (double)((const float *)v->buf)[v->offset + i]
                              : ((const double *)v->buf)[v->offset + i];
}

static void set(const em_kview *v, int64_t i, double x)
{
    if (v->dtype == EM_F32)
        ((float *)v->buf)[v->offset + i] = (float)x;
    else
        ((double *)v->buf)[v->offset + i] = x;
}

/* a contiguous view of ndim dims of dtype dt */
static int check_view(const em_kview *v, int ndim, int32_t dt)
{
    if (!v || v->ndim != ndim || v->dtype != dt || (dt != EM_F32 && dt != EM_F64))
        return 0;
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        if (v->shape[d] < 1 || v->strides[d] != s)
            return 0;
        s *= v->shape[d];
    }
    return 1;
}

/* The geometry of one call: x (N, C, H, W), w (OC, C/g, kh, kw), y (N, OC, oh, ow). */
typedef struct geo {
    int64_t N, C, H, W, OC, cg, ocg, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, g;
} geo;

static em_status bad(const char *what)
{
    return g_host->error(g_hc, EM_ERR_INTERNAL, "tconv: %s", what);
}

static em_status geometry(const em_kargs *a, const em_kview *x, const em_kview *w,
                          const em_kview *y, geo *g)
{
    if (atomic_load(&tconv_decline_)) {
        atomic_fetch_add(&tconv_declined_, 1);
        return g_host->error(g_hc, EM_ERR_UNSUPPORTED, "tconv: declined (tconv_decline_)");
    }
    if (a->struct_size < sizeof *a || a->n_ip < 11 || a->n_ip > 12 || !a->ip ||
        (a->n_ip == 12 && (a->ip[11] < 0 || a->ip[11] > 1)))
        return bad("expected n_ip = 11 (or 12: conv2d's relu, 0 or 1)");
    int32_t dt = x ? x->dtype : -1;
    if (!check_view(x, 4, dt) || !check_view(w, 4, dt) || !check_view(y, 4, dt))
        return bad("views must be contiguous 4-D of one float dtype");
    const int64_t *ip = a->ip;
    *g = (geo){.N = x->shape[0], .C = x->shape[1], .H = x->shape[2], .W = x->shape[3],
               .OC = w->shape[0], .kh = ip[0], .kw = ip[1], .sh = ip[2], .sw = ip[3],
               .ph = ip[4], .pw = ip[5], .dh = ip[6], .dw = ip[7], .oh = ip[8], .ow = ip[9],
               .g = ip[10]};
    if (g->g < 1 || g->C % g->g || g->OC % g->g || w->shape[1] != g->C / g->g ||
        w->shape[2] != g->kh || w->shape[3] != g->kw || y->shape[0] != g->N ||
        y->shape[1] != g->OC || y->shape[2] != g->oh || y->shape[3] != g->ow)
        return bad("the views do not match the window");
    /* symmetric padding, as the contract promises */
    if ((g->H + 2 * g->ph - g->dh * (g->kh - 1) - 1) / g->sh + 1 != g->oh ||
        (g->W + 2 * g->pw - g->dw * (g->kw - 1) - 1) / g->sw + 1 != g->ow)
        return bad("the padding is not symmetric");
    g->cg = g->C / g->g;
    g->ocg = g->OC / g->g;
    return EM_OK;
}

/* The input position of tap (i, j) of output (yy, xx): its index in the plane, or -1. */
static int64_t tap(const geo *g, int64_t yy, int64_t xx, int64_t i, int64_t j)
{
    int64_t r = yy * g->sh - g->ph + i * g->dh, c = xx * g->sw - g->pw + j * g->dw;
    return r < 0 || r >= g->H || c < 0 || c >= g->W ? -1 : r * g->W + c;
}

/* ------------------------------------------------------------------ kernels */

static em_status k_conv2d(void *dev, const em_kargs *a)
{
    (void)dev;
    const em_kview *x = a->n_in >= 2 ? a->ins[0] : NULL, *w = a->n_in >= 2 ? a->ins[1] : NULL;
    const em_kview *b = a->n_in == 3 ? a->ins[2] : NULL, *y = a->out;
    geo g;
    em_status st = geometry(a, x, w, y, &g);
    if (st != EM_OK)
        return st;
    if (a->n_out != 1 || (a->n_in == 3 && !check_view(b, 1, x->dtype)) ||
        (b && b->shape[0] != g.OC))
        return bad("conv2d: n_out = 1 and a bias (OC) of the dtype expected");
    atomic_fetch_add(&tconv_calls_[0], 1);
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t o = 0; o < g.OC; o++) {
            int64_t c0 = (o / g.ocg) * g.cg;
            for (int64_t yy = 0; yy < g.oh; yy++)
                for (int64_t xx = 0; xx < g.ow; xx++) {
                    double s = b ? get(b, o) : 0.0;
                    for (int64_t c = 0; c < g.cg; c++)
                        for (int64_t i = 0; i < g.kh; i++)
                            for (int64_t j = 0; j < g.kw; j++) {
                                int64_t t = tap(&g, yy, xx, i, j);
                                if (t >= 0)
                                    s += get(w, ((o * g.cg + c) * g.kh + i) * g.kw + j) *
                                         get(x, ((n * g.C + c0 + c) * g.H) * g.W + t);
                            }
                    if (a->n_ip > 11 && a->ip[11] && s < 0)   /* ABI 1.6: relu(y) */
                        s = 0;
                    set(y, ((n * g.OC + o) * g.oh + yy) * g.ow + xx, s);
                }
        }
    return EM_OK;
}

static em_status k_conv2d_grad_input(void *dev, const em_kargs *a)
{
    (void)dev;
    const em_kview *dy = a->n_in == 2 ? a->ins[0] : NULL, *w = a->n_in == 2 ? a->ins[1] : NULL;
    const em_kview *dx = a->out;
    geo g;
    em_status st = geometry(a, dx, w, dy, &g);
    if (st != EM_OK)
        return st;
    if (a->n_out != 1)
        return bad("conv2d_grad_input: n_out = 1 expected");
    atomic_fetch_add(&tconv_calls_[1], 1);
    int64_t nx = g.N * g.C * g.H * g.W;
    double *acc = calloc((size_t)nx, sizeof *acc);
    if (!acc)
        return g_host->error(g_hc, EM_ERR_OOM, "tconv: conv2d_grad_input: no memory");
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t o = 0; o < g.OC; o++) {
            int64_t c0 = (o / g.ocg) * g.cg;
            for (int64_t yy = 0; yy < g.oh; yy++)
                for (int64_t xx = 0; xx < g.ow; xx++) {
                    double d = get(dy, ((n * g.OC + o) * g.oh + yy) * g.ow + xx);
                    for (int64_t c = 0; c < g.cg; c++)
                        for (int64_t i = 0; i < g.kh; i++)
                            for (int64_t j = 0; j < g.kw; j++) {
                                int64_t t = tap(&g, yy, xx, i, j);
                                if (t >= 0)
                                    acc[((n * g.C + c0 + c) * g.H) * g.W + t] +=
                                        d * get(w, ((o * g.cg + c) * g.kh + i) * g.kw + j);
                            }
                }
        }
    for (int64_t i = 0; i < nx; i++)
        set(dx, i, acc[i]);
    free(acc);
    return EM_OK;
}

static em_status k_conv2d_grad_weight(void *dev, const em_kargs *a)
{
    (void)dev;
    const em_kview *x = a->n_in == 2 ? a->ins[0] : NULL, *dy = a->n_in == 2 ? a->ins[1] : NULL;
    const em_kview *dw = a->out, *db = a->n_out == 2 ? a->outs[1] : NULL;
    if (atomic_load(&tconv_decline_weight_)) {
        atomic_fetch_add(&tconv_declined_, 1);
        return g_host->error(g_hc, EM_ERR_UNSUPPORTED, "tconv: declined (tconv_decline_weight_)");
    }
    geo g;
    em_status st = geometry(a, x, dw, dy, &g);
    if (st != EM_OK)
        return st;
    if (a->n_out > 2 || (a->n_out == 2 && (!check_view(db, 1, x->dtype) || db->shape[0] != g.OC)))
        return bad("conv2d_grad_weight: outs[1] must be db (OC) of the dtype");
    atomic_fetch_add(&tconv_calls_[db ? 3 : 2], 1);
    for (int64_t o = 0; o < g.OC; o++) {
        int64_t c0 = (o / g.ocg) * g.cg;
        for (int64_t c = 0; c < g.cg; c++)
            for (int64_t i = 0; i < g.kh; i++)
                for (int64_t j = 0; j < g.kw; j++) {
                    double s = 0.0;
                    for (int64_t n = 0; n < g.N; n++)
                        for (int64_t yy = 0; yy < g.oh; yy++)
                            for (int64_t xx = 0; xx < g.ow; xx++) {
                                int64_t t = tap(&g, yy, xx, i, j);
                                if (t >= 0)
                                    s += get(dy, ((n * g.OC + o) * g.oh + yy) * g.ow + xx) *
                                         get(x, ((n * g.C + c0 + c) * g.H) * g.W + t);
                            }
                    set(dw, ((o * g.cg + c) * g.kh + i) * g.kw + j, s);
                }
        if (db) {
            double s = 0.0;
            for (int64_t n = 0; n < g.N; n++)
                for (int64_t p = 0; p < g.oh * g.ow; p++)
                    s += get(dy, (n * g.OC + o) * g.oh * g.ow + p);
            set(db, o, s);
        }
    }
    return EM_OK;
}

static void build_table(void)
{
    memcpy(&g_ops, g_cpu_ops, sizeof g_ops);
    g_ops.conv2d = k_conv2d;
    g_ops.conv2d_grad_input = k_conv2d_grad_input;
    g_ops.conv2d_grad_weight = k_conv2d_grad_weight;
}

EM_BACKEND_ENTRY
{
    out->abi_major = EM_ABI_MAJOR;
    out->abi_minor = EM_ABI_MINOR;
    out->name = "tconv";
    pthread_once(&g_once, open_cpu);
    if (!g_cpu_entry)
        return host->error(hc, EM_ERR_BACKEND, "cannot open the cpu plugin: %s", g_open_error);
    em_status st = g_cpu_entry(host, hc, config, n_config, out);
    out->name = "tconv";
    out->description = "the cpu backend with direct-loop whole-convolution kernels";
    if (st != EM_OK || !out->ops)
        return st;
    static pthread_once_t table_once = PTHREAD_ONCE_INIT;
    g_cpu_ops = out->ops;
    pthread_once(&table_once, build_table);
    out->ops = &g_ops;
    if (out->ctx) {
        g_host = host;
        g_hc = hc;
    }
    return EM_OK;
}
