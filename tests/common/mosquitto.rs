//! Mosquitto, started by a test from Debian's packages (scripts/test installs them).

use std::process::Stdio;

use tokio::process::{Child, Command};

/// The path of an installed program.
pub fn tool(name: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let path = format!("{dir}/{name}");
        if std::path::Path::new(&path).exists() {
            return path;
        }
    }
    panic!("`{name}` is not installed: run scripts/test, which installs mosquitto and mosquitto-clients");
}

/// A running Mosquitto, killed when dropped.
pub struct Mosquitto {
    pub child: Child,
}

impl Mosquitto {
    /// Starts Mosquitto with the config `text` (written to `dir`) and waits until every
    /// port of `ports` accepts connections.
    pub async fn start(dir: &std::path::Path, text: &str, ports: &[u16]) -> Mosquitto {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, text).unwrap();
        let mut child = Command::new(tool("mosquitto"))
            .args(["-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto starts");
        let deadline = tokio::time::Instant::now() + super::TIMEOUT;
        for port in ports {
            while tokio::net::TcpStream::connect(("127.0.0.1", *port))
                .await
                .is_err()
            {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("mosquitto stopped ({status}) with this config:\n{text}");
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "mosquitto did not listen on {port}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        Mosquitto { child }
    }
}

/// Adds a user to a Mosquitto password file (created if missing), as its README says.
pub fn add_user(file: &std::path::Path, user: &str, password: &str) {
    let mut args = vec!["-b"];
    if !file.exists() {
        args.push("-c");
    }
    let status = std::process::Command::new(tool("mosquitto_passwd"))
        .args(args)
        .args([file.to_str().unwrap(), user, password])
        .status()
        .expect("mosquitto_passwd runs");
    assert!(status.success(), "mosquitto_passwd {user}");
}
