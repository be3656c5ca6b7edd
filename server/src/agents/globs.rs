//! Path globs of tasks and locks: checking them, and deciding whether two may match one path.
//!
//! A glob is relative to the workspace root, with `/` between components: `*` matches any run of
//! characters within one component, `?` one character of a component, `[abc]`, `[a-z]` and
//! `[!abc]` one character of a set, `**` any run of characters across components (`src/**/*.rs`,
//! `docs/**`), `{a,b}` either alternative. A glob also covers everything beneath what it
//! matches: locking `src` or `src/` locks `src/lib.rs` too.
//!
//! [`overlap`] says whether some path is matched by both globs. The decision is sound: it says
//! no only when no path can be matched by both. Each glob is read as a finite automaton over
//! characters that accepts at least every path the glob matches (`**` inside a component reads as
//! crossing components, everything beneath a match is accepted), and the two automata are run
//! together over a small alphabet that stands for every character: each character either glob
//! names, `/`, and one character neither names. The pair of automata can reach a state where
//! both accept exactly when a common path exists (for that over-approximation), so the answer is
//! exact for plain globs and errs towards "overlaps" for the unusual ones. A glob with more than
//! [`MAX_ALTERNATIVES`] brace alternatives is taken to overlap everything, and so is a pair
//! that would take more than [`MAX_OVERLAP_WORK`] steps to decide.
//!
//! It does not look at the file system: globs are compared as text.

use std::collections::{BTreeSet, HashSet, VecDeque};

/// Brace alternatives a glob may expand to before it is taken to overlap everything.
pub const MAX_ALTERNATIVES: usize = 64;

/// The work [`overlap`] may do on one pair of globs (automaton states stepped) before it stops
/// and takes them to overlap: globs such as `*a???...?` need a state for each subset of their
/// last positions, and deciding two of them exactly could take longer than the universe has.
pub const MAX_OVERLAP_WORK: usize = 100_000;

/// The longest glob accepted, in bytes.
pub const MAX_GLOB_BYTES: usize = 1024;

/// Checks a glob and puts it in canonical form: no leading `./`, no doubled or trailing `/`.
/// Refuses an empty glob, an absolute one, one with a `..` component, one with a NUL or control
/// character, one longer than [`MAX_GLOB_BYTES`], one with more than [`MAX_ALTERNATIVES`] brace
/// alternatives, a dangling `\`, and unclosed `[` or `{`. The same rules hold inside braces:
/// each alternative the braces spell is checked as a glob of its own (`{..}/x` and `{/etc}` are
/// refused), and an alternative that is `.` or empty stands for the directory it is in.
pub fn normalize(glob: &str) -> Result<String, String> {
    let trimmed = glob.trim();
    if trimmed.is_empty() {
        return Err("a path glob is empty; give a path relative to the workspace, such as src/**".to_owned());
    }
    if trimmed.len() > MAX_GLOB_BYTES {
        return Err(format!(
            "a path glob is {} bytes long, over the limit of {MAX_GLOB_BYTES}; use a shorter glob",
            trimmed.len()
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(format!("the path glob {trimmed:?} holds a control character; remove it"));
    }
    let chars: Vec<char> = trimmed.chars().collect();
    let mut braces = 0i32;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 == chars.len() => {
                return Err(format!(
                    "the path glob {trimmed} ends in a lone \\; escape a character or drop it"
                ));
            }
            '[' if class(&chars, i).is_none() => {
                return Err(format!(
                    "the path glob {trimmed} has an unclosed [; close it or escape it as \\["
                ));
            }
            '{' => braces += 1,
            '}' => braces -= 1,
            _ => {}
        }
        if braces < 0 {
            break;
        }
        i = atom_end(&chars, i);
    }
    if braces != 0 {
        return Err(format!(
            "the path glob {trimmed} has an unbalanced {{ or }}; close it or escape it as \\{{"
        ));
    }
    let Some(alternatives) = expand_raw(trimmed) else {
        return Err(format!(
            "the path glob {trimmed} spells more than {MAX_ALTERNATIVES} brace alternatives; use fewer or several globs"
        ));
    };
    for alternative in &alternatives {
        canonical(alternative)
            .map_err(|why| format!("the path glob {trimmed} {why}; give a path inside the workspace"))?;
    }
    if alternatives.len() == 1 && alternatives[0] == trimmed {
        // No braces: the canonical spelling is the glob itself, cleaned.
        return canonical(trimmed).map_err(|why| format!("the path glob {trimmed} {why}"));
    }
    Ok(trimmed.to_owned())
}

/// The index just past the glob atom that starts at `i`: an escaped character, a closed
/// `[...]` class, or one character.
fn atom_end(chars: &[char], i: usize) -> usize {
    match chars[i] {
        '\\' if i + 1 < chars.len() => i + 2,
        '[' => class(chars, i).map_or(i + 1, |(_, end)| end + 1),
        _ => i + 1,
    }
}

/// One brace-free glob in canonical form: its components (split at `/` outside classes and
/// escapes) without empty ones or `.`, or the reason it is refused: absolute, or leaving the
/// workspace through `..`. A component counts as `.` or `..` however it is spelled (`\.`,
/// `[.]`). Nothing left means the workspace root, `**`.
fn canonical(glob: &str) -> Result<String, &'static str> {
    let chars: Vec<char> = glob.chars().collect();
    if chars.first() == Some(&'/') {
        return Err("is absolute (it or one of its brace alternatives starts with /)");
    }
    let mut components: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '/' {
            components.push(std::mem::take(&mut current));
            i += 1;
            continue;
        }
        let end = atom_end(&chars, i);
        current.extend(&chars[i..end]);
        i = end;
    }
    components.push(current);
    let mut kept = Vec::new();
    for component in components {
        match literal(&component).as_deref() {
            Some("") | Some(".") => {}
            Some("..") => return Err("leaves the workspace (.. in it or in one of its brace alternatives)"),
            _ => kept.push(component),
        }
    }
    if kept.is_empty() {
        return Ok("**".to_owned());
    }
    Ok(kept.join("/"))
}

/// The one string a brace-free component matches when it matches only one (escapes and
/// one-character classes read as that character), `None` when it has wildcards.
fn literal(component: &str) -> Option<String> {
    let chars: Vec<char> = component.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => out.push(chars[i + 1]),
            '[' => match class(&chars, i) {
                Some((Token::Class { chars: ranges, negated: false }, end))
                    if ranges.len() == 1 && ranges[0].0 == ranges[0].1 =>
                {
                    out.push(ranges[0].0);
                    i = end + 1;
                    continue;
                }
                Some(_) => return None,
                None => out.push('['),
            },
            '*' | '?' => return None,
            c => out.push(c),
        }
        i = atom_end(&chars, i);
    }
    Some(out)
}

/// Whether some path may be matched by both globs (both as [`normalize`] gives them). Sound:
/// false only when no path is matched by both.
pub fn overlap(a: &str, b: &str) -> bool {
    let (Some(a), Some(b)) = (expand(a), expand(b)) else {
        return true;
    };
    let automata_a: Vec<Automaton> = a.iter().map(|g| Automaton::new(g)).collect();
    let automata_b: Vec<Automaton> = b.iter().map(|g| Automaton::new(g)).collect();
    automata_a.iter().any(|x| automata_b.iter().any(|y| intersects(x, y)))
}

/// Whether `path` (relative, `/`-separated) is matched by `glob` or lies beneath a match.
pub fn matches(glob: &str, path: &str) -> bool {
    let Some(alternatives) = expand(glob) else {
        return true;
    };
    alternatives.iter().any(|g| {
        let automaton = Automaton::new(g);
        let mut states = automaton.closure([0].into_iter().collect());
        for c in path.chars() {
            states = automaton.step(&states, c);
            if states.is_empty() {
                return false;
            }
        }
        states.iter().any(|&s| automaton.accepting(s))
    })
}

/// The brace alternatives of a glob, each in canonical form; `None` when there are more than
/// [`MAX_ALTERNATIVES`] or one would be refused by [`normalize`] (such a glob is taken to match
/// everything).
fn expand(glob: &str) -> Option<Vec<String>> {
    expand_raw(glob)?.iter().map(|g| canonical(g).ok()).collect()
}

/// The brace alternatives of a glob as spelled, or `None` when there are more than
/// [`MAX_ALTERNATIVES`].
fn expand_raw(glob: &str) -> Option<Vec<String>> {
    let mut done = Vec::new();
    let mut pending = vec![glob.to_owned()];
    while let Some(g) = pending.pop() {
        let chars: Vec<char> = g.chars().collect();
        let Some((open, close)) = first_braces(&chars) else {
            done.push(g);
            if done.len() > MAX_ALTERNATIVES {
                return None;
            }
            continue;
        };
        let head: String = chars[..open].iter().collect();
        let tail: String = chars[close + 1..].iter().collect();
        for alternative in split_top(&chars[open + 1..close]) {
            pending.push(format!("{head}{alternative}{tail}"));
        }
        if pending.len() + done.len() > MAX_ALTERNATIVES {
            return None;
        }
    }
    Some(done)
}

/// The char indices of the first `{` and its matching `}`, outside classes and escapes.
fn first_braces(chars: &[char]) -> Option<(usize, usize)> {
    let mut depth = 0;
    let mut open = None;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' => {
                if depth == 0 {
                    open = Some(i);
                }
                depth += 1;
            }
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return open.map(|o| (o, i));
                }
            }
            _ => {}
        }
        i = atom_end(chars, i);
    }
    None
}

/// Splits the inside of braces at its top-level commas (outside classes and escapes).
fn split_top(inner: &[char]) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    let mut i = 0;
    while i < inner.len() {
        match inner[i] {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(inner[start..i].iter().collect());
                start = i + 1;
            }
            _ => {}
        }
        i = atom_end(inner, i);
    }
    parts.push(inner[start..].iter().collect());
    parts
}

/// One step of a glob read as an automaton.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// This character.
    Char(char),
    /// Any character but `/`.
    Any,
    /// Any character of the set (or, negated, any character outside it).
    Class { chars: Vec<(char, char)>, negated: bool },
    /// Any run of characters but `/`.
    Star,
    /// Any run of characters.
    AnyRun,
    /// `**/`: nothing, or any run of characters ending in `/`.
    Dirs,
}

/// A glob as a list of tokens; state `i` is "before token `i`", state `len` the end, and state
/// `len + 1` "beneath a match" (after the end, a `/` and then anything).
struct Automaton {
    tokens: Vec<Token>,
    /// Every character the glob names.
    alphabet: BTreeSet<char>,
}

impl Automaton {
    fn new(glob: &str) -> Automaton {
        let chars: Vec<char> = glob.chars().collect();
        let mut tokens = Vec::new();
        let mut alphabet = BTreeSet::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    let mut j = i;
                    while chars.get(j) == Some(&'*') {
                        j += 1;
                    }
                    let starts_component = i == 0 || chars[i - 1] == '/';
                    if starts_component && chars.get(j) == Some(&'/') {
                        tokens.push(Token::Dirs);
                        j += 1;
                    } else {
                        tokens.push(Token::AnyRun);
                    }
                    i = j;
                    continue;
                }
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::Any),
                '[' => {
                    if let Some((token, end)) = class(&chars, i) {
                        if let Token::Class { chars: ranges, .. } = &token {
                            // Each end of each range and its neighbours: between them, one
                            // of these stands for every stretch of characters that the
                            // ranges of both globs treat alike.
                            for &(lo, hi) in ranges {
                                for end in [lo, hi] {
                                    let code = end as u32;
                                    alphabet.extend(
                                        [code.wrapping_sub(1), code, code + 1]
                                            .into_iter()
                                            .filter_map(char::from_u32),
                                    );
                                }
                            }
                        }
                        tokens.push(token);
                        i = end + 1;
                        continue;
                    }
                    tokens.push(Token::Char('['));
                    alphabet.insert('[');
                }
                '\\' if i + 1 < chars.len() => {
                    tokens.push(Token::Char(chars[i + 1]));
                    alphabet.insert(chars[i + 1]);
                    i += 2;
                    continue;
                }
                other => {
                    tokens.push(Token::Char(other));
                    alphabet.insert(other);
                }
            }
            i += 1;
        }
        Automaton { tokens, alphabet }
    }

    fn end(&self) -> usize {
        self.tokens.len()
    }

    fn beneath(&self) -> usize {
        self.tokens.len() + 1
    }

    fn accepting(&self, state: usize) -> bool {
        state >= self.end()
    }

    /// The states reachable from `states` without reading a character.
    fn closure(&self, mut states: BTreeSet<usize>) -> BTreeSet<usize> {
        let mut stack: Vec<usize> = states.iter().copied().collect();
        while let Some(s) = stack.pop() {
            if let Some(Token::Star | Token::AnyRun | Token::Dirs) = self.tokens.get(s)
                && states.insert(s + 1)
            {
                stack.push(s + 1);
            }
        }
        states
    }

    /// The states after reading `c` from `states` (closed).
    fn step(&self, states: &BTreeSet<usize>, c: char) -> BTreeSet<usize> {
        let mut next = BTreeSet::new();
        for &s in states {
            if s == self.beneath() {
                next.insert(s);
                continue;
            }
            if s == self.end() {
                if c == '/' {
                    next.insert(self.beneath());
                }
                continue;
            }
            match &self.tokens[s] {
                Token::Char(x) if *x == c => {
                    next.insert(s + 1);
                }
                Token::Char(_) => {}
                Token::Any if c != '/' => {
                    next.insert(s + 1);
                }
                Token::Any => {}
                // A class may match `/` here, which matchers refuse: reading more paths than
                // they do keeps the answer sound.
                Token::Class { chars, negated } => {
                    if chars.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated {
                        next.insert(s + 1);
                    }
                }
                Token::Star if c != '/' => {
                    next.insert(s);
                }
                Token::Star => {}
                Token::AnyRun => {
                    next.insert(s);
                }
                Token::Dirs => {
                    // Inside the run of directories: stay; a `/` may also end it.
                    next.insert(s);
                    if c == '/' {
                        next.insert(s + 1);
                    }
                }
            }
        }
        self.closure(next)
    }
}

/// Parses `[...]` starting at `start`; `None` when it is not closed.
fn class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let first = i;
    while i < chars.len() {
        let c = chars[i];
        if c == ']' && i > first {
            return Some((Token::Class { chars: ranges, negated }, i));
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            let end = chars[i + 2];
            ranges.push((c.min(end), c.max(end)));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    None
}

/// Whether both automata accept a common string: a breadth-first search over pairs of state
/// sets, reading one representative of each class of characters the two globs cannot tell
/// apart.
fn intersects(a: &Automaton, b: &Automaton) -> bool {
    let mut alphabet: BTreeSet<char> = a.alphabet.union(&b.alphabet).copied().collect();
    alphabet.insert('/');
    // A character neither glob names: the first from a private-use range that is free.
    if let Some(other) = ('\u{E000}'..='\u{F8FF}').find(|c| !alphabet.contains(c)) {
        alphabet.insert(other);
    }
    let start = (a.closure([0].into_iter().collect()), b.closure([0].into_iter().collect()));
    let mut seen: HashSet<(BTreeSet<usize>, BTreeSet<usize>)> = HashSet::new();
    let mut queue = VecDeque::from([start.clone()]);
    seen.insert(start);
    let mut work = 0usize;
    while let Some((x, y)) = queue.pop_front() {
        if x.iter().any(|&s| a.accepting(s)) && y.iter().any(|&s| b.accepting(s)) {
            return true;
        }
        work += (x.len() + y.len() + 1) * alphabet.len();
        if work > MAX_OVERLAP_WORK {
            return true;
        }
        for &c in &alphabet {
            let next = (a.step(&x, c), b.step(&y, c));
            if next.0.is_empty() || next.1.is_empty() {
                continue;
            }
            if seen.insert(next.clone()) {
                queue.push_back(next);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decides_overlap() {
        let cases = [
            ("src/**", "src/lib.rs", true),
            ("src/*.rs", "src/lib.rs", true),
            ("src/*.rs", "src/a/lib.rs", false),
            ("src/**/*.rs", "src/a/b/lib.rs", true),
            ("src/**/*.rs", "docs/lib.rs", false),
            // Everything beneath a match is covered: a file has nothing beneath it, but the
            // globs alone cannot tell a file from a directory.
            ("src/**/*.rs", "src/lib.ts", true),
            ("src", "src/lib.rs", true),
            ("src/", "src/deep/file", true),
            ("docs/**", "src/**", false),
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false),
            ("**/*.md", "docs/README.md", true),
            ("src/[a-c]*.rs", "src/d.rs", false),
            ("src/[a-c]*.rs", "src/b.rs", true),
            ("src/[!a-c].rs", "src/b.rs", false),
            ("src/{a,b}.rs", "src/b.rs", true),
            ("src/{a,b}.rs", "src/c.rs", false),
            ("a*", "*b", true),
            ("a*b", "b*a", false),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("**", "anything/at/all", true),
            ("x/**/y", "x/y", true),
            ("x/**/y", "x/a/b/y", true),
            ("x/**/y", "z/a/b/y", false),
            ("x/**/y", "x/a/b/z.txt", true),
        ];
        for (a, b, expected) in cases {
            let (a, b) = (normalize(a).unwrap(), normalize(b).unwrap());
            assert_eq!(overlap(&a, &b), expected, "{a} vs {b}");
            assert_eq!(overlap(&b, &a), expected, "{b} vs {a}");
        }
    }

    #[test]
    fn normalizes_and_refuses() {
        assert_eq!(normalize("./src//lib.rs/").unwrap(), "src/lib.rs");
        assert_eq!(normalize(".").unwrap(), "**");
        for bad in ["", "/etc/passwd", "../x", "a/../../b", "src/[ab", "src/{a,b", "a\u{0}b"] {
            assert!(normalize(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(normalize(&"a".repeat(MAX_GLOB_BYTES + 1)).is_err());
    }

    /// `*a???...` needs an automaton state per subset of the last positions: deciding two such
    /// globs exactly would take 2^40 steps. A claim must not hang on a hostile task's paths.
    #[test]
    fn globs_too_costly_to_decide_are_taken_to_overlap() {
        let (a, b) = (format!("*a{}", "?".repeat(40)), format!("*b{}", "?".repeat(40)));
        assert!(overlap(&normalize(&a).unwrap(), &normalize(&b).unwrap()));
    }

    #[test]
    fn too_many_alternatives_overlap_everything() {
        let glob = "{a,b,c,d}{a,b,c,d}{a,b,c,d}{a,b,c,d}";
        assert!(overlap(glob, "zzz"));
    }

    /// Braces spell paths the same way the glob outside them does: `.`, empty components and
    /// `//` inside them are dropped, `..` and a leading `/` refused; escapes and classes hide
    /// braces from expansion.
    #[test]
    fn braces_are_normalized_like_the_rest() {
        for same in [
            "src/{.}/lib/a.rs",
            "src/{/lib}/a.rs",
            "{.}/src/lib/a.rs",
            "src/lib/{a.rs,b.rs}",
            "src/[l]ib/a.rs",
        ] {
            let glob = normalize(same).unwrap();
            assert!(overlap(&glob, "src/lib/a.rs"), "{same} is src/lib/a.rs");
            assert!(matches(&glob, "src/lib/a.rs"), "{same} matches src/lib/a.rs");
        }
        assert!(overlap(&normalize("{.}/src/**").unwrap(), "src/lib/a.rs"));
        for root in ["{,}", "{}", "{.}", "x/{..,.}/.."] {
            match normalize(root) {
                Ok(glob) => assert!(overlap(&glob, "src/lib/a.rs"), "{root} is the workspace root"),
                Err(_) => assert!(root.contains("..")),
            }
        }
        for bad in [
            "{..}/etc/passwd",
            "{/etc/passwd}",
            "a/{b,..}/../..",
            "[.][.]/x",
            "\\.\\./x",
            "[]src/lib/a.rs",
            "src/a\\",
            "src/{a,b",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} should be refused");
        }
        let literal = normalize("src/\\{a,b\\}.rs").unwrap();
        assert!(overlap(&literal, &normalize("src/[{]a,b[}].rs").unwrap()));
        assert!(!overlap(&literal, "src/a.rs"));
        assert!(!overlap(&literal, "src/b.rs"));
        assert!(overlap(&normalize("src/{a,b}.rs").unwrap(), "src/a.rs"));
    }

    fn glob_part() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("/".to_owned()),
            Just("//".to_owned()),
            Just("*".to_owned()),
            Just("**".to_owned()),
            Just("?".to_owned()),
            Just("[ab]".to_owned()),
            Just("[{]".to_owned()),
            Just("\\{".to_owned()),
            Just("{a,b/}".to_owned()),
            Just("{,a}".to_owned()),
            Just("a{/b,}".to_owned()),
        ]
    }

    fn glob() -> impl Strategy<Value = String> {
        prop::collection::vec(glob_part(), 1..5).prop_map(|parts| parts.concat())
    }

    /// Every path over {a, b, `{`, /} of at most `max` characters, in canonical form.
    fn paths(max: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..max {
            let mut next = Vec::new();
            for p in &frontier {
                for c in ['a', 'b', '{', '/'] {
                    next.push(format!("{p}{c}"));
                }
            }
            all.extend(next.iter().cloned());
            frontier = next;
        }
        all.into_iter()
            .filter(|p| !p.is_empty() && !p.starts_with('/') && !p.ends_with('/') && !p.contains("//"))
            .collect()
    }

    /// The ways of writing a canonical path the reference matcher is asked about: the path
    /// itself (a wildcard may spell `.`, which a real path never holds as a component).
    fn spellings(path: &str) -> Vec<String> {
        let mut out = vec![String::new()];
        for c in path.chars() {
            let ways: &[&str] = if c == '/' { &["/"] } else { &[""] };
            out = out
                .iter()
                .flat_map(|prefix| {
                    ways.iter().map(move |w| {
                        if w.is_empty() { format!("{prefix}{c}") } else { format!("{prefix}{w}") }
                    })
                })
                .collect();
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Sound against an independent matcher: globset (`*` not crossing `/`, braces, escapes
        /// and classes its own way), where a glob matches a path when it matches some spelling
        /// of it (`./`, `//`). Whenever some path is matched by both globs, `overlap` says so
        /// and `matches` agrees; when `overlap` says no, no path is matched by both.
        #[test]
        fn overlap_is_sound(a in glob(), b in glob()) {
            let (Ok(a), Ok(b)) = (normalize(&a), normalize(&b)) else { return Ok(()) };
            let build = |g: &str| globset::GlobBuilder::new(g).literal_separator(true).empty_alternates(true).build().map(|g| g.compile_matcher());
            let (Ok(ga), Ok(gb)) = (build(&a), build(&b)) else { return Ok(()) };
            let all = paths(4);
            let common = all.iter().find(|p| {
                let ways = spellings(p);
                ways.iter().any(|w| ga.is_match(w)) && ways.iter().any(|w| gb.is_match(w))
            });
            if let Some(path) = common {
                prop_assert!(overlap(&a, &b), "{a} and {b} both match {path}");
                prop_assert!(matches(&a, path) && matches(&b, path), "{path} under {a} and {b}");
            }
            let mine = all.iter().find(|p| matches(&a, p) && matches(&b, p));
            if let Some(path) = mine {
                prop_assert!(overlap(&a, &b), "{a} and {b} both cover {path}");
            }
        }
    }

    #[test]
    fn disguised_parents_and_roots_are_refused() {
        for bad in [
            r"\.\./x",
            "src/{..,b}/x",
            "src/[.][.]/x",
            "{..}",
            r"a/\..",
            "{/etc,a}/x",
            "{a,{/b,c}}",
            "[.].",
            "x/{a,..}",
        ] {
            let error = normalize(bad).expect_err(bad);
            assert!(error.contains("leaves the workspace") || error.contains("absolute"), "{bad}: {error}");
        }
        for good in
            ["src/{a,b}/x", "src/.hidden/**", "src/[.]env", "{a,b}/..x", "..a/b", r"\.x", "src/.{a,b}"]
        {
            assert!(normalize(good).is_ok(), "{good} should be accepted");
        }
    }
}
