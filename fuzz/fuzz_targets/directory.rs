//! The subscriber directory (CSV or JSON): `parse` never panics, and a list read from CSV is
//! read back the same from what `to_csv` writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phone2mqtt::agent::directory::{parse, to_csv};

fuzz_target!(|text: &str| {
    let Ok(list) = parse(text) else {
        return;
    };
    if text.trim_start_matches('\u{feff}').trim().starts_with('[') {
        return;
    }
    let written = to_csv(&list);
    assert_eq!(parse(&written).as_ref(), Ok(&list), "{written:?}");
});
