//! The `phone2mqtt` command line: parse, then call into the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use phone2mqtt::agent::provisioning;
use phone2mqtt::auth::{cli as auth_cli, Role};
use phone2mqtt::config::Config;
use phone2mqtt::gateway::{self, GatewayOptions};
use phone2mqtt::model::PhoneId;
use phone2mqtt::phone_vendors;
use phone2mqtt::{bench, client, demo, docs, shutdown, sim};

#[derive(Debug, Parser)]
#[command(
    name = "phone2mqtt",
    version,
    about = "SIP desk phones as MQTT devices: Action URL events out, Action URI commands in"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Broker (unless [mqtt] url is set), agent and web, all in one.
    Serve {
        /// phone2mqtt.toml; without it, built-in defaults.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Also run simulated phones of every vendor that get an occasional call.
        #[arg(long)]
        demo: bool,
        /// How many simulated phones `--demo` runs.
        #[arg(long, default_value_t = 5)]
        demo_phones: usize,
        /// Seconds between state polls of configured phones (0: never; at most a day).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
        poll: u64,
    },
    /// The agent alone, connected to the broker in [mqtt] url.
    Agent {
        #[arg(short, long)]
        config: PathBuf,
        /// Seconds between state polls of configured phones (0: never; at most a day).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
        poll: u64,
    },
    /// Simulated phones of one vendor, pointed at an agent.
    Sim {
        /// yealink
        vendor: String,
        /// How many phones.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// The agent's address, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        agent: String,
        /// The first MAC; the others count up from it. Default: the vendor's prefix, then 5e0001.
        #[arg(long)]
        first_mac: Option<String>,
        /// Address the phones' HTTP servers bind to (each gets its own port).
        #[arg(long, default_value = "127.0.0.1")]
        listen: std::net::IpAddr,
        /// Admin password of the simulated phones.
        #[arg(long, default_value = "admin")]
        password: String,
        /// Give the phones random incoming calls.
        #[arg(long)]
        calls: bool,
    },
    /// Print the tables generated from the vendor modules (for README.md and topics.md).
    Docs {
        /// Rewrite the generated blocks of README.md and topics.md in this directory.
        #[arg(long)]
        write: bool,
    },
    /// Print the file the agent serves a phone of this vendor: its Action URLs, and with --mac the
    /// keys, logo and settings of every profile layer (phone2mqtt.toml's and those pushed at run
    /// time into the data directory), byte for byte what the agent would serve it. Read from the
    /// config and data directory; no agent needs to run. Not included: the site's own file that
    /// `[provisioning] upstream` merges in, which the agent fetches when the phone asks.
    Provision {
        /// yealink
        vendor: String,
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The vendor's alternative file format, where it has one (grandstream: v2).
        #[arg(long)]
        format: Option<String>,
        /// The phone's MAC: its Action URLs carry its own token. Without it, the file every
        /// phone of this vendor may have, without Action URLs.
        #[arg(long)]
        mac: Option<String>,
    },
    /// List the phones the broker knows: name, id, model, IP, availability, call, DND, groups.
    Phones(client::PhonesArgs),
    /// Send a command to a phone, a group or `all`, and wait for the results.
    Send(client::SendArgs),
    /// Print live phone events and command results until Ctrl-C.
    Watch(client::WatchArgs),
    /// List the scheduled messages, or cancel one (`--cancel ID`).
    Reminders(client::RemindersArgs),
    /// Show the subscriber directory, or import a CSV (`--import FILE`).
    Directory(client::DirectoryArgs),
    /// Adopt a discovered phone: give it credentials so that it can be controlled.
    Adopt(client::AdoptArgs),
    /// People who may log in to the Manager (kept in <data_dir>/users.json).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// API tokens for scripts: REST and /ws (`Authorization: Bearer`), the embedded broker.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Measure the gateway against baselines on this machine (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// A baseline server the bench compares the gateway with.
    #[command(hide = true)]
    BenchBaseline {
        #[arg(value_enum)]
        kind: bench::baseline::Kind,
    },
}

/// A new user or token: its name and role, in the user file of a config's data directory.
#[derive(Debug, clap::Args)]
struct NewCredential {
    name: String,
    #[arg(long, value_enum)]
    role: Role,
    #[arg(short, long)]
    config: Option<PathBuf>,
}

/// A user or token by name.
#[derive(Debug, clap::Args)]
struct Named {
    name: String,
    #[arg(short, long)]
    config: Option<PathBuf>,
}

/// The config whose data directory holds the user file.
#[derive(Debug, clap::Args)]
struct ConfigOnly {
    #[arg(short, long)]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Add a user; the password is read from stdin (one line; asked for when stdin is a terminal).
    Add(NewCredential),
    /// List the users and their roles.
    List(ConfigOnly),
    /// Remove a user; its sessions end.
    Remove(Named),
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token and print it (its last line); it is not kept, only its hash.
    Create(NewCredential),
    /// List the tokens: name, role, when created.
    List(ConfigOnly),
    /// Revoke a token: it is refused from its next request on.
    Revoke(Named),
}

/// jemalloc: a registration storm frees thousands of connections' buffers at once, and glibc's
/// malloc kept them (BENCHMARKS.md: 10,000 phones settled at 220 MB with it, 110 MB with this).
#[cfg(all(feature = "jemalloc", target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Freed pages go back to the system from jemalloc's own thread, also while the gateway
    // is idle after a burst (`.cargo/config.toml` sets the same for builds from this tree).
    #[cfg(all(feature = "jemalloc", target_os = "linux", not(target_env = "musl")))]
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    let cli = Cli::parse();
    // Before any thread exists: the only moment the local time zone can be read safely.
    client::remember_local_offset();
    // The client commands talk on stdout; their session's own logs stay quiet.
    let client = matches!(
        cli.command,
        Command::Phones(_)
            | Command::Send(_)
            | Command::Watch(_)
            | Command::Reminders(_)
            | Command::Directory(_)
            | Command::Adopt(_)
            | Command::User { .. }
            | Command::Token { .. }
            | Command::Bench(_)
            | Command::BenchBaseline { .. }
    );
    phone2mqtt::logging::init(client);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("phone2mqtt: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<phone2mqtt::supervise::Fatal>() => {
            eprintln!("phone2mqtt: {err:#}");
            ExitCode::from(phone2mqtt::supervise::FATAL_EXIT_CODE)
        }
        Err(err) => {
            eprintln!("phone2mqtt: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::default()),
    }
}

/// The data directory of a config (the default one without).
fn data_dir(path: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(load(path)?.agent.data_dir)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            demo,
            demo_phones,
            poll,
        } => {
            let mut config = load(config.as_ref())?;
            let pending = demo
                .then(|| demo::prepare(&mut config, demo_phones))
                .transpose()?;
            run_gateway(config, true, poll, pending).await
        }
        Command::Agent { config, poll } => {
            let config = load(Some(&config))?;
            run_gateway(config, false, poll, None).await
        }
        Command::Sim {
            vendor,
            count,
            agent,
            first_mac,
            listen,
            password,
            calls,
        } => run_sim(&vendor, count, &agent, first_mac, listen, password, calls).await,
        Command::Docs { write } => {
            if write {
                for file in ["README.md", "topics.md"] {
                    let text = std::fs::read_to_string(file)
                        .with_context(|| format!("cannot read {file}"))?;
                    std::fs::write(file, docs::refresh(&text))?;
                    println!("{file}: generated tables refreshed");
                }
            } else {
                for (name, text) in docs::blocks() {
                    println!("<!-- generated:{name} -->\n{text}<!-- end:{name} -->\n");
                }
            }
            Ok(())
        }
        Command::Provision {
            vendor,
            config,
            format,
            mac,
        } => {
            let config = load(config.as_ref())?;
            let spec = phone_vendors::find(&vendor).with_context(|| {
                format!(
                    "unknown vendor `{vendor}`; known: {}",
                    phone_vendors::names().join(", ")
                )
            })?;
            let public_url = config.http.public_url_for(config.http.listen);
            let mac = mac
                .map(|mac| {
                    PhoneId::parse(&mac)
                        .with_context(|| format!("--mac: `{mac}` is not a MAC address"))
                })
                .transpose()?;
            // What the agent serves, from the same config and data directory, by the same function.
            let file = provisioning::offline_file(&config, spec, mac.as_ref(), format)?;
            print!("{}", file.text);
            // Notes for the installer on stderr: the file on stdout stays the phone's.
            if mac.is_none() {
                eprintln!("# No --mac: this file has no Action URLs. Each phone's Action URLs carry its own token:");
                eprintln!("# `phone2mqtt provision {} --mac <MAC>` prints them for one phone, or point the phone's", spec.id);
                eprintln!(
                    "# provisioning server at {}/ and it fetches its own file.",
                    public_url.trim_end_matches('/')
                );
            }
            if let Some(mac) = &mac {
                match &file.known_as {
                    None => eprintln!("# {mac} is neither in the config nor adopted: this is the file the agent serves an unknown {} phone.", spec.name),
                    Some(vendor) if !vendor.eq_ignore_ascii_case(spec.id) => eprintln!("# {mac} is configured as a {vendor} phone, not {}.", spec.id),
                    Some(_) => {}
                }
            }
            for refused in &file.refused {
                eprintln!("# Not programmed: {refused}.");
            }
            if config.provisioning.upstream.is_some() {
                eprintln!(
                    "# Not included: the site's own file from [provisioning] upstream, which the"
                );
                eprintln!("# agent fetches and merges in when the phone asks for its file.");
            }
            if let Some((username, _)) = config.provisioning.auth() {
                eprintln!("# Provisioning server {}/ needs credentials: username `{username}`, the password of", public_url.trim_end_matches('/'));
                eprintln!(
                    "# [provisioning] auth_password. {} phones take them in {}.",
                    spec.name, spec.provisioning_credentials
                );
            }
            Ok(())
        }
        Command::Phones(args) => client::phones(args).await,
        Command::Send(args) => client::send(args).await,
        Command::Watch(args) => client::watch(args).await,
        Command::Reminders(args) => client::reminders(args).await,
        Command::Directory(args) => client::directory(args).await,
        Command::Adopt(args) => client::adopt(args).await,
        Command::User { action } => match action {
            UserAction::Add(new) => {
                auth_cli::user_add(&data_dir(new.config.as_ref())?, &new.name, new.role)
            }
            UserAction::List(only) => auth_cli::user_list(&data_dir(only.config.as_ref())?),
            UserAction::Remove(named) => {
                auth_cli::user_remove(&data_dir(named.config.as_ref())?, &named.name)
            }
        },
        Command::Token { action } => match action {
            TokenAction::Create(new) => {
                auth_cli::token_create(&data_dir(new.config.as_ref())?, &new.name, new.role)
            }
            TokenAction::List(only) => auth_cli::token_list(&data_dir(only.config.as_ref())?),
            TokenAction::Revoke(named) => {
                auth_cli::token_revoke(&data_dir(named.config.as_ref())?, &named.name)
            }
        },
        Command::Bench(args) => bench::run(args).await,
        Command::BenchBaseline { kind } => bench::baseline::serve(kind).await,
    }
}

async fn run_gateway(
    config: Config,
    embedded: bool,
    poll: u64,
    pending_demo: Option<demo::PendingDemo>,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    // Listening for SIGTERM before anything is accepted: a signal during the start (which waits
    // up to 10 s for the broker while phones are already answered) stops the gateway in order,
    // its outbox sent or kept, instead of killing the process.
    let signalled = shutdown::listen();
    let stopping = stop.clone();
    tokio::spawn(async move {
        signalled.await;
        stopping.cancel();
    });
    // Demo phones are given the provisioning credentials as an installer gives them to phones.
    let demo_credentials = config
        .provisioning
        .auth()
        .map(|(username, password)| (username.to_string(), password.clone()));
    let gateway = gateway::start(
        GatewayOptions {
            config,
            embedded_broker: embedded,
            web: embedded,
            poll_interval: Duration::from_secs(poll),
            mqtt_users: None,
        },
        stop.clone(),
        &tracker,
    )
    .await?;
    // With HTTPS or a separate Manager address, the phones' port is named too, and the
    // certificate's fingerprint for people to check what their browser shows.
    let mut manager = format!("{}/", gateway.manager_url);
    if let Some(fingerprint) = &gateway.tls_fingerprint {
        manager.push_str(&format!(" (certificate SHA-256 {fingerprint})"));
    }
    if gateway.manager_url != gateway.public_url {
        manager.push_str(&format!(", phones {}/", gateway.public_url));
    }
    if let Some(pending) = pending_demo {
        let mut agent_url = gateway.public_url.clone();
        if let (Some((username, password)), Ok(mut url)) =
            (demo_credentials, url::Url::parse(&agent_url))
        {
            if url.set_username(&username).is_ok()
                && url.set_password(Some(password.expose())).is_ok()
            {
                agent_url = url.to_string();
            }
        }
        let phones = pending.start(&agent_url, stop.clone()).await?;
        for phone in &phones {
            info!(mac = %phone.mac(), addr = %phone.addr(), "Demo phone started.");
        }
    }
    // Last, so that the link is not buried under the start-up log.
    println!(
        "phone2mqtt is running: Manager {manager} , MQTT mqtt://{host}:{port} (try: mosquitto_sub -h {host} -p {port}{login} -t 'phone2mqtt/#' -v)",
        host = gateway.broker.host,
        port = gateway.broker.port,
        // A broker that wants a login: a user's, never the gateway's own.
        login = if gateway.broker_login.is_some() && !gateway.broker_anonymous {
            " -u USER -P PASSWORD"
        } else {
            ""
        }
    );
    // Printed, never logged: the link is a credential, and logs are kept.
    if let Some(link) = gateway.login_link() {
        println!("Log in to the Manager with this one-time link (it works once; then use `phone2mqtt user add`):\n    {link}");
    }
    // A task that kept panicking stops the process too, with its own exit code.
    let fatal = tokio::select! {
        () = stop.cancelled() => false,
        () = gateway.fatal.cancelled() => true,
    };
    info!("Shutting down.");
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(shutdown::STOP_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        error!(deadline = ?shutdown::STOP_DEADLINE, "Some tasks did not stop in time.");
    }
    if fatal {
        return Err(phone2mqtt::supervise::Fatal.into());
    }
    Ok(())
}

async fn run_sim(
    vendor: &str,
    count: usize,
    agent: &str,
    first_mac: Option<String>,
    listen: std::net::IpAddr,
    password: String,
    calls: bool,
) -> anyhow::Result<()> {
    let personality = sim::personality(vendor).with_context(|| {
        let known: Vec<&str> = sim::PERSONALITIES.iter().map(|p| p.vendor.id).collect();
        format!("no simulator for `{vendor}`; known: {}", known.join(", "))
    })?;
    let first_mac = match first_mac {
        Some(mac) => PhoneId::parse(&mac)
            .with_context(|| format!("--first-mac: `{mac}` is not a MAC address"))?,
        None => PhoneId::parse(&format!("{}5e0001", personality.vendor.ouis[0]))
            .expect("OUI plus 6 hex digits"),
    };
    let stop = CancellationToken::new();
    let phones = sim::spawn_many(
        personality,
        count,
        &first_mac,
        agent,
        |options| {
            options.listen = std::net::SocketAddr::new(listen, 0);
            options.password = password.clone();
            options.random_calls = calls;
        },
        stop.clone(),
    )
    .await?;
    println!(
        "# {count} simulated {} phone(s), given only the agent's address: they fetch their provisioning\n# from it and are discovered. Adopt them in the Manager (address and password below), with\n# `phone2mqtt adopt <mac> --address <address> --password-stdin`, or add them to phone2mqtt.toml:",
        personality.vendor.name
    );
    for phone in &phones {
        let options = phone.options();
        println!(
            "[[phone]]\nmac = \"{}\"\nvendor = \"{}\"\naddress = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\nline = \"{}@{}\"\n",
            phone.mac().colon_mac(),
            personality.vendor.id,
            phone.addr(),
            options.username,
            options.password,
            options.line_user,
            options.pbx_host
        );
    }
    println!("# Control endpoints per phone: POST http://<address>/sim/ring?number=...&name=..., /sim/answer, /sim/remote_answer, /sim/remote_hangup, /sim/confirm, /sim/key/<n> (a programmable key); GET /sim/state");
    shutdown::signal().await;
    stop.cancel();
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks (unique argument names...) for every subcommand, which
    /// otherwise only fire when that subcommand is run.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
