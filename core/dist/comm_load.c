/* core/dist/comm_load.c — finds, opens and checks communication plugins
 * (ember-comm-<name>.so, <ember/comm.h>) on the device plugins' search path, with the same
 * stages and messages as the device loader (find / open / symbol / ABI / init), and lists
 * them for ember-info by their describe call (which never joins a process group). */
#include "config.h"
#include "dist_impl.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ember/info.h>

/* ------------------------------------------------------------------ host services */

static em_status host_error(em_comm_host_ctx *hc, em_status st, const char *fmt, ...)
{
    em__comm *c = (em__comm *)hc;
    if (!c || !fmt)
        return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_msg, sizeof c->last_msg, fmt, ap);
    va_end(ap);
    c->last_status = st;
    return st;
}

static void host_log(em_comm_host_ctx *hc, em_log_level lvl, const char *fmt, ...)
{
    em__comm *c = (em__comm *)hc;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    em__log_at(EM_LOG_WARN, lvl, "%s: %s", c ? c->name : "comm plugin", msg);
}

static const em_comm_host host_instance = {
    .struct_size = sizeof(em_comm_host), .abi_major = EM_COMM_ABI_MAJOR,
    .abi_minor = EM_COMM_ABI_MINOR, .error = host_error, .log = host_log, .flags = 0};
static const em_comm_host host_describe = {
    .struct_size = sizeof(em_comm_host), .abi_major = EM_COMM_ABI_MAJOR,
    .abi_minor = EM_COMM_ABI_MINOR, .error = host_error, .log = host_log,
    .flags = EM_COMM_HOST_DESCRIBE};

/* ------------------------------------------------------------------ finding */

bool em__comm_file_name(const char *file, char *name, size_t n)
{
    static const char pre[] = "ember-comm-", suf[] = ".so";
    size_t l = strlen(file), lp = sizeof pre - 1, ls = sizeof suf - 1;
    if (l <= lp + ls || strncmp(file, pre, lp) || strcmp(file + l - ls, suf) || l - lp - ls >= n)
        return false;
    memcpy(name, file + lp, l - lp - ls);
    name[l - lp - ls] = 0;
    return em__valid_backend_name(name);
}

em_status em__comm_find(const em_config *cfg, const em__resolved *r, const char *name,
                        const char *lib, char *path, size_t pathlen, char *msg, size_t msglen)
{
    char why[PATH_MAX + 200];
    if (lib) {
        int fc = em__plugin_file_check(lib, why, sizeof why);
        if (fc == EM__FILE_OK) {
            em__snprintf(path, pathlen, "%s", lib);
            return EM_OK;
        }
        em__snprintf(msg, msglen, "communication plugin '%s': [distributed] library = %s: %s",
                     name, lib, fc == EM__FILE_ABSENT ? "no such file" : why);
        return EM_ERR_PLUGIN;
    }
    em__search_path sp;
    em__search_path_build(cfg, r, NULL, &sp);
    if (sp.oom) {
        em__search_path_free(&sp);
        em__snprintf(msg, msglen, "out of memory building the plugin search path");
        return EM_ERR_OOM;
    }
    char dirs[2048] = "";
    size_t used = 0;
    em_status st = EM_ERR_PLUGIN;
    for (int i = 0; i < sp.n; i++) {
        char cand[PATH_MAX + 80];
        em__snprintf(cand, sizeof cand, "%s/ember-comm-%s.so", sp.dirs[i].path, name);
        int fc = em__plugin_file_check(cand, why, sizeof why);
        if (fc == EM__FILE_OK) {
            em__snprintf(path, pathlen, "%s", cand);
            st = EM_OK;
            break;
        }
        if (fc == EM__FILE_UNUSABLE) {
            em__snprintf(msg, msglen, "communication plugin '%s': %s", name, why);
            em__search_path_free(&sp);
            return EM_ERR_PLUGIN;
        }
        if (used < sizeof dirs)
            used += (size_t)snprintf(dirs + used, sizeof dirs - used, "%s%s (%s)", i ? ", " : "",
                                     sp.dirs[i].path, em__origin_text(sp.dirs[i].origin));
    }
    em__search_path_free(&sp);
    if (st != EM_OK)
        em__snprintf(msg, msglen, "communication plugin '%s' not found: no ember-comm-%s.so in "
                     "%s (build ember where Open MPI is installed: Debian's libopenmpi-dev; or "
                     "set [distributed] library)", name, name, used ? dirs : "(no directories)");
    return st;
}

/* ------------------------------------------------------------------ loading */

void em__comm_close(em__comm *c, bool shutdown)
{
    if (!c)
        return;
    if (shutdown && c->ops.shutdown)
        c->ops.shutdown(c->be.ctx);
    /* MPI libraries are not made to be unloaded and loaded again: keep an instance mapped */
    if (c->dl && !shutdown && !c->be.ctx)
        dlclose(c->dl);
    free(c->path);
    free(c);
}

#define COMM_MIN_SIZE (offsetof(em_comm, description) + sizeof(void *))

em_status em__comm_open(const char *name, const char *path, const em_comm_init *init,
                        em__comm **out, em_load_stage *stage, char *msg, size_t msglen)
{
    *out = NULL;
    *stage = EM_STAGE_OPEN;
    em__comm *c = em__calloc(1, sizeof *c);
    char *pc = em__strdup(path);
    if (!c || !pc) {
        free(c);
        free(pc);
        em__snprintf(msg, msglen, "out of memory loading %s", path);
        return EM_ERR_OOM;
    }
    c->path = pc;
    em__snprintf(c->name, sizeof c->name, "%s", name);
    em_status st = EM_ERR_PLUGIN;
    char why[256];
    if (!em__elf_intact(path, why, sizeof why)) {
        em__snprintf(msg, msglen, "communication plugin '%s' cannot be loaded from %s (%s)", name,
                     path, why);
        goto fail;
    }
    dlerror();
    c->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!c->dl) {
        const char *e = dlerror();
        em__snprintf(msg, msglen, "communication plugin '%s' cannot be loaded from %s (dlopen "
                     "failed: %s)", name, path, e ? e : "unknown error");
        goto fail;
    }
    *stage = EM_STAGE_SYMBOL;
    dlerror();
    void *sym = dlsym(c->dl, EM_COMM_ENTRY_NAME);
    if (!sym) {
        const char *e = dlerror();
        em__snprintf(msg, msglen, "communication plugin '%s': %s is not an ember communication "
                     "plugin (no symbol '%s': %s)", name, path, EM_COMM_ENTRY_NAME,
                     e ? e : "NULL symbol");
        goto fail;
    }
    em_comm_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    *stage = EM_STAGE_INIT;
    em_comm be;
    memset(&be, 0, sizeof be);
    be.struct_size = sizeof be;
    st = entry(init ? &host_instance : &host_describe, (em_comm_host_ctx *)c, init, &be);
    if (be.struct_size < sizeof be)
        memset((char *)&be + be.struct_size, 0, sizeof be - be.struct_size);
    if (be.abi_major != EM_COMM_ABI_MAJOR) {
        *stage = EM_STAGE_ABI;
        em__snprintf(msg, msglen, "communication plugin '%s': %s was built for comm ABI %u.%u, "
                     "but this libember uses %d.%d (rebuild it against this ember's "
                     "<ember/comm.h>)%s%s", name, path, be.abi_major, be.abi_minor,
                     EM_COMM_ABI_MAJOR, EM_COMM_ABI_MINOR, c->last_msg[0] ? ": " : "",
                     c->last_msg);
        st = EM_ERR_PLUGIN;
        goto fail;
    }
    if (st != EM_OK) {
        em__snprintf(msg, msglen, "communication plugin '%s' (%s) failed to initialise: %s (%s)",
                     name, path, c->last_msg[0] ? c->last_msg : "no reason given",
                     em_status_name(st));
        if (st == EM_OK || (unsigned)st > EM_ERR_INTERNAL)
            st = EM_ERR_PLUGIN;
        goto fail;
    }
    *stage = EM_STAGE_ABI;
    st = EM_ERR_PLUGIN;
    if (be.struct_size < COMM_MIN_SIZE || !be.name || strcmp(be.name, name)) {
        em__snprintf(msg, msglen, "communication plugin '%s': %s calls itself '%s' (a plugin's "
                     "name must match its file name ember-comm-<name>.so)", name, path,
                     be.struct_size >= COMM_MIN_SIZE && be.name ? be.name : "(nothing)");
        goto refuse;
    }
    if (init) {
        static const char *const need[] = {"all_reduce", "broadcast", "all_gather",
                                           "reduce_scatter", "barrier"};
        if (!be.ops || be.ops->struct_size < offsetof(em_comm_ops, barrier) + sizeof(void *)) {
            em__snprintf(msg, msglen, "communication plugin '%s': %s returned %s", name, path,
                         be.ops ? "an ops table too short for this libember" : "no ops table");
            goto refuse;
        }
        memcpy(&c->ops, be.ops,
               be.ops->struct_size < sizeof c->ops ? be.ops->struct_size : sizeof c->ops);
        const void *fns[] = {(void *)(uintptr_t)c->ops.all_reduce,
                             (void *)(uintptr_t)c->ops.broadcast,
                             (void *)(uintptr_t)c->ops.all_gather,
                             (void *)(uintptr_t)c->ops.reduce_scatter,
                             (void *)(uintptr_t)c->ops.barrier};
        for (int i = 0; i < 5; i++)
            if (!fns[i]) {
                em__snprintf(msg, msglen, "communication plugin '%s': %s lacks the entry '%s'",
                             name, path, need[i]);
                goto refuse;
            }
        if (be.world_size < 1 || be.rank < 0 || be.rank >= be.world_size) {
            em__snprintf(msg, msglen, "communication plugin '%s': %s reports rank %d of %d",
                         name, path, be.rank, be.world_size);
            goto refuse;
        }
    }
    c->be = be;
    *stage = EM_STAGE_READY;
    *out = c;
    return EM_OK;
refuse:
    /* an instance exists: leave the group so the process can still exit cleanly */
    if (init && be.struct_size >= sizeof be && be.ops && be.ops->shutdown)
        be.ops->shutdown(be.ctx);
    c->be.ctx = init ? be.ctx : NULL;
fail:
    if (c->dl && !(init && c->be.ctx))
        dlclose(c->dl);
    free(c->path);
    free(c);
    return st;
}

/* ------------------------------------------------------------------ listing (ember-info) */

struct em_comm_list {
    em_comm_plugin_info *items;
    int n;
};

static em_status list_add(em_comm_list *l, const char *name, const char *path,
                          em_search_origin origin)
{
    em_comm_plugin_info *it = em__realloc(l->items, sizeof *it * (size_t)(l->n + 1));
    if (!it)
        return EM_ERR_OOM;
    l->items = it;
    em_comm_plugin_info *pi = &it[l->n];
    memset(pi, 0, sizeof *pi);
    pi->struct_size = sizeof *pi;
    pi->origin = origin;
    pi->name = em__strdup(name);
    pi->path = em__strdup(path);
    l->n++;
    if (!pi->name || !pi->path)
        return EM_ERR_OOM;
    for (int i = 0; i < l->n - 1; i++)
        if (!strcmp(l->items[i].name, name) && !l->items[i].shadowed_by) {
            pi->shadowed_by = em__strdup(l->items[i].path);
            pi->message = em__strdup("not loaded: a plugin of the same name comes earlier in "
                                     "the search path");
            pi->stage = EM_STAGE_FIND;
            return pi->shadowed_by && pi->message ? EM_OK : EM_ERR_OOM;
        }
    char why[PATH_MAX + 200], msg[1024] = "";
    em__comm *c = NULL;
    em_load_stage stage = EM_STAGE_OPEN;
    em_status st = EM_ERR_PLUGIN;
    if (em__plugin_file_check(path, why, sizeof why) != EM__FILE_OK)
        em__snprintf(msg, sizeof msg, "%s", why);
    else
        st = em__comm_open(name, path, NULL, &c, &stage, msg, sizeof msg);
    if (st == EM_ERR_OOM)
        return st;
    pi->stage = stage;
    pi->status = st;
    if (c) {
        pi->abi_major = c->be.abi_major;
        pi->abi_minor = c->be.abi_minor;
        pi->version = em__strdup(c->be.version ? c->be.version : "");
        pi->description = em__strdup(c->be.description ? c->be.description : "");
        pi->device_backend = em__strdup(c->be.device_backend ? c->be.device_backend : "");
        em__comm_close(c, false);
        if (!pi->version || !pi->description || !pi->device_backend)
            return EM_ERR_OOM;
    }
    pi->message = em__strdup(msg);
    return pi->message ? EM_OK : EM_ERR_OOM;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static em_status scan_dir(em_comm_list *l, const em_search_dir *d)
{
    DIR *dir = opendir(d->path);
    if (!dir)
        return EM_OK;
    char *names[256];
    int n = 0;
    struct dirent *de;
    char nm[64];
    em_status st = EM_OK;
    while ((de = readdir(dir)) && n < 256)
        if (em__comm_file_name(de->d_name, nm, sizeof nm) && !(names[n++] = em__strdup(de->d_name)))
            st = EM_ERR_OOM, n--;
    closedir(dir);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX + 80];
        em__snprintf(path, sizeof path, "%s/%s", d->path, names[i]);
        em__comm_file_name(names[i], nm, sizeof nm);
        if (st == EM_OK)
            st = list_add(l, nm, path, d->origin);
        free(names[i]);
    }
    return st;
}

EMBER_API void em_comm_list_free(em_comm_list *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++) {
        em_comm_plugin_info *pi = &l->items[i];
        free((char *)pi->name);
        free((char *)pi->path);
        free((char *)pi->shadowed_by);
        free((char *)pi->message);
        free((char *)pi->version);
        free((char *)pi->description);
        free((char *)pi->device_backend);
    }
    free(l->items);
    free(l);
}

EMBER_API em_status em_comm_list_scan(const em_config *cfg, em_comm_list **out)
{
    if (!out)
        return em__error_global(EM_ERR_INVALID, "em_comm_list_scan: out is NULL");
    *out = NULL;
    em_config *owned = NULL;
    if (!cfg) {
        em_status st = em__config_load_for_context(NULL, &owned);
        if (st != EM_OK)
            return st;
        cfg = owned;
    }
    em__resolved r;
    em_status st = em__config_resolve(cfg, &r, false);
    if (st != EM_OK) {
        em_config_free(owned);
        return st;
    }
    em_comm_list *l = em__calloc(1, sizeof *l);
    em__search_path sp;
    em__search_path_build(cfg, &r, NULL, &sp);
    st = l && !sp.oom ? EM_OK : EM_ERR_OOM;
    const char *lib = em_config_get(cfg, "distributed", "library");
    if (st == EM_OK && lib && *lib) {
        char nm[64];
        const char *base = strrchr(lib, '/');
        if (!em__comm_file_name(base ? base + 1 : lib, nm, sizeof nm))
            em__snprintf(nm, sizeof nm, "%s", "(library=)");
        st = list_add(l, nm, lib, EM_SEARCH_LIBRARY_KEY);
    }
    for (int i = 0; i < sp.n && st == EM_OK; i++)
        if (sp.dirs[i].exists)
            st = scan_dir(l, &sp.dirs[i]);
    em__search_path_free(&sp);
    em__resolved_free(&r);
    em_config_free(owned);
    if (st != EM_OK) {
        em_comm_list_free(l);
        return em__error_global(EM_ERR_OOM, "out of memory listing communication plugins");
    }
    *out = l;
    return EM_OK;
}

EMBER_API int em_comm_list_count(const em_comm_list *l)
{
    return l ? l->n : 0;
}

EMBER_API const em_comm_plugin_info *em_comm_list_get(const em_comm_list *l, int i)
{
    return l && i >= 0 && i < l->n ? &l->items[i] : NULL;
}
