use std::path::{Path, PathBuf};

use expect_test::{expect, expect_file};

use super::*;
use crate::text::{LineIndex, PositionEncoding};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/classify")
}

/// One line per diagnostic: `line:col-line:col message [symbol]`, 1-based, UTF-16 columns.
fn render(text: &str, diagnostics: &[Diagnostic]) -> String {
    let index = LineIndex::new(text);
    let mut out = String::new();
    for d in diagnostics {
        let s = index.position(text, d.range.start, PositionEncoding::Utf16);
        let e = index.position(text, d.range.end, PositionEncoding::Utf16);
        out.push_str(&format!(
            "{}:{}-{}:{} {} [{}]\n",
            s.line + 1,
            s.character + 1,
            e.line + 1,
            e.character + 1,
            d.message,
            d.symbol.as_deref().unwrap_or("")
        ));
        assert_eq!(d.category, Category::Syntax);
        assert_eq!(d.severity, Severity::Error);
        assert_eq!(d.source, "acas");
        assert_eq!(d.fingerprint.len(), 16);
    }
    out
}

/// Checks the diagnostics of a fixture file against `expected` (a snapshot).
fn check_fixture(fixture: &Path, expected: expect_test::ExpectFile) {
    let language = Language::from_path(fixture).expect("fixture has a known extension");
    let text = std::fs::read_to_string(fixture).expect("fixture is readable");
    expected.assert_eq(&render(&text, &super::check(language, &text)));
}

/// Every file under `fixtures/classify/<lang>/` has its snapshot beside it in `<file>.expect`.
#[test]
fn fixture_snapshots() {
    let mut count = 0;
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures()).unwrap().flatten().collect();
    dirs.sort_by_key(|e| e.path());
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files {
            if file.extension().is_some_and(|e| e == "expect") {
                continue;
            }
            let snapshot = PathBuf::from(format!("{}.expect", file.display()));
            check_fixture(&file, expect_file![snapshot]);
            count += 1;
        }
    }
    assert!(count >= 7 * 8, "expected 8 fixtures per language, found {count}");
}

/// Valid fixtures (`valid*`, one per grammar gap besides the general one) and empty ones must
/// have no diagnostics at all.
#[test]
fn valid_and_empty_fixtures_are_clean() {
    let mut count = 0;
    for lang in ["rust", "python", "javascript", "typescript", "tsx", "go", "json"] {
        let dir = fixtures().join(lang);
        for file in std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()) {
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if !(stem.starts_with("valid") || stem == "empty")
                || file.extension().is_some_and(|e| e == "expect")
            {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let language = Language::from_path(&file).unwrap();
            assert_eq!(render(&text, &super::check(language, &text)), "", "{}", file.display());
            count += 1;
        }
    }
    assert!(count >= 7 * 2, "expected a valid and an empty fixture per language, found {count}");
}

#[test]
fn fingerprint_survives_edits_elsewhere() {
    let text = "fn helper() -> u32 {\n    1\n}\n\nfn broken() {\n    let x = foo(1, 2;\n}\n";
    let mut doc = Document::new(Language::Rust, text.to_string());
    let before = doc.diagnostics().to_vec();
    assert_eq!(before.len(), 1);
    // Add lines above and change an unrelated function.
    doc.edit(0..0, "// a comment\nuse std::fmt;\n\n");
    doc.reparse();
    let pos = doc.text().find("1\n}").unwrap();
    doc.edit(pos..pos + 1, "12345");
    doc.reparse();
    let after = doc.diagnostics().to_vec();
    assert_eq!(after.len(), 1);
    assert_ne!(before[0].range, after[0].range);
    assert_eq!(before[0].fingerprint, after[0].fingerprint);
    assert_eq!(after[0].symbol.as_deref(), Some("broken"));
}

#[test]
fn fingerprint_normalises_positions_and_names() {
    expect![["missing `)` to close `(` at # in `_`"]]
        .assert_eq(&fingerprint::normalise("missing `)` to close `(` at 12:8 in `foo`"));
    assert_eq!(
        fingerprint("unexpected `}` at 3:4", Category::Syntax, Some("a::b")),
        fingerprint("unexpected `}` at 30:41", Category::Syntax, Some("a::b"))
    );
    assert_ne!(
        fingerprint("unexpected `}`", Category::Syntax, Some("a::b")),
        fingerprint("unexpected `}`", Category::Syntax, Some("a::c"))
    );
}

/// After each edit, incremental reparse agrees with a fresh parse of the same text.
fn assert_incremental(language: Language, text: &str, edits: &[(Range<usize>, &str)]) {
    let mut doc = Document::new(language, text.to_string());
    for (range, new_text) in edits {
        doc.edit(range.clone(), new_text);
        doc.reparse();
        let fresh = super::check(language, doc.text());
        assert_eq!(
            doc.diagnostics(),
            &fresh[..],
            "after editing {range:?} to {new_text:?}: {:?}",
            doc.text()
        );
        assert_eq!(
            doc.tree().root_node().to_sexp(),
            super::parse::parse(language, doc.text(), None).root_node().to_sexp()
        );
    }
}

#[test]
fn incremental_reparse_matches_fresh_parse() {
    let text = "fn a() {\n    let x = (1 + 2);\n}\n\nfn b() -> u32 {\n    3\n}\n";
    assert_incremental(
        Language::Rust,
        text,
        &[
            (22..23, ""),      // delete `)`: broken
            (5..5, "y: u8"),   // unrelated edit while broken
            (27..27, ")"),     // put the `)` back: valid again
            (0..0, "héllo"),   // garbage at the top
            (0..6, ""),        // and remove it (and a bit more) again
            (1000..2000, "}"), // out of range: clamped to the end
            #[allow(clippy::reversed_empty_ranges)]
            (3..2, ""), // reversed range: empty
        ],
    );
    let mut doc = Document::new(Language::Python, "def f(:\n    pass\n".to_string());
    assert!(!doc.diagnostics().is_empty());
    doc.edit(6..6, "x)");
    doc.reparse();
    assert_eq!(doc.text(), "def f(x):\n    pass\n");
    assert!(doc.diagnostics().is_empty(), "{:?}", doc.diagnostics());
    doc.replace("def g(\n".to_string());
    assert!(!doc.diagnostics().is_empty());
}

#[test]
fn edit_inside_multibyte_character_is_clamped() {
    let mut doc = Document::new(Language::Json, "{\"é\": 1}".to_string());
    doc.edit(3..4, "x"); // inside `é`
    doc.reparse();
    assert_eq!(doc.text(), "{\"x\": 1}");
    assert!(doc.diagnostics().is_empty());
}

#[test]
fn no_panic_on_garbage() {
    // A fixed xorshift stream of bytes, read as lossy UTF-8.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.push((state >> 24) as u8);
    }
    bytes.extend_from_slice(b"\0\0\"'`/*");
    let garbage = String::from_utf8_lossy(&bytes).into_owned();
    let nested = format!("{}{}", "(".repeat(10_000), "x");
    let nested_closed = format!("f({}1{})", "(".repeat(10_000), ")".repeat(10_000));
    // Kept moderate: tree-sitter-go's error recovery is quadratic on one huge invalid line.
    let long_line = format!("x = [{}]", "1, ".repeat(3_000));
    for language in Language::ALL {
        for text in [&garbage, &nested, &nested_closed, &long_line, &String::new(), &"\0".to_string()] {
            let diagnostics = super::check(language, text);
            let tree = super::parse::parse(language, text, None);
            for offset in [0, text.len() / 2, text.len(), text.len() + 10] {
                let _ = symbol_at(language, &tree, text, offset);
            }
            assert!(diagnostics.len() <= 8);
            let mut doc = Document::new(language, text.clone());
            doc.edit(text.len() / 3..text.len() / 2, "}");
            doc.reparse();
        }
    }
}

#[test]
fn symbol_paths() {
    let cases: &[(Language, &str, &str, &str)] = &[
        (
            Language::Rust,
            "mod parser {\n    impl<T> Parser<T> {\n        fn parse_expr(&self) { HERE }\n    }\n}\n",
            "HERE",
            "parser::Parser::parse_expr",
        ),
        (Language::Rust, "trait Shape { fn area(&self) -> f64 { HERE } }", "HERE", "Shape::area"),
        (Language::Python, "class Box:\n    def size(self):\n        return HERE\n", "HERE", "Box.size"),
        (Language::JavaScript, "class A { m() { return HERE; } }", "HERE", "A.m"),
        (Language::TypeScript, "const handler = async (x: number) => { HERE; };", "HERE", "handler"),
        (Language::Go, "package p\nfunc (s *Store[T]) Load() int { return HERE }\n", "HERE", "Store.Load"),
        (Language::Json, "{\"a\": {\"b\": [HERE]}}", "HERE", "a.b"),
    ];
    for (language, text, marker, expected) in cases {
        let tree = super::parse::parse(*language, text, None);
        let offset = text.find(marker).unwrap();
        assert_eq!(symbol_at(*language, &tree, text, offset).as_deref(), Some(*expected), "{text}");
        assert_eq!(symbol_at(*language, &tree, text, text.len()), None);
    }
}

/// tree-sitter-go's error recovery is quadratic on one huge invalid line: the parse is abandoned
/// after its budget and the lexer alone still reports the unclosed bracket.
#[test]
fn slow_parse_falls_back_to_lexer_diagnostics() {
    let text = format!("package p\n\nx = [{}\n", "1, ".repeat(16_000));
    let started = std::time::Instant::now();
    let mut doc = Document::new(Language::Go, text.clone());
    let elapsed = started.elapsed();
    assert!(elapsed < parse::PARSE_BUDGET * 4, "took {elapsed:?}");
    assert!(parse::gave_up(doc.tree(), doc.text()), "the parse finished: the test needs a slower text");
    expect![[r#"
        3:48004-3:48005 missing `]` to close `[` at 3:5 []
    "#]]
    .assert_eq(&render(doc.text(), doc.diagnostics()));
    // Editing goes on from a fresh parse, and a fixed text parses in time again.
    let end = doc.text().len();
    doc.edit(4..end, "\n");
    doc.reparse();
    assert!(!parse::gave_up(doc.tree(), doc.text()));
    assert_eq!(render(doc.text(), doc.diagnostics()), "");
}

/// Breaking and healing edits in any order: the document parsed incrementally (from the broken
/// tree, or from the last clean one when an edit may heal) agrees with a fresh parse on whether
/// the text is valid, and on a valid text has the fresh parse's tree and diagnostics.
mod heal {
    use proptest::prelude::*;

    use super::*;

    const PYTHON: &str = "def total(items, start=0):\n    result = start\n    for item in items:\n        result = result + item.value(1, [2, 3])\n    return {\"total\": result, 'n': len(items)}\n\n\nclass Box:\n    def __init__(self, size):\n        self.size = (size, size)\n\n    def area(self):\n        return self.size[0] * self.size[1]\n";
    const RUST: &str = "fn total(items: &[Item]) -> u64 {\n    let mut sum = 0;\n    for item in items {\n        sum += item.value(1, [2, 3]);\n    }\n    println!(\"{}\", sum);\n    sum\n}\n\nstruct Item { v: u64 }\n\nimpl Item {\n    fn value(&self, a: u64, b: [u64; 2]) -> u64 { self.v + a + b[0] }\n}\n";

    fn edits() -> impl Strategy<Value = Vec<(usize, usize, &'static str)>> {
        let text =
            prop::sample::select(vec!["", "(", ")", "[", "]", "{", "}", "\"", "'", "x", " ", "\n", ":"]);
        prop::collection::vec((0usize..400, 0usize..3, text), 1..12)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
        #[test]
        fn incremental_parses_agree_with_fresh_ones(python in any::<bool>(), edits in edits()) {
            let (language, text) = if python { (Language::Python, PYTHON) } else { (Language::Rust, RUST) };
            let mut doc = Document::new(language, text.to_string());
            for (at, len, new_text) in edits {
                let at = at.min(doc.text().len());
                doc.edit(at..at + len, new_text);
                doc.reparse();
                // tree-sitter's error recovery may shape a broken text's tree differently when
                // parsing incrementally; a valid text has one tree, and a broken one is never
                // taken for valid.
                let fresh = super::super::parse::parse(language, doc.text(), None);
                if fresh.root_node().has_error() {
                    prop_assert!(doc.tree().root_node().has_error(), "text: {:?}", doc.text());
                    let fresh_diagnostics = super::super::check(language, doc.text());
                    prop_assert_eq!(doc.diagnostics().is_empty(), fresh_diagnostics.is_empty(), "text: {:?}", doc.text());
                } else {
                    prop_assert_eq!(doc.tree().root_node().to_sexp(), fresh.root_node().to_sexp(), "text: {:?}", doc.text());
                    prop_assert_eq!(doc.diagnostics(), &super::super::check(language, doc.text())[..]);
                }
            }
        }
    }
}

/// Every line of `fixture` (a valid file) that `pick` selects, broken by deleting the byte
/// `pick` names: the line, then the diagnostics of the broken text with their related
/// locations, one case a line.
fn break_each_line(fixture: &str, pick: impl Fn(&str) -> Option<usize>) -> String {
    let file = fixtures().join(fixture);
    let language = Language::from_path(&file).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let mut out = String::new();
    let mut start = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let line_start = start;
        start += line.len();
        let Some(at) = pick(line) else { continue };
        let cut = line_start + at;
        let broken = format!("{}{}", &text[..cut], &text[cut + 1..]);
        let diagnostics = super::check(language, &broken);
        let broken_index = LineIndex::new(&broken);
        let related: Vec<String> = diagnostics
            .iter()
            .flat_map(|d| &d.related)
            .map(|r| {
                let p = broken_index.position(&broken, r.range.start, PositionEncoding::Utf16);
                format!("{} at {}:{}", r.message, p.line + 1, p.character + 1)
            })
            .collect();
        out.push_str(&format!(
            "{}: {} => {}{}\n",
            n + 1,
            line.trim(),
            render(&broken, &diagnostics).trim_end().replace('\n', "; "),
            if related.is_empty() { String::new() } else { format!(" ({})", related.join(", ")) }
        ));
    }
    out
}

/// A compound statement without its `:` is reported where the `:` belongs, as Python does
/// ("expected ':'" after the header's last token), not as an unexpected keyword.
#[test]
fn missing_colon_is_reported_at_the_end_of_the_header() {
    let out = break_each_line("python/valid_compound_statements.py", |line| {
        let code = line.trim_end();
        (code.ends_with(':') && !code.trim_start().starts_with('#')).then(|| code.len() - 1)
    });
    expect![[r#"
        4: def walk(root, *, follow=False): => 4:32-4:32 expected `:` []
        5: for name in sorted(os.listdir(root)): => 5:41-5:41 expected `:` [walk]
        7: if os.path.isdir(path) and (follow or not os.path.islink(path)): => 7:72-7:72 expected `:` [walk]
        9: elif name.endswith(".py"): => 9:34-9:34 expected `:` [walk]
        11: else: => 11:13-11:13 expected `:` [walk]
        15: class Walker(object): => 15:21-15:21 expected `:` []
        18: def __init__(self, root): => 18:29-18:29 expected `:` [Walker]
        21: def run(self): => 21:18-21:18 expected `:` [Walker]
        22: while self.root: => 22:24-22:24 expected `:` [Walker.run]
        23: try: => 23:16-23:16 expected `:` [Walker.run]
        25: except OSError: => 25:27-25:27 expected `:` [Walker.run]
        27: finally: => 27:20-27:20 expected `:` [Walker.run]
        31: async def read(path): => 31:21-31:21 expected `:` []
        32: with open(path) as f: => 32:25-32:25 expected `:` [read]
    "#]]
    .assert_eq(&out);
}

/// A `)` deleted at the end of a construct is underlined on that line, with the `(` as related
/// information, not on the `}` or the statement that follows.
#[test]
fn unclosed_paren_is_underlined_where_the_construct_ends() {
    let out = break_each_line("rust/valid_calls.rs", |line| {
        let code = line.trim_end();
        let code = code.strip_suffix(';').or_else(|| code.strip_suffix(',')).unwrap_or(code);
        code.ends_with(')').then(|| code.len() - 1)
    });
    expect![[r#"
        4: let mut totals = HashMap::new(); => 4:35-4:36 missing `)` to close `(` at 4:34 [totals] (`(` opened here at 4:34)
        6: let (name, amount) = line.split_once(',').unwrap_or((line, "0")); => 6:61-6:62 missing `)` to close `(` at 6:60 [totals] (`(` opened here at 6:60)
        7: let amount: u64 = amount.trim().parse().unwrap_or(0); => 7:60-7:61 missing `)` to close `(` at 7:58 [totals] (`(` opened here at 7:58)
        10: let largest = totals.values().copied().max().unwrap_or(0); => 10:61-10:62 missing `)` to close `(` at 10:59 [totals] (`(` opened here at 10:59)
        11: println!("{} names, largest {}", totals.len(), largest); => 11:48-11:49 missing `)` to close `(` at 11:13 [totals] (`(` opened here at 11:13)
        15: ); => 14:16-14:17 missing `)` to close `(` at 12:11 [totals] (`(` opened here at 12:11)
        21: eprintln!("warning") => 21:27-21:28 missing `)` to close `(` at 21:18 [warn] (`(` opened here at 21:18)
        23: eprintln!("warning: {}", message.trim()) => 23:46-23:47 missing `)` to close `(` at 23:18 [warn] (`(` opened here at 23:18)
        25: message.len().saturating_sub(message.trim_start().len()) => 25:52-25:53 missing `)` to close `(` at 25:33 [warn] (`(` opened here at 25:33)
        29: let width = width.max(1); => 29:28-29:29 missing `)` to close `(` at 29:26 [area] (`(` opened here at 29:26)
    "#]].assert_eq(&out);
}

/// The diagnostics of `text`, rendered one a line.
fn diagnose(language: Language, text: &str) -> String {
    render(text, &super::check(language, text))
}

/// A bound with no traits is valid Rust (`combine`'s `Decoder`); the same shape where rustc
/// wants a type or a value is still a mistake.
#[test]
fn empty_trait_bounds_are_valid_rust() {
    let valid = "impl<S, P, C> Decoder<S, P, C>\nwhere\n    C: ,\n{\n    fn f() {}\n}\n\
                 impl<C:> D for C where C: Clone, {}\nfn g<T: = u8>() where T:, Vec<T>: {}\n";
    assert_eq!(diagnose(Language::Rust, valid), "");
    let broken =
        "fn f() {\n    let x: = 5;\n}\n\nfn g() {\n    let s = S {\n        a: ,\n        b: 1,\n    };\n}\n";
    expect![[r#"
        2:10-2:11 unexpected `:` [f]
        7:10-7:11 unexpected `:` [g]
    "#]]
    .assert_eq(&diagnose(Language::Rust, broken));
}

/// A generic foreign type in an `extern` block, as `wasm-bindgen`'s `sys.rs` declares it.
#[test]
fn generic_foreign_types_are_valid_rust() {
    let text = "extern \"C\" {\n    #[derive(Clone, PartialEq)]\n    pub type JsOption<T>;\n    pub type Map<K, V: Into<u8>>;\n}\n";
    assert_eq!(diagnose(Language::Rust, text), "");
}

/// `abstract` as the name of a member, as `@babel/types` and `@oxc-project/types` declare
/// their class nodes; `abstract` as a modifier stays one.
#[test]
fn abstract_as_a_member_name_is_valid_typescript() {
    let text = "interface ClassDeclaration {\n  body: ClassBody;\n  abstract: boolean | null;\n  declare?: boolean;\n}\n\
                interface Class {\n  abstract?: boolean;\n  abstract(): void;\n}\ntype T = { abstract: boolean };\n\
                class C {\n  abstract!: boolean;\n}\nabstract class D {\n  abstract m(): void;\n}\n";
    assert_eq!(diagnose(Language::TypeScript, text), "");
    assert_eq!(diagnose(Language::Tsx, text), "");
}

/// `export type * from` (TypeScript 5.0), as `vite`'s `terserOptions.d.ts` writes it.
#[test]
fn export_type_star_is_valid_typescript() {
    let text = "// @ts-ignore `terser` may not be installed\nexport type * as Terser from 'terser'\nexport type * from './types'\n";
    assert_eq!(diagnose(Language::TypeScript, text), "");
}

/// Overloaded generic call signatures with only line breaks between them, as `vite`'s
/// `importGlob.d.ts` declares `ImportGlobFunction`.
#[test]
fn generic_call_signatures_on_their_own_lines_are_valid_typescript() {
    let text = "export interface ImportGlobFunction {\n  /**\n   * Overload 1\n   */\n  <\n    Eager extends boolean,\n    T = unknown,\n  >(\n    glob: string | string[],\n  ): (Eager extends true ? true : false) extends true\n    ? Record<string, T>\n    : Record<string, () => Promise<T>>\n  /**\n   * Overload 2\n   */\n  <M>(glob: string): Record<string, M>\n  // the last one\n  <N>(glob: string[]): N\n}\n";
    assert_eq!(diagnose(Language::TypeScript, text), "");
}

/// What `gofmt` accepts and only Go's type checker rejects, as the type checker's own tests
/// write it (`go/types/testdata`); a call left open inside is still reported.
#[test]
fn type_checker_test_cases_are_valid_go() {
    let text = "package p\n\nfunc _() {\n\t_ = make(1 /* ERROR not a type */)\n\t_ = make([]int, t... /* ERROR invalid use */ )\n\
                \t_ = make(f0 /* ERROR not a type */ ())\n\t_ = new(1, 2)\n\t_ = new(\"foo\")\n\t_ = new(int... /* ERROR */ )\n\
                \t_ = make([]int, 3)\n}\n\nvar _ = new(- /* ERROR not a type */ 1)\n\ntype (\n\tiA0 [... /* ERROR \"invalid use of '...'\" */ ]byte\n)\n\n\
                var (\n\t_ = ~ /* ERROR cannot use ~ outside of interface or type constraint */ 0\n)\n\n\
                func _() {\n\t{\n\t\tgoto L\n\t}\nL: L1:\n}\n\ntype C interface{ ~int | ~string }\n";
    assert_eq!(diagnose(Language::Go, text), "");
    let broken = "package p\n\nfunc _() {\n\t_ = make(1\n}\n";
    assert_ne!(diagnose(Language::Go, broken), "");
}

/// Two Python statements on one line with nothing between them, which tree-sitter-python
/// parses without error (`return x[0]` then a string): reported at the second, as Python does.
#[test]
fn statements_on_one_line_need_a_separator_in_python() {
    let text = "class A:\n    def area(self):\n        return self.size[0]' * self.size[1]'\n\n\n\n    def b(self):\n        return f(x)'s'\n\n\n\n\
                def c():\n    return c\"s\"\n";
    expect![[r#"
        3:28-3:45 expected a line break or `;` before string ' * self.size[1]' [A.area]
        8:16-8:17 unexpected `f` [A.b]
        13:12-13:13 unexpected `c` [c]
    "#]]
    .assert_eq(&diagnose(Language::Python, text));
    let valid = "a = 1; b = 2\nif a: b = 3\nwhile b: pass\nclass K: x = 1; y = 2\ndef f(): return 1\n";
    assert_eq!(diagnose(Language::Python, valid), "");
}

/// A deleted closer is reported where the indentation says its block ends, as rustc's
/// unclosed-delimiter hints point: the `}` of a top-level item before the next item (not at
/// the opener, though closing it at the end of the text balances as well), the `)` of a
/// signature left as `     -> T {`, and a `(` opened within a line that the `)` of an
/// enclosing call, on a shallower line, would otherwise close.
#[test]
fn deleted_closers_are_placed_where_the_indentation_returns() {
    let text = "fn insert(b: &mut Bencher) {\n    b.iter(|| {\n        let mut map = IndexMap::new();\n        map\n    });\n\n\n#[bench]\nfn lookup(b: &mut Bencher) {\n    b.iter(|| 1);\n}\n";
    expect![[r#"
        5:7-5:8 missing `}` to close `{` at 1:28 [] (`{` opened here at 1:28)
    "#]]
    .assert_eq(&diagnose_with_related(Language::Rust, text));
    let text = "impl Platform {\n    pub fn selected(\n        self,\n        mut filter: impl FnMut(&oid) -> bool,\n     -> Result<Walk, Error> {\n        let walk = Walk::new(filter);\n        Ok(walk)\n    }\n}\n";
    expect![[r#"
        4:45-4:46 missing `)` to close `(` at 2:20 [Platform::selected] (`(` opened here at 2:20)
    "#]]
    .assert_eq(&diagnose_with_related(Language::Rust, text));
    let text = "impl_subtag!(\n    Key,\n    2..=2,\n    s,\n    s.all_bytes()[0].is_ascii_alphabetic( && s.all_bytes()[1].is_ascii_digit(),\n    s.to_ascii_lowercase(),\n    InvalidExtension,\n    [\"k0\"],\n);\n";
    expect![[r#"
        5:57-5:58 missing `)` to close `(` at 5:41 [] (`(` opened here at 5:41)
    "#]]
    .assert_eq(&diagnose_with_related(Language::Rust, text));
}

/// A closer deleted right after a block that ends its bracket's line (`})` written as `}` after
/// a closure or callback, `}};` as `};`) is reported after that block, where the indentation
/// ends it, not before the block on the bracket's line; a `)` missing before a block that is not
/// the bracket's argument (`if check(x {`) still is.
#[test]
fn closers_deleted_after_a_block_argument_are_placed_after_the_block() {
    let rust = std::fs::read_to_string(fixtures().join("rust/deleted_closer_after_closure.rs")).unwrap();
    expect![[r#"
        10:14-11:1 missing `)` to close `(` at 7:17 [format] (`(` opened here at 7:17)
    "#]]
    .assert_eq(&diagnose_with_related(Language::Rust, &rust));
    let rust = std::fs::read_to_string(fixtures().join("rust/deleted_closer_in_nested_block.rs")).unwrap();
    expect![[r#"
        8:10-8:11 missing `}` to close `{` at 5:15 [decode] (`{` opened here at 5:15)
    "#]]
    .assert_eq(&diagnose_with_related(Language::Rust, &rust));
    let js = std::fs::read_to_string(fixtures().join("javascript/deleted_closer_after_callback.js")).unwrap();
    expect![[r#"
        5:4-6:1 missing `)` to close `(` at 3:5 [] (`(` opened here at 3:5)
    "#]]
    .assert_eq(&diagnose_with_related(Language::JavaScript, &js));
    let text = "source.subscribe(\n  wrap(subscriber, ( => {\n    done = true;\n    next();\n    more();\n    end();\n  })\n);\n";
    expect![[r#"
        2:20-2:21 missing `)` to close `(` at 2:7 [] (`(` opened here at 2:7)
    "#]]
    .assert_eq(&diagnose_with_related(Language::TypeScript, text));
    let text = "fn f(x: u8) {\n    if check(x {\n        run();\n    }\n}\n";
    expect![[r#"
        2:16-2:17 missing `)` to close `(` at 2:13 [] (`(` opened here at 2:13)
    "#]]
    .assert_eq(&diagnose_with_related(Language::Rust, text));
}

/// A `}` deleted from the start of `} else {` leaves the `else` one column deeper than the
/// block it closed: the closer is reported on that line, not after the `else` block, where
/// closing the block balances as well.
#[test]
fn a_closer_deleted_before_else_is_placed_at_the_else() {
    let rust = std::fs::read_to_string(fixtures().join("rust/deleted_closer_before_else.rs")).unwrap();
    expect![[r#"
        5:18-5:19 missing `}` to close `{` at 3:22 [classify] (`{` opened here at 3:22)
    "#]]
    .assert_eq(&diagnose_with_related(Language::Rust, &rust));
}

/// A keyword left where a name or the end of an expression belongs (`unwrap(fn )`, `fn }`),
/// which tree-sitter-rust's lexer reads as a name, and an `impl` with no body, which the grammar
/// takes: reported where they are, as rustc does; keywords in lifetimes, raw identifiers and
/// macro tokens are not.
#[test]
fn keywords_taken_for_names_are_reported() {
    let text = std::fs::read_to_string(fixtures().join("rust/keyword_as_name.rs")).unwrap();
    expect![[r#"
        4:53-4:55 unexpected keyword `fn` [manifest_dir]
        13:9-13:11 unexpected keyword `fn` [Modulus::clone]
        18:42-18:43 expected `{` after the `impl`'s type [assert_impl_all!(Raw]
    "#]]
    .assert_eq(&diagnose(Language::Rust, &text));
    let valid = std::fs::read_to_string(fixtures().join("rust/valid_keywords.rs")).unwrap();
    assert_eq!(diagnose(Language::Rust, &valid), "");
}

/// A `;` missing before comments is reported after the code it ends, where rustc points, not
/// before the next item, which tree-sitter places it before.
#[test]
fn a_missing_semicolon_is_placed_before_the_comments_that_follow() {
    let text = "use crate::sys::jmethodID

/// Wrapper around [`jmethodID`].
///
/// More text.
/// More text.
/// More text.
#[derive(Debug)]
pub struct JMethodID {
    internal: jmethodID,
}
";
    expect![[r#"
        1:26-1:26 expected `;` []
    "#]]
    .assert_eq(&diagnose(Language::Rust, text));
}

/// A word before a macro call where none may stand (`fn name!(…)`, a path typed twice) is
/// reported: the grammar's error at the `!` is not an invocation it failed to open.
#[test]
fn a_word_before_a_macro_call_is_reported() {
    let text = "mod t {
    #[cfg(x)]
    fn test_simd_arch_mod!(wasm32, v128);
}

fn f() {
    tracing tracing::warn!(name: \"mog\", qux = 3);
    x();
}
";
    expect![[r#"
        3:26-3:27 unexpected `!` [t::test_simd_arch_mod]
        7:5-7:12 unexpected `tracing` [f]
    "#]]
    .assert_eq(&diagnose(Language::Rust, text));
    let valid = "fn f() -> u8 {
    // the count
    m!(1);
    let x = if m!(2) { 1 } else { 2 };
    for _ in m![3] {}
    return m!(x);
}
";
    assert_eq!(diagnose(Language::Rust, valid), "");
}

/// A Rust string left open runs to the next quote: it is named where it opens when a comment
/// or an item at the margin follows its line.
#[test]
fn strings_left_open_before_a_comment_or_an_item_are_named() {
    let text = "fn dll_search() {
    let path = \"A.B.TypeName;

    // Test library successfully found
    let mut results = Vec::new();
    let found = search_path(path, |library| {
        results.push(library);
        library == \"A.dll\"
    });
}
";
    expect![[r#"
        2:16-2:17 unterminated string [dll_search]
        8:21-8:22 unexpected `A` [dll_search]
    "#]]
    .assert_eq(&diagnose(Language::Rust, text));
    let text = "/// The name of the file.
pub(crate) const MODULES_FILE: &str = \".gitmodules;

mod errors;
pub use errors::*;

fn f() {
    x.expect(\"just initialized\");
}
";
    expect![[r#"
        2:39-2:40 unterminated string []
        8:15-8:19 unexpected `just` []
    "#]]
    .assert_eq(&diagnose(Language::Rust, text));
}

/// A macro call in `(…)` or `[…]` followed by another statement or item with no `;` between is
/// reported where the `;` belongs (tree-sitter-rust parses it without error); calls in braces,
/// the last expression of a block and calls that start a longer expression are valid.
#[test]
fn macro_calls_as_statements_need_a_semicolon() {
    let text = std::fs::read_to_string(fixtures().join("rust/missing_semicolon_after_macro.rs")).unwrap();
    expect![[r#"
        3:38-3:38 expected `;` after the macro call [report]
        8:37-8:37 expected `;` after the macro call []
    "#]]
    .assert_eq(&diagnose(Language::Rust, &text));
    let valid = std::fs::read_to_string(fixtures().join("rust/valid_macro_statements.rs")).unwrap();
    assert_eq!(diagnose(Language::Rust, &valid), "");
}

/// As [`diagnose`], with each diagnostic's related locations.
fn diagnose_with_related(language: Language, text: &str) -> String {
    let diagnostics = super::check(language, text);
    let index = LineIndex::new(text);
    let mut out = String::new();
    for (line, d) in render(text, &diagnostics).lines().zip(&diagnostics) {
        let related: Vec<String> = d
            .related
            .iter()
            .map(|r| {
                let p = index.position(text, r.range.start, PositionEncoding::Utf16);
                format!("{} at {}:{}", r.message, p.line + 1, p.character + 1)
            })
            .collect();
        out.push_str(&format!("{line} ({})\n", related.join(", ")));
    }
    out
}
