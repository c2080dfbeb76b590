//! The options builder handle.

use std::ffi::c_char;

use super::{guard, guard_value, stload_error, stload_status, str_arg};
use crate::error::Error;
use crate::options::Options;
use crate::rename::Replacer;

/// Settings for `stload_open_*`. Create with `stload_options_new`, free with
/// `stload_options_free`; opening copies them, so they may be freed right after.
pub struct stload_options {
    pub(crate) inner: Options,
}

/// Returns new options with defaults (100 MB header limit, all cores, converted-tensor cache on).
/// Owned by the caller: free with `stload_options_free`. NULL only if memory ran out.
#[no_mangle]
pub extern "C" fn stload_options_new() -> *mut stload_options {
    guard_value(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(stload_options {
            inner: Options::default(),
        }))
    })
}

/// Frees options. NULL is a no-op.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and",
    "  not used after this call.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_free(opts: *mut stload_options) {
    guard_value((), || {
        if !opts.is_null() {
            // SAFETY: `opts` came from stload_options_new and is freed once by contract.
            drop(unsafe { Box::from_raw(opts) });
        }
    })
}

fn with_options(
    opts: *mut stload_options,
    err: *mut *mut stload_error,
    f: impl FnOnce(&mut Options) -> Result<(), Error>,
) -> stload_status {
    guard(err, || {
        // SAFETY: `opts` is NULL or a live handle no other thread uses during the call.
        let opts = unsafe { opts.as_mut() }
            .ok_or_else(|| Error::InvalidArgument("opts is NULL".into()))?;
        f(&mut opts.inner)
    })
}

/// Sets the largest accepted header (JSON bytes per file; for a remote GGUF file, its header's
/// bytes, which have no length prefix and are fetched in growing pieces up to this bound). A
/// larger header is refused at open with `STLOAD_ERR_LIMIT`. 0 is invalid. Not thread-safe on
/// the same options.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_max_header_size(
    opts: *mut stload_options,
    bytes: u64,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| o.set_max_header_size(bytes).map(drop))
}

/// Sets the largest `config.json`, `model.safetensors.index.json` or other JSON or text file
/// beside the weights read (at open, or by a GGUF export: `tokenizer_config.json`,
/// `generation_config.json`, a chat template, ...), in bytes (16 MiB by default);
/// `tokenizer.json` and `tokenizer.model` may have 256 MiB, or this when larger. A larger file
/// is refused with `STLOAD_ERR_LIMIT`. 0 is invalid. Not thread-safe on the same options.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_max_json_size(
    opts: *mut stload_options,
    bytes: u64,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| o.set_max_json_size(bytes).map(drop))
}

/// Sets how many bytes a PyTorch view may have per byte of its storage (64 by default); a
/// stride-0 view expanding further is refused at open with `STLOAD_ERR_LIMIT`. 0 is invalid.
/// Not thread-safe on the same options.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_max_view_expansion(
    opts: *mut stload_options,
    factor: u64,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| o.set_max_view_expansion(factor).map(drop))
}

/// Sets the number of threads that convert large tensors; 0 means one per available core.
/// More than 1024 is refused with `STLOAD_ERR_INVALID_ARGUMENT`.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_threads(
    opts: *mut stload_options,
    threads: usize,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| o.set_threads(threads).map(drop))
}

/// Turns the cache of converted tensors on (default) or off. With it off, every converted get
/// converts again and the model keeps no converted memory.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_cache(
    opts: *mut stload_options,
    enabled: bool,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        o.cache_converted = enabled;
        Ok(())
    })
}

/// Reads `n` C strings from `list` as UTF-8.
///
/// # Safety
/// `list` must be NULL (only when `n` is 0) or point to `n` NUL-terminated strings.
unsafe fn strings(list: *const *const c_char, n: usize, what: &str) -> Result<Vec<String>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if list.is_null() {
        return Err(Error::InvalidArgument(format!("{what} is NULL")));
    }
    // SAFETY: `list` holds `n` string pointers per the caller's contract.
    let ptrs = unsafe { std::slice::from_raw_parts(list, n) };
    // SAFETY: each is NULL or a NUL-terminated string.
    ptrs.iter()
        .map(|&p| unsafe { str_arg(p, what) }.map(str::to_string))
        .collect()
}

/// Sets renames applied to every tensor name at open: `pairs` holds `2 * n_pairs` strings
/// `old, new, old, new, ...` with exactly the semantics of Go's `strings.NewReplacer` (left to
/// right, non-overlapping, at one position the earlier pair wins). They apply after an
/// architecture's own renames. Replaces earlier renames; `n_pairs` 0 clears them.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `pairs`: NULL or points to `2 * n_pairs` pointers, each NULL or a NUL-terminated",
    "  string.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_rename(
    opts: *mut stload_options,
    pairs: *const *const c_char,
    n_pairs: usize,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        let count = n_pairs
            .checked_mul(2)
            .ok_or_else(|| Error::InvalidArgument("n_pairs is too large".into()))?;
        // SAFETY: `pairs` holds 2 * n_pairs strings per the API contract.
        let list = unsafe { strings(pairs, count, "pairs") }?;
        o.rename = Replacer::from_flat(&list)?;
        Ok(())
    })
}

/// Selects a built-in architecture ("llama", "mixtral", "phi3", "qwen2", "qwen3", "qwen3moe",
/// "gemma", "gemma2", "gemma3", "olmo2", "granite", "stablelm", "command-r", "llama4", "gpt-oss", "deepseek2", "bert", or
/// "auto" to pick it from `config.json` `architectures[0]` at open): ollama's renames plus its transforms
/// (llama Q/K repack; phi3 fused qkv and gate_up split; mixtral experts stacked; deepseek2's kv_b split; bert drops
/// position ids and the pooler), reading `config.json` beside the weights at open. NULL clears it.
/// Unknown names: `STLOAD_ERR_UNSUPPORTED`.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `arch`: NULL or a NUL-terminated string.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_arch(
    opts: *mut stload_options,
    arch: *const c_char,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        if arch.is_null() {
            o.arch = None;
            return Ok(());
        }
        // SAFETY: non-NULL, NUL-terminated per the API contract.
        let name = unsafe { str_arg(arch, "arch") }?;
        o.set_arch(Some(name)).map(drop)
    })
}

/// Sets the `tokenizer.ggml.pre` that GGUF output (`stload_model_write_gguf`,
/// `stload_model_write_gguf_split`) writes: a llama.cpp pre-tokenizer type such as "llama-bpe",
/// "qwen2" or "gpt-2", in place of the type derived from `tokenizer.json`'s pre-tokenizer (a
/// pre-tokenizer no llama.cpp type matches is otherwise refused with
/// `STLOAD_ERR_UNSUPPORTED`, describing it). NULL clears it. A name that is not of llama.cpp's
/// form (lower-case letters, digits, '.', '_', '-') is `STLOAD_ERR_INVALID_ARGUMENT`.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `name`: NULL or a NUL-terminated string.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_tokenizer_pre(
    opts: *mut stload_options,
    name: *const c_char,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        if name.is_null() {
            o.tokenizer_pre = None;
            return Ok(());
        }
        // SAFETY: non-NULL, NUL-terminated per the API contract.
        let name = unsafe { str_arg(name, "name") }?;
        o.set_tokenizer_pre(Some(name)).map(drop)
    })
}

/// Sets the type of `output.weight` (and of a tied token embedding) in quantised GGUF output
/// (`stload_model_write_gguf`, `stload_model_write_gguf_split` with a quantised `outtype`), by
/// ggml's name, any case ("q8_0", "q6_k", "f16", ...), as llama-quantize's
/// `--output-tensor-type`. NULL clears it. An unknown name is `STLOAD_ERR_INVALID_ARGUMENT`,
/// the message naming the option and listing the known types. A float `outtype` with any of
/// these overrides set is refused by the write (`STLOAD_ERR_INVALID_ARGUMENT`).
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `name`: NULL or a NUL-terminated string.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_output_tensor_type(
    opts: *mut stload_options,
    name: *const c_char,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        // SAFETY: NULL or NUL-terminated per the API contract.
        let name = unsafe { opt_str_arg(name, "name") }?;
        o.set_output_tensor_type(name).map(drop)
    })
}

/// Sets the type of `token_embd.weight` in quantised GGUF output, by ggml's name, as
/// llama-quantize's `--token-embedding-type`; otherwise as
/// `stload_options_set_output_tensor_type`. NULL clears it.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `name`: NULL or a NUL-terminated string.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_token_embedding_type(
    opts: *mut stload_options,
    name: *const c_char,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        // SAFETY: NULL or NUL-terminated per the API contract.
        let name = unsafe { opt_str_arg(name, "name") }?;
        o.set_token_embedding_type(name).map(drop)
    })
}

/// Adds a "PATTERN=TYPE" override of quantised GGUF output, as llama-quantize's
/// `--tensor-type`: tensors whose name the regular expression PATTERN matches (anywhere) take
/// TYPE, by ggml's name; the first added that matches a tensor wins. A pair without '=', an
/// empty side, a bad expression or an unknown type is `STLOAD_ERR_INVALID_ARGUMENT` here,
/// naming the option and the value; a pattern that matches no tensor is refused by the write.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `pattern_type`: NULL or a NUL-terminated string.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_add_tensor_type(
    opts: *mut stload_options,
    pattern_type: *const c_char,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        // SAFETY: NULL or NUL-terminated per the API contract.
        let pattern_type = unsafe { str_arg(pattern_type, "pattern_type") }?;
        o.add_tensor_type(pattern_type).map(drop)
    })
}

/// Sets whether quantised GGUF output gives every quantised tensor the file type's main type,
/// with no mix of types by layer, as llama-quantize's `--pure` (false by default).
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_pure(
    opts: *mut stload_options,
    pure: bool,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        o.set_pure(pure);
        Ok(())
    })
}

/// `s` as UTF-8, or `None` when NULL (the setters where NULL clears).
///
/// # Safety
/// `s` is NULL or a NUL-terminated string.
unsafe fn opt_str_arg<'a>(s: *const c_char, what: &str) -> Result<Option<&'a str>, Error> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, NUL-terminated per the caller's contract.
    unsafe { str_arg(s, what) }.map(Some)
}

/// Adds a split: tensor `name` (after renaming) is replaced by `n_parts` consecutive row ranges
/// along axis 0, named `part_names[i]` with `part_rows[i]` rows (they must add up to the first
/// dimension). Zero-copy. Checked at open.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `name`: NULL or a NUL-terminated string.",
    "- `part_names`: NULL or points to `n_parts` pointers, each NULL or a NUL-terminated",
    "  string.",
    "- `part_rows`: NULL or points to `n_parts` readable values.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_add_split(
    opts: *mut stload_options,
    name: *const c_char,
    n_parts: usize,
    part_names: *const *const c_char,
    part_rows: *const u64,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        // SAFETY: NUL-terminated string and arrays of n_parts elements per the API contract.
        let name = unsafe { str_arg(name, "name") }?.to_string();
        // SAFETY: as above.
        let names = unsafe { strings(part_names, n_parts, "part_names") }?;
        let rows: &[u64] = if n_parts == 0 {
            &[]
        } else if part_rows.is_null() {
            return Err(Error::InvalidArgument("part_rows is NULL".into()));
        } else {
            // SAFETY: `part_rows` holds n_parts values per the API contract.
            unsafe { std::slice::from_raw_parts(part_rows, n_parts) }
        };
        let parts = names.into_iter().zip(rows.iter().copied()).collect();
        o.add_split(name, parts).map(drop)
    })
}

/// Adds a stack: the `n` equal-shaped tensors `names` (after renaming) are replaced by one
/// tensor `into` of shape `[n, ...]`, in the given order (one copy when read). Checked at open.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `names`: NULL or points to `n` pointers, each NULL or a NUL-terminated string.",
    "- `into`: NULL or a NUL-terminated string.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_add_stack(
    opts: *mut stload_options,
    n: usize,
    names: *const *const c_char,
    into: *const c_char,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        // SAFETY: an array of n strings and a NUL-terminated string per the API contract.
        let names = unsafe { strings(names, n, "names") }?;
        // SAFETY: as above.
        let into = unsafe { str_arg(into, "into") }?;
        o.add_stack(names, into).map(drop)
    })
}

/// Read mode: data is read with positioned reads (`pread`, split across threads) into memory
/// instead of mapping the files. A file truncated after open then gives `STLOAD_ERR_IO`
/// instead of SIGBUS, and network file systems stream better; every get copies.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_read_mode(
    opts: *mut stload_options,
    enabled: bool,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        o.read_mode = enabled;
        Ok(())
    })
}

/// How often, at most, a file is re-checked (size, inode, modification time) before data is
/// served from it, in milliseconds; 0 checks on every access. Default 100. A file that changed
/// since open gives `STLOAD_ERR_IO` saying so.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_check_interval_ms(
    opts: *mut stload_options,
    ms: u64,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        o.check_interval = std::time::Duration::from_millis(ms);
        Ok(())
    })
}

/// Most tensors a model may list (default 10,000,000); more is `STLOAD_ERR_LIMIT` at open.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_max_tensors(
    opts: *mut stload_options,
    count: usize,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        o.max_tensors = count;
        Ok(())
    })
}

/// Most bytes `stload_model_load` may materialise as new memory (zero-copy tensors do not
/// count; default unlimited); more is `STLOAD_ERR_LIMIT` before anything is allocated.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_max_load_bytes(
    opts: *mut stload_options,
    bytes: u64,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        o.max_load_bytes = bytes;
        Ok(())
    })
}

/// Starts bringing every file's data into memory on a background thread at open (mmap mode):
/// the kernel is asked to read ahead and all cores touch the pages. Default off.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_prefetch(
    opts: *mut stload_options,
    enabled: bool,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        o.prefetch = enabled;
        Ok(())
    })
}

/// Sets a remote option for models opened from URLs (`s3://bucket/prefix/`, `gs://...`,
/// `az://...`, `http(s)://...`), on top of what each store reads from the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, `AWS_REGION`, `GOOGLE_*`, `AZURE_*`, ...).
/// `key` is one of stload's `concurrency` (ranged reads in flight, default 16), `chunk_size`
/// (bytes per ranged read, default 8 MiB), `max_retries` (default 10), `retry_timeout_ms`
/// (default 180000), `init_backoff_ms` (default 100), `cache_dir` (a directory keeping complete
/// copies of the weight files, keyed by URL, ETag and size, which later opens read from disk;
/// default `$STLOAD_CACHE_DIR`, "" for none), or a configuration key of the
/// `object_store` crate (`aws_endpoint`, `aws_access_key_id`, `aws_secret_access_key`,
/// `aws_region`, `google_service_account`, `azure_storage_account_name`, `allow_http`,
/// `timeout`, ...). An unknown key or a bad number is `STLOAD_ERR_INVALID_ARGUMENT` naming it;
/// a library built without the cargo feature `remote` refuses every key with
/// `STLOAD_ERR_UNSUPPORTED`. Both strings are copied. Not thread-safe on the same options.
#[doc = safety!(
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed, and no",
    "  other thread uses it during the call.",
    "- `key`, `value`: NULL or NUL-terminated strings.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_options_set_remote(
    opts: *mut stload_options,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        // SAFETY: NUL-terminated strings per the API contract.
        let key = unsafe { str_arg(key, "key") }?;
        // SAFETY: as above.
        let value = unsafe { str_arg(value, "value") }?;
        o.set_remote(key, value).map(drop)
    })
}
