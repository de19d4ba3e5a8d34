//! No task dies alone: a command whose arithmetic once panicked the dispatcher (`in: 10000y`,
//! past the calendar's end) is now an error result, and the gateway goes on answering commands
//! through the REST API; the counters on `/metrics` say what happened.

mod common;

use common::*;
use serde_json::json;

const MAC: &str = "00:15:65:4a:a9:41";
const ID: &str = "0015654aa941";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_past_the_calendar_is_an_error_and_the_next_command_is_answered() {
    let (gw, _phone) = gateway_with_phone("yealink", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;

    for (transaction, payload) in [
        ("t-years", json!({"text": "x", "in": "10000y"})),
        (
            "t-seconds",
            json!({"text": "x", "in": 18446744073709551615u64}),
        ),
        ("t-at", json!({"text": "x", "at": "9999-12-31T23:59:59Z"})),
    ] {
        let mut payload = payload;
        payload["transaction"] = json!(transaction);
        let result = command(&mut probe, ID, "message", payload).await;
        assert_eq!(result["status"], "error", "{result}");
        assert!(
            result["error"].as_str().unwrap().contains("366 days"),
            "{result}"
        );
    }

    // The dispatcher is alive: the next command, through the REST API, is answered.
    gw.rest_command_answered(ID).await;
    // And a reminder within the year is still taken.
    let result = command(
        &mut probe,
        ID,
        "message",
        json!({"text": "x", "in": "364days", "transaction": "t-ok"}),
    )
    .await;
    assert_eq!(result["status"], "ok", "{result}");

    let text = gw.metrics().await;
    assert!(
        sample(&text, "phone2mqtt_results_total{status=\"error\"}") >= 3,
        "{text}"
    );
    assert!(
        sample(&text, "phone2mqtt_results_total{status=\"ok\"}") >= 2,
        "{text}"
    );
    // Accepted: dnd and the reminder; the three refused ones are not.
    assert_eq!(sample(&text, "phone2mqtt_commands_total"), 2, "{text}");
    assert_eq!(
        sample(&text, "phone2mqtt_task_panics_total{task=\"dispatcher\"}"),
        0,
        "{text}"
    );
    // The per-phone queues are empty again once the command is done.
    assert!(
        text.contains("phone2mqtt_queue_depth{queue=\"commands\"} 0"),
        "{text}"
    );
    gw.stop().await;
}
