/* core/plugin/loader.c — finds, opens, checks and instantiates backend plugins, and gives a
 * context its backend and device (with the [device] fallback).
 *
 * Every failure says which file, which stage (find / open / symbol / ABI / init / devices)
 * and the underlying text (dlerror, the plugin's own message), because "no backend" with
 * no hint of where the loader looked is the classic complaint about plugin systems.
 * Nothing here trusts a plugin's tables beyond the size it declares. */
#include "config.h"
#include "internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Entries every plugin must provide: without them no tensor can exist. */
static const struct {
    const char *name;
    size_t offset;
} required_ops[] = {
    {"device_count", offsetof(em_backend_ops, device_count)},
    {"device_props", offsetof(em_backend_ops, device_props)},
    {"device_open", offsetof(em_backend_ops, device_open)},
    {"device_close", offsetof(em_backend_ops, device_close)},
    {"buffer_alloc", offsetof(em_backend_ops, buffer_alloc)},
    {"buffer_free", offsetof(em_backend_ops, buffer_free)},
    {"copy_h2d", offsetof(em_backend_ops, copy_h2d)},
    {"copy_d2h", offsetof(em_backend_ops, copy_d2h)},
    {"synchronize", offsetof(em_backend_ops, synchronize)},
};

/* The optional asynchrony entries come in groups (backend.h): a group is all there or all
 * absent, and streams need the async copies. A half group is a plugin bug, refused with the
 * names of the missing entries rather than half used. */
#define OP(g, f) {g, #f, offsetof(em_backend_ops, f)}
static const struct {
    int group;
    const char *name;
    size_t offset;
} async_ops[] = {
    OP(EM__ASYNC_PINNED, host_alloc),      OP(EM__ASYNC_PINNED, host_free),
    OP(EM__ASYNC_COPIES, copy_h2d_async),  OP(EM__ASYNC_COPIES, copy_d2h_async),
    OP(EM__ASYNC_STREAMS, stream_create),  OP(EM__ASYNC_STREAMS, stream_destroy),
    OP(EM__ASYNC_STREAMS, event_create),   OP(EM__ASYNC_STREAMS, event_destroy),
    OP(EM__ASYNC_STREAMS, event_record),   OP(EM__ASYNC_STREAMS, event_wait),
    OP(EM__ASYNC_STREAMS, event_synchronize),
};
#undef OP

static bool async_groups(em_plugin *p, char *msg, size_t msglen)
{
    static const char *const group_name[] = {"", "pinned host memory", "async copies", "",
                                             "streams and events"};
    int have = 0, lack = 0;
    for (size_t i = 0; i < sizeof async_ops / sizeof async_ops[0]; i++) {
        void *fn;
        memcpy(&fn, (const char *)&p->ops + async_ops[i].offset, sizeof fn);
        *(fn ? &have : &lack) |= async_ops[i].group;
    }
    for (int g = EM__ASYNC_PINNED; g <= EM__ASYNC_STREAMS; g <<= 1) {
        if (!(have & g) || !(lack & g))
            continue;
        char missing[256] = "";
        size_t used = 0;
        for (size_t i = 0; i < sizeof async_ops / sizeof async_ops[0]; i++) {
            void *fn;
            memcpy(&fn, (const char *)&p->ops + async_ops[i].offset, sizeof fn);
            if (async_ops[i].group == g && !fn && used < sizeof missing)
                used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%s",
                                         used ? ", " : "", async_ops[i].name);
        }
        em__snprintf(msg, msglen, "backend '%s': plugin %s provides part of the %s entries but "
                     "not %s (a group is all there or all NULL)", p->name, p->path,
                     group_name[g], missing);
        return false;
    }
    if ((have & EM__ASYNC_STREAMS) && !(have & EM__ASYNC_COPIES)) {
        em__snprintf(msg, msglen, "backend '%s': plugin %s provides streams and events but not "
                     "copy_h2d_async/copy_d2h_async, which streams are for", p->name, p->path);
        return false;
    }
    p->async = have & ~lack;
    return true;
}

/* The least a plugin's em_backend and ops table must hold for us to use it. */
#define BACKEND_MIN_SIZE (offsetof(em_backend, ops) + sizeof(void *))
#define OPS_MIN_SIZE (offsetof(em_backend_ops, synchronize) + sizeof(void *))

/* ------------------------------------------------------------------ host services */

static em_status host_error(em_host_ctx *hc, em_status st, const char *fmt, ...)
{
    em_plugin *p = (em_plugin *)hc;
    if (!p || !fmt)
        return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->last_msg, sizeof p->last_msg, fmt, ap);
    va_end(ap);
    p->last_status = st;
    return st;
}

static void host_log(em_host_ctx *hc, em_log_level lvl, const char *fmt, ...)
{
    em_plugin *p = (em_plugin *)hc;
    em_log_level max = !p ? EM_LOG_WARN : p->ctx ? p->ctx->res.log_level : p->log_level;
    if ((unsigned)lvl > EM_LOG_DEBUG)
        lvl = EM_LOG_DEBUG;
    if (lvl > max || !fmt)
        return;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p && p->ctx)
        em__log(p->ctx, lvl, "%s: %s", p->name, msg);
    else
        em__log_at(max, lvl, "%s: %s", p ? p->name : "plugin", msg);
}

static void *host_alloc(em_host_ctx *hc, size_t bytes)
{
    (void)hc;
    return em__malloc(bytes);   /* fault injection reaches plugins too */
}

static void host_free(em_host_ctx *hc, void *ptr)
{
    (void)hc;
    free(ptr);
}

#define HOST_SERVICES(flag_bits)                                                             \
    {.struct_size = sizeof(em_host), .abi_major = EM_ABI_MAJOR, .abi_minor = EM_ABI_MINOR,   \
     .error = host_error, .log = host_log, .alloc = host_alloc, .free = host_free,           \
     .flags = (flag_bits)}
const em_host em__host = HOST_SERVICES(0);
/* The same services, for describe calls (describe.c). */
const em_host em__host_describe = HOST_SERVICES(EM_HOST_DESCRIBE);
#undef HOST_SERVICES

/* ------------------------------------------------------------------ loading */

static const em__cfg_entry *cfg_entry(const em_config *cfg, const char *sec, const char *key)
{
    for (int i = 0; cfg && i < cfg->n; i++)
        if (!strcmp(cfg->entries[i].section, sec) && !strcmp(cfg->entries[i].key, key))
            return &cfg->entries[i];
    return NULL;
}

/* Keys of the backend's section that its plugin does not declare. */
bool em__keys_known(const em_config *cfg, const char *name, const char *const *accepted,
                       const em_config_kv *kv, const em__cfg_entry *const *where, int n,
                       char *msg, size_t msglen)
{
    for (int i = 0; i < n; i++) {
        bool ok = false;
        for (int k = 0; accepted && accepted[k] && !ok; k++)
            ok = !strcmp(accepted[k], kv[i].key);
        if (ok)
            continue;
        char list[512] = "", w[600];
        size_t used = 0;
        for (int k = 0; accepted && accepted[k] && used < sizeof list; k++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "",
                                     accepted[k]);
        em__config_where(cfg, where[i], w, sizeof w);
        const char *near = accepted ? em__suggest(accepted, kv[i].key) : NULL;
        char hint[96] = "";
        if (near)
            em__snprintf(hint, sizeof hint, "; did you mean '%s'?", near);
        if (used)
            em__snprintf(msg, msglen, "%s: [%s] %s: unknown key (backend '%s' accepts: %s, "
                         "and library)%s", w, name, kv[i].key, name, list, hint);
        else
            em__snprintf(msg, msglen, "%s: [%s] %s: unknown key (backend '%s' accepts no keys "
                         "besides library)", w, name, kv[i].key, name);
        return false;
    }
    return true;
}

/* A plugin's own complaint about its configuration, located as precisely as we can: at
 * the key's line when the message starts with a key of the section, else at the file. */
static void plugin_config_msg(const em_config *cfg, const char *name, const char *pmsg,
                              const em_config_kv *kv, const em__cfg_entry *const *where, int n,
                              char *msg, size_t msglen)
{
    char w[600];
    const em__cfg_entry *at = NULL;
    for (int i = 0; i < n && !at; i++) {
        size_t kl = strlen(kv[i].key);
        if (!strncmp(pmsg, kv[i].key, kl) && strchr(":= ", pmsg[kl]) && pmsg[kl])
            at = where[i];
    }
    if (at)
        em__config_where(cfg, at, w, sizeof w);
    else if (n > 0 && where[0]->line > 0)
        em__snprintf(w, sizeof w, "%s", where[0]->file ? where[0]->file : cfg->source);
    else
        em__snprintf(w, sizeof w, "%s", cfg ? cfg->source : "(built-in defaults)");
    em__snprintf(msg, msglen, "%s: [%s] %s", w, name, pmsg[0] ? pmsg : "invalid configuration");
}

/* dlopen maps a truncated ELF file without complaint, and the process then dies of SIGBUS
 * touching pages past its end (a half-copied plugin would kill ember-info too). Check that
 * the program headers and every loadable segment lie inside the file. Anything that is not
 * a native ELF file is left to dlopen, whose message for it is good. */
#if __SIZEOF_POINTER__ == 8
#define NATIVE_ELFCLASS ELFCLASS64
#else
#define NATIVE_ELFCLASS ELFCLASS32
#endif
bool em__elf_intact(const char *path, char *why, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    bool ok = true;
    struct stat sb;
    ElfW(Ehdr) eh;
    if (fstat(fd, &sb) != 0 || pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != NATIVE_ELFCLASS ||
        eh.e_phentsize != sizeof(ElfW(Phdr)))
        goto done;
    unsigned long long size = (unsigned long long)sb.st_size;
    unsigned long long phend =
        (unsigned long long)eh.e_phoff + (unsigned long long)eh.e_phnum * sizeof(ElfW(Phdr));
    if (phend > size) {
        em__snprintf(why, n, "its program headers end at byte %llu, but the file has only %llu "
                     "bytes: it is truncated", phend, size);
        ok = false;
        goto done;
    }
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        ElfW(Phdr) ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != (ssize_t)sizeof ph)
            break;
        unsigned long long end = (unsigned long long)ph.p_offset + ph.p_filesz;
        if (ph.p_type == PT_LOAD && end > size) {
            em__snprintf(why, n, "its loadable segment %u ends at byte %llu, but the file has "
                         "only %llu bytes: it is truncated", i, end, size);
            ok = false;
            break;
        }
    }
done:
    close(fd);
    return ok;
}

em_status em__plugin_load_path(const em_config *cfg, const em__resolved *r, const char *name,
                               const char *path, em_search_origin origin, em_plugin **out,
                               em_load_stage *stage, char *msg, size_t msglen)
{
    *out = NULL;
    *stage = EM_STAGE_OPEN;
    msg[0] = 0;
    em_plugin *p = em__calloc(1, sizeof *p);
    char *pathcopy = em__strdup(path);
    if (!p || !pathcopy) {
        free(p);
        free(pathcopy);
        em__snprintf(msg, msglen, "backend '%s': out of memory loading %s", name, path);
        return EM_ERR_OOM;
    }
    p->path = pathcopy;
    em__snprintf(p->name, sizeof p->name, "%s", name);
    p->origin = origin;
    p->log_level = r ? r->log_level : EM_LOG_WARN;
    em_status st;
    bool instance = false;   /* the entry created an instance we may shut down */

    char why[256];
    if (!em__elf_intact(path, why, sizeof why)) {
        em__snprintf(msg, msglen, "backend '%s' cannot be loaded from %s (%s)", name, path, why);
        st = EM_ERR_PLUGIN;
        goto fail;
    }
    dlerror();
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        const char *e = dlerror();
        em__snprintf(msg, msglen, "backend '%s' cannot be loaded from %s (dlopen failed: %s)",
                     name, path, e ? e : "unknown error");
        st = EM_ERR_PLUGIN;
        goto fail;
    }
    *stage = EM_STAGE_SYMBOL;
    dlerror();
    void *sym = dlsym(p->dl, EM_BACKEND_ENTRY_NAME);
    if (!sym) {
        const char *e = dlerror();
        em__snprintf(msg, msglen, "backend '%s': %s is not an ember backend plugin (no symbol "
                     "'%s': %s)", name, path, EM_BACKEND_ENTRY_NAME, e ? e : "NULL symbol");
        st = EM_ERR_PLUGIN;
        goto fail;
    }
    em_backend_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);   /* POSIX: dlsym results convert to functions */

    *stage = EM_STAGE_INIT;
    enum { MAX_KV = 64 };
    em_config_kv kv[MAX_KV];
    const em__cfg_entry *where[MAX_KV];
    int n = em__config_section(cfg, name, kv, MAX_KV, where);
    if (n > MAX_KV) {
        em__snprintf(msg, msglen, "%s: [%s] has %d keys; at most %d are supported",
                     cfg->source, name, n, MAX_KV);
        st = EM_ERR_CONFIG;
        goto fail;
    }

    em_backend be;
    memset(&be, 0, sizeof be);
    be.struct_size = sizeof be;
    p->last_msg[0] = 0;
    p->last_status = EM_OK;
    st = entry(&em__host, (em_host_ctx *)p, n ? kv : NULL, (size_t)n, &be);
    /* Fields past what the plugin's header knew about are absent, not garbage. */
    if (be.struct_size < sizeof be)
        memset((char *)&be + be.struct_size, 0, sizeof be - be.struct_size);

    if (be.abi_major != EM_ABI_MAJOR && (st == EM_OK || be.abi_major != 0)) {
        /* The layout of everything it returned is unknown: do not call into it again. */
        *stage = EM_STAGE_ABI;
        if (be.abi_major == 0)
            em__snprintf(msg, msglen, "backend '%s': plugin %s does not say which plugin ABI it "
                         "was built for (em_backend.abi_major is 0); rebuild it against this "
                         "ember's <ember/backend.h>", name, path);
        else
            em__snprintf(msg, msglen, "backend '%s': plugin %s was built for plugin ABI %u.%u, "
                         "but this libember uses ABI %d.%d (major versions must match; rebuild "
                         "the plugin against this ember)%s%s%s", name, path, be.abi_major,
                         be.abi_minor, EM_ABI_MAJOR, EM_ABI_MINOR,
                         st != EM_OK && p->last_msg[0] ? " [it said: " : "",
                         st != EM_OK ? p->last_msg : "", st != EM_OK && p->last_msg[0] ? "]" : "");
        st = EM_ERR_PLUGIN;
        goto fail;
    }
    if (st != EM_OK) {
        *stage = EM_STAGE_INIT;
        if (be.struct_size >= BACKEND_MIN_SIZE && be.config_keys &&
            !em__keys_known(cfg, name, be.config_keys, kv, where, n, msg, msglen)) {
            st = EM_ERR_CONFIG;   /* our message names file and line: better than its own */
        } else if (st == EM_ERR_CONFIG) {
            plugin_config_msg(cfg, name, p->last_msg, kv, where, n, msg, msglen);
        } else {
            em__snprintf(msg, msglen, "backend '%s': plugin %s failed to initialise: %s (%s)",
                         name, path, p->last_msg[0] ? p->last_msg : "no reason given",
                         em_status_name(st));
            if ((unsigned)st > EM_ERR_INTERNAL)
                st = EM_ERR_PLUGIN;
        }
        goto fail;
    }
    instance = true;
    *stage = EM_STAGE_ABI;
    if (be.struct_size < BACKEND_MIN_SIZE) {
        instance = false;   /* its ops pointer is not there: cannot shut it down */
        em__snprintf(msg, msglen, "backend '%s': plugin %s returned an em_backend of %zu bytes, "
                     "fewer than the %zu this libember needs (through 'ops'); rebuild it against "
                     "this ember's <ember/backend.h>", name, path, be.struct_size,
                     (size_t)BACKEND_MIN_SIZE);
        st = EM_ERR_PLUGIN;
        goto fail;
    }
    if (!be.ops) {
        instance = false;
        em__snprintf(msg, msglen, "backend '%s': plugin %s returned no ops table "
                     "(em_backend.ops is NULL)", name, path);
        st = EM_ERR_PLUGIN;
        goto fail;
    }
    if (be.ops->struct_size < OPS_MIN_SIZE) {
        instance = be.ops->struct_size >= offsetof(em_backend_ops, shutdown) + sizeof(void *);
        if (instance)
            memcpy(&p->ops, be.ops, offsetof(em_backend_ops, shutdown) + sizeof(void *));
        em__snprintf(msg, msglen, "backend '%s': plugin %s has an ops table of %zu bytes, fewer "
                     "than the %zu this libember needs (through 'synchronize'); rebuild it "
                     "against this ember's <ember/backend.h>", name, path, be.ops->struct_size,
                     (size_t)OPS_MIN_SIZE);
        st = EM_ERR_PLUGIN;
        goto fail;
    }
    /* Zero-extended copy: entries a plugin for an older minor does not have read as NULL. */
    memcpy(&p->ops, be.ops, be.ops->struct_size < sizeof p->ops ? be.ops->struct_size
                                                                 : sizeof p->ops);
    p->be = be;
    for (size_t i = 0; i < sizeof required_ops / sizeof required_ops[0]; i++) {
        void *fn;
        memcpy(&fn, (const char *)&p->ops + required_ops[i].offset, sizeof fn);
        if (!fn) {
            em__snprintf(msg, msglen, "backend '%s': plugin %s lacks the required entry '%s' in "
                         "its ops table", name, path, required_ops[i].name);
            st = EM_ERR_PLUGIN;
            goto fail;
        }
    }
    if (!async_groups(p, msg, msglen)) {
        st = EM_ERR_PLUGIN;
        goto fail;
    }
    if (!be.name || strcmp(be.name, name)) {
        /* The file-name rule applies whenever the file is named like a plugin (library=
         * pointing at ember-backend-<name>.so, as ember-conform --library does); only a
         * library= file named otherwise is matched to its section by the section's name. */
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        char expect[128];
        em__snprintf(expect, sizeof expect, "ember-backend-%s.so", name);
        char hint[320];
        if (origin != EM_SEARCH_LIBRARY_KEY || !strcmp(base, expect))
            em__snprintf(hint, sizeof hint, "a plugin file must be named ember-backend-<its "
                         "name>.so: rename the file ember-backend-%s.so, or build the plugin "
                         "with the name '%s'", be.name ? be.name : "<name>", name);
        else
            em__snprintf(hint, sizeof hint, "library= in [%s] must name the plugin of backend "
                         "'%s'", name, name);
        em__snprintf(msg, msglen, "backend '%s': plugin at %s calls itself '%s', expected '%s' "
                     "(%s)", name, path, be.name ? be.name : "(null)", name, hint);
        st = EM_ERR_PLUGIN;
        goto fail;
    }
    if (!em__keys_known(cfg, name, be.config_keys, kv, where, n, msg, msglen)) {
        *stage = EM_STAGE_INIT;
        st = EM_ERR_CONFIG;
        goto fail;
    }
    *stage = EM_STAGE_DEVICES;
    *out = p;
    return EM_OK;

fail:
    if (instance && p->ops.shutdown)
        p->ops.shutdown(be.ctx);
    if (p->dl)
        dlclose(p->dl);
    free(p->path);
    free(p);
    return st;
}

em_status em__plugin_find(const em_config *cfg, const em__resolved *r, const char *name,
                          char *path, size_t pathlen, em_search_origin *origin, char *msg,
                          size_t msglen)
{
    msg[0] = 0;
    if (!em__valid_backend_name(name)) {
        em__snprintf(msg, msglen, "'%s' is not a valid backend name", name);
        return EM_ERR_CONFIG;
    }
    em__search_path sp;
    em__search_path_build(cfg, r, name, &sp);
    *origin = EM_SEARCH_LIBRARY_KEY;
    em_status st = EM_OK;
    struct stat sb;
    if (sp.oom) {
        em__snprintf(msg, msglen, "backend '%s': out of memory building the plugin search path",
                     name);
        st = EM_ERR_OOM;
    } else if (sp.library) {
        char w[600], why[PATH_MAX + 200];
        int fc;
        em__config_where(cfg, cfg_entry(cfg, name, "library"), w, sizeof w);
        const char *lib = sp.library;
        if (lib[0] != '/')
            em__snprintf(msg, msglen, "%s: [%s] library: '%s' is not an absolute path", w, name, lib);
        else if ((fc = em__plugin_file_check(lib, why, sizeof why)) == EM__FILE_ABSENT)
            em__snprintf(msg, msglen, "%s: [%s] library: plugin file '%s' does not exist", w,
                         name, lib);
        else if (stat(lib, &sb) != 0)
            em__snprintf(msg, msglen, "%s: [%s] library: %s", w, name, why);
        else if (S_ISDIR(sb.st_mode))
            em__snprintf(msg, msglen, "%s: [%s] library: '%s' is a directory; library= names the "
                         "plugin file itself (e.g. %s/ember-backend-%s.so)", w, name, lib, lib, name);
        else if (!S_ISREG(sb.st_mode))
            em__snprintf(msg, msglen, "%s: [%s] library: '%s' is not a regular file", w, name, lib);
        else if (fc == EM__FILE_UNUSABLE)
            em__snprintf(msg, msglen, "%s: [%s] library: %s", w, name, why);
        else
            em__snprintf(path, pathlen, "%s", lib);
        st = msg[0] ? EM_ERR_CONFIG : EM_OK;
    } else {
        bool found = false;
        /* the first file there wins even when it cannot be used (a symlink loop, a
         * directory, a FIFO, unreadable, unsafe): then the error says why, as ember-info
         * does, rather than quietly loading another one further down the path */
        char why[PATH_MAX + 200], first[PATH_MAX + 200] = "", dir_problem[PATH_MAX + 64] = "";
        int n_unusable = 0;
        for (int i = 0; i < sp.n && !found; i++) {
            em__snprintf(path, pathlen, "%s/ember-backend-%s.so", sp.dirs[i].path, name);
            if (!sp.dirs[i].exists) {
                /* EACCES on the directory itself, or on one above it */
                if (stat(sp.dirs[i].path, &sb) != 0 && errno != ENOENT && errno != ENOTDIR &&
                    !dir_problem[0])
                    em__snprintf(dir_problem, sizeof dir_problem, "%s: %s", sp.dirs[i].path,
                                 strerror(errno));
                continue;
            }
            int fc = em__plugin_file_check(path, why, sizeof why);
            if (fc == EM__FILE_OK) {
                found = true;
                *origin = sp.dirs[i].origin;
            } else if (fc == EM__FILE_UNUSABLE) {
                em__snprintf(first, sizeof first, "%s", why);
                n_unusable = 1;
                break;
            }
        }
        if (!found && n_unusable) {
            em__snprintf(msg, msglen, "backend '%s' cannot be loaded: %s", name, first);
            st = EM_ERR_PLUGIN;
        } else if (!found && dir_problem[0]) {
            em__snprintf(msg, msglen, "backend '%s' cannot be loaded: a plugin directory cannot "
                         "be searched: %s", name, dir_problem);
            st = EM_ERR_PLUGIN;
        } else if (!found) {
            char dirs[2048];
            size_t used = 0;
            dirs[0] = 0;
            for (int i = 0; i < sp.n && used < sizeof dirs; i++)
                used += (size_t)snprintf(dirs + used, sizeof dirs - used, "%s%s (%s%s)",
                                         i ? ", " : "", sp.dirs[i].path,
                                         em__origin_text(sp.dirs[i].origin),
                                         sp.dirs[i].exists ? "" : "; does not exist");
            em__snprintf(msg, msglen, "backend '%s' not found: no ember-backend-%s.so in the "
                         "plugin directories searched: %s. Install the plugin, or name its "
                         "directory in [backends] path= of device.ini or in EMBER_BACKEND_PATH",
                         name, name, sp.n ? dirs : "(none)");
            st = EM_ERR_PLUGIN;
        }
    }
    em__search_path_free(&sp);
    return st;
}

em_status em__plugin_load(const em_config *cfg, const em__resolved *r, const char *name,
                          em_plugin **out, em_load_stage *stage, char *msg, size_t msglen)
{
    *out = NULL;
    *stage = EM_STAGE_FIND;
    char path[PATH_MAX + 80];
    em_search_origin origin;
    em_status st = em__plugin_find(cfg, r, name, path, sizeof path, &origin, msg, msglen);
    if (st != EM_OK)
        return st;
    return em__plugin_load_path(cfg, r, name, path, origin, out, stage, msg, msglen);
}

em_status em__plugin_devices(em_plugin *p, int *count, char *msg, size_t msglen)
{
    *count = 0;
    p->last_msg[0] = 0;
    p->last_status = EM_OK;
    int c = 0;
    em_status st = p->ops.device_count(p->be.ctx, &c);
    if (st == EM_OK && c > 0) {
        *count = c;
        return EM_OK;
    }
    if (st == EM_ERR_OOM) {
        em__snprintf(msg, msglen, "backend '%s': out of memory counting devices", p->name);
        return EM_ERR_OOM;
    }
    em__snprintf(msg, msglen, "backend '%s' has no usable device: %s (plugin %s)", p->name,
                 p->last_msg[0] ? p->last_msg
                                : st != EM_OK ? em_status_name(st) : "it reports 0 devices",
                 p->path);
    return EM_ERR_NO_DEVICE;
}

void em__plugin_unload(em_plugin *p)
{
    if (!p)
        return;
    if (p->ops.shutdown)
        p->ops.shutdown(p->be.ctx);
    if (p->dl)
        dlclose(p->dl);
    free(p->path);
    free(p);
}

/* ------------------------------------------------------------------ contexts */

/* Where the device index came from, for "out of range" messages. */
static void index_origin(const em_context *ctx, char *buf, size_t n)
{
    if (ctx->res.device_env[0] && strchr(ctx->res.device_env, ':')) {
        em__snprintf(buf, n, "EMBER_DEVICE=%s", ctx->res.device_env);
        return;
    }
    const em__cfg_entry *e = cfg_entry(ctx->cfg, "device", "index");
    char w[600];
    em__config_where(ctx->cfg, e, w, sizeof w);
    em__snprintf(buf, n, "[device] index at %s", w);
}

/* Load `name`, open device `index` (-1: the plugin's default) and fill ctx. */
static em_status open_backend(em_context *ctx, const char *name, int index, char *msg,
                              size_t msglen)
{
    em_plugin *p;
    em_load_stage stage;
    em_status st = em__plugin_load(ctx->cfg, &ctx->res, name, &p, &stage, msg, msglen);
    if (st != EM_OK)
        return st;
    p->ctx = ctx;
    int count;
    st = em__plugin_devices(p, &count, msg, msglen);
    if (st != EM_OK)
        goto fail;
    if (index >= count) {
        char from[700];
        index_origin(ctx, from, sizeof from);
        em__snprintf(msg, msglen, "backend '%s' has %d device%s (valid indices 0..%d); device "
                     "index %d (from %s) is out of range", name, count, count == 1 ? "" : "s",
                     count - 1, index, from);
        st = EM_ERR_NO_DEVICE;
        goto fail;
    }
    void *dev = NULL;
    p->last_msg[0] = 0;
    st = p->ops.device_open(p->be.ctx, index, &dev);
    if (st != EM_OK || !dev) {
        if (st == EM_OK)
            st = EM_ERR_BACKEND;
        char which[32] = "its default device";
        if (index >= 0)
            em__snprintf(which, sizeof which, "device %d", index);
        em__snprintf(msg, msglen, "backend '%s': cannot open %s: %s (plugin %s)", name, which,
                     p->last_msg[0] ? p->last_msg : em_status_name(st), p->path);
        goto fail;
    }
    /* index -1 lets the plugin choose (its own device= key, else 0); report our best
     * knowledge of which one that is. */
    int idx = index;
    if (idx < 0) {
        const char *d = em_config_get(ctx->cfg, name, "device");
        char *end;
        long v = d ? strtol(d, &end, 10) : 0;
        idx = (d && *d && !*end && v >= 0 && v < count) ? (int)v : 0;
    }
    em_device_props props;
    memset(&props, 0, sizeof props);
    props.struct_size = sizeof props;
    p->last_msg[0] = 0;
    if (p->ops.device_props(p->be.ctx, idx, &props) != EM_OK) {
        memset(&props, 0, sizeof props);
        props.struct_size = sizeof props;
        em__snprintf(props.name, sizeof props.name, "%s device %d", name, idx);
    }
    props.name[sizeof props.name - 1] = 0;
    props.vendor[sizeof props.vendor - 1] = 0;
    props.driver[sizeof props.driver - 1] = 0;
    props.extra[sizeof props.extra - 1] = 0;

    ctx->plugin = p;
    ctx->dev = dev;
    ctx->ops = &p->ops;
    em__snprintf(ctx->backend_name, sizeof ctx->backend_name, "%s", name);
    ctx->device_index = idx;
    ctx->props = props;
    em__device_masks(p, &ctx->props, ctx->kmask);
    return EM_OK;

fail:
    em__plugin_unload(p);
    return st;
}

/* The layers over the backend just opened ([device] layers, EMBER_LAYERS): a layer that cannot
 * be loaded fails the context (never a reason to fall back: the user asked for it). */
static em_status open_layers(em_context *ctx)
{
    char msg[2600];
    em_status st = em__layers_open(ctx, msg, sizeof msg);
    if (st == EM_OK)
        return EM_OK;
    em__backend_close(ctx);
    em__resolved_free(&ctx->res);
    free(ctx->fallback_reason);
    ctx->fallback_reason = NULL;
    return em__error_global(st, "%s", msg);
}

em_status em__backend_open(em_context *ctx)
{
    em_status st = em__config_resolve(ctx->cfg, &ctx->res, true);
    if (st == EM_OK && (st = em__check_backend_names(ctx->cfg, &ctx->res)) != EM_OK)
        em__resolved_free(&ctx->res);   /* a typo is reported, never a reason to fall back */
    if (st != EM_OK)
        return st;
    char reason[1024];
    st = open_backend(ctx, ctx->res.backend, ctx->res.index, reason, sizeof reason);
    if (st == EM_OK)
        return open_layers(ctx);
    /* A broken configuration is the user's to fix, not a reason to switch device; nor is
     * running out of memory. Everything else (missing, broken, no device) falls back. */
    const char *fb = ctx->res.fallback;
    if (!fb[0] || !strcmp(fb, ctx->res.backend) || st == EM_ERR_CONFIG || st == EM_ERR_OOM) {
        em__resolved_free(&ctx->res);
        return em__error_global(st, "%s", reason);
    }
    char reason2[1024];
    em_status st2 = open_backend(ctx, fb, -1, reason2, sizeof reason2);
    if (st2 != EM_OK) {
        em__resolved_free(&ctx->res);
        return em__error_global(st, "%s; the fallback '%s' failed too: %s", reason, fb, reason2);
    }
    char *why = em__strdup(reason);
    if (!why) {
        em__backend_close(ctx);
        em__resolved_free(&ctx->res);
        return em__error_global(EM_ERR_OOM, "out of memory creating a context");
    }
    free(ctx->fallback_reason);
    ctx->fallback_reason = why;
    /* Announce it, once, as a warning (shown unless [device] log = error): a silent switch
     * from GPU to CPU is the classic surprise. The reason starts with "backend 'x'", which
     * the line already says. */
    char prefix[128];
    em__snprintf(prefix, sizeof prefix, "backend '%s'", ctx->res.backend);
    const char *shown = reason;
    if (!strncmp(reason, prefix, strlen(prefix))) {
        shown = reason + strlen(prefix);
        shown += strspn(shown, ": ");
    }
    em__log(ctx, EM_LOG_WARN, "backend '%s' unavailable (%s); using fallback '%s'",
            ctx->res.backend, shown, fb);
    return open_layers(ctx);
}

void em__backend_close(em_context *ctx)
{
    if (!ctx)
        return;
    em__layers_close(ctx);
    em__fallback_free(ctx);   /* a layer may have used it as its reference */
    if (ctx->dev && ctx->plugin)
        ctx->plugin->ops.device_close(ctx->dev);
    ctx->dev = NULL;
    em__plugin_unload(ctx->plugin);
    ctx->plugin = NULL;
    ctx->ops = NULL;
}
