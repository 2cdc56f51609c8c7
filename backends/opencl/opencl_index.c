/* backends/opencl/opencl_index.c — the OpenCL backend's indexing kernels (ABI 1.2):
 * index_select on the core's (outer, n, inner) views, gather and scatter_add on plain
 * strided N-d views with the dim in ip[0]. Index views are i64.
 *
 * scatter_add has two kernels. The plain one gives each work-item one line of the index
 * along dim and walks it in order: two index positions can only hit the same output element
 * when they differ in dim alone, so lines never race, and the sums are deterministic, with
 * no atomics (every dtype, every device). When there are few, long lines (a 1-D index) that
 * leaves the device idle, so a work-item per index element adds with atomics instead
 * (f32 through compare-and-swap on its bits, i32 atomic_add, f64 / i64 through the 64-bit
 * atomics of cl_khr_int64_base_atomics where the device has them); the order of the
 * additions, and so the rounding of float sums, then varies from run to run. */
#include "opencl.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Mirrors em_igeom of kernels_index.cl: index_select's (outer, n, inner) input, its index
 * of m elements and (outer, m, inner) output. */
typedef struct ocl_igeom {
    cl_long outer, n, m, inner;
    cl_long ioff, is0, is1, is2;
    cl_long xoff, xs;
    cl_long ooff, os0, os1, os2;
} ocl_igeom;

static em_status check_index(ocl_dev *d, const char *kname, const char *what,
                             const em_kview *v)
{
    em_status st = ocl_check_view(d, kname, what, v);
    if (st != EM_OK)
        return st;
    return v->dtype == EM_I64 ? EM_OK : ocl_mismatch(d, kname, what, v->dtype, EM_I64);
}

static em_status launch(ocl_dev *d, ocl_kslot *s, const char *kn, int64_t n,
                        const void *geom, size_t geom_size, const cl_mem *bufs, int nbufs,
                        const cl_long *extra, int nextra)
{
    em_status st;
    if ((st = ocl_slot_ls(d, s, d->ls, kn)) != EM_OK)
        return st;
    cl_kernel k = s->k;
    cl_uint ai = 0;
    cl_long nl = n;
    if ((st = ocl_set_arg(d, k, ai++, sizeof nl, &nl)) != EM_OK ||
        (st = ocl_set_arg(d, k, ai++, geom_size, geom)) != EM_OK)
        return st;
    for (int i = 0; i < nextra; i++)
        if ((st = ocl_set_arg(d, k, ai++, sizeof extra[i], &extra[i])) != EM_OK)
            return st;
    for (int i = 0; i < nbufs; i++)
        if ((st = ocl_set_arg(d, k, ai++, sizeof bufs[i], &bufs[i])) != EM_OK)
            return st;
    size_t local = s->ls, global = ocl_round_up((size_t)n, local);
    return ocl_enqueue(d, k, 1, &global, &local);
}

/* ------------------------------------------------------------------ index_select */

em_status ocl_k_index_select(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    const char *kname = "index_select";
    const em_kview *in = ka->in[0], *idx = ka->in[1], *out = ka->out;
    em_status st;
    if ((st = ocl_check_view(d, kname, "in[0]", in)) != EM_OK ||
        (st = check_index(d, kname, "in[1]", idx)) != EM_OK ||
        (st = ocl_check_view(d, kname, "out", out)) != EM_OK)
        return st;
    if (in->ndim != 3 || out->ndim != 3 || idx->ndim != 1)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: expected a 3-d input and output and a 1-d "
                       "index, got %d, %d and %d dims", kname, (int)in->ndim, (int)out->ndim,
                       (int)idx->ndim);
    if (out->dtype != in->dtype)
        return ocl_mismatch(d, kname, "out", out->dtype, in->dtype);
    const int64_t m = idx->shape[0];
    if (out->shape[0] != in->shape[0] || out->shape[1] != m || out->shape[2] != in->shape[2])
        return OCL_ERR(d, EM_ERR_INVALID, "%s: out has shape (%lld, %lld, %lld), expected "
                       "(%lld, %lld, %lld)", kname, (long long)out->shape[0],
                       (long long)out->shape[1], (long long)out->shape[2],
                       (long long)in->shape[0], (long long)m, (long long)in->shape[2]);
    const int32_t dt = in->dtype;
    ocl_kslot *s = &d->xk[OCL_XK_INDEX_SELECT][dt];
    if (!s->k)
        return ocl_no_kernel(d, kname, dt);
    const int64_t n = out->shape[0] * m * out->shape[2];
    if (n == 0)
        return EM_OK;
    ocl_igeom g;
    memset(&g, 0, sizeof g);
    g.outer = in->shape[0];
    g.n = in->shape[1];
    g.m = m;
    g.inner = in->shape[2];
    g.ioff = in->offset;
    g.is0 = in->strides[0];
    g.is1 = in->strides[1];
    g.is2 = in->strides[2];
    g.xoff = idx->offset;
    g.xs = idx->strides[0];
    g.ooff = out->offset;
    g.os0 = out->strides[0];
    g.os1 = out->strides[1];
    g.os2 = out->strides[2];
    cl_mem bufs[3] = {(cl_mem)out->buf, (cl_mem)in->buf, (cl_mem)idx->buf};
    char kn[64];
    ocl_xk_name(kn, sizeof kn, OCL_XK_INDEX_SELECT, dt);
    return launch(d, s, kn, n, &g, sizeof g, bufs, 3, NULL, 0);
}

/* ------------------------------------------------------------------ gather, scatter_add */

/* The dim of gather / scatter_add (ip[0]) and the checks shared by both: `data` has the
 * index's shape, `big` is at least as large in every dim but dim. */
static em_status dim_views(ocl_dev *d, const char *kname, const em_kargs *ka,
                           const em_kview *idx, const em_kview *data, const char *dname,
                           const em_kview *big, const char *bname, int *dim)
{
    if (ka->struct_size < offsetof(em_kargs, fp) || ka->n_ip < 1 || !ka->ip)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: ip[0] (the dim) is missing", kname);
    if (idx->ndim != data->ndim || idx->ndim != big->ndim)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: the index has %d dims, %s %d and %s %d", kname,
                       (int)idx->ndim, dname, (int)data->ndim, bname, (int)big->ndim);
    if (ka->ip[0] < 0 || ka->ip[0] >= idx->ndim)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: dim %lld is out of range for %d dims", kname,
                       (long long)ka->ip[0], (int)idx->ndim);
    *dim = (int)ka->ip[0];
    if (data->dtype != big->dtype)
        return ocl_mismatch(d, kname, dname, data->dtype, big->dtype);
    for (int k = 0; k < idx->ndim; k++) {
        if (data->shape[k] != idx->shape[k])
            return OCL_ERR(d, EM_ERR_INVALID, "%s: %s has size %lld in dim %d but the index "
                           "has %lld", kname, dname, (long long)data->shape[k], k,
                           (long long)idx->shape[k]);
        if (k != *dim && big->shape[k] < idx->shape[k])
            return OCL_ERR(d, EM_ERR_INVALID, "%s: %s has size %lld in dim %d, less than the "
                           "index's %lld", kname, bname, (long long)big->shape[k], k,
                           (long long)idx->shape[k]);
    }
    return EM_OK;
}

/* geometry over `shape` (the index's), operand q's strides and offset from v[q] */
static void fill_geom(ocl_geom *g, const int64_t *shape, int ndim, const em_kview *const *v,
                      int nv)
{
    memset(g, 0, sizeof *g);
    g->ndim = ndim;
    for (int j = 0; j < ndim; j++)
        g->shape[j] = shape[j];
    for (int q = 0; q < nv; q++) {
        g->off[q] = v[q]->offset;
        for (int j = 0; j < ndim; j++)
            g->st[q][j] = v[q]->strides[j];
    }
}

em_status ocl_k_gather(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    const char *kname = "gather";
    const em_kview *src = ka->in[0], *idx = ka->in[1], *out = ka->out;
    em_status st;
    int dim;
    if ((st = ocl_check_view(d, kname, "in[0]", src)) != EM_OK ||
        (st = check_index(d, kname, "in[1]", idx)) != EM_OK ||
        (st = ocl_check_view(d, kname, "out", out)) != EM_OK ||
        (st = dim_views(d, kname, ka, idx, out, "out", src, "in[0]", &dim)) != EM_OK)
        return st;
    const int32_t dt = out->dtype;
    ocl_kslot *s = &d->xk[OCL_XK_GATHER][dt];
    if (!s->k)
        return ocl_no_kernel(d, kname, dt);
    int64_t n = 1;
    for (int k = 0; k < idx->ndim; k++)
        n *= idx->shape[k];
    if (n == 0)
        return EM_OK;
    ocl_geom g;
    const em_kview *v[3] = {out, src, idx};
    fill_geom(&g, idx->shape, idx->ndim, v, 3);
    cl_mem bufs[3] = {(cl_mem)out->buf, (cl_mem)src->buf, (cl_mem)idx->buf};
    const cl_long extra[2] = {dim, src->shape[dim]};
    char kn[64];
    ocl_xk_name(kn, sizeof kn, OCL_XK_GATHER, dt);
    return launch(d, s, kn, n, &g, sizeof g, bufs, 3, extra, 2);
}

em_status ocl_k_scatter_add(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    const char *kname = "scatter_add";
    const em_kview *idx = ka->in[0], *src = ka->in[1], *out = ka->out;
    em_status st;
    int dim;
    if ((st = check_index(d, kname, "in[0]", idx)) != EM_OK ||
        (st = ocl_check_view(d, kname, "in[1]", src)) != EM_OK ||
        (st = ocl_check_view(d, kname, "out", out)) != EM_OK ||
        (st = dim_views(d, kname, ka, idx, src, "in[1]", out, "out", &dim)) != EM_OK)
        return st;
    const int32_t dt = out->dtype;
    if (!d->xk[OCL_XK_SCATTER_ADD][dt].k)
        return ocl_no_kernel(d, kname, dt);
    int64_t n = 1;
    for (int k = 0; k < idx->ndim; k++)
        n *= idx->shape[k];
    if (n == 0)
        return EM_OK;
    const int64_t len = idx->shape[dim], lines = n / len;
    ocl_geom g;
    const em_kview *v[3] = {out, idx, src};
    fill_geom(&g, idx->shape, idx->ndim, v, 3);
    cl_mem bufs[3] = {(cl_mem)out->buf, (cl_mem)idx->buf, (cl_mem)src->buf};
    char kn[64];
    /* atomics only when the lines alone cannot keep the device busy */
    ocl_kslot *s = &d->xk[OCL_XK_SCATTER_ADD_ATOMIC][dt];
    if (s->k && len >= 16 && lines < (int64_t)d->compute_units * (int64_t)d->ls) {
        const cl_long extra[2] = {dim, out->shape[dim]};
        ocl_xk_name(kn, sizeof kn, OCL_XK_SCATTER_ADD_ATOMIC, dt);
        return launch(d, s, kn, n, &g, sizeof g, bufs, 3, extra, 2);
    }
    /* a work-item per line: the geometry runs over the index with dim collapsed */
    g.shape[dim] = 1;
    s = &d->xk[OCL_XK_SCATTER_ADD][dt];
    const cl_long extra[3] = {dim, out->shape[dim], len};
    ocl_xk_name(kn, sizeof kn, OCL_XK_SCATTER_ADD, dt);
    return launch(d, s, kn, lines, &g, sizeof g, bufs, 3, extra, 3);
}
