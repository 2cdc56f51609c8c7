/* core/config/resolve.c — what a device.ini means: every setting of [device] and [backends]
 * validated into em__resolved, every other section checked to name a backend and, through
 * the plugin's describe call, to hold only keys that backend accepts; EMBER_DEVICE applied.
 * Every error names the file, line, section and key. */
#include "config.h"
#include "internal.h"
#include "dist/dist_impl.h"   /* [distributed]: the communication plugin's settings */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ validation */

static const char *const device_keys[] = {"backend", "index", "fallback", "log", "op_fallback",
                                          "layers", NULL};
static const char *const backends_keys[] = {"path", NULL};

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (!strcmp(*list, s))
            return true;
    return false;
}

static void join_list(const char *const *list, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; list[i] && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", list[i]);
}

/* Edit distance (with transpositions), to suggest the key the user probably meant. */
static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return 99;
    int d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c)
                c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c)
                c = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < c)
                c = d[i - 2][j - 2] + 1;   /* transposed pair: "cdua" is one step from "cuda" */
            d[i][j] = c;
        }
    return d[la][lb];
}

const char *em__suggest(const char *const *list, const char *s)
{
    const char *best = NULL;
    int bd = 3;
    for (; *list; list++) {
        int d = distance(*list, s);
        if (d < bd) {
            bd = d;
            best = *list;
        }
    }
    return best;
}

static em_status bad(const em_config *cfg, const em__cfg_entry *e, em_status st,
                     const char *fmt, ...) EM_PRINTF(4, 5);
static em_status bad(const em_config *cfg, const em__cfg_entry *e, em_status st,
                     const char *fmt, ...)
{
    char where[600], msg[700];
    em__config_where(cfg, e, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return em__error_global(st, "%s: [%s] %s: %s", where, e->section, e->key, msg);
}

static em_status unknown_key(const em_config *cfg, const em__cfg_entry *e,
                             const char *const *accepted)
{
    char list[256], hint[96] = "";
    join_list(accepted, list, sizeof list);
    const char *s = em__suggest(accepted, e->key);
    if (s)
        em__snprintf(hint, sizeof hint, "; did you mean '%s'?", s);
    return bad(cfg, e, EM_ERR_CONFIG, "unknown key (accepted in [%s]: %s)%s", e->section, list,
               hint);
}

static em_status backend_name_value(const em_config *cfg, const em__cfg_entry *e, char *dst)
{
    if (!*e->value)
        return bad(cfg, e, EM_ERR_CONFIG, "empty value: name a backend such as cpu, opencl or cuda");
    if (!em__valid_backend_name(e->value))
        return bad(cfg, e, EM_ERR_CONFIG,
                   "invalid backend name '%s' (lower-case letters, digits, '_' and '-', at "
                   "most 63 characters)", e->value);
    strcpy(dst, e->value);   /* valid names fit in 64 bytes */
    return EM_OK;
}

/* Non-negative decimal int; no sign, spaces or trailing junk. */
static bool parse_index(const char *s, int *out)
{
    if (!*s)
        return false;
    long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
        if (v > INT_MAX)
            return false;
    }
    *out = (int)v;
    return true;
}

void em__resolved_free(em__resolved *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_search; i++) {
        free(r->search[i]);
        r->search[i] = NULL;
    }
    r->n_search = 0;
}

static em_status parse_path_list(const em_config *cfg, const em__cfg_entry *e, em__resolved *out)
{
    const char *s = e->value;
    while (*s) {
        const char *c = strchr(s, ':');
        size_t n = c ? (size_t)(c - s) : strlen(s);
        if (n == 0) {
            /* empty entry ("a::b", trailing ':'): nothing to search */
        } else if (s[0] != '/') {
            char where[600];
            em__config_where(cfg, e, where, sizeof where);
            em__log_at(out->log_level, EM_LOG_INFO,
                   "%s: [backends] path: ignoring relative directory '%.*s' (plugin "
                   "directories must be absolute; the current directory is never searched)",
                   where, (int)n, s);
        } else if (n >= PATH_MAX) {
            return bad(cfg, e, EM_ERR_CONFIG, "directory name longer than %d bytes", PATH_MAX - 1);
        } else if (out->n_search == (int)(sizeof out->search / sizeof out->search[0])) {
            return bad(cfg, e, EM_ERR_CONFIG, "more than %d directories",
                       (int)(sizeof out->search / sizeof out->search[0]));
        } else {
            char *d = em__malloc(n + 1);
            if (!d)
                return em__error_global(EM_ERR_OOM, "out of memory resolving the configuration");
            memcpy(d, s, n);
            d[n] = 0;
            out->search[out->n_search++] = d;
        }
        s += n + (c ? 1 : 0);
    }
    return EM_OK;
}

/* EMBER_DEVICE=name[:index] overrides [device] backend and index. */
static em_status apply_device_env(const em_config *cfg, em__resolved *out)
{
    const char *env = em__getenv("EMBER_DEVICE");
    if (!env || !*env)
        return EM_OK;   /* set but empty counts as unset, as shells make that easy */
    if (strlen(env) >= sizeof out->device_env)
        return em__error_global(EM_ERR_CONFIG, "EMBER_DEVICE is longer than %zu characters",
                                sizeof out->device_env - 1);
    strcpy(out->device_env, env);
    char name[128];
    strcpy(name, env);
    char *colon = strchr(name, ':');
    int index = -1;
    if (colon) {
        *colon = 0;
        if (!parse_index(colon + 1, &index))
            return em__error_global(EM_ERR_CONFIG,
                                    "EMBER_DEVICE='%s': the device index '%s' is not a "
                                    "non-negative integer (expected name[:index], e.g. "
                                    "'cuda' or 'cuda:1')", env, colon + 1);
    }
    if (!em__valid_backend_name(name))
        return em__error_global(EM_ERR_CONFIG,
                                "EMBER_DEVICE='%s': '%s' is not a backend name (expected "
                                "name[:index], e.g. 'cpu', 'cuda' or 'cuda:1'; names are "
                                "lower-case letters, digits, '_' and '-')", env, name);
    /* Without an index, the file's index still applies if it was for the same backend;
     * an index meant for another backend means nothing here. */
    if (colon || strcmp(name, out->backend))
        out->index = index;
    strcpy(out->backend, name);
    (void)cfg;
    return EM_OK;
}

/* "profile, validate" (commas and/or blanks; "none" or nothing: no layers) into out->layers.
 * msg gets the complaint when false. */
static bool parse_layers(const char *text, em__resolved *out, char *msg, size_t msglen)
{
    out->n_layers = 0;
    const char *s = text;
    while (*s) {
        s += strspn(s, ", \t");
        size_t w = strcspn(s, ", \t");
        if (!w)
            break;
        char name[64];
        if (w >= sizeof name) {
            em__snprintf(msg, msglen, "layer name '%.*s...' is too long", 40, s);
            return false;
        }
        memcpy(name, s, w);
        name[w] = 0;
        s += w;
        if (!strcmp(name, "none") && out->n_layers == 0 && !s[strspn(s, ", \t")])
            break;
        if (!em__valid_backend_name(name)) {
            em__snprintf(msg, msglen, "'%s' is not a layer name (names are lower-case letters, "
                         "digits, '_' and '-')", name);
            return false;
        }
        for (int i = 0; i < out->n_layers; i++)
            if (!strcmp(out->layers[i], name)) {
                em__snprintf(msg, msglen, "layer '%s' is listed twice", name);
                return false;
            }
        if (out->n_layers == (int)(sizeof out->layers / sizeof out->layers[0])) {
            em__snprintf(msg, msglen, "at most %d layers are supported",
                         (int)(sizeof out->layers / sizeof out->layers[0]));
            return false;
        }
        strcpy(out->layers[out->n_layers++], name);
    }
    return true;
}

/* EMBER_LAYERS=profile,validate replaces [device] layers ("none" turns them off; set but
 * empty counts as unset, as for EMBER_DEVICE). */
static em_status apply_layers_env(em__resolved *out)
{
    const char *env = em__getenv("EMBER_LAYERS");
    if (!env || !*env)
        return EM_OK;
    char msg[256];
    if (!parse_layers(env, out, msg, sizeof msg))
        return em__error_global(EM_ERR_CONFIG, "EMBER_LAYERS='%s': %s", env, msg);
    em__snprintf(out->layers_from, sizeof out->layers_from, "EMBER_LAYERS=%s", env);
    return EM_OK;
}

static em_status check_library(const em_config *cfg, const em__cfg_entry *e)
{
    if (strcmp(e->key, "library") || !strcmp(e->section, "device") ||
        !strcmp(e->section, "backends"))
        return EM_OK;
    /* Existence is checked when that backend is loaded: a stale path in a section that is
     * not used must not stop the configured backend from starting. */
    if (!*e->value)
        return bad(cfg, e, EM_ERR_CONFIG, "empty value: give the full path of the plugin file");
    if (e->value[0] != '/')
        return bad(cfg, e, EM_ERR_CONFIG,
                   "'%s' is not an absolute path (library= must give the plugin file's full "
                   "path; the current directory is never searched)", e->value);
    return EM_OK;
}

/* The directories of the plugin search path, for messages. */
static void search_dirs_text(const em__search_path *sp, char *dirs, size_t n)
{
    size_t used = 0;
    dirs[0] = 0;
    for (int d = 0; d < sp->n && used < n; d++)
        used += (size_t)snprintf(dirs + used, n - used, "%s%s", d ? ", " : "", sp->dirs[d].path);
    if (!sp->n)
        em__snprintf(dirs, n, "(no directories)");
}

/* The keys of backend section `sec` against what its plugin (at path) accepts, read through
 * a describe call: a typo in a section of a backend not in use is reported now, not the day
 * someone switches to it. Plugins that cannot describe themselves are checked when loaded. */
static em_status check_keys(const em_config *cfg, const char *sec, const char *path)
{
    const em__description *d = em__plugin_describe(sec, path);
    if (!d)
        return em__error_global(EM_ERR_OOM, "out of memory describing plugin %s", path);
    if (!d->keys)
        return EM_OK;
    enum { MAX_KV = 64 };
    em_config_kv kv[MAX_KV];
    const em__cfg_entry *where[MAX_KV];
    int n = em__config_section(cfg, sec, kv, MAX_KV, where);
    if (n > MAX_KV)
        return em__error_global(EM_ERR_CONFIG, "%s: [%s] has %d keys; at most %d are supported",
                                cfg->source, sec, n, MAX_KV);
    char msg[1024];
    if (!em__keys_known(cfg, sec, (const char *const *)d->keys, kv, where, n, msg, sizeof msg))
        return em__error_global(EM_ERR_CONFIG, "%s", msg);
    return EM_OK;
}

/* Every section is a core section or names a backend. A backend's section is checked against
 * the keys its plugin accepts; an unknown section is an error unless it is one of the
 * first-party backends not built here or names its plugin with library=, so that a typo such
 * as [cdua] is reported rather than silently ignored. */
static em_status check_sections(const em_config *cfg, em__resolved *out)
{
    static const char *const known[] = {"device", "backends", "cpu", "opencl", "cuda", NULL};
    em__search_path sp;
    bool built = false;
    em_status st = EM_OK;
    for (int i = 0; i < cfg->n && st == EM_OK; i++) {
        const em__cfg_entry *e = &cfg->entries[i];
        const char *sec = e->section;
        st = check_library(cfg, e);
        bool first = true;   /* judge each section once, at its first key */
        for (int j = 0; j < i && first; j++)
            first = strcmp(cfg->entries[j].section, sec) != 0;
        if (st != EM_OK || !first || !strcmp(sec, "device") || !strcmp(sec, "backends") ||
            !strcmp(sec, "distributed"))
            continue;
        if (em__valid_backend_name(sec)) {
            char path[PATH_MAX + 80], fmsg[2048];
            em_search_origin origin;
            em_status fs = em__plugin_find(cfg, out, sec, path, sizeof path, &origin, fmsg,
                                           sizeof fmsg);
            if (fs == EM_ERR_OOM) {
                st = em__error_global(EM_ERR_OOM, "out of memory resolving the configuration");
                break;
            }
            if (fs == EM_OK) {
                st = check_keys(cfg, sec, path);
                continue;
            }
            if (em_config_get(cfg, sec, "library"))
                continue;   /* a stale library= in an unused section must not stop the used one */
            /* a layer's section ([profile], [validate]): the keys its plugin accepts */
            char lpath[PATH_MAX + 80], lmsg[2048];
            fs = em__layer_find(cfg, out, sec, lpath, sizeof lpath, &origin, lmsg, sizeof lmsg);
            if (fs == EM_OK) {
                st = em__layer_check_keys(cfg, sec, lpath);
                continue;
            }
            if (!strstr(fmsg, "not found: "))
                continue;   /* there but unusable: the loader says why if it is used */
        }
        if (in_list(known, sec))
            continue;   /* a first-party backend that is not built here */
        if (!built) {
            em__search_path_build(cfg, out, NULL, &sp);
            built = true;
            if (sp.oom) {
                st = em__error_global(EM_ERR_OOM, "out of memory resolving the configuration");
                break;
            }
        }
        char dirs[2048];
        search_dirs_text(&sp, dirs, sizeof dirs);
        char where[600], hint[128] = "";
        em__config_where(cfg, e, where, sizeof where);
        const char *s = em__suggest(known, sec);
        if (s)
            em__snprintf(hint, sizeof hint, "; did you mean [%s]?", s);
        st = em__error_global(EM_ERR_CONFIG,
                              "%s: unknown section [%s] (no backend plugin named '%s' was found "
                              "in: %s)%s", where, sec, sec, dirs, hint);
    }
    if (built)
        em__search_path_free(&sp);
    return st;
}

em_status em__config_resolve(const em_config *cfg, em__resolved *out, bool apply_env)
{
    memset(out, 0, sizeof *out);
    strcpy(out->backend, "cpu");
    out->index = -1;
    out->log_level = EM_LOG_WARN;
    out->op_fallback_cpu = 1;
    if (!cfg)
        return EM_OK;
    em_status st = EM_OK;
    /* log first: it decides whether the info messages below are shown */
    const em__cfg_entry *le = em__config_find(cfg, "device", "log");
    if (le) {
        static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
        int i = 0;
        while (levels[i] && strcmp(levels[i], le->value))
            i++;
        if (!levels[i])
            return bad(cfg, le, EM_ERR_CONFIG, "expected one of error, warn, info, debug; got '%s'",
                       le->value);
        out->log_level = (em_log_level)i;
    }
    for (int i = 0; i < cfg->n && st == EM_OK; i++) {
        const em__cfg_entry *e = &cfg->entries[i];
        if (!strcmp(e->section, "device")) {
            if (!strcmp(e->key, "backend"))
                st = backend_name_value(cfg, e, out->backend);
            else if (!strcmp(e->key, "fallback"))
                st = backend_name_value(cfg, e, out->fallback);
            else if (!strcmp(e->key, "index")) {
                if (!parse_index(e->value, &out->index)) {
                    bool digits = *e->value && strspn(e->value, "0123456789") == strlen(e->value);
                    st = bad(cfg, e, EM_ERR_CONFIG, "expected a non-negative integer, got '%s'%s",
                             e->value, digits ? " (too large)" : "");
                }
            } else if (!strcmp(e->key, "op_fallback")) {
                if (!strcmp(e->value, "cpu"))
                    out->op_fallback_cpu = 1;
                else if (!strcmp(e->value, "error"))
                    out->op_fallback_cpu = 0;
                else
                    st = bad(cfg, e, EM_ERR_CONFIG, "expected cpu or error, got '%s'", e->value);
            } else if (!strcmp(e->key, "layers")) {
                char msg[256];
                if (!parse_layers(e->value, out, msg, sizeof msg))
                    st = bad(cfg, e, EM_ERR_CONFIG, "%s", msg);
                char w[600];
                em__config_where(cfg, e, w, sizeof w);
                em__snprintf(out->layers_from, sizeof out->layers_from, "%s: [device] layers", w);
            } else if (!strcmp(e->key, "log")) {
                /* done above */
            } else {
                st = unknown_key(cfg, e, device_keys);
            }
        } else if (!strcmp(e->section, "backends")) {
            if (!strcmp(e->key, "path"))
                st = parse_path_list(cfg, e, out);
            else
                st = unknown_key(cfg, e, backends_keys);
        }
    }
    if (st == EM_OK) {
        em__dist_settings dist;   /* [distributed] is read when a process group starts */
        st = em__dist_read_settings(cfg, false, &dist);
    }
    if (st == EM_OK)
        st = check_sections(cfg, out);
    if (st == EM_OK && apply_env)
        st = apply_device_env(cfg, out);
    if (st == EM_OK && apply_env)
        st = apply_layers_env(out);
    if (st != EM_OK)
        em__resolved_free(out);
    return st;
}
