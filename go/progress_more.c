/*
 * The progress callback of (*Model).Prefetch: as progress.c does for Load, user_data carries
 * a runtime/cgo.Handle, never a Go pointer.
 */
#include <stdint.h>

#include "stload.h"
#include "_cgo_export.h"

static bool stloadgo_progress_prefetch(void *user_data, size_t done, size_t total,
                                       const char *name) {
  return stloadgoProgress((uintptr_t)user_data, done, total, (char *)name);
}

enum stload_status stloadgo_prefetch(const stload_model *model, const char *const *names,
                                     size_t n, uintptr_t handle, stload_error **err) {
  return stload_model_prefetch(model, names, n,
                               handle != 0 ? stloadgo_progress_prefetch : NULL,
                               (void *)handle, err);
}
