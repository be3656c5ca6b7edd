use super::*;
pub struct Document {
    language: Language,
    text: String,
    tree: tree_sitter::Tree,
    diags: Vec<Diagnostic>,
}
fn parse(language: Language, text: &str) -> tree_sitter::Tree {
    let mut p = tree_sitter::Parser::new();
    let l: tree_sitter::Language = match language {
        Language::Rust => tree_sitter_rust::LANGUAGE.into(),
        Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
        Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
        Language::Python => tree_sitter_python::LANGUAGE.into(),
        Language::Go => tree_sitter_go::LANGUAGE.into(),
        Language::Json => tree_sitter_json::LANGUAGE.into(),
    };
    p.set_language(&l).unwrap();
    p.parse(text, None).unwrap()
}
fn diags(tree: &tree_sitter::Tree) -> Vec<Diagnostic> {
    let mut out = vec![];
    let mut c = tree.walk();
    let mut stack = vec![tree.root_node()];
    let _ = &mut c;
    while let Some(n) = stack.pop() {
        if n.is_error() || n.is_missing() {
            out.push(Diagnostic {
                range: n.start_byte()..n.end_byte(),
                severity: Severity::Error,
                category: Category::Syntax,
                message: if n.is_missing() { format!("missing `{}`", n.kind()) } else { "unexpected".into() },
                source: "acas".into(),
                fingerprint: format!("{:x}", n.start_byte()),
                symbol: None,
                related: vec![],
            });
            continue;
        }
        if n.has_error() {
            for i in (0..n.child_count()).rev() {
                stack.push(n.child(i).unwrap());
            }
        }
    }
    out
}
impl Document {
    pub fn new(language: Language, text: String) -> Document {
        let tree = parse(language, &text);
        let diags = diags(&tree);
        Document { language, text, tree, diags }
    }
    pub fn language(&self) -> Language {
        self.language
    }
    pub fn text(&self) -> &str {
        &self.text
    }
    pub fn tree(&self) -> &tree_sitter::Tree {
        &self.tree
    }
    pub fn edit(&mut self, range: Range<usize>, new_text: &str) {
        self.text.replace_range(range, new_text);
    }
    pub fn reparse(&mut self) {
        *self = Document::new(self.language, std::mem::take(&mut self.text));
    }
    pub fn replace(&mut self, text: String) {
        *self = Document::new(self.language, text);
    }
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diags
    }
}
pub fn check(language: Language, text: &str) -> Vec<Diagnostic> {
    diags(&parse(language, text))
}
pub fn symbol_at(_: Language, _: &tree_sitter::Tree, _: &str, _: usize) -> Option<String> {
    None
}
