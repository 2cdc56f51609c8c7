/* backends/cpu/cpu_kernels.c — the cpu backend's kernels of ABI 1.0 (their integer rows
 * are in cpu_int.c, the kernels of later minors in cpu_math.c, cpu_reduce.c, cpu_index.c).
 *
 * Elementwise kernels run on the strided walker of cpu_ew.c, which hands whole rows of the
 * innermost dim to a typed row function. Row functions are generated per (op, dtype) by
 * macros and have fast paths for unit strides and scalar broadcast (stride 0) so gcc can
 * vectorise them; no function pointer is called per element.
 *
 * sum reduces with pairwise (cascade) summation in double over a partition that depends
 * only on the shapes, never on the thread count. */
#include "cpu_ew.h"

#include <ember/philox.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ row functions */

/* cpu_rows.h twice: the baseline copy, and an AVX2 one (256-bit vectors; no FMA, so no
 * contraction: both round alike) that instances use when the CPU has AVX2. */
#define RN(name) RN2(name, ROWS_SFX)
#define RN2(name, sfx) RN3(name, sfx)
#define RN3(name, sfx) name##_##sfx

#define ROWS_SFX gen
#include "cpu_rows.h"
#undef ROWS_SFX

#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_CPU_NO_SIMD)
#define CPU_ROWS_AVX2 1
#pragma GCC push_options
#pragma GCC target("avx2,tune=haswell")
#define ROWS_SFX avx2
#include "cpu_rows.h"
#undef ROWS_SFX
#pragma GCC pop_options
/* the row table `name` for this instance */
#define ROWS(inst, name) ((inst)->simd >= CPU_SIMD_AVX2 ? name##_avx2 : name##_gen)
#else
#define ROWS(inst, name) (name##_gen)
#endif

/* ------------------------------------------------------------------ unary kernels */

/* ITAB: the kernel's integer rows (cpu_int.c), or NULL for a float-only kernel */
#define UNARY_KERNEL(OP, COST, ITAB)                                                      \
    em_status cpu_k_##OP(void *dev, const em_kargs *ka)                                   \
    {                                                                                     \
        cpu_inst *inst = dev;                                                             \
        const int32_t dt_ = ka->out ? ka->out->dtype : EM_F32;                            \
        return cpu_ew_launch(dev, ka, #OP, 1, cpu_pick_rows(ROWS(inst, OP##_rows), ITAB, dt_), \
                             dt_, SAME_OUT | SAME_IN0, COST);                             \
    }

UNARY_KERNEL(neg, PAR_CHEAP, cpu_int_neg_rows)
UNARY_KERNEL(exp, PAR_COSTLY, NULL)
UNARY_KERNEL(log, PAR_COSTLY, NULL)
UNARY_KERNEL(sqrt, PAR_CHEAP, NULL)
UNARY_KERNEL(abs, PAR_CHEAP, cpu_int_abs_rows)
UNARY_KERNEL(relu, PAR_CHEAP, NULL)
UNARY_KERNEL(tanh, PAR_COSTLY, NULL)
UNARY_KERNEL(sigmoid, PAR_COSTLY, NULL)
UNARY_KERNEL(add_scalar, PAR_CHEAP, cpu_int_add_scalar_rows)
UNARY_KERNEL(mul_scalar, PAR_CHEAP, cpu_int_mul_scalar_rows)
UNARY_KERNEL(rsub_scalar, PAR_CHEAP, cpu_int_rsub_scalar_rows)
UNARY_KERNEL(div_scalar, PAR_CHEAP, NULL)
UNARY_KERNEL(rdiv_scalar, PAR_CHEAP, NULL)
UNARY_KERNEL(clamp, PAR_CHEAP, cpu_int_clamp_rows)

em_status cpu_k_pow_scalar(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    const double e = ka->p[0];
    const row_fn *rows = ROWS(inst, pow_gen_rows);
    int64_t cost = PAR_COSTLY;
    if (e == 2.0)
        rows = ROWS(inst, pow_two_rows);
    else if (e == 1.0)
        rows = ROWS(inst, pow_one_rows);
    else if (e == 0.0)
        rows = ROWS(inst, pow_zero_rows);
    else if (e == 0.5)
        rows = ROWS(inst, pow_half_rows);
    else if (e == -1.0)
        rows = ROWS(inst, pow_minus_one_rows);
    if (rows != ROWS(inst, pow_gen_rows))
        cost = PAR_CHEAP;
    return cpu_ew_launch(dev, ka, "pow_scalar", 1, rows, ka->out ? ka->out->dtype : EM_F32,
                     SAME_OUT | SAME_IN0, cost);
}

#define BINARY_KERNEL(OP, COST, ITAB)                                                     \
    em_status cpu_k_##OP(void *dev, const em_kargs *ka)                                   \
    {                                                                                     \
        cpu_inst *inst = dev;                                                             \
        const int32_t dt_ = ka->out ? ka->out->dtype : EM_F32;                            \
        return cpu_ew_launch(dev, ka, #OP, 2, cpu_pick_rows(ROWS(inst, OP##_rows), ITAB, dt_), \
                             dt_, SAME_OUT | SAME_IN0 | SAME_IN1, COST);                  \
    }

BINARY_KERNEL(add, PAR_CHEAP, cpu_int_add_rows)
BINARY_KERNEL(sub, PAR_CHEAP, cpu_int_sub_rows)
BINARY_KERNEL(mul, PAR_CHEAP, cpu_int_mul_rows)
BINARY_KERNEL(div, PAR_CHEAP, NULL)
BINARY_KERNEL(maximum, PAR_CHEAP, cpu_int_maximum_rows)
BINARY_KERNEL(minimum, PAR_CHEAP, cpu_int_minimum_rows)
BINARY_KERNEL(relu_backward, PAR_CHEAP, NULL)
BINARY_KERNEL(clamp_backward, PAR_CHEAP, NULL)
BINARY_KERNEL(tanh_backward, PAR_CHEAP, NULL)
BINARY_KERNEL(sigmoid_backward, PAR_CHEAP, NULL)

em_status cpu_k_pow_backward(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    const double e = ka->p[0];
    const row_fn *rows = ROWS(inst, pow_backward_gen_rows);
    if (e == 2.0)
        rows = ROWS(inst, pow_backward_two_rows);
    else if (e == 1.0)
        rows = ROWS(inst, pow_backward_one_rows);
    return cpu_ew_launch(dev, ka, "pow_backward", 2, rows, ka->out ? ka->out->dtype : EM_F32,
                     SAME_OUT | SAME_IN0 | SAME_IN1,
                     rows == ROWS(inst, pow_backward_gen_rows) ? PAR_COSTLY : PAR_CHEAP);
}

/* ------------------------------------------------------------------ comparisons */

#define COMPARE_KERNEL(OP)                                                                \
    em_status cpu_k_##OP(void *dev, const em_kargs *ka)                                   \
    {                                                                                     \
        cpu_inst *inst = dev;                                                             \
        if (ka->out && ka->out->dtype != EM_BOOL)                                         \
            return cpu_mismatch(inst, #OP, "out", ka->out->dtype, EM_BOOL);                   \
        const int32_t dt_ = ka->in[0] ? ka->in[0]->dtype : EM_F32;                        \
        return cpu_ew_launch(dev, ka, #OP, 2,                                             \
                             cpu_pick_rows(ROWS(inst, OP##_rows), cpu_int_##OP##_rows, dt_), \
                             dt_, SAME_IN0 | SAME_IN1, PAR_CHEAP);                        \
    }

COMPARE_KERNEL(lt)
COMPARE_KERNEL(le)
COMPARE_KERNEL(gt)
COMPARE_KERNEL(ge)
COMPARE_KERNEL(eq)
COMPARE_KERNEL(ne)

/* ------------------------------------------------------------------ where / masked_fill */

em_status cpu_k_where(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    if (ka->in[0] && ka->in[0]->dtype != EM_BOOL)
        return cpu_mismatch(inst, "where", "in[0] (condition)", ka->in[0]->dtype, EM_BOOL);
    const int32_t dt = ka->out ? ka->out->dtype : EM_F32;
    return cpu_ew_launch(dev, ka, "where", 3,
                         cpu_pick_rows(ROWS(inst, where_rows), cpu_int_where_rows, dt), dt,
                         SAME_OUT | SAME_IN1 | SAME_IN2, PAR_CHEAP);
}

em_status cpu_k_masked_fill(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    if (ka->in[1] && ka->in[1]->dtype != EM_BOOL)
        return cpu_mismatch(inst, "masked_fill", "in[1] (mask)", ka->in[1]->dtype, EM_BOOL);
    const int32_t dt = ka->out ? ka->out->dtype : EM_F32;
    return cpu_ew_launch(dev, ka, "masked_fill", 2,
                         cpu_pick_rows(ROWS(inst, masked_fill_rows), cpu_int_masked_fill_rows, dt),
                         dt, SAME_OUT | SAME_IN0, PAR_CHEAP);
}

/* ------------------------------------------------------------------ fill / copy */

em_status cpu_k_fill(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    const int32_t dt = ka->out ? ka->out->dtype : EM_F32;
    return cpu_ew_launch(dev, ka, "fill", 0, cpu_pick_rows(ROWS(inst, fill_rows), cpu_int_fill_rows, dt),
                         dt, SAME_OUT, PAR_CHEAP);
}

em_status cpu_k_copy(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    if (!ka->out || !ka->in[0])
        return CPU_ERR(inst, EM_ERR_INVALID, "copy: a view is missing");
    int32_t to = ka->out->dtype, ti = ka->in[0]->dtype;
    if (!cpu_valid_dtype(to))
        return cpu_unsupported(inst, "copy", to);
    if (!cpu_valid_dtype(ti))
        return cpu_unsupported(inst, "copy", ti);
    /* conversions with an integer side are in cpu_int.c */
    const row_fn *rows = cpu_is_int(to) || cpu_is_int(ti) ? cpu_int_copy_rows[to]
                                                          : ROWS(inst, copy_rows)[to];
    return cpu_ew_launch(dev, ka, "copy", 1, rows, ti, SAME_IN0, PAR_CHEAP);
}

/* ------------------------------------------------------------------ rng */

/* f32 draws the same u as f64 rounded to float, and the affine map is done in double
 * then rounded once: the spec every backend follows bit for bit (<ember/philox.h>). */
static void uniform_f32(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka,
                        int64_t lin)
{
    float *o = (float *)pp[0];
    const int64_t so = s[0];
    const double lo = ka->p[0], span = ka->p[1] - ka->p[0];
    const uint64_t seed = ka->u[0], ctr = ka->u[1] + (uint64_t)lin;
    for (int64_t i = 0; i < n; i++) {
        float u = em_philox_uniform01_f32(em_philox4x32_10(seed, ctr + (uint64_t)i));
        o[i * so] = (float)(lo + span * (double)u);
    }
}

static void uniform_f64(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka,
                        int64_t lin)
{
    double *o = (double *)pp[0];
    const int64_t so = s[0];
    const double lo = ka->p[0], span = ka->p[1] - ka->p[0];
    const uint64_t seed = ka->u[0], ctr = ka->u[1] + (uint64_t)lin;
    for (int64_t i = 0; i < n; i++) {
        double u = em_philox_uniform01(em_philox4x32_10(seed, ctr + (uint64_t)i));
        o[i * so] = lo + span * u;
    }
}

#define DEF_NORMAL(NAME, T)                                                               \
    static void NAME(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka,    \
                     int64_t lin)                                                         \
    {                                                                                     \
        T *o = (T *)pp[0];                                                                \
        const int64_t so = s[0];                                                          \
        const double mean = ka->p[0], sd = ka->p[1];                                      \
        const uint64_t seed = ka->u[0], ctr = ka->u[1] + (uint64_t)lin;                   \
        for (int64_t i = 0; i < n; i++) {                                                 \
            double z = em_philox_normal(em_philox4x32_10(seed, ctr + (uint64_t)i));       \
            o[i * so] = (T)(mean + sd * z);                                               \
        }                                                                                 \
    }

DEF_NORMAL(normal_f32, float)
DEF_NORMAL(normal_f64, double)

static const row_fn uniform_rows[EM_DTYPE_COUNT_] = {[EM_F32] = uniform_f32,
                                                     [EM_F64] = uniform_f64};
static const row_fn normal_rows[EM_DTYPE_COUNT_] = {[EM_F32] = normal_f32,
                                                    [EM_F64] = normal_f64};

em_status cpu_k_rng_uniform(void *dev, const em_kargs *ka)
{
    return cpu_ew_launch(dev, ka, "rng_uniform", 0, uniform_rows,
                     ka->out ? ka->out->dtype : EM_F32, SAME_OUT, PAR_COSTLY);
}

em_status cpu_k_rng_normal(void *dev, const em_kargs *ka)
{
    return cpu_ew_launch(dev, ka, "rng_normal", 0, normal_rows, ka->out ? ka->out->dtype : EM_F32,
                     SAME_OUT, PAR_COSTLY);
}

/* ------------------------------------------------------------------ sum */

/* Scalar cascade: pushes are merged like a binary counter, giving pairwise accuracy for
 * a stream of partial sums of unknown length. */
typedef struct casc {
    double v[64];
    int64_t w[64];
    int n;
} casc;

static void casc_push(casc *c, double v, int64_t w)
{
    c->v[c->n] = v;
    c->w[c->n] = w;
    c->n++;
    while (c->n >= 2 && c->w[c->n - 1] >= c->w[c->n - 2]) {
        c->v[c->n - 2] += c->v[c->n - 1];
        c->w[c->n - 2] += c->w[c->n - 1];
        c->n--;
    }
}

static double casc_total(const casc *c)
{
    double r = 0;
    for (int i = c->n - 1; i >= 0; i--)
        r += c->v[i];
    return r;
}

#define SUM_CHUNK 32768           /* elements of one reduction per task (row mode) */
#define COL_TILE 4096             /* columns per accumulator tile (column mode) */
#define COL_CHUNK_ELEMS 65536     /* column mode: rows per chunk ~ this / tile width ... */
#define COL_CHUNK_MIN_ROWS 256    /* ... but at least this, to bound the partials */
#define COL_BLOCK 16              /* rows added sequentially before cascading */

typedef struct sum_plan {
    int32_t idt, odt;
    const char *ibase;
    char *obase;
    int64_t isz, osz;
    double scale;
    /* kept dims (outputs), row-major; in column mode the last one is the column dim */
    int nk;
    int64_t ks[EM_MAX_DIMS], kist[EM_MAX_DIMS], kost[EM_MAX_DIMS];
    /* reduced dims; in row mode the last one is the contiguous-ish inner dim */
    int nr;
    int64_t rs[EM_MAX_DIMS], rist[EM_MAX_DIMS];
    int64_t M, L;                 /* outputs, elements reduced per output */
    int col;                      /* column mode */
    int64_t C, ntiles, MO;        /* column mode: columns, tiles, outer outputs */
    int64_t chunk, nch;           /* chunk length (elements or rows) and count */
    int64_t tile, nlev;           /* column mode: tile width, cascade levels */
    double *partial;              /* [output][chunk] when nch > 1 */
    int64_t units_per_task, nunits;
    cpu_scratch *work;            /* column mode: per-worker accumulators */
    /* the inner loops (cpu_rows.h) for this instance's ISA */
    double (*seg_sum)(int32_t dt, const char *p, int64_t n, int64_t s);
    void (*add_row)(int32_t dt, double *restrict acc, const char *restrict p, int64_t n,
                    int64_t s);
} sum_plan;

/* Input offset (elements) of kept index o over the first nk kept dims. */
static int64_t kept_offset(const sum_plan *sp, int nk, int64_t o, int64_t *ooff)
{
    int64_t in = 0, out = 0;
    for (int d = nk - 1; d >= 0; d--) {
        int64_t i = o % sp->ks[d];
        o /= sp->ks[d];
        in += i * sp->kist[d];
        out += i * sp->kost[d];
    }
    if (ooff)
        *ooff = out;
    return in;
}

static void store_out(const sum_plan *sp, int64_t ooff, double v)
{
    v *= sp->scale;
    if (sp->odt == EM_F32)
        ((float *)sp->obase)[ooff] = (float)v;
    else
        ((double *)sp->obase)[ooff] = v;
}

/* Row mode: elements [r0, r0+cnt) of the reduction space of one output, in row-major
 * order of the reduced dims, each innermost run summed pairwise. */
static double sum_rspace(const sum_plan *sp, const char *base, int64_t r0, int64_t cnt)
{
    const int nr = sp->nr, last = nr - 1;
    int64_t idx[EM_MAX_DIMS], rem = r0, off = 0;
    for (int d = last; d >= 0; d--) {
        idx[d] = rem % sp->rs[d];
        rem /= sp->rs[d];
        off += idx[d] * sp->rist[d];
    }
    const char *p = base + off * sp->isz;
    casc c;
    c.n = 0;
    while (cnt > 0) {
        int64_t len = sp->rs[last] - idx[last];
        if (len > cnt)
            len = cnt;
        double v = sp->seg_sum(sp->idt, p, len, sp->rist[last]);
        cnt -= len;
        if (cnt == 0 && c.n == 0)
            return v;
        casc_push(&c, v, len);
        if (cnt == 0)
            break;
        p -= idx[last] * sp->rist[last] * sp->isz;
        idx[last] = 0;
        for (int d = last - 1; d >= 0; d--) {
            idx[d]++;
            p += sp->rist[d] * sp->isz;
            if (idx[d] < sp->rs[d])
                break;
            p -= sp->rs[d] * sp->rist[d] * sp->isz;
            idx[d] = 0;
        }
    }
    return casc_total(&c);
}

static void sum_row_unit(const sum_plan *sp, int64_t unit)
{
    int64_t o = unit / sp->nch, ch = unit % sp->nch;
    int64_t ooff;
    int64_t ioff = kept_offset(sp, sp->nk, o, &ooff);
    int64_t r0 = ch * sp->chunk;
    int64_t cnt = sp->L - r0 < sp->chunk ? sp->L - r0 : sp->chunk;
    double v = sum_rspace(sp, sp->ibase + ioff * sp->isz, r0, cnt);
    if (sp->nch == 1)
        store_out(sp, ooff, v);
    else
        sp->partial[o * sp->nch + ch] = v;
}

/* Column mode: rows [r0, r0+cnt) of the reduction space, columns [j0, j0+w) of outer
 * output mo. Whole rows are streamed into a vector of accumulators (a tile as wide as the
 * row, up to COL_TILE, so memory is read in order); rows are added in blocks of COL_BLOCK
 * and the block sums merged like a binary counter for pairwise accuracy. The
 * accumulators live in the worker's scratch: (nlev + 1) * tile doubles. */
static void sum_col_unit(const sum_plan *sp, int64_t unit, int worker)
{
    int64_t tile = unit % sp->ntiles, rest = unit / sp->ntiles;
    int64_t ch = rest % sp->nch, mo = rest / sp->nch;
    int64_t j0 = tile * sp->tile, w = sp->C - j0 < sp->tile ? sp->C - j0 : sp->tile;
    int64_t ooff;
    const int nk = sp->nk;
    int64_t ioff = kept_offset(sp, nk - 1, mo, &ooff);
    ioff += j0 * sp->kist[nk - 1];
    ooff += j0 * sp->kost[nk - 1];
    const int64_t cs = sp->kist[nk - 1];
    int64_t r0 = ch * sp->chunk, cnt = sp->L - r0 < sp->chunk ? sp->L - r0 : sp->chunk;

    double *blk = sp->work[worker].p;
    double *lev = blk + sp->tile;          /* level l at lev + l * tile */
    uint64_t used = 0;                     /* bit l: level l holds 2^l blocks */
    const int nr = sp->nr;
    int64_t idx[EM_MAX_DIMS], rem = r0, roff = 0;
    for (int d = nr - 1; d >= 0; d--) {
        idx[d] = rem % sp->rs[d];
        rem /= sp->rs[d];
        roff += idx[d] * sp->rist[d];
    }
    const char *p = sp->ibase + (ioff + roff) * sp->isz;
    while (cnt > 0) {
        int64_t nb = cnt < COL_BLOCK ? cnt : COL_BLOCK;
        memset(blk, 0, sizeof(double) * (size_t)w);
        for (int64_t r = 0; r < nb; r++) {
            sp->add_row(sp->idt, blk, p, w, cs);
            for (int d = nr - 1; d >= 0; d--) {
                idx[d]++;
                p += sp->rist[d] * sp->isz;
                if (idx[d] < sp->rs[d])
                    break;
                p -= sp->rs[d] * sp->rist[d] * sp->isz;
                idx[d] = 0;
            }
        }
        cnt -= nb;
        int64_t l = 0;
        while (l < sp->nlev - 1 && (used >> l & 1u)) {
            const double *lv = lev + l * sp->tile;
            for (int64_t j = 0; j < w; j++)
                blk[j] += lv[j];
            used &= ~((uint64_t)1 << l);
            l++;
        }
        double *lv = lev + l * sp->tile;
        if (used >> l & 1u)
            for (int64_t j = 0; j < w; j++)
                blk[j] += lv[j];
        memcpy(lv, blk, sizeof(double) * (size_t)w);
        used |= (uint64_t)1 << l;
    }
    memset(blk, 0, sizeof(double) * (size_t)w);
    for (int64_t l = 0; l < sp->nlev; l++)
        if (used >> l & 1u) {
            const double *lv = lev + l * sp->tile;
            for (int64_t j = 0; j < w; j++)
                blk[j] += lv[j];
        }
    for (int64_t j = 0; j < w; j++) {
        if (sp->nch == 1)
            store_out(sp, ooff + j * sp->kost[nk - 1], blk[j]);
        else
            sp->partial[(mo * sp->C + j0 + j) * sp->nch + ch] = blk[j];
    }
}

static void sum_task(void *arg, int64_t t, int worker)
{
    const sum_plan *sp = arg;
    int64_t u0 = t * sp->units_per_task;
    int64_t u1 = u0 + sp->units_per_task < sp->nunits ? u0 + sp->units_per_task : sp->nunits;
    for (int64_t u = u0; u < u1; u++) {
        if (sp->col)
            sum_col_unit(sp, u, worker);
        else
            sum_row_unit(sp, u);
    }
}

/* Pairwise combination of the per-chunk partials of each output. */
static double pairwise_partials(const double *x, int64_t n)
{
    if (n <= 8) {
        double r = 0;
        for (int64_t i = 0; i < n; i++)
            r += x[i];
        return r;
    }
    int64_t h = n / 2;
    return pairwise_partials(x, h) + pairwise_partials(x + h, n - h);
}

static void sum_finish_task(void *arg, int64_t t, int worker)
{
    (void)worker;
    const sum_plan *sp = arg;
    /* t is an output in row-major order of the kept dims */
    int64_t ooff;
    kept_offset(sp, sp->nk, t, &ooff);
    store_out(sp, ooff, pairwise_partials(sp->partial + t * sp->nch, sp->nch));
}

em_status cpu_k_sum(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    const em_kview *in = ka->in[0], *out = ka->out;
    em_status st;
    if ((st = cpu_check_view(inst, "sum", "out", out)) != EM_OK ||
        (st = cpu_check_view(inst, "sum", "in[0]", in)) != EM_OK)
        return st;
    if (out->dtype == EM_I64)
        return cpu_sum_i64(inst, ka);
    if (out->dtype != EM_F32 && out->dtype != EM_F64)
        return cpu_unsupported(inst, "sum", out->dtype);
    if (in->dtype != EM_F32 && in->dtype != EM_F64 && in->dtype != EM_BOOL)
        return cpu_unsupported(inst, "sum", in->dtype);
    if (in->ndim != out->ndim)
        return CPU_ERR(inst, EM_ERR_INVALID, "sum: in[0] has %d dims but out has %d",
                       (int)in->ndim, (int)out->ndim);
    sum_plan sp;
    memset(&sp, 0, sizeof sp);
    sp.idt = in->dtype;
    sp.odt = out->dtype;
    sp.isz = (int64_t)emk_dtype_size(in->dtype);
    sp.osz = (int64_t)emk_dtype_size(out->dtype);
    sp.ibase = (const char *)in->buf + in->offset * sp.isz;
    sp.obase = (char *)out->buf + out->offset * sp.osz;
    sp.scale = ka->p[0];
    sp.seg_sum = ROWS(inst, seg_sum);
    sp.add_row = ROWS(inst, add_row);

    /* classify dims, dropping size-1 ones and merging same-class neighbours that are
     * contiguous in both views */
    int64_t sz[EM_MAX_DIMS], ist[EM_MAX_DIMS], ost[EM_MAX_DIMS];
    int red[EM_MAX_DIMS], nd = 0;
    int64_t in_numel = 1, out_numel = 1;
    for (int d = 0; d < in->ndim; d++) {
        int64_t is = in->shape[d], os = out->shape[d];
        in_numel *= is;
        out_numel *= os;
        if (os != is && os != 1)
            return CPU_ERR(inst, EM_ERR_INVALID,
                           "sum: out has size %lld in dim %d, expected 1 or %lld", (long long)os,
                           d, (long long)is);
        if (is == 1)
            continue;
        int r = os == 1;
        if (nd > 0 && red[nd - 1] == r && ist[nd - 1] == in->strides[d] * is &&
            (r || ost[nd - 1] == out->strides[d] * is)) {
            sz[nd - 1] *= is;
            ist[nd - 1] = in->strides[d];
            ost[nd - 1] = out->strides[d];
            continue;
        }
        sz[nd] = is;
        ist[nd] = in->strides[d];
        ost[nd] = out->strides[d];
        red[nd] = r;
        nd++;
    }
    if (out_numel == 0)
        return EM_OK;
    if (in_numel == 0) {
        /* an empty reduction is 0 for every output */
        em_kargs fk;
        memset(&fk, 0, sizeof fk);
        fk.struct_size = sizeof fk;
        fk.out = out;
        return cpu_k_fill(dev, &fk);
    }
    /* split into kept and reduced dims; the innermost dim (smallest input stride) decides
     * between row mode (it is reduced: sum contiguous runs) and column mode (it is kept:
     * add whole rows into a vector of accumulators) */
    int inner = -1;
    uint64_t best = 0;
    for (int d = 0; d < nd; d++) {
        /* a broadcast (stride 0) dim has no locality to exploit: rank it last */
        uint64_t a = ist[d] == 0 ? UINT64_MAX : (uint64_t)(ist[d] < 0 ? -ist[d] : ist[d]);
        if (inner < 0 || a <= best) {
            inner = d;
            best = a;
        }
    }
    sp.col = inner >= 0 && !red[inner];
    sp.M = sp.L = 1;
    for (int d = 0; d < nd; d++) {
        if (d == inner)
            continue;
        if (red[d]) {
            sp.rs[sp.nr] = sz[d];
            sp.rist[sp.nr++] = ist[d];
            sp.L *= sz[d];
        } else {
            sp.ks[sp.nk] = sz[d];
            sp.kist[sp.nk] = ist[d];
            sp.kost[sp.nk++] = ost[d];
            sp.M *= sz[d];
        }
    }
    if (inner >= 0) {
        if (red[inner]) {
            sp.rs[sp.nr] = sz[inner];
            sp.rist[sp.nr++] = ist[inner];
            sp.L *= sz[inner];
        } else {
            sp.ks[sp.nk] = sz[inner];
            sp.kist[sp.nk] = ist[inner];
            sp.kost[sp.nk++] = ost[inner];
            sp.M *= sz[inner];
        }
    }
    if (sp.nr == 0) {
        /* nothing reduced: a scaled copy; treat as a reduction of length 1 */
        sp.rs[0] = 1;
        sp.rist[0] = 0;
        sp.nr = 1;
    }
    if (sp.nk == 0) {
        sp.ks[0] = 1;
        sp.kist[0] = sp.kost[0] = 0;
        sp.nk = 1;
    }

    /* partition: fixed by the shapes alone, so the thread count never changes a bit */
    int64_t unit_elems;
    if (sp.col) {
        sp.C = sp.ks[sp.nk - 1];
        sp.MO = sp.M / sp.C;
        sp.tile = sp.C < COL_TILE ? sp.C : COL_TILE;
        sp.ntiles = (sp.C + sp.tile - 1) / sp.tile;
        sp.chunk = COL_CHUNK_ELEMS / sp.tile;
        if (sp.chunk < COL_CHUNK_MIN_ROWS)
            sp.chunk = COL_CHUNK_MIN_ROWS;
        sp.nch = (sp.L + sp.chunk - 1) / sp.chunk;
        sp.nunits = sp.MO * sp.ntiles * sp.nch;
        unit_elems = (sp.L < sp.chunk ? sp.L : sp.chunk) * sp.tile;
        /* levels for up to chunk / COL_BLOCK blocks */
        int64_t nblk = (sp.chunk + COL_BLOCK - 1) / COL_BLOCK;
        sp.nlev = 1;
        while (((int64_t)1 << (sp.nlev - 1)) < nblk)
            sp.nlev++;
    } else {
        sp.chunk = SUM_CHUNK;
        sp.nch = (sp.L + sp.chunk - 1) / sp.chunk;
        sp.nunits = sp.M * sp.nch;
        unit_elems = sp.L < sp.chunk ? sp.L : sp.chunk;
    }
    sp.units_per_task = SUM_CHUNK / (unit_elems > 0 ? unit_elems : 1);
    if (sp.units_per_task < 1)
        sp.units_per_task = 1;
    size_t pbytes = 0;
    if (sp.nch > 1) {
        pbytes = sizeof(double) * (size_t)sp.M * (size_t)sp.nch;
        sp.partial = inst->host->alloc(inst->hc, pbytes);
        if (!sp.partial)
            return CPU_ERR(inst, EM_ERR_OOM, "sum: cannot allocate %zu bytes of partial sums",
                           pbytes);
    }
    int64_t ntasks = (sp.nunits + sp.units_per_task - 1) / sp.units_per_task;
    int nt = in_numel >= PAR_CHEAP && ntasks > 1 ? cpu_threads(inst) : 1;
    if (sp.col) {
        size_t wbytes = sizeof(double) * (size_t)(sp.nlev + 1) * (size_t)sp.tile;
        sp.work = inst->work;
        for (int w = 0; w < nt; w++)
            if (!cpu_scratch_get(inst, &inst->work[w], wbytes)) {
                inst->host->free(inst->hc, sp.partial);
                return CPU_ERR(inst, EM_ERR_OOM, "sum: cannot allocate %zu bytes of accumulators",
                               wbytes);
            }
    }
    if (nt > 1)
        cpu_parallel(inst, ntasks, sum_task, &sp);
    else
        for (int64_t t = 0; t < ntasks; t++)
            sum_task(&sp, t, 0);
    if (sp.nch > 1) {
        if (sp.M * sp.nch >= PAR_CHEAP)
            cpu_parallel(inst, sp.M, sum_finish_task, &sp);
        else
            for (int64_t t = 0; t < sp.M; t++)
                sum_finish_task(&sp, t, 0);
        inst->host->free(inst->hc, sp.partial);
    }
    return EM_OK;
}
