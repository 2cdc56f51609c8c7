/* backends/opencl/kernels_conv.cl — the convolution kernels of ABI 1.4 and max_pool2d_grad of
 * ABI 1.5 (opencl_conv.c launches them; definitions in ember/backend.h): im2col and max_pool2d
 * read a strided (N, C, H, W) input, one work-item per output element; col2im and
 * max_pool2d_grad gather, one work-item per input pixel, the column entries that im2col copied
 * from it, or the gradients of the outputs whose argmax it is (no atomics, a fixed order;
 * xs[] then holds the strides of the output's gradient). The window is
 * the em_win struct: kernel, stride, padding, dilation and output size, then the input's
 * channels, height and width and its four strides. */

typedef struct em_win {
    long kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
    long c, h, w;
    long xs[4];
} em_win;

#define IM2COL(T, S)                                                                      \
    __kernel void em_im2col_##S(long n, em_win g, __global T *out, long oo,               \
                                __global const T *x, long xo)                             \
    {                                                                                     \
        const long i = (long)get_global_id(0);                                            \
        if (i >= n)                                                                       \
            return;                                                                       \
        const long l = g.oh * g.ow, ox = i % g.ow, oy = (i / g.ow) % g.oh;                \
        const long r = (i / l) % (g.c * g.kh * g.kw), img = i / (l * g.c * g.kh * g.kw);  \
        const long kj = r % g.kw, ki = (r / g.kw) % g.kh, c = r / (g.kw * g.kh);          \
        const long iy = oy * g.sh - g.ph + ki * g.dh, ix = ox * g.sw - g.pw + kj * g.dw;  \
        out[oo + i] = (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)                        \
                          ? x[xo + img * g.xs[0] + c * g.xs[1] + iy * g.xs[2] + ix * g.xs[3]] \
                          : (T)0;                                                         \
    }

/* the first output index o >= 0 with o * s >= v, i.e. ceil(v / s) for v >= 0, else 0 */
#define EM_CEILDIV(v, s) ((v) <= 0 ? 0 : ((v) + (s) - 1) / (s))

#define COL2IM(T, S)                                                                      \
    __kernel void em_col2im_##S(long n, em_win g, __global T *out, long oo,               \
                                __global const T *col, long co)                           \
    {                                                                                     \
        const long i = (long)get_global_id(0);                                            \
        if (i >= n)                                                                       \
            return;                                                                       \
        const long x = i % g.w, y = (i / g.w) % g.h, plane = i / (g.w * g.h);             \
        const long l = g.oh * g.ow;                                                       \
        __global const T *cp = col + co + plane * g.kh * g.kw * l;                        \
        T acc = (T)0;                                                                     \
        for (long ki = 0; ki < g.kh; ki++) {                                              \
            const long ty = y + g.ph - ki * g.dh;                                         \
            if (ty < 0 || ty % g.sh)                                                      \
                continue;                                                                 \
            const long oy = ty / g.sh;                                                    \
            if (oy >= g.oh)                                                               \
                continue;                                                                 \
            for (long kj = 0; kj < g.kw; kj++) {                                          \
                const long tx = x + g.pw - kj * g.dw;                                     \
                if (tx < 0 || tx % g.sw)                                                  \
                    continue;                                                             \
                const long ox = tx / g.sw;                                                \
                if (ox >= g.ow)                                                           \
                    continue;                                                             \
                acc += cp[(ki * g.kw + kj) * l + oy * g.ow + ox];                         \
            }                                                                             \
        }                                                                                 \
        out[oo + i] = acc;                                                                \
    }

/* PyTorch's cpu rule: `v > max || isnan(v)`, the first tap of the window when none wins */
#define MAX_POOL2D(T, S)                                                                  \
    __kernel void em_max_pool2d_##S(long n, em_win g, __global T *out, long oo,           \
                                    __global long *ix, long io, __global const T *x,      \
                                    long xo)                                              \
    {                                                                                     \
        const long i = (long)get_global_id(0);                                            \
        if (i >= n)                                                                       \
            return;                                                                       \
        const long ox = i % g.ow, oy = (i / g.ow) % g.oh, plane = i / (g.ow * g.oh);      \
        const long c = plane % g.c, img = plane / g.c;                                    \
        __global const T *xp = x + xo + img * g.xs[0] + c * g.xs[1];                      \
        long y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;                                \
        const long y1 = min(y0 + (g.kh - 1) * g.dh + 1, g.h);                             \
        const long x1 = min(x0 + (g.kw - 1) * g.dw + 1, g.w);                             \
        while (y0 < 0)                                                                    \
            y0 += g.dh;                                                                   \
        while (x0 < 0)                                                                    \
            x0 += g.dw;                                                                   \
        long best = y0 * g.w + x0;                                                        \
        T m = -INFINITY;                                                                  \
        for (long yy = y0; yy < y1; yy += g.dh)                                           \
            for (long xx = x0; xx < x1; xx += g.dw) {                                     \
                const T v = xp[yy * g.xs[2] + xx * g.xs[3]];                              \
                if (v > m || isnan(v)) {                                                  \
                    m = v;                                                                \
                    best = yy * g.w + xx;                                                 \
                }                                                                         \
            }                                                                             \
        out[oo + i] = m;                                                                  \
        ix[io + i] = best;                                                                \
    }

/* the outputs whose window has the pixel as a tap, in row-major order (oy rises as ki falls),
 * summed from +0 where their index is the pixel: the order of the fill + scatter_add */
#define MAX_POOL2D_GRAD(T, S)                                                             \
    __kernel void em_max_pool2d_grad_##S(long n, em_win g, __global T *out, long oo,      \
                                         __global const T *gy, long go,                   \
                                         __global const long *ix, long io)                \
    {                                                                                     \
        const long i = (long)get_global_id(0);                                            \
        if (i >= n)                                                                       \
            return;                                                                       \
        const long x = i % g.w, y = (i / g.w) % g.h, plane = i / (g.w * g.h);             \
        const long c = plane % g.c, img = plane / g.c, pos = y * g.w + x;                 \
        __global const T *gp = gy + go + img * g.xs[0] + c * g.xs[1];                     \
        __global const long *ip = ix + io + plane * g.oh * g.ow;                          \
        T acc = (T)0;                                                                     \
        for (long ki = g.kh - 1; ki >= 0; ki--) {                                         \
            const long ty = y + g.ph - ki * g.dh;                                         \
            if (ty < 0 || ty % g.sh)                                                      \
                continue;                                                                 \
            const long oy = ty / g.sh;                                                    \
            if (oy >= g.oh)                                                               \
                continue;                                                                 \
            for (long kj = g.kw - 1; kj >= 0; kj--) {                                     \
                const long tx = x + g.pw - kj * g.dw;                                     \
                if (tx < 0 || tx % g.sw)                                                  \
                    continue;                                                             \
                const long ox = tx / g.sw;                                                \
                if (ox < g.ow && ip[oy * g.ow + ox] == pos)                               \
                    acc += gp[oy * g.xs[2] + ox * g.xs[3]];                               \
            }                                                                             \
        }                                                                                 \
        out[oo + i] = acc;                                                                \
    }

IM2COL(float, f32)
COL2IM(float, f32)
MAX_POOL2D(float, f32)
MAX_POOL2D_GRAD(float, f32)
#ifdef EM_FP64
IM2COL(double, f64)
COL2IM(double, f64)
MAX_POOL2D(double, f64)
MAX_POOL2D_GRAD(double, f64)
#endif
