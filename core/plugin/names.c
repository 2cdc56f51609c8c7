/* core/plugin/names.c — may a context use the backend names it is given? [device] backend,
 * [device] fallback and EMBER_DEVICE may name one of ember's own backends (cpu, opencl,
 * cuda), whether or not it is built or usable here — those keep the documented fallback —
 * or a plugin that is installed (found in the search path, or named by library=). Any
 * other name is a typo: a configuration error naming where it was set, with a suggestion
 * and the installed backends, never a reason to fall back. */
#include "config.h"
#include "internal.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const own[] = {"cpu", "opencl", "cuda", NULL};

typedef struct name_list {
    char *names[64];   /* the installed backends, sorted; a NULL after the last */
    int n;
    bool oom;
} name_list;

static void list_add(name_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->names[i], name))
            return;
    if (l->n == (int)(sizeof l->names / sizeof l->names[0]) - 1)
        return;   /* enough for a message */
    if (!(l->names[l->n] = em__strdup(name))) {
        l->oom = true;
        return;
    }
    l->n++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every backend with a plugin file in the search path or a library= of its own. */
static void installed(const em_config *cfg, const em__resolved *r, name_list *l)
{
    memset(l, 0, sizeof *l);
    for (int i = 0; cfg && i < cfg->n; i++)
        if (!strcmp(cfg->entries[i].key, "library") && strcmp(cfg->entries[i].section, "device") &&
            strcmp(cfg->entries[i].section, "backends") &&
            strcmp(cfg->entries[i].section, "distributed"))   /* a comm plugin's */
            list_add(l, cfg->entries[i].section);
    em__search_path sp;
    em__search_path_build(cfg, r, NULL, &sp);
    l->oom |= sp.oom;
    static const char pre[] = "ember-backend-", suf[] = ".so";
    const size_t lp = sizeof pre - 1, ls = sizeof suf - 1;
    for (int d = 0; d < sp.n && !l->oom; d++) {
        DIR *dir = sp.dirs[d].exists ? opendir(sp.dirs[d].path) : NULL;
        struct dirent *de;
        while (dir && (de = readdir(dir))) {
            size_t len = strlen(de->d_name);
            char name[64], path[PATH_MAX + 80];
            struct stat sb;
            if (len <= lp + ls || len - lp - ls >= sizeof name || strncmp(de->d_name, pre, lp) ||
                strcmp(de->d_name + len - ls, suf))
                continue;
            memcpy(name, de->d_name + lp, len - lp - ls);
            name[len - lp - ls] = 0;
            em__snprintf(path, sizeof path, "%s/%s", sp.dirs[d].path, de->d_name);
            if (em__valid_backend_name(name) && stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
                list_add(l, name);
        }
        if (dir)
            closedir(dir);
    }
    em__search_path_free(&sp);
    qsort(l->names, (size_t)l->n, sizeof *l->names, cmp_str);
}

static void list_free(name_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    l->n = 0;
}

/* `name`, set at `where` ("device.ini:3: [device] backend" or "EMBER_DEVICE=x"). */
static em_status check_name(const em_config *cfg, const em__resolved *r, const char *name,
                            const char *where)
{
    for (int i = 0; own[i]; i++)
        if (!strcmp(name, own[i]))
            return EM_OK;
    char path[PATH_MAX + 80], msg[2048];
    em_search_origin origin;
    em_status st = em__plugin_find(cfg, r, name, path, sizeof path, &origin, msg, sizeof msg);
    if (st != EM_ERR_PLUGIN || !strstr(msg, "not found: "))
        return EM_OK;   /* found, or there but unusable (a directory, a symlink loop, unsafe
                         * ...); a bad library= or no memory: the loader reports it */
    name_list l;
    installed(cfg, r, &l);
    if (l.oom) {
        list_free(&l);
        return em__error_global(EM_ERR_OOM, "out of memory checking backend '%s'", name);
    }
    const char *cand[64 + 4];
    int nc = 0;
    for (int i = 0; own[i]; i++)
        cand[nc++] = own[i];
    for (int i = 0; i < l.n; i++)
        cand[nc++] = l.names[i];
    cand[nc] = NULL;
    char hint[96] = "", inst[1024] = "";
    const char *s = em__suggest(cand, name);
    if (s)
        em__snprintf(hint, sizeof hint, "; did you mean '%s'?", s);
    size_t used = 0;
    for (int i = 0; i < l.n && used < sizeof inst; i++)
        used += (size_t)snprintf(inst + used, sizeof inst - used, "%s%s", i ? ", " : "",
                                 l.names[i]);
    /* the loader's "backend 'x' not found: no ember-backend-x.so in ..." without its head */
    const char *rest = strstr(msg, "not found: ");
    rest = rest ? rest + strlen("not found: ") : msg;
    st = em__error_global(EM_ERR_CONFIG,
                          "%s: unknown backend '%s'%s (installed backends: %s; ember's own: cpu, "
                          "opencl, cuda): %s", where, name, hint, l.n ? inst : "none", rest);
    list_free(&l);
    return st;
}

em_status em__check_backend_names(const em_config *cfg, const em__resolved *r)
{
    char where[700], w[600];
    if (r->device_env[0]) {
        em__snprintf(where, sizeof where, "EMBER_DEVICE=%s", r->device_env);
    } else {
        em__config_where(cfg, cfg ? em__config_find(cfg, "device", "backend") : NULL, w, sizeof w);
        em__snprintf(where, sizeof where, "%s: [device] backend", w);
    }
    em_status st = check_name(cfg, r, r->backend, where);
    if (st == EM_OK && r->fallback[0] && strcmp(r->fallback, r->backend)) {
        em__config_where(cfg, cfg ? em__config_find(cfg, "device", "fallback") : NULL, w, sizeof w);
        em__snprintf(where, sizeof where, "%s: [device] fallback", w);
        st = check_name(cfg, r, r->fallback, where);
    }
    return st;
}
