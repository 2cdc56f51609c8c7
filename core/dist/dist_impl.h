/* core/dist/dist_impl.h — what the files of core/dist/ share: the loaded communication
 * plugin (comm_load.c), the process group (dist.c) and its internal collective calls used by
 * the data-parallel helper (ddp.c). Never installed. */
#ifndef EMBER_CORE_DIST_IMPL_H
#define EMBER_CORE_DIST_IMPL_H

#include "internal.h"
#include <ember/comm.h>
#include <ember/dist.h>
#include <pthread.h>

/* A loaded comm plugin; its address is the em_comm_host_ctx token. */
typedef struct em__comm {
    void *dl;
    char *path;
    char name[64];
    em_comm be;                /* what the entry returned (zero-extended) */
    em_comm_ops ops;           /* zero-extended copy of its table */
    em_status last_status;     /* last host->error */
    char last_msg[1024];
} em__comm;

/* Where ember-comm-<name>.so is: library= of [distributed] (when lib is set), else the
 * device plugins' search path. EM_ERR_PLUGIN with every directory searched when absent. */
EM_INTERNAL em_status em__comm_find(const em_config *cfg, const em__resolved *r, const char *name,
                                    const char *lib, char *path, size_t pathlen, char *msg,
                                    size_t msglen);
/* Open, check and call the entry of the plugin at path: an instance (init given) or a
 * description only (init NULL). On failure: the stage reached and a message naming the
 * file, the stage and dlerror or the plugin's text; nothing stays loaded. */
EM_INTERNAL em_status em__comm_open(const char *name, const char *path, const em_comm_init *init,
                                    em__comm **out, em_load_stage *stage, char *msg,
                                    size_t msglen);
EM_INTERNAL void em__comm_close(em__comm *c, bool shutdown);
/* "ember-comm-<name>.so" -> name (false for any other file name). */
EM_INTERNAL bool em__comm_file_name(const char *file, char *name, size_t n);

/* [distributed] settings, validated (dist.c reads them; resolve.c checks the section). */
typedef struct em__dist_settings {
    char backend[64];          /* "mpi" by default; EMBER_DIST overrides */
    char backend_from[640];    /* where backend was set, for messages */
    double timeout_s;          /* default 600 */
    const char *library;       /* library= (valid while cfg lives), or NULL */
} em__dist_settings;
EM_INTERNAL em_status em__dist_read_settings(const em_config *cfg, bool apply_env,
                                             em__dist_settings *out);

struct em_dist {
    int refs;
    em__comm *comm;
    int rank, world;
    double timeout_s;
    pthread_mutex_t lock;      /* serialises every call into the plugin */
    em_dist_stats stats;
};

/* Collective kinds (signatures, messages). */
enum { EM__C_ALL_REDUCE = 1, EM__C_BROADCAST, EM__C_ALL_GATHER, EM__C_REDUCE_SCATTER,
       EM__C_BARRIER, EM__C_DDP };

/* The lock held: check that every rank passes the same signature (kind, dtype, shape and
 * param: n values of sig), else EM_ERR_SHAPE recorded in ctx (or globally) listing the
 * ranks' values; describe formats one rank's signature for that message. what names the
 * tensor of the collective that follows (for the timeout message). */
EM_INTERNAL em_status em__dist_check(em_dist *d, em_context *ctx, const char *opname,
                                     const char *what, const int64_t *sig, int n,
                                     void (*describe)(const int64_t *sig, char *buf, size_t len));
/* The lock held: one collective through the plugin, timed into d->stats; a failure
 * recorded in ctx (NULL: globally) prefixed with opname. */
EM_INTERNAL em_status em__dist_call(em_dist *d, em_context *ctx, const char *opname, int kind,
                                    em_comm_args *a);
/* The lock held: an in-place all-reduce or broadcast of t (any device, any layout):
 * direct on host buffers or the plugin's own device buffers, else staged. */
EM_INTERNAL em_status em__dist_inplace(em_dist *d, const char *opname, int kind, em__tensor *t,
                                       int op, int root, const char *what);

/* The sampler half of em_dist_batches_create (data/batches.c): b hands out rank's slice of
 * every global batch. */
EM_INTERNAL void em__batches_shard(em_batches *b, int rank, int world);

#endif
