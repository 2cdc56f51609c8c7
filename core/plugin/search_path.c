/* core/plugin/search_path.c — where plugins are looked for, in order, first match wins:
 * library= of the backend's section, $EMBER_BACKEND_PATH, [backends] path=, the installed
 * $(pkglibdir)/backends, and the directory of the loaded libember (searched before the
 * install directory when libember is not the installed one, so a build tree's plugins are
 * not shadowed by stale installed ones). The current directory is never searched. */
#include "config.h"
#include "internal.h"
#include "core/install_paths.h"   /* EM_SYSCONFDIR, EM_BACKEND_DIR, EM_LIBDIR (generated) */

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ files */

bool em__path_unsafe(const char *path, const struct stat *sb, char *why, size_t n)
{
    const char *ok = em__getenv("EMBER_UNSAFE_OK");
    if (ok && !strcmp(ok, "1"))
        return false;
    const uid_t me = geteuid();
    if (sb->st_uid != me && sb->st_uid != 0) {
        em__snprintf(why, n, "%s is owned by user %lu, neither you (%lu) nor root: someone "
                     "else could replace it (set EMBER_UNSAFE_OK=1 to trust it anyway)", path,
                     (unsigned long)sb->st_uid, (unsigned long)me);
        return true;
    }
    /* Writable by others: unsafe, except a sticky directory (/tmp: others cannot remove
     * or rename what is not theirs) and a group that is our own primary group (a
     * user-private group under umask 002) */
    mode_t w = sb->st_mode & S_IWOTH;
    if ((sb->st_mode & S_IWGRP) && sb->st_gid != getegid())
        w |= S_IWGRP;
    if (S_ISDIR(sb->st_mode) && (sb->st_mode & S_ISVTX))
        w = 0;
    if (w) {
        em__snprintf(why, n, "%s is writable by %s (mode %04o): someone else could replace "
                     "it (set EMBER_UNSAFE_OK=1 to trust it anyway)", path,
                     (w & S_IWOTH) ? "all users" : "its group",
                     (unsigned)(sb->st_mode & 07777));
        return true;
    }
    return false;
}

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
         : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device" : "not a file";
}

int em__plugin_file_check(const char *path, char *why, size_t n)
{
    struct stat sb;
    why[0] = 0;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return EM__FILE_ABSENT;
        /* ELOOP (a symlink loop), EACCES (a directory on the way we may not search), ... */
        em__snprintf(why, n, "%s: %s", path, strerror(errno));
        return EM__FILE_UNUSABLE;
    }
    if (S_ISDIR(sb.st_mode)) {
        em__snprintf(why, n, "%s is a directory, not a plugin file", path);
        return EM__FILE_UNUSABLE;
    }
    if (!S_ISREG(sb.st_mode)) {
        em__snprintf(why, n, "%s is not a regular file (%s)", path, file_kind(sb.st_mode));
        return EM__FILE_UNUSABLE;
    }
    if (access(path, R_OK) != 0) {
        em__snprintf(why, n, "%s cannot be read: %s", path, strerror(errno));
        return EM__FILE_UNUSABLE;
    }
    if (em__path_unsafe(path, &sb, why, n))
        return EM__FILE_UNUSABLE;
    /* the directory holding it: whoever may write there may swap the file */
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 0;
    if (slash && dl < sizeof dir) {
        memcpy(dir, path, dl ? dl : 1);
        dir[dl ? dl : 1] = 0;
        if (stat(dir, &sb) == 0 && em__path_unsafe(dir, &sb, why, n))
            return EM__FILE_UNUSABLE;
    }
    return EM__FILE_OK;
}

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

/* Ignored entries, summarised in one warning: the first few named, then a count (6,500
 * bad entries in EMBER_BACKEND_PATH must not print thousands of lines per context). */
#define SP_NAMED 3
typedef struct sp_ignored {
    int n;
    char named[SP_NAMED][96];
} sp_ignored;

static void ignored_add(sp_ignored *ig, const char *dir, size_t n)
{
    if (ig->n < SP_NAMED)
        em__snprintf(ig->named[ig->n], sizeof ig->named[0], "'%.*s%s'",
                     (int)(n < 80 ? n : 80), dir, n > 80 ? "..." : "");
    ig->n++;
}

static void ignored_text(const sp_ignored *ig, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < ig->n && i < SP_NAMED && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", ig->named[i]);
    if (ig->n > SP_NAMED && used < len)
        snprintf(buf + used, len - used, " and %d more", ig->n - SP_NAMED);
}

static void sp_add(em__search_path *sp, const char *dir, size_t n, em_search_origin o,
                   sp_ignored *too_many)
{
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0)
        return;
    if (n >= PATH_MAX) {
        ignored_add(too_many, dir, n);   /* longer than any path can be */
        return;
    }
    char buf[PATH_MAX];
    memcpy(buf, dir, n);
    buf[n] = 0;
    for (int i = 0; i < sp->n; i++)
        if (same_dir(sp->dirs[i].path, buf))
            return;   /* searched already, from a higher-priority source */
    if (sp->n == (int)(sizeof sp->dirs / sizeof sp->dirs[0])) {
        ignored_add(too_many, buf, n);
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

/* Ignored entries are reported once per process (the path is built several times for
 * each context). */
static atomic_flag relative_warned = ATOMIC_FLAG_INIT;
static atomic_flag too_many_warned = ATOMIC_FLAG_INIT;

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
    sp_ignored relative = {0}, too_many = {0};
    const char *env = em__getenv("EMBER_BACKEND_PATH");
    for (const char *s = env; s && *s;) {
        const char *c = strchr(s, ':');
        size_t n = c ? (size_t)(c - s) : strlen(s);
        if (n && s[0] != '/')
            ignored_add(&relative, s, n);
        else if (n)
            sp_add(sp, s, n, EM_SEARCH_ENV, &too_many);
        s += n + (c ? 1 : 0);
    }
    for (int i = 0; r && i < r->n_search; i++)
        sp_add(sp, r->search[i], strlen(r->search[i]), EM_SEARCH_CONFIG_PATH, &too_many);

    char lib[PATH_MAX], sub[PATH_MAX + 16];
    bool have = libember_dir(lib, sizeof lib);
    if (have)
        em__snprintf(sub, sizeof sub, "%s/ember/backends", lib);
    /* A libember outside the compiled-in libdir runs from a build tree or a relocated
     * install: its own plugins come first, so stale installed ones cannot shadow them. */
    bool installed = have && same_dir(lib, EM_LIBDIR);
    if (have && !installed) {
        sp_add(sp, lib, strlen(lib), EM_SEARCH_LIBEMBER_DIR, &too_many);
        sp_add(sp, sub, strlen(sub), EM_SEARCH_LIBEMBER_DIR, &too_many);
    }
    sp_add(sp, EM_BACKEND_DIR, strlen(EM_BACKEND_DIR), EM_SEARCH_INSTALL_DIR, &too_many);
    if (installed) {
        sp_add(sp, lib, strlen(lib), EM_SEARCH_LIBEMBER_DIR, &too_many);
        sp_add(sp, sub, strlen(sub), EM_SEARCH_LIBEMBER_DIR, &too_many);
    }
    char text[SP_NAMED * 100 + 32];
    if (relative.n && !atomic_flag_test_and_set(&relative_warned)) {
        ignored_text(&relative, text, sizeof text);
        em__log_at(lvl, EM_LOG_WARN,
                   "EMBER_BACKEND_PATH: ignoring %d relative director%s %s (plugin directories "
                   "must be absolute; the current directory is never searched)", relative.n,
                   relative.n == 1 ? "y" : "ies", text);
    }
    if (too_many.n && !atomic_flag_test_and_set(&too_many_warned)) {
        ignored_text(&too_many, text, sizeof text);
        em__log_at(lvl, EM_LOG_WARN,
                   "too many plugin directories (at most %d are searched, each shorter than %d "
                   "bytes): ignoring %d: %s", (int)(sizeof sp->dirs / sizeof sp->dirs[0]),
                   PATH_MAX, too_many.n, text);
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

