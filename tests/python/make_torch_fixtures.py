#!/usr/bin/env python3
"""Writes the PyTorch checkpoint fixtures of tests/torch.rs with the real torch.save.

The fixtures are checked in (tests/fixtures/torch/), because torch is far too big to install in
the test command. Run this only to regenerate them; it needs numpy and torch 2.3 or later (for
the uint16/32/64 tensors):

    python3 -m venv VENV && VENV/bin/pip install torch numpy     # VENV: any folder outside the repo
    VENV/bin/python tests/python/make_torch_fixtures.py         # from the repository root

An optional argument names another output folder. Values are deterministic, but torch.save
records a serialization id, so the files are not byte-identical from run to run.

Next to the checkpoints it writes expected.json: for every file, each tensor as torch.load
reads it back: dtype, shape, strides, storage offset, contiguity, and the hex
of its dense row-major bytes (`t.contiguous().reshape(-1).view(torch.uint8)`), so the Rust tests
compare values without torch.
"""

import json
import math
import os
import sys
from collections import OrderedDict

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures", "torch")

FLOATS = [0.0, -0.0, 1.0, -2.5, 3.140625, 65504.0, 1e-3, 6e-8, math.inf, -math.inf, math.nan, 1e30]
INTS = [0, 1, -1, 2, -128, 127, 1000, -1000, 2**31 - 1, -(2**31), 2**40, -(2**62)]


def ints(dtype, values=INTS):
    """Values that wrap like C casts, from exact int64s."""
    return torch.tensor(values, dtype=torch.int64).to(dtype).reshape(3, 4)


def all_dtypes():
    """Every dtype stload has that torch.save writes (v2 typed storages and v3 untyped ones)."""
    f = torch.tensor(FLOATS, dtype=torch.float64).reshape(3, 4)
    u = [v & 0xFF for v in INTS]
    return {
        "f32": f.to(torch.float32),
        "f16": f.to(torch.float16),
        "bf16": f.to(torch.bfloat16),
        "f64": f,
        "i8": ints(torch.int8, [((v + 128) % 256) - 128 for v in INTS]),
        "u8": ints(torch.uint8, u),
        "i16": ints(torch.int16, [((v + 2**15) % 2**16) - 2**15 for v in INTS]),
        "i32": ints(torch.int32, [((v + 2**31) % 2**32) - 2**31 for v in INTS]),
        "i64": ints(torch.int64),
        "bool": torch.tensor([True, False, True, True, False, False], dtype=torch.bool).reshape(2, 3),
        "u16": ints(torch.uint16, [v % 2**16 for v in INTS]),
        "u32": ints(torch.uint32, [v % 2**32 for v in INTS]),
        "u64": torch.tensor([v % 2**63 for v in INTS], dtype=torch.int64).to(torch.uint64).reshape(3, 4),
        "f8_e4m3fn": torch.tensor([0.5, -1.0, 2.0, 448.0], dtype=torch.float32).to(torch.float8_e4m3fn),
        "f8_e5m2": torch.tensor([0.5, -1.0, 2.0, 57344.0], dtype=torch.float32).to(torch.float8_e5m2),
        "c64": torch.tensor([1 + 2j, -3.5 + 0.25j], dtype=torch.complex64),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "step": 7,  # not a tensor: skipped by the reader
    }


def views():
    """Shared storages, offsets, non-contiguous and stride-0 views, a parameter."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        "base": base,
        "rows": base[1:3],  # contiguous, offset 6, same storage
        "transposed": base.t(),  # non-contiguous
        "column": base[:, 2],  # offset 2, stride 6
        "strided": base[::2, 1::2],  # offset 1, strides (12, 2)
        "expanded": base[0].expand(3, 6),  # stride 0
        "tied": base,  # the same tensor object under a second name (a pickle memo fetch)
        "param": torch.nn.Parameter(torch.arange(6, dtype=torch.bfloat16).reshape(2, 3)),
    }


def model_state_dict():
    """What Hugging Face writes: an nn.Module's state_dict (an OrderedDict with _metadata)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    model = model.to(torch.float16)
    return model.state_dict()


def save(obj, relpath, **kwargs):
    path = os.path.join(OUT, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(obj, path, **kwargs)
    return path


def describe(path):
    # weights_only=False: torch's own restricted unpickler refuses protocol 4's FRAME opcode, and
    # these are files this script just wrote.
    loaded = torch.load(path, weights_only=False)
    out = OrderedDict()
    for name, t in loaded.items():
        if not isinstance(t, torch.Tensor):
            continue
        dense = t.detach().contiguous().reshape(-1).view(torch.uint8)
        out[name] = {
            "dtype": str(t.dtype).removeprefix("torch."),
            "shape": list(t.shape),
            "strides": list(t.stride()),
            "storage_offset": t.storage_offset(),
            "contiguous": t.is_contiguous(),
            "hex": bytes(dense.numpy().tobytes()).hex(),
        }
    return out


def compact_json(expected):
    """JSON with one line per tensor, so a diff of a regeneration stays readable."""
    files = []
    for rel, tensors in expected.items():
        rows = ",\n".join(f"  {json.dumps(n)}: {json.dumps(t)}" for n, t in tensors.items())
        files.append(f" {json.dumps(rel)}: {{\n{rows}\n }}")
    return "{\n" + ",\n".join(files) + "\n}\n"


def main():
    files = {
        "all_dtypes.pt": save(all_dtypes(), "all_dtypes.pt"),
        "views.pt": save(views(), "views.pt"),
        "protocol4.pt": save(
            {"a": torch.arange(5, dtype=torch.int32), "b": torch.ones(2, 2, dtype=torch.bfloat16).t()},
            "protocol4.pt",
            pickle_protocol=4,
        ),
        "single/pytorch_model.bin": save(model_state_dict(), "single/pytorch_model.bin"),
        "consolidated/consolidated.00.pth": save(
            {
                "tok_embeddings.weight": torch.arange(12, dtype=torch.float32).reshape(4, 3).to(torch.bfloat16),
                "norm.weight": torch.ones(3, dtype=torch.bfloat16),
            },
            "consolidated/consolidated.00.pth",
        ),
    }
    shard1 = {"model.embed.weight": torch.arange(8, dtype=torch.float16).reshape(2, 4)}
    shard2 = {"lm_head.weight": torch.arange(8, dtype=torch.float16).reshape(4, 2).t().contiguous() * -1}
    for i, shard in enumerate([shard1, shard2], 1):
        rel = f"sharded/pytorch_model-{i:05d}-of-00002.bin"
        files[rel] = save(shard, rel)
    # Legacy (pre-zip) format: must be refused as unsupported.
    save({"a": torch.ones(2)}, "legacy.pt", _use_new_zipfile_serialization=False)

    expected = OrderedDict((rel, describe(path)) for rel, path in files.items())
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        f.write(compact_json(expected))
    print(f"wrote {len(files) + 1} checkpoints and expected.json; torch {torch.__version__}")


if __name__ == "__main__":
    main()
