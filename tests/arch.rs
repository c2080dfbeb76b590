//! Renames, architecture transforms, splits, stacks and slices, against what numpy computes
//! independently (tests/python/make_arch_fixtures.py) and ollama's converter names.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::arch::{fixtures, hex, options};
use stload::{Dtype, Error, Model, Options};
use stload::{SplitRule, StackRule};

struct Want {
    shape: Vec<u64>,
    bytes: Vec<u8>,
    f32: Vec<u8>,
}

fn expected(arch: &str) -> BTreeMap<String, Want> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    json[arch]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            let want = Want {
                shape,
                bytes: hex(v["hex"].as_str().unwrap()),
                f32: hex(v["f32_hex"].as_str().unwrap()),
            };
            (k.clone(), want)
        })
        .collect()
}

fn with_arch(arch: &str) -> Options {
    options(arch, false)
}

#[test]
fn each_architecture_gives_ollamas_names_and_layouts_in_bf16_and_f32() {
    for arch in ["llama", "phi3", "mixtral"] {
        let model = Model::open_dir(fixtures().join(arch), &with_arch(arch)).unwrap();
        let want = expected(arch);
        let names: Vec<&str> = model.names().collect();
        assert_eq!(
            names,
            want.keys().map(String::as_str).collect::<Vec<_>>(),
            "{arch}"
        );
        for (name, w) in &want {
            let t = model.get(name).unwrap();
            assert_eq!(t.shape(), w.shape.as_slice(), "{arch} {name}");
            assert_eq!(t.data(), w.bytes.as_slice(), "{arch} {name} bf16");
            assert_eq!(
                model.get_as(name, Dtype::F32).unwrap().data(),
                w.f32.as_slice(),
                "{arch} {name} f32"
            );
        }
    }
}

#[test]
fn repack_is_a_permutation_and_splits_stay_zero_copy() {
    let llama = Model::open_dir(fixtures().join("llama"), &with_arch("llama")).unwrap();
    assert!(
        !llama.get("blk.0.attn_q.weight").unwrap().is_mapped(),
        "repacked rows are gathered"
    );
    assert!(
        llama.get("blk.0.attn_v.weight").unwrap().is_mapped(),
        "plain renames stay zero-copy"
    );
    let info = llama.info("blk.1.attn_k.weight").unwrap();
    assert_eq!(info.original_name, "model.layers.1.self_attn.k_proj.weight");
    let phi3 = Model::open_dir(fixtures().join("phi3"), &with_arch("phi3")).unwrap();
    assert!(
        phi3.get("blk.0.attn_k.weight").unwrap().is_mapped(),
        "split parts are views"
    );
}

#[test]
fn convert_with_arch_writes_ollamas_names_and_repacked_values() {
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("llama-f32");
    let status = Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(["convert", "--arch", "llama", "--dtype", "f32", "--out"])
        .arg(&dst)
        .arg(fixtures().join("llama"))
        .status()
        .unwrap();
    assert!(status.success());
    let model = Model::open_dir(&dst, &Options::default()).unwrap();
    let want = expected("llama");
    assert_eq!(model.len(), want.len());
    for (name, w) in &want {
        let t = model.get(name).unwrap();
        assert_eq!(t.dtype(), Dtype::F32);
        assert_eq!(t.data(), w.f32.as_slice(), "{name}");
    }
}

#[test]
fn bad_configs_are_clear_errors_at_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("llama/model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let err = Model::open_dir(dir.path(), &with_arch("llama"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.json") && err.contains("llama"),
        "{err}"
    );
    let cases = [
        (
            r#"{"num_attention_heads": 3, "hidden_size": 32, "head_dim": 8}"#,
            "rows",
        ),
        (
            r#"{"hidden_size": 32}"#,
            "\"num_attention_heads\" is missing",
        ),
        (
            r#"{"num_attention_heads": 4, "num_key_value_heads": -1, "hidden_size": 32}"#,
            "not a positive integer",
        ),
        (
            r#"{"num_attention_heads": 5, "hidden_size": 32}"#,
            "not a multiple",
        ),
        (r#"[1]"#, "not a JSON object"),
        (r#"{"#, "not valid JSON"),
    ];
    for (config, needle) in cases {
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        let err = Model::open_dir(dir.path(), &with_arch("llama"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.json") && err.contains(needle),
            "{config}: {err}"
        );
    }
    let err = Model::open_dir(fixtures().join("llama"), &with_arch("gpt9")).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)) && err.to_string().contains("gpt9"));
}

#[test]
fn renames_that_collide_name_both_originals() {
    let options = {
        let mut o = Options::default();
        o.rename = stload::Replacer::from_flat(&[
            "input_layernorm",
            "norm",
            "post_attention_layernorm",
            "norm",
        ])
        .unwrap();
        o
    };
    let err = Model::open_dir(fixtures().join("llama"), &options).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Duplicate(_)), "{text}");
    assert!(
        text.contains("input_layernorm") && text.contains("post_attention_layernorm"),
        "{text}"
    );
}

#[test]
fn user_split_stack_and_slice_match_the_stored_bytes() {
    let want = expected("llama");
    let options = {
        let mut o = Options::default();
        o.arch = Some("llama".into());
        o.splits = vec![SplitRule {
            name: "blk.0.ffn_gate.weight".into(),
            parts: vec![("g.a".into(), 10), ("g.b".into(), 6)],
        }];
        o.stacks = vec![StackRule {
            names: vec!["blk.0.ffn_up.weight".into(), "blk.1.ffn_up.weight".into()],
            into: "ups".into(),
        }];
        o
    };
    let model = Model::open_dir(fixtures().join("llama"), &options).unwrap();
    let gate = &want["blk.0.ffn_gate.weight"].bytes;
    let row = 32 * 2;
    assert_eq!(model.get("g.a").unwrap().data(), &gate[..10 * row]);
    assert_eq!(model.get("g.b").unwrap().shape(), &[6, 32]);
    assert_eq!(model.get("g.b").unwrap().data(), &gate[10 * row..]);
    let ups = model.get("ups").unwrap();
    assert_eq!(ups.shape(), &[2, 16, 32]);
    assert_eq!(
        ups.data(),
        [
            want["blk.0.ffn_up.weight"].bytes.clone(),
            want["blk.1.ffn_up.weight"].bytes.clone()
        ]
        .concat()
    );
    assert!(
        model.get("blk.0.ffn_gate.weight").is_err(),
        "the split tensor is replaced"
    );

    // Slices: axis 0 is a view; axis 1 a strided copy; both equal slicing the numpy bytes.
    let q = &want["blk.0.attn_q.weight"];
    let down = &want["blk.0.ffn_down.weight"]; // [32, 16] BF16
    let s0 = model
        .get_slice("blk.0.ffn_down.weight", 0, 4, 12, None)
        .unwrap();
    assert!(s0.is_mapped());
    assert_eq!(s0.data(), &down.bytes[4 * 32..12 * 32]);
    let s1 = model
        .get_slice("blk.0.ffn_down.weight", 1, 3, 7, None)
        .unwrap();
    assert_eq!(s1.shape(), &[32, 4]);
    let expect: Vec<u8> = (0..32)
        .flat_map(|r| down.bytes[r * 32 + 6..r * 32 + 14].to_vec())
        .collect();
    assert_eq!(s1.data(), expect.as_slice());
    let s1f = model
        .get_slice("blk.0.ffn_down.weight", 1, 3, 7, Some(Dtype::F32))
        .unwrap();
    let expect_f32: Vec<u8> = (0..32)
        .flat_map(|r| down.f32[r * 64 + 12..r * 64 + 28].to_vec())
        .collect();
    assert_eq!(s1f.data(), expect_f32.as_slice());
    // A slice of a repacked tensor composes with the permutation.
    let sq = model
        .get_slice("blk.0.attn_q.weight", 0, 8, 16, None)
        .unwrap();
    assert_eq!(sq.data(), &q.bytes[8 * 64..16 * 64]);
    for (axis, start, stop) in [(2, 0, 1), (0, 5, 40), (1, 7, 3)] {
        let err = model
            .get_slice("blk.0.ffn_down.weight", axis, start, stop, None)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
}
