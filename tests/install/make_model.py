"""Writes a tiny safetensors model by hand (struct and json only, no numpy):
bias I32 [2] = 7, -1; mask U8 [3] = 1, 0, 1; weight F32 [2, 2] = 1, 2, 3, 4.
Usage: python3 make_model.py OUT.safetensors"""

import json
import struct
import sys

TENSORS = [
    ("bias", "I32", [2], struct.pack("<2i", 7, -1)),
    ("mask", "U8", [3], bytes([1, 0, 1])),
    ("weight", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
]

header, data = {"__metadata__": {"format": "pt"}}, b""
for name, dtype, shape, raw in TENSORS:
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes with spaces
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
