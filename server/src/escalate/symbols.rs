//! A workspace symbol index from tree-sitter tag queries.
//!
//! Each grammar ships a `tags.scm` query that marks definitions (`@definition.function`,
//! `@definition.class`, …) with their `@name`, and references. [`tags`] runs it over one parsed
//! file; [`SymbolIndex`] keeps the definitions of every file by name, so that the context builder
//! can find what the identifiers near an error refer to. TypeScript and TSX use the JavaScript
//! query plus their own, as tree-sitter's tagging does. JSON has no symbols.
//!
//! The index can be kept in the store ([`SymbolIndex::load`], [`SymbolIndex::refresh`]): each
//! file's definitions with the size, modification time and SHA-256 of the text they came from.
//! Loading checks every stored row before using it (its encoding, language, path and the bounds
//! of every definition; a row that fails is indexed again from the file) and then every file
//! against its row: a file whose size and modification time are those recorded, and that was not
//! modified within [`RACY_MS`] of being indexed, is taken as it was; any other file is read
//! again, and tagged again only when its hash changed. Files no longer given are dropped. It does
//! not watch the disk: the caller says which files changed.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tree_sitter::{Node, Query, QueryCursor, StreamingIterator, Tree};

use crate::classify::Language;
use crate::store::{Record, Store, SymbolFile, SymbolText};

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
    /// A declaration without a body (`mod name;`, a signature, a `.d.ts` file's content).
    pub declaration: bool,
}

/// A name used somewhere (a call, a type), from the same queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub range: Range<usize>,
}

/// The tag query of one language, compiled the first time that language is tagged: compiling
/// every grammar's query up front costs a short-lived process (`acas explain`) over 100 ms.
fn query(language: Language) -> Option<&'static Query> {
    static QUERIES: [OnceLock<Option<Query>>; Language::ALL.len()] =
        [const { OnceLock::new() }; Language::ALL.len()];
    let slot = Language::ALL.iter().position(|&l| l == language)?;
    QUERIES[slot]
        .get_or_init(|| {
            let source = match language {
                Language::Rust => tree_sitter_rust::TAGS_QUERY.to_owned(),
                Language::Python => tree_sitter_python::TAGS_QUERY.to_owned(),
                Language::Go => tree_sitter_go::TAGS_QUERY.to_owned(),
                Language::JavaScript => tree_sitter_javascript::TAGS_QUERY.to_owned(),
                Language::TypeScript | Language::Tsx => {
                    format!("{}\n{}", tree_sitter_javascript::TAGS_QUERY, tree_sitter_typescript::TAGS_QUERY)
                }
                Language::Json => return None,
            };
            Query::new(&language.grammar(), &source)
                .map_err(|e| tracing::error!("the {} tag query does not compile: {e}", language.id()))
                .ok()
        })
        .as_ref()
}

/// Definitions and references of one parsed file.
///
/// Beyond what the grammar's tag query finds: a Rust function inside an `impl` or trait is one
/// `method` (the query also tags it as a `function`); items inside a Rust macro invocation at
/// item level (`cfg_not_rt! { pub fn spawn() {} }`) are tagged when its body parses as items;
/// a JavaScript or TypeScript name bound to an arrow function or function expression behind
/// parentheses, `as`, `satisfies` or `!`, or held by a class field, is a `function`. Declarations
/// without a body (`mod name;`, signatures, anything in a `.d.ts` file) are marked as such so
/// that the context prefers the definition.
pub fn tags(language: Language, tree: &Tree, text: &str, path: &str) -> (Vec<Definition>, Vec<Reference>) {
    let mut definitions = Vec::new();
    let mut references = Vec::new();
    tag_into(language, tree, text, path, 0, 0, 0, &mut definitions, &mut references);
    // One definition per node: the first pattern that tagged it (methods come before functions).
    let mut seen = std::collections::HashSet::new();
    definitions.retain(|d| seen.insert((d.range.start, d.range.end, d.name.clone())));
    definitions.sort_by_key(|d| (d.range.start, std::cmp::Reverse(d.range.end)));
    (definitions, references)
}

/// How deep macro bodies are tagged inside one another.
const MAX_MACRO_DEPTH: u32 = 4;

#[allow(clippy::too_many_arguments)]
fn tag_into(
    language: Language,
    tree: &Tree,
    text: &str,
    path: &str,
    offset: usize,
    line_offset: u32,
    depth: u32,
    definitions: &mut Vec<Definition>,
    references: &mut Vec<Reference>,
) {
    let Some(query) = query(language) else { return };
    let names = query.capture_names();
    let declarations_only = path.ends_with(".d.ts") || path.ends_with(".d.mts") || path.ends_with(".d.cts");
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
            // Rust's query calls every function in braces a method, those of `mod m { … }` too.
            let in_module = node.parent().and_then(|p| p.parent()).is_some_and(|g| g.kind() == "mod_item");
            let kind = if kind == "method" && in_module { "function" } else { kind };
            definitions.push(Definition {
                name: name.to_owned(),
                kind: kind.to_owned(),
                path: path.to_owned(),
                range: node.start_byte() + offset..node.end_byte() + offset,
                line: node.start_position().row as u32 + line_offset,
                declaration: declarations_only || is_declaration(node),
            });
        } else {
            references.push(Reference {
                name: name.to_owned(),
                range: name_node.start_byte() + offset..name_node.end_byte() + offset,
            });
        }
    }
    let mut extra = Vec::new();
    walk(tree.root_node(), &mut |node| match language {
        Language::Rust if depth < MAX_MACRO_DEPTH => {
            if let Some(body) = item_macro_body(node) {
                extra.push(body);
            }
        }
        Language::JavaScript | Language::TypeScript | Language::Tsx => {
            if let Some((name, whole)) = wrapped_function(node, text) {
                definitions.push(Definition {
                    name,
                    kind: "function".to_owned(),
                    path: path.to_owned(),
                    range: whole.start_byte() + offset..whole.end_byte() + offset,
                    line: whole.start_position().row as u32 + line_offset,
                    declaration: declarations_only,
                });
            }
        }
        _ => {}
    });
    for body in extra {
        // The tokens between the braces, parsed on their own as a file of items.
        let inner = body.start_byte() + 1..body.end_byte().saturating_sub(1);
        let Some(inner_text) = text.get(inner.clone()) else { continue };
        let inner_tree = crate::classify::parse_tree(language, inner_text, None);
        let root = inner_tree.root_node();
        let mut found = Vec::new();
        let mut ignored = Vec::new();
        tag_into(
            language,
            &inner_tree,
            inner_text,
            path,
            offset + inner.start,
            line_offset + body.start_position().row as u32,
            depth + 1,
            &mut found,
            &mut ignored,
        );
        // Only what parsed cleanly: a half-recovered item would send the wrong code.
        definitions.extend(found.into_iter().filter(|d| {
            let start = d.range.start - offset - inner.start;
            let end = d.range.end - offset - inner.start;
            root.descendant_for_byte_range(start, end).is_some_and(|n| !n.has_error())
        }));
        references.extend(ignored);
    }
}

/// Whether a tagged node declares without defining: `mod name;`, a signature.
fn is_declaration(node: Node<'_>) -> bool {
    match node.kind() {
        "mod_item" => node.child_by_field_name("body").is_none(),
        "function_signature"
        | "method_signature"
        | "abstract_method_signature"
        | "function_signature_item" => true,
        _ => node.parent().is_some_and(|p| p.kind() == "ambient_declaration"),
    }
}

/// The `{ … }` body of a Rust macro invocation that stands where items do.
fn item_macro_body(node: Node<'_>) -> Option<Node<'_>> {
    if node.kind() != "macro_invocation" {
        return None;
    }
    // Only at item level: a macro called inside a function body (`vec![…]`, `format!(…)`)
    // holds expressions, not items.
    if !matches!(node.parent()?.kind(), "source_file" | "declaration_list") {
        return None;
    }
    let body = node.named_child(node.named_child_count().checked_sub(1)?)?;
    (body.kind() == "token_tree").then_some(body)
}

/// A name bound to a function the tag query misses: `const f = (<T>(x) => …)`,
/// `const f = (() => 1) as F`, `const f = function () {} satisfies F`, `handle = () => {}` in a class.
fn wrapped_function<'t>(node: Node<'t>, text: &str) -> Option<(String, Node<'t>)> {
    let (name, value) = match node.kind() {
        "variable_declarator" => (node.child_by_field_name("name")?, node.child_by_field_name("value")?),
        "public_field_definition" | "field_definition" => (
            node.child_by_field_name("name").or_else(|| node.child_by_field_name("property"))?,
            node.child_by_field_name("value")?,
        ),
        _ => return None,
    };
    if !matches!(name.kind(), "identifier" | "property_identifier" | "private_property_identifier") {
        return None;
    }
    let direct = matches!(value.kind(), "arrow_function" | "function_expression" | "function");
    if direct && node.kind() == "variable_declarator" {
        // The grammar's own query tags these.
        return None;
    }
    let mut inner = value;
    while matches!(
        inner.kind(),
        "parenthesized_expression"
            | "as_expression"
            | "satisfies_expression"
            | "non_null_expression"
            | "type_assertion"
    ) {
        inner = (0..inner.named_child_count())
            .filter_map(|i| inner.named_child(i))
            .find(|c| !c.kind().ends_with("type") && c.kind() != "type_arguments")?;
    }
    if !matches!(inner.kind(), "arrow_function" | "function_expression" | "function") {
        return None;
    }
    Some((name.utf8_text(text.as_bytes()).ok()?.to_owned(), node))
}

/// Calls `f` on every node of the tree, parents first.
fn walk<'t>(root: Node<'t>, f: &mut dyn FnMut(Node<'t>)) {
    let mut cursor = root.walk();
    loop {
        f(cursor.node());
        if cursor.goto_first_child() || cursor.goto_next_sibling() {
            continue;
        }
        loop {
            if !cursor.goto_parent() {
                return;
            }
            if cursor.goto_next_sibling() {
                break;
            }
        }
    }
}

/// Definitions of the whole workspace, by name.
#[derive(Debug, Default)]
pub struct SymbolIndex {
    by_name: HashMap<String, Vec<Definition>>,
    by_path: HashMap<String, Vec<String>>,
    /// The names each file uses (calls, types), for the reference graph.
    uses: HashMap<String, Vec<String>>,
    /// What each file was when it was indexed.
    stamps: HashMap<String, Stamp>,
    /// Where the definitions of other texts than the files' current ones are kept.
    texts: TextStore,
}

/// The store that keeps the definitions of texts by hash ([`SymbolIndex::tags_of_text`]), if any.
#[derive(Default)]
struct TextStore(Option<Store>);

impl std::fmt::Debug for TextStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "TextStore(stored)" } else { "TextStore(none)" })
    }
}

/// A file as it was when indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    hash: String,
    size: u64,
    mtime_ns: i64,
    indexed_ms: i64,
}

impl Stamp {
    /// Whether the file was modified so close to being indexed that a later change could keep
    /// its modification time (coarse file-system clocks): then its size and time prove nothing.
    fn racy(&self) -> bool {
        self.mtime_ns / 1_000_000 + RACY_MS >= self.indexed_ms
    }
}

/// A file modified less than this long before it was indexed is read again on the next check
/// even when its size and modification time are unchanged.
pub const RACY_MS: i64 = 2_000;

/// The version of the stored encoding of a file's definitions; a row of another version is
/// indexed again.
const ENTRIES_FORMAT: i64 = 1;

/// Stored rows are written in batches of this many records.
const RECORD_BATCH: usize = 1_000;

/// What is stored of one file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Entries {
    definitions: Vec<Entry>,
    /// The names it uses, each once.
    uses: Vec<String>,
}

/// One definition as stored (its path is the row's).
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    name: String,
    kind: String,
    start: usize,
    end: usize,
    line: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    declaration: bool,
}

impl Entry {
    fn of(d: &Definition) -> Entry {
        Entry {
            name: d.name.clone(),
            kind: d.kind.clone(),
            start: d.range.start,
            end: d.range.end,
            line: d.line,
            declaration: d.declaration,
        }
    }
}

/// What bringing the index up to date did, in files.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    /// Taken as they were: unchanged size and time, or read again with an unchanged hash.
    pub reused: usize,
    /// Parsed and tagged.
    pub tagged: usize,
    /// Gone, unreadable, or no longer among the files given.
    pub dropped: usize,
    /// Stored rows that did not read back whole and were ignored.
    pub rejected: usize,
}

impl SymbolIndex {
    /// Replaces what the index knows of one file.
    pub fn update(&mut self, path: &str, definitions: Vec<Definition>) {
        self.remove(path);
        let mut names: Vec<String> = definitions.iter().map(|d| d.name.clone()).collect();
        names.sort();
        names.dedup();
        for definition in definitions {
            self.by_name.entry(definition.name.clone()).or_default().push(definition);
        }
        self.by_path.insert(path.to_owned(), names);
    }

    /// Replaces the names one file uses.
    pub fn set_uses(&mut self, path: &str, mut names: Vec<String>) {
        names.sort();
        names.dedup();
        self.uses.insert(path.to_owned(), names);
    }

    /// The names `path` uses, each once, sorted.
    pub fn uses(&self, path: &str) -> &[String] {
        self.uses.get(path).map_or(&[], Vec::as_slice)
    }

    pub fn remove(&mut self, path: &str) {
        self.stamps.remove(path);
        self.uses.remove(path);
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

    /// The definitions of `path` as the index has them, in the order [`tags`] gives, when `text`
    /// is the text they were indexed from (same SHA-256): what the context builder would
    /// otherwise tag again, compiling the language's tag query in a short-lived process.
    pub fn definitions_of(&self, path: &str, text: &str) -> Option<Vec<Definition>> {
        let stamp = self.stamps.get(path)?;
        if stamp.hash != sha256_hex(text.as_bytes()) {
            return None;
        }
        let mut definitions: Vec<Definition> = self
            .by_path
            .get(path)?
            .iter()
            .flat_map(|name| self.lookup(name))
            .filter(|d| d.path == path)
            .cloned()
            .collect();
        definitions.sort_by_key(|d| (d.range.start, std::cmp::Reverse(d.range.end)));
        Some(definitions)
    }

    /// The definitions of `text`, a version of `path` that is not the one indexed (the file as
    /// last committed): what the store keeps of that text by its SHA-256 when the index was
    /// loaded from a store, else tagged now (and kept there). Parsing and tagging a text costs
    /// a short-lived process the compilation of the language's tag query; a stored answer
    /// does not.
    pub fn tags_of_text(&self, language: Language, text: &str, path: &str) -> Vec<Definition> {
        let hash = sha256_hex(text.as_bytes());
        let Some(store) = &self.texts.0 else { return tag_text(language, text, path) };
        let stored = store.symbol_text(&hash).unwrap_or_else(|error| {
            tracing::warn!(%error, "the stored definitions of a committed version are not used");
            None
        });
        if let Some(definitions) = stored.and_then(|row| decode_text(language, &row, text.len(), path)) {
            return definitions;
        }
        let definitions = tag_text(language, text, path);
        let entries = Entries { definitions: definitions.iter().map(Entry::of).collect(), uses: Vec::new() };
        store.record(vec![Record::SymbolText(SymbolText {
            hash,
            language: language.id().to_owned(),
            size: i64::try_from(text.len()).unwrap_or(i64::MAX),
            format: ENTRIES_FORMAT,
            entries: serde_json::to_string(&entries).unwrap_or_else(|_| "{}".to_owned()),
            stored_ms: crate::time::now_ms(),
        })]);
        definitions
    }

    pub fn files(&self) -> usize {
        self.by_path.len()
    }

    pub fn definitions(&self) -> usize {
        self.by_name.values().map(Vec::len).sum()
    }

    /// Indexes every file under `root` that the walk yields, reading each from disk.
    pub fn build(root: &Path, files: &[PathBuf], max_size: u64) -> SymbolIndex {
        SymbolIndex::load(None, root, files, max_size).0
    }

    /// The index of `files` (all of one language): what `store` holds of them, checked, with
    /// the files that changed since indexed again and the rows of those no longer given
    /// dropped; the changes are recorded in `store`. Without a store, every file is indexed.
    pub fn load(
        store: Option<&Store>,
        root: &Path,
        files: &[PathBuf],
        max_size: u64,
    ) -> (SymbolIndex, Synced) {
        let mut index = SymbolIndex { texts: TextStore(store.cloned()), ..SymbolIndex::default() };
        let mut synced = Synced::default();
        let mut records = Vec::new();
        let languages: HashSet<Language> = files.iter().filter_map(|f| Language::from_path(f)).collect();
        for language in store.map(|_| languages).unwrap_or_default() {
            let rows = match store.map(|s| s.symbol_files(language.id())) {
                Some(Ok(rows)) => rows,
                Some(Err(error)) => {
                    tracing::warn!(%error, "the stored symbol index is not used; every file is indexed again");
                    Vec::new()
                }
                None => Vec::new(),
            };
            for row in rows {
                let path = row.path.clone();
                if !index.restore(language, row) {
                    synced.rejected += 1;
                    records.push(Record::SymbolFileGone { path });
                }
            }
        }
        let given: HashSet<String> = files.iter().map(|f| crate::files::relative(root, f)).collect();
        let known: HashSet<&String> = index.by_path.keys().chain(index.stamps.keys()).collect();
        let stale: Vec<String> = known.into_iter().filter(|p| !given.contains(*p)).cloned().collect();
        for path in stale {
            index.remove(&path);
            synced.dropped += 1;
            records.push(Record::SymbolFileGone { path });
        }
        for file in files {
            index.refresh_file(root, file, max_size, &mut synced, &mut records);
        }
        save(store, records);
        (index, synced)
    }

    /// Reads `paths` again from disk where they changed: their definitions replace what the
    /// index had of them, or leave the index when they are gone or no longer readable source;
    /// the changes are recorded in `store`.
    pub fn refresh(
        &mut self,
        store: Option<&Store>,
        root: &Path,
        paths: &[PathBuf],
        max_size: u64,
    ) -> Synced {
        let mut synced = Synced::default();
        let mut records = Vec::new();
        for path in paths {
            self.refresh_file(root, path, max_size, &mut synced, &mut records);
        }
        save(store, records);
        synced
    }

    fn refresh_file(
        &mut self,
        root: &Path,
        path: &Path,
        max_size: u64,
        synced: &mut Synced,
        records: &mut Vec<Record>,
    ) {
        let relative = crate::files::relative(root, path);
        let meta = std::fs::metadata(path).ok().filter(std::fs::Metadata::is_file);
        let read = match (Language::from_path(path), meta) {
            (Some(language), Some(meta)) => {
                let mtime_ns = mtime_ns(&meta);
                if self
                    .stamps
                    .get(&relative)
                    .is_some_and(|s| s.size == meta.len() && s.mtime_ns == mtime_ns && !s.racy())
                {
                    synced.reused += 1;
                    return;
                }
                crate::files::read_beneath(root, path, max_size)
                    .ok()
                    .map(|text| (language, meta.len(), mtime_ns, text))
            }
            _ => None,
        };
        let Some((language, size, mtime_ns, text)) = read else {
            if self.by_path.contains_key(&relative) || self.stamps.contains_key(&relative) {
                self.remove(&relative);
                synced.dropped += 1;
                records.push(Record::SymbolFileGone { path: relative });
            }
            return;
        };
        let stamp =
            Stamp { hash: sha256_hex(text.as_bytes()), size, mtime_ns, indexed_ms: crate::time::now_ms() };
        if self.stamps.get(&relative).is_some_and(|s| s.hash == stamp.hash) {
            synced.reused += 1;
        } else {
            let doc = crate::classify::Document::new(language, text);
            let (definitions, references) = tags(language, doc.tree(), doc.text(), &relative);
            self.update(&relative, definitions);
            self.set_uses(&relative, references.into_iter().map(|r| r.name).collect());
            synced.tagged += 1;
        }
        records.push(Record::SymbolFile(self.row(language, &relative, &stamp)));
        self.stamps.insert(relative, stamp);
    }

    /// The stored form of one file's definitions.
    fn row(&self, language: Language, path: &str, stamp: &Stamp) -> SymbolFile {
        let mut definitions: Vec<Entry> = self
            .by_path
            .get(path)
            .into_iter()
            .flatten()
            .flat_map(|name| self.lookup(name))
            .filter(|d| d.path == path)
            .map(Entry::of)
            .collect();
        definitions.sort_by_key(|e| (e.start, std::cmp::Reverse(e.end)));
        let entries = Entries { definitions, uses: self.uses(path).to_vec() };
        SymbolFile {
            path: path.to_owned(),
            language: language.id().to_owned(),
            hash: stamp.hash.clone(),
            size: i64::try_from(stamp.size).unwrap_or(i64::MAX),
            mtime_ns: stamp.mtime_ns,
            indexed_ms: stamp.indexed_ms,
            format: ENTRIES_FORMAT,
            entries: serde_json::to_string(&entries).unwrap_or_else(|_| "{}".to_owned()),
        }
    }

    /// Takes a stored row into the index when it reads back whole; `false` leaves the index as
    /// it was.
    fn restore(&mut self, language: Language, row: SymbolFile) -> bool {
        let Some((definitions, uses)) = decode(language, &row) else { return false };
        let Ok(size) = u64::try_from(row.size) else { return false };
        self.update(&row.path, definitions);
        self.set_uses(&row.path, uses);
        let stamp = Stamp { hash: row.hash, size, mtime_ns: row.mtime_ns, indexed_ms: row.indexed_ms };
        self.stamps.insert(row.path, stamp);
        true
    }
}

/// The definitions of a stored row, if every part of it is what this build writes: its encoding
/// version, a language that is the path's, a plain relative path, a SHA-256 hex hash, and
/// definitions with a name and a kind whose bytes lie inside the file, names used that are names.
fn decode(language: Language, row: &SymbolFile) -> Option<(Vec<Definition>, Vec<String>)> {
    let plain = !row.path.is_empty()
        && !row.path.starts_with('/')
        && row.path.split('/').all(|c| !matches!(c, "" | "." | ".."));
    let hex = row.hash.len() == 64 && row.hash.bytes().all(|b| b.is_ascii_hexdigit());
    if row.format != ENTRIES_FORMAT
        || row.language != language.id()
        || !plain
        || Language::from_path(Path::new(&row.path)) != Some(language)
        || !hex
        || row.size < 0
    {
        return None;
    }
    let size = usize::try_from(row.size).ok()?;
    let entries: Entries = serde_json::from_str(&row.entries).ok()?;
    if entries.uses.iter().any(|n| n.is_empty() || n.len() > 1_024) {
        return None;
    }
    let definitions = sound_definitions(entries.definitions, size, &row.path)?;
    Some((definitions, entries.uses))
}

/// The definitions of a stored text, if the row is what this build writes for `language` and
/// a text of `size` bytes.
fn decode_text(language: Language, row: &SymbolText, size: usize, path: &str) -> Option<Vec<Definition>> {
    if row.format != ENTRIES_FORMAT
        || row.language != language.id()
        || usize::try_from(row.size).ok()? != size
    {
        return None;
    }
    let entries: Entries = serde_json::from_str(&row.entries).ok()?;
    sound_definitions(entries.definitions, size, path)
}

/// Stored entries as definitions of `path`, if each has a name and a kind and lies inside a
/// text of `size` bytes.
fn sound_definitions(entries: Vec<Entry>, size: usize, path: &str) -> Option<Vec<Definition>> {
    entries
        .into_iter()
        .map(|e| {
            let sound = !e.name.is_empty()
                && e.name.len() <= 1_024
                && !e.kind.is_empty()
                && e.kind.len() <= 64
                && e.start <= e.end
                && e.end <= size;
            sound.then(|| Definition {
                name: e.name,
                kind: e.kind,
                path: path.to_owned(),
                range: e.start..e.end,
                line: e.line,
                declaration: e.declaration,
            })
        })
        .collect()
}

/// Parses and tags `text` as `path`'s.
fn tag_text(language: Language, text: &str, path: &str) -> Vec<Definition> {
    let tree = crate::classify::parse_tree(language, text, None);
    tags(language, &tree, text, path).0
}

fn save(store: Option<&Store>, records: Vec<Record>) {
    let Some(store) = store else { return };
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        store.record(records.by_ref().take(RECORD_BATCH).collect());
    }
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut out, b| {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
        out
    })
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

    fn all(language: Language, path: &str, text: &str) -> Vec<Definition> {
        let doc = Document::new(language, text.to_owned());
        tags(language, doc.tree(), doc.text(), path).0
    }

    #[test]
    fn a_rust_method_is_tagged_once() {
        let text =
            "struct P;\nimpl P {\n    fn norm(&self) -> i32 { 1 }\n}\ntrait T {\n    fn go(&self) {}\n}\n";
        let found = all(Language::Rust, "p.rs", text);
        let norm: Vec<&str> = found.iter().filter(|d| d.name == "norm").map(|d| d.kind.as_str()).collect();
        assert_eq!(norm, ["method"], "{found:?}");
        assert_eq!(found.iter().filter(|d| d.name == "go").count(), 1, "{found:?}");
    }

    #[test]
    fn items_inside_a_macro_invocation_are_tagged_where_they_are() {
        let text = "cfg_not_rt! {\n    /// Spawns.\n    pub fn spawn_blocking() {}\n    impl Handle {\n        pub fn enter(&self) {}\n    }\n}\nfn main() { vec![fn_like()]; }\n";
        let found = all(Language::Rust, "rt.rs", text);
        let spawn = found.iter().find(|d| d.name == "spawn_blocking").expect("spawn_blocking is tagged");
        assert_eq!(spawn.line, 2);
        assert_eq!(&text[spawn.range.clone()], "pub fn spawn_blocking() {}");
        let enter = found.iter().find(|d| d.name == "enter").expect("enter is tagged");
        assert_eq!((enter.kind.as_str(), enter.line), ("method", 4));
        assert!(!found.iter().any(|d| d.name == "fn_like"), "{found:?}");
    }

    #[test]
    fn arrow_functions_are_tagged_in_every_form() {
        let text = "export const wrapped = (<T,>(x: T) => x);\nconst cast = ((x: number) => x) as F;\nconst checked = ((x: number) => x) satisfies F;\nconst plain = async (x: number) => x;\nconst expr = function () {};\nclass C {\n  handle = (e: E) => e;\n}\nconst notFn = (1 + 2);\n";
        let found = all(Language::TypeScript, "f.ts", text);
        for name in ["wrapped", "cast", "checked", "plain", "expr", "handle"] {
            let hits: Vec<&Definition> = found.iter().filter(|d| d.name == name).collect();
            assert_eq!(hits.len(), 1, "{name}: {found:?}");
            assert_eq!(hits[0].kind, "function", "{name}");
        }
        assert!(!found.iter().any(|d| d.name == "notFn"), "{found:?}");
        let js = all(Language::JavaScript, "f.js", "export const g = ((a) => a);\nclass K { h = () => 1 }\n");
        assert!(js.iter().any(|d| d.name == "g") && js.iter().any(|d| d.name == "h"), "{js:?}");
    }

    #[test]
    fn declarations_are_told_from_definitions() {
        let rust = all(Language::Rust, "lib.rs", "mod parse;\nmod inline { fn parse() {} }\n");
        let module: Vec<bool> = rust.iter().filter(|d| d.kind == "module").map(|d| d.declaration).collect();
        assert_eq!(module, [true, false], "{rust:?}");
        assert!(rust.iter().any(|d| d.name == "parse" && d.kind == "function" && !d.declaration));
        let dts =
            all(Language::TypeScript, "index.d.ts", "export declare function greet(u: string): void;\n");
        assert!(dts.iter().all(|d| d.declaration) && !dts.is_empty(), "{dts:?}");
        let ts = all(Language::TypeScript, "a.ts", "interface I { m(): void }\nfunction greet() {}\n");
        assert!(ts.iter().any(|d| d.name == "m" && d.declaration), "{ts:?}");
        assert!(ts.iter().any(|d| d.name == "greet" && !d.declaration), "{ts:?}");
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
            declaration: false,
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

    /// A workspace of two Rust files whose modification times lie an hour back, so that an
    /// unchanged file is recognised by its size and time alone.
    fn workspace() -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![dir.path().join("a.rs"), dir.path().join("b.rs")];
        std::fs::write(&files[0], "pub fn parse() {}\n").unwrap();
        std::fs::write(&files[1], "pub fn run() { parse() }\n").unwrap();
        for file in &files {
            let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3_600);
            std::fs::File::options().write(true).open(file).unwrap().set_modified(past).unwrap();
        }
        (dir, files)
    }

    fn open(root: &Path) -> Store {
        Store::open_workspace(root, crate::store::StoreOptions::default()).unwrap()
    }

    fn stored(root: &Path) -> Vec<SymbolFile> {
        let store = open(root);
        let mut rows = store.symbol_files("rust").unwrap();
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        rows
    }

    #[test]
    fn the_stored_index_survives_a_restart() {
        let (dir, files) = workspace();
        let store = open(dir.path());
        let (first, synced) = SymbolIndex::load(Some(&store), dir.path(), &files, 1 << 20);
        assert_eq!((synced.tagged, synced.reused), (2, 0), "{synced:?}");
        store.close().unwrap();

        let store = open(dir.path());
        let (index, synced) = SymbolIndex::load(Some(&store), dir.path(), &files, 1 << 20);
        assert_eq!(synced, Synced { reused: 2, ..Synced::default() });
        assert_eq!(index.lookup("parse"), first.lookup("parse"));
        assert_eq!(index.lookup("run"), first.lookup("run"));
        assert_eq!(index.lookup("parse")[0].range, 0..17);
        assert_eq!((index.files(), index.definitions()), (2, 2));
    }

    #[test]
    fn a_changed_file_is_indexed_again_and_a_deleted_one_dropped() {
        let (dir, files) = workspace();
        let store = open(dir.path());
        let (mut index, _) = SymbolIndex::load(Some(&store), dir.path(), &files, 1 << 20);
        // The same size: its time or its hash tells.
        std::fs::write(&files[0], "pub fn parsf() {}\n").unwrap();
        std::fs::remove_file(&files[1]).unwrap();
        let synced = index.refresh(Some(&store), dir.path(), &files, 1 << 20);
        assert_eq!(synced, Synced { tagged: 1, dropped: 1, ..Synced::default() });
        assert!(index.lookup("parse").is_empty() && index.lookup("run").is_empty());
        assert_eq!(index.lookup("parsf").len(), 1);
        store.close().unwrap();
        let rows = stored(dir.path());
        assert_eq!(rows.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["a.rs"]);
        assert!(rows[0].entries.contains("parsf"), "{rows:?}");

        // After a restart, files the walk no longer yields are dropped too.
        std::fs::write(dir.path().join("c.rs"), "fn later() {}\n").unwrap();
        let store = open(dir.path());
        let (_, synced) = SymbolIndex::load(Some(&store), dir.path(), &[dir.path().join("c.rs")], 1 << 20);
        assert_eq!(synced, Synced { tagged: 1, dropped: 1, ..Synced::default() });
        store.close().unwrap();
        assert_eq!(stored(dir.path()).iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["c.rs"]);
    }

    #[test]
    fn a_corrupt_or_old_stored_row_is_indexed_again() {
        let (dir, files) = workspace();
        let store = open(dir.path());
        let (good, _) = SymbolIndex::load(Some(&store), dir.path(), &files, 1 << 20);
        store.close().unwrap();
        let db = dir.path().join(".acas/state.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        let hash = stored(dir.path())[1].hash.clone();
        conn.execute_batch(&format!(
            "UPDATE symbol_file SET entries = '{{\"definitions\": [{{\"name\": \"parse\"' WHERE path = 'a.rs';
             UPDATE symbol_file SET format = 0 WHERE path = 'b.rs';
             INSERT INTO symbol_file VALUES ('../outside.rs', 'rust', '{hash}', 10, 0, 0, 1, '{{\"definitions\": [], \"uses\": []}}');
             INSERT INTO symbol_file VALUES ('c.rs', 'rust', '{hash}', 10, 0, 0, 1,
                 '{{\"definitions\": [{{\"name\":\"run\",\"kind\":\"function\",\"start\":0,\"end\":99,\"line\":0}}], \"uses\": []}}');
             INSERT INTO symbol_file VALUES ('d.rs', 'rust', '{hash}', 'big', 0, 0, 1, '{{}}');"
        ))
        .unwrap();
        drop(conn);
        for name in ["c.rs", "d.rs"] {
            std::fs::write(dir.path().join(name), "fn ok() {}\n").unwrap();
        }
        let mut all = files.clone();
        all.extend([dir.path().join("c.rs"), dir.path().join("d.rs")]);

        let store = open(dir.path());
        let (index, synced) = SymbolIndex::load(Some(&store), dir.path(), &all, 1 << 20);
        // The row of d.rs does not even read back as a row: it is not loaded, nor counted.
        assert_eq!(synced, Synced { tagged: 4, rejected: 4, ..Synced::default() });
        assert_eq!(index.lookup("parse"), good.lookup("parse"));
        assert_eq!(index.lookup("run"), good.lookup("run"));
        assert_eq!(index.lookup("ok").len(), 2);
        store.close().unwrap();
        let rows = stored(dir.path());
        assert_eq!(
            rows.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
            ["a.rs", "b.rs", "c.rs", "d.rs"]
        );
        let store = open(dir.path());
        let (_, synced) = SymbolIndex::load(Some(&store), dir.path(), &all, 1 << 20);
        assert_eq!((synced.tagged, synced.rejected), (0, 0), "{synced:?}");
    }

    #[test]
    fn a_committed_versions_definitions_are_tagged_once_and_read_back_checked() {
        let (dir, files) = workspace();
        let committed = "pub fn parse() {}\n\nfn helper(x: u32) -> u32 {\n    x\n}\n";
        let store = open(dir.path());
        let (index, _) = SymbolIndex::load(Some(&store), dir.path(), &files, 1 << 20);
        let tagged = index.tags_of_text(Language::Rust, committed, "a.rs");
        assert_eq!(tagged.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["parse", "helper"]);
        store.close().unwrap();
        let db = dir.path().join(".acas/state.db");
        let rows = |sql: &str| -> i64 {
            rusqlite::Connection::open(&db).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
        };
        assert_eq!(rows("SELECT count(*) FROM symbol_text"), 1);

        // Read back from the store: the same definitions, named for the path asked about.
        let store = open(dir.path());
        let (index, _) = SymbolIndex::load(Some(&store), dir.path(), &files, 1 << 20);
        let read = index.tags_of_text(Language::Rust, committed, "b.rs");
        assert_eq!(read.iter().map(|d| (&d.name, &d.range, d.path.as_str())).collect::<Vec<_>>(), {
            tagged.iter().map(|d| (&d.name, &d.range, "b.rs")).collect::<Vec<_>>()
        });
        store.close().unwrap();

        // A row that lies (a definition past the text's end) is not believed: tagged again.
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(
                "UPDATE symbol_text SET entries = '{\"definitions\": [{\"name\":\"evil\",\"kind\":\"function\",\"start\":0,\"end\":9999,\"line\":0}], \"uses\": []}'",
            )
            .unwrap();
        let store = open(dir.path());
        let (index, _) = SymbolIndex::load(Some(&store), dir.path(), &files, 1 << 20);
        assert_eq!(index.tags_of_text(Language::Rust, committed, "a.rs"), tagged);
        store.close().unwrap();
        assert_eq!(rows("SELECT count(*) FROM symbol_text WHERE entries LIKE '%evil%'"), 0);
    }

    #[test]
    fn the_index_gives_a_files_definitions_only_for_the_text_it_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let text = "mod inner {\n    pub fn a() {}\n}\n\nstruct S;\n\nimpl S {\n    fn b(&self) {}\n    fn c() {}\n}\n";
        let path = dir.path().join("lib.rs");
        std::fs::write(&path, text).unwrap();
        let store = open(dir.path());
        let (_, _) = SymbolIndex::load(Some(&store), dir.path(), std::slice::from_ref(&path), 1 << 20);
        store.close().unwrap();
        // Read back from the store, as a new process does.
        let store = open(dir.path());
        let (index, synced) = SymbolIndex::load(Some(&store), dir.path(), &[path], 1 << 20);
        assert_eq!(synced, Synced { reused: 1, ..Synced::default() });
        let doc = Document::new(Language::Rust, text.to_owned());
        let (tagged, _) = tags(Language::Rust, doc.tree(), doc.text(), "lib.rs");
        let names: Vec<&str> = tagged.iter().map(|d| d.name.as_str()).collect();
        assert!(["inner", "a", "S", "b", "c"].iter().all(|n| names.contains(n)), "{tagged:?}");
        assert_eq!(index.definitions_of("lib.rs", text), Some(tagged));
        assert_eq!(index.definitions_of("lib.rs", &text.replace("fn c", "fn d")), None);
        assert_eq!(index.definitions_of("other.rs", text), None);
    }
}
