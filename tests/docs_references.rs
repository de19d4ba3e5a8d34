//! The repository's own references stay true: every `docs/vendors.md §N.M` a comment cites is a
//! heading of docs/vendors.md, every `src/...` path (and `path::item`) ARCHITECTURE.md names
//! exists, and nothing points at a file outside the repository. Pure file reading.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every text file under `dir`, recursively (binary files such as images are skipped).
fn text_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                found.push((path, text));
            }
        }
    }
    found.sort();
    found
}

/// The files whose references are checked: src/, tests/, docs/ and the top-level Markdown.
fn checked_files() -> Vec<(PathBuf, String)> {
    let root = root();
    let mut files: Vec<_> = ["src", "tests", "docs"]
        .iter()
        .flat_map(|dir| text_files(&root.join(dir)))
        .collect();
    files.extend(top_level_markdown());
    files
}

fn top_level_markdown() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root()).expect("the repository").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "md") {
            let text = std::fs::read_to_string(&path).expect("readable Markdown");
            files.push((path, text));
        }
    }
    files
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The section numbers of a Markdown file's headings: `## 1. Yealink` is `1`, `### 4.3 ...` is `4.3`.
fn section_numbers(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|line| line.trim_start_matches('#').trim_start())
        .filter_map(|title| section_number(title.split_whitespace().next()?))
        .collect()
}

/// `4.3` from `4.3`, `4.3.` or `4.3,`; `None` unless it is digits separated by dots.
fn section_number(token: &str) -> Option<String> {
    let number = token.trim_end_matches(['.', ',', ')', ':', ';']);
    let valid = !number.is_empty()
        && number
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    valid.then(|| number.to_string())
}

/// The sections cited after each `docs/vendors.md` in `text`: `§4.3`, `§3.3, §10.3`,
/// `section 5`, and in Markdown `[docs/vendors.md](vendors.md) §1.3`.
fn vendors_md_citations(text: &str) -> Vec<String> {
    let mut cited = Vec::new();
    for (at, _) in text.match_indices("docs/vendors.md") {
        let mut rest = &text[at + "docs/vendors.md".len()..];
        if let Some(link) = rest.strip_prefix("](") {
            rest = link.split_once(')').map_or("", |(_, after)| after);
        }
        loop {
            let trimmed = rest.trim_start();
            let Some(after) = trimmed
                .strip_prefix('§')
                .or_else(|| trimmed.strip_prefix("section "))
            else {
                break;
            };
            let token: String = after
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            match section_number(&token) {
                Some(number) => cited.push(number),
                None => break,
            }
            rest = &after[token.len()..];
            rest = rest
                .strip_prefix(",")
                .or_else(|| rest.strip_prefix(" and"))
                .or_else(|| rest.strip_prefix(" or"))
                .unwrap_or("");
        }
    }
    cited
}

#[test]
fn every_cited_section_of_docs_vendors_md_exists() {
    let reference = std::fs::read_to_string(root().join("docs/vendors.md"))
        .expect("docs/vendors.md, the project's wire reference");
    let sections = section_numbers(&reference);
    let mut missing = Vec::new();
    let mut count = 0;
    for (path, text) in checked_files() {
        for number in vendors_md_citations(&text) {
            count += 1;
            if !sections.contains(&number) {
                missing.push(format!("{} cites docs/vendors.md §{number}", shown(&path)));
            }
        }
    }
    assert!(
        count > 50,
        "only {count} citations found: is the parser still right?"
    );
    assert!(
        missing.is_empty(),
        "sections missing from docs/vendors.md (headings: {sections:?}):\n{}",
        missing.join("\n")
    );
}

/// `src/...` paths in `text`, each with the item it names after `::`, if any:
/// `src/agent/receiver.rs::action_url` is `("src/agent/receiver.rs", Some("action_url"))`.
fn source_paths(text: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("src/") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.') {
            continue;
        }
        let cited: String = text[at..]
            .chars()
            .take_while(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ':' | '<' | '>')
            })
            .collect();
        let cited = cited.trim_end_matches(['.', ':']);
        // `src/phone_vendors/<vendor>.rs` stands for every vendor's file.
        if cited.contains('<') {
            continue;
        }
        let (path, item) = match cited.split_once("::") {
            Some((path, item)) => (path, Some(item.rsplit("::").next().unwrap_or(item))),
            None => (cited, None),
        };
        found.push((path.to_string(), item.map(str::to_string)));
    }
    found
}

/// Whether `source` defines `item` (a function, type, static, constant or module).
fn defines(source: &str, item: &str) -> bool {
    [
        "fn", "struct", "enum", "static", "const", "trait", "type", "mod",
    ]
    .iter()
    .any(|kind| {
        source
            .match_indices(&format!("{kind} {item}"))
            .any(|(at, matched)| {
                let next = source[at + matched.len()..].chars().next();
                !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    })
}

#[test]
fn every_source_path_in_architecture_md_exists() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let cited = source_paths(&text);
    assert!(
        cited.len() > 30,
        "only {} paths found: is the parser still right?",
        cited.len()
    );
    let mut stale = Vec::new();
    for (path, item) in cited {
        let file = root().join(&path);
        if !file.exists() {
            stale.push(format!("{path} does not exist"));
            continue;
        }
        if let Some(item) = item {
            let source = std::fs::read_to_string(&file).unwrap_or_default();
            if !defines(&source, &item) {
                stale.push(format!("{path} does not define `{item}`"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "ARCHITECTURE.md is stale:\n{}",
        stale.join("\n")
    );
}

/// Markdown files of the repository, by name.
fn markdown_names() -> BTreeSet<String> {
    let root = root();
    top_level_markdown()
        .into_iter()
        .chain(text_files(&root.join("docs")))
        .filter(|(path, _)| path.extension().is_some_and(|e| e == "md"))
        .filter_map(|(path, _)| Some(path.file_name()?.to_str()?.to_string()))
        .collect()
}

/// `*.md` names in `text` (the last path segment of each).
fn markdown_mentions(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices(".md") {
        let after = text[at + 3..].chars().next();
        if after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let start = text[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .map_or(0, |i| i + 1);
        if start < at {
            found.push(&text[start..at + 3]);
        }
    }
    found
}

#[test]
fn nothing_cites_a_file_outside_the_repository() {
    let names = markdown_names();
    let mut outside = Vec::new();
    for (path, text) in checked_files() {
        if path.ends_with("tests/docs_references.rs") {
            continue;
        }
        for (number, line) in text.lines().enumerate() {
            let place = format!("{}:{}", shown(&path), number + 1);
            for pattern in ["/work/", "../shared", "shared/"] {
                if line.contains(pattern) {
                    outside.push(format!("{place}: `{pattern}` in {}", line.trim()));
                }
            }
            for name in markdown_mentions(line) {
                if !names.contains(name) {
                    outside.push(format!("{place}: {name} is not in the repository"));
                }
            }
        }
    }
    assert!(
        outside.is_empty(),
        "references to files outside the repository:\n{}",
        outside.join("\n")
    );
}

#[test]
fn the_parsers_find_what_they_should() {
    assert_eq!(
        vendors_md_citations(
            "per docs/vendors.md §4.3. Also docs/vendors.md §3.3, §10.3 and docs/vendors.md section 5."
        ),
        ["4.3", "3.3", "10.3", "5"]
    );
    assert_eq!(
        vendors_md_citations("[docs/vendors.md](vendors.md) §1.3"),
        ["1.3"]
    );
    assert_eq!(
        section_numbers("## 0. At a glance\n### 0.1 Rules\n#### 10.3 Grandstream\n## Folders\n"),
        BTreeSet::from(["0".to_string(), "0.1".into(), "10.3".into()])
    );
    assert_eq!(
        source_paths("`src/agent/receiver.rs::action_url`, `src/mqtt.rs::Mqtt::publish`, src/sim/, `src/sim/<vendor>.rs`, mysrc/x"),
        [
            ("src/agent/receiver.rs".to_string(), Some("action_url".to_string())),
            ("src/mqtt.rs".to_string(), Some("publish".to_string())),
            ("src/sim/".to_string(), None),
        ]
    );
    assert!(defines("pub async fn action_url(", "action_url"));
    assert!(!defines("pub async fn action_url_more(", "action_url"));
    assert_eq!(
        markdown_mentions("see design.md §4 and [docs](docs/vendors.md), not a.mdx"),
        ["design.md", "docs/vendors.md"]
            .iter()
            .map(|s| s.rsplit('/').next().unwrap())
            .collect::<Vec<_>>()
    );
}
