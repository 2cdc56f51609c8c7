/* backends/cpu/cpu_index.c — the cpu backend's indexing kernels of ABI 1.2: index_select
 * (3-D (outer, n, inner) views and a 1-D index), gather (on the strided walker of cpu_ew.c,
 * the source's step along dim taken from the index) and scatter_add.
 *
 * Index views are i64. The core has checked every index; the kernels check again before
 * writing anything (a bad index would otherwise read or write outside the buffers) and
 * fail with EM_ERR_INVALID naming it. Data is moved by element size, so one row function
 * serves every dtype of that size.
 *
 * scatter_add is deterministic: the positions of the index that differ only along dim
 * can hit one output element, so they are added by one thread, in increasing order of
 * their index along dim; positions that differ in another dim hit distinct elements and
 * are spread over the pool. */
#include "cpu_ew.h"

#include <string.h>

/* the first index of v (i64, any ndim) outside [0, bound), or -1 with all in range */
static int64_t first_bad_index(const em_kview *v, int64_t bound, int64_t *bad)
{
    const int64_t *p = (const int64_t *)v->buf + v->offset;
    int64_t idx[EM_MAX_DIMS] = {0}, numel = 1;
    for (int d = 0; d < v->ndim; d++)
        numel *= v->shape[d];
    for (int64_t q = 0; q < numel; q++) {
        int64_t off = 0;
        for (int d = 0; d < v->ndim; d++)
            off += idx[d] * v->strides[d];
        if (p[off] < 0 || p[off] >= bound) {
            *bad = p[off];
            return q;
        }
        for (int d = v->ndim - 1; d >= 0; d--) {
            if (++idx[d] < v->shape[d])
                break;
            idx[d] = 0;
        }
    }
    return -1;
}

static em_status check_index_view(cpu_inst *inst, const char *kname, const char *what,
                                  const em_kview *v)
{
    em_status st = cpu_check_view(inst, kname, what, v);
    if (st != EM_OK)
        return st;
    if (v->dtype != EM_I64)
        return cpu_mismatch(inst, kname, what, v->dtype, EM_I64);
    return EM_OK;
}

static em_status check_indices(cpu_inst *inst, const char *kname, const em_kview *v, int dim,
                               int64_t bound)
{
    int64_t bad = 0;
    if (first_bad_index(v, bound, &bad) >= 0)
        return CPU_ERR(inst, EM_ERR_INVALID,
                       "%s: index %lld is out of bounds for dimension %d with size %lld", kname,
                       (long long)bad, dim, (long long)bound);
    return EM_OK;
}

/* ------------------------------------------------------------------ index_select */

typedef struct isel_plan {
    const char *x;
    char *o;
    const int64_t *ix;
    int64_t esz, m, inner, ixs;
    int64_t xs[3], os[3];
    int64_t rows_per_task, nrows;
} isel_plan;

#define COPY_ROW(T)                                                                       \
    do {                                                                                   \
        const T *s_ = (const T *)src;                                                      \
        T *d_ = (T *)dst;                                                                  \
        if (xs2 == 1 && os2 == 1)                                                          \
            for (int64_t i = 0; i < ip->inner; i++)                                        \
                d_[i] = s_[i];                                                             \
        else                                                                               \
            for (int64_t i = 0; i < ip->inner; i++)                                        \
                d_[i * os2] = s_[i * xs2];                                                 \
    } while (0)

static void isel_task(void *arg, int64_t t, int worker)
{
    (void)worker;
    const isel_plan *ip = arg;
    const int64_t r0 = t * ip->rows_per_task;
    const int64_t r1 = r0 + ip->rows_per_task < ip->nrows ? r0 + ip->rows_per_task : ip->nrows;
    const int64_t xs2 = ip->xs[2], os2 = ip->os[2];
    for (int64_t r = r0; r < r1; r++) {
        const int64_t o = r / ip->m, j = r % ip->m;
        const int64_t k = ip->ix[j * ip->ixs];
        const char *src = ip->x + (o * ip->xs[0] + k * ip->xs[1]) * ip->esz;
        char *dst = ip->o + (o * ip->os[0] + j * ip->os[1]) * ip->esz;
        switch (ip->esz) {
        case 1: COPY_ROW(uint8_t); break;
        case 4: COPY_ROW(uint32_t); break;
        default: COPY_ROW(uint64_t); break;
        }
    }
}

em_status cpu_k_index_select(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    const em_kview *x = ka->in[0], *ix = ka->in[1], *out = ka->out;
    em_status st;
    if ((st = cpu_check_view(inst, "index_select", "in[0]", x)) != EM_OK ||
        (st = check_index_view(inst, "index_select", "in[1] (index)", ix)) != EM_OK ||
        (st = cpu_check_view(inst, "index_select", "out", out)) != EM_OK)
        return st;
    if (out->dtype != x->dtype)
        return cpu_mismatch(inst, "index_select", "out", out->dtype, x->dtype);
    if (x->ndim != 3 || out->ndim != 3 || ix->ndim != 1)
        return CPU_ERR(inst, EM_ERR_INVALID, "index_select: expected 3-D in[0] and out and a 1-D "
                       "index, got %d-D, %d-D and %d-D", (int)x->ndim, (int)out->ndim,
                       (int)ix->ndim);
    const int64_t m = ix->shape[0];
    if (out->shape[0] != x->shape[0] || out->shape[1] != m || out->shape[2] != x->shape[2])
        return CPU_ERR(inst, EM_ERR_INVALID, "index_select: out has shape (%lld, %lld, %lld), "
                       "expected (%lld, %lld, %lld)", (long long)out->shape[0],
                       (long long)out->shape[1], (long long)out->shape[2],
                       (long long)x->shape[0], (long long)m, (long long)x->shape[2]);
    if ((st = check_indices(inst, "index_select", ix, 1, x->shape[1])) != EM_OK)
        return st;
    isel_plan ip;
    memset(&ip, 0, sizeof ip);
    ip.esz = (int64_t)emk_dtype_size(x->dtype);
    ip.x = (const char *)x->buf + x->offset * ip.esz;
    ip.o = (char *)out->buf + out->offset * ip.esz;
    ip.ix = (const int64_t *)ix->buf + ix->offset;
    ip.ixs = ix->strides[0];
    ip.m = m;
    ip.inner = x->shape[2];
    memcpy(ip.xs, x->strides, sizeof ip.xs);
    memcpy(ip.os, out->strides, sizeof ip.os);
    ip.nrows = x->shape[0] * m;
    if (ip.nrows == 0 || ip.inner == 0)
        return EM_OK;
    ip.rows_per_task = PAR_CHUNK_MIN / ip.inner;
    if (ip.rows_per_task < 1)
        ip.rows_per_task = 1;
    const int64_t ntasks = (ip.nrows + ip.rows_per_task - 1) / ip.rows_per_task;
    if (ntasks > 1 && ip.nrows * ip.inner >= PAR_CHEAP)
        cpu_parallel(inst, ntasks, isel_task, &ip);
    else
        for (int64_t t = 0; t < ntasks; t++)
            isel_task(&ip, t, 0);
    return EM_OK;
}

/* ------------------------------------------------------------------ gather */

/* operands: 0 out, 1 index, 2 source (its stride along dim zeroed in the plan); the
 * source's real stride along dim is read from the kargs */
#define DEF_GATHER(NAME, T)                                                               \
    static void NAME(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka,     \
                     int64_t lin)                                                          \
    {                                                                                      \
        (void)lin;                                                                         \
        T *o = (T *)pp[0];                                                                 \
        const int64_t *ix = (const int64_t *)pp[1];                                        \
        const T *src = (const T *)pp[2];                                                   \
        const int64_t sd = ka->in[0]->strides[ka->ip[0]];                                  \
        const int64_t so = s[0], si = s[1], ss = s[2];                                     \
        for (int64_t i = 0; i < n; i++)                                                    \
            o[i * so] = src[i * ss + ix[i * si] * sd];                                     \
    }

DEF_GATHER(gather_1, uint8_t)
DEF_GATHER(gather_4, uint32_t)
DEF_GATHER(gather_8, uint64_t)

/* Shared checks of gather and scatter_add: one ndim, dim in range, `small` (the index and
 * the views of its shape) no larger than `big` outside dim. */
static em_status check_dim_arg(cpu_inst *inst, const char *kname, const em_kargs *ka,
                               const em_kview *big, const em_kview *small, int *dim)
{
    if (!ka->ip || ka->n_ip < 1)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: ip[0] (dim) is missing", kname);
    if (ka->ip[0] < 0 || ka->ip[0] >= big->ndim)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: dim %lld is out of range for %d dims", kname,
                       (long long)ka->ip[0], (int)big->ndim);
    *dim = (int)ka->ip[0];
    if (small->ndim != big->ndim)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: the index has %d dims but the data has %d",
                       kname, (int)small->ndim, (int)big->ndim);
    for (int d = 0; d < big->ndim; d++)
        if (d != *dim && small->shape[d] > big->shape[d])
            return CPU_ERR(inst, EM_ERR_INVALID,
                           "%s: the index has size %lld in dim %d but the data only %lld",
                           kname, (long long)small->shape[d], d, (long long)big->shape[d]);
    return EM_OK;
}

static int same_shape(const em_kview *a, const em_kview *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return 0;
    return 1;
}

em_status cpu_k_gather(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    const em_kview *x = ka->in[0], *ix = ka->in[1], *out = ka->out;
    em_status st;
    int dim = 0;
    if ((st = cpu_check_view(inst, "gather", "in[0]", x)) != EM_OK ||
        (st = check_index_view(inst, "gather", "in[1] (index)", ix)) != EM_OK ||
        (st = cpu_check_view(inst, "gather", "out", out)) != EM_OK ||
        (st = check_dim_arg(inst, "gather", ka, x, ix, &dim)) != EM_OK)
        return st;
    if (out->dtype != x->dtype)
        return cpu_mismatch(inst, "gather", "out", out->dtype, x->dtype);
    if (!same_shape(out, ix))
        return CPU_ERR(inst, EM_ERR_INVALID, "gather: out must have the index's shape");
    if ((st = check_indices(inst, "gather", ix, dim, x->shape[dim])) != EM_OK)
        return st;
    ew_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.nops = 3;
    pl.ndim = out->ndim;
    pl.numel = 1;
    const em_kview *v[3] = {out, ix, x};
    for (int d = 0; d < out->ndim; d++) {
        pl.shape[d] = out->shape[d];
        pl.numel *= out->shape[d];
    }
    for (int k = 0; k < 3; k++) {
        pl.esz[k] = (int64_t)emk_dtype_size(v[k]->dtype);
        pl.base[k] = (char *)v[k]->buf + v[k]->offset * pl.esz[k];
        memcpy(pl.st[k], v[k]->strides, sizeof(int64_t) * (size_t)out->ndim);
    }
    pl.st[2][dim] = 0;
    pl.fn = pl.esz[0] == 1 ? gather_1 : pl.esz[0] == 4 ? gather_4 : gather_8;
    pl.ka = ka;
    if (pl.numel > 0)
        cpu_ew_run(inst, &pl, PAR_CHEAP);
    return EM_OK;
}

/* ------------------------------------------------------------------ scatter_add */

#define SC_BLOCK 64

typedef struct scat_plan {
    int32_t dt;
    char *o;
    const int64_t *ix;
    const char *src;
    int64_t esz;
    int64_t n, ixd, srd, otd;            /* along dim: length, index/source/out strides */
    /* the other dims, row-major; the last is the block dim */
    int nl;
    int64_t ls[EM_MAX_DIMS], lix[EM_MAX_DIMS], lsr[EM_MAX_DIMS], lot[EM_MAX_DIMS];
    int64_t nblk, units_per_task, nunits;
} scat_plan;

#define SCATTER(T, ADD)                                                                   \
    do {                                                                                   \
        T *o = (T *)sp->o;                                                                 \
        const T *src = (const T *)sp->src;                                                 \
        if (sp->ixd == 1 && bix != 1 && bot != 0) {                                        \
            /* indices contiguous along dim (max_pool2d's backward): each position walks   \
             * dim in turn, the same additions in the same order per element of out */    \
            for (int64_t b = 0; b < w; b++) {                                              \
                const int64_t *ixr = sp->ix + ixo + b * bix;                               \
                const T *sr = src + sro + b * bsr;                                         \
                T *ob = o + oto + b * bot;                                                 \
                for (int64_t k = 0; k < sp->n; k++) {                                      \
                    T *dst = ob + ixr[k] * sp->otd;                                        \
                    *dst = ADD(*dst, sr[k * sp->srd]);                                     \
                }                                                                          \
            }                                                                              \
            break;                                                                         \
        }                                                                                  \
        for (int64_t k = 0; k < sp->n; k++) {                                              \
            const int64_t *ixr = sp->ix + ixo + k * sp->ixd;                               \
            const T *sr = src + sro + k * sp->srd;                                         \
            for (int64_t b = 0; b < w; b++) {                                              \
                T *dst = o + oto + b * bot + ixr[b * bix] * sp->otd;                       \
                *dst = ADD(*dst, sr[b * bsr]);                                             \
            }                                                                              \
        }                                                                                  \
    } while (0)

#define ADD_F(a, b) ((a) + (b))
#define ADD_U64(a, b) ((int64_t)((uint64_t)(a) + (uint64_t)(b)))
#define ADD_U32(a, b) ((int32_t)((uint32_t)(a) + (uint32_t)(b)))
#define ADD_U8(a, b) ((uint8_t)((a) + (b)))

/* One unit: one position of the other dims but the last, and up to SC_BLOCK positions
 * of the last; every position walks dim in order. */
static void scat_unit(const scat_plan *sp, int64_t u)
{
    const int last = sp->nl - 1;
    int64_t rest = u / sp->nblk, b0 = (u % sp->nblk) * SC_BLOCK;
    int64_t ixo = 0, sro = 0, oto = 0;
    for (int d = last - 1; d >= 0; d--) {
        int64_t i = rest % sp->ls[d];
        rest /= sp->ls[d];
        ixo += i * sp->lix[d];
        sro += i * sp->lsr[d];
        oto += i * sp->lot[d];
    }
    ixo += b0 * sp->lix[last];
    sro += b0 * sp->lsr[last];
    oto += b0 * sp->lot[last];
    const int64_t w = sp->ls[last] - b0 < SC_BLOCK ? sp->ls[last] - b0 : SC_BLOCK;
    const int64_t bix = sp->lix[last], bsr = sp->lsr[last], bot = sp->lot[last];
    switch (sp->dt) {
    case EM_F32: SCATTER(float, ADD_F); break;
    case EM_F64: SCATTER(double, ADD_F); break;
    case EM_I64: SCATTER(int64_t, ADD_U64); break;
    case EM_I32: SCATTER(int32_t, ADD_U32); break;
    default: SCATTER(uint8_t, ADD_U8); break;
    }
}

static void scat_task(void *arg, int64_t t, int worker)
{
    (void)worker;
    const scat_plan *sp = arg;
    int64_t u0 = t * sp->units_per_task;
    int64_t u1 = u0 + sp->units_per_task < sp->nunits ? u0 + sp->units_per_task : sp->nunits;
    for (int64_t u = u0; u < u1; u++)
        scat_unit(sp, u);
}

em_status cpu_k_scatter_add(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    const em_kview *ix = ka->in[0], *src = ka->in[1], *out = ka->out;
    em_status st;
    int dim = 0;
    if ((st = cpu_check_view(inst, "scatter_add", "out", out)) != EM_OK ||
        (st = check_index_view(inst, "scatter_add", "in[0] (index)", ix)) != EM_OK ||
        (st = cpu_check_view(inst, "scatter_add", "in[1] (source)", src)) != EM_OK ||
        (st = check_dim_arg(inst, "scatter_add", ka, out, ix, &dim)) != EM_OK)
        return st;
    if (out->dtype == EM_BOOL)
        return cpu_unsupported(inst, "scatter_add", out->dtype);
    if (src->dtype != out->dtype)
        return cpu_mismatch(inst, "scatter_add", "in[1] (source)", src->dtype, out->dtype);
    if (!same_shape(src, ix))
        return CPU_ERR(inst, EM_ERR_INVALID, "scatter_add: the source must have the index's shape");
    if ((st = check_indices(inst, "scatter_add", ix, dim, out->shape[dim])) != EM_OK)
        return st;
    scat_plan sp;
    memset(&sp, 0, sizeof sp);
    sp.dt = out->dtype;
    sp.esz = (int64_t)emk_dtype_size(out->dtype);
    sp.o = (char *)out->buf + out->offset * sp.esz;
    sp.src = (const char *)src->buf + src->offset * sp.esz;
    sp.ix = (const int64_t *)ix->buf + ix->offset;
    sp.n = ix->shape[dim];
    sp.ixd = ix->strides[dim];
    sp.srd = src->strides[dim];
    sp.otd = out->strides[dim];
    int64_t lines = 1;
    for (int d = 0; d < ix->ndim; d++) {
        if (d == dim)
            continue;
        sp.ls[sp.nl] = ix->shape[d];
        sp.lix[sp.nl] = ix->strides[d];
        sp.lsr[sp.nl] = src->strides[d];
        sp.lot[sp.nl++] = out->strides[d];
        lines *= ix->shape[d];
    }
    if (sp.nl == 0) {
        sp.ls[0] = 1;
        sp.nl = 1;
    }
    if (lines == 0 || sp.n == 0)
        return EM_OK;
    sp.nblk = (sp.ls[sp.nl - 1] + SC_BLOCK - 1) / SC_BLOCK;
    sp.nunits = lines / sp.ls[sp.nl - 1] * sp.nblk;
    const int64_t w = sp.ls[sp.nl - 1] < SC_BLOCK ? sp.ls[sp.nl - 1] : SC_BLOCK;
    sp.units_per_task = PAR_CHUNK_MIN / (w * sp.n);
    if (sp.units_per_task < 1)
        sp.units_per_task = 1;
    const int64_t ntasks = (sp.nunits + sp.units_per_task - 1) / sp.units_per_task;
    if (ntasks > 1 && lines * sp.n >= PAR_CHEAP)
        cpu_parallel(inst, ntasks, scat_task, &sp);
    else
        for (int64_t t = 0; t < ntasks; t++)
            scat_task(&sp, t, 0);
    return EM_OK;
}
