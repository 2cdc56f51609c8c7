/* backends/opencl/opencl.c — the OpenCL backend's entry point and everything that is not
 * a kernel: its [opencl] config keys, the device list (platforms filtered by platform= and
 * type=), device properties for ember-info, the context and in-order queue of an opened
 * device, buffers and copies, and the one program built per device_open from the source
 * embedded at build time (kernels.cl), with an on-disk cache of the compiled binary.
 * Built as ember-backend-opencl.so; links only the OpenCL ICD loader.
 *
 * A machine without OpenCL (no ICD vendors, no platform, no device of the wanted type) is
 * not an error of the plugin: the entry succeeds and device_count says why there is no
 * device, so [device] fallback can take over. */
#include "opencl.h"

#include "backends/opencl/opencl_source.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OCL_VERSION "0.1.0"

static const char *const ocl_config_keys[] = {"platform", "device", "type", "cache", NULL};

/* ------------------------------------------------------------------ small helpers */

const char *ocl_error_name(cl_int err, char *buf, size_t n)
{
    switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE)
    E(CL_COMPILER_NOT_AVAILABLE) E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES)
    E(CL_OUT_OF_HOST_MEMORY) E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP)
    E(CL_IMAGE_FORMAT_MISMATCH) E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE)
    E(CL_MAP_FAILURE) E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) E(CL_COMPILE_PROGRAM_FAILURE)
    E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE) E(CL_DEVICE_PARTITION_FAILED)
    E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE)
    E(CL_INVALID_CONTEXT) E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE)
    E(CL_INVALID_HOST_PTR) E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    E(CL_INVALID_IMAGE_SIZE) E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY)
    E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE)
    E(CL_INVALID_KERNEL_NAME) E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL)
    E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE)
    E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE)
    E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST)
    E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT)
    E(CL_INVALID_BUFFER_SIZE) E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE)
    E(CL_INVALID_PROPERTY) E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS)
    E(CL_INVALID_LINKER_OPTIONS) E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    /* OpenCL 2.x/3.0 and extension codes, by value: the 1.2 headers do not name them */
    case -69: return "CL_INVALID_PIPE_SIZE";
    case -70: return "CL_INVALID_DEVICE_QUEUE";
    case -71: return "CL_INVALID_SPEC_ID";
    case -72: return "CL_MAX_SIZE_RESTRICTION_EXCEEDED";
    case -1000: return "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    case -1002: return "CL_INVALID_D3D10_DEVICE_KHR";
    case -1057: return "CL_DEVICE_PARTITION_FAILED_EXT";
    case -1092: return "CL_INVALID_EGL_OBJECT_KHR";
    default:
        snprintf(buf, n, "CL error %d", (int)err);
        return buf;
    }
}

em_status ocl_fail(ocl_dev *d, const char *api, cl_int err)
{
    char e[48];
    em_status st = err == CL_OUT_OF_HOST_MEMORY ? EM_ERR_OOM : EM_ERR_BACKEND;
    return OCL_ERR(d, st, "%s: %s", api, ocl_error_name(err, e, sizeof e));
}

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* case-insensitive strstr */
static int icontains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

/* A plain non-negative decimal below 2^31: 1, 0 not a number, -1 too large. */
static int parse_index(const char *s, int *out)
{
    unsigned long long v;
    int r = emk_parse_uint(s, 0x7fffffff, &v);
    if (r == 1)
        *out = (int)v;
    return r;
}

/* clGetPlatformInfo / clGetDeviceInfo string, always NUL-terminated ("" on failure). */
static void platform_str(cl_platform_id p, cl_platform_info what, char *buf, size_t n)
{
    buf[0] = 0;
    if (clGetPlatformInfo(p, what, n, buf, NULL) != CL_SUCCESS)
        buf[0] = 0;
    buf[n - 1] = 0;
}

static void device_str(cl_device_id dv, cl_device_info what, char *buf, size_t n)
{
    buf[0] = 0;
    if (clGetDeviceInfo(dv, what, n, buf, NULL) != CL_SUCCESS)
        buf[0] = 0;
    buf[n - 1] = 0;
}

/* Extensions can be several KiB: ask for the size first. Returns malloc'd text or NULL. */
static char *device_extensions(cl_device_id dv)
{
    size_t n = 0;
    if (clGetDeviceInfo(dv, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return NULL;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (clGetDeviceInfo(dv, CL_DEVICE_EXTENSIONS, n, s, NULL) != CL_SUCCESS) {
        free(s);
        return NULL;
    }
    s[n] = 0;
    return s;
}

/* Whole-word match in a space-separated extension list. */
static int has_word(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; p && (p = strstr(p, w)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == 0 || p[n] == ' '))
            return 1;
    return 0;
}

/* EMBER_OPENCL_NO_FP64=1 pretends the device lacks cl_khr_fp64: how the tests reach the
 * "f64 on a device without fp64" path on hardware that has it */
static int fp64_hidden(void)
{
    const char *v = getenv("EMBER_OPENCL_NO_FP64");
    return v && *v && strcmp(v, "0");
}

static int device_has(cl_device_id dv, const char *extension)
{
    char *ext = device_extensions(dv);
    int yes = ext && has_word(ext, extension);
    free(ext);
    return yes;
}

/* ------------------------------------------------------------------ device list */

static const char *type_word(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return "GPU";
    if (t & CL_DEVICE_TYPE_CPU)
        return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return "accelerator";
    return "other";
}

/* Enumerate once per instance: the list and, when empty, the reason. */
static void enumerate(ocl_inst *in)
{
    if (in->enumerated)
        return;
    in->enumerated = 1;
    in->enum_status = EM_ERR_NO_DEVICE;
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    char e[48];
    if (err != CL_SUCCESS || np == 0) {
        const char *vend = getenv("OCL_ICD_VENDORS");
        char why[300];
        if (vend && *vend)
            snprintf(why, sizeof why, "no ICD vendors found; OCL_ICD_VENDORS=%s", vend);
        else
            snprintf(why, sizeof why, "no ICD vendors found in /etc/OpenCL/vendors: install a "
                     "driver, e.g. the Debian package pocl-opencl-icd");
        if (err != CL_SUCCESS)
            snprintf(in->enum_msg, sizeof in->enum_msg, "no OpenCL device: clGetPlatformIDs: %s (%s)",
                     ocl_error_name(err, e, sizeof e), why);
        else
            snprintf(in->enum_msg, sizeof in->enum_msg, "no OpenCL device: no OpenCL platform (%s)",
                     why);
        return;
    }
    cl_platform_id *plats = in->host->alloc(in->hc, sizeof *plats * np);
    if (!plats)
        goto oom;
    if ((err = clGetPlatformIDs(np, plats, NULL)) != CL_SUCCESS) {
        snprintf(in->enum_msg, sizeof in->enum_msg, "no OpenCL device: clGetPlatformIDs: %s",
                 ocl_error_name(err, e, sizeof e));
        in->host->free(in->hc, plats);
        return;
    }
    /* which platforms: platform=N, platform=substring, or all */
    char names[320] = "";   /* "0 'A', 1 'B'" for messages */
    size_t used = 0;
    int sel[64], nsel = 0;
    for (cl_uint i = 0; i < np && i < 64; i++) {
        char pn[128];
        platform_str(plats[i], CL_PLATFORM_NAME, pn, sizeof pn);
        if (used < sizeof names)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%u '%s'",
                                     i ? ", " : "", (unsigned)i, pn);
        int take = in->platform_index >= 0 ? (int)i == in->platform_index
                   : in->platform_name[0] ? icontains(pn, in->platform_name)
                                          : 1;
        if (take)
            sel[nsel++] = (int)i;
    }
    if (nsel == 0) {
        if (in->platform_index >= 0)
            snprintf(in->enum_msg, sizeof in->enum_msg, "no OpenCL device: platform=%d, but there "
                     "%s %u OpenCL platform%s (%.300s)", in->platform_index, np == 1 ? "is" : "are",
                     (unsigned)np, np == 1 ? "" : "s", names);
        else
            snprintf(in->enum_msg, sizeof in->enum_msg, "no OpenCL device: no OpenCL platform name "
                     "contains '%.100s' (platforms: %.300s)", in->platform_name, names);
        in->host->free(in->hc, plats);
        return;
    }
    /* devices of the selected platforms, in order */
    int cap = 0, n = 0;
    ocl_devref *devs = NULL;
    char tried[200] = "";
    used = 0;
    for (int s = 0; s < nsel; s++) {
        cl_platform_id p = plats[sel[s]];
        char pn[128];
        platform_str(p, CL_PLATFORM_NAME, pn, sizeof pn);
        if (used < sizeof tried)
            used += (size_t)snprintf(tried + used, sizeof tried - used, "%s'%s'", s ? ", " : "", pn);
        cl_uint nd = 0;
        err = clGetDeviceIDs(p, in->type, 0, NULL, &nd);
        if (err == CL_DEVICE_NOT_FOUND || nd == 0)
            continue;
        if (err != CL_SUCCESS) {
            in->host->log(in->hc, EM_LOG_WARN, "clGetDeviceIDs on platform '%s': %s", pn,
                          ocl_error_name(err, e, sizeof e));
            continue;
        }
        if (n + (int)nd > cap) {
            int ncap = n + (int)nd + 4;
            ocl_devref *nv = in->host->alloc(in->hc, sizeof *nv * (size_t)ncap);
            if (!nv) {
                in->host->free(in->hc, devs);
                in->host->free(in->hc, plats);
                goto oom;
            }
            if (devs)
                memcpy(nv, devs, sizeof *nv * (size_t)n);
            in->host->free(in->hc, devs);
            devs = nv;
            cap = ncap;
        }
        cl_device_id *ids = in->host->alloc(in->hc, sizeof *ids * nd);
        if (!ids) {
            in->host->free(in->hc, devs);
            in->host->free(in->hc, plats);
            goto oom;
        }
        if (clGetDeviceIDs(p, in->type, nd, ids, NULL) == CL_SUCCESS)
            for (cl_uint j = 0; j < nd; j++) {
                devs[n].platform = p;
                devs[n].device = ids[j];
                n++;
            }
        in->host->free(in->hc, ids);
    }
    in->host->free(in->hc, plats);
    if (n == 0) {
        in->host->free(in->hc, devs);
        if (in->type == CL_DEVICE_TYPE_ALL)
            snprintf(in->enum_msg, sizeof in->enum_msg, "no OpenCL device on platform%s %s",
                     nsel == 1 ? "" : "s", tried);
        else
            snprintf(in->enum_msg, sizeof in->enum_msg,
                     "no OpenCL device of type %s on platform%s %s (type= in [opencl])",
                     in->type_text, nsel == 1 ? "" : "s", tried);
        return;
    }
    in->devs = devs;
    in->ndev = n;
    in->enum_status = EM_OK;
    in->enum_msg[0] = 0;
    return;
oom:
    /* not remembered: the next call tries again */
    in->enumerated = 0;
    in->enum_status = EM_ERR_OOM;
    snprintf(in->enum_msg, sizeof in->enum_msg, "out of memory listing OpenCL devices");
}

static em_status ocl_device_count(void *bctx, int *count)
{
    ocl_inst *in = bctx;
    enumerate(in);
    *count = in->ndev;
    if (in->enum_status != EM_OK)
        return in->host->error(in->hc, in->enum_status, "%s", in->enum_msg);
    return EM_OK;
}

static em_status bad_index(ocl_inst *in, int index)
{
    if (in->enum_status != EM_OK)
        return in->host->error(in->hc, in->enum_status, "%s", in->enum_msg);
    return in->host->error(in->hc, EM_ERR_NO_DEVICE, "no OpenCL device %d (%d device%s: indices "
                           "0..%d)", index, in->ndev, in->ndev == 1 ? "" : "s", in->ndev - 1);
}

static void human_bytes(uint64_t b, char *buf, size_t n)
{
    if (b >= ((uint64_t)1 << 30) && b % ((uint64_t)1 << 30) == 0)
        snprintf(buf, n, "%llu GiB", (unsigned long long)(b >> 30));
    else if (b >= ((uint64_t)1 << 30))
        snprintf(buf, n, "%.1f GiB", (double)b / (double)((uint64_t)1 << 30));
    else if (b >= ((uint64_t)1 << 20))
        snprintf(buf, n, "%llu MiB", (unsigned long long)(b >> 20));
    else
        snprintf(buf, n, "%llu KiB", (unsigned long long)(b >> 10));
}

/* Append one "key: value" line to buf (n bytes, *used so far); a line that does not fit
 * is cut, never the NUL. */
static void add_line(char *buf, size_t n, size_t *used, const char *fmt, ...) EM_PRINTF(4, 5);
static void add_line(char *buf, size_t n, size_t *used, const char *fmt, ...)
{
    if (*used + 2 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *used, n - *used - 1, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    *used += (size_t)w < n - *used - 1 ? (size_t)w : n - *used - 2;
    buf[(*used)++] = '\n';
    buf[*used] = 0;
}

/* "OpenCL 3.0 PoCL HSTR: ..." -> "OpenCL 3.0" */
static void short_version(const char *v, char *buf, size_t n)
{
    size_t len = strlen(v);
    const char *sp = strchr(v, ' ');
    if (sp && !strncmp(v, "OpenCL ", 7))
        sp = strchr(sp + 1, ' ');
    if (sp)
        len = (size_t)(sp - v);
    if (len >= n)
        len = n - 1;
    memcpy(buf, v, len);
    buf[len] = 0;
}

static em_status ocl_device_props(void *bctx, int index, em_device_props *props)
{
    ocl_inst *in = bctx;
    enumerate(in);
    if (index < 0 || index >= in->ndev)
        return bad_index(in, index);
    cl_platform_id p = in->devs[index].platform;
    cl_device_id dv = in->devs[index].device;
    /* a core of an older minor passes a shorter struct: clear and fill only what it has */
    size_t psize = props->struct_size < sizeof *props ? props->struct_size : sizeof *props;
    if (psize < offsetof(em_device_props, flags))
        return in->host->error(in->hc, EM_ERR_INVALID, "device_props: struct_size %zu is "
                               "smaller than ABI 1.0's em_device_props", props->struct_size);
    memset((char *)props + sizeof props->struct_size, 0, psize - sizeof props->struct_size);
    device_str(dv, CL_DEVICE_NAME, props->name, sizeof props->name);
    device_str(dv, CL_DEVICE_VENDOR, props->vendor, sizeof props->vendor);
    char dver[160], drv[64], cver[64], pname[128], pver[160], sv[32];
    device_str(dv, CL_DEVICE_VERSION, dver, sizeof dver);
    device_str(dv, CL_DRIVER_VERSION, drv, sizeof drv);
    device_str(dv, CL_DEVICE_OPENCL_C_VERSION, cver, sizeof cver);
    platform_str(p, CL_PLATFORM_NAME, pname, sizeof pname);
    platform_str(p, CL_PLATFORM_VERSION, pver, sizeof pver);
    short_version(dver, sv, sizeof sv);
    snprintf(props->driver, sizeof props->driver, "%.20s, driver %.30s", sv, drv);
    cl_ulong gmem = 0, lmem = 0, maxalloc = 0;
    cl_uint cu = 0;
    size_t wg = 0;
    cl_device_type type = 0;
    clGetDeviceInfo(dv, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
    clGetDeviceInfo(dv, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    clGetDeviceInfo(dv, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL);
    clGetDeviceInfo(dv, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo(dv, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    clGetDeviceInfo(dv, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    props->total_memory = gmem;
    props->compute_units = cu;
    char *ext = device_extensions(dv);
    /* the test knob below applies here too: the core decides from props whether to pass f64 */
    props->fp64 = ext && has_word(ext, "cl_khr_fp64") && !fp64_hidden();
    /* extensions that matter to ember (or to someone tuning it) */
    static const char *const interesting[] = {"cl_khr_fp64", "cl_khr_fp16",
                                              "cl_khr_int64_base_atomics",
                                              "cl_khr_subgroups", "cl_intel_subgroups",
                                              "cl_khr_il_program", NULL};
    char exts[200] = "";
    size_t eu = 0;
    for (int i = 0; interesting[i]; i++)
        if (ext && has_word(ext, interesting[i]) && eu < sizeof exts)
            eu += (size_t)snprintf(exts + eu, sizeof exts - eu, "%s%s", eu ? " " : "",
                                   interesting[i]);
    free(ext);
    char lm[32], ma[32];
    human_bytes(lmem, lm, sizeof lm);
    human_bytes(maxalloc, ma, sizeof ma);
    /* line by line, so a long one truncates itself and leaves room for the rest */
    size_t u = 0;
    char *x = props->extra;
    const size_t xn = sizeof props->extra;
    add_line(x, xn, &u, "platform: %.60s (%.70s)", pname, pver);
    add_line(x, xn, &u, "type: %s", type_word(type));
    add_line(x, xn, &u, "device version: %.80s", dver);
    add_line(x, xn, &u, "OpenCL C: %.40s", cver);
    add_line(x, xn, &u, "max work-group size: %zu", wg);
    add_line(x, xn, &u, "local memory: %s", lm);
    add_line(x, xn, &u, "max allocation: %s", ma);
    add_line(x, xn, &u, "extensions: %s", exts[0] ? exts : "(none of interest)");
    /* buffers are cl_mem handles, not host pointers: never EM_DEVICE_HOST_BUFFERS, even on
     * a CPU device (the memset left flags 0 where the struct has it) */
    return EM_OK;
}

/* ------------------------------------------------------------------ program cache */

/* 64-bit FNV-1a, run twice with different offsets for a 128-bit key: not cryptographic,
 * only a name for a file of compiled code, whose content is then verified. */
typedef struct hash128 {
    uint64_t a, b;
} hash128;

static void hash_bytes(hash128 *h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h->a = (h->a ^ p[i]) * 0x100000001b3ULL;
        h->b = (h->b ^ p[i]) * 0x100000001b3ULL;
    }
    /* a separator, so ("ab", "c") and ("a", "bc") differ */
    h->a = (h->a ^ 0xffu) * 0x100000001b3ULL;
    h->b = (h->b ^ 0xfeu) * 0x100000001b3ULL;
}

static uint64_t checksum(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

#define CACHE_MAGIC "EMBROCL1"

/* $XDG_CACHE_HOME/ember/opencl or ~/.cache/ember/opencl, created if need be; 0 if there
 * is no usable place (never an error: the cache only saves time). */
static int cache_dir(char *buf, size_t n, int create)
{
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int len;
    if (x && x[0] == '/')
        len = snprintf(buf, n, "%s/ember/opencl", x);
    else if (home && home[0] == '/')
        len = snprintf(buf, n, "%s/.cache/ember/opencl", home);
    else
        return 0;
    if (len < 0 || (size_t)len >= n)
        return 0;
    if (!create)
        return 1;
    for (char *s = buf + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            mkdir(buf, 0700);
            *s = '/';
        }
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return 0;
    return 1;
}

static void cache_path(const hash128 *key, char *buf, size_t n, int create, int *ok)
{
    char dir[4000];
    *ok = cache_dir(dir, sizeof dir, create);
    if (*ok)
        snprintf(buf, n, "%s/%016llx%016llx.bin", dir, (unsigned long long)key->a,
                 (unsigned long long)key->b);
}

/* The program binary stored at path, or NULL (missing, short, corrupt). */
static unsigned char *cache_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char hdr[24];
    unsigned char *bin = NULL;
    if (fread(hdr, 1, sizeof hdr, f) == sizeof hdr && !memcmp(hdr, CACHE_MAGIC, 8)) {
        uint64_t n, sum;
        memcpy(&n, hdr + 8, 8);
        memcpy(&sum, hdr + 16, 8);
        if (n > 0 && n < ((uint64_t)1 << 31) && (bin = malloc((size_t)n))) {
            if (fread(bin, 1, (size_t)n, f) != (size_t)n || fgetc(f) != EOF ||
                checksum(bin, (size_t)n) != sum) {
                free(bin);
                bin = NULL;
            } else {
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return bin;
}

/* Write to a private temporary name, then rename: a concurrent reader sees either the
 * old file or the complete new one. */
static int cache_write(const char *path, const unsigned char *bin, size_t n)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.%ld.%ld.tmp", path, (long)getpid(), (long)time(NULL));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return 0;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return 0;
    }
    unsigned char hdr[24];
    uint64_t len = n, sum = checksum(bin, n);
    memcpy(hdr, CACHE_MAGIC, 8);
    memcpy(hdr + 8, &len, 8);
    memcpy(hdr + 16, &sum, 8);
    int ok = fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr && fwrite(bin, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ program build */

/* The build log (malloc'd, NUL-terminated) or NULL. */
static char *build_log(cl_program prog, cl_device_id dv)
{
    size_t n = 0;
    if (clGetProgramBuildInfo(prog, dv, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS || !n)
        return NULL;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (clGetProgramBuildInfo(prog, dv, CL_PROGRAM_BUILD_LOG, n, s, NULL) != CL_SUCCESS) {
        free(s);
        return NULL;
    }
    s[n] = 0;
    return s;
}

/* Report a failed build: the error names the call and the first lines of the log (the
 * core keeps ~500 bytes); the whole log goes to the error log, a line at a time. */
static em_status build_failed(ocl_dev *d, cl_program prog, cl_int err)
{
    char e[48];
    char *log = build_log(prog, d->device);
    const char *l = log ? log : "";
    while (*l == '\n' || *l == ' ')
        l++;
    if (log) {
        int lines = 0;
        for (const char *s = l; *s && lines < 200; lines++) {
            size_t len = strcspn(s, "\n");
            if (len)
                d->host->log(d->hc, EM_LOG_ERROR, "build log: %.*s", (int)(len < 800 ? len : 800), s);
            s += len;
            if (*s)
                s++;
        }
    }
    char head[360];
    size_t len = strlen(l);
    if (len >= sizeof head) {
        memcpy(head, l, sizeof head - 4);
        memcpy(head + sizeof head - 4, "...", 4);
    } else {
        memcpy(head, l, len + 1);
    }
    for (char *s = head; *s; s++)
        if (*s == '\n')
            *s = ' ';
    free(log);
    return OCL_ERR(d, EM_ERR_BACKEND, "clBuildProgram for device '%.60s': %s; build log: %s",
                   d->name, ocl_error_name(err, e, sizeof e), head[0] ? head : "(empty)");
}

static void build_options(const ocl_dev *d, char *buf, size_t n)
{
    cl_device_fp_config fcfg = 0;
    clGetDeviceInfo(d->device, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fcfg, &fcfg, NULL);
    /* - correctly rounded f32 division and sqrt where the device can: div_scalar must be
     *   a true division, and results should match the cpu backend;
     * - -w: the kernels are ours, and some drivers print the compiler's "N warnings
     *   generated" on the application's stderr (PoCL does);
     * - EMBER_OPENCL_BUILD_OPTIONS replaces -w: extra options for experiments (-Werror)
     *   and for the tests, which make the build fail on purpose. Options are part of the
     *   cache key. */
    const char *extra = getenv("EMBER_OPENCL_BUILD_OPTIONS");
    snprintf(buf, n, "-D EM_LS=%zu -D EM_GEMM_TS=%d%s%s%s %.200s", d->rls, d->gemm_ts,
             d->fp64 ? " -D EM_FP64" : "", d->int64_atomics ? " -D EM_INT64_ATOMICS" : "",
             (fcfg & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) ? " -cl-fp32-correctly-rounded-divide-sqrt" : "",
             extra && *extra ? extra : "-w");
}

static hash128 cache_key(const ocl_dev *d, const char *opts)
{
    hash128 h = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
    char s[512];
    static const char tag[] = "ember-opencl-program-cache-1";
    hash_bytes(&h, tag, sizeof tag);
    platform_str(d->platform, CL_PLATFORM_NAME, s, sizeof s);
    hash_bytes(&h, s, strlen(s));
    platform_str(d->platform, CL_PLATFORM_VERSION, s, sizeof s);
    hash_bytes(&h, s, strlen(s));
    device_str(d->device, CL_DEVICE_NAME, s, sizeof s);
    hash_bytes(&h, s, strlen(s));
    device_str(d->device, CL_DEVICE_VERSION, s, sizeof s);
    hash_bytes(&h, s, strlen(s));
    device_str(d->device, CL_DRIVER_VERSION, s, sizeof s);
    hash_bytes(&h, s, strlen(s));
    hash_bytes(&h, opts, strlen(opts));
    hash_bytes(&h, ocl_source, sizeof ocl_source - 1);
    return h;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* From the cache, or NULL (any failure: the caller builds from source). */
static cl_program load_cached(ocl_dev *d, const char *path, const char *opts)
{
    size_t len = 0;
    unsigned char *bin = cache_read(path, &len);
    if (!bin)
        return NULL;
    const unsigned char *bins[1] = {bin};
    cl_int bst = CL_SUCCESS, err;
    cl_program prog = clCreateProgramWithBinary(d->ctx, 1, &d->device, &len, bins, &bst, &err);
    free(bin);
    if (!prog || err != CL_SUCCESS || bst != CL_SUCCESS) {
        if (prog)
            clReleaseProgram(prog);
        d->host->log(d->hc, EM_LOG_DEBUG, "program cache %s unusable; building from source", path);
        return NULL;
    }
    if (clBuildProgram(prog, 1, &d->device, opts, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(prog);
        d->host->log(d->hc, EM_LOG_DEBUG, "program cache %s did not build; building from source",
                     path);
        return NULL;
    }
    return prog;
}

static void store_cached(ocl_dev *d, const char *path)
{
    size_t len = 0;
    if (clGetProgramInfo(d->prog, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS ||
        len == 0)
        return;
    unsigned char *bin = malloc(len);
    if (!bin)
        return;
    unsigned char *bins[1] = {bin};
    if (clGetProgramInfo(d->prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS) {
        if (cache_write(path, bin, len))
            d->host->log(d->hc, EM_LOG_INFO, "program stored in the cache: %s", path);
        else
            d->host->log(d->hc, EM_LOG_DEBUG, "cannot write the program cache %s (%s); "
                         "continuing without it", path, strerror(errno));
    }
    free(bin);
}

/* PoCL keeps its own cache of compiled kernels ($POCL_CACHE_DIR, else
 * ~/.cache/pocl/kcache) and compiles each kernel on first use; asking it for the program
 * binary makes it compile every kernel at once (~25 s for this program on 2 cores, against
 * ~0.1 s per kernel actually used). So cache=auto (the default) leaves PoCL to its own
 * cache and stores binaries for every other platform. */
static int is_pocl(cl_platform_id p)
{
    char s[128];
    platform_str(p, CL_PLATFORM_NAME, s, sizeof s);
    if (icontains(s, "Portable Computing Language"))
        return 1;
    platform_str(p, CL_PLATFORM_VENDOR, s, sizeof s);
    return icontains(s, "pocl");
}

/* The program for d: from the disk cache when a valid entry exists, else from source
 * (then stored). Kernels are created right after, all of them, once. */
static em_status build_program(ocl_dev *d)
{
    char opts[512];
    build_options(d, opts, sizeof opts);
    char path[4200];
    int have_path = 0;
    hash128 key = {0, 0};
    const int use_cache = d->inst->cache > 0 || (d->inst->cache < 0 && !is_pocl(d->platform));
    if (use_cache) {
        key = cache_key(d, opts);
        cache_path(&key, path, sizeof path, 0, &have_path);
    }
    double t0 = now_ms();
    if (have_path && (d->prog = load_cached(d, path, opts))) {
        d->from_cache = 1;
        d->host->log(d->hc, EM_LOG_INFO, "program loaded from the cache in %.0f ms: %s",
                     now_ms() - t0, path);
        return EM_OK;
    }
    const char *src = ocl_source;
    size_t srclen = sizeof ocl_source - 1;
    cl_int err;
    d->prog = clCreateProgramWithSource(d->ctx, 1, &src, &srclen, &err);
    if (!d->prog || err != CL_SUCCESS) {
        d->prog = NULL;
        return ocl_fail(d, "clCreateProgramWithSource", err);
    }
    err = clBuildProgram(d->prog, 1, &d->device, opts, NULL, NULL);
    if (err != CL_SUCCESS)
        return build_failed(d, d->prog, err);
    d->host->log(d->hc, EM_LOG_INFO, "program built from source in %.0f ms (options: %s)",
                 now_ms() - t0, opts);
    char *blog = build_log(d->prog, d->device);
    if (blog) {
        /* a clean build has an empty log; anything else is worth a look when debugging */
        for (const char *l = blog; *l;) {
            size_t len = strcspn(l, "\n");
            if (len)
                d->host->log(d->hc, EM_LOG_DEBUG, "build log: %.*s", (int)(len < 800 ? len : 800), l);
            l += len;
            if (*l)
                l++;
        }
        free(blog);
    }
    if (use_cache) {
        cache_path(&key, path, sizeof path, 1, &have_path);
        if (have_path)
            store_cached(d, path);
        else
            d->host->log(d->hc, EM_LOG_DEBUG, "no usable program cache directory; continuing "
                         "without it");
    }
    return EM_OK;
}

/* ------------------------------------------------------------------ devices */

static void device_free(ocl_dev *d)
{
    ocl_async_release(d);
    ocl_release_kernels(d);
    if (d->scratch)
        clReleaseMemObject(d->scratch);
    if (d->prog)
        clReleaseProgram(d->prog);
    if (d->q)
        clReleaseCommandQueue(d->q);
    if (d->ctx)
        clReleaseContext(d->ctx);
    d->host->free(d->hc, d);
}

static em_status ocl_device_open(void *bctx, int index, void **out)
{
    ocl_inst *in = bctx;
    enumerate(in);
    if (index < 0) {
        index = in->default_device >= 0 ? in->default_device : 0;
        if (in->enum_status == EM_OK && index >= in->ndev)
            return in->host->error(in->hc, EM_ERR_NO_DEVICE, "device=%d in [opencl], but there "
                                   "%s %d OpenCL device%s (indices 0..%d)", index,
                                   in->ndev == 1 ? "is" : "are", in->ndev,
                                   in->ndev == 1 ? "" : "s", in->ndev - 1);
    }
    if (index >= in->ndev)
        return bad_index(in, index);
    ocl_dev *d = in->host->alloc(in->hc, sizeof *d);
    if (!d)
        return in->host->error(in->hc, EM_ERR_OOM, "cannot allocate %zu bytes for the device",
                               sizeof *d);
    memset(d, 0, sizeof *d);
    d->inst = in;
    d->host = in->host;
    d->hc = in->hc;
    d->index = index;
    d->platform = in->devs[index].platform;
    d->device = in->devs[index].device;
    device_str(d->device, CL_DEVICE_NAME, d->name, sizeof d->name);
    d->fp64 = device_has(d->device, "cl_khr_fp64") && !fp64_hidden();
    d->int64_atomics = device_has(d->device, "cl_khr_int64_base_atomics");
    clGetDeviceInfo(d->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof d->compute_units,
                    &d->compute_units, NULL);
    clGetDeviceInfo(d->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof d->max_wg, &d->max_wg, NULL);
    clGetDeviceInfo(d->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof d->max_alloc, &d->max_alloc,
                    NULL);
    if (d->compute_units == 0)
        d->compute_units = 1;
    cl_ulong lmem = 0;
    clGetDeviceInfo(d->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    /* work-group sizes: 256 where allowed (a power of two below the device limit) */
    size_t wg = d->max_wg ? d->max_wg : 1;
    d->ls = 256;
    while (d->ls > wg)
        d->ls /= 2;
    d->rls = d->ls;
    /* gemm: 64x64 tiles need 256 work-items and 2 * 16 * 65 elements of local memory */
    d->gemm_ts = wg >= 256 && lmem >= 2 * 16 * 65 * 8 ? 64 : 32;
    if (d->gemm_ts == 32 && wg < 64) {
        in->host->error(in->hc, EM_ERR_UNSUPPORTED, "OpenCL device '%s' allows work-groups of "
                        "only %zu work-items (the gemm kernel needs 64)", d->name, wg);
        d->host->free(d->hc, d);
        return EM_ERR_UNSUPPORTED;
    }

    /* gemm kernel: register-blocked on CPU devices, tiled in local memory elsewhere;
     * EMBER_OPENCL_GEMM=tiled|reg overrides (tests and benchmarks run both on PoCL) */
    cl_device_type dtype = 0;
    clGetDeviceInfo(d->device, CL_DEVICE_TYPE, sizeof dtype, &dtype, NULL);
    d->gemm_reg = (dtype & CL_DEVICE_TYPE_CPU) != 0;
    const char *gk = getenv("EMBER_OPENCL_GEMM");
    if (gk && !strcmp(gk, "tiled"))
        d->gemm_reg = 0;
    else if (gk && !strcmp(gk, "reg"))
        d->gemm_reg = 1;

    cl_int err;
    cl_context_properties cprops[3] = {CL_CONTEXT_PLATFORM, (cl_context_properties)d->platform, 0};
    d->ctx = clCreateContext(cprops, 1, &d->device, NULL, NULL, &err);
    em_status st;
    if (!d->ctx || err != CL_SUCCESS) {
        d->ctx = NULL;
        st = ocl_fail(d, "clCreateContext", err);
        device_free(d);
        return st;
    }
    d->q = clCreateCommandQueue(d->ctx, d->device, 0, &err);
    if (!d->q || err != CL_SUCCESS) {
        d->q = NULL;
        st = ocl_fail(d, "clCreateCommandQueue", err);
        device_free(d);
        return st;
    }
    if ((st = build_program(d)) != EM_OK || (st = ocl_create_kernels(d)) != EM_OK) {
        device_free(d);
        return st;
    }
    in->n_open++;
    *out = d;
    return EM_OK;
}

static void ocl_device_close(void *dev)
{
    ocl_dev *d = dev;
    if (!d)
        return;
    if (d->q)
        clFinish(d->q);
    if (d->inst->n_open > 0)
        d->inst->n_open--;
    device_free(d);
}

/* ------------------------------------------------------------------ memory */

static em_status ocl_buffer_alloc(void *dev, size_t bytes, void **buf)
{
    ocl_dev *d = dev;
    char e[48];
    if (bytes == 0)
        return OCL_ERR(d, EM_ERR_INVALID, "cannot allocate 0 bytes");
    if (d->max_alloc && bytes > d->max_alloc)
        return OCL_ERR(d, EM_ERR_OOM, "cannot allocate %zu bytes: OpenCL device '%s' allows at "
                       "most %llu bytes per buffer", bytes, d->name,
                       (unsigned long long)d->max_alloc);
    cl_int err;
    cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (!m || err != CL_SUCCESS) {
        em_status st = err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
                               err == CL_OUT_OF_HOST_MEMORY || err == CL_INVALID_BUFFER_SIZE
                           ? EM_ERR_OOM
                           : EM_ERR_BACKEND;
        return OCL_ERR(d, st, "clCreateBuffer(%zu bytes): %s", bytes,
                       ocl_error_name(err, e, sizeof e));
    }
    *buf = m;
    return EM_OK;
}

static void ocl_buffer_free(void *dev, void *buf)
{
    (void)dev;
    /* kernels still queued on it keep it alive: OpenCL releases it after them */
    if (buf)
        clReleaseMemObject((cl_mem)buf);
}

/* Blocking: the core may reuse src as soon as we return. */
static em_status ocl_copy_h2d(void *dev, void *dst, size_t dst_offset, const void *src,
                              size_t bytes)
{
    ocl_dev *d = dev;
    if (!bytes)
        return EM_OK;
    cl_int err = clEnqueueWriteBuffer(d->q, (cl_mem)dst, CL_TRUE, dst_offset, bytes, src, 0,
                                      NULL, NULL);
    return err == CL_SUCCESS ? EM_OK : ocl_fail(d, "clEnqueueWriteBuffer", err);
}

static em_status ocl_copy_d2h(void *dev, void *dst, const void *src, size_t src_offset,
                              size_t bytes)
{
    ocl_dev *d = dev;
    if (!bytes)
        return EM_OK;
    cl_int err = clEnqueueReadBuffer(d->q, (cl_mem)src, CL_TRUE, src_offset, bytes, dst, 0,
                                     NULL, NULL);
    return err == CL_SUCCESS ? EM_OK : ocl_fail(d, "clEnqueueReadBuffer", err);
}

static em_status ocl_copy_d2d(void *dev, void *dst, size_t dst_offset, const void *src,
                              size_t src_offset, size_t bytes)
{
    ocl_dev *d = dev;
    if (!bytes)
        return EM_OK;
    if (dst == src && dst_offset == src_offset)
        return EM_OK;
    cl_int err;
    if (dst == src && dst_offset < src_offset + bytes && src_offset < dst_offset + bytes) {
        /* overlapping ranges of one buffer (memmove semantics): OpenCL refuses those
         * (CL_MEM_COPY_OVERLAP), so go through a temporary device buffer */
        cl_mem tmp = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
        if (!tmp || err != CL_SUCCESS)
            return ocl_fail(d, "clCreateBuffer (copy_d2d temporary)", err);
        err = clEnqueueCopyBuffer(d->q, (cl_mem)src, tmp, src_offset, 0, bytes, 0, NULL, NULL);
        if (err == CL_SUCCESS)
            err = clEnqueueCopyBuffer(d->q, tmp, (cl_mem)dst, 0, dst_offset, bytes, 0, NULL, NULL);
        clReleaseMemObject(tmp);
    } else {
        err = clEnqueueCopyBuffer(d->q, (cl_mem)src, (cl_mem)dst, src_offset, dst_offset, bytes,
                                  0, NULL, NULL);
    }
    return err == CL_SUCCESS ? EM_OK : ocl_fail(d, "clEnqueueCopyBuffer", err);
}

/* ------------------------------------------------------------------ instance */

static void ocl_shutdown(void *bctx)
{
    ocl_inst *in = bctx;
    if (!in)
        return;
    const em_host *host = in->host;
    em_host_ctx *hc = in->hc;
    host->free(hc, in->devs);
    host->free(hc, in);
}

static const em_backend_ops ocl_ops = {
    .struct_size = sizeof(em_backend_ops),
    .shutdown = ocl_shutdown,
    .device_count = ocl_device_count,
    .device_props = ocl_device_props,
    .device_open = ocl_device_open,
    .device_close = ocl_device_close,
    .buffer_alloc = ocl_buffer_alloc,
    .buffer_free = ocl_buffer_free,
    .copy_h2d = ocl_copy_h2d,
    .copy_d2h = ocl_copy_d2h,
    .copy_d2d = ocl_copy_d2d,
    .synchronize = ocl_synchronize,
    .gemm = ocl_gemm,
    .fill = ocl_k_fill,
    .rng_uniform = ocl_k_rng_uniform,
    .rng_normal = ocl_k_rng_normal,
    .copy = ocl_k_copy,
    .neg = ocl_k_neg,
    .exp = ocl_k_exp,
    .log = ocl_k_log,
    .sqrt = ocl_k_sqrt,
    .abs = ocl_k_abs,
    .relu = ocl_k_relu,
    .tanh = ocl_k_tanh,
    .sigmoid = ocl_k_sigmoid,
    .add_scalar = ocl_k_add_scalar,
    .mul_scalar = ocl_k_mul_scalar,
    .rsub_scalar = ocl_k_rsub_scalar,
    .div_scalar = ocl_k_div_scalar,
    .rdiv_scalar = ocl_k_rdiv_scalar,
    .pow_scalar = ocl_k_pow_scalar,
    .clamp = ocl_k_clamp,
    .add = ocl_k_add,
    .sub = ocl_k_sub,
    .mul = ocl_k_mul,
    .div = ocl_k_div,
    .maximum = ocl_k_maximum,
    .minimum = ocl_k_minimum,
    .lt = ocl_k_lt,
    .le = ocl_k_le,
    .gt = ocl_k_gt,
    .ge = ocl_k_ge,
    .eq = ocl_k_eq,
    .ne = ocl_k_ne,
    .where = ocl_k_where,
    .masked_fill = ocl_k_masked_fill,
    .sum = ocl_k_sum,
    .relu_backward = ocl_k_relu_backward,
    .clamp_backward = ocl_k_clamp_backward,
    .pow_backward = ocl_k_pow_backward,
    .tanh_backward = ocl_k_tanh_backward,
    .sigmoid_backward = ocl_k_sigmoid_backward,
    .dtypes = &ocl_kernel_dtypes,
    .host_alloc = ocl_host_alloc,
    .host_free = ocl_host_free,
    .copy_h2d_async = ocl_copy_h2d_async,
    .copy_d2h_async = ocl_copy_d2h_async,
    .stream_create = ocl_stream_create,
    .stream_destroy = ocl_stream_destroy,
    .event_create = ocl_event_create,
    .event_destroy = ocl_event_destroy,
    .event_record = ocl_event_record,
    .event_wait = ocl_event_wait,
    .event_synchronize = ocl_event_synchronize,
    .log1p = ocl_k_log1p,
    .expm1 = ocl_k_expm1,
    .sin = ocl_k_sin,
    .cos = ocl_k_cos,
    .erf = ocl_k_erf,
    .floor = ocl_k_floor,
    .ceil = ocl_k_ceil,
    .round = ocl_k_round,
    .sign = ocl_k_sign,
    .pow = ocl_k_pow,
    .floor_divide = ocl_k_floor_divide,
    .remainder = ocl_k_remainder,
    .prod = ocl_k_prod,
    .max_dim = ocl_k_max_dim,
    .min_dim = ocl_k_min_dim,
    .softmax = ocl_k_softmax,
    .log_softmax = ocl_k_log_softmax,
    .index_select = ocl_k_index_select,
    .gather = ocl_k_gather,
    .scatter_add = ocl_k_scatter_add,
    .adam = ocl_k_adam,
    .avg_pool2d = ocl_k_avg_pool2d,
    .avg_pool2d_grad = ocl_k_avg_pool2d_grad,
    /* ---- ABI 1.4: convolution ---- */
    .im2col = ocl_k_im2col,
    .col2im = ocl_k_col2im,
    .max_pool2d = ocl_k_max_pool2d,
    /* ---- ABI 1.5: max_pool2d backward ---- */
    .max_pool2d_grad = ocl_k_max_pool2d_grad,
    /* ---- ABI 1.7: SGD's step ---- */
    .sgd = ocl_k_sgd,
};

/* <ember/backend.h> only defines the entry through a macro; declare it for
 * -Wmissing-prototypes. */
EM_BACKEND_EXPORT em_status ember_backend_entry(const em_host *host, em_host_ctx *hc,
                                                const em_config_kv *config, size_t n_config,
                                                em_backend *out);

/* What a describe call returns, and the static part of every instance's description. */
static void describe(em_backend *out)
{
    out->abi_major = EM_ABI_MAJOR;
    out->abi_minor = EM_ABI_MINOR;
    out->name = "opencl";
    out->version = OCL_VERSION;
    out->description = "OpenCL devices: strided and 1-D elementwise kernels, tree reductions, "
                       "softmax, indexing, tiled gemm";
    out->config_keys = ocl_config_keys;
    out->ops = &ocl_ops;
}

EM_BACKEND_ENTRY
{
    if (!host || !out)
        return EM_ERR_PLUGIN;
    if (host->abi_major != EM_ABI_MAJOR)
        return host->error(hc, EM_ERR_PLUGIN,
                           "opencl backend built for plugin ABI %d.%d, but the core speaks %u.%u",
                           EM_ABI_MAJOR, EM_ABI_MINOR, (unsigned)host->abi_major,
                           (unsigned)host->abi_minor);
    /* A describe call may come from any thread, for a backend the core will not use: no
     * allocation, no OpenCL call (merely loading an ICD can take long or fail). The flag
     * counts only where the core's struct has it (a 1.0 core's is shorter). */
    if (host->struct_size >= offsetof(em_host, flags) + sizeof host->flags &&
        (host->flags & EM_HOST_DESCRIBE)) {
        describe(out);
        out->ctx = NULL;
        return EM_OK;
    }
    int platform_index = -1, device = -1, cache = -1;
    const char *platform_name = "";
    cl_device_type type = CL_DEVICE_TYPE_ALL;
    const char *type_text = "all";
    for (size_t i = 0; i < n_config; i++) {
        const char *key = config[i].key ? config[i].key : "";
        const char *val = config[i].value ? config[i].value : "";
        if (!strcmp(key, "platform")) {
            int r = parse_index(val, &platform_index);
            if (r < 0)
                return host->error(hc, EM_ERR_CONFIG, "platform: '%s' is too large for a "
                                   "platform index", val);
            if (r == 0) {
                if (!*val)
                    return host->error(hc, EM_ERR_CONFIG, "platform: expected a platform index "
                                       "or a part of a platform name, got an empty value");
                if (strlen(val) >= 128)
                    return host->error(hc, EM_ERR_CONFIG, "platform: '%.40s...' is too long "
                                       "(at most 127 characters)", val);
                platform_name = val;
                platform_index = -1;
            }
        } else if (!strcmp(key, "device")) {
            int r = parse_index(val, &device);
            if (r == 0)
                return host->error(hc, EM_ERR_CONFIG,
                                   "device: expected a non-negative integer, got '%s'", val);
            if (r < 0)
                return host->error(hc, EM_ERR_CONFIG, "device: '%s' is too large", val);
        } else if (!strcmp(key, "type")) {
            if (ieq(val, "all")) {
                type = CL_DEVICE_TYPE_ALL;
                type_text = "all";
            } else if (ieq(val, "gpu")) {
                type = CL_DEVICE_TYPE_GPU;
                type_text = "gpu";
            } else if (ieq(val, "cpu")) {
                type = CL_DEVICE_TYPE_CPU;
                type_text = "cpu";
            } else if (ieq(val, "accelerator")) {
                type = CL_DEVICE_TYPE_ACCELERATOR;
                type_text = "accelerator";
            } else {
                return host->error(hc, EM_ERR_CONFIG, "type: expected all, gpu, cpu or "
                                   "accelerator, got '%s'", val);
            }
        } else if (!strcmp(key, "cache")) {
            if (ieq(val, "auto"))
                cache = -1;
            else if (ieq(val, "on") || ieq(val, "yes") || ieq(val, "true") || !strcmp(val, "1"))
                cache = 1;
            else if (ieq(val, "off") || ieq(val, "no") || ieq(val, "false") || !strcmp(val, "0"))
                cache = 0;
            else
                return host->error(hc, EM_ERR_CONFIG, "cache: expected auto, on or off, got '%s'",
                                   val);
        } else if (!strcmp(key, "library")) {
            /* the core's key: which file to load */
        } else {
            return host->error(hc, EM_ERR_CONFIG, "unknown key '%s' in [opencl] (known keys: "
                               "platform, device, type, cache)", key);
        }
    }
    ocl_inst *in = host->alloc(hc, sizeof *in);
    if (!in)
        return host->error(hc, EM_ERR_OOM, "cannot allocate %zu bytes for the instance",
                           sizeof *in);
    memset(in, 0, sizeof *in);
    in->host = host;
    in->hc = hc;
    in->platform_index = platform_index;
    snprintf(in->platform_name, sizeof in->platform_name, "%s", platform_name);
    in->default_device = device;
    in->type = type;
    in->type_text = type_text;
    in->cache = cache;

    describe(out);
    out->ctx = in;
    return EM_OK;
}
