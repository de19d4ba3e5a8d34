//! `phone2mqtt send`: one command to a phone, a group or every configured phone, each with its
//! own transaction, then every result (or "no result" after `--timeout`).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

use crate::client::fleet::{collect, Fleet};
use crate::client::{random_hex, SendArgs, Session};
use crate::topics::Topic;

/// How one phone's command ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok(Option<Value>),
    Failed(String),
}

/// The payload for one phone: `{"value": ..., "at"/"in": ..., "transaction": ...}`, or the
/// `--json` object with the transaction (and `at`/`in`) added.
pub fn payload(args: &SendArgs, transaction: &str) -> anyhow::Result<Map<String, Value>> {
    let mut fields = match &args.json {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => {
                bail!("--json: the payload must be a JSON object, e.g. '{{\"number\": \"1001\"}}'")
            }
            Err(err) => bail!("--json: not valid JSON: {err}"),
        },
        None => Map::new(),
    };
    if !args.value.is_empty() {
        fields.insert("value".into(), Value::String(args.value.join(" ")));
    }
    if let Some(at) = &args.at {
        fields.insert("at".into(), Value::String(at.clone()));
    }
    if let Some(delay) = &args.within {
        fields.insert("in".into(), Value::String(delay.clone()));
    }
    fields.insert("transaction".into(), Value::String(transaction.to_string()));
    Ok(fields)
}

/// `phone2mqtt send <target> <command> [value]`.
pub async fn send(args: SendArgs) -> anyhow::Result<()> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 86_400.0) {
        bail!("--timeout must be a positive number of seconds, at most 86400");
    }
    // Check the command and its value here, as the agent will, before anything is sent.
    let check = payload(&args, "check")?;
    if let (_, Err(err)) =
        crate::command::parse(&args.command, Value::Object(check).to_string().as_bytes())
    {
        bail!("{err}");
    }
    let mut session = Session::connect(&args.broker).await?;
    let (fleet, _) = collect(&mut session).await;
    let ids = match fleet.resolve(&args.target) {
        Ok(ids) => ids,
        Err(reason) => {
            session.close().await;
            bail!(reason);
        }
    };
    let outcomes = run(&mut session, &fleet, &ids, &args).await;
    session.close().await;
    outcomes.and_then(|outcomes| report(&fleet, &args, &ids, &outcomes))
}

/// Publishes one command per phone and waits for every result, or for the timeout.
async fn run(
    session: &mut Session,
    fleet: &Fleet,
    ids: &[String],
    args: &SendArgs,
) -> anyhow::Result<HashMap<String, Outcome>> {
    let prefix = format!("cli-{}", random_hex(8));
    // transaction -> phone id
    let mut pending: HashMap<String, String> = HashMap::new();
    let progress = (ids.len() > 1).then(|| {
        let bar = ProgressBar::new(ids.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {pos}/{len} [{bar:30}] {elapsed} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("{} sent", args.command));
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    for (n, id) in ids.iter().enumerate() {
        let transaction = format!("{prefix}-{}", n + 1);
        let fields = payload(args, &transaction)?;
        pending.insert(transaction, id.clone());
        session
            .mqtt
            .publish(
                session.topics.command(id, &args.command),
                Value::Object(fields).to_string(),
                false,
            )
            .await;
    }
    let mut outcomes = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(args.timeout);
    while !pending.is_empty() {
        let message = match tokio::time::timeout_at(deadline, session.incoming.recv()).await {
            Ok(Some(message)) => message,
            Ok(None) | Err(_) => break,
        };
        if !matches!(session.topics.parse(&message.topic), Some(Topic::Result(_))) {
            continue;
        }
        let Ok(result) = serde_json::from_slice::<Value>(&message.payload) else {
            continue;
        };
        let Some(id) = result
            .get("transaction")
            .and_then(Value::as_str)
            .and_then(|t| pending.remove(t))
        else {
            continue;
        };
        let outcome = if result.get("status").and_then(Value::as_str) == Some("ok") {
            Outcome::Ok(result.get("data").cloned())
        } else {
            Outcome::Failed(
                result
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("the result is an error without a reason")
                    .to_string(),
            )
        };
        if let Some(bar) = &progress {
            let verdict = if matches!(outcome, Outcome::Ok(_)) {
                "ok"
            } else {
                "failed"
            };
            bar.set_message(format!("{}: {verdict}", fleet.label_of(&id)));
            bar.inc(1);
        }
        outcomes.insert(id, outcome);
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let waited = format_seconds(args.timeout);
    for id in pending.into_values() {
        outcomes.insert(id, Outcome::Failed(format!("no result within {waited} s")));
    }
    Ok(outcomes)
}

fn format_seconds(seconds: f64) -> String {
    if seconds.fract() == 0.0 {
        format!("{seconds:.0}")
    } else {
        format!("{seconds}")
    }
}

/// Prints the result line (one phone) or the summary (several); an error when any failed.
fn report(
    fleet: &Fleet,
    args: &SendArgs,
    ids: &[String],
    outcomes: &HashMap<String, Outcome>,
) -> anyhow::Result<()> {
    let command = &args.command;
    let outcome_of = |id: &String| {
        outcomes
            .get(id)
            .cloned()
            .unwrap_or_else(|| Outcome::Failed("no result".into()))
    };
    if let [id] = ids {
        let label = fleet.label_of(id);
        return match outcome_of(id) {
            Outcome::Ok(data) => {
                println!("{label}: {command} ok");
                if let Some(data) = data {
                    println!("{}", serde_json::to_string_pretty(&data)?);
                }
                Ok(())
            }
            Outcome::Failed(error) => {
                println!("{label}: {command} failed: {error}");
                Err(anyhow!("`{command}` failed on {label}"))
            }
        };
    }
    let mut ok = 0;
    let mut failures = Vec::new();
    let mut data = Vec::new();
    for id in ids {
        match outcome_of(id) {
            Outcome::Ok(Some(value)) => {
                ok += 1;
                data.push((fleet.label_of(id), value));
            }
            Outcome::Ok(None) => ok += 1,
            Outcome::Failed(error) => failures.push((fleet.label_of(id), error)),
        }
    }
    println!(
        "{command} to {} phones: {ok} ok, {} failed",
        ids.len(),
        failures.len()
    );
    for (label, value) in &data {
        println!("  ok      {label}: {value}");
    }
    for (label, error) in &failures {
        println!("  failed  {label}: {error}");
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(
            "`{command}` failed on {} of {} phones",
            failures.len(),
            ids.len()
        ))
    }
}
