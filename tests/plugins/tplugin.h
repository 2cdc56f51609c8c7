/* tests/plugins/tplugin.h — what the two files of the test plugin share: its instance and
 * device, its modes, and the counters a test reads to prove what the core did (exported
 * only by this test plugin; a real plugin exports nothing but its entry). */
#ifndef EMBER_TESTS_TPLUGIN_H
#define EMBER_TESTS_TPLUGIN_H

#include <ember/backend.h>

#include <stdatomic.h>
#include <stdint.h>

enum tp_mode {
    TP_FAST,           /* normal */
    TP_EXACT,          /* normal */
    TP_SHORT_BACKEND,  /* em_backend.struct_size too small to reach ops */
    TP_SHORT_OPS,      /* ops table ends before the memory entries */
    TP_OLD_MINOR,      /* ops table of an "older minor": ends before `add` */
    TP_NO_OPS,         /* ops NULL */
    TP_FAIL_OPEN,      /* device_open fails */
    TP_F32_ONLY,       /* 1.1: declares f32 (and bool) only; f64 must fall back */
    TP_HOST,           /* 1.1: declares host buffers, honestly */
    TP_HOST_LIAR,      /* 1.1: declares host buffers, but a handle is not the data's address */
    TP_ASYNC,          /* 1.1: pinned memory, async copies, streams and events (emulated) */
    TP_ASYNC_BROKEN,   /* 1.1: the same, but the device queue does not wait on events */
    TP_HALF_ASYNC,     /* 1.1: streams without events: the loader must refuse the table */
    TP_MODE_COUNT
};

typedef struct tp_inst {
    const em_host *host;
    em_host_ctx *hc;
    enum tp_mode mode;
    int open_devices;
} tp_inst;

typedef struct tp_stream tp_stream;

typedef struct tp_dev {
    tp_inst *inst;
    tp_stream *streams;   /* emulated streams (tplugin_async.c) */
} tp_dev;

/* What a test can read: kernels called, dtypes refused, host<->device copies. */
typedef struct tplugin_stats {
    atomic_long kernel_calls;
    atomic_long undeclared_calls;   /* a kernel handed a dtype it did not declare */
    atomic_long bad_kargs;          /* a 1.1 core's em_kargs lists disagreeing with in/out */
    atomic_long copies_h2d, copies_d2h;
    atomic_long unknown_keys;       /* keys outside config_keys that reached the entry */
} tplugin_stats;

extern tplugin_stats tplugin_stats_;
/* When nonzero, every kernel returns this status (a test sets it through dlsym): what a
 * plugin returning numbers outside em_status gives the core. */
extern atomic_int tplugin_kernel_status_;

#if EM_ABI_MINOR >= 1
/* tplugin_async.c */
em_status tp_host_alloc(void *dev, size_t bytes, void **ptr);
void tp_host_free(void *dev, void *ptr);
em_status tp_copy_h2d_async(void *dev, void *stream, void *dst, size_t off, const void *src,
                            size_t bytes);
em_status tp_copy_d2h_async(void *dev, void *stream, void *dst, const void *src, size_t off,
                            size_t bytes);
em_status tp_stream_create(void *dev, void **stream);
void tp_stream_destroy(void *dev, void *stream);
em_status tp_event_create(void *dev, void **event);
void tp_event_destroy(void *dev, void *event);
em_status tp_event_record(void *dev, void *stream, void *event);
em_status tp_event_wait(void *dev, void *stream, void *event);
em_status tp_event_synchronize(void *dev, void *event);
/* Run every stream's queued work (synchronize, device_close). */
void tp_streams_flush(tp_dev *d);
void tp_streams_free(tp_dev *d);
#endif

#endif
