/* backends/opencl/kernels_pool.cl — the pooling kernels of ABI 1.4 (opencl_pool.c launches
 * them): em_avg_pool2d_<dtype> and em_avg_pool2d_bw_<dtype> over 3-D (B, H, W) views, one
 * work-item per element written. The forward averages its window; the backward gathers an
 * input element's gradient from the windows that contain it (no atomics, deterministic).
 * Windows follow ember/backend.h's definition of avg_pool2d (adaptive: PyTorch's start and
 * end index rule). */

typedef struct em_pgeom {
    long B, H, W, OH, OW;
    long kh, kw, sh, sw, ph, pw;
    long cip, divisor, adaptive;
    long ioff, is0, is1, is2;
    long ooff, os0, os1, os2;
} em_pgeom;

/* the window of output index o along one dim: [s, e) clipped, its padded size */
inline void em_pool_window(const em_pgeom *g, int dim, long o, long *s, long *e, long *pool)
{
    const long I = dim ? g->W : g->H, O = dim ? g->OW : g->OH;
    if (g->adaptive) {
        *s = (o * I) / O;
        *e = ((o + 1) * I + O - 1) / O;
        *pool = *e - *s;
        return;
    }
    const long k = dim ? g->kw : g->kh, st = dim ? g->sw : g->sh, p = dim ? g->pw : g->ph;
    const long a = o * st - p, b = min(a + k, I + p);
    *pool = b - a;
    *s = max(a, 0L);
    *e = min(b, I);
}

inline long em_pool_floordiv(long a, long b)
{
    const long q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

inline long em_pool_divisor(const em_pgeom *g, long hs, long he, long ws, long we, long hp,
                            long wp)
{
    if (g->divisor)
        return g->divisor;
    if (g->cip || g->adaptive)
        return hp * wp;
    return (he - hs) * (we - ws);
}

#define POOL_KERNELS(T, S)                                                                 \
    __kernel void em_avg_pool2d_##S(long n, em_pgeom g, __global T *out,                   \
                                    __global const T *in)                                  \
    {                                                                                      \
        const long i = (long)get_global_id(0);                                             \
        if (i >= n)                                                                        \
            return;                                                                        \
        const long ow = i % g.OW, oh = (i / g.OW) % g.OH, b = i / (g.OW * g.OH);            \
        long hs, he, hp, ws, we, wp;                                                       \
        em_pool_window(&g, 0, oh, &hs, &he, &hp);                                          \
        em_pool_window(&g, 1, ow, &ws, &we, &wp);                                          \
        __global const T *x = in + g.ioff + b * g.is0;                                     \
        T acc = 0;                                                                         \
        for (long h = hs; h < he; h++)                                                     \
            for (long w = ws; w < we; w++)                                                 \
                acc += x[h * g.is1 + w * g.is2];                                           \
        out[g.ooff + b * g.os0 + oh * g.os1 + ow * g.os2] =                                \
            acc / (T)em_pool_divisor(&g, hs, he, ws, we, hp, wp);                          \
    }                                                                                      \
    __kernel void em_avg_pool2d_bw_##S(long n, em_pgeom g, __global T *out,                \
                                       __global const T *in)                               \
    {                                                                                      \
        const long i = (long)get_global_id(0);                                             \
        if (i >= n)                                                                        \
            return;                                                                        \
        const long w = i % g.W, h = (i / g.W) % g.H, b = i / (g.W * g.H);                  \
        long ohl, ohh, owl, owh;                                                           \
        if (g.adaptive) {                                                                  \
            ohl = (h * g.OH) / g.H;                                                        \
            ohh = ((h + 1) * g.OH + g.H - 1) / g.H - 1;                                    \
            owl = (w * g.OW) / g.W;                                                        \
            owh = ((w + 1) * g.OW + g.W - 1) / g.W - 1;                                    \
        } else {                                                                           \
            ohl = em_pool_floordiv(h + g.ph - g.kh, g.sh) + 1;                             \
            ohh = em_pool_floordiv(h + g.ph, g.sh);                                        \
            owl = em_pool_floordiv(w + g.pw - g.kw, g.sw) + 1;                             \
            owh = em_pool_floordiv(w + g.pw, g.sw);                                        \
        }                                                                                  \
        ohl = max(ohl, 0L);                                                                \
        owl = max(owl, 0L);                                                                \
        ohh = min(ohh, g.OH - 1);                                                          \
        owh = min(owh, g.OW - 1);                                                          \
        __global const T *gy = in + g.ioff + b * g.is0;                                    \
        T acc = 0;                                                                         \
        for (long oh = ohl; oh <= ohh; oh++) {                                             \
            long hs, he, hp;                                                               \
            em_pool_window(&g, 0, oh, &hs, &he, &hp);                                      \
            if (h < hs || h >= he)                                                         \
                continue;                                                                  \
            for (long ow = owl; ow <= owh; ow++) {                                         \
                long ws, we, wp;                                                           \
                em_pool_window(&g, 1, ow, &ws, &we, &wp);                                  \
                if (w < ws || w >= we)                                                     \
                    continue;                                                              \
                acc += gy[oh * g.is1 + ow * g.is2] /                                       \
                       (T)em_pool_divisor(&g, hs, he, ws, we, hp, wp);                     \
            }                                                                              \
        }                                                                                  \
        out[g.ooff + b * g.os0 + h * g.os1 + w * g.os2] = acc;                             \
    }

POOL_KERNELS(float, f32)
#ifdef EM_FP64
POOL_KERNELS(double, f64)
#endif
