/* examples/fashion_common.c — what the Fashion-MNIST examples share (fashion_mnist.c, an MLP;
 * fashion_cnn.c, a CNN): the command line, reading the IDX files, the training loop with
 * Adam (lr 1e-3) on mini-batches of 128 shuffled each epoch, one line per epoch (train loss,
 * test accuracy, seconds, samples/s), the progress bar on a terminal, the test pass, and the
 * checkpoint after every epoch (the model as PyTorch's state_dict, Adam's state) with
 * --resume continuing exactly as if the run had not stopped. Each example gives its model
 * and the shape its images take (fashion_common.h).
 *
 * --distributed: data-parallel over the processes of an MPI job (`mpirun -np 2 fashion_mnist
 * --distributed`, <ember/dist.h>): every global batch of 128 is split over the ranks (64 + 64
 * on two), each rank sums its slice's loss, and the gradients and sample counts are summed
 * over the ranks in buckets and divided by the global count, so the run follows the
 * single-process one up to float summation order. Rank 0 prints and writes the checkpoint;
 * the test set is evaluated in shards. Each epoch line then also gives the gradient sync's
 * share of a step (bytes moved per step, microseconds in the collectives vs the rest). */
#include "fashion_common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define DATA_PACKAGE "dataset-fashion-mnist"
enum { BATCH = 128, EVAL_BATCH = 1000 };

typedef struct options {
    const char *data, *prefix;
    int epochs;
    uint64_t seed;
    bool resume, quiet, seed_given, distributed;
    int64_t train_limit, test_limit;   /* 0: all */
} options;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const fashion_recipe *g_r;   /* the running example's recipe (names its messages) */

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--data DIR] [--epochs N] [--seed S] [--checkpoint PREFIX] [--resume]\n"
            "       [--train-limit N] [--test-limit N] [--quiet] [--distributed]\n", argv0);
    return 2;
}

/* A non-negative integer argument, whole string, or -1. */
static long long count_arg(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return (errno || end == s || *end || v < 0) ? -1 : v;
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){.data = DEFAULT_DATA, .prefix = g_r->name, .epochs = 10, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n = v ? count_arg(v) : -1;
        if (!strcmp(a, "--resume"))
            o->resume = true;
        else if (!strcmp(a, "--quiet"))
            o->quiet = true;
        else if (!strcmp(a, "--distributed"))
            o->distributed = true;
        else if (!strcmp(a, "--data") && v)
            o->data = v, i++;
        else if (!strcmp(a, "--checkpoint") && v)
            o->prefix = v, i++;
        else if (!strcmp(a, "--epochs") && n >= 0 && n < 1000000)
            o->epochs = (int)n, i++;
        else if (!strcmp(a, "--seed") && n >= 0)
            o->seed = (uint64_t)n, o->seed_given = true, i++;
        else if (!strcmp(a, "--train-limit") && n >= 0)
            o->train_limit = n, i++;
        else if (!strcmp(a, "--test-limit") && n >= 0)
            o->test_limit = n, i++;
        else
            return usage(argv[0]);
    }
    return 0;
}

/* images (N, 28, 28) u8 -> (N, 784) or (N, 1, 28, 28) f32 in [0, 1] (torchvision's ToTensor,
 * flattened or not, as the recipe says); labels -> i64.
 * limit > 0 keeps the first `limit` samples. Returns false with the error in ctx. */
static bool load_split(em_context *ctx, const char *dir, const char *split, int64_t limit,
                       em_tensor **x, em_tensor **y, bool *reported)
{
    char ipath[4096], lpath[4096];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    const char *missing = access(ipath, R_OK) != 0 ? ipath : access(lpath, R_OK) != 0 ? lpath : NULL;
    if (missing) {
        int err = errno;
        fprintf(stderr,
                "%s: cannot read %s: %s\n"
                "  Fashion-MNIST comes in Debian's package " DATA_PACKAGE "\n"
                "  (apt-get install " DATA_PACKAGE "), under " DEFAULT_DATA ";\n"
                "  or point --data at a directory holding %s-images-idx3-ubyte.gz and\n"
                "  %s-labels-idx1-ubyte.gz.\n",
                g_r->name, missing, strerror(err), split, split);
        *reported = true;
        return false;
    }
    em_scope_begin(ctx);
    em_tensor *img = em_read_idx(ctx, ipath, EM_F32);
    em_tensor *lab = em_read_idx(ctx, lpath, EM_I64);
    em_div_scalar_(img, 255.0);   /* in place: no second copy of the images */
    if (img && lab && limit > 0 && limit < em_tensor_shape(img)[0]) {
        img = em_narrow(img, 0, 0, limit);
        lab = em_narrow(lab, 0, 0, limit);
    }
    int64_t n = img ? em_tensor_shape(img)[0] : 0;
    *x = em_tensor_keep(em_contiguous(g_r->images_nchw ? em_reshape(img, EM_SHAPE(n, 1, 28, 28))
                                                       : em_reshape(img, EM_SHAPE(n, 28 * 28))));
    *y = em_tensor_keep(em_contiguous(lab));
    em_scope_end(ctx);
    return em_context_status(ctx) == EM_OK;
}

/* Test accuracy in eval mode without grad, in batches; with a process group, each rank
 * scores its contiguous shard and the counts are summed. */
static double evaluate(em_module *net, em_tensor *x, em_tensor *y, em_dist *d)
{
    em_context *ctx = em_tensor_context(x);
    int64_t n = em_tensor_shape(x)[0], right = 0;
    int rank = d ? em_dist_rank(d) : 0, world = d ? em_dist_world_size(d) : 1;
    int64_t lo = n * rank / world, hi = n * (rank + 1) / world;
    em_module_train(net, false);
    em_no_grad_begin(ctx);
    for (int64_t s = lo; s < hi; s += EVAL_BATCH) {
        int64_t len = hi - s < EVAL_BATCH ? hi - s : EVAL_BATCH;
        em_scope_begin(ctx);
        em_tensor *logits = em_module_forward(net, em_narrow(x, 0, s, len));
        right += em_item_i64(em_sum(em_eq(em_argmax(logits, 1, false), em_narrow(y, 0, s, len))));
        em_scope_end(ctx);
    }
    em_no_grad_end(ctx);
    em_module_train(net, true);
    if (d) {
        em_tensor *r = em_tensor_from_data(ctx, EM_I64, EM_SHAPE(1), &right);
        if (em_dist_all_reduce_(d, r, EM_REDUCE_SUM) == EM_OK)
            right = em_item_i64(r);
        em_tensor_free(r);
    }
    return n ? (double)right / (double)n : 0.0;
}

/* The bar redrawn in place on a terminal: "epoch 3 [=======>      ]  52%  loss 0.3312". */
static void progress(int epoch, int64_t done, int64_t total, double loss)
{
    enum { WIDTH = 30 };
    int fill = (int)(WIDTH * done / total);
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[WIDTH] = '\0';
    printf("\r\033[Kepoch %d [%s] %3d%%  loss %.4f", epoch, bar, (int)(100 * done / total), loss);
    fflush(stdout);
}

static void checkpoint_paths(const char *prefix, char *model, char *optim, size_t n)
{
    snprintf(model, n, "%s-model.safetensors", prefix);
    snprintf(optim, n, "%s-optim.safetensors", prefix);
}

/* A checkpoint file's "epoch" and "seed" (its __metadata__); false when either is missing. */
static bool checkpoint_meta(em_context *ctx, const char *path, long long *epoch,
                            long long *seed, bool *reported)
{
    em_safetensors *st;
    if (em_safetensors_open(ctx, path, &st) != EM_OK)
        return false;
    const char *e = em_safetensors_metadata(st, "epoch"), *s = em_safetensors_metadata(st, "seed");
    *epoch = e ? count_arg(e) : -1;
    *seed = s ? count_arg(s) : -1;
    em_safetensors_close(st);
    if (*epoch < 0 || *seed < 0) {
        fprintf(stderr, "%s: %s: no \"%s\" in its __metadata__: not written by this "
                "program\n", g_r->name, path, *epoch < 0 ? "epoch" : "seed");
        *reported = true;
        return false;
    }
    return true;
}

/* Model and optimiser after `epoch` epochs; both carry the epoch and the seed, so a resume
 * can tell a matching pair (a crash between the two writes leaves the older optimiser file,
 * and the epochs then disagree). Each write is atomic. */
static bool save_checkpoint(const options *o, em_module *net, em_optim *opt, int epoch)
{
    char model[4096], optim[4096], e[32], s[32];
    checkpoint_paths(o->prefix, model, optim, sizeof model);
    snprintf(e, sizeof e, "%d", epoch);
    snprintf(s, sizeof s, "%" PRIu64, o->seed);
    const char *meta[] = {"epoch", e, "seed", s, "recipe", g_r->recipe, NULL};
    return em_module_save(net, model, meta) == EM_OK && em_optim_save(opt, optim, meta) == EM_OK;
}

/* Loads both files into net and opt. Returns the epoch they were written after, or -1.
 * The data order of an epoch follows from the seed, so the run continues with the
 * checkpoint's seed (a different --seed given explicitly is an error). */
static int load_checkpoint(em_context *ctx, options *o, em_module *net, em_optim *opt,
                           bool *reported)
{
    char model[4096], optim[4096];
    checkpoint_paths(o->prefix, model, optim, sizeof model);
    long long em, eo, sm, so;
    if (!checkpoint_meta(ctx, model, &em, &sm, reported) ||
        !checkpoint_meta(ctx, optim, &eo, &so, reported))
        return -1;
    if (em != eo || sm != so) {
        fprintf(stderr, "%s: %s (epoch %lld, seed %lld) and %s (epoch %lld, seed "
                "%lld) are not one checkpoint\n", g_r->name, model, em, sm, optim, eo, so);
        *reported = true;
        return -1;
    }
    if (o->seed_given && (uint64_t)sm != o->seed) {
        fprintf(stderr, "%s: %s was trained with --seed %lld, not %" PRIu64 ": an "
                "exact resume needs the same data order\n", g_r->name, model, sm, o->seed);
        *reported = true;
        return -1;
    }
    o->seed = (uint64_t)sm;
    if (em_module_load(net, model) != EM_OK || em_optim_load(opt, optim) != EM_OK)
        return -1;
    return (int)em;
}

int fashion_main(int argc, char **argv, const fashion_recipe *r)
{
    g_r = r;
    options o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    em_dist *dist = NULL;
    int rank = 0, world = 1;
    if (o.distributed) {
        if (em_dist_init(&dist, NULL) != EM_OK) {
            fprintf(stderr, "%s: %s\n", r->name, em_last_error());
            return 1;
        }
        rank = em_dist_rank(dist);
        world = em_dist_world_size(dist);
        if (rank != 0 && !freopen("/dev/null", "w", stdout))
            return 1;   /* rank 0 speaks for the job */
    }
    em_context *ctx;
    if (em_context_create(&ctx, NULL) != EM_OK) {
        fprintf(stderr, "%s: %s\n", r->name, em_last_error());
        em_dist_finalize(dist);
        return 1;
    }
    em_manual_seed(ctx, o.seed);
    bool tty = !o.quiet && isatty(STDOUT_FILENO);

    em_tensor *xtr = NULL, *ytr = NULL, *xte = NULL, *yte = NULL;
    em_module *net = NULL;
    em_optim *opt = NULL;
    em_batches *batches = NULL;
    em_ddp *ddp = NULL;
    rc = 1;
    bool reported = false;   /* a message already printed */
    if (!load_split(ctx, o.data, "train", o.train_limit, &xtr, &ytr, &reported) ||
        !load_split(ctx, o.data, "t10k", o.test_limit, &xte, &yte, &reported))
        goto out;
    em_context_empty_cache(ctx);   /* the decoding's temporaries: keep the peak RSS down */

    net = r->model(ctx);
    if (!net)
        goto out;
    em_tensor *params[16];
    int np = em_module_parameters(net, NULL, params, 16);
    em_adam_options ao = em_adam_defaults();   /* lr 1e-3, betas (0.9, 0.999), eps 1e-8 */
    opt = em_optim_adam(params, np, &ao);
    if (!opt)
        goto out;
    int first = 0;
    if (o.resume) {
        first = load_checkpoint(ctx, &o, net, opt, &reported);
        if (first < 0)
            goto out;
        printf("resumed from %s-{model,optim}.safetensors after epoch %d\n", o.prefix, first);
    }
    /* shuffled each epoch in an order drawn from (seed, epoch): the same on every backend */
    if (dist) {
        /* each rank its slice of every global batch; rank 0's parameters everywhere */
        batches = em_dist_batches_create(dist, (em_tensor *[]){xtr, ytr}, 2, BATCH, true, o.seed,
                                         false);
        ddp = em_ddp_create(dist, params, np, NULL);
        if (!ddp)
            goto out;
    } else {
        batches = em_batches_create((em_tensor *[]){xtr, ytr}, 2, BATCH, true, o.seed, false);
    }
    if (!batches)
        goto out;
    int64_t ntrain = em_tensor_shape(xtr)[0], nbatch = em_batches_count(batches);
    printf("device %s (%s), %" PRId64 " training and %" PRId64 " test samples, seed %" PRIu64 "\n",
           em_context_backend(ctx), em_context_device_name(ctx), ntrain, em_tensor_shape(yte)[0],
           o.seed);
    if (dist)
        printf("distributed: %d processes (%s, %s), global batch %d split over them\n", world,
               em_dist_backend(dist), em_dist_backend_version(dist), BATCH);
    em_class_loss_options sum_loss = em_class_loss_defaults();
    sum_loss.reduction = EM_REDUCTION_SUM;

    for (int epoch = first; epoch < o.epochs; epoch++) {
        double t0 = now();
        em_ddp_stats s0 = {.struct_size = sizeof s0};
        if (ddp)
            em_ddp_get_stats(ddp, &s0);
        em_batches_epoch(batches, epoch);
        /* the loss summed on the device (read once per epoch, or per bar update) */
        em_tensor *loss_sum = em_zeros(ctx, EM_F32, EM_SCALAR_SHAPE);
        int64_t b = 0;
        em_tensor *xy[2];
        for (em_scope_begin(ctx); em_batches_next(batches, xy); em_scope_begin(ctx)) {
            em_tensor *loss;
            if (ddp) {
                /* this rank's sum; gradients and counts summed over ranks, then / count */
                int64_t local = em_tensor_shape(xy[0])[0], global = 0;
                loss = em_cross_entropy_ex(em_module_forward(net, xy[0]), xy[1], &sum_loss);
                if (em_backward(loss) == EM_OK &&
                    em_ddp_sync_mean(ddp, local, &global) == EM_OK &&
                    em_optim_step(opt) == EM_OK)
                    em_optim_zero_grad(opt, true);
                loss = em_div_scalar(loss, (double)(global ? global : 1));   /* its share */
            } else {
                loss = em_cross_entropy(em_module_forward(net, xy[0]), xy[1]);
                if (em_backward(loss) == EM_OK && em_optim_step(opt) == EM_OK)
                    em_optim_zero_grad(opt, true);
            }
            em_no_grad_begin(ctx);
            em_add_(loss_sum, loss);
            em_no_grad_end(ctx);
            em_scope_end(ctx);
            if (em_context_status(ctx) != EM_OK)
                break;
            b++;
            if (tty && (b % 20 == 0 || b == nbatch))
                progress(epoch + 1, b, nbatch, em_item(loss_sum) / (double)b);
        }
        em_scope_end(ctx);
        if (dist)   /* the ranks' shares of each batch's mean add up to that mean */
            em_dist_all_reduce_(dist, loss_sum, EM_REDUCE_SUM);
        double mean_loss = em_item(loss_sum) / (double)(b ? b : 1);
        em_tensor_free(loss_sum);
        if (em_context_status(ctx) != EM_OK)
            goto out;
        double train_secs = now() - t0;
        double acc = evaluate(net, xte, yte, dist);
        double secs = now() - t0;
        if (em_context_status(ctx) != EM_OK)
            goto out;
        if (tty)
            printf("\r\033[K");
        printf("epoch %2d  loss %.4f  test accuracy %.4f  %.2f s  %.0f samples/s\n", epoch + 1,
               mean_loss, acc, secs, (double)ntrain / secs);
        if (ddp) {
            em_ddp_stats s1 = {.struct_size = sizeof s1};
            em_ddp_get_stats(ddp, &s1);
            double steps = (double)(s1.syncs - s0.syncs), sync = s1.seconds - s0.seconds;
            if (steps > 0)
                printf("  per step: gradient sync %.0f us (%d bucket%s, %llu bytes per rank), "
                       "compute %.0f us\n", 1e6 * sync / steps, s1.buckets,
                       s1.buckets == 1 ? "" : "s", (unsigned long long)s1.bucket_bytes,
                       1e6 * (train_secs - sync) / steps);
        }
        if (rank == 0 && !save_checkpoint(&o, net, opt, epoch + 1))
            goto out;
    }
    rc = 0;
out:
    if (rc && !reported)
        fprintf(stderr, "%s: %s\n", r->name, em_context_status(ctx) != EM_OK
                                              ? em_context_error(ctx) : em_last_error());
    em_batches_free(batches);
    em_ddp_free(ddp);
    em_optim_free(opt);
    em_module_free(net);
    em_tensor_free(xtr);
    em_tensor_free(ytr);
    em_tensor_free(xte);
    em_tensor_free(yte);
    em_context_free(ctx);
    em_dist_finalize(dist);
    return rc;
}
