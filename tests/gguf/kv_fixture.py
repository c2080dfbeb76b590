"""Writes a GGUF file whose metadata holds every GGUF value type, with the gguf package's writer.

  kv_fixture.py OUT.gguf OUT.json

OUT.json lists what was written, key by key, as {"t": TYPE, "v": VALUE} for a scalar and
{"t": "Array", "of": ELEMENT TYPE, "v": [...]} for an array, where the elements of an array of
arrays are such objects themselves; TYPE is stload's name of the type (U8 ... F64, Bool, String,
Array). Values are exact in their type (floats chosen representable), so a reader must give
them back equal.
"""
import json
import sys

import gguf
import numpy as np

T = gguf.GGUFValueType
NAME = {
    T.UINT8: "U8", T.INT8: "I8", T.UINT16: "U16", T.INT16: "I16", T.UINT32: "U32",
    T.INT32: "I32", T.FLOAT32: "F32", T.BOOL: "Bool", T.STRING: "String", T.ARRAY: "Array",
    T.UINT64: "U64", T.INT64: "I64", T.FLOAT64: "F64",
}

# Each type at its extremes, as a scalar and as an array.
VALUES = {
    T.UINT8: [0, 1, 255],
    T.INT8: [-128, -1, 127],
    T.UINT16: [0, 513, 65535],
    T.INT16: [-32768, -2, 32767],
    T.UINT32: [0, 70000, 2**32 - 1],
    T.INT32: [-(2**31), -3, 2**31 - 1],
    T.FLOAT32: [1.5, -0.25, float(np.float32(3.0e38)), float(np.float32(1e-40))],
    T.BOOL: [True, False, True],
    T.STRING: ["", "hello", "naïve ✓ 中文", "with\nnewline"],
    T.UINT64: [0, 2**40 + 1, 2**64 - 1],
    T.INT64: [-(2**63), -5, 2**63 - 1],
    T.FLOAT64: [0.1, -1e300, 5e-324],
}


def main():
    out, expected_path = sys.argv[1], sys.argv[2]
    w = gguf.GGUFWriter(out, "kvtest")
    expected = {"general.architecture": {"t": "String", "v": "kvtest"}}
    for vtype, values in VALUES.items():
        name = NAME[vtype].lower()
        w.add_key_value(f"test.scalar.{name}", values[-1], vtype)
        expected[f"test.scalar.{name}"] = {"t": NAME[vtype], "v": values[-1]}
        w.add_key_value(f"test.array.{name}", values, T.ARRAY, sub_type=vtype)
        expected[f"test.array.{name}"] = {"t": "Array", "of": NAME[vtype], "v": values}
    # Arrays of arrays: the writer gives each inner array the type of its first element.
    nested = [[1, -2, 3], ["a", "bc"], [0.5], [True, False]]
    inner = ["I32", "String", "F32", "Bool"]
    w.add_key_value("test.nested", nested, T.ARRAY)
    expected["test.nested"] = {
        "t": "Array",
        "of": "Array",
        "v": [{"t": "Array", "of": t, "v": v} for t, v in zip(inner, nested)],
    }
    deep = [[[1, 2], [3]], [[4]]]
    w.add_key_value("test.nested.deep", deep, T.ARRAY)
    expected["test.nested.deep"] = {
        "t": "Array",
        "of": "Array",
        "v": [
            {"t": "Array", "of": "Array", "v": [{"t": "Array", "of": "I32", "v": x} for x in outer]}
            for outer in deep
        ],
    }
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(expected_path, "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
