//! Showing text that comes from agents or files (names, titles, descriptions, paths, details)
//! where a person reads it: control characters, bidi controls and invisible format characters
//! are written as escapes, so such text can neither drive a terminal, forge a line, nor look like
//! other text. It does not decide what is accepted as input; [`is_hidden_char`] is the rule that
//! input checks of names share.

/// Text from agents or files (names, titles, descriptions, paths, details) as it may be shown on
/// a terminal, on one line: control characters (escape sequences, newlines, tabs), bidi controls
/// and invisible format characters are written as escapes (`\u{1b}`, `\n`, `\u{202e}`), so such
/// text can neither drive the terminal, forge a line nor look like other text.
pub fn shown(text: &str) -> String {
    escape(text, false)
}

/// Like [`shown`] for text of several lines (a description): newlines and tabs are kept.
pub fn shown_lines(text: &str) -> String {
    escape(text, true)
}

/// Whether `c` could drive a terminal or hide what text says: a control character, a bidi
/// control, or an invisible format character (zero-width space and joiners, word joiner, byte
/// order mark, soft hyphen, line and paragraph separators).
pub fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

fn escape(text: &str, keep_lines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' if keep_lines => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_hidden_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_drive_a_terminal_or_hide_text() {
        assert_eq!(shown("a\u{1b}]0;pwned\u{7}b\nc"), "a\\u{1b}]0;pwned\\u{7}b\\nc");
        assert_eq!(shown("a\u{202e}gnp.exe"), "a\\u{202e}gnp.exe");
        assert_eq!(shown("claude-1\u{200b}"), "claude-1\\u{200b}");
        assert_eq!(shown("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(shown_lines("one\n\ttwo\u{1b}[2J"), "one\n\ttwo\\u{1b}[2J");
        assert_eq!(shown("plain ünïcode 名前"), "plain ünïcode 名前");
    }
}
