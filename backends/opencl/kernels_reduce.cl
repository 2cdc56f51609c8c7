/* backends/opencl/kernels_reduce.cl — reductions of the OpenCL backend's program: sum and
 * prod over any set of dims as the host plans them (opencl_reduce.c), and the kernels along
 * the middle dim of a (outer, n, inner) view: max_dim / min_dim, softmax, log_softmax. Each
 * comes as "item" (a work-item per row) and "grp" (a work-group of EM_LS per row, a tree in
 * local memory) for long rows when there are few of them. Trees have a fixed shape, so
 * every result is deterministic. */

/* ------------------------------------------------------------------ sum, prod */

/* A reduction as the host plans it (opencl_reduce.c, reduce): M outputs indexed over the
 * kept dims (row-major), each the sum of L elements indexed over the reduced dims, cut
 * into nch chunks of `chunk` elements. Same layout as the host's ocl_rgeom. */
typedef struct em_rgeom {
    long ks[EM_MAX_DIMS], kist[EM_MAX_DIMS], kost[EM_MAX_DIMS];
    long rs[EM_MAX_DIMS], rist[EM_MAX_DIMS];
    long ioff, ooff;
    long M, L, nch, chunk;
    int nk, nr;
} em_rgeom;

/* f32 sums and products accumulate in double where there is one (as the cpu backend); else
 * in float, with the tree and block structure below keeping the error growth logarithmic.
 * i64 accumulates in ulong, where overflow wraps (the result is then PyTorch's). */
#ifdef EM_FP64
#define ACC_F32 double
#else
#define ACC_F32 float
#endif

/* input offset of output o (and its output offset in *oo) */
inline long em_kept(const em_rgeom *g, long o, long *oo)
{
    long in = 0, out = 0;
    for (int d = g->nk - 1; d >= 0; d--) {
        const long q = o / g->ks[d], c = o - q * g->ks[d];
        o = q;
        in += c * g->kist[d];
        out += c * g->kost[d];
    }
    *oo = out;
    return in;
}

inline long em_red(const em_rgeom *g, long r)
{
    if (g->nr == 1)
        return r * g->rist[0];
    long in = 0;
    for (int d = g->nr - 1; d >= 0; d--) {
        const long q = r / g->rs[d], c = r - q * g->rs[d];
        r = q;
        in += c * g->rist[d];
    }
    return in;
}

#define EM_ADD(a, b) ((a) + (b))
#define EM_MUL(a, b) ((a) * (b))

/* Work-group tree over EM_LS values in local memory; the result lands in sh[0]. */
#define TREE(sh, lid, OP)                                                                 \
    for (int s_ = EM_LS / 2; s_ > 0; s_ >>= 1) {                                          \
        if ((lid) < s_)                                                                   \
            sh[lid] = OP(sh[lid], sh[(lid) + s_]);                                        \
        barrier(CLK_LOCAL_MEM_FENCE);                                                     \
    }

/* grp: one work-group per (output, chunk), for reductions whose innermost dim is reduced:
 * work-items stride through the chunk (coalesced reads), then a tree. */
/* item: one work-item per (output, chunk), for reductions whose innermost dim is kept
 * (sum over leading dims) or that are short: neighbouring work-items read neighbouring
 * elements. The chunk is summed in blocks of 32 so the error grows with L/32 + 32. */
/* fin: one work-group per output over its nch partial results.
 * NAME is sum or prod, ID its identity, OP its operation. */
#define RED_KERNELS(NAME, T, S, ACC, ID, OP)                                              \
    __kernel void em_##NAME##_grp_##S(em_rgeom g, __global const T *x, __global T *out,        \
                                 __global ACC *part, ACC scale)                           \
    {                                                                                     \
        __local ACC sh[EM_LS];                                                            \
        const int lid = (int)get_local_id(0);                                             \
        const long grp = (long)get_group_id(0);                                           \
        const long o = grp / g.nch, ch = grp - o * g.nch;                                 \
        long oo;                                                                          \
        const long base = g.ioff + em_kept(&g, o, &oo);                                   \
        const long r0 = ch * g.chunk;                                                     \
        const long r1 = min(r0 + g.chunk, g.L);                                           \
        ACC acc = ID;                                                                      \
        if (g.nr == 1) {                                                                  \
            const long s = g.rist[0];                                                     \
            for (long r = r0 + lid; r < r1; r += EM_LS)                                   \
                acc = OP(acc, (ACC)x[base + r * s]);                                              \
        } else {                                                                          \
            for (long r = r0 + lid; r < r1; r += EM_LS)                                   \
                acc = OP(acc, (ACC)x[base + em_red(&g, r)]);                                      \
        }                                                                                 \
        sh[lid] = acc;                                                                    \
        barrier(CLK_LOCAL_MEM_FENCE);                                                     \
        TREE(sh, lid, OP)                                                                     \
        if (lid == 0) {                                                                   \
            if (g.nch == 1)                                                               \
                out[g.ooff + oo] = (T)(sh[0] * scale);                                    \
            else                                                                          \
                part[o * g.nch + ch] = sh[0];                                             \
        }                                                                                 \
    }                                                                                     \
    __kernel void em_##NAME##_item_##S(em_rgeom g, __global const T *x, __global T *out,       \
                                  __global ACC *part, ACC scale)                          \
    {                                                                                     \
        const long gid = (long)get_global_id(0);                                          \
        if (gid >= g.M * g.nch)                                                           \
            return;                                                                       \
        const long ch = gid / g.M, o = gid - ch * g.M;                                    \
        long oo;                                                                          \
        const long base = g.ioff + em_kept(&g, o, &oo);                                   \
        const long r0 = ch * g.chunk;                                                     \
        const long r1 = min(r0 + g.chunk, g.L);                                           \
        ACC acc = ID;                                                                      \
        for (long b = r0; b < r1; b += 32) {                                              \
            const long e = min(b + 32, r1);                                               \
            ACC blk = ID;                                                                  \
            if (g.nr == 1) {                                                              \
                const long s = g.rist[0];                                                 \
                for (long r = b; r < e; r++)                                              \
                    blk = OP(blk, (ACC)x[base + r * s]);                                          \
            } else {                                                                      \
                for (long r = b; r < e; r++)                                              \
                    blk = OP(blk, (ACC)x[base + em_red(&g, r)]);                                  \
            }                                                                             \
            acc = OP(acc, blk);                                                                   \
        }                                                                                 \
        if (g.nch == 1)                                                                   \
            out[g.ooff + oo] = (T)(acc * scale);                                          \
        else                                                                              \
            part[o * g.nch + ch] = acc;                                                   \
    }                                                                                     \
    __kernel void em_##NAME##_fin_##S(em_rgeom g, __global const ACC *part, __global T *out,   \
                                 ACC scale)                                               \
    {                                                                                     \
        __local ACC sh[EM_LS];                                                            \
        const int lid = (int)get_local_id(0);                                             \
        const long o = (long)get_group_id(0);                                             \
        long oo;                                                                          \
        em_kept(&g, o, &oo);                                                              \
        ACC acc = ID;                                                                      \
        for (long c = lid; c < g.nch; c += EM_LS)                                         \
            acc = OP(acc, part[o * g.nch + c]);                                                   \
        sh[lid] = acc;                                                                    \
        barrier(CLK_LOCAL_MEM_FENCE);                                                     \
        TREE(sh, lid, OP)                                                                     \
        if (lid == 0)                                                                     \
            out[g.ooff + oo] = (T)(sh[0] * scale);                                        \
    }

RED_KERNELS(sum, float, f32, ACC_F32, 0, EM_ADD)
RED_KERNELS(sum, long, i64, ulong, 0, EM_ADD)
RED_KERNELS(prod, float, f32, ACC_F32, 1, EM_MUL)
RED_KERNELS(prod, long, i64, ulong, 1, EM_MUL)
#ifdef EM_FP64
RED_KERNELS(sum, double, f64, double, 0, EM_ADD)
RED_KERNELS(prod, double, f64, double, 1, EM_MUL)
#endif

/* ------------------------------------------------------------------ along one dim */

/* Same layout as the host's ocl_dgeom: the input (outer, n, inner), the output (outer, n or
 * 1, inner) and max_dim / min_dim's i64 indices (outer, 1, inner), offsets and strides in
 * elements. Row r is (r / inner, r % inner): neighbouring work-items read neighbouring
 * elements when inner is the contiguous dim. */
typedef struct em_dgeom {
    long outer, n, inner;
    long ioff, is0, is1, is2;
    long ooff, os0, os1, os2;
    long xoff, xs0, xs2;
} em_dgeom;

/* v beats the best so far b: larger (smaller); a NaN beats every number and is beaten by
 * nothing, so the first NaN wins; equal values keep the first index */
#define EM_MAX_BEATS(v, b) ((v) > (b) || ((v) != (v) && (b) == (b)))
#define EM_MIN_BEATS(v, b) ((v) < (b) || ((v) != (v) && (b) == (b)))

#define ROW_BEGIN                                                                         \
    const long o_ = r_ / g.inner, i_ = r_ - o_ * g.inner;                                 \
    const long base = g.ioff + o_ * g.is0 + i_ * g.is2;

/* grp: each work-item scans n in steps of EM_LS, then a tree that prefers the winner and,
 * between equals (or two NaNs), the smaller index: the result is the first best, as in
 * the item kernel. */
#define ARG_DIM_KERNELS(NAME, T, S, BEATS)                                                \
    __kernel void em_##NAME##_item_##S(em_dgeom g, __global const T *x, __global T *out,  \
                                       __global long *idx)                                \
    {                                                                                     \
        const long r_ = (long)get_global_id(0);                                           \
        if (r_ >= g.outer * g.inner)                                                      \
            return;                                                                       \
        ROW_BEGIN                                                                         \
        T best = x[base];                                                                 \
        long bi = 0;                                                                      \
        for (long j = 1; j < g.n; j++) {                                                  \
            const T v = x[base + j * g.is1];                                              \
            if (BEATS(v, best)) {                                                         \
                best = v;                                                                 \
                bi = j;                                                                   \
            }                                                                             \
        }                                                                                 \
        out[g.ooff + o_ * g.os0 + i_ * g.os2] = best;                                     \
        idx[g.xoff + o_ * g.xs0 + i_ * g.xs2] = bi;                                       \
    }                                                                                     \
    __kernel void em_##NAME##_grp_##S(em_dgeom g, __global const T *x, __global T *out,   \
                                      __global long *idx)                                 \
    {                                                                                     \
        __local T shv[EM_LS];                                                             \
        __local long shi[EM_LS];                                                          \
        const int lid = (int)get_local_id(0);                                             \
        const long r_ = (long)get_group_id(0);                                            \
        ROW_BEGIN                                                                         \
        T best = x[base];                                                                 \
        long bi = -1;                                                                     \
        for (long j = lid; j < g.n; j += EM_LS) {                                         \
            const T v = x[base + j * g.is1];                                              \
            if (bi < 0 || BEATS(v, best)) {                                               \
                best = v;                                                                 \
                bi = j;                                                                   \
            }                                                                             \
        }                                                                                 \
        shv[lid] = best;                                                                  \
        shi[lid] = bi;                                                                    \
        barrier(CLK_LOCAL_MEM_FENCE);                                                     \
        for (int s_ = EM_LS / 2; s_ > 0; s_ >>= 1) {                                      \
            if (lid < s_) {                                                               \
                const T a = shv[lid], b = shv[lid + s_];                                  \
                const long ai = shi[lid], bj = shi[lid + s_];                             \
                if (bj >= 0 && (ai < 0 || BEATS(b, a) || (!BEATS(a, b) && bj < ai))) {    \
                    shv[lid] = b;                                                         \
                    shi[lid] = bj;                                                        \
                }                                                                         \
            }                                                                             \
            barrier(CLK_LOCAL_MEM_FENCE);                                                 \
        }                                                                                 \
        if (lid == 0) {                                                                   \
            out[g.ooff + o_ * g.os0 + i_ * g.os2] = shv[0];                               \
            idx[g.xoff + o_ * g.xs0 + i_ * g.xs2] = shi[0];                               \
        }                                                                                 \
    }

#define ARG_DIM_OPS(T, S)                                                                 \
    ARG_DIM_KERNELS(max_dim, T, S, EM_MAX_BEATS)                                          \
    ARG_DIM_KERNELS(min_dim, T, S, EM_MIN_BEATS)

ARG_DIM_OPS(float, f32)
ARG_DIM_OPS(long, i64)
ARG_DIM_OPS(int, i32)
ARG_DIM_OPS(uchar, u8)
#ifdef EM_FP64
ARG_DIM_OPS(double, f64)
#endif

/* softmax and log_softmax over n: m = max (a NaN anywhere makes it NaN, and so the row),
 * s = sum exp(x - m) in ACC; a row of -inf has x - m = NaN everywhere, so NaN, as PyTorch.
 * SOFTMAX_OUT(v) is the output for v = x - m (in ACC) given s. */
#define EM_NANMAX(a, b) (((a) > (b) || (a) != (a)) ? (a) : (b))
#define SOFTMAX_OUT(v) (LOG ? (v) - log(s) : exp(v) / s)

#define SOFTMAX_KERNELS(NAME, LOGV, T, S, ACC)                                            \
    __kernel void em_##NAME##_item_##S(em_dgeom g, __global const T *x, __global T *out)  \
    {                                                                                     \
        const int LOG = LOGV;                                                             \
        const long r_ = (long)get_global_id(0);                                           \
        if (r_ >= g.outer * g.inner)                                                      \
            return;                                                                       \
        ROW_BEGIN                                                                         \
        T m = x[base];                                                                    \
        for (long j = 1; j < g.n; j++)                                                    \
            m = EM_NANMAX(x[base + j * g.is1], m);                                        \
        ACC s = 0;                                                                        \
        for (long j = 0; j < g.n; j++)                                                    \
            s += exp((ACC)(x[base + j * g.is1] - m));                                     \
        const long ob = g.ooff + o_ * g.os0 + i_ * g.os2;                                 \
        for (long j = 0; j < g.n; j++) {                                                  \
            const ACC v = (ACC)(x[base + j * g.is1] - m);                                 \
            out[ob + j * g.os1] = (T)SOFTMAX_OUT(v);                                      \
        }                                                                                 \
    }                                                                                     \
    __kernel void em_##NAME##_grp_##S(em_dgeom g, __global const T *x, __global T *out)   \
    {                                                                                     \
        const int LOG = LOGV;                                                             \
        __local ACC sh[EM_LS];                                                            \
        const int lid = (int)get_local_id(0);                                             \
        const long r_ = (long)get_group_id(0);                                            \
        ROW_BEGIN                                                                         \
        T m = x[base];                                                                    \
        for (long j = lid; j < g.n; j += EM_LS)                                           \
            m = EM_NANMAX(x[base + j * g.is1], m);                                        \
        sh[lid] = (ACC)m;                                                                 \
        barrier(CLK_LOCAL_MEM_FENCE);                                                     \
        TREE(sh, lid, EM_NANMAX)                                                          \
        m = (T)sh[0];                                                                     \
        barrier(CLK_LOCAL_MEM_FENCE);                                                     \
        ACC s = 0;                                                                        \
        for (long j = lid; j < g.n; j += EM_LS)                                           \
            s += exp((ACC)(x[base + j * g.is1] - m));                                     \
        sh[lid] = s;                                                                      \
        barrier(CLK_LOCAL_MEM_FENCE);                                                     \
        TREE(sh, lid, EM_ADD)                                                             \
        s = sh[0];                                                                        \
        const long ob = g.ooff + o_ * g.os0 + i_ * g.os2;                                 \
        for (long j = lid; j < g.n; j += EM_LS) {                                         \
            const ACC v = (ACC)(x[base + j * g.is1] - m);                                 \
            out[ob + j * g.os1] = (T)SOFTMAX_OUT(v);                                      \
        }                                                                                 \
    }

SOFTMAX_KERNELS(softmax, 0, float, f32, ACC_F32)
SOFTMAX_KERNELS(log_softmax, 1, float, f32, ACC_F32)
#ifdef EM_FP64
SOFTMAX_KERNELS(softmax, 0, double, f64, double)
SOFTMAX_KERNELS(log_softmax, 1, double, f64, double)
#endif
