// Package stload loads safetensors model weights through the stload C library.
//
// Open indexes a model directory (or OpenFiles an explicit list of files) by reading headers
// only; Get returns a tensor whose Bytes alias the read-only file mapping, without a copy.
//
// # Lifetimes
//
// A *Model and a *Tensor each own one native handle. Close releases it; both Close methods
// are idempotent. A finalizer frees a handle that was never closed, but only as a safety
// net: close what you open. Every other method panics once its receiver is closed.
//
// A Tensor stays valid after its Model is closed or its caches are released (ReleaseAll):
// it holds its own reference to the mapping. The slice returned by (*Tensor).Bytes is not
// Go memory: it is valid only until that Tensor is closed or becomes unreachable, so keep
// the Tensor (and call runtime.KeepAlive on it, or Close it) after the last use of the slice.
//
// # Conversion
//
// GetAs converts to another dtype (bit-exact with numpy / ml_dtypes astype) and caches the
// result in the model per name and dtype; Load converts every float tensor in advance, with
// an optional progress callback. CopyTo and Float32s convert into Go memory, and Convert
// works on plain byte slices. C64, F4 and F6 have no conversion (ErrUnsupported).
//
// # Concurrency
//
// A Model and a Tensor may be used from many goroutines at once, except that Close must not
// run concurrently with other methods on the same value.
//
// # Loader API of ollama's image generator
//
// ModelWeights is the API of ollama's imagegen safetensors loader by its names
// (LoadModelWeights, Load, Get, GetTensor, ListTensors, ...), a thin layer over Model. It
// hands out WeightArray values: host Tensors by default, MLX arrays with the stload_mlx tag.
//
// # Linking
//
// By default the package links the static library target/release/libstload.a of the
// repository (build it with cargo build --release). Build with -tags stload_shared to link
// target/release/libstload.so instead, or with -tags stload_pkgconfig to take the header and
// library of an installed stload from pkg-config; README.md lists every build tag.
//
// # MLX
//
// With the build tag stload_mlx the package links the library built with the mlx feature
// into its own target directory (cargo build --release --features mlx --target-dir
// target/mlx), or an installed MLX build with stload_pkgconfig, and adds MLX arrays:
// Model.GetMLX, Model.LoadMLX, MLXArray (MLXC hands a host that uses mlx-c its own
// mlx_array). HasMLX tells which build this is.
package stload
