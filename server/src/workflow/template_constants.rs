//! Bounds the work the template compiler does on constants, before it does it.
//!
//! minijinja folds constant expressions when it compiles a template: `{{ "x" * 100000000 }}`,
//! `{{ [1] * 100000000 }}` or a chain of `~` between string literals is evaluated by the
//! compiler, in whatever process compiles, before fuel or any output limit applies. Templates
//! are compiled in ACAS itself to validate workflow files (the CLI and the editor's live
//! diagnostics) and to find what a step reads, so a constant like that would be built there.
//!
//! [`check`] parses the template with minijinja's parser, which does not fold, and works out an
//! upper bound of every value the compiler would fold, of its display, and of the bytes the
//! compiler would build on the way (it tries to fold every expression it compiles, so a
//! constant deep in a chain of operators is built once for each operator above it). A template
//! whose bound passes the budget (the output limit, `[workflows] template_max_bytes`) is
//! refused with its line and column; nothing of it is evaluated. Only then is it compiled. The
//! bound is conservative: a multiplier it cannot work out counts as unbounded.
//!
//! What this does not do: bound what a template does when it renders (fuel, the output limit
//! and the render process do that).

use minijinja::machinery::ast::{self, BinOpKind, CallArg, Expr, Stmt, UnaryOpKind};
use minijinja::syntax::SyntaxConfig;

/// Why a template was refused before it was compiled.
#[derive(Debug)]
pub enum Refusal {
    /// The template does not parse: minijinja's message, with its line.
    Syntax(minijinja::Error),
    /// A constant would be larger than the budget; where it starts.
    TooLarge { line: u16, column: u16 },
    /// Expressions nest deeper than [`MAX_DEPTH`] (the compiler recurses once per level);
    /// where the expression starts.
    TooDeep { line: u16, column: u16 },
}

/// How deep expressions may nest: `a ~ b ~ c ...` nests once per operator.
pub const MAX_DEPTH: usize = 200;

/// What a folded constant may be, as far as its size goes.
#[derive(Debug, Clone, Copy)]
struct Est {
    /// An upper bound of the bytes the value holds and of its display.
    bytes: u64,
    /// The value, when it is an integer (the multiplier of a repetition).
    int: Option<i128>,
    /// Whether it may be a string or a sequence (something `*` repeats).
    text: bool,
    /// Whether it may be a sequence or a map, whose display quotes and escapes its strings.
    seq: bool,
}

/// Every value costs at least this much (a `Value`, a separator in a display).
const OVERHEAD: u64 = 16;

/// Checks `source` (a template, or with `expression` a bare expression) for constants whose
/// folding would build more than `budget` bytes.
pub fn check(source: &str, expression: bool, syntax: SyntaxConfig, budget: u64) -> Result<(), Refusal> {
    operators(source, expression, syntax.clone())?;
    let mut walk = Walk { budget, spent: 0 };
    if expression {
        let expr = minijinja::machinery::parse_expr(source).map_err(Refusal::Syntax)?;
        walk.expr(&expr)
    } else {
        let stmt = minijinja::machinery::parse(source, "<template>", syntax).map_err(Refusal::Syntax)?;
        walk.stmt(&stmt)
    }
}

/// How many operators one `{{ }}` or `{% %}` block may hold. The parser builds a chain of
/// operators (`a ~ b ~ c ...`) as a tree as deep as the chain, which the compiler, and dropping
/// the tree, recurse through: a chain of many thousands would overflow the stack. Counted on
/// the tokens, before anything is parsed.
const MAX_OPERATORS: usize = 1000;

fn operators(source: &str, expression: bool, syntax: SyntaxConfig) -> Result<(), Refusal> {
    use minijinja::machinery::Token;
    let mut count = 0usize;
    for token in minijinja::machinery::tokenize(source, expression, syntax) {
        // A template that does not lex is reported by the parser.
        let Ok((token, span)) = token else { return Ok(()) };
        let operator = match token {
            Token::VariableStart | Token::BlockStart => {
                count = 0;
                false
            }
            Token::Ident(word) => matches!(word, "and" | "or" | "not" | "in" | "is" | "if"),
            Token::TemplateData(_)
            | Token::VariableEnd
            | Token::BlockEnd
            | Token::Str(_)
            | Token::String(_)
            | Token::Int(_)
            | Token::Int128(_)
            | Token::Float(_)
            | Token::Comma
            | Token::Colon
            | Token::Assign
            | Token::ParenClose
            | Token::BracketClose
            | Token::BraceClose => false,
            _ => true,
        };
        if operator {
            count += 1;
            if count > MAX_OPERATORS {
                return Err(Walk::too_deep(span));
            }
        }
    }
    Ok(())
}

struct Walk {
    budget: u64,
    spent: u64,
}

impl Walk {
    fn too_large(span: minijinja::machinery::Span) -> Refusal {
        Refusal::TooLarge { line: span.start_line, column: span.start_col + 1 }
    }

    fn too_deep(span: minijinja::machinery::Span) -> Refusal {
        Refusal::TooDeep { line: span.start_line, column: span.start_col + 1 }
    }

    fn stmts(&mut self, stmts: &[Stmt<'_>]) -> Result<(), Refusal> {
        stmts.iter().try_for_each(|s| self.stmt(s))
    }

    fn stmt(&mut self, stmt: &Stmt<'_>) -> Result<(), Refusal> {
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::ForLoop(f) => {
                self.expr(&f.target)?;
                self.expr(&f.iter)?;
                if let Some(filter) = &f.filter_expr {
                    self.expr(filter)?;
                }
                self.stmts(&f.body)?;
                self.stmts(&f.else_body)
            }
            Stmt::IfCond(c) => {
                self.expr(&c.expr)?;
                self.stmts(&c.true_body)?;
                self.stmts(&c.false_body)
            }
            Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    self.expr(target)?;
                    self.expr(value)?;
                }
                self.stmts(&w.body)
            }
            Stmt::Set(s) => {
                self.expr(&s.target)?;
                self.expr(&s.expr)
            }
            Stmt::SetBlock(s) => {
                if let Some(filter) = &s.filter {
                    self.expr(filter)?;
                }
                self.stmts(&s.body)
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled)?;
                self.stmts(&a.body)
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter)?;
                self.stmts(&f.body)
            }
            Stmt::Block(b) => self.stmts(&b.body),
            Stmt::Import(i) => {
                self.expr(&i.expr)?;
                self.expr(&i.name)
            }
            Stmt::FromImport(i) => self.expr(&i.expr),
            Stmt::Extends(e) => self.expr(&e.name),
            Stmt::Include(i) => self.expr(&i.name),
            Stmt::Macro(m) => self.macro_(m),
            Stmt::CallBlock(c) => {
                self.call(&c.call)?;
                self.macro_(&c.macro_decl)
            }
            Stmt::Do(d) => self.call(&d.call),
            _ => Ok(()),
        }
    }

    fn macro_(&mut self, m: &ast::Macro<'_>) -> Result<(), Refusal> {
        for e in m.args.iter().chain(&m.defaults) {
            self.expr(e)?;
        }
        self.stmts(&m.body)
    }

    fn call(&mut self, call: &ast::Call<'_>) -> Result<(), Refusal> {
        self.expr(&call.expr)?;
        self.args(&call.args)
    }

    fn args(&mut self, args: &[CallArg<'_>]) -> Result<(), Refusal> {
        for arg in args {
            match arg {
                CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => {
                    self.expr(e)?
                }
            }
        }
        Ok(())
    }

    /// Walks an expression the way the compiler does: it tries to fold every expression it
    /// compiles (which builds the constants inside even when the whole is not constant), and
    /// compiles the parts of one it could not fold in turn.
    fn expr(&mut self, expr: &Expr<'_>) -> Result<(), Refusal> {
        self.nested(expr, 0)
    }

    fn nested(&mut self, expr: &Expr<'_>, depth: usize) -> Result<(), Refusal> {
        if depth > MAX_DEPTH {
            return Err(Walk::too_deep(expr.span()));
        }
        let mut built = 0u64;
        let folded = fold(expr, &mut built, self.budget, 0).map_err(|()| Walk::too_deep(expr.span()))?;
        self.spent = self.spent.saturating_add(built);
        if self.spent > self.budget || folded.is_some_and(|est| est.bytes > self.budget) {
            return Err(Walk::too_large(expr.span()));
        }
        if folded.is_some() {
            return Ok(());
        }
        match expr {
            Expr::Var(_) | Expr::Const(_) => Ok(()),
            Expr::Slice(s) => {
                self.nested(&s.expr, depth + 1)?;
                for e in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.nested(e, depth + 1)?;
                }
                Ok(())
            }
            Expr::UnaryOp(u) => self.nested(&u.expr, depth + 1),
            Expr::BinOp(b) => {
                self.nested(&b.left, depth + 1)?;
                self.nested(&b.right, depth + 1)
            }
            Expr::Compare(c) => {
                self.nested(&c.expr, depth + 1)?;
                c.ops.iter().try_for_each(|op| self.nested(&op.expr, depth + 1))
            }
            Expr::IfExpr(i) => {
                self.nested(&i.test_expr, depth + 1)?;
                self.nested(&i.true_expr, depth + 1)?;
                match &i.false_expr {
                    Some(e) => self.nested(e, depth + 1),
                    None => Ok(()),
                }
            }
            Expr::Filter(f) => {
                if let Some(e) = &f.expr {
                    self.nested(e, depth + 1)?;
                }
                self.args(&f.args)
            }
            Expr::Test(t) => {
                self.nested(&t.expr, depth + 1)?;
                self.args(&t.args)
            }
            Expr::GetAttr(g) => self.nested(&g.expr, depth + 1),
            Expr::GetItem(g) => {
                self.nested(&g.expr, depth + 1)?;
                self.nested(&g.subscript_expr, depth + 1)
            }
            Expr::Call(c) => self.call(c),
            Expr::List(l) => l.items.iter().try_for_each(|e| self.nested(e, depth + 1)),
            Expr::Tuple(t) => t.items.iter().try_for_each(|e| self.nested(e, depth + 1)),
            Expr::Map(m) => m.keys.iter().chain(&m.values).try_for_each(|e| self.nested(e, depth + 1)),
        }
    }
}

/// An upper bound of what the compiler's folding of `expr` gives, or `None` when it does not
/// fold it. `built` adds up the bytes of every value built on the way; folding stops once it
/// passes `budget` (the answer is then only known to be too large).
fn fold(expr: &Expr<'_>, built: &mut u64, budget: u64, depth: usize) -> Result<Option<Est>, ()> {
    if depth > MAX_DEPTH {
        return Err(());
    }
    if *built > budget {
        return Ok(Some(Est { bytes: u64::MAX, int: None, text: true, seq: true }));
    }
    let depth = depth + 1;
    // `?` on a part that does not fold: neither does the whole.
    macro_rules! part {
        ($e:expr) => {
            match fold($e, built, budget, depth)? {
                Some(est) => est,
                None => return Ok(None),
            }
        };
    }
    let est = match expr {
        Expr::Const(c) => {
            let value = &c.value;
            let text = value.as_str().is_some();
            let bytes = match value.as_str() {
                Some(s) => s.len() as u64,
                None => value.to_string().len() as u64 + OVERHEAD,
            };
            let int = if value.is_integer() { i128::try_from(value.clone()).ok() } else { None };
            Est { bytes, int, text, seq: false }
        }
        Expr::List(l) => match seq(&l.items, built, budget, depth)? {
            Some(est) => est,
            None => return Ok(None),
        },
        Expr::Tuple(t) => match seq(&t.items, built, budget, depth)? {
            Some(est) => est,
            None => return Ok(None),
        },
        Expr::Map(m) => {
            if !m.keys.iter().chain(&m.values).all(|e| matches!(e, Expr::Const(_))) {
                return Ok(None);
            }
            let mut bytes = OVERHEAD;
            for e in m.keys.iter().chain(&m.values) {
                bytes = bytes.saturating_add(part!(e).bytes);
            }
            Est { bytes, int: None, text: true, seq: true }
        }
        Expr::UnaryOp(u) => {
            let inner = part!(&u.expr);
            match u.op {
                UnaryOpKind::Not => small(None),
                UnaryOpKind::Neg => small(inner.int.and_then(i128::checked_neg)),
            }
        }
        Expr::BinOp(b) => {
            let left = fold(&b.left, built, budget, depth)?;
            let right = fold(&b.right, built, budget, depth)?;
            match (left, right) {
                (Some(left), Some(right)) => binop(b.op, left, right),
                _ => return Ok(None),
            }
        }
        Expr::Compare(c) => {
            part!(&c.expr);
            for op in &c.ops {
                part!(&op.expr);
            }
            small(None)
        }
        _ => return Ok(None),
    };
    *built = built.saturating_add(est.bytes);
    Ok(Some(est))
}

fn seq(items: &[Expr<'_>], built: &mut u64, budget: u64, depth: usize) -> Result<Option<Est>, ()> {
    let mut bytes = OVERHEAD;
    for e in items {
        match fold(e, built, budget, depth)? {
            Some(est) => bytes = bytes.saturating_add(est.bytes).saturating_add(OVERHEAD),
            None => return Ok(None),
        }
    }
    Ok(Some(Est { bytes, int: None, text: true, seq: true }))
}

/// A number or a boolean.
fn small(int: Option<i128>) -> Est {
    Est { bytes: 64, int, text: false, seq: false }
}

fn binop(op: BinOpKind, left: Est, right: Est) -> Est {
    let text = left.text || right.text;
    let seq = left.seq || right.seq;
    // The display of a sequence quotes and escapes its strings: at most six bytes for one.
    let shown = |e: Est| if e.seq { e.bytes.saturating_mul(6) } else { e.bytes };
    match op {
        BinOpKind::Mul if text => {
            // What repeats is the text side; a multiplier that is not a known integer counts as
            // unbounded.
            let (repeated, times) = if left.text { (left, right) } else { (right, left) };
            let times = times.int.map_or(u64::MAX, |n| u64::try_from(n.max(0)).unwrap_or(u64::MAX));
            let bytes = if left.text && right.text {
                u64::MAX
            } else {
                repeated.bytes.saturating_mul(times).saturating_add(OVERHEAD)
            };
            Est { bytes, int: None, text: true, seq: repeated.seq }
        }
        BinOpKind::Concat => {
            Est { bytes: shown(left).saturating_add(shown(right)), int: None, text: true, seq: false }
        }
        BinOpKind::Add if text => Est { bytes: left.bytes.saturating_add(right.bytes), int: None, text, seq },
        BinOpKind::ScAnd | BinOpKind::ScOr => {
            Est { bytes: left.bytes.max(right.bytes), int: None, text, seq }
        }
        BinOpKind::Add => small(left.int.zip(right.int).and_then(|(a, b)| a.checked_add(b))),
        BinOpKind::Sub => small(left.int.zip(right.int).and_then(|(a, b)| a.checked_sub(b))),
        BinOpKind::Mul => small(left.int.zip(right.int).and_then(|(a, b)| a.checked_mul(b))),
        BinOpKind::Pow => {
            small(left.int.zip(right.int).and_then(|(a, b)| a.checked_pow(u32::try_from(b).ok()?)))
        }
        _ => small(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(source: &str, expression: bool) -> bool {
        matches!(check(source, expression, SyntaxConfig::default(), 1 << 20), Err(Refusal::TooLarge { .. }))
    }

    #[test]
    fn large_constants_are_refused_small_ones_pass() {
        for hostile in [
            "{{ 'x' * 100000000 }}",
            "{{ [1] * 100000000 }}",
            "{{ 'x' * 10**9 }}",
            "{{ ('ab' * 400000) ~ ('cd' * 400000) }}",
            "{{ (('x' * 100000) ~ ('x' * 100000)) * 100 }}",
            "{% set s = 'x' * (2 ** 40) %}{{ s }}",
            "{% for i in ['a'] * 100000000 %}{% endfor %}",
            "{{ 'x' * (1 or 9000000000) }}",
        ] {
            assert!(refused(hostile, false), "{hostile}");
        }
        assert!(refused("'x' * 100000000", true));
        for fine in [
            "{{ 'x' * 80 }}",
            "{{ 'a' ~ 'b' ~ inputs.x }}",
            "{{ [1, 2, 3] }}",
            "{{ s * 100000000 }}",
            "{% for i in range(10) %}{{ i * 2 }}{% endfor %}",
            "{{ 1 + 2 == 3 and not false }}",
        ] {
            assert!(!refused(fine, false), "{fine}");
        }
    }

    #[test]
    fn refusals_say_where() {
        let e = check("a\n  {{ 'x' * 100000000 }}", false, SyntaxConfig::default(), 1 << 20).unwrap_err();
        assert!(matches!(e, Refusal::TooLarge { line: 2, column: 6 }), "{e:?}");
        assert!(matches!(
            check("{{ unclosed", false, SyntaxConfig::default(), 1 << 20),
            Err(Refusal::Syntax(_))
        ));
    }

    /// A constant folded again by each operator around it counts each time; chains deeper than
    /// the compiler can recurse are refused.
    #[test]
    fn refolding_and_depth_count() {
        let chain = format!("{{{{ ('x' * 10000){} }}}}", " ~ v".repeat(150));
        assert!(refused(&chain, false));
        assert!(!refused("{{ ('x' * 1000) ~ v ~ v }}", false));
        for n in [500, 100_000] {
            let deep = format!("{{{{ v{} }}}}", " ~ v".repeat(n));
            let e = check(&deep, false, SyntaxConfig::default(), 1 << 20).unwrap_err();
            assert!(matches!(e, Refusal::TooDeep { line: 1, .. }), "{e:?}");
        }
    }
}
