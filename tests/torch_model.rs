//! PyTorch checkpoints through the model API: the same index, gets, conversion, transforms
//! and CLI as safetensors, against what `torch.load` gave (tests/fixtures/torch/expected.json).

use std::path::{Path, PathBuf};
use std::process::Command;

use stload::Format;
use stload::{Dtype, Model, Options};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch")
}

fn expected(file: &str) -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json[file].as_object().unwrap().clone()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every tensor of `model` that `torch.load` listed for `file` has its dense bytes.
fn check_values(model: &Model, file: &str) -> usize {
    let want = expected(file);
    for (name, e) in &want {
        let t = model
            .get(name)
            .unwrap_or_else(|err| panic!("{file} {name}: {err}"));
        let shape: Vec<u64> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.shape(), shape.as_slice(), "{file} {name}");
        assert_eq!(
            t.data(),
            hex(e["hex"].as_str().unwrap()).as_slice(),
            "{file} {name}"
        );
        assert_eq!(
            t.is_mapped(),
            e["contiguous"].as_bool().unwrap(),
            "{file} {name}: zero-copy iff contiguous"
        );
        assert_eq!(model.info(name).unwrap().format, Format::PyTorch);
    }
    want.len()
}

#[test]
fn directories_open_with_ollamas_patterns() {
    for (dir, files) in [
        ("single", vec!["single/pytorch_model.bin"]),
        ("consolidated", vec!["consolidated/consolidated.00.pth"]),
        (
            "sharded",
            vec![
                "sharded/pytorch_model-00001-of-00002.bin",
                "sharded/pytorch_model-00002-of-00002.bin",
            ],
        ),
    ] {
        let model = Model::open_dir(fixtures().join(dir), &Options::default()).unwrap();
        let n: usize = files.iter().map(|f| check_values(&model, f)).sum();
        assert_eq!(model.len(), n, "{dir}");
    }
}

#[test]
fn explicit_files_of_every_dtype_and_view_kind() {
    for file in ["all_dtypes.pt", "views.pt", "protocol4.pt"] {
        let model = Model::open_files(&[fixtures().join(file)], &Options::default()).unwrap();
        check_values(&model, file);
    }
}

#[test]
fn conversion_composes_with_strided_views() {
    let model = Model::open_files(&[fixtures().join("views.pt")], &Options::default()).unwrap();
    for name in model.names() {
        let t = model.get(name).unwrap();
        if !matches!(t.dtype(), Dtype::F32 | Dtype::BF16 | Dtype::F16) {
            continue;
        }
        let mut want = vec![0u8; t.data().len() / t.dtype().byte_size().unwrap() * 8];
        stload::convert::convert(t.data(), t.dtype(), &mut want, Dtype::F64).unwrap();
        assert_eq!(
            model.get_as(name, Dtype::F64).unwrap().data(),
            want.as_slice(),
            "{name}"
        );
    }
}

#[test]
fn convert_turns_a_checkpoint_directory_into_safetensors() {
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("st");
    let status = Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(["convert", "--out"])
        .arg(&dst)
        .arg(fixtures().join("sharded"))
        .status()
        .unwrap();
    assert!(status.success());
    assert!(dst.join("model-00001-of-00002.safetensors").is_file());
    assert!(dst.join("model.safetensors.index.json").is_file());
    let model = Model::open_dir(&dst, &Options::default()).unwrap();
    let total = check_safetensors(&model, "sharded/pytorch_model-00001-of-00002.bin")
        + check_safetensors(&model, "sharded/pytorch_model-00002-of-00002.bin");
    assert_eq!(model.len(), total);
}

fn check_safetensors(model: &Model, file: &str) -> usize {
    let want = expected(file);
    for (name, e) in &want {
        assert_eq!(
            model.get(name).unwrap().data(),
            hex(e["hex"].as_str().unwrap()).as_slice(),
            "{name}"
        );
        assert_eq!(model.info(name).unwrap().format, Format::Safetensors);
    }
    want.len()
}
