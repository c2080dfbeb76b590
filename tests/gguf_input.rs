//! GGUF files as models: a file the `gguf` package wrote with a tensor of every type it
//! dequantises (tests/gguf/gguf_input_fixture.py) opens through `Model::open_files`,
//! `Model::open_dir` and the C `stload_open_files`; NATIVE gets are zero-copy views of the
//! stored blocks, and `get_as` / `load` to F32, F16 and BF16 equal the package's
//! `gguf.quants.dequantize` bit for bit (F16 and BF16: those values narrowed by numpy and
//! ml_dtypes). Hostile files (the fixture altered, or written byte by byte) are refused at open,
//! naming the file and tensor or key, before anything their counts claim is allocated; `stload
//! verify` refuses data ranges they break.

mod common;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

use stload::{Dtype, Error, Model, Options};

struct Expected {
    name: String,
    dtype: Dtype,
    shape: Vec<u64>,
    data_offset: usize,
    nbytes: usize,
}

/// Writes the fixture into a fresh directory; the model file is `DIR/model.gguf`.
fn fixture() -> (tempfile::TempDir, Vec<Expected>) {
    fixture_with(&[])
}

/// [`fixture`] with more arguments to the script (`--llama FTYPE`).
fn fixture_with(args: &[&str]) -> (tempfile::TempDir, Vec<Expected>) {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gguf/gguf_input_fixture.py");
    let mut all = vec![script.into_os_string(), dir.path().as_os_str().to_owned()];
    all.extend(args.iter().map(Into::into));
    common::run_python(&all);
    let json = std::fs::read(dir.path().join("expected.json")).unwrap();
    let list: Vec<serde_json::Value> = serde_json::from_slice(&json).unwrap();
    let expected = list
        .iter()
        .map(|e| Expected {
            name: e["name"].as_str().unwrap().to_string(),
            dtype: Dtype::from_name(e["type"].as_str().unwrap()).unwrap(),
            shape: e["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect(),
            data_offset: e["data_offset"].as_u64().unwrap() as usize,
            nbytes: e["nbytes"].as_u64().unwrap() as usize,
        })
        .collect();
    (dir, expected)
}

fn model_path(dir: &Path) -> PathBuf {
    dir.join("model.gguf")
}

/// The package's values of tensor `name` as `dtype` (f32, f16 or bf16 files of the fixture).
fn oracle(dir: &Path, name: &str, dtype: Dtype) -> Vec<u8> {
    let ext = dtype.name().to_lowercase();
    std::fs::read(dir.join(format!("{name}.{ext}"))).unwrap()
}

fn first_difference(got: &[u8], want: &[u8], size: usize) -> String {
    if got.len() != want.len() {
        return format!("{} bytes vs {}", got.len(), want.len());
    }
    let i = got
        .chunks(size)
        .zip(want.chunks(size))
        .position(|(a, b)| a != b);
    format!("first differing value at {i:?}")
}

#[test]
fn every_type_opens_as_stored_and_dequantizes_like_the_gguf_package() {
    let (dir, expected) = fixture();
    let path = model_path(dir.path());
    let file = std::fs::read(&path).unwrap();
    let model = Model::open_files(&[&path], &Options::default()).unwrap();
    assert_eq!(model.names().count(), expected.len());
    let mut block_types = 0;
    for e in &expected {
        let info = model.info(&e.name).unwrap();
        assert_eq!(info.dtype, e.dtype, "{}", e.name);
        assert_eq!(
            info.shape,
            e.shape.as_slice(),
            "{}: row-major shape",
            e.name
        );
        assert_eq!(info.format, stload::Format::Gguf);
        let native = model.get(&e.name).unwrap();
        assert!(native.is_mapped(), "{}: NATIVE must be zero-copy", e.name);
        assert_eq!(
            native.data(),
            &file[e.data_offset..e.data_offset + e.nbytes],
            "{}: the stored blocks",
            e.name
        );
        block_types += usize::from(e.dtype.is_block());
        for to in [Dtype::F32, Dtype::F16, Dtype::BF16] {
            let got = model.get_as(&e.name, to).unwrap();
            assert_eq!(got.dtype(), to);
            assert_eq!(got.shape(), e.shape.as_slice());
            let want = oracle(dir.path(), &e.name, to);
            let size = to.byte_size().unwrap();
            assert!(
                got.data() == want.as_slice(),
                "{} as {to}: {}",
                e.name,
                first_difference(got.data(), &want, size)
            );
        }
    }
    assert_eq!(block_types, 23, "every block type the package dequantises");
}

/// Files llama.cpp's quantizer wrote (real blocks, its alignment and keys): every tensor's
/// stored bytes and F32 values equal the file's and the package's.
#[test]
fn files_llama_cpp_quantized_open_and_dequantize_like_the_gguf_package() {
    let mut seen = std::collections::BTreeSet::new();
    // quant_check.py's file types and Q8_0: every type llama.cpp writes without an importance
    // matrix.
    for ftype in [
        "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K",
        "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0",
    ] {
        let (dir, expected) = fixture_with(&["--llama", ftype]);
        let path = model_path(dir.path());
        let file = std::fs::read(&path).unwrap();
        let model = Model::open_files(&[&path], &Options::default()).unwrap();
        assert_eq!(model.names().count(), expected.len(), "{ftype}");
        for e in &expected {
            let native = model.get(&e.name).unwrap();
            assert_eq!(native.dtype(), e.dtype, "{ftype} {}", e.name);
            assert_eq!(native.shape(), e.shape.as_slice(), "{ftype} {}", e.name);
            let stored = &file[e.data_offset..e.data_offset + e.nbytes];
            assert!(native.data() == stored, "{ftype} {}", e.name);
            let values = model.get_as(&e.name, Dtype::F32).unwrap();
            let want = oracle(dir.path(), &e.name, Dtype::F32);
            assert!(values.data() == want.as_slice(), "{ftype} {}", e.name);
            seen.insert(e.dtype);
        }
    }
    let blocks: Vec<&str> = seen
        .iter()
        .filter(|d| d.is_block())
        .map(|d| d.name())
        .collect();
    assert_eq!(
        blocks.join(" "),
        "Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS TQ1_0 TQ2_0"
    );
}

#[test]
fn rows_of_blocks_slice_zero_copy_and_dequantize() {
    let (dir, expected) = fixture();
    let path = model_path(dir.path());
    let file = std::fs::read(&path).unwrap();
    let model = Model::open_files(&[&path], &Options::default()).unwrap();
    for e in expected.iter().filter(|e| e.dtype.is_block()) {
        let rows = e.shape[0] as usize;
        let row_bytes = e.nbytes / rows;
        let native = model.get_slice(&e.name, 0, 1, 2, None).unwrap();
        assert!(native.is_mapped(), "{}", e.name);
        let at = e.data_offset + row_bytes;
        assert_eq!(native.data(), &file[at..at + row_bytes], "{}", e.name);
        let values = model.get_slice(&e.name, 0, 1, 2, Some(Dtype::F32)).unwrap();
        let all = oracle(dir.path(), &e.name, Dtype::F32);
        let row_values = all.len() / rows;
        assert!(
            values.data() == &all[row_values..2 * row_values],
            "{}",
            e.name
        );
    }
}

#[test]
fn a_whole_model_loads_dequantized_and_opens_from_its_directory() {
    let (dir, expected) = fixture();
    let model = Model::open_dir(dir.path(), &Options::default()).unwrap();
    assert_eq!(model.names().count(), expected.len());
    model.load(Some(Dtype::BF16), |_, _, _| true).unwrap();
    for e in &expected {
        let got = model.get_as(&e.name, Dtype::BF16).unwrap();
        assert_eq!(
            got.data(),
            oracle(dir.path(), &e.name, Dtype::BF16),
            "{}",
            e.name
        );
    }
    // A dtype block types do not dequantise into keeps them as stored.
    let q4k = expected.iter().find(|e| e.dtype == Dtype::Q4_K).unwrap();
    let e = model.get_as(&q4k.name, Dtype::F64).unwrap_err();
    assert!(
        e.to_string().contains("no conversion from Q4_K to F64"),
        "{e}"
    );
}

#[test]
fn the_c_api_opens_gguf_files_and_gets_blocks_and_values() {
    use stload::ffi::dtype::{STLOAD_DTYPE_F32, STLOAD_DTYPE_NATIVE};
    use stload::ffi::model::*;
    use stload::ffi::tensor::*;
    let (dir, expected) = fixture();
    let path = CString::new(model_path(dir.path()).to_str().unwrap()).unwrap();
    let dir_c = CString::new(dir.path().to_str().unwrap()).unwrap();
    let file = std::fs::read(model_path(dir.path())).unwrap();
    for by_dir in [false, true] {
        let mut model = std::ptr::null_mut();
        let mut err = std::ptr::null_mut();
        // SAFETY: valid strings, out pointers to locals.
        let status = unsafe {
            if by_dir {
                stload_open_dir(dir_c.as_ptr(), std::ptr::null(), &mut model, &mut err)
            } else {
                let paths = [path.as_ptr()];
                stload_open_files(paths.as_ptr(), 1, std::ptr::null(), &mut model, &mut err)
            }
        };
        assert_eq!(
            status,
            stload::ffi::stload_status::STLOAD_OK,
            "open (by_dir {by_dir})"
        );
        for e in expected.iter().filter(|e| e.dtype.is_block()) {
            let name = CString::new(e.name.as_str()).unwrap();
            for (dtype, want) in [
                (
                    STLOAD_DTYPE_NATIVE,
                    file[e.data_offset..e.data_offset + e.nbytes].to_vec(),
                ),
                (STLOAD_DTYPE_F32, oracle(dir.path(), &e.name, Dtype::F32)),
            ] {
                let mut t = std::ptr::null_mut();
                // SAFETY: a live model, a valid name, out pointers to locals.
                let status =
                    unsafe { stload_model_get(model, name.as_ptr(), dtype, &mut t, &mut err) };
                assert_eq!(status, stload::ffi::stload_status::STLOAD_OK, "{}", e.name);
                // SAFETY: a live tensor; its data lives until it is freed below.
                let got = unsafe {
                    std::slice::from_raw_parts(
                        stload_tensor_data(t).cast::<u8>(),
                        stload_tensor_nbytes(t),
                    )
                };
                assert!(got == want.as_slice(), "{} as {dtype}", e.name);
                // SAFETY: as above.
                let code = unsafe { stload_tensor_dtype(t) };
                let stored = if dtype == STLOAD_DTYPE_NATIVE {
                    e.dtype.code()
                } else {
                    dtype
                };
                assert_eq!(code, stored);
                // SAFETY: a tensor this test owns, freed once.
                unsafe { stload_tensor_free(t) };
            }
        }
        // SAFETY: the model this test owns, freed once.
        unsafe { stload_model_free(model) };
    }
}

/// Offset in `file` of the tensor-info offset field of tensor `name` (the name's bytes, then
/// dimension count, dimensions, type, offset).
fn info_offset_field(file: &[u8], name: &str, rank: usize) -> usize {
    let at = file
        .windows(name.len())
        .position(|w| w == name.as_bytes())
        .unwrap();
    at + name.len() + 4 + 8 * rank + 4
}

#[test]
fn hostile_gguf_files_are_refused_at_open_naming_the_file() {
    let (dir, expected) = fixture();
    let good = std::fs::read(model_path(dir.path())).unwrap();
    let open = |bytes: &[u8], label: &str| -> Error {
        let p = dir.path().join(format!("{label}.gguf"));
        std::fs::write(&p, bytes).unwrap();
        let e = Model::open_files(&[&p], &Options::default()).unwrap_err();
        assert!(
            e.to_string().contains(&format!("{label}.gguf")),
            "{label}: {e}"
        );
        e
    };
    // Cut in the data: the last tensor's data runs past the end.
    let e = open(&good[..good.len() - 100], "truncated-data");
    assert!(e.to_string().contains("past the end of the file"), "{e}");
    // Cut in the header.
    let e = open(&good[..200], "truncated-header");
    assert!(
        e.to_string().contains("cannot fit in the 176 bytes left"),
        "{e}"
    );
    // A tensor's offset far past the end.
    let last = expected.last().unwrap();
    let field = info_offset_field(&good, &last.name, last.shape.len());
    let mut bad = good.clone();
    bad[field..field + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = open(&bad, "offset-past-end");
    assert!(e.to_string().contains(&last.name), "{e}");
    // A dimension that is not whole blocks of the tensor's type.
    let q4k = expected.iter().find(|e| e.dtype == Dtype::Q4_K).unwrap();
    let dims_at = info_offset_field(&good, &q4k.name, q4k.shape.len()) - 4 - 8 * q4k.shape.len();
    let mut bad = good.clone();
    bad[dims_at..dims_at + 8].copy_from_slice(&100u64.to_le_bytes());
    let e = open(&bad, "partial-block");
    assert!(
        e.to_string().contains(&q4k.name) && e.to_string().contains("no Q4_K byte size"),
        "{e}"
    );
}

#[test]
fn the_cli_converts_a_gguf_file_to_safetensors_with_the_package_values() {
    let (dir, expected) = fixture();
    let stload = env!("CARGO_BIN_EXE_stload");
    let out = dir.path().join("out.safetensors");
    let run = |args: &[&std::ffi::OsStr]| Command::new(stload).args(args).output().unwrap();
    let gguf = model_path(dir.path());
    let r = run(&[
        "convert".as_ref(),
        gguf.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--dtype".as_ref(),
        "f32".as_ref(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let converted = Model::open_files(&[&out], &Options::default()).unwrap();
    for e in &expected {
        let t = converted.get(&e.name).unwrap();
        assert_eq!(t.dtype(), Dtype::F32, "{}", e.name);
        assert_eq!(t.shape(), e.shape.as_slice(), "{}", e.name);
        assert!(
            t.data() == oracle(dir.path(), &e.name, Dtype::F32).as_slice(),
            "{}",
            e.name
        );
    }
    // Without --dtype the block types would have to be stored as they are: refused, no file.
    let kept = dir.path().join("kept.safetensors");
    let r = run(&[
        "convert".as_ref(),
        gguf.as_os_str(),
        "--out".as_ref(),
        kept.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && !kept.exists(), "{err}");
    assert!(
        err.contains("is a GGML block type, which safetensors cannot store"),
        "{err}"
    );
}

/// Bytes each thread has asked the allocator for: what opening a file allocates, whatever the
/// other tests running in parallel do.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static ASKED: Cell<u64> = const { Cell::new(0) };
    }

    fn add(n: usize) {
        // try_with: allocations while the thread is torn down are not counted.
        let _ = ASKED.try_with(|a| a.set(a.get().saturating_add(n as u64)));
    }

    /// Bytes this thread has asked for so far (every allocation and growth, never less).
    pub fn asked() -> u64 {
        ASKED.with(Cell::get)
    }

    // SAFETY: every call is passed on to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size());
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            add(layout.size());
            // SAFETY: as above.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            add(new_size);
            // SAFETY: as above.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: as above.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// A GGUF v3 file written byte by byte, so each field can be made hostile: keys (raw typed
/// values), tensor infos (dimensions innermost first, as stored) and zero data after the
/// header, padded to `align`. The counts are those of the keys and tensors added unless set.
struct RawGguf {
    keys: Vec<u8>,
    n_keys: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    align: usize,
    data: usize,
}

/// ggml type numbers the tests use.
const F32: u32 = 0;
const Q4_0: u32 = 2;
/// GGUF value types the tests use.
const U32_VALUE: u32 = 4;
const STRING_VALUE: u32 = 8;
const ARRAY_VALUE: u32 = 9;
const U16_VALUE: u32 = 2;
const I32_VALUE: u32 = 5;

impl RawGguf {
    fn new() -> RawGguf {
        RawGguf {
            keys: Vec::new(),
            n_keys: 0,
            infos: Vec::new(),
            n_tensors: 0,
            align: 32,
            data: 0,
        }
    }

    fn key(mut self, name: &str, ty: u32, value: &[u8]) -> RawGguf {
        self.keys.extend(
            (name.len() as u64)
                .to_le_bytes()
                .iter()
                .chain(name.as_bytes()),
        );
        self.keys.extend(ty.to_le_bytes());
        self.keys.extend(value);
        self.n_keys += 1;
        self
    }

    fn tensor(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> RawGguf {
        self.infos.extend(
            (name.len() as u64)
                .to_le_bytes()
                .iter()
                .chain(name.as_bytes()),
        );
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.n_tensors += 1;
        self
    }

    fn data(mut self, bytes: usize) -> RawGguf {
        self.data = bytes;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(self.n_tensors.to_le_bytes());
        b.extend(self.n_keys.to_le_bytes());
        b.extend(&self.keys);
        b.extend(&self.infos);
        b.resize(b.len().next_multiple_of(self.align) + self.data, 0);
        b
    }
}

/// A string value: its u64 length, then its bytes.
fn gguf_string(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend(s.as_bytes());
    v
}

/// An array value's head: element type and count.
fn gguf_array(elem: u32, n: u64) -> Vec<u8> {
    let mut v = elem.to_le_bytes().to_vec();
    v.extend(n.to_le_bytes());
    v
}

/// Writes `bytes` to DIR/LABEL.gguf and opens it as a model.
fn open_raw(dir: &Path, label: &str, bytes: &[u8]) -> stload::Result<Model> {
    let p = dir.join(format!("{label}.gguf"));
    std::fs::write(&p, bytes).unwrap();
    Model::open_files(&[&p], &Options::default())
}

/// Opens DIR/LABEL.gguf holding `bytes`: refused, naming the file and saying `rule`.
fn refused(dir: &Path, label: &str, bytes: &[u8], rule: &str) -> Error {
    let e = match open_raw(dir, label, bytes) {
        Ok(_) => panic!("{label}: opened"),
        Err(e) => e,
    };
    let text = e.to_string();
    assert!(
        text.contains(&format!("{label}.gguf")) && text.contains(rule),
        "{label}: {text}"
    );
    e
}

/// Two F32 rows of 8 and one Q4_0 row of 32 (18 bytes), laid out as llama.cpp lays them out.
fn three_tensors() -> RawGguf {
    RawGguf::new()
        .key("general.architecture", STRING_VALUE, &gguf_string("llama"))
        .tensor("a", &[8], F32, 0)
        .tensor("b", &[8], F32, 32)
        .tensor("q", &[32], Q4_0, 64)
        .data(82)
}

#[test]
fn hostile_counts_lengths_and_nesting_are_refused_at_open_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = three_tensors();
    let model = open_raw(d, "good", &good.bytes()).unwrap();
    assert_eq!(model.names().collect::<Vec<_>>(), ["a", "b", "q"]);
    assert_eq!(model.get_as("q", Dtype::F32).unwrap().data().len(), 128);
    // Counts no file of this size can hold, refused before anything sized by them is
    // allocated. 2^26 keys would make a 1 GiB key set; this thread asks for less than 16 KiB
    // (the path, the message; measured: about 1 KiB).
    for (label, n_tensors, n_keys, rule) in [
        (
            "tensors-2^26",
            1 << 26,
            1,
            "tensor count 67108864 cannot fit",
        ),
        ("tensors-max", u64::MAX, 1, "tensor count"),
        (
            "keys-2^26",
            3,
            1 << 26,
            "key/value count 67108864 cannot fit",
        ),
        ("keys-max", 3, u64::MAX, "key/value count"),
    ] {
        let raw = RawGguf {
            n_tensors,
            n_keys,
            ..three_tensors()
        };
        let bytes = raw.bytes();
        let before = counting::asked();
        refused(d, label, &bytes, rule);
        let asked = counting::asked() - before;
        assert!(asked < 16 << 10, "{label}: open asked for {asked} bytes");
    }
    // Lengths past the end: of a key's name, of a string value, of a tensor's name.
    let mut bytes = good.bytes();
    bytes[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
    refused(
        d,
        "key-name-long",
        &bytes,
        "needs 1099511627776 bytes but the file ends",
    );
    let long = RawGguf::new().key("k.s", STRING_VALUE, &(1u64 << 40).to_le_bytes());
    refused(
        d,
        "string-long",
        &long.bytes(),
        "key \"k.s\": value at byte",
    );
    let mut strings = gguf_array(STRING_VALUE, 2);
    strings.extend(gguf_string("a"));
    strings.extend(u64::MAX.to_le_bytes());
    let e = refused(
        d,
        "array-string-long",
        &RawGguf::new().key("k.a", ARRAY_VALUE, &strings).bytes(),
        "key \"k.a\"",
    );
    assert!(e.to_string().contains("the file ends"), "{e}");
    let mut bytes = good.bytes();
    let name_at = bytes
        .windows(9)
        .position(|w| w == b"\x01\0\0\0\0\0\0\0a")
        .unwrap();
    bytes[name_at..name_at + 8].copy_from_slice(&(1u64 << 50).to_le_bytes());
    refused(d, "tensor-name-long", &bytes, "tensor name at byte");
    // An array count no file holds, and arrays nested past 8 deep (8 open).
    let huge = RawGguf::new().key("k.a", ARRAY_VALUE, &gguf_array(U32_VALUE, 1 << 62));
    refused(d, "array-huge", &huge.bytes(), "cannot fit");
    let nested = |levels: usize| {
        let mut v = Vec::new();
        for _ in 1..levels {
            v.extend(gguf_array(ARRAY_VALUE, 1));
        }
        v.extend(gguf_array(U32_VALUE, 1));
        v.extend(7u32.to_le_bytes());
        RawGguf::new().key("k.n", ARRAY_VALUE, &v).bytes()
    };
    open_raw(d, "nested-8", &nested(8)).unwrap();
    refused(
        d,
        "nested-9",
        &nested(9),
        "key \"k.n\": arrays nested more than 8 deep",
    );
}

#[test]
fn hostile_tensor_infos_are_refused_at_open_naming_the_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with = |tensors: &[(&str, &[u64], u32, u64)], data: usize| {
        let mut raw = RawGguf::new();
        for &(name, dims, ty, offset) in tensors {
            raw = raw.tensor(name, dims, ty, offset);
        }
        raw.data(data)
    };
    let refused_tensor = |label: &str, raw: RawGguf, tensor: &str, rule: &str| {
        let e = refused(d, label, &raw.bytes(), rule);
        assert!(
            e.to_string().contains(&format!("\"{tensor}\"")),
            "{label}: {e}"
        );
    };
    refused_tensor(
        "unknown-type",
        with(&[("a", &[8], 99, 0)], 32),
        "a",
        "unknown ggml type 99",
    );
    // Types ggml retired (4, 5: Q4_2, Q4_3) have no size either.
    refused_tensor(
        "retired-type",
        with(&[("a", &[32], 4, 0)], 32),
        "a",
        "unknown ggml type 4",
    );
    refused_tensor(
        "dims-overflow",
        with(&[("a", &[1 << 32, 1 << 32], F32, 0)], 32),
        "a",
        "multiply past 2^63 - 1",
    );
    // ggml's int64 element count: 2^63 elements are refused even when the bytes would fit u64.
    refused_tensor(
        "dims-past-int64",
        with(&[("a", &[1 << 62, 2], 24, 0)], 32),
        "a",
        "multiply past 2^63 - 1",
    );
    // A zero dimension cannot hide the others' overflow (slices multiply them).
    refused_tensor(
        "zero-hides-overflow",
        with(&[("a", &[0, 1 << 40, 1 << 40], F32, 0)], 0),
        "a",
        "multiply past 2^63 - 1",
    );
    // Zero elements otherwise: an empty tensor, which gets and converts to nothing.
    let model = open_raw(
        d,
        "zero-dims",
        &with(&[("e", &[0, 4], F32, 0), ("f", &[8], F32, 0)], 32).bytes(),
    )
    .unwrap();
    assert_eq!(model.info("e").unwrap().shape, [4, 0]);
    assert!(model.get("e").unwrap().data().is_empty());
    assert!(model.get_as("e", Dtype::BF16).unwrap().data().is_empty());
    assert_eq!(model.get("f").unwrap().data().len(), 32);
    // A row of 48 values is not whole Q4_0 blocks (32 each).
    refused_tensor(
        "partial-row",
        with(&[("q", &[48, 2], Q4_0, 0)], 64),
        "q",
        "no Q4_0 byte size",
    );
    // Offsets: not aligned to general.alignment (64 here), past the end, on another tensor's
    // bytes.
    let aligned_64 = RawGguf {
        align: 64,
        ..with(&[("a", &[8], F32, 0), ("b", &[8], F32, 32)], 128)
    }
    .key("general.alignment", U32_VALUE, &64u32.to_le_bytes());
    refused_tensor("unaligned", aligned_64, "b", "offset 32 not aligned to 64");
    for bad in [0u32, 12] {
        let raw = with(&[("a", &[8], F32, 0)], 32).key(
            "general.alignment",
            U32_VALUE,
            &bad.to_le_bytes(),
        );
        refused(
            d,
            &format!("alignment-{bad}"),
            &raw.bytes(),
            "is not a u32 multiple of 8",
        );
    }
    refused_tensor(
        "past-end",
        with(&[("a", &[8], F32, 0), ("b", &[9], F32, 32)], 64),
        "b",
        "past the end of the file",
    );
    refused_tensor(
        "offset-overflow",
        with(&[("a", &[8], F32, u64::MAX - 31)], 32),
        "a",
        "gap",
    );
    let e = refused(
        d,
        "overlap",
        &with(&[("a", &[16], F32, 0), ("b", &[8], F32, 32)], 96).bytes(),
        "starts inside tensor \"a\"",
    );
    assert!(e.to_string().contains("\"b\""), "{e}");
}

/// gguf-split's keys: shard `no` (from 0) of `count`, `tensors` in the whole set.
fn split_keys(raw: RawGguf, no: u16, count: u16, tensors: i32) -> RawGguf {
    raw.key("split.no", U16_VALUE, &no.to_le_bytes())
        .key("split.count", U16_VALUE, &count.to_le_bytes())
        .key("split.tensors.count", I32_VALUE, &tensors.to_le_bytes())
}

/// The second shard of a set of two: two more tensors, with their own values.
fn two_more_tensors() -> RawGguf {
    RawGguf::new()
        .tensor("c", &[8], F32, 0)
        .tensor("d", &[4], F32, 32)
        .data(48)
}

#[test]
fn a_split_set_opens_whole_from_any_shard_and_a_broken_set_is_refused_naming_the_shard() {
    let set = tempfile::tempdir().unwrap();
    let s = set.path();
    // Shards whose data bytes differ from each other's and from place to place.
    let patterned = |raw: RawGguf, seed: u8| {
        let mut b = raw.bytes();
        let start = b.len() - raw.data;
        for (i, x) in b[start..].iter_mut().enumerate() {
            *x = (i as u8).wrapping_mul(7).wrapping_add(seed);
        }
        (b, start)
    };
    let (first, start1) = patterned(split_keys(three_tensors(), 0, 2, 5), 1);
    let (second, start2) = patterned(split_keys(two_more_tensors(), 1, 2, 5), 100);
    let (p1, p2) = (
        s.join("m-00001-of-00002.gguf"),
        s.join("m-00002-of-00002.gguf"),
    );
    std::fs::write(&p1, &first).unwrap();
    std::fs::write(&p2, &second).unwrap();
    // Each tensor's bytes: (name, its shard's bytes from its data offset, its length).
    let stored: [(&str, &[u8], usize); 5] = [
        ("a", &first[start1..], 32),
        ("b", &first[start1 + 32..], 32),
        ("q", &first[start1 + 64..], 18),
        ("c", &second[start2..], 32),
        ("d", &second[start2 + 32..], 16),
    ];
    let o = Options::default();
    // From either shard, from both (in any order; a shard given in one spelling is not
    // looked for in another), from the directory.
    let spelled = s.join(".").join("m-00002-of-00002.gguf");
    for model in [
        Model::open_files(&[&p1], &o).unwrap(),
        Model::open_files(&[&p2], &o).unwrap(),
        Model::open_files(&[&spelled, &p1], &o).unwrap(),
        Model::open_dir(s, &o).unwrap(),
    ] {
        assert_eq!(model.names().collect::<Vec<_>>(), ["a", "b", "c", "d", "q"]);
        for (name, bytes, len) in stored {
            assert_eq!(model.get(name).unwrap().data(), &bytes[..len], "{name}");
        }
    }

    let broken = |label: &str, shards: &[(&str, Vec<u8>)], given: &str, rule: &str| {
        let d = tempfile::tempdir().unwrap();
        for (name, bytes) in shards {
            std::fs::write(d.path().join(name), bytes).unwrap();
        }
        let e = Model::open_files(&[d.path().join(given)], &o).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(rule), "{label}: {text}");
        text
    };
    // A missing shard: the error names the file looked for.
    let t = broken(
        "missing",
        &[("m-00001-of-00002.gguf", first.clone())],
        "m-00001-of-00002.gguf",
        "m-00002-of-00002.gguf",
    );
    assert!(!t.contains("opened"), "{t}");
    // A shard whose keys give another place, count or total than its name and the set.
    let t = broken(
        "disagreeing",
        &[
            ("m-00001-of-00002.gguf", first.clone()),
            (
                "m-00002-of-00002.gguf",
                split_keys(two_more_tensors(), 1, 2, 6).bytes(),
            ),
        ],
        "m-00001-of-00002.gguf",
        "split keys say shard 2 of 2 of 6 tensors",
    );
    assert!(t.contains("m-00002-of-00002.gguf"), "{t}");
    broken(
        "no-keys",
        &[
            ("m-00001-of-00002.gguf", first.clone()),
            ("m-00002-of-00002.gguf", two_more_tensors().bytes()),
        ],
        "m-00001-of-00002.gguf",
        "no split keys",
    );
    // The same tensor in two shards, and a total the shards do not list.
    broken(
        "twice",
        &[
            ("m-00001-of-00002.gguf", first.clone()),
            (
                "m-00002-of-00002.gguf",
                split_keys(three_tensors(), 1, 2, 5).bytes(),
            ),
        ],
        "m-00002-of-00002.gguf",
        "also listed by",
    );
    broken(
        "miscounted",
        &[
            (
                "m-00001-of-00002.gguf",
                split_keys(three_tensors(), 0, 2, 6).bytes(),
            ),
            (
                "m-00002-of-00002.gguf",
                split_keys(two_more_tensors(), 1, 2, 6).bytes(),
            ),
        ],
        "m-00001-of-00002.gguf",
        "split.tensors.count is 6 but the 2 shards list 5 tensors",
    );
    // A shard not named for its place: its others cannot be found.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    refused(
        d,
        "renamed",
        &second,
        "shard 2 of 2 of a split model, but not named",
    );
    // A file named as the other shard that is no GGUF file.
    broken(
        "not-gguf",
        &[
            ("m-00001-of-00002.gguf", first.clone()),
            ("m-00002-of-00002.gguf", b"not a gguf".to_vec()),
        ],
        "m-00001-of-00002.gguf",
        "m-00002-of-00002.gguf",
    );
    // Keys a split file never holds: shard 3 of 2.
    refused(
        d,
        "no-past-count",
        &split_keys(three_tensors(), 2, 2, 3).bytes(),
        "split.no",
    );
    // A set of one is the whole model (as llama.cpp opens it), once its count agrees.
    let one = split_keys(three_tensors(), 0, 1, 3).bytes();
    let model = open_raw(d, "m-00001-of-00001", &one).unwrap();
    assert_eq!(model.names().count(), 3);
    let e = refused(
        d,
        "one-miscounted",
        &split_keys(three_tensors(), 0, 1, 4).bytes(),
        "split.tensors.count is 4 but the 1 shards list 3 tensors",
    );
    assert!(matches!(e, Error::Format(_)), "{e}");
    // A name like a shard's without split keys is a whole model (llama.cpp goes by the keys).
    open_raw(d, "plain-00001-of-00002", &three_tensors().bytes()).unwrap();
}

#[test]
fn the_cli_verify_checks_gguf_data_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stload = env!("CARGO_BIN_EXE_stload");
    let verify = |label: &str, bytes: &[u8]| {
        let p = d.join(format!("{label}.gguf"));
        std::fs::write(&p, bytes).unwrap();
        let o = Command::new(stload).arg("verify").arg(&p).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let good = three_tensors().bytes();
    let (code, out) = verify("good", &good);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("GGUF, 3 tensors"), "{out}");
    // The last tensor's data cut short by one byte.
    let (code, out) = verify("cut", &good[..good.len() - 1]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("cut.gguf") && out.contains("\"q\"") && out.contains("past the end"),
        "{out}"
    );
    let overlap = RawGguf::new()
        .tensor("a", &[16], F32, 0)
        .tensor("b", &[8], F32, 32)
        .data(96)
        .bytes();
    let (code, out) = verify("overlap", &overlap);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("overlap.gguf") && out.contains("starts inside"),
        "{out}"
    );
}

#[test]
fn gguf_keys_are_metadata_typed_and_as_text() {
    use stload::kv::{Array, Value};
    let dir = tempfile::tempdir().unwrap();
    let mut names = gguf_array(STRING_VALUE, 2);
    names.extend(gguf_string("a\"b"));
    names.extend(gguf_string("é"));
    let mut floats = gguf_array(6, 2);
    floats.extend(0.1f32.to_le_bytes());
    floats.extend(f32::NAN.to_le_bytes());
    let raw = three_tensors()
        .key("llama.block_count", U32_VALUE, &7u32.to_le_bytes())
        .key("x.eps", 6, &1e-5f32.to_le_bytes())
        .key("x.bias", I32_VALUE, &(-3i32).to_le_bytes())
        .key("x.flag", 7, &[1])
        .key("x.names", ARRAY_VALUE, &names)
        .key("x.floats", ARRAY_VALUE, &floats);
    let model = open_raw(dir.path(), "keys", &raw.bytes()).unwrap();
    let text = |k: &str| model.metadata(k).unwrap().to_string();
    assert_eq!(text("general.architecture"), "llama");
    assert_eq!(text("llama.block_count"), "7");
    assert_eq!(text("x.bias"), "-3");
    assert_eq!(text("x.flag"), "true");
    assert_eq!(text("x.names"), r#"["a\"b","é"]"#);
    // An f32 as the f64 of the same value: it reads back to the same f32.
    assert_eq!(text("x.eps").parse::<f64>().unwrap() as f32, 1e-5f32);
    let floats: Vec<Option<f64>> = serde_json::from_str(&text("x.floats")).unwrap();
    assert_eq!(floats[0].map(|x| x as f32), Some(0.1f32));
    assert_eq!(floats[1], None);
    assert_eq!(model.gguf_value("llama.block_count"), Some(&Value::U32(7)));
    assert_eq!(model.gguf_value("x.flag"), Some(&Value::Bool(true)));
    assert_eq!(
        model.gguf_value("x.names"),
        Some(&Value::Array(Array::String(vec![
            "a\"b".into(),
            "é".into()
        ])))
    );
    assert_eq!(model.gguf_value("absent"), None);
    let keys: Vec<&str> = model.metadata_pairs().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "general.architecture",
            "llama.block_count",
            "x.bias",
            "x.eps",
            "x.flag",
            "x.floats",
            "x.names"
        ]
    );
}
