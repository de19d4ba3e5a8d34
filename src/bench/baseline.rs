//! The baselines the gateway is compared with in the same run, each its own process
//! (`phone2mqtt bench-baseline <kind>`), like the gateway:
//!
//! - `ok`: a bare axum server that answers every request `200 OK`;
//! - `pipeline`: the least an HTTP-to-MQTT gateway can do with the same stack: the embedded
//!   broker (the same rumqttd and `broker.toml`), axum, and one rumqttc session that publishes
//!   one JSON per request (`{"uri": ...}`, nothing parsed), QoS 1, like the gateway's events.
//!
//! Both use a stock HTTP parser, so the load generator sends them the requests as the lenient
//! front repairs them (`Anna%20Schmidt`); otherwise they are the same bytes.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::Uri;
use axum::Router;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::net::TcpListener;

/// The topic the pipeline publishes on: one the bench subscriber's `phone2mqtt/+/event` sees.
pub const PIPELINE_TOPIC: &str = "phone2mqtt/baseline/event";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Ok,
    Pipeline,
}

/// Runs a baseline until Ctrl-C; prints `ready http://... [mqtt://...]` once it serves.
pub async fn serve(kind: Kind) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let http = listener.local_addr()?;
    let router = match kind {
        Kind::Ok => {
            println!("ready http://{http}");
            Router::new().fallback(|| async { "OK\n" })
        }
        Kind::Pipeline => {
            let config = crate::broker::load_config(None)?;
            let access = crate::broker::Access::default();
            let broker = crate::broker::start(config, Some("127.0.0.1:0".parse()?), access)?.addr;
            let client = connect(broker).await?;
            println!("ready http://{http} mqtt://{broker}");
            Router::new().fallback(move |uri: Uri| {
                let client = client.clone();
                async move {
                    let payload = serde_json::json!({ "uri": uri.to_string() }).to_string();
                    match client
                        .publish(PIPELINE_TOPIC, QoS::AtLeastOnce, false, payload)
                        .await
                    {
                        Ok(()) => "OK\n",
                        Err(_) => "not published\n",
                    }
                }
            })
        }
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(crate::shutdown::signal())
        .await?;
    Ok(())
}

/// One rumqttc session, set up as the gateway's (`mqtt::start`): a request queue of 1,024.
async fn connect(broker: SocketAddr) -> anyhow::Result<AsyncClient> {
    let mut options = MqttOptions::new("bench-pipeline", broker.ip().to_string(), broker.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(256 * 1024, 256 * 1024);
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    let (connected_tx, connected) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut connected_tx = Some(connected_tx);
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    if let Some(tx) = connected_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), connected).await??;
    Ok(client)
}
