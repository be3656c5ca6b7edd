//! The table of tools: each group of tools is one file with its argument types (their JSON
//! schema is derived from them), its descriptions and its handlers; [`list`] and [`call`] are
//! the one place a group is registered. A new group adds its file and one line to each.

mod activity;
mod check;
mod explain;
mod problems;
mod tasks;
mod workflows;

use std::sync::Arc;

use rmcp::model::{ErrorData, JsonObject, Tool};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub(super) use workflows::run_json;

use super::{Answer, Shared, invalid};

/// Every tool, in the order clients list them.
pub(super) fn list() -> Vec<Tool> {
    [
        check::tools(),
        problems::tools(),
        explain::tools(),
        workflows::tools(),
        activity::tools(),
        tasks::tools(),
    ]
    .concat()
}

/// Calls tool `name` for `agent` (the client's name) with `arguments`; `holder` is the name
/// the task queue knows this session by.
pub(super) async fn call(
    shared: &Arc<Shared>,
    agent: &str,
    holder: &str,
    name: &str,
    arguments: JsonObject,
    cancel: &CancellationToken,
) -> Result<Answer, ErrorData> {
    match name {
        check::CHECK => check::check(shared, parse(name, arguments)?).await,
        problems::PROBLEMS => problems::problems(shared, parse(name, arguments)?).await,
        explain::CONTEXT => explain::context(shared, parse(name, arguments)?).await,
        explain::EXPLAIN => explain::explain(shared, agent, holder, parse(name, arguments)?, cancel).await,
        workflows::WORKFLOWS => workflows::workflows(shared, parse(name, arguments)?).await,
        workflows::RUN_WORKFLOW => {
            workflows::run_workflow(shared, agent, holder, parse(name, arguments)?, cancel).await
        }
        workflows::RUN_STATUS => workflows::run_status(shared, parse(name, arguments)?).await,
        activity::ACTIVITY => activity::activity(shared, parse(name, arguments)?).await,
        other if tasks::NAMES.contains(&other) => tasks::call(shared, holder, other, arguments).await,
        _ => {
            let known: Vec<String> = list().into_iter().map(|t| t.name.into_owned()).collect();
            Err(invalid(format!("no tool named `{name}`; the tools are {}", known.join(", "))))
        }
    }
}

/// A tool named `name` whose arguments are `A` (the input schema is derived from it).
fn tool<A: JsonSchema>(name: &'static str, description: &'static str) -> Tool {
    let schema = schemars::schema_for!(A);
    let mut schema = match serde_json::to_value(schema) {
        Ok(serde_json::Value::Object(object)) => object,
        _ => JsonObject::new(),
    };
    schema.remove("$schema");
    schema.remove("title");
    Tool::new(name, description, Arc::new(schema))
}

/// The arguments of tool `name`, or an invalid-params error that says which is wrong and how.
fn parse<A: DeserializeOwned>(name: &str, arguments: JsonObject) -> Result<A, ErrorData> {
    serde_json::from_value(serde_json::Value::Object(arguments)).map_err(|e| {
        invalid(format!("bad arguments to `{name}`: {e}; the tool's input schema lists what it takes"))
    })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
