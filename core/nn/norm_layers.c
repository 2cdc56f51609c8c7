/* core/nn/norm_layers.c — the pooling and normalisation modules: BatchNorm1d/2d (parameters
 * weight and bias, buffers running_mean, running_var and num_batches_tracked, training and
 * eval mode from the module's flag), LayerNorm, AvgPool2d and AdaptiveAvgPool2d; named
 * buffers, and the state_dict listing (parameters, then buffers, module by module, under
 * PyTorch's keys) that em_module_save and em_module_load use. */
#include "nn_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ember/ops.h>
#include <ember/autograd.h>

/* A kept tensor of shape (ndim, shape) filled with v (a leaf requiring grad when param). */
static em_tensor *filled(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape, double v,
                         bool param)
{
    em_tensor *t = em_tensor_keep(em_full(ctx, dt, ndim, shape, v));
    if (t && param && em_tensor_set_requires_grad(t, true) != EM_OK) {
        em_tensor_free(t);
        return NULL;
    }
    return t;
}

static em_module *batch_norm(em_context *ctx, const char *name, int dims, int64_t n, double eps,
                             double momentum, bool affine, bool track)
{
    if (!ctx)
        return NULL;
    if (n < 0) {
        em__error(ctx, EM_ERR_INVALID, "%s: Trying to create tensor with negative dimension "
                  "%lld: [%lld]", name, (long long)n, (long long)n);
        return NULL;
    }
    em_module *m = em__module_new(ctx, EM__MOD_BATCH_NORM, name);
    if (!m)
        return NULL;
    m->norm_dims = dims;
    m->in_features = n;
    m->eps = eps;
    m->momentum = momentum;
    bool ok = true;
    if (affine) {
        m->param_names[0] = "weight";
        m->param_names[1] = "bias";
        ok = (m->params[0] = filled(ctx, EM_F32, 1, &n, 1.0, true)) != NULL;
        m->n_params = ok;
        ok = ok && (m->params[1] = filled(ctx, EM_F32, 1, &n, 0.0, true)) != NULL;
        m->n_params += ok && m->params[1];
    }
    if (ok && track) {
        static const char *const names[3] = {"running_mean", "running_var",
                                             "num_batches_tracked"};
        for (int i = 0; i < 3 && ok; i++) {
            m->buffer_names[i] = names[i];
            m->buffers[i] = i == 2 ? filled(ctx, EM_I64, 0, NULL, 0.0, false)
                                   : filled(ctx, EM_F32, 1, &n, i == 1 ? 1.0 : 0.0, false);
            ok = m->buffers[i] != NULL;
            m->n_buffers += ok;
        }
    }
    if (!ok) {
        em_module_free(m);
        return NULL;
    }
    return m;
}

EMBER_API em_module *em_batch_norm1d(em_context *ctx, int64_t num_features, double eps,
                                     double momentum, bool affine, bool track_running_stats)
{
    return batch_norm(ctx, "BatchNorm1d", (1 << 2) | (1 << 3), num_features, eps, momentum,
                      affine, track_running_stats);
}

EMBER_API em_module *em_batch_norm2d(em_context *ctx, int64_t num_features, double eps,
                                     double momentum, bool affine, bool track_running_stats)
{
    return batch_norm(ctx, "BatchNorm2d", 1 << 4, num_features, eps, momentum, affine,
                      track_running_stats);
}

EMBER_API em_module *em_layer_norm_module(em_context *ctx, int n_normalized,
                                          const int64_t *normalized_shape, double eps,
                                          bool elementwise_affine)
{
    if (!ctx)
        return NULL;
    if (n_normalized < 1 || n_normalized > EM_MAX_DIMS || !normalized_shape) {
        em__error(ctx, EM_ERR_INVALID, "LayerNorm: normalized_shape must have 1 to %d dims, "
                  "got %d", EM_MAX_DIMS, n_normalized);
        return NULL;
    }
    for (int i = 0; i < n_normalized; i++)
        if (normalized_shape[i] < 0) {
            em__error(ctx, EM_ERR_INVALID, "LayerNorm: Trying to create tensor with negative "
                      "dimension %lld", (long long)normalized_shape[i]);
            return NULL;
        }
    em_module *m = em__module_new(ctx, EM__MOD_LAYER_NORM, "LayerNorm");
    if (!m)
        return NULL;
    m->norm_dims = n_normalized;
    memcpy(m->ishape, normalized_shape, sizeof(int64_t) * (size_t)n_normalized);
    m->eps = eps;
    if (elementwise_affine) {
        m->param_names[0] = "weight";
        m->param_names[1] = "bias";
        m->params[0] = filled(ctx, EM_F32, n_normalized, normalized_shape, 1.0, true);
        m->n_params = m->params[0] != NULL;
        if (m->params[0])
            m->params[1] = filled(ctx, EM_F32, n_normalized, normalized_shape, 0.0, true);
        m->n_params += m->params[1] != NULL;
        if (m->n_params != 2) {
            em_module_free(m);
            return NULL;
        }
    }
    return m;
}

EMBER_API em_module *em_avg_pool2d_module(em_context *ctx, const int64_t kernel_size[2],
                                          const int64_t stride[2], const int64_t padding[2],
                                          bool ceil_mode, bool count_include_pad,
                                          int64_t divisor_override)
{
    if (!ctx)
        return NULL;
    if (!kernel_size) {
        em__error(ctx, EM_ERR_INVALID, "AvgPool2d: kernel_size is NULL");
        return NULL;
    }
    em_module *m = em__module_new(ctx, EM__MOD_AVG_POOL, "AvgPool2d");
    if (!m)
        return NULL;
    for (int d = 0; d < 2; d++) {
        m->ishape[d] = kernel_size[d];
        m->ishape[2 + d] = stride ? stride[d] : 0;
        m->ishape[4 + d] = padding ? padding[d] : 0;
    }
    m->has_stride = stride != NULL;
    m->ceil_mode = ceil_mode;
    m->count_include_pad = count_include_pad;
    m->divisor_override = divisor_override;
    return m;
}

EMBER_API em_module *em_adaptive_avg_pool2d_module(em_context *ctx, const int64_t output_size[2])
{
    if (!ctx)
        return NULL;
    if (!output_size) {
        em__error(ctx, EM_ERR_INVALID, "AdaptiveAvgPool2d: output_size is NULL");
        return NULL;
    }
    em_module *m = em__module_new(ctx, EM__MOD_ADAPTIVE_AVG_POOL, "AdaptiveAvgPool2d");
    if (m) {
        m->ishape[0] = output_size[0];
        m->ishape[1] = output_size[1];
    }
    return m;
}

/* _BatchNorm.forward: the momentum of this call, num_batches_tracked counted in training */
static em_tensor *batch_norm_forward(em_module *m, em_tensor *x)
{
    int nd = em_tensor_ndim(x);
    if (nd < 0)
        return NULL;
    if (nd >= 31 || !(m->norm_dims & (1 << nd))) {
        if (m->norm_dims & (1 << 4))
            em__error(m->ctx, EM_ERR_SHAPE, "%s: expected 4D input (got %dD input)", m->name, nd);
        else
            em__error(m->ctx, EM_ERR_SHAPE, "%s: expected 2D or 3D input (got %dD input)",
                      m->name, nd);
        return NULL;
    }
    bool track = m->n_buffers == 3;
    em_tensor *w = m->n_params ? m->params[0] : NULL, *b = m->n_params ? m->params[1] : NULL;
    em_tensor *rm = track ? m->buffers[0] : NULL, *rv = track ? m->buffers[1] : NULL;
    double momentum = m->momentum == m->momentum ? m->momentum : 0.0;
    int64_t tracked = 0;
    if (m->training && track) {
        em__tensor *nb = em__obj(m->buffers[2]);
        if (!nb)
            return NULL;
        int64_t v;
        if (em_tensor_to_host(m->buffers[2], &v, sizeof v) != EM_OK)
            return NULL;
        tracked = v + 1;
        if (m->momentum != m->momentum)
            momentum = 1.0 / (double)tracked;
    }
    /* eval without running statistics normalises with the batch's */
    bool bn_training = m->training || !track;
    em_tensor *y = em_batch_norm(x, m->training || track ? rm : NULL,
                                 m->training || track ? rv : NULL, w, b, bn_training, momentum,
                                 m->eps);
    if (y && m->training && track) {
        em_no_grad_begin(m->ctx);
        em_status st = em_fill_(m->buffers[2], (double)tracked);
        em_no_grad_end(m->ctx);
        if (st != EM_OK) {
            em_tensor_free(y);
            return NULL;
        }
    }
    return y;
}

em_tensor *em__norm_layer_forward(em_module *m, em_tensor *x)
{
    switch (m->kind) {
    case EM__MOD_BATCH_NORM:
        return batch_norm_forward(m, x);
    case EM__MOD_LAYER_NORM:
        return em_layer_norm(x, m->norm_dims, m->ishape, m->n_params ? m->params[0] : NULL,
                             m->n_params ? m->params[1] : NULL, m->eps);
    case EM__MOD_AVG_POOL:
        return em_avg_pool2d(x, m->ishape, m->has_stride ? m->ishape + 2 : NULL, m->ishape + 4,
                             m->ceil_mode, m->count_include_pad, m->divisor_override);
    case EM__MOD_ADAPTIVE_AVG_POOL:
        return em_adaptive_avg_pool2d(x, m->ishape);
    default:
        em__error(m->ctx, EM_ERR_INTERNAL, "%s: not a pooling or normalisation module", m->name);
        return NULL;
    }
}

/* Appends m's entries under prefix (parameters and/or buffers, module by module: the
 * state_dict order); counts all, stores up to max. names are malloc'd. */
static int collect(em_module *m, const char *prefix, bool params, bool buffers, char **names,
                   em_tensor **tensors, int max, int k, bool *oom)
{
    for (int pass = 0; pass < 2; pass++) {
        if ((pass == 0 && !params) || (pass == 1 && !buffers))
            continue;
        int n = pass ? m->n_buffers : m->n_params;
        for (int i = 0; i < n; i++, k++) {
            if (k >= max)
                continue;
            if (tensors)
                tensors[k] = pass ? m->buffers[i] : m->params[i];
            if (names) {
                const char *nm = pass ? m->buffer_names[i] : m->param_names[i];
                size_t len = strlen(prefix) + strlen(nm) + 1;
                names[k] = em__malloc(len);
                if (!names[k])
                    *oom = true;
                else
                    snprintf(names[k], len, "%s%s", prefix, nm);
            }
        }
    }
    for (int c = 0; c < m->n_children; c++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s%d.", prefix, c);
        k = collect(m->children[c], sub, params, buffers, names, tensors, max, k, oom);
    }
    return k;
}

EMBER_API int em_module_buffers(em_module *m, const char **names, em_tensor **tensors, int max)
{
    if (!m)
        return -1;
    if (max < 0)
        max = 0;
    int total = collect(m, "", false, true, NULL, NULL, 0, 0, &(bool){false});
    int n = total < max ? total : max;
    if (names) {
        char **fresh = n ? em__calloc((size_t)n, sizeof *fresh) : NULL;
        bool oom = n && !fresh;
        if (fresh)
            collect(m, "", false, true, fresh, NULL, n, 0, &oom);
        if (oom) {
            for (int i = 0; fresh && i < n; i++)
                free(fresh[i]);
            free(fresh);
            em__error(m->ctx, EM_ERR_OOM, "out of memory naming the buffers of a %s", m->name);
            return -1;
        }
        for (int i = 0; i < m->n_buffer_full_names; i++)
            free(m->buffer_full_names[i]);
        free(m->buffer_full_names);
        m->buffer_full_names = fresh;
        m->n_buffer_full_names = n;
        for (int i = 0; i < n; i++)
            names[i] = fresh[i];
    }
    if (tensors)
        collect(m, "", false, true, NULL, tensors, max, 0, &(bool){false});
    return total;
}

em_status em__module_state(em_module *m, char ***names, em_tensor ***tensors, int *n)
{
    *names = NULL;
    *tensors = NULL;
    *n = collect(m, "", true, true, NULL, NULL, 0, 0, &(bool){false});
    char **nm = em__calloc((size_t)*n + 1, sizeof *nm);
    em_tensor **ts = em__calloc((size_t)*n + 1, sizeof *ts);
    bool oom = !nm || !ts;
    if (!oom)
        collect(m, "", true, true, nm, ts, *n, 0, &oom);
    if (oom) {
        for (int i = 0; nm && i < *n; i++)
            free(nm[i]);
        free(nm);
        free(ts);
        return em__error(m->ctx, EM_ERR_OOM, "out of memory listing the state of a %s", m->name);
    }
    *names = nm;
    *tensors = ts;
    return EM_OK;
}
