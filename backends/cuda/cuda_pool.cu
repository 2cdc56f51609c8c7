/* backends/cuda/cuda_pool.cu — the cuda backend's pooling kernels of ABI 1.4, avg_pool2d and
 * avg_pool2d_grad over 3-D (B, H, W) views: a grid-stride loop with a thread per element
 * written. The forward averages its window; the backward gathers an input element's gradient
 * from the windows that contain it (no atomics, deterministic). f32 accumulates in f32.
 * Windows as ember/backend.h defines avg_pool2d (adaptive: PyTorch's index rule). */
#include "cuda_ew.cuh"

struct cu_pgeom {
    int64_t B, H, W, OH, OW;
    int64_t kh, kw, sh, sw, ph, pw;
    int64_t cip, divisor, adaptive;
    int64_t ioff, is0, is1, is2;
    int64_t ooff, os0, os1, os2;
};

/* ------------------------------------------------------------------ device side */

__device__ static void pool_window(const cu_pgeom &g, int dim, int64_t o, int64_t *s, int64_t *e,
                                   int64_t *pool)
{
    const int64_t I = dim ? g.W : g.H, O = dim ? g.OW : g.OH;
    if (g.adaptive) {
        *s = (o * I) / O;
        *e = ((o + 1) * I + O - 1) / O;
        *pool = *e - *s;
        return;
    }
    const int64_t k = dim ? g.kw : g.kh, st = dim ? g.sw : g.sh, p = dim ? g.pw : g.ph;
    const int64_t a = o * st - p, b = a + k < I + p ? a + k : I + p;
    *pool = b - a;
    *s = a > 0 ? a : 0;
    *e = b < I ? b : I;
}

__device__ static int64_t pool_floordiv(int64_t a, int64_t b)
{
    const int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

__device__ static int64_t pool_divisor(const cu_pgeom &g, int64_t hs, int64_t he, int64_t ws,
                                       int64_t we, int64_t hp, int64_t wp)
{
    if (g.divisor)
        return g.divisor;
    if (g.cip || g.adaptive)
        return hp * wp;
    return (he - hs) * (we - ws);
}

template <class T>
__global__ void __launch_bounds__(EW_THREADS) k_avg_pool(const cu_pgeom g, int64_t n, T *out,
                                                         const T *in)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS;
    for (int64_t i = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; i < n; i += stride) {
        const int64_t ow = i % g.OW, oh = (i / g.OW) % g.OH, b = i / (g.OW * g.OH);
        int64_t hs, he, hp, ws, we, wp;
        pool_window(g, 0, oh, &hs, &he, &hp);
        pool_window(g, 1, ow, &ws, &we, &wp);
        const T *x = in + g.ioff + b * g.is0;
        T acc = 0;
        for (int64_t h = hs; h < he; h++)
            for (int64_t w = ws; w < we; w++)
                acc += x[h * g.is1 + w * g.is2];
        out[g.ooff + b * g.os0 + oh * g.os1 + ow * g.os2] =
            acc / (T)pool_divisor(g, hs, he, ws, we, hp, wp);
    }
}

template <class T>
__global__ void __launch_bounds__(EW_THREADS) k_avg_pool_bw(const cu_pgeom g, int64_t n, T *out,
                                                            const T *in)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS;
    for (int64_t i = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; i < n; i += stride) {
        const int64_t w = i % g.W, h = (i / g.W) % g.H, b = i / (g.W * g.H);
        int64_t ohl, ohh, owl, owh;
        if (g.adaptive) {
            ohl = (h * g.OH) / g.H;
            ohh = ((h + 1) * g.OH + g.H - 1) / g.H - 1;
            owl = (w * g.OW) / g.W;
            owh = ((w + 1) * g.OW + g.W - 1) / g.W - 1;
        } else {
            ohl = pool_floordiv(h + g.ph - g.kh, g.sh) + 1;
            ohh = pool_floordiv(h + g.ph, g.sh);
            owl = pool_floordiv(w + g.pw - g.kw, g.sw) + 1;
            owh = pool_floordiv(w + g.pw, g.sw);
        }
        ohl = ohl > 0 ? ohl : 0;
        owl = owl > 0 ? owl : 0;
        ohh = ohh < g.OH - 1 ? ohh : g.OH - 1;
        owh = owh < g.OW - 1 ? owh : g.OW - 1;
        const T *gy = in + g.ioff + b * g.is0;
        T acc = 0;
        for (int64_t oh = ohl; oh <= ohh; oh++) {
            int64_t hs, he, hp;
            pool_window(g, 0, oh, &hs, &he, &hp);
            if (h < hs || h >= he)
                continue;
            for (int64_t ow = owl; ow <= owh; ow++) {
                int64_t ws, we, wp;
                pool_window(g, 1, ow, &ws, &we, &wp);
                if (w < ws || w >= we)
                    continue;
                acc += gy[oh * g.is1 + ow * g.is2] / (T)pool_divisor(g, hs, he, ws, we, hp, wp);
            }
        }
        out[g.ooff + b * g.os0 + h * g.os1 + w * g.os2] = acc;
    }
}

/* ------------------------------------------------------------------ host side */

static em_status pool(void *dev, const em_kargs *ka, int backward)
{
    cu_dev *d = (cu_dev *)dev;
    const char *kname = backward ? "avg_pool2d_grad" : "avg_pool2d";
    const em_kview *in = ka->in[0], *out = ka->out;
    em_status st;
    if ((st = check_view(d, kname, "in[0]", in)) != EM_OK ||
        (st = check_view(d, kname, "out", out)) != EM_OK)
        return st;
    if (in->dtype != EM_F32 && in->dtype != EM_F64)
        return unsupported(d, kname, in->dtype);
    if (out->dtype != in->dtype)
        return mismatch(d, kname, "out", out->dtype, in->dtype);
    if (in->ndim != 3 || out->ndim != 3 || in->shape[0] != out->shape[0])
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: expected 3-D views (B, H, W) with one B, "
                      "got %d-D and %d-D", kname, (int)in->ndim, (int)out->ndim);
    if (ka->struct_size < offsetof(em_kargs, fp) || ka->n_ip < 9 || !ka->ip)
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: expected 9 integer parameters", kname);
    const int64_t *ip = ka->ip;
    const em_kview *big = backward ? out : in, *small = backward ? in : out;
    cu_pgeom g;
    memset(&g, 0, sizeof g);
    g.B = in->shape[0];
    g.H = big->shape[1];
    g.W = big->shape[2];
    g.OH = small->shape[1];
    g.OW = small->shape[2];
    g.kh = ip[0], g.kw = ip[1], g.sh = ip[2], g.sw = ip[3], g.ph = ip[4], g.pw = ip[5];
    g.cip = ip[6] != 0;
    g.divisor = ip[7];
    g.adaptive = ip[8] != 0;
    if (g.H < 1 || g.W < 1 || g.OH < 1 || g.OW < 1 ||
        (!g.adaptive && (g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1 || g.ph < 0 ||
                         g.pw < 0 || 2 * g.ph > g.kh || 2 * g.pw > g.kw)))
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: bad geometry (input %lldx%lld, output "
                      "%lldx%lld)", kname, (long long)g.H, (long long)g.W, (long long)g.OH,
                      (long long)g.OW);
    g.ioff = in->offset;
    g.is0 = in->strides[0];
    g.is1 = in->strides[1];
    g.is2 = in->strides[2];
    g.ooff = out->offset;
    g.os0 = out->strides[0];
    g.os1 = out->strides[1];
    g.os2 = out->strides[2];
    const int64_t n = out->shape[0] * out->shape[1] * out->shape[2];
    if (n == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    const unsigned grid = cu_blocks(d, n, EW_THREADS);
    if (in->dtype == EM_F32) {
        if (backward)
            k_avg_pool_bw<float><<<grid, EW_THREADS, 0, d->stream>>>(g, n, (float *)out->buf,
                                                                     (const float *)in->buf);
        else
            k_avg_pool<float><<<grid, EW_THREADS, 0, d->stream>>>(g, n, (float *)out->buf,
                                                                  (const float *)in->buf);
    } else {
        if (backward)
            k_avg_pool_bw<double><<<grid, EW_THREADS, 0, d->stream>>>(g, n, (double *)out->buf,
                                                                       (const double *)in->buf);
        else
            k_avg_pool<double><<<grid, EW_THREADS, 0, d->stream>>>(g, n, (double *)out->buf,
                                                                   (const double *)in->buf);
    }
    return launched(d, kname);
}

em_status cu_k_avg_pool2d(void *dev, const em_kargs *ka)
{
    return pool(dev, ka, 0);
}

em_status cu_k_avg_pool2d_grad(void *dev, const em_kargs *ka)
{
    return pool(dev, ka, 1);
}
