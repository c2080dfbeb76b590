//go:build stload_pkgconfig

package stload

// Links the installed library (scripts/install.sh) found through pkg-config, header included:
//
//	PKG_CONFIG_PATH=<prefix>/lib/pkgconfig go build -tags stload_pkgconfig ./...
//
// With -tags 'stload_mlx stload_pkgconfig' the installed library must be an MLX build
// (scripts/install.sh --mlx): its libstload.so names libmlx and finds it through its own run
// path. At run time the loader must find libstload.so.0 (install prefix in its path).

// #cgo pkg-config: stload
import "C"
