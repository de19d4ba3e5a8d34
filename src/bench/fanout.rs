//! Websocket fan-out: many `/ws` clients, each receiving every event of a steady flood.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::bench::load::{self, Plan, Requests, Timeline};
use crate::bench::process::{Memory, Scratch, Server};
use crate::bench::stats::{millis, thousands, Histogram, Latency};
use crate::bench::ws::Clients;
use crate::bench::{cpu_time, gateway_config, provision, table, Discovery, Settings, Target};

#[derive(Debug, Clone, Default)]
pub struct FanoutFigures {
    pub clients: usize,
    pub rate: f64,
    pub duration: Duration,
    /// Events answered 200 by the gateway.
    pub sent: u64,
    /// Events each client received: the fewest and the total.
    pub fewest: u64,
    pub total: u64,
    pub fell_behind: u64,
    pub lag: Latency,
    pub memory: Memory,
    /// The gateway's CPU use during the run, in cores.
    pub cores: f64,
}

pub async fn run(settings: &Settings) -> anyhow::Result<FanoutFigures> {
    let scratch = Scratch::new("websocket")?;
    let dir = &scratch.0;
    let phones = load::phone_entries(settings.flood_phones);
    let server = Server::gateway(
        &settings.bin,
        dir,
        &gateway_config(dir, Discovery::Retained, &phones),
    )
    .await?;
    let result = fan_out(settings, &server, dir).await;
    let log = server.log.clone();
    server.stop().await;
    result.map_err(|err| {
        err.context(format!(
            "the end of its log:\n{}",
            crate::bench::process::log_tail(&log)
        ))
    })
}

async fn fan_out(
    settings: &Settings,
    server: &Server,
    dir: &std::path::Path,
) -> anyhow::Result<FanoutFigures> {
    let provisioning = provision(&settings.bin, dir, &format!("http://{}", server.http)).await?;
    let keys = super::phone_keys(dir)?;
    let requests = Arc::new(Requests::new(
        &provisioning,
        settings.flood_phones,
        false,
        &|mac| keys.token(mac),
    )?);
    let capacity = (settings.rate * settings.fixed.as_secs_f64()) as usize + 1;
    let timeline = Arc::new(Timeline::new(capacity));
    eprintln!("websocket: connecting {} clients", settings.ws_clients);
    let token = server
        .token
        .as_deref()
        .context("the gateway under test has an API token")?;
    let clients =
        Clients::connect(server.http, settings.ws_clients, timeline.clone(), token).await?;
    eprintln!(
        "websocket: {} events/s for {} s",
        settings.rate,
        settings.fixed.as_secs()
    );
    let plan = Plan {
        addr: server.http,
        requests,
        connections: settings.connections,
        rate: Some(settings.rate),
        duration: settings.fixed,
    };
    let cpu_before = cpu_time(server.pid);
    let sent = load::send(&plan, &timeline).await;
    let expected = sent.ok * settings.ws_clients as u64;
    clients.wait_for(expected, Duration::from_secs(5)).await;
    let elapsed = sent.elapsed;
    let cpu = cpu_time(server.pid).saturating_sub(cpu_before);
    let seen = clients.finish().await;
    let mut lag = Histogram::default();
    for client in &seen {
        lag.merge(&client.lag);
    }
    Ok(FanoutFigures {
        clients: seen.len(),
        rate: settings.rate,
        duration: settings.fixed,
        sent: sent.ok,
        fewest: seen.iter().map(|s| s.events).min().unwrap_or(0),
        total: seen.iter().map(|s| s.events).sum(),
        fell_behind: seen.iter().map(|s| s.fell_behind).sum(),
        lag: lag.summary(),
        memory: server.memory(),
        cores: cpu.as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
    })
}

impl FanoutFigures {
    /// Every client got every event, nothing was dropped, and 99 % of the events arrived
    /// within a second: the clients are not working off a growing backlog.
    fn kept_up(&self) -> bool {
        self.sent > 0
            && self.fewest == self.sent
            && self.fell_behind == 0
            && self.lag.p99 < Duration::from_secs(1)
    }

    pub fn table(&self) -> String {
        let rows = vec![
            vec![
                "events delivered to each client (fewest / sent)".into(),
                format!("{} / {}", thousands(self.fewest), thousands(self.sent)),
            ],
            vec![
                "frames dropped for clients that fell behind".into(),
                thousands(self.fell_behind),
            ],
            vec![
                "lag p50 / p99 / max, request sent to frame received".into(),
                self.lag.to_string(),
            ],
            vec![
                "gateway CPU during the run".into(),
                format!("{:.2} cores", self.cores),
            ],
            vec![
                "gateway peak RSS".into(),
                format!("{:.1} MB", self.memory.peak_mib()),
            ],
        ];
        format!(
            "### Websocket fan-out\n\n{} clients of `/ws`, {} events/s for {} s (each event is two frames: the event and the phone's state).\n\n{}",
            thousands(self.clients as u64),
            thousands(self.rate as u64),
            self.duration.as_secs(),
            table(&["", "measured"], &rows)
        )
    }

    pub fn targets(&self) -> Vec<Target> {
        vec![Target::new(
            "1,000 websocket clients keep up at 1,000 events/s",
            format!(
                "{} clients, fewest events {} of {}, {} dropped, lag p99 {}",
                thousands(self.clients as u64),
                thousands(self.fewest),
                thousands(self.sent),
                self.fell_behind,
                millis(self.lag.p99)
            ),
            self.kept_up() && self.clients >= 1000 && self.rate >= 1000.0,
        )]
    }
}
