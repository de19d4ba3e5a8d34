//! Merging provisioning files: the site's own file (from its `upstream` server) with the
//! settings phone2mqtt adds, so that nothing the site provisions is lost.
//!
//! Two formats cover every vendor: `key = value` text (Yealink) and XML (the others). In both,
//! a setting phone2mqtt writes replaces the site's setting of the same name in place; every other
//! line or element of the site's file is kept as it was, comments included.

use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::{Reader, Writer};

/// Why two files could not be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MergeError(pub String);

/// The key of a `key = value` line; `None` for comments, blanks and `#!version` headers.
fn text_key(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    line.split_once('=').map(|(key, _)| key.trim())
}

/// Lines without their `\n` or `\r\n`, and without the `\r`s that end them (written back
/// with `\n`, they would read as a different line).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|line| line.trim_end_matches('\r'))
}

/// Merges `key = value` files: the site's lines stay in order, a key phone2mqtt sets replaces
/// the site's line for it, and the rest of phone2mqtt's lines follow. `header` (e.g.
/// `#!version:1.0.0.1`) stays the first line, as the phone requires.
pub fn merge_text(site: &str, ours: &str, header: &str) -> String {
    let mut ours_by_key: Vec<(&str, &str, bool)> = lines(ours)
        .filter_map(|line| text_key(line).map(|key| (key, line, false)))
        .collect();
    let mut out = String::with_capacity(site.len() + ours.len());
    out.push_str(header);
    out.push('\n');
    for line in lines(site) {
        if line.trim() == header {
            continue;
        }
        let Some(key) = text_key(line).filter(|key| ours_by_key.iter().any(|(k, _, _)| k == key))
        else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        // Our lines for the key take the site's places in turn; its further lines go. So a file
        // that is already merged comes out as it went in, even where we set a key twice.
        if let Some((_, replacement, used)) = ours_by_key
            .iter_mut()
            .find(|(k, _, used)| *k == key && !*used)
        {
            out.push_str(replacement);
            out.push('\n');
            *used = true;
        }
    }
    let mut wrote_banner = false;
    // Our keyed lines in order are `ours_by_key` in order: the n-th is pending if the site's
    // lines did not take it (matching by text instead would pair a repeated line with the
    // wrong entry, and a second merge would reorder them).
    let mut entries = ours_by_key.iter();
    for line in lines(ours) {
        if line.trim() == header {
            continue;
        }
        let pending = match text_key(line) {
            Some(_) => entries.next().is_some_and(|(_, _, used)| !*used),
            // Our comments come along with our settings, once.
            None => !line.trim().is_empty() && !lines(site).any(|l| l == line),
        };
        if pending {
            if !wrote_banner {
                out.push('\n');
                wrote_banner = true;
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// One XML node: an element with its children, or anything else kept as it was read.
#[derive(Debug, Clone)]
enum Node {
    Element(Element),
    Other(Event<'static>),
}

#[derive(Debug, Clone)]
struct Element {
    start: BytesStart<'static>,
    children: Vec<Node>,
    /// Written as `<tag/>`.
    empty: bool,
}

impl Element {
    /// What makes two elements "the same setting": the tag, plus its `name` or `idx`
    /// attribute where it has one (Grandstream `<item name=...>`, Snom `<fkey idx=...>`).
    fn identity(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let key = self.start.attributes().flatten().find_map(|attr| {
            matches!(attr.key.as_ref(), b"name" | b"idx").then(|| attr.value.into_owned())
        });
        (self.start.name().as_ref().to_vec(), key)
    }

    fn has_child_elements(&self) -> bool {
        self.children
            .iter()
            .any(|node| matches!(node, Node::Element(_)))
    }

    fn name(&self) -> String {
        String::from_utf8_lossy(self.start.name().as_ref()).into_owned()
    }
}

/// A parsed document: what precedes the root (declaration, comments) and the root.
#[derive(Debug)]
struct Document {
    prolog: Vec<Event<'static>>,
    root: Element,
}

fn parse(text: &str, which: &str) -> Result<Document, MergeError> {
    let mut reader = Reader::from_str(text);
    let mut prolog = Vec::new();
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let bad = |detail: String| MergeError(format!("{which} file is not well-formed XML: {detail}"));
    loop {
        let event = reader
            .read_event()
            .map_err(|err| bad(format!("{err} at byte {}", reader.buffer_position())))?
            .into_owned();
        match event {
            Event::Eof => break,
            Event::Start(start) => stack.push(Element {
                start,
                children: Vec::new(),
                empty: false,
            }),
            Event::Empty(start) => {
                let element = Element {
                    start,
                    children: Vec::new(),
                    empty: true,
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None if root.is_none() => root = Some(element),
                    None => return Err(bad("more than one root element".into())),
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| bad("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None if root.is_none() => root = Some(element),
                    None => return Err(bad("more than one root element".into())),
                }
            }
            other => match stack.last_mut() {
                Some(parent) => parent.children.push(Node::Other(other)),
                None if root.is_none() => prolog.push(other),
                // Whitespace after the root is dropped.
                None => {}
            },
        }
    }
    if !stack.is_empty() {
        return Err(bad(format!("<{}> is never closed", stack[0].name())));
    }
    let root = root.ok_or_else(|| bad("no root element".into()))?;
    Ok(Document { prolog, root })
}

/// Puts every setting of `ours` into `site`: the same element (by tag and `name`/`idx`) is
/// replaced where it stands, sections present in both are merged, the rest is appended.
fn merge_element(site: &mut Element, ours: Element) {
    let mut taken = vec![false; site.children.len()];
    for node in ours.children {
        let Node::Element(ours_child) = node else {
            continue;
        };
        let identity = ours_child.identity();
        // A repeated element of ours takes the next site element of its identity, not one
        // already taken or appended: merging a merged file changes nothing.
        let existing = site
            .children
            .iter_mut()
            .zip(taken.iter_mut())
            .find_map(|(node, taken)| match node {
                Node::Element(child) if !*taken && child.identity() == identity => {
                    *taken = true;
                    Some(child)
                }
                _ => None,
            });
        match existing {
            Some(child) if child.has_child_elements() && ours_child.has_child_elements() => {
                merge_element(child, ours_child)
            }
            Some(child) => *child = ours_child,
            None => {
                site.children.push(Node::Element(ours_child));
                site.empty = false;
            }
        }
    }
}

fn write_element(writer: &mut Writer<Vec<u8>>, element: &Element) -> std::io::Result<()> {
    if element.empty && element.children.is_empty() {
        return writer.write_event(Event::Empty(element.start.borrow()));
    }
    writer.write_event(Event::Start(element.start.borrow()))?;
    for child in &element.children {
        match child {
            Node::Element(child) => write_element(writer, child)?,
            Node::Other(event) => writer.write_event(event.borrow())?,
        }
    }
    let name = element.name();
    writer.write_event(Event::End(BytesEnd::new(name)))
}

/// Merges two XML provisioning files with the same root element (`<gs_provision>`,
/// `<settings>`, `<sysConf>`...). The site's declaration, comments and order are kept.
pub fn merge_xml(site: &str, ours: &str) -> Result<String, MergeError> {
    let mut site = parse(site, "the site's")?;
    let ours = parse(ours, "phone2mqtt's")?;
    if site.root.start.name().as_ref() != ours.root.start.name().as_ref() {
        return Err(MergeError(format!(
            "the site's file is a <{}> document, phone2mqtt's is <{}>: they cannot be merged",
            site.root.name(),
            ours.root.name()
        )));
    }
    merge_element(&mut site.root, ours.root);
    let mut writer = Writer::new(Vec::new());
    let write = |writer: &mut Writer<Vec<u8>>| -> std::io::Result<()> {
        for event in &site.prolog {
            writer.write_event(event.borrow())?;
        }
        write_element(writer, &site.root)?;
        writer.get_mut().push(b'\n');
        Ok(())
    };
    write(&mut writer).map_err(|err| MergeError(format!("cannot write the merged file: {err}")))?;
    let merged = String::from_utf8(writer.into_inner())
        .map_err(|_| MergeError("the merged file is not UTF-8".into()))?;
    // The reader forgives some broken XML that, written back, no longer reads (found by
    // fuzzing): refused here rather than served to a phone.
    parse(&merged, "the merged")?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_keep_the_sites_lines_and_replace_ours() {
        let site = "#!version:1.0.0.1\n# site\naccount.1.user_name = 1001\naction_url.incoming_call = http://old\nlinekey.3.type = 15\n";
        let ours = "#!version:1.0.0.1\n## phone2mqtt\naction_url.incoming_call = http://agent/x\nlinekey.3.type = 13\nfeatures.action_uri.enable = 1\n";
        let merged = merge_text(site, ours, "#!version:1.0.0.1");
        assert!(merged.starts_with("#!version:1.0.0.1\n# site\naccount.1.user_name = 1001\naction_url.incoming_call = http://agent/x\nlinekey.3.type = 13\n"), "{merged}");
        assert!(
            merged.ends_with("## phone2mqtt\nfeatures.action_uri.enable = 1\n"),
            "{merged}"
        );
        assert_eq!(merged.matches("#!version").count(), 1);
        assert!(!merged.contains("http://old"));
    }

    #[test]
    fn xml_settings_replace_in_place_and_sections_merge() {
        let site = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- from the PBX -->
<gs_provision version="1"><mac>000b82aabbcc</mac><config version="1"><P35>1001</P35><P8310>http://old</P8310></config></gs_provision>"#;
        let ours = r#"<?xml version="1.0" encoding="UTF-8"?><gs_provision version="1"><config version="1"><P8310>http://agent/a?x=1&amp;y=2</P8310><P1>v</P1></config></gs_provision>"#;
        let merged = merge_xml(site, ours).unwrap();
        assert!(merged.contains("<!-- from the PBX -->"));
        assert!(
            merged.contains(
                "<P35>1001</P35><P8310>http://agent/a?x=1&amp;y=2</P8310><P1>v</P1></config>"
            ),
            "{merged}"
        );
        assert!(merged.contains("<mac>000b82aabbcc</mac>"));
        assert!(!merged.contains("http://old"));
    }

    #[test]
    fn xml_identity_uses_name_and_idx() {
        let site = r#"<settings><functionKeys><fkey idx="0" context="active">line</fkey><fkey idx="2" context="active">speed 5</fkey></functionKeys><phone-settings><user_name idx="1">1001</user_name></phone-settings></settings>"#;
        let ours = r#"<settings><phone-settings><action_incoming_url perm="">http://a</action_incoming_url></phone-settings><functionKeys><fkey idx="2" context="active" perm="">url http://a/key</fkey></functionKeys></settings>"#;
        let merged = merge_xml(site, ours).unwrap();
        assert!(merged.contains(r#"<fkey idx="0" context="active">line</fkey><fkey idx="2" context="active" perm="">url http://a/key</fkey></functionKeys>"#), "{merged}");
        assert!(merged.contains(r#"<user_name idx="1">1001</user_name><action_incoming_url perm="">http://a</action_incoming_url>"#), "{merged}");
    }

    #[test]
    fn xml_errors_name_the_file() {
        let err = merge_xml("<a><b></a>", "<a/>").unwrap_err();
        assert!(err.0.contains("the site's file"), "{err}");
        let err = merge_xml("<settings/>", "<gs_provision/>").unwrap_err();
        assert!(err.0.contains("<settings>"), "{err}");
        assert!(merge_xml("", "<a/>").is_err());
    }
}
