//! `acas stats`: how AI fixes fared, per provider, model and category.

use std::path::Path;

use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, ListFormat, output};

pub(super) fn run(path: &Path, format: ListFormat) -> i32 {
    let root = match super::resolve(path) {
        Ok((root, true)) => root,
        Ok((_, false)) | Err(_) => {
            output::note(&format!("acas stats: {} is not a directory", path.display()));
            return EXIT_FAILED;
        }
    };
    let recorded = match super::recorded("stats", &root) {
        Ok(recorded) => recorded,
        Err(code) => return code,
    };
    let rows = if recorded {
        match super::read_state("stats", &root, |s| s.fix_stats(), |s| s.fix_stats()) {
            Ok(rows) => rows,
            Err(error) => {
                output::note(&format!("acas stats: {error}"));
                return EXIT_FAILED;
            }
        }
    } else {
        Vec::new()
    };
    let rate = |good: u64, offered: u64| if offered == 0 { 0.0 } else { good as f64 / offered as f64 };
    match format {
        ListFormat::Text => {
            let mut text = String::from(
                "provider      model                  category   offered applied resolved reverted dismissed  success\n",
            );
            for r in &rows {
                text.push_str(&format!(
                    "{:<13} {:<22} {:<10} {:>7} {:>7} {:>8} {:>8} {:>9}  {:>6.0}%\n",
                    r.provider,
                    r.model,
                    r.category,
                    r.offered,
                    r.applied,
                    r.resolved,
                    r.reverted,
                    r.dismissed,
                    100.0 * rate(r.resolved, r.offered)
                ));
            }
            if rows.is_empty() {
                text.push_str("no AI fix has been offered yet");
            }
            output::line(text.trim_end());
        }
        ListFormat::Json => {
            let rows: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({
                        "provider": r.provider, "model": r.model, "category": r.category,
                        "offered": r.offered, "applied": r.applied, "resolved": r.resolved,
                        "reverted": r.reverted, "dismissed": r.dismissed,
                        "success_rate": rate(r.resolved, r.offered),
                    })
                })
                .collect();
            output::line(&json!({ "fixes": rows }).to_string());
        }
    }
    EXIT_OK
}
