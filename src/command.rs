//! Command payloads (MQTT or websocket) into validated [`Command`]s.
//!
//! Everything a caller can get wrong is caught here, before any vendor code runs, so that a
//! dial string can never smuggle a second Action URI key (`1001&key=Reboot`) to a phone.

use serde_json::{Map, Value};

use crate::model::{ArgKind, Command, CommandArg, CommandKind};

// The errors live with the command table, where vendor code can name them without this module.
pub use crate::model::CommandError;

/// Parses `cmd/<name>` with its payload. The transaction is returned even when the command is
/// invalid, so that the error result can echo it.
pub fn parse(name: &str, payload: &[u8]) -> (Option<String>, Result<Command, CommandError>) {
    let body = match decode_payload(payload) {
        Ok(body) => body,
        Err(err) => return (None, Err(err)),
    };
    let transaction = body.transaction.clone();
    // `adopt` is the registry's, not a phone's: `agent::dispatch` takes it before this.
    let Some(kind) = CommandKind::from_name(name).filter(|kind| *kind != CommandKind::Adopt) else {
        return (
            transaction,
            Err(CommandError::UnknownCommand(name.to_string())),
        );
    };
    (transaction, build(kind, body))
}

/// A payload reduced to its parts: the value (plain payload or a JSON field) and the extras.
struct Body {
    value: Option<String>,
    fields: Map<String, Value>,
    transaction: Option<String>,
}

fn decode_payload(payload: &[u8]) -> Result<Body, CommandError> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| CommandError::BadPayload("the payload is not UTF-8 text".into()))?
        .trim();
    if text.is_empty() {
        return Ok(Body {
            value: None,
            fields: Map::new(),
            transaction: None,
        });
    }
    if !(text.starts_with('{') || text.starts_with('[') || text.starts_with('"')) {
        // A plain value, as `mosquitto_pub -m 1001` sends it.
        return Ok(Body {
            value: Some(text.to_string()),
            fields: Map::new(),
            transaction: None,
        });
    }
    let json: Value = serde_json::from_str(text)
        .map_err(|err| CommandError::BadPayload(format!("invalid JSON: {err}")))?;
    match json {
        Value::String(value) => Ok(Body {
            value: Some(value),
            fields: Map::new(),
            transaction: None,
        }),
        Value::Object(mut fields) => {
            let transaction = match fields.remove("transaction") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => Some(t),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(_) => {
                    return Err(CommandError::BadPayload(
                        "`transaction` must be a string".into(),
                    ))
                }
            };
            Ok(Body {
                value: None,
                fields,
                transaction,
            })
        }
        _ => Err(CommandError::BadPayload(
            "expected a plain value or a JSON object".into(),
        )),
    }
}

impl Body {
    /// The command's value: the plain payload, or the first of `names` present in the JSON.
    fn value(&self, names: &[&str]) -> Result<Option<String>, CommandError> {
        if let Some(value) = &self.value {
            return Ok(Some(value.clone()));
        }
        for name in names.iter().chain(["value"].iter()) {
            match self.fields.get(*name) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => return Ok(Some(s.clone())),
                Some(Value::Number(n)) => return Ok(Some(n.to_string())),
                Some(Value::Bool(b)) => return Ok(Some(if *b { "on" } else { "off" }.into())),
                Some(Value::Array(items)) => {
                    let parts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                    return parts.map(|p| Some(p.join(" "))).ok_or_else(|| {
                        CommandError::BadArgument(format!("`{name}` must be a list of strings"))
                    });
                }
                Some(_) => {
                    return Err(CommandError::BadArgument(format!(
                        "`{name}` must be a string"
                    )))
                }
            }
        }
        Ok(None)
    }

    fn line(&self) -> Result<Option<u32>, CommandError> {
        match self.fields.get("line") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|n| (1..=64).contains(n))
                .map(|n| Some(n as u32))
                .ok_or_else(|| CommandError::BadArgument("`line` must be 1 to 64".into())),
            Some(Value::String(s)) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .map(Some)
                .ok_or_else(|| CommandError::BadArgument("`line` must be 1 to 64".into())),
            Some(_) => Err(CommandError::BadArgument("`line` must be a number".into())),
        }
    }
}

fn build(kind: CommandKind, body: Body) -> Result<Command, CommandError> {
    let name = kind.name();
    let arg = match kind.arg() {
        ArgKind::None => CommandArg::None,
        ArgKind::Number => {
            let raw = body.value(&["number"])?.ok_or_else(|| {
                CommandError::BadArgument(format!("`{name}` needs a number, e.g. 1001"))
            })?;
            CommandArg::Number(normalise_number(&raw)?)
        }
        ArgKind::OnOff => {
            let raw = body.value(&["state"])?.ok_or_else(|| {
                CommandError::BadArgument(format!("`{name}` needs `on` or `off`"))
            })?;
            CommandArg::OnOff(parse_on_off(&raw).ok_or_else(|| {
                CommandError::BadArgument(format!("`{raw}` is not `on` or `off`"))
            })?)
        }
        ArgKind::Text => {
            let text = body.value(&["text", "message"])?.unwrap_or_default();
            if text.trim().is_empty() {
                return Err(CommandError::BadArgument(format!("`{name}` needs a text")));
            }
            if text.chars().count() > 512 {
                return Err(CommandError::BadArgument(
                    "the text is longer than 512 characters".into(),
                ));
            }
            CommandArg::Text(text)
        }
        ArgKind::Key => {
            let raw = body.value(&["key", "keys"])?.unwrap_or_default();
            CommandArg::Keys(parse_keys(&raw)?)
        }
        ArgKind::Url => {
            let url = body.value(&["url"])?.unwrap_or_default();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(CommandError::BadArgument(format!(
                    "`{name}` needs an http(s) URL"
                )));
            }
            CommandArg::Url(url)
        }
        ArgKind::Changes => CommandArg::Changes(body.changes()?),
        ArgKind::Adoption => return Err(CommandError::UnknownCommand(name.to_string())),
    };
    let at = body.when()?;
    if at.is_some() && kind != CommandKind::Message {
        return Err(CommandError::BadArgument(format!(
            "only `message` can be scheduled with `at` or `in`, not `{name}`"
        )));
    }
    Ok(Command {
        kind,
        arg,
        line: body.line()?,
        at,
    })
}

impl Body {
    /// `{"keys": {"3": "Garage door"}, "settings": {"phone_setting.backlight_time": 60},
    /// "vendor": "yealink", "apply": true}`; `null` removes a key or setting.
    fn changes(&self) -> Result<crate::model::Changes, CommandError> {
        let bad = |text: String| CommandError::BadArgument(text);
        if self.value.is_some() {
            return Err(bad(
                "`configure` takes a JSON object: {\"keys\": {\"3\": \"Garage door\"}, \"settings\": {\"key\": \"value\"}}".into(),
            ));
        }
        if let Some(unknown) = self
            .fields
            .keys()
            .find(|k| !matches!(k.as_str(), "keys" | "settings" | "vendor" | "apply"))
        {
            return Err(bad(format!(
                "unknown field `{unknown}`; `configure` takes keys, settings, vendor and apply"
            )));
        }
        let object = |name: &str| -> Result<Vec<(String, Option<String>)>, CommandError> {
            match self.fields.get(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(key, value)| {
                        let value = match value {
                            Value::Null => None,
                            Value::String(s) => Some(s.clone()),
                            Value::Number(n) => Some(n.to_string()),
                            Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
                            _ => {
                                return Err(bad(format!(
                                    "`{name}.{key}` must be a string, a number, a boolean or null"
                                )))
                            }
                        };
                        Ok((key.clone(), value))
                    })
                    .collect(),
                Some(_) => Err(bad(format!("`{name}` must be an object"))),
            }
        };
        let keys = object("keys")?;
        let settings = object("settings")?;
        if keys.is_empty() && settings.is_empty() {
            return Err(bad("`configure` needs `keys` or `settings`".into()));
        }
        for (index, label) in &keys {
            crate::profile::check_key(index, label.as_deref().unwrap_or(""))
                .map_err(|err| bad(err.to_string()))?;
        }
        for (key, value) in &settings {
            crate::profile::check_setting(key, value.as_deref().unwrap_or(""))
                .map_err(|err| bad(err.to_string()))?;
        }
        let vendor = match self.fields.get("vendor") {
            None | Some(Value::Null) => None,
            Some(Value::String(v)) => Some(
                crate::phone_vendors::find(v)
                    .ok_or_else(|| {
                        bad(format!(
                            "unknown vendor `{v}`; known: {}",
                            crate::phone_vendors::names().join(", ")
                        ))
                    })?
                    .id
                    .to_string(),
            ),
            Some(_) => return Err(bad("`vendor` must be a string".into())),
        };
        let apply = match self.fields.get("apply") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("`apply` must be true or false".into())),
        };
        Ok(crate::model::Changes {
            keys: keys.into_iter().collect(),
            settings: settings.into_iter().collect(),
            vendor,
            apply,
        })
    }

    /// `at` (RFC 3339, e.g. `2026-11-26T15:00:00+01:00`) or `in` (`90s`, `10m`, `1h 30m`).
    fn when(&self) -> Result<Option<time::OffsetDateTime>, CommandError> {
        let text = |name: &str| match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(Value::Number(n)) if name == "in" => Ok(Some(format!("{n}s"))),
            Some(_) => Err(CommandError::BadArgument(format!(
                "`{name}` must be a string"
            ))),
        };
        match (text("at")?, text("in")?) {
            (Some(_), Some(_)) => Err(CommandError::BadArgument(
                "give `at` or `in`, not both".into(),
            )),
            (Some(at), None) => {
                time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                    .map(Some)
                    .map_err(|_| {
                        CommandError::BadArgument(format!(
                    "`at` must be an RFC 3339 time such as 2026-11-26T15:00:00+01:00, not `{at}`"
                ))
                    })
            }
            (None, Some(delay)) => {
                let duration = humantime::parse_duration(&delay).map_err(|_| {
                    CommandError::BadArgument(format!(
                        "`in` must be a duration such as 90s, 10m or 1h 30m, not `{delay}`"
                    ))
                })?;
                let duration = time::Duration::try_from(duration)
                    .map_err(|_| CommandError::BadArgument("`in` is too long".into()))?;
                // Checked: `+` panics past the calendar's end (`10000y`).
                time::OffsetDateTime::now_utc()
                    .checked_add(duration)
                    .map(Some)
                    .ok_or_else(|| CommandError::BadArgument("`in` is too long".into()))
            }
            (None, None) => Ok(None),
        }
    }
}

fn parse_on_off(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" | "enable" => Some(true),
        "off" | "false" | "0" | "no" | "disable" => Some(false),
        _ => None,
    }
}

/// Key names are vendor words (`OK`, `F1`, `L2`, `*`, `#`...). Several may be given, separated by
/// spaces or commas; each is checked so that none can carry a separator of the vendor's syntax.
fn parse_keys(raw: &str) -> Result<Vec<String>, CommandError> {
    let keys: Vec<String> = raw
        .split([' ', ','])
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return Err(CommandError::BadArgument(
            "`key` needs a key name, e.g. OK".into(),
        ));
    }
    if keys.len() > 32 {
        return Err(CommandError::BadArgument("at most 32 keys at once".into()));
    }
    for key in &keys {
        let valid = key.len() <= 24
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '*' | '#'));
        if !valid {
            return Err(CommandError::BadArgument(format!(
                "`{key}` is not a key name (letters, digits, `_`, `*`, `#`)"
            )));
        }
    }
    Ok(keys)
}

/// Normalises a dial string as docs/vendors.md §0.1 says: `tel:`/`callto:`/`sip:` prefixes go, visual
/// separators go, a leading `+` and `*`/`#` stay. `user@host` SIP targets are kept whole.
pub fn normalise_number(raw: &str) -> Result<String, CommandError> {
    let trimmed = raw.trim();
    let lower = trimmed.to_ascii_lowercase();
    let without_scheme = ["tel:", "callto:", "sips:", "sip:"]
        .iter()
        .find(|scheme| lower.starts_with(*scheme))
        .map_or(trimmed, |scheme| &trimmed[scheme.len()..]);
    let invalid = || {
        CommandError::BadArgument(format!(
            "`{raw}` is not a number: use digits with an optional leading +, * or #, or user@host"
        ))
    };
    if let Some((user, host)) = without_scheme.split_once('@') {
        let user_ok = !user.is_empty()
            && user.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '#' | '.' | '_' | '-')
            });
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        return if user_ok && host_ok {
            Ok(without_scheme.to_string())
        } else {
            Err(invalid())
        };
    }
    let mut number = String::new();
    for (index, c) in without_scheme.chars().enumerate() {
        match c {
            '0'..='9' | '*' | '#' => number.push(c),
            '+' if index == 0 || number.is_empty() => number.push(c),
            ' ' | '-' | '.' | '/' | '(' | ')' => {}
            _ => return Err(invalid()),
        }
    }
    if number.is_empty() || number == "+" {
        return Err(invalid());
    }
    if number.len() > 64 {
        return Err(CommandError::BadArgument("the number is too long".into()));
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str, payload: &str) -> Command {
        parse(name, payload.as_bytes()).1.unwrap()
    }

    fn err(name: &str, payload: &str) -> CommandError {
        parse(name, payload.as_bytes()).1.unwrap_err()
    }

    #[test]
    fn numbers_are_normalised_as_vendors_md_says() {
        assert_eq!(normalise_number("+49 30 1234").unwrap(), "+49301234");
        assert_eq!(normalise_number("tel:+49-30-(12)34").unwrap(), "+49301234");
        assert_eq!(normalise_number("callto:1001").unwrap(), "1001");
        assert_eq!(normalise_number("*21#").unwrap(), "*21#");
        assert_eq!(
            normalise_number("sip:alice@pbx.example.com").unwrap(),
            "alice@pbx.example.com"
        );
        for bad in [
            "1001&key=Reboot",
            "1001;Reboot",
            "10 01\r\nX",
            "١٢٣",
            "",
            "+",
            "12+3",
            "a@b c",
        ] {
            assert!(normalise_number(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn payload_forms() {
        assert_eq!(
            ok("dial", "+49 30 1234").arg,
            CommandArg::Number("+49301234".into())
        );
        let (transaction, command) = parse(
            "dial",
            br#"{"number": "1001", "transaction": "t-1", "line": 2}"#,
        );
        assert_eq!(transaction.as_deref(), Some("t-1"));
        let command = command.unwrap();
        assert_eq!(command.arg, CommandArg::Number("1001".into()));
        assert_eq!(command.line, Some(2));
        assert_eq!(ok("dnd", "on").arg, CommandArg::OnOff(true));
        assert_eq!(
            ok("dnd", r#"{"state": "OFF"}"#).arg,
            CommandArg::OnOff(false)
        );
        assert_eq!(ok("dnd", r#"{"value": true}"#).arg, CommandArg::OnOff(true));
        assert_eq!(ok("answer", "").arg, CommandArg::None);
        assert_eq!(
            ok("key", "F1, OK").arg,
            CommandArg::Keys(vec!["F1".into(), "OK".into()])
        );
        assert_eq!(ok("dial", "1001").kind, CommandKind::Dial);
        let reminder = ok("message", r#"{"text": "Stand-up", "in": "10m"}"#);
        let due = reminder.at.unwrap() - time::OffsetDateTime::now_utc();
        assert!(due > time::Duration::minutes(9) && due <= time::Duration::minutes(10));
        let at = ok(
            "message",
            r#"{"text": "Lunch", "at": "2030-01-02T12:00:00+01:00"}"#,
        );
        assert_eq!(at.at.unwrap().unix_timestamp(), 1893582000);
        assert!(matches!(
            err("message", r#"{"text": "x", "at": "noon"}"#),
            CommandError::BadArgument(_)
        ));
        assert!(matches!(
            err("dial", r#"{"number": "1", "in": "5m"}"#),
            CommandError::BadArgument(_)
        ));
    }

    #[test]
    fn bad_payloads_are_named() {
        assert!(matches!(
            err("dial", "{\"number\": "),
            CommandError::BadPayload(_)
        ));
        assert!(matches!(
            err("explode", ""),
            CommandError::UnknownCommand(_)
        ));
        assert!(matches!(err("dial", ""), CommandError::BadArgument(_)));
        assert!(matches!(err("dnd", "maybe"), CommandError::BadArgument(_)));
        assert!(matches!(
            err("key", "OK;Reboot"),
            CommandError::BadArgument(_)
        ));
        assert!(matches!(err("message", ""), CommandError::BadArgument(_)));
        let (transaction, result) = parse("explode", br#"{"transaction": "t-9"}"#);
        assert_eq!(transaction.as_deref(), Some("t-9"));
        assert!(result.is_err());
    }
}
