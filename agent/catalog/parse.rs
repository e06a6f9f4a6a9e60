//! Multi-document YAML → one JSON value per document, with Backstage's rules (`parseEntityYaml`):
//! empty documents are skipped, a non-mapping root or a YAML error (including duplicate keys) is
//! an error for that document only, merge keys stay literal, unknown tags are ignored. The YAML
//! itself is read by [`crate::yaml`], as Backstage's `yaml` package reads it.

use serde_json::Value;

use crate::yaml::{self, ReadLimits};

/// One YAML document of a file, by its position in the file (0-based, counting empty documents).
#[derive(Debug)]
pub struct Document {
    pub index: usize,
    /// The 1-based line the document starts on, when known.
    pub line: Option<usize>,
    pub parsed: Result<Value, String>,
}

/// Splits a file into its non-empty documents, with the default limits.
pub fn documents(text: &str) -> Vec<Document> {
    documents_with(text, ReadLimits::default())
}

/// Splits a file into its non-empty documents. After a syntax error reading resumes at the next
/// document; past the alias budget or `limits` the rest of the file is refused with one error.
pub fn documents_with(text: &str, limits: ReadLimits) -> Vec<Document> {
    yaml::read(text, limits)
        .into_iter()
        .filter_map(|doc| match doc.parsed {
            Ok(None) => None,
            Ok(Some(value)) => Some(Document { index: doc.index, line: doc.line, parsed: root_mapping(value) }),
            Err(message) => Some(Document { index: doc.index, line: doc.line, parsed: Err(message) }),
        })
        .collect()
}

fn root_mapping(value: Value) -> Result<Value, String> {
    match value {
        Value::Object(_) => Ok(value),
        other => Err(format!("document is not a mapping (found {})", type_name(&other))),
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
        assert!(docs[0].parsed.as_ref().unwrap_err().contains("must be unique"), "{docs:?}");
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
    fn syntax_error_is_reported_at_its_document_and_reading_resumes() {
        let docs = documents("a: 1\n---\nb: [unclosed\n---\nc: 3\n");
        assert!(docs[0].parsed.is_ok());
        assert_eq!(docs.len(), 3, "{docs:?}");
        assert!(docs[1].parsed.as_ref().unwrap_err().starts_with("malformed YAML"));
        assert!(docs[2].parsed.is_ok());
    }
}
