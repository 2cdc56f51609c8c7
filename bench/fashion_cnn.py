#!/usr/bin/python3
"""bench/fashion_cnn.py — examples/fashion_cnn beside the same CNN in PyTorch (CPU), in one run:
bench/fashion_mnist.py --model cnn (its docstring says what is compared and how).

    /usr/bin/python3 bench/fashion_cnn.py [--epochs 10] [--seed 1 --seed 2 ...] [--threads N]
                                          [--train-limit N] [--test-limit N] ...
    /usr/bin/python3 bench/fashion_cnn.py --conv     # conv2d and max_pool2d alone
"""
import os
import runpy
import sys

sys.argv[1:1] = ["--model", "cnn"]
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion_mnist.py"),
               run_name="__main__")
