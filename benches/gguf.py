"""Converting a BF16 llama-shaped Hugging Face directory to an F16 GGUF: stload against the gguf
package's GGUFWriter writing the same tensors from numpy (with the Q/K permutation llama.cpp's
converter applies), and both against copying the output's bytes into the page cache (the limit
of any writer).

  python benches/gguf.py [--size-mib 1024] [--dir DIR]

Needs target/release/stload (cargo build --release), numpy, ml_dtypes and gguf. Each tool runs
on the page-cached input once to warm up, then the best of --rounds runs is reported.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

# This file is called gguf.py: keep its directory from shadowing the gguf package.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import gguf  # noqa: E402
import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


HIDDEN, FFN, VOCAB, HEADS, KV_HEADS = 2048, 5632, 8192, 16, 4


def make_checkpoint(model_dir, size_mib):
    """Llama-like layers (hidden 2048, ffn 5632) until the size is reached, BF16, with the
    config.json and a small tokenizer.json the converter needs."""
    hidden, ffn, vocab = HIDDEN, FFN, VOCAB
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, "model.safetensors")
    layer = {
        "self_attn.q_proj.weight": (hidden, hidden), "self_attn.k_proj.weight": (hidden // 4, hidden),
        "self_attn.v_proj.weight": (hidden // 4, hidden), "self_attn.o_proj.weight": (hidden, hidden),
        "mlp.gate_proj.weight": (ffn, hidden), "mlp.up_proj.weight": (ffn, hidden),
        "mlp.down_proj.weight": (hidden, ffn), "input_layernorm.weight": (hidden,),
        "post_attention_layernorm.weight": (hidden,),
    }
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    total = 2 * (vocab * hidden + hidden)
    i = 0
    while total < size_mib << 20:
        for k, s in layer.items():
            shapes[f"model.layers.{i}.{k}"] = s
            total += 2 * int(np.prod(s))
        i += 1
    rng = np.random.default_rng(0)
    header, offset = {}, 0
    for name, s in shapes.items():
        n = 2 * int(np.prod(s))
        header[name] = {"dtype": "BF16", "shape": list(s), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for name, s in shapes.items():
            f.write(rng.standard_normal(int(np.prod(s)), dtype=np.float32).astype(ml_dtypes.bfloat16).tobytes())
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": hidden, "intermediate_size": ffn,
              "num_hidden_layers": i, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
              "vocab_size": vocab, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0}
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config, f)
    tokens = ["<s>", "</s>", "a", "b", "ab"]
    tokenizer = {"model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(tokens)}, "merges": ["a b"]},
                 "added_tokens": [{"id": 0, "content": "<s>", "special": True},
                                  {"id": 1, "content": "</s>", "special": True}],
                 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False}}
    with open(os.path.join(model_dir, "tokenizer.json"), "w") as f:
        json.dump(tokenizer, f)
    return total


def permute(a, heads):
    """llama.cpp's converter's Q/K row order (the repack stload applies)."""
    rows = a.shape[0]
    return a.reshape(heads, 2, rows // heads // 2, *a.shape[1:]).swapaxes(1, 2).reshape(a.shape)


def read_checkpoint(path):
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    n = struct.unpack("<Q", raw[:8].tobytes())[0]
    header = json.loads(raw[8:8 + n].tobytes())
    for name, h in header.items():
        a, b = h["data_offsets"]
        yield name, raw[8 + n + a:8 + n + b].view(ml_dtypes.bfloat16).reshape(h["shape"])


def with_gguf_package(src, dst):
    w = gguf.GGUFWriter(dst, "llama")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for name, a in read_checkpoint(os.path.join(src, "model.safetensors")):
        if name.endswith("q_proj.weight"):
            a = permute(a, HEADS)
        elif name.endswith("k_proj.weight"):
            a = permute(a, KV_HEADS)
        w.add_tensor(name, a.astype(np.float32 if a.ndim == 1 else np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def with_stload(src, dst):
    exe = os.path.join(ROOT, "target", "release", "stload")
    subprocess.run([exe, "convert", src, "--out", dst, "--outtype", "f16"], check=True, stdout=subprocess.DEVNULL)


def page_cache_copy(nbytes, dst):
    buf = np.ones(nbytes, np.uint8)
    with open(dst, "wb") as f:
        f.write(memoryview(buf))


def best(f, rounds, dst):
    times = []
    for _ in range(rounds + 1):
        if os.path.exists(dst):
            os.remove(dst)
        t = time.perf_counter()
        f(dst)
        times.append(time.perf_counter() - t)
    return min(times[1:])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dir")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        src = os.path.join(d, "model")
        size = make_checkpoint(src, args.size_mib)
        out = os.path.join(d, "out.gguf")
        t_stload = best(lambda dst: with_stload(src, dst), args.rounds, out)
        out_bytes = os.path.getsize(out)
        t_py = best(lambda dst: with_gguf_package(src, dst), args.rounds, out)
        t_copy = best(lambda dst: page_cache_copy(out_bytes, dst), args.rounds, out)
    gib = 1 << 30
    print(f"input {size / gib:.2f} GiB BF16, output {out_bytes / gib:.2f} GiB F16 GGUF")
    print(f"{'writer':<28}{'seconds':>9}{'out GiB/s':>11}")
    for name, t in [("stload convert", t_stload), ("gguf.GGUFWriter (numpy)", t_py),
                    ("copy into page cache", t_copy)]:
        print(f"{name:<28}{t:>9.3f}{out_bytes / gib / t:>11.2f}")
    print(f"stload vs gguf package: {t_py / t_stload:.1f}x; "
          f"stload output bandwidth vs page-cache copy: {t_copy / t_stload:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
