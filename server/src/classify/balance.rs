//! Finds the one delimiter edit that best explains unbalanced brackets.
//!
//! A missing or extra bracket shifts every pairing after it, so the place where a stack-based
//! matcher first notices the imbalance (often the end of the file) is rarely where the mistake
//! is. Instead this module proposes candidate edits (insert the missing closer where the
//! indentation says the block ends, remove a stray closer, insert a missing opener at the end
//! of the line that starts the block), replays the brackets with each edit, and keeps the
//! earliest edit that balances the file with the fewest indentation anomalies.

use super::lexer::{Delim, Scan};

/// The explanation chosen for unbalanced brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fix {
    /// `open` is never closed; the closer belongs at `at` (a byte offset).
    Close { open: Delim, at: usize },
    /// `close` has no opener.
    Remove { close: Delim },
    /// `close` lacks its opener, which belongs at `at`.
    Open { close: Delim, at: usize },
    /// A closer of the wrong kind where `open` expected its own.
    Mismatch { open: Delim, close: Delim },
    /// An opener left open at the end of the text.
    Unclosed { open: Delim },
}

pub(crate) fn closer(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    }
}

pub(crate) fn opener(close: u8) -> u8 {
    match close {
        b')' => b'(',
        b']' => b'[',
        _ => b'{',
    }
}

#[derive(Clone, Copy)]
enum Edit {
    /// Drop delimiter `index`.
    Remove(usize),
    /// Insert `ch` before delimiter `index` (or at the end when `index == len`).
    Insert(usize, u8),
}

#[derive(Clone, Copy)]
struct Candidate {
    edit: Edit,
    report: usize,
    kind: Kind,
    /// Goes against the layout: closes a block at the end of the text though its indentation
    /// says where it ends, or closes a bracket before the block that ends its line though the
    /// block is the bracket's last argument (`map(|x| {`, `=> {{`). Taken only when no
    /// candidate that the layout supports explains the brackets as well.
    against_layout: bool,
}

#[derive(Clone, Copy)]
enum Kind {
    Close(usize),
    Remove(usize),
    Open(usize),
}

const MAX_CANDIDATES: usize = 48;

struct Ctx<'a> {
    scan: &'a Scan,
    text: &'a str,
    delims: &'a [Delim],
}

impl Ctx<'_> {
    fn indent(&self, d: Delim) -> u32 {
        self.scan.lines[d.line as usize].indent
    }
    fn is_first(&self, d: Delim) -> bool {
        self.scan.lines[d.line as usize].first == Some(d.offset)
    }
    fn is_last(&self, d: Delim) -> bool {
        self.scan.lines[d.line as usize].last == Some(d.offset)
    }

    /// Does this pair break the indentation a formatter would give it? A block opened at the
    /// end of a line closes at the start of a line as deep, or (a `(` or `[`) within a line; a
    /// bracket opened within a line never closes at the start of a shallower line. A line that
    /// a deleted closer left one column deeper (see [`Ctx::remnant`]) counts at the depth the
    /// closer had.
    fn anomalous(&self, o: Delim, c: Delim) -> bool {
        if o.line == c.line {
            return false;
        }
        if !self.is_last(o) {
            return self.is_first(c) && self.indent(c) < self.indent(o);
        }
        if self.is_first(c) {
            self.indent(c) != self.indent(o) - u32::from(self.remnant(o.line))
        } else {
            o.ch == b'{'
        }
    }

    /// Is `line` what is left of a line that started with a closer once the closer is deleted
    /// (`    } else {` as `     else {`)? Its code starts after a space at an odd column, and
    /// the code line before it is deeper: formatters indent by an even number of columns, so
    /// the block the closer ended is one column shallower.
    fn remnant(&self, line: u32) -> bool {
        let l = &self.scan.lines[line as usize];
        let Some(first) = l.first else { return false };
        l.indent % 2 == 1
            && first > 0
            && self.text.as_bytes()[first - 1] == b' '
            && self.scan.lines[..line as usize]
                .iter()
                .rev()
                .find(|p| !p.is_blank())
                .is_some_and(|p| p.indent > l.indent)
    }

    /// Index of the closer that pairs with the opener at `index`, by depth alone, if it comes
    /// no later than `until`.
    fn partner(&self, index: usize, until: usize) -> Option<usize> {
        let mut depth = 0u32;
        for (k, d) in self
            .delims
            .iter()
            .enumerate()
            .take(until.min(self.delims.len().saturating_sub(1)) + 1)
            .skip(index)
        {
            if d.is_open() {
                depth += 1;
            } else {
                depth -= 1;
                if depth == 0 {
                    return (closer(self.delims[index].ch) == d.ch).then_some(k);
                }
            }
        }
        None
    }

    /// Does the block opened by `block` at the end of the line belong inside the bracket `o`
    /// opened earlier on that line? It does when only a closure's or function's header stands
    /// between them (`map(|x| {`, `spawn(move || {`, `it("a", () => {`, `f(function () {`) or
    /// nothing does (`=> {{`, `[{`): closing `o` before the block leaves a bracket with a
    /// dangling header, or an empty one.
    fn wraps(&self, o: Delim, block: Delim) -> bool {
        let between = self.text[o.offset + 1..block.offset].trim_end();
        let word = |w: &str| {
            between
                .strip_suffix(w)
                .is_some_and(|rest| !rest.ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        };
        between.trim_start().is_empty()
            || between.ends_with('|')
            || between.strip_suffix("=>").is_some_and(complete_arrow_parameters)
            || word("move")
            || word("async")
            || (between.ends_with(')')
                && (between.contains("function") || between.contains("func(") || between.contains("func (")))
    }

    /// Index of the first delimiter at or after `offset`.
    fn index_at(&self, offset: usize) -> usize {
        self.delims.partition_point(|d| d.offset < offset)
    }

    /// Where the block opened by `o` ends by indentation: the first token of the first later
    /// line indented no deeper than the opener's line, or a line left with only the indentation
    /// of a deleted closer, or with the blank that followed it (`    ) -> T {` without its `)`
    /// starts one column deeper than the opener's line, after deeper lines).
    fn block_end(&self, o: Delim) -> Option<usize> {
        let indent = self.indent(o);
        let lines = &self.scan.lines[o.line as usize + 1..];
        let mut deeper = false;
        for (k, l) in lines.iter().enumerate() {
            if !l.is_blank() && l.indent <= indent {
                return l.first;
            }
            if deeper
                && l.indent == indent + 1
                && l.first.is_some_and(|f| self.text.as_bytes()[f - 1] == b' ')
            {
                return l.first;
            }
            deeper |= !l.is_blank() && l.indent > indent + 1;
            // Only blanks, as deep as the opener's line: where its closer was.
            let end = lines.get(k + 1).map_or(self.text.len(), |n| n.start);
            let blanks = &self.text.as_bytes()[l.start..end];
            if l.is_blank()
                && indent > 0
                && l.indent == indent
                && blanks.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
                && blanks.first().is_some_and(|c| matches!(c, b' ' | b'\t'))
            {
                return Some(l.start + blanks.iter().take_while(|c| matches!(c, b' ' | b'\t')).count());
            }
        }
        None
    }

    /// The last token of the line that starts the block closed by `c`: the nearest earlier line
    /// indented no deeper than `c`'s.
    fn block_start(&self, c: Delim) -> Option<usize> {
        let indent = self.indent(c);
        self.scan.lines[..c.line as usize]
            .iter()
            .rev()
            .find(|l| !l.is_blank() && l.indent <= indent)
            .and_then(|l| l.last)
    }

    /// Replays the delimiters with `edit`: (unbalanced events, anomalous pairs).
    fn replay(&self, edit: Option<Edit>, stack: &mut Vec<(u8, Option<Delim>)>) -> (u32, u32) {
        stack.clear();
        let mut errors = 0;
        let mut anomalies = 0;
        let n = self.delims.len();
        for i in 0..=n {
            let mut step = |ch: u8, d: Option<Delim>| {
                if matches!(ch, b'(' | b'[' | b'{') {
                    stack.push((ch, d));
                    return;
                }
                match stack.last() {
                    Some(&(o, od)) if closer(o) == ch => {
                        stack.pop();
                        if let (Some(od), Some(d)) = (od, d) {
                            anomalies += self.anomalous(od, d) as u32;
                        }
                    }
                    Some(_) => {
                        errors += 1;
                        // Resynchronise: pop to a matching opener if one is near, else skip.
                        let len = stack.len();
                        if let Some(k) =
                            (len.saturating_sub(6)..len).rev().find(|&k| closer(stack[k].0) == ch)
                        {
                            stack.truncate(k);
                        }
                    }
                    None => errors += 1,
                }
            };
            if let Some(Edit::Insert(at, ch)) = edit
                && at == i
            {
                step(ch, None);
            }
            if i == n {
                break;
            }
            if let Some(Edit::Remove(r)) = edit
                && r == i
            {
                continue;
            }
            step(self.delims[i].ch, Some(self.delims[i]));
        }
        errors += stack.len() as u32;
        (errors, anomalies)
    }
}

/// Whether `before`, the text before an arrow's `=>`, ends with the arrow's whole parameter list:
/// `(…)`, or one name after a `,` (`it("a", () =>`, `f(a, x =>`). Not a name right after the
/// bracket or after a type (`(x =>`, `(value: T =>`): that bracket may be the parameters' own.
fn complete_arrow_parameters(before: &str) -> bool {
    let before = before.trim_end();
    if before.ends_with(')') {
        return true;
    }
    let name = before.trim_end_matches(|c: char| c.is_alphanumeric() || c == '_' || c == '$');
    name.len() < before.len() && name.trim_end().ends_with(',')
}

/// Explains unbalanced brackets, or returns `None` when they balance.
pub(crate) fn explain(scan: &Scan, text: &str) -> Option<Fix> {
    let delims = &scan.delims[..];
    let cx = Ctx { scan, text, delims };
    let mut stack = Vec::new();
    if cx.replay(None, &mut stack).0 == 0 {
        return None;
    }

    // Candidates from a lenient pass that records every surprise.
    let mut cands: Vec<Candidate> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut first_event: Option<Fix> = None;
    let close_candidates = |o: usize, until: usize, cands: &mut Vec<Candidate>| {
        let od = delims[o];
        if cx.is_last(od) {
            if let Some(at) = cx.block_end(od) {
                let idx = cx.index_at(at).min(until.max(o + 1));
                cands.push(Candidate {
                    edit: Edit::Insert(idx, closer(od.ch)),
                    report: at,
                    kind: Kind::Close(o),
                    against_layout: false,
                });
            }
        } else {
            // The block that ends the opener's line, if it may be the bracket's last argument:
            // then closing the bracket anywhere on its line goes against the layout.
            let last = (o + 1..delims.len()).take_while(|&j| delims[j].line == od.line).last();
            let block = last.filter(|&b| delims[b].is_open() && cx.is_last(delims[b]));
            let wraps = block.is_some_and(|b| cx.wraps(od, delims[b]));
            // Before each later delimiter on the opener's line, then after the line.
            let mut j = o + 1;
            while j < delims.len() && delims[j].line == od.line && j <= until {
                cands.push(Candidate {
                    edit: Edit::Insert(j, closer(od.ch)),
                    report: delims[j].offset,
                    kind: Kind::Close(o),
                    against_layout: wraps,
                });
                j += 1;
            }
            // Right after that block's closer: `})` written as `}`, `}};` as `};`.
            if let Some(b) = block
                && let Some(c) = cx.partner(b, until)
                && c < until
            {
                cands.push(Candidate {
                    edit: Edit::Insert(c + 1, closer(od.ch)),
                    report: delims[c].offset + 1,
                    kind: Kind::Close(o),
                    against_layout: false,
                });
            }
            if j <= until {
                let report = scan.lines[od.line as usize].last.unwrap_or(od.offset);
                cands.push(Candidate {
                    edit: Edit::Insert(j, closer(od.ch)),
                    report,
                    kind: Kind::Close(o),
                    against_layout: wraps,
                });
            }
        }
    };
    let open_candidates = |c: usize, cands: &mut Vec<Candidate>| {
        let cd = delims[c];
        cands.push(Candidate {
            edit: Edit::Remove(c),
            report: cd.offset,
            kind: Kind::Remove(c),
            against_layout: false,
        });
        if cx.is_first(cd) {
            // Only where the block's first line does not already end with an opener.
            if let Some(at) =
                cx.block_start(cd).filter(|&at| !matches!(text.as_bytes().get(at), Some(b'(' | b'[' | b'{')))
            {
                let idx = delims.partition_point(|d| d.offset <= at);
                if idx <= c {
                    cands.push(Candidate {
                        edit: Edit::Insert(idx, opener(cd.ch)),
                        report: at,
                        kind: Kind::Open(c),
                        against_layout: false,
                    });
                }
            }
        }
    };
    for (i, d) in delims.iter().enumerate() {
        if cands.len() >= MAX_CANDIDATES {
            break;
        }
        if d.is_open() {
            // A block opened on a line a deleted closer left one column deeper (`     else {`
            // after the block of `if x {`): the block still open is the one that closer ended,
            // and its closer belongs at the start of this line.
            if cx.is_last(*d)
                && cx.remnant(d.line)
                && let Some(&o) = open.last()
                && cx.is_last(delims[o])
                && cx.indent(delims[o]) + 1 == cx.indent(*d)
            {
                close_candidates(o, delims.len(), &mut cands);
            }
            open.push(i);
            continue;
        }
        match open.last() {
            Some(&o) if closer(delims[o].ch) == d.ch => {
                open.pop();
                let od = delims[o];
                if cx.anomalous(od, *d) {
                    if cx.is_first(*d) && cx.indent(*d) < cx.indent(od) {
                        close_candidates(o, i, &mut cands);
                    } else {
                        open_candidates(i, &mut cands);
                    }
                }
            }
            Some(&o) => {
                first_event.get_or_insert(Fix::Mismatch { open: delims[o], close: *d });
                open_candidates(i, &mut cands);
                close_candidates(o, i, &mut cands);
                let len = open.len();
                if let Some(k) =
                    (len.saturating_sub(6)..len).rev().find(|&k| closer(delims[open[k]].ch) == d.ch)
                {
                    for &u in &open[k + 1..] {
                        close_candidates(u, i, &mut cands);
                    }
                    open.truncate(k);
                }
            }
            None => {
                first_event.get_or_insert(Fix::Remove { close: *d });
                open_candidates(i, &mut cands);
            }
        }
    }
    for &o in open.iter().rev().take(8) {
        first_event.get_or_insert(Fix::Unclosed { open: delims[o] });
        close_candidates(o, delims.len(), &mut cands);
        // A block that no later line ends by indentation runs to the end of the text, where its
        // closer is missing (a deleted last `}`); otherwise report the opener.
        let od = delims[o];
        let end = cx.block_end(od);
        let report = match end {
            None if cx.is_last(od) => scan.lines.iter().rev().find_map(|l| l.last).unwrap_or(od.offset),
            _ => od.offset,
        };
        // A top-level block whose `}` was deleted balances as well closed at the end of the
        // text as where the next item starts (every item after it balances on its own), and
        // the opener comes first; rustc points where the indentation returns instead.
        cands.push(Candidate {
            edit: Edit::Insert(delims.len(), closer(od.ch)),
            report,
            kind: Kind::Close(o),
            against_layout: end.is_some() && cx.is_last(od),
        });
    }
    // The same edit is often proposed twice (by an anomaly and by the stack); try it once.
    let mut seen = std::collections::HashSet::new();
    cands.retain(|c| {
        let key = match c.edit {
            Edit::Remove(i) => (0, i, 0),
            Edit::Insert(i, ch) => (1, i, ch),
        };
        seen.insert(key)
    });
    cands.truncate(MAX_CANDIDATES);

    let mut best: Option<((u32, u32, bool, usize), Candidate)> = None;
    for c in cands {
        let (errors, anomalies) = cx.replay(Some(c.edit), &mut stack);
        let key = (errors, anomalies, c.against_layout, c.report);
        if best.as_ref().is_none_or(|(k, _)| key < *k) {
            best = Some((key, c));
        }
    }
    match best {
        Some(((0, ..), c)) => Some(match c.kind {
            Kind::Close(o) => Fix::Close { open: delims[o], at: c.report },
            Kind::Remove(i) => Fix::Remove { close: delims[i] },
            Kind::Open(i) => Fix::Open { close: delims[i], at: c.report },
        }),
        _ => first_event,
    }
}
