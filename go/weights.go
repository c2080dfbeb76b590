//go:build stload_mlx

package stload

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// ModelWeights is the API of ollama's x/imagegen/safetensors loader, by its names, as a thin
// layer over Model and its MLX arrays: an engine written against it switches to stload by
// changing the import. Opening reads headers only; Load makes every tensor an MLX array;
// Get serves them.
//
// Arrays returned by Get and GetTensor are owned by the ModelWeights (do not Close them):
// they stay valid until Close, and after ReleaseAll for those Load made. A ModelWeights may
// be used from many goroutines at once, except Close.
type ModelWeights struct {
	m  *Model
	mu sync.Mutex
	// loaded holds the arrays Load made, by name; nil before Load.
	loaded map[string]*MLXArray
	// native holds the arrays GetTensor made outside Load, released by ReleaseAll.
	native map[string]*MLXArray
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
	return &ModelWeights{m: m, native: map[string]*MLXArray{}}, nil
}

// Model returns the underlying Model, for what ModelWeights does not name (GetAs, Metadata,
// ...). It is closed by Close.
func (w *ModelWeights) Model() *Model {
	return w.m
}

// Load makes every tensor an MLX array (Model.LoadMLX). With dtype 0 (Native) each is as
// stored; with a float dtype every floating-point tensor stored in another dtype is converted
// by stload's exact kernels, and integer and boolean tensors stay as stored. Get then serves
// the arrays. A second Load replaces the first one's arrays and closes them.
func (w *ModelWeights) Load(dtype Dtype) error {
	if err := w.m.LoadMLX(dtype, nil); err != nil {
		return err
	}
	loaded := make(map[string]*MLXArray, w.m.Len())
	for _, name := range w.m.Names() {
		// LoadMLX converted exactly the float tensors it could; ask for those in dtype (a
		// lookup in the model's MLX cache) and for the others as stored.
		var a *MLXArray
		var err error
		if dtype != Native && isFloatName(w, name) {
			a, err = w.m.GetMLX(name, dtype)
		}
		if a == nil {
			a, err = w.m.GetMLX(name, Native)
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

// isFloatName reports whether tensor name is stored in a floating-point dtype stload
// converts (F16, BF16, F32, F64 and the FP8 types).
func isFloatName(w *ModelWeights, name string) bool {
	info, err := w.m.Info(name)
	if err != nil {
		return false
	}
	s := info.Dtype.String()
	return s == "F16" || s == "BF16" || s == "F32" || s == "F64" || strings.HasPrefix(s, "F8_")
}

// Get returns the array Load made for name. Before Load it is an error, as in the seed; an
// unknown name matches ErrNotFound.
func (w *ModelWeights) Get(name string) (*MLXArray, error) {
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
func (w *ModelWeights) GetTensor(name string) (*MLXArray, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if a, ok := w.loaded[name]; ok {
		return a, nil
	}
	if a, ok := w.native[name]; ok {
		return a, nil
	}
	a, err := w.m.GetMLX(name, Native)
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
	w.native = map[string]*MLXArray{}
	w.mu.Unlock()
	closeAll(native)
	w.m.ReleaseAll()
}

// Close releases every array and the model. Close is idempotent and returns nil; it must not
// run concurrently with other methods of w.
func (w *ModelWeights) Close() error {
	w.mu.Lock()
	loaded, native := w.loaded, w.native
	w.loaded, w.native = nil, map[string]*MLXArray{}
	w.mu.Unlock()
	closeAll(loaded)
	closeAll(native)
	return w.m.Close()
}

func closeAll(arrays map[string]*MLXArray) {
	for _, a := range arrays {
		a.Close()
	}
}
