/* examples/fashion_common.h — the training run the Fashion-MNIST examples share
 * (fashion_common.c): an example names itself, its model and the shape of its inputs, and
 * fashion_main does the rest (command line, data, Adam, progress, checkpoints, --resume). */
#ifndef EMBER_EXAMPLES_FASHION_COMMON_H
#define EMBER_EXAMPLES_FASHION_COMMON_H

#include <ember/ember.h>

typedef struct fashion_recipe {
    const char *name;      /* program name in messages, default checkpoint prefix */
    const char *recipe;    /* the checkpoint's "recipe" metadata */
    bool images_nchw;      /* images as (N, 1, 28, 28), else flattened to (N, 784) */
    em_module *(*model)(em_context *ctx);   /* the model, freshly initialised (NULL: error) */
} fashion_recipe;

/* Usage: NAME [--data DIR] [--epochs N] [--seed S] [--checkpoint PREFIX] [--resume]
 *             [--train-limit N] [--test-limit N] [--quiet] [--distributed]
 * Returns the exit status: 0, 1 (an error, printed), 2 (usage). */
int fashion_main(int argc, char **argv, const fashion_recipe *r);

#endif
