#!/usr/bin/python3
"""tests/safetensors_py.py — a small reader and writer of the safetensors format in plain
Python with torch (the `safetensors` package is not needed), for tests/test_safetensors_torch.sh
and docs/pytorch-interop.md.

  safetensors_py.py read FILE         print every tensor of FILE (read per the spec)
  safetensors_py.py write-test FILE   write a torch state_dict (F32, F16, BF16, I64) and print it

The printed form, sorted by name: "name DTYPE [shape] values..." (F32/F16/BF16 values as
float32 with %.9g, F64 with %.17g, integers exactly) and "meta key=value" lines; the same
as tests/safetensors_tool prints. As a module: load_file(path) -> (dict, metadata) and
save_file(dict, path, metadata).
"""
import json
import struct
import sys

import torch

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}


def load_file(path):
    """Tensors (name -> torch.Tensor) and the __metadata__ dict of a safetensors file."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        shape = e["shape"]
        if end == begin:
            out[name] = torch.empty(shape, dtype=dt)
        else:
            out[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=dt).reshape(shape)
    return out, meta


def save_file(tensors, path, metadata=None):
    """Write name -> tensor (any layout; stored row-major, little-endian) as safetensors."""
    header, chunks, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def show(tensors, meta, file_dtypes):
    for name in sorted(tensors):
        t = tensors[name]
        dt = file_dtypes[name]
        vals = t.reshape(-1)
        if dt in ("F32", "F16", "BF16"):
            items = ["%.9g" % v for v in vals.float().tolist()]
        elif dt == "F64":
            items = ["%.17g" % v for v in vals.tolist()]
        else:
            items = ["%d" % v for v in vals.long().tolist()]
        print("%s %s [%s]%s" % (name, dt, ",".join(str(s) for s in t.shape),
                                "".join(" " + v for v in items)))
    for k in sorted(meta):
        print("meta %s=%s" % (k, meta[k]))


def test_state_dict():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    sd = dict(model.state_dict())
    sd["half.weight"] = sd["0.weight"].half()
    sd["half.special"] = torch.tensor([65504.0, 2.0 ** -24, -0.0, float("inf"), -1.5],
                                      dtype=torch.float16)
    sd["bf16.weight"] = sd["2.weight"].bfloat16()
    sd["bf16.special"] = torch.tensor([2.0 ** 100, -3.5, float("-inf")], dtype=torch.bfloat16)
    sd["steps"] = torch.tensor([[1, -2], [2 ** 40, -(2 ** 62)]], dtype=torch.int64)
    sd["num_batches"] = torch.tensor(12345, dtype=torch.int64)
    sd["transposed"] = sd["0.weight"].t()
    return sd


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("read", "write-test"):
        sys.exit("usage: safetensors_py.py read|write-test FILE")
    path = sys.argv[2]
    if sys.argv[1] == "read":
        tensors, meta = load_file(path)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n).decode("utf-8"))
        show(tensors, meta, {k: v["dtype"] for k, v in header.items() if k != "__metadata__"})
    else:
        sd = test_state_dict()
        meta = {"format": "pt", "written_by": "torch"}
        save_file(sd, path, meta)
        show(sd, meta, {k: NAMES[v.dtype] for k, v in sd.items()})


if __name__ == "__main__":
    main()
