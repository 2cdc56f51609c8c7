/* backends/cpu/cpu_avgpool.c — the cpu backend's pooling kernels of ABI 1.4: avg_pool2d and
 * avg_pool2d_grad, average and adaptive average pooling over 3-D (B, H, W) views
 * (B = N * C). The planes of B are spread over the pool, each plane computed by one thread:
 * the forward averages each window; the backward adds each output's share to its window in a
 * plane of double sums (per-worker scratch), then writes the plane. The results do not
 * depend on the thread count. f32 accumulates in double. */
#include "cpu_ew.h"

#include <string.h>

typedef struct pool_geom {
    int64_t kh, kw, sh, sw, ph, pw;
    int cip, adaptive;
    int64_t divisor;
    int64_t H, W, OH, OW;
} pool_geom;

/* The window of output index o along one dim (input size I, output size O): [*s, *e) clipped
 * to the input, and its padded size *pool. */
static void window(const pool_geom *g, int dim, int64_t o, int64_t *s, int64_t *e, int64_t *pool)
{
    int64_t I = dim ? g->W : g->H, O = dim ? g->OW : g->OH;
    if (g->adaptive) {
        *s = (o * I) / O;
        *e = ((o + 1) * I + O - 1) / O;
        *pool = *e - *s;
        return;
    }
    int64_t k = dim ? g->kw : g->kh, st = dim ? g->sw : g->sh, p = dim ? g->pw : g->ph;
    int64_t a = o * st - p, b = a + k < I + p ? a + k : I + p;
    *pool = b - a;
    *s = a > 0 ? a : 0;
    *e = b < I ? b : I;
}

static double divisor_of(const pool_geom *g, int64_t hs, int64_t he, int64_t ws, int64_t we,
                         int64_t hpool, int64_t wpool)
{
    if (g->divisor)
        return (double)g->divisor;
    if (g->cip || g->adaptive)
        return (double)(hpool * wpool);
    return (double)((he - hs) * (we - ws));
}

typedef struct pool_plan {
    pool_geom g;
    const char *x;
    char *o;
    int64_t xs[3], os[3];
    int dt;
    int backward;
    double *scratch;    /* backward: one H x W plane of sums per worker */
} pool_plan;

#define FWD_PLANE(T)                                                                            \
    do {                                                                                        \
        const T *x = (const T *)pl->x + b * pl->xs[0];                                          \
        T *o = (T *)pl->o + b * pl->os[0];                                                      \
        for (int64_t oh = 0; oh < g->OH; oh++) {                                                \
            int64_t hs, he, hp;                                                                 \
            window(g, 0, oh, &hs, &he, &hp);                                                    \
            for (int64_t ow = 0; ow < g->OW; ow++) {                                            \
                int64_t ws, we, wp;                                                             \
                window(g, 1, ow, &ws, &we, &wp);                                                \
                double acc = 0;                                                                 \
                for (int64_t h = hs; h < he; h++)                                               \
                    for (int64_t w = ws; w < we; w++)                                           \
                        acc += (double)x[h * pl->xs[1] + w * pl->xs[2]];                        \
                o[oh * pl->os[1] + ow * pl->os[2]] =                                            \
                    (T)(acc / divisor_of(g, hs, he, ws, we, hp, wp));                           \
            }                                                                                   \
        }                                                                                       \
    } while (0)

/* The backward of one plane: each output's gradient, divided by its window's divisor, added
 * to the elements of its window. The plane belongs to one task, so the order of the
 * additions is fixed (outputs in row-major order) whatever the thread count. */
#define BWD_PLANE(T)                                                                            \
    do {                                                                                        \
        const T *gy = (const T *)pl->x + b * pl->xs[0];                                         \
        T *gx = (T *)pl->o + b * pl->os[0];                                                     \
        double *acc = pl->scratch + (size_t)worker * (size_t)(g->H * g->W);                     \
        for (int64_t i = 0; i < g->H * g->W; i++)                                               \
            acc[i] = 0;                                                                         \
        for (int64_t oh = 0; oh < g->OH; oh++) {                                                \
            int64_t hs, he, hp;                                                                 \
            window(g, 0, oh, &hs, &he, &hp);                                                    \
            for (int64_t ow = 0; ow < g->OW; ow++) {                                            \
                int64_t ws, we, wp;                                                             \
                window(g, 1, ow, &ws, &we, &wp);                                                \
                double v = (double)gy[oh * pl->xs[1] + ow * pl->xs[2]] /                        \
                           divisor_of(g, hs, he, ws, we, hp, wp);                               \
                for (int64_t h = hs; h < he; h++)                                               \
                    for (int64_t w = ws; w < we; w++)                                           \
                        acc[h * g->W + w] += v;                                                 \
            }                                                                                   \
        }                                                                                       \
        for (int64_t h = 0; h < g->H; h++)                                                      \
            for (int64_t w = 0; w < g->W; w++)                                                  \
                gx[h * pl->os[1] + w * pl->os[2]] = (T)acc[h * g->W + w];                       \
    } while (0)

static void pool_task(void *arg, int64_t b, int worker)
{
    const pool_plan *pl = arg;
    const pool_geom *g = &pl->g;
    if (pl->backward) {
        if (pl->dt == EM_F32)
            BWD_PLANE(float);
        else
            BWD_PLANE(double);
    } else {
        if (pl->dt == EM_F32)
            FWD_PLANE(float);
        else
            FWD_PLANE(double);
    }
}

static em_status pool_kernel(void *dev, const em_kargs *ka, int backward)
{
    cpu_inst *inst = dev;
    const char *kn = backward ? "avg_pool2d_grad" : "avg_pool2d";
    const em_kview *x = ka->in[0], *out = ka->out;
    em_status st;
    if ((st = cpu_check_view(inst, kn, "in[0]", x)) != EM_OK ||
        (st = cpu_check_view(inst, kn, "out", out)) != EM_OK)
        return st;
    if (x->dtype != EM_F32 && x->dtype != EM_F64)
        return cpu_unsupported(inst, kn, x->dtype);
    if (out->dtype != x->dtype)
        return cpu_mismatch(inst, kn, "out", out->dtype, x->dtype);
    if (x->ndim != 3 || out->ndim != 3 || x->shape[0] != out->shape[0])
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: expected 3-D views (B, H, W) with one B, got "
                       "%d-D and %d-D", kn, (int)x->ndim, (int)out->ndim);
    if (ka->struct_size < offsetof(em_kargs, fp) || ka->n_ip < 9 || !ka->ip)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: expected 9 integer parameters, got %u", kn,
                       ka->struct_size < offsetof(em_kargs, fp) ? 0u : (unsigned)ka->n_ip);
    const int64_t *ip = ka->ip;
    pool_plan pl;
    memset(&pl, 0, sizeof pl);
    pool_geom *g = &pl.g;
    g->kh = ip[0], g->kw = ip[1], g->sh = ip[2], g->sw = ip[3], g->ph = ip[4], g->pw = ip[5];
    g->cip = ip[6] != 0;
    g->divisor = ip[7];
    g->adaptive = ip[8] != 0;
    const em_kview *big = backward ? out : x, *small = backward ? x : out;
    g->H = big->shape[1], g->W = big->shape[2], g->OH = small->shape[1], g->OW = small->shape[2];
    if (g->H < 1 || g->W < 1 || g->OH < 1 || g->OW < 1 ||
        (!g->adaptive && (g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1 || g->ph < 0 ||
                          g->pw < 0 || 2 * g->ph > g->kh || 2 * g->pw > g->kw)))
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: bad geometry: input %lldx%lld, output %lldx%lld, "
                       "kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld", kn,
                       (long long)g->H, (long long)g->W, (long long)g->OH, (long long)g->OW,
                       (long long)g->kh, (long long)g->kw, (long long)g->sh, (long long)g->sw,
                       (long long)g->ph, (long long)g->pw);
    for (int d = 0; d < 3; d++) {
        pl.xs[d] = x->strides[d];
        pl.os[d] = out->strides[d];
    }
    if (x->dtype == EM_F32) {
        pl.x = (const char *)((const float *)x->buf + x->offset);
        pl.o = (char *)((float *)out->buf + out->offset);
    } else {
        pl.x = (const char *)((const double *)x->buf + x->offset);
        pl.o = (char *)((double *)out->buf + out->offset);
    }
    pl.dt = x->dtype;
    pl.backward = backward;
    int64_t per_plane = (backward ? g->H * g->W : g->OH * g->OW) *
                        (g->adaptive ? 4 : (g->kh * g->kw > 1 ? g->kh * g->kw : 1));
    int64_t B = x->shape[0];
    int par = B * per_plane >= PAR_COSTLY && B > 1;
    if (backward) {
        int nt = par ? inst->nthreads : 1;
        pl.scratch = cpu_scratch_get(inst, &inst->work[0],
                                     (size_t)nt * (size_t)(g->H * g->W) * sizeof(double));
        if (!pl.scratch)
            return CPU_ERR(inst, EM_ERR_OOM, "%s: out of memory for a %lldx%lld plane", kn,
                           (long long)g->H, (long long)g->W);
    }
    if (par)
        cpu_parallel(inst, B, pool_task, &pl);
    else
        for (int64_t b = 0; b < B; b++)
            pool_task(&pl, b, 0);
    return EM_OK;
}

em_status cpu_k_avg_pool2d(void *dev, const em_kargs *ka)
{
    return pool_kernel(dev, ka, 0);
}

em_status cpu_k_avg_pool2d_grad(void *dev, const em_kargs *ka)
{
    return pool_kernel(dev, ka, 1);
}
