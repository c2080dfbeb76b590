//! Built-in architectures: the renames and transforms ollama's converters apply, so engines get
//! GGUF-style names and layouts straight from Hugging Face checkpoints.

mod config;
mod llama;
mod mixtral;
mod phi3;

pub use config::Config;

use crate::error::{Error, Result};
use crate::rename::Replacer;
use crate::transform::Item;

/// One architecture: its rename pairs and its structural transform.
pub(crate) struct Arch {
    /// The name callers select it by.
    pub name: &'static str,
    /// Renames applied first.
    pub replacer: Replacer,
    /// Repacks, splits and stacks on the renamed tensors.
    pub transform: fn(Vec<Item>, &Config) -> Result<Vec<Item>>,
}

/// The names `lookup` accepts.
pub const NAMES: [&str; 3] = ["llama", "mixtral", "phi3"];

/// The architecture called `name` (case-insensitive).
pub(crate) fn lookup(name: &str) -> Result<Arch> {
    let pairs = |list: &[&str]| Replacer::from_flat(list);
    let arch = match name.to_ascii_lowercase().as_str() {
        "llama" => Arch {
            name: "llama",
            replacer: pairs(llama::PAIRS)?,
            transform: llama::transform,
        },
        "mixtral" => {
            let mut replacer = pairs(llama::PAIRS)?;
            replacer.extend(&pairs(mixtral::EXTRA_PAIRS)?);
            Arch {
                name: "mixtral",
                replacer,
                transform: mixtral::transform,
            }
        }
        "phi3" => {
            let mut replacer = pairs(phi3::PAIRS)?;
            replacer.extend(&pairs(llama::PAIRS)?);
            Arch {
                name: "phi3",
                replacer,
                transform: phi3::transform,
            }
        }
        _ => {
            return Err(Error::Unsupported(format!(
                "unknown architecture \"{name}\" (known: {})",
                NAMES.join(", ")
            )))
        }
    };
    Ok(arch)
}
