//go:build !stload_mlx

package stload_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"stload.dev/stload"
)

// weightsOracle returns tensor name's bytes as stored and as numpy's astype(bfloat16) gives
// them (expected.json of the fixture script): what host tensors must hold.
func weightsOracle(t *testing.T, name string) (native, bf16 []byte) {
	t.Helper()
	want, ok := fx.Tensors[name]
	if !ok {
		t.Fatalf("the fixtures have no tensor %q", name)
	}
	bf16, _ = want.AsBytes("BF16")
	return want.Bytes(), bf16
}

// Without the stload_mlx tag, ModelWeights hands out host tensors.
var _ *stload.Tensor = (*stload.WeightArray)(nil)

// Load(BF16) over every dtype: float tensors (FP8 included) hold numpy's astype(bfloat16),
// every other tensor its stored bytes, as the seed's Load leaves non-float weights alone.
func TestModelWeightsHostEveryDtype(t *testing.T) {
	w, err := stload.LoadModelWeightsFromPaths([]string{fx.Path(fx.Files["dtypes"])})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Load(stload.BF16); err != nil {
		t.Fatal(err)
	}
	converted := 0
	for _, name := range w.ListTensors() {
		want, ok := fx.Tensors[name]
		if !ok {
			t.Fatalf("the fixtures have no tensor %q", name)
		}
		a, err := w.Get(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		stored, err := stload.ParseDtype(want.Dtype)
		if err != nil {
			t.Fatal(err)
		}
		isFloat := strings.HasPrefix(want.Dtype, "F8_") ||
			stored == stload.F16 || stored == stload.BF16 || stored == stload.F32 || stored == stload.F64
		wantBytes, wantDtype := want.Bytes(), stored
		if isFloat && stored != stload.BF16 {
			if wantBytes, ok = want.AsBytes("BF16"); !ok {
				t.Fatalf("%s: the fixtures have no BF16 conversion", name)
			}
			wantDtype = stload.BF16
			converted++
		}
		if a.Dtype() != wantDtype || !bytes.Equal(a.Bytes(), wantBytes) || !sameShape(a.Shape(), want.Shape) {
			t.Errorf("%s (%s): got %v %v, want %v %v", name, want.Dtype, a.Dtype(), a.Shape(), wantDtype, want.Shape)
		}
	}
	if converted < 6 { // F16, F32, F64 and the FP8 dtypes
		t.Errorf("only %d tensors were converted", converted)
	}
}

// Get and GetTensor from many goroutines while they run: the race detector checks the
// ModelWeights' own state (test.sh runs the tests with -race).
func TestModelWeightsConcurrent(t *testing.T) {
	w, err := stload.LoadModelWeights(fx.Path(fx.Files["sharded"]))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Load(stload.F32); err != nil {
		t.Fatal(err)
	}
	want := fx.Tensors["layers.0.w"].Bytes()
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				a, err := w.Get("layers.0.w")
				if err != nil || !bytes.Equal(a.Bytes(), want) {
					errs <- fmt.Sprintf("Get: %v", err)
					return
				}
				if _, err := w.GetTensor("layers.1.w"); err != nil {
					errs <- fmt.Sprintf("GetTensor: %v", err)
					return
				}
				if i%10 == 0 {
					w.ReleaseAll()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
