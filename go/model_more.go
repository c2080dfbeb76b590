package stload

// This file calls a function defined in progress_more.c, so its preamble only declares.

// #include <stdint.h>
// #include <stdlib.h>
// #include "shim.h"
//
// // stload_model_prefetch with the progress trampoline; handle 0 means no callback.
// enum stload_status stloadgo_prefetch(const stload_model *model, const char *const *names,
//                                      size_t n, uintptr_t handle, stload_error **err);
//
// // stload_model_get_slice into out->handle, then fills the other fields.
// static inline enum stload_status stloadgo_get_slice(const stload_model *m, const char *name,
//                                                     size_t axis, uint64_t start,
//                                                     uint64_t stop, stload_dtype dtype,
//                                                     stloadgo_tensor *out) {
//   enum stload_status s = stload_model_get_slice(m, name, axis, start, stop, dtype,
//                                                 &out->handle, &out->err);
//   if (s == STLOAD_OK) {
//     out->data = stload_tensor_data(out->handle);
//     out->nbytes = stload_tensor_nbytes(out->handle);
//     out->dtype = stload_tensor_dtype(out->handle);
//     out->rank = stload_tensor_rank(out->handle);
//     out->shape = stload_tensor_shape(out->handle);
//   }
//   return s;
// }
import "C"

import (
	"runtime"
	"sort"
	"strings"
	"unsafe"
)

// GetSlice returns indices [start, stop) along axis of tensor name (a tensor-parallel shard),
// as dtype (Native: as stored). Along axis 0 of a tensor in its stored dtype this is a
// zero-copy view; other axes give a strided copy. An out-of-range slice matches
// ErrInvalidArgument. The caller closes the tensor.
func (m *Model) GetSlice(name string, axis int, start, stop uint64, dtype Dtype) (*Tensor, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, invalidArg("tensor name %q contains a NUL byte", name)
	}
	if axis < 0 {
		return nil, invalidArg("axis %d is negative", axis)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	t := new(Tensor)
	status := C.stloadgo_get_slice(m.ptr(), cname, C.size_t(axis), C.uint64_t(start),
		C.uint64_t(stop), C.stload_dtype(dtype), &t.c)
	runtime.KeepAlive(m)
	if status != C.STLOAD_OK {
		return nil, takeError(status, t.c.err)
	}
	runtime.SetFinalizer(t, (*Tensor).Close)
	return t, nil
}

// Prefetch brings the data of the named tensors (every tensor when names is nil) into memory
// ahead of use: read-ahead is requested and all cores touch the pages (in read mode, parallel
// reads fill the page cache). progress, if not nil, is called on the calling goroutine with
// bytes done and total; returning false stops with an error matching ErrCancelled. A panic in
// progress is raised again by Prefetch once stload has returned.
func (m *Model) Prefetch(names []string, progress func(done, total int) bool) error {
	p := m.ptr()
	var cnames **C.char
	if names != nil {
		for _, n := range names {
			if strings.IndexByte(n, 0) >= 0 {
				return invalidArg("tensor name %q contains a NUL byte", n)
			}
		}
		// A one-element array for an empty list: C needs a valid pointer with n = 0.
		mem := C.malloc(C.size_t(len(names)+1) * C.size_t(unsafe.Sizeof((*C.char)(nil))))
		defer C.free(mem)
		items := unsafe.Slice((**C.char)(mem), len(names)+1)
		for i, n := range names {
			items[i] = C.CString(n)
		}
		items[len(names)] = nil
		defer func() {
			for _, s := range items[:len(names)] {
				C.free(unsafe.Pointer(s))
			}
		}()
		cnames = (**C.char)(mem)
	}
	var counted func(done, total int, _ string) bool
	if progress != nil {
		counted = func(done, total int, _ string) bool { return progress(done, total) }
	}
	state, handle, release := newLoadState(counted)
	defer release()
	var cerr *C.stload_error
	status := C.stloadgo_prefetch(p, cnames, C.size_t(len(names)), handle, &cerr)
	runtime.KeepAlive(m)
	return state.finish(status, cerr)
}

// Files returns the paths of the files that hold the model's tensors, sorted, without
// duplicates.
func (m *Model) Files() []string {
	seen := map[string]bool{}
	var files []string
	for _, name := range m.Names() {
		info, err := m.Info(name)
		if err == nil && !seen[info.File] {
			seen[info.File] = true
			files = append(files, info.File)
		}
	}
	sort.Strings(files)
	return files
}

// MetadataAll returns every __metadata__ key and value of the model's files (for a key in
// several files, the first file's value, as Metadata gives it).
func (m *Model) MetadataAll() map[string]string {
	all := map[string]string{}
	for _, key := range m.MetadataKeys() {
		if v, ok := m.Metadata(key); ok {
			all[key] = v
		}
	}
	return all
}
