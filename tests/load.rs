//! Correctness under load: thousands of callbacks from many connections at once all reach
//! MQTT, each phone's in the order the phone sent them. Nothing here measures time; the figures
//! come from `phone2mqtt bench` (BENCHMARKS.md).

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use phone2mqtt::model::PhoneId;
use phone2mqtt::phone_vendors::yealink::SPEC;
use phone2mqtt::sim;

/// 100 phones sending 30 callbacks each, all phones at once: 3,000 callbacks.
const PHONES: usize = 100;
const CALLBACKS_PER_PHONE: u64 = 30;
/// A call that rings, is answered and ends, over and over; every one carries `$call_id`.
const CALL: [&str; 3] = ["incoming_call", "call_established", "call_terminated"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_callbacks_arrive_all_and_in_order_per_phone() {
    let gw = start_gateway(test_config()).await;
    let mut probe = MqttProbe::connect_filter(gw.mqtt_port(), "phone2mqtt/+/event").await;
    // Each phone's Action URLs, as its own file carries them.
    let templates_of = |mac: &str| -> Vec<String> {
        let provision = gw.gateway.agent.phone_ctx(&PhoneId::parse(mac).unwrap());
        CALL.iter()
            .map(|event| {
                provision
                    .action_url(&SPEC, SPEC.event(event).expect("a Yealink event"))
                    .expect("a phone's file has Action URLs")
            })
            .collect()
    };

    // Each phone sends its callbacks one after the other, as a phone does, each on its own
    // connection; the phones all send at once. `$call_id` numbers the callbacks of a phone.
    let mut phones = Vec::new();
    for phone in 0..PHONES {
        let mac = format!("00:15:65:c0:{:02x}:{:02x}", phone / 256, phone % 256);
        let templates = templates_of(&mac);
        phones.push(tokio::spawn(async move {
            let user_agent = format!("Yealink SIP-T46G 28.72.0.1 {mac}");
            for n in 0..CALLBACKS_PER_PHONE {
                let values: HashMap<&'static str, String> = [
                    ("mac", mac.clone()),
                    ("remote", "sip:+4930123456@pbx.example.com".to_string()),
                    ("display_remote", "Anna Schmidt".to_string()),
                    ("call_id", n.to_string()),
                ]
                .into_iter()
                .collect();
                let url = sim::substitute(&templates[n as usize % CALL.len()], &values);
                let status = sim::send_raw_get(&url, &user_agent).await.unwrap();
                assert_eq!(status, 200, "{url}");
            }
        }));
    }

    let total = PHONES as u64 * CALLBACKS_PER_PHONE;
    let mut by_phone: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for _ in 0..total {
        let (topic, event) = probe.next_on(|topic| topic.ends_with("/event")).await;
        let phone = event["phone"].as_str().unwrap().to_string();
        assert_eq!(topic, format!("phone2mqtt/{phone}/event"));
        let n: u64 = event["call_id"].as_str().unwrap().parse().unwrap();
        by_phone.entry(phone).or_default().push(n);
    }
    for phone in phones {
        phone.await.unwrap();
    }

    assert_eq!(by_phone.len(), PHONES, "every phone's events arrived");
    let expected: Vec<u64> = (0..CALLBACKS_PER_PHONE).collect();
    for (phone, numbers) in &by_phone {
        assert_eq!(
            numbers, &expected,
            "{phone}: every callback arrived once, in the order it was sent"
        );
    }
    // And nothing more than was sent.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let extra: Vec<_> = probe
        .drain()
        .into_iter()
        .skip(total as usize)
        .filter(|(topic, _)| topic.ends_with("/event"))
        .collect();
    assert!(extra.is_empty(), "unexpected events: {extra:?}");
    gw.stop().await;
}
