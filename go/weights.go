package stload

import (
	"errors"
	"fmt"
	"sync"
)

// ModelWeights is the API of ollama's x/imagegen/safetensors loader, by its names, as a thin
// layer over Model: an engine written against it switches to stload by changing the import.
// Opening reads headers only; Load makes every tensor a WeightArray; Get serves them.
//
// What it hands out depends on the build: with the stload_mlx tag, MLX arrays (Model.LoadMLX
// and Model.GetMLX, WeightArray = MLXArray); without it, host tensors (Model.Load and
// Model.GetAs, WeightArray = Tensor). The rules are the same in both builds.
//
// Arrays returned by Get and GetTensor are owned by the ModelWeights (do not Close them):
// they stay valid until Close, and after ReleaseAll for those Load made. A ModelWeights may
// be used from many goroutines at once, except Close.
type ModelWeights struct {
	m  *Model
	mu sync.Mutex
	// loaded holds the arrays Load made, by name; nil before Load.
	loaded map[string]*WeightArray
	// native holds the arrays GetTensor made outside Load, released by ReleaseAll.
	native map[string]*WeightArray
}

// LoadModelWeights opens the safetensors files of directory dir (as Open does: the index
// file's shards, else every *.safetensors file). Only headers are read.
func LoadModelWeights(dir string, opts ...Option) (*ModelWeights, error) {
	m, err := Open(dir, opts...)
	if err != nil {
		return nil, err
	}
	return newModelWeights(m)
}

// LoadModelWeightsFromPaths opens an explicit list of safetensors files, e.g. blobs that are
// not in one directory (as OpenFiles does).
func LoadModelWeightsFromPaths(paths []string, opts ...Option) (*ModelWeights, error) {
	m, err := OpenFiles(paths, opts...)
	if err != nil {
		return nil, err
	}
	return newModelWeights(m)
}

func newModelWeights(m *Model) (*ModelWeights, error) {
	if m.Len() == 0 {
		m.Close()
		return nil, &Error{Status: StatusNotFound, Message: "no tensors found in the safetensors files"}
	}
	return &ModelWeights{m: m, native: map[string]*WeightArray{}}, nil
}

// Model returns the underlying Model, for what ModelWeights does not name (GetAs, Metadata,
// ...). It is closed by Close.
func (w *ModelWeights) Model() *Model {
	return w.m
}

// Load makes every tensor a WeightArray (Model.LoadMLX with stload_mlx, else Model.Load).
// With dtype 0 (Native) each is as stored; with a float dtype every floating-point tensor
// stored in another dtype is converted by stload's exact kernels, and integer and boolean
// tensors stay as stored. Get then serves the arrays. A second Load replaces the first one's
// arrays and closes them.
func (w *ModelWeights) Load(dtype Dtype) error {
	if err := w.loadAll(dtype); err != nil {
		return err
	}
	loaded := make(map[string]*WeightArray, w.m.Len())
	for _, name := range w.m.Names() {
		// loadAll converted exactly the float tensors; ask for those in dtype (a lookup in
		// the model's cache) and for the others as stored.
		var a *WeightArray
		var err error
		if dtype != Native && isFloat(w, name) {
			a, err = w.get(name, dtype)
		}
		if a == nil && err == nil {
			a, err = w.get(name, Native)
		}
		if err != nil {
			closeAll(loaded)
			return err
		}
		loaded[name] = a
	}
	w.mu.Lock()
	old := w.loaded
	w.loaded = loaded
	w.mu.Unlock()
	closeAll(old)
	return nil
}

// isFloat reports whether tensor name is stored in a floating-point dtype stload converts
// (F16, BF16, F32, F64 and the FP8 types).
func isFloat(w *ModelWeights, name string) bool {
	info, err := w.m.Info(name)
	if err != nil {
		return false
	}
	switch info.Dtype {
	case F16, BF16, F32, F64, F8E4M3, F8E5M2, F8E8M0, F8E4M3FNUZ, F8E5M2FNUZ:
		return true
	}
	return false
}

// Get returns the array Load made for name. Before Load it is an error, as in the seed; an
// unknown name matches ErrNotFound.
func (w *ModelWeights) Get(name string) (*WeightArray, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.loaded == nil {
		return nil, errors.New("stload: ModelWeights.Get before Load: call Load first")
	}
	a, ok := w.loaded[name]
	if !ok {
		return nil, &Error{Status: StatusNotFound, Message: fmt.Sprintf("tensor %q not found", name)}
	}
	return a, nil
}

// GetTensor returns tensor name as stored without Load: the array Load made when there is
// one, else a new one kept until ReleaseAll or Close.
func (w *ModelWeights) GetTensor(name string) (*WeightArray, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if a, ok := w.loaded[name]; ok {
		return a, nil
	}
	if a, ok := w.native[name]; ok {
		return a, nil
	}
	a, err := w.get(name, Native)
	if err != nil {
		return nil, err
	}
	w.native[name] = a
	return a, nil
}

// GetTensorInfo describes tensor name without reading its data; false when there is none.
func (w *ModelWeights) GetTensorInfo(name string) (TensorInfo, bool) {
	info, err := w.m.Info(name)
	return info, err == nil
}

// ListTensors returns every tensor name, sorted.
func (w *ModelWeights) ListTensors() []string {
	return w.m.Names()
}

// HasTensor reports whether the files hold a tensor named name.
func (w *ModelWeights) HasTensor(name string) bool {
	_, err := w.m.Info(name)
	return err == nil
}

// Quantization returns "" as the seed does for safetensors directories: the weights are not
// quantized in a way this loader knows.
func (w *ModelWeights) Quantization() string {
	return ""
}

// ReleaseAll releases what GetTensor made and the model's cached arrays and file mappings
// (Model.ReleaseAll). The arrays Load made stay valid: they hold their data on their own.
func (w *ModelWeights) ReleaseAll() {
	w.mu.Lock()
	native := w.native
	w.native = map[string]*WeightArray{}
	w.mu.Unlock()
	closeAll(native)
	w.m.ReleaseAll()
}

// Close releases every array and the model. Close is idempotent and returns nil; it must not
// run concurrently with other methods of w.
func (w *ModelWeights) Close() error {
	w.mu.Lock()
	loaded, native := w.loaded, w.native
	w.loaded, w.native = nil, map[string]*WeightArray{}
	w.mu.Unlock()
	closeAll(loaded)
	closeAll(native)
	return w.m.Close()
}

func closeAll(arrays map[string]*WeightArray) {
	for _, a := range arrays {
		a.Close()
	}
}
