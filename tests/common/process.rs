//! Processes a test starts: `phone2mqtt` itself, Node-RED, Home Assistant's Python.

use super::TIMEOUT;

/// Stops a `phone2mqtt` process the way a service manager does (SIGTERM) and requires a clean
/// exit in time.
pub async fn terminate(child: &mut tokio::process::Child) {
    send_signal(child.id().expect("still running"), "TERM");
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("the process stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "the process exits 0 on SIGTERM");
}

/// Sends the signal `name` (`TERM`, `STOP`, `CONT`...) to process `pid`.
pub fn send_signal(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{name} {pid}");
}

/// A child process killed (and reaped) when the test that started it ends, passed or not.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `phone2mqtt ARGS -c DIR/phone2mqtt.toml` to its end, `stdin` typed in; whether it
/// succeeded, and its stdout and stderr.
pub fn run_cli(
    dir: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_phone2mqtt"))
        .args(args)
        .arg("-c")
        .arg(dir.join("phone2mqtt.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
