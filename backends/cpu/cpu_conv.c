/* backends/cpu/cpu_conv.c — the cpu backend's convolution kernels of ABI 1.4: im2col, col2im
 * and max_pool2d, and max_pool2d_grad of ABI 1.5 (definitions in ember/backend.h). Each
 * (image, channel) plane is one task on the instance's pool: im2col writes the kh*kw rows of
 * its plane's columns, col2im sums them back into its plane in a fixed order (deterministic,
 * no atomics), max_pool2d scans its plane's windows as PyTorch's cpu kernel does (the
 * comparison `v > max || isnan(v)`), max_pool2d_grad writes its plane's gradient whole. */
#include "cpu_ew.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef struct conv_plan {
    const em_kview *x, *o, *o2;
    int64_t C, H, W;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
} conv_plan;

static em_status check_geometry(cpu_inst *inst, const char *k, const em_kargs *a, int n_out,
                                conv_plan *pl)
{
    if (a->n_in < 1 || !a->ins || (uint32_t)n_out > a->n_out || !a->outs || a->n_ip < 10 || !a->ip)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: expected %d output(s), 1 input and 10 integer "
                       "parameters", k, n_out);
    const int64_t *ip = a->ip;
    for (int i = 0; i < 10; i++)
        if (ip[i] < ((i == 4 || i == 5) ? 0 : 1))
            return CPU_ERR(inst, EM_ERR_INVALID, "%s: parameter %d is %lld", k, i, (long long)ip[i]);
    pl->kh = ip[0]; pl->kw = ip[1]; pl->sh = ip[2]; pl->sw = ip[3]; pl->ph = ip[4];
    pl->pw = ip[5]; pl->dh = ip[6]; pl->dw = ip[7]; pl->oh = ip[8]; pl->ow = ip[9];
    pl->x = a->ins[0];
    pl->o = a->outs[0];
    pl->o2 = n_out > 1 ? a->outs[1] : NULL;
    em_status st = cpu_check_view(inst, k, "input", pl->x);
    if (st == EM_OK)
        st = cpu_check_view(inst, k, "output", pl->o);
    if (st == EM_OK && pl->o2)
        st = cpu_check_view(inst, k, "indices", pl->o2);
    if (st != EM_OK)
        return st;
    if (pl->x->dtype != EM_F32 && pl->x->dtype != EM_F64)
        return cpu_unsupported(inst, k, pl->x->dtype);
    if (pl->o->dtype != pl->x->dtype)
        return cpu_mismatch(inst, k, "output", pl->o->dtype, pl->x->dtype);
    if (pl->o2 && pl->o2->dtype != EM_I64)
        return cpu_mismatch(inst, k, "indices", pl->o2->dtype, EM_I64);
    return EM_OK;
}

/* ------------------------------------------------------------------ im2col */

#define IM2COL(T)                                                                          \
    static void im2col_##T(void *arg, int64_t task, int worker)                            \
    {                                                                                      \
        (void)worker;                                                                      \
        const conv_plan *p = arg;                                                          \
        int64_t n = task / p->C, c = task % p->C, L = p->oh * p->ow;                       \
        const int64_t *xs = p->x->strides;                                                 \
        const T *x = (const T *)p->x->buf + p->x->offset + n * xs[0] + c * xs[1];          \
        T *o = (T *)p->o->buf + p->o->offset +                                             \
               (n * p->C + c) * p->kh * p->kw * L;                                         \
        for (int64_t i = 0; i < p->kh; i++)                                                \
            for (int64_t j = 0; j < p->kw; j++, o += L) {                                  \
                /* the columns ox whose tap ix = ox*sw - pw + j*dw is inside [0, W) */     \
                int64_t off = j * p->dw - p->pw, lo = 0, hi = p->ow;                       \
                while (lo < hi && lo * p->sw + off < 0)                                    \
                    lo++;                                                                  \
                while (hi > lo && (hi - 1) * p->sw + off >= p->W)                          \
                    hi--;                                                                  \
                for (int64_t oy = 0; oy < p->oh; oy++) {                                   \
                    T *row = o + oy * p->ow;                                               \
                    int64_t iy = oy * p->sh - p->ph + i * p->dh;                           \
                    if (iy < 0 || iy >= p->H) {                                            \
                        memset(row, 0, sizeof(T) * (size_t)p->ow);                         \
                        continue;                                                          \
                    }                                                                      \
                    const T *src = x + iy * xs[2];                                         \
                    for (int64_t ox = 0; ox < lo; ox++)                                    \
                        row[ox] = 0;                                                       \
                    if (p->sw == 1 && xs[3] == 1)                                          \
                        memcpy(row + lo, src + lo + off, sizeof(T) * (size_t)(hi - lo));   \
                    else                                                                   \
                        for (int64_t ox = lo; ox < hi; ox++)                               \
                            row[ox] = src[(ox * p->sw + off) * xs[3]];                     \
                    for (int64_t ox = hi; ox < p->ow; ox++)                                \
                        row[ox] = 0;                                                       \
                }                                                                          \
            }                                                                              \
    }
IM2COL(float)
IM2COL(double)

/* run fn over the N*C planes, on the pool when there is enough work */
static void run_planes(cpu_inst *inst, int64_t planes, int64_t work, cpu_task_fn fn, void *arg)
{
    if (work < PAR_CHEAP || planes < 2) {
        for (int64_t t = 0; t < planes; t++)
            fn(arg, t, 0);
        return;
    }
    cpu_parallel(inst, planes, fn, arg);
}

/* the same with several small planes to a task, each task at least PAR_CHUNK_MIN of work: a
 * task per 7x7 plane costs more in handing out than in work */
typedef struct plane_chunks {
    cpu_task_fn fn;
    void *arg;
    int64_t planes, per_task;
} plane_chunks;

static void chunk_task(void *arg, int64_t task, int worker)
{
    const plane_chunks *pc = arg;
    int64_t t0 = task * pc->per_task, t1 = t0 + pc->per_task;
    for (int64_t t = t0; t < t1 && t < pc->planes; t++)
        pc->fn(pc->arg, t, worker);
}

static void run_plane_chunks(cpu_inst *inst, int64_t planes, int64_t plane_work, cpu_task_fn fn,
                             void *arg)
{
    plane_chunks pc = {fn, arg, planes, 1};
    if (plane_work < PAR_CHUNK_MIN)
        pc.per_task = (PAR_CHUNK_MIN + plane_work - 1) / (plane_work > 0 ? plane_work : 1);
    run_planes(inst, (planes + pc.per_task - 1) / pc.per_task, planes * plane_work, chunk_task,
               &pc);
}

em_status cpu_k_im2col(void *dev, const em_kargs *a)
{
    cpu_inst *inst = dev;
    conv_plan pl;
    em_status st = check_geometry(inst, "im2col", a, 1, &pl);
    if (st != EM_OK)
        return st;
    const em_kview *x = pl.x, *o = pl.o;
    pl.C = x->ndim == 4 ? x->shape[1] : 0;
    pl.H = x->ndim == 4 ? x->shape[2] : 0;
    pl.W = x->ndim == 4 ? x->shape[3] : 0;
    int64_t N = x->ndim == 4 ? x->shape[0] : 0;
    if (x->ndim != 4 || o->ndim != 3 || o->shape[0] != N || o->shape[1] != pl.C * pl.kh * pl.kw ||
        o->shape[2] != pl.oh * pl.ow || !cpu_view_contiguous(o))
        return CPU_ERR(inst, EM_ERR_INVALID, "im2col: the views do not match the window");
    run_planes(inst, N * pl.C, N * pl.C * pl.kh * pl.kw * pl.oh * pl.ow,
               x->dtype == EM_F32 ? im2col_float : im2col_double, &pl);
    return EM_OK;
}

/* ------------------------------------------------------------------ col2im */

#define COL2IM(T)                                                                          \
    static void col2im_##T(void *arg, int64_t task, int worker)                            \
    {                                                                                      \
        (void)worker;                                                                      \
        const conv_plan *p = arg;                                                          \
        int64_t L = p->oh * p->ow;                                                         \
        const T *col = (const T *)p->x->buf + p->x->offset + task * p->kh * p->kw * L;     \
        T *o = (T *)p->o->buf + p->o->offset + task * p->H * p->W;                         \
        memset(o, 0, sizeof(T) * (size_t)(p->H * p->W));                                  \
        for (int64_t i = 0; i < p->kh; i++)                                                \
            for (int64_t j = 0; j < p->kw; j++, col += L) {                                \
                int64_t off = j * p->dw - p->pw, lo = 0, hi = p->ow;                       \
                while (lo < hi && lo * p->sw + off < 0)                                    \
                    lo++;                                                                  \
                while (hi > lo && (hi - 1) * p->sw + off >= p->W)                          \
                    hi--;                                                                  \
                for (int64_t oy = 0; oy < p->oh; oy++) {                                   \
                    int64_t iy = oy * p->sh - p->ph + i * p->dh;                           \
                    if (iy < 0 || iy >= p->H)                                              \
                        continue;                                                          \
                    const T *row = col + oy * p->ow;                                       \
                    T *dst = o + iy * p->W + off;                                          \
                    if (p->sw == 1)                                                        \
                        for (int64_t ox = lo; ox < hi; ox++)                               \
                            dst[ox] += row[ox];                                            \
                    else                                                                   \
                        for (int64_t ox = lo; ox < hi; ox++)                               \
                            dst[ox * p->sw] += row[ox];                                    \
                }                                                                          \
            }                                                                              \
    }
COL2IM(float)
COL2IM(double)

em_status cpu_k_col2im(void *dev, const em_kargs *a)
{
    cpu_inst *inst = dev;
    conv_plan pl;
    em_status st = check_geometry(inst, "col2im", a, 1, &pl);
    if (st != EM_OK)
        return st;
    const em_kview *x = pl.x, *o = pl.o;
    pl.C = o->ndim == 4 ? o->shape[1] : 0;
    pl.H = o->ndim == 4 ? o->shape[2] : 0;
    pl.W = o->ndim == 4 ? o->shape[3] : 0;
    int64_t N = o->ndim == 4 ? o->shape[0] : 0;
    if (o->ndim != 4 || x->ndim != 3 || x->shape[0] != N || x->shape[1] != pl.C * pl.kh * pl.kw ||
        x->shape[2] != pl.oh * pl.ow || !cpu_view_contiguous(o) || !cpu_view_contiguous(x))
        return CPU_ERR(inst, EM_ERR_INVALID, "col2im: the views do not match the window");
    run_planes(inst, N * pl.C, N * pl.C * pl.kh * pl.kw * pl.oh * pl.ow,
               x->dtype == EM_F32 ? col2im_float : col2im_double, &pl);
    return EM_OK;
}

/* ------------------------------------------------------------------ max_pool2d */

/* One output row of the common 2x2 window with stride 2, its rows r0 and r1 in the input:
 * the general scan (row by row, `v > max || isnan(v)`) unrolled; the f32 one does four
 * windows at a time in SSE2 with the same comparisons, so the results are the same bits. */
#define POOL22_SCALAR(T, ox0)                                                              \
    for (int64_t ox = ox0; ox < ow; ox++) {                                                \
        const T v0 = r0[2 * ox], v1 = r0[2 * ox + 1], v2 = r1[2 * ox], v3 = r1[2 * ox + 1]; \
        T m = v0;                                                                          \
        int64_t off = 0;                                                                   \
        if (v1 > m || v1 != v1) {                                                          \
            m = v1;                                                                        \
            off = 1;                                                                       \
        }                                                                                  \
        if (v2 > m || v2 != v2) {                                                          \
            m = v2;                                                                        \
            off = w;                                                                       \
        }                                                                                  \
        if (v3 > m || v3 != v3) {                                                          \
            m = v3;                                                                        \
            off = w + 1;                                                                   \
        }                                                                                  \
        o[ox] = m;                                                                         \
        ix[ox] = base + 2 * ox + off;                                                      \
    }

static void pool22_double(const double *r0, const double *r1, double *o, int64_t *ix,
                          int64_t base, int64_t w, int64_t ow)
{
    POOL22_SCALAR(double, 0)
}

#if defined(__SSE2__)
/* windows ox0 .. ox0 + 3 of the f32 row pair: the scalar scan's comparisons, four at a time */
static inline void pool22_sse(const float *r0, const float *r1, float *o, int64_t *ix,
                              int64_t base, int64_t ox0, __m128i wv, __m128i w1)
{
    const __m128i one = _mm_set1_epi32(1);
    const __m128 a0 = _mm_loadu_ps(r0 + 2 * ox0), a1 = _mm_loadu_ps(r0 + 2 * ox0 + 4);
    const __m128 b0 = _mm_loadu_ps(r1 + 2 * ox0), b1 = _mm_loadu_ps(r1 + 2 * ox0 + 4);
    const __m128 v0 = _mm_shuffle_ps(a0, a1, _MM_SHUFFLE(2, 0, 2, 0));
    const __m128 v1 = _mm_shuffle_ps(a0, a1, _MM_SHUFFLE(3, 1, 3, 1));
    const __m128 v2 = _mm_shuffle_ps(b0, b1, _MM_SHUFFLE(2, 0, 2, 0));
    const __m128 v3 = _mm_shuffle_ps(b0, b1, _MM_SHUFFLE(3, 1, 3, 1));
    __m128 m = v0, t;
    __m128i off = _mm_setzero_si128(), ti;
    t = _mm_or_ps(_mm_cmpgt_ps(v1, m), _mm_cmpunord_ps(v1, v1));
    ti = _mm_castps_si128(t);
    m = _mm_or_ps(_mm_and_ps(t, v1), _mm_andnot_ps(t, m));
    off = _mm_or_si128(_mm_and_si128(ti, one), _mm_andnot_si128(ti, off));
    t = _mm_or_ps(_mm_cmpgt_ps(v2, m), _mm_cmpunord_ps(v2, v2));
    ti = _mm_castps_si128(t);
    m = _mm_or_ps(_mm_and_ps(t, v2), _mm_andnot_ps(t, m));
    off = _mm_or_si128(_mm_and_si128(ti, wv), _mm_andnot_si128(ti, off));
    t = _mm_or_ps(_mm_cmpgt_ps(v3, m), _mm_cmpunord_ps(v3, v3));
    ti = _mm_castps_si128(t);
    m = _mm_or_ps(_mm_and_ps(t, v3), _mm_andnot_ps(t, m));
    off = _mm_or_si128(_mm_and_si128(ti, w1), _mm_andnot_si128(ti, off));
    _mm_storeu_ps(o + ox0, m);
    /* the indices base + 2 * (ox0 + q) + off[q], widened to 64 bits (off >= 0) */
    const __m128i c01 = _mm_set_epi64x(base + 2 * ox0 + 2, base + 2 * ox0);
    const __m128i c23 = _mm_add_epi64(c01, _mm_set1_epi64x(4));
    _mm_storeu_si128((__m128i *)(ix + ox0),
                     _mm_add_epi64(c01, _mm_unpacklo_epi32(off, _mm_setzero_si128())));
    _mm_storeu_si128((__m128i *)(ix + ox0 + 2),
                     _mm_add_epi64(c23, _mm_unpackhi_epi32(off, _mm_setzero_si128())));
}
#endif

static void pool22_float(const float *r0, const float *r1, float *o, int64_t *ix, int64_t base,
                         int64_t w, int64_t ow)
{
    int64_t ox0 = 0;
#if defined(__SSE2__)
    if (w < INT32_MAX && ow >= 4) {
        const __m128i wv = _mm_set1_epi32((int)w), w1 = _mm_set1_epi32((int)w + 1);
        for (; ox0 + 4 <= ow; ox0 += 4)
            pool22_sse(r0, r1, o, ix, base, ox0, wv, w1);
        /* the last windows: the last four again (the same results rewritten) */
        if (ox0 < ow)
            pool22_sse(r0, r1, o, ix, base, ow - 4, wv, w1);
        return;
    }
#endif
    POOL22_SCALAR(float, ox0)
}

#define MAXPOOL(T, U)                                                                      \
    static void maxpool_##T(void *arg, int64_t task, int worker)                           \
    {                                                                                      \
        (void)worker;                                                                      \
        const conv_plan *p = arg;                                                          \
        int64_t n = task / p->C, c = task % p->C;                                          \
        const int64_t *xs = p->x->strides;                                                 \
        const T *x = (const T *)p->x->buf + p->x->offset + n * xs[0] + c * xs[1];          \
        T *o = (T *)p->o->buf + p->o->offset + task * p->oh * p->ow;                       \
        int64_t *ix = (int64_t *)p->o2->buf + p->o2->offset + task * p->oh * p->ow;        \
        if (p->ph == 0 && p->pw == 0 && p->dh == 1 && p->dw == 1 && xs[3] == 1 &&         \
            (p->oh - 1) * p->sh + p->kh <= p->H && (p->ow - 1) * p->sw + p->kw <= p->W) {  \
            /* every window inside the plane, rows contiguous: no clamping; the geometry \
             * in locals (the stores to o and ix could alias *p) */                        \
            const int64_t W = p->W, KH = p->kh, KW = p->kw, SH = p->sh, SW = p->sw;        \
            const int64_t OH = p->oh, OW = p->ow, XS = xs[2];                              \
            if (KH == 2 && KW == 2 && SH == 2 && SW == 2) {                                \
                /* the common 2x2 window, stride 2: the same scan order and comparisons,  \
                 * unrolled into selects the compiler can vectorise */                    \
                for (int64_t oy = 0; oy < OH; oy++)                                        \
                    pool22_##T(x + 2 * oy * XS, x + 2 * oy * XS + XS, o + oy * OW,         \
                               ix + oy * OW, 2 * oy * W, W, OW);                           \
                return;                                                                    \
            }                                                                              \
            for (int64_t oy = 0; oy < OH; oy++)                                            \
                for (int64_t ox = 0; ox < OW; ox++) {                                      \
                    const int64_t y0 = oy * SH, x0 = ox * SW;                              \
                    int64_t best = y0 * W + x0;                                            \
                    T m = -(T)INFINITY;                                                    \
                    for (int64_t y = y0; y < y0 + KH; y++) {                               \
                        const T *row = x + y * XS;                                         \
                        for (int64_t xx = x0; xx < x0 + KW; xx++) {                        \
                            /* selects by masks, no branches: the comparisons of random    \
                             * data mispredict */                                          \
                            const T v = row[xx];                                           \
                            const int t = (v > m) | (v != v);                              \
                            const U take = (U)0 - (U)t;                                    \
                            U vb, mb;                                                      \
                            memcpy(&vb, &v, sizeof v);                                     \
                            memcpy(&mb, &m, sizeof m);                                     \
                            mb = (vb & take) | (mb & ~take);                               \
                            memcpy(&m, &mb, sizeof m);                                     \
                            best ^= (best ^ (y * W + xx)) & -(int64_t)t;                   \
                        }                                                                  \
                    }                                                                      \
                    o[oy * OW + ox] = m;                                                   \
                    ix[oy * OW + ox] = best;                                               \
                }                                                                          \
            return;                                                                        \
        }                                                                                  \
        for (int64_t oy = 0; oy < p->oh; oy++) {                                           \
            int64_t y0 = oy * p->sh - p->ph, y1 = y0 + (p->kh - 1) * p->dh + 1;            \
            if (y1 > p->H)                                                                 \
                y1 = p->H;                                                                 \
            while (y0 < 0)                                                                 \
                y0 += p->dh;                                                               \
            for (int64_t ox = 0; ox < p->ow; ox++) {                                       \
                int64_t x0 = ox * p->sw - p->pw, x1 = x0 + (p->kw - 1) * p->dw + 1;        \
                if (x1 > p->W)                                                             \
                    x1 = p->W;                                                             \
                while (x0 < 0)                                                             \
                    x0 += p->dw;                                                           \
                int64_t best = y0 * p->W + x0;                                             \
                T m = -(T)INFINITY;                                                        \
                for (int64_t y = y0; y < y1; y += p->dh)                                   \
                    for (int64_t xx = x0; xx < x1; xx += p->dw) {                          \
                        T v = x[y * xs[2] + xx * xs[3]];                                   \
                        if (v > m || isnan(v)) {                                           \
                            m = v;                                                         \
                            best = y * p->W + xx;                                          \
                        }                                                                  \
                    }                                                                      \
                o[oy * p->ow + ox] = m;                                                    \
                ix[oy * p->ow + ox] = best;                                                \
            }                                                                              \
        }                                                                                  \
    }
MAXPOOL(float, uint32_t)
MAXPOOL(double, uint64_t)

em_status cpu_k_max_pool2d(void *dev, const em_kargs *a)
{
    cpu_inst *inst = dev;
    conv_plan pl;
    em_status st = check_geometry(inst, "max_pool2d", a, 2, &pl);
    if (st != EM_OK)
        return st;
    const em_kview *x = pl.x;
    int64_t N = x->ndim == 4 ? x->shape[0] : 0;
    pl.C = x->ndim == 4 ? x->shape[1] : 0;
    pl.H = x->ndim == 4 ? x->shape[2] : 0;
    pl.W = x->ndim == 4 ? x->shape[3] : 0;
    if (x->ndim != 4 || !cpu_view_is4(pl.o, N, pl.C, pl.oh, pl.ow) ||
        !cpu_view_is4(pl.o2, N, pl.C, pl.oh, pl.ow) || !cpu_view_contiguous(pl.o) ||
        !cpu_view_contiguous(pl.o2) ||
        pl.H < 1 || pl.W < 1)
        return CPU_ERR(inst, EM_ERR_INVALID, "max_pool2d: the views do not match the window");
    run_plane_chunks(inst, N * pl.C, pl.kh * pl.kw * pl.oh * pl.ow,
                     x->dtype == EM_F32 ? maxpool_float : maxpool_double, &pl);
    return EM_OK;
}

/* ------------------------------------------------------------------ max_pool2d_grad */

/* Each plane is one task, its input gradient written whole by one thread: the sum per
 * element runs over the outputs in row-major order from +0 (backend.h), whatever the thread
 * count. Windows that cannot overlap (extent <= stride in both dims) give each element at most
 * one output: those planes are written without the sums; the 2x2 window with stride 2 inside
 * the plane writes every element once, from selects. */
typedef struct mpg_plan {
    const em_kview *g, *ix, *o;
    int64_t C, H, W;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
    int disjoint, fast22;
} mpg_plan;

/* One output row of the 2x2 / stride 2 window: rows r0, r1 of the input gradient, the
 * output gradient gy (stride gs) and indices ix of the row, base the position of r0[0]. */
#define MPG22_SCALAR(T, ox0)                                                               \
    for (int64_t ox = ox0; ox < ow; ox++) {                                                \
        const T v = (T)0 + gy[ox * gs];                                                    \
        const int64_t d = ix[ox] - (base + 2 * ox);                                        \
        r0[2 * ox] = d == 0 ? v : (T)0;                                                    \
        r0[2 * ox + 1] = d == 1 ? v : (T)0;                                                \
        r1[2 * ox] = d == w ? v : (T)0;                                                    \
        r1[2 * ox + 1] = d == w + 1 ? v : (T)0;                                            \
    }

static void mpg22_double(double *r0, double *r1, const double *gy, int64_t gs, const int64_t *ix,
                         int64_t base, int64_t w, int64_t ow)
{
    MPG22_SCALAR(double, 0)
}

#if defined(__SSE2__)
/* outputs ox0 .. ox0 + 3: the offsets of their indices in their windows (low 32 bits: an index
 * of the window is one of 0, 1, w, w + 1 from its corner) select +0 + g or 0 for each tap */
static inline void mpg22_sse(float *r0, float *r1, const float *gy, int64_t gs, const int64_t *ix,
                             int64_t base, int64_t ox0, __m128i wv, __m128i w1)
{
    /* +0 + g: a -0 gradient gives +0, as the sum from zero does */
    const __m128 v = _mm_add_ps(_mm_setzero_ps(),
                                gs ? _mm_loadu_ps(gy + ox0) : _mm_set1_ps(gy[0]));
    const __m128i c01 = _mm_set_epi64x(base + 2 * ox0 + 2, base + 2 * ox0);
    const __m128i c23 = _mm_add_epi64(c01, _mm_set1_epi64x(4));
    const __m128i d01 = _mm_sub_epi64(_mm_loadu_si128((const __m128i *)(ix + ox0)), c01);
    const __m128i d23 = _mm_sub_epi64(_mm_loadu_si128((const __m128i *)(ix + ox0 + 2)), c23);
    const __m128i d = _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(d01), _mm_castsi128_ps(d23),
                                                      _MM_SHUFFLE(2, 0, 2, 0)));
    const __m128 t0 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(d, _mm_setzero_si128())), v);
    const __m128 t1 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(d, _mm_set1_epi32(1))), v);
    const __m128 t2 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(d, wv)), v);
    const __m128 t3 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(d, w1)), v);
    _mm_storeu_ps(r0 + 2 * ox0, _mm_unpacklo_ps(t0, t1));
    _mm_storeu_ps(r0 + 2 * ox0 + 4, _mm_unpackhi_ps(t0, t1));
    _mm_storeu_ps(r1 + 2 * ox0, _mm_unpacklo_ps(t2, t3));
    _mm_storeu_ps(r1 + 2 * ox0 + 4, _mm_unpackhi_ps(t2, t3));
}
#endif

static void mpg22_float(float *r0, float *r1, const float *gy, int64_t gs, const int64_t *ix,
                        int64_t base, int64_t w, int64_t ow)
{
    int64_t ox0 = 0;
#if defined(__SSE2__)
    if (w < INT32_MAX && (gs == 0 || gs == 1) && ow >= 4) {
        const __m128i wv = _mm_set1_epi32((int)w), w1 = _mm_set1_epi32((int)w + 1);
        for (; ox0 + 4 <= ow; ox0 += 4)
            mpg22_sse(r0, r1, gy, gs, ix, base, ox0, wv, w1);
        /* the last outputs: the last four again (the same values rewritten) */
        if (ox0 < ow)
            mpg22_sse(r0, r1, gy, gs, ix, base, ow - 4, wv, w1);
        return;
    }
#endif
    MPG22_SCALAR(float, ox0)
}

#define MPGRAD(T)                                                                          \
    static void mpgrad_##T(void *arg, int64_t task, int worker)                            \
    {                                                                                      \
        (void)worker;                                                                      \
        const mpg_plan *p = arg;                                                           \
        const int64_t n = task / p->C, c = task % p->C, H = p->H, W = p->W, hw = H * W;    \
        const int64_t OH = p->oh, OW = p->ow, *gst = p->g->strides;                        \
        const T *gy = (const T *)p->g->buf + p->g->offset + n * gst[0] + c * gst[1];       \
        const int64_t gs2 = gst[2], gs3 = gst[3];                                          \
        const int64_t *ix = (const int64_t *)p->ix->buf + p->ix->offset + task * OH * OW;  \
        T *o = (T *)p->o->buf + p->o->offset + task * hw;                                  \
        if (p->fast22) {                                                                   \
            for (int64_t oy = 0; oy < OH; oy++) {                                          \
                T *r0 = o + 2 * oy * W, *r1 = r0 + W;                                      \
                mpg22_##T(r0, r1, gy + oy * gs2, gs3, ix + oy * OW, 2 * oy * W, W, OW);    \
                for (int64_t x = 2 * OW; x < W; x++)                                       \
                    r0[x] = r1[x] = 0;                                                     \
            }                                                                              \
            memset(o + 2 * OH * W, 0, sizeof(T) * (size_t)(hw - 2 * OH * W));             \
            return;                                                                        \
        }                                                                                  \
        memset(o, 0, sizeof(T) * (size_t)hw);                                              \
        /* an index outside the plane (never made by max_pool2d) is skipped */            \
        if (p->disjoint) {                                                                 \
            for (int64_t oy = 0; oy < OH; oy++)                                            \
                for (int64_t ox = 0; ox < OW; ox++) {                                      \
                    const int64_t i = ix[oy * OW + ox];                                    \
                    if ((uint64_t)i < (uint64_t)hw)                                        \
                        o[i] = (T)0 + gy[oy * gs2 + ox * gs3];                             \
                }                                                                          \
            return;                                                                        \
        }                                                                                  \
        for (int64_t oy = 0; oy < OH; oy++)                                                \
            for (int64_t ox = 0; ox < OW; ox++) {                                          \
                const int64_t i = ix[oy * OW + ox];                                        \
                if ((uint64_t)i < (uint64_t)hw)                                            \
                    o[i] += gy[oy * gs2 + ox * gs3];                                       \
            }                                                                              \
    }
MPGRAD(float)
MPGRAD(double)

em_status cpu_k_max_pool2d_grad(void *dev, const em_kargs *a)
{
    cpu_inst *inst = dev;
    const char *k = "max_pool2d_grad";
    if (a->n_in < 2 || !a->ins || a->n_out < 1 || !a->outs || a->n_ip < 10 || !a->ip)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: expected 1 output, 2 inputs and 10 integer "
                       "parameters", k);
    const int64_t *ip = a->ip;
    for (int i = 0; i < 10; i++)
        if (ip[i] < ((i == 4 || i == 5) ? 0 : 1))
            return CPU_ERR(inst, EM_ERR_INVALID, "%s: parameter %d is %lld", k, i, (long long)ip[i]);
    mpg_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.kh = ip[0]; pl.kw = ip[1]; pl.sh = ip[2]; pl.sw = ip[3]; pl.ph = ip[4];
    pl.pw = ip[5]; pl.dh = ip[6]; pl.dw = ip[7]; pl.oh = ip[8]; pl.ow = ip[9];
    pl.g = a->ins[0];
    pl.ix = a->ins[1];
    pl.o = a->outs[0];
    em_status st;
    if ((st = cpu_check_view(inst, k, "ins[0] (gradient)", pl.g)) != EM_OK ||
        (st = cpu_check_view(inst, k, "ins[1] (indices)", pl.ix)) != EM_OK ||
        (st = cpu_check_view(inst, k, "out", pl.o)) != EM_OK)
        return st;
    if (pl.g->dtype != EM_F32 && pl.g->dtype != EM_F64)
        return cpu_unsupported(inst, k, pl.g->dtype);
    if (pl.o->dtype != pl.g->dtype)
        return cpu_mismatch(inst, k, "out", pl.o->dtype, pl.g->dtype);
    if (pl.ix->dtype != EM_I64)
        return cpu_mismatch(inst, k, "ins[1] (indices)", pl.ix->dtype, EM_I64);
    const em_kview *o = pl.o;
    int64_t N = o->ndim == 4 ? o->shape[0] : 0;
    pl.C = o->ndim == 4 ? o->shape[1] : 0;
    pl.H = o->ndim == 4 ? o->shape[2] : 0;
    pl.W = o->ndim == 4 ? o->shape[3] : 0;
    if (o->ndim != 4 || !cpu_view_is4(pl.g, N, pl.C, pl.oh, pl.ow) ||
        !cpu_view_is4(pl.ix, N, pl.C, pl.oh, pl.ow) || !cpu_view_contiguous(o) ||
        !cpu_view_contiguous(pl.ix) ||
        pl.H < 1 || pl.W < 1)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: the views do not match the window", k);
    pl.disjoint = (pl.kh - 1) * pl.dh + 1 <= pl.sh && (pl.kw - 1) * pl.dw + 1 <= pl.sw;
    pl.fast22 = pl.kh == 2 && pl.kw == 2 && pl.sh == 2 && pl.sw == 2 && pl.ph == 0 &&
                pl.pw == 0 && pl.dh == 1 && pl.dw == 1 && 2 * pl.oh <= pl.H && 2 * pl.ow <= pl.W;
    run_plane_chunks(inst, N * pl.C, pl.H * pl.W,
                     o->dtype == EM_F32 ? mpgrad_float : mpgrad_double, &pl);
    return EM_OK;
}
