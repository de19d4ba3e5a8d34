//! `/metrics`: Prometheus text for signed-in people and scrapers with an API token, refused to
//! everyone else.

mod common;

use common::*;
use phone2mqtt::auth::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_to_a_token_and_refused_without_one() {
    let gw = start_gateway(test_config()).await;
    let url = format!("{}/metrics", gw.http());

    let anonymous = reqwest::get(&url).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body = anonymous.text().await.unwrap();
    assert!(!body.contains("phone2mqtt_"), "{body}");
    let wrong = bearer_client("not-a-token").get(&url).send().await.unwrap();
    assert_eq!(wrong.status(), 401);

    // A viewer's token is what a scraper is given.
    let viewer = bearer_client(&gw.api_token(Role::Viewer));
    let answer = viewer.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let content_type = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = answer.text().await.unwrap();
    for name in [
        "phone2mqtt_callbacks_total",
        "phone2mqtt_commands_total",
        "phone2mqtt_refusals_total",
        "phone2mqtt_mqtt_reconnects_total",
        "phone2mqtt_websocket_clients",
        "phone2mqtt_task_panics_total{task=\"dispatcher\"}",
    ] {
        assert!(
            text.contains(&format!("\n{name}")),
            "{name} missing:\n{text}"
        );
    }
    for limit in phone2mqtt::metrics::Limit::ALL {
        let line = format!("phone2mqtt_refusals_total{{limit=\"{limit:?}\"}} 0");
        assert!(text.contains(&line), "{line} missing:\n{text}");
    }
    gw.stop().await;
}
