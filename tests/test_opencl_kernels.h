/* tests/test_opencl_kernels.h — what the two files of the test_opencl_kernels program share:
 * test_opencl_kernels.c opens the plugins and runs kernels on them (check, refused,
 * run_ocl), test_opencl_kernels_dim.c holds the tests of the reductions, the kernels along
 * one dim and indexing. */
#ifndef EMBER_TEST_OPENCL_KERNELS_H
#define EMBER_TEST_OPENCL_KERNELS_H

#include "kernel_views.h"

/* the opencl device runs dtype dt (f64 only with fp64) */
int runs(int32_t dt);

/* Run k on opencl (it must declare dt and succeed) and on cpu where cpu declares dt; each
 * output must match want[i] (see expect). outs hold the initial contents. */
void check(kdesc k, int32_t dt, const hv *outs, int nout, hv *ins, int nin, const double *p,
           const int64_t *ip, int nip, const hv *want, double tol, double atol,
           const char *what);

/* The call must fail on opencl and leave every output as it was. */
void refused(kdesc k, hv *outs, int nout, hv *ins, int nin, const int64_t *ip, int nip,
             const char *what);

/* One call on opencl, outputs read back (run_on). */
em_status run_ocl(kdesc k, hv *outs, int nout, hv *ins, int nin, const double *p,
                  const int64_t *ip, int nip);

/* test_opencl_kernels_dim.c */
void test_reductions(void **state);
void test_max_min_dim(void **state);
void test_softmax(void **state);
void test_index_select_gather(void **state);
void test_scatter_add(void **state);
void test_refusals(void **state);

#endif
