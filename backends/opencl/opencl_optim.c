/* backends/opencl/opencl_optim.c — the OpenCL backend's fused optimizer kernels,
 * adam (ABI 1.3) and sgd (ABI 1.7) (kernels_optim.cl): the views checked (contiguous, one
 * shape and dtype, the count the flags call for), the step's scalars converted to the dtype
 * on the host as the scalar kernels convert theirs, one launch. */
#include "opencl.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* v holds n contiguous elements of dt (n < 0: take v's count) */
static em_status flat_view(ocl_dev *d, const char *kname, const em_kview *v, const char *what,
                           int32_t dt, int64_t *n)
{
    em_status st = ocl_check_view(d, kname, what, v);
    if (st != EM_OK)
        return st;
    if (v->dtype != dt)
        return ocl_mismatch(d, kname, what, v->dtype, dt);
    int64_t want = 1;
    for (int k = v->ndim - 1; k >= 0; k--) {
        if (v->shape[k] != 1 && v->strides[k] != want)
            return OCL_ERR(d, EM_ERR_INVALID, "%s: %s is not contiguous (stride %lld in "
                           "dim %d)", kname, what, (long long)v->strides[k], k);
        want *= v->shape[k];
    }
    if (*n >= 0 && want != *n)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: %s has %lld elements, out has %lld", kname,
                       what, (long long)want, (long long)*n);
    *n = want;
    return EM_OK;
}

/* The operands of a fused step, outs[0..max_out) then ins[0..max_in) (names[] in that
 * order), each checked flat with n elements of dt; those the flags leave out are bound to
 * ins[0], p, which the kernel then never reads or writes through them. */
static em_status optim_operands(ocl_dev *d, const char *kname, const em_kargs *ka, int max_out,
                                int max_in, const char *const *names, int32_t dt, cl_mem *bufs,
                                cl_long *offs, int64_t *n)
{
    const int nk = max_out + max_in;
    *n = -1;
    for (int k = 0; k < nk; k++) {
        const em_kview *v = k < max_out ? (k < (int)ka->n_out ? ka->outs[k] : NULL)
                                        : (k - max_out < (int)ka->n_in ? ka->ins[k - max_out]
                                                                       : NULL);
        em_status st;
        if (v && (st = flat_view(d, kname, v, names[k], dt, n)) != EM_OK)
            return st;
        bufs[k] = v ? (cl_mem)v->buf : NULL;
        offs[k] = v ? (cl_long)v->offset : 0;
    }
    for (int k = 0; k < nk; k++)
        if (!bufs[k]) {
            bufs[k] = bufs[max_out];
            offs[k] = offs[max_out];
        }
    return EM_OK;
}

/* One launch of slot s over n elements: n, flags, the step's scalars converted to dt (as
 * the scalar kernels convert theirs), then each operand's buffer and offset. */
static em_status optim_launch(ocl_dev *d, ocl_kslot *s, const char *kname, int32_t dt, int64_t n,
                              cl_int flags, const double *sc, int nsc, const cl_mem *bufs,
                              const cl_long *offs, int nb)
{
    if (!s->k)
        return ocl_no_kernel(d, kname, dt);
    if (n == 0)
        return EM_OK;
    em_status st;
    if ((st = ocl_slot_ls(d, s, d->ls, kname)) != EM_OK)
        return st;
    cl_kernel k = s->k;
    cl_uint ai = 0;
    cl_long nl = n;
    if ((st = ocl_set_arg(d, k, ai++, sizeof nl, &nl)) != EM_OK ||
        (st = ocl_set_arg(d, k, ai++, sizeof flags, &flags)) != EM_OK)
        return st;
    for (int i = 0; i < nsc; i++) {
        ocl_arg a = ocl_typed_arg(dt, sc[i]);
        if ((st = ocl_set_arg(d, k, ai++, a.size, &a.v)) != EM_OK)
            return st;
    }
    for (int i = 0; i < nb; i++)
        if ((st = ocl_set_arg(d, k, ai++, sizeof bufs[i], &bufs[i])) != EM_OK ||
            (st = ocl_set_arg(d, k, ai++, sizeof offs[i], &offs[i])) != EM_OK)
            return st;
    size_t local = s->ls, global = ocl_round_up((size_t)n, local);
    return ocl_enqueue(d, k, 1, &global, &local);
}

em_status ocl_k_adam(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    if (ka->struct_size < offsetof(em_kargs, fp) + sizeof ka->fp || ka->n_ip < 4 ||
        ka->n_fp < 3 || !ka->ip || !ka->fp || !ka->outs || !ka->ins)
        return OCL_ERR(d, EM_ERR_INVALID, "adam: expected ip[4] and fp[3] (n_ip %u, n_fp %u)",
                       (unsigned)ka->n_ip, (unsigned)ka->n_fp);
    const int adamw = ka->ip[0] != 0, ams = ka->ip[1] != 0, mx = ka->ip[2] != 0,
              first = ka->ip[3] != 0;
    const uint32_t n_out = ams ? 4u : 3u, n_in = first ? 2u : ams ? 5u : 4u;
    if (ka->n_out != n_out || ka->n_in != n_in)
        return OCL_ERR(d, EM_ERR_INVALID, "adam: expected %u outputs and %u inputs, got %u "
                       "and %u", (unsigned)n_out, (unsigned)n_in, (unsigned)ka->n_out,
                       (unsigned)ka->n_in);
    const int32_t dt = ka->outs[0] ? ka->outs[0]->dtype : EM_F32;
    if (dt != EM_F32 && dt != EM_F64)
        return ocl_no_kernel(d, "adam", dt);
    static const char *const names[9] = {"outs[0] (p')", "outs[1] (m')", "outs[2] (v')",
                                         "outs[3] (vmax')", "ins[0] (p)", "ins[1] (g)",
                                         "ins[2] (m)", "ins[3] (v)", "ins[4] (vmax)"};
    cl_mem bufs[9];
    cl_long offs[9];
    int64_t n;
    em_status st = optim_operands(d, "adam", ka, 4, 5, names, dt, bufs, offs, &n);
    if (st != EM_OK)
        return st;
    const double lr = ka->p[0], beta1 = ka->p[1], beta2 = ka->p[2], eps = ka->p[3];
    const double wd = ka->fp[0], bc1 = ka->fp[1], bc2 = ka->fp[2];
    const double sc[9] = {beta1, 1.0 - beta1, beta2, 1.0 - beta2, wd, 1.0 - lr * wd,
                          sqrt(bc2), eps, lr / bc1};
    cl_int flags = (mx ? 1 : 0) | (wd != 0 ? (adamw ? 4 : 2) : 0) | (first ? 8 : 0) |
                   (ams ? 16 : 0);
    return optim_launch(d, &d->xk[OCL_XK_ADAM][dt], "adam", dt, n, flags, sc, 9, bufs, offs, 9);
}

em_status ocl_k_sgd(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    if (ka->struct_size < offsetof(em_kargs, fp) + sizeof ka->fp || ka->n_ip < 3 || !ka->ip ||
        !ka->outs || !ka->ins)
        return OCL_ERR(d, EM_ERR_INVALID, "sgd: expected ip[3] (n_ip %u)", (unsigned)ka->n_ip);
    const double lr = ka->p[0], momentum = ka->p[1], dampening = ka->p[2], wd = ka->p[3];
    const int nesterov = ka->ip[0] != 0, mx = ka->ip[1] != 0, first = ka->ip[2] != 0;
    const int mom = momentum != 0;
    const uint32_t n_out = mom ? 2u : 1u, n_in = mom && !first ? 3u : 2u;
    if (ka->n_out != n_out || ka->n_in != n_in)
        return OCL_ERR(d, EM_ERR_INVALID, "sgd: expected %u outputs and %u inputs (momentum %g, "
                       "first step %d), got %u and %u", (unsigned)n_out, (unsigned)n_in,
                       momentum, first, (unsigned)ka->n_out, (unsigned)ka->n_in);
    const int32_t dt = ka->outs[0] ? ka->outs[0]->dtype : EM_F32;
    if (dt != EM_F32 && dt != EM_F64)
        return ocl_no_kernel(d, "sgd", dt);
    static const char *const names[5] = {"outs[0] (p')", "outs[1] (b')", "ins[0] (p)",
                                         "ins[1] (g)", "ins[2] (b)"};
    cl_mem bufs[5];
    cl_long offs[5];
    int64_t n;
    em_status st = optim_operands(d, "sgd", ka, 2, 3, names, dt, bufs, offs, &n);
    if (st != EM_OK)
        return st;
    const double sc[4] = {lr, momentum, 1.0 - dampening, wd};
    cl_int flags = (mx ? 1 : 0) | (wd != 0 ? 2 : 0) | (mom ? 4 : 0) | (first ? 8 : 0) |
                   (mom && nesterov ? 16 : 0);
    return optim_launch(d, &d->xk[OCL_XK_SGD][dt], "sgd", dt, n, flags, sc, 4, bufs, offs, 5);
}
