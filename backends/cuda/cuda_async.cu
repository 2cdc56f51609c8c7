/* backends/cuda/cuda_async.cu — the optional asynchrony of plugin ABI 1.1 for the cuda
 * backend: page-locked host memory, host<->device copies that return before they complete,
 * extra streams and the events that order them.
 *
 * Queues: "the device queue" of the ABI is the device's own non-blocking stream d->stream,
 * where every kernel, gemm and synchronous copy already runs; stream NULL always means it,
 * never CUDA's legacy default stream (0), which does not order against non-blocking
 * streams. Streams made here are non-blocking too, so work that the application or another
 * library puts on the legacy stream never stalls them, and they are listed in d->streams
 * because synchronize must wait for them: cudaDeviceSynchronize would do it in one call but
 * would also wait for every other context's work on the same GPU.
 *
 * Events are created with cudaEventDisableTiming: nothing reads their times, and timing
 * events are slower to record and to wait for. A stream or event handle is the CUDA handle
 * itself. Every entry makes the device current first (cu_enter), as streams and events
 * belong to the device's primary context. */
#include "cuda_backend.h"

#include <string.h>

static cudaStream_t queue_of(cu_dev *d, void *stream)
{
    return stream ? (cudaStream_t)stream : d->stream;
}

/* ------------------------------------------------------------------ pinned host memory */

/* Portable: the memory is pinned for every device's context, as a user may hand a buffer
 * from one context to a copy on another GPU (implied under unified addressing anyway). */
em_status cu_host_alloc(void *dev, size_t bytes, void **ptr)
{
    cu_dev *d = (cu_dev *)dev;
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    void *p = NULL;
    /* 0 bytes: still a unique, freeable pointer, as from malloc */
    cudaError_t e = cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocPortable);
    if (e != cudaSuccess)
        return cu_fail(d, e, "host_alloc", "cudaHostAlloc");
    *ptr = p;
    return EM_OK;
}

/* A copy still reading or writing ptr, on the device's stream or a stream of
 * stream_create, completes first: both are waited for (cudaFreeHost happens to wait for the
 * device too, but stream order does not promise it). Made current even so: the runtime
 * would otherwise initialise device 0's context on a thread that never used ember's
 * device. */
void cu_host_free(void *dev, void *ptr)
{
    cu_dev *d = (cu_dev *)dev;
    if (!ptr)
        return;
    cu_enter(d);
    cudaStreamSynchronize(d->stream);
    cu_streams_wait(d);
    cudaFreeHost(ptr);
    cudaGetLastError();
}

/* ------------------------------------------------------------------ async copies */

/* With page-locked memory the copy is a DMA behind earlier work on the queue and the call
 * returns at once. With pageable memory CUDA stages it and may return only when src has
 * been read (h2d) or the data has arrived (d2h): slower, never wrong. */
em_status cu_copy_h2d_async(void *dev, void *stream, void *dst, size_t dst_offset,
                            const void *src, size_t bytes)
{
    cu_dev *d = (cu_dev *)dev;
    if (bytes == 0)
        return EM_OK;
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    cudaError_t e = cudaMemcpyAsync((char *)dst + dst_offset, src, bytes, cudaMemcpyHostToDevice,
                                    queue_of(d, stream));
    return e == cudaSuccess ? EM_OK : cu_fail(d, e, "copy_h2d_async", "cudaMemcpyAsync");
}

em_status cu_copy_d2h_async(void *dev, void *stream, void *dst, const void *src,
                            size_t src_offset, size_t bytes)
{
    cu_dev *d = (cu_dev *)dev;
    if (bytes == 0)
        return EM_OK;
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    cudaError_t e = cudaMemcpyAsync(dst, (const char *)src + src_offset, bytes,
                                    cudaMemcpyDeviceToHost, queue_of(d, stream));
    return e == cudaSuccess ? EM_OK : cu_fail(d, e, "copy_d2h_async", "cudaMemcpyAsync");
}

/* ------------------------------------------------------------------ streams */

/* The list grows before the stream exists, so that no failure leaves a stream nobody
 * tracks. */
em_status cu_stream_create(void *dev, void **stream)
{
    cu_dev *d = (cu_dev *)dev;
    cu_inst *inst = d->inst;
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    if (d->n_streams == d->cap_streams) {
        const int cap = d->cap_streams ? d->cap_streams * 2 : 4;
        const size_t bytes = (size_t)cap * sizeof *d->streams;
        cudaStream_t *list = (cudaStream_t *)inst->host->alloc(inst->hc, bytes);
        if (!list)
            return CU_ERR(inst, EM_ERR_OOM, "cuda: stream_create: cannot allocate %zu bytes",
                          bytes);
        if (d->n_streams)
            memcpy(list, d->streams, (size_t)d->n_streams * sizeof *d->streams);
        inst->host->free(inst->hc, d->streams);
        d->streams = list;
        d->cap_streams = cap;
    }
    cudaStream_t s = NULL;
    cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    if (e != cudaSuccess)
        return cu_fail(d, e, "stream_create", "cudaStreamCreateWithFlags");
    d->streams[d->n_streams++] = s;
    *stream = s;
    return EM_OK;
}

/* The core calls this only once the stream is idle (were it not, CUDA would still finish
 * the queued work before releasing the stream). */
void cu_stream_destroy(void *dev, void *stream)
{
    cu_dev *d = (cu_dev *)dev;
    if (!stream)
        return;
    for (int i = 0; i < d->n_streams; i++)
        if (d->streams[i] == (cudaStream_t)stream) {
            d->streams[i] = d->streams[--d->n_streams];
            break;
        }
    cu_enter(d);
    cudaStreamDestroy((cudaStream_t)stream);
    cudaGetLastError();
}

cudaError_t cu_streams_wait(cu_dev *d)
{
    cudaError_t first = cudaSuccess;
    for (int i = 0; i < d->n_streams; i++) {
        cudaError_t e = cudaStreamSynchronize(d->streams[i]);
        if (e != cudaSuccess && first == cudaSuccess)
            first = e;
    }
    return first;
}

void cu_streams_release(cu_dev *d)
{
    for (int i = 0; i < d->n_streams; i++) {
        cudaStreamSynchronize(d->streams[i]);
        cudaStreamDestroy(d->streams[i]);
    }
    cudaGetLastError();
    if (d->streams)
        d->inst->host->free(d->inst->hc, d->streams);
    d->streams = NULL;
    d->n_streams = d->cap_streams = 0;
}

/* ------------------------------------------------------------------ events */

em_status cu_event_create(void *dev, void **event)
{
    cu_dev *d = (cu_dev *)dev;
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    cudaEvent_t ev = NULL;
    cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    if (e != cudaSuccess)
        return cu_fail(d, e, "event_create", "cudaEventCreateWithFlags");
    *event = ev;
    return EM_OK;
}

/* May come before the event completed: CUDA then releases it once it has. */
void cu_event_destroy(void *dev, void *event)
{
    cu_dev *d = (cu_dev *)dev;
    if (!event)
        return;
    cu_enter(d);
    cudaEventDestroy((cudaEvent_t)event);
    cudaGetLastError();
}

/* Recording again re-arms the event: waits issued later see only the newest record. */
em_status cu_event_record(void *dev, void *stream, void *event)
{
    cu_dev *d = (cu_dev *)dev;
    if (!event)
        return CU_ERR(d->inst, EM_ERR_INVALID, "event_record: the event is missing");
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    cudaError_t e = cudaEventRecord((cudaEvent_t)event, queue_of(d, stream));
    return e == cudaSuccess ? EM_OK : cu_fail(d, e, "event_record", "cudaEventRecord");
}

/* A device-side wait: the host returns at once. An event never recorded counts as
 * complete, as in CUDA. */
em_status cu_event_wait(void *dev, void *stream, void *event)
{
    cu_dev *d = (cu_dev *)dev;
    if (!event)
        return CU_ERR(d->inst, EM_ERR_INVALID, "event_wait: the event is missing");
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    cudaError_t e = cudaStreamWaitEvent(queue_of(d, stream), (cudaEvent_t)event, 0);
    return e == cudaSuccess ? EM_OK : cu_fail(d, e, "event_wait", "cudaStreamWaitEvent");
}

em_status cu_event_synchronize(void *dev, void *event)
{
    cu_dev *d = (cu_dev *)dev;
    if (!event)
        return CU_ERR(d->inst, EM_ERR_INVALID, "event_synchronize: the event is missing");
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    cudaError_t e = cudaEventSynchronize((cudaEvent_t)event);
    return e == cudaSuccess ? EM_OK : cu_fail(d, e, "event_synchronize", "cudaEventSynchronize");
}
