//! A conservative lexer for the shell scripts policies judge: it cuts a script into its simple
//! commands and says, for each, whether its words are known before it runs.
//!
//! It knows quotes, comments, the operators between simple commands (`;`, `&`, `|`, `&&`, `||`,
//! new lines), redirections and leading `NAME=value` assignments. Anything it does not fully
//! model makes its command unknown, with the reason: a word the shell would change before running
//! it (parameter expansion `$X` and `${…}`, command substitution `$(…)` and backquotes, `$'…'` and
//! `$"…"` quoting, backslash escapes and line continuations inside a word, process substitution),
//! every compound command and its header (`if`, `for`, `while`, `until`, `case`, `select`,
//! `function`, `coproc`, `{ …; }`, subshells `( … )`, `((…))`, `[[…]]`, function definitions),
//! `let`, any here-document or here-string, a carriage return or other control character outside
//! quotes, an assignment with `+=`, and a variable that changes what runs ([`risky_env`]) set by
//! a builtin (`export PATH`, `read IFS`...). Globs and braces in an argument leave the command
//! known but with arguments only the file system decides (`open`); in the program word they make
//! it unknown. An output redirection to a file is kept as a write of that file
//! ([`Simple::writes`]); to `/dev/null` or a file descriptor it is nothing.
//!
//! The work is bounded: a script longer than [`MAX_SCRIPT_BYTES`] or with more than
//! [`MAX_COMMANDS`] simple commands is one unknown command naming the limit.

use super::command::risky_env;

/// The longest script judged, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;
/// The most simple commands of one script judged.
pub const MAX_COMMANDS: usize = 2_000;

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
    /// Files an output redirection writes, as written.
    pub writes: Vec<String>,
    /// The command as written, for messages.
    pub text: String,
}

/// Words that start or end a compound command, or evaluate arithmetic: none is followed.
pub(super) const COMPOUND: [&str; 20] = [
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "case", "esac", "select",
    "in", "function", "coproc", "{", "}", "[[", "let",
];
/// Prefix keywords that leave the command that follows a simple command.
const PREFIX_KEYWORDS: [&str; 2] = ["!", "time"];
/// Builtins whose arguments name variables they set.
const SETTERS: [&str; 11] = [
    "export",
    "readonly",
    "declare",
    "typeset",
    "local",
    "read",
    "unset",
    "getopts",
    "mapfile",
    "readarray",
    "printf",
];

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
    /// The word after a redirection operator: a file read, a file written, or (after `>&`, `<&`)
    /// a file descriptor.
    Redirect {
        write: bool,
        dup: bool,
    },
}

struct Lexer<'a> {
    chars: Vec<char>,
    at: usize,
    done: Vec<Simple>,
    current: Simple,
    /// Where the current command starts, in chars.
    start: Option<usize>,
    word: Word,
    target: Target,
    /// The script has more simple commands than judged: stop.
    full: bool,
    script: &'a str,
}

/// The simple commands of `script`, in order.
pub fn split(script: &str) -> Vec<Simple> {
    if script.len() > MAX_SCRIPT_BYTES {
        return vec![Simple {
            unknown: Some(format!(
                "{} bytes, over the {} KiB limit of a script judged command by command",
                script.len(),
                MAX_SCRIPT_BYTES / 1024
            )),
            text: excerpt(script),
            ..Simple::default()
        }];
    }
    let mut lexer = Lexer {
        chars: script.chars().collect(),
        at: 0,
        done: Vec::new(),
        current: Simple::default(),
        start: None,
        word: Word::default(),
        target: Target::None,
        full: false,
        script,
    };
    lexer.run();
    lexer.done
}

/// The start of `script`, short enough for a message.
fn excerpt(script: &str) -> String {
    let trimmed = script.trim();
    match trimmed.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &trimmed[..at]),
        None => trimmed.to_owned(),
    }
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
        self.mark_start();
        self.current.unknown.get_or_insert_with(|| why.to_owned());
    }

    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            if self.full {
                return;
            }
            match c {
                ' ' | '\t' => {
                    self.finish_word();
                    self.at += 1;
                }
                '\n' => {
                    self.finish_word();
                    self.end_command();
                    self.at += 1;
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
                        self.target = Target::Redirect { write: true, dup: false };
                    } else {
                        self.end_command();
                        self.at += 1;
                    }
                }
                '(' | ')' => {
                    self.finish_word();
                    if c == '(' && self.peek(1) == Some('(') {
                        self.unknown("arithmetic `((…))`, which this judge does not follow");
                    } else if c == '(' && !self.current.words.is_empty() {
                        self.unknown("a function definition, which this judge does not follow");
                    } else {
                        self.unknown("a subshell `( … )`, which this judge does not follow");
                    }
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
                c if c.is_control() => {
                    // The shell reads a carriage return as part of a word (a here-document's
                    // delimiter, a program's name): no reading of it here would be the shell's.
                    self.finish_word();
                    self.unknown(&format!("a control character (U+{:04X}) outside quotes", c as u32));
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
            self.current.fed = true;
            if self.peek(2) == Some('<') {
                self.unknown("a here-string, which this judge does not follow");
                self.at += 3;
            } else {
                self.unknown("a here-document, which this judge does not follow");
                self.at += if self.peek(2) == Some('-') { 3 } else { 2 };
            }
            self.target = Target::Redirect { write: false, dup: false };
            return;
        }
        self.at += 1;
        let next = self.peek(0);
        // `<>` opens for reading and writing; `>`, `>>`, `>|` write; `>&`, `<&` duplicate.
        let write = c == '>' || next == Some('>');
        let dup = next == Some('&');
        if matches!(next, Some('>' | '&' | '|')) {
            self.at += 1;
        }
        self.target = Target::Redirect { write, dup };
    }

    fn finish_word(&mut self) {
        if !self.word.started {
            return;
        }
        let word = std::mem::take(&mut self.word);
        if let Target::Redirect { write, dup } = std::mem::replace(&mut self.target, Target::None) {
            if let Some(why) = word.unknown {
                self.unknown(why);
            } else if write && !word.quoted && (word.glob || word.text.starts_with('~')) {
                self.unknown("a redirection to a file the shell would expand");
            } else if write {
                let fd = dup && (word.text == "-" || word.text.chars().all(|d| d.is_ascii_digit()));
                if !fd && word.text != "/dev/null" {
                    self.current.writes.push(word.text);
                }
            }
            return;
        }
        let first = self.current.words.is_empty() && self.current.assigns.is_empty();
        if first && !word.quoted && word.unknown.is_none() {
            let text = word.text.as_str();
            if PREFIX_KEYWORDS.contains(&text) {
                return;
            }
            if COMPOUND.contains(&text) || text.starts_with("[[") {
                self.unknown(&format!("`{text}`, which this judge does not follow"));
            }
        }
        if let Some(why) = word.unknown {
            self.unknown(why);
        }
        if self.current.words.is_empty() && !word.quoted {
            if let Some((name, _)) = word.text.split_once("+=")
                && is_name(name)
            {
                self.unknown(&format!("`{name}+=…`, an assignment this judge does not follow"));
            }
            if let Some((name, value)) = word.text.split_once('=')
                && is_name(name)
            {
                self.current.assigns.push((name.to_owned(), value.to_owned()));
                return;
            }
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
        if !matches!(self.target, Target::None) {
            self.target = Target::None;
            self.unknown("a redirection without its file");
        }
        let mut simple = std::mem::take(&mut self.current);
        let start = self.start.take();
        if let [first, rest @ ..] = simple.words.as_slice()
            && SETTERS.contains(&first.as_str())
        {
            let mut assigns = Vec::new();
            for word in rest {
                let name = word.split_once('=').map_or(word.as_str(), |(name, _)| name);
                if let Some(name) = name.strip_suffix('+')
                    && is_name(name)
                {
                    simple.unknown.get_or_insert_with(|| {
                        format!("`{name}+=…`, an assignment this judge does not follow")
                    });
                } else if let Some((name, value)) = word.split_once('=')
                    && is_name(name)
                {
                    assigns.push((name.to_owned(), value.to_owned()));
                } else if is_name(name) && risky_env(name) {
                    simple.unknown.get_or_insert_with(|| {
                        format!("`{first} {name}`, which sets `{name}` in a way this judge does not follow")
                    });
                }
            }
            simple.assigns.extend(assigns);
        }
        if simple.words.is_empty()
            && simple.assigns.is_empty()
            && simple.unknown.is_none()
            && simple.writes.is_empty()
        {
            return;
        }
        if self.done.len() >= MAX_COMMANDS {
            self.full = true;
            let over = Simple {
                unknown: Some(format!(
                    "more than {MAX_COMMANDS} simple commands, the limit of a script judged command by command"
                )),
                text: excerpt(self.script),
                ..Simple::default()
            };
            self.done.push(over);
            return;
        }
        let end = self.at.min(self.chars.len());
        if let Some(start) = start {
            simple.text = self.chars[start..end].iter().collect::<String>().trim().to_owned();
        }
        if simple.text.is_empty() {
            simple.text = simple.words.join(" ");
        }
        self.done.push(simple);
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
            words("a 1; b 'x y' && c|d || e & f"),
            [vec!["a", "1"], vec!["b", "x y"], vec!["c"], vec!["d"], vec!["e"], vec!["f"],]
        );
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
        assert!(split("rm *").iter().all(|s| s.open && s.unknown.is_none()));
    }

    #[test]
    fn assignments_are_kept() {
        let all = split("PATH=/tmp GIT_DIR=x git status; export LD_PRELOAD=/x.so");
        assert_eq!(all[0].assigns, [("PATH".into(), "/tmp".into()), ("GIT_DIR".into(), "x".into())]);
        assert_eq!(all[0].words, ["git", "status"]);
        assert_eq!(all[1].assigns, [("LD_PRELOAD".into(), "/x.so".into())]);
    }

    #[test]
    fn what_this_lexer_does_not_model_cannot_be_judged() {
        for script in [
            // A loop header sets a variable, for any name.
            "for PATH in bin; do git status; done",
            "for x do touch p; done",
            "for BASH_ENV in ./evil.sh; do export BASH_ENV; bash -c true; done",
            "while true; do echo; done",
            "until false; do echo; done",
            "if true; then echo; fi",
            "select x in a; do echo; done",
            // Arithmetic evaluates variables as code.
            "for echo in 'a[$(touch p)]'; do ((echo)); echo ok; done",
            "((x))",
            "let x",
            "[[ -v x ]]",
            "f() { echo; }",
            "{ echo ok; } > out",
            "(echo ok)",
            // Here-documents: a delimiter with `$`, one with no command, a carriage return.
            "cat <<$X\n$(touch p)\n$X\n",
            "echo ok\n<<EOF\n$(touch p)\nEOF\n",
            "cat <<'EOF'\nplain\nEOF\n",
            "cat <<<word",
            "cat x\r\ntouch p\n",
            "echo \u{1b}x",
            // Assignments the judge does not follow.
            "BASH_ENV+=./evil.sh bash -c true",
            "export PATH+=:bin",
            "export BASH_ENV",
            "read IFS",
        ] {
            let all = split(script);
            assert!(all.iter().any(|s| s.unknown.is_some()), "{script}: {all:?}");
        }
    }

    #[test]
    fn output_redirections_are_writes() {
        let all =
            split("echo 'defaults: {}' > .acas/policy.yaml; a 2>>log >|x &>y 2>&1 >/dev/null <in >&- <>rw");
        assert_eq!(all[0].writes, [".acas/policy.yaml"]);
        assert_eq!(all[1].writes, ["log", "x", "y", "rw"]);
        assert!(all.iter().all(|s| s.unknown.is_none()), "{all:?}");
        assert!(split("echo x > ~/.bashrc")[0].unknown.is_some());
        assert!(split("echo x > *.txt")[0].unknown.is_some());
    }

    #[test]
    fn scripts_over_the_limits_are_one_command_naming_the_limit() {
        let long = "x;".repeat(40_000);
        let all = split(&long);
        assert_eq!(all.len(), 1);
        assert!(all[0].unknown.as_deref().is_some_and(|w| w.contains("64 KiB")), "{all:?}");
        assert!(all[0].text.len() < 200);
        let many = "x;".repeat(MAX_COMMANDS + 5);
        let all = split(&many);
        assert_eq!(all.len(), MAX_COMMANDS + 1);
        assert!(all[MAX_COMMANDS].unknown.as_deref().is_some_and(|w| w.contains("2000 simple commands")));
    }
}
