//! Node-RED for the example flow's test: installed from npm into `target/node-red` once.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Node-RED 4 (the newest line that runs on Node.js 18 and 20), installed once into
/// `target/node-red`; `None` (with a note) where there is no npm.
pub fn node_red() -> Option<PathBuf> {
    if std::env::var("PHONE2MQTT_NODE_RED").as_deref() == Ok("skip") {
        eprintln!("PHONE2MQTT_NODE_RED=skip: the real Node-RED import skipped");
        return None;
    }
    let prefix = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/node-red");
    let bin = prefix.join("node_modules/.bin/node-red");
    if bin.exists() {
        return Some(bin);
    }
    let npm_works = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !npm_works {
        eprintln!("NOTE: no npm here: the Node-RED flow was checked as JSON only");
        return None;
    }
    eprintln!("Installing {NODE_RED} into {} (once)...", prefix.display());
    std::fs::create_dir_all(&prefix).unwrap();
    let output = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&prefix)
        .arg(NODE_RED)
        .output()
        .expect("npm runs");
    assert!(
        output.status.success() && bin.exists(),
        "installing Node-RED failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(bin)
}

const NODE_RED: &str = "node-red@4.1.8";
