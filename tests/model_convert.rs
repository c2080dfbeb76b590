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

/// A buffer of `len` bytes whose start is a multiple of `alignment`, inside `storage`.
fn aligned(storage: &mut Vec<u8>, len: usize, alignment: usize) -> &mut [u8] {
    storage.resize(len + alignment, 0xAA);
    let skip = storage.as_ptr().align_offset(alignment);
    &mut storage[skip..skip + len]
}

#[test]
fn load_into_writes_every_tensor_where_the_layout_says_as_get_as_gives_it() {
    let m = model(&Options::default());
    for dtype in [None, Some(Dtype::F32), Some(Dtype::F16), Some(Dtype::BF16)] {
        for alignment in [1u64, 32, 4096] {
            let layout = m.arena_layout(dtype, alignment).unwrap();
            assert_eq!(layout.slots.len(), m.len());
            let mut storage = Vec::new();
            let buf = aligned(&mut storage, layout.size as usize, alignment as usize);
            let mut calls = 0;
            let got = m
                .load_into(dtype, alignment, buf, |done, total, _| {
                    calls += 1;
                    assert_eq!((done, total), (calls, m.len()));
                    true
                })
                .unwrap();
            assert_eq!(got, layout);
            assert_eq!(calls, m.len());
            let mut end = 0;
            for (name, slot) in m.names().zip(&layout.slots) {
                // Packed in name order, each at a multiple of the alignment.
                assert_eq!(slot.offset % alignment, 0, "{name}");
                assert!(
                    slot.offset >= end && slot.offset < end + alignment.max(1),
                    "{name}"
                );
                end = slot.offset + slot.nbytes;
                let stored = m.info(name).unwrap().dtype;
                let want = if slot.dtype == stored {
                    m.get(name).unwrap()
                } else {
                    m.get_as(name, slot.dtype).unwrap()
                };
                let at = &buf[slot.offset as usize..end as usize];
                assert_eq!(at, want.data(), "{name} as {} ({dtype:?})", slot.dtype);
            }
            assert_eq!(end, layout.size);
            // The whole-model rule of load: integers stay as stored.
            let i64_slot = layout.slots[m.names().position(|n| n == "i64").unwrap()];
            assert_eq!(i64_slot.dtype, Dtype::I64);
        }
    }
}

#[test]
fn load_into_refuses_a_bad_buffer_or_alignment_and_takes_no_memory_of_its_own() {
    let mut small = Options::default();
    small.max_load_bytes = 1;
    let m = model(&small);
    let layout = m.arena_layout(Some(Dtype::F32), 64).unwrap();
    let mut storage = Vec::new();
    let len = layout.size as usize;
    // The caller's buffer is not counted against max_load_bytes (a load would be refused).
    assert!(matches!(
        m.load(Some(Dtype::F32), |_, _, _| true),
        Err(Error::Limit(_))
    ));
    m.load_into(
        Some(Dtype::F32),
        64,
        aligned(&mut storage, len, 64),
        |_, _, _| true,
    )
    .unwrap();
    let e = m
        .load_into(
            Some(Dtype::F32),
            64,
            aligned(&mut storage, len - 1, 64),
            |_, _, _| true,
        )
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains(&format!("needs {len}")), "{e}");
    let buf = aligned(&mut storage, len + 1, 64);
    let e = m
        .load_into(Some(Dtype::F32), 64, &mut buf[1..], |_, _, _| true)
        .unwrap_err();
    assert!(
        e.to_string().contains("not a multiple of its alignment 64"),
        "{e}"
    );
    let e = m.arena_layout(Some(Dtype::F32), 48).unwrap_err();
    assert!(e.to_string().contains("48 is not a power of two"), "{e}");
    let e = m.arena_layout(Some(Dtype::I32), 64).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    let e = m
        .load_into(
            Some(Dtype::F32),
            64,
            aligned(&mut storage, len, 64),
            |done, _, _| done < 2,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Cancelled(_)), "{e}");
}
