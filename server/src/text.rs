//! Text positions in editor terms.
//!
//! The analysis works in byte offsets; editors speak in lines and columns counted in UTF-16 code
//! units (LSP's default) or in UTF-8 bytes. [`LineIndex`] converts between the two for one
//! version of a text. [`Edit`] moves a byte range of a text through a change of it. It knows
//! nothing of LSP itself.

use std::ops::Range;

/// How columns are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionEncoding {
    /// Columns in UTF-8 bytes.
    Utf8,
    /// Columns in UTF-16 code units (the LSP default).
    #[default]
    Utf16,
}

/// A zero-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

/// A half-open range of positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct TextRange {
    pub start: Position,
    pub end: Position,
}

/// Start offsets of every line in a text, for offset/position conversion.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset at which each line starts; always begins with 0.
    line_starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut line_starts = Vec::with_capacity(text.len() / 32 + 1);
        line_starts.push(0);
        line_starts.extend(memchr_newlines(text.as_bytes()).map(|i| i + 1));
        LineIndex { line_starts, len: text.len() }
    }

    /// Updates the index after `range` (bytes, in the old text) was replaced by `new_text`,
    /// without rescanning the rest of the text.
    pub fn edit(&mut self, range: Range<usize>, new_text: &str) {
        let end = range.end.min(self.len);
        let range = range.start.min(end)..end;
        let removed = range.end - range.start;
        // Lines that started inside the replaced range are gone.
        let first = self.line_starts.partition_point(|&s| s <= range.start);
        let last = self.line_starts.partition_point(|&s| s <= range.end);
        let inserted = memchr_newlines(new_text.as_bytes()).map(|i| range.start + i + 1);
        let shifted: Vec<usize> =
            self.line_starts[last..].iter().map(|&s| s - removed + new_text.len()).collect();
        self.line_starts.truncate(first);
        self.line_starts.extend(inserted);
        self.line_starts.extend(shifted);
        self.len = self.len - removed + new_text.len();
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// Byte range of line `line` including its terminator, or `None` past the end.
    pub fn line_range(&self, line: u32) -> Option<Range<usize>> {
        let start = *self.line_starts.get(line as usize)?;
        let end = self.line_starts.get(line as usize + 1).copied().unwrap_or(self.len);
        Some(start..end)
    }

    /// Converts a byte offset to a position. Offsets inside a multi-byte character or past
    /// the end are clamped to the nearest valid point before them.
    pub fn position(&self, text: &str, offset: usize, encoding: PositionEncoding) -> Position {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let line_text = &text[self.line_starts[line]..offset];
        let character = match encoding {
            PositionEncoding::Utf8 => line_text.len(),
            PositionEncoding::Utf16 => line_text.encode_utf16().count(),
        };
        Position { line: line as u32, character: character as u32 }
    }

    pub fn range(&self, text: &str, range: Range<usize>, encoding: PositionEncoding) -> TextRange {
        TextRange {
            start: self.position(text, range.start, encoding),
            end: self.position(text, range.end, encoding),
        }
    }

    /// Converts a position to a byte offset. A column past the end of its line clamps to the
    /// line's end (before its terminator); a line past the end clamps to the end of the text,
    /// as LSP asks.
    pub fn offset(&self, text: &str, position: Position, encoding: PositionEncoding) -> usize {
        let Some(range) = self.line_range(position.line) else {
            return text.len();
        };
        let line_text = text[range.clone()].trim_end_matches(['\n', '\r']);
        let wanted = position.character as usize;
        let column = match encoding {
            PositionEncoding::Utf8 => floor_char_boundary(line_text, wanted.min(line_text.len())),
            PositionEncoding::Utf16 => {
                let mut units = 0;
                let mut bytes = line_text.len();
                for (i, ch) in line_text.char_indices() {
                    if units >= wanted {
                        bytes = i;
                        break;
                    }
                    units += ch.len_utf16();
                }
                bytes
            }
        };
        range.start + column
    }
}

/// One replacement in a text: the bytes `start..end` became `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub len: usize,
}

impl Edit {
    /// The edit that turns `old` into `new`: what lies between their common prefix and their
    /// common suffix (one edit, exact when the texts differ in one place).
    pub fn between(old: &str, new: &str) -> Edit {
        let (a, b) = (old.as_bytes(), new.as_bytes());
        let prefix = floor_char_boundary(old, a.iter().zip(b).take_while(|(x, y)| x == y).count());
        let most = a.len().min(b.len()) - prefix;
        let mut suffix = a.iter().rev().zip(b.iter().rev()).take(most).take_while(|(x, y)| x == y).count();
        while !old.is_char_boundary(a.len() - suffix) || !new.is_char_boundary(b.len() - suffix) {
            suffix -= 1;
        }
        Edit { start: prefix, end: a.len() - suffix, len: b.len() - prefix - suffix }
    }

    /// Where the bytes `range` of the old text are in the new one; `None` when the edit replaced
    /// all of them. An insertion where the range starts goes before it; text inserted where the
    /// range loses its start or its end is left out of it.
    pub fn map(&self, range: Range<usize>) -> Option<Range<usize>> {
        let (s, e) = (range.start, range.end);
        let moved = |offset: usize| offset + self.len - (self.end - self.start);
        if self.end <= s {
            return Some(moved(s)..moved(e));
        }
        if self.start >= e {
            return Some(range);
        }
        if self.start <= s && self.end >= e {
            return None;
        }
        let start = if self.start <= s { self.start + self.len } else { s };
        let end = if self.end >= e { self.start } else { moved(e) };
        (start < end).then_some(start..end)
    }
}

fn memchr_newlines(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_columns_count_surrogate_pairs() {
        let text = "let s = \"😀é\"; x\nnext";
        let index = LineIndex::new(text);
        let x = text.find('x').unwrap();
        assert_eq!(index.position(text, x, PositionEncoding::Utf16), Position { line: 0, character: 15 });
        assert_eq!(index.position(text, x, PositionEncoding::Utf8), Position { line: 0, character: 18 });
        assert_eq!(index.offset(text, Position { line: 0, character: 15 }, PositionEncoding::Utf16), x);
        assert_eq!(index.offset(text, Position { line: 0, character: 18 }, PositionEncoding::Utf8), x);
    }

    #[test]
    fn edits_update_the_index_like_a_rebuild() {
        let cases: &[(&str, std::ops::Range<usize>, &str)] = &[
            ("a\nb\nc\n", 2..3, "x\ny\nz"),
            ("a\nb\nc\n", 1..4, ""),
            ("a\nb\nc", 5..5, "\n\n"),
            ("", 0..0, "one\ntwo"),
            ("abc\n\ndef", 0..8, "q"),
            ("x\r\ny\n", 1..3, "\n"),
        ];
        for (text, range, new_text) in cases {
            let mut index = LineIndex::new(text);
            index.edit(range.clone(), new_text);
            let mut edited = text.to_string();
            edited.replace_range(range.clone(), new_text);
            let fresh = LineIndex::new(&edited);
            assert_eq!(
                (index.line_starts, index.len),
                (fresh.line_starts, fresh.len),
                "{text:?} {range:?} {new_text:?}"
            );
        }
    }

    #[test]
    fn ranges_move_with_edits_before_them_and_go_when_replaced() {
        let edit = |start, end, len| Edit { start, end, len };
        // Three lines inserted above.
        assert_eq!(edit(0, 0, 15).map(10..12), Some(25..27));
        // After the range: nothing moves.
        assert_eq!(edit(12, 14, 0).map(10..12), Some(10..12));
        // Replaced whole: gone.
        assert_eq!(edit(9, 13, 1).map(10..12), None);
        // Its start deleted: what is left of it.
        assert_eq!(edit(8, 11, 2).map(10..12), Some(10..11));
        // Typed inside: it grows.
        assert_eq!(edit(11, 11, 3).map(10..12), Some(10..15));
        assert_eq!(Edit::between("abc", "aXbc"), edit(1, 1, 1));
        assert_eq!(Edit::between("aé", "aè"), edit(1, 3, 2));
        assert_eq!(Edit::between("same", "same"), edit(4, 4, 0));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// Text the edit did not touch is found again where its range was moved to.
        #[test]
        fn a_moved_range_holds_the_same_text(
            old in "[ab\\né]{0,24}",
            new in "[ab\\né]{0,24}",
            from in 0usize..30,
            to in 0usize..30,
        ) {
            let edit = Edit::between(&old, &new);
            let (s, e) = (floor_char_boundary(&old, from.min(old.len())), floor_char_boundary(&old, to.min(old.len())));
            let range = s.min(e)..s.max(e);
            if let Some(moved) = edit.map(range.clone())
                && (range.end <= edit.start || range.start >= edit.end)
            {
                proptest::prop_assert_eq!(&new[moved], &old[range]);
            }
            proptest::prop_assert_eq!(
                format!("{}{}{}", &old[..edit.start], &new[edit.start..edit.start + edit.len], &old[edit.end..]),
                new.clone()
            );
        }
    }

    #[test]
    fn positions_past_the_end_clamp() {
        let text = "ab\r\ncd";
        let index = LineIndex::new(text);
        assert_eq!(index.offset(text, Position { line: 0, character: 99 }, PositionEncoding::Utf16), 2);
        assert_eq!(index.offset(text, Position { line: 7, character: 0 }, PositionEncoding::Utf16), 6);
        assert_eq!(index.position(text, 99, PositionEncoding::Utf16), Position { line: 1, character: 2 });
    }

    #[test]
    fn offsets_inside_a_character_clamp_back() {
        let text = "é";
        let index = LineIndex::new(text);
        assert_eq!(index.position(text, 1, PositionEncoding::Utf8), Position { line: 0, character: 0 });
    }
}
