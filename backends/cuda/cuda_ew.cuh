/* backends/cuda/cuda_ew.cuh — what every kernel file of the cuda backend shares: the
 * elementwise kernel templates and their launcher, the host-side checks of kernel views
 * (in the cpu backend's order and wording), launch-error checking, and dispatch from an
 * em_dtype to a C++ type. Included by each .cu file that defines kernels; everything here
 * is a template or static inline, so each translation unit gets its own copy.
 *
 * Elementwise ops are one template instantiated per (op functor, dtypes) with two
 * variants: `flat` for the 1-D case the core reduces contiguous work to (out contiguous,
 * each input contiguous or a broadcast scalar), with 4-element vector loads and stores
 * when every pointer is aligned for them; and `nd` for any strided/broadcast view, which
 * maps the row-major logical index to each operand's offset (cuda_index.h). Both are
 * grid-stride loops over a grid capped at a few waves of the device. */
#ifndef EMBER_CUDA_EW_CUH
#define EMBER_CUDA_EW_CUH

#include "cuda_backend.h"
#include "cuda_math.h"

#include <stdint.h>
#include <string.h>

typedef uint8_t u8;

#define EW_THREADS 256
#define VEC 4

/* ------------------------------------------------------------------ device helpers */

template <class T, int N>
struct alignas(sizeof(T) * N) vec_t {
    T v[N];
};

template <class T>
__device__ __forceinline__ void vload(vec_t<T, VEC> &dst, const T *p, int64_t i, bool splat, T s)
{
    if (splat) {
#pragma unroll
        for (int j = 0; j < VEC; j++)
            dst.v[j] = s;
    } else {
        dst = *reinterpret_cast<const vec_t<T, VEC> *>(p + i);
    }
}

/* Flat: out[i] = f(a[i or 0], b[i or 0], c[i or 0]) for i < n; bit k of bcast: input k is
 * a broadcast scalar. The first nvec * VEC elements go in vectors (nvec is 0 when a
 * pointer is not aligned for them), the rest one by one. */
template <int NIN, class TO, class T0, class T1, class T2, class F>
__global__ void __launch_bounds__(EW_THREADS)
    k_flat(TO *o, const T0 *a, const T1 *b, const T2 *c, int64_t n, int64_t nvec, unsigned bcast,
           F f)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS;
    const int64_t t0 = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x;
    T0 sa = T0();
    T1 sb = T1();
    T2 sc = T2();
    if constexpr (NIN > 0)
        if (bcast & 1u)
            sa = a[0];
    if constexpr (NIN > 1)
        if (bcast & 2u)
            sb = b[0];
    if constexpr (NIN > 2)
        if (bcast & 4u)
            sc = c[0];
    for (int64_t v = t0; v < nvec; v += stride) {
        const int64_t i = v * VEC;
        vec_t<T0, VEC> va = {};
        vec_t<T1, VEC> vb = {};
        vec_t<T2, VEC> vc = {};
        if constexpr (NIN > 0)
            vload(va, a, i, (bcast & 1u) != 0, sa);
        if constexpr (NIN > 1)
            vload(vb, b, i, (bcast & 2u) != 0, sb);
        if constexpr (NIN > 2)
            vload(vc, c, i, (bcast & 4u) != 0, sc);
        vec_t<TO, VEC> r;
#pragma unroll
        for (int j = 0; j < VEC; j++)
            r.v[j] = f(va.v[j], vb.v[j], vc.v[j]);
        *reinterpret_cast<vec_t<TO, VEC> *>(o + i) = r;
    }
    for (int64_t i = nvec * VEC + t0; i < n; i += stride) {
        T0 x = sa;
        T1 y = sb;
        T2 z = sc;
        if constexpr (NIN > 0)
            if (!(bcast & 1u))
                x = a[i];
        if constexpr (NIN > 1)
            if (!(bcast & 2u))
                y = b[i];
        if constexpr (NIN > 2)
            if (!(bcast & 4u))
                z = c[i];
        o[i] = f(x, y, z);
    }
}

/* Any strided / broadcast views of one shape. */
template <int NIN, class TO, class T0, class T1, class T2, class F>
__global__ void __launch_bounds__(EW_THREADS)
    k_nd(TO *o, const T0 *a, const T1 *b, const T2 *c, const emcu_geom g, F f)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS;
    for (int64_t lin = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; lin < g.numel;
         lin += stride) {
        int64_t off[NIN + 1];
        emcu_geom_offsets(&g, lin, off, NIN + 1);
        T0 x = T0();
        T1 y = T1();
        T2 z = T2();
        if constexpr (NIN > 0)
            x = a[off[1]];
        if constexpr (NIN > 1)
            y = b[off[2]];
        if constexpr (NIN > 2)
            z = c[off[3]];
        o[off[0]] = f(x, y, z);
    }
}

/* rng: element lin of out gets the draw for counter ctr + lin. p1 is the uniform span
 * (hi - lo, computed once in double as the cpu backend does) or the normal's std. */
/* ------------------------------------------------------------------ host: checks */

static const char *const cu_view_names[4] = {"out", "in[0]", "in[1]", "in[2]"};

#define SAME_OUT 1u
#define SAME_IN0 2u
#define SAME_IN1 4u
#define SAME_IN2 8u
#define FLOAT_KEYS ((1u << EM_F32) | (1u << EM_F64))
#define INT_KEYS ((1u << EM_I64) | (1u << EM_I32) | (1u << EM_U8))
#define ALL_KEYS (FLOAT_KEYS | (1u << EM_BOOL) | INT_KEYS)

static inline int valid_dtype(int32_t dt)
{
    return dt >= 0 && dt < EM_DTYPE_COUNT_;
}

static inline em_status check_view(cu_dev *d, const char *kname, const char *what, const em_kview *v)
{
    cu_inst *inst = d->inst;
    if (!v || !v->buf)
        return CU_ERR(inst, EM_ERR_INVALID, "%s: %s view is missing", kname, what);
    if (!valid_dtype(v->dtype))
        return CU_ERR(inst, EM_ERR_INVALID, "%s: %s has invalid dtype %d", kname, what,
                      (int)v->dtype);
    if (v->ndim < 1 || v->ndim > EM_MAX_DIMS)
        return CU_ERR(inst, EM_ERR_INVALID, "%s: %s has %d dims (1..%d supported)", kname, what,
                      (int)v->ndim, EM_MAX_DIMS);
    for (int d2 = 0; d2 < v->ndim; d2++)
        if (v->shape[d2] < 0)
            return CU_ERR(inst, EM_ERR_INVALID, "%s: %s has negative size %lld in dim %d", kname,
                          what, (long long)v->shape[d2], d2);
    return EM_OK;
}

static inline em_status unsupported(cu_dev *d, const char *kname, int32_t dt)
{
    return CU_ERR(d->inst, EM_ERR_UNSUPPORTED,
                  "%s: dtype %s is not supported by the cuda backend", kname, emk_dtype_name(dt));
}

static inline em_status mismatch(cu_dev *d, const char *kname, const char *what, int32_t got,
                          int32_t want)
{
    return CU_ERR(d->inst, EM_ERR_DTYPE, "%s: %s has dtype %s, expected %s", kname, what,
                  emk_dtype_name(got), emk_dtype_name(want));
}

/* The cpu backend's checks, in its order: views present, the key dtype supported, the
 * operands in `same` of the key dtype, every view sane, inputs of out's ndim and shape. */
static inline em_status ew_check(cu_dev *d, const char *kname, const em_kargs *ka, int nin,
                          int32_t key, unsigned keys, unsigned same)
{
    const em_kview *v[4] = {ka->out, ka->in[0], ka->in[1], ka->in[2]};
    for (int k = 0; k <= nin; k++)
        if (!v[k])
            return CU_ERR(d->inst, EM_ERR_INVALID, "%s: %s view is missing", kname,
                          cu_view_names[k]);
    if (key < 0 || key >= EM_DTYPE_COUNT_ || !((keys >> key) & 1u))
        return unsupported(d, kname, key);
    for (int k = 0; k <= nin; k++)
        if (((same >> k) & 1u) && v[k]->dtype != key)
            return mismatch(d, kname, cu_view_names[k], v[k]->dtype, key);
    em_status st;
    for (int k = 0; k <= nin; k++)
        if ((st = check_view(d, kname, cu_view_names[k], v[k])) != EM_OK)
            return st;
    const em_kview *o = v[0];
    for (int k = 1; k <= nin; k++) {
        if (v[k]->ndim != o->ndim)
            return CU_ERR(d->inst, EM_ERR_INVALID, "%s: %s has %d dims but out has %d", kname,
                          cu_view_names[k], (int)v[k]->ndim, (int)o->ndim);
        for (int dd = 0; dd < o->ndim; dd++)
            if (v[k]->shape[dd] != o->shape[dd])
                return CU_ERR(d->inst, EM_ERR_INVALID,
                              "%s: %s has size %lld in dim %d but out has %lld", kname,
                              cu_view_names[k], (long long)v[k]->shape[dd], dd,
                              (long long)o->shape[dd]);
    }
    return EM_OK;
}

static inline em_status launched(cu_dev *d, const char *kname)
{
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? EM_OK : cu_fail(d, e, kname, "kernel launch");
}

template <class T>
static inline bool vec_aligned(const T *p)
{
    return ((uintptr_t)p % (sizeof(T) * VEC)) == 0;
}

/* ------------------------------------------------------------------ host: launchers */

/* One launch of f over the checked views of ka. */
template <int NIN, class TO, class T0, class T1, class T2, class F>
static em_status ew_run(cu_dev *d, const char *kname, const em_kargs *ka, F f)
{
    const em_kview *v[4] = {ka->out, ka->in[0], ka->in[1], ka->in[2]};
    emcu_geom g;
    const int64_t n = emcu_geom_init(&g, v, NIN + 1);
    if (n == 0)
        return EM_OK;
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    TO *o = (TO *)v[0]->buf + v[0]->offset;
    const T0 *a = NIN > 0 ? (const T0 *)v[1]->buf + v[1]->offset : nullptr;
    const T1 *b = NIN > 1 ? (const T1 *)v[2]->buf + v[2]->offset : nullptr;
    const T2 *c = NIN > 2 ? (const T2 *)v[3]->buf + v[3]->offset : nullptr;
    if (emcu_geom_flat(&g)) {
        unsigned bcast = 0;
        bool aligned = vec_aligned(o);
        if (NIN > 0) {
            if (g.st[1][0] == 0)
                bcast |= 1u;
            else
                aligned = aligned && vec_aligned(a);
        }
        if (NIN > 1) {
            if (g.st[2][0] == 0)
                bcast |= 2u;
            else
                aligned = aligned && vec_aligned(b);
        }
        if (NIN > 2) {
            if (g.st[3][0] == 0)
                bcast |= 4u;
            else
                aligned = aligned && vec_aligned(c);
        }
        const int64_t nvec = aligned ? n / VEC : 0;
        const int64_t blocks =
            emcu_grid_blocks(nvec + (n - nvec * VEC), EW_THREADS, d->max_blocks);
        k_flat<NIN, TO, T0, T1, T2, F>
            <<<(unsigned)blocks, EW_THREADS, 0, d->stream>>>(o, a, b, c, n, nvec, bcast, f);
    } else {
        const int64_t blocks = emcu_grid_blocks(n, EW_THREADS, d->max_blocks);
        k_nd<NIN, TO, T0, T1, T2, F><<<(unsigned)blocks, EW_THREADS, 0, d->stream>>>(o, a, b, c, g, f);
    }
    return launched(d, kname);
}


/* ------------------------------------------------------------------ dtype dispatch
 * fn(T()) with T the storage type of a dtype the caller has checked. bool and u8 share
 * uint8_t: a kernel that treats them differently gets the dtype itself. */

template <class Fn>
static inline em_status on_float(int32_t dt, Fn &&fn)
{
    return dt == EM_F32 ? fn(float()) : fn(double());
}

template <class Fn>
static inline em_status on_int(int32_t dt, Fn &&fn)
{
    switch (dt) {
    case EM_I64: return fn(int64_t());
    case EM_I32: return fn(int32_t());
    default: return fn(u8());
    }
}

template <class Fn>
static inline em_status on_any(int32_t dt, Fn &&fn)
{
    switch (dt) {
    case EM_F32: return fn(float());
    case EM_F64: return fn(double());
    case EM_I64: return fn(int64_t());
    case EM_I32: return fn(int32_t());
    default: return fn(u8());
    }
}

/* The same dispatch on the element size alone, for kernels that only move elements. */
template <class Fn>
static inline em_status on_size(int32_t dt, Fn &&fn)
{
    switch (emk_dtype_size(dt)) {
    case 8: return fn(uint64_t());
    case 4: return fn(uint32_t());
    default: return fn(u8());
    }
}

/* Blocks for a grid-stride loop of `threads`-thread blocks over `work` items. */
static inline unsigned cu_blocks(const cu_dev *d, int64_t work, int threads)
{
    return (unsigned)emcu_grid_blocks(work, threads, d->max_blocks);
}

#endif
