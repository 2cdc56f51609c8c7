/* backends/cuda/cuda_kernels.cu — every non-gemm kernel of the cuda backend and its host
 * launcher: one kernel launch per ember op, on the context's stream, never a host sync.
 *
 * Elementwise ops are one template instantiated per (op functor, dtypes) with two
 * variants: `flat` for the 1-D case the core reduces contiguous work to (out contiguous,
 * each input contiguous or a broadcast scalar), with 4-element vector loads and stores
 * when every pointer is aligned for them; and `nd` for any strided/broadcast view, which
 * maps the row-major logical index to each operand's offset (cuda_index.h). Both are
 * grid-stride loops over a grid capped at a few waves of the device. The scalar semantics
 * come from cuda_index.h, shared with the host unit test that checks them against the cpu
 * backend.
 *
 * sum: deterministic, one launch — see the reduction notes in cuda_index.h.
 *
 * Compiled with --fmad=false: a*b+c is never contracted, so arithmetic rounds as on the
 * host (and the rng's affine map matches the cpu backend bit for bit). */
#include "cuda_backend.h"
#include "cuda_index.h"

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
template <class T, bool NORMAL>
__global__ void __launch_bounds__(EW_THREADS)
    k_rng(T *o, const emcu_geom g, uint64_t seed, uint64_t ctr, double p0, double p1)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS;
    for (int64_t lin = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; lin < g.numel;
         lin += stride) {
        int64_t off;
        emcu_geom_offsets(&g, lin, &off, 1);
        T v;
        if constexpr (NORMAL)
            v = (T)emcu_normal(seed, ctr, lin, p0, p1);
        else if constexpr (sizeof(T) == 4)
            v = emcu_uniform_f32(seed, ctr, lin, p0, p1);
        else
            v = emcu_uniform_f64(seed, ctr, lin, p0, p1);
        o[off] = v;
    }
}

/* ------------------------------------------------------------------ functors */

#define DEF_UNARY(NAME)                                                                   \
    __device__ __forceinline__ float op_##NAME(float x, float p0, float p1)               \
    {                                                                                     \
        return emcu_##NAME##_f32(x, p0, p1);                                              \
    }                                                                                     \
    __device__ __forceinline__ double op_##NAME(double x, double p0, double p1)           \
    {                                                                                     \
        return emcu_##NAME##_f64(x, p0, p1);                                              \
    }                                                                                     \
    template <class T>                                                                    \
    struct F_##NAME {                                                                     \
        T p0, p1;                                                                         \
        __device__ __forceinline__ T operator()(T x, u8, u8) const                        \
        {                                                                                 \
            return op_##NAME(x, p0, p1);                                                  \
        }                                                                                 \
    };
EMCU_UNARY_OPS(DEF_UNARY)

#define DEF_BINARY(NAME)                                                                  \
    __device__ __forceinline__ float op_##NAME(float a, float b, float p0, float p1)      \
    {                                                                                     \
        return emcu_##NAME##_f32(a, b, p0, p1);                                           \
    }                                                                                     \
    __device__ __forceinline__ double op_##NAME(double a, double b, double p0, double p1) \
    {                                                                                     \
        return emcu_##NAME##_f64(a, b, p0, p1);                                           \
    }                                                                                     \
    template <class T>                                                                    \
    struct F_##NAME {                                                                     \
        T p0, p1;                                                                         \
        __device__ __forceinline__ T operator()(T a, T b, u8) const                       \
        {                                                                                 \
            return op_##NAME(a, b, p0, p1);                                               \
        }                                                                                 \
    };
EMCU_BINARY_OPS(DEF_BINARY)

#define DEF_COMPARE(NAME)                                                                 \
    __device__ __forceinline__ u8 op_##NAME(float a, float b) { return emcu_##NAME##_f32(a, b); } \
    __device__ __forceinline__ u8 op_##NAME(double a, double b)                           \
    {                                                                                     \
        return emcu_##NAME##_f64(a, b);                                                   \
    }                                                                                     \
    __device__ __forceinline__ u8 op_##NAME(u8 a, u8 b) { return emcu_##NAME##_bool(a, b); } \
    template <class T>                                                                    \
    struct F_##NAME {                                                                     \
        __device__ __forceinline__ u8 operator()(T a, T b, u8) const { return op_##NAME(a, b); } \
    };
EMCU_COMPARE_OPS(DEF_COMPARE)

__device__ __forceinline__ float op_pow(float x, float p0, int mode) { return emcu_pow_f32(x, p0, mode); }
__device__ __forceinline__ double op_pow(double x, double p0, int mode) { return emcu_pow_f64(x, p0, mode); }

template <class T>
struct F_pow {
    T p0;
    int mode;
    __device__ __forceinline__ T operator()(T x, u8, u8) const { return op_pow(x, p0, mode); }
};

__device__ __forceinline__ float op_pow_backward(float a, float b, float p0, int mode)
{
    return emcu_pow_backward_f32(a, b, p0, mode);
}
__device__ __forceinline__ double op_pow_backward(double a, double b, double p0, int mode)
{
    return emcu_pow_backward_f64(a, b, p0, mode);
}

template <class T>
struct F_pow_backward {
    T p0;
    int mode;
    __device__ __forceinline__ T operator()(T a, T b, u8) const
    {
        return op_pow_backward(a, b, p0, mode);
    }
};

template <class T>
struct F_fill {
    T v;
    __device__ __forceinline__ T operator()(u8, u8, u8) const { return v; }
};

template <class T>
struct F_where {
    __device__ __forceinline__ T operator()(u8 cond, T a, T b) const { return cond ? a : b; }
};

template <class T>
struct F_masked_fill {
    T v;
    __device__ __forceinline__ T operator()(T a, u8 m, u8) const { return m ? v : a; }
};

/* copy with conversion: to bool is != 0, the rest C conversions */
template <class TO, class TI>
struct F_copy {
    __device__ __forceinline__ TO operator()(TI x, u8, u8) const
    {
        if constexpr (sizeof(TO) == 1 && sizeof(TI) != 1)
            return (TO)(x != 0);
        else
            return (TO)x;
    }
};

/* ------------------------------------------------------------------ host: checks */

static const char *const view_names[4] = {"out", "in[0]", "in[1]", "in[2]"};

#define SAME_OUT 1u
#define SAME_IN0 2u
#define SAME_IN1 4u
#define SAME_IN2 8u
#define FLOAT_KEYS ((1u << EM_F32) | (1u << EM_F64))
#define ALL_KEYS (FLOAT_KEYS | (1u << EM_BOOL))

static int valid_dtype(int32_t dt)
{
    return dt == EM_F32 || dt == EM_F64 || dt == EM_BOOL;
}

static em_status check_view(cu_dev *d, const char *kname, const char *what, const em_kview *v)
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

static em_status unsupported(cu_dev *d, const char *kname, int32_t dt)
{
    return CU_ERR(d->inst, EM_ERR_UNSUPPORTED,
                  "%s: dtype %s is not supported by the cuda backend", kname, cu_dtype_name(dt));
}

static em_status mismatch(cu_dev *d, const char *kname, const char *what, int32_t got,
                          int32_t want)
{
    return CU_ERR(d->inst, EM_ERR_DTYPE, "%s: %s has dtype %s, expected %s", kname, what,
                  cu_dtype_name(got), cu_dtype_name(want));
}

/* The cpu backend's checks, in its order: views present, the key dtype supported, the
 * operands in `same` of the key dtype, every view sane, inputs of out's ndim and shape. */
static em_status ew_check(cu_dev *d, const char *kname, const em_kargs *ka, int nin,
                          int32_t key, unsigned keys, unsigned same)
{
    const em_kview *v[4] = {ka->out, ka->in[0], ka->in[1], ka->in[2]};
    for (int k = 0; k <= nin; k++)
        if (!v[k])
            return CU_ERR(d->inst, EM_ERR_INVALID, "%s: %s view is missing", kname,
                          view_names[k]);
    if (key < 0 || key >= EM_DTYPE_COUNT_ || !((keys >> key) & 1u))
        return unsupported(d, kname, key);
    for (int k = 0; k <= nin; k++)
        if (((same >> k) & 1u) && v[k]->dtype != key)
            return mismatch(d, kname, view_names[k], v[k]->dtype, key);
    em_status st;
    for (int k = 0; k <= nin; k++)
        if ((st = check_view(d, kname, view_names[k], v[k])) != EM_OK)
            return st;
    const em_kview *o = v[0];
    for (int k = 1; k <= nin; k++) {
        if (v[k]->ndim != o->ndim)
            return CU_ERR(d->inst, EM_ERR_INVALID, "%s: %s has %d dims but out has %d", kname,
                          view_names[k], (int)v[k]->ndim, (int)o->ndim);
        for (int dd = 0; dd < o->ndim; dd++)
            if (v[k]->shape[dd] != o->shape[dd])
                return CU_ERR(d->inst, EM_ERR_INVALID,
                              "%s: %s has size %lld in dim %d but out has %lld", kname,
                              view_names[k], (long long)v[k]->shape[dd], dd,
                              (long long)o->shape[dd]);
    }
    return EM_OK;
}

static em_status launched(cu_dev *d, const char *kname)
{
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? EM_OK : cu_fail(d, e, kname, "kernel launch");
}

template <class T>
static bool vec_aligned(const T *p)
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

/* ------------------------------------------------------------------ kernel entries */

#define UNARY_ENTRY(NAME)                                                                 \
    em_status cu_k_##NAME(void *dev, const em_kargs *ka)                                  \
    {                                                                                     \
        cu_dev *d = (cu_dev *)dev;                                                        \
        const int32_t key = ka->out ? ka->out->dtype : EM_F32;                            \
        em_status st = ew_check(d, #NAME, ka, 1, key, FLOAT_KEYS, SAME_OUT | SAME_IN0);   \
        if (st != EM_OK)                                                                  \
            return st;                                                                    \
        if (key == EM_F32)                                                                \
            return ew_run<1, float, float, u8, u8>(                                       \
                d, #NAME, ka, F_##NAME<float>{(float)ka->p[0], (float)ka->p[1]});         \
        return ew_run<1, double, double, u8, u8>(d, #NAME, ka,                            \
                                                 F_##NAME<double>{ka->p[0], ka->p[1]});   \
    }
EMCU_UNARY_OPS(UNARY_ENTRY)

#define BINARY_ENTRY(NAME)                                                                \
    em_status cu_k_##NAME(void *dev, const em_kargs *ka)                                  \
    {                                                                                     \
        cu_dev *d = (cu_dev *)dev;                                                        \
        const int32_t key = ka->out ? ka->out->dtype : EM_F32;                            \
        em_status st =                                                                    \
            ew_check(d, #NAME, ka, 2, key, FLOAT_KEYS, SAME_OUT | SAME_IN0 | SAME_IN1);   \
        if (st != EM_OK)                                                                  \
            return st;                                                                    \
        if (key == EM_F32)                                                                \
            return ew_run<2, float, float, float, u8>(                                    \
                d, #NAME, ka, F_##NAME<float>{(float)ka->p[0], (float)ka->p[1]});         \
        return ew_run<2, double, double, double, u8>(d, #NAME, ka,                        \
                                                     F_##NAME<double>{ka->p[0], ka->p[1]}); \
    }
EMCU_BINARY_OPS(BINARY_ENTRY)

#define COMPARE_ENTRY(NAME)                                                               \
    em_status cu_k_##NAME(void *dev, const em_kargs *ka)                                  \
    {                                                                                     \
        cu_dev *d = (cu_dev *)dev;                                                        \
        if (ka->out && ka->out->dtype != EM_BOOL)                                         \
            return mismatch(d, #NAME, "out", ka->out->dtype, EM_BOOL);                    \
        const int32_t key = ka->in[0] ? ka->in[0]->dtype : EM_F32;                        \
        em_status st = ew_check(d, #NAME, ka, 2, key, ALL_KEYS, SAME_IN0 | SAME_IN1);     \
        if (st != EM_OK)                                                                  \
            return st;                                                                    \
        if (key == EM_F32)                                                                \
            return ew_run<2, u8, float, float, u8>(d, #NAME, ka, F_##NAME<float>{});      \
        if (key == EM_F64)                                                                \
            return ew_run<2, u8, double, double, u8>(d, #NAME, ka, F_##NAME<double>{});   \
        return ew_run<2, u8, u8, u8, u8>(d, #NAME, ka, F_##NAME<u8>{});                   \
    }
EMCU_COMPARE_OPS(COMPARE_ENTRY)

em_status cu_k_pow_scalar(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    const int32_t key = ka->out ? ka->out->dtype : EM_F32;
    em_status st = ew_check(d, "pow_scalar", ka, 1, key, FLOAT_KEYS, SAME_OUT | SAME_IN0);
    if (st != EM_OK)
        return st;
    const int mode = emcu_pow_mode(ka->p[0]);
    if (key == EM_F32)
        return ew_run<1, float, float, u8, u8>(d, "pow_scalar", ka,
                                               F_pow<float>{(float)ka->p[0], mode});
    return ew_run<1, double, double, u8, u8>(d, "pow_scalar", ka, F_pow<double>{ka->p[0], mode});
}

em_status cu_k_pow_backward(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    const int32_t key = ka->out ? ka->out->dtype : EM_F32;
    em_status st = ew_check(d, "pow_backward", ka, 2, key, FLOAT_KEYS,
                            SAME_OUT | SAME_IN0 | SAME_IN1);
    if (st != EM_OK)
        return st;
    const int mode = emcu_pow_backward_mode(ka->p[0]);
    if (key == EM_F32)
        return ew_run<2, float, float, float, u8>(d, "pow_backward", ka,
                                                  F_pow_backward<float>{(float)ka->p[0], mode});
    return ew_run<2, double, double, double, u8>(d, "pow_backward", ka,
                                                 F_pow_backward<double>{ka->p[0], mode});
}

em_status cu_k_fill(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    const int32_t key = ka->out ? ka->out->dtype : EM_F32;
    em_status st = ew_check(d, "fill", ka, 0, key, ALL_KEYS, SAME_OUT);
    if (st != EM_OK)
        return st;
    if (key == EM_F32)
        return ew_run<0, float, u8, u8, u8>(d, "fill", ka, F_fill<float>{emcu_scalar_f32(ka->p[0])});
    if (key == EM_F64)
        return ew_run<0, double, u8, u8, u8>(d, "fill", ka,
                                             F_fill<double>{emcu_scalar_f64(ka->p[0])});
    return ew_run<0, u8, u8, u8, u8>(d, "fill", ka, F_fill<u8>{emcu_scalar_bool(ka->p[0])});
}

em_status cu_k_where(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    if (ka->in[0] && ka->in[0]->dtype != EM_BOOL)
        return mismatch(d, "where", "in[0] (condition)", ka->in[0]->dtype, EM_BOOL);
    const int32_t key = ka->out ? ka->out->dtype : EM_F32;
    em_status st = ew_check(d, "where", ka, 3, key, ALL_KEYS, SAME_OUT | SAME_IN1 | SAME_IN2);
    if (st != EM_OK)
        return st;
    if (key == EM_F32)
        return ew_run<3, float, u8, float, float>(d, "where", ka, F_where<float>{});
    if (key == EM_F64)
        return ew_run<3, double, u8, double, double>(d, "where", ka, F_where<double>{});
    return ew_run<3, u8, u8, u8, u8>(d, "where", ka, F_where<u8>{});
}

em_status cu_k_masked_fill(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    if (ka->in[1] && ka->in[1]->dtype != EM_BOOL)
        return mismatch(d, "masked_fill", "in[1] (mask)", ka->in[1]->dtype, EM_BOOL);
    const int32_t key = ka->out ? ka->out->dtype : EM_F32;
    em_status st = ew_check(d, "masked_fill", ka, 2, key, ALL_KEYS, SAME_OUT | SAME_IN0);
    if (st != EM_OK)
        return st;
    if (key == EM_F32)
        return ew_run<2, float, float, u8, u8>(d, "masked_fill", ka,
                                               F_masked_fill<float>{emcu_scalar_f32(ka->p[0])});
    if (key == EM_F64)
        return ew_run<2, double, double, u8, u8>(
            d, "masked_fill", ka, F_masked_fill<double>{emcu_scalar_f64(ka->p[0])});
    return ew_run<2, u8, u8, u8, u8>(d, "masked_fill", ka,
                                     F_masked_fill<u8>{emcu_scalar_bool(ka->p[0])});
}

template <class TO>
static em_status copy_from(cu_dev *d, const em_kargs *ka, int32_t ti)
{
    if (ti == EM_F32)
        return ew_run<1, TO, float, u8, u8>(d, "copy", ka, F_copy<TO, float>{});
    if (ti == EM_F64)
        return ew_run<1, TO, double, u8, u8>(d, "copy", ka, F_copy<TO, double>{});
    return ew_run<1, TO, u8, u8, u8>(d, "copy", ka, F_copy<TO, u8>{});
}

em_status cu_k_copy(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    if (!ka->out || !ka->in[0])
        return CU_ERR(d->inst, EM_ERR_INVALID, "copy: a view is missing");
    const int32_t to = ka->out->dtype, ti = ka->in[0]->dtype;
    if (!valid_dtype(to))
        return unsupported(d, "copy", to);
    if (!valid_dtype(ti))
        return unsupported(d, "copy", ti);
    em_status st = ew_check(d, "copy", ka, 1, ti, ALL_KEYS, SAME_IN0);
    if (st != EM_OK)
        return st;
    if (to == EM_F32)
        return copy_from<float>(d, ka, ti);
    if (to == EM_F64)
        return copy_from<double>(d, ka, ti);
    return copy_from<u8>(d, ka, ti);
}

template <bool NORMAL>
static em_status rng_run(cu_dev *d, const char *kname, const em_kargs *ka)
{
    const int32_t key = ka->out ? ka->out->dtype : EM_F32;
    em_status st = ew_check(d, kname, ka, 0, key, FLOAT_KEYS, SAME_OUT);
    if (st != EM_OK)
        return st;
    const em_kview *v[1] = {ka->out};
    emcu_geom g;
    const int64_t n = emcu_geom_init(&g, v, 1);
    if (n == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    /* uniform: lo and the span hi - lo (once, in double); normal: mean and std */
    const double p0 = ka->p[0], p1 = NORMAL ? ka->p[1] : ka->p[1] - ka->p[0];
    const int64_t blocks = emcu_grid_blocks(n, EW_THREADS, d->max_blocks);
    if (key == EM_F32)
        k_rng<float, NORMAL><<<(unsigned)blocks, EW_THREADS, 0, d->stream>>>(
            (float *)ka->out->buf + ka->out->offset, g, ka->u[0], ka->u[1], p0, p1);
    else
        k_rng<double, NORMAL><<<(unsigned)blocks, EW_THREADS, 0, d->stream>>>(
            (double *)ka->out->buf + ka->out->offset, g, ka->u[0], ka->u[1], p0, p1);
    return launched(d, kname);
}

em_status cu_k_rng_uniform(void *dev, const em_kargs *ka)
{
    return rng_run<false>((cu_dev *)dev, "rng_uniform", ka);
}

em_status cu_k_rng_normal(void *dev, const em_kargs *ka)
{
    return rng_run<true>((cu_dev *)dev, "rng_normal", ka);
}

/* ------------------------------------------------------------------ sum */

template <class T>
__device__ __forceinline__ double as_double(T x)
{
    if constexpr (sizeof(T) == 1)
        return (double)(x != 0);
    else
        return (double)x;
}

/* Sum v over the block's by reducers of each of its bx outputs by a fixed tree (by is a
 * power of two); every thread gets the total of its own output column tx. */
__device__ __forceinline__ double block_tree(double *sm, double v, int tid, int tx, int ty,
                                             int bx, int by)
{
    sm[tid] = v;
    __syncthreads();
    for (int s = by / 2; s > 0; s >>= 1) {
        if (ty < s)
            sm[tid] += sm[tid + s * bx];
        __syncthreads();
    }
    return sm[tx];
}

template <class TI, class TO>
__global__ void __launch_bounds__(EMCU_RED_THREADS)
    k_sum(const TI *in, TO *out, const emcu_red_plan p, double scale, double *partial,
          unsigned *counters)
{
    __shared__ double sm[EMCU_RED_THREADS];
    __shared__ int s_last;
    const int tid = (int)threadIdx.x;
    const int tx = tid % p.bx, ty = tid / p.bx;
    int64_t tile, ch;
    emcu_red_block(&p, (int64_t)blockIdx.x, &tile, &ch);
    const int64_t o = emcu_red_output(&p, tile, tx);
    int64_t ooff = 0;
    double acc = 0;
    if (o < p.M) {
        int64_t ioff, r, end, step;
        emcu_red_kept(&p, o, &ioff, &ooff);
        emcu_red_range(&p, ch, ty, &r, &end, &step);
        for (; r < end; r += step)
            acc += as_double(in[ioff + emcu_red_roff(&p, r)]);
    }
    acc = block_tree(sm, acc, tid, tx, ty, p.bx, p.by);
    if (p.nch == 1) {
        if (ty == 0 && o < p.M)
            out[ooff] = (TO)(acc * scale);
        return;
    }
    /* split: publish this chunk's partial; the tile's last block adds them in order */
    if (ty == 0 && o < p.M)
        partial[o * p.nch + ch] = acc;
    __threadfence();
    __syncthreads();
    if (tid == 0)
        s_last = atomicAdd(&counters[tile], 1u) == (unsigned)(p.nch - 1);
    __syncthreads();
    if (!s_last)
        return;
    __threadfence();
    double tot = 0;
    if (o < p.M)
        for (int64_t j = ty; j < p.nch; j += p.by)
            tot += __ldcg(&partial[o * p.nch + j]);
    tot = block_tree(sm, tot, tid, tx, ty, p.bx, p.by);
    if (ty == 0 && o < p.M)
        out[ooff] = (TO)(tot * scale);
    if (tid == 0)
        counters[tile] = 0;   /* ready for the next launch on this stream */
}

template <class TO>
static void sum_launch(cu_dev *d, int32_t idt, const void *in, TO *out, const emcu_red_plan &p,
                       double scale, double *partial, unsigned *counters)
{
    const dim3 grid((unsigned)p.nblocks);
    if (idt == EM_F32)
        k_sum<float, TO><<<grid, EMCU_RED_THREADS, 0, d->stream>>>((const float *)in, out, p, scale,
                                                                  partial, counters);
    else if (idt == EM_F64)
        k_sum<double, TO><<<grid, EMCU_RED_THREADS, 0, d->stream>>>((const double *)in, out, p,
                                                                   scale, partial, counters);
    else
        k_sum<u8, TO><<<grid, EMCU_RED_THREADS, 0, d->stream>>>((const u8 *)in, out, p, scale,
                                                               partial, counters);
}

em_status cu_k_sum(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    const em_kview *in = ka->in[0], *out = ka->out;
    em_status st;
    if ((st = check_view(d, "sum", "out", out)) != EM_OK ||
        (st = check_view(d, "sum", "in[0]", in)) != EM_OK)
        return st;
    if (out->dtype != EM_F32 && out->dtype != EM_F64)
        return unsupported(d, "sum", out->dtype);
    if (in->ndim != out->ndim)
        return CU_ERR(d->inst, EM_ERR_INVALID, "sum: in[0] has %d dims but out has %d",
                      (int)in->ndim, (int)out->ndim);
    emcu_red_plan p;
    int bad = 0;
    const int r = emcu_red_plan_build(in->ndim, in->shape, in->strides, out->shape, out->strides,
                                      &p, &bad);
    switch (r) {
    case EMCU_RED_OK: break;
    case EMCU_RED_EMPTY_OUT: return EM_OK;
    case EMCU_RED_EMPTY_IN: {
        /* an empty reduction is 0 for every output */
        em_kargs fk;
        memset(&fk, 0, sizeof fk);
        fk.struct_size = sizeof fk;
        fk.out = out;
        return cu_k_fill(dev, &fk);
    }
    case EMCU_RED_BAD_SHAPE:
        return CU_ERR(d->inst, EM_ERR_INVALID, "sum: out has size %lld in dim %d, expected 1 or %lld",
                      (long long)out->shape[bad], bad, (long long)in->shape[bad]);
    default:
        return CU_ERR(d->inst, EM_ERR_UNSUPPORTED,
                      "sum: %lld outputs of %lld elements need more thread blocks than a grid holds",
                      (long long)p.M, (long long)p.L);
    }
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    double *partial = nullptr;
    unsigned *counters = nullptr;
    if (p.nch > 1 && (st = cu_red_scratch(d, (size_t)emcu_red_counter_bytes(&p),
                                          (size_t)emcu_red_partial_bytes(&p), &counters,
                                          &partial)) != EM_OK)
        return st;
    const char *ibase = (const char *)in->buf + in->offset * (int64_t)cu_dtype_size(in->dtype);
    if (out->dtype == EM_F32)
        sum_launch<float>(d, in->dtype, ibase, (float *)out->buf + out->offset, p, ka->p[0],
                          partial, counters);
    else
        sum_launch<double>(d, in->dtype, ibase, (double *)out->buf + out->offset, p, ka->p[0],
                           partial, counters);
    return launched(d, "sum");
}

/* ------------------------------------------------------------------ probe */

cudaError_t cu_kernels_probe(void)
{
    cudaFuncAttributes fa;
    cudaError_t e = cudaFuncGetAttributes(
        &fa, k_flat<2, float, float, float, u8, F_add<float>>);
    if (e != cudaSuccess)
        cudaGetLastError();
    return e;
}
