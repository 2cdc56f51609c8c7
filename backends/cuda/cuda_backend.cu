/* backends/cuda/cuda_backend.cu — the cuda backend's entry point and the ops table: config
 * ([cuda] device=), describe calls, device enumeration and properties, device open (current
 * device, one non-blocking stream, a cuBLAS handle bound to it), buffers, copies and
 * synchronisation. Kernels are in cuda_kernels.cu, cuda_reduce.cu, cuda_math.cu, cuda_dim.cu
 * and cuda_gather.cu, gemm and the loading of cuBLAS in cuda_blas.cu, streams and events in
 * cuda_async.cu, whole convolutions on cuDNN (when configure found it) in cuda_dnn.cu. Built by nvcc as ember-backend-cuda.so with the CUDA runtime linked in
 * statically and no libcuda link, so it loads quickly, and also on machines without the
 * NVIDIA driver, where it reports "no usable CUDA device: <reason>".
 *
 * Memory: buffer_alloc/buffer_free are plain cudaMalloc/cudaFree. The core keeps the
 * caching allocator (core/context.c: size-binned free lists per context, four classes per
 * power of two, drained and retried on OOM), so a training step reuses buffers and never
 * reaches cudaMalloc once warm. All work of a context is queued on its one stream, so a
 * buffer the core recycles is only touched again after earlier work on it, in stream order
 * (async copies the core puts on a stream of its own, it orders against this one with
 * events).
 *
 * Synchronisation: only copy_d2h and synchronize wait for the stream (and a host-to-device
 * copy larger than one pinned staging slot, see copy_h2d). Kernels, gemm, d2d copies and
 * small uploads are asynchronous. synchronize also waits for the extra streams of ABI 1.1's
 * asynchrony entries (cuda_async.cu). */
#include "cuda_backend.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CU_VERSION "0.1.0"

/* The architectures nvcc built the kernels for (configure, from NVCC_GENCODE). */
#ifndef CU_NVCC_TARGETS
#define CU_NVCC_TARGETS "the architectures of NVCC_GENCODE"
#endif

static const char *const cu_config_keys[] = {"device", NULL};

__thread int cu_tls_device = -1;

/* ------------------------------------------------------------------ small helpers */

static em_status cu_status_of(cudaError_t e)
{
    return e == cudaErrorMemoryAllocation ? EM_ERR_OOM : EM_ERR_BACKEND;
}

/* The errors the CUDA runtime documents as leaving the context unusable ("the process must
 * be terminated and relaunched"). */
bool cu_error_sticky(cudaError_t e)
{
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorECCUncorrectable:
        return true;
    default:
        return false;
    }
}

em_status cu_unusable(cu_dev *d)
{
    return CU_ERR(d->inst, EM_ERR_DEVICE, "cuda: the CUDA context is unusable after %s (%s, "
                  "in %s); create a new process", cudaGetErrorName(d->sticky),
                  cudaGetErrorString(d->sticky), d->sticky_where);
}

em_status cu_fail(cu_dev *d, cudaError_t e, const char *what, const char *api)
{
    cudaGetLastError();   /* clear a non-sticky error; a sticky one stays and reappears */
    if (cu_error_sticky(e)) {
        if (d->sticky == cudaSuccess) {
            d->sticky = e;
            snprintf(d->sticky_where, sizeof d->sticky_where, "%s: %s", what, api);
        }
        return CU_ERR(d->inst, EM_ERR_DEVICE, "cuda: %s: %s failed: %s (%s); the CUDA context "
                      "is unusable after %s; create a new process", what, api,
                      cudaGetErrorString(e), cudaGetErrorName(e), cudaGetErrorName(e));
    }
    return CU_ERR(d->inst, cu_status_of(e), "cuda: %s: %s failed: %s (%s)", what, api,
                  cudaGetErrorString(e), cudaGetErrorName(e));
}

em_status cu_make_current(cu_dev *d)
{
    cudaError_t e = cudaSetDevice(d->index);
    if (e != cudaSuccess)
        return cu_fail(d, e, "device", "cudaSetDevice");
    cu_tls_device = d->index;
    return EM_OK;
}

/* "12.4" from 12040 */
static void version_text(int v, char *buf, size_t n)
{
    if (v <= 0)
        snprintf(buf, n, "none");
    else
        snprintf(buf, n, "%d.%d", v / 1000, (v % 1000) / 10);
}

/* ------------------------------------------------------------------ devices */

/* The reason for "no usable CUDA device" when the runtime cannot count devices. */
static em_status no_device(cu_inst *inst, cudaError_t e)
{
    int drv = 0;
    cudaDriverGetVersion(&drv);
    cudaGetLastError();
    return CU_ERR(inst, EM_ERR_NO_DEVICE, "no usable CUDA device: %s (%s)%s",
                  cudaGetErrorString(e), cudaGetErrorName(e),
                  drv == 0 ? "; no NVIDIA driver is installed (libcuda.so.1 not found)" : "");
}

static em_status count_devices(cu_inst *inst, int *count)
{
    int c = 0;
    cudaError_t e = cudaGetDeviceCount(&c);
    if (e != cudaSuccess)   /* without a driver: error 35, count left untouched */
        return no_device(inst, e);
    if (c <= 0)
        return CU_ERR(inst, EM_ERR_NO_DEVICE, "no usable CUDA device: no GPU found");
    *count = c;
    return EM_OK;
}

static em_status cu_device_count(void *bctx, int *count)
{
    return count_devices((cu_inst *)bctx, count);
}

static em_status cu_device_props(void *bctx, int index, em_device_props *props)
{
    cu_inst *inst = (cu_inst *)bctx;
    int count = 0;
    em_status st = count_devices(inst, &count);
    if (st != EM_OK)
        return st;
    if (index < 0 || index >= count)
        return CU_ERR(inst, EM_ERR_NO_DEVICE, "cuda: no device %d (%d CUDA device%s, indices 0..%d)",
                      index, count, count == 1 ? "" : "s", count - 1);
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, index);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return CU_ERR(inst, EM_ERR_BACKEND, "cuda: cudaGetDeviceProperties(%d) failed: %s (%s)",
                      index, cudaGetErrorString(e), cudaGetErrorName(e));
    }
    int drv = 0, rt = 0, clock_khz = 0, mem_khz = 0, blas_major = 0, blas_minor = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, index);
    cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, index);
    cudaGetLastError();
    /* ember-info is where a missing cuBLAS should show, before a context fails to open */
    char why[640], blas[200];
    cu_blas_fns cb;
    const bool have_blas = cu_blas_load(&cb, why, sizeof why);
    if (have_blas) {
        cb.get_property(MAJOR_VERSION, &blas_major);
        cb.get_property(MINOR_VERSION, &blas_minor);
        snprintf(blas, sizeof blas, "%d.%d (%s)", blas_major, blas_minor, cb.path);
    }
#ifdef HAVE_CUDNN
    /* like cuBLAS's, a missing cuDNN shows here; convolutions are then lowered */
    const char *dnn_path = nullptr, *dnn_why = nullptr;
    char conv[200];
    if (cu_dnn_load(&dnn_path, &dnn_why)) {
        const size_t dnn = cu_dnn_version();
        snprintf(conv, sizeof conv, "cuDNN %zu.%zu.%zu (%s)", dnn / 10000, (dnn / 100) % 100,
                 dnn % 100, dnn_path);
    } else {
        snprintf(conv, sizeof conv, "im2col + cuBLAS gemm (cuDNN cannot be loaded: %s)", dnn_why);
    }
#else
    const char *conv = "im2col + cuBLAS gemm (built without cuDNN)";
#endif
    char dv[16], rv[16];
    version_text(drv, dv, sizeof dv);
    version_text(rt, rv, sizeof rv);
    /* Filled in full here, handed over only as far as the caller's struct_size reaches: an
     * older core's struct ends before the fields later minors appended. */
    em_device_props r;
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "%.*s", (int)sizeof r.name - 1, p.name);
    snprintf(r.vendor, sizeof r.vendor, "NVIDIA");
    snprintf(r.driver, sizeof r.driver, "CUDA driver %s, runtime %s", dv, rv);
    r.total_memory = (uint64_t)p.totalGlobalMem;
    r.compute_units = (uint32_t)p.multiProcessorCount;
    r.fp64 = 1;
    /* buffers are device memory, which the host cannot touch: no EM_DEVICE_HOST_BUFFERS */
    r.flags = 0;
    const int ok = p.major * 10 + p.minor >= 75;
    const int len =
        snprintf(r.extra, sizeof r.extra,
                 "compute capability: %d.%d%s\n"
                 "SM clock: %d MHz, memory clock: %d MHz, bus width: %d bits\n"
                 "L2 cache: %d KiB, shared memory per block: %zu KiB\n"
                 "PCI: %04x:%02x:%02x.0\n"
                 "convolution: %s\n"
                 "gemm: cuBLAS %s%s\n",
                 p.major, p.minor, ok ? "" : " (below 7.5: not supported by this plugin)",
                 clock_khz / 1000, mem_khz / 1000, p.memoryBusWidth, p.l2CacheSize / 1024,
                 p.sharedMemPerBlock / 1024, (unsigned)p.pciDomainID, (unsigned)p.pciBusID,
                 (unsigned)p.pciDeviceID, conv,
                 have_blas ? blas : "cannot be loaded, so devices cannot open: ",
                 have_blas ? ", f32: full fp32, no TF32" : why);
    if (len >= (int)sizeof r.extra)   /* only a long cuBLAS failure reason gets here */
        memcpy(r.extra + sizeof r.extra - 5, "...\n", 5);
    const size_t n = props->struct_size < sizeof r ? props->struct_size : sizeof r;
    if (n > sizeof r.struct_size)
        memcpy((char *)props + sizeof r.struct_size, (const char *)&r + sizeof r.struct_size,
               n - sizeof r.struct_size);
    return EM_OK;
}

static void dev_release(cu_dev *d)
{
    if (d->stream)
        cudaStreamSynchronize(d->stream);
    cu_streams_release(d);
#ifdef HAVE_CUDNN
    cu_dnn_release(d);
#endif
    if (d->blas)
        d->cb.destroy(d->blas);
    for (int i = 0; i < CU_STAGE_SLOTS; i++)
        if (d->stage_ev[i])
            cudaEventDestroy(d->stage_ev[i]);
    if (d->stage)
        cudaFreeHost(d->stage);
    if (d->d2h)
        cudaFreeHost(d->d2h);
    if (d->red)
        cudaFree(d->red);
    if (d->stream)
        cudaStreamDestroy(d->stream);
    cudaGetLastError();
    cu_inst *inst = d->inst;
    inst->host->free(inst->hc, d);
}

static em_status cu_device_open(void *bctx, int index, void **out)
{
    cu_inst *inst = (cu_inst *)bctx;
    int count = 0;
    em_status st = count_devices(inst, &count);
    if (st != EM_OK)
        return st;
    const int idx = index >= 0 ? index : inst->device >= 0 ? inst->device : 0;
    if (idx >= count) {
        if (index < 0)
            return CU_ERR(inst, EM_ERR_NO_DEVICE,
                          "cuda: [cuda] device=%d, but there %s %d CUDA device%s (indices 0..%d)",
                          idx, count == 1 ? "is" : "are", count, count == 1 ? "" : "s", count - 1);
        return CU_ERR(inst, EM_ERR_NO_DEVICE, "cuda: no device %d (%d CUDA device%s, indices 0..%d)",
                      idx, count, count == 1 ? "" : "s", count - 1);
    }
    char why[640];
    cu_blas_fns cb;
    if (!cu_blas_load(&cb, why, sizeof why))
        return CU_ERR(inst, EM_ERR_BACKEND, "cuda: device open: cannot load cuBLAS: %s", why);
    cu_dev *d = (cu_dev *)inst->host->alloc(inst->hc, sizeof *d);
    if (!d)
        return CU_ERR(inst, EM_ERR_OOM, "cuda: cannot allocate %zu bytes for the device",
                      sizeof *d);
    memset(d, 0, sizeof *d);
    d->inst = inst;
    d->index = idx;
    d->cb = cb;
    cudaError_t e;
    cublasStatus_t bs;
    const char *api = "";
    int major = 0, minor = 0;
    if ((e = cudaSetDevice(idx)) != cudaSuccess) {
        api = "cudaSetDevice";
        goto cuda_fail;
    }
    cu_tls_device = idx;
    if ((e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, idx)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, idx)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&d->sm_count, cudaDevAttrMultiProcessorCount, idx)) != cudaSuccess) {
        api = "cudaDeviceGetAttribute";
        goto cuda_fail;
    }
    d->cc_major = major;
    d->cc_minor = minor;
    if ((e = cu_kernels_probe()) != cudaSuccess) {
        st = CU_ERR(inst, EM_ERR_NO_DEVICE,
                    "cuda: device %d (compute capability %d.%d) cannot run this plugin's kernels, "
                    "built for %s (NVCC_GENCODE): %s (%s)",
                    idx, major, minor, CU_NVCC_TARGETS, cudaGetErrorString(e), cudaGetErrorName(e));
        dev_release(d);
        return st;
    }
    /* grid-stride kernels: 8 blocks of 256 threads per SM fill every SM generation */
    d->max_blocks = (int64_t)(d->sm_count > 0 ? d->sm_count : 1) * 8;
    if ((e = cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        api = "cudaStreamCreateWithFlags";
        goto cuda_fail;
    }
    if ((bs = d->cb.create(&d->blas)) != CUBLAS_STATUS_SUCCESS) {
        d->blas = NULL;
        st = cu_blas_fail(d, bs, "device open", "cublasCreate");
        dev_release(d);
        return st;
    }
    if ((bs = d->cb.set_stream(d->blas, d->stream)) != CUBLAS_STATUS_SUCCESS) {
        st = cu_blas_fail(d, bs, "device open", "cublasSetStream");
        dev_release(d);
        return st;
    }
    if ((bs = d->cb.set_math_mode(d->blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        st = cu_blas_fail(d, bs, "device open", "cublasSetMathMode");
        dev_release(d);
        return st;
    }
    /* pinned staging; without it copies still work, synchronously */
    if (cudaHostAlloc((void **)&d->stage, (size_t)CU_STAGE_SLOT * CU_STAGE_SLOTS,
                      cudaHostAllocDefault) != cudaSuccess) {
        d->stage = NULL;
        cudaGetLastError();
    }
    for (int i = 0; d->stage && i < CU_STAGE_SLOTS; i++) {
        if (cudaEventCreateWithFlags(&d->stage_ev[i], cudaEventDisableTiming) != cudaSuccess) {
            e = cudaGetLastError();
            api = "cudaEventCreateWithFlags";
            goto cuda_fail;
        }
    }
    if (cudaHostAlloc((void **)&d->d2h, CU_D2H_PINNED, cudaHostAllocDefault) != cudaSuccess) {
        d->d2h = NULL;
        cudaGetLastError();
    }
    inst->n_open++;
    *out = d;
    return EM_OK;

cuda_fail:
    st = cu_fail(d, e, "device open", api);
    dev_release(d);
    return st;
}

static void cu_device_close(void *dev)
{
    cu_dev *d = (cu_dev *)dev;
    if (!d)
        return;
    cu_enter(d);
    d->inst->n_open--;
    dev_release(d);
}

/* ------------------------------------------------------------------ memory */

static em_status cu_buffer_alloc(void *dev, size_t bytes, void **buf)
{
    cu_dev *d = (cu_dev *)dev;
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (e == cudaErrorMemoryAllocation)
            return CU_ERR(d->inst, EM_ERR_OOM, "cuda: cannot allocate %zu bytes on device %d",
                          bytes, d->index);
        return cu_fail(d, e, "buffer_alloc", "cudaMalloc");
    }
    *buf = p;
    return EM_OK;
}

static void cu_buffer_free(void *dev, void *buf)
{
    cu_dev *d = (cu_dev *)dev;
    if (!buf || cu_enter(d) != EM_OK)
        return;
    /* Work still queued on the device's stream, or on a stream of stream_create (an async
     * copy), may use the buffer: wait for both before it goes. cudaFree happens to wait for
     * the device too, but stream order does not promise that. Buffers are freed rarely (the
     * core caches them): when a context ends or drains its cache after an OOM. */
    cudaStreamSynchronize(d->stream);
    cu_streams_wait(d);
    cudaFree(buf);
    cudaGetLastError();
}

/* All queued work is done: every staging slot is free again. */
static void stage_reset(cu_dev *d)
{
    for (int i = 0; i < CU_STAGE_SLOTS; i++)
        d->stage_pending[i] = 0;
    d->stage_used = 0;
}

static em_status stream_sync(cu_dev *d, const char *what)
{
    cudaError_t e = cudaStreamSynchronize(d->stream);
    if (e != cudaSuccess)
        return cu_fail(d, e, what, "cudaStreamSynchronize");
    stage_reset(d);
    return EM_OK;
}

/* Host to device. The caller may reuse src as soon as we return, so:
 *  - up to CU_STAGE_SLOT bytes: copied into the pinned ring and sent with an async copy;
 *    no host wait unless the GPU is a whole ring (16 slots) behind;
 *  - larger (tensor uploads, rare in a training loop): an async copy on the stream, then
 *    a wait for it. A plain cudaMemcpy would not do: it runs on the legacy default stream,
 *    which does not order against our non-blocking stream, so it could overwrite a
 *    recycled buffer that queued kernels still read. */
static em_status cu_copy_h2d(void *dev, void *dst, size_t dst_offset, const void *src,
                             size_t bytes)
{
    cu_dev *d = (cu_dev *)dev;
    if (bytes == 0)
        return EM_OK;
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    char *to = (char *)dst + dst_offset;
    cudaError_t e;
    if (d->stage && bytes <= CU_STAGE_SLOT) {
        if (d->stage_used + bytes > CU_STAGE_SLOT) {
            /* close the slot behind an event and move to the next one, waiting for it if
             * its copies have not run yet */
            int s = d->stage_slot;
            if ((e = cudaEventRecord(d->stage_ev[s], d->stream)) != cudaSuccess)
                return cu_fail(d, e, "copy_h2d", "cudaEventRecord");
            d->stage_pending[s] = 1;
            s = (s + 1) % CU_STAGE_SLOTS;
            if (d->stage_pending[s]) {
                if ((e = cudaEventSynchronize(d->stage_ev[s])) != cudaSuccess)
                    return cu_fail(d, e, "copy_h2d", "cudaEventSynchronize");
                d->stage_pending[s] = 0;
            }
            d->stage_slot = s;
            d->stage_used = 0;
        }
        char *from = d->stage + (size_t)d->stage_slot * CU_STAGE_SLOT + d->stage_used;
        memcpy(from, src, bytes);
        if ((e = cudaMemcpyAsync(to, from, bytes, cudaMemcpyHostToDevice, d->stream)) != cudaSuccess)
            return cu_fail(d, e, "copy_h2d", "cudaMemcpyAsync");
        d->stage_used += (bytes + 255) & ~(size_t)255;
        return EM_OK;
    }
    if ((e = cudaMemcpyAsync(to, src, bytes, cudaMemcpyHostToDevice, d->stream)) != cudaSuccess)
        return cu_fail(d, e, "copy_h2d", "cudaMemcpyAsync");
    return stream_sync(d, "copy_h2d");
}

/* Device to host: queued behind all earlier work, then waited for — the host needs it. */
static em_status cu_copy_d2h(void *dev, void *dst, const void *src, size_t src_offset,
                             size_t bytes)
{
    cu_dev *d = (cu_dev *)dev;
    if (bytes == 0)
        return EM_OK;
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    const char *from = (const char *)src + src_offset;
    const bool pinned = d->d2h && bytes <= CU_D2H_PINNED;
    cudaError_t e = cudaMemcpyAsync(pinned ? d->d2h : dst, from, bytes, cudaMemcpyDeviceToHost,
                                    d->stream);
    if (e != cudaSuccess)
        return cu_fail(d, e, "copy_d2h", "cudaMemcpyAsync");
    if ((st = stream_sync(d, "copy_d2h")) != EM_OK)
        return st;
    if (pinned)
        memcpy(dst, d->d2h, bytes);
    return EM_OK;
}

/* Device to device, asynchronous. Overlapping ranges of one buffer (memmove semantics)
 * go through a temporary buffer; cudaMemcpy* does not allow overlap. */
static em_status cu_copy_d2d(void *dev, void *dst, size_t dst_offset, const void *src,
                             size_t src_offset, size_t bytes)
{
    cu_dev *d = (cu_dev *)dev;
    if (bytes == 0)
        return EM_OK;
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    char *to = (char *)dst + dst_offset;
    const char *from = (const char *)src + src_offset;
    if (to == from)
        return EM_OK;
    cudaError_t e;
    if (to < from + bytes && from < to + bytes) {
        void *tmp = NULL;
        if ((e = cudaMalloc(&tmp, bytes)) != cudaSuccess)
            return cu_fail(d, e, "copy_d2d", "cudaMalloc");
        const char *api = "cudaMemcpyAsync";
        if ((e = cudaMemcpyAsync(tmp, from, bytes, cudaMemcpyDeviceToDevice, d->stream)) == cudaSuccess)
            e = cudaMemcpyAsync(to, tmp, bytes, cudaMemcpyDeviceToDevice, d->stream);
        /* both copies read or write tmp: they are done before it is freed */
        const cudaError_t es = cudaStreamSynchronize(d->stream);
        if (e == cudaSuccess && es != cudaSuccess) {
            e = es;
            api = "cudaStreamSynchronize";
        }
        cudaFree(tmp);
        return e == cudaSuccess ? EM_OK : cu_fail(d, e, "copy_d2d", api);
    }
    if ((e = cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, d->stream)) != cudaSuccess)
        return cu_fail(d, e, "copy_d2d", "cudaMemcpyAsync");
    return EM_OK;
}

/* The device queue and every stream of stream_create. Each is waited for even after one
 * has failed, so that a reported fault leaves no copy running into memory the core then
 * reuses. */
static em_status cu_synchronize(void *dev)
{
    cu_dev *d = (cu_dev *)dev;
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    const cudaError_t e = cudaStreamSynchronize(d->stream);
    const cudaError_t es = cu_streams_wait(d);
    if (e != cudaSuccess)
        return cu_fail(d, e, "synchronize", "cudaStreamSynchronize");
    stage_reset(d);
    if (es != cudaSuccess)
        return cu_fail(d, es, "synchronize", "cudaStreamSynchronize (stream)");
    return EM_OK;
}

/* The counter area [0, red_counter_bytes) is zeroed once, when allocated, and kernels put
 * each counter back to zero; partial sums always start after the whole area, so a plan
 * with few tiles never writes over counters a later plan with more tiles relies on. */
em_status cu_red_scratch(cu_dev *d, size_t counter_bytes, size_t partial_bytes,
                         unsigned **counters, double **partials)
{
    if (counter_bytes > d->red_counter_bytes ||
        partial_bytes > d->red_bytes - d->red_counter_bytes) {
        size_t cb = d->red_counter_bytes > counter_bytes ? d->red_counter_bytes : counter_bytes;
        size_t c = 4096, t = 64 * 1024;
        while (c < cb)
            c *= 2;
        while (t < c + partial_bytes)
            t *= 2;
        if (d->red) {
            /* kernels queued on the stream may still use the old scratch */
            cudaError_t es = cudaStreamSynchronize(d->stream);
            if (es != cudaSuccess)
                return cu_fail(d, es, "reduction", "cudaStreamSynchronize");
            cudaFree(d->red);
            d->red = NULL;
            d->red_bytes = d->red_counter_bytes = 0;
        }
        cudaError_t e;
        if ((e = cudaMalloc((void **)&d->red, t)) != cudaSuccess) {
            d->red = NULL;
            return cu_fail(d, e, "reduction", "cudaMalloc (scratch)");
        }
        if ((e = cudaMemsetAsync(d->red, 0, c, d->stream)) != cudaSuccess) {
            cudaFree(d->red);
            d->red = NULL;
            return cu_fail(d, e, "reduction", "cudaMemsetAsync");
        }
        d->red_bytes = t;
        d->red_counter_bytes = c;
    }
    *counters = (unsigned *)d->red;
    *partials = (double *)(d->red + d->red_counter_bytes);
    return EM_OK;
}

/* ------------------------------------------------------------------ instance */

static void cu_shutdown(void *bctx)
{
    cu_inst *inst = (cu_inst *)bctx;
    if (!inst)
        return;
    inst->host->free(inst->hc, inst);
}

/* What the kernels implement. Float kernels take f32/f64 (no f16); fill, copy (both sides),
 * the comparisons' inputs, where, masked_fill, index_select and gather every dtype; the
 * integer dtypes also the wrapping arithmetic (neg, abs, add/mul/rsub_scalar with the exact
 * ip[0], clamp with ip[0]/ip[1], add, sub, mul, maximum, minimum, sign, floor_divide,
 * remainder), max_dim/min_dim and scatter_add; sum and prod also i64. sum takes bool input
 * too (cuda_reduce.cu), but its mask covers out as well. f64 is real f64 on every GPU
 * (fp64 = 1), slow as it is on consumer parts. */
static em_kernel_dtypes make_dtypes(void)
{
    const em_dtype_mask F = EM_DTYPES_FLOAT, ALL = EM_DTYPES_ALL, FN = F | EM_DTYPES_INT,
                        FL = F | EM_DTYPE_BIT(EM_I64);
    em_kernel_dtypes t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    t.gemm = F;
    t.fill = ALL;
    t.rng_uniform = t.rng_normal = F;
    t.copy = ALL;
    t.exp = t.log = t.sqrt = t.relu = t.tanh = t.sigmoid = F;
    t.neg = t.abs = FN;
    t.add_scalar = t.mul_scalar = t.rsub_scalar = t.clamp = FN;
    t.div_scalar = t.rdiv_scalar = t.pow_scalar = F;
    t.add = t.sub = t.mul = t.maximum = t.minimum = FN;
    t.div = F;
    t.lt = t.le = t.gt = t.ge = t.eq = t.ne = ALL;
    t.where = t.masked_fill = ALL;
    t.sum = FL;
    t.relu_backward = t.clamp_backward = t.pow_backward = t.tanh_backward = F;
    t.sigmoid_backward = F;
    /* ABI 1.2 */
    t.log1p = t.expm1 = t.sin = t.cos = t.erf = t.floor = t.ceil = t.round = F;
    t.sign = FN;
    t.pow = F;
    t.floor_divide = t.remainder = FN;
    t.prod = FL;
    t.max_dim = t.min_dim = FN;
    t.softmax = t.log_softmax = F;
    t.index_select = t.gather = ALL;
    t.scatter_add = FN;
    /* ABI 1.3 */
    t.adam = F;
    /* ABI 1.7 */
    t.sgd = F;
    /* ---- ABI 1.4: pooling and normalisation ---- */
    t.avg_pool2d = t.avg_pool2d_grad = F;
    /* ---- ABI 1.4: convolution ---- */
    t.im2col = t.col2im = t.max_pool2d = F;
#ifdef HAVE_CUDNN
    /* ---- ABI 1.4: whole convolutions (optional) ---- */
    t.conv2d = t.conv2d_grad_input = t.conv2d_grad_weight = F;
#endif
    /* ---- ABI 1.5: max_pool2d backward ---- */
    t.max_pool2d_grad = F;
    return t;
}

static const em_kernel_dtypes cu_dtypes = make_dtypes();

static em_backend_ops make_ops(void)
{
    em_backend_ops o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof(em_backend_ops);
    o.shutdown = cu_shutdown;
    o.device_count = cu_device_count;
    o.device_props = cu_device_props;
    o.device_open = cu_device_open;
    o.device_close = cu_device_close;
    o.buffer_alloc = cu_buffer_alloc;
    o.buffer_free = cu_buffer_free;
    o.copy_h2d = cu_copy_h2d;
    o.copy_d2h = cu_copy_d2h;
    o.copy_d2d = cu_copy_d2d;
    o.synchronize = cu_synchronize;
    o.gemm = cu_gemm;
    o.fill = cu_k_fill;
    o.rng_uniform = cu_k_rng_uniform;
    o.rng_normal = cu_k_rng_normal;
    o.copy = cu_k_copy;
    o.neg = cu_k_neg;
    o.exp = cu_k_exp;
    o.log = cu_k_log;
    o.sqrt = cu_k_sqrt;
    o.abs = cu_k_abs;
    o.relu = cu_k_relu;
    o.tanh = cu_k_tanh;
    o.sigmoid = cu_k_sigmoid;
    o.add_scalar = cu_k_add_scalar;
    o.mul_scalar = cu_k_mul_scalar;
    o.rsub_scalar = cu_k_rsub_scalar;
    o.div_scalar = cu_k_div_scalar;
    o.rdiv_scalar = cu_k_rdiv_scalar;
    o.pow_scalar = cu_k_pow_scalar;
    o.clamp = cu_k_clamp;
    o.add = cu_k_add;
    o.sub = cu_k_sub;
    o.mul = cu_k_mul;
    o.div = cu_k_div;
    o.maximum = cu_k_maximum;
    o.minimum = cu_k_minimum;
    o.lt = cu_k_lt;
    o.le = cu_k_le;
    o.gt = cu_k_gt;
    o.ge = cu_k_ge;
    o.eq = cu_k_eq;
    o.ne = cu_k_ne;
    o.where = cu_k_where;
    o.masked_fill = cu_k_masked_fill;
    o.sum = cu_k_sum;
    o.relu_backward = cu_k_relu_backward;
    o.clamp_backward = cu_k_clamp_backward;
    o.pow_backward = cu_k_pow_backward;
    o.tanh_backward = cu_k_tanh_backward;
    o.sigmoid_backward = cu_k_sigmoid_backward;
    o.dtypes = &cu_dtypes;
    o.host_alloc = cu_host_alloc;
    o.host_free = cu_host_free;
    o.copy_h2d_async = cu_copy_h2d_async;
    o.copy_d2h_async = cu_copy_d2h_async;
    o.stream_create = cu_stream_create;
    o.stream_destroy = cu_stream_destroy;
    o.event_create = cu_event_create;
    o.event_destroy = cu_event_destroy;
    o.event_record = cu_event_record;
    o.event_wait = cu_event_wait;
    o.event_synchronize = cu_event_synchronize;
    o.log1p = cu_k_log1p;
    o.expm1 = cu_k_expm1;
    o.sin = cu_k_sin;
    o.cos = cu_k_cos;
    o.erf = cu_k_erf;
    o.floor = cu_k_floor;
    o.ceil = cu_k_ceil;
    o.round = cu_k_round;
    o.sign = cu_k_sign;
    o.pow = cu_k_pow;
    o.floor_divide = cu_k_floor_divide;
    o.remainder = cu_k_remainder;
    o.prod = cu_k_prod;
    o.max_dim = cu_k_max_dim;
    o.min_dim = cu_k_min_dim;
    o.softmax = cu_k_softmax;
    o.log_softmax = cu_k_log_softmax;
    o.index_select = cu_k_index_select;
    o.gather = cu_k_gather;
    o.scatter_add = cu_k_scatter_add;
    o.adam = cu_k_adam;
    o.sgd = cu_k_sgd;
    o.avg_pool2d = cu_k_avg_pool2d;
    o.avg_pool2d_grad = cu_k_avg_pool2d_grad;
    /* ---- ABI 1.4: convolution ---- */
    o.im2col = cu_k_im2col;
    o.col2im = cu_k_col2im;
    o.max_pool2d = cu_k_max_pool2d;
#ifdef HAVE_CUDNN
    /* ---- ABI 1.4: whole convolutions (optional): cuDNN; without it the core lowers
     * convolutions to im2col / col2im and cuBLAS's gemm ---- */
    o.conv2d = cu_k_conv2d;
    o.conv2d_grad_input = cu_k_conv2d_grad_input;
    o.conv2d_grad_weight = cu_k_conv2d_grad_weight;
#endif
    /* ---- ABI 1.5: max_pool2d backward ---- */
    o.max_pool2d_grad = cu_k_max_pool2d_grad;
    return o;
}

/* Static storage (like cu_dtypes), filled by a static initialiser when the plugin is loaded:
 * dlopen runs it before anyone can call the entry, so concurrent entry calls never race on
 * it. */
static const em_backend_ops cu_ops = make_ops();

/* device = N: a plain decimal integer. */
static int parse_device(const char *s, int *out)
{
    unsigned long long v;
    int r = emk_parse_uint(s, 1023, &v);
    if (r == 1)
        *out = (int)v;
    return r;
}

extern "C" {
EM_BACKEND_EXPORT em_status ember_backend_entry(const em_host *host, em_host_ctx *hc,
                                                const em_config_kv *config, size_t n_config,
                                                em_backend *out);
}

static void describe(em_backend *out)
{
    out->abi_major = EM_ABI_MAJOR;
    out->abi_minor = EM_ABI_MINOR;
    out->name = "cuda";
    out->version = CU_VERSION;
    out->description = "NVIDIA GPUs through the CUDA runtime: cuBLAS gemm, nvcc kernels, one "
                       "stream per context";
    out->config_keys = cu_config_keys;
    out->ops = &cu_ops;
}

/* No CUDA call here: the entry runs for ember-info and for every context, and must work
 * (parse config, report errors) where no driver exists; devices are probed on demand.
 * A describe call (the core validating a [cuda] section it will not use) returns right
 * after the ABI check: static data only, no allocation, safe from any thread. */
EM_BACKEND_ENTRY
{
    if (!host || !out)
        return EM_ERR_PLUGIN;
    if (host->abi_major != EM_ABI_MAJOR)
        return host->error(hc, EM_ERR_PLUGIN,
                           "cuda backend built for plugin ABI %d.%d, but the core speaks %u.%u",
                           EM_ABI_MAJOR, EM_ABI_MINOR, (unsigned)host->abi_major,
                           (unsigned)host->abi_minor);
    /* a 1.0 core's em_host ends before flags */
    if (host->struct_size >= offsetof(em_host, flags) + sizeof host->flags &&
        (host->flags & EM_HOST_DESCRIBE)) {
        describe(out);
        return EM_OK;
    }
    int device = -1;
    for (size_t i = 0; i < n_config; i++) {
        const char *key = config[i].key ? config[i].key : "";
        const char *val = config[i].value ? config[i].value : "";
        if (!strcmp(key, "device")) {
            int r = parse_device(val, &device);
            if (r == 0)
                return host->error(hc, EM_ERR_CONFIG,
                                   "device: expected a CUDA device index (a non-negative "
                                   "integer), got '%s'", val);
            if (r < 0)
                return host->error(hc, EM_ERR_CONFIG, "device: '%s' is too large (at most 1023)",
                                   val);
        } else if (!strcmp(key, "library")) {
            /* the core's key: which file to load */
        } else {
            return host->error(hc, EM_ERR_CONFIG,
                               "unknown key '%s' in [cuda] (known keys: device)", key);
        }
    }
    cu_inst *inst = (cu_inst *)host->alloc(hc, sizeof *inst);
    if (!inst)
        return host->error(hc, EM_ERR_OOM, "cuda: cannot allocate %zu bytes for the instance",
                           sizeof *inst);
    memset(inst, 0, sizeof *inst);
    inst->host = host;
    inst->hc = hc;
    inst->device = device;

    describe(out);
    out->ctx = inst;
    return EM_OK;
}
