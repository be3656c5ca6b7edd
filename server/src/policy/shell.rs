//! A conservative lexer for the shell scripts policies judge: it cuts a script into its simple
//! commands and says, for each, whether its words are known before it runs.
//!
//! It knows quotes, comments, operators (`;`, `&`, `|`, `&&`, `||`, new lines, parentheses),
//! redirections, here-documents, leading `NAME=value` assignments and the compound-command
//! keywords (`if`, `while`, `for`, `{`...). It does not expand anything: a word that the shell
//! would change before running it (parameter expansion `$X` and `${…}`, command substitution
//! `$(…)` and backquotes, `$'…'` and `$"…"` quoting, backslash escapes and line continuations
//! inside a word, process substitution, an unquoted here-document body with `$`) makes its
//! command unknown, with the reason. Globs and braces in an argument leave the command known
//! but with arguments only the file system decides (`open`); in the program word they make it
//! unknown. `case`, `function`, `select`, `coproc`, `alias` and `trap` are unknown too.

/// One simple command of a script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Simple {
    /// `NAME=value` words before the program (and, for `export NAME=value`, its arguments).
    pub assigns: Vec<(String, String)>,
    /// The program and its arguments, quotes removed.
    pub words: Vec<String>,
    /// Why the words cannot be known before the script runs.
    pub unknown: Option<String>,
    /// Some argument is a glob or a brace expansion: the file system decides what it becomes.
    pub open: bool,
    /// A here-document or here-string feeds the command's standard input.
    pub fed: bool,
    /// The command as written, for messages.
    pub text: String,
}

/// Keywords that start a compound command: left out of the command that follows.
const PREFIX_KEYWORDS: [&str; 10] = ["if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"];
/// Keywords that end one.
const END_KEYWORDS: [&str; 4] = ["fi", "done", "}", "esac"];
/// Constructs whose commands this lexer does not follow.
const UNKNOWN_KEYWORDS: [&str; 4] = ["case", "function", "select", "coproc"];

#[derive(Default)]
struct Word {
    text: String,
    started: bool,
    quoted: bool,
    unknown: Option<&'static str>,
    glob: bool,
}

impl Word {
    fn unknown(&mut self, why: &'static str) {
        self.started = true;
        self.unknown.get_or_insert(why);
    }
}

#[derive(PartialEq, Eq)]
enum Target {
    None,
    Redirect,
    HereDoc { strip: bool },
}

struct Lexer<'a> {
    chars: Vec<char>,
    script: &'a str,
    at: usize,
    done: Vec<Simple>,
    current: Simple,
    /// Where the current command starts, in chars.
    start: Option<usize>,
    word: Word,
    target: Target,
    /// The current command is a `for` header: its words are not a command.
    header: bool,
    /// Here-documents to read at the next new line: (delimiter, strip tabs, quoted, command).
    heredocs: Vec<(String, bool, bool, usize)>,
}

/// The simple commands of `script`, in order.
pub fn split(script: &str) -> Vec<Simple> {
    let mut lexer = Lexer {
        chars: script.chars().collect(),
        script,
        at: 0,
        done: Vec::new(),
        current: Simple::default(),
        start: None,
        word: Word::default(),
        target: Target::None,
        header: false,
        heredocs: Vec::new(),
    };
    lexer.run();
    lexer.done
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn mark_start(&mut self) {
        if self.start.is_none() {
            self.start = Some(self.at);
        }
    }

    fn unknown(&mut self, why: &str) {
        self.current.unknown.get_or_insert_with(|| why.to_owned());
    }

    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            match c {
                ' ' | '\t' | '\r' => {
                    self.finish_word();
                    self.at += 1;
                }
                '\n' => {
                    self.finish_word();
                    self.end_command();
                    self.at += 1;
                    self.read_heredocs();
                }
                '#' if !self.word.started => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.at += 1;
                    }
                }
                ';' | '|' => {
                    self.finish_word();
                    self.end_command();
                    self.at += 1;
                }
                '&' => {
                    self.finish_word();
                    if self.peek(1) == Some('>') {
                        // `&>` and `&>>`: both outputs to a file.
                        self.mark_start();
                        self.at += if self.peek(2) == Some('>') { 3 } else { 2 };
                        self.target = Target::Redirect;
                    } else {
                        self.end_command();
                        self.at += 1;
                    }
                }
                '(' => {
                    self.finish_word();
                    // `name() { ...; }` defines a function: its body is judged where it is written.
                    let mut next = self.at + 1;
                    while self.chars.get(next).is_some_and(|c| *c == ' ' || *c == '\t') {
                        next += 1;
                    }
                    if self.chars.get(next) == Some(&')')
                        && self.current.words.len() == 1
                        && self.current.assigns.is_empty()
                    {
                        self.current = Simple::default();
                        self.start = None;
                        self.at = next + 1;
                    } else {
                        self.end_command();
                        self.at += 1;
                    }
                }
                ')' => {
                    self.finish_word();
                    self.end_command();
                    self.at += 1;
                }
                '<' | '>' => self.redirect(c),
                '\'' => {
                    self.mark_start();
                    self.word.started = true;
                    self.word.quoted = true;
                    self.at += 1;
                    loop {
                        match self.peek(0) {
                            None => {
                                self.word.unknown("an unterminated quote");
                                break;
                            }
                            Some('\'') => {
                                self.at += 1;
                                break;
                            }
                            Some(c) => {
                                self.word.text.push(c);
                                self.at += 1;
                            }
                        }
                    }
                }
                '"' => {
                    self.mark_start();
                    self.word.started = true;
                    self.word.quoted = true;
                    self.at += 1;
                    loop {
                        match self.peek(0) {
                            None => {
                                self.word.unknown("an unterminated quote");
                                break;
                            }
                            Some('"') => {
                                self.at += 1;
                                break;
                            }
                            Some(c) => {
                                match c {
                                    '$' => self.word.unknown("a `$` expansion"),
                                    '`' => self.word.unknown("a command substitution"),
                                    '\\' => self.word.unknown("a backslash escape"),
                                    _ => {}
                                }
                                self.word.text.push(c);
                                self.at += 1;
                            }
                        }
                    }
                }
                '\\' => {
                    self.mark_start();
                    if self.peek(1) == Some('\n') && !self.word.started {
                        // A line continuation between words is a space.
                        self.at += 2;
                    } else {
                        if self.peek(1) == Some('\n') {
                            self.word.unknown("a line continuation inside a word");
                        } else {
                            self.word.unknown("a backslash escape");
                        }
                        if let Some(next) = self.peek(1) {
                            self.word.text.push(next);
                        }
                        self.at += 2;
                    }
                }
                '$' => {
                    self.mark_start();
                    match self.peek(1) {
                        Some('\'') | Some('"') => self.word.unknown("`$'…'` or `$\"…\"` quoting"),
                        Some('(') => self.word.unknown("a command substitution `$(…)`"),
                        _ => self.word.unknown("a `$` expansion"),
                    }
                    self.word.text.push('$');
                    self.at += 1;
                }
                '`' => {
                    self.mark_start();
                    self.word.unknown("a command substitution (backquotes)");
                    self.word.text.push('`');
                    self.at += 1;
                }
                _ => {
                    self.mark_start();
                    if matches!(c, '*' | '?' | '[') || (matches!(c, '{' | '}') && self.word.started) {
                        self.word.glob = true;
                    }
                    if c == '{' && !self.word.started && self.peek(1).is_some_and(|n| !n.is_whitespace()) {
                        self.word.glob = true;
                    }
                    self.word.started = true;
                    self.word.text.push(c);
                    self.at += 1;
                }
            }
        }
        self.finish_word();
        self.end_command();
        if !self.heredocs.is_empty() {
            for (_, _, _, command) in std::mem::take(&mut self.heredocs) {
                if let Some(simple) = self.done.get_mut(command) {
                    simple.unknown.get_or_insert_with(|| "an unterminated here-document".to_owned());
                }
            }
        }
    }

    fn redirect(&mut self, c: char) {
        // A word of digits just before is the file descriptor, not an argument.
        if self.word.started && !self.word.quoted && self.word.text.chars().all(|d| d.is_ascii_digit()) {
            self.word = Word::default();
        } else {
            self.finish_word();
        }
        self.mark_start();
        if self.peek(1) == Some('(') {
            self.unknown("a process substitution");
            self.at += 1;
            return;
        }
        if c == '<' && self.peek(1) == Some('<') {
            if self.peek(2) == Some('<') {
                self.at += 3;
                self.current.fed = true;
                self.target = Target::Redirect;
            } else {
                let strip = self.peek(2) == Some('-');
                self.at += if strip { 3 } else { 2 };
                self.target = Target::HereDoc { strip };
            }
            return;
        }
        self.at += 1;
        if matches!(self.peek(0), Some('>' | '&' | '|')) {
            self.at += 1;
        }
        self.target = Target::Redirect;
    }

    fn finish_word(&mut self) {
        if !self.word.started {
            return;
        }
        let word = std::mem::take(&mut self.word);
        match std::mem::replace(&mut self.target, Target::None) {
            Target::Redirect => {
                if let Some(why) = word.unknown {
                    self.unknown(why);
                }
                return;
            }
            Target::HereDoc { strip } => {
                let quoted = word.quoted || word.unknown.is_some();
                self.current.fed = true;
                self.heredocs.push((word.text, strip, quoted, self.done.len()));
                return;
            }
            Target::None => {}
        }
        let first = self.current.words.is_empty() && self.current.assigns.is_empty() && !self.header;
        if first && !word.quoted && word.unknown.is_none() {
            let text = word.text.as_str();
            if PREFIX_KEYWORDS.contains(&text) {
                return;
            }
            if END_KEYWORDS.contains(&text) {
                self.end_command();
                return;
            }
            if UNKNOWN_KEYWORDS.contains(&text) {
                self.unknown(&format!("`{text}`, which this judge does not follow"));
            }
            if text == "for" {
                self.header = true;
                return;
            }
        }
        if self.header && !word.quoted && word.text == "do" {
            // `for x in ...; do` on one line without `;` cannot happen; `do` after `;` is handled
            // as a keyword of the next command.
            return;
        }
        if let Some(why) = word.unknown {
            self.unknown(why);
        }
        if self.current.words.is_empty()
            && !word.quoted
            && let Some((name, value)) = word.text.split_once('=')
            && is_name(name)
        {
            self.current.assigns.push((name.to_owned(), value.to_owned()));
            return;
        }
        if self.current.words.is_empty() {
            if word.glob {
                self.unknown("a glob in the program's name");
            }
            if word.text.starts_with('~') && !word.quoted {
                self.unknown("a `~` in the program's name");
            }
        } else if word.glob {
            self.current.open = true;
        }
        self.current.words.push(word.text);
    }

    fn end_command(&mut self) {
        self.finish_word();
        let header = std::mem::take(&mut self.header);
        let mut simple = std::mem::take(&mut self.current);
        let start = self.start.take();
        if header {
            // A `for` header runs nothing itself, but what it expands still runs.
            if simple.unknown.is_none() {
                return;
            }
            simple.words.clear();
        }
        if let [first, rest @ ..] = simple.words.as_slice()
            && matches!(first.as_str(), "export" | "readonly" | "declare" | "typeset" | "local")
        {
            let mut assigns = Vec::new();
            for word in rest {
                if let Some((name, value)) = word.split_once('=')
                    && is_name(name)
                {
                    assigns.push((name.to_owned(), value.to_owned()));
                }
            }
            simple.assigns.extend(assigns);
        }
        if simple.words.is_empty() && simple.assigns.is_empty() && simple.unknown.is_none() {
            return;
        }
        let end = self.at.min(self.chars.len());
        if let Some(start) = start {
            simple.text = self.chars[start..end].iter().collect::<String>().trim().to_owned();
        }
        if simple.text.is_empty() {
            simple.text = self.script.trim().to_owned();
        }
        self.done.push(simple);
    }

    /// Reads the bodies of the here-documents opened on the line just ended.
    fn read_heredocs(&mut self) {
        for (delimiter, strip, quoted, command) in std::mem::take(&mut self.heredocs) {
            let mut closed = false;
            let mut expands = false;
            while self.at < self.chars.len() {
                let end = self.chars[self.at..]
                    .iter()
                    .position(|c| *c == '\n')
                    .map_or(self.chars.len(), |n| self.at + n);
                let line: String = self.chars[self.at..end].iter().collect();
                self.at = (end + 1).min(self.chars.len());
                let compared = if strip { line.trim_start_matches('\t') } else { line.as_str() };
                if compared == delimiter {
                    closed = true;
                    break;
                }
                expands |= line.contains(['$', '`', '\\']);
            }
            if let Some(simple) = self.done.get_mut(command) {
                if !closed {
                    simple.unknown.get_or_insert_with(|| "an unterminated here-document".to_owned());
                } else if expands && !quoted {
                    simple.unknown.get_or_insert_with(|| "a here-document whose body is expanded".to_owned());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<Vec<String>> {
        split(script).into_iter().map(|s| s.words).collect()
    }

    #[test]
    fn commands_are_cut_at_operators_and_keywords() {
        assert_eq!(
            words("a 1; b 'x y' && c|d || e & f\n(g) { h; }"),
            [
                vec!["a", "1"],
                vec!["b", "x y"],
                vec!["c"],
                vec!["d"],
                vec!["e"],
                vec!["f"],
                vec!["g"],
                vec!["h"]
            ]
        );
        assert_eq!(words("if true; then rm -rf x; fi"), [vec!["true"], vec!["rm", "-rf", "x"]]);
        assert_eq!(words("for f in a b; do rm $f; done").len(), 1);
        assert_eq!(words("f() { curl x; }; f"), [vec!["curl", "x"], vec!["f"]]);
        assert_eq!(words("echo hi > out 2>&1 <in # rm -rf /"), [vec!["echo", "hi"]]);
        assert_eq!(words("curl>out URL"), [vec!["curl", "URL"]]);
        assert_eq!(words("cargo test \\\n  --all"), [vec!["cargo", "test", "--all"]]);
    }

    #[test]
    fn words_the_shell_would_change_are_unknown() {
        for script in [
            "X=cur; ${X}l --version",
            "$'\\x63url' x",
            "a=acas; $a approve 1",
            "curl${IFS}--version",
            "${X:-curl} --version",
            "cu\\\nrl x",
            "/usr/bin/cur? x",
            "echo $(curl x)",
            "echo `curl x`",
            "cat <(curl x)",
            "sh <<EOF\n$(curl x)\nEOF\n",
            "case x in x) curl;; esac",
            "c\\url x",
        ] {
            let all = split(script);
            assert!(all.iter().any(|s| s.unknown.is_some()), "{script}: {all:?}");
        }
        assert!(split("echo 'a $b'").iter().all(|s| s.unknown.is_none()));
        assert!(split("cat <<'EOF'\n$(x)\nEOF\necho ok").iter().all(|s| s.unknown.is_none()));
        assert!(split("rm *").iter().all(|s| s.open && s.unknown.is_none()));
    }

    #[test]
    fn assignments_are_kept() {
        let all = split("PATH=/tmp GIT_DIR=x git status; export LD_PRELOAD=/x.so");
        assert_eq!(all[0].assigns, [("PATH".into(), "/tmp".into()), ("GIT_DIR".into(), "x".into())]);
        assert_eq!(all[0].words, ["git", "status"]);
        assert_eq!(all[1].assigns, [("LD_PRELOAD".into(), "/x.so".into())]);
    }
}
