/* core/ops/dtype.c — the dtype rules ops share: PyTorch's promotion of a tensor with a
 * scalar, the checked conversion of a fill value to an integer dtype, the exact integer
 * parameters (ip[]) kernels take on integer dtypes, and the core's internal casts.
 *
 * A scalar is a double in ember's API; PyTorch tells a Python int from a float by its type.
 * Ember treats a finite, whole value within int64's range as an int (2.0 behaves as 2), so
 * an i64 tensor times 2 stays i64 and times 0.5 becomes f32, as in PyTorch. */
#include "config.h"
#include "internal.h"

#include <math.h>
#include <string.h>

bool em__scalar_integral(double s)
{
    return isfinite(s) && s == trunc(s) && s >= -0x1p63 && s < 0x1p63;
}

em_dtype em__scalar_result(em_dtype t, double s)
{
    if (em_dtype_is_floating(t))
        return t;
    if (em__scalar_integral(s))
        return t == EM_BOOL ? EM_I64 : t;
    return EM_F32;
}

int64_t em__wrap_int(em_dtype dt, int64_t v)
{
    switch (dt) {
    case EM_BOOL: return v != 0;
    case EM_U8: return (int64_t)(uint8_t)(uint64_t)v;
    case EM_I32: return (int64_t)(int32_t)(uint32_t)(uint64_t)v;
    default: return v;
    }
}

/* The C type PyTorch names in its overflow message. */
static const char *c_type_name(em_dtype dt)
{
    switch (dt) {
    case EM_U8: return "uint8_t";
    case EM_I32: return "int";
    default: return "int64_t";
    }
}

em_status em__scalar_checked(em_context *ctx, const char *op, em_dtype dt, double s, int64_t *iv)
{
    *iv = 0;
    if (!em_dtype_is_integer(dt)) {
        if (dt == EM_BOOL)
            *iv = s != 0;
        return EM_OK;
    }
    /* c10::overflows: an int is checked against the type's range (u8 also takes -255..-1,
     * which wrap, "so that a - b can be a + 255 * b"); a float against [lowest, max]. */
    bool ok;
    if (em__scalar_integral(s)) {
        int64_t v = (int64_t)s;
        if (dt == EM_U8)
            ok = v >= -255 && v <= 255;
        else if (dt == EM_I32)
            ok = v >= INT32_MIN && v <= INT32_MAX;
        else
            ok = true;
        if (ok)
            *iv = em__wrap_int(dt, v);
    } else {
        /* not integral: NaN, infinite, out of int64's range, or with a fractional part */
        if (dt == EM_U8)
            ok = s >= 0 && s <= 255;
        else if (dt == EM_I32)
            ok = s >= (double)INT32_MIN && s <= (double)INT32_MAX;
        else
            ok = isfinite(s) && fabs(s) < 0x1p63;
        if (ok)
            *iv = (int64_t)trunc(s);
    }
    if (!ok)
        return em__error(ctx, EM_ERR_INVALID, "%s: value cannot be converted to type %s without "
                         "overflow (%g for a %s tensor)", op, c_type_name(dt), s, em_dtype_name(dt));
    return EM_OK;
}

em_status em__launch_fill(em__tensor *t, double s, int64_t iv)
{
    if (em_dtype_is_integer(t->dtype)) {
        int64_t ip[1] = {em__wrap_int(t->dtype, iv)};
        double p[4] = {(double)ip[0], 0, 0, 0};
        return em__launch_ip(t->ctx, EM_KERNEL_OFFSET(fill), t, NULL, 0, p, NULL, ip, 1);
    }
    double p[4] = {s, 0, 0, 0};
    return em__launch(t->ctx, EM_KERNEL_OFFSET(fill), t, NULL, 0, p, NULL);
}

em__tensor *em__cast(em__tensor *t, em_dtype dt)
{
    em__tensor *c = em__tensor_new(t->ctx, dt, t->ndim, t->shape);
    if (!c)
        return NULL;
    em__tensor *in[1] = {t};
    if (em__launch(t->ctx, EM_KERNEL_OFFSET(copy), c, in, 1, NULL, NULL) != EM_OK) {
        em__tensor_unref(c);
        return NULL;
    }
    return c;
}

em__tensor *em__scalar_tensor(em_context *ctx, em_dtype dt, double s)
{
    em__tensor *t = em__tensor_new(ctx, dt, 0, NULL);
    if (!t)
        return NULL;
    int64_t iv = em_dtype_is_integer(dt) && em__scalar_integral(s) ? (int64_t)s : 0;
    if (em__launch_fill(t, s, iv) != EM_OK) {
        em__tensor_unref(t);
        return NULL;
    }
    return t;
}

em_status em__any_zero(em__tensor *t, bool *out)
{
    em_context *ctx = t->ctx;
    *out = false;
    if (em__numel(t->ndim, t->shape) == 0)
        return EM_OK;
    em__tensor *zero = em__scalar_tensor(ctx, t->dtype, 0.0);
    if (!zero)
        return em__failed(ctx);
    em__tensor *in[2] = {t, zero};
    em__tensor *mask = em__apply(&em__op_eq, in, 2, NULL);
    em__tensor_unref(zero);
    if (!mask)
        return em__failed(ctx);
    /* count the zeros: bool -> i64, summed to one element */
    em__tensor *counts = em__cast(mask, EM_I64);
    em__tensor_unref(mask);
    if (!counts)
        return em__failed(ctx);
    int64_t one[EM_MAX_DIMS];
    for (int d = 0; d < counts->ndim; d++)
        one[d] = 1;
    em__tensor *total = em__tensor_new(ctx, EM_I64, counts->ndim, one);
    em_status st = total ? em__launch_reduce(ctx, EM_KERNEL_OFFSET(sum), total, counts, 1.0)
                         : em__failed(ctx);
    int64_t n = 0;
    if (st == EM_OK)
        st = em__to_host_as(total, EM_I64, &n);
    em__tensor_unref(total);
    em__tensor_unref(counts);
    if (st == EM_OK)
        *out = n != 0;
    return st;
}

/* ----------------------------------------------------------------- shape-rule pieces */

em_status em__same_dtype(em_call *c, const em__tensor *a, const em__tensor *b)
{
    if (a->dtype != b->dtype)
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: dtypes differ (%s and %s); convert one with "
                         "em_to_dtype", c->op->name, em_dtype_name(a->dtype), em_dtype_name(b->dtype));
    return EM_OK;
}

em_status em__shape_broadcast(em_call *c)
{
    int n = c->in[0]->ndim;
    int64_t shape[EM_MAX_DIMS];
    memcpy(shape, c->in[0]->shape, sizeof(int64_t) * (size_t)n);
    for (int i = 1; i < c->n_in; i++) {
        int64_t tmp[EM_MAX_DIMS];
        int nt;
        if (em__broadcast_shapes(c->ctx, c->op->name, n, shape, c->in[i]->ndim, c->in[i]->shape,
                                 &nt, tmp) != EM_OK)
            return em__failed(c->ctx);
        n = nt;
        memcpy(shape, tmp, sizeof(int64_t) * (size_t)n);
    }
    c->out_ndim = n;
    memcpy(c->out_shape, shape, sizeof(int64_t) * (size_t)n);
    return EM_OK;
}

em_status em__promoted_inputs(em_call *c, em__tensor **in, em__tensor **tmp)
{
    for (int i = 0; i < c->n_in; i++)
        tmp[i] = NULL;
    for (int i = 0; i < c->n_in; i++) {
        in[i] = c->in[i];
        if (in[i]->dtype != c->out_dtype) {
            if (!(tmp[i] = em__cast(in[i], c->out_dtype)))
                return em__failed(c->ctx);
            in[i] = tmp[i];
        }
    }
    return EM_OK;
}

void em__release_tmp(em__tensor **tmp, int n)
{
    for (int i = 0; i < n; i++) {
        em__tensor_unref(tmp[i]);
        tmp[i] = NULL;
    }
}
