//! Each parser on the real output of its tool, captured by the `capture.sh` beside each fixture
//! under `fixtures/checkers/`; the expected problems were checked by hand against the projects'
//! sources there.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::{Parser, Stream, crash, parser};
use crate::checkers::{Format, Problem, Span};
use crate::classify::external;

/// Where the parsers run, when no file there matters.
const NO_DIR: &str = "/nonexistent";

fn fixture(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/checkers").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Feeds the fixtures' lines, each on its stream, then ends the output.
fn run(mut parser: Box<dyn Parser>, inputs: &[(Stream, &str)]) -> Vec<Problem> {
    let mut out = Vec::new();
    for (stream, file) in inputs {
        for line in fixture(file).lines() {
            parser.line(*stream, line, &mut out);
        }
    }
    parser.finish(&mut out);
    out
}

fn span(s: &Span) -> String {
    let mut text = format!("{}:{}:{}", s.path.display(), s.start.line, s.start.column);
    if let Some(end) = s.end {
        let _ = write!(text, "-{}:{}", end.line, end.column);
    }
    text
}

/// One problem a line, then its related places and fixes, indented.
fn render(problems: &[Problem]) -> String {
    let mut out = String::new();
    for p in problems {
        let category =
            p.category.unwrap_or_else(|| external::category(&p.source, p.code.as_deref(), &p.message));
        let _ = writeln!(
            out,
            "{} {:?} {} {} {} [{:?}] {:?}",
            span(&p.span),
            p.span.columns,
            p.severity.as_str(),
            p.source,
            p.code.as_deref().unwrap_or("-"),
            category,
            p.message
        );
        for r in &p.related {
            let _ = writeln!(out, "    related {} {:?}", span(&r.span), r.message);
        }
        for f in &p.fixes {
            let _ = writeln!(out, "    fix {:?}", f.title);
            for e in &f.edits {
                let _ = writeln!(out, "        {} => {:?}", span(&e.span), e.replacement);
            }
        }
    }
    out
}

fn check(problems: Vec<Problem>, expected: Expect) {
    expected.assert_eq(&render(&problems));
}

const OUT: Stream = Stream::Stdout;
const ERR: Stream = Stream::Stderr;

#[test]
fn cargo_check() {
    check(
        run(parser(&Format::Cargo, Path::new(NO_DIR)), &[(OUT, "cargo/check.jsonl")]),
        expect![[r#"
        src/lib.rs:1:5-1:30 Chars warning rustc unused_imports [Lint] "unused import: `std::collections::HashMap`"
            fix "remove the whole `use` item"
                src/lib.rs:1:1-2:1 => ""
        src/lib.rs:18:21-18:27 Chars error rustc E0308 [Type] "mismatched types\nexpected `u32`, found `&str`"
            related src/lib.rs:18:15-18:18 "expected due to this"
        src/lib.rs:19:12-19:18 Chars error rustc E0308 [Type] "mismatched types\nexpected `u32`, found `&str`"
            related src/lib.rs:7:21-7:24 "expected due to this"
        src/lib.rs:20:5-20:14 Chars error rustc E0308 [Type] "mismatched types\nexpected `u8`, found `&str`"
            related src/lib.rs:13:22-13:25 "expected `u8`, found `&str` (inside the expansion of `broken!`)"
            related src/lib.rs:13:17-13:19 "expected due to this"
        src/price.rs:8:17-8:18 Chars error rustc E0382 [Ownership] "use of moved value: `v`\nvalue used here after move"
            related src/price.rs:7:17-7:18 "value moved here"
            related src/price.rs:6:14-6:15 "move occurs because `v` has type `Vec<String>`, which does not implement the `Copy` trait"
            fix "consider cloning the value if the performance cost is acceptable"
                src/price.rs:7:18-7:18 => ".clone()"
    "#]],
    );
}

#[test]
fn cargo_clippy() {
    check(
        run(parser(&Format::Cargo, Path::new(NO_DIR)), &[(OUT, "cargo/clippy.jsonl")]),
        expect![[r#"
        src/lib.rs:10:9-10:15 Chars warning rustc unused_variables [Lint] "unused variable: `unused`"
            fix "if this is intentional, prefix it with an underscore"
                src/lib.rs:10:9-10:15 => "_unused"
        src/lib.rs:6:5-6:17 Chars warning clippy clippy::needless_return [Lint] "unneeded `return` statement"
            fix "remove `return`"
                src/lib.rs:6:5-6:17 => "x * 2"
                src/lib.rs:6:17-6:18 => ""
        src/lib.rs:9:16-9:23 Chars warning clippy clippy::ptr_arg [Lint] "writing `&String` instead of `&str` involves a new object where a slice will do"
            related src/lib.rs:9:16-9:23 "change this to: `&str`"
    "#]],
    );
}

#[test]
fn cargo_test() {
    check(
        run(parser(&Format::CargoTest, Path::new(NO_DIR)), &[(OUT, "cargo-test/test.out")]),
        expect![[r#"
        src/lib.rs:15:9 Chars error cargo test - [Test] "tests::adds: assertion `left == right` failed\n  left: 0\n right: 4"
        src/lib.rs:31:9 Chars error cargo test - [Test] "tests::checks_sign: sum of 1 and 3 is negative"
        src/lib.rs:6:22 Chars error cargo test - [Test] "tests::parses: amount is a number: ParseIntError { kind: InvalidDigit }"
    "#]],
    );
}

#[test]
fn cargo_test_with_a_backtrace() {
    check(
        run(parser(&Format::CargoTest, Path::new(NO_DIR)), &[(OUT, "cargo-test/test-backtrace.out")]),
        expect![[r#"
        src/lib.rs:31:9 Chars error cargo test - [Test] "tests::checks_sign: sum of 1 and 3 is negative"
            related src/lib.rs:30:21 "called from `ledger::tests::checks_sign::{{closure}}`"
        src/lib.rs:6:22 Chars error cargo test - [Test] "tests::parses: amount is a number: ParseIntError { kind: InvalidDigit }"
            related src/lib.rs:21:20 "called from `ledger::tests::parses`"
            related src/lib.rs:19:16 "called from `ledger::tests::parses::{{closure}}`"
        src/lib.rs:15:9 Chars error cargo test - [Test] "tests::adds: assertion `left == right` failed\n  left: 0\n right: 4"
            related src/lib.rs:14:14 "called from `ledger::tests::adds::{{closure}}`"
    "#]],
    );
}

#[test]
fn cargo_nextest() {
    check(
        run(parser(&Format::CargoTest, Path::new(NO_DIR)), &[(OUT, "cargo-test/nextest.out")]),
        expect![[r#"
        src/lib.rs:15:9 Chars error cargo test - [Test] "tests::adds: assertion `left == right` failed\n  left: 0\n right: 4"
        src/lib.rs:31:9 Chars error cargo test - [Test] "tests::checks_sign: sum of 1 and 3 is negative"
        src/lib.rs:6:22 Chars error cargo test - [Test] "tests::parses: amount is a number: ParseIntError { kind: InvalidDigit }"
    "#]],
    );
}

#[test]
fn cargo_test_that_does_not_build() {
    check(
        run(parser(&Format::CargoTest, Path::new(NO_DIR)), &[(ERR, "cargo-test/test-build-error.out")]),
        expect![[r#"
        src/lib.rs:26:23 Chars error rustc E0308 [Type] "mismatched types"
    "#]],
    );
}

#[test]
fn tsc() {
    check(
        run(parser(&Format::Tsc, Path::new(NO_DIR)), &[(OUT, "tsc/tsc.out")]),
        expect![[r#"
        src/cart.ts:7:41 Utf16 error tsc TS2322 [Type] "Type 'string' is not assignable to type 'number'."
        src/cart.ts:11:7 Utf16 error tsc TS2741 [Type] "Property 'price' is missing in type '{ name: string; }' but required in type 'Item'."
        src/cart.ts:13:47 Utf16 error tsc TS2322 [Type] "Type 'string' is not assignable to type 'number'."
        src/util.ts:1:25 Utf16 error tsc TS2307 [Import] "Cannot find module './nowhere' or its corresponding type declarations."
        src/util.ts:4:38 Utf16 error tsc TS2552 [Name] "Cannot find name 'undefinedName'. Did you mean 'undefined'?"
        src/util.ts:7:14 Utf16 error tsc TS2322 [Type] "Type '(x: string) => string' is not assignable to type '(x: number) => string'.\n  Types of parameters 'x' and 'x' are incompatible.\n    Type 'number' is not assignable to type 'string'."
    "#]],
    );
}

#[test]
fn eslint() {
    check(
        run(parser(&Format::Eslint, Path::new(NO_DIR)), &[(OUT, "eslint/eslint.json")]),
        expect![[r#"
            /tmp/acas-fixtures/eslint/src/broken.js:2:3 Utf16 error eslint - [Syntax] "Parsing error: Unexpected keyword 'return'"
            /tmp/acas-fixtures/eslint/src/widget.js:1:34-1:39 Utf16 error eslint prefer-const [Lint] "'count' is never reassigned. Use 'const' instead."
                fix "prefer-const: 'count' is never reassigned. Use 'const' instead."
                    /tmp/acas-fixtures/eslint/src/widget.js:1:30-1:44 => "const count = 1;"
            /tmp/acas-fixtures/eslint/src/widget.js:2:1-2:14 Utf16 error eslint no-var [Lint] "Unexpected var, use let or const instead."
                fix "no-var: Unexpected var, use let or const instead."
                    /tmp/acas-fixtures/eslint/src/widget.js:2:1-2:14 => "let size = 2;"
            /tmp/acas-fixtures/eslint/src/widget.js:5:13-5:57 Utf16 error eslint curly [Lint] "Expected { after 'if' condition."
                fix "curly: Expected { after 'if' condition."
                    /tmp/acas-fixtures/eslint/src/widget.js:5:13-5:57 => "{console.log(greeting, count, size, missing);}"
            /tmp/acas-fixtures/eslint/src/widget.js:5:48-5:55 Utf16 error eslint no-undef [Name] "'missing' is not defined."
            /tmp/acas-fixtures/eslint/src/widget.js:6:9-6:15 Utf16 warning eslint no-unused-vars [Lint] "'unused' is assigned a value but never used."
        "#]],
    );
}

#[test]
fn ruff() {
    check(
        run(parser(&Format::Ruff, Path::new(NO_DIR)), &[(OUT, "ruff/ruff.json")]),
        expect![[r#"
        /tmp/acas-fixtures/ruff/inventory/broken.py:1:12-1:13 Chars error ruff invalid-syntax [Syntax] "Expected a parameter or the end of the parameter list"
        /tmp/acas-fixtures/ruff/inventory/broken.py:1:13-2:1 Chars error ruff invalid-syntax [Syntax] "Expected `)`, found newline"
        /tmp/acas-fixtures/ruff/inventory/stock.py:1:8-1:10 Chars warning ruff F401 [Lint] "`os` imported but unused"
            fix "Remove unused import: `os`"
                /tmp/acas-fixtures/ruff/inventory/stock.py:1:1-2:1 => ""
        /tmp/acas-fixtures/ruff/inventory/stock.py:2:1-2:24 Chars warning ruff UP035 [Lint] "`typing.List` is deprecated, use `list` instead"
        /tmp/acas-fixtures/ruff/inventory/stock.py:5:18-5:22 Chars warning ruff UP006 [Lint] "Use `list` instead of `List` for type annotation"
            fix "Replace with `list`"
                /tmp/acas-fixtures/ruff/inventory/stock.py:5:18-5:22 => "list"
        /tmp/acas-fixtures/ruff/inventory/stock.py:6:5-6:10 Chars warning ruff F841 [Lint] "Local variable `label` is assigned to but never used"
        /tmp/acas-fixtures/ruff/inventory/stock.py:6:21-6:22 Chars warning ruff E702 [Lint] "Multiple statements on one line (semicolon)"
        /tmp/acas-fixtures/ruff/inventory/stock.py:7:17-7:21 Chars warning ruff E711 [Lint] "Comparison to `None` should be `cond is None`"
        /tmp/acas-fixtures/ruff/inventory/stock.py:9:20-9:34 Chars warning ruff F821 [Name] "Undefined name `undefined_name`"
    "#]],
    );
}

#[test]
fn mypy_json() {
    check(
        run(parser(&Format::Mypy, Path::new(NO_DIR)), &[(OUT, "mypy/mypy.jsonl")]),
        expect![[r#"
        billing/invoice.py:1:1-1:2 Chars error mypy import-not-found [Import] "Cannot find implementation or library stub for module named \"billing.missing\"\nSee https://mypy.readthedocs.io/en/stable/running_mypy.html#missing-imports"
        billing/invoice.py:5:40-5:45 Chars error mypy assignment [Type] "Incompatible types in assignment (expression has type \"str\", variable has type \"int\")"
        billing/invoice.py:9:1-10:20 Chars error mypy no-untyped-def [Type] "Function is missing a type annotation"
        billing/invoice.py:13:8-13:11 Chars error mypy list-item [Type] "List item 0 has incompatible type \"str\"; expected \"int\""
        billing/invoice.py:14:7-14:21 Chars error mypy name-defined [Name] "Name \"undefined_name\" is not defined"
    "#]],
    );
}

#[test]
fn mypy_plain() {
    check(
        run(parser(&Format::Mypy, Path::new(NO_DIR)), &[(OUT, "mypy/mypy.out")]),
        expect![[r#"
        billing/invoice.py:1:1 Chars error mypy import-not-found [Import] "Cannot find implementation or library stub for module named \"billing.missing\"\nSee https://mypy.readthedocs.io/en/stable/running_mypy.html#missing-imports"
        billing/invoice.py:5:1 Chars error mypy assignment [Type] "Incompatible types in assignment (expression has type \"str\", variable has type \"int\")"
        billing/invoice.py:9:1 Chars error mypy no-untyped-def [Type] "Function is missing a type annotation"
        billing/invoice.py:13:1 Chars error mypy list-item [Type] "List item 0 has incompatible type \"str\"; expected \"int\""
        billing/invoice.py:14:1 Chars error mypy name-defined [Name] "Name \"undefined_name\" is not defined"
    "#]],
    );
}

#[test]
fn mypy_plain_with_columns() {
    check(
        run(parser(&Format::Mypy, Path::new(NO_DIR)), &[(OUT, "mypy/mypy-columns.out")]),
        expect![[r#"
        billing/invoice.py:1:1-1:2 Chars error mypy import-not-found [Import] "Cannot find implementation or library stub for module named \"billing.missing\"\nSee https://mypy.readthedocs.io/en/stable/running_mypy.html#missing-imports"
        billing/invoice.py:5:40-5:45 Chars error mypy assignment [Type] "Incompatible types in assignment (expression has type \"str\", variable has type \"int\")"
        billing/invoice.py:9:1-10:20 Chars error mypy no-untyped-def [Type] "Function is missing a type annotation"
        billing/invoice.py:13:8-13:11 Chars error mypy list-item [Type] "List item 0 has incompatible type \"str\"; expected \"int\""
        billing/invoice.py:14:7-14:21 Chars error mypy name-defined [Name] "Name \"undefined_name\" is not defined"
    "#]],
    );
}

#[test]
fn pyright() {
    check(
        run(parser(&Format::Pyright, Path::new(NO_DIR)), &[(OUT, "pyright/pyright.json")]),
        expect![[r#"
        /tmp/acas-fixtures/pyright/billing/invoice.py:1:6-1:21 Utf16 error pyright reportMissingImports [Import] "Import \"billing.missing\" could not be resolved"
        /tmp/acas-fixtures/pyright/billing/invoice.py:5:38-5:43 Utf16 error pyright reportAssignmentType [Type] "Type \"Literal['🛒']\" is not assignable to declared type \"int\"\n\u{a0}\u{a0}\"Literal['🛒']\" is not assignable to \"int\""
        /tmp/acas-fixtures/pyright/billing/invoice.py:13:8-13:11 Utf16 error pyright reportArgumentType [Type] "Argument of type \"list[str | int]\" cannot be assigned to parameter \"amounts\" of type \"list[int]\" in function \"total\"\n\u{a0}\u{a0}\"Literal['1']\" is not assignable to \"int\""
        /tmp/acas-fixtures/pyright/billing/invoice.py:14:7-14:21 Utf16 error pyright reportUndefinedVariable [Name] "\"undefined_name\" is not defined"
    "#]],
    );
}

#[test]
fn go_build() {
    check(
        run(parser(&Format::Go, Path::new(NO_DIR)), &[(ERR, "go/build.out")]),
        expect![[r#"
        store/store.go:6:37 Bytes error go - [Type] "cannot use label (variable of type string) as type int in variable declaration"
        store/store.go:7:26 Bytes error go - [Name] "undefined: missing"
    "#]],
    );
}

#[test]
fn go_vet() {
    check(
        run(parser(&Format::Go, Path::new(NO_DIR)), &[(ERR, "go/vet.out")]),
        expect![[r#"
        store/store.go:6:37 Bytes error go - [Type] "cannot use label (variable of type string) as int value in variable declaration"
        vetme/vet.go:6:2 Bytes error go - [Other] "fmt.Printf format %s has arg n of wrong type int"
        vetme/vet.go:7:9 Bytes error go - [Other] "fmt.Sprintf format %d has arg \"x\" of wrong type string"
    "#]],
    );
}

#[test]
fn go_test() {
    check(
        run(parser(&Format::GoTest, Path::new(NO_DIR)), &[(OUT, "go-test/test.jsonl")]),
        expect![[r#"
        calc_test.go:7:1 Bytes error go test - [Test] "TestAdd: Add(2, 2) = 0, want 4"
        calc_test.go:15:1 Bytes error go test - [Test] "TestAddTable/case: Add(1, 1) = 0,\nwant 2"
        /tmp/acas-fixtures/go-test/calc.go:8:1 Bytes error go test - [Test] "TestPick: panic: runtime error: index out of range [3] with length 1"
            related /tmp/acas-fixtures/go-test/calc_test.go:28:1 "called from `example.com/calc.TestPick`"
    "#]],
    );
}

/// `t.Error` of a package below the module's root, as `go test -json` (Go 1.19) prints it.
#[test]
fn go_test_places_a_sub_packages_failure_in_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("go.mod"), "module \"example.com/g1\" // the module\n\ngo 1.19\n")
        .unwrap();
    let events = [
        r#"{"Action":"output","Package":"example.com/g1/pkg","Test":"TestHello","Output":"    p_test.go:7: got \"1\"\n"}"#,
        r#"{"Action":"fail","Package":"example.com/g1/pkg","Test":"TestHello","Elapsed":0}"#,
        r#"{"Action":"output","Package":"example.com/g1","Test":"TestRoot","Output":"    root_test.go:6: root\n"}"#,
        r#"{"Action":"fail","Package":"example.com/g1","Test":"TestRoot","Elapsed":0}"#,
        r#"{"Action":"output","Package":"example.com/g1/../x","Test":"TestUp","Output":"    up_test.go:3: up\n"}"#,
        r#"{"Action":"fail","Package":"example.com/g1/../x","Test":"TestUp","Elapsed":0}"#,
        r#"{"Action":"output","Package":"other.org/y","Test":"TestOther","Output":"    y_test.go:4: other\n"}"#,
        r#"{"Action":"fail","Package":"other.org/y","Test":"TestOther","Elapsed":0}"#,
    ];
    // From a directory below the module's root, too.
    let below = dir.path().join("pkg");
    std::fs::create_dir(&below).unwrap();
    for cwd in [dir.path(), below.as_path()] {
        let mut parser = parser(&Format::GoTest, cwd);
        let mut out = Vec::new();
        for event in events {
            parser.line(OUT, event, &mut out);
        }
        parser.finish(&mut out);
        let places: Vec<(PathBuf, u32)> =
            out.iter().map(|p| (p.span.path.clone(), p.span.start.line)).collect();
        assert_eq!(
            places,
            [
                (dir.path().join("pkg/p_test.go"), 7),
                (dir.path().join("root_test.go"), 6),
                (PathBuf::from("up_test.go"), 3),
                (PathBuf::from("y_test.go"), 4),
            ]
        );
    }
}

#[test]
fn pytest_output_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let format = Format::Pytest { junit_xml: junit.clone() };
    let parser = parser(&format, Path::new(NO_DIR));
    std::fs::write(&junit, fixture("pytest/report.xml")).unwrap();
    check(
        run(parser, &[(OUT, "pytest/pytest.out")]),
        expect![[r#"
        tests/test_cart.py:9:1 Chars error pytest - [Test] "test_splits_with_remainder: assert 3 == 4\n +  where 3 = split(10, 3)"
        shop/cart.py:3:1 Chars error pytest - [Test] "test_zero_parts: ZeroDivisionError: cannot split into zero parts"
            related tests/test_cart.py:13:1 "called from here"
        shop/cart.py:8:1 Chars error pytest - [Test] "TestPrice.test_missing_price: KeyError: 'price'"
            related tests/test_cart.py:18:1 "called from here"
    "#]],
    );
}

#[test]
fn pytest_native_tracebacks() {
    let format = Format::Pytest { junit_xml: PathBuf::from("/nonexistent/report.xml") };
    check(
        run(parser(&format, Path::new(NO_DIR)), &[(OUT, "pytest/pytest-native.out")]),
        expect![[r#"
        /tmp/acas-fixtures/pytest/tests/test_cart.py:9:1 Chars error pytest - [Test] "test_splits_with_remainder: AssertionError: assert 3 == 4\n +  where 3 = split(10, 3)"
        /tmp/acas-fixtures/pytest/shop/cart.py:3:1 Chars error pytest - [Test] "test_zero_parts: ZeroDivisionError: cannot split into zero parts"
            related /tmp/acas-fixtures/pytest/tests/test_cart.py:13:1 "called from `test_zero_parts`"
        /tmp/acas-fixtures/pytest/shop/cart.py:8:1 Chars error pytest - [Test] "TestPrice.test_missing_price: KeyError: 'price'"
            related /tmp/acas-fixtures/pytest/tests/test_cart.py:18:1 "called from `test_missing_price`"
    "#]],
    );
}

#[test]
fn pytest_collection_error() {
    let format = Format::Pytest { junit_xml: PathBuf::from("/nonexistent/report.xml") };
    check(
        run(parser(&format, Path::new(NO_DIR)), &[(OUT, "pytest/pytest-collection.out")]),
        expect![[r#"
        tests/test_cart.py:1:1 Chars error pytest - [Import] "ERROR collecting tests/test_cart.py: ModuleNotFoundError: No module named 'shop'"
    "#]],
    );
}

#[test]
fn pytest_report_alone() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let parser = parser(&Format::Pytest { junit_xml: junit.clone() }, Path::new(NO_DIR));
    std::fs::write(&junit, fixture("pytest/report.xml")).unwrap();
    check(
        run(parser, &[]),
        expect![[r#"
        tests/test_cart.py:9:1 Chars error pytest - [Test] "test_splits_with_remainder: assert 3 == 4\n +  where 3 = split(10, 3)"
        shop/cart.py:3:1 Chars error pytest - [Test] "test_zero_parts: ZeroDivisionError: cannot split into zero parts"
            related tests/test_cart.py:13:1 "called from here"
        shop/cart.py:8:1 Chars error pytest - [Test] "TestPrice.test_missing_price: KeyError: 'price'"
            related tests/test_cart.py:18:1 "called from here"
    "#]],
    );
}

#[test]
fn jest() {
    check(
        run(parser(&Format::Jest, Path::new(NO_DIR)), &[(OUT, "jest/jest.json")]),
        expect![[r#"
        /tmp/acas-fixtures/jest-project/src/money.test.js:8:24 Utf16 error jest - [Test] "splits with remainder: Error: expect(received).toEqual(expected) // deep equality\n\nExpected: 4\nReceived: 3"
        /tmp/acas-fixtures/jest-project/src/money.js:3:11 Utf16 error jest - [Test] "edge cases zero parts: RangeError: cannot split into zero parts"
            related /tmp/acas-fixtures/jest-project/src/money.test.js:13:12 "called from `Object.split`"
    "#]],
    );
}

#[test]
fn vitest() {
    check(
        run(parser(&Format::Jest, Path::new(NO_DIR)), &[(OUT, "jest/vitest.json")]),
        expect![[r#"
        /tmp/acas-fixtures/jest-vitest-project/src/money.test.ts:9:24 Utf16 error vitest - [Test] "splits with remainder: AssertionError: expected 3 to deeply equal 4"
        /tmp/acas-fixtures/jest-vitest-project/src/money.ts:3:11 Utf16 error vitest - [Test] "edge cases zero parts: RangeError: cannot split into zero parts"
            related /tmp/acas-fixtures/jest-vitest-project/src/money.test.ts:14:12 "called from here"
    "#]],
    );
}

#[test]
fn staticcheck_codes() {
    // staticcheck's documented text format (it could not be installed where the fixtures were
    // captured).
    let mut parser = parser(&Format::Go, Path::new(NO_DIR));
    let mut out = Vec::new();
    parser.line(OUT, "lint/lint.go:9:30: error parsing regexp: missing closing ]: `[a-` (SA1000)", &mut out);
    parser.line(OUT, "lint/lint.go:10:5: should use strings.Contains(s, \"x\") instead (S1003)", &mut out);
    parser.finish(&mut out);
    check(
        out,
        expect![[r#"
        lint/lint.go:9:30 Bytes error staticcheck SA1000 [Lint] "error parsing regexp: missing closing ]: `[a-`"
        lint/lint.go:10:5 Bytes error staticcheck S1003 [Lint] "should use strings.Contains(s, \"x\") instead"
    "#]],
    );
}

#[test]
fn problems_are_handed_over_before_the_output_ends() {
    let mut cargo = parser(&Format::Cargo, Path::new(NO_DIR));
    let mut out = Vec::new();
    let first =
        fixture("cargo/check.jsonl").lines().find(|l| l.contains("compiler-message")).unwrap().to_owned();
    cargo.line(OUT, &first, &mut out);
    assert_eq!(out.len(), 1);
    let mut mypy = parser(&Format::Mypy, Path::new(NO_DIR));
    let mut out = Vec::new();
    for line in fixture("mypy/mypy.jsonl").lines().take(2) {
        mypy.line(OUT, line, &mut out);
    }
    assert_eq!(out.len(), 1, "the first problem is handed over when the second arrives");
}

#[test]
fn numbers_at_the_edge_of_their_types_are_read_without_overflow() {
    let mut problems = Vec::new();
    let mut mypy = parser(&Format::Mypy, Path::new(NO_DIR));
    let huge = i64::MAX;
    let line = format!(
        r#"{{"file": "a.py", "line": 1, "column": {huge}, "end_line": 1, "end_column": {huge}, "message": "m", "hint": null, "code": "x", "severity": "error"}}"#
    );
    mypy.line(OUT, &line, &mut problems);
    mypy.line(OUT, "a.py:1:4294967295:1:4294967295: error: m  [x]", &mut problems);
    mypy.finish(&mut problems);
    let mut jest = parser(&Format::Jest, Path::new(NO_DIR));
    let document = r#"{"testResults": [{"name": "/w/a.test.js", "status": "failed", "assertionResults": [{"fullName": "t", "status": "failed", "failureMessages": [], "location": {"line": 1, "column": 4294967295}}]}]}"#;
    jest.line(OUT, document, &mut problems);
    jest.finish(&mut problems);
    assert_eq!(problems.len(), 3, "{problems:?}");
}

fn crash_root() -> Box<dyn Parser> {
    crash(Path::new("/tmp/acas-fixtures/crash"))
}

#[test]
fn crash_python() {
    check(
        run(crash_root(), &[(ERR, "crash/python.out")]),
        expect![[r#"
        /tmp/acas-fixtures/crash/py/app/orders.py:10:1 Chars error python - [Runtime] "KeyError: 'total'"
            related /tmp/acas-fixtures/crash/py/main.py:4:1 "called from `<module>`"
    "#]],
    );
}

#[test]
fn a_line_of_the_other_stream_inside_a_trace_does_not_break_it() {
    // stdout and stderr are read on their own threads: a line a program printed before its
    // traceback (and flushed at exit) can arrive in the middle of it.
    let mut parser = crash_root();
    let mut out = Vec::new();
    for (i, line) in fixture("crash/python.out").lines().enumerate() {
        parser.line(ERR, line, &mut out);
        if i == 1 {
            parser.line(OUT, "start", &mut out);
        }
    }
    parser.finish(&mut out);
    check(
        out,
        expect![[r#"
        /tmp/acas-fixtures/crash/py/app/orders.py:10:1 Chars error python - [Runtime] "KeyError: 'total'"
            related /tmp/acas-fixtures/crash/py/main.py:4:1 "called from `<module>`"
    "#]],
    );
}

#[test]
fn crash_python_in_a_library() {
    check(
        run(crash_root(), &[(ERR, "crash/python-library.out")]),
        expect![[r#"
        /tmp/acas-fixtures/crash/py/app/orders.py:5:1 Chars error python - [Runtime] "json.decoder.JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
            related /tmp/acas-fixtures/crash/py/bad_json.py:3:1 "called from `<module>`"
    "#]],
    );
}

#[test]
fn crash_rust() {
    check(
        run(crash_root(), &[(ERR, "crash/rust.out")]),
        expect![[r#"
        src/main.rs:2:15 Chars error rust - [Runtime] "called `Result::unwrap()` on an `Err` value: ParseIntError { kind: InvalidDigit }"
    "#]],
    );
}

#[test]
fn crash_rust_with_a_backtrace() {
    check(
        run(crash_root(), &[(ERR, "crash/rust-backtrace.out")]),
        expect![[r#"
        src/main.rs:2:15 Chars error rust - [Runtime] "called `Result::unwrap()` on an `Err` value: ParseIntError { kind: InvalidDigit }"
            related src/main.rs:7:13 "called from `crashy::main`"
    "#]],
    );
}

#[test]
fn crash_node() {
    check(
        run(crash_root(), &[(ERR, "crash/node.out")]),
        expect![[r#"
        /tmp/acas-fixtures/crash/js/cart.js:2:55 Utf16 error node - [Runtime] "TypeError: Cannot read properties of undefined (reading 'amount')"
            related /tmp/acas-fixtures/crash/js/main.js:3:23 "called from `Object.<anonymous>`"
    "#]],
    );
}

#[test]
fn crash_node_esm() {
    check(
        run(crash_root(), &[(ERR, "crash/node-esm.out")]),
        expect![[r#"
        /tmp/acas-fixtures/crash/js/cart.js:2:55 Utf16 error node - [Runtime] "TypeError: Cannot read properties of null (reading 'amount')"
            related /tmp/acas-fixtures/crash/js/main.mjs:6:3 "called from `Timeout._onTimeout`"
    "#]],
    );
}

#[test]
fn crash_go() {
    check(
        run(crash_root(), &[(ERR, "crash/go.out")]),
        expect![[r#"
        /tmp/acas-fixtures/crash/go/main.go:6:1 Bytes error go - [Runtime] "panic: runtime error: index out of range [2] with length 1"
            related /tmp/acas-fixtures/crash/go/main.go:11:1 "called from `main.main`"
    "#]],
    );
}

#[test]
fn crash_compilers() {
    let inputs = [(ERR, "crash/rustc.out"), (OUT, "tsc/tsc.out"), (ERR, "crash/go-build.out")];
    check(
        run(crash_root(), &inputs),
        expect![[r#"
        src/lib.rs:1:5 Chars warning rustc - [Other] "unused import: `std::collections::HashMap`"
        src/lib.rs:18:21 Chars error rustc E0308 [Type] "mismatched types"
        src/lib.rs:19:12 Chars error rustc E0308 [Type] "mismatched types"
        src/lib.rs:13:22 Chars error rustc E0308 [Type] "mismatched types"
        src/price.rs:8:17 Chars error rustc E0382 [Ownership] "use of moved value: `v`"
        src/cart.ts:7:41 Utf16 error tsc TS2322 [Type] "Type 'string' is not assignable to type 'number'."
        src/cart.ts:11:7 Utf16 error tsc TS2741 [Type] "Property 'price' is missing in type '{ name: string; }' but required in type 'Item'."
        src/cart.ts:13:47 Utf16 error tsc TS2322 [Type] "Type 'string' is not assignable to type 'number'."
        src/util.ts:1:25 Utf16 error tsc TS2307 [Import] "Cannot find module './nowhere' or its corresponding type declarations."
        src/util.ts:4:38 Utf16 error tsc TS2552 [Name] "Cannot find name 'undefinedName'. Did you mean 'undefined'?"
        src/util.ts:7:14 Utf16 error tsc TS2322 [Type] "Type '(x: string) => string' is not assignable to type '(x: number) => string'."
        store/store.go:6:37 Bytes error go - [Type] "cannot use label (variable of type string) as type int in variable declaration"
        store/store.go:7:26 Bytes error go - [Name] "undefined: missing"
    "#]],
    );
}

/// Every format, and the crash reader.
fn every_parser() -> Vec<Box<dyn Parser>> {
    let formats = [
        Format::Cargo,
        Format::CargoTest,
        Format::Tsc,
        Format::Eslint,
        Format::Ruff,
        Format::Mypy,
        Format::Pyright,
        Format::Go,
        Format::GoTest,
        Format::Pytest { junit_xml: PathBuf::from("/nonexistent/report.xml") },
        Format::Jest,
    ];
    let mut parsers: Vec<Box<dyn Parser>> = formats.iter().map(|f| parser(f, Path::new(NO_DIR))).collect();
    parsers.push(crash_root());
    parsers
}

/// Lines of every fixture, for the property test to cut and mix.
fn fixture_lines() -> Vec<String> {
    let files = [
        "cargo/check.jsonl",
        "cargo/clippy.jsonl",
        "cargo-test/test-backtrace.out",
        "cargo-test/nextest.out",
        "tsc/tsc.out",
        "eslint/eslint.json",
        "ruff/ruff.json",
        "mypy/mypy.jsonl",
        "mypy/mypy-columns.out",
        "pyright/pyright.json",
        "go/vet.out",
        "go-test/test.jsonl",
        "pytest/pytest.out",
        "pytest/pytest-native.out",
        "jest/jest.json",
        "jest/vitest.json",
        "crash/python.out",
        "crash/rust-backtrace.out",
        "crash/node.out",
        "crash/go.out",
        "crash/rustc.out",
    ];
    files.iter().flat_map(|f| fixture(f).lines().map(str::to_owned).collect::<Vec<_>>()).collect()
}

/// A line: a real one, cut anywhere, with arbitrary text spliced in, or arbitrary text.
fn arbitrary_line(lines: std::sync::Arc<Vec<String>>) -> impl Strategy<Value = String> {
    prop_oneof![
        (0..lines.len(), any::<prop::sample::Index>(), ".{0,12}").prop_map(move |(i, cut, noise)| {
            let line = &lines[i];
            let at = line.char_indices().map(|(at, _)| at).chain([line.len()]).collect::<Vec<_>>();
            let at = at[cut.index(at.len())];
            format!("{}{noise}{}", &line[..at], &line[at..].chars().rev().take(8).collect::<String>())
        }),
        "\\PC{0,80}",
        "[ \\t]*(at |File \"|thread '|panic: |---- |E |_{3,} )[ -~]{0,60}",
        "[a-z/]{1,12}\\.(rs|py|go|ts):[0-9]{1,12}:[0-9]{0,12}:? [ -~]{0,30}",
        "\\{\"(reason|Action|file)\":[ -~]{0,80}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_parser_panics_on_any_lines(lines in prop::collection::vec(arbitrary_line(std::sync::Arc::new(fixture_lines())), 0..40)) {
        for mut parser in every_parser() {
            let mut out = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                let stream = if i % 3 == 0 { Stream::Stderr } else { Stream::Stdout };
                parser.line(stream, line, &mut out);
            }
            parser.finish(&mut out);
            for p in &out {
                prop_assert!(p.span.start.line >= 1 && p.span.start.column >= 1, "{p:?}");
            }
        }
    }
}
