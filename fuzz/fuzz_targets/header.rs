//! The header parser on arbitrary bytes: the first 8 bytes (little-endian) are the data length
//! the header must describe, the rest is the JSON. It must never panic, and whatever it accepts
//! must obey the format's rules, checked here independently of the parser.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (len_bytes, json) = input.split_at(input.len().min(8));
    let mut le = [0u8; 8];
    le[..len_bytes.len()].copy_from_slice(len_bytes);
    let data_len = u64::from_le_bytes(le);
    let Ok(mut header) = stload::__private::header::parse("fuzz.safetensors", json, data_len) else {
        return;
    };
    // The parser lists tensors by name; the format's rules are about offset order.
    header.tensors.sort_by_key(|t| (t.start, t.end));
    // Accepted: the tensors tile [0, data_len) in order, each exactly shape × dtype bytes.
    let mut next = 0u64;
    let mut names: Vec<&str> = Vec::with_capacity(header.tensors.len());
    for t in &header.tensors {
        assert_eq!(
            t.start, next,
            "tensor {:?} does not start where the last ended",
            t.name
        );
        assert!(t.end >= t.start);
        let elements = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let bits = elements.and_then(|e| e.checked_mul(u64::from(t.dtype.bits())));
        assert_eq!(
            bits,
            Some((t.end - t.start) * 8),
            "tensor {:?} size",
            t.name
        );
        assert!(!t.name.contains('\0'));
        names.push(&t.name);
        next = t.end;
    }
    assert_eq!(next, data_len, "accepted header leaves data uncovered");
    names.sort_unstable();
    assert!(names.windows(2).all(|w| w[0] != w[1]), "duplicate accepted");
});
