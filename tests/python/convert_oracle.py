"""Writes conversion oracle data for tests/convert_exact.rs.

Usage: convert_oracle.py OUT_DIR

For each case it writes OUT_DIR/<case>.in (raw little-endian input elements) and, per target,
OUT_DIR/<case>.<TARGET>.out (what numpy + ml_dtypes `astype` gives), and one line
"<case> <SOURCE> <TARGET>" per pair to OUT_DIR/manifest.txt. Random inputs use a fixed seed.
"""

import sys
import warnings
from pathlib import Path

import ml_dtypes as mld
import numpy as np

warnings.simplefilter("ignore")  # overflow / invalid-value warnings are the point here

DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "I16": np.dtype(np.int16),
    "U16": np.dtype(np.uint16),
    "I32": np.dtype(np.int32),
    "U32": np.dtype(np.uint32),
    "I64": np.dtype(np.int64),
    "U64": np.dtype(np.uint64),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(mld.bfloat16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
    "F8_E4M3": np.dtype(mld.float8_e4m3fn),
    "F8_E5M2": np.dtype(mld.float8_e5m2),
    "F8_E8M0": np.dtype(mld.float8_e8m0fnu),
    "F8_E4M3FNUZ": np.dtype(mld.float8_e4m3fnuz),
    "F8_E5M2FNUZ": np.dtype(mld.float8_e5m2fnuz),
}
BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
FLOATS = ["F32", "F16", "BF16", "F64"]
FP8_TARGETS = ["F8_E4M3", "F8_E5M2"]
# (mantissa bits, exponent bits, bias, codes of the largest finite magnitude)
FORMATS = {
    "F16": (10, 5, 15, 0x7BFF),
    "BF16": (7, 8, 127, 0x7F7F),
    "F8_E4M3": (3, 4, 7, 0x7E),
    "F8_E5M2": (2, 5, 15, 0x7B),
}

rng = np.random.default_rng(20240611)


class Writer:
    def __init__(self, out: Path):
        self.out = out
        self.manifest = []

    def case(self, name, source, values, targets):
        arr = np.ascontiguousarray(values).view(DTYPES[source]) if values.dtype != DTYPES[source] else values
        arr.tofile(self.out / f"{name}.in")
        if source == "BOOL":
            # A bool byte other than 0/1 reads as true in numpy's casts, but ml_dtypes converts
            # the raw byte (2 becomes 2.0, undefined behaviour in C++): stload follows numpy,
            # so the oracle sees canonical bools.
            arr = arr.view(np.uint8) != 0
        for target in targets:
            if target == source:
                continue
            arr.astype(DTYPES[target]).tofile(self.out / f"{name}.{target}.out")
            self.manifest.append(f"{name} {source} {target}")

    def finish(self):
        (self.out / "manifest.txt").write_text("\n".join(self.manifest) + "\n")


def values_of_codes(codes, man, exp, bias):
    """Magnitudes of format codes, continuing the exponent past the top (overflow thresholds)."""
    codes = codes.astype(np.int64)
    e = codes >> man
    m = codes & ((1 << man) - 1)
    sub = m * 2.0 ** (1 - bias - man)
    norm = (1.0 + m / 2.0**man) * 2.0 ** (e - bias)
    return np.where(e == 0, sub, norm)


def midpoints(target):
    """Every halfway point between neighbouring magnitudes of `target`, and the overflow one."""
    man, exp, bias, top = FORMATS[target]
    v = values_of_codes(np.arange(top + 2), man, exp, bias)
    mids = (v[:-1] + v[1:]) / 2
    return np.concatenate([mids, -mids, v, -v])


def neighbours(x, dtype):
    """x (rounded into dtype) and its two neighbours in dtype."""
    x = x.astype(dtype)
    return np.concatenate([x, np.nextafter(x, dtype.type(np.inf)), np.nextafter(x, dtype.type(-np.inf))])


def nan_and_special_bits(width):
    if width == 32:
        sign, exp, quiet = 0x80000000, 0x7F800000, 0x00400000
        man = 0x007FFFFF
    else:
        sign, exp, quiet = 0x8000000000000000, 0x7FF0000000000000, 0x0008000000000000
        man = 0x000FFFFFFFFFFFFF
    payloads = [1, 2, quiet, quiet | 1, quiet - 1, man, man >> 1, 1 << 13, (1 << 13) - 1, 1 << 29, 1 << 42, (1 << 42) - 1]
    payloads += [p for p in rng.integers(1, man, 200, dtype=np.uint64).tolist()]
    bits = [0, exp, 1, man, man + 1]  # zero, inf, smallest and largest subnormal, smallest normal
    bits += [exp | (p & man) for p in payloads if p & man]
    bits += [b | sign for b in bits]
    return np.array(bits, dtype=BITS[width // 8])


def concentrated(width, count, lo, hi):
    """Random values whose binary exponent is uniform in [lo, hi), random sign and mantissa."""
    if width == 32:
        e = rng.integers(lo + 127, hi + 127, count).astype(np.uint32)
        m = rng.integers(0, 1 << 23, count, dtype=np.uint32)
        s = rng.integers(0, 2, count, dtype=np.uint32) << 31
        return s | (np.clip(e, 0, 255) << 23) | m
    e = rng.integers(lo + 1023, hi + 1023, count).astype(np.uint64)
    m = rng.integers(0, 1 << 52, count, dtype=np.uint64)
    s = rng.integers(0, 2, count, dtype=np.uint64) << np.uint64(63)
    return s | (e << np.uint64(52)) | m


def random_bits(width, count):
    return rng.integers(0, 2**width, count, dtype=BITS[width // 8], endpoint=False)


def main(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    w = Writer(out)

    # Exhaustive: every 16-bit and 8-bit pattern.
    all16 = np.arange(2**16, dtype=np.uint16)
    all8 = np.arange(2**8, dtype=np.uint8)
    for src in ["F16", "BF16"]:
        w.case(f"all_{src}", src, all16, FLOATS + FP8_TARGETS)
    for src in ["I16", "U16"]:
        w.case(f"all_{src}", src, all16, FLOATS)
    for src in ["BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"]:
        w.case(f"all_{src}", src, all8, FLOATS)

    # F32: specials, halfway and overflow cases of every narrow target, random patterns.
    f32 = np.dtype(np.float32)
    mids = np.concatenate([neighbours(midpoints(t), f32) for t in FORMATS])
    w.case("special_F32", "F32", np.concatenate([nan_and_special_bits(32), mids.view(np.uint32)]),
           ["F16", "BF16", "F64"] + FP8_TARGETS)
    w.case("random_F32", "F32",
           np.concatenate([random_bits(32, 10_000_000), concentrated(32, 2_000_000, -30, 20)]),
           ["F16", "BF16"] + FP8_TARGETS)

    # F64: specials, halfway cases of F16/BF16 and of random F32 neighbours, random patterns.
    f64 = np.dtype(np.float64)
    f32_codes = rng.integers(0, 0x7F800000, 1_000_000, dtype=np.uint32).view(np.float32).astype(np.float64)
    f32_mids = (f32_codes + np.nextafter(f32_codes.astype(np.float32), np.float32(np.inf)).astype(np.float64)) / 2
    halfway = np.concatenate([midpoints("F16"), midpoints("BF16"), f32_mids, -f32_mids,
                              neighbours(midpoints("F16"), f32).astype(np.float64)])
    w.case("special_F64", "F64", np.concatenate([nan_and_special_bits(64), neighbours(halfway, f64).view(np.uint64)]),
           ["F32", "F16", "BF16"])
    w.case("random_F64", "F64",
           np.concatenate([random_bits(64, 10_000_000), concentrated(64, 2_000_000, -160, 140)]),
           ["F32", "F16", "BF16"])

    # Wide integers: edges (2^24 + 1, 2^53 + 1, ...) and random magnitudes of every bit length.
    for src, bits, signed in [("I32", 32, True), ("U32", 32, False), ("I64", 64, True), ("U64", 64, False)]:
        info = np.iinfo(DTYPES[src])
        edges = {0, 1, info.min, info.max, info.max - 1, 65504, 65519, 65520, 65535}
        for k in range(1, bits):
            for d in (-1, 0, 1):
                edges.add((1 << k) + d)
        for k in (24, 25, 31, 40, 52, 53, 54, 62):
            if k < bits:
                # Ties and near-ties of F32 (24 bits) and BF16 (8 bits) at this magnitude.
                for low in (1 << (k - 24), 1 << (k - 9), (1 << (k - 9)) + 1, (1 << (k - 24)) + (1 << (k - 9))):
                    if low > 0:
                        edges.add((1 << k) + low)
                        edges.add((1 << k) + 3 * low)
        if signed:
            edges |= {-e for e in edges if -e >= info.min}
        edges = np.array(sorted(e for e in edges if info.min <= e <= info.max), dtype=DTYPES[src])
        lengths = rng.integers(1, bits + 1, 1_000_000)
        mags = rng.integers(0, 2**62, 1_000_000, dtype=np.uint64) | (np.uint64(1) << np.uint64(62))
        rand = (mags >> (np.uint64(63) - lengths.astype(np.uint64))).astype(np.uint64)
        if bits == 64:
            rand = rand | (rng.integers(0, 2, 1_000_000, dtype=np.uint64) << np.uint64(63))
        rand = rand.astype(BITS[bits // 8]).view(DTYPES[src])
        if signed:
            rand = np.where(rng.integers(0, 2, 1_000_000) == 1, rand, -rand).astype(DTYPES[src])
        w.case(f"edge_{src}", src, edges, FLOATS)
        w.case(f"random_{src}", src, rand, FLOATS)

    w.finish()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
