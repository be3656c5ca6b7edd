//! `on.manual`: checks and coerces the typed inputs of a run started by hand.
//!
//! The CLI gives `--input k=v` strings ([`coerce_inputs`]); the editor's input form gives JSON
//! values ([`coerce_json_inputs`]). Both give back the run's `inputs` object: every declared
//! input that was given, coerced to its type, or else its default. An unknown name, a value of
//! the wrong type, a value that is not one of a choice's options, or a missing required input
//! is an error that says which input and what was expected.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use crate::workflow::definition::{InputSpec, InputType};

/// An input the run cannot take: which one, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    /// The input's name, as given or as declared.
    pub input: String,
    /// What is wrong and what is expected, naming the input.
    pub message: String,
}

impl InputError {
    fn new(input: &str, message: String) -> InputError {
        InputError { input: input.to_owned(), message }
    }
}

/// Coerces `name=value` strings. Numbers are JSON numbers (`3`, `-1.5`); booleans are `true`,
/// `false`, `yes`, `no`, `1`, `0` (any case). Giving a name twice is an error.
pub fn coerce_inputs(
    spec: &BTreeMap<String, InputSpec>,
    given: &[(String, String)],
) -> Result<Map<String, Value>, InputError> {
    let mut values = Map::new();
    for (name, text) in given {
        let input = lookup(spec, name)?;
        let value = match input.kind {
            InputType::String => Value::String(text.clone()),
            InputType::Choice => choice(name, input, text)?,
            InputType::Number => number(text.trim()).ok_or_else(|| {
                InputError::new(name, format!("input `{name}` expects a number, got `{text}`"))
            })?,
            InputType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Value::Bool(true),
                "false" | "no" | "0" => Value::Bool(false),
                _ => {
                    let message = format!("input `{name}` expects true or false, got `{text}`");
                    return Err(InputError::new(name, message));
                }
            },
        };
        if values.insert(name.clone(), value).is_some() {
            return Err(InputError::new(name, format!("input `{name}` is given twice")));
        }
    }
    complete(spec, values, |name| format!("; give it with --input {name}=VALUE"))
}

/// Coerces JSON values: a number may also come as a string of a number, a boolean as `"true"`
/// or `"false"`; a string input takes a string only.
pub fn coerce_json_inputs(
    spec: &BTreeMap<String, InputSpec>,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, InputError> {
    let mut values = Map::new();
    for (name, value) in given {
        let input = lookup(spec, name)?;
        let coerced = match (input.kind, value) {
            (InputType::String, Value::String(_)) => value.clone(),
            (InputType::Number, Value::Number(_)) => value.clone(),
            (InputType::Number, Value::String(text)) => {
                number(text.trim()).ok_or_else(|| wrong(name, "a number", value))?
            }
            (InputType::Boolean, Value::Bool(_)) => value.clone(),
            (InputType::Boolean, Value::String(text)) if text == "true" || text == "false" => {
                Value::Bool(text == "true")
            }
            (InputType::Choice, Value::String(text)) => choice(name, input, text)?,
            (InputType::String, _) => return Err(wrong(name, "a string", value)),
            (InputType::Number, _) => return Err(wrong(name, "a number", value)),
            (InputType::Boolean, _) => return Err(wrong(name, "true or false", value)),
            (InputType::Choice, _) => return Err(wrong(name, &options(input), value)),
        };
        values.insert(name.clone(), coerced);
    }
    complete(spec, values, |_| String::new())
}

fn lookup<'a>(spec: &'a BTreeMap<String, InputSpec>, name: &str) -> Result<&'a InputSpec, InputError> {
    spec.get(name).ok_or_else(|| {
        let known: Vec<String> = spec.keys().map(|k| format!("`{k}`")).collect();
        let message = match known.is_empty() {
            true => format!("unknown input `{name}`: this workflow takes no inputs"),
            false => format!("unknown input `{name}`; the inputs are {}", known.join(", ")),
        };
        InputError::new(name, message)
    })
}

/// Adds defaults and checks that every required input is there; `hint` says how to give a
/// missing one.
fn complete(
    spec: &BTreeMap<String, InputSpec>,
    mut values: Map<String, Value>,
    hint: impl Fn(&str) -> String,
) -> Result<Map<String, Value>, InputError> {
    for (name, input) in spec {
        if values.contains_key(name) {
            continue;
        }
        match &input.default {
            Some(default) => {
                values.insert(name.clone(), default.clone());
            }
            None if input.required => {
                return Err(InputError::new(name, format!("input `{name}` is required{}", hint(name))));
            }
            None => {}
        }
    }
    Ok(values)
}

fn number(text: &str) -> Option<Value> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(Value::Number(n.into()));
    }
    let n: f64 = text.parse().ok()?;
    Number::from_f64(n).map(Value::Number)
}

fn choice(name: &str, input: &InputSpec, text: &str) -> Result<Value, InputError> {
    if input.options.iter().any(|o| o == text) {
        Ok(Value::String(text.to_owned()))
    } else {
        Err(InputError::new(name, format!("input `{name}` expects {}, got `{text}`", options(input))))
    }
}

fn options(input: &InputSpec) -> String {
    let options: Vec<String> = input.options.iter().map(|o| format!("`{o}`")).collect();
    format!("one of {}", options.join(", "))
}

fn wrong(name: &str, expected: &str, value: &Value) -> InputError {
    InputError::new(name, format!("input `{name}` expects {expected}, got `{value}`"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec() -> BTreeMap<String, InputSpec> {
        let input = |kind, default: Option<Value>, required, options: &[&str]| InputSpec {
            kind,
            description: None,
            default,
            required,
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        BTreeMap::from([
            ("who".to_owned(), input(InputType::String, Some(json!("world")), false, &[])),
            ("n".to_owned(), input(InputType::Number, None, false, &[])),
            ("dry".to_owned(), input(InputType::Boolean, Some(json!(false)), false, &[])),
            ("level".to_owned(), input(InputType::Choice, None, true, &["low", "high"])),
        ])
    }

    fn check(given: &[&str], expected: Result<Value, &str>) {
        let given: Vec<(String, String)> = given
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let got = coerce_inputs(&spec(), &given).map(Value::Object).map_err(|e| e.message);
        assert_eq!(got, expected.map_err(str::to_owned), "{given:?}");
    }

    #[test]
    fn cli_inputs() {
        check(&["level=low"], Ok(json!({"who": "world", "dry": false, "level": "low"})));
        check(
            &["level=high", "n=3", "who=a=b", "dry=YES"],
            Ok(json!({"who": "a=b", "n": 3, "dry": true, "level": "high"})),
        );
        check(&["level=low", "n=-2.5"], Ok(json!({"who": "world", "n": -2.5, "dry": false, "level": "low"})));
        check(&["level=low", "n=abc"], Err("input `n` expects a number, got `abc`"));
        check(&["level=low", "dry=maybe"], Err("input `dry` expects true or false, got `maybe`"));
        check(&["level=mid"], Err("input `level` expects one of `low`, `high`, got `mid`"));
        check(&[], Err("input `level` is required; give it with --input level=VALUE"));
        check(
            &["level=low", "colour=red"],
            Err("unknown input `colour`; the inputs are `dry`, `level`, `n`, `who`"),
        );
        check(&["level=low", "level=high"], Err("input `level` is given twice"));
    }

    #[test]
    fn editor_inputs() {
        let coerce =
            |given: Value| coerce_json_inputs(&spec(), given.as_object().unwrap()).map_err(|e| e.message);
        assert_eq!(
            coerce(json!({"level": "high", "n": "7", "dry": "true"})),
            Ok(json!({"who": "world", "n": 7, "dry": true, "level": "high"}).as_object().unwrap().clone())
        );
        assert_eq!(
            coerce(json!({"level": "low", "who": 5})),
            Err("input `who` expects a string, got `5`".into())
        );
        assert_eq!(
            coerce(json!({"level": "low", "n": true})),
            Err("input `n` expects a number, got `true`".into())
        );
        assert_eq!(
            coerce(json!({"level": 1})),
            Err("input `level` expects one of `low`, `high`, got `1`".into())
        );
        assert_eq!(
            coerce_json_inputs(&BTreeMap::new(), json!({"x": 1}).as_object().unwrap()).map_err(|e| e.message),
            Err("unknown input `x`: this workflow takes no inputs".into())
        );
    }
}
