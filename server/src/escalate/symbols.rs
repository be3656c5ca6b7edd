//! A workspace symbol index from tree-sitter tag queries.
//!
//! Each grammar ships a `tags.scm` query that marks definitions (`@definition.function`,
//! `@definition.class`, …) with their `@name`, and references. [`tags`] runs it over one parsed
//! file; [`SymbolIndex`] keeps the definitions of every file by name, so that the context builder
//! can find what the identifiers near an error refer to. TypeScript and TSX use the JavaScript
//! query plus their own, as tree-sitter's tagging does. JSON has no symbols.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tree_sitter::{Query, QueryCursor, StreamingIterator, Tree};

use crate::classify::Language;

/// One definition found by a tag query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    /// `function`, `method`, `class`, `interface`, `module`, `type`, `macro`, `constant`, …
    pub kind: String,
    /// Workspace-relative path.
    pub path: String,
    /// Bytes of the whole definition.
    pub range: Range<usize>,
    /// Zero-based line where it starts.
    pub line: u32,
}

/// A name used somewhere (a call, a type), from the same queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub range: Range<usize>,
}

fn query(language: Language) -> Option<&'static Query> {
    static QUERIES: OnceLock<HashMap<Language, Option<Query>>> = OnceLock::new();
    QUERIES
        .get_or_init(|| {
            Language::ALL
                .into_iter()
                .map(|l| {
                    let source = match l {
                        Language::Rust => tree_sitter_rust::TAGS_QUERY.to_owned(),
                        Language::Python => tree_sitter_python::TAGS_QUERY.to_owned(),
                        Language::Go => tree_sitter_go::TAGS_QUERY.to_owned(),
                        Language::JavaScript => tree_sitter_javascript::TAGS_QUERY.to_owned(),
                        Language::TypeScript | Language::Tsx => {
                            format!(
                                "{}\n{}",
                                tree_sitter_javascript::TAGS_QUERY,
                                tree_sitter_typescript::TAGS_QUERY
                            )
                        }
                        Language::Json => return (l, None),
                    };
                    let compiled = Query::new(&l.grammar(), &source)
                        .map_err(|e| tracing::error!("the {} tag query does not compile: {e}", l.id()))
                        .ok();
                    (l, compiled)
                })
                .collect()
        })
        .get(&language)
        .and_then(Option::as_ref)
}

/// Definitions and references of one parsed file.
pub fn tags(language: Language, tree: &Tree, text: &str, path: &str) -> (Vec<Definition>, Vec<Reference>) {
    let Some(query) = query(language) else { return (Vec::new(), Vec::new()) };
    let names = query.capture_names();
    let mut definitions = Vec::new();
    let mut references = Vec::new();
    let mut cursor = QueryCursor::new();
    let mut matches = cursor.matches(query, tree.root_node(), text.as_bytes());
    while let Some(m) = matches.next() {
        let mut name = None;
        let mut role = None;
        for capture in m.captures {
            let capture_name = names[capture.index as usize];
            if capture_name == "name" {
                name = Some(capture.node);
            } else if capture_name.starts_with("definition.") || capture_name.starts_with("reference.") {
                role = Some((capture_name, capture.node));
            }
        }
        let (Some(name_node), Some((role, node))) = (name, role) else { continue };
        let Ok(name) = name_node.utf8_text(text.as_bytes()) else { continue };
        if let Some(kind) = role.strip_prefix("definition.") {
            definitions.push(Definition {
                name: name.to_owned(),
                kind: kind.to_owned(),
                path: path.to_owned(),
                range: node.byte_range(),
                line: node.start_position().row as u32,
            });
        } else {
            references.push(Reference { name: name.to_owned(), range: name_node.byte_range() });
        }
    }
    (definitions, references)
}

/// Definitions of the whole workspace, by name.
#[derive(Debug, Default)]
pub struct SymbolIndex {
    by_name: HashMap<String, Vec<Definition>>,
    by_path: HashMap<String, Vec<String>>,
}

impl SymbolIndex {
    /// Replaces what the index knows of one file.
    pub fn update(&mut self, path: &str, definitions: Vec<Definition>) {
        self.remove(path);
        let names: Vec<String> = definitions.iter().map(|d| d.name.clone()).collect();
        for definition in definitions {
            self.by_name.entry(definition.name.clone()).or_default().push(definition);
        }
        self.by_path.insert(path.to_owned(), names);
    }

    pub fn remove(&mut self, path: &str) {
        for name in self.by_path.remove(path).unwrap_or_default() {
            if let Some(list) = self.by_name.get_mut(&name) {
                list.retain(|d| d.path != path);
                if list.is_empty() {
                    self.by_name.remove(&name);
                }
            }
        }
    }

    pub fn lookup(&self, name: &str) -> &[Definition] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    pub fn files(&self) -> usize {
        self.by_path.len()
    }

    pub fn definitions(&self) -> usize {
        self.by_name.values().map(Vec::len).sum()
    }

    /// Indexes every file under `root` that the walk yields, reading each from disk.
    pub fn build(root: &Path, files: &[PathBuf], max_size: u64) -> SymbolIndex {
        let mut index = SymbolIndex::default();
        for path in files {
            index.refresh(root, path, max_size);
        }
        index
    }

    /// Reads one file again from disk: its definitions replace what the index had of it, or
    /// leave the index when it is gone or no longer readable source.
    pub fn refresh(&mut self, root: &Path, path: &Path, max_size: u64) {
        let relative = crate::files::relative(root, path);
        let language = Language::from_path(path);
        match (language, crate::files::read_source(path, max_size)) {
            (Some(language), Ok(text)) => {
                let doc = crate::classify::Document::new(language, text);
                let (definitions, _) = tags(language, doc.tree(), doc.text(), &relative);
                self.update(&relative, definitions);
            }
            _ => self.remove(&relative),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Document;

    fn defs(language: Language, text: &str) -> Vec<(String, String, u32)> {
        let doc = Document::new(language, text.to_owned());
        let (definitions, _) = tags(language, doc.tree(), doc.text(), "f");
        definitions.into_iter().map(|d| (d.name, d.kind, d.line)).collect()
    }

    #[test]
    fn every_language_with_a_tag_query_finds_definitions() {
        let rust = defs(
            Language::Rust,
            "struct Point { x: i32 }\nimpl Point {\n    fn norm(&self) -> i32 { self.x }\n}\nfn main() {}\n",
        );
        assert!(rust.contains(&("Point".into(), "class".into(), 0)), "{rust:?}");
        assert!(rust.contains(&("norm".into(), "method".into(), 2)), "{rust:?}");
        assert!(rust.contains(&("main".into(), "function".into(), 4)), "{rust:?}");
        let python = defs(
            Language::Python,
            "class Job:\n    def run(self):\n        pass\n\ndef helper():\n    pass\n",
        );
        assert!(
            python.contains(&("Job".into(), "class".into(), 0)) && python.iter().any(|d| d.0 == "helper"),
            "{python:?}"
        );
        let ts = defs(
            Language::TypeScript,
            "interface User { name: string }\nexport function greet(u: User) { return u.name; }\n",
        );
        assert!(ts.iter().any(|d| d.0 == "User") && ts.iter().any(|d| d.0 == "greet"), "{ts:?}");
        let go = defs(
            Language::Go,
            "package main\n\ntype Server struct{}\n\nfunc (s *Server) Start() {}\n\nfunc main() {}\n",
        );
        assert!(go.iter().any(|d| d.0 == "Start") && go.iter().any(|d| d.0 == "Server"), "{go:?}");
        let js = defs(Language::JavaScript, "class A { m() {} }\nfunction f() {}\nconst g = () => 1;\n");
        assert!(js.iter().any(|d| d.0 == "A") && js.iter().any(|d| d.0 == "f"), "{js:?}");
        assert!(defs(Language::Json, "{\"a\": 1}").is_empty());
    }

    #[test]
    fn the_index_replaces_and_forgets_files() {
        let mut index = SymbolIndex::default();
        let def = |name: &str, path: &str| Definition {
            name: name.into(),
            kind: "function".into(),
            path: path.into(),
            range: 0..1,
            line: 0,
        };
        index.update("a.rs", vec![def("parse", "a.rs"), def("run", "a.rs")]);
        index.update("b.rs", vec![def("parse", "b.rs")]);
        assert_eq!(index.lookup("parse").len(), 2);
        index.update("a.rs", vec![def("run", "a.rs")]);
        assert_eq!(index.lookup("parse").len(), 1);
        index.remove("b.rs");
        assert!(index.lookup("parse").is_empty());
        assert_eq!((index.files(), index.definitions()), (1, 1));
    }
}
