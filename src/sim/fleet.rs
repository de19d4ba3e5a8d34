//! A lightweight simulator mode: thousands of Yealink phones in one process, for registration
//! storms and command fan-out (`phone2mqtt bench`).
//!
//! A full [`SimPhone`](super::SimPhone) has its own HTTP server, state machine and provisioning
//! fetch; ten thousand of them would measure the simulator. Here each phone is an address and a
//! counter. Phone `i` lives at `127.1.<i / 250>.<1 + i % 250>` (all of 127/8 is this machine), on
//! one port shared by the whole fleet: a single listener on `0.0.0.0:<port>` takes every
//! connection, and the local address the connection was accepted on tells which phone it is
//! for. Connections from anywhere but loopback are dropped unread.
//!
//! A phone answers its vendor's Action URI as a Yealink does for `reboot`
//! (`GET /servlet?key=Reboot` with Basic auth) and refuses anything else; it registers by
//! sending `setup_completed` and `registered` exactly as provisioned, values pasted in raw.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::callbacks::exchange;
use super::{basic_auth_ok, raw_get, substitute};
use crate::model::PhoneId;

/// Phones a fleet can hold: one per address of 127.1.0.1 to 127.1.249.250.
pub const MAX_PHONES: usize = 250 * 250;

/// The variable the bench's Action URL templates hold where each phone's token goes.
pub const TOKEN_VAR: &str = "phone2mqtt_token";

/// The fleet's admin account, the same on every phone.
pub const USERNAME: &str = "admin";
pub const PASSWORD: &str = "admin";

#[derive(Debug, Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    port: u16,
    /// Reboots each phone received.
    reboots: Vec<AtomicU32>,
    /// Requests refused (wrong path, credentials or phone).
    refused: AtomicU64,
}

/// How a registration storm went.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub ok: u64,
    pub failed: u64,
    pub first_error: Option<String>,
}

impl Fleet {
    /// Starts listening for the fleet's `count` phones.
    pub async fn start(count: usize, shutdown: CancellationToken) -> std::io::Result<Fleet> {
        assert!(
            count <= MAX_PHONES,
            "a fleet holds at most {MAX_PHONES} phones"
        );
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
        let fleet = Fleet {
            inner: Arc::new(Inner {
                port: listener.local_addr()?.port(),
                reboots: (0..count).map(|_| AtomicU32::new(0)).collect(),
                refused: AtomicU64::new(0),
            }),
        };
        let serving = fleet.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = shutdown.cancelled() => return,
                };
                let Ok((stream, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                if !peer.ip().is_loopback() {
                    continue;
                }
                let fleet = serving.clone();
                tokio::spawn(async move {
                    let _ = fleet.answer(stream).await;
                });
            }
        });
        Ok(fleet)
    }

    pub fn len(&self) -> usize {
        self.inner.reboots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.reboots.is_empty()
    }

    /// Phone `index`'s MAC: Yealink's prefix, then `b` and the index.
    pub fn mac(index: usize) -> PhoneId {
        PhoneId::parse(&format!("001565{:06x}", 0xb0_0000 + index)).expect("12 hex digits")
    }

    pub fn ip(index: usize) -> Ipv4Addr {
        Ipv4Addr::new(127, 1, (index / 250) as u8, (1 + index % 250) as u8)
    }

    fn index_of(ip: IpAddr) -> Option<usize> {
        let IpAddr::V4(ip) = ip else { return None };
        match ip.octets() {
            [127, 1, high, low @ 1..=250] => Some(usize::from(high) * 250 + usize::from(low) - 1),
            _ => None,
        }
    }

    /// Where phone `index` answers.
    pub fn address(&self, index: usize) -> SocketAddr {
        SocketAddr::new(Fleet::ip(index).into(), self.inner.port)
    }

    /// How many phones were rebooted exactly once, and how many reboots there were in all.
    pub fn reboots(&self) -> (usize, u64) {
        let counts = self.inner.reboots.iter().map(|c| c.load(Ordering::Relaxed));
        counts.fold((0, 0), |(once, all), count| {
            (once + usize::from(count == 1), all + u64::from(count))
        })
    }

    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Every phone at once sends `setup_completed`, then `registered`, each from its own
    /// address, with the URLs of its provisioning file (`action_url.<event>` by event), its own
    /// token (`token`) in place of `$phone2mqtt_token`.
    pub async fn register_all(
        &self,
        action_urls: &HashMap<String, String>,
        token: &dyn Fn(&PhoneId) -> String,
    ) -> Registration {
        let templates: Vec<String> = ["setup_completed", "registered"]
            .iter()
            .filter_map(|event| action_urls.get(*event).cloned())
            .collect();
        let templates = Arc::new(templates);
        let mut phones = Vec::with_capacity(self.len());
        for index in 0..self.len() {
            let templates = templates.clone();
            let mac = Fleet::mac(index);
            let phone_token = token(&mac);
            phones.push(tokio::spawn(async move {
                let ip = Fleet::ip(index);
                let mut values = yealink_values(&mac, &ip.to_string(), 10_000 + index);
                values.insert(TOKEN_VAR, phone_token);
                let user_agent = yealink_user_agent(&mac);
                for template in templates.iter() {
                    let url = substitute(template, &values);
                    match send_from(ip, &url, &user_agent).await {
                        Ok(200) => {}
                        Ok(status) => return Err(format!("HTTP {status}")),
                        Err(err) => return Err(err.to_string()),
                    }
                }
                Ok(())
            }));
        }
        let mut registration = Registration::default();
        for phone in phones {
            match phone.await {
                Ok(Ok(())) => registration.ok += 1,
                Ok(Err(err)) => {
                    registration.failed += 1;
                    registration.first_error.get_or_insert(err);
                }
                Err(err) => {
                    registration.failed += 1;
                    registration.first_error.get_or_insert(err.to_string());
                }
            }
        }
        registration
    }

    /// One Action URI request: `reboot` with the right credentials is done, anything else
    /// refused.
    async fn answer(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let phone = Fleet::index_of(stream.local_addr()?.ip()).filter(|&i| i < self.len());
        let mut head = Vec::with_capacity(512);
        let read = async {
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                if stream.read_buf(&mut head).await? == 0 {
                    break;
                }
            }
            std::io::Result::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .map_err(|_| std::io::Error::other("no request head"))??;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        // What could not be read is refused below, for want of credentials or a known target.
        let _ = request.parse(&head);
        let target = request.path.unwrap_or("");
        let authorization = request
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case("authorization"))
            .and_then(|header| std::str::from_utf8(header.value).ok());
        let (status, body) = match phone {
            None => (404, "Not Found"),
            Some(_) if !basic_auth_ok(authorization, USERNAME, PASSWORD) => (401, "Unauthorized"),
            Some(index) if target == "/servlet?key=Reboot" => {
                self.inner.reboots[index].fetch_add(1, Ordering::Relaxed);
                (200, "OK")
            }
            Some(_) => (400, "Bad Request"),
        };
        if status != 200 {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
        }
        let reply = format!(
            "HTTP/1.1 {status} {body}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(reply.as_bytes()).await?;
        stream.shutdown().await
    }
}

/// What a Yealink phone with `line` as its account, at `ip`, fills its device variables with
/// (`sim/yealink.rs` spells them the same way): all a fleet phone pastes into its Action URLs.
pub fn yealink_values(mac: &PhoneId, ip: &str, line: usize) -> HashMap<&'static str, String> {
    [
        ("mac", mac.colon_mac()),
        ("ip", ip.to_string()),
        ("model", "SIP-T46G".to_string()),
        ("firmware", "28.72.0.1".to_string()),
        ("active_user", line.to_string()),
        ("active_host", "pbx.example.com".to_string()),
    ]
    .into_iter()
    .collect()
}

/// The User-Agent of the fleet's (and the bench's) Yealink phones.
pub fn yealink_user_agent(mac: &PhoneId) -> String {
    format!("Yealink SIP-T46G 28.72.0.1 {}", mac.colon_mac())
}

/// [`super::send_raw_get`], from the phone's own address.
async fn send_from(ip: Ipv4Addr, url: &str, user_agent: &str) -> std::io::Result<u16> {
    let (address, request) = raw_get(url, user_agent)?;
    let address: SocketAddr = address
        .parse()
        .map_err(|_| std::io::Error::other("the fleet sends to IP addresses only"))?;
    let exchange = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(ip.into(), 0))?;
        let mut stream = socket.connect(address).await?;
        exchange(&mut stream, &request, Duration::from_secs(30)).await
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| std::io::Error::other("no answer within 30 s"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_phones() {
        for index in [0, 1, 249, 250, 9_999, MAX_PHONES - 1] {
            assert_eq!(Fleet::index_of(Fleet::ip(index).into()), Some(index));
        }
        assert_eq!(Fleet::index_of("127.0.0.1".parse().unwrap()), None);
        assert_eq!(Fleet::index_of("127.1.0.0".parse().unwrap()), None);
        assert_ne!(Fleet::mac(0), Fleet::mac(1));
    }
}
