//! Enclosing symbol paths (`parser::Parser::parse_expr`, `module.Class.method`).
//!
//! Walks down from the root towards an offset, so the cost is the depth of the tree and never
//! recursion, and collects the names of the definitions passed on the way.

use tree_sitter::{Node, Tree};

use super::Language;

/// Names longer than this are cut; a symbol path never holds more than this many parts.
const MAX_NAME: usize = 80;
const MAX_PARTS: usize = 16;

/// Enclosing symbol path of a byte offset, or `None` at top level.
pub fn symbol_at(language: Language, tree: &Tree, text: &str, offset: usize) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut cursor = tree.walk();
    loop {
        let node = cursor.node();
        if node.start_byte() > offset {
            break;
        }
        if let Some(name) = definition_name(language, node, text)
            && parts.len() < MAX_PARTS
        {
            parts.push(name);
        }
        if cursor.goto_first_child_for_byte(offset).is_none() {
            break;
        }
    }
    if parts.is_empty() {
        return None;
    }
    let sep = match language {
        Language::Rust => "::",
        _ => ".",
    };
    Some(parts.join(sep))
}

fn text_of<'a>(node: Node<'_>, text: &'a str) -> Option<&'a str> {
    text.get(node.start_byte()..node.end_byte())
}

fn clean(name: &str) -> Option<String> {
    let mut out = String::new();
    for word in name.split_whitespace() {
        if !out.is_empty()
            && !out.ends_with(['<', '(', '[', ':', '&', '*'])
            && !word.starts_with(['>', ')', ']', ',', ':'])
        {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        return None;
    }
    if out.len() > MAX_NAME {
        let mut cut = MAX_NAME;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    Some(out)
}

fn field_text(node: Node<'_>, field: &str, text: &str) -> Option<String> {
    clean(text_of(node.child_by_field_name(field)?, text)?)
}

/// The type name of an `impl` or a Go receiver, without generics, references or pointers.
fn type_name(node: Node<'_>, text: &str) -> Option<String> {
    let mut node = node;
    for _ in 0..8 {
        match node.kind() {
            "generic_type" | "pointer_type" | "reference_type" | "parenthesized_type" => {
                let inner = node.child_by_field_name("type").or_else(|| node.named_child(0))?;
                node = inner;
            }
            _ => break,
        }
    }
    let t = text_of(node, text)?;
    clean(t.split('<').next().unwrap_or(t).trim_start_matches(['*', '&']))
}

fn definition_name(language: Language, node: Node<'_>, text: &str) -> Option<String> {
    let kind = node.kind();
    match language {
        Language::Rust => match kind {
            "mod_item" | "trait_item" | "function_item" | "function_signature_item" => {
                field_text(node, "name", text)
            }
            "impl_item" => type_name(node.child_by_field_name("type")?, text),
            _ => None,
        },
        Language::Python => match kind {
            "class_definition" | "function_definition" => field_text(node, "name", text),
            _ => None,
        },
        Language::JavaScript | Language::TypeScript | Language::Tsx => match kind {
            "class_declaration"
            | "abstract_class_declaration"
            | "class"
            | "function_declaration"
            | "generator_function_declaration"
            | "method_definition"
            | "interface_declaration"
            | "internal_module"
            | "module"
            | "enum_declaration" => field_text(node, "name", text),
            "variable_declarator" | "public_field_definition" | "field_definition" => {
                let value = node.child_by_field_name("value")?;
                if matches!(
                    value.kind(),
                    "arrow_function" | "function_expression" | "function" | "class" | "generator_function"
                ) {
                    field_text(node, "name", text).or_else(|| field_text(node, "property", text))
                } else {
                    None
                }
            }
            _ => None,
        },
        Language::Go => match kind {
            "function_declaration" => field_text(node, "name", text),
            "method_declaration" => {
                let name = field_text(node, "name", text)?;
                let receiver = node.child_by_field_name("receiver")?;
                let param = receiver.named_child(0)?;
                let ty = param.child_by_field_name("type")?;
                match type_name(ty, text) {
                    Some(t) => Some(format!("{t}.{name}")),
                    None => Some(name),
                }
            }
            _ => None,
        },
        Language::Json => match kind {
            "pair" => {
                let key = node.child_by_field_name("key")?;
                let t = text_of(key, text)?;
                clean(t.trim_matches('"'))
            }
            _ => None,
        },
    }
}
