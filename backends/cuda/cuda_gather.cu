/* backends/cuda/cuda_gather.cu — the indexing kernels of the cuda backend: index_select,
 * gather (every dtype: they only move elements, so one kernel per element size) and
 * scatter_add (float and integer dtypes, with atomic adds: several positions may hit one
 * element, summed in any order). Each is a grid-stride loop over the index's positions
 * with the offsets of cuda_math.h's indexing geometry. Index values are in range: the
 * core checked them before the call. */
#include "cuda_ew.cuh"

/* ------------------------------------------------------------------ device side */

/* gather / index_select: out[o0] = src[o2 + index[o1] * s] */
template <class T>
__global__ void __launch_bounds__(EW_THREADS)
    k_gather(T *out, const int64_t *index, const T *src, const emcu_geom g, int64_t s)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS;
    for (int64_t lin = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; lin < g.numel;
         lin += stride) {
        int64_t off[3];
        emcu_geom_offsets(&g, lin, off, 3);
        out[off[0]] = src[off[2] + index[off[1]] * s];
    }
}

/* Atomic out += v in the dtype's own arithmetic (integers wrap). */
__device__ __forceinline__ void atomic_add(float *p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double *p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int64_t *p, int64_t v)
{
    atomicAdd((unsigned long long *)p, (unsigned long long)v);
}
__device__ __forceinline__ void atomic_add(int32_t *p, int32_t v)
{
    atomicAdd((unsigned *)p, (unsigned)v);
}
/* no byte atomics: compare-and-swap the aligned 32-bit word that holds the byte (its other
 * bytes are written back unchanged) */
__device__ __forceinline__ void atomic_add(u8 *p, u8 v)
{
    unsigned *w = (unsigned *)((uintptr_t)p & ~(uintptr_t)3);
    const unsigned sh = (unsigned)((uintptr_t)p & 3u) * 8u;
    unsigned old = *w, assumed;
    do {
        assumed = old;
        const unsigned b = ((assumed >> sh) + v) & 0xffu;
        old = atomicCAS(w, assumed, (assumed & ~(0xffu << sh)) | (b << sh));
    } while (old != assumed);
}

/* scatter_add: out[o2 + index[o0] * s] += src[o1] */
template <class T>
__global__ void __launch_bounds__(EW_THREADS)
    k_scatter_add(T *out, const int64_t *index, const T *src, const emcu_geom g, int64_t s)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS;
    for (int64_t lin = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; lin < g.numel;
         lin += stride) {
        int64_t off[3];
        emcu_geom_offsets(&g, lin, off, 3);
        atomic_add(&out[off[2] + index[off[0]] * s], src[off[1]]);
    }
}

/* ------------------------------------------------------------------ host side */

template <class T>
static T *elem(const em_kview *v)
{
    return (T *)v->buf + v->offset;
}

/* dim = ip[0], in [0, ndim). */
static em_status get_dim(cu_dev *d, const char *kname, const em_kargs *ka, int ndim, int *dim)
{
    if (ka->struct_size < offsetof(em_kargs, ip) + sizeof ka->ip || !ka->ip || ka->n_ip < 1)
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: needs the dim in ip[0]", kname);
    const int64_t v = ka->ip[0];
    if (v < 0 || v >= ndim)
        return CU_ERR(d->inst, EM_ERR_INVALID,
                      "%s: dim %lld is out of range for views of %d dims", kname, (long long)v, ndim);
    *dim = (int)v;
    return EM_OK;
}

/* The three views present and sane; the data views of one dtype (in keys), the index i64. */
static em_status check_index_views(cu_dev *d, const char *kname, const em_kview *out,
                                   const em_kview *index, const char *iname,
                                   const em_kview *src, const char *sname, unsigned keys)
{
    em_status st;
    if ((st = check_view(d, kname, "out", out)) != EM_OK ||
        (st = check_view(d, kname, iname, index)) != EM_OK ||
        (st = check_view(d, kname, sname, src)) != EM_OK)
        return st;
    if (!((keys >> out->dtype) & 1u))
        return unsupported(d, kname, out->dtype);
    if (src->dtype != out->dtype)
        return mismatch(d, kname, sname, src->dtype, out->dtype);
    if (index->dtype != EM_I64)
        return mismatch(d, kname, iname, index->dtype, EM_I64);
    return EM_OK;
}

/* `big` has the index's ndim and is at least as large in every dim but `dim` (-1: none). */
static em_status check_covers(cu_dev *d, const char *kname, const char *bname,
                              const em_kview *big, const char *iname, const em_kview *index,
                              int dim)
{
    if (big->ndim != index->ndim)
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: %s has %d dims but %s has %d", kname, bname,
                      (int)big->ndim, iname, (int)index->ndim);
    for (int k = 0; k < index->ndim; k++)
        if (k != dim && big->shape[k] < index->shape[k])
            return CU_ERR(d->inst, EM_ERR_INVALID,
                          "%s: %s has size %lld in dim %d, smaller than %s's %lld", kname, bname,
                          (long long)big->shape[k], k, iname, (long long)index->shape[k]);
    return EM_OK;
}

em_status cu_k_gather(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    const em_kview *out = ka->out, *src = ka->in[0], *index = ka->in[1];
    em_status st = check_index_views(d, "gather", out, index, "in[1] (index)", src,
                                     "in[0] (source)", ALL_KEYS);
    if (st != EM_OK)
        return st;
    int dim = 0;
    if ((st = get_dim(d, "gather", ka, out->ndim, &dim)) != EM_OK ||
        (st = check_covers(d, "gather", "in[0] (source)", src, "in[1] (index)", index, dim)) != EM_OK)
        return st;
    if (out->ndim != index->ndim)
        return CU_ERR(d->inst, EM_ERR_INVALID, "gather: out has %d dims but the index has %d",
                      (int)out->ndim, (int)index->ndim);
    for (int k = 0; k < out->ndim; k++)
        if (out->shape[k] != index->shape[k])
            return CU_ERR(d->inst, EM_ERR_INVALID,
                          "gather: out has size %lld in dim %d but the index has %lld",
                          (long long)out->shape[k], k, (long long)index->shape[k]);
    emcu_geom g;
    int64_t s = 0;
    if (emcu_gather_geom(&g, out, index, src, dim, &s) == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    const unsigned grid = cu_blocks(d, g.numel, EW_THREADS);
    on_size(out->dtype, [&](auto z) {
        using T = decltype(z);
        k_gather<T><<<grid, EW_THREADS, 0, d->stream>>>(elem<T>(out), elem<const int64_t>(index),
                                                         elem<const T>(src), g, s);
        return EM_OK;
    });
    return launched(d, "gather");
}

em_status cu_k_index_select(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    const em_kview *out = ka->out, *src = ka->in[0], *index = ka->in[1];
    em_status st = check_index_views(d, "index_select", out, index, "in[1] (index)", src,
                                     "in[0] (source)", ALL_KEYS);
    if (st != EM_OK)
        return st;
    if (src->ndim != 3 || out->ndim != 3 || index->ndim != 1 ||
        out->shape[0] != src->shape[0] || out->shape[1] != index->shape[0] ||
        out->shape[2] != src->shape[2])
        return CU_ERR(d->inst, EM_ERR_INVALID,
                      "index_select: expected in[0] (outer, n, inner), a 1-D index of m elements "
                      "and out (outer, m, inner); got %d, %d and %d dims",
                      (int)src->ndim, (int)index->ndim, (int)out->ndim);
    emcu_geom g;
    int64_t s = 0;
    if (emcu_index_select_geom(&g, out, index, src, &s) == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    const unsigned grid = cu_blocks(d, g.numel, EW_THREADS);
    on_size(out->dtype, [&](auto z) {
        using T = decltype(z);
        k_gather<T><<<grid, EW_THREADS, 0, d->stream>>>(elem<T>(out), elem<const int64_t>(index),
                                                         elem<const T>(src), g, s);
        return EM_OK;
    });
    return launched(d, "index_select");
}

em_status cu_k_scatter_add(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    const em_kview *out = ka->out, *index = ka->in[0], *src = ka->in[1];
    em_status st = check_index_views(d, "scatter_add", out, index, "in[0] (index)", src,
                                     "in[1] (source)", FLOAT_KEYS | INT_KEYS);
    if (st != EM_OK)
        return st;
    int dim = 0;
    if ((st = get_dim(d, "scatter_add", ka, out->ndim, &dim)) != EM_OK ||
        (st = check_covers(d, "scatter_add", "out", out, "in[0] (index)", index, dim)) != EM_OK ||
        (st = check_covers(d, "scatter_add", "in[1] (source)", src, "in[0] (index)", index, -1)) !=
            EM_OK)
        return st;
    emcu_geom g;
    int64_t s = 0;
    if (emcu_scatter_geom(&g, out, index, src, dim, &s) == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    const unsigned grid = cu_blocks(d, g.numel, EW_THREADS);
    on_any(out->dtype, [&](auto z) {
        using T = decltype(z);
        k_scatter_add<T><<<grid, EW_THREADS, 0, d->stream>>>(
            elem<T>(out), elem<const int64_t>(index), elem<const T>(src), g, s);
        return EM_OK;
    });
    return launched(d, "scatter_add");
}
