//! Multi-document YAML → one JSON value per document, with Backstage's rules (`parseEntityYaml`):
//! empty documents are skipped, a non-mapping root or a YAML error (including duplicate keys) is
//! an error for that document only, merge keys stay literal, unknown tags are ignored.

use serde::Deserialize;
use serde_json::{Map, Number, Value};
use serde_yaml::Value as Yaml;

/// A file with more documents than this is refused past that point: it bounds memory and time
/// for hostile input, and is far beyond any hand-written catalog file.
const MAX_DOCUMENTS: usize = 10_000;

/// One YAML document of a file, by its position in the file (0-based, counting empty documents).
#[derive(Debug)]
pub struct Document {
    pub index: usize,
    pub parsed: Result<Value, String>,
}

/// Splits a file into documents. After a syntax error the parser cannot find the next document
/// boundary, so reading stops there; other errors only affect their own document.
pub fn documents(text: &str) -> Vec<Document> {
    let mut out = Vec::new();
    let mut last_error: Option<String> = None;
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        if index >= MAX_DOCUMENTS {
            out.push(Document {
                index,
                parsed: Err(format!("more than {MAX_DOCUMENTS} documents; the rest of the file is ignored")),
            });
            break;
        }
        match Yaml::deserialize(doc) {
            Ok(Yaml::Null) => {}
            Ok(yaml) => out.push(Document { index, parsed: to_json(yaml).and_then(root_mapping) }),
            Err(err) => {
                let message = format!("malformed YAML: {err}");
                // A syntax error repeats for every later "document"; report it once.
                if last_error.as_ref() == Some(&message) {
                    break;
                }
                out.push(Document { index, parsed: Err(message.clone()) });
                last_error = Some(message);
            }
        }
    }
    out
}

fn root_mapping(value: Value) -> Result<Value, String> {
    match value {
        Value::Object(_) => Ok(value),
        other => Err(format!("document is not a mapping (found {})", type_name(&other))),
    }
}

/// YAML → JSON the way JavaScript sees it: scalar keys become strings, tags are dropped.
fn to_json(yaml: Yaml) -> Result<Value, String> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => number(&n),
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                out.insert(key_string(key)?, to_json(value)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => to_json(tagged.value)?,
    })
}

fn number(n: &serde_yaml::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Number(i.into())
    } else if let Some(u) = n.as_u64() {
        Value::Number(u.into())
    } else {
        // Infinity and NaN have no JSON form; JSON.stringify writes them as null.
        n.as_f64().and_then(Number::from_f64).map_or(Value::Null, Value::Number)
    }
}

/// JavaScript object keys are strings: `1` → "1", `true` → "true", `null` → "null".
fn key_string(key: Yaml) -> Result<String, String> {
    match key {
        Yaml::String(s) => Ok(s),
        Yaml::Null => Ok("null".to_owned()),
        Yaml::Bool(b) => Ok(b.to_string()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Tagged(tagged) => key_string(tagged.value),
        Yaml::Sequence(_) | Yaml::Mapping(_) => Ok("[object Object]".to_owned()),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_and_skips_empty_ones() {
        let docs = documents("a: 1\n---\n---\nb: 2\n");
        let indexes: Vec<_> = docs.iter().map(|d| d.index).collect();
        assert_eq!(indexes, vec![0, 2]);
        assert!(docs.iter().all(|d| d.parsed.is_ok()));
    }

    #[test]
    fn non_mapping_document_is_an_error_for_that_document_only() {
        let docs = documents("- a\n---\nb: 2\n");
        assert_eq!(docs[0].parsed.as_ref().unwrap_err(), "document is not a mapping (found a sequence)");
        assert!(docs[1].parsed.is_ok());
    }

    #[test]
    fn duplicate_keys_are_an_error_for_that_document_only() {
        let docs = documents("a: 1\na: 2\n---\nc: 3\n");
        assert!(docs[0].parsed.as_ref().unwrap_err().contains("duplicate"), "{docs:?}");
        assert!(docs[1].parsed.is_ok());
    }

    #[test]
    fn tags_are_dropped_and_merge_keys_stay_literal() {
        let docs = documents("!foo\na: !bar x\n<<: {b: 1}\n");
        let value = docs[0].parsed.as_ref().unwrap();
        assert_eq!(value["a"], "x");
        assert!(value.get("<<").is_some());
    }

    #[test]
    fn syntax_error_is_reported_once_at_its_document() {
        let docs = documents("a: 1\n---\nb: [unclosed\n---\nc: 3\n");
        assert!(docs[0].parsed.is_ok());
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert!(docs[1].parsed.as_ref().unwrap_err().starts_with("malformed YAML"));
    }
}
