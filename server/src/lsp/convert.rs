//! Conversions between workspace types and LSP types.

use tower_lsp_server::ls_types::{self as lsp, Uri};

use crate::analysis::FileDiagnostic;
use crate::classify::Severity;
use crate::text::{Position, TextRange};

pub fn range_from_lsp(range: lsp::Range) -> TextRange {
    TextRange {
        start: Position { line: range.start.line, character: range.start.character },
        end: Position { line: range.end.line, character: range.end.character },
    }
}

pub fn range_to_lsp(range: TextRange) -> lsp::Range {
    lsp::Range {
        start: lsp::Position { line: range.start.line, character: range.start.character },
        end: lsp::Position { line: range.end.line, character: range.end.character },
    }
}

pub fn diagnostic(uri: &Uri, d: &FileDiagnostic) -> lsp::Diagnostic {
    let related = d
        .related
        .iter()
        .map(|(range, message)| lsp::DiagnosticRelatedInformation {
            location: lsp::Location { uri: uri.clone(), range: range_to_lsp(*range) },
            message: message.clone(),
        })
        .collect::<Vec<_>>();
    lsp::Diagnostic {
        range: range_to_lsp(d.range),
        severity: Some(match d.severity {
            Severity::Error => lsp::DiagnosticSeverity::ERROR,
            Severity::Warning => lsp::DiagnosticSeverity::WARNING,
            Severity::Information => lsp::DiagnosticSeverity::INFORMATION,
            Severity::Hint => lsp::DiagnosticSeverity::HINT,
        }),
        code: Some(lsp::NumberOrString::String(d.category.as_str().to_owned())),
        source: Some(d.source.clone()),
        message: d.message.clone(),
        related_information: (!related.is_empty()).then_some(related),
        data: Some(serde_json::json!({
            "fingerprint": d.fingerprint,
            "category": d.category.as_str(),
            "symbol": d.symbol,
        })),
        ..Default::default()
    }
}

/// Reads settings sent by a client, either bare or under an `acas` key.
pub fn settings(value: &serde_json::Value) -> Result<acas_protocol::Settings, serde_json::Error> {
    let value = value.get("acas").unwrap_or(value);
    if value.is_null() {
        return Ok(acas_protocol::Settings::default());
    }
    serde_json::from_value(value.clone())
}
