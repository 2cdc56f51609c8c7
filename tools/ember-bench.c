/* tools/ember-bench.c — timed workloads on any backend: the seed's training steps, GEMMs,
 * elementwise ops, a reduction, and the per-op overhead of the API. For each workload:
 * warm-up, then several timed repetitions (synchronised with the device), the median and
 * minimum µs per step, GFLOP/s (GB/s for memory-bound ops) and peak device memory.
 * Each result line starts "<workload> <median> us/step" so scripts can grep it.
 *
 *   ember-bench [--config PATH]... [--backend NAME[:INDEX]] [--threads N] [--isa LIST]
 *               [--workload NAME]... [--steps N] [--reps R] [--warmup W] [--list]
 *
 * --threads N sets [cpu] threads (as if written in device.ini) so that comparisons with
 * other libraries can pin every side to the same thread count. --isa generic,avx2,avx512
 * opens one context per [cpu] isa and runs each workload on each of them in turn, so the
 * cpu backend's kernel families are compared in one run. --config given more than once
 * does the same for device.ini files: two builds of a plugin (`library =`), two backends,
 * two thread counts. Their repetitions alternate, and the ratio printed is the median of
 * the ratios of repetitions run side by side: on a shared machine a slow spell then slows
 * both sides of a ratio, where a ratio of two separate runs would carry it whole.
 */
#include <ember/ember.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct bench_state bench_state;

typedef struct workload {
    const char *name;
    const char *what;
    int default_steps;
    double flops;          /* per step; 0 if not meaningful */
    double bytes;          /* per step, for memory-bound ops; 0 if not meaningful */
    int (*setup)(bench_state *b, const struct workload *w);
    void (*step)(bench_state *b);
    int64_t n;             /* size parameter */
} workload;

struct bench_state {
    em_context *ctx;
    em_tensor *t[8];
    em_sgd *opt;
    int64_t n;
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

/* ------------------------------------------------------------------ workloads */

enum { N = 64, D_IN = 1000, H = 100, D_OUT = 10 };

/* The seed's autograd step: f32, forward mm-clamp-mm, loss, backward, update, zero grads.
 * The grads are zeroed after the scope that read them ends: a .grad no handle holds is
 * zeroed by folding it into the next backward (em_tensor_zero_grad), as users are told to. */
static int setup_seed_autograd(bench_state *b, const workload *w)
{
    (void)w;
    em_context *c = b->ctx;
    b->t[0] = em_randn(c, EM_F32, EM_SHAPE(N, D_IN));
    b->t[1] = em_randn(c, EM_F32, EM_SHAPE(N, D_OUT));
    b->t[2] = em_randn(c, EM_F32, EM_SHAPE(D_IN, H));
    b->t[3] = em_randn(c, EM_F32, EM_SHAPE(H, D_OUT));
    em_tensor_set_requires_grad(b->t[2], true);
    em_tensor_set_requires_grad(b->t[3], true);
    return em_context_status(c) == EM_OK ? 0 : -1;
}

static void step_seed_autograd(bench_state *b)
{
    em_context *c = b->ctx;
    em_tensor *x = b->t[0], *y = b->t[1], *w1 = b->t[2], *w2 = b->t[3];
    em_scope_begin(c);
    em_tensor *y_pred = em_mm(em_clamp(em_mm(x, w1), 0.0, INFINITY), w2);
    em_tensor *loss = em_sum(em_pow(em_sub(y_pred, y), 2.0));
    em_backward(loss);
    em_no_grad_begin(c);
    em_sub_(w1, em_mul_scalar(em_grad(w1), 1e-6));
    em_sub_(w2, em_mul_scalar(em_grad(w2), 1e-6));
    em_no_grad_end(c);
    em_scope_end(c);
    em_tensor_zero_grad(w1);
    em_tensor_zero_grad(w2);
}

/* The seed's hand-written numpy step in f64. */
static int setup_seed_manual(bench_state *b, const workload *w)
{
    (void)w;
    em_context *c = b->ctx;
    b->t[0] = em_randn(c, EM_F64, EM_SHAPE(N, D_IN));
    b->t[1] = em_randn(c, EM_F64, EM_SHAPE(N, D_OUT));
    b->t[2] = em_randn(c, EM_F64, EM_SHAPE(D_IN, H));
    b->t[3] = em_randn(c, EM_F64, EM_SHAPE(H, D_OUT));
    b->t[4] = em_scalar(c, EM_F64, 0.0);
    return em_context_status(c) == EM_OK ? 0 : -1;
}

static void step_seed_manual(bench_state *b)
{
    em_context *c = b->ctx;
    em_tensor *x = b->t[0], *y = b->t[1], *w1 = b->t[2], *w2 = b->t[3], *zero = b->t[4];
    em_scope_begin(c);
    em_tensor *h = em_mm(x, w1);
    em_tensor *h_relu = em_maximum(h, zero);
    em_tensor *y_pred = em_mm(h_relu, w2);
    em_tensor *diff = em_sub(y_pred, y);
    em_tensor *loss = em_sum(em_pow(diff, 2.0));
    (void)loss;
    em_tensor *grad_y_pred = em_mul_scalar(diff, 2.0);
    em_tensor *grad_w2 = em_mm(em_t(h_relu), grad_y_pred);
    em_tensor *grad_h = em_clone(em_mm(grad_y_pred, em_t(w2)));
    em_masked_fill_(grad_h, em_lt_scalar(h, 0.0), 0.0);
    em_tensor *grad_w1 = em_mm(em_t(x), grad_h);
    em_sub_(w1, em_mul_scalar(grad_w1, 1e-6));
    em_sub_(w2, em_mul_scalar(grad_w2, 1e-6));
    em_scope_end(c);
}

/* The five matrix products of the seed's step alone, in its shapes and layouts: forward
 * x @ w1 and h @ w2, backward h^T @ g (grad of w2), g @ w2^T (grad of h) and x^T @ gh (grad
 * of w1): the floor a step built on this gemm cannot go under. f32 ("seed-gemms", the
 * autograd step's dtype) or f64 ("seed-gemms-f64", the manual step's). */
static int setup_seed_gemms(bench_state *b, const workload *w)
{
    em_context *c = b->ctx;
    em_dtype dt = strstr(w->name, "f64") ? EM_F64 : EM_F32;
    b->t[0] = em_randn(c, dt, EM_SHAPE(N, D_IN));
    b->t[1] = em_randn(c, dt, EM_SHAPE(D_IN, H));
    b->t[2] = em_randn(c, dt, EM_SHAPE(H, D_OUT));
    b->t[3] = em_randn(c, dt, EM_SHAPE(N, H));      /* h */
    b->t[4] = em_randn(c, dt, EM_SHAPE(N, D_OUT));  /* grad of y_pred */
    return em_context_status(c) == EM_OK ? 0 : -1;
}

static void step_seed_gemms(bench_state *b)
{
    em_context *c = b->ctx;
    em_tensor *x = b->t[0], *w1 = b->t[1], *w2 = b->t[2], *h = b->t[3], *g = b->t[4];
    em_scope_begin(c);
    em_mm(x, w1);
    em_mm(h, w2);
    em_mm(em_t(h), g);
    em_mm(g, em_t(w2));
    em_mm(em_t(x), h);
    em_scope_end(c);
}

static int setup_gemm(bench_state *b, const workload *w)
{
    em_dtype dt = strstr(w->name, "dgemm") ? EM_F64 : EM_F32;
    b->n = w->n;
    b->t[0] = em_randn(b->ctx, dt, EM_SHAPE(w->n, w->n));
    b->t[1] = em_randn(b->ctx, dt, EM_SHAPE(w->n, w->n));
    return em_context_status(b->ctx) == EM_OK ? 0 : -1;
}

static void step_gemm(bench_state *b)
{
    em_scope_begin(b->ctx);
    em_mm(b->t[0], b->t[1]);
    em_scope_end(b->ctx);
}

static int setup_vec(bench_state *b, const workload *w)
{
    b->n = w->n;
    b->t[0] = em_randn(b->ctx, EM_F32, EM_SHAPE(w->n));
    b->t[1] = em_randn(b->ctx, EM_F32, EM_SHAPE(w->n));
    return em_context_status(b->ctx) == EM_OK ? 0 : -1;
}

static void step_add(bench_state *b)
{
    em_scope_begin(b->ctx);
    em_add(b->t[0], b->t[1]);
    em_scope_end(b->ctx);
}

static void step_relu(bench_state *b)
{
    em_scope_begin(b->ctx);
    em_relu(b->t[0]);
    em_scope_end(b->ctx);
}

static void step_sum(bench_state *b)
{
    em_scope_begin(b->ctx);
    em_sum(b->t[0]);
    em_scope_end(b->ctx);
}

/* log_softmax over the last dim of a (1024, 1024) f32 tensor: one pass of the kernel */
static int setup_softmax(bench_state *b, const workload *w)
{
    (void)w;
    b->t[0] = em_randn(b->ctx, EM_F32, EM_SHAPE(1024, 1024));
    return em_context_status(b->ctx) == EM_OK ? 0 : -1;
}

static void step_log_softmax(bench_state *b)
{
    em_scope_begin(b->ctx);
    em_log_softmax(b->t[0], 1);
    em_scope_end(b->ctx);
}

/* A classifier's loss: cross-entropy of (256, 1000) f32 logits against i64 labels, forward
 * and backward (the gradient of the logits), as F.cross_entropy(x, y).backward(). */
enum { XENT_N = 256, XENT_C = 1000 };
static int setup_xent(bench_state *b, const workload *w)
{
    (void)w;
    int64_t labels[XENT_N];
    for (int i = 0; i < XENT_N; i++)
        labels[i] = (int64_t)((i * 7919) % XENT_C);
    b->t[0] = em_randn(b->ctx, EM_F32, EM_SHAPE(XENT_N, XENT_C));
    b->t[1] = em_tensor_from_data(b->ctx, EM_I64, EM_SHAPE(XENT_N), labels);
    em_tensor_set_requires_grad(b->t[0], true);
    return em_context_status(b->ctx) == EM_OK ? 0 : -1;
}

static void step_xent(bench_state *b)
{
    em_scope_begin(b->ctx);
    em_backward(em_cross_entropy(b->t[0], b->t[1]));
    em_tensor_clear_grad(b->t[0]);
    em_scope_end(b->ctx);
}

/* One tiny op through the whole API: argument checks, shape rule, output from the pool and
 * the buffer cache, kernel call, scope registration and release. */
static int setup_overhead(bench_state *b, const workload *w)
{
    (void)w;
    b->t[0] = em_ones(b->ctx, EM_F32, EM_SHAPE(1));
    b->t[1] = em_ones(b->ctx, EM_F32, EM_SHAPE(1));
    return em_context_status(b->ctx) == EM_OK ? 0 : -1;
}

static void step_overhead(bench_state *b)
{
    em_scope_begin(b->ctx);
    em_add(b->t[0], b->t[1]);
    em_scope_end(b->ctx);
}

#define SEED_FLOPS (2.0 * N * D_IN * H * 2 + 2.0 * N * H * D_OUT * 3)
#define GEMM(nm, sz) {nm, #sz "x" #sz " matrix product", 0, 2.0 * sz * sz * sz, 0, setup_gemm, step_gemm, sz}
static const workload workloads[] = {
    {"seed-autograd", "seed training step, f32, autograd (64x1000x100x10)", 200, SEED_FLOPS, 0,
     setup_seed_autograd, step_seed_autograd, 0},
    {"seed-manual", "seed numpy step, f64, hand-written backward", 200, SEED_FLOPS, 0,
     setup_seed_manual, step_seed_manual, 0},
    {"seed-gemms", "the seed step's five matrix products alone, f32", 200, SEED_FLOPS, 0,
     setup_seed_gemms, step_seed_gemms, 0},
    {"seed-gemms-f64", "the seed step's five matrix products alone, f64", 200, SEED_FLOPS, 0,
     setup_seed_gemms, step_seed_gemms, 0},
    GEMM("sgemm-256", 256), GEMM("sgemm-1024", 1024), GEMM("sgemm-2048", 2048),
    GEMM("dgemm-256", 256), GEMM("dgemm-1024", 1024), GEMM("dgemm-2048", 2048),
    {"add-1M", "elementwise add, 1M f32", 200, 0, 12.0 * (1 << 20), setup_vec, step_add, 1 << 20},
    {"add-16M", "elementwise add, 16M f32", 20, 0, 12.0 * (1 << 24), setup_vec, step_add, 1 << 24},
    {"relu-1M", "relu, 1M f32", 200, 0, 8.0 * (1 << 20), setup_vec, step_relu, 1 << 20},
    {"relu-16M", "relu, 16M f32", 20, 0, 8.0 * (1 << 24), setup_vec, step_relu, 1 << 24},
    {"sum-16M", "sum of 16M f32", 20, 0, 4.0 * (1 << 24), setup_vec, step_sum, 1 << 24},
    {"log-softmax-1M", "log_softmax over rows of 1024x1024 f32", 50, 0, 8.0 * (1 << 20),
     setup_softmax, step_log_softmax, 0},
    {"xent-fwbw", "cross-entropy of 256x1000 f32 logits, forward + backward", 200, 0, 0,
     setup_xent, step_xent, 0},
    {"overhead", "one add of two 1-element tensors, end to end", 20000, 0, 0, setup_overhead,
     step_overhead, 0},
};
#define N_WORKLOADS (int)(sizeof workloads / sizeof workloads[0])

static int default_steps(const workload *w)
{
    if (w->default_steps)
        return w->default_steps;
    return w->n <= 256 ? 200 : w->n <= 1024 ? 10 : 3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One workload on one context: set up, warmed up, then timed one repetition at a time
 * (so that --isa can alternate the contexts' repetitions), then reported. */
typedef struct timing {
    bench_state b;
    const workload *w;
    int steps, reps, done;
    double *t;
} timing;

static int timing_start(timing *tm, em_context *ctx, const workload *w, int steps, int reps,
                        int warmup)
{
    memset(tm, 0, sizeof *tm);
    tm->b.ctx = ctx;
    tm->w = w;
    tm->reps = reps;
    em_scope_begin(ctx);
    tm->t = calloc((size_t)reps, sizeof *tm->t);
    if (!tm->t || w->setup(&tm->b, w) != 0) {
        fprintf(stderr, "ember-bench: %s: setup failed: %s\n", w->name,
                tm->t ? em_context_error(ctx) : "out of memory");
        free(tm->t);
        tm->t = NULL;
        em_sgd_free(tm->b.opt);
        em_scope_end(ctx);
        em_context_clear_error(ctx);
        return 1;
    }
    tm->steps = steps > 0 ? steps : default_steps(w);
    for (int i = 0; i < warmup; i++)
        for (int s = 0; s < (tm->steps < 10 ? tm->steps : 10); s++)
            w->step(&tm->b);
    em_synchronize(ctx);
    em_context_reset_peak(ctx);
    return 0;
}

static void timing_rep(timing *tm)
{
    double t0 = now_us();
    for (int s = 0; s < tm->steps; s++)
        tm->w->step(&tm->b);
    em_synchronize(tm->b.ctx);
    tm->t[tm->done++] = (now_us() - t0) / tm->steps;
}

static void timing_discard(timing *tm)
{
    free(tm->t);
    em_sgd_free(tm->b.opt);
    em_scope_end(tm->b.ctx);
}

/* prints the result line (isa: the context's [cpu] isa when --isa compares several, else
 * NULL), stores the median in *med_out, and releases the workload's tensors */
/* the median of n values (sorted in place) */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int timing_finish(timing *tm, const char *label, double *med_out)
{
    em_context *ctx = tm->b.ctx;
    const workload *w = tm->w;
    const int reps = tm->done;
    double *t = tm->t;
    int rc = 0;
    if (em_context_status(ctx) != EM_OK) {
        fprintf(stderr, "ember-bench: %s: %s\n", w->name, em_context_error(ctx));
        em_context_clear_error(ctx);
        rc = 1;
    } else {
        double med = median(t, reps);
        char rate[64] = "";
        if (w->flops > 0)
            snprintf(rate, sizeof rate, ", %.1f GFLOP/s", w->flops / med * 1e-3);
        else if (w->bytes > 0)
            snprintf(rate, sizeof rate, ", %.1f GB/s", w->bytes / med * 1e-3);
        printf("%-14s %10.2f us/step  (min %.2f, %d reps x %d steps%s, peak device %.1f MiB%s%s)\n",
               w->name, med, t[0], reps, tm->steps, rate,
               em_context_memory_peak(ctx) / 1048576.0, label ? ", " : "", label ? label : "");
        fflush(stdout);
        if (med_out)
            *med_out = med;
    }
    timing_discard(tm);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ember-bench [--config PATH]... [--backend NAME[:INDEX]] [--threads N]\n"
               "                   [--isa LIST] [--workload NAME]... [--steps N] [--reps R]\n"
               "                   [--warmup W] [--list]\n"
               "Runs the named workloads (all if none named) on the backend from device.ini, or\n"
               "the one given by --backend (same meaning as EMBER_DEVICE). --threads sets the\n"
               "cpu backend's [cpu] threads (0: one per core). --isa generic,avx2,avx512 runs\n"
               "every workload once per listed [cpu] isa, in turn, and prints their ratios.\n"
               "--config more than once does the same for each device.ini given (e.g. two\n"
               "builds of a plugin through [cpu] library =); ratios are the median over\n"
               "repetitions of each side-by-side pair's ratio.\n");
}

/* A context from the file em_context_create would read (or config), with [cpu] threads
 * and [cpu] isa set when given. */
static em_status open_context(em_context **ctx, const char *config, const char *threads,
                              const char *isa)
{
    if (!threads && !isa)
        return em_context_create(ctx, config);
    char *path = config ? NULL : em_config_locate(NULL);
    em_config *cfg = em_config_create();
    em_status cst = cfg ? EM_OK : EM_ERR_OOM;
    if (cst == EM_OK && (config || path))
        cst = em_config_load_file(cfg, config ? config : path);
    if (cst == EM_OK && threads)
        cst = em_config_set(cfg, "cpu", "threads", threads);
    if (cst == EM_OK && isa)
        cst = em_config_set(cfg, "cpu", "isa", isa);
    if (cst == EM_OK)
        cst = em_context_create_with(ctx, cfg);
    em_config_free(cfg);
    free(path);
    return cst;
}

#define MAX_ISAS 8
#define MAX_CTXS 8

int main(int argc, char **argv)
{
    const char *configs[MAX_CTXS], *backend = NULL, *threads = NULL, *isa_list = NULL;
    const char *names[64];
    int n_names = 0, n_configs = 0, steps = 0, reps = 7, warmup = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config") && i + 1 < argc) {
            if (n_configs == MAX_CTXS) {
                fprintf(stderr, "ember-bench: --config: at most %d\n", MAX_CTXS);
                return 2;
            }
            configs[n_configs++] = argv[++i];
        } else if (!strcmp(a, "--backend") && i + 1 < argc)
            backend = argv[++i];
        else if (!strcmp(a, "--threads") && i + 1 < argc)
            threads = argv[++i];
        else if (!strcmp(a, "--isa") && i + 1 < argc)
            isa_list = argv[++i];
        else if (!strcmp(a, "--workload") && i + 1 < argc && n_names < 64)
            names[n_names++] = argv[++i];
        else if (!strcmp(a, "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(a, "--warmup") && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (!strcmp(a, "--list")) {
            for (int w = 0; w < N_WORKLOADS; w++)
                printf("%-14s %s\n", workloads[w].name, workloads[w].what);
            return 0;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (reps < 1)
        reps = 1;
    for (int k = 0; k < n_names; k++) {
        bool found = false;
        for (int w = 0; w < N_WORKLOADS; w++)
            found |= !strcmp(names[k], workloads[w].name);
        if (!found) {
            fprintf(stderr, "ember-bench: unknown workload '%s' (--list shows them)\n", names[k]);
            return 2;
        }
    }
    /* --isa: the list split at commas, one context each */
    char isa_buf[256], *isas[MAX_ISAS];
    int n_isa = 0;
    if (isa_list) {
        if (strlen(isa_list) >= sizeof isa_buf) {
            fprintf(stderr, "ember-bench: --isa: list too long\n");
            return 2;
        }
        strcpy(isa_buf, isa_list);
        for (char *tok = strtok(isa_buf, ","); tok; tok = strtok(NULL, ",")) {
            if (n_isa == MAX_ISAS) {
                fprintf(stderr, "ember-bench: --isa: at most %d entries\n", MAX_ISAS);
                return 2;
            }
            isas[n_isa++] = tok;
        }
        if (n_isa == 0) {
            fprintf(stderr, "ember-bench: --isa: empty list\n");
            return 2;
        }
    }
    if (backend && setenv("EMBER_DEVICE", backend, 1) != 0)
        return 2;
    /* one context per (config, isa): the configs given (or the located one), times the isas */
    const int n_cfg = n_configs ? n_configs : 1, n_is = n_isa ? n_isa : 1;
    const int n_ctx = n_cfg * n_is;
    if (n_ctx > MAX_CTXS) {
        fprintf(stderr, "ember-bench: --config times --isa: at most %d contexts\n", MAX_CTXS);
        return 2;
    }
    em_context *ctxs[MAX_CTXS];
    char labels[MAX_CTXS][320];
    for (int c = 0; c < n_ctx; c++) {
        const char *config = n_configs ? configs[c / n_is] : NULL;
        const char *isa = n_isa ? isas[c % n_is] : NULL;
        labels[c][0] = 0;
        if (n_configs > 1 && isa)
            snprintf(labels[c], sizeof labels[c], "config %s, isa %s", config, isa);
        else if (n_configs > 1)
            snprintf(labels[c], sizeof labels[c], "config %s", config);
        else if (isa)
            snprintf(labels[c], sizeof labels[c], "isa %s", isa);
        em_status cst = open_context(&ctxs[c], config, threads, isa);
        if (cst != EM_OK) {
            if (labels[c][0])
                fprintf(stderr, "ember-bench: %s: %s\n", labels[c], em_last_error());
            else
                fprintf(stderr, "ember-bench: %s\n", em_last_error());
            while (c-- > 0)
                em_context_free(ctxs[c]);
            return 1;
        }
        em_manual_seed(ctxs[c], 0);
    }
    em_context *ctx = ctxs[0];
    printf("# ember %s, backend %s:%d (%s)\n", em_version_string(), em_context_backend(ctx),
           em_context_device_index(ctx), em_context_device_name(ctx));
    if (n_isa && strcmp(em_context_backend(ctx), "cpu") != 0)
        printf("# --isa sets [cpu] isa, which backend %s ignores\n", em_context_backend(ctx));
    int rc = 0;
    for (int w = 0; w < N_WORKLOADS; w++) {
        bool want = n_names == 0;
        for (int k = 0; k < n_names; k++)
            want |= !strcmp(names[k], workloads[w].name);
        if (!want)
            continue;
        timing tm[MAX_CTXS];
        int ok = 1;
        for (int c = 0; c < n_ctx && ok; c++)
            if (timing_start(&tm[c], ctxs[c], &workloads[w], steps, reps, warmup) != 0) {
                while (c-- > 0)
                    timing_discard(&tm[c]);
                ok = 0;
                rc = 1;
            }
        if (!ok)
            continue;
        /* the contexts' repetitions alternate, so a slow spell of the machine hits each */
        for (int r = 0; r < reps; r++)
            for (int c = 0; c < n_ctx; c++)
                timing_rep(&tm[c]);
        /* each context's ratio to the first, repetition by repetition (before
         * timing_finish sorts the times) */
        double ratio[MAX_CTXS] = {0};
        if (n_ctx > 1) {
            double *rr = malloc(sizeof *rr * (size_t)reps);
            for (int c = 1; c < n_ctx && rr; c++) {
                int n = tm[c].done < tm[0].done ? tm[c].done : tm[0].done;
                for (int r = 0; r < n; r++)
                    rr[r] = tm[c].t[r] / tm[0].t[r];
                ratio[c] = n > 0 ? median(rr, n) : NAN;
            }
            free(rr);
        }
        for (int c = 0; c < n_ctx; c++)
            if (timing_finish(&tm[c], labels[c][0] ? labels[c] : NULL, NULL) != 0) {
                ok = 0;
                rc = 1;
            }
        if (n_ctx > 1 && ok) {
            printf("# %s:", workloads[w].name);
            for (int c = 1; c < n_ctx; c++) {
                if (n_configs > 1 && n_isa)
                    printf(" (%s)/(%s) %.3f", labels[c], labels[0], ratio[c]);
                else if (n_configs > 1)
                    printf(" %s/%s %.3f", configs[c], configs[0], ratio[c]);
                else
                    printf(" %s/%s %.3f", isas[c], isas[0], ratio[c]);
            }
            printf("\n");
        }
        fflush(stdout);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("# peak RSS %.1f MiB\n", ru.ru_maxrss / 1024.0);
    for (int c = 0; c < n_ctx; c++)
        em_context_free(ctxs[c]);
    return rc;
}
