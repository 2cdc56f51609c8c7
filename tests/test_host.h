/* tests/test_host.h — a minimal host-services table for tests that load a backend plugin
 * through its entry symbol themselves (as the core's loader does) rather than through a
 * context: errors land in g_msg, logs are dropped, memory is malloc's. Include once per
 * test program, after <ember/backend.h>. */
#ifndef EMBER_TEST_HOST_H
#define EMBER_TEST_HOST_H

#include <ember/backend.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_msg[1024];   /* the last error a plugin reported */

static em_status h_error(em_host_ctx *hc, em_status st, const char *fmt, ...)
{
    (void)hc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return st;
}

static void h_log(em_host_ctx *hc, em_log_level level, const char *fmt, ...)
{
    (void)hc;
    (void)level;
    (void)fmt;
}

static void *h_alloc(em_host_ctx *hc, size_t bytes)
{
    (void)hc;
    return malloc(bytes);
}

static void h_free(em_host_ctx *hc, void *p)
{
    (void)hc;
    free(p);
}

static const em_host g_host = {.struct_size = sizeof(em_host), .abi_major = EM_ABI_MAJOR,
                               .abi_minor = EM_ABI_MINOR, .error = h_error, .log = h_log,
                               .alloc = h_alloc, .free = h_free, .flags = 0};

/* The entry of ember-backend-<name>.so from EMBER_TEST_BACKEND_DIR (the build's plugins, as
 * `make check` sets it), dlopen()ed into *dl; NULL, with the reason on stderr, on failure. */
static inline em_backend_entry_fn th_plugin_entry(const char *name, void **dl)
{
    const char *dir = getenv("EMBER_TEST_BACKEND_DIR");
    *dl = NULL;
    if (!dir || !*dir) {
        fprintf(stderr, "EMBER_TEST_BACKEND_DIR is not set: run the tests with `make check`\n");
        return NULL;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/ember-backend-%s.so", dir, name);
    *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*dl) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return NULL;
    }
    void *sym = dlsym(*dl, EM_BACKEND_ENTRY_NAME);
    if (!sym) {
        fprintf(stderr, "%s: no symbol %s\n", path, EM_BACKEND_ENTRY_NAME);
        return NULL;
    }
    em_backend_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    return entry;
}

#endif
