//! GGUF files written by stload, read back by the `gguf` Python package and compared with an
//! independent numpy oracle (tests/python/gguf_check.py); Q8_0 bytes against
//! `gguf.quants.quantize`; the CLI's GGUF convert and inspect; bad input leaving no file; split
//! output against the unsplit file (tests/gguf/split_check.py).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::python;
use stload::gguf::{self, q8_0, GgufPlan, OutType};
use stload::kv::{Array, Value};
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
        // The float types and q8_0, whose oracle is gguf-py's; tests/gguf/quant_file_check.py
        // checks every quantised type against llama.cpp's quantiser.
        let checked = OutType::ALL
            .into_iter()
            .filter(|t| t.quantized().is_none() || *t == OutType::Q8_0);
        for outtype in checked {
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

/// The arguments of `stload convert SRC --out OUT --arch none EXTRA...`.
fn convert_none<'a>(
    src: &'a Path,
    out: &'a Path,
    extra: &'a [&'a str],
) -> Vec<&'a std::ffi::OsStr> {
    let mut args: Vec<&std::ffi::OsStr> = vec!["convert".as_ref(), src.as_os_str()];
    args.extend([
        "--out".as_ref(),
        out.as_os_str(),
        "--arch".as_ref(),
        "none".as_ref(),
    ]);
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    args
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
    // Finding 25: the table says which order its shapes are in (gguf-dump shows the reverse).
    let table = text(&o);
    let heading = table.lines().find(|l| l.starts_with("NAME")).unwrap();
    assert!(heading.contains("SHAPE (OUTERMOST FIRST)"), "{heading}");
    let row = table
        .lines()
        .find(|l| l.starts_with("blk.0.ffn_gate_exps.weight "))
        .unwrap();
    assert!(row.contains("[2, 32, 64]"), "{row}");
    // Finding 22: verify takes the GGUF convert wrote.
    let o = stload(&["verify".as_ref(), out.as_os_str()]);
    assert!(o.status.success(), "{}", text(&o));

    // --format gguf with another extension.
    let other = dir.path().join("m.bin");
    let to_other = |more: &[&str]| {
        let mut args = convert_none(&src, &other, &["--format", "gguf"]);
        args.extend(more.iter().map(std::ffi::OsStr::new));
        stload(&args)
    };
    let o = to_other(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(&std::fs::read(&other).unwrap()[..4], b"GGUF");
    std::fs::remove_file(&other).unwrap();

    // A quantised type: the tensors that fall back are named, and the summary counts types.
    let o = to_other(&["--outtype", "Q4_K_M"]);
    let said = text(&o);
    assert!(o.status.success(), "{said}");
    assert!(
        said.contains("fallback: tensor \"blk.0.ffn_down.weight\": a row of 40 values is not a whole number of Q6_K blocks of 256; written as F16"),
        "{said}"
    );
    assert!(
        said.contains("type q4_k_m,") && said.contains("; tensor types: "),
        "{said}"
    );
    let f = gguf::read(&other).unwrap();
    assert_eq!(f.metadata.get("general.file_type"), Some(&Value::U32(15)));
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
        &["--out", out_s, "--outtype", "iq2_xxs"],
        "--outtype: unknown GGUF output type \"iq2_xxs\" (known: auto, f32, f16, bf16, q8_0, q4_0,",
    );
    // The quantised types' flags: each error names its flag.
    for (outtype, flag, value, message) in [
        ("q4_k_m", "--tensor-type", "attn_v", "--tensor-type: tensor type \"attn_v\": not PATTERN=TYPE"),
        ("q4_k_m", "--tensor-type", "attn_v=q9_k", "--tensor-type: unknown tensor type \"q9_k\" (known: f32, f16, bf16, q4_0,"),
        ("q4_k_m", "--tensor-type", "attn_(v=q8_0", "--tensor-type: tensor type pattern \"attn_(v\": not a regular expression"),
        ("q4_k_m", "--tensor-type", "nothing_here=q8_0", "tensor type override \"nothing_here=q8_0\" (--tensor-type): the pattern matches no tensor"),
        ("q6_k", "--output-tensor-type", "q1", "--output-tensor-type: unknown tensor type \"q1\""),
        ("q6_k", "--token-embedding-type", "", "--token-embedding-type: unknown tensor type"),
        ("f16", "--output-tensor-type", "q8_0", "apply to a quantised --outtype, not f16"),
    ] {
        bad(&["--out", out_s, "--outtype", outtype, flag, value], message);
    }
    bad(
        &["--out", out_s, "--outtype", "f16", "--pure"],
        "apply to a quantised --outtype, not f16",
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
    bad(
        &[
            "--out",
            st.to_str().unwrap(),
            "--tensor-type",
            "attn_v=q8_0",
        ],
        "--tensor-type and --pure apply to GGUF output",
    );
    bad(
        &["--out", st.to_str().unwrap(), "--pure"],
        "--tensor-type and --pure apply to GGUF output",
    );
    bad(&["--out", out_s, "--format", "onnx"], "unknown --format");
    bad(
        &["--out", src.to_str().unwrap(), "--format", "gguf"],
        "is the input",
    );
    // A missing directory: the error names the path given, never the temporary file.
    let missing = dir.path().join("no/such/dir/m.gguf");
    bad(
        &["--out", missing.to_str().unwrap()],
        &format!("{}: cannot create it: directory ", missing.display()),
    );
    let o = stload(&[
        "convert".as_ref(),
        src.as_os_str(),
        "--arch".as_ref(),
        "none".as_ref(),
        "--out".as_ref(),
        missing.as_os_str(),
    ]);
    assert!(!text(&o).contains(".stload-"), "{}", text(&o));
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

/// Runs stload with `args`, its output thrown away; whether it succeeded, and its peak
/// resident memory in KiB (the child's own, from `wait4`).
#[cfg(target_os = "linux")]
fn stload_peak_kib(args: &[&std::ffi::OsStr]) -> (bool, u64) {
    // Reaped by wait4 below, which also gives its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run stload");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, for which all zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing only to the two locals passed.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, usage.ru_maxrss as u64)
}

/// Finding 16: `inspect --json` of a GGUF holding a 32 MiB array writes it element by element
/// (it built a JSON value per element and peaked at 2 GiB); the table shortens arrays nested
/// in arrays and long strings in arrays.
#[test]
#[cfg(target_os = "linux")]
fn inspect_of_large_arrays_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let sample = stload::__private::sample::write_sample(dir.path()).unwrap();
    let model = Model::open_files(&[&sample], &Options::default()).unwrap();
    let mut m = stload::kv::Metadata::new();
    m.set("general.architecture", "none");
    m.set("big", Array::U8(vec![7; 32 << 20]));
    m.set(
        "nested",
        Array::Array(vec![
            Array::U32((0..100_000).collect()),
            Array::Array(vec![Array::String(vec!["x".repeat(100_000)])]),
            Array::String(vec!["y".repeat(100_000)]),
        ]),
    );
    let out = dir.path().join("big.gguf");
    let plan = GgufPlan {
        metadata: m,
        skip: &|_| true,
        ..GgufPlan::new("none")
    };
    gguf::write_model(&model, &out, OutType::F32, plan, &mut |_, _| true).unwrap();
    let (ok, peak) = stload_peak_kib(&["inspect".as_ref(), out.as_os_str(), "--json".as_ref()]);
    assert!(ok, "inspect --json failed");
    // The file is mapped (32 MiB) and its array parsed (32 MiB more); the JSON text streams.
    assert!(
        peak < 256 << 10,
        "inspect --json peaked at {} MiB",
        peak >> 10
    );
    // The text is all there.
    let json = dir.path().join("big.json");
    let o = Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(["inspect".as_ref(), out.as_os_str(), "--json".as_ref()])
        .stdout(std::fs::File::create(&json).unwrap())
        .status()
        .unwrap();
    assert!(o.success());
    let len = std::fs::metadata(&json).unwrap().len();
    assert!(len > 2 * (32 << 20), "{len} bytes of JSON");
    let mut head = vec![0u8; 60];
    std::io::Read::read_exact(&mut std::fs::File::open(&json).unwrap(), &mut head).unwrap();
    assert!(
        head.starts_with(br#"{"format":"gguf","metadata":{"big":[7,7,7,"#),
        "{}",
        String::from_utf8_lossy(&head)
    );
    std::fs::remove_file(&json).unwrap();
    let o = stload(&["inspect".as_ref(), out.as_os_str()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        o.stdout.len() < 4096,
        "the table took {} bytes",
        o.stdout.len()
    );
    assert!(
        text(&o).contains("nested = [[0, 1, 2, 3, 4, 5, ...]"),
        "{}",
        text(&o)
    );
}

fn split_check(whole: &Path, out: &Path, max_bytes: u64, max_tensors: u64) -> usize {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gguf/split_check.py");
    let o = Command::new(python())
        .arg(script)
        .arg(whole)
        .arg(out)
        .arg(max_bytes.to_string())
        .arg(max_tensors.to_string())
        .output()
        .expect("run python");
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

#[test]
fn split_shards_read_back_equal_to_the_unsplit_file() {
    let dir = fixtures();
    let src = dir.path().join("bf16.safetensors");
    let convert = |out: &Path, extra: &[&str]| {
        let args = convert_none(&src, out, extra);
        stload(&args)
    };
    let whole = dir.path().join("whole.gguf");
    let o = convert(&whole, &[]);
    assert!(o.status.success(), "{}", text(&o));
    // By count; by size, where the 8192-byte F16 attn_q goes alone; by both.
    for (i, (args, max_bytes, max_tensors)) in [
        (&["--split-max-tensors", "4"][..], 0, 4),
        (&["--split-max-size", "5K"][..], 5_000, 0),
        (
            &["--split-max-size", "10000", "--split-max-tensors", "3"][..],
            10_000,
            3,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let sub = dir.path().join(format!("s{i}"));
        std::fs::create_dir(&sub).unwrap();
        let out = sub.join("m.gguf");
        let o = convert(&out, args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        let n = split_check(&whole, &out, max_bytes, max_tensors);
        assert!(n > 1, "{args:?}: {n} shards");
        let printed = String::from_utf8_lossy(&o.stdout);
        let wrote = printed.lines().filter(|l| l.starts_with("wrote ")).count();
        assert_eq!(wrote, n, "{printed}");
        // The summary counts what the shards hold: 11 tensors in n files.
        assert!(
            printed.contains("11 tensors, ") && printed.contains(&format!(" in {n} files")),
            "{printed}"
        );
        let first = gguf::shard_path(&out, 1, n as u32);
        let o = stload(&["inspect".as_ref(), first.as_os_str(), "--json".as_ref()]);
        assert!(o.status.success(), "{}", text(&o));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(json["shard"]["number"], 1);
        assert_eq!(json["shard"]["count"], n);
        let o = stload(&["inspect".as_ref(), first.as_os_str()]);
        assert!(
            text(&o).contains(&format!("shard 1 of {n} of a split model")),
            "{}",
            text(&o)
        );
        // Finding 22: verify takes a shard and checks its whole set; inspect takes several
        // GGUF files, one JSON object per line.
        let last = gguf::shard_path(&out, n as u32, n as u32);
        let o = stload(&["verify".as_ref(), last.as_os_str(), whole.as_os_str()]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains(&format!("split set of {n} shards")),
            "{}",
            text(&o)
        );
        let o = stload(&[
            "inspect".as_ref(),
            first.as_os_str(),
            last.as_os_str(),
            "--json".as_ref(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let numbers: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["shard"]["number"].clone()
            })
            .collect();
        assert_eq!(numbers, [serde_json::json!(1), serde_json::json!(n)]);
        let o = stload(&["inspect".as_ref(), first.as_os_str(), last.as_os_str()]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(
            text(&o).matches("GGUF version 3").count(),
            2,
            "{}",
            text(&o)
        );
        // A set missing its last shard is invalid, from any shard; mixing is refused.
        std::fs::remove_file(&last).unwrap();
        let o = stload(&["verify".as_ref(), first.as_os_str()]);
        assert!(
            o.status.code() == Some(1) && text(&o).contains(&last.display().to_string()),
            "{}",
            text(&o)
        );
        let o = stload(&["inspect".as_ref(), first.as_os_str(), src.as_os_str()]);
        assert!(
            !o.status.success() && text(&o).contains("not a GGUF file"),
            "{}",
            text(&o)
        );
    }

    // Refusals: bad limits, split safetensors, an existing shard without --force, a shard
    // name that is the input even with --force. Nothing is left behind.
    let sub = dir.path().join("bad");
    std::fs::create_dir(&sub).unwrap();
    let out = sub.join("m.gguf");
    let bad = |args: &[&str], message: &str| {
        let o = convert(&out, args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(text(&o).contains(message), "{args:?}: {}", text(&o));
    };
    bad(
        &["--split-max-size", "0"],
        "split size \"0\": must be positive",
    );
    bad(
        &["--split-max-size", "abc"],
        "split size \"abc\": not a whole number",
    );
    bad(&["--split-max-size", "4T"], "split size \"4T\"");
    bad(&["--split-max-tensors", "0"], "--split-max-tensors \"0\"");
    bad(&["--split-max-tensors", "x"], "not a positive whole number");
    let st = sub.join("m.safetensors");
    let o = stload(&[
        "convert".as_ref(),
        src.as_os_str(),
        "--out".as_ref(),
        st.as_os_str(),
        "--split-max-tensors".as_ref(),
        "2".as_ref(),
    ]);
    assert!(
        text(&o).contains("apply to GGUF output") && !o.status.success(),
        "{}",
        text(&o)
    );
    assert!(files_in(&sub).is_empty(), "{:?}", files_in(&sub));
    let stale = sub.join("m-00002-of-00009.gguf");
    std::fs::write(&stale, b"old").unwrap();
    bad(&["--split-max-tensors", "4"], "exists; pass --force");
    assert_eq!(files_in(&sub), ["m-00002-of-00009.gguf"]);
    std::fs::remove_file(&stale).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&src, &stale).unwrap();
        bad(&["--split-max-tensors", "4", "--force"], "is the input");
        assert_eq!(files_in(&sub), ["m-00002-of-00009.gguf"]);
        assert!(std::fs::symlink_metadata(&stale).unwrap().is_symlink());
        std::fs::remove_file(&stale).unwrap();
    }
    // --force replaces an existing shard (11 tensors, 4 a shard: 3 shards) and removes the
    // shards of an earlier split with another count, which would still load beside the new
    // set; files only resembling a shard name of this prefix stay.
    let old = sub.join("m-00001-of-00003.gguf");
    std::fs::write(&old, b"old").unwrap();
    let kept = [
        "m-00001-of-00002.gguf.bak",
        "m.gguf",
        "mm-00001-of-00002.gguf",
        "other-00001-of-00002.gguf",
    ];
    for name in ["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"]
        .iter()
        .chain(&kept)
    {
        std::fs::write(sub.join(name), b"earlier").unwrap();
    }
    let o = convert(&out, &["--split-max-tensors", "4", "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(split_check(&whole, &out, 0, 4), 3);
    let mut want: Vec<String> = (1..=3)
        .map(|no| format!("m-{no:05}-of-00003.gguf"))
        .chain(kept.iter().map(|k| k.to_string()))
        .collect();
    want.sort();
    assert_eq!(files_in(&sub), want);
    for name in kept {
        assert_eq!(std::fs::read(sub.join(name)).unwrap(), b"earlier");
    }
}

/// `w` with the numbers of F32 values rounded to f32: JSON parsing of the expected decimal
/// text may be off in the last bits of an f64, never by half an f32 step.
fn f32_rounded(w: &serde_json::Value) -> serde_json::Value {
    let round = |x: &serde_json::Value| match x.as_f64() {
        Some(f) => serde_json::json!(f as f32),
        None => x.clone(),
    };
    let mut w = w.clone();
    if w["t"] == "F32" {
        w["v"] = round(&w["v"]);
    } else if w["of"] == "F32" {
        w["v"] = w["v"].as_array().unwrap().iter().map(round).collect();
    } else if w["of"] == "Array" {
        w["v"] = w["v"].as_array().unwrap().iter().map(f32_rounded).collect();
    }
    w
}

/// A value as kv_fixture.py describes what it wrote: `{"t", "v"}`, arrays with `"of"`.
fn typed(v: &Value) -> serde_json::Value {
    match v {
        Value::Array(a) => typed_array(a),
        other => serde_json::json!({
            "t": format!("{:?}", other.value_type()),
            "v": gguf::value_json(other),
        }),
    }
}

fn typed_array(a: &Array) -> serde_json::Value {
    let v = match a {
        Array::Array(inner) => inner.iter().map(typed_array).collect(),
        _ => gguf::value_json(&Value::Array(a.clone())),
    };
    serde_json::json!({"t": "Array", "of": format!("{:?}", a.element_type()), "v": v})
}

#[test]
fn every_metadata_type_reads_back_as_the_gguf_package_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let (file, expected) = (dir.path().join("kv.gguf"), dir.path().join("kv.json"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gguf/kv_fixture.py");
    let o = Command::new(python())
        .arg(script)
        .arg(&file)
        .arg(&expected)
        .output()
        .expect("run python");
    assert!(o.status.success(), "{}", text(&o));
    let want: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&expected).unwrap()).unwrap();
    let f = gguf::read(&file).unwrap();
    let got: serde_json::Map<String, serde_json::Value> = f
        .metadata
        .iter()
        .filter(|(k, _)| *k != "general.alignment")
        .map(|(k, v)| (k.to_string(), typed(v)))
        .collect();
    for (k, w) in &want {
        let g = got.get(k).map(f32_rounded);
        assert_eq!(g, Some(f32_rounded(w)), "key {k}");
    }
    assert_eq!(got.len(), want.len(), "{:?}", got.keys());
    // Every element type and arrays of arrays were in the file.
    let of: std::collections::BTreeSet<String> = want
        .values()
        .filter_map(|w| w["of"].as_str().map(str::to_string))
        .collect();
    assert_eq!(of.len(), 13, "{of:?}");
    // inspect --json prints the values themselves.
    let o = stload(&["inspect".as_ref(), file.as_os_str(), "--json".as_ref()]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    fn plain(w: &serde_json::Value) -> serde_json::Value {
        match w["of"].as_str() {
            Some("Array") => w["v"].as_array().unwrap().iter().map(plain).collect(),
            _ => w["v"].clone(),
        }
    }
    for (k, w) in &want {
        let w = f32_rounded(w);
        if w["t"] == "F32" || w["of"] == "F32" {
            let f = |v: &serde_json::Value| v.as_f64().map(|x| x as f32);
            let g: Vec<_> = json["metadata"][k].as_array().map_or_else(
                || vec![f(&json["metadata"][k])],
                |a| a.iter().map(f).collect(),
            );
            let e: Vec<_> = plain(&w)
                .as_array()
                .map_or_else(|| vec![f(&w["v"])], |a| a.iter().map(f).collect());
            assert_eq!(g, e, "key {k}");
        } else {
            assert_eq!(json["metadata"][k], plain(&w), "key {k}");
        }
    }
    let o = stload(&["inspect".as_ref(), file.as_os_str()]);
    assert!(
        text(&o).contains("test.nested = [[1, -2, 3], [\"a\", \"bc\"], [0.5], [true, false]]"),
        "{}",
        text(&o)
    );
}

/// SIGINT while the second shard is written: exit 130, no shard and no temporary file left
/// (the finished first shard included).
#[cfg(unix)]
#[test]
fn interrupting_a_split_convert_leaves_no_shard() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.safetensors");
    // 64 F32 tensors of 8 MiB, sparse: reading is cheap, writing 256 MiB of F16 takes a while.
    let (tensors, bytes) = (64u64, 2048u64 * 1024 * 4);
    let mut header = serde_json::Map::new();
    for i in 0..tensors {
        header.insert(
            format!("t.{i}.weight"),
            serde_json::json!({"dtype": "F32", "shape": [2048, 1024],
                               "data_offsets": [i * bytes, (i + 1) * bytes]}),
        );
    }
    let mut json = serde_json::to_vec(&header).unwrap();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut head = (json.len() as u64).to_le_bytes().to_vec();
    head.extend_from_slice(&json);
    std::fs::write(&src, &head).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&src).unwrap();
    file.set_len(head.len() as u64 + tensors * bytes).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(["convert", src.to_str().unwrap(), "--arch", "none"])
        .args(["--outtype", "f16", "--split-max-tensors", "4", "--out"])
        .arg(out_dir.join("big.gguf"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let second = loop {
        let tmps = files_in(&out_dir)
            .iter()
            .filter(|n| n.ends_with(".tmp"))
            .count();
        if tmps >= 2 {
            break true;
        }
        if started.elapsed().as_secs() > 60 || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    assert!(
        second,
        "no second temporary shard seen: {:?}",
        files_in(&out_dir)
    );
    // SAFETY: sends a signal to the child this test started and has not yet waited for.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(text(&out).contains("cancelled"), "{}", text(&out));
    assert_eq!(files_in(&out_dir), Vec::<String>::new());
}

/// 200 shards under a limit of 48 open files: finished shards are closed while they wait to be
/// renamed, so the count of shards is not bounded by the descriptors a process may hold.
#[cfg(unix)]
#[test]
fn many_shards_need_few_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("many.safetensors");
    let n = 200u64;
    let mut header = serde_json::Map::new();
    for i in 0..n {
        header.insert(
            format!("t.{i:03}"),
            serde_json::json!({"dtype": "F32", "shape": [32], "data_offsets": [i * 128, (i + 1) * 128]}),
        );
    }
    let mut json = serde_json::to_vec(&header).unwrap();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&json);
    bytes.extend((0..n * 32).flat_map(|i| (i as f32).to_le_bytes()));
    std::fs::write(&src, &bytes).unwrap();
    let out = dir.path().join("many.gguf");
    let o = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 48 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_stload"))
        .args(["convert", src.to_str().unwrap(), "--arch", "none"])
        .args(["--split-max-tensors", "1", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let last = gguf::read(&gguf::shard_path(&out, 200, 200)).unwrap();
    assert_eq!(
        last.shard,
        Some(gguf::ShardInfo {
            no: 199,
            count: 200,
            tensors: 200
        })
    );
    assert_eq!(last.tensors[0].name, "t.199");
    assert_eq!(files_in(dir.path()).len(), 201);
}

/// A quantised export streams: each tensor's mapped input pages are let go once its bytes are
/// written, so the peak resident memory does not grow with the model. Two models of 8 and 32
/// tensors of 4 MiB: the larger one's peak is within 24 MiB of the smaller one's (it grew by
/// the 96 MiB of extra input before the pages were released).
#[test]
#[cfg(target_os = "linux")]
fn a_quantised_export_holds_about_one_tensor() {
    use stload::__private::write::{write_file, TensorRef};
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<u8> = (0..1u32 << 20)
        .flat_map(|i| ((i % 977) as f32 * 0.01 - 4.0).to_le_bytes())
        .collect();
    let mut peaks = Vec::new();
    for count in [8, 32] {
        let names: Vec<String> = (0..count)
            .map(|i| format!("blk.{i}.ffn_up.weight"))
            .collect();
        let tensors: Vec<TensorRef> = names
            .iter()
            .map(|name| TensorRef {
                name,
                dtype: stload::Dtype::F32,
                shape: &[256, 4096],
                data: &values,
            })
            .collect();
        let src = dir.path().join(format!("m{count}.safetensors"));
        write_file(&src, &tensors, &Default::default()).unwrap();
        let out = dir.path().join(format!("m{count}.gguf"));
        let (ok, peak) = stload_peak_kib(&convert_none(&src, &out, &["--outtype", "q4_0"]));
        assert!(ok, "convert of {count} tensors failed");
        peaks.push(peak);
    }
    assert!(
        peaks[1] < peaks[0] + (24 << 10),
        "peak {} MiB for 32 tensors, {} MiB for 8",
        peaks[1] >> 10,
        peaks[0] >> 10
    );
}
