//! The XML provisioning merge: never panics, what it writes is XML it reads again, and merging
//! again changes nothing.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use phone2mqtt::phone_vendors::merge::merge_xml;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    site: &'a str,
    ours: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let Ok(merged) = merge_xml(input.site, input.ours) else {
        return;
    };
    let again = merge_xml(&merged, input.ours).expect("the merged file reads again");
    assert_eq!(again, merged, "merging twice differs from once");
});
