/* backends/cuda/cuda_math.h — the logic of the cuda backend's ABI 1.2 work that does not
 * need a GPU, as __host__ __device__ code shared by the kernels (cuda_kernels.cu,
 * cuda_math.cu, cuda_reduce.cu, cuda_dim.cu, cuda_gather.cu) and the host unit tests
 * (tests/test_cuda_math_host.c, tests/test_cuda_dim_host.c, plain C11): the integer dtypes
 * on the kernels of 1.0 (wrapping arithmetic, exact scalars, conversions), the new unary
 * and binary float ops (log1p .. sign, pow, floor_divide, remainder), the rules and launch
 * shapes of the kernels along one dim (max_dim, min_dim, softmax), and the geometry of
 * the indexing kernels.
 *
 * Integer arithmetic is done in the unsigned type of the same width, so it wraps (two's
 * complement, u8 modulo 256) with no undefined behaviour; the signed result is the
 * conversion back, which gcc and nvcc define as modular. Plain C11 and CUDA C++17, every
 * function static inline. */
#ifndef EMBER_CUDA_MATH_H
#define EMBER_CUDA_MATH_H

#include "cuda_index.h"

/* ================================================================== op lists */

/* Integer dtypes on the unary kernels of 1.0: out = f(x, ip0, ip1) */
#define EMCU_INT_UNARY_OPS(X)                                                             \
    X(neg) X(abs) X(add_scalar) X(mul_scalar) X(rsub_scalar) X(clamp)

/* Integer dtypes on the binary kernels of 1.0: out = f(a, b) */
#define EMCU_INT_BINARY_OPS(X) X(add) X(sub) X(mul) X(maximum) X(minimum)

/* The kernels of 1.2 that also take integer dtypes are sign (out = f(x)), floor_divide and
 * remainder (out = f(a, b)). */

/* ABI 1.2 unary float ops: out = f(x) */
#define EMCU_MATH_UNARY_OPS(X)                                                            \
    X(log1p) X(expm1) X(sin) X(cos) X(erf) X(floor) X(ceil) X(round) X(sign)

/* ================================================================== integer ops
 * Sign and NaN tests per dtype, so that no comparison is constant for a type (gcc's
 * -Wtype-limits and -Wtautological-compare). */
EMCU_HD int emcu_isneg_i64(int64_t x) { return x < 0; }
EMCU_HD int emcu_isneg_i32(int32_t x) { return x < 0; }
EMCU_HD int emcu_isneg_u8(uint8_t x) { (void)x; return 0; }
EMCU_HD int emcu_isnan_f32(float x) { return x != x; }
EMCU_HD int emcu_isnan_f64(double x) { return x != x; }
EMCU_HD int emcu_isnan_i64(int64_t x) { (void)x; return 0; }
EMCU_HD int emcu_isnan_i32(int32_t x) { (void)x; return 0; }
EMCU_HD int emcu_isnan_u8(uint8_t x) { (void)x; return 0; }

/* S: dtype suffix, T: the type, U: its unsigned counterpart. ip0 / ip1 are the exact
 * scalars of ip[]; for +, - and * truncating them to the width first gives the same
 * wrapped result, so they are simply converted to U. clamp compares in int64 (a bound beyond the
 * dtype's range is still a bound); an absent bound is INT64_MIN / INT64_MAX. */
#define EMCU_DEF_INT_OPS(S, T, U)                                                         \
    EMCU_HD T emcu_neg_##S(T x, int64_t p0, int64_t p1)                                   \
    {                                                                                     \
        (void)p0;                                                                         \
        (void)p1;                                                                         \
        return (T)(U)((U)0 - (U)x);                                                       \
    }                                                                                     \
    EMCU_HD T emcu_abs_##S(T x, int64_t p0, int64_t p1)                                   \
    {                                                                                     \
        (void)p0;                                                                         \
        (void)p1;                                                                         \
        return emcu_isneg_##S(x) ? (T)(U)((U)0 - (U)x) : x;                               \
    }                                                                                     \
    EMCU_HD T emcu_add_scalar_##S(T x, int64_t p0, int64_t p1)                            \
    {                                                                                     \
        (void)p1;                                                                         \
        return (T)(U)((U)x + (U)p0);                                                      \
    }                                                                                     \
    EMCU_HD T emcu_mul_scalar_##S(T x, int64_t p0, int64_t p1)                            \
    {                                                                                     \
        (void)p1;                                                                         \
        return (T)(U)((U)x * (U)p0);                                                      \
    }                                                                                     \
    EMCU_HD T emcu_rsub_scalar_##S(T x, int64_t p0, int64_t p1)                           \
    {                                                                                     \
        (void)p1;                                                                         \
        return (T)(U)((U)p0 - (U)x);                                                      \
    }                                                                                     \
    /* min(max(x, lo), hi); lo > hi gives hi, as for floats */                            \
    EMCU_HD T emcu_clamp_##S(T x, int64_t p0, int64_t p1)                                 \
    {                                                                                     \
        int64_t v = (int64_t)x;                                                           \
        v = v < p0 ? p0 : v;                                                              \
        v = v > p1 ? p1 : v;                                                              \
        return (T)(U)(uint64_t)v;                                                         \
    }                                                                                     \
    EMCU_HD T emcu_sign_##S(T x) { return (T)((x > 0) - emcu_isneg_##S(x)); }             \
    EMCU_HD T emcu_add_##S(T a, T b) { return (T)(U)((U)a + (U)b); }                      \
    EMCU_HD T emcu_sub_##S(T a, T b) { return (T)(U)((U)a - (U)b); }                      \
    EMCU_HD T emcu_mul_##S(T a, T b) { return (T)(U)((U)a * (U)b); }                      \
    EMCU_HD T emcu_maximum_##S(T a, T b) { return a < b ? b : a; }                        \
    EMCU_HD T emcu_minimum_##S(T a, T b) { return b < a ? b : a; }                        \
    /* Python's //: truncation, then one less when the signs differ and it was inexact.   \
     * A zero divisor never comes from the core (0 here, no trap); x // -1 wraps. */      \
    EMCU_HD T emcu_floor_divide_##S(T a, T b)                                             \
    {                                                                                     \
        if (b == 0)                                                                       \
            return (T)0;                                                                  \
        if (emcu_isneg_##S(b) && b == (T)-1)                                              \
            return (T)(U)((U)0 - (U)a);                                                   \
        const T q = (T)(a / b), r = (T)(a % b);                                           \
        return r != 0 && emcu_isneg_##S(a) != emcu_isneg_##S(b) ? (T)(q - 1) : q;         \
    }                                                                                     \
    /* Python's %: the sign of b */                                                       \
    EMCU_HD T emcu_remainder_##S(T a, T b)                                                \
    {                                                                                     \
        if (b == 0 || (emcu_isneg_##S(b) && b == (T)-1))                                  \
            return (T)0;                                                                  \
        const T r = (T)(a % b);                                                           \
        return r != 0 && emcu_isneg_##S(r) != emcu_isneg_##S(b) ? (T)(r + b) : r;         \
    }

EMCU_DEF_INT_OPS(i64, int64_t, uint64_t)
EMCU_DEF_INT_OPS(i32, int32_t, uint32_t)
EMCU_DEF_INT_OPS(u8, uint8_t, uint8_t)

EMCU_DEF_COMPARE_OPS(i64, int64_t)
EMCU_DEF_COMPARE_OPS(i32, int32_t)
EMCU_DEF_COMPARE_OPS(u8, uint8_t)

/* ================================================================== conversions
 * fill / masked_fill of an integer dtype: the exact ip[0], wrapped to the width (the core
 * passes values in range). */
EMCU_HD int64_t emcu_scalar_i64(int64_t v) { return v; }
EMCU_HD int32_t emcu_scalar_i32(int64_t v) { return (int32_t)(uint32_t)(uint64_t)v; }
EMCU_HD uint8_t emcu_scalar_u8(int64_t v) { return (uint8_t)(uint64_t)v; }

/* float -> integer (copy, and a masked_fill value given only as a double): truncation
 * toward zero, saturating at the dtype's range, NaN -> 0 (as the cpu backend). f32 values
 * go through double exactly. */
EMCU_HD int64_t emcu_f2i_i64(double x)
{
    if (x != x)
        return 0;
    if (x >= 9223372036854775808.0)
        return INT64_MAX;
    if (x <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)x;
}

EMCU_HD int32_t emcu_f2i_i32(double x)
{
    if (x != x)
        return 0;
    if (x >= 2147483647.0)
        return INT32_MAX;
    if (x <= -2147483648.0)
        return INT32_MIN;
    return (int32_t)x;
}

EMCU_HD uint8_t emcu_f2i_u8(double x)
{
    if (x != x || x <= 0.0)
        return 0;
    if (x >= 255.0)
        return 255;
    return (uint8_t)x;
}

/* ================================================================== float ops of 1.2
 * Each mirrors PyTorch 1.13's scalar code (and the cpu backend): round is nearbyint
 * (halves to even); sign gives +0 for -0 and NaN (PyTorch); floor_divide and remainder are
 * PyTorch's div_floor / remainder formulas, IEEE division for a zero divisor. */
#define EMCU_DEF_MATH_OPS(S, T, LOG1P, EXPM1, SIN, COS, ERF, FLOOR, CEIL, RINT, POW, FMOD, \
                          COPYSIGN)                                                       \
    EMCU_HD T emcu_log1p_##S(T x) { return LOG1P(x); }                                    \
    EMCU_HD T emcu_expm1_##S(T x) { return EXPM1(x); }                                    \
    EMCU_HD T emcu_sin_##S(T x) { return SIN(x); }                                        \
    EMCU_HD T emcu_cos_##S(T x) { return COS(x); }                                        \
    EMCU_HD T emcu_erf_##S(T x) { return ERF(x); }                                        \
    EMCU_HD T emcu_floor_##S(T x) { return FLOOR(x); }                                    \
    EMCU_HD T emcu_ceil_##S(T x) { return CEIL(x); }                                      \
    EMCU_HD T emcu_round_##S(T x) { return RINT(x); }                                     \
    EMCU_HD T emcu_sign_##S(T x) { return x > 0 ? (T)1 : x < 0 ? (T)-1 : (T)0; }           \
    EMCU_HD T emcu_pow_tensor_##S(T a, T b) { return POW(a, b); }                         \
    EMCU_HD T emcu_remainder_##S(T a, T b)                                                \
    {                                                                                     \
        T m = FMOD(a, b);                                                                 \
        if (m != 0 && ((b < 0) != (m < 0)))                                               \
            m += b;                                                                       \
        return m;                                                                         \
    }                                                                                     \
    EMCU_HD T emcu_floor_divide_##S(T a, T b)                                             \
    {                                                                                     \
        if (b == 0)                                                                       \
            return a / b;                                                                 \
        const T m = FMOD(a, b);                                                           \
        T q = (a - m) / b;                                                                \
        if (m != 0 && ((b < 0) != (m < 0)))                                               \
            q -= (T)1;                                                                    \
        if (q == 0)                                                                       \
            return COPYSIGN((T)0, a / b);                                                 \
        T f = FLOOR(q);                                                                   \
        if (q - f > (T)0.5)                                                               \
            f += (T)1;                                                                    \
        return f;                                                                         \
    }

EMCU_DEF_MATH_OPS(f32, float, log1pf, expm1f, sinf, cosf, erff, floorf, ceilf, rintf, powf, fmodf,
                  copysignf)
EMCU_DEF_MATH_OPS(f64, double, log1p, expm1, sin, cos, erf, floor, ceil, rint, pow, fmod, copysign)

/* ================================================================== max_dim / min_dim
 * Is candidate (v, i) preferred over the current best (b, bi) for a maximum (is_max) or a
 * minimum? A NaN beats every number (the first NaN wins); equal values go to the lower
 * index. A total order on (value, index) pairs, so any combination order gives the one
 * answer: the first index of the extreme value. emcu_arg_take folds a candidate into a
 * running best (bi < 0: none yet; a candidate with i < 0 is no candidate), both for a
 * thread's own scan and for combining two threads' results in a block's tree. */
#define EMCU_DEF_ARG_OPS(S, T)                                                            \
    EMCU_HD int emcu_arg_better_##S(T v, int64_t i, T b, int64_t bi, int is_max)          \
    {                                                                                     \
        const int vn = emcu_isnan_##S(v), bn = emcu_isnan_##S(b);                         \
        if (vn || bn)                                                                     \
            return vn && (!bn || i < bi);                                                 \
        if (v == b)                                                                       \
            return i < bi;                                                                \
        return is_max ? v > b : v < b;                                                    \
    }                                                                                     \
    EMCU_HD void emcu_arg_take_##S(T v, int64_t i, T *b, int64_t *bi, int is_max)         \
    {                                                                                     \
        if (i >= 0 && (*bi < 0 || emcu_arg_better_##S(v, i, *b, *bi, is_max))) {          \
            *b = v;                                                                       \
            *bi = i;                                                                      \
        }                                                                                 \
    }

EMCU_DEF_ARG_OPS(f32, float)
EMCU_DEF_ARG_OPS(f64, double)
EMCU_DEF_ARG_OPS(i64, int64_t)
EMCU_DEF_ARG_OPS(i32, int32_t)
EMCU_DEF_ARG_OPS(u8, uint8_t)

/* ================================================================== (outer, n, inner)
 * The kernels along one dim (max_dim, min_dim, softmax, log_softmax) see 3-D views and
 * work on rows: row r of outer * inner is (o, i) = (r / inner, r % inner), its elements
 * j = 0 .. n-1 at o * st[0] + j * st[1] + i * st[2]. Two launch shapes:
 *   block   a block of EMCU_DIM_THREADS threads per row (grid-stride over rows), each
 *           thread striding over j, combined by a tree in shared memory: long rows;
 *   thread  a thread per row (grid-stride), scanning j in order: short rows, or many
 *           rows side by side along a large inner dim (neighbouring threads read
 *           neighbouring elements when inner is the contiguous dim). */
#define EMCU_DIM_THREADS 256
#define EMCU_DIM_BLOCK_MIN_N 64      /* shorter rows: a thread each */
#define EMCU_DIM_WIDE_INNER 32       /* inner at least this: a thread per row ... */
#define EMCU_DIM_FEW_ROWS 2048       /* ... unless there are too few rows to fill a GPU */

enum { EMCU_DIM_THREAD = 0, EMCU_DIM_BLOCK = 1 };

EMCU_HD int emcu_dim_mode(int64_t outer, int64_t n, int64_t inner)
{
    if (n < EMCU_DIM_BLOCK_MIN_N)
        return EMCU_DIM_THREAD;
    if (inner < EMCU_DIM_WIDE_INNER || outer * inner < EMCU_DIM_FEW_ROWS)
        return EMCU_DIM_BLOCK;
    return EMCU_DIM_THREAD;
}

/* Offset of row r's element j in a view with strides st (inner >= 1). */
EMCU_HD int64_t emcu_dim_off(const int64_t *st, int64_t inner, int64_t r, int64_t j)
{
    const int64_t o = r / inner, i = r - o * inner;
    return o * st[0] + j * st[1] + i * st[2];
}

/* ================================================================== indexing geometry
 * gather, index_select and scatter_add are elementwise loops over the index's positions q
 * with three operands (emcu_geom, cuda_index.h); the operand that the index points into
 * gets stride 0 along the indexed dim, and the kernel adds index[q] times its real stride
 * there.
 *   gather:       over out's shape: 0 out, 1 index, 2 source;   out[o0] = src[o2 + x * s]
 *   index_select: over out's (outer, m, inner): 0 out, 1 index (0, its stride, 0),
 *                 2 source (its outer and inner strides, 0);     likewise
 *   scatter_add:  over the index's shape: 0 index, 1 source, 2 out; out[o2 + x * s] += src[o1]
 * Returns the number of positions; *s is the indexed dim's stride of the pointed-into
 * view. */
EMCU_HD int64_t emcu_gather_geom(emcu_geom *g, const em_kview *out, const em_kview *index,
                                 const em_kview *src, int dim, int64_t *s)
{
    const em_kview *v[3] = {out, index, src};
    const int64_t n = emcu_geom_init(g, v, 3);
    *s = src->strides[dim];
    g->st[2][dim] = 0;
    return n;
}

EMCU_HD int64_t emcu_scatter_geom(emcu_geom *g, const em_kview *out, const em_kview *index,
                                  const em_kview *src, int dim, int64_t *s)
{
    const em_kview *v[3] = {index, src, out};
    const int64_t n = emcu_geom_init(g, v, 3);
    *s = out->strides[dim];
    g->st[2][dim] = 0;
    return n;
}

EMCU_HD int64_t emcu_index_select_geom(emcu_geom *g, const em_kview *out,
                                       const em_kview *index, const em_kview *src, int64_t *s)
{
    const em_kview *v[1] = {out};
    const int64_t n = emcu_geom_init(g, v, 1);
    g->nops = 3;
    g->st[1][1] = index->strides[0];
    g->st[2][0] = src->strides[0];
    g->st[2][2] = src->strides[2];
    *s = src->strides[1];
    return n;
}

/* ================================================================== adam (ABI 1.3)
 * One element of the fused optimizer step, as ember/backend.h defines it (cuda_optim.cu runs
 * it per element; tests/test_cuda_math_host.c compares it with the cpu backend's kernel).
 * flags: EMCU_ADAM_* bits. sc: the step's scalars converted to T, in the order of
 * emcu_adam_scalars. m, v, vmax are read only where the flags say. */
#define EMCU_ADAM_MAXIMIZE 1
#define EMCU_ADAM_L2 2          /* Adam's weight decay: x += p * wd */
#define EMCU_ADAM_DECOUPLED 4   /* AdamW's: p *= 1 - lr * wd */
#define EMCU_ADAM_FIRST 8       /* no state yet: m, v, vmax unread */
#define EMCU_ADAM_AMSGRAD 16
#define EMCU_ADAM_NSC 9

/* The flags of a call: ip[0] adamw, ip[1] amsgrad, ip[2] maximize, ip[3] first; no weight
 * decay bit when fp[0] (weight_decay) is 0. */
EMCU_HD int emcu_adam_flags(const int64_t *ip, const double *fp)
{
    return (ip[2] ? EMCU_ADAM_MAXIMIZE : 0) |
           (fp[0] != 0 ? (ip[0] ? EMCU_ADAM_DECOUPLED : EMCU_ADAM_L2) : 0) |
           (ip[3] ? EMCU_ADAM_FIRST : 0) | (ip[1] ? EMCU_ADAM_AMSGRAD : 0);
}

/* b1, c1 = 1 - beta1, b2, c2 = 1 - beta2, wd, keep = 1 - lr * wd, s2 = sqrt(bc2), e, step =
 * lr / bc1, from p[] = lr, beta1, beta2, eps and fp[] = weight_decay, bc1, bc2; in double */
EMCU_HD void emcu_adam_scalars(const double *p, const double *fp, double *sc)
{
    const double lw = p[0] * fp[0];
    sc[0] = p[1];
    sc[1] = 1.0 - p[1];
    sc[2] = p[2];
    sc[3] = 1.0 - p[2];
    sc[4] = fp[0];
    sc[5] = 1.0 - lw;
    sc[6] = sqrt(fp[2]);
    sc[7] = p[3];
    sc[8] = p[0] / fp[1];
}

#define EMCU_DEF_ADAM(S, T, SQRT)                                                         \
    typedef struct emcu_adam_sc_##S {                                                     \
        T v[EMCU_ADAM_NSC];                                                               \
    } emcu_adam_sc_##S;                                                                   \
    EMCU_HD void emcu_adam_##S(int flags, const emcu_adam_sc_##S *sc, int64_t i, T *po,   \
                               T *mo, T *vo, T *xo, const T *pi, const T *gi, const T *mi, \
                               const T *vi, const T *xi)                                   \
    {                                                                                     \
        T p = pi[i];                                                                      \
        T x = gi[i];                                                                      \
        if (flags & EMCU_ADAM_MAXIMIZE)                                                   \
            x = -x;                                                                       \
        if (flags & EMCU_ADAM_L2)                                                         \
            x = x + p * sc->v[4];                                                         \
        if (flags & EMCU_ADAM_DECOUPLED)                                                  \
            p = p * sc->v[5];                                                             \
        const int first = (flags & EMCU_ADAM_FIRST) != 0;                                 \
        const T xc = x * sc->v[1], xx = (x * x) * sc->v[3];                               \
        const T m = first ? xc : mi[i] * sc->v[0] + xc;                                   \
        const T v = first ? xx : vi[i] * sc->v[2] + xx;                                   \
        T d = v;                                                                          \
        if (flags & EMCU_ADAM_AMSGRAD) {                                                  \
            if (!first) {                                                                 \
                const T a = xi[i];                                                        \
                d = (a > v || a != a) ? a : v;                                            \
            }                                                                             \
            xo[i] = d;                                                                    \
        }                                                                                 \
        mo[i] = m;                                                                        \
        vo[i] = v;                                                                        \
        po[i] = p - (m / (SQRT(d) / sc->v[6] + sc->v[7])) * sc->v[8];                    \
    }
EMCU_DEF_ADAM(f32, float, sqrtf)
EMCU_DEF_ADAM(f64, double, sqrt)

/* ================================================================== sgd (ABI 1.7)
 * One element of SGD's fused step, as ember/backend.h defines it (cuda_optim.cu runs it per
 * element; tests/test_cuda_math_host.c compares it with the cpu backend's kernel). sc: r, m,
 * c, wd (lr, momentum, 1 - dampening, weight_decay) converted to T. b is read only for a
 * momentum step after the first; b' is written only with momentum. */
#define EMCU_SGD_MAXIMIZE 1
#define EMCU_SGD_DECAY 2
#define EMCU_SGD_MOMENTUM 4
#define EMCU_SGD_FIRST 8
#define EMCU_SGD_NESTEROV 16
#define EMCU_SGD_NSC 4

/* The flags of a call: p[1] momentum, p[3] weight_decay; ip[0] nesterov, ip[1] maximize,
 * ip[2] first. */
EMCU_HD int emcu_sgd_flags(const double *p, const int64_t *ip)
{
    const int mom = p[1] != 0;
    return (ip[1] ? EMCU_SGD_MAXIMIZE : 0) | (p[3] != 0 ? EMCU_SGD_DECAY : 0) |
           (mom ? EMCU_SGD_MOMENTUM : 0) | (mom && ip[2] ? EMCU_SGD_FIRST : 0) |
           (mom && ip[0] ? EMCU_SGD_NESTEROV : 0);
}

/* r = lr, m = momentum, c = 1 - dampening, wd, from p[] = lr, momentum, dampening,
 * weight_decay; in double */
EMCU_HD void emcu_sgd_scalars(const double *p, double *sc)
{
    sc[0] = p[0];
    sc[1] = p[1];
    sc[2] = 1.0 - p[2];
    sc[3] = p[3];
}

#define EMCU_DEF_SGD(S, T)                                                                \
    typedef struct emcu_sgd_sc_##S {                                                      \
        T v[EMCU_SGD_NSC];                                                                \
    } emcu_sgd_sc_##S;                                                                    \
    EMCU_HD void emcu_sgd_##S(int flags, const emcu_sgd_sc_##S *sc, int64_t i, T *po,     \
                              T *bo, const T *pi, const T *gi, const T *bi)               \
    {                                                                                     \
        const T p = pi[i];                                                                \
        T x = gi[i];                                                                      \
        if (flags & EMCU_SGD_MAXIMIZE)                                                    \
            x = -x;                                                                       \
        if (flags & EMCU_SGD_DECAY)                                                       \
            x = x + p * sc->v[3];                                                         \
        if (flags & EMCU_SGD_MOMENTUM) {                                                  \
            const T b = (flags & EMCU_SGD_FIRST) ? x : bi[i] * sc->v[1] + x * sc->v[2];    \
            bo[i] = b;                                                                    \
            x = (flags & EMCU_SGD_NESTEROV) ? x + b * sc->v[1] : b;                       \
        }                                                                                 \
        po[i] = p - x * sc->v[0];                                                         \
    }
EMCU_DEF_SGD(f32, float)
EMCU_DEF_SGD(f64, double)

#endif
