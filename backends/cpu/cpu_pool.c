/* backends/cpu/cpu_pool.c — the cpu backend's per-instance thread pool: workers started on
 * first use, jobs of tasks handed out from one contiguous run per thread through atomic
 * counters (with stealing), adaptive spinning between jobs, and the caller excusing
 * workers that have not joined. Which thread runs a task never changes the arithmetic, so
 * results do not depend on the thread count. */
#include "cpu.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* The tasks of a job are cut into one contiguous run per thread, and thread w takes the
 * tasks of run w first, through that run's atomic counter; then it helps with the others'
 * runs, so uneven tasks (or a descheduled thread) still balance themselves. Why runs: the
 * elementwise kernels cut a tensor into chunks in order, so with runs the same thread
 * touches the same part of a tensor from one kernel to the next (the part in its core's
 * cache: from one shared counter, the chunks of two kernels in a row landed on either core
 * by chance, and a 400 KB in-place update ran slower on two threads than on one). Which
 * thread runs a task never changes the arithmetic, so results do not depend on it. */
static inline int64_t run_end(const cpu_pool *pool, int g)
{
    return (int64_t)(g + 1) * pool->ntasks / pool->ngroups;
}

static void run_tasks(cpu_pool *pool, int worker)
{
    const int ng = pool->ngroups;
    const int first = worker % ng;
    for (int k = 0; k < ng; k++) {
        const int g = first + k < ng ? first + k : first + k - ng;
        const int64_t end = run_end(pool, g);
        for (;;) {
            int64_t t = atomic_fetch_add_explicit(&pool->next[g].v, 1, memory_order_relaxed);
            if (t >= end)
                break;
            pool->fn(pool->arg, t, worker);
        }
    }
}

/* Spin before sleeping: kernels often come back to back (gemm forks twice per k block, a
 * training step runs several big kernels a few tens of microseconds apart), and a
 * condition-variable wake-up costs tens of microseconds. Bounded in time rather than
 * iterations, and adaptive: on a quiet machine workers spin long enough to bridge the
 * small ops between a step's big kernels (POOL_SPIN_NS_DEFAULT); once a worker sees that it
 * was preempted (involuntary context switches: someone else wants the core, as on a
 * shared CI runner or during a build) it spins only briefly (POOL_SPIN_BUSY_NS) for
 * POOL_CONTENDED_NS, since a spinning thread would then steal the core from the caller or
 * from other work. Workers that are asleep when a job starts are not waited for (the caller
 * excuses them and runs their share), so sleeping costs parallelism, never latency.
 * EMBER_CPU_SPIN_US fixes the spin instead (benchmarks, tests). */
#define POOL_SPIN_BUSY_NS 50000
#define POOL_CONTENDED_NS 50000000
#define POOL_CHECK_NS 10000000
#define POOL_PREEMPT_RATE 200.0

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whether the calling thread is being preempted often: at least POOL_PREEMPT_RATE
 * involuntary context switches a second since the last check (made at most every
 * POOL_CHECK_NS; *last and *checked hold its count and time). A quiet machine preempts a
 * thread a few dozen times a second at most (kernel work); a busy one hundreds. */
static int preempted_since(long *last, int64_t *checked, int64_t t)
{
    const int64_t dt = t - *checked;
    if (dt < POOL_CHECK_NS)
        return 0;
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return 0;
    const long d = ru.ru_nivcsw - *last;
    const int r = *checked != 0 && d >= 2 && (double)d * 1e9 >= POOL_PREEMPT_RATE * (double)dt;
    *checked = t;
    *last = ru.ru_nivcsw;
    return r;
}

/* How long worker w may spin now (see POOL_SPIN_NS_DEFAULT): the short budget while the
 * machine counts as contended, because the caller or this worker was preempted lately. */
static int64_t worker_spin_ns(cpu_pool *pool, cpu_worker *w)
{
    if (!pool->spin_adaptive || pool->spin_ns <= 0)
        return pool->spin_ns;
    int64_t t = mono_ns();
    if (preempted_since(&w->nivcsw, &w->checked_ns, t))
        w->contended_until_ns = t + POOL_CONTENDED_NS;
    if (t < w->contended_until_ns ||
        t < atomic_load_explicit(&pool->contended_until_ns, memory_order_relaxed))
        return pool->spin_ns < POOL_SPIN_BUSY_NS ? pool->spin_ns : POOL_SPIN_BUSY_NS;
    return pool->spin_ns;
}

/* For spin loops: whether spin_ns has passed since the first check, reading the clock
 * only every 32 iterations (i counts them from 1; *deadline starts at 0). */
static inline int spin_expired(unsigned i, int64_t *deadline, int64_t spin_ns)
{
    if ((i & 31) != 0)
        return 0;
    const int64_t t = mono_ns();
    if (!*deadline) {
        *deadline = t + spin_ns;
        return 0;
    }
    return t >= *deadline;
}

/* Busy-wait while *word == seen (and no stop), for at most spin_ns. Returns 1 when the
 * wait ended because the word changed or stop was set. */
static int spin_while_eq(const cpu_pool *pool, const atomic_uint_fast64_t *word, uint64_t seen,
                         int64_t spin_ns)
{
    if (spin_ns <= 0)
        return 0;
    int64_t deadline = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) != seen ||
            atomic_load_explicit(&pool->stop, memory_order_relaxed))
            return 1;
        cpu_relax();
        if (spin_expired(i, &deadline, spin_ns))
            return 0;
    }
}

/* The caller, waiting for joined workers to finish their last task: at most the short
 * budget (a task is short; a worker that takes longer was likely preempted). */
static int spin_busy(const cpu_pool *pool)
{
    const int64_t spin_ns = pool->spin_ns < POOL_SPIN_BUSY_NS ? pool->spin_ns : POOL_SPIN_BUSY_NS;
    if (spin_ns <= 0)
        return atomic_load_explicit(&pool->busy, memory_order_acquire) == 0;
    int64_t deadline = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&pool->busy, memory_order_acquire) == 0)
            return 1;
        cpu_relax();
        if (spin_expired(i, &deadline, spin_ns))
            return 0;
    }
}

static void *worker_main(void *p)
{
    cpu_worker *w = p;
    cpu_pool *pool = &w->inst->pool;
    uint64_t seen = 0;
    for (;;) {
        if (!spin_while_eq(pool, &pool->gen, seen, worker_spin_ns(pool, w))) {
            /* sleepers is raised before gen is checked under mu, and the caller bumps gen
             * before it reads sleepers (both seq_cst): either we see the new gen here or
             * the caller sees us and broadcasts under mu */
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->gen) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop))
            break;
        uint64_t g = atomic_load(&pool->gen);
        /* claimed only grows: if the caller already excused us from g (or a later job,
         * while we were descheduled), we sit this one out */
        uint64_t c = atomic_load(&w->claimed);
        int joined = 0;
        while (c < g && !(joined = atomic_compare_exchange_weak(&w->claimed, &c, g)))
            ;
        seen = joined || c < g ? g : c;
        if (!joined)
            continue;
        run_tasks(pool, w->id);
        if (atomic_fetch_sub(&pool->busy, 1) == 1 && atomic_load(&pool->caller_waiting)) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
    return NULL;
}

/* fork(): only the forking thread exists in the child, so a pool started before the fork
 * has no workers there, and its mutex and condition variables may have been copied in any
 * state (held by a worker, waited on). As OpenBLAS does, the child drops such a pool
 * without touching them (no join, no destroy) and starts a new one on its next parallel
 * job. Each pool records the fork generation it was started in; the child handler bumps
 * the generation (registered once; glibc unregisters it if the plugin is unloaded). */
static atomic_uint fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static void atfork_register(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

/* Whether the running pool was started in a parent process: then forget it (its threads
 * are the parent's; the memory holding it was copied and is ours to free). */
static void pool_drop_if_forked(cpu_inst *inst)
{
    cpu_pool *pool = &inst->pool;
    if (inst->pool_state != 1 ||
        pool->fork_gen == atomic_load_explicit(&fork_generation, memory_order_relaxed))
        return;
    inst->host->free(inst->hc, pool->threads);
    inst->host->free(inst->hc, pool->workers);
    memset(pool, 0, sizeof *pool);
    inst->pool_state = 0;
}

/* Started on first use rather than at entry: ember-info and small programs that never
 * run a big kernel should not pay for idle threads. */
static void pool_start(cpu_inst *inst)
{
    cpu_pool *pool = &inst->pool;
    pthread_once(&atfork_once, atfork_register);
    pool->fork_gen = atomic_load_explicit(&fork_generation, memory_order_relaxed);
    const em_host *h = inst->host;
    int want = inst->nthreads - 1;
    if (want <= 0) {
        inst->pool_state = -1;
        return;
    }
    pool->threads = h->alloc(inst->hc, sizeof(pthread_t) * (size_t)want);
    pool->workers = h->alloc(inst->hc, sizeof(cpu_worker) * (size_t)want);
    if (!pool->threads || !pool->workers) {
        /* out of memory now is no reason to stay single-threaded: retry next time */
        h->free(inst->hc, pool->threads);
        h->free(inst->hc, pool->workers);
        memset(pool, 0, sizeof *pool);
        return;
    }
    int sync = 0;
    if (pthread_mutex_init(&pool->mu, NULL) == 0) {
        sync = 1;
        if (pthread_cond_init(&pool->wake, NULL) == 0) {
            sync = 2;
            if (pthread_cond_init(&pool->done, NULL) == 0)
                sync = 3;
        }
    }
    /* more threads than cores: a spinning thread would only steal the core of a busy one */
    pool->spin_ns = inst->nthreads <= cpu_online_cores() ? inst->spin_ns : 0;
    pool->spin_adaptive = inst->spin_adaptive;
    if (sync == 3) {
        /* workers block all signals: the application's handlers keep running on its own
         * threads, never on ours */
        sigset_t all, old;
        sigfillset(&all);
        int masked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
        for (int i = 0; i < want; i++) {
            pool->workers[i].inst = inst;
            pool->workers[i].id = i + 1;
            pool->workers[i].nivcsw = 0;
            pool->workers[i].checked_ns = 0;
            pool->workers[i].contended_until_ns = 0;
            atomic_init(&pool->workers[i].claimed, 0);
            if (pthread_create(&pool->threads[i], NULL, worker_main, &pool->workers[i]) != 0)
                break;
            pool->n_started++;
        }
        if (masked)
            pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (pool->n_started == 0) {
        if (sync >= 3)
            pthread_cond_destroy(&pool->done);
        if (sync >= 2)
            pthread_cond_destroy(&pool->wake);
        if (sync >= 1)
            pthread_mutex_destroy(&pool->mu);
        h->free(inst->hc, pool->threads);
        h->free(inst->hc, pool->workers);
        memset(pool, 0, sizeof *pool);
        inst->pool_state = -1;
        h->log(inst->hc, EM_LOG_WARN,
               "cpu: could not start worker threads; running single-threaded");
        return;
    }
    if (pool->n_started < want)
        h->log(inst->hc, EM_LOG_WARN, "cpu: started %d of %d worker threads", pool->n_started,
               want);
    inst->pool_state = 1;
}

int cpu_threads(cpu_inst *inst)
{
    pool_drop_if_forked(inst);
    if (inst->pool_state == 0)
        pool_start(inst);
    if (inst->pool_state != 1)
        return 1;
    cpu_pool *pool = &inst->pool;
    if (pool->spin_adaptive) {
        /* the caller being preempted often means oversubscribed cores: workers then spin
         * only briefly (worker_spin_ns) */
        int64_t t = mono_ns();
        if (preempted_since(&pool->caller_nivcsw, &pool->caller_checked_ns, t))
            atomic_store_explicit(&pool->contended_until_ns, t + POOL_CONTENDED_NS,
                                  memory_order_relaxed);
    }
    return pool->n_started + 1;
}

int cpu_contended(cpu_inst *inst)
{
    cpu_pool *pool = &inst->pool;
    return inst->pool_state == 1 && pool->spin_adaptive &&
           mono_ns() < atomic_load_explicit(&pool->contended_until_ns, memory_order_relaxed);
}

void cpu_parallel(cpu_inst *inst, int64_t ntasks, cpu_task_fn fn, void *arg)
{
    if (ntasks <= 0)
        return;
    if (ntasks == 1 || cpu_threads(inst) <= 1) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(arg, t, 0);
        return;
    }
    cpu_pool *pool = &inst->pool;
    /* every worker has claimed the previous job (joined and finished, or was excused), so
     * none reads these until it sees the new gen */
    pool->fn = fn;
    pool->arg = arg;
    pool->ntasks = ntasks;
    int ng = pool->n_started + 1;
    if (ng > CPU_POOL_GROUPS)
        ng = CPU_POOL_GROUPS;
    if (ng > ntasks)
        ng = (int)ntasks;
    pool->ngroups = ng;
    for (int g = 0; g < ng; g++)
        atomic_store_explicit(&pool->next[g].v, (int64_t)g * ntasks / ng,
                              memory_order_relaxed);
    atomic_store(&pool->busy, pool->n_started);
    atomic_fetch_add(&pool->gen, 1);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mu);
    }
    run_tasks(pool, 0);
    /* All tasks are handed out. Workers that have not joined yet (asleep, or descheduled
     * on a busy machine) are excused rather than waited for; only joined ones count. */
    const uint64_t g = atomic_load(&pool->gen);
    for (int i = 0; i < pool->n_started; i++) {
        uint64_t c = atomic_load(&pool->workers[i].claimed);
        while (c < g) {
            if (atomic_compare_exchange_weak(&pool->workers[i].claimed, &c, g)) {
                atomic_fetch_sub(&pool->busy, 1);
                break;
            }
        }
    }
    /* joined workers are inside their last task: spin for it, briefly, then sleep (a
     * worker that finds caller_waiting set after its decrement signals under mu) */
    if (!spin_busy(pool)) {
        pthread_mutex_lock(&pool->mu);
        atomic_store(&pool->caller_waiting, 1);
        while (atomic_load(&pool->busy) > 0)
            pthread_cond_wait(&pool->done, &pool->mu);
        atomic_store(&pool->caller_waiting, 0);
        pthread_mutex_unlock(&pool->mu);
    }
}

void cpu_pool_stop(cpu_inst *inst)
{
    cpu_pool *pool = &inst->pool;
    pool_drop_if_forked(inst);
    if (inst->pool_state != 1) {
        inst->pool_state = 0;
        return;
    }
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->n_started; i++)
        pthread_join(pool->threads[i], NULL);
    inst->host->free(inst->hc, pool->threads);
    inst->host->free(inst->hc, pool->workers);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mu);
    memset(pool, 0, sizeof *pool);
    inst->pool_state = 0;
}

