//! The one XML reader of the simulated phones: every provisioning file and pushed screen that is
//! XML is read here, with quick-xml, into its leaf elements. The personalities then pick what
//! their vendor's phone reads out of the leaves.

use std::collections::BTreeMap;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;

/// An element's attributes by name, values unescaped.
pub type Attrs = BTreeMap<String, String>;

/// One leaf element of an XML file.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// Element names from below the root to the leaf.
    pub path: Vec<String>,
    /// The attributes of the elements of `path` above the leaf, in the same order (so
    /// `outer[0]` belongs to `path[0]`).
    pub outer: Vec<Attrs>,
    pub attrs: Attrs,
    /// The text, entities resolved, trimmed.
    pub text: String,
}

impl Leaf {
    /// The leaf element's own name.
    pub fn name(&self) -> &str {
        self.path.last().map_or("", String::as_str)
    }

    /// The name of the element the leaf is in, if it is below the root's children.
    pub fn parent(&self) -> Option<&str> {
        self.path
            .len()
            .checked_sub(2)
            .map(|i| self.path[i].as_str())
    }
}

/// An element being read: its name, attributes, text so far, and whether it has children.
struct Open {
    name: String,
    attrs: Attrs,
    text: String,
    has_children: bool,
}

/// Every element without child elements, with its path and attributes; comments are skipped,
/// and unreadable XML gives what was read before the error (a phone ignores the rest of a
/// broken file).
pub fn xml_leaves(text: &str) -> Vec<Leaf> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut leaves = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) => {
                if let Some(parent) = stack.last_mut() {
                    parent.has_children = true;
                }
                stack.push(Open {
                    name: name_of(&start),
                    attrs: attrs_of(&start),
                    text: String::new(),
                    has_children: false,
                });
            }
            Ok(Event::Empty(start)) => {
                if let Some(parent) = stack.last_mut() {
                    parent.has_children = true;
                }
                if !stack.is_empty() {
                    leaves.push(leaf(
                        &stack,
                        name_of(&start),
                        attrs_of(&start),
                        String::new(),
                    ));
                }
            }
            Ok(Event::Text(text)) => {
                if let (Some(top), Ok(text)) = (stack.last_mut(), text.decode()) {
                    top.text
                        .push_str(&quick_xml::escape::unescape(&text).unwrap_or(text.clone()));
                }
            }
            Ok(Event::GeneralRef(reference)) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolve(&reference));
                }
            }
            Ok(Event::CData(data)) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Ok(Event::End(_)) => {
                let Some(open) = stack.pop() else {
                    break;
                };
                if !open.has_children && !stack.is_empty() {
                    let text = open.text.trim().to_string();
                    leaves.push(leaf(&stack, open.name, open.attrs, text));
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    leaves
}

/// A leaf named `name` inside the open elements `stack` (the root not counted in its path).
fn leaf(stack: &[Open], name: String, attrs: Attrs, text: String) -> Leaf {
    let inner = stack.get(1..).unwrap_or_default();
    let mut path: Vec<String> = inner.iter().map(|open| open.name.clone()).collect();
    path.push(name);
    Leaf {
        path,
        outer: inner.iter().map(|open| open.attrs.clone()).collect(),
        attrs,
        text,
    }
}

fn name_of(start: &BytesStart) -> String {
    String::from_utf8_lossy(start.name().as_ref()).into_owned()
}

fn attrs_of(start: &BytesStart) -> Attrs {
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
        .collect()
}

/// The text of `&name;` or `&#N;`: the five XML entities and character references; any other
/// entity reads as nothing, as no phone's file defines its own.
fn resolve(reference: &BytesRef) -> String {
    if let Ok(Some(c)) = reference.resolve_char_ref() {
        return c.to_string();
    }
    let name: &[u8] = reference;
    match name {
        b"amp" => "&",
        b"lt" => "<",
        b"gt" => ">",
        b"quot" => "\"",
        b"apos" => "'",
        _ => "",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_with_paths_attributes_and_entities() {
        let leaves = xml_leaves(
            r#"<?xml version="1.0"?><settings><phone-settings><a perm="">x &amp; y&#33;</a><b idx="1"/></phone-settings><functionKeys><fkey idx="2" label="Gate">url http://h/k?a=1&amp;b=2</fkey></functionKeys><!-- <c>no</c> --></settings>"#,
        );
        assert_eq!(leaves.len(), 3);
        assert_eq!(leaves[0].path, vec!["phone-settings", "a"]);
        assert_eq!(leaves[0].parent(), Some("phone-settings"));
        assert_eq!(leaves[0].text, "x & y!");
        assert_eq!(leaves[1].attrs["idx"], "1");
        assert_eq!(leaves[2].name(), "fkey");
        assert_eq!(leaves[2].text, "url http://h/k?a=1&b=2");
        assert_eq!(leaves[2].attrs["label"], "Gate");
        let nested = xml_leaves(r#"<r><config version="2"><item name="x">v</item></config></r>"#);
        assert_eq!(nested[0].outer[0]["version"], "2");
        assert_eq!(nested[0].attrs["name"], "x");
    }
}
