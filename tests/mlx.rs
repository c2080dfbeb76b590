//! MLX arrays from stload equal what MLX's own loader (`mx.load`) gives on the same files,
//! natively and after conversion to F32, F16 and BF16; arrays outlive their model; repeated
//! get/free cycles do not grow memory. The oracle is tests/python/mlx_oracle.py.

#![cfg(feature = "mlx")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{expected, fixtures, hex, python};
use stload::mlx::MlxArray;
use stload::{Dtype, Error, Model, Options};

/// One tensor as MLX loads it.
struct Oracle {
    name: String,
    file: PathBuf,
    dtype: Dtype,
    shape: Vec<u64>,
    bytes: Vec<u8>,
    converted: Vec<(Dtype, Vec<u8>)>,
}

struct Oracles {
    tensors: Vec<Oracle>,
    refused: Vec<String>,
    dir: PathBuf,
}

fn oracle() -> &'static Oracles {
    static ORACLE: OnceLock<(tempfile::TempDir, Oracles)> = OnceLock::new();
    &ORACLE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temporary directory");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/mlx_oracle.py");
            let status = Command::new(python())
                .arg(&script)
                .arg(fixtures())
                .arg(dir.path())
                .status()
                .expect("run python");
            assert!(
                status.success(),
                "mlx_oracle.py failed (is mlx installed in the venv?)"
            );
            let text = std::fs::read_to_string(dir.path().join("mlx.json")).expect("mlx.json");
            let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            let dtype = |v: &serde_json::Value| {
                Dtype::from_name(v.as_str().expect("dtype string")).expect("known dtype")
            };
            let tensors = json["tensors"]
                .as_object()
                .expect("tensors")
                .iter()
                .map(|(name, v)| Oracle {
                    name: name.clone(),
                    file: dir.path().join(v["file"].as_str().expect("file")),
                    dtype: dtype(&v["dtype"]),
                    shape: v["shape"]
                        .as_array()
                        .expect("shape")
                        .iter()
                        .map(|d| d.as_u64().expect("dimension"))
                        .collect(),
                    bytes: hex(v["hex"].as_str().expect("hex")),
                    converted: v["as"]
                        .as_object()
                        .expect("as")
                        .iter()
                        .map(|(k, h)| {
                            (
                                Dtype::from_name(k).expect("target"),
                                hex(h.as_str().expect("hex")),
                            )
                        })
                        .collect(),
                })
                .collect();
            let refused = json["refused"]
                .as_object()
                .expect("refused")
                .keys()
                .cloned()
                .collect();
            let dir_path = dir.path().to_path_buf();
            (
                dir,
                Oracles {
                    tensors,
                    refused,
                    dir: dir_path,
                },
            )
        })
        .1
}

/// The oracle's record of tensor `name`.
fn tensor(name: &str) -> &'static Oracle {
    oracle()
        .tensors
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("the oracle has no tensor {name}"))
}

fn open(file: &Path) -> Model {
    Model::open_files(&[file], &Options::default()).expect("open")
}

fn bytes(a: &MlxArray) -> &[u8] {
    a.bytes().expect("evaluated contiguous array")
}

/// Whether two float buffers hold the same values: the same bits, or NaN in both (MLX's
/// astype keeps NaN payload bits that numpy, and so stload, replace by the quiet NaN).
fn same_floats(dtype: Dtype, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    if a.len() != b.len() {
        return false;
    }
    let is_nan = |e: &[u8]| match dtype {
        Dtype::F32 => f32::from_le_bytes([e[0], e[1], e[2], e[3]]).is_nan(),
        Dtype::F16 => half::f16::from_le_bytes([e[0], e[1]]).is_nan(),
        Dtype::BF16 => half::bf16::from_le_bytes([e[0], e[1]]).is_nan(),
        _ => false,
    };
    let size = dtype.byte_size().unwrap_or(1);
    a.chunks(size)
        .zip(b.chunks(size))
        .all(|(x, y)| x == y || (is_nan(x) && is_nan(y)))
}

#[test]
fn native_arrays_equal_mx_load() {
    let o = oracle();
    assert!(
        o.tensors.len() >= 20,
        "the oracle covers every dtype MLX loads"
    );
    for t in &o.tensors {
        let model = open(&t.file);
        let a = model.get_mlx(&t.name, None).expect("get_mlx native");
        assert_eq!(a.dtype(), t.dtype, "{}: dtype", t.name);
        assert_eq!(a.shape(), &t.shape[..], "{}: shape", t.name);
        assert_eq!(a.nbytes(), t.bytes.len(), "{}: nbytes", t.name);
        assert_eq!(bytes(&a), &t.bytes[..], "{}: bytes", t.name);
    }
}

#[test]
fn converted_arrays_equal_mx_load_astype() {
    for t in &oracle().tensors {
        let model = open(&t.file);
        let stored = model.info(&t.name).expect("info").dtype;
        if stored != t.dtype {
            continue; // FP8 loaded as raw U8 by MLX: its astype converts the bytes as integers.
        }
        for (to, want) in &t.converted {
            let a = model
                .get_mlx(&t.name, Some(*to))
                .expect("get_mlx converted");
            assert_eq!(a.dtype(), *to, "{} as {to}: dtype", t.name);
            assert_eq!(a.shape(), &t.shape[..], "{} as {to}: shape", t.name);
            assert!(
                same_floats(*to, bytes(&a), want),
                "{} as {to}: values differ from mx.load + astype",
                t.name
            );
        }
    }
}

#[test]
fn types_mx_load_refuses() {
    let o = oracle();
    let model = open(&fixtures().join("all_dtypes.safetensors"));
    let all = expected("all_dtypes");
    for name in &o.refused {
        let e = all.iter().find(|e| &e.name == name).expect("fixture");
        let dtype = Dtype::from_name(&e.dtype).expect("dtype");
        match model.get_mlx(name, None) {
            // F64 exists in MLX (its safetensors loader refuses it); one-byte FP8s load as
            // their raw bytes like F8_E4M3 does in mx.load.
            Ok(a) => {
                assert!(
                    dtype == Dtype::F64 || dtype.byte_size() == Some(1),
                    "{name}"
                );
                assert_eq!(bytes(&a), &e.bytes[..], "{name}: raw bytes");
                assert_eq!(a.shape(), &e.shape[..], "{name}: shape");
            }
            Err(Error::Unsupported(m)) => assert!(m.contains(name.as_str()), "{m}"),
            Err(other) => panic!("{name}: {other}"),
        }
    }
    let err = model.get_mlx("f4", None).expect_err("F4 has no MLX form");
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
}

#[test]
fn fp8_and_f64_conversions_equal_ml_dtypes() {
    let model = open(&fixtures().join("all_dtypes.safetensors"));
    for e in expected("all_dtypes") {
        let dtype = Dtype::from_name(&e.dtype).expect("dtype");
        if !(dtype == Dtype::F64 || (dtype.is_float() && dtype.byte_size() == Some(1))) {
            continue;
        }
        for (to, want) in &e.converted {
            let to = Dtype::from_name(to).expect("target");
            let a = model.get_mlx(&e.name, Some(to)).expect("convert");
            assert_eq!(bytes(&a), &want[..], "{} as {to}", e.name);
        }
    }
}

#[test]
fn load_mlx_fills_the_cache_and_release_all_empties_it() {
    let model = open(&oracle().dir.join("big.safetensors"));
    let mut calls = 0;
    model
        .load_mlx(Some(Dtype::F32), |done, total, _| {
            calls += 1;
            assert!(done <= total);
            true
        })
        .expect("load_mlx");
    assert_eq!(calls, model.len());
    assert_eq!(model.mlx_cached(), model.len());
    let f = model.get_mlx("big_bf16", Some(Dtype::F32)).expect("served");
    assert_eq!(f.dtype(), Dtype::F32);
    let i = model.get_mlx("big_i64", None).expect("ints stay");
    assert_eq!(i.dtype(), Dtype::I64);
    assert_eq!(model.mlx_cached(), model.len(), "served from the cache");
    model.release_all();
    assert_eq!(model.mlx_cached(), 0);
    assert_eq!(f.shape(), &[300, 1000], "arrays handed out stay valid");
    let err = model
        .load_mlx(None, |_, _, _| false)
        .expect_err("cancelled");
    assert!(matches!(err, Error::Cancelled(_)));
}

#[test]
fn arrays_outlive_their_model() {
    let t = tensor("big_bf16");
    let model = open(&t.file);
    let native = model.get_mlx(&t.name, None).expect("native");
    let converted = model.get_mlx(&t.name, Some(Dtype::F32)).expect("F32");
    model.release_all();
    drop(model);
    assert_eq!(bytes(&native), &t.bytes[..]);
    let want = &t
        .converted
        .iter()
        .find(|(d, _)| *d == Dtype::F32)
        .expect("F32")
        .1;
    assert_eq!(bytes(&converted), &want[..]);
    let copy = converted.try_clone().expect("clone");
    drop(converted);
    assert_eq!(bytes(&copy), &want[..]);
}

#[test]
fn arrays_are_shared_across_threads() {
    let t = tensor("big_f16");
    let model = open(&t.file);
    let want = &t
        .converted
        .iter()
        .find(|(d, _)| *d == Dtype::BF16)
        .expect("BF16")
        .1;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    let a = model.get_mlx(&t.name, Some(Dtype::BF16)).expect("get");
                    assert_eq!(bytes(&a), &want[..]);
                    let c = model.get_mlx("big_f16", None).expect("native");
                    c.astype(Dtype::F32, "big_f16").expect("astype");
                }
            });
        }
    });
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("resident pages");
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

#[test]
fn a_thousand_get_free_cycles_keep_memory_steady() {
    let t = tensor("big_f32");
    // No cache: every get makes a new array (1.2 MB each), so a leak shows at once.
    let options = {
        let mut o = Options::default();
        o.cache_converted = false;
        o
    };
    let model = Model::open_files(&[&t.file], &options).expect("open");
    let cycle = || {
        for to in [None, Some(Dtype::BF16), Some(Dtype::F16)] {
            let a = model.get_mlx(&t.name, to).expect("get");
            assert!(a.bytes().is_some());
        }
        let a = model.get_mlx("big_i64", None).expect("get");
        drop(a.astype(Dtype::F32, "big_i64").expect("astype"));
    };
    for _ in 0..50 {
        cycle(); // warm up MLX's allocator cache
    }
    let before = rss_bytes();
    for _ in 0..1000 {
        cycle();
    }
    let after = rss_bytes();
    // 1,000 cycles allocate about 5 GB in all; a leak of even one array per cycle adds 800 MB.
    assert!(
        after < before + 64 * 1024 * 1024,
        "RSS grew from {before} to {after} bytes over 1,000 get/free cycles"
    );
}

/// `load_mlx` runs the core's load loop and materialize path: every source kind (contiguous,
/// strided PyTorch views, a stacked tensor gathered from both), mapped or read, gives arrays
/// equal to what `get_as` gives for the dtype the whole-model rule picks; the load limit holds.
#[test]
fn load_mlx_serves_every_source_kind_as_load_does() {
    let views = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch/views.pt");
    for read_mode in [false, true] {
        let mut options = Options::default();
        options.read_mode = read_mode;
        options
            .add_stack(vec!["base".into(), "tied".into()], "pair")
            .expect("stack rule");
        let model = Model::open_files(std::slice::from_ref(&views), &options).expect("open");
        model
            .load_mlx(Some(Dtype::F32), |_, _, _| true)
            .expect("load_mlx");
        assert_eq!(model.mlx_cached(), model.len(), "read mode {read_mode}");
        for info in model.infos() {
            let want = if info.dtype.is_float() {
                Dtype::F32
            } else {
                info.dtype
            };
            let array = model.get_mlx(info.name, Some(want)).expect("cached");
            let core = model.get_as(info.name, want).expect("get_as");
            assert_eq!(array.dtype(), want, "{}", info.name);
            assert_eq!(array.shape(), core.shape(), "{}", info.name);
            assert_eq!(
                bytes(&array),
                core.data(),
                "{} (read mode {read_mode})",
                info.name
            );
        }
        assert!(model.infos().any(|i| i.name == "pair"));

        let mut limited = options.clone();
        limited.max_load_bytes = 1;
        let model = Model::open_files(std::slice::from_ref(&views), &limited).expect("open");
        let err = model
            .load_mlx(Some(Dtype::F32), |_, _, _| true)
            .expect_err("over the limit");
        assert!(matches!(err, Error::Limit(_)), "{err}");
        assert_eq!(model.mlx_cached(), 0);
    }
}

/// A GGUF model's block types as MLX arrays: with F32, F16 or BF16 every tensor (each type the
/// `gguf` package writes, tests/gguf/gguf_input_fixture.py) is dequantised into the values
/// `get_as` gives (themselves checked against `gguf.quants.dequantize` by tests/gguf_input.rs);
/// with no dtype a block type has no MLX form and is refused naming the tensor and the float
/// dtypes to ask for, by `get_mlx` and, before anything is loaded, by `load_mlx`.
#[test]
fn gguf_block_types_dequantise_into_mlx_arrays_equal_to_get_as() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gguf/gguf_input_fixture.py");
    common::run_python(&[script.as_os_str(), dir.path().as_os_str()]);
    let model = open(&dir.path().join("model.gguf"));
    let blocks: Vec<&str> = model
        .infos()
        .filter(|i| i.dtype.is_block())
        .map(|i| i.name)
        .collect();
    assert!(blocks.len() > 20, "{blocks:?}");
    for to in [Dtype::F32, Dtype::F16, Dtype::BF16] {
        for info in model.infos() {
            let array = model.get_mlx(info.name, Some(to)).expect("dequantised");
            let core = model.get_as(info.name, to).expect("get_as");
            assert_eq!(array.dtype(), to, "{}", info.name);
            assert_eq!(array.shape(), core.shape(), "{}", info.name);
            assert_eq!(bytes(&array), core.data(), "{} as {to}", info.name);
        }
    }
    model.release_all();
    for name in &blocks {
        let err = model.get_mlx(name, None).expect_err("no MLX form");
        let text = err.to_string();
        assert!(matches!(err, Error::Unsupported(_)), "{text}");
        assert!(text.contains(&format!("\"{name}\"")), "{text}");
        assert!(text.contains("ask for F32, F16 or BF16"), "{text}");
    }
    let err = model.load_mlx(None, |_, _, _| true).expect_err("refused");
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(
        err.to_string().contains("ask for F32, F16 or BF16"),
        "{err}"
    );
    assert_eq!(model.mlx_cached(), 0, "refused before anything was loaded");
    model
        .load_mlx(Some(Dtype::BF16), |_, _, _| true)
        .expect("load_mlx");
    assert_eq!(model.mlx_cached(), model.len());
    for info in model.infos() {
        let array = model.get_mlx(info.name, Some(Dtype::BF16)).expect("cached");
        let core = model.get_as(info.name, Dtype::BF16).expect("get_as");
        assert_eq!(bytes(&array), core.data(), "{} loaded as BF16", info.name);
    }
    assert_eq!(model.mlx_cached(), model.len(), "served from the cache");
}
