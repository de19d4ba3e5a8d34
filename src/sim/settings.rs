//! How simulated phones read every setting of their provisioning files (not only the Action
//! URLs): the site's SIP accounts, programmable keys, the logo, pushed settings. Written from the
//! vendors' file formats (docs/vendor-keys-research.md), apart from the agent's writers, so that
//! a writer that drifts from the format is caught by the phone that cannot read it.

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;

pub type Settings = BTreeMap<String, String>;

/// `key = value` lines (Yealink); `#` starts a comment, `include:config` lines are not settings.
pub fn read_key_value(text: &str, settings: &mut Settings) {
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with("include:") {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let (key, value) = (key.trim(), value.trim());
            if !key.is_empty() {
                settings.insert(key.to_string(), value.to_string());
            }
        }
    }
}

/// The files a Yealink boot file includes, in order.
pub fn boot_includes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("include:config"))
        .map(|rest| rest.trim().trim_matches('"').to_string())
        .filter(|file| !file.is_empty())
        .collect()
}

/// One leaf element of an XML file.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// Element names from below the root to the leaf.
    pub path: Vec<String>,
    pub attrs: BTreeMap<String, String>,
    pub text: String,
}

/// Every element without child elements, with its path and attributes; unreadable XML gives
/// what was read before the error (a phone ignores the rest of a broken file).
pub fn xml_leaves(text: &str) -> Vec<Leaf> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<(String, BTreeMap<String, String>, String, bool)> = Vec::new();
    let mut leaves = Vec::new();
    let attrs_of = |start: &quick_xml::events::BytesStart| {
        start
            .attributes()
            .flatten()
            .map(|a| {
                (
                    String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map(|v| v.into_owned())
                        .unwrap_or_default(),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let path_of = |stack: &[(String, BTreeMap<String, String>, String, bool)], name: String| {
        let mut path: Vec<String> = stack.iter().skip(1).map(|(n, ..)| n.clone()).collect();
        if !stack.is_empty() {
            path.push(name);
        }
        path
    };
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) => {
                if let Some(parent) = stack.last_mut() {
                    parent.3 = true;
                }
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                stack.push((name, attrs_of(&start), String::new(), false));
            }
            Ok(Event::Empty(start)) => {
                if let Some(parent) = stack.last_mut() {
                    parent.3 = true;
                }
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                leaves.push(Leaf {
                    path: path_of(&stack, name),
                    attrs: attrs_of(&start),
                    text: String::new(),
                });
            }
            Ok(Event::Text(text)) => {
                if let Some(top) = stack.last_mut() {
                    if let Ok(text) = text.decode() {
                        top.2
                            .push_str(&quick_xml::escape::unescape(&text).unwrap_or(text.clone()));
                    }
                }
            }
            Ok(Event::GeneralRef(reference)) => {
                if let Some(top) = stack.last_mut() {
                    let name = String::from_utf8_lossy(&reference).into_owned();
                    let entity = match name.as_str() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    };
                    top.2.push_str(entity);
                }
            }
            Ok(Event::CData(data)) => {
                if let Some(top) = stack.last_mut() {
                    top.2.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Ok(Event::End(_)) => {
                let Some((name, attrs, text, has_children)) = stack.pop() else {
                    break;
                };
                if !has_children && !stack.is_empty() {
                    leaves.push(Leaf {
                        path: path_of(&stack, name),
                        attrs,
                        text: text.trim().to_string(),
                    });
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    leaves
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_with_paths_attributes_and_entities() {
        let leaves = xml_leaves(
            r#"<?xml version="1.0"?><settings><phone-settings><a perm="">x &amp; y</a><b idx="1"/></phone-settings><functionKeys><fkey idx="2" label="Gate">url http://h/k?a=1&amp;b=2</fkey></functionKeys></settings>"#,
        );
        assert_eq!(leaves.len(), 3);
        assert_eq!(leaves[0].path, vec!["phone-settings", "a"]);
        assert_eq!(leaves[0].text, "x & y");
        assert_eq!(leaves[1].attrs["idx"], "1");
        assert_eq!(leaves[2].text, "url http://h/k?a=1&b=2");
        assert_eq!(leaves[2].attrs["label"], "Gate");
        let mut settings = Settings::new();
        read_key_value(
            "#!version:1.0.0.1\naccount.1.user_name = 1001\ninclude:config \"x\"\n",
            &mut settings,
        );
        assert_eq!(settings["account.1.user_name"], "1001");
        assert_eq!(
            boot_includes("#!version:1.0.0.1\ninclude:config \"http://a/b.cfg\"\n"),
            vec!["http://a/b.cfg"]
        );
    }
}
