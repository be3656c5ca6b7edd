//! Measures how well ACAS places syntax diagnostics on real code.
//!
//! For each language: (1) false positives: `check` on files that the language's real parser
//! accepts (`syn::parse_file` for Rust, `compile()` for Python, `json.loads` for JSON, V8 via
//! `node` for JavaScript, `gofmt -e` for Go where it is installed, TypeScript's parser when
//! `ACAS_EVAL_TYPESCRIPT` names an installed `typescript` package; elsewhere the files are
//! shipped code; `ACAS_EVAL_ROOTS` adds corpora, see `common`) and count files with any
//! diagnostic; (2) injection: one mistake per file, chosen by a seeded PRNG, and the share
//! reported within 5 lines of the injection (or of the real parser's report), the diagnostics
//! per mistake and the share missed, for ACAS and for naive ERROR/MISSING reporting.
//!
//! `cargo bench -p acas --bench syntax_eval -- [--lang rust,python] [--inject 500]
//!  [--fp-limit 3000] [--seed 1] [--show-misses 10] [--show-messages 20]`
//!
//! `--show-messages N` prints, for the first N mistakes of each language, ACAS's diagnostics
//! beside the message of the language's own parser.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;
mod judges;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use acas::classify::{Diagnostic, Document, Language};
use judges::{Helper, JS_HELPER, PY_HELPER, TS_HELPER};
use tree_sitter::{Node, Tree};

const WINDOW: i64 = 5;

struct Options {
    langs: Vec<Language>,
    inject: usize,
    fp_limit: usize,
    seed: u64,
    show_misses: usize,
    show_fp: usize,
    show_messages: usize,
}

fn options() -> Options {
    let mut o = Options {
        langs: Language::ALL.to_vec(),
        inject: 500,
        fp_limit: 4000,
        seed: 1,
        show_misses: 0,
        show_fp: 0,
        show_messages: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--lang" => {
                o.langs = value
                    .split(',')
                    .filter_map(|s| {
                        Language::ALL
                            .into_iter()
                            .find(|l| l.id() == s || format!("{l:?}").eq_ignore_ascii_case(s))
                    })
                    .collect();
            }
            "--inject" => o.inject = value.parse().unwrap_or(o.inject),
            "--fp-limit" => o.fp_limit = value.parse().unwrap_or(o.fp_limit),
            "--seed" => o.seed = value.parse().unwrap_or(o.seed),
            "--show-misses" => o.show_misses = value.parse().unwrap_or(0),
            "--show-fp" => o.show_fp = value.parse().unwrap_or(0),
            "--show-messages" => o.show_messages = value.parse().unwrap_or(0),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// The language's own parser: answers `None` (valid) or the 1-based line of the first syntax
/// error. `syn::parse_file` for Rust (it gives no line: 0), `gofmt -e` for Go, a helper process
/// for the others.
enum Oracle {
    Helper(Helper),
    Syn,
    Gofmt,
}

impl Oracle {
    fn start(language: Language) -> Option<Oracle> {
        match language {
            Language::Rust => Some(Oracle::Syn),
            Language::Go => {
                let found = Command::new("gofmt").arg("-l").stdin(Stdio::null()).output().is_ok();
                found.then_some(Oracle::Gofmt)
            }
            _ => helper(language).map(Oracle::Helper),
        }
    }

    /// `Ok(None)`: accepted; `Ok(Some(line))`: rejected at `line` (1-based, 0 if unknown).
    fn check(&mut self, text: &str) -> Option<Option<i64>> {
        self.check_with_message(text).map(|r| r.map(|(line, _)| line))
    }

    /// As [`Oracle::check`], with the parser's message.
    fn check_with_message(&mut self, text: &str) -> Option<Option<(i64, String)>> {
        match self {
            Oracle::Helper(helper) => helper.check(text),
            Oracle::Syn => {
                let text = text.to_string();
                // syn's parser recurses; a deeply nested text must not take the bench down.
                let error = std::thread::Builder::new()
                    .stack_size(256 << 20)
                    .spawn(move || syn::parse_file(&text).err().map(|e| e.to_string()))
                    .ok()?
                    .join()
                    .ok()?;
                Some(error.map(|message| (0, message)))
            }
            Oracle::Gofmt => {
                let path = std::env::temp_dir().join(format!("acas_eval_{}.go", std::process::id()));
                std::fs::write(&path, text).ok()?;
                let out = Command::new("gofmt").arg("-e").arg("-l").arg(&path).output().ok()?;
                if out.status.success() {
                    return Some(None);
                }
                let err = String::from_utf8_lossy(&out.stderr);
                let first = err.lines().next().unwrap_or("");
                let rest = first.rsplit_once(".go:").map_or(first, |(_, r)| r);
                let mut parts = rest.splitn(3, ':');
                let line = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
                let message = parts.nth(1).unwrap_or("").trim().to_string();
                Some(Some((line, message)))
            }
        }
    }
}

/// The judge process of `language`, if it has one here.
fn helper(language: Language) -> Option<Helper> {
    match language {
        Language::Python => {
            Helper::start(Path::new("python3"), "acas_eval_helper.py", PY_HELPER, &["python"])
        }
        Language::Json => Helper::start(Path::new("python3"), "acas_eval_helper.py", PY_HELPER, &["json"]),
        Language::JavaScript => Helper::start(
            Path::new("node"),
            "acas_eval_helper.js",
            JS_HELPER,
            &["--experimental-vm-modules", "--no-warnings"],
        ),
        Language::TypeScript | Language::Tsx => {
            std::env::var_os("ACAS_EVAL_TYPESCRIPT")?;
            let kind = if language == Language::Tsx { "tsx" } else { "ts" };
            Helper::start(Path::new("node"), "acas_eval_helper_ts.js", TS_HELPER, &[kind])
        }
        _ => None,
    }
}

fn line_of(text: &str, offset: usize) -> i64 {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() as i64
}

/// Naive baseline: every ERROR and MISSING node, at its start.
fn naive(tree: &Tree) -> Vec<usize> {
    let mut out = Vec::new();
    let mut cursor = tree.walk();
    'walk: loop {
        let node = cursor.node();
        if node.is_error() || node.is_missing() {
            out.push(node.start_byte());
        }
        if node.has_error() && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                continue 'walk;
            }
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    DeleteCloser,
    DeleteOpener,
    StrayCloser,
    UnterminatedString,
    DeleteSeparator,
    StrayKeyword,
    DuplicateToken,
}

const KINDS: [Kind; 7] = [
    Kind::DeleteCloser,
    Kind::DeleteOpener,
    Kind::StrayCloser,
    Kind::UnterminatedString,
    Kind::DeleteSeparator,
    Kind::StrayKeyword,
    Kind::DuplicateToken,
];

/// A token of the valid tree where a mistake may be injected.
#[derive(Clone, Copy)]
struct Leaf {
    start: usize,
    end: usize,
    kind: &'static str,
    named: bool,
    parent: &'static str,
    /// Inside a Rust macro's token tree, where anything but brackets is valid.
    in_macro: bool,
}

fn is_literal(kind: &str) -> bool {
    kind.contains("string")
        || kind.contains("comment")
        || matches!(
            kind,
            "regex" | "jsx_text" | "char_literal" | "rune_literal" | "escape_sequence" | "html_comment"
        )
}

/// Tokens of a tree (leaves outside strings and comments) and the string literals.
fn leaves<'t>(tree: &'t Tree) -> (Vec<Leaf>, Vec<Node<'t>>) {
    let mut out = Vec::new();
    let mut strings = Vec::new();
    let mut cursor = tree.walk();
    let mut macro_depth: Vec<bool> = vec![false];
    'walk: loop {
        let node = cursor.node();
        let in_macro = *macro_depth.last().unwrap_or(&false);
        let kind = node.kind();
        let literal = is_literal(kind);
        if matches!(kind, "string_literal" | "string" | "interpreted_string_literal") && !in_macro {
            strings.push(node);
        }
        let descend = !literal && node.child_count() > 0;
        if !descend && !literal && node.end_byte() > node.start_byte() {
            out.push(Leaf {
                start: node.start_byte(),
                end: node.end_byte(),
                kind,
                named: node.is_named(),
                parent: node.parent().map_or("", |p| p.kind()),
                in_macro,
            });
        }
        if descend && cursor.goto_first_child() {
            macro_depth.push(in_macro || matches!(kind, "token_tree" | "macro_definition"));
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                continue 'walk;
            }
            if !cursor.goto_parent() {
                break 'walk;
            }
            macro_depth.pop();
        }
    }
    (out, strings)
}

fn keywords(language: Language) -> &'static [&'static str] {
    match language {
        Language::Rust => &["fn", "impl", "fn"],
        Language::Python => &["def", "class"],
        Language::JavaScript | Language::TypeScript | Language::Tsx => &["function", "class"],
        Language::Go => &["func"],
        Language::Json => &["function"],
    }
}

/// Injects one mistake of `kind`: (new text, byte offset of the mistake), or `None` when the
/// file has no place for it.
fn inject(language: Language, text: &str, tree: &Tree, kind: Kind, rng: &mut Rng) -> Option<(String, usize)> {
    let (leaves, strings) = leaves(tree);
    let b = text.as_bytes();
    let next_code = |end: usize| b[end..].iter().copied().find(|c| !c.is_ascii_whitespace());
    let pick = |rng: &mut Rng, pred: &dyn Fn(&Leaf) -> bool| -> Option<Leaf> {
        let c: Vec<&Leaf> = leaves.iter().filter(|l| pred(l)).collect();
        (!c.is_empty()).then(|| *c[rng.below(c.len())])
    };
    let splice = |start: usize, end: usize, with: &str| {
        let mut s = String::with_capacity(text.len() + with.len());
        s.push_str(&text[..start]);
        s.push_str(with);
        s.push_str(&text[end..]);
        s
    };
    let js = matches!(language, Language::JavaScript | Language::TypeScript | Language::Tsx);
    match kind {
        Kind::DeleteCloser => {
            let l = pick(rng, &|l| !l.named && matches!(l.kind, ")" | "]" | "}"))?;
            Some((splice(l.start, l.end, ""), l.start))
        }
        Kind::DeleteOpener => {
            let l = pick(rng, &|l| !l.named && matches!(l.kind, "(" | "[" | "{"))?;
            Some((splice(l.start, l.end, ""), l.start))
        }
        Kind::StrayCloser => {
            let l = pick(rng, &|l| !l.in_macro && l.kind != "jsx_text")?;
            let with = if rng.below(2) == 0 { "}" } else { ")" };
            Some((splice(l.start, l.start, with), l.start))
        }
        Kind::UnterminatedString => {
            let c: Vec<&Node> = strings
                .iter()
                .filter(|n| {
                    n.start_position().row == n.end_position().row
                        && n.end_byte() - n.start_byte() >= 2
                        && matches!(b[n.end_byte() - 1], b'"' | b'\'')
                })
                .collect();
            if c.is_empty() {
                return None;
            }
            let n = c[rng.below(c.len())];
            Some((splice(n.end_byte() - 1, n.end_byte(), ""), n.end_byte() - 1))
        }
        Kind::DeleteSeparator => {
            let l = pick(rng, &|l| {
                if l.in_macro || l.named {
                    return false;
                }
                let next = next_code(l.end);
                match l.kind {
                    "," => !matches!(next, Some(b')' | b']' | b'}')),
                    ";" => !js && language != Language::Go && !matches!(next, Some(b'}')),
                    ":" | "=" | ":=" => true,
                    "+" | "-" | "*" | "/" | "==" | "!=" | "&&" | "||" | "<" | ">" | "<=" | ">=" | "and"
                    | "or" => {
                        l.parent.contains("binary")
                            || l.parent.contains("comparison")
                            || l.parent.contains("boolean")
                    }
                    _ => false,
                }
            })?;
            let joins = l.start > 0
                && l.end < b.len()
                && (b[l.start - 1].is_ascii_alphanumeric() || b[l.start - 1] == b'_')
                && (b[l.end].is_ascii_alphanumeric() || b[l.end] == b'_');
            Some((splice(l.start, l.end, if joins { " " } else { "" }), l.start))
        }
        Kind::StrayKeyword => {
            let l = pick(rng, &|l| !l.in_macro && l.kind != "jsx_text")?;
            let kws = keywords(language);
            let kw = kws[rng.below(kws.len())];
            // Glued to a preceding identifier (`loom::model` -> `loomfn ::model`) the keyword
            // would only rename it, which is valid syntax: keep it a token of its own.
            let glued = l.start > 0 && (b[l.start - 1].is_ascii_alphanumeric() || b[l.start - 1] == b'_');
            let sep = if glued { " " } else { "" };
            Some((splice(l.start, l.start, &format!("{sep}{kw} ")), l.start))
        }
        Kind::DuplicateToken => {
            let l = pick(rng, &|l| {
                !l.in_macro
                    && l.end - l.start <= 20
                    && text[l.start..l.end].chars().all(|c| c.is_alphanumeric() || c == '_')
                    && text[l.start..l.end].chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
                    && !matches!(&text[l.start..l.end], "true" | "false" | "null" | "None" | "self")
                    && l.kind != "jsx_text"
            })?;
            let tok = &text[l.start..l.end];
            Some((splice(l.start, l.start, &format!("{tok} ")), l.start))
        }
    }
}

#[derive(Default, Clone)]
struct Score {
    mistakes: usize,
    within: usize,
    first_within: usize,
    diagnostics: usize,
    missed: usize,
}

impl Score {
    fn add(&mut self, lines: &[i64], targets: &[i64]) {
        self.mistakes += 1;
        self.diagnostics += lines.len();
        if lines.is_empty() {
            self.missed += 1;
        }
        let near = |l: i64| targets.iter().any(|t| (l - t).abs() <= WINDOW);
        if lines.iter().any(|&l| near(l)) {
            self.within += 1;
        }
        if lines.first().is_some_and(|&l| near(l)) {
            self.first_within += 1;
        }
    }
    fn pct(n: usize, d: usize) -> String {
        if d == 0 { "-".into() } else { format!("{:.1}%", 100.0 * n as f64 / d as f64) }
    }
    fn avg(&self) -> String {
        if self.mistakes == 0 {
            "-".into()
        } else {
            format!("{:.2}", self.diagnostics as f64 / self.mistakes as f64)
        }
    }
}

struct LangResult {
    language: Language,
    files: usize,
    fp_checked: usize,
    fp_files: usize,
    oracle_rejected: usize,
    naive_fp_files: usize,
    acas: Score,
    naive: Score,
    per_kind: Vec<(Kind, Score)>,
    skipped_valid: usize,
    /// Injections the grammar parses without any error (possibly valid code).
    tree_clean: usize,
    acas_seen: Score,
    secs: f64,
}

fn render(text: &str, d: &Diagnostic) -> String {
    format!("{}: {} [{}]", line_of(text, d.range.start) + 1, d.message, d.symbol.as_deref().unwrap_or(""))
}

fn run(language: Language, o: &Options) -> LangResult {
    let t0 = Instant::now();
    let roots = common::roots(language);
    let mut files = common::files(&roots, language);
    // Go's tools skip `testdata` directories; the standard library's hold code that does not
    // compile on purpose (the type checker's tests).
    if language == Language::Go {
        files.retain(|p| !p.components().any(|c| c.as_os_str() == "testdata"));
    }
    let mut oracle = Oracle::start(language);
    let mut rng = Rng(o.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (language as u64 + 1));
    // Deterministic sample order.
    let mut order: Vec<usize> = (0..files.len()).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    let mut r = LangResult {
        language,
        files: files.len(),
        fp_checked: 0,
        fp_files: 0,
        oracle_rejected: 0,
        naive_fp_files: 0,
        acas: Score::default(),
        naive: Score::default(),
        per_kind: KINDS.iter().map(|&k| (k, Score::default())).collect(),
        skipped_valid: 0,
        tree_clean: 0,
        acas_seen: Score::default(),
        secs: 0.0,
    };
    let mut clean: Vec<(PathBuf, String)> = Vec::new();
    let mut shown_fp = 0;
    for &i in order.iter().take(o.fp_limit) {
        let path = &files[i];
        let Ok(bytes) = std::fs::read(path) else { continue };
        let Ok(text) = String::from_utf8(bytes) else { continue };
        if let Some(oracle) = oracle.as_mut()
            && oracle.check(&text) != Some(None)
        {
            r.oracle_rejected += 1;
            continue;
        }
        r.fp_checked += 1;
        let doc = Document::new(language, text);
        let naive_errors = naive(doc.tree());
        if !naive_errors.is_empty() {
            r.naive_fp_files += 1;
        }
        if !doc.diagnostics().is_empty() {
            r.fp_files += 1;
            if shown_fp < o.show_fp {
                shown_fp += 1;
                println!("FP {}: {}", path.display(), render(doc.text(), &doc.diagnostics()[0]));
            }
        }
        if naive_errors.is_empty() && doc.diagnostics().is_empty() {
            clean.push((path.clone(), doc.text().to_string()));
        }
    }

    let mut shown = 0;
    let mut shown_messages = 0;
    for (k, (path, text)) in clean.iter().enumerate() {
        if r.acas.mistakes >= o.inject {
            break;
        }
        let tree = Document::new(language, text.clone());
        let kind = KINDS[(k + rng.below(KINDS.len())) % KINDS.len()];
        let Some((broken, offset)) = inject(language, text, tree.tree(), kind, &mut rng) else { continue };
        let injected = line_of(&broken, offset);
        let mut targets = vec![injected];
        let mut real_message = None;
        if let Some(oracle) = oracle.as_mut() {
            match oracle.check_with_message(&broken) {
                Some(None) => {
                    r.skipped_valid += 1;
                    continue;
                }
                Some(Some((line, message))) => {
                    if line > 0 {
                        targets.push(line - 1);
                    }
                    real_message = Some(format!("{line}: {message}"));
                }
                _ => {}
            }
        }
        let doc = Document::new(language, broken);
        let lines: Vec<i64> = doc.diagnostics().iter().map(|d| line_of(doc.text(), d.range.start)).collect();
        let naive_lines: Vec<i64> = naive(doc.tree()).iter().map(|&s| line_of(doc.text(), s)).collect();
        r.acas.add(&lines, &targets);
        r.naive.add(&naive_lines, &targets);
        if doc.tree().root_node().has_error() {
            r.acas_seen.add(&lines, &targets);
        } else {
            r.tree_clean += 1;
        }
        if let Some((_, s)) = r.per_kind.iter_mut().find(|(kk, _)| *kk == kind) {
            s.add(&lines, &targets);
        }
        if shown_messages < o.show_messages {
            shown_messages += 1;
            let real = real_message;
            let ours: Vec<String> = doc.diagnostics().iter().map(|d| render(doc.text(), d)).collect();
            println!(
                "MSG {} {:?} {}:{} | acas: {} | real: {}",
                language.id(),
                kind,
                path.display(),
                injected + 1,
                if ours.is_empty() { "(none)".to_string() } else { ours.join(" / ") },
                real.unwrap_or_else(|| "(no parser)".to_string())
            );
        }
        let near = lines.iter().any(|&l| targets.iter().any(|t| (l - t).abs() <= WINDOW));
        if (!near || lines.len() > 2) && shown < o.show_misses {
            shown += 1;
            println!(
                "MISS {:?} {} injected line {} (oracle {:?}):",
                kind,
                path.display(),
                injected + 1,
                targets.get(1).map(|t| t + 1)
            );
            let t = doc.text();
            let first = (injected as usize).saturating_sub(2);
            for (n, l) in t.lines().skip(first).take(4).enumerate() {
                println!("    {:>5} | {}", first + n + 1, l.chars().take(120).collect::<String>());
            }
            for d in doc.diagnostics() {
                println!("    -> {}", render(t, d));
            }
        }
    }
    r.secs = t0.elapsed().as_secs_f64();
    r
}

fn main() {
    let o = options();
    let mut results = Vec::new();
    for &language in &o.langs {
        let r = run(language, &o);
        eprintln!("{:?}: {} files, {:.1}s", language, r.files, r.secs);
        results.push(r);
    }
    println!();
    println!(
        "| language | files found | valid files checked | real parser | files with ACAS diagnostics (FP) | naive FP files | mistakes | ACAS within 5 lines | ACAS first within 5 | ACAS diags/mistake | ACAS missed | naive within 5 lines | naive diags/mistake | naive missed | injections skipped (real parser accepts) | injections the grammar parses cleanly | ACAS within 5 lines, excluding those |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        let real = match r.language {
            Language::Python => "compile()",
            Language::Json => "json.loads",
            Language::JavaScript => "V8 (node vm)",
            Language::Rust => "syn::parse_file",
            Language::Go => "gofmt -e",
            Language::TypeScript | Language::Tsx if std::env::var_os("ACAS_EVAL_TYPESCRIPT").is_some() => {
                "typescript createSourceFile"
            }
            _ => "none",
        };
        println!(
            "| {} | {} | {} | {} (rejected {}) | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.language.id(),
            r.files,
            r.fp_checked,
            real,
            r.oracle_rejected,
            r.fp_files,
            Score::pct(r.fp_files, r.fp_checked),
            r.naive_fp_files,
            r.acas.mistakes,
            Score::pct(r.acas.within, r.acas.mistakes),
            Score::pct(r.acas.first_within, r.acas.mistakes),
            r.acas.avg(),
            Score::pct(r.acas.missed, r.acas.mistakes),
            Score::pct(r.naive.within, r.naive.mistakes),
            r.naive.avg(),
            Score::pct(r.naive.missed, r.naive.mistakes),
            r.skipped_valid,
            r.tree_clean,
            Score::pct(r.acas_seen.within, r.acas_seen.mistakes),
        );
        if r.acas.mistakes < 100 {
            println!("|  | (few files: {} mistakes only) |||||||||||||||", r.acas.mistakes);
        }
    }
    let mut total = Score::default();
    let mut total_naive = Score::default();
    let mut total_seen = Score::default();
    for r in &results {
        for (t, s) in [(&mut total, &r.acas), (&mut total_naive, &r.naive), (&mut total_seen, &r.acas_seen)] {
            t.mistakes += s.mistakes;
            t.within += s.within;
            t.first_within += s.first_within;
            t.diagnostics += s.diagnostics;
            t.missed += s.missed;
        }
    }
    println!(
        "| **all** | | | | | | {} | {} | {} | {} | {} | {} | {} | {} | | {} | {} |",
        total.mistakes,
        Score::pct(total.within, total.mistakes),
        Score::pct(total.first_within, total.mistakes),
        total.avg(),
        Score::pct(total.missed, total.mistakes),
        Score::pct(total_naive.within, total_naive.mistakes),
        total_naive.avg(),
        Score::pct(total_naive.missed, total_naive.mistakes),
        total.mistakes - total_seen.mistakes,
        Score::pct(total_seen.within, total_seen.mistakes),
    );
    println!();
    println!("ACAS within 5 lines by kind of mistake (all languages):");
    println!();
    println!("| mistake | count | within 5 lines | diags/mistake | missed |");
    println!("|---|---|---|---|---|");
    for (i, kind) in KINDS.iter().enumerate() {
        let mut s = Score::default();
        for r in &results {
            let k = &r.per_kind[i].1;
            s.mistakes += k.mistakes;
            s.within += k.within;
            s.diagnostics += k.diagnostics;
            s.missed += k.missed;
        }
        println!(
            "| {:?} | {} | {} | {} | {} |",
            kind,
            s.mistakes,
            Score::pct(s.within, s.mistakes),
            s.avg(),
            Score::pct(s.missed, s.mistakes)
        );
    }
}
