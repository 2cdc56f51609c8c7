/* backends/opencl/kernels_math.cl — the float elementwise kernels of ABI 1.2 on the
 * templates of kernels.cl: log1p, expm1, sin, cos, erf, floor, ceil, round (halves to
 * even), sign, and the binary pow, floor_divide and remainder with Python's (and
 * PyTorch's) rounding toward -inf.
 *
 * OpenCL allows float log1p, expm1, sin, cos, erf and pow errors of 2 to 16 ulp; glibc's
 * (the cpu backend's) are within about 1. So where the device has doubles, f32 computes
 * them in double and rounds once. */

/* ------------------------------------------------------------------ helpers */

#ifdef EM_FP64
#define EM_F32_VIA_DOUBLE(f, x) ((float)f((double)(x)))
#else
#define EM_F32_VIA_DOUBLE(f, x) f(x)
#endif

inline float em_powf_f32(float a, float b)
{
#ifdef EM_FP64
    return (float)pow((double)a, (double)b);
#else
    return pow(a, b);
#endif
}

/* sign: -1, 0 or 1; -0 gives +0 and NaN stays NaN */
#define EM_SIGN(T, x) ((x) > (T)0 ? (T)1 : (x) < (T)0 ? (T)-1 : (x) == (T)0 ? (T)0 : (x))

/* PyTorch's remainder: fmod, moved into the divisor's sign */
#define FLOAT_DIV_HELPERS(T, S)                                                           \
    inline T em_remainder_##S(T a, T b)                                                   \
    {                                                                                     \
        T m = fmod(a, b);                                                                 \
        if (m != (T)0 && ((b < (T)0) != (m < (T)0)))                                      \
            m += b;                                                                       \
        return m;                                                                         \
    }                                                                                     \
    /* PyTorch's div_floor: (a - fmod(a, b)) / b, corrected toward -inf, floored and      \
     * rounded back up when the division left it more than a half below; a zero quotient  \
     * keeps the sign of a / b; b == 0 gives a / b (inf or NaN) */                         \
    inline T em_floordiv_##S(T a, T b)                                                    \
    {                                                                                     \
        if (b == (T)0)                                                                    \
            return a / b;                                                                 \
        const T m = fmod(a, b);                                                           \
        T q = (a - m) / b;                                                                \
        if (m != (T)0 && ((b < (T)0) != (m < (T)0)))                                      \
            q -= (T)1;                                                                    \
        if (q == (T)0)                                                                    \
            return copysign((T)0, a / b);                                                 \
        T f = floor(q);                                                                   \
        if (q - f > (T)0.5)                                                               \
            f += (T)1;                                                                    \
        return f;                                                                         \
    }

FLOAT_DIV_HELPERS(float, f32)

/* ------------------------------------------------------------------ op lists */

#define MATH_UNARY_OPS(T, S, VIA)                                                         \
    EW_UNARY(log1p, T, S, VIA(log1p, x))                                                  \
    EW_UNARY(expm1, T, S, VIA(expm1, x))                                                  \
    EW_UNARY(sin, T, S, VIA(sin, x))                                                      \
    EW_UNARY(cos, T, S, VIA(cos, x))                                                      \
    EW_UNARY(erf, T, S, VIA(erf, x))                                                      \
    EW_UNARY(floor, T, S, floor(x))                                                       \
    EW_UNARY(ceil, T, S, ceil(x))                                                         \
    EW_UNARY(round, T, S, rint(x))                                                        \
    EW_UNARY(sign, T, S, EM_SIGN(T, x))

#define MATH_BINARY_OPS(T, S, POW)                                                        \
    EW_BINARY(pow, T, T, S, POW(a, b))                                                    \
    EW_BINARY(floor_divide, T, T, S, em_floordiv_##S(a, b))                               \
    EW_BINARY(remainder, T, T, S, em_remainder_##S(a, b))

#define EM_DIRECT(f, x) f(x)

/* ------------------------------------------------------------------ instances */

MATH_UNARY_OPS(float, f32, EM_F32_VIA_DOUBLE)
MATH_BINARY_OPS(float, f32, em_powf_f32)

#ifdef EM_FP64
FLOAT_DIV_HELPERS(double, f64)
MATH_UNARY_OPS(double, f64, EM_DIRECT)
MATH_BINARY_OPS(double, f64, pow)
#endif
