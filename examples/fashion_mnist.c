/* examples/fashion_mnist.c — a real training run from C: Fashion-MNIST (IDX files, gzip) on
 * the device device.ini names, an MLP 784-256-128-10 with ReLU, Adam (lr 1e-3), mini-batches
 * of 128 shuffled each epoch. One line per epoch (train loss, test accuracy, seconds,
 * samples/s), a live progress bar within an epoch when stdout is a terminal, and a checkpoint
 * after every epoch: the model as PyTorch's state_dict (PREFIX-model.safetensors, loadable
 * with safetensors.torch.load_file) and Adam's state (PREFIX-optim.safetensors); --resume
 * continues from them exactly as if the run had not stopped. The PyTorch program it mirrors
 * is in README.md and bench/fashion_mnist.py; the loop itself is in fashion_common.c, shared
 * with the CNN of fashion_cnn.c.
 *
 * Usage: fashion_mnist [--data DIR] [--epochs N] [--seed S] [--checkpoint PREFIX] [--resume]
 *                      [--train-limit N] [--test-limit N] [--quiet] [--distributed]
 * The data is Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist). */
#include "fashion_common.h"

static em_module *mlp(em_context *ctx)
{
    return em_sequential(ctx, (em_module *[]){
        em_linear(ctx, 784, 256, true), em_relu_module(ctx),
        em_linear(ctx, 256, 128, true), em_relu_module(ctx),
        em_linear(ctx, 128, 10, true)}, 5);
}

int main(int argc, char **argv)
{
    static const fashion_recipe r = {"fashion_mnist", "fashion_mnist mlp 784-256-128-10 adam",
                                     false, mlp};
    return fashion_main(argc, argv, &r);
}
