//! GGUF files written by stload, read back by the `gguf` Python package and compared with an
//! independent numpy oracle (tests/python/gguf_check.py); Q8_0 bytes against
//! `gguf.quants.quantize`; the CLI's GGUF convert and inspect; bad input leaving no file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::python;
use stload::gguf::{self, q8_0, GgufPlan, OutType};
use stload::{Model, Options};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/gguf_check.py")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_python(args: &[&std::ffi::OsStr]) -> Output {
    let out = Command::new(python())
        .arg(script())
        .args(args)
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", text(&out));
    out
}

fn fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run_python(&["make".as_ref(), dir.path().as_os_str()]);
    dir
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn every_outtype_reads_back_equal_to_the_oracle() {
    let dir = fixtures();
    for src in ["f32", "f16", "bf16"] {
        let path = dir.path().join(format!("{src}.safetensors"));
        let model = Model::open_files(&[&path], &Options::default()).unwrap();
        for outtype in OutType::ALL {
            let out = dir.path().join(format!("{src}-{outtype}.gguf"));
            let mut calls = 0;
            // The writer alone, with no architecture or tokenizer (those are tested through
            // Model::write_gguf in tests/gguf and the CLI below).
            gguf::write_model(
                &model,
                &out,
                outtype,
                GgufPlan::new("none"),
                &mut |done, total| {
                    calls += 1;
                    assert!(done <= total);
                    true
                },
            )
            .unwrap();
            assert!(calls > 1);
            run_python(&[
                "check".as_ref(),
                path.as_os_str(),
                out.as_os_str(),
                outtype.name().as_ref(),
            ]);
        }
    }
}

/// Values with every case the quantiser can get wrong, 32 per block.
fn adversarial() -> Vec<f32> {
    let mut v = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Random normal-ish values at many scales.
    for block in 0..2000 {
        let scale = 2f32.powi((block % 60) - 30);
        for _ in 0..32 {
            let u = (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            v.push(u * scale);
        }
    }
    // Random bit patterns (any finite float, NaN and infinities included). NaNs are the
    // canonical one: numpy's scale for other payloads depends on the NaN's position in the
    // block (its SIMD max), which q8_0.rs documents instead of imitating.
    for _ in 0..200 * 32 {
        let x = f32::from_bits(next() as u32);
        v.push(if x.is_nan() { f32::NAN } else { x });
    }
    // Ties: with max 127 the scale is 1 and k + 0.5 rounds away from zero.
    let mut ties: Vec<f32> = (0..31).map(|k| k as f32 - 15.5).collect();
    ties.push(127.0);
    v.extend(&ties);
    v.extend(ties.iter().map(|x| -x));
    v.extend([0.0f32; 32]);
    v.extend([-0.0f32; 32]);
    // Huge values, subnormals, and tiny maxima whose scale is subnormal or zero.
    v.extend((0..32).map(|i| f32::MAX / (i + 1) as f32));
    v.extend((0..32).map(|i| f32::from_bits(i + 1)));
    v.extend((0..32).map(|i| f32::MIN_POSITIVE * (i as f32 - 16.0)));
    v.extend((0..32).map(|i| if i == 5 { f32::NAN } else { i as f32 }));
    v.extend((0..32).map(|i| if i == 9 { f32::NEG_INFINITY } else { i as f32 }));
    v
}

#[test]
fn q8_0_matches_the_gguf_package() {
    let dir = tempfile::tempdir().unwrap();
    let values = adversarial();
    let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
    let (inp, out) = (dir.path().join("in.f32"), dir.path().join("out.q8"));
    std::fs::write(&inp, bytes).unwrap();
    run_python(&["q8".as_ref(), inp.as_os_str(), out.as_os_str()]);
    let want = std::fs::read(&out).unwrap();
    let mut got = vec![0u8; values.len() / 32 * 34];
    q8_0::quantize(&values, &mut got, 2);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.chunks(34).zip(want.chunks(34)).enumerate() {
        assert_eq!(g, w, "block {i}: {:?}", &values[i * 32..i * 32 + 32]);
    }
}

fn stload(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(args)
        .output()
        .expect("run stload")
}

#[test]
fn cli_converts_inspects_and_refuses_bad_input() {
    let dir = fixtures();
    let src = dir.path().join("bf16.safetensors");
    let out = dir.path().join("m.gguf");
    let o = stload(&[
        "convert".as_ref(),
        src.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--outtype".as_ref(),
        "q8_0".as_ref(),
        "--arch".as_ref(),
        "none".as_ref(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    run_python(&[
        "check".as_ref(),
        src.as_os_str(),
        out.as_os_str(),
        "q8_0".as_ref(),
    ]);
    let o = stload(&["inspect".as_ref(), out.as_os_str(), "--json".as_ref()]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["format"], "gguf");
    assert_eq!(json["version"], 3);
    assert_eq!(json["metadata"]["general.file_type"], 7);
    let t = json["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "blk.0.ffn_gate_exps.weight")
        .unwrap();
    assert_eq!(t["type"], "Q8_0");
    assert_eq!(t["shape"], serde_json::json!([2, 32, 64]));
    assert_eq!(t["nbytes"], 2 * 32 * 64 / 32 * 34);
    let o = stload(&["inspect".as_ref(), out.as_os_str()]);
    assert!(
        o.status.success() && text(&o).contains("general.architecture"),
        "{}",
        text(&o)
    );

    // --format gguf with another extension.
    let other = dir.path().join("m.bin");
    let o = stload(&[
        "convert".as_ref(),
        src.as_os_str(),
        "--out".as_ref(),
        other.as_os_str(),
        "--format".as_ref(),
        "gguf".as_ref(),
        "--arch".as_ref(),
        "none".as_ref(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(&std::fs::read(&other).unwrap()[..4], b"GGUF");
    std::fs::remove_file(&other).unwrap();
    std::fs::remove_file(&out).unwrap();

    let before = files_in(dir.path());
    let bad = |args: &[&str], message: &str| {
        let mut all: Vec<&std::ffi::OsStr> = vec![
            "convert".as_ref(),
            src.as_os_str(),
            "--arch".as_ref(),
            "none".as_ref(),
        ];
        all.extend(args.iter().map(std::ffi::OsStr::new));
        let o = stload(&all);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(text(&o).contains(message), "{args:?}: {}", text(&o));
    };
    let out_s = out.to_str().unwrap();
    bad(
        &["--out", out_s, "--outtype", "q4_k"],
        "unknown GGUF output type \"q4_k\"",
    );
    bad(
        &["--out", out_s, "--dtype", "f16"],
        "--dtype applies to safetensors",
    );
    let st = dir.path().join("x.safetensors");
    bad(
        &["--out", st.to_str().unwrap(), "--outtype", "f16"],
        "--outtype applies to GGUF",
    );
    bad(&["--out", out_s, "--format", "onnx"], "unknown --format");
    bad(
        &["--out", src.to_str().unwrap(), "--format", "gguf"],
        "is the input",
    );
    let missing = dir.path().join("no/such/dir/m.gguf");
    bad(
        &["--out", missing.to_str().unwrap()],
        "cannot create a temporary file",
    );
    // A directory where the file should go.
    let as_dir = dir.path().join("d.gguf");
    std::fs::create_dir(&as_dir).unwrap();
    bad(
        &["--out", as_dir.to_str().unwrap()],
        "is a directory; name the output file",
    );
    std::fs::remove_dir(&as_dir).unwrap();
    assert_eq!(files_in(dir.path()), before, "a failed convert left files");
}

#[test]
fn unsupported_tensors_and_hostile_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sample = stload::__private::sample::write_sample(dir.path()).unwrap();
    let model = Model::open_files(&[&sample], &Options::default()).unwrap();
    let out = dir.path().join("s.gguf");
    if let Err(e) = gguf::write_model(
        &model,
        &out,
        OutType::Auto,
        GgufPlan::new("none"),
        &mut |_, _| true,
    ) {
        assert!(e.to_string().contains("has no GGUF type"), "{e}");
        assert!(!out.exists());
    }
    let junk = dir.path().join("junk.gguf");
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(u64::MAX.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    std::fs::write(&junk, &bytes).unwrap();
    let o = stload(&["inspect".as_ref(), junk.as_os_str()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("tensor count"), "{}", text(&o));
}
