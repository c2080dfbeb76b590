// bridge.cc: C-linkage functions over MLX's C++ API for stload (see bridge.h).
// Every function catches every exception: none may unwind into Rust.

#include "bridge.h"

#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>

#include "mlx/mlx.h"

namespace mx = mlx::core;

namespace {

// Writes `text` into the caller's message buffer, truncated and NUL-terminated.
void set_message(char *msg, size_t msg_len, const char *text) {
  if (msg == nullptr || msg_len == 0) {
    return;
  }
  size_t n = std::strlen(text);
  if (n >= msg_len) {
    n = msg_len - 1;
  }
  std::memcpy(msg, text, n);
  msg[n] = '\0';
}

// Runs `f`, mapping exceptions to a status and a message.
template <typename F>
int run(char *msg, size_t msg_len, F &&f) {
  try {
    f();
    return STLOAD_MLX_BRIDGE_OK;
  } catch (const std::bad_alloc &) {
    set_message(msg, msg_len, "out of memory");
    return STLOAD_MLX_BRIDGE_NO_MEMORY;
  } catch (const std::invalid_argument &e) {
    set_message(msg, msg_len, e.what());
    return STLOAD_MLX_BRIDGE_INVALID;
  } catch (const std::exception &e) {
    set_message(msg, msg_len, e.what());
    return STLOAD_MLX_BRIDGE_FAILED;
  } catch (...) {
    set_message(msg, msg_len, "unknown C++ exception");
    return STLOAD_MLX_BRIDGE_FAILED;
  }
}

mx::Dtype to_mlx(int dtype) {
  switch (dtype) {
    case STLOAD_MLX_BRIDGE_BOOL: return mx::bool_;
    case STLOAD_MLX_BRIDGE_U8: return mx::uint8;
    case STLOAD_MLX_BRIDGE_U16: return mx::uint16;
    case STLOAD_MLX_BRIDGE_U32: return mx::uint32;
    case STLOAD_MLX_BRIDGE_U64: return mx::uint64;
    case STLOAD_MLX_BRIDGE_I8: return mx::int8;
    case STLOAD_MLX_BRIDGE_I16: return mx::int16;
    case STLOAD_MLX_BRIDGE_I32: return mx::int32;
    case STLOAD_MLX_BRIDGE_I64: return mx::int64;
    case STLOAD_MLX_BRIDGE_F16: return mx::float16;
    case STLOAD_MLX_BRIDGE_F32: return mx::float32;
    case STLOAD_MLX_BRIDGE_F64: return mx::float64;
    case STLOAD_MLX_BRIDGE_BF16: return mx::bfloat16;
    case STLOAD_MLX_BRIDGE_C64: return mx::complex64;
    default: throw std::invalid_argument("unknown bridge dtype number");
  }
}

int from_mlx(mx::Dtype d) {
  switch (d.val()) {
    case mx::Dtype::Val::bool_: return STLOAD_MLX_BRIDGE_BOOL;
    case mx::Dtype::Val::uint8: return STLOAD_MLX_BRIDGE_U8;
    case mx::Dtype::Val::uint16: return STLOAD_MLX_BRIDGE_U16;
    case mx::Dtype::Val::uint32: return STLOAD_MLX_BRIDGE_U32;
    case mx::Dtype::Val::uint64: return STLOAD_MLX_BRIDGE_U64;
    case mx::Dtype::Val::int8: return STLOAD_MLX_BRIDGE_I8;
    case mx::Dtype::Val::int16: return STLOAD_MLX_BRIDGE_I16;
    case mx::Dtype::Val::int32: return STLOAD_MLX_BRIDGE_I32;
    case mx::Dtype::Val::int64: return STLOAD_MLX_BRIDGE_I64;
    case mx::Dtype::Val::float16: return STLOAD_MLX_BRIDGE_F16;
    case mx::Dtype::Val::float32: return STLOAD_MLX_BRIDGE_F32;
    case mx::Dtype::Val::float64: return STLOAD_MLX_BRIDGE_F64;
    case mx::Dtype::Val::bfloat16: return STLOAD_MLX_BRIDGE_BF16;
    case mx::Dtype::Val::complex64: return STLOAD_MLX_BRIDGE_C64;
  }
  return -1;
}

mx::Shape to_shape(const int32_t *shape, size_t rank) {
  if (rank > 0 && shape == nullptr) {
    throw std::invalid_argument("shape is NULL");
  }
  mx::Shape s;
  for (size_t i = 0; i < rank; i++) {
    if (shape[i] < 0) {
      throw std::invalid_argument("negative dimension");
    }
    s.push_back(shape[i]);
  }
  return s;
}

const mx::array &as_array(const void *arr) {
  return *static_cast<const mx::array *>(arr);
}

// The caller's release callback, run at most once whoever gets there first: MLX's deleter, or
// the wrap function when construction fails before MLX took the bytes.
struct Release {
  stload_mlx_bridge_release_fn fn;
  void *ctx;
  std::atomic<bool> done{false};
  void operator()() {
    if (!done.exchange(true)) {
      fn(ctx);
    }
  }
};

}  // namespace

extern "C" {

int stload_mlx_bridge_wrap(void *data, const int32_t *shape, size_t rank, int dtype,
                           stload_mlx_bridge_release_fn release, void *ctx, void **out,
                           int *wrapped, char *msg, size_t msg_len) {
  std::shared_ptr<Release> guard;
  int status = run(msg, msg_len, [&] {
    if (release == nullptr || out == nullptr || wrapped == nullptr) {
      throw std::invalid_argument("NULL argument");
    }
    guard = std::make_shared<Release>();
    guard->fn = release;
    guard->ctx = ctx;
    mx::Dtype type = to_mlx(dtype);
    mx::Shape s = to_shape(shape, rank);
    std::shared_ptr<Release> held = guard;
    auto arr = std::make_unique<mx::array>(data, std::move(s), type,
                                           [held](void *) { (*held)(); });
    *wrapped = arr->data<void>() == data ? 1 : 0;
    *out = arr.release();
  });
  if (status != STLOAD_MLX_BRIDGE_OK) {
    if (guard) {
      (*guard)();
    } else if (release != nullptr) {
      release(ctx);
    }
  }
  return status;
}

int stload_mlx_bridge_alloc(const int32_t *shape, size_t rank, int dtype, void **out,
                            void **data, char *msg, size_t msg_len) {
  return run(msg, msg_len, [&] {
    if (out == nullptr || data == nullptr) {
      throw std::invalid_argument("NULL argument");
    }
    mx::Dtype type = to_mlx(dtype);
    mx::Shape s = to_shape(shape, rank);
    size_t elements = 1;
    for (auto d : s) {
      elements *= static_cast<size_t>(d);
    }
    auto arr = std::make_unique<mx::array>(mx::allocator::malloc(elements * mx::size_of(type)),
                                           std::move(s), type);
    *data = arr->data<void>();
    *out = arr.release();
  });
}

int stload_mlx_bridge_astype(const void *arr, int dtype, void **out, char *msg, size_t msg_len) {
  return run(msg, msg_len, [&] {
    if (arr == nullptr || out == nullptr) {
      throw std::invalid_argument("NULL argument");
    }
    auto result = std::make_unique<mx::array>(mx::astype(as_array(arr), to_mlx(dtype)));
    result->eval();
    *out = result.release();
  });
}

int stload_mlx_bridge_eval(void *arr, char *msg, size_t msg_len) {
  return run(msg, msg_len, [&] {
    if (arr == nullptr) {
      throw std::invalid_argument("NULL argument");
    }
    static_cast<mx::array *>(arr)->eval();
  });
}

void *stload_mlx_bridge_clone(const void *arr) {
  try {
    return arr == nullptr ? nullptr : new mx::array(as_array(arr));
  } catch (...) {
    return nullptr;
  }
}

void stload_mlx_bridge_free(void *arr) {
  try {
    delete static_cast<mx::array *>(arr);
  } catch (...) {
    // Destructors do not throw; nothing can be done if one did.
  }
}

int stload_mlx_bridge_dtype(const void *arr) {
  return from_mlx(as_array(arr).dtype());
}

size_t stload_mlx_bridge_ndim(const void *arr) {
  return as_array(arr).ndim();
}

int32_t stload_mlx_bridge_dim(const void *arr, size_t i) {
  const auto &shape = as_array(arr).shape();
  return i < shape.size() ? shape[i] : 0;
}

size_t stload_mlx_bridge_nbytes(const void *arr) {
  return as_array(arr).nbytes();
}

const void *stload_mlx_bridge_data(const void *arr) {
  try {
    auto &a = const_cast<mx::array &>(as_array(arr));
    if (a.status() == mx::array::Status::unscheduled || !a.flags().row_contiguous) {
      return nullptr;
    }
    a.wait();
    return a.data<void>();
  } catch (...) {
    return nullptr;
  }
}

const char *stload_mlx_bridge_version(void) {
  try {
    return mx::version();
  } catch (...) {
    return "unknown";
  }
}

}  // extern "C"
