//! A small delimiter lexer used to localise syntax errors.
//!
//! It finds the brackets of a text that are code (not inside strings, comments, regular
//! expressions or JSX text), the indentation and first/last token of every line, and strings
//! that are never closed. It reads only the region of the text that holds the tree's errors (see
//! `syntax::error_region`), so its cost follows the broken code, not the file. For the
//! JavaScript family, where the lexical rules alone cannot tell a regular expression from a
//! division or JSX text from code, it defers to the tree where it is sound (a string node that
//! parsed without error is skipped whole); elsewhere it uses the language's lexical rules. It
//! never fails and runs in one pass over the bytes.

use std::ops::Range;

use tree_sitter::{Tree, TreeCursor};

use super::Language;

/// One bracket of code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delim {
    /// `(`, `[`, `{`, `)`, `]` or `}`.
    pub ch: u8,
    pub offset: usize,
    pub line: u32,
}

impl Delim {
    pub fn is_open(self) -> bool {
        matches!(self.ch, b'(' | b'[' | b'{')
    }
}

/// Layout of one line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    pub start: usize,
    /// Indentation in columns (a tab counts as four).
    pub indent: u32,
    /// First and last byte offset of a code token on the line (strings count, comments do not).
    pub first: Option<usize>,
    pub last: Option<usize>,
}

impl Line {
    pub fn is_blank(&self) -> bool {
        self.first.is_none()
    }
}

/// A string, comment or similar literal that is never closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unterminated {
    pub offset: usize,
    pub what: &'static str,
}

#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub lines: Vec<Line>,
    pub delims: Vec<Delim>,
    pub unterminated: Vec<Unterminated>,
}

impl Scan {
    pub fn line_of(&self, offset: usize) -> u32 {
        (self.lines.partition_point(|l| l.start <= offset).max(1) - 1) as u32
    }
}

/// Node kinds whose text is opaque to the delimiter scan when they parsed without error.
fn is_opaque(kind: &str) -> bool {
    matches!(
        kind,
        "string"
            | "string_literal"
            | "raw_string_literal"
            | "char_literal"
            | "interpreted_string_literal"
            | "rune_literal"
            | "template_string"
            | "regex"
            | "comment"
            | "line_comment"
            | "block_comment"
            | "jsx_text"
            | "html_comment"
    )
}

/// Walks the tree forwards to answer "which opaque node contains this offset?" for increasing
/// offsets, touching each node at most a few times.
struct Opaque<'t> {
    cursor: TreeCursor<'t>,
    lang: Language,
    text: &'t str,
    done: bool,
}

impl<'t> Opaque<'t> {
    fn new(tree: &'t Tree, lang: Language, text: &'t str) -> Self {
        // Only the JavaScript family has literals that the lexer cannot tell from code by itself
        // (a regular expression or a division, JSX text with a quote in it); elsewhere its rules
        // are the language's own, and asking the tree would cost a walk of it on every scan.
        let done = !lang.has_regex();
        Opaque { cursor: tree.walk(), lang, text, done }
    }

    /// A string that spans lines is only trusted where the language allows that; otherwise it
    /// is an unterminated string that the grammar's scanner ran on.
    fn trusted(&self, node: tree_sitter::Node<'_>) -> bool {
        if node.start_position().row == node.end_position().row {
            return true;
        }
        match (self.lang, node.kind()) {
            (_, "comment" | "block_comment" | "template_string" | "jsx_text" | "html_comment") => true,
            (Language::Rust, _) => true,
            (Language::Go, "raw_string_literal") => true,
            (Language::Python, "string") => {
                let t = self.text.get(node.start_byte()..node.end_byte()).unwrap_or("");
                let t = t.trim_start_matches(|c: char| c.is_ascii_alphabetic());
                t.starts_with("\"\"\"") || t.starts_with("'''")
            }
            _ => false,
        }
    }

    /// End of the error-free opaque node containing `pos`, if any. Offsets must not decrease
    /// between calls.
    fn end_at(&mut self, pos: usize) -> Option<usize> {
        if self.done {
            return None;
        }
        let mut climbed = false;
        loop {
            let node = self.cursor.node();
            if node.end_byte() > pos {
                break;
            }
            if self.cursor.goto_next_sibling() {
                climbed = false;
                continue;
            }
            if !self.cursor.goto_parent() {
                self.done = true;
                return None;
            }
            climbed = true;
        }
        // `pos` lies in a gap of a node whose children all end before it.
        if climbed {
            return None;
        }
        loop {
            let node = self.cursor.node();
            if node.start_byte() > pos {
                return None;
            }
            if is_opaque(node.kind()) && !node.has_error() && !node.is_missing() {
                return Some(node.end_byte()).filter(|_| self.trusted(node));
            }
            if !self.cursor.goto_first_child() {
                return None;
            }
            while self.cursor.node().end_byte() <= pos {
                if !self.cursor.goto_next_sibling() {
                    // `pos` is in trailing space of the parent; stay on this last child.
                    return None;
                }
            }
        }
    }
}

struct Lexer<'a, 't> {
    lang: Language,
    b: &'a [u8],
    /// Where the scan stops (a literal that starts before it is still read to its end).
    end: usize,
    i: usize,
    scan: Scan,
    tree: &'t Tree,
    opaque: Opaque<'t>,
    /// Brace depth at each open `${` of a template literal (JavaScript and TypeScript).
    templates: Vec<usize>,
    braces: usize,
    /// The previous code byte, for telling a regular expression from a division.
    prev: u8,
    prev_word_keyword: bool,
    cur_line: usize,
}

/// Scans the bytes of `region` (a range of `text` that starts outside any literal) for
/// delimiters, line layout and unterminated strings. Line starts and indentation cover the whole
/// text; tokens outside `region` are not seen, so lines there look blank.
pub(crate) fn scan<'t>(lang: Language, text: &'t str, tree: &'t Tree, region: Range<usize>) -> Scan {
    let b = text.as_bytes();
    let mut lines = Vec::with_capacity(b.len() / 32 + 1);
    let mut start = 0;
    loop {
        let mut indent = 0;
        let mut j = start;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            indent += if b[j] == b'\t' { 4 } else { 1 };
            j += 1;
        }
        let line_end = b[start..].iter().position(|&c| c == b'\n').map(|n| start + n);
        // Outside `region` a line's first and last tokens are approximated by its first and last
        // non-blank bytes; inside, the lexer sets them.
        let mut k = line_end.unwrap_or(b.len());
        while k > j && b[k - 1].is_ascii_whitespace() {
            k -= 1;
        }
        let (first, last) = if k > j && (k <= region.start || start >= region.end) {
            (Some(j), Some(k - 1))
        } else {
            (None, None)
        };
        lines.push(Line { start, indent, first, last });
        match line_end {
            Some(n) => start = n + 1,
            None => break,
        }
    }
    let end = region.end.min(b.len());
    let mut lexer = Lexer {
        lang,
        b,
        end,
        i: region.start.min(end),
        scan: Scan { lines, delims: Vec::new(), unterminated: Vec::new() },
        tree,
        opaque: Opaque::new(tree, lang, text),
        templates: Vec::new(),
        braces: 0,
        prev: 0,
        prev_word_keyword: false,
        cur_line: 0,
    };
    lexer.run();
    lexer.scan
}

impl Lexer<'_, '_> {
    /// The line of `offset`. Offsets mostly increase, so walk forward from the last answer.
    fn line(&mut self, offset: usize) -> usize {
        let lines = &self.scan.lines;
        if lines[self.cur_line].start > offset {
            self.cur_line = lines.partition_point(|l| l.start <= offset).max(1) - 1;
        }
        while self.cur_line + 1 < lines.len() && lines[self.cur_line + 1].start <= offset {
            self.cur_line += 1;
        }
        self.cur_line
    }

    fn mark(&mut self, offset: usize) {
        let line = self.line(offset);
        let l = &mut self.scan.lines[line];
        if l.first.is_none() {
            l.first = Some(offset);
        }
        l.last = Some(offset);
    }

    fn at(&self, k: usize) -> u8 {
        self.b.get(k).copied().unwrap_or(0)
    }

    fn run(&mut self) {
        let c_like = !matches!(self.lang, Language::Python);
        while self.i < self.end {
            let c = self.b[self.i];
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' => {
                    self.i += 1;
                    continue;
                }
                _ => {}
            }
            let start = self.i;
            // Comments, strings and the like: trust the tree where it parsed them cleanly.
            let may_open_literal = matches!(c, b'"' | b'\'' | b'`' | b'/' | b'#')
                || (self.lang == Language::Python && c.is_ascii_alphabetic())
                || (self.lang == Language::Rust && matches!(c, b'r' | b'b' | b'c'));
            if may_open_literal
                && (c != b'/' || matches!(self.at(start + 1), b'/' | b'*') || self.lang.has_regex())
            {
                let is_literal_start = match c {
                    b'"' | b'\'' | b'`' | b'/' | b'#' => true,
                    _ => self.prefixed_string_len().is_some(),
                };
                if is_literal_start
                    && let Some(end) = self.opaque.end_at(start)
                    && end > start
                {
                    if !self.is_comment_start() {
                        self.mark(start);
                        self.mark(end - 1);
                    }
                    self.i = end;
                    self.prev = b'"';
                    continue;
                }
            }
            if c_like && c == b'/' && self.at(start + 1) == b'/' {
                self.skip_line();
                continue;
            }
            if c_like && c == b'/' && self.at(start + 1) == b'*' {
                self.block_comment();
                continue;
            }
            if !c_like && c == b'#' {
                self.skip_line();
                continue;
            }
            match self.lang {
                Language::Python => {
                    let n = if c == b'"' || c == b'\'' { Some(0) } else { self.prefixed_string_len() };
                    if let Some(n) = n {
                        self.mark(start);
                        self.i += n;
                        self.python_string(start);
                        continue;
                    }
                }
                Language::Rust => {
                    if let Some(n) = self.prefixed_string_len() {
                        self.mark(start);
                        self.i += n;
                        self.rust_prefixed(start);
                        continue;
                    }
                    if c == b'"' {
                        self.mark(start);
                        self.i += 1;
                        self.quoted(start, b'"', true, "string");
                        if self.unclosed_at_line_end(start) {
                            self.scan.unterminated.push(Unterminated { offset: start, what: "string" });
                            self.i = self.b[start..]
                                .iter()
                                .position(|&c| c == b'\n')
                                .map_or(self.end, |n| start + n);
                        }
                        continue;
                    }
                    if c == b'\'' {
                        self.mark(start);
                        self.rust_quote();
                        continue;
                    }
                }
                Language::Go => {
                    if c == b'"' || c == b'\'' {
                        self.mark(start);
                        self.i += 1;
                        self.quoted(start, c, false, if c == b'"' { "string" } else { "rune literal" });
                        continue;
                    }
                    if c == b'`' {
                        self.mark(start);
                        self.i += 1;
                        self.quoted(start, b'`', true, "raw string");
                        continue;
                    }
                }
                Language::Json => {
                    if c == b'"' {
                        self.mark(start);
                        self.i += 1;
                        self.quoted(start, b'"', false, "string");
                        continue;
                    }
                }
                Language::JavaScript | Language::TypeScript | Language::Tsx => {
                    if c == b'"' || c == b'\'' {
                        self.mark(start);
                        self.i += 1;
                        self.quoted(start, c, false, "string");
                        continue;
                    }
                    if c == b'`' {
                        self.mark(start);
                        self.i += 1;
                        self.template(start);
                        continue;
                    }
                    if c == b'/' && self.regex_allowed() {
                        self.mark(start);
                        self.i += 1;
                        self.regex(start);
                        continue;
                    }
                    if c == b'}' && self.templates.last() == Some(&self.braces) {
                        self.templates.pop();
                        self.mark(start);
                        self.i += 1;
                        self.template(start);
                        continue;
                    }
                }
            }
            self.mark(start);
            match c {
                b'(' | b'[' | b'{' | b')' | b']' | b'}' => {
                    if c == b'{' {
                        self.braces += 1;
                    } else if c == b'}' {
                        self.braces = self.braces.saturating_sub(1);
                    }
                    let line = self.line(start) as u32;
                    self.scan.delims.push(Delim { ch: c, offset: start, line });
                    self.prev = c;
                    self.i += 1;
                }
                _ if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 => {
                    let mut j = self.i;
                    while j < self.b.len()
                        && (self.b[j].is_ascii_alphanumeric()
                            || self.b[j] == b'_'
                            || self.b[j] == b'$'
                            || self.b[j] >= 0x80)
                    {
                        j += 1;
                    }
                    let word = &self.b[self.i..j];
                    self.prev_word_keyword = matches!(
                        word,
                        b"return"
                            | b"typeof"
                            | b"case"
                            | b"do"
                            | b"else"
                            | b"in"
                            | b"of"
                            | b"new"
                            | b"delete"
                            | b"void"
                            | b"throw"
                            | b"instanceof"
                            | b"yield"
                            | b"await"
                    );
                    self.prev = b'a';
                    self.i = j.max(self.i + 1);
                }
                _ => {
                    self.prev = c;
                    self.i += 1;
                }
            }
        }
    }

    fn is_comment_start(&self) -> bool {
        let c = self.at(self.i);
        match self.lang {
            Language::Python => c == b'#',
            _ => c == b'/' && matches!(self.at(self.i + 1), b'/' | b'*'),
        }
    }

    fn skip_line(&mut self) {
        while self.i < self.b.len() && self.b[self.i] != b'\n' {
            self.i += 1;
        }
    }

    fn block_comment(&mut self) {
        let start = self.i;
        self.i += 2;
        let nested = self.lang == Language::Rust;
        let mut depth = 1usize;
        while self.i < self.b.len() {
            if self.b[self.i] == b'*' && self.at(self.i + 1) == b'/' {
                self.i += 2;
                depth -= 1;
                if depth == 0 {
                    return;
                }
            } else if nested && self.b[self.i] == b'/' && self.at(self.i + 1) == b'*' {
                self.i += 2;
                depth += 1;
            } else {
                self.i += 1;
            }
        }
        self.scan.unterminated.push(Unterminated { offset: start, what: "block comment" });
    }

    /// Scans a quoted literal after its opening quote. A literal that cannot span lines stops at
    /// the end of the line and is reported as unterminated.
    fn quoted(&mut self, start: usize, quote: u8, multiline: bool, what: &'static str) {
        let escapes = quote != b'`';
        while self.i < self.b.len() {
            let c = self.b[self.i];
            if c == quote {
                self.i += 1;
                self.mark(self.i - 1);
                self.prev = b'"';
                return;
            }
            if escapes && c == b'\\' {
                self.i += 2;
                continue;
            }
            if c == b'\n' && !multiline {
                break;
            }
            self.i += 1;
        }
        self.i = self.i.min(self.b.len());
        self.prev = b'"';
        self.scan.unterminated.push(Unterminated { offset: start, what });
    }

    /// Rust strings may span lines, so a string left open runs to the next quote (often the
    /// opening quote of a later string) and the text between reads as string, the rest of the
    /// file inside out. Whether the string that opened at `start` and closed before `self.i`
    /// looks like one left open at the end of its first line: it spans lines, its first line
    /// ends like code (`,` `;` `(` `)` `{` `}` `[` `]` `?`) rather than prose or a `\`
    /// continuation, and the next line of code (blank lines and line comments skipped) is
    /// indented like the code around it and also ends like code:
    ///
    /// ```text
    ///     "Structure needs cleaning,
    ///     "Not a XENIX named type file",
    /// ```
    ///
    /// The tree must have an error on the rest of the line where the string closes, where the
    /// code after a string left open reads as string and its string as code. (A valid multi-line
    /// string, such as SQL, ends before clean code.)
    fn unclosed_at_line_end(&self, start: usize) -> bool {
        let close = self.i.min(self.b.len());
        let Some(nl) = self.b[start..close].iter().position(|&c| c == b'\n').map(|n| start + n) else {
            return false;
        };
        let ends_like_code = |line: &[u8]| {
            let t = line.trim_ascii_end();
            t.last().is_some_and(|c| b",;(){}[]?".contains(c)) && !t.ends_with(b"\\")
        };
        let first_line = &self.b[start + 1..nl];
        if !ends_like_code(first_line) || self.b[..nl].ends_with(b"\\") {
            return false;
        }
        let line_start = self.b[..start].iter().rposition(|&c| c == b'\n').map_or(0, |n| n + 1);
        let indent_of = |from: usize| self.b[from..].iter().take_while(|&&c| c == b' ' || c == b'\t').count();
        let indent = indent_of(line_start);
        // The next non-blank line.
        let mut from = nl + 1;
        while from < self.b.len() {
            let end = self.b[from..].iter().position(|&c| c == b'\n').map_or(self.b.len(), |n| from + n);
            let line = &self.b[from..end];
            // Blank lines and line comments (`// then this`) say nothing.
            if line.trim_ascii().is_empty() || line.trim_ascii_start().starts_with(b"//") {
                from = end + 1;
                continue;
            }
            let next_indent = indent_of(from);
            let closer = matches!(line.trim_ascii_start().first(), Some(b'}' | b')' | b']'));
            // Prose continued at the margin, unless the string's own line is at the margin (an
            // item: `const F: &str = ".gitmodules;` then `mod errors;`).
            let margin = next_indent == 0 && indent > 0 && !closer;
            if margin || next_indent.abs_diff(indent) > 8 || !ends_like_code(line) {
                return false;
            }
            break;
        }
        // And the parse breaks where the string ends: on the rest of its last line.
        let close_line_end =
            self.b[close..].iter().position(|&c| c == b'\n').map_or(self.b.len(), |n| close + n);
        error_in(self.tree.root_node(), close.saturating_sub(1)..close_line_end.max(close + 1))
    }

    /// Length of a string prefix plus opening quote at the cursor (`r"`, `b'`, `f"""`, `r#"`),
    /// or `None` if no prefixed string starts here.
    fn prefixed_string_len(&self) -> Option<usize> {
        let i = self.i;
        if i > 0 && {
            let p = self.b[i - 1];
            p.is_ascii_alphanumeric() || p == b'_' || p >= 0x80
        } {
            return None;
        }
        let mut j = i;
        while j < self.b.len() && j - i < 3 && self.b[j].is_ascii_alphabetic() {
            j += 1;
        }
        if j == i {
            return None;
        }
        match self.lang {
            Language::Python => {
                let mut prefix = [0u8; 3];
                for (p, c) in prefix.iter_mut().zip(&self.b[i..j]) {
                    *p = c.to_ascii_lowercase();
                }
                let ok =
                    matches!(&prefix[..j - i], b"r" | b"u" | b"b" | b"f" | b"br" | b"rb" | b"fr" | b"rf");
                (ok && matches!(self.at(j), b'"' | b'\'')).then_some(j - i)
            }
            Language::Rust => {
                let p = &self.b[i..j];
                let raw = matches!(p, b"r" | b"br" | b"cr");
                let plain = matches!(p, b"b" | b"c");
                let string = (raw && matches!(self.at(j), b'"' | b'#'))
                    || (plain && self.at(j) == b'"')
                    || (p == b"b" && self.at(j) == b'\'');
                string.then_some(j - i)
            }
            _ => None,
        }
    }

    fn rust_prefixed(&mut self, start: usize) {
        let prefix_raw = self.b[start..self.i].contains(&b'r');
        if prefix_raw {
            let mut hashes = 0;
            while self.at(self.i) == b'#' {
                hashes += 1;
                self.i += 1;
            }
            if self.at(self.i) != b'"' {
                // `r#ident` (a raw identifier), not a string.
                self.prev = b'a';
                return;
            }
            self.i += 1;
            while self.i < self.b.len() {
                if self.b[self.i] == b'"' && (1..=hashes).all(|k| self.at(self.i + k) == b'#') {
                    self.i += 1 + hashes;
                    self.mark(self.i - 1);
                    self.prev = b'"';
                    return;
                }
                self.i += 1;
            }
            self.scan.unterminated.push(Unterminated { offset: start, what: "raw string" });
        } else if self.at(self.i) == b'\'' {
            self.rust_quote();
        } else {
            self.i += 1;
            self.quoted(start, b'"', true, "string");
        }
    }

    /// A `'` in Rust: a character literal or a lifetime/label.
    fn rust_quote(&mut self) {
        let start = self.i;
        let next = self.at(start + 1);
        if next == b'\\' {
            // `'\u{1_F6_02}'`: a Unicode escape takes any number of underscores.
            if self.at(start + 2) == b'u' && self.at(start + 3) == b'{' {
                let digits = self.b[start + 4..]
                    .iter()
                    .take(64)
                    .take_while(|c| c.is_ascii_hexdigit() || **c == b'_')
                    .count();
                let close = start + 4 + digits;
                if self.at(close) == b'}' && self.at(close + 1) == b'\'' {
                    self.i = close + 2;
                    self.prev = b'"';
                    return;
                }
            }
            // An escaped character: find the closing quote on this line.
            let mut j = start + 2;
            while j < self.b.len() && j - start < 14 && self.b[j] != b'\n' {
                if self.b[j] == b'\'' && j > start + 2 {
                    self.i = j + 1;
                    self.prev = b'"';
                    return;
                }
                j += 1;
            }
            self.scan.unterminated.push(Unterminated { offset: start, what: "character literal" });
            self.skip_line();
            return;
        }
        let width = utf8_width(next);
        if next != b'\n' && next != 0 && self.at(start + 1 + width) == b'\'' {
            self.i = start + 2 + width;
            self.prev = b'"';
            return;
        }
        // A lifetime or a label.
        self.i += 1;
        self.prev = b'a';
    }

    fn python_string(&mut self, start: usize) {
        let quote = self.b[self.i];
        let triple = self.at(self.i + 1) == quote && self.at(self.i + 2) == quote;
        if !triple {
            self.i += 1;
            self.quoted(start, quote, false, "string");
            return;
        }
        self.i += 3;
        while self.i < self.b.len() {
            let c = self.b[self.i];
            if c == b'\\' {
                self.i += 2;
                continue;
            }
            if c == quote && self.at(self.i + 1) == quote && self.at(self.i + 2) == quote {
                self.i += 3;
                self.mark(self.i - 1);
                return;
            }
            self.i += 1;
        }
        self.i = self.b.len();
        self.scan.unterminated.push(Unterminated { offset: start, what: "triple-quoted string" });
    }

    /// The body of a template literal, after `` ` `` or after the `}` that ends a substitution.
    fn template(&mut self, start: usize) {
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'`' => {
                    self.i += 1;
                    self.mark(self.i - 1);
                    self.prev = b'"';
                    return;
                }
                b'$' if self.at(self.i + 1) == b'{' => {
                    self.i += 2;
                    self.templates.push(self.braces);
                    self.prev = b'(';
                    return;
                }
                _ => self.i += 1,
            }
        }
        self.i = self.b.len();
        self.scan.unterminated.push(Unterminated { offset: start, what: "template literal" });
    }

    fn regex_allowed(&self) -> bool {
        let p = self.prev;
        if p == b'a' {
            return self.prev_word_keyword;
        }
        // After `<` a `/` closes a JSX element.
        !matches!(p, b')' | b']' | b'}' | b'"' | b'<')
    }

    fn regex(&mut self, start: usize) {
        let mut class = false;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'\n' => break,
                b'[' => {
                    class = true;
                    self.i += 1
                }
                b']' => {
                    class = false;
                    self.i += 1
                }
                b'/' if !class => {
                    self.i += 1;
                    while self.i < self.b.len() && self.b[self.i].is_ascii_alphabetic() {
                        self.i += 1;
                    }
                    self.prev = b'"';
                    return;
                }
                _ => self.i += 1,
            }
        }
        self.i = self.i.min(self.b.len());
        self.prev = b'"';
        self.scan.unterminated.push(Unterminated { offset: start, what: "regular expression" });
    }
}

impl Language {
    fn has_regex(self) -> bool {
        matches!(self, Language::JavaScript | Language::TypeScript | Language::Tsx)
    }
}

/// Whether an ERROR or MISSING node under `node` overlaps `range`.
fn error_in(node: tree_sitter::Node<'_>, range: Range<usize>) -> bool {
    if node.end_byte() <= range.start || node.start_byte() >= range.end || !node.has_error() {
        return false;
    }
    if node.is_error() || node.is_missing() {
        return true;
    }
    let mut cursor = node.walk();
    node.children(&mut cursor).any(|c| error_in(c, range.clone()))
}

fn utf8_width(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}
