/* backends/cpu/cpu_math.c — the cpu backend's elementwise math kernels of ABI 1.2: log1p,
 * expm1, sin, cos, erf, floor, ceil, round (halves to even), sign, pow, floor_divide and
 * remainder, on the strided walker of cpu_ew.c.
 *
 * floor_divide and remainder follow PyTorch 1.13 on floats (div_floor and remainder of
 * its cpu kernels: fmod first, then corrected) and Python on integers (the quotient
 * rounded toward -inf, the remainder with the divisor's sign). INT64_MIN // -1 wraps to
 * INT64_MIN (and its remainder is 0) rather than trapping, as two's complement
 * arithmetic elsewhere. */
#include "cpu_ew.h"

#include <math.h>

/* the libm function of x's type: TM(log1p, x) is log1pf(x) for a float */
#define TM(fn, x) _Generic((x), float: fn##f, default: fn)(x)
#define TM2(fn, x, y) _Generic((x), float: fn##f, default: fn)((x), (y))

#define FLOAT_UNARY(OP, EXPR)                                                             \
    CPU_ROW_UNARY(OP##_f32, float, float, typedef float T; (void)sizeof(T);, EXPR)         \
    CPU_ROW_UNARY(OP##_f64, double, double, typedef double T; (void)sizeof(T);, EXPR)

#define FLOAT_BINARY(OP, EXPR)                                                            \
    CPU_ROW_BINARY(OP##_f32, float, float, , EXPR)                                         \
    CPU_ROW_BINARY(OP##_f64, double, double, , EXPR)

#define FLOAT_TABLE(OP)                                                                   \
    static const row_fn OP##_rows[EM_DTYPE_COUNT_] = {[EM_F32] = OP##_f32,                 \
                                                      [EM_F64] = OP##_f64}

#define ALL_TABLE(OP)                                                                     \
    static const row_fn OP##_rows[EM_DTYPE_COUNT_] = {                                     \
        [EM_F32] = OP##_f32, [EM_F64] = OP##_f64, [EM_I64] = OP##_i64,                     \
        [EM_I32] = OP##_i32, [EM_U8] = OP##_u8}

/* ------------------------------------------------------------------ unary */

FLOAT_UNARY(log1p, TM(log1p, x))
FLOAT_UNARY(expm1, TM(expm1, x))
FLOAT_UNARY(sin, TM(sin, x))
FLOAT_UNARY(cos, TM(cos, x))
FLOAT_UNARY(erf, TM(erf, x))
FLOAT_UNARY(floor, TM(floor, x))
FLOAT_UNARY(ceil, TM(ceil, x))
/* nearbyint in the default rounding mode: halves to even, as torch.round */
FLOAT_UNARY(round, TM(nearbyint, x))
/* -1, 0 or 1; sign(-0) is +0 and NaN stays NaN */
FLOAT_UNARY(sign, x > 0 ? (T)1 : x < 0 ? (T)-1 : x == 0 ? (T)0 : x)
CPU_ROW_UNARY(sign_i64, int64_t, int64_t, , (int64_t)((x > 0) - (x < 0)))
CPU_ROW_UNARY(sign_i32, int32_t, int32_t, , (int32_t)((x > 0) - (x < 0)))
CPU_ROW_UNARY(sign_u8, uint8_t, uint8_t, , (uint8_t)(x > 0))

FLOAT_TABLE(log1p);
FLOAT_TABLE(expm1);
FLOAT_TABLE(sin);
FLOAT_TABLE(cos);
FLOAT_TABLE(erf);
FLOAT_TABLE(floor);
FLOAT_TABLE(ceil);
FLOAT_TABLE(round);
ALL_TABLE(sign);

/* ------------------------------------------------------------------ binary */

/* PyTorch 1.13's div_floor on floats: a true division by zero gives the IEEE result;
 * otherwise the quotient of a - fmod(a, b), corrected by one where fmod's sign differs
 * from b's, and rounded to the nearest integer from there (a zero keeps the sign of a/b). */
#define DEF_FDIV(NAME, T)                                                                 \
    static inline T NAME(T a, T b)                                                         \
    {                                                                                      \
        if (b == 0)                                                                        \
            return a / b;                                                                  \
        T mod = TM2(fmod, a, b);                                                           \
        T div = (a - mod) / b;                                                             \
        if (mod != 0 && (b < 0) != (mod < 0))                                              \
            div -= (T)1;                                                                   \
        T fl;                                                                              \
        if (div != 0) {                                                                    \
            fl = TM(floor, div);                                                           \
            if (div - fl > (T)0.5)                                                         \
                fl += (T)1;                                                                \
        } else {                                                                           \
            fl = TM2(copysign, (T)0, a / b);                                               \
        }                                                                                  \
        return fl;                                                                         \
    }

DEF_FDIV(fdiv_f32, float)
DEF_FDIV(fdiv_f64, double)

/* remainder: fmod, plus b where fmod is nonzero with a sign other than b's */
#define DEF_FREM(NAME, T)                                                                 \
    static inline T NAME(T a, T b)                                                         \
    {                                                                                      \
        T mod = TM2(fmod, a, b);                                                           \
        if (mod != 0 && (b < 0) != (mod < 0))                                              \
            mod += b;                                                                      \
        return mod;                                                                        \
    }

DEF_FREM(frem_f32, float)
DEF_FREM(frem_f64, double)

/* Integers, Python semantics. b == -1 is done as a negation (INT64_MIN // -1 wraps; the
 * remainder is 0). A zero divisor, which the core never passes, gives 0 rather than a
 * trap. The narrower dtypes compute in int64 (no overflow there) and wrap on store. */
static inline int64_t idiv_floor(int64_t a, int64_t b)
{
    if (b == 0)
        return 0;
    if (b == -1)
        return (int64_t)(0 - (uint64_t)a);
    int64_t q = a / b, r = a % b;
    if (r != 0 && (r < 0) != (b < 0))
        q -= 1;
    return q;
}

static inline int64_t irem(int64_t a, int64_t b)
{
    if (b == 0 || b == -1)
        return 0;
    int64_t r = a % b;
    if (r != 0 && (r < 0) != (b < 0))
        r += b;
    return r;
}

FLOAT_BINARY(pow, TM2(pow, a, b))
FLOAT_TABLE(pow);

CPU_ROW_BINARY(floor_divide_f32, float, float, , fdiv_f32(a, b))
CPU_ROW_BINARY(floor_divide_f64, double, double, , fdiv_f64(a, b))
CPU_ROW_BINARY(floor_divide_i64, int64_t, int64_t, , idiv_floor(a, b))
CPU_ROW_BINARY(floor_divide_i32, int32_t, int32_t, , (int32_t)(uint32_t)(uint64_t)idiv_floor(a, b))
CPU_ROW_BINARY(floor_divide_u8, uint8_t, uint8_t, , (uint8_t)(b ? a / b : 0))
ALL_TABLE(floor_divide);

CPU_ROW_BINARY(remainder_f32, float, float, , frem_f32(a, b))
CPU_ROW_BINARY(remainder_f64, double, double, , frem_f64(a, b))
CPU_ROW_BINARY(remainder_i64, int64_t, int64_t, , irem(a, b))
CPU_ROW_BINARY(remainder_i32, int32_t, int32_t, , (int32_t)irem(a, b))
CPU_ROW_BINARY(remainder_u8, uint8_t, uint8_t, , (uint8_t)(b ? a % b : 0))
ALL_TABLE(remainder);

/* ------------------------------------------------------------------ kernels */

#define UNARY_KERNEL(OP, COST)                                                            \
    em_status cpu_k_##OP(void *dev, const em_kargs *ka)                                   \
    {                                                                                     \
        return cpu_ew_launch(dev, ka, #OP, 1, OP##_rows, ka->out ? ka->out->dtype : EM_F32, \
                             SAME_OUT | SAME_IN0, COST);                                  \
    }

#define BINARY_KERNEL(OP, COST)                                                           \
    em_status cpu_k_##OP(void *dev, const em_kargs *ka)                                   \
    {                                                                                     \
        return cpu_ew_launch(dev, ka, #OP, 2, OP##_rows, ka->out ? ka->out->dtype : EM_F32, \
                             SAME_OUT | SAME_IN0 | SAME_IN1, COST);                       \
    }

UNARY_KERNEL(log1p, PAR_COSTLY)
UNARY_KERNEL(expm1, PAR_COSTLY)
UNARY_KERNEL(sin, PAR_COSTLY)
UNARY_KERNEL(cos, PAR_COSTLY)
UNARY_KERNEL(erf, PAR_COSTLY)
UNARY_KERNEL(floor, PAR_CHEAP)
UNARY_KERNEL(ceil, PAR_CHEAP)
UNARY_KERNEL(round, PAR_CHEAP)
UNARY_KERNEL(sign, PAR_CHEAP)
BINARY_KERNEL(pow, PAR_COSTLY)
BINARY_KERNEL(floor_divide, PAR_COSTLY)
BINARY_KERNEL(remainder, PAR_COSTLY)
