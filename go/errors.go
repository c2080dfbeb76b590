package stload

// #include "stload.h"
import "C"

import "fmt"

// Status is the result code of a failed stload call: one of the STLOAD_* status numbers.
type Status int

// The status numbers of the C API (stload_status). They are stable.
const (
	StatusOK              Status = C.STLOAD_OK
	StatusInvalidArgument Status = C.STLOAD_ERR_INVALID_ARGUMENT
	StatusIO              Status = C.STLOAD_ERR_IO
	StatusFormat          Status = C.STLOAD_ERR_FORMAT
	StatusNotFound        Status = C.STLOAD_ERR_NOT_FOUND
	StatusUnsupported     Status = C.STLOAD_ERR_UNSUPPORTED
	StatusDuplicate       Status = C.STLOAD_ERR_DUPLICATE
	StatusLimit           Status = C.STLOAD_ERR_LIMIT
	StatusBufferSize      Status = C.STLOAD_ERR_BUFFER_SIZE
	StatusOutOfMemory     Status = C.STLOAD_ERR_OUT_OF_MEMORY
	StatusCancelled       Status = C.STLOAD_ERR_CANCELLED
	StatusInternal        Status = C.STLOAD_ERR_INTERNAL
)

var statusNames = map[Status]string{
	StatusOK:              "ok",
	StatusInvalidArgument: "invalid argument",
	StatusIO:              "i/o error",
	StatusFormat:          "format error",
	StatusNotFound:        "not found",
	StatusUnsupported:     "unsupported",
	StatusDuplicate:       "duplicate",
	StatusLimit:           "limit exceeded",
	StatusBufferSize:      "wrong buffer size",
	StatusOutOfMemory:     "out of memory",
	StatusCancelled:       "cancelled",
	StatusInternal:        "internal error",
}

// String describes the status in a few words, e.g. "not found".
func (s Status) String() string {
	if name, ok := statusNames[s]; ok {
		return name
	}
	return fmt.Sprintf("status %d", int(s))
}

// Error is a failure reported by stload: a status and a message that names the file, the
// tensor and the rule broken. Compare kinds with errors.Is and the Err* sentinels:
//
//	if errors.Is(err, stload.ErrNotFound) { ... }
type Error struct {
	// Status is the kind of failure.
	Status Status
	// Message is the library's explanation; empty in the sentinels.
	Message string
}

// Error formats the error as "stload: <message>" (or the status, for a sentinel).
func (e *Error) Error() string {
	if e.Message == "" {
		return "stload: " + e.Status.String()
	}
	return "stload: " + e.Message
}

// Is reports whether target is an *Error with the same status and either no message (a
// sentinel such as ErrNotFound) or the same message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status && (t.Message == "" || t.Message == e.Message)
}

// Sentinels for errors.Is, one per failure status.
var (
	// ErrInvalidArgument: a bad argument (e.g. a name containing NUL, a zero limit).
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument}
	// ErrIO: the operating system refused a file operation, or a file changed after open.
	ErrIO = &Error{Status: StatusIO}
	// ErrFormat: a file breaks the safetensors format (or its index.json is wrong).
	ErrFormat = &Error{Status: StatusFormat}
	// ErrNotFound: no tensor, key or dtype of that name.
	ErrNotFound = &Error{Status: StatusNotFound}
	// ErrUnsupported: a request stload does not implement, e.g. a conversion.
	ErrUnsupported = &Error{Status: StatusUnsupported}
	// ErrDuplicate: two tensors claim the same name.
	ErrDuplicate = &Error{Status: StatusDuplicate}
	// ErrLimit: a configured limit was reached (e.g. WithMaxHeaderSize).
	ErrLimit = &Error{Status: StatusLimit}
	// ErrBufferSize: a caller's buffer has the wrong size.
	ErrBufferSize = &Error{Status: StatusBufferSize}
	// ErrOutOfMemory: memory could not be allocated.
	ErrOutOfMemory = &Error{Status: StatusOutOfMemory}
	// ErrCancelled: a progress callback asked to stop.
	ErrCancelled = &Error{Status: StatusCancelled}
	// ErrInternal: a bug in stload (a caught panic).
	ErrInternal = &Error{Status: StatusInternal}
)

// takeError turns a failed call's status (cgo types enum stload_status as uint32) and error
// object into an *Error, and frees the object. A NULL object (stload never leaves one on
// failure when asked for it) still yields the status.
func takeError(status uint32, cerr *C.stload_error) error {
	e := &Error{Status: Status(status)}
	if cerr != nil {
		e.Message = C.GoString(C.stload_error_message(cerr))
		C.stload_error_free(cerr)
	}
	return e
}

// invalidArg builds an ErrInvalidArgument for a check done on the Go side.
func invalidArg(format string, args ...interface{}) error {
	return &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf(format, args...)}
}
