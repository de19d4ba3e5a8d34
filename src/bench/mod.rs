//! `phone2mqtt bench`: the gateway measured as users run it, next to baselines measured in the
//! same run, so that the figures hold as ratios on a noisy machine. BENCHMARKS.md has the
//! figures and what limits them.
//!
//! Everything under test is a separate process on loopback: `phone2mqtt serve` with a
//! generated config and its embedded broker (so its peak RSS covers the broker), and the
//! baselines (`phone2mqtt bench-baseline ok|pipeline`). The bench process is the phones and the
//! MQTT and websocket clients.
//!
//! - [`flood`]: Action URL callbacks as provisioned, at saturation and at 1,000/s, against the
//!   bare axum server, the minimal axum + rumqttc pipeline and the gateway.
//! - [`fleet`]: 10,000 phones (the simulator's lightweight mode) register at once, then are
//!   rebooted as one group.
//! - [`fanout`]: 1,000 websocket clients receive every event at 1,000 events/s.
//! - [`soak`]: mixed load for half an hour (only when named: `--only soak`), the gateway's
//!   resident memory and descriptors sampled throughout and after a minute idle.
//!
//! Every loop is bounded in count and time; all traffic stays on loopback.

pub mod baseline;
pub mod fanout;
pub mod fleet;
pub mod flood;
pub mod load;
pub mod process;
pub mod soak;
pub mod stats;
pub mod watch;
pub mod ws;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

/// `phone2mqtt bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// A shorter run (about 2.5 minutes instead of 5): one flood round, shorter floods.
    #[arg(long)]
    pub quick: bool,
    /// Run only these parts.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Part>,
    /// Connections the callback flood keeps open at once.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Phones of the registration storm and the group reboot.
    #[arg(long, default_value_t = 10_000)]
    pub phones: usize,
    /// Websocket clients of the fan-out.
    #[arg(long, default_value_t = 1_000)]
    pub ws_clients: usize,
    /// The phone2mqtt binary to run as the gateway (and the baselines); by default this one.
    /// Another build can be measured with this bench, e.g. an older release.
    #[arg(long, value_name = "PATH")]
    pub gateway: Option<PathBuf>,
    /// How long the soak's load lasts, in minutes (`--only soak`).
    #[arg(long, default_value_t = 30.0, value_name = "MINUTES")]
    pub soak_minutes: f64,
    /// Action URL callbacks per second during the soak.
    #[arg(long, default_value_t = 200.0)]
    pub soak_rate: f64,
    /// Configured phones the soak's callbacks come from (each keeps its own topics).
    #[arg(long, default_value_t = 200)]
    pub soak_phones: usize,
    /// `reboot` commands per second during the soak, each result awaited (0: none).
    #[arg(long, default_value_t = 2.0)]
    pub soak_commands: f64,
    /// Adds a subscriber like Home Assistant's MQTT integration: one filter per phone topic
    /// its discovery names (state, event, availability), connected throughout the soak.
    #[arg(long)]
    pub soak_ha: bool,
    /// A broker.toml for the soak's gateway (`[broker] config`), e.g. other segment sizes.
    #[arg(long, value_name = "PATH")]
    pub soak_broker: Option<PathBuf>,
    /// Keep the soak's samples (`samples.csv`) and the gateway's log in this directory.
    #[arg(long, value_name = "DIR")]
    pub soak_keep: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Flood,
    Fleet,
    Websocket,
    /// Half an hour by default: only run when named.
    Soak,
}

/// How long and how often, from the arguments.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bin: PathBuf,
    pub quick: bool,
    /// Saturation rounds per server; the median counts.
    pub rounds: usize,
    pub saturation: Duration,
    /// Runs at a fixed rate of 1,000 events/s.
    pub fixed: Duration,
    pub rate: f64,
    pub flood_phones: usize,
    pub connections: usize,
    pub fleet_phones: usize,
    pub ws_clients: usize,
    pub soak: soak::SoakSettings,
}

impl Settings {
    fn new(args: &BenchArgs) -> anyhow::Result<Settings> {
        Ok(Settings {
            bin: match &args.gateway {
                Some(path) => path.clone(),
                None => std::env::current_exe().context("finding the phone2mqtt binary")?,
            },
            quick: args.quick,
            rounds: if args.quick { 1 } else { 3 },
            saturation: Duration::from_secs(if args.quick { 3 } else { 6 }),
            fixed: Duration::from_secs(if args.quick { 4 } else { 10 }),
            rate: 1000.0,
            flood_phones: 1000,
            connections: args.connections.max(1),
            fleet_phones: args.phones.clamp(1, crate::sim::fleet::MAX_PHONES),
            ws_clients: args.ws_clients.max(1),
            soak: soak::SoakSettings::new(args),
        })
    }
}

/// Runs the benchmark and prints the tables.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let settings = Settings::new(&args)?;
    // 10,000 phones registering at once need more than the usual 1,024 descriptors.
    let files = crate::gateway::raise_file_limit();
    // The soak takes half an hour: it runs only when named.
    let wanted = |part| args.only.contains(&part) || (args.only.is_empty() && part != Part::Soak);
    let machine = Machine::read();
    println!("{}", machine.describe(&settings, files));
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build measures nothing useful; run `cargo run --release -- bench`"
        );
    }
    let mut targets = Vec::new();
    if wanted(Part::Flood) {
        let figures = flood::run(&settings).await?;
        println!("{}", figures.table(&settings));
        targets.extend(figures.targets());
    }
    if wanted(Part::Fleet) {
        let figures = fleet::run(&settings).await?;
        println!("{}", figures.table());
        targets.extend(figures.targets());
    }
    if wanted(Part::Websocket) {
        let figures = fanout::run(&settings).await?;
        println!("{}", figures.table());
        targets.extend(figures.targets());
    }
    if wanted(Part::Soak) {
        let figures = soak::run(&settings).await?;
        println!("{}", figures.table());
        targets.extend(figures.targets());
    }
    println!("### Targets\n");
    for target in &targets {
        println!("{target}");
    }
    Ok(())
}

/// One target of issue 7, met or not.
#[derive(Debug, Clone)]
pub struct Target {
    pub what: String,
    pub measured: String,
    pub met: bool,
}

impl Target {
    pub fn new(what: &str, measured: String, met: bool) -> Target {
        Target {
            what: what.to_string(),
            measured,
            met,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.met { "met    " } else { "MISSED " };
        write!(f, "- {mark} {}: {}", self.what, self.measured)
    }
}

/// A markdown table with aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let cells: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

/// The machine the figures come from.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpus: usize,
    pub model: String,
    pub memory: String,
}

impl Machine {
    fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            model,
            memory,
        }
    }

    fn describe(&self, settings: &Settings, files: u64) -> String {
        format!(
            "## phone2mqtt bench{}\n\n{} CPUs ({}), {} RAM, {} open files; phone2mqtt {}, everything on loopback.\n",
            if settings.quick { " --quick" } else { "" },
            self.cpus,
            self.model,
            self.memory,
            files,
            env!("CARGO_PKG_VERSION"),
        )
    }
}

/// The gateway's config for a bench: everything on loopback port 0, no legacy token, no
/// polling (the bench passes `--poll 0`), the data directory in `dir`, Home Assistant discovery
/// on (the default) or off; `phones` (`[[phone]]` entries) is appended.
pub fn gateway_config(dir: &Path, homeassistant: Discovery, phones: &str) -> String {
    let discovery = match homeassistant {
        Discovery::Retained => "enabled = true",
        Discovery::Live => "enabled = true\nretain = false",
        Discovery::Off => "enabled = false",
    };
    format!(
        "[broker]\nlisten = \"127.0.0.1:0\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[agent]\nname = \"bench\"\ndata_dir = \"{}\"\n\n[homeassistant]\n{discovery}\n\n{BENCH_LIMITS}\n{phones}",
        dir.join("data").display()
    )
}

/// Every client of a bench comes from 127.0.0.1 and it opens 1,000 websockets at once: the
/// per-address and websocket limits are raised so that the bench measures the gateway, not its
/// refusals (README, Limits).
const BENCH_LIMITS: &str = "[limits]\nconnections = 16384\npeople_connections = 4096\nconnections_per_address = 16384\nwebsocket_clients = 4096\nwebsocket_clients_per_address = 4096\ndiscovered_per_minute = 100000\ndiscovered_phones = 100000\n";

/// Home Assistant discovery in the gateway under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// On, retained: the default.
    Retained,
    /// On, `retain = false`.
    Live,
    Off,
}

impl Discovery {
    pub fn label(self) -> &'static str {
        match self {
            Discovery::Retained => "on",
            Discovery::Live => "not retained",
            Discovery::Off => "off",
        }
    }
}

/// The variable the bench's Action URL templates hold where each phone's token goes; the fleet
/// simulator fills it in, so it is defined there.
pub use crate::sim::fleet::TOKEN_VAR;

/// What `phone2mqtt provision yealink --mac <one phone>` prints for a gateway at `public_url`
/// whose data directory is in `dir`, with that phone's token replaced by `$phone2mqtt_token`:
/// every bench phone fills in its own (`phone_keys`).
pub async fn provision(bin: &Path, dir: &Path, public_url: &str) -> anyhow::Result<String> {
    const SAMPLE: &str = "001565000000";
    let path = dir.join("provision.toml");
    let data = dir.join("data");
    std::fs::write(
        &path,
        format!(
            "[http]\npublic_url = \"{public_url}\"\n[agent]\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )?;
    let output = tokio::process::Command::new(bin)
        .args(["provision", "yealink", "--mac", SAMPLE, "-c"])
        .arg(&path)
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "provision failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sample = crate::model::PhoneId::parse(SAMPLE).context("the sample MAC")?;
    let token = phone_keys(dir)?.token(&sample);
    Ok(String::from_utf8(output.stdout)?.replace(
        &format!("/action/{token}/"),
        &format!("/action/${TOKEN_VAR}/"),
    ))
}

/// The keys of the gateway whose data directory is in `dir`, for each phone's token.
pub fn phone_keys(dir: &Path) -> anyhow::Result<crate::phone_auth::PhoneKeys> {
    crate::phone_auth::PhoneKeys::load(&dir.join("data"))
}

/// CPU time a process has used so far (user + system), from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; 100 ticks a second.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
