#!/usr/bin/python3
"""tests/norm_py.py — the PyTorch side of tests/test_norm_torch.sh (tests/norm_tool.c is the
ember side), on Sequential(BatchNorm2d(3), ReLU, AvgPool2d(2), AdaptiveAvgPool2d((2, 2)),
LayerNorm([3, 2, 2])) and a BatchNorm1d(3, momentum=None):

  norm_py.py make DIR    DIR/model.safetensors and DIR/model1d.safetensors (state_dicts with
                         random parameters and running statistics, num_batches_tracked 5),
                         DIR/batch.safetensors (x [4, 3, 9, 8], x1 [5, 3, 4])
  norm_py.py check DIR   two training forwards (x, then x + 0.5; x1, then 2 * x1) and one eval
                         forward give ember's outputs (DIR/ember_y, < 1e-5), and the state
                         ember saved after them (DIR/ember_model*) loads strictly and equals
                         torch's (num_batches_tracked exactly)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_py import load_file as load_with_meta, save_file  # noqa: E402


def load_file(path):
    return load_with_meta(path)[0]


def nets():
    net = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                              torch.nn.AdaptiveAvgPool2d((2, 2)), torch.nn.LayerNorm([3, 2, 2]))
    return net, torch.nn.BatchNorm1d(3, momentum=None)


def make(d):
    torch.manual_seed(0)
    net, bn1 = nets()
    for m in (net, bn1):
        sd = m.state_dict()
        for k, v in sd.items():
            if k.endswith('num_batches_tracked'):
                v.fill_(5)
            elif k.endswith('running_var'):
                v.copy_(torch.rand(v.shape) + 0.5)
            else:
                v.copy_(torch.randn(v.shape))
    save_file(net.state_dict(), os.path.join(d, 'model.safetensors'))
    save_file(bn1.state_dict(), os.path.join(d, 'model1d.safetensors'))
    save_file({'x': torch.randn(4, 3, 9, 8), 'x1': torch.randn(5, 3, 4)},
              os.path.join(d, 'batch.safetensors'))


def check(d):
    net, bn1 = nets()
    net.load_state_dict(load_file(os.path.join(d, 'model.safetensors')))
    bn1.load_state_dict(load_file(os.path.join(d, 'model1d.safetensors')))
    b = load_file(os.path.join(d, 'batch.safetensors'))
    x, x1 = b['x'], b['x1']
    net.train()
    bn1.train()
    net(x)
    y = net(x + 0.5)
    bn1(x1)
    y1 = bn1(x1 * 2)
    net.eval()
    bn1.eval()
    want = {'y_train': y, 'y_eval': net(x), 'y1_train': y1, 'y1_eval': bn1(x1)}
    got = load_file(os.path.join(d, 'ember_y.safetensors'))
    ok = True
    for k, v in want.items():
        err = (got[k] - v.detach()).abs().max().item()
        print('%s: max abs diff %.3g' % (k, err))
        ok = ok and err < 1e-5
    for name, m in (('ember_model', net), ('ember_model1d', bn1)):
        sd = load_file(os.path.join(d, name + '.safetensors'))
        fresh = nets()[0 if name == 'ember_model' else 1]
        fresh.load_state_dict(sd)   # strict
        for k, v in m.state_dict().items():
            if k.endswith('num_batches_tracked'):
                print('%s %s: %d (torch %d)' % (name, k, sd[k].item(), v.item()))
                ok = ok and sd[k].dtype == torch.int64 and sd[k].item() == v.item()
            else:
                err = (sd[k] - v).abs().max().item()
                print('%s %s: max abs diff %.3g' % (name, k, err))
                ok = ok and err < 1e-5
    return ok


if __name__ == '__main__':
    if sys.argv[1] == 'make':
        make(sys.argv[2])
    elif not check(sys.argv[2]):
        sys.exit(1)
