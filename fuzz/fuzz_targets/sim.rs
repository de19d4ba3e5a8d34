//! The simulated phones' readers, for every vendor personality: provisioning files (key=value
//! and XML), settings, Action URI requests with their queries and bodies, credentials. None may
//! panic on what an agent (or anyone) sends them.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use phone2mqtt::sim::{self, AccessCtx, Provisioned, Request, PERSONALITIES};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    personality: u8,
    file: &'a str,
    post: bool,
    target: &'a str,
    body: &'a str,
    authorization: Option<&'a str>,
    digest: bool,
    key: u8,
}

fuzz_target!(|input: Input<'_>| {
    let personality = PERSONALITIES[input.personality as usize % PERSONALITIES.len()];
    let mut provisioned = Provisioned::default();
    (personality.read_provisioning)(input.file, &mut provisioned);
    let mut settings = sim::settings::Settings::new();
    (personality.read_settings)(input.file, &mut settings);
    let _ = (personality.key_url)(&settings, u32::from(input.key));
    let _ = (personality.logo_url)(&settings);
    sim::settings::read_key_value(input.file, &mut settings);
    let _ = sim::settings::boot_includes(input.file);
    for leaf in sim::xml_leaves(input.file) {
        let _ = (leaf.name(), leaf.parent());
    }

    let mut request = Request::get(input.target);
    if input.post {
        request.method = "POST".parse().expect("a method");
    }
    request.body = input.body.to_string();
    request.authorization = input.authorization.map(str::to_string);
    let (_, query) = sim::split_target(&request);
    for (name, value) in sim::query_pairs(query) {
        let _ = (sim::decode(name), sim::form_decode(value));
    }
    let ctx = AccessCtx {
        request: &request,
        peer: ([127, 0, 0, 1], 80).into(),
        username: "admin",
        password: "secret",
        provisioned: &provisioned,
        confirmed: input.key % 2 == 0,
        digest: input.digest,
    };
    let _ = (personality.check_access)(&ctx);
    let _ = (personality.parse_request)(&request);
});
