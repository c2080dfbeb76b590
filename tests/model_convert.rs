//! Converted gets, copy_to, the converted-tensor cache and load(dtype), against the values
//! numpy/ml_dtypes give for the same files.

mod common;

use common::{expected, fixtures};
use stload::{Dtype, Error, Model, Options};

fn model(options: &Options) -> Model {
    let dir = fixtures();
    let files = [
        dir.join("all_dtypes.safetensors"),
        dir.join("subbyte_f6.safetensors"),
    ];
    Model::open_files(&files, options).expect("fixtures open")
}

#[test]
fn converted_gets_equal_numpy_astype_for_every_source_dtype() {
    let m = model(&Options::default());
    let mut checked = 0;
    for e in expected("all_dtypes") {
        for (to, want) in &e.converted {
            let to = Dtype::from_name(to).unwrap();
            let t = m.get_as(&e.name, to).unwrap();
            assert_eq!(t.dtype(), to);
            assert_eq!(t.shape(), e.shape.as_slice());
            assert_eq!(t.data(), want.as_slice(), "{} -> {to}", e.name);
            let mut buf = vec![0u8; want.len()];
            m.get(&e.name)
                .unwrap()
                .copy_to(Some(to), &mut buf, 2)
                .unwrap();
            assert_eq!(&buf, want, "copy_to {} -> {to}", e.name);
            checked += 1;
        }
    }
    assert!(
        checked >= 4 * 19,
        "every convertible fixture was checked ({checked})"
    );
}

#[test]
fn cache_serves_the_same_memory_unless_turned_off() {
    let cached = model(&Options::default());
    let a = cached.get_as("bf16", Dtype::F32).unwrap();
    let b = cached.get_as("bf16", Dtype::F32).unwrap();
    assert_eq!(a.data().as_ptr(), b.data().as_ptr());
    cached.release_all();
    let c = cached.get_as("bf16", Dtype::F32).unwrap();
    assert_ne!(a.data().as_ptr(), c.data().as_ptr());
    assert_eq!(a.data(), c.data());

    let uncached = model(&{
        let mut o = Options::default();
        o.cache_converted = false;
        o
    });
    let a = uncached.get_as("bf16", Dtype::F32).unwrap();
    let b = uncached.get_as("bf16", Dtype::F32).unwrap();
    assert_ne!(a.data().as_ptr(), b.data().as_ptr());
    assert_eq!(a.data(), b.data());
}

#[test]
fn load_materialises_floats_and_serves_later_gets() {
    let m = model(&Options::default());
    let mut calls = Vec::new();
    m.load(Some(Dtype::F32), |done, total, name| {
        calls.push((done, total, name.to_string()));
        true
    })
    .unwrap();
    assert_eq!(calls.len(), m.len());
    assert_eq!(calls.last().map(|c| (c.0, c.1)), Some((m.len(), m.len())));
    // Served from the load: the same memory on every get.
    let a = m.get_as("f16", Dtype::F32).unwrap();
    assert!(!a.is_mapped());
    assert_eq!(
        a.data().as_ptr(),
        m.get_as("f16", Dtype::F32).unwrap().data().as_ptr()
    );
    // Integers stay as stored by a load, and native gets stay zero-copy.
    assert!(m.get("i64").unwrap().is_mapped());
    assert!(m.get("f16").unwrap().is_mapped());
}

#[test]
fn load_can_be_cancelled_by_progress() {
    let m = model(&Options::default());
    let err = m.load(Some(Dtype::F16), |done, _, _| done < 3).unwrap_err();
    assert!(matches!(err, Error::Cancelled(_)), "{err}");
}

#[test]
fn conversions_without_meaning_are_unsupported_naming_both_dtypes() {
    let m = model(&Options::default());
    let err = m.get_as("c64", Dtype::F32).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)));
    let text = err.to_string();
    assert!(
        text.contains("C64") && text.contains("F32") && text.contains("\"c64\""),
        "{text}"
    );
    let err = m.get_as("f32", Dtype::Bool).unwrap_err().to_string();
    assert!(err.contains("F32") && err.contains("BOOL"), "{err}");
}

#[test]
fn copy_to_checks_the_buffer_length() {
    let m = model(&Options::default());
    let t = m.get("bf16").unwrap();
    let mut small = vec![0u8; 10];
    let err = t.copy_to(Some(Dtype::F32), &mut small, 1).unwrap_err();
    assert!(matches!(err, Error::BufferSize(_)), "{err}");
    let mut same = vec![0u8; t.data().len()];
    t.copy_to(None, &mut same, 1).unwrap();
    assert_eq!(same, t.data());
}
