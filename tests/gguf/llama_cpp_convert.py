"""Runs llama.cpp's own converter (`convert_hf_to_gguf.py` of the llama.cpp version that
llama-cpp-python builds, with its `gguf-py`) on one model directory: the calibration reference
for the bounds of e2e.py's transformers checks.

The tiny test models carry a freshly trained BPE tokenizer, whose pre-tokenizer hash llama.cpp's
converter does not know (it would refuse it), and no `tokenizer.model` (gemma's vocabulary
path needs one). The logits checks feed token ids, so the vocabulary only has to load: the
converter is run with the BPE vocabulary path for every architecture (phi3's included) and `tokenizer.ggml.pre`
"default", and gemma3 keeps its embedding rows past tokenizer.json's tokens (as its SentencePiece
path does). Nothing else of it is changed.

Usage: llama_cpp_convert.py CONVERTER_DIR MODEL_DIR OUT_DIR OUTTYPE...
  writes OUT_DIR/NAME-OUTTYPE.gguf for each OUTTYPE (NAME: the model directory's name), in one
  process so torch is imported once.
"""

import sys
from pathlib import Path


def main() -> int:
    converter, model, out_dir = sys.argv[1:4]
    sys.path.insert(0, converter)
    sys.path.insert(1, str(Path(converter) / "gguf-py"))
    from conversion import base  # noqa: E402 - from the converter's directory

    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "default"
    base.TextModel._set_vocab_sentencepiece = lambda self, *a, **k: self._set_vocab_gpt2()
    from conversion import phi  # noqa: E402 - phi3 reads tokenizer.model by itself

    phi.Phi3MiniModel.set_vocab = lambda self: self._set_vocab_gpt2()
    from conversion import gemma  # noqa: E402

    # gemma3 cuts the token embedding to the tokens tokenizer.json lists; its SentencePiece path
    # counts the vocabulary padded to vocab_size, which the BPE path used here writes too, so
    # the embedding keeps every row (else llama.cpp refuses the file: 402 rows for 448 tokens).
    text_model_tensors = base.TextModel.modify_tensors
    gemma3_tensors = gemma.Gemma3Model.modify_tensors

    def keep_padded_rows(self, data_torch, name, bid):
        if "embed_tokens.weight" in name:
            return text_model_tensors(self, data_torch, name, bid)
        return gemma3_tensors(self, data_torch, name, bid)

    gemma.Gemma3Model.modify_tensors = keep_padded_rows
    import convert_hf_to_gguf  # noqa: E402

    for outtype in sys.argv[4:]:
        out = Path(out_dir) / f"{Path(model).name}-{outtype}.gguf"
        sys.argv = ["convert_hf_to_gguf.py", model, "--outfile", str(out), "--outtype", outtype]
        convert_hf_to_gguf.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
