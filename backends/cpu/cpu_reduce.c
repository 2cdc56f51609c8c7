/* backends/cpu/cpu_reduce.c — the cpu backend's reductions other than the float sum
 * (cpu_kernels.c): sum with an i64 output and prod; and the kernels along one dimension of
 * a 3-D (outer, n, inner) view: max_dim, min_dim, softmax, log_softmax.
 *
 * Both reduce in[0] over the dims where out has size 1 (out has in[0]'s ndim). The
 * reduction space of each output is cut into chunks of RED_CHUNK elements fixed by the
 * shapes alone; chunks run on the pool and their partial results are combined in chunk
 * order, so results never depend on the thread count. Integer sums and products wrap
 * (unsigned arithmetic, exact whatever the order); floating products accumulate in double,
 * in row-major order within a chunk. */
#include "cpu_ew.h"

#include <math.h>
#include <string.h>

#define RED_CHUNK 32768           /* elements of one reduction per unit */

typedef union racc {
    double d;
    uint64_t u;
} racc;

enum { RED_SUM_U64, RED_PROD_U64, RED_PROD_F };

typedef struct red_plan {
    int kind;                     /* RED_* */
    int32_t idt, odt;
    const char *ibase;
    char *obase;
    int64_t isz, osz;
    int nk, nr;                   /* kept and reduced dims (row-major) */
    int64_t ks[EM_MAX_DIMS], kist[EM_MAX_DIMS], kost[EM_MAX_DIMS];
    int64_t rs[EM_MAX_DIMS], rist[EM_MAX_DIMS];
    int64_t M, L;                 /* outputs, elements per output */
    int64_t nch;                  /* chunks per output */
    int64_t units_per_task, nunits;
    racc *partial;                /* [output][chunk] when nch > 1 */
    uint64_t scale;               /* RED_SUM_U64: the result times this (wrapping) */
} red_plan;

/* one innermost run of n elements at stride s, folded into *acc */
static void run_fold(const red_plan *rp, const char *p, int64_t n, int64_t s, racc *acc)
{
    switch (rp->kind) {
    case RED_SUM_U64: {
        uint64_t a = acc->u;
#define SUM_T(T)                                                                          \
    for (int64_t i = 0; i < n; i++)                                                        \
        a += (uint64_t)((const T *)p)[i * s];
        switch (rp->idt) {
        case EM_I64: SUM_T(int64_t) break;
        case EM_I32: SUM_T(int32_t) break;
        default: SUM_T(uint8_t) break;   /* u8, bool */
        }
#undef SUM_T
        acc->u = a;
        break;
    }
    case RED_PROD_U64: {
        uint64_t a = acc->u;
        for (int64_t i = 0; i < n; i++)
            a *= (uint64_t)((const int64_t *)p)[i * s];
        acc->u = a;
        break;
    }
    default: {
        double a = acc->d;
        if (rp->idt == EM_F32)
            for (int64_t i = 0; i < n; i++)
                a *= (double)((const float *)p)[i * s];
        else
            for (int64_t i = 0; i < n; i++)
                a *= ((const double *)p)[i * s];
        acc->d = a;
        break;
    }
    }
}

static racc red_identity(const red_plan *rp)
{
    racc r;
    if (rp->kind == RED_PROD_F)
        r.d = 1.0;
    else
        r.u = rp->kind == RED_PROD_U64 ? 1 : 0;
    return r;
}

static void red_combine(const red_plan *rp, racc *acc, racc v)
{
    if (rp->kind == RED_SUM_U64)
        acc->u += v.u;
    else if (rp->kind == RED_PROD_U64)
        acc->u *= v.u;
    else
        acc->d *= v.d;
}

/* offsets (elements) of kept index o in the input and the output */
static int64_t red_kept(const red_plan *rp, int64_t o, int64_t *ooff)
{
    int64_t in = 0, out = 0;
    for (int d = rp->nk - 1; d >= 0; d--) {
        int64_t i = o % rp->ks[d];
        o /= rp->ks[d];
        in += i * rp->kist[d];
        out += i * rp->kost[d];
    }
    *ooff = out;
    return in;
}

/* elements [r0, r0 + cnt) of the reduction space from base, in row-major order */
static racc red_range(const red_plan *rp, const char *base, int64_t r0, int64_t cnt)
{
    const int last = rp->nr - 1;
    int64_t idx[EM_MAX_DIMS], rem = r0, off = 0;
    for (int d = last; d >= 0; d--) {
        idx[d] = rem % rp->rs[d];
        rem /= rp->rs[d];
        off += idx[d] * rp->rist[d];
    }
    const char *p = base + off * rp->isz;
    racc acc = red_identity(rp);
    while (cnt > 0) {
        int64_t len = rp->rs[last] - idx[last];
        if (len > cnt)
            len = cnt;
        run_fold(rp, p, len, rp->rist[last], &acc);
        cnt -= len;
        if (cnt == 0)
            break;
        p -= idx[last] * rp->rist[last] * rp->isz;
        idx[last] = 0;
        for (int d = last - 1; d >= 0; d--) {
            idx[d]++;
            p += rp->rist[d] * rp->isz;
            if (idx[d] < rp->rs[d])
                break;
            p -= rp->rs[d] * rp->rist[d] * rp->isz;
            idx[d] = 0;
        }
    }
    return acc;
}

static void red_store(const red_plan *rp, int64_t ooff, racc v)
{
    char *o = rp->obase + ooff * rp->osz;
    switch (rp->odt) {
    case EM_F32: *(float *)o = (float)v.d; break;
    case EM_F64: *(double *)o = v.d; break;
    default: *(int64_t *)o = (int64_t)(v.u * rp->scale); break;
    }
}

static void red_unit(const red_plan *rp, int64_t unit)
{
    int64_t o = unit / rp->nch, ch = unit % rp->nch, ooff;
    int64_t ioff = red_kept(rp, o, &ooff);
    int64_t r0 = ch * RED_CHUNK, cnt = rp->L - r0 < RED_CHUNK ? rp->L - r0 : RED_CHUNK;
    racc v = red_range(rp, rp->ibase + ioff * rp->isz, r0, cnt);
    if (rp->nch == 1)
        red_store(rp, ooff, v);
    else
        rp->partial[o * rp->nch + ch] = v;
}

static void red_task(void *arg, int64_t t, int worker)
{
    (void)worker;
    const red_plan *rp = arg;
    int64_t u0 = t * rp->units_per_task;
    int64_t u1 = u0 + rp->units_per_task < rp->nunits ? u0 + rp->units_per_task : rp->nunits;
    for (int64_t u = u0; u < u1; u++)
        red_unit(rp, u);
}

/* Validate, classify dims and run. kind: RED_*. */
static em_status red_run(cpu_inst *inst, const em_kargs *ka, const char *kname, int kind)
{
    const em_kview *in = ka->in[0], *out = ka->out;
    em_status st;
    if ((st = cpu_check_view(inst, kname, "out", out)) != EM_OK ||
        (st = cpu_check_view(inst, kname, "in[0]", in)) != EM_OK)
        return st;
    if (in->ndim != out->ndim)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: in[0] has %d dims but out has %d", kname,
                       (int)in->ndim, (int)out->ndim);
    red_plan rp;
    memset(&rp, 0, sizeof rp);
    rp.kind = kind;
    rp.idt = in->dtype;
    rp.odt = out->dtype;
    rp.isz = (int64_t)emk_dtype_size(in->dtype);
    rp.osz = (int64_t)emk_dtype_size(out->dtype);
    rp.ibase = (const char *)in->buf + in->offset * rp.isz;
    rp.obase = (char *)out->buf + out->offset * rp.osz;
    rp.scale = 1;
    if (kind == RED_SUM_U64 && ka->p[0] != 1.0)
        rp.scale = (uint64_t)cpu_f2i64(ka->p[0]);
    int64_t in_numel = 1, out_numel = 1;
    rp.M = rp.L = 1;
    for (int d = 0; d < in->ndim; d++) {
        int64_t is = in->shape[d], os = out->shape[d];
        in_numel *= is;
        out_numel *= os;
        if (os != is && os != 1)
            return CPU_ERR(inst, EM_ERR_INVALID,
                           "%s: out has size %lld in dim %d, expected 1 or %lld", kname,
                           (long long)os, d, (long long)is);
        if (is == 1)
            continue;
        if (os == 1) {
            rp.rs[rp.nr] = is;
            rp.rist[rp.nr++] = in->strides[d];
            rp.L *= is;
        } else {
            rp.ks[rp.nk] = is;
            rp.kist[rp.nk] = in->strides[d];
            rp.kost[rp.nk++] = out->strides[d];
            rp.M *= is;
        }
    }
    if (out_numel == 0)
        return EM_OK;
    if (rp.nr == 0) {
        rp.rs[0] = 1;
        rp.rist[0] = 0;
        rp.nr = 1;
    }
    if (rp.nk == 0) {
        rp.ks[0] = 1;
        rp.kist[0] = rp.kost[0] = 0;
        rp.nk = 1;
    }
    if (in_numel == 0) {
        /* an empty reduction is the identity for every output */
        racc id = red_identity(&rp);
        for (int64_t o = 0; o < rp.M; o++) {
            int64_t ooff;
            red_kept(&rp, o, &ooff);
            red_store(&rp, ooff, id);
        }
        return EM_OK;
    }
    rp.nch = (rp.L + RED_CHUNK - 1) / RED_CHUNK;
    rp.nunits = rp.M * rp.nch;
    int64_t unit_elems = rp.L < RED_CHUNK ? rp.L : RED_CHUNK;
    rp.units_per_task = RED_CHUNK / unit_elems;
    if (rp.units_per_task < 1)
        rp.units_per_task = 1;
    if (rp.nch > 1) {
        size_t pbytes = sizeof(racc) * (size_t)rp.M * (size_t)rp.nch;
        rp.partial = inst->host->alloc(inst->hc, pbytes);
        if (!rp.partial)
            return CPU_ERR(inst, EM_ERR_OOM, "%s: cannot allocate %zu bytes of partials", kname,
                           pbytes);
    }
    int64_t ntasks = (rp.nunits + rp.units_per_task - 1) / rp.units_per_task;
    if (in_numel >= PAR_CHEAP && ntasks > 1)
        cpu_parallel(inst, ntasks, red_task, &rp);
    else
        for (int64_t t = 0; t < ntasks; t++)
            red_task(&rp, t, 0);
    if (rp.nch > 1) {
        for (int64_t o = 0; o < rp.M; o++) {
            racc acc = rp.partial[o * rp.nch];
            for (int64_t c = 1; c < rp.nch; c++)
                red_combine(&rp, &acc, rp.partial[o * rp.nch + c]);
            int64_t ooff;
            red_kept(&rp, o, &ooff);
            red_store(&rp, ooff, acc);
        }
        inst->host->free(inst->hc, rp.partial);
    }
    return EM_OK;
}

em_status cpu_sum_i64(cpu_inst *inst, const em_kargs *ka)
{
    const em_kview *in = ka->in[0];
    if (in && in->dtype != EM_I64 && in->dtype != EM_I32 && in->dtype != EM_U8 &&
        in->dtype != EM_BOOL)
        return cpu_unsupported(inst, "sum", in->dtype);
    return red_run(inst, ka, "sum", RED_SUM_U64);
}

em_status cpu_k_prod(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    const em_kview *in = ka->in[0], *out = ka->out;
    if (!in || !out)
        return CPU_ERR(inst, EM_ERR_INVALID, "prod: a view is missing");
    if (out->dtype != EM_F32 && out->dtype != EM_F64 && out->dtype != EM_I64)
        return cpu_unsupported(inst, "prod", out->dtype);
    if (in->dtype != out->dtype)
        return cpu_mismatch(inst, "prod", "in[0]", in->dtype, out->dtype);
    return red_run(inst, ka, "prod", out->dtype == EM_I64 ? RED_PROD_U64 : RED_PROD_F);
}

/* ------------------------------------------------------------------ along one dim */

/* max_dim, min_dim, softmax and log_softmax see in[0] as (outer, n, inner) and work on
 * units of one outer index and up to DIM_BLOCK inner indices at a time, walking the n
 * rows in order with the inner ones innermost (contiguous when the inner stride is 1). */
#define DIM_BLOCK 64

typedef struct dim_plan {
    int32_t dt;
    int64_t outer, n, inner, nib;       /* nib: inner blocks */
    const char *x;
    int64_t xs[3];
    char *o;                             /* values (max/min_dim) or the result (softmax) */
    int64_t os[3];
    int64_t *ix;                         /* max/min_dim: indices */
    int64_t is[3];
    int op;                              /* DIM_* */
    int64_t units_per_task, nunits;
    int simd;                            /* the instance runs AVX2 code */
} dim_plan;

enum { DIM_MAX, DIM_MIN, DIM_SOFTMAX, DIM_LOG_SOFTMAX };

/* The first NaN wins; otherwise a strictly better value replaces (first index on ties). */
#define ARGBEST(T, ISNAN, BETTER)                                                         \
    do {                                                                                   \
        const T *x = (const T *)dp->x;                                                     \
        T best[DIM_BLOCK];                                                                 \
        int64_t bi[DIM_BLOCK];                                                             \
        for (int64_t i = 0; i < w; i++) {                                                  \
            best[i] = x[xo + (i0 + i) * dp->xs[2]];                                        \
            bi[i] = 0;                                                                     \
        }                                                                                  \
        for (int64_t j = 1; j < dp->n; j++) {                                              \
            const T *row = x + xo + j * dp->xs[1] + i0 * dp->xs[2];                        \
            for (int64_t i = 0; i < w; i++) {                                              \
                const T v = row[i * dp->xs[2]];                                            \
                if (!ISNAN(best[i]) && (ISNAN(v) || BETTER(v, best[i]))) {                 \
                    best[i] = v;                                                           \
                    bi[i] = j;                                                             \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
        T *ov = (T *)dp->o;                                                                \
        for (int64_t i = 0; i < w; i++) {                                                  \
            ov[oo + (i0 + i) * dp->os[2]] = best[i];                                       \
            dp->ix[io + (i0 + i) * dp->is[2]] = bi[i];                                     \
        }                                                                                  \
    } while (0)

#define F_ISNAN(v) ((v) != (v))
#define I_ISNAN(v) 0
#define GT(a, b) ((a) > (b))
#define LT(a, b) ((a) < (b))

#define ARGBEST_DT(BETTER)                                                                \
    switch (dp->dt) {                                                                      \
    case EM_F32: ARGBEST(float, F_ISNAN, BETTER); break;                                   \
    case EM_F64: ARGBEST(double, F_ISNAN, BETTER); break;                                  \
    case EM_I64: ARGBEST(int64_t, I_ISNAN, BETTER); break;                                 \
    case EM_I32: ARGBEST(int32_t, I_ISNAN, BETTER); break;                                 \
    default: ARGBEST(uint8_t, I_ISNAN, BETTER); break;                                     \
    }

/* Numerically stable softmax over the rows of one unit: the max (a NaN propagates
 * through the sum), the sum of exp(x - max) in double, then the normalised values; an
 * all -inf row has max -inf and x - max NaN, as PyTorch. The exps are stored in out
 * and divided in place (out is x, or does not overlap it). */
#define SOFTMAX(T, EXP)                                                              \
    do {                                                                                   \
        const T *x = (const T *)dp->x;                                                     \
        T *ov = (T *)dp->o;                                                                \
        T mx[DIM_BLOCK];                                                                   \
        double sum[DIM_BLOCK];                                                             \
        for (int64_t i = 0; i < w; i++) {                                                  \
            mx[i] = x[xo + (i0 + i) * dp->xs[2]];                                          \
            sum[i] = 0;                                                                    \
        }                                                                                  \
        for (int64_t j = 1; j < dp->n; j++) {                                              \
            const T *row = x + xo + j * dp->xs[1] + i0 * dp->xs[2];                        \
            for (int64_t i = 0; i < w; i++) {                                              \
                const T v = row[i * dp->xs[2]];                                            \
                mx[i] = v > mx[i] ? v : mx[i];                                             \
            }                                                                              \
        }                                                                                  \
        for (int64_t j = 0; j < dp->n; j++) {                                              \
            const T *row = x + xo + j * dp->xs[1] + i0 * dp->xs[2];                        \
            T *orow = ov + oo + j * dp->os[1] + i0 * dp->os[2];                            \
            for (int64_t i = 0; i < w; i++) {                                              \
                const T e = EXP(row[i * dp->xs[2]] - mx[i]);                               \
                sum[i] += (double)e;                                                       \
                if (!logsm)                                                                \
                    orow[i * dp->os[2]] = e;                                               \
            }                                                                              \
        }                                                                                  \
        for (int64_t i = 0; i < w; i++)                                                    \
            if (logsm)                                                                     \
                sum[i] = log(sum[i]);                                                              \
        for (int64_t j = 0; j < dp->n; j++) {                                              \
            const T *row = x + xo + j * dp->xs[1] + i0 * dp->xs[2];                        \
            T *orow = ov + oo + j * dp->os[1] + i0 * dp->os[2];                            \
            for (int64_t i = 0; i < w; i++) {                                              \
                if (logsm)                                                                 \
                    orow[i * dp->os[2]] =                                                  \
                        (T)((double)(row[i * dp->xs[2]] - mx[i]) - sum[i]);                \
                else                                                                       \
                    orow[i * dp->os[2]] = (T)((double)orow[i * dp->os[2]] / sum[i]);       \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* The common case, f32 rows that are contiguous (softmax over the last dim), without a libm
 * call per element: expf is most of softmax's time. sm_exp is Cephes' expf (relative error
 * about 1e-7) for x <= 0, the only arguments softmax gives it (x - max); below -87.33 it is 0
 * (expf would give a subnormal), NaN stays NaN. Branch-free, in 8 lanes, so the compiler
 * vectorises it; compiled once portably and once for AVX2 (no FMA: both copies round every
 * operation alike, so results do not depend on the CPU). */
#define SM_ROW(SFX)                                                                        \
    static inline void sm_exp8_##SFX(const float *x, float mx, float *e)                   \
    {                                                                                      \
        float v[8], fn[8], sc[8];                                                          \
        int32_t bi[8];                                                                     \
        for (int k = 0; k < 8; k++) {                                                      \
            v[k] = x[k] - mx;                                                              \
            float t = v[k] * 1.44269504088896341f;                                         \
            t = t == t ? t : 0.0f;                                                         \
            t = t < -126.0f ? -126.0f : t;                                                 \
            t = t > 0.0f ? 0.0f : t;                                                       \
            bi[k] = (int32_t)(t - 0.5f);                                                   \
        }                                                                                  \
        for (int k = 0; k < 8; k++) {                                                      \
            fn[k] = (float)bi[k];                                                          \
            bi[k] = (bi[k] + 127) * (1 << 23);                                             \
        }                                                                                  \
        memcpy(sc, bi, sizeof sc);                                                         \
        for (int k = 0; k < 8; k++) {                                                      \
            const float r = v[k] - fn[k] * 0.693359375f + fn[k] * 2.12194440e-4f;          \
            const float z = r * r;                                                         \
            const float p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r +           \
                                8.3334519073e-3f) * r + 4.1665795894e-2f) * r +           \
                              1.6666665459e-1f) * r + 5.0000001201e-1f) * z + r + 1.0f;    \
            const float y = p * sc[k];                                                     \
            e[k] = v[k] != v[k] ? v[k] : v[k] < -87.33f ? 0.0f : y;                        \
        }                                                                                  \
    }                                                                                      \
    static void sm_row_##SFX(const float *x, float *o, int64_t n, int logsm)               \
    {                                                                                      \
        float m[8];                                                                        \
        for (int k = 0; k < 8; k++)                                                        \
            m[k] = x[0];                                                                   \
        int64_t j = 0;                                                                     \
        for (; j + 8 <= n; j += 8)                                                         \
            for (int k = 0; k < 8; k++)                                                    \
                m[k] = x[j + k] > m[k] ? x[j + k] : m[k];                                  \
        for (; j < n; j++)                                                                 \
            m[0] = x[j] > m[0] ? x[j] : m[0];                                              \
        float mx = m[0];                                                                   \
        for (int k = 1; k < 8; k++)                                                        \
            mx = m[k] > mx ? m[k] : mx;                                                    \
        double s8[8] = {0};                                                                \
        float e8[8], t8[8];                                                                \
        for (j = 0; j + 8 <= n; j += 8) {                                                  \
            sm_exp8_##SFX(x + j, mx, e8);                                                  \
            for (int k = 0; k < 8; k++)                                                    \
                s8[k] += (double)e8[k];                                                    \
            if (!logsm)                                                                    \
                memcpy(o + j, e8, sizeof e8);                                              \
        }                                                                                  \
        if (j < n) {   /* the tail, padded with the max (whose exp is not summed) */       \
            for (int k = 0; k < 8; k++)                                                    \
                t8[k] = j + k < n ? x[j + k] : mx;                                         \
            sm_exp8_##SFX(t8, mx, e8);                                                     \
            for (int k = 0; j + k < n; k++) {                                              \
                s8[k] += (double)e8[k];                                                    \
                if (!logsm)                                                                \
                    o[j + k] = e8[k];                                                      \
            }                                                                              \
        }                                                                                  \
        double sum = 0;                                                                    \
        for (int k = 0; k < 8; k++)                                                        \
            sum += s8[k];                                                                  \
        if (logsm) {                                                                       \
            const double ls = log(sum);                                                    \
            for (j = 0; j < n; j++)                                                        \
                o[j] = (float)((double)(x[j] - mx) - ls);                                  \
        } else {                                                                           \
            for (j = 0; j < n; j++)                                                        \
                o[j] = (float)((double)o[j] / sum);                                        \
        }                                                                                  \
    }

/* no-trapping-math: the compares may be evaluated for every lane (it changes no result,
 * only whether FP exception flags may be raised), which is what lets them vectorise */
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
SM_ROW(gen)
#pragma GCC pop_options
#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_CPU_NO_SIMD)
#pragma GCC push_options
#pragma GCC target("avx2,tune=haswell")
#pragma GCC optimize("no-trapping-math")
SM_ROW(avx2)
#pragma GCC pop_options
#define SM_HAVE_AVX2 1
#endif

static void dim_unit(const dim_plan *dp, int64_t u)
{
    const int64_t o = u / dp->nib, i0 = (u % dp->nib) * DIM_BLOCK;
    const int64_t w = dp->inner - i0 < DIM_BLOCK ? dp->inner - i0 : DIM_BLOCK;
    const int64_t xo = o * dp->xs[0], oo = o * dp->os[0], io = o * dp->is[0];
    (void)io;
    if (dp->op == DIM_MAX) {
        ARGBEST_DT(GT)
    } else if (dp->op == DIM_MIN) {
        ARGBEST_DT(LT)
    } else {
        const int logsm = dp->op == DIM_LOG_SOFTMAX;
        if (dp->dt == EM_F32 && dp->inner == 1 && dp->xs[1] == 1 && dp->os[1] == 1) {
            const float *x = (const float *)dp->x + xo;
            float *ov = (float *)dp->o + oo;
#ifdef SM_HAVE_AVX2
            if (dp->simd)
                sm_row_avx2(x, ov, dp->n, logsm);
            else
#endif
                sm_row_gen(x, ov, dp->n, logsm);
        } else if (dp->dt == EM_F32)
            SOFTMAX(float, expf);
        else
            SOFTMAX(double, exp);
    }
}

static void dim_task(void *arg, int64_t t, int worker)
{
    (void)worker;
    const dim_plan *dp = arg;
    int64_t u0 = t * dp->units_per_task;
    int64_t u1 = u0 + dp->units_per_task < dp->nunits ? u0 + dp->units_per_task : dp->nunits;
    for (int64_t u = u0; u < u1; u++)
        dim_unit(dp, u);
}

/* v is a 3-D view of dtype dt with the given shape */
static em_status dim_check(cpu_inst *inst, const char *kname, const char *what,
                           const em_kview *v, int32_t dt, int64_t d0, int64_t d1, int64_t d2)
{
    em_status st = cpu_check_view(inst, kname, what, v);
    if (st != EM_OK)
        return st;
    if (v->dtype != dt)
        return cpu_mismatch(inst, kname, what, v->dtype, dt);
    if (v->ndim != 3 || v->shape[0] != d0 || v->shape[1] != d1 || v->shape[2] != d2)
        return CPU_ERR(inst, EM_ERR_INVALID,
                       "%s: %s must be a 3-D view of shape (%lld, %lld, %lld)", kname, what,
                       (long long)d0, (long long)d1, (long long)d2);
    return EM_OK;
}

static em_status dim_run(cpu_inst *inst, const em_kargs *ka, const char *kname, int op,
                         em_dtype_mask dts)
{
    const em_kview *in = ka->in[0];
    em_status st = cpu_check_view(inst, kname, "in[0]", in);
    if (st != EM_OK)
        return st;
    if (in->ndim != 3)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: in[0] must be a 3-D (outer, n, inner) view, "
                       "not %d-D", kname, (int)in->ndim);
    if (!(dts & EM_DTYPE_BIT(in->dtype)))
        return cpu_unsupported(inst, kname, in->dtype);
    dim_plan dp;
    memset(&dp, 0, sizeof dp);
    dp.op = op;
    dp.simd = inst->simd >= CPU_SIMD_AVX2;
    dp.dt = in->dtype;
    dp.outer = in->shape[0];
    dp.n = in->shape[1];
    dp.inner = in->shape[2];
    const int argbest = op == DIM_MAX || op == DIM_MIN;
    if ((st = dim_check(inst, kname, "out", ka->out, in->dtype, dp.outer, argbest ? 1 : dp.n,
                        dp.inner)) != EM_OK)
        return st;
    if (argbest) {
        if (ka->n_out < 2 || !ka->outs || !ka->outs[1])
            return CPU_ERR(inst, EM_ERR_INVALID, "%s: outs[1] (the indices) is missing", kname);
        if ((st = dim_check(inst, kname, "outs[1]", ka->outs[1], EM_I64, dp.outer, 1,
                            dp.inner)) != EM_OK)
            return st;
        const em_kview *iv = ka->outs[1];
        dp.ix = (int64_t *)iv->buf + iv->offset;
        memcpy(dp.is, iv->strides, sizeof dp.is);
    }
    if (dp.outer == 0 || dp.inner == 0)
        return EM_OK;
    if (dp.n < 1)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: the reduced dimension is empty", kname);
    const int64_t esz = (int64_t)emk_dtype_size(in->dtype);
    dp.x = (const char *)in->buf + in->offset * esz;
    memcpy(dp.xs, in->strides, sizeof dp.xs);
    dp.o = (char *)ka->out->buf + ka->out->offset * esz;
    memcpy(dp.os, ka->out->strides, sizeof dp.os);
    dp.nib = (dp.inner + DIM_BLOCK - 1) / DIM_BLOCK;
    dp.nunits = dp.outer * dp.nib;
    const int64_t unit_elems = dp.n * (dp.inner < DIM_BLOCK ? dp.inner : DIM_BLOCK);
    dp.units_per_task = PAR_CHUNK_MIN / unit_elems;
    if (dp.units_per_task < 1)
        dp.units_per_task = 1;
    const int64_t ntasks = (dp.nunits + dp.units_per_task - 1) / dp.units_per_task;
    const int64_t numel = dp.outer * dp.n * dp.inner;
    if (ntasks > 1 && numel >= (argbest ? PAR_CHEAP : PAR_COSTLY))
        cpu_parallel(inst, ntasks, dim_task, &dp);
    else
        for (int64_t t = 0; t < ntasks; t++)
            dim_task(&dp, t, 0);
    return EM_OK;
}

#define DIM_FINT (EM_DTYPES_FLOAT | EM_DTYPES_INT)

em_status cpu_k_max_dim(void *dev, const em_kargs *ka)
{
    return dim_run(dev, ka, "max_dim", DIM_MAX, DIM_FINT);
}

em_status cpu_k_min_dim(void *dev, const em_kargs *ka)
{
    return dim_run(dev, ka, "min_dim", DIM_MIN, DIM_FINT);
}

em_status cpu_k_softmax(void *dev, const em_kargs *ka)
{
    return dim_run(dev, ka, "softmax", DIM_SOFTMAX, EM_DTYPES_FLOAT);
}

em_status cpu_k_log_softmax(void *dev, const em_kargs *ka)
{
    return dim_run(dev, ka, "log_softmax", DIM_LOG_SOFTMAX, EM_DTYPES_FLOAT);
}
