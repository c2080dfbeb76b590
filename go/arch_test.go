package stload

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"stload.dev/stload/internal/fixtures"
)

// archFixtures writes the llama/phi3/mixtral checkpoints of tests/python/make_arch_fixtures.py
// and returns their directory and the expected tensors (arch -> name -> {shape, hex, f32_hex}).
func archFixtures(t *testing.T) (string, map[string]map[string]struct {
	Shape  []uint64 `json:"shape"`
	Hex    string   `json:"hex"`
	F32Hex string   `json:"f32_hex"`
}) {
	t.Helper()
	root, err := fixtures.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	python, err := fixtures.Python(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := filepath.Join(root, "tests", "python", "make_arch_fixtures.py")
	if out, err := exec.Command(python, script, dir).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	text, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]map[string]struct {
		Shape  []uint64 `json:"shape"`
		Hex    string   `json:"hex"`
		F32Hex string   `json:"f32_hex"`
	}
	if err := json.Unmarshal(text, &want); err != nil {
		t.Fatal(err)
	}
	return dir, want
}

func TestArchGivesOllamaNamesAndRepackedValues(t *testing.T) {
	dir, want := archFixtures(t)
	for _, arch := range []string{"llama", "phi3", "mixtral"} {
		m, err := Open(filepath.Join(dir, arch), WithArch(arch))
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if m.Len() != len(want[arch]) {
			t.Errorf("%s: %d tensors, want %d", arch, m.Len(), len(want[arch]))
		}
		for name, w := range want[arch] {
			tensor, err := m.GetAs(name, F32)
			if err != nil {
				t.Fatalf("%s %s: %v", arch, name, err)
			}
			f32, _ := hex.DecodeString(w.F32Hex)
			if !bytes.Equal(tensor.Bytes(), f32) {
				t.Errorf("%s %s: F32 values differ from numpy's", arch, name)
			}
			tensor.Close()
		}
		m.Close()
	}
}

func TestRenameFollowsGoReplacerAndRefusesCollisions(t *testing.T) {
	dir, _ := archFixtures(t)
	m, err := Open(filepath.Join(dir, "llama"), WithRename("model.layers", "L", "model.", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Info("L.0.self_attn.q_proj.weight"); err != nil {
		t.Errorf("renamed name missing: %v", err)
	}
	if _, err := m.Info("embed_tokens.weight"); err != nil {
		t.Errorf("renamed name missing: %v", err)
	}
	_, err = Open(filepath.Join(dir, "llama"), WithRename("input_layernorm", "n", "post_attention_layernorm", "n"))
	if !errors.Is(err, ErrDuplicate) {
		t.Errorf("collision: got %v, want ErrDuplicate", err)
	}
	if _, err := Open(filepath.Join(dir, "llama"), WithRename("odd")); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("odd pairs: got %v, want ErrInvalidArgument", err)
	}
	if _, err := Open(filepath.Join(dir, "llama"), WithArch("gpt9")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown arch: got %v, want ErrUnsupported", err)
	}
}

func TestReadModeAndPrefetchServeTheSameBytes(t *testing.T) {
	dir, _ := archFixtures(t)
	path := filepath.Join(dir, "llama")
	plain, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for _, opt := range []Option{WithReadMode(true), WithPrefetch(true)} {
		m, err := Open(path, opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range m.Names() {
			a, errA := m.Get(name)
			b, errB := plain.Get(name)
			if errA != nil || errB != nil {
				t.Fatal(errA, errB)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("%s differs", name)
			}
			a.Close()
			b.Close()
		}
		m.Close()
	}
}
