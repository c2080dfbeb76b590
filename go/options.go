package stload

// #include <stdlib.h>
// #include "stload.h"
import "C"

import (
	"strings"
	"unsafe"
)

// Option changes how Open and OpenFiles read a model.
type Option func(*config)

// config collects the options; nil fields keep the library's defaults.
type config struct {
	maxHeaderSize *uint64
	threads       *int
	cache         *bool
	rename        []string
	arch          *string
	readMode      *bool
	prefetch      *bool
	// more holds the options of options_more.go, applied in order after the ones above.
	more []func(p *C.stload_options, cerr **C.stload_error) (uint32, error)
}

// WithMaxHeaderSize sets the largest accepted header, in JSON bytes per file (default
// 100 MB; a remote GGUF file's header bytes too). A file with a larger header fails to open
// with ErrLimit; 0 is invalid.
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

// WithRename renames every tensor at open with pairs old, new, old, new, ... and exactly the
// semantics of Go's strings.NewReplacer (applied after an architecture's own renames). Two
// tensors that end up with one name make Open fail with ErrDuplicate.
func WithRename(oldnew ...string) Option {
	return func(c *config) { c.rename = append([]string(nil), oldnew...) }
}

// WithArch applies a built-in architecture ("llama", "mixtral", "phi3", "qwen2", "qwen3",
// "qwen3moe", "gemma", "gemma2", "gemma3", "olmo2", "granite", "stablelm", "command-r", "llama4",
// "gpt-oss", "deepseek2", "bert", or "auto" to pick it from config.json "architectures"): ollama's
// renames and its transforms (llama Q/K repack, phi3 fused splits, mixtral expert stacking,
// deepseek2's kv_b split, bert drops position ids and the pooler).
// It reads config.json beside the weights; unknown names fail with ErrUnsupported.
func WithArch(name string) Option {
	return func(c *config) { c.arch = &name }
}

// WithReadMode reads data with positioned reads instead of mapping files: a file truncated
// after open gives ErrIO instead of a crash, and network file systems stream better; every
// Get copies.
func WithReadMode(enabled bool) Option {
	return func(c *config) { c.readMode = &enabled }
}

// WithPrefetch starts bringing every file's data into memory on a background thread at open.
func WithPrefetch(enabled bool) Option {
	return func(c *config) { c.prefetch = &enabled }
}

// setRename passes the rename pairs; the C strings live only for the call.
func setRename(p *C.stload_options, oldnew []string, cerr **C.stload_error) (uint32, error) {
	if len(oldnew)%2 != 0 {
		return C.STLOAD_OK, invalidArg("rename needs pairs: %d strings given", len(oldnew))
	}
	if len(oldnew) == 0 {
		return C.stload_options_set_rename(p, nil, 0, cerr), nil
	}
	ptrSize := C.size_t(unsafe.Sizeof((*C.char)(nil)))
	array := unsafe.Slice((**C.char)(C.malloc(ptrSize*C.size_t(len(oldnew)))), len(oldnew))
	defer C.free(unsafe.Pointer(&array[0]))
	for i, s := range oldnew {
		if strings.IndexByte(s, 0) >= 0 {
			for _, done := range array[:i] {
				C.free(unsafe.Pointer(done))
			}
			return C.STLOAD_OK, invalidArg("rename string %q contains a NUL byte", s)
		}
		array[i] = C.CString(s)
	}
	defer func() {
		for _, cs := range array {
			C.free(unsafe.Pointer(cs))
		}
	}()
	return C.stload_options_set_rename(p, &array[0], C.size_t(len(oldnew)/2), cerr), nil
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
	if status == C.STLOAD_OK && c.rename != nil {
		var err error
		if status, err = setRename(p, c.rename, &cerr); err != nil {
			C.stload_options_free(p)
			return nil, err
		}
	}
	if status == C.STLOAD_OK && c.arch != nil {
		if strings.IndexByte(*c.arch, 0) >= 0 {
			C.stload_options_free(p)
			return nil, invalidArg("architecture %q contains a NUL byte", *c.arch)
		}
		carch := C.CString(*c.arch)
		status = C.stload_options_set_arch(p, carch, &cerr)
		C.free(unsafe.Pointer(carch))
	}
	if status == C.STLOAD_OK && c.readMode != nil {
		status = C.stload_options_set_read_mode(p, C.bool(*c.readMode), &cerr)
	}
	if status == C.STLOAD_OK && c.prefetch != nil {
		status = C.stload_options_set_prefetch(p, C.bool(*c.prefetch), &cerr)
	}
	for _, apply := range c.more {
		if status != C.STLOAD_OK {
			break
		}
		var err error
		if status, err = apply(p, &cerr); err != nil {
			C.stload_options_free(p)
			return nil, err
		}
	}
	if status != C.STLOAD_OK {
		C.stload_options_free(p)
		return nil, takeError(status, cerr)
	}
	return p, nil
}
