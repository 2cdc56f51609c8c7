/* tests/plugins/tbroken.c — ember-backend-tbroken.so: the cpu backend of this build, wrapped,
 * with one clause of the plugin contract broken on purpose, so that a test can prove that
 * ember-conform catches it (a clause no plugin can fail would test nothing). The entry opens
 * the cpu plugin (EMBER_TBROKEN_CPU, else the build tree's), calls its entry, and hands the
 * core a copy of its ops table under the name tbroken, with the entries below wrapped.
 * EMBER_TBROKEN picks what breaks:
 *   none        nothing (the control: everything passes)
 *   h2d_offset  copy_h2d ignores dst_offset       d2h_offset  copy_d2h ignores src_offset
 *   beta        gemm treats beta as 0             k0          gemm does nothing when k = 0
 *   a_offset, b_offset, c_offset                  gemm ignores that offset
 *   ld          gemm takes leading dimensions to be the row lengths
 *   beta0_reads gemm reads C when beta == 0 (computes with a tiny beta: NaN in C stays)
 * and, for the validate layer (tests/test_validate.sh), kernels that compute wrong values:
 *   gemm_trans  gemm transposes B when it should not (and not when it should): square
 *               products come out wrong, others fail their bounds
 *   add_short   add stops one element early (an off-by-one loop bound: the last element of
 *               out keeps its old contents)
 *   exp_nan     exp writes NaN into the first element of out */
#include <ember/backend.h>

#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef TBROKEN_CPU_PLUGIN
#define TBROKEN_CPU_PLUGIN "ember-backend-cpu.so"
#endif

enum { B_NONE, B_H2D, B_D2H, B_BETA, B_K0, B_AOFF, B_BOFF, B_COFF, B_LD, B_BETA0, B_TRANS,
       B_ADD_SHORT, B_EXP_NAN };
static const char *const break_names[] = {"none", "h2d_offset", "d2h_offset", "beta", "k0",
                                          "a_offset", "b_offset", "c_offset", "ld", "beta0_reads",
                                          "gemm_trans", "add_short", "exp_nan", NULL};

static atomic_int g_break;
static em_backend_entry_fn g_cpu_entry;
static char g_open_error[512];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void open_cpu(void)
{
    const char *path = getenv("EMBER_TBROKEN_CPU");
    void *dl = dlopen(path && *path ? path : TBROKEN_CPU_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    void *sym = dl ? dlsym(dl, EM_BACKEND_ENTRY_NAME) : NULL;
    if (!sym) {
        const char *e = dlerror();
        strncpy(g_open_error, e ? e : "no entry symbol", sizeof g_open_error - 1);
        return;   /* the handle stays open for the life of the process, as the core's do */
    }
    memcpy(&g_cpu_entry, &sym, sizeof g_cpu_entry);
}

/* the cpu backend's table, and the wrapped copy handed to the core */
static const em_backend_ops *g_cpu_ops;
static em_backend_ops g_ops;

static em_status w_copy_h2d(void *dev, void *dst, size_t off, const void *src, size_t bytes)
{
    return g_cpu_ops->copy_h2d(dev, dst, atomic_load(&g_break) == B_H2D ? 0 : off, src, bytes);
}

static em_status w_copy_d2h(void *dev, void *dst, const void *src, size_t off, size_t bytes)
{
    return g_cpu_ops->copy_d2h(dev, dst, src, atomic_load(&g_break) == B_D2H ? 0 : off, bytes);
}

static em_status w_gemm(void *dev, const em_gemm_args *args)
{
    em_gemm_args g = *args;
    switch (atomic_load(&g_break)) {
    case B_BETA: g.beta = 0; break;
    case B_K0:
        if (g.k == 0)
            return EM_OK;
        break;
    case B_AOFF: g.a_offset = 0; break;
    case B_BOFF: g.b_offset = 0; break;
    case B_COFF: g.c_offset = 0; break;
    case B_LD:
        g.lda = g.trans_a ? g.m : (g.k ? g.k : 1);
        g.ldb = g.trans_b ? (g.k ? g.k : 1) : g.n;
        g.ldc = g.n;
        break;
    case B_BETA0:
        if (g.beta == 0)
            g.beta = FLT_MIN;   /* nonzero in f32 too; NaN * FLT_MIN is NaN */
        break;
    case B_TRANS:
        if (g.n == g.k)   /* B is square: the same bytes read the other way */
            g.trans_b = !g.trans_b;
        break;
    default: break;
    }
    return g_cpu_ops->gemm(dev, &g);
}

/* add over all but the last element of out's last dimension (views are coalesced: usually
 * the whole tensor as one dimension) */
static em_status w_add(void *dev, const em_kargs *a)
{
    if (atomic_load(&g_break) != B_ADD_SHORT || a->out->shape[a->out->ndim - 1] < 2)
        return g_cpu_ops->add(dev, a);
    em_kview o = *a->out, x = *a->in[0], y = *a->in[1];
    o.shape[o.ndim - 1]--;
    x.shape[x.ndim - 1]--;
    y.shape[y.ndim - 1]--;
    em_kargs s = *a;
    const em_kview *outs[1] = {&o}, *ins[2] = {&x, &y};
    s.out = &o;
    s.in[0] = &x;
    s.in[1] = &y;
    if (s.outs)
        s.outs = outs;
    if (s.ins)
        s.ins = ins;
    return g_cpu_ops->add(dev, &s);
}

static em_status w_exp(void *dev, const em_kargs *a)
{
    em_status st = g_cpu_ops->exp(dev, a);
    if (st != EM_OK || atomic_load(&g_break) != B_EXP_NAN)
        return st;
    /* the cpu's buffers are host memory: the handle is the data's address */
    char *base = (char *)a->out->buf;
    if (a->out->dtype == EM_F32)
        ((float *)base)[a->out->offset] = NAN;
    else
        ((double *)base)[a->out->offset] = NAN;
    return EM_OK;
}

static void build_table(void)
{
    memcpy(&g_ops, g_cpu_ops, sizeof g_ops);
    g_ops.copy_h2d = w_copy_h2d;
    g_ops.copy_d2h = w_copy_d2h;
    g_ops.gemm = w_gemm;
    g_ops.add = w_add;
    g_ops.exp = w_exp;
}

EM_BACKEND_ENTRY
{
    out->abi_major = EM_ABI_MAJOR;
    out->abi_minor = EM_ABI_MINOR;
    out->name = "tbroken";
    const char *how = getenv("EMBER_TBROKEN");
    int b = B_NONE;
    for (int i = 0; how && break_names[i]; i++)
        if (!strcmp(how, break_names[i]))
            b = i;
    if (how && *how && b == B_NONE && strcmp(how, "none"))
        return host->error(hc, EM_ERR_CONFIG, "EMBER_TBROKEN: unknown clause '%s'", how);
    atomic_store(&g_break, b);
    pthread_once(&g_once, open_cpu);
    if (!g_cpu_entry)
        return host->error(hc, EM_ERR_BACKEND, "cannot open the cpu plugin: %s", g_open_error);
    em_status st = g_cpu_entry(host, hc, config, n_config, out);
    out->name = "tbroken";
    out->description = "the cpu backend with one clause broken (EMBER_TBROKEN)";
    if (st != EM_OK || !out->ops)
        return st;
    static pthread_once_t table_once = PTHREAD_ONCE_INIT;
    g_cpu_ops = out->ops;
    pthread_once(&table_once, build_table);
    out->ops = &g_ops;
    return EM_OK;
}
