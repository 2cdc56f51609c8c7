/* backends/cuda/cuda_conv.cu — the cuda backend's convolution kernels of ABI 1.4: im2col,
 * col2im and max_pool2d, and max_pool2d_grad of ABI 1.5 (definitions in ember/backend.h),
 * grid-stride loops with one thread per output element; col2im and max_pool2d_grad gather, per
 * input pixel, the column entries im2col copied from it or the gradients of the outputs whose
 * argmax it is (no atomics, a fixed order); max_pool2d compares as PyTorch's cpu kernel does
 * (a NaN wins, the last one). conv2d itself is these and cuBLAS's gemm (the core's lowering). */
#include "cuda_ew.cuh"

#include <math.h>

struct cu_win {
    int64_t kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
    int64_t c, h, w;
    int64_t xs[4];
};

/* ------------------------------------------------------------------ device side */

template <class T>
__global__ void __launch_bounds__(EW_THREADS)
    k_im2col(cu_win g, int64_t n, T *out, const T *x)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS, l = g.oh * g.ow;
    for (int64_t i = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; i < n; i += stride) {
        const int64_t ox = i % g.ow, oy = (i / g.ow) % g.oh;
        const int64_t r = (i / l) % (g.c * g.kh * g.kw), img = i / (l * g.c * g.kh * g.kw);
        const int64_t kj = r % g.kw, ki = (r / g.kw) % g.kh, c = r / (g.kw * g.kh);
        const int64_t iy = oy * g.sh - g.ph + ki * g.dh, ix = ox * g.sw - g.pw + kj * g.dw;
        out[i] = (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
                     ? x[img * g.xs[0] + c * g.xs[1] + iy * g.xs[2] + ix * g.xs[3]]
                     : (T)0;
    }
}

template <class T>
__global__ void __launch_bounds__(EW_THREADS)
    k_col2im(cu_win g, int64_t n, T *out, const T *col)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS, l = g.oh * g.ow;
    for (int64_t i = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; i < n; i += stride) {
        const int64_t x = i % g.w, y = (i / g.w) % g.h, plane = i / (g.w * g.h);
        const T *cp = col + plane * g.kh * g.kw * l;
        T acc = (T)0;
        for (int64_t ki = 0; ki < g.kh; ki++) {
            const int64_t ty = y + g.ph - ki * g.dh;
            if (ty < 0 || ty % g.sh || ty / g.sh >= g.oh)
                continue;
            for (int64_t kj = 0; kj < g.kw; kj++) {
                const int64_t tx = x + g.pw - kj * g.dw;
                if (tx < 0 || tx % g.sw || tx / g.sw >= g.ow)
                    continue;
                acc += cp[(ki * g.kw + kj) * l + (ty / g.sh) * g.ow + tx / g.sw];
            }
        }
        out[i] = acc;
    }
}

template <class T>
__global__ void __launch_bounds__(EW_THREADS)
    k_max_pool2d(cu_win g, int64_t n, T *out, int64_t *ix, const T *x)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS;
    for (int64_t i = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; i < n; i += stride) {
        const int64_t ox = i % g.ow, oy = (i / g.ow) % g.oh, plane = i / (g.ow * g.oh);
        const T *xp = x + (plane / g.c) * g.xs[0] + (plane % g.c) * g.xs[1];
        int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
        const int64_t y1 = min(y0 + (g.kh - 1) * g.dh + 1, g.h);
        const int64_t x1 = min(x0 + (g.kw - 1) * g.dw + 1, g.w);
        while (y0 < 0)
            y0 += g.dh;
        while (x0 < 0)
            x0 += g.dw;
        int64_t best = y0 * g.w + x0;
        T m = -(T)INFINITY;
        for (int64_t yy = y0; yy < y1; yy += g.dh)
            for (int64_t xx = x0; xx < x1; xx += g.dw) {
                const T v = xp[yy * g.xs[2] + xx * g.xs[3]];
                if (v > m || isnan(v)) {
                    m = v;
                    best = yy * g.w + xx;
                }
            }
        out[i] = m;
        ix[i] = best;
    }
}

/* g.xs[] holds the strides of the output's gradient gy; the outputs whose window has the pixel
 * as a tap, in row-major order (oy rises as ki falls), summed from +0 where their index is the
 * pixel: the order of the fill + scatter_add it replaces */
template <class T>
__global__ void __launch_bounds__(EW_THREADS)
    k_max_pool2d_grad(cu_win g, int64_t n, T *out, const T *gy, const int64_t *ix)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS;
    for (int64_t i = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; i < n; i += stride) {
        const int64_t x = i % g.w, y = (i / g.w) % g.h, plane = i / (g.w * g.h);
        const int64_t c = plane % g.c, img = plane / g.c, pos = y * g.w + x;
        const T *gp = gy + img * g.xs[0] + c * g.xs[1];
        const int64_t *ip = ix + plane * g.oh * g.ow;
        T acc = (T)0;
        for (int64_t ki = g.kh - 1; ki >= 0; ki--) {
            const int64_t ty = y + g.ph - ki * g.dh;
            if (ty < 0 || ty % g.sh || ty / g.sh >= g.oh)
                continue;
            const int64_t oy = ty / g.sh;
            for (int64_t kj = g.kw - 1; kj >= 0; kj--) {
                const int64_t tx = x + g.pw - kj * g.dw;
                if (tx < 0 || tx % g.sw || tx / g.sw >= g.ow)
                    continue;
                const int64_t ox = tx / g.sw;
                if (ip[oy * g.ow + ox] == pos)
                    acc += gp[oy * g.xs[2] + ox * g.xs[3]];
            }
        }
        out[i] = acc;
    }
}

/* ------------------------------------------------------------------ host side */

static bool contiguous(const em_kview *v)
{
    int64_t s = 1;
    for (int k = v->ndim - 1; k >= 0; k--) {
        if (v->shape[k] != 1 && v->strides[k] != s)
            return false;
        s *= v->shape[k];
    }
    return true;
}

template <class T>
static T *ptr(const em_kview *v)
{
    return (T *)v->buf + v->offset;
}

/* ip, the views' dtypes, and the window; x is the (N, C, H, W) side */
static em_status setup(cu_dev *d, const char *kname, const em_kargs *ka, uint32_t n_out,
                       const em_kview *x, cu_win *g)
{
    if (ka->n_ip < 10 || !ka->ip || !ka->ins || !ka->outs || ka->n_in < 1 || ka->n_out < n_out)
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: expected %u output(s), 1 input and ip[10]",
                      kname, (unsigned)n_out);
    for (int i = 0; i < 10; i++)
        if (ka->ip[i] < ((i == 4 || i == 5) ? 0 : 1))
            return CU_ERR(d->inst, EM_ERR_INVALID, "%s: parameter %d is %lld", kname, i,
                          (long long)ka->ip[i]);
    em_status st;
    if ((st = check_view(d, kname, "ins[0]", ka->ins[0])) != EM_OK ||
        (st = check_view(d, kname, "outs[0]", ka->outs[0])) != EM_OK)
        return st;
    const int32_t dt = ka->ins[0]->dtype;
    if (dt != EM_F32 && dt != EM_F64)
        return unsupported(d, kname, dt);
    if (ka->outs[0]->dtype != dt)
        return mismatch(d, kname, "outs[0]", ka->outs[0]->dtype, dt);
    if (x->ndim != 4)
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: expected a 4-d (N, C, H, W) view", kname);
    int64_t *f = &g->kh;
    for (int i = 0; i < 10; i++)
        f[i] = ka->ip[i];
    g->c = x->shape[1];
    g->h = x->shape[2];
    g->w = x->shape[3];
    for (int i = 0; i < 4; i++)
        g->xs[i] = x->strides[i];
    return EM_OK;
}

em_status cu_k_im2col(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    cu_win g;
    em_status st = setup(d, "im2col", ka, 1, ka->ins ? ka->ins[0] : nullptr, &g);
    if (st != EM_OK)
        return st;
    const em_kview *o = ka->outs[0], *x = ka->ins[0];
    if (o->ndim != 3 || o->shape[0] != x->shape[0] || o->shape[1] != g.c * g.kh * g.kw ||
        o->shape[2] != g.oh * g.ow || !contiguous(o))
        return CU_ERR(d->inst, EM_ERR_INVALID, "im2col: the views do not match the window");
    const int64_t n = o->shape[0] * o->shape[1] * o->shape[2];
    if (n == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    const unsigned grid = cu_blocks(d, n, EW_THREADS);
    if (x->dtype == EM_F32)
        k_im2col<float><<<grid, EW_THREADS, 0, d->stream>>>(g, n, ptr<float>(o), ptr<float>(x));
    else
        k_im2col<double><<<grid, EW_THREADS, 0, d->stream>>>(g, n, ptr<double>(o), ptr<double>(x));
    return launched(d, "im2col");
}

em_status cu_k_col2im(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    cu_win g;
    em_status st = setup(d, "col2im", ka, 1, ka->outs ? ka->outs[0] : nullptr, &g);
    if (st != EM_OK)
        return st;
    const em_kview *o = ka->outs[0], *c = ka->ins[0];
    if (c->ndim != 3 || c->shape[0] != o->shape[0] || c->shape[1] != g.c * g.kh * g.kw ||
        c->shape[2] != g.oh * g.ow || !contiguous(c) || !contiguous(o))
        return CU_ERR(d->inst, EM_ERR_INVALID, "col2im: the views do not match the window");
    const int64_t n = o->shape[0] * g.c * g.h * g.w;
    if (n == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    const unsigned grid = cu_blocks(d, n, EW_THREADS);
    if (o->dtype == EM_F32)
        k_col2im<float><<<grid, EW_THREADS, 0, d->stream>>>(g, n, ptr<float>(o), ptr<float>(c));
    else
        k_col2im<double><<<grid, EW_THREADS, 0, d->stream>>>(g, n, ptr<double>(o), ptr<double>(c));
    return launched(d, "col2im");
}

em_status cu_k_max_pool2d(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    cu_win g;
    em_status st = setup(d, "max_pool2d", ka, 2, ka->ins ? ka->ins[0] : nullptr, &g);
    if (st != EM_OK)
        return st;
    const em_kview *o = ka->outs[0], *ix = ka->outs[1], *x = ka->ins[0];
    if ((st = check_view(d, "max_pool2d", "outs[1]", ix)) != EM_OK)
        return st;
    if (ix->dtype != EM_I64)
        return mismatch(d, "max_pool2d", "outs[1]", ix->dtype, EM_I64);
    for (int k = 0; k < 2; k++) {
        const em_kview *v = k ? ix : o;
        if (v->ndim != 4 || v->shape[0] != x->shape[0] || v->shape[1] != g.c ||
            v->shape[2] != g.oh || v->shape[3] != g.ow || !contiguous(v) || g.h < 1 || g.w < 1)
            return CU_ERR(d->inst, EM_ERR_INVALID, "max_pool2d: the views do not match the "
                          "window");
    }
    const int64_t n = x->shape[0] * g.c * g.oh * g.ow;
    if (n == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    const unsigned grid = cu_blocks(d, n, EW_THREADS);
    if (x->dtype == EM_F32)
        k_max_pool2d<float><<<grid, EW_THREADS, 0, d->stream>>>(g, n, ptr<float>(o),
                                                                ptr<int64_t>(ix), ptr<float>(x));
    else
        k_max_pool2d<double><<<grid, EW_THREADS, 0, d->stream>>>(g, n, ptr<double>(o),
                                                                 ptr<int64_t>(ix), ptr<double>(x));
    return launched(d, "max_pool2d");
}

em_status cu_k_max_pool2d_grad(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    cu_win g;
    if (ka->n_in < 2 || !ka->ins)
        return CU_ERR(d->inst, EM_ERR_INVALID, "max_pool2d_grad: expected 2 inputs");
    em_status st = setup(d, "max_pool2d_grad", ka, 1, ka->outs ? ka->outs[0] : nullptr, &g);
    if (st != EM_OK)
        return st;
    const em_kview *o = ka->outs[0], *gy = ka->ins[0], *ix = ka->ins[1];
    if ((st = check_view(d, "max_pool2d_grad", "ins[1]", ix)) != EM_OK)
        return st;
    if (ix->dtype != EM_I64)
        return mismatch(d, "max_pool2d_grad", "ins[1]", ix->dtype, EM_I64);
    for (int k = 0; k < 2; k++) {
        const em_kview *v = k ? ix : gy;
        if (v->ndim != 4 || v->shape[0] != o->shape[0] || v->shape[1] != g.c ||
            v->shape[2] != g.oh || v->shape[3] != g.ow || (k && !contiguous(v)) ||
            !contiguous(o) || g.h < 1 || g.w < 1)
            return CU_ERR(d->inst, EM_ERR_INVALID, "max_pool2d_grad: the views do not match the "
                          "window");
    }
    for (int i = 0; i < 4; i++)
        g.xs[i] = gy->strides[i];
    const int64_t n = o->shape[0] * g.c * g.h * g.w;
    if (n == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    const unsigned grid = cu_blocks(d, n, EW_THREADS);
    if (o->dtype == EM_F32)
        k_max_pool2d_grad<float><<<grid, EW_THREADS, 0, d->stream>>>(
            g, n, ptr<float>(o), ptr<float>(gy), ptr<int64_t>(ix));
    else
        k_max_pool2d_grad<double><<<grid, EW_THREADS, 0, d->stream>>>(
            g, n, ptr<double>(o), ptr<double>(gy), ptr<int64_t>(ix));
    return launched(d, "max_pool2d_grad");
}
