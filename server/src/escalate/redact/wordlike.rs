//! Whether a run of letters reads as a word or as random letters, by how likely its letter
//! pairs are in words.
//!
//! The table holds, for each letter (and the start of a word), how much more or less often each
//! letter (and the end of a word) follows it in English words and the words of names than among
//! random letters, in quarter bits. It was counted by `scripts/letter-bigrams.py` over the README
//! files of the crates of a Cargo registry (1.9 MB of text). A word's pairs are mostly likely
//! ones (`control`, `buffer`, `https`, `strncpy`); random letters hold pairs that words rarely
//! have (`gmzhk`, `qxvbt`). It does not know words: a random run that happens to read like one
//! (`tarin`) passes for a word.

/// log2(P(next | letter) · 27) in quarter bits; row and column 0 are the start and the end of a
/// word, then `a` to `z`.
const PAIRS: [[i8; 27]; 27] = [
    [-40, 4, 1, 5, 2, -1, 1, -4, 1, 4, -12, -15, 1, 1, -3, 1, 0, -16, 2, 5, 6, -2, -6, 0, -22, -7, -14],
    [
        -2, -22, -1, 3, 1, -22, -11, -3, -19, -1, -27, -8, 6, 0, 7, -25, 1, -27, 6, 5, 10, -7, -7, -12, -14,
        -4, -14,
    ],
    [
        8, 6, -19, -8, -20, 8, -16, -20, -27, 4, -8, -23, 7, -7, -16, 3, -15, -33, 3, -3, -13, 7, -20, -31,
        -39, 4, -22,
    ],
    [
        4, 4, -20, -8, -18, 7, -14, -23, 6, 1, -25, -1, -2, -17, -32, 10, -13, -32, 7, 1, 5, 0, -25, -27,
        -27, -11, -29,
    ],
    [
        13, 1, -18, -22, -3, 11, -19, -1, -16, 5, -22, -32, -9, -14, -16, 6, -15, -23, -8, 1, -9, -4, -19,
        -24, -25, -9, -37,
    ],
    [
        13, 0, -14, -1, 2, -6, -6, -9, -21, -11, -32, -24, -1, -3, 6, -21, -7, -9, 8, 6, -1, -20, -7, -10,
        -2, -12, -27,
    ],
    [
        10, 2, -18, -8, -9, 5, 0, -10, -33, 7, -33, -28, 2, -11, -4, 10, -33, -35, 2, -8, -6, 1, -31, -26,
        -19, -4, -31,
    ],
    [
        14, -7, -18, -21, -21, 10, -19, -6, 0, 6, -34, -36, -6, -14, -4, 2, -23, -30, -1, -1, -15, -3, -29,
        -23, -27, -18, -24,
    ],
    [
        6, 7, -18, -23, -23, 12, -17, -37, -33, 6, -30, -39, -18, -9, -18, 2, -27, -34, -5, -14, 9, 2, -34,
        -23, -40, -12, -35,
    ],
    [
        -2, -4, -2, 5, -2, 0, -3, -4, -32, -18, -20, -10, 1, 3, 10, 7, -7, -24, -4, 5, 8, -26, -4, -30, -8,
        -39, -6,
    ],
    [
        4, 5, -14, -3, -20, 11, -23, -11, -11, 6, -27, -7, -17, -19, -5, 3, -8, -19, -27, 11, -19, 4, -11,
        -10, -10, -19, -16,
    ],
    [
        12, -2, -12, -13, -6, 11, 3, -6, -21, 8, -20, -25, -10, -22, -2, -6, -16, -12, -17, 3, -6, -2, -17,
        -16, -24, -14, -29,
    ],
    [
        8, 4, -21, -14, 3, 9, -12, -18, -29, 9, -18, -17, 5, -21, -10, 5, -13, -34, -17, -1, -2, -2, -16,
        -18, -40, 2, -30,
    ],
    [
        9, 9, -6, -13, -6, 8, -24, 0, -26, 6, -18, -30, 1, -6, -19, 1, 6, -32, -29, -1, -11, -1, -16, -24,
        -28, -7, -20,
    ],
    [
        11, 1, -27, 2, 6, 3, -8, 6, -26, -1, -17, -8, -7, -16, -9, 1, -11, -40, -28, 6, 7, -4, -8, -13, -29,
        -5, -24,
    ],
    [
        8, -12, -8, 2, -1, -13, 0, -5, -24, -9, -11, -6, -2, 5, 9, -5, -2, -40, 9, -2, -1, 3, -4, 0, -16,
        -23, -28,
    ],
    [
        5, 6, -23, -14, -13, 7, -19, -16, -6, 0, -32, -13, 6, -14, -16, 5, 2, -34, 6, 9, 1, -1, -17, -40,
        -31, -7, -38,
    ],
    [
        10, -26, -22, -26, -16, -17, -26, -14, -26, -20, -26, -20, 9, -26, -11, -10, -20, -26, -14, -13, -16,
        16, -20, -7, -15, -20, -15,
    ],
    [
        9, 7, -20, -5, -3, 8, -10, -2, -25, 4, -39, -5, -9, -3, -7, 5, -18, -34, -4, 4, 0, 3, -9, -13, -33,
        -2, -40,
    ],
    [
        14, -6, -15, -5, -20, 8, -22, -32, 0, 2, -31, -16, -9, -12, -17, -2, -6, -11, -10, -1, 8, -1, -6,
        -21, -31, -6, -35,
    ],
    [
        10, 2, -27, -9, -9, 7, -10, -18, 8, 5, -36, -29, -6, -9, -28, 4, 2, -34, 2, -3, 3, -3, -25, -14, -28,
        -4, -23,
    ],
    [
        2, -3, 4, -1, -9, 1, -9, -7, -21, 1, -39, -36, 2, 3, 6, -14, 1, -40, 6, 10, 6, -17, -30, -29, -10,
        -33, -16,
    ],
    [
        3, 7, -21, -13, -27, 15, -20, 6, -32, 7, -22, -25, -29, -16, -27, -4, -28, -36, -32, -15, -16, -20,
        -32, -28, -12, -19, -21,
    ],
    [
        8, 5, -28, -23, -25, 6, -24, -15, 6, 11, -37, -24, -16, -28, 1, 6, -29, -28, 2, 2, -14, -26, -22, 0,
        -20, -21, -21,
    ],
    [
        14, 8, -19, -4, -7, 2, -18, -31, -11, 2, -20, -31, -21, -7, -19, -13, 8, -27, -22, -19, 7, -13, -18,
        -20, -22, -13, -31,
    ],
    [
        16, -10, -12, -16, -19, -6, -20, -18, -15, -10, -38, -26, -4, -5, 1, 7, 5, -34, -14, 1, -1, -25, -13,
        -12, -24, -19, -17,
    ],
    [
        7, 4, -10, -12, -11, 15, -16, -8, -16, 1, -21, -11, -5, -6, -13, 2, -19, -27, -21, -13, -21, 0, -23,
        -17, -13, 4, 0,
    ],
];

/// Mean score per pair, in quarter bits, at or above which a run of four letters or more reads
/// as a word: 98.6% of the words of five letters or more in real Rust sources score this or
/// more, and 11.6% of random runs of five to eight letters do.
const WORD_SCORE: i32 = -2;

/// The same for a run of three letters, whose few pairs say less: 13.6% of random runs of three
/// letters score this or more, so the abbreviations of code that score less are listed.
const SHORT_WORD_SCORE: i32 = 2;

/// Abbreviations of three or four letters that names are made of and that score as random
/// letters do (`ctx`, `cfg`, `xml`): words in a name.
const ABBREVIATIONS: &[&str] = &[
    "key", "url", "uri", "api", "xml", "src", "cfg", "ctx", "msg", "btn", "nav", "idx", "obj", "fmt", "pkg",
    "cmd", "env", "tcp", "udp", "ssl", "rsa", "aes", "utf", "num", "div", "dyn", "dns", "jwt", "sdk", "cli",
    "rpc", "ssh", "ftp", "gcm", "cbc", "ecb", "hex", "png", "jpg", "gif", "svg", "pdf", "csv", "tsv", "yml",
    "toml", "json", "html", "http", "sync", "async", "lhs", "rhs", "xyz", "rgb", "rgba", "hsl", "lib", "ffi",
    "abi", "gpu", "cpu", "ram", "ipc", "vfs", "pty", "tty", "ascii", "uuid", "guid", "mmap", "llvm", "wasm",
];

/// Mean score per pair at or below which a run of four letters or more reads as no word at all
/// (`jfqc`, `zkwpf`): two bits less likely than random letters.
const GIBBERISH_SCORE: i32 = -8;

/// Whether `letters` (ASCII letters, any case) reads as a word: a listed abbreviation, or the
/// mean score of its letter pairs, the start and the end of the word included, is at least
/// [`WORD_SCORE`] ([`SHORT_WORD_SCORE`] for three letters).
pub(super) fn is_wordlike(letters: &str) -> bool {
    if ABBREVIATIONS.iter().any(|a| a.eq_ignore_ascii_case(letters)) {
        return true;
    }
    let threshold = if letters.len() <= 3 { SHORT_WORD_SCORE } else { WORD_SCORE };
    score(letters).is_some_and(|(total, pairs)| total >= threshold * pairs)
}

/// Whether a run of four letters or more reads as no word at all: its mean score is at most
/// [`GIBBERISH_SCORE`].
pub(super) fn is_gibberish(letters: &str) -> bool {
    letters.len() >= 4
        && !ABBREVIATIONS.iter().any(|a| a.eq_ignore_ascii_case(letters))
        && score(letters).is_some_and(|(total, pairs)| total <= GIBBERISH_SCORE * pairs)
}

/// The summed score of the letter pairs of `letters` and their number, the start and the end
/// included; `None` for something other than two letters or more.
fn score(letters: &str) -> Option<(i32, i32)> {
    let mut previous = 0;
    let mut total = 0i32;
    let mut pairs = 0i32;
    for b in letters.bytes() {
        if !b.is_ascii_alphabetic() {
            return None;
        }
        let at = usize::from(b.to_ascii_lowercase() - b'a') + 1;
        total += i32::from(PAIRS[previous][at]);
        pairs += 1;
        previous = at;
    }
    total += i32::from(PAIRS[previous][0]);
    pairs += 1;
    (pairs > 2).then_some((total, pairs))
}

#[cfg(test)]
mod tests {
    use super::is_wordlike;

    #[test]
    fn words_and_names_read_as_words_and_random_letters_do_not() {
        for word in ["control", "buffer", "Handler", "https", "password", "strncpy", "Request", "iterator"] {
            assert!(is_wordlike(word), "{word}");
        }
        for word in ["get", "ctx", "Cfg", "max", "str"] {
            assert!(is_wordlike(word), "{word}");
        }
        for random in ["gmzhk", "Lnhrq", "qxvbt", "zkwpf", "HJKRT", "tfg", "ddz", "ppj"] {
            assert!(!is_wordlike(random), "{random}");
        }
    }
}
