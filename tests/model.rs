//! The index and zero-copy gets against files written by Python's safetensors.

mod common;

use std::path::PathBuf;

use common::{expected, fixtures};
use stload::{Dtype, Model, Options};

fn all_dtypes_model() -> Model {
    let dir = fixtures();
    let files = [
        dir.join("all_dtypes.safetensors"),
        dir.join("subbyte_f6.safetensors"),
    ];
    Model::open_files(&files, &Options::default()).expect("fixtures open")
}

#[test]
fn every_dtype_reads_back_the_bytes_python_wrote() {
    let model = all_dtypes_model();
    let want = expected("all_dtypes");
    assert_eq!(model.len(), want.len());
    let mut seen = std::collections::BTreeSet::new();
    for e in &want {
        let t = model.get(&e.name).unwrap();
        assert_eq!(t.dtype().name(), e.dtype, "{}", e.name);
        assert_eq!(t.shape(), e.shape.as_slice(), "{}", e.name);
        assert_eq!(t.data(), e.bytes.as_slice(), "{}", e.name);
        assert!(t.is_mapped(), "{}: native get must be zero-copy", e.name);
        let info = model.info(&e.name).unwrap();
        assert!(info.file.ends_with(&e.file), "{}", e.name);
        assert_eq!(info.nbytes, e.bytes.len() as u64);
        // The recorded offset really points at the tensor's bytes in the file.
        let file = std::fs::read(info.file).unwrap();
        let at = info.data_offset as usize;
        assert_eq!(&file[at..at + e.bytes.len()], e.bytes.as_slice());
        seen.insert(t.dtype());
    }
    assert_eq!(
        seen.len(),
        Dtype::ALL.iter().filter(|d| !d.is_block()).count(),
        "the fixtures cover every safetensors dtype"
    );
}

#[test]
fn names_are_sorted_and_metadata_is_read() {
    let model = all_dtypes_model();
    let names: Vec<&str> = model.names().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(model.name(0), Some(names[0]));
    assert_eq!(model.name(model.len()), None);
    assert_eq!(model.metadata("format"), Some("pt"));
    assert_eq!(model.metadata("note"), Some("grüße ✓"));
    assert_eq!(model.metadata("absent"), None);
}

#[test]
fn sharded_directory_follows_its_index() {
    let model = Model::open_dir(fixtures().join("sharded"), &Options::default()).unwrap();
    let want = expected("sharded");
    assert_eq!(model.len(), want.len());
    for e in &want {
        let t = model.get(&e.name).unwrap();
        assert_eq!(t.data(), e.bytes.as_slice(), "{}", e.name);
        assert!(model.info(&e.name).unwrap().file.ends_with(&e.file));
    }
}

#[test]
fn directory_without_index_opens_every_file_in_order() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["all_dtypes.safetensors", "subbyte_f6.safetensors"] {
        std::fs::copy(fixtures().join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("README.md"), "not a model").unwrap();
    let model = Model::open_dir(dir.path(), &Options::default()).unwrap();
    let files: Vec<PathBuf> = model.files().map(PathBuf::from).collect();
    assert_eq!(
        files,
        vec![
            dir.path().join("all_dtypes.safetensors"),
            dir.path().join("subbyte_f6.safetensors")
        ]
    );
    assert_eq!(model.len(), expected("all_dtypes").len());
}

#[test]
fn tensors_outlive_their_model_and_release() {
    let model = all_dtypes_model();
    let t = model.get("f32").unwrap();
    let before = t.data().to_vec();
    model.release_all();
    assert_eq!(t.data(), before.as_slice());
    // After release the index stays and a get maps again.
    assert_eq!(model.get("f32").unwrap().data(), before.as_slice());
    drop(model);
    assert_eq!(t.data(), before.as_slice());
}

#[test]
fn eight_threads_get_concurrently() {
    let model = all_dtypes_model();
    let want = expected("all_dtypes");
    std::thread::scope(|s| {
        for thread in 0..8 {
            let (model, want) = (&model, &want);
            s.spawn(move || {
                for round in 0..200 {
                    let e = &want[(thread * 7 + round) % want.len()];
                    let t = model.get(&e.name).unwrap();
                    assert_eq!(t.data(), e.bytes.as_slice());
                    if round % 50 == 0 {
                        model.release_all();
                    }
                }
            });
        }
    });
}

#[test]
fn missing_names_are_not_found() {
    let model = all_dtypes_model();
    let err = model.get("nope").unwrap_err();
    assert!(matches!(err, stload::Error::NotFound(_)));
    assert!(err.to_string().contains("\"nope\""));
}

#[test]
fn stored_dtype_get_is_zero_copy() {
    let model = all_dtypes_model();
    let t = model.get_as("bf16", Dtype::BF16).unwrap();
    assert!(t.is_mapped());
}

#[test]
fn prefetch_touches_all_or_named_tensors_and_can_stop() {
    let model = all_dtypes_model();
    let mut last = (0, 0);
    model
        .prefetch(None, |done, total| {
            last = (done, total);
            true
        })
        .unwrap();
    let stored: u64 = model.names().map(|n| model.info(n).unwrap().nbytes).sum();
    assert_eq!(last, (stored, stored));
    model
        .prefetch(Some(&["bf16", "f32"]), |_, total| total == 256 + 140)
        .unwrap();
    assert!(matches!(
        model.prefetch(None, |_, _| false),
        Err(stload::Error::Cancelled(_))
    ));
    assert!(matches!(
        model.prefetch(Some(&["nope"]), |_, _| true),
        Err(stload::Error::NotFound(_))
    ));
    let read = Model::open_files(&[fixtures().join("all_dtypes.safetensors")], &{
        let mut o = Options::default();
        o.read_mode = true;
        o
    })
    .unwrap();
    read.prefetch(None, |_, _| true).unwrap();
    // The open option prefetches in the background; values are the same.
    let background = Model::open_files(&[fixtures().join("all_dtypes.safetensors")], &{
        let mut o = Options::default();
        o.prefetch = true;
        o
    })
    .unwrap();
    assert_eq!(
        background.get("f32").unwrap().data(),
        model.get("f32").unwrap().data()
    );
}

#[test]
fn shapes_of_every_rank_round_trip_inline_or_on_the_heap() {
    // Ranks 0 (a scalar) to 8: six dimensions fit inline, seven and eight spill to the heap.
    let mut header = String::from("{");
    let mut offset = 0;
    for rank in 0..=8usize {
        let shape = vec![1u64; rank];
        header += &format!(
            "\"r{rank}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}},",
            offset + 4
        );
        offset += 4;
    }
    header.pop();
    header.push('}');
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..offset as u8).collect();
    let path = common::raw_file(dir.path(), "ranks.safetensors", &header, &data);
    let model = Model::open_files(&[&path], &Options::default()).unwrap();
    for rank in 0..=8usize {
        let name = format!("r{rank}");
        assert_eq!(
            model.info(&name).unwrap().shape,
            vec![1u64; rank].as_slice()
        );
        // Converted tensors carry the shape too, and outlive the model below.
        let t = model.get_as(&name, Dtype::F64).unwrap();
        assert_eq!(t.shape(), vec![1u64; rank].as_slice(), "{name}");
        assert_eq!(t.data().len(), 8);
    }
    let kept = model.get("r8").unwrap();
    drop(model);
    assert_eq!(kept.shape().len(), 8);
    assert_eq!(kept.data(), &data[32..36]);
}
