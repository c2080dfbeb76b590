package stload

// #include <stdlib.h>
// #include "stload.h"
import "C"

import (
	"strings"
	"time"
	"unsafe"
)

// WithMaxTensors sets the most tensors a model may list (default 10,000,000); more makes Open
// fail with ErrLimit.
func WithMaxTensors(count uint64) Option {
	return func(c *config) {
		c.more = append(c.more, func(p *C.stload_options, cerr **C.stload_error) (uint32, error) {
			return C.stload_options_set_max_tensors(p, C.size_t(count), cerr), nil
		})
	}
}

// WithMaxLoadBytes sets the most bytes Load may materialise as new memory (zero-copy tensors
// do not count; default unlimited); more is ErrLimit before anything is allocated.
func WithMaxLoadBytes(bytes uint64) Option {
	return func(c *config) {
		c.more = append(c.more, func(p *C.stload_options, cerr **C.stload_error) (uint32, error) {
			return C.stload_options_set_max_load_bytes(p, C.uint64_t(bytes), cerr), nil
		})
	}
}

// WithCheckInterval sets how often, at most, a file is re-checked (size, inode, modification
// time) before data is served from it; 0 checks on every access (default 100 ms). A file that
// changed since open gives ErrIO. Negative durations are invalid.
func WithCheckInterval(d time.Duration) Option {
	return func(c *config) {
		c.more = append(c.more, func(p *C.stload_options, cerr **C.stload_error) (uint32, error) {
			if d < 0 {
				return C.STLOAD_OK, invalidArg("check interval %v is negative", d)
			}
			return C.stload_options_set_check_interval_ms(p, C.uint64_t(d/time.Millisecond), cerr), nil
		})
	}
}

// SplitPart is one part of a split tensor: its name and its number of rows along axis 0.
type SplitPart struct {
	Name string
	Rows uint64
}

// WithSplit replaces tensor name (after renaming) by consecutive row ranges along axis 0, one
// per part, whose rows must add up to the first dimension (checked at open). Zero-copy.
func WithSplit(name string, parts ...SplitPart) Option {
	parts = append([]SplitPart(nil), parts...)
	return func(c *config) {
		c.more = append(c.more, func(p *C.stload_options, cerr **C.stload_error) (uint32, error) {
			names := make([]string, len(parts))
			for i, part := range parts {
				names[i] = part.Name
			}
			cname, cnames, free, err := cStrings(name, names)
			if err != nil {
				return C.STLOAD_OK, err
			}
			defer free()
			var rows *C.uint64_t
			if len(parts) > 0 {
				mem := (*C.uint64_t)(C.malloc(C.size_t(len(parts)) * 8))
				defer C.free(unsafe.Pointer(mem))
				for i, r := range parts {
					unsafe.Slice(mem, len(parts))[i] = C.uint64_t(r.Rows)
				}
				rows = mem
			}
			return C.stload_options_add_split(p, cname, C.size_t(len(parts)), cnames, rows, cerr), nil
		})
	}
}

// WithStack replaces the equal-shaped tensors names (after renaming) by one tensor into of
// shape [len(names), ...], in the given order (one copy when read), as ollama stacks experts.
// Checked at open.
func WithStack(into string, names ...string) Option {
	names = append([]string(nil), names...)
	return func(c *config) {
		c.more = append(c.more, func(p *C.stload_options, cerr **C.stload_error) (uint32, error) {
			cinto, cnames, free, err := cStrings(into, names)
			if err != nil {
				return C.STLOAD_OK, err
			}
			defer free()
			return C.stload_options_add_stack(p, C.size_t(len(names)), cnames, cinto, cerr), nil
		})
	}
}

// cStrings copies one string and a list of strings into C memory; free releases all of it.
// C receives no Go pointer.
func cStrings(one string, list []string) (*C.char, **C.char, func(), error) {
	for _, s := range append([]string{one}, list...) {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, nil, nil, invalidArg("name %q contains a NUL byte", s)
		}
	}
	cone := C.CString(one)
	var array **C.char
	var items []*C.char
	if len(list) > 0 {
		array = (**C.char)(C.malloc(C.size_t(len(list)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
		items = unsafe.Slice(array, len(list))
		for i, s := range list {
			items[i] = C.CString(s)
		}
	}
	free := func() {
		C.free(unsafe.Pointer(cone))
		for _, s := range items {
			C.free(unsafe.Pointer(s))
		}
		if array != nil {
			C.free(unsafe.Pointer(array))
		}
	}
	return cone, array, free, nil
}

// WithMaxJSONSize sets the largest config.json, model.safetensors.index.json or other JSON or
// text file beside the weights read (by Open, or by a GGUF export: tokenizer_config.json,
// generation_config.json, a chat template, ...), in bytes (default 16 MiB); tokenizer.json and
// tokenizer.model may have 256 MiB, or this when larger. A larger file fails with ErrLimit.
// 0 is invalid.
func WithMaxJSONSize(bytes uint64) Option {
	return func(c *config) {
		c.more = append(c.more, func(p *C.stload_options, cerr **C.stload_error) (uint32, error) {
			return C.stload_options_set_max_json_size(p, C.uint64_t(bytes), cerr), nil
		})
	}
}

// WithMaxViewExpansion sets how many bytes a PyTorch view may have per byte of its storage
// (default 64); a stride-0 view expanding further makes Open fail with ErrLimit. 0 is invalid.
func WithMaxViewExpansion(factor uint64) Option {
	return func(c *config) {
		c.more = append(c.more, func(p *C.stload_options, cerr **C.stload_error) (uint32, error) {
			return C.stload_options_set_max_view_expansion(p, C.uint64_t(factor), cerr), nil
		})
	}
}

// WithRemote sets a setting for models opened from URLs (s3://bucket/prefix/, gs://, az://,
// http(s)://), on top of what each store reads from the environment (AWS_ACCESS_KEY_ID,
// AWS_ENDPOINT_URL, AWS_REGION, GOOGLE_*, AZURE_*, ...): stload's "concurrency",
// "chunk_size", "max_retries", "retry_timeout_ms", "init_backoff_ms", "cache_dir" (a directory
// of complete local copies of the weight files, read by later opens; default $STLOAD_CACHE_DIR,
// "" for none), or a configuration key of the object_store crate ("aws_endpoint", "allow_http",
// ...). An unknown key or a bad value makes Open fail with ErrInvalidArgument naming it.
func WithRemote(key, value string) Option {
	return func(c *config) {
		c.more = append(c.more, func(p *C.stload_options, cerr **C.stload_error) (uint32, error) {
			ckey := C.CString(key)
			defer C.free(unsafe.Pointer(ckey))
			cvalue := C.CString(value)
			defer C.free(unsafe.Pointer(cvalue))
			return C.stload_options_set_remote(p, ckey, cvalue, cerr), nil
		})
	}
}

// WithTokenizerPre sets the tokenizer.ggml.pre that WriteGGUF and WriteGGUFSplit write: a
// llama.cpp pre-tokenizer type such as "llama-bpe", "qwen2" or "gpt-2", in place of the type
// derived from tokenizer.json's pre-tokenizer (one that no llama.cpp type matches otherwise makes
// the write fail with ErrUnsupported, describing it). A name not of llama.cpp's form (lower-case
// letters, digits, '.', '_', '-') makes Open fail with ErrInvalidArgument.
func WithTokenizerPre(name string) Option {
	return stringOption("tokenizer pre-tokenizer type", name, func(p *C.stload_options, s *C.char, e **C.stload_error) uint32 {
		return uint32(C.stload_options_set_tokenizer_pre(p, s, e))
	})
}

// stringOption is an Option calling the C setter set with s (refused when it holds a NUL byte,
// what naming it in the error).
func stringOption(what, s string, set func(*C.stload_options, *C.char, **C.stload_error) uint32) Option {
	return func(c *config) {
		c.more = append(c.more, func(p *C.stload_options, cerr **C.stload_error) (uint32, error) {
			if strings.IndexByte(s, 0) >= 0 {
				return C.STLOAD_OK, invalidArg("%s %q contains a NUL byte", what, s)
			}
			cs := C.CString(s)
			defer C.free(unsafe.Pointer(cs))
			return set(p, cs, cerr), nil
		})
	}
}

// WithOutputTensorType sets the type of output.weight (and of a tied token embedding) that
// WriteGGUF and WriteGGUFSplit write with a quantised outtype, by ggml's name, any case ("q8_0",
// "q6_k", "f16", ...), as llama-quantize's --output-tensor-type. An unknown name makes Open fail
// with ErrInvalidArgument naming the option and listing the known types. A float outtype with
// any of these overrides (WithOutputTensorType, WithTokenEmbeddingType, WithTensorType,
// WithPure) makes the write fail with ErrInvalidArgument.
func WithOutputTensorType(name string) Option {
	return stringOption("output tensor type", name, func(p *C.stload_options, s *C.char, e **C.stload_error) uint32 {
		return uint32(C.stload_options_set_output_tensor_type(p, s, e))
	})
}

// WithTokenEmbeddingType sets the type of token_embd.weight in quantised GGUF output, by ggml's
// name, as llama-quantize's --token-embedding-type; otherwise as WithOutputTensorType.
func WithTokenEmbeddingType(name string) Option {
	return stringOption("token embedding type", name, func(p *C.stload_options, s *C.char, e **C.stload_error) uint32 {
		return uint32(C.stload_options_set_token_embedding_type(p, s, e))
	})
}

// WithTensorType adds a "PATTERN=TYPE" override of quantised GGUF output, as llama-quantize's
// --tensor-type: tensors whose name the regular expression PATTERN matches (anywhere) take
// TYPE; the first given that matches a tensor wins. A pair without '=', an empty side, a bad
// expression or an unknown type makes Open fail with ErrInvalidArgument naming the value; a
// pattern that matches no tensor makes the write fail.
func WithTensorType(patternType string) Option {
	return stringOption("tensor type", patternType, func(p *C.stload_options, s *C.char, e **C.stload_error) uint32 {
		return uint32(C.stload_options_add_tensor_type(p, s, e))
	})
}

// WithPure makes quantised GGUF output give every quantised tensor the file type's main type,
// with no mix of types by layer, as llama-quantize's --pure.
func WithPure(pure bool) Option {
	return func(c *config) {
		c.more = append(c.more, func(p *C.stload_options, cerr **C.stload_error) (uint32, error) {
			return C.stload_options_set_pure(p, C.bool(pure), cerr), nil
		})
	}
}
