/* backends/cpu/cpu_int.c — the integer (i64, i32, u8) rows of the cpu backend's kernels of
 * ABI 1.0: fill, copy (every conversion with an integer side), neg, abs, the scalar ops,
 * clamp, add, sub, mul, maximum, minimum, the comparisons, where and masked_fill. The
 * kernels in cpu_kernels.c pick these tables for integer dtypes.
 *
 * Integer arithmetic wraps (two's complement; u8 modulo 256) as in PyTorch: it is done in
 * the unsigned type of the same width, so overflow is never undefined behaviour. Scalars
 * come exactly from ip[] (cpu_scalar_i). Floats convert to integers by truncation toward
 * zero, saturated, NaN giving 0 (cpu_f2i64 and friends). */
#include "cpu_ew.h"

#include <string.h>

/* x as the integer type T by its low bits (an int64 scalar narrowed to the tensor's dtype,
 * as PyTorch casts a Python int) */
#define WRAP(T, UT, v) ((T)(UT)(v))

/* the element type and its unsigned twin, declared for every instance, used by some */
#define TU_USED (void)sizeof(T); (void)sizeof(UT);

/* Instantiate a unary integer row for i64, i32, u8. In EXPR, T and UT are the element type
 * and its unsigned twin (UT is at least unsigned int: u8 arithmetic promotes anyway). */
#define INT_UNARY(OP, PRE, EXPR)                                                          \
    CPU_ROW_UNARY(OP##_i64, int64_t, int64_t,                                              \
                  typedef int64_t T; typedef uint64_t UT; TU_USED PRE, EXPR)                       \
    CPU_ROW_UNARY(OP##_i32, int32_t, int32_t,                                              \
                  typedef int32_t T; typedef uint32_t UT; TU_USED PRE, EXPR)                       \
    CPU_ROW_UNARY(OP##_u8, uint8_t, uint8_t,                                               \
                  typedef uint8_t T; typedef unsigned UT; TU_USED PRE, EXPR)                       \
    CPU_INT_TABLE(cpu_int_##OP##_rows, OP);

#define INT_BINARY(OP, TO_SAME, EXPR)                                                     \
    CPU_ROW_BINARY(OP##_i64, TO_SAME(int64_t), int64_t,                                    \
                   typedef int64_t T; typedef uint64_t UT; TU_USED, EXPR)                          \
    CPU_ROW_BINARY(OP##_i32, TO_SAME(int32_t), int32_t,                                    \
                   typedef int32_t T; typedef uint32_t UT; TU_USED, EXPR)                          \
    CPU_ROW_BINARY(OP##_u8, TO_SAME(uint8_t), uint8_t,                                     \
                   typedef uint8_t T; typedef unsigned UT; TU_USED, EXPR)                          \
    CPU_INT_TABLE(cpu_int_##OP##_rows, OP);

#define SAME(T) T
#define BOOL_OUT(T) uint8_t

/* ------------------------------------------------------------------ unary */

INT_UNARY(neg, , WRAP(T, UT, (UT)0 - (UT)x))
/* abs of the most negative value is itself (wraps, as PyTorch); u8 is its own abs */
CPU_ROW_UNARY(abs_i64, int64_t, int64_t, , x < 0 ? WRAP(int64_t, uint64_t, (uint64_t)0 - (uint64_t)x) : x)
CPU_ROW_UNARY(abs_i32, int32_t, int32_t, , x < 0 ? WRAP(int32_t, uint32_t, (uint32_t)0 - (uint32_t)x) : x)
CPU_ROW_UNARY(abs_u8, uint8_t, uint8_t, , x)
CPU_INT_TABLE(cpu_int_abs_rows, abs);
INT_UNARY(add_scalar, const UT s_ = (UT)cpu_scalar_i(ka, 0);, WRAP(T, UT, (UT)x + s_))
INT_UNARY(mul_scalar, const UT s_ = (UT)cpu_scalar_i(ka, 0);, WRAP(T, UT, (UT)x * s_))
INT_UNARY(rsub_scalar, const UT s_ = (UT)cpu_scalar_i(ka, 0);, WRAP(T, UT, s_ - (UT)x))
/* min(max(x, lo), hi) compared as int64: bounds outside T's range clamp nothing on that
 * side; lo > hi gives hi (as PyTorch) */
INT_UNARY(clamp, const int64_t lo_ = cpu_scalar_i(ka, 0); const int64_t hi_ = cpu_scalar_i(ka, 1);,
          WRAP(T, UT, (int64_t)x < lo_ ? (hi_ < lo_ ? hi_ : lo_)
                                       : (int64_t)x > hi_ ? hi_ : (int64_t)x))

/* ------------------------------------------------------------------ binary */

INT_BINARY(add, SAME, WRAP(T, UT, (UT)a + (UT)b))
INT_BINARY(sub, SAME, WRAP(T, UT, (UT)a - (UT)b))
INT_BINARY(mul, SAME, WRAP(T, UT, (UT)a * (UT)b))
INT_BINARY(maximum, SAME, a > b ? a : b)
INT_BINARY(minimum, SAME, a < b ? a : b)
INT_BINARY(lt, BOOL_OUT, (uint8_t)(a < b))
INT_BINARY(le, BOOL_OUT, (uint8_t)(a <= b))
INT_BINARY(gt, BOOL_OUT, (uint8_t)(a > b))
INT_BINARY(ge, BOOL_OUT, (uint8_t)(a >= b))
INT_BINARY(eq, BOOL_OUT, (uint8_t)(a == b))
INT_BINARY(ne, BOOL_OUT, (uint8_t)(a != b))

/* ------------------------------------------------------------------ fill, masked_fill */

#define DEF_FILL(NAME, T, UT)                                                             \
    static void NAME(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka,     \
                     int64_t lin)                                                          \
    {                                                                                      \
        (void)lin;                                                                         \
        T *o = (T *)pp[0];                                                                 \
        const int64_t so = s[0];                                                           \
        const T v = WRAP(T, UT, cpu_scalar_i(ka, 0));                                      \
        if (so == 1) {                                                                     \
            for (int64_t i = 0; i < n; i++)                                                \
                o[i] = v;                                                                  \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++)                                                \
                o[i * so] = v;                                                             \
        }                                                                                  \
    }

DEF_FILL(fill_i64, int64_t, uint64_t)
DEF_FILL(fill_i32, int32_t, uint32_t)
DEF_FILL(fill_u8, uint8_t, uint8_t)
CPU_INT_TABLE(cpu_int_fill_rows, fill);

/* out = mask ? value : in[0]; the value exactly from ip[0] when given, else p[0] converted */
#define DEF_MASKED_FILL(NAME, T, UT)                                                      \
    static void NAME(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka,     \
                     int64_t lin)                                                          \
    {                                                                                      \
        (void)lin;                                                                         \
        T *o = (T *)pp[0];                                                                 \
        const T *A = (const T *)pp[1];                                                     \
        const uint8_t *m = (const uint8_t *)pp[2];                                         \
        const int64_t so = s[0], sa = s[1], sm = s[2];                                     \
        const T v = WRAP(T, UT, cpu_scalar_i(ka, 0));                                      \
        if (so == 1 && sa == 1 && sm == 1) {                                               \
            _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++)                           \
                o[i] = m[i] ? v : A[i];                                                    \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++)                                                \
                o[i * so] = m[i * sm] ? v : A[i * sa];                                     \
        }                                                                                  \
    }

DEF_MASKED_FILL(masked_fill_i64, int64_t, uint64_t)
DEF_MASKED_FILL(masked_fill_i32, int32_t, uint32_t)
DEF_MASKED_FILL(masked_fill_u8, uint8_t, uint8_t)
CPU_INT_TABLE(cpu_int_masked_fill_rows, masked_fill);

/* ------------------------------------------------------------------ where */

#define DEF_WHERE(NAME, T)                                                                \
    static void NAME(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka,     \
                     int64_t lin)                                                          \
    {                                                                                      \
        (void)ka;                                                                          \
        (void)lin;                                                                         \
        T *o = (T *)pp[0];                                                                 \
        const uint8_t *c = (const uint8_t *)pp[1];                                         \
        const T *A = (const T *)pp[2], *B = (const T *)pp[3];                              \
        const int64_t so = s[0], sc = s[1], sa = s[2], sb = s[3];                          \
        if (so == 1 && sc == 1 && sa == 1 && sb == 1) {                                    \
            _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++)                           \
                o[i] = c[i] ? A[i] : B[i];                                                 \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++)                                                \
                o[i * so] = c[i * sc] ? A[i * sa] : B[i * sb];                             \
        }                                                                                  \
    }

DEF_WHERE(where_i64, int64_t)
DEF_WHERE(where_i32, int32_t)
DEF_WHERE(where_u8, uint8_t)
CPU_INT_TABLE(cpu_int_where_rows, where);

/* ------------------------------------------------------------------ copy */

/* conversions: CV(x) of an element of the input type */
#define CV_PLAIN(TO, x) ((TO)(x))                    /* value-preserving or int -> float */
#define CV_BOOL(TO, x) ((TO)((x) != 0))              /* to bool, or from bool: 0 / 1 */
#define CV_I64(TO, x) WRAP(int64_t, uint64_t, x)     /* int -> int: the low bits */
#define CV_I32(TO, x) WRAP(int32_t, uint32_t, x)
#define CV_U8(TO, x) ((uint8_t)(x))
#define CV_F2I64(TO, x) cpu_f2i64((double)(x))       /* float -> int: saturating */
#define CV_F2I32(TO, x) cpu_f2i32((double)(x))
#define CV_F2U8(TO, x) cpu_f2u8((double)(x))

#define DEF_COPY(NAME, TO, TI, CV)                                                        \
    CPU_ROW_UNARY(NAME, TO, TI, , CV(TO, x))

/* same dtype: contiguous rows are plain memory copies */
#define DEF_COPY_SAME(NAME, T)                                                            \
    static void NAME(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka,     \
                     int64_t lin)                                                          \
    {                                                                                      \
        (void)ka;                                                                          \
        (void)lin;                                                                         \
        T *o = (T *)pp[0];                                                                 \
        const T *a = (const T *)pp[1];                                                     \
        const int64_t so = s[0], sa = s[1];                                                \
        if (so == 1 && sa == 1) {                                                          \
            if (o != a)                                                                    \
                memcpy(o, a, (size_t)n * sizeof(T));                                       \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++)                                                \
                o[i * so] = a[i * sa];                                                     \
        }                                                                                  \
    }

DEF_COPY_SAME(copy_i64_i64, int64_t)
DEF_COPY_SAME(copy_i32_i32, int32_t)
DEF_COPY_SAME(copy_u8_u8, uint8_t)
/* to i64 */
DEF_COPY(copy_i64_f32, int64_t, float, CV_F2I64)
DEF_COPY(copy_i64_f64, int64_t, double, CV_F2I64)
DEF_COPY(copy_i64_bool, int64_t, uint8_t, CV_BOOL)
DEF_COPY(copy_i64_i32, int64_t, int32_t, CV_PLAIN)
DEF_COPY(copy_i64_u8, int64_t, uint8_t, CV_PLAIN)
/* to i32 */
DEF_COPY(copy_i32_f32, int32_t, float, CV_F2I32)
DEF_COPY(copy_i32_f64, int32_t, double, CV_F2I32)
DEF_COPY(copy_i32_bool, int32_t, uint8_t, CV_BOOL)
DEF_COPY(copy_i32_i64, int32_t, int64_t, CV_I32)
DEF_COPY(copy_i32_u8, int32_t, uint8_t, CV_PLAIN)
/* to u8 */
DEF_COPY(copy_u8_f32, uint8_t, float, CV_F2U8)
DEF_COPY(copy_u8_f64, uint8_t, double, CV_F2U8)
DEF_COPY(copy_u8_bool, uint8_t, uint8_t, CV_BOOL)
DEF_COPY(copy_u8_i64, uint8_t, int64_t, CV_U8)
DEF_COPY(copy_u8_i32, uint8_t, int32_t, CV_U8)
/* from integers to f32, f64, bool */
DEF_COPY(copy_f32_i64, float, int64_t, CV_PLAIN)
DEF_COPY(copy_f32_i32, float, int32_t, CV_PLAIN)
DEF_COPY(copy_f32_u8, float, uint8_t, CV_PLAIN)
DEF_COPY(copy_f64_i64, double, int64_t, CV_PLAIN)
DEF_COPY(copy_f64_i32, double, int32_t, CV_PLAIN)
DEF_COPY(copy_f64_u8, double, uint8_t, CV_PLAIN)
DEF_COPY(copy_bool_i64, uint8_t, int64_t, CV_BOOL)
DEF_COPY(copy_bool_i32, uint8_t, int32_t, CV_BOOL)
DEF_COPY(copy_bool_u8, uint8_t, uint8_t, CV_BOOL)

/* [out dtype][in dtype]; the float/bool pairs are cpu_kernels.c's */
const row_fn cpu_int_copy_rows[EM_DTYPE_COUNT_][EM_DTYPE_COUNT_] = {
    [EM_F32] = {[EM_I64] = copy_f32_i64, [EM_I32] = copy_f32_i32, [EM_U8] = copy_f32_u8},
    [EM_F64] = {[EM_I64] = copy_f64_i64, [EM_I32] = copy_f64_i32, [EM_U8] = copy_f64_u8},
    [EM_BOOL] = {[EM_I64] = copy_bool_i64, [EM_I32] = copy_bool_i32, [EM_U8] = copy_bool_u8},
    [EM_I64] = {[EM_F32] = copy_i64_f32, [EM_F64] = copy_i64_f64, [EM_BOOL] = copy_i64_bool,
                [EM_I64] = copy_i64_i64, [EM_I32] = copy_i64_i32, [EM_U8] = copy_i64_u8},
    [EM_I32] = {[EM_F32] = copy_i32_f32, [EM_F64] = copy_i32_f64, [EM_BOOL] = copy_i32_bool,
                [EM_I64] = copy_i32_i64, [EM_I32] = copy_i32_i32, [EM_U8] = copy_i32_u8},
    [EM_U8] = {[EM_F32] = copy_u8_f32, [EM_F64] = copy_u8_f64, [EM_BOOL] = copy_u8_bool,
               [EM_I64] = copy_u8_i64, [EM_I32] = copy_u8_i32, [EM_U8] = copy_u8_u8},
};
