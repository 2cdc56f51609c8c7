/* core/plugin/registry.c — introspection (include/ember/info.h): every directory the loader would
 * search, every plugin file in them, and what happened when each was loaded on its own
 * (devices, kernels, or the stage and message of the failure). ember-info prints this;
 * it is how a user finds out why "cuda" is not what they got. */
#include "config.h"
#include "internal.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct em_registry {
    em_search_dir *dirs;
    int n_dirs;
    em_plugin_info *plugins;
    int n_plugins, cap_plugins;
    const char **kernel_names;   /* shared by every plugin's info */
    bool *kernel_optional;
    em_layer_info *layers;
    int n_layers, cap_layers;
};

/* layers.c */
em_status em__layer_describe(const char *name, const char *path, uint32_t *abi_major,
                             uint32_t *abi_minor, char **version, char **description,
                             char ***keys, char **wraps, char **bypass, char *msg, size_t msglen);

/* Most devices recorded per plugin: ember-info lists them all, a machine rarely has more. */
#define MAX_DEVICES 256

EMBER_API const char *em_load_stage_name(em_load_stage st)
{
    switch (st) {
    case EM_STAGE_FIND: return "find";
    case EM_STAGE_OPEN: return "open";
    case EM_STAGE_SYMBOL: return "symbol";
    case EM_STAGE_ABI: return "abi";
    case EM_STAGE_INIT: return "init";
    case EM_STAGE_DEVICES: return "devices";
    case EM_STAGE_READY: return "ready";
    }
    return "unknown";
}

static void free_keys(char **k)
{
    for (int i = 0; k && k[i]; i++)
        free(k[i]);
    free(k);
}

/* A NULL-terminated copy (of static strings a plugin's unload would take away). */
static bool dup_keys(const char *const *keys, const char *const **out)
{
    int n = 0;
    while (keys && keys[n])
        n++;
    char **k = em__calloc((size_t)n + 1, sizeof *k);
    if (!k)
        return false;
    for (int i = 0; i < n; i++) {
        if (!(k[i] = em__strdup(keys[i]))) {
            free_keys(k);
            return false;
        }
    }
    *out = (const char *const *)k;
    return true;
}

static void info_free(em_plugin_info *pi)
{
    free((char *)pi->name);
    free((char *)pi->path);
    free((char *)pi->shadowed_by);
    free((char *)pi->message);
    free((char *)pi->version);
    free((char *)pi->description);
    free((em_device_props *)pi->devices);
    free((bool *)pi->kernel_present);
    free((em_dtype_mask *)pi->kernel_dtypes);
    free_keys((char **)pi->config_keys);
    free_keys((char **)pi->described_keys);
    free((char *)pi->describe_problem);
}

EMBER_API void em_registry_free(em_registry *reg)
{
    if (!reg)
        return;
    for (int i = 0; i < reg->n_dirs; i++)
        free((char *)reg->dirs[i].path);
    free(reg->dirs);
    for (int i = 0; i < reg->n_plugins; i++)
        info_free(&reg->plugins[i]);
    free(reg->plugins);
    free(reg->kernel_names);
    free(reg->kernel_optional);
    for (int i = 0; i < reg->n_layers; i++) {
        em_layer_info *li = &reg->layers[i];
        free((char *)li->name);
        free((char *)li->path);
        free((char *)li->shadowed_by);
        free((char *)li->message);
        free((char *)li->version);
        free((char *)li->description);
        free_keys((char **)li->config_keys);
        free((char *)li->wraps);
        free((char *)li->bypass);
    }
    free(reg->layers);
    free(reg);
}

EMBER_API int em_registry_layer_count(const em_registry *reg)
{
    return reg ? reg->n_layers : 0;
}

EMBER_API const em_layer_info *em_registry_layer(const em_registry *reg, int i)
{
    return reg && i >= 0 && i < reg->n_layers ? &reg->layers[i] : NULL;
}

static int cmp_str(const void *a, const void *b);

/* Every ember-layer-<name>.so of directory d, described (sorted by name). */
static em_status scan_layers(em_registry *reg, const em_search_dir *d)
{
    DIR *dir = opendir(d->path);
    if (!dir)
        return EM_OK;
    static const char pre[] = "ember-layer-", suf[] = ".so";
    const size_t lp = sizeof pre - 1, ls = sizeof suf - 1;
    char **names = NULL;
    int n = 0, cap = 0;
    em_status st = EM_OK;
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        char nm[64];
        if (len <= lp + ls || len - lp - ls >= sizeof nm || strncmp(de->d_name, pre, lp) ||
            strcmp(de->d_name + len - ls, suf))
            continue;
        memcpy(nm, de->d_name + lp, len - lp - ls);
        nm[len - lp - ls] = 0;
        if (!em__valid_backend_name(nm))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = em__realloc(names, sizeof *nn * (size_t)cap);
            if (!nn) {
                st = EM_ERR_OOM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = em__strdup(nm))) {
            st = EM_ERR_OOM;
            break;
        }
        n++;
    }
    closedir(dir);
    if (n > 1)
        qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n && st == EM_OK; i++) {
        if (reg->n_layers == reg->cap_layers) {
            int c = reg->cap_layers ? reg->cap_layers * 2 : 4;
            em_layer_info *nl = em__realloc(reg->layers, sizeof *nl * (size_t)c);
            if (!nl) {
                st = EM_ERR_OOM;
                break;
            }
            reg->layers = nl;
            reg->cap_layers = c;
        }
        em_layer_info *li = &reg->layers[reg->n_layers++];
        memset(li, 0, sizeof *li);
        li->struct_size = sizeof *li;
        li->origin = d->origin;
        char path[PATH_MAX + 80], msg[1024] = "";
        em__snprintf(path, sizeof path, "%s/ember-layer-%s.so", d->path, names[i]);
        li->name = em__strdup(names[i]);
        li->path = em__strdup(path);
        if (!li->name || !li->path) {
            st = EM_ERR_OOM;
            break;
        }
        for (int j = 0; j < reg->n_layers - 1 && !li->shadowed_by; j++)
            if (!strcmp(reg->layers[j].name, names[i]) && !reg->layers[j].shadowed_by &&
                !(li->shadowed_by = em__strdup(reg->layers[j].path)))
                st = EM_ERR_OOM;
        char why[PATH_MAX + 200];
        if (li->shadowed_by) {
            em__snprintf(msg, sizeof msg, "not loaded: a layer of the same name comes earlier in "
                         "the search path");
        } else if (em__plugin_file_check(path, why, sizeof why) != EM__FILE_OK) {
            li->status = EM_ERR_PLUGIN;
            em__snprintf(msg, sizeof msg, "%s", why);
        } else {
            char *ver = NULL, *desc = NULL, **keys = NULL, *wraps = NULL, *bypass = NULL;
            li->status = em__layer_describe(names[i], path, &li->abi_major, &li->abi_minor, &ver,
                                            &desc, &keys, &wraps, &bypass, msg, sizeof msg);
            li->version = ver;
            li->description = desc;
            li->config_keys = (const char *const *)keys;
            li->wraps = wraps;
            li->bypass = bypass;
            if (li->status == EM_ERR_OOM)
                st = EM_ERR_OOM;
        }
        if (!(li->message = em__strdup(msg)))
            st = EM_ERR_OOM;
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (st == EM_ERR_OOM)
        em__error_global(EM_ERR_OOM, "out of memory scanning layers");
    return st;
}

EMBER_API int em_registry_dir_count(const em_registry *reg)
{
    return reg ? reg->n_dirs : 0;
}

EMBER_API const em_search_dir *em_registry_dir(const em_registry *reg, int i)
{
    return reg && i >= 0 && i < reg->n_dirs ? &reg->dirs[i] : NULL;
}

EMBER_API int em_registry_plugin_count(const em_registry *reg)
{
    return reg ? reg->n_plugins : 0;
}

EMBER_API const em_plugin_info *em_registry_plugin(const em_registry *reg, int i)
{
    return reg && i >= 0 && i < reg->n_plugins ? &reg->plugins[i] : NULL;
}

static const em_plugin_info *find_plugin(const em_registry *reg, const char *name)
{
    for (int i = 0; i < reg->n_plugins; i++)
        if (!strcmp(reg->plugins[i].name, name) && !reg->plugins[i].shadowed_by)
            return &reg->plugins[i];
    return NULL;
}

/* A new, zeroed info with name and path; NULL when out of memory. */
static em_plugin_info *new_info(em_registry *reg, const char *name, const char *path,
                                em_search_origin origin)
{
    if (reg->n_plugins == reg->cap_plugins) {
        int cap = reg->cap_plugins ? reg->cap_plugins * 2 : 8;
        em_plugin_info *pl = em__realloc(reg->plugins, sizeof *pl * (size_t)cap);
        if (!pl)
            return NULL;
        reg->plugins = pl;
        reg->cap_plugins = cap;
    }
    em_plugin_info *pi = &reg->plugins[reg->n_plugins];
    memset(pi, 0, sizeof *pi);
    pi->struct_size = sizeof *pi;
    pi->origin = origin;
    pi->kernel_count = em__n_kernels;
    pi->kernel_names = reg->kernel_names;
    pi->kernel_optional = reg->kernel_optional;
    pi->name = em__strdup(name);
    pi->path = em__strdup(path ? path : "");
    pi->kernel_present = em__calloc((size_t)em__n_kernels, sizeof(bool));
    pi->kernel_dtypes = em__calloc((size_t)em__n_kernels, sizeof(em_dtype_mask));
    pi->describe_problem = em__strdup("");
    if (!pi->name || !pi->path || !pi->kernel_present || !pi->kernel_dtypes ||
        !pi->describe_problem) {
        info_free(pi);
        return NULL;
    }
    reg->n_plugins++;
    return pi;
}

static char *dup_or_empty(const char *s)
{
    return em__strdup(s ? s : "");
}

/* Load one plugin file in an instance of its own and record what happened. */
static em_status probe(em_registry *reg, const em_config *cfg, const em__resolved *r,
                       const char *name, const char *path, em_search_origin origin)
{
    em_plugin_info *pi = new_info(reg, name, path, origin);
    if (!pi)
        return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
    const em_plugin_info *first = NULL;
    for (int i = 0; i < reg->n_plugins - 1 && !first; i++)
        if (!strcmp(reg->plugins[i].name, name) && !reg->plugins[i].shadowed_by)
            first = &reg->plugins[i];
    if (first) {
        /* Not loaded: the loader would never reach it, and it may be a stale copy. */
        pi->shadowed_by = em__strdup(first->path);
        pi->message = em__strdup("not loaded: a plugin of the same name comes earlier in the "
                                 "search path");
        pi->stage = EM_STAGE_FIND;
        pi->status = EM_OK;
        if (!pi->shadowed_by || !pi->message)
            return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
        return EM_OK;
    }
    em_plugin *p = NULL;
    em_load_stage stage;
    char msg[1024];
    em_status st = em__plugin_load_path(cfg, r, name, path, origin, &p, &stage, msg, sizeof msg);
    if (st == EM_ERR_OOM)   /* a report with holes would mislead: fail the scan */
        return em__error_global(EM_ERR_OOM, "out of memory scanning plugins (%s)", msg);
    if (st == EM_OK) {
        pi->abi_major = p->be.abi_major;
        pi->abi_minor = p->be.abi_minor;
        pi->version = dup_or_empty(p->be.version);
        pi->description = dup_or_empty(p->be.description);
        bool *present = (bool *)pi->kernel_present;
        for (int k = 0; k < em__n_kernels; k++)
            present[k] = em__kernel_at(&p->ops, em__kernels[k].offset) != NULL;
        em__plugin_masks(p, (em_dtype_mask *)pi->kernel_dtypes);
        pi->features = (p->async & EM__ASYNC_PINNED ? EM_PLUGIN_PINNED_MEMORY : 0) |
                       (p->async & EM__ASYNC_COPIES ? EM_PLUGIN_ASYNC_COPIES : 0) |
                       (p->async & EM__ASYNC_STREAMS ? EM_PLUGIN_STREAMS : 0);
        if (!dup_keys(p->be.config_keys, &pi->config_keys)) {
            em__plugin_unload(p);
            return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
        }
        int count = 0;
        stage = EM_STAGE_DEVICES;
        st = em__plugin_devices(p, &count, msg, sizeof msg);
        if (st == EM_ERR_OOM) {
            em__plugin_unload(p);
            return em__error_global(EM_ERR_OOM, "out of memory scanning plugins (%s)", msg);
        }
        if (st == EM_OK) {
            if (count > MAX_DEVICES)
                count = MAX_DEVICES;
            em_device_props *dv = em__calloc((size_t)count, sizeof *dv);
            if (!dv) {
                em__plugin_unload(p);
                return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
            }
            for (int d = 0; d < count; d++) {
                dv[d].struct_size = sizeof dv[d];
                p->last_msg[0] = 0;
                if (p->ops.device_props(p->be.ctx, d, &dv[d]) != EM_OK) {
                    memset(&dv[d], 0, sizeof dv[d]);
                    dv[d].struct_size = sizeof dv[d];
                    em__snprintf(dv[d].name, sizeof dv[d].name, "(properties unavailable: %s)",
                                 p->last_msg[0] ? p->last_msg : "device_props failed");
                }
                dv[d].name[sizeof dv[d].name - 1] = 0;
                dv[d].vendor[sizeof dv[d].vendor - 1] = 0;
                dv[d].driver[sizeof dv[d].driver - 1] = 0;
                dv[d].extra[sizeof dv[d].extra - 1] = 0;
            }
            pi->devices = dv;
            pi->device_count = count;
            stage = EM_STAGE_READY;
            msg[0] = 0;
        }
        em__plugin_unload(p);
        if (!pi->version || !pi->description)
            return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
    }
    pi->stage = stage;
    pi->status = st;
    pi->message = em__strdup(msg);
    if (!pi->message)
        return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
    /* the describe call, which the core uses to check device.ini without an instance */
    if (stage >= EM_STAGE_SYMBOL) {
        const em__description *d = em__plugin_describe(name, path);
        if (!d)
            return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
        free((char *)pi->describe_problem);
        pi->describe_problem = em__strdup(d->problem);
        pi->described_by_init = d->by_init;
        if (!pi->describe_problem ||
            (d->keys && !dup_keys((const char *const *)d->keys, &pi->described_keys)))
            return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
    }
    return EM_OK;
}

/* "ember-backend-<name>.so" -> name, or false for anything else (never opened). */
static bool plugin_file_name(const char *file, char *name, size_t n)
{
    static const char pre[] = "ember-backend-", suf[] = ".so";
    size_t l = strlen(file), lp = sizeof pre - 1, ls = sizeof suf - 1;
    if (l <= lp + ls || strncmp(file, pre, lp) || strcmp(file + l - ls, suf) || l - lp - ls >= n)
        return false;
    memcpy(name, file + lp, l - lp - ls);
    name[l - lp - ls] = 0;
    return em__valid_backend_name(name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every plugin file of one directory, sorted so that the report is stable. */
static em_status scan_dir(em_registry *reg, const em_config *cfg, const em__resolved *r,
                          const em_search_dir *d)
{
    DIR *dir = opendir(d->path);
    if (!dir)
        return EM_OK;   /* vanished or unreadable: listed with exists, nothing to load */
    char **names = NULL;
    int n = 0, cap = 0;
    em_status st = EM_OK;
    struct dirent *de;
    char nm[64];
    while ((de = readdir(dir))) {
        if (!plugin_file_name(de->d_name, nm, sizeof nm))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = em__realloc(names, sizeof *nn * (size_t)cap);
            if (!nn) {
                st = EM_ERR_OOM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = em__strdup(de->d_name))) {
            st = EM_ERR_OOM;
            break;
        }
        n++;
    }
    closedir(dir);
    if (n > 1)
        qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n && st == EM_OK; i++) {
        char path[PATH_MAX + 80];
        em__snprintf(path, sizeof path, "%s/%s", d->path, names[i]);
        plugin_file_name(names[i], nm, sizeof nm);
        char why[PATH_MAX + 200];
        int fc = em__plugin_file_check(path, why, sizeof why);
        if (fc == EM__FILE_ABSENT)
            continue;   /* vanished, or a dangling symlink */
        if (fc == EM__FILE_UNUSABLE) {
            /* listed with the reason (a directory, a FIFO, a symlink loop, unreadable,
             * unsafe), never opened */
            em_plugin_info *pi = new_info(reg, nm, path, d->origin);
            if (!pi || !(pi->message = em__strdup(why))) {
                st = EM_ERR_OOM;
                break;
            }
            pi->stage = EM_STAGE_OPEN;
            pi->status = EM_ERR_PLUGIN;
            continue;
        }
        st = probe(reg, cfg, r, nm, path, d->origin);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (st == EM_ERR_OOM)
        em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
    return st;
}

static em_status add_dir(em_registry *reg, const char *path, em_search_origin origin, bool exists)
{
    em_search_dir *d = em__realloc(reg->dirs, sizeof *d * (size_t)(reg->n_dirs + 1));
    if (!d)
        return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
    reg->dirs = d;
    char *p = em__strdup(path);
    if (!p)
        return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
    reg->dirs[reg->n_dirs].path = p;
    reg->dirs[reg->n_dirs].origin = origin;
    reg->dirs[reg->n_dirs].exists = exists;
    reg->n_dirs++;
    return EM_OK;
}

static bool is_backend_section(const char *sec)
{
    return strcmp(sec, "device") && strcmp(sec, "backends") && strcmp(sec, "distributed");
}

static em_status scan(em_registry *reg, const em_config *cfg, const em__resolved *r)
{
    em_status st = EM_OK;
    /* library= files first: they win over any directory for their backend */
    for (int i = 0; cfg && i < cfg->n && st == EM_OK; i++) {
        const em__cfg_entry *e = &cfg->entries[i];
        if (strcmp(e->key, "library") || !is_backend_section(e->section))
            continue;
        char why[PATH_MAX + 200];
        bool ok = em__plugin_file_check(e->value, why, sizeof why) == EM__FILE_OK;
        st = add_dir(reg, e->value, EM_SEARCH_LIBRARY_KEY, ok);
        if (st != EM_OK)
            break;
        if (!ok) {
            /* the loader's own message, naming file, line and what is wrong */
            em_plugin *p;
            em_load_stage stage;
            char msg[1024];
            em_status ls = em__plugin_load(cfg, r, e->section, &p, &stage, msg, sizeof msg);
            if (ls == EM_OK) {   /* cannot happen: the file is not there */
                em__plugin_unload(p);
                continue;
            }
            if (ls == EM_ERR_OOM)
                return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
            em_plugin_info *pi = new_info(reg, e->section, e->value, EM_SEARCH_LIBRARY_KEY);
            if (!pi || !(pi->message = em__strdup(msg)))
                return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
            pi->stage = stage;
            pi->status = ls;
            continue;
        }
        st = probe(reg, cfg, r, e->section, e->value, EM_SEARCH_LIBRARY_KEY);
    }
    em__search_path sp;
    em__search_path_build(cfg, r, NULL, &sp);
    if (sp.oom && st == EM_OK)
        st = em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
    for (int i = 0; i < sp.n && st == EM_OK; i++)
        st = add_dir(reg, sp.dirs[i].path, sp.dirs[i].origin, sp.dirs[i].exists);
    for (int i = 0; i < sp.n && st == EM_OK; i++)
        if (sp.dirs[i].exists)
            st = scan_dir(reg, cfg, r, &sp.dirs[i]);
    for (int i = 0; i < sp.n && st == EM_OK; i++)
        if (sp.dirs[i].exists)
            st = scan_layers(reg, &sp.dirs[i]);
    em__search_path_free(&sp);
    /* The configured backend and fallback, when no file was found: a "find" failure. */
    const char *wanted[2] = {r->backend, r->fallback};
    for (int i = 0; i < 2 && st == EM_OK; i++) {
        if (!wanted[i][0] || find_plugin(reg, wanted[i]))
            continue;
        em_plugin *p;
        em_load_stage stage;
        char msg[1024];
        em_status ls = em__plugin_load(cfg, r, wanted[i], &p, &stage, msg, sizeof msg);
        if (ls == EM_OK) {
            em__plugin_unload(p);
            continue;
        }
        if (ls == EM_ERR_OOM)
            return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
        em_plugin_info *pi = new_info(reg, wanted[i], "", EM_SEARCH_INSTALL_DIR);
        if (!pi || !(pi->message = em__strdup(msg)))
            return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
        pi->stage = stage;
        pi->status = ls;
    }
    return st;
}

EMBER_API em_status em_registry_scan(const em_config *cfg, em_registry **out)
{
    if (!out)
        return em__error_global(EM_ERR_INVALID, "em_registry_scan: out is NULL");
    *out = NULL;
    em_config *owned = NULL;
    if (!cfg) {
        em_status st = em__config_load_for_context(NULL, &owned);
        if (st != EM_OK)
            return st;
        cfg = owned;
    }
    /* EMBER_DEVICE is not applied: it changes which backend a context picks, not which
     * plugins exist, and a bad value must not hide the inventory. */
    em__resolved r;
    em_status st = em__config_resolve(cfg, &r, false);
    if (st != EM_OK) {
        em_config_free(owned);
        return st;
    }
    em_registry *reg = em__calloc(1, sizeof *reg);
    if (reg) {
        reg->kernel_names = em__calloc((size_t)em__n_kernels, sizeof *reg->kernel_names);
        reg->kernel_optional = em__calloc((size_t)em__n_kernels, sizeof *reg->kernel_optional);
    }
    if (!reg || !reg->kernel_names || !reg->kernel_optional) {
        em_registry_free(reg);
        em__resolved_free(&r);
        em_config_free(owned);
        return em__error_global(EM_ERR_OOM, "out of memory scanning plugins");
    }
    for (int k = 0; k < em__n_kernels; k++) {
        reg->kernel_names[k] = em__kernels[k].name;
        reg->kernel_optional[k] = em__kernels[k].optional;
    }
    st = scan(reg, cfg, &r);
    em__resolved_free(&r);
    em_config_free(owned);
    if (st != EM_OK) {
        em_registry_free(reg);
        return st;
    }
    *out = reg;
    return EM_OK;
}
