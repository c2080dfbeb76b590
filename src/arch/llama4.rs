//! llama4: llama's attention names without its Q/K repack (Llama 4 rotates pairs of adjacent
//! head values, as llama.cpp's "normal" rope does), dense layers between mixture-of-experts
//! layers (`interleave_moe_layer_step`), each MoE layer with a sigmoid router, a shared expert
//! (`ffn_{gate,up,down}_shexp`) and its experts stored stacked: `gate_up_proj` `[experts,
//! hidden, 2 × ffn]` is written transposed and split into `ffn_gate_exps` and `ffn_up_exps`
//! `[experts, ffn, hidden]`, `down_proj` transposed into `ffn_down_exps`, as llama.cpp's
//! converter writes them. The text model of `Llama4ForConditionalGeneration` converts as well;
//! its vision model and projector are left out (llama.cpp's converter writes them to a
//! projector file).
//!
//! llama.cpp's llama4 fixes what the config describes per layer: every fourth layer has no
//! rope and full attention, the others rope, chunked attention in chunks of 8192 and L2-normed
//! queries and keys (but for 128 experts), and the layers without rope get attention
//! temperature tuning with floor 8192 and scale 0.1. It reads none of these from the file, so a
//! config.json that says otherwise is refused, naming the key.

use serde_json::Value;

use super::registry::{no_adjust, Arch, LeftOut};
use super::{gemma3, llama, Config};
use crate::error::{shown_json, Error, Result};
use crate::kv::Metadata;
use crate::shape::Shape;
use crate::source::item::Item;
use crate::source::{Piece, Source};
use crate::torch::TorchTensor;

/// llama4, and the text model of the multimodal llama4.
pub(crate) const ARCH: Arch = Arch {
    name: "llama4",
    hf_names: &["Llama4ForCausalLM", "Llama4ForConditionalGeneration"],
    gguf_name: "llama4",
    pairs: &[LM_HEAD_PAIRS, gemma3::TEXT_MODEL_PAIRS, FFN_PAIRS, llama::PAIRS],
    transform,
    gguf_transform: None,
    kv,
    computed: llama::computed,
    adjust: no_adjust,
    left_out: Some(LeftOut {
        prefixes: &VISION_PREFIXES,
        what: "the vision model and projector",
        instead: "this file holds the text model (llama.cpp's converter writes them to a projector file with --mmproj)",
    }),
};

/// The multimodal checkpoint's output (`language_model.lm_head`): llama's name, before
/// gemma3's text model names (which keep gemma's `lm_head`, dropped there).
#[rustfmt::skip]
pub const LM_HEAD_PAIRS: &[&str] = &["language_model.lm_head", "output"];

/// The feed-forward names: dense layers, the router, the shared expert, and the stacked
/// experts (renamed to `experts.*` here, split and transposed by [`transform`]).
#[rustfmt::skip]
pub const FFN_PAIRS: &[&str] = &[
    "feed_forward.shared_expert.gate_proj", "ffn_gate_shexp",
    "feed_forward.shared_expert.up_proj", "ffn_up_shexp",
    "feed_forward.shared_expert.down_proj", "ffn_down_shexp",
    "feed_forward.router", "ffn_gate_inp",
    "feed_forward.experts.gate_up_proj", "experts.gate_up_proj",
    "feed_forward.experts.down_proj", "experts.down_proj",
    "feed_forward.gate_proj", "ffn_gate",
    "feed_forward.up_proj", "ffn_up",
    "feed_forward.down_proj", "ffn_down",
];

/// The multimodal checkpoint's vision model and projector, left out of the text model.
const VISION_PREFIXES: [&str; 4] = [
    "vision_model.",
    "multi_modal_projector.",
    "model.vision_model.",
    "model.multi_modal_projector.",
];

/// The chunk size, temperature floor and scale llama.cpp's llama4 uses whatever the file says.
const CHUNK: u64 = 8192;
const FLOOR_SCALE: u64 = 8192;
const ATTN_SCALE: f32 = 0.1;
/// Every this-many-th layer has no rope (and full attention) in llama.cpp's llama4.
const NO_ROPE_STEP: usize = 4;
/// The expert count for which llama.cpp's llama4 leaves out the q/k L2 norm (Maverick).
const NO_QK_NORM_EXPERTS: u32 = 128;

/// Drops the vision model and projector, and splits and transposes the stacked experts.
pub fn transform(items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    let mut out = Vec::with_capacity(items.len() + items.len() / 8);
    for item in items {
        if VISION_PREFIXES
            .iter()
            .any(|p| item.original().starts_with(p))
        {
            continue;
        }
        let Some((prefix, which)) = item.name.split_once(".experts.") else {
            out.push(item);
            continue;
        };
        let prefix = prefix.to_string();
        match which {
            "gate_up_proj" => {
                let [_, _, both] = expert_shape(&item, config)?;
                if both % 2 != 0 {
                    return Err(config.inconsistent(&format!(
                        "tensor \"{}\" of shape {:?}: its last dimension (gate and up) is odd",
                        item.original(),
                        item.shape
                    )));
                }
                let half = both / 2;
                out.push(transposed(
                    &item,
                    0,
                    half,
                    format!("{prefix}.ffn_gate_exps.weight"),
                )?);
                out.push(transposed(
                    &item,
                    half,
                    half,
                    format!("{prefix}.ffn_up_exps.weight"),
                )?);
            }
            "down_proj" => {
                let [_, _, hidden] = expert_shape(&item, config)?;
                out.push(transposed(
                    &item,
                    0,
                    hidden,
                    format!("{prefix}.ffn_down_exps.weight"),
                )?);
            }
            _ => out.push(item),
        }
    }
    Ok(out)
}

/// The `[experts, rows, columns]` shape of a stacked expert tensor, its expert count checked
/// against `num_local_experts`.
fn expert_shape(item: &Item, config: &Config) -> Result<[u64; 3]> {
    let experts = config.first_u32(&["num_local_experts"])?.map(u64::from);
    match item.shape[..] {
        [e, rows, cols] if experts.is_none_or(|n| n == e) => Ok([e, rows, cols]),
        _ => Err(config.inconsistent(&format!(
            "tensor \"{}\" has shape {:?}, not [experts, rows, columns] with \"num_local_experts\" {} experts",
            item.original(),
            item.shape,
            experts.map_or("(missing)".into(), |n| n.to_string())
        ))),
    }
}

/// Columns `[from, from + count)` of each expert's matrix of `item` (`[experts, rows, cols]`),
/// transposed: `[experts, count, rows]`, as a strided view of the stored bytes (no copy until
/// the tensor is read).
fn transposed(item: &Item, from: u64, count: u64, name: String) -> Result<Item> {
    let (experts, rows, cols) = (item.shape[0], item.shape[1], item.shape[2]);
    let refuse = |why: &str| {
        Error::Unsupported(format!(
            "tensor \"{}\": cannot be transposed into \"{name}\": {why}",
            item.original()
        ))
    };
    let elem = item
        .dtype
        .byte_size()
        .ok_or_else(|| refuse(&format!("dtype {} has no whole-byte elements", item.dtype)))?
        as u64;
    // The stored tensor as a strided view: dense bytes, or a checkpoint's view.
    let (file, base) = match &item.source {
        Source::Contiguous(seg) => (
            seg.file,
            TorchTensor {
                name: item.original().to_string(),
                dtype: item.dtype,
                shape: item.shape.to_vec(),
                strides: vec![rows * cols, cols, 1],
                data_offset: seg.offset,
                storage_start: seg.offset,
                storage_len: seg.len,
                contiguous: true,
            },
        ),
        Source::Gathered(pieces) => match &pieces[..] {
            [Piece::View { file, view }] if view.shape.len() == 3 => (*file, (**view).clone()),
            _ => return Err(refuse("its bytes are not one stored tensor")),
        },
    };
    let (s0, s1, s2) = (base.strides[0], base.strides[1], base.strides[2]);
    let offset = from
        .checked_mul(s2)
        .and_then(|n| n.checked_mul(elem))
        .and_then(|n| n.checked_add(base.data_offset))
        .ok_or_else(|| refuse("its offset overflows"))?;
    let view = TorchTensor {
        shape: vec![experts, count, rows],
        strides: vec![s0, s2, s1],
        data_offset: offset,
        contiguous: false,
        ..base
    };
    let mut out = Item {
        name: item.name.clone(),
        original: item.original.clone(),
        dtype: item.dtype,
        shape: Shape::from_slice(&[experts, count, rows]),
        source: Source::view(file, view),
    };
    out.rename(name);
    Ok(out)
}

/// Per layer, whether it uses rope: `no_rope_layers` (1 = rope) when given, else a layer
/// without rope every `no_rope_layer_interval` layers, as transformers derives it.
fn rope_layers(config: &Config, blocks: usize) -> Result<Vec<bool>> {
    if let Some(list) = config.value("no_rope_layers") {
        let bad = || {
            config.inconsistent(&format!(
                "\"no_rope_layers\" is {}, not a list of 0 and 1 for each of the {blocks} layers",
                shown_json(list)
            ))
        };
        let items = list.as_array().ok_or_else(bad)?;
        if !items.is_empty() {
            if items.len() < blocks {
                return Err(bad());
            }
            return items[..blocks]
                .iter()
                .map(|v| match v.as_u64() {
                    Some(0) => Ok(false),
                    Some(1) => Ok(true),
                    _ => Err(bad()),
                })
                .collect();
        }
    }
    let interval = config.optional("no_rope_layer_interval")?.unwrap_or(4);
    Ok((0..blocks as u64)
        .map(|i| (i + 1) % interval != 0)
        .collect())
}

/// Refuses `key` when it differs from what llama.cpp's llama4 computes.
fn differs(config: &Config, key: &str, have: &str, llama_cpp: &str) -> Error {
    config.inconsistent(&format!(
        "\"{key}\" is {have}, but llama.cpp's llama4 computes {llama_cpp} (it reads no such key)"
    ))
}

/// Checks the per-layer layout (rope, attention kind, MoE layers) and the attention constants
/// against the ones llama.cpp's llama4 fixes; returns the MoE layer step.
fn check_layout(config: &Config, blocks: usize, experts: u32) -> Result<u32> {
    let rope = rope_layers(config, blocks)?;
    let want: Vec<bool> = (0..blocks).map(|i| (i + 1) % NO_ROPE_STEP != 0).collect();
    if let Some(i) = (0..blocks).find(|&i| rope[i] != want[i]) {
        return Err(differs(
            config,
            "no_rope_layers",
            &format!("{} at layer {i}", u8::from(rope[i])),
            &format!("rope in every layer but every {NO_ROPE_STEP}th"),
        ));
    }
    if let Some(types) = config.value("layer_types") {
        let list = types.as_array().filter(|l| l.len() == blocks);
        let Some(list) = list else {
            return Err(config.inconsistent(&format!(
                "\"layer_types\" is {}, not a list of the {blocks} layers' attention kinds",
                shown_json(types)
            )));
        };
        for (i, kind) in list.iter().enumerate() {
            let need = if want[i] {
                "chunked_attention"
            } else {
                "full_attention"
            };
            if kind.as_str() != Some(need) {
                return Err(differs(
                    config,
                    "layer_types",
                    &format!("{} at layer {i}", shown_json(kind)),
                    &format!("\"{need}\" there (chunked attention in the layers with rope)"),
                ));
            }
        }
    }
    let chunk = config.required("attention_chunk_size")?;
    if chunk != CHUNK {
        return Err(differs(
            config,
            "attention_chunk_size",
            &chunk.to_string(),
            &format!("chunks of {CHUNK}"),
        ));
    }
    if config.optional_bool("attn_temperature_tuning")? == Some(false) {
        return Err(differs(
            config,
            "attn_temperature_tuning",
            "false",
            "temperature tuning in the layers without rope",
        ));
    }
    let floor = config.optional("floor_scale")?.unwrap_or(FLOOR_SCALE);
    if floor != FLOOR_SCALE {
        return Err(differs(
            config,
            "floor_scale",
            &floor.to_string(),
            &format!("a floor of {FLOOR_SCALE}"),
        ));
    }
    let scale = config.optional_f64("attn_scale")?.unwrap_or(0.1);
    if scale as f32 != ATTN_SCALE {
        return Err(differs(
            config,
            "attn_scale",
            &scale.to_string(),
            &format!("a scale of {ATTN_SCALE}"),
        ));
    }
    let qk_norm = config.optional_bool("use_qk_norm")?.unwrap_or(true);
    if qk_norm != (experts != NO_QK_NORM_EXPERTS) {
        return Err(differs(
            config,
            "use_qk_norm",
            &qk_norm.to_string(),
            &format!("{} for {experts} experts", !qk_norm),
        ));
    }
    if let Some(act) = config.optional_str("hidden_act")? {
        if act != "silu" {
            return Err(differs(config, "hidden_act", &format!("\"{act}\""), "silu"));
        }
    }
    let step = config.required_u32(&["interleave_moe_layer_step"])?;
    if let Some(layers) = config.value("moe_layers") {
        let want: Vec<Value> = (0..blocks as u64)
            .filter(|i| (i + 1) % u64::from(step) == 0)
            .map(Value::from)
            .collect();
        if layers.as_array() != Some(&want) {
            return Err(differs(
                config,
                "moe_layers",
                &shown_json(layers),
                &format!(
                    "experts in every {step}th layer (\"interleave_moe_layer_step\"): {}",
                    Value::Array(want)
                ),
            ));
        }
    }
    Ok(step)
}

/// llama4's GGUF metadata: llama's keys (its rope factors included) with the dense layers'
/// `feed_forward_length` (`intermediate_size_mlp`), plus `expert_count` (`num_local_experts`),
/// `expert_used_count` (`num_experts_per_tok`), `expert_feed_forward_length`
/// (`intermediate_size`, the experts' and the shared expert's) and
/// `interleave_moe_layer_step`, as llama.cpp's converter writes them.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "llama4";
    llama::kv_for(config, arch, kv)?;
    let dense = config.required_u32(&["intermediate_size_mlp"])?;
    kv.set(format!("{arch}.feed_forward_length"), dense);
    let experts = config.required_u32(&["num_local_experts"])?;
    let used = config.required_u32(&["num_experts_per_tok"])?;
    if used > experts {
        return Err(config.inconsistent(&format!(
            "\"num_experts_per_tok\" {used} is more than \"num_local_experts\" {experts}"
        )));
    }
    let blocks = config.required_u32(&["num_hidden_layers"])?;
    let step = check_layout(config, blocks as usize, experts)?;
    kv.set(format!("{arch}.expert_count"), experts);
    kv.set(format!("{arch}.expert_used_count"), used);
    let ffn = config.required_u32(&["intermediate_size"])?;
    kv.set(format!("{arch}.expert_feed_forward_length"), ffn);
    kv.set(format!("{arch}.interleave_moe_layer_step"), step);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transposed_view_reads_each_experts_columns_as_rows() {
        // 2 experts of a 2 x 4 matrix (values = their index): columns 2..4 transposed.
        let item = Item {
            name: "blk.1.experts.gate_up_proj".into(),
            original: None,
            dtype: crate::dtype::Dtype::F32,
            shape: Shape::from_slice(&[2, 2, 4]),
            source: Source::Contiguous(crate::source::Segment {
                file: 0,
                offset: 8,
                len: 64,
            }),
        };
        let out = transposed(&item, 2, 2, "blk.1.ffn_up_exps.weight".into()).unwrap();
        assert_eq!(out.name, "blk.1.ffn_up_exps.weight");
        assert_eq!(out.original(), "blk.1.experts.gate_up_proj");
        assert_eq!(&out.shape[..], &[2, 2, 2]);
        let [Piece::View { view, .. }] = &out.source.pieces()[..] else {
            panic!("{:?}", out.source)
        };
        let file: Vec<u8> = (0..8u8)
            .chain((0..16u32).flat_map(|v| (v as f32).to_le_bytes()))
            .collect();
        let mut dense = vec![0u8; 32];
        crate::torch::gather_strided(&file, view, &mut dense).unwrap();
        let values: Vec<f32> = dense
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        // expert 0 rows [0 1 2 3] [4 5 6 7]: columns 2, 3 -> [2 6] [3 7]; expert 1 likewise.
        assert_eq!(values, [2.0, 6.0, 3.0, 7.0, 10.0, 14.0, 11.0, 15.0]);
    }
}
