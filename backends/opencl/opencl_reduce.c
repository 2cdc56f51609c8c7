/* backends/opencl/opencl_reduce.c — the OpenCL backend's reductions: sum and prod over
 * any set of dims (planned on the host, one or two kernels), and the kernels along one
 * dimension of a (outer, n, inner) view: max_dim / min_dim (value and first index),
 * softmax and log_softmax. Every result is deterministic: the work split depends only on
 * the shapes and the device. */
#include "opencl.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

enum { OCL_SUM_GRP = 0, OCL_SUM_ITEM = 1, OCL_SUM_FIN = 2 };

/* ------------------------------------------------------------------ sum, prod */

static em_status scratch_get(ocl_dev *d, size_t bytes, cl_mem *out)
{
    if (d->scratch && d->scratch_bytes >= bytes) {
        *out = d->scratch;
        return EM_OK;
    }
    /* releasing while earlier kernels still use it is fine: OpenCL keeps the object alive
     * until they complete */
    if (d->scratch)
        clReleaseMemObject(d->scratch);
    d->scratch = NULL;
    d->scratch_bytes = 0;
    size_t want = bytes < 65536 ? 65536 : bytes;
    cl_int err;
    cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, want, NULL, &err);
    if (!m || err != CL_SUCCESS) {
        char e[48];
        return OCL_ERR(d, EM_ERR_OOM, "cannot allocate %zu bytes of partial results "
                       "(clCreateBuffer: %s)", want, ocl_error_name(err, e, sizeof e));
    }
    d->scratch = m;
    d->scratch_bytes = want;
    *out = m;
    return EM_OK;
}

/* sum and prod plan the reduction like the cpu backend: size-1 dims dropped, dims split into kept
 * (outputs) and reduced; the innermost input dim (smallest stride) decides the kernel.
 *  - it is reduced and the reduction is long: "grp", a work-group per output, reading
 *    contiguous runs together (reduce-all, reduce over the last dim);
 *  - otherwise "item", a work-item per output, neighbours reading neighbours (reduce over
 *    leading dims, or many short reductions).
 * Long reductions are cut into chunks so every compute unit has work; the chunks' partial
 * results (in the accumulation type) go to scratch and a "fin" kernel combines them per
 * output.
 * The cut depends only on the shapes and the device, never on timing: the same call gives
 * the same bits every time. */
static em_status reduce(ocl_dev *d, const em_kargs *ka, int prod)
{
    const char *kname = prod ? "prod" : "sum";
    const int xk0 = prod ? OCL_XK_PROD_GRP : OCL_XK_SUM_GRP;
    const em_kview *in = ka->in[0], *out = ka->out;
    em_status st;
    if ((st = ocl_check_view(d, kname, "out", out)) != EM_OK ||
        (st = ocl_check_view(d, kname, "in[0]", in)) != EM_OK)
        return st;
    if (!d->xk[xk0][out->dtype].k)
        return ocl_no_kernel(d, kname, out->dtype);
    if (in->dtype != out->dtype)
        return ocl_mismatch(d, kname, "in[0]", in->dtype, out->dtype);
    if (in->ndim != out->ndim)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: in[0] has %d dims but out has %d", kname,
                       (int)in->ndim, (int)out->ndim);
    int64_t in_numel = 1, out_numel = 1;
    for (int k = 0; k < in->ndim; k++) {
        if (out->shape[k] != in->shape[k] && out->shape[k] != 1)
            return OCL_ERR(d, EM_ERR_INVALID, "%s: out has size %lld in dim %d, expected 1 "
                           "or %lld", kname, (long long)out->shape[k], k,
                           (long long)in->shape[k]);
        in_numel *= in->shape[k];
        out_numel *= out->shape[k];
    }
    if (out_numel == 0)
        return EM_OK;
    if (in_numel == 0)   /* an empty sum is 0, an empty product 1 */
        return ocl_fill_value(d, out, prod, prod);
    const int dt = out->dtype;

    ocl_rgeom g;
    memset(&g, 0, sizeof g);
    g.ioff = in->offset;
    g.ooff = out->offset;
    /* the innermost dim: smallest non-zero input stride (a broadcast dim has no
     * locality, rank it last) */
    int inner = -1;
    uint64_t best = 0;
    for (int k = 0; k < in->ndim; k++) {
        if (in->shape[k] == 1)
            continue;
        int64_t s = in->strides[k];
        uint64_t a = s == 0 ? UINT64_MAX : (uint64_t)(s < 0 ? -s : s);
        if (inner < 0 || a <= best) {
            inner = k;
            best = a;
        }
    }
    /* kept and reduced dims in row-major order, the innermost one last in its class */
    g.M = g.L = 1;
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < in->ndim; k++) {
            if (in->shape[k] == 1 || (pass == 0) == (k == inner))
                continue;
            if (out->shape[k] == 1) {
                g.rs[g.nr] = in->shape[k];
                g.rist[g.nr++] = in->strides[k];
                g.L *= in->shape[k];
            } else {
                g.ks[g.nk] = in->shape[k];
                g.kist[g.nk] = in->strides[k];
                g.kost[g.nk++] = out->strides[k];
                g.M *= in->shape[k];
            }
        }
    }
    if (g.nr == 0) {   /* nothing reduced: a scaled copy, a reduction of length 1 */
        g.rs[0] = 1;
        g.rist[0] = 0;
        g.nr = 1;
    }
    if (g.nk == 0) {
        g.ks[0] = 1;
        g.kist[0] = g.kost[0] = 0;
        g.nk = 1;
    }
    const int inner_reduced = inner >= 0 && out->shape[inner] == 1;
    const int64_t ls = (int64_t)d->rls;
    const int64_t want_groups = d->compute_units * 4 < 8 ? 8 : (int64_t)d->compute_units * 4;
    int mode;
    int64_t nch = 1;
    if (inner_reduced && g.L >= 64) {
        mode = OCL_SUM_GRP;
        if (g.M < want_groups)
            nch = ocl_ceil_div(want_groups, g.M);
        int64_t most = ocl_ceil_div(g.L, ls * 4);          /* at least 4 elements per item */
        if (nch > most)
            nch = most;
        int64_t least = ocl_ceil_div(g.L, ls * 256);       /* at most 256 per item */
        if (nch < least)
            nch = least;
    } else {
        mode = OCL_SUM_ITEM;
        if (g.M < want_groups * ls)
            nch = ocl_ceil_div(want_groups * ls, g.M);
        int64_t most = ocl_ceil_div(g.L, 32);              /* at least a block per item */
        if (nch > most)
            nch = most;
        int64_t least = ocl_ceil_div(g.L, 4096);           /* bounded sequential runs */
        if (nch < least)
            nch = least;
    }
    if (nch < 1)
        nch = 1;
    g.chunk = ocl_ceil_div(g.L, nch);
    g.nch = ocl_ceil_div(g.L, g.chunk);

    /* accumulation in double (f64, and f32 where the device has doubles), else float; i64
     * in 64-bit unsigned arithmetic, which wraps. prod ignores p[0]. */
    const int fp = dt == EM_F64 || d->fp64;
    ocl_arg scale;
    size_t accsz;
    if (dt == EM_I64) {
        scale.size = accsz = sizeof(cl_ulong);
        scale.v.u = prod ? 1u : (cl_ulong)ocl_sat_i64(ka->p[0]);
    } else {
        scale = ocl_typed_arg(fp ? EM_F64 : EM_F32, prod ? 1.0 : ka->p[0]);
        accsz = fp ? sizeof(cl_double) : sizeof(cl_float);
    }
    cl_mem part = NULL;
    if (g.nch > 1 && (st = scratch_get(d, (size_t)g.M * (size_t)g.nch * accsz, &part)) != EM_OK)
        return st;
    cl_mem xin = (cl_mem)in->buf, xout = (cl_mem)out->buf;
    ocl_kslot *s = &d->xk[xk0 + mode][dt];
    char kn[64];
    ocl_xk_name(kn, sizeof kn, xk0 + mode, dt);
    cl_kernel k = s->k;
    if ((st = ocl_slot_ls(d, s, mode == OCL_SUM_GRP ? d->rls : d->ls, kn)) != EM_OK)
        return st;
    if (mode == OCL_SUM_GRP && s->ls != d->rls)
        return OCL_ERR(d, EM_ERR_BACKEND, "%s: kernel allows work-groups of %zu, it was "
                       "built for %zu", kn, s->ls, d->rls);
    if ((st = ocl_set_arg(d, k, 0, sizeof g, &g)) != EM_OK ||
        (st = ocl_set_arg(d, k, 1, sizeof xin, &xin)) != EM_OK ||
        (st = ocl_set_arg(d, k, 2, sizeof xout, &xout)) != EM_OK ||
        (st = ocl_set_arg(d, k, 3, sizeof part, &part)) != EM_OK ||
        (st = ocl_set_arg(d, k, 4, scale.size, &scale.v)) != EM_OK)
        return st;
    size_t local = s->ls, global;
    if (mode == OCL_SUM_GRP)
        global = (size_t)(g.M * g.nch) * local;
    else
        global = ocl_round_up((size_t)(g.M * g.nch), local);
    if ((st = ocl_enqueue(d, k, 1, &global, &local)) != EM_OK)
        return st;
    if (g.nch == 1)
        return EM_OK;
    s = &d->xk[xk0 + OCL_SUM_FIN][dt];
    k = s->k;
    ocl_xk_name(kn, sizeof kn, xk0 + OCL_SUM_FIN, dt);
    if ((st = ocl_slot_ls(d, s, d->rls, kn)) != EM_OK)
        return st;
    if (s->ls != d->rls)
        return OCL_ERR(d, EM_ERR_BACKEND, "%s: kernel allows work-groups of %zu, it was "
                       "built for %zu", kn, s->ls, d->rls);
    if ((st = ocl_set_arg(d, k, 0, sizeof g, &g)) != EM_OK ||
        (st = ocl_set_arg(d, k, 1, sizeof part, &part)) != EM_OK ||
        (st = ocl_set_arg(d, k, 2, sizeof xout, &xout)) != EM_OK ||
        (st = ocl_set_arg(d, k, 3, scale.size, &scale.v)) != EM_OK)
        return st;
    local = s->ls;
    global = (size_t)g.M * local;
    return ocl_enqueue(d, k, 1, &global, &local);
}

em_status ocl_k_sum(void *dev, const em_kargs *ka)
{
    return reduce(dev, ka, 0);
}

em_status ocl_k_prod(void *dev, const em_kargs *ka)
{
    return reduce(dev, ka, 1);
}

/* ------------------------------------------------------------------ along one dim */

/* A (outer, n, inner) view of the core's em__launch_dim: 3 dims, n >= 1 */
static em_status check_3d(ocl_dev *d, const char *kname, const char *what, const em_kview *v)
{
    em_status st = ocl_check_view(d, kname, what, v);
    if (st != EM_OK)
        return st;
    if (v->ndim != 3)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: %s has %d dims, expected 3 (outer, n, inner)",
                       kname, what, (int)v->ndim);
    return EM_OK;
}

static em_status check_shape(ocl_dev *d, const char *kname, const char *what,
                             const em_kview *v, int64_t outer, int64_t n, int64_t inner)
{
    if (v->shape[0] != outer || v->shape[1] != n || v->shape[2] != inner)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: %s has shape (%lld, %lld, %lld), expected "
                       "(%lld, %lld, %lld)", kname, what, (long long)v->shape[0],
                       (long long)v->shape[1], (long long)v->shape[2], (long long)outer,
                       (long long)n, (long long)inner);
    return EM_OK;
}

/* Check the views of max_dim / min_dim (with_index: outs[1] holds the i64 indices) or
 * softmax / log_softmax, fill the geometry, then launch kernel xk (item) or xk + 1 (grp:
 * a work-group per row, for long rows when there are few of them). */
static em_status along_dim(ocl_dev *d, const em_kargs *ka, const char *kname, int xk,
                           int with_index)
{
    const em_kview *in = ka->in[0], *out = ka->out, *idx = NULL;
    em_status st;
    if ((st = check_3d(d, kname, "in[0]", in)) != EM_OK ||
        (st = check_3d(d, kname, "out", out)) != EM_OK)
        return st;
    if (with_index) {
        if (ka->struct_size < offsetof(em_kargs, n_ip) || ka->n_out < 2 || !ka->outs)
            return OCL_ERR(d, EM_ERR_INVALID, "%s: outs[1] (the indices) is missing", kname);
        idx = ka->outs[1];
        if ((st = check_3d(d, kname, "outs[1]", idx)) != EM_OK)
            return st;
        if (idx->dtype != EM_I64)
            return ocl_mismatch(d, kname, "outs[1]", idx->dtype, EM_I64);
    }
    const int32_t dt = in->dtype;
    if (out->dtype != dt)
        return ocl_mismatch(d, kname, "out", out->dtype, dt);
    if (!d->xk[xk][dt].k)
        return ocl_no_kernel(d, kname, dt);
    const int64_t outer = in->shape[0], n = in->shape[1], inner = in->shape[2];
    if ((st = check_shape(d, kname, "out", out, outer, with_index ? 1 : n, inner)) != EM_OK ||
        (idx && (st = check_shape(d, kname, "outs[1]", idx, outer, 1, inner)) != EM_OK))
        return st;
    const int64_t rows = outer * inner;
    if (rows == 0)
        return EM_OK;
    if (n < 1)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: the dimension is empty", kname);
    ocl_dgeom g;
    memset(&g, 0, sizeof g);
    g.outer = outer;
    g.n = n;
    g.inner = inner;
    g.ioff = in->offset;
    g.is0 = in->strides[0];
    g.is1 = in->strides[1];
    g.is2 = in->strides[2];
    g.ooff = out->offset;
    g.os0 = out->strides[0];
    g.os1 = out->strides[1];
    g.os2 = out->strides[2];
    if (idx) {
        g.xoff = idx->offset;
        g.xs0 = idx->strides[0];
        g.xs2 = idx->strides[2];
    }
    /* a work-group per row when the rows are long and too few to fill the device with
     * work-items; both kernels give the same result for every row they would share */
    const int grp = n >= 128 && rows < (int64_t)d->compute_units * 64;
    ocl_kslot *s = &d->xk[xk + grp][dt];
    char kn[64];
    ocl_xk_name(kn, sizeof kn, xk + grp, dt);
    if ((st = ocl_slot_ls(d, s, grp ? d->rls : d->ls, kn)) != EM_OK)
        return st;
    if (grp && s->ls != d->rls)
        return OCL_ERR(d, EM_ERR_BACKEND, "%s: kernel allows work-groups of %zu, it was built "
                       "for %zu", kn, s->ls, d->rls);
    cl_kernel k = s->k;
    cl_mem xin = (cl_mem)in->buf, xout = (cl_mem)out->buf;
    if ((st = ocl_set_arg(d, k, 0, sizeof g, &g)) != EM_OK ||
        (st = ocl_set_arg(d, k, 1, sizeof xin, &xin)) != EM_OK ||
        (st = ocl_set_arg(d, k, 2, sizeof xout, &xout)) != EM_OK)
        return st;
    if (idx) {
        cl_mem xidx = (cl_mem)idx->buf;
        if ((st = ocl_set_arg(d, k, 3, sizeof xidx, &xidx)) != EM_OK)
            return st;
    }
    size_t local = s->ls;
    size_t global = grp ? (size_t)rows * local : ocl_round_up((size_t)rows, local);
    return ocl_enqueue(d, k, 1, &global, &local);
}

em_status ocl_k_max_dim(void *dev, const em_kargs *ka)
{
    return along_dim(dev, ka, "max_dim", OCL_XK_MAX_ITEM, 1);
}

em_status ocl_k_min_dim(void *dev, const em_kargs *ka)
{
    return along_dim(dev, ka, "min_dim", OCL_XK_MIN_ITEM, 1);
}

em_status ocl_k_softmax(void *dev, const em_kargs *ka)
{
    return along_dim(dev, ka, "softmax", OCL_XK_SOFTMAX_ITEM, 0);
}

em_status ocl_k_log_softmax(void *dev, const em_kargs *ka)
{
    return along_dim(dev, ka, "log_softmax", OCL_XK_LOG_SOFTMAX_ITEM, 0);
}
