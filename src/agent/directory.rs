//! The PBX subscriber directory: a CSV of extension, name and department, imported from a file,
//! the Manager or MQTT, matched to phones by the extension they register.

use std::path::Path;

use crate::model::Subscriber;

/// Reads a subscriber list: CSV (`,` or `;`, with or without a header row naming the columns)
/// or a JSON array of `{"extension", "name", "department"}`.
pub fn parse(text: &str) -> Result<Vec<Subscriber>, String> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed).map_err(|err| format!("invalid JSON list: {err}"));
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
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|err| format!("line {}: {err}", index + 1))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        if index == 0 && record.iter().any(|f| f.eq_ignore_ascii_case("extension")) {
            let find = |names: &[&str]| {
                record
                    .iter()
                    .position(|f| names.iter().any(|n| f.eq_ignore_ascii_case(n)))
            };
            columns = (
                find(&["extension", "ext", "number"])
                    .ok_or("the header has no `extension` column")?,
                find(&["name", "display name"]).ok_or("the header has no `name` column")?,
                find(&["department", "dept"]),
            );
            continue;
        }
        let field = |i: usize| record.get(i).unwrap_or("").to_string();
        let extension = field(columns.0);
        if extension.is_empty() {
            return Err(format!("line {}: no extension", index + 1));
        }
        if subscribers
            .iter()
            .any(|s: &Subscriber| s.extension == extension)
        {
            return Err(format!(
                "line {}: extension {extension} appears twice",
                index + 1
            ));
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
pub fn load(path: &Path) -> Result<Vec<Subscriber>, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    parse(&text).map_err(|err| format!("{}: {err}", path.display()))
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
}
