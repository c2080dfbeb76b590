//! Stacking, splitting and slicing every kind of source — contiguous ranges, gathered ranges and
//! strided (non-contiguous PyTorch) views, from safetensors and torch files together — against
//! numpy's `stack`, row ranges and slicing (tests/python/stack_oracle.py), in mmap and read mode.

mod common;

use std::path::Path;
use std::process::Command;

use stload::{Dtype, Model, Options};
use stload::{SplitRule, StackRule};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn shape(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect()
}

/// Writes extra.safetensors and rules.json into a new directory.
fn oracle() -> (tempfile::TempDir, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(common::python())
        .arg(root.join("tests/python/stack_oracle.py"))
        .arg(root.join("tests/fixtures/torch/expected.json"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "stack_oracle.py failed");
    let text = std::fs::read_to_string(dir.path().join("rules.json")).unwrap();
    (dir, serde_json::from_str(&text).unwrap())
}

fn options(rules: &serde_json::Value, read_mode: bool) -> Options {
    let mut options = {
        let mut o = Options::default();
        o.read_mode = read_mode;
        o
    };
    for s in rules["stacks"].as_array().unwrap() {
        options.stacks.push(StackRule {
            names: s["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect(),
            into: s["into"].as_str().unwrap().to_string(),
        });
    }
    for s in rules["splits"].as_array().unwrap() {
        options.splits.push(SplitRule {
            name: s["name"].as_str().unwrap().to_string(),
            parts: s["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
                .collect(),
        });
    }
    options
}

#[test]
fn every_source_kind_stacks_splits_and_slices_like_numpy() {
    let (dir, rules) = oracle();
    let views = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch/views.pt");
    let files = [views, dir.path().join("extra.safetensors")];
    for read_mode in [false, true] {
        let model = Model::open_files(&files, &options(&rules, read_mode)).unwrap();
        let tensors = rules["tensors"].as_object().unwrap();
        let listed: Vec<&str> = model.names().collect();
        let want: Vec<&str> = tensors.keys().map(String::as_str).collect();
        assert_eq!(listed, want, "read_mode {read_mode}");
        for (name, e) in tensors {
            let ctx = format!("{name} (read_mode {read_mode})");
            let info = model.info(name).unwrap();
            assert_eq!(info.dtype.name(), e["dtype"].as_str().unwrap(), "{ctx}");
            assert_eq!(info.shape, shape(&e["shape"]).as_slice(), "{ctx}");
            let bytes = hex(e["hex"].as_str().unwrap());
            assert_eq!(info.nbytes, bytes.len() as u64, "{ctx}: nbytes");
            let t = model.get(name).unwrap();
            assert_eq!(t.shape(), info.shape, "{ctx}");
            assert_eq!(t.data(), bytes.as_slice(), "{ctx}: values");
            let half = model.get_as(name, Dtype::F16).unwrap();
            assert_eq!(
                half.data(),
                hex(e["f16"].as_str().unwrap()).as_slice(),
                "{ctx}: as f16"
            );
        }
        for s in rules["slices"].as_array().unwrap() {
            let name = s["name"].as_str().unwrap();
            let (axis, start, stop) = (
                s["axis"].as_u64().unwrap() as usize,
                s["start"].as_u64().unwrap(),
                s["stop"].as_u64().unwrap(),
            );
            let ctx = format!("{name}[axis {axis}: {start}..{stop}] (read_mode {read_mode})");
            let t = model.get_slice(name, axis, start, stop, None).unwrap();
            assert_eq!(t.shape(), shape(&s["shape"]).as_slice(), "{ctx}");
            assert_eq!(
                t.data(),
                hex(s["hex"].as_str().unwrap()).as_slice(),
                "{ctx}"
            );
            let half = model
                .get_slice(name, axis, start, stop, Some(Dtype::F16))
                .unwrap();
            assert_eq!(
                half.data(),
                hex(s["f16"].as_str().unwrap()).as_slice(),
                "{ctx}: f16"
            );
        }
    }
}
