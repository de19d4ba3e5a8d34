//! The Action URL side of every vendor: the query decoding (`parse_vars`), the callback parser
//! (`VendorSpec::parse`), User-Agent recognition and provisioning paths. Never panics; decoded
//! variables survive being encoded and decoded again.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use phone2mqtt::agent::receiver::parse_vars;
use phone2mqtt::phone_vendors::{
    encode_query_value, parse_plain_user_agent, provision_lookup, sip_number, Callback, VENDORS,
};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    vendor: u8,
    /// An event of the vendor's table by index, or the raw name.
    event: Result<u8, &'a str>,
    query: &'a str,
    user_agent: Option<&'a str>,
    path: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let spec = VENDORS[input.vendor as usize % VENDORS.len()];
    let event = match input.event {
        Ok(index) => spec.events[index as usize % spec.events.len()].wire,
        Err(raw) => raw,
    };
    let vars = parse_vars(input.query);
    for (name, value) in &vars {
        assert!(!name.is_empty());
        assert!(!value.is_empty() && value.trim() == value, "{value:?}");
    }
    let encoded: Vec<String> = vars
        .iter()
        .map(|(n, v)| format!("{}={}", encode_query_value(n), encode_query_value(v)))
        .collect();
    assert_eq!(parse_vars(&encoded.join("&")), vars, "round trip");
    let callback = Callback {
        event: event.to_string(),
        vars,
        user_agent: input.user_agent.map(str::to_string),
    };
    let _ = spec.parse(&callback);
    for spec in VENDORS {
        if let Some(ua) = input.user_agent {
            let _ = (spec.recognise)(ua);
            let _ = parse_plain_user_agent(ua, spec.name);
        }
        let _ = (spec.provision_file)(input.path);
    }
    let _ = provision_lookup(input.path, input.user_agent, |_| None);
    let _ = sip_number(input.query);
});
