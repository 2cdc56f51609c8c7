/* tests/test_autograd.c — autograd on one backend (EM_TEST_BACKEND):
 *  - forward values and gradients of op graphs against PyTorch's, from
 *    tests/data/autograd_reference.txt (made by tests/data/gen_reference.py);
 *  (em_gradcheck of every differentiable op, with broadcast and non-contiguous inputs, is
 *  ember-conform's: the .grad rows of tools/conform_grad.c, run by make check on every backend)
 *  - the engine's semantics: accumulation, retain_graph, second backward, no_grad, in-place
 *    rules, detach, version counters, grad_fn names; em_sgd against torch.optim.SGD. */
#include "backend_harness.h"

/* ------------------------------------------------------------------ reference file */

#define MAX_IN 4
typedef struct ref_case {
    char name[64];
    int n_in;
    char in_name[MAX_IN][16];
    int in_nd[MAX_IN];
    int64_t in_shape[MAX_IN][EM_MAX_DIMS];
    double *in_val[MAX_IN];
    int out_nd;
    int64_t out_shape[EM_MAX_DIMS];
    double *out_val;
    double *grad[MAX_IN];
} ref_case;

static ref_case g_cases[32];
static int g_ncases;
static double g_sgd_init[4], g_sgd_c[4];
static double g_sgd[8][10];   /* lr momentum dampening wd nesterov maximize w0..w3 */
static int g_nsgd;
static char g_gradfn[64][2][40];
static int g_ngradfn;

static double *read_values(FILE *f, int64_t n)
{
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        if (fscanf(f, "%lf", &v[i]) != 1)
            fail_msg("reference file: short value list");
    return v;
}

static void load_reference(void)
{
    char path[4096];
    const char *dir = getenv("EMBER_TEST_DATA_DIR");
    snprintf(path, sizeof path, "%s/autograd_reference.txt", dir ? dir : "tests/data");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char tag[32];
    ref_case *c = NULL;
    while (fscanf(f, "%31s", tag) == 1) {
        if (!strcmp(tag, "case")) {
            c = &g_cases[g_ncases++];
            assert_int_equal(fscanf(f, "%63s", c->name), 1);
        } else if (!strcmp(tag, "input")) {
            int k = c->n_in++;
            assert_int_equal(fscanf(f, "%15s %d", c->in_name[k], &c->in_nd[k]), 2);
            int64_t n = 1;
            for (int d = 0; d < c->in_nd[k]; d++) {
                long long s;
                assert_int_equal(fscanf(f, "%lld", &s), 1);
                c->in_shape[k][d] = s;
                n *= s;
            }
            c->in_val[k] = read_values(f, n);
        } else if (!strcmp(tag, "output")) {
            assert_int_equal(fscanf(f, "%d", &c->out_nd), 1);
            int64_t n = 1;
            for (int d = 0; d < c->out_nd; d++) {
                long long s;
                assert_int_equal(fscanf(f, "%lld", &s), 1);
                c->out_shape[d] = s;
                n *= s;
            }
            c->out_val = read_values(f, n);
        } else if (!strcmp(tag, "grad")) {
            char nm[16];
            assert_int_equal(fscanf(f, "%15s", nm), 1);
            for (int k = 0; k < c->n_in; k++)
                if (!strcmp(nm, c->in_name[k])) {
                    int64_t n = 1;
                    for (int d = 0; d < c->in_nd[k]; d++)
                        n *= c->in_shape[k][d];
                    c->grad[k] = read_values(f, n);
                }
        } else if (!strcmp(tag, "sgd_init")) {
            for (int i = 0; i < 4; i++)
                assert_int_equal(fscanf(f, "%lf", &g_sgd_init[i]), 1);
            for (int i = 0; i < 4; i++)
                assert_int_equal(fscanf(f, "%lf", &g_sgd_c[i]), 1);
        } else if (!strcmp(tag, "sgd")) {
            for (int i = 0; i < 10; i++)
                assert_int_equal(fscanf(f, "%lf", &g_sgd[g_nsgd][i]), 1);
            g_nsgd++;
        } else if (!strcmp(tag, "gradfn")) {
            assert_int_equal(fscanf(f, "%39s %39s", g_gradfn[g_ngradfn][0], g_gradfn[g_ngradfn][1]), 2);
            g_ngradfn++;
        } else {
            fail_msg("reference file: unknown tag %s", tag);
        }
    }
    fclose(f);
}

/* ------------------------------------------------------------------ the same graphs in C */

typedef em_tensor *(*graph_fn)(em_tensor **in);

static em_tensor *g_seed_step(em_tensor **in)
{
    em_tensor *x = in[0], *y = in[1], *w1 = in[2], *w2 = in[3];
    return em_sum(em_pow(em_sub(em_mm(em_clamp(em_mm(x, w1), 0, INFINITY), w2), y), 2));
}

static em_tensor *g_broadcast_arith(em_tensor **in)
{
    em_tensor *a = in[0], *b = in[1], *c = in[2];
    return em_sum(em_sub(em_mul(em_add(a, b), c), em_div(a, c)));
}

static em_tensor *g_unary_chain(em_tensor **in)
{
    em_tensor *x = in[0];
    em_tensor *s = em_add(em_log(em_abs(x)), em_sqrt(em_abs(x)));
    s = em_add(s, em_tanh(x));
    s = em_add(s, em_sigmoid(x));
    s = em_add(s, em_relu(x));
    s = em_add(s, em_exp(x));
    s = em_sub(s, em_neg(x));
    return em_mean(s);
}

static em_tensor *g_maxmin(em_tensor **in)
{
    return em_sum(em_add(em_mul_scalar(em_maximum(in[0], in[1]), 2),
                         em_mul_scalar(em_minimum(in[0], in[1]), 3)));
}

static em_tensor *g_clamp_variants(em_tensor **in)
{
    em_tensor *x = in[0];
    em_tensor *s = em_add(em_mul_scalar(em_clamp(x, -0.5, 0.5), 1.5), em_mul_scalar(em_clamp_min(x, 0.2), 2));
    return em_sum(em_add(s, em_mul_scalar(em_clamp_max(x, -0.2), 3)));
}

static em_tensor *g_pow_variants(em_tensor **in)
{
    em_tensor *x = in[0];
    em_tensor *s = em_add(em_pow(x, 2), em_pow(x, 3));
    s = em_add(s, em_pow(em_abs(x), 0.5));
    s = em_add(s, em_pow(em_add_scalar(em_abs(x), 1), -1.5));
    return em_sum(s);
}

static em_tensor *g_scalar_ops(em_tensor **in)
{
    em_tensor *x = in[0];
    em_tensor *s = em_sub_scalar(em_mul_scalar(em_add_scalar(x, 2), 3), 1);
    s = em_add(s, em_div_scalar(em_rsub_scalar(x, 2), 4));
    s = em_add(s, em_rdiv_scalar(em_add_scalar(em_abs(x), 1), 2));
    return em_sum(s);
}

static em_tensor *g_where_mask(em_tensor **in)
{
    em_tensor *x = in[0], *y = in[1];
    em_tensor *a = em_sum(em_where(em_gt_scalar(x, 0), em_mul(x, y), y));
    em_tensor *b = em_sum(em_pow(em_masked_fill(x, em_gt_scalar(y, 0), 0), 2));
    return em_add(a, b);
}

static em_tensor *g_reductions(em_tensor **in)
{
    em_tensor *x = in[0];
    int d0[1] = {0}, d1[1] = {1}, d02[2] = {0, 2}, d01[2] = {0, 1};
    em_tensor *a = em_sum(em_pow(em_sum_dims(x, 1, d0, false), 2));
    em_tensor *b = em_sum(em_mul(em_mean_dims(x, 1, d1, true), x));
    em_tensor *c = em_sum(em_pow(em_sum_dims(x, 2, d02, false), 2));
    em_tensor *d = em_sum(em_mean_dims(x, 2, d01, false));
    return em_add(em_add(a, b), em_add(c, d));
}

static em_tensor *g_views(em_tensor **in)
{
    em_tensor *x = in[0], *y = in[1];
    em_tensor *a = em_sum(em_mul(em_reshape(em_t(x), EM_SHAPE(-1)), em_view(y, EM_SHAPE(-1))));
    em_tensor *b = em_sum(em_pow(em_expand(em_unsqueeze(x, 0), EM_SHAPE(2, -1, -1)), 2));
    em_tensor *c = em_sum(em_mul(em_contiguous(em_transpose(x, 0, 1)), y));
    em_tensor *d = em_sum(em_pow(em_flatten(y), 3));
    return em_add(em_add(a, b), em_add(c, d));
}

static em_tensor *g_matmul(em_tensor **in)
{
    em_tensor *ab = em_matmul(in[0], in[1]);
    return em_add(em_sum(em_pow(ab, 2)), em_sum(em_bmm(ab, in[2])));
}

static em_tensor *g_reuse(em_tensor **in)
{
    em_tensor *y = em_add_scalar(in[0], 2);
    return em_mean(em_mul_scalar(em_mul(y, y), 3));
}

static em_tensor *g_div_neg(em_tensor **in)
{
    em_tensor *x = in[0], *y = in[1];
    return em_add(em_sum(em_div(em_neg(x), y)), em_sum(em_div(x, em_pow(y, 2))));
}

static em_tensor *g_mm_t(em_tensor **in)
{
    em_tensor *a = in[0], *b = in[1];
    return em_add(em_sum(em_mm(em_t(a), b)), em_sum(em_pow(em_mm(em_t(b), a), 2)));
}

static const struct {
    const char *name;
    graph_fn fn;
} graphs[] = {
    {"seed_step", g_seed_step},   {"broadcast_arith", g_broadcast_arith},
    {"unary_chain", g_unary_chain}, {"maxmin", g_maxmin},
    {"clamp_variants", g_clamp_variants}, {"pow_variants", g_pow_variants},
    {"scalar_ops", g_scalar_ops}, {"where_mask", g_where_mask},
    {"reductions", g_reductions}, {"views", g_views},
    {"matmul", g_matmul},         {"reuse", g_reuse},
    {"div_neg", g_div_neg},       {"mm_t", g_mm_t},
};

static void run_reference(em_dtype dt)
{
    int matched = 0;
    double tol = dt == EM_F64 ? 1e-10 : 2e-4;
    for (int ci = 0; ci < g_ncases; ci++) {
        ref_case *c = &g_cases[ci];
        graph_fn fn = NULL;
        for (size_t g = 0; g < sizeof graphs / sizeof graphs[0]; g++)
            if (!strcmp(graphs[g].name, c->name))
                fn = graphs[g].fn;
        if (!fn)
            fail_msg("no C graph for reference case %s", c->name);
        matched++;
        em_scope_begin(g_ctx);
        em_tensor *in[MAX_IN];
        for (int k = 0; k < c->n_in; k++) {
            in[k] = from_doubles(dt, c->in_nd[k], c->in_shape[k], c->in_val[k]);
            assert_int_equal(em_tensor_set_requires_grad(in[k], true), EM_OK);
        }
        em_tensor *out = fn(in);
        if (!out)
            fail_msg("%s (%s): %s", c->name, em_dtype_name(dt), em_context_error(g_ctx));
        double got = em_item(out);
        if (!close_enough(got, c->out_val[0], tol))
            fail_msg("%s (%s): forward %.17g, PyTorch %.17g", c->name, em_dtype_name(dt), got, c->out_val[0]);
        assert_int_equal(em_backward(out), EM_OK);
        for (int k = 0; k < c->n_in; k++) {
            em_tensor *g = em_grad(in[k]);
            if (!g)
                fail_msg("%s: no gradient for %s", c->name, c->in_name[k]);
            double *gv = to_doubles(g);
            int64_t n = em_tensor_numel(g);
            for (int64_t i = 0; i < n; i++)
                if (!close_enough(gv[i], c->grad[k][i], tol))
                    fail_msg("%s (%s): d/d%s[%lld] = %.17g, PyTorch %.17g", c->name,
                             em_dtype_name(dt), c->in_name[k], (long long)i, gv[i], c->grad[k][i]);
            free(gv);
        }
        em_scope_end(g_ctx);
    }
    assert_int_equal(matched, (int)(sizeof graphs / sizeof graphs[0]));
    assert_ok_ctx();
}

static void test_reference_f64(void **state) { (void)state; run_reference(EM_F64); }
static void test_reference_f32(void **state) { (void)state; run_reference(EM_F32); }

/* ------------------------------------------------------------------ em_gradcheck itself */

static em_tensor *gc_square(em_tensor *const *in, int n, void *u)
{
    (void)n;
    (void)u;
    return em_mul(in[0], in[0]);
}

/* one factor detached: autograd sees a, finite differences see 2a */
static em_tensor *gc_half_detached(em_tensor *const *in, int n, void *u)
{
    (void)n;
    (void)u;
    return em_mul(em_detach(in[0]), in[0]);
}

/* The checker passes a right gradient and catches a wrong one, saying where. (Gradient
 * checks of every op are ember-conform's .grad rows.) */
static void test_gradcheck_api(void **state)
{
    (void)state;
    double *v = rnd_array(12, 0.5, 2);
    em_tensor *x = from_doubles(EM_F64, EM_SHAPE(3, 4), v);
    free(v);
    assert_int_equal(em_tensor_set_requires_grad(x, true), EM_OK);
    em_gradcheck_result r;
    assert_int_equal(em_gradcheck(gc_square, &x, 1, NULL, 1e-6, 1e-6, 1e-5, &r), EM_OK);
    assert_true(r.passed);
    assert_true(r.max_abs_err < 1e-6);
    assert_int_equal(em_gradcheck(gc_half_detached, &x, 1, NULL, 1e-6, 1e-6, 1e-5, &r), EM_OK);
    assert_false(r.passed);
    assert_int_equal(r.worst_input, 0);
    assert_true(r.worst_index >= 0 && r.worst_index < 12);
    assert_true(r.max_abs_err > 0.4);   /* |a - 2a| with a >= 0.5 */
    assert_true(r.message[0] != 0);
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ engine semantics */

static void test_accumulate_and_retain(void **state)
{
    (void)state;
    em_tensor *x = em_ones(g_ctx, EM_F64, EM_SHAPE(2));
    em_tensor_set_requires_grad(x, true);
    assert_true(em_tensor_is_leaf(x));
    assert_null(em_grad(x));
    em_tensor *y = em_sum(em_mul(x, x));   /* dy/dx = 2x, x used twice */
    assert_int_equal(em_backward_ex(y, NULL, true), EM_OK);
    assert_true(em_item(em_sum(em_grad(x))) == 4);
    assert_int_equal(em_backward(y), EM_OK);   /* retained: a second pass, grads accumulate */
    assert_true(em_item(em_sum(em_grad(x))) == 8);
    /* the graph is freed now: a third backward is PyTorch's error */
    assert_int_equal(em_backward(y), EM_ERR_AUTOGRAD);
    assert_non_null(strstr(em_context_error(g_ctx), "backward through the graph a second time"));
    em_context_clear_error(g_ctx);
    assert_int_equal(em_tensor_zero_grad(x), EM_OK);
    assert_true(em_item(em_sum(em_grad(x))) == 0);
    em_tensor_clear_grad(x);
    assert_null(em_grad(x));
    /* non-scalar output needs a gradient of its shape */
    em_tensor *v = em_mul_scalar(x, 3);
    assert_int_equal(em_backward(v), EM_ERR_AUTOGRAD);
    assert_non_null(strstr(em_context_error(g_ctx), "only for scalar outputs"));
    em_context_clear_error(g_ctx);
    em_tensor *g = from_doubles(EM_F64, EM_SHAPE(2), (double[]){1, 10});
    assert_int_equal(em_backward_ex(v, g, false), EM_OK);
    double *gv = to_doubles(em_grad(x));
    assert_true(gv[0] == 3 && gv[1] == 30);
    free(gv);
    assert_int_equal(em_backward_ex(v, em_ones(g_ctx, EM_F64, EM_SHAPE(3)), false), EM_ERR_SHAPE);
    em_context_clear_error(g_ctx);
    /* retain_grad on a non-leaf */
    em_tensor_clear_grad(x);
    em_tensor *h = em_mul_scalar(x, 2);
    assert_int_equal(em_tensor_retain_grad(h), EM_OK);
    assert_int_equal(em_backward(em_sum(em_mul(h, h))), EM_OK);
    double *hg = to_doubles(em_grad(h));
    assert_true(hg[0] == 4 && hg[1] == 4);
    free(hg);
    /* backward of something that needs no grad */
    assert_int_equal(em_backward(em_sum(em_ones(g_ctx, EM_F64, EM_SHAPE(2)))), EM_ERR_AUTOGRAD);
    assert_non_null(strstr(em_context_error(g_ctx), "does not require grad"));
    em_context_clear_error(g_ctx);
}

static void test_no_grad_and_inplace(void **state)
{
    (void)state;
    em_tensor *w = em_randn(g_ctx, EM_F32, EM_SHAPE(3, 2));
    em_tensor_set_requires_grad(w, true);
    /* in-place on a leaf that requires grad: an error outside no_grad ... */
    assert_int_equal(em_sub_(w, em_ones_like(w)), EM_ERR_AUTOGRAD);
    assert_non_null(strstr(em_context_error(g_ctx), "leaf Variable that requires grad"));
    em_context_clear_error(g_ctx);
    /* ... and allowed inside, recording nothing */
    em_no_grad_begin(g_ctx);
    assert_false(em_is_grad_enabled(g_ctx));
    assert_int_equal(em_sub_(w, em_ones_like(w)), EM_OK);
    em_tensor *r = em_mul(w, w);
    assert_false(em_tensor_requires_grad(r));
    assert_null(em_tensor_grad_fn_name(r));
    em_no_grad_end(g_ctx);
    assert_true(em_is_grad_enabled(g_ctx));
    assert_true(em_tensor_is_leaf(w));
    /* in-place on a non-leaf rebases its history, as PyTorch */
    em_tensor *x = em_ones(g_ctx, EM_F64, EM_SHAPE(2));
    em_tensor_set_requires_grad(x, true);
    em_tensor *y = em_mul_scalar(x, 2);
    assert_int_equal(em_add_scalar_(y, 1), EM_OK);
    assert_string_equal(em_tensor_grad_fn_name(y), "AddBackward0");
    em_tensor *z = em_ones(g_ctx, EM_F64, EM_SHAPE(2));
    em_tensor_set_requires_grad(z, true);
    assert_int_equal(em_mul_(y, z), EM_OK);   /* y = (2x+1) * z */
    assert_string_equal(em_tensor_grad_fn_name(y), "MulBackward0");
    assert_int_equal(em_backward(em_sum(y)), EM_OK);
    double *g = to_doubles(em_grad(x)), *gz = to_doubles(em_grad(z));
    assert_true(g[0] == 2 && g[1] == 2);      /* 2z */
    assert_true(gz[0] == 3 && gz[1] == 3);    /* the old value of y, 2x+1 */
    free(g);
    free(gz);
    /* y.mul_(y): the saved operand was overwritten, PyTorch's error */
    em_tensor *y2 = em_add_scalar(em_mul_scalar(x, 2), 1);
    assert_int_equal(em_mul_(y2, y2), EM_OK);
    assert_int_equal(em_backward(em_sum(y2)), EM_ERR_AUTOGRAD);
    assert_non_null(strstr(em_context_error(g_ctx), "modified by an inplace operation"));
    em_context_clear_error(g_ctx);
    /* modifying a saved tensor in place is detected at backward */
    em_tensor *a = em_ones(g_ctx, EM_F64, EM_SHAPE(2));
    em_tensor_set_requires_grad(a, true);
    em_tensor *b = em_mul_scalar(a, 1);
    em_tensor *c = em_mul(b, b);               /* saves b */
    em_no_grad_begin(g_ctx);
    em_add_scalar_(b, 1);
    em_no_grad_end(g_ctx);
    assert_int_equal(em_backward(em_sum(c)), EM_ERR_AUTOGRAD);
    assert_non_null(strstr(em_context_error(g_ctx), "modified by an inplace operation"));
    em_context_clear_error(g_ctx);
    /* every in-place op bumps the version, also of an empty tensor (PyTorch refuses the
     * backward through sigmoid's saved, empty, result all the same) */
    em_tensor *e = em_zeros(g_ctx, EM_F32, EM_SHAPE(0));
    em_tensor_set_requires_grad(e, true);
    em_tensor *se = em_sigmoid(e);               /* saves its result */
    assert_int_equal(em_add_scalar_(se, 0.5), EM_OK);
    assert_int_equal(em_backward(em_sum(se)), EM_ERR_AUTOGRAD);
    assert_non_null(strstr(em_context_error(g_ctx), "modified by an inplace operation"));
    em_context_clear_error(g_ctx);
    em_tensor *se2 = em_sigmoid(e);
    em_no_grad_begin(g_ctx);
    assert_int_equal(em_fill_(se2, 1), EM_OK);
    em_no_grad_end(g_ctx);
    assert_int_equal(em_backward(em_sum(se2)), EM_ERR_AUTOGRAD);
    em_context_clear_error(g_ctx);
    assert_null(em_grad(e));
    /* unmodified, the same backward runs and gives an empty gradient */
    assert_int_equal(em_backward(em_sum(em_sigmoid(e))), EM_OK);
    assert_int_equal(em_tensor_numel(em_grad(e)), 0);
    /* detach cuts the graph but shares storage */
    em_tensor *d = em_detach(y);
    assert_false(em_tensor_requires_grad(d));
    assert_true(em_tensor_is_leaf(d));
    /* requires_grad only for float leaves */
    assert_int_equal(em_tensor_set_requires_grad(y, false), EM_ERR_AUTOGRAD);
    em_context_clear_error(g_ctx);
    assert_int_equal(em_tensor_set_requires_grad(em_gt_scalar(x, 0), true), EM_ERR_AUTOGRAD);
    em_context_clear_error(g_ctx);
    /* a dtype conversion passes the gradient back in the input's dtype */
    em_tensor *xd = em_ones(g_ctx, EM_F64, EM_SHAPE(3));
    em_tensor_set_requires_grad(xd, true);
    assert_int_equal(em_backward(em_sum(em_mul_scalar(em_to_dtype(xd, EM_F32), 2))), EM_OK);
    assert_int_equal(em_tensor_dtype(em_grad(xd)), EM_F64);
    assert_true(em_item(em_sum(em_grad(xd))) == 6);
    /* set_grad_enabled */
    bool prev = em_set_grad_enabled(g_ctx, false);
    assert_true(prev);
    assert_false(em_tensor_requires_grad(em_mul(x, x)));
    em_set_grad_enabled(g_ctx, true);
    assert_true(em_tensor_requires_grad(em_mul(x, x)));
}

static void test_grad_fn_names(void **state)
{
    (void)state;
    em_tensor *x = em_rand(g_ctx, EM_F64, EM_SHAPE(3, 4));
    em_tensor *y = em_rand(g_ctx, EM_F64, EM_SHAPE(3, 4));
    em_tensor_set_requires_grad(x, true);
    em_tensor_set_requires_grad(y, true);
    struct {
        const char *key;
        em_tensor *t;
    } m[] = {
        {"add", em_add(x, y)}, {"add_scalar", em_add_scalar(x, 2)}, {"sub", em_sub(x, y)},
        {"sub_scalar", em_sub_scalar(x, 2)}, {"rsub_scalar", em_rsub_scalar(x, 2)},
        {"mul", em_mul(x, y)}, {"mul_scalar", em_mul_scalar(x, 2)}, {"div", em_div(x, y)},
        {"div_scalar", em_div_scalar(x, 2)}, {"rdiv_scalar", em_rdiv_scalar(x, 2)},
        {"neg", em_neg(x)}, {"pow", em_pow(x, 2)}, {"exp", em_exp(x)}, {"log", em_log(x)},
        {"sqrt", em_sqrt(x)}, {"abs", em_abs(x)}, {"relu", em_relu(x)}, {"tanh", em_tanh(x)},
        {"sigmoid", em_sigmoid(x)}, {"clamp", em_clamp(x, 0, 1)},
        {"clamp_minonly", em_clamp(x, 0, INFINITY)}, {"clamp_min", em_clamp_min(x, 0)},
        {"clamp_max", em_clamp_max(x, 0)}, {"maximum", em_maximum(x, y)},
        {"minimum", em_minimum(x, y)}, {"mm", em_mm(x, em_t(y))},
        {"bmm", em_bmm(em_unsqueeze(x, 0), em_unsqueeze(em_t(y), 0))}, {"sum", em_sum(x)},
        {"sum_dims", em_sum_dims(x, 1, (int[]){0}, false)}, {"mean", em_mean(x)},
        {"mean_dims", em_mean_dims(x, 1, (int[]){1}, false)}, {"t", em_t(x)},
        {"transpose", em_transpose(x, 0, 1)}, {"view", em_view(x, EM_SHAPE(12))},
        {"reshape", em_reshape(x, EM_SHAPE(12))}, {"reshape_copy", em_reshape(em_t(x), EM_SHAPE(12))},
        {"expand", em_expand(x, EM_SHAPE(2, 3, 4))}, {"unsqueeze", em_unsqueeze(x, 0)},
        {"squeeze", em_squeeze(em_unsqueeze(x, 0), 0)},
        {"where", em_where(em_gt_scalar(x, 0), x, y)},
        {"masked_fill", em_masked_fill(x, em_gt_scalar(x, 0), 0)}, {"clone", em_clone(x)},
        {"to_f32", em_to_dtype(x, EM_F32)},
    };
    int checked = 0;
    for (int i = 0; i < g_ngradfn; i++) {
        for (size_t j = 0; j < sizeof m / sizeof m[0]; j++) {
            if (strcmp(m[j].key, g_gradfn[i][0]))
                continue;
            const char *name = em_tensor_grad_fn_name(m[j].t);
            if (!name || strcmp(name, g_gradfn[i][1]))
                fail_msg("%s: grad_fn %s, PyTorch says %s", m[j].key, name ? name : "(none)", g_gradfn[i][1]);
            checked++;
        }
    }
    assert_int_equal(checked, (int)(sizeof m / sizeof m[0]));
    assert_ok_ctx();
}

static void test_sgd_matches_torch(void **state)
{
    (void)state;
    for (int k = 0; k < g_nsgd; k++) {
        const double *o = g_sgd[k];
        em_tensor *w = from_doubles(EM_F64, EM_SHAPE(4), g_sgd_init);
        em_tensor *c = from_doubles(EM_F64, EM_SHAPE(4), g_sgd_c);
        em_tensor_set_requires_grad(w, true);
        em_sgd_options opt = {.lr = o[0], .momentum = o[1], .dampening = o[2], .weight_decay = o[3],
                              .nesterov = o[4] != 0, .maximize = o[5] != 0};
        em_sgd *sgd = em_sgd_create(&w, 1, &opt);
        assert_non_null(sgd);
        for (int s = 0; s < 3; s++) {
            assert_int_equal(em_sgd_zero_grad(sgd, false), EM_OK);
            assert_int_equal(em_backward(em_sum(em_mul(em_mul(w, w), c))), EM_OK);
            assert_int_equal(em_sgd_step(sgd), EM_OK);
        }
        double *wv = to_doubles(w);
        for (int i = 0; i < 4; i++)
            if (!close_enough(wv[i], o[6 + i], 1e-12))
                fail_msg("sgd case %d element %d: %.17g vs PyTorch %.17g", k, i, wv[i], o[6 + i]);
        free(wv);
        em_sgd_free(sgd);
    }
    assert_true(g_nsgd >= 6);
    /* option validation */
    em_tensor *w = em_zeros(g_ctx, EM_F32, EM_SHAPE(2));
    em_tensor_set_requires_grad(w, true);
    assert_null(em_sgd_create(&w, 1, &(em_sgd_options){.lr = 0.1, .nesterov = true}));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    em_context_clear_error(g_ctx);
    assert_null(em_sgd_create(&w, 1, &(em_sgd_options){.lr = -1}));
    em_context_clear_error(g_ctx);
}

/* zero_grad on a .grad nothing else holds only marks it: a read fills it, and the next
 * backward adds its gradient to the scalar 0 instead of to a zeroed buffer. Every way a
 * .grad can be seen must show the zeros, and the values after the next backward must be
 * those of the eager fill + add, -0 included (0 + -0 = +0, as PyTorch's grad += g). */
static void test_zero_grad_folded(void **state)
{
    (void)state;
    em_tensor *x = em_tensor_keep(from_doubles(EM_F64, EM_SHAPE(3), (double[]){1, 1, 1}));
    em_tensor *c = em_tensor_keep(from_doubles(EM_F64, EM_SHAPE(3), (double[]){-0.0, 2, -3}));
    em_tensor_set_requires_grad(x, true);
    em_scope_begin(g_ctx);
    /* mul's backward gives g * c = (-0, 2, -3) */
    assert_int_equal(em_backward(em_sum(em_mul(x, c))), EM_OK);
    em_scope_end(g_ctx);
    for (int eager = 0; eager < 2; eager++) {
        em_scope_begin(g_ctx);
        em_tensor *held = eager ? em_grad(x) : NULL;   /* a held .grad is zeroed at once */
        assert_int_equal(em_tensor_zero_grad(x), EM_OK);
        if (held) {
            double *hv = to_doubles(held);
            assert_true(hv[0] == 0 && hv[1] == 0 && hv[2] == 0);
            free(hv);
        }
        assert_int_equal(em_tensor_zero_grad(x), EM_OK);   /* twice: still zeros */
        em_scope_end(g_ctx);
        em_scope_begin(g_ctx);
        assert_int_equal(em_backward(em_sum(em_mul(x, c))), EM_OK);
        double *gv = to_doubles(em_grad(x));
        if (!(gv[0] == 0 && !signbit(gv[0]) && gv[1] == 2 && gv[2] == -3))
            fail_msg("%s zero_grad then backward: (%g, %g, %g), want (+0, 2, -3)",
                     eager ? "eager" : "folded", gv[0], gv[1], gv[2]);
        free(gv);
        em_scope_end(g_ctx);
    }
    /* read back before any backward: zeros, through em_grad and through the optimizers */
    assert_int_equal(em_tensor_zero_grad(x), EM_OK);
    em_scope_begin(g_ctx);
    double *zv = to_doubles(em_grad(x));
    assert_true(zv[0] == 0 && zv[1] == 0 && zv[2] == 0);
    free(zv);
    em_scope_end(g_ctx);
    assert_int_equal(em_tensor_zero_grad(x), EM_OK);
    em_sgd *sgd = em_sgd_create(&x, 1, &(em_sgd_options){.lr = 0.5, .momentum = 0.9});
    assert_int_equal(em_sgd_step(sgd), EM_OK);   /* p - 0.5 * 0 */
    double *xv = to_doubles(x);
    assert_true(xv[0] == 1 && xv[1] == 1 && xv[2] == 1);
    free(xv);
    /* a failed backward leaves a zeroed .grad zeroed */
    em_tensor *y = em_tensor_keep(em_sum(em_mul(x, c)));
    assert_int_equal(em_backward(y), EM_OK);
    assert_int_equal(em_sgd_zero_grad(sgd, false), EM_OK);
    em_scope_begin(g_ctx);
    assert_int_equal(em_backward(y), EM_ERR_AUTOGRAD);   /* its graph is freed */
    em_context_clear_error(g_ctx);
    zv = to_doubles(em_grad(x));
    assert_true(zv[0] == 0 && zv[1] == 0 && zv[2] == 0);
    free(zv);
    em_scope_end(g_ctx);
    /* set_to_none after a marked zero: no .grad at all */
    assert_int_equal(em_tensor_zero_grad(x), EM_OK);
    em_tensor_clear_grad(x);
    assert_null(em_grad(x));
    em_sgd_free(sgd);
    em_tensor_free(y);
    em_tensor_free(x);
    em_tensor_free(c);
    assert_ok_ctx();

    /* the seed's step with zero_grad inside its scope (the .grad still held: eager) and
     * after it (folded) gives the same weights, bit for bit, over many steps */
    em_tensor *xs = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(16, 30)));
    em_tensor *ys = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(16, 4)));
    em_tensor *w0 = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(30, 8)));
    em_tensor *v0 = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(8, 4)));
    float *res[2];
    for (int folded = 0; folded < 2; folded++) {
        em_tensor *w1 = em_tensor_keep(em_clone(w0)), *w2 = em_tensor_keep(em_clone(v0));
        em_tensor_set_requires_grad(w1, true);
        em_tensor_set_requires_grad(w2, true);
        for (int t = 0; t < 20; t++) {
            em_scope_begin(g_ctx);
            em_tensor *loss = em_sum(em_pow(em_sub(em_mm(em_clamp(em_mm(xs, w1), 0, INFINITY),
                                                         w2), ys), 2));
            assert_int_equal(em_backward(loss), EM_OK);
            em_no_grad_begin(g_ctx);
            em_sub_(w1, em_mul_scalar(em_grad(w1), 1e-3));
            em_sub_(w2, em_mul_scalar(em_grad(w2), 1e-3));
            if (!folded) {
                em_tensor_zero_grad(w1);
                em_tensor_zero_grad(w2);
            }
            em_no_grad_end(g_ctx);
            em_scope_end(g_ctx);
            if (folded) {
                em_tensor_zero_grad(w1);
                em_tensor_zero_grad(w2);
            }
        }
        res[folded] = malloc(sizeof(float) * 30 * 8);
        assert_int_equal(em_tensor_to_host(w1, res[folded], sizeof(float) * 30 * 8), EM_OK);
        em_tensor_free(w1);
        em_tensor_free(w2);
    }
    assert_memory_equal(res[0], res[1], sizeof(float) * 30 * 8);
    free(res[0]);
    free(res[1]);
    em_tensor_free(xs);
    em_tensor_free(ys);
    em_tensor_free(w0);
    em_tensor_free(v0);
    assert_ok_ctx();
}

/* The seed step for many iterations keeps memory flat (no growth per step). */
static void test_training_memory(void **state)
{
    (void)state;
    em_manual_seed(g_ctx, 3);
    em_tensor *x = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(16, 30)));
    em_tensor *y = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(16, 4)));
    em_tensor *w1 = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(30, 8)));
    em_tensor *w2 = em_tensor_keep(em_randn(g_ctx, EM_F32, EM_SHAPE(8, 4)));
    em_tensor_set_requires_grad(w1, true);
    em_tensor_set_requires_grad(w2, true);
    size_t mem = 0;
    double first = 0, last = 0;
    for (int t = 0; t < 400; t++) {
        em_scope_begin(g_ctx);
        em_tensor *loss = em_sum(em_pow(em_sub(em_mm(em_clamp(em_mm(x, w1), 0, INFINITY), w2), y), 2));
        last = em_item(loss);
        if (t == 0)
            first = last;
        em_backward(loss);
        em_no_grad_begin(g_ctx);
        em_sub_(w1, em_mul_scalar(em_grad(w1), 1e-3));
        em_sub_(w2, em_mul_scalar(em_grad(w2), 1e-3));
        em_tensor_zero_grad(w1);
        em_tensor_zero_grad(w2);
        em_no_grad_end(g_ctx);
        em_scope_end(g_ctx);
        if (t == 5)
            mem = em_context_memory_in_use(g_ctx);
        if (t > 5)
            assert_int_equal(em_context_memory_in_use(g_ctx), mem);
    }
    assert_ok_ctx();
    assert_true(last < first / 10);
    em_tensor_free(x);
    em_tensor_free(y);
    em_tensor_free(w1);
    em_tensor_free(w2);
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    load_reference();
    const struct CMUnitTest tests[] = {
        EM_TEST(test_reference_f64),  EM_TEST(test_reference_f32),
        EM_TEST(test_gradcheck_api),  EM_TEST(test_accumulate_and_retain),
        EM_TEST(test_no_grad_and_inplace), EM_TEST(test_grad_fn_names),
        EM_TEST(test_sgd_matches_torch), EM_TEST(test_training_memory),
        EM_TEST(test_zero_grad_folded),
    };
    char name[64];
    snprintf(name, sizeof name, "autograd on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    for (int i = 0; i < g_ncases; i++) {
        for (int k = 0; k < g_cases[i].n_in; k++) {
            free(g_cases[i].in_val[k]);
            free(g_cases[i].grad[k]);
        }
        free(g_cases[i].out_val);
    }
    return rc;
}
