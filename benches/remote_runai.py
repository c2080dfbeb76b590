"""One timed load of a safetensors file from S3 by runai-model-streamer's native streamer, for
benches/remote.py (run by the bench in its tools environment, one process per run).

runai-model-streamer's PyPI package declares torch as a dependency, and its package __init__ (and
its file and safetensors streamers) import torch; this project never installs torch. Only its
`libstreamer` subpackage is used here: the ctypes binding over the native libstreamer.so, with
runai-model-streamer-s3's libstreamers3.so as the S3 backend. The package is registered in
sys.modules with its __path__ so that importing the subpackage does not run the package __init__.

What is timed, as runai's own SafetensorsStreamer does it without torch: the 8-byte length and
then the JSON header through the streamer, then one submission with one range per tensor into
one numpy buffer, and (mode `load`) each tensor viewed as ml_dtypes.bfloat16 and converted with
astype(float32) as soon as its response arrives, while the native workers go on fetching (runai
hands the bytes over and leaves conversion to torch afterwards). Mode `fetch` stops at the bytes.
After the timed part the buffer is compared with the local copy of the file: a mismatch fails
the run. The last line printed is the time in seconds.

Usage: python remote_runai.py load|fetch s3://BUCKET/KEY LOCAL_FILE
The S3 server, credentials and runai's settings come from the environment (see remote.py).
"""

import importlib.util
import json
import sys
import time
import types


def import_libstreamer():
    """runai's libstreamer binding, without running runai_model_streamer/__init__.py."""
    spec = importlib.util.find_spec("runai_model_streamer")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("runai: runai_model_streamer is not installed in this environment")
    package = types.ModuleType("runai_model_streamer")
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    sys.modules["runai_model_streamer"] = package
    from runai_model_streamer.libstreamer import libstreamer

    if "torch" in sys.modules:
        sys.exit("runai: torch was imported, the point of this script is that it is not")
    return libstreamer


def main():
    mode, url, local = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode not in ("load", "fetch"):
        sys.exit(f"runai: unknown mode {mode!r} (load or fetch)")
    import ml_dtypes
    import numpy as np

    rl = import_libstreamer()
    timeout_ms = 300_000

    def wait(streamer, count):
        """Yields the range index of each of `count` responses of the one live submission."""
        for _ in range(count):
            response = rl.runai_response(streamer, timeout_ms)
            if response is None:
                sys.exit("runai: the streamer ended before every range arrived")
            code, _submission, _file, index, _done = response
            if code != rl.SUCCESS_ERROR_CODE:
                sys.exit(f"runai: {url}: range {index}: {rl.runai_response_str(code).decode()}")
            yield index

    def read(streamer, offset, size):
        buf = np.empty(size, dtype=np.uint8)
        rl.runai_request(streamer, [url], [1], [offset], [size], [buf.ctypes.data])
        for _ in wait(streamer, 1):
            pass
        return buf

    t0 = time.perf_counter()
    streamer = rl.runai_start()
    try:
        n = int.from_bytes(read(streamer, 0, 8).tobytes(), "little")
        header = json.loads(read(streamer, 8, n).tobytes())
        header.pop("__metadata__", None)
        base = 8 + n
        tensors = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
        end = max((t["data_offsets"][1] for _, t in tensors), default=0)
        data = np.empty(end, dtype=np.uint8)
        offsets = [base + t["data_offsets"][0] for _, t in tensors]
        sizes = [t["data_offsets"][1] - t["data_offsets"][0] for _, t in tensors]
        dsts = [data.ctypes.data + t["data_offsets"][0] for _, t in tensors]
        rl.runai_request(streamer, [url], [len(tensors)], offsets, sizes, dsts)
        out = {}
        for index in wait(streamer, len(tensors)):
            name, t = tensors[index]
            if mode == "load":
                if t["dtype"] != "BF16":
                    sys.exit(f"runai: tensor {name!r}: dtype {t['dtype']}, the bench writes BF16")
                a, b = t["data_offsets"]
                out[name] = data[a:b].view(ml_dtypes.bfloat16).astype(np.float32).reshape(t["shape"])
        seconds = time.perf_counter() - t0
    finally:
        # runai's rule: the buffers stay alive until runai_end returns.
        rl.runai_end(streamer)

    # Outside the timed part: the bytes are the file's.
    expected = np.fromfile(local, dtype=np.uint8, offset=base)
    if expected.shape != data.shape or not np.array_equal(expected, data):
        sys.exit(f"runai: {url}: the bytes read differ from {local}")
    if mode == "load" and len(out) != len(tensors):
        sys.exit(f"runai: {url}: {len(out)} of {len(tensors)} tensors converted")
    print(seconds)


if __name__ == "__main__":
    main()
