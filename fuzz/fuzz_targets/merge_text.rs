//! The `key = value` provisioning merge (Yealink): never panics, the header stays first, every
//! setting of ours is in the result, and merging again changes nothing.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use phone2mqtt::phone_vendors::merge::merge_text;

const HEADER: &str = "#!version:1.0.0.1";

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    site: &'a str,
    ours: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let merged = merge_text(input.site, input.ours, HEADER);
    assert!(merged.starts_with(&format!("{HEADER}\n")));
    let again = merge_text(&merged, input.ours, HEADER);
    assert_eq!(again, merged, "merging twice differs from once");
});
