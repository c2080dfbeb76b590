/*
 * The progress callback of (*Model).Load (and LoadInto, WriteGGUF, WriteGGUFSplit). stload calls a C function pointer with a void*
 * user_data; this trampoline forwards to the exported Go function stloadgoProgress. user_data
 * carries a runtime/cgo.Handle (an integer), so C never holds a Go pointer.
 */
#include <stdint.h>

#include "stload.h"
#include "_cgo_export.h"

static bool stloadgo_progress(void *user_data, size_t done, size_t total, const char *name) {
  /* The Go side only reads name (C.GoString); cgo declares the parameter without const. */
  return stloadgoProgress((uintptr_t)user_data, done, total, (char *)name);
}

enum stload_status stloadgo_load(const stload_model *model, stload_dtype dtype,
                                 uintptr_t handle, stload_error **err) {
  return stload_model_load(model, dtype, handle != 0 ? stloadgo_progress : NULL,
                           (void *)handle, err);
}

enum stload_status stloadgo_load_into(const stload_model *model, stload_dtype dtype,
                                      size_t alignment, void *buf, size_t len,
                                      stload_arena_slot *slots, uintptr_t handle,
                                      stload_error **err) {
  return stload_model_load_into(model, dtype, alignment, buf, len, slots,
                                handle != 0 ? stloadgo_progress : NULL, (void *)handle, err);
}

enum stload_status stloadgo_write_gguf(const stload_model *model, const char *path,
                                       stload_gguf_type outtype, uintptr_t handle,
                                       stload_error **err) {
  return stload_model_write_gguf(model, path, outtype, handle != 0 ? stloadgo_progress : NULL,
                                 (void *)handle, err);
}

enum stload_status stloadgo_write_gguf_split(const stload_model *model, const char *path,
                                             stload_gguf_type outtype, uint64_t max_bytes,
                                             uint64_t max_tensors, uintptr_t handle,
                                             stload_error **err) {
  return stload_model_write_gguf_split(model, path, outtype, max_bytes, max_tensors,
                                       handle != 0 ? stloadgo_progress : NULL, (void *)handle,
                                       err);
}
