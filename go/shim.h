/*
 * Small C helpers for the Go package: they bundle several stload calls into one, so a Go call
 * crosses into C once and passes one pointer. Static inline: each cgo file that includes this
 * header gets its own copy.
 */
#ifndef STLOAD_GO_SHIM_H
#define STLOAD_GO_SHIM_H

#include "stload.h"

/*
 * A tensor handle with everything Go reads of it, fetched once when the handle is made.
 * Every pointer is C memory owned by `handle` (valid until stload_tensor_free), except `err`,
 * which the caller frees.
 */
typedef struct stloadgo_tensor {
  stload_tensor *handle;
  const void *data;
  size_t nbytes;
  stload_dtype dtype;
  size_t rank;
  const uint64_t *shape;
  stload_error *err;
} stloadgo_tensor;

/* stload_model_get into out->handle, then fills the other fields (out->err on failure). */
static inline enum stload_status stloadgo_get(const stload_model *m, const char *name,
                                              stload_dtype dtype, stloadgo_tensor *out) {
  enum stload_status s = stload_model_get(m, name, dtype, &out->handle, &out->err);
  if (s == STLOAD_OK) {
    out->data = stload_tensor_data(out->handle);
    out->nbytes = stload_tensor_nbytes(out->handle);
    out->dtype = stload_tensor_dtype(out->handle);
    out->rank = stload_tensor_rank(out->handle);
    out->shape = stload_tensor_shape(out->handle);
  }
  return s;
}

#endif /* STLOAD_GO_SHIM_H */
