/* backends/opencl/kernels_index.cl — indexing kernels of the OpenCL backend's program
 * (opencl_index.c launches them): index_select on (outer, n, inner) views, gather and
 * scatter_add on N-d views described by an em_geom over the index's shape. Indices are
 * i64 and in range (the core checked them); one out of range anyway reads as 0 and adds
 * nothing, so a bad index can never reach outside the views.
 *
 * scatter_add: "em_scatter_add" walks one line of the index along dim per work-item (lines
 * never hit the same output element, so no atomics and a fixed order); the "atomic"
 * variant takes one index element per work-item and adds atomically (f32: compare-and-swap
 * on the bits; i32: atomic_add; f64, i64: the 64-bit atomics of cl_khr_int64_base_atomics,
 * only where the host defines EM_INT64_ATOMICS). */
#ifdef EM_INT64_ATOMICS
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
#endif

/* Same layout as the host's ocl_igeom (opencl_index.c). */
typedef struct em_igeom {
    long outer, n, m, inner;
    long ioff, is0, is1, is2;
    long xoff, xs;
    long ooff, os0, os1, os2;
} em_igeom;

/* offsets of element i_ of the index's shape in operands 0..2, without dim's contribution
 * to operand SKIP (whose dim coordinate comes from the index) */
#define IX_BEGIN(SKIP)                                                                    \
    const long i_ = (long)get_global_id(0);                                               \
    if (i_ >= n)                                                                          \
        return;                                                                           \
    long o0 = g.off[0], o1 = g.off[1], o2 = g.off[2];                                     \
    {                                                                                     \
        long r_ = i_;                                                                     \
        for (int d_ = g.ndim - 1; d_ >= 0; d_--) {                                        \
            const long s_ = g.shape[d_];                                                  \
            const long q_ = r_ / s_;                                                      \
            const long c_ = r_ - q_ * s_;                                                 \
            r_ = q_;                                                                      \
            if (SKIP != 0 || d_ != dim)                                                   \
                o0 += c_ * g.st[0][d_];                                                   \
            if (SKIP != 1 || d_ != dim)                                                   \
                o1 += c_ * g.st[1][d_];                                                   \
            o2 += c_ * g.st[2][d_];                                                       \
        }                                                                                 \
    }

/* out[o, j, i] = x[o, idx[j], i] */
#define INDEX_SELECT(T, S)                                                                \
    __kernel void em_index_select_##S(long n, em_igeom g, __global T *out,                \
                                      __global const T *x, __global const long *idx)      \
    {                                                                                     \
        const long t = (long)get_global_id(0);                                            \
        if (t >= n)                                                                       \
            return;                                                                       \
        const long r = t / g.inner, i = t - r * g.inner;                                  \
        const long o = r / g.m, j = r - o * g.m;                                          \
        const long k = idx[g.xoff + j * g.xs];                                            \
        out[g.ooff + o * g.os0 + j * g.os1 + i * g.os2] =                                 \
            (k >= 0 && k < g.n) ? x[g.ioff + o * g.is0 + k * g.is1 + i * g.is2] : (T)0;   \
    }

/* operands: 0 out, 1 src (size ssize along dim), 2 index */
#define GATHER(T, S)                                                                      \
    __kernel void em_gather_##S(long n, em_geom g, long dim, long ssize, __global T *out, \
                                __global const T *src, __global const long *idx)          \
    {                                                                                     \
        IX_BEGIN(1)                                                                       \
        const long k = idx[o2];                                                           \
        out[o0] = (k >= 0 && k < ssize) ? src[o1 + k * g.st[1][dim]] : (T)0;              \
    }

/* operands: 0 out (size osize along dim), 1 index, 2 src; the geometry has dim collapsed
 * to 1 and the line is len long */
#define SCATTER_ADD(T, S, ADD)                                                            \
    __kernel void em_scatter_add_##S(long n, em_geom g, long dim, long osize, long len,   \
                                     __global T *out, __global const long *idx,           \
                                     __global const T *src)                               \
    {                                                                                     \
        IX_BEGIN(0)                                                                       \
        const long si = g.st[1][dim], ss = g.st[2][dim], so = g.st[0][dim];               \
        for (long j = 0; j < len; j++) {                                                  \
            const long k = idx[o1 + j * si];                                              \
            if (k >= 0 && k < osize) {                                                    \
                __global T *p = out + o0 + k * so;                                        \
                *p = ADD(*p, src[o2 + j * ss]);                                           \
            }                                                                             \
        }                                                                                 \
    }

#define SCATTER_ADD_ATOMIC(T, S, AADD)                                                    \
    __kernel void em_scatter_add_atomic_##S(long n, em_geom g, long dim, long osize,      \
                                            __global T *out, __global const long *idx,    \
                                            __global const T *src)                        \
    {                                                                                     \
        IX_BEGIN(0)                                                                       \
        const long k = idx[o1];                                                           \
        if (k >= 0 && k < osize)                                                          \
            AADD(out + o0 + k * g.st[0][dim], src[o2]);                                   \
    }

#define EM_FADD(a, b) ((a) + (b))
#define EM_ADD_I64(a, b) ((long)((ulong)(a) + (ulong)(b)))
#define EM_ADD_I32(a, b) ((int)((uint)(a) + (uint)(b)))
#define EM_ADD_U8(a, b) ((uchar)((a) + (b)))

inline void em_atomic_add_f32(__global float *p, float v)
{
    volatile __global uint *u = (volatile __global uint *)p;
    uint old = *u;
    for (;;) {
        const uint got = atomic_cmpxchg(u, old, as_uint(as_float(old) + v));
        if (got == old)
            break;
        old = got;
    }
}

inline void em_atomic_add_i32(__global int *p, int v)
{
    atomic_add((volatile __global int *)p, v);
}

#ifdef EM_INT64_ATOMICS
inline void em_atomic_add_i64(__global long *p, long v)
{
    atom_add((volatile __global long *)p, v);
}

#ifdef EM_FP64
inline void em_atomic_add_f64(__global double *p, double v)
{
    volatile __global ulong *u = (volatile __global ulong *)p;
    ulong old = *u;
    for (;;) {
        const ulong got = atom_cmpxchg(u, old, as_ulong(as_double(old) + v));
        if (got == old)
            break;
        old = got;
    }
}
#endif
#endif

/* ------------------------------------------------------------------ instances */

INDEX_SELECT(float, f32)
INDEX_SELECT(uchar, bool)
INDEX_SELECT(long, i64)
INDEX_SELECT(int, i32)
INDEX_SELECT(uchar, u8)
GATHER(float, f32)
GATHER(uchar, bool)
GATHER(long, i64)
GATHER(int, i32)
GATHER(uchar, u8)
SCATTER_ADD(float, f32, EM_FADD)
SCATTER_ADD(long, i64, EM_ADD_I64)
SCATTER_ADD(int, i32, EM_ADD_I32)
SCATTER_ADD(uchar, u8, EM_ADD_U8)
SCATTER_ADD_ATOMIC(float, f32, em_atomic_add_f32)
SCATTER_ADD_ATOMIC(int, i32, em_atomic_add_i32)
#ifdef EM_INT64_ATOMICS
SCATTER_ADD_ATOMIC(long, i64, em_atomic_add_i64)
#endif

#ifdef EM_FP64
INDEX_SELECT(double, f64)
GATHER(double, f64)
SCATTER_ADD(double, f64, EM_FADD)
#ifdef EM_INT64_ATOMICS
SCATTER_ADD_ATOMIC(double, f64, em_atomic_add_f64)
#endif
#endif
