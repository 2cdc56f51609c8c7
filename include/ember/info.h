/* ember/info.h — introspection for tools such as ember-info: where the loader looks, every
 * plugin it finds and what happened when loading it, and each plugin's devices and ops.
 * The structs are owned by the scan and are append-only (check struct_size). */
#ifndef EMBER_INFO_H
#define EMBER_INFO_H

#include <ember/common.h>
#include <ember/config.h>
#include <ember/backend.h>
#include <ember/context.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where a plugin search directory came from. */
typedef enum em_search_origin {
    EM_SEARCH_LIBRARY_KEY = 0,   /* library= in the backend's section (a file, not a dir) */
    EM_SEARCH_ENV = 1,           /* EMBER_BACKEND_PATH */
    EM_SEARCH_CONFIG_PATH = 2,   /* [backends] path= */
    EM_SEARCH_INSTALL_DIR = 3,   /* compiled-in $(pkglibdir)/backends */
    EM_SEARCH_LIBEMBER_DIR = 4   /* next to the loaded libember */
} em_search_origin;

typedef struct em_search_dir {
    const char *path;
    em_search_origin origin;
    bool exists;
} em_search_dir;

/* Load stages, in order; a plugin's `stage` is the last one it reached. */
typedef enum em_load_stage {
    EM_STAGE_FIND = 0,     /* no file found */
    EM_STAGE_OPEN = 1,     /* dlopen failed (message has dlerror text) */
    EM_STAGE_SYMBOL = 2,   /* no ember_backend_entry */
    EM_STAGE_ABI = 3,      /* ABI major mismatch, short struct or table, no ops, a missing
                              required entry, a half asynchrony group, name mismatch */
    EM_STAGE_INIT = 4,     /* the entry returned an error, or its section has a key it does
                              not accept */
    EM_STAGE_DEVICES = 5,  /* loaded, but no usable device */
    EM_STAGE_READY = 6     /* loaded with at least one device */
} em_load_stage;

EMBER_API const char *em_load_stage_name(em_load_stage st);   /* "open", "symbol", ... */

typedef struct em_plugin_info {
    size_t struct_size;
    const char *name;          /* from the file name: ember-backend-<name>.so */
    const char *path;
    em_search_origin origin;
    const char *shadowed_by;   /* non-NULL: same name found earlier in the search (this one is ignored) */
    em_load_stage stage;
    em_status status;
    const char *message;       /* why it stopped before READY, "" otherwise */
    uint32_t abi_major, abi_minor;
    const char *version, *description;
    int device_count;
    const em_device_props *devices;
    int kernel_count;                 /* entries of em_backend_ops the core knows */
    const char *const *kernel_names;  /* "add", "gemm", ... */
    const bool *kernel_present;       /* false: NULL in the plugin's table */
    const bool *kernel_optional;      /* true: the core composes it when absent */
    /* ---- plugin ABI 1.1 ---- */
    /* Per kernel, the dtypes the plugin runs (EM_DTYPE_BIT bits; a 1.0 plugin gets what 1.0
     * promised; 0 for NULL entries). A device with fp64 = 0 is further never passed f64. */
    const em_dtype_mask *kernel_dtypes;
    uint32_t features;                /* EM_PLUGIN_* bits: the optional entries it has */
    const char *const *config_keys;   /* what its instance accepts (NULL-terminated) */
    /* What its describe call says (the keys checked in device.ini without an instance):
     * NULL when it could not be described; described_by_init: a 1.0 plugin, described by
     * an instance shut down at once; describe_problem: "" or what went wrong. */
    const char *const *described_keys;
    bool described_by_init;
    const char *describe_problem;
} em_plugin_info;

/* em_plugin_info.features */
#define EM_PLUGIN_PINNED_MEMORY 1u   /* host_alloc / host_free */
#define EM_PLUGIN_ASYNC_COPIES 2u    /* copy_h2d_async / copy_d2h_async */
#define EM_PLUGIN_STREAMS 4u         /* streams and events */

typedef struct em_registry em_registry;

/* Scan the search path that cfg (NULL: the located device.ini) gives and try to load every
 * plugin found (each in its own instance, devices enumerated, then unloaded). Fails only
 * when out of memory or cfg is invalid; per-plugin failures are in the infos. */
EMBER_API em_status em_registry_scan(const em_config *cfg, em_registry **out);
EMBER_API void em_registry_free(em_registry *reg);
EMBER_API int em_registry_dir_count(const em_registry *reg);
EMBER_API const em_search_dir *em_registry_dir(const em_registry *reg, int i);
EMBER_API int em_registry_plugin_count(const em_registry *reg);
EMBER_API const em_plugin_info *em_registry_plugin(const em_registry *reg, int i);

/* ---- communication plugins (ember-comm-<name>.so, <ember/comm.h>) ----
 * Listed from their describe call only: no plugin joins a process group (no MPI_Init) to
 * be listed. */
typedef struct em_comm_plugin_info {
    size_t struct_size;
    const char *name;            /* from the file name: ember-comm-<name>.so */
    const char *path;
    em_search_origin origin;
    const char *shadowed_by;     /* non-NULL: the same name earlier in the search path */
    em_load_stage stage;         /* EM_STAGE_READY: described fine */
    em_status status;
    const char *message;         /* why it stopped before READY, "" otherwise */
    uint32_t abi_major, abi_minor;
    const char *version, *description;
    const char *device_backend;  /* the device backend whose buffers it takes, "" if none */
} em_comm_plugin_info;

typedef struct em_comm_list em_comm_list;
/* Every ember-comm-*.so on the search path cfg (NULL: the located device.ini) gives, and
 * [distributed] library=. Fails only when out of memory or cfg is invalid. */
EMBER_API em_status em_comm_list_scan(const em_config *cfg, em_comm_list **out);
EMBER_API int em_comm_list_count(const em_comm_list *l);
EMBER_API const em_comm_plugin_info *em_comm_list_get(const em_comm_list *l, int i);
EMBER_API void em_comm_list_free(em_comm_list *l);

/* A layer file found on the search path (ember-layer-<name>.so; <ember/layer.h>), as its
 * describe call presents it. */
typedef struct em_layer_info {
    size_t struct_size;
    const char *name;          /* from the file name */
    const char *path;
    em_search_origin origin;
    const char *shadowed_by;   /* non-NULL: the same name comes earlier in the search path */
    em_status status;          /* EM_OK: described */
    const char *message;       /* why not, "" otherwise */
    uint32_t abi_major, abi_minor;   /* the layer ABI it was built against */
    const char *version, *description;
    const char *const *config_keys;  /* what [<name>] accepts (NULL-terminated; NULL if unknown) */
    const char *wraps;         /* "N entries (K of the M kernels)" */
    const char *bypass;        /* kernels past its table, which bypass it ("" when none) */
} em_layer_info;
EMBER_API int em_registry_layer_count(const em_registry *reg);
EMBER_API const em_layer_info *em_registry_layer(const em_registry *reg, int i);

/* A context's layer stack ([device] layers / EMBER_LAYERS), outermost first: how many, the
 * name of layer i (NULL out of range), and into buf the kernels that bypass layer i because
 * its table predates them ("" when none; NULL out of range). */
EMBER_API int em_context_layer_count(const em_context *ctx);
EMBER_API const char *em_context_layer_name(const em_context *ctx, int i);
EMBER_API const char *em_context_layer_bypass(const em_context *ctx, int i, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
