//! Typed workflow inputs: checking given values against `inputs:` and reading them from text
//! (`acas workflow run NAME --input k=v`).
//!
//! A `string` input takes any text, a `number` a JSON number, a `boolean` `true` or `false`, a
//! `choice` one of its `options`. Missing inputs take their default; a missing input without a
//! default is an error when it is `required`, and absent from the context otherwise. Unknown
//! inputs are errors.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::definition::{InputSpec, InputType};
use super::error::{WorkflowError, WorkflowErrorKind};

/// Checks `given` against `specs` and fills in defaults.
pub fn check(
    specs: &BTreeMap<String, InputSpec>,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, WorkflowError> {
    let mut problems = Vec::new();
    for name in given.keys() {
        if !specs.contains_key(name) {
            let known: Vec<&str> = specs.keys().map(String::as_str).collect();
            problems.push(if known.is_empty() {
                format!("unknown input `{name}`: this workflow takes no inputs")
            } else {
                format!("unknown input `{name}`: this workflow takes {}", known.join(", "))
            });
        }
    }
    let mut inputs = Map::new();
    for (name, spec) in specs {
        match given.get(name).or(spec.default.as_ref()) {
            Some(value) => match check_value(spec, value) {
                Ok(()) => {
                    inputs.insert(name.clone(), value.clone());
                }
                Err(why) => problems.push(format!("input `{name}`: {why}")),
            },
            None if spec.required => {
                problems.push(format!("input `{name}` is required; pass --input {name}=VALUE"))
            }
            None => {}
        }
    }
    if problems.is_empty() {
        Ok(inputs)
    } else {
        Err(WorkflowError::new(WorkflowErrorKind::Input, problems.join("; ")))
    }
}

fn check_value(spec: &InputSpec, value: &Value) -> Result<(), String> {
    match (spec.kind, value) {
        (InputType::String, Value::String(_))
        | (InputType::Number, Value::Number(_))
        | (InputType::Boolean, Value::Bool(_)) => Ok(()),
        (InputType::Choice, Value::String(s)) if spec.options.contains(s) => Ok(()),
        (InputType::Choice, _) => Err(format!("{value} is not one of {}", spec.options.join(", "))),
        (kind, _) => Err(format!("{value} is not a {}", type_name(kind))),
    }
}

fn type_name(kind: InputType) -> &'static str {
    match kind {
        InputType::String => "string",
        InputType::Number => "number",
        InputType::Boolean => "boolean",
        InputType::Choice => "choice",
    }
}

/// Reads `NAME=VALUE` pairs typed by `specs`. Unknown names are kept as strings, for
/// [`check`] to report.
pub fn from_text(
    specs: &BTreeMap<String, InputSpec>,
    pairs: &[String],
) -> Result<Map<String, Value>, WorkflowError> {
    let mut inputs = Map::new();
    for pair in pairs {
        let Some((name, text)) = pair.split_once('=') else {
            return Err(WorkflowError::new(WorkflowErrorKind::Input, format!("`{pair}` is not NAME=VALUE")));
        };
        let value = match specs.get(name).map(|s| s.kind) {
            Some(InputType::Number) => match serde_json::from_str::<Value>(text.trim()) {
                Ok(n @ Value::Number(_)) => n,
                _ => {
                    return Err(WorkflowError::new(
                        WorkflowErrorKind::Input,
                        format!("input `{name}`: `{text}` is not a number"),
                    ));
                }
            },
            Some(InputType::Boolean) => match text.trim() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    return Err(WorkflowError::new(
                        WorkflowErrorKind::Input,
                        format!("input `{name}`: `{text}` is not true or false"),
                    ));
                }
            },
            _ => Value::String(text.to_owned()),
        };
        inputs.insert(name.to_owned(), value);
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(kind: InputType, default: Option<Value>, required: bool) -> InputSpec {
        InputSpec { kind, description: None, default, required, options: vec!["fast".into(), "slow".into()] }
    }

    fn specs() -> BTreeMap<String, InputSpec> {
        BTreeMap::from([
            ("who".to_owned(), spec(InputType::String, Some(json!("world")), false)),
            ("n".to_owned(), spec(InputType::Number, None, true)),
            ("dry".to_owned(), spec(InputType::Boolean, Some(json!(false)), false)),
            ("mode".to_owned(), spec(InputType::Choice, None, false)),
        ])
    }

    #[test]
    fn check_cases() {
        let cases: &[(&[&str], Result<Value, &str>)] = &[
            (&["n=3"], Ok(json!({"who": "world", "n": 3, "dry": false}))),
            (
                &["n=2.5", "who=you", "dry=true", "mode=slow"],
                Ok(json!({"who": "you", "n": 2.5, "dry": true, "mode": "slow"})),
            ),
            (&[], Err("input `n` is required; pass --input n=VALUE")),
            (&["n=three"], Err("input `n`: `three` is not a number")),
            (&["n=1", "dry=yes"], Err("input `dry`: `yes` is not true or false")),
            (&["n=1", "mode=medium"], Err("input `mode`: \"medium\" is not one of fast, slow")),
            (&["n=1", "colour=red"], Err("unknown input `colour`: this workflow takes dry, mode, n, who")),
            (&["n"], Err("`n` is not NAME=VALUE")),
        ];
        for (pairs, expected) in cases {
            let pairs: Vec<String> = pairs.iter().map(|s| s.to_string()).collect();
            let got = from_text(&specs(), &pairs).and_then(|given| check(&specs(), &given));
            match (got, expected) {
                (Ok(got), Ok(want)) => assert_eq!(Value::Object(got), *want, "{pairs:?}"),
                (Err(got), Err(want)) => assert_eq!(got.message, *want, "{pairs:?}"),
                (got, want) => panic!("{pairs:?}: got {got:?}, want {want:?}"),
            }
        }
        let wrong = check(&specs(), &json!({"n": "3"}).as_object().unwrap().clone()).unwrap_err();
        assert_eq!(wrong.message, "input `n`: \"3\" is not a number");
    }
}
