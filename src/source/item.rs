//! A tensor on its way into the index ([`Item`]: a name, dtype, shape and [`Source`]) and the
//! building blocks architectures and the caller's rules are made of: split into row ranges,
//! stack on a new axis, refuse duplicate names. No data is read here.

use crate::dtype::Dtype;
use crate::error::{Error, Result};
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

/// Replaces the tensor `name` by consecutive row ranges: `(new name, rows)` in order, the rows
/// adding up to its first dimension.
pub(crate) fn split(
    mut items: Vec<Item>,
    name: &str,
    parts: &[(String, u64)],
) -> Result<Vec<Item>> {
    let pos = items.iter().position(|i| i.name == name).ok_or_else(|| {
        Error::NotFound(format!("split: tensor \"{}\" is not in the model", name))
    })?;
    let whole = items.swap_remove(pos);
    let rows = whole.shape.first().copied().unwrap_or(0);
    let total = parts.iter().try_fold(0u64, |acc, p| acc.checked_add(p.1));
    if whole.shape.is_empty() || total != Some(rows) {
        let total = total.map_or("more than 2^64".to_string(), |t| t.to_string());
        return Err(Error::InvalidArgument(format!(
            "split: tensor \"{}\" has shape {:?}; the parts' rows add up to {total}",
            whole.name, whole.shape
        )));
    }
    let mut start = 0;
    for (part, n) in parts {
        let mut shape = whole.shape.clone();
        shape[0] = *n;
        let source = whole
            .source
            .rows(&whole.shape, whole.dtype, start, start + n, &whole.name)?;
        items.push(Item {
            name: part.clone(),
            original: Some(whole.original().to_string()),
            dtype: whole.dtype,
            shape,
            source,
        });
        start += n;
    }
    Ok(items)
}

/// Replaces the tensors `names` by one tensor `into` stacking them on a new axis 0.
pub(crate) fn stack(mut items: Vec<Item>, names: &[String], into: &str) -> Result<Vec<Item>> {
    let mut parts = Vec::with_capacity(names.len());
    for name in names {
        let pos = items.iter().position(|i| &i.name == name).ok_or_else(|| {
            Error::NotFound(format!(
                "stack into \"{}\": tensor \"{name}\" is not in the model",
                into
            ))
        })?;
        parts.push(items.swap_remove(pos));
    }
    items.push(stack_items(parts, into)?);
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
