//! Documentation generated from the vendor tables, so that README.md and topics.md cannot
//! drift from the code. `phone2mqtt docs` prints every block; a test checks that the committed
//! files hold the current ones, between `<!-- generated:NAME -->` and `<!-- end:NAME -->`.

use crate::model::{CommandKind, EVENTS};
use crate::phone_vendors::{Carries, PhoneOption, PhoneOptions, VendorSpec, VENDORS};

/// Every generated block: its name and its text.
pub fn blocks() -> Vec<(String, String)> {
    let mut blocks = vec![
        ("commands".to_string(), command_matrix()),
        ("events".to_string(), event_matrix()),
        ("provisioning".to_string(), provisioning_matrix()),
        ("auth".to_string(), auth_table()),
        ("phone-options".to_string(), phone_options()),
    ];
    for spec in VENDORS {
        blocks.push((format!("{}-events", spec.id), vendor_events(spec)));
        blocks.push((format!("{}-requests", spec.id), vendor_requests(spec)));
    }
    blocks
}

/// The exact request each command sends, built by the vendor's own code from sample values.
pub fn vendor_requests(spec: &VendorSpec) -> String {
    let target = crate::phone_vendors::Target {
        line: Some("1001@pbx.example.com".into()),
        call_id: Some("7".into()),
        agent_url: Some("http://192.168.1.10:8080".into()),
        password: "PASSWORD".into(),
        dnd: false,
        options: PhoneOptions {
            legacy_api: false,
            dnd_key: Some("MPK1".into()),
        }
        .read_by(spec),
    };
    let mut out = String::from("| command | value | request |\n|---|---|---|\n");
    for kind in spec.commands {
        let value = kind.def().example;
        let Ok(command) = crate::command::parse(kind.name(), value.as_bytes()).1 else {
            continue;
        };
        let request = match (spec.build)(&command, &target) {
            Ok(request) => {
                let method = match request.method {
                    crate::phone_vendors::Method::Get => "GET",
                    crate::phone_vendors::Method::Post => "POST",
                };
                format!("`{method} {}`", request.path_and_query)
            }
            Err(err) => format!("error: {err}"),
        };
        let value = if value.is_empty() {
            String::new()
        } else {
            format!("`{value}`")
        };
        out.push_str(&format!("| `{}` | {value} | {request} |\n", kind.name()));
    }
    out
}

/// What provisioning programs per vendor: keys, logo, re-provisioning, read-back.
pub fn provisioning_matrix() -> String {
    let mut out = String::from(
        "| vendor | files | programmable keys (IoT buttons) | logo | `provision` | `verify` |\n|---|---|---|---|---|---|\n",
    );
    let target = crate::phone_vendors::Target {
        password: "PASSWORD".into(),
        ..crate::phone_vendors::Target::default()
    };
    for spec in VENDORS {
        let files = spec.provision_files_doc;
        let provision = match crate::command::parse("provision", b"").1 {
            Ok(command) if spec.supports(CommandKind::Provision) => {
                match (spec.build)(&command, &target) {
                    Ok(request) => format!("`{}`", request.path_and_query),
                    Err(_) => "–".into(),
                }
            }
            _ => "–".into(),
        };
        let verify = if spec.read_config.is_some() {
            "reads the settings back from the phone"
        } else {
            "compares what it was served"
        };
        out.push_str(&format!(
            "| {} | {files} | {} | {} | {provision} | {verify} |\n",
            spec.name, spec.programming.key_doc, spec.programming.logo_doc
        ));
    }
    out
}

/// The `[[phone]]` options only some vendors read (`VendorSpec::options`), with what each does.
pub fn phone_options() -> String {
    let mut out = String::from("| `[[phone]]` key | vendor | meaning |\n|---|---|---|\n");
    for option in PhoneOption::ALL {
        for spec in VENDORS {
            if let Some(read) = spec.options.iter().find(|read| read.option == *option) {
                out.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    option.key(),
                    spec.name,
                    read.doc
                ));
            }
        }
    }
    out
}

/// How each vendor's phones get their admin password.
pub fn auth_table() -> String {
    let mut out = String::from("| vendor | the phone's admin password is sent |\n|---|---|\n");
    for spec in VENDORS {
        out.push_str(&format!(
            "| {} | {} |\n",
            spec.name,
            spec.http_auth.describe()
        ));
    }
    out
}

/// Vendors down, normalised commands across.
pub fn command_matrix() -> String {
    let mut out = String::from("| vendor |");
    for kind in CommandKind::phone_commands() {
        out.push_str(&format!(" {} |", kind.name()));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(CommandKind::phone_commands().count()));
    out.push('\n');
    for spec in VENDORS {
        out.push_str(&format!("| {} |", spec.name));
        for kind in CommandKind::phone_commands() {
            out.push_str(if spec.supports(kind) {
                " ✓ |"
            } else {
                " – |"
            });
        }
        out.push('\n');
    }
    out
}

/// Normalised events down (too many to fit across), with what each means, vendors across.
pub fn event_matrix() -> String {
    let mut out = String::from("| event | meaning |");
    for spec in VENDORS {
        out.push_str(&format!(" {} |", spec.name));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(VENDORS.len()));
    out.push('\n');
    let reports = |spec: &VendorSpec, kind| spec.events.iter().any(|e| e.event == kind);
    for def in EVENTS {
        if !VENDORS.iter().any(|spec| reports(spec, def.kind)) {
            continue;
        }
        out.push_str(&format!("| `{}` | {} |", def.name, def.doc));
        for spec in VENDORS {
            out.push_str(if reports(spec, def.kind) {
                " ✓ |"
            } else {
                " – |"
            });
        }
        out.push('\n');
    }
    out
}

/// One vendor's Action URL events: its setting, the normalised name, what the URL carries.
pub fn vendor_events(spec: &VendorSpec) -> String {
    let mut out = format!(
        "| {} setting | event | `forward` | variables sent |\n|---|---|---|---|\n",
        spec.name
    );
    for event in spec.events {
        let carries = match event.carries {
            Carries::Device => "device",
            Carries::Account => "device, account",
            Carries::Call => "device, account, call",
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            event.setting,
            event.event,
            event.forward.map(|f| format!("`{f}`")).unwrap_or_default(),
            carries
        ));
    }
    out
}

/// Replaces each generated block in `text` with its current content.
pub fn refresh(text: &str) -> String {
    let mut out = text.to_string();
    for (name, content) in blocks() {
        let open = format!("<!-- generated:{name} -->\n");
        let close = format!("<!-- end:{name} -->");
        if let (Some(start), Some(end)) = (out.find(&open), out.find(&close)) {
            if start < end {
                out.replace_range(start + open.len()..end, &content);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed docs hold the tables the code generates (run `phone2mqtt docs --write`).
    #[test]
    fn committed_docs_are_current() {
        for file in ["README.md", "topics.md"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(
                refresh(&text),
                text,
                "{file} is out of date: run `cargo run -- docs --write`"
            );
        }
        let topics = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topics.md"),
        )
        .unwrap();
        for spec in VENDORS {
            for table in ["events", "requests"] {
                assert!(
                    topics.contains(&format!("<!-- generated:{}-{table} -->", spec.id)),
                    "topics.md has no {table} table for {}",
                    spec.id
                );
            }
        }
    }
}
