"""llama.cpp splits text as the source tokenizer does, for every tokenizer kind the architectures use.

Usage: tokenizer_split.py STLOAD WORK_DIR [-k NAME]

For each case a small tokenizer is trained here (no download) with the exact pre-tokenizer
definition of a public tokenizer.json (Llama 3, Qwen2, GPT-2, gpt-oss/Llama 4's o200k, Mistral
Nemo's tekken, DeepSeek-V3, Command-R/SmolLM; with and without Llama 3's ignore_merges), or a
SentencePiece model trained like Llama's and like Gemma's, or a BERT WordPiece. It is saved
beside a tiny random transformers model of its size, converted by `stload convert`, and
llama.cpp (llama-cpp-python, vocab_only) tokenizes a varied set of strings (runs of spaces, tabs
and newlines, punctuation runs, digit runs, contractions, non-ASCII, emoji, special tokens
inside text, and llama.cpp's own pre-tokenizer check text) with the ids the source library
gives. Also: `tokenizer.ggml.pre` is the type the definition maps to, a pre-tokenizer no
llama.cpp type has is refused naming it, and `--tokenizer-pre` writes the type given.

Prints one line per case and closes with "N passed, N failed"; exits non-zero on any failure.
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import gguf
import llama_cpp
import sentencepiece as spm
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

# The Split regexes of public tokenizer.json files.
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")
O200K = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
          r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
          r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DEEPSEEK3 = [
    r"\p{N}{1,3}",
    "[一-龥\u3040-ゟ゠-ヿ]+",
    r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
]

SPECIAL = "<|special|>"
# llama.cpp's converter's pre-tokenizer check text (convert_hf_to_gguf.py, get_vocab_base_pre).
CHKTXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ "
    "🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ "
    "------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, "
    "'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)
KHMER = "កាន់តែពិសេសអាច"
HANGUL = "東京タワー 我想在apple工作 한국어 テスト"
SPECIAL_MID = f"text {SPECIAL}inside{SPECIAL} text {SPECIAL} and after{SPECIAL}"
TEXTS = [
    "Hello world",
    "  two leading spaces, three trailing   ",
    "a\tb\t\tc\t\t\td",
    "line one\nline two\n\n\nline five\r\nwindows\r\n",
    "   \n  \t \n\n\t\t  end",
    "!!!??? ...,,, ---=== (((]]] ''' \"\"\" ~~~",
    "1 12 123 1234 12345 123456789 3.14159 2,718,281 0x1F",
    "I'm you're he'll we've she'd it's DON'T I'LL We'Ve",
    "über café naïve Ελληνικά русский язык",
    HANGUL,
    "emoji 🚀🦙 😶\u200d🌫️ ✅👍🏽 flags 🇫🇷",
    SPECIAL_MID,
    f"a special token ends this{SPECIAL}",
    "mixed CamelCase HTTPServer iPhone XMLHttpRequest",
    "path/to/file.txt https://example.org/a?b=c&d=e",
    CHKTXT,
    CHKTXT.replace(KHMER, "khmer"),
]
# Where llama.cpp itself splits otherwise, whatever the file says (checked against the file
# llama.cpp's own converter writes, which gives the same pieces): (case, text) → why.
LLAMA_CPP_DIFFERS = {
    ("gpt-4o", CHKTXT): "llama.cpp's gpt-4o regex is rewritten without \\p{M}: Khmer's combining marks split off",
    ("tekken", CHKTXT): "llama.cpp's tekken regex is rewritten without \\p{M}: Khmer's combining marks split off",
    ("wordpiece", CHKTXT): "llama.cpp's WordPiece normaliser strips Khmer vowel signs that BertNormalizer keeps",
    ("wordpiece", HANGUL): "llama.cpp's WordPiece normaliser drops Hangul jamo after decomposing the syllables",
    ("spm-llama", SPECIAL_MID): "llama.cpp puts a space before text after a special token when SentencePiece's "
    "dummy prefix is on (as transformers' legacy Llama tokenizer); sentencepiece does not",
}
WORDS = ("the quick brown fox jumps over lazy dog tensor model weight load convert memory speed token "
         "vocabulary merge byte piece über café naïve Ελληνικά русский язык 東京 タワー 我想在 工作 한국어 "
         "apple 1234 56789 3.14 don't it's we'll I'm HTTPServer CamelCase 🚀 🦙 ✅ ... !!! ??? --- === \t \n").split(" ")


def corpus(seed=0, n=2500):
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 16))) for _ in range(n)]
    return lines + TEXTS * 3


def bpe(d: Path, pre, ignore_merges=False, normalizer=None):
    """A byte-level BPE tokenizer with pre-tokenizer `pre`, trained on the corpus."""
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    from tokenizers import decoders
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=900, special_tokens=["<|endoftext|>", SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.save(str(d / "tokenizer.json"))
    n = tok.get_vocab_size(with_added_tokens=True)
    reference = lambda t: tok.encode(t, add_special_tokens=False).ids
    return n, reference


def split_seq(*regexes, byte_level_regex=False):
    return pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r), behavior="isolated", invert=False) for r in regexes]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=byte_level_regex)]
    )


def sentencepiece(d: Path, gemma: bool):
    """A SentencePiece model trained like Llama's (dummy prefix) or Gemma's (none, digits split)."""
    text = d / "corpus.txt"
    text.write_text("\n".join(corpus(seed=2)), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(d / "tokenizer"), vocab_size=900, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, user_defined_symbols=[SPECIAL],
        bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2, hard_vocab_limit=False,
        # No normaliser and spaces kept, as Llama's and Gemma's tokenizer.model (llama.cpp's
        # SentencePiece tokenizer applies none).
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=not gemma, split_digits=gemma, allow_whitespace_only_pieces=gemma,
    )
    text.unlink()
    (d / "tokenizer.vocab").unlink()
    sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
    return sp.vocab_size(), lambda t: sp.encode(t)


def wordpiece(d: Path):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=900, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False,
    )
    tok.train_from_iterator(corpus(seed=1), trainer=trainer)
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({
        "cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "[UNK]", "pad_token": "[PAD]",
        "mask_token": "[MASK]", "do_lower_case": True,
    }))
    n = tok.get_vocab_size(with_added_tokens=True)
    return n, lambda t: tok.encode(t, add_special_tokens=False).ids


def tiny_model(d: Path, n_vocab: int, bert: bool):
    """A tiny random transformers model with `n_vocab` tokens, saved as safetensors in `d`."""
    import torch
    import transformers
    torch.manual_seed(0)
    if bert:
        cfg = transformers.BertConfig(vocab_size=n_vocab, hidden_size=16, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
        model = transformers.BertModel(cfg, add_pooling_layer=False)
    else:
        cfg = transformers.LlamaConfig(vocab_size=n_vocab, hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, num_key_value_heads=2, intermediate_size=32,
                                       max_position_embeddings=64)
        model = transformers.LlamaForCausalLM(cfg)
    model.save_pretrained(str(d), safe_serialization=True)


def pre_of(path: Path) -> str:
    r = gguf.GGUFReader(str(path))
    return r.fields["tokenizer.ggml.pre"].contents()


def convert(stload: str, d: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [stload, "convert", str(d), "--out", str(out), "--outtype", "f32", "--force", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


# name → (make(d) → (n_vocab, reference), bert?, expected tokenizer.ggml.pre)
CASES = {
    "llama3": (lambda d: bpe(d, split_seq(LLAMA3), ignore_merges=True), False, "llama-bpe"),
    "llama3-merges": (lambda d: bpe(d, split_seq(LLAMA3)), False, "dbrx"),
    "qwen2": (lambda d: bpe(d, split_seq(QWEN2), normalizer=normalizers.NFC()), False, "qwen2"),
    "gpt2": (lambda d: bpe(d, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)), False, "gpt-2"),
    "gpt-4o": (lambda d: bpe(d, split_seq(O200K)), False, "gpt-4o"),
    "tekken": (lambda d: bpe(d, split_seq(TEKKEN), ignore_merges=True), False, "tekken"),
    "deepseek-v3": (lambda d: bpe(d, split_seq(*DEEPSEEK3)), False, "deepseek-v3"),
    "command-r": (lambda d: bpe(d, pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])), False, "command-r"),
    "spm-llama": (lambda d: sentencepiece(d, gemma=False), False, "default"),
    "spm-gemma": (lambda d: sentencepiece(d, gemma=True), False, "default"),
    "wordpiece": (wordpiece, True, "default"),
}


def run_case(stload: str, work: Path, name: str) -> str:
    make, bert, want_pre = CASES[name]
    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    n_vocab, reference = make(d)
    tiny_model(d, n_vocab, bert)
    out = work / f"{name}.gguf"
    r = convert(stload, d, out)
    if r.returncode != 0:
        raise AssertionError(f"stload convert exited {r.returncode}: {r.stderr.strip()[-600:]}")
    pre = pre_of(out)
    if pre != want_pre:
        raise AssertionError(f"tokenizer.ggml.pre {pre!r}, expected {want_pre!r}")
    llm = llama_cpp.Llama(model_path=str(out), vocab_only=True, verbose=False)
    bad = []
    skipped = 0
    for t in TEXTS:
        if (name, t) in LLAMA_CPP_DIFFERS:
            skipped += 1
            continue
        have = llm.tokenize(t.encode("utf-8"), add_bos=False, special=True)
        want = reference(t)
        if have != want:
            bad.append(f"{t[:40]!r}: llama.cpp {have[:12]}..., source {want[:12]}...")
    if bad:
        raise AssertionError(f"{len(bad)} of {len(TEXTS) - skipped} texts differ: " + "; ".join(bad[:4]))
    known = f" ({skipped} that llama.cpp splits otherwise left out)" if skipped else ""
    return f"pre {pre}, {len(TEXTS) - skipped} texts equal{known}, {n_vocab} tokens"


def run_unmapped(stload: str, work: Path) -> str:
    """A pre-tokenizer no llama.cpp type has is refused naming it; --tokenizer-pre overrides."""
    d = work / "unmapped"
    d.mkdir(parents=True, exist_ok=True)
    regex = r"\p{L}+|\p{N}{1,2}"
    n_vocab, _ = bpe(d, split_seq(regex))
    tiny_model(d, n_vocab, False)
    out = work / "unmapped.gguf"
    r = convert(stload, d, out)
    shown = json.dumps(regex)  # the message quotes the regex as Rust's {:?} does
    if r.returncode == 0 or out.exists():
        raise AssertionError("an unmappable pre-tokenizer was accepted")
    if shown not in r.stderr or "--tokenizer-pre" not in r.stderr:
        raise AssertionError(f"the refusal does not name the regex {shown}: {r.stderr.strip()}")
    r = convert(stload, d, out, "--tokenizer-pre", "qwen2")
    if r.returncode != 0 or pre_of(out) != "qwen2":
        raise AssertionError(f"--tokenizer-pre qwen2 not written: {r.stderr.strip()[-400:]}")
    return "refused naming its regex; --tokenizer-pre qwen2 written"


def main() -> int:
    stload, work = sys.argv[1], Path(sys.argv[2])
    select = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "-k" else ""
    work.mkdir(parents=True, exist_ok=True)
    passed = failed = 0
    jobs = [(n, lambda n=n: run_case(stload, work, n)) for n in CASES]
    jobs.append(("unmapped", lambda: run_unmapped(stload, work)))
    for name, job in jobs:
        if select not in name:
            continue
        try:
            detail = job()
        except Exception as e:  # noqa: BLE001 - every error is this case's failure
            failed += 1
            print(f"FAIL tokenizer {name}: {e}")
            continue
        passed += 1
        print(f"PASS tokenizer {name}: {detail}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
