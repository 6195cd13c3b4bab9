//! The code map tells the truth: the crate graph in ARCHITECTURE.md is the graph the Cargo.toml
//! files declare, and the server's crates keep files small enough to read (issue 14).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
}

/// Each workspace crate's `[dependencies]` on the others, from its Cargo.toml.
fn declared_graph() -> BTreeMap<String, Vec<String>> {
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let doc: toml::Table = text.parse().unwrap();
        let name = doc["package"]["name"].as_str().unwrap().to_owned();
        let mut deps: Vec<String> = doc
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|d| {
                d.keys()
                    .filter(|k| k.starts_with("vigil-") || *k == "vigil")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        deps.sort();
        graph.insert(name, deps);
    }
    graph
}

/// The graph as ARCHITECTURE.md draws it: the text block after `<!-- crate-graph -->`, one
/// line per crate, `NAME → DEP, DEP` or `NAME → (none)`.
fn documented_graph() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).unwrap();
    let after = text
        .split_once("<!-- crate-graph -->")
        .expect("ARCHITECTURE.md has a <!-- crate-graph --> block")
        .1;
    let block = after
        .split_once("```text\n")
        .unwrap()
        .1
        .split_once("```")
        .unwrap()
        .0;
    let mut graph = BTreeMap::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let (name, deps) = line
            .split_once('→')
            .unwrap_or_else(|| panic!("not `NAME → DEPS`: {line:?}"));
        let mut deps: Vec<String> = match deps.trim() {
            "(none)" => Vec::new(),
            list => list.split(',').map(|d| d.trim().to_owned()).collect(),
        };
        deps.sort();
        graph.insert(name.trim().to_owned(), deps);
    }
    graph
}

#[test]
fn the_documented_crate_graph_is_the_declared_one() {
    let declared = declared_graph();
    assert!(declared.len() >= 13, "found only {declared:?}");
    assert_eq!(
        documented_graph(),
        declared,
        "ARCHITECTURE.md's crate graph differs from the Cargo.toml files"
    );
}

#[test]
fn lower_crates_never_import_higher_ones() {
    let graph = declared_graph();
    // A crate's depth: one more than its deepest dependency. A cycle would never settle.
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..graph.len() {
        for (name, deps) in &graph {
            let d = deps
                .iter()
                .map(|dep| depth.get(dep.as_str()).copied().unwrap_or(0) + 1)
                .max()
                .unwrap_or(0);
            depth.insert(name, d);
        }
    }
    for (name, deps) in &graph {
        for dep in deps {
            assert!(
                depth[dep.as_str()] < depth[name.as_str()],
                "{name} depends on {dep}, which is not below it"
            );
        }
    }
    // The model at the bottom, the binary at the top; the reading crates stay off the server.
    assert_eq!(depth["vigil-event"], 0);
    assert_eq!(depth.values().max(), Some(&depth["vigil"]));
    for lower in [
        "vigil-index",
        "vigil-ledger",
        "vigil-detect",
        "vigil-query",
        "vigil-auth",
    ] {
        assert!(
            !graph[lower].iter().any(|d| d == "vigil-server"),
            "{lower} depends on vigil-server"
        );
    }
}

#[test]
fn no_file_of_the_server_crates_is_over_800_lines() {
    let mut long = Vec::new();
    for krate in [
        "vigil-server",
        "vigil-ingest",
        "vigil-auth",
        "vigil-respond",
    ] {
        let mut stack = vec![workspace().join("crates").join(krate).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
                    if lines > 800 {
                        long.push(format!("{} ({lines} lines)", path.display()));
                    }
                }
            }
        }
    }
    assert!(long.is_empty(), "split these by concern: {long:?}");
}
