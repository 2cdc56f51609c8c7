/* ember/comm.h — the communication-plugin ABI. A communication plugin is a shared object
 * named ember-comm-<name>.so, found on the same search path as the device plugins
 * (<ember/backend.h>), that exports one symbol, EM_COMM_ENTRY_NAME, of type
 * em_comm_entry_fn. libember never links a communication library (MPI, NCCL): it loads the
 * plugin chosen by `[distributed] backend` in device.ini (or EMBER_DIST) with dlopen, the
 * way it loads devices. See docs/distributed.md.
 *
 * ABI rules, as backend.h's: EM_COMM_ABI_MAJOR changes only when a field changes meaning or
 * position (the core refuses another major); EM_COMM_ABI_MINOR grows when fields are
 * appended; every struct starts with struct_size and a reader treats fields past the
 * writer's struct_size as absent (NULL / 0). The plugin's em_comm.name must equal <name> in
 * its file name.
 *
 * Memory: every collective gets host memory (EM_COMM_MEM_HOST: plain pointers). A plugin
 * may also take the buffers of one device backend directly (em_comm.device_backend, e.g.
 * "cuda": the buffer handles that backend's buffer_alloc returned, plus a byte offset);
 * the core synchronises that device before the call. Tensors of any other device are
 * staged through host memory by the core.
 *
 * Threading: the core serialises every call into one plugin instance (one at a time, from
 * any thread); a plugin initialising MPI asks for MPI_THREAD_SERIALIZED.
 *
 * Timeouts: em_comm_init.timeout_s > 0 asks that no collective wait longer than that. A
 * plugin that cannot cancel a collective (MPI cannot) polls a non-blocking one against the
 * deadline and, past it, prints a message naming the collective, em_comm_args.what and the
 * time waited on stderr and ends the whole job (MPI_Abort): a rank that hangs must not leave
 * the others waiting forever. */
#ifndef EMBER_COMM_H
#define EMBER_COMM_H

#include <ember/common.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EM_COMM_ABI_MAJOR 1
#define EM_COMM_ABI_MINOR 0

#define EM_COMM_ENTRY_NAME "ember_comm_entry"

#if defined(__GNUC__)
#define EM_COMM_EXPORT __attribute__((visibility("default")))
#else
#define EM_COMM_EXPORT
#endif

/* Opaque token naming the core-side owner of a plugin instance (passed back to host calls). */
typedef struct em_comm_host_ctx em_comm_host_ctx;

/* Host services, given to the plugin by the core. All function pointers are non-NULL. */
typedef struct em_comm_host {
    size_t struct_size;
    uint32_t abi_major, abi_minor;      /* the core's comm ABI version */
    /* Record the message of the failing call; returns st, for `return host->error(...)`. */
    em_status (*error)(em_comm_host_ctx *hc, em_status st, const char *fmt, ...) EM_PRINTF(3, 4);
    void (*log)(em_comm_host_ctx *hc, em_log_level level, const char *fmt, ...) EM_PRINTF(3, 4);
    uint32_t flags;                     /* EM_COMM_HOST_DESCRIBE */
} em_comm_host;

/* The entry call only asks for the static description (name, ABI, version, description,
 * device_backend): no instance, no MPI_Init. ember-info lists plugins this way. */
#define EM_COMM_HOST_DESCRIBE 1u

/* What the core asks of a new instance. */
typedef struct em_comm_init {
    size_t struct_size;
    double timeout_s;          /* [distributed] timeout; 0: wait forever */
} em_comm_init;

/* Reduction operators (the values of em_reduce_op in <ember/dist.h>). */
#define EM_COMM_SUM 0
#define EM_COMM_AVG 1          /* float dtypes only: the sum divided by the world size */
#define EM_COMM_MAX 2
#define EM_COMM_MIN 3

/* Where a buffer lives. */
#define EM_COMM_MEM_HOST 0     /* a host pointer (offset added already) */
#define EM_COMM_MEM_DEVICE 1   /* a buffer handle of em_comm.device_backend + byte offset */

/* One collective. count is in elements of dtype (an em_dtype: f32, f64, i64, i32, u8, bool).
 *  all_reduce:     recv[0..count) = op over ranks of send (send == recv: in place);
 *  broadcast:      recv[0..count) of rank `root` to every rank (send unused);
 *  all_gather:     recv[r*count .. (r+1)*count) = send[0..count) of rank r;
 *  reduce_scatter: recv[0..count) = op over ranks of send[rank*count .. (rank+1)*count);
 *  barrier:        no buffers.
 * what names the tensor for messages ("gradient bucket 0 (f32, 1 048 576 bytes)"). */
typedef struct em_comm_args {
    size_t struct_size;
    int32_t dtype, op, root, mem;
    const void *send;
    size_t send_offset;        /* bytes; EM_COMM_MEM_DEVICE only */
    void *recv;
    size_t recv_offset;
    size_t count;
    const char *what;
} em_comm_args;

typedef struct em_comm_ops {
    size_t struct_size;
    /* Instance teardown (MPI_Finalize): called once, at the end of the process group. */
    void (*shutdown)(void *cctx);
    /* Collectives: EM_OK, or an error through host->error (never a partial result the
     * caller could mistake for a good one). */
    em_status (*all_reduce)(void *cctx, const em_comm_args *a);
    em_status (*broadcast)(void *cctx, const em_comm_args *a);
    em_status (*all_gather)(void *cctx, const em_comm_args *a);
    em_status (*reduce_scatter)(void *cctx, const em_comm_args *a);
    em_status (*barrier)(void *cctx, const em_comm_args *a);
    /* End every process of the job now (MPI_Abort), after printing msg: for failures
     * that must not leave other ranks waiting. NULL: the core calls exit. */
    void (*abort_job)(void *cctx, int code, const char *msg);
} em_comm_ops;

/* What the entry fills in. */
typedef struct em_comm {
    size_t struct_size;
    uint32_t abi_major, abi_minor;     /* the ABI the plugin was built against */
    const char *name;                  /* must equal <name> in ember-comm-<name>.so */
    const char *version;               /* the library it wraps: "Open MPI v4.1.4" */
    const char *description;
    const char *device_backend;        /* device backend whose buffers it takes, or NULL */
    /* filled only for an instance (not by a describe call): */
    int32_t rank, world_size;
    int32_t thread_level;              /* e.g. MPI_THREAD_SERIALIZED granted; -1: n/a */
    const char *thread_text;           /* "MPI_THREAD_SERIALIZED" */
    const em_comm_ops *ops;
    void *ctx;                         /* instance pointer passed to every op */
} em_comm;

/* The one exported symbol. It checks host->abi_major, and with EM_COMM_HOST_DESCRIBE in
 * host->flags fills only the description; otherwise it creates the instance (joins the
 * process group) and fills everything. Errors go through host->error. */
typedef em_status (*em_comm_entry_fn)(const em_comm_host *host, em_comm_host_ctx *hc,
                                      const em_comm_init *init, em_comm *out);

/* The symbol's declaration, so a plugin's definition has a prototype. */
EM_COMM_EXPORT em_status ember_comm_entry(const em_comm_host *host, em_comm_host_ctx *hc,
                                          const em_comm_init *init, em_comm *out);

#define EM_COMM_ENTRY(host, hc, init, out)                                                  \
    EM_COMM_EXPORT em_status ember_comm_entry(const em_comm_host *host, em_comm_host_ctx *hc, \
                                              const em_comm_init *init, em_comm *out)

#ifdef __cplusplus
}
#endif
#endif
