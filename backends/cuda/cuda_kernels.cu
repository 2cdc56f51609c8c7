/* backends/cuda/cuda_kernels.cu — the elementwise kernels of ABI 1.0 on the cuda backend
 * (fill, rng, copy, the unary, scalar, binary and comparison ops, where, masked_fill and
 * the backward helpers), with the integer dtypes of 1.2 where the core uses them: one
 * kernel launch per ember op, on the context's stream, never a host sync. The templates
 * and checks are in cuda_ew.cuh; the scalar semantics in cuda_index.h (float, bool) and
 * cuda_math.h (integers, conversions), shared with the host unit test that checks them
 * against the cpu backend. Reductions are in cuda_reduce.cu, the kernels of 1.2 in
 * cuda_math.cu, cuda_dim.cu and cuda_gather.cu.
 *
 * Compiled with --fmad=false: a*b+c is never contracted, so arithmetic rounds as on the
 * host (and the rng's affine map matches the cpu backend bit for bit). */
#include "cuda_ew.cuh"

#include <stddef.h>
#include <type_traits>

/* ------------------------------------------------------------------ rng kernel */

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
    __device__ __forceinline__ u8 op_##NAME(int64_t a, int64_t b)                         \
    {                                                                                     \
        return emcu_##NAME##_i64(a, b);                                                   \
    }                                                                                     \
    __device__ __forceinline__ u8 op_##NAME(int32_t a, int32_t b)                         \
    {                                                                                     \
        return emcu_##NAME##_i32(a, b);                                                   \
    }                                                                                     \
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

/* Integer dtypes: the scalars are the exact int64 ip[0], ip[1]. */
#define DEF_INT_UNARY(NAME)                                                               \
    __device__ __forceinline__ int64_t iop_##NAME(int64_t x, int64_t p0, int64_t p1)      \
    {                                                                                     \
        return emcu_##NAME##_i64(x, p0, p1);                                              \
    }                                                                                     \
    __device__ __forceinline__ int32_t iop_##NAME(int32_t x, int64_t p0, int64_t p1)      \
    {                                                                                     \
        return emcu_##NAME##_i32(x, p0, p1);                                              \
    }                                                                                     \
    __device__ __forceinline__ u8 iop_##NAME(u8 x, int64_t p0, int64_t p1)                \
    {                                                                                     \
        return emcu_##NAME##_u8(x, p0, p1);                                               \
    }                                                                                     \
    template <class T>                                                                    \
    struct FI_##NAME {                                                                    \
        int64_t p0, p1;                                                                   \
        __device__ __forceinline__ T operator()(T x, u8, u8) const                        \
        {                                                                                 \
            return iop_##NAME(x, p0, p1);                                                 \
        }                                                                                 \
    };
EMCU_INT_UNARY_OPS(DEF_INT_UNARY)

#define DEF_INT_BINARY(NAME)                                                              \
    __device__ __forceinline__ int64_t iop_##NAME(int64_t a, int64_t b)                   \
    {                                                                                     \
        return emcu_##NAME##_i64(a, b);                                                   \
    }                                                                                     \
    __device__ __forceinline__ int32_t iop_##NAME(int32_t a, int32_t b)                   \
    {                                                                                     \
        return emcu_##NAME##_i32(a, b);                                                   \
    }                                                                                     \
    __device__ __forceinline__ u8 iop_##NAME(u8 a, u8 b) { return emcu_##NAME##_u8(a, b); } \
    template <class T>                                                                    \
    struct FI_##NAME {                                                                    \
        __device__ __forceinline__ T operator()(T a, T b, u8) const { return iop_##NAME(a, b); } \
    };
EMCU_INT_BINARY_OPS(DEF_INT_BINARY)

/* The storage type of each dtype, by code. */
template <int DT>
struct dtype_of;
template <>
struct dtype_of<EM_F32> {
    typedef float T;
};
template <>
struct dtype_of<EM_F64> {
    typedef double T;
};
template <>
struct dtype_of<EM_BOOL> {
    typedef u8 T;
};
template <>
struct dtype_of<EM_I64> {
    typedef int64_t T;
};
template <>
struct dtype_of<EM_I32> {
    typedef int32_t T;
};
template <>
struct dtype_of<EM_U8> {
    typedef u8 T;
};

/* copy with conversion: to bool is != 0; float to an integer dtype truncates toward zero,
 * saturating, NaN -> 0; between integer dtypes it wraps; the rest C conversions (bool is
 * stored as 0 / 1). */
template <int DTO, int DTI>
struct F_copy {
    typedef typename dtype_of<DTO>::T TO;
    typedef typename dtype_of<DTI>::T TI;
    __device__ __forceinline__ TO operator()(TI x, u8, u8) const
    {
        constexpr bool from_float = DTI == EM_F32 || DTI == EM_F64;
        if constexpr (DTO == EM_BOOL && DTI != EM_BOOL)
            return (TO)(x != 0);
        else if constexpr (from_float && DTO == EM_I64)
            return emcu_f2i_i64((double)x);
        else if constexpr (from_float && DTO == EM_I32)
            return emcu_f2i_i32((double)x);
        else if constexpr (from_float && DTO == EM_U8)
            return emcu_f2i_u8((double)x);
        else if constexpr (DTO == EM_I32 && DTI == EM_I64)
            return (TO)(uint32_t)(uint64_t)x;
        else if constexpr (DTO == EM_U8 && (DTI == EM_I64 || DTI == EM_I32))
            return (TO)(uint64_t)x;
        else
            return (TO)x;
    }
};

/* ------------------------------------------------------------------ kernel entries */

/* Integer parameter i of an integer-dtype call: ip[i], exact; the double p[i] (saturated,
 * so an absent clamp bound of -inf / +inf is INT64_MIN / INT64_MAX) only if a caller
 * passed no ip[]. */
static int64_t int_param(const em_kargs *ka, uint32_t i)
{
    if (ka->struct_size >= offsetof(em_kargs, ip) + sizeof ka->ip && ka->ip && ka->n_ip > i)
        return ka->ip[i];
    return emcu_f2i_i64(ka->p[i]);
}

/* The value of fill / masked_fill for dtype dt (storage type T): p[0] rounded to the
 * float dtype, != 0 for bool, the exact ip[0] wrapped to the width for integers. */
template <class T>
static T scalar_value(int32_t dt, const em_kargs *ka)
{
    if constexpr (std::is_same<T, float>::value)
        return emcu_scalar_f32(ka->p[0]);
    else if constexpr (std::is_same<T, double>::value)
        return emcu_scalar_f64(ka->p[0]);
    else if constexpr (sizeof(T) == 8)
        return emcu_scalar_i64(int_param(ka, 0));
    else if constexpr (sizeof(T) == 4)
        return emcu_scalar_i32(int_param(ka, 0));
    else
        return dt == EM_BOOL ? emcu_scalar_bool(ka->p[0]) : emcu_scalar_u8(int_param(ka, 0));
}

template <template <class> class F>
static em_status unary_float(cu_dev *d, const char *kname, const em_kargs *ka, int32_t key)
{
    return on_float(key, [&](auto z) {
        using T = decltype(z);
        return ew_run<1, T, T, u8, u8>(d, kname, ka, F<T>{(T)ka->p[0], (T)ka->p[1]});
    });
}

template <template <class> class F>
static em_status binary_float(cu_dev *d, const char *kname, const em_kargs *ka, int32_t key)
{
    return on_float(key, [&](auto z) {
        using T = decltype(z);
        return ew_run<2, T, T, T, u8>(d, kname, ka, F<T>{(T)ka->p[0], (T)ka->p[1]});
    });
}

/* float dtypes only */
#define EMCU_UNARY_FLOAT_ONLY(X)                                                          \
    X(exp) X(log) X(sqrt) X(relu) X(tanh) X(sigmoid) X(div_scalar) X(rdiv_scalar)
#define EMCU_BINARY_FLOAT_ONLY(X)                                                         \
    X(div) X(relu_backward) X(clamp_backward) X(tanh_backward) X(sigmoid_backward)

#define UNARY_ENTRY(NAME)                                                                 \
    em_status cu_k_##NAME(void *dev, const em_kargs *ka)                                  \
    {                                                                                     \
        cu_dev *d = (cu_dev *)dev;                                                        \
        const int32_t key = ka->out ? ka->out->dtype : EM_F32;                            \
        em_status st = ew_check(d, #NAME, ka, 1, key, FLOAT_KEYS, SAME_OUT | SAME_IN0);   \
        if (st != EM_OK)                                                                  \
            return st;                                                                    \
        return unary_float<F_##NAME>(d, #NAME, ka, key);                                  \
    }
EMCU_UNARY_FLOAT_ONLY(UNARY_ENTRY)

#define UNARY_INT_ENTRY(NAME)                                                             \
    em_status cu_k_##NAME(void *dev, const em_kargs *ka)                                  \
    {                                                                                     \
        cu_dev *d = (cu_dev *)dev;                                                        \
        const int32_t key = ka->out ? ka->out->dtype : EM_F32;                            \
        em_status st =                                                                    \
            ew_check(d, #NAME, ka, 1, key, FLOAT_KEYS | INT_KEYS, SAME_OUT | SAME_IN0);   \
        if (st != EM_OK)                                                                  \
            return st;                                                                    \
        if ((FLOAT_KEYS >> key) & 1u)                                                     \
            return unary_float<F_##NAME>(d, #NAME, ka, key);                              \
        const int64_t p0 = int_param(ka, 0), p1 = int_param(ka, 1);                       \
        return on_int(key, [&](auto z) {                                                  \
            using T = decltype(z);                                                        \
            return ew_run<1, T, T, u8, u8>(d, #NAME, ka, FI_##NAME<T>{p0, p1});           \
        });                                                                               \
    }
EMCU_INT_UNARY_OPS(UNARY_INT_ENTRY)

#define BINARY_ENTRY(NAME)                                                                \
    em_status cu_k_##NAME(void *dev, const em_kargs *ka)                                  \
    {                                                                                     \
        cu_dev *d = (cu_dev *)dev;                                                        \
        const int32_t key = ka->out ? ka->out->dtype : EM_F32;                            \
        em_status st =                                                                    \
            ew_check(d, #NAME, ka, 2, key, FLOAT_KEYS, SAME_OUT | SAME_IN0 | SAME_IN1);   \
        if (st != EM_OK)                                                                  \
            return st;                                                                    \
        return binary_float<F_##NAME>(d, #NAME, ka, key);                                 \
    }
EMCU_BINARY_FLOAT_ONLY(BINARY_ENTRY)

#define BINARY_INT_ENTRY(NAME)                                                            \
    em_status cu_k_##NAME(void *dev, const em_kargs *ka)                                  \
    {                                                                                     \
        cu_dev *d = (cu_dev *)dev;                                                        \
        const int32_t key = ka->out ? ka->out->dtype : EM_F32;                            \
        em_status st = ew_check(d, #NAME, ka, 2, key, FLOAT_KEYS | INT_KEYS,              \
                                SAME_OUT | SAME_IN0 | SAME_IN1);                          \
        if (st != EM_OK)                                                                  \
            return st;                                                                    \
        if ((FLOAT_KEYS >> key) & 1u)                                                     \
            return binary_float<F_##NAME>(d, #NAME, ka, key);                             \
        return on_int(key, [&](auto z) {                                                  \
            using T = decltype(z);                                                        \
            return ew_run<2, T, T, T, u8>(d, #NAME, ka, FI_##NAME<T>{});                  \
        });                                                                               \
    }
EMCU_INT_BINARY_OPS(BINARY_INT_ENTRY)

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
        return on_any(key, [&](auto z) {                                                  \
            using T = decltype(z);                                                        \
            return ew_run<2, u8, T, T, u8>(d, #NAME, ka, F_##NAME<T>{});                  \
        });                                                                               \
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
    return on_any(key, [&](auto z) {
        using T = decltype(z);
        return ew_run<0, T, u8, u8, u8>(d, "fill", ka, F_fill<T>{scalar_value<T>(key, ka)});
    });
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
    return on_any(key, [&](auto z) {
        using T = decltype(z);
        return ew_run<3, T, u8, T, T>(d, "where", ka, F_where<T>{});
    });
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
    return on_any(key, [&](auto z) {
        using T = decltype(z);
        return ew_run<2, T, T, u8, u8>(d, "masked_fill", ka,
                                       F_masked_fill<T>{scalar_value<T>(key, ka)});
    });
}

template <int DTO>
static em_status copy_from(cu_dev *d, const em_kargs *ka, int32_t ti)
{
    typedef typename dtype_of<DTO>::T TO;
    switch (ti) {
    case EM_F32: return ew_run<1, TO, float, u8, u8>(d, "copy", ka, F_copy<DTO, EM_F32>{});
    case EM_F64: return ew_run<1, TO, double, u8, u8>(d, "copy", ka, F_copy<DTO, EM_F64>{});
    case EM_BOOL: return ew_run<1, TO, u8, u8, u8>(d, "copy", ka, F_copy<DTO, EM_BOOL>{});
    case EM_I64: return ew_run<1, TO, int64_t, u8, u8>(d, "copy", ka, F_copy<DTO, EM_I64>{});
    case EM_I32: return ew_run<1, TO, int32_t, u8, u8>(d, "copy", ka, F_copy<DTO, EM_I32>{});
    default: return ew_run<1, TO, u8, u8, u8>(d, "copy", ka, F_copy<DTO, EM_U8>{});
    }
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
    switch (to) {
    case EM_F32: return copy_from<EM_F32>(d, ka, ti);
    case EM_F64: return copy_from<EM_F64>(d, ka, ti);
    case EM_BOOL: return copy_from<EM_BOOL>(d, ka, ti);
    case EM_I64: return copy_from<EM_I64>(d, ka, ti);
    case EM_I32: return copy_from<EM_I32>(d, ka, ti);
    default: return copy_from<EM_U8>(d, ka, ti);
    }
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
