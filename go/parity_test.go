package stload_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"stload.dev/stload"
)

// GetSlice along axis 0 (a view) and axis 1 (a strided copy), against the fixture's bytes.
func TestGetSlice(t *testing.T) {
	m, err := stload.Open(fx.Path(fx.Files["sharded"]))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	all := fx.Tensors["layers.0.w"].Bytes() // F32 [3, 4]
	rows, err := m.GetSlice("layers.0.w", 0, 1, 3, stload.Native)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows.Shape(), []uint64{2, 4}) || !bytes.Equal(rows.Bytes(), all[16:48]) {
		t.Errorf("rows 1..3: %v", rows.Shape())
	}
	rows.Close()
	cols, err := m.GetSlice("layers.0.w", 1, 1, 3, stload.Native)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for r := 0; r < 3; r++ {
		want = append(want, all[r*16+4:r*16+12]...)
	}
	if !reflect.DeepEqual(cols.Shape(), []uint64{3, 2}) || !bytes.Equal(cols.Bytes(), want) {
		t.Errorf("columns 1..3: %v", cols.Shape())
	}
	cols.Close()
	if _, err := m.GetSlice("layers.0.w", 0, 2, 9, stload.Native); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("out-of-range slice: %v", err)
	}
	if _, err := m.GetSlice("layers.0.w", -1, 0, 1, stload.Native); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("negative axis: %v", err)
	}
}

// Prefetch reports byte progress, stops when asked and re-raises a callback's panic.
func TestPrefetch(t *testing.T) {
	m, err := stload.Open(fx.Path(fx.Files["sharded"]))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	last, total := -1, -1
	if err := m.Prefetch(nil, func(done, t int) bool { last, total = done, t; return true }); err != nil {
		t.Fatal(err)
	}
	if total <= 0 || last != total {
		t.Errorf("progress ended at %d of %d", last, total)
	}
	if err := m.Prefetch([]string{"layers.1.w"}, nil); err != nil {
		t.Error(err)
	}
	if err := m.Prefetch([]string{"missing"}, nil); !errors.Is(err, stload.ErrNotFound) {
		t.Errorf("Prefetch(missing): %v", err)
	}
	if err := m.Prefetch(nil, func(int, int) bool { return false }); !errors.Is(err, stload.ErrCancelled) {
		t.Errorf("cancelled Prefetch: %v", err)
	}
	mustPanic(t, "Prefetch with a panicking callback", func() {
		_ = m.Prefetch(nil, func(int, int) bool { panic("boom") })
	})
}

// Files and MetadataAll list what the model's files hold.
func TestFilesAndMetadataAll(t *testing.T) {
	m, err := stload.Open(fx.Path(fx.Files["sharded"]))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	files := m.Files()
	shards, _ := filepath.Glob(fx.Path(fx.Files["sharded"], "*.safetensors"))
	sort.Strings(shards)
	if len(files) != 2 || filepath.Base(files[0]) != filepath.Base(shards[0]) || filepath.Base(files[1]) != filepath.Base(shards[1]) {
		t.Errorf("Files: %v, want %v", files, shards)
	}
	if got := m.MetadataAll(); !reflect.DeepEqual(got, fx.Metadata) {
		t.Errorf("MetadataAll: %v, want %v", got, fx.Metadata)
	}
}

// The limits, the check interval, split and stack options of the C ABI.
func TestMoreOptions(t *testing.T) {
	dir := fx.Path(fx.Files["sharded"])
	if _, err := stload.Open(dir, stload.WithMaxTensors(1)); !errors.Is(err, stload.ErrLimit) {
		t.Errorf("WithMaxTensors(1): %v", err)
	}
	m, err := stload.Open(dir, stload.WithMaxLoadBytes(8), stload.WithCheckInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(stload.F64, nil); !errors.Is(err, stload.ErrLimit) {
		t.Errorf("Load over WithMaxLoadBytes: %v", err)
	}
	m.Close()
	if _, err := stload.Open(dir, stload.WithCheckInterval(-time.Second)); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("negative check interval: %v", err)
	}
	// The directory's model.safetensors.index.json is longer than 16 bytes.
	if _, err := stload.Open(dir, stload.WithMaxJSONSize(16)); !errors.Is(err, stload.ErrLimit) {
		t.Errorf("WithMaxJSONSize(16): %v", err)
	}
	for what, opt := range map[string]stload.Option{
		"WithMaxJSONSize(0)": stload.WithMaxJSONSize(0), "WithMaxViewExpansion(0)": stload.WithMaxViewExpansion(0),
	} {
		if _, err := stload.Open(dir, opt); !errors.Is(err, stload.ErrInvalidArgument) {
			t.Errorf("%s: %v", what, err)
		}
	}
	m, err = stload.Open(dir, stload.WithMaxJSONSize(1<<20), stload.WithMaxViewExpansion(1))
	if err != nil {
		t.Fatalf("WithMaxJSONSize(1 MiB), WithMaxViewExpansion(1): %v", err)
	}
	m.Close()

	all := fx.Tensors["layers.0.w"].Bytes()
	m, err = stload.Open(dir, stload.WithSplit("layers.0.w",
		stload.SplitPart{Name: "q", Rows: 1}, stload.SplitPart{Name: "kv", Rows: 2}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		shape []uint64
		data  []byte
	}{{"q", []uint64{1, 4}, all[:16]}, {"kv", []uint64{2, 4}, all[16:]}} {
		p, err := m.Get(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p.Shape(), c.shape) || !bytes.Equal(p.Bytes(), c.data) {
			t.Errorf("split part %s: %v", c.name, p.Shape())
		}
		p.Close()
	}
	m.Close()
	if _, err := stload.Open(dir, stload.WithSplit("layers.0.w", stload.SplitPart{Name: "q", Rows: 2})); err == nil {
		t.Error("a split whose rows do not add up opened")
	}

	m, err = stload.OpenFiles([]string{fx.Path(fx.Files["dtypes"])}, stload.WithStack("stacked", "t_f32", "t_f32"))
	if err == nil {
		m.Close()
		t.Error("stacking one tensor twice opened")
	}
	m, err = stload.OpenFiles([]string{fx.Path(fx.Files["dtypes"])}, stload.WithStack("stacked", "t_f32"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.Get("stacked")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !reflect.DeepEqual(s.Shape(), []uint64{1, 2, 6}) || !bytes.Equal(s.Bytes(), fx.Tensors["t_f32"].Bytes()) {
		t.Errorf("stacked: %v", s.Shape())
	}
}
