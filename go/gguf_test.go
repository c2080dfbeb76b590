package stload

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteGGUF(t *testing.T) {
	// A Hugging Face llama directory (config.json, weights, tokenizer.json) of the arch fixtures.
	dir, _ := archFixtures(t)
	src := filepath.Join(dir, "llama")
	m, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := filepath.Join(t.TempDir(), "llama.gguf")
	var last, total uint64
	err = m.WriteGGUF(out, GGUFQ8_0, func(done, tot uint64) bool {
		last, total = done, tot
		return true
	})
	if err != nil {
		t.Fatalf("WriteGGUF: %v", err)
	}
	if total == 0 || last != total {
		t.Errorf("progress ended at %d of %d", last, total)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("GGUF")) || binary.LittleEndian.Uint32(raw[4:]) != 3 {
		t.Errorf("file starts %q, want GGUF version 3", raw[:8])
	}
	// The data progress counts is the file less its header.
	if total >= uint64(len(raw)) {
		t.Errorf("progress counted %d bytes of a %d-byte file", total, len(raw))
	}
	for _, key := range []string{"general.architecture", "llama.block_count", "tokenizer.ggml.tokens"} {
		if !bytes.Contains(raw, []byte(key)) {
			t.Errorf("the file has no %s key", key)
		}
	}

	// A cancel or a bad argument leaves no file.
	other := filepath.Join(t.TempDir(), "x.gguf")
	err = m.WriteGGUF(other, GGUFF16, func(done, _ uint64) bool { return done == 0 })
	if !errors.Is(err, ErrCancelled) {
		t.Errorf("cancelled write: %v, want ErrCancelled", err)
	}
	if err := m.WriteGGUF(other, GGUFType(99), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("outtype 99: %v, want ErrInvalidArgument", err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("a failed write left %s (%v)", other, err)
	}

	// Onto the model's own file: refused.
	input := filepath.Join(src, "model.safetensors")
	if err := m.WriteGGUF(input, GGUFAuto, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("onto the input: %v, want ErrInvalidArgument", err)
	}
}

func TestOpenGGUF(t *testing.T) {
	dir, _ := archFixtures(t)
	m, err := Open(filepath.Join(dir, "llama"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := t.TempDir()
	whole, split := filepath.Join(out, "whole.gguf"), filepath.Join(out, "set", "llama.gguf")
	if err := os.Mkdir(filepath.Dir(split), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteGGUF(whole, GGUFQ8_0, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteGGUFSplit(split, GGUFQ8_0, 0, 2, nil); err != nil {
		t.Fatal(err)
	}
	g, err := OpenFiles([]string{whole})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// A split set opens whole from its directory, with the same tensors and bytes.
	s, err := Open(filepath.Dir(split))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fmt.Sprint(s.Names()) != fmt.Sprint(g.Names()) {
		t.Errorf("split set lists %v, the whole file %v", s.Names(), g.Names())
	}
	q8 := 0
	for _, name := range g.Names() {
		info, err := g.Info(name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Dtype != Q8_0 {
			continue
		}
		q8++
		a, err := g.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) || uint64(len(a.Bytes())) != info.NBytes {
			t.Errorf("%s: %d stored bytes, the split set's differ or the info says %d", name, len(a.Bytes()), info.NBytes)
		}
		a.Close()
		b.Close()
	}
	if q8 == 0 {
		t.Error("no Q8_0 tensor in a Q8_0 file")
	}
	// GGUF keys: typed, and as text.
	if v, _ := g.Metadata("general.architecture"); v != "llama" {
		t.Errorf("general.architecture = %q", v)
	}
	if typ, ok := g.MetadataType("llama.block_count"); !ok || typ != ValueUint32 {
		t.Errorf("llama.block_count type %v %v, want ValueUint32", typ, ok)
	}
	if v, _ := g.Metadata("general.file_type"); v != "7" {
		t.Errorf("general.file_type = %q, want 7 (MOSTLY_Q8_0)", v)
	}
	var tokens []string
	text, _ := g.Metadata("tokenizer.ggml.tokens")
	if err := json.Unmarshal([]byte(text), &tokens); err != nil || len(tokens) == 0 {
		t.Errorf("tokenizer.ggml.tokens as JSON: %d tokens, %v", len(tokens), err)
	}
	if typ, ok := g.MetadataType("tokenizer.ggml.tokens"); !ok || typ != ValueArray {
		t.Errorf("tokenizer.ggml.tokens type %v %v, want ValueArray", typ, ok)
	}
	if _, ok := g.MetadataType("no.such.key"); ok {
		t.Error("an absent key has a type")
	}
}

func TestWriteGGUFSplit(t *testing.T) {
	dir, _ := archFixtures(t)
	m, err := Open(filepath.Join(dir, "llama"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := t.TempDir()
	var last, total uint64
	err = m.WriteGGUFSplit(filepath.Join(out, "llama.gguf"), GGUFF16, 0, 2, func(done, tot uint64) bool {
		last, total = done, tot
		return true
	})
	if err != nil {
		t.Fatalf("WriteGGUFSplit: %v", err)
	}
	if total == 0 || last != total {
		t.Errorf("progress ended at %d of %d", last, total)
	}
	// Two tensors per shard, named as gguf-split names them; every shard a GGUF v3 file that
	// carries the split keys, and only the first the architecture's metadata.
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	shards := len(entries)
	if shards < 2 {
		t.Fatalf("%d files written, want several shards of two tensors", shards)
	}
	for i := 1; i <= shards; i++ {
		name := filepath.Join(out, fmt.Sprintf("llama-%05d-of-%05d.gguf", i, shards))
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("shard %d of %d: %v", i, shards, err)
		}
		if !bytes.HasPrefix(raw, []byte("GGUF")) || binary.LittleEndian.Uint32(raw[4:]) != 3 {
			t.Errorf("%s starts %q, want GGUF version 3", name, raw[:8])
		}
		if !bytes.Contains(raw, []byte("split.count")) {
			t.Errorf("%s has no split.count key", name)
		}
		if got := bytes.Contains(raw, []byte("llama.block_count")); got != (i == 1) {
			t.Errorf("%s: llama.block_count present = %v", name, got)
		}
	}

	// No limit at all is refused, and leaves nothing behind.
	empty := t.TempDir()
	if err := m.WriteGGUFSplit(filepath.Join(empty, "x.gguf"), GGUFF16, 0, 0, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no limit: %v, want ErrInvalidArgument", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("a refused split left %d files", len(entries))
	}
}

// WithTokenizerPre writes the pre-tokenizer type given in place of the derived one (the fixture's
// GPT-2 ByteLevel is "gpt-2"); a name not of llama.cpp's form fails Open.
func TestWriteGGUFTokenizerPre(t *testing.T) {
	dir, _ := archFixtures(t)
	src := filepath.Join(dir, "llama")
	pre := func(opts ...Option) string {
		m, err := Open(src, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		out := filepath.Join(t.TempDir(), "llama.gguf")
		if err := m.WriteGGUF(out, GGUFF32, nil); err != nil {
			t.Fatalf("WriteGGUF: %v", err)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// The key, then its value: GGUF string type 8 and a u64 length before the text.
		key := []byte("tokenizer.ggml.pre")
		i := bytes.Index(raw, key)
		if i < 0 {
			t.Fatal("no tokenizer.ggml.pre key")
		}
		v := raw[i+len(key)+4:]
		n := binary.LittleEndian.Uint64(v)
		return string(v[8 : 8+n])
	}
	if got := pre(); got != "gpt-2" {
		t.Errorf("derived: %q, want gpt-2", got)
	}
	if got := pre(WithTokenizerPre("qwen2")); got != "qwen2" {
		t.Errorf("WithTokenizerPre(qwen2): %q", got)
	}
	if _, err := Open(src, WithTokenizerPre("Not A Name")); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad name: %v, want ErrInvalidArgument", err)
	}
}

func TestQuantisedGGUFTypes(t *testing.T) {
	for name, want := range map[string]GGUFType{
		"f16": GGUFF16, "Q8_0": GGUFQ8_0, "q4_k_m": GGUFQ4KM, "q4_k": GGUFQ4KM,
		"Q2_K_S": GGUFQ2KS, "iq4_xs": GGUFIQ4XS, "tq2_0": GGUFTQ2_0,
	} {
		got, err := ParseGGUFType(name)
		if err != nil || got != want {
			t.Errorf("ParseGGUFType(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	if _, err := ParseGGUFType("iq2_xxs"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ParseGGUFType(iq2_xxs): %v, want ErrNotFound", err)
	}

	// A quantised file type writes llama.cpp's file type number.
	dir, _ := archFixtures(t)
	m, err := Open(filepath.Join(dir, "llama"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := filepath.Join(t.TempDir(), "q.gguf")
	if err := m.WriteGGUF(out, GGUFQ4KM, nil); err != nil {
		t.Fatalf("WriteGGUF Q4_K_M: %v", err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// general.file_type: the key, its value type (4 = u32), then 15 (LLAMA_FTYPE_MOSTLY_Q4_K_M).
	key := []byte("general.file_type")
	at := bytes.Index(raw, key)
	if at < 0 || binary.LittleEndian.Uint32(raw[at+len(key):]) != 4 ||
		binary.LittleEndian.Uint32(raw[at+len(key)+4:]) != 15 {
		t.Errorf("general.file_type is not the u32 15")
	}
}

// llama-quantize's overrides: a Q4_K_M file has the types given (the fixture's rows of 32 or 16
// values take no K-quant block, so Q4_K_M's rule gives Q5_0 to most tensors and Q8_0 to
// output.weight), bad values fail Open naming the option and the value, and a float outtype
// with overrides fails the write.
func TestWriteGGUFTypeOverrides(t *testing.T) {
	dir, _ := archFixtures(t)
	src := filepath.Join(dir, "llama")
	types := func(outtype GGUFType, opts ...Option) (map[string]Dtype, error) {
		m, err := Open(src, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		out := filepath.Join(t.TempDir(), "o.gguf")
		if err := m.WriteGGUF(out, outtype, nil); err != nil {
			if _, statErr := os.Stat(out); !os.IsNotExist(statErr) {
				t.Errorf("a refused write left %s", out)
			}
			return nil, err
		}
		g, err := OpenFiles([]string{out})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		got := map[string]Dtype{}
		for _, name := range g.Names() {
			info, err := g.Info(name)
			if err != nil {
				t.Fatal(err)
			}
			got[name] = info.Dtype
		}
		return got, nil
	}
	got, err := types(GGUFQ4KM, WithTokenEmbeddingType("Q8_0"), WithOutputTensorType("q4_0"),
		WithTensorType("attn_q=q5_1"), WithTensorType("attn_=bf16"))
	if err != nil {
		t.Fatalf("WriteGGUF with overrides: %v", err)
	}
	for name, want := range map[string]Dtype{
		"token_embd.weight":   Q8_0,
		"output.weight":       Q4_0,
		"blk.0.attn_q.weight": Q5_1, // the first matching pattern wins
		"blk.1.attn_k.weight": BF16,
		"blk.1.ffn_up.weight": Q5_0, // no pattern matches: the rule's type
	} {
		if got[name] != want {
			t.Errorf("%s: %v, want %v", name, got[name], want)
		}
	}
	got, err = types(GGUFQ4KM, WithPure(true))
	if err != nil || got["output.weight"] != Q5_0 {
		t.Errorf("WithPure: output.weight %v (%v), want Q5_0", got["output.weight"], err)
	}

	// Bad values fail Open, naming the option and the value.
	for _, c := range []struct {
		opt        Option
		what, text string
	}{
		{WithOutputTensorType("q9_9"), "output tensor type", "q9_9"},
		{WithTokenEmbeddingType("Q4_X"), "token embedding type", "Q4_X"},
		{WithTensorType("attn_v"), "tensor type", "attn_v"},
		{WithTensorType("attn_v=q7_k"), "tensor type", "q7_k"},
		{WithTensorType("attn_(v=q8_0"), "tensor type", "attn_(v"},
		{WithTensorType("a\x00=q8_0"), "tensor type", "NUL"},
	} {
		_, err := Open(src, c.opt)
		var e *Error
		if !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &e) ||
			!strings.Contains(e.Message, c.what) || !strings.Contains(e.Message, c.text) {
			t.Errorf("%s %q: %v, want ErrInvalidArgument naming both", c.what, c.text, err)
		}
	}
	// At the write: a float outtype with overrides, a pattern matching no tensor.
	if _, err := types(GGUFF16, WithPure(true)); !errors.Is(err, ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "pure") {
		t.Errorf("F16 with WithPure: %v, want ErrInvalidArgument naming it", err)
	}
	if _, err := types(GGUFQ4KM, WithTensorType("no_such=q8_0")); !errors.Is(err, ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "no_such") {
		t.Errorf("pattern matching nothing: %v, want ErrInvalidArgument naming it", err)
	}
}
