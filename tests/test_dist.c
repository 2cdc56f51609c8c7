/* tests/test_dist.c — the process group, run by tests/test_dist.sh under mpirun (-np 1, 2 and
 * 3) and alone. Each mode checks exact results that every rank can compute for itself:
 *   collectives  all_reduce_ (sum, avg, max, min; f32, f64, i64; a strided view through the
 *                staging path), broadcast_, all_gather, reduce_scatter, barrier, stats and
 *                the argument errors;
 *   mismatch     ranks passing different shapes get EM_ERR_SHAPE naming both, and the group
 *                still works afterwards;
 *   ddp          em_ddp_create broadcasts rank 0's parameters; em_ddp_sync_mean over uneven
 *                shards gives the global mean gradient (per-rank sums and counts reduced),
 *                not a mean of per-rank means; the distributed sampler's shards are the
 *                single-process batches split into contiguous slices, disjoint, every
 *                sample once, with empty slices at an uneven end;
 *   threads      two threads with a context each take turns on the one group;
 *   die          rank 1 exits with status 3 before an all-reduce: mpirun ends the job;
 *   hang         rank 1 sleeps before an all-reduce: the others must end the job after the
 *                [distributed] timeout (the script checks the time and the message);
 *   init-error   em_dist_init's failure message (for a missing or broken plugin).
 * Prints "rank R: ok MODE" per rank on success; on failure a line naming the check and
 * exit status 1. */
#include <ember/ember.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void em__test_fail_kernel_after(long n);   /* libember's fault-injection hook */

static int rank, world, failures;

#define CHECK(cond, ...)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "rank %d: FAILED %s:%d: %s: ", rank, __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fprintf(stderr, "\n");                                                          \
            failures++;                                                                     \
        }                                                                                   \
    } while (0)

static double at(em_tensor *t, int64_t i)
{
    em_scope_begin(em_tensor_context(t));
    double v = em_item(em_select(em_flatten(t), 0, i));
    em_scope_end(em_tensor_context(t));
    return v;
}

static void collectives(em_dist *d, em_context *ctx)
{
    const int W = world, R = rank;
    /* sum / avg / max / min of f32 values rank-dependent */
    float v[6];
    for (int i = 0; i < 6; i++)
        v[i] = (float)(R + 1) * (float)(i + 1);
    em_tensor *t = em_tensor_from_data(ctx, EM_F32, EM_SHAPE(2, 3), v);
    CHECK(em_dist_all_reduce_(d, t, EM_REDUCE_SUM) == EM_OK, "%s", em_context_error(ctx));
    double tri = W * (W + 1) / 2.0;
    for (int i = 0; i < 6; i++)
        CHECK(at(t, i) == tri * (i + 1), "sum[%d] = %g, want %g", i, at(t, i), tri * (i + 1));
    em_tensor_from_host(t, v, sizeof v);
    CHECK(em_dist_all_reduce_(d, t, EM_REDUCE_AVG) == EM_OK, "%s", em_context_error(ctx));
    for (int i = 0; i < 6; i++)
        CHECK(fabs(at(t, i) - tri * (i + 1) / W) < 1e-5, "avg[%d] = %g", i, at(t, i));
    em_tensor_from_host(t, v, sizeof v);
    CHECK(em_dist_all_reduce_(d, t, EM_REDUCE_MAX) == EM_OK, "%s", em_context_error(ctx));
    CHECK(at(t, 5) == 6.0 * W, "max = %g", at(t, 5));
    em_tensor_from_host(t, v, sizeof v);
    CHECK(em_dist_all_reduce_(d, t, EM_REDUCE_MIN) == EM_OK, "%s", em_context_error(ctx));
    CHECK(at(t, 5) == 6.0, "min = %g", at(t, 5));
    /* i64 exactly, beyond 2^53 */
    int64_t big = ((int64_t)1 << 60) + R;
    em_tensor *ti = em_tensor_from_data(ctx, EM_I64, EM_SHAPE(1), &big);
    CHECK(em_dist_all_reduce_(d, ti, EM_REDUCE_MAX) == EM_OK, "%s", em_context_error(ctx));
    CHECK(em_item_i64(ti) == ((int64_t)1 << 60) + W - 1, "i64 max %lld", (long long)em_item_i64(ti));
    /* f64 on a strided view (column 1 of a 3x2): the staged path writes back into the view */
    double m[6] = {1, 10 + R, 2, 20 + R, 3, 30 + R};
    em_tensor *md = em_tensor_from_data(ctx, EM_F64, EM_SHAPE(3, 2), m);
    em_tensor *col = em_select(md, 1, 1);
    CHECK(!em_tensor_is_contiguous(col), "the view should be strided");
    CHECK(em_dist_all_reduce_(d, col, EM_REDUCE_SUM) == EM_OK, "%s", em_context_error(ctx));
    CHECK(at(md, 1) == 10.0 * W + (W - 1) * W / 2.0 && at(md, 0) == 1 && at(md, 4) == 3,
          "strided sum: %g %g %g", at(md, 0), at(md, 1), at(md, 4));
    /* broadcast from the last rank */
    float bv[3] = {(float)R, (float)R * 2, -1};
    em_tensor *tb = em_tensor_from_data(ctx, EM_F32, EM_SHAPE(3), bv);
    CHECK(em_dist_broadcast_(d, tb, W - 1) == EM_OK, "%s", em_context_error(ctx));
    CHECK(at(tb, 0) == W - 1 && at(tb, 1) == 2.0 * (W - 1) && at(tb, 2) == -1, "broadcast");
    /* all_gather: (2) per rank -> (2W) */
    float gv[2] = {(float)R, (float)(100 + R)};
    em_tensor *g = NULL;
    CHECK(em_dist_all_gather(d, em_tensor_from_data(ctx, EM_F32, EM_SHAPE(2), gv), &g) ==
          EM_OK, "%s", em_context_error(ctx));
    CHECK(g && em_tensor_size(g, 0) == 2 * W, "all_gather shape");
    for (int r = 0; g && r < W; r++)
        CHECK(at(g, 2 * r) == r && at(g, 2 * r + 1) == 100 + r, "all_gather rank %d", r);
    /* reduce_scatter: (W, 2) of value (R+1)*(row+1) -> rank gets its row summed */
    float *rs = calloc((size_t)(2 * W), sizeof *rs);
    for (int i = 0; i < 2 * W; i++)
        rs[i] = (float)((R + 1) * (i / 2 + 1));
    em_tensor *o = NULL;
    CHECK(em_dist_reduce_scatter(d, em_tensor_from_data(ctx, EM_F32, EM_SHAPE(W, 2), rs),
                                 EM_REDUCE_SUM, &o) == EM_OK, "%s", em_context_error(ctx));
    CHECK(o && em_tensor_size(o, 0) == 1 && at(o, 0) == tri * (R + 1), "reduce_scatter %g",
          o ? at(o, 0) : -1.0);
    free(rs);
    CHECK(em_dist_barrier(d) == EM_OK, "%s", em_last_error());
    /* argument errors: reported, nothing sent (so no rank waits) */
    em_context_clear_error(ctx);
    CHECK(em_dist_all_reduce_(d, ti, EM_REDUCE_AVG) == EM_ERR_DTYPE, "avg of i64");
    CHECK(strstr(em_context_error(ctx), "EM_REDUCE_AVG needs a floating-point tensor, got i64"),
          "%s", em_context_error(ctx));
    em_context_clear_error(ctx);
    CHECK(em_dist_broadcast_(d, tb, W) == EM_ERR_INVALID, "root out of range");
    CHECK(strstr(em_context_error(ctx), "is not a rank of this group"), "%s",
          em_context_error(ctx));
    em_context_clear_error(ctx);
    CHECK(em_dist_all_reduce_(d, NULL, EM_REDUCE_SUM) == EM_ERR_INVALID, "NULL tensor");
    CHECK(em_dist_all_reduce_(NULL, tb, EM_REDUCE_SUM) == EM_ERR_INVALID, "NULL group");
    em_dist_stats s = {.struct_size = sizeof s};
    CHECK(em_dist_get_stats(d, &s) == EM_OK && s.collectives >= (W > 1 ? 18u : 9u) &&
          s.bytes > 0, "stats %llu %llu", (unsigned long long)s.collectives,
          (unsigned long long)s.bytes);
}

static void mismatch(em_dist *d, em_context *ctx)
{
    em_tensor *t = em_ones(ctx, EM_F32, EM_SHAPE(rank + 1, 2));
    em_status st = em_dist_all_reduce_(d, t, EM_REDUCE_SUM);
    CHECK(st == EM_ERR_SHAPE, "status %s", em_status_name(st));
    const char *m = em_context_error(ctx);
    CHECK(strstr(m, "the ranks disagree") && strstr(m, "rank 0") &&
          strstr(m, "all_reduce_ of f32[1, 2]") && strstr(m, "all_reduce_ of f32[2, 2]"),
          "message: %s", m);
    if (rank == 0)
        printf("# %s\n", m);
    CHECK(at(t, 0) == 1, "the tensor was changed");
    em_context_clear_error(ctx);
    em_tensor *u = em_ones(ctx, EM_F32, EM_SHAPE(4));
    CHECK(em_dist_all_reduce_(d, u, EM_REDUCE_SUM) == EM_OK && at(u, 3) == world,
          "the group works after a mismatch: %s", em_context_error(ctx));
}

static void ddp(em_dist *d, em_context *ctx)
{
    enum { N = 10, DIN = 3 };
    /* data every rank can make: x[i][k] = sin(i * 3 + k), target t[i] = i % 3 - 1 */
    float x[N * DIN], y[N];
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < DIN; k++)
            x[i * DIN + k] = (float)sin(i * 3.0 + k);
        y[i] = (float)(i % 3 - 1);
    }
    em_tensor *X = em_tensor_from_data(ctx, EM_F32, EM_SHAPE(N, DIN), x);
    em_tensor *Y = em_tensor_from_data(ctx, EM_F32, EM_SHAPE(N, 1), y);
    /* parameters differ per rank; create must give everyone rank 0's */
    float w0[DIN] = {0.5f + (float)rank, -0.25f, 0.125f}, b0 = 0.1f * (float)rank;
    em_tensor *w = em_tensor_from_data(ctx, EM_F32, EM_SHAPE(DIN, 1), w0);
    em_tensor *b = em_tensor_from_data(ctx, EM_F32, EM_SHAPE(1), &b0);
    em_tensor_set_requires_grad(w, true);
    em_tensor_set_requires_grad(b, true);
    em_ddp *p = em_ddp_create(d, (em_tensor *[]){w, b}, 2, &(em_ddp_options){
        .struct_size = sizeof(em_ddp_options), .bucket_bytes = 8});   /* 2 buckets */
    CHECK(p, "create: %s", em_context_error(ctx));
    if (!p)
        return;
    CHECK(at(w, 0) == 0.5 && at(b, 0) == 0.0f, "broadcast of rank 0's parameters: %g %g",
          at(w, 0), at(b, 0));
    em_ddp_stats ds = {.struct_size = sizeof ds};
    em_ddp_get_stats(p, &ds);
    CHECK(ds.buckets == 2, "buckets %d", ds.buckets);
    /* the reference: the full-batch mean gradient, computed here alone */
    em_tensor *ref_w, *ref_b;
    {
        em_tensor *loss = em_mse_loss(em_add(em_mm(X, w), b), Y, EM_REDUCTION_MEAN);
        em_backward(loss);
        ref_w = em_clone(em_grad(w));
        ref_b = em_clone(em_grad(b));
        em_tensor_clear_grad(w);
        em_tensor_clear_grad(b);
    }
    /* uneven shards: global batch N over the ranks (10 = 4+3+3 on three ranks) */
    em_batches *bt = em_dist_batches_create(d, (em_tensor *[]){X, Y}, 2, N, false, 0, false);
    em_tensor *xy[2];
    CHECK(em_batches_next(bt, xy), "a batch");
    int64_t n_local = em_tensor_size(xy[0], 0), total = -1;
    int64_t want = N / world + (rank < N % world);
    CHECK(n_local == want, "shard size %lld, want %lld", (long long)n_local, (long long)want);
    em_tensor *loss = em_mse_loss(em_add(em_mm(xy[0], w), b), xy[1], EM_REDUCTION_SUM);
    CHECK(em_backward(loss) == EM_OK, "%s", em_context_error(ctx));
    CHECK(em_ddp_sync_mean(p, n_local, &total) == EM_OK, "%s", em_context_error(ctx));
    CHECK(total == N, "global count %lld", (long long)total);
    for (int k = 0; k < DIN; k++)
        CHECK(fabs(at(em_grad(w), k) - at(ref_w, k)) < 1e-5 * (1 + fabs(at(ref_w, k))),
              "grad w[%d] %g, full batch %g", k, at(em_grad(w), k), at(ref_w, k));
    CHECK(fabs(at(em_grad(b), 0) - at(ref_b, 0)) < 1e-5, "grad b %g, full batch %g",
          at(em_grad(b), 0), at(ref_b, 0));
    em_batches_free(bt);
    /* all or nothing: a device fault at the Nth kernel call of a sync (the same N on every
     * rank, so every rank fails at the same point) leaves every .grad as it was, the missing
     * one still missing; the first N that gets through gives the fault-free result */
    em_tensor_clear_grad(b);
    float gw[DIN], gw_after[DIN];
    for (int k = 0; k < DIN; k++)
        gw[k] = (float)at(em_grad(w), k);
    int faults = 0;
    for (long n = 1; n < 200; n++) {
        em__test_fail_kernel_after(n);
        em_status fst = em_ddp_sync_sum(p);
        em__test_fail_kernel_after(0);
        if (fst == EM_OK)
            break;
        faults++;
        em_context_clear_error(ctx);
        for (int k = 0; k < DIN; k++)
            gw_after[k] = (float)at(em_grad(w), k);
        CHECK(!memcmp(gw, gw_after, sizeof gw), "fault at kernel call %ld: grad w changed", n);
        CHECK(em_grad(b) == NULL, "fault at kernel call %ld: grad b was created", n);
    }
    CHECK(faults >= 3, "only %d sync attempts failed: the fault was not injected", faults);
    for (int k = 0; k < DIN; k++)
        CHECK(fabs(at(em_grad(w), k) - world * (double)gw[k]) < 1e-5 * (1 + fabs(gw[k])) * world,
              "after the faults, sum-synced grad w[%d] %g, want %d x %g", k,
              at(em_grad(w), k), world, gw[k]);
    CHECK(em_grad(b) && at(em_grad(b), 0) == 0.0, "sum-synced grad b (none anywhere) is 0");
    /* sampler: ids 0..N-1 shuffled, global batch 4: marker[id] = its batch + 1 on the rank
     * that had it, summed over ranks = the single-process batches, each id once */
    float ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = (float)i;
    em_tensor *I = em_tensor_from_data(ctx, EM_F32, EM_SHAPE(N), ids);
    em_batches *sb = em_dist_batches_create(d, &I, 1, 4, true, 7, false);
    em_batches *ref = em_batches_create(&I, 1, 4, true, 7, false);
    em_batches_epoch(sb, 3);
    em_batches_epoch(ref, 3);
    float marker[N] = {0}, seen[N] = {0};
    em_tensor *one;
    int steps = 0;
    while (em_batches_next(sb, &one)) {
        int64_t len = em_tensor_size(one, 0);
        int64_t gl = steps < 2 ? 4 : 2;
        int64_t wl = gl / world + (rank < gl % world);
        CHECK(len == wl, "step %d: %lld samples, want %lld", steps, (long long)len, (long long)wl);
        for (int64_t i = 0; i < len; i++) {
            marker[(int)at(one, i)] += (float)(steps + 1);
            seen[(int)at(one, i)] += 1;
        }
        steps++;
    }
    CHECK(steps == 3, "steps %d", steps);
    em_tensor *M = em_tensor_from_data(ctx, EM_F32, EM_SHAPE(N), marker);
    em_tensor *S = em_tensor_from_data(ctx, EM_F32, EM_SHAPE(N), seen);
    em_dist_all_reduce_(d, M, EM_REDUCE_SUM);
    em_dist_all_reduce_(d, S, EM_REDUCE_SUM);
    for (int s = 0; em_batches_next(ref, &one); s++)
        for (int64_t i = 0; i < em_tensor_size(one, 0); i++) {
            int id = (int)at(one, i);
            CHECK(at(M, id) == s + 1 && at(S, id) == 1, "id %d: batch %g seen %g (want %d, 1)",
                  id, at(M, id), at(S, id), s + 1);
        }
    em_batches_free(sb);
    em_batches_free(ref);
    em_ddp_free(p);
}

/* Two threads, each with its own context, take turns (the same order on every rank, as
 * MPI requires) calling collectives on the one group. */
typedef struct turns {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn;
    em_dist *d;
    int bad;
} turns;
typedef struct worker {
    turns *t;
    int id;
} worker;

static void *thread_main(void *arg)
{
    worker *w = arg;
    turns *t = w->t;
    em_context *ctx;
    if (em_context_create(&ctx, NULL) != EM_OK) {
        t->bad++;
        return NULL;
    }
    for (int k = 0; k < 4; k++) {
        pthread_mutex_lock(&t->mu);
        while (t->turn != 2 * k + w->id)
            pthread_cond_wait(&t->cv, &t->mu);
        pthread_mutex_unlock(&t->mu);
        em_scope_begin(ctx);
        em_tensor *x = em_full(ctx, EM_F32, EM_SHAPE(3 + w->id), (double)(w->id + 1));
        if (em_dist_all_reduce_(t->d, x, EM_REDUCE_SUM) != EM_OK ||
            at(x, 2) != (double)world * (w->id + 1)) {
            fprintf(stderr, "rank %d thread %d step %d: %s\n", rank, w->id, k,
                    em_context_error(ctx));
            t->bad++;
        }
        em_scope_end(ctx);
        pthread_mutex_lock(&t->mu);
        t->turn++;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
    em_context_free(ctx);
    return NULL;
}

static void threads(em_dist *d)
{
    turns t = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .d = d};
    worker w[2] = {{&t, 0}, {&t, 1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, thread_main, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK(t.bad == 0 && t.turn == 8, "%d failures, %d turns", t.bad, t.turn);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "collectives";
    em_dist *d;
    if (em_dist_init(&d, NULL) != EM_OK) {
        printf("init-error: %s\n", em_last_error());
        return strcmp(mode, "init-error") ? 1 : 0;
    }
    if (!strcmp(mode, "init-error")) {
        fprintf(stderr, "em_dist_init succeeded\n");
        em_dist_finalize(d);
        return 1;
    }
    rank = em_dist_rank(d);
    world = em_dist_world_size(d);
    em_context *ctx;
    if (em_context_create(&ctx, NULL) != EM_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, em_last_error());
        em_dist_finalize(d);
        return 1;
    }
    em_scope_begin(ctx);
    if (!strcmp(mode, "collectives")) {
        em_dist *again;
        CHECK(em_dist_init(&again, NULL) == EM_OK && again == d, "a second init: the same group");
        em_dist_finalize(again);
        collectives(d, ctx);
    } else if (!strcmp(mode, "mismatch")) {
        mismatch(d, ctx);
    } else if (!strcmp(mode, "ddp")) {
        ddp(d, ctx);
    } else if (!strcmp(mode, "threads")) {
        threads(d);
    } else if (!strcmp(mode, "die")) {
        if (rank == 1)
            _exit(3);   /* an error exit, without finalizing */
        em_tensor *t = em_ones(ctx, EM_F32, EM_SHAPE(256));
        em_dist_all_reduce_(d, t, EM_REDUCE_SUM);
        fprintf(stderr, "rank %d: the all-reduce returned (mpirun should have ended the job)\n",
                rank);
        failures++;
    } else if (!strcmp(mode, "hang")) {
        if (rank == 1)
            sleep(60);
        em_tensor *t = em_ones(ctx, EM_F32, EM_SHAPE(256));
        em_dist_all_reduce_(d, t, EM_REDUCE_SUM);
        fprintf(stderr, "rank %d: the all-reduce returned (it should have ended the job)\n", rank);
        failures++;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        failures++;
    }
    em_scope_end(ctx);
    em_context_free(ctx);
    em_dist_finalize(d);
    em_dist *late;
    if (em_dist_init(&late, NULL) != EM_ERR_INVALID ||
        !strstr(em_last_error(), "cannot be initialised again")) {
        fprintf(stderr, "rank %d: init after finalize: %s\n", rank, em_last_error());
        failures++;
    }
    if (!failures)
        printf("rank %d: ok %s (world %d)\n", rank, mode, world);
    return failures ? 1 : 0;
}
