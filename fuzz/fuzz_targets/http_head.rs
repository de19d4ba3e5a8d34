//! The lenient head repair of the HTTP front: never panics, and what it hands on has a request
//! line that httparse (hyper's parser) accepts, with the body bytes after the head untouched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phone2mqtt::http_front::repair_head;

fuzz_target!(|data: &[u8]| {
    let Ok(repaired) = repair_head(data) else {
        return;
    };
    let line_end = repaired
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("the repaired head has a request line");
    let mut line = repaired[..line_end + 2].to_vec();
    line.extend_from_slice(b"\r\n");
    let mut headers = [httparse::EMPTY_HEADER; 1];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&line) {
        Ok(httparse::Status::Complete(_)) => {}
        other => panic!(
            "repaired request line {:?} is refused: {other:?}",
            String::from_utf8_lossy(&line)
        ),
    }
    let target = request.path.expect("a target");
    assert!(target.starts_with('/'), "{target}");
    // The repaired head ends the head; what followed the head in the input follows it here.
    let head_end = repaired
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the repaired head ends with a blank line")
        + 4;
    assert!(data.ends_with(&repaired[head_end..]));
});
