/* tests/test_faults.c — allocation-failure injection. For N = 1, 2, ... the Nth host or
 * device allocation from now fails (core/alloc.c; plugins allocate through the host table,
 * device buffers through the core's cache), while one of these runs:
 *   a seed training step (forward, backward, update) on a live context,
 *   printing a tensor, parsing a device.ini, creating a context (config + loader + plugin +
 *   device), scanning the plugin registry.
 * Each run must either succeed or return an error status with a message; the context must
 * stay usable afterwards; N grows until the run succeeds. Leaks are caught by the ASan/LSan
 * build of `make check` (CI) and by the device-memory accounting checked here. */
#include "backend_harness.h"

#include <ember/info.h>

/* Exported by libember for tests only (not in a public header). */
void em__test_fail_alloc_after(long n);

#define MAX_N 5000

typedef struct seed_net {
    em_tensor *x, *y, *w1, *w2;
} seed_net;

static void net_init(seed_net *n)
{
    em_manual_seed(g_ctx, 11);
    n->x = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(16, 40)));
    n->y = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(16, 5)));
    n->w1 = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(40, 12)));
    n->w2 = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(12, 5)));
    em_tensor_set_requires_grad(n->w1, true);
    em_tensor_set_requires_grad(n->w2, true);
    assert_ok_ctx();
}

static void net_free(seed_net *n)
{
    em_tensor_free(n->x);
    em_tensor_free(n->y);
    em_tensor_free(n->w1);
    em_tensor_free(n->w2);
}

/* One training step; returns the first error status of the step (EM_OK if none). */
static em_status net_step(seed_net *n, double *loss_out)
{
    em_scope_begin(g_ctx);
    em_tensor *loss = em_sum(em_pow(em_sub(em_mm(em_clamp(em_mm(n->x, n->w1), 0, INFINITY), n->w2), n->y), 2));
    double l = em_item(loss);
    em_backward(loss);
    em_no_grad_begin(g_ctx);
    em_sub_(n->w1, em_mul_scalar(em_grad(n->w1), 1e-4));
    em_sub_(n->w2, em_mul_scalar(em_grad(n->w2), 1e-4));
    em_tensor_zero_grad(n->w1);
    em_tensor_zero_grad(n->w2);
    em_no_grad_end(g_ctx);
    em_scope_end(g_ctx);
    if (loss_out)
        *loss_out = l;
    return em_context_status(g_ctx);
}

static void test_training_step_faults(void **state)
{
    (void)state;
    seed_net net;
    net_init(&net);
    /* warm up: buffers cached, pools filled */
    for (int i = 0; i < 3; i++)
        assert_int_equal(net_step(&net, NULL), EM_OK);
    size_t baseline = em_context_memory_in_use(g_ctx);
    int failures = 0, n;
    for (n = 1; n <= MAX_N; n++) {
        em_context_clear_error(g_ctx);
        em__test_fail_alloc_after(n);
        em_status st = net_step(&net, NULL);
        em__test_fail_alloc_after(0);
        if (st == EM_OK)
            break;
        failures++;
        const char *msg = em_context_error(g_ctx);
        if (!msg || !*msg)
            fail_msg("N=%d: status %s without a message", n, em_status_name(st));
        em_context_clear_error(g_ctx);
        /* nothing held beyond the step: device memory back to the baseline */
        if (em_context_memory_in_use(g_ctx) != baseline)
            fail_msg("N=%d: %zu bytes of device memory in use after a failed step, %zu before",
                     n, em_context_memory_in_use(g_ctx), baseline);
        /* the context still works: a clean step succeeds */
        double l;
        if (net_step(&net, &l) != EM_OK || !isfinite(l))
            fail_msg("N=%d: the context is not usable after the failure: %s", n, em_context_error(g_ctx));
    }
    print_message("# training step: %d injected failures handled, succeeded at N=%d\n", failures, n);
    assert_true(n <= MAX_N);
    assert_true(failures > 0);
    net_free(&net);
}

static void test_print_faults(void **state)
{
    (void)state;
    em_tensor *t = em_randn(g_ctx, EM_F64, EM_SHAPE(30, 40));
    int n;
    for (n = 1; n <= MAX_N; n++) {
        em_context_clear_error(g_ctx);
        em__test_fail_alloc_after(n);
        char *s = em_tensor_str(t);
        em__test_fail_alloc_after(0);
        if (s) {
            free(s);
            break;
        }
        assert_int_not_equal(em_context_status(g_ctx), EM_OK);
        assert_true(strlen(em_context_error(g_ctx)) > 0);
    }
    assert_true(n > 1 && n <= MAX_N);
    em_context_clear_error(g_ctx);
}

static const char *ini_text =
    "; a device.ini with every section\n"
    "[device]\nbackend = cpu\nindex = 0\nfallback = cpu\nlog = warn\nop_fallback = cpu\n"
    "[backends]\npath = /nonexistent/a:/nonexistent/b\n"
    "[cpu]\nthreads = 1\n";

static void test_config_faults(void **state)
{
    (void)state;
    int n;
    for (n = 1; n <= MAX_N; n++) {
        em__test_fail_alloc_after(n);
        em_config *cfg = em_config_create();
        em_status st = cfg ? em_config_load_string(cfg, ini_text, "faults.ini") : EM_ERR_OOM;
        em__test_fail_alloc_after(0);
        em_config_free(cfg);
        if (st == EM_OK && cfg)
            break;
        assert_true(st == EM_ERR_OOM);
    }
    assert_true(n > 1 && n <= MAX_N);
}

static void test_context_create_faults(void **state)
{
    (void)state;
    em_config *cfg = test_config(test_backend_name());
    em_config_set(cfg, "device", "log", "error");
    int n, failures = 0;
    for (n = 1; n <= MAX_N; n++) {
        em_context *ctx = NULL;
        em__test_fail_alloc_after(n);
        em_status st = em_context_create_with(&ctx, cfg);
        em__test_fail_alloc_after(0);
        if (st == EM_OK) {
            assert_non_null(ctx);
            /* a context made right after the failures works */
            em_tensor *t = em_ones(ctx, EM_F32, EM_SHAPE(3));
            assert_true(em_item(em_sum(t)) == 3);
            em_context_free(ctx);
            break;
        }
        failures++;
        assert_null(ctx);
        if (!strlen(em_last_error()))
            fail_msg("N=%d: context creation failed (%s) without a message", n, em_status_name(st));
    }
    print_message("# context creation: %d injected failures handled, succeeded at N=%d\n", failures, n);
    assert_true(failures > 0 && n <= MAX_N);
    em_config_free(cfg);
}

static void test_registry_faults(void **state)
{
    (void)state;
    em_config *cfg = test_config(test_backend_name());
    /* the stage every plugin reaches without injected failures (a plugin without a device,
     * e.g. cuda on a machine without a GPU, normally stops at 'devices') */
    em_registry *base = NULL;
    assert_int_equal(em_registry_scan(cfg, &base), EM_OK);
    int n;
    for (n = 1; n <= MAX_N; n++) {
        em_registry *reg = NULL;
        em__test_fail_alloc_after(n);
        em_status st = em_registry_scan(cfg, &reg);
        em__test_fail_alloc_after(0);
        if (st == EM_OK) {
            /* a scan may also succeed with a plugin that failed inside: it must say so */
            bool as_normal = em_registry_plugin_count(reg) == em_registry_plugin_count(base);
            for (int i = 0; as_normal && i < em_registry_plugin_count(reg); i++) {
                const em_plugin_info *p = em_registry_plugin(reg, i);
                if (p->stage != em_registry_plugin(base, i)->stage) {
                    as_normal = false;
                    assert_true(p->message && *p->message);
                }
            }
            em_registry_free(reg);
            if (as_normal)
                break;
            continue;
        }
        assert_null(reg);
        assert_true(strlen(em_last_error()) > 0);
    }
    assert_true(n <= MAX_N);
    em_registry_free(base);
    em_config_free(cfg);
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_training_step_faults), EM_TEST(test_print_faults),
        EM_TEST(test_config_faults),        EM_TEST(test_context_create_faults),
        EM_TEST(test_registry_faults),
    };
    rc = _cmocka_run_group_tests("allocation failures", tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
