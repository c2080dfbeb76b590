//! The one list of built-in architectures. Each architecture's file exports one [`Arch`]
//! description; lookup by name, detection from `config.json`, the names the CLI, the errors and
//! the public [`NAMES`] and [`HF_NAMES`] list all come from [`REGISTRY`]. Adding an architecture
//! is a file with its `ARCH` and one line here.

use super::{
    bert, command_r, deepseek2, gemma, gemma2, gemma3, gpt_oss, granite, llama, llama4, mixtral,
    olmo2, phi3, qwen2, qwen3, qwen3moe, stablelm, Adjust, ComputedTensor, Config, Tensors, AUTO,
};
use crate::error::{Error, Result};
use crate::kv::Metadata;
use crate::rename::Replacer;
use crate::source::item::Item;

/// Every built-in architecture, in the order names are listed.
pub(crate) const REGISTRY: &[&Arch] = &[
    &llama::ARCH,
    &mixtral::ARCH,
    &phi3::ARCH,
    &qwen2::ARCH,
    &qwen3::ARCH,
    &qwen3moe::ARCH,
    &gemma::ARCH,
    &gemma2::ARCH,
    &gemma3::ARCH,
    &olmo2::ARCH,
    &granite::ARCH,
    &stablelm::ARCH,
    &command_r::ARCH,
    &llama4::ARCH,
    &gpt_oss::ARCH,
    &deepseek2::ARCH,
    &bert::ARCH,
];

/// A structural transform: repacks, splits, stacks and drops on the renamed tensors.
pub(crate) type Transform = fn(Vec<Item>, &Config) -> Result<Vec<Item>>;

/// One architecture: the Hugging Face names that select it, its rename pairs, its structural
/// transform, and what a GGUF file of it needs besides the tensors.
pub(crate) struct Arch {
    /// The name callers select it by.
    pub name: &'static str,
    /// The `config.json` `architectures[0]` values that select it.
    pub hf_names: &'static [&'static str],
    /// The `general.architecture` value of its GGUF files.
    pub gguf_name: &'static str,
    /// Flat rename pair lists (old, new, old, new, ...), applied first; for an identical old
    /// name the first list wins.
    pub pairs: &'static [&'static [&'static str]],
    /// The transform of the layout served at open.
    pub transform: Transform,
    /// The transform of the layout a GGUF file needs, where it differs (phi3 keeps its fused
    /// tensors).
    pub gguf_transform: Option<Transform>,
    /// Writes `general.architecture` and the `ARCH.*` keys llama.cpp reads.
    pub kv: fn(&Config, &mut Metadata) -> Result<()>,
    /// The tensors computed from config.json, each checked against the model's tensors
    /// before it is computed.
    pub computed: fn(&Config, &Tensors) -> Result<Vec<ComputedTensor>>,
    /// Per GGUF tensor name, the value fix-up to apply, if any.
    pub adjust: fn(&str) -> Option<Adjust>,
    /// Tensors the architecture leaves out of its layout, named by prefix, and what they are
    /// (a multimodal model's vision tower), so a conversion can say what it did not write.
    pub left_out: Option<LeftOut>,
}

/// Stored tensors an architecture leaves out, by name prefix.
pub(crate) struct LeftOut {
    /// Prefixes of the stored names left out.
    pub prefixes: &'static [&'static str],
    /// What they are, for the note: "the vision tower and projector".
    pub what: &'static str,
    /// Where they go instead.
    pub instead: &'static str,
}

impl Arch {
    /// The renames of [`Arch::pairs`], in order.
    pub fn replacer(&self) -> Result<Replacer> {
        let mut replacer = Replacer::default();
        for list in self.pairs {
            replacer.extend(&Replacer::from_flat(list)?);
        }
        Ok(replacer)
    }

    /// The transform of the served layout, or of the GGUF layout with `gguf_layout`.
    pub fn transform_for(&self, gguf_layout: bool) -> Transform {
        match self.gguf_transform {
            Some(gguf) if gguf_layout => gguf,
            _ => self.transform,
        }
    }
}

/// For an architecture without computed tensors.
pub(crate) fn no_computed(_: &Config, _: &Tensors) -> Result<Vec<ComputedTensor>> {
    Ok(Vec::new())
}

/// For an architecture without value fix-ups.
pub(crate) fn no_adjust(_: &str) -> Option<Adjust> {
    None
}

const fn hf_count() -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < REGISTRY.len() {
        count += REGISTRY[i].hf_names.len();
        i += 1;
    }
    count
}

/// The names `lookup` accepts, in the registry's order. `Options::arch` also takes [`AUTO`].
pub const NAMES: [&str; REGISTRY.len()] = {
    let mut names = [""; REGISTRY.len()];
    let mut i = 0;
    while i < REGISTRY.len() {
        names[i] = REGISTRY[i].name;
        i += 1;
    }
    names
};

/// `architectures[0]` values and the architecture each selects, from the registry: ollama's
/// mapping, with llama.cpp's converter's where ollama has none (the Qwen3 names;
/// `MistralForCausalLM` is llama, as llama.cpp's converter writes it).
pub const HF_NAMES: [(&str, &str); hf_count()] = {
    let mut pairs = [("", ""); hf_count()];
    let (mut i, mut k) = (0, 0);
    while i < REGISTRY.len() {
        let mut j = 0;
        while j < REGISTRY[i].hf_names.len() {
            pairs[k] = (REGISTRY[i].hf_names[j], REGISTRY[i].name);
            (j, k) = (j + 1, k + 1);
        }
        i += 1;
    }
    pairs
};

/// The architecture called `name` (case-insensitive); an unknown name is an error listing the
/// known ones.
pub(crate) fn lookup(name: &str) -> Result<&'static Arch> {
    REGISTRY
        .iter()
        .copied()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "unknown architecture \"{}\" (known: {}, or {AUTO} to read config.json)",
                crate::error::shown(name),
                NAMES.join(", ")
            ))
        })
}

/// The architecture a `config.json` `architectures[0]` value selects, if any.
pub(crate) fn by_hf_name(hf: &str) -> Option<&'static Arch> {
    REGISTRY.iter().copied().find(|a| a.hf_names.contains(&hf))
}

/// The names `--arch` takes, for help texts: "llama, mixtral, ..., or auto from config.json".
pub fn help() -> String {
    format!("{}, or {AUTO} from config.json", NAMES.join(", "))
}

/// A note on the tensors of `names` (stored names) that architecture `arch` leaves out of its
/// layout, when there are any: "N tensors of WHAT are left out: INSTEAD".
pub fn left_out<'a>(arch: &str, names: impl Iterator<Item = &'a str>) -> Option<String> {
    let left = lookup(arch).ok()?.left_out.as_ref()?;
    let count = names
        .filter(|n| left.prefixes.iter().any(|p| n.starts_with(p)))
        .count();
    (count > 0).then(|| {
        format!(
            "{count} tensors of {} are left out: {}",
            left.what, left.instead
        )
    })
}

/// Whether architecture `arch` leaves any stored tensors out (see [`left_out`]).
pub fn leaves_out(arch: &str) -> bool {
    lookup(arch).is_ok_and(|a| a.left_out.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_descriptions_and_left_out_tensors_are_counted() {
        for arch in REGISTRY {
            assert_eq!(lookup(&arch.name.to_uppercase()).unwrap().name, arch.name);
            for hf in arch.hf_names {
                assert_eq!(by_hf_name(hf).unwrap().name, arch.name);
            }
        }
        let Err(err) = lookup("gpt9") else {
            panic!("gpt9 is not an architecture")
        };
        let text = err.to_string();
        assert!(
            text.contains(&NAMES.join(", ")) && text.contains(AUTO),
            "{text}"
        );
        let names = [
            "vision_tower.encoder.layers.0.mlp.fc1.weight",
            "multi_modal_projector.mm_input_projection_weight",
            "language_model.model.norm.weight",
        ];
        let note = left_out("gemma3", names.into_iter()).unwrap();
        assert!(note.starts_with("2 tensors of the vision tower"), "{note}");
        assert_eq!(left_out("gemma3", names[2..].iter().copied()), None);
        assert_eq!(left_out("llama", names.into_iter()), None);
        assert!(leaves_out("gemma3") && !leaves_out("llama"));
    }
}
