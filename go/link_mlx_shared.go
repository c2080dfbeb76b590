//go:build stload_mlx && stload_shared && !stload_pkgconfig

package stload

// The shared library built with --features mlx in its own target directory (cargo build
// --release --features mlx --target-dir target/mlx). It names libmlx itself and carries an
// rpath to MLX's directory, so nothing else is needed on the link line.

// #cgo LDFLAGS: -L${SRCDIR}/../target/mlx/release -lstload -Wl,-rpath,${SRCDIR}/../target/mlx/release
import "C"
