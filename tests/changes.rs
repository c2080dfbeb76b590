//! Files that change under an open model: truncated, rewritten, replaced or deleted after open,
//! in mmap mode and in read mode; and the resource limits of the options.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use stload::{Dtype, Error, Model, Options};

const HEADER: &str = r#"{"a":{"dtype":"F32","shape":[1024],"data_offsets":[0,4096]},"b":{"dtype":"BF16","shape":[2048],"data_offsets":[4096,8192]}}"#;

fn model_file(dir: &Path) -> PathBuf {
    let data: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    common::raw_file(dir, "m.safetensors", HEADER, &data)
}

fn modes() -> [Options; 2] {
    let strict = {
        let mut o = Options::default();
        o.check_interval = Duration::ZERO;
        o
    };
    [strict.clone(), {
        let mut o = strict;
        o.read_mode = true;
        o
    }]
}

fn assert_changed(err: Error) {
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("changed since open"), "{err}");
}

#[test]
fn truncation_after_open_is_refused_in_both_modes() {
    for options in modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = model_file(dir.path());
        let model = Model::open_files(&[&path], &options).unwrap();
        let before = model.get("a").unwrap().data().to_vec();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(100)
            .unwrap();
        assert_changed(model.get("b").unwrap_err());
        assert_changed(model.get_as("b", Dtype::F32).unwrap_err());
        assert_eq!(before.len(), 4096);
    }
}

#[test]
fn rewrite_in_place_is_refused_in_both_modes() {
    for options in modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = model_file(dir.path());
        let model = Model::open_files(&[&path], &options).unwrap();
        model.get("a").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert_changed(model.get("a").unwrap_err());
    }
}

#[test]
fn replacement_and_deletion_are_refused_in_both_modes() {
    for options in modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = model_file(dir.path());
        let model = Model::open_files(&[&path], &options).unwrap();
        let other = dir.path().join("other.safetensors");
        std::fs::copy(&path, &other).unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_changed(model.get("a").unwrap_err());
        std::fs::remove_file(&path).unwrap();
        assert_changed(model.get("a").unwrap_err());
    }
}

#[test]
fn read_mode_serves_the_same_values_as_mmap() {
    let dir = tempfile::tempdir().unwrap();
    let path = model_file(dir.path());
    let mapped = Model::open_files(&[&path], &Options::default()).unwrap();
    let read = Model::open_files(&[&path], &{
        let mut o = Options::default();
        o.read_mode = true;
        o
    })
    .unwrap();
    for name in ["a", "b"] {
        let (m, r) = (mapped.get(name).unwrap(), read.get(name).unwrap());
        assert!(m.is_mapped() && !r.is_mapped());
        assert_eq!(m.data(), r.data());
        assert_eq!(
            mapped.get_as(name, Dtype::F64).unwrap().data(),
            read.get_as(name, Dtype::F64).unwrap().data()
        );
    }
    read.load(Some(Dtype::F32), |_, _, _| true).unwrap();
    assert_eq!(
        read.get_as("b", Dtype::F32).unwrap().data(),
        mapped.get_as("b", Dtype::F32).unwrap().data()
    );
}

#[test]
fn limits_are_enforced_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = model_file(dir.path());
    let err = Model::open_files(&[&path], &{
        let mut o = Options::default();
        o.max_tensors = 1;
        o
    })
    .unwrap_err();
    assert!(
        matches!(err, Error::Limit(_))
            && err.to_string().contains("2 tensors, over the limit of 1"),
        "{err}"
    );
    let model = Model::open_files(&[&path], &{
        let mut o = Options::default();
        o.max_load_bytes = 8191;
        o
    })
    .unwrap();
    // F32 load: "a" stays zero-copy, "b" (2048 BF16) becomes 8192 new bytes.
    let err = model.load(Some(Dtype::F32), |_, _, _| true).unwrap_err();
    assert!(
        matches!(err, Error::Limit(_)) && err.to_string().contains("8192 bytes"),
        "{err}"
    );
    model.load(None, |_, _, _| true).unwrap();
}
