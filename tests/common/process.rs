//! Processes a test starts: `phone2mqtt` itself, Node-RED, Home Assistant's Python.

use super::TIMEOUT;

/// Stops a `phone2mqtt` process the way a service manager does (SIGTERM) and requires a clean
/// exit in time.
pub async fn terminate(child: &mut tokio::process::Child) {
    let pid = child.id().expect("still running").to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("the process stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "the process exits 0 on SIGTERM");
}

/// A child process killed (and reaped) when the test that started it ends, passed or not.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
