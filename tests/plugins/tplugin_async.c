/* tests/plugins/tplugin_async.c — the test plugin's asynchrony (ABI 1.1), emulated so that a
 * missing wait shows up as wrong data. The device queue runs everything at once, as before.
 * A stream does nothing when work is queued on it: a copy reads its source and writes its
 * destination only when the stream is flushed, which happens when someone waits for it —
 * event_synchronize, synchronize, or event_wait of the device queue (the device queue "waits"
 * by running the stream's work up to the event right then). So the core must order every use
 * of a copied buffer after the copy through events, exactly as a real device requires; if it
 * forgets, a kernel reads what the buffer held before.
 *
 * Mode async-broken does not flush on event_wait of the device queue: a device that ignores
 * the ordering it was asked for. ember-conform must fail it. */
#include "tplugin.h"

#include <stdlib.h>
#include <string.h>

#if EM_ABI_MINOR >= 1

typedef struct tp_op {
    enum { OP_H2D, OP_D2H, OP_WAIT } kind;
    char *dst;
    const char *src;
    size_t bytes;
    tp_stream *on;        /* OP_WAIT: the stream waited for ... */
    uint64_t upto;        /* ... up to this op */
    uint64_t seq;
    struct tp_op *next;
} tp_op;

struct tp_stream {
    tp_dev *dev;
    tp_op *head, *tail;
    uint64_t next_seq, done_seq;
    tp_stream *next;
};

typedef struct tp_event {
    tp_stream *stream;    /* NULL: recorded on the device queue (complete at once) */
    uint64_t seq;
    bool recorded;
} tp_event;

#define ERR(d, st, ...) (d)->inst->host->error((d)->inst->hc, (st), __VA_ARGS__)

static void flush(tp_stream *s, uint64_t upto)
{
    while (s->head && s->head->seq <= upto) {
        tp_op *op = s->head;
        s->head = op->next;
        if (!s->head)
            s->tail = NULL;
        if (op->kind == OP_WAIT)
            flush(op->on, op->upto);
        else
            memcpy(op->dst, op->src, op->bytes);
        s->done_seq = op->seq;
        s->dev->inst->host->free(s->dev->inst->hc, op);
    }
}

void tp_streams_flush(tp_dev *d)
{
    for (tp_stream *s = d->streams; s; s = s->next)
        flush(s, UINT64_MAX);
}

void tp_streams_free(tp_dev *d)
{
    tp_streams_flush(d);
    while (d->streams) {
        tp_stream *s = d->streams;
        d->streams = s->next;
        d->inst->host->free(d->inst->hc, s);
    }
}

static em_status enqueue(tp_dev *d, tp_stream *s, tp_op op)
{
    tp_op *o = d->inst->host->alloc(d->inst->hc, sizeof *o);
    if (!o)
        return ERR(d, EM_ERR_OOM, "out of memory queueing a copy");
    *o = op;
    o->seq = ++s->next_seq;
    o->next = NULL;
    if (s->tail)
        s->tail->next = o;
    else
        s->head = o;
    s->tail = o;
    return EM_OK;
}

em_status tp_host_alloc(void *dev, size_t bytes, void **ptr)
{
    tp_dev *d = dev;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0)
        return ERR(d, EM_ERR_OOM, "out of pinned memory (%zu bytes)", bytes);
    *ptr = p;
    return EM_OK;
}

void tp_host_free(void *dev, void *ptr)
{
    (void)dev;
    free(ptr);
}

em_status tp_copy_h2d_async(void *dev, void *stream, void *dst, size_t off, const void *src,
                            size_t bytes)
{
    tp_dev *d = dev;
    atomic_fetch_add(&tplugin_stats_.copies_h2d, 1);
    if (!stream) {
        memcpy((char *)dst + off, src, bytes);
        return EM_OK;
    }
    return enqueue(d, stream, (tp_op){.kind = OP_H2D, .dst = (char *)dst + off, .src = src,
                                      .bytes = bytes});
}

em_status tp_copy_d2h_async(void *dev, void *stream, void *dst, const void *src, size_t off,
                            size_t bytes)
{
    tp_dev *d = dev;
    atomic_fetch_add(&tplugin_stats_.copies_d2h, 1);
    if (!stream) {
        memcpy(dst, (const char *)src + off, bytes);
        return EM_OK;
    }
    return enqueue(d, stream, (tp_op){.kind = OP_D2H, .dst = dst, .src = (const char *)src + off,
                                      .bytes = bytes});
}

em_status tp_stream_create(void *dev, void **stream)
{
    tp_dev *d = dev;
    tp_stream *s = d->inst->host->alloc(d->inst->hc, sizeof *s);
    if (!s)
        return ERR(d, EM_ERR_OOM, "out of memory creating a stream");
    memset(s, 0, sizeof *s);
    s->dev = d;
    s->next = d->streams;
    d->streams = s;
    *stream = s;
    return EM_OK;
}

void tp_stream_destroy(void *dev, void *stream)
{
    tp_dev *d = dev;
    tp_stream *s = stream;
    flush(s, UINT64_MAX);
    for (tp_stream **p = &d->streams; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    d->inst->host->free(d->inst->hc, s);
}

em_status tp_event_create(void *dev, void **event)
{
    tp_dev *d = dev;
    tp_event *e = d->inst->host->alloc(d->inst->hc, sizeof *e);
    if (!e)
        return ERR(d, EM_ERR_OOM, "out of memory creating an event");
    memset(e, 0, sizeof *e);
    *event = e;
    return EM_OK;
}

void tp_event_destroy(void *dev, void *event)
{
    tp_dev *d = dev;
    d->inst->host->free(d->inst->hc, event);
}

em_status tp_event_record(void *dev, void *stream, void *event)
{
    (void)dev;
    tp_event *e = event;
    tp_stream *s = stream;
    e->stream = s;
    e->seq = s ? s->next_seq : 0;
    e->recorded = true;
    return EM_OK;
}

em_status tp_event_wait(void *dev, void *stream, void *event)
{
    tp_dev *d = dev;
    tp_event *e = event;
    if (!e->recorded || !e->stream)
        return EM_OK;   /* the device queue's work is complete already */
    if (!stream) {
        if (d->inst->mode != TP_ASYNC_BROKEN)
            flush(e->stream, e->seq);
        return EM_OK;
    }
    if (stream == e->stream)
        return EM_OK;   /* in order */
    return enqueue(d, stream, (tp_op){.kind = OP_WAIT, .on = e->stream, .upto = e->seq});
}

em_status tp_event_synchronize(void *dev, void *event)
{
    (void)dev;
    tp_event *e = event;
    if (e->recorded && e->stream)
        flush(e->stream, e->seq);
    return EM_OK;
}

#endif
