//go:build stload_mlx && !stload_shared && !stload_pkgconfig

package stload

// The static library built with --features mlx, in its own target directory so that it never
// replaces the plain one (cargo build --release --features mlx --target-dir target/mlx). It
// needs libmlx and the C++ runtime on the link line: point the linker at MLX's lib directory,
// e.g. for the Python wheel
//
//	mlx_lib="$(python -c 'import mlx; print(list(mlx.__path__)[0])')/lib"
//	CGO_LDFLAGS="-L$mlx_lib -Wl,-rpath,$mlx_lib" go test -tags stload_mlx ./...

// #cgo LDFLAGS: ${SRCDIR}/../target/mlx/release/libstload.a -lmlx -lstdc++ -ldl -lpthread -lm -lrt -lutil -lgcc_s
import "C"
