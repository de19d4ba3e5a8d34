//! `phone2mqtt reminders`, `phone2mqtt directory` and `phone2mqtt adopt`: the scheduled messages,
//! the subscriber directory and discovered phones from a terminal, over the same topics the
//! Manager uses.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::client::fleet::collect;
use crate::client::{random_hex, BrokerArgs, Session};
use crate::topics::Topic;

/// How long to wait for the agent's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// `phone2mqtt reminders`.
#[derive(Debug, Clone, clap::Args)]
pub struct RemindersArgs {
    /// Cancel the reminder with this id instead of listing them.
    #[arg(long, value_name = "ID")]
    pub cancel: Option<String>,
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// `phone2mqtt directory`.
#[derive(Debug, Clone, clap::Args)]
pub struct DirectoryArgs {
    /// Import this CSV (extension, name, department) as the new directory.
    #[arg(long, value_name = "FILE")]
    pub import: Option<std::path::PathBuf>,
    /// Print the directory report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// `phone2mqtt adopt`.
#[derive(Debug, Clone, clap::Args)]
pub struct AdoptArgs {
    /// The discovered phone: its id or MAC.
    pub phone: String,
    /// `host` or `host:port` (IPv6 in brackets); default: the IP the phone called from, on
    /// `[provisioning] phone_port`. Another address needs --password-stdin.
    #[arg(long)]
    pub address: Option<String>,
    /// The phone's web admin user; default: `[provisioning] username`, else admin.
    #[arg(long = "admin-user", value_name = "USER")]
    pub admin_user: Option<String>,
    /// Read the admin password from standard input (one line), so that it stays out of the
    /// shell history and the process list; default: `[provisioning] password`, else admin, only at the IP the phone called from.
    #[arg(long)]
    pub password_stdin: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// A group to put it in; repeat for more.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

pub async fn adopt(args: AdoptArgs) -> anyhow::Result<()> {
    let mut payload = serde_json::Map::new();
    for (key, value) in [
        ("address", &args.address),
        ("username", &args.admin_user),
        ("name", &args.name),
    ] {
        if let Some(value) = value {
            payload.insert(key.into(), Value::String(value.clone()));
        }
    }
    if args.password_stdin {
        let url = crate::mqtt::BrokerUrl::parse(&args.broker.url)
            .map_err(|reason| anyhow!("--mqtt: {reason}"))?;
        if !url.is_private() {
            bail!("{}", crate::agent::dispatch::CLEAR_PASSWORD);
        }
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            bail!("--password-stdin: standard input held no password");
        }
        payload.insert("password".into(), Value::String(password.to_string()));
    }
    if !args.groups.is_empty() {
        payload.insert("groups".into(), json!(args.groups));
    }
    let transaction = format!("cli-{}", random_hex(8));
    payload.insert("transaction".into(), Value::String(transaction.clone()));
    let mut session = Session::connect(&args.broker).await?;
    // The retained burst proves the subscription is in place before the answer comes.
    let (fleet, _) = collect(&mut session).await;
    let result = match fleet.resolve(&args.phone) {
        Ok(ids) if ids.len() == 1 => {
            let id = ids[0].clone();
            session
                .mqtt
                .publish(
                    session.topics.command(&id, "adopt"),
                    Value::Object(payload).to_string(),
                    false,
                )
                .await;
            let result_topic = session.topics.result(&id);
            answer(&mut session, &result_topic, &transaction)
                .await
                .and_then(|reply| match reply["status"].as_str() {
                    Some("ok") => {
                        println!("Adopted {}.", fleet.label_of(&id));
                        Ok(())
                    }
                    _ => Err(anyhow!(
                        "{}",
                        reply["error"].as_str().unwrap_or("the agent refused")
                    )),
                })
        }
        Ok(_) => Err(anyhow!(
            "`{}` names more than one phone; give one id",
            args.phone
        )),
        Err(reason) => Err(anyhow!(reason)),
    };
    session.close().await;
    result
}

/// Waits for the message on `topic` whose payload carries `transaction`.
async fn answer(session: &mut Session, topic: &str, transaction: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
    loop {
        let message = tokio::time::timeout_at(deadline, session.incoming.recv())
            .await
            .map_err(|_| {
                anyhow!(
                    "no answer from the agent within {} s",
                    ANSWER_TIMEOUT.as_secs()
                )
            })?
            .ok_or_else(|| anyhow!("the MQTT session ended"))?;
        if message.topic != topic {
            continue;
        }
        let value: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
        if value["transaction"] == transaction {
            return Ok(value);
        }
    }
}

pub async fn reminders(args: RemindersArgs) -> anyhow::Result<()> {
    let mut session = Session::connect(&args.broker).await?;
    let (fleet, others) = collect(&mut session).await;
    let mut lists: Vec<(String, Vec<Value>)> = Vec::new();
    for message in &others {
        if let Some(Topic::Reminders(agent)) = session.topics.parse(&message.topic) {
            let list: Vec<Value> = serde_json::from_slice(&message.payload).unwrap_or_default();
            lists.push((agent.to_string(), list));
        }
    }
    let result = match &args.cancel {
        Some(id) => {
            let Some((agent, _)) = lists
                .iter()
                .find(|(_, list)| list.iter().any(|r| r["id"] == id.as_str()))
            else {
                session.close().await;
                bail!("no reminder `{id}`; `phone2mqtt reminders` lists them");
            };
            let transaction = format!("cli-{}", random_hex(8));
            let topic = session.topics.reminders_cancel(agent);
            session
                .mqtt
                .publish(
                    topic,
                    json!({"id": id, "transaction": transaction}).to_string(),
                    false,
                )
                .await;
            let result_topic = session.topics.reminders_result(agent);
            let reply = answer(&mut session, &result_topic, &transaction).await;
            reply.and_then(|reply| match reply["status"].as_str() {
                Some("ok") => {
                    println!("Reminder {id} cancelled.");
                    Ok(())
                }
                _ => Err(anyhow!(
                    "{}",
                    reply["error"].as_str().unwrap_or("the agent refused")
                )),
            })
        }
        None if args.json => {
            let all: Vec<Value> = lists
                .iter()
                .flat_map(|(_, list)| list.iter().cloned())
                .collect();
            println!("{}", Value::Array(all));
            Ok(())
        }
        None => {
            let mut all: Vec<&Value> = lists.iter().flat_map(|(_, list)| list.iter()).collect();
            all.sort_by(|a, b| a["due"].as_str().cmp(&b["due"].as_str()));
            if all.is_empty() {
                eprintln!("No reminders scheduled.");
            }
            for reminder in all {
                let target = reminder["target"].as_str().unwrap_or_default();
                let target = match target.strip_prefix("group:") {
                    Some(group) => format!("group {group}"),
                    None => fleet.label_of(target),
                };
                println!(
                    "{}  {}  {}  {}",
                    reminder["id"].as_str().unwrap_or_default(),
                    reminder["due"].as_str().unwrap_or_default(),
                    target,
                    reminder["text"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
    };
    session.close().await;
    result
}

pub async fn directory(args: DirectoryArgs) -> anyhow::Result<()> {
    let mut session = Session::connect(&args.broker).await?;
    let result = match &args.import {
        Some(file) => {
            let csv = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            // The retained burst proves the subscription is in place before the answer comes.
            let _ = collect(&mut session).await;
            let transaction = format!("cli-{}", random_hex(8));
            session
                .mqtt
                .publish(
                    session.topics.directory_set(),
                    json!({"csv": csv, "transaction": transaction}).to_string(),
                    false,
                )
                .await;
            let result_topic = session.topics.directory_result();
            let reply = answer(&mut session, &result_topic, &transaction).await;
            reply.and_then(|reply| match reply["status"].as_str() {
                Some("ok") => {
                    println!(
                        "Imported {} subscribers, {} matched to phones.",
                        reply["subscribers"], reply["matched"]
                    );
                    Ok(())
                }
                _ => Err(anyhow!(
                    "{}: {}",
                    file.display(),
                    reply["error"].as_str().unwrap_or("refused")
                )),
            })
        }
        None => {
            let (fleet, others) = collect(&mut session).await;
            let report = others
                .iter()
                .find(|m| session.topics.parse(&m.topic) == Some(Topic::Directory))
                .and_then(|m| serde_json::from_slice::<Value>(&m.payload).ok())
                .unwrap_or(Value::Null);
            if args.json {
                println!("{report}");
            } else {
                for subscriber in report["subscribers"].as_array().into_iter().flatten() {
                    let phones: Vec<String> = subscriber["phones"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(|id| fleet.label_of(id))
                        .collect();
                    println!(
                        "{}  {}  {}  {}",
                        subscriber["extension"].as_str().unwrap_or_default(),
                        subscriber["name"].as_str().unwrap_or_default(),
                        subscriber["department"].as_str().unwrap_or_default(),
                        if phones.is_empty() {
                            "(no phone)".to_string()
                        } else {
                            phones.join(", ")
                        }
                    );
                }
                let without: Vec<String> = report["phones_without_subscriber"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|id| fleet.label_of(id))
                    .collect();
                if !without.is_empty() {
                    println!("Phones with no subscriber: {}", without.join(", "));
                }
            }
            Ok(())
        }
    };
    session.close().await;
    result
}
