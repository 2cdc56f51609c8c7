/* backends/cpu/cpu_rows.h — the row functions of the elementwise kernels (and the sum's
 * inner loops), included twice by cpu_kernels.c: once for the baseline ISA (names end in
 * _gen) and, on x86-64, once more under target("avx2") (names end in _avx2), chosen per
 * instance at run time. AVX2 only, never FMA: without fused multiply-adds to contract
 * into, both copies round every operation the same way, so results do not depend on which
 * copy runs. RN(name) adds the suffix; every definition here is static. */

/* ------------------------------------------------------------------ typed math */

#define M_EXP(x) _Generic((x), float: expf, default: exp)(x)
#define M_LOG(x) _Generic((x), float: logf, default: log)(x)
#define M_SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)
#define M_FABS(x) _Generic((x), float: fabsf, default: fabs)(x)
#define M_TANH(x) _Generic((x), float: tanhf, default: tanh)(x)
#define M_POW(x, y) _Generic((x), float: powf, default: pow)((x), (y))

/* exp of -|x| never overflows, so both halves of the logistic stay finite */
static inline float RN(logistic_f32)(float x)
{
    float e = expf(-fabsf(x));
    return x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

static inline double RN(logistic_f64)(double x)
{
    double e = exp(-fabs(x));
    return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

#define M_SIGMOID(x) _Generic((x), float: RN(logistic_f32), default: RN(logistic_f64))(x)

/* ------------------------------------------------------------------ row generators */

/* out (T) = EXPR(x), x = in[0] (T); p0, p1 are the kernel's scalars as T. */
#define DEF_UNARY(NAME, T, EXPR)                                                         \
    static void RN(NAME)(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka, \
                     int64_t lin)                                                        \
    {                                                                                    \
        T *o = (T *)pp[0];                                                               \
        const T *a = (const T *)pp[1];                                                   \
        const int64_t so = s[0], sa = s[1];                                              \
        const T p0 = (T)ka->p[0], p1 = (T)ka->p[1];                                      \
        (void)p0;                                                                        \
        (void)p1;                                                                        \
        (void)lin;                                                                       \
        if (so == 1 && sa == 1) {                                                        \
            CONTIGUOUS_LOOP                                                              \
            for (int64_t i = 0; i < n; i++) {                                            \
                const T x = a[i];                                                        \
                o[i] = (EXPR);                                                           \
            }                                                                            \
        } else if (sa == 0) {                                                            \
            const T x = a[0];                                                            \
            const T r = (EXPR);                                                          \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i * so] = r;                                                           \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++) {                                            \
                const T x = a[i * sa];                                                   \
                o[i * so] = (EXPR);                                                      \
            }                                                                            \
        }                                                                                \
    }

/* Contiguous rows: `out` is never a partial overlap of an input (the plugin ABI), only
 * possibly the very same memory (an in-place op), where element i is read before it is
 * written. No loop-carried dependence either way, which ivdep tells gcc: the loops then
 * vectorise without run-time alias checks, in-place ones included. */
#define CONTIGUOUS_LOOP _Pragma("GCC ivdep")

#define BINARY_BLOCKS(TO, TI, EXPR, LA, LB)                                              \
    CONTIGUOUS_LOOP                                                                      \
    for (; i < n; i++) {                                                                 \
        const TI a = (LA), b = (LB);                                                     \
        o[i] = (EXPR);                                                                   \
    }

/* out (TO) = EXPR(a, b), a = in[0], b = in[1] (TI); p0, p1 as TP (no casts for bool). */
#define DEF_BINARY_BODY(TO, TI, EXPR)                                                    \
    TO *o = (TO *)pp[0];                                                                 \
    const TI *A = (const TI *)pp[1], *B = (const TI *)pp[2];                             \
    const int64_t so = s[0], sa = s[1], sb = s[2];                                       \
    (void)lin;                                                                           \
    if (so == 1 && (sa == 1 || sa == 0) && (sb == 1 || sb == 0)) {                       \
        /* unit or broadcast inputs: the index multiply by 0/1 folds away per version */ \
        int64_t i = 0;                                                                   \
        if (sa == 1 && sb == 1) {                                                        \
            BINARY_BLOCKS(TO, TI, EXPR, A[i], B[i])                            \
        } else if (sa == 1) {                                                            \
            const TI b0_ = B[0];                                                         \
            BINARY_BLOCKS(TO, TI, EXPR, A[i], b0_)                                  \
        } else if (sb == 1) {                                                            \
            const TI a0_ = A[0];                                                         \
            BINARY_BLOCKS(TO, TI, EXPR, a0_, B[i])                                  \
        } else {                                                                         \
            const TI a = A[0], b = B[0];                                                 \
            const TO r_ = (EXPR);                                                        \
            for (; i < n; i++)                                                           \
                o[i] = r_;                                                               \
        }                                                                                \
    } else {                                                                             \
        for (int64_t i = 0; i < n; i++) {                                                \
            const TI a = A[i * sa], b = B[i * sb];                                       \
            o[i * so] = (EXPR);                                                          \
        }                                                                                \
    }

#define DEF_BINARY(NAME, TO, TI, EXPR)                                                   \
    static void RN(NAME)(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka, \
                     int64_t lin)                                                        \
    {                                                                                    \
        (void)ka;                                                                        \
        DEF_BINARY_BODY(TO, TI, EXPR)                                                    \
    }

#define DEF_BINARY_P(NAME, T, EXPR)                                                      \
    static void RN(NAME)(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka, \
                     int64_t lin)                                                        \
    {                                                                                    \
        const T p0 = (T)ka->p[0], p1 = (T)ka->p[1];                                      \
        (void)p0;                                                                        \
        (void)p1;                                                                        \
        DEF_BINARY_BODY(T, T, EXPR)                                                      \
    }

/* Instantiate a float-only op for f32 and f64, plus its dtype table. */
#define UNARY_OP(OP, EXPR)                                                               \
    DEF_UNARY(OP##_f32, float, EXPR)                                                     \
    DEF_UNARY(OP##_f64, double, EXPR)                                                    \
    static const row_fn RN(OP##_rows)[EM_DTYPE_COUNT_] = {[EM_F32] = RN(OP##_f32),       \
                                                      [EM_F64] = RN(OP##_f64)};

#define BINARY_OP(OP, EXPR)                                                              \
    DEF_BINARY_P(OP##_f32, float, EXPR)                                                  \
    DEF_BINARY_P(OP##_f64, double, EXPR)                                                 \
    static const row_fn RN(OP##_rows)[EM_DTYPE_COUNT_] = {[EM_F32] = RN(OP##_f32),       \
                                                      [EM_F64] = RN(OP##_f64)};

#define COMPARE_OP(OP, EXPR)                                                             \
    DEF_BINARY(OP##_f32, uint8_t, float, EXPR)                                           \
    DEF_BINARY(OP##_f64, uint8_t, double, EXPR)                                          \
    DEF_BINARY(OP##_bool, uint8_t, uint8_t, EXPR)                                        \
    static const row_fn RN(OP##_rows)[EM_DTYPE_COUNT_] = {                               \
        [EM_F32] = RN(OP##_f32), [EM_F64] = RN(OP##_f64), [EM_BOOL] = RN(OP##_bool)};

/* ------------------------------------------------------------------ unary kernels */

UNARY_OP(neg, -x)
UNARY_OP(exp, M_EXP(x))
UNARY_OP(log, M_LOG(x))
UNARY_OP(sqrt, M_SQRT(x))
UNARY_OP(abs, M_FABS(x))
/* only a number < 0 becomes 0: NaN and -0 pass through (as PyTorch) */
UNARY_OP(relu, x < 0 ? (__typeof__(x))0 : x)
UNARY_OP(tanh, M_TANH(x))
UNARY_OP(sigmoid, M_SIGMOID(x))
UNARY_OP(add_scalar, x + p0)
UNARY_OP(mul_scalar, x * p0)
UNARY_OP(rsub_scalar, p0 - x)
/* a true division: x * (1/p0) would round differently */
UNARY_OP(div_scalar, x / p0)
UNARY_OP(rdiv_scalar, p0 / x)
/* min(max(x, lo), hi) with NaN in x propagating: both comparisons are false for NaN */
UNARY_OP(clamp, (x < p0 ? p0 : x) > p1 ? p1 : (x < p0 ? p0 : x))
/* pow_scalar: the common exponents avoid libm pow (results as pow's, up to pow's own
 * rounding; sqrt for 0.5 as PyTorch) */
UNARY_OP(pow_gen, M_POW(x, p0))
UNARY_OP(pow_two, x * x)
UNARY_OP(pow_one, x)
UNARY_OP(pow_zero, (__typeof__(x))1)
UNARY_OP(pow_half, M_SQRT(x))
UNARY_OP(pow_minus_one, (__typeof__(x))1 / x)

/* ------------------------------------------------------------------ binary kernels */

BINARY_OP(add, a + b)
BINARY_OP(sub, a - b)
BINARY_OP(mul, a * b)
BINARY_OP(div, a / b)
/* a NaN on either side wins (PyTorch maximum/minimum) */
BINARY_OP(maximum, a > b || a != a ? a : b)
BINARY_OP(minimum, a < b || a != a ? a : b)
/* backward helpers: a = g, b = x or y. Masks select rather than multiply, so an
 * infinite g stays out of masked-off elements. relu: b = relu(x); NaN passes g. */
BINARY_OP(relu_backward, b <= 0 ? (__typeof__(a))0 : a)
BINARY_OP(clamp_backward, p0 <= b && b <= p1 ? a : (__typeof__(a))0)
BINARY_OP(pow_backward_gen, a * (p0 * M_POW(b, p0 - (__typeof__(a))1)))
/* exponents 2 and 1 give bit-identical results without pow: pow(x, 1) == x, 1*pow(x,0) == 1 */
BINARY_OP(pow_backward_two, a * ((__typeof__(a))2 * b))
BINARY_OP(pow_backward_one, ((void)b, a))
BINARY_OP(tanh_backward, a * ((__typeof__(a))1 - b * b))
BINARY_OP(sigmoid_backward, a * (((__typeof__(a))1 - b) * b))


COMPARE_OP(lt, a < b)
COMPARE_OP(le, a <= b)
COMPARE_OP(gt, a > b)
COMPARE_OP(ge, a >= b)
COMPARE_OP(eq, a == b)
COMPARE_OP(ne, a != b)


#define DEF_WHERE(NAME, T)                                                               \
    static void RN(NAME)(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka, \
                     int64_t lin)                                                        \
    {                                                                                    \
        (void)ka;                                                                        \
        (void)lin;                                                                       \
        T *o = (T *)pp[0];                                                               \
        const uint8_t *c = (const uint8_t *)pp[1];                                       \
        const T *A = (const T *)pp[2], *B = (const T *)pp[3];                            \
        const int64_t so = s[0], sc = s[1], sa = s[2], sb = s[3];                        \
        if (so == 1 && sc == 1 && sa == 1 && sb == 1) {                                  \
            CONTIGUOUS_LOOP                                                              \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i] = c[i] ? A[i] : B[i];                                               \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i * so] = c[i * sc] ? A[i * sa] : B[i * sb];                           \
        }                                                                                \
    }

DEF_WHERE(where_f32, float)
DEF_WHERE(where_f64, double)
DEF_WHERE(where_bool, uint8_t)
static const row_fn RN(where_rows)[EM_DTYPE_COUNT_] = {
    [EM_F32] = RN(where_f32), [EM_F64] = RN(where_f64), [EM_BOOL] = RN(where_bool)};


#define DEF_MASKED_FILL(NAME, T, VALUE)                                                  \
    static void RN(NAME)(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka, \
                     int64_t lin)                                                        \
    {                                                                                    \
        (void)lin;                                                                       \
        T *o = (T *)pp[0];                                                               \
        const T *A = (const T *)pp[1];                                                   \
        const uint8_t *m = (const uint8_t *)pp[2];                                       \
        const int64_t so = s[0], sa = s[1], sm = s[2];                                   \
        const T v = (VALUE);                                                             \
        if (so == 1 && sa == 1 && sm == 1) {                                             \
            CONTIGUOUS_LOOP                                                              \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i] = m[i] ? v : A[i];                                                  \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i * so] = m[i * sm] ? v : A[i * sa];                                   \
        }                                                                                \
    }

DEF_MASKED_FILL(masked_fill_f32, float, (float)ka->p[0])
DEF_MASKED_FILL(masked_fill_f64, double, ka->p[0])
DEF_MASKED_FILL(masked_fill_bool, uint8_t, ka->p[0] != 0)
static const row_fn RN(masked_fill_rows)[EM_DTYPE_COUNT_] = {
    [EM_F32] = RN(masked_fill_f32), [EM_F64] = RN(masked_fill_f64), [EM_BOOL] = RN(masked_fill_bool)};


#define DEF_FILL(NAME, T, VALUE)                                                         \
    static void RN(NAME)(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka, \
                     int64_t lin)                                                        \
    {                                                                                    \
        (void)lin;                                                                       \
        T *o = (T *)pp[0];                                                               \
        const int64_t so = s[0];                                                         \
        const T v = (VALUE);                                                             \
        if (so == 1) {                                                                   \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i] = v;                                                                \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i * so] = v;                                                           \
        }                                                                                \
    }

DEF_FILL(fill_f32, float, (float)ka->p[0])
DEF_FILL(fill_f64, double, ka->p[0])
DEF_FILL(fill_bool, uint8_t, ka->p[0] != 0)
static const row_fn RN(fill_rows)[EM_DTYPE_COUNT_] = {
    [EM_F32] = RN(fill_f32), [EM_F64] = RN(fill_f64), [EM_BOOL] = RN(fill_bool)};


#define CONV_PLAIN(TO, x) ((TO)(x))
#define CONV_BOOL(TO, x) ((TO)((x) != 0))

#define DEF_COPY(NAME, TO, TI, CONV)                                                     \
    static void RN(NAME)(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka, \
                     int64_t lin)                                                        \
    {                                                                                    \
        (void)ka;                                                                        \
        (void)lin;                                                                       \
        TO *o = (TO *)pp[0];                                                             \
        const TI *a = (const TI *)pp[1];                                                 \
        const int64_t so = s[0], sa = s[1];                                              \
        if (so == 1 && sa == 1) {                                                        \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i] = CONV(TO, a[i]);                                                   \
        } else if (sa == 0) {                                                            \
            const TO v = CONV(TO, a[0]);                                                 \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i * so] = v;                                                           \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i * so] = CONV(TO, a[i * sa]);                                         \
        }                                                                                \
    }

/* same-dtype contiguous rows are plain memory copies */
#define DEF_COPY_SAME(NAME, T)                                                           \
    static void RN(NAME)(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka, \
                     int64_t lin)                                                        \
    {                                                                                    \
        (void)ka;                                                                        \
        (void)lin;                                                                       \
        T *o = (T *)pp[0];                                                               \
        const T *a = (const T *)pp[1];                                                   \
        const int64_t so = s[0], sa = s[1];                                              \
        if (so == 1 && sa == 1) {                                                        \
            if (o != a)                                                                  \
                memcpy(o, a, (size_t)n * sizeof(T));                                     \
        } else if (sa == 0) {                                                            \
            const T v = a[0];                                                            \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i * so] = v;                                                           \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i * so] = a[i * sa];                                                   \
        }                                                                                \
    }

DEF_COPY_SAME(copy_f32_f32, float)
DEF_COPY_SAME(copy_f64_f64, double)
DEF_COPY_SAME(copy_bool_bool, uint8_t)
DEF_COPY(copy_f32_f64, float, double, CONV_PLAIN)
DEF_COPY(copy_f32_bool, float, uint8_t, CONV_PLAIN)
DEF_COPY(copy_f64_f32, double, float, CONV_PLAIN)
DEF_COPY(copy_f64_bool, double, uint8_t, CONV_PLAIN)
DEF_COPY(copy_bool_f32, uint8_t, float, CONV_BOOL)
DEF_COPY(copy_bool_f64, uint8_t, double, CONV_BOOL)

/* [out dtype][in dtype] */
static const row_fn RN(copy_rows)[EM_DTYPE_COUNT_][EM_DTYPE_COUNT_] = {
    [EM_F32] = {[EM_F32] = RN(copy_f32_f32), [EM_F64] = RN(copy_f32_f64), [EM_BOOL] = RN(copy_f32_bool)},
    [EM_F64] = {[EM_F32] = RN(copy_f64_f32), [EM_F64] = RN(copy_f64_f64), [EM_BOOL] = RN(copy_f64_bool)},
    [EM_BOOL] = {[EM_F32] = RN(copy_bool_f32), [EM_F64] = RN(copy_bool_f64),
                 [EM_BOOL] = RN(copy_bool_bool)},
};


/* Pairwise sum of n elements at stride s, accumulated in double. The base case keeps
 * eight independent accumulators, spelled out so that gcc's straight-line (SLP)
 * vectoriser handles the contiguous loop even at -O2; the recursion bounds the error
 * growth by O(log n) as in numpy. */
#define PW_BLOCK 128

#define DEF_PAIRWISE(NAME, T)                                                            \
    static double RN(NAME)(const T *x, int64_t n, int64_t s)                             \
    {                                                                                    \
        if (n <= PW_BLOCK) {                                                             \
            double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;       \
            int64_t i = 0;                                                               \
            if (s == 1) {                                                                \
                for (; i + 8 <= n; i += 8) {                                             \
                    a0 += (double)x[i];                                                  \
                    a1 += (double)x[i + 1];                                              \
                    a2 += (double)x[i + 2];                                              \
                    a3 += (double)x[i + 3];                                              \
                    a4 += (double)x[i + 4];                                              \
                    a5 += (double)x[i + 5];                                              \
                    a6 += (double)x[i + 6];                                              \
                    a7 += (double)x[i + 7];                                              \
                }                                                                        \
            } else {                                                                     \
                for (; i + 8 <= n; i += 8) {                                             \
                    const T *q = x + i * s;                                              \
                    a0 += (double)q[0];                                                  \
                    a1 += (double)q[s];                                                  \
                    a2 += (double)q[2 * s];                                              \
                    a3 += (double)q[3 * s];                                              \
                    a4 += (double)q[4 * s];                                              \
                    a5 += (double)q[5 * s];                                              \
                    a6 += (double)q[6 * s];                                              \
                    a7 += (double)q[7 * s];                                              \
                }                                                                        \
            }                                                                            \
            double r = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));                \
            for (; i < n; i++)                                                           \
                r += (double)x[i * s];                                                   \
            return r;                                                                    \
        }                                                                                \
        int64_t h = (n / 2) & ~(int64_t)7;                                               \
        return RN(NAME)(x, h, s) + RN(NAME)(x + h * s, n - h, s);                        \
    }

DEF_PAIRWISE(pairwise_strided_f32, float)
DEF_PAIRWISE(pairwise_f64, double)

/* Contiguous f32, the bulk of f32 sums and means: each element widened to double and added
 * into one of 16 double lanes (element i into lane i % 16; four 256-bit vectors, which
 * gcc's SLP vectoriser forms from the named accumulators), leaves of up to PW_LEAF_F32
 * elements combined pairwise. Double accumulation keeps the error of a leaf below
 * 128 * 2^-53 of the sum of magnitudes, far under one f32 ulp of the result whatever the
 * cancellation, while the lanes hide the adds' latency, so one core sums faster than
 * memory delivers. The order is fixed by n alone: every ISA's copy rounds alike. */
#define PW_LEAF_F32 2048
#define PW_LANES16(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) \
    OP(11) OP(12) OP(13) OP(14) OP(15)
#define PW_DECL(k) double a##k = 0;
#define PW_ADD(k) a##k += (double)x[i + k];

static double RN(pairwise_unit_f32)(const float *x, int64_t n)
{
    if (n > PW_LEAF_F32) {
        int64_t h = (n / 2) & ~(int64_t)15;
        return RN(pairwise_unit_f32)(x, h) + RN(pairwise_unit_f32)(x + h, n - h);
    }
    PW_LANES16(PW_DECL)
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        PW_LANES16(PW_ADD)
    }
    /* lanes k and k + 8, then k + 4, k + 2, k + 1: the tree of a vector reduction */
    double r = (((a0 + a8) + (a4 + a12)) + ((a2 + a10) + (a6 + a14))) +
               (((a1 + a9) + (a5 + a13)) + ((a3 + a11) + (a7 + a15)));
    for (; i < n; i++)
        r += (double)x[i];
    return r;
}
#undef PW_DECL
#undef PW_ADD
#undef PW_LANES16
#undef PW_LEAF_F32

static double RN(pairwise_f32)(const float *x, int64_t n, int64_t s)
{
    return s == 1 ? RN(pairwise_unit_f32)(x, n) : RN(pairwise_strided_f32)(x, n, s);
}

static double RN(count_bool)(const uint8_t *x, int64_t n, int64_t s)
{
    int64_t c = 0;
    if (s == 1) {
        for (int64_t i = 0; i < n; i++)
            c += x[i] != 0;
    } else {
        for (int64_t i = 0; i < n; i++)
            c += x[i * s] != 0;
    }
    return (double)c;
}

static double RN(seg_sum)(int32_t dt, const char *p, int64_t n, int64_t s)
{
    switch (dt) {
    case EM_F32: return RN(pairwise_f32)((const float *)p, n, s);
    case EM_F64: return RN(pairwise_f64)((const double *)p, n, s);
    default: return RN(count_bool)((const uint8_t *)p, n, s);
    }
}

/* acc[j] += x[j*s] for a row of a column-wise reduction; contiguous rows in blocks of 8
 * (fixed trip counts vectorise at -O2 too) */
#define ADD_ROW_UNIT(x)                                                                  \
    do {                                                                                 \
        int64_t j = 0;                                                                   \
        for (; j + 8 <= n; j += 8)                                                       \
            for (int k_ = 0; k_ < 8; k_++)                                               \
                acc[j + k_] += (double)x[j + k_];                                        \
        for (; j < n; j++)                                                               \
            acc[j] += (double)x[j];                                                      \
    } while (0)

static void RN(add_row)(int32_t dt, double *restrict acc, const char *restrict p, int64_t n,
                    int64_t s)
{
    if (dt == EM_F32) {
        const float *x = (const float *)p;
        if (s == 1)
            ADD_ROW_UNIT(x);
        else
            for (int64_t j = 0; j < n; j++)
                acc[j] += (double)x[j * s];
    } else if (dt == EM_F64) {
        const double *x = (const double *)p;
        if (s == 1)
            ADD_ROW_UNIT(x);
        else
            for (int64_t j = 0; j < n; j++)
                acc[j] += x[j * s];
    } else {
        const uint8_t *x = (const uint8_t *)p;
        for (int64_t j = 0; j < n; j++)
            acc[j] += (double)(x[j * s] != 0);
    }
}
