//! `editor.notify` and `editor.diagnostic`: messages and diagnostics shown in the editor, through
//! [`Editor`](super::Editor), whatever front end runs the workflow.

use std::path::Path;

use serde_json::{Value, json};

use super::schema::{Kind, Param, Spec};
use super::{ActionError, Args, Editor, confine};

pub const NOTIFY: Spec = Spec {
    name: "editor.notify",
    summary: "Shows a message in the editor (under `acas workflow run`, on the terminal).",
    params: &[
        Param::required("message", Kind::Text, "The message."),
        Param::optional(
            "level",
            Kind::Choice(&["info", "warning", "error"]),
            Some("info"),
            "How it is shown.",
        ),
    ],
    exclusive: &[],
    output: "`{level, message}`.",
};

pub const DIAGNOSTIC: Spec = Spec {
    name: "editor.diagnostic",
    summary: "Puts a diagnostic on a file of the workspace.",
    params: &[
        Param::required("path", Kind::String, "Workspace-relative path, or absolute inside the workspace."),
        Param::required("line", Kind::Integer, "1-based line."),
        Param::optional("column", Kind::Integer, Some("1"), "1-based column."),
        Param::optional(
            "severity",
            Kind::Choice(&["error", "warning", "information", "hint"]),
            Some("warning"),
            "The diagnostic's severity.",
        ),
        Param::required("message", Kind::Text, "The diagnostic's text."),
    ],
    exclusive: &[],
    output: "`{path, line, column, severity}`, with the normalised path.",
};

pub fn notify(editor: &dyn Editor, args: &Args<'_>) -> Result<Value, ActionError> {
    let message = args.need_text("message")?;
    let level = args.str("level").unwrap_or("info");
    editor.notify(level, &message);
    Ok(json!({"level": level, "message": message}))
}

pub fn diagnostic(workspace: &Path, editor: &dyn Editor, args: &Args<'_>) -> Result<Value, ActionError> {
    let given = args.need_str("path")?;
    let parts = confine::lexical(workspace, given)?;
    if parts.is_empty() {
        return Err(ActionError::new(format!("`{given}` is the workspace itself; name a file inside it")));
    }
    let path = confine::relative(&parts);
    let line = one_based(args, "line", 0)?;
    let column = one_based(args, "column", 1)?;
    let severity = args.str("severity").unwrap_or("warning");
    editor.diagnostic(&path, line, column, severity, &args.need_text("message")?);
    Ok(json!({"path": path, "line": line, "column": column, "severity": severity}))
}

fn one_based(args: &Args<'_>, name: &str, default: u64) -> Result<u32, ActionError> {
    match args.u64(name).unwrap_or(default) {
        0 => Err(ActionError::new(format!("`{name}` is 1-based: 1 is the first"))),
        n => u32::try_from(n).map_err(|_| ActionError::new(format!("`{name}` is too large: {n}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Outcome, context, run_with};
    use serde_json::json;

    #[test]
    fn messages_and_diagnostics_reach_the_editor() {
        let ws = tempfile::tempdir().unwrap();
        let ctx = context(ws.path());
        let run = |action: &str, with: serde_json::Value| run_with(&ctx, action, with);
        assert_eq!(
            run("editor.notify", json!({"message": "Tests passed"})),
            Outcome::Ok(json!({"level": "info", "message": "Tests passed"}))
        );
        run("editor.notify", json!({"message": 3, "level": "error"})).ok();
        assert_eq!(
            run(
                "editor.diagnostic",
                json!({"path": "./src/a.rs", "line": 4, "message": "slow", "severity": "hint"})
            ),
            Outcome::Ok(json!({"path": "src/a.rs", "line": 4, "column": 1, "severity": "hint"}))
        );
        assert!(
            run("editor.diagnostic", json!({"path": "a.rs", "line": 0, "message": "m"}))
                .err()
                .contains("1-based")
        );
        assert!(
            run("editor.diagnostic", json!({"path": "../a.rs", "line": 1, "message": "m"}))
                .err()
                .contains("climbs out")
        );
        assert_eq!(
            super::super::tests::editor_log(&ctx),
            ["notify info: Tests passed", "notify error: 3", "diagnostic src/a.rs:4:1 hint: slow"]
        );
    }
}
