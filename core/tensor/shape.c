/* core/tensor/shape.c — shapes, strides and NumPy broadcasting. Pure functions of sizes; the only
 * side effect is recording an error naming the op and both shapes. */
#include "config.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>

int64_t em__numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

bool em__numel_checked(int ndim, const int64_t *shape, int64_t *numel)
{
    int64_t span = 1;   /* product with zeros counted as ones: the outermost stride's bound */
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return false;
        if (shape[i] == 0)
            empty = true;
        else if (__builtin_mul_overflow(span, shape[i], &span) || span > EM__MAX_NUMEL)
            return false;
    }
    if (numel)
        *numel = empty ? 0 : span;
    return true;
}

em_status em__check_shape_size(em_context *ctx, const char *op, int ndim, const int64_t *shape)
{
    if (em__numel_checked(ndim, shape, NULL))
        return EM_OK;
    char s[200];
    em__shape_str(ndim, shape, s, sizeof s);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return em__error(ctx, EM_ERR_SHAPE, "%s: shape %s has a negative size (%lld in "
                             "dimension %d)", op, s, (long long)shape[i], i);
    return em__error(ctx, EM_ERR_SHAPE, "%s: shape %s has too many elements (the product of its "
                     "sizes overflows: at most %lld elements)", op, s, (long long)EM__MAX_NUMEL);
}

/* Strides of a checked shape: their products stay below EM__MAX_NUMEL. */
void em__contiguous_strides(int ndim, const int64_t *shape, int64_t *strides)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 1 ? shape[i] : 1;
    }
}

bool em__is_contiguous(const em__tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] == 1)
            continue;
        if (t->strides[i] != s)
            return false;
        s *= t->shape[i];
    }
    return true;
}

void em__shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
}

em_status em__broadcast_shapes(em_context *ctx, const char *opname, int na, const int64_t *a,
                               int nb, const int64_t *b, int *nout, int64_t *out)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = na - n + i, ib = nb - n + i;
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da == db || db == 1)
            out[i] = da;
        else if (da == 1)
            out[i] = db;
        else {
            char sa[160], sb[160];
            em__shape_str(na, a, sa, sizeof sa);
            em__shape_str(nb, b, sb, sizeof sb);
            return em__error(ctx, EM_ERR_SHAPE,
                             "%s: shapes %s and %s cannot be broadcast (dimension %d: %lld vs %lld)",
                             opname, sa, sb, i, (long long)da, (long long)db);
        }
    }
    *nout = n;
    return EM_OK;
}

void em__broadcast_strides(const em__tensor *t, int ndim, const int64_t *shape, int64_t *strides)
{
    int off = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int j = i - off;
        if (j < 0 || (t->shape[j] == 1 && shape[i] != 1))
            strides[i] = 0;
        else
            strides[i] = t->shape[j] == 1 ? 0 : t->strides[j];
    }
}

int em__wrap_dim(em_context *ctx, int dim, int ndim, const char *opname, bool *ok)
{
    int n = ndim > 0 ? ndim : 1; /* a 0-dim tensor accepts dim 0 and -1, as PyTorch */
    if (dim < -n || dim >= n) {
        em__error(ctx, EM_ERR_INVALID,
                  "%s: dimension out of range (expected to be in range of [%d, %d], but got %d)",
                  opname, -n, n - 1, dim);
        *ok = false;
        return 0;
    }
    *ok = true;
    return dim < 0 ? dim + n : dim;
}

void em__view_of(const em__tensor *t, em_kview *v)
{
    v->struct_size = sizeof *v;
    v->buf = t->storage->buf;
    v->offset = t->offset;
    v->dtype = (int32_t)t->dtype;
    v->ndim = t->ndim;
    memcpy(v->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    memcpy(v->strides, t->strides, sizeof(int64_t) * (size_t)t->ndim);
}
