//! Each tensor's type in a quantised file type, by llama.cpp's rule (`llama_tensor_get_type`
//! and the functions it calls, in `llama-quant.cpp`): which tensors are quantised at all, the
//! output and token-embedding types, the layers given more bits, the MoE and GQA cases, the
//! fallback when a row is not a whole number of blocks, and llama-quantize's overrides
//! (`--output-tensor-type`, `--token-embedding-type`, `--tensor-type`, `--pure`).
//!
//! Data flows one way: tensor names and shapes, with the model facts read from the GGUF
//! metadata as llama.cpp reads them ([`ModelFacts`]), in; a type per tensor out ([`choose`]).
//! llama.cpp counts `attn_v` and (without experts) `ffn_down` tensors as it meets them, in the
//! order of its loader's map (tensors outside `blk.N.` first, then by layer, then by name), so
//! [`choose`] walks them in that order too.

use crate::error::{Error, Result};
use crate::kv::{Array, Metadata, Value};

use super::types::{GgmlType, OutType};
pub use crate::type_overrides::{parse_ggml_type, TensorTypeOverride, TypeOverrides};

/// What llama.cpp's rule reads of a model: its architecture and hyperparameters, from the
/// GGUF keys llama.cpp's loader reads them from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelFacts {
    /// `general.architecture`.
    pub arch: String,
    /// `ARCH.block_count`.
    pub n_layer: u32,
    /// `ARCH.attention.head_count` (of the first layer when it is per layer).
    pub n_head: u32,
    /// `ARCH.attention.head_count_kv`, `n_head` when missing.
    pub n_head_kv: u32,
    /// `ARCH.expert_count`; 0 when missing or at most 1, as llama.cpp reads it.
    pub n_expert: u32,
}

/// A whole number of a key: a scalar, or the first element of a per-layer array.
fn first_u32(v: Option<&Value>) -> Option<u32> {
    let n: i128 = match v? {
        Value::U8(x) => (*x).into(),
        Value::I8(x) => (*x).into(),
        Value::U16(x) => (*x).into(),
        Value::I16(x) => (*x).into(),
        Value::U32(x) => (*x).into(),
        Value::I32(x) => (*x).into(),
        Value::U64(x) => (*x).into(),
        Value::I64(x) => (*x).into(),
        Value::Array(Array::U32(a)) => (*a.first()?).into(),
        Value::Array(Array::I32(a)) => (*a.first()?).into(),
        Value::Array(Array::U64(a)) => (*a.first()?).into(),
        Value::Array(Array::I64(a)) => (*a.first()?).into(),
        _ => return None,
    };
    u32::try_from(n).ok()
}

impl ModelFacts {
    /// The facts of the model whose GGUF metadata is `m`; missing keys count as 0.
    pub fn from_metadata(m: &Metadata) -> ModelFacts {
        let arch = match m.get("general.architecture") {
            Some(Value::String(a)) => a.clone(),
            _ => String::new(),
        };
        let key = |k: &str| first_u32(m.get(&format!("{arch}.{k}")));
        let n_head = key("attention.head_count").unwrap_or(0);
        let n_expert = key("expert_count").unwrap_or(0);
        ModelFacts {
            n_layer: key("block_count").unwrap_or(0),
            n_head,
            n_head_kv: key("attention.head_count_kv").unwrap_or(n_head),
            n_expert: if n_expert <= 1 { 0 } else { n_expert },
            arch,
        }
    }

    /// Query heads per key/value head (llama.cpp's `n_gqa`), 0 without key/value heads.
    fn n_gqa(&self) -> u32 {
        self.n_head.checked_div(self.n_head_kv).unwrap_or(0)
    }

    /// Whether llama.cpp's loader calls the model a 70B (its models' `load_arch_hparams`),
    /// which gives `attn_v` more bits.
    fn is_70b(&self) -> bool {
        match (self.arch.as_str(), self.n_layer) {
            ("llama", 80) => self.n_head != self.n_head_kv,
            ("qwen2" | "deci" | "olmo", 80) | ("jais2", 68) => true,
            _ => false,
        }
    }

    fn is_falcon(&self) -> bool {
        self.arch == "falcon"
    }
}

/// What [`choose`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Per tensor, in the order given: the type llama.cpp quantises it to, or `None` for a
    /// tensor it leaves as it is (1-D tensors, norms, routers, ...).
    pub types: Vec<Option<GgmlType>>,
    /// One line per tensor whose row is not a whole number of its type's blocks and that
    /// fell back to another type, as llama.cpp warns.
    pub fallbacks: Vec<String>,
}

/// llama.cpp's broad kinds of tensors (`tensor_category`), by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

fn category(name: &str) -> Category {
    let has = |s: &str| name.contains(s);
    if name == "output.weight" {
        Category::Output
    } else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        Category::TokenEmbd
    } else if has("attn_qkv.weight") {
        Category::AttnQkv
    } else if has("attn_kv_b.weight") {
        Category::AttnKvB
    } else if has("attn_v.weight") {
        Category::AttnV
    } else if has("attn_k.weight") {
        Category::AttnK
    } else if has("attn_q.weight") {
        Category::AttnQ
    } else if has("attn_output.weight") {
        Category::AttnOutput
    } else if has("ffn_up") {
        Category::FfnUp
    } else if has("ffn_gate") {
        Category::FfnGate
    } else if has("ffn_down") {
        Category::FfnDown
    } else {
        Category::Other
    }
}

fn is_attn_v(c: Category) -> bool {
    matches!(c, Category::AttnV | Category::AttnQkv | Category::AttnKvB)
}

/// ggml's `ggml_n_dims` of a shape given outermost first: trailing dimensions of 1 (outer
/// ones here) do not count.
fn n_dims(shape: &[u64]) -> usize {
    shape
        .iter()
        .position(|&d| d != 1)
        .map_or(1, |i| shape.len() - i)
}

/// Name parts of tensors llama.cpp never quantises (`tensor_allows_quantization`).
const NEVER: &[&str] = &[
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
];

/// More name parts glm5-next keeps unquantised.
const NEVER_GLM5_NEXT: &[&str] = &[
    "hc_",
    "indexer.attn_q_b",
    "indexer.attn_k",
    "indexer.proj",
    "indexer_compressor_gate",
    "indexer_compressor_ape",
    "ssm_f_a.weight",
    "ssm_f_b.weight",
    "ssm_g_a.weight",
    "ssm_g_b.weight",
    "ssm_beta.weight",
    "attn_kv_a_mqa.weight",
    "attn_k_b.weight",
    "attn_v_b.weight",
];

/// Whether llama.cpp quantises the tensor at all: at least 2-D, a name ending in "weight"
/// and none of the names it keeps as they are.
fn allows_quantization(arch: &str, name: &str, shape: &[u64]) -> bool {
    if n_dims(shape) < 2 {
        return false;
    }
    // `name.rfind("weight") == name.size() - 6`, with its size_t arithmetic: a name of 5
    // bytes without "weight" passes too.
    let weight = match name.rfind("weight") {
        Some(at) => name.len() >= 6 && at == name.len() - 6,
        None => name.len() == 5,
    };
    weight
        && !NEVER.iter().any(|p| name.contains(p))
        && name != "position_embd.weight"
        && name != "token_types.weight"
        && !(arch == "glm5-next" && NEVER_GLM5_NEXT.iter().any(|p| name.contains(p)))
}

/// The layer of `blk.N.…`, read as C's `sscanf(name, "blk.%d.")` reads it.
fn layer_of(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("blk.")?.trim_start();
    let sign_len = usize::from(rest.starts_with(['+', '-']));
    let digits = rest[sign_len..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    rest[..sign_len + digits].parse().ok()
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third
/// between them.
fn use_more_bits(i: i64, n: i64) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// The rule's state over one model: its facts, the counters llama.cpp keeps, and the
/// fallbacks taken.
struct Rule<'a> {
    ftype: OutType,
    facts: &'a ModelFacts,
    overrides: &'a TypeOverrides,
    n_attention_wv: i64,
    n_layer: i64,
    i_attention_wv: i64,
    i_ffn_down: i64,
    i_ffn_gate: i64,
    i_ffn_up: i64,
    tied: bool,
    fallbacks: Vec<String>,
}

impl Rule<'_> {
    /// `llama_tensor_get_type`: overrides, then the mix, then the fallback.
    fn tensor(&mut self, name: &str, shape: &[u64], default: GgmlType) -> Result<GgmlType> {
        let cat = category(name);
        let pattern = self.overrides.tensor_types.iter().find(|o| o.matches(name));
        if let (Some(t), Category::TokenEmbd) = (self.overrides.token_embedding, cat) {
            // An explicit --tensor-type may name per_layer_token_embd instead.
            if name != "per_layer_token_embd.weight" || pattern.is_none() {
                return Ok(t);
            }
        }
        if let (Some(t), Category::Output) = (self.overrides.output, cat) {
            return Ok(t);
        }
        let mut ty = default;
        if let Some(o) = pattern {
            ty = o.ty;
        } else if !self.overrides.pure {
            ty = self.mix(name, shape, ty, cat)?;
        }
        Ok(self.fallback(name, shape, ty))
    }

    /// `tensor_type_fallback`: a row that is not a whole number of blocks takes the type of
    /// the table below, or F16 when that does not fit either.
    fn fallback(&mut self, name: &str, shape: &[u64], ty: GgmlType) -> GgmlType {
        let ncols = shape.last().copied().unwrap_or(1);
        let block = |t: GgmlType| t.block().map_or(1, |b| b.0);
        if ncols.is_multiple_of(block(ty)) {
            return ty;
        }
        let mut to = match ty.0 {
            10 | 11 | 34 | 35 => GgmlType(2), // Q2_K, Q3_K, TQ1_0, TQ2_0 -> Q4_0
            12 => GgmlType(6),                // Q4_K -> Q5_0
            13 => GgmlType(7),                // Q5_K -> Q5_1
            14 => GgmlType::Q8_0,             // Q6_K -> Q8_0
            23 => GgmlType(20),               // IQ4_XS -> IQ4_NL
            _ => ty,                          // blocks of 32 have nothing smaller
        };
        if !ncols.is_multiple_of(block(to)) {
            to = GgmlType::F16;
        }
        self.fallbacks.push(format!(
            "tensor \"{name}\": a row of {ncols} values is not a whole number of {ty} blocks of {}; written as {to}",
            block(ty)
        ));
        to
    }

    /// `layer_info`: the layer of an FFN tensor, by counter, or by name with experts.
    fn layer(&self, counter: i64, name: &str) -> Result<(i64, i64)> {
        if self.facts.n_expert <= 1 {
            return Ok((counter, self.n_layer));
        }
        let bad = |why: String| Error::InvalidArgument(format!("tensor \"{name}\": {why}"));
        let i = layer_of(name)
            .ok_or_else(|| bad("no layer number (blk.N.) in an expert model".into()))?;
        if i < 0 || i >= self.n_layer {
            return Err(bad(format!(
                "layer {i} is not below block_count {}",
                self.n_layer
            )));
        }
        Ok((i, self.n_layer))
    }

    /// `llama_tensor_get_type_impl` for the file types stload writes.
    fn mix(
        &mut self,
        name: &str,
        shape: &[u64],
        mut ty: GgmlType,
        cat: Category,
    ) -> Result<GgmlType> {
        use OutType as F;
        const Q3_K: GgmlType = GgmlType(11);
        const Q4_K: GgmlType = GgmlType(12);
        const Q5_K: GgmlType = GgmlType(13);
        const Q6_K: GgmlType = GgmlType(14);
        let f = self.ftype;
        let facts = self.facts;
        let falcon = facts.is_falcon();
        let experts8 = facts.n_expert == 8;
        let glm_q = ["attn_q_a", "attn_q_b", "nextn.eh_proj"];
        if facts.arch == "glm5-next" && glm_q.iter().any(|p| name.contains(p)) {
            // glm5-next keeps these at Q8_0 or better.
            if ![GgmlType::F32, GgmlType::BF16, GgmlType::F16].contains(&ty) {
                return Ok(GgmlType::Q8_0);
            }
        }
        if cat == Category::Output || (self.tied && cat == Category::TokenEmbd) {
            if let Some(t) = self.overrides.output {
                ty = t;
            } else {
                let nx = shape.last().copied().unwrap_or(1);
                let block = ty.block().map_or(1, |b| b.0);
                if falcon || !nx.is_multiple_of(block) {
                    ty = GgmlType::Q8_0;
                } else if ty != GgmlType::Q8_0 {
                    ty = Q6_K;
                }
            }
        } else if cat == Category::TokenEmbd {
            if let Some(t) = self.overrides.token_embedding {
                ty = t;
            } else if matches!(f, F::TQ1_0 | F::TQ2_0) {
                ty = Q4_K;
            }
        } else if is_attn_v(cat) {
            let gqa4 = facts.n_gqa() >= 4;
            let i = self.i_attention_wv;
            match f {
                F::Q2_K => ty = if gqa4 { Q4_K } else { Q3_K },
                F::Q2_K_S if gqa4 => ty = Q4_K,
                F::Q3_K_M => ty = if i < 2 { Q5_K } else { Q4_K },
                F::Q3_K_L => ty = Q5_K,
                F::IQ4_NL | F::IQ4_XS if gqa4 => ty = Q5_K,
                F::Q4_K_M | F::Q5_K_M if use_more_bits(i, self.n_attention_wv) => ty = Q6_K,
                F::Q4_K_S if i < 4 => ty = Q5_K,
                _ => {}
            }
            if facts.is_70b() && (ty == Q3_K || ty == Q4_K) {
                ty = Q5_K;
            }
            if experts8 {
                ty = GgmlType::Q8_0;
            }
            self.i_attention_wv += 1;
        } else if cat == Category::AttnK {
            if experts8 {
                ty = GgmlType::Q8_0;
            }
        } else if cat == Category::FfnDown {
            let (i, n) = self.layer(self.i_ffn_down, name)?;
            match f {
                F::Q2_K => ty = Q3_K,
                F::Q2_K_S if i < n / 8 => ty = Q4_K,
                F::Q3_K_M => {
                    ty = if i < n / 16 {
                        Q5_K
                    } else if !falcon || use_more_bits(i, n) {
                        Q4_K
                    } else {
                        Q3_K
                    }
                }
                F::Q3_K_L => ty = if falcon { Q4_K } else { Q5_K },
                F::Q4_K_M if falcon => {
                    ty = if i < n / 16 {
                        Q6_K
                    } else if use_more_bits(i, n) {
                        Q5_K
                    } else {
                        Q4_K
                    }
                }
                F::Q4_K_M if use_more_bits(i, n) => ty = Q6_K,
                F::IQ4_NL | F::IQ4_XS if i < n / 8 => ty = Q5_K,
                F::Q5_K_M if use_more_bits(i, n) => ty = Q6_K,
                F::Q4_K_S if !falcon && i < n / 8 => ty = Q5_K,
                _ => {}
            }
            self.i_ffn_down += 1;
        } else if cat == Category::AttnOutput {
            if !falcon {
                if experts8 {
                    if matches!(
                        f,
                        F::Q2_K
                            | F::Q3_K_S
                            | F::Q3_K_M
                            | F::IQ4_NL
                            | F::Q4_K_S
                            | F::Q4_K_M
                            | F::IQ4_XS
                    ) {
                        ty = Q5_K;
                    }
                } else {
                    match f {
                        F::Q2_K => ty = Q3_K,
                        F::Q3_K_M => ty = Q4_K,
                        F::Q3_K_L => ty = Q5_K,
                        _ => {}
                    }
                }
            } else if f == F::Q3_K_L {
                ty = Q4_K;
            }
        } else if cat == Category::FfnGate {
            // Only the IQ3_XS mix changes these; the layer check still applies.
            self.layer(self.i_ffn_gate, name)?;
            self.i_ffn_gate += 1;
        } else if cat == Category::FfnUp {
            self.layer(self.i_ffn_up, name)?;
            self.i_ffn_up += 1;
        }
        // (Fused QKV is an attn_v-like tensor and takes the attn_v branch above, as in
        // llama.cpp, whose later ATTENTION_QKV branch is never reached.)
        Ok(ty)
    }
}

/// The type llama.cpp's quantiser gives each of `tensors` (name, shape outermost first; every
/// tensor of the output, in any order) for the quantised file type `ftype`, with `overrides`.
/// A float `ftype` quantises nothing: every type is `None`. An error names a tensor the rule
/// cannot place (an expert model's FFN tensor without a layer number) or an override pattern
/// that matches no tensor.
pub fn choose(
    ftype: OutType,
    facts: &ModelFacts,
    overrides: &TypeOverrides,
    tensors: &[(&str, &[u64])],
) -> Result<Choice> {
    let mut types = vec![None; tensors.len()];
    let Some(default) = ftype.quantized() else {
        return Ok(Choice {
            types,
            fallbacks: Vec::new(),
        });
    };
    for o in &overrides.tensor_types {
        if !tensors.iter().any(|(n, _)| o.matches(n)) {
            return Err(Error::InvalidArgument(format!(
                "tensor type override \"{}={}\" (--tensor-type): the pattern matches no tensor",
                o.pattern,
                o.ty.to_string().to_lowercase()
            )));
        }
    }
    let mut rule = Rule {
        ftype,
        facts,
        overrides,
        n_attention_wv: tensors
            .iter()
            .filter(|(n, _)| is_attn_v(category(n)))
            .count() as i64,
        n_layer: i64::from(facts.n_layer),
        i_attention_wv: 0,
        i_ffn_down: 0,
        i_ffn_gate: 0,
        i_ffn_up: 0,
        tied: !tensors.iter().any(|(n, _)| category(n) == Category::Output),
        fallbacks: Vec::new(),
    };
    // llama.cpp's loader order: tensors outside a layer (-1) first, then by layer, then name.
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| (layer_of(tensors[i].0).unwrap_or(-1), tensors[i].0);
        key(a).cmp(&key(b))
    });
    for i in order {
        let (name, shape) = tensors[i];
        if allows_quantization(&facts.arch, name, shape) {
            types[i] = Some(rule.tensor(name, shape, default)?);
        }
    }
    Ok(Choice {
        types,
        fallbacks: rule.fallbacks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q4_0: GgmlType = GgmlType(2);
    const Q5_0: GgmlType = GgmlType(6);
    const Q2_K: GgmlType = GgmlType(10);
    const Q3_K: GgmlType = GgmlType(11);
    const Q4_K: GgmlType = GgmlType(12);
    const Q5_K: GgmlType = GgmlType(13);
    const Q6_K: GgmlType = GgmlType(14);
    const IQ4_NL: GgmlType = GgmlType(20);

    fn facts(n_layer: u32, n_head: u32, n_head_kv: u32, n_expert: u32) -> ModelFacts {
        ModelFacts {
            arch: "llama".into(),
            n_layer,
            n_head,
            n_head_kv,
            n_expert,
        }
    }

    /// A llama of `layers` layers with rows of `d` values, listed out of llama.cpp's order
    /// (names as strings sort blk.10 before blk.2).
    fn llama(layers: u32, d: u64, tied: bool) -> Vec<(String, Vec<u64>)> {
        let mut t = vec![
            ("token_embd.weight".to_string(), vec![512, d]),
            ("output_norm.weight".to_string(), vec![d]),
        ];
        if !tied {
            t.push(("output.weight".into(), vec![512, d]));
        }
        for i in (0..layers).rev() {
            for (part, shape) in [
                ("attn_norm", vec![d]),
                ("attn_q", vec![d, d]),
                ("attn_k", vec![d / 4, d]),
                ("attn_v", vec![d / 4, d]),
                ("attn_output", vec![d, d]),
                ("ffn_gate", vec![2 * d, d]),
                ("ffn_up", vec![2 * d, d]),
                ("ffn_down", vec![d, 2 * d]),
            ] {
                t.push((format!("blk.{i}.{part}.weight"), shape));
            }
        }
        t
    }

    /// The types chosen, by name, and the fallback lines.
    type Chosen = (
        std::collections::HashMap<String, Option<GgmlType>>,
        Vec<String>,
    );

    /// The types chosen, by name.
    fn run(
        ftype: OutType,
        facts: &ModelFacts,
        overrides: &TypeOverrides,
        tensors: &[(String, Vec<u64>)],
    ) -> Result<Chosen> {
        let list: Vec<(&str, &[u64])> = tensors
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_slice()))
            .collect();
        let c = choose(ftype, facts, overrides, &list)?;
        let names = tensors.iter().map(|(n, _)| n.clone());
        Ok((names.zip(c.types).collect(), c.fallbacks))
    }

    fn types(
        ftype: OutType,
        facts: &ModelFacts,
        t: &[(String, Vec<u64>)],
    ) -> impl Fn(&str) -> Option<GgmlType> {
        let (m, _) = run(ftype, facts, &TypeOverrides::default(), t).unwrap();
        move |n: &str| m[n]
    }

    #[test]
    fn q4_k_m_gives_more_bits_to_the_layers_llama_cpp_picks() {
        let t = types(OutType::Q4_K_M, &facts(8, 4, 4, 0), &llama(8, 256, false));
        assert_eq!(t("output.weight"), Some(Q6_K));
        assert_eq!(t("token_embd.weight"), Some(Q4_K));
        assert_eq!(t("output_norm.weight"), None);
        assert_eq!(t("blk.0.attn_norm.weight"), None);
        // use_more_bits of 8 layers: the first and last eighth, and every third between.
        for i in 0..8 {
            let more = [0, 3, 6, 7].contains(&i);
            let want = Some(if more { Q6_K } else { Q4_K });
            assert_eq!(t(&format!("blk.{i}.attn_v.weight")), want, "{i}");
            assert_eq!(t(&format!("blk.{i}.ffn_down.weight")), want, "{i}");
            assert_eq!(t(&format!("blk.{i}.attn_q.weight")), Some(Q4_K));
            assert_eq!(t(&format!("blk.{i}.ffn_up.weight")), Some(Q4_K));
        }
        // F32 and F16 file types quantise nothing.
        let t = types(OutType::F16, &facts(8, 4, 4, 0), &llama(8, 256, false));
        assert_eq!(t("blk.0.attn_q.weight"), None);
    }

    #[test]
    fn counters_follow_the_loader_order_by_layer_number() {
        // Q4_K_S: the first four attn_v in llama.cpp's order get Q5_K: layers 0-3, not the
        // 0, 1, 10, 11 of a sort by name.
        let t = types(OutType::Q4_K_S, &facts(16, 4, 4, 0), &llama(16, 256, false));
        for i in 0..16 {
            let want = if i < 4 { Q5_K } else { Q4_K };
            assert_eq!(t(&format!("blk.{i}.attn_v.weight")), Some(want), "{i}");
            // ffn_down: the first eighth (layers 0, 1) Q5_K.
            let want = if i < 2 { Q5_K } else { Q4_K };
            assert_eq!(t(&format!("blk.{i}.ffn_down.weight")), Some(want), "{i}");
        }
        let t = types(OutType::Q3_K_M, &facts(16, 4, 4, 0), &llama(16, 256, false));
        assert_eq!(t("blk.1.attn_v.weight"), Some(Q5_K));
        assert_eq!(t("blk.10.attn_v.weight"), Some(Q4_K));
        assert_eq!(t("blk.0.ffn_down.weight"), Some(Q5_K));
        assert_eq!(t("blk.5.ffn_down.weight"), Some(Q4_K));
        assert_eq!(t("blk.5.attn_output.weight"), Some(Q4_K));
        assert_eq!(t("blk.5.attn_q.weight"), Some(Q3_K));
    }

    #[test]
    fn gqa_experts_and_70b_raise_attention() {
        let gqa = facts(8, 8, 2, 0);
        let t = types(OutType::Q2_K, &gqa, &llama(8, 256, false));
        assert_eq!(t("blk.2.attn_v.weight"), Some(Q4_K));
        assert_eq!(t("blk.2.ffn_down.weight"), Some(Q3_K));
        assert_eq!(t("blk.2.attn_output.weight"), Some(Q3_K));
        assert_eq!(t("blk.2.attn_q.weight"), Some(Q2_K));
        let t = types(OutType::Q2_K, &facts(8, 4, 4, 0), &llama(8, 256, false));
        assert_eq!(t("blk.2.attn_v.weight"), Some(Q3_K));
        let t = types(OutType::IQ4_NL, &gqa, &llama(8, 256, false));
        assert_eq!(t("blk.2.attn_v.weight"), Some(Q5_K));
        assert_eq!(t("blk.0.ffn_down.weight"), Some(Q5_K));
        assert_eq!(t("blk.2.ffn_down.weight"), Some(IQ4_NL));
        // A llama of 80 layers with GQA is llama.cpp's 70B: attn_v Q4_K becomes Q5_K.
        let t = types(OutType::Q3_K_M, &facts(80, 8, 2, 0), &llama(80, 256, false));
        assert_eq!(t("blk.40.attn_v.weight"), Some(Q5_K));
        assert_eq!(t("blk.40.ffn_down.weight"), Some(Q4_K));

        // Eight experts: attn_v and attn_k Q8_0, attn_output Q5_K; experts by their layer.
        let mut moe = llama(8, 256, false);
        moe.retain(|(n, _)| !n.contains("ffn_"));
        for i in 0..8 {
            moe.push((format!("blk.{i}.ffn_gate_inp.weight"), vec![8, 256]));
            moe.push((format!("blk.{i}.ffn_down_exps.weight"), vec![8, 256, 512]));
            moe.push((format!("blk.{i}.ffn_up_exps.weight"), vec![8, 512, 256]));
        }
        let t = types(OutType::Q4_K_M, &facts(8, 8, 2, 8), &moe);
        assert_eq!(t("blk.4.attn_v.weight"), Some(GgmlType::Q8_0));
        assert_eq!(t("blk.4.attn_k.weight"), Some(GgmlType::Q8_0));
        assert_eq!(t("blk.4.attn_output.weight"), Some(Q5_K));
        assert_eq!(t("blk.4.ffn_gate_inp.weight"), None);
        assert_eq!(t("blk.3.ffn_down_exps.weight"), Some(Q6_K));
        assert_eq!(t("blk.4.ffn_down_exps.weight"), Some(Q4_K));
        // An expert FFN tensor outside a layer has no layer for the rule.
        moe.push(("ffn_down_x.weight".into(), vec![256, 256]));
        let e = run(
            OutType::Q4_K_M,
            &facts(8, 8, 2, 8),
            &TypeOverrides::default(),
            &moe,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("tensor \"ffn_down_x.weight\": no layer number"),
            "{e}"
        );
    }

    #[test]
    fn rows_that_are_not_whole_blocks_fall_back() {
        // Rows of 96 values: Q4_K (256) falls back to Q5_0; ffn_down rows of 192 too; the
        // output takes Q8_0.
        let f = facts(2, 4, 4, 0);
        let (m, fallbacks) = run(
            OutType::Q4_K_M,
            &f,
            &TypeOverrides::default(),
            &llama(2, 96, false),
        )
        .unwrap();
        assert_eq!(m["blk.1.attn_q.weight"], Some(Q5_0));
        assert_eq!(m["blk.1.ffn_down.weight"], Some(GgmlType::Q8_0)); // Q6_K's fallback
        assert_eq!(m["output.weight"], Some(GgmlType::Q8_0));
        assert!(fallbacks.iter().any(|l| l
            == "tensor \"blk.1.attn_q.weight\": a row of 96 values is not a whole number of Q4_K blocks of 256; written as Q5_0"));
        // Rows of 80: no block of 32 fits either, F16.
        let t = types(OutType::Q4_K_M, &f, &llama(2, 80, false));
        assert_eq!(t("blk.1.attn_q.weight"), Some(GgmlType::F16));
        let t = types(OutType::TQ1_0, &f, &llama(2, 96, false));
        assert_eq!(t("blk.1.attn_q.weight"), Some(Q4_0));
        let t = types(OutType::IQ4_XS, &f, &llama(2, 96, false));
        assert_eq!(t("blk.1.attn_q.weight"), Some(IQ4_NL));
        // A shape of one row is 1-D for ggml: never quantised.
        let one = vec![("blk.0.attn_q.weight".to_string(), vec![1, 256])];
        assert_eq!(types(OutType::Q8_0, &f, &one)("blk.0.attn_q.weight"), None);
    }

    #[test]
    fn tied_embeddings_and_ternary_token_embeddings() {
        let f = facts(2, 4, 4, 0);
        let t = types(OutType::Q4_K_M, &f, &llama(2, 256, true));
        assert_eq!(t("token_embd.weight"), Some(Q6_K));
        let t = types(OutType::Q8_0, &f, &llama(2, 256, true));
        assert_eq!(t("token_embd.weight"), Some(GgmlType::Q8_0));
        let t = types(OutType::TQ2_0, &f, &llama(2, 256, false));
        assert_eq!(t("token_embd.weight"), Some(Q4_K));
        assert_eq!(t("output.weight"), Some(Q6_K));
        assert_eq!(t("blk.0.attn_q.weight"), Some(GgmlType(35)));
    }

    #[test]
    fn overrides_as_llama_quantize_has_them() {
        let f = facts(8, 4, 4, 0);
        let model = llama(8, 256, true);
        let o = TypeOverrides {
            output: Some(GgmlType::Q8_0),
            token_embedding: None,
            tensor_types: vec![
                "ATTN_V=q8_0".parse().unwrap(),
                "attn_.=f16".parse().unwrap(),
                r"blk\.[0-3]\.ffn_down=Q5_K".parse().unwrap(),
            ],
            pure: false,
        };
        let (m, _) = run(OutType::Q4_K_M, &f, &o, &model).unwrap();
        // Tied: the output type goes to the token embedding.
        assert_eq!(m["token_embd.weight"], Some(GgmlType::Q8_0));
        // The first pattern that matches wins (lower-cased, as llama-quantize does).
        assert_eq!(m["blk.6.attn_v.weight"], Some(GgmlType::Q8_0));
        assert_eq!(m["blk.6.attn_k.weight"], Some(GgmlType::F16));
        assert_eq!(m["blk.1.ffn_down.weight"], Some(Q5_K));
        assert_eq!(m["blk.7.ffn_down.weight"], Some(Q6_K));
        // --token-embedding-type wins over the tied output type; --pure drops the mix.
        let o = TypeOverrides {
            output: Some(GgmlType::Q8_0),
            token_embedding: Some(GgmlType::F16),
            pure: true,
            ..TypeOverrides::default()
        };
        let (m, _) = run(OutType::Q4_K_M, &f, &o, &model).unwrap();
        assert_eq!(m["token_embd.weight"], Some(GgmlType::F16));
        assert_eq!(m["blk.0.attn_v.weight"], Some(Q4_K));
        assert_eq!(m["blk.0.ffn_down.weight"], Some(Q4_K));
        // A pattern that matches nothing, bad patterns and types.
        let o = TypeOverrides {
            tensor_types: vec!["attn_z=q8_0".parse().unwrap()],
            ..TypeOverrides::default()
        };
        let e = run(OutType::Q4_K_M, &f, &o, &model)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"attn_z=q8_0\" (--tensor-type): the pattern matches no tensor"),
            "{e}"
        );
        for (bad, why) in [
            ("attn_v", "not PATTERN=TYPE"),
            ("=q8_0", "no tensor name pattern"),
            ("attn_v=", "no type after"),
            (
                "attn_v=q3_k_m",
                "unknown tensor type \"q3_k_m\" (known: f32, f16, bf16, q4_0,",
            ),
            ("(attn=q8_0", "not a regular expression"),
        ] {
            let e = bad.parse::<TensorTypeOverride>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn facts_come_from_the_gguf_keys() {
        let mut m = Metadata::new();
        m.set("general.architecture", "qwen3moe");
        m.set("qwen3moe.block_count", 12u32);
        m.set("qwen3moe.attention.head_count", Array::I32(vec![16, 16]));
        m.set("qwen3moe.expert_count", 1u32);
        let f = ModelFacts::from_metadata(&m);
        assert_eq!(
            f,
            ModelFacts {
                arch: "qwen3moe".into(),
                n_layer: 12,
                n_head: 16,
                n_head_kv: 16,
                n_expert: 0
            }
        );
        m.set("qwen3moe.attention.head_count_kv", 4u32);
        m.set("qwen3moe.expert_count", 8u32);
        let f = ModelFacts::from_metadata(&m);
        assert_eq!((f.n_gqa(), f.n_expert), (4, 8));
        assert_eq!(layer_of("blk.12.attn_v.weight"), Some(12));
        assert_eq!(layer_of("blk.x"), None);
        assert_eq!(n_dims(&[1, 1, 64]), 1);
        assert_eq!(n_dims(&[2, 1, 64]), 3);
        assert!(allows_quantization(
            "llama",
            "blk.0.attn_q.weight",
            &[64, 64]
        ));
        assert!(!allows_quantization(
            "llama",
            "blk.0.attn_q.bias",
            &[64, 64]
        ));
        assert!(!allows_quantization(
            "llama",
            "position_embd.weight",
            &[64, 64]
        ));
        assert!(!allows_quantization(
            "llama",
            "blk.0.ffn_norm.weight",
            &[64, 64]
        ));
    }
}
