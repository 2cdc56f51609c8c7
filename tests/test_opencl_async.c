/* tests/test_opencl_async.c — the opencl plugin's ABI 1.1 entries, called through its entry
 * symbol and ops table as the core's loader does (the core's use of them is written
 * separately, so they are pinned down here, at the plugin level):
 *  - describe calls create nothing, call no OpenCL function (seen in the dynamic linker's
 *    binding log of a child process) and give the normal description; a host struct too
 *    short to hold flags is a normal call;
 *  - the dtype masks are exactly what the plugin means to declare (1.0's promise, and the
 *    integer dtypes and kernels of 1.2 where the core uses them), and every kernel honours
 *    its mask: a declared dtype runs, an undeclared one fails without touching the output;
 *    argument errors (shapes, bounds) leave the output untouched as well;
 *  - device_props: no EM_DEVICE_HOST_BUFFERS; a 1.0-sized struct is not written past;
 *  - pinned host memory; async copies on a stream, ordered against kernels on the device
 *    queue with events, over 4 MiB buffers so that a missing wait shows as stale data;
 *    stream NULL orders with the kernels; synchronize waits for every stream; events
 *    destroyed before completion, never recorded, re-recorded; OpenCL errors are reported
 *    by name; a device closed with streams and pinned blocks left releases them.
 * Without an OpenCL device: TAP SKIP with the reason (EMBER_TEST_REQUIRE=opencl makes that
 * a failure). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_host.h"

/* ------------------------------------------------------------------ plugin and host */

/* host->alloc blocks the plugin holds: how the tests see that it created or freed
 * something */
static long g_live, g_nalloc;
static char g_log[1024];   /* the last message logged at warning level or above */

static void *c_alloc(em_host_ctx *hc, size_t n)
{
    (void)hc;
    void *p = malloc(n);
    g_nalloc++;
    g_live += p != NULL;
    return p;
}

static void c_free(em_host_ctx *hc, void *p)
{
    (void)hc;
    g_live -= p != NULL;
    free(p);
}

static void c_log(em_host_ctx *hc, em_log_level level, const char *fmt, ...)
{
    (void)hc;
    if (level > EM_LOG_WARN)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_log, sizeof g_log, fmt, ap);
    va_end(ap);
}

static em_host g_chost;   /* g_host with the counting alloc/free and the log above */
static char g_path[4096]; /* the plugin */
static em_backend_entry_fn g_entry;
static em_backend g_be;
static const em_backend_ops *g_ops;
static void *g_dev;
static int g_fp64;

#define MIB4 ((size_t)4 << 20)
#define N4 (MIB4 / sizeof(float))   /* f32 elements in 4 MiB */

/* ------------------------------------------------------------------ helpers */

static void *dbuf(size_t bytes)
{
    void *b = NULL;
    if (g_ops->buffer_alloc(g_dev, bytes, &b) != EM_OK)
        fail_msg("buffer_alloc(%zu): %s", bytes, g_msg);
    return b;
}

static void ok(em_status st, const char *what)
{
    if (st != EM_OK)
        fail_msg("%s: status %d: %s", what, (int)st, g_msg);
}

static em_kview view(void *buf, int32_t dt, int64_t n)
{
    em_kview v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    v.buf = buf;
    v.dtype = dt;
    v.ndim = 1;
    v.shape[0] = n;
    v.strides[0] = 1;
    return v;
}

/* As a 1.1 core fills them: outs and ins point into *a itself, so no copies of it */
static em_kargs *kargs(em_kargs *a, const em_kview *out, const em_kview *i0,
                       const em_kview *i1, const em_kview *i2, double p0)
{
    memset(a, 0, sizeof *a);
    a->struct_size = sizeof *a;
    a->out = out;
    a->in[0] = i0;
    a->in[1] = i1;
    a->in[2] = i2;
    a->p[0] = p0;
    a->n_out = 1;
    a->outs = &a->out;
    a->n_in = i2 ? 3 : i1 ? 2 : i0 ? 1 : 0;
    a->ins = a->in;
    return a;
}

/* out = in + p on the device queue, through the ops table */
static void add_scalar(void *out, void *in, size_t n, double p)
{
    em_kview o = view(out, EM_F32, (int64_t)n), i = view(in, EM_F32, (int64_t)n);
    em_kargs a;
    ok(g_ops->add_scalar(g_dev, kargs(&a, &o, &i, NULL, NULL, p)), "add_scalar");
}

static float *iota_f32(size_t n, float base)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = base + (float)i;
    return v;
}

/* 4 MiB of NaN: a copy that has not landed shows as NaN, never as a plausible value */
static float *nan_f32(size_t n)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = NAN;
    return v;
}

static void expect_iota(const float *v, size_t n, float base, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] != base + (float)i)
            fail_msg("%s: element %zu of %zu is %.9g, expected %.9g", what, i, n, (double)v[i],
                     (double)(base + (float)i));
}

/* ------------------------------------------------------------------ describe calls */

static void test_describe(void **state)
{
    (void)state;
    em_host h = g_chost;
    h.flags = EM_HOST_DESCRIBE;
    em_backend d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    long n0 = g_nalloc, live0 = g_live;
    ok(g_entry(&h, NULL, NULL, 0, &d), "describe call");
    assert_null(d.ctx);
    assert_int_equal(g_nalloc, n0);   /* not even a block freed again */
    assert_int_equal(g_live, live0);
    assert_int_equal(d.abi_major, EM_ABI_MAJOR);
    assert_int_equal(d.abi_minor, EM_ABI_MINOR);
    assert_string_equal(d.name, "opencl");
    assert_string_equal(d.version, g_be.version);
    assert_string_equal(d.description, g_be.description);
    assert_ptr_equal(d.ops, g_be.ops);
    /* the same keys as a normal call, in the same order */
    assert_non_null(d.config_keys);
    int i = 0;
    for (; d.config_keys[i] && g_be.config_keys[i]; i++)
        assert_string_equal(d.config_keys[i], g_be.config_keys[i]);
    assert_null(d.config_keys[i]);
    assert_null(g_be.config_keys[i]);
    assert_true(i >= 4);

    /* a major the plugin does not speak is refused in describe calls too */
    h.abi_major = EM_ABI_MAJOR + 1;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    assert_int_equal(g_entry(&h, NULL, NULL, 0, &d), EM_ERR_PLUGIN);

    /* a host of a core whose struct ends before flags: whatever lies there is not read */
    h = g_chost;
    h.flags = EM_HOST_DESCRIBE;
    h.struct_size = offsetof(em_host, flags);
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    ok(g_entry(&h, NULL, NULL, 0, &d), "entry with a 1.0 host");
    assert_non_null(d.ctx);
    d.ops->shutdown(d.ctx);
    assert_int_equal(g_live, live0);
}

/* Child (--describe-child, run under LD_DEBUG=bindings): with lazy binding the dynamic
 * linker logs each OpenCL function the plugin calls the first time, so the log between the
 * markers names what the describe call used. A normal call and device_count follow, to
 * show that the log does name them here. */
static int describe_child(void)
{
    void *dl = dlopen(g_path, RTLD_LAZY | RTLD_LOCAL);
    void *sym = dl ? dlsym(dl, EM_BACKEND_ENTRY_NAME) : NULL;
    if (!sym)
        return 2;
    em_backend_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    em_host h = g_chost;
    h.flags = EM_HOST_DESCRIBE;
    em_backend b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    fprintf(stderr, "@@describe\n");
    em_status st = entry(&h, NULL, NULL, 0, &b);
    fprintf(stderr, "@@control\n");
    h.flags = 0;
    int n = 0;
    if (entry(&h, NULL, NULL, 0, &b) == EM_OK) {
        b.ops->device_count(b.ctx, &n);
        b.ops->shutdown(b.ctx);
    }
    fprintf(stderr, "@@end\n");
    return st != EM_OK;
}

/* Does the log between from and to show the plugin binding an OpenCL function? Lines
 * read "binding file <dir>/ember-backend-opencl.so [0] to <dir>/libOpenCL.so.1 [0]:
 * normal symbol `clGetPlatformIDs' [OPENCL_1.0]". */
static int binds_cl(const char *from, const char *to)
{
    for (const char *l = from; l < to;) {
        const char *end = memchr(l, '\n', (size_t)(to - l));
        if (!end)
            end = to;
        size_t len = (size_t)(end - l);
        if (memmem(l, len, "ember-backend-opencl", 20) && memmem(l, len, "`cl", 3))
            return 1;
        l = end + 1;
    }
    return 0;
}

static void test_describe_calls_no_opencl(void **state)
{
    (void)state;
    /* readlink, not exec of /proc/self/exe: under valgrind that is valgrind's own binary,
     * and valgrind answers the readlink with this program */
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(sl > 0);
    self[sl] = 0;
    /* the log goes to a file: a pipe could fill up before the child exits */
    FILE *f = tmpfile();
    assert_non_null(f);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fileno(f), 2);
        setenv("LD_DEBUG", "bindings", 1);
        unsetenv("LD_BIND_NOW");
        execl(self, self, "--describe-child", (char *)NULL);
        fprintf(stderr, "exec: %s\n", strerror(errno));
        _exit(3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    assert_true(n >= 0);
    char *log = malloc((size_t)n + 1);
    assert_non_null(log);
    rewind(f);
    n = (long)fread(log, 1, (size_t)n, f);
    log[n] = 0;
    fclose(f);
    const char *d = strstr(log, "@@describe\n"), *c = d ? strstr(d, "@@control\n") : NULL;
    const char *e = c ? strstr(c, "@@end\n") : NULL;
    /* the verdict first, then free the log: a failure does not return */
    static char why[3200];
    why[0] = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !e)
        snprintf(why, sizeof why, "describe child: status %d, log tail: %s", status,
                 n > 600 ? log + n - 600 : log);
    else if (binds_cl(d, c))
        snprintf(why, sizeof why, "the describe call called OpenCL functions:\n%.*s",
                 (int)(c - d < 3000 ? c - d : 3000), d);
    int control = e && binds_cl(c, e);
    free(log);
    if (why[0])
        fail_msg("%s", why);
    if (!control)   /* bound at load time (-z now, or a loader without lazy binding) */
        skip();
}

/* ------------------------------------------------------------------ dtypes */

enum { K_OUT, K_UN, K_BIN, K_CMP, K_WHERE, K_MFILL, K_SUM, K_COPY, K_ARGDIM, K_DIM, K_ISEL,
       K_GATHER, K_SCATTER, K_ADAM, K_AVGPOOL, K_IM2COL, K_COL2IM, K_MAXPOOL, K_MAXPOOLGRAD,
       K_SGD };

/* what the plugin declares: floats (and bool) where 1.0 promised them, integer dtypes where
 * the core calls a kernel with them (core/plugin/kernels.c) */
#define FL EM_DTYPES_ABI10_FLOAT
#define FN (EM_DTYPES_FLOAT | EM_DTYPES_INT)
#define FI (EM_DTYPES_FLOAT | EM_DTYPE_BIT(EM_I64))
#define ALL EM_DTYPES_ALL
#define K(name, kind, mask)                                                               \
    { #name, offsetof(em_backend_ops, name), offsetof(em_kernel_dtypes, name), kind, mask }

static const struct kcase {
    const char *name;
    size_t op, dt;
    int kind;
    em_dtype_mask want;
} g_kernels[] = {
    K(fill, K_OUT, ALL), K(rng_uniform, K_OUT, FL), K(rng_normal, K_OUT, FL),
    K(copy, K_COPY, ALL),
    K(neg, K_UN, FN), K(exp, K_UN, FL), K(log, K_UN, FL), K(sqrt, K_UN, FL), K(abs, K_UN, FN),
    K(relu, K_UN, FL), K(tanh, K_UN, FL), K(sigmoid, K_UN, FL),
    K(add_scalar, K_UN, FN), K(mul_scalar, K_UN, FN), K(rsub_scalar, K_UN, FN),
    K(div_scalar, K_UN, FL), K(rdiv_scalar, K_UN, FL), K(pow_scalar, K_UN, FL),
    K(clamp, K_UN, FN),
    K(add, K_BIN, FN), K(sub, K_BIN, FN), K(mul, K_BIN, FN), K(div, K_BIN, FL),
    K(maximum, K_BIN, FN), K(minimum, K_BIN, FN),
    K(lt, K_CMP, ALL), K(le, K_CMP, ALL), K(gt, K_CMP, ALL), K(ge, K_CMP, ALL),
    K(eq, K_CMP, ALL), K(ne, K_CMP, ALL),
    K(where, K_WHERE, ALL), K(masked_fill, K_MFILL, ALL),
    K(sum, K_SUM, FI),
    K(relu_backward, K_BIN, FL), K(clamp_backward, K_BIN, FL), K(pow_backward, K_BIN, FL),
    K(tanh_backward, K_BIN, FL), K(sigmoid_backward, K_BIN, FL),
    /* ABI 1.2 */
    K(log1p, K_UN, FL), K(expm1, K_UN, FL), K(sin, K_UN, FL), K(cos, K_UN, FL),
    K(erf, K_UN, FL), K(floor, K_UN, FL), K(ceil, K_UN, FL), K(round, K_UN, FL),
    K(sign, K_UN, FN),
    K(pow, K_BIN, FL), K(floor_divide, K_BIN, FN), K(remainder, K_BIN, FN),
    K(prod, K_SUM, FI),
    K(max_dim, K_ARGDIM, FN), K(min_dim, K_ARGDIM, FN), K(softmax, K_DIM, FL),
    K(log_softmax, K_DIM, FL),
    K(index_select, K_ISEL, ALL), K(gather, K_GATHER, ALL), K(scatter_add, K_SCATTER, FN),
    /* ABI 1.3 */
    K(adam, K_ADAM, FL),
    /* ABI 1.4 */
    K(avg_pool2d, K_AVGPOOL, FL), K(avg_pool2d_grad, K_AVGPOOL, FL),
    K(im2col, K_IM2COL, FL), K(col2im, K_COL2IM, FL), K(max_pool2d, K_MAXPOOL, FL),
    /* ABI 1.5 */
    K(max_pool2d_grad, K_MAXPOOLGRAD, FL),
    /* ABI 1.7 */
    K(sgd, K_SGD, FL),
};
#define NKERNELS ((int)(sizeof g_kernels / sizeof g_kernels[0]))
/* kernels the plugin leaves out (NULL entry, mask 0): the optional whole convolutions of ABI
 * 1.4, which the core lowers to im2col / col2im and gemm for it */
static const struct kabsent {
    const char *name;
    size_t op, dt;
} g_absent[] = {
#define KA(name) {#name, offsetof(em_backend_ops, name), offsetof(em_kernel_dtypes, name)}
    KA(conv2d), KA(conv2d_grad_input), KA(conv2d_grad_weight),
#undef KA
};
#define NABSENT ((int)(sizeof g_absent / sizeof g_absent[0]))

#define NE 8   /* elements per view */
#define SENT 0xa5

static em_dtype_mask declared(const em_kernel_dtypes *t, size_t off)
{
    em_dtype_mask m;
    memcpy(&m, (const char *)t + off, sizeof m);
    return m;
}

/* Read back `bytes` of buf: all SENT, i.e. untouched since set_sentinel? */
static int untouched(void *buf, size_t bytes)
{
    unsigned char got[NE * 8];
    ok(g_ops->synchronize(g_dev), "synchronize");
    ok(g_ops->copy_d2h(g_dev, got, buf, 0, bytes), "copy_d2h");
    for (size_t i = 0; i < bytes; i++)
        if (got[i] != SENT)
            return 0;
    return 1;
}

static void set_sentinel(void *buf)
{
    unsigned char s[NE * 8];
    memset(s, SENT, sizeof s);
    ok(g_ops->copy_h2d(g_dev, buf, 0, s, sizeof s), "copy_h2d");
}

/* C (2 x 2) = A B, row stride of A lda */
static em_gemm_args gemm2x2(int32_t dt, void *a, void *b, void *c, int64_t lda)
{
    em_gemm_args g;
    memset(&g, 0, sizeof g);
    g.struct_size = sizeof g;
    g.dtype = dt;
    g.m = g.n = g.k = 2;
    g.batch = 1;
    g.lda = lda;
    g.ldb = g.ldc = 2;
    g.alpha = 1;
    g.a = a;
    g.b = b;
    g.c = c;
    return g;
}

/* call must fail and leave out's SENT bytes as they were */
#define REFUSED(out, call)                                                                \
    do {                                                                                  \
        set_sentinel(out);                                                                \
        em_status st_ = (call);                                                           \
        if (st_ == EM_OK || !untouched((out), NE * 8))                                    \
            fail_msg("%s: status %d, output %s", #call, (int)st_,                         \
                     st_ == EM_OK ? "-" : "written");                                     \
    } while (0)

/* v as the (outer, n, inner) view (1, n, 1) */
static em_kview as_3d(em_kview v, int64_t n)
{
    v.ndim = 3;
    v.shape[0] = v.shape[2] = 1;
    v.shape[1] = n;
    v.strides[0] = n;
    v.strides[1] = v.strides[2] = 1;
    return v;
}

/* v as the (N, C, H, W) view (1, 1, 1, n) */
static em_kview as_4d(em_kview v)
{
    int64_t n = v.shape[0];
    v.ndim = 4;
    v.shape[0] = v.shape[1] = v.shape[2] = 1;
    v.shape[3] = n;
    v.strides[0] = v.strides[1] = v.strides[2] = n;
    v.strides[3] = 1;
    return v;
}

/* One call of kernel kc with data dtype dt (copy: out dt, input dt2) on views of NE
 * elements; out holds SENT bytes before. Index views (i64) and max_dim's indices use the
 * zeroed input buffers, so every index is 0. */
static em_status call_kernel(const struct kcase *kc, int32_t dt, int32_t dt2, void *out,
                             void *const *in)
{
    em_kview o = view(out, dt, NE), v0 = view(in[0], dt, NE), v1 = view(in[1], dt, NE),
             v2 = view(in[2], dt, NE), ix = view(in[2], EM_I64, NE);
    const em_kview *i0 = NULL, *i1 = NULL, *i2 = NULL;
    const em_kview *outs[2] = {&o, &ix};
    const int64_t ip[1] = {0};
    switch (kc->kind) {
    case K_OUT: break;
    case K_UN: i0 = &v0; break;
    case K_BIN: i0 = &v0; i1 = &v1; break;
    case K_CMP: o.dtype = EM_BOOL; i0 = &v0; i1 = &v1; break;
    case K_WHERE: v0.dtype = EM_BOOL; i0 = &v0; i1 = &v1; i2 = &v2; break;
    case K_MFILL: v1.dtype = EM_BOOL; i0 = &v0; i1 = &v1; break;
    case K_SUM: o.shape[0] = 1; i0 = &v0; break;
    case K_COPY: v0.dtype = dt2; i0 = &v0; break;
    case K_ARGDIM: v0 = as_3d(v0, NE); o = as_3d(o, 1); ix = as_3d(ix, 1); i0 = &v0; break;
    case K_DIM: v0 = as_3d(v0, NE); o = as_3d(o, NE); i0 = &v0; break;
    case K_ISEL: v0 = as_3d(v0, NE); o = as_3d(o, NE); i0 = &v0; i1 = &ix; break;
    case K_GATHER: i0 = &v0; i1 = &ix; break;
    case K_SCATTER: i0 = &ix; i1 = &v1; break;
    case K_ADAM: i0 = &v0; i1 = &v1; break;
    case K_SGD: i0 = &v0; i1 = &v1; break;
    case K_AVGPOOL: v0 = as_3d(v0, NE); o = as_3d(o, NE); i0 = &v0; break;
    /* a 1x1 window over (1, 1, 1, NE): columns (1, 1, NE) */
    case K_IM2COL: v0 = as_4d(v0); o = as_3d(o, NE); o.shape[0] = o.shape[1] = 1;
        o.shape[2] = NE; o.strides[0] = o.strides[1] = NE; i0 = &v0; break;
    case K_COL2IM: o = as_4d(o); v0 = as_3d(v0, NE); v0.shape[0] = v0.shape[1] = 1;
        v0.shape[2] = NE; v0.strides[0] = v0.strides[1] = NE; i0 = &v0; break;
    case K_MAXPOOL: o = as_4d(o); ix = as_4d(ix); v0 = as_4d(v0); i0 = &v0; break;
    case K_MAXPOOLGRAD: o = as_4d(o); ix = as_4d(ix); v0 = as_4d(v0); i0 = &v0; i1 = &ix;
        break;
    }
    em_kargs a;
    kargs(&a, &o, i0, i1, i2, 1.0);
    if (kc->kind == K_ARGDIM) {
        a.outs = outs;
        a.n_out = 2;
    }
    if (kc->kind == K_GATHER || kc->kind == K_SCATTER) {
        a.ip = ip;
        a.n_ip = 1;
    }
    /* pooling: a 1 x 1 window, stride 1, over (1, NE, 1) */
    static const int64_t pip[9] = {1, 1, 1, 1, 0, 0, 1, 0, 0};
    if (kc->kind == K_AVGPOOL) {
        a.ip = pip;
        a.n_ip = 9;
    }
    static const int64_t wip[10] = {1, 1, 1, 1, 0, 0, 1, 1, 1, NE};
    if (kc->kind == K_IM2COL || kc->kind == K_COL2IM || kc->kind == K_MAXPOOL ||
        kc->kind == K_MAXPOOLGRAD) {
        a.ip = wip;
        a.n_ip = 10;
    }
    if (kc->kind == K_MAXPOOL) {
        a.outs = outs;
        a.n_out = 2;
    }
    a.p[1] = 2.0;
    a.u[0] = 42;
    /* adam: a first step (p and g in, p', m', v' out: two more buffers of their own) */
    void *st[2] = {NULL, NULL};
    em_kview sv[2];
    const em_kview *souts[3] = {&o, &sv[0], &sv[1]};
    static const int64_t aip[4] = {0, 0, 0, 1};
    static const double afp[3] = {0.0, 0.1, 0.001};
    if (kc->kind == K_ADAM) {
        for (int k = 0; k < 2; k++) {
            st[k] = dbuf(NE * 8);
            sv[k] = view(st[k], dt, NE);
        }
        a.outs = souts;
        a.n_out = 3;
        a.p[0] = 1e-3, a.p[1] = 0.9, a.p[2] = 0.999, a.p[3] = 1e-8;
        a.ip = aip;
        a.n_ip = 4;
        a.fp = afp;
        a.n_fp = 3;
    }
    /* sgd: a plain step (p and g in, p' out) */
    static const int64_t sip[3] = {0, 0, 1};
    if (kc->kind == K_SGD) {
        a.p[0] = 1e-3, a.p[1] = 0, a.p[2] = 0, a.p[3] = 0;
        a.ip = sip;
        a.n_ip = 3;
    }
    em_kernel_fn fn;
    memcpy(&fn, (const char *)g_ops + kc->op, sizeof fn);
    assert_non_null(fn);
    g_msg[0] = 0;
    em_status st_ = fn(g_dev, &a);
    if (kc->kind == K_ADAM) {
        ok(g_ops->synchronize(g_dev), "synchronize");
        for (int k = 0; k < 2; k++)
            g_ops->buffer_free(g_dev, st[k]);
    }
    return st_;
}

static void test_dtypes(void **state)
{
    (void)state;
    const em_kernel_dtypes *t = g_ops->dtypes;
    assert_non_null(t);
    assert_true(t->struct_size >= sizeof(em_kernel_dtypes));
    assert_int_equal(t->gemm, FL);
    for (int k = 0; k < NKERNELS; k++)
        if (declared(t, g_kernels[k].dt) != g_kernels[k].want)
            fail_msg("%s: declared mask 0x%x, expected 0x%x", g_kernels[k].name,
                     (unsigned)declared(t, g_kernels[k].dt), (unsigned)g_kernels[k].want);
    for (int k = 0; k < NABSENT; k++) {
        em_kernel_fn fn;
        memcpy(&fn, (const char *)g_ops + g_absent[k].op, sizeof fn);
        if (fn || declared(t, g_absent[k].dt))
            fail_msg("%s: expected no entry and no mask", g_absent[k].name);
    }
    /* every field of the struct is one of the kernels above (or gemm): a mask appended by
     * a later minor fails here until this plugin decides what it declares for it (an odd
     * count of masks leaves padding up to size_t's alignment at the end) */
    const size_t masks_end =
        offsetof(em_kernel_dtypes, gemm) + (NKERNELS + NABSENT + 1) * sizeof(em_dtype_mask);
    assert_true(masks_end <= sizeof(em_kernel_dtypes) &&
                sizeof(em_kernel_dtypes) - masks_end < _Alignof(em_kernel_dtypes));

    /* each kernel with each dtype: declared ones run, the others fail and write nothing.
     * Inputs are zero (a valid value of every dtype). */
    void *out = dbuf(NE * 8), *in[3];
    unsigned char zero[NE * 8] = {0};
    for (int j = 0; j < 3; j++) {
        in[j] = dbuf(NE * 8);
        ok(g_ops->copy_h2d(g_dev, in[j], 0, zero, sizeof zero), "copy_h2d");
    }
    const int32_t dts[6] = {EM_F32, EM_F64, EM_BOOL, EM_I64, EM_I32, EM_U8};
    int ran = 0, refused = 0;
    for (int k = 0; k < NKERNELS; k++) {
        const struct kcase *kc = &g_kernels[k];
        em_dtype_mask m = declared(t, kc->dt);
        for (int a = 0; a < 6; a++) {
            for (int b = 0; b < (kc->kind == K_COPY ? 6 : 1); b++) {
                int32_t dt = dts[a], dt2 = kc->kind == K_COPY ? dts[b] : dt;
                if ((dt == EM_F64 || dt2 == EM_F64) && !g_fp64)
                    continue;   /* the core never passes f64 to such a device */
                int yes = (m & EM_DTYPE_BIT(dt)) && (m & EM_DTYPE_BIT(dt2));
                set_sentinel(out);
                em_status st = call_kernel(kc, dt, dt2, out, in);
                if (yes && st != EM_OK)
                    fail_msg("%s(%d <- %d) is declared but failed: %s", kc->name, (int)dt,
                             (int)dt2, g_msg);
                if (!yes && st == EM_OK)
                    fail_msg("%s(%d <- %d) is not declared but ran", kc->name, (int)dt, (int)dt2);
                if (!yes && !untouched(out, NE * 8))
                    fail_msg("%s(%d <- %d) failed (%s) but wrote its output", kc->name, (int)dt,
                             (int)dt2, g_msg);
                ran += yes;
                refused += !yes;
            }
        }
    }
    assert_true(ran > 0 && refused > 0);

    /* gemm: f32 (and f64) run, bool fails without writing C */
    em_gemm_args g = gemm2x2(EM_F32, in[0], in[1], out, 2);
    ok(g_ops->gemm(g_dev, &g), "gemm f32");
    g.dtype = EM_F64;
    if (g_fp64)
        ok(g_ops->gemm(g_dev, &g), "gemm f64");
    g.dtype = EM_BOOL;
    REFUSED(out, g_ops->gemm(g_dev, &g));
    g_ops->buffer_free(g_dev, out);
    for (int j = 0; j < 3; j++)
        g_ops->buffer_free(g_dev, in[j]);
}

/* Kernels that refuse their arguments leave the output as it was (1.1's rule: check
 * first, enqueue last), in place too. */
static void test_errors_write_nothing(void **state)
{
    (void)state;
    void *out = dbuf(NE * 8), *small = dbuf(4 * sizeof(float));
    em_kview o = view(out, EM_F32, NE), i = view(out, EM_F32, NE);
    /* an input reaching past its buffer */
    em_kview big = view(small, EM_F32, NE);
    em_kargs a;
    REFUSED(out, g_ops->add_scalar(g_dev, kargs(&a, &o, &big, NULL, NULL, 1.0)));
    /* in place, a shape mismatch in the second operand */
    em_kview other = view(small, EM_F32, 3);
    REFUSED(out, g_ops->add(g_dev, kargs(&a, &o, &i, &other, NULL, 0)));
    /* a dtype mismatch between out and input */
    em_kview d64 = view(out, EM_F64, NE / 2);
    REFUSED(out, g_ops->neg(g_dev, kargs(&a, &o, &d64, NULL, NULL, 0)));
    /* sum: an output shape that is neither 1 nor the input's */
    em_kview s_out = view(out, EM_F32, 2), s_in = view(small, EM_F32, 4);
    REFUSED(out, g_ops->sum(g_dev, kargs(&a, &s_out, &s_in, NULL, NULL, 1.0)));
    /* gemm: A reaching past its buffer */
    em_gemm_args g = gemm2x2(EM_F32, small, small, out, 4);
    REFUSED(out, g_ops->gemm(g_dev, &g));
    g_ops->buffer_free(g_dev, out);
    g_ops->buffer_free(g_dev, small);
}

/* ------------------------------------------------------------------ device props */

static void test_props(void **state)
{
    (void)state;
    em_device_props p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    ok(g_ops->device_props(g_be.ctx, 0, &p), "device_props");
    assert_int_equal(p.flags & EM_DEVICE_HOST_BUFFERS, 0);
    /* a 1.0 core's struct ends where flags begins: nothing past it is written */
    union {
        em_device_props p;
        unsigned char b[sizeof(em_device_props) + 64];
    } u;
    const size_t old = offsetof(em_device_props, flags);
    memset(&u, 0x5a, sizeof u);
    u.p.struct_size = old;
    ok(g_ops->device_props(g_be.ctx, 0, &u.p), "device_props (1.0 size)");
    assert_string_equal(u.p.name, p.name);
    for (size_t i = old; i < sizeof u.b; i++)
        if (u.b[i] != 0x5a)
            fail_msg("byte %zu past a struct of %zu bytes was written", i, old);
}

/* ------------------------------------------------------------------ pinned memory */

static void test_host_alloc(void **state)
{
    (void)state;
    assert_non_null(g_ops->host_alloc);
    assert_non_null(g_ops->host_free);
    long live0 = g_live;
    void *empty = NULL, *small = NULL, *src = NULL, *dst = NULL;
    ok(g_ops->host_alloc(g_dev, 0, &empty), "host_alloc(0)");
    ok(g_ops->host_alloc(g_dev, 100, &small), "host_alloc(100)");
    ok(g_ops->host_alloc(g_dev, MIB4, &src), "host_alloc(4 MiB)");
    ok(g_ops->host_alloc(g_dev, MIB4, &dst), "host_alloc(4 MiB)");
    assert_true(empty && small && src && dst);
    assert_true(empty != small && small != src && src != dst);
    memset(small, 7, 100);
    float *s = src, *d = dst;
    for (size_t i = 0; i < N4; i++) {
        s[i] = (float)i;
        d[i] = NAN;
    }
    /* pinned blocks as the host side of the synchronous and the async copies */
    void *x = dbuf(MIB4);
    ok(g_ops->copy_h2d(g_dev, x, 0, src, MIB4), "copy_h2d from pinned");
    ok(g_ops->copy_d2h_async(g_dev, NULL, dst, x, 0, MIB4), "copy_d2h_async to pinned");
    ok(g_ops->synchronize(g_dev), "synchronize");
    expect_iota(d, N4, 0, "pinned round trip");
    g_ops->buffer_free(g_dev, x);
    /* freed in another order than allocated */
    g_ops->host_free(g_dev, src);
    g_ops->host_free(g_dev, empty);
    g_ops->host_free(g_dev, dst);
    for (int i = 0; i < 100; i++)
        assert_int_equal(((unsigned char *)small)[i], 7);
    g_ops->host_free(g_dev, small);
    g_ops->host_free(g_dev, NULL);
    assert_int_equal(g_live, live0);
    /* a pointer it did not hand out: logged, not freed */
    int foreign;
    g_log[0] = 0;
    g_ops->host_free(g_dev, &foreign);
    assert_non_null(strstr(g_log, "host_free"));
}

/* ------------------------------------------------------------------ async copies */

/* h2d on a stream, the device queue waits for it, a kernel there, the stream waits for
 * that, d2h on the stream: the result is the kernel's on the uploaded data. */
static void test_stream_pipeline(void **state)
{
    (void)state;
    long live0 = g_live;
    void *x = dbuf(MIB4), *y = dbuf(MIB4), *s = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL;
    ok(g_ops->stream_create(g_dev, &s), "stream_create");
    ok(g_ops->event_create(g_dev, &e1), "event_create");
    ok(g_ops->event_create(g_dev, &e2), "event_create");
    ok(g_ops->event_create(g_dev, &e3), "event_create");
    float *src = iota_f32(N4, 0), *dst = nan_f32(N4);
    for (int round = 0; round < 8; round++) {
        /* x and y hold -1e9s, known complete: a kernel that does not wait for the upload,
         * or a download that does not wait for the kernel, reads those */
        em_kview xv = view(x, EM_F32, (int64_t)N4), yv = view(y, EM_F32, (int64_t)N4);
        em_kargs fa;
        ok(g_ops->fill(g_dev, kargs(&fa, &xv, NULL, NULL, NULL, -1e9)), "fill");
        ok(g_ops->fill(g_dev, kargs(&fa, &yv, NULL, NULL, NULL, -1e9)), "fill");
        ok(g_ops->synchronize(g_dev), "synchronize");
        for (size_t i = 0; i < N4; i++)
            dst[i] = NAN;
        ok(g_ops->copy_h2d_async(g_dev, s, x, 0, src, MIB4), "copy_h2d_async");
        ok(g_ops->event_record(g_dev, s, e1), "event_record(s)");
        ok(g_ops->event_wait(g_dev, NULL, e1), "event_wait(device queue)");
        add_scalar(y, x, N4, 0.5 + round);
        ok(g_ops->event_record(g_dev, NULL, e2), "event_record(device queue)");
        ok(g_ops->event_wait(g_dev, s, e2), "event_wait(s)");
        ok(g_ops->copy_d2h_async(g_dev, s, dst, y, 0, MIB4), "copy_d2h_async");
        ok(g_ops->event_record(g_dev, s, e3), "event_record(s)");
        ok(g_ops->event_synchronize(g_dev, e3), "event_synchronize");
        expect_iota(dst, N4, 0.5f + (float)round, "stream pipeline");
    }
    ok(g_ops->synchronize(g_dev), "synchronize");
    g_ops->event_destroy(g_dev, e1);
    g_ops->event_destroy(g_dev, e2);
    g_ops->event_destroy(g_dev, e3);
    g_ops->stream_destroy(g_dev, s);
    g_ops->buffer_free(g_dev, x);
    g_ops->buffer_free(g_dev, y);
    free(src);
    free(dst);
    assert_int_equal(g_live, live0);
}

/* Stream NULL is the device queue: async copies there are ordered with the kernels
 * without any event. */
static void test_null_stream(void **state)
{
    (void)state;
    void *x = dbuf(MIB4), *y = dbuf(MIB4);
    float *src = iota_f32(N4, 3), *dst = nan_f32(N4);
    ok(g_ops->copy_h2d_async(g_dev, NULL, x, 0, src, MIB4), "copy_h2d_async(NULL)");
    add_scalar(y, x, N4, 1);
    add_scalar(y, y, N4, 1);
    ok(g_ops->copy_d2h_async(g_dev, NULL, dst, y, 0, MIB4), "copy_d2h_async(NULL)");
    ok(g_ops->synchronize(g_dev), "synchronize");
    expect_iota(dst, N4, 5, "stream NULL");
    /* byte offsets on both sides */
    for (size_t i = 0; i < N4; i++)
        dst[i] = NAN;
    ok(g_ops->copy_h2d_async(g_dev, NULL, x, 4096, src, MIB4 - 4096), "copy_h2d_async(offset)");
    ok(g_ops->copy_d2h_async(g_dev, NULL, dst, x, 4096, MIB4 - 4096), "copy_d2h_async(offset)");
    ok(g_ops->synchronize(g_dev), "synchronize");
    expect_iota(dst, N4 - 1024, 3, "offsets");
    g_ops->buffer_free(g_dev, x);
    g_ops->buffer_free(g_dev, y);
    free(src);
    free(dst);
}

/* synchronize(dev) returns only when the copies on every stream have landed. */
static void test_synchronize_all_streams(void **state)
{
    (void)state;
    enum { NS = 3 };
    void *s[NS], *buf[NS];
    float *src[NS], *dst[NS];
    for (int k = 0; k < NS; k++) {
        ok(g_ops->stream_create(g_dev, &s[k]), "stream_create");
        buf[k] = dbuf(MIB4);
        src[k] = iota_f32(N4, (float)(1000 * k));
        dst[k] = nan_f32(N4);
    }
    for (int k = 0; k < NS; k++) {
        ok(g_ops->copy_h2d_async(g_dev, s[k], buf[k], 0, src[k], MIB4), "copy_h2d_async");
        ok(g_ops->copy_d2h_async(g_dev, s[k], dst[k], buf[k], 0, MIB4), "copy_d2h_async");
    }
    ok(g_ops->synchronize(g_dev), "synchronize");
    for (int k = 0; k < NS; k++)
        expect_iota(dst[k], N4, (float)(1000 * k), "after synchronize");
    for (int k = 0; k < NS; k++) {
        g_ops->stream_destroy(g_dev, s[k]);
        g_ops->buffer_free(g_dev, buf[k]);
        free(src[k]);
        free(dst[k]);
    }
}

static void test_events(void **state)
{
    (void)state;
    long live0 = g_live;
    void *s = NULL, *e = NULL, *x = dbuf(MIB4);
    float *src = iota_f32(N4, 7), *dst = nan_f32(N4);
    ok(g_ops->stream_create(g_dev, &s), "stream_create");
    /* never recorded: waiting on it is a no-op, on either queue */
    ok(g_ops->event_create(g_dev, &e), "event_create");
    ok(g_ops->event_wait(g_dev, NULL, e), "event_wait (never recorded)");
    ok(g_ops->event_wait(g_dev, s, e), "event_wait (never recorded)");
    ok(g_ops->event_synchronize(g_dev, e), "event_synchronize (never recorded)");
    g_ops->event_destroy(g_dev, e);
    /* destroyed while its marker is still queued behind 4 MiB of copy */
    for (int i = 0; i < 4; i++) {
        ok(g_ops->event_create(g_dev, &e), "event_create");
        ok(g_ops->copy_h2d_async(g_dev, s, x, 0, src, MIB4), "copy_h2d_async");
        ok(g_ops->event_record(g_dev, s, e), "event_record");
        g_ops->event_destroy(g_dev, e);
    }
    ok(g_ops->synchronize(g_dev), "synchronize");
    /* recorded twice: the second record is what event_synchronize waits for */
    ok(g_ops->event_create(g_dev, &e), "event_create");
    ok(g_ops->event_record(g_dev, s, e), "event_record");
    ok(g_ops->event_synchronize(g_dev, e), "event_synchronize");
    ok(g_ops->copy_d2h_async(g_dev, s, dst, x, 0, MIB4), "copy_d2h_async");
    ok(g_ops->event_record(g_dev, s, e), "event_record again");
    ok(g_ops->event_synchronize(g_dev, e), "event_synchronize");
    expect_iota(dst, N4, 7, "after the re-recorded event");
    g_ops->event_destroy(g_dev, e);
    g_ops->stream_destroy(g_dev, s);
    g_ops->buffer_free(g_dev, x);
    free(src);
    free(dst);
    assert_int_equal(g_live, live0);
}

/* OpenCL refusals come back as statuses naming the call and the error; the device keeps
 * working. */
static void test_async_errors(void **state)
{
    (void)state;
    void *s = NULL, *x = dbuf(1024);
    char host[2048] = {0};
    ok(g_ops->stream_create(g_dev, &s), "stream_create");
    g_msg[0] = 0;
    assert_int_equal(g_ops->copy_h2d_async(g_dev, s, x, 512, host, 1024), EM_ERR_BACKEND);
    assert_non_null(strstr(g_msg, "clEnqueueWriteBuffer"));
    assert_non_null(strstr(g_msg, "CL_INVALID_VALUE"));
    g_msg[0] = 0;
    assert_int_equal(g_ops->copy_d2h_async(g_dev, NULL, host, x, 0, 2048), EM_ERR_BACKEND);
    assert_non_null(strstr(g_msg, "clEnqueueReadBuffer"));
    assert_non_null(strstr(g_msg, "CL_INVALID_VALUE"));
    ok(g_ops->synchronize(g_dev), "synchronize after refused copies");
    ok(g_ops->copy_h2d_async(g_dev, s, x, 0, host, 1024), "copy_h2d_async");
    ok(g_ops->synchronize(g_dev), "synchronize");
    g_ops->stream_destroy(g_dev, s);
    g_ops->buffer_free(g_dev, x);
}

/* A device closed with streams and pinned blocks still open releases them (with a
 * warning for the pinned blocks); an event may outlive its device. */
static void test_close_with_leftovers(void **state)
{
    (void)state;
    long live0 = g_live;
    void *dev = NULL, *s = NULL, *e = NULL, *p = NULL, *x = NULL;
    ok(g_ops->device_open(g_be.ctx, -1, &dev), "device_open");
    ok(g_ops->stream_create(dev, &s), "stream_create");
    ok(g_ops->event_create(dev, &e), "event_create");
    ok(g_ops->host_alloc(dev, MIB4, &p), "host_alloc");
    ok(g_ops->buffer_alloc(dev, MIB4, &x), "buffer_alloc");
    memset(p, 1, MIB4);
    ok(g_ops->copy_h2d_async(dev, s, x, 0, p, MIB4), "copy_h2d_async");
    ok(g_ops->event_record(dev, s, e), "event_record");
    g_ops->buffer_free(dev, x);
    g_log[0] = 0;
    g_ops->device_close(dev);
    assert_non_null(strstr(g_log, "pinned"));
    g_ops->event_destroy(NULL, e);
    assert_int_equal(g_live, live0);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    g_chost = g_host;
    g_chost.alloc = c_alloc;
    g_chost.free = c_free;
    g_chost.log = c_log;
    const char *dir = getenv("EMBER_TEST_BACKEND_DIR");
    if (!dir || !*dir) {
        printf("1..1\nnot ok 1 - EMBER_TEST_BACKEND_DIR is not set: run with `make check`\n");
        return 1;
    }
    snprintf(g_path, sizeof g_path, "%s/ember-backend-opencl.so", dir);
    if (argc > 1 && !strcmp(argv[1], "--describe-child"))
        return describe_child();
    void *dl = dlopen(g_path, RTLD_NOW | RTLD_LOCAL);
    void *sym = dl ? dlsym(dl, EM_BACKEND_ENTRY_NAME) : NULL;
    if (!sym) {
        printf("1..1\nnot ok 1 - cannot load %s: %s\n", g_path, dlerror());
        return 1;
    }
    memcpy(&g_entry, &sym, sizeof g_entry);
    g_be.struct_size = sizeof g_be;
    if (g_entry(&g_chost, NULL, NULL, 0, &g_be) != EM_OK) {
        printf("1..1\nnot ok 1 - opencl entry failed: %s\n", g_msg);
        return 1;
    }
    g_ops = g_be.ops;
    int count = 0;
    em_device_props props;
    memset(&props, 0, sizeof props);
    props.struct_size = sizeof props;
    if (g_ops->device_count(g_be.ctx, &count) != EM_OK || count < 1 ||
        g_ops->device_props(g_be.ctx, 0, &props) != EM_OK ||
        g_ops->device_open(g_be.ctx, -1, &g_dev) != EM_OK) {
        for (char *p = g_msg; *p; p++)
            if (*p == '\n')
                *p = ' ';
        g_ops->shutdown(g_be.ctx);
        const char *req = getenv("EMBER_TEST_REQUIRE");
        if (req && strstr(req, "opencl")) {
            printf("1..1\nnot ok 1 - backend opencl is required (EMBER_TEST_REQUIRE) but "
                   "unusable: %s\n", g_msg);
            return 1;
        }
        printf("1..0 # SKIP backend opencl not usable here: %s\n", g_msg);
        return 0;
    }
    /* the plugin's test knob hides fp64 from its kernels (device_props still reports it) */
    const char *nofp64 = getenv("EMBER_OPENCL_NO_FP64");
    g_fp64 = props.fp64 && !(nofp64 && *nofp64 && strcmp(nofp64, "0"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_describe_calls_no_opencl),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_errors_write_nothing),
        cmocka_unit_test(test_props),
        cmocka_unit_test(test_host_alloc),
        cmocka_unit_test(test_stream_pipeline),
        cmocka_unit_test(test_null_stream),
        cmocka_unit_test(test_synchronize_all_streams),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_async_errors),
        cmocka_unit_test(test_close_with_leftovers),
    };
    int rc = cmocka_run_group_tests_name("opencl plugin ABI 1.1", tests, NULL, NULL);
    g_ops->device_close(g_dev);
    g_ops->shutdown(g_be.ctx);
    return rc;
}
