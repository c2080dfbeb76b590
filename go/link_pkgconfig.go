//go:build stload_pkgconfig

package stload

// Links the installed library (scripts/install.sh) found through pkg-config: build with
// PKG_CONFIG_PATH=<prefix>/lib/pkgconfig go build -tags stload_pkgconfig ./...
// At run time the loader must find libstload.so.0 (install prefix in its path).

// #cgo pkg-config: stload
import "C"
