/* core/plugin/kernels.c — what the core knows about each kernel entry of em_backend_ops: its name,
 * whether it is optional, the dtypes ABI 1.0 promised for it (what a plugin that declares
 * nothing gets), the dtypes the core calls it with, and which of its views have a dtype the
 * kernel's definition fixes (a comparison's bool output); and, per loaded plugin and device,
 * the dtypes it runs natively. Every kernel call is checked against that here, so a plugin is
 * never handed a dtype it did not declare. */
#include "config.h"
#include "internal.h"

#include <pthread.h>
#include <string.h>

#define F EM_DTYPES_ABI10_FLOAT
#define A EM_DTYPES_ABI10_ANY
#define V_OUT EM__VIEW_OUT
#define V_IN(i) EM__VIEW_IN(i)
#define N EM_DTYPES_INT
#define ALL EM_DTYPES_ALL
#define K(f, opt, dflt, fixed) K2(f, opt, dflt, dflt, fixed)
/* K2: the core also calls the kernel with dtypes beyond ABI 1.0's promise (integers) */
#define K2(f, opt, dflt, uses, fixed)                                                            \
    {#f, offsetof(em_backend_ops, f), offsetof(em_kernel_dtypes, f), opt, dflt, uses, fixed}

const em__kernel_desc em__kernels[] = {
    K(gemm, false, F, 0),
    K2(fill, false, A, ALL, 0),
    K(rng_uniform, false, F, 0),
    K(rng_normal, false, F, 0),
    K2(copy, false, A, ALL, 0),
    K2(neg, false, F, F | N, 0),
    K(exp, false, F, 0),
    K(log, false, F, 0),
    K(sqrt, false, F, 0),
    K2(abs, false, F, F | N, 0),
    K(relu, false, F, 0),
    K(tanh, false, F, 0),
    K(sigmoid, false, F, 0),
    K2(add_scalar, false, F, F | N, 0),
    K2(mul_scalar, false, F, F | N, 0),
    K2(rsub_scalar, false, F, F | N, 0),
    K(div_scalar, false, F, 0),
    K(rdiv_scalar, false, F, 0),
    K(pow_scalar, false, F, 0),
    K2(clamp, false, F, F | N, 0),
    K2(add, false, F, F | N, 0),
    K2(sub, false, F, F | N, 0),
    K2(mul, false, F, F | N, 0),
    K(div, false, F, 0),
    K2(maximum, false, F, F | N, 0),
    K2(minimum, false, F, F | N, 0),
    K2(lt, false, A, ALL, V_OUT),
    K2(le, false, A, ALL, V_OUT),
    K2(gt, false, A, ALL, V_OUT),
    K2(ge, false, A, ALL, V_OUT),
    K2(eq, false, A, ALL, V_OUT),
    K2(ne, false, A, ALL, V_OUT),
    K2(where, false, A, ALL, V_IN(0)),
    K2(masked_fill, false, A, ALL, V_IN(1)),
    K2(sum, false, F, F | EM_DTYPE_BIT(EM_I64), 0),
    K(relu_backward, true, F, 0),
    K(clamp_backward, true, F, 0),
    K(pow_backward, true, F, 0),
    K(tanh_backward, true, F, 0),
    K(sigmoid_backward, true, F, 0),
    /* ABI 1.2 */
    K(log1p, false, F, 0),
    K(expm1, false, F, 0),
    K(sin, false, F, 0),
    K(cos, false, F, 0),
    K(erf, false, F, 0),
    K(floor, false, F, 0),
    K(ceil, false, F, 0),
    K(round, false, F, 0),
    K2(sign, false, F, F | N, 0),
    K(pow, false, F, 0),
    K2(floor_divide, false, F, F | N, 0),
    K2(remainder, false, F, F | N, 0),
    K2(prod, false, F, F | EM_DTYPE_BIT(EM_I64), 0),
    K2(max_dim, false, F, F | N, 0),
    K2(min_dim, false, F, F | N, 0),
    K(softmax, false, F, 0),
    K(log_softmax, false, F, 0),
    K2(index_select, false, A, ALL, V_IN(1)),
    K2(gather, false, A, ALL, V_IN(1)),
    K2(scatter_add, false, F, F | N, V_IN(0)),
    /* ABI 1.3 */
    K(adam, true, F, 0),
    /* ---- ABI 1.4: pooling and normalisation ---- */
    K(avg_pool2d, false, F, 0),
    K(avg_pool2d_grad, false, F, 0),
    /* ABI 1.4: convolution */
    K(im2col, false, F, 0),
    K(col2im, false, F, 0),
    K(max_pool2d, false, F, 0),
    /* ---- ABI 1.4: whole convolutions (optional) ---- */
    K(conv2d, true, F, 0),
    K(conv2d_grad_input, true, F, 0),
    K(conv2d_grad_weight, true, F, 0),
    /* ---- ABI 1.5: max_pool2d backward ---- */
    K(max_pool2d_grad, true, F, V_IN(1)),
    /* ---- ABI 1.7: SGD's step ---- */
    K(sgd, true, F, 0),
};
const int em__n_kernels = (int)(sizeof em__kernels / sizeof em__kernels[0]);
#undef K
#undef K2

/* An entry appended to em_backend_ops or em_kernel_dtypes without a line above would be
 * invisible to the dtype checks, ember-info and the registry: make that a build error. */
/* The kernels are two runs of entries: those of 1.0 (gemm .. sigmoid_backward, before
 * `dtypes`) and those from 1.2 on (log1p .. adam .. the end, after the asynchrony entries). */
_Static_assert((offsetof(em_backend_ops, dtypes) - offsetof(em_backend_ops, gemm)) /
                           sizeof(em_kernel_fn) +
                       (sizeof(em_backend_ops) - offsetof(em_backend_ops, log1p)) /
                           sizeof(em_kernel_fn) ==
                   sizeof em__kernels / sizeof em__kernels[0],
               "em__kernels must list every kernel entry of em_backend_ops");
/* The masks are 32-bit after a size_t: with an odd count the struct ends in 4 bytes of
 * padding (sizeof rounds up to size_t's alignment), which the next mask appended fills. */
#define MASKS_END(last) (offsetof(em_kernel_dtypes, last) + sizeof(em_dtype_mask))
_Static_assert(MASKS_END(sgd) <= sizeof(em_kernel_dtypes) &&
                   sizeof(em_kernel_dtypes) - MASKS_END(sgd) < _Alignof(em_kernel_dtypes),
               "a mask appended to em_kernel_dtypes after sgd needs a line above");
_Static_assert((MASKS_END(sgd) - offsetof(em_kernel_dtypes, gemm)) / sizeof(em_dtype_mask) ==
                   sizeof em__kernels / sizeof em__kernels[0],
               "em_kernel_dtypes must have one mask per kernel entry");
_Static_assert(offsetof(em_backend_ops, sgd) + sizeof(em_kernel_fn) == sizeof(em_backend_ops),
               "a kernel appended to em_backend_ops after sgd needs a line above");
#undef MASKS_END
_Static_assert(sizeof em__kernels / sizeof em__kernels[0] <= EM__MAX_KERNELS,
               "raise EM__MAX_KERNELS");

/* offset in em_backend_ops / sizeof(void *) -> kernel index (-1: not a kernel) */
#define SLOTS (sizeof(em_backend_ops) / sizeof(void *) + 1)
static signed char by_slot[SLOTS];
static pthread_once_t by_slot_once = PTHREAD_ONCE_INIT;

static void by_slot_init(void)
{
    memset(by_slot, -1, sizeof by_slot);
    for (int k = 0; k < em__n_kernels; k++)
        by_slot[em__kernels[k].offset / sizeof(void *)] = (signed char)k;
}

int em__kernel_index(size_t offset)
{
    /* the kernels of 1.0 are one run of entries: no table needed on every call */
    if (offset >= offsetof(em_backend_ops, gemm) && offset < offsetof(em_backend_ops, dtypes))
        return (int)((offset - offsetof(em_backend_ops, gemm)) / sizeof(em_kernel_fn));
    pthread_once(&by_slot_once, by_slot_init);
    size_t s = offset / sizeof(void *);
    return s < SLOTS && offset % sizeof(void *) == 0 ? by_slot[s] : -1;
}

const char *em__kernel_name(size_t offset)
{
    int i = em__kernel_index(offset);
    return i >= 0 ? em__kernels[i].name : "?";
}

void em__plugin_masks(const em_plugin *p, em_dtype_mask *mask)
{
    /* The plugin's declaration, zero-extended: masks past its struct_size read as 0. */
    em_kernel_dtypes d;
    memset(&d, 0, sizeof d);
    const em_kernel_dtypes *pd = p->ops.dtypes;
    if (pd && pd->struct_size > sizeof(size_t))
        memcpy(&d, pd, pd->struct_size < sizeof d ? pd->struct_size : sizeof d);
    for (int k = 0; k < em__n_kernels; k++) {
        const em__kernel_desc *kd = &em__kernels[k];
        em_dtype_mask m;
        memcpy(&m, (const char *)&d + kd->dtypes_offset, sizeof m);
        mask[k] = !em__kernel_at(&p->ops, kd->offset) ? 0 : m ? m : kd->dflt;
    }
}

void em__device_masks(const em_plugin *p, const em_device_props *props, em_dtype_mask *mask)
{
    em__plugin_masks(p, mask);
    if (!props->fp64)
        for (int k = 0; k < em__n_kernels; k++)
            mask[k] &= ~EM_DTYPE_BIT(EM_F64);
}

/* The first view of a whose dtype is not in mask (fixed views aside): its dtype, or -1. */
int em__kargs_undeclared(int k, em_dtype_mask mask, const em_kargs *a)
{
    unsigned fixed = em__kernels[k].fixed;
    if (!(fixed & V_OUT) && !(mask & EM_DTYPE_BIT(a->out->dtype)))
        return a->out->dtype;
    for (int i = 0; i < 3; i++)
        if (a->in[i] && !(fixed & V_IN(i)) && !(mask & EM_DTYPE_BIT(a->in[i]->dtype)))
            return a->in[i]->dtype;
    return -1;
}

bool em__kernel_native(const em_context *ctx, size_t offset, em_dtype dt)
{
    int k = em__kernel_index(offset);
    return k >= 0 && (ctx->kmask[k] & EM_DTYPE_BIT(dt));
}
