//! Valid constructs that the grammars cannot parse, measured on real code (see
//! `benches/syntax_eval.rs`).
//!
//! tree-sitter's grammars lag behind the languages: a few valid constructs parse with an ERROR
//! node. `syntax` asks [`grammar_gap`] about each tree error and leaves out those that lie in
//! such a construct. Only tree errors are left out: the delimiter and string checks of the lexer
//! still run there, so an unclosed bracket or string inside the construct is still reported.
//! Each gap is recognised by the smallest construct it occurs in, never by file, and has a
//! `fixtures/classify/<lang>/valid_*` file that keeps it fixed.

use std::ops::Range;

use tree_sitter::{InputEdit, Node, Tree};

use super::Language;
use super::lexer::Scan;
use super::parse;
use super::syntax::{culprit, first_leaf};

/// Answers of the checks that reparse part of the text: several tree errors often lie in one
/// construct, and it is parsed once.
#[derive(Default)]
pub(crate) struct Checked {
    /// By node id.
    nodes: Vec<(usize, bool)>,
    /// Python statements with dedented continuation lines, found on first use.
    dedented: Option<Dedented>,
    /// The text with the constructs of [`rewrites`] rewritten, found on first use.
    rewritten: Option<Rewritten>,
    /// The tree being checked, which the rewritten text is reparsed from.
    tree: Option<Tree>,
}

impl Checked {
    pub(crate) fn new(tree: &Tree) -> Checked {
        Checked { tree: Some(tree.clone()), ..Checked::default() }
    }

    fn get_or(&mut self, node: Node<'_>, check: impl FnOnce() -> bool) -> bool {
        if let Some(&(_, answer)) = self.nodes.iter().find(|(id, _)| *id == node.id()) {
            return answer;
        }
        let answer = check();
        self.nodes.push((node.id(), answer));
        answer
    }
}

/// The longest construct that is reparsed to confirm a gap, in bytes.
const MAX_REPARSE: usize = 16 * 1024;

/// Whether `text`, parsed alone, has no error.
fn parses_cleanly(language: Language, text: &str) -> bool {
    let tree = parse::parse(language, text, None);
    !tree.root_node().has_error() && !parse::gave_up(&tree, text)
}

/// Whether the tree error `error` lies in a valid construct that the grammar cannot parse.
///
/// - Rust: macro bodies (`macro_rules!` definitions and macro token trees hold arbitrary
///   tokens, and the grammar trips on some of them), the 2015 `try!` macro, `safe fn` and
///   `safe static` in `unsafe extern` blocks (Rust 2024), foreign types (see [`foreign_type`]),
///   outer attributes where the grammar
///   takes none (see [`attribute_gap`]), a `where` clause on a unit struct
///   (`struct S where T: Send;`), negative const generic arguments, `()` bounded in a `where`
///   clause, a macro call bounded in a `where` clause (`mac!(Self): Send`), a field named by its
///   index in a struct pattern (`Tuple { 1: x, .. }`), a bound with no
///   traits (`C: ,`), the weak keyword `raw` as a name and `..=end` in
///   a closure, underscores in a Unicode escape (`\u{1_F6_02}`; see [`rewrites`]), and a file that holds one expression, meant for `include!`
///   (see [`lone_expression`]).
/// - TypeScript and TSX: `import("module")` types and `in`/`out` variance annotations on type
///   parameters (also after a comment, and with a default: `<in T = never>`). TSX: function
///   types whose parameter has no type annotation (`i: (string) => string`, a parameter named
///   `string`). Both: `abstract` as a member's name, `export type *` and overloaded generic call
///   signatures with no `;` between them (see [`rewrites`]).
/// - JavaScript family: a statement that starts with `[` after an arrow function with a block
///   body (see [`arrow_asi_gap`]), and reserved words as imported or exported names (see
///   [`rewrites`]).
/// - Python: a statement whose bracketed continuation lines are indented less than its first
///   line (see [`dedented_continuation`]).
/// - Go: what `gofmt` accepts and only the type checker rejects (`make(1)`, `[...]T` in a type,
///   `~x` in an expression, a label on a label; see [`go_rewrite`]).
/// - JSON: a number with a `+` exponent (`0.5e+1`, `2E+1`), which the grammar splits into a
///   number, an ERROR `e+` and another number.
pub(crate) fn grammar_gap(
    language: Language,
    text: &str,
    scan: &Scan,
    error: Node<'_>,
    checked: &mut Checked,
) -> bool {
    let node = culprit(error);
    let leaf = first_leaf(node);
    let word = text.get(leaf.start_byte()..leaf.end_byte()).unwrap_or("");
    let after = text.get(leaf.end_byte()..).unwrap_or("").trim_start();
    let before = text.get(..leaf.start_byte()).unwrap_or("").trim_end();
    match language {
        Language::Rust => {
            // `name![[...]]`-style invocations that the grammar fails to open, also as a MISSING
            // `,` before the `!` (`(a, str![].raw())` in a tuple).
            let after_name = before.ends_with(|c: char| c.is_alphanumeric() || c == '_');
            let bang_opens = after.strip_prefix('!').is_some_and(|a| a.starts_with(['[', '(', '{']));
            let macro_bang =
                after_name && (word == "!" || (node.is_missing() && bang_opens)) && !juxtaposed_path(before);
            if (word == "try" && after.starts_with('!')) || word == "safe" || macro_bang {
                return true;
            }
            let mut n = Some(error);
            for _ in 0..64 {
                let Some(p) = n else { break };
                if matches!(p.kind(), "macro_definition" | "token_tree" | "macro_invocation") {
                    return true;
                }
                n = p.parent();
            }
            unit_struct_where(error)
                || foreign_type(text, error, checked)
                || attribute_gap(text, error, checked)
                || rewritten_gap(language, text, error, checked)
                || lone_expression(text, error, checked)
        }
        Language::TypeScript | Language::Tsx => {
            let line_start = text[..error.start_byte().min(text.len())].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[error.start_byte().min(text.len())..]
                .find('\n')
                .map_or(text.len(), |i| i + error.start_byte());
            let line = text.get(line_start..line_end).unwrap_or("");
            let import_type = line.contains(": import(") || (word == "import" && after.starts_with('('));
            let code_before = without_trailing_block_comments(before);
            let variance = (matches!(word, "in" | "out") && code_before.ends_with(['<', ',']))
                || before
                    .strip_suffix("out")
                    .or_else(|| before.strip_suffix(" in"))
                    .is_some_and(|b| without_trailing_block_comments(b.trim_end()).ends_with(['<', ',']));
            // `(name) => T` in a type: a parameter named without a type annotation.
            let untyped_param_type = language == Language::Tsx && word == "=>" && {
                let inner = before.strip_suffix(')').unwrap_or("");
                let open = inner.rfind('(').unwrap_or(0);
                let name = inner.get(open + 1..).unwrap_or("").trim();
                before.ends_with(')')
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '$')
                    && inner[..open].trim_end().ends_with(':')
            };
            import_type
                || variance
                || untyped_param_type
                || variance_with_default(text, error)
                || arrow_asi_gap(language, text, error, checked)
                || rewritten_gap(language, text, error, checked)
        }
        Language::JavaScript => {
            arrow_asi_gap(language, text, error, checked) || rewritten_gap(language, text, error, checked)
        }
        Language::Python => dedented_continuation(text, scan, error, checked),
        Language::Json => plus_exponent(text, error, checked),
        Language::Go => rewritten_gap(language, text, error, checked),
    }
}

/// Words after which a macro call may start an expression, a pattern or a type.
const BEFORE_MACRO_CALL: [&str; 14] = [
    "return", "break", "in", "as", "match", "if", "while", "let", "mut", "ref", "for", "where", "yield",
    "else",
];

/// Whether the macro path that `before` ends with (`name`, `a::name`) follows another word
/// that cannot precede a call (`fn name!(…)`, `tracing tracing::warn!(…)`, `impl name!(…);`):
/// then the grammar's error at the `!` is a real mistake, not an invocation it failed to open.
fn juxtaposed_path(before: &str) -> bool {
    let path = before.trim_end_matches(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
    let word_before = path.trim_end();
    // Glued to what precedes it (`(name!`), or first on its line (after a comment, maybe).
    if word_before.len() == path.len() || path[word_before.len()..].contains('\n') {
        return false;
    }
    let word =
        &word_before[word_before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1)..];
    let name = &before[path.len()..];
    !word.is_empty()
        && !word.starts_with(|c: char| c.is_ascii_digit())
        && !BEFORE_MACRO_CALL.contains(&word)
        && !word_before[..word_before.len() - word.len()].ends_with(['\'', '$', '#'])
        && !name.is_empty()
}

/// Same-length rewrites of valid constructs that the grammar cannot parse into equivalent ones
/// that it can, applied to the whole text, and the tree of the result, parsed on first use.
#[derive(Default)]
struct Rewritten {
    /// Where the text was rewritten.
    sites: Vec<Range<usize>>,
    text: String,
    tree: Option<Option<Tree>>,
}

impl Rewritten {
    fn new(language: Language, text: &str) -> Rewritten {
        let (bytes, sites) = rewrites(language, text);
        match String::from_utf8(bytes) {
            Ok(text) if !sites.is_empty() => Rewritten { sites, text, tree: None },
            _ => Rewritten::default(),
        }
    }

    /// The tree of the rewritten text. Each site is edited into a copy of `old` (the tree of the
    /// original text), so the reparse reuses everything else.
    fn tree(&mut self, language: Language, original: &str, old: Option<&Tree>) -> Option<&Tree> {
        let sites = &self.sites;
        let text = &self.text;
        self.tree
            .get_or_insert_with(|| {
                let old = old.map(|t| {
                    let mut t = t.clone();
                    for site in sites {
                        let start_position = super::point_at(original, site.start);
                        let old_end_position = super::point_at(original, site.end);
                        t.edit(&InputEdit {
                            start_byte: site.start,
                            old_end_byte: site.end,
                            new_end_byte: site.end,
                            start_position,
                            old_end_position,
                            new_end_position: old_end_position,
                        });
                    }
                    t
                });
                let tree = parse::parse(language, text, old.as_ref());
                (!parse::gave_up(&tree, text)).then_some(tree)
            })
            .as_ref()
    }
}

/// Whether the tree error `error` lies in a construct that [`rewrites`] rewrites: a site of it
/// overlaps or touches the error and the rewritten text has no error there, or the rewritten
/// text has no error anywhere. A rewrite keeps
/// every byte offset, so the two trees line up, and it only ever turns valid code into valid
/// code, so a real mistake beside the construct still fails the reparse.
fn rewritten_gap(language: Language, text: &str, error: Node<'_>, checked: &mut Checked) -> bool {
    let start = error.start_byte();
    let end = error.end_byte().max(start + 1);
    let old = checked.tree.clone();
    let fixed = checked.rewritten.get_or_insert_with(|| Rewritten::new(language, text));
    if fixed.sites.is_empty() {
        return false;
    }
    let near = fixed.sites.iter().any(|s| s.start <= end && start <= s.end);
    let Some(tree) = fixed.tree(language, text, old.as_ref()) else { return false };
    // A construct the grammar misreads can throw its parse off until far past it (a string
    // whose escape it does not know ends somewhere else). When the rewritten text has no error
    // at all, the original has none either but in the rewritten constructs.
    if near { !has_error_in(tree.root_node(), start..end) } else { !tree.root_node().has_error() }
}

/// The text with each valid construct that the grammar cannot parse rewritten, byte for byte,
/// into one it can, and where:
///
/// - Rust: a negative literal as a const generic argument (`RangedI32<-999_999, 999_999>`, as
///   in `time` and `deranged`): the `-` becomes a blank; `()` as the bounded type of a `where`
///   predicate (`(): Trait`, as in `typenum`): it becomes a two-letter name; the weak keyword
///   `raw` used as a name (`Option<raw>`, as in `syn` 1.0): it becomes another three-letter name;
///   a range with no start up to an inclusive end (`|end| ..=end`, as in `quickcheck`): the `=`
///   becomes a blank.
///   A Unicode escape with underscores (`\u{1_F6_02}`): each `_` becomes `0`.
///   A macro call as the bounded type of a `where` predicate (`mac!(Self): Send`): it becomes
///   a name (see [`bounded_macro_type`]). A field named by its index in a struct pattern
///   (`Tuple { 1: x, .. }`, as in `async-trait`'s tests): its digits become letters.
///   A bound with no traits (`C: ,` in a `where` clause, as in `combine`; `<T:>`): the
///   predicate is blanked (see [`empty_bound`]).
/// - JavaScript family: a reserved word as an imported or exported name (`import { in as o }`,
///   `export { x as in }`, as Vite's chunks write them): its first letter becomes `_`.
/// - TypeScript and TSX: `abstract` as the name of a member (`abstract?: boolean;`, as in
///   `@babel/types`): its first letter becomes `_`; `export type *` (TypeScript 5.0): `type`
///   becomes blanks; `keyof readonly T[]`: `readonly` becomes blanks; an overloaded generic call signature on a line of its own after a member
///   with no `;`: the blank before its `<` becomes `;` (see [`member_on_new_line`]).
/// - Go: what `gofmt` accepts and the type checker rejects (see [`go_rewrite`]).
fn rewrites(language: Language, text: &str) -> (Vec<u8>, Vec<Range<usize>>) {
    let mut bytes = text.as_bytes().to_vec();
    let mut sites = Vec::new();
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    let prev_code = |i: usize| b[..i].iter().rposition(|c| !c.is_ascii_whitespace());
    let next_code = |i: usize| b[i..].iter().position(|c| !c.is_ascii_whitespace()).map(|k| i + k);
    match language {
        Language::Rust => {
            for i in 0..b.len() {
                match b[i] {
                    b'-' if b.get(i + 1).is_some_and(u8::is_ascii_digit)
                        && prev_code(i).is_some_and(|p| b[p] == b'<' || (b[p] == b',' && in_angle(b, p))) =>
                    {
                        bytes[i] = b' ';
                        sites.push(i..i + 1);
                    }
                    b'(' if b.get(i + 1) == Some(&b')')
                        && next_code(i + 2).is_some_and(|n| b[n] == b':' && b.get(n + 1) != Some(&b':'))
                        && prev_code(i).is_some_and(|p| {
                            b[p] == b','
                                || (p >= 4 && &b[p - 4..=p] == b"where" && (p == 4 || !word(b[p - 5])))
                        }) =>
                    {
                        bytes[i..i + 2].copy_from_slice(b"__");
                        sites.push(i..i + 2);
                    }
                    // `..=end` with no start: `RangeTo` parses in more places.
                    b'.' if b[i..].starts_with(b"..=")
                        && prev_code(i).is_some_and(|p| b"(|{[,;=>".contains(&b[p])) =>
                    {
                        bytes[i + 2] = b' ';
                        sites.push(i..i + 3);
                    }
                    b'r' if b[i..].starts_with(b"raw")
                        && (i == 0 || !word(b[i - 1]))
                        && !b.get(i + 3).is_some_and(|&c| word(c))
                        && !text[i + 3..].trim_start().starts_with("const")
                        && !text[i + 3..].trim_start().starts_with("mut") =>
                    {
                        bytes[i + 1] = b'_';
                        sites.push(i..i + 3);
                    }
                    // `\u{1_F6_02}`: the grammar's Unicode escape takes no underscores.
                    b'\\' if b[i..].starts_with(b"\\u{") => {
                        let digits = b[i + 3..]
                            .iter()
                            .take(64)
                            .take_while(|c| c.is_ascii_hexdigit() || **c == b'_')
                            .count();
                        let body = i + 3..i + 3 + digits;
                        if b.get(body.end) == Some(&b'}') && b[body.clone()].contains(&b'_') {
                            for k in body.clone() {
                                if b[k] == b'_' {
                                    bytes[k] = b'0';
                                }
                            }
                            // The grammar trips at the literal's closing quote.
                            let line_end = b[body.end..]
                                .iter()
                                .position(|&c| c == b'\n')
                                .map_or(b.len(), |n| body.end + n);
                            sites.push(i..line_end);
                        }
                    }
                    // `Tuple { 1: x, .. }`: a field named by its index in a struct pattern.
                    b'0'..=b'9'
                        if (i == 0 || !word(b[i - 1]))
                            && prev_code(i).is_some_and(|p| matches!(b[p], b'{' | b','))
                            && {
                                let end = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                                next_code(end).is_some_and(|n| b[n] == b':' && b.get(n + 1) != Some(&b':'))
                                    && !b.get(end).copied().is_some_and(word)
                            } =>
                    {
                        let end = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                        bytes[i..end].fill(b'f');
                        sites.push(i..end);
                    }
                    b'!' => {
                        if let Some(call) = bounded_macro_type(b, i) {
                            bytes[call.start] = b'M';
                            bytes[call.start + 1..call.end].fill(b'_');
                            sites.push(call);
                        }
                    }
                    b':' => {
                        if let Some(blank) = empty_bound(b, i) {
                            for k in blank.clone() {
                                if b[k] != b'\n' {
                                    bytes[k] = b' ';
                                }
                            }
                            sites.push(blank);
                        }
                    }
                    _ => {}
                }
            }
        }
        Language::JavaScript | Language::TypeScript | Language::Tsx => {
            let mut i = 0;
            while i < b.len() {
                if b[i].is_ascii_lowercase() && (i == 0 || !word(b[i - 1])) {
                    let len = b[i..].iter().take_while(|&&c| word(c)).count();
                    let name = &text[i..i + len];
                    let before = prev_code(i).map(|p| b[p]);
                    let after = next_code(i + len).map(|n| &text[n..]);
                    // `{ in as o }` or `, in as o`; `as in }` or `as in,`.
                    let imported = matches!(before, Some(b'{' | b','))
                        && after.is_some_and(|a| {
                            a.starts_with("as")
                                && a.as_bytes().get(2).is_some_and(|c| c.is_ascii_whitespace())
                        });
                    let alias = prev_code(i)
                        .is_some_and(|p| p >= 1 && &b[p - 1..=p] == b"as" && (p == 1 || !word(b[p - 2])))
                        && after.is_some_and(|a| a.starts_with([',', '}']));
                    let typescript = language != Language::JavaScript;
                    // `abstract: boolean` in an interface or class: a name, not a modifier.
                    let abstract_name = typescript
                        && name == "abstract"
                        && after
                            .is_some_and(|a| a.starts_with([':', '?', '(', '<', ';', ',', '=', '!', '}']));
                    if (RESERVED.contains(&name) && (imported || alias)) || abstract_name {
                        bytes[i] = b'_';
                        sites.push(i..i + len);
                    }
                    // `keyof readonly T[]` (as in TypeScript's own `lib.es2015.symbol.wellknown.d.ts`):
                    // `readonly` after `keyof` is a type operator the grammar does not take there.
                    if typescript
                        && name == "readonly"
                        && prev_code(i).is_some_and(|p| {
                            p >= 4 && &b[p - 4..=p] == b"keyof" && (p == 4 || !word(b[p - 5]))
                        })
                    {
                        bytes[i..i + len].fill(b' ');
                        sites.push(i..i + len);
                    }
                    // `export type * from 'm'` (TypeScript 5.0): `export * from 'm'` for the grammar.
                    if typescript
                        && name == "type"
                        && after.is_some_and(|a| a.starts_with('*'))
                        && prev_code(i).is_some_and(|p| p >= 5 && &b[p - 5..=p] == b"export")
                    {
                        bytes[i..i + len].fill(b' ');
                        sites.push(i..i + len);
                    }
                    i += len.max(1);
                    continue;
                }
                if b[i] == b'<'
                    && language != Language::JavaScript
                    && let Some((blank, prev_end)) = member_on_new_line(b, i)
                {
                    bytes[blank] = b';';
                    sites.push(prev_end..i + 1);
                }
                i += 1;
            }
        }
        Language::Go => {
            for i in 0..b.len() {
                if let Some((site, at, with)) = go_rewrite(b, i) {
                    bytes[at..at + with.len()].copy_from_slice(with);
                    sites.push(site);
                }
            }
        }
        _ => {}
    }
    (bytes, sites)
}

/// TypeScript: a member of an interface or object type that starts with `<` on a line of its
/// own after a member with no `;` (an overloaded generic call signature):
///
/// ```ts
/// interface F {
///   <T>(glob: string): T
///   <U>(x: number): U
/// }
/// ```
///
/// TypeScript ends a member at a line break, the grammar reads `T <U> (x...` on. When the `<` at
/// `at` starts its line after a blank and the code before it (comments skipped) ends like a
/// type, returns the blank to become `;` and where that code ends.
fn member_on_new_line(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let line_start = b[..at].iter().rposition(|&c| c == b'\n')? + 1;
    if at == line_start || !b[line_start..at].iter().all(|&c| c == b' ' || c == b'\t') {
        return None;
    }
    let prev = prev_code_skipping_comments(b, line_start)?;
    let ends_like_type =
        b[prev].is_ascii_alphanumeric() || matches!(b[prev], b'_' | b'$' | b')' | b']' | b'>' | b'}');
    ends_like_type.then_some((at - 1, prev + 1))
}

/// The last byte of code before `at` in a C-like language, skipping blanks, block comments and
/// lines that hold only a line comment.
fn prev_code_skipping_comments(b: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..64 {
        let p = b[..at].iter().rposition(|c| !c.is_ascii_whitespace())?;
        if p >= 1 && &b[p - 1..=p] == b"*/" {
            at = b[..p - 1].windows(2).rposition(|w| w == b"/*")?;
            continue;
        }
        let line_start = b[..p].iter().rposition(|&c| c == b'\n').map_or(0, |n| n + 1);
        let first = line_start + b[line_start..=p].iter().position(|c| !c.is_ascii_whitespace())?;
        if b[first..].starts_with(b"//") {
            at = line_start;
            continue;
        }
        return Some(p);
    }
    None
}

/// Go constructs that `gofmt` accepts (the type checker rejects them later) and the grammar
/// does not, as Go's own type-checker tests write them, each rewritten into one it parses:
/// `new`/`make` with a first argument that is not a type (`make(1)`, `new(- 1)`,
/// `make(f0 ())`) become an ordinary call; `[...]T` outside a composite literal becomes `[1  ]T`;
/// a spread last argument (`new(int...)`) loses its `...`; `~x` in an expression becomes `-x`;
/// a label on a label (`L: L1:` before `}`) becomes an expression statement (`L; L1:`).
/// Returns the site, and where to write what.
fn go_rewrite(b: &[u8], i: usize) -> Option<(Range<usize>, usize, &'static [u8])> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let next = |from: usize| next_code_skipping_comments(b, from);
    match b[i] {
        b'n' | b'm' if (i == 0 || !(word(b[i - 1]) || b[i - 1] == b'.')) => {
            let len = if b[i..].starts_with(b"new") {
                3
            } else if b[i..].starts_with(b"make") {
                4
            } else {
                0
            };
            if len == 0 || b.get(i + len).copied().is_some_and(word) {
                return None;
            }
            let open = next(i + len).filter(|&o| b[o] == b'(')?;
            let arg = next(open + 1)?;
            let not_type = match b[arg] {
                b'0'..=b'9' | b'-' | b'+' | b'"' | b'\'' | b'`' | b'!' | b'&' | b'^' | b'~' | b'.' => true,
                c if word(c) => {
                    let end = arg + b[arg..].iter().take_while(|&&c| word(c)).count();
                    next(end).is_some_and(|n| b[n] == b'(' || b[n..].starts_with(b"..."))
                }
                _ => false,
            };
            if !not_type {
                return None;
            }
            // The whole call is the site.
            let mut depth = 0;
            let close = (open..b.len().min(open + 512)).find(|&k| {
                match b[k] {
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })?;
            let with: &'static [u8] = if len == 3 { b"ne_" } else { b"mak_" };
            Some((i..close + 1, i, with))
        }
        b'.' if b[i..].starts_with(b"...") && i > 0 => {
            let after = next(i + 3)?;
            let before = b[..i].iter().rposition(|c| !c.is_ascii_whitespace())?;
            if b[after] == b']' && prev_code_skipping_comments(b, i).is_some_and(|p| b[p] == b'[') {
                Some((i..i + 3, i, b"1  "))
            } else if b[after] == b')'
                && before == i - 1
                && (word(b[before]) || matches!(b[before], b')' | b']'))
            {
                Some((i..i + 3, i, b"   "))
            } else {
                None
            }
        }
        b'~' => {
            let p = prev_code_skipping_comments(b, i)?;
            matches!(b[p], b'=' | b'(' | b',').then_some((i..i + 1, i, b"-"))
        }
        b':' if b.get(i + 1) != Some(&b'=') && i > 0 && word(b[i - 1]) => {
            // The label is the first token of its line.
            let line_start = b[..i].iter().rposition(|&c| c == b'\n').map_or(0, |n| n + 1);
            let first = line_start + b[line_start..i].iter().position(|c| !c.is_ascii_whitespace())?;
            if !b[first..i].iter().all(|&c| word(c)) || &b[first..i] == b"default" {
                return None;
            }
            let label = next(i + 1).filter(|&n| word(b[n]))?;
            let end = label + b[label..].iter().take_while(|&&c| word(c)).count();
            let colon = next(end).filter(|&c| b[c] == b':' && b.get(c + 1) != Some(&b'='))?;
            Some((i..colon + 1, i, b";"))
        }
        _ => None,
    }
}

/// The first byte of code at or after `at`, skipping blanks and block comments.
fn next_code_skipping_comments(b: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..64 {
        let n = at + b.get(at..)?.iter().position(|c| !c.is_ascii_whitespace())?;
        if b[n..].starts_with(b"/*") {
            at = n + 2 + b[n + 2..].windows(2).position(|w| w == b"*/")? + 2;
            continue;
        }
        return Some(n);
    }
    None
}

/// Rust: a macro call as the bounded type of a `where` predicate (`mac!(Self): Send`, as in
/// `async-trait`'s tests), which rustc accepts (a macro may stand for a type) and the grammar
/// does not; `bang` is the offset of its `!`. Returns the call, path included, when it is on
/// one line, follows `where` or a `,` and is followed by a `:` (not `::`): it becomes a name of
/// the same length.
fn bounded_macro_type(b: &[u8], bang: usize) -> Option<Range<usize>> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if bang == 0 || !word(b[bang - 1]) || !matches!(b.get(bang + 1), Some(b'(' | b'[' | b'{')) {
        return None;
    }
    let start = (0..bang).rev().take_while(|&k| word(b[k]) || b[k] == b':').last()?;
    if !b[start].is_ascii_alphabetic() && b[start] != b'_' {
        return None;
    }
    let open = b[bang + 1];
    let mut depth = 0;
    let close = (bang + 1..b.len().min(bang + 257)).find(|&k| {
        if b[k] == open {
            depth += 1;
        } else if b[k] == super::balance::closer(open) {
            depth -= 1;
        }
        depth == 0 || b[k] == b'\n'
    })?;
    if b[close] == b'\n' {
        return None;
    }
    let after = close + 1 + b[close + 1..].iter().position(|c| !c.is_ascii_whitespace())?;
    if b[after] != b':' || b.get(after + 1) == Some(&b':') {
        return None;
    }
    let before = b[..start].iter().rposition(|c| !c.is_ascii_whitespace())?;
    let after_where =
        before >= 4 && &b[before - 4..=before] == b"where" && (before == 4 || !word(b[before - 5]));
    (b[before] == b',' || after_where).then_some(start..close + 1)
}

/// Rust: a bound with no traits (`C: ,` in a `where` clause, `<T:>`), which rustc accepts and
/// the grammar does not; `colon` is the offset of its `:`. Returns what to blank so that the
/// rest parses the same: the colon alone before `>` or `=` (`<T >`, `<T = u8>`), else the whole
/// predicate with its `,` (`where    {`). Only in a list of generic parameters or a `where`
/// clause: walking back over the bounded type and the predicates before it must reach a `<` or
/// `where` (a struct field `S { a: , b }` is a mistake).
fn empty_bound(b: &[u8], colon: usize) -> Option<Range<usize>> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if b.get(colon + 1) == Some(&b':') || (colon > 0 && b[colon - 1] == b':') {
        return None;
    }
    let next = colon + 1 + b[colon + 1..].iter().position(|c| !c.is_ascii_whitespace())?;
    if !matches!(b[next], b'>' | b'=' | b',' | b'{' | b';') {
        return None;
    }
    let before = b[..colon].iter().rposition(|c| !c.is_ascii_whitespace())?;
    // A bounded type ends with a name or a closing bracket; a lifetime is left alone (`'a: {`
    // is also a labelled block).
    if !(word(b[before]) || matches!(b[before], b'>' | b')' | b']')) {
        return None;
    }
    let name_start = (0..=before).rev().take_while(|&k| word(b[k])).last().unwrap_or(before);
    if name_start > 0 && b[name_start - 1] == b'\'' {
        return None;
    }
    // Back over the bounded type to what precedes the predicate (`start`), then on over the
    // predicates before it to the `<` or `where` that opens the list.
    let mut depth = 0i32;
    let mut start = None;
    let mut k = before + 1;
    let stop = before.saturating_sub(1024);
    loop {
        if k == stop {
            return None;
        }
        k -= 1;
        match b[k] {
            b'>' if k > 0 && b[k - 1] == b'-' => k -= 1,
            b'>' | b')' | b']' => depth += 1,
            b'<' | b'(' | b'[' if depth > 0 => depth -= 1,
            b',' if depth == 0 => {
                start.get_or_insert(k + 1);
            }
            b'<' if depth == 0 => break,
            b'e' if depth == 0
                && k >= 4
                && &b[k - 4..=k] == b"where"
                && (k == 4 || !word(b[k - 5]))
                && !b.get(k + 1).copied().is_some_and(word) =>
            {
                break;
            }
            b'(' | b'[' | b'{' | b'}' | b';' if depth == 0 => return None,
            _ => {}
        }
    }
    let from = start.unwrap_or(k + 1);
    let first = from + b[from..].iter().position(|c| !c.is_ascii_whitespace())?;
    match b[next] {
        b'>' | b'=' => Some(colon..colon + 1),
        b',' => Some(first..next + 1),
        _ => Some(first..colon + 1),
    }
}

/// Words that cannot name a binding in JavaScript but can name an export.
const RESERVED: [&str; 38] = [
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// Whether the `,` at `comma` separates generic arguments: the nearest bracket before it on its
/// line that is still open is a `<`.
fn in_angle(b: &[u8], comma: usize) -> bool {
    let mut depth = 0i32;
    for &c in b[..comma].iter().rev() {
        match c {
            b'\n' => return false,
            b')' | b']' | b'}' | b'>' => depth += 1,
            b'(' | b'[' | b'{' => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
            }
            b'<' => {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    false
}

/// A file that holds one expression and nothing else (a string literal, an array), meant for
/// `include!`: the grammar takes a file for a list of items and statements. The error is a gap
/// when the whole text is the tail expression of a block once wrapped in one.
fn lone_expression(text: &str, error: Node<'_>, checked: &mut Checked) -> bool {
    let mut root = error;
    while let Some(p) = root.parent() {
        root = p;
    }
    let mut cursor = root.walk();
    if text.len() > MAX_REPARSE || root.children(&mut cursor).filter(|c| !c.is_extra()).count() != 1 {
        return false;
    }
    checked.get_or(root, || {
        let wrapped = format!("fn f() {{\n{text}\n}}");
        let tree = parse::parse(Language::Rust, &wrapped, None);
        if tree.root_node().has_error() {
            return false;
        }
        let body = tree.root_node().named_child(0).and_then(|f| f.child_by_field_name("body"));
        let Some(body) = body else { return false };
        let mut cursor = tree.walk();
        let mut parts = body.named_children(&mut cursor).filter(|c| !c.is_extra());
        let only = parts.next().map(|n| n.kind());
        // The block's tail: an expression, not a statement or an item.
        parts.next().is_none()
            && only.is_some_and(|k| {
                k != "expression_statement" && k != "let_declaration" && !k.ends_with("_item")
            })
    })
}

/// `text` without the block comments at its end (`/** @ts-ignore */` before a token).
fn without_trailing_block_comments(mut text: &str) -> &str {
    while text.ends_with("*/") {
        match text.rfind("/*") {
            Some(i) => text = text[..i].trim_end(),
            None => break,
        }
    }
    text
}

/// Rust accepts an outer attribute on any expression and on the fields of struct patterns, but
/// the grammar only in some places: not before the second element of a tuple
/// (`(a, #[expect(clippy::unwrap_used)] b.unwrap())`) and not on a field of a struct pattern
/// (`Literal { #[cfg(x)] inner: l, .. }`). The error is a gap when its function (or top-level
/// item) has such attributes and parses cleanly once they are blanked out: attributes do not
/// change whether the code around them parses, so a real mistake there still fails.
fn attribute_gap(text: &str, error: Node<'_>, checked: &mut Checked) -> bool {
    let mut item = None;
    let mut n = error.parent();
    while let Some(p) = n {
        let Some(parent) = p.parent() else { break };
        if p.kind() == "function_item" || parent.parent().is_none() {
            item = Some(p);
            break;
        }
        n = Some(parent);
    }
    let Some(item) = item else { return false };
    checked.get_or(item, || {
        let attributes = outer_attributes(text, item);
        if attributes.is_empty() {
            return false;
        }
        let start = item.start_byte();
        let mut bytes = text.as_bytes()[start..item.end_byte()].to_vec();
        for range in attributes {
            for b in &mut bytes[range.start - start..range.end - start] {
                if *b != b'\n' {
                    *b = b' ';
                }
            }
        }
        parses_cleanly(Language::Rust, &String::from_utf8_lossy(&bytes))
    })
}

/// The byte ranges of the well-formed outer attributes (`#[...]`, from `#` to the matching `]`)
/// inside `node`, found by its leaves so that brackets in strings do not count.
fn outer_attributes(text: &str, node: Node<'_>) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut leaves = Vec::new();
    let mut cursor = node.walk();
    'walk: loop {
        let n = cursor.node();
        if n.child_count() == 0 {
            leaves.push(n);
        } else if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.node().id() == node.id() {
                break 'walk;
            }
            if cursor.goto_next_sibling() {
                continue 'walk;
            }
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
    let mut i = 0;
    while i + 1 < leaves.len() {
        if leaves[i].kind() == "#" && leaves[i + 1].kind() == "[" {
            let mut depth = 0;
            let mut j = i + 1;
            while j < leaves.len() {
                match leaves[j].kind() {
                    "[" => depth += 1,
                    "]" => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                j += 1;
            }
            if j == leaves.len() {
                break;
            }
            let range = leaves[i].start_byte()..leaves[j].end_byte();
            // A broken attribute is a mistake, not an attribute in an unexpected place.
            let clean = leaves[i].parent().is_some_and(|p| p.kind() == "attribute_item" && !p.has_error())
                || text
                    .get(range.clone())
                    .is_some_and(|a| parses_cleanly(Language::Rust, &format!("{a}\nfn f() {{}}")));
            if clean {
                out.push(range);
            }
            i = j;
        }
        i += 1;
    }
    out
}

/// `type Name;` in an `extern` block (a foreign type, as `web-sys` declares thousands for
/// `#[wasm_bindgen]`; also generic, `type JsOption<T>;`, as in `wasm-bindgen`): the grammar
/// takes no `type` item there. The error is a gap when it lies in such a block and the block
/// parses cleanly with each `type Name;` written as the foreign function `fn Name();`.
fn foreign_type(text: &str, error: Node<'_>, checked: &mut Checked) -> bool {
    let Some(block) = error.parent().filter(|p| p.kind() == "declaration_list") else { return false };
    let Some(item) = block.parent().filter(|p| p.kind() == "foreign_mod_item") else { return false };
    checked.get_or(item, || {
        let source = &text[item.start_byte()..item.end_byte()];
        let b = source.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let mut rewritten = String::with_capacity(source.len());
        let mut from = 0;
        let mut found = false;
        let mut i = 0;
        while let Some(k) = source[i..].find("type") {
            let at = i + k;
            i = at + 4;
            if (at > 0 && word(b[at - 1])) || b.get(at + 4).is_none_or(|&c| !c.is_ascii_whitespace()) {
                continue;
            }
            let rest = &source[at + 4..];
            let name_len = rest.trim_start().bytes().take_while(|&c| word(c)).count();
            let name_start = at + 4 + (rest.len() - rest.trim_start().len());
            // Generic parameters (`type JsOption<T>;`) stay, on the function.
            let mut name_end = name_start + name_len;
            if b.get(name_end) == Some(&b'<') {
                let mut depth = 0;
                let Some(close) = (name_end..b.len()).find(|&k| {
                    match b[k] {
                        b'<' => depth += 1,
                        b'>' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                }) else {
                    continue;
                };
                name_end = close + 1;
            }
            let after = source[name_end..].trim_start();
            if name_len == 0 || !after.starts_with(';') {
                continue;
            }
            rewritten.push_str(&source[from..at]);
            rewritten.push_str("fn ");
            rewritten.push_str(&source[name_start..name_end]);
            rewritten.push_str("()");
            from = name_end;
            found = true;
        }
        rewritten.push_str(&source[from..]);
        found && parses_cleanly(Language::Rust, &rewritten)
    })
}

/// `struct S where T: Send;`: the grammar takes a `where` clause on tuple and braced structs
/// only, and wraps it in an ERROR on a unit struct.
fn unit_struct_where(error: Node<'_>) -> bool {
    let mut cursor = error.walk();
    let mut named = error.named_children(&mut cursor).filter(|c| !c.is_extra());
    error.parent().is_some_and(|p| p.kind() == "struct_item")
        && named.next().is_some_and(|c| c.kind() == "where_clause")
        && named.next().is_none()
}

/// `<in T = never>`: with a default, the grammar takes `in` (or `out`) for the parameter's name
/// and wraps the real name in an ERROR of its own.
fn variance_with_default(text: &str, error: Node<'_>) -> bool {
    let parent = error.parent().filter(|p| p.kind() == "type_parameter");
    let variance = parent
        .and_then(|p| p.child(0))
        .and_then(|c| text.get(c.start_byte()..c.end_byte()))
        .is_some_and(|w| matches!(w, "in" | "out"));
    let only_name = error.child_count() == 1 && error.child(0).is_some_and(|c| c.kind() == "identifier");
    variance && only_name
}

/// Automatic semicolon insertion after an arrow function with a block body: in
///
/// ```js
/// const f = () => {
///   return 1
/// }
/// [a, ...b].forEach(g)
/// ```
///
/// the declaration ends at `}` (an arrow function cannot be indexed), but the grammar reads
/// `[...]` as an index into the arrow function and fails on the spread. The error is a gap when
/// it lies in such an index that starts on a later line and the code from its `[` to the end of
/// the expression parses cleanly on its own.
fn arrow_asi_gap(language: Language, text: &str, error: Node<'_>, checked: &mut Checked) -> bool {
    let mut n = error.parent();
    while let Some(p) = n {
        let object = p.child(0);
        let is_gap = p.kind() == "subscript_expression"
            && object.is_some_and(|o| {
                o.kind() == "arrow_function"
                    && o.child_by_field_name("body").is_some_and(|b| b.kind() == "statement_block")
            });
        if is_gap {
            let object = object.expect("checked above");
            let Some(open) = object.next_sibling() else { return false };
            if open.kind() != "[" || open.start_position().row == object.end_position().row {
                return false;
            }
            // The outermost expression that starts with the arrow function: `[...].forEach(g)`.
            let mut top = p;
            while let Some(up) = top.parent() {
                if up.start_byte() != object.start_byte() || !up.kind().ends_with("expression") {
                    break;
                }
                top = up;
            }
            let rest = text.get(open.start_byte()..top.end_byte()).unwrap_or("");
            // A statement, not the rest of a file that an error further up disturbed.
            if rest.len() > MAX_REPARSE {
                return false;
            }
            return checked.get_or(p, || parses_cleanly(language, rest));
        }
        n = p.parent();
    }
    false
}

/// Python: whether line `line` is in a statement that spans bracketed lines, one of which is
/// indented less than the statement's first line, and that parses once those lines are
/// indented to the statement's level:
///
/// ```python
/// def f():
///     (bar.
/// baz)
/// ```
///
/// Indentation inside brackets means nothing to Python, but tree-sitter-python's scanner reads
/// it and the statement fails. The statement must close its brackets, so an unclosed bracket
/// (which also makes later lines "continuation lines") is not taken for this.
fn dedented_continuation(text: &str, scan: &Scan, error: Node<'_>, checked: &mut Checked) -> bool {
    let fixed = checked.dedented.get_or_insert_with(|| Dedented::new(text, scan));
    let line = scan.line_of(culprit(error).start_byte()) as usize;
    let Some(tree) = &fixed.tree else { return false };
    if !fixed.statements.iter().any(|lines| lines.contains(&line)) {
        return false;
    }
    // Whatever the error covers must parse once the lines are indented.
    let start = fixed.shift(error.start_byte());
    let end = fixed.shift(error.end_byte()).max(start + 1);
    !has_error_in(tree.root_node(), start..end)
}

/// The statements with dedented continuation lines (as line ranges), and the tree of the text
/// with all those lines indented to their statement's level.
#[derive(Default)]
struct Dedented {
    statements: Vec<std::ops::Range<usize>>,
    /// Where spaces were inserted (offsets in the original text) and how many.
    inserts: Vec<(usize, usize)>,
    tree: Option<Tree>,
}

impl Dedented {
    fn new(text: &str, scan: &Scan) -> Dedented {
        // Bracket depth at the start of each line, from the brackets the lexer saw.
        let mut depths = Vec::with_capacity(scan.lines.len());
        let mut depth = 0i64;
        let mut next = 0;
        for layout in &scan.lines {
            while next < scan.delims.len() && scan.delims[next].offset < layout.start {
                depth += if scan.delims[next].is_open() { 1 } else { -1 };
                next += 1;
            }
            depths.push(depth);
        }
        // Statements as (first line, end line, dedented lines).
        let mut statements: Vec<(usize, usize, Vec<usize>)> = Vec::new();
        let mut first = 0;
        for l in 1..scan.lines.len() {
            if depths[l] <= depths[first] {
                first = l;
                continue;
            }
            let layout = &scan.lines[l];
            if layout.is_blank() || layout.indent >= scan.lines[first].indent {
                continue;
            }
            match statements.last_mut() {
                Some((f, _, lines)) if *f == first => lines.push(l),
                _ => statements.push((first, first, vec![l])),
            }
        }
        // Each statement must close its brackets before the end of the text.
        statements.retain_mut(|(first, end, _)| {
            *end = (*first + 1..scan.lines.len()).find(|&l| depths[l] <= depths[*first]).unwrap_or(0);
            *end > *first
        });
        if statements.is_empty() {
            return Dedented::default();
        }
        let mut fixed = String::with_capacity(text.len() + 64);
        let mut from = 0;
        let mut inserts = Vec::new();
        for (first, _, lines) in &statements {
            let indent = scan.lines[*first].indent;
            for &l in lines {
                let at = scan.lines[l].start;
                let added = (indent - scan.lines[l].indent) as usize;
                fixed.push_str(&text[from..at]);
                fixed.extend(std::iter::repeat_n(' ', added));
                inserts.push((at, added));
                from = at;
            }
        }
        fixed.push_str(&text[from..]);
        let tree = parse::parse(Language::Python, &fixed, None);
        let tree = (!parse::gave_up(&tree, &fixed)).then_some(tree);
        Dedented { statements: statements.into_iter().map(|(f, e, _)| f..e).collect(), inserts, tree }
    }

    /// The offset in the indented text of `offset` in the original.
    fn shift(&self, offset: usize) -> usize {
        offset + self.inserts.iter().take_while(|(at, _)| *at <= offset).map(|(_, n)| n).sum::<usize>()
    }
}

/// Whether an ERROR or MISSING node under `node` overlaps `range`.
pub(crate) fn has_error_in(node: Node<'_>, range: std::ops::Range<usize>) -> bool {
    if node.end_byte() <= range.start || node.start_byte() >= range.end || !node.has_error() {
        return false;
    }
    if node.is_error() || node.is_missing() {
        return true;
    }
    let mut cursor = node.walk();
    node.children(&mut cursor).any(|c| has_error_in(c, range.clone()))
}

/// JSON: `0.5e+1`. The grammar's number has no `+` exponent, so it splits the number into
/// `0.5`, an ERROR `e+` and `1` (and in an array, the ERROR takes in the neighbours). The error
/// is a gap when it holds such an `e+` and its object or array parses cleanly with each `+`
/// exponent sign written as a `0` digit, which keeps the value a valid number.
fn plus_exponent(text: &str, error: Node<'_>, checked: &mut Checked) -> bool {
    let t = text.get(error.start_byte()..error.end_byte()).unwrap_or("");
    if !t.contains("e+") && !t.contains("E+") {
        return false;
    }
    let mut container = error;
    while let Some(p) = container.parent() {
        container = p;
        if matches!(p.kind(), "object" | "array") {
            break;
        }
    }
    checked.get_or(container, || {
        let mut bytes = text.as_bytes()[container.start_byte()..container.end_byte()].to_vec();
        for i in 1..bytes.len().saturating_sub(2) {
            if matches!(bytes[i], b'e' | b'E')
                && bytes[i + 1] == b'+'
                && bytes[i - 1].is_ascii_digit()
                && bytes[i + 2].is_ascii_digit()
            {
                bytes[i + 1] = b'0';
            }
        }
        parses_cleanly(Language::Json, &String::from_utf8_lossy(&bytes))
    })
}
