//! The dtype numbers exist twice: `dtype.rs` (the Rust enum) and the `STLOAD_DTYPE_*` constants
//! of the checked-in C header. Every constant must name the dtype of its number (in the
//! safetensors spelling), and every dtype must have its constant.

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
