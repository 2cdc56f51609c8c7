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
 * The groups do not depend on the thread count, so neither do the bits. */
#include "cpu_ew.h"

#include <stdatomic.h>
#include <string.h>

/* images per partial sum: fewer partial sums to add against enough tasks to share out */
#define WG_IMAGES 8
/* the fewest C/g*kh*kw this kernel takes (measured: bench/conv_step, docs/benchmarks.md) */
#define WG_MIN_TAPS 16

typedef struct wg_plan {
    cpu_inst *inst;
    int dt;
    size_t esz;
    const char *x, *dy;
    char *part;                       /* ngroups partial sums of OC x ck */
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
    /* few taps per output channel (a first layer over one or two input channels): each
     * image's product is too thin to repay its own call; the core's batched lowering wins */
    if (pl.ck < WG_MIN_TAPS)
        return CPU_ERR(inst, EM_ERR_UNSUPPORTED, "%s: %lld taps per output channel (fewer than "
                       "%d): lowered", KN, (long long)pl.ck, WG_MIN_TAPS);

    /* scratch first (nothing is written before all of it exists): each worker's columns,
     * the partial sums (one group's straight into dw when its blocks are not transposed),
     * every worker's gemm packing space */
    int nt = pl.ngroups > 1 ? cpu_threads(inst) : 1, nw = inst->nthreads;
    size_t colbytes = pl.esz * (size_t)pl.ckk * (size_t)pl.L;
    for (int w = 0; w < nw; w++)
        if (!cpu_scratch_get(inst, &inst->conv[w], colbytes))
            return CPU_ERR(inst, EM_ERR_OOM, "%s: cannot allocate %zu bytes of columns", KN,
                           colbytes);
    pl.tr = pl.ck > pl.ocg;
    size_t partbytes = pl.esz * (size_t)pl.ngroups * (size_t)pl.wn;
    if (pl.ngroups == 1 && !pl.tr)
        pl.part = data(dw);
    else if (!(pl.part = cpu_scratch_get(inst, &inst->conv_part, partbytes)))
        return CPU_ERR(inst, EM_ERR_OOM, "%s: cannot allocate %zu bytes of partial sums", KN,
                       partbytes);
    em_gemm_args shape;
    for (int w = 0; w < nw; w++)
        if ((st = cpu_gemm_worker(inst, product(&pl, &shape, 0, 0, 0, inst->conv[w].p), w, 1)) !=
            EM_OK)
            return st;
    atomic_int failed = 0;
    pl.failed = &failed;

    if (nt > 1)
        cpu_parallel(inst, pl.ngroups, group_task, &pl);
    else
        for (int64_t t = 0; t < pl.ngroups; t++)
            group_task(&pl, t, 0);
    if (atomic_load(&failed))
        return CPU_ERR(inst, EM_ERR_INTERNAL, "%s: a product found its packing space unreserved",
                       KN);

    pl.out = data(dw);
    pl.chunk = 4096;
    int64_t nchunks = (pl.wn + pl.chunk - 1) / pl.chunk;
    if (pl.ngroups == 1 && !pl.tr)
        ;   /* already there */
    else if (nt > 1 && nchunks > 1 && pl.wn * pl.ngroups >= PAR_COSTLY)
        cpu_parallel(inst, nchunks, reduce_task, &pl);
    else
        for (int64_t c = 0; c < nchunks; c++)
            reduce_task(&pl, c, 0);
    if (db) {
        pl.out = data(db);
        if (nt > 1 && pl.N * pl.OC * pl.L >= PAR_COSTLY)
            cpu_parallel(inst, pl.OC, bias_task, &pl);
        else
            for (int64_t o = 0; o < pl.OC; o++)
                bias_task(&pl, o, 0);
    }
    return EM_OK;
}
