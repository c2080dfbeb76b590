//! `stload convert X.gguf --out DIR --to-hf`: the llama, qwen2 and mixtral fixtures of
//! tests/python/make_arch_fixtures.py (BF16) go to GGUF (BF16) and back, and every tensor comes
//! back under its Hugging Face name with the fixture's bytes (llama's Q/K repack undone, mixtral's
//! experts unstacked), with a
//! config.json holding the fixture's sizes; and the refusals, each naming what is wrong: an
//! architecture not rebuilt (listing those that are), llama3's and phi3's (longrope) computed rope
//! factors, a GGUF
//! without general.architecture, an input that is no GGUF, an output directory that is not
//! empty, a --dtype it does not write and flags that do not apply. The round trip through
//! transformers (logits, tokenizer) is tests/gguf/e2e.py's `to_hf_*`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::arch::fixtures;
use stload::{Model, Options};

fn stload(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(args)
        .output()
        .expect("run stload")
}

/// Runs stload with `args`, asserting success.
fn ok(args: &[&std::ffi::OsStr]) {
    let out = stload(args);
    assert!(
        out.status.success(),
        "stload {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs stload with `args`, asserting failure, and returns its message.
fn refused(args: &[&std::ffi::OsStr]) -> String {
    let out = stload(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "stload {args:?} succeeded");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The fixture `arch` as a BF16 GGUF in `dir`.
fn gguf_of(arch: &str, dir: &Path) -> PathBuf {
    let gguf = dir.join(format!("{arch}.gguf"));
    let src = fixtures().join(arch);
    ok(&[
        "convert".as_ref(),
        src.as_os_str(),
        "--out".as_ref(),
        gguf.as_os_str(),
        "--outtype".as_ref(),
        "bf16".as_ref(),
    ]);
    gguf
}

fn to_hf(gguf: &Path, out: &Path, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "convert".into(),
        gguf.into(),
        "--out".into(),
        out.into(),
        "--to-hf".into(),
    ];
    args.extend(extra.iter().map(Into::into));
    args
}

fn refs(args: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    args.iter().map(|a| a.as_os_str()).collect()
}

#[test]
fn llama_qwen2_and_mixtral_come_back_with_the_fixtures_names_bytes_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    for arch in ["llama", "qwen2", "mixtral"] {
        let gguf = gguf_of(arch, dir.path());
        let out = dir.path().join(format!("{arch}-hf"));
        ok(&refs(&to_hf(&gguf, &out, &["--dtype", "bf16"])));
        let src = Model::open_dir(fixtures().join(arch), &Options::default()).unwrap();
        let back =
            Model::open_files(&[out.join("model.safetensors")], &Options::default()).unwrap();
        let mut want: Vec<&str> = src.names().collect();
        let mut have: Vec<&str> = back.names().collect();
        want.sort_unstable();
        have.sort_unstable();
        assert_eq!(have, want, "{arch}: tensor names");
        for name in want {
            let (a, b) = (src.info(name).unwrap(), back.info(name).unwrap());
            assert_eq!((b.dtype, b.shape), (a.dtype, a.shape), "{arch}: {name}");
            let (a, b) = (src.get(name).unwrap(), back.get(name).unwrap());
            assert!(a.data() == b.data(), "{arch}: {name}: bytes differ");
        }
        let read = |p: PathBuf| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
        };
        let (want, have) = (
            read(fixtures().join(arch).join("config.json")),
            read(out.join("config.json")),
        );
        for key in [
            "architectures",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
            "rms_norm_eps",
            "rope_theta",
        ] {
            assert_eq!(have[key], want[key], "{arch}: config.json {key}");
        }
        assert_eq!(have["torch_dtype"], "bfloat16");
        let tokenizer = read(out.join("tokenizer.json"));
        assert_eq!(tokenizer["model"]["type"], "BPE", "{arch}");
    }
}

#[test]
fn architectures_not_rebuilt_are_refused_listing_the_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = gguf_of("gemma", dir.path());
    let out = dir.path().join("out");
    let err = refused(&refs(&to_hf(&gguf, &out, &[])));
    assert!(
        err.contains("gemma.gguf")
            && err.contains("general.architecture \"gemma\"")
            && err.contains(
                "supported: llama, mixtral (a llama GGUF with experts), qwen2, qwen3, qwen3moe"
            ),
        "{err}"
    );
    assert!(!out.exists(), "an output was left behind");
    // llama3's and phi3's longrope factors are computed from config.json's rope_scaling, which
    // they do not give back.
    for (arch, tensor) in [("llama3", "rope_freqs.weight"), ("phi3", "rope_factors_")] {
        let gguf = gguf_of(arch, dir.path());
        let err = refused(&refs(&to_hf(&gguf, &out, &[])));
        assert!(
            err.contains(tensor) && err.contains("rope_scaling"),
            "{arch}: {err}"
        );
        assert!(!out.exists(), "{arch}: an output was left behind");
    }
}

/// A GGUF v3 file with one F32 tensor "w" of 4 values and no metadata at all.
fn bare_gguf() -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(1u64.to_le_bytes()); // tensors
    b.extend(0u64.to_le_bytes()); // keys
    b.extend(1u64.to_le_bytes());
    b.extend(b"w");
    b.extend(1u32.to_le_bytes()); // dimensions
    b.extend(4u64.to_le_bytes());
    b.extend(0u32.to_le_bytes()); // F32
    b.extend(0u64.to_le_bytes()); // offset
    b.resize(b.len().next_multiple_of(32), 0);
    b.extend([0u8; 16]);
    b
}

#[test]
fn bad_inputs_outputs_and_flags_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("bare.gguf");
    std::fs::write(&bare, bare_gguf()).unwrap();
    let out = dir.path().join("out");
    let err = refused(&refs(&to_hf(&bare, &out, &[])));
    assert!(
        err.contains("bare.gguf") && err.contains("no general.architecture"),
        "{err}"
    );
    // Not a GGUF: the fixture's safetensors.
    let st = fixtures().join("llama").join("model.safetensors");
    let err = refused(&refs(&to_hf(&st, &out, &[])));
    assert!(
        err.contains("model.safetensors") && err.contains("not a GGUF file"),
        "{err}"
    );
    assert!(!out.exists(), "an output was left behind");

    let gguf = gguf_of("llama", dir.path());
    // An output directory that is not empty, and one that is a file.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), b"mine").unwrap();
    let err = refused(&refs(&to_hf(&gguf, &out, &[])));
    assert!(err.contains("--out") && err.contains("not empty"), "{err}");
    assert_eq!(std::fs::read(out.join("keep.txt")).unwrap(), b"mine");
    let file = out.join("keep.txt");
    let err = refused(&refs(&to_hf(&gguf, &file, &[])));
    assert!(err.contains("not a directory"), "{err}");
    // A dtype it does not write, and flags of the other conversions.
    let fresh = dir.path().join("fresh");
    let err = refused(&refs(&to_hf(&gguf, &fresh, &["--dtype", "f8_e4m3"])));
    assert!(
        err.contains("--dtype \"f8_e4m3\"") && err.contains("f32, f16 or bf16"),
        "{err}"
    );
    for flag in [
        &["--outtype", "f16"][..],
        &["--arch", "llama"],
        &["--force"],
    ] {
        let err = refused(&refs(&to_hf(&gguf, &fresh, flag)));
        assert!(
            err.contains(flag[0]) && err.contains("does not apply to --to-hf"),
            "{err}"
        );
    }
    assert!(!fresh.exists(), "an output was left behind");
    // An empty directory is fine.
    std::fs::create_dir(&fresh).unwrap();
    ok(&refs(&to_hf(&gguf, &fresh, &[])));
    assert!(fresh.join("config.json").is_file());
}
