//go:build !stload_shared && !stload_pkgconfig && !stload_mlx

package stload

// The static library carries all of stload; the system libraries are what Rust's standard
// library needs (cargo rustc -- --print native-static-libs).

// #cgo LDFLAGS: ${SRCDIR}/../target/release/libstload.a -ldl -lpthread -lm -lrt -lutil -lgcc_s
import "C"
