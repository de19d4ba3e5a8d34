//! 10,000 phones known to one agent: a registration storm, the memory they take, and a reboot
//! of all of them as one group.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rumqttc::QoS;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::bench::load::action_urls;
use crate::bench::process::{Memory, Scratch, Server};
use crate::bench::stats::{millis, thousands};
use crate::bench::watch::Watch;
use crate::bench::{gateway_config, provision, table, Discovery, Settings, Target};
use crate::sim::fleet::{Fleet, Registration, PASSWORD, USERNAME};

/// The group every fleet phone is in.
const GROUP: &str = "bench";
const TRANSACTION: &str = "bench-reboot";
/// How long the gateway is left alone after the reboot before its steady-state size is read:
/// jemalloc gives freed pages back one second after they fall idle (`.cargo/config.toml`).
const SETTLE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default)]
pub struct FleetFigures {
    pub phones: usize,
    /// The gateway once it had published every configured phone, before the storm.
    pub idle: Memory,
    pub registration: Registration,
    /// From the first request to the last phone with both `online` and a registered state.
    pub storm: Option<Duration>,
    pub registered: usize,
    pub after_storm: Memory,
    pub reboot: Option<Duration>,
    pub results_ok: usize,
    pub results_error: usize,
    pub first_error: Option<String>,
    /// Phones that got exactly one reboot request.
    pub rebooted_once: usize,
    pub after_reboot: Memory,
    /// `SETTLE` after the reboot: what 10,000 phones cost in the steady state.
    pub settled: Memory,
}

/// The fleet with Home Assistant discovery on (the default), on but not retained, and off.
#[derive(Debug, Clone, Default)]
pub struct FleetReport {
    pub default: FleetFigures,
    pub live: FleetFigures,
    pub bare: FleetFigures,
}

pub async fn run(settings: &Settings) -> anyhow::Result<FleetReport> {
    Ok(FleetReport {
        default: run_one(settings, Discovery::Retained).await?,
        live: run_one(settings, Discovery::Live).await?,
        bare: run_one(settings, Discovery::Off).await?,
    })
}

async fn run_one(settings: &Settings, homeassistant: Discovery) -> anyhow::Result<FleetFigures> {
    let phones = settings.fleet_phones;
    let stop = CancellationToken::new();
    let fleet = Fleet::start(phones, stop.clone()).await?;
    let scratch = Scratch::new("fleet")?;
    let dir = &scratch.0;
    let mut entries = String::with_capacity(phones * 160);
    for index in 0..phones {
        entries.push_str(&format!(
            "[[phone]]\nmac = \"{}\"\nvendor = \"yealink\"\naddress = \"{}\"\nusername = \"{USERNAME}\"\npassword = \"{PASSWORD}\"\ngroups = [\"{GROUP}\"]\n\n",
            Fleet::mac(index),
            fleet.address(index)
        ));
    }
    eprintln!(
        "fleet: starting a gateway with {phones} configured phones, Home Assistant discovery {}",
        homeassistant.label()
    );
    let config = gateway_config(dir, homeassistant, &entries);
    let server = Server::gateway(&settings.bin, dir, &config).await?;
    let result = storm_and_reboot(settings, &server, &fleet, dir).await;
    let log = server.log.clone();
    server.stop().await;
    stop.cancel();
    result.map_err(|err| {
        err.context(format!(
            "the end of its log:\n{}",
            crate::bench::process::log_tail(&log)
        ))
    })
}

async fn storm_and_reboot(
    settings: &Settings,
    server: &Server,
    fleet: &Fleet,
    dir: &std::path::Path,
) -> anyhow::Result<FleetFigures> {
    let phones = fleet.len();
    let broker = server.mqtt.context("the gateway names its broker")?;
    let mut figures = FleetFigures {
        phones,
        ..Default::default()
    };

    // Each phone's progress: 1 = state seen, 2 = online, 4 = registered.
    let progress = Arc::new(Mutex::new(HashMap::<String, u8>::with_capacity(phones)));
    let (changed_tx, mut changed) = watch::channel(());
    let tracked = progress.clone();
    let _states = Watch::start(
        broker,
        &["phone2mqtt/+", "phone2mqtt/+/availability"],
        QoS::AtMostOnce,
        move |topic, payload| {
            let mut parts = topic.split('/').skip(1);
            let (Some(id), rest) = (parts.next(), parts.next()) else {
                return;
            };
            if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return; // `directory`, `bridge`: not a phone
            }
            let bit = match rest {
                Some("availability") if payload == b"online" => 2,
                Some(_) => return,
                None if contains(payload, br#""registered":true"#) => 5,
                None => 1,
            };
            *tracked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(id.to_string())
                .or_default() |= bit;
            changed_tx.send_replace(());
        },
    )
    .await?;
    let count = |mask: u8| {
        progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|bits| **bits & mask == mask)
            .count()
    };

    // The gateway publishes every configured phone's state when it connects; wait for all.
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(1) < phones && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_secs(1), changed.changed()).await;
    }
    anyhow::ensure!(
        count(1) >= phones,
        "the gateway published {} of {phones} phone states",
        count(1)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    figures.idle = server.memory();

    eprintln!("fleet: {phones} phones register at once");
    let provisioning = provision(&settings.bin, dir, &format!("http://{}", server.http)).await?;
    let urls = action_urls(&provisioning);
    let started = Instant::now();
    let keys = super::phone_keys(dir)?;
    figures.registration = fleet.register_all(&urls, &|mac| keys.token(mac)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(7) < phones && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_secs(1), changed.changed()).await;
    }
    figures.registered = count(7);
    if figures.registered >= phones {
        figures.storm = Some(started.elapsed());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    figures.after_storm = server.memory();

    eprintln!("fleet: reboot group `{GROUP}`");
    let results = Arc::new(Mutex::new((0usize, 0usize, None::<String>)));
    let (result_tx, mut result_rx) = watch::channel(0usize);
    let recorded = results.clone();
    let session = Watch::start(
        broker,
        &["phone2mqtt/+/result"],
        QoS::AtLeastOnce,
        move |_, payload| {
            if !contains(payload, TRANSACTION.as_bytes()) {
                return;
            }
            let mut results = recorded.lock().unwrap_or_else(|p| p.into_inner());
            if contains(payload, br#""status":"ok""#) {
                results.0 += 1;
            } else {
                results.1 += 1;
                results
                    .2
                    .get_or_insert_with(|| String::from_utf8_lossy(payload).into_owned());
            }
            result_tx.send_replace(results.0 + results.1);
        },
    )
    .await?;
    let started = Instant::now();
    session
        .publish(
            &format!("phone2mqtt/group/{GROUP}/cmd/reboot"),
            &format!(r#"{{"transaction": "{TRANSACTION}"}}"#),
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while *result_rx.borrow_and_update() < phones && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_secs(1), result_rx.changed()).await;
    }
    let elapsed = started.elapsed();
    let (ok, error, first_error) = results.lock().unwrap_or_else(|p| p.into_inner()).clone();
    (
        figures.results_ok,
        figures.results_error,
        figures.first_error,
    ) = (ok, error, first_error);
    if ok + error >= phones {
        figures.reboot = Some(elapsed);
    }
    figures.rebooted_once = fleet.reboots().0;
    figures.after_reboot = server.memory();
    // What the gateway keeps for good, once what the burst took has been given back.
    tokio::time::sleep(SETTLE).await;
    figures.settled = server.memory();
    Ok(figures)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl FleetReport {
    pub fn table(&self) -> String {
        let columns = |f: &dyn Fn(&FleetFigures) -> String| {
            vec![f(&self.default), f(&self.live), f(&self.bare)]
        };
        let time = |d: Option<Duration>| d.map_or("did not finish".to_string(), millis);
        let memory = |m: &Memory| format!("{:.1} MB ({:.1} MB peak)", m.now_mib(), m.peak_mib());
        let mut rows = Vec::new();
        let mut row = |what: String, values: Vec<String>| {
            rows.push(std::iter::once(what).chain(values).collect::<Vec<_>>())
        };
        row(
            "resident with the phones configured, before the storm".into(),
            columns(&|f| memory(&f.idle)),
        );
        row(
            "registration storm: every phone sends setup_completed, then registered".into(),
            columns(&|f| {
                format!(
                    "{} ({} of {} phones complete, {} failed)",
                    time(f.storm),
                    thousands(f.registered as u64),
                    thousands(f.phones as u64),
                    f.registration.failed
                )
            }),
        );
        row(
            "resident with the phones registered".into(),
            columns(&|f| memory(&f.after_storm)),
        );
        row(
            format!("`reboot` to group `{GROUP}`, until every result is back"),
            columns(&|f| {
                format!(
                    "{} ({} ok, {} error, {} rebooted once)",
                    time(f.reboot),
                    thousands(f.results_ok as u64),
                    f.results_error,
                    thousands(f.rebooted_once as u64)
                )
            }),
        );
        row(
            "resident after the reboot".into(),
            columns(&|f| memory(&f.after_reboot)),
        );
        row(
            format!("resident {} s later, settled", SETTLE.as_secs()),
            columns(&|f| memory(&f.settled)),
        );
        let mut text = format!(
            "### {} phones known to one agent\n\nThe simulator's lightweight mode holds every phone in the bench process; each registers from its own address. The agent talks to at most {} phones at once.\n\n{}",
            thousands(self.default.phones as u64),
            crate::agent::commands::PHONES_AT_ONCE,
            table(
                &[
                    "",
                    "phone2mqtt",
                    &format!("HA discovery {}", Discovery::Live.label()),
                    &format!("HA discovery {}", Discovery::Off.label()),
                ],
                &rows
            )
        );
        for figures in [&self.default, &self.live, &self.bare] {
            if let Some(error) = figures
                .first_error
                .as_ref()
                .or(figures.registration.first_error.as_ref())
            {
                text.push_str(&format!("\nFirst error: {error}\n"));
            }
        }
        text
    }

    pub fn targets(&self) -> Vec<Target> {
        let (on, live, off) = (&self.default, &self.live, &self.bare);
        let resident = |f: &FleetFigures| f.settled.now_mib();
        let within =
            |d: Option<Duration>, limit: u64| d.is_some_and(|d| d < Duration::from_secs(limit));
        let time = |d: Option<Duration>| d.map_or("did not finish".to_string(), millis);
        let full = on.phones >= 10_000;
        vec![
            Target::new(
                "10,000 phones in < 50 MB",
                format!(
                    "{:.1} MB resident with {} phones registered, settled after the storm and the reboot ({:.1} MB with Home Assistant discovery not retained, {:.1} MB with it off)",
                    resident(on),
                    thousands(on.phones as u64),
                    resident(live),
                    resident(off)
                ),
                resident(on) < 50.0 && full,
            ),
            Target::new(
                "registration storm of 10,000 phones absorbed in < 2 s",
                format!(
                    "{} ({} with Home Assistant discovery off)",
                    time(on.storm),
                    time(off.storm)
                ),
                within(on.storm, 2) && full,
            ),
            Target::new(
                "reboot to a group of 10,000 in < 10 s",
                format!(
                    "{}, {} errors ({} with Home Assistant discovery off)",
                    time(on.reboot),
                    on.results_error,
                    time(off.reboot)
                ),
                within(on.reboot, 10) && on.results_error == 0 && full,
            ),
        ]
    }
}
