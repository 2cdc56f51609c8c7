/* ember/context.h — a context owns one loaded backend, one device on it, the tensors made
 * in it, its scopes, its random generator and its error state.
 *
 * Errors: every call that can fail records the FIRST failure in its context (status +
 * message naming the thing). Calls returning a tensor return NULL on failure, and every
 * op given a NULL tensor returns NULL without recording anything, so a chained expression
 * such as em_mm(em_clamp_min(em_mm(x, w1), 0), w2) is safe: check once at the end.
 *
 * Threads: contexts are independent and may be used from different threads at the same
 * time; one context must not be used by two threads at once. */
#ifndef EMBER_CONTEXT_H
#define EMBER_CONTEXT_H

#include <ember/common.h>
#include <ember/config.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct em_context em_context;

/* Create a context from device.ini. config_path NULL: locate it (EMBER_CONFIG,
 * ./device.ini, $XDG_CONFIG_HOME/ember/device.ini, <sysconfdir>/ember/device.ini, else
 * built-in defaults); EMBER_DEVICE=name[:index] then overrides the device choice.
 * On failure *out is NULL and em_last_error() holds the message. */
EMBER_API em_status em_context_create(em_context **out, const char *config_path);
/* Same, from a configuration built in code (cfg is copied; EMBER_DEVICE still applies). */
EMBER_API em_status em_context_create_with(em_context **out, const em_config *cfg);
/* Frees the context and every tensor, scope and buffer it still owns. */
EMBER_API void em_context_free(em_context *ctx);

/* Message of the last failure that had no context to record it in (this thread). */
EMBER_API const char *em_last_error(void);

/* The first error recorded since the last clear (EM_OK if none), and its message. */
EMBER_API em_status em_context_status(const em_context *ctx);
EMBER_API const char *em_context_error(const em_context *ctx);
EMBER_API void em_context_clear_error(em_context *ctx);

/* Which backend and device this context runs on, e.g. "cpu", 0, "AMD EPYC ...". */
EMBER_API const char *em_context_backend(const em_context *ctx);
EMBER_API int em_context_device_index(const em_context *ctx);
EMBER_API const char *em_context_device_name(const em_context *ctx);
/* The device.ini used ("(built-in defaults)" or "(in-code configuration)" otherwise). */
EMBER_API const char *em_context_config_source(const em_context *ctx);
/* Non-NULL when the configured backend was not used and the fallback was taken: the
 * reason, also printed once on stderr when it happened. */
EMBER_API const char *em_context_fallback_reason(const em_context *ctx);

/* Random numbers: reseed (resets the counter to 0). Default seed is 0 for every context. */
EMBER_API void em_manual_seed(em_context *ctx, uint64_t seed);

/* Wait for all queued device work, asynchronous copies included. */
EMBER_API em_status em_synchronize(em_context *ctx);
/* Host memory the context's device copies from and to fastest (page-locked), for
 * em_tensor_from_host_async / em_tensor_to_host_async; plain memory when the backend has no
 * pinned memory. Free it with em_pinned_free on the same context (em_context_free releases
 * what is left). */
EMBER_API void *em_pinned_alloc(em_context *ctx, size_t bytes);
EMBER_API void em_pinned_free(em_context *ctx, void *p);

/* Release cached device buffers back to the backend. */
EMBER_API void em_context_empty_cache(em_context *ctx);

/* Memory accounting: bytes of device memory held by live tensors, and by the cache. */
EMBER_API size_t em_context_memory_in_use(const em_context *ctx);
EMBER_API size_t em_context_memory_cached(const em_context *ctx);
/* Highest em_context_memory_in_use since creation or the last reset. */
EMBER_API size_t em_context_memory_peak(const em_context *ctx);
EMBER_API void em_context_reset_peak(em_context *ctx);

/* Scopes: every tensor returned while a scope is open belongs to the innermost scope and
 * is released by em_scope_end, so a loop body needs no free call per temporary. Tensors
 * returned with no scope open belong to the caller (em_tensor_free) — or, if forgotten,
 * to the context, which releases them in em_context_free. Scopes nest. */
EMBER_API void em_scope_begin(em_context *ctx);
EMBER_API void em_scope_end(em_context *ctx);

#ifdef __cplusplus
}
#endif
#endif
