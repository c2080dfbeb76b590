//! Turning the stored tensors into the listed ones at open: renames, architecture transforms
//! (Q/K repack, fused-tensor splits, expert stacking) and the caller's own split and stack
//! rules. Everything becomes a [`Source`], so no data is read here.

use std::path::Path;

use crate::arch;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::shape::Shape;
use crate::source::Source;

/// A tensor on its way into the index.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The name the model will list.
    pub name: String,
    /// The name in the file (the first part's, for stacked tensors), when it differs from
    /// `name`; most tensors are never renamed, and this saves a copy of each name at open.
    pub original: Option<String>,
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions, outermost first.
    pub shape: Shape,
    /// Where the bytes are.
    pub source: Source,
}

impl Item {
    /// The name in the file.
    pub fn original(&self) -> &str {
        self.original.as_deref().unwrap_or(&self.name)
    }

    /// Gives the item a new name, remembering the first one.
    pub fn rename(&mut self, name: String) {
        if name != self.name {
            let old = std::mem::replace(&mut self.name, name);
            self.original.get_or_insert(old);
        }
    }
}

/// Split one tensor along axis 0 into consecutive row ranges, each listed under a new name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRule {
    /// The tensor to split (its name after renaming).
    pub name: String,
    /// `(new name, rows)` in order; the rows must add up to the tensor's first dimension.
    pub parts: Vec<(String, u64)>,
}

/// Stack equal-shaped tensors on a new axis 0 under one new name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRule {
    /// The tensors to stack, in order (names after renaming).
    pub names: Vec<String>,
    /// The name of the stacked tensor.
    pub into: String,
}

/// Applies, in order: the architecture's renames, the caller's renames, the architecture's
/// structural transforms (reading `config.json` in `config_dir`), the caller's stack rules,
/// then the caller's split rules. Two tensors ending under one name is an error naming both.
pub(crate) fn apply(
    mut items: Vec<Item>,
    options: &Options,
    config_dir: &Path,
) -> Result<Vec<Item>> {
    let arch = options
        .arch
        .as_deref()
        .map(|name| arch::for_open(name, config_dir, options.gguf_layout))
        .transpose()?;
    let nothing_to_do = arch.is_none()
        && options.rename.is_empty()
        && options.stacks.is_empty()
        && options.splits.is_empty();
    if nothing_to_do {
        // The caller has sorted the items and refused duplicates already.
        return Ok(items);
    }
    for replacer in arch
        .iter()
        .map(|a| &a.replacer)
        .chain(std::iter::once(&options.rename))
    {
        if !replacer.is_empty() {
            for item in &mut items {
                let renamed = replacer.replace(&item.name)?;
                item.rename(renamed);
            }
        }
    }
    check_unique(&mut items)?;
    if let Some(arch) = arch {
        let config = arch::Config::read_limited(config_dir, arch.name, options.max_json_size)?;
        items = (arch.transform)(items, &config)?;
    }
    for rule in &options.stacks {
        items = stack(items, rule)?;
    }
    for rule in &options.splits {
        items = split(items, rule)?;
    }
    check_unique(&mut items)?;
    Ok(items)
}

/// Sorts by name and refuses two items with one name, naming both originals.
pub(crate) fn check_unique(items: &mut [Item]) -> Result<()> {
    items.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = items.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::Duplicate(format!(
            "tensors \"{}\" and \"{}\" both map to \"{}\"",
            w[0].original(),
            w[1].original(),
            w[0].name
        )));
    }
    Ok(())
}

/// Replaces the tensor `rule.name` by its row ranges.
pub(crate) fn split(mut items: Vec<Item>, rule: &SplitRule) -> Result<Vec<Item>> {
    let pos = items
        .iter()
        .position(|i| i.name == rule.name)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "split: tensor \"{}\" is not in the model",
                rule.name
            ))
        })?;
    let whole = items.swap_remove(pos);
    let rows = whole.shape.first().copied().unwrap_or(0);
    let total = rule
        .parts
        .iter()
        .try_fold(0u64, |acc, p| acc.checked_add(p.1));
    if whole.shape.is_empty() || total != Some(rows) {
        let total = total.map_or("more than 2^64".to_string(), |t| t.to_string());
        return Err(Error::InvalidArgument(format!(
            "split: tensor \"{}\" has shape {:?}; the parts' rows add up to {total}",
            whole.name, whole.shape
        )));
    }
    let mut start = 0;
    for (name, n) in &rule.parts {
        let mut shape = whole.shape.clone();
        shape[0] = *n;
        let source = whole
            .source
            .rows(&whole.shape, whole.dtype, start, start + n, &whole.name)?;
        items.push(Item {
            name: name.clone(),
            original: Some(whole.original().to_string()),
            dtype: whole.dtype,
            shape,
            source,
        });
        start += n;
    }
    Ok(items)
}

/// Replaces the tensors `rule.names` by one tensor stacking them on a new axis 0.
pub(crate) fn stack(mut items: Vec<Item>, rule: &StackRule) -> Result<Vec<Item>> {
    let mut parts = Vec::with_capacity(rule.names.len());
    for name in &rule.names {
        let pos = items.iter().position(|i| &i.name == name).ok_or_else(|| {
            Error::NotFound(format!(
                "stack into \"{}\": tensor \"{name}\" is not in the model",
                rule.into
            ))
        })?;
        parts.push(items.swap_remove(pos));
    }
    items.push(stack_items(parts, &rule.into)?);
    Ok(items)
}

/// One tensor `into` stacking `parts` (equal dtypes and shapes) on a new axis 0.
pub(crate) fn stack_items(parts: Vec<Item>, into: &str) -> Result<Item> {
    let Some(first) = parts.first() else {
        return Err(Error::InvalidArgument(format!(
            "stack into \"{into}\": no tensors listed"
        )));
    };
    if let Some(odd) = parts
        .iter()
        .find(|p| p.dtype != first.dtype || p.shape != first.shape)
    {
        return Err(Error::InvalidArgument(format!(
            "stack into \"{}\": \"{}\" is {} {:?} but \"{}\" is {} {:?}",
            into, odd.name, odd.dtype, odd.shape, first.name, first.dtype, first.shape
        )));
    }
    let mut shape = Shape::from_slice(&[parts.len() as u64]);
    shape.extend_from_slice(&first.shape);
    let pieces = parts
        .iter()
        .flat_map(|p| p.source.pieces().into_owned())
        .collect();
    Ok(Item {
        name: into.to_string(),
        original: Some(first.original().to_string()),
        dtype: first.dtype,
        shape,
        source: Source::from_pieces(pieces),
    })
}
