//! `data.transform`: selects part of a JSON value and maps it to a new shape.
//!
//! `select` is a JSONPath (RFC 9535, with `serde_json_path`: `$.a.b[0]`, `$.items[*].name`,
//! `$..id`, `$.items[?@.done == false]`) or a JSON Pointer (RFC 6901: `/items/0/name`). A JSON
//! Pointer, and a JSONPath made only of names and indexes, select one value; any other JSONPath
//! selects a list. `map` is any JSON whose strings are templates, rendered with `item` (and
//! `index`, and the whole `input`) once per element when the selection is a list, else once.

use serde_json::{Value, json};

use super::schema::{Kind, Param, Spec};
use super::{ActionError, Args};
use crate::workflow::template::{TemplateLimits, Templates};

pub const TRANSFORM: Spec = Spec {
    name: "data.transform",
    summary: "Selects part of a JSON value and maps it to a new shape. `select` is a JSONPath (RFC 9535: `$.a.b[0]`, `$.items[*].name`, `$..id`, `$.items[?@.done == false]`) or a JSON Pointer (RFC 6901: `/items/0/name`); a pointer, or a JSONPath of names and indexes only, selects one value, any other JSONPath a list. `map` is rendered once per element when the selection is a list, else once, with `item`, `index` and the whole `input`; a string that is exactly one `{{ ... }}` keeps the JSON type of its value. The engine leaves `map` unrendered for the action to render.",
    params: &[
        Param::required("input", Kind::Any, "The value to transform, usually a template such as `{{ steps.fetch.output.json }}`."),
        Param::optional("parse", Kind::Boolean, Some("false"), "Parse `input`, a string, as JSON text first (for a file read with `file.read`)."),
        Param::optional("select", Kind::String, None, "A JSONPath starting with `$`, or a JSON Pointer starting with `/`."),
        Param::optional("map", Kind::Any, None, "JSON whose strings are templates reading `item`, `index` and `input`, such as `{name: \"{{ item.name }}\", done: \"{{ item.state == 'closed' }}\"}`.")
            .late(),
    ],
    exclusive: &[],
    output: "`{value}`: the selected value, or list, after `map`.",
};

/// Runs `data.transform`; `map` renders under `limits`.
pub fn transform(args: &Args<'_>, limits: TemplateLimits) -> Result<Value, ActionError> {
    let mut input = args.value("input").cloned().unwrap_or(Value::Null);
    if args.bool("parse").unwrap_or(false) {
        let Value::String(text) = &input else {
            return Err(ActionError::new("`parse` needs `input` to be a string of JSON text"));
        };
        input = serde_json::from_str(text)
            .map_err(|e| ActionError::new(format!("`input` is not JSON text: {e}")))?;
    }
    let selected = match args.str("select") {
        Some(path) => select(&input, path)?,
        None => input.clone(),
    };
    let value = match args.value("map") {
        Some(map) => apply(map, selected, &input, limits)?,
        None => selected,
    };
    Ok(json!({"value": value}))
}

/// The value or values `path` selects in `input`.
pub fn select(input: &Value, path: &str) -> Result<Value, ActionError> {
    let nothing = || ActionError::new(format!("`{path}` selects nothing in the input"));
    if path.starts_with('$') {
        let parsed = serde_json_path::JsonPath::parse(path)
            .map_err(|e| ActionError::new(format!("`{path}` is not a valid JSONPath: {e}")))?;
        let nodes = parsed.query(input);
        if singular(path) {
            nodes.at_most_one().ok().flatten().cloned().ok_or_else(nothing)
        } else {
            Ok(Value::Array(nodes.into_iter().cloned().collect()))
        }
    } else if path.is_empty() || path.starts_with('/') {
        input.pointer(path).cloned().ok_or_else(nothing)
    } else {
        Err(ActionError::new(format!(
            "`{path}` is neither a JSONPath (`$.items[*].name`) nor a JSON Pointer (`/items/0/name`)"
        )))
    }
}

/// Whether a JSONPath can select at most one node: no wildcard, descendant, filter, slice or
/// union outside quoted names (RFC 9535's singular queries).
fn singular(path: &str) -> bool {
    let mut quote = None;
    let mut escaped = false;
    let mut previous = '\0';
    for c in path.chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if matches!(c, '*' | '?' | ':' | ',') || (c == '.' && previous == '.') => return false,
            None => {}
        }
        previous = c;
    }
    true
}

fn apply(map: &Value, selected: Value, input: &Value, limits: TemplateLimits) -> Result<Value, ActionError> {
    let templates = Templates::new(limits);
    let render = |item: &Value, index: usize| {
        let ctx = json!({"item": item, "index": index, "input": input});
        templates.render_value(map, &ctx)
    };
    match &selected {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                render(item, i).map_err(|e| ActionError::new(format!("`map`, item {i}: {}", e.message)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        single => render(single, 0).map_err(|e| ActionError::new(format!("`map`: {}", e.message))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Outcome, run_in};
    use serde_json::{Value, json};

    fn input() -> Value {
        json!({
            "a": {"b": [10, 20]},
            "items": [
                {"name": "lint", "state": "closed", "n": 2},
                {"name": "test", "state": "open", "n": 5},
            ],
            "odd key": {"x.y": 1},
        })
    }

    /// `select` and `map` against [`input`], with the `value` expected or the error's start.
    fn check(select: Option<&str>, map: Option<Value>, expected: Result<Value, &str>) {
        let ws = tempfile::tempdir().unwrap();
        let mut with = json!({"input": input()});
        if let Some(select) = select {
            with["select"] = json!(select);
        }
        if let Some(map) = map {
            with["map"] = map;
        }
        let got = run_in(ws.path(), "data.transform", with.clone());
        match (expected, got) {
            (Ok(value), Outcome::Ok(out)) => assert_eq!(out, json!({"value": value}), "{with}"),
            (Err(message), Outcome::Err(e)) => assert!(e.contains(message), "{with}: {e}"),
            (expected, got) => panic!("{with}: expected {expected:?}, got {got:?}"),
        }
    }

    #[test]
    fn selections() {
        check(None, None, Ok(input()));
        check(Some("$.a.b[0]"), None, Ok(json!(10)));
        check(Some("$.a.b[-1]"), None, Ok(json!(20)));
        check(Some("$['odd key']['x.y']"), None, Ok(json!(1)));
        check(Some("$.items[*].name"), None, Ok(json!(["lint", "test"])));
        check(Some("$..n"), None, Ok(json!([2, 5])));
        check(Some("$.items[?@.state == 'open'].name"), None, Ok(json!(["test"])));
        check(Some("$.a.b[0:1]"), None, Ok(json!([10])));
        check(Some("$.missing[*]"), None, Ok(json!([])));
        check(Some("/items/1/name"), None, Ok(json!("test")));
        check(Some("$.missing"), None, Err("`$.missing` selects nothing in the input"));
        check(Some("/nope"), None, Err("`/nope` selects nothing"));
        check(Some("$.items[?"), None, Err("is not a valid JSONPath"));
        check(Some("items.name"), None, Err("is neither a JSONPath"));
    }

    #[test]
    fn mappings() {
        check(
            Some("$.items[*]"),
            Some(
                json!({"title": "{{ index }}: {{ item.name }}", "n": "{{ item.n * 10 }}", "done": "{{ item.state == 'closed' }}"}),
            ),
            Ok(json!([
                {"title": "0: lint", "n": 20, "done": true},
                {"title": "1: test", "n": 50, "done": false},
            ])),
        );
        // A list selected as one value is mapped per element too.
        check(Some("$.a.b"), Some(json!("{{ item + input.a.b[0] }}")), Ok(json!([20, 30])));
        check(Some("$.a"), Some(json!({"first": "{{ item.b[0] }}"})), Ok(json!({"first": 10})));
        check(Some("$.items[*]"), Some(json!("{{ item.nope.deeper }}")), Err("`map`, item 0: "));
    }

    #[test]
    fn json_text_is_parsed_on_request() {
        let ws = tempfile::tempdir().unwrap();
        let with = json!({"input": "{\"a\": [1, 2]}", "parse": true, "select": "$.a[1]"});
        assert_eq!(run_in(ws.path(), "data.transform", with), Outcome::Ok(json!({"value": 2})));
        let with = json!({"input": "{oops", "parse": true});
        assert!(run_in(ws.path(), "data.transform", with).err().contains("`input` is not JSON text"));
    }
}
