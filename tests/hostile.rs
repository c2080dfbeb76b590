//! Every validation rule, each with its own crafted bad file: refused with a clear message that
//! names the file (and the tensor where there is one), never a crash.

mod common;

use std::path::Path;

use common::raw_file;
use stload::{Error, Model, Options};

const OK_TENSOR: &str = r#""a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#;

fn open_one(path: &Path) -> Error {
    Model::open_files(&[path], &Options::default()).expect_err("must be refused")
}

/// (file name, header JSON, data bytes, expected message part, expected tensor in message)
type Case = (
    &'static str,
    String,
    Vec<u8>,
    &'static str,
    Option<&'static str>,
);

fn header_cases() -> Vec<Case> {
    let h = |s: &str| s.to_string();
    vec![
        (
            "not_utf8",
            String::from_utf8_lossy(b"{\"a\xc3\x28\":1}").into_owned(),
            vec![],
            "valid safetensors JSON",
            None,
        ),
        (
            "not_json",
            h("{\"a\":"),
            vec![],
            "valid safetensors JSON",
            None,
        ),
        (
            "json_array",
            h("[1,2,3]"),
            vec![],
            "valid safetensors JSON",
            None,
        ),
        (
            "trailing_garbage",
            format!("{{{OK_TENSOR}}} x"),
            vec![0; 8],
            "valid safetensors JSON",
            None,
        ),
        (
            "unknown_dtype",
            h(r#"{"w":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,8]}}"#),
            vec![0; 8],
            "unknown dtype \"Q4_K\"",
            Some("w"),
        ),
        (
            "lowercase_dtype",
            h(r#"{"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}"#),
            vec![0; 8],
            "unknown dtype",
            Some("w"),
        ),
        (
            "negative_dim",
            h(r#"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#),
            vec![0; 8],
            "invalid value",
            Some("w"),
        ),
        (
            "shape_overflow",
            h(r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,8]}}"#),
            vec![0; 8],
            "overflows",
            Some("w"),
        ),
        (
            "bytes_overflow",
            h(r#"{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}"#),
            vec![0; 8],
            "overflows",
            Some("w"),
        ),
        (
            "end_before_start",
            h(r#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#),
            vec![0; 8],
            "end before they start",
            Some("w"),
        ),
        (
            "gap",
            h(r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#),
            vec![0; 8],
            "a gap",
            Some("w"),
        ),
        (
            "overlap",
            h(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            ),
            vec![0; 8],
            "an overlap",
            Some("w"),
        ),
        (
            "past_end",
            h(r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#),
            vec![0; 8],
            "end past the 8 data bytes",
            Some("w"),
        ),
        (
            "size_mismatch",
            h(r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#),
            vec![0; 8],
            "needs 12",
            Some("w"),
        ),
        (
            "uncovered_tail",
            format!("{{{OK_TENSOR}}}"),
            vec![0; 12],
            "cover 8 of the 12 data bytes",
            None,
        ),
        (
            "f4_half_byte",
            h(r#"{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#),
            vec![0; 2],
            "whole bytes",
            Some("w"),
        ),
        (
            "missing_offsets",
            h(r#"{"w":{"dtype":"F32","shape":[2]}}"#),
            vec![0; 8],
            "missing field `data_offsets`",
            Some("w"),
        ),
        (
            "three_offsets",
            h(r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}"#),
            vec![0; 8],
            "invalid length 3, expected data_offsets as two numbers",
            Some("w"),
        ),
        (
            "tensor_not_object",
            h(r#"{"w":7}"#),
            vec![],
            "invalid type",
            Some("w"),
        ),
        (
            "duplicate_name",
            format!(
                "{{{OK_TENSOR},{}}}",
                r#""a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}"#
            ),
            vec![0; 16],
            "appears twice",
            Some("a"),
        ),
        (
            "nul_in_name",
            h(r#"{"a\u0000b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#),
            vec![0; 8],
            "NUL byte",
            Some("a\\0b"),
        ),
        (
            "metadata_not_strings",
            format!("{{\"__metadata__\":{{\"n\":3}},{OK_TENSOR}}}"),
            vec![0; 8],
            "strings to strings",
            None,
        ),
        (
            "metadata_twice",
            format!("{{\"__metadata__\":{{}},\"__metadata__\":{{}},{OK_TENSOR}}}"),
            vec![0; 8],
            "__metadata__ appears twice",
            None,
        ),
    ]
}

#[test]
fn each_bad_header_is_refused_with_file_tensor_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let cases = header_cases();
    assert!(cases.len() >= 20);
    for (name, header, data, rule, tensor) in cases {
        let path = raw_file(dir.path(), &format!("{name}.safetensors"), &header, &data);
        let message = open_one(&path).to_string();
        assert!(
            message.contains(&path.display().to_string()),
            "{name}: file not named: {message}"
        );
        assert!(message.contains(rule), "{name}: rule not named: {message}");
        if let Some(t) = tensor {
            assert!(
                message.contains(&format!("\"{t}\"")),
                "{name}: tensor not named: {message}"
            );
        }
    }
}

#[test]
fn bad_length_prefixes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (
            write("empty.safetensors", b""),
            "too small for the 8-byte header length",
        ),
        (
            write("seven.safetensors", &[1, 0, 0, 0, 0, 0, 0]),
            "too small",
        ),
        (
            write("huge.safetensors", &200_000_000u64.to_le_bytes()),
            "exceeds the limit of 100000000 bytes",
        ),
        (
            write("max.safetensors", &u64::MAX.to_le_bytes()),
            "exceeds the limit",
        ),
        (
            write(
                "short.safetensors",
                &[&64u64.to_le_bytes()[..], b"{}"].concat(),
            ),
            "runs past the end of the 10-byte file",
        ),
    ];
    for (path, rule) in cases {
        let message = open_one(&path).to_string();
        assert!(
            message.contains(&path.display().to_string()) && message.contains(rule),
            "{message}"
        );
    }
}

#[test]
fn header_limit_comes_from_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = raw_file(
        dir.path(),
        "ok.safetensors",
        &format!("{{{OK_TENSOR}}}"),
        &[0; 8],
    );
    let options = {
        let mut o = Options::default();
        o.max_header_size = 16;
        o
    };
    let err = Model::open_files(&[&path], &options).unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err}");
    assert!(err.to_string().contains("exceeds the limit of 16 bytes"));
    assert!(Model::open_files(&[&path], &Options::default()).is_ok());
}

#[test]
fn same_name_in_two_files_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let a = raw_file(
        dir.path(),
        "a.safetensors",
        &format!("{{{OK_TENSOR}}}"),
        &[0; 8],
    );
    let b = raw_file(
        dir.path(),
        "b.safetensors",
        &format!("{{{OK_TENSOR}}}"),
        &[0; 8],
    );
    let err = Model::open_files(&[&a, &b], &Options::default()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Duplicate(_)));
    assert!(
        message.contains("a.safetensors")
            && message.contains("b.safetensors")
            && message.contains("\"a\""),
        "{message}"
    );
}

fn indexed_dir(index: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    raw_file(
        dir.path(),
        "m-1.safetensors",
        &format!("{{{OK_TENSOR}}}"),
        &[0; 8],
    );
    std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
    dir
}

#[test]
fn index_json_must_be_valid_and_agree_with_shards() {
    let cases = [
        (
            r#"{"weight_map":{"a":"../m-1.safetensors"}}"#,
            "not a file name inside the model directory",
        ),
        (
            r#"{"weight_map":{"a":"/etc/passwd"}}"#,
            "not a file name inside",
        ),
        (r#"{"weight_map": 5}"#, "not a valid index"),
        (r#"not json"#, "not a valid index"),
        (
            r#"{"weight_map":{"a":"m-1.safetensors","b":"m-1.safetensors"}}"#,
            "\"b\": listed in shard \"m-1.safetensors\" but that file's header does not have it",
        ),
        (r#"{"weight_map":{}}"#, "lists no tensors"),
        (
            r#"{"weight_map":{"x":"m-1.safetensors"}}"#,
            "\"a\": tensor is missing from the weight_map",
        ),
        (
            r#"{"weight_map":{"a":"m-2.safetensors"}}"#,
            "m-2.safetensors: cannot open",
        ),
    ];
    for (index, rule) in cases {
        let dir = indexed_dir(index);
        let err = Model::open_dir(dir.path(), &Options::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(rule), "{index}: {err}");
    }
}

#[test]
fn directory_problems_are_clear() {
    let empty = tempfile::tempdir().unwrap();
    let err = Model::open_dir(empty.path(), &Options::default()).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)) && err.to_string().contains("no *.safetensors"));
    let err = Model::open_dir(empty.path().join("absent"), &Options::default()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    let none: [&str; 0] = [];
    assert!(matches!(
        Model::open_files(&none, &Options::default()),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_file_truncated_after_open_is_refused_at_get() {
    let dir = tempfile::tempdir().unwrap();
    let path = raw_file(
        dir.path(),
        "t.safetensors",
        &format!("{{{OK_TENSOR}}}"),
        &[0; 8],
    );
    let model = Model::open_files(&[&path], &Options::default()).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 4)
        .unwrap();
    let err = model.get("a").unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("changed since open"),
        "{err}"
    );
}
