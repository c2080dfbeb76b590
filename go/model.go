package stload

// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"runtime"
	"strings"
	"unsafe"
)

// Model is an opened model: the index of its tensors across one or more safetensors files.
// Opening reads headers only; data is mapped when first asked for.
//
// A Model may be used from many goroutines at once; Close must not run concurrently with
// other methods. Methods other than Close panic after Close.
type Model struct {
	p *C.stload_model
}

// TensorInfo is what the index knows of one tensor, without reading its data.
type TensorInfo struct {
	// Name is the name the model lists the tensor under.
	Name string
	// Dtype is the stored element type.
	Dtype Dtype
	// Shape lists the dimensions, outermost first (empty for a scalar).
	Shape []uint64
	// NBytes is the stored byte length.
	NBytes uint64
	// File is the path of the file that holds the data.
	File string
	// DataOffset is the absolute offset of the data in File.
	DataOffset uint64
	// OriginalName is the name in the file before any renaming.
	OriginalName string
}

// Open opens a model directory: the shards listed by model.safetensors.index.json when it
// exists (their headers must agree with it), else every *.safetensors file in sorted order.
func Open(dir string, opts ...Option) (*Model, error) {
	if strings.IndexByte(dir, 0) >= 0 {
		return nil, invalidArg("directory %q contains a NUL byte", dir)
	}
	copts, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	defer C.stload_options_free(copts)
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	var p *C.stload_model
	var cerr *C.stload_error
	if status := C.stload_open_dir(cdir, copts, &p, &cerr); status != C.STLOAD_OK {
		return nil, takeError(status, cerr)
	}
	return newModel(p), nil
}

// OpenFiles opens an explicit list of safetensors files, e.g. from a blob store. The same
// tensor name in two files is an error matching ErrDuplicate.
func OpenFiles(paths []string, opts ...Option) (*Model, error) {
	for _, path := range paths {
		if strings.IndexByte(path, 0) >= 0 {
			return nil, invalidArg("path %q contains a NUL byte", path)
		}
	}
	copts, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	defer C.stload_options_free(copts)
	// The array of C strings lives in C memory: C never receives a Go pointer to keep.
	n := len(paths)
	mem := C.malloc(C.size_t(n+1) * C.size_t(unsafe.Sizeof((*C.char)(nil))))
	if mem == nil {
		return nil, &Error{Status: StatusOutOfMemory, Message: "cannot allocate the path list"}
	}
	defer C.free(mem)
	cpaths := unsafe.Slice((**C.char)(mem), n+1)
	for i, path := range paths {
		cpaths[i] = C.CString(path)
	}
	cpaths[n] = nil
	defer func() {
		for _, s := range cpaths[:n] {
			C.free(unsafe.Pointer(s))
		}
	}()
	var p *C.stload_model
	var cerr *C.stload_error
	status := C.stload_open_files((**C.char)(mem), C.size_t(n), copts, &p, &cerr)
	if status != C.STLOAD_OK {
		return nil, takeError(status, cerr)
	}
	return newModel(p), nil
}

// newModel wraps a handle the caller owns and arms its finalizer.
func newModel(p *C.stload_model) *Model {
	m := &Model{p: p}
	runtime.SetFinalizer(m, (*Model).Close)
	return m
}

// ptr returns the live handle, or panics if the model is closed.
func (m *Model) ptr() *C.stload_model {
	if m.p == nil {
		panic("stload: use of a closed Model")
	}
	return m.p
}

// Len returns the number of tensors.
func (m *Model) Len() int {
	n := int(C.stload_model_len(m.ptr()))
	runtime.KeepAlive(m)
	return n
}

// Names returns the tensor names in sorted (byte-wise) order.
func (m *Model) Names() []string {
	p := m.ptr()
	names := make([]string, int(C.stload_model_len(p)))
	for i := range names {
		names[i] = C.GoString(C.stload_model_name(p, C.size_t(i)))
	}
	runtime.KeepAlive(m)
	return names
}

// Info describes tensor name without reading its data. An unknown name gives an error
// matching ErrNotFound.
func (m *Model) Info(name string) (TensorInfo, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return TensorInfo{}, invalidArg("tensor name %q contains a NUL byte", name)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var info C.stload_tensor_info
	var cerr *C.stload_error
	status := C.stload_model_info(m.ptr(), cname, &info, &cerr)
	if status != C.STLOAD_OK {
		runtime.KeepAlive(m)
		return TensorInfo{}, takeError(status, cerr)
	}
	// The pointers in info are borrowed from the model: copy them before it can go.
	out := TensorInfo{
		Name:         name,
		Dtype:        Dtype(info.dtype),
		Shape:        make([]uint64, int(info.rank)),
		NBytes:       uint64(info.nbytes),
		File:         C.GoString(info.file),
		DataOffset:   uint64(info.data_offset),
		OriginalName: C.GoString(info.original_name),
	}
	if info.rank > 0 {
		copy(out.Shape, unsafe.Slice((*uint64)(unsafe.Pointer(info.shape)), int(info.rank)))
	}
	runtime.KeepAlive(m)
	return out, nil
}

// Metadata returns the __metadata__ value for key (from the first file that has it) and
// whether it exists. A key containing a NUL byte is never found.
func (m *Model) Metadata(key string) (string, bool) {
	if strings.IndexByte(key, 0) >= 0 {
		return "", false
	}
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	v := C.stload_model_metadata(m.ptr(), ckey)
	defer runtime.KeepAlive(m)
	if v == nil {
		return "", false
	}
	return C.GoString(v), true
}

// MetadataType returns the type of metadata key and whether it exists: for a GGUF key, its
// GGUF value type; ValueString for a safetensors __metadata__ value. Metadata gives every
// value as text: a string as it is, a number or boolean as JSON text, an array as a JSON array
// (a float32 as the float64 of the same value; NaN and infinities as null), which
// encoding/json and strconv read.
func (m *Model) MetadataType(key string) (GGUFValueType, bool) {
	if strings.IndexByte(key, 0) >= 0 {
		return 0, false
	}
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	t := C.stload_model_metadata_type(m.ptr(), ckey)
	runtime.KeepAlive(m)
	if t < 0 {
		return 0, false
	}
	return GGUFValueType(t), true
}

// MetadataKeys returns the __metadata__ keys of all files, sorted, without duplicates.
func (m *Model) MetadataKeys() []string {
	p := m.ptr()
	keys := make([]string, int(C.stload_model_metadata_len(p)))
	for i := range keys {
		keys[i] = C.GoString(C.stload_model_metadata_key(p, C.size_t(i)))
	}
	runtime.KeepAlive(m)
	return keys
}

// Get returns tensor name as stored, without copying: its Bytes alias the file mapping.
// An unknown name gives an error matching ErrNotFound. The caller closes the tensor.
func (m *Model) Get(name string) (*Tensor, error) {
	return m.GetAs(name, Native)
}

// GetAs returns tensor name converted to dtype. With Native or the stored dtype this is Get
// (zero-copy). Otherwise stload converts, bit-exact with numpy / ml_dtypes astype: every
// integer, boolean, float and FP8 dtype converts to F32, F16, BF16 and F64, and F32, F16 and
// BF16 also to F8_E4M3 and F8_E5M2. C64, F4 and F6 have no conversion, and pairs without
// one give an error matching ErrUnsupported.
//
// The converted tensor is cached in the model per name and dtype (unless opened with
// WithCache(false)), so a second GetAs of the same pair returns the same memory without
// converting again, until ReleaseAll or Close; Load fills that cache in advance. Its Bytes
// are native memory owned by stload, read-only like a mapping, and valid until the tensor is
// closed. The caller closes the tensor.
func (m *Model) GetAs(name string, dtype Dtype) (*Tensor, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, invalidArg("tensor name %q contains a NUL byte", name)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	// The handle and its description land straight in the new Tensor: one allocation.
	t := new(Tensor)
	status := C.stloadgo_get(m.ptr(), cname, C.stload_dtype(dtype), &t.c)
	runtime.KeepAlive(m)
	if status != C.STLOAD_OK {
		return nil, takeError(status, t.c.err)
	}
	runtime.SetFinalizer(t, (*Tensor).Close)
	return t, nil
}

// ReleaseAll drops every cached tensor and file mapping of the model; the index stays, and
// later gets map again. Tensors already handed out stay valid.
func (m *Model) ReleaseAll() {
	C.stload_model_release_all(m.ptr())
	runtime.KeepAlive(m)
}

// Close frees the model's index, caches and mappings; tensors obtained from it stay valid.
// Close is idempotent and always returns nil; it must not run concurrently with other
// methods of m.
func (m *Model) Close() error {
	if m.p == nil {
		return nil
	}
	runtime.SetFinalizer(m, nil)
	C.stload_model_free(m.p)
	m.p = nil
	return nil
}
