//! A whole file from arbitrary bytes, through the public API an engine uses: open, list, info,
//! get as stored, get converted to every float dtype, copy_to, release_all, get again.
//! Nothing may panic, and every tensor handed out must have exactly the bytes its shape needs.

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
            .suffix(".safetensors")
            .tempfile()
            .expect("scratch file")
            .into_temp_path()
    })
}

const TARGETS: [Dtype; 4] = [Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::F64];

fuzz_target!(|input: &[u8]| {
    let path = scratch();
    let mut f = std::fs::File::create(path).expect("rewrite scratch file");
    f.write_all(input).expect("write scratch file");
    drop(f);
    // One thread keeps runs reproducible; a rename that deletes "x" makes two names collide
    // when they differ only by it, exercising the duplicate-after-rename refusal.
    let options = { let mut o = Options::default(); o.threads = 1; o.rename = stload::Replacer::new(vec![("x".into(), String::new())]); o };
    let Ok(model) = Model::open_files(&[path], &options) else {
        return;
    };
    let names: Vec<String> = model.names().map(str::to_owned).collect();
    for _ in model.metadata_pairs() {}
    for name in &names {
        let info = model.info(name).expect("listed name has info");
        let (dtype, nbytes) = (info.dtype, info.nbytes);
        // The shape invariant, in overflow-checked arithmetic.
        let elements = info.shape.iter().try_fold(1u64, |a, &n| a.checked_mul(n));
        let bits = elements.and_then(|n| n.checked_mul(u64::from(dtype.bits())));
        assert_eq!(bits, nbytes.checked_mul(8), "{name}: shape {:?}", info.shape);
        let t = model
            .get(name)
            .expect("a listed tensor of a valid file loads");
        assert_eq!(t.data().len() as u64, nbytes);
        assert_eq!(t.dtype(), dtype);
        let mut copy = vec![0u8; t.data().len()];
        t.copy_to(None, &mut copy, 1).expect("copy as stored");
        assert_eq!(copy, t.data());
        for to in TARGETS {
            match model.get_as(name, to) {
                Ok(c) => {
                    let size = to.byte_size().expect("float targets have a byte size");
                    assert_eq!(c.data().len() as u64, t.elements() * size as u64);
                    let mut dst = vec![0u8; c.data().len()];
                    // copy_to may refuse (sub-byte sources); it must not panic or mis-size.
                    let _ = t.copy_to(Some(to), &mut dst, 1);
                }
                Err(e) => assert!(
                    matches!(e, stload::Error::Unsupported(_)),
                    "{name} as {to}: {e}"
                ),
            }
        }
    }
    model.release_all();
    if let Some(name) = names.first() {
        model.get(name).expect("get after release_all maps again");
    }
});
