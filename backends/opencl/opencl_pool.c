/* backends/opencl/opencl_pool.c — the OpenCL backend's pooling kernels of ABI 1.4,
 * avg_pool2d and avg_pool2d_grad (kernels_pool.cl): the views and the nine integer
 * parameters checked, the geometry packed into one struct argument, one launch with a
 * work-item per element written. */
#include "opencl.h"

#include <stddef.h>
#include <string.h>

/* Mirrors em_pgeom of kernels_pool.cl. */
typedef struct ocl_pgeom {
    cl_long B, H, W, OH, OW;
    cl_long kh, kw, sh, sw, ph, pw;
    cl_long cip, divisor, adaptive;
    cl_long ioff, is0, is1, is2;
    cl_long ooff, os0, os1, os2;
} ocl_pgeom;

static em_status pool(void *dev, const em_kargs *ka, int backward)
{
    ocl_dev *d = dev;
    const char *kname = backward ? "avg_pool2d_grad" : "avg_pool2d";
    const em_kview *in = ka->in[0], *out = ka->out;
    em_status st;
    if ((st = ocl_check_view(d, kname, "in[0]", in)) != EM_OK ||
        (st = ocl_check_view(d, kname, "out", out)) != EM_OK)
        return st;
    if (out->dtype != in->dtype)
        return ocl_mismatch(d, kname, "out", out->dtype, in->dtype);
    if (in->ndim != 3 || out->ndim != 3 || in->shape[0] != out->shape[0])
        return OCL_ERR(d, EM_ERR_INVALID, "%s: expected 3-D views (B, H, W) with one B, got "
                       "%d-D and %d-D", kname, (int)in->ndim, (int)out->ndim);
    if (ka->struct_size < offsetof(em_kargs, fp) || ka->n_ip < 9 || !ka->ip)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: expected 9 integer parameters", kname);
    const int32_t dt = in->dtype;
    ocl_kslot *s = &d->xk[backward ? OCL_XK_AVG_POOL_BW : OCL_XK_AVG_POOL][dt];
    if (!s->k)
        return ocl_no_kernel(d, kname, dt);
    const int64_t *ip = ka->ip;
    const em_kview *big = backward ? out : in, *small = backward ? in : out;
    ocl_pgeom g;
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
        return OCL_ERR(d, EM_ERR_INVALID, "%s: bad geometry (input %lldx%lld, output "
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
    cl_long n = out->shape[0] * out->shape[1] * out->shape[2];
    if (n == 0)
        return EM_OK;
    char kn[64];
    ocl_xk_name(kn, sizeof kn, backward ? OCL_XK_AVG_POOL_BW : OCL_XK_AVG_POOL, dt);
    if ((st = ocl_slot_ls(d, s, d->ls, kn)) != EM_OK)
        return st;
    cl_mem bufs[2] = {(cl_mem)out->buf, (cl_mem)in->buf};
    cl_uint ai = 0;
    if ((st = ocl_set_arg(d, s->k, ai++, sizeof n, &n)) != EM_OK ||
        (st = ocl_set_arg(d, s->k, ai++, sizeof g, &g)) != EM_OK ||
        (st = ocl_set_arg(d, s->k, ai++, sizeof bufs[0], &bufs[0])) != EM_OK ||
        (st = ocl_set_arg(d, s->k, ai++, sizeof bufs[1], &bufs[1])) != EM_OK)
        return st;
    size_t local = s->ls, global = ocl_round_up((size_t)n, local);
    return ocl_enqueue(d, s->k, 1, &global, &local);
}

em_status ocl_k_avg_pool2d(void *dev, const em_kargs *ka)
{
    return pool(dev, ka, 0);
}

em_status ocl_k_avg_pool2d_grad(void *dev, const em_kargs *ka)
{
    return pool(dev, ka, 1);
}
