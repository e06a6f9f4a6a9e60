//! Where each field of a YAML document is written: dotted paths (`spec.owner`,
//! `sources[1].git.token`) to the line and column of the key (or of the item, in a list), so
//! that an error about a field can point at it.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// A 1-based line and column.
pub type Position = (usize, usize);

/// The fields of one document and where they are written.
#[derive(Debug, Default, Clone)]
pub struct FieldPositions(HashMap<String, Position>);

impl FieldPositions {
    /// Where `path` is written, or else its nearest written parent (a missing key is reported
    /// at the mapping that lacks it). `None` for the document root.
    pub fn locate(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(position) = self.0.get(path) {
                return Some(*position);
            }
            path = parent(path)?;
        }
    }
}

impl FieldPositions {
    /// The same fields, `lines` further down (a document read on its own, out of a file).
    #[must_use]
    pub fn shifted(self, lines: usize) -> Self {
        Self(self.0.into_iter().map(|(path, (line, column))| (path, (line + lines, column))).collect())
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → none.
fn parent(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, next: usize },
}

/// The field positions of each document of `text`, in order; reading stops at a syntax error
/// (the documents before it keep their positions).
pub fn field_positions(text: &str) -> Vec<FieldPositions> {
    let mut documents = Vec::new();
    let mut current = FieldPositions::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((event, span))) = parser.next_event() {
        let at = (span.start.line(), span.start.col() + 1);
        match event {
            Event::DocumentStart(_) => stack.clear(),
            Event::DocumentEnd => documents.push(std::mem::take(&mut current)),
            Event::Scalar(text, ..) => {
                if let Some(Frame::Mapping { path, key: key @ None }) = stack.last_mut() {
                    let field = join_field(path, &text);
                    current.0.entry(field.clone()).or_insert(at);
                    *key = Some(field);
                } else {
                    value_path(&mut stack, &mut current, at);
                }
            }
            Event::Alias(_) => {
                value_path(&mut stack, &mut current, at);
            }
            Event::MappingStart(..) => {
                let path = value_path(&mut stack, &mut current, at);
                stack.push(Frame::Mapping { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = value_path(&mut stack, &mut current, at);
                stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    documents
}

/// The path of the value that starts now, recording where a list item starts; a mapping's
/// value completes its key.
fn value_path(stack: &mut [Frame], current: &mut FieldPositions, at: Position) -> String {
    match stack.last_mut() {
        None => String::new(),
        Some(Frame::Mapping { key, .. }) => key.take().unwrap_or_default(),
        Some(Frame::Sequence { path, next }) => {
            let item = format!("{path}[{next}]");
            *next += 1;
            current.0.entry(item.clone()).or_insert(at);
            item
        }
    }
}

/// The path of `key` inside the mapping at `path` (`spec` + `owner` → `spec.owner`).
pub fn join_field(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_items_are_found_where_they_are_written() {
        let text = "apiVersion: v1\nkind: Component\nmetadata:\n  name: a\nspec:\n  owner: [x, {team: y}]\n---\nsources:\n  - name: s\n    git: { url: u }\n";
        let docs = field_positions(text);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].locate("kind"), Some((2, 1)));
        assert_eq!(docs[0].locate("metadata.name"), Some((4, 3)));
        assert_eq!(docs[0].locate("spec.owner[1].team"), Some((6, 15)));
        assert_eq!(docs[0].locate("spec.owner[0]"), Some((6, 11)));
        assert_eq!(docs[0].locate("spec.lifecycle"), Some((5, 1)), "a missing key: its mapping");
        assert_eq!(docs[0].locate("nothing"), None);
        assert_eq!(docs[1].locate("sources[0].git.url"), Some((10, 12)));
        assert_eq!(docs[1].locate("sources[0]"), Some((9, 5)));
    }

    #[test]
    fn a_syntax_error_keeps_the_documents_before_it() {
        let docs = field_positions("a: 1\n---\nb: [\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].locate("a"), Some((1, 1)));
    }
}
