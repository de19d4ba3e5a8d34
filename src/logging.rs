//! The log: `RUST_LOG` or the defaults, on stderr, without the embedded broker's false alarms.

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Starts logging. `client`: a command that talks on stdout (its session's logs stay quiet).
pub fn init(client: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        if client {
            "error"
        } else {
            "info,rumqttd=warn,rumqttc=warn,hyper=warn"
        }
        .into()
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(BrokerFalseAlarms)
        .init();
}

/// Drops the two errors rumqttd logs whenever a client leaves the proper way, sending DISCONNECT
/// and then closing its socket (`mosquitto_sub`, `phone2mqtt send`, Home Assistant): the link
/// task's `router-drop error=Recv(Disconnected)` (the router has let the connection go) and the
/// router's `no-connection id N is already gone` (the socket's close, after the DISCONNECT;
/// rumqttd's own comment calls it expected). As errors after every CLI command they alarm
/// admins; when the router drops a client for a real reason, it logs that reason by itself.
pub struct BrokerFalseAlarms;

impl<S: Subscriber> Layer<S> for BrokerFalseAlarms {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let target = event.metadata().target();
        if !target.starts_with("rumqttd::") {
            return true;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let (message, error) = (fields.message.as_str(), fields.error.as_str());
        let gone = target == "rumqttd::router::routing"
            && message.starts_with("no-connection id ")
            && message.ends_with(" is already gone");
        let let_go = target == "rumqttd::server::broker"
            && message == "router-drop"
            && error == "Recv(Disconnected)";
        !(gone || let_go)
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    error: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "error" => self.error = format!("{value:?}"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Debug-prints as rumqttd's link error does for a connection the router let go.
    struct Gone;

    impl std::fmt::Debug for Gone {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Recv(Disconnected)")
        }
    }

    #[test]
    fn a_clean_disconnect_logs_no_error_and_the_broker_s_other_errors_stay() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || writer.clone()),
            )
            .with(BrokerFalseAlarms);
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "rumqttd::router::routing", "no-connection id {} is already gone", 3);
            tracing::error!(target: "rumqttd::router::routing", "Failed to append to commitlog");
            tracing::error!(target: "rumqttd::server::broker", error = ?Gone, "router-drop");
            tracing::error!(target: "rumqttd::server::broker", error = ?"Recv(Timeout)", "router-drop");
            tracing::error!(target: "phone2mqtt::agent", "no-connection id {} is already gone", 4);
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(!log.contains("id 3 is already gone"), "{log}");
        assert!(log.contains("Failed to append to commitlog"), "{log}");
        assert_eq!(log.matches("router-drop").count(), 1, "{log}");
        assert!(log.contains("Recv(Timeout)"), "{log}");
        assert!(
            log.contains("id 4 is already gone"),
            "only the broker's: {log}"
        );
    }
}
