//! llama-quantize's overrides of the per-tensor types of a quantised GGUF file
//! (`--output-tensor-type`, `--token-embedding-type`, `--tensor-type PATTERN=TYPE`, `--pure`),
//! parsed and checked. They sit below [`crate::Options`], which carries them; the rule that
//! applies them is `gguf::tensor_types`.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::gguf_format::GgmlType;

/// The types an override may give: the float types and every type stload quantises to.
fn override_types() -> impl Iterator<Item = GgmlType> + Clone {
    let floats = [GgmlType::F32, GgmlType::F16, GgmlType::BF16];
    floats
        .into_iter()
        .chain(crate::convert::quant::TYPES.iter().map(|q| q.ggml))
}

/// The error for a type no override may give, listing those it may.
fn unknown_type(name: &str) -> Error {
    let names: Vec<String> = override_types()
        .map(|t| t.to_string().to_lowercase())
        .collect();
    Error::InvalidArgument(format!(
        "unknown tensor type \"{name}\" (known: {})",
        names.join(", ")
    ))
}

/// A type a tensor may be given by an override: the float types and every type stload
/// quantises to, by ggml's name, any case.
pub fn parse_ggml_type(name: &str) -> Result<GgmlType> {
    let name = name.trim();
    override_types()
        .find(|t| t.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .ok_or_else(|| unknown_type(name))
}

/// One `--tensor-type PATTERN=TYPE`: tensors whose name the regular expression matches
/// (anywhere, as llama.cpp's `std::regex_search`) take TYPE instead of the rule's choice.
#[derive(Debug, Clone)]
pub struct TensorTypeOverride {
    /// The pattern as given, lower-cased as llama-quantize lower-cases it.
    pub pattern: String,
    /// The type given.
    pub ty: GgmlType,
    regex: regex::Regex,
}

impl TensorTypeOverride {
    /// An override of the tensors matching `pattern` with `ty`; an invalid regular expression
    /// is refused.
    pub fn new(pattern: &str, ty: GgmlType) -> Result<TensorTypeOverride> {
        let pattern = pattern.to_lowercase();
        let regex = regex::Regex::new(&pattern).map_err(|e| {
            Error::InvalidArgument(format!(
                "tensor type pattern \"{pattern}\": not a regular expression: {e}"
            ))
        })?;
        Ok(TensorTypeOverride { pattern, ty, regex })
    }

    /// Whether the override applies to the tensor `name`.
    pub fn matches(&self, name: &str) -> bool {
        self.regex.is_match(name)
    }
}

impl FromStr for TensorTypeOverride {
    type Err = Error;

    /// Parses `PATTERN=TYPE` as llama-quantize does: split at the first `=`, neither side
    /// empty.
    fn from_str(s: &str) -> Result<TensorTypeOverride> {
        let bad = |why: &str| Error::InvalidArgument(format!("tensor type \"{s}\": {why}"));
        let (pattern, ty) = s.split_once('=').ok_or_else(|| bad("not PATTERN=TYPE"))?;
        if pattern.is_empty() {
            return Err(bad("no tensor name pattern before '='"));
        }
        if ty.is_empty() {
            return Err(bad("no type after '='"));
        }
        TensorTypeOverride::new(pattern, parse_ggml_type(ty)?)
    }
}

/// llama-quantize's overrides of the rule.
#[derive(Debug, Clone, Default)]
pub struct TypeOverrides {
    /// `--output-tensor-type`: the type of `output.weight` (and of a tied token embedding).
    pub output: Option<GgmlType>,
    /// `--token-embedding-type`: the type of `token_embd.weight`.
    pub token_embedding: Option<GgmlType>,
    /// `--tensor-type`, in order: the first whose pattern matches a tensor gives its type.
    pub tensor_types: Vec<TensorTypeOverride>,
    /// `--pure`: every quantised tensor takes the file type's main type (fallbacks aside).
    pub pure: bool,
}

impl TypeOverrides {
    /// Whether any override is set (a float output type takes none).
    pub fn is_empty(&self) -> bool {
        self.output.is_none()
            && self.token_embedding.is_none()
            && self.tensor_types.is_empty()
            && !self.pure
    }

    /// Refuses a type no override may give ([`parse_ggml_type`]'s), for overrides built as a
    /// struct literal.
    pub fn check(&self) -> Result<()> {
        let given = [self.output, self.token_embedding]
            .into_iter()
            .flatten()
            .chain(self.tensor_types.iter().map(|o| o.ty));
        for ty in given {
            if !override_types().any(|t| t == ty) {
                return Err(unknown_type(&ty.to_string().to_lowercase()));
            }
        }
        Ok(())
    }
}
