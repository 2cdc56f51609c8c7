/* bench/blas_backend.c — a partial backend as a vendor's first version often is: host memory
 * and a gemm from the system BLAS (cblas), every other kernel NULL, so those ops run on the cpu
 * backend through the op fallback. bench/host_fallback.sh builds it twice from this one file:
 * against the frozen ABI 1.0 headers (tests/abi/1.0), where each fallback copies its operands
 * to the host and back, and against the current headers, where it declares its buffers host
 * memory (EM_DEVICE_HOST_BUFFERS) and the fallbacks run in place. Only for measuring that
 * difference: not built or installed by the package. */
#define _POSIX_C_SOURCE 200809L   /* posix_memalign under -std=c11 */
#include <ember/backend.h>

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

typedef struct bb_inst {
    const em_host *host;
    em_host_ctx *hc;
} bb_inst;

static void bb_shutdown(void *bctx)
{
    bb_inst *in = bctx;
    in->host->free(in->hc, in);
}

static em_status bb_device_count(void *bctx, int *count)
{
    (void)bctx;
    *count = 1;
    return EM_OK;
}

static em_status bb_device_props(void *bctx, int index, em_device_props *p)
{
    bb_inst *in = bctx;
    if (index != 0)
        return in->host->error(in->hc, EM_ERR_NO_DEVICE, "no device %d", index);
    strcpy(p->name, "host memory, gemm from cblas");
    strcpy(p->vendor, "ember bench");
    strcpy(p->driver, "cblas");
    p->compute_units = 1;
    p->fp64 = 1;
#if EM_ABI_MINOR >= 1
    if (p->struct_size >= offsetof(em_device_props, flags) + sizeof p->flags)
        p->flags = EM_DEVICE_HOST_BUFFERS;
#endif
    return EM_OK;
}

static em_status bb_device_open(void *bctx, int index, void **dev)
{
    if (index > 0)
        return EM_ERR_NO_DEVICE;
    *dev = bctx;
    return EM_OK;
}

static void bb_device_close(void *dev)
{
    (void)dev;
}

static em_status bb_buffer_alloc(void *dev, size_t bytes, void **buf)
{
    bb_inst *in = dev;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0)
        return in->host->error(in->hc, EM_ERR_OOM, "cannot allocate %zu bytes", bytes);
    *buf = p;
    return EM_OK;
}

static void bb_buffer_free(void *dev, void *buf)
{
    (void)dev;
    free(buf);
}

static em_status bb_copy_h2d(void *dev, void *dst, size_t off, const void *src, size_t bytes)
{
    (void)dev;
    memcpy((char *)dst + off, src, bytes);
    return EM_OK;
}

static em_status bb_copy_d2h(void *dev, void *dst, const void *src, size_t off, size_t bytes)
{
    (void)dev;
    memcpy(dst, (const char *)src + off, bytes);
    return EM_OK;
}

static em_status bb_synchronize(void *dev)
{
    (void)dev;
    return EM_OK;
}

static em_status bb_gemm(void *dev, const em_gemm_args *g)
{
    bb_inst *in = dev;
    enum CBLAS_TRANSPOSE ta = g->trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = g->trans_b ? CblasTrans : CblasNoTrans;
    for (int64_t b = 0; b < g->batch; b++) {
        if (g->dtype == EM_F32)
            cblas_sgemm(CblasRowMajor, ta, tb, (int)g->m, (int)g->n, (int)g->k, (float)g->alpha,
                        (const float *)g->a + g->a_offset + b * g->a_batch_stride, (int)g->lda,
                        (const float *)g->b + g->b_offset + b * g->b_batch_stride, (int)g->ldb,
                        (float)g->beta, (float *)g->c + g->c_offset + b * g->c_batch_stride,
                        (int)g->ldc);
        else if (g->dtype == EM_F64)
            cblas_dgemm(CblasRowMajor, ta, tb, (int)g->m, (int)g->n, (int)g->k, g->alpha,
                        (const double *)g->a + g->a_offset + b * g->a_batch_stride, (int)g->lda,
                        (const double *)g->b + g->b_offset + b * g->b_batch_stride, (int)g->ldb,
                        g->beta, (double *)g->c + g->c_offset + b * g->c_batch_stride,
                        (int)g->ldc);
        else
            return in->host->error(in->hc, EM_ERR_DTYPE, "gemm: f32 or f64 only");
    }
    return EM_OK;
}

static const em_backend_ops bb_ops = {
    .struct_size = sizeof(em_backend_ops),
    .shutdown = bb_shutdown,
    .device_count = bb_device_count,
    .device_props = bb_device_props,
    .device_open = bb_device_open,
    .device_close = bb_device_close,
    .buffer_alloc = bb_buffer_alloc,
    .buffer_free = bb_buffer_free,
    .copy_h2d = bb_copy_h2d,
    .copy_d2h = bb_copy_d2h,
    .synchronize = bb_synchronize,
    .gemm = bb_gemm,
};

EM_BACKEND_ENTRY
{
    out->abi_major = EM_ABI_MAJOR;
    out->abi_minor = EM_ABI_MINOR;
    out->name = "blasbench";
    out->version = "1";
    out->description = "bench: host memory + cblas gemm only";
    (void)config;
    (void)n_config;
    if (host->abi_major != EM_ABI_MAJOR)
        return host->error(hc, EM_ERR_PLUGIN, "ABI major mismatch");
#if EM_ABI_MINOR >= 1
    if (host->struct_size >= offsetof(em_host, flags) + sizeof host->flags &&
        (host->flags & EM_HOST_DESCRIBE))
        return EM_OK;
#endif
    bb_inst *in = host->alloc(hc, sizeof *in);
    if (!in)
        return host->error(hc, EM_ERR_OOM, "out of memory");
    in->host = host;
    in->hc = hc;
    out->ops = &bb_ops;
    out->ctx = in;
    return EM_OK;
}
