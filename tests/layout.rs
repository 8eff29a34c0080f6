//! The library's layout: its top-level modules depend on one another without a cycle, so that each can be read,
//! tested and replaced from the bottom up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level modules of the library (the binary's `cli` and the crate roots left out).
fn top_level_modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if ["lib", "main", "cli"].contains(&name.as_str()) {
            continue;
        }
        let files = if path.is_dir() { rust_files(&path) } else { vec![path] };
        modules.insert(name, files);
    }
    modules
}

/// The top-level modules `text` names through `crate::` paths, test modules left out.
fn named_modules(text: &str, modules: &BTreeMap<String, Vec<PathBuf>>) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut named = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let group = rest
            .strip_prefix('{')
            .map(|inner| &inner[..inner.find('}').unwrap_or(inner.len())]);
        let heads: Vec<&str> = match group {
            Some(inner) => inner.split(',').map(str::trim).collect(),
            None => vec![rest],
        };
        for head in heads {
            let name: String = head.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if modules.contains_key(&name) {
                named.insert(name);
            }
        }
    }
    named
}

/// A cycle through `start` in `graph`, if there is one, as the path of module names that closes it.
fn cycle_from(start: &str, graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in &graph[&node] {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn the_top_level_modules_import_one_another_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = top_level_modules(&src);
    assert!(
        modules.contains_key("search") && modules.contains_key("nn") && modules.contains_key("system"),
        "{:?}",
        modules.keys()
    );
    let mut graph = BTreeMap::new();
    for (name, files) in &modules {
        let mut uses = BTreeSet::new();
        for file in files {
            uses.extend(named_modules(&std::fs::read_to_string(file).unwrap(), &modules));
        }
        uses.remove(name);
        graph.insert(name.clone(), uses);
    }
    // The check can fail: search uses train, so a use of search from train would close a cycle.
    assert!(graph["search"].contains("train"));
    let mut with_cycle = graph.clone();
    with_cycle.get_mut("train").unwrap().insert("search".to_string());
    assert!(cycle_from("train", &with_cycle).is_some());
    let cycles: Vec<Vec<String>> = graph.keys().filter_map(|name| cycle_from(name, &graph)).collect();
    assert!(cycles.is_empty(), "import cycles between top-level modules: {cycles:?}");
}
