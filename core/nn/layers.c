/* core/nn/layers.c — the leaf modules: Linear (PyTorch's default initialisation from the
 * context's generator), Dropout, and function modules such as ReLU. */
#include "nn_impl.h"

#include <math.h>
#include <stdlib.h>
#include <ember/ops.h>
#include <ember/autograd.h>

/* PyTorch's messages print shapes as [2, 3]. */
static void shape_str(char *buf, size_t n, em_tensor *t)
{
    int nd = em_tensor_ndim(t);
    const int64_t *s = em_tensor_shape(t);
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < nd && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* em__uniform_param (nn_impl.h): a kept f32 leaf drawn from U(-bound, bound): the context's uniform
 * numbers u (f32, as em_rand) mapped on the host as (2u - 1) * bound, so every backend that
 * implements the generator gives the same bits. */
em_tensor *em__uniform_param(em_context *ctx, int ndim, const int64_t *shape, double bound)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    em_tensor *u = em_rand(ctx, EM_F32, ndim, shape);
    float *buf = malloc(sizeof *buf * (size_t)(n ? n : 1));
    em_tensor *p = NULL;
    if (!buf)
        em__error(ctx, EM_ERR_OOM, "out of memory initialising a Linear module");
    if (u && buf && em_tensor_to_host(u, buf, sizeof *buf * (size_t)n) == EM_OK) {
        for (int64_t i = 0; i < n; i++)
            buf[i] = (float)((2.0 * (double)buf[i] - 1.0) * bound);
        p = em_tensor_keep(em_tensor_from_data(ctx, EM_F32, ndim, shape, buf));
        if (p && em_tensor_set_requires_grad(p, true) != EM_OK) {
            em_tensor_free(p);
            p = NULL;
        }
    }
    free(buf);
    em_tensor_free(u);
    return p;
}

EMBER_API em_module *em_linear(em_context *ctx, int64_t in_features, int64_t out_features,
                               bool bias)
{
    if (!ctx)
        return NULL;
    if (in_features < 0 || out_features < 0) {
        em__error(ctx, EM_ERR_INVALID,
                  "Linear: Trying to create tensor with negative dimension %lld: [%lld, %lld]",
                  (long long)(out_features < 0 ? out_features : in_features),
                  (long long)out_features, (long long)in_features);
        return NULL;
    }
    em_module *m = em__module_new(ctx, EM__MOD_LINEAR, "Linear");
    if (!m)
        return NULL;
    m->in_features = in_features;
    m->out_features = out_features;
    /* kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in)
     * = 1 / sqrt(fan_in); the bias's bound is 1 / sqrt(fan_in) too. */
    double bound = in_features > 0 ? 1.0 / sqrt((double)in_features) : 0.0;
    m->param_names[0] = "weight";
    m->params[0] = em__uniform_param(ctx, 2, (const int64_t[]){out_features, in_features}, bound);
    m->n_params = m->params[0] ? 1 : 0;
    if (m->params[0] && bias) {
        m->param_names[1] = "bias";
        m->params[1] = em__uniform_param(ctx, 1, (const int64_t[]){out_features}, bound);
        m->n_params = m->params[1] ? 2 : 1;
    }
    if (!m->params[0] || (bias && !m->params[1])) {
        em_module_free(m);
        return NULL;
    }
    return m;
}

em_tensor *em__linear_forward(em_module *m, em_tensor *x)
{
    int nd = em_tensor_ndim(x);
    if (nd < 0)
        return NULL;   /* stale handle: recorded by the lookup */
    if (nd < 1 || em_tensor_size(x, -1) != m->in_features) {
        char s[160];
        shape_str(s, sizeof s, x);
        em__error(m->ctx, EM_ERR_SHAPE,
                  "Linear(in_features=%lld, out_features=%lld, bias=%s): input of shape %s "
                  "does not end in %lld features (mat1 and mat2 shapes cannot be multiplied)",
                  (long long)m->in_features, (long long)m->out_features,
                  m->n_params > 1 ? "True" : "False", s, (long long)m->in_features);
        return NULL;
    }
    if (em_tensor_dtype(x) != em_tensor_dtype(m->params[0])) {
        em__error(m->ctx, EM_ERR_DTYPE,
                  "Linear(in_features=%lld, out_features=%lld): expected input of dtype %s, "
                  "got %s (convert with em_to_dtype)", (long long)m->in_features,
                  (long long)m->out_features, em_dtype_name(em_tensor_dtype(m->params[0])),
                  em_dtype_name(em_tensor_dtype(x)));
        return NULL;
    }
    em_tensor *wt = em_t(m->params[0]);
    em_tensor *y = em_matmul(x, wt);
    em_tensor_free(wt);
    if (!y || m->n_params < 2)
        return y;
    em_tensor *z = em_add(y, m->params[1]);
    em_tensor_free(y);
    return z;
}

EMBER_API em_module *em_function_module(em_context *ctx, const char *name,
                                        em_tensor *(*fn)(em_tensor *))
{
    if (!ctx)
        return NULL;
    if (!name || !fn) {
        em__error(ctx, EM_ERR_INVALID, "em_function_module: %s is NULL",
                  !name ? "name" : "the function");
        return NULL;
    }
    em_module *m = em__module_new(ctx, EM__MOD_FUNCTION, name);
    if (m)
        m->fn = fn;
    return m;
}

EMBER_API em_module *em_relu_module(em_context *ctx)
{
    return em_function_module(ctx, "ReLU", em_relu);
}

EMBER_API em_module *em_dropout(em_context *ctx, double p)
{
    if (!ctx)
        return NULL;
    if (!(p >= 0.0 && p <= 1.0)) {
        char v[64];
        em__pyfloat(v, sizeof v, p);
        em__error(ctx, EM_ERR_INVALID,
                  "dropout probability has to be between 0 and 1, but got %s", v);
        return NULL;
    }
    em_module *m = em__module_new(ctx, EM__MOD_DROPOUT, "Dropout");
    if (m)
        m->p = p;
    return m;
}

em_tensor *em__dropout_forward(em_module *m, em_tensor *x)
{
    em_dtype dt = em_tensor_dtype(x);
    if (em_tensor_ndim(x) < 0)
        return NULL;
    if (m->training && dt != EM_F32 && dt != EM_F64) {
        em__error(m->ctx, EM_ERR_DTYPE,
                  "Dropout(p=%g): expected a floating input, got %s", m->p, em_dtype_name(dt));
        return NULL;
    }
    return em_dropout_functional(x, m->p, m->training);
}
