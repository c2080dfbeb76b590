//! Differential check against the reference: on tens of thousands of generated and mutated
//! files, stload accepts exactly what the Rust `safetensors` crate accepts, except the
//! deliberate differences listed in [`DELIBERATE`] (and in docs/SECURITY.md), which are all stricter.
//!
//! Valid files with random dtypes, shapes, offsets, metadata and key order are generated, then
//! mutated at the JSON level (offset tweaks, dtype swaps, shape changes, duplicate keys, wrong
//! types, odd names) and at the byte level (length prefix, padding, truncation, byte flips,
//! data length). The bulk goes through the same steps as `ShardFile::open` in memory; every
//! eighth case is also written to a file and opened with `Model::open_files`, which must agree.
//!
//! Deterministic: the seed is fixed. `STLOAD_DIFF_SEED` and `STLOAD_DIFF_CASES` run other or
//! more cases (e.g. `STLOAD_DIFF_CASES=1000000 cargo test --release --test differential`).

use std::collections::BTreeMap;

use stload::__private::header::{self, MAX_HEADER_SIZE};
use stload::{Model, Options};

/// A disagreement stload is allowed: the reference accepts, stload refuses with a message
/// containing `needle`, for the documented reason `why`. Never the other way round.
struct Deliberate {
    needle: &'static str,
    why: &'static str,
}

const DELIBERATE: &[Deliberate] = &[
    Deliberate {
        needle: "appears twice in the header",
        why: "a tensor name twice in one header (the reference keeps the last one)",
    },
    Deliberate {
        needle: "name contains a NUL byte",
        why: "a tensor name with a NUL byte (C cannot pass it back)",
    },
    Deliberate {
        // Only `dtype` is a string field of a tensor entry; metadata errors say "strings to
        // strings" instead.
        needle: "invalid type: map, expected a string",
        why: "a dtype in serde's enum-object form ({\"F32\": null}) instead of a string",
    },
];

/// The number of cases unless `STLOAD_DIFF_CASES` says otherwise.
const DEFAULT_CASES: usize = 20_000;

// ---------------------------------------------------------------------------------------------
// A deterministic generator (SplitMix64): no dependency, same sequence on every platform.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `p` percent.
    fn chance(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A JSON tree that keeps key order and duplicate keys, and numbers as written, so mutations can
// produce exactly the text they want (huge numbers, negative or fractional dimensions, ...).

#[derive(Clone, Debug)]
enum J {
    Null,
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn num(n: impl ToString) -> J {
        J::Num(n.to_string())
    }

    fn str(s: &str) -> J {
        J::Str(s.to_string())
    }

    fn render(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Num(n) => out.push_str(n),
            J::Str(s) => out.push_str(&quote(s)),
            J::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.render(out);
                }
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&quote(k));
                    out.push(':');
                    v.render(out);
                }
                out.push('}');
            }
        }
    }

    /// The value of field `key` of an object.
    fn field(&mut self, key: &str) -> Option<&mut J> {
        match self {
            J::Obj(fields) => fields.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

// ---------------------------------------------------------------------------------------------
// Cases: a header (top-level entries in order), the bytes around it, and what was done to it.

const DTYPES: [(&str, u64); 22] = [
    ("BOOL", 8),
    ("U8", 8),
    ("I8", 8),
    ("I16", 16),
    ("U16", 16),
    ("I32", 32),
    ("U32", 32),
    ("I64", 64),
    ("U64", 64),
    ("F16", 16),
    ("BF16", 16),
    ("F32", 32),
    ("F64", 64),
    ("C64", 64),
    ("F8_E4M3", 8),
    ("F8_E5M2", 8),
    ("F8_E8M0", 8),
    ("F8_E4M3FNUZ", 8),
    ("F8_E5M2FNUZ", 8),
    ("F4", 4),
    ("F6_E2M3", 6),
    ("F6_E3M2", 6),
];

const NAME_STEMS: [&str; 10] = [
    "w",
    "model.layers.0.self_attn.q_proj.weight",
    "lm_head.weight",
    "a\"quoted\\name",
    "ünïcödé.权重",
    "tab\there",
    "__metadata",
    "emoji.🦀",
    " ",
    "x/y/z",
];

/// Numbers a hostile header may hold where a small one belongs.
const HUGE: [&str; 9] = [
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    "1.5",
    "1e3",
    "-0",
];

struct Case {
    entries: Vec<(String, J)>,
    /// Text before and after the JSON object inside the declared header length.
    lead: String,
    trail: String,
    data_len: usize,
    /// Replaces the honest header length prefix.
    prefix: Option<u64>,
    mutations: Vec<&'static str>,
}

impl Case {
    fn bytes(&self) -> Vec<u8> {
        let mut json = self.lead.clone();
        J::Obj(self.entries.clone()).render(&mut json);
        json.push_str(&self.trail);
        let n = self.prefix.unwrap_or(json.len() as u64);
        let mut out = n.to_le_bytes().to_vec();
        out.extend_from_slice(json.as_bytes());
        out.resize(out.len() + self.data_len, 0x5A);
        out
    }

    /// Indices of the tensor entries (not `__metadata__`).
    fn tensors(&self) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| self.entries[i].0 != "__metadata__")
            .collect()
    }
}

fn tensor_json(rng: &mut Rng, dtype: &str, shape: &[u64], start: u64, end: u64) -> J {
    let mut fields = vec![
        ("dtype".to_string(), J::str(dtype)),
        (
            "shape".to_string(),
            J::Arr(shape.iter().map(|&d| J::num(d)).collect()),
        ),
        (
            "data_offsets".to_string(),
            J::Arr(vec![J::num(start), J::num(end)]),
        ),
    ];
    rng.shuffle(&mut fields);
    J::Obj(fields)
}

/// A file both implementations should accept (most of the time: a random sub-byte shape may not
/// fill whole bytes, which both refuse).
fn valid_case(rng: &mut Rng) -> Case {
    let count = rng.below(6);
    let mut tensors = Vec::new();
    for i in 0..count {
        let (dtype, bits) = *rng.pick(&DTYPES);
        let rank = rng.below(4);
        let mut shape: Vec<u64> = (0..rank).map(|_| rng.below(6) as u64).collect();
        // Sub-byte dtypes need whole bytes: usually round the last dimension up to fit.
        if bits < 8 && rank > 0 && rng.chance(90) {
            let last = shape.last_mut().expect("rank > 0");
            *last = last.div_ceil(4) * 4;
        }
        let elements: u64 = shape.iter().product();
        let name = format!("{}{}", rng.pick(&NAME_STEMS), i);
        tensors.push((name, dtype, shape, elements * bits / 8));
    }
    // Offsets follow one random order; the JSON lists the tensors in another.
    rng.shuffle(&mut tensors);
    let mut start = 0;
    let mut entries = Vec::new();
    for (name, dtype, shape, bytes) in &tensors {
        entries.push((
            name.clone(),
            tensor_json(rng, dtype, shape, start, start + bytes),
        ));
        start += bytes;
    }
    rng.shuffle(&mut entries);
    if rng.chance(40) {
        let pairs = (0..rng.below(4))
            .map(|i| (format!("k{i}"), J::Str(rng.pick(&NAME_STEMS).to_string())))
            .collect();
        let meta = if rng.chance(10) {
            J::Null
        } else {
            J::Obj(pairs)
        };
        let at = rng.below(entries.len() + 1);
        entries.insert(at, ("__metadata__".to_string(), meta));
    }
    let trail = if rng.chance(30) {
        " ".repeat(rng.below(8))
    } else {
        String::new()
    };
    Case {
        entries,
        lead: String::new(),
        trail,
        data_len: start as usize,
        prefix: None,
        mutations: Vec::new(),
    }
}

/// Applies one random mutation to `case`, recording its kind.
fn mutate(rng: &mut Rng, case: &mut Case) {
    let tensors = case.tensors();
    let has_tensor = !tensors.is_empty();
    let kind = rng.below(18);
    let t = if has_tensor {
        *rng.pick(&tensors)
    } else {
        usize::MAX
    };
    let name: &'static str = match kind {
        0 if has_tensor => {
            let which = rng.below(2);
            if let Some(J::Arr(offsets)) = case.entries[t].1.field("data_offsets") {
                if let Some(J::Num(v)) = offsets.get_mut(which) {
                    let old: i128 = v.parse().unwrap_or(0);
                    let delta = *rng.pick(&[-8i128, -1, 1, 2, 8]);
                    *v = if rng.chance(15) {
                        rng.pick(&HUGE).to_string()
                    } else {
                        (old + delta).to_string()
                    };
                }
            }
            "offset tweak"
        }
        1 if tensors.len() >= 2 => {
            let u = *rng.pick(&tensors);
            let a = case.entries[t].1.field("data_offsets").cloned();
            let b = case.entries[u].1.field("data_offsets").cloned();
            if let (Some(a), Some(b)) = (a, b) {
                *case.entries[t].1.field("data_offsets").expect("exists") = b;
                *case.entries[u].1.field("data_offsets").expect("exists") = a;
            }
            "offsets swapped between tensors"
        }
        2 if has_tensor => {
            if let Some(J::Arr(o)) = case.entries[t].1.field("data_offsets") {
                o.reverse();
            }
            "offsets reversed"
        }
        3 if has_tensor => {
            if let Some(d) = case.entries[t].1.field("dtype") {
                *d = J::str(rng.pick(&DTYPES).0);
            }
            "dtype swap"
        }
        4 if has_tensor => {
            let bad = [
                J::str("f32"),
                J::str("Q4_K"),
                J::str(""),
                J::str("F8_E4M3FN"),
                J::str("float32"),
                J::str("F32 "),
                J::num(12),
                J::Null,
                J::Obj(vec![("F32".into(), J::Null)]),
                J::Obj(vec![("BF16".into(), J::Arr(vec![]))]),
                J::Obj(vec![("F16".into(), J::Obj(vec![]))]),
                J::Obj(vec![("Q4".into(), J::Null)]),
                J::Arr(vec![J::str("F32")]),
            ];
            if let Some(d) = case.entries[t].1.field("dtype") {
                *d = rng.pick(&bad).clone();
            }
            "bad dtype"
        }
        5 if has_tensor => {
            if let Some(J::Arr(dims)) = case.entries[t].1.field("shape") {
                match rng.below(4) {
                    0 => dims.push(J::num(rng.below(4))),
                    1 => {
                        dims.pop();
                    }
                    2 if !dims.is_empty() => {
                        let i = rng.below(dims.len());
                        dims[i] = J::num(rng.below(9));
                    }
                    _ => {
                        let i = rng.below(dims.len() + 1);
                        dims.insert(i, J::Num(rng.pick(&HUGE).to_string()));
                    }
                }
            }
            "shape change"
        }
        6 if has_tensor => {
            let bad = [
                J::num(4),
                J::str("[2]"),
                J::Null,
                J::Obj(vec![]),
                J::Arr(vec![J::str("2")]),
                J::Arr(vec![J::Null]),
            ];
            if let Some(s) = case.entries[t].1.field("shape") {
                *s = rng.pick(&bad).clone();
            }
            "shape of a wrong type"
        }
        7 if has_tensor => {
            // The same name again: with the same value the reference keeps one and may accept;
            // with the next offsets it may accept too (it keeps the last).
            let (name, mut value) = case.entries[t].clone();
            if rng.chance(50) {
                if let Some(J::Arr(o)) = value.field("data_offsets") {
                    let end = case.data_len as u64;
                    let len = match (o.first(), o.get(1)) {
                        (Some(J::Num(a)), Some(J::Num(b))) => b
                            .parse::<u64>()
                            .unwrap_or(0)
                            .saturating_sub(a.parse::<u64>().unwrap_or(0)),
                        _ => 0,
                    };
                    // Earlier mutations may have left absurd offsets: keep the data small.
                    let len = len.min(1 << 16);
                    *o = vec![J::num(end), J::num(end + len)];
                    case.data_len += len as usize;
                }
            }
            let at = rng.below(case.entries.len() + 1);
            case.entries.insert(at, (name, value));
            "duplicate tensor name"
        }
        8 => {
            let meta = J::Obj(vec![("k".into(), J::str("v"))]);
            let at = rng.below(case.entries.len() + 1);
            case.entries.insert(at, ("__metadata__".into(), meta));
            "extra __metadata__"
        }
        9 if has_tensor => {
            let info = &mut case.entries[t].1;
            match rng.below(6) {
                0 => *info = J::num(7),
                1 => *info = J::str("F32"),
                2 => *info = J::Null,
                3 => {
                    // The sequence form of a struct, which serde accepts for derived structs.
                    let d = info.field("dtype").cloned().unwrap_or(J::Null);
                    let s = info.field("shape").cloned().unwrap_or(J::Null);
                    let o = info.field("data_offsets").cloned().unwrap_or(J::Null);
                    *info = J::Arr(vec![d, s, o]);
                }
                4 => {
                    if let J::Obj(f) = info {
                        let i = rng.below(f.len());
                        f.remove(i);
                    }
                }
                _ => {
                    if let J::Obj(f) = info {
                        let extra = if rng.chance(50) {
                            ("extra".to_string(), J::num(1))
                        } else {
                            f[rng.below(f.len())].clone()
                        };
                        let at = rng.below(f.len() + 1);
                        f.insert(at, extra);
                    }
                }
            }
            "tensor entry of a wrong form"
        }
        10 if has_tensor => {
            let bad = [
                J::Arr(vec![J::num(0)]),
                J::Arr(vec![J::num(0), J::num(0), J::num(0)]),
                J::num(0),
                J::Obj(vec![("0".into(), J::num(0)), ("1".into(), J::num(0))]),
                J::Arr(vec![J::str("0"), J::str("0")]),
                J::Arr(vec![]),
            ];
            if let Some(o) = case.entries[t].1.field("data_offsets") {
                *o = rng.pick(&bad).clone();
            }
            "data_offsets of a wrong form"
        }
        11 => {
            let bad = [
                J::Obj(vec![("n".into(), J::num(3))]),
                J::Obj(vec![("n".into(), J::Null)]),
                J::Obj(vec![("n".into(), J::Obj(vec![]))]),
                J::Obj(vec![("a".into(), J::str("1")), ("a".into(), J::str("2"))]),
                J::Arr(vec![]),
                J::str("meta"),
                J::num(1),
            ];
            let value = rng.pick(&bad).clone();
            match case.entries.iter_mut().find(|(k, _)| k == "__metadata__") {
                Some((_, m)) => *m = value,
                None => case.entries.push(("__metadata__".into(), value)),
            }
            "metadata of a wrong form"
        }
        12 if has_tensor => {
            let names = [
                "",
                "a\u{0}b",
                "\u{0}",
                "__metadata__",
                "\u{7f}",
                "\u{feff}x",
            ];
            case.entries[t].0 = rng.pick(&names).to_string();
            "odd tensor name"
        }
        13 => {
            let n = rng.below(9);
            if rng.chance(50) {
                case.data_len += n;
            } else {
                case.data_len = case.data_len.saturating_sub(n.max(1));
            }
            "data length changed"
        }
        14 => {
            let honest = {
                let mut json = case.lead.clone();
                J::Obj(case.entries.clone()).render(&mut json);
                (json.len() + case.trail.len()) as u64
            };
            let choices = [
                honest.wrapping_sub(1),
                honest + 1,
                honest + 8,
                0,
                MAX_HEADER_SIZE + 1,
                u64::MAX,
                1 << 63,
                honest.saturating_sub(honest / 2),
            ];
            case.prefix = Some(*rng.pick(&choices));
            "length prefix changed"
        }
        15 => {
            let pads: [&str; 8] = [" ", "\n\t \r", "\0", " x", ",", "}", " {}", "\u{a0}"];
            if rng.chance(50) {
                let pad = *rng.pick(&pads);
                case.trail.push_str(pad);
            } else {
                let pad = *rng.pick(&pads);
                case.lead.push_str(pad);
            }
            "padding around the JSON"
        }
        _ => {
            // Byte-level changes happen in `case_bytes`; mark the kind here.
            let kinds: [&'static str; 3] = ["truncated", "byte flips", "bytes appended"];
            let kind = *rng.pick(&kinds);
            kind
        }
    };
    case.mutations.push(name);
}

/// The case's file bytes, with its byte-level mutations applied.
fn case_bytes(rng: &mut Rng, case: &Case) -> Vec<u8> {
    let mut bytes = case.bytes();
    for m in &case.mutations {
        match *m {
            "truncated" => {
                let cut = rng.below(bytes.len() + 1);
                bytes.truncate(cut);
            }
            "byte flips" => {
                for _ in 0..=rng.below(3) {
                    if bytes.len() > 8 {
                        let i = 8 + rng.below(bytes.len() - 8);
                        bytes[i] = if rng.chance(50) {
                            bytes[i] ^ (1 << rng.below(8))
                        } else {
                            *rng.pick(b"{}[]\",:0123456789-eE.\\ \x00\xff\xc3a")
                        };
                    }
                }
            }
            "bytes appended" => {
                let extra = rng.below(5) + 1;
                bytes.extend((0..extra).map(|_| rng.next() as u8));
            }
            _ => {}
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// The two implementations.

fn reference_accepts(bytes: &[u8]) -> bool {
    safetensors::SafeTensors::deserialize(bytes).is_ok()
}

/// stload's verdict on a whole file in memory: the steps of `ShardFile::open` (length prefix
/// against the limit and the size, then the header against the data length).
fn stload_verdict(bytes: &[u8]) -> Result<(), String> {
    let Some(prefix) = bytes.get(..8) else {
        return Err("file too small for the header length".into());
    };
    let n = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
    let rest = bytes.len() as u64 - 8;
    if n > MAX_HEADER_SIZE {
        return Err("header length exceeds the limit".into());
    }
    if n > rest {
        return Err("header length runs past the end".into());
    }
    let json = &bytes[8..8 + n as usize];
    header::parse("case.safetensors", json, rest - n)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn printable(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(600)];
    format!(
        "{} bytes: {:?}{}",
        bytes.len(),
        String::from_utf8_lossy(shown),
        if bytes.len() > shown.len() { "..." } else { "" }
    )
}

#[test]
fn stload_accepts_what_the_reference_accepts() {
    let seed = std::env::var("STLOAD_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5AFE_7E45_0125_u64);
    let cases = std::env::var("STLOAD_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = Options::default();

    // (both accept, both refuse, deliberate differences) per mutation kind.
    let mut tally: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    let mut deliberate_seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut opened = 0;

    for i in 0..cases {
        let mut case = valid_case(&mut rng);
        // A fifth stay as generated; the rest get one to three mutations.
        if i % 5 != 0 {
            for _ in 0..=rng.below(3).min(rng.below(3)) {
                mutate(&mut rng, &mut case);
            }
        }
        let bytes = case_bytes(&mut rng, &case);
        let reference = reference_accepts(&bytes);
        let ours = stload_verdict(&bytes);

        if i % 8 == 0 {
            // The in-memory steps must match a real open of the same bytes.
            let path = dir.path().join("case.safetensors");
            std::fs::write(&path, &bytes).expect("write case");
            let real = Model::open_files(&[&path], &options);
            if real.is_ok() != ours.is_ok() {
                failures.push(format!(
                    "case {i}: the in-memory check says {:?} but Model::open_files says {:?}\n  {}",
                    ours,
                    real.map(|_| ()).map_err(|e| e.to_string()),
                    printable(&bytes)
                ));
            }
            opened += 1;
        }

        let kind = case
            .mutations
            .first()
            .copied()
            .unwrap_or("valid as generated");
        let slot = tally.entry(kind).or_default();
        match (&ours, reference) {
            (Ok(()), true) => slot[0] += 1,
            (Err(_), false) => slot[1] += 1,
            (Err(message), true) => match DELIBERATE.iter().find(|d| message.contains(d.needle)) {
                Some(d) => {
                    slot[2] += 1;
                    *deliberate_seen.entry(d.why).or_default() += 1;
                }
                None => failures.push(format!(
                    "case {i} ({:?}): the reference accepts but stload refuses: {message}\n  {}",
                    case.mutations,
                    printable(&bytes)
                )),
            },
            (Ok(()), false) => failures.push(format!(
                "case {i} ({:?}): stload accepts what the reference refuses ({:?})\n  {}",
                case.mutations,
                safetensors::SafeTensors::deserialize(&bytes).err(),
                printable(&bytes)
            )),
        }
    }

    println!("{cases} cases (seed {seed:#x}), {opened} also opened from a file");
    println!(
        "{:<36} {:>8} {:>8} {:>10}",
        "first mutation", "accept", "refuse", "deliberate"
    );
    for (kind, [a, r, d]) in &tally {
        println!("{kind:<36} {a:>8} {r:>8} {d:>10}");
    }
    for (why, n) in &deliberate_seen {
        println!("deliberate difference, {n} cases: {why}");
    }
    assert!(
        failures.is_empty(),
        "{} disagreements with the reference; the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    // The generator must exercise both verdicts broadly, or the comparison proves little.
    let accepted: usize = tally.values().map(|t| t[0]).sum();
    let refused: usize = tally.values().map(|t| t[1]).sum();
    assert!(accepted >= cases / 5, "only {accepted} accepted cases");
    assert!(refused >= cases / 4, "only {refused} refused cases");
    assert!(
        tally.len() >= 18,
        "only {} mutation kinds ran: {:?}",
        tally.len(),
        tally.keys()
    );
}
