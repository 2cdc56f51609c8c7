/* tests/test_fork.c — fork(): a child of a process whose cpu context has started its
 * worker threads can train a step (forward, backward, SGD step) on that context and free
 * it (the pool is rebuilt in the child: its workers existed only in the parent); a child
 * may also open a fresh context. A device context (opencl, cuda) inherited by a child
 * refuses work with EM_ERR_DEVICE and its free releases host memory only. Each child runs
 * under alarm(), so a hang fails the test instead of blocking it. Backend: EM_TEST_BACKEND. */
#include "backend_harness.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_TIMEOUT_S 30

static bool is_cpu(void) { return !strcmp(test_backend_name(), "cpu"); }

static em_config *cfg_threads(const char *threads)
{
    em_config *cfg = test_config(test_backend_name());
    if (is_cpu() && threads)
        em_config_set(cfg, "cpu", "threads", threads);
    return cfg;
}

/* One training step of a small two-layer network; returns the loss (NAN on error). */
static double train_step(em_context *ctx, em_tensor *w1, em_tensor *w2)
{
    em_scope_begin(ctx);
    em_tensor *x = em_randn(ctx, EM_F32, EM_SHAPE(64, 96));
    em_tensor *y = em_randn(ctx, EM_F32, EM_SHAPE(64, 4));
    em_tensor *loss = em_mse_loss(em_mm(em_relu(em_mm(x, w1)), w2), y, EM_REDUCTION_MEAN);
    double l = loss ? em_item(loss) : NAN;
    if (em_backward(loss) != EM_OK)
        l = NAN;
    em_scope_end(ctx);
    return l;
}

/* In a child: cmocka's handlers would catch a crash and go on running the suite there. */
static void child_defaults(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
    alarm(CHILD_TIMEOUT_S);
}

/* Runs fn in a child under alarm(); returns its exit status (-signal when killed). */
static int in_child(int (*fn)(em_context *), em_context *ctx)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_defaults();
        _exit(fn(ctx));
    }
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws);
}

/* A parent context with its worker threads started (a big mm runs on the pool). */
static em_context *parent_context(void)
{
    em_config *cfg = cfg_threads("4");
    em_context *ctx = NULL;
    assert_int_equal(em_context_create_with(&ctx, cfg), EM_OK);
    em_config_free(cfg);
    em_manual_seed(ctx, 7);
    em_scope_begin(ctx);
    em_tensor *a = em_randn(ctx, EM_F32, EM_SHAPE(256, 256));
    em_tensor *p = em_mm(a, a);
    assert_non_null(p);
    (void)em_item(em_sum(p));
    em_scope_end(ctx);
    assert_int_equal(em_context_status(ctx), EM_OK);
    return ctx;
}

static int child_trains_inherited(em_context *ctx)
{
    em_tensor *w1 = em_randn(ctx, EM_F32, EM_SHAPE(96, 128));
    em_tensor *w2 = em_randn(ctx, EM_F32, EM_SHAPE(128, 4));
    if (!w1 || !w2)
        return 10;
    em_tensor_set_requires_grad(w1, true);
    em_tensor_set_requires_grad(w2, true);
    em_tensor *params[2] = {w1, w2};
    em_sgd_options o = {.lr = 0.01};
    em_sgd *opt = em_sgd_create(params, 2, &o);
    if (!opt)
        return 11;
    double l0 = train_step(ctx, w1, w2);
    if (!isfinite(l0) || em_sgd_step(opt) != EM_OK)
        return 12;
    /* a big product again, after the step: the rebuilt pool runs it */
    em_scope_begin(ctx);
    em_tensor *a = em_randn(ctx, EM_F32, EM_SHAPE(256, 256));
    double s = em_item(em_sum(em_mm(a, a)));
    em_scope_end(ctx);
    if (!isfinite(s) || em_context_status(ctx) != EM_OK)
        return 13;
    em_sgd_free(opt);
    em_context_free(ctx);
    return 0;
}

static int child_frees_only(em_context *ctx)
{
    em_context_free(ctx);
    return 0;
}

/* A fresh cpu context in the child (a device driver initialised in the parent cannot be
 * initialised again in a child: PoCL, like CUDA, hangs or fails there). */
static int child_fresh_context(em_context *inherited)
{
    (void)inherited;
    em_config *cfg = test_config("cpu");
    em_config_set(cfg, "cpu", "threads", "3");
    em_context *ctx = NULL;
    em_status st = em_context_create_with(&ctx, cfg);
    em_config_free(cfg);
    if (st != EM_OK)
        return 20;
    em_tensor *w1 = em_randn(ctx, EM_F32, EM_SHAPE(96, 128));
    em_tensor *w2 = em_randn(ctx, EM_F32, EM_SHAPE(128, 4));
    em_tensor_set_requires_grad(w1, true);
    em_tensor_set_requires_grad(w2, true);
    if (!isfinite(train_step(ctx, w1, w2)))
        return 21;
    em_context_free(ctx);
    return 0;
}

/* A device context in the child: a clear refusal, and a free that makes no driver call. */
static int child_device_refuses(em_context *ctx)
{
    em_tensor *t = em_zeros(ctx, EM_F32, EM_SHAPE(4));
    if (t)
        return 30;
    if (em_context_status(ctx) != EM_ERR_DEVICE)
        return 31;
    const char *msg = em_context_error(ctx);
    if (!strstr(msg, "was created in process") || !strstr(msg, "cannot cross fork()")) {
        fprintf(stderr, "child: unexpected message: %s\n", msg);
        return 32;
    }
    em_context_free(ctx);
    return 0;
}

static void test_child_trains_and_frees(void **state)
{
    (void)state;
    em_context *ctx = parent_context();
    if (is_cpu()) {
        assert_int_equal(in_child(child_trains_inherited, ctx), 0);
    } else {
        assert_int_equal(in_child(child_device_refuses, ctx), 0);
    }
    assert_int_equal(in_child(child_frees_only, ctx), 0);
    assert_int_equal(in_child(child_fresh_context, ctx), 0);
    /* the parent's context is untouched by all this */
    em_tensor *w1 = em_randn(ctx, EM_F32, EM_SHAPE(96, 128));
    em_tensor *w2 = em_randn(ctx, EM_F32, EM_SHAPE(128, 4));
    em_tensor_set_requires_grad(w1, true);
    em_tensor_set_requires_grad(w2, true);
    assert_true(isfinite(train_step(ctx, w1, w2)));
    assert_int_equal(em_context_status(ctx), EM_OK);
    em_context_free(ctx);
}

/* Forking twice: a grandchild of a rebuilt pool rebuilds it again. */
static int child_forks_again(em_context *ctx)
{
    if (!is_cpu())
        return 0;
    em_scope_begin(ctx);
    em_tensor *a = em_randn(ctx, EM_F32, EM_SHAPE(256, 256));
    double s = em_item(em_sum(em_mm(a, a)));
    em_scope_end(ctx);
    if (!isfinite(s))
        return 40;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 41;
    if (pid == 0) {
        child_defaults();
        _exit(child_trains_inherited(ctx));
    }
    int ws = 0;
    if (waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        return 42;
    em_context_free(ctx);
    return 0;
}

static void test_grandchild(void **state)
{
    (void)state;
    em_context *ctx = parent_context();
    assert_int_equal(in_child(child_forks_again, ctx), 0);
    em_context_free(ctx);
}

int main(void)
{
    int r = test_backend_setup();
    if (r >= 0)
        return r;
    em_context_free(g_ctx);
    g_ctx = NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_trains_and_frees),
        cmocka_unit_test(test_grandchild),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
