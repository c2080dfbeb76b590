//go:build stload_mlx

/*
 * The progress callback of (*Model).LoadMLX (build tag stload_mlx): as progress.c does for
 * Load, user_data carries a runtime/cgo.Handle, never a Go pointer.
 */
#include <stdint.h>

#include "stload.h"
#include "_cgo_export.h"

static bool stloadgo_progress_mlx(void *user_data, size_t done, size_t total,
                                  const char *name) {
  return stloadgoProgress((uintptr_t)user_data, done, total, (char *)name);
}

enum stload_status stloadgo_load_mlx(const stload_model *model, stload_dtype dtype,
                                     uintptr_t handle, stload_error **err) {
  return stload_model_load_mlx(model, dtype, handle != 0 ? stloadgo_progress_mlx : NULL,
                               (void *)handle, err);
}
