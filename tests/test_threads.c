/* tests/test_threads.c — contexts are independent: two threads, each training the seed's
 * network on its own context, give bit-identical results to the same two runs one after the
 * other; errors stay in their own context and thread. CI also runs this under
 * ThreadSanitizer (the tsan build in .ci/run). Backend: EM_TEST_BACKEND. */
#include "backend_harness.h"

#include <pthread.h>

#define STEPS 60

typedef struct job {
    uint64_t seed;
    float w1[30 * 8];
    double losses[STEPS];
    em_status st;
    char err[256];
    bool provoke_error;
} job;

static void *train(void *arg)
{
    job *j = arg;
    char why[512];
    em_context *ctx = test_open(test_backend_name(), why, sizeof why);
    if (!ctx) {
        j->st = EM_ERR_NO_DEVICE;
        snprintf(j->err, sizeof j->err, "%s", why);
        return NULL;
    }
    em_manual_seed(ctx, j->seed);
    em_tensor *x = em_randn(ctx, EM_F32, EM_SHAPE(16, 30));
    em_tensor *y = em_randn(ctx, EM_F32, EM_SHAPE(16, 4));
    em_tensor *w1 = em_randn(ctx, EM_F32, EM_SHAPE(30, 8));
    em_tensor *w2 = em_randn(ctx, EM_F32, EM_SHAPE(8, 4));
    em_tensor_set_requires_grad(w1, true);
    em_tensor_set_requires_grad(w2, true);
    for (int t = 0; t < STEPS; t++) {
        em_scope_begin(ctx);
        em_tensor *loss = em_sum(em_pow(em_sub(em_mm(em_clamp(em_mm(x, w1), 0, INFINITY), w2), y), 2));
        j->losses[t] = em_item(loss);
        em_backward(loss);
        em_no_grad_begin(ctx);
        em_sub_(w1, em_mul_scalar(em_grad(w1), 1e-3));
        em_sub_(w2, em_mul_scalar(em_grad(w2), 1e-3));
        em_tensor_zero_grad(w1);
        em_tensor_zero_grad(w2);
        em_no_grad_end(ctx);
        if (j->provoke_error && t == STEPS / 2) {
            /* a shape error in this context must not disturb the other thread */
            em_add(x, y);
            if (em_context_status(ctx) != EM_ERR_SHAPE)
                j->st = EM_ERR_INTERNAL;
            em_context_clear_error(ctx);
        }
        em_scope_end(ctx);
    }
    em_tensor_to_host(w1, j->w1, sizeof j->w1);
    if (j->st == EM_OK)
        j->st = em_context_status(ctx);
    snprintf(j->err, sizeof j->err, "%s", em_context_error(ctx));
    em_context_free(ctx);
    return NULL;
}

static void test_two_threads_match_sequential(void **state)
{
    (void)state;
    job seq[2] = {{.seed = 1}, {.seed = 2, .provoke_error = true}};
    job par[2] = {{.seed = 1}, {.seed = 2, .provoke_error = true}};
    train(&seq[0]);
    train(&seq[1]);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, train, &par[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        if (seq[i].st != EM_OK || par[i].st != EM_OK)
            fail_msg("run %d: %s / %s", i, seq[i].err, par[i].err);
        assert_memory_equal(seq[i].losses, par[i].losses, sizeof seq[i].losses);
        assert_memory_equal(seq[i].w1, par[i].w1, sizeof seq[i].w1);
    }
    /* different seeds really gave different runs */
    assert_memory_not_equal(seq[0].losses, seq[1].losses, sizeof seq[0].losses);
}

static void *bad_create(void *arg)
{
    char *msg = arg;
    em_context *ctx;
    em_status st = em_context_create(&ctx, "/nonexistent/thread.ini");
    snprintf(msg, 256, "%s %s", em_status_name(st), em_last_error());
    return NULL;
}

static void test_last_error_is_per_thread(void **state)
{
    (void)state;
    char msg[256] = "";
    em_context *ctx;
    assert_int_equal(em_context_create(&ctx, "/nonexistent/main.ini"), EM_ERR_IO);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bad_create, msg), 0);
    pthread_join(th, NULL);
    assert_non_null(strstr(msg, "/nonexistent/thread.ini"));
    assert_non_null(strstr(em_last_error(), "/nonexistent/main.ini"));
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_threads_match_sequential),
        cmocka_unit_test(test_last_error_is_per_thread),
    };
    rc = _cmocka_run_group_tests("threads", tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
