//! Action URLs: filled in with the phone's variables, verbatim, and fired as raw request lines,
//! one connection each, the way phones send them.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::phone::{Fire, PhoneState, SimPhone};

impl SimPhone {
    /// Someone presses programmable key `n`: the phone requests the URL it is programmed with.
    pub fn press_key(&self, n: u32) -> Result<(), String> {
        let personality = self.inner.options.personality;
        let url = {
            let state = self.lock();
            (personality.key_url)(&state.provisioned.settings, n)
        };
        let Some(url) = url else {
            return Err(format!("key {n} is not programmed to call a URL"));
        };
        let user_agent = (personality.user_agent)(&self.lock().identity);
        let phone = self.clone();
        tokio::spawn(async move {
            let status = send_raw_get(&url, &user_agent).await.unwrap_or(0);
            phone.lock().fired.push((format!("key {n}"), status));
        });
        Ok(())
    }

    /// Queues the Action URL for a normalised event, if provisioning set one.
    pub(super) fn fire(&self, event: &str) {
        let vendor = self.inner.options.personality.vendor;
        let Some(spec) = vendor.events.iter().find(|spec| spec.event.name() == event) else {
            return;
        };
        let state = self.lock();
        let Some(template) = state.provisioned.action_urls.get(spec.wire) else {
            return;
        };
        let url = substitute(template, &self.variables(&state));
        self.inner.unanswered.fetch_add(1, Ordering::SeqCst);
        let _ = self.inner.fire_tx.send(Fire {
            wire: spec.wire.to_string(),
            url,
        });
    }

    /// The vendor's variables with their current values, by the vendor's spelling.
    fn variables(&self, state: &PhoneState) -> HashMap<&'static str, String> {
        let options = &self.inner.options;
        let personality = options.personality;
        let names = &personality.vendor.vars;
        let mut values: HashMap<&'static str, String> = HashMap::new();
        values.insert(names.mac, (personality.mac_value)(&state.identity.mac));
        let mut put = |name: Option<&'static str>, value: Option<String>| {
            if let (Some(name), Some(value)) = (name, value) {
                values.insert(name, value);
            }
        };
        put(names.ip, Some(self.inner.addr.ip().to_string()));
        put(names.model, Some(state.identity.model.clone()));
        put(names.firmware, Some(state.identity.firmware.clone()));
        put(names.active_user, Some(options.line_user.clone()));
        put(names.active_host, Some(options.pbx_host.clone()));
        put(
            names.local,
            Some((personality.remote_value)(
                &options.line_user,
                &options.pbx_host,
            )),
        );
        put(names.display_local, Some(options.display_name.clone()));
        put(
            names.remote,
            state
                .remote
                .as_ref()
                .map(|r| (personality.remote_value)(r, &options.pbx_host)),
        );
        put(names.display_remote, state.remote_name.clone());
        put(names.call_id, state.call_id.map(|id| id.to_string()));
        values
    }
}

/// Replaces each `$name` the phone knows with its value, verbatim; unknown ones stay literal,
/// as real phones leave them.
pub fn substitute(template: &str, values: &HashMap<&'static str, String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        match values.get(name) {
            Some(value) => out.push_str(value),
            None => {
                out.push('$');
                out.push_str(name);
            }
        }
        rest = &after[name_len..];
    }
    out.push_str(rest);
    out
}

/// Sends the queued Action URLs in order, each as a raw request line on its own connection.
pub(super) async fn fire_loop(phone: SimPhone, mut queue: mpsc::UnboundedReceiver<Fire>) {
    while let Some(fire) = queue.recv().await {
        let user_agent = {
            let state = phone.lock();
            (phone.inner.options.personality.user_agent)(&state.identity)
        };
        let status = match send_raw_get(&fire.url, &user_agent).await {
            Ok(status) => status,
            Err(err) => {
                warn!(url_event = %fire.wire, cause = %err, "Action URL could not be sent.");
                0
            }
        };
        debug!(event = %fire.wire, status, "Action URL fired.");
        phone.lock().fired.push((fire.wire, status));
        phone.inner.unanswered.fetch_sub(1, Ordering::SeqCst);
        if phone.inner.shutdown.is_cancelled() {
            return;
        }
    }
}

/// `GET` with the target written byte for byte, spaces and all, the way phones do it.
pub async fn send_raw_get(url: &str, user_agent: &str) -> std::io::Result<u16> {
    let (address, request) = raw_get(url, user_agent)?;
    let mut stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&address))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    exchange(&mut stream, &request, Duration::from_secs(5)).await
}

/// Writes a request on a connected stream and reads the answer to its end; the answer's status.
pub(super) async fn exchange(
    stream: &mut TcpStream,
    request: &str,
    timeout: Duration,
) -> std::io::Result<u16> {
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(timeout, stream.read_to_end(&mut response))
        .await
        .map_err(|_| std::io::Error::other("no answer"))??;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut headers);
    // The status line is read even when the head is cut short.
    let _ = head.parse(&response);
    head.code
        .ok_or_else(|| std::io::Error::other("no HTTP status in the answer"))
}

/// The address to connect to and the request a phone writes for an Action URL: the target byte
/// for byte, spaces and all, one request per connection.
pub fn raw_get(url: &str, user_agent: &str) -> std::io::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("only http:// Action URLs are simulated"))?;
    let (authority, target) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    Ok((address, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_pasted_verbatim() {
        let values: HashMap<&'static str, String> = [
            ("mac", "00:15:65:4a:a9:37".to_string()),
            ("display_remote", "Anna Schmidt".to_string()),
            ("remote", "+4930123456".to_string()),
            ("call-id", "7".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            substitute(
                "http://a/x?mac=$mac&n=$display_remote&r=$remote&c=$call_id&g=$call-id",
                &values
            ),
            "http://a/x?mac=00:15:65:4a:a9:37&n=Anna Schmidt&r=+4930123456&c=$call_id&g=7"
        );
    }
}
