//! Turning the stored tensors into the listed ones at open: renames, architecture transforms
//! (Q/K repack, fused-tensor splits, expert stacking) and the caller's own split and stack
//! rules. Everything becomes a source, so no data is read here. The building blocks (split, stack,
//! duplicate names) are in `source::item`; the rules' types in `options`.

use std::path::Path;
use std::sync::Arc;

use crate::arch;
use crate::error::Result;
use crate::options::Options;
pub use crate::options::{SplitRule, StackRule};
use crate::side_files::SideFiles;
use crate::source::item::{self, Item};

/// Applies, in order: the architecture's renames, the caller's renames, the architecture's
/// structural transforms (reading `config.json` of `side`, else in `config_dir`), the caller's stack rules,
/// then the caller's split rules. Two tensors ending under one name is an error naming both.
pub(crate) fn apply(
    mut items: Vec<Item>,
    options: &Options,
    config_dir: &Path,
    side: Option<Arc<SideFiles>>,
) -> Result<Vec<Item>> {
    // config.json is read once, and only when an architecture needs it.
    let side = options.arch.as_ref().map(|_| {
        side.unwrap_or_else(|| Arc::new(SideFiles::read_arch(config_dir, options.max_json_size)))
    });
    let arch = options
        .arch
        .as_deref()
        .zip(side.as_ref())
        .map(|(name, side)| arch::for_open(name, side))
        .transpose()?;
    let nothing_to_do = arch.is_none()
        && options.rename.is_empty()
        && options.stacks.is_empty()
        && options.splits.is_empty();
    if nothing_to_do {
        // The caller has sorted the items and refused duplicates already.
        return Ok(items);
    }
    let arch_renames = arch.map(|a| a.replacer()).transpose()?;
    for replacer in arch_renames.iter().chain(std::iter::once(&options.rename)) {
        if !replacer.is_empty() {
            for item in &mut items {
                let renamed = replacer.replace(&item.name)?;
                item.rename(renamed);
            }
        }
    }
    item::check_unique(&mut items)?;
    if let (Some(arch), Some(side)) = (arch, side) {
        let config = arch::config_for(arch.name, side)?;
        items = (arch.transform_for(options.gguf_layout))(items, &config)?;
    }
    for rule in &options.stacks {
        items = item::stack(items, &rule.names, &rule.into)?;
    }
    for rule in &options.splits {
        items = item::split(items, &rule.name, &rule.parts)?;
    }
    item::check_unique(&mut items)?;
    Ok(items)
}
