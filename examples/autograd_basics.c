/* examples/autograd_basics.c — the seed's two small autograd cells, printed exactly as
 * PyTorch printed them (tests compare the output byte for byte). */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>

static void print_labeled(const char *label, em_tensor *t)
{
    char *s = em_tensor_str(t);
    if (label)
        printf("%s %s\n", label, s ? s : "(error)");
    else
        printf("%s\n", s ? s : "(error)");
    free(s);
}

int main(void)
{
    em_context *ctx;
    if (em_context_create(&ctx, NULL) != EM_OK) {
        fprintf(stderr, "autograd_basics: %s\n", em_last_error());
        return 1;
    }
    /* In [40] */
    em_tensor *x = em_ones(ctx, EM_F32, EM_SHAPE(1));
    em_tensor_set_requires_grad(x, true);
    print_labeled(NULL, x);
    em_tensor *y = em_add_scalar(x, 2);
    print_labeled(NULL, y);
    printf("===== Run backward =====\n");
    em_backward(y);
    print_labeled(NULL, y);

    /* In [48] */
    x = em_ones(ctx, EM_F32, EM_SHAPE(2, 2));
    em_tensor_set_requires_grad(x, true);
    print_labeled("x=", x);
    y = em_add_scalar(x, 2);
    print_labeled("y=", y);
    em_tensor *z = em_mul_scalar(em_mul(y, y), 3);
    em_tensor *out = em_mean(z);
    print_labeled("z=", z);
    print_labeled("out=", out);
    printf("===== out.backward ===\n");
    em_backward(out);
    print_labeled(NULL, em_grad(x));

    int rc = em_context_status(ctx) == EM_OK ? 0 : 1;
    if (rc)
        fprintf(stderr, "autograd_basics: %s\n", em_context_error(ctx));
    em_context_free(ctx);
    return rc;
}
