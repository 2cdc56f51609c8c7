/* bench/clblast_gemm.c — CLBlast's sgemm/dgemm on the first OpenCL device, timed the way
 * ember-bench times its sgemm/dgemm workloads (median of 5 repetitions of 10 products after
 * a warm-up, queue finished before each clock read), so docs/benchmarks.md can say whether
 * CLBlast would beat the opencl backend's own gemm kernel. Not built by make: CLBlast is
 * not a dependency of ember.
 *
 *   cc -O2 bench/clblast_gemm.c -o clblast_gemm -lclblast -lOpenCL && ./clblast_gemm 1024
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <clblast_c.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run(cl_context ctx, cl_command_queue q, size_t n, int f64)
{
    const size_t esz = f64 ? sizeof(double) : sizeof(float), bytes = n * n * esz;
    cl_int err;
    cl_mem a = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem c = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    char *host = calloc(1, bytes);
    if (!host || !a || !b || !c) {
        fprintf(stderr, "clblast_gemm: allocation failed\n");
        return 1;
    }
    for (size_t i = 0; i < n * n; i++) {
        if (f64)
            ((double *)host)[i] = (double)(i % 7) * 0.25 - 0.5;
        else
            ((float *)host)[i] = (float)(i % 7) * 0.25f - 0.5f;
    }
    clEnqueueWriteBuffer(q, a, CL_TRUE, 0, bytes, host, 0, NULL, NULL);
    clEnqueueWriteBuffer(q, b, CL_TRUE, 0, bytes, host, 0, NULL, NULL);
    double times[5];
    for (int r = -1; r < 5; r++) {   /* r = -1: warm-up (CLBlast compiles its kernels) */
        double t0 = now_us();
        for (int i = 0; i < 10; i++) {
            CLBlastStatusCode st =
                f64 ? CLBlastDgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo,
                                   n, n, n, 1.0, a, 0, n, b, 0, n, 0.0, c, 0, n, &q, NULL)
                    : CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo,
                                   n, n, n, 1.0f, a, 0, n, b, 0, n, 0.0f, c, 0, n, &q, NULL);
            if (st != CLBlastSuccess) {
                fprintf(stderr, "clblast_gemm: CLBlast status %d\n", (int)st);
                return 1;
            }
        }
        clFinish(q);
        if (r >= 0)
            times[r] = (now_us() - t0) / 10;
    }
    qsort(times, 5, sizeof times[0], cmp);
    printf("clblast %cgemm-%zu %12.2f us/step  (min %.2f, %.1f GFLOP/s)\n", f64 ? 'd' : 's', n,
           times[2], times[0], 2.0 * n * n * n / times[2] * 1e-3);
    free(host);
    clReleaseMemObject(a);
    clReleaseMemObject(b);
    clReleaseMemObject(c);
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 1024;
    cl_platform_id plat;
    cl_device_id dev;
    cl_int err;
    if (clGetPlatformIDs(1, &plat, NULL) != CL_SUCCESS ||
        clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL) != CL_SUCCESS) {
        fprintf(stderr, "clblast_gemm: no OpenCL device\n");
        return 1;
    }
    char name[256] = "";
    clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL);
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
    printf("# CLBlast on %s\n", name);
    int rc = run(ctx, q, n, 0) || run(ctx, q, n, 1);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    return rc;
}
