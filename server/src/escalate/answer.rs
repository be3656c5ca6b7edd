//! What the model is asked for, and what is done with its answer.
//!
//! The model answers with one JSON object: an explanation, and optionally a fix made of
//! search/replace edits whose `old` text must match the current file exactly once. Providers
//! with structured output get [`reply_schema`]; every reply is parsed the same way by
//! [`parse_reply`], which also accepts the object inside a fenced block or surrounded by prose.
//! A reply that does not parse is repaired once with [`repair_prompt`]. A fix is offered only
//! when [`verify`] has applied every edit in memory and reparsed the result without new syntax
//! errors; otherwise only the explanation is shown, with the reason.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::classify::{self, Language};

/// The instructions sent with every escalation.
pub const SYSTEM_PROMPT: &str = "You are ACAS, an assistant inside a code editor. You get one error from a developer's \
workspace with its context: the code around it, the definitions it uses, the history of its lines and how it was \
fixed before. Explain the cause briefly and precisely (the first sentence alone must make sense as a one-line \
summary), then propose the smallest fix. Answer with ONE JSON object and nothing else:\n\
{\"explanation\": string, \"fix\": {\"description\": string, \"edits\": [{\"path\": string (optional, defaults to \
the file of the error), \"old\": string, \"new\": string}]} or null}\n\
Each `old` must be copied exactly from the current file and occur in it exactly once; include enough surrounding \
text to make it unique. Use null for `fix` when you are not confident.";

/// The reply's JSON Schema, for providers with structured output.
pub fn reply_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["explanation", "fix"],
        "properties": {
            "explanation": { "type": "string" },
            "fix": {
                "anyOf": [
                    { "type": "null" },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["description", "edits"],
                        "properties": {
                            "description": { "type": "string" },
                            "edits": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": false,
                                    "required": ["old", "new"],
                                    "properties": {
                                        "path": { "type": "string" },
                                        "old": { "type": "string" },
                                        "new": { "type": "string" }
                                    }
                                }
                            }
                        }
                    }
                ]
            }
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub explanation: String,
    #[serde(default)]
    pub fix: Option<Fix>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fix {
    pub description: String,
    pub edits: Vec<Edit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub old: String,
    pub new: String,
}

/// What was wrong with a reply or its fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerErrorKind {
    /// The reply is not the JSON object asked for (or its explanation is empty).
    NotTheReply,
    /// The fix has no edits.
    NoEdits,
    /// An edit names a path outside the workspace.
    OutsideWorkspace,
    /// An edit's file cannot be read.
    Unreadable,
    /// An edit's `old` text is empty, absent from its file or found more than once there.
    OldText,
    /// Two edits change the same text.
    Overlap,
    /// The fixed file has a syntax error the original did not have.
    SyntaxError,
}

/// A reply that cannot be used, or a fix that cannot be offered: a kind to match on and a
/// message that says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AnswerError {
    kind: AnswerErrorKind,
    message: String,
}

impl AnswerError {
    fn new(kind: AnswerErrorKind, message: String) -> AnswerError {
        AnswerError { kind, message }
    }

    pub fn kind(&self) -> AnswerErrorKind {
        self.kind
    }
}

/// Reads the reply object from a model's text: the whole text, a fenced block, or the first
/// balanced `{…}` in it.
pub fn parse_reply(text: &str) -> Result<Reply, AnswerError> {
    let trimmed = text.trim();
    let mut candidates: Vec<&str> = vec![trimmed];
    if let Some(fenced) = fenced_block(trimmed) {
        candidates.push(fenced);
    }
    if let Some(object) = first_object(trimmed) {
        candidates.push(object);
    }
    let mut last_error = String::from("the reply is empty");
    for candidate in candidates {
        match serde_json::from_str::<Reply>(candidate) {
            Ok(reply) if reply.explanation.trim().is_empty() => {
                last_error = "`explanation` is empty".to_owned()
            }
            Ok(reply) => return Ok(reply),
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(AnswerError::new(
        AnswerErrorKind::NotTheReply,
        format!("the reply is not the JSON object asked for: {last_error}"),
    ))
}

fn fenced_block(text: &str) -> Option<&str> {
    let start = text.find("```")?;
    let after = &text[start + 3..];
    let body_start = after.find('\n')? + 1;
    let body = &after[body_start..];
    let end = body.find("```")?;
    Some(body[..end].trim())
}

fn first_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text[start..].char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..=start + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The follow-up prompt after a reply that did not parse.
pub fn repair_prompt(prompt: &str, reply: &str, error: &AnswerError) -> String {
    format!(
        "{prompt}\n\n## Your previous answer could not be used\n\n{error}\n\nIt was:\n{reply}\n\n\
         Answer again with only the JSON object described in the instructions."
    )
}

/// One replacement in a file, in byte offsets of its current text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub range: Range<usize>,
    pub new: String,
}

/// A fix that applies and parses: the replacements per workspace-relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedFix {
    pub description: String,
    pub files: BTreeMap<String, Vec<Replacement>>,
}

/// Applies every edit in memory and reparses each file. `read` gives a file's current text
/// (the editor's, when open). Returns the reason when the fix cannot be offered.
pub fn verify(
    fix: &Fix,
    default_path: &str,
    read: &dyn Fn(&str) -> Option<String>,
) -> Result<VerifiedFix, AnswerError> {
    if fix.edits.is_empty() {
        return Err(AnswerError::new(AnswerErrorKind::NoEdits, "the fix has no edits".to_owned()));
    }
    let mut files: BTreeMap<String, (String, Vec<Replacement>)> = BTreeMap::new();
    for (n, edit) in fix.edits.iter().enumerate() {
        let path = edit.path.clone().unwrap_or_else(|| default_path.to_owned());
        if path.contains("..") || path.starts_with('/') {
            let message = format!("edit {}: `{path}` is outside the workspace", n + 1);
            return Err(AnswerError::new(AnswerErrorKind::OutsideWorkspace, message));
        }
        if !files.contains_key(&path) {
            let text = read(&path).ok_or_else(|| {
                AnswerError::new(AnswerErrorKind::Unreadable, format!("edit {}: cannot read `{path}`", n + 1))
            })?;
            files.insert(path.clone(), (text, Vec::new()));
        }
        let (text, replacements) = files.get_mut(&path).expect("inserted above");
        if edit.old.is_empty() {
            return Err(AnswerError::new(
                AnswerErrorKind::OldText,
                format!("edit {}: `old` is empty", n + 1),
            ));
        }
        let found: Vec<usize> = text.match_indices(&edit.old).map(|(i, _)| i).collect();
        let start = match found.as_slice() {
            [start] => *start,
            [] => {
                let message = format!("edit {}: its `old` text is not in `{path}`", n + 1);
                return Err(AnswerError::new(AnswerErrorKind::OldText, message));
            }
            many => {
                let message =
                    format!("edit {}: its `old` text occurs {} times in `{path}`", n + 1, many.len());
                return Err(AnswerError::new(AnswerErrorKind::OldText, message));
            }
        };
        let range = start..start + edit.old.len();
        if replacements.iter().any(|r: &Replacement| r.range.start < range.end && range.start < r.range.end) {
            let message = format!("edit {}: it overlaps another edit", n + 1);
            return Err(AnswerError::new(AnswerErrorKind::Overlap, message));
        }
        replacements.push(Replacement { range, new: edit.new.clone() });
    }
    let mut verified = BTreeMap::new();
    for (path, (text, mut replacements)) in files {
        replacements.sort_by_key(|r| r.range.start);
        if let Some(language) = Language::from_path(std::path::Path::new(&path)) {
            let after = apply(&text, &replacements);
            let before: Vec<String> =
                classify::check(language, &text).into_iter().map(|d| d.fingerprint).collect();
            let new_errors: Vec<classify::Diagnostic> = classify::check(language, &after)
                .into_iter()
                .filter(|d| !before.contains(&d.fingerprint))
                .collect();
            if let Some(error) = new_errors.first() {
                let line = after[..error.range.start].matches('\n').count() + 1;
                let message =
                    format!("the fix leaves a syntax error in `{path}`: {} (line {line})", error.message);
                return Err(AnswerError::new(AnswerErrorKind::SyntaxError, message));
            }
        }
        verified.insert(path, replacements);
    }
    Ok(VerifiedFix { description: fix.description.clone(), files: verified })
}

/// The text with non-overlapping, sorted replacements applied.
pub fn apply(text: &str, replacements: &[Replacement]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in replacements {
        out.push_str(&text[at..r.range.start]);
        out.push_str(&r.new);
        at = r.range.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_bare_fenced_or_wrapped_in_prose() {
        let object = r#"{"explanation": "The call is missing `)`.", "fix": {"description": "close it", "edits": [{"old": "f(1", "new": "f(1)"}]}}"#;
        let expected = parse_reply(object).unwrap();
        assert_eq!(expected.fix.as_ref().unwrap().edits[0].new, "f(1)");
        assert_eq!(parse_reply(&format!("```json\n{object}\n```")).unwrap(), expected);
        assert_eq!(parse_reply(&format!("Here you go:\n{object}\nHope it helps.")).unwrap(), expected);
        let no_fix = parse_reply(r#"{"explanation": "Cannot tell.", "fix": null}"#).unwrap();
        assert_eq!(no_fix.fix, None);
        let error = parse_reply("I think the problem is the parenthesis.").unwrap_err();
        assert_eq!(error.kind(), AnswerErrorKind::NotTheReply);
        assert!(error.to_string().starts_with("the reply is not the JSON object asked for"), "{error}");
        assert!(parse_reply(r#"{"explanation": " ", "fix": null}"#).is_err());
        assert!(parse_reply(r#"{"explanation": "x", "fix": {"edits": []}}"#).is_err());
    }

    #[test]
    fn fixes_are_offered_only_when_they_apply_once_and_parse() {
        let files = |path: &str| match path {
            "lib.rs" => Some("fn area(r: f64) -> f64 {\n    3.14 * (r * r\n}\n".to_owned()),
            "other.rs" => Some("fn a() {}\nfn a() {}\n".to_owned()),
            _ => None,
        };
        let fix = |edits: Vec<(&str, &str)>| Fix {
            description: "d".into(),
            edits: edits
                .into_iter()
                .map(|(old, new)| Edit { path: None, old: old.into(), new: new.into() })
                .collect(),
        };
        let good = verify(&fix(vec![("(r * r\n", "(r * r)\n")]), "lib.rs", &files).unwrap();
        let replacements = &good.files["lib.rs"];
        assert_eq!(
            apply(&files("lib.rs").unwrap(), replacements),
            "fn area(r: f64) -> f64 {\n    3.14 * (r * r)\n}\n"
        );

        let breaks = verify(&fix(vec![("(r * r\n", "(r * r))\n")]), "lib.rs", &files).unwrap_err();
        assert_eq!(breaks.kind(), AnswerErrorKind::SyntaxError);
        assert!(breaks.to_string().starts_with("the fix leaves a syntax error in `lib.rs`"), "{breaks}");
        let absent = verify(&fix(vec![("nope", "x")]), "lib.rs", &files).unwrap_err();
        assert_eq!(absent.kind(), AnswerErrorKind::OldText);
        assert_eq!(absent.to_string(), "edit 1: its `old` text is not in `lib.rs`");
        let twice = Fix {
            edits: vec![Edit { path: Some("other.rs".into()), old: "fn a() {}".into(), new: "".into() }],
            ..fix(vec![])
        };
        let ambiguous = verify(&twice, "lib.rs", &files).unwrap_err();
        assert_eq!(ambiguous.kind(), AnswerErrorKind::OldText);
        assert_eq!(ambiguous.to_string(), "edit 1: its `old` text occurs 2 times in `other.rs`");
        let outside = Fix {
            edits: vec![Edit { path: Some("../etc/passwd".into()), old: "x".into(), new: "y".into() }],
            ..fix(vec![])
        };
        let outside = verify(&outside, "lib.rs", &files).unwrap_err();
        assert_eq!(outside.kind(), AnswerErrorKind::OutsideWorkspace);
        assert!(outside.to_string().contains("outside the workspace"), "{outside}");
        let empty = verify(&fix(vec![]), "lib.rs", &files).unwrap_err();
        assert_eq!(
            (empty.kind(), empty.to_string()),
            (AnswerErrorKind::NoEdits, "the fix has no edits".to_owned())
        );
    }
}
