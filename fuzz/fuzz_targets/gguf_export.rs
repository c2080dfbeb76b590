//! A GGUF export from arbitrary `config.json` and tokenizer files beside a fixed tiny llama
//! checkpoint (16 tokens, width 8, one layer): nothing may panic, abort or allocate by a size
//! the text claims (`scripts/fuzz.sh` runs this target under a tighter memory limit than the
//! others), and a failed export leaves no file.
//!
//! Input layout: byte 0 picks the tokenizer file (bit 0: `tokenizer.model`, else
//! `tokenizer.json`) and the architecture (bit 1: `llama`, else detected from config.json); the
//! rest is cut at 0xFF bytes (never in UTF-8 text) into config.json, the tokenizer file,
//! tokenizer_config.json and generation_config.json, in that order. A missing part is a
//! missing file.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stload::gguf::OutType;
use stload::{Model, Options};

/// The tiny checkpoint's tensors: name and shape (all F32 zeros).
const TENSORS: [(&str, &[u64]); 12] = [
    ("lm_head.weight", &[16, 8]),
    ("model.embed_tokens.weight", &[16, 8]),
    ("model.layers.0.input_layernorm.weight", &[8]),
    ("model.layers.0.mlp.down_proj.weight", &[8, 16]),
    ("model.layers.0.mlp.gate_proj.weight", &[16, 8]),
    ("model.layers.0.mlp.up_proj.weight", &[16, 8]),
    ("model.layers.0.post_attention_layernorm.weight", &[8]),
    ("model.layers.0.self_attn.k_proj.weight", &[8, 8]),
    ("model.layers.0.self_attn.o_proj.weight", &[8, 8]),
    ("model.layers.0.self_attn.q_proj.weight", &[8, 8]),
    ("model.layers.0.self_attn.v_proj.weight", &[8, 8]),
    ("model.norm.weight", &[8]),
];

/// The checkpoint as a safetensors file.
fn checkpoint() -> Vec<u8> {
    let mut header = String::from("{");
    let mut offset = 0u64;
    for (i, (name, shape)) in TENSORS.iter().enumerate() {
        let bytes = shape.iter().product::<u64>() * 4;
        let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{offset},{}]}}",
            dims.join(","),
            offset + bytes
        ));
        offset += bytes;
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + offset as usize, 0);
    out
}

/// One scratch directory per fuzzing process holding the checkpoint; the side files are
/// rewritten for each input.
fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("scratch dir");
        std::fs::write(dir.path().join("model.safetensors"), checkpoint()).expect("checkpoint");
        dir
    })
    .path()
}

fuzz_target!(|input: &[u8]| {
    let [pick, rest @ ..] = input else {
        return;
    };
    let dir = scratch();
    let tokenizer = if pick & 1 != 0 {
        "tokenizer.model"
    } else {
        "tokenizer.json"
    };
    let names = [
        "config.json",
        tokenizer,
        "tokenizer_config.json",
        "generation_config.json",
    ];
    let mut parts = rest.split(|&b| b == 0xFF);
    for name in ["tokenizer.model", "tokenizer.json"]
        .into_iter()
        .chain(names.iter().copied())
    {
        let _ = std::fs::remove_file(dir.join(name));
    }
    for name in names {
        if let Some(bytes) = parts.next() {
            std::fs::write(dir.join(name), bytes).expect("write side file");
        }
    }
    let mut options = Options::default();
    options.threads = 1;
    if pick & 2 != 0 {
        options.arch = Some("llama".to_string());
    }
    let out = dir.join("out.gguf");
    let _ = std::fs::remove_file(&out);
    let Ok(model) = Model::open_dir(dir, &options) else {
        return;
    };
    match model.write_gguf(&out, OutType::F32, &mut |_, _| true) {
        Ok(()) => assert!(out.exists(), "an export that succeeded wrote no file"),
        Err(_) => assert!(!out.exists(), "a failed export left a file"),
    }
});
