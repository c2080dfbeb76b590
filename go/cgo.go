package stload

// The include path is in include_tree.go (the repository's include/) or comes from pkg-config
// (link_pkgconfig.go, -tags stload_pkgconfig); the link flags are in the link_*.go files, one
// per build: see README.md, "Build tags".

// #include "stload.h"
import "C"

// Version reports the version of the linked stload library ("MAJOR.MINOR.PATCH").
func Version() string {
	return C.GoString(C.stload_version())
}
