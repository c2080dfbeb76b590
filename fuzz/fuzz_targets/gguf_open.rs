//! A GGUF file from arbitrary bytes, opened as a model the way an engine opens one: open,
//! list, metadata, info, `get` as stored (the blocks, zero-copy), `get_as` F32 (dequantised),
//! a slice of rows, `verify`. Nothing may panic, hang or allocate more than a bounded multiple
//! of the input, and every tensor handed out must have exactly the bytes its shape needs.
//!
//! The seeds (fuzz/corpus/gguf_open/seed-*) are tiny files the `gguf` package wrote: float and
//! integer types, legacy and K-quant blocks, IQ and ternary blocks, one row each, and one with
//! string, float and nested arrays and a 64-byte `general.alignment`.

#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stload::{Dtype, Model, Options};

/// One scratch file per fuzzing process, rewritten for each input (no model outlives a run).
fn scratch() -> &'static tempfile::TempPath {
    static PATH: OnceLock<tempfile::TempPath> = OnceLock::new();
    PATH.get_or_init(|| {
        tempfile::Builder::new()
            .suffix(".gguf")
            .tempfile()
            .expect("scratch file")
            .into_temp_path()
    })
}

fuzz_target!(|input: &[u8]| {
    let path = scratch();
    let mut f = std::fs::File::create(path).expect("rewrite scratch file");
    f.write_all(input).expect("write scratch file");
    drop(f);
    let mut options = Options::default();
    options.threads = 1;
    let Ok(model) = Model::open_files(&[path], &options) else {
        return;
    };
    for _ in model.metadata_pairs() {}
    model.verify().expect("a model that opened verifies");
    let names: Vec<String> = model.names().map(str::to_owned).collect();
    for name in &names {
        let info = model.info(name).expect("listed name has info");
        let (dtype, nbytes, shape) = (info.dtype, info.nbytes, info.shape.to_vec());
        let elements = shape.iter().try_fold(1u64, |a, &n| a.checked_mul(n));
        assert_eq!(
            elements.and_then(|n| dtype.bytes_for(n)),
            Some(nbytes),
            "{name}: {dtype} shape {shape:?}"
        );
        let t = model
            .get(name)
            .expect("a listed tensor of a valid file loads");
        assert_eq!(t.data().len() as u64, nbytes);
        assert_eq!(t.dtype(), dtype);
        match model.get_as(name, Dtype::F32) {
            Ok(c) => assert_eq!(c.data().len() as u64, elements.unwrap_or(0) * 4, "{name}"),
            Err(e) => assert!(matches!(e, stload::Error::Unsupported(_)), "{name}: {e}"),
        }
        // The first row of each axis, as stored and as F32: refused (whole blocks only) or
        // exactly the bytes the sliced shape needs.
        for axis in 0..shape.len() {
            for to in [None, Some(Dtype::F32)] {
                let Ok(s) = model.get_slice(name, axis, 0, shape[axis].min(1), to) else {
                    continue;
                };
                let want = s.shape().iter().try_fold(1u64, |a, &n| a.checked_mul(n));
                let want = want.and_then(|n| s.dtype().bytes_for(n));
                assert_eq!(Some(s.data().len() as u64), want, "{name} axis {axis}");
            }
        }
    }
});
