/* tests/ref_runner.h — table-driven checks against PyTorch 1.13 for the suites of reductions,
 * activations and losses (test_stats.c, test_activation.c, test_loss.c). Each case names an
 * op (REF_*), its parameters and inputs; the expected result, grad_fn name and gradients of
 * sum(out * r) (r_j = 0.5 + (j % 7) / 8) come from PyTorch, generated into tests/data/ref_*.h
 * by tests/data/gen_ref.py. Every case runs in f64 (tolerance 1e-10) and, on the same
 * f32-representable inputs, in f32 (5e-5); cases marked gradcheck also run em_gradcheck. */
#ifndef EMBER_TESTS_REF_RUNNER_H
#define EMBER_TESTS_REF_RUNNER_H

#include "harness.h"
#include "backend_harness.h"

enum {
    /* reductions */
    REF_MAX, REF_MIN, REF_MAX_DIM, REF_MIN_DIM, REF_MAX_DIM_IDX, REF_MIN_DIM_IDX, REF_ARGMAX,
    REF_ARGMIN, REF_PROD, REF_PROD_DIM, REF_VAR, REF_STD, REF_LOGSUMEXP, REF_ANY, REF_ANY_DIM,
    /* activations */
    REF_SOFTMAX, REF_LOG_SOFTMAX, REF_LEAKY_RELU, REF_GELU, REF_ELU, REF_SILU, REF_SOFTPLUS,
    /* losses */
    REF_MSE, REF_L1, REF_SMOOTH_L1, REF_BCE, REF_NLL, REF_CE
};

typedef struct ref_tensor {
    int ndim;            /* -1: absent */
    int64_t shape[5];
    const double *v;
} ref_tensor;

typedef struct ref_case {
    const char *name;
    int op;
    int ia[6];            /* integer parameters (dims, keepdim, reduction, ...) */
    double da[3];         /* real parameters */
    ref_tensor in[4];     /* float inputs */
    ref_tensor target;    /* an i64 input (class indices), or absent */
    ref_tensor out;       /* the expected result (integer and bool results as numbers) */
    const double *grad[4];/* d sum(out * r) / d in[i] where in[i] requires grad, else NULL */
    const char *grad_fn;  /* PyTorch's node name, NULL when the result has none */
    int gradcheck;        /* run em_gradcheck (f64) */
    int f64_only;         /* values that f32 cannot hold */
} ref_case;

typedef em_tensor *(*ref_op_fn)(const ref_case *c, em_tensor *const *in, em_tensor *target);

static inline double ref_r(int64_t j)
{
    return 0.5 + (double)(j % 7) / 8.0;
}

/* Any tensor's values as doubles (malloc'd). */
static inline double *ref_values(em_tensor *t)
{
    em_dtype dt = em_tensor_dtype(t);
    if (dt == EM_F32 || dt == EM_F64)
        return to_doubles(t);
    int64_t n = em_tensor_numel(t);
    double *out = malloc(sizeof(double) * (size_t)(n ? n : 1));
    size_t es = em_dtype_size(dt);
    void *buf = malloc((size_t)(n ? n : 1) * es);
    assert_int_equal(em_tensor_to_host(t, buf, (size_t)n * es), EM_OK);
    for (int64_t i = 0; i < n; i++) {
        if (dt == EM_I64)
            out[i] = (double)((int64_t *)buf)[i];
        else if (dt == EM_I32)
            out[i] = (double)((int32_t *)buf)[i];
        else
            out[i] = (double)((uint8_t *)buf)[i];
    }
    free(buf);
    return out;
}

static inline int64_t ref_numel(const ref_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

static inline em_tensor *ref_i64(const ref_tensor *t)
{
    int64_t n = ref_numel(t);
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = (int64_t)t->v[i];
    em_tensor *r = em_tensor_from_data(g_ctx, EM_I64, t->ndim, t->shape, v);
    free(v);
    return r;
}

static inline void ref_compare(const char *what, const ref_case *c, em_dtype dt, em_tensor *got,
                               const ref_tensor *want, double tol)
{
    if (!got)
        fail_msg("%s [%s]: %s is NULL: %s", c->name, em_dtype_name(dt), what, em_context_error(g_ctx));
    if (em_tensor_ndim(got) != want->ndim)
        fail_msg("%s [%s]: %s has %d dims, want %d", c->name, em_dtype_name(dt), what,
                 em_tensor_ndim(got), want->ndim);
    for (int d = 0; d < want->ndim; d++)
        if (em_tensor_size(got, d) != want->shape[d])
            fail_msg("%s [%s]: %s has size %lld in dim %d, want %lld", c->name, em_dtype_name(dt),
                     what, (long long)em_tensor_size(got, d), d, (long long)want->shape[d]);
    double *v = ref_values(got);
    int64_t n = ref_numel(want);
    for (int64_t i = 0; i < n; i++)
        if (!close_enough(v[i], want->v[i], tol))
            fail_msg("%s [%s]: %s element %lld: got %.17g, want %.17g", c->name, em_dtype_name(dt),
                     what, (long long)i, v[i], want->v[i]);
    free(v);
}

typedef struct ref_gc_user {
    const ref_case *c;
    ref_op_fn fn;
    em_tensor *target;
} ref_gc_user;

static inline em_tensor *ref_gc_fn(em_tensor *const *in, int n, void *user)
{
    (void)n;
    ref_gc_user *u = user;
    return u->fn(u->c, in, u->target);
}

static inline void ref_run_case(const ref_case *c, em_dtype dt, ref_op_fn fn)
{
    double tol = dt == EM_F64 ? 1e-10 : 5e-5;
    em_scope_begin(g_ctx);
    em_tensor *in[4] = {0};
    int n_in = 0;
    for (int i = 0; i < 4 && c->in[i].ndim >= 0; i++, n_in++) {
        in[i] = from_doubles(dt, c->in[i].ndim, c->in[i].shape, c->in[i].v);
        if (c->grad[i])
            assert_int_equal(em_tensor_set_requires_grad(in[i], true), EM_OK);
    }
    em_tensor *target = c->target.ndim >= 0 ? ref_i64(&c->target) : NULL;
    em_tensor *out = fn(c, in, target);
    ref_compare("result", c, dt, out, &c->out, tol);
    const char *gf = em_tensor_grad_fn_name(out);
    if ((gf == NULL) != (c->grad_fn == NULL) || (gf && strcmp(gf, c->grad_fn)))
        fail_msg("%s [%s]: grad_fn %s, want %s", c->name, em_dtype_name(dt), gf ? gf : "(none)",
                 c->grad_fn ? c->grad_fn : "(none)");
    bool any = false;
    for (int i = 0; i < n_in; i++)
        any = any || c->grad[i];
    if (any) {
        int64_t n = em_tensor_numel(out);
        double *r = malloc(sizeof(double) * (size_t)(n ? n : 1));
        for (int64_t j = 0; j < n; j++)
            r[j] = ref_r(j);
        em_tensor *rt = from_doubles(dt, em_tensor_ndim(out), em_tensor_shape(out), r);
        free(r);
        if (em_backward(em_sum(em_mul(out, rt))) != EM_OK)
            fail_msg("%s [%s]: backward: %s", c->name, em_dtype_name(dt), em_context_error(g_ctx));
        for (int i = 0; i < n_in; i++) {
            if (!c->grad[i])
                continue;
            ref_tensor want = c->in[i];
            want.v = c->grad[i];
            char what[32];
            snprintf(what, sizeof what, "grad of input %d", i);
            ref_compare(what, c, dt, em_grad(in[i]), &want, tol);
        }
        if (c->gradcheck && dt == EM_F64) {
            ref_gc_user u = {c, fn, target};
            em_gradcheck_result res;
            if (em_gradcheck(ref_gc_fn, in, n_in, &u, 1e-6, 1e-6, 1e-5, &res) != EM_OK)
                fail_msg("%s: gradcheck: %s", c->name, em_context_error(g_ctx));
            if (!res.passed)
                fail_msg("%s: gradcheck failed: %s", c->name, res.message);
        }
    }
    em_scope_end(g_ctx);
    assert_ok_ctx();
}

static inline void ref_run_all(const ref_case *cases, size_t n, ref_op_fn fn)
{
    static const em_dtype dts[2] = {EM_F64, EM_F32};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++)
            if (!(cases[i].f64_only && dts[k] == EM_F32))
                ref_run_case(&cases[i], dts[k], fn);
}

#endif
