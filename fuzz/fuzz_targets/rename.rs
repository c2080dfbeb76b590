//! Rename pairs on arbitrary bytes, checked against a plain model of Go's `strings.Replacer`:
//! the input is split on 0xFF into strings; the last is the name, the ones before it are
//! `old, new, ...` pairs (an odd count must be refused). Never a panic, and the result must
//! equal the model's.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stload::Replacer;

/// The definition, written independently: scan left to right; at each position the first pair
/// (in argument order) whose old string starts there is replaced and the scan jumps past it; an
/// empty old string matches at every position, including the end, except right after an empty
/// match.
fn model(pairs: &[(Vec<u8>, Vec<u8>)], s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut after_empty = false;
    loop {
        let hit = pairs
            .iter()
            .find(|(old, _)| s[i..].starts_with(old) && !(old.is_empty() && after_empty));
        match hit {
            Some((old, new)) => {
                out.extend_from_slice(new);
                i += old.len();
                after_empty = old.is_empty();
            }
            None if i == s.len() => break,
            None => {
                out.push(s[i]);
                i += 1;
                after_empty = false;
            }
        }
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let mut parts: Vec<&[u8]> = input.split(|&b| b == 0xFF).collect();
    let name = parts.pop().unwrap_or_default();
    // Pair strings must be UTF-8 (they are Rust strings); lossy conversion keeps every input.
    let strings: Vec<String> = parts
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let Ok(replacer) = Replacer::from_flat(&strings) else {
        assert!(strings.len() % 2 == 1, "an even list was refused");
        return;
    };
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = replacer
        .pairs()
        .iter()
        .map(|(o, n)| (o.as_bytes().to_vec(), n.as_bytes().to_vec()))
        .collect();
    let got = replacer.replace_bytes(name);
    assert_eq!(got, model(&pairs, name), "pairs {pairs:?} on {name:?}");
    if let Ok(text) = std::str::from_utf8(name) {
        match replacer.replace(text) {
            Ok(renamed) => assert_eq!(renamed.as_bytes(), &got[..]),
            Err(_) => assert!(std::str::from_utf8(&got).is_err()),
        }
    }
});
