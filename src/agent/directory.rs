//! The PBX subscriber directory: a CSV of extension, name and department, imported from a file,
//! the Manager or MQTT, matched to phones by the extension they register.

use std::collections::HashSet;
use std::path::Path;

use crate::model::Subscriber;

/// The most a retained report (`directory`, the reminders list) may take: half the broker's
/// packet limit, so that topic, header and a slow growth of fields never reach it.
pub const REPORT_BYTES: usize = crate::mqtt::MAX_PACKET_SIZE / 2;

/// Why a directory was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryError {
    /// More subscribers than `[limits] directory_rows`.
    TooManyRows {
        limit: usize,
    },
    Invalid(String),
}

impl std::fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirectoryError::TooManyRows { limit } => write!(
                f,
                "the directory has more than {limit} subscribers ([limits] directory_rows)"
            ),
            DirectoryError::Invalid(err) => f.write_str(err),
        }
    }
}

/// Reads a subscriber list: CSV (`,` or `;`, with or without a header row naming the columns)
/// or a JSON array of `{"extension", "name", "department"}`.
pub fn parse(text: &str) -> Result<Vec<Subscriber>, String> {
    parse_at_most(text, usize::MAX).map_err(|err| err.to_string())
}

/// [`parse`], refusing more than `max_rows` subscribers (and reading no further than that).
pub fn parse_at_most(text: &str, max_rows: usize) -> Result<Vec<Subscriber>, DirectoryError> {
    let too_many = DirectoryError::TooManyRows { limit: max_rows };
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.starts_with('[') {
        let list: Vec<Subscriber> = serde_json::from_str(trimmed)
            .map_err(|err| DirectoryError::Invalid(format!("invalid JSON list: {err}")))?;
        if list.len() > max_rows {
            return Err(too_many);
        }
        let mut seen = HashSet::new();
        if let Some(twice) = list.iter().find(|s| !seen.insert(s.extension.as_str())) {
            return Err(DirectoryError::Invalid(format!(
                "extension {} appears twice",
                twice.extension
            )));
        }
        return Ok(list);
    }
    let delimiter = if trimmed
        .lines()
        .next()
        .is_some_and(|l| l.matches(';').count() > l.matches(',').count())
    {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(trimmed.as_bytes());
    let mut columns = (0usize, 1usize, Some(2usize));
    let mut subscribers = Vec::new();
    // Extensions seen so far: a set, so that a long list is checked in linear time.
    let mut seen: HashSet<String> = HashSet::new();
    for (index, record) in reader.records().enumerate() {
        let record =
            record.map_err(|err| DirectoryError::Invalid(format!("line {}: {err}", index + 1)))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        if index == 0 && record.iter().any(|f| f.eq_ignore_ascii_case("extension")) {
            let find = |names: &[&str]| {
                record
                    .iter()
                    .position(|f| names.iter().any(|n| f.eq_ignore_ascii_case(n)))
            };
            let missing =
                |what: &str| DirectoryError::Invalid(format!("the header has no `{what}` column"));
            columns = (
                find(&["extension", "ext", "number"]).ok_or_else(|| missing("extension"))?,
                find(&["name", "display name"]).ok_or_else(|| missing("name"))?,
                find(&["department", "dept"]),
            );
            continue;
        }
        let field = |i: usize| record.get(i).unwrap_or("").to_string();
        let extension = field(columns.0);
        if extension.is_empty() {
            return Err(DirectoryError::Invalid(format!(
                "line {}: no extension",
                index + 1
            )));
        }
        if subscribers.len() == max_rows {
            return Err(too_many);
        }
        if !seen.insert(extension.clone()) {
            return Err(DirectoryError::Invalid(format!(
                "line {}: extension {extension} appears twice",
                index + 1
            )));
        }
        subscribers.push(Subscriber {
            extension,
            name: field(columns.1),
            department: columns.2.map(field).unwrap_or_default(),
        });
    }
    Ok(subscribers)
}

/// Writes the directory as CSV with a header, to keep it in the data directory.
pub fn to_csv(subscribers: &[Subscriber]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(["extension", "name", "department"]);
    for s in subscribers {
        let _ = writer.write_record([&s.extension, &s.name, &s.department]);
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Loads a directory file, naming it in the error.
pub fn load(path: &Path, max_rows: usize) -> Result<Vec<Subscriber>, (DirectoryError, String)> {
    let named = |err: DirectoryError| {
        let text = format!("{}: {err}", path.display());
        (err, text)
    };
    let text = std::fs::read_to_string(path)
        .map_err(|err| named(DirectoryError::Invalid(err.to_string())))?;
    parse_at_most(&text, max_rows).map_err(named)
}

/// The retained report, whole when it fits in [`REPORT_BYTES`]; otherwise summarised: the
/// subscribers with a phone first, then the others, as many as fit, with `"truncated": true`
/// and the totals (topics.md, "The subscriber directory").
pub fn bounded_report(
    subscribers: Vec<serde_json::Value>,
    phones_without_subscriber: Vec<String>,
    subscribers_without_phone: Vec<String>,
) -> serde_json::Value {
    let whole = serde_json::json!({
        "subscribers": subscribers,
        "phones_without_subscriber": phones_without_subscriber,
        "subscribers_without_phone": subscribers_without_phone,
    });
    if json_len(&whole) <= REPORT_BYTES {
        return whole;
    }
    let serde_json::Value::Object(mut whole) = whole else {
        unreachable!("built as an object")
    };
    let mut take = |key: &str| match whole.remove(key) {
        Some(serde_json::Value::Array(list)) => list,
        _ => Vec::new(),
    };
    let (subscribers, phones_without, without_phone) = (
        take("subscribers"),
        take("phones_without_subscriber"),
        take("subscribers_without_phone"),
    );
    let totals = (subscribers.len(), phones_without.len(), without_phone.len());
    let (matched, unmatched): (Vec<_>, Vec<_>) = subscribers
        .into_iter()
        .partition(|s| s["phones"].as_array().is_some_and(|p| !p.is_empty()));
    // Room for the totals and the brackets; the rest is shared in this order.
    let mut room = REPORT_BYTES - 512;
    let mut fit = |list: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        let mut kept = Vec::new();
        for item in list {
            let len = json_len(&item) + 1;
            if len > room {
                break;
            }
            room -= len;
            kept.push(item);
        }
        kept
    };
    let mut listed = fit(matched);
    let phones_without = fit(phones_without);
    listed.extend(fit(unmatched));
    let without_phone = fit(without_phone);
    serde_json::json!({
        "truncated": true,
        "subscribers_total": totals.0,
        "phones_without_subscriber_total": totals.1,
        "subscribers_without_phone_total": totals.2,
        "subscribers": listed,
        "phones_without_subscriber": phones_without,
        "subscribers_without_phone": without_phone,
    })
}

/// How many subscribers of a report have a phone, whole or summarised.
pub fn matched(report: &serde_json::Value) -> usize {
    let total = |key: &str| {
        report[format!("{key}_total")]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .or_else(|| report[key].as_array().map(Vec::len))
            .unwrap_or(0)
    };
    total("subscribers").saturating_sub(total("subscribers_without_phone"))
}

/// The length of `value` as JSON.
pub fn json_len(value: &impl serde::Serialize) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_and_without_header() {
        let list = parse(
            "extension,name,department\n1001,Anna Schmidt,Sales\n1002,\"Weiß, Jürgen\",Support\n",
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].name, "Weiß, Jürgen");
        let list = parse("1001;Anna;Sales\n1002;Bob;\n").unwrap();
        assert_eq!(list[1].department, "");
        let list = parse("Name,Department,Extension\nAnna,Sales,1001\n").unwrap();
        assert_eq!(list[0].extension, "1001");
        assert!(parse("1001,Anna\n1001,Bob\n")
            .unwrap_err()
            .contains("twice"));
        let json = parse(r#"[{"extension": "1003", "name": "Cleo"}]"#).unwrap();
        assert_eq!(json[0].name, "Cleo");
        assert_eq!(parse(&to_csv(&list)).unwrap(), list);
    }

    #[test]
    fn rows_are_limited_and_a_long_list_is_read_in_linear_time() {
        let csv: String = (0..100_000)
            .map(|i| format!("{i},Name {i},Dept\n"))
            .collect();
        assert_eq!(parse(&csv).unwrap().len(), 100_000);
        assert_eq!(
            parse_at_most(&csv, 99_999).unwrap_err(),
            DirectoryError::TooManyRows { limit: 99_999 }
        );
        assert_eq!(parse_at_most("1,a\n2,b\n", 2).unwrap().len(), 2);
        assert!(parse_at_most(
            r#"[{"extension": "1", "name": "a"}, {"extension": "1", "name": "b"}]"#,
            5
        )
        .unwrap_err()
        .to_string()
        .contains("twice"));
    }

    #[test]
    fn a_large_report_is_summarised_under_the_packet_limit() {
        let subscribers: Vec<serde_json::Value> = (0..100_000)
            .map(|i| serde_json::json!({"extension": i.to_string(), "name": format!("Name {i}"), "department": "Sales", "phones": if i == 99_999 { vec!["0015654aa937"] } else { vec![] }}))
            .collect();
        let without: Vec<String> = (0..99_999).map(|i| i.to_string()).collect();
        let report = bounded_report(subscribers, vec!["000b82de0002".into()], without);
        assert!(json_len(&report) <= REPORT_BYTES, "{}", json_len(&report));
        assert_eq!(report["truncated"], true);
        assert_eq!(report["subscribers_total"], 100_000);
        // The matched subscriber comes first, whatever its place in the list.
        assert_eq!(report["subscribers"][0]["extension"], "99999");
        assert_eq!(report["phones_without_subscriber"][0], "000b82de0002");
        let small = bounded_report(Vec::new(), Vec::new(), Vec::new());
        assert!(small.get("truncated").is_none());
    }
}
