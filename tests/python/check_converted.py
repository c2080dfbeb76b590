"""Checks files written by `stload convert` with Python's safetensors as the reader.

Usage: check_converted.py EXPECTED_JSON GROUP[:SOURCE_FILE] DTYPE FILE [FILE ...]
Every tensor of GROUP (only those from SOURCE_FILE, when given) in EXPECTED_JSON (written by make_fixtures.py) must be in the files, and
hold what numpy/ml_dtypes `astype(DTYPE)` gives for floats, or the stored bytes for the rest.
Prints a summary line and exits non-zero on any difference.
"""

import json
import sys

from safetensors import deserialize, safe_open

FLOATS = {"F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"}


def main(expected_path, group, dtype, files):
    group, _, source = group.partition(":")
    expected = json.load(open(expected_path))[group]
    if source:
        expected = {n: e for n, e in expected.items() if e["file"] == source}
    found = {}
    for path in files:
        with open(path, "rb") as f:
            for name, view in deserialize(f.read()):
                found[name] = view
        with safe_open(path, framework="numpy") as f:  # the reference opener accepts the file
            list(f.keys())
    bad = []
    for name, e in expected.items():
        view = found.get(name)
        if e["dtype"] in FLOATS and dtype in e["as"]:
            want_dtype, want = dtype, bytes.fromhex(e["as"][dtype])
        else:
            want_dtype, want = e["dtype"], bytes.fromhex(e["hex"])
        if view is None:
            bad.append(f"{name}: missing")
        elif view["dtype"] != want_dtype or list(view["shape"]) != e["shape"] or bytes(view["data"]) != want:
            bad.append(f"{name}: got {view['dtype']} {view['shape']}, want {want_dtype} {e['shape']}")
    if set(found) != set(expected):
        bad.append(f"extra tensors: {sorted(set(found) - set(expected))}")
    print(f"convert {group} to {dtype}: {len(expected) - len(bad)} tensors equal, {len(bad)} different")
    for line in bad:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
