/* backends/cuda/cuda_dim.cu — the kernels along one dimension on the cuda backend:
 * max_dim, min_dim (value and first index of the extreme, NaN winning), softmax and
 * log_softmax. The core hands them 3-D (outer, n, inner) views; a row is one (outer,
 * inner) position and its n elements. Long rows get a block each (threads stride over
 * the row, a tree in shared memory combines them), short rows or rows side by side along
 * a wide inner dim a thread each (cuda_math.h: emcu_dim_mode). Both launch shapes are
 * grid-stride loops over the rows, so no grid dimension limit applies.
 *
 * softmax: max first (NaN-propagating), then the sum of exp(x - max) accumulated in
 * double by a fixed tree (deterministic), then exp(x - max) / sum or x - max - log(sum).
 * A row that is all -inf gives NaN (x - max is NaN), as PyTorch. */
#include "cuda_ew.cuh"

/* ------------------------------------------------------------------ device helpers */

/* The strides of one (outer, n, inner) view. */
struct dim_view {
    int64_t st[3];
};

__device__ __forceinline__ void arg_take(float v, int64_t i, float *b, int64_t *bi, int mx)
{
    emcu_arg_take_f32(v, i, b, bi, mx);
}
__device__ __forceinline__ void arg_take(double v, int64_t i, double *b, int64_t *bi, int mx)
{
    emcu_arg_take_f64(v, i, b, bi, mx);
}
__device__ __forceinline__ void arg_take(int64_t v, int64_t i, int64_t *b, int64_t *bi, int mx)
{
    emcu_arg_take_i64(v, i, b, bi, mx);
}
__device__ __forceinline__ void arg_take(int32_t v, int64_t i, int32_t *b, int64_t *bi, int mx)
{
    emcu_arg_take_i32(v, i, b, bi, mx);
}
__device__ __forceinline__ void arg_take(u8 v, int64_t i, u8 *b, int64_t *bi, int mx)
{
    emcu_arg_take_u8(v, i, b, bi, mx);
}

__device__ __forceinline__ float dexp(float x) { return expf(x); }
__device__ __forceinline__ double dexp(double x) { return exp(x); }

/* NaN-propagating maximum: once a NaN is seen it stays */
__device__ __forceinline__ double nan_max(double m, double v) { return v > m || v != v ? v : m; }

/* ------------------------------------------------------------------ max_dim / min_dim */

/* A thread per row: scan j in order. */
template <class T, bool MAX>
__global__ void __launch_bounds__(EMCU_DIM_THREADS)
    k_arg_thread(const T *in, dim_view vi, T *ov, dim_view vv, int64_t *oi, dim_view vx,
                 int64_t rows, int64_t n, int64_t inner)
{
    const int64_t stride = (int64_t)gridDim.x * EMCU_DIM_THREADS;
    for (int64_t r = (int64_t)blockIdx.x * EMCU_DIM_THREADS + threadIdx.x; r < rows;
         r += stride) {
        const int64_t base = emcu_dim_off(vi.st, inner, r, 0);
        T best = T();
        int64_t bi = -1;
        for (int64_t j = 0; j < n; j++)
            arg_take(in[base + j * vi.st[1]], j, &best, &bi, MAX);
        ov[emcu_dim_off(vv.st, inner, r, 0)] = best;
        oi[emcu_dim_off(vx.st, inner, r, 0)] = bi;
    }
}

/* A block per row: each thread keeps the best of j = tid, tid + 256, ...; the tree
 * combines them with the same rule, so the lowest index of the extreme value wins. */
template <class T, bool MAX>
__global__ void __launch_bounds__(EMCU_DIM_THREADS)
    k_arg_block(const T *in, dim_view vi, T *ov, dim_view vv, int64_t *oi, dim_view vx,
                int64_t rows, int64_t n, int64_t inner)
{
    __shared__ T sv[EMCU_DIM_THREADS];
    __shared__ int64_t si[EMCU_DIM_THREADS];
    const int tid = (int)threadIdx.x;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t base = emcu_dim_off(vi.st, inner, r, 0);
        T best = T();
        int64_t bi = -1;
        for (int64_t j = tid; j < n; j += EMCU_DIM_THREADS)
            arg_take(in[base + j * vi.st[1]], j, &best, &bi, MAX);
        sv[tid] = best;
        si[tid] = bi;
        __syncthreads();
        for (int s = EMCU_DIM_THREADS / 2; s > 0; s >>= 1) {
            if (tid < s)
                arg_take(sv[tid + s], si[tid + s], &sv[tid], &si[tid], MAX);
            __syncthreads();
        }
        if (tid == 0) {
            ov[emcu_dim_off(vv.st, inner, r, 0)] = sv[0];
            oi[emcu_dim_off(vx.st, inner, r, 0)] = si[0];
        }
        __syncthreads();   /* sv, si are rewritten for the next row */
    }
}

/* ------------------------------------------------------------------ softmax */

/* A thread per row: three passes over j. */
template <class T, bool LOG>
__global__ void __launch_bounds__(EMCU_DIM_THREADS)
    k_softmax_thread(const T *in, dim_view vi, T *out, dim_view vo, int64_t rows, int64_t n,
                     int64_t inner)
{
    const int64_t stride = (int64_t)gridDim.x * EMCU_DIM_THREADS;
    for (int64_t r = (int64_t)blockIdx.x * EMCU_DIM_THREADS + threadIdx.x; r < rows;
         r += stride) {
        const int64_t ib = emcu_dim_off(vi.st, inner, r, 0), ob = emcu_dim_off(vo.st, inner, r, 0);
        double m = -INFINITY;
        for (int64_t j = 0; j < n; j++)
            m = nan_max(m, (double)in[ib + j * vi.st[1]]);
        const T mt = (T)m;
        double sum = 0;
        for (int64_t j = 0; j < n; j++)
            sum += (double)dexp((T)(in[ib + j * vi.st[1]] - mt));
        const double ls = log(sum);
        for (int64_t j = 0; j < n; j++) {
            const T x = (T)(in[ib + j * vi.st[1]] - mt);
            out[ob + j * vo.st[1]] = LOG ? (T)((double)x - ls) : (T)((double)dexp(x) / sum);
        }
    }
}

/* Fixed-tree reductions over the block (deterministic): every thread gets the result. */
__device__ __forceinline__ double block_max(double *sm, double v, int tid)
{
    sm[tid] = v;
    __syncthreads();
    for (int s = EMCU_DIM_THREADS / 2; s > 0; s >>= 1) {
        if (tid < s)
            sm[tid] = nan_max(sm[tid], sm[tid + s]);
        __syncthreads();
    }
    const double r = sm[0];
    __syncthreads();   /* sm is reused by the next reduction */
    return r;
}

__device__ __forceinline__ double block_sum(double *sm, double v, int tid)
{
    sm[tid] = v;
    __syncthreads();
    for (int s = EMCU_DIM_THREADS / 2; s > 0; s >>= 1) {
        if (tid < s)
            sm[tid] += sm[tid + s];
        __syncthreads();
    }
    const double r = sm[0];
    __syncthreads();
    return r;
}

/* A block per row. */
template <class T, bool LOG>
__global__ void __launch_bounds__(EMCU_DIM_THREADS)
    k_softmax_block(const T *in, dim_view vi, T *out, dim_view vo, int64_t rows, int64_t n,
                    int64_t inner)
{
    __shared__ double sm[EMCU_DIM_THREADS];
    const int tid = (int)threadIdx.x;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t ib = emcu_dim_off(vi.st, inner, r, 0), ob = emcu_dim_off(vo.st, inner, r, 0);
        double m = -INFINITY;
        for (int64_t j = tid; j < n; j += EMCU_DIM_THREADS)
            m = nan_max(m, (double)in[ib + j * vi.st[1]]);
        m = block_max(sm, m, tid);
        const T mt = (T)m;
        double sum = 0;
        for (int64_t j = tid; j < n; j += EMCU_DIM_THREADS)
            sum += (double)dexp((T)(in[ib + j * vi.st[1]] - mt));
        sum = block_sum(sm, sum, tid);
        const double ls = log(sum);
        for (int64_t j = tid; j < n; j += EMCU_DIM_THREADS) {
            const T x = (T)(in[ib + j * vi.st[1]] - mt);
            out[ob + j * vo.st[1]] = LOG ? (T)((double)x - ls) : (T)((double)dexp(x) / sum);
        }
    }
}

/* ------------------------------------------------------------------ host side */

/* v is present, sane, and a 3-D view of shape (outer, n, inner). */
static em_status check_3d(cu_dev *d, const char *kname, const char *what, const em_kview *v,
                          int64_t outer, int64_t n, int64_t inner)
{
    em_status st = check_view(d, kname, what, v);
    if (st != EM_OK)
        return st;
    if (v->ndim != 3 || v->shape[0] != outer || v->shape[1] != n || v->shape[2] != inner)
        return CU_ERR(d->inst, EM_ERR_INVALID,
                      "%s: %s must be a (%lld, %lld, %lld) view, got %d dims (%lld, %lld, %lld)",
                      kname, what, (long long)outer, (long long)n, (long long)inner,
                      (int)v->ndim, (long long)v->shape[0],
                      (long long)(v->ndim > 1 ? v->shape[1] : 0),
                      (long long)(v->ndim > 2 ? v->shape[2] : 0));
    return EM_OK;
}

/* in[0] present, 3-D, with n >= 1; its sizes in *outer, *n, *inner. */
static em_status check_in(cu_dev *d, const char *kname, const em_kargs *ka, int64_t *outer,
                          int64_t *n, int64_t *inner)
{
    const em_kview *in = ka->in[0];
    em_status st = check_view(d, kname, "in[0]", in);
    if (st != EM_OK)
        return st;
    if (in->ndim != 3)
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: in[0] must be an (outer, n, inner) view, got %d dims",
                      kname, (int)in->ndim);
    if (in->shape[1] < 1)
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: in[0] has size 0 in the reduced dim", kname);
    *outer = in->shape[0];
    *n = in->shape[1];
    *inner = in->shape[2];
    return EM_OK;
}

static dim_view strides_of(const em_kview *v)
{
    dim_view s = {{v->strides[0], v->strides[1], v->strides[2]}};
    return s;
}

template <class T>
static T *elem(const em_kview *v)
{
    return (T *)v->buf + v->offset;
}

static em_status arg_dim(cu_dev *d, const char *kname, const em_kargs *ka, bool is_max)
{
    int64_t outer = 0, n = 0, inner = 0;
    em_status st = check_in(d, kname, ka, &outer, &n, &inner);
    if (st != EM_OK)
        return st;
    const int32_t key = ka->in[0]->dtype;
    if (!(((FLOAT_KEYS | INT_KEYS) >> key) & 1u))
        return unsupported(d, kname, key);
    if (ka->struct_size < offsetof(em_kargs, outs) + sizeof ka->outs || ka->n_out < 2 ||
        !ka->outs)
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: needs two outputs (values, indices)", kname);
    const em_kview *ov = ka->outs[0], *oi = ka->outs[1];
    if ((st = check_3d(d, kname, "outs[0]", ov, outer, 1, inner)) != EM_OK ||
        (st = check_3d(d, kname, "outs[1]", oi, outer, 1, inner)) != EM_OK)
        return st;
    if (ov->dtype != key)
        return mismatch(d, kname, "outs[0]", ov->dtype, key);
    if (oi->dtype != EM_I64)
        return mismatch(d, kname, "outs[1] (indices)", oi->dtype, EM_I64);
    const int64_t rows = outer * inner;
    if (rows == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    const dim_view vi = strides_of(ka->in[0]), vv = strides_of(ov), vx = strides_of(oi);
    const bool block = emcu_dim_mode(outer, n, inner) == EMCU_DIM_BLOCK;
    const unsigned grid = block ? (unsigned)(rows < d->max_blocks ? rows : d->max_blocks)
                                : cu_blocks(d, rows, EMCU_DIM_THREADS);
    on_any(key, [&](auto z) {
        using T = decltype(z);
        const T *src = elem<const T>(ka->in[0]);
        T *dv = elem<T>(ov);
        int64_t *dx = elem<int64_t>(oi);
        if (block && is_max)
            k_arg_block<T, true><<<grid, EMCU_DIM_THREADS, 0, d->stream>>>(src, vi, dv, vv, dx, vx,
                                                                           rows, n, inner);
        else if (block)
            k_arg_block<T, false><<<grid, EMCU_DIM_THREADS, 0, d->stream>>>(src, vi, dv, vv, dx,
                                                                            vx, rows, n, inner);
        else if (is_max)
            k_arg_thread<T, true><<<grid, EMCU_DIM_THREADS, 0, d->stream>>>(src, vi, dv, vv, dx,
                                                                            vx, rows, n, inner);
        else
            k_arg_thread<T, false><<<grid, EMCU_DIM_THREADS, 0, d->stream>>>(src, vi, dv, vv, dx,
                                                                             vx, rows, n, inner);
        return EM_OK;
    });
    return launched(d, kname);
}

em_status cu_k_max_dim(void *dev, const em_kargs *ka)
{
    return arg_dim((cu_dev *)dev, "max_dim", ka, true);
}

em_status cu_k_min_dim(void *dev, const em_kargs *ka)
{
    return arg_dim((cu_dev *)dev, "min_dim", ka, false);
}

template <bool LOG>
static em_status softmax(cu_dev *d, const char *kname, const em_kargs *ka)
{
    int64_t outer = 0, n = 0, inner = 0;
    em_status st = check_in(d, kname, ka, &outer, &n, &inner);
    if (st != EM_OK)
        return st;
    const int32_t key = ka->in[0]->dtype;
    if (!((FLOAT_KEYS >> key) & 1u))
        return unsupported(d, kname, key);
    if ((st = check_3d(d, kname, "out", ka->out, outer, n, inner)) != EM_OK)
        return st;
    if (ka->out->dtype != key)
        return mismatch(d, kname, "out", ka->out->dtype, key);
    const int64_t rows = outer * inner;
    if (rows == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    const dim_view vi = strides_of(ka->in[0]), vo = strides_of(ka->out);
    const bool block = emcu_dim_mode(outer, n, inner) == EMCU_DIM_BLOCK;
    const unsigned grid = block ? (unsigned)(rows < d->max_blocks ? rows : d->max_blocks)
                                : cu_blocks(d, rows, EMCU_DIM_THREADS);
    on_float(key, [&](auto z) {
        using T = decltype(z);
        const T *src = elem<const T>(ka->in[0]);
        T *dst = elem<T>(ka->out);
        if (block)
            k_softmax_block<T, LOG><<<grid, EMCU_DIM_THREADS, 0, d->stream>>>(src, vi, dst, vo,
                                                                             rows, n, inner);
        else
            k_softmax_thread<T, LOG><<<grid, EMCU_DIM_THREADS, 0, d->stream>>>(src, vi, dst, vo,
                                                                              rows, n, inner);
        return EM_OK;
    });
    return launched(d, kname);
}

em_status cu_k_softmax(void *dev, const em_kargs *ka)
{
    return softmax<false>((cu_dev *)dev, "softmax", ka);
}

em_status cu_k_log_softmax(void *dev, const em_kargs *ka)
{
    return softmax<true>((cu_dev *)dev, "log_softmax", ka);
}
