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

/// A running Mosquitto, killed when dropped. It can be hung (SIGSTOP), resumed, stopped
/// (SIGTERM) and started again on the same ports with the same config, as an operator's broker
/// fails.
pub struct Mosquitto {
    pub child: Child,
    conf: std::path::PathBuf,
    ports: Vec<u16>,
}

impl Mosquitto {
    /// Starts Mosquitto with the config `text` (written to `dir`) and waits until every
    /// port of `ports` accepts connections.
    pub async fn start(dir: &std::path::Path, text: &str, ports: &[u16]) -> Mosquitto {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, text).unwrap();
        let child = spawn_listening(&conf, ports).await;
        Mosquitto {
            child,
            conf,
            ports: ports.to_vec(),
        }
    }

    /// A Mosquitto for anonymous clients on a free loopback port, with `extra` config lines;
    /// returns it and its port.
    pub async fn anonymous(dir: &std::path::Path, extra: &str) -> (Mosquitto, u16) {
        let port = super::free_port().port();
        let text = format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}");
        (Mosquitto::start(dir, &text, &[port]).await, port)
    }

    /// Hangs the broker (SIGSTOP): its connections stay open, nothing is read or answered.
    pub fn pause(&self) {
        super::send_signal(self.pid(), "STOP");
    }

    /// Lets a hung broker go on (SIGCONT).
    pub fn resume(&self) {
        super::send_signal(self.pid(), "CONT");
    }

    /// Stops the broker as a service manager does (SIGTERM) and waits until it is gone.
    pub async fn stop(&mut self) {
        super::send_signal(self.pid(), "TERM");
        tokio::time::timeout(super::TIMEOUT, self.child.wait())
            .await
            .expect("mosquitto stops on SIGTERM")
            .unwrap();
    }

    /// Starts the broker again, same config and ports, once [`Mosquitto::stop`] stopped it.
    pub async fn restart(&mut self) {
        self.child = spawn_listening(&self.conf, &self.ports).await;
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("mosquitto is running")
    }
}

/// Mosquitto on the config file `conf`, once every port of `ports` accepts connections.
async fn spawn_listening(conf: &std::path::Path, ports: &[u16]) -> Child {
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
                let text = std::fs::read_to_string(conf).unwrap_or_default();
                panic!("mosquitto stopped ({status}) with this config:\n{text}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    child
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
