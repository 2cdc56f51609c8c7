/* backends/cuda/cuda_reduce.cu — the reductions over several dims of the cuda backend: sum
 * and prod. Deterministic, one launch each: the partition of cuda_index.h (emcu_red_plan)
 * fixes the order of every operation from the shapes alone, a split reduction's last
 * block combines the partials in order.
 *
 * Accumulators: double for float outputs (an f32 sum or product accumulates in double),
 * 64-bit unsigned for i64 outputs, so integer sums and products wrap as PyTorch's do. sum
 * takes f32, f64 or bool input into a float output, or i64, i32, u8 or bool input into
 * i64; prod keeps its input's dtype (f32, f64, i64). */
#include "cuda_ew.cuh"

#include <type_traits>

typedef unsigned long long ull;

/* ------------------------------------------------------------------ device side */

struct op_add {
    template <class A>
    static __device__ __forceinline__ A apply(A a, A b) { return a + b; }
    template <class A>
    static __device__ __forceinline__ A identity() { return (A)0; }
};

struct op_mul {
    template <class A>
    static __device__ __forceinline__ A apply(A a, A b) { return a * b; }
    template <class A>
    static __device__ __forceinline__ A identity() { return (A)1; }
};

/* An input element as the accumulator: bool is 0 / 1; a signed integer sign-extends to 64
 * bits before it becomes unsigned, so that the wrapped sum is the two's complement one. */
template <class A, class T>
__device__ __forceinline__ A as_acc(T x, bool is_bool)
{
    if (is_bool)
        return (A)(x != 0);
    if constexpr (std::is_same<A, ull>::value)
        return (A)(int64_t)x;
    else
        return (A)x;
}

/* The result: float outputs scale * acc; i64 outputs the wrapped integer, times the scale
 * converted to an integer (as the cpu backend) in the rare case that it is not 1. */
template <class TO, class A>
__device__ __forceinline__ TO from_acc(A acc, double scale)
{
    if constexpr (std::is_same<A, ull>::value)
        return (TO)(int64_t)(scale == 1.0 ? acc : acc * (ull)emcu_f2i_i64(scale));
    else
        return (TO)(acc * scale);
}

/* Combine v over the block's by reducers of each of its bx outputs by a fixed tree (by is
 * a power of two); every thread gets the result of its own output column tx. */
template <class OP, class A>
__device__ __forceinline__ A block_tree(A *sm, A v, int tid, int tx, int ty, int bx, int by)
{
    sm[tid] = v;
    __syncthreads();
    for (int s = by / 2; s > 0; s >>= 1) {
        if (ty < s)
            sm[tid] = OP::apply(sm[tid], sm[tid + s * bx]);
        __syncthreads();
    }
    return sm[tx];
}

template <class OP, class A, class TI, class TO>
__global__ void __launch_bounds__(EMCU_RED_THREADS)
    k_reduce(const TI *in, bool in_bool, TO *out, const emcu_red_plan p, double scale,
             A *partial, unsigned *counters)
{
    __shared__ A sm[EMCU_RED_THREADS];
    __shared__ int s_last;
    const int tid = (int)threadIdx.x;
    const int tx = tid % p.bx, ty = tid / p.bx;
    int64_t tile, ch;
    emcu_red_block(&p, (int64_t)blockIdx.x, &tile, &ch);
    const int64_t o = emcu_red_output(&p, tile, tx);
    int64_t ooff = 0;
    A acc = OP::template identity<A>();
    if (o < p.M) {
        int64_t ioff, r, end, step;
        emcu_red_kept(&p, o, &ioff, &ooff);
        emcu_red_range(&p, ch, ty, &r, &end, &step);
        for (; r < end; r += step)
            acc = OP::apply(acc, as_acc<A>(in[ioff + emcu_red_roff(&p, r)], in_bool));
    }
    acc = block_tree<OP>(sm, acc, tid, tx, ty, p.bx, p.by);
    if (p.nch == 1) {
        if (ty == 0 && o < p.M)
            out[ooff] = from_acc<TO>(acc, scale);
        return;
    }
    /* split: publish this chunk's partial; the tile's last block combines them in order */
    if (ty == 0 && o < p.M)
        partial[o * p.nch + ch] = acc;
    __threadfence();
    __syncthreads();
    if (tid == 0)
        s_last = atomicAdd(&counters[tile], 1u) == (unsigned)(p.nch - 1);
    __syncthreads();
    if (!s_last)
        return;
    __threadfence();
    A tot = OP::template identity<A>();
    if (o < p.M)
        for (int64_t j = ty; j < p.nch; j += p.by)
            tot = OP::apply(tot, __ldcg(&partial[o * p.nch + j]));
    tot = block_tree<OP>(sm, tot, tid, tx, ty, p.bx, p.by);
    if (ty == 0 && o < p.M)
        out[ooff] = from_acc<TO>(tot, scale);
    if (tid == 0)
        counters[tile] = 0;   /* ready for the next launch on this stream */
}

/* ------------------------------------------------------------------ host side */

template <class OP, class A, class TI, class TO>
static void launch(cu_dev *d, const emcu_red_plan &p, const void *in, bool in_bool, void *out,
                   double scale, double *partial, unsigned *counters)
{
    k_reduce<OP, A, TI, TO><<<dim3((unsigned)p.nblocks), EMCU_RED_THREADS, 0, d->stream>>>(
        (const TI *)in, in_bool, (TO *)out, p, scale, (A *)partial, counters);
}

/* The empty reduction's value in every output: 0 for a sum, 1 for a product. */
static em_status fill_outputs(cu_dev *d, const em_kview *out, int64_t v)
{
    em_kargs fk;
    memset(&fk, 0, sizeof fk);
    fk.struct_size = sizeof fk;
    fk.out = out;
    fk.outs = &fk.out;
    fk.n_out = 1;
    fk.p[0] = (double)v;
    fk.ip = &v;
    fk.n_ip = 1;
    return cu_k_fill(d, &fk);
}

/* sum (is_prod false) or prod: checks, plan, launch. */
static em_status reduce(cu_dev *d, const char *kname, const em_kargs *ka, bool is_prod)
{
    const em_kview *in = ka->in[0], *out = ka->out;
    em_status st;
    if ((st = check_view(d, kname, "out", out)) != EM_OK ||
        (st = check_view(d, kname, "in[0]", in)) != EM_OK)
        return st;
    const int32_t odt = out->dtype, idt = in->dtype;
    if (odt != EM_F32 && odt != EM_F64 && odt != EM_I64)
        return unsupported(d, kname, odt);
    if (is_prod && idt != odt)
        return mismatch(d, kname, "in[0]", idt, odt);
    const bool float_out = odt != EM_I64;
    if (float_out && idt != EM_F32 && idt != EM_F64 && idt != EM_BOOL)
        return CU_ERR(d->inst, EM_ERR_DTYPE, "%s: in[0] has dtype %s, expected f32, f64 or bool",
                      kname, emk_dtype_name(idt));
    if (!float_out && idt != EM_I64 && idt != EM_I32 && idt != EM_U8 && idt != EM_BOOL)
        return CU_ERR(d->inst, EM_ERR_DTYPE,
                      "%s: in[0] has dtype %s, expected an integer dtype or bool", kname,
                      emk_dtype_name(idt));
    if (in->ndim != out->ndim)
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: in[0] has %d dims but out has %d", kname,
                      (int)in->ndim, (int)out->ndim);
    emcu_red_plan p;
    int bad = 0;
    const int r = emcu_red_plan_build(in->ndim, in->shape, in->strides, out->shape, out->strides,
                                      &p, &bad);
    switch (r) {
    case EMCU_RED_OK: break;
    case EMCU_RED_EMPTY_OUT: return EM_OK;
    case EMCU_RED_EMPTY_IN: return fill_outputs(d, out, is_prod ? 1 : 0);
    case EMCU_RED_BAD_SHAPE:
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: out has size %lld in dim %d, expected 1 or %lld",
                      kname, (long long)out->shape[bad], bad, (long long)in->shape[bad]);
    default:
        return CU_ERR(d->inst, EM_ERR_UNSUPPORTED,
                      "%s: %lld outputs of %lld elements need more thread blocks than a grid holds",
                      kname, (long long)p.M, (long long)p.L);
    }
    if ((st = cu_enter(d)) != EM_OK)
        return st;
    double *partial = nullptr;
    unsigned *counters = nullptr;
    /* the partials are 8 bytes whatever the accumulator */
    if (p.nch > 1 && (st = cu_red_scratch(d, (size_t)emcu_red_counter_bytes(&p),
                                          (size_t)emcu_red_partial_bytes(&p), &counters,
                                          &partial)) != EM_OK)
        return st;
    const void *ib = (const char *)in->buf + in->offset * (int64_t)emk_dtype_size(idt);
    void *ob = (char *)out->buf + out->offset * (int64_t)emk_dtype_size(odt);
    const bool ibool = idt == EM_BOOL;
    const double scale = is_prod ? 1.0 : ka->p[0];
    if (is_prod) {
        if (odt == EM_F32)
            launch<op_mul, double, float, float>(d, p, ib, false, ob, 1.0, partial, counters);
        else if (odt == EM_F64)
            launch<op_mul, double, double, double>(d, p, ib, false, ob, 1.0, partial, counters);
        else
            launch<op_mul, ull, int64_t, int64_t>(d, p, ib, false, ob, 1.0, partial, counters);
        return launched(d, kname);
    }
    if (float_out) {
        on_float(odt, [&](auto z) {
            using TO = decltype(z);
            if (idt == EM_F32)
                launch<op_add, double, float, TO>(d, p, ib, false, ob, scale, partial, counters);
            else if (idt == EM_F64)
                launch<op_add, double, double, TO>(d, p, ib, false, ob, scale, partial, counters);
            else
                launch<op_add, double, u8, TO>(d, p, ib, true, ob, scale, partial, counters);
            return EM_OK;
        });
    } else {
        on_int(idt, [&](auto z) {
            using TI = decltype(z);
            launch<op_add, ull, TI, int64_t>(d, p, ib, ibool, ob, scale, partial, counters);
            return EM_OK;
        });
    }
    return launched(d, kname);
}

em_status cu_k_sum(void *dev, const em_kargs *ka)
{
    return reduce((cu_dev *)dev, "sum", ka, false);
}

em_status cu_k_prod(void *dev, const em_kargs *ka)
{
    return reduce((cu_dev *)dev, "prod", ka, true);
}
