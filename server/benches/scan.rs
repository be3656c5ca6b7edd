//! Initial-scan throughput: `check` (parse + diagnostics) against a bare `parser.parse` of the
//! same files, on the cargo registry sources and the Python standard library.
//!
//! `cargo bench -p acas --bench scan -- [--limit 4000]`

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

/// Time of `syntax_diagnostics` alone on a ~10,000-line document, valid and with one error, and
/// of an incremental edit + reparse + diagnostics.
fn latency() {
    println!();
    println!(
        "| document | lines | diagnostics only, valid | diagnostics only, one error | edit + reparse + diagnostics |"
    );
    println!("|---|---|---|---|---|");
    for (name, language) in [
        ("Python stdlib files, concatenated", Language::Python),
        ("npm files, concatenated", Language::JavaScript),
    ] {
        let mut text = String::new();
        for path in common::files(&common::roots(language), language) {
            if text.lines().count() >= 10_000 {
                break;
            }
            let Ok(t) = std::fs::read_to_string(&path) else { continue };
            if !check(language, &t).is_empty() || t.starts_with("#!") {
                continue;
            }
            text.push_str(&t);
            text.push('\n');
        }
        let doc = Document::new(language, text.clone());
        let valid = time(|| syntax_diagnostics(language, doc.text(), doc.tree()).len());
        // One error half-way: an unclosed `(`.
        // Before a top-level definition half-way through, so that the error is in code.
        let keyword = if language == Language::Python { "\ndef " } else { "\nfunction " };
        let mid = text[text.len() / 2..].find(keyword).map_or(text.len() / 2, |i| text.len() / 2 + i + 1);
        let mut broken = Document::new(language, text.clone());
        broken.edit(mid..mid, "x = (\n");
        broken.reparse();
        let errors = time(|| syntax_diagnostics(language, broken.text(), broken.tree()).len());
        let mut doc2 = Document::new(language, text.clone());
        let mut flip = false;
        let edit = time(|| {
            flip = !flip;
            if flip {
                doc2.edit(mid..mid, "#");
            } else {
                doc2.edit(mid..mid + 1, "");
            }
            doc2.reparse();
            doc2.diagnostics().len()
        });
        println!(
            "| {} | {} | {:.3} ms | {:.3} ms ({} diagnostics) | {:.2} ms |",
            name,
            text.lines().count(),
            valid.0,
            errors.0,
            errors.1,
            edit.0
        );
    }
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
