//! The layering of `server/src`, checked by reading the source.
//!
//! Each file is lexed (comments, strings and characters removed), its `crate::`, `super::` and
//! `self::` paths are resolved to module paths (`use crate::{a, b::{c}}` groups included), and the
//! rules of `ARCHITECTURE.md` are checked on the result:
//!
//! - domain modules (every top-level module but the edges `cli`, `lsp`, `mcp` and `workspace`)
//!   never name an edge;
//! - the two protocol front ends, `lsp` and `mcp`, never name each other nor `cli`;
//! - only `lsp` names `tower_lsp_server` or `ls_types`, only `mcp` names `rmcp`;
//! - only `cli/output.rs` uses the print macros (test code aside);
//! - no cycle between top-level modules, nor between the direct submodules of `workflow` and of
//!   `escalate`.
//!
//! It does not see through re-exports or glob imports: a module that names `crate::workflow::X`
//! depends on `workflow`, whichever submodule `X` comes from.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The modules at the edge: they may depend on the domain, never the other way round.
const EDGES: &[&str] = &["cli", "lsp", "mcp", "workspace"];
/// The protocol front ends: each stands beside the other on the loop and the domain.
const FRONT_ENDS: &[&str] = &["lsp", "mcp"];
/// The only modules that may name the LSP library.
const LSP_CRATES: &[&str] = &["tower_lsp_server", "ls_types"];
/// Modules whose direct submodules must not form a cycle either.
const ACYCLIC_INSIDE: &[&str] = &["workflow", "escalate"];

#[test]
fn domain_modules_never_import_the_edges() {
    let crate_ = Crate::read();
    let mut errors = String::new();
    for file in &crate_.files {
        let Some(top) = file.module.first() else { continue };
        if EDGES.contains(&top.as_str()) {
            continue;
        }
        for r in &file.refs {
            if let Some(target) = r.path.first()
                && EDGES.contains(&target.as_str())
            {
                writeln!(
                    errors,
                    "{}:{}: domain module `{top}` imports `{}`",
                    file.display,
                    r.line,
                    r.path.join("::")
                )
                .unwrap();
            }
        }
    }
    assert!(errors.is_empty(), "domain modules must not reach the loop, LSP or the CLI:\n{errors}");
}

#[test]
fn only_lsp_names_the_lsp_library() {
    let crate_ = Crate::read();
    let mut errors = String::new();
    for file in &crate_.files {
        if file.module.first().map(String::as_str) == Some("lsp") {
            continue;
        }
        for (ident, line) in &file.idents {
            if LSP_CRATES.contains(&ident.as_str()) {
                writeln!(errors, "{}:{line}: `{ident}` outside `lsp`", file.display).unwrap();
            }
        }
    }
    assert!(errors.is_empty(), "only server/src/lsp may use the LSP library:\n{errors}");
}

#[test]
fn front_ends_never_reach_into_each_other() {
    let crate_ = Crate::read();
    let mut errors = String::new();
    for file in &crate_.files {
        let Some(top) = file.module.first() else { continue };
        if !FRONT_ENDS.contains(&top.as_str()) {
            continue;
        }
        for r in &file.refs {
            if let Some(target) = r.path.first()
                && target != top
                && (FRONT_ENDS.contains(&target.as_str()) || target == "cli")
            {
                writeln!(errors, "{}:{}: `{top}` imports `{}`", file.display, r.line, r.path.join("::"))
                    .unwrap();
            }
        }
    }
    assert!(errors.is_empty(), "`lsp` and `mcp` stand beside each other:\n{errors}");
}

#[test]
fn only_mcp_names_the_mcp_library() {
    let crate_ = Crate::read();
    let mut errors = String::new();
    for file in &crate_.files {
        if file.module.first().map(String::as_str) == Some("mcp") {
            continue;
        }
        for (ident, line) in &file.idents {
            if ident == "rmcp" {
                writeln!(errors, "{}:{line}: `rmcp` outside `mcp`", file.display).unwrap();
            }
        }
    }
    assert!(errors.is_empty(), "only server/src/mcp may use the MCP library:\n{errors}");
}

#[test]
fn only_cli_output_prints() {
    let crate_ = Crate::read();
    let mut errors = String::new();
    for file in &crate_.files {
        if file.module == ["cli", "output"] || file.test_only {
            continue;
        }
        for (name, line) in &file.macros {
            let printing = ["print", "println", "eprint", "eprintln", "dbg"].contains(&name.as_str());
            if printing && !file.test_lines.iter().any(|range| range.contains(line)) {
                writeln!(errors, "{}:{line}: `{name}!` outside cli/output.rs", file.display).unwrap();
            }
        }
    }
    assert!(errors.is_empty(), "stdout is JSON-RPC's; print through cli/output.rs:\n{errors}");
}

#[test]
fn no_cycle_between_top_level_modules() {
    let crate_ = Crate::read();
    let tops = crate_.submodules(&[]);
    let graph = crate_.graph(&[], &tops);
    if let Some(cycle) = find_cycle(&graph) {
        panic!("top-level modules import each other: {cycle}");
    }
}

#[test]
fn no_cycle_between_submodules() {
    let crate_ = Crate::read();
    let mut errors = String::new();
    for parent in ACYCLIC_INSIDE {
        let parent = [parent.to_string()];
        let subs = crate_.submodules(&parent);
        assert!(!subs.is_empty(), "`{}` has no submodules: the list in this test is out of date", parent[0]);
        let graph = crate_.graph(&parent, &subs);
        if let Some(cycle) = find_cycle(&graph) {
            writeln!(errors, "inside `{}`: {cycle}", parent[0]).unwrap();
        }
    }
    assert!(errors.is_empty(), "submodules import each other:\n{errors}");
}

/// The checker itself: a cycle is found and named, groups and `super` are resolved.
#[test]
fn the_checker_sees_groups_super_and_cycles() {
    let source = "use crate::{a::{b, c::D}, e};\nmod inner { use super::super::f::G; }\n\
                  // crate::comment\nconst S: &str = \"crate::string\";\nfn x<'a>(c: char) { let _ = '\"'; crate::h::i(); }";
    let file = SourceFile::parse(PathBuf::from("m/n.rs"), vec!["m".into(), "n".into()], source, false);
    let paths: Vec<String> = file.refs.iter().map(|r| r.path.join("::")).collect();
    assert_eq!(paths, ["a::b", "a::c::D", "e", "m::f::G", "h::i"]);

    // A domain file reaching the loop through a group and LSP through a `super` chain.
    let domain = SourceFile::parse(
        PathBuf::from("escalate/engine.rs"),
        vec!["escalate".into(), "engine".into()],
        "use crate::{config, workspace::now_ms};\nfn f() { super::super::lsp::send(); }",
        false,
    );
    let tops: Vec<&str> = domain.refs.iter().map(|r| r.path[0].as_str()).collect();
    assert_eq!(tops, ["config", "workspace", "lsp"]);

    let mut graph = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        graph.entry(from.into()).or_default().insert(to.into(), format!("{from}.rs:1"));
    }
    assert_eq!(find_cycle(&graph).unwrap(), "a -> b (a.rs:1) -> c (b.rs:1) -> a (c.rs:1)");
}

/// A resolved path and the line it was written on.
struct Ref {
    path: Vec<String>,
    line: usize,
}

struct SourceFile {
    display: String,
    /// Module path from the crate root (`workflow/actions/http.rs` is `["workflow", "actions", "http"]`).
    module: Vec<String>,
    refs: Vec<Ref>,
    idents: Vec<(String, usize)>,
    /// Macro invocations: name and line.
    macros: Vec<(String, usize)>,
    /// Line ranges of inline `#[cfg(test)]` modules.
    test_lines: Vec<std::ops::RangeInclusive<usize>>,
    /// The file is a module declared under `#[cfg(test)]` (or inside one).
    test_only: bool,
    /// Names of modules declared `#[cfg(test)] mod name;` in this file.
    test_children: Vec<String>,
}

struct Crate {
    files: Vec<SourceFile>,
}

/// Module → module it imports → where (first occurrence).
type Graph = BTreeMap<String, BTreeMap<String, String>>;

impl Crate {
    fn read() -> Crate {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        collect(&root, &mut paths);
        paths.sort();
        let mut files: Vec<SourceFile> = paths
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n != "main.rs"))
            .map(|path| {
                let relative = path.strip_prefix(&root).unwrap();
                let mut module: Vec<String> =
                    relative.with_extension("").iter().map(|c| c.to_string_lossy().into_owned()).collect();
                if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                    module.pop();
                }
                let source = std::fs::read_to_string(path).unwrap();
                SourceFile::parse(PathBuf::from("server/src").join(relative), module, &source, false)
            })
            .collect();
        // A file declared `#[cfg(test)] mod x;` is test code, and so is everything under it.
        let test_roots: BTreeSet<Vec<String>> = files
            .iter()
            .flat_map(|f| f.test_children.iter().map(|c| [f.module.clone(), vec![c.clone()]].concat()))
            .collect();
        for file in &mut files {
            file.test_only = test_roots.iter().any(|root| file.module.starts_with(root));
        }
        Crate { files }
    }

    /// The direct submodules of `parent`, from the files on disk.
    fn submodules(&self, parent: &[String]) -> BTreeSet<String> {
        self.files
            .iter()
            .filter(|f| f.module.len() > parent.len() && f.module.starts_with(parent))
            .map(|f| f.module[parent.len()].clone())
            .collect()
    }

    /// Which of `members` (direct submodules of `parent`) imports which, test code included.
    fn graph(&self, parent: &[String], members: &BTreeSet<String>) -> Graph {
        let mut graph = Graph::new();
        for file in &self.files {
            if file.module.len() <= parent.len() || !file.module.starts_with(parent) {
                continue;
            }
            let from = &file.module[parent.len()];
            for r in &file.refs {
                if r.path.len() <= parent.len() || !r.path.starts_with(parent) {
                    continue;
                }
                let to = &r.path[parent.len()];
                if to != from && members.contains(to) {
                    graph
                        .entry(from.clone())
                        .or_default()
                        .entry(to.clone())
                        .or_insert_with(|| format!("{}:{}", file.display, r.line));
                }
            }
        }
        graph
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first cycle found, as `a -> b (where a imports b) -> ... -> a (where)`.
fn find_cycle(graph: &Graph) -> Option<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<String> {
        marks.insert(node.to_string(), Mark::Open);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|edges| edges.keys()) {
            match marks.get(next.as_str()).copied().unwrap_or(Mark::New) {
                Mark::Done => {}
                Mark::Open => {
                    let start = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle: Vec<&String> = stack[start..].iter().collect();
                    cycle.push(next);
                    let mut text = cycle[0].clone();
                    for pair in cycle.windows(2) {
                        write!(text, " -> {} ({})", pair[1], graph[pair[0].as_str()][pair[1].as_str()])
                            .unwrap();
                    }
                    return Some(text);
                }
                Mark::New => {
                    if let Some(found) = visit(next, graph, marks, stack) {
                        return Some(found);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node.as_str()).copied().unwrap_or(Mark::New) == Mark::New {
            let mut stack = Vec::new();
            if let Some(found) = visit(node, graph, &mut marks, &mut stack) {
                return Some(found);
            }
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
    Bang,
    Hash,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Semi,
    Other,
}

/// Rust source as tokens with their lines, without comments, strings or character literals.
fn lex(source: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let count_lines = |from: usize, to: usize, line: &mut usize| {
        *line += chars[from..to].iter().filter(|c| **c == '\n').count();
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let start = i;
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            count_lines(start, i.min(chars.len()), &mut line);
        } else if c == '"' || ((c == 'b' || c == 'c') && next == Some('"')) {
            let start = i;
            i += if c == '"' { 1 } else { 2 };
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            count_lines(start, i.min(chars.len()), &mut line);
            out.push((Tok::Other, line));
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            let start = i;
            // Skip the prefix (`r`, `br` or `cr`), the hashes and the quote.
            while chars[i] != '"' {
                i += 1;
            }
            i += 1;
            let closing: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            while i < chars.len() && !chars[i..].starts_with(&closing) {
                i += 1;
            }
            i += closing.len();
            count_lines(start, i.min(chars.len()), &mut line);
            out.push((Tok::Other, line));
        } else if c == '\'' || (c == 'b' && next == Some('\'')) {
            let q = if c == '\'' { i } else { i + 1 };
            if chars.get(q + 1) == Some(&'\\') {
                // An escaped character: skip to its closing quote.
                i = q + 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push((Tok::Other, line));
            } else if chars.get(q + 2) == Some(&'\'') {
                i = q + 3;
                out.push((Tok::Other, line));
            } else {
                // A lifetime or a label.
                i = q + 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push((Tok::Other, line));
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let word = word.strip_prefix("r#").map(str::to_string).unwrap_or(word);
            out.push((Tok::Ident(word), line));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                if chars[i] == '.' && chars.get(i + 1) == Some(&'.') {
                    break;
                }
                i += 1;
            }
            out.push((Tok::Other, line));
        } else {
            let tok = match c {
                ':' if next == Some(':') => {
                    i += 1;
                    Tok::Colons
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                '!' => Tok::Bang,
                '#' => Tok::Hash,
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                ';' => Tok::Semi,
                _ => Tok::Other,
            };
            i += 1;
            out.push((tok, line));
        }
    }
    out
}

/// The number of `#` of a raw string starting at `i`, if one does.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(chars[j], 'b' | 'c') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|c| **c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some(hashes)
}

impl SourceFile {
    fn parse(display: PathBuf, module: Vec<String>, source: &str, test_only: bool) -> SourceFile {
        let toks = lex(source);
        let mut file = SourceFile {
            display: display.display().to_string(),
            module: module.clone(),
            refs: Vec::new(),
            idents: Vec::new(),
            macros: Vec::new(),
            test_lines: Vec::new(),
            test_only,
            test_children: Vec::new(),
        };
        // Inline modules: (name, brace depth at which they close, cfg(test), first line).
        let mut inline: Vec<(String, usize, bool, usize)> = Vec::new();
        let mut depth = 0usize;
        let mut cfg_test = false;
        let mut i = 0;
        while i < toks.len() {
            let (tok, line) = &toks[i];
            match tok {
                Tok::Hash => {
                    let attr: Vec<&Tok> = toks[i..].iter().take(7).map(|(t, _)| t).collect();
                    let test = [
                        Tok::Hash,
                        Tok::LBracket,
                        Tok::Ident("cfg".into()),
                        Tok::LParen,
                        Tok::Ident("test".into()),
                        Tok::RParen,
                        Tok::RBracket,
                    ];
                    if attr.len() == 7 && attr.iter().zip(test.iter()).all(|(a, b)| *a == b) {
                        cfg_test = true;
                        i += 7;
                        continue;
                    }
                }
                Tok::Open => {
                    depth += 1;
                    cfg_test = false;
                }
                Tok::Close => {
                    depth = depth.saturating_sub(1);
                    if inline.last().is_some_and(|(_, d, _, _)| *d == depth) {
                        let (_, _, test, start) = inline.pop().unwrap();
                        if test {
                            file.test_lines.push(start..=*line);
                        }
                    }
                }
                Tok::Semi => cfg_test = false,
                Tok::Ident(word) => {
                    if word == "mod"
                        && let Some((Tok::Ident(name), _)) = toks.get(i + 1)
                    {
                        match toks.get(i + 2) {
                            Some((Tok::Open, _)) => {
                                inline.push((name.clone(), depth, cfg_test, *line));
                                depth += 1;
                                cfg_test = false;
                                i += 3;
                                continue;
                            }
                            Some((Tok::Semi, _)) if cfg_test && inline.is_empty() => {
                                file.test_children.push(name.clone());
                            }
                            _ => {}
                        }
                    }
                    if matches!(toks.get(i + 1), Some((Tok::Bang, _))) {
                        file.macros.push((word.clone(), *line));
                    }
                    file.idents.push((word.clone(), *line));
                    let starts_path = matches!(word.as_str(), "crate" | "super" | "self")
                        && matches!(toks.get(i + 1), Some((Tok::Colons, _)))
                        && !(i > 0 && matches!(toks[i - 1].0, Tok::Colons));
                    if starts_path {
                        let here: Vec<String> =
                            module.iter().cloned().chain(inline.iter().map(|(n, ..)| n.clone())).collect();
                        let mut paths = Vec::new();
                        i = path_tree(&toks, i, Vec::new(), &mut paths);
                        for (path, line) in paths {
                            if let Some(path) = resolve(&here, &path) {
                                file.refs.push(Ref { path, line });
                            }
                        }
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        file
    }
}

/// Reads the path (or `use` tree) at `i`, pushing every complete path with `prefix` in front;
/// returns the index after it.
fn path_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, usize)>,
) -> usize {
    loop {
        match toks.get(i) {
            Some((Tok::Ident(word), line)) => {
                prefix.push(word.clone());
                i += 1;
                if matches!(toks.get(i), Some((Tok::Colons, _))) {
                    i += 1;
                    continue;
                }
                out.push((prefix, *line));
                return i;
            }
            Some((Tok::Open, _)) => {
                i += 1;
                loop {
                    match toks.get(i) {
                        Some((Tok::Close, _)) => return i + 1,
                        Some((Tok::Comma, _)) => i += 1,
                        Some(_) => {
                            let before = i;
                            i = path_tree(toks, i, prefix.clone(), out);
                            if i == before {
                                i += 1;
                            }
                            // Skip `as name`.
                            if matches!(toks.get(i), Some((Tok::Ident(w), _)) if w == "as") {
                                i += 2;
                            }
                        }
                        None => return i,
                    }
                }
            }
            Some((_, line)) => {
                // A glob or the end of the path: what came before is the path.
                if !prefix.is_empty() {
                    out.push((prefix, *line));
                }
                return i;
            }
            None => return i,
        }
    }
}

/// A path written in module `here`, from the crate root; `None` for paths into other crates.
fn resolve(here: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = here.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    // `use super::{self, ...}` names the module itself.
    let rest: Vec<String> = rest.iter().filter(|s| *s != "self").cloned().collect();
    Some(base.into_iter().chain(rest).collect())
}
