/* examples/fashion_cnn.c — a small CNN on Fashion-MNIST, trained from C on the device
 * device.ini names: conv(1->32, 3x3, pad 1)-ReLU-maxpool 2 -> conv(32->64, 3x3, pad 1)-ReLU-
 * maxpool 2 -> flatten -> linear 3136->128-ReLU -> linear 128->10, Adam (lr 1e-3),
 * mini-batches of 128 shuffled each epoch. The same run as fashion_mnist.c (fashion_common.c:
 * progress, test accuracy, a checkpoint per epoch with PyTorch's state_dict keys "0.weight",
 * "0.bias", "3.weight", ..., "9.bias", and an exact --resume). The PyTorch program it mirrors
 * is bench/fashion_cnn.py:
 *
 *   net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
 *                       nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
 *                       nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
 *
 * Usage: fashion_cnn [--data DIR] [--epochs N] [--seed S] [--checkpoint PREFIX] [--resume]
 *                    [--train-limit N] [--test-limit N] [--quiet] [--distributed]
 * The data is Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist). */
#include "fashion_common.h"

static em_module *cnn(em_context *ctx)
{
    const int k3[2] = {3, 3}, pad1[2] = {1, 1}, k2[2] = {2, 2};
    return em_sequential(ctx, (em_module *[]){
        em_conv2d_module(ctx, 1, 32, k3, NULL, pad1, NULL, 1, true), em_relu_module(ctx),
        em_max_pool2d_module(ctx, k2, NULL, NULL, NULL, false),
        em_conv2d_module(ctx, 32, 64, k3, NULL, pad1, NULL, 1, true), em_relu_module(ctx),
        em_max_pool2d_module(ctx, k2, NULL, NULL, NULL, false),
        em_flatten_module(ctx),
        em_linear(ctx, 3136, 128, true), em_relu_module(ctx),
        em_linear(ctx, 128, 10, true)}, 10);
}

int main(int argc, char **argv)
{
    static const fashion_recipe r = {"fashion_cnn", "fashion_cnn conv32-conv64-3136-128-10 adam",
                                     true, cnn};
    return fashion_main(argc, argv, &r);
}
