"""Stack, split and slice rules over every kind of source, with numpy's answers.

Usage: stack_oracle.py TORCH_EXPECTED_JSON OUT_DIR

Reads the dense values torch.load gave for the tensors of views.pt (contiguous, strided,
stride-0 and offset views), writes OUT_DIR/extra.safetensors (contiguous tensors of the same
shapes) and OUT_DIR/rules.json: the stack rules, split rules and slices a test applies to
views.pt + extra.safetensors, and for every resulting tensor its dtype, shape and the hex of its
bytes as stored and as float16, as numpy's stack / split / slicing give them.
"""

import json
import os
import sys

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

NP = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}
ST = {"float32": "F32", "bfloat16": "BF16"}


def main():
    torch_expected, out = sys.argv[1], sys.argv[2]
    with open(torch_expected) as f:
        views = json.load(f)["views.pt"]
    values = {}
    for name, e in views.items():
        a = np.frombuffer(bytes.fromhex(e["hex"]), dtype=NP[e["dtype"]]).reshape(e["shape"])
        values[name] = a
    rng = np.random.default_rng(15)
    extra = {
        "st_a": rng.standard_normal((6, 4)).astype(np.float32),
        "st_b": rng.standard_normal((4, 6)).astype(np.float32),
        "st_b2": rng.standard_normal((4, 6)).astype(np.float32),
        "st_c": rng.standard_normal(4).astype(np.float32),
        "st_d": rng.standard_normal((3, 6)).astype(np.float32),
        "st_f": rng.standard_normal((2, 3)).astype(np.float32),
        "st_g": rng.standard_normal((2, 4)).astype(np.float32),
    }
    save_file(extra, os.path.join(out, "extra.safetensors"))
    values.update(extra)

    stacks = [
        (["transposed", "st_a"], "s_t"),  # strided view + safetensors range
        (["column", "st_c"], "s_col"),  # 1-d strided view + range
        (["expanded", "st_d"], "s_exp"),  # stride-0 view + range
        (["base", "tied"], "s_torch"),  # one torch storage twice: gathered ranges
        (["st_b", "st_b2"], "s_st"),  # neighbours in one file: contiguous
        (["strided", "st_f"], "s_mixed"),  # a strided view then a range
    ]
    for names, into in stacks:
        values[into] = np.stack([values[n] for n in names])
        for n in names:
            values.pop(n)
    splits = [
        ("s_t", [("s_t0", 1), ("s_t1", 1)]),
        ("s_col", [("s_col0", 1), ("s_col1", 1)]),
        ("s_torch", [("s_torch0", 1), ("s_torch1", 1)]),
        ("s_mixed", [("s_mixed0", 1), ("s_mixed1", 1)]),
        ("rows", [("rows0", 1), ("rows1", 1)]),  # contiguous torch view at an offset
    ]
    for name, parts in splits:
        whole = values.pop(name)
        at = 0
        for part, n in parts:
            values[part] = whole[at : at + n]
            at += n
    # get_slice cases: (name, axis, start, stop), cutting inside views and across pieces
    slices = [
        ("s_exp", 0, 0, 2),
        ("s_exp", 1, 1, 3),
        ("s_exp", 2, 2, 5),
        ("s_t0", 1, 1, 5),
        ("s_t1", 2, 1, 3),
        ("s_col0", 1, 1, 3),
        ("s_mixed0", 2, 0, 2),
        ("s_st", 1, 1, 4),
        ("param", 1, 1, 3),
        ("s_exp", 1, 2, 2),
    ]

    def describe(a, dtype):
        a = np.ascontiguousarray(a)
        with np.errstate(all="ignore"):
            f16 = a.astype(np.float16)
        return {
            "dtype": ST[dtype],
            "shape": list(a.shape),
            "hex": a.tobytes().hex(),
            "f16": f16.tobytes().hex(),
        }

    dtype_of = lambda a: "bfloat16" if a.dtype == ml_dtypes.bfloat16 else "float32"
    rules = {
        "stacks": [{"names": names, "into": into} for names, into in stacks],
        "splits": [{"name": n, "parts": [[p, r] for p, r in parts]} for n, parts in splits],
        "tensors": {n: describe(a, dtype_of(a)) for n, a in sorted(values.items())},
        "slices": [
            {
                "name": n,
                "axis": axis,
                "start": start,
                "stop": stop,
                **describe(np.take(values[n], range(start, stop), axis=axis), dtype_of(values[n])),
            }
            for n, axis, start, stop in slices
        ],
    }
    with open(os.path.join(out, "rules.json"), "w") as f:
        json.dump(rules, f)


if __name__ == "__main__":
    main()
