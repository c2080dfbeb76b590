package stload_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"stload.dev/stload"
)

func TestWriteGGUF(t *testing.T) {
	m := openFixture(t, "bench")
	out := filepath.Join(t.TempDir(), "bench.gguf")
	var last, total uint64
	err := m.WriteGGUF(out, stload.GGUFQ8_0, func(done, tot uint64) bool {
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
	// Two 1024x1024 tensors in Q8_0 (34 bytes per 32 values) are the data progress counts.
	if want := uint64(2 * 1024 * 1024 / 32 * 34); total != want {
		t.Errorf("total %d bytes, want %d", total, want)
	}

	// A cancel or a bad argument leaves no file.
	other := filepath.Join(t.TempDir(), "x.gguf")
	err = m.WriteGGUF(other, stload.GGUFF16, func(done, _ uint64) bool { return done == 0 })
	if !errors.Is(err, stload.ErrCancelled) {
		t.Errorf("cancelled write: %v, want ErrCancelled", err)
	}
	if err := m.WriteGGUF(other, stload.GGUFType(99), nil); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("outtype 99: %v, want ErrInvalidArgument", err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("a failed write left %s (%v)", other, err)
	}

	// Onto the model's own file: refused.
	input := fx.Path(fx.Files["bench"])
	if err := m.WriteGGUF(input, stload.GGUFAuto, nil); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("onto the input: %v, want ErrInvalidArgument", err)
	}
}
