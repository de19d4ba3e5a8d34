//! An operator's bad day, with real processes: `phone2mqtt serve` against an external Mosquitto
//! that hangs (SIGSTOP) or is restarted (SIGTERM, then started again on the same port) while
//! phones keep calling back, and a phone that dies, hangs and comes back.
//!
//! What must hold: a phone's callback is answered within its own timeout whatever the broker
//! does; every event is delivered or counted as dropped by the outbox (`[mqtt] outbox_messages`,
//! `phone2mqtt_outbox_dropped_total`); publishing resumes within seconds of the broker coming
//! back, with the retained state (bridge `online`, the phones' availability and info) on it again.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::mosquitto::Mosquitto;
use common::*;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const MAC: &str = "00:15:65:fa:00:01";
const ID: &str = "001565fa0001";
const BRIDGE: &str = "phone2mqtt/bridge/test/state";
/// The events the outbox dropped, as `/metrics` counts them.
const DROPPED_EVENTS: &str = r#"phone2mqtt_outbox_dropped_total{class="event"}"#;

/// A small outbox, so that a 15 s outage at 50 events/s (750 events) overflows it, and a hung
/// broker noticed and reconnected to within a few seconds.
const OUTBOX: &str = "outbox_messages = 50\noutbox_bytes = 4194304\nkeepalive_secs = 2\n\
                      ack_timeout_secs = 2\nreconnect_max_secs = 2\n";
/// How long a phone waits for the answer to its Action URL before it gives up on it.
const PHONE_WAITS: Duration = Duration::from_secs(2);
/// Callbacks a second, each with its own call id.
const RATE: u32 = 50;
/// How long the broker is away, in seconds: longer than the outbox lasts at [`RATE`].
const OUTAGE_SECS: u32 = 15;
/// The longest publishing may take to resume once the broker is back.
const RESUME_WITHIN: Duration = Duration::from_secs(15);

/// An external Mosquitto on a port of its own. Sessions are kept without limit of messages, so
/// that what the probe misses is the gateway's doing; `persistence`: they and the retained
/// messages survive a restart, as with a broker that saves its state on SIGTERM.
async fn external_broker(dir: &tempdir::TempDir, persistence: bool) -> (Mosquitto, u16) {
    let mut conf = "max_queued_messages 0\nmax_inflight_messages 0\n".to_string();
    if persistence {
        // Run as root (as the tests may), Mosquitto would switch to its own user, who cannot
        // write into the test's directory.
        conf.push_str(&format!(
            "user root\npersistence true\npersistence_location {}/\n",
            dir.0.display()
        ));
    } else {
        conf.push_str("persistence false\n");
    }
    Mosquitto::anonymous(&dir.0, &conf).await
}

/// A gateway process on the broker at `port`, with the small outbox and the phone [`MAC`]
/// (nothing listens at its address: it only calls back here).
async fn gateway_on(port: u16) -> GatewayProcess {
    GatewayProcess::start(Serve {
        broker: port,
        mqtt: OUTBOX,
        agent: "",
        phones: vec![("yealink", MAC, free_port(), "Reception")],
    })
    .await
}

/// How one callback went: its call id, and its status or `None` when the phone gave up.
type Answer = (u32, Option<u16>);

/// Phone [`MAC`] calls back `incoming_call` for each call id of `calls`, [`RATE`] a second,
/// each without waiting for the others, as phones do; returns once the last one is sent.
async fn call_back(
    gw: &GatewayProcess,
    calls: std::ops::Range<u32>,
) -> Vec<tokio::task::JoinHandle<Answer>> {
    let token = gw.token(MAC);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / RATE);
    let mut sent = Vec::new();
    for call in calls {
        tick.tick().await;
        let path = format!(
            "/action/{token}/yealink/incoming_call?mac={ID}&ip=127.0.0.1&model=SIP-T46G\
             &firmware=28.72.0.1&remote=1001&call_id=f{call}"
        );
        let addr = gw.http;
        sent.push(tokio::spawn(async move {
            let answer =
                tokio::time::timeout(PHONE_WAITS, phone_fetch(addr, &path, "Yealink SIP-T46G"))
                    .await;
            (call, answer.ok().map(|text| status_of(&text)))
        }));
    }
    sent
}

/// Every callback was answered 200 within the phone's own timeout.
async fn all_answered(sent: Vec<tokio::task::JoinHandle<Answer>>) {
    let total = sent.len();
    let mut failed = Vec::new();
    for answer in sent {
        // A connection the gateway did not take fails the task: counted as no answer.
        match answer.await {
            Ok((_, Some(200))) => {}
            Ok((call, status)) => failed.push((call, status)),
            Err(_) => failed.push((u32::MAX, None)),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {total} callbacks not answered 200 within {PHONE_WAITS:?} \
         (call, status; None: no answer in time), first ones: {:?}",
        failed.len(),
        &failed[..failed.len().min(10)]
    );
}

/// The call ids of the events the probe received so far.
fn delivered(probe: &mut MqttProbe) -> BTreeSet<u32> {
    probe
        .payloads_on(&format!("phone2mqtt/{ID}/event"))
        .iter()
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .filter_map(|event| event["call_id"].as_str()?.strip_prefix('f')?.parse().ok())
        .collect()
}

/// After the broker came back: callbacks keep coming, two a second, until the event of one made
/// after the broker came back (call id `first` and up) reaches the probe, within
/// [`RESUME_WITHIN`]; returns the call ids used (`first..end`).
async fn publishing_resumes(
    gw: &GatewayProcess,
    probe: &mut MqttProbe,
    first: u32,
) -> (std::ops::Range<u32>, Vec<tokio::task::JoinHandle<Answer>>) {
    let deadline = tokio::time::Instant::now() + RESUME_WITHIN;
    let mut next = first;
    let mut sent = Vec::new();
    while !delivered(probe).iter().any(|call| *call >= first) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing published within {RESUME_WITHIN:?} of the broker coming back \
             ({} callbacks made since; last bridge state: {:?})\n{}",
            next - first,
            probe.payloads_on(BRIDGE).last(),
            gw.log()
        );
        sent.extend(call_back(gw, next..next + 1).await);
        next += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (first..next, sent)
}

/// Every event of `calls` reaches the probe (bounded wait).
async fn all_delivered(probe: &mut MqttProbe, calls: std::ops::Range<u32>) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let got = delivered(probe);
        let missing: Vec<u32> = calls.clone().filter(|c| !got.contains(c)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the events of calls {missing:?}, made once publishing had resumed, never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each event of `0..sent` was delivered or counted as dropped by the outbox; the outbox
/// dropped some (it was too small for the outage) and only events the probe never got.
///
/// Delivered and dropped may overlap: an event the outbox gave up on can have been written to
/// the hung broker's socket already, which the broker reads once it goes on. So what is
/// required is that nothing is missing uncounted.
async fn accounted_for(gw: &GatewayProcess, probe: &mut MqttProbe, sent: u32) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let got = delivered(probe);
        let strangers: Vec<&u32> = got.iter().filter(|c| **c >= sent).collect();
        assert!(strangers.is_empty(), "events never sent: {strangers:?}");
        let missing = (0..sent).filter(|c| !got.contains(c)).count() as i64;
        let dropped = gw.metric(DROPPED_EVENTS).await;
        if missing <= dropped && dropped > 0 {
            assert!(
                dropped <= i64::from(sent),
                "{dropped} dropped of {sent} sent"
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "of {sent} events sent, {} delivered, {missing} missing and {dropped} counted as \
             dropped ({DROPPED_EVENTS}): every missing event must be counted, \
             and the outbox of 50 must have overflowed in the outage",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A new subscriber finds `payload` retained on `topic` (bounded wait): the broker holds it for
/// Home Assistant and the Manager, not only the subscribers that were there.
async fn retained_is(port: u16, topic: &str, check: impl Fn(&str) -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + RESUME_WITHIN;
    loop {
        let mut fresh = MqttProbe::connect_filter(port, topic).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let retained = fresh.payloads_on(topic);
        if retained.last().is_some_and(|p| check(p)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: a new subscriber to {topic} got {retained:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The phone's retained availability, info and the bridge state are back on the broker.
async fn retained_state_back(port: u16) {
    retained_is(port, BRIDGE, |p| p == "online", "bridge state").await;
    retained_is(
        port,
        &format!("phone2mqtt/{ID}/availability"),
        |p| p == "online",
        "availability",
    )
    .await;
    retained_is(
        port,
        &format!("phone2mqtt/{ID}/info"),
        |p| serde_json::from_str::<Value>(p).is_ok_and(|i| i["id"] == ID),
        "info",
    )
    .await;
}

/// Calls per phase: before the outage, during it, and after publishing resumed.
const BEFORE: u32 = 2 * RATE;
const TAIL: u32 = 2 * RATE;
/// The calls made before the broker is back: `0..DURING`.
const DURING: u32 = BEFORE + OUTAGE_SECS * RATE;

/// Once the broker at `port` is back, after the calls `0..DURING` (`answers`): publishing
/// resumes, and from then on nothing is lost; every callback was answered in time, every event
/// delivered or counted, and the retained state is back. Then the gateway stops cleanly.
async fn back_again(
    mut gw: GatewayProcess,
    probe: &mut MqttProbe,
    port: u16,
    mut answers: Vec<tokio::task::JoinHandle<Answer>>,
) {
    let (resumed, sent) = publishing_resumes(&gw, probe, DURING).await;
    answers.extend(sent);
    let end = resumed.end + TAIL;
    answers.extend(call_back(&gw, resumed.end..end).await);
    all_answered(answers).await;
    all_delivered(probe, resumed.end..end).await;
    accounted_for(&gw, probe, end).await;
    retained_state_back(port).await;
    terminate(&mut gw.child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_broker_loses_nothing_uncounted_and_keeps_phones_answered() {
    let dir = tempdir::TempDir::new();
    let (broker, port) = external_broker(&dir, false).await;
    let gw = gateway_on(port).await;
    let mut probe = MqttProbe::connect_persistent(port, &["phone2mqtt/#"]).await;
    probe.expect(BRIDGE, |v| v == "online").await;

    let mut answers = call_back(&gw, 0..BEFORE).await;
    broker.pause();
    answers.extend(call_back(&gw, BEFORE..DURING).await);
    broker.resume();
    back_again(gw, &mut probe, port, answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_gets_the_state_back_and_nothing_is_lost_uncounted() {
    let dir = tempdir::TempDir::new();
    let (mut broker, port) = external_broker(&dir, true).await;
    let gw = gateway_on(port).await;
    let mut probe = MqttProbe::connect_persistent(port, &["phone2mqtt/#"]).await;
    probe.expect(BRIDGE, |v| v == "online").await;

    let answers = call_back(&gw, 0..BEFORE).await;
    all_answered(answers).await;
    availability_is(&mut probe, ID, "online").await;
    // The broker keeps its retained messages across the restart (and the probe's session):
    // remove the gateway's, so that what is retained after the restart is what the gateway
    // published again.
    for topic in [
        BRIDGE.to_string(),
        format!("phone2mqtt/{ID}/availability"),
        format!("phone2mqtt/{ID}/info"),
    ] {
        probe.publish_retained(&topic, "").await;
        probe.expect_raw(&topic, |p, _| p.is_empty()).await;
    }

    broker.stop().await;
    let answers = call_back(&gw, BEFORE..DURING).await;
    broker.restart().await;
    back_again(gw, &mut probe, port, answers).await;
}

const SICK_MAC: &str = "00:15:65:fa:00:02";
const SICK: &str = "001565fa0002";
const WELL_MAC: &str = "00:15:65:fa:00:03";
const WELL: &str = "001565fa0003";

/// The command `dnd on` to phone `id`, under transaction `tx`.
fn dnd_on(tx: &str) -> Value {
    json!({"state": "on", "transaction": tx})
}

/// Sends `dnd on` to phone `id` under transaction `tx`.
async fn dnd(probe: &MqttProbe, id: &str, tx: &str) {
    probe
        .publish(&format!("phone2mqtt/{id}/cmd/dnd"), &dnd_on(tx).to_string())
        .await;
}

/// Waits until phone `id`'s availability is `payload`.
async fn availability_is(probe: &mut MqttProbe, id: &str, payload: &str) {
    probe
        .expect(&format!("phone2mqtt/{id}/availability"), |v| v == payload)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_dies_hangs_and_returns_is_usable_again_and_holds_up_no_other() {
    let dir = tempdir::TempDir::new();
    let (_broker, port) = external_broker(&dir, false).await;
    let (sick_addr, well_addr) = (free_port(), free_port());
    let gw = GatewayProcess::start(Serve {
        broker: port,
        mqtt: "",
        agent: "command_timeout = 2.0",
        phones: vec![
            ("yealink", SICK_MAC, sick_addr, "Sick"),
            ("yealink", WELL_MAC, well_addr, "Well"),
        ],
    })
    .await;
    let url = gw.public_url();
    let (sick_power, well_power) = (CancellationToken::new(), CancellationToken::new());
    let _sick = spawn_phone_at(&url, "yealink", SICK_MAC, &sick_power, |o| {
        o.listen = sick_addr
    })
    .await;
    let well = spawn_phone_at(&url, "yealink", WELL_MAC, &well_power, |o| {
        o.listen = well_addr
    })
    .await;
    let mut probe = MqttProbe::connect(port).await;
    for id in [SICK, WELL] {
        availability_is(&mut probe, id, "online").await;
    }

    // Dies: nothing listens any more. Its command ends in an error, it is offline, and the
    // other phone is driven as usual.
    sick_power.cancel();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while tokio::net::TcpStream::connect(sick_addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the phone never died"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let result = command(&mut probe, SICK, "dnd", dnd_on("dead")).await;
    assert_eq!(result["status"], "error", "{result}");
    availability_is(&mut probe, SICK, "offline").await;
    let result = command(&mut probe, WELL, "dnd", dnd_on("w1")).await;
    assert_eq!(result["status"], "ok", "{result}");

    // Hangs: it takes the connection and never answers. Its command times out with a result;
    // the other phone's command, sent after it, is answered first.
    let (_, hung) = silent_listener(sick_addr).await;
    dnd(&probe, SICK, "hung").await;
    dnd(&probe, WELL, "w2").await;
    let mut order = Vec::new();
    while order.len() < 2 {
        let (_, result) = probe
            .next_on(|t| {
                t == format!("phone2mqtt/{SICK}/result") || t == format!("phone2mqtt/{WELL}/result")
            })
            .await;
        order.push(result);
    }
    assert_eq!(order[0]["transaction"], "w2", "{order:?}");
    assert_eq!(order[0]["status"], "ok", "{order:?}");
    assert_eq!(order[1]["transaction"], "hung", "{order:?}");
    assert_eq!(
        order[1]["error"], "the phone did not answer within 2 s",
        "{order:?}"
    );
    phone_becomes(&well, "DND on", |s| s.dnd).await;

    // Returns: the phone boots again at its address; it is online and obeys.
    hung.abort();
    let _ = hung.await;
    let back_power = CancellationToken::new();
    let back = spawn_phone_at(&url, "yealink", SICK_MAC, &back_power, |o| {
        o.listen = sick_addr
    })
    .await;
    availability_is(&mut probe, SICK, "online").await;
    let result = command(&mut probe, SICK, "dnd", dnd_on("back")).await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_becomes(&back, "DND on", |s| s.dnd).await;
    let mut gw = gw;
    terminate(&mut gw.child).await;
    back_power.cancel();
    well_power.cancel();
}
