//! Which diagnostic to explain when the editor names only a position: of those at the position
//! (else on its line), the most severe, then the narrowest, then the first. Pure: it sees
//! ranges and severities, not where the diagnostics came from.

use crate::classify::Severity;
use crate::text::{Position, TextRange};

/// The index in `candidates` of the diagnostic to explain at `at`, or `None` when none is at
/// the position or on its line.
pub fn diagnostic_at(candidates: &[(TextRange, Severity)], at: Position) -> Option<usize> {
    let contains = |r: &TextRange| r.start <= at && at <= r.end;
    let on_line = |r: &TextRange| r.start.line <= at.line && at.line <= r.end.line;
    let here: Vec<usize> = (0..candidates.len()).filter(|&i| contains(&candidates[i].0)).collect();
    let found = if here.is_empty() {
        (0..candidates.len()).filter(|&i| on_line(&candidates[i].0)).collect()
    } else {
        here
    };
    let width = |r: &TextRange| {
        (
            r.end.line - r.start.line,
            if r.end.line == r.start.line { r.end.character - r.start.character } else { 0 },
        )
    };
    found.into_iter().min_by_key(|&i| {
        let (range, severity) = &candidates[i];
        (*severity, width(range), range.start)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    fn range(start: (u32, u32), end: (u32, u32)) -> TextRange {
        TextRange { start: at(start.0, start.1), end: at(end.0, end.1) }
    }

    #[test]
    fn the_most_severe_then_the_narrowest_at_the_position() {
        let candidates = [
            (range((1, 0), (1, 30)), Severity::Warning),
            (range((1, 4), (1, 20)), Severity::Error),
            (range((1, 5), (1, 9)), Severity::Error),
            (range((0, 0), (3, 0)), Severity::Error),
        ];
        assert_eq!(diagnostic_at(&candidates, at(1, 6)), Some(2));
        // Past the narrow one: the wider error.
        assert_eq!(diagnostic_at(&candidates, at(1, 15)), Some(1));
    }

    #[test]
    fn on_the_line_when_none_is_at_the_position_and_none_elsewhere() {
        let candidates =
            [(range((2, 10), (2, 12)), Severity::Hint), (range((2, 20), (2, 22)), Severity::Warning)];
        assert_eq!(diagnostic_at(&candidates, at(2, 0)), Some(1));
        assert_eq!(diagnostic_at(&candidates, at(3, 0)), None);
        assert_eq!(diagnostic_at(&[], at(0, 0)), None);
    }
}
