//! Multi-document YAML → one JSON value per document, with Backstage's rules: empty documents are
//! skipped, a non-mapping root is an error for that document only.

use serde::Deserialize;
use serde_json::Value;

/// One YAML document of a file, by its position in the file (0-based, counting empty documents).
#[derive(Debug)]
pub struct Document {
    pub index: usize,
    pub parsed: Result<Value, String>,
}

/// Splits a file into documents. A syntax error ends the stream: the YAML parser cannot find the
/// next document boundary reliably after one, so the error is reported at that index.
pub fn documents(text: &str) -> Vec<Document> {
    let mut out = Vec::new();
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(doc) {
            Ok(Value::Null) => {}
            Ok(value @ Value::Object(_)) => out.push(Document { index, parsed: Ok(value) }),
            Ok(other) => out.push(Document {
                index,
                parsed: Err(format!("document is not a mapping (found {})", type_name(&other))),
            }),
            Err(err) => {
                out.push(Document { index, parsed: Err(format!("malformed YAML: {err}")) });
                break;
            }
        }
    }
    out
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
    fn syntax_error_is_reported_at_its_document() {
        let docs = documents("a: 1\n---\nb: [unclosed\n");
        assert!(docs[0].parsed.is_ok());
        assert_eq!(docs[1].index, 1);
        assert!(docs[1].parsed.as_ref().unwrap_err().starts_with("malformed YAML"));
    }
}
