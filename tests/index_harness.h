/* tests/index_harness.h — what the suites of views and indexing (test_views.c,
 * test_index.c) share: inputs built from exact formulas, a weighted loss, i64 index
 * tensors, exact comparisons against PyTorch 1.13 values, node names, error status and
 * message checks, and a gradient check runner. Header-only (static), on top of
 * backend_harness.h.
 *
 * Inputs are exact in f32 (quarters and small integers), so PyTorch's f64 values hold
 * exactly in both float dtypes:
 *   x = [((i * 37 + k) % 23) / 4 - 2.5 for i in range(n)]      (input number k)
 *   w = [(i * 13) % 7 - 3 for i in range(n)]                     (loss = (y * w).sum()) */
#ifndef EMBER_TESTS_INDEX_HARNESS_H
#define EMBER_TESTS_INDEX_HARNESS_H

#include "backend_harness.h"

static const em_dtype float_dtypes[] = {EM_F32, EM_F64};

static inline int64_t numel_of(int nd, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    return n;
}

/* The input formula above, shaped, requiring grad. */
static inline em_tensor *input(em_dtype dt, int nd, const int64_t *shape, int k)
{
    int64_t n = numel_of(nd, shape);
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = (double)((i * 37 + k) % 23) / 4.0 - 2.5;
    em_tensor *t = from_doubles(dt, nd, shape, v);
    free(v);
    assert_non_null(t);
    assert_int_equal(em_tensor_set_requires_grad(t, true), EM_OK);
    return t;
}

/* sum(y * w) with the weight formula above, then backward. */
static inline void backward_weighted(em_tensor *y)
{
    int64_t n = em_tensor_numel(y);
    double *w = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        w[i] = (double)((i * 13) % 7) - 3;
    em_tensor *wt = from_doubles(em_tensor_dtype(y), em_tensor_ndim(y), em_tensor_shape(y), w);
    free(w);
    assert_int_equal(em_backward(em_sum(em_mul(y, wt))), EM_OK);
}

static inline em_tensor *index_of(int nd, const int64_t *shape, const int64_t *v)
{
    em_tensor *t = em_tensor_from_data(g_ctx, EM_I64, nd, shape, v);
    assert_non_null(t);
    return t;
}
#define IDX(shape_, ...) index_of(shape_, (const int64_t[]){__VA_ARGS__})

/* t's values (any strides) equal ref (exact: every value is a small dyadic number). */
static inline void check_values(em_tensor *t, const double *ref, int64_t n)
{
    assert_non_null(t);
    assert_int_equal(em_tensor_numel(t), n);
    double *v = to_doubles(t);
    assert_close_arrays(v, ref, n, 0.0);
    free(v);
}

static inline void check_grad(em_tensor *x, const double *ref)
{
    em_tensor *g = em_grad(x);
    if (!g)
        fail_msg("no gradient (%s)", em_context_error(g_ctx));
    check_values(g, ref, em_tensor_numel(x));
}

static inline void check_shape(em_tensor *t, int nd, const int64_t *shape)
{
    assert_non_null(t);
    assert_int_equal(em_tensor_ndim(t), nd);
    for (int i = 0; i < nd; i++)
        assert_int_equal(em_tensor_size(t, i), shape[i]);
}

static inline void check_grad_fn(em_tensor *t, const char *name)
{
    const char *got = em_tensor_grad_fn_name(t);
    if (!got || strcmp(got, name))
        fail_msg("grad_fn %s, want %s", got ? got : "(none)", name);
}

/* The call failed with status st and a message containing `part`; clears the error. */
static inline void expect_error(em_status st, const char *part)
{
    if (em_context_status(g_ctx) != st)
        fail_msg("status %d (%s), want %d (message with '%s')", em_context_status(g_ctx),
                 em_context_error(g_ctx), st, part);
    if (!strstr(em_context_error(g_ctx), part))
        fail_msg("message '%s' lacks '%s'", em_context_error(g_ctx), part);
    em_context_clear_error(g_ctx);
}

/* One em_gradcheck case: fn over n f64 inputs of the given shapes (random in [-2, 2)). */
typedef struct gc_case {
    const char *name;
    em_gradcheck_fn fn;
    int n;
    int64_t shapes[4][3];
    int nd[4];
} gc_case;

static inline void run_gradcheck(const gc_case *k)
{
    em_tensor *in[4];
    for (int i = 0; i < k->n; i++) {
        int64_t n = numel_of(k->nd[i], k->shapes[i]);
        double *v = rnd_array(n, -2, 2);
        in[i] = from_doubles(EM_F64, k->nd[i], k->shapes[i], v);
        free(v);
        em_tensor_set_requires_grad(in[i], true);
    }
    em_gradcheck_result r;
    if (em_gradcheck(k->fn, in, k->n, NULL, 1e-6, 1e-7, 1e-6, &r) != EM_OK)
        fail_msg("gradcheck %s: %s", k->name, em_context_error(g_ctx));
    if (!r.passed)
        fail_msg("gradcheck %s: %s", k->name, r.message);
}

#endif
