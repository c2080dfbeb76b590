"""Checks that `stload inspect --json FILE` lists exactly what Python's safetensors lists.

Usage: compare_listing.py STLOAD_BINARY FILE.safetensors [...]
Compares names, dtypes, shapes, byte lengths, absolute data offsets and metadata.
Prints one line per file and exits non-zero on any difference.
"""

import json
import struct
import subprocess
import sys

from safetensors import safe_open

# safe_open(framework="numpy") reports dtypes the torch way; map them back to the header spelling.
HEADER_NAMES = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16", "int32": "I32",
    "uint32": "U32", "int64": "I64", "uint64": "U64", "float16": "F16", "bfloat16": "BF16",
    "float32": "F32", "float64": "F64", "complex64": "C64",
}


def python_listing(path):
    tensors = {}
    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata() or {}
        for name in f.keys():
            s = f.get_slice(name)
            dtype = s.get_dtype()
            tensors[name] = {"dtype": HEADER_NAMES.get(dtype, dtype), "shape": list(s.get_shape())}
    # Byte ranges come from the header itself, read the way the format defines it.
    with open(path, "rb") as raw:
        (n,) = struct.unpack("<Q", raw.read(8))
        header = json.loads(raw.read(n))
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        tensors[name]["nbytes"] = end - start
        tensors[name]["data_offset"] = 8 + n + start
    return tensors, metadata


def main(binary, paths):
    bad = 0
    for path in paths:
        out = subprocess.run([binary, "inspect", "--json", path], check=True, capture_output=True, text=True)
        listed = json.loads(out.stdout)
        ours = {t["name"]: {k: t[k] for k in ("dtype", "shape", "nbytes", "data_offset")} for t in listed["tensors"]}
        theirs, metadata = python_listing(path)
        names = [t["name"] for t in listed["tensors"]]
        problems = []
        if names != sorted(names):
            problems.append("names are not sorted")
        if ours != theirs:
            diff = [
                k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)
            ]
            problems.append(f"{len(diff)} tensors differ, e.g. {diff[:3]}")
        if listed["metadata"] != metadata:
            problems.append(f"metadata differs: {listed['metadata']} vs {metadata}")
        if problems:
            bad += 1
            print(f"DIFFERENT {path}: " + "; ".join(problems))
        else:
            print(f"same: {path}: {len(ours)} tensors, {len(metadata)} metadata keys")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
