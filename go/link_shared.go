//go:build stload_shared && !stload_mlx && !stload_pkgconfig

package stload

// The shared library is found at run time through an rpath into the repository's build
// directory; move the binary elsewhere and set LD_LIBRARY_PATH or install libstload.so.

// #cgo LDFLAGS: -L${SRCDIR}/../target/release -lstload -Wl,-rpath,${SRCDIR}/../target/release
import "C"
