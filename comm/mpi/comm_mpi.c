/* comm/mpi/comm_mpi.c — ember-comm-mpi.so: the process group and its collectives on Open MPI
 * (any MPI-3 library), through MPI's C API on host memory. libember never links MPI; it
 * loads this plugin with dlopen (<ember/comm.h>).
 *
 * Joining: MPI_Init_thread asking for MPI_THREAD_SERIALIZED (the core serialises its calls)
 * unless the application initialised MPI itself, in which case the plugin neither
 * initialises nor finalises it. A program started without mpirun is a singleton (rank 0 of
 * 1). The plugin works on a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN, so a failing
 * call is a status with MPI's error text, not an abort.
 *
 * Timeouts: MPI cannot cancel a collective, and a rank that hangs (rather than exits) is
 * never noticed by mpirun. With a timeout, every collective is the non-blocking variant
 * (MPI_Iallreduce, ...) polled with MPI_Test against the deadline, yielding the CPU between
 * polls; past it, the plugin prints which collective of which tensor waited how long and
 * ends the job with MPI_Abort. Without one (timeout 0) it waits in MPI_Wait. */
#include <ember/comm.h>
#include <mpi.h>

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct mpi_ctx {
    const em_comm_host *host;
    em_comm_host_ctx *hc;
    MPI_Comm comm;
    int rank, size;
    bool we_initialised;
    double timeout_s;
} mpi_ctx;

static char version_text[MPI_MAX_LIBRARY_VERSION_STRING + 32];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static em_status mpi_fail(mpi_ctx *m, int rc, const char *call, const em_comm_args *a)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", rc);
    return m->host->error(m->hc, EM_ERR_BACKEND, "%s of %s failed on rank %d of %d: %s", call,
                          a && a->what ? a->what : "(no tensor)", m->rank, m->size, text);
}

static bool map_dtype(int32_t dt, MPI_Datatype *out)
{
    switch ((em_dtype)dt) {
    case EM_F32: *out = MPI_FLOAT; return true;
    case EM_F64: *out = MPI_DOUBLE; return true;
    case EM_I64: *out = MPI_INT64_T; return true;
    case EM_I32: *out = MPI_INT32_T; return true;
    case EM_U8: *out = MPI_UINT8_T; return true;
    case EM_BOOL: *out = MPI_C_BOOL; return true;
    default: return false;
    }
}

/* The checks every collective shares; fills dt and op. */
static em_status prepare(mpi_ctx *m, const char *call, const em_comm_args *a, bool reduce,
                         MPI_Datatype *dt, MPI_Op *op)
{
    if (a->mem != EM_COMM_MEM_HOST)
        return m->host->error(m->hc, EM_ERR_UNSUPPORTED, "%s of %s: the mpi plugin takes host "
                              "memory only", call, a->what ? a->what : "(no tensor)");
    if (a->count > INT_MAX)
        return m->host->error(m->hc, EM_ERR_UNSUPPORTED, "%s of %s: %zu elements is more than "
                              "MPI's int counts allow (%d)", call, a->what, a->count, INT_MAX);
    if (!map_dtype(a->dtype, dt))
        return m->host->error(m->hc, EM_ERR_DTYPE, "%s: dtype code %d is not one this plugin "
                              "knows", call, (int)a->dtype);
    if (reduce) {
        bool boolean = a->dtype == EM_BOOL;
        switch (a->op) {
        case EM_COMM_SUM: case EM_COMM_AVG: *op = MPI_SUM; break;
        case EM_COMM_MAX: *op = MPI_MAX; break;
        case EM_COMM_MIN: *op = MPI_MIN; break;
        default:
            return m->host->error(m->hc, EM_ERR_INVALID, "%s: unknown reduce op %d", call,
                                  (int)a->op);
        }
        if (boolean)
            return m->host->error(m->hc, EM_ERR_DTYPE, "%s: bool tensors cannot be reduced",
                                  call);
        if (a->op == EM_COMM_AVG && a->dtype != EM_F32 && a->dtype != EM_F64)
            return m->host->error(m->hc, EM_ERR_DTYPE, "%s: average needs f32 or f64", call);
    }
    return EM_OK;
}

/* Completes req: MPI_Wait without a timeout; else polls until the deadline, then ends the
 * job. Never returns with the request still pending. */
static em_status finish(mpi_ctx *m, MPI_Request *req, const char *call, const em_comm_args *a)
{
    int rc;
    if (m->timeout_s <= 0) {
        rc = MPI_Wait(req, MPI_STATUS_IGNORE);
        return rc == MPI_SUCCESS ? EM_OK : mpi_fail(m, rc, call, a);
    }
    double t0 = now(), deadline = t0 + m->timeout_s;
    long sleep_ns = 10000;
    for (;;) {
        int done = 0;
        rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_fail(m, rc, call, a);
        if (done)
            return EM_OK;
        double t = now();
        if (t >= deadline) {
            char msg[1024];
            snprintf(msg, sizeof msg,
                     "ember: rank %d of %d: %s of %s did not complete within the [distributed] "
                     "timeout of %g s (waited %.1f s): another rank has hung or died without "
                     "ending the job; aborting every rank (MPI_Abort)", m->rank, m->size, call,
                     a->what ? a->what : "(no tensor)", m->timeout_s, t - t0);
            fprintf(stderr, "%s\n", msg);
            fflush(stderr);
            MPI_Abort(MPI_COMM_WORLD, 124);
            exit(124);   /* MPI_Abort does not return; in case it does */
        }
        /* A non-blocking collective advances only inside MPI_Test, round by round, on every
         * rank: poll without sleeping (yielding the core to ranks that share it) for the
         * first 50 ms, then back off to at most one poll per millisecond for a long wait. */
        if (t - t0 < 0.05) {
            sched_yield();
        } else {
            struct timespec ts = {0, sleep_ns};
            nanosleep(&ts, NULL);
            if (sleep_ns < 1000000)
                sleep_ns *= 2;
        }
    }
}

/* Averages in place after a sum. */
static void divide(const em_comm_args *a, void *buf, size_t count, int size)
{
    if (a->op != EM_COMM_AVG)
        return;
    if (a->dtype == EM_F32)
        for (size_t i = 0; i < count; i++)
            ((float *)buf)[i] /= (float)size;
    else
        for (size_t i = 0; i < count; i++)
            ((double *)buf)[i] /= (double)size;
}

static em_status mpi_all_reduce(void *cctx, const em_comm_args *a)
{
    mpi_ctx *m = cctx;
    MPI_Datatype dt;
    MPI_Op op;
    em_status st = prepare(m, "all_reduce", a, true, &dt, &op);
    if (st != EM_OK)
        return st;
    const void *send = a->send == a->recv ? MPI_IN_PLACE : a->send;
    MPI_Request req;
    int rc = MPI_Iallreduce(send, a->recv, (int)a->count, dt, op, m->comm, &req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(m, rc, "all_reduce", a);
    if ((st = finish(m, &req, "all_reduce", a)) == EM_OK)
        divide(a, a->recv, a->count, m->size);
    return st;
}

static em_status mpi_broadcast(void *cctx, const em_comm_args *a)
{
    mpi_ctx *m = cctx;
    MPI_Datatype dt;
    em_status st = prepare(m, "broadcast", a, false, &dt, NULL);
    if (st != EM_OK)
        return st;
    if (a->root < 0 || a->root >= m->size)
        return m->host->error(m->hc, EM_ERR_INVALID, "broadcast: root %d of %d ranks",
                              (int)a->root, m->size);
    MPI_Request req;
    int rc = MPI_Ibcast(a->recv, (int)a->count, dt, a->root, m->comm, &req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(m, rc, "broadcast", a);
    return finish(m, &req, "broadcast", a);
}

static em_status mpi_all_gather(void *cctx, const em_comm_args *a)
{
    mpi_ctx *m = cctx;
    MPI_Datatype dt;
    em_status st = prepare(m, "all_gather", a, false, &dt, NULL);
    if (st != EM_OK)
        return st;
    MPI_Request req;
    int rc = MPI_Iallgather(a->send, (int)a->count, dt, a->recv, (int)a->count, dt, m->comm, &req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(m, rc, "all_gather", a);
    return finish(m, &req, "all_gather", a);
}

static em_status mpi_reduce_scatter(void *cctx, const em_comm_args *a)
{
    mpi_ctx *m = cctx;
    MPI_Datatype dt;
    MPI_Op op;
    em_status st = prepare(m, "reduce_scatter", a, true, &dt, &op);
    if (st != EM_OK)
        return st;
    MPI_Request req;
    int rc = MPI_Ireduce_scatter_block(a->send, a->recv, (int)a->count, dt, op, m->comm, &req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(m, rc, "reduce_scatter", a);
    if ((st = finish(m, &req, "reduce_scatter", a)) == EM_OK)
        divide(a, a->recv, a->count, m->size);
    return st;
}

static em_status mpi_barrier(void *cctx, const em_comm_args *a)
{
    mpi_ctx *m = cctx;
    MPI_Request req;
    int rc = MPI_Ibarrier(m->comm, &req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(m, rc, "barrier", a);
    return finish(m, &req, "barrier", a);
}

static void mpi_abort_job(void *cctx, int code, const char *msg)
{
    (void)cctx;
    if (msg)
        fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    exit(code ? code : 1);
}

static void mpi_shutdown(void *cctx)
{
    mpi_ctx *m = cctx;
    if (!m)
        return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
        MPI_Comm_free(&m->comm);
        if (m->we_initialised)
            MPI_Finalize();
    }
    free(m);
}

static const em_comm_ops mpi_ops = {
    .struct_size = sizeof(em_comm_ops),
    .shutdown = mpi_shutdown,
    .all_reduce = mpi_all_reduce,
    .broadcast = mpi_broadcast,
    .all_gather = mpi_all_gather,
    .reduce_scatter = mpi_reduce_scatter,
    .barrier = mpi_barrier,
    .abort_job = mpi_abort_job,
};

static const char *level_name(int l)
{
    return l == MPI_THREAD_SINGLE ? "MPI_THREAD_SINGLE" : l == MPI_THREAD_FUNNELED
           ? "MPI_THREAD_FUNNELED" : l == MPI_THREAD_SERIALIZED ? "MPI_THREAD_SERIALIZED"
           : l == MPI_THREAD_MULTIPLE ? "MPI_THREAD_MULTIPLE" : "unknown";
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
    out->name = "mpi";
    if (!version_text[0]) {
        int len = 0;
        char v[MPI_MAX_LIBRARY_VERSION_STRING];
        if (MPI_Get_library_version(v, &len) != MPI_SUCCESS)
            snprintf(v, sizeof v, "unknown MPI library");
        v[strcspn(v, "\n,")] = 0;   /* "Open MPI v4.1.4" */
        snprintf(version_text, sizeof version_text, "%s (MPI %d.%d)", v, MPI_VERSION,
                 MPI_SUBVERSION);
    }
    out->version = version_text;
    out->description = "MPI collectives on host memory (device tensors staged by the core); "
                       "rendezvous by mpirun";
    out->device_backend = NULL;
    if (host->flags & EM_COMM_HOST_DESCRIBE)
        return EM_OK;
    if (!init)
        return host->error(hc, EM_ERR_INVALID, "no init parameters");
    mpi_ctx *m = calloc(1, sizeof *m);
    if (!m)
        return host->error(hc, EM_ERR_OOM, "out of memory");
    m->host = host;
    m->hc = hc;
    m->timeout_s = init->timeout_s;
    int inited = 0, fin = 0, provided = MPI_THREAD_SINGLE;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (fin) {
        free(m);
        return host->error(hc, EM_ERR_INVALID, "MPI was finalized in this process already; it "
                           "cannot be initialised again");
    }
    if (!inited) {
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
        if (rc != MPI_SUCCESS) {
            free(m);
            return host->error(hc, EM_ERR_BACKEND, "MPI_Init_thread failed (error %d)", rc);
        }
        m->we_initialised = true;
    } else {
        MPI_Query_thread(&provided);
    }
    if (provided < MPI_THREAD_SERIALIZED) {
        int rc = MPI_Comm_dup(MPI_COMM_WORLD, &m->comm);
        (void)rc;
        mpi_shutdown(m);
        return host->error(hc, EM_ERR_BACKEND, "MPI provides only %s; ember needs "
                           "MPI_THREAD_SERIALIZED (its calls come from any thread, one at a "
                           "time)", level_name(provided));
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &m->comm);
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &m->rank);
    MPI_Comm_size(m->comm, &m->size);
    out->rank = m->rank;
    out->world_size = m->size;
    out->thread_level = provided;
    out->thread_text = level_name(provided);
    out->ops = &mpi_ops;
    out->ctx = m;
    return EM_OK;
}
