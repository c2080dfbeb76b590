//! GGUF tensor types: the ggml type numbers, the output types a user picks, and the rule that
//! gives each tensor its type (ollama's: small and 1-D tensors stay F32, integers keep theirs).

use std::fmt;
use std::str::FromStr;

use crate::dtype::Dtype;
use crate::error::{Error, Result};
pub use crate::gguf_format::GgmlType;

/// The tensor type a user asks for (`--outtype`): the float types, or one of llama.cpp's
/// quantised file types (llama-quantize's names), whose per-tensor types follow llama.cpp's
/// rule ([`super::tensor_types`]).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OutType {
    /// ollama's default: F16 for every tensor the rule does not keep in F32.
    #[default]
    Auto,
    /// Every float tensor in F32.
    F32,
    /// F16 except what the rule keeps in F32.
    F16,
    /// BF16 except what the rule keeps in F32.
    BF16,
    /// Q8_0 where llama.cpp's quantiser puts it (F16 where a row is not a multiple of 32).
    Q8_0,
    /// Q4_0 (llama.cpp's rule: output Q6_K).
    Q4_0,
    /// Q4_1 (output Q6_K).
    Q4_1,
    /// Q5_0 (output Q6_K).
    Q5_0,
    /// Q5_1 (output Q6_K).
    Q5_1,
    /// Q2_K, with attn_v, ffn_down and attn_output raised.
    Q2_K,
    /// Q2_K, smaller (llama.cpp asks an importance matrix for it; stload writes it without).
    Q2_K_S,
    /// Q3_K throughout (output Q6_K).
    Q3_K_S,
    /// Q3_K, with attn_v, ffn_down and attn_output raised.
    Q3_K_M,
    /// Q3_K, with attn_v, ffn_down and attn_output raised to Q5_K.
    Q3_K_L,
    /// Q4_K, the first attn_v and ffn_down layers Q5_K.
    Q4_K_S,
    /// Q4_K, half of attn_v and ffn_down Q6_K (ollama's default quantisation).
    Q4_K_M,
    /// Q5_K throughout (output Q6_K).
    Q5_K_S,
    /// Q5_K, half of attn_v and ffn_down Q6_K.
    Q5_K_M,
    /// Q6_K throughout.
    Q6_K,
    /// IQ4_NL (non-linear 4-bit in blocks of 32).
    IQ4_NL,
    /// IQ4_XS (non-linear 4-bit in super-blocks of 256).
    IQ4_XS,
    /// TQ1_0 (ternary, for models trained ternary).
    TQ1_0,
    /// TQ2_0 (ternary, for models trained ternary).
    TQ2_0,
}

/// Per output type, in [`OutType::ALL`] order: its name, its `general.file_type` (llama.cpp's
/// `LLAMA_FTYPE_*` number) and, for a quantised file type, the GGML type most tensors take.
const FILE_TYPES: [(&str, u32, Option<GgmlType>); 23] = [
    ("auto", 1, None),
    ("f32", 0, None),
    ("f16", 1, None),
    ("bf16", 32, None),
    ("q8_0", 7, Some(GgmlType::Q8_0)),
    ("q4_0", 2, Some(GgmlType(2))),
    ("q4_1", 3, Some(GgmlType(3))),
    ("q5_0", 8, Some(GgmlType(6))),
    ("q5_1", 9, Some(GgmlType(7))),
    ("q2_k", 10, Some(GgmlType(10))),
    ("q2_k_s", 21, Some(GgmlType(10))),
    ("q3_k_s", 11, Some(GgmlType(11))),
    ("q3_k_m", 12, Some(GgmlType(11))),
    ("q3_k_l", 13, Some(GgmlType(11))),
    ("q4_k_s", 14, Some(GgmlType(12))),
    ("q4_k_m", 15, Some(GgmlType(12))),
    ("q5_k_s", 16, Some(GgmlType(13))),
    ("q5_k_m", 17, Some(GgmlType(13))),
    ("q6_k", 18, Some(GgmlType(14))),
    ("iq4_nl", 25, Some(GgmlType(20))),
    ("iq4_xs", 30, Some(GgmlType(23))),
    ("tq1_0", 36, Some(GgmlType(34))),
    ("tq2_0", 37, Some(GgmlType(35))),
];

/// llama-quantize's aliases: a K-quant without its size letter is the M mix.
const ALIASES: [(&str, OutType); 3] = [
    ("q3_k", OutType::Q3_K_M),
    ("q4_k", OutType::Q4_K_M),
    ("q5_k", OutType::Q5_K_M),
];

impl OutType {
    /// The names [`OutType::from_str`] accepts, in order (besides llama-quantize's aliases
    /// q3_k, q4_k and q5_k for the M mixes).
    pub const NAMES: [&'static str; 23] = {
        let mut names = [""; 23];
        let mut i = 0;
        while i < names.len() {
            names[i] = FILE_TYPES[i].0;
            i += 1;
        }
        names
    };

    /// Every output type, in the order of [`OutType::NAMES`] (and of the C enum).
    pub const ALL: [OutType; 23] = [
        OutType::Auto,
        OutType::F32,
        OutType::F16,
        OutType::BF16,
        OutType::Q8_0,
        OutType::Q4_0,
        OutType::Q4_1,
        OutType::Q5_0,
        OutType::Q5_1,
        OutType::Q2_K,
        OutType::Q2_K_S,
        OutType::Q3_K_S,
        OutType::Q3_K_M,
        OutType::Q3_K_L,
        OutType::Q4_K_S,
        OutType::Q4_K_M,
        OutType::Q5_K_S,
        OutType::Q5_K_M,
        OutType::Q6_K,
        OutType::IQ4_NL,
        OutType::IQ4_XS,
        OutType::TQ1_0,
        OutType::TQ2_0,
    ];

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        FILE_TYPES[self as usize].0
    }

    /// The `general.file_type` value: llama.cpp's `LLAMA_FTYPE_*` number (ALL_F32 = 0,
    /// MOSTLY_F16 = 1, MOSTLY_Q8_0 = 7, MOSTLY_Q4_K_M = 15, MOSTLY_BF16 = 32, ...).
    pub fn file_type(self) -> u32 {
        FILE_TYPES[self as usize].1
    }

    /// For a quantised file type, the GGML type most tensors take (llama.cpp's
    /// `llama_ftype_get_default_type`); `None` for the float types.
    pub fn quantized(self) -> Option<GgmlType> {
        FILE_TYPES[self as usize].2
    }

    /// Bits per weight of [`OutType::quantized`]'s block type (the size of most tensors;
    /// a mix raises some): `None` for the float types.
    pub fn bits_per_weight(self) -> Option<f64> {
        let (block, bytes) = self.quantized()?.block()?;
        Some(bytes as f64 * 8.0 / block as f64)
    }
}

impl fmt::Display for OutType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OutType {
    type Err = Error;

    /// Parses a name of [`OutType::NAMES`] or an alias (q3_k, q4_k, q5_k), case-insensitively.
    fn from_str(s: &str) -> Result<OutType> {
        let lower = s.trim().to_ascii_lowercase();
        OutType::ALL
            .into_iter()
            .find(|t| t.name() == lower)
            .or_else(|| ALIASES.iter().find(|a| a.0 == lower).map(|a| a.1))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown GGUF output type \"{s}\" (known: {})",
                    OutType::NAMES.join(", ")
                ))
            })
    }
}

/// Whether ollama's rule keeps the tensor in F32 whatever the output type: 1-D tensors,
/// biases, MoE router weights and BERT token-type embeddings; and, as llama.cpp's converter
/// keeps them (its `POS_EMBD` in the always-F32 list), learned position embeddings.
fn stays_f32(name: &str, shape: &[u64]) -> bool {
    shape.len() <= 1
        || name.ends_with(".bias")
        || name.ends_with(".ffn_gate_inp.weight")
        || name.ends_with("token_types.weight")
        || name == "position_embd.weight"
}

/// The GGUF type of the tensor `name` stored as `dtype` with `shape` (outermost first) when
/// the output type is `out`. Integer tensors keep their type; unsigned integers, booleans and
/// floats of less than a byte have no GGUF type and are refused. For a quantised `out` a float
/// tensor gets F32 here, which llama.cpp keeps for the tensors it does not quantise; which
/// tensors it quantises, and to what, is the whole-model rule of [`super::tensor_types`].
pub fn tensor_type(name: &str, dtype: Dtype, shape: &[u64], out: OutType) -> Result<GgmlType> {
    let refuse = || {
        Error::Unsupported(format!(
            "tensor \"{name}\": {dtype} has no GGUF type (signed integers and floats only)"
        ))
    };
    match dtype {
        Dtype::I8 => return Ok(GgmlType::I8),
        Dtype::I16 => return Ok(GgmlType::I16),
        Dtype::I32 => return Ok(GgmlType::I32),
        Dtype::I64 => return Ok(GgmlType::I64),
        d if !d.is_float() || d.byte_size().is_none() => return Err(refuse()),
        _ => {}
    }
    if stays_f32(name, shape) {
        return Ok(GgmlType::F32);
    }
    Ok(match out {
        OutType::F32 => GgmlType::F32,
        OutType::Auto | OutType::F16 => GgmlType::F16,
        OutType::BF16 => GgmlType::BF16,
        // llama.cpp's quantiser leaves a tensor of its F32 source that it does not quantise
        // in F32; the writer gives the others the type `tensor_types::choose` picks.
        _ => GgmlType::F32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_types_parse_and_errors_list_the_names() {
        for t in OutType::ALL {
            assert_eq!(t.name().parse::<OutType>().unwrap(), t);
        }
        assert_eq!("Q8_0".parse::<OutType>().unwrap(), OutType::Q8_0);
        assert_eq!("Q4_K".parse::<OutType>().unwrap(), OutType::Q4_K_M);
        assert_eq!(" IQ4_xs ".parse::<OutType>().unwrap(), OutType::IQ4_XS);
        let e = "iq2_xxs".parse::<OutType>().unwrap_err().to_string();
        assert!(
            e.contains("\"iq2_xxs\"") && e.contains("auto, f32, f16, bf16, q8_0, q4_0,"),
            "{e}"
        );
        // The numbers llama.cpp writes as general.file_type (llama.h's LLAMA_FTYPE_*), and
        // the C enum's order, which may only grow.
        let ftypes: Vec<u32> = OutType::ALL.iter().map(|t| t.file_type()).collect();
        assert_eq!(
            ftypes,
            [1, 0, 1, 32, 7, 2, 3, 8, 9, 10, 21, 11, 12, 13, 14, 15, 16, 17, 18, 25, 30, 36, 37]
        );
        // FILE_TYPES is indexed by the enum's discriminant: ALL must list it in that order.
        for (i, t) in OutType::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t}");
        }
        assert_eq!(OutType::ALL[4], OutType::Q8_0);
        assert_eq!(OutType::ALL[15], OutType::Q4_K_M);
        assert_eq!(OutType::Q4_K_M.bits_per_weight(), Some(4.5));
        assert_eq!(OutType::F16.bits_per_weight(), None);
    }

    #[test]
    fn the_rule_keeps_small_tensors_in_f32() {
        let t = |name, dtype, shape: &[u64], out| tensor_type(name, dtype, shape, out).unwrap();
        assert_eq!(
            t("a.weight", Dtype::BF16, &[4, 64], OutType::Auto),
            GgmlType::F16
        );
        assert_eq!(
            t("a.weight", Dtype::BF16, &[64], OutType::BF16),
            GgmlType::F32
        );
        assert_eq!(
            t("a.bias", Dtype::F16, &[4, 64], OutType::F16),
            GgmlType::F32
        );
        assert_eq!(
            t(
                "blk.0.ffn_gate_inp.weight",
                Dtype::F16,
                &[8, 64],
                OutType::Q8_0
            ),
            GgmlType::F32
        );
        assert_eq!(
            t("token_types.weight", Dtype::F16, &[2, 64], OutType::F16),
            GgmlType::F32
        );
        // bert's learned positions, as llama.cpp's converter keeps them.
        for out in [OutType::Auto, OutType::BF16, OutType::Q8_0] {
            assert_eq!(
                t("position_embd.weight", Dtype::F32, &[512, 64], out),
                GgmlType::F32
            );
        }
        // A quantised type: F32 here; the whole-model rule picks the quantised ones.
        assert_eq!(
            t("a.weight", Dtype::BF16, &[4, 64], OutType::Q4_K_M),
            GgmlType::F32
        );
        assert_eq!(
            t("a.weight", Dtype::F16, &[4, 64], OutType::BF16),
            GgmlType::BF16
        );
        assert_eq!(
            t("a.weight", Dtype::BF16, &[4, 64], OutType::F32),
            GgmlType::F32
        );
        assert_eq!(t("pos", Dtype::I64, &[4, 64], OutType::Q8_0), GgmlType::I64);
        let e = tensor_type("mask", Dtype::Bool, &[4], OutType::Auto).unwrap_err();
        assert!(e.to_string().contains("tensor \"mask\": BOOL"), "{e}");
        assert!(tensor_type("u", Dtype::U32, &[4], OutType::Auto).is_err());
    }

    #[test]
    fn sizes_follow_the_block_table() {
        assert_eq!(GgmlType::Q8_0.nbytes(64, 128), Some(136));
        assert_eq!(GgmlType::Q8_0.nbytes(48, 96), None);
        assert_eq!(GgmlType::BF16.nbytes(3, 6), Some(12));
        assert_eq!(GgmlType(5).name(), None);
        assert_eq!(GgmlType(5).to_string(), "type 5");
        assert_eq!(GgmlType::Q8_0.to_string(), "Q8_0");
    }
}
