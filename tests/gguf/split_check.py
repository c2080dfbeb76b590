"""Checks a GGUF split against the unsplit file of the same conversion, with the gguf package.

  split_check.py WHOLE.gguf OUT.gguf MAX_BYTES MAX_TENSORS

OUT.gguf is the --out the split was written with: the shards are found under the gguf package's
own shard names (SHARD_NAME_FORMAT). Checked: the shard count and every shard's split.no,
split.count and split.tensors.count (types and values); the first shard's other keys equal
WHOLE's (types and values), the other shards hold only the split keys; the shards' tensors, in
order, equal WHOLE's (names, types, shapes, data bytes); the cut points are gguf-split's rule
(a shard closes before the tensor that would pass MAX_TENSORS or MAX_BYTES of tensor data,
each tensor padded to 32 bytes; a tensor larger than MAX_BYTES alone). 0 = no limit.
Prints the shard count; exits 1 with the differences on stderr.
"""
import sys
from pathlib import Path

import gguf
import numpy as np
from gguf.gguf_writer import SHARD_NAME_FORMAT

SPLIT_KEYS = {
    "split.no": gguf.GGUFValueType.UINT16,
    "split.count": gguf.GGUFValueType.UINT16,
    "split.tensors.count": gguf.GGUFValueType.INT32,
}
# Pseudo-keys the reader adds for the header's own fields.
HEADER = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"}


def keys(reader):
    return {k: f for k, f in reader.fields.items() if k not in HEADER}


def typed(field):
    return [t.name for t in field.types], field.contents()


def expected_cuts(sizes, max_bytes, max_tensors):
    """gguf-split's rule, written again: the tensor counts of the shards."""
    counts, used = [0], 0
    for n in sizes:
        n = -(-n // 32) * 32
        full = (max_tensors and counts[-1] >= max_tensors) or (max_bytes and used + n > max_bytes)
        if counts[-1] and full:
            counts.append(0)
            used = 0
        counts[-1] += 1
        used += n
    return counts


def main():
    whole_path, out, max_bytes, max_tensors = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    whole = gguf.GGUFReader(whole_path)
    errors = []
    # The count is in the first shard, whose name needs the count: find it among the files.
    candidates = sorted(out.parent.glob(f"{out.stem}-00001-of-*.gguf"))
    if len(candidates) != 1:
        sys.exit(f"expected one first shard, found {[p.name for p in candidates]}")
    first = gguf.GGUFReader(str(candidates[0]))
    count = int(first.fields["split.count"].contents())
    paths = [out.with_name(SHARD_NAME_FORMAT.format(out.stem, i + 1, count)) for i in range(count)]
    present = sorted(p.name for p in out.parent.glob(f"{out.stem}-*-of-*.gguf"))
    if present != [p.name for p in paths]:
        errors.append(f"shard files {present}, expected {[p.name for p in paths]}")
    shards = [gguf.GGUFReader(str(p)) for p in paths]

    for i, r in enumerate(shards):
        k = keys(r)
        for key, vtype in SPLIT_KEYS.items():
            if key not in k:
                errors.append(f"shard {i + 1}: no {key}")
                continue
            types, value = typed(k[key])
            want = {"split.no": i, "split.count": count, "split.tensors.count": len(whole.tensors)}[key]
            if types != [vtype.name] or value != want:
                errors.append(f"shard {i + 1}: {key} = {value} {types}, expected {want} [{vtype.name}]")
        rest = {key: f for key, f in k.items() if key not in SPLIT_KEYS}
        if i == 0:
            wk = keys(whole)
            if list(rest) != list(wk):
                errors.append(f"first shard keys {list(rest)}, unsplit {list(wk)}")
            for key in rest.keys() & wk.keys():
                if typed(rest[key]) != typed(wk[key]):
                    errors.append(f"key {key}: {typed(rest[key])}, unsplit {typed(wk[key])}")
        elif rest:
            errors.append(f"shard {i + 1} holds keys besides split.*: {sorted(rest)}")

    got = [t for r in shards for t in r.tensors]
    if [t.name for t in got] != [t.name for t in whole.tensors]:
        errors.append(f"tensors {[t.name for t in got]}, unsplit {[t.name for t in whole.tensors]}")
    for a, b in zip(got, whole.tensors):
        if a.tensor_type != b.tensor_type or list(a.shape) != list(b.shape):
            errors.append(f"tensor {a.name}: {a.tensor_type.name} {list(a.shape)}, unsplit {b.tensor_type.name} {list(b.shape)}")
        elif np.asarray(a.data).tobytes() != np.asarray(b.data).tobytes():
            errors.append(f"tensor {a.name}: data differs from the unsplit file's")

    cuts = [len(r.tensors) for r in shards]
    want = expected_cuts([int(t.n_bytes) for t in whole.tensors], max_bytes, max_tensors)
    if cuts != want:
        errors.append(f"tensors per shard {cuts}, gguf-split's rule gives {want}")
    if errors:
        sys.exit("\n".join(errors))
    print(count)


if __name__ == "__main__":
    main()
