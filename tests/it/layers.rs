//! The layout keeps itself (issue 25): every `crate::` path in a module's code names a module
//! that ARCHITECTURE.md's "Layers" table allows it to import, and the pure layers stay pure.
//! The table is read from ARCHITECTURE.md, so the document and the check cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// ARCHITECTURE.md's table: module → the modules it may import.
fn table() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let section = text
        .split("## Layers")
        .nth(1)
        .expect("ARCHITECTURE.md has a `## Layers` section");
    let section = section.split("\n## ").next().unwrap();
    let mut rows = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `module` | `a` `b` | what it owns |
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let module = cells[1].trim_matches('`').to_string();
        let allowed = cells[2]
            .split_whitespace()
            .map(|m| m.trim_matches('`').to_string())
            .collect();
        rows.insert(module, allowed);
    }
    assert!(rows.len() > 10, "the Layers table was not found: {rows:?}");
    rows
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A source file's code: its unit tests (from the first `#[cfg(test)]`) and comments cut.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every source file under src/ with its top-level module (lib.rs and the binaries left out).
fn module_files() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    sources(&root().join("src"), &mut files);
    let table = table();
    files
        .into_iter()
        .filter_map(|f| module_of(&f, &table).map(|m| (f, m)))
        .collect()
}

/// The row a file under src/ belongs to (`None` for lib.rs and the binaries): its top-level
/// module, or `top::sub` where the table has a row of its own for that submodule.
fn module_of(path: &Path, table: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    let rel = path.strip_prefix(root().join("src")).unwrap();
    let mut names = rel
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .map(|c| c.strip_suffix(".rs").unwrap_or(c));
    let first = names.next()?;
    if matches!(first, "lib" | "bin") {
        return None;
    }
    let sub = names.next().map(|second| format!("{first}::{second}"));
    Some(
        sub.filter(|s| table.contains_key(s))
            .unwrap_or(first.to_string()),
    )
}

/// The rows that `crate::` paths in `code` name: `a` for `crate::a::…`, or `a::b` for
/// `crate::a::b…` where `rows` has a row of its own for `a::b`.
fn crate_paths(code: &str, rows: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name = ident(rest);
        let sub = rest[name.len()..]
            .strip_prefix("::")
            .map(|after| format!("{name}::{}", ident(after)));
        found.insert(sub.filter(|s| rows.contains_key(s)).unwrap_or(name));
    }
    found
}

#[test]
fn layers_every_module_imports_only_what_architecture_md_allows() {
    let table = table();
    let mut broken = Vec::new();
    for (file, module) in &module_files() {
        let allowed = table.get(module).unwrap_or_else(|| {
            panic!("module `{module}` is not in ARCHITECTURE.md's Layers table: add its row")
        });
        for used in crate_paths(&code(file), &table) {
            // A module may use itself and the submodules that have rows of their own (`store`
            // uses `store::fileset`); a submodule's row says all it may use, its parent too.
            // Allowing `store` allows its submodules' rows too.
            let own = used == *module || used.starts_with(&format!("{module}::"));
            let parent = used.split("::").next().unwrap_or(&used);
            if !own && !allowed.contains(&used) && !allowed.contains(parent) {
                broken.push(format!(
                    "{}: `{module}` imports `crate::{used}`",
                    file.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports that break ARCHITECTURE.md's Layers table:\n{}",
        broken.join("\n")
    );
}

#[test]
fn layers_the_pure_ones_do_no_io_and_config_starts_nothing() {
    let impure: &[(&str, &[&str])] = &[
        (
            "parse",
            &[
                "std::fs",
                "std::net::Tcp",
                "std::net::Udp",
                "std::process",
                "tokio",
            ],
        ),
        (
            "render",
            &[
                "std::fs",
                "std::net::Tcp",
                "std::net::Udp",
                "std::process",
                "tokio",
            ],
        ),
        (
            "route",
            &[
                "std::fs",
                "std::net::Tcp",
                "std::net::Udp",
                "std::process",
                "tokio",
            ],
        ),
        (
            "config",
            &[
                "TcpListener",
                "UdpSocket",
                "TcpStream",
                "std::thread",
                "std::process",
                "tokio",
            ],
        ),
    ];
    let mut broken = Vec::new();
    for (file, module) in &module_files() {
        let Some((_, banned)) = impure.iter().find(|(m, _)| m == module) else {
            continue;
        };
        let code = code(file);
        for b in *banned {
            if code.contains(b) {
                broken.push(format!(
                    "{}: `{module}` uses `{b}`",
                    file.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The check itself: a module that imports above its row is reported.
#[test]
fn layers_the_check_sees_an_upward_import() {
    let table = table();
    let used = crate_paths(
        "use crate::output::fsops;\nlet x = crate::daemon::run();\nuse crate::store::fileset::Naming;",
        &table,
    );
    assert_eq!(
        used,
        BTreeSet::from([
            "output".to_string(),
            "daemon".to_string(),
            "store::fileset".to_string()
        ])
    );
    assert!(table["render"].contains("store::fileset"));
    assert!(!table["render"].contains("store"));
    assert!(!table["config"].contains("output"));
    assert!(!table["parse"].contains("config"));
}
