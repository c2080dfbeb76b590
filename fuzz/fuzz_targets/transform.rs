//! Architecture transforms from arbitrary `config.json` text and an arbitrary safetensors file,
//! plus user split and stack rules: nothing may panic or hang, and every tensor listed must
//! satisfy the shape invariant `product(shape) × dtype size == nbytes` and load with exactly
//! those bytes (as stored and sliced).
//!
//! Input layout: byte 0 picks the architecture and rules, bytes 1..3 (little-endian) the length
//! of the config.json text that follows; the rest is the safetensors file.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stload::{SplitRule, StackRule};
use stload::{Model, Options};

/// One scratch directory per fuzzing process, rewritten for each input.
fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("scratch dir"))
        .path()
}

const ARCHS: [Option<&str>; 4] = [None, Some("llama"), Some("mixtral"), Some("phi3")];

fn invariant(info: &stload::TensorInfo<'_>) {
    let elements = info.shape.iter().try_fold(1u64, |a, &n| a.checked_mul(n));
    let bits = elements.and_then(|n| n.checked_mul(u64::from(info.dtype.bits())));
    assert_eq!(
        bits,
        info.nbytes.checked_mul(8),
        "{}: shape {:?} of {} with {} bytes",
        info.name,
        info.shape,
        info.dtype,
        info.nbytes
    );
}

fuzz_target!(|input: &[u8]| {
    let [pick, lo, hi, rest @ ..] = input else {
        return;
    };
    let config_len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
    let (config, weights) = rest.split_at(config_len);
    let dir = scratch();
    std::fs::write(dir.join("config.json"), config).expect("write config");
    std::fs::write(dir.join("model.safetensors"), weights).expect("write weights");
    let mut options = { let mut o = Options::default(); o.threads = 1; o.arch = ARCHS[usize::from(pick & 3)].map(str::to_string); o };
    // Rules over the file's own names (when it opens plainly), so they can apply.
    if pick & 12 != 0 {
        if let Ok(plain) = Model::open_dir(dir, &Options::default()) {
            let names: Vec<String> = plain.names().map(str::to_owned).collect();
            if pick & 4 != 0 && names.len() >= 2 {
                options.stacks.push(StackRule {
                    names: names[..2].to_vec(),
                    into: "stacked".into(),
                });
            }
            let last = names.len().checked_sub(1).and_then(|i| plain.info_at(i));
            if let (true, Some(info)) = (pick & 8 != 0, last) {
                if let Some(&rows) = info.shape.first() {
                    let cut = u64::from(pick >> 4).min(rows);
                    options.splits.push(SplitRule {
                        name: info.name.to_string(),
                        parts: vec![("head".into(), cut), ("tail".into(), rows - cut)],
                    });
                }
            }
        }
    }
    let Ok(model) = Model::open_dir(dir, &options) else {
        return;
    };
    for info in model.infos() {
        invariant(&info);
    }
    let names: Vec<String> = model.names().map(str::to_owned).collect();
    for name in &names {
        let info = model.info(name).expect("listed name has info");
        let t = model.get(name).expect("a listed tensor loads");
        assert_eq!(t.data().len() as u64, info.nbytes);
        for axis in 0..info.shape.len() {
            let stop = info.shape[axis].min(1);
            if let Ok(s) = model.get_slice(name, axis, 0, stop, None) {
                let elements: u64 = s.shape().iter().product();
                let bits = elements * u64::from(info.dtype.bits());
                assert_eq!(s.data().len() as u64 * 8, bits, "{name} slice axis {axis}");
            }
        }
    }
});
