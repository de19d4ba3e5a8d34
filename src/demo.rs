//! `serve --demo`: the gateway plus simulated phones that get an occasional call, so that a
//! newcomer sees events on MQTT and in the Manager within seconds.

use std::net::{SocketAddr, TcpListener};

use tokio_util::sync::CancellationToken;

use crate::config::{Config, PhoneConfig, Secret};
use crate::model::PhoneId;
use crate::sim::{self, SimOptions, SimPhone};

/// One demo phone: vendor, MAC, name.
const DEMO_PHONES: &[(&str, &str, &str)] = &[
    ("yealink", "00:15:65:de:00:01", "Reception"),
    ("yealink", "00:15:65:de:00:02", "Sales"),
    ("yealink", "00:15:65:de:00:03", "Support"),
];

/// Simulated phones waiting for the gateway; their `[[phone]]` entries are already in the config.
#[derive(Debug)]
pub struct PendingDemo {
    phones: Vec<(SimOptions, SocketAddr)>,
}

/// Reserves a port for each demo phone and adds it to the config, so the agent knows them.
pub fn prepare(config: &mut Config) -> std::io::Result<PendingDemo> {
    let mut phones = Vec::new();
    for (index, (vendor, mac, name)) in DEMO_PHONES.iter().enumerate() {
        let id = PhoneId::parse(mac).expect("demo MACs are valid");
        if config
            .phones
            .iter()
            .any(|p| PhoneId::parse(&p.mac).as_ref() == Some(&id))
        {
            continue;
        }
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let personality = sim::personality(vendor).expect("demo vendors have personalities");
        let mut options = SimOptions::new(personality, id, "");
        options.listen = addr;
        options.line_user = format!("{}", 1001 + index);
        options.display_name = name.to_string();
        options.random_calls = true;
        config.phones.push(PhoneConfig {
            mac: mac.to_string(),
            vendor: vendor.to_string(),
            address: addr.to_string(),
            username: options.username.clone(),
            password: Secret::new(options.password.clone()),
            name: Some(name.to_string()),
            line: Some(format!("{}@{}", options.line_user, options.pbx_host)),
            legacy_api: false,
            dnd_key: None,
            groups: Vec::new(),
        });
        phones.push((options, addr));
    }
    Ok(PendingDemo { phones })
}

impl PendingDemo {
    /// Powers the phones on, pointed at the running agent.
    pub async fn start(
        self,
        agent_url: &str,
        shutdown: CancellationToken,
    ) -> std::io::Result<Vec<SimPhone>> {
        let mut started = Vec::new();
        for (mut options, _) in self.phones {
            options.agent_url = agent_url.trim_end_matches('/').to_string();
            started.push(SimPhone::spawn(options, shutdown.clone()).await?);
        }
        Ok(started)
    }
}
