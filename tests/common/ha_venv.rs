//! Home Assistant for the discovery tests: a Python with the pinned Home Assistant, in
//! `target/ha-venv` (made once), for `tests/ha_check.py`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The newest Home Assistant that installs on Python 3.13.0 (later ones want 3.13.2+); the
/// MQTT integration it carries has device-based discovery (since 2024.11).
const HOMEASSISTANT: &str = "homeassistant==2025.4.4";
const PAHO: &str = "paho-mqtt==2.1.0";

/// A Python with Home Assistant: `PHONE2MQTT_HA_PYTHON`, or `target/ha-venv` (made on first use
/// from a Python 3.13+, with the pinned Home Assistant). `PHONE2MQTT_HA=skip` skips it.
pub fn ha_python() -> Option<PathBuf> {
    if std::env::var("PHONE2MQTT_HA").as_deref() == Ok("skip") {
        eprintln!("PHONE2MQTT_HA=skip: Home Assistant's own check skipped");
        return None;
    }
    if let Some(python) = std::env::var_os("PHONE2MQTT_HA_PYTHON").filter(|p| !p.is_empty()) {
        return Some(python.into());
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ha-venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import homeassistant.components.mqtt.discovery"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return Some(python);
    }
    let Some(base) = python_313() else {
        eprintln!(
            "NOTE: no Python 3.13+ here, so Home Assistant cannot be installed; the discovery was \
             checked against the schema written from its docs only"
        );
        return None;
    };
    eprintln!(
        "Installing {HOMEASSISTANT} into {} (once)...",
        venv.display()
    );
    let run = |command: &mut Command| {
        command.output().map(|o| {
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
    };
    let steps = [
        run(Command::new(&base).arg("-m").arg("venv").arg(&venv)),
        run(Command::new(&python).args(["-m", "pip", "install", "-q", HOMEASSISTANT, PAHO])),
    ];
    for step in steps {
        match step {
            Ok((true, _)) => {}
            Ok((false, err)) => panic!("installing Home Assistant failed: {err}"),
            Err(err) => panic!("installing Home Assistant failed: {err}"),
        }
    }
    assert!(
        ready(&python),
        "Home Assistant installed but does not import"
    );
    Some(python)
}

/// A Python 3.13 or newer: on the PATH, or one of pyenv's.
fn python_313() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = ["python3.14", "python3.13", "python3"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(home) = std::env::var_os("HOME") {
        let versions = Path::new(&home).join(".pyenv/versions");
        if let Ok(entries) = std::fs::read_dir(versions) {
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path().join("bin/python3"))
                .collect();
            found.sort();
            candidates.extend(found.into_iter().rev());
        }
    }
    candidates.into_iter().find(|python| {
        Command::new(python)
            .args([
                "-c",
                "import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}
