/* backends/opencl/kernels.cl — the first part of the OpenCL backend's one OpenCL C
 * program: build options, the elementwise templates and their float and bool instances,
 * random numbers and gemm. kernels_int.cl, kernels_math.cl, kernels_reduce.cl and
 * kernels_index.cl follow it, in that order, using its templates. All are embedded into the
 * plugin at build time (opencl_source.h) and built once per device_open: one program keeps
 * PoCL's cold compile to a single front-end run.
 *
 * Build options the host passes (opencl.c, build_options):
 *   EM_FP64       the device has cl_khr_fp64: double kernels exist, f32 rng / sum / pow /
 *                 math functions use double internally (as the cpu backend does)
 *   EM_INT64_ATOMICS  the device has cl_khr_int64_base_atomics (f64 / i64 scatter_add)
 *   EM_LS         work-group size of the reductions (a power of two)
 *   EM_GEMM_TS    gemm tile edge (64 or 32); EM_GEMM_TK its depth
 *
 * Naming, which the host rebuilds with snprintf (opencl_table.c):
 *   em_<op>_<dtype>_1d   n elements at (offset, stride) per operand: what the core's
 *                        dimension coalescing turns contiguous work into
 *   em_<op>_<dtype>_nd   up to 8 strided dims, shapes and strides in an em_geom by value
 *   em_copy_<to>_<from>_<1d|nd>; em_<kernel>_<dtype> for the others (sums, dim kernels,
 *   indexing), em_gemm_<dtype> (tiled, local memory: GPUs), em_gemmr_<dtype> (registers:
 *   CPU devices); dtypes f32 f64 bool i64 i32 u8
 * One work-item per output element: on GPUs that is the usual mapping, and on PoCL the
 * work-item loop is the innermost loop, which LLVM vectorises.
 *
 * Floating point: contraction is off so that a*b+c rounds as on the cpu backend (bit-exact
 * uniform random numbers need it); gemm asks for fma explicitly. */
#ifdef EM_TEST_BUILD_ERROR
/* tests/test_opencl.c asks for this (EMBER_OPENCL_BUILD_OPTIONS) to see a failed build
 * reported with its log */
#error "EM_TEST_BUILD_ERROR: a build failure requested by the tests"
#endif
#pragma OPENCL FP_CONTRACT OFF
#ifdef EM_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define EM_MAX_DIMS 8

#ifndef EM_LS
#define EM_LS 256
#endif
#ifndef EM_GEMM_TS
#define EM_GEMM_TS 64
#endif
#ifndef EM_GEMM_TK
#define EM_GEMM_TK 16
#endif

/* Geometry of an N-d elementwise launch; the host's ocl_geom has the same layout
 * (only 8-byte fields before the two ints, so no padding differs between compilers). */
typedef struct em_geom {
    long shape[EM_MAX_DIMS];
    long st[4][EM_MAX_DIMS];   /* element strides: [0] out, [1..3] inputs */
    long off[4];               /* element offsets */
    int ndim;
    int pad;
} em_geom;

/* Row-major logical index -> element offsets of every operand. Operands a kernel does
 * not use are dead code for the compiler. */
#define ND_BEGIN                                                                          \
    const long i_ = (long)get_global_id(0);                                               \
    if (i_ >= n)                                                                          \
        return;                                                                           \
    long o0 = g.off[0], o1 = g.off[1], o2 = g.off[2], o3 = g.off[3];                      \
    {                                                                                     \
        long r_ = i_;                                                                     \
        for (int d_ = g.ndim - 1; d_ >= 0; d_--) {                                        \
            const long s_ = g.shape[d_];                                                  \
            const long q_ = r_ / s_;                                                      \
            const long c_ = r_ - q_ * s_;                                                 \
            r_ = q_;                                                                      \
            o0 += c_ * g.st[0][d_];                                                       \
            o1 += c_ * g.st[1][d_];                                                       \
            o2 += c_ * g.st[2][d_];                                                       \
            o3 += c_ * g.st[3][d_];                                                       \
        }                                                                                 \
    }

#define D1_BEGIN                                                                          \
    const long i_ = (long)get_global_id(0);                                               \
    if (i_ >= n)                                                                          \
        return;

/* ------------------------------------------------------------------ scalar helpers */

/* exp of -|x| never overflows, so both halves of the logistic stay finite */
inline float em_sigmoid_f32(float x)
{
    float e = exp(-fabs(x));
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

/* relu keeps -0 and NaN (x < 0 is false for both), as PyTorch.
 * tanh(x) rounds to +-1 in float once |x| > 9.02, but OpenCL's float tanh may stop one ulp
 * short (PoCL gives 0.99999994 at 20): f32 goes through double where the device has it
 * (then it is the correctly rounded value but for double rounding), else saturates there
 * explicitly. */
inline float em_tanh_f32(float x)
{
#ifdef EM_FP64
    return (float)tanh((double)x);
#else
    return fabs(x) > 9.1f ? copysign(1.0f, x) : tanh(x);
#endif
}

/* pow with the cpu backend's special exponents (exact for 2, 1, 0, -1; sqrt for 0.5).
 * The general case goes through double where the device has it: OpenCL lets float pow be
 * off by 16 ulp, glibc's powf is within 1. */
inline float em_pow_f32(float x, float e)
{
    if (e == 2.0f)
        return x * x;
    if (e == 1.0f)
        return x;
    if (e == 0.0f)
        return 1.0f;
    if (e == 0.5f)
        return sqrt(x);
    if (e == -1.0f)
        return 1.0f / x;
#ifdef EM_FP64
    return (float)pow((double)x, (double)e);
#else
    return pow(x, e);
#endif
}

/* g * (p * pow(x, p - 1)), exponents 2 and 1 exact as on cpu */
inline float em_powbw_f32(float g, float x, float e)
{
    if (e == 2.0f)
        return g * (2.0f * x);
    if (e == 1.0f)
        return g;
    return g * (e * em_pow_f32(x, e - 1.0f));
}

#ifdef EM_FP64
inline double em_tanh_f64(double x)
{
    return fabs(x) > 19.1 ? copysign(1.0, x) : tanh(x);
}

inline double em_sigmoid_f64(double x)
{
    double e = exp(-fabs(x));
    return x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

inline double em_pow_f64(double x, double e)
{
    if (e == 2.0)
        return x * x;
    if (e == 1.0)
        return x;
    if (e == 0.0)
        return 1.0;
    if (e == 0.5)
        return sqrt(x);
    if (e == -1.0)
        return 1.0 / x;
    return pow(x, e);
}

inline double em_powbw_f64(double g, double x, double e)
{
    if (e == 2.0)
        return g * (2.0 * x);
    if (e == 1.0)
        return g;
    return g * (e * em_pow_f64(x, e - 1.0));
}
#endif

/* ------------------------------------------------------------------ templates */

/* out (T) = EXPR(x); x = in0 (T); p0, p1 scalars as PT (EW_UNARY: as T). NAME only ever
 * meets ##: PoCL defines exp, log, ... as macros, which must not expand inside names. */
#define EW_UNARY_P(NAME, T, PT, S, EXPR) EW_UNARY_K(em_##NAME##_##S, T, PT, EXPR)
#define EW_UNARY(NAME, T, S, EXPR) EW_UNARY_K(em_##NAME##_##S, T, T, EXPR)
#define EW_UNARY_K(KN, T, PT, EXPR)                                                       \
    __kernel void KN##_1d(long n, __global T *out, long oo, long so,                      \
                          __global const T *in0, long ao, long sa, PT p0, PT p1)          \
    {                                                                                     \
        D1_BEGIN                                                                          \
        const T x = in0[ao + i_ * sa];                                                    \
        out[oo + i_ * so] = (EXPR);                                                       \
    }                                                                                     \
    __kernel void KN##_nd(long n, em_geom g, __global T *out, __global const T *in0,      \
                          PT p0, PT p1)                                                   \
    {                                                                                     \
        ND_BEGIN                                                                          \
        const T x = in0[o1];                                                              \
        out[o0] = (EXPR);                                                                 \
    }

/* out (TO) = EXPR(a, b); a = in0, b = in1 (TI); p0, p1 scalars as TI */
#define EW_BINARY(NAME, TO, TI, S, EXPR)                                                  \
    __kernel void em_##NAME##_##S##_1d(long n, __global TO *out, long oo, long so,        \
                                       __global const TI *in0, long ao, long sa,          \
                                       __global const TI *in1, long bo, long sb, TI p0,   \
                                       TI p1)                                             \
    {                                                                                     \
        D1_BEGIN                                                                          \
        const TI a = in0[ao + i_ * sa], b = in1[bo + i_ * sb];                            \
        out[oo + i_ * so] = (EXPR);                                                       \
    }                                                                                     \
    __kernel void em_##NAME##_##S##_nd(long n, em_geom g, __global TO *out,               \
                                       __global const TI *in0, __global const TI *in1,    \
                                       TI p0, TI p1)                                      \
    {                                                                                     \
        ND_BEGIN                                                                          \
        const TI a = in0[o1], b = in1[o2];                                                \
        out[o0] = (EXPR);                                                                 \
    }

/* out (T) = c ? a : b; c = in0 (bool), a = in1, b = in2 (T) */
#define EW_WHERE(T, S)                                                                    \
    __kernel void em_where_##S##_1d(long n, __global T *out, long oo, long so,            \
                                    __global const uchar *in0, long co, long sc,          \
                                    __global const T *in1, long ao, long sa,              \
                                    __global const T *in2, long bo, long sb)              \
    {                                                                                     \
        D1_BEGIN                                                                          \
        out[oo + i_ * so] = in0[co + i_ * sc] ? in1[ao + i_ * sa] : in2[bo + i_ * sb];    \
    }                                                                                     \
    __kernel void em_where_##S##_nd(long n, em_geom g, __global T *out,                   \
                                    __global const uchar *in0, __global const T *in1,     \
                                    __global const T *in2)                                \
    {                                                                                     \
        ND_BEGIN                                                                          \
        out[o0] = in0[o1] ? in1[o2] : in2[o3];                                            \
    }

/* out (T) = m ? p0 : a; a = in0 (T), m = in1 (bool) */
#define EW_MASKED_FILL(T, S)                                                              \
    __kernel void em_masked_fill_##S##_1d(long n, __global T *out, long oo, long so,      \
                                          __global const T *in0, long ao, long sa,        \
                                          __global const uchar *in1, long mo, long sm,    \
                                          T p0)                                           \
    {                                                                                     \
        D1_BEGIN                                                                          \
        out[oo + i_ * so] = in1[mo + i_ * sm] ? p0 : in0[ao + i_ * sa];                   \
    }                                                                                     \
    __kernel void em_masked_fill_##S##_nd(long n, em_geom g, __global T *out,             \
                                          __global const T *in0,                          \
                                          __global const uchar *in1, T p0)                \
    {                                                                                     \
        ND_BEGIN                                                                          \
        out[o0] = in1[o2] ? p0 : in0[o1];                                                 \
    }

/* out (T) = p0 (the host converts: bool gets p != 0) */
#define EW_FILL(T, S)                                                                     \
    __kernel void em_fill_##S##_1d(long n, __global T *out, long oo, long so, T p0)       \
    {                                                                                     \
        D1_BEGIN                                                                          \
        out[oo + i_ * so] = p0;                                                           \
    }                                                                                     \
    __kernel void em_fill_##S##_nd(long n, em_geom g, __global T *out, T p0)              \
    {                                                                                     \
        ND_BEGIN                                                                          \
        out[o0] = p0;                                                                     \
    }

/* out (TO) = CONV(in0 (TI)) */
#define EW_COPY(TO, TI, SO, SI, CONV)                                                     \
    __kernel void em_copy_##SO##_##SI##_1d(long n, __global TO *out, long oo, long so,    \
                                           __global const TI *in0, long ao, long sa)      \
    {                                                                                     \
        D1_BEGIN                                                                          \
        const TI x = in0[ao + i_ * sa];                                                   \
        out[oo + i_ * so] = CONV;                                                         \
    }                                                                                     \
    __kernel void em_copy_##SO##_##SI##_nd(long n, em_geom g, __global TO *out,           \
                                           __global const TI *in0)                        \
    {                                                                                     \
        ND_BEGIN                                                                          \
        const TI x = in0[o1];                                                             \
        out[o0] = CONV;                                                                   \
    }

#define UNARY_OPS(T, S)                                                                   \
    EW_UNARY(neg, T, S, -x)                                                               \
    EW_UNARY(exp, T, S, exp(x))                                                           \
    EW_UNARY(log, T, S, log(x))                                                           \
    EW_UNARY(sqrt, T, S, sqrt(x))                                                         \
    EW_UNARY(abs, T, S, fabs(x))                                                          \
    EW_UNARY(relu, T, S, x < (T)0 ? (T)0 : x)                                             \
    EW_UNARY(tanh, T, S, em_tanh_##S(x))                                                  \
    EW_UNARY(sigmoid, T, S, em_sigmoid_##S(x))                                            \
    EW_UNARY(add_scalar, T, S, x + p0)                                                    \
    EW_UNARY(mul_scalar, T, S, x * p0)                                                    \
    EW_UNARY(rsub_scalar, T, S, p0 - x)                                                   \
    EW_UNARY(div_scalar, T, S, x / p0)                                                    \
    EW_UNARY(rdiv_scalar, T, S, p0 / x)                                                   \
    EW_UNARY(pow_scalar, T, S, em_pow_##S(x, p0))                                         \
    EW_UNARY(clamp, T, S, ((x < p0 ? p0 : x) > p1 ? p1 : (x < p0 ? p0 : x)))

/* maximum/minimum: a NaN on either side wins (PyTorch). Backward helpers select rather
 * than multiply, so an infinite gradient stays out of masked-off elements. */
#define BINARY_OPS(T, S)                                                                  \
    EW_BINARY(add, T, T, S, a + b)                                                        \
    EW_BINARY(sub, T, T, S, a - b)                                                        \
    EW_BINARY(mul, T, T, S, a * b)                                                        \
    EW_BINARY(div, T, T, S, a / b)                                                        \
    EW_BINARY(maximum, T, T, S, (a > b || a != a) ? a : b)                                \
    EW_BINARY(minimum, T, T, S, (a < b || a != a) ? a : b)                                \
    EW_BINARY(relu_backward, T, T, S, b <= (T)0 ? (T)0 : a)                               \
    EW_BINARY(clamp_backward, T, T, S, (p0 <= b && b <= p1) ? a : (T)0)                   \
    EW_BINARY(pow_backward, T, T, S, em_powbw_##S(a, b, p0))                              \
    EW_BINARY(tanh_backward, T, T, S, a * ((T)1 - b * b))                                 \
    EW_BINARY(sigmoid_backward, T, T, S, a * (((T)1 - b) * b))

/* comparisons give bool (uchar 0/1); the explicit select keeps OpenCL's vector-style
 * "true is -1" away even if a compiler widens the comparison */
#define COMPARE_OPS(T, S)                                                                 \
    EW_BINARY(lt, uchar, T, S, (uchar)((a < b) ? 1 : 0))                                  \
    EW_BINARY(le, uchar, T, S, (uchar)((a <= b) ? 1 : 0))                                 \
    EW_BINARY(gt, uchar, T, S, (uchar)((a > b) ? 1 : 0))                                  \
    EW_BINARY(ge, uchar, T, S, (uchar)((a >= b) ? 1 : 0))                                 \
    EW_BINARY(eq, uchar, T, S, (uchar)((a == b) ? 1 : 0))                                 \
    EW_BINARY(ne, uchar, T, S, (uchar)((a != b) ? 1 : 0))

#define CONV_PLAIN(TO) ((TO)x)
#define CONV_BOOL ((uchar)((x != 0) ? 1 : 0))

/* ------------------------------------------------------------------ instances */

UNARY_OPS(float, f32)
BINARY_OPS(float, f32)
COMPARE_OPS(float, f32)
COMPARE_OPS(uchar, bool)
EW_WHERE(float, f32)
EW_WHERE(uchar, bool)
EW_MASKED_FILL(float, f32)
EW_MASKED_FILL(uchar, bool)
EW_FILL(float, f32)
EW_FILL(uchar, bool)
EW_COPY(float, float, f32, f32, x)
EW_COPY(float, uchar, f32, bool, CONV_PLAIN(float))
EW_COPY(uchar, float, bool, f32, CONV_BOOL)
EW_COPY(uchar, uchar, bool, bool, x)

#ifdef EM_FP64
UNARY_OPS(double, f64)
BINARY_OPS(double, f64)
COMPARE_OPS(double, f64)
EW_WHERE(double, f64)
EW_MASKED_FILL(double, f64)
EW_FILL(double, f64)
EW_COPY(double, double, f64, f64, x)
EW_COPY(double, float, f64, f32, CONV_PLAIN(double))
EW_COPY(float, double, f32, f64, CONV_PLAIN(float))
EW_COPY(double, uchar, f64, bool, CONV_PLAIN(double))
EW_COPY(uchar, double, bool, f64, CONV_BOOL)
#endif

/* ------------------------------------------------------------------ random numbers */

/* Philox4x32-10 exactly as <ember/philox.h>: key = seed, counter = ctr + element index. */
inline uint4 em_philox(ulong seed, ulong ctr)
{
    uint c0 = (uint)ctr, c1 = (uint)(ctr >> 32), c2 = 0u, c3 = 0u;
    uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        const uint lo0 = 0xD2511F53u * c0, hi0 = mul_hi(0xD2511F53u, c0);
        const uint lo1 = 0xCD9E8D57u * c2, hi1 = mul_hi(0xCD9E8D57u, c2);
        const uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return (uint4)(c0, c1, c2, c3);
}

inline ulong em_bits53(uint hi, uint lo)
{
    return (((ulong)hi << 32) | (ulong)lo) >> 11;
}

/* The 53-bit integer converted to float (round to nearest even) is exactly the double
 * u rounded to float, since that double is exact: no double needed for the f32 u. */
inline float em_u01_f32(uint4 r)
{
    const float f = convert_float_rte(em_bits53(r.x, r.y)) * 0x1.0p-53f;
    return f < 1.0f ? f : 0x1.fffffep-1f;
}

#ifdef EM_FP64
#define RT double
inline double em_u01_f64(uint4 r)
{
    return (double)em_bits53(r.x, r.y) * 0x1.0p-53;
}

inline double em_normal(uint4 r)
{
    const double u1 = (double)(em_bits53(r.x, r.y) + 1) * 0x1.0p-53;
    const double u2 = (double)em_bits53(r.z, r.w) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}
/* the affine maps run in double and round once, as the spec (and the cpu backend) do */
#define UNIFORM_F32(r) ((float)(p0 + p1 * (double)em_u01_f32(r)))
#define NORMAL_F32(r) ((float)(p0 + p1 * em_normal(r)))
#else
/* Without doubles, f32 draws use float math: uniform values on [0, 1) stay bit-exact,
 * other ranges and normals agree with the cpu backend to float rounding only. */
#define RT float
inline float em_normal_f(uint4 r)
{
    const float u1 = (convert_float_rte(em_bits53(r.x, r.y)) + 1.0f) * 0x1.0p-53f;
    const float u2 = convert_float_rte(em_bits53(r.z, r.w)) * 0x1.0p-53f;
    return sqrt(-2.0f * log(u1)) * cos(6.283185307179586476925f * u2);
}
#define UNIFORM_F32(r) (p0 + p1 * em_u01_f32(r))
#define NORMAL_F32(r) (p0 + p1 * em_normal_f(r))
#endif

/* p0, p1: (low, high - low) for uniform, (mean, std) for normal */
#define EW_RNG(NAME, T, S, EXPR)                                                          \
    __kernel void em_##NAME##_##S##_1d(long n, __global T *out, long oo, long so,         \
                                       ulong seed, ulong ctr, RT p0, RT p1)               \
    {                                                                                     \
        D1_BEGIN                                                                          \
        const uint4 r = em_philox(seed, ctr + (ulong)i_);                                 \
        out[oo + i_ * so] = (EXPR);                                                       \
    }                                                                                     \
    __kernel void em_##NAME##_##S##_nd(long n, em_geom g, __global T *out, ulong seed,    \
                                       ulong ctr, RT p0, RT p1)                           \
    {                                                                                     \
        ND_BEGIN                                                                          \
        const uint4 r = em_philox(seed, ctr + (ulong)i_);                                 \
        out[o0] = (EXPR);                                                                 \
    }

EW_RNG(rng_uniform, float, f32, UNIFORM_F32(r))
EW_RNG(rng_normal, float, f32, NORMAL_F32(r))
#ifdef EM_FP64
EW_RNG(rng_uniform, double, f64, p0 + p1 * em_u01_f64(r))
EW_RNG(rng_normal, double, f64, p0 + p1 * em_normal(r))
#endif

/* ------------------------------------------------------------------ gemm */

/* C[m x n] = alpha * op(A) op(B) + beta * C, per batch (get_global_id(2)).
 * A work-group of RT x RT work-items computes a TS x TS tile of C, each work-item a
 * WPT x WPT block of registers at rows ty + i*RT and columns tx + j*RT (strided, so that
 * neighbouring work-items touch neighbouring columns: conflict-free local reads and
 * coalesced stores). Tiles of op(A) (TS x TK) and op(B) (TK x TS) are staged in local
 * memory, k-major; loads follow the storage order of A and B whatever the transpose, and
 * zero-fill outside the matrix, so every m, n, k works with the same code. */
#define GEMM_WPT 4
#define GEMM_RT (EM_GEMM_TS / GEMM_WPT)
#define GEMM_NT (GEMM_RT * GEMM_RT)

#define GEMM_KERNEL(T, S)                                                                 \
    __kernel __attribute__((reqd_work_group_size(GEMM_RT, GEMM_RT, 1)))                   \
    void em_gemm_##S(long m, long n, long k, T alpha, T beta,                             \
                     __global const T *A, long a_off, long lda, long a_bs,                \
                     __global const T *B, long b_off, long ldb, long b_bs,                \
                     __global T *C, long c_off, long ldc, long c_bs, int ta, int tb)      \
    {                                                                                     \
        __local T As[EM_GEMM_TK][EM_GEMM_TS + 1];                                         \
        __local T Bs[EM_GEMM_TK][EM_GEMM_TS + 1];                                         \
        const int tx = (int)get_local_id(0), ty = (int)get_local_id(1);                   \
        const int tid = ty * GEMM_RT + tx;                                                \
        const long col0 = (long)get_group_id(0) * EM_GEMM_TS;                             \
        const long row0 = (long)get_group_id(1) * EM_GEMM_TS;                             \
        const long bt = (long)get_global_id(2);                                           \
        A += a_off + bt * a_bs;                                                           \
        B += b_off + bt * b_bs;                                                           \
        C += c_off + bt * c_bs;                                                           \
        T acc[GEMM_WPT][GEMM_WPT];                                                        \
        for (int i = 0; i < GEMM_WPT; i++)                                                \
            for (int j = 0; j < GEMM_WPT; j++)                                            \
                acc[i][j] = (T)0;                                                         \
        for (long p0 = 0; p0 < k; p0 += EM_GEMM_TK) {                                     \
            for (int l = tid; l < EM_GEMM_TS * EM_GEMM_TK; l += GEMM_NT) {                \
                int r, c; /* r: row of op(A) in the tile, c: its k index */               \
                if (ta) {      /* A stored k x m: read along m */                         \
                    r = l % EM_GEMM_TS;                                                   \
                    c = l / EM_GEMM_TS;                                                   \
                } else {       /* A stored m x k: read along k */                         \
                    r = l / EM_GEMM_TK;                                                   \
                    c = l % EM_GEMM_TK;                                                   \
                }                                                                         \
                const long gr = row0 + r, gc = p0 + c;                                    \
                T v = (T)0;                                                               \
                if (gr < m && gc < k)                                                     \
                    v = ta ? A[gc * lda + gr] : A[gr * lda + gc];                         \
                As[c][r] = v;                                                             \
                int kr, cc; /* kr: k index of op(B), cc: its column in the tile */        \
                if (tb) {      /* B stored n x k: read along k */                         \
                    kr = l % EM_GEMM_TK;                                                  \
                    cc = l / EM_GEMM_TK;                                                  \
                } else {       /* B stored k x n: read along n */                         \
                    kr = l / EM_GEMM_TS;                                                  \
                    cc = l % EM_GEMM_TS;                                                  \
                }                                                                         \
                const long gk = p0 + kr, gn = col0 + cc;                                  \
                T w = (T)0;                                                               \
                if (gk < k && gn < n)                                                     \
                    w = tb ? B[gn * ldb + gk] : B[gk * ldb + gn];                         \
                Bs[kr][cc] = w;                                                           \
            }                                                                             \
            barrier(CLK_LOCAL_MEM_FENCE);                                                 \
            for (int q = 0; q < EM_GEMM_TK; q++) {                                        \
                T av[GEMM_WPT], bv[GEMM_WPT];                                             \
                for (int i = 0; i < GEMM_WPT; i++)                                        \
                    av[i] = As[q][ty + i * GEMM_RT];                                      \
                for (int j = 0; j < GEMM_WPT; j++)                                        \
                    bv[j] = Bs[q][tx + j * GEMM_RT];                                      \
                for (int i = 0; i < GEMM_WPT; i++)                                        \
                    for (int j = 0; j < GEMM_WPT; j++)                                    \
                        acc[i][j] = fma(av[i], bv[j], acc[i][j]);                         \
            }                                                                             \
            barrier(CLK_LOCAL_MEM_FENCE);                                                 \
        }                                                                                 \
        for (int i = 0; i < GEMM_WPT; i++) {                                              \
            const long r = row0 + ty + i * GEMM_RT;                                       \
            if (r >= m)                                                                   \
                break;                                                                    \
            for (int j = 0; j < GEMM_WPT; j++) {                                          \
                const long c = col0 + tx + j * GEMM_RT;                                   \
                if (c < n) {                                                              \
                    T v = alpha * acc[i][j];                                              \
                    if (beta != (T)0)                                                     \
                        v += beta * C[r * ldc + c];                                       \
                    C[r * ldc + c] = v;                                                   \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }

GEMM_KERNEL(float, f32)
#ifdef EM_FP64
GEMM_KERNEL(double, f64)
#endif

/* Register-blocked gemm for CPU devices (PoCL and the like). There, local memory is
 * ordinary cache and every barrier turns into a loop over the work-group's work-items
 * with the live registers spilled to memory in between, so the tiled kernel above runs
 * at a few GFLOP/s. This one has no barriers: a work-item computes an MR x NR block in
 * vector registers (NR-wide OpenCL vectors map onto AVX lanes), streaming a row of op(B)
 * and MR elements of op(A) per k step, like a BLAS micro-kernel. Work-groups run down a
 * column panel (local size 1 x LY), so the panel of B stays in cache across them.
 * Rows past m read row m-1 and columns past n read column n-1 (always valid memory); those
 * results are never stored. */
#define GEMMR_MR 6

/* Element (i, p) of op(A) is A[a_i + p * aps] and element (p, j) of op(B) is
 * B[p * bps + j * bcs] whatever the transposes, so the k loop has no branch. The block is
 * MR rows of two VW-wide vectors, spelled out: compilers keep such accumulators in
 * registers, not in a private array (and VW of 8 floats / 4 doubles is one AVX register;
 * wider OpenCL vectors would change the calling convention PoCL warns about). LOADB sets
 * b0 and b1, the k-th row of op(B) at columns j0..j0+2*VW-1. */
#define GEMMR_FMA(VT, i)                                                                  \
    {                                                                                     \
        const VT a_ = (VT)A[a##i + pa];                                                   \
        c##i##0 = fma(a_, b0, c##i##0);                                                   \
        c##i##1 = fma(a_, b1, c##i##1);                                                   \
    }

#define GEMMR_LOOP(VT, LOADB)                                                             \
    for (long p = 0; p < k; p++) {                                                        \
        VT b0, b1;                                                                        \
        LOADB;                                                                            \
        const long pa = p * aps;                                                          \
        GEMMR_FMA(VT, 0)                                                                  \
        GEMMR_FMA(VT, 1)                                                                  \
        GEMMR_FMA(VT, 2)                                                                  \
        GEMMR_FMA(VT, 3)                                                                  \
        GEMMR_FMA(VT, 4)                                                                  \
        GEMMR_FMA(VT, 5)                                                                  \
    }

#define GEMMR_STORE(T, VT, VW, VLOAD, VSTORE, i)                                          \
    if (i0 + i < m) {                                                                     \
        __global T *cr = C + (i0 + i) * ldc + j0;                                         \
        VT v0 = alpha * c##i##0, v1 = alpha * c##i##1;                                    \
        if (nc == 2 * VW) {                                                               \
            if (beta != (T)0) {                                                           \
                v0 += beta * VLOAD(0, cr);                                                \
                v1 += beta * VLOAD(0, cr + VW);                                           \
            }                                                                             \
            VSTORE(v0, 0, cr);                                                            \
            VSTORE(v1, 0, cr + VW);                                                       \
        } else {                                                                          \
            T tv[2 * VW];                                                                 \
            VSTORE(v0, 0, tv);                                                            \
            VSTORE(v1, 0, tv + VW);                                                       \
            for (int c = 0; c < nc; c++)                                                  \
                cr[c] = beta != (T)0 ? tv[c] + beta * cr[c] : tv[c];                      \
        }                                                                                 \
    }

#define GEMM_REG_KERNEL(T, S, VT, VW, VLOAD, VSTORE)                                      \
    __kernel void em_gemmr_##S(long m, long n, long k, T alpha, T beta,                   \
                               __global const T *A, long a_off, long lda, long a_bs,      \
                               __global const T *B, long b_off, long ldb, long b_bs,      \
                               __global T *C, long c_off, long ldc, long c_bs, int ta,    \
                               int tb)                                                    \
    {                                                                                     \
        const long j0 = (long)get_global_id(0) * (2 * VW);                                \
        const long i0 = (long)get_global_id(1) * GEMMR_MR;                                \
        const long bt = (long)get_global_id(2);                                           \
        if (j0 >= n || i0 >= m)                                                           \
            return;                                                                       \
        A += a_off + bt * a_bs;                                                           \
        B += b_off + bt * b_bs;                                                           \
        C += c_off + bt * c_bs;                                                           \
        const long aps = ta ? lda : 1, ars = ta ? 1 : lda;                                \
        const long bps = tb ? 1 : ldb, bcs = tb ? ldb : 1;                                \
        const long a0 = min(i0 + 0, m - 1) * ars, a1 = min(i0 + 1, m - 1) * ars;          \
        const long a2 = min(i0 + 2, m - 1) * ars, a3 = min(i0 + 3, m - 1) * ars;          \
        const long a4 = min(i0 + 4, m - 1) * ars, a5 = min(i0 + 5, m - 1) * ars;          \
        VT c00 = (VT)0, c01 = (VT)0, c10 = (VT)0, c11 = (VT)0, c20 = (VT)0, c21 = (VT)0;  \
        VT c30 = (VT)0, c31 = (VT)0, c40 = (VT)0, c41 = (VT)0, c50 = (VT)0, c51 = (VT)0;  \
        if (!tb && j0 + 2 * VW <= n) {                                                    \
            GEMMR_LOOP(VT, b0 = VLOAD(0, B + p * ldb + j0);                               \
                       b1 = VLOAD(0, B + p * ldb + j0 + VW))                              \
        } else {                                                                          \
            long bo[2 * VW];                                                              \
            T tmp[2 * VW];                                                                \
            for (int c = 0; c < 2 * VW; c++)                                              \
                bo[c] = min(j0 + c, n - 1) * bcs;                                         \
            GEMMR_LOOP(VT, for (int c = 0; c < 2 * VW; c++) tmp[c] = B[bo[c] + p * bps];  \
                       b0 = VLOAD(0, tmp); b1 = VLOAD(0, tmp + VW))                       \
        }                                                                                 \
        const long nc = min((long)(2 * VW), n - j0);                                      \
        GEMMR_STORE(T, VT, VW, VLOAD, VSTORE, 0)                                          \
        GEMMR_STORE(T, VT, VW, VLOAD, VSTORE, 1)                                          \
        GEMMR_STORE(T, VT, VW, VLOAD, VSTORE, 2)                                          \
        GEMMR_STORE(T, VT, VW, VLOAD, VSTORE, 3)                                          \
        GEMMR_STORE(T, VT, VW, VLOAD, VSTORE, 4)                                          \
        GEMMR_STORE(T, VT, VW, VLOAD, VSTORE, 5)                                          \
    }

GEMM_REG_KERNEL(float, f32, float8, 8, vload8, vstore8)
#ifdef EM_FP64
GEMM_REG_KERNEL(double, f64, double4, 4, vload4, vstore4)
#endif
