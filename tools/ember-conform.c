/* tools/ember-conform.c — the op-level conformance suite, run against any backend: every
 * op of the public API that lowers to a kernel, in f32 and f64, over broadcast, strided,
 * empty, 1-element, 0-dim and large layouts, gradient checks through autograd, and random
 * numbers against <ember/philox.h> and a cpu context. Results are checked against reference
 * loops run in double on the host. Prints a per-op table (pass / fallback / FAIL, the
 * largest error seen and the tolerance), TAP with --tap, or one JSON object with --json (for
 * a vendor's CI: the plugin, its ABI, per-op rows and totals); make check runs it this way on
 * every first-party backend and on the plugin template, so there is one source of truth.
 *
 *   ember-conform [--backend NAME | --library PATH] [--config PATH] [--dtype f32|f64]
 *                 [--filter SUBSTR] [--tap | --json] [--verbose]
 *
 * Uses only the public API (ember.h, info.h). Exit status: 0 when every op passed (ops that
 * ran through the cpu fallback included), 1 when one failed, 2 when the backend could not
 * be opened (in TAP mode that is a SKIP, exit 0, unless EMBER_TEST_REQUIRE names it),
 * 3 for a bad command line. */
#include "conform.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: ember-conform [--backend NAME | --library PATH] [--config PATH]\n"
            "                     [--dtype f32|f64] [--filter SUBSTR] [--tap | --json]\n"
            "                     [--verbose]\n"
            "Run ember's op-level conformance suite on a backend and print, per op, whether it\n"
            "passed, passed through the cpu fallback (its kernel is NULL in the plugin), or\n"
            "failed, with the largest error seen and the tolerance.\n"
            "\n"
            "  --backend NAME  test backend NAME (found like any plugin: EMBER_BACKEND_PATH,\n"
            "                  [backends] path, the install dir, next to libember)\n"
            "  --library PATH  test the plugin file PATH (ember-backend-<name>.so), as\n"
            "                  library= in its device.ini section would\n"
            "  --config PATH   start from this device.ini (default: the one ember locates,\n"
            "                  else built-in defaults); its other settings are kept\n"
            "  --dtype T       only f32 or only f64 (bool cases always run)\n"
            "  --filter S      only ops whose name contains S (\"add\", \"mm\", \".grad\")\n"
            "  --tap           TAP output, one test per op (for make check); a backend with no\n"
            "                  usable device is a SKIP unless EMBER_TEST_REQUIRE names it\n"
            "  --json          one JSON object on stdout instead of the table: the backend,\n"
            "                  plugin file and ABI, per op its kernels, result, checks and\n"
            "                  per dtype the largest error and tolerance, and the totals\n"
            "  --verbose       print every failing check as it happens\n"
            "  --help, --version\n"
            "\n"
            "Without --backend or --library the backend is the one a program would get\n"
            "(device.ini, EMBER_DEVICE). Exit status: 0 all passed, 1 an op failed, 2 the\n"
            "backend could not be opened, 3 usage error.\n");
}

/* "ember-backend-<name>.so" -> name. */
static bool name_from_file(const char *path, char *name, size_t n)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    static const char pre[] = "ember-backend-", suf[] = ".so";
    size_t l = strlen(base), lp = sizeof pre - 1, ls = sizeof suf - 1;
    if (l <= lp + ls || strncmp(base, pre, lp) || strcmp(base + l - ls, suf) || l - lp - ls >= n)
        return false;
    memcpy(name, base + lp, l - lp - ls);
    name[l - lp - ls] = 0;
    return true;
}

/* Prints a JSON value on stdout, with a newline; false when it could not be built. */
static bool json_print(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(j);
    if (!text) {
        fprintf(stderr, "ember-conform: out of memory writing the JSON report\n");
        return false;
    }
    printf("%s\n", text);
    free(text);
    return true;
}

/* The backend could not be opened: a failure, or a SKIP in TAP mode. */
static int unusable(bool tap, bool json, const char *name, const char *why)
{
    char reason[2048];
    snprintf(reason, sizeof reason, "%s", why);
    for (char *p = reason; *p; p++)
        if (*p == '\n')
            *p = ' ';
    if (json) {
        json_print(json_pack("{s:s, s:s, s:s, s:s, s:i}", "tool", "ember-conform", "version",
                             em_version_string(), "backend", name, "unusable", reason,
                             "exit_status", 2));
        return 2;
    }
    if (!tap) {
        fprintf(stderr, "ember-conform: backend %s cannot be used: %s\n", name, reason);
        return 2;
    }
    const char *req = getenv("EMBER_TEST_REQUIRE");
    if (req && strstr(req, name)) {
        printf("1..1\nnot ok 1 - backend %s is required (EMBER_TEST_REQUIRE) but unusable: %s\n",
               name, reason);
        return 1;
    }
    printf("1..0 # SKIP backend %s not usable here: %s\n", name, reason);
    return 0;
}

static int cmp_rows(const void *a, const void *b)
{
    return strcmp(((const cf_row *)a)->op, ((const cf_row *)b)->op);
}

typedef enum { R_PASS, R_FALLBACK, R_FAIL, R_SKIP } row_result;

static row_result result_of(const cf_row *r)
{
    if (r->failures)
        return R_FAIL;
    if (!r->checks)
        return R_SKIP;
    return r->fallback ? R_FALLBACK : R_PASS;
}

static const char *result_name(row_result x)
{
    static const char *const n[] = {"pass", "fallback", "FAIL", "skip"};
    return n[x];
}

/* The kernels column: '*' marks an entry the plugin lacks (the op runs on cpu), '+' one it
 * declares for only some of the enabled dtypes (the others run on cpu), '~' an optional one
 * it lacks (the core composes it from other kernels). */
static void kernels_text(const cf_row *r, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    char k[64];
    for (const char *s = r->kernels; *s && used < n;) {
        size_t w = strcspn(s, " ");
        snprintf(k, sizeof k, "%.*s", (int)w, s);
        const char *mark = "";
        for (int i = 0; cf.info && i < cf.info->kernel_count; i++) {
            if (strcmp(cf.info->kernel_names[i], k))
                continue;
            if (!cf.info->kernel_present[i])
                mark = cf.info->kernel_optional[i] ? "~" : "*";
            else if (cf_kernel_partial(i))
                mark = "+";
        }
        used += (size_t)snprintf(buf + used, n - used, "%s%s%s", used ? " " : "", k, mark);
        s += w;
        s += strspn(s, " ");
    }
}

static void num(char *buf, size_t n, double v, bool tol)
{
    if (tol && v == 0)
        snprintf(buf, n, "exact");
    else if (isinf(v))
        snprintf(buf, n, "inf");
    else
        snprintf(buf, n, "%.2g", v);
}

/* The plugin's non-optional kernels: how many it has, of how many. */
static void kernel_counts(const em_plugin_info *pi, int *have, int *total)
{
    *have = *total = 0;
    for (int k = 0; k < pi->kernel_count; k++)
        if (!pi->kernel_optional[k]) {
            (*total)++;
            *have += pi->kernel_present[k];
        }
}

static void print_header(const char *prefix, const char *name, const char *dtypes)
{
    const em_plugin_info *pi = cf.info;
    printf("%sember-conform %s: backend %s, device %d (%s)\n", prefix, em_version_string(), name,
           em_context_device_index(cf.ctx), em_context_device_name(cf.ctx));
    if (pi) {
        int have, total;
        kernel_counts(pi, &have, &total);
        printf("%s  plugin:     %s (ABI %u.%u, version %s)\n", prefix, pi->path, pi->abi_major,
               pi->abi_minor, pi->version[0] ? pi->version : "?");
        if (have < total && strcmp(name, "cpu"))
            printf("%s  kernels:    implements %d of %d ops; the other %d %s ([device] op_fallback = %s)\n",
                   prefix, have, total, total - have,
                   cf.op_fallback_cpu ? "run on cpu, and are checked all the same" : "fail",
                   cf.op_fallback_cpu ? "cpu" : "error");
        else
            printf("%s  kernels:    implements %d of %d ops\n", prefix, have, total);
    }
    printf("%s  dtypes:     %s\n", prefix, dtypes);
    printf("%s  error:      |got - want| / max(1, |want|); sums and products: / max(1, sum |terms|)\n",
           prefix);
    printf("%s  tolerance:  f32 %g, f64 %g; x sqrt(k) for k summed terms; bool results exact\n", prefix,
           CF_TOL_F32, CF_TOL_F64);
    printf("%s  .grad rows: em_gradcheck, |analytic - numeric| <= atol + rtol |numeric| with f64 (%g, %g),\n"
           "%s              f32 (%g, %g); error shown: |a - n| / max(1, |n|), tolerance atol + rtol\n",
           prefix, CF_GC_ATOL_F64, CF_GC_RTOL_F64, prefix, CF_GC_ATOL_F32, CF_GC_RTOL_F32);
}

static void print_table(const char *prefix)
{
    printf("%s\n%s%-18s %-26s %-8s %6s %9s %8s %9s %8s\n", prefix, prefix, "op", "kernels", "result",
           "checks", "f32 err", "tol", "f64 err", "tol");
    for (int i = 0; i < cf.n_rows; i++) {
        const cf_row *r = &cf.rows[i];
        char kern[128], e[2][16], t[2][16];
        kernels_text(r, kern, sizeof kern);
        for (int b = 0; b < 2; b++) {
            if (r->seen[b]) {
                num(e[b], sizeof e[b], r->err[b], false);
                num(t[b], sizeof t[b], r->tol[b], true);
            } else {
                snprintf(e[b], sizeof e[b], "-");
                snprintf(t[b], sizeof t[b], "-");
            }
        }
        printf("%s%-18s %-26s %-8s %6d %9s %8s %9s %8s\n", prefix, r->op, kern,
               result_name(result_of(r)), r->checks, e[0], t[0], e[1], t[1]);
    }
    printf("%s(kernels: * not implemented by the backend, the op ran on cpu; + implemented for some "
           "dtypes only, the others ran on cpu; ~ optional, composed by the core)\n", prefix);
}

/* One dtype's column of a row: {"max_error", "tolerance"}, or null when no case ran. */
static json_t *json_err(const cf_row *r, int b)
{
    if (!r->seen[b])
        return json_null();
    /* JSON has no infinity: an infinite error (a NaN or infinity where a number was
     * wanted) is written as null, with the row's result saying FAIL */
    return json_pack("{s:o, s:f}", "max_error", isfinite(r->err[b]) ? json_real(r->err[b])
                                                                   : json_null(),
                     "tolerance", r->tol[b]);
}

/* The whole report as one JSON object (--json). */
static bool print_json(const char *name, const char *dtypes, const int count[4], double secs,
                       int rc)
{
    json_t *o = json_object(), *rows = json_array();
    if (!o || !rows) {
        json_decref(o);
        json_decref(rows);
        return json_print(NULL);
    }
    json_object_set_new(o, "tool", json_string("ember-conform"));
    json_object_set_new(o, "version", json_string(em_version_string()));
    json_object_set_new(o, "core_abi", json_string(cf_fmt("%d.%d", EM_ABI_MAJOR, EM_ABI_MINOR)));
    json_object_set_new(o, "backend", json_string(name));
    const char *dev = em_context_device_name(cf.ctx);
    json_object_set_new(o, "device", json_pack("{s:i, s:s}", "index",
                                               em_context_device_index(cf.ctx), "name",
                                               dev ? dev : ""));
    const em_plugin_info *pi = cf.info;
    if (pi) {
        int have, total;
        kernel_counts(pi, &have, &total);
        json_object_set_new(o, "plugin", json_pack("{s:s, s:s, s:s, s:s, s:i, s:i}", "name",
                                                   pi->name, "path", pi->path, "abi",
                                                   cf_fmt("%u.%u", pi->abi_major, pi->abi_minor),
                                                   "version", pi->version ? pi->version : "",
                                                   "kernels_implemented", have,
                                                   "kernels_total", total));
    } else {
        json_object_set_new(o, "plugin", json_null());
    }
    json_t *dts = json_array();
    for (int b = 0; b < 2; b++)
        if (cf.dtype_on[b])
            json_array_append_new(dts, json_string(b ? "f64" : "f32"));
    json_array_append_new(dts, json_string("bool"));
    json_object_set_new(o, "dtypes", dts);
    json_object_set_new(o, "dtypes_note", json_string(dtypes));
    json_object_set_new(o, "op_fallback", json_string(cf.op_fallback_cpu ? "cpu" : "error"));
    json_object_set_new(o, "filter", cf.filter ? json_string(cf.filter) : json_null());
    json_object_set_new(o, "tolerance", json_pack("{s:f, s:f}", "f32", CF_TOL_F32, "f64",
                                                  CF_TOL_F64));
    for (int i = 0; i < cf.n_rows; i++) {
        const cf_row *r = &cf.rows[i];
        char kern[128];
        kernels_text(r, kern, sizeof kern);
        row_result x = result_of(r);
        json_t *row = json_pack("{s:s, s:s, s:s, s:i, s:i, s:o, s:o}", "op", r->op,
                                "kernels", kern, "status",
                                result_name(x), "checks", r->checks, "failures", r->failures,
                                "f32", json_err(r, 0), "f64", json_err(r, 1));
        if (row && r->failures)
            json_object_set_new(row, "first_failure", json_string(r->first_failure));
        if (!row || json_array_append_new(rows, row)) {
            json_decref(o);
            json_decref(rows);
            return json_print(NULL);
        }
    }
    json_object_set_new(o, "ops", rows);
    json_object_set_new(o, "totals", json_pack("{s:i, s:i, s:i, s:i, s:i}", "ops", cf.n_rows,
                                               "pass", count[R_PASS], "fallback",
                                               count[R_FALLBACK], "fail", count[R_FAIL], "skip",
                                               count[R_SKIP]));
    json_object_set_new(o, "seconds", json_real(secs));
    json_object_set_new(o, "exit_status", json_integer(rc));
    return json_print(o);
}

int main(int argc, char **argv)
{
    const char *backend = NULL, *library = NULL, *config = NULL, *dtype = NULL;
    bool tap = false, json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--backend") ? &backend : !strcmp(a, "--library") ? &library
                          : !strcmp(a, "--config") ? &config : !strcmp(a, "--dtype") ? &dtype
                          : !strcmp(a, "--filter") ? &cf.filter : NULL;
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ember-conform: %s needs a value\n", a);
                usage(stderr);
                return 3;
            }
            *slot = argv[++i];
        } else if (!strcmp(a, "--tap")) {
            tap = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            cf.verbose = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("ember-conform (ember) %s, plugin ABI %d.%d\n", em_version_string(), EM_ABI_MAJOR,
                   EM_ABI_MINOR);
            return 0;
        } else {
            fprintf(stderr, "ember-conform: unknown argument '%s'\n", a);
            usage(stderr);
            return 3;
        }
    }
    if (tap && json) {
        fprintf(stderr, "ember-conform: --tap and --json are exclusive\n");
        usage(stderr);
        return 3;
    }
    cf.dtype_on[0] = cf.dtype_on[1] = true;
    if (dtype) {
        if (strcmp(dtype, "f32") && strcmp(dtype, "f64")) {
            fprintf(stderr, "ember-conform: --dtype: expected f32 or f64, got '%s'\n", dtype);
            return 3;
        }
        cf.dtype_on[0] = !strcmp(dtype, "f32");
        cf.dtype_on[1] = !strcmp(dtype, "f64");
    }
    char name[128] = "", libpath[PATH_MAX];
    if (library) {
        if (!name_from_file(library, name, sizeof name)) {
            fprintf(stderr, "ember-conform: --library %s: a plugin file is named "
                    "ember-backend-<name>.so\n", library);
            return 3;
        }
        if (!realpath(library, libpath)) {
            fprintf(stderr, "ember-conform: --library %s: no such file\n", library);
            return 3;
        }
        if (backend && strcmp(backend, name)) {
            fprintf(stderr, "ember-conform: --backend %s and --library %s name different backends\n",
                    backend, library);
            return 3;
        }
    } else if (backend) {
        snprintf(name, sizeof name, "%s", backend);
    }

    /* The configuration: --config, else the device.ini a program would use, else the
     * defaults; then the backend under test on top. */
    em_config *cfg = em_config_create();
    if (!cfg) {
        fprintf(stderr, "ember-conform: %s\n", em_last_error());
        return 2;
    }
    char *located = config ? NULL : em_config_locate(NULL);
    const char *file = config ? config : located;
    if (file && em_config_load_file(cfg, file) != EM_OK) {
        fprintf(stderr, "ember-conform: %s\n", em_last_error());
        free(located);
        em_config_free(cfg);
        return 2;
    }
    free(located);
    if (name[0]) {
        /* the command line wins over EMBER_DEVICE too */
        unsetenv("EMBER_DEVICE");
        em_status st = em_config_set(cfg, "device", "backend", name);
        if (st == EM_OK && library)
            st = em_config_set(cfg, name, "library", libpath);
        if (st != EM_OK) {
            fprintf(stderr, "ember-conform: %s\n", em_last_error());
            em_config_free(cfg);
            return 3;
        }
    } else {
        const char *dev = getenv("EMBER_DEVICE");
        const char *b = em_config_get(cfg, "device", "backend");
        snprintf(name, sizeof name, "%s", dev && *dev ? dev : b ? b : "cpu");
        name[strcspn(name, ":")] = 0;
    }
    const char *of = em_config_get(cfg, "device", "op_fallback");
    cf.op_fallback_cpu = !of || strcmp(of, "error") != 0;

    int rc = 0;
    em_registry *reg = NULL;
    if (em_context_create_with(&cf.ctx, cfg) != EM_OK) {
        rc = unusable(tap, json, name, em_last_error());
        goto out;
    }
    if (em_context_fallback_reason(cf.ctx)) {
        char why[2048];
        snprintf(why, sizeof why, "[device] fallback '%s' was taken instead: %s",
                 em_context_backend(cf.ctx), em_context_fallback_reason(cf.ctx));
        rc = unusable(tap, json, name, why);
        goto out;
    }
    snprintf(name, sizeof name, "%s", em_context_backend(cf.ctx));
    unsetenv("EMBER_DEVICE");   /* it would redirect the cpu context below */

    /* The plugin's kernel table, as the registry sees it: which ops fall back. */
    if (em_registry_scan(cfg, &reg) == EM_OK) {
        for (int i = 0; i < em_registry_plugin_count(reg); i++) {
            const em_plugin_info *pi = em_registry_plugin(reg, i);
            if (!strcmp(pi->name, name) && !pi->shadowed_by && pi->stage == EM_STAGE_READY)
                cf.info = pi;
        }
    }
    char dtypes[128];
    snprintf(dtypes, sizeof dtypes, "%s%sbool", cf.dtype_on[0] ? "f32 " : "", cf.dtype_on[1] ? "f64 " : "");
    if (cf.info && cf.dtype_on[1]) {
        int d = em_context_device_index(cf.ctx);
        if (d >= 0 && d < cf.info->device_count && !cf.info->devices[d].fp64) {
            cf.dtype_on[1] = false;
            snprintf(dtypes, sizeof dtypes, "%sbool (f64 skipped: the device reports no fp64)",
                     cf.dtype_on[0] ? "f32 " : "");
        }
    }

    /* A cpu context on the same configuration: the RNG must agree with it. */
    em_config_set(cfg, "device", "backend", "cpu");
    em_config_set(cfg, "device", "index", "0");
    static char cpu_why[1024];
    if (em_context_create_with(&cf.cpu, cfg) != EM_OK) {
        snprintf(cpu_why, sizeof cpu_why, "%s", em_last_error());
        cf.cpu_why = cpu_why;
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cf_run_memory();
    cf_run_creation();
    cf_run_rng();
    cf_run_copy();
    cf_run_elementwise();
    cf_run_inplace();
    cf_run_reduce();
    cf_run_gemm();
    cf_run_int();
    cf_run_math();
    cf_run_dim();
    cf_run_index();
    cf_run_optim();
    cf_run_norm();
    cf_run_conv();
    cf_run_grad();
    cf_run_abi();
    cf.cfg = cfg;
    cf_run_direct();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);

    qsort(cf.rows, (size_t)cf.n_rows, sizeof cf.rows[0], cmp_rows);
    int count[4] = {0};
    for (int i = 0; i < cf.n_rows; i++)
        count[result_of(&cf.rows[i])]++;
    if (count[R_FAIL])
        rc = 1;
    if (json) {
        if (!print_json(name, dtypes, count, secs, rc))
            rc = 2;
        goto out;
    }
    const char *prefix = tap ? "# " : "";
    if (tap) {
        printf("1..%d\n", cf.n_rows);
        for (int i = 0; i < cf.n_rows; i++) {
            const cf_row *r = &cf.rows[i];
            row_result x = result_of(r);
            if (x == R_FAIL)
                printf("not ok %d - %s: FAIL (%d of %d checks)%s: %s\n", i + 1, r->op, r->failures,
                       r->checks, r->fallback ? " [ran on cpu: fallback]" : "", r->first_failure);
            else if (x == R_SKIP)
                printf("ok %d - %s # SKIP no case for the enabled dtypes\n", i + 1, r->op);
            else
                printf("ok %d - %s: %s (%d checks)\n", i + 1, r->op, result_name(x), r->checks);
        }
    }
    print_header(prefix, name, dtypes);
    if (!cf.cpu)
        printf("%s  note:       no cpu context (%s): RNG agreement with cpu not checked\n", prefix,
               cf.cpu_why ? cf.cpu_why : "?");
    if (!cf.info)
        printf("%s  note:       the plugin's kernel table is unknown (registry scan failed)\n", prefix);
    if (cf.filter)
        printf("%s  filter:     ops containing \"%s\"\n", prefix, cf.filter);
    print_table(prefix);
    printf("%s\n%s%d ops: %d pass, %d pass through the cpu fallback, %d FAIL%s%s (%.1f s)\n", prefix,
           prefix, cf.n_rows, count[R_PASS], count[R_FALLBACK], count[R_FAIL],
           count[R_SKIP] ? ", skipped: " : "", count[R_SKIP] ? cf_fmt("%d", count[R_SKIP]) : "", secs);
    if (count[R_FAIL]) {
        printf("%s\n", prefix);
        for (int i = 0; i < cf.n_rows; i++)
            if (cf.rows[i].failures)
                printf("%sFAIL %s (%d of %d checks failed): %s\n", prefix, cf.rows[i].op,
                       cf.rows[i].failures, cf.rows[i].checks, cf.rows[i].first_failure);
        rc = 1;
    }
out:
    em_context_free(cf.cpu);
    em_context_free(cf.ctx);
    em_registry_free(reg);
    em_config_free(cfg);
    cf_tmp_shutdown();
    return rc;
}
