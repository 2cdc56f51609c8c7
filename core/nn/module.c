/* core/nn/module.c — what every module shares: creation, the sequential container,
 * forward dispatch, named parameters in named_parameters() order, train/eval and freeing. */
#include "nn_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

em_module *em__module_new(em_context *ctx, em__module_kind kind, const char *name)
{
    em_module *m = em__calloc(1, sizeof *m);
    char *nm = em__strdup(name);
    if (!m || !nm) {
        free(m);
        free(nm);
        em__error(ctx, EM_ERR_OOM, "out of memory creating a %s module", name);
        return NULL;
    }
    m->kind = kind;
    m->ctx = ctx;
    m->name = nm;
    m->training = true;
    return m;
}

static void drop_full_names(em_module *m)
{
    for (int i = 0; i < m->n_full_names; i++)
        free(m->full_names[i]);
    free(m->full_names);
    m->full_names = NULL;
    m->n_full_names = 0;
}

EMBER_API void em_module_free(em_module *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_params; i++)
        em__handle_release(m->params[i]);   /* quiet when the context went first */
    for (int i = 0; i < m->n_buffers; i++)
        em__handle_release(m->buffers[i]);
    for (int i = 0; i < m->n_buffer_full_names; i++)
        free(m->buffer_full_names[i]);
    free(m->buffer_full_names);
    for (int i = 0; i < m->n_children; i++)
        em_module_free(m->children[i]);
    free(m->children);
    drop_full_names(m);
    free(m->name);
    free(m);
}

EMBER_API em_module *em_sequential(em_context *ctx, em_module *const *modules, int n)
{
    if (!ctx)
        return NULL;
    bool bad = n < 0 || (n > 0 && !modules);
    for (int i = 0; !bad && i < n; i++)
        bad = !modules[i];
    if (bad) {
        /* a NULL child: its constructor recorded why; free the others */
        if (n < 0 || (n > 0 && !modules))
            em__error(ctx, EM_ERR_INVALID, "em_sequential: %d modules given as %s", n,
                      modules ? "an array" : "NULL");
        for (int i = 0; modules && i < n; i++)
            if (modules[i] && !modules[i]->owned)
                em_module_free(modules[i]);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        bool twice = modules[i]->owned || modules[i]->ctx != ctx;
        for (int j = 0; j < i && !twice; j++)
            twice = modules[j] == modules[i];
        if (twice) {
            em__error(ctx, modules[i]->ctx != ctx ? EM_ERR_DEVICE : EM_ERR_INVALID,
                      "em_sequential: module %d (%s) %s", i, modules[i]->name,
                      modules[i]->ctx != ctx ? "belongs to another context"
                                             : "already has an owner");
            /* ownership was given: free the others, each once */
            for (int a = 0; a < n; a++) {
                bool seen = modules[a]->owned;
                for (int b = 0; b < a && !seen; b++)
                    seen = modules[b] == modules[a];
                if (!seen)
                    em_module_free(modules[a]);
            }
            return NULL;
        }
    }
    em_module *m = em__module_new(ctx, EM__MOD_SEQUENTIAL, "Sequential");
    em_module **ch = n ? em__malloc(sizeof *ch * (size_t)n) : NULL;
    if (!m || (n && !ch)) {
        if (m)
            em__error(ctx, EM_ERR_OOM, "out of memory creating a Sequential module");
        em_module_free(m);
        free(ch);
        for (int i = 0; i < n; i++)
            em_module_free(modules[i]);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        ch[i] = modules[i];
        ch[i]->owned = true;
    }
    m->children = ch;
    m->n_children = n;
    return m;
}

EMBER_API em_tensor *em_module_forward(em_module *m, em_tensor *x)
{
    if (!m || !x)
        return NULL;
    switch (m->kind) {
    case EM__MOD_LINEAR:
        return em__linear_forward(m, x);
    case EM__MOD_DROPOUT:
        return em__dropout_forward(m, x);
    case EM__MOD_FUNCTION:
        return m->fn(x);
    case EM__MOD_BATCH_NORM:
    case EM__MOD_LAYER_NORM:
    case EM__MOD_AVG_POOL:
    case EM__MOD_ADAPTIVE_AVG_POOL:
        return em__norm_layer_forward(m, x);
    case EM__MOD_CONV2D:
        return em__conv2d_forward(m, x, false);
    case EM__MOD_MAXPOOL2D:
        return em__max_pool2d_forward(m, x);
    case EM__MOD_SEQUENTIAL:
        break;
    }
    if (m->n_children == 0)   /* nn.Sequential() returns its input */
        return em__obj(x) ? em__dup(x) : NULL;
    em_tensor *h = x;
    for (int i = 0; i < m->n_children; i++) {
        em_module *c = m->children[i];
        /* Conv2d then ReLU: one call, relu(conv) with the same values and graph, so that the
         * backend's kernel can apply the ReLU as it writes the output */
        bool relu = c->kind == EM__MOD_CONV2D && i + 1 < m->n_children &&
                    m->children[i + 1]->kind == EM__MOD_FUNCTION &&
                    m->children[i + 1]->fn == em_relu;
        em_tensor *next = relu ? em__conv2d_forward(c, h, true) : em_module_forward(c, h);
        i += relu;
        if (h != x)
            em_tensor_free(h);
        if (!next)
            return NULL;
        h = next;
    }
    return h;
}

/* Appends m's parameters under prefix; counts all, stores up to max. */
static int collect(em_module *m, const char *prefix, char **names, em_tensor **tensors,
                   int max, int k, bool *oom)
{
    for (int i = 0; i < m->n_params; i++, k++) {
        if (k >= max)
            continue;
        if (tensors)
            tensors[k] = m->params[i];
        if (names) {
            size_t len = strlen(prefix) + strlen(m->param_names[i]) + 1;
            names[k] = em__malloc(len);
            if (!names[k])
                *oom = true;
            else
                snprintf(names[k], len, "%s%s", prefix, m->param_names[i]);
        }
    }
    for (int c = 0; c < m->n_children; c++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s%d.", prefix, c);
        k = collect(m->children[c], sub, names, tensors, max, k, oom);
    }
    return k;
}

EMBER_API int em_module_parameters(em_module *m, const char **names, em_tensor **tensors,
                                   int max)
{
    if (!m)
        return -1;
    if (max < 0)
        max = 0;
    int total = collect(m, "", NULL, NULL, 0, 0, &(bool){false});
    if (!names)
        return collect(m, "", NULL, tensors, max, 0, &(bool){false});
    int n = total < max ? total : max;
    if (n > m->n_full_names) {
        char **fresh = em__calloc((size_t)n, sizeof *fresh);
        bool oom = !fresh;
        if (fresh)
            collect(m, "", fresh, NULL, n, 0, &oom);
        if (oom) {
            for (int i = 0; fresh && i < n; i++)
                free(fresh[i]);
            free(fresh);
            em__error(m->ctx, EM_ERR_OOM, "out of memory naming the parameters of a %s",
                      m->name);
            return -1;
        }
        drop_full_names(m);
        m->full_names = fresh;
        m->n_full_names = n;
    }
    for (int i = 0; i < n; i++)
        names[i] = m->full_names[i];
    if (tensors)
        collect(m, "", NULL, tensors, max, 0, &(bool){false});
    return total;
}

EMBER_API int em_module_parameter_count(em_module *m)
{
    return em_module_parameters(m, NULL, NULL, 0);
}

EMBER_API void em_module_train(em_module *m, bool mode)
{
    if (!m)
        return;
    m->training = mode;
    for (int i = 0; i < m->n_children; i++)
        em_module_train(m->children[i], mode);
}

EMBER_API bool em_module_is_training(const em_module *m)
{
    return m && m->training;
}

EMBER_API const char *em_module_name(const em_module *m)
{
    return m ? m->name : NULL;
}
