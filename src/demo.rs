//! `serve --demo`: the gateway plus simulated phones of every vendor that get an occasional
//! call, so that a newcomer sees events on MQTT and in the Manager within seconds; one more phone
//! is given nothing but the agent's address, to be discovered and adopted in the Manager; and key
//! 3 of every phone that can have one is programmed as "Garage door".

use std::net::{SocketAddr, TcpListener};

use tokio_util::sync::CancellationToken;

use crate::config::{Config, PhoneConfig, Secret};
use crate::model::PhoneId;
use crate::phone_vendors::{self, HttpAuth, PhoneOptions};
use crate::sim::{self, SimOptions, SimPhone};

/// Desks the demo phones stand on, with the groups they belong to.
const DESKS: &[(&str, &str)] = &[
    ("Reception", "front-office"),
    ("Sales", "sales"),
    ("Support", "support"),
    ("Accounting", "back-office"),
    ("Warehouse", "back-office"),
    ("Meeting Room", "front-office"),
    ("CEO", "management"),
    ("Sales Desk", "sales"),
    ("Support Desk", "support"),
    ("Lab", "back-office"),
];

/// Simulated phones waiting for the gateway; their `[[phone]]` entries are already in the config.
#[derive(Debug)]
pub struct PendingDemo {
    phones: Vec<SimOptions>,
    /// The phone with no `[[phone]]` entry, waiting to be adopted.
    unadopted: SimOptions,
}

/// The MAC of the demo phone that waits for adoption; its prefix (a Snom's) picks its simulator.
pub const UNADOPTED_MAC: &str = "000413de0fff";

/// Reserves a port for each of `count` demo phones, vendors taken in turn, and adds them to the
/// config so that the agent knows them.
pub fn prepare(config: &mut Config, count: usize) -> std::io::Result<PendingDemo> {
    let mut phones = Vec::new();
    for index in 0..count {
        let personality = sim::PERSONALITIES[index % sim::PERSONALITIES.len()];
        let vendor = personality.vendor;
        let mac = format!("{}de{:04x}", vendor.ouis[0], index + 1);
        let id = PhoneId::parse(&mac).expect("OUI plus 6 hex digits");
        if config
            .phones
            .iter()
            .any(|p| PhoneId::parse(&p.mac).as_ref() == Some(&id))
        {
            continue;
        }
        let (desk, group) = DESKS[index % DESKS.len()];
        let name = if index < DESKS.len() {
            desk.to_string()
        } else {
            format!("{desk} {}", index / DESKS.len() + 1)
        };
        let addr: SocketAddr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut options = SimOptions::new(personality, id, "");
        options.listen = addr;
        options.line_user = format!("{}", 1001 + index);
        options.display_name = name.clone();
        options.random_calls = true;
        // Phones that can take Digest as a site should set them up: so no password travels
        // readable.
        options.digest = vendor.http_auth == HttpAuth::Digest;
        // What its vendor needs beyond every phone's settings (a Grandstream's DND key).
        let PhoneOptions {
            legacy_api,
            dnd_key,
        } = (personality.phone_options)();
        config.phones.push(PhoneConfig {
            mac: vendor_mac(&mac),
            vendor: vendor.id.to_string(),
            address: addr.to_string(),
            username: options.username.clone(),
            password: Secret::new(options.password.clone()),
            name: Some(name),
            line: Some(format!("{}@{}", options.line_user, options.pbx_host)),
            legacy_api,
            dnd_key,
            groups: vec![group.to_string()],
            homeassistant: true,
            keys: Default::default(),
            settings: Default::default(),
        });
        phones.push(options);
    }
    if config.provisioning.keys.is_empty() {
        config
            .provisioning
            .keys
            .insert("3".into(), "Garage door".into());
    }
    let lobby = PhoneId::parse(UNADOPTED_MAC).expect("a MAC");
    let vendor = phone_vendors::by_oui(&lobby).expect("a known MAC prefix");
    let personality = sim::personality(vendor.id).expect("a simulator for every vendor");
    let mut unadopted = SimOptions::new(personality, lobby, "");
    unadopted.display_name = "Lobby".into();
    unadopted.line_user = "1099".into();
    unadopted.digest = vendor.http_auth == HttpAuth::Digest;
    Ok(PendingDemo { phones, unadopted })
}

/// `00:15:65:de:00:01`, as people write MACs in config files.
fn vendor_mac(hex: &str) -> String {
    PhoneId::parse(hex).expect("12 hex digits").colon_mac()
}

impl PendingDemo {
    /// Powers the phones on, pointed at the running agent.
    pub async fn start(
        self,
        agent_url: &str,
        shutdown: CancellationToken,
    ) -> std::io::Result<Vec<SimPhone>> {
        let mut started = Vec::new();
        for mut options in self.phones {
            options.agent_url = agent_url.trim_end_matches('/').to_string();
            started.push(SimPhone::spawn(options, shutdown.clone()).await?);
        }
        let mut unadopted = self.unadopted;
        unadopted.agent_url = agent_url.trim_end_matches('/').to_string();
        let phone = SimPhone::spawn(unadopted, shutdown).await?;
        tracing::info!(
            mac = %phone.mac(),
            address = %phone.addr(),
            "A demo phone with no [[phone]] entry was discovered: adopt it in the Manager with this address and the password `admin` (simulated phones keep the factory credentials)."
        );
        started.push(phone);
        Ok(started)
    }
}
