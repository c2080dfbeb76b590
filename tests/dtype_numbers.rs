//! The dtype numbers exist twice: `dtype.rs` (the Rust enum) and the `STLOAD_DTYPE_*` constants
//! of the checked-in C header. Every constant must name the dtype of its number (in the
//! safetensors spelling), and every dtype must have its constant.

mod common;

use std::collections::BTreeMap;

use stload::Dtype;

/// `STLOAD_DTYPE_<NAME> <number>` of every `#define` in include/stload.h.
fn header_constants() -> BTreeMap<String, u32> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/stload.h");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("#define STLOAD_DTYPE_")?;
            let (name, value) = rest.split_once(char::is_whitespace)?;
            Some((name.to_string(), value.trim().parse().unwrap()))
        })
        .collect()
}

#[test]
fn every_header_constant_is_the_number_of_its_dtype() {
    let mut constants = header_constants();
    assert_eq!(constants.remove("NATIVE"), Some(0), "NATIVE is 0");
    assert_eq!(Dtype::from_code(0), None, "0 is no dtype");
    assert!(!constants.is_empty(), "no STLOAD_DTYPE_ constants found");
    for (name, &number) in &constants {
        let dtype = Dtype::from_code(number)
            .unwrap_or_else(|| panic!("STLOAD_DTYPE_{name} = {number} is no Rust dtype"));
        assert_eq!(dtype.name(), name, "STLOAD_DTYPE_{name} = {number}");
        assert_eq!(dtype.code(), number);
    }
    for dtype in Dtype::ALL {
        assert_eq!(
            constants.get(dtype.name()),
            Some(&dtype.code()),
            "{dtype:?} has no STLOAD_DTYPE_ constant of its number"
        );
    }
    assert_eq!(constants.len(), Dtype::ALL.len());
    assert_eq!(Dtype::from_code(Dtype::ALL.len() as u32 + 1), None);
}

/// The block types come after every element type, in GGML type number order, so adding them
/// renumbered nothing; the C size calls answer what `Dtype::block` does.
#[test]
fn block_types_are_appended_and_their_sizes_reach_c() {
    use stload::ffi::dtype::{
        stload_dtype_bits, stload_dtype_block_bytes, stload_dtype_block_size,
    };
    let first_block = Dtype::ALL.iter().position(|d| d.is_block()).unwrap();
    assert_eq!(Dtype::ALL[first_block - 1], Dtype::F6E3M2);
    assert!(Dtype::ALL[first_block..].iter().all(|d| d.is_block()));
    let numbers: Vec<u32> = Dtype::ALL[first_block..]
        .iter()
        .map(|d| d.ggml_type().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    for d in Dtype::ALL {
        let (values, bytes) = d.block();
        assert_eq!(stload_dtype_block_size(d.code()), values, "{d}");
        assert_eq!(stload_dtype_block_bytes(d.code()), bytes, "{d}");
        assert_eq!(stload_dtype_bits(d.code()) == 0, d.is_block(), "{d}");
    }
    assert_eq!(stload_dtype_block_size(0), 0, "NATIVE");
    assert_eq!(stload_dtype_block_bytes(9999), 0, "unknown");
}

/// Every type the `gguf` package knows is a dtype of the same GGML number, block size and
/// bytes per block, and every dtype with a GGML number is one the package knows.
#[test]
fn ggml_types_match_the_gguf_package() {
    let script =
        "import gguf\nfor t, (b, n) in gguf.GGML_QUANT_SIZES.items(): print(t.name, t.value, b, n)";
    let text = String::from_utf8(common::run_python(&["-c", script])).unwrap();
    let mut seen = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [name, number, values, bytes] = f[..] else {
            panic!("{line}")
        };
        let d = Dtype::from_ggml_type(number.parse().unwrap())
            .unwrap_or_else(|| panic!("{name} ({number}) has no dtype"));
        assert_eq!(d.name(), name);
        assert_eq!(
            d.block(),
            (values.parse().unwrap(), bytes.parse().unwrap()),
            "{name}"
        );
        seen += 1;
    }
    let with_number = Dtype::ALL
        .iter()
        .filter(|d| d.ggml_type().is_some())
        .count();
    assert_eq!(
        seen, with_number,
        "dtypes with a GGML number the package does not know"
    );
}
