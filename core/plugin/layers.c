/* core/plugin/layers.c — the layer stack of a context (<ember/layer.h>): [device] layers /
 * EMBER_LAYERS name ember-layer-<name>.so files on the plugin search path; each is opened,
 * checked (symbol, ABI, name, config keys), handed the next table down and the open device,
 * and its table is merged over that one: the entries it sets (where the next table has
 * them), the next table's everywhere else — including every entry past the size of the
 * table it was built with, which bypasses it. ctx->ops then points at the outermost table;
 * with no layers it stays the backend's own (&plugin->ops), so an unlayered context pays
 * nothing. The core's events reach the layers that take them through em__layer_event,
 * guarded at each hook by one test of ctx->layer_events. */
#include "config.h"
#include "internal.h"
#include <ember/layer.h>

#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_LAYERS 8

typedef struct layer {
    void *dl;
    char name[64];
    char *path;
    em_layer lay;              /* what the entry returned */
    em_layer_next next;        /* what it was handed (it may keep the pointer) */
    em_backend_ops table;      /* the effective table at this level */
    size_t ops_size;           /* struct_size of the layer's own table */
} layer;

struct em__layers {
    int n;                     /* l[0] is the outermost */
    layer l[MAX_LAYERS];
};

/* The least an em_layer must hold: through destroy. */
#define LAYER_MIN_SIZE (offsetof(em_layer, destroy) + sizeof(void *))

/* Entries a layer may wrap: memory, copies, synchronize, every kernel, the asynchrony
 * entries; never struct_size, the instance and device entries or the dtypes pointer. */
static bool wrappable(size_t off)
{
    return off >= offsetof(em_backend_ops, buffer_alloc) && off != offsetof(em_backend_ops, dtypes) &&
           off % sizeof(void *) == 0;
}

static void *slot(const em_backend_ops *t, size_t off)
{
    void *fn;
    memcpy(&fn, (const char *)t + off, sizeof fn);
    return fn;
}

/* ------------------------------------------------------------------ finding */

em_status em__layer_find(const em_config *cfg, const em__resolved *r, const char *name,
                         char *path, size_t pathlen, em_search_origin *origin, char *msg,
                         size_t msglen)
{
    msg[0] = 0;
    if (!em__valid_backend_name(name)) {
        em__snprintf(msg, msglen, "'%s' is not a valid layer name", name);
        return EM_ERR_CONFIG;
    }
    em__search_path sp;
    em__search_path_build(cfg, r, NULL, &sp);
    if (sp.oom) {
        em__search_path_free(&sp);
        em__snprintf(msg, msglen, "out of memory finding layer '%s'", name);
        return EM_ERR_OOM;
    }
    em_status st = EM_ERR_PLUGIN;
    char why[PATH_MAX + 200];
    for (int i = 0; i < sp.n; i++) {
        if (!sp.dirs[i].exists)
            continue;
        em__snprintf(path, pathlen, "%s/ember-layer-%s.so", sp.dirs[i].path, name);
        int fc = em__plugin_file_check(path, why, sizeof why);
        if (fc == EM__FILE_OK) {
            *origin = sp.dirs[i].origin;
            st = EM_OK;
            break;
        }
        if (fc == EM__FILE_UNUSABLE) {
            em__snprintf(msg, msglen, "layer '%s' cannot be loaded: %s", name, why);
            em__search_path_free(&sp);
            return EM_ERR_PLUGIN;
        }
    }
    if (st != EM_OK) {
        char dirs[2048];
        size_t used = 0;
        dirs[0] = 0;
        for (int i = 0; i < sp.n && used < sizeof dirs; i++)
            used += (size_t)snprintf(dirs + used, sizeof dirs - used, "%s%s (%s%s)",
                                     i ? ", " : "", sp.dirs[i].path,
                                     em__origin_text(sp.dirs[i].origin),
                                     sp.dirs[i].exists ? "" : "; does not exist");
        em__snprintf(msg, msglen, "layer '%s' not found: no ember-layer-%s.so in the plugin "
                     "directories searched: %s", name, name, sp.n ? dirs : "(none)");
    }
    em__search_path_free(&sp);
    return st;
}

/* Open path and find its entry; msg says why not. */
static em_status open_entry(const char *name, const char *path, void **dl, em_layer_entry_fn *entry,
                            char *msg, size_t msglen)
{
    char why[256];
    *dl = NULL;
    if (!em__elf_intact(path, why, sizeof why)) {
        em__snprintf(msg, msglen, "layer '%s' cannot be loaded from %s (%s)", name, path, why);
        return EM_ERR_PLUGIN;
    }
    dlerror();
    *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*dl) {
        const char *e = dlerror();
        em__snprintf(msg, msglen, "layer '%s' cannot be loaded from %s (dlopen failed: %s)", name,
                     path, e ? e : "unknown error");
        return EM_ERR_PLUGIN;
    }
    dlerror();
    void *sym = dlsym(*dl, EM_LAYER_ENTRY_NAME);
    if (!sym) {
        const char *e = dlerror();
        em__snprintf(msg, msglen, "layer '%s': %s is not an ember layer (no symbol '%s': %s)",
                     name, path, EM_LAYER_ENTRY_NAME, e ? e : "NULL symbol");
        dlclose(*dl);
        *dl = NULL;
        return EM_ERR_PLUGIN;
    }
    memcpy(entry, &sym, sizeof *entry);
    return EM_OK;
}

/* What the entry returned, checked: ABI, name, table. */
static em_status check_layer(const char *name, const char *path, em_layer *lay, char *msg,
                             size_t msglen)
{
    if (lay->struct_size < sizeof *lay)
        memset((char *)lay + lay->struct_size, 0, sizeof *lay - lay->struct_size);
    if (lay->abi_major != EM_LAYER_ABI_MAJOR) {
        em__snprintf(msg, msglen, "layer '%s': %s was built for layer ABI %u.%u, but this "
                     "libember uses layer ABI %d.%d (major versions must match; rebuild it)",
                     name, path, lay->abi_major, lay->abi_minor, EM_LAYER_ABI_MAJOR,
                     EM_LAYER_ABI_MINOR);
        return EM_ERR_PLUGIN;
    }
    if (lay->struct_size < LAYER_MIN_SIZE) {
        em__snprintf(msg, msglen, "layer '%s': %s returned an em_layer of %zu bytes, fewer than "
                     "the %zu this libember needs", name, path, lay->struct_size,
                     (size_t)LAYER_MIN_SIZE);
        return EM_ERR_PLUGIN;
    }
    if (!lay->name || strcmp(lay->name, name)) {
        em__snprintf(msg, msglen, "layer '%s': %s calls itself '%s' (a layer file must be named "
                     "ember-layer-<its name>.so)", name, path, lay->name ? lay->name : "(null)");
        return EM_ERR_PLUGIN;
    }
    if (!lay->ops || lay->ops->struct_size < offsetof(em_backend_ops, shutdown)) {
        em__snprintf(msg, msglen, "layer '%s': %s returned no ops table (em_layer.ops is NULL "
                     "or its struct_size is 0)", name, path);
        return EM_ERR_PLUGIN;
    }
    return EM_OK;
}

/* Keys of [name] the layer does not accept: false with a message naming file and line. */
static bool layer_keys_known(const em_config *cfg, const char *name, const char *const *accepted,
                             const em_config_kv *kv, const em__cfg_entry *const *where, int n,
                             char *msg, size_t msglen)
{
    for (int i = 0; i < n; i++) {
        bool ok = false;
        for (int k = 0; accepted && accepted[k] && !ok; k++)
            ok = !strcmp(accepted[k], kv[i].key);
        if (ok)
            continue;
        char list[512] = "", w[600], hint[96] = "";
        size_t used = 0;
        for (int k = 0; accepted && accepted[k] && used < sizeof list; k++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "",
                                     accepted[k]);
        em__config_where(cfg, where[i], w, sizeof w);
        const char *near = accepted ? em__suggest(accepted, kv[i].key) : NULL;
        if (near)
            em__snprintf(hint, sizeof hint, "; did you mean '%s'?", near);
        em__snprintf(msg, msglen, "%s: [%s] %s: unknown key (layer '%s' accepts %s%s)%s", w, name,
                     kv[i].key, name, used ? "" : "no keys", list, hint);
        return false;
    }
    return true;
}

em_status em__layer_check_keys(const em_config *cfg, const char *name, const char *path)
{
    void *dl;
    em_layer_entry_fn entry;
    char msg[1024];
    if (open_entry(name, path, &dl, &entry, msg, sizeof msg) != EM_OK)
        return EM_OK;   /* unusable: reported if the layer is used */
    em_layer lay;
    memset(&lay, 0, sizeof lay);
    lay.struct_size = sizeof lay;
    em_status st = EM_OK;
    if (entry(&em__host_describe, NULL, NULL, 0, NULL, &lay) == EM_OK &&
        check_layer(name, path, &lay, msg, sizeof msg) == EM_OK) {
        enum { MAX_KV = 64 };
        em_config_kv kv[MAX_KV];
        const em__cfg_entry *where[MAX_KV];
        int n = em__config_section(cfg, name, kv, MAX_KV, where);
        if (n > MAX_KV)
            st = em__error_global(EM_ERR_CONFIG, "%s: [%s] has %d keys; at most %d are supported",
                                  cfg->source, name, n, MAX_KV);
        else if (!layer_keys_known(cfg, name, lay.config_keys, kv, where, n, msg, sizeof msg))
            st = em__error_global(EM_ERR_CONFIG, "%s", msg);
    }
    dlclose(dl);
    return st;
}

/* ------------------------------------------------------------------ the stack */

static em_status reference(em_host_ctx *hc, const em_backend_ops **ops, void **dev)
{
    em_plugin *p = (em_plugin *)hc;
    *ops = NULL;
    *dev = NULL;
    if (!p || !p->ctx)
        return EM_ERR_INVALID;
    return em__fallback_reference(p->ctx, ops, dev);
}

static void unload(layer *l)
{
    if (l->lay.destroy && l->lay.ctx)
        l->lay.destroy(l->lay.ctx);
    if (l->dl)
        dlclose(l->dl);
    free(l->path);
    memset(l, 0, sizeof *l);
}

/* Load layer `name` over the table `below` into l. */
static em_status load_one(em_context *ctx, const char *name, const em_backend_ops *below, layer *l,
                          char *msg, size_t msglen)
{
    char path[PATH_MAX + 80];
    em_search_origin origin;
    em_status st = em__layer_find(ctx->cfg, &ctx->res, name, path, sizeof path, &origin, msg,
                                  msglen);
    if (st != EM_OK) {
        if (st == EM_ERR_PLUGIN && strstr(msg, "not found: ") && ctx->res.layers_from[0]) {
            char m2[2400];
            em__snprintf(m2, sizeof m2, "%s: %s", ctx->res.layers_from, msg);
            em__snprintf(msg, msglen, "%s", m2);
            st = EM_ERR_CONFIG;   /* a name no file has: a typo, never a reason to fall back */
        }
        return st;
    }
    em__snprintf(l->name, sizeof l->name, "%s", name);
    if (!(l->path = em__strdup(path))) {
        em__snprintf(msg, msglen, "out of memory loading layer '%s'", name);
        return EM_ERR_OOM;
    }
    em_layer_entry_fn entry;
    if ((st = open_entry(name, path, &l->dl, &entry, msg, msglen)) != EM_OK)
        goto fail;
    enum { MAX_KV = 64 };
    em_config_kv kv[MAX_KV];
    const em__cfg_entry *where[MAX_KV];
    int n = em__config_section(ctx->cfg, name, kv, MAX_KV, where);
    if (n > MAX_KV) {
        em__snprintf(msg, msglen, "%s: [%s] has %d keys; at most %d are supported",
                     ctx->cfg->source, name, n, MAX_KV);
        st = EM_ERR_CONFIG;
        goto fail;
    }
    l->next = (em_layer_next){.struct_size = sizeof l->next, .backend = ctx->backend_name,
                              .ops = below, .dev = ctx->dev, .props = &ctx->props,
                              .backend_abi_minor = ctx->plugin->be.abi_minor,
                              .reference = reference};
    memset(&l->lay, 0, sizeof l->lay);
    l->lay.struct_size = sizeof l->lay;
    em_plugin *p = ctx->plugin;
    p->last_msg[0] = 0;
    p->last_status = EM_OK;
    st = entry(&em__host, (em_host_ctx *)p, n ? kv : NULL, (size_t)n, &l->next, &l->lay);
    if (st != EM_OK) {
        em_layer lay = l->lay;
        l->lay.ctx = NULL;   /* no instance was created */
        if (lay.struct_size >= LAYER_MIN_SIZE && lay.config_keys &&
            !layer_keys_known(ctx->cfg, name, lay.config_keys, kv, where, n, msg, msglen)) {
            st = EM_ERR_CONFIG;
        } else {
            char w[600];
            em__snprintf(w, sizeof w, "%s", ctx->cfg ? ctx->cfg->source : "(built-in defaults)");
            if (st == EM_ERR_CONFIG)
                em__snprintf(msg, msglen, "%s: [%s] %s", w, name,
                             p->last_msg[0] ? p->last_msg : "invalid configuration");
            else
                em__snprintf(msg, msglen, "layer '%s': %s failed to initialise: %s (%s)", name,
                             path, p->last_msg[0] ? p->last_msg : "no reason given",
                             em_status_name(st));
            if ((unsigned)st > EM_ERR_INTERNAL)
                st = EM_ERR_PLUGIN;
        }
        p->last_msg[0] = 0;
        goto fail;
    }
    if (l->lay.struct_size < LAYER_MIN_SIZE || l->lay.abi_major != EM_LAYER_ABI_MAJOR) {
        /* the layout of what it returned is unknown: never call into it again */
        check_layer(name, path, &l->lay, msg, msglen);
        l->lay.ctx = NULL;
        st = EM_ERR_PLUGIN;
        goto fail;
    }
    if ((st = check_layer(name, path, &l->lay, msg, msglen)) != EM_OK ||
        (!layer_keys_known(ctx->cfg, name, l->lay.config_keys, kv, where, n, msg, msglen) &&
         (st = EM_ERR_CONFIG))) {
        goto fail;
    }
    /* the effective table: the next one, with the entries the layer wraps */
    l->ops_size = l->lay.ops->struct_size;
    size_t lim = l->ops_size < sizeof l->table ? l->ops_size : sizeof l->table;
    memcpy(&l->table, below, sizeof l->table);
    for (size_t off = 0; off + sizeof(void *) <= lim; off += sizeof(void *)) {
        if (!wrappable(off) || !slot(l->lay.ops, off) || !slot(below, off))
            continue;
        memcpy((char *)&l->table + off, (const char *)l->lay.ops + off, sizeof(void *));
    }
    return EM_OK;

fail:
    unload(l);
    return st;
}

em_status em__layers_open(em_context *ctx, char *msg, size_t msglen)
{
    if (ctx->res.n_layers == 0)
        return EM_OK;
    em__layers *s = em__calloc(1, sizeof *s);
    if (!s) {
        em__snprintf(msg, msglen, "out of memory loading layers");
        return EM_ERR_OOM;
    }
    /* innermost (last listed) first: each wraps the table below it */
    const em_backend_ops *below = &ctx->plugin->ops;
    int n = ctx->res.n_layers;
    for (int i = n - 1; i >= 0; i--) {
        em_status st = load_one(ctx, ctx->res.layers[i], below, &s->l[i], msg, msglen);
        if (st != EM_OK) {
            for (int j = i + 1; j < n; j++)
                unload(&s->l[j]);
            free(s);
            return st;
        }
        below = &s->l[i].table;
    }
    s->n = n;
    ctx->layers = s;
    ctx->ops = &s->l[0].table;
    for (int i = 0; i < n; i++)
        ctx->layer_events |= s->l[i].lay.event != NULL;
    return EM_OK;
}

void em__layers_close(em_context *ctx)
{
    em__layers *s = ctx->layers;
    if (!s)
        return;
    ctx->layer_events = false;
    for (int i = 0; i < s->n; i++)   /* outermost first */
        unload(&s->l[i]);
    free(s);
    ctx->layers = NULL;
    if (ctx->plugin)
        ctx->ops = &ctx->plugin->ops;
}

void em__layers_forget(em_context *ctx, const em_backend_ops *patched)
{
    em__layers *s = ctx->layers;
    if (!s)
        return;
    static const size_t offs[] = {
        offsetof(em_backend_ops, buffer_free), offsetof(em_backend_ops, host_free),
        offsetof(em_backend_ops, stream_destroy), offsetof(em_backend_ops, event_destroy),
        offsetof(em_backend_ops, synchronize)};
    for (int i = 0; i < s->n; i++) {
        for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++)
            memcpy((char *)&s->l[i].table + offs[k], (const char *)patched + offs[k],
                   sizeof(void *));
        s->l[i].lay.destroy = NULL;   /* its state may hold driver objects of the parent */
        if (s->l[i].dl)
            s->l[i].dl = NULL;        /* stays mapped, as the backend does */
    }
}

/* ------------------------------------------------------------------ events */

void em__layer_event(em_context *ctx, em_layer_event *ev)
{
    em__layers *s = ctx->layers;
    for (int i = 0; s && i < s->n; i++)
        if (s->l[i].lay.event)
            s->l[i].lay.event(s->l[i].lay.ctx, ev);
}

void em__layer_op(em_context *ctx, int kind, const char *name, em__tensor *const *in, int n_in,
                  const em__tensor *out, em_status st)
{
    em_layer_event ev;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    ev.kind = kind;
    ev.status = st;
    ev.name = name;
    for (int i = 0; i < n_in && ev.n_in < EM_LAYER_EVENT_MAX_IN; i++) {
        if (!in[i])
            continue;
        ev.in_ndim[ev.n_in] = in[i]->ndim;
        ev.in_shape[ev.n_in] = in[i]->shape;
        ev.in_dtype[ev.n_in] = in[i]->dtype;
        ev.n_in++;
    }
    ev.out_ndim = -1;
    if (out && st == EM_OK) {
        ev.out_ndim = out->ndim;
        ev.out_shape = out->shape;
        ev.out_dtype = out->dtype;
    }
    em__layer_event(ctx, &ev);
}

void em__layer_mark(em_context *ctx, int kind, const char *name, em_status st, uint64_t bytes)
{
    em_layer_event ev;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    ev.kind = kind;
    ev.status = st;
    ev.name = name;
    ev.out_ndim = -1;
    ev.bytes = bytes;
    em__layer_event(ctx, &ev);
}

/* ------------------------------------------------------------------ introspection */

EMBER_API int em_context_layer_count(const em_context *ctx)
{
    return ctx && ctx->layers ? ctx->layers->n : 0;
}

EMBER_API const char *em_context_layer_name(const em_context *ctx, int i)
{
    if (!ctx || !ctx->layers || i < 0 || i >= ctx->layers->n)
        return NULL;
    return ctx->layers->l[i].name;
}

/* The kernels of this core's ABI past a table of ops_size bytes, comma-separated. */
static void bypass_text(size_t ops_size, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int k = 0; k < em__n_kernels && used < n; k++)
        if (em__kernels[k].offset + sizeof(void *) > ops_size)
            used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? ", " : "",
                                     em__kernels[k].name);
}

EMBER_API const char *em_context_layer_bypass(const em_context *ctx, int i, char *buf, size_t n)
{
    if (!buf || n == 0)
        return NULL;
    buf[0] = 0;
    if (!ctx || !ctx->layers || i < 0 || i >= ctx->layers->n)
        return NULL;
    bypass_text(ctx->layers->l[i].ops_size, buf, n);
    return buf;
}

/* For the registry (registry.c): describe the layer file at path into its text fields. */
em_status em__layer_describe(const char *name, const char *path, uint32_t *abi_major,
                             uint32_t *abi_minor, char **version, char **description,
                             char ***keys, char **wraps, char **bypass, char *msg, size_t msglen);
em_status em__layer_describe(const char *name, const char *path, uint32_t *abi_major,
                             uint32_t *abi_minor, char **version, char **description,
                             char ***keys, char **wraps, char **bypass, char *msg, size_t msglen)
{
    void *dl;
    em_layer_entry_fn entry;
    em_status st = open_entry(name, path, &dl, &entry, msg, msglen);
    if (st != EM_OK)
        return st;
    em_layer lay;
    memset(&lay, 0, sizeof lay);
    lay.struct_size = sizeof lay;
    st = entry(&em__host_describe, NULL, NULL, 0, NULL, &lay);
    if (st != EM_OK) {
        em__snprintf(msg, msglen, "layer '%s': %s failed its describe call (%s)", name, path,
                     em_status_name(st));
        dlclose(dl);
        return EM_ERR_PLUGIN;
    }
    if ((st = check_layer(name, path, &lay, msg, msglen)) != EM_OK) {
        dlclose(dl);
        return st;
    }
    *abi_major = lay.abi_major;
    *abi_minor = lay.abi_minor;
    *version = em__strdup(lay.version ? lay.version : "");
    *description = em__strdup(lay.description ? lay.description : "");
    int nk = 0;
    while (lay.config_keys && lay.config_keys[nk])
        nk++;
    *keys = em__calloc((size_t)nk + 1, sizeof **keys);
    for (int i = 0; *keys && i < nk; i++)
        (*keys)[i] = em__strdup(lay.config_keys[i]);
    char w[256], b[2048];
    size_t lim = lay.ops->struct_size < sizeof(em_backend_ops) ? lay.ops->struct_size
                                                                : sizeof(em_backend_ops);
    int nwrap = 0;
    for (size_t off = 0; off + sizeof(void *) <= lim; off += sizeof(void *))
        if (wrappable(off) && slot(lay.ops, off))
            nwrap++;
    int nk_wrapped = 0;
    for (int k = 0; k < em__n_kernels; k++)
        if (em__kernels[k].offset + sizeof(void *) <= lim && slot(lay.ops, em__kernels[k].offset))
            nk_wrapped++;
    em__snprintf(w, sizeof w, "%d entries (%d of the %d kernels)", nwrap, nk_wrapped,
                 em__n_kernels);
    bypass_text(lay.ops->struct_size, b, sizeof b);
    *wraps = em__strdup(w);
    *bypass = em__strdup(b);
    dlclose(dl);
    bool oom = !*version || !*description || !*keys || !*wraps || !*bypass;
    for (int i = 0; *keys && i < nk; i++)
        oom |= !(*keys)[i];
    if (oom) {   /* the caller gets nothing: free what was made */
        for (int i = 0; *keys && i < nk; i++)
            free((*keys)[i]);
        free(*keys);
        free(*version);
        free(*description);
        free(*wraps);
        free(*bypass);
        *keys = NULL;
        *version = *description = *wraps = *bypass = NULL;
        em__snprintf(msg, msglen, "out of memory describing layer '%s'", name);
        return EM_ERR_OOM;
    }
    return EM_OK;
}
