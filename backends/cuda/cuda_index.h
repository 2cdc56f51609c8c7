/* backends/cuda/cuda_index.h — the logic of the CUDA kernels that does not need a GPU, as
 * __host__ __device__ code shared by the kernels (cuda_kernels.cu) and the host unit test
 * (tests/test_cuda_host.c, plain C11): the scalar semantics of every op (identical to the
 * cpu backend's, NaN handling included), the Philox draws, strided/broadcast offsets of
 * elementwise views, and the partition of sum reductions over blocks and threads.
 *
 * Plain C11 and CUDA C++17; no CUDA header is needed. Everything is static inline. */
#ifndef EMBER_CUDA_INDEX_H
#define EMBER_CUDA_INDEX_H

#include <ember/backend.h>
#include <ember/philox.h>
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define EMCU_HD static __host__ __device__ __forceinline__
#else
#define EMCU_HD static inline
#endif

/* ================================================================== op lists
 * X-macros naming the kernels that share a shape: the .cu file generates one functor and
 * one ops-table entry per name, and the host test compares each name's scalar function
 * with the cpu backend's kernel of the same name. */

/* out = f(x, p0, p1), float dtypes */
#define EMCU_UNARY_OPS(X)                                                                 \
    X(neg) X(exp) X(log) X(sqrt) X(abs) X(relu) X(tanh) X(sigmoid) X(add_scalar)          \
    X(mul_scalar) X(rsub_scalar) X(div_scalar) X(rdiv_scalar) X(clamp)

/* out = f(a, b, p0, p1), float dtypes */
#define EMCU_BINARY_OPS(X)                                                                \
    X(add) X(sub) X(mul) X(div) X(maximum) X(minimum) X(relu_backward) X(clamp_backward)  \
    X(tanh_backward) X(sigmoid_backward)

/* out (bool) = f(a, b); f32, f64 and bool inputs */
#define EMCU_COMPARE_OPS(X) X(lt) X(le) X(gt) X(ge) X(eq) X(ne)

/* ================================================================== scalar semantics
 * Each mirrors backends/cpu/cpu_kernels.c expression for expression (scalars p0, p1 are
 * first rounded to the dtype, as there). Built without FMA contraction (nvcc --fmad=false)
 * so that + and * round exactly as on the host; only the transcendental functions (exp,
 * log, tanh, pow) may differ from glibc's by the device library's documented ulps. */

#define EMCU_DEF_FLOAT_OPS(S, T, EXP, LOG, SQRT, FABS, TANH, POW)                           \
    EMCU_HD T emcu_neg_##S(T x, T p0, T p1) { (void)p0; (void)p1; return -x; }            \
    EMCU_HD T emcu_exp_##S(T x, T p0, T p1) { (void)p0; (void)p1; return EXP(x); }        \
    EMCU_HD T emcu_log_##S(T x, T p0, T p1) { (void)p0; (void)p1; return LOG(x); }        \
    EMCU_HD T emcu_sqrt_##S(T x, T p0, T p1) { (void)p0; (void)p1; return SQRT(x); }      \
    EMCU_HD T emcu_abs_##S(T x, T p0, T p1) { (void)p0; (void)p1; return FABS(x); }       \
    /* NaN and -0 pass through (as PyTorch): only a number < 0 becomes 0 */              \
    EMCU_HD T emcu_relu_##S(T x, T p0, T p1)                                              \
    {                                                                                     \
        (void)p0;                                                                         \
        (void)p1;                                                                         \
        return x < 0 ? (T)0 : x;                                                          \
    }                                                                                     \
    EMCU_HD T emcu_tanh_##S(T x, T p0, T p1) { (void)p0; (void)p1; return TANH(x); }      \
    /* exp of -|x| never overflows, so both halves of the logistic stay finite */          \
    EMCU_HD T emcu_sigmoid_##S(T x, T p0, T p1)                                           \
    {                                                                                     \
        (void)p0;                                                                         \
        (void)p1;                                                                         \
        const T e = EXP(-FABS(x));                                                        \
        return x >= 0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);                              \
    }                                                                                     \
    EMCU_HD T emcu_add_scalar_##S(T x, T p0, T p1) { (void)p1; return x + p0; }           \
    EMCU_HD T emcu_mul_scalar_##S(T x, T p0, T p1) { (void)p1; return x * p0; }           \
    EMCU_HD T emcu_rsub_scalar_##S(T x, T p0, T p1) { (void)p1; return p0 - x; }          \
    /* a true division: x * (1/p0) would round differently */                             \
    EMCU_HD T emcu_div_scalar_##S(T x, T p0, T p1) { (void)p1; return x / p0; }           \
    EMCU_HD T emcu_rdiv_scalar_##S(T x, T p0, T p1) { (void)p1; return p0 / x; }          \
    /* min(max(x, lo), hi): NaN in x propagates (both comparisons are false); lo > hi     \
     * gives hi */                                                                        \
    EMCU_HD T emcu_clamp_##S(T x, T p0, T p1)                                             \
    {                                                                                     \
        const T lo = x < p0 ? p0 : x;                                                     \
        return lo > p1 ? p1 : lo;                                                         \
    }                                                                                     \
    /* pow_scalar; mode from emcu_pow_mode(exponent) */                                   \
    EMCU_HD T emcu_pow_##S(T x, T p0, int mode)                                           \
    {                                                                                     \
        switch (mode) {                                                                   \
        case EMCU_POW_TWO: return x * x;                                                  \
        case EMCU_POW_ONE: return x;                                                      \
        case EMCU_POW_ZERO: return (T)1;                                                  \
        case EMCU_POW_HALF: return SQRT(x);                                               \
        case EMCU_POW_MINUS_ONE: return (T)1 / x;                                         \
        default: return POW(x, p0);                                                       \
        }                                                                                 \
    }                                                                                     \
    EMCU_HD T emcu_add_##S(T a, T b, T p0, T p1) { (void)p0; (void)p1; return a + b; }    \
    EMCU_HD T emcu_sub_##S(T a, T b, T p0, T p1) { (void)p0; (void)p1; return a - b; }    \
    EMCU_HD T emcu_mul_##S(T a, T b, T p0, T p1) { (void)p0; (void)p1; return a * b; }    \
    EMCU_HD T emcu_div_##S(T a, T b, T p0, T p1) { (void)p0; (void)p1; return a / b; }    \
    /* a NaN on either side wins (PyTorch maximum/minimum) */                             \
    EMCU_HD T emcu_maximum_##S(T a, T b, T p0, T p1)                                      \
    {                                                                                     \
        (void)p0;                                                                         \
        (void)p1;                                                                         \
        return a > b || a != a ? a : b;                                                   \
    }                                                                                     \
    EMCU_HD T emcu_minimum_##S(T a, T b, T p0, T p1)                                      \
    {                                                                                     \
        (void)p0;                                                                         \
        (void)p1;                                                                         \
        return a < b || a != a ? a : b;                                                   \
    }                                                                                     \
    /* backward helpers: a = g, b = x or y; masks select rather than multiply */          \
    EMCU_HD T emcu_relu_backward_##S(T a, T b, T p0, T p1)                                \
    {                                                                                     \
        (void)p0;                                                                         \
        (void)p1;                                                                         \
        return b <= 0 ? (T)0 : a;                                                         \
    }                                                                                     \
    EMCU_HD T emcu_clamp_backward_##S(T a, T b, T p0, T p1)                               \
    {                                                                                     \
        return p0 <= b && b <= p1 ? a : (T)0;                                             \
    }                                                                                     \
    EMCU_HD T emcu_tanh_backward_##S(T a, T b, T p0, T p1)                                \
    {                                                                                     \
        (void)p0;                                                                         \
        (void)p1;                                                                         \
        return a * ((T)1 - b * b);                                                        \
    }                                                                                     \
    EMCU_HD T emcu_sigmoid_backward_##S(T a, T b, T p0, T p1)                             \
    {                                                                                     \
        (void)p0;                                                                         \
        (void)p1;                                                                         \
        return a * (((T)1 - b) * b);                                                      \
    }                                                                                     \
    /* pow_backward; mode from emcu_pow_backward_mode(exponent) */                        \
    EMCU_HD T emcu_pow_backward_##S(T a, T b, T p0, int mode)                             \
    {                                                                                     \
        switch (mode) {                                                                   \
        case EMCU_POW_TWO: return a * ((T)2 * b);                                         \
        case EMCU_POW_ONE: return a;                                                      \
        default: return a * (p0 * POW(b, p0 - (T)1));                                    \
        }                                                                                 \
    }

/* pow fast paths, chosen from the exponent in double (before rounding to the dtype), as
 * the cpu backend does: results as pow's up to pow's own rounding, sqrt for 0.5. */
enum {
    EMCU_POW_GENERIC = 0,
    EMCU_POW_TWO = 1,
    EMCU_POW_ONE = 2,
    EMCU_POW_ZERO = 3,
    EMCU_POW_HALF = 4,
    EMCU_POW_MINUS_ONE = 5
};

EMCU_HD int emcu_pow_mode(double e)
{
    return e == 2.0    ? EMCU_POW_TWO
           : e == 1.0  ? EMCU_POW_ONE
           : e == 0.0  ? EMCU_POW_ZERO
           : e == 0.5  ? EMCU_POW_HALF
           : e == -1.0 ? EMCU_POW_MINUS_ONE
                       : EMCU_POW_GENERIC;
}

/* pow_backward has fast paths for 2 and 1 only (bit-identical to the generic form). */
EMCU_HD int emcu_pow_backward_mode(double e)
{
    return e == 2.0 ? EMCU_POW_TWO : e == 1.0 ? EMCU_POW_ONE : EMCU_POW_GENERIC;
}

EMCU_DEF_FLOAT_OPS(f32, float, expf, logf, sqrtf, fabsf, tanhf, powf)
EMCU_DEF_FLOAT_OPS(f64, double, exp, log, sqrt, fabs, tanh, pow)

#define EMCU_DEF_COMPARE_OPS(S, T)                                                        \
    EMCU_HD uint8_t emcu_lt_##S(T a, T b) { return (uint8_t)(a < b); }                    \
    EMCU_HD uint8_t emcu_le_##S(T a, T b) { return (uint8_t)(a <= b); }                   \
    EMCU_HD uint8_t emcu_gt_##S(T a, T b) { return (uint8_t)(a > b); }                    \
    EMCU_HD uint8_t emcu_ge_##S(T a, T b) { return (uint8_t)(a >= b); }                   \
    EMCU_HD uint8_t emcu_eq_##S(T a, T b) { return (uint8_t)(a == b); }                   \
    EMCU_HD uint8_t emcu_ne_##S(T a, T b) { return (uint8_t)(a != b); }

EMCU_DEF_COMPARE_OPS(f32, float)
EMCU_DEF_COMPARE_OPS(f64, double)
EMCU_DEF_COMPARE_OPS(bool, uint8_t)

/* fill / masked_fill value of a kernel scalar: rounded to float, or != 0 for bool */
EMCU_HD float emcu_scalar_f32(double p) { return (float)p; }
EMCU_HD double emcu_scalar_f64(double p) { return p; }
EMCU_HD uint8_t emcu_scalar_bool(double p) { return (uint8_t)(p != 0); }

/* copy conversions: to bool is != 0; everything else a C conversion */
EMCU_HD uint8_t emcu_to_bool_f32(float x) { return (uint8_t)(x != 0); }
EMCU_HD uint8_t emcu_to_bool_f64(double x) { return (uint8_t)(x != 0); }

/* ================================================================== random numbers
 * Element lin (row-major logical index of out) of a draw with key seed and base counter
 * ctr, as <ember/philox.h> specifies and the cpu backend computes: the affine map in
 * double, rounded once to the dtype. */
EMCU_HD float emcu_uniform_f32(uint64_t seed, uint64_t ctr, int64_t lin, double lo, double span)
{
    const float u = em_philox_uniform01_f32(em_philox4x32_10(seed, ctr + (uint64_t)lin));
    return (float)(lo + span * (double)u);
}

EMCU_HD double emcu_uniform_f64(uint64_t seed, uint64_t ctr, int64_t lin, double lo, double span)
{
    const double u = em_philox_uniform01(em_philox4x32_10(seed, ctr + (uint64_t)lin));
    return lo + span * u;
}

EMCU_HD double emcu_normal(uint64_t seed, uint64_t ctr, int64_t lin, double mean, double sd)
{
    const double z = em_philox_normal(em_philox4x32_10(seed, ctr + (uint64_t)lin));
    return mean + sd * z;
}

/* ================================================================== elementwise geometry
 * The core hands elementwise kernels views of one shape (broadcast inputs have stride 0),
 * coalesced, so contiguous work arrives 1-D. Operand 0 is out, 1.. the inputs. */

#define EMCU_MAX_OPS 4

typedef struct emcu_geom {
    int32_t ndim;
    int32_t nops;
    int64_t numel;
    int64_t shape[EM_MAX_DIMS];
    int64_t st[EMCU_MAX_OPS][EM_MAX_DIMS];   /* element strides per operand */
} emcu_geom;

/* Fill g from n_ops views of equal shape (already checked). Returns numel. */
EMCU_HD int64_t emcu_geom_init(emcu_geom *g, const em_kview *const *v, int n_ops)
{
    g->ndim = v[0]->ndim;
    g->nops = n_ops;
    g->numel = 1;
    for (int d = 0; d < EM_MAX_DIMS; d++) {
        g->shape[d] = d < g->ndim ? v[0]->shape[d] : 1;
        if (d < g->ndim)
            g->numel *= v[0]->shape[d];
        for (int k = 0; k < EMCU_MAX_OPS; k++)
            g->st[k][d] = k < n_ops && d < g->ndim ? v[k]->strides[d] : 0;
    }
    return g->numel;
}

/* 1 when the flat path applies: 1-D, out contiguous, every input contiguous or a
 * broadcast scalar (stride 0). */
EMCU_HD int emcu_geom_flat(const emcu_geom *g)
{
    if (g->ndim != 1 || g->st[0][0] != 1)
        return 0;
    for (int k = 1; k < g->nops; k++)
        if (g->st[k][0] != 0 && g->st[k][0] != 1)
            return 0;
    return 1;
}

/* Element offsets in the first nops operands of logical (row-major) index lin. */
EMCU_HD void emcu_geom_offsets(const emcu_geom *g, int64_t lin, int64_t *off, int nops)
{
    for (int k = 0; k < nops; k++)
        off[k] = 0;
    if (g->ndim == 1) {
        for (int k = 0; k < nops; k++)
            off[k] = lin * g->st[k][0];
        return;
    }
    for (int d = g->ndim - 1; d >= 0; d--) {
        const int64_t n = g->shape[d];
        const int64_t q = lin / n, i = lin - q * n;
        lin = q;
        for (int k = 0; k < nops; k++)
            off[k] += i * g->st[k][d];
    }
}

/* Blocks for a grid-stride loop over `work` items: enough to cover it, at most max_blocks
 * (a few waves' worth, chosen per device), at least 1. */
EMCU_HD int64_t emcu_grid_blocks(int64_t work, int threads, int64_t max_blocks)
{
    int64_t b = (work + threads - 1) / threads;
    if (b > max_blocks)
        b = max_blocks;
    return b < 1 ? 1 : b;
}

/* ================================================================== sum reductions
 * out (size 1 in reduced dims) = scale * sum of in over them, accumulated in double.
 * Dims are classified kept/reduced (size-1 input dims dropped, same-class neighbours that
 * are contiguous in both views merged); the dim with the smallest input stride ("inner")
 * decides the block shape:
 *   serial  L <= EMCU_RED_SERIAL_MAX: one thread per output sums its L elements in order;
 *   col     inner is kept: 32 adjacent outputs x 8 row slices per block (coalesced reads
 *           of whole rows), the 8 partial sums combined by a fixed tree;
 *   row     inner is reduced: one output per block, 256 threads stride over a chunk of
 *           its elements, combined by a fixed tree.
 * A reduction longer than one chunk is split over nch blocks per output tile; each writes
 * a partial, and the last block of the tile to finish (an atomic counter) adds the
 * partials in a fixed order. Every addition happens in an order fixed by the shapes
 * alone — never by timing or the GPU model — so sums are deterministic, in one launch. */

#define EMCU_RED_THREADS 256
#define EMCU_RED_SERIAL_MAX 64
#define EMCU_RED_COL_BX 32
#define EMCU_RED_COL_ITEMS 16     /* rows per thread per chunk, col mode */
#define EMCU_RED_ROW_ITEMS 16     /* elements per thread per chunk, row mode */
#define EMCU_RED_MAX_BLOCKS 2147483647LL

typedef struct emcu_red_plan {
    int32_t nk, nr;
    int32_t mode;                 /* EMCU_RED_SERIAL / COL / ROW */
    int32_t bx, by;               /* block shape: bx outputs x by reducers */
    int64_t ks[EM_MAX_DIMS], kist[EM_MAX_DIMS], kost[EM_MAX_DIMS];   /* kept dims */
    int64_t rs[EM_MAX_DIMS], rist[EM_MAX_DIMS];                      /* reduced dims */
    int64_t M, L;                 /* outputs; elements summed into each */
    int64_t chunk;                /* elements of one output summed by one block */
    int64_t nch;                  /* chunks (blocks) per output tile */
    int64_t ntiles;               /* output tiles: ceil(M / bx) */
    int64_t nblocks;              /* ntiles * nch, the grid */
} emcu_red_plan;

enum { EMCU_RED_SERIAL = 0, EMCU_RED_COL = 1, EMCU_RED_ROW = 2 };

/* Plan results */
enum {
    EMCU_RED_OK = 0,
    EMCU_RED_EMPTY_OUT = 1,       /* no outputs: nothing to do */
    EMCU_RED_EMPTY_IN = 2,        /* outputs but nothing to sum: fill them with 0 */
    EMCU_RED_BAD_SHAPE = -1,      /* out size neither 1 nor in's in some dim */
    EMCU_RED_TOO_BIG = -2         /* more blocks than a grid holds */
};

/* Build the plan for in (nd dims: ishape, ist) reduced into out (oshape, ost). On
 * EMCU_RED_BAD_SHAPE, *bad_dim is the offending dim. */
EMCU_HD int emcu_red_plan_build(int nd, const int64_t *ishape, const int64_t *ist,
                                const int64_t *oshape, const int64_t *ost, emcu_red_plan *p,
                                int *bad_dim)
{
    int64_t sz[EM_MAX_DIMS], is[EM_MAX_DIMS], os[EM_MAX_DIMS];
    int red[EM_MAX_DIMS];
    int n = 0;
    int64_t in_numel = 1, out_numel = 1;
    for (int d = 0; d < nd; d++) {
        const int64_t a = ishape[d], o = oshape[d];
        in_numel *= a;
        out_numel *= o;
        if (o != a && o != 1) {
            if (bad_dim)
                *bad_dim = d;
            return EMCU_RED_BAD_SHAPE;
        }
        if (a == 1)
            continue;
        const int r = o == 1;
        if (n > 0 && red[n - 1] == r && is[n - 1] == ist[d] * a &&
            (r || os[n - 1] == ost[d] * a)) {
            sz[n - 1] *= a;
            is[n - 1] = ist[d];
            os[n - 1] = ost[d];
            continue;
        }
        sz[n] = a;
        is[n] = ist[d];
        os[n] = ost[d];
        red[n] = r;
        n++;
    }
    if (out_numel == 0)
        return EMCU_RED_EMPTY_OUT;
    if (in_numel == 0)
        return EMCU_RED_EMPTY_IN;
    /* inner: smallest |input stride|, a broadcast (stride 0) dim ranked last, ties to the
     * later dim (as the cpu backend) */
    int inner = -1;
    uint64_t best = 0;
    for (int d = 0; d < n; d++) {
        const uint64_t a = is[d] == 0 ? UINT64_MAX : (uint64_t)(is[d] < 0 ? -is[d] : is[d]);
        if (inner < 0 || a <= best) {
            inner = d;
            best = a;
        }
    }
    p->nk = p->nr = 0;
    p->M = p->L = 1;
    /* row-major over each class, with inner moved last so that neighbouring threads get
     * neighbouring addresses */
    for (int pass = 0; pass < 2; pass++) {
        for (int d = 0; d < n; d++) {
            if ((pass == 0) == (d == inner))
                continue;
            if (red[d]) {
                p->rs[p->nr] = sz[d];
                p->rist[p->nr++] = is[d];
                p->L *= sz[d];
            } else {
                p->ks[p->nk] = sz[d];
                p->kist[p->nk] = is[d];
                p->kost[p->nk++] = os[d];
                p->M *= sz[d];
            }
        }
    }
    if (p->nr == 0) {   /* nothing reduced: a scaled copy, a reduction of length 1 */
        p->rs[0] = 1;
        p->rist[0] = 0;
        p->nr = 1;
    }
    if (p->nk == 0) {   /* one output */
        p->ks[0] = 1;
        p->kist[0] = p->kost[0] = 0;
        p->nk = 1;
    }
    if (p->L <= EMCU_RED_SERIAL_MAX) {
        p->mode = EMCU_RED_SERIAL;
        p->bx = EMCU_RED_THREADS;
        p->by = 1;
        p->chunk = p->L;
    } else if (inner >= 0 && !red[inner]) {
        p->mode = EMCU_RED_COL;
        p->bx = EMCU_RED_COL_BX;
        p->by = EMCU_RED_THREADS / EMCU_RED_COL_BX;
        p->chunk = (int64_t)p->by * EMCU_RED_COL_ITEMS;
    } else {
        p->mode = EMCU_RED_ROW;
        p->bx = 1;
        p->by = EMCU_RED_THREADS;
        p->chunk = (int64_t)p->by * EMCU_RED_ROW_ITEMS;
    }
    p->nch = (p->L + p->chunk - 1) / p->chunk;
    p->ntiles = (p->M + p->bx - 1) / p->bx;
    if (p->ntiles > EMCU_RED_MAX_BLOCKS / p->nch)
        return EMCU_RED_TOO_BIG;
    p->nblocks = p->ntiles * p->nch;
    return EMCU_RED_OK;
}

/* Input and output offsets of output o (row-major over the kept dims). */
EMCU_HD void emcu_red_kept(const emcu_red_plan *p, int64_t o, int64_t *ioff, int64_t *ooff)
{
    int64_t in = 0, out = 0;
    for (int d = p->nk - 1; d >= 0; d--) {
        const int64_t q = o / p->ks[d], i = o - q * p->ks[d];
        o = q;
        in += i * p->kist[d];
        out += i * p->kost[d];
    }
    *ioff = in;
    *ooff = out;
}

/* Input offset of reduction element r (row-major over the reduced dims). */
EMCU_HD int64_t emcu_red_roff(const emcu_red_plan *p, int64_t r)
{
    if (p->nr == 1)
        return r * p->rist[0];
    int64_t off = 0;
    for (int d = p->nr - 1; d >= 0; d--) {
        const int64_t q = r / p->rs[d], i = r - q * p->rs[d];
        r = q;
        off += i * p->rist[d];
    }
    return off;
}

/* Block b's output tile and chunk: consecutive blocks share a tile. */
EMCU_HD void emcu_red_block(const emcu_red_plan *p, int64_t b, int64_t *tile, int64_t *ch)
{
    *tile = b / p->nch;
    *ch = b - *tile * p->nch;
}

/* Thread (tx, ty) of a block of tile `tile`, chunk `ch`: its output (>= M: idle) and the
 * reduction elements it sums, r = first, first + step, ... < end. */
EMCU_HD int64_t emcu_red_output(const emcu_red_plan *p, int64_t tile, int tx)
{
    return tile * p->bx + tx;
}

EMCU_HD void emcu_red_range(const emcu_red_plan *p, int64_t ch, int ty, int64_t *first,
                            int64_t *end, int64_t *step)
{
    const int64_t c0 = ch * p->chunk;
    const int64_t c1 = c0 + p->chunk < p->L ? c0 + p->chunk : p->L;
    *first = c0 + ty;
    *end = c1;
    *step = p->by;
}

/* Scratch a split reduction needs: one counter per tile, one partial per (output, chunk).
 * Zero when nch == 1. Counters come first, padded to 256 bytes. */
EMCU_HD int64_t emcu_red_counter_bytes(const emcu_red_plan *p)
{
    return p->nch > 1 ? (p->ntiles * 4 + 255) / 256 * 256 : 0;
}

EMCU_HD int64_t emcu_red_partial_bytes(const emcu_red_plan *p)
{
    return p->nch > 1 ? p->M * p->nch * 8 : 0;
}

#endif
