/* plugins/template/layer.c — the smallest useful ember layer: ember-layer-<LAYER_NAME>.so (default
 * "passthru"), a starting point for a vendor's own. It wraps one entry, gemm, counts its calls
 * and passes them to the next table; every other entry passes straight through (the core
 * takes the next table's function pointer: no cost). With [passthru] report = on it logs
 * the count when the context is freed. See docs/writing-a-backend.md, "Layers".
 *
 * Build: cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags ember) layer.c \
 *            -o ember-layer-passthru.so       (or: make layer)
 * Use:   [device] layers = passthru    (or EMBER_LAYERS=passthru), with the file on the
 *        plugin search path ([backends] path, EMBER_BACKEND_PATH or the install dir). */
#include <ember/layer.h>

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#ifndef LAYER_NAME
#define LAYER_NAME "passthru"
#endif

typedef struct inst {
    const em_host *host;
    em_host_ctx *hc;
    const em_layer_next *next;   /* the table below us and the device */
    unsigned long long gemm_calls;
    int report;
} inst;

/* Wrappers get the backend's device handle, never ours: find the instance from it. One
 * instance per context; slots are claimed with compare-and-swap (contexts may be created on
 * several threads at once). */
#define SLOTS 64
static _Atomic(void *) g_dev[SLOTS];
static inst *g_inst[SLOTS];
static atomic_int g_used[SLOTS];

static inst *find(void *dev)
{
    for (int i = 0; i < SLOTS; i++)
        if (atomic_load_explicit(&g_dev[i], memory_order_acquire) == dev)
            return g_inst[i];
    return NULL;
}

static em_status w_gemm(void *dev, const em_gemm_args *g)
{
    inst *in = find(dev);
    in->gemm_calls++;
    return in->next->ops->gemm(dev, g);   /* the next table: a layer or the backend */
}

/* Entries left NULL pass through. .struct_size says which backend.h this was built with:
 * kernels a later minor appends are past it and bypass this layer (ember-info says so). */
static const em_backend_ops layer_ops = {
    .struct_size =
#ifdef LAYER_OLD_MINOR   /* (tests) as if built against ABI 1.2, before the adam entry */
        offsetof(em_backend_ops, adam),
#else
        sizeof(em_backend_ops),
#endif
    .gemm = w_gemm,
};

static const char *const layer_keys[] = {"report", NULL};

static void destroy(void *ctx)
{
    inst *in = ctx;
    if (in->report)
        in->host->log(in->hc, EM_LOG_WARN, "%s: %llu gemm calls", LAYER_NAME, in->gemm_calls);
    for (int i = 0; i < SLOTS; i++)
        if (g_inst[i] == in && atomic_load(&g_dev[i]) == in->next->dev) {
            atomic_store_explicit(&g_dev[i], NULL, memory_order_release);
            atomic_store(&g_used[i], 0);
        }
    in->host->free(in->hc, in);
}

EM_LAYER_ENTRY
{
    out->abi_major = EM_LAYER_ABI_MAJOR;
    out->abi_minor = EM_LAYER_ABI_MINOR;
    out->name = LAYER_NAME;
    out->version = "1.0";
    out->description = "template layer: counts gemm calls, passes everything through";
    out->config_keys = layer_keys;
    out->ops = &layer_ops;
    if (host->struct_size >= offsetof(em_host, flags) + sizeof host->flags &&
        (host->flags & EM_HOST_DESCRIBE))
        return EM_OK;   /* a describe call: the description only */
    if (host->abi_major != EM_ABI_MAJOR)
        return host->error(hc, EM_ERR_PLUGIN, "built for plugin ABI %d", EM_ABI_MAJOR);
    int report = 0;
    for (size_t i = 0; i < n_config; i++) {
        if (strcmp(config[i].key, "report"))
            continue;   /* the core rejected keys not in config_keys already */
        if (!strcmp(config[i].value, "on"))
            report = 1;
        else if (strcmp(config[i].value, "off"))
            return host->error(hc, EM_ERR_CONFIG, "report: expected on or off, got '%s'",
                               config[i].value);
    }
    inst *in = host->alloc(hc, sizeof *in);
    if (!in)
        return host->error(hc, EM_ERR_OOM, "out of memory");
    memset(in, 0, sizeof *in);
    in->host = host;
    in->hc = hc;
    in->next = next;
    in->report = report;
    for (int i = 0; i < SLOTS; i++) {
        int zero = 0;
        if (atomic_compare_exchange_strong(&g_used[i], &zero, 1)) {
            g_inst[i] = in;
            atomic_store_explicit(&g_dev[i], next->dev, memory_order_release);
            out->ctx = in;
            out->destroy = destroy;
            return EM_OK;
        }
    }
    host->free(hc, in);
    return host->error(hc, EM_ERR_PLUGIN, "too many contexts");
}
