/* backends/cpu/cpu_conv_wgrad.c — the cpu backend's conv2d_grad_weight (ABI 1.4, whole
 * convolutions; contract in ember/backend.h): the weight's (and bias's) gradient of conv2d
 * in one call, for every window, padding, dilation and group count.
 *
 *   x  (N, C, H, W), dy (N, OC, oh, ow)  ->  dw (OC, C/g, kh, kw) = sum over n of
 *       dy_n (OC/g x L) @ cols_n^T (L x C/g*kh*kw) per group      [L = oh*ow]
 *       (or its transpose, cols_n @ dy_n^T, when C/g*kh*kw > OC/g: the smaller operand is
 *       the one packed)
 *   db (OC) = dy summed over n, y, x                               (when asked for)
 *
 * The lowering in the core makes the column matrices of many images at once (megabytes
 * that leave the caches), one product per image into its own slot, then a reduction over the
 * slots. Here the images go in fixed groups of WG_IMAGES, one group per pool task: the task
 * makes one image's columns in its worker's scratch (a few hundred KiB, still in L2 when the
 * product reads them) and accumulates the image's product into the group's partial sum
 * (beta = 1 after the group's first image); then the partial sums are added in group order.
 * The groups do not depend on the thread count, so neither do the bits.
 *
 * With few taps per output channel (C/g*kh*kw < WG_MIN_TAPS: a first layer over one or two
 * input channels, a depthwise layer) each image's product is too thin for a gemm call, so
 * the same groups of images run as dot products instead: each dy row against the column
 * rows of its group, two output channels and up to WG_KB taps at a time in registers, with
 * the bias's sum of the same dy rows in the same pass (dy, the big operand, is read once). */
#include "cpu_ew.h"

#include <stdatomic.h>
#include <string.h>

/* images per partial sum: fewer partial sums to add against enough tasks to share out */
#define WG_IMAGES 8
/* from this many C/g*kh*kw on, each image's product is a gemm call; below, dot products
 * (measured: bench/conv_step, docs/benchmarks.md) */
#define WG_MIN_TAPS 16
/* taps per register block of the dot products (2 channels x WG_KB accumulators) */
#define WG_KB 5

typedef struct wg_plan {
    cpu_inst *inst;
    int dt;
    size_t esz;
    const char *x, *dy;
    char *part;                       /* ngroups partial sums of OC x ck */
    double *bpart;                    /* few taps: ngroups partial sums of db, or NULL */
    int few, avx2;                    /* dot products (few taps); on AVX2+FMA */
    int tr;                           /* the partial sums' blocks are transposed (ck x ocg) */
    atomic_int *failed;               /* set by a task whose product failed */
    int64_t N, C, H, W, OC, g, cg, ocg, ck, ckk, L;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
    int64_t ngroups;
    /* the reduction */
    char *out;
    int64_t wn, chunk;
} wg_plan;

/* cols (ckk x L, rows L apart) = the column matrix of image n: row (c, i, j) holds tap
 * (i, j) of channel c at every output position, 0 where the tap falls in the padding */
#define IM2COL(T)                                                                              \
    do {                                                                                       \
        const T *xi = (const T *)pl->x + n * pl->C * pl->H * pl->W;                            \
        T *cols = (T *)colv;                                                                   \
        for (int64_t c = 0; c < pl->C; c++)                                                    \
            for (int64_t i = 0; i < pl->kh; i++)                                               \
                for (int64_t j = 0; j < pl->kw; j++) {                                         \
                    T *row = cols + ((c * pl->kh + i) * pl->kw + j) * pl->L;                   \
                    const T *plane = xi + c * pl->H * pl->W;                                   \
                    /* the output columns whose tap lands inside the width: [x0, x1) */        \
                    int64_t off = j * pl->dw - pl->pw, x0 = 0, x1 = pl->ow;                    \
                    while (x0 < x1 && x0 * pl->sw + off < 0)                                   \
                        x0++;                                                                  \
                    while (x1 > x0 && (x1 - 1) * pl->sw + off >= pl->W)                        \
                        x1--;                                                                  \
                    for (int64_t oy = 0; oy < pl->oh; oy++) {                                  \
                        T *r = row + oy * pl->ow;                                              \
                        int64_t iy = oy * pl->sh - pl->ph + i * pl->dh;                        \
                        if (iy < 0 || iy >= pl->H) {                                           \
                            for (int64_t ox = 0; ox < pl->ow; ox++)                            \
                                r[ox] = 0;                                                     \
                            continue;                                                          \
                        }                                                                      \
                        const T *src = plane + iy * pl->W + off;                               \
                        for (int64_t ox = 0; ox < x0; ox++)                                    \
                            r[ox] = 0;                                                         \
                        if (pl->sw == 1)                                                       \
                            for (int64_t ox = x0; ox < x1; ox++)                               \
                                r[ox] = src[ox];                                               \
                        else                                                                   \
                            for (int64_t ox = x0; ox < x1; ox++)                               \
                                r[ox] = src[ox * pl->sw];                                      \
                        for (int64_t ox = x1; ox < pl->ow; ox++)                               \
                            r[ox] = 0;                                                         \
                    }                                                                          \
                }                                                                              \
    } while (0)

/* The product of image n, group g into group t's partial sum (beta 1 after the group's first
 * image). The smaller of the two operands is packed (as B), the other read in place: with
 * pl->tr, block g (ck x ocg) of part[t] = cols_g @ dy_{n,g}^T; else block g (ocg x ck) =
 * dy_{n,g} @ cols_g^T. */
static const em_gemm_args *product(const wg_plan *pl, em_gemm_args *ga, int64_t t, int64_t n,
                                   int64_t g, void *colv)
{
    const void *dy = pl->dy;
    int64_t ao = g * pl->ck * pl->L, bo = (n * pl->OC + g * pl->ocg) * pl->L;
    *ga = (em_gemm_args){.struct_size = sizeof *ga, .dtype = pl->dt, .trans_a = 0,
                         .trans_b = 1, .k = pl->L, .batch = 1, .alpha = 1.0,
                         .beta = n == t * WG_IMAGES ? 0.0 : 1.0, .lda = pl->L, .ldb = pl->L,
                         .c = pl->part, .c_offset = t * pl->wn + g * pl->ocg * pl->ck};
    if (pl->tr) {
        ga->m = pl->ck, ga->n = pl->ocg, ga->ldc = pl->ocg;
        ga->a = colv, ga->a_offset = ao, ga->b = (void *)dy, ga->b_offset = bo;
    } else {
        ga->m = pl->ocg, ga->n = pl->ck, ga->ldc = pl->ck;
        ga->a = (void *)dy, ga->a_offset = bo, ga->b = colv, ga->b_offset = ao;
    }
    return ga;
}

/* ------------------------------------------------------------------ few taps
 *
 *   part[o][k] (+)= sum over l of dy[n][o][l] * cols[g*ck + k][l]    k < ck, l < L
 *   bpart[o]    += sum over l of dy[n][o][l]                          (when db is asked for)
 *
 * for the output channels o of group g, one image n at a time (the group's first image sets,
 * the others add). Each sum is in a fixed order (lanes, then a fixed tree, then the tail). */

/* Portable: the sums in double, rounded once. */
#define FEW_GENERIC(T)                                                                         \
    static void few_image_##T(const wg_plan *pl, const T *cols, const T *dyn, T *part,        \
                              int first, double *bp)                                           \
    {                                                                                          \
        for (int64_t o = 0; o < pl->OC; o++) {                                                 \
            const T *r = dyn + o * pl->L, *cg = cols + (o / pl->ocg) * pl->ck * pl->L;         \
            for (int64_t k = 0; k < pl->ck; k++) {                                             \
                double s = 0;                                                                  \
                for (int64_t l = 0; l < pl->L; l++)                                            \
                    s += (double)r[l] * (double)cg[k * pl->L + l];                             \
                part[o * pl->ck + k] = first ? (T)s : part[o * pl->ck + k] + (T)s;             \
            }                                                                                  \
            if (bp) {                                                                          \
                double s = 0;                                                                  \
                for (int64_t l = 0; l < pl->L; l++)                                            \
                    s += (double)r[l];                                                         \
                bp[o] += s;                                                                    \
            }                                                                                  \
        }                                                                                      \
    }
FEW_GENERIC(float)
FEW_GENERIC(double)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_CPU_NO_SIMD)
#include <immintrin.h>
#define WG_FEW_AVX2 1

__attribute__((target("avx2,fma"))) static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* Rows r0, r1 (two output channels; the same row twice for a last odd one) against NK column
 * rows c (L apart): o0[k], o1[k]; with b, their plain sums into b[0], b[1]. */
#define FEW_DOTS(NK)                                                                           \
    __attribute__((target("avx2,fma"))) static void few_dots_##NK(                             \
        const float *r0, const float *r1, const float *c, int64_t L, float *o0, float *o1,     \
        float *b)                                                                              \
    {                                                                                          \
        __m256 a0[NK], a1[NK], s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();            \
        _Pragma("GCC unroll 8") for (int k = 0; k < NK; k++)                                   \
            a0[k] = a1[k] = _mm256_setzero_ps();                                               \
        int64_t l = 0;                                                                         \
        for (; l + 8 <= L; l += 8) {                                                           \
            const __m256 d0 = _mm256_loadu_ps(r0 + l), d1 = _mm256_loadu_ps(r1 + l);           \
            _Pragma("GCC unroll 8") for (int k = 0; k < NK; k++) {                             \
                const __m256 v = _mm256_loadu_ps(c + k * L + l);                               \
                a0[k] = _mm256_fmadd_ps(d0, v, a0[k]);                                         \
                a1[k] = _mm256_fmadd_ps(d1, v, a1[k]);                                         \
            }                                                                                  \
            if (b) {                                                                           \
                s0 = _mm256_add_ps(s0, d0);                                                    \
                s1 = _mm256_add_ps(s1, d1);                                                    \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int k = 0; k < NK; k++) {                                 \
            float t0 = hsum8(a0[k]), t1 = hsum8(a1[k]);                                        \
            for (int64_t m = l; m < L; m++) {                                                  \
                t0 += r0[m] * c[k * L + m];                                                    \
                t1 += r1[m] * c[k * L + m];                                                    \
            }                                                                                  \
            o0[k] = t0;                                                                        \
            o1[k] = t1;                                                                        \
        }                                                                                      \
        if (b) {                                                                               \
            float t0 = hsum8(s0), t1 = hsum8(s1);                                              \
            for (int64_t m = l; m < L; m++) {                                                  \
                t0 += r0[m];                                                                   \
                t1 += r1[m];                                                                   \
            }                                                                                  \
            b[0] = t0;                                                                         \
            b[1] = t1;                                                                         \
        }                                                                                      \
    }
FEW_DOTS(1)
FEW_DOTS(2)
FEW_DOTS(3)
FEW_DOTS(4)
FEW_DOTS(5)

typedef void (*few_dots_fn)(const float *, const float *, const float *, int64_t, float *,
                            float *, float *);
static const few_dots_fn g_few_dots[WG_KB + 1] = {NULL, few_dots_1, few_dots_2, few_dots_3,
                                                   few_dots_4, few_dots_5};

static void few_image_avx2(const wg_plan *pl, const float *cols, const float *dyn, float *part,
                           int first, double *bp)
{
    const int64_t ck = pl->ck, L = pl->L;
    float v0[WG_KB], v1[WG_KB], b[2];
    for (int64_t g = 0; g < pl->g; g++) {
        const float *cg = cols + g * ck * L;
        for (int64_t q = 0; q < pl->ocg; q += 2) {
            const int64_t o = g * pl->ocg + q, o1 = q + 1 < pl->ocg ? o + 1 : o;
            const float *r0 = dyn + o * L, *r1 = dyn + o1 * L;
            for (int64_t k0 = 0; k0 < ck; k0 += WG_KB) {
                const int nk = (int)(ck - k0 < WG_KB ? ck - k0 : WG_KB);
                g_few_dots[nk](r0, r1, cg + k0 * L, L, v0, v1, bp && k0 == 0 ? b : NULL);
                for (int k = 0; k < nk; k++) {
                    float *p0 = part + o * ck + k0 + k, *p1 = part + o1 * ck + k0 + k;
                    *p0 = first ? v0[k] : *p0 + v0[k];
                    if (o1 != o)
                        *p1 = first ? v1[k] : *p1 + v1[k];
                }
            }
            if (bp) {
                bp[o] += (double)b[0];
                if (o1 != o)
                    bp[o1] += (double)b[1];
            }
        }
    }
}
#endif

/* Group t of images by dot products: each image's columns, then its sums. */
static void few_task(void *arg, int64_t t, int worker)
{
    const wg_plan *pl = arg;
    void *colv = pl->inst->conv[worker].p;
    int64_t n0 = t * WG_IMAGES, n1 = n0 + WG_IMAGES < pl->N ? n0 + WG_IMAGES : pl->N;
    double *bp = pl->bpart ? pl->bpart + t * pl->OC : NULL;
    if (bp)
        for (int64_t o = 0; o < pl->OC; o++)
            bp[o] = 0;
    for (int64_t n = n0; n < n1; n++) {
        const int first = n == n0;
        if (pl->dt == EM_F32) {
            IM2COL(float);
            const float *dyn = (const float *)pl->dy + n * pl->OC * pl->L;
            float *part = (float *)pl->part + t * pl->wn;
#ifdef WG_FEW_AVX2
            if (pl->avx2)
                few_image_avx2(pl, colv, dyn, part, first, bp);
            else
#endif
                few_image_float(pl, colv, dyn, part, first, bp);
        } else {
            IM2COL(double);
            few_image_double(pl, colv, (const double *)pl->dy + n * pl->OC * pl->L,
                             (double *)pl->part + t * pl->wn, first, bp);
        }
    }
}

/* db[o] = the groups' partial sums of dy, added in group order */
static void few_bias(const wg_plan *pl, void *db)
{
    for (int64_t o = 0; o < pl->OC; o++) {
        double s = 0;
        for (int64_t t = 0; t < pl->ngroups; t++)
            s += pl->bpart[t * pl->OC + o];
        if (pl->dt == EM_F32)
            ((float *)db)[o] = (float)s;
        else
            ((double *)db)[o] = s;
    }
}

/* no-tree-loop-distribute-patterns: gcc would otherwise turn each row segment's copy (a few
 * dozen bytes: 14 floats for conv 32->64) into a call of memcpy */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
static void group_task(void *arg, int64_t t, int worker)
{
    const wg_plan *pl = arg;
    void *colv = pl->inst->conv[worker].p;
    int64_t n0 = t * WG_IMAGES, n1 = n0 + WG_IMAGES < pl->N ? n0 + WG_IMAGES : pl->N;
    for (int64_t n = n0; n < n1; n++) {
        if (pl->dt == EM_F32)
            IM2COL(float);
        else
            IM2COL(double);
        for (int64_t g = 0; g < pl->g; g++)   /* its packing space was reserved: cannot fail */
            if (cpu_gemm_worker(pl->inst, product(pl, &(em_gemm_args){0}, t, n, g, colv), worker,
                                0) != EM_OK)
                atomic_store(pl->failed, 1);
    }
}

/* dw[e] = sum over groups, in group order, of the partial sums, for one chunk of e; with
 * pl->tr element (o, j) of group g's block sits at part[t][g*ocg*ck + j*ocg + o] */
#define REDUCE(T)                                                                              \
    do {                                                                                       \
        const T *p = (const T *)pl->part;                                                      \
        T *out = (T *)pl->out;                                                                 \
        const int64_t blk = pl->ocg * pl->ck;                                                  \
        for (int64_t e = e0; e < e1; e++) {                                                    \
            int64_t src = e;                                                                   \
            if (pl->tr) {                                                                      \
                int64_t g = e / blk, r = e % blk, o = r / pl->ck, j = r % pl->ck;              \
                src = g * blk + j * pl->ocg + o;                                               \
            }                                                                                  \
            T s = p[src];                                                                      \
            for (int64_t t = 1; t < pl->ngroups; t++)                                          \
                s += p[t * pl->wn + src];                                                      \
            out[e] = s;                                                                        \
        }                                                                                      \
    } while (0)

static void reduce_task(void *arg, int64_t c, int worker)
{
    (void)worker;
    const wg_plan *pl = arg;
    int64_t e0 = c * pl->chunk, e1 = e0 + pl->chunk < pl->wn ? e0 + pl->chunk : pl->wn;
    if (pl->dt == EM_F32)
        REDUCE(float);
    else
        REDUCE(double);
}

/* db[o] = dy[:, o] summed image by image, each image's plane in sixteen double lanes
 * (element l into lane l % 16, named so that the vectoriser keeps them in registers and the
 * adds are not one dependent chain) combined in a fixed tree */
#define WG_LANES(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) \
    OP(11) OP(12) OP(13) OP(14) OP(15)
#define WG_DECL(k) double a##k = 0;
#define WG_ADD(k) a##k += (double)r[l + k];
#define BIAS(T)                                                                                \
    do {                                                                                       \
        const T *d = (const T *)pl->dy;                                                        \
        double s = 0;                                                                          \
        for (int64_t n = 0; n < pl->N; n++) {                                                  \
            const T *r = d + (n * pl->OC + o) * pl->L;                                         \
            WG_LANES(WG_DECL)                                                                  \
            int64_t l = 0;                                                                     \
            for (; l + 16 <= pl->L; l += 16) {                                                 \
                WG_LANES(WG_ADD)                                                               \
            }                                                                                  \
            double ps = (((a0 + a8) + (a4 + a12)) + ((a2 + a10) + (a6 + a14))) +               \
                        (((a1 + a9) + (a5 + a13)) + ((a3 + a11) + (a7 + a15)));                \
            for (; l < pl->L; l++)                                                             \
                ps += (double)r[l];                                                            \
            s += ps;                                                                           \
        }                                                                                      \
        ((T *)pl->out)[o] = (T)s;                                                              \
    } while (0)

static void bias_task(void *arg, int64_t o, int worker)
{
    (void)worker;
    const wg_plan *pl = arg;
    if (pl->dt == EM_F32)
        BIAS(float);
    else
        BIAS(double);
}

/* db on its own pass over dy */
static void bias_pass(cpu_inst *inst, wg_plan *pl, void *db)
{
    pl->out = db;
    if (pl->N > 1 && cpu_threads(inst) > 1 && pl->N * pl->OC * pl->L >= PAR_COSTLY)
        cpu_parallel(inst, pl->OC, bias_task, pl);
    else
        for (int64_t o = 0; o < pl->OC; o++)
            bias_task(pl, o, 0);
}

static const char *KN = "conv2d_grad_weight";

static void *data(const em_kview *v)
{
    size_t esz = v->dtype == EM_F32 ? sizeof(float) : sizeof(double);
    return (char *)v->buf + (size_t)v->offset * esz;
}

em_status cpu_k_conv2d_grad_weight(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    if (ka->struct_size < offsetof(em_kargs, fp) || ka->n_in < 2 || !ka->ins || ka->n_out < 1 ||
        ka->n_out > 2 || !ka->outs || ka->n_ip < 11 || !ka->ip)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: expected 2 inputs, 1 or 2 outputs and 11 "
                       "integer parameters", KN);
    const em_kview *x = ka->ins[0], *dy = ka->ins[1], *dw = ka->outs[0];
    const em_kview *db = ka->n_out > 1 ? ka->outs[1] : NULL;
    const char *names[4] = {"x", "dy", "dw", "db"};
    const em_kview *views[4] = {x, dy, dw, db};
    em_status st;
    for (int i = 0; i < 4; i++)
        if (views[i] && (st = cpu_check_view(inst, KN, names[i], views[i])) != EM_OK)
            return st;
    if (x->dtype != EM_F32 && x->dtype != EM_F64)
        return cpu_unsupported(inst, KN, x->dtype);
    for (int i = 1; i < 4; i++)
        if (views[i] && views[i]->dtype != x->dtype)
            return cpu_mismatch(inst, KN, names[i], views[i]->dtype, x->dtype);
    const int64_t *ip = ka->ip;
    wg_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.inst = inst;
    pl.dt = x->dtype;
    pl.esz = x->dtype == EM_F32 ? sizeof(float) : sizeof(double);
    pl.kh = ip[0], pl.kw = ip[1], pl.sh = ip[2], pl.sw = ip[3], pl.ph = ip[4], pl.pw = ip[5];
    pl.dh = ip[6], pl.dw = ip[7], pl.oh = ip[8], pl.ow = ip[9], pl.g = ip[10];
    int geom_ok = x->ndim == 4 && dy->ndim == 4 && pl.g >= 1;
    if (geom_ok) {
        pl.N = x->shape[0], pl.C = x->shape[1], pl.H = x->shape[2], pl.W = x->shape[3];
        pl.OC = dy->shape[1];
        geom_ok = pl.kh >= 1 && pl.kw >= 1 && pl.sh >= 1 && pl.sw >= 1 && pl.ph >= 0 &&
                  pl.pw >= 0 && pl.dh >= 1 && pl.dw >= 1 && pl.C % pl.g == 0 &&
                  pl.OC % pl.g == 0 && cpu_view_is4(dy, pl.N, pl.OC, pl.oh, pl.ow) &&
                  cpu_view_is4(dw, pl.OC, pl.C / pl.g, pl.kh, pl.kw) &&
                  pl.oh == (pl.H + 2 * pl.ph - pl.dh * (pl.kh - 1) - 1) / pl.sh + 1 &&
                  pl.ow == (pl.W + 2 * pl.pw - pl.dw * (pl.kw - 1) - 1) / pl.sw + 1 &&
                  (!db || (db->ndim == 1 && db->shape[0] == pl.OC));
    }
    if (!geom_ok)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: inconsistent shapes or window (x %d-D, dy "
                       "%d-D, dw %d-D, groups %lld)", KN, (int)x->ndim, (int)dy->ndim,
                       (int)dw->ndim, (long long)pl.g);
    for (int i = 0; i < 4; i++)
        if (views[i] && !cpu_view_contiguous(views[i]))
            return CPU_ERR(inst, EM_ERR_INVALID, "%s: %s is not contiguous", KN, names[i]);
    pl.cg = pl.C / pl.g, pl.ocg = pl.OC / pl.g;
    pl.ck = pl.cg * pl.kh * pl.kw, pl.ckk = pl.C * pl.kh * pl.kw, pl.L = pl.oh * pl.ow;
    pl.wn = pl.OC * pl.ck;
    pl.ngroups = (pl.N + WG_IMAGES - 1) / WG_IMAGES;
    pl.x = data(x);
    pl.dy = data(dy);
    /* a 3x3 window of stride 1 over enough channels: Winograd (cpu_winograd.c) */
    if (cpu_wino_grad_weight_applies(ip, pl.C, pl.OC)) {
        return cpu_wino_grad_weight(inst, pl.dt, pl.x, pl.dy, data(dw), db ? data(db) : NULL,
                                    x->shape, pl.OC, ip);
    }
    pl.few = pl.ck < WG_MIN_TAPS;
#ifdef WG_FEW_AVX2
    pl.avx2 = pl.dt == EM_F32 && inst->simd >= CPU_SIMD_AVX2;
#endif

    /* scratch first (nothing is written before all of it exists): each worker's columns,
     * the partial sums (one group's straight into dw when its blocks are not transposed),
     * every worker's gemm packing space */
    int nt = pl.ngroups > 1 ? cpu_threads(inst) : 1, nw = inst->nthreads;
    size_t colbytes = pl.esz * (size_t)pl.ckk * (size_t)pl.L;
    for (int w = 0; w < nw; w++)
        if (!cpu_scratch_get(inst, &inst->conv[w], colbytes))
            return CPU_ERR(inst, EM_ERR_OOM, "%s: cannot allocate %zu bytes of columns", KN,
                           colbytes);
    pl.tr = !pl.few && pl.ck > pl.ocg;
    const int direct = pl.ngroups == 1 && !pl.tr;   /* the one partial sum is dw itself */
    size_t partbytes = pl.esz * (size_t)pl.ngroups * (size_t)pl.wn;
    partbytes = direct ? 0 : (partbytes + 63) & ~(size_t)63;   /* bpart after it, aligned */
    size_t bbytes = pl.few && db ? sizeof(double) * (size_t)pl.ngroups * (size_t)pl.OC : 0;
    char *ps = partbytes + bbytes ? cpu_scratch_get(inst, &inst->conv_part, partbytes + bbytes)
                                  : NULL;
    if (partbytes + bbytes && !ps)
        return CPU_ERR(inst, EM_ERR_OOM, "%s: cannot allocate %zu bytes of partial sums", KN,
                       partbytes + bbytes);
    pl.part = direct ? data(dw) : ps;
    pl.bpart = bbytes ? (double *)(void *)(ps + partbytes) : NULL;
    em_gemm_args shape;
    for (int w = 0; w < nw && !pl.few; w++)
        if ((st = cpu_gemm_worker(inst, product(&pl, &shape, 0, 0, 0, inst->conv[w].p), w, 1)) !=
            EM_OK)
            return st;
    atomic_int failed = 0;
    pl.failed = &failed;

    cpu_task_fn task = pl.few ? few_task : group_task;
    if (nt > 1)
        cpu_parallel(inst, pl.ngroups, task, &pl);
    else
        for (int64_t t = 0; t < pl.ngroups; t++)
            task(&pl, t, 0);
    if (atomic_load(&failed))
        return CPU_ERR(inst, EM_ERR_INTERNAL, "%s: a product found its packing space unreserved",
                       KN);

    pl.out = data(dw);
    pl.chunk = 4096;
    int64_t nchunks = (pl.wn + pl.chunk - 1) / pl.chunk;
    if (direct)
        ;   /* already there */
    else if (nt > 1 && nchunks > 1 && pl.wn * pl.ngroups >= PAR_COSTLY)
        cpu_parallel(inst, nchunks, reduce_task, &pl);
    else
        for (int64_t c = 0; c < nchunks; c++)
            reduce_task(&pl, c, 0);
    if (db && pl.few)
        few_bias(&pl, data(db));
    else if (db)
        bias_pass(inst, &pl, data(db));
    return EM_OK;
}
