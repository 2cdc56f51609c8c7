/* backends/cuda/cuda_optim.cu — the cuda backend's fused optimizer kernels, adam (ABI 1.3)
 * and sgd (ABI 1.7): a grid-stride loop over a contiguous parameter, its gradient and its
 * state, each element computed by cuda_math.h's emcu_adam_<dtype> / emcu_sgd_<dtype> (the
 * definitions of ember/backend.h,
 * compiled with --fmad=false so every operation rounds on its own). The step's scalars are
 * computed in double and converted to the dtype on the host, as the scalar kernels' are. */
#include "cuda_ew.cuh"

/* ------------------------------------------------------------------ device side */

template <class T, class SC>
__global__ void __launch_bounds__(EW_THREADS)
    k_adam(int flags, const SC sc, int64_t n, T *po, T *mo, T *vo, T *xo, const T *pi,
           const T *gi, const T *mi, const T *vi, const T *xi)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS;
    for (int64_t i = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; i < n; i += stride) {
        if constexpr (sizeof(T) == 4)
            emcu_adam_f32(flags, &sc, i, po, mo, vo, xo, pi, gi, mi, vi, xi);
        else
            emcu_adam_f64(flags, &sc, i, po, mo, vo, xo, pi, gi, mi, vi, xi);
    }
}

template <class T, class SC>
__global__ void __launch_bounds__(EW_THREADS)
    k_sgd(int flags, const SC sc, int64_t n, T *po, T *bo, const T *pi, const T *gi,
          const T *bi)
{
    const int64_t stride = (int64_t)gridDim.x * EW_THREADS;
    for (int64_t i = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; i < n; i += stride) {
        if constexpr (sizeof(T) == 4)
            emcu_sgd_f32(flags, &sc, i, po, bo, pi, gi, bi);
        else
            emcu_sgd_f64(flags, &sc, i, po, bo, pi, gi, bi);
    }
}

/* ------------------------------------------------------------------ host side */

/* v holds n contiguous elements of dt (n < 0: take v's count) */
static em_status flat_view(cu_dev *d, const char *kname, const em_kview *v, const char *what,
                           int32_t dt, int64_t *n)
{
    em_status st = check_view(d, kname, what, v);
    if (st != EM_OK)
        return st;
    if (v->dtype != dt)
        return mismatch(d, kname, what, v->dtype, dt);
    int64_t want = 1;
    for (int k = v->ndim - 1; k >= 0; k--) {
        if (v->shape[k] != 1 && v->strides[k] != want)
            return CU_ERR(d->inst, EM_ERR_INVALID, "%s: %s is not contiguous (stride %lld "
                          "in dim %d)", kname, what, (long long)v->strides[k], k);
        want *= v->shape[k];
    }
    if (*n >= 0 && want != *n)
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: %s has %lld elements, out has %lld",
                      kname, what, (long long)want, (long long)*n);
    *n = want;
    return EM_OK;
}

/* The operands of a fused step, outs[0..max_out) then ins[0..max_out + max_in) (names[] in
 * that order), each checked flat with n elements of dt, as device pointers; those the flags
 * leave out stay null (the kernel never touches them). */
static em_status optim_pointers(cu_dev *d, const char *kname, const em_kargs *ka, int max_out,
                                int max_in, const char *const *names, int32_t dt, char **ptr,
                                int64_t *n)
{
    const size_t esz = dt == EM_F32 ? 4 : 8;
    *n = -1;
    for (int k = 0; k < max_out + max_in; k++) {
        const em_kview *v = k < max_out ? (k < (int)ka->n_out ? ka->outs[k] : nullptr)
                                        : (k - max_out < (int)ka->n_in ? ka->ins[k - max_out]
                                                                       : nullptr);
        ptr[k] = nullptr;
        if (!v)
            continue;
        em_status st = flat_view(d, kname, v, names[k], dt, n);
        if (st != EM_OK)
            return st;
        ptr[k] = (char *)v->buf + v->offset * (int64_t)esz;
    }
    return EM_OK;
}

template <class T, class SC>
static void launch(cu_dev *d, int flags, const double *sc, int64_t n, T *const *o,
                   const T *const *in)
{
    SC s;
    for (int k = 0; k < EMCU_ADAM_NSC; k++)
        s.v[k] = (T)sc[k];
    const unsigned grid = cu_blocks(d, n, EW_THREADS);
    k_adam<T, SC><<<grid, EW_THREADS, 0, d->stream>>>(flags, s, n, o[0], o[1], o[2], o[3],
                                                      in[0], in[1], in[2], in[3], in[4]);
}

em_status cu_k_adam(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    if (ka->struct_size < offsetof(em_kargs, fp) + sizeof ka->fp || ka->n_ip < 4 ||
        ka->n_fp < 3 || !ka->ip || !ka->fp || !ka->outs || !ka->ins)
        return CU_ERR(d->inst, EM_ERR_INVALID, "adam: expected ip[4] and fp[3] (n_ip %u, "
                      "n_fp %u)", (unsigned)ka->n_ip, (unsigned)ka->n_fp);
    const int flags = emcu_adam_flags(ka->ip, ka->fp);
    const bool ams = ka->ip[1] != 0, first = ka->ip[3] != 0;
    const uint32_t n_out = ams ? 4u : 3u, n_in = first ? 2u : ams ? 5u : 4u;
    if (ka->n_out != n_out || ka->n_in != n_in)
        return CU_ERR(d->inst, EM_ERR_INVALID, "adam: expected %u outputs and %u inputs, got "
                      "%u and %u", (unsigned)n_out, (unsigned)n_in, (unsigned)ka->n_out,
                      (unsigned)ka->n_in);
    const int32_t dt = ka->outs[0] ? ka->outs[0]->dtype : EM_F32;
    if (dt != EM_F32 && dt != EM_F64)
        return unsupported(d, "adam", dt);
    static const char *const names[9] = {"outs[0] (p')", "outs[1] (m')", "outs[2] (v')",
                                         "outs[3] (vmax')", "ins[0] (p)", "ins[1] (g)",
                                         "ins[2] (m)", "ins[3] (v)", "ins[4] (vmax)"};
    int64_t n;
    char *ptr[9];
    em_status st = optim_pointers(d, "adam", ka, 4, 5, names, dt, ptr, &n);
    if (st != EM_OK)
        return st;
    if (n == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    double sc[EMCU_ADAM_NSC];
    emcu_adam_scalars(ka->p, ka->fp, sc);
    if (dt == EM_F32) {
        float *o[4] = {(float *)ptr[0], (float *)ptr[1], (float *)ptr[2], (float *)ptr[3]};
        const float *in[5] = {(float *)ptr[4], (float *)ptr[5], (float *)ptr[6],
                              (float *)ptr[7], (float *)ptr[8]};
        launch<float, emcu_adam_sc_f32>(d, flags, sc, n, o, in);
    } else {
        double *o[4] = {(double *)ptr[0], (double *)ptr[1], (double *)ptr[2], (double *)ptr[3]};
        const double *in[5] = {(double *)ptr[4], (double *)ptr[5], (double *)ptr[6],
                               (double *)ptr[7], (double *)ptr[8]};
        launch<double, emcu_adam_sc_f64>(d, flags, sc, n, o, in);
    }
    return launched(d, "adam");
}

template <class T, class SC>
static void launch_sgd(cu_dev *d, int flags, const double *sc, int64_t n, T *const *o,
                       const T *const *in)
{
    SC s;
    for (int k = 0; k < EMCU_SGD_NSC; k++)
        s.v[k] = (T)sc[k];
    const unsigned grid = cu_blocks(d, n, EW_THREADS);
    k_sgd<T, SC><<<grid, EW_THREADS, 0, d->stream>>>(flags, s, n, o[0], o[1], in[0], in[1],
                                                     in[2]);
}

em_status cu_k_sgd(void *dev, const em_kargs *ka)
{
    cu_dev *d = (cu_dev *)dev;
    if (ka->struct_size < offsetof(em_kargs, fp) + sizeof ka->fp || ka->n_ip < 3 || !ka->ip ||
        !ka->outs || !ka->ins)
        return CU_ERR(d->inst, EM_ERR_INVALID, "sgd: expected ip[3] (n_ip %u)",
                      (unsigned)ka->n_ip);
    const int flags = emcu_sgd_flags(ka->p, ka->ip);
    const bool mom = (flags & EMCU_SGD_MOMENTUM) != 0, first = (flags & EMCU_SGD_FIRST) != 0;
    const uint32_t n_out = mom ? 2u : 1u, n_in = mom && !first ? 3u : 2u;
    if (ka->n_out != n_out || ka->n_in != n_in)
        return CU_ERR(d->inst, EM_ERR_INVALID, "sgd: expected %u outputs and %u inputs, got "
                      "%u and %u", (unsigned)n_out, (unsigned)n_in, (unsigned)ka->n_out,
                      (unsigned)ka->n_in);
    const int32_t dt = ka->outs[0] ? ka->outs[0]->dtype : EM_F32;
    if (dt != EM_F32 && dt != EM_F64)
        return unsupported(d, "sgd", dt);
    static const char *const names[5] = {"outs[0] (p')", "outs[1] (b')", "ins[0] (p)",
                                         "ins[1] (g)", "ins[2] (b)"};
    int64_t n;
    char *ptr[5];
    em_status st = optim_pointers(d, "sgd", ka, 2, 3, names, dt, ptr, &n);
    if (st != EM_OK)
        return st;
    if (n == 0)
        return EM_OK;
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    double sc[EMCU_SGD_NSC];
    emcu_sgd_scalars(ka->p, sc);
    if (dt == EM_F32) {
        float *o[2] = {(float *)ptr[0], (float *)ptr[1]};
        const float *in[3] = {(float *)ptr[2], (float *)ptr[3], (float *)ptr[4]};
        launch_sgd<float, emcu_sgd_sc_f32>(d, flags, sc, n, o, in);
    } else {
        double *o[2] = {(double *)ptr[0], (double *)ptr[1]};
        const double *in[3] = {(double *)ptr[2], (double *)ptr[3], (double *)ptr[4]};
        launch_sgd<double, emcu_sgd_sc_f64>(d, flags, sc, n, o, in);
    }
    return launched(d, "sgd");
}
