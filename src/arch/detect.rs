//! Which architecture a Hugging Face directory holds: `config.json` `architectures[0]`, mapped
//! by the names each registered architecture accepts (`registry::HF_NAMES`).

use std::path::Path;

use serde_json::Value;

use crate::error::{shown, shown_json, Error, Result};
use crate::file::DEFAULT_MAX_JSON_SIZE;
use crate::side_files::{self, SideFiles};

/// The architecture of the checkpoint in `dir`, from `dir/config.json` `architectures[0]`
/// (a regular file of at most [`DEFAULT_MAX_JSON_SIZE`] bytes). A missing file, a missing or
/// empty list and an unknown name are errors naming the file.
pub fn detect(dir: &Path) -> Result<&'static str> {
    detect_limited(dir, DEFAULT_MAX_JSON_SIZE)
}

/// [`detect`] with `config.json` bounded by `max_json` bytes (`Options::max_json_size`). It is
/// read by the one reader of side files, so a FIFO, a device or a file past the bound is
/// refused without blocking and before its bytes are read.
pub fn detect_limited(dir: &Path, max_json: u64) -> Result<&'static str> {
    detect_in(&SideFiles::read_only(dir, &[side_files::CONFIG], max_json))
}

/// The architecture `config.json` of `side` declares ([`detect`]).
pub fn detect_in(side: &SideFiles) -> Result<&'static str> {
    let path = side.path(side_files::CONFIG);
    let text = side.need(
        side_files::CONFIG,
        "detecting the architecture needs config.json beside the weights",
    )?;
    let json: Value = side.parse(side_files::CONFIG, text)?;
    let first =
        match json.get("architectures") {
            None | Some(Value::Null) => return Err(Error::format(
                path.display(),
                None,
                "\"architectures\" is missing: cannot detect the architecture (give one by name)",
            )),
            Some(Value::Array(list)) => match list.first() {
                None => return Err(Error::format(
                    path.display(),
                    None,
                    "\"architectures\" is empty: cannot detect the architecture (give one by name)",
                )),
                Some(Value::String(s)) => s.as_str(),
                Some(v) => {
                    return Err(Error::format(
                        path.display(),
                        None,
                        format!("\"architectures\"[0] is {}, not a string", shown_json(v)),
                    ))
                }
            },
            Some(v) => {
                return Err(Error::format(
                    path.display(),
                    None,
                    format!("\"architectures\" is {}, not a list", shown_json(v)),
                ))
            }
        };
    super::registry::by_hf_name(first)
        .map(|arch| arch.name)
        .ok_or_else(|| {
            let known: Vec<&str> = super::HF_NAMES.iter().map(|(hf, _)| *hf).collect();
            Error::Unsupported(format!(
                "{}: architecture \"{}\" is not supported (supported: {})",
                path.display(),
                shown(first),
                known.join(", ")
            ))
        })
}
