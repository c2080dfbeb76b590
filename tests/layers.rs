//! The layer rule of ARCHITECTURE.md: no top-level module of `src/` uses one that uses it back.
//! A grep over the sources: every `crate::X` path (in `use` lines and in code, comments aside)
//! is an edge from the file's top-level module to `X`; any cycle between two or more modules
//! fails the test, printed as a path.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Cycles that are allowed, as (from, to) edges that may close one, each with its reason. None:
/// `mlx` keeps its arrays in the model as attached values the model does not know the type of.
const ALLOWED: &[(&str, &str, &str)] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for the crate root and binaries).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.as_str() {
        "lib.rs" | "bin" => None,
        _ => Some(first.trim_end_matches(".rs").to_string()),
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The modules a line of code names through `crate::`, including `use crate::{a, b::c}`.
fn targets(line: &str, out: &mut BTreeSet<String>) {
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| is_ident(c) || c == '$') {
            continue; // `$crate::` or an identifier ending in "crate"
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of a brace group: split at commas outside nested braces.
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        push_name(&group[start..i], out);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        push_name(&group[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            push_name(rest, out);
        }
    }
}

fn push_name(path: &str, out: &mut BTreeSet<String>) {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|&c| is_ident(c))
        .collect();
    if !name.is_empty() && name != "self" {
        out.insert(name);
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let text = fs::read_to_string(&file).unwrap();
        let mut names = BTreeSet::new();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            targets(code, &mut names);
        }
        let set = edges.entry(module.clone()).or_default();
        set.extend(names.into_iter().filter(|n| *n != module));
    }
    edges
}

/// A path `from → … → to` in the graph without the allowed edges, if any.
fn path(
    edges: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if from == to {
        return Some(vec![to.to_string()]);
    }
    if !seen.insert(from.to_string()) {
        return None;
    }
    for next in edges.get(from).into_iter().flatten() {
        if ALLOWED.iter().any(|(a, b, _)| *a == from && b == next) {
            continue;
        }
        if let Some(mut rest) = path(edges, next, to, seen) {
            rest.insert(0, from.to_string());
            return Some(rest);
        }
    }
    None
}

#[test]
fn the_grep_sees_use_groups_and_paths() {
    let mut names = BTreeSet::new();
    targets(
        "use crate::{dtype::Dtype, error::{Error, Result}, self};",
        &mut names,
    );
    targets(
        "let x = crate::torch::is_contiguous(a) + $crate::no;",
        &mut names,
    );
    let want: BTreeSet<String> = ["dtype", "error", "torch"].map(String::from).into();
    assert_eq!(names, want);
}

#[test]
fn no_module_uses_one_that_uses_it_back() {
    let edges = graph();
    assert!(
        edges.contains_key("model") && edges["model"].contains("source"),
        "the grep found no edges: {edges:?}"
    );
    let mut cycles = Vec::new();
    for (from, tos) in &edges {
        for to in tos {
            if ALLOWED.iter().any(|(a, b, _)| a == from && b == to) {
                continue;
            }
            if let Some(back) = path(&edges, to, from, &mut BTreeSet::new()) {
                cycles.push(format!("{from} -> {}", back.join(" -> ")));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles between top-level modules of src/:\n  {}",
        cycles.join("\n  ")
    );
}
