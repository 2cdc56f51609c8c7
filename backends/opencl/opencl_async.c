/* backends/opencl/opencl_async.c — the optional asynchrony of plugin ABI 1.1 on OpenCL 1.2,
 * and synchronize, which has to know about all of it:
 *  - pinned host memory: a CL_MEM_ALLOC_HOST_PTR buffer mapped once for its whole life (the
 *    portable way to get memory a driver can DMA from), the cl_mem kept beside the pointer;
 *  - async copies: non-blocking clEnqueueWriteBuffer / clEnqueueReadBuffer;
 *  - streams: more in-order command queues on the device's context (stream NULL is the
 *    device queue, where every kernel runs);
 *  - events: the cl_event of a marker, replaced at each record; waits are barriers.
 * Every enqueue that another queue or the host may wait on is flushed at once: OpenCL lets
 * a driver hold unflushed commands back indefinitely, and a queue waiting on an event of an
 * unflushed queue may wait forever. */
#include "opencl.h"

#include <string.h>

struct ocl_stream {
    cl_command_queue q;
    ocl_stream *next;
};

struct ocl_pinned {
    void *ptr;
    cl_mem mem;
    ocl_pinned *next;
};

/* An event carries the host services itself, so that destroying it does not need its
 * device: the cl_event stays valid after the device is closed, and so does this. */
typedef struct ocl_event {
    const em_host *host;
    em_host_ctx *hc;
    cl_event ev;   /* the marker of the last record; NULL until the first */
} ocl_event;

static cl_command_queue queue_of(ocl_dev *d, void *stream)
{
    return stream ? ((ocl_stream *)stream)->q : d->q;
}

/* After a successful enqueue that reads or writes the caller's memory. If the flush fails
 * we still report the failure, but only once nothing in flight touches that memory: the
 * core takes an error to mean the copy never happened and may free its buffer at once. */
static em_status flush_or_drain(ocl_dev *d, cl_command_queue q)
{
    cl_int err = clFlush(q);
    if (err == CL_SUCCESS)
        return EM_OK;
    clFinish(q);
    return ocl_fail(d, "clFlush", err);
}

/* ------------------------------------------------------------------ synchronize */

em_status ocl_synchronize(void *dev)
{
    ocl_dev *d = dev;
    em_status st = EM_OK;
    cl_int err = clFinish(d->q);
    if (err != CL_SUCCESS)
        st = ocl_fail(d, "clFinish", err);
    /* every queue, even after a failure: the caller may free what the others still use */
    for (ocl_stream *s = d->streams; s; s = s->next)
        if ((err = clFinish(s->q)) != CL_SUCCESS && st == EM_OK)
            st = ocl_fail(d, "clFinish (stream)", err);
    return st;
}

/* ------------------------------------------------------------------ pinned host memory */

static em_status ensure_mapq(ocl_dev *d)
{
    if (d->mapq)
        return EM_OK;
    cl_int err;
    d->mapq = clCreateCommandQueue(d->ctx, d->device, 0, &err);
    if (!d->mapq || err != CL_SUCCESS) {
        d->mapq = NULL;
        return ocl_fail(d, "clCreateCommandQueue (pinned memory)", err);
    }
    return EM_OK;
}

em_status ocl_host_alloc(void *dev, size_t bytes, void **ptr)
{
    ocl_dev *d = dev;
    char e[48];
    /* malloc(0) semantics: a distinct pointer that host_free accepts (OpenCL has no empty
     * buffers) */
    if (bytes == 0)
        bytes = 1;
    if (d->max_alloc && bytes > d->max_alloc)
        return OCL_ERR(d, EM_ERR_OOM, "cannot allocate %zu bytes of pinned host memory: OpenCL "
                       "device '%s' allows at most %llu bytes per buffer", bytes, d->name,
                       (unsigned long long)d->max_alloc);
    em_status st = ensure_mapq(d);
    if (st != EM_OK)
        return st;
    ocl_pinned *p = d->host->alloc(d->hc, sizeof *p);
    if (!p)
        return OCL_ERR(d, EM_ERR_OOM, "cannot allocate %zu bytes for a pinned block's record",
                       sizeof *p);
    cl_int err;
    p->mem = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, bytes, NULL, &err);
    if (!p->mem || err != CL_SUCCESS) {
        d->host->free(d->hc, p);
        st = err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
                     err == CL_OUT_OF_HOST_MEMORY || err == CL_INVALID_BUFFER_SIZE
                 ? EM_ERR_OOM
                 : EM_ERR_BACKEND;
        return OCL_ERR(d, st, "clCreateBuffer(%zu bytes, CL_MEM_ALLOC_HOST_PTR): %s", bytes,
                       ocl_error_name(err, e, sizeof e));
    }
    /* on mapq, a new queue of its own: a blocking map on the device queue would wait for
     * every kernel queued there */
    p->ptr = clEnqueueMapBuffer(d->mapq, p->mem, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, bytes,
                                0, NULL, NULL, &err);
    if (!p->ptr || err != CL_SUCCESS) {
        clReleaseMemObject(p->mem);
        d->host->free(d->hc, p);
        return ocl_fail(d, "clEnqueueMapBuffer (pinned memory)", err);
    }
    p->next = d->pinned;
    d->pinned = p;
    *ptr = p->ptr;
    return EM_OK;
}

static void pinned_release(ocl_dev *d, ocl_pinned *p)
{
    /* the buffer lives until the unmap has run; the flush makes it run now rather than at
     * the next map */
    clEnqueueUnmapMemObject(d->mapq, p->mem, p->ptr, 0, NULL, NULL);
    clReleaseMemObject(p->mem);
    clFlush(d->mapq);
    d->host->free(d->hc, p);
}

void ocl_host_free(void *dev, void *ptr)
{
    ocl_dev *d = dev;
    if (!ptr)
        return;
    for (ocl_pinned **pp = &d->pinned; *pp; pp = &(*pp)->next) {
        if ((*pp)->ptr == ptr) {
            ocl_pinned *p = *pp;
            *pp = p->next;
            pinned_release(d, p);
            return;
        }
    }
    /* void entry: the log is the only way to say it; freeing it anyway could corrupt */
    d->host->log(d->hc, EM_LOG_ERROR, "host_free: %p was not allocated by host_alloc on this "
                 "device; ignored", ptr);
}

/* ------------------------------------------------------------------ async copies */

em_status ocl_copy_h2d_async(void *dev, void *stream, void *dst, size_t dst_offset,
                             const void *src, size_t bytes)
{
    ocl_dev *d = dev;
    if (!bytes)
        return EM_OK;
    cl_command_queue q = queue_of(d, stream);
    cl_int err = clEnqueueWriteBuffer(q, (cl_mem)dst, CL_FALSE, dst_offset, bytes, src, 0, NULL,
                                      NULL);
    if (err != CL_SUCCESS)
        return ocl_fail(d, "clEnqueueWriteBuffer (async)", err);
    return flush_or_drain(d, q);
}

em_status ocl_copy_d2h_async(void *dev, void *stream, void *dst, const void *src,
                             size_t src_offset, size_t bytes)
{
    ocl_dev *d = dev;
    if (!bytes)
        return EM_OK;
    cl_command_queue q = queue_of(d, stream);
    cl_int err = clEnqueueReadBuffer(q, (cl_mem)src, CL_FALSE, src_offset, bytes, dst, 0, NULL,
                                     NULL);
    if (err != CL_SUCCESS)
        return ocl_fail(d, "clEnqueueReadBuffer (async)", err);
    return flush_or_drain(d, q);
}

/* ------------------------------------------------------------------ streams */

em_status ocl_stream_create(void *dev, void **stream)
{
    ocl_dev *d = dev;
    ocl_stream *s = d->host->alloc(d->hc, sizeof *s);
    if (!s)
        return OCL_ERR(d, EM_ERR_OOM, "cannot allocate %zu bytes for a stream", sizeof *s);
    cl_int err;
    /* in order, like the device queue: a stream is a sequence */
    s->q = clCreateCommandQueue(d->ctx, d->device, 0, &err);
    if (!s->q || err != CL_SUCCESS) {
        d->host->free(d->hc, s);
        return ocl_fail(d, "clCreateCommandQueue (stream)", err);
    }
    s->next = d->streams;
    d->streams = s;
    *stream = s;
    return EM_OK;
}

static void stream_release(ocl_dev *d, ocl_stream *s)
{
    /* the core promises an idle stream; waiting costs nothing then and keeps the caller's
     * memory safe if it was not */
    clFinish(s->q);
    clReleaseCommandQueue(s->q);
    d->host->free(d->hc, s);
}

void ocl_stream_destroy(void *dev, void *stream)
{
    ocl_dev *d = dev;
    if (!stream)
        return;
    for (ocl_stream **pp = &d->streams; *pp; pp = &(*pp)->next) {
        if (*pp == stream) {
            *pp = (*pp)->next;
            stream_release(d, stream);
            return;
        }
    }
    d->host->log(d->hc, EM_LOG_ERROR, "stream_destroy: %p is not a stream of this device; "
                 "ignored", stream);
}

/* ------------------------------------------------------------------ events */

em_status ocl_event_create(void *dev, void **event)
{
    ocl_dev *d = dev;
    ocl_event *e = d->host->alloc(d->hc, sizeof *e);
    if (!e)
        return OCL_ERR(d, EM_ERR_OOM, "cannot allocate %zu bytes for an event", sizeof *e);
    e->host = d->host;
    e->hc = d->hc;
    e->ev = NULL;
    *event = e;
    return EM_OK;
}

void ocl_event_destroy(void *dev, void *event)
{
    (void)dev;
    ocl_event *e = event;
    if (!e)
        return;
    /* safe before the marker completed: OpenCL keeps a command alive until it has run */
    if (e->ev)
        clReleaseEvent(e->ev);
    e->host->free(e->hc, e);
}

em_status ocl_event_record(void *dev, void *stream, void *event)
{
    ocl_dev *d = dev;
    ocl_event *e = event;
    cl_command_queue q = queue_of(d, stream);
    cl_event ev = NULL;
    /* no wait list on an in-order queue: the marker completes after everything before it */
    cl_int err = clEnqueueMarkerWithWaitList(q, 0, NULL, &ev);
    if (err != CL_SUCCESS)
        return ocl_fail(d, "clEnqueueMarkerWithWaitList", err);
    if ((err = clFlush(q)) != CL_SUCCESS) {
        clReleaseEvent(ev);
        return ocl_fail(d, "clFlush", err);
    }
    /* a barrier already queued on the old marker holds its own reference */
    if (e->ev)
        clReleaseEvent(e->ev);
    e->ev = ev;
    return EM_OK;
}

em_status ocl_event_wait(void *dev, void *stream, void *event)
{
    ocl_dev *d = dev;
    ocl_event *e = event;
    if (!e->ev)
        return EM_OK;   /* never recorded: nothing to wait for, as in CUDA */
    cl_int err = clEnqueueBarrierWithWaitList(queue_of(d, stream), 1, &e->ev, NULL);
    return err == CL_SUCCESS ? EM_OK : ocl_fail(d, "clEnqueueBarrierWithWaitList", err);
}

em_status ocl_event_synchronize(void *dev, void *event)
{
    ocl_dev *d = dev;
    ocl_event *e = event;
    if (!e->ev)
        return EM_OK;
    cl_int err = clWaitForEvents(1, &e->ev);
    return err == CL_SUCCESS ? EM_OK : ocl_fail(d, "clWaitForEvents", err);
}

/* ------------------------------------------------------------------ teardown */

void ocl_async_release(ocl_dev *d)
{
    while (d->streams) {
        ocl_stream *s = d->streams;
        d->streams = s->next;
        stream_release(d, s);
    }
    int n = 0;
    while (d->pinned) {
        ocl_pinned *p = d->pinned;
        d->pinned = p->next;
        pinned_release(d, p);
        n++;
    }
    if (n)
        d->host->log(d->hc, EM_LOG_WARN, "%d pinned host block%s still allocated when the device "
                     "was closed; released (pointers to %s are now invalid)", n,
                     n == 1 ? " was" : "s were", n == 1 ? "it" : "them");
    if (d->mapq) {
        clFinish(d->mapq);
        clReleaseCommandQueue(d->mapq);
        d->mapq = NULL;
    }
}
