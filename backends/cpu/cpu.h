/* backends/cpu/cpu.h — what the cpu backend's files share: the instance (config, lazily
 * started thread pool, gemm scratch), the pool API, and the kernel entry points cpu.c puts
 * in the ops table. Private to the plugin: nothing here is exported. */
#ifndef EMBER_BACKEND_CPU_H
#define EMBER_BACKEND_CPU_H

#include <ember/backend.h>
#include <ember/plugin_kit.h>
#include <pthread.h>
#include <stdatomic.h>

/* Belt and braces next to -fvisibility=hidden: cross-file symbols must never leak. */
#define CPU_HIDDEN __attribute__((visibility("hidden")))

#define CPU_MAX_THREADS 1024

/* how long pool threads busy-wait for the next job by default (cpu_pool.c) */
#ifndef POOL_SPIN_NS_DEFAULT
#define POOL_SPIN_NS_DEFAULT 300000
#endif

/* the most threads that get a run of a job's tasks of their own (cpu_pool.c); threads
 * beyond it share runs */
#define CPU_POOL_GROUPS 64

/* gemm micro-kernel families, chosen once per instance from what the host CPU supports */
/* (ordered: each level has the one below it; AVX-512 instances run the AVX2 elementwise
 * kernels and only gemm in 512-bit registers) */
enum { CPU_SIMD_GENERIC = 0, CPU_SIMD_AVX2 = 1, CPU_SIMD_AVX512 = 2 };

/* which gemm path products take (EMBER_CPU_GEMM, for tests and benchmarks): by shape,
 * or always the direct (unpacked) one, or always the packed one */
enum { CPU_GEMM_AUTO = 0, CPU_GEMM_DIRECT = 1, CPU_GEMM_PACKED = 2 };

/* One unit of parallel work. `worker` is in [0, cpu_inst.nthreads): 0 is the calling
 * thread; it indexes per-worker scratch. */
typedef void (*cpu_task_fn)(void *arg, int64_t task, int worker);

typedef struct cpu_worker {
    struct cpu_inst *inst;
    int id;
    /* adaptive spinning (worker-private): involuntary context switches seen last, when,
     * and until when the machine counts as contended */
    long nivcsw;
    int64_t checked_ns, contended_until_ns;
    /* the last job generation this worker joined or was excused from; whoever (worker or
     * caller) moves it to the current generation first decides which */
    atomic_uint_fast64_t claimed;
} cpu_worker;

typedef struct cpu_pool {
    pthread_mutex_t mu;
    pthread_cond_t wake;         /* workers wait here for a new generation */
    pthread_cond_t done;         /* the caller waits here for busy == 0 */
    pthread_t *threads;
    cpu_worker *workers;
    int n_started;               /* worker threads running (caller excluded) */
    int64_t spin_ns;             /* how long to busy-wait before sleeping (0: never spin) */
    int spin_adaptive;           /* spin_ns long while quiet, POOL_SPIN_BUSY_NS when not */
    /* the caller's involuntary context switches seen last and when; until when the
     * machine counts as contended (written by the caller, read by spinning workers) */
    long caller_nivcsw;
    int64_t caller_checked_ns;
    atomic_int_fast64_t contended_until_ns;
    /* the job: written by the caller before it bumps gen, read by workers after they see
     * the new gen (or, asleep, under mu) */
    atomic_uint_fast64_t gen;    /* bumped for each job */
    atomic_int stop;
    atomic_int busy;             /* workers still inside the current job */
    atomic_int sleepers;         /* workers blocked (or about to block) on `wake` */
    atomic_int caller_waiting;   /* the caller is blocked (or about to block) on `done` */
    cpu_task_fn fn;
    void *arg;
    int64_t ntasks;
    /* tasks are cut into ngroups contiguous runs, one per thread (cpu_pool.c); next[g] is
     * the next task of run g to hand out, each on its own cache line */
    int ngroups;
    struct {
        atomic_int_fast64_t v;
        char pad[64 - sizeof(atomic_int_fast64_t)];
    } next[CPU_POOL_GROUPS];
    unsigned fork_gen;           /* the fork generation it was started in (cpu_pool.c) */
} cpu_pool;

/* Grow-only, 64-byte aligned scratch memory obtained through host->alloc. */
typedef struct cpu_scratch {
    void *raw;
    void *p;
    size_t cap;
} cpu_scratch;

typedef struct cpu_inst {
    const em_host *host;
    em_host_ctx *hc;
    int nthreads;                /* configured threads, caller included (>= 1) */
    int pool_state;              /* 0: not started, 1: running, -1: unavailable */
    cpu_pool pool;
    int64_t spin_ns;             /* pool threads' busy-wait budget (EMBER_CPU_SPIN_US) */
    int spin_adaptive;           /* 0 when EMBER_CPU_SPIN_US fixed it */
    int simd;                    /* CPU_SIMD_* used by gemm */
    int gemm_path;               /* CPU_GEMM_* */
    size_t l1d_bytes, l2_bytes, l3_bytes;   /* data caches seen by core 0 (0: unknown) */
    int n_open;                  /* devices currently open */
    cpu_scratch *work;           /* nthreads entries, per worker: gemm A packs, sum tiles */
    cpu_scratch *pack_b;         /* nthreads entries: packed B panels (0 = shared one) */
    cpu_scratch ksum;            /* gemm split along k: the slices' partial sums */
    int64_t *apacked;            /* nthreads entries: packed gemm, the A block each holds */
    cpu_scratch *conv;           /* nthreads entries: conv2d_grad_weight's columns */
    cpu_scratch conv_part;       /* conv2d_grad_weight: the image groups' partial sums */
    cpu_scratch wino;            /* Winograd convolution: transformed weights, input, products */
} cpu_inst;

#define CPU_ERR(inst, st, ...) ((inst)->host->error((inst)->hc, (st), __VA_ARGS__))

/* Threads usable now (starts the pool on first call; 1 when it cannot start). */
CPU_HIDDEN int cpu_threads(cpu_inst *inst);
/* Whether the caller was being preempted often lately (oversubscribed cores; updated by
 * cpu_threads). */
CPU_HIDDEN int cpu_contended(cpu_inst *inst);
/* Run fn(arg, t, worker) for t in [0, ntasks) on the pool and the caller; returns when all
 * are done. Runs inline when the pool has no workers or ntasks <= 1. */
CPU_HIDDEN void cpu_parallel(cpu_inst *inst, int64_t ntasks, cpu_task_fn fn, void *arg);
CPU_HIDDEN void cpu_pool_stop(cpu_inst *inst);
/* Online cores, capped at CPU_MAX_THREADS (cpu.c). */
CPU_HIDDEN int cpu_online_cores(void);
/* At least `bytes` of 64-byte aligned scratch in s, or NULL (out of memory). */
CPU_HIDDEN void *cpu_scratch_get(cpu_inst *inst, cpu_scratch *s, size_t bytes);
CPU_HIDDEN void cpu_scratch_release(cpu_inst *inst, cpu_scratch *s);

/* Kernels (cpu_kernels.c, cpu_gemm.c and the files below); `dev` is the cpu_inst. */
#define CPU_KERNEL(name) CPU_HIDDEN em_status cpu_k_##name(void *dev, const em_kargs *a)
CPU_KERNEL(fill); CPU_KERNEL(rng_uniform); CPU_KERNEL(rng_normal); CPU_KERNEL(copy);
CPU_KERNEL(neg); CPU_KERNEL(exp); CPU_KERNEL(log); CPU_KERNEL(sqrt); CPU_KERNEL(abs);
CPU_KERNEL(relu); CPU_KERNEL(tanh); CPU_KERNEL(sigmoid);
CPU_KERNEL(add_scalar); CPU_KERNEL(mul_scalar); CPU_KERNEL(rsub_scalar); CPU_KERNEL(div_scalar);
CPU_KERNEL(rdiv_scalar); CPU_KERNEL(pow_scalar); CPU_KERNEL(clamp);
CPU_KERNEL(add); CPU_KERNEL(sub); CPU_KERNEL(mul); CPU_KERNEL(div);
CPU_KERNEL(maximum); CPU_KERNEL(minimum);
CPU_KERNEL(lt); CPU_KERNEL(le); CPU_KERNEL(gt); CPU_KERNEL(ge); CPU_KERNEL(eq); CPU_KERNEL(ne);
CPU_KERNEL(where); CPU_KERNEL(masked_fill);
CPU_KERNEL(sum);
CPU_KERNEL(relu_backward); CPU_KERNEL(clamp_backward); CPU_KERNEL(pow_backward);
CPU_KERNEL(tanh_backward); CPU_KERNEL(sigmoid_backward);
/* ABI 1.2 (cpu_math.c, cpu_reduce.c, cpu_index.c) */
CPU_KERNEL(log1p); CPU_KERNEL(expm1); CPU_KERNEL(sin); CPU_KERNEL(cos); CPU_KERNEL(erf);
CPU_KERNEL(floor); CPU_KERNEL(ceil); CPU_KERNEL(round); CPU_KERNEL(sign);
CPU_KERNEL(pow); CPU_KERNEL(floor_divide); CPU_KERNEL(remainder);
CPU_KERNEL(prod);
CPU_KERNEL(max_dim); CPU_KERNEL(min_dim); CPU_KERNEL(softmax); CPU_KERNEL(log_softmax);
CPU_KERNEL(index_select); CPU_KERNEL(gather); CPU_KERNEL(scatter_add);
/* ABI 1.3 (cpu_adam.c) */
CPU_KERNEL(adam);
/* ABI 1.7 (cpu_sgd.c) */
CPU_KERNEL(sgd);
/* ABI 1.4 (cpu_avgpool.c) */
CPU_KERNEL(avg_pool2d); CPU_KERNEL(avg_pool2d_grad);
/* ---- ABI 1.4: convolution (cpu_conv.c) ---- */
CPU_KERNEL(im2col); CPU_KERNEL(col2im); CPU_KERNEL(max_pool2d);
/* whole convolutions (cpu_winograd.c, cpu_conv_direct.c, cpu_conv_wgrad.c) */
CPU_KERNEL(conv2d); CPU_KERNEL(conv2d_grad_input); CPU_KERNEL(conv2d_grad_weight);
/* ---- ABI 1.5: max_pool2d backward (cpu_conv.c) ---- */
CPU_KERNEL(max_pool2d_grad);
#undef CPU_KERNEL

CPU_HIDDEN em_status cpu_gemm(void *dev, const em_gemm_args *g);
/* The same product on the calling thread alone, for a task of a parallel job, with worker
 * `worker`'s packing scratch: reserve = 1 (before the fork) sizes that scratch for the
 * product's shape and does nothing else; reserve = 0 runs it, failing with EM_ERR_INTERNAL
 * when the scratch was not reserved (it never allocates inside the job). The result is the
 * same bits as cpu_gemm's. */
CPU_HIDDEN em_status cpu_gemm_worker(cpu_inst *inst, const em_gemm_args *g, int worker,
                                     int reserve);

/* The direct forward convolution (cpu_conv_direct.c) for conv2d's checked views x, w, the
 * bias b (or NULL) and y with window ip[] (conv2d's 11 integers), y through ReLU when relu:
 * whether it takes the call (by shape alone), and the call. */
CPU_HIDDEN int cpu_conv_direct_applies(const cpu_inst *inst, const em_kview *x,
                                       const em_kview *w, const int64_t *ip);
CPU_HIDDEN em_status cpu_conv_direct(cpu_inst *inst, const em_kview *x, const em_kview *w,
                                     const em_kview *b, const em_kview *y, const int64_t *ip,
                                     int relu);

/* conv2d_grad_weight's dw (and db, when not NULL) by Winograd F(2x2, 3x3) (cpu_winograd.c),
 * for contiguous x (xshape NCHW), dy (N, OC, oh, ow), dw (OC, C, 3, 3) and db (OC) of dtype
 * dt and the window ip[] (11 integers, checked): whether it takes the call (by shape alone),
 * and the call (dw and db written only once nothing can fail). */
CPU_HIDDEN int cpu_wino_grad_weight_applies(const int64_t *ip, int64_t C, int64_t OC);
CPU_HIDDEN em_status cpu_wino_grad_weight(cpu_inst *inst, int32_t dt, const void *x,
                                          const void *dy, void *dw, void *db,
                                          const int64_t *xshape, int64_t OC, const int64_t *ip);

#endif
