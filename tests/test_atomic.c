/* tests/test_atomic.c — failures are all-or-nothing. A device fault is injected at the Nth
 * kernel call or host<->device copy (core/alloc.c's EMBER_FAIL_KERNEL hook), and an
 * allocation failure at the Nth allocation, for every N until the call gets through:
 *   - a failed backward leaves every .grad bit for bit as it was, and the graph usable;
 *   - a failed optimizer step leaves parameters and optimizer state as they were: retried,
 *     it gives the bits a fault-free step gives;
 *   - a training loop that skips a failed step ends with the weights of a loop that never
 *     ran that step;
 *   - a failed in-place op leaves its destination and its history unchanged;
 *   - a failed zero_grad zeroes all grads or none. */
#include "backend_harness.h"

void em__test_fail_kernel_after(long n);
void em__test_fail_alloc_after(long n);
void em__test_optim_composed(int on);

#define MAX_N 400

/* ---- bytes of a tensor, for bit-for-bit comparisons ---- */

typedef struct snap {
    bool none;
    size_t n;
    unsigned char *b;
} snap;

static snap take(em_tensor *t)
{
    snap s = {.none = t == NULL};
    if (!t)
        return s;
    s.n = (size_t)em_tensor_numel(t) * em_dtype_size(em_tensor_dtype(t));
    s.b = malloc(s.n ? s.n : 1);
    assert_int_equal(em_tensor_to_host(t, s.b, s.n), EM_OK);
    return s;
}

static snap take_grad(em_tensor *t)
{
    em_scope_begin(g_ctx);
    snap s = take(em_grad(t));
    em_scope_end(g_ctx);
    return s;
}

static bool same(snap a, snap b)
{
    return a.none == b.none && a.n == b.n && (a.none || !memcmp(a.b, b.b, a.n));
}

static void drop(snap *s)
{
    free(s->b);
    s->b = NULL;
}

/* ---- the seed's network ---- */

typedef struct net {
    em_tensor *x, *y, *w1, *w2;
    em_sgd *opt;
} net;

static void net_init(net *n, const em_sgd_options *o)
{
    em_manual_seed(g_ctx, 5);
    n->x = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(16, 40)));
    n->y = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(16, 5)));
    n->w1 = em_tensor_keep(em_mul_scalar(em_randn(g_ctx, EM_F32, EM_SHAPE(40, 12)), 0.3));
    n->w2 = em_tensor_keep(em_mul_scalar(em_randn(g_ctx, EM_F32, EM_SHAPE(12, 5)), 0.3));
    em_tensor_set_requires_grad(n->w1, true);
    em_tensor_set_requires_grad(n->w2, true);
    em_tensor *p[2] = {n->w1, n->w2};
    n->opt = o ? em_sgd_create(p, 2, o) : NULL;
    assert_ok_ctx();
}

static void net_free(net *n)
{
    em_sgd_free(n->opt);
    em_tensor_free(n->x);
    em_tensor_free(n->y);
    em_tensor_free(n->w1);
    em_tensor_free(n->w2);
}

static em_tensor *net_loss(net *n)
{
    return em_sum(em_pow(em_sub(em_mm(em_relu(em_mm(n->x, n->w1)), n->w2), n->y), 2));
}

/* ---- backward ---- */

static void backward_case(bool grads_exist)
{
    net n;
    net_init(&n, NULL);
    if (grads_exist) {   /* some history in .grad to accumulate onto */
        em_scope_begin(g_ctx);
        assert_int_equal(em_backward(em_mul_scalar(net_loss(&n), 0.5)), EM_OK);
        em_scope_end(g_ctx);
    }
    snap b1 = take_grad(n.w1), b2 = take_grad(n.w2);
    /* the fault-free result, then undo it */
    em_scope_begin(g_ctx);
    assert_int_equal(em_backward(net_loss(&n)), EM_OK);
    em_scope_end(g_ctx);
    snap r1 = take_grad(n.w1), r2 = take_grad(n.w2);
    int failures = 0;
    for (long k = 1; k <= MAX_N; k++) {
        /* back to the state before */
        if (grads_exist) {
            em_scope_begin(g_ctx);
            em_tensor_from_host(em_grad(n.w1), b1.b, b1.n);
            em_tensor_from_host(em_grad(n.w2), b2.b, b2.n);
            em_scope_end(g_ctx);
        } else {
            em_tensor_clear_grad(n.w1);
            em_tensor_clear_grad(n.w2);
        }
        em_scope_begin(g_ctx);
        em_tensor *loss = net_loss(&n);
        assert_ok_ctx();
        em__test_fail_kernel_after(k);
        em_status st = em_backward(loss);
        em__test_fail_kernel_after(0);
        if (st == EM_OK) {
            snap g1 = take_grad(n.w1), g2 = take_grad(n.w2);
            assert_true(same(g1, r1) && same(g2, r2));
            drop(&g1);
            drop(&g2);
            em_scope_end(g_ctx);
            break;
        }
        failures++;
        assert_int_equal(st, EM_ERR_BACKEND);
        snap g1 = take_grad(n.w1), g2 = take_grad(n.w2);
        if (!same(g1, b1) || !same(g2, b2))
            fail_msg("backward failing at kernel call %ld changed a .grad", k);
        drop(&g1);
        drop(&g2);
        em_context_clear_error(g_ctx);
        /* the graph is intact: the same loss backpropagates now */
        assert_int_equal(em_backward(loss), EM_OK);
        g1 = take_grad(n.w1);
        g2 = take_grad(n.w2);
        assert_true(same(g1, r1) && same(g2, r2));
        drop(&g1);
        drop(&g2);
        em_scope_end(g_ctx);
        assert_true(k < MAX_N);
    }
    if (failures < 5)   /* a backward has that many kernel calls */
        fail_msg("only %d kernel calls of a backward were hit", failures);
    print_message("# backward (%s grads): failed at each of its %d kernel calls in turn\n",
                  grads_exist ? "accumulating" : "fresh", failures);
    drop(&b1);
    drop(&b2);
    drop(&r1);
    drop(&r2);
    net_free(&n);
    assert_ok_ctx();
}

static void test_backward_fresh_grads(void **state)
{
    (void)state;
    backward_case(false);
}

static void test_backward_accumulating(void **state)
{
    (void)state;
    backward_case(true);
}

/* ---- optimizer ---- */

static void grads_for(net *n)
{
    em_scope_begin(g_ctx);
    assert_int_equal(em_sgd_zero_grad(n->opt, false), EM_OK);
    assert_int_equal(em_backward(net_loss(n)), EM_OK);
    em_scope_end(g_ctx);
}

/* composed: the step from elementwise kernels (em__test_optim_composed), else through the
 * backend's fused sgd kernel (one call per parameter) */
static void step_case_path(const em_sgd_options *o, int composed)
{
    em__test_optim_composed(composed);
    /* reference: three fault-free steps */
    net ref;
    net_init(&ref, o);
    for (int i = 0; i < 3; i++) {
        grads_for(&ref);
        assert_int_equal(em_sgd_step(ref.opt), EM_OK);
    }
    snap r1 = take(ref.w1), r2 = take(ref.w2);
    int failures = 0;
    for (long k = 1; k <= MAX_N; k++) {
        net n;
        net_init(&n, o);
        for (int i = 0; i < 2; i++) {
            grads_for(&n);
            assert_int_equal(em_sgd_step(n.opt), EM_OK);
        }
        grads_for(&n);
        snap b1 = take(n.w1), b2 = take(n.w2);
        em__test_fail_kernel_after(k);
        em_status st = em_sgd_step(n.opt);
        em__test_fail_kernel_after(0);
        bool done = st == EM_OK;
        if (!done) {
            failures++;
            snap a1 = take(n.w1), a2 = take(n.w2);
            if (!same(a1, b1) || !same(a2, b2))
                fail_msg("a step failing at kernel call %ld changed a parameter", k);
            drop(&a1);
            drop(&a2);
            em_context_clear_error(g_ctx);
            /* retried: the state was untouched, so these are a fault-free step's bits */
            assert_int_equal(em_sgd_step(n.opt), EM_OK);
        }
        snap a1 = take(n.w1), a2 = take(n.w2);
        if (!same(a1, r1) || !same(a2, r2))
            fail_msg("after a step that failed at kernel call %ld, the retried step differs", k);
        drop(&a1);
        drop(&a2);
        drop(&b1);
        drop(&b2);
        net_free(&n);
        if (done)
            break;
    }
    em__test_optim_composed(0);
    assert_true(failures >= (composed ? 4 : 2));
    print_message("# sgd step (%s, momentum %g, nesterov %d): failed at each of its %d kernel "
                  "calls\n", composed ? "composed" : "fused", o->momentum, o->nesterov, failures);
    drop(&r1);
    drop(&r2);
    net_free(&ref);
    assert_ok_ctx();
}

static void step_case(const em_sgd_options *o)
{
    step_case_path(o, 0);
    step_case_path(o, 1);
}

static void test_sgd_plain(void **state)
{
    (void)state;
    step_case(&(em_sgd_options){.lr = 0.01});
}

static void test_sgd_momentum_nesterov_decay(void **state)
{
    (void)state;
    step_case(&(em_sgd_options){.lr = 0.01, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
}

static void test_sgd_dampening_maximize(void **state)
{
    (void)state;
    step_case(&(em_sgd_options){.lr = 0.01, .momentum = 0.5, .dampening = 0.3, .maximize = true});
}

/* Allocation failures inside a step: the same promise. */
static void test_sgd_alloc_failures(void **state)
{
    (void)state;
    const em_sgd_options o = {.lr = 0.01, .momentum = 0.9};
    net ref;
    net_init(&ref, &o);
    for (int i = 0; i < 2; i++) {
        grads_for(&ref);
        assert_int_equal(em_sgd_step(ref.opt), EM_OK);
    }
    snap r1 = take(ref.w1);
    net_free(&ref);
    for (long k = 1; k <= MAX_N; k++) {
        net n;
        net_init(&n, &o);
        grads_for(&n);
        assert_int_equal(em_sgd_step(n.opt), EM_OK);
        grads_for(&n);
        snap b1 = take(n.w1);
        em__test_fail_alloc_after(k);
        em_status st = em_sgd_step(n.opt);
        em__test_fail_alloc_after(0);
        if (st != EM_OK) {
            snap a1 = take(n.w1);
            assert_true(same(a1, b1));
            drop(&a1);
            em_context_clear_error(g_ctx);
            assert_int_equal(em_sgd_step(n.opt), EM_OK);
        }
        snap a1 = take(n.w1);
        assert_true(same(a1, r1));
        drop(&a1);
        drop(&b1);
        net_free(&n);
        if (st == EM_OK)
            break;
    }
    drop(&r1);
    assert_ok_ctx();
}

/* ---- a training loop that skips a failed step ---- */

static em_status train_step(net *n)
{
    em_scope_begin(g_ctx);
    em_status st = em_sgd_zero_grad(n->opt, false);
    em_tensor *loss = st == EM_OK ? net_loss(n) : NULL;
    if (st == EM_OK)
        st = loss ? em_backward(loss) : em_context_status(g_ctx);
    if (st == EM_OK)
        st = em_sgd_step(n->opt);
    em_scope_end(g_ctx);
    return st;
}

static void skipped_step_case(int composed)
{
    const em_sgd_options o = {.lr = 0.01, .momentum = 0.9, .nesterov = true};
    em__test_optim_composed(composed);
    const int steps = 4, faulty = 2;
    net ref;
    net_init(&ref, &o);
    for (int i = 0; i < steps; i++)
        if (i != faulty)
            assert_int_equal(train_step(&ref), EM_OK);
    snap r1 = take(ref.w1), r2 = take(ref.w2);
    net_free(&ref);
    int skipped = 0;
    for (long k = 1; k <= MAX_N; k++) {
        net n;
        net_init(&n, &o);
        bool failed = false;
        for (int i = 0; i < steps; i++) {
            if (i == faulty)
                em__test_fail_kernel_after(k);
            em_status st = train_step(&n);
            em__test_fail_kernel_after(0);
            if (st != EM_OK) {
                assert_int_equal(i, faulty);
                failed = true;
                em_context_clear_error(g_ctx);   /* skip it */
            }
        }
        if (failed) {
            skipped++;
            snap a1 = take(n.w1), a2 = take(n.w2);
            if (!same(a1, r1) || !same(a2, r2))
                fail_msg("skipping a step that failed at kernel call %ld did not give the "
                         "weights of never running it", k);
            drop(&a1);
            drop(&a2);
        }
        net_free(&n);
        if (!failed)
            break;
    }
    em__test_optim_composed(0);
    assert_true(skipped > (composed ? 20 : 8));   /* every kernel call of a step was hit */
    print_message("# training step (%s update): failed at each of its %d kernel calls, skipped, "
                  "and the weights equal never running it\n", composed ? "composed" : "fused",
                  skipped);
    drop(&r1);
    drop(&r2);
    assert_ok_ctx();
}

static void test_skipped_step_is_never_run(void **state)
{
    (void)state;
    skipped_step_case(0);
    skipped_step_case(1);
}

/* ---- in-place ops ---- */

typedef em_status (*inplace_fn)(em_tensor *x, em_tensor *o);
static em_status op_add(em_tensor *x, em_tensor *o) { return em_add_(x, o); }
static em_status op_mul(em_tensor *x, em_tensor *o) { return em_mul_(x, o); }
static em_status op_copy(em_tensor *x, em_tensor *o) { return em_copy_(x, o); }
static em_status op_clamp(em_tensor *x, em_tensor *o) { (void)o; return em_clamp_(x, -0.5, 0.5); }
static em_status op_fill(em_tensor *x, em_tensor *o) { (void)o; return em_fill_(x, 3); }
static em_status op_mask(em_tensor *x, em_tensor *o)
{
    return em_masked_fill_(x, em_gt_scalar(o, 0), 9);
}

static void inplace_case(inplace_fn fn, bool record, bool alloc_faults)
{
    for (long k = 1; k <= MAX_N; k++) {
        em_scope_begin(g_ctx);
        em_manual_seed(g_ctx, 3);
        em_tensor *leaf = em_randn(g_ctx, EM_F32, EM_SHAPE(6, 7));
        em_tensor *other = em_randn(g_ctx, EM_F32, EM_SHAPE(7));   /* broadcast */
        em_tensor_set_requires_grad(leaf, record);
        /* a non-leaf (in-place is allowed on it), or a plain tensor seen transposed, so the
         * destination is a strided view */
        em_tensor *x = record ? em_mul_scalar(leaf, 1.0) : em_t(em_clone(em_t(leaf)));
        assert_ok_ctx();
        snap before = take(x);
        const char *fn_before = em_tensor_grad_fn_name(x);
        if (alloc_faults)
            em__test_fail_alloc_after(k);
        else
            em__test_fail_kernel_after(k);
        em_status st = fn(x, other);
        em__test_fail_alloc_after(0);
        em__test_fail_kernel_after(0);
        if (st != EM_OK) {
            snap after = take(x);
            if (!same(before, after))
                fail_msg("in-place op failing at %s %ld changed its destination",
                         alloc_faults ? "allocation" : "kernel call", k);
            drop(&after);
            const char *fn_after = em_tensor_grad_fn_name(x);
            assert_true(fn_before == fn_after || (fn_before && fn_after && !strcmp(fn_before, fn_after)));
            em_context_clear_error(g_ctx);
            if (record) {   /* its history still backpropagates */
                assert_int_equal(em_backward(em_sum(x)), EM_OK);
            }
        }
        drop(&before);
        em_scope_end(g_ctx);
        em_context_clear_error(g_ctx);
        if (st == EM_OK)
            return;
    }
    fail_msg("never succeeded");
}

static void test_inplace_unchanged(void **state)
{
    (void)state;
    inplace_fn fns[] = {op_add, op_mul, op_copy, op_clamp, op_fill, op_mask};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        for (int record = 0; record < 2; record++)
            for (int alloc = 0; alloc < 2; alloc++)
                inplace_case(fns[i], record, alloc);
}

/* ---- zero_grad ---- */

/* A .grad nothing else holds is only marked (folded into the next backward); one held by a
 * handle is written, in the transaction. held = 2: both grads held (both written); held = 1:
 * w2's held and w1's (first in the optimizer's order) only marked, which must not happen
 * when w2's write fails. */
static void test_zero_grad_all_or_none(void **state)
{
    (void)state;
    const em_sgd_options o = {.lr = 0.01};
    for (int held = 1; held <= 2; held++) {
        int failed = 0;
        for (long k = 1; k <= MAX_N; k++) {
            net n;
            net_init(&n, &o);
            em_scope_begin(g_ctx);
            assert_int_equal(em_backward(net_loss(&n)), EM_OK);
            em_scope_end(g_ctx);
            snap b1 = take_grad(n.w1), b2 = take_grad(n.w2);
            em_scope_begin(g_ctx);
            assert_non_null(em_grad(n.w2));
            if (held == 2)
                assert_non_null(em_grad(n.w1));
            em__test_fail_kernel_after(k);
            em_status st = em_sgd_zero_grad(n.opt, false);
            em__test_fail_kernel_after(0);
            em_scope_end(g_ctx);
            snap a1 = take_grad(n.w1), a2 = take_grad(n.w2);
            if (st != EM_OK) {
                assert_true(same(a1, b1) && same(a2, b2));
                em_context_clear_error(g_ctx);
                failed++;
            } else {
                for (size_t i = 0; i < a1.n; i++)
                    assert_int_equal(a1.b[i], 0);
                for (size_t i = 0; i < a2.n; i++)
                    assert_int_equal(a2.b[i], 0);
            }
            drop(&a1);
            drop(&a2);
            drop(&b1);
            drop(&b2);
            net_free(&n);
            if (st == EM_OK)
                break;
        }
        assert_true(failed > 0);   /* the failure path was taken */
    }
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_backward_fresh_grads),
        EM_TEST(test_backward_accumulating),
        EM_TEST(test_sgd_plain),
        EM_TEST(test_sgd_momentum_nesterov_decay),
        EM_TEST(test_sgd_dampening_maximize),
        EM_TEST(test_sgd_alloc_failures),
        EM_TEST(test_skipped_step_is_never_run),
        EM_TEST(test_inplace_unchanged),
        EM_TEST(test_zero_grad_all_or_none),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
