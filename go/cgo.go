package stload

// The include path is shared by every file of the package; the link flags are in
// link_static.go (default) and link_shared.go (-tags stload_shared).

// #cgo CFLAGS: -I${SRCDIR}/../include
// #include "stload.h"
import "C"

// Version reports the version of the linked stload library ("MAJOR.MINOR.PATCH").
func Version() string {
	return C.GoString(C.stload_version())
}
