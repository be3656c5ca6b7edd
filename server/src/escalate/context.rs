//! The whole story of an error, for the model.
//!
//! [`build`] gathers, within a token budget: the code of the definition that encloses the error
//! (trimmed around the error when it is long), the definitions of the identifiers that code
//! uses (from the workspace [`SymbolIndex`], nearest the error first, ties broken by a
//! personalised rank of the workspace's reference graph), the git history of the error's lines, the diagnostic's code, related information
//! and other tools' messages on the same lines, and how the same fingerprint was fixed before.
//! [`render`] turns it into the prompt text, with secrets redacted; files matching `no_egress`
//! contribute nothing. Each file is redacted whole before windows and definitions are cut out of
//! it, so that a cut cannot hide a secret from the redactor (a window starting inside a private
//! key), and the uncommitted diff is made of the file's versions each redacted whole; the prompt
//! is redacted once more as a whole.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use tree_sitter::Tree;

use super::git::{self, History};
use super::graph;
use super::redact::{Redactions, Redactor, Secrets, count_markers, is_env_like};
use super::symbols::{self, SymbolIndex};
use crate::classify::Language;
use crate::escalate::cost::estimate_tokens;

/// Where the error is.
pub struct Site<'a> {
    pub root: &'a Path,
    /// Workspace-relative path.
    pub path: &'a str,
    pub language: Language,
    pub text: &'a str,
    pub tree: &'a Tree,
    /// Bytes of the diagnostic.
    pub range: Range<usize>,
}

/// What is known of the diagnostic itself.
#[derive(Debug, Clone, Default)]
pub struct Problem {
    pub message: String,
    pub category: String,
    pub severity: String,
    pub source: String,
    pub code: Option<String>,
    pub fingerprint: String,
    pub symbol: Option<String>,
    pub related: Vec<String>,
    /// Messages of other tools on the same lines.
    pub others: Vec<String>,
}

impl Problem {
    /// The problem of one of ACAS's own diagnostics, with its related information as `related`
    /// says it (the caller knows how to name a place).
    pub fn of(d: &crate::classify::Diagnostic, related: Vec<String>) -> Problem {
        Problem {
            message: d.message.clone(),
            category: d.category.as_str().to_owned(),
            severity: d.severity.as_str().to_owned(),
            source: d.source.clone(),
            code: None,
            fingerprint: d.fingerprint.clone(),
            symbol: d.symbol.clone(),
            related,
            others: Vec::new(),
        }
    }
}

/// How an earlier occurrence of the same fingerprint was fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastFix {
    pub description: String,
    /// The edit, as `old` → `new` text.
    pub old: String,
    pub new: String,
}

/// Budgets, in estimated tokens.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub enclosing: u64,
    pub definitions: u64,
    pub history: u64,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget { enclosing: 1500, definitions: 1500, history: 600 }
    }
}

impl Budget {
    /// The default budget's shares of `tokens` in all: what a caller that has room for only so
    /// much context asks for (the problem, the instructions and the past fixes come on top).
    pub fn within(tokens: u64) -> Budget {
        let Budget { enclosing, definitions, history } = Budget::default();
        let total = enclosing + definitions + history;
        let share = |part: u64| tokens.saturating_mul(part) / total;
        Budget { enclosing: share(enclosing), definitions: share(definitions), history: share(history) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub path: String,
    /// Zero-based first line.
    pub start_line: u32,
    pub text: String,
    /// What it is: `fn parse_expr`, `lines 10-30`.
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Context {
    pub path: String,
    pub language: Language,
    /// Zero-based line and column (in bytes) of the error's start.
    pub line: u32,
    pub column: u32,
    pub problem: Problem,
    pub enclosing: Snippet,
    pub definitions: Vec<Snippet>,
    pub history: Option<History>,
    pub past: Vec<PastFix>,
    /// The values removed from the files read, removed from the rest of the prompt as well.
    pub secrets: Secrets,
}

/// Longest definition included, in lines.
const MAX_DEFINITION_LINES: usize = 40;
/// Lines around the error kept when the enclosing definition is too long.
const WINDOW: u32 = 20;
/// Lines before and after the error whose names rank first, even outside the enclosing code.
const NEAR: u32 = 3;
/// Lines of a shortened definition: its signature, the first of its doc, and those that name
/// what the error's line uses.
const SHORT_SIGNATURE_LINES: usize = 6;
const SHORT_DOC_LINES: usize = 3;
const SHORT_RELEVANT_LINES: usize = 6;

pub fn build(
    site: &Site<'_>,
    problem: Problem,
    index: &SymbolIndex,
    redactor: &Redactor,
    read_file: &dyn Fn(&str) -> Option<String>,
    past: Vec<PastFix>,
    budget: Budget,
) -> Context {
    let start = site.range.start.min(site.text.len());
    let line = site.text[..start].matches('\n').count() as u32;
    let column = (start - site.text[..start].rfind('\n').map_or(0, |i| i + 1)) as u32;
    let definitions_here = index
        .definitions_of(site.path, site.text)
        .unwrap_or_else(|| symbols::tags(site.language, site.tree, site.text, site.path).0);
    let enclosing_def = definitions_here
        .iter()
        .filter(|d| d.range.start <= start && start <= d.range.end)
        .min_by_key(|d| d.range.end - d.range.start);
    let mut enclosing_range = match enclosing_def {
        Some(d) => d.range.clone(),
        None => line_window(site.text, line.saturating_sub(WINDOW), line + WINDOW),
    };
    let mut enclosing_label = enclosing_def.map(|d| format!("{} {}", d.kind, d.name));
    // A broken text can lose the definition around the error, or make it swallow what follows:
    // the last commit's parse knows where it ends.
    if site.tree.root_node().has_error()
        && let Some((range, label)) = committed_enclosing(site, index, line)
        && (enclosing_def.is_none() || range.len() < enclosing_range.len())
    {
        enclosing_range = range;
        enclosing_label = Some(label);
    }
    let mut secrets = Secrets::default();
    let clean = redactor.redact_learning(site.text, is_env_like(site.path), &mut secrets);
    let enclosing =
        trim_around(site, &clean, enclosing_range.clone(), line, budget.enclosing, enclosing_label);

    // Identifiers near the error first: on its lines, then by distance, callees and types
    // before other names, names the message quotes before all.
    let error_lines = line..line + 1 + site.text[site.range.clone()].matches('\n').count() as u32;
    let around = line_window(site.text, line.saturating_sub(NEAR), error_lines.end - 1 + NEAR);
    let scan = enclosing_range.start.min(around.start)..enclosing_range.end.max(around.end);
    let quoted = quoted_names(&problem.message);
    let mut ranked = rank_identifiers(site.tree, site.text, scan, error_lines.clone(), &quoted);
    // Ties broken by where the error's file leads in the workspace's reference graph.
    let near: HashSet<&str> = ranked.iter().filter(|r| r.distance <= NEAR).map(|r| r.name.as_str()).collect();
    let file_rank = graph::rank_files(index, site.path, &near);
    let rank_of = |path: &str| file_rank.get(path).copied().unwrap_or(0.0);
    let name_rank: HashMap<String, f64> = ranked
        .iter()
        .map(|r| (r.name.clone(), index.lookup(&r.name).iter().map(|d| rank_of(&d.path)).fold(0.0, f64::max)))
        .collect();
    ranked.sort_by(|a, b| {
        a.score
            .cmp(&b.score)
            .then(name_rank[&b.name].total_cmp(&name_rank[&a.name]))
            .then(b.count.cmp(&a.count))
            .then(a.name.cmp(&b.name))
    });
    // Names on the error's own lines: the lines of a shortened definition that mention them
    // are kept.
    let on_error_line: Vec<&str> =
        ranked.iter().filter(|r| r.distance == 0).map(|r| r.name.as_str()).collect();
    let mut definitions = Vec::new();
    let mut spent = 0;
    // What is already in the prompt, by file and bytes: nothing is sent twice.
    let mut sent: Vec<(String, Range<usize>)> = Vec::new();
    let shown = enclosing.start_line..enclosing.start_line + enclosing.text.lines().count().max(1) as u32;
    // Each file read, as it is and redacted.
    let mut files: HashMap<String, Option<(String, String)>> = HashMap::new();
    for candidate in &ranked {
        if spent >= budget.definitions {
            break;
        }
        let mut candidates: Vec<&symbols::Definition> = index
            .lookup(&candidate.name)
            .iter()
            .filter(|d| {
                !(d.path == site.path
                    && d.range.start <= enclosing_range.start
                    && d.range.end >= enclosing_range.end)
            })
            // Already on screen in the code around the error.
            .filter(|d| {
                !(d.path == site.path && shown.contains(&d.line) && d.range.end <= enclosing_range.end)
            })
            .collect();
        candidates.sort_by_key(|d| (d.declaration, d.path != site.path, d.range.end - d.range.start));
        // A declaration only when no definition of the name is known.
        if candidates.first().is_some_and(|d| !d.declaration) {
            candidates.retain(|d| !d.declaration);
        }
        candidates.truncate(2);
        for definition in candidates {
            if !redactor.may_send(&definition.path) {
                continue;
            }
            let overlaps = |(path, range): &(String, Range<usize>)| {
                *path == definition.path
                    && range.start < definition.range.end
                    && definition.range.start < range.end
            };
            if sent.iter().any(overlaps) {
                continue;
            }
            let text = files.entry(definition.path.clone()).or_insert_with(|| {
                if definition.path == site.path {
                    Some((site.text.to_owned(), clean.clone()))
                } else {
                    let text = read_file(&definition.path)?;
                    let clean = redactor.redact_learning(&text, is_env_like(&definition.path), &mut secrets);
                    Some((text, clean))
                }
            });
            let Some((text, clean)) = text else { continue };
            let Some((first, lines)) = cut(text, clean, definition.range.clone()) else { continue };
            let left = budget.definitions - spent;
            let mut body = lines.join("\n");
            if lines.len() > MAX_DEFINITION_LINES || estimate_tokens(&body) > left {
                body = shorten(clean, first, &lines, &on_error_line);
            }
            let cost = estimate_tokens(&body);
            // Too big even shortened: a smaller one after it may still fit.
            if cost > left {
                continue;
            }
            spent += cost;
            sent.push((definition.path.clone(), definition.range.clone()));
            definitions.push(Snippet {
                path: definition.path.clone(),
                start_line: definition.line,
                text: body,
                label: format!("{} {}", definition.kind, definition.name),
            });
        }
    }

    // The uncommitted diff is made of the file's versions each redacted whole, so that a secret
    // spanning lines cannot come back as diff lines the redactor would see one by one.
    let env_like = is_env_like(site.path);
    let mut clean_version = |version: &str| {
        if version == site.text {
            clean.clone()
        } else {
            redactor.redact_learning(version, env_like, &mut secrets)
        }
    };
    let history = match git::history(site.root, site.path, site.text, error_lines, 5, &mut clean_version) {
        Ok(history) => history,
        Err(error) => {
            tracing::info!("no git history for {}: {error}", site.path);
            None
        }
    };
    Context {
        path: site.path.to_owned(),
        language: site.language,
        line,
        column,
        problem,
        enclosing,
        definitions,
        history,
        past,
        secrets,
    }
}

/// The definition holding the error's `line` in the file as last committed, as bytes of the
/// current text and its label: lines the edit left alone above and below it map one to one,
/// changed lines map to the changed region.
fn committed_enclosing(site: &Site<'_>, index: &SymbolIndex, line: u32) -> Option<(Range<usize>, String)> {
    let old = git::committed(site.root, site.path).ok()??;
    if old == site.text {
        return None;
    }
    let current: Vec<&str> = site.text.lines().collect();
    let before: Vec<&str> = old.lines().collect();
    let prefix = current.iter().zip(&before).take_while(|(a, b)| a == b).count();
    let room = current.len().min(before.len()) - prefix;
    let suffix = current.iter().rev().zip(before.iter().rev()).take(room).take_while(|(a, b)| a == b).count();
    let line = line as usize;
    let to_old = if line < prefix {
        line
    } else if line >= current.len().saturating_sub(suffix) {
        line + before.len() - current.len()
    } else {
        prefix
    };
    let to_current = |l: usize, end: bool| {
        if l < prefix {
            l
        } else if l >= before.len() - suffix {
            l + current.len() - before.len()
        } else if end {
            (current.len() - suffix).saturating_sub(1)
        } else {
            prefix
        }
    };
    let definitions = index.tags_of_text(site.language, &old, site.path);
    let line_of = |byte: usize| old[..byte.min(old.len())].matches('\n').count();
    let holder = definitions
        .iter()
        .filter(|d| !d.declaration && d.line as usize <= to_old && line_of(d.range.end) >= to_old)
        .min_by_key(|d| d.range.len())?;
    let first = to_current(holder.line as usize, false);
    let last = to_current(line_of(holder.range.end), true);
    (first <= line && line <= last).then(|| {
        (line_window(site.text, first as u32, last as u32), format!("{} {}", holder.kind, holder.name))
    })
}

fn line_window(text: &str, first: u32, last: u32) -> Range<usize> {
    let starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let start = starts.get(first as usize).copied().unwrap_or(text.len());
    let end = starts.get(last as usize + 1).copied().unwrap_or(text.len());
    start..end
}

/// The lines of `clean` (the redacted `text`, line for line) that hold the bytes `range` of
/// `text`, and the zero-based number of the first; the first line starts where the range does
/// when redaction left that part of it alone.
fn cut<'a>(text: &str, clean: &'a str, range: Range<usize>) -> Option<(u32, Vec<&'a str>)> {
    let part = text.get(range.clone())?;
    let first = text[..range.start].matches('\n').count();
    let line_start = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
    let mut lines: Vec<&str> = clean.lines().skip(first).take(part.lines().count().max(1)).collect();
    let prefix = &text[line_start..range.start];
    if let Some(line) = lines.first_mut()
        && line.starts_with(prefix)
    {
        *line = &line[prefix.len()..];
    }
    Some((first as u32, lines))
}

/// The enclosing code, cut to the budget around the error line when it is too long.
fn trim_around(
    site: &Site<'_>,
    clean: &str,
    range: Range<usize>,
    error_line: u32,
    budget: u64,
    label: Option<String>,
) -> Snippet {
    let (start_line, lines) = cut(site.text, clean, range).unwrap_or_default();
    let mut first = 0usize;
    let mut last = lines.len();
    let relative = (error_line - start_line) as usize;
    while last > first + 1 && estimate_tokens(&lines[first..last].join("\n")) > budget {
        // Drop from whichever end is farther from the error, keeping the first (header) line.
        if relative.saturating_sub(first) > last.saturating_sub(relative + 1) && first + 1 < relative {
            first += 1;
        } else if last > relative + 1 {
            last -= 1;
        } else {
            break;
        }
    }
    let shown = lines[first..last].join("\n");
    let from = start_line + first as u32;
    let to = start_line + last.max(1) as u32 - 1;
    Snippet {
        path: site.path.to_owned(),
        start_line: from,
        text: shown,
        label: label.unwrap_or_else(|| format!("lines {}-{}", from + 1, to + 1)),
    }
}

/// A name used near the error, and how close to it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ranked {
    name: String,
    /// Lines between its nearest use and the error's lines; 0 on them.
    distance: u32,
    /// Lower first: the smallest of distance × 4 + role (callee 0, type or import 1, other 2),
    /// minus 4 when the message names it.
    score: i64,
    count: usize,
}

/// Identifier leaves inside `range`, nearest the error's lines first (see [`Ranked::score`]),
/// then most used, then by name.
fn rank_identifiers(
    tree: &Tree,
    text: &str,
    range: Range<usize>,
    error_lines: Range<u32>,
    quoted: &[String],
) -> Vec<Ranked> {
    let mut by_name: HashMap<String, Ranked> = HashMap::new();
    let mut cursor = tree.walk();
    let mut descended = true;
    loop {
        let node = cursor.node();
        if descended && node.end_byte() >= range.start && node.start_byte() <= range.end {
            if node.child_count() == 0
                && node.kind().ends_with("identifier")
                && node.start_byte() >= range.start
                && node.end_byte() <= range.end
                && let Ok(name) = node.utf8_text(text.as_bytes())
            {
                let row = node.start_position().row as u32;
                let distance = if error_lines.contains(&row) {
                    0
                } else if row < error_lines.start {
                    error_lines.start - row
                } else {
                    row + 1 - error_lines.end
                };
                let named = quoted.iter().any(|q| q == name);
                let score = i64::from(distance) * 4 + role(node) - if named { 4 } else { 0 };
                let entry = by_name.entry(name.to_owned()).or_insert(Ranked {
                    name: name.to_owned(),
                    distance,
                    score,
                    count: 0,
                });
                entry.count += 1;
                entry.distance = entry.distance.min(distance);
                entry.score = entry.score.min(score);
            }
            if cursor.goto_first_child() {
                continue;
            }
        }
        if cursor.goto_next_sibling() {
            descended = true;
            continue;
        }
        loop {
            if !cursor.goto_parent() {
                let mut ranked: Vec<Ranked> = by_name.into_values().collect();
                ranked.sort_by(|a, b| {
                    a.score.cmp(&b.score).then(b.count.cmp(&a.count)).then(a.name.cmp(&b.name))
                });
                return ranked;
            }
            if cursor.goto_next_sibling() {
                descended = true;
                break;
            }
        }
    }
}

/// How much an identifier's place says it needs a definition: 0 for what is called, 1 for a
/// type or what an import brings in, 2 for anything else.
fn role(node: tree_sitter::Node<'_>) -> i64 {
    let Some(parent) = node.parent() else { return 2 };
    let is_callee = |callee: tree_sitter::Node<'_>| {
        callee.parent().is_some_and(|call| {
            matches!(call.kind(), "call_expression" | "call" | "new_expression" | "macro_invocation")
                && ["function", "constructor", "macro"]
                    .iter()
                    .find_map(|field| call.child_by_field_name(field))
                    .is_some_and(|f| f.id() == callee.id())
        })
    };
    if is_callee(node)
        || (matches!(
            parent.kind(),
            "field_expression"
                | "member_expression"
                | "attribute"
                | "scoped_identifier"
                | "selector_expression"
        ) && parent
            .child(parent.child_count().saturating_sub(1))
            .is_some_and(|last| last.id() == node.id())
            && is_callee(parent))
    {
        return 0;
    }
    if node.kind().contains("type") || parent.kind().contains("type") {
        return 1;
    }
    let mut up = Some(parent);
    while let Some(n) = up {
        if matches!(
            n.kind(),
            "use_declaration" | "import_statement" | "import_from_statement" | "import_declaration"
        ) {
            return 1;
        }
        up = n.parent();
    }
    2
}

/// Names the diagnostic's message quotes: `` `name` ``, `'name'`, `"name"`.
fn quoted_names(message: &str) -> Vec<String> {
    let mut names = Vec::new();
    for quote in ['`', '\'', '"'] {
        let parts: Vec<&str> = message.split(quote).collect();
        for inside in parts.iter().skip(1).step_by(2) {
            // `crate::util::parse` and `Foo<T>` name each plain identifier in them.
            for word in inside.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if !word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit()) {
                    names.push(word.to_owned());
                }
            }
        }
    }
    names
}

/// A long definition cut to what a reader needs: the lines of its signature, the first lines of
/// its doc (the comment above it, or a docstring under the signature), the lines that use a name
/// from the error's line, and its last line; `…` stands for what was left out. `first` is the
/// zero-based line of `lines[0]` in `clean`.
fn shorten(clean: &str, first: u32, lines: &[&str], names: &[&str]) -> String {
    let is_comment = |l: &str| {
        let t = l.trim_start();
        ["///", "//!", "//", "/**", "/*", "* ", "*/", "#"].iter().any(|p| t.starts_with(p)) || t == "*"
    };
    // The doc comment above the definition.
    let above: Vec<&str> = clean.lines().take(first as usize).collect();
    let mut doc_start = above.len();
    while doc_start > 0 && is_comment(above[doc_start - 1]) {
        doc_start -= 1;
    }
    let mut keep = vec![false; lines.len()];
    let mut signature_end = 0;
    for (i, line) in lines.iter().enumerate().take(SHORT_SIGNATURE_LINES) {
        keep[i] = true;
        signature_end = i + 1;
        let t = line.trim_end();
        if t.ends_with('{') || t.ends_with(':') || t.ends_with("=>") || t.ends_with(';') {
            break;
        }
    }
    // A docstring right under the signature.
    let docstring = lines.get(signature_end).is_some_and(|l| {
        let t = l.trim_start();
        t.starts_with("\"\"\"") || t.starts_with("'''") || t.starts_with("r\"\"\"")
    });
    if docstring {
        for kept in keep.iter_mut().skip(signature_end).take(SHORT_DOC_LINES) {
            *kept = true;
        }
    }
    let mut relevant = 0;
    for (i, line) in lines.iter().enumerate() {
        if relevant < SHORT_RELEVANT_LINES
            && !keep[i]
            && names.iter().any(|n| n.len() > 1 && contains_word(line, n))
        {
            keep[i] = true;
            relevant += 1;
        }
    }
    if let Some(last) = keep.last_mut() {
        *last = true;
    }
    let mut out: Vec<&str> = above[doc_start..].iter().take(SHORT_DOC_LINES).copied().collect();
    let mut skipped = false;
    for (line, kept) in lines.iter().zip(&keep) {
        if *kept {
            if skipped {
                out.push("    …");
                skipped = false;
            }
            out.push(line);
        } else {
            skipped = true;
        }
    }
    out.join("\n")
}

fn contains_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        let plain = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        plain(before) && plain(after)
    })
}

/// The prompt text for a context, secrets redacted.
pub fn render(context: &Context, redactor: &Redactor) -> (String, Redactions) {
    let mut out = String::new();
    let p = &context.problem;
    let code = p.code.as_deref().map(|c| format!(" {c}")).unwrap_or_default();
    let _ = writeln!(out, "## The error\n");
    let _ = writeln!(
        out,
        "{}:{}:{}: {} {} from {}{code}: {}",
        context.path,
        context.line + 1,
        context.column + 1,
        p.severity,
        p.category,
        p.source,
        p.message
    );
    if let Some(symbol) = &p.symbol {
        let _ = writeln!(out, "In: {symbol}");
    }
    for related in &p.related {
        let _ = writeln!(out, "Related: {related}");
    }
    for other in &p.others {
        let _ = writeln!(out, "Also reported on these lines: {other}");
    }
    let lang = context.language.id();
    let e = &context.enclosing;
    let _ = writeln!(out, "\n## The code around it ({}, {})\n", e.label, e.path);
    let _ = writeln!(out, "```{lang}");
    for (i, line) in e.text.lines().enumerate() {
        let number = e.start_line + i as u32;
        let marker = if number == context.line { ">>" } else { "  " };
        let _ = writeln!(out, "{marker}{:>5} | {line}", number + 1);
    }
    let _ = writeln!(out, "```");
    if !context.definitions.is_empty() {
        let _ = writeln!(out, "\n## Definitions it uses\n");
        for d in &context.definitions {
            let _ =
                writeln!(out, "{} ({}:{}):\n```{lang}\n{}\n```", d.label, d.path, d.start_line + 1, d.text);
        }
    }
    if let Some(history) = &context.history {
        let _ = writeln!(out, "\n## History of these lines\n");
        for b in &history.blame {
            match &b.commit {
                Some(commit) => {
                    let _ = writeln!(
                        out,
                        "line {}: {commit} {} {} \"{}\"",
                        b.line + 1,
                        b.author,
                        b.date,
                        b.summary
                    );
                }
                None => {
                    let _ = writeln!(out, "line {}: not committed yet", b.line + 1);
                }
            }
        }
        if !history.recent.is_empty() {
            let _ = writeln!(out, "\nRecent commits touching {}:", context.path);
            for c in &history.recent {
                let _ = writeln!(out, "- {} {} {} \"{}\"", c.id, c.author, c.date, c.summary);
            }
        }
        if let Some(diff) = &history.diff {
            let _ = writeln!(out, "\nUncommitted changes:\n```diff\n{}```", diff);
        }
    }
    if !context.past.is_empty() {
        let _ = writeln!(out, "\n## How this error was fixed before\n");
        for fix in &context.past {
            let _ = writeln!(out, "{}:\n```\n- {}\n+ {}\n```", fix.description, fix.old, fix.new);
        }
    }
    // Counted from the markers, so that what each file's own redaction removed counts too.
    // A value removed from a file goes from every other part too: another tool's message
    // quoting it, a commit message, a past fix.
    let (out, _) = redactor.redact_known(&out, is_env_like(&context.path), &mut context.secrets.clone());
    let found = count_markers(&out);
    (out, found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Document;
    use crate::escalate::redact::DEFAULT_NO_EGRESS;

    fn commit_all(repo: &git2::Repository, author: &str, summary: &str) {
        let mut index = repo.index().unwrap();
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let signature =
            git2::Signature::new(author, "dev@example.com", &git2::Time::new(1_760_000_000, 0)).unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(Some("HEAD"), &signature, &signature, summary, &tree, &parents).unwrap();
    }

    /// The context of the error at the first `marker` in `files[0]`, over an index of `files`.
    fn context_of(language: Language, files: &[(&str, &str)], marker: &str, budget: Budget) -> Context {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut index = SymbolIndex::default();
        for (path, text) in files {
            std::fs::write(root.join(path), text).unwrap();
            let d = Document::new(language, (*text).to_owned());
            let (definitions, references) = symbols::tags(language, d.tree(), d.text(), path);
            index.update(path, definitions);
            index.set_uses(path, references.into_iter().map(|r| r.name).collect());
        }
        let (path, text) = files[0];
        let doc = Document::new(language, text.to_owned());
        let at = text.find(marker).unwrap();
        let site = Site { root, path, language, text, tree: doc.tree(), range: at..at + marker.len() };
        let redactor = Redactor::new(&[]).unwrap();
        let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
        build(&site, Problem::default(), &index, &redactor, &read, vec![], budget)
    }

    fn labels(context: &Context) -> Vec<&str> {
        context.definitions.iter().map(|d| d.label.as_str()).collect()
    }

    #[test]
    fn the_callee_on_the_error_line_comes_before_names_used_more_often() {
        let body: String = (0..30).map(|i| format!("    let step{i} = {i};\n")).collect();
        let util = format!(
            "pub fn common(x: u32) -> u32 {{\n{body}    x\n}}\n\npub fn needed(x: u32) -> u32 {{ x }}\n"
        );
        let main = "fn run(x: u32) -> u32 {\n    let a = common(x);\n    let b = common(a);\n    let c = common(b);\n    needed(c, 1)\n}\n";
        let budget = Budget { definitions: 120, ..Budget::default() };
        let context =
            context_of(Language::Rust, &[("main.rs", main), ("util.rs", &util)], "needed(c, 1)", budget);
        assert_eq!(labels(&context).first(), Some(&"function needed"), "{:?}", context.definitions);
    }

    #[test]
    fn of_names_the_error_ranks_alike_the_one_its_file_leads_to_comes_first() {
        // `apple` and `zebra` are both called on the error's line, once each; the error's file
        // also uses `zebra_size`, so the graph leads it to zebra.rs, and `zebra` goes first
        // (the name alone would put `apple` first).
        let main = "fn run(x: u32) -> u32 {\n    let n = zebra_size(x);\n    apple(n) + zebra(n)\n}\n";
        let body: String = (0..12).map(|i| format!("    let v{i} = x + {i};\n")).collect();
        let apple = format!("pub fn apple(x: u32) -> u32 {{\n{body}    x\n}}\n");
        let zebra = format!(
            "pub fn zebra(x: u32) -> u32 {{\n{body}    x\n}}\n\npub fn zebra_size(x: u32) -> u32 {{ x }}\n"
        );
        let budget = Budget { definitions: 110, ..Budget::default() };
        let context = context_of(
            Language::Rust,
            &[("main.rs", main), ("apple.rs", &apple), ("zebra.rs", &zebra)],
            "apple(n) + zebra(n)",
            budget,
        );
        assert_eq!(labels(&context).first(), Some(&"function zebra"), "{:?}", context.definitions);
    }

    #[test]
    fn a_definition_that_does_not_fit_is_shortened_and_the_next_still_comes() {
        let body: String = (0..100).map(|i| format!("    let step{i} = x + {i};\n")).collect();
        let util = format!(
            "/// Adds up everything.\n/// Slowly.\npub fn big(x: u32) -> u32 {{\n{body}    x\n}}\n\npub fn small(y: u32) -> u32 {{ y }}\n"
        );
        let main = "fn run(x: u32, y: u32) -> u32 {\n    big(x) + small(y)\n}\n";
        let budget = Budget { definitions: 60, ..Budget::default() };
        let context = context_of(Language::Rust, &[("main.rs", main), ("util.rs", &util)], "big(x)", budget);
        let big =
            context.definitions.iter().find(|d| d.label == "function big").expect("big is sent shortened");
        assert!(
            big.text.starts_with("/// Adds up everything.\n/// Slowly.\npub fn big(x: u32) -> u32 {"),
            "{}",
            big.text
        );
        assert!(big.text.contains('…') && big.text.lines().count() < 10, "{}", big.text);
        assert!(labels(&context).contains(&"function small"), "{:?}", context.definitions);
        let spent: u64 = context.definitions.iter().map(|d| estimate_tokens(&d.text)).sum();
        assert!(spent <= 60, "{spent}");
    }

    #[test]
    fn a_method_is_sent_once() {
        let cart = "pub struct Cart;\n\nimpl Cart {\n    pub fn total(&self) -> u64 {\n        0\n    }\n}\n";
        let main = "fn pay(cart: &Cart) -> u64 {\n    cart.total() + 1\n}\n";
        let context = context_of(
            Language::Rust,
            &[("main.rs", main), ("cart.rs", cart)],
            "cart.total()",
            Budget::default(),
        );
        let total: Vec<&Snippet> =
            context.definitions.iter().filter(|d| d.label.ends_with(" total")).collect();
        assert_eq!(total.len(), 1, "{:?}", context.definitions);
        assert_eq!(total[0].label, "method total");
    }

    #[test]
    fn a_definition_comes_before_a_declaration_of_the_same_name() {
        let lib = "mod parse;\n\nfn run(s: &str) -> u32 {\n    parse(s)\n}\n";
        let other = "pub fn parse(s: &str) -> u32 {\n    s.len() as u32\n}\n";
        let context = context_of(
            Language::Rust,
            &[("lib.rs", lib), ("other.rs", other)],
            "parse(s)",
            Budget::default(),
        );
        assert_eq!(labels(&context), ["function parse"], "{:?}", context.definitions);
        assert_eq!(context.definitions[0].path, "other.rs");
    }

    /// Every case of `fixtures/context/cases.json` (real multi-file code): the context holds
    /// the definition the error needs, and no lines twice.
    #[test]
    fn the_context_holds_the_definition_each_real_error_needs() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/context");
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(fixtures.join("cases.json")).unwrap()).unwrap();
        let mut misses = Vec::new();
        for case in &cases {
            let field = |k: &str| case[k].as_str().unwrap().to_owned();
            let root = fixtures.join(field("root"));
            let file = field("file");
            let language = Language::from_path(&root.join(&file)).unwrap();
            let files: Vec<_> = std::fs::read_dir(&root)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|path| Language::from_path(path) == Some(language))
                .collect();
            let index = SymbolIndex::build(&root, &files, 1 << 20);
            let text = std::fs::read_to_string(root.join(&file)).unwrap();
            let doc = Document::new(language, text.clone());
            let error = field("error");
            let at = text.find(&error).unwrap_or_else(|| panic!("{error} is not in {file}"));
            let site = Site {
                root: &root,
                path: &file,
                language,
                text: &text,
                tree: doc.tree(),
                range: at..at + error.len(),
            };
            let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
            let redactor = Redactor::new(&[]).unwrap();
            let context =
                build(&site, Problem::default(), &index, &redactor, &read, vec![], Budget::default());
            let (path, name) =
                field("needs").split_once(' ').map(|(p, n)| (p.to_owned(), n.to_owned())).unwrap();
            let found = context
                .definitions
                .iter()
                .any(|d| d.path == path && d.label.rsplit(' ').next() == Some(name.as_str()));
            if !found {
                misses.push(format!("{file}: `{error}` needs {path} {name}; sent {:?}", labels(&context)));
            }
            // No line twice: the definitions overlap neither one another nor the code around the error.
            let mut shown: Vec<(String, Range<u32>)> = vec![(
                context.enclosing.path.clone(),
                context.enclosing.start_line
                    ..context.enclosing.start_line + context.enclosing.text.lines().count() as u32,
            )];
            for d in &context.definitions {
                let lines = d.start_line..d.start_line + d.text.lines().count() as u32;
                let twice =
                    shown.iter().any(|(p, r)| *p == d.path && r.start < lines.end && lines.start < r.end);
                assert!(
                    !twice,
                    "{file}: `{error}`: {} {} is sent twice: {:?}",
                    d.path,
                    d.label,
                    labels(&context)
                );
                shown.push((d.path.clone(), lines));
            }
        }
        assert!(misses.is_empty(), "{} of {} cases miss:\n{}", misses.len(), cases.len(), misses.join("\n"));
    }

    #[test]
    fn a_broken_definition_is_taken_from_the_last_commit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = git2::Repository::init(root).unwrap();
        let committed = "fn before() -> u32 {\n    1\n}\n\nfn target(x: u32) -> u32 {\n    if x > 1 {\n        return x;\n    }\n    x + 1\n}\n\nfn after() -> u32 {\n    2\n}\n";
        std::fs::write(root.join("lib.rs"), committed).unwrap();
        commit_all(&repo, "Ada", "Add target");
        // The `if` lost its closing brace: the function swallows what follows it.
        let current = committed.replace("        return x;\n    }\n", "        return x;\n");
        let doc = Document::new(Language::Rust, current.clone());
        let at = current.find("return x").unwrap();
        let site = Site {
            root,
            path: "lib.rs",
            language: Language::Rust,
            text: &current,
            tree: doc.tree(),
            range: at..at + 6,
        };
        let redactor = Redactor::new(&[]).unwrap();
        let context = build(
            &site,
            Problem::default(),
            &SymbolIndex::default(),
            &redactor,
            &|_| None,
            vec![],
            Budget::default(),
        );
        assert_eq!(context.enclosing.label, "function target", "{:?}", context.enclosing);
        assert_eq!(context.enclosing.start_line, 4, "{:?}", context.enclosing);
        assert!(
            context.enclosing.text.ends_with("    x + 1\n}")
                || context.enclosing.text.ends_with("    x + 1\n}\n"),
            "{:?}",
            context.enclosing
        );
        assert!(!context.enclosing.text.contains("fn after"), "{:?}", context.enclosing);
    }

    #[test]
    fn the_context_tells_the_whole_story() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = git2::Repository::init(root).unwrap();
        std::fs::write(
            root.join("util.rs"),
            "/// Parses a price in cents.\npub fn parse_cents(s: &str) -> Option<u64> {\n    s.parse().ok()\n}\n",
        )
        .unwrap();
        let main = "use crate::util::parse_cents;\n\nfn total(items: &[&str]) -> u64 {\n    let key = \"sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\";\n    items.iter().map(|i| parse_cents(i)).sum()\n}\n";
        std::fs::write(root.join("main.rs"), main).unwrap();
        std::fs::write(root.join(".env"), "TOKEN=abc\n").unwrap();
        commit_all(&repo, "Ada Lovelace", "Sum the cart");

        let doc = Document::new(Language::Rust, main.to_owned());
        let mut index = SymbolIndex::default();
        for path in ["util.rs", "main.rs"] {
            let text = std::fs::read_to_string(root.join(path)).unwrap();
            let d = Document::new(Language::Rust, text);
            index.update(path, symbols::tags(Language::Rust, d.tree(), d.text(), path).0);
        }
        let redactor =
            Redactor::new(&DEFAULT_NO_EGRESS.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let error_at = main.find("parse_cents(i)").unwrap();
        let site = Site {
            root,
            path: "main.rs",
            language: Language::Rust,
            text: main,
            tree: doc.tree(),
            range: error_at..error_at + 14,
        };
        let problem = Problem {
            message: "a value of type `u64` cannot be built from an iterator over `Option<u64>`".into(),
            category: "type".into(),
            severity: "error".into(),
            source: "rustc".into(),
            code: Some("E0277".into()),
            symbol: Some("total".into()),
            others: vec!["rust-analyzer: expected u64, found Option<u64>".into()],
            ..Default::default()
        };
        let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
        let past = vec![PastFix {
            description: "unwrap the parsed value".into(),
            old: "parse_cents(i)".into(),
            new: "parse_cents(i).unwrap_or(0)".into(),
        }];
        let context = build(&site, problem, &index, &redactor, &read, past, Budget::default());
        assert_eq!((context.line, context.column), (4, 25));
        assert_eq!(context.enclosing.label, "function total");
        assert!(context.enclosing.text.starts_with("fn total("), "{:?}", context.enclosing);
        assert_eq!(context.definitions[0].label, "function parse_cents");
        assert_eq!(context.definitions[0].path, "util.rs");

        let (prompt, redactions) = render(&context, &redactor);
        assert!(prompt.contains("main.rs:5:26: error type from rustc E0277"), "{prompt}");
        assert!(prompt.contains(">>    5 |     items.iter()"), "{prompt}");
        assert!(prompt.contains("pub fn parse_cents(s: &str) -> Option<u64>"), "{prompt}");
        assert!(prompt.contains("Ada Lovelace 2025-10-09 \"Sum the cart\""), "{prompt}");
        assert!(prompt.contains("Also reported on these lines: rust-analyzer"), "{prompt}");
        assert!(prompt.contains("+ parse_cents(i).unwrap_or(0)"), "{prompt}");
        assert!(!prompt.contains("sk-ant-api03"), "{prompt}");
        assert_eq!(redactions.total(), 1);
        assert!(!prompt.contains("TOKEN=abc"));
    }

    #[test]
    fn a_window_starting_inside_a_private_key_shows_none_of_it() {
        // OpenSSH keys have 70-character lines; the window below starts in the key's body.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            alphabet[(state >> 58) as usize] as char
        };
        let body: Vec<String> = (0..30).map(|_| (0..70).map(|_| next()).collect()).collect();
        let text = format!(
            "KEY = \"\"\"-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\"\"\"\n{}x = (1 +\n",
            body.join("\n"),
            "y = 1\n".repeat(10)
        );
        let doc = Document::new(Language::Python, text.clone());
        let at = text.find("x = (1 +").unwrap();
        let site = Site {
            root: Path::new("/nonexistent"),
            path: "app.py",
            language: Language::Python,
            text: &text,
            tree: doc.tree(),
            range: at..at + 1,
        };
        let redactor = Redactor::new(&[]).unwrap();
        let context = build(
            &site,
            Problem::default(),
            &SymbolIndex::default(),
            &redactor,
            &|_| None,
            vec![],
            Budget::default(),
        );
        assert!(
            context.enclosing.start_line > 1 && context.enclosing.start_line < 30,
            "{:?}",
            context.enclosing
        );
        let (prompt, redactions) = render(&context, &redactor);
        for line in &body {
            assert!(!prompt.contains(&line[40..]), "{prompt}");
        }
        assert!(redactions.kinds.iter().any(|(k, n)| *k == "private-key" && *n > 0), "{redactions:?}");
        assert!(prompt.contains(">>   43 | x = (1 +"), "{prompt}");
    }

    #[test]
    fn long_definitions_are_trimmed_around_the_error() {
        let body: String = (0..400).map(|i| format!("    let v{i} = {i};\n")).collect();
        let text = format!("fn huge() {{\n{body}    oops(\n}}\n");
        let doc = Document::new(Language::Rust, text.clone());
        let at = text.find("oops(").unwrap();
        let site = Site {
            root: Path::new("/nonexistent"),
            path: "huge.rs",
            language: Language::Rust,
            text: &text,
            tree: doc.tree(),
            range: at..at + 5,
        };
        let redactor = Redactor::new(&[]).unwrap();
        let budget = Budget { enclosing: 200, ..Budget::default() };
        let context =
            build(&site, Problem::default(), &SymbolIndex::default(), &redactor, &|_| None, vec![], budget);
        assert!(estimate_tokens(&context.enclosing.text) <= 200, "{}", context.enclosing.text.len());
        assert!(context.enclosing.text.contains("oops("));
        assert!(context.history.is_none());
    }
}
