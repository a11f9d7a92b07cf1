//! JSON Schemas of scenario and workload files, derived from the types they are parsed into (so
//! that the schema cannot say what the parser does not), for editors: taplo and Even Better TOML
//! check and complete a TOML file against them. `migbench schema` writes them; the copies in
//! `schema/` are what the repository ships.

/// Which file a schema is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A scenario file (`scenarios/*.toml`).
    Scenario,
    /// A workload file (`scenarios/workloads/*.toml`).
    Workload,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Scenario, Kind::Workload];

    /// The shipped file, relative to the repository root.
    pub fn path(self) -> &'static str {
        match self {
            Kind::Scenario => "schema/scenario.schema.json",
            Kind::Workload => "schema/workload.schema.json",
        }
    }
}

/// The schema as pretty JSON with a final newline, as shipped.
pub fn json(kind: Kind) -> String {
    let schema = match kind {
        Kind::Scenario => schemars::schema_for!(crate::scenario::ScenarioFile),
        Kind::Workload => schemars::schema_for!(crate::workload::Workload),
    };
    let mut value = schema.to_value();
    without_null(&mut value);
    let mut text = serde_json::to_string_pretty(&value).expect("a schema is plain JSON");
    text.push('\n');
    text
}

/// TOML has no null: an optional key is left out, never written as null. Takes `null` out of
/// the schemas schemars gives `Option`s (`anyOf [T, null]`, `type: [T, "null"]`, `default: null`).
fn without_null(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(any)) = map.get_mut("anyOf") {
                any.retain(|s| s.get("type").is_none_or(|t| t != "null"));
                if let [Value::Object(only)] = any.as_slice() {
                    let only = only.clone();
                    map.remove("anyOf");
                    map.extend(only);
                }
            }
            map.values_mut().for_each(without_null);
        }
        Value::Array(items) => items.iter_mut().for_each(without_null),
        _ => {}
    }
}
