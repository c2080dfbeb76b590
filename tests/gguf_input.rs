//! GGUF files as models: a file the `gguf` package wrote with a tensor of every type it
//! dequantises (tests/gguf/gguf_input_fixture.py) opens through `Model::open_files`,
//! `Model::open_dir` and the C `stload_open_files`; NATIVE gets are zero-copy views of the
//! stored blocks, and `get_as` / `load` to F32, F16 and BF16 equal the package's
//! `gguf.quants.dequantize` bit for bit (F16 and BF16: those values narrowed by numpy and
//! ml_dtypes). Hostile files are refused at open, naming the file.

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
