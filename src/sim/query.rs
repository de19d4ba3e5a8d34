//! Query strings as phones' web servers read them.

use crate::sim::personality::Request;

/// Decodes `%XX` as a phone's web server does for query values; a `%` not followed by two hex
/// digits stays as it is, and bytes that are not UTF-8 become U+FFFD.
pub fn decode(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

/// A query value as a form-decoding CGI reads it: `+` is a space, then `%XX`; so a driver that
/// forgets to encode a `+` fails here as it would on the phone.
pub fn form_decode(value: &str) -> String {
    decode(&value.replace('+', " "))
}

/// Splits a query on `&` and the first `=`, leaving names and values as sent.
pub fn query_pairs(query: &str) -> Vec<(&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect()
}

/// A request's path and query (empty when there is none), as sent.
pub fn split_target(request: &Request) -> (&str, &str) {
    request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""))
}
