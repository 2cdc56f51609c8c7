/* ember/dist.h — processes working together: a process group over a communication plugin
 * (Open MPI by default, <ember/comm.h>), its collectives on tensors, and data-parallel
 * training on top (parameters broadcast from rank 0, gradients summed in buckets, a
 * sampler giving each rank its shard of every batch). Run the same program on many
 * processes (`mpirun -np 4 ./train`); docs/distributed.md has the whole story.
 *
 * Lifetime: the group belongs to the process, not to a context. em_dist_init joins it once
 * (MPI cannot be initialised again after it was finalised); later calls return the same
 * group and count references; the last em_dist_finalize leaves it, and after that
 * em_dist_init fails for the rest of the process. Any number of contexts and threads may
 * use it: the core serialises the calls (MPI is asked for MPI_THREAD_SERIALIZED), so two
 * threads calling collectives concurrently must still issue them in the same order on every
 * rank, as with MPI itself.
 *
 * Errors: every call returns a status. The message is in the tensor's context
 * (em_context_error) for calls on tensors, else in em_last_error(). A failure that would
 * leave other ranks waiting forever (a collective past [distributed] timeout) ends the job
 * instead (docs/distributed.md, "Failures"). */
#ifndef EMBER_DIST_H
#define EMBER_DIST_H

#include <ember/tensor.h>
#include <ember/data.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct em_dist em_dist;

typedef enum em_reduce_op {
    EM_REDUCE_SUM = 0,
    EM_REDUCE_AVG = 1,   /* the sum divided by the world size; float dtypes only */
    EM_REDUCE_MAX = 2,
    EM_REDUCE_MIN = 3
} em_reduce_op;

typedef struct em_dist_options {
    size_t struct_size;     /* sizeof(em_dist_options); 0 also means this header's size */
    const char *config;     /* device.ini to read [distributed] from (NULL: the usual search) */
    const char *backend;    /* comm plugin name, overriding device.ini and EMBER_DIST */
    double timeout_s;       /* > 0 overrides [distributed] timeout; 0: from the config */
} em_dist_options;

/* Joins the process group: loads ember-comm-<backend>.so (backend from options, else
 * EMBER_DIST, else [distributed] backend, else "mpi") and initialises it. A program
 * started without mpirun is a group of one. EM_ERR_PLUGIN (with the file, the stage and
 * dlerror text) when the plugin is missing or broken; EM_ERR_CONFIG for a bad
 * [distributed] section. */
EMBER_API em_status em_dist_init(em_dist **out, const em_dist_options *opt);
/* Drops a reference; the last one leaves the group (MPI_Finalize). NULL is ignored. */
EMBER_API em_status em_dist_finalize(em_dist *d);
EMBER_API int em_dist_rank(const em_dist *d);          /* -1 for NULL */
EMBER_API int em_dist_world_size(const em_dist *d);    /* -1 for NULL */
EMBER_API const char *em_dist_backend(const em_dist *d);          /* "mpi" */
EMBER_API const char *em_dist_backend_version(const em_dist *d);  /* "Open MPI v4.1.4, ..." */
EMBER_API const char *em_dist_thread_level(const em_dist *d);     /* "MPI_THREAD_SERIALIZED" */
EMBER_API double em_dist_timeout(const em_dist *d);               /* seconds, 0: none */

/* Collectives on tensors of any device (host-memory devices in place; others staged through
 * host memory, or handed to the plugin directly where it takes that device's buffers). The
 * tensors must have the same dtype and shape on every rank: a difference is detected (the
 * ranks exchange a signature first) and reported on every rank as EM_ERR_SHAPE listing the
 * ranks' shapes, before any data moves. They write without autograd (like torch.distributed)
 * but bump the tensor's version. */
EMBER_API em_status em_dist_all_reduce_(em_dist *d, em_tensor *t, em_reduce_op op);
EMBER_API em_status em_dist_broadcast_(em_dist *d, em_tensor *t, int root);
/* out: a new tensor (world * shape[0], shape[1:]...) of every rank's t, in rank order (a
 * 0-dim t gives shape (world)). */
EMBER_API em_status em_dist_all_gather(em_dist *d, em_tensor *t, em_tensor **out);
/* t's first dim must be a multiple of the world size; out: rank r's slice (shape[0]/world,
 * ...) of the reduction over ranks. */
EMBER_API em_status em_dist_reduce_scatter(em_dist *d, em_tensor *t, em_reduce_op op,
                                           em_tensor **out);
EMBER_API em_status em_dist_barrier(em_dist *d);

/* Time and traffic of the collectives since the group began (for measurements). */
typedef struct em_dist_stats {
    size_t struct_size;
    uint64_t collectives;      /* collectives run (signature checks included) */
    uint64_t bytes;            /* payload bytes handed to them (per rank) */
    double seconds;            /* wall time inside them, staging included */
} em_dist_stats;
EMBER_API em_status em_dist_get_stats(const em_dist *d, em_dist_stats *out);

/* ---- data-parallel training ---- */
typedef struct em_ddp em_ddp;
typedef struct em_ddp_options {
    size_t struct_size;        /* sizeof(em_ddp_options); 0 also means this header's size */
    size_t bucket_bytes;       /* gradients packed per collective (default 25 MiB, as PyTorch) */
} em_ddp_options;

/* Broadcasts rank 0's parameters to every rank (after checking that every rank has the
 * same number of parameters with the same shapes and dtypes) and prepares the gradient
 * buckets. The helper holds its own handles to the parameters. NULL with the error recorded
 * in the parameters' context. */
EMBER_API em_ddp *em_ddp_create(em_dist *d, em_tensor *const *params, int n,
                                const em_ddp_options *opt);
/* After backward of a loss that is a sum over this rank's `count` samples: every gradient
 * becomes the global mean, (sum over ranks of the gradients) / (sum over ranks of count),
 * with the counts all-reduced in the same bucket as the gradients; *global_count (may be
 * NULL) receives the total. A parameter without a gradient counts as zeros and gets one. */
EMBER_API em_status em_ddp_sync_mean(em_ddp *p, int64_t count, int64_t *global_count);
/* After backward of a loss that is a sum over all samples (the seed's network): every
 * gradient becomes the sum over ranks. */
EMBER_API em_status em_ddp_sync_sum(em_ddp *p);
/* Buckets and collectives per sync, and the collectives' time so far. */
typedef struct em_ddp_stats {
    size_t struct_size;
    int buckets;               /* collectives per sync (plus one signature check) */
    uint64_t bucket_bytes;     /* payload bytes per sync, every bucket */
    uint64_t syncs;
    double seconds;            /* wall time in the syncs (staging, packing included) */
} em_ddp_stats;
EMBER_API em_status em_ddp_get_stats(const em_ddp *p, em_ddp_stats *out);
EMBER_API void em_ddp_free(em_ddp *p);

/* Mini-batches of a global batch size split over the ranks (a DistributedSampler that
 * keeps each global batch together): every epoch's shuffled order is drawn from (seed,
 * epoch), the same on every rank, cut into global batches of global_batch samples, and
 * rank r gets the r-th of world contiguous slices of each (sizes differing by at most one;
 * 64 + 64 of 128, 43 + 43 + 42 on three ranks). Every rank gets the same number of
 * batches, possibly empty ones at the end of an uneven last batch, so collectives stay in
 * step. Iterate with em_batches_epoch / em_batches_next / em_batches_count. */
EMBER_API em_batches *em_dist_batches_create(em_dist *d, em_tensor *const *tensors, int n,
                                             int64_t global_batch, bool shuffle, uint64_t seed,
                                             bool drop_last);

#ifdef __cplusplus
}
#endif
#endif
