/* backends/opencl/kernels_int.cl — the integer dtypes of ABI 1.2 (i64 = long, i32 = int,
 * u8 = uchar) on the elementwise templates of kernels.cl: fill, copies between every pair of
 * dtypes, neg, abs, the scalar ops, clamp, add, sub, mul, maximum, minimum, sign,
 * floor_divide, remainder, comparisons, where and masked_fill.
 *
 * Integer arithmetic wraps (two's complement, u8 modulo 256) as PyTorch's does: it is done
 * in the unsigned type of the same width, where overflow is defined. Scalars arrive as the
 * dtype itself (the host wraps the exact 64-bit value), except clamp's bounds, which stay
 * 64-bit so that a bound outside a narrower dtype's range does not wrap. Division by zero
 * and MIN / -1 never trap (the core never divides by zero; MIN // -1 wraps to MIN). */

/* ------------------------------------------------------------------ helpers */

inline long em_clamp_l(long v, long lo, long hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* Python's // and % on signed integers: the quotient rounded toward -inf, the remainder
 * with the divisor's sign */
#define INT_DIV_SIGNED(T, UT, S)                                                          \
    inline T em_floordiv_##S(T a, T b)                                                    \
    {                                                                                     \
        if (b == (T)0)                                                                    \
            return (T)0;                                                                  \
        if (b == (T)-1)                                                                   \
            return (T)((UT)0 - (UT)a);                                                    \
        T q = a / b;                                                                      \
        if (a % b != (T)0 && ((a < (T)0) != (b < (T)0)))                                  \
            q -= (T)1;                                                                    \
        return q;                                                                         \
    }                                                                                     \
    inline T em_remainder_##S(T a, T b)                                                   \
    {                                                                                     \
        if (b == (T)0 || b == (T)-1)                                                      \
            return (T)0;                                                                  \
        T r = a % b;                                                                      \
        if (r != (T)0 && ((r < (T)0) != (b < (T)0)))                                      \
            r += b;                                                                       \
        return r;                                                                         \
    }

INT_DIV_SIGNED(long, ulong, i64)
INT_DIV_SIGNED(int, uint, i32)

inline uchar em_floordiv_u8(uchar a, uchar b)
{
    return b ? (uchar)(a / b) : (uchar)0;
}

inline uchar em_remainder_u8(uchar a, uchar b)
{
    return b ? (uchar)(a % b) : (uchar)0;
}

/* ------------------------------------------------------------------ op lists */

#define INT_UNARY_OPS(T, UT, S)                                                           \
    EW_UNARY(neg, T, S, (T)((UT)0 - (UT)x))                                               \
    EW_UNARY(abs, T, S, x < (T)0 ? (T)((UT)0 - (UT)x) : x)                                \
    EW_UNARY(add_scalar, T, S, (T)((UT)x + (UT)p0))                                       \
    EW_UNARY(mul_scalar, T, S, (T)((UT)x * (UT)p0))                                       \
    EW_UNARY(rsub_scalar, T, S, (T)((UT)p0 - (UT)x))                                      \
    EW_UNARY(sign, T, S, (T)((x > (T)0) - (x < (T)0)))                                    \
    EW_UNARY_P(clamp, T, long, S, (T)em_clamp_l((long)x, p0, p1))

#define INT_BINARY_OPS(T, UT, S)                                                          \
    EW_BINARY(add, T, T, S, (T)((UT)a + (UT)b))                                           \
    EW_BINARY(sub, T, T, S, (T)((UT)a - (UT)b))                                           \
    EW_BINARY(mul, T, T, S, (T)((UT)a * (UT)b))                                           \
    EW_BINARY(maximum, T, T, S, a > b ? a : b)                                            \
    EW_BINARY(minimum, T, T, S, a < b ? a : b)                                            \
    EW_BINARY(floor_divide, T, T, S, em_floordiv_##S(a, b))                               \
    EW_BINARY(remainder, T, T, S, em_remainder_##S(a, b))

#define INT_OTHER_OPS(T, S)                                                               \
    COMPARE_OPS(T, S)                                                                     \
    EW_WHERE(T, S)                                                                        \
    EW_MASKED_FILL(T, S)                                                                  \
    EW_FILL(T, S)

/* ------------------------------------------------------------------ instances */

INT_UNARY_OPS(long, ulong, i64)
INT_UNARY_OPS(int, uint, i32)
INT_UNARY_OPS(uchar, uchar, u8)
INT_BINARY_OPS(long, ulong, i64)
INT_BINARY_OPS(int, uint, i32)
INT_BINARY_OPS(uchar, uchar, u8)
INT_OTHER_OPS(long, i64)
INT_OTHER_OPS(int, i32)
INT_OTHER_OPS(uchar, u8)

/* Copies. To an integer from a float: truncated toward zero, saturated, NaN 0 (OpenCL's
 * _sat_rtz conversions); between integers: the low bits (as_int: a reinterpretation,
 * defined for every value); to bool: != 0; from bool: 0 or 1. */
EW_COPY(long, long, i64, i64, x)
EW_COPY(long, int, i64, i32, (long)x)
EW_COPY(long, uchar, i64, u8, (long)x)
EW_COPY(long, uchar, i64, bool, (long)x)
EW_COPY(long, float, i64, f32, convert_long_sat_rtz(x))
EW_COPY(int, long, i32, i64, as_int((uint)x))
EW_COPY(int, int, i32, i32, x)
EW_COPY(int, uchar, i32, u8, (int)x)
EW_COPY(int, uchar, i32, bool, (int)x)
EW_COPY(int, float, i32, f32, convert_int_sat_rtz(x))
EW_COPY(uchar, long, u8, i64, (uchar)x)
EW_COPY(uchar, int, u8, i32, (uchar)x)
EW_COPY(uchar, uchar, u8, u8, x)
EW_COPY(uchar, uchar, u8, bool, x)
EW_COPY(uchar, float, u8, f32, convert_uchar_sat_rtz(x))
EW_COPY(float, long, f32, i64, (float)x)
EW_COPY(float, int, f32, i32, (float)x)
EW_COPY(float, uchar, f32, u8, (float)x)
EW_COPY(uchar, long, bool, i64, CONV_BOOL)
EW_COPY(uchar, int, bool, i32, CONV_BOOL)
EW_COPY(uchar, uchar, bool, u8, CONV_BOOL)

#ifdef EM_FP64
EW_COPY(long, double, i64, f64, convert_long_sat_rtz(x))
EW_COPY(int, double, i32, f64, convert_int_sat_rtz(x))
EW_COPY(uchar, double, u8, f64, convert_uchar_sat_rtz(x))
EW_COPY(double, long, f64, i64, (double)x)
EW_COPY(double, int, f64, i32, (double)x)
EW_COPY(double, uchar, f64, u8, (double)x)
#endif
