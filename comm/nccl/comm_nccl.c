/* comm/nccl/comm_nccl.c — ember-comm-nccl.so: collectives of cuda tensors with NCCL, on the
 * device buffers of the cuda backend directly (em_comm.device_backend = "cuda"); host
 * buffers (the core's signatures, tensors of other devices) go through a device scratch
 * buffer. Built when configure finds nccl.h and libnccl.so in the CUDA toolkit; it links the
 * CUDA runtime statically, as the cuda backend does, so it loads on machines without a GPU
 * and reports "no usable CUDA device" there.
 *
 * Ranks: EMBER_RANK / EMBER_WORLD_SIZE, else what mpirun sets (OMPI_COMM_WORLD_RANK /
 * _SIZE, PMI_RANK / PMI_SIZE), else a job of one. Each process uses the GPU of its local
 * rank (OMPI_COMM_WORLD_LOCAL_RANK, else the rank) modulo the visible devices.
 *
 * Rendezvous (the ncclUniqueId from rank 0 to every rank): through a file the environment
 * names, EMBER_NCCL_ID_FILE, on a file system every rank sees: rank 0 writes it (atomically,
 * by rename), the others wait for it within the timeout; rank 0 removes it at shutdown. The
 * path must be new for each job (e.g. containing the scheduler's job id). A job of one needs
 * no file. The plugin does not depend on MPI, so it can run under any launcher.
 *
 * Timeouts: every NCCL call is queued on the plugin's stream and polled with
 * cudaStreamQuery against [distributed] timeout; past it the plugin prints which collective
 * of which tensor waited how long, aborts the communicator (ncclCommAbort) and exits with
 * status 124, which makes mpirun end the job. */
#include <ember/comm.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct nccl_ctx {
    const em_comm_host *host;
    em_comm_host_ctx *hc;
    ncclComm_t comm;
    cudaStream_t stream;
    int rank, size, device;
    double timeout_s;
    void *scratch;             /* device memory for host-buffer calls */
    size_t scratch_bytes;
    char id_file[4096];        /* rank 0 removes it at shutdown */
} nccl_ctx;

static char version_text[64];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int env_int(const char *const *names, int dflt)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && *v)
            return atoi(v);
    }
    return dflt;
}

static bool map_dtype(int32_t dt, ncclDataType_t *out, size_t *bytes)
{
    switch ((em_dtype)dt) {
    case EM_F32: *out = ncclFloat32; *bytes = 4; return true;
    case EM_F64: *out = ncclFloat64; *bytes = 8; return true;
    case EM_I64: *out = ncclInt64; *bytes = 8; return true;
    case EM_I32: *out = ncclInt32; *bytes = 4; return true;
    case EM_U8: case EM_BOOL: *out = ncclUint8; *bytes = 1; return true;
    default: return false;
    }
}

static em_status map_op(nccl_ctx *m, const em_comm_args *a, ncclRedOp_t *op)
{
    switch (a->op) {
    case EM_COMM_SUM: *op = ncclSum; break;
    case EM_COMM_AVG: *op = ncclAvg; break;
    case EM_COMM_MAX: *op = ncclMax; break;
    case EM_COMM_MIN: *op = ncclMin; break;
    default:
        return m->host->error(m->hc, EM_ERR_INVALID, "unknown reduce op %d", (int)a->op);
    }
    if (a->dtype == EM_BOOL)
        return m->host->error(m->hc, EM_ERR_DTYPE, "bool tensors cannot be reduced");
    return EM_OK;
}

static em_status nccl_fail(nccl_ctx *m, ncclResult_t r, const char *call, const em_comm_args *a)
{
    return m->host->error(m->hc, EM_ERR_BACKEND, "%s of %s failed on rank %d of %d: %s (%s)",
                          call, a && a->what ? a->what : "(no tensor)", m->rank, m->size,
                          ncclGetErrorString(r), m->comm ? ncclGetLastError(m->comm) : "");
}

/* Waits for the stream within the timeout; past it, ends this process (and so the job). */
static em_status finish(nccl_ctx *m, const char *call, const em_comm_args *a)
{
    double t0 = now();
    for (;;) {
        cudaError_t e = cudaStreamQuery(m->stream);
        if (e == cudaSuccess)
            return EM_OK;
        if (e != cudaErrorNotReady)
            return m->host->error(m->hc, EM_ERR_BACKEND, "%s of %s: %s", call,
                                  a->what ? a->what : "(no tensor)", cudaGetErrorString(e));
        ncclResult_t async = ncclSuccess;
        ncclCommGetAsyncError(m->comm, &async);
        if (async != ncclSuccess && async != ncclInProgress)
            return nccl_fail(m, async, call, a);
        double t = now();
        if (m->timeout_s > 0 && t - t0 >= m->timeout_s) {
            fprintf(stderr, "ember: rank %d of %d: %s of %s did not complete within the "
                    "[distributed] timeout of %g s (waited %.1f s): another rank has hung or "
                    "died; aborting the communicator and exiting\n", m->rank, m->size, call,
                    a->what ? a->what : "(no tensor)", m->timeout_s, t - t0);
            fflush(stderr);
            ncclCommAbort(m->comm);
            _exit(124);
        }
        sched_yield();
    }
}

/* The device pointers of a call: its own buffers, or the scratch buffer with the host data
 * copied in (send_bytes) and room for recv_bytes. */
static em_status buffers(nccl_ctx *m, const em_comm_args *a, size_t send_bytes,
                         size_t recv_bytes, const void **send, void **recv)
{
    if (a->mem == EM_COMM_MEM_DEVICE) {
        *send = a->send ? (const char *)a->send + a->send_offset : NULL;
        *recv = a->recv ? (char *)a->recv + a->recv_offset : NULL;
        return EM_OK;
    }
    size_t need = send_bytes + recv_bytes;
    if (need > m->scratch_bytes) {
        if (m->scratch)
            cudaFree(m->scratch);
        m->scratch = NULL;
        m->scratch_bytes = 0;
        cudaError_t e = cudaMalloc(&m->scratch, need);
        if (e != cudaSuccess)
            return m->host->error(m->hc, EM_ERR_OOM, "staging %zu bytes on the GPU: %s", need,
                                  cudaGetErrorString(e));
        m->scratch_bytes = need;
    }
    char *s = m->scratch;
    if (send_bytes && cudaMemcpyAsync(s, a->send ? a->send : a->recv, send_bytes,
                                      cudaMemcpyHostToDevice, m->stream) != cudaSuccess)
        return m->host->error(m->hc, EM_ERR_BACKEND, "copying to the GPU failed");
    *send = s;
    *recv = a->send == a->recv || !a->send ? s : s + send_bytes;
    return EM_OK;
}

static em_status copy_back(nccl_ctx *m, const em_comm_args *a, const void *recv, size_t bytes,
                           const char *call)
{
    if (a->mem == EM_COMM_MEM_DEVICE || !bytes)
        return finish(m, call, a);
    if (cudaMemcpyAsync(a->recv, recv, bytes, cudaMemcpyDeviceToHost, m->stream) != cudaSuccess)
        return m->host->error(m->hc, EM_ERR_BACKEND, "copying from the GPU failed");
    return finish(m, call, a);
}

static em_status nccl_all_reduce(void *cctx, const em_comm_args *a)
{
    nccl_ctx *m = cctx;
    ncclDataType_t dt;
    ncclRedOp_t op;
    size_t es;
    if (!map_dtype(a->dtype, &dt, &es))
        return m->host->error(m->hc, EM_ERR_DTYPE, "all_reduce: unknown dtype %d", (int)a->dtype);
    em_status st = map_op(m, a, &op);
    const void *s;
    void *r;
    size_t bytes = a->count * es;
    if (st == EM_OK)
        st = buffers(m, a, bytes, a->send == a->recv ? 0 : bytes, &s, &r);
    if (st != EM_OK)
        return st;
    ncclResult_t nr = ncclAllReduce(s, r, a->count, dt, op, m->comm, m->stream);
    return nr != ncclSuccess ? nccl_fail(m, nr, "all_reduce", a)
                             : copy_back(m, a, r, bytes, "all_reduce");
}

static em_status nccl_broadcast(void *cctx, const em_comm_args *a)
{
    nccl_ctx *m = cctx;
    ncclDataType_t dt;
    size_t es;
    if (!map_dtype(a->dtype, &dt, &es))
        return m->host->error(m->hc, EM_ERR_DTYPE, "broadcast: unknown dtype %d", (int)a->dtype);
    const void *s;
    void *r;
    size_t bytes = a->count * es;
    em_comm_args in_place = *a;
    in_place.send = a->recv;
    em_status st = buffers(m, &in_place, bytes, 0, &s, &r);
    if (st != EM_OK)
        return st;
    ncclResult_t nr = ncclBroadcast(s, r, a->count, dt, a->root, m->comm, m->stream);
    return nr != ncclSuccess ? nccl_fail(m, nr, "broadcast", a)
                             : copy_back(m, a, r, bytes, "broadcast");
}

static em_status nccl_all_gather(void *cctx, const em_comm_args *a)
{
    nccl_ctx *m = cctx;
    ncclDataType_t dt;
    size_t es;
    if (!map_dtype(a->dtype, &dt, &es))
        return m->host->error(m->hc, EM_ERR_DTYPE, "all_gather: unknown dtype %d", (int)a->dtype);
    const void *s;
    void *r;
    size_t bytes = a->count * es;
    em_status st = buffers(m, a, bytes, bytes * (size_t)m->size, &s, &r);
    if (st != EM_OK)
        return st;
    ncclResult_t nr = ncclAllGather(s, r, a->count, dt, m->comm, m->stream);
    return nr != ncclSuccess ? nccl_fail(m, nr, "all_gather", a)
                             : copy_back(m, a, r, bytes * (size_t)m->size, "all_gather");
}

static em_status nccl_reduce_scatter(void *cctx, const em_comm_args *a)
{
    nccl_ctx *m = cctx;
    ncclDataType_t dt;
    ncclRedOp_t op;
    size_t es;
    if (!map_dtype(a->dtype, &dt, &es))
        return m->host->error(m->hc, EM_ERR_DTYPE, "reduce_scatter: unknown dtype %d",
                              (int)a->dtype);
    em_status st = map_op(m, a, &op);
    const void *s;
    void *r;
    size_t bytes = a->count * es;
    if (st == EM_OK)
        st = buffers(m, a, bytes * (size_t)m->size, bytes, &s, &r);
    if (st != EM_OK)
        return st;
    ncclResult_t nr = ncclReduceScatter(s, r, a->count, dt, op, m->comm, m->stream);
    return nr != ncclSuccess ? nccl_fail(m, nr, "reduce_scatter", a)
                             : copy_back(m, a, r, bytes, "reduce_scatter");
}

static em_status nccl_barrier(void *cctx, const em_comm_args *a)
{
    nccl_ctx *m = cctx;
    int32_t one = 1;
    em_comm_args b = {.struct_size = sizeof b, .dtype = EM_I32, .op = EM_COMM_SUM,
                      .mem = EM_COMM_MEM_HOST, .send = &one, .recv = &one, .count = 1,
                      .what = a && a->what ? a->what : "barrier"};
    return nccl_all_reduce(m, &b);
}

static void nccl_shutdown(void *cctx)
{
    nccl_ctx *m = cctx;
    if (!m)
        return;
    if (m->comm)
        ncclCommDestroy(m->comm);
    if (m->scratch)
        cudaFree(m->scratch);
    if (m->stream)
        cudaStreamDestroy(m->stream);
    if (m->rank == 0 && m->id_file[0])
        unlink(m->id_file);
    free(m);
}

static void nccl_abort_job(void *cctx, int code, const char *msg)
{
    nccl_ctx *m = cctx;
    if (msg)
        fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    if (m && m->comm)
        ncclCommAbort(m->comm);
    _exit(code ? code : 1);
}

static const em_comm_ops nccl_ops = {
    .struct_size = sizeof(em_comm_ops),
    .shutdown = nccl_shutdown,
    .all_reduce = nccl_all_reduce,
    .broadcast = nccl_broadcast,
    .all_gather = nccl_all_gather,
    .reduce_scatter = nccl_reduce_scatter,
    .barrier = nccl_barrier,
    .abort_job = nccl_abort_job,
};

/* The unique id: made by rank 0, carried to the others by EMBER_NCCL_ID_FILE. */
static em_status rendezvous(nccl_ctx *m, ncclUniqueId *id)
{
    if (m->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(id);
        if (r != ncclSuccess)
            return nccl_fail(m, r, "ncclGetUniqueId", NULL);
    }
    if (m->size == 1)
        return EM_OK;
    const char *path = getenv("EMBER_NCCL_ID_FILE");
    if (!path || !*path)
        return m->host->error(m->hc, EM_ERR_CONFIG, "a job of %d ranks needs EMBER_NCCL_ID_FILE: "
                              "a new file path on a file system every rank sees, through which "
                              "rank 0 hands out NCCL's unique id", m->size);
    snprintf(m->id_file, sizeof m->id_file, "%s", path);
    if (m->rank == 0) {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        bool ok = f && fwrite(id, sizeof *id, 1, f) == 1;
        if (f && fclose(f) != 0)
            ok = false;
        if (!ok || rename(tmp, path) != 0) {
            int err = errno;
            unlink(tmp);
            return m->host->error(m->hc, EM_ERR_IO, "writing EMBER_NCCL_ID_FILE=%s: %s", path,
                                  strerror(err));
        }
        return EM_OK;
    }
    double t0 = now(), limit = m->timeout_s > 0 ? m->timeout_s : 1e30;
    for (;;) {
        FILE *f = fopen(path, "rb");
        if (f) {
            size_t got = fread(id, sizeof *id, 1, f);
            fclose(f);
            if (got == 1)
                return EM_OK;
        }
        if (now() - t0 > limit)
            return m->host->error(m->hc, EM_ERR_IO, "rank %d: EMBER_NCCL_ID_FILE=%s did not "
                                  "appear within %g s (rank 0 writes it)", m->rank, path,
                                  m->timeout_s);
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
}

EM_COMM_ENTRY(host, hc, init, out)
{
    if (!host || !out)
        return EM_ERR_INVALID;
    out->abi_major = EM_COMM_ABI_MAJOR;
    out->abi_minor = EM_COMM_ABI_MINOR;
    if (host->abi_major != EM_COMM_ABI_MAJOR)
        return host->error(hc, EM_ERR_PLUGIN, "built for comm ABI %d, the core has %u",
                           EM_COMM_ABI_MAJOR, host->abi_major);
    out->name = "nccl";
    if (!version_text[0]) {
        int v = 0;
        if (ncclGetVersion(&v) == ncclSuccess)
            snprintf(version_text, sizeof version_text, "NCCL %d.%d.%d", v / 10000,
                     v / 100 % 100, v % 100);
        else
            snprintf(version_text, sizeof version_text, "NCCL (version unknown)");
    }
    out->version = version_text;
    out->description = "NCCL collectives on cuda tensors in place (host tensors staged on the "
                       "GPU); rendezvous through EMBER_NCCL_ID_FILE";
    out->device_backend = "cuda";
    if (host->flags & EM_COMM_HOST_DESCRIBE)
        return EM_OK;
    if (!init)
        return host->error(hc, EM_ERR_INVALID, "no init parameters");
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count < 1)
        return host->error(hc, EM_ERR_NO_DEVICE, "no usable CUDA device: %s",
                           e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    nccl_ctx *m = calloc(1, sizeof *m);
    if (!m)
        return host->error(hc, EM_ERR_OOM, "out of memory");
    m->host = host;
    m->hc = hc;
    m->timeout_s = init->timeout_s;
    m->rank = env_int((const char *const[]){"EMBER_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK",
                                            NULL}, 0);
    m->size = env_int((const char *const[]){"EMBER_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE",
                                            "PMI_SIZE", NULL}, 1);
    if (m->size < 1 || m->rank < 0 || m->rank >= m->size) {
        int r = m->rank, s = m->size;
        free(m);
        return host->error(hc, EM_ERR_CONFIG, "rank %d of %d from the environment is not "
                           "a rank of the job", r, s);
    }
    int local = env_int((const char *const[]){"OMPI_COMM_WORLD_LOCAL_RANK", "EMBER_LOCAL_RANK",
                                              NULL}, m->rank);
    m->device = local % count;
    em_status st = EM_OK;
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if ((e = cudaSetDevice(m->device)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking)) != cudaSuccess)
        st = host->error(hc, EM_ERR_BACKEND, "GPU %d: %s", m->device, cudaGetErrorString(e));
    if (st == EM_OK)
        st = rendezvous(m, &id);
    if (st == EM_OK) {
        ncclResult_t r = ncclCommInitRank(&m->comm, m->size, id, m->rank);
        if (r != ncclSuccess) {
            m->comm = NULL;
            st = nccl_fail(m, r, "ncclCommInitRank", NULL);
        }
    }
    if (st != EM_OK) {
        nccl_shutdown(m);
        return st;
    }
    out->rank = m->rank;
    out->world_size = m->size;
    out->thread_level = -1;
    out->thread_text = "calls serialised by the core";
    out->ops = &nccl_ops;
    out->ctx = m;
    return EM_OK;
}
