//! The crate's layers, checked from its source: the core (vocabulary and pure functions) knows
//! nothing of tasks or I/O, the runtime (agent, sessions, broker, people's side) sits above it,
//! the tools (simulators, bench, terminal client, docs, demo) on top; and no modules import
//! each other in a circle, at any depth.
//!
//! The graph is read from the text of `src/**/*.rs` (test modules and comments left out):
//! every `crate::a::b`, `super::x` and `self::x` path, and `use crate::{a, b}` groups, name the
//! module they reach. A parent and its own submodules may use each other (a `mod.rs` holds
//! what its submodules share); anything else is an arrow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module's layer. A new module must be placed here.
const CORE: &[&str] = &[
    "model",
    "phone_address",
    "topics",
    "command",
    "phone_vendors",
    "profile",
    "config",
    "hash",
    "metrics",
];
const RUNTIME: &[&str] = &[
    "shutdown",
    "supervise",
    "logging",
    "datafile",
    "mqtt",
    "broker",
    "http_front",
    "http_error",
    "tls",
    "auth",
    "phone_auth",
    "agent",
    "ha",
    "web",
    "gateway",
];
const TOOLS: &[&str] = &["sim", "bench", "client", "docs", "demo"];

/// Arrows that close a circle and are being removed elsewhere: each names its pending work.
/// Cycle detection leaves these arrows out; the layer check still applies to them.
/// A name covers the module and its submodules.
const PENDING: &[(&str, &str, &str)] = &[];

fn within(module: &str, name: &str) -> bool {
    module == name || module.starts_with(&format!("{name}::"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Core,
    Runtime,
    Tools,
}

fn layer(module: &str) -> Option<Layer> {
    let top = module.split("::").next().unwrap_or(module);
    if CORE.contains(&top) {
        Some(Layer::Core)
    } else if RUNTIME.contains(&top) {
        Some(Layer::Runtime)
    } else if TOOLS.contains(&top) {
        Some(Layer::Tools)
    } else {
        None
    }
}

/// Where an arrow was seen first: `src/agent/exchange.rs:12 crate::agent::registry::Phone`.
type Site = String;
/// module -> module it imports -> where.
type Graph = BTreeMap<String, BTreeMap<String, Site>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/agent/mod.rs` is `agent`, `src/agent/dispatch.rs` is `agent::dispatch`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The source without comments, string contents and `#[cfg(test)]` items, line numbers kept.
fn code_of(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            out.extend(rest[..end].chars().filter(|&c| c == '\n'));
            i += end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|&c| c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = rest[body..]
                .find(&close)
                .map_or(rest.len(), |e| body + e + close.len());
            out.extend(rest[..end].chars().filter(|&c| c == '\n'));
            out.push_str("\"\"");
            i += end;
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() && bytes[i + j] != b'"' {
                j += if bytes[i + j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            out.extend(rest[..end].chars().filter(|&c| c == '\n'));
            out.push_str("\"\"");
            i += end;
        } else if rest.starts_with("'\"'") || rest.starts_with("'{'") || rest.starts_with("'}'") {
            out.push_str("' '");
            i += 3;
        } else if rest.starts_with("#[cfg(test)]") {
            // The attribute and the item under it: to its closing brace, or its `;`.
            let mut depth = 0usize;
            let mut j = "#[cfg(test)]".len();
            let mut opened = false;
            while j < rest.len() {
                match bytes[i + j] {
                    b'{' => {
                        depth += 1;
                        opened = true;
                    }
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            j += 1;
                            break;
                        }
                    }
                    b';' if !opened => {
                        j += 1;
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            out.extend(rest[..j.min(rest.len())].chars().filter(|&c| c == '\n'));
            i += j.min(rest.len());
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The longest known module a path names, from `base` (`crate`: the root).
fn resolve(modules: &BTreeSet<String>, base: &str, segments: &[&str]) -> Option<String> {
    (1..=segments.len()).rev().find_map(|n| {
        let mut parts: Vec<&str> = Vec::new();
        if !base.is_empty() {
            parts.push(base);
        }
        parts.extend(&segments[..n]);
        let candidate = parts.join("::");
        modules.contains(&candidate).then_some(candidate)
    })
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    // The binary speaks of the library by its crate name, from outside it.
    files.retain(|f| f.file_name().is_some_and(|n| n != "main.rs") || f.parent() != Some(src));
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = Graph::new();
    for file in &files {
        let module = module_of(src, file);
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p).to_string();
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let shown = file
            .strip_prefix(src.parent().unwrap())
            .unwrap()
            .display()
            .to_string();
        for (number, line) in code.lines().enumerate() {
            for (start, _) in line.match_indices("::") {
                // The word before `::` must be `crate`, `super` or `self`.
                let head_start = line[..start]
                    .rfind(|c: char| !is_ident(c))
                    .map_or(0, |p| p + 1);
                let base = match &line[head_start..start] {
                    "crate" => "",
                    "super" => parent.as_str(),
                    "self" => module.as_str(),
                    _ => continue,
                };
                if head_start > 0 && line[..head_start].ends_with("::") {
                    continue;
                }
                let tail = &line[start + 2..];
                let mut targets = Vec::new();
                if let Some(group) = tail.strip_prefix('{') {
                    // `crate::{a, b::c}`: each member's first module.
                    let group = group.split('}').next().unwrap_or("");
                    for member in group.split(',') {
                        let path: Vec<&str> = member.trim().split("::").map(str::trim).collect();
                        targets.extend(resolve(&modules, base, &path));
                    }
                } else {
                    let end = tail
                        .find(|c: char| !(is_ident(c) || c == ':'))
                        .unwrap_or(tail.len());
                    let path: Vec<&str> =
                        tail[..end].split("::").filter(|s| !s.is_empty()).collect();
                    targets.extend(resolve(&modules, base, &path));
                }
                for target in targets {
                    let related = target == module
                        || target.starts_with(&format!("{module}::"))
                        || module.starts_with(&format!("{target}::"));
                    if !related {
                        let site = format!("{shown}:{} {}", number + 1, line.trim());
                        graph
                            .entry(module.clone())
                            .or_default()
                            .entry(target)
                            .or_insert(site);
                    }
                }
            }
        }
    }
    graph
}

/// The same graph with modules cut to their first `depth` segments (arrows inside one module
/// left out).
fn coarse(graph: &Graph, depth: usize) -> Graph {
    let cut = |m: &str| m.split("::").take(depth).collect::<Vec<_>>().join("::");
    let mut out = Graph::new();
    for (from, targets) in graph {
        for (to, site) in targets {
            let (a, b) = (cut(from), cut(to));
            let related =
                a == b || b.starts_with(&format!("{a}::")) || a.starts_with(&format!("{b}::"));
            if !related {
                out.entry(a)
                    .or_default()
                    .entry(b)
                    .or_insert_with(|| site.clone());
            }
        }
    }
    out
}

/// One circle, if the graph has any: its arrows in order, each with where it was seen.
fn find_cycle(graph: &Graph) -> Option<Vec<(String, String, Site)>> {
    let pending = |a: &str, b: &str| PENDING.iter().any(|(x, y, _)| within(a, x) && within(b, y));
    // Depth-first search; a grey node met again closes a circle.
    fn visit(
        node: &str,
        graph: &Graph,
        pending: &dyn Fn(&str, &str) -> bool,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if pending(node, next) {
                continue;
            }
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|m| m == next).unwrap();
                    let mut circle = stack[from..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                Some(_) => {}
                None => {
                    if let Some(found) = visit(next, graph, pending, state, stack) {
                        return Some(found);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node) {
            if let Some(circle) = visit(node, graph, &pending, &mut state, &mut Vec::new()) {
                return Some(
                    circle
                        .windows(2)
                        .map(|w| (w[0].clone(), w[1].clone(), graph[&w[0]][&w[1]].clone()))
                        .collect(),
                );
            }
        }
    }
    None
}

fn layer_top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

fn describe(circle: &[(String, String, Site)]) -> String {
    circle
        .iter()
        .map(|(a, b, site)| format!("  {a} -> {b}   ({site})"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What is wrong with a graph: unplaced modules, arrows pointing down the wrong way, circles.
fn problems(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    let mut modules: BTreeSet<&str> = BTreeSet::new();
    for (from, targets) in graph {
        modules.insert(layer_top(from));
        modules.extend(targets.keys().map(|t| layer_top(t)));
    }
    for module in modules {
        if !module.is_empty() && layer(module).is_none() {
            problems.push(format!(
                "module `{module}` has no layer: add it to CORE, RUNTIME or TOOLS in tests/layers.rs"
            ));
        }
    }
    for (from, targets) in graph {
        for (to, site) in targets {
            if let (Some(a), Some(b)) = (layer(from), layer(to)) {
                if b > a {
                    problems.push(format!(
                        "{a:?} module `{from}` imports {b:?} module `{to}`: {from} -> {to}   ({site})"
                    ));
                }
            }
        }
    }
    // Top-level modules first (the layers' own boundaries), then submodules at every depth.
    for depth in 1..=3 {
        if let Some(circle) = find_cycle(&coarse(graph, depth)) {
            let problem = format!("an import circle between modules:\n{}", describe(&circle));
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
    }
    problems
}

/// Pending arrows that no longer close a circle: their entry is to be removed, so that the
/// circle cannot come back unnoticed.
fn gone_pending(graph: &Graph) -> Vec<String> {
    PENDING
        .iter()
        .filter(|(from, to, _)| {
            // The arrow closes a circle when something it reaches leads back to where it starts.
            let starts: Vec<&String> = graph.keys().filter(|a| within(a, from)).collect();
            let mut seen: BTreeSet<&str> = BTreeSet::new();
            let mut next: Vec<&str> = starts
                .iter()
                .flat_map(|a| graph[*a].keys())
                .filter(|b| within(b, to))
                .map(String::as_str)
                .collect();
            while let Some(module) = next.pop() {
                if within(module, from) {
                    return false;
                }
                if seen.insert(module) {
                    next.extend(graph.get(module).into_iter().flat_map(|t| t.keys().map(String::as_str)));
                }
            }
            true
        })
        .map(|(from, to, _)| {
            format!("{from} -> {to} closes no circle any more: remove it from PENDING in tests/layers.rs")
        })
        .collect()
}

#[test]
fn layers_point_one_way_and_no_modules_import_each_other_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    let mut problems = problems(&graph);
    problems.extend(gone_pending(&graph));
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The check itself fails on a circle and on an arrow from the core upwards, naming the arrow.
#[test]
fn the_check_names_a_circle_and_a_wrong_arrow() {
    let mut graph = Graph::new();
    let mut arrow = |a: &str, b: &str| {
        graph
            .entry(a.into())
            .or_default()
            .insert(b.into(), format!("src/{a}.rs:1"));
    };
    arrow("agent::dispatch", "ha");
    arrow("ha", "agent::registry");
    arrow("config", "mqtt");
    let problems = problems(&graph).join("\n");
    assert!(
        problems.contains("Core module `config` imports Runtime module `mqtt`"),
        "{problems}"
    );
    assert!(
        problems.contains("agent -> ha") && problems.contains("ha -> agent"),
        "{problems}"
    );
}

#[test]
fn comments_strings_and_test_modules_are_not_code() {
    let code = code_of(
        "use crate::a;\n// crate::b\nlet s = \"crate::c\";\n#[cfg(test)]\nmod tests {\n    use crate::d;\n}\nfn f() { crate::e::g() }\n",
    );
    assert!(
        code.contains("crate::a") && code.contains("crate::e"),
        "{code}"
    );
    assert!(
        !code.contains("crate::b") && !code.contains("crate::c") && !code.contains("crate::d"),
        "{code}"
    );
    assert_eq!(code.lines().count(), 8, "{code}");
}
