//! One command queue per phone: commands run one at a time, in order, each with a timeout, and
//! every one ends in a result. The HTTP exchange with the phone lives here; what to send and how
//! to read the answer is the vendor's.
//!
//! A bounded set of runner tasks ([`PHONES_AT_ONCE`]) takes the phones with waiting commands in
//! turn, one command at a time, so a phone costs nothing while it has no command, and a command
//! to a group of 10,000 phones does not open 10,000 connections at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::agent::registry::Phone;
use crate::agent::Shared;
use crate::command::CommandError;
use crate::config::PhoneConfig;
use crate::model::{Command, CommandResult, PhoneId};
use crate::vendor::{HttpAuth, Method, PhoneReply, PhoneRequest, ReplyOutcome, Target, VendorSpec};

/// Commands waiting for one phone, at most.
const QUEUE_DEPTH: usize = 64;

/// Phones the agent talks to at once. Unbounded, a command to a group of 10,000 phones opens
/// 10,000 connections at once (100 MB of buffers, and more file descriptors than a process gets
/// by default); with 256, phones answering in 50 ms take 2 s for 10,000.
pub const PHONES_AT_ONCE: usize = 256;

/// A command on its way to a phone.
#[derive(Debug)]
pub struct Job {
    pub command: Command,
    /// The phone reference the caller used; the result goes back under it.
    pub reply_to: String,
    pub transaction: Option<String>,
    /// Internal polls publish no result.
    pub internal: bool,
}

/// The per-phone queues and the runners that work them off.
#[derive(Debug, Default)]
pub struct Queues {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Commands waiting, by phone; a phone is here only while it has some.
    waiting: HashMap<PhoneId, VecDeque<Job>>,
    /// Phones with commands waiting and none running, in turn.
    ready: VecDeque<PhoneId>,
    /// Phones with a command running.
    running: HashSet<PhoneId>,
    /// Runner tasks alive; each runs one command at a time.
    runners: usize,
    /// Stopping: nothing is queued any more.
    closed: bool,
}

impl Queues {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a job, or hands it back with the reason it could not be queued.
    pub fn submit(
        &self,
        shared: &Arc<Shared>,
        id: &PhoneId,
        job: Job,
    ) -> Result<(), Box<(Job, CommandError)>> {
        let mut inner = self.lock();
        if inner.closed || shared.shutdown.is_cancelled() {
            return Err(Box::new((job, CommandError::ShuttingDown)));
        }
        let queue = inner.waiting.entry(id.clone()).or_default();
        if queue.len() >= QUEUE_DEPTH {
            return Err(Box::new((job, CommandError::QueueFull)));
        }
        queue.push_back(job);
        // A phone is ready once, however many commands wait for it; a running one comes back
        // in turn when its command is done.
        if queue.len() == 1 && !inner.running.contains(id) {
            inner.ready.push_back(id.clone());
        }
        if !inner.ready.is_empty() && inner.runners < PHONES_AT_ONCE {
            inner.runners += 1;
            shared.tracker.spawn(runner(shared.clone()));
        }
        Ok(())
    }

    /// The next command of the next ready phone; `None` when there is none (the runner ends)
    /// or the agent is stopping (the runner answers what is still queued, then ends).
    fn next(&self, stopping: bool) -> Next {
        let mut inner = self.lock();
        if stopping {
            inner.closed = true;
            inner.runners -= 1;
            inner.ready.clear();
            let left = inner.waiting.drain().flat_map(|(_, jobs)| jobs).collect();
            return Next::Stop(left);
        }
        let Some(id) = inner.ready.pop_front() else {
            inner.runners -= 1;
            return Next::Done;
        };
        let queue = inner
            .waiting
            .get_mut(&id)
            .expect("a ready phone has commands");
        let job = queue.pop_front().expect("a ready phone has commands");
        if queue.is_empty() {
            inner.waiting.remove(&id);
        }
        inner.running.insert(id.clone());
        Next::Run(id, job)
    }

    /// A phone's command is done: it is ready again if more wait for it.
    fn done(&self, id: PhoneId) {
        let mut inner = self.lock();
        inner.running.remove(&id);
        if inner.waiting.contains_key(&id) {
            inner.ready.push_back(id);
        }
    }
}

enum Next {
    Run(PhoneId, Job),
    Done,
    Stop(Vec<Job>),
}

/// Runs ready phones' commands, one at a time, until none is ready. Stops only between
/// commands: the one in flight finishes or times out.
async fn runner(shared: Arc<Shared>) {
    loop {
        match shared.queues.next(shared.shutdown.is_cancelled()) {
            Next::Run(id, job) => {
                run_job(&shared, &id, job).await;
                shared.queues.done(id);
            }
            Next::Done => return,
            Next::Stop(left) => {
                // Whatever is still queued gets an answer too.
                for job in left.into_iter().filter(|job| !job.internal) {
                    let result = CommandResult::error(
                        &job.reply_to,
                        job.command.kind.name(),
                        job.transaction,
                        CommandError::ShuttingDown,
                    );
                    shared.publish_result(&job.reply_to, &result).await;
                }
                return;
            }
        }
    }
}

async fn run_job(shared: &Arc<Shared>, id: &PhoneId, job: Job) {
    let name = job.command.kind.name();
    let outcome = execute(shared, id, &job.command).await;
    let reachable = !matches!(
        outcome,
        Err(CommandError::Unreachable(_) | CommandError::Timeout(_))
    );
    let attempted = !matches!(
        outcome,
        Err(CommandError::NotConfigured(_)
            | CommandError::Unsupported { .. }
            | CommandError::BadArgument(_))
    );
    let refreshed = outcome.as_ref().ok().and_then(|o| o.refreshed.as_ref());
    let call_ended = outcome.as_ref().is_ok_and(|o| o.call_ended);
    if attempted {
        if let Some(update) = shared
            .registry
            .apply_command_outcome(id, reachable, refreshed, call_ended)
        {
            shared.publish_update(update).await;
        }
    }
    let result = match outcome {
        Ok(outcome) => {
            info!(phone = %id, command = name, "Command done.");
            let mut result = CommandResult::ok(&job.reply_to, name, job.transaction);
            result.data = outcome.data;
            result
        }
        Err(err) => {
            if job.internal {
                debug!(phone = %id, command = name, cause = %err, "Poll failed.");
            } else {
                warn!(phone = %id, command = name, cause = %err, "Command failed.");
            }
            CommandResult::error(&job.reply_to, name, job.transaction, err)
        }
    };
    if !job.internal {
        shared.publish_result(&job.reply_to, &result).await;
    }
}

async fn execute(
    shared: &Arc<Shared>,
    id: &PhoneId,
    command: &Command,
) -> Result<ReplyOutcome, CommandError> {
    let phone = shared
        .registry
        .get(id)
        .ok_or_else(|| CommandError::UnknownPhone(id.to_string()))?;
    let config = phone
        .config
        .clone()
        .ok_or_else(|| CommandError::NotConfigured(id.to_string()))?;
    let vendor = phone.vendor;
    if !vendor.supports(command.kind) {
        return Err(CommandError::Unsupported {
            vendor: vendor.name,
            command: command.kind.name(),
        });
    }
    if command.kind.handled_by_agent() {
        crate::agent::reprovision::run(shared, id, &phone, &config, command).await
    } else {
        send_command(shared, &phone, &config, command).await
    }
}

/// Builds a command's request as the phone's vendor says, sends it and reads the reply.
pub async fn send_command(
    shared: &Shared,
    phone: &Phone,
    config: &PhoneConfig,
    command: &Command,
) -> Result<ReplyOutcome, CommandError> {
    let vendor = phone.vendor;
    let target = target(shared, phone, config);
    let request = (vendor.build)(command, &target)?;
    let reply = send_request(shared, vendor, config, &request).await?;
    (vendor.read_reply)(command, &reply)
}

/// What a vendor's request builder needs to know about the phone.
pub fn target(shared: &Shared, phone: &Phone, config: &PhoneConfig) -> Target {
    Target {
        line: config.line.clone(),
        call_id: phone.state.call_id.clone(),
        agent_url: Some(shared.public_url.clone()),
        password: config.password.expose().to_string(),
        legacy_api: config.legacy_api,
        dnd: phone.state.dnd,
        dnd_key: config.dnd_key.clone(),
    }
}

/// Sends one request with the command timeout; a 4xx/5xx becomes the vendor's error.
pub async fn send_request(
    shared: &Shared,
    vendor: &'static VendorSpec,
    config: &PhoneConfig,
    request: &PhoneRequest,
) -> Result<PhoneReply, CommandError> {
    let timeout = shared.command_timeout;
    let reply = tokio::time::timeout(
        timeout,
        send(&shared.http, vendor.http_auth, config, request),
    )
    .await
    .map_err(|_| CommandError::Timeout(timeout.as_secs_f64()))??;
    check_status(vendor, &reply)?;
    Ok(reply)
}

/// Sends the request exactly as built, with the phone's credentials, following no redirect.
/// Vendors that use Digest get a Basic attempt first and the Digest answer to the challenge.
async fn send(
    http: &reqwest::Client,
    auth: HttpAuth,
    config: &PhoneConfig,
    request: &PhoneRequest,
) -> Result<PhoneReply, CommandError> {
    let basic = match auth {
        HttpAuth::Basic | HttpAuth::BasicThenDigest => Authorization::Basic,
        HttpAuth::InQuery => Authorization::None,
    };
    let response = attempt(http, config, request, basic).await?;
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.trim_start().to_ascii_lowercase().starts_with("digest"))
        .map(str::to_string);
    let response = match (auth, response.status().as_u16(), challenge) {
        (HttpAuth::BasicThenDigest, 401, Some(challenge)) => {
            let header = digest_answer(&challenge, config, request)?;
            attempt(http, config, request, Authorization::Digest(header)).await?
        }
        _ => response,
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Ok(PhoneReply { status, body })
}

enum Authorization {
    None,
    Basic,
    Digest(String),
}

async fn attempt(
    http: &reqwest::Client,
    config: &PhoneConfig,
    request: &PhoneRequest,
    authorization: Authorization,
) -> Result<reqwest::Response, CommandError> {
    let url = format!("{}{}", config.base_url(), request.path_and_query);
    let mut builder = match request.method {
        Method::Get => http.get(&url),
        Method::Post => http.post(&url),
    };
    builder = match authorization {
        Authorization::None => builder,
        Authorization::Basic => {
            builder.basic_auth(&config.username, Some(config.password.expose()))
        }
        Authorization::Digest(header) => builder.header(reqwest::header::AUTHORIZATION, header),
    };
    if let Some((content_type, body)) = &request.body {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, *content_type)
            .body(body.clone());
    }
    builder
        .send()
        .await
        .map_err(|err| describe_send_error(config, &err))
}

/// The `Authorization: Digest ...` answer to a phone's challenge.
fn digest_answer(
    challenge: &str,
    config: &PhoneConfig,
    request: &PhoneRequest,
) -> Result<String, CommandError> {
    let mut prompt = digest_auth::parse(challenge)
        .map_err(|err| CommandError::Rejected(format!("unreadable Digest challenge: {err}")))?;
    let method = match request.method {
        Method::Get => digest_auth::HttpMethod::GET,
        Method::Post => digest_auth::HttpMethod::POST,
    };
    let context = digest_auth::AuthContext::new_with_method(
        config.username.as_str(),
        config.password.expose(),
        request.path_and_query.as_str(),
        request.body.as_ref().map(|(_, body)| body.as_bytes()),
        method,
    );
    prompt
        .respond(&context)
        .map(|answer| answer.to_header_string())
        .map_err(|err| CommandError::Rejected(format!("cannot answer the Digest challenge: {err}")))
}

fn describe_send_error(config: &PhoneConfig, err: &reqwest::Error) -> CommandError {
    let address = config.base_url();
    let cause = if err.is_connect() {
        "connection refused or no route".to_string()
    } else if err.is_timeout() {
        "timed out".to_string()
    } else {
        // Walk to the root cause; reqwest's own text would repeat the URL (and with it nothing
        // secret, but also nothing useful).
        let mut source: &dyn std::error::Error = err;
        while let Some(inner) = source.source() {
            source = inner;
        }
        source.to_string()
    };
    CommandError::Unreachable(format!("{address}: {cause}"))
}

fn check_status(vendor: &VendorSpec, reply: &PhoneReply) -> Result<(), CommandError> {
    match reply.status {
        200..=399 => Ok(()),
        401 => Err(CommandError::Unauthorized(
            vendor.auth_hints.unauthorized.into(),
        )),
        403 => Err(CommandError::Forbidden(vendor.auth_hints.forbidden.into())),
        status => {
            let detail: String = reply.body.trim().chars().take(120).collect();
            Err(CommandError::Rejected(if detail.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {detail}")
            }))
        }
    }
}

/// The HTTP client every command uses. Phones on HTTPS have self-signed certificates.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .connect_timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(1)
        // Long enough for the next command of a burst, no longer: an idle connection costs
        // about 20 KB, and polling 10,000 phones would otherwise keep 10,000 of them.
        .pool_idle_timeout(Duration::from_secs(5))
        .user_agent(concat!("phone2mqtt/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a plain reqwest client builds")
}
