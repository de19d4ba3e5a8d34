//! The processes under test: `phone2mqtt serve` with a generated config, or a baseline, each in
//! its own process so that its peak RSS (`VmHWM`) is its own, broker included.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A child process that is stopped (SIGINT, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub pid: u32,
    pub http: SocketAddr,
    pub mqtt: Option<SocketAddr>,
    pub log: PathBuf,
    /// A viewer API token of the gateway (for `/ws`); `None` for a baseline.
    pub token: Option<String>,
}

/// Peak and current resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub peak_kib: u64,
    pub now_kib: u64,
}

impl Memory {
    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
    pub fn now_mib(&self) -> f64 {
        self.now_kib as f64 / 1024.0
    }
}

impl Server {
    /// `phone2mqtt serve -c <dir>/phone2mqtt.toml`: waits for its "is running" line, which
    /// it prints once the broker, the agent and the web side are up and connected.
    pub async fn gateway(bin: &Path, dir: &Path, config: &str) -> anyhow::Result<Server> {
        let path = dir.join("phone2mqtt.toml");
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        // As a person would: `token create` on the same config, its token on the last line.
        let created = Command::new(bin)
            .args(["token", "create", "bench", "--role", "viewer", "-c"])
            .arg(&path)
            .current_dir(dir)
            .output()
            .await
            .context("phone2mqtt token create")?;
        let stdout = String::from_utf8_lossy(&created.stdout);
        let token = stdout.lines().last().unwrap_or_default().trim().to_string();
        if !created.status.success() || token.is_empty() {
            bail!(
                "phone2mqtt token create failed: {}",
                String::from_utf8_lossy(&created.stderr)
            );
        }
        let mut command = Command::new(bin);
        command
            .args(["serve", "--poll", "0", "-c"])
            .arg(&path)
            .current_dir(dir);
        let mut server =
            Server::spawn(command, dir.join("gateway.log"), "phone2mqtt is running").await?;
        server.token = Some(token);
        Ok(server)
    }

    /// `phone2mqtt bench-baseline <kind>`.
    pub async fn baseline(bin: &Path, dir: &Path, kind: &str) -> anyhow::Result<Server> {
        let mut command = Command::new(bin);
        command.args(["bench-baseline", kind]).current_dir(dir);
        Server::spawn(command, dir.join(format!("baseline-{kind}.log")), "ready").await
    }

    async fn spawn(mut command: Command, log: PathBuf, ready: &str) -> anyhow::Result<Server> {
        let log_file = std::fs::File::create(&log)?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .context("starting the process under test")?;
        let pid = child.id().context("the process has an id")?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with(ready) {
                    return Ok(Some(line));
                }
            }
            anyhow::Ok(None)
        })
        .await;
        let line = match line {
            Ok(Ok(Some(line))) => line,
            _ => bail!(
                "the process under test did not start; the end of its log:\n{}",
                log_tail(&log)
            ),
        };
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = address_after(&line, "http://").context("no HTTP address in the ready line")?;
        let mqtt = address_after(&line, "mqtt://");
        Ok(Server {
            child,
            pid,
            http,
            mqtt,
            log,
            token: None,
        })
    }

    pub fn memory(&self) -> Memory {
        memory_of(self.pid)
    }

    /// Asks the process to stop (SIGINT, as Ctrl-C would) and waits; kills it after 10 s.
    pub async fn stop(mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The last lines of a log, for an error message.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// `127.0.0.1:8080` in `... http://127.0.0.1:8080/ ...`.
fn address_after(line: &str, scheme: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(scheme)? + scheme.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

pub fn memory_of(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        peak_kib: field("VmHWM:"),
        now_kib: field("VmRSS:"),
    }
}

/// A scratch directory for one run, removed when dropped.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> std::io::Result<Scratch> {
        let path =
            std::env::temp_dir().join(format!("phone2mqtt-bench-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines() {
        let line = "phone2mqtt is running: Manager http://127.0.0.1:40123/ , MQTT mqtt://127.0.0.1:40124 (try: ...)";
        assert_eq!(
            address_after(line, "http://"),
            Some("127.0.0.1:40123".parse().unwrap())
        );
        assert_eq!(
            address_after(line, "mqtt://"),
            Some("127.0.0.1:40124".parse().unwrap())
        );
        assert_eq!(address_after("ready http://127.0.0.1:1", "mqtt://"), None);
    }
}
