/* backends/cuda/cuda_blas.cu — everything the cuda backend does with cuBLAS: finding and
 * loading the library, its status text, and gemm.
 *
 * cuBLAS is not linked but loaded with dlopen when the first device is opened (or its
 * properties are read), because libcublas pulls in libcublasLt, over 500 MB: linked, it made
 * every dlopen of the plugin cost some 50 ms warm and hundreds cold, and the core dlopens
 * plugins merely to describe them (validating a [cuda] section of device.ini on a machine
 * that uses another backend), and ember-info lists every plugin. Loading it at device open rather than at the
 * first gemm keeps the cost out of the first timed step and makes a missing or broken
 * cuBLAS a clear failure of context creation, not of some op in the middle of a run; a
 * context that opens a CUDA device pays for creating the CUDA context anyway.
 *
 * Where: the toolkit configure found (CU_CUDA_LIBDIR), then the soname of the cuBLAS major
 * the plugin was compiled against through the usual search (LD_LIBRARY_PATH, ld.so.cache),
 * for a toolkit moved or installed as a runtime package. The library stays loaded for the
 * life of the process, like the plugin (-z nodelete): handles of any instance may be alive,
 * and cuBLAS carries its own CUDA runtime, which is not made to be unloaded. */
#include "cuda_backend.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define CU_STR_(x) #x
#define CU_STR(x) CU_STR_(x)
#define CU_BLAS_SONAME "libcublas.so." CU_STR(CUBLAS_VER_MAJOR)

#ifndef CU_CUDA_LIBDIR
#define CU_CUDA_LIBDIR ""
#endif

/* ------------------------------------------------------------------ loading */

/* Guards blas_table: instances in several threads may open devices at once, and a plugin
 * keeps no unsynchronised mutable global state. Once blas_ready the table never changes. */
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static cu_blas_fns blas_table;
static char blas_file[4096];   /* blas_table.path */
static bool blas_ready;

/* Appends one failed attempt, "file (reason)", to why. */
static void note(char *why, size_t n, const char *file, const char *err)
{
    const size_t used = strlen(why);
    if (used + 1 < n)
        snprintf(why + used, n - used, "%s%s (%s)", used ? "; " : "", file,
                 err ? err : "no reason given");
}

/* One candidate file: every symbol or nothing. A file that loads but lacks a symbol is not
 * the cuBLAS we were built for: it is closed again (nothing of it has been called), or the
 * soname tried next would find it already loaded and never reach the real library.
 * RTLD_NOW: a dependency that cannot be resolved fails here, with dlerror's reason, instead
 * of aborting the process at the first call; RTLD_LOCAL: its symbols stay out of the global
 * scope, where another cuBLAS the application loaded may live. */
static bool load_from(const char *file, cu_blas_fns *t, char *why, size_t n)
{
    dlerror();
    void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        note(why, n, file, dlerror());
        return false;
    }
#define CU_BLAS_RESOLVE(field, sym)                                                       \
    dlerror();                                                                            \
    t->field = reinterpret_cast<decltype(t->field)>(dlsym(h, #sym));                      \
    if (!t->field) {                                                                      \
        note(why, n, file, dlerror());                                                    \
        dlclose(h);                                                                       \
        return false;                                                                     \
    }
    CU_BLAS_FNS(CU_BLAS_RESOLVE)
#undef CU_BLAS_RESOLVE
#define CU_BLAS_RESOLVE_OPTIONAL(field, sym)                                              \
    t->field = reinterpret_cast<decltype(t->field)>(dlsym(h, #sym));
    CU_BLAS_FNS_64(CU_BLAS_RESOLVE_OPTIONAL)
#undef CU_BLAS_RESOLVE_OPTIONAL
    dlerror();
    /* the file itself, also when found by soname (for ember-info) */
    Dl_info info;
    const bool where = dladdr(reinterpret_cast<void *>(t->create), &info) && info.dli_fname;
    snprintf(blas_file, sizeof blas_file, "%s", where ? info.dli_fname : file);
    t->path = blas_file;
    return true;
}

bool cu_blas_load(cu_blas_fns *fns, char *why, size_t n)
{
    why[0] = 0;
    pthread_mutex_lock(&blas_lock);
    if (!blas_ready) {
        cu_blas_fns t;
        memset(&t, 0, sizeof t);
        char dir_file[4096];
        snprintf(dir_file, sizeof dir_file, "%s/%s", CU_CUDA_LIBDIR, CU_BLAS_SONAME);
        blas_ready = (CU_CUDA_LIBDIR[0] && load_from(dir_file, &t, why, n)) ||
                     load_from(CU_BLAS_SONAME, &t, why, n);
        if (blas_ready) {
            blas_table = t;
            why[0] = 0;
        }
    }
    const bool ok = blas_ready;
    if (ok)
        *fns = blas_table;
    pthread_mutex_unlock(&blas_lock);
    return ok;
}

/* ------------------------------------------------------------------ status */

const char *cu_blas_status_name(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_(unknown)";
    }
}

static const char *blas_status_text(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the cuBLAS library was not initialised";
    case CUBLAS_STATUS_ALLOC_FAILED: return "cuBLAS could not allocate device memory";
    case CUBLAS_STATUS_INVALID_VALUE: return "an unsupported value or parameter was passed";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "the GPU does not support this operation";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the kernel failed to launch or run on the GPU";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal cuBLAS operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the requested functionality is not supported";
    default: return "cuBLAS error";
    }
}

em_status cu_blas_fail(cu_dev *d, cublasStatus_t s, const char *what, const char *api)
{
    /* a kernel fault under cuBLAS shows as EXECUTION_FAILED; the runtime says if it stuck */
    cudaError_t e = cudaPeekAtLastError();
    if (cu_error_sticky(e))
        return cu_fail(d, e, what, api);
    cudaGetLastError();
    return CU_ERR(d->inst, s == CUBLAS_STATUS_ALLOC_FAILED ? EM_ERR_OOM : EM_ERR_BACKEND,
                  "cuda: %s: %s failed: %s (%s)", what, api, blas_status_text(s),
                  cu_blas_status_name(s));
}

/* ------------------------------------------------------------------ gemm */

/* Row-major C = alpha op(A) op(B) + beta C through column-major cuBLAS: a row-major
 * matrix is its transpose in column-major, so compute C^T = op(B)^T op(A)^T, i.e. cuBLAS
 * with the operands swapped (B first), m and n swapped, and each operand's own transpose
 * flag. The leading dimensions carry over unchanged. */
em_status cu_gemm(void *dev, const em_gemm_args *g)
{
    cu_dev *d = (cu_dev *)dev;
    cu_inst *inst = d->inst;
    if (g->dtype != EM_F32 && g->dtype != EM_F64)
        return CU_ERR(inst, EM_ERR_UNSUPPORTED, "gemm: dtype %s is not supported by the cuda backend",
                      emk_dtype_name(g->dtype));
    if (g->m < 0 || g->n < 0 || g->k < 0 || g->batch < 0)
        return CU_ERR(inst, EM_ERR_INVALID, "gemm: negative size (m %lld, n %lld, k %lld, batch %lld)",
                      (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->batch);
    if (g->m == 0 || g->n == 0 || g->batch == 0)
        return EM_OK;
    if (!g->a || !g->b || !g->c)
        return CU_ERR(inst, EM_ERR_INVALID, "gemm: a buffer is missing");
    /* cuBLAS's checks, stated in row-major terms */
    const int64_t need_a = g->trans_a ? g->m : g->k, need_b = g->trans_b ? g->k : g->n;
    if (g->lda < (need_a > 1 ? need_a : 1) || g->ldb < (need_b > 1 ? need_b : 1) ||
        g->ldc < (g->n > 1 ? g->n : 1))
        return CU_ERR(inst, EM_ERR_INVALID,
                      "gemm: leading dimensions too small (lda %lld, ldb %lld, ldc %lld for "
                      "m %lld, n %lld, k %lld)",
                      (long long)g->lda, (long long)g->ldb, (long long)g->ldc, (long long)g->m,
                      (long long)g->n, (long long)g->k);
    /* sizes past INT_MAX go to the 64-bit entry points, where the library has them */
    const int64_t lim = 2147483647;
    const bool f32 = g->dtype == EM_F32, one = g->batch == 1;
    const bool wide = g->m > lim || g->n > lim || g->k > lim || g->batch > lim || g->lda > lim ||
                      g->ldb > lim || g->ldc > lim;
    bool have_64 = false;
#ifdef CU_BLAS_HAVE_64
    have_64 = f32 ? (one ? d->cb.sgemm_64 != NULL : d->cb.sgemm_strided_batched_64 != NULL)
                  : (one ? d->cb.dgemm_64 != NULL : d->cb.dgemm_strided_batched_64 != NULL);
#endif
    if (wide && !have_64)
        return CU_ERR(inst, EM_ERR_UNSUPPORTED,
                      "gemm: sizes beyond 2^31-1 need cuBLAS's 64-bit entry points, which %s "
                      "lacks (m %lld, n %lld, k %lld, batch %lld)",
                      d->cb.path ? d->cb.path : "the cuBLAS loaded", (long long)g->m,
                      (long long)g->n, (long long)g->k, (long long)g->batch);
    em_status st = cu_enter(d);
    if (st != EM_OK)
        return st;
    const cublasOperation_t opb = g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t opa = g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int64_t M = g->n, N = g->m, K = g->k;
    const int64_t ldb = g->ldb, lda = g->lda, ldc = g->ldc, batch = g->batch;
    const long long sa = (long long)g->a_batch_stride, sb = (long long)g->b_batch_stride,
                    sc = (long long)g->c_batch_stride;
    cublasStatus_t s = CUBLAS_STATUS_NOT_SUPPORTED;
    const char *api = "cuBLAS";
    if (f32) {
        const float alpha = (float)g->alpha, beta = (float)g->beta;
        const float *A = (const float *)g->a + g->a_offset;
        const float *B = (const float *)g->b + g->b_offset;
        float *C = (float *)g->c + g->c_offset;
        if (wide) {
#ifdef CU_BLAS_HAVE_64
            if (one) {
                api = "cublasSgemm_64";
                s = d->cb.sgemm_64(d->blas, opb, opa, M, N, K, &alpha, B, ldb, A, lda, &beta, C, ldc);
            } else {
                api = "cublasSgemmStridedBatched_64";
                s = d->cb.sgemm_strided_batched_64(d->blas, opb, opa, M, N, K, &alpha, B, ldb, sb,
                                                   A, lda, sa, &beta, C, ldc, sc, batch);
            }
#endif
        } else if (one) {
            api = "cublasSgemm";
            s = d->cb.sgemm(d->blas, opb, opa, (int)M, (int)N, (int)K, &alpha, B, (int)ldb, A,
                            (int)lda, &beta, C, (int)ldc);
        } else {
            api = "cublasSgemmStridedBatched";
            s = d->cb.sgemm_strided_batched(d->blas, opb, opa, (int)M, (int)N, (int)K, &alpha, B,
                                            (int)ldb, sb, A, (int)lda, sa, &beta, C, (int)ldc, sc,
                                            (int)batch);
        }
    } else {
        const double alpha = g->alpha, beta = g->beta;
        const double *A = (const double *)g->a + g->a_offset;
        const double *B = (const double *)g->b + g->b_offset;
        double *C = (double *)g->c + g->c_offset;
        if (wide) {
#ifdef CU_BLAS_HAVE_64
            if (one) {
                api = "cublasDgemm_64";
                s = d->cb.dgemm_64(d->blas, opb, opa, M, N, K, &alpha, B, ldb, A, lda, &beta, C, ldc);
            } else {
                api = "cublasDgemmStridedBatched_64";
                s = d->cb.dgemm_strided_batched_64(d->blas, opb, opa, M, N, K, &alpha, B, ldb, sb,
                                                   A, lda, sa, &beta, C, ldc, sc, batch);
            }
#endif
        } else if (one) {
            api = "cublasDgemm";
            s = d->cb.dgemm(d->blas, opb, opa, (int)M, (int)N, (int)K, &alpha, B, (int)ldb, A,
                            (int)lda, &beta, C, (int)ldc);
        } else {
            api = "cublasDgemmStridedBatched";
            s = d->cb.dgemm_strided_batched(d->blas, opb, opa, (int)M, (int)N, (int)K, &alpha, B,
                                            (int)ldb, sb, A, (int)lda, sa, &beta, C, (int)ldc, sc,
                                            (int)batch);
        }
    }
    if (s != CUBLAS_STATUS_SUCCESS)
        return cu_blas_fail(d, s, "gemm", api);
    return EM_OK;
}
