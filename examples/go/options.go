package stload

// #include <stdlib.h>
// #include "stload.h"
import "C"

// Option changes how Open and OpenFiles read a model.
type Option func(*config)

// config collects the options; nil fields keep the library's defaults.
type config struct {
	maxHeaderSize *uint64
	threads       *int
	cache         *bool
}

// WithMaxHeaderSize sets the largest accepted header, in JSON bytes per file (default
// 100 MB). A file with a larger header fails to open with ErrLimit; 0 is invalid.
func WithMaxHeaderSize(bytes uint64) Option {
	return func(c *config) { c.maxHeaderSize = &bytes }
}

// WithThreads sets how many threads convert large tensors; 0 (the default) means one per
// available core. Negative values are invalid.
func WithThreads(n int) Option {
	return func(c *config) { c.threads = &n }
}

// WithCache turns the cache of converted tensors on (the default) or off. With it off, every
// converted get converts again and the model keeps no converted memory.
func WithCache(enabled bool) Option {
	return func(c *config) { c.cache = &enabled }
}

// newOptions builds the native options for opts. It returns nil (library defaults) when no
// option is given; otherwise the caller frees the result with C.stload_options_free.
func newOptions(opts []Option) (*C.stload_options, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.threads != nil && *c.threads < 0 {
		return nil, invalidArg("thread count %d is negative", *c.threads)
	}
	p := C.stload_options_new()
	if p == nil {
		return nil, &Error{Status: StatusOutOfMemory, Message: "cannot allocate options"}
	}
	var status uint32 = C.STLOAD_OK
	var cerr *C.stload_error
	if c.maxHeaderSize != nil {
		status = C.stload_options_set_max_header_size(p, C.uint64_t(*c.maxHeaderSize), &cerr)
	}
	if status == C.STLOAD_OK && c.threads != nil {
		status = C.stload_options_set_threads(p, C.size_t(*c.threads), &cerr)
	}
	if status == C.STLOAD_OK && c.cache != nil {
		status = C.stload_options_set_cache(p, C.bool(*c.cache), &cerr)
	}
	if status != C.STLOAD_OK {
		C.stload_options_free(p)
		return nil, takeError(status, cerr)
	}
	return p, nil
}
