//! GGUF tensor types: the ggml type numbers, the output types a user picks, and the rule that
//! gives each tensor its type (ollama's: small and 1-D tensors stay F32, integers keep theirs).

use std::fmt;
use std::str::FromStr;

use crate::dtype::Dtype;
use crate::error::{Error, Result};
pub use crate::gguf_format::GgmlType;

/// The tensor type a user asks for (`--outtype`).
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
    /// Q8_0 where the innermost dimension is a multiple of 32, else F16; the rule's F32 stays.
    Q8_0,
}

impl OutType {
    /// The names [`OutType::from_str`] accepts, in order.
    pub const NAMES: [&'static str; 5] = ["auto", "f32", "f16", "bf16", "q8_0"];

    /// Every output type, in the order of [`OutType::NAMES`] (and of the C enum).
    pub const ALL: [OutType; 5] = [
        OutType::Auto,
        OutType::F32,
        OutType::F16,
        OutType::BF16,
        OutType::Q8_0,
    ];

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            OutType::Auto => "auto",
            OutType::F32 => "f32",
            OutType::F16 => "f16",
            OutType::BF16 => "bf16",
            OutType::Q8_0 => "q8_0",
        }
    }

    /// The `general.file_type` value (`LlamaFileType`: ALL_F32 = 0, MOSTLY_F16 = 1,
    /// MOSTLY_Q8_0 = 7, MOSTLY_BF16 = 32).
    pub fn file_type(self) -> u32 {
        match self {
            OutType::F32 => 0,
            OutType::Auto | OutType::F16 => 1,
            OutType::Q8_0 => 7,
            OutType::BF16 => 32,
        }
    }
}

impl fmt::Display for OutType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OutType {
    type Err = Error;

    /// Parses a name of [`OutType::NAMES`], case-insensitively.
    fn from_str(s: &str) -> Result<OutType> {
        let lower = s.trim().to_ascii_lowercase();
        OutType::ALL
            .into_iter()
            .find(|t| t.name() == lower)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown GGUF output type \"{s}\" (known: {})",
                    OutType::NAMES.join(", ")
                ))
            })
    }
}

/// Whether ollama's rule keeps the tensor in F32 whatever the output type: 1-D tensors,
/// biases, MoE router weights and BERT token-type embeddings.
fn stays_f32(name: &str, shape: &[u64]) -> bool {
    shape.len() <= 1
        || name.ends_with(".bias")
        || name.ends_with(".ffn_gate_inp.weight")
        || name.ends_with("token_types.weight")
}

/// The GGUF type of the tensor `name` stored as `dtype` with `shape` (outermost first) when
/// the output type is `out`. Integer tensors keep their type; unsigned integers, booleans and
/// floats of less than a byte have no GGUF type and are refused.
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
        OutType::Q8_0 => match shape.last() {
            Some(&inner) if inner % 32 == 0 => GgmlType::Q8_0,
            _ => GgmlType::F16,
        },
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
        let e = "q4_k".parse::<OutType>().unwrap_err().to_string();
        assert!(
            e.contains("\"q4_k\"") && e.contains("auto, f32, f16, bf16, q8_0"),
            "{e}"
        );
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
        assert_eq!(
            t("a.weight", Dtype::F32, &[4, 64], OutType::Q8_0),
            GgmlType::Q8_0
        );
        assert_eq!(
            t("a.weight", Dtype::F32, &[64, 48], OutType::Q8_0),
            GgmlType::F16
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
