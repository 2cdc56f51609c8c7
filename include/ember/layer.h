/* ember/layer.h — the layer ABI. A layer is a shared object named ember-layer-<name>.so,
 * found on the plugin search path like a backend, that sits between the core and whatever
 * backend a context uses: [device] layers = profile, validate (outermost first) or
 * EMBER_LAYERS=profile,validate. It exports one symbol, EM_LAYER_ENTRY_NAME, of type
 * em_layer_entry_fn. See docs/writing-a-backend.md ("Layers") for the full contract.
 *
 * How a layer works:
 *  - The core opens the backend and its device, then calls each layer's entry, innermost
 *    first, handing it the next table down (em_layer_next.ops: the backend's, or the layer
 *    below's) and the device. The layer returns a table of the same shape (em_backend_ops)
 *    in which it sets only the entries it wraps; the core builds the effective table from
 *    the next one with those entries replaced. Entries the layer leaves NULL, and every
 *    entry past its table's struct_size (kernels appended by a later minor of backend.h
 *    than the layer was built against), are the next table's own function pointers: they
 *    bypass the layer at no cost (ember-info lists the bypassed kernels).
 *  - Handles (devices, buffers, streams, events) are the backend's own at every level: a
 *    wrapper is called with the backend's device handle and passes it on unchanged. A layer
 *    finds its own instance from that handle (each context has its own device handle).
 *  - A layer wraps, never adds: an entry it sets is used only where the next table has that
 *    entry (a NULL kernel stays NULL, so the op still falls back or is composed as without
 *    the layer). The instance and device entries (shutdown, device_count, device_props,
 *    device_open, device_close) and the dtypes declaration are never taken from a layer.
 *  - Optional core events (em_layer.event): op begin/end with the op's name, shapes and
 *    dtypes, backward begin/end, optimizer step begin/end, device buffer cache hit/miss.
 *    The core tests one pointer per op when no layer is configured, and with no layers the
 *    context's ops table is the backend's own (not a copy).
 *
 * Versioning, as for backends: EM_LAYER_ABI_MAJOR must match the core's; fields appended in
 * a later minor are read only when the writer's struct_size covers them.
 */
#ifndef EMBER_LAYER_H
#define EMBER_LAYER_H

#include <ember/backend.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EM_LAYER_ABI_MAJOR 1
#define EM_LAYER_ABI_MINOR 0

#define EM_LAYER_ENTRY_NAME "ember_layer_entry"

/* Core events (em_layer_event.kind). */
typedef enum em_layer_event_kind {
    EM_LAYER_OP_BEGIN = 1,      /* an op starts: name, inputs (n_in, ndim, shape, dtype) */
    EM_LAYER_OP_END = 2,        /* it ended: the same, plus status and the output (out_*) */
    EM_LAYER_BACKWARD_BEGIN = 3,/* em_backward: the engine starts (name "backward") */
    EM_LAYER_BACKWARD_END = 4,  /* ... and ends (status) */
    EM_LAYER_OPTIM_BEGIN = 5,   /* an optimizer step: name "sgd", "adam", "adamw", "rmsprop" */
    EM_LAYER_OPTIM_END = 6,     /* ... and its end (status) */
    EM_LAYER_CACHE_HIT = 7,     /* a device buffer of `bytes` came from the core's cache */
    EM_LAYER_CACHE_MISS = 8     /* ... had to be allocated (buffer_alloc follows) */
} em_layer_event_kind;

#define EM_LAYER_EVENT_MAX_IN 4

/* One event. Valid only during the call; a layer copies what it keeps. Ops nest (an op
 * composed from others reports them inside its begin/end), and so do the phases: the ops
 * of a backward run between BACKWARD_BEGIN and BACKWARD_END. */
typedef struct em_layer_event {
    size_t struct_size;
    int32_t kind;               /* em_layer_event_kind */
    em_status status;           /* *_END: the outcome; EM_OK otherwise */
    const char *name;           /* op or optimizer name; NULL for cache events */
    int32_t n_in;               /* ops: input tensors described below (at most MAX_IN) */
    int32_t in_ndim[EM_LAYER_EVENT_MAX_IN];
    const int64_t *in_shape[EM_LAYER_EVENT_MAX_IN];
    int32_t in_dtype[EM_LAYER_EVENT_MAX_IN];
    int32_t out_ndim;           /* OP_END with EM_OK: the result; -1 otherwise */
    const int64_t *out_shape;
    int32_t out_dtype;
    uint64_t bytes;             /* cache events: bytes of the buffer (its size class) */
} em_layer_event;

/* What the core hands the entry (NULL in a describe call). */
typedef struct em_layer_next {
    size_t struct_size;
    const char *backend;              /* the backend's name ("cpu", "opencl", ...) */
    const em_backend_ops *ops;        /* the next table down; every entry of this core's ABI
                                       * is present (NULL where not provided) */
    void *dev;                        /* the context's device (the backend's handle) */
    const em_device_props *props;     /* its properties */
    uint32_t backend_abi_minor;       /* the backend plugin's own minor */
    /* A cpu device to re-run kernels on (the cpu backend, loaded by the core on first call
     * and kept for the context): its table and device. Buffers of it are host memory. Fails
     * with a message (host->error) when the cpu backend cannot be loaded. */
    em_status (*reference)(em_host_ctx *hc, const em_backend_ops **ops, void **dev);
} em_layer_next;

/* What the entry fills in. The core zeroes it and sets struct_size before the call. */
typedef struct em_layer {
    size_t struct_size;
    uint32_t abi_major, abi_minor;    /* EM_LAYER_ABI_MAJOR / MINOR it was built against */
    const char *name;                 /* must equal <name> in ember-layer-<name>.so */
    const char *version;
    const char *description;          /* one line for ember-info */
    const char *const *config_keys;   /* NULL-terminated keys accepted in [<name>]; may be NULL */
    /* Its table: ops->struct_size is sizeof(em_backend_ops) of the backend.h it was built
     * against (entries past it bypass the layer); non-NULL entries wrap the next table's.
     * Static storage, or the instance's (valid until destroy). */
    const em_backend_ops *ops;
    void *ctx;                        /* the instance, passed to event and destroy */
    /* Optional: core events (see em_layer_event). Called on the context's thread. */
    void (*event)(void *ctx, const em_layer_event *ev);
    /* Called when the context is freed, after every buffer was released and before the
     * device is closed; outer layers first. May still call the next table (synchronize). */
    void (*destroy)(void *ctx);
} em_layer;

/* The one exported symbol. Called once per context with the device already open. It
 * checks host->abi_major (the backend ABI) and reads its config (unknown or bad values:
 * EM_ERR_CONFIG through host->error naming the key). Returning an error means no instance
 * was created; the context is not created either.
 *
 * Describe calls: when host->flags has EM_HOST_DESCRIBE, next is NULL, config is NULL and
 * n_config 0: fill abi_major/minor, name, version, description, config_keys and ops (a
 * static table, so the core can say which kernels bypass it), create nothing, return EM_OK. */
typedef em_status (*em_layer_entry_fn)(const em_host *host, em_host_ctx *hc,
                                       const em_config_kv *config, size_t n_config,
                                       const em_layer_next *next, em_layer *out);

EM_BACKEND_EXPORT em_status ember_layer_entry(const em_host *host, em_host_ctx *hc,
                                              const em_config_kv *config, size_t n_config,
                                              const em_layer_next *next, em_layer *out);

#define EM_LAYER_ENTRY                                                                     \
    EM_BACKEND_EXPORT em_status ember_layer_entry(const em_host *host, em_host_ctx *hc,   \
                                                  const em_config_kv *config,               \
                                                  size_t n_config, const em_layer_next *next, \
                                                  em_layer *out)

#ifdef __cplusplus
}
#endif
#endif
