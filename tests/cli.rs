//! The `stload` command: inspect, verify and convert, checked with Python's safetensors.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{fixtures, python};

fn stload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(args)
        .output()
        .expect("run stload")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn check_with_python(group: &str, dtype: &str, files: &[&Path]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_converted.py");
    let out = Command::new(python())
        .arg(script)
        .arg(fixtures().join("expected.json"))
        .args([group, dtype])
        .args(files)
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn inspect_without_a_path_shows_the_builtin_sample() {
    let out = stload(&["inspect"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("embed.weight") && shown.contains("BF16") && shown.contains("[4, 8]"),
        "{shown}"
    );
    let json = stload(&["inspect", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["tensors"].as_array().unwrap().len(), 6);
    assert_eq!(v["metadata"]["format"], "pt");
    let first = &v["tensors"][0];
    for key in ["name", "dtype", "shape", "nbytes", "file", "data_offset"] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn verify_accepts_good_files_and_refuses_bad_ones() {
    let good = fixtures().join("all_dtypes.safetensors");
    let out = stload(&["verify", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = tempfile::tempdir().unwrap();
    let bad = common::raw_file(
        dir.path(),
        "bad.safetensors",
        r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    let out = stload(&["verify", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let shown = text(&out);
    assert!(
        shown.contains("bad.safetensors") && shown.contains("\"w\"") && shown.contains("needs 12"),
        "{shown}"
    );
}

#[test]
fn convert_a_file_to_each_float_dtype() {
    let src = fixtures().join("all_dtypes.safetensors");
    let dir = tempfile::tempdir().unwrap();
    for dtype in ["F32", "F16", "BF16"] {
        let out_path = dir.path().join(format!("{dtype}.safetensors"));
        let out = stload(&[
            "convert",
            src.to_str().unwrap(),
            "--dtype",
            dtype,
            "--out",
            out_path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        check_with_python("all_dtypes:all_dtypes.safetensors", dtype, &[&out_path]);
    }
}

#[test]
fn convert_a_sharded_directory_keeps_shards_and_index() {
    let src = fixtures().join("sharded");
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out");
    let out = stload(&[
        "convert",
        src.to_str().unwrap(),
        "--dtype",
        "f32",
        "--out",
        dst.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let shards = [
        dst.join("model-00001-of-00002.safetensors"),
        dst.join("model-00002-of-00002.safetensors"),
    ];
    check_with_python("sharded", "F32", &[&shards[0], &shards[1]]);
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dst.join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        index["weight_map"]["lm_head.weight"],
        "model-00002-of-00002.safetensors"
    );
    assert_eq!(index["metadata"]["total_size"], 5 * 16 * 4 + 8 * 4);
    // The output reopens as a directory through its index.
    assert!(stload(&["verify", dst.to_str().unwrap()]).status.success());
}

#[test]
fn convert_refuses_unknown_dtypes() {
    let src = fixtures().join("all_dtypes.safetensors");
    let out = stload(&[
        "convert",
        src.to_str().unwrap(),
        "--dtype",
        "f12",
        "--out",
        "/dev/null/x",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("unknown dtype \"f12\""));
}
