//! The dependency rule of the crate, checked: every `crate::…` path in a module names a
//! module of a lower layer (or its own), so dependencies point one way and cannot form a
//! cycle. The layers, bottom up: plain types; small leaf utilities; storage; the features'
//! error; the features; the shared state; the HTTP layer; start-up; the command line.

use std::{collections::BTreeMap, fs, path::Path};

const LAYERS: &[(&str, u8)] = &[
    ("model", 0),
    ("validate", 1),
    ("config", 1),
    ("crypto", 2),
    ("store", 3),
    ("error", 4),
    ("audit", 5),
    ("members", 6),
    ("contacts", 6),
    ("keys", 6),
    ("access", 7),
    ("agents", 7),
    ("documents", 7),
    ("state", 8),
    ("http", 9),
    ("server", 10),
    ("cli", 11),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
}

/// The top-level modules named by `crate::` paths in `text`, including every item of a
/// `use crate::{a, b::c}` group.
fn crate_references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                    _ if depth == 1 => item.push(c),
                    _ => {}
                }
            }
            items.push(item);
            found.extend(items.iter().filter_map(|item| first_ident(item.trim())));
        } else if let Some(name) = first_ident(rest) {
            found.push(name);
        }
    }
    found
}

fn first_ident(text: &str) -> Option<String> {
    let name: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn dependencies_point_down_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut violations = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if matches!(module.as_str(), "lib" | "main" | "layers") {
            continue;
        }
        let own = layer(&module).unwrap_or_else(|| panic!("{module} has no layer"));
        let text = fs::read_to_string(&file).unwrap();
        for target in crate_references(&text) {
            let target_layer = layer(&target)
                .unwrap_or_else(|| panic!("{} names crate::{target}", relative.display()));
            if target != module && target_layer >= own {
                violations
                    .entry(format!("{} -> {target}", relative.display()))
                    .or_insert(());
            }
        }
    }
    assert!(
        violations.is_empty(),
        "modules that depend on their own layer or above: {:#?}",
        violations.keys().collect::<Vec<_>>()
    );
}

#[test]
fn references_are_found_in_groups_and_paths() {
    let text = "use crate::{\n    audit,\n    model::{a, b::c},\n    store::{self, Store},\n};\nlet x = crate::keys::format::generate();";
    assert_eq!(crate_references(text), ["audit", "model", "store", "keys"]);
}
