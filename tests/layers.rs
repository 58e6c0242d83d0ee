//! The layering of ARCHITECTURE.md, enforced: each top-level module imports only the layers
//! its row allows, the reactor (mio) stays out of the protocol core and the routes, and the
//! protocol's own files import each other without cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level module may import from the crate (ARCHITECTURE.md's table).
const ALLOWED: &[(&str, &[&str])] = &[
    ("protocol", &[]),
    ("sys", &[]),
    ("wake", &[]),
    ("auth", &["wake"]),
    ("cli", &[]),
    ("http", &["protocol", "auth"]),
    ("dissect", &["protocol", "http"]),
    ("client", &["protocol"]),
    ("bench", &["protocol", "client"]),
    (
        "routes",
        &["protocol", "sys", "wake", "auth", "http", "dissect"],
    ),
    (
        "server",
        &["protocol", "sys", "auth", "http", "dissect", "routes"],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/routes/tty/session.rs` → `routes`).
fn top_module(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        name => Some(name.trim_end_matches(".rs").to_string()),
    }
}

/// The code of a file, comments removed.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("read");
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::NAME` in the code.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let name: String = rest[at + 7..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            refs.insert(name);
        }
        rest = &rest[at + 7..];
    }
    refs
}

#[test]
fn each_layer_imports_only_what_it_may() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = top_module(file) else {
            continue;
        };
        let Some(may) = allowed.get(module.as_str()) else {
            wrong.push(format!(
                "{}: module {module} is not in the table",
                file.display()
            ));
            continue;
        };
        for used in crate_refs(&code(file)) {
            if used != module && !may.contains(&used.as_str()) {
                wrong.push(format!("{}: {module} imports {used}", file.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_table_itself_has_no_cycle() {
    // Each module may only import modules listed before it: a total order, so no cycle.
    for (i, (module, may)) in ALLOWED.iter().enumerate() {
        for used in *may {
            let position = ALLOWED.iter().position(|(m, _)| m == used);
            assert!(
                position.is_some_and(|p| p < i),
                "{module} may import {used}, which is not below it"
            );
        }
    }
}

#[test]
fn no_reactor_in_the_protocol_core_or_the_routes() {
    let mut files = Vec::new();
    rust_files(&src().join("protocol"), &mut files);
    rust_files(&src().join("routes"), &mut files);
    let offenders: Vec<_> = files
        .iter()
        .filter(|f| {
            let code = code(f);
            code.contains("mio::") || code.contains("use mio")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "mio used in {offenders:?}");
}

/// The protocol's files, as nodes: `handshake/server.rs` is part of `handshake`.
fn protocol_node(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src().join("protocol")).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    // The facade (re-exports) and the test files are not part of the import graph.
    (name != "mod" && !name.ends_with("_tests")).then(|| name.to_string())
}

#[test]
fn the_protocol_core_has_no_import_cycle() {
    let mut files = Vec::new();
    rust_files(&src().join("protocol"), &mut files);
    let nodes: BTreeSet<String> = files.iter().filter_map(|f| protocol_node(f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(node) = protocol_node(file) else {
            continue;
        };
        let code = code(file);
        // Only the module's own code: its unit tests may use anything.
        let code = code.split("#[cfg(test)]").next().unwrap_or("");
        let nested = file.parent() != Some(&src().join("protocol"));
        let mut targets = BTreeSet::new();
        for prefix in [
            "crate::protocol::",
            if nested { "super::super::" } else { "super::" },
        ] {
            let mut rest = code;
            while let Some(at) = rest.find(prefix) {
                let name: String = rest[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if nodes.contains(&name) && name != node {
                    targets.insert(name);
                }
                rest = &rest[at + prefix.len()..];
            }
        }
        edges.entry(node).or_default().extend(targets);
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in &nodes {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            panic!("import cycle in src/protocol: {}", cycle.join(" -> "));
        }
    }
    assert!(edges.get("receiver").is_some_and(|e| e.contains("frame")));
}
