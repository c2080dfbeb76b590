//! Every conversion path against numpy + ml_dtypes, bit for bit.
//!
//! `tests/python/convert_oracle.py` writes inputs and the oracle's outputs into a temporary
//! directory (exhaustive 8- and 16-bit patterns, special values, halfway and overflow cases,
//! over 10^7 random patterns per F32/F64 pair, integer edges); every path (the scalar reference,
//! each instruction-set level, one and two threads) must reproduce them exactly. The Python is
//! `STLOAD_PYTHON`, else `.venv/bin/python` from `scripts/python-env.sh`; without it the test
//! fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use stload::convert::{self, Error, Isa};
use stload::Dtype;

fn python() -> PathBuf {
    let python = std::env::var_os("STLOAD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import numpy, ml_dtypes"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "no Python with numpy and ml_dtypes at {} (set STLOAD_PYTHON or run scripts/python-env.sh)",
        python.display()
    );
    python
}

/// Runs the oracle into a fresh temporary directory.
fn oracle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/convert_oracle.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(dir.path())
        .output()
        .expect("run the oracle");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// One way of converting, named for failure messages.
type Way = (
    &'static str,
    fn(&[u8], Dtype, &mut [u8], Dtype) -> Result<(), Error>,
);

fn paths() -> Vec<Way> {
    let levels: [Way; 5] = [
        ("scalar", convert::convert_scalar),
        ("portable", |s, f, d, t| {
            convert::convert_with(s, f, d, t, 1, Isa::Portable)
        }),
        ("avx2", |s, f, d, t| {
            convert::convert_with(s, f, d, t, 1, Isa::Avx2)
        }),
        ("avx512", |s, f, d, t| {
            convert::convert_with(s, f, d, t, 1, Isa::Avx512)
        }),
        ("avx512bf16", |s, f, d, t| {
            convert::convert_with(s, f, d, t, 1, Isa::Avx512Bf16)
        }),
    ];
    // The level `convert` picks is checked through `convert` itself.
    let detected = [
        Isa::Scalar,
        Isa::Portable,
        Isa::Avx2,
        Isa::Avx512,
        Isa::Avx512Bf16,
    ]
    .iter()
    .position(|&l| l == Isa::detected())
    .unwrap_or(levels.len());
    let mut ways = levels[..detected].to_vec();
    ways.push(("convert", convert::convert));
    ways.push(("parallel", |s, f, d, t| {
        convert::convert_parallel(s, f, d, t, 2)
    }));
    ways
}

fn hex(b: &[u8]) -> String {
    b.iter().rev().map(|x| format!("{x:02x}")).collect()
}

/// Compares `got` with `want`; describes the first mismatches.
fn compare(
    what: &str,
    input: &[u8],
    fs: usize,
    got: &[u8],
    want: &[u8],
    ts: usize,
) -> Option<String> {
    if got == want {
        return None;
    }
    let bad: Vec<usize> = (0..want.len() / ts)
        .filter(|&i| got[i * ts..][..ts] != want[i * ts..][..ts])
        .collect();
    let examples: Vec<String> = bad
        .iter()
        .take(5)
        .map(|&i| {
            format!(
                "in 0x{} want 0x{} got 0x{}",
                hex(&input[i * fs..][..fs]),
                hex(&want[i * ts..][..ts]),
                hex(&got[i * ts..][..ts])
            )
        })
        .collect();
    Some(format!(
        "{what}: {} of {} differ: {}",
        bad.len(),
        want.len() / ts,
        examples.join("; ")
    ))
}

#[test]
fn every_path_matches_numpy_and_ml_dtypes() {
    let dir = oracle();
    let manifest = std::fs::read_to_string(dir.path().join("manifest.txt")).expect("manifest");
    let mut failures = Vec::new();
    let mut pairs = 0;
    for line in manifest.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(' ').collect();
        let (case, from, to) = (
            f[0],
            Dtype::from_header_name(f[1]).unwrap(),
            Dtype::from_header_name(f[2]).unwrap(),
        );
        let input = std::fs::read(dir.path().join(format!("{case}.in"))).unwrap();
        let want = std::fs::read(dir.path().join(format!("{case}.{}.out", to.name()))).unwrap();
        let (fs, ts) = (from.byte_size().unwrap(), to.byte_size().unwrap());
        assert!(convert::is_supported(from, to), "{from} -> {to}");
        for (name, path) in paths() {
            let mut got = vec![0xa5u8; want.len()];
            match path(&input, from, &mut got, to) {
                Ok(()) => failures.extend(compare(
                    &format!("{case} {from}->{to} [{name}]"),
                    &input,
                    fs,
                    &got,
                    &want,
                    ts,
                )),
                Err(e) => failures.push(format!("{case} {from}->{to} [{name}]: {e}")),
            }
        }
        pairs += 1;
    }
    // Every supported non-identity pair appears in the oracle data (block types' dequantisation
    // has its own oracle: tests/gguf/dequant_check.py and tests/gguf_input.rs).
    for from in Dtype::ALL {
        for to in Dtype::ALL {
            if from != to && !from.is_block() && convert::is_supported(from, to) {
                let listed = manifest
                    .lines()
                    .any(|l| l.ends_with(&format!(" {} {}", from.name(), to.name())));
                assert!(listed, "{from} -> {to} has no oracle data");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(pairs >= 90, "only {pairs} pairs checked");
}

#[test]
fn unaligned_buffers_and_odd_lengths_match_the_reference() {
    // Offsets of 1 byte defeat any alignment assumption; lengths cover every tail size.
    let raw: Vec<u8> = (0..70_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let pairs = [
        (Dtype::F16, Dtype::F32),
        (Dtype::BF16, Dtype::F32),
        (Dtype::F32, Dtype::F16),
        (Dtype::F32, Dtype::BF16),
        (Dtype::F8E4M3, Dtype::F32),
        (Dtype::F32, Dtype::F8E4M3),
    ];
    for (from, to) in pairs {
        let (fs, ts) = (from.byte_size().unwrap(), to.byte_size().unwrap());
        for n in (0..70).chain([1000, 4099, 16_385]) {
            let src = &raw[1..1 + n * fs];
            let mut want = vec![0u8; n * ts + 1];
            convert::convert_scalar(src, from, &mut want[1..], to).unwrap();
            for (name, path) in paths() {
                let mut got = vec![0u8; n * ts + 1];
                path(src, from, &mut got[1..], to).unwrap();
                assert!(got == want, "{from}->{to} n={n} [{name}]");
            }
        }
    }
}

#[test]
fn unsupported_pairs_and_wrong_lengths_are_errors() {
    let mut dst = [0u8; 16];
    for (from, to) in [
        (Dtype::F32, Dtype::Bool),
        (Dtype::F64, Dtype::F8E4M3),
        (Dtype::C64, Dtype::F32),
        (Dtype::F32, Dtype::I32),
    ] {
        assert!(!convert::is_supported(from, to));
        let e = convert::convert(&[0; 8], from, &mut dst, to).unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }));
        assert_eq!(
            e.to_string(),
            format!("no conversion from {} to {}", from.name(), to.name())
        );
        assert!(matches!(
            convert::convert_to_new(&[0; 8], from, to, 1),
            Err(Error::Unsupported { .. })
        ));
    }
    let e = convert::convert(&[0; 8], Dtype::F32, &mut dst[..3], Dtype::F16).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Length {
                src_len: 8,
                dst_len: 3,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("F32") && msg.contains("F16") && msg.contains('8') && msg.contains('3'),
        "{msg}"
    );
    assert!(matches!(
        convert::convert_scalar(&[0; 7], Dtype::F32, &mut dst[..2], Dtype::F16),
        Err(Error::Length { .. })
    ));
    assert!(matches!(
        convert::convert_parallel(&[0; 4], Dtype::F4, &mut dst[..3], Dtype::F4, 2),
        Err(Error::Length { .. })
    ));
    assert!(matches!(
        convert::convert_to_new(&[0; 7], Dtype::F32, Dtype::F16, 2),
        Err(Error::Length { .. })
    ));
}
