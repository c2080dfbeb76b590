"""Q4_K_M in one pass against llama.cpp's quantizer: `stload convert DIR --outtype q4_k_m` (a
Hugging Face directory of F32 safetensors to the quantised GGUF, everything included) against
`llama_model_quantize` (llama-cpp-python, no importance matrix) quantising stload's F32 GGUF of
the same model to Q4_K_M, on the same number of threads (stload takes every core it may use:
give llama.cpp as many with --threads, the default). Both outputs are checked to be equal
tensor by tensor first. Reports the best of --rounds wall times of each and MB/s of F32 weights.

  python benches/quantize.py [--layers 6] [--rounds 3] [--threads 2] [--dir DIR]

Needs target/release/stload (cargo build --release), transformers, torch, gguf, llama-cpp-python.
"""
import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# benches/gguf.py beside this file would shadow the gguf package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benches"]
sys.path.insert(0, str(ROOT / "tests" / "gguf"))

import quant_file_check  # noqa: E402

STLOAD = str(ROOT / "target" / "release" / "stload")
Q4_K_M = 15


def llama_quantize_once(src: str, dst: str, threads: int) -> None:
    """Run in a child process, so each round starts as llama-quantize would."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = Q4_K_M
    params.nthread = threads
    if llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params)) != 0:
        raise SystemExit("llama_model_quantize failed")


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of `cmd`."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{cmd[:3]} failed")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        llama_quantize_once(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    import hf_reference

    with tempfile.TemporaryDirectory() as tmp:
        work = args.dir or Path(tmp)
        src = work / "llama"
        if not (src / "config.json").exists():
            hf_reference.make("llama", src, dict(
                hidden_size=1024, intermediate_size=2816, num_hidden_layers=args.layers,
                num_attention_heads=16, num_key_value_heads=4, head_dim=64))
        weights = sum(p.stat().st_size for p in src.glob("*.safetensors"))
        f32, mine, ref = work / "f32.gguf", work / "stload-q4_k_m.gguf", work / "llama-q4_k_m.gguf"
        quant_file_check.convert(STLOAD, src, f32, "f32")
        stload_cmd = [STLOAD, "convert", str(src), "--out", str(mine), "--outtype", "q4_k_m", "--force"]
        llama_cmd = [sys.executable, __file__, "--child", str(f32), str(ref), str(args.threads)]
        # Warm the page cache, and check the two files agree before timing them.
        timed(stload_cmd)
        timed(llama_cmd)
        diff = quant_file_check.difference(quant_file_check.tensors_of(mine)[0], quant_file_check.tensors_of(ref)[0])
        if diff:
            raise SystemExit(f"the outputs differ: {diff}")
        f32_cmd = [STLOAD, "convert", str(src), "--out", str(f32), "--outtype", "f32", "--force"]
        runs = {"stload": stload_cmd, "llama.cpp": llama_cmd, "f32": f32_cmd}
        best = {k: (1e9, 1e9) for k in runs}
        for _ in range(args.rounds):
            for k, cmd in runs.items():
                wall, cpu = timed(cmd)
                best[k] = (min(best[k][0], wall), min(best[k][1], cpu))
        mb = weights / 1e6
        print(f"model: {mb:.0f} MB of F32 safetensors, {args.threads} threads, best of {args.rounds} (wall s, CPU s, MB/s of wall)")
        for label, k in [
            ("stload convert HF dir -> Q4_K_M", "stload"),
            ("llama_model_quantize F32 GGUF -> Q4_K_M", "llama.cpp"),
            ("stload convert HF dir -> F32 GGUF", "f32"),
        ]:
            wall, cpu = best[k]
            print(f"{label:42} {wall:6.2f} {cpu:6.2f} {mb / wall:6.0f}")
        s, q, f = best["stload"][0], best["llama.cpp"][0], best["f32"][0]
        print(f"one pass vs llama.cpp's quantize step: {q / s:.2f}x (CPU time {best['llama.cpp'][1] / best['stload'][1]:.2f}x)")
        print(f"one pass vs F32 GGUF then quantize:    {(f + q) / s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
