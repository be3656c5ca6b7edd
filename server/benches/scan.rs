//! Initial-scan throughput: `check` (parse + diagnostics) against a bare `parser.parse` of the
//! same files, on the cargo registry sources and the Python standard library.
//!
//! `cargo bench -p acas --bench scan -- [--limit 4000] [--latency-only]`

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use std::time::{Duration, Instant};

use acas::classify::{Document, Language, check, syntax_diagnostics};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let limit = args
        .iter()
        .position(|a| a == "--limit")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    if args.iter().any(|a| a == "--latency-only") {
        latency();
        return;
    }
    let sets: [(&str, Language, Vec<std::path::PathBuf>); 3] = [
        ("cargo registry (.rs)", Language::Rust, common::roots(Language::Rust)),
        ("Python stdlib (.py)", Language::Python, common::roots(Language::Python)),
        ("npm (.js)", Language::JavaScript, common::roots(Language::JavaScript)),
    ];
    println!(
        "| corpus | files | MB | files with diagnostics | `check` files/s | `check` MB/s | `parse` files/s | `parse` MB/s | diagnostics overhead |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, language, roots) in sets {
        let files = common::files(&roots, language);
        // Read everything first: the bench measures parsing, not the disk.
        let texts: Vec<String> = files
            .iter()
            .take(limit)
            .filter_map(|p| std::fs::read(p).ok())
            .filter_map(|b| String::from_utf8(b).ok())
            .collect();
        let bytes: usize = texts.iter().map(|t| t.len()).sum();
        let mb = bytes as f64 / 1e6;

        let mut parser = tree_sitter::Parser::new();
        parser.set_language(&language.grammar()).expect("grammar loads");
        let mut parse_time = Duration::ZERO;
        let mut check_time = Duration::ZERO;
        let mut with_diagnostics = 0;
        // Two rounds, keep the faster, to smooth out noise on a small machine.
        for round in 0..2 {
            let t = Instant::now();
            for text in &texts {
                std::hint::black_box(parser.parse(text, None));
            }
            let p = t.elapsed();
            let t = Instant::now();
            let mut n = 0;
            for text in &texts {
                n += usize::from(!std::hint::black_box(check(language, text)).is_empty());
            }
            let c = t.elapsed();
            if round == 0 || p < parse_time {
                parse_time = p;
            }
            if round == 0 || c < check_time {
                check_time = c;
            }
            with_diagnostics = n;
        }
        let files_n = texts.len() as f64;
        println!(
            "| {} | {} | {:.1} | {} | {:.0} | {:.1} | {:.0} | {:.1} | {:+.1}% |",
            name,
            texts.len(),
            mb,
            with_diagnostics,
            files_n / check_time.as_secs_f64(),
            mb / check_time.as_secs_f64(),
            files_n / parse_time.as_secs_f64(),
            mb / parse_time.as_secs_f64(),
            100.0 * (check_time.as_secs_f64() / parse_time.as_secs_f64() - 1.0),
        );
    }
    latency();
}

/// Time of `syntax_diagnostics` alone on a ~10,000-line document of each language, valid and
/// with one error (an unclosed `(` before a top-level definition half-way through), and of an
/// incremental edit + reparse + diagnostics. The server diagnoses an open document on every
/// keystroke, so the one-error column is the latency that matters while typing.
fn latency() {
    println!();
    println!(
        "| document | lines | diagnostics only, valid | diagnostics only, one error | edit + reparse + diagnostics (one error) |"
    );
    println!("|---|---|---|---|---|");
    for language in Language::ALL {
        let Some(text) = big_document(language) else { continue };
        let doc = Document::new(language, text.clone());
        let valid = time(|| syntax_diagnostics(language, doc.text(), doc.tree()).len());
        let (mid, inserted) = error_site(language, &text);
        let mut broken = Document::new(language, text.clone());
        broken.edit(mid..mid, inserted);
        broken.reparse();
        let errors = time(|| syntax_diagnostics(language, broken.text(), broken.tree()).len());
        // Typing inside the broken document: add and remove a space a little after the error.
        let at = (mid + inserted.len() + 200..broken.text().len())
            .find(|&i| broken.text().as_bytes()[i] == b'\n')
            .unwrap_or(mid + inserted.len());
        let mut flip = false;
        let edit = time(|| {
            flip = !flip;
            if flip {
                broken.edit(at..at, " ");
            } else {
                broken.edit(at..at + 1, "");
            }
            broken.reparse();
            broken.diagnostics().len()
        });
        println!(
            "| {} | {} | {:.3} ms ({} diagnostics) | {:.3} ms ({} diagnostics) | {:.2} ms |",
            language.id(),
            text.lines().count(),
            valid.0,
            valid.1,
            errors.0,
            errors.1,
            edit.0
        );
    }
}

/// About 10,000 lines of valid code from the corpus: files without diagnostics, concatenated
/// (JSON files as elements of one array), repeated when the corpus is smaller.
fn big_document(language: Language) -> Option<String> {
    let mut parts = Vec::new();
    let mut lines = 0;
    for path in common::files(&common::roots(language), language) {
        if lines >= 10_000 {
            break;
        }
        let Ok(t) = std::fs::read_to_string(&path) else { continue };
        if t.starts_with("#!") || t.lines().count() > 3_000 || !check(language, &t).is_empty() {
            continue;
        }
        lines += t.lines().count() + 1;
        parts.push(t);
    }
    if parts.is_empty() {
        return None;
    }
    let mut k = 0;
    while lines < 10_000 {
        lines += parts[k].lines().count() + 1;
        parts.push(parts[k].clone());
        k += 1;
    }
    Some(if language == Language::Json {
        format!("[\n{}\n]\n", parts.iter().map(|p| p.trim_end()).collect::<Vec<_>>().join(",\n"))
    } else {
        parts.join("\n")
    })
}

/// Where and what to insert to make one syntax error half-way through `text`.
fn error_site(language: Language, text: &str) -> (usize, &'static str) {
    let (keyword, inserted) = match language {
        Language::Rust => ("\nfn ", "static X: u8 = (\n"),
        Language::Python => ("\ndef ", "x = (\n"),
        Language::Go => ("\nfunc ", "var x = f(\n"),
        Language::Json => ("\n  \"", "\"x\": (\n"),
        _ => ("\nexport ", "x = (\n"),
    };
    let half = text.len() / 2;
    let mid = text[half..].find(keyword).map_or(half, |i| half + i + 1);
    (mid, inserted)
}

/// Median milliseconds of 21 runs, and the last result.
fn time(mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut samples = Vec::new();
    let mut out = 0;
    for _ in 0..21 {
        let t = Instant::now();
        out = std::hint::black_box(f());
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], out)
}
