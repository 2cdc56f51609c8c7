/* backends/cuda/cuda_math.cu — the elementwise kernels of ABI 1.2 on the cuda backend: the
 * unary float ops log1p, expm1, sin, cos, erf, floor, ceil, round and sign (sign also on
 * the integer dtypes), and the binary pow, floor_divide and remainder (the last two also
 * on the integer dtypes). Same templates, checks and views as the kernels of 1.0
 * (cuda_ew.cuh); the scalar semantics are cuda_math.h's, checked on the host against the
 * cpu backend. Transcendental functions are the CUDA math library's (within its
 * documented ulps of glibc's); floor, ceil, round, sign, floor_divide and remainder are
 * exact. */
#include "cuda_ew.cuh"

#include <type_traits>

/* ------------------------------------------------------------------ functors */

/* sign on the integer dtypes: -1, 0 or 1 (u8: 0 or 1); declared before the functor
 * templates that call it */
__device__ __forceinline__ int64_t mop_sign(int64_t x) { return emcu_sign_i64(x); }
__device__ __forceinline__ int32_t mop_sign(int32_t x) { return emcu_sign_i32(x); }
__device__ __forceinline__ u8 mop_sign(u8 x) { return emcu_sign_u8(x); }

#define DEF_MATH_UNARY(NAME)                                                              \
    __device__ __forceinline__ float mop_##NAME(float x) { return emcu_##NAME##_f32(x); } \
    __device__ __forceinline__ double mop_##NAME(double x) { return emcu_##NAME##_f64(x); } \
    template <class T>                                                                    \
    struct FM_##NAME {                                                                    \
        __device__ __forceinline__ T operator()(T x, u8, u8) const { return mop_##NAME(x); } \
    };
EMCU_MATH_UNARY_OPS(DEF_MATH_UNARY)

__device__ __forceinline__ float mop_pow(float a, float b) { return emcu_pow_tensor_f32(a, b); }
__device__ __forceinline__ double mop_pow(double a, double b) { return emcu_pow_tensor_f64(a, b); }

#define DEF_MATH_DIV(NAME)                                                                \
    __device__ __forceinline__ float mop_##NAME(float a, float b)                         \
    {                                                                                     \
        return emcu_##NAME##_f32(a, b);                                                   \
    }                                                                                     \
    __device__ __forceinline__ double mop_##NAME(double a, double b)                      \
    {                                                                                     \
        return emcu_##NAME##_f64(a, b);                                                   \
    }                                                                                     \
    __device__ __forceinline__ int64_t mop_##NAME(int64_t a, int64_t b)                   \
    {                                                                                     \
        return emcu_##NAME##_i64(a, b);                                                   \
    }                                                                                     \
    __device__ __forceinline__ int32_t mop_##NAME(int32_t a, int32_t b)                   \
    {                                                                                     \
        return emcu_##NAME##_i32(a, b);                                                   \
    }                                                                                     \
    __device__ __forceinline__ u8 mop_##NAME(u8 a, u8 b) { return emcu_##NAME##_u8(a, b); }
DEF_MATH_DIV(floor_divide)
DEF_MATH_DIV(remainder)

#define DEF_MATH_BINARY(NAME)                                                             \
    template <class T>                                                                    \
    struct FM_##NAME {                                                                    \
        __device__ __forceinline__ T operator()(T a, T b, u8) const { return mop_##NAME(a, b); } \
    };
DEF_MATH_BINARY(pow)
DEF_MATH_BINARY(floor_divide)
DEF_MATH_BINARY(remainder)

/* ------------------------------------------------------------------ entries */

/* The ops that also take the integer dtypes (cuda_backend.cu's masks say the same). */
template <template <class> class F>
struct takes_ints : std::false_type {
};
template <>
struct takes_ints<FM_sign> : std::true_type {
};
template <>
struct takes_ints<FM_floor_divide> : std::true_type {
};
template <>
struct takes_ints<FM_remainder> : std::true_type {
};

template <template <class> class F>
static em_status unary(cu_dev *d, const char *kname, const em_kargs *ka)
{
    const unsigned keys = FLOAT_KEYS | (takes_ints<F>::value ? INT_KEYS : 0u);
    const int32_t key = ka->out ? ka->out->dtype : EM_F32;
    em_status st = ew_check(d, kname, ka, 1, key, keys, SAME_OUT | SAME_IN0);
    if (st != EM_OK)
        return st;
    if ((FLOAT_KEYS >> key) & 1u)
        return on_float(key, [&](auto z) {
            using T = decltype(z);
            return ew_run<1, T, T, u8, u8>(d, kname, ka, F<T>{});
        });
    if constexpr (takes_ints<F>::value)
        return on_int(key, [&](auto z) {
            using T = decltype(z);
            return ew_run<1, T, T, u8, u8>(d, kname, ka, F<T>{});
        });
    return unsupported(d, kname, key);
}

template <template <class> class F>
static em_status binary(cu_dev *d, const char *kname, const em_kargs *ka)
{
    const unsigned keys = FLOAT_KEYS | (takes_ints<F>::value ? INT_KEYS : 0u);
    const int32_t key = ka->out ? ka->out->dtype : EM_F32;
    em_status st = ew_check(d, kname, ka, 2, key, keys, SAME_OUT | SAME_IN0 | SAME_IN1);
    if (st != EM_OK)
        return st;
    if ((FLOAT_KEYS >> key) & 1u)
        return on_float(key, [&](auto z) {
            using T = decltype(z);
            return ew_run<2, T, T, T, u8>(d, kname, ka, F<T>{});
        });
    if constexpr (takes_ints<F>::value)
        return on_int(key, [&](auto z) {
            using T = decltype(z);
            return ew_run<2, T, T, T, u8>(d, kname, ka, F<T>{});
        });
    return unsupported(d, kname, key);
}

#define MATH_UNARY_ENTRY(NAME)                                                            \
    em_status cu_k_##NAME(void *dev, const em_kargs *ka)                                  \
    {                                                                                     \
        return unary<FM_##NAME>((cu_dev *)dev, #NAME, ka);                                \
    }
EMCU_MATH_UNARY_OPS(MATH_UNARY_ENTRY)

em_status cu_k_pow(void *dev, const em_kargs *ka)
{
    return binary<FM_pow>((cu_dev *)dev, "pow", ka);
}

em_status cu_k_floor_divide(void *dev, const em_kargs *ka)
{
    return binary<FM_floor_divide>((cu_dev *)dev, "floor_divide", ka);
}

em_status cu_k_remainder(void *dev, const em_kargs *ka)
{
    return binary<FM_remainder>((cu_dev *)dev, "remainder", ka);
}
