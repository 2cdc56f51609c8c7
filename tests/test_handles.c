/* tests/test_handles.c — tensor handles cannot be misused. A handle is a slot index plus a
 * generation (core/tensor/handle.c): a handle that was freed, released by its scope, or belongs to a
 * freed context must be reported as EM_ERR_FREED — never act on the tensor that now lives in
 * the reused slot. Also the rule for objects holding tensors when their context goes first
 * (the optimizer): every call reports EM_ERR_FREED, and freeing it touches nothing of the
 * context. Run under ASan/UBSan in CI, where a use-after-free would abort. */
#include "backend_harness.h"

#include <pthread.h>

static bool all_equal(em_tensor *t, double v)
{
    double *d = to_doubles(t);
    bool ok = true;
    for (int64_t i = 0; i < em_tensor_numel(t); i++)
        ok = ok && d[i] == v;
    free(d);
    return ok;
}

/* The reported case: free a, make b (which may take a's old place), write through a. */
static void test_freed_handle_does_not_reach_new_tensor(void **state)
{
    (void)state;
    em_tensor *a = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(4, 4)));
    em_tensor_free(a);
    em_tensor *b = em_tensor_keep(em_zeros(g_ctx, EM_F32, EM_SHAPE(4, 4)));
    assert_int_equal(em_add_scalar_(a, 5), EM_ERR_FREED);
    assert_int_equal(em_context_status(g_ctx), EM_ERR_FREED);
    assert_non_null(strstr(em_context_error(g_ctx), "used after em_tensor_free"));
    em_context_clear_error(g_ctx);
    assert_true(all_equal(b, 0));
    /* every entry point, not only in-place ops */
    assert_null(em_add(a, b));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_FREED);
    em_context_clear_error(g_ctx);
    assert_int_equal(em_tensor_numel(a), 0);
    assert_int_equal(em_tensor_ndim(a), -1);
    assert_null(em_tensor_context(a));
    assert_true(isnan(em_item(a)));
    assert_int_equal(em_backward(a), EM_ERR_FREED);
    em_context_clear_error(g_ctx);
    /* a second free of a must not free b */
    em_tensor_free(a);
    em_context_clear_error(g_ctx);
    assert_int_equal(em_tensor_numel(b), 16);
    assert_true(all_equal(b, 0));
    em_tensor_free(b);
}

static void test_scope_end_invalidates(void **state)
{
    (void)state;
    em_scope_begin(g_ctx);
    em_tensor *a = em_randn(g_ctx, EM_F32, EM_SHAPE(3));
    em_scope_end(g_ctx);
    em_tensor *b = em_tensor_keep(em_ones(g_ctx, EM_F32, EM_SHAPE(3)));
    assert_int_equal(em_mul_scalar_(a, 7), EM_ERR_FREED);
    em_context_clear_error(g_ctx);
    assert_true(all_equal(b, 1));
    em_tensor_free(a);   /* releases nothing */
    em_context_clear_error(g_ctx);
    assert_true(all_equal(b, 1));
    em_tensor_free(b);
}

/* Two handles of one tensor are independent: freeing one leaves the other valid. */
static void test_handles_are_independent(void **state)
{
    (void)state;
    em_tensor *b = em_tensor_keep(em_full(g_ctx, EM_F32, EM_SHAPE(2, 3), 2.0));
    em_tensor *c = em_tensor_keep(em_contiguous(b));
    assert_ptr_not_equal(b, c);
    em_tensor_free(c);
    assert_true(all_equal(b, 2));

    em_tensor *w = em_tensor_keep(em_ones(g_ctx, EM_F32, EM_SHAPE(3)));
    em_tensor_set_requires_grad(w, true);
    assert_int_equal(em_backward(em_sum(em_mul_scalar(w, 3))), EM_OK);
    em_tensor *g1 = em_tensor_keep(em_grad(w)), *g2 = em_tensor_keep(em_grad(w));
    assert_ptr_not_equal(g1, g2);
    em_tensor_free(g1);
    assert_true(all_equal(g2, 3));
    em_tensor_free(g1);   /* double free of one handle: reported, harmless */
    assert_int_equal(em_context_status(g_ctx), EM_ERR_FREED);
    em_context_clear_error(g_ctx);
    assert_true(all_equal(g2, 3));
    em_tensor *g3 = em_grad(w);
    assert_true(all_equal(g3, 3));
    em_tensor_free(g2);
    em_tensor_free(w);
    em_tensor_free(b);
    assert_ok_ctx();
}

/* A handle stays stale however often its slot is reused afterwards. */
static void test_reuse_many_times(void **state)
{
    (void)state;
    em_tensor *stale = em_tensor_keep(em_zeros(g_ctx, EM_F32, EM_SHAPE(1)));
    em_tensor_free(stale);
    for (int i = 0; i < 20000; i++) {
        em_scope_begin(g_ctx);
        em_tensor *t = em_ones(g_ctx, EM_F32, EM_SHAPE(1));
        em_tensor *u = em_add(t, t);
        (void)u;
        em_scope_end(g_ctx);
    }
    assert_ok_ctx();
    assert_int_equal(em_fill_(stale, 1), EM_ERR_FREED);
    em_context_clear_error(g_ctx);
}

/* Tens of thousands of live handles at once (several batches of slots), then all freed. */
static void test_many_live_handles(void **state)
{
    (void)state;
    enum { N = 30000 };
    em_tensor **h = malloc(sizeof *h * N);
    for (int i = 0; i < N; i++)
        h[i] = em_tensor_keep(em_scalar(g_ctx, EM_F32, (double)i));
    assert_ok_ctx();
    assert_true(em_item(h[12345]) == 12345.0);
    for (int i = 0; i < N; i += 2)
        em_tensor_free(h[i]);
    assert_true(em_item(h[12345]) == 12345.0);
    assert_true(isnan(em_item(h[12344])));
    em_context_clear_error(g_ctx);
    for (int i = 1; i < N; i += 2)
        em_tensor_free(h[i]);
    free(h);
    assert_ok_ctx();
}

/* Not a handle at all: reported, nothing read or written. */
static void test_garbage_handle(void **state)
{
    (void)state;
    em_tensor *junk = (em_tensor *)(uintptr_t)0x12345678u;
    assert_int_equal(em_tensor_numel(junk), 0);
    assert_int_equal(em_add_scalar_(junk, 1), EM_ERR_FREED);
    assert_non_null(strstr(em_last_error(), "not a live ember tensor"));
    int x = 0;
    assert_int_equal(em_tensor_ndim((em_tensor *)(void *)&x), -1);
    em_context_clear_error(g_ctx);
}

/* Handles of a freed context are stale; errors about them do not land in another
 * context that took over their slots. */
static void test_context_free_invalidates(void **state)
{
    (void)state;
    char why[1024];
    em_context *c1 = test_open("cpu", why, sizeof why);
    assert_non_null(c1);
    em_tensor *a = em_randn(c1, EM_F32, EM_SHAPE(5));
    em_tensor *kept = em_tensor_keep(em_ones(c1, EM_F32, EM_SHAPE(5)));
    em_context_free(c1);
    em_context *c2 = test_open("cpu", why, sizeof why);
    assert_non_null(c2);
    em_tensor *b = em_tensor_keep(em_zeros(c2, EM_F32, EM_SHAPE(5)));
    assert_int_equal(em_tensor_numel(a), 0);
    assert_int_equal(em_add_scalar_(a, 1), EM_ERR_FREED);
    assert_non_null(strstr(em_last_error(), "context was freed"));
    assert_int_equal(em_add_(kept, b), EM_ERR_FREED);
    assert_int_equal(em_context_status(c2), EM_OK);
    em_tensor_free(kept);   /* quietly nothing */
    float v[5];
    assert_int_equal(em_tensor_to_host(b, v, sizeof v), EM_OK);
    for (int i = 0; i < 5; i++)
        assert_true(v[i] == 0);
    em_context_free(c2);
}

/* The optimizer outlived its context: calls report EM_ERR_FREED and free is safe (ASan
 * would catch a read of the freed context or tensors). */
static void test_optimizer_after_context_free(void **state)
{
    (void)state;
    char why[1024];
    em_context *c = test_open("cpu", why, sizeof why);
    assert_non_null(c);
    em_tensor *w = em_randn(c, EM_F32, EM_SHAPE(4, 3));
    em_tensor_set_requires_grad(w, true);
    em_sgd *opt = em_sgd_create(&w, 1, &(em_sgd_options){.lr = 0.1, .momentum = 0.9});
    assert_non_null(opt);
    assert_int_equal(em_backward(em_sum(em_mul(w, w))), EM_OK);
    assert_int_equal(em_sgd_step(opt), EM_OK);
    em_tensor_free(w);   /* the optimizer keeps its own handle */
    assert_int_equal(em_sgd_step(opt), EM_OK);
    em_context_free(c);
    assert_int_equal(em_sgd_step(opt), EM_ERR_FREED);
    assert_int_equal(em_sgd_zero_grad(opt, false), EM_ERR_FREED);
    em_sgd_free(opt);
}

/* Handles allocated and released on two contexts in two threads at once (TSan). */
static void *churn(void *arg)
{
    (void)arg;
    char why[1024];
    em_context *c = test_open("cpu", why, sizeof why);
    if (!c)
        return (void *)1;
    for (int i = 0; i < 3000; i++) {
        em_scope_begin(c);
        em_tensor *t = em_ones(c, EM_F32, EM_SHAPE(2));
        for (int k = 0; k < 40; k++)
            t = em_add(t, t);
        em_scope_end(c);
    }
    void *bad = em_context_status(c) == EM_OK ? NULL : (void *)1;
    em_context_free(c);
    return bad;
}

static void test_threads_churn(void **state)
{
    (void)state;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, NULL), 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_freed_handle_does_not_reach_new_tensor),
        EM_TEST(test_scope_end_invalidates),
        EM_TEST(test_handles_are_independent),
        EM_TEST(test_reuse_many_times),
        EM_TEST(test_many_live_handles),
        EM_TEST(test_garbage_handle),
        EM_TEST(test_context_free_invalidates),
        EM_TEST(test_optimizer_after_context_free),
        EM_TEST(test_threads_churn),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
