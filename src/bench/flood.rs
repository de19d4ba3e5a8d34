//! The callback flood against the bare server, the minimal pipeline and the gateway, in
//! alternating rounds so that a noisy neighbour hurts all three alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench::load::{self, Delivered, Plan, Requests, Sent, Subscriber, Timeline};
use crate::bench::process::{Memory, Scratch, Server};
use crate::bench::stats::{median, thousands, Latency};
use crate::bench::{cpu_time, gateway_config, provision, table, Discovery, Settings, Target};

/// The subscriber's filter: every phone's events (and the pipeline's one topic).
const EVENTS: &str = "phone2mqtt/+/event";

/// Requests every sender may have sent in one run, at most.
const MAX_EVENTS: usize = 2_000_000;

/// One run against one server.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub sent: Sent,
    /// `None` for the bare server, which publishes nothing.
    pub delivered: Option<Delivered>,
    /// Events (or, for the bare server, answers) per second, first request to last delivery.
    pub rate: f64,
    /// CPU the server used per request.
    pub cpu_per_event: Duration,
}

impl Run {
    fn lost(&self) -> u64 {
        self.delivered
            .as_ref()
            .map_or(0, |d| self.sent.ok.saturating_sub(d.count))
    }

    fn latency(&self) -> Latency {
        self.delivered
            .as_ref()
            .map(|d| d.latency.summary())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default)]
pub struct FloodFigures {
    pub ok: Vec<Run>,
    pub pipeline: Vec<Run>,
    pub gateway: Vec<Run>,
    /// The gateway with Home Assistant discovery off.
    pub bare_gateway: Vec<Run>,
    pub pipeline_fixed: Run,
    pub gateway_fixed: Run,
    pub pipeline_memory: Memory,
    pub gateway_memory: Memory,
    pub bare_gateway_memory: Memory,
}

pub async fn run(settings: &Settings) -> anyhow::Result<FloodFigures> {
    let mut figures = FloodFigures::default();
    for round in 1..=settings.rounds {
        eprintln!("flood round {round}/{}: bare axum", settings.rounds);
        let (ok, _, _) = serve_and_flood(settings, Kind::Ok, false).await?;
        figures.ok.push(ok);
        let last = round == settings.rounds;
        eprintln!("flood round {round}/{}: pipeline", settings.rounds);
        let (pipeline, fixed, memory) = serve_and_flood(settings, Kind::Pipeline, last).await?;
        figures.pipeline.push(pipeline);
        eprintln!("flood round {round}/{}: phone2mqtt", settings.rounds);
        let (gateway, gateway_fixed, gateway_memory) =
            serve_and_flood(settings, Kind::Gateway, last).await?;
        figures.gateway.push(gateway);
        eprintln!(
            "flood round {round}/{}: phone2mqtt, Home Assistant discovery off",
            settings.rounds
        );
        let (bare, _, bare_memory) = serve_and_flood(settings, Kind::BareGateway, false).await?;
        figures.bare_gateway.push(bare);
        figures.bare_gateway_memory = max_memory(figures.bare_gateway_memory, bare_memory);
        if let (Some(fixed), Some(gateway_fixed)) = (fixed, gateway_fixed) {
            figures.pipeline_fixed = fixed;
            figures.gateway_fixed = gateway_fixed;
        }
        figures.pipeline_memory = max_memory(figures.pipeline_memory, memory);
        figures.gateway_memory = max_memory(figures.gateway_memory, gateway_memory);
    }
    Ok(figures)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ok,
    Pipeline,
    Gateway,
    BareGateway,
}

/// Starts one server, floods it at saturation (and at 1,000/s when `fixed`), stops it.
async fn serve_and_flood(
    settings: &Settings,
    kind: Kind,
    fixed: bool,
) -> anyhow::Result<(Run, Option<Run>, Memory)> {
    let scratch = Scratch::new(&format!("{kind:?}").to_lowercase())?;
    let dir = &scratch.0;
    let server = match kind {
        Kind::Ok => Server::baseline(&settings.bin, dir, "ok").await?,
        Kind::Pipeline => Server::baseline(&settings.bin, dir, "pipeline").await?,
        Kind::Gateway | Kind::BareGateway => {
            let phones = load::phone_entries(settings.flood_phones);
            let config = gateway_config(
                dir,
                if kind == Kind::Gateway {
                    Discovery::Retained
                } else {
                    Discovery::Off
                },
                &phones,
            );
            Server::gateway(&settings.bin, dir, &config).await?
        }
    };
    let provisioning = provision(&settings.bin, dir, &format!("http://{}", server.http)).await?;
    let gateway = matches!(kind, Kind::Gateway | Kind::BareGateway);
    let keys = super::phone_keys(dir)?;
    let requests = Arc::new(Requests::new(
        &provisioning,
        settings.flood_phones,
        !gateway,
        &|mac| keys.token(mac),
    )?);
    let plan = Plan {
        addr: server.http,
        requests,
        connections: settings.connections,
        rate: None,
        duration: settings.saturation,
    };
    let result = async {
        let saturation = flood(&server, &plan, kind).await?;
        let fixed = if fixed && kind != Kind::Ok {
            let plan = Plan {
                rate: Some(settings.rate),
                duration: settings.fixed,
                ..plan.clone()
            };
            Some(flood(&server, &plan, kind).await?)
        } else {
            None
        };
        anyhow::Ok((saturation, fixed, server.memory()))
    }
    .await;
    let log = server.log.clone();
    server.stop().await;
    result.map_err(|err| {
        err.context(format!(
            "the end of its log:\n{}",
            crate::bench::process::log_tail(&log)
        ))
    })
}

async fn flood(server: &Server, plan: &Plan, kind: Kind) -> anyhow::Result<Run> {
    let timeline = Arc::new(Timeline::new(MAX_EVENTS));
    let subscriber = match (kind, server.mqtt) {
        (Kind::Ok, _) | (_, None) => None,
        (_, Some(broker)) => {
            let check_order = kind != Kind::Pipeline;
            Some(Subscriber::start(broker, EVENTS, timeline.clone(), check_order).await?)
        }
    };
    let cpu_before = cpu_time(server.pid);
    let started = Instant::now();
    let sent = load::send(plan, &timeline).await;
    let delivered = match subscriber {
        Some(mut subscriber) => {
            subscriber.wait_for(sent.ok, Duration::from_secs(5)).await;
            Some(subscriber.finish())
        }
        None => None,
    };
    let cpu = cpu_time(server.pid).saturating_sub(cpu_before);
    let (count, end) = match &delivered {
        Some(delivered) => (delivered.count, delivered.last.unwrap_or(started)),
        None => (sent.ok, started + sent.elapsed),
    };
    let seconds = end.duration_since(started).as_secs_f64().max(1e-9);
    Ok(Run {
        rate: count as f64 / seconds,
        cpu_per_event: cpu / u32::try_from(count.max(1)).unwrap_or(u32::MAX),
        sent,
        delivered,
    })
}

fn max_memory(a: Memory, b: Memory) -> Memory {
    Memory {
        peak_kib: a.peak_kib.max(b.peak_kib),
        now_kib: a.now_kib.max(b.now_kib),
    }
}

fn median_rate(runs: &[Run]) -> f64 {
    median(runs.iter().map(|r| r.rate).collect())
}

/// The run whose rate is the median.
fn median_run(runs: &[Run]) -> Run {
    let rate = median_rate(runs);
    runs.iter()
        .find(|r| r.rate == rate)
        .cloned()
        .unwrap_or_default()
}

impl FloodFigures {
    pub fn table(&self, settings: &Settings) -> String {
        let ok = median_run(&self.ok);
        let pipeline = median_run(&self.pipeline);
        let gateway = median_run(&self.gateway);
        let bare = median_run(&self.bare_gateway);
        let rates = |runs: &[Run]| {
            let all: Vec<String> = runs.iter().map(|r| thousands(r.rate as u64)).collect();
            all.join(", ")
        };
        let ratio = |a: f64, b: f64| format!("{:.0} %", 100.0 * a / b.max(1e-9));
        let micros = |run: &Run| format!("{} µs", run.cpu_per_event.as_micros());
        let fixed = |run: &Run| {
            format!(
                "{} / {}",
                thousands(run.delivered.as_ref().map_or(0, |d| d.count)),
                thousands(run.sent.ok)
            )
        };
        let none = || "–".to_string();
        let rows = vec![
            vec![
                format!("events/s at saturation (median of {})", self.gateway.len()),
                thousands(ok.rate as u64),
                thousands(pipeline.rate as u64),
                format!(
                    "{} ({} of the pipeline)",
                    thousands(gateway.rate as u64),
                    ratio(gateway.rate, pipeline.rate)
                ),
                format!(
                    "{} ({})",
                    thousands(bare.rate as u64),
                    ratio(bare.rate, pipeline.rate)
                ),
            ],
            vec![
                "each round".into(),
                rates(&self.ok),
                rates(&self.pipeline),
                rates(&self.gateway),
                rates(&self.bare_gateway),
            ],
            vec![
                "latency p50 / p99 / max at saturation".into(),
                none(),
                pipeline.latency().to_string(),
                gateway.latency().to_string(),
                bare.latency().to_string(),
            ],
            vec![
                format!(
                    "latency p50 / p99 / max at {}/s",
                    thousands(settings.rate as u64)
                ),
                none(),
                self.pipeline_fixed.latency().to_string(),
                self.gateway_fixed.latency().to_string(),
                none(),
            ],
            vec![
                "server CPU per event at saturation".into(),
                micros(&ok),
                micros(&pipeline),
                micros(&gateway),
                micros(&bare),
            ],
            vec![
                "peak RSS, broker included".into(),
                none(),
                format!("{:.1} MB", self.pipeline_memory.peak_mib()),
                format!("{:.1} MB", self.gateway_memory.peak_mib()),
                format!("{:.1} MB", self.bare_gateway_memory.peak_mib()),
            ],
            vec![
                "delivered / sent, all runs".into(),
                none(),
                self.delivery(&self.pipeline, &self.pipeline_fixed),
                self.delivery(&self.gateway, &self.gateway_fixed),
                self.delivery(&self.bare_gateway, &Run::default()),
            ],
            vec![
                format!("delivered / sent at {}/s", thousands(settings.rate as u64)),
                none(),
                fixed(&self.pipeline_fixed),
                fixed(&self.gateway_fixed),
                none(),
            ],
        ];
        format!(
            "### Callback flood\n\n{} configured phones, {} connections at once, one request per connection, Action URLs as `provision yealink --mac` prints them, each phone's own token, values raw.\n\n{}",
            settings.flood_phones,
            settings.connections,
            table(
                &[
                    "",
                    "bare axum 200 OK",
                    "axum + rumqttc pipeline",
                    "phone2mqtt",
                    "phone2mqtt, HA discovery off",
                ],
                &rows
            )
        )
    }

    fn delivery(&self, runs: &[Run], fixed: &Run) -> String {
        let all: Vec<&Run> = runs.iter().chain(std::iter::once(fixed)).collect();
        let sent: u64 = all.iter().map(|r| r.sent.ok).sum();
        let failed: u64 = all.iter().map(|r| r.sent.failed).sum();
        let lost: u64 = all.iter().map(|r| r.lost()).sum();
        let (duplicates, disorder) = all
            .iter()
            .filter_map(|r| r.delivered.as_ref())
            .fold((0, 0), |(d, o), x| (d + x.duplicates, o + x.out_of_order));
        let mut text = format!("{} / {}", thousands(sent - lost), thousands(sent));
        for (count, what) in [
            (failed, "requests failed"),
            (duplicates, "duplicates"),
            (disorder, "out of order"),
        ] {
            if count > 0 {
                text.push_str(&format!(", {count} {what}"));
            }
        }
        if let Some(error) = all.iter().find_map(|r| r.sent.first_error.as_ref()) {
            text.push_str(&format!(" (first error: {error})"));
        }
        text
    }

    pub fn targets(&self) -> Vec<Target> {
        let pipeline = median_rate(&self.pipeline);
        let gateway = median_rate(&self.gateway);
        let lost: u64 = self
            .gateway
            .iter()
            .chain(&self.bare_gateway)
            .chain(std::iter::once(&self.gateway_fixed))
            .map(|r| r.lost() + r.sent.failed)
            .sum();
        let p99 = self.gateway_fixed.latency().p99;
        let peak = self.gateway_memory.peak_mib();
        let bare = median_rate(&self.bare_gateway);
        let bare_peak = self.bare_gateway_memory.peak_mib();
        vec![
            Target::new(
                "≥ 30,000 events/s end to end",
                format!("{} events/s", thousands(gateway as u64)),
                gateway >= 30_000.0,
            ),
            Target::new(
                "≥ 80 % of the minimal pipeline",
                format!(
                    "{:.0} % ({} vs {} events/s; {:.0} % with Home Assistant discovery off)",
                    100.0 * gateway / pipeline.max(1e-9),
                    thousands(gateway as u64),
                    thousands(pipeline as u64),
                    100.0 * bare / pipeline.max(1e-9),
                ),
                gateway >= 0.8 * pipeline,
            ),
            Target::new(
                "p99 < 5 ms at 1,000 events/s",
                crate::bench::stats::millis(p99),
                p99 < Duration::from_millis(5) && self.gateway_fixed.sent.ok > 0,
            ),
            Target::new(
                "< 64 MB peak RSS under the flood",
                format!("{peak:.1} MB ({bare_peak:.1} MB with Home Assistant discovery off)"),
                peak < 64.0,
            ),
            Target::new(
                "nothing lost: sent = delivered",
                format!("{lost} lost or failed"),
                lost == 0,
            ),
        ]
    }
}
