//! The versioned output contract: every JSON object the command line prints (`--json`) or writes
//! (`--report`, `--metrics` lines) carries `schema_version` first. docs/OUTPUT.md documents the
//! fields; tests/output_schema.rs pins them, so a change is deliberate: add a field freely
//! (consumers ignore what they do not know), but renaming or removing one, or changing its
//! meaning, raises [`SCHEMA_VERSION`].
use serde::Serialize;

pub const SCHEMA_VERSION: u32 = 1;

/// `value` as a JSON object with `schema_version` first; a value that is not an object (a list)
/// is put under `key`.
pub fn versioned(value: &impl Serialize, key: &str) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    out.insert("schema_version".into(), SCHEMA_VERSION.into());
    match serde_json::to_value(value).expect("our outputs serialize") {
        serde_json::Value::Object(fields) => out.extend(fields),
        other => {
            out.insert(key.into(), other);
        }
    }
    serde_json::Value::Object(out)
}

/// Prints [`versioned`] `value`, pretty, on stdout.
pub fn print_json(value: &impl Serialize, key: &str) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&versioned(value, key))?);
    Ok(())
}
