/* tools/ember-info.c — answers "which device will ember use, and if not the one I wanted,
 * why not?": which device.ini was used and why, each effective setting and where it came
 * from, the plugin search path, every plugin found (its ABI, devices, the ops it implements
 * and those that fall back to cpu, or the stage and message of its failure), and what
 * em_context_create actually gives.
 * Uses only the public API (ember.h, info.h), like any other program would.
 * Exit status: 0 when a context could be created (even through the fallback), 2 when not,
 * 1 for a bad command line. */
#include <ember/ember.h>
#include <ember/info.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH 100   /* wrap long messages here */
#define LABEL 14    /* width of the "label:" column */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: ember-info [--config PATH]\n"
            "Show which device ember would use and why: the device.ini found (or PATH),\n"
            "each setting and its source, the plugin search path, every backend plugin\n"
            "with its devices and kernels or the reason it failed to load, and the result\n"
            "of creating a context.\n"
            "\n"
            "  --config PATH  use this device.ini, as em_context_create(&ctx, PATH) would\n"
            "  --help         show this help\n"
            "  --version      show the ember version and plugin ABI\n"
            "\n"
            "Environment: EMBER_CONFIG, EMBER_DEVICE=name[:index], EMBER_LAYERS=a,b,\n"
            "EMBER_BACKEND_PATH,\n"
            "XDG_CONFIG_HOME (see README, \"device.ini\").\n"
            "Exit status: 0 if a context could be created (also through the fallback),\n"
            "2 if not, 1 for a usage error.\n");
}

/* Print text after a label, wrapped at WIDTH with a hanging indent. */
static void wrapped(int indent, const char *label, const char *text)
{
    int col = printf("%*s%-*s", indent, "", LABEL, label);
    int hang = indent + LABEL;
    bool space = false;   /* a space is owed before the next word on this line */
    for (const char *s = text; *s;) {
        if (*s == '\n') {
            printf("\n%*s", hang, "");
            col = hang;
            space = false;
            s++;
            continue;
        }
        if (*s == ' ') {
            space = col > hang;
            s++;
            continue;
        }
        size_t w = strcspn(s, " \n");
        if (col > hang && col + (int)w + space > WIDTH) {
            printf("\n%*s", hang, "");
            col = hang;
            space = false;
        }
        col += printf("%s%.*s", space ? " " : "", (int)w, s);
        space = false;
        s += w;
    }
    printf("\n");
}

static const char *origin_name(em_search_origin o)
{
    switch (o) {
    case EM_SEARCH_LIBRARY_KEY: return "library= (file)";
    case EM_SEARCH_ENV: return "EMBER_BACKEND_PATH";
    case EM_SEARCH_CONFIG_PATH: return "[backends] path";
    case EM_SEARCH_INSTALL_DIR: return "install dir";
    case EM_SEARCH_LIBEMBER_DIR: return "next to libember";
    }
    return "?";
}

/* Line of `key` in `section` of a file that loaded cleanly (0: not in the file). A light
 * scan is enough: the file already passed the real parser. */
static int line_of(const char *file, const char *section, const char *key)
{
    FILE *f = file ? fopen(file, "r") : NULL;
    if (!f)
        return 0;
    char line[512], cur[128] = "";
    int n = 0, found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        n++;
        char *s = line;
        if (n == 1 && !strncmp(s, "\xEF\xBB\xBF", 3))
            s += 3;
        s += strspn(s, " \t");
        if (*s == ';' || *s == '#' || *s == '\n' || *s == '\r' || !*s)
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (end) {
                s++;
                s += strspn(s, " \t");
                while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
                    end--;
                snprintf(cur, sizeof cur, "%.*s", (int)(end - s), s);
            }
            continue;
        }
        size_t k = strcspn(s, "=:");
        while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t'))
            k--;
        if (!strcmp(cur, section) && strlen(key) == k && !strncmp(s, key, k))
            found = n;
    }
    fclose(f);
    return found;
}

/* One setting: value and where it came from. */
static void setting(const em_config *cfg, const char *file, const char *section,
                    const char *key, const char *dflt, const char *env_value)
{
    const char *v = em_config_get(cfg, section, key);
    char src[1200], label[64];
    snprintf(label, sizeof label, "%s", key);
    if (env_value) {
        snprintf(src, sizeof src, "EMBER_DEVICE%s", v ? " (overrides device.ini)" : "");
        v = env_value;
    } else if (v) {
        int line = line_of(file, section, key);
        if (line)
            snprintf(src, sizeof src, "%s:%d", file, line);
        else
            snprintf(src, sizeof src, "%s", file ? file : "(in-code configuration)");
    } else {
        snprintf(src, sizeof src, "default");
        v = dflt;
    }
    if (strlen(v) > 28)   /* a long value (a path list) gets its source on the next line */
        printf("    %-12s %s\n    %-12s %-28s %s\n", label, v, "", "", src);
    else
        printf("    %-12s %-28s %s\n", label, v, src);
}

static void print_settings(const em_config *cfg, const char *file)
{
    const char *env = getenv("EMBER_DEVICE");
    char name[128] = "", index[64] = "";
    const char *env_backend = NULL, *env_index = NULL;
    if (env && *env) {
        snprintf(name, sizeof name, "%s", env);
        char *colon = strchr(name, ':');
        if (colon) {
            *colon = 0;
            snprintf(index, sizeof index, "%s", colon + 1);
            env_index = index;
        }
        env_backend = name;
    }
    printf("  [device]\n");
    setting(cfg, file, "device", "backend", "cpu", env_backend);
    /* EMBER_DEVICE without an index keeps the file's index only for the same backend */
    const char *file_backend = em_config_get(cfg, "device", "backend");
    bool env_drops_index = env_backend && !env_index &&
                           strcmp(env_backend, file_backend ? file_backend : "cpu");
    setting(cfg, file, "device", "index", "-1 (the backend's default)",
            env_index ? env_index : env_drops_index ? "-1 (the backend's default)" : NULL);
    setting(cfg, file, "device", "fallback", "(none)", NULL);
    setting(cfg, file, "device", "log", "warn", NULL);
    setting(cfg, file, "device", "op_fallback", "cpu", NULL);
    printf("  [backends]\n");
    setting(cfg, file, "backends", "path", "(none)", NULL);
    printf("  [distributed]\n");
    const char *de = getenv("EMBER_DIST");
    setting(cfg, file, "distributed", "backend", "mpi", de && *de ? de : NULL);
    setting(cfg, file, "distributed", "timeout", "600 (seconds)", NULL);
    setting(cfg, file, "distributed", "library", "(none)", NULL);
    const char *bp = getenv("EMBER_BACKEND_PATH");
    printf("  environment\n");
    printf("    %-19s %s\n", "EMBER_DEVICE", env && *env ? env : "(unset)");
    printf("    %-19s %s\n", "EMBER_BACKEND_PATH", bp && *bp ? bp : "(unset)");
    printf("    %-19s %s\n", "EMBER_DIST", de && *de ? de : "(unset)");
}

static void human_bytes(unsigned long long b, char *buf, size_t n)
{
    if (!b)
        snprintf(buf, n, "unknown");
    else if (b >= (1ull << 30))
        snprintf(buf, n, "%.1f GiB", (double)b / (double)(1ull << 30));
    else
        snprintf(buf, n, "%.1f MiB", (double)b / (double)(1ull << 20));
}

/* Append name to a space-separated list. */
static void list_add(char *buf, size_t n, size_t *used, const char *name)
{
    if (*used < n)
        *used += (size_t)snprintf(buf + *used, n - *used, "%s%s", *used ? " " : "", name);
}

/* "f32 f64 bool" */
static void mask_text(em_dtype_mask m, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int d = 0; d < 32; d++) {
        if (!(m & EM_DTYPE_BIT(d)))
            continue;
        const char *nm = em_dtype_name((em_dtype)d);
        if (used < n)
            used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? " " : "",
                                     strcmp(nm, "invalid-dtype") ? nm : "?");
    }
}

/* Per-kernel dtypes (plugin ABI 1.1), kernels grouped by what they take. */
static void print_dtypes(const em_plugin_info *pi)
{
    if (pi->struct_size < offsetof(em_plugin_info, kernel_dtypes) + sizeof pi->kernel_dtypes ||
        !pi->kernel_dtypes)
        return;
    bool done[256] = {false};
    char text[4096] = "";
    size_t used = 0;
    for (int k = 0; k < pi->kernel_count && k < 256; k++) {
        em_dtype_mask m = pi->kernel_dtypes[k];
        if (done[k] || !m)
            continue;
        char dts[128], names[2048] = "";
        size_t ln = 0;
        mask_text(m, dts, sizeof dts);
        for (int j = k; j < pi->kernel_count && j < 256; j++) {
            if (!done[j] && pi->kernel_dtypes[j] == m) {
                done[j] = true;
                list_add(names, sizeof names, &ln, pi->kernel_names[j]);
            }
        }
        if (used < sizeof text)
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%s: %s", used ? "\n" : "",
                                     dts, names);
    }
    if (used)
        wrapped(11, "dtypes:", text);
}

/* What the plugin implements, what falls back to cpu (a NULL kernel) under the current
 * [device] op_fallback policy, and which optional entries the core composes itself. */
static void print_kernels(const em_plugin_info *pi, const char *op_fallback)
{
    char have[4096] = "", fall[4096] = "", comp[1024] = "", buf[256];
    size_t lh = 0, lf = 0, lc = 0;
    int total = 0, nh = 0, opt_total = 0, opt_have = 0;
    for (int k = 0; k < pi->kernel_count; k++) {
        const char *name = pi->kernel_names[k];
        if (pi->kernel_optional[k]) {
            opt_total++;
            if (pi->kernel_present[k]) {
                opt_have++;
                list_add(have, sizeof have, &lh, name);
            } else {
                list_add(comp, sizeof comp, &lc, name);
            }
        } else {
            total++;
            if (pi->kernel_present[k]) {
                nh++;
                list_add(have, sizeof have, &lh, name);
            } else {
                list_add(fall, sizeof fall, &lf, name);
            }
        }
    }
    if (opt_have)
        snprintf(buf, sizeof buf, "implements %d of %d ops (and %d of %d optional kernels)",
                 nh, total, opt_have, opt_total);
    else
        snprintf(buf, sizeof buf, "implements %d of %d ops", nh, total);
    wrapped(11, "ops:", buf);
    wrapped(11, "implemented:", nh + opt_have ? have : "(none)");
    bool host = pi->device_count > 0 && (pi->devices[0].flags & EM_DEVICE_HOST_BUFFERS);
    if (nh < total) {
        /* cpu cannot fall back on itself; op_fallback = error turns fallbacks into errors */
        bool to_cpu = strcmp(op_fallback, "error") != 0 && strcmp(pi->name, "cpu") != 0;
        char text[4096 + 200];
        snprintf(text, sizeof text, "%s\n(%s)", fall,
                 to_cpu ? host ? "NULL in the plugin: these run on the cpu backend, in place on "
                                 "the device's host-memory buffers; [device] op_fallback = cpu"
                               : "NULL in the plugin: these run on the cpu backend, operands "
                                 "copied to the host and back; [device] op_fallback = cpu"
                 : strcmp(pi->name, "cpu") ? "NULL in the plugin: calls fail; [device] op_fallback "
                                             "= error"
                                           : "NULL in the plugin: calls fail");
        wrapped(11, to_cpu ? "fallback:" : "unsupported:", text);
    }
    if (lc) {
        char text[1024 + 100];
        snprintf(text, sizeof text, "%s\n(optional: the core composes them from other kernels)", comp);
        wrapped(11, "composed:", text);
    }
    print_dtypes(pi);
}

/* Optional asynchrony, and what the describe call says about its device.ini keys. */
static void print_features(const em_plugin_info *pi)
{
    if (pi->struct_size < offsetof(em_plugin_info, describe_problem) + sizeof pi->describe_problem)
        return;
    char buf[1024];
    uint32_t f = pi->features;
    snprintf(buf, sizeof buf, "%s%s%s%s", f ? "" : "none (synchronous copies)",
             f & EM_PLUGIN_PINNED_MEMORY ? "pinned memory " : "",
             f & EM_PLUGIN_ASYNC_COPIES ? "async copies " : "",
             f & EM_PLUGIN_STREAMS ? "streams and events" : "");
    wrapped(11, "async:", buf);
    char keys[512] = "";
    size_t used = 0;
    for (int i = 0; pi->config_keys && pi->config_keys[i]; i++)
        list_add(keys, sizeof keys, &used, pi->config_keys[i]);
    if (!pi->described_keys)
        snprintf(buf, sizeof buf, "%s (checked when it is loaded; no description: %s)",
                 used ? keys : "(none)", pi->describe_problem);
    else if (pi->describe_problem[0])
        snprintf(buf, sizeof buf, "%s (PROBLEM with its describe call: %s)", used ? keys : "(none)",
                 pi->describe_problem);
    else
        snprintf(buf, sizeof buf, "%s (%s)", used ? keys : "(none)",
                 pi->described_by_init ? "ABI 1.0: read from an instance, shut down at once"
                                       : "read by a describe call: every device.ini is checked "
                                         "without an instance");
    wrapped(11, "config keys:", buf);
}

static void print_plugin(const em_plugin_info *pi, int name_width, const char *op_fallback)
{
    printf("  %-*s  %s\n", name_width, pi->name, pi->path[0] ? pi->path : "(no file)");
    char buf[2048];
    if (pi->path[0]) {
        snprintf(buf, sizeof buf, "%s", origin_name(pi->origin));
        wrapped(11, "found via:", buf);
    }
    if (pi->shadowed_by) {
        snprintf(buf, sizeof buf, "ignored: shadowed by %s (found earlier in the search path)",
                 pi->shadowed_by);
        wrapped(11, "status:", buf);
        return;
    }
    if (pi->stage != EM_STAGE_READY) {
        snprintf(buf, sizeof buf, "FAILED at stage '%s' (%s)", em_load_stage_name(pi->stage),
                 em_status_name(pi->status));
        wrapped(11, "status:", buf);
        wrapped(11, "reason:", pi->message);
        if (pi->struct_size >= offsetof(em_plugin_info, describe_problem) + sizeof(void *) &&
            pi->described_keys) {
            /* what its describe call says even so: device.ini is checked against it */
            char keys[512] = "";
            size_t used = 0;
            for (int i = 0; pi->described_keys[i]; i++)
                list_add(keys, sizeof keys, &used, pi->described_keys[i]);
            snprintf(buf, sizeof buf, "%s (read by a describe call%s%s)", used ? keys : "(none)",
                     pi->describe_problem[0] ? "; PROBLEM: " : "", pi->describe_problem);
            wrapped(11, "config keys:", buf);
        }
        return;
    }
    wrapped(11, "status:", "ready");
    snprintf(buf, sizeof buf, "%u.%u", pi->abi_major, pi->abi_minor);
    wrapped(11, "ABI:", buf);
    wrapped(11, "version:", pi->version[0] ? pi->version : "(not given)");
    wrapped(11, "description:", pi->description[0] ? pi->description : "(not given)");
    snprintf(buf, sizeof buf, "%d", pi->device_count);
    wrapped(11, "devices:", buf);
    for (int d = 0; d < pi->device_count; d++) {
        const em_device_props *p = &pi->devices[d];
        char mem[32];
        human_bytes(p->total_memory, mem, sizeof mem);
        printf("%*s[%d] %s\n", 13, "", d, p->name);
        printf("%*svendor: %s   driver: %s\n", 17, "", p->vendor[0] ? p->vendor : "?",
               p->driver[0] ? p->driver : "?");
        if (p->compute_units)
            printf("%*smemory: %s   compute units: %u   fp64: %s\n", 17, "", mem,
                   p->compute_units, p->fp64 ? "yes" : "no");
        else
            printf("%*smemory: %s   compute units: unknown   fp64: %s\n", 17, "", mem,
                   p->fp64 ? "yes" : "no");
        if (p->flags & EM_DEVICE_HOST_BUFFERS)
            printf("%*sbuffers: host memory (ops the plugin lacks run on cpu in place)\n", 17, "");
        for (const char *s = p->extra; *s;) {
            size_t w = strcspn(s, "\n");
            if (w)
                printf("%*s%.*s\n", 17, "", (int)w, s);
            s += w + (s[w] == '\n');
        }
    }
    print_kernels(pi, op_fallback);
    print_features(pi);
}

/* Communication plugins, by their describe call (none joins a process group here). */
static void print_comm_plugins(const em_config *cfg)
{
    em_comm_list *l = NULL;
    if (em_comm_list_scan(cfg, &l) != EM_OK) {
        printf("communication plugins\n  cannot be listed: %s\n\n", em_last_error());
        return;
    }
    int n = em_comm_list_count(l);
    printf("communication plugins (ember-comm-<name>.so on the same search path; chosen by "
           "[distributed] backend or EMBER_DIST)\n");
    char buf[2048];
    for (int i = 0; i < n; i++) {
        const em_comm_plugin_info *pi = em_comm_list_get(l, i);
        printf("  %-6s  %s\n", pi->name, pi->path);
        wrapped(11, "found via:", origin_name(pi->origin));
        if (pi->shadowed_by) {
            snprintf(buf, sizeof buf, "ignored: shadowed by %s", pi->shadowed_by);
            wrapped(11, "status:", buf);
        } else if (pi->stage != EM_STAGE_READY) {
            snprintf(buf, sizeof buf, "FAILED at stage '%s' (%s)", em_load_stage_name(pi->stage),
                     em_status_name(pi->status));
            wrapped(11, "status:", buf);
            wrapped(11, "reason:", pi->message);
        } else {
            wrapped(11, "status:", "loads (described; a process group starts only in a program)");
            snprintf(buf, sizeof buf, "%u.%u", pi->abi_major, pi->abi_minor);
            wrapped(11, "comm ABI:", buf);
            wrapped(11, "version:", pi->version[0] ? pi->version : "(not given)");
            wrapped(11, "description:", pi->description[0] ? pi->description : "(not given)");
            wrapped(11, "memory:", pi->device_backend[0] ? pi->device_backend : "host only");
        }
        if (i + 1 < n)
            printf("\n");
    }
    if (!n)
        printf("  none found\n");
    printf("\n");
    em_comm_list_free(l);
}

/* Layer files found on the search path ([device] layers chooses among them). */
static void print_layers(const em_registry *reg)
{
    int n = em_registry_layer_count(reg);
    printf("layers (ember-layer-<name>.so; chosen with [device] layers or EMBER_LAYERS)\n");
    if (!n)
        printf("  none found\n");
    for (int i = 0; i < n; i++) {
        const em_layer_info *li = em_registry_layer(reg, i);
        char buf[1024];
        printf("  %s\n", li->name);
        wrapped(4, "file:", li->path);
        if (li->shadowed_by) {
            snprintf(buf, sizeof buf, "shadowed by %s (%s)", li->shadowed_by, li->message);
            wrapped(4, "status:", buf);
            continue;
        }
        if (li->status != EM_OK) {
            snprintf(buf, sizeof buf, "FAILED (%s): %s", em_status_name(li->status), li->message);
            wrapped(4, "status:", buf);
            continue;
        }
        snprintf(buf, sizeof buf, "ok, layer ABI %u.%u, version %s", li->abi_major, li->abi_minor,
                 li->version);
        wrapped(4, "status:", buf);
        wrapped(4, "about:", li->description);
        wrapped(4, "wraps:", li->wraps);
        size_t used = 0;
        buf[0] = 0;
        for (int k = 0; li->config_keys && li->config_keys[k] && used < sizeof buf; k++)
            used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", k ? ", " : "",
                                     li->config_keys[k]);
        wrapped(4, "keys:", used ? buf : "(none)");
        if (li->bypass[0]) {
            snprintf(buf, sizeof buf, "%s (appended after the table it was built with: they "
                     "pass straight to the next level)", li->bypass);
            wrapped(4, "bypass:", buf);
        }
    }
    printf("\n");
}

/* The effective stack of a context: outermost layer first, the backend last. */
static void print_stack(const em_context *ctx)
{
    int n = em_context_layer_count(ctx);
    char buf[1024];
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < n && used < sizeof buf; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s -> ",
                                 em_context_layer_name(ctx, i));
    if (used < sizeof buf)
        snprintf(buf + used, sizeof buf - used, "%s%s", em_context_backend(ctx),
                 n ? "" : " (no layers: the backend's own ops table)");
    wrapped(2, "stack:", buf);
    for (int i = 0; i < n; i++) {
        char by[1024], line[1200];
        em_context_layer_bypass(ctx, i, by, sizeof by);
        if (!by[0])
            continue;
        snprintf(line, sizeof line, "%s: %s", em_context_layer_name(ctx, i), by);
        wrapped(2, "bypass:", line);
    }
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("ember-info (ember) %s, plugin ABI %d.%d\n", em_version_string(), EM_ABI_MAJOR,
                   EM_ABI_MINOR);
            return 0;
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            config = argv[i] + 9;
        } else {
            fprintf(stderr, "ember-info: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 1;
        }
    }
    printf("ember %s (plugin ABI %d.%d)\n\n", em_version_string(), EM_ABI_MAJOR, EM_ABI_MINOR);

    /* ---- device.ini */
    printf("device.ini\n");
    char *report = NULL;
    char *located = em_config_locate(&report);
    const char *file = config ? config : located;
    if (config) {
        FILE *f = fopen(config, "r");
        printf("  %-34s %s  %s\n  (given with --config: the candidates below are not "
               "consulted)\n\n", "--config", config, f ? "found  <- used" : "MISSING (an error)");
        if (f)
            fclose(f);
    }
    for (const char *s = report ? report : ""; *s;) {
        size_t w = strcspn(s, "\n");
        /* with --config, the file em_config_locate would pick is not the one used */
        const char *used = config ? strstr(s, "<- used") : NULL;
        const char *missing = config ? strstr(s, "MISSING (an error: EMBER_CONFIG names it)") : NULL;
        if (used && used < s + w)
            printf("  %.*s(not consulted)\n", (int)(used - s), s);
        else if (missing && missing < s + w)
            printf("  %.*smissing (not consulted)\n", (int)(missing - s), s);
        else
            printf("  %.*s\n", (int)w, s);
        s += w + (s[w] == '\n');
    }
    em_config *cfg = em_config_create();
    if (!cfg) {
        fprintf(stderr, "ember-info: %s\n", em_last_error());
        return 2;
    }
    bool cfg_ok = true;
    if (file && em_config_load_file(cfg, file) != EM_OK) {
        printf("  ERROR: %s\n", em_last_error());
        cfg_ok = false;
    }
    printf("\n");

    /* ---- settings */
    printf("settings (value, then where it comes from)\n");
    print_settings(cfg, file);
    printf("\n");

    /* ---- plugins */
    em_registry *reg = NULL;
    em_status st = cfg_ok ? em_registry_scan(config ? cfg : NULL, &reg) : EM_ERR_CONFIG;
    if (st != EM_OK) {
        printf("plugin search path\n  cannot be determined: %s\n\n",
               cfg_ok ? em_last_error() : "device.ini did not load (see above)");
    } else {
        printf("plugin search path (in order; the first ember-backend-<name>.so found wins)\n");
        for (int i = 0; i < em_registry_dir_count(reg); i++) {
            const em_search_dir *d = em_registry_dir(reg, i);
            printf("  %2d. %-52s %-18s %s\n", i + 1, d->path, origin_name(d->origin),
                   d->exists ? "exists" : "missing");
        }
        int ready = 0, failed = 0, shadowed = 0, n = em_registry_plugin_count(reg), nw = 6;
        for (int i = 0; i < n; i++) {
            const em_plugin_info *pi = em_registry_plugin(reg, i);
            if ((int)strlen(pi->name) > nw)
                nw = (int)strlen(pi->name);
            if (pi->shadowed_by)
                shadowed++;
            else if (pi->stage == EM_STAGE_READY)
                ready++;
            else
                failed++;
        }
        const char *op_fallback = em_config_get(cfg, "device", "op_fallback");
        if (!op_fallback)
            op_fallback = "cpu";
        printf("\nplugins (%d ready, %d failed, %d shadowed; ops a plugin lacks: [device] "
               "op_fallback = %s)\n", ready, failed, shadowed, op_fallback);
        for (int i = 0; i < n; i++) {
            print_plugin(em_registry_plugin(reg, i), nw, op_fallback);
            if (i + 1 < n)
                printf("\n");
        }
        if (!n)
            printf("  none found\n");
        printf("\n");
        print_layers(reg);
    }

    if (cfg_ok)
        print_comm_plugins(config ? cfg : NULL);

    /* ---- the context a program would get */
    printf("context (what em_context_create gives)\n");
    fflush(stdout);   /* the fallback warning goes to stderr: keep the order readable */
    em_context *ctx = NULL;
    st = em_context_create(&ctx, config);
    if (st == EM_OK) {
        char dev[256];
        snprintf(dev, sizeof dev, "%d: %s", em_context_device_index(ctx), em_context_device_name(ctx));
        wrapped(2, "result:", "ok");
        wrapped(2, "backend:", em_context_backend(ctx));
        wrapped(2, "device:", dev);
        wrapped(2, "config:", em_context_config_source(ctx));
        print_stack(ctx);
        if (em_context_fallback_reason(ctx)) {
            char buf[2048];
            snprintf(buf, sizeof buf, "TAKEN, because: %s", em_context_fallback_reason(ctx));
            wrapped(2, "fallback:", buf);
        } else {
            wrapped(2, "fallback:", "not needed");
        }
    } else {
        char buf[128];
        snprintf(buf, sizeof buf, "FAILED (%s)", em_status_name(st));
        wrapped(2, "result:", buf);
        wrapped(2, "error:", em_last_error());
    }
    em_context_free(ctx);
    em_registry_free(reg);
    em_config_free(cfg);
    free(located);
    free(report);
    return st == EM_OK ? 0 : 2;
}
