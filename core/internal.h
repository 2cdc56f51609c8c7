/* core/internal.h — the core's private structures and the contracts between core files.
 * Never installed; never included by backends.
 *
 * Layers (docs/architecture.md):
 *   public API (ops.c, tensor.c) -> em__apply (dispatch.c): checks, shape rule, output,
 *   forward, autograd record -> kernels via the loaded plugin's ops table (em__kernel_*).
 */
#ifndef EMBER_CORE_INTERNAL_H
#define EMBER_CORE_INTERNAL_H

#include <ember/ember.h>
#include <ember/backend.h>
#include <ember/layer.h>
#include <ember/info.h>
#include <stdarg.h>

#define EM_INTERNAL __attribute__((visibility("hidden")))

/* ------------------------------------------------------------------ errors (error.c) */
/* Record an error in ctx (kept only if none is pending). Returns st. */
EM_INTERNAL em_status em__error(em_context *ctx, em_status st, const char *fmt, ...) EM_PRINTF(3, 4);
/* What em__error changes (ctx's status, last failure and message, the thread's
 * em_last_error), saved so that a failure the core recovers from itself (a whole-convolution
 * kernel declining a call, conv_native.c) leaves no trace. */
typedef struct em__errstate {
    em_status status, failed;
    char errmsg[1024], last[1024];
} em__errstate;
EM_INTERNAL void em__error_save(const em_context *ctx, em__errstate *s);
EM_INTERNAL void em__error_restore(em_context *ctx, const em__errstate *s);
/* Record an error for calls with no context (thread-local; em_last_error). Returns st. */
EM_INTERNAL em_status em__error_global(em_status st, const char *fmt, ...) EM_PRINTF(2, 3);
EM_INTERNAL void em__log(em_context *ctx, em_log_level lvl, const char *fmt, ...) EM_PRINTF(3, 4);
/* The same without a context: printed when lvl <= max. */
EM_INTERNAL void em__log_at(em_log_level max, em_log_level lvl, const char *fmt, ...) EM_PRINTF(3, 4);

/* Test hook for allocation-failure injection: when > 0, the Nth call of em__malloc (and of
 * device buffer allocation) from now fails. Set by EMBER_FAIL_ALLOC=N or by tests. */
EM_INTERNAL void *em__malloc(size_t n);
EM_INTERNAL void *em__calloc(size_t n, size_t sz);
EM_INTERNAL void *em__realloc(void *p, size_t n);
EM_INTERNAL char *em__strdup(const char *s);
EM_INTERNAL bool em__fail_injected(void);   /* consumes one count; true = fail this one */
/* Kernel-call fault injection: EM_OK, or (the Nth call) an error recorded in ctx naming
 * what (NULL: the kernel at offset `kernel`). */
EM_INTERNAL em_status em__kernel_fault(em_context *ctx, size_t kernel, const char *what);
/* EM_ERR_DEVICE (recorded) when ctx is a device context inherited across fork() (context.c) */
EM_INTERNAL em_status em__fork_guard(em_context *ctx);

/* Bounded string formatting into fixed buffers (always NUL-terminated, truncates). */
EM_INTERNAL void em__snprintf(char *buf, size_t n, const char *fmt, ...) EM_PRINTF(3, 4);

/* ----------------------------------------------------------------- config (config/) */
typedef struct em__cfg_entry {
    char *section, *key, *value;
    int line;             /* 0 for keys set in code */
    char *file;           /* file it was read from (NULL: set in code); for messages */
} em__cfg_entry;

struct em_config {
    em__cfg_entry *entries;
    int n, cap;
    char *source;         /* file path, "(in-code configuration)" or "(built-in defaults)" */
};

/* What a configuration means once validated (and EMBER_DEVICE applied). */
typedef struct em__resolved {
    char backend[64];       /* [device] backend, default "cpu" */
    int index;              /* -1: plugin default */
    char fallback[64];      /* "" if none */
    em_log_level log_level; /* [device] log, default warn */
    int op_fallback_cpu;    /* [device] op_fallback: 1 = cpu (default), 0 = error */
    char *search[16];       /* directories from [backends] path (colon-separated) */
    int n_search;
    char device_env[128];   /* EMBER_DEVICE as read ("" if unset) */
    char layers[8][64];     /* [device] layers (EMBER_LAYERS applied), outermost first */
    int n_layers;
    char layers_from[700];  /* where the list was set, for messages ("" if not set) */
} em__resolved;

/* The entry of NULL-terminated list closest to s (a likely typo of it), or NULL. */
EM_INTERNAL const char *em__suggest(const char *const *list, const char *s);
/* The entry for section/key, or NULL. */
EM_INTERNAL em__cfg_entry *em__config_find(const em_config *cfg, const char *section, const char *key);
/* Validate cfg and compute its meaning (resolve.c). On error: message names file, line, key. */
EM_INTERNAL em_status em__config_resolve(const em_config *cfg, em__resolved *out, bool apply_env);
EM_INTERNAL void em__resolved_free(em__resolved *r);
EM_INTERNAL em_config *em__config_clone(const em_config *cfg);
/* Locate (path NULL) or read `path`, and parse: the config a new context uses. */
EM_INTERNAL em_status em__config_load_for_context(const char *path, em_config **out);
/* Keys of section `sec` (the backend's own), as a kv array valid while cfg lives. */
EM_INTERNAL int em__config_section(const em_config *cfg, const char *sec, em_config_kv *kv,
                                   int max, const em__cfg_entry **where);
/* "device.ini:12" style location of an entry, for messages. */
EM_INTERNAL void em__config_where(const em_config *cfg, const em__cfg_entry *e, char *buf, size_t n);
EM_INTERNAL const char *em__getenv(const char *name);   /* secure_getenv */
/* [a-z0-9_-]{1,63}: the names a backend (and its plugin file) may have. */
EM_INTERNAL bool em__valid_backend_name(const char *s);

/* ----------------------------------------------------------------- loader (plugin/loader.c, plugin/search_path.c) */
/* The core-side owner of a plugin instance; its address is the em_host_ctx token. */
typedef struct em_plugin {
    void *dl;                      /* dlopen handle */
    char *path;
    char name[64];
    em_search_origin origin;
    em_backend be;                 /* what the entry returned */
    em_backend_ops ops;            /* zero-extended copy of the plugin's table */
    int async;                     /* EM__ASYNC_* groups it provides */
    em_context *ctx;               /* receives errors and logs; NULL while scanning */
    em_status last_status;         /* last status reported through host->error */
    char last_msg[512];            /* last message reported through host->error */
    em_log_level log_level;
} em_plugin;

EM_INTERNAL extern const em_host em__host;
EM_INTERNAL extern const em_host em__host_describe;   /* flags = EM_HOST_DESCRIBE */

/* em_plugin.async: the optional asynchrony groups a plugin provides (all entries of each) */
#define EM__ASYNC_PINNED 1
#define EM__ASYNC_COPIES 2
#define EM__ASYNC_STREAMS 4

/* Where backend `name`'s plugin file is (library= of its section, else the search path).
 * Fails with EM_ERR_PLUGIN (not found: msg lists the directories) or EM_ERR_CONFIG. */
EM_INTERNAL em_status em__plugin_find(const em_config *cfg, const em__resolved *r, const char *name,
                                      char *path, size_t pathlen, em_search_origin *origin,
                                      char *msg, size_t msglen);
/* The keys of [name] that `accepted` (NULL-terminated) lacks: false with a message naming
 * file, line, key and the accepted list. */
EM_INTERNAL bool em__keys_known(const em_config *cfg, const char *name, const char *const *accepted,
                                const em_config_kv *kv, const em__cfg_entry *const *where, int n,
                                char *msg, size_t msglen);
/* What stands between a plugin path and loading it (search_path.c): EM__FILE_OK (a
 * readable regular file in a safe place), EM__FILE_ABSENT (nothing there: ENOENT, or a
 * path component that is not a directory), or EM__FILE_UNUSABLE with the reason in why
 * ("is a directory", "Too many levels of symbolic links", "Permission denied", "is not a
 * regular file (a FIFO)", or an unsafe owner or mode: see em__path_unsafe). */
enum { EM__FILE_OK = 0, EM__FILE_ABSENT = 1, EM__FILE_UNUSABLE = 2 };
EM_INTERNAL int em__plugin_file_check(const char *path, char *why, size_t n);
/* Like git's safe.directory: true (with the reason in why) when the file or directory at
 * path, already stat'ed into sb, is writable by group or others, or owned by a user other
 * than the effective user or root — a plugin or device.ini there could be replaced by
 * someone else, and library= runs its code in the process. EMBER_UNSAFE_OK=1 turns the
 * check off. */
struct stat;
EM_INTERNAL bool em__path_unsafe(const char *path, const struct stat *sb, char *why, size_t n);
/* A native ELF file whose program headers and loadable segments lie inside the file (dlopen
 * of a truncated file dies of SIGBUS): false with the reason. Non-ELF files pass. */
EM_INTERNAL bool em__elf_intact(const char *path, char *why, size_t n);

/* ----------------------------------------------------------------- describe (plugin/describe.c) */
/* A plugin's static description (ABI 1.1 describe call), cached per file for the process.
 * keys is NULL when none could be had (the plugin cannot be opened, or is of another major);
 * `problem` says why, or names a breach of the describe contract. */
typedef struct em__description {
    uint32_t abi_major, abi_minor;
    bool by_init;              /* a 1.0 plugin: described by a full init, shut down at once */
    char **keys;               /* NULL-terminated accepted keys; NULL: unknown */
    char *version, *description;
    char problem[512];         /* "" when the describe call kept its contract */
} em__description;
/* The description of the plugin file at path (backend `name`); NULL only when out of
 * memory. Owned by the cache: valid until the process ends. */
EM_INTERNAL const em__description *em__plugin_describe(const char *name, const char *path);

/* Build the search path for a resolved config (library= of the backend's section first). */
typedef struct em__search_path {
    em_search_dir dirs[24];
    int n;
    char *library;                 /* library= of the wanted backend, or NULL */
    bool oom;                      /* an allocation failed: the path is incomplete */
} em__search_path;
EM_INTERNAL void em__search_path_build(const em_config *cfg, const em__resolved *r,
                                       const char *backend, em__search_path *sp);
EM_INTERNAL void em__search_path_free(em__search_path *sp);
/* "EMBER_BACKEND_PATH", "install dir", ... for messages */
EM_INTERNAL const char *em__origin_text(em_search_origin o);

/* Find, open, check and instantiate backend `name`. On failure returns the status, fills
 * `stage` and writes a message naming the plugin path, stage and dlerror/plugin text. */
EM_INTERNAL em_status em__plugin_load(const em_config *cfg, const em__resolved *r,
                                      const char *name, em_plugin **out, em_load_stage *stage,
                                      char *msg, size_t msglen);
EM_INTERNAL void em__plugin_unload(em_plugin *p);
/* The same for a known file (no search): used by em__plugin_load and the registry scan. */
EM_INTERNAL em_status em__plugin_load_path(const em_config *cfg, const em__resolved *r,
                                           const char *name, const char *path,
                                           em_search_origin origin, em_plugin **out,
                                           em_load_stage *stage, char *msg, size_t msglen);
/* device_count of a loaded plugin; 0 devices or a failure is EM_ERR_NO_DEVICE with the
 * plugin's reason in msg. */
EM_INTERNAL em_status em__plugin_devices(em_plugin *p, int *count, char *msg, size_t msglen);

/* Context creation's backend half (loader.c). ctx->cfg is set (owned by ctx). Resolves it
 * into ctx->res (EMBER_DEVICE applied), loads the configured backend, opens its device and
 * fills ctx->plugin, dev, ops, backend_name, device_index, props. If that fails and
 * [device] fallback names a backend, loads that instead, prints one warning on stderr and
 * sets ctx->fallback_reason. On failure returns the status with the message recorded by
 * em__error_global (naming file/line/key, plugin path, stage, dlerror text) and leaves
 * nothing loaded. */
EM_INTERNAL em_status em__backend_open(em_context *ctx);
/* [device] backend and fallback (EMBER_DEVICE applied, in r) name ember's own backends or
 * installed plugins; any other name is EM_ERR_CONFIG naming where it was set, with a
 * suggestion and the installed backends (plugin/names.c). */
EM_INTERNAL em_status em__check_backend_names(const em_config *cfg, const em__resolved *r);
/* Closes the device and unloads the plugin (after all buffers were released). */
EM_INTERNAL void em__backend_close(em_context *ctx);

/* Every kernel call goes through these (fallback.c): the backend's kernel, or, when its
 * entry is NULL and [device] op_fallback = cpu, the cpu backend on mirrored buffers. */
EM_INTERNAL em_status em__kernel_call(em_context *ctx, size_t offset, const em_kargs *a);
EM_INTERNAL em_status em__gemm_call(em_context *ctx, const em_gemm_args *g);
/* Whether the backend itself runs this kernel for dtype dt (declared, and the device can). */
EM_INTERNAL bool em__kernel_native(const em_context *ctx, size_t offset, em_dtype dt);
/* One warning at context creation listing the ops that will fall back. */
EM_INTERNAL void em__announce_fallbacks(em_context *ctx);
EM_INTERNAL void em__fallback_free(em_context *ctx);
EM_INTERNAL int em__kernel_index(size_t offset);
EM_INTERNAL const char *em__kernel_name(size_t offset);
typedef struct em__fallback em__fallback;

/* Kernel entries of em_backend_ops the core knows (kernels.c). */
#define EM__MAX_KERNELS 128
#define EM__VIEW_OUT 1u                     /* em__kernel_desc.fixed: out's dtype is fixed */
#define EM__VIEW_IN(i) (2u << (i))          /* ... in[i]'s dtype is fixed */
typedef struct em__kernel_desc {
    const char *name;
    size_t offset;        /* offsetof(em_backend_ops, <name>) */
    size_t dtypes_offset; /* offsetof(em_kernel_dtypes, <name>) */
    bool optional;        /* composed by the core when absent */
    em_dtype_mask dflt;   /* what a plugin that declares nothing implements (ABI 1.0's promise) */
    em_dtype_mask uses;   /* the dtypes the core calls it with */
    unsigned fixed;       /* EM__VIEW_* bits: views whose dtype the kernel's definition fixes */
} em__kernel_desc;
EM_INTERNAL extern const em__kernel_desc em__kernels[];
EM_INTERNAL extern const int em__n_kernels;
/* Per kernel: the dtypes plugin p runs natively (0: entry NULL); the same for one of its
 * devices (no f64 where props say fp64 = 0). */
EM_INTERNAL void em__plugin_masks(const em_plugin *p, em_dtype_mask *mask);
EM_INTERNAL void em__device_masks(const em_plugin *p, const em_device_props *props,
                                  em_dtype_mask *mask);
/* The dtype of the first view of a call of kernel k that mask does not cover, or -1. */
EM_INTERNAL int em__kargs_undeclared(int k, em_dtype_mask mask, const em_kargs *a);
#define EM_KERNEL_OFFSET(field) offsetof(em_backend_ops, field)
/* The kernel at `offset` in p's (zero-extended) ops table, or NULL. */
static inline em_kernel_fn em__kernel_at(const em_backend_ops *ops, size_t offset)
{
    em_kernel_fn fn;
    __builtin_memcpy(&fn, (const char *)ops + offset, sizeof fn);
    return fn;
}

/* ----------------------------------------------------------------- layers (plugin/layers.c) */
/* The layer stack of a context (NULL: none, and ctx->ops is the backend's own table). */
typedef struct em__layers em__layers;
/* Where layer `name`'s file is (ember-layer-<name>.so on the search path): EM_ERR_PLUGIN with
 * a message listing the directories when not found. */
EM_INTERNAL em_status em__layer_find(const em_config *cfg, const em__resolved *r, const char *name,
                                     char *path, size_t pathlen, em_search_origin *origin,
                                     char *msg, size_t msglen);
/* The keys a layer file accepts (describe call), checked against its section of cfg. */
EM_INTERNAL em_status em__layer_check_keys(const em_config *cfg, const char *name, const char *path);
/* Load ctx->res.layers over the opened backend: fills ctx->layers and points ctx->ops at the
 * outermost table. On failure nothing is left loaded and msg says why. */
EM_INTERNAL em_status em__layers_open(em_context *ctx, char *msg, size_t msglen);
/* Destroy the layers (outermost first) and point ctx->ops back at the backend's table. */
EM_INTERNAL void em__layers_close(em_context *ctx);
/* In a forked child: the same no-op entries as the backend's table in every level. */
EM_INTERNAL void em__layers_forget(em_context *ctx, const em_backend_ops *patched);
/* Hand ev to every layer with an event callback (call only when ctx->layer_events). */
struct em_layer_event;
EM_INTERNAL void em__layer_event(em_context *ctx, struct em_layer_event *ev);
/* Op begin/end and the phase events from the core's hooks. */
struct em__tensor;
EM_INTERNAL void em__layer_op(em_context *ctx, int kind, const char *name,
                              struct em__tensor *const *in, int n_in,
                              const struct em__tensor *out, em_status st);
EM_INTERNAL void em__layer_mark(em_context *ctx, int kind, const char *name, em_status st,
                                uint64_t bytes);
/* The cpu device the layers' reference() hands out (the op fallback's instance). */
EM_INTERNAL em_status em__fallback_reference(em_context *ctx, const em_backend_ops **ops,
                                             void **dev);

/* ----------------------------------------------------------------- tensors (tensor/tensor.c) */
/* Two names for a tensor: the user holds an em_tensor *, which is a handle (handle.c) and
 * never points at memory; the core works on em__tensor objects. Every public function
 * turns its handles into objects on entry (em__obj) and its results into handles on exit
 * (em__give); nothing below the public layer sees a handle, except backward functions,
 * which are written with the public API (em_bw). */
typedef struct em__tensor em__tensor;
typedef struct em_storage em_storage;
typedef struct em_node em_node;
typedef struct em__pending em__pending;

struct em_storage {
    em_context *ctx;
    void *buf;              /* backend buffer handle */
    size_t nbytes;
    int32_t refcount;       /* tensors using it */
    uint32_t version;       /* bumped by every in-place write (autograd checks it) */
    em__pending *pending;   /* an asynchronous copy in flight (async.c), or NULL */
    em_storage *prev, *next;/* the context's list of live storages */
};

struct em__tensor {
    int32_t refcount;       /* handles (each holds one) + internal references */
    em_context *ctx;
    em_storage *storage;
    int64_t offset;         /* elements */
    int64_t shape[EM_MAX_DIMS];
    int64_t strides[EM_MAX_DIMS];
    int32_t ndim;
    em_dtype dtype;
    /* autograd */
    bool requires_grad;
    bool retains_grad;
    bool is_view;           /* shares storage with a base created by a view op */
    /* differentiable views (made by em__tensor_view; autograd/views.c): PyTorch's _base, the
     * tensor this one views (the first base of a chain of views: a view of a view records
     * its source's base), owned; NULL when t is not a view of a floating-point tensor. */
    em__tensor *view_base;
    uint32_t view_version;  /* storage version when grad_fn was last made for this geometry */
    uint8_t view_creation;  /* EM__VIEW_* : how the view was made (PyTorch's CreationMeta) */
    uint8_t view_output_nr; /* which output of a multi-output view op it is */
    em__tensor *grad;       /* accumulated gradient (owned) */
    /* grad's values stand for zeros: em_tensor_zero_grad on a .grad no one else holds only
     * marks it. A read fills it first (em__grad_settle); the next backward's gradient
     * replaces it instead of being added to it. */
    bool grad_zeroed;
    em_node *grad_fn;       /* producer node (owned ref), NULL for leaves */
    em__tensor *grad_staged;/* during a backward: this tensor's new .grad, not yet committed */
    em__tensor *live_next;  /* the context's live list; the free list while dead */
    em__tensor *live_prev;
};

/* em__tensor.view_creation: views made in grad mode may be modified in place under autograd;
 * those made under no_grad, or by an op that returns several views (split, chunk), may not
 * (PyTorch's CreationMeta DEFAULT, NO_GRAD_MODE, MULTI_OUTPUT_NODE). */
#define EM__VIEW_DEFAULT 0
#define EM__VIEW_NO_GRAD 1
#define EM__VIEW_MULTI_OUTPUT 2

/* Reference counting of tensor objects (internal references). */
EM_INTERNAL em__tensor *em__tensor_ref(em__tensor *t);
EM_INTERNAL void em__tensor_unref(em__tensor *t);
/* New tensor with fresh contiguous storage (refcount 1, owned by caller). */
EM_INTERNAL em__tensor *em__tensor_new(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape);
/* New tensor object aliasing t's storage with the given geometry (refcount 1). */
EM_INTERNAL em__tensor *em__tensor_alias(em__tensor *t, int ndim, const int64_t *shape,
                                         const int64_t *strides, int64_t offset);
/* The one constructor of every view op's result (view.c and the indexing views): an alias of
 * src with the given geometry that records its base (src's base when src is itself a view)
 * and how it was made (grad mode, and src's creation). Refcount 1. */
EM_INTERNAL em__tensor *em__tensor_view(em__tensor *src, int ndim, const int64_t *shape,
                                        const int64_t *strides, int64_t offset);
/* Outputs of ops that return several views (split, chunk): in-place writes to them under
 * autograd are refused, as PyTorch's MULTI_OUTPUT_NODE. nr: which output. */
EM_INTERNAL void em__tensor_view_multi_output(em__tensor *t, int nr);
/* t owns its storage after all (reshape's copy): it is not a view, and records no base. */
EM_INTERNAL void em__tensor_unview(em__tensor *t);
/* em_set_printoptions' largest precision: a double's exact decimal expansion has at most
 * 1074 digits after the point; more would only add zeros. */
#define EM__PRINT_MAX_PRECISION 1074

/* The element count of a shape already checked (every tensor's is: its shape passed
 * em__numel_checked when it was made). */
EM_INTERNAL int64_t em__numel(int ndim, const int64_t *shape);
/* The most elements a tensor may have: its byte count (8-byte elements) and every contiguous
 * stride and storage offset then fit in int64 with room to spare. */
#define EM__MAX_NUMEL (INT64_MAX / 16)
/* Whether a shape is one ember can hold: no negative size, and the product of its sizes,
 * zeros counted as ones (so that its contiguous strides exist too), at most EM__MAX_NUMEL
 * (overflow-checked). *numel (may be NULL) gets the element count. */
EM_INTERNAL bool em__numel_checked(int ndim, const int64_t *shape, int64_t *numel);
/* The same, as a status: EM_OK, or EM_ERR_SHAPE recorded naming op and the shape. */
EM_INTERNAL em_status em__check_shape_size(em_context *ctx, const char *op, int ndim,
                                           const int64_t *shape);
EM_INTERNAL bool em__is_contiguous(const em__tensor *t);
EM_INTERNAL void em__contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
/* Fill a kernel view from a tensor. */
EM_INTERNAL void em__view_of(const em__tensor *t, em_kview *v);
/* Read a tensor into a host array of dtype dt (converting), row-major. */
EM_INTERNAL em_status em__to_host_as(em__tensor *t, em_dtype dt, void *dst);
/* "[64, 1000]" */
EM_INTERNAL void em__shape_str(int ndim, const int64_t *shape, char *buf, size_t n);
EM_INTERNAL void em__storage_bump(em_storage *s);

/* ----------------------------------------------------------------- async (tensor/async.c) */
/* Before the device queue uses s (write: it writes s): order it after s's asynchronous copy
 * in flight, if any. Call through em__storage_ready, which costs nothing when none is. */
EM_INTERNAL em_status em__storage_wait(em_context *ctx, em_storage *s, bool write);
static inline em_status em__storage_ready(em_context *ctx, const em__tensor *t, bool write)
{
    return t->storage->pending ? em__storage_wait(ctx, t->storage, write) : EM_OK;
}
/* s's buffer is going back to the cache: its next user must wait for the copy in flight. */
EM_INTERNAL void em__storage_release_pending(em_context *ctx, em_storage *s);
/* An asynchronous copy between bytes of s at off and host memory (upload: host -> s). */
EM_INTERNAL em_status em__copy_async(em_context *ctx, em_storage *s, size_t off, void *host,
                                     size_t bytes, bool upload);
/* em_synchronize: all queues done, every copy in flight complete. */
EM_INTERNAL em_status em__async_synchronize(em_context *ctx);
/* Context teardown: copies finished, events, copy stream and pinned memory released. */
EM_INTERNAL void em__async_free(em_context *ctx);

/* ----------------------------------------------------------------- handles (tensor/handle.c) */
/* The object behind a handle. NULL gives NULL silently (an earlier failure is already
 * recorded: "NULL in, NULL out"); a stale handle — freed, released by its scope, or of a
 * freed context — gives NULL and records EM_ERR_FREED (in the context that issued it if
 * that context is alive, else for em_last_error). */
EM_INTERNAL em__tensor *em__obj(const em_tensor *h);
/* The same without recording anything (inspection functions answer -1 / NULL / false). */
EM_INTERNAL em__tensor *em__obj_quiet(const em_tensor *h);
/* A new handle for t, taking over one reference of t (the caller's +1), registered in the
 * innermost open scope (or owned by the caller when none is open). NULL t gives NULL; on
 * failure the reference is dropped, the error recorded, and NULL returned. */
EM_INTERNAL em_tensor *em__give(em__tensor *t);
/* The same, never registered in a scope: for handles the core keeps (optimizers). */
EM_INTERNAL em_tensor *em__hold(em__tensor *t);
/* A second handle to h's object in the innermost scope (a backward passing g through). */
EM_INTERNAL em_tensor *em__dup(em_tensor *h);
/* Release a handle: the slot is invalidated and its reference dropped. Stale or NULL
 * handles are ignored (quietly): what em_sgd_free needs after em_context_free. The caller
 * has already taken it out of any scope. */
EM_INTERNAL void em__handle_release(em_tensor *h);
/* Invalidate every handle of ctx and return its slots (em_context_free; objects are freed
 * wholesale by the caller). */
EM_INTERNAL void em__handles_context_free(em_context *ctx);

/* ----------------------------------------------------------------- ops (ops/) */
#define EM_MAX_ARITY 3

/* A tensor's geometry in its storage (offset in elements). */
typedef struct em__geometry {
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    int64_t strides[EM_MAX_DIMS];
    int64_t offset;
} em__geometry;

typedef struct em_op_params {
    double s[4];                    /* scalars */
    int64_t shape[EM_MAX_DIMS];     /* target shape (view/reshape/expand) */
    int ndim;
    uint32_t dim_mask;              /* reduced dims */
    int i[4];                       /* small ints: transpose dims, keepdim, flags */
} em_op_params;

typedef struct em_op em_op;

/* One call of an op: the inputs, parameters, and the output being produced. */
typedef struct em_call {
    em_context *ctx;
    const em_op *op;
    em__tensor *in[EM_MAX_ARITY];
    int n_in;
    em_op_params p;
    /* filled by the shape rule */
    int out_ndim;
    int64_t out_shape[EM_MAX_DIMS];
    em_dtype out_dtype;
    em__tensor *out;                 /* allocated by the dispatcher unless the op is a view */
    /* filled by the dispatcher for the autograd record */
    uint32_t in_version[EM_MAX_ARITY];      /* storage versions before forward ran */
    em__tensor *save_override[EM_MAX_ARITY]; /* saved instead of in[i] (in-place: self's old value) */
} em_call;

/* What a backward function receives. It is written with the public API: grad_out and
 * saved[] are handles in a scope the engine opened around the call, and it sets grad_in[i],
 * for each i where needs[i] is true, to a handle in that scope — a result of the public API,
 * or em__dup(grad_out) to pass the gradient through. The engine keeps the objects, reduces
 * each to the input's shape (sum over broadcast dims), and ends the scope. */
typedef struct em_bw {
    em_context *ctx;
    /* handles (in the engine's private scope): backward functions use the public API */
    const em_op_params *p;
    em_tensor *grad_out;
    em_tensor *saved[EM_MAX_ARITY + 1]; /* inputs as saved (per op->saves), then output */
    int in_ndim[EM_MAX_ARITY];
    const int64_t *in_shape[EM_MAX_ARITY];
    em_dtype in_dtype[EM_MAX_ARITY];
    bool needs[EM_MAX_ARITY];
    em_tensor *grad_in[EM_MAX_ARITY];
    const em__geometry *geom;           /* AsStridedBackward0: {base, view} (else NULL) */
} em_bw;

#define EM_SAVE_IN(i) (1u << (i))
#define EM_SAVE_OUT (1u << 3)

/* The op descriptor: one per op, in the table. forward and backward sit together in the
 * op's source file. */
struct em_op {
    const char *name;          /* "add": used in messages */
    const char *grad_fn;       /* PyTorch's node name, "AddBackward0"; NULL: not differentiable */
    int arity;
    unsigned saves;            /* EM_SAVE_* bits: what backward needs */
    bool is_view;              /* forward produces a view of in[0] (no allocation) */
    /* In place, self may be an expanded view (several elements at one memory location, as
     * PyTorch allows for fill_, zero_ and masked_fill_): forward then gets as c->out self with
     * those dims reduced to size 1 (c->out_shape stays self's shape), since a kernel never
     * gets a zero-stride output. Every other in-place op refuses such a self. */
    bool writes_expanded;
    size_t kernel;             /* EM_KERNEL_OFFSET of the kernel it lowers to, if one */
    /* Shape rule: validate inputs and params, set out_ndim/out_shape/out_dtype. */
    em_status (*shape)(em_call *c);
    /* Forward: write c->out (already allocated), or set c->out to a view if is_view. */
    em_status (*forward)(em_call *c);
    /* Backward: see em_bw. NULL for ops that produce no gradient. */
    em_status (*backward)(em_bw *b);
    /* EM_SAVE_* bits saved only when input i requires grad (what input i's gradient
     * formula needs beyond `saves`), as PyTorch saves `other` of a*b only for a's gradient. */
    unsigned saves_for[EM_MAX_ARITY];
};

/* What a call of op on in[] saves for backward: op->saves, and op->saves_for[i] of every
 * input i that requires grad. */
EM_INTERNAL unsigned em__op_saves(const em_op *op, em__tensor *const *in, int n_in);

/* Run an op: checks (live, same context), shape rule, output allocation, forward, and the
 * autograd record. Returns a new tensor (refcount 1, not in a scope) or NULL (error
 * recorded in the context of the first live input). */
EM_INTERNAL em__tensor *em__apply(const em_op *op, em__tensor *const *in, int n_in,
                                  const em_op_params *p);
/* Public-API form: resolves the handles (NULL in gives NULL out, a stale one EM_ERR_FREED)
 * and gives the result a handle in the innermost scope. */
EM_INTERNAL em_tensor *em__apply_h(const em_op *op, em_tensor *const *in, int n_in,
                                   const em_op_params *p);
/* The same, writing into `self` (in-place ops): self must have the output's shape. */
EM_INTERNAL em_status em__apply_inplace(const em_op *op, em__tensor *self, em__tensor *const *in,
                                        int n_in, const em_op_params *p);
/* Public-API form; in[] may contain self's handle. */
EM_INTERNAL em_status em__apply_inplace_h(const em_op *op, em_tensor *self, em_tensor *const *in,
                                          int n_in, const em_op_params *p);
/* Whether t (not empty) has several elements at one memory location (a dim of stride 0 and
 * size > 1: an expanded view); shape receives t's shape with those dims reduced to 1. */
EM_INTERNAL bool em__unexpanded_shape(const em__tensor *t, int64_t *shape);

/* --- kernel launch helpers used by forwards (dispatch.c) --- */
/* Elementwise kernel over out and inputs broadcast to out's shape, dims coalesced.
 * `offset` selects the kernel in the ops table. */
EM_INTERNAL em_status em__launch(em_context *ctx, size_t offset, em__tensor *out,
                                 em__tensor *const *in, int n_in, const double *p,
                                 const uint64_t *u);
/* The same with exact integer parameters (ABI 1.2: integer scalars, ip[0..n_ip)). */
EM_INTERNAL em_status em__launch_ip(em_context *ctx, size_t offset, em__tensor *out,
                                    em__tensor *const *in, int n_in, const double *p,
                                    const uint64_t *u, const int64_t *ip, int n_ip);
/* Kernels over one dimension (launch.c; max_dim, min_dim, softmax, log_softmax,
 * index_select): in and every output are given as 3-D views (outer, n, inner) around dim
 * (in is copied first when its outer or inner dims do not merge); outputs have in's ndim
 * (keepdim). index: a 1-D i64 index appended as in[1] (index_select), or NULL. */
EM_INTERNAL em_status em__launch_dim(em_context *ctx, size_t offset, em__tensor *const *outs,
                                     int n_out, em__tensor *in, int dim, em__tensor *index);
/* Kernels on plain strided views (gather, scatter_add): outputs and inputs as they are
 * (no broadcast, no coalescing), with integer parameters ip. Inputs overlapping an output
 * are copied first. */
EM_INTERNAL em_status em__launch_views(em_context *ctx, size_t offset, em__tensor *const *outs,
                                       int n_out, em__tensor *const *in, int n_in,
                                       const double *p, const int64_t *ip, int n_ip);
/* A kernel over contiguous tensors of one shape, each seen as a 1-D view of its elements
 * (launch.c; adam): up to 4 outputs, 5 inputs, p[4], fp[], ip[] as the kernel specifies.
 * Outputs must not overlap inputs or each other (the caller gives fresh ones). */
EM_INTERNAL em_status em__launch_flat(em_context *ctx, size_t offset, em__tensor *const *outs,
                                      int n_out, em__tensor *const *in, int n_in,
                                      const double *p, const double *fp, int n_fp,
                                      const int64_t *ip, int n_ip);
/* Reduction kernel (sum): out has in's ndim with 1 in reduced dims. */
EM_INTERNAL em_status em__launch_reduce(em_context *ctx, size_t offset, em__tensor *out_keepdim,
                                        em__tensor *in, double scale);
/* GEMM over 2-D or 3-D (batched) tensors; copies operands that no stride layout fits. */
EM_INTERNAL em_status em__launch_gemm(em_context *ctx, em__tensor *out, em__tensor *a,
                                      em__tensor *b, double alpha, double beta);
/* Device memory */
EM_INTERNAL em_status em__buffer_alloc(em_context *ctx, size_t bytes, void **buf);
EM_INTERNAL void em__buffer_release(em_context *ctx, void *buf, size_t bytes);

/* --- broadcasting helpers (shape.c) --- */
EM_INTERNAL em_status em__broadcast_shapes(em_context *ctx, const char *opname, int na,
                                           const int64_t *a, int nb, const int64_t *b,
                                           int *nout, int64_t *out);
/* Strides of t seen as shape (ndim, shape) by broadcasting (0 for broadcast dims). */
EM_INTERNAL void em__broadcast_strides(const em__tensor *t, int ndim, const int64_t *shape,
                                       int64_t *strides);
EM_INTERNAL int em__wrap_dim(em_context *ctx, int dim, int ndim, const char *opname, bool *ok);

/* --- dtype rules of ops (dtype.c) --- */
/* A scalar PyTorch would see as a Python int: finite, whole, within int64's range. */
EM_INTERNAL bool em__scalar_integral(double s);
/* The dtype of (tensor of dtype t) op (scalar s), as torch.result_type: a float tensor keeps
 * its dtype; an integer or bool tensor keeps its dtype with an integral scalar (bool becomes
 * i64), and becomes f32 (the default dtype) with any other scalar. */
EM_INTERNAL em_dtype em__scalar_result(em_dtype t, double s);
/* The integer v as a value of integer dtype dt, wrapped as a C cast to dt's type does
 * (bool: v != 0): what the kernels are handed in ip[]. */
EM_INTERNAL int64_t em__wrap_int(em_dtype dt, int64_t v);
/* s converted to dtype dt the way PyTorch converts a fill value (fill_, full, masked_fill):
 * truncated toward zero, an integral negative value wrapping into u8; EM_ERR_INVALID
 * "value cannot be converted to type uint8_t without overflow" (naming op) when out of
 * range, NaN or infinite. For float dtypes *iv is 0 and nothing can fail. */
EM_INTERNAL em_status em__scalar_checked(em_context *ctx, const char *op, em_dtype dt, double s,
                                         int64_t *iv);
/* Fill t with s (float, bool) or exactly with iv (integer dtypes, wrapped to the dtype). */
EM_INTERNAL em_status em__launch_fill(em__tensor *t, double s, int64_t iv);
/* A new contiguous copy of t converted to dt (copy kernel; no autograd). */
EM_INTERNAL em__tensor *em__cast(em__tensor *t, em_dtype dt);
/* A 0-dim tensor of dt holding s (integer dtypes: trunc(s) wrapped; s must be integral). */
EM_INTERNAL em__tensor *em__scalar_tensor(em_context *ctx, em_dtype dt, double s);
/* Whether any element of t is zero (one reduction and a one-element read). */
EM_INTERNAL em_status em__any_zero(em__tensor *t, bool *out);
/* Shape-rule pieces: an error naming the op unless a and b share a dtype; out_ndim and
 * out_shape broadcast over every input. */
EM_INTERNAL em_status em__same_dtype(em_call *c, const em__tensor *a, const em__tensor *b);
EM_INTERNAL em_status em__shape_broadcast(em_call *c);
/* c's inputs, each cast to c->out_dtype where it differs (an integer tensor in an f32 op,
 * bool in an i64 one); tmp[i] holds such a copy (or NULL): em__release_tmp frees them. */
EM_INTERNAL em_status em__promoted_inputs(em_call *c, em__tensor **in, em__tensor **tmp);
EM_INTERNAL void em__release_tmp(em__tensor **tmp, int n);

/* The op table (ops_*.c). */
#define EM_OP(name) EM_INTERNAL extern const em_op em__op_##name
EM_OP(add); EM_OP(sub); EM_OP(mul); EM_OP(div); EM_OP(maximum); EM_OP(minimum);
EM_OP(add_scalar); EM_OP(mul_scalar); EM_OP(rsub_scalar); EM_OP(pow_scalar);
EM_OP(neg); EM_OP(exp); EM_OP(log); EM_OP(sqrt); EM_OP(abs); EM_OP(relu); EM_OP(tanh); EM_OP(sigmoid);
EM_OP(clamp); EM_OP(clamp_min); EM_OP(clamp_max);
EM_OP(lt); EM_OP(le); EM_OP(gt); EM_OP(ge); EM_OP(eq); EM_OP(ne);
EM_OP(where); EM_OP(masked_fill);
EM_OP(mm); EM_OP(bmm);
EM_OP(sum); EM_OP(mean);
EM_OP(sub_scalar); EM_OP(div_scalar);
EM_OP(relu_bw); EM_OP(clamp_bw); EM_OP(pow_bw); EM_OP(tanh_bw); EM_OP(sigmoid_bw);
EM_OP(sum_dims); EM_OP(mean_dims);
EM_OP(transpose); EM_OP(t); EM_OP(view); EM_OP(reshape_alias); EM_OP(unsafe_view);
EM_OP(expand); EM_OP(unsqueeze); EM_OP(squeeze);
EM_OP(clone); EM_OP(cast); EM_OP(copy_); EM_OP(fill_); EM_OP(zero_);
EM_OP(permute); EM_OP(slice); EM_OP(select); EM_OP(split); EM_OP(split_with_sizes);
EM_OP(index_select); EM_OP(gather); EM_OP(scatter_add); EM_OP(cat); EM_OP(stack);
#undef EM_OP

/* ops/conv.c: relu(conv2d(x, w, bias, ...)) with em_relu's values and graph (ReluBackward0 over
 * ConvolutionBackward0), the ReLU applied by the backend's conv2d kernel where it can (ABI
 * 1.6) instead of by a pass of its own over the output: nn.Sequential's Conv2d then ReLU. */
EM_INTERNAL em_tensor *em__conv2d_relu(em_tensor *x, em_tensor *w, em_tensor *bias,
                                       const int *stride, const int *padding, const int *dilation,
                                       int groups);

/* ---------------------------------------------------------------- transactions (tensor/txn.c) */
/* All-or-nothing writes of several tensors: stage (may fail), then commit (cannot fail) or
 * abort. See txn.c. */
typedef struct em__txn_entry {
    em_storage *storage;       /* written storage */
    em__tensor *shadow;        /* its new contents: a tensor over a buffer of the same size */
} em__txn_entry;
typedef struct em__txn {
    em_context *ctx;
    em__txn_entry *e;
    int n, cap;
} em__txn;
EM_INTERNAL void em__txn_begin(em__txn *x, em_context *ctx);
/* Stage dst := value (value broadcast to dst's shape, cast to its dtype; it may be taken over
 * as the shadow, so the caller must not read it afterwards). */
EM_INTERNAL em_status em__txn_write(em__txn *x, em__tensor *dst, em__tensor *value);
EM_INTERNAL void em__txn_commit(em__txn *x);
EM_INTERNAL void em__txn_abort(em__txn *x);

/* ---------------------------------------------------------------- autograd (autograd/) */
struct em_node {
    int32_t refcount;
    em_context *ctx;
    const em_op *op;
    em_op_params p;
    int n_in;
    em_node *next_fn[EM_MAX_ARITY];   /* producer of input i (ref), or NULL */
    em__tensor *next_leaf[EM_MAX_ARITY];/* leaf input i requiring grad (ref), or NULL */
    em__tensor *saved[EM_MAX_ARITY + 1];
    uint32_t saved_version[EM_MAX_ARITY + 1];
    int in_ndim[EM_MAX_ARITY];
    int64_t in_shape[EM_MAX_ARITY][EM_MAX_DIMS];
    em_dtype in_dtype[EM_MAX_ARITY];
    bool released;                     /* saved tensors freed by a backward */
    bool ran;                          /* ran in the backward in progress */
    em__tensor *retained_out;           /* output whose .grad is retained (weak) */
    /* backward scratch */
    uint64_t epoch;
    int pending;
    em__tensor *acc;                    /* accumulated grad of the output during backward */
    /* in-place writes to views (autograd/views.c): geometries {base, view} of an
     * AsStridedBackward0 or CopySlices node (owned, else NULL); a CopySlices node's in-place
     * op (its backward and saved tensors; its edges are the CopySlices node's) */
    em__geometry *geom;
    em_node *inner;
    em_node *live_prev, *live_next;    /* the context's list of nodes (freed with it) */
};

/* Called by em__apply after forward when grad mode is on and an input requires grad. */
EM_INTERNAL em_status em__record(em_call *c);
/* The same in two halves, for in-place ops: prepare (may fail) before forward writes,
 * commit (cannot fail) after. */
EM_INTERNAL em_status em__record_prepare(em_call *c, em_node **out);
EM_INTERNAL void em__record_commit(em_call *c, em_node *n);
EM_INTERNAL void em__node_unref(em_node *n);
/* A node of op with no edges yet, in ctx's list of nodes (refcount 1), or NULL (OOM recorded). */
EM_INTERNAL em_node *em__node_new(em_context *ctx, const em_op *op);
/* Make n t's grad_fn (taking over the caller's reference of n; NULL: none), dropping the old
 * one; a retained .grad follows t to its new history, as PyTorch's retain_grad hook. */
EM_INTERNAL void em__set_grad_fn(em__tensor *t, em_node *n);
/* Engine parts the CopySlices node runs its in-place op with (autograd.c): the saved-tensor
 * checks of fn, and fn's backward on g for the inputs marked in needs (grads[i]: +1 ref or
 * NULL). */
EM_INTERNAL em_status em__node_check_saved(em_context *ctx, em_node *fn);
EM_INTERNAL em_status em__node_call_backward(em_context *ctx, em_node *fn, const bool *needs,
                                             em__tensor *g, em__tensor **grads);

/* Views under autograd (autograd/views.c), as PyTorch's view + in-place handling. */
/* Bring a view's history up to date before it is used with grad recorded: after its storage
 * was written (by an in-place op on its base or another view of it), its grad_fn becomes an
 * AsStridedBackward0 of its base's present history; a view made under no_grad, or by a
 * multi-output op, is then an error (PyTorch's wording). A no-op for other tensors. */
EM_INTERNAL em_status em__view_refresh(em__tensor *t);
/* Inspection without side effects: whether t requires grad, and its grad_fn's name, as they
 * will be once refreshed (NULL: a leaf, or a view whose refresh would fail). */
EM_INTERNAL bool em__requires_grad(const em__tensor *t);
EM_INTERNAL const char *em__grad_fn_name(const em__tensor *t);
EM_INTERNAL bool em__is_leaf(const em__tensor *t);
/* t->grad as values a reader may use: a .grad marked zeroed is filled with zeros first.
 * Every reader of t->grad outside the backward calls this before reading. */
EM_INTERNAL em_status em__grad_settle(em__tensor *t);
/* Whether t's .grad is referenced by t alone (no handle, view or saved copy): then no one
 * can read it but through t, and zeroing it may wait until someone does. */
EM_INTERNAL bool em__grad_private(const em__tensor *t);
/* em__apply_inplace's autograd checks of self (view rules first, then the leaf rule). */
EM_INTERNAL em_status em__view_check_inplace(em__tensor *self, const char *opname);
/* The rebase of an in-place op on a view self: inner is the op's node (ownership taken; freed
 * on failure). prepare (may fail) builds the base's CopySlices node and self's new
 * AsStridedBackward0 node before the op writes; commit (cannot fail) installs them; abort
 * frees them. */
typedef struct em__rebase {
    em_node *copy_slices, *view_fn;
} em__rebase;
EM_INTERNAL em_status em__view_rebase_prepare(em__tensor *self, em_node *inner, em__rebase *r);
EM_INTERNAL void em__view_rebase_commit(em__tensor *self, em__rebase *r);
EM_INTERNAL void em__view_rebase_abort(em__rebase *r);
/* The CopySlices node's backward (run by the engine in place of a descriptor's). */
EM_INTERNAL em_status em__copy_slices_backward(em_context *ctx, em_node *n, em__tensor *g,
                                               em__tensor **grads);
EM_INTERNAL extern const em_op em__op_as_strided_bw;
EM_INTERNAL extern const em_op em__op_copy_slices;

/* Sum g over broadcast dims so it has shape (ndim, shape); returns a new tensor (+1 ref). */
EM_INTERNAL em__tensor *em__sum_to(em__tensor *g, int ndim, const int64_t *shape);

/* ---------------------------------------------------------------- context (context.c) */
typedef struct em__scope {
    em_tensor **items;
    int n, cap;
} em__scope;

typedef struct em__cache_bin {
    void **bufs;
    int n, cap;
    size_t bytes;
} em__cache_bin;

struct em_context {
    em_plugin *plugin;
    void *dev;
    const em_backend_ops *ops;      /* == &plugin->ops */
    em_dtype_mask kmask[EM__MAX_KERNELS]; /* per kernel: dtypes the device runs natively */
    char backend_name[64];
    int device_index;
    em_device_props props;
    em_config *cfg;
    em__resolved res;
    char *fallback_reason;
    em__fallback *fallback;          /* cpu instance for ops the backend lacks (lazy) */
    em__layers *layers;              /* [device] layers (NULL: none) */
    bool layer_events;               /* a layer takes core events: the hooks' one test */
    /* errors: the first one is kept */
    em_status status;          /* the first error since em_context_clear_error: kept */
    em_status failed;          /* the last error recorded, kept or not (em__failed) */
    char errmsg[1024];
    /* scopes */
    em__scope *scopes;
    int n_scopes, cap_scopes;
    /* autograd */
    int no_grad_depth;
    bool grad_enabled;
    uint64_t bw_epoch;
    em_node **bw_order;              /* scratch of the topological sort, reused */
    em__tensor **bw_staged;          /* tensors whose .grad a backward in progress will set */
    int n_bw_staged, cap_bw_staged;
    struct em__bw_frame *bw_stack;
    int cap_bw_order, cap_bw_stack;
    /* rng */
    uint64_t seed, counter;
    /* handles (handle.c): this context's batches of slots, and its free slots */
    uint32_t *hbatches;
    int n_hbatches, cap_hbatches;
    uint32_t hfree;                  /* index + 1 of the first free slot, 0: none */
    /* tensor objects: free list and live list */
    em__tensor *tensor_free;
    em__tensor *tensor_live;
    int64_t n_live_tensors;
    em_storage *storages;            /* live storages */
    em_node *nodes;                  /* live autograd nodes */
    em_node **node_free_stack;       /* iterative release of long graphs */
    int n_node_free, cap_node_free;
    bool freeing_nodes;
    int scope_overflow;              /* scopes that could not be pushed (out of memory) */
    /* asynchronous copies (async.c) */
    void *copy_stream;               /* created on first need */
    em__pending *pending;            /* storages with a copy in flight */
    void **pinned;                   /* em_pinned_alloc blocks still held */
    int n_pinned, cap_pinned;
    /* device buffer cache, binned by size */
    em__cache_bin *bins;
    int n_bins, cap_bins;
    size_t mem_in_use, mem_cached, mem_peak;
    /* print options */
    int print_precision, print_threshold, print_edgeitems, print_linewidth;   /* (print.c) */
    /* fork() (context.c): the process and fork generation it was created in; a device
     * context refuses work in another (host_backend: the cpu backend, which may) */
    bool host_backend;
    unsigned fork_gen;
    long pid;
};

EM_INTERNAL bool em__grad_mode(const em_context *ctx);
/* The status of the error recorded last in ctx, whether or not it was kept (em_context_status
 * keeps the first): what a call that failed returns, and what em_last_error describes, even
 * when an earlier error is still pending. EM_OK when none was recorded since the last clear. */
static inline em_status em__failed(const em_context *ctx)
{
    return ctx->failed;
}
/* Register handle h in the innermost open scope (nothing when none is open). On failure the
 * error is recorded and the caller releases h. */
EM_INTERNAL em_status em__scope_add(em_context *ctx, em_tensor *h);
/* Report a failed backend call (kernel, copy, allocation, ...): uses the plugin's last message
 * if it set one. Returns the status recorded: st, or EM_ERR_BACKEND (the raw value in the
 * message) when st is not an em_status error. */
EM_INTERNAL em_status em__backend_failed(em_context *ctx, em_status st, const char *what);

#endif
