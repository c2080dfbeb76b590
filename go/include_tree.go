//go:build !stload_pkgconfig

package stload

// The header of the repository; with -tags stload_pkgconfig the installed one is used instead
// (its directory comes from pkg-config), so an installed MLX build's header, which defines
// STLOAD_FEATURE_MLX itself, is the one compiled against.

// #cgo CFLAGS: -I${SRCDIR}/../include
import "C"
