/* core/ops/launch.c — kernel launches for the ABI 1.2 kernels that are not elementwise:
 * those working along one dimension, which see every tensor as a 3-D (outer, n, inner)
 * view (max_dim, min_dim, softmax, log_softmax, index_select), and those taking plain
 * strided N-D views with integer parameters (gather, scatter_add); and the flat launch of
 * ABI 1.3's fused optimizer kernel (adam) over contiguous tensors. Like em__launch, these
 * wait for copies in flight, bump the version of what they write, and never hand a kernel
 * an input that partially overlaps an output. */
#include "config.h"
#include "internal.h"

#include <string.h>

/* t seen as (outer, n, inner) around dim: false when the dims before dim (or after it) do
 * not merge into one stride. Size-1 dims never block a merge. */
static bool as_3d(const em__tensor *t, int dim, em_kview *v)
{
    em__view_of(t, v);
    int64_t outer = 1, inner = 1, so = 0, si = 1;
    /* inner: dims dim+1 .. ndim-1, innermost first */
    bool have = false;
    for (int d = t->ndim - 1; d > dim; d--) {
        if (t->shape[d] == 1)
            continue;
        if (!have) {
            si = t->strides[d];
            inner = t->shape[d];
            have = true;
        } else if (t->strides[d] == si * inner) {
            inner *= t->shape[d];
        } else {
            return false;
        }
    }
    have = false;
    int64_t run = 0;
    for (int d = dim - 1; d >= 0; d--) {
        if (t->shape[d] == 1)
            continue;
        if (!have) {
            so = t->strides[d];
            outer = t->shape[d];
            run = so * outer;
            have = true;
        } else if (t->strides[d] == run) {
            outer *= t->shape[d];
            run = t->strides[d] * t->shape[d];
        } else {
            return false;
        }
    }
    int64_t n = t->ndim ? t->shape[dim] : 1;
    int64_t sn = t->ndim && n > 1 ? t->strides[dim] : inner;
    v->ndim = 3;
    v->shape[0] = outer;
    v->shape[1] = n;
    v->shape[2] = inner;
    /* a dim of size 1 gets the stride it would have if contiguous (never read) */
    v->strides[0] = outer > 1 ? so : n * inner;
    v->strides[1] = sn;
    v->strides[2] = inner > 1 ? si : 1;
    return true;
}

static bool overlaps(const em__tensor *a, const em__tensor *b)
{
    return a && b && a->storage == b->storage;
}

static em__tensor *copy_of(em_context *ctx, em__tensor *t)
{
    em__tensor *c = em__tensor_new(ctx, t->dtype, t->ndim, t->shape);
    if (!c)
        return NULL;
    em__tensor *in[1] = {t};
    if (em__launch(ctx, EM_KERNEL_OFFSET(copy), c, in, 1, NULL, NULL) != EM_OK) {
        em__tensor_unref(c);
        return NULL;
    }
    return c;
}

static em_status run(em_context *ctx, size_t offset, em__tensor *const *outs, int n_out,
                     em__tensor *const *ins, int n_in, em_kargs *a)
{
    em_status st = EM_OK;
    for (int i = 0; i < n_out && st == EM_OK; i++)
        st = em__storage_ready(ctx, outs[i], true);
    for (int i = 0; i < n_in && st == EM_OK; i++)
        st = em__storage_ready(ctx, ins[i], false);
    if (st == EM_OK)
        st = em__kernel_call(ctx, offset, a);
    if (st == EM_OK)
        for (int i = 0; i < n_out; i++)
            em__storage_bump(outs[i]->storage);
    return st;
}

/* The argument lists every launch here fills: out[]/in[] (the first three inputs also in
 * in[], as 1.0-style kernels read them) and their counts. */
static void kargs_lists(em_kargs *a, const em_kview **po, int n_out, const em_kview **pi,
                        int n_in)
{
    memset(a, 0, sizeof *a);
    a->struct_size = sizeof *a;
    a->out = po[0];
    for (int i = 0; i < n_in && i < 3; i++)
        a->in[i] = pi[i];
    a->n_out = (uint32_t)n_out;
    a->outs = po;
    a->n_in = (uint32_t)n_in;
    a->ins = pi;
}

em_status em__launch_dim(em_context *ctx, size_t offset, em__tensor *const *outs, int n_out,
                         em__tensor *in, int dim, em__tensor *index)
{
    enum { MAXO = 4 };
    if (n_out < 1 || n_out > MAXO)
        return em__error(ctx, EM_ERR_INTERNAL, "launch_dim: %d outputs", n_out);
    for (int i = 0; i < n_out; i++)
        if (em__numel(outs[i]->ndim, outs[i]->shape) == 0)
            return EM_OK;
    if (em__numel(in->ndim, in->shape) == 0)
        return EM_OK;
    em_kview vo[MAXO], vi[2];
    const em_kview *po[MAXO], *pi[2];
    em__tensor *tmp = NULL, *src = in;
    bool alias = false;
    for (int i = 0; i < n_out; i++)
        alias = alias || overlaps(outs[i], in);
    if (alias || !as_3d(in, dim, &vi[0])) {
        if (!(tmp = copy_of(ctx, in)))
            return em__failed(ctx) ? em__failed(ctx) : EM_ERR_OOM;
        src = tmp;
        as_3d(src, dim, &vi[0]);
    }
    for (int i = 0; i < n_out; i++) {
        if (!as_3d(outs[i], dim, &vo[i])) {
            em__tensor_unref(tmp);
            return em__error(ctx, EM_ERR_INTERNAL, "launch_dim: output %d is not (outer, n, inner)", i);
        }
        po[i] = &vo[i];
    }
    em__tensor *ins[2] = {src, index};
    int n_in = 1;
    pi[0] = &vi[0];
    em__tensor *itmp = NULL;
    if (index) {
        if (index->ndim != 1 || overlaps(index, outs[0])) {
            if (!(itmp = copy_of(ctx, index))) {
                em__tensor_unref(tmp);
                return em__failed(ctx) ? em__failed(ctx) : EM_ERR_OOM;
            }
            ins[1] = itmp;
        }
        em__view_of(ins[1], &vi[1]);
        if (vi[1].ndim == 0) {
            vi[1].ndim = 1;
            vi[1].shape[0] = 1;
            vi[1].strides[0] = 1;
        }
        pi[1] = &vi[1];
        n_in = 2;
    }
    em_kargs a;
    kargs_lists(&a, po, n_out, pi, n_in);
    em_status st = run(ctx, offset, outs, n_out, ins, n_in, &a);
    em__tensor_unref(tmp);
    em__tensor_unref(itmp);
    return st;
}

em_status em__launch_views(em_context *ctx, size_t offset, em__tensor *const *outs, int n_out,
                           em__tensor *const *in, int n_in, const double *p, const int64_t *ip,
                           int n_ip)
{
    enum { MAXV = 4 };
    if (n_out < 1 || n_out > MAXV || n_in < 0 || n_in > MAXV)
        return em__error(ctx, EM_ERR_INTERNAL, "launch_views: %d outputs, %d inputs", n_out, n_in);
    for (int i = 0; i < n_out; i++)
        if (em__numel(outs[i]->ndim, outs[i]->shape) == 0)
            return EM_OK;
    em_kview vo[MAXV], vi[MAXV];
    const em_kview *po[MAXV], *pi[MAXV];
    em__tensor *src[MAXV], *tmp[MAXV] = {0};
    em_status st = EM_OK;
    for (int i = 0; i < n_in; i++) {
        src[i] = in[i];
        bool alias = false;
        for (int o = 0; o < n_out; o++)
            alias = alias || overlaps(outs[o], in[i]);
        /* an input that is exactly an output (scatter_add's self) is fine only as out itself */
        if (alias) {
            if (!(tmp[i] = copy_of(ctx, in[i]))) {
                st = em__failed(ctx) ? em__failed(ctx) : EM_ERR_OOM;
                goto done;
            }
            src[i] = tmp[i];
        }
        em__view_of(src[i], &vi[i]);
        if (vi[i].ndim == 0) {
            vi[i].ndim = 1;
            vi[i].shape[0] = 1;
            vi[i].strides[0] = 1;
        }
        pi[i] = &vi[i];
    }
    for (int o = 0; o < n_out; o++) {
        em__view_of(outs[o], &vo[o]);
        if (vo[o].ndim == 0) {
            vo[o].ndim = 1;
            vo[o].shape[0] = 1;
            vo[o].strides[0] = 1;
        }
        po[o] = &vo[o];
    }
    em_kargs a;
    kargs_lists(&a, po, n_out, pi, n_in);
    if (p)
        memcpy(a.p, p, sizeof a.p);
    a.ip = ip;
    a.n_ip = (uint32_t)n_ip;
    st = run(ctx, offset, outs, n_out, src, n_in, &a);
done:
    for (int i = 0; i < n_in; i++)
        em__tensor_unref(tmp[i]);
    return st;
}

em_status em__launch_flat(em_context *ctx, size_t offset, em__tensor *const *outs, int n_out,
                          em__tensor *const *in, int n_in, const double *p, const double *fp,
                          int n_fp, const int64_t *ip, int n_ip)
{
    enum { MAXO = 4, MAXI = 5 };
    if (n_out < 1 || n_out > MAXO || n_in < 1 || n_in > MAXI)
        return em__error(ctx, EM_ERR_INTERNAL, "launch_flat: %d outputs, %d inputs", n_out, n_in);
    int64_t n = em__numel(outs[0]->ndim, outs[0]->shape);
    em_kview vo[MAXO], vi[MAXI];
    const em_kview *po[MAXO], *pi[MAXI];
    for (int i = 0; i < n_out + n_in; i++) {
        em__tensor *t = i < n_out ? outs[i] : in[i - n_out];
        if (!em__is_contiguous(t) || em__numel(t->ndim, t->shape) != n)
            return em__error(ctx, EM_ERR_INTERNAL, "launch_flat: operand %d is not a "
                             "contiguous tensor of %lld elements", i, (long long)n);
        for (int o = 0; o < n_out && o < i; o++)   /* every earlier output */
            if (overlaps(outs[o], t))
                return em__error(ctx, EM_ERR_INTERNAL, "launch_flat: operand %d overlaps "
                                 "output %d", i, o);
        em_kview *v = i < n_out ? &vo[i] : &vi[i - n_out];
        em__view_of(t, v);
        v->ndim = 1;
        v->shape[0] = n;
        v->strides[0] = 1;
        if (i < n_out)
            po[i] = v;
        else
            pi[i - n_out] = v;
    }
    if (n == 0)
        return EM_OK;
    em_kargs a;
    kargs_lists(&a, po, n_out, pi, n_in);
    if (p)
        memcpy(a.p, p, sizeof a.p);
    a.fp = fp;
    a.n_fp = (uint32_t)n_fp;
    a.ip = ip;
    a.n_ip = (uint32_t)n_ip;
    return run(ctx, offset, outs, n_out, in, n_in, &a);
}
