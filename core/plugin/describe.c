/* core/plugin/describe.c — a plugin's static description without an instance (ABI 1.1): its name,
 * ABI and the device.ini keys it accepts, read through a describe call of its one entry
 * symbol (em_host.flags = EM_HOST_DESCRIBE). The core uses it to check every section of a
 * device.ini when the file is read — a typo in [cuda] is reported while the program runs on
 * cpu, not the day someone switches — and ember-info and ember-conform show it.
 *
 * A plugin built for ABI 1.0 does not know describe calls and initialises as usual; its keys
 * are taken from that instance, which is shut down at once. Descriptions are cached per file
 * (path, inode, size, modification time) for the life of the process, so a device.ini is not
 * paid for with a dlopen per context. */
#include "config.h"
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct cache_entry {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    em__description d;
    struct cache_entry *next;
} cache_entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry *cache;

static char *dup_or_null(const char *s)
{
    return s ? em__strdup(s) : NULL;
}

/* Copy the plugin's static strings before the library goes away. */
static bool copy_description(em__description *d, const em_backend *be)
{
    d->abi_major = be->abi_major;
    d->abi_minor = be->abi_minor;
    d->version = dup_or_null(be->version);
    d->description = dup_or_null(be->description);
    int n = 0;
    while (be->config_keys && be->config_keys[n])
        n++;
    d->keys = em__calloc((size_t)n + 1, sizeof *d->keys);
    if (!d->keys)
        return false;
    for (int i = 0; i < n; i++)
        if (!(d->keys[i] = em__strdup(be->config_keys[i])))
            return false;
    return (!be->version || d->version) && (!be->description || d->description);
}

static void description_free(em__description *d)
{
    for (int i = 0; d->keys && d->keys[i]; i++)
        free(d->keys[i]);
    free(d->keys);
    free(d->version);
    free(d->description);
    memset(d, 0, sizeof *d);
}

/* Run the describe call; fills d (keys NULL when the plugin cannot tell). false: out of memory. */
static bool describe(const char *name, const char *path, em__description *d)
{
    char why[256];
    if (!em__elf_intact(path, why, sizeof why)) {
        em__snprintf(d->problem, sizeof d->problem, "not loadable: %s", why);
        return true;
    }
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        em__snprintf(d->problem, sizeof d->problem, "dlopen failed: %s", e ? e : "unknown error");
        return true;
    }
    void *sym = dlsym(dl, EM_BACKEND_ENTRY_NAME);
    if (!sym) {
        em__snprintf(d->problem, sizeof d->problem, "no symbol '%s'", EM_BACKEND_ENTRY_NAME);
        dlclose(dl);
        return true;
    }
    em_backend_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    /* a scratch owner for the plugin's messages */
    em_plugin scratch;
    memset(&scratch, 0, sizeof scratch);
    em__snprintf(scratch.name, sizeof scratch.name, "%s", name);
    scratch.log_level = EM_LOG_WARN;
    em_backend be;
    memset(&be, 0, sizeof be);
    be.struct_size = sizeof be;
    em_status st = entry(&em__host_describe, (em_host_ctx *)&scratch, NULL, 0, &be);
    if (be.struct_size < sizeof be)
        memset((char *)&be + be.struct_size, 0, sizeof be - be.struct_size);
    bool ok = true;
    if (be.abi_major != EM_ABI_MAJOR) {
        /* nothing it returned can be trusted; the loader says the same if it is used */
        em__snprintf(d->problem, sizeof d->problem, "built for plugin ABI %u.%u, this core "
                     "speaks %d.%d", be.abi_major, be.abi_minor, EM_ABI_MAJOR, EM_ABI_MINOR);
        d->abi_major = be.abi_major;
        d->abi_minor = be.abi_minor;
    } else if (st != EM_OK) {
        em__snprintf(d->problem, sizeof d->problem, "%s call failed: %s (%s)",
                     be.abi_minor >= 1 ? "describe" : "init",
                     scratch.last_msg[0] ? scratch.last_msg : "no reason given", em_status_name(st));
        d->abi_major = be.abi_major;
        d->abi_minor = be.abi_minor;
    } else {
        d->by_init = be.abi_minor < 1;
        ok = copy_description(d, &be);
        if (be.ctx && !d->by_init)
            em__snprintf(d->problem, sizeof d->problem, "the describe call created an instance "
                         "(em_backend.ctx is set): a describe call must create nothing");
        if (!be.name || strcmp(be.name, name))
            em__snprintf(d->problem, sizeof d->problem, "calls itself '%s', expected '%s'",
                         be.name ? be.name : "(null)", name);
        /* An instance (a 1.0 plugin's, or one made against the rules) is shut down now, if its
         * table is long enough to say how. */
        if (be.ctx && be.struct_size >= offsetof(em_backend, ops) + sizeof(void *) && be.ops &&
            be.ops->struct_size >= offsetof(em_backend_ops, shutdown) + sizeof(void *) &&
            be.ops->shutdown)
            be.ops->shutdown(be.ctx);
    }
    dlclose(dl);
    return ok;
}

/* A fork while another thread holds the lock would leave the child's copy locked. */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void d_prepare(void) { pthread_mutex_lock(&lock); }
static void d_release(void) { pthread_mutex_unlock(&lock); }
static void d_atfork(void) { pthread_atfork(d_prepare, d_release, d_release); }

const em__description *em__plugin_describe(const char *name, const char *path)
{
    static const em__description missing = {.problem = "the plugin file cannot be read"};
    struct stat sb;
    if (stat(path, &sb) != 0)
        return &missing;
    pthread_once(&atfork_once, d_atfork);
    pthread_mutex_lock(&lock);
    for (cache_entry *e = cache; e; e = e->next) {
        if (!strcmp(e->path, path) && e->dev == sb.st_dev && e->ino == sb.st_ino &&
            e->size == sb.st_size && e->mtime.tv_sec == sb.st_mtim.tv_sec &&
            e->mtime.tv_nsec == sb.st_mtim.tv_nsec) {
            pthread_mutex_unlock(&lock);
            return &e->d;
        }
    }
    cache_entry *e = em__calloc(1, sizeof *e);
    if (!e || !(e->path = em__strdup(path)) || !describe(name, path, &e->d)) {
        if (e) {
            description_free(&e->d);
            free(e->path);
        }
        free(e);
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    e->dev = sb.st_dev;
    e->ino = sb.st_ino;
    e->size = sb.st_size;
    e->mtime = sb.st_mtim;
    e->next = cache;
    cache = e;
    pthread_mutex_unlock(&lock);
    return &e->d;
}
