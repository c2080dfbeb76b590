package stload_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"sort"
	"testing"

	"stload.dev/stload"
)

// The seed's API by its names, in both builds: the bytes of every array are checked against
// the oracle of the build (weightsOracle: numpy's for host tensors, Python's mx.load for MLX
// arrays), as stored and as Load(BF16) converts them.
func TestModelWeights(t *testing.T) {
	native, bf16 := weightsOracle(t, "layers.0.w")
	ints, _ := weightsOracle(t, "layers.1.w")
	w, err := stload.LoadModelWeights(fx.Path(fx.Files["sharded"]))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	names := w.ListTensors()
	if len(names) != 2 || !sort.StringsAreSorted(names) {
		t.Fatalf("ListTensors: %v", names)
	}
	if !w.HasTensor("layers.0.w") || w.HasTensor("missing") {
		t.Error("HasTensor")
	}
	if info, ok := w.GetTensorInfo("layers.1.w"); !ok || info.Dtype != stload.I64 || !sameShape(info.Shape, []uint64{2, 3}) {
		t.Errorf("GetTensorInfo: %+v %v", info, ok)
	}
	if _, ok := w.GetTensorInfo("missing"); ok {
		t.Error("GetTensorInfo of a missing tensor")
	}
	if w.Quantization() != "" {
		t.Error("Quantization")
	}
	if _, err := w.Get("layers.0.w"); err == nil {
		t.Error("Get before Load succeeded")
	}
	// GetTensor works before Load, as stored, and is kept until ReleaseAll.
	g, err := w.GetTensor("layers.0.w")
	if err != nil || g.Dtype() != stload.F32 || !bytes.Equal(g.Bytes(), native) {
		t.Fatalf("GetTensor: %v", err)
	}
	if g2, _ := w.GetTensor("layers.0.w"); g2 != g {
		t.Error("GetTensor made a second array")
	}

	if err := w.Load(stload.BF16); err != nil {
		t.Fatal(err)
	}
	a, err := w.Get("layers.0.w")
	if err != nil || a.Dtype() != stload.BF16 || !bytes.Equal(a.Bytes(), bf16) {
		t.Fatalf("Get after Load(BF16): %v", err)
	}
	if !sameShape(a.Shape(), []uint64{3, 4}) || a.NBytes() != 24 {
		t.Errorf("Get after Load(BF16): shape %v, %d bytes", a.Shape(), a.NBytes())
	}
	i, err := w.Get("layers.1.w")
	if err != nil || i.Dtype() != stload.I64 || !bytes.Equal(i.Bytes(), ints) {
		t.Fatalf("Get of the integer tensor after Load(BF16): %v", err)
	}
	if _, err := w.Get("missing"); !errors.Is(err, stload.ErrNotFound) {
		t.Errorf("Get(missing): %v", err)
	}
	// The loaded arrays survive ReleaseAll; GetTensor now serves them.
	w.ReleaseAll()
	if !bytes.Equal(a.Bytes(), bf16) {
		t.Error("array changed after ReleaseAll")
	}
	if g3, _ := w.GetTensor("layers.0.w"); g3 != a {
		t.Error("GetTensor after Load does not serve the loaded array")
	}
	// Load(0) is as stored.
	if err := w.Load(0); err != nil {
		t.Fatal(err)
	}
	if a, _ := w.Get("layers.0.w"); a.Dtype() != stload.F32 || !bytes.Equal(a.Bytes(), native) {
		t.Errorf("Load(0) gave %v", a.Dtype())
	}
	// The arrays a second Load replaced are closed: using one panics.
	mustPanic(t, "an array of a replaced Load", func() { a.Bytes() })
	if w.Model() == nil || w.Model().Len() != 2 {
		t.Error("Model")
	}
	if w.Close() != nil || w.Close() != nil {
		t.Error("Close")
	}

	shards, _ := filepath.Glob(fx.Path(fx.Files["sharded"], "*.safetensors"))
	p, err := stload.LoadModelWeightsFromPaths(shards)
	if err != nil || len(p.ListTensors()) != 2 {
		t.Fatalf("LoadModelWeightsFromPaths: %v", err)
	}
	p.Close()
	if _, err := stload.LoadModelWeights(fx.Path("no-such-dir")); err == nil {
		t.Error("LoadModelWeights of a missing directory")
	}
}
