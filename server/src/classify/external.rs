//! Classification of diagnostics that other tools report.
//!
//! Editors forward what rust-analyzer, tsserver, ESLint, Pylance and others publish; tool output
//! is parsed into the same shape. [`category`] decides what kind of problem each one is, from
//! the tool, its code and its message, in that order of trust: codes are stable, messages are a
//! fallback. Unknown tools still get a category from the message patterns all compilers share.

use super::Category;

/// The category of a diagnostic reported by `source` with `code` and `message`.
pub fn category(source: &str, code: Option<&str>, message: &str) -> Category {
    let source = source.to_ascii_lowercase();
    let code = code.unwrap_or("").trim();
    let by_tool = match source.as_str() {
        "rustc" | "rust-analyzer" | "cargo" => rust(code, message),
        "clippy" => Some(Category::Lint),
        "ts" | "typescript" | "tsc" | "tsserver" | "deno-ts" => typescript(code),
        "eslint" | "biome" | "oxlint" => Some(eslint(code, message)),
        "pylance" | "pyright" | "basedpyright" => pyright(code),
        "mypy" => mypy(code),
        "ruff" | "flake8" | "pyflakes" | "pylint" => Some(ruff(code)),
        "go" | "gopls" | "compiler" | "go list" | "typecheck" | "govet" | "staticcheck" => go(code, message),
        _ => None,
    };
    by_tool.unwrap_or_else(|| by_message(message))
}

fn rust(code: &str, message: &str) -> Option<Category> {
    if let Some(number) = code.strip_prefix('E').and_then(|n| n.parse::<u32>().ok()) {
        return Some(match number {
            373 | 381 | 382 | 384 | 499 | 502 | 503 | 505 | 506 | 507 | 508 | 515 | 594 | 596 | 597 | 626
            | 712 | 713 | 716 | 106 | 495 | 621 => Category::Ownership,
            425 | 412 | 423 | 424 | 531 | 599 | 609 | 560 | 407 | 405 | 422 | 574 => Category::Name,
            432 | 433 | 463 | 603 | 583 => Category::Import,
            308 | 277 | 61 | 69 | 282 | 283 | 369 | 600 | 614 | 618 | 271 | 53 | 50 | 60 | 107 | 605
            | 606 | 620 | 631 | 689 => Category::Type,
            _ => Category::Other,
        });
    }
    let category = match code {
        "unresolved-import" | "unresolved-extern-crate" | "unresolved-module" => Category::Import,
        "unresolved-field"
        | "unresolved-method"
        | "unresolved-ident"
        | "unresolved-macro-call"
        | "unresolved-proc-macro"
        | "no-such-field"
        | "unresolved-assoc-item" => Category::Name,
        "type-mismatch"
        | "mismatched-arg-count"
        | "mismatched-tuple-struct-pat-arg-count"
        | "missing-fields"
        | "missing-match-arm"
        | "incorrect-ident-case" => Category::Type,
        "moved-out-of-ref" | "need-mut" | "borrowck" => Category::Ownership,
        "syntax-error" => Category::Syntax,
        "inactive-code" => Category::Other,
        c if c.starts_with("clippy::") => Category::Lint,
        c if c.starts_with("unused") || c.contains('_') && !c.contains('-') => Category::Lint,
        "" => return message_only_rust(message),
        _ => return None,
    };
    Some(category)
}

fn message_only_rust(message: &str) -> Option<Category> {
    let m = message.to_ascii_lowercase();
    if m.starts_with("expected ") || m.starts_with("unexpected ") || m.contains("unclosed delimiter") {
        return Some(Category::Syntax);
    }
    None
}

fn typescript(code: &str) -> Option<Category> {
    let number: u32 = code.trim_start_matches("TS").parse().ok()?;
    Some(match number {
        2304 | 2552 | 2339 | 2551 | 2582 | 18004 | 2663 | 2448 | 2454 | 2576 => Category::Name,
        2307 | 2305 | 2792 | 2614 | 1192 | 2306 | 2497 | 7016 | 2459 | 2724 => Category::Import,
        6133 | 6138 | 6192 | 6196 | 6198 | 7027 | 7028 | 6385 | 6387 => Category::Lint,
        1000..=1499 => Category::Syntax,
        17000..=17999 => Category::Syntax,
        2300..=2999 | 4000..=4999 | 7000..=7999 | 18000..=18999 => Category::Type,
        5000..=6999 => Category::Build,
        _ => Category::Other,
    })
}

fn eslint(code: &str, message: &str) -> Category {
    match code {
        "no-undef" | "no-use-before-define" | "react/jsx-no-undef" => Category::Name,
        c if c.starts_with("import/no-unresolved")
            || c == "n/no-missing-import"
            || c == "node/no-missing-import" =>
        {
            Category::Import
        }
        "" if message.starts_with("Parsing error") => Category::Syntax,
        _ => Category::Lint,
    }
}

fn pyright(code: &str) -> Option<Category> {
    Some(match code {
        "reportUndefinedVariable"
        | "reportAttributeAccessIssue"
        | "reportPossiblyUnbound"
        | "reportUnboundVariable" => Category::Name,
        "reportMissingImports"
        | "reportMissingModuleSource"
        | "reportMissingTypeStubs"
        | "reportPrivateImportUsage"
        | "reportImportCycles" => Category::Import,
        c if c.starts_with("reportUnused")
            || c == "reportUnnecessaryComparison"
            || c == "reportUnnecessaryIsInstance"
            || c == "reportDeprecated" =>
        {
            Category::Lint
        }
        "" => return None,
        _ => Category::Type,
    })
}

fn mypy(code: &str) -> Option<Category> {
    Some(match code {
        "name-defined" | "attr-defined" | "used-before-def" | "possibly-undefined" => Category::Name,
        "import" | "import-not-found" | "import-untyped" => Category::Import,
        "syntax" => Category::Syntax,
        "unused-ignore" | "redundant-cast" | "unreachable" | "redundant-expr" => Category::Lint,
        "" => return None,
        _ => Category::Type,
    })
}

fn ruff(code: &str) -> Category {
    match code {
        "F821" | "F822" | "F823" | "E0602" => Category::Name,
        "E999" | "E902" => Category::Syntax,
        "F401" | "F811" => Category::Lint,
        "E0401" | "E0611" => Category::Import,
        _ => Category::Lint,
    }
}

fn go(code: &str, message: &str) -> Option<Category> {
    let m = message.to_ascii_lowercase();
    if m.starts_with("syntax error") || m.starts_with("expected ") {
        return Some(Category::Syntax);
    }
    if m.starts_with("undefined: ")
        || m.contains("has no field or method")
        || m.contains("not declared by package")
    {
        return Some(Category::Name);
    }
    if m.contains("could not import")
        || m.contains("no required module provides package")
        || m.contains("is not in std")
        || m.contains("\" imported and not used")
        || code == "BrokenImport"
    {
        return Some(Category::Import);
    }
    if m.contains("declared and not used")
        || code.starts_with("SA")
        || code.starts_with("S1")
        || code.starts_with("ST")
    {
        return Some(Category::Lint);
    }
    if m.starts_with("cannot use ")
        || m.contains("mismatched types")
        || m.starts_with("missing return")
        || m.contains("too many arguments")
        || m.contains("not enough arguments")
        || code.starts_with("Incompatible")
        || code == "WrongArgCount"
    {
        return Some(Category::Type);
    }
    None
}

/// Patterns most compilers and runtimes share.
fn by_message(message: &str) -> Category {
    let m = message.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    if any(&[
        "cannot find module",
        "no module named",
        "unresolved import",
        "could not import",
        "modulenotfounderror",
        "importerror",
    ]) {
        Category::Import
    } else if any(&["borrow", "moved value", "does not live long enough", "use of moved"]) {
        Category::Ownership
    } else if any(&[
        "syntax error",
        "syntaxerror",
        "unexpected token",
        "unterminated",
        "parse error",
        "parsing error",
    ]) {
        Category::Syntax
    } else if any(&[
        "is not defined",
        "cannot find name",
        "cannot find value",
        "undefined variable",
        "unresolved reference",
        "nameerror",
        "undefined:",
    ]) {
        Category::Name
    } else if any(&[
        "mismatched types",
        "is not assignable",
        "incompatible type",
        "typeerror",
        "expected type",
        "type mismatch",
    ]) {
        Category::Type
    } else if any(&["assertion", "test failed", "panicked at"]) {
        Category::Test
    } else {
        Category::Other
    }
}

/// The message prepared for fingerprinting: words quoted with `'` or `"` are treated like
/// identifiers in backticks, so that the same mistake on another name reads the same.
pub fn fingerprint_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if (c == '\'' || c == '"')
            && let Some(len) = message[i + 1..].find(c)
        {
            let inner = &message[i + 1..i + 1 + len];
            if !inner.is_empty() && !inner.contains(char::is_whitespace) {
                out.push('`');
                out.push_str(inner);
                out.push('`');
                while chars.peek().is_some_and(|(j, _)| *j <= i + 1 + len) {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_from_source_code_and_message() {
        let cases: &[(&str, Option<&str>, &str, Category)] = &[
            ("rustc", Some("E0308"), "mismatched types", Category::Type),
            ("rustc", Some("E0382"), "borrow of moved value: `v`", Category::Ownership),
            ("rustc", Some("E0425"), "cannot find value `x` in this scope", Category::Name),
            ("rustc", Some("E0432"), "unresolved import `foo`", Category::Import),
            ("rustc", Some("unused_variables"), "unused variable: `x`", Category::Lint),
            ("rustc", None, "expected one of `,` or `)`, found `;`", Category::Syntax),
            ("rust-analyzer", Some("unresolved-import"), "unresolved import", Category::Import),
            ("rust-analyzer", Some("type-mismatch"), "expected i32, found &str", Category::Type),
            ("clippy", Some("clippy::needless_return"), "unneeded `return` statement", Category::Lint),
            ("ts", Some("2322"), "Type 'string' is not assignable to type 'number'.", Category::Type),
            ("ts", Some("2304"), "Cannot find name 'foo'.", Category::Name),
            (
                "ts",
                Some("2307"),
                "Cannot find module './x' or its corresponding type declarations.",
                Category::Import,
            ),
            ("ts", Some("1005"), "';' expected.", Category::Syntax),
            ("ts", Some("6133"), "'x' is declared but its value is never read.", Category::Lint),
            ("eslint", Some("no-unused-vars"), "'a' is assigned a value but never used.", Category::Lint),
            ("eslint", Some("no-undef"), "'process' is not defined.", Category::Name),
            ("eslint", None, "Parsing error: Unexpected token )", Category::Syntax),
            ("Pylance", Some("reportUndefinedVariable"), "\"foo\" is not defined", Category::Name),
            (
                "Pylance",
                Some("reportMissingImports"),
                "Import \"nump\" could not be resolved",
                Category::Import,
            ),
            (
                "Pylance",
                Some("reportArgumentType"),
                "Argument of type \"str\" cannot be assigned",
                Category::Type,
            ),
            ("Pylance", None, "Expected expression", Category::Other),
            ("mypy", Some("name-defined"), "Name \"foo\" is not defined", Category::Name),
            ("mypy", Some("arg-type"), "Argument 1 to \"f\" has incompatible type", Category::Type),
            (
                "mypy",
                Some("import-not-found"),
                "Cannot find implementation or library stub",
                Category::Import,
            ),
            ("Ruff", Some("F821"), "Undefined name `foo`", Category::Name),
            ("Ruff", Some("F401"), "`os` imported but unused", Category::Lint),
            ("Ruff", Some("E999"), "SyntaxError: Expected an expression", Category::Syntax),
            ("compiler", Some("UndeclaredName"), "undefined: fooBar", Category::Name),
            (
                "compiler",
                Some("IncompatibleAssign"),
                "cannot use s (variable of type string) as int value",
                Category::Type,
            ),
            (
                "go list",
                None,
                "could not import example.com/x (no required module provides package)",
                Category::Import,
            ),
            ("compiler", Some("UnusedVar"), "declared and not used: x", Category::Lint),
            ("pytest", None, "AssertionError: assert 1 == 2", Category::Test),
            ("node", None, "TypeError: x is not a function", Category::Type),
            ("unknown", None, "something odd", Category::Other),
        ];
        for (source, code, message, expected) in cases {
            assert_eq!(category(source, *code, message), *expected, "{source} {code:?} {message}");
        }
    }

    #[test]
    fn quoted_words_fingerprint_like_identifiers() {
        assert_eq!(fingerprint_message("\"foo\" is not defined"), "`foo` is not defined");
        assert_eq!(fingerprint_message("Type 'string' is not 'a b'"), "Type `string` is not 'a b'");
        assert_eq!(fingerprint_message("it's fine"), "it's fine");
        let a = super::super::fingerprint(
            &fingerprint_message("\"foo\" is not defined"),
            Category::Name,
            Some("f"),
        );
        let b = super::super::fingerprint(
            &fingerprint_message("\"bar\" is not defined"),
            Category::Name,
            Some("f"),
        );
        assert_eq!(a, b);
    }
}
