/* layers/layer_common.h — what ember's own layers share: the kernel entries of em_backend_ops
 * they wrap (an X-macro list, in table order), and the map from a device handle to the layer
 * instance of its context (a wrapper is called with the backend's device handle only).
 * Header-only; each layer is one shared object with its own copy. */
#ifndef EMBER_LAYER_COMMON_H
#define EMBER_LAYER_COMMON_H

#include <ember/layer.h>
#include <ember/plugin_kit.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Every kernel entry (em_kargs signature) of em_backend_ops up to ABI 1.7, in order. Kernels
 * of later minors are not listed: they pass through these layers untouched. */
#define LAYER_KERNELS(X)                                                                     \
    X(fill) X(rng_uniform) X(rng_normal) X(copy) X(neg) X(exp) X(log) X(sqrt) X(abs) X(relu) \
    X(tanh) X(sigmoid) X(add_scalar) X(mul_scalar) X(rsub_scalar) X(div_scalar)              \
    X(rdiv_scalar) X(pow_scalar) X(clamp) X(add) X(sub) X(mul) X(div) X(maximum) X(minimum)  \
    X(lt) X(le) X(gt) X(ge) X(eq) X(ne) X(where) X(masked_fill) X(sum) X(relu_backward)      \
    X(clamp_backward) X(pow_backward) X(tanh_backward) X(sigmoid_backward) X(log1p) X(expm1) \
    X(sin) X(cos) X(erf) X(floor) X(ceil) X(round) X(sign) X(pow) X(floor_divide)            \
    X(remainder) X(prod) X(max_dim) X(min_dim) X(softmax) X(log_softmax) X(index_select)     \
    X(gather) X(scatter_add) X(adam) X(avg_pool2d) X(avg_pool2d_grad) X(im2col) X(col2im)   \
    X(max_pool2d) X(conv2d) X(conv2d_grad_input) X(conv2d_grad_weight) X(max_pool2d_grad)    \
    X(sgd)

/* The kernel at byte offset off of a table. */
static inline em_kernel_fn layer_kernel_at(const em_backend_ops *ops, size_t off)
{
    em_kernel_fn fn;
    __builtin_memcpy(&fn, (const char *)ops + off, sizeof fn);
    return fn;
}

/* Device handle -> instance. Lock-free: a slot is claimed by compare-and-swap and published
 * with release order after its value is written; lookups scan the claimed slots. One
 * instance per context, so a process rarely has more than a few. */
#define LAYER_MAP_SLOTS 256
typedef struct layer_map {
    _Atomic(void *) key[LAYER_MAP_SLOTS];
    void *val[LAYER_MAP_SLOTS];
    _Atomic(int) claimed[LAYER_MAP_SLOTS];
} layer_map;

static inline int layer_map_put(layer_map *m, void *dev, void *inst)
{
    for (int i = 0; i < LAYER_MAP_SLOTS; i++) {
        int free_slot = 0;
        if (atomic_compare_exchange_strong(&m->claimed[i], &free_slot, 1)) {
            m->val[i] = inst;
            atomic_store_explicit(&m->key[i], dev, memory_order_release);
            return 1;
        }
    }
    return 0;
}

static inline void *layer_map_get(layer_map *m, const void *dev)
{
    for (int i = 0; i < LAYER_MAP_SLOTS; i++)
        if (atomic_load_explicit(&m->key[i], memory_order_acquire) == dev)
            return m->val[i];
    return NULL;
}

static inline void layer_map_del(layer_map *m, const void *dev, const void *inst)
{
    for (int i = 0; i < LAYER_MAP_SLOTS; i++)
        if (atomic_load_explicit(&m->key[i], memory_order_acquire) == dev && m->val[i] == inst) {
            atomic_store_explicit(&m->key[i], NULL, memory_order_release);
            atomic_store(&m->claimed[i], 0);
            return;
        }
}

/* The value of a layer's own device.ini key among names (NULL-terminated): its index into
 * *out (left as it was when the key is absent), else EM_ERR_CONFIG listing the choices. */
static inline em_status layer_config_choice(const em_host *host, em_host_ctx *hc,
                                            const em_config_kv *config, size_t n, const char *key,
                                            const char *const *names, int *out)
{
    const char *v = emk_config_value(config, n, key);
    if (!v)
        return EM_OK;
    for (int i = 0; names[i]; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return EM_OK;
        }
    char list[128] = "";
    size_t used = 0;
    for (int i = 0; names[i] && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
    return host->error(hc, EM_ERR_CONFIG, "%s: expected one of %s, got '%s'", key, list, v);
}

#endif
