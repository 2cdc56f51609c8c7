/* backends/cpu/cpu_winograd.c — the cpu backend's whole-convolution kernels of ABI 1.4
 * (conv2d, conv2d_grad_input; definitions in ember/backend.h). A 3x3 convolution with stride
 * 1, dilation 1, one group and padding 0..2 runs as Winograd F(2x2, 3x3): the weights go
 * through G g G^T into 16 (OC x C) matrices; then each chunk of tile rows, one task on the
 * pool, goes whole through one worker: B^T d B into 16 (C x tiles) matrices in its part of
 * the instance's scratch, the 16 products as one batched call of the backend's own gemm on
 * that thread (cpu_gemm_worker), and A^T m A to 2x2 outputs per tile with the bias added in
 * the same pass. The input gradient of such a convolution is the same convolution of
 * the output gradient with the weights flipped and transposed and padding 2 - p, through the
 * same code. conv2d with a small C*kh*kw goes to the direct kernel (cpu_conv_direct.c) instead.
 * Anything else is declined (EM_ERR_UNSUPPORTED, nothing written) and the core lowers it.
 * Each output is computed by one task in a fixed order and the gemm's result does not depend
 * on the path it takes, so the convolution's does not depend on the thread count. */
#include "cpu_ew.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* Bytes of transformed input and products per chunk of tile rows (~L2 sized: a chunk's
 * products are read back by the output transform while still in the core's cache). The chunk
 * size changes no result: every output is computed the same way in any chunk. */
#ifndef WINO_CHUNK_BYTES
#define WINO_CHUNK_BYTES (1u << 20)
#endif

/* Where Winograd beats the lowering (measured, see docs/benchmarks.md): conv2d from this many
 * input channels (below, the direct kernel or the lowering is faster: its products are too
 * shallow); the input gradient from this many of the forward's input channels (the outputs
 * of its Winograd convolution: fewer make a gemm of few rows, while the lowering's product
 * W^T dy is then small and cheap) and this many output channels. */
#ifndef WINO_MIN_C
#define WINO_MIN_C 4
#endif
#ifndef WINO_GRAD_MIN_C
#define WINO_GRAD_MIN_C 16
#endif
#ifndef WINO_GRAD_MIN_OC
#define WINO_GRAD_MIN_OC 4
#endif

/* The weight's gradient by Winograd from this many input and output channels (its 16
 * products per chunk are OC x C; fewer make them too small to repay the transforms), and
 * only where at least three quarters of the tiles the per-row passes write are real (a
 * 7-wide output, 4 tiles in a vector of 8, measured slower than the column matrices:
 * docs/benchmarks.md). */
#ifndef WINO_WG_MIN_C
#define WINO_WG_MIN_C 32
#endif
#ifndef WINO_WG_MIN_OC
#define WINO_WG_MIN_OC 32
#endif

/* elements per task of the weight gradient's sum of its groups' partial sums */
#define WINO_SUM_BLOCK 4096

/* the per-row passes of the transforms write whole vectors of this many tiles */
#define WINO_TB 8

typedef struct wino_plan {
    int64_t N, C, H, W;       /* the convolution's input (x, or dy for the input gradient) */
    int64_t OC, oh, ow;       /* its output */
    int64_t ph, pw;           /* its padding (top and left) */
    int64_t th, tw;           /* tiles per image, down and across */
    int64_t twp;              /* tw rounded up to WINO_TB: the tiles a per-row pass writes */
    int64_t tws;              /* tiles from one tile row to the next in V, M, buffers: tw */
    int64_t r0, nr, ld, lp;   /* the chunk: tile rows [r0, r0 + nr) of N * th, ld = nr * tws;
                                 lp = ld + twp - tws, the transforms' buffers' row pitch */
    const void *x, *w, *bias;
    void *y;
    /* the weight (o, c, i, j) of this convolution is w[w_base + o*w_so + c*w_sc + i*w_si +
     * j*w_sj] */
    int64_t w_base, w_so, w_sc, w_si, w_sj;
    void *U, *V, *M, *rows;
    int64_t rows_per_worker;  /* elements of the transforms' buffer (rows) */
    /* the weight's gradient: dy (N, OC, oh, ow) and the groups of chunks whose products
     * add into one partial sum (U: ngroups of them, each 16 x OC x C) */
    const void *dy;
    int64_t ngroups;
    double *bsum;             /* the bias's gradient: OC sums of dy for this group, or NULL */
    int relu;                 /* the forward's output through ReLU (ABI 1.6) */
} wino_plan;

#define WATTR
#define WT float
#define WS f32
#include "cpu_winograd_tmpl.h"
#undef WT
#undef WS
#define WT double
#define WS f64
#include "cpu_winograd_tmpl.h"
#undef WT
#undef WS
#undef WATTR
#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_CPU_NO_SIMD)
/* the same transforms compiled for AVX2+FMA, for instances that have it */
#define WINO_AVX2 1
#include <immintrin.h>
#include <stdint.h>

/* The even and odd elements of the 16 in a, b, in order. */
__attribute__((target("avx2,fma"))) static inline __m256 even8(__m256 a, __m256 b)
{
    __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

__attribute__((target("avx2,fma"))) static inline __m256 odd8(__m256 a, __m256 b)
{
    __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* Eight elements of the row x (Wd long) from column o on (o may be negative or run past the
 * end): those outside the row are 0 and are not read (a masked load reads no masked lane). */
__attribute__((target("avx2,fma"))) static inline __m256 row8(const float *x, int64_t Wd,
                                                                int64_t o)
{
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)o),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i in = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), idx),
                                           _mm256_cmpgt_epi32(_mm256_set1_epi32((int)Wd), idx));
    return _mm256_maskload_ps((const float *)((uintptr_t)x + (uintptr_t)(o * 4)), in);
}

/* row_h for f32 on AVX2, 8 tiles at a time over all twp of them (the tiles past tw get the
 * zeros past the row): the same operations on the same values as the portable row_h, so the
 * same bits, without its scalar split of the row into even and odd columns, which cost more
 * than the rest of the input transform on the narrow rows of a small image. E and O unused. */
__attribute__((target("avx2,fma"))) static void
row_h_f32_vec(const float *restrict x, int64_t Wd, int64_t pw, float *restrict E,
              float *restrict O, float *restrict h0, float *restrict h1, float *restrict h2,
              float *restrict h3, int64_t tw)
{
    (void)E;
    (void)O;
    for (int64_t t = 0; t < tw; t += 8) {
        const int64_t o = 2 * t - pw;   /* tile t's first column */
        const __m256 a = row8(x, Wd, o), b = row8(x, Wd, o + 8);
        const __m256 c = row8(x, Wd, o + 2), d = row8(x, Wd, o + 10);
        const __m256 e0 = even8(a, b), o0 = odd8(a, b), e1 = even8(c, d), o1 = odd8(c, d);
        _mm256_storeu_ps(h0 + t, _mm256_sub_ps(e0, e1));
        _mm256_storeu_ps(h1 + t, _mm256_add_ps(o0, e1));
        _mm256_storeu_ps(h2 + t, _mm256_sub_ps(e1, o0));
        _mm256_storeu_ps(h3 + t, _mm256_sub_ps(o0, o1));
    }
}

/* An output row of ow columns: q0[tx], q1[tx] interleaved (columns 2tx, 2tx + 1) straight
 * into y, 16 columns at a time, the last few one by one (q0, q1 hold whole blocks of 8
 * tiles). */
__attribute__((target("avx2,fma"))) static void out_row_f32_vec(const float *restrict q0,
                                                                const float *restrict q1,
                                                                float *restrict y, int64_t ow)
{
    for (int64_t tx = 0; 2 * tx < ow; tx += 8) {
        const __m256 a = _mm256_loadu_ps(q0 + tx), b = _mm256_loadu_ps(q1 + tx);
        const __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);
        const __m256 v[2] = {_mm256_permute2f128_ps(lo, hi, 0x20),
                             _mm256_permute2f128_ps(lo, hi, 0x31)};
        for (int h = 0; h < 2; h++) {
            const int64_t col = 2 * tx + 8 * h, left = ow - col;
            if (left >= 8) {
                _mm256_storeu_ps(y + col, v[h]);
            } else if (left > 0) {   /* not a masked store: microcoded and slow on some CPUs */
                __m128 part = _mm256_castps256_ps128(v[h]);
                float *d = y + col;
                if (left & 4) {
                    _mm_storeu_ps(d, part);
                    part = _mm256_extractf128_ps(v[h], 1);
                    d += 4;
                }
                if (left & 2) {
                    _mm_storel_pi((__m64 *)(void *)d, part);
                    part = _mm_movehl_ps(part, part);
                    d += 2;
                }
                if (left & 1)
                    _mm_store_ss(d, part);
            }
        }
    }
}

/* dy_split for f32 on AVX2: a row's even and odd columns, 8 tiles at a time */
__attribute__((target("avx2,fma"))) static void dy_split_f32_vec(const float *restrict row,
                                                                 int64_t ow, float *restrict E,
                                                                 float *restrict O, int64_t twp)
{
    for (int64_t t = 0; t < twp; t += 8) {
        if (!row) {
            _mm256_storeu_ps(E + t, _mm256_setzero_ps());
            _mm256_storeu_ps(O + t, _mm256_setzero_ps());
            continue;
        }
        const __m256 a = row8(row, ow, 2 * t), b = row8(row, ow, 2 * t + 8);
        _mm256_storeu_ps(E + t, even8(a, b));
        _mm256_storeu_ps(O + t, odd8(a, b));
    }
}

#define WATTR __attribute__((target("avx2,fma")))
#define WT float
#define WS f32_avx2
#define WROW_H row_h_f32_vec
#define WOUT_ROW out_row_f32_vec
#define WSPLIT dy_split_f32_vec
#include "cpu_winograd_tmpl.h"
#undef WSPLIT
#undef WOUT_ROW
#undef WROW_H
#undef WT
#undef WS
#define WT double
#define WS f64_avx2
#include "cpu_winograd_tmpl.h"
#undef WT
#undef WS
#undef WATTR
#endif

/* the three transforms of one dtype and ISA */
typedef struct wino_fns {
    cpu_task_fn weights, input, output, dy, wsum, wout;
} wino_fns;

#define WINO_FNS(S)                                                                        \
    (wino_fns){wino_weights_##S, wino_input_##S, wino_output_##S, wino_dy_##S, wino_wsum_##S, \
               wino_wout_##S}

static wino_fns wino_pick(const cpu_inst *inst, int f64)
{
#ifdef WINO_AVX2
    if (inst->simd >= CPU_SIMD_AVX2)
        return f64 ? WINO_FNS(f64_avx2) : WINO_FNS(f32_avx2);
#endif
    (void)inst;
    return f64 ? WINO_FNS(f64) : WINO_FNS(f32);
}

static size_t align64(size_t b)
{
    return (b + 63) & ~(size_t)63;
}

/* Run fn over ntasks on the pool, inline when the work is too small to fork for. */
static void run_tasks(cpu_inst *inst, int64_t ntasks, double work, cpu_task_fn fn, void *arg)
{
    if (work < PAR_CHEAP || ntasks < 2) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(arg, t, 0);
        return;
    }
    cpu_parallel(inst, ntasks, fn, arg);
}

/* The 16 products of one chunk: M[xi] (OC x ld) = U[xi] (OC x C) V[xi] (C x ld). */
static em_gemm_args chunk_gemm(const wino_plan *p, int32_t dt, int64_t ld, void *V, void *M)
{
    em_gemm_args g;
    memset(&g, 0, sizeof g);
    g.struct_size = sizeof g;
    g.dtype = dt;
    g.m = p->OC;
    g.n = ld;
    g.k = p->C;
    g.batch = 16;
    g.alpha = 1.0;
    g.beta = 0.0;
    g.a = p->U;
    g.lda = p->C;
    g.a_batch_stride = p->OC * p->C;
    g.b = V;
    g.ldb = ld;
    g.b_batch_stride = p->C * ld;
    g.c = M;
    g.ldc = ld;
    g.c_batch_stride = p->OC * ld;
    return g;
}

/* The plan's tiles (th, tw, twp, tws) and the tile rows of a chunk: about WINO_CHUNK_BYTES
 * of transformed input and products, and where it can be a whole number of the gemm's
 * 16-column blocks in ld = nr * tws. */
static int64_t wino_tiles(wino_plan *p, size_t esz)
{
    p->th = (p->oh + 1) / 2;
    p->tw = (p->ow + 1) / 2;
    p->twp = (p->tw + WINO_TB - 1) / WINO_TB * WINO_TB;
    p->tws = p->tw;
    const int64_t rows_total = p->N * p->th;
    const double per_row = 16.0 * (double)(p->C + p->OC) * (double)p->tws * (double)esz;
    int64_t nr = (int64_t)((double)WINO_CHUNK_BYTES / per_row), q16 = 16;
    while (q16 > 1 && (p->tws * (q16 / 2)) % 16 == 0)
        q16 /= 2;   /* the fewest tile rows whose tiles fill whole 16-column blocks */
    if (nr >= q16)
        nr -= nr % q16;
    if (nr < 1)
        nr = 1;
    return nr > rows_total ? rows_total : nr;
}

/* The whole job: the plan, the chunking and each worker's part of the scratch. */
typedef struct wino_job {
    const wino_plan *p;
    wino_fns fn;
    int32_t dt;
    int64_t rows_total, nr;          /* tile rows in all, per chunk */
    char *work;                      /* per worker: V, M, the transforms' buffers */
    size_t per_worker, vb, mb;       /* bytes */
    cpu_inst *inst;
    atomic_int failed;               /* a chunk's gemm failed (not reserved: a bug) */
} wino_job;

/* Chunk `task` whole on this worker: its input transform over every channel, its 16
 * products, its output transform over every output channel. */
static void wino_chunk(void *arg, int64_t task, int worker)
{
    wino_job *jb = arg;
    wino_plan q = *jb->p;
    char *w = jb->work + (size_t)worker * jb->per_worker;
    q.r0 = task * jb->nr;
    q.nr = jb->rows_total - q.r0 < jb->nr ? jb->rows_total - q.r0 : jb->nr;
    q.ld = q.nr * q.tws;
    q.lp = q.ld + q.twp - q.tws;
    q.V = w;
    q.M = w + jb->vb;
    q.rows = w + jb->vb + jb->mb;
    for (int64_t c = 0; c < q.C; c++)
        jb->fn.input(&q, c, worker);
    em_gemm_args g = chunk_gemm(&q, jb->dt, q.ld, q.V, q.M);
    if (cpu_gemm_worker(jb->inst, &g, worker, 0) != EM_OK) {
        atomic_store(&jb->failed, 1);
        return;
    }
    for (int64_t o = 0; o < q.OC; o++)
        jb->fn.output(&q, o, worker);
}

static em_gemm_args wg_gemm(const wino_plan *p, int32_t dt, int64_t ld, void *V, void *M,
                            void *part, double beta);

/* The job of plan p in chunks of nr tile rows (wino_tiles), its workspace taken from the
 * instance's scratch: ub bytes first (p->U: the transformed weights, or the weight
 * gradient's partial sums), then each worker's V, M and transforms' buffers; and every
 * worker's gemm packing space for both chunk sizes (the forward's products, or with wgrad
 * the weight gradient's), so that nothing fails after the fork. k names the kernel. */
static em_status wino_setup(cpu_inst *inst, int32_t dt, wino_plan *p, int64_t nr, size_t ub,
                            int wgrad, const char *k, wino_job *jb)
{
    const size_t esz = dt == EM_F64 ? sizeof(double) : sizeof(float);
    const int64_t rows_total = p->N * p->th, nchunks = (rows_total + nr - 1) / nr;
    const int64_t ldmax = nr * p->tws, last = (rows_total - (nchunks - 1) * nr) * p->tws;
    const int nw = inst->nthreads;
    const size_t vb = align64(esz * 16 * (size_t)p->C * (size_t)ldmax);
    const size_t mb = align64(esz * 16 * (size_t)p->OC * (size_t)ldmax);
    /* the transforms' buffers: the input's 16 lp + 2 (twp + 1), the output's 12 lp + 2 twp,
     * the output gradient's 4 lp */
    const int64_t lpmax = ldmax + p->twp - p->tws;
    p->rows_per_worker = (16 * lpmax + 2 * (p->twp + 1) + 15) / 16 * 16;
    const size_t per_worker = vb + mb + align64(esz * (size_t)p->rows_per_worker);
    char *s = cpu_scratch_get(inst, &inst->wino, ub + per_worker * (size_t)nw);
    if (!s)
        return CPU_ERR(inst, EM_ERR_OOM, "%s: cannot allocate %zu bytes of Winograd workspace",
                       k, ub + per_worker * (size_t)nw);
    p->U = s;
    for (int w = 0; w < nw; w++)
        for (int i = 0; i < (last != ldmax ? 2 : 1); i++) {
            const int64_t ld = i ? last : ldmax;
            em_gemm_args g = wgrad ? wg_gemm(p, dt, ld, s, s, s, 1.0) : chunk_gemm(p, dt, ld, s, s);
            em_status st = cpu_gemm_worker(inst, &g, w, 1);
            if (st != EM_OK)
                return st;
        }
    jb->p = p;
    jb->fn = wino_pick(inst, dt == EM_F64);
    jb->dt = dt;
    jb->rows_total = rows_total;
    jb->nr = nr;
    jb->work = s + ub;
    jb->per_worker = per_worker;
    jb->vb = vb;
    jb->mb = mb;
    jb->inst = inst;
    atomic_init(&jb->failed, 0);
    return EM_OK;
}

/* The Winograd convolution the plan describes (its geometry, x, w and the weight strides
 * filled in): chunks of tile rows, one task each, spread over the pool in one fork; each
 * worker keeps its chunk's transformed input and products in its own part of the instance's
 * scratch (WINO_CHUNK_BYTES, about its share of the L2). All scratch (the gemm's packing
 * space included) is taken before the fork, so nothing fails after the output is touched. */
static em_status wino_run(cpu_inst *inst, int32_t dt, wino_plan *p)
{
    const size_t esz = dt == EM_F64 ? sizeof(double) : sizeof(float);
    const int64_t nr = wino_tiles(p, esz), rows_total = p->N * p->th;
    const int64_t nchunks = (rows_total + nr - 1) / nr;
    wino_job jb;
    em_status st = wino_setup(inst, dt, p, nr, align64(esz * 16 * (size_t)p->OC * (size_t)p->C),
                              0, "conv2d", &jb);
    if (st != EM_OK)
        return st;
    run_tasks(inst, p->OC, 16.0 * (double)p->OC * (double)p->C, jb.fn.weights, p);
    run_tasks(inst, nchunks, 16.0 * (double)(p->C + p->OC) * (double)(rows_total * p->tws),
              wino_chunk, &jb);
    if (atomic_load(&jb.failed))
        return CPU_ERR(inst, EM_ERR_INTERNAL, "conv2d: a Winograd product failed");
    return EM_OK;
}

/* ------------------------------------------------------------------ the weight's gradient
 *
 *   dw[o][c] = G^T ( sum over tiles t of DY[xi][o][t] * X[xi][c][t] ) G
 *   X = B^T d B (the forward's input transform), DY = A dy A^T (wino_dy)
 *   db[o]    = dy summed over n, y, x, on the way through wino_dy (each element once)
 *
 * Chunks of tile rows as in the forward; the 16 products of a chunk (OC x C each, over its
 * tiles) add into the partial sum of its group of WINO_WG_CHUNKS chunks (one pool task per
 * group); the groups' sums are added in group order by the output transform. Chunks and
 * groups follow from the shapes alone, so the bits do not depend on the thread count. */

static int wino_window(const int64_t *ip);

/* Chunks per partial sum: fewer sums to add against enough tasks to share out. */
#define WINO_WG_CHUNKS 2

/* The 16 products of one chunk: part[xi] (OC x C) (+)= DY[xi] (OC x ld) X[xi]^T (ld x C). */
static em_gemm_args wg_gemm(const wino_plan *p, int32_t dt, int64_t ld, void *V, void *M,
                            void *part, double beta)
{
    em_gemm_args g;
    memset(&g, 0, sizeof g);
    g.struct_size = sizeof g;
    g.dtype = dt;
    g.trans_b = 1;
    g.m = p->OC;
    g.n = p->C;
    g.k = ld;
    g.batch = 16;
    g.alpha = 1.0;
    g.beta = beta;
    g.a = M;
    g.lda = ld;
    g.a_batch_stride = p->OC * ld;
    g.b = V;
    g.ldb = ld;
    g.b_batch_stride = p->C * ld;
    g.c = part;
    g.ldc = p->C;
    g.c_batch_stride = p->OC * p->C;
    return g;
}

/* Group `task` of chunks whole on this worker: per chunk, both transforms and the products
 * into the group's partial sum. */
static void wino_wg_group(void *arg, int64_t task, int worker)
{
    wino_job *jb = arg;
    wino_plan q = *jb->p;
    char *w = jb->work + (size_t)worker * jb->per_worker;
    const size_t esz = jb->dt == EM_F64 ? sizeof(double) : sizeof(float);
    char *part = (char *)q.U + (size_t)(task * 16 * q.OC * q.C) * esz;
    if (q.bsum) {   /* this group's sums of dy, added chunk by chunk in wino_dy */
        q.bsum += task * q.OC;
        for (int64_t o = 0; o < q.OC; o++)
            q.bsum[o] = 0;
    }
    q.V = w;
    q.M = w + jb->vb;
    q.rows = w + jb->vb + jb->mb;
    const int64_t nchunks = (jb->rows_total + jb->nr - 1) / jb->nr;
    const int64_t c0 = task * WINO_WG_CHUNKS;
    const int64_t c1 = c0 + WINO_WG_CHUNKS < nchunks ? c0 + WINO_WG_CHUNKS : nchunks;
    for (int64_t ch = c0; ch < c1; ch++) {
        q.r0 = ch * jb->nr;
        q.nr = jb->rows_total - q.r0 < jb->nr ? jb->rows_total - q.r0 : jb->nr;
        q.ld = q.nr * q.tws;
        q.lp = q.ld + q.twp - q.tws;
        for (int64_t c = 0; c < q.C; c++)
            jb->fn.input(&q, c, worker);
        for (int64_t o = 0; o < q.OC; o++)
            jb->fn.dy(&q, o, worker);
        em_gemm_args g = wg_gemm(&q, jb->dt, q.ld, q.V, q.M, part, ch == c0 ? 0.0 : 1.0);
        if (cpu_gemm_worker(jb->inst, &g, worker, 0) != EM_OK) {
            atomic_store(&jb->failed, 1);
            return;
        }
    }
}

int cpu_wino_grad_weight_applies(const int64_t *ip, int64_t C, int64_t OC)
{
    const int64_t tw = (ip[9] + 1) / 2, twp = (tw + WINO_TB - 1) / WINO_TB * WINO_TB;
    return wino_window(ip) && C >= WINO_WG_MIN_C && OC >= WINO_WG_MIN_OC && 4 * tw >= 3 * twp;
}

em_status cpu_wino_grad_weight(cpu_inst *inst, int32_t dt, const void *x, const void *dy,
                               void *dw, void *db, const int64_t *xshape, int64_t OC,
                               const int64_t *ip)
{
    const size_t esz = dt == EM_F64 ? sizeof(double) : sizeof(float);
    wino_plan pl = {.N = xshape[0], .C = xshape[1], .H = xshape[2], .W = xshape[3], .OC = OC,
                    .oh = ip[8], .ow = ip[9], .ph = ip[4], .pw = ip[5], .x = x, .dy = dy,
                    .y = dw};
    wino_plan *p = &pl;
    const int64_t nr = wino_tiles(p, esz), rows_total = p->N * p->th;
    p->ngroups = ((rows_total + nr - 1) / nr + WINO_WG_CHUNKS - 1) / WINO_WG_CHUNKS;
    /* the groups' partial sums of the products, then of dy (db) */
    const size_t pb = align64(esz * (size_t)(p->ngroups * 16 * p->OC * p->C));
    const size_t ub = pb + align64(db ? sizeof(double) * (size_t)(p->ngroups * p->OC) : 0);
    wino_job jb;
    em_status st = wino_setup(inst, dt, p, nr, ub, 1, "conv2d_grad_weight", &jb);
    if (st != EM_OK)
        return st;
    p->bsum = db ? (double *)(void *)((char *)p->U + pb) : NULL;
    run_tasks(inst, p->ngroups, 16.0 * (double)(p->C + p->OC) * (double)(rows_total * p->tws),
              wino_wg_group, &jb);
    if (atomic_load(&jb.failed))
        return CPU_ERR(inst, EM_ERR_INTERNAL, "conv2d_grad_weight: a Winograd product failed");
    const int64_t blk = 16 * p->OC * p->C;
    run_tasks(inst, (blk + WINO_SUM_BLOCK - 1) / WINO_SUM_BLOCK, (double)(p->ngroups * blk),
              jb.fn.wsum, p);
    run_tasks(inst, p->OC, 16.0 * (double)blk, jb.fn.wout, p);
    for (int64_t o = 0; db && o < p->OC; o++) {   /* db: the groups' sums in group order */
        double t = 0;
        for (int64_t grp = 0; grp < p->ngroups; grp++)
            t += p->bsum[grp * p->OC + o];
        if (dt == EM_F64)
            ((double *)db)[o] = t;
        else
            ((float *)db)[o] = (float)t;
    }
    return EM_OK;
}

/* ------------------------------------------------------------------ argument checks */

/* The views and parameters of a conv2d / conv2d_grad_input call: n_in inputs (a, b, and the
 * bias when n_in is 3), one output, 11 integers; every view contiguous and of one float
 * dtype (f32 or f64). */
static em_status check_call(cpu_inst *inst, const char *k, const em_kargs *a, int max_in)
{
    if (!a->ins || !a->outs || a->n_out < 1 || a->n_in < 2 || a->n_in > (uint32_t)max_in ||
        a->n_ip < 11 || !a->ip)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: expected 1 output, 2%s inputs and 11 integer "
                       "parameters", k, max_in > 2 ? " or 3" : "");
    const em_kview *o = a->outs[0];
    em_status st = cpu_check_view(inst, k, "output", o);
    for (uint32_t i = 0; st == EM_OK && i < a->n_in; i++)
        st = cpu_check_view(inst, k, "input", a->ins[i]);
    if (st != EM_OK)
        return st;
    if (o->dtype != EM_F32 && o->dtype != EM_F64)
        return cpu_unsupported(inst, k, o->dtype);
    for (uint32_t i = 0; i < a->n_in; i++)
        if (a->ins[i]->dtype != o->dtype)
            return cpu_mismatch(inst, k, "input", a->ins[i]->dtype, o->dtype);
    const em_kview *v4[3] = {o, a->ins[0], a->ins[1]};
    int ok = 1;
    for (int i = 0; i < 3; i++)
        ok = ok && v4[i]->ndim == 4 && cpu_view_contiguous(v4[i]);
    if (!ok ||
        (a->n_in > 2 && (a->ins[2]->ndim != 1 || (a->ins[2]->shape[0] > 1 &&
                                                   a->ins[2]->strides[0] != 1))))
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: views must be contiguous 4-D NCHW (the bias "
                       "1-D)", k);
    for (int i = 0; i < 11; i++)
        if (a->ip[i] < ((i == 4 || i == 5) ? 0 : 1))
            return CPU_ERR(inst, EM_ERR_INVALID, "%s: parameter %d is %lld", k, i,
                           (long long)a->ip[i]);
    return EM_OK;
}

/* Whether the window is Winograd's: 3x3, stride 1, dilation 1, one group, padding 0..2. */
static int wino_window(const int64_t *ip)
{
    return ip[0] == 3 && ip[1] == 3 && ip[2] == 1 && ip[3] == 1 && ip[4] <= 2 && ip[5] <= 2 &&
           ip[6] == 1 && ip[7] == 1 && ip[10] == 1;
}

static em_status decline(cpu_inst *inst, const char *k, const int64_t *ip)
{
    return CPU_ERR(inst, EM_ERR_UNSUPPORTED, "%s: the cpu backend runs only 3x3 convolutions "
                   "with stride 1, dilation 1, one group, padding up to 2 and enough channels "
                   "(got kernel "
                   "%lldx%lld, stride %lld,%lld, padding %lld,%lld, dilation %lld,%lld, groups "
                   "%lld)", k, (long long)ip[0], (long long)ip[1], (long long)ip[2],
                   (long long)ip[3], (long long)ip[4], (long long)ip[5], (long long)ip[6],
                   (long long)ip[7], (long long)ip[10]);
}

em_status cpu_k_conv2d(void *dev, const em_kargs *a)
{
    cpu_inst *inst = dev;
    em_status st = check_call(inst, "conv2d", a, 3);
    if (st != EM_OK)
        return st;
    const em_kview *x = a->ins[0], *w = a->ins[1], *b = a->n_in > 2 ? a->ins[2] : NULL;
    const em_kview *y = a->outs[0];
    const int64_t *ip = a->ip;
    /* ABI 1.6: ip[11] = 1 asks for relu(y) */
    const int64_t relu = a->n_ip > 11 ? ip[11] : 0;
    if (relu != 0 && relu != 1)
        return CPU_ERR(inst, EM_ERR_INVALID, "conv2d: parameter 11 (relu) is %lld, not 0 or 1",
                       (long long)relu);
    if (w->shape[0] != y->shape[1] || x->shape[0] != y->shape[0] || w->shape[2] != ip[0] ||
        w->shape[3] != ip[1] || y->shape[2] != ip[8] || y->shape[3] != ip[9] ||
        x->shape[1] != w->shape[1] * ip[10] || (b && b->shape[0] != w->shape[0]) ||
        y->shape[2] != (x->shape[2] + 2 * ip[4] - ip[6] * (ip[0] - 1) - 1) / ip[2] + 1 ||
        y->shape[3] != (x->shape[3] + 2 * ip[5] - ip[7] * (ip[1] - 1) - 1) / ip[3] + 1)
        return CPU_ERR(inst, EM_ERR_SHAPE, "conv2d: views do not match the window");
    if (cpu_conv_direct_applies(inst, x, w, ip))
        return cpu_conv_direct(inst, x, w, b, y, ip, (int)relu);
    if (!wino_window(ip) || x->shape[1] < WINO_MIN_C)
        return decline(inst, "conv2d", ip);
    const int64_t C = x->shape[1], OC = w->shape[0];
    wino_plan p = {.N = x->shape[0], .C = C, .H = x->shape[2], .W = x->shape[3], .OC = OC,
                   .oh = ip[8], .ow = ip[9], .ph = ip[4], .pw = ip[5],
                   .x = (const char *)x->buf + (size_t)x->offset * (x->dtype == EM_F64 ? 8 : 4),
                   .w = (const char *)w->buf + (size_t)w->offset * (w->dtype == EM_F64 ? 8 : 4),
                   .bias = b ? (const char *)b->buf + (size_t)b->offset * (b->dtype == EM_F64 ? 8 : 4)
                             : NULL,
                   .y = (char *)y->buf + (size_t)y->offset * (y->dtype == EM_F64 ? 8 : 4),
                   .w_base = 0, .w_so = C * 9, .w_sc = 9, .w_si = 3, .w_sj = 1,
                   .relu = (int)relu};
    return wino_run(inst, y->dtype, &p);
}

/* dx = the convolution of dy (N, OC, oh, ow) with w'[c, o, i, j] = w[o, c, 2 - i, 2 - j]
 * and padding 2 - p: (oh + 2 (2 - p) - 2) = H. */
em_status cpu_k_conv2d_grad_input(void *dev, const em_kargs *a)
{
    cpu_inst *inst = dev;
    em_status st = check_call(inst, "conv2d_grad_input", a, 2);
    if (st != EM_OK)
        return st;
    const em_kview *dy = a->ins[0], *w = a->ins[1], *dx = a->outs[0];
    const int64_t *ip = a->ip;
    if (w->shape[0] != dy->shape[1] || dx->shape[0] != dy->shape[0] || w->shape[2] != ip[0] ||
        w->shape[3] != ip[1] || dy->shape[2] != ip[8] || dy->shape[3] != ip[9] ||
        dx->shape[1] != w->shape[1] * ip[10] ||
        ip[8] != (dx->shape[2] + 2 * ip[4] - ip[6] * (ip[0] - 1) - 1) / ip[2] + 1 ||
        ip[9] != (dx->shape[3] + 2 * ip[5] - ip[7] * (ip[1] - 1) - 1) / ip[3] + 1)
        return CPU_ERR(inst, EM_ERR_SHAPE, "conv2d_grad_input: views do not match the window");
    if (!wino_window(ip) || w->shape[0] < WINO_GRAD_MIN_OC || dx->shape[1] < WINO_GRAD_MIN_C)
        return decline(inst, "conv2d_grad_input", ip);
    const int64_t C = dx->shape[1], OC = w->shape[0];
    const size_t esz = dx->dtype == EM_F64 ? 8 : 4;
    wino_plan p = {.N = dy->shape[0], .C = OC, .H = ip[8], .W = ip[9], .OC = C,
                   .oh = dx->shape[2], .ow = dx->shape[3], .ph = 2 - ip[4], .pw = 2 - ip[5],
                   .x = (const char *)dy->buf + (size_t)dy->offset * esz,
                   .w = (const char *)w->buf + (size_t)w->offset * esz, .bias = NULL,
                   .y = (char *)dx->buf + (size_t)dx->offset * esz,
                   .w_base = 8, .w_so = 9, .w_sc = C * 9, .w_si = -3, .w_sj = -1};
    return wino_run(inst, dx->dtype, &p);
}
