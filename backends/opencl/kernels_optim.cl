/* backends/opencl/kernels_optim.cl — the fused optimizer kernels (opencl_optim.c launches
 * them). ABI 1.3's adam: em_adam_<dtype>, one work-item per element of a contiguous parameter, its
 * gradient and Adam state, writing the new parameter and state into other buffers. The
 * per-element arithmetic is ember/backend.h's definition of adam, operation for operation,
 * with contraction off (kernels.cl); the scalars come converted to T by the host. flags:
 * 1 maximize, 2 Adam weight decay, 4 AdamW weight decay, 8 first step (m, v, vmax unread),
 * 16 amsgrad (vmax read unless first, vmax' written). */

#define EM_ADAM_MAXIMIZE 1
#define EM_ADAM_L2 2
#define EM_ADAM_DECOUPLED 4
#define EM_ADAM_FIRST 8
#define EM_ADAM_AMSGRAD 16

#define ADAM_KERNEL(T, S)                                                                 \
    __kernel void em_adam_##S(long n, int flags, T b1, T c1, T b2, T c2, T wd, T keep,    \
                              T s2, T e, T step, __global T *po, long poo,                \
                              __global T *mo, long moo, __global T *vo, long voo,          \
                              __global T *xo, long xoo, __global const T *pi, long pio,    \
                              __global const T *gi, long gio, __global const T *mi,        \
                              long mio, __global const T *vi, long vio,                    \
                              __global const T *xi, long xio)                              \
    {                                                                                     \
        const long i = (long)get_global_id(0);                                            \
        if (i >= n)                                                                       \
            return;                                                                       \
        T p = pi[pio + i];                                                                \
        T x = gi[gio + i];                                                                \
        if (flags & EM_ADAM_MAXIMIZE)                                                     \
            x = -x;                                                                       \
        if (flags & EM_ADAM_L2)                                                           \
            x = x + p * wd;                                                               \
        if (flags & EM_ADAM_DECOUPLED)                                                    \
            p = p * keep;                                                                 \
        const int first = (flags & EM_ADAM_FIRST) != 0;                                   \
        const T xc = x * c1, xx = (x * x) * c2;                                           \
        const T m = first ? xc : mi[mio + i] * b1 + xc;                                   \
        const T v = first ? xx : vi[vio + i] * b2 + xx;                                   \
        T d = v;                                                                          \
        if (flags & EM_ADAM_AMSGRAD) {                                                    \
            if (!first) {                                                                 \
                const T a = xi[xio + i];                                                  \
                d = (a > v || isnan(a)) ? a : v;                                          \
            }                                                                             \
            xo[xoo + i] = d;                                                              \
        }                                                                                 \
        mo[moo + i] = m;                                                                  \
        vo[voo + i] = v;                                                                  \
        po[poo + i] = p - (m / (sqrt(d) / s2 + e)) * step;                                \
    }

ADAM_KERNEL(float, f32)
#ifdef EM_FP64
ADAM_KERNEL(double, f64)
#endif

/* ABI 1.7's sgd: em_sgd_<dtype>, one work-item per element of a contiguous parameter, its
 * gradient and momentum buffer, writing the new parameter (and buffer) into other buffers;
 * ember/backend.h's definition of sgd, operation for operation. flags: 1 maximize, 2 weight
 * decay, 4 momentum (b' written), 8 first step (b unread), 16 nesterov. */
#define EM_SGD_MAXIMIZE 1
#define EM_SGD_DECAY 2
#define EM_SGD_MOMENTUM 4
#define EM_SGD_FIRST 8
#define EM_SGD_NESTEROV 16

#define SGD_KERNEL(T, S)                                                                  \
    __kernel void em_sgd_##S(long n, int flags, T r, T m, T c, T wd, __global T *po,      \
                             long poo, __global T *bo, long boo, __global const T *pi,    \
                             long pio, __global const T *gi, long gio,                    \
                             __global const T *bi, long bio)                              \
    {                                                                                     \
        const long i = (long)get_global_id(0);                                            \
        if (i >= n)                                                                       \
            return;                                                                       \
        const T p = pi[pio + i];                                                          \
        T x = gi[gio + i];                                                                \
        if (flags & EM_SGD_MAXIMIZE)                                                      \
            x = -x;                                                                       \
        if (flags & EM_SGD_DECAY)                                                         \
            x = x + p * wd;                                                               \
        if (flags & EM_SGD_MOMENTUM) {                                                    \
            const T b = (flags & EM_SGD_FIRST) ? x : bi[bio + i] * m + x * c;             \
            bo[boo + i] = b;                                                              \
            x = (flags & EM_SGD_NESTEROV) ? x + b * m : b;                                \
        }                                                                                 \
        po[poo + i] = p - x * r;                                                          \
    }

SGD_KERNEL(float, f32)
#ifdef EM_FP64
SGD_KERNEL(double, f64)
#endif
