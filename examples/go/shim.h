/*
 * Small C helpers for the Go package: they bundle several stload calls into one, so a Go call
 * crosses into C once. Static inline: each cgo file that includes this gets its own copy.
 */
#ifndef STLOAD_GO_SHIM_H
#define STLOAD_GO_SHIM_H

#include "stload.h"

/* Everything Go keeps about a tensor, read once when the handle is made. */
typedef struct stloadgo_view {
  const void *data;
  size_t nbytes;
  stload_dtype dtype;
  size_t rank;
  const uint64_t *shape;
} stloadgo_view;

static inline void stloadgo_describe(const stload_tensor *t, stloadgo_view *v) {
  v->data = stload_tensor_data(t);
  v->nbytes = stload_tensor_nbytes(t);
  v->dtype = stload_tensor_dtype(t);
  v->rank = stload_tensor_rank(t);
  v->shape = stload_tensor_shape(t);
}

/* stload_model_get, then stloadgo_describe on success. */
static inline enum stload_status stloadgo_get(const stload_model *m, const char *name,
                                         stload_dtype dtype, stload_tensor **t,
                                         stloadgo_view *v, stload_error **err) {
  enum stload_status s = stload_model_get(m, name, dtype, t, err);
  if (s == STLOAD_OK) {
    stloadgo_describe(*t, v);
  }
  return s;
}

#endif /* STLOAD_GO_SHIM_H */
