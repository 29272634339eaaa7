//! Package truths, checked against the resolved dependency graph: the declared
//! `rust-version` is at least every normal dependency's, and every dependency is used.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

fn metadata(extra: &[&str]) -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--locked",
            "--all-features",
            "--format-version",
            "1",
        ])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[test]
fn declared_rust_version_covers_every_normal_dependency() {
    let metadata = metadata(&[]);
    let packages: HashMap<&str, &Value> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root = metadata["resolve"]["root"].as_str().unwrap();
    // Everything reachable through normal (not dev, not build) edges.
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|kind| kind["kind"].is_null());
            let pkg = dep["pkg"].as_str().unwrap();
            if normal && seen.insert(pkg) {
                stack.push(pkg);
            }
        }
    }
    let declared = version(env!("CARGO_PKG_RUST_VERSION"));
    let (needed, by) = seen
        .iter()
        .filter_map(|id| {
            let package = packages[id];
            let rust_version = package["rust_version"].as_str()?;
            Some((version(rust_version), package["name"].as_str().unwrap()))
        })
        .max()
        .unwrap();
    assert!(
        declared >= needed,
        "rust-version {} is below {by}'s {needed:?}: raise it in Cargo.toml",
        env!("CARGO_PKG_RUST_VERSION")
    );
}

#[test]
fn every_dependency_is_used_somewhere_in_the_package() {
    let metadata = metadata(&["--no-deps"]);
    let package = &metadata["packages"][0];
    let mut sources = String::new();
    for dir in ["src", "tests", "benches", "examples"] {
        collect(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
            &mut sources,
        );
    }
    let mut unused = Vec::new();
    for dep in package["dependencies"].as_array().unwrap() {
        let name = dep["rename"].as_str().or(dep["name"].as_str()).unwrap();
        // The crate name as code spells it (`md-5` is `md5`, `http-body` is `http_body`).
        let krate = match name {
            "md-5" => "md5".to_owned(),
            other => other.replace('-', "_"),
        };
        let used = [
            format!("{krate}::"),
            format!("use {krate}"),
            format!("extern crate {krate}"),
        ]
        .iter()
        .any(|needle| sources.contains(needle.as_str()));
        if !used {
            unused.push(name.to_owned());
        }
    }
    assert!(unused.is_empty(), "dependencies no code uses: {unused:?}");
}

fn collect(dir: std::path::PathBuf, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
    }
}
