"""llama.cpp's tokenizer on the tokenizer keys stload wrote, against the `tokenizers` or
`sentencepiece` library.

Usage: tokenizer_llama_cpp.py KEYS.json MODEL_DIR OUT.gguf

KEYS.json holds stload's tokenizer keys as [key, type, value] triples. This script writes a
vocabulary-only GGUF with them (plus the few architecture keys llama.cpp needs to open a file,
taken from MODEL_DIR/config.json or made up for a tokenizer-only fixture), opens it with
llama.cpp (llama-cpp-python, vocab_only) and prints JSON: for each text, the ids llama.cpp gives
and the ids the reference library gives, both with the special tokens the model adds.
"""

import json
import os
import sys

import gguf
import llama_cpp

TEXTS = [
    "Hello world",
    "the quick brown fox jumps over the lazy dog",
    "Tensor model weights load at memory speed, don't they? It's 1234 or 56789.",
    "über café naïve 東京",
    "  leading spaces and\ttabs\nnew lines",
    "unseen words: zebra xylophone quokka",
]


def write(keys, arch, out):
    w = gguf.GGUFWriter(out, arch)
    cfg_keys = {
        "context_length": 512, "embedding_length": 64, "block_count": 1, "feed_forward_length": 128,
        "attention.head_count": 4,
    }
    for k, v in cfg_keys.items():
        w.add_uint32("%s.%s" % (arch, k), v)
    if arch == "bert":
        w.add_float32("bert.attention.layer_norm_epsilon", 1e-12)
        w.add_bool("bert.attention.causal", False)
        if not any(k == "tokenizer.ggml.token_type_count" for k, _, _ in keys):
            w.add_uint32("tokenizer.ggml.token_type_count", 2)
    else:
        w.add_float32("%s.attention.layer_norm_rms_epsilon" % arch, 1e-5)
    for key, typ, value in keys:
        if typ == "string":
            w.add_string(key, value)
        elif typ == "u32":
            w.add_uint32(key, value)
        elif typ == "bool":
            w.add_bool(key, value)
        elif typ == "strings":
            w.add_array(key, value)
        elif typ == "i32s":
            w.add_key_value(key, value, gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.INT32)
        elif typ == "f32s":
            w.add_key_value(key, value, gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.FLOAT32)
        else:
            raise SystemExit("unknown type %s of %s" % (typ, key))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    keys_path, model_dir, out = sys.argv[1:4]
    keys = json.load(open(keys_path, encoding="utf-8"))
    model = next(v for k, _, v in keys if k == "tokenizer.ggml.model")
    arch = {"bert": "bert", "gpt2": "llama", "llama": "llama"}[model]
    write(keys, arch, out)
    llm = llama_cpp.Llama(model_path=out, vocab_only=True, verbose=False)
    if model == "llama":
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
        reference = lambda t: [sp.bos_id()] + sp.encode(t)
    else:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        tok.no_padding()
        tok.no_truncation()
        reference = lambda t: tok.encode(t).ids
    result = []
    for t in TEXTS:
        result.append({
            "text": t,
            "llama_cpp": llm.tokenize(t.encode("utf-8"), add_bos=True, special=False),
            "reference": reference(t),
        })
    print(json.dumps(result))


if __name__ == "__main__":
    main()
