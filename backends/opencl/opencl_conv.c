/* backends/opencl/opencl_conv.c — the OpenCL backend's convolution kernels of ABI 1.4:
 * im2col, col2im and max_pool2d, and max_pool2d_grad of ABI 1.5 (kernels_conv.cl), one
 * work-item per output element. The window (ip[0..9]) and the input's geometry go to the
 * kernel as one struct. */
#include "opencl.h"

#include <stddef.h>
#include <string.h>

typedef struct ocl_win {
    cl_long kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
    cl_long c, h, w;
    cl_long xs[4];
} ocl_win;

static int contiguous(const em_kview *v)
{
    int64_t s = 1;
    for (int k = v->ndim - 1; k >= 0; k--) {
        if (v->shape[k] != 1 && v->strides[k] != s)
            return 0;
        s *= v->shape[k];
    }
    return 1;
}

/* ip, the views' dtypes, and the window struct; x is the (N, C, H, W) side */
static em_status setup(ocl_dev *d, const char *kname, const em_kargs *ka, int n_out,
                       const em_kview *x, ocl_win *g)
{
    if (ka->n_ip < 10 || !ka->ip || !ka->ins || !ka->outs || ka->n_in < 1 ||
        ka->n_out < (uint32_t)n_out)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: expected %d output(s), 1 input and ip[10]", kname,
                       n_out);
    for (int i = 0; i < 10; i++)
        if (ka->ip[i] < ((i == 4 || i == 5) ? 0 : 1))
            return OCL_ERR(d, EM_ERR_INVALID, "%s: parameter %d is %lld", kname, i,
                           (long long)ka->ip[i]);
    em_status st;
    if ((st = ocl_check_view(d, kname, "ins[0]", ka->ins[0])) != EM_OK ||
        (st = ocl_check_view(d, kname, "outs[0]", ka->outs[0])) != EM_OK)
        return st;
    if (ka->outs[0]->dtype != ka->ins[0]->dtype)
        return ocl_mismatch(d, kname, "outs[0]", ka->outs[0]->dtype, ka->ins[0]->dtype);
    if (x->ndim != 4)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: expected a 4-d (N, C, H, W) view", kname);
    memset(g, 0, sizeof *g);
    cl_long *f = &g->kh;
    for (int i = 0; i < 10; i++)
        f[i] = ka->ip[i];
    g->c = x->shape[1];
    g->h = x->shape[2];
    g->w = x->shape[3];
    for (int i = 0; i < 4; i++)
        g->xs[i] = x->strides[i];
    return EM_OK;
}

static em_status go(ocl_dev *d, int xk, int32_t dt, const char *kname, int64_t n,
                    const ocl_win *g, const em_kview *const *v, int nv)
{
    ocl_kslot *s = &d->xk[xk][dt];
    if (!s->k)
        return ocl_no_kernel(d, kname, dt);
    if (n == 0)
        return EM_OK;
    em_status st;
    if ((st = ocl_slot_ls(d, s, d->ls, kname)) != EM_OK)
        return st;
    cl_uint ai = 0;
    cl_long nl = n;
    if ((st = ocl_set_arg(d, s->k, ai++, sizeof nl, &nl)) != EM_OK ||
        (st = ocl_set_arg(d, s->k, ai++, sizeof *g, g)) != EM_OK)
        return st;
    for (int i = 0; i < nv; i++) {
        cl_mem b = (cl_mem)v[i]->buf;
        cl_long o = v[i]->offset;
        if ((st = ocl_set_arg(d, s->k, ai++, sizeof b, &b)) != EM_OK ||
            (st = ocl_set_arg(d, s->k, ai++, sizeof o, &o)) != EM_OK)
            return st;
    }
    size_t local = s->ls, global = ocl_round_up((size_t)n, local);
    return ocl_enqueue(d, s->k, 1, &global, &local);
}

em_status ocl_k_im2col(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    ocl_win g;
    em_status st = setup(d, "im2col", ka, 1, ka->ins ? ka->ins[0] : NULL, &g);
    if (st != EM_OK)
        return st;
    const em_kview *o = ka->outs[0], *x = ka->ins[0];
    if (o->ndim != 3 || o->shape[0] != x->shape[0] || o->shape[1] != g.c * g.kh * g.kw ||
        o->shape[2] != g.oh * g.ow || !contiguous(o))
        return OCL_ERR(d, EM_ERR_INVALID, "im2col: the views do not match the window");
    const em_kview *v[2] = {o, x};
    return go(d, OCL_XK_IM2COL, x->dtype, "im2col", o->shape[0] * o->shape[1] * o->shape[2], &g,
              v, 2);
}

em_status ocl_k_col2im(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    ocl_win g;
    em_status st = setup(d, "col2im", ka, 1, ka->outs ? ka->outs[0] : NULL, &g);
    if (st != EM_OK)
        return st;
    const em_kview *o = ka->outs[0], *c = ka->ins[0];
    if (c->ndim != 3 || c->shape[0] != o->shape[0] || c->shape[1] != g.c * g.kh * g.kw ||
        c->shape[2] != g.oh * g.ow || !contiguous(c) || !contiguous(o))
        return OCL_ERR(d, EM_ERR_INVALID, "col2im: the views do not match the window");
    const em_kview *v[2] = {o, c};
    return go(d, OCL_XK_COL2IM, o->dtype, "col2im", o->shape[0] * g.c * g.h * g.w, &g, v, 2);
}

em_status ocl_k_max_pool2d(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    ocl_win g;
    em_status st = setup(d, "max_pool2d", ka, 2, ka->ins ? ka->ins[0] : NULL, &g);
    if (st != EM_OK)
        return st;
    const em_kview *o = ka->outs[0], *ix = ka->outs[1], *x = ka->ins[0];
    if ((st = ocl_check_view(d, "max_pool2d", "outs[1]", ix)) != EM_OK)
        return st;
    if (ix->dtype != EM_I64)
        return ocl_mismatch(d, "max_pool2d", "outs[1]", ix->dtype, EM_I64);
    for (int k = 0; k < 2; k++) {
        const em_kview *v = k ? ix : o;
        if (v->ndim != 4 || v->shape[0] != x->shape[0] || v->shape[1] != g.c ||
            v->shape[2] != g.oh || v->shape[3] != g.ow || !contiguous(v) || g.h < 1 || g.w < 1)
            return OCL_ERR(d, EM_ERR_INVALID, "max_pool2d: the views do not match the window");
    }
    const em_kview *v[3] = {o, ix, x};
    return go(d, OCL_XK_MAX_POOL2D, x->dtype, "max_pool2d", x->shape[0] * g.c * g.oh * g.ow, &g,
              v, 3);
}

em_status ocl_k_max_pool2d_grad(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    ocl_win g;
    if (ka->n_in < 2 || !ka->ins)
        return OCL_ERR(d, EM_ERR_INVALID, "max_pool2d_grad: expected 2 inputs");
    em_status st = setup(d, "max_pool2d_grad", ka, 1, ka->outs ? ka->outs[0] : NULL, &g);
    if (st != EM_OK)
        return st;
    const em_kview *o = ka->outs[0], *gy = ka->ins[0], *ix = ka->ins[1];
    if ((st = ocl_check_view(d, "max_pool2d_grad", "ins[1]", ix)) != EM_OK)
        return st;
    if (ix->dtype != EM_I64)
        return ocl_mismatch(d, "max_pool2d_grad", "ins[1]", ix->dtype, EM_I64);
    for (int k = 0; k < 2; k++) {
        const em_kview *v = k ? ix : gy;
        if (v->ndim != 4 || v->shape[0] != o->shape[0] || v->shape[1] != g.c ||
            v->shape[2] != g.oh || v->shape[3] != g.ow || (k && !contiguous(v)) ||
            !contiguous(o) || g.h < 1 || g.w < 1)
            return OCL_ERR(d, EM_ERR_INVALID, "max_pool2d_grad: the views do not match the "
                           "window");
    }
    for (int i = 0; i < 4; i++)
        g.xs[i] = gy->strides[i];
    const em_kview *v[3] = {o, gy, ix};
    return go(d, OCL_XK_MAX_POOL2D_GRAD, o->dtype, "max_pool2d_grad",
              o->shape[0] * g.c * g.h * g.w, &g, v, 3);
}
