/* tests/test_conv.c — conv2d, conv1d and max_pool2d on one backend (EM_TEST_BACKEND) against
 * PyTorch 1.13: values, pooling indices, grad_fn names and the gradients of sum(out * r) from
 * tests/data/ref_conv.h (tests/data/gen_conv.py) in f64 and f32, em_gradcheck in f64; a
 * batch big enough to be cut into chunks against a direct loop; strided inputs; empty
 * batches; the modules, a Sequential's Conv2d then ReLU in one call against the two apart;
 * allocation failures injected into a step; and PyTorch's error messages. */
#include "harness.h"
#include "backend_harness.h"

/* Exported by libember for tests only (not in a public header). */
void em__test_fail_alloc_after(long n);

enum { CV_CONV2D, CV_CONV1D, CV_POOL };

typedef struct conv_tensor {
    int ndim;            /* -1: absent */
    int64_t shape[5];
    const double *v;
} conv_tensor;

typedef struct conv_case {
    const char *name;
    int kind;
    int kernel[2], stride[2], pad[2], dil[2];
    bool has_stride;      /* pooling: stride given (else the kernel) */
    int mode;             /* 0: padding as numbers, 1: "same", 2: "valid" */
    int extra;            /* groups (convolution), ceil_mode (pooling) */
    bool has_bias;
    conv_tensor in[3];
    conv_tensor out;
    const double *idx;    /* pooling's indices */
    const double *grad[3];
    const char *grad_fn;
} conv_case;

#include "data/ref_conv.h"

static const char *const modes[3] = {NULL, "same", "valid"};

static em_tensor *call(const conv_case *c, em_tensor *const *in)
{
    em_tensor *b = c->has_bias ? in[2] : NULL;
    switch (c->kind) {
    case CV_CONV2D:
        return c->mode ? em_conv2d_mode(in[0], in[1], b, c->stride, modes[c->mode], c->dil, c->extra)
                       : em_conv2d(in[0], in[1], b, c->stride, c->pad, c->dil, c->extra);
    case CV_CONV1D:
        return c->mode ? em_conv1d_mode(in[0], in[1], b, c->stride, modes[c->mode], c->dil, c->extra)
                       : em_conv1d(in[0], in[1], b, c->stride, c->pad, c->dil, c->extra);
    default:
        return em_max_pool2d(in[0], c->kernel, c->has_stride ? c->stride : NULL, c->pad, c->dil,
                             c->extra);
    }
}

static em_tensor *gc_fn(em_tensor *const *in, int n, void *user)
{
    (void)n;
    return call(user, in);
}

static void compare(const conv_case *c, em_dtype dt, const char *what, em_tensor *got,
                    const conv_tensor *want, const double *v, double tol)
{
    if (!got)
        fail_msg("%s [%s]: %s is NULL: %s", c->name, em_dtype_name(dt), what, em_context_error(g_ctx));
    assert_int_equal(em_tensor_ndim(got), want->ndim);
    int64_t n = 1;
    for (int d = 0; d < want->ndim; d++) {
        assert_int_equal(em_tensor_size(got, d), want->shape[d]);
        n *= want->shape[d];
    }
    double *g;
    if (em_tensor_dtype(got) == EM_I64) {
        int64_t *iv = malloc(sizeof(int64_t) * (size_t)n);
        assert_int_equal(em_tensor_to_host(got, iv, sizeof(int64_t) * (size_t)n), EM_OK);
        g = malloc(sizeof(double) * (size_t)n);
        for (int64_t i = 0; i < n; i++)
            g[i] = (double)iv[i];
        free(iv);
    } else {
        g = to_doubles(got);
    }
    for (int64_t i = 0; i < n; i++)
        if (!close_enough(g[i], v[i], tol))
            fail_msg("%s [%s]: %s element %lld: got %.17g, want %.17g", c->name, em_dtype_name(dt),
                     what, (long long)i, g[i], v[i]);
    free(g);
}

static void run_case(const conv_case *c, em_dtype dt)
{
    double tol = dt == EM_F64 ? 1e-10 : 2e-5;
    em_scope_begin(g_ctx);
    em_tensor *in[3] = {0};
    int n_in = 0;
    for (int i = 0; i < 3 && c->in[i].ndim >= 0; i++, n_in++) {
        in[i] = from_doubles(dt, c->in[i].ndim, c->in[i].shape, c->in[i].v);
        assert_int_equal(em_tensor_set_requires_grad(in[i], true), EM_OK);
    }
    em_tensor *out = call(c, in);
    compare(c, dt, "result", out, &c->out, c->out.v, tol);
    const char *gf = em_tensor_grad_fn_name(out);
    if (!gf || strcmp(gf, c->grad_fn))
        fail_msg("%s: grad_fn %s, want %s", c->name, gf ? gf : "(none)", c->grad_fn);
    if (c->idx) {
        em_tensor *v = NULL, *ix = NULL;
        assert_int_equal(em_max_pool2d_with_indices(in[0], c->kernel, c->has_stride ? c->stride : NULL,
                                                    c->pad, c->dil, c->extra, &v, &ix), EM_OK);
        compare(c, dt, "indices", ix, &c->out, c->idx, 0);
        compare(c, dt, "values", v, &c->out, c->out.v, tol);
    }
    int64_t n = em_tensor_numel(out);
    double *r = malloc(sizeof(double) * (size_t)n);
    for (int64_t j = 0; j < n; j++)
        r[j] = 0.5 + (double)(j % 7) / 8.0;
    em_tensor *rt = from_doubles(dt, em_tensor_ndim(out), em_tensor_shape(out), r);
    free(r);
    if (em_backward(em_sum(em_mul(out, rt))) != EM_OK)
        fail_msg("%s: backward: %s", c->name, em_context_error(g_ctx));
    for (int i = 0; i < n_in; i++)
        compare(c, dt, i == 0 ? "grad of x" : i == 1 ? "grad of w" : "grad of bias", em_grad(in[i]),
                &c->in[i], c->grad[i], tol * 4);
    /* ties and NaN have no derivative: finite differences do not see the routing */
    if (dt == EM_F64 && strcmp(c->name, "pool_nan") && strcmp(c->name, "pool_ties")) {
        for (int i = 0; i < n_in; i++)
            em_tensor_clear_grad(in[i]);
        em_gradcheck_result res;
        if (em_gradcheck(gc_fn, in, n_in, (void *)c, 1e-6, 1e-6, 1e-5, &res) != EM_OK)
            fail_msg("%s: gradcheck: %s", c->name, em_context_error(g_ctx));
        if (!res.passed)
            fail_msg("%s: gradcheck failed: %s", c->name, res.message);
    }
    em_scope_end(g_ctx);
    assert_ok_ctx();
}

static void test_reference(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        run_case(&conv_cases[i], EM_F64);
        run_case(&conv_cases[i], EM_F32);
    }
}

/* a batch whose column matrix is cut into chunks, and a strided input, against direct loops */
static void test_chunks(void **state)
{
    (void)state;
    enum { N = 20, C = 16, H = 28, W = 28, OC = 6, KH = 3, KW = 3 };
    int64_t nx = (int64_t)N * C * H * W, nw = OC * C * KH * KW;
    double *xv = rnd_array(nx, -1, 1), *wv = rnd_array(nw, -1, 1), *bv = rnd_array(OC, -1, 1);
    em_tensor *x = from_doubles(EM_F32, EM_SHAPE(N, C, H, W), xv);
    em_tensor *w = from_doubles(EM_F32, EM_SHAPE(OC, C, KH, KW), wv);
    em_tensor *b = from_doubles(EM_F32, EM_SHAPE(OC), bv);
    em_tensor_set_requires_grad(x, true);
    em_tensor_set_requires_grad(w, true);
    em_tensor_set_requires_grad(b, true);
    const int pad[2] = {1, 1};
    em_tensor *y = em_conv2d(x, w, b, NULL, pad, NULL, 1);
    assert_non_null(y);
    /* direct loops in double; the gradient of sum(y) */
    int64_t ny = (int64_t)N * OC * H * W;
    double *want = calloc((size_t)ny, sizeof(double)), *gx = calloc((size_t)nx, sizeof(double));
    double *gw = calloc((size_t)nw, sizeof(double));
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    double s = bv[o];
                    for (int c = 0; c < C; c++)
                        for (int a = 0; a < KH; a++)
                            for (int e = 0; e < KW; e++) {
                                int yi = i - 1 + a, xj = j - 1 + e;
                                if (yi < 0 || yi >= H || xj < 0 || xj >= W)
                                    continue;
                                int64_t xi = (((int64_t)n * C + c) * H + yi) * W + xj;
                                int64_t wi = ((o * C + c) * KH + a) * KW + e;
                                s += xv[xi] * wv[wi];
                                gx[xi] += wv[wi];
                                gw[wi] += xv[xi];
                            }
                    want[(((int64_t)n * OC + o) * H + i) * W + j] = s;
                }
    double *got = to_doubles(y);
    assert_close_arrays(got, want, ny, 1e-4);
    free(got);
    assert_int_equal(em_backward(em_sum(y)), EM_OK);
    got = to_doubles(em_grad(x));
    assert_close_arrays(got, gx, nx, 1e-4);
    free(got);
    got = to_doubles(em_grad(w));
    assert_close_arrays(got, gw, nw, 2e-4);
    free(got);
    got = to_doubles(em_grad(b));
    for (int o = 0; o < OC; o++)
        assert_true(close_enough(got[o], (double)N * H * W, 1e-5));
    free(got);
    /* the same input as a transposed view: the same result */
    em_tensor *xt = em_transpose(em_contiguous(em_transpose(x, 2, 3)), 2, 3);
    double *a = to_doubles(em_conv2d(xt, w, b, NULL, pad, NULL, 1));
    assert_close_arrays(a, want, ny, 1e-4);
    free(a);
    free(want);
    free(gx);
    free(gw);
    free(xv);
    free(wv);
    free(bv);
    assert_ok_ctx();
}

/* max_pool2d 2x2 / stride 2 over ties, -inf and NaNs, widths with and without a remainder of
 * four outputs: the same values, indices and gradients bit for bit whether the input is
 * contiguous or a transposed view (kernels may take a faster path for the first) */
static void test_pool_paths(void **state)
{
    (void)state;
    const int k[2] = {2, 2};
    const int64_t dims[3][2] = {{6, 10}, {8, 18}, {5, 16}};
    for (int s = 0; s < 3; s++) {
        const int64_t H = dims[s][0], W = dims[s][1], n = 2 * 3 * H * W;
        double *v = rnd_array(n, -3, 3);
        for (int64_t i = 0; i < n; i++) {
            int r = (int)(i * 7919 % 13);
            v[i] = r == 0 ? NAN : r == 1 ? -INFINITY : r < 6 ? 1.0 : floor(v[i]);
        }
        em_tensor *x = from_doubles(EM_F32, EM_SHAPE(2, 3, H, W), v);
        em_tensor *xt = em_transpose(em_contiguous(em_transpose(x, 2, 3)), 2, 3);
        em_tensor_set_requires_grad(x, true);
        em_tensor *vals[2], *idx[2];
        em_tensor *in[2] = {x, xt};
        for (int j = 0; j < 2; j++)
            assert_int_equal(em_max_pool2d_with_indices(in[j], k, NULL, NULL, NULL, false,
                                                        &vals[j], &idx[j]), EM_OK);
        int64_t m = em_tensor_numel(vals[0]);
        double *a = to_doubles(vals[0]), *b = to_doubles(vals[1]);
        double *ia = to_doubles(em_to_dtype(idx[0], EM_F64));
        double *ib = to_doubles(em_to_dtype(idx[1], EM_F64));
        for (int64_t i = 0; i < m; i++) {
            assert_true(isnan(a[i]) ? isnan(b[i]) : a[i] == b[i]);
            assert_true(ia[i] == ib[i]);
        }
        /* the gradient goes to the argmax: weight each window's by its position */
        em_tensor *wg = em_arange(g_ctx, EM_F32, 1, (double)m + 1, 1);
        assert_int_equal(em_backward(em_sum(em_mul(em_reshape(vals[0], 1, (int64_t[]){m}), wg))),
                         EM_OK);
        double *g = to_doubles(em_grad(x));
        for (int64_t i = 0; i < n; i++) {
            int64_t plane = i / (H * W), pos = i % (H * W);
            double want = 0;
            for (int64_t q = plane * (m / 6); q < (plane + 1) * (m / 6); q++)
                if (ia[q] == (double)pos)
                    want += (double)q + 1;
            assert_true(g[i] == want);
        }
        free(a);
        free(b);
        free(ia);
        free(ib);
        free(g);
        free(v);
    }
    assert_ok_ctx();
}

/* an empty batch gives an empty result, and zero gradients of the weight */
static void test_empty(void **state)
{
    (void)state;
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(0, 2, 5, 5));
    em_tensor *w = em_ones(g_ctx, EM_F32, EM_SHAPE(3, 2, 3, 3));
    em_tensor_set_requires_grad(w, true);
    em_tensor *y = em_conv2d(x, w, NULL, NULL, NULL, NULL, 1);
    assert_non_null(y);
    assert_int_equal(em_tensor_size(y, 0), 0);
    assert_int_equal(em_tensor_size(y, 2), 3);
    assert_int_equal(em_backward(em_sum(y)), EM_OK);
    double *g = to_doubles(em_grad(w));
    for (int i = 0; i < 54; i++)
        assert_true(g[i] == 0.0);
    free(g);
    const int k[2] = {2, 2};
    em_tensor *p = em_max_pool2d(x, k, NULL, NULL, NULL, false);
    assert_non_null(p);
    assert_int_equal(em_tensor_size(p, 0), 0);
    assert_int_equal(em_tensor_size(p, 3), 2);
    assert_ok_ctx();
}

/* Conv2d, MaxPool2d and Flatten: PyTorch's parameter names, shapes and initialisation bounds;
 * the CNN of examples/fashion_cnn forward; its state_dict saved and loaded back */
static void test_modules(void **state)
{
    (void)state;
    const int k3[2] = {3, 3}, pad1[2] = {1, 1}, k2[2] = {2, 2};
    em_manual_seed(g_ctx, 7);
    em_module *net = em_sequential(g_ctx, (em_module *[]){
        em_conv2d_module(g_ctx, 1, 32, k3, NULL, pad1, NULL, 1, true), em_relu_module(g_ctx),
        em_max_pool2d_module(g_ctx, k2, NULL, NULL, NULL, false),
        em_conv2d_module(g_ctx, 32, 64, k3, NULL, pad1, NULL, 1, true), em_relu_module(g_ctx),
        em_max_pool2d_module(g_ctx, k2, NULL, NULL, NULL, false), em_flatten_module(g_ctx),
        em_linear(g_ctx, 3136, 128, true), em_relu_module(g_ctx),
        em_linear(g_ctx, 128, 10, true)}, 10);
    assert_non_null(net);
    const char *names[8];
    em_tensor *params[8];
    assert_int_equal(em_module_parameters(net, names, params, 8), 8);
    static const char *const want[8] = {"0.weight", "0.bias", "3.weight", "3.bias",
                                        "7.weight", "7.bias", "9.weight", "9.bias"};
    static const int64_t numel[8] = {288, 32, 18432, 64, 401408, 128, 1280, 10};
    /* bound 1/sqrt(fan_in): fan_in 9, 288, 3136, 128 */
    static const double bound[8] = {1 / 3.0, 1 / 3.0, 0.058925565098878964, 0.058925565098878964,
                                    0.017857142857142856, 0.017857142857142856,
                                    0.08838834764831845, 0.08838834764831845};
    for (int i = 0; i < 8; i++) {
        assert_string_equal(names[i], want[i]);
        assert_int_equal(em_tensor_numel(params[i]), numel[i]);
        double *v = to_doubles(params[i]);
        double mx = 0;
        for (int64_t j = 0; j < numel[i]; j++)
            mx = fmax(mx, fabs(v[j]));
        free(v);
        assert_true(mx <= bound[i] * (1 + 1e-6));
        assert_true(mx > bound[i] * 0.5);   /* drawn over the whole range, not a smaller one */
    }
    assert_int_equal(em_tensor_ndim(params[2]), 4);
    assert_int_equal(em_tensor_size(params[2], 1), 32);
    assert_string_equal(em_module_name(net), "Sequential");
    em_tensor *x = em_rand(g_ctx, EM_F32, EM_SHAPE(2, 1, 28, 28));
    em_tensor *y = em_module_forward(net, x);
    assert_non_null(y);
    assert_int_equal(em_tensor_size(y, 0), 2);
    assert_int_equal(em_tensor_size(y, 1), 10);
    double *before = to_doubles(y);
    char *path = th_join(th_tmpdir(), "cnn.safetensors");
    assert_int_equal(em_module_save(net, path, NULL), EM_OK);
    em_no_grad_begin(g_ctx);
    for (int i = 0; i < 8; i++)
        assert_int_equal(em_zero_(params[i]), EM_OK);
    em_no_grad_end(g_ctx);
    assert_int_equal(em_module_load(net, path), EM_OK);
    double *after = to_doubles(em_module_forward(net, x));
    assert_close_arrays(after, before, 20, 0);
    free(before);
    free(after);
    free(path);
    em_module_free(net);
    /* module errors */
    assert_null(em_conv2d_module(g_ctx, 3, 4, k3, NULL, NULL, NULL, 2, true));
    TH_EXPECT_MSG(em_context_status(g_ctx), EM_ERR_INVALID, em_context_error(g_ctx),
                  "in_channels must be divisible by groups");
    em_context_clear_error(g_ctx);
    assert_ok_ctx();
}

/* a conv + pool + conv step with its backward: its status */
static em_status fault_step(em_tensor *x, em_tensor *w, em_tensor *b)
{
    const int pad[2] = {1, 1}, k2[2] = {2, 2};
    em_scope_begin(g_ctx);
    em_tensor *y = em_max_pool2d(em_relu(em_conv2d(x, w, b, NULL, pad, NULL, 1)), k2, NULL, NULL,
                                 NULL, false);
    em_tensor *l = em_sum(em_conv2d(y, w, NULL, NULL, NULL, NULL, 1));
    em_status st = l ? em_backward(l) : em_context_status(g_ctx);
    if (st == EM_OK)
        st = em_context_status(g_ctx);
    em_tensor_zero_grad(x);
    em_tensor_zero_grad(w);
    em_tensor_zero_grad(b);
    em_scope_end(g_ctx);
    return st;
}

/* For N = 1, 2, ... the Nth allocation fails during a step: an error with a message, no
 * device memory held afterwards, and the next step succeeds (ASan/LSan: no leak) */
/* The bits of every tensor in a (n of them), b: equal */
static void same_bits(em_tensor *const *a, em_tensor *const *b, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        assert_non_null(a[i]);
        assert_non_null(b[i]);
        size_t bytes = (size_t)em_tensor_numel(a[i]) * 4;
        assert_int_equal(em_tensor_numel(a[i]), em_tensor_numel(b[i]));
        unsigned char *x = malloc(bytes), *y = malloc(bytes);
        assert_int_equal(em_tensor_to_host(a[i], x, bytes), EM_OK);
        assert_int_equal(em_tensor_to_host(b[i], y, bytes), EM_OK);
        if (memcmp(x, y, bytes))
            fail_msg("%s: tensor %d differs from relu(conv2d(...))", what, i);
        free(x);
        free(y);
    }
}

/* A Sequential's Conv2d then ReLU run as one call (the ReLU applied by the backend's conv2d
 * kernel where it has ABI 1.6's ip[11]): the same bits as relu(conv2d(...)) called apart, in
 * the output and in every gradient, the same grad_fn (ReluBackward0 over
 * ConvolutionBackward0), with and without grad; a first layer (the cpu backend's direct
 * kernel) and a wider one (its Winograd kernel), inputs with negatives so that ReLU cuts. */
static void test_conv_relu(void **state)
{
    (void)state;
    const int k3[2] = {3, 3}, pad1[2] = {1, 1};
    em_manual_seed(g_ctx, 11);
    em_module *net = em_sequential(g_ctx, (em_module *[]){
        em_conv2d_module(g_ctx, 1, 8, k3, NULL, pad1, NULL, 1, true), em_relu_module(g_ctx),
        em_conv2d_module(g_ctx, 8, 16, k3, NULL, NULL, NULL, 1, true), em_relu_module(g_ctx)}, 4);
    assert_non_null(net);
    em_tensor *p[4];
    assert_int_equal(em_module_parameters(net, NULL, p, 4), 4);
    em_scope_begin(g_ctx);
    em_tensor *x = em_randn(g_ctx, EM_F32, EM_SHAPE(3, 1, 9, 11));
    em_tensor_set_requires_grad(x, true);
    em_tensor *y = em_module_forward(net, x);
    assert_non_null(y);
    assert_string_equal(em_tensor_grad_fn_name(y), "ReluBackward0");
    em_tensor *r = em_randn(g_ctx, EM_F32, EM_SHAPE(3, 16, 7, 9));
    assert_int_equal(em_backward(em_sum(em_mul(y, r))), EM_OK);
    em_tensor *got[6] = {y, em_clone(em_grad(x)), em_clone(em_grad(p[0])),
                         em_clone(em_grad(p[1])), em_clone(em_grad(p[2])),
                         em_clone(em_grad(p[3]))};
    for (int i = 0; i < 4; i++)
        em_tensor_clear_grad(p[i]);
    em_tensor_clear_grad(x);
    em_tensor *h = em_conv2d(x, p[0], p[1], NULL, pad1, NULL, 1);
    assert_string_equal(em_tensor_grad_fn_name(h), "ConvolutionBackward0");
    em_tensor *yr = em_relu(em_conv2d(em_relu(h), p[2], p[3], NULL, NULL, NULL, 1));
    assert_int_equal(em_backward(em_sum(em_mul(yr, r))), EM_OK);
    em_tensor *want[6] = {yr, em_grad(x), em_grad(p[0]), em_grad(p[1]), em_grad(p[2]),
                          em_grad(p[3])};
    same_bits(got, want, 6, "with grad");
    /* without grad: the same values */
    em_no_grad_begin(g_ctx);
    em_tensor *y0 = em_module_forward(net, x);
    em_no_grad_end(g_ctx);
    same_bits(&y0, &yr, 1, "no grad");
    em_scope_end(g_ctx);
    for (int i = 0; i < 4; i++)
        em_tensor_clear_grad(p[i]);
    em_module_free(net);
    assert_ok_ctx();
}

static void test_faults(void **state)
{
    (void)state;
    em_tensor *x = em_tensor_keep(em_rand(g_ctx, EM_F32, EM_SHAPE(3, 4, 8, 8)));
    em_tensor *w = em_tensor_keep(em_rand(g_ctx, EM_F32, EM_SHAPE(4, 4, 3, 3)));
    em_tensor *b = em_tensor_keep(em_rand(g_ctx, EM_F32, EM_SHAPE(4)));
    em_tensor_set_requires_grad(x, true);
    em_tensor_set_requires_grad(w, true);
    em_tensor_set_requires_grad(b, true);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fault_step(x, w, b), EM_OK);
    size_t baseline = em_context_memory_in_use(g_ctx);
    int n, failures = 0;
    for (n = 1; n <= 3000; n++) {
        em_context_clear_error(g_ctx);
        em__test_fail_alloc_after(n);
        em_status st = fault_step(x, w, b);
        em__test_fail_alloc_after(0);
        if (st == EM_OK)
            break;
        failures++;
        const char *msg = em_context_error(g_ctx);
        if (!msg || !*msg)
            fail_msg("N=%d: status %s without a message", n, em_status_name(st));
        em_context_clear_error(g_ctx);
        if (em_context_memory_in_use(g_ctx) != baseline)
            fail_msg("N=%d: %zu bytes of device memory in use after a failed step, %zu before", n,
                     em_context_memory_in_use(g_ctx), baseline);
        if (fault_step(x, w, b) != EM_OK)
            fail_msg("N=%d: the context is not usable after the failure: %s", n,
                     em_context_error(g_ctx));
    }
    print_message("# conv step: %d injected failures handled, succeeded at N=%d\n", failures, n);
    assert_true(n <= 3000);
    assert_true(failures > 0);
    em_tensor_free(x);
    em_tensor_free(w);
    em_tensor_free(b);
    assert_ok_ctx();
}

#define EXPECT_ERR(call, st, ...)                                                                  \
    do {                                                                                           \
        assert_null(call);                                                                         \
        TH_EXPECT_MSG(em_context_status(g_ctx), st, em_context_error(g_ctx), __VA_ARGS__);        \
        em_context_clear_error(g_ctx);                                                             \
    } while (0)

static void test_errors(void **state)
{
    (void)state;
    em_tensor *x = em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3, 5, 5));
    em_tensor *w = em_zeros(g_ctx, EM_F32, EM_SHAPE(4, 3, 3, 3));
    const int zero[2] = {0, 0}, neg[2] = {-1, -1}, two[2] = {2, 2}, three[2] = {3, 3};
    EXPECT_ERR(em_conv2d(em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3)), w, NULL, NULL, NULL, NULL, 1),
               EM_ERR_SHAPE, "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got "
               "input of size: [2, 3]");
    EXPECT_ERR(em_conv2d(em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 2, 5, 5)), w, NULL, NULL, NULL, NULL, 1),
               EM_ERR_SHAPE, "Given groups=1, weight of size [4, 3, 3, 3], expected input[2, 2, 5, 5] "
               "to have 3 channels, but got 2 channels instead");
    EXPECT_ERR(em_conv2d(x, em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 1, 3, 3)), NULL, NULL, NULL, NULL, 2),
               EM_ERR_SHAPE, "Given groups=2, expected weight to be divisible by 2 at dimension 0, "
               "but got weight of size [[3, 1, 3, 3]] instead");
    EXPECT_ERR(em_conv2d(em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3, 2, 2)), w, NULL, NULL, NULL, NULL, 1),
               EM_ERR_SHAPE, "Calculated padded input size per channel: (2 x 2). Kernel size: "
               "(3 x 3). Kernel size can't be greater than actual input size");
    EXPECT_ERR(em_conv2d(x, w, NULL, zero, NULL, NULL, 1), EM_ERR_INVALID,
               "non-positive stride is not supported");
    EXPECT_ERR(em_conv2d(x, w, NULL, NULL, neg, NULL, 1), EM_ERR_INVALID,
               "negative padding is not supported");
    EXPECT_ERR(em_conv2d(x, w, NULL, NULL, NULL, zero, 1), EM_ERR_INVALID,
               "non-positive dilation is not supported");
    EXPECT_ERR(em_conv2d(x, w, NULL, NULL, NULL, NULL, 0), EM_ERR_INVALID,
               "non-positive groups is not supported");
    EXPECT_ERR(em_conv2d_mode(x, w, NULL, two, "same", NULL, 1), EM_ERR_INVALID,
               "padding='same' is not supported for strided convolutions");
    EXPECT_ERR(em_conv2d_mode(x, w, NULL, NULL, "foo", NULL, 1), EM_ERR_INVALID,
               "Invalid padding string: 'foo'");
    EXPECT_ERR(em_conv2d(x, w, em_zeros(g_ctx, EM_F32, EM_SHAPE(3)), NULL, NULL, NULL, 1),
               EM_ERR_SHAPE, "Given weight of size [4, 3, 3, 3], expected bias to be 1-dimensional "
               "with 4 elements, but got bias of size [3] instead");
    EXPECT_ERR(em_conv2d(em_zeros(g_ctx, EM_F64, EM_SHAPE(2, 3, 5, 5)), w, NULL, NULL, NULL, NULL, 1),
               EM_ERR_DTYPE, "expected scalar type Double but found Float");
    EXPECT_ERR(em_conv2d(x, w, em_zeros(g_ctx, EM_F64, EM_SHAPE(4)), NULL, NULL, NULL, 1),
               EM_ERR_DTYPE, "Input type (float) and bias type (double) should be the same");
    EXPECT_ERR(em_conv2d(x, em_zeros(g_ctx, EM_F32, EM_SHAPE(4, 3, 3)), NULL, NULL, NULL, NULL, 1),
               EM_ERR_SHAPE, "Expected 3-dimensional input for 3-dimensional weight [4, 3, 3], but "
               "got 4-dimensional input of size [2, 3, 5, 5] instead");
    EXPECT_ERR(em_conv1d(x, w, NULL, NULL, NULL, NULL, 1), EM_ERR_SHAPE,
               "Expected 2D (unbatched) or 3D (batched) input to conv1d, but got input of size: "
               "[2, 3, 5, 5]");
    em_tensor *xi = em_zeros(g_ctx, EM_I64, EM_SHAPE(2, 3, 5, 5));
    EXPECT_ERR(em_conv2d(xi, em_zeros(g_ctx, EM_I64, EM_SHAPE(4, 3, 3, 3)), NULL, NULL, NULL, NULL, 1),
               EM_ERR_DTYPE, "not implemented for 'Long'");
    /* pooling */
    EXPECT_ERR(em_max_pool2d(x, three, NULL, two, NULL, false), EM_ERR_INVALID,
               "pad should be at most half of kernel size, but got pad=2 and kernel_size=3");
    EXPECT_ERR(em_max_pool2d(em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 3, 2, 2)), three, NULL, NULL, NULL,
                             false), EM_ERR_SHAPE,
               "Given input size: (3x2x2). Calculated output size: (3x0x0). Output size is too small");
    EXPECT_ERR(em_max_pool2d(x, two, zero, NULL, NULL, false), EM_ERR_INVALID,
               "stride should not be zero");
    EXPECT_ERR(em_max_pool2d(x, two, neg, NULL, NULL, false), EM_ERR_INVALID,
               "stride should be greater than zero, but got dH: -1 dW: -1");
    EXPECT_ERR(em_max_pool2d(x, (const int[]){0, 2}, (const int[]){1, 1}, NULL, NULL, false),
               EM_ERR_INVALID, "kernel size should be greater than zero, but got kH: 0 kW: 2");
    EXPECT_ERR(em_max_pool2d(x, two, NULL, NULL, neg, false), EM_ERR_INVALID,
               "dilation should be greater than zero, but got dilationH: -1 dilationW: -1");
    EXPECT_ERR(em_max_pool2d(x, two, NULL, neg, NULL, false), EM_ERR_INVALID,
               "pad must be non-negative, but got pad: -1");
    EXPECT_ERR(em_max_pool2d(em_zeros(g_ctx, EM_F32, EM_SHAPE(3, 5)), two, NULL, NULL, NULL, false),
               EM_ERR_SHAPE, "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size "
               "for input, but got:[3, 5]");
    EXPECT_ERR(em_max_pool2d(xi, two, NULL, NULL, NULL, false), EM_ERR_DTYPE,
               "\"max_pool2d\" not implemented for 'Long'");
    /* NULL in, NULL out */
    assert_null(em_conv2d(NULL, w, NULL, NULL, NULL, NULL, 1));
    assert_null(em_max_pool2d(NULL, two, NULL, NULL, NULL, false));
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_reference), EM_TEST(test_chunks), EM_TEST(test_empty), EM_TEST(test_modules),
        EM_TEST(test_faults), EM_TEST(test_errors), EM_TEST(test_pool_paths),
        EM_TEST(test_conv_relu),
    };
    char name[64];
    snprintf(name, sizeof name, "convolution and pooling on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
