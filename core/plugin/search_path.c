/* core/plugin/search_path.c — where plugins are looked for, in order, first match wins:
 * library= of the backend's section, $EMBER_BACKEND_PATH, [backends] path=, the installed
 * $(pkglibdir)/backends, and the directory of the loaded libember (searched before the
 * install directory when libember is not the installed one, so a build tree's plugins are
 * not shadowed by stale installed ones). The current directory is never searched. */
#include "config.h"
#include "internal.h"
#include "core/install_paths.h"   /* EM_SYSCONFDIR, EM_BACKEND_DIR, EM_LIBDIR (generated) */

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ search path */

const char *em__origin_text(em_search_origin o)
{
    switch (o) {
    case EM_SEARCH_LIBRARY_KEY: return "library= in device.ini";
    case EM_SEARCH_ENV: return "EMBER_BACKEND_PATH";
    case EM_SEARCH_CONFIG_PATH: return "[backends] path";
    case EM_SEARCH_INSTALL_DIR: return "install dir";
    case EM_SEARCH_LIBEMBER_DIR: return "next to libember";
    }
    return "?";
}

static bool same_dir(const char *a, const char *b)
{
    if (!strcmp(a, b))
        return true;
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

static void sp_add(em__search_path *sp, const char *dir, size_t n, em_search_origin o,
                   em_log_level lvl)
{
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0)
        return;
    if (n >= PATH_MAX) {
        em__log_at(lvl, EM_LOG_WARN, "ignoring a plugin directory longer than %d bytes (%s)",
               PATH_MAX - 1, em__origin_text(o));
        return;
    }
    char buf[PATH_MAX];
    memcpy(buf, dir, n);
    buf[n] = 0;
    for (int i = 0; i < sp->n; i++)
        if (same_dir(sp->dirs[i].path, buf))
            return;   /* searched already, from a higher-priority source */
    if (sp->n == (int)(sizeof sp->dirs / sizeof sp->dirs[0])) {
        em__log_at(lvl, EM_LOG_WARN, "too many plugin directories: ignoring %s (%s)", buf,
               em__origin_text(o));
        return;
    }
    char *d = em__strdup(buf);
    if (!d) {
        sp->oom = true;
        return;
    }
    struct stat sb;
    sp->dirs[sp->n].path = d;
    sp->dirs[sp->n].origin = o;
    sp->dirs[sp->n].exists = stat(d, &sb) == 0 && S_ISDIR(sb.st_mode);
    sp->n++;
}

/* The directory libember was loaded from, found through one of its own functions. */
static bool libember_dir(char *buf, size_t n)
{
    Dl_info info;
    if (!dladdr((void *)(uintptr_t)&em__search_path_build, &info) || !info.dli_fname)
        return false;
    char real[PATH_MAX];
    if (!realpath(info.dli_fname, real))
        return false;
    char *slash = strrchr(real, '/');
    if (!slash)
        return false;
    slash[slash == real ? 1 : 0] = 0;
    em__snprintf(buf, n, "%s", real);
    return true;
}

void em__search_path_build(const em_config *cfg, const em__resolved *r, const char *backend,
                           em__search_path *sp)
{
    memset(sp, 0, sizeof *sp);
    em_log_level lvl = r ? r->log_level : EM_LOG_WARN;
    if (backend && cfg) {
        const char *lib = em_config_get(cfg, backend, "library");
        if (lib && *lib && !(sp->library = em__strdup(lib)))
            sp->oom = true;
    }
    const char *env = em__getenv("EMBER_BACKEND_PATH");
    for (const char *s = env; s && *s;) {
        const char *c = strchr(s, ':');
        size_t n = c ? (size_t)(c - s) : strlen(s);
        if (n && s[0] != '/')
            em__log_at(lvl, EM_LOG_INFO,
                   "EMBER_BACKEND_PATH: ignoring relative directory '%.*s' (plugin directories "
                   "must be absolute; the current directory is never searched)", (int)n, s);
        else if (n)
            sp_add(sp, s, n, EM_SEARCH_ENV, lvl);
        s += n + (c ? 1 : 0);
    }
    for (int i = 0; r && i < r->n_search; i++)
        sp_add(sp, r->search[i], strlen(r->search[i]), EM_SEARCH_CONFIG_PATH, lvl);

    char lib[PATH_MAX], sub[PATH_MAX + 16];
    bool have = libember_dir(lib, sizeof lib);
    if (have)
        em__snprintf(sub, sizeof sub, "%s/ember/backends", lib);
    /* A libember outside the compiled-in libdir runs from a build tree or a relocated
     * install: its own plugins come first, so stale installed ones cannot shadow them. */
    bool installed = have && same_dir(lib, EM_LIBDIR);
    if (have && !installed) {
        sp_add(sp, lib, strlen(lib), EM_SEARCH_LIBEMBER_DIR, lvl);
        sp_add(sp, sub, strlen(sub), EM_SEARCH_LIBEMBER_DIR, lvl);
    }
    sp_add(sp, EM_BACKEND_DIR, strlen(EM_BACKEND_DIR), EM_SEARCH_INSTALL_DIR, lvl);
    if (installed) {
        sp_add(sp, lib, strlen(lib), EM_SEARCH_LIBEMBER_DIR, lvl);
        sp_add(sp, sub, strlen(sub), EM_SEARCH_LIBEMBER_DIR, lvl);
    }
}

void em__search_path_free(em__search_path *sp)
{
    for (int i = 0; i < sp->n; i++)
        free((char *)sp->dirs[i].path);
    sp->n = 0;
    free(sp->library);
    sp->library = NULL;
}

