/* backends/cpu/cpu.c — the cpu backend's entry point and instance-level services: config,
 * the single host device, host-memory buffers, scratch memory, and the ops table. The thread
 * pool the big kernels share is in cpu_pool.c. Built as ember-backend-cpu.so. */
#include "cpu.h"

#include <ember/backend.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_CPU_NO_SIMD)
#include <cpuid.h>
#endif
#include <unistd.h>

#define CPU_VERSION "0.1.0"

static const char *const cpu_config_keys[] = {"threads", "isa", NULL};

/* ------------------------------------------------------------------ small helpers */

int cpu_online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > CPU_MAX_THREADS ? CPU_MAX_THREADS : (int)n);
}

/* Default thread count: the cores we may actually run on (a container or taskset may
 * allow fewer than are online). */
static int usable_cores(void)
{
    int n = cpu_online_cores();
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int a = CPU_COUNT(&set);
        if (a >= 1 && a < n)
            n = a;
    }
    return n;
}

/* ------------------------------------------------------------------ scratch memory */

void *cpu_scratch_get(cpu_inst *inst, cpu_scratch *s, size_t bytes)
{
    if (s->cap >= bytes && s->p)
        return s->p;
    cpu_scratch_release(inst, s);
    if (bytes > SIZE_MAX - 64)
        return NULL;
    void *raw = inst->host->alloc(inst->hc, bytes + 64);
    if (!raw)
        return NULL;
    s->raw = raw;
    s->p = (void *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    s->cap = bytes;
    return s->p;
}

void cpu_scratch_release(cpu_inst *inst, cpu_scratch *s)
{
    if (s->raw)
        inst->host->free(inst->hc, s->raw);
    s->raw = s->p = NULL;
    s->cap = 0;
}

/* ------------------------------------------------------------------ devices */

static em_status cpu_device_count(void *bctx, int *count)
{
    (void)bctx;
    *count = 1;
    return EM_OK;
}

/* Copy the value of a "key\t: value" line of /proc/cpuinfo. */
static int cpuinfo_field(const char *line, const char *key, char *dst, size_t n)
{
    size_t kl = strlen(key);
    if (strncmp(line, key, kl) != 0)
        return 0;
    const char *p = line + kl;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != ':')
        return 0;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strcspn(p, "\r\n");
    if (len >= n)
        len = n - 1;
    memcpy(dst, p, len);
    dst[len] = '\0';
    return 1;
}

static void read_cpuinfo(char *model, size_t nmodel, char *vendor, size_t nvendor)
{
    model[0] = vendor[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f) && (!model[0] || !vendor[0])) {
        if (!model[0])
            cpuinfo_field(line, "model name", model, nmodel);
        if (!vendor[0])
            cpuinfo_field(line, "vendor_id", vendor, nvendor);
    }
    fclose(f);
}

static const char *simd_text(int simd)
{
    return simd == CPU_SIMD_AVX512 ? "avx512 (gemm; avx2 fma elementwise)"
           : simd == CPU_SIMD_AVX2 ? "avx2 fma"
                                   : "generic (compiler auto-vectorised)";
}

static em_status cpu_device_props(void *bctx, int index, em_device_props *out)
{
    cpu_inst *inst = bctx;
    if (index != 0)
        return CPU_ERR(inst, EM_ERR_NO_DEVICE, "cpu: no device %d (the cpu backend has 1 device, index 0)",
                       index);
    char model[112], vendor[64];   /* model fits in name[] after "cpu (" */
    read_cpuinfo(model, sizeof model, vendor, sizeof vendor);
    /* filled here, then copied up to the caller's struct_size: an older core's struct is
     * shorter than ours */
    em_device_props local, *props = &local;
    memset(props, 0, sizeof *props);
    if (model[0])
        snprintf(props->name, sizeof props->name, "cpu (%s)", model);
    else
        snprintf(props->name, sizeof props->name, "cpu");
    const char *v = vendor;
    if (!strcmp(vendor, "GenuineIntel"))
        v = "Intel";
    else if (!strcmp(vendor, "AuthenticAMD"))
        v = "AMD";
    else if (!vendor[0])
        v = "unknown";
    snprintf(props->vendor, sizeof props->vendor, "%s", v);
    snprintf(props->driver, sizeof props->driver, "host");
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    props->total_memory = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    props->compute_units = (uint32_t)cpu_online_cores();
    props->fp64 = 1;
    snprintf(props->extra, sizeof props->extra,
             "threads: %d\nsimd: %s\ngemm: %s\ncaches: L1d %zu KiB, L2 %zu KiB, L3 %zu KiB\n",
             inst->nthreads, simd_text(inst->simd),
             inst->simd == CPU_SIMD_AVX512
                 ? "direct (small/skinny) or packed, 6x32 f32 / 6x16 f64 avx512f micro-kernels"
             : inst->simd == CPU_SIMD_AVX2
                 ? "direct (small/skinny) or packed, 6x16 f32 / 6x8 f64 avx2+fma micro-kernels"
                 : "direct (small/skinny) or packed, 4x8 f32 / 4x4 f64 portable micro-kernels",
             inst->l1d_bytes >> 10, inst->l2_bytes >> 10, inst->l3_bytes >> 10);
    /* buffers are posix_memalign'ed host memory, and the kernels take any host pointer
     * aligned to the element size: ops other backends lack can run here in place */
    props->flags = EM_DEVICE_HOST_BUFFERS;
    size_t n = out->struct_size < sizeof local ? out->struct_size : sizeof local;
    if (n > sizeof out->struct_size)
        memcpy((char *)out + sizeof out->struct_size, (char *)props + sizeof props->struct_size,
               n - sizeof out->struct_size);
    return EM_OK;
}

/* The one device is the instance itself: kernels get the cpu_inst as `dev`. */
static em_status cpu_device_open(void *bctx, int index, void **dev)
{
    cpu_inst *inst = bctx;
    if (index != -1 && index != 0)
        return CPU_ERR(inst, EM_ERR_NO_DEVICE, "cpu: no device %d (the cpu backend has 1 device, index 0)",
                       index);
    inst->n_open++;
    *dev = inst;
    return EM_OK;
}

static void cpu_device_close(void *dev)
{
    cpu_inst *inst = dev;
    if (inst && inst->n_open > 0)
        inst->n_open--;
}

/* ------------------------------------------------------------------ memory */

/* Buffers from this size on are aligned to, and advised as, transparent huge pages (as
 * numpy does from 4 MiB): a stream over 4 KiB pages stops the hardware prefetchers at every
 * page boundary and misses the TLB every 4 KiB; summing 64 MiB of f32 on one core took
 * 2.7 ms on 4 KiB pages against 2.0 ms on 2 MiB pages (Zen 4, THP in "madvise" mode). */
#define CPU_HUGE_MIN ((size_t)4 << 20)
#define CPU_HUGE_PAGE ((size_t)2 << 20)

static em_status cpu_buffer_alloc(void *dev, size_t bytes, void **buf)
{
    cpu_inst *inst = dev;
    void *p = NULL;
    /* 64 bytes: a cache line and a full AVX-512 vector, so kernels never straddle */
    size_t align = 64;
#ifdef MADV_HUGEPAGE
    if (bytes >= CPU_HUGE_MIN)
        align = CPU_HUGE_PAGE;
#endif
    if (bytes == 0 || posix_memalign(&p, align, bytes) != 0 || !p)
        return CPU_ERR(inst, EM_ERR_OOM, "cpu: cannot allocate %zu bytes", bytes);
#ifdef MADV_HUGEPAGE
    /* advice only: where THP is off or the call fails, the buffer keeps small pages */
    if (align == CPU_HUGE_PAGE)
        (void)madvise(p, bytes & ~(CPU_HUGE_PAGE - 1), MADV_HUGEPAGE);
#endif
    *buf = p;
    return EM_OK;
}

static void cpu_buffer_free(void *dev, void *buf)
{
    (void)dev;
    free(buf);
}

static em_status cpu_copy_h2d(void *dev, void *dst, size_t dst_offset, const void *src,
                              size_t bytes)
{
    (void)dev;
    if (bytes)
        memcpy((char *)dst + dst_offset, src, bytes);
    return EM_OK;
}

static em_status cpu_copy_d2h(void *dev, void *dst, const void *src, size_t src_offset,
                              size_t bytes)
{
    (void)dev;
    if (bytes)
        memcpy(dst, (const char *)src + src_offset, bytes);
    return EM_OK;
}

static em_status cpu_copy_d2d(void *dev, void *dst, size_t dst_offset, const void *src,
                              size_t src_offset, size_t bytes)
{
    (void)dev;
    /* memmove: the core may copy between overlapping ranges of one buffer */
    if (bytes)
        memmove((char *)dst + dst_offset, (const char *)src + src_offset, bytes);
    return EM_OK;
}

static em_status cpu_synchronize(void *dev)
{
    (void)dev;
    return EM_OK;
}

/* ------------------------------------------------------------------ instance */

static void cpu_shutdown(void *bctx)
{
    cpu_inst *inst = bctx;
    if (!inst)
        return;
    cpu_pool_stop(inst);
    for (int i = 0; i < inst->nthreads; i++) {
        if (inst->work)
            cpu_scratch_release(inst, &inst->work[i]);
        if (inst->pack_b)
            cpu_scratch_release(inst, &inst->pack_b[i]);
        if (inst->conv)
            cpu_scratch_release(inst, &inst->conv[i]);
    }
    cpu_scratch_release(inst, &inst->ksum);
    cpu_scratch_release(inst, &inst->conv_part);
    cpu_scratch_release(inst, &inst->wino);
    const em_host *host = inst->host;
    em_host_ctx *hc = inst->hc;
    host->free(hc, inst->work);
    host->free(hc, inst->pack_b);
    host->free(hc, inst->apacked);
    host->free(hc, inst->conv);
    host->free(hc, inst);
}

/* What the kernels implement: the core hands the cpu backend every dtype it uses (and runs
 * other backends' missing kernels here), and relies on this table to know. */
#define CPU_FLOAT EM_DTYPES_FLOAT
#define CPU_ANY EM_DTYPES_ALL
#define CPU_FINT (EM_DTYPES_FLOAT | EM_DTYPES_INT)
static const em_kernel_dtypes cpu_dtypes = {
    .struct_size = sizeof(em_kernel_dtypes),
    .gemm = CPU_FLOAT, .fill = CPU_ANY, .rng_uniform = CPU_FLOAT, .rng_normal = CPU_FLOAT,
    .copy = CPU_ANY,
    .neg = CPU_FINT, .exp = CPU_FLOAT, .log = CPU_FLOAT, .sqrt = CPU_FLOAT, .abs = CPU_FINT,
    .relu = CPU_FLOAT, .tanh = CPU_FLOAT, .sigmoid = CPU_FLOAT,
    .add_scalar = CPU_FINT, .mul_scalar = CPU_FINT, .rsub_scalar = CPU_FINT,
    .div_scalar = CPU_FLOAT, .rdiv_scalar = CPU_FLOAT, .pow_scalar = CPU_FLOAT, .clamp = CPU_FINT,
    .add = CPU_FINT, .sub = CPU_FINT, .mul = CPU_FINT, .div = CPU_FLOAT, .maximum = CPU_FINT,
    .minimum = CPU_FINT,
    .lt = CPU_ANY, .le = CPU_ANY, .gt = CPU_ANY, .ge = CPU_ANY, .eq = CPU_ANY, .ne = CPU_ANY,
    .where = CPU_ANY, .masked_fill = CPU_ANY,
    .sum = CPU_FLOAT | EM_DTYPE_BIT(EM_I64),
    .relu_backward = CPU_FLOAT, .clamp_backward = CPU_FLOAT, .pow_backward = CPU_FLOAT,
    .tanh_backward = CPU_FLOAT, .sigmoid_backward = CPU_FLOAT,
    .log1p = CPU_FLOAT, .expm1 = CPU_FLOAT, .sin = CPU_FLOAT, .cos = CPU_FLOAT, .erf = CPU_FLOAT,
    .floor = CPU_FLOAT, .ceil = CPU_FLOAT, .round = CPU_FLOAT, .sign = CPU_FINT,
    .pow = CPU_FLOAT, .floor_divide = CPU_FINT, .remainder = CPU_FINT,
    .prod = CPU_FLOAT | EM_DTYPE_BIT(EM_I64),
    .max_dim = CPU_FINT, .min_dim = CPU_FINT, .softmax = CPU_FLOAT, .log_softmax = CPU_FLOAT,
    .index_select = CPU_ANY, .gather = CPU_ANY, .scatter_add = CPU_FINT,
    .adam = CPU_FLOAT,
    .avg_pool2d = CPU_FLOAT, .avg_pool2d_grad = CPU_FLOAT,
    /* ---- ABI 1.4: convolution ---- */
    .im2col = CPU_FLOAT, .col2im = CPU_FLOAT, .max_pool2d = CPU_FLOAT,
    .conv2d = CPU_FLOAT, .conv2d_grad_input = CPU_FLOAT, .conv2d_grad_weight = CPU_FLOAT,
    /* ---- ABI 1.5: max_pool2d backward ---- */
    .max_pool2d_grad = CPU_FLOAT,
    /* ---- ABI 1.7: SGD's step ---- */
    .sgd = CPU_FLOAT,
};

static const em_backend_ops cpu_ops = {
    .struct_size = sizeof(em_backend_ops),
    .shutdown = cpu_shutdown,
    .device_count = cpu_device_count,
    .device_props = cpu_device_props,
    .device_open = cpu_device_open,
    .device_close = cpu_device_close,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .copy_h2d = cpu_copy_h2d,
    .copy_d2h = cpu_copy_d2h,
    .copy_d2d = cpu_copy_d2d,
    .synchronize = cpu_synchronize,
    .gemm = cpu_gemm,
    .fill = cpu_k_fill,
    .rng_uniform = cpu_k_rng_uniform,
    .rng_normal = cpu_k_rng_normal,
    .copy = cpu_k_copy,
    .neg = cpu_k_neg,
    .exp = cpu_k_exp,
    .log = cpu_k_log,
    .sqrt = cpu_k_sqrt,
    .abs = cpu_k_abs,
    .relu = cpu_k_relu,
    .tanh = cpu_k_tanh,
    .sigmoid = cpu_k_sigmoid,
    .add_scalar = cpu_k_add_scalar,
    .mul_scalar = cpu_k_mul_scalar,
    .rsub_scalar = cpu_k_rsub_scalar,
    .div_scalar = cpu_k_div_scalar,
    .rdiv_scalar = cpu_k_rdiv_scalar,
    .pow_scalar = cpu_k_pow_scalar,
    .clamp = cpu_k_clamp,
    .add = cpu_k_add,
    .sub = cpu_k_sub,
    .mul = cpu_k_mul,
    .div = cpu_k_div,
    .maximum = cpu_k_maximum,
    .minimum = cpu_k_minimum,
    .lt = cpu_k_lt,
    .le = cpu_k_le,
    .gt = cpu_k_gt,
    .ge = cpu_k_ge,
    .eq = cpu_k_eq,
    .ne = cpu_k_ne,
    .where = cpu_k_where,
    .masked_fill = cpu_k_masked_fill,
    .sum = cpu_k_sum,
    .relu_backward = cpu_k_relu_backward,
    .clamp_backward = cpu_k_clamp_backward,
    .pow_backward = cpu_k_pow_backward,
    .tanh_backward = cpu_k_tanh_backward,
    .sigmoid_backward = cpu_k_sigmoid_backward,
    .dtypes = &cpu_dtypes,
    .log1p = cpu_k_log1p,
    .expm1 = cpu_k_expm1,
    .sin = cpu_k_sin,
    .cos = cpu_k_cos,
    .erf = cpu_k_erf,
    .floor = cpu_k_floor,
    .ceil = cpu_k_ceil,
    .round = cpu_k_round,
    .sign = cpu_k_sign,
    .pow = cpu_k_pow,
    .floor_divide = cpu_k_floor_divide,
    .remainder = cpu_k_remainder,
    .prod = cpu_k_prod,
    .max_dim = cpu_k_max_dim,
    .min_dim = cpu_k_min_dim,
    .softmax = cpu_k_softmax,
    .log_softmax = cpu_k_log_softmax,
    .index_select = cpu_k_index_select,
    .gather = cpu_k_gather,
    .scatter_add = cpu_k_scatter_add,
    .adam = cpu_k_adam,
    .avg_pool2d = cpu_k_avg_pool2d,
    .avg_pool2d_grad = cpu_k_avg_pool2d_grad,
    /* ---- ABI 1.4: convolution ---- */
    .im2col = cpu_k_im2col,
    .col2im = cpu_k_col2im,
    .max_pool2d = cpu_k_max_pool2d,
    .conv2d = cpu_k_conv2d,
    .conv2d_grad_input = cpu_k_conv2d_grad_input,
    .conv2d_grad_weight = cpu_k_conv2d_grad_weight,
    /* ---- ABI 1.5: max_pool2d backward ---- */
    .max_pool2d_grad = cpu_k_max_pool2d_grad,
    /* ---- ABI 1.7: SGD's step ---- */
    .sgd = cpu_k_sgd,
};

/* threads = N: a plain decimal integer, 0 meaning "one per usable core". */
static int parse_threads(const char *s, int *out)
{
    unsigned long long v;
    int r = emk_parse_uint(s, CPU_MAX_THREADS, &v);
    if (r == 1)
        *out = (int)v;
    return r;
}

/* Size of the level-`level` data (or unified) cache of cpu0, from sysfs; 0 if unknown. */
static size_t cache_bytes(int level)
{
    for (int i = 0; i < 8; i++) {
        char path[96], buf[64];
        int lv = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f)
            break;
        if (fscanf(f, "%d", &lv) != 1)
            lv = 0;
        fclose(f);
        if (lv != level)
            continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if (!(f = fopen(path, "r")))
            continue;
        int ok = fgets(buf, sizeof buf, f) && strncmp(buf, "Instruction", 11) != 0;
        fclose(f);
        if (!ok)
            continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!(f = fopen(path, "r")))
            continue;
        unsigned long long v = 0;
        char unit = 0;
        int n = fscanf(f, "%llu%c", &v, &unit);
        fclose(f);
        if (n < 1 || v == 0)
            continue;
        if (n == 2 && (unit == 'K' || unit == 'k'))
            v <<= 10;
        else if (n == 2 && (unit == 'M' || unit == 'm'))
            v <<= 20;
        return v > (1ull << 40) ? 0 : (size_t)v;
    }
    return 0;
}

/* Whether this CPU and its OS can run `level` (CPU_SIMD_*); if not, *missing names the
 * first flag that is absent. libgcc's constructor has filled the feature bits by now (no
 * __builtin_cpu_init, which would write them again, racing with a concurrent entry call);
 * its avx2 bit already requires the OS to save YMM state (OSXSAVE, XCR0 bits 1 and 2). For
 * AVX-512 XGETBV must also show the opmask and both halves of the ZMM state (XCR0 bits 5,
 * 6, 7). */
static int simd_usable(int level, const char **missing)
{
    *missing = NULL;
    if (level == CPU_SIMD_GENERIC)
        return 1;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_CPU_NO_SIMD)
    if (!__builtin_cpu_supports("avx2"))
        *missing = "avx2";
    else if (!__builtin_cpu_supports("fma"))
        *missing = "fma";
    else if (level == CPU_SIMD_AVX512) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        (void)hi;
        if (!__builtin_cpu_supports("avx512f"))
            *missing = "avx512f";
        else if ((lo & 0xe6) != 0xe6)
            *missing = "avx512f (the OS does not save the ZMM registers)";
    }
    return *missing == NULL;
#else
    *missing = "x86-64 SIMD (this build has only the portable kernels)";
    return 0;
#endif
}

/* Whether the CPU runs a 512-bit FMA at full width (two 512-bit FMAs per cycle on the
 * server parts), so that the AVX-512 kernels have twice the AVX2 ones' peak. cpuid's vendor
 * and family decide, as BLAS libraries do: Intel's AVX-512 cores, and AMD from family 1Ah
 * (Zen 5, 512-bit datapaths); not AMD family 19h (Zen 4), which splits a 512-bit FMA into
 * its two 256-bit halves. */
static int wide_fma512(void)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_CPU_NO_SIMD)
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d))
        return 0;
    char vendor[13];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    vendor[12] = 0;
    if (!strcmp(vendor, "GenuineIntel"))
        return 1;
    if (strcmp(vendor, "AuthenticAMD") || !__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    unsigned family = (a >> 8) & 0xf;
    if (family == 0xf)
        family += (a >> 20) & 0xff;
    return family >= 0x1a;
#else
    return 0;
#endif
}

/* The `auto` choice of [cpu] isa: AVX-512 where the CPU and OS run it at full width
 * (wide_fma512), else AVX2 where they run it, else the portable kernels. On the AMD EPYC
 * (Zen 4) the AVX-512 kernels were measured on, they reach the same FMA peak as the AVX2
 * ones and were no faster (sgemm 1024 and 2048 on one thread 2-3% slower; see
 * docs/benchmarks.md), so that CPU keeps AVX2. */
static int detect_simd(void)
{
    const char *missing;
    if (wide_fma512() && simd_usable(CPU_SIMD_AVX512, &missing))
        return CPU_SIMD_AVX512;
    if (simd_usable(CPU_SIMD_AVX2, &missing))
        return CPU_SIMD_AVX2;
    return CPU_SIMD_GENERIC;
}

/* [cpu] isa: 1 and *level for a known name (-1: auto), 0 for an unknown one. */
static int parse_isa(const char *v, int *level)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {{"auto", -1},
                 {"avx512", CPU_SIMD_AVX512},
                 {"avx2", CPU_SIMD_AVX2},
                 {"generic", CPU_SIMD_GENERIC}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(v, names[i].name)) {
            *level = names[i].level;
            return 1;
        }
    return 0;
}

EM_BACKEND_ENTRY
{
    if (!host || !out)
        return EM_ERR_PLUGIN;
    out->abi_major = EM_ABI_MAJOR;
    out->abi_minor = EM_ABI_MINOR;
    out->name = "cpu";
    out->version = CPU_VERSION;
    out->description = "host CPU: strided kernels, packed SIMD gemm, pthread pool";
    out->config_keys = cpu_config_keys;
    if (host->abi_major != EM_ABI_MAJOR)
        return host->error(hc, EM_ERR_PLUGIN,
                           "cpu backend built for plugin ABI %d.%d, but the core speaks %u.%u",
                           EM_ABI_MAJOR, EM_ABI_MINOR, (unsigned)host->abi_major,
                           (unsigned)host->abi_minor);
    if (host->struct_size >= offsetof(em_host, flags) + sizeof host->flags &&
        (host->flags & EM_HOST_DESCRIBE)) {
        out->ops = &cpu_ops;   /* static; no instance, no threads, no sysfs */
        return EM_OK;
    }
    int threads = 0, isa = -1;
    for (size_t i = 0; i < n_config; i++) {
        const char *key = config[i].key ? config[i].key : "";
        const char *val = config[i].value ? config[i].value : "";
        if (!strcmp(key, "threads")) {
            int r = parse_threads(val, &threads);
            if (r == 0)
                return host->error(hc, EM_ERR_CONFIG,
                                   "threads: expected a non-negative integer, got '%s'", val);
            if (r < 0)
                return host->error(hc, EM_ERR_CONFIG, "threads: '%s' is too large (at most %d)",
                                   val, CPU_MAX_THREADS);
        } else if (!strcmp(key, "isa")) {
            if (!parse_isa(val, &isa))
                return host->error(hc, EM_ERR_CONFIG,
                                   "isa: expected auto, avx512, avx2 or generic, got '%s'", val);
            const char *missing;
            if (isa >= 0 && !simd_usable(isa, &missing))
                return host->error(hc, EM_ERR_CONFIG,
                                   "isa: '%s' needs the CPU flag %s, which this machine lacks",
                                   val, missing);
        } else if (!strcmp(key, "library")) {
            /* the core's key: which file to load */
        } else {
            return host->error(hc, EM_ERR_CONFIG,
                               "unknown key '%s' in [cpu] (known keys: threads, isa)", key);
        }
    }
    if (threads == 0)
        threads = usable_cores();

    cpu_inst *inst = host->alloc(hc, sizeof *inst);
    if (!inst)
        return host->error(hc, EM_ERR_OOM, "cpu: cannot allocate %zu bytes for the instance",
                           sizeof *inst);
    memset(inst, 0, sizeof *inst);
    inst->host = host;
    inst->hc = hc;
    inst->nthreads = threads;
    inst->simd = isa >= 0 ? isa : detect_simd();
    inst->l1d_bytes = cache_bytes(1);
    inst->l2_bytes = cache_bytes(2);
    inst->l3_bytes = cache_bytes(3);
    /* tests and benchmarks: force one gemm path (see cpu_gemm_tmpl.h) */
    const char *gp = secure_getenv("EMBER_CPU_GEMM");
    inst->gemm_path = !gp ? CPU_GEMM_AUTO : !strcmp(gp, "direct") ? CPU_GEMM_DIRECT
                                          : !strcmp(gp, "packed") ? CPU_GEMM_PACKED
                                                                  : CPU_GEMM_AUTO;
    inst->spin_ns = POOL_SPIN_NS_DEFAULT;
    inst->spin_adaptive = 1;
    /* a tuning knob for benchmarks, not configuration: microseconds a pool thread
     * busy-waits for the next job before sleeping (0: sleep at once) */
    const char *spin = secure_getenv("EMBER_CPU_SPIN_US");
    if (spin && *spin) {
        char *end;
        long long us = strtoll(spin, &end, 10);
        if (!*end && us >= 0 && us <= 1000000) {
            inst->spin_ns = us * 1000;
            inst->spin_adaptive = 0;
        }
    }
    size_t sb = sizeof(cpu_scratch) * (size_t)threads;
    inst->work = host->alloc(hc, sb);
    inst->pack_b = inst->work ? host->alloc(hc, sb) : NULL;
    inst->apacked = inst->pack_b ? host->alloc(hc, sizeof(int64_t) * (size_t)threads) : NULL;
    inst->conv = inst->apacked ? host->alloc(hc, sb) : NULL;
    if (!inst->work || !inst->pack_b || !inst->apacked || !inst->conv) {
        host->free(hc, inst->work);
        host->free(hc, inst->pack_b);
        host->free(hc, inst->apacked);
        host->free(hc, inst);
        return host->error(hc, EM_ERR_OOM, "cpu: cannot allocate %zu bytes for the instance",
                           3 * sb);
    }
    memset(inst->work, 0, sb);
    memset(inst->pack_b, 0, sb);
    memset(inst->conv, 0, sb);

    out->ops = &cpu_ops;
    out->ctx = inst;
    return EM_OK;
}
