/* examples/clamp.c — the seed's first cell: torch.clamp(min=2, max=4) against numpy's
 * clip, here a plain C clip of the same data. Prints True when they agree everywhere. */
#include <ember/ember.h>
#include <stdio.h>

int main(void)
{
    em_context *ctx;
    if (em_context_create(&ctx, NULL) != EM_OK) {
        fprintf(stderr, "clamp: %s\n", em_last_error());
        return 1;
    }
    const float data[3][4] = {{1, 2, 3, 4}, {2, 3, 4, 5}, {3, 4, 5, 6}};
    em_tensor *xx = em_tensor_from_data(ctx, EM_F32, EM_SHAPE(3, 4), data);
    em_tensor *x2 = em_clamp(xx, 2.0, 4.0);

    float y2[3][4], got[3][4];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            float v = data[i][j];
            y2[i][j] = v < 2.0f ? 2.0f : v > 4.0f ? 4.0f : v;
        }
    if (em_tensor_to_host(x2, got, sizeof got) != EM_OK) {
        fprintf(stderr, "clamp: %s\n", em_context_error(ctx));
        em_context_free(ctx);
        return 1;
    }
    int all = 1;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            all &= got[i][j] == y2[i][j];
    printf("%s\n", all ? "True" : "False");
    em_context_free(ctx);   /* frees xx and x2 too */
    return all ? 0 : 1;
}
