package stload_test

import (
	"bytes"
	"io"
	"runtime"
	"testing"

	"stload.dev/stload"
)

// Both handle types are io.Closers.
var (
	_ io.Closer = (*stload.Model)(nil)
	_ io.Closer = (*stload.Tensor)(nil)
)

func TestCloseTwice(t *testing.T) {
	m, err := stload.OpenFiles([]string{fx.Path(fx.Files["dtypes"])})
	if err != nil {
		t.Fatal(err)
	}
	tensor, err := m.Get("t_f32")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := tensor.Close(); err != nil {
			t.Errorf("Tensor.Close #%d: %v", i+1, err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("Model.Close #%d: %v", i+1, err)
		}
	}
}

func TestUseAfterClosePanics(t *testing.T) {
	m, err := stload.OpenFiles([]string{fx.Path(fx.Files["dtypes"])})
	if err != nil {
		t.Fatal(err)
	}
	tensor, err := m.Get("t_f32")
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	tensor.Close()
	mustPanic(t, "Model.Get after Close", func() { m.Get("t_f32") })
	mustPanic(t, "Model.Names after Close", func() { m.Names() })
	mustPanic(t, "Model.Len after Close", func() { m.Len() })
	mustPanic(t, "Model.ReleaseAll after Close", func() { m.ReleaseAll() })
	mustPanic(t, "Tensor.Bytes after Close", func() { tensor.Bytes() })
	mustPanic(t, "Tensor.Shape after Close", func() { tensor.Shape() })
}

func TestTensorOutlivesModel(t *testing.T) {
	m, err := stload.Open(fx.Path(fx.Files["sharded"]))
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.Get("layers.0.w")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	m.ReleaseAll() // drops the model's mappings; a keeps its own
	b, err := m.Get("layers.1.w")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m.Close()
	runtime.GC()
	runtime.GC()
	for name, tensor := range map[string]*stload.Tensor{"layers.0.w": a, "layers.1.w": b} {
		if !bytes.Equal(tensor.Bytes(), fx.Tensors[name].Bytes()) {
			t.Errorf("%s: bytes changed after the model was closed", name)
		}
	}
}

func TestEdgeShapes(t *testing.T) {
	m := openFixture(t, "dtypes")
	scalar, err := m.Get("scalar_f32")
	if err != nil {
		t.Fatal(err)
	}
	defer scalar.Close()
	if len(scalar.Shape()) != 0 || scalar.NBytes() != 4 {
		t.Errorf("scalar: shape %v, %d bytes", scalar.Shape(), scalar.NBytes())
	}
	empty, err := m.Get("empty_f32")
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if b := empty.Bytes(); b == nil || len(b) != 0 {
		t.Errorf("empty: Bytes() = %#v, want an empty non-nil slice", b)
	}
}

// Handles that are never closed are freed by their finalizers; this must not crash.
func TestFinalizersFreeLeakedHandles(t *testing.T) {
	for i := 0; i < 50; i++ {
		m, err := stload.OpenFiles([]string{fx.Path(fx.Files["dtypes"])})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Get("t_bf16"); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
}
