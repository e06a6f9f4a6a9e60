//! Catalog YAML, read as Backstage's reader (the `yaml` npm package, `parseAllDocuments`) reads
//! it, on `saphyr-parser`'s YAML 1.2 event stream: core-schema scalars, `%YAML 1.1` typing,
//! duplicate keys as errors, anchors and aliases under Backstage's budget, a line and column for
//! every syntax error, and reading resumed at the next document after one.

mod compose;
mod fields;
mod schema;

use saphyr_parser::{Event, Parser, ScanError};
use serde_json::Value;

use compose::{Budget, ComposeError, Composer};
pub use fields::{field_positions, join_field, FieldPositions, Position};
pub use schema::Version;

/// Bounds on reading one file.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Documents read from one file; the rest is refused with one error.
    pub max_documents: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self { max_documents: DEFAULT_MAX_DOCUMENTS }
    }
}

/// Four times a 20,000-entity organisation file: far above real files, low enough that a file
/// of empty documents cannot make the walk unbounded.
pub const DEFAULT_MAX_DOCUMENTS: usize = 80_000;

/// The `yaml` package's `maxAliasCount`, which Backstage leaves at its default.
const MAX_ALIAS_COUNT: u64 = 100;

/// Backstage's reader gives up somewhere past 800 levels (its JavaScript stack); 512 stays under
/// that on any machine and keeps every later step (validation, hashing, the store's JSON) well
/// within its own stack.
pub const MAX_DEPTH: usize = 512;

/// Alias copies may add at most this many times the file's own size (and at least
/// `MIN_EXPANSION` bytes): memory follows what a file expands to, not only its length.
const EXPANSION_FACTOR: usize = 4;
const MIN_EXPANSION: usize = 4 * 1024 * 1024;

/// One document of a file, by its position in the file (0-based, counting empty documents).
#[derive(Debug)]
pub struct Document {
    pub index: usize,
    /// The 1-based line the document starts on, when known.
    pub line: Option<usize>,
    /// `None` for an empty document.
    pub parsed: Result<Option<Value>, String>,
}

/// Reads every document of `text`.
pub fn read(text: &str, limits: ReadLimits) -> Vec<Document> {
    let mut reader = Reader {
        ascii: text.is_ascii(),
        out: Vec::new(),
        index: 0,
        version: Version::Core,
        expansion_left: text.len().saturating_mul(EXPANSION_FACTOR).max(MIN_EXPANSION),
        limits,
    };
    let mut offset = 0;
    let mut line_offset = 0;
    while let Some(resume) = reader.read_from(&text[offset..], line_offset) {
        let (bytes, lines) = resume;
        offset += bytes;
        line_offset += lines;
    }
    reader.out
}

struct Reader {
    /// Worked out once for the file: each resumed chunk of an ASCII file is ASCII.
    ascii: bool,
    out: Vec<Document>,
    index: usize,
    version: Version,
    expansion_left: usize,
    limits: ReadLimits,
}

/// Where reading goes on after a syntax error: bytes and lines into the chunk just read.
type Resume = (usize, usize);

impl Reader {
    /// Reads documents from `chunk` until its end (`None`) or a syntax error (where to resume).
    fn read_from(&mut self, chunk: &str, line_offset: usize) -> Option<Resume> {
        let mut parser = Parser::new_from_str(chunk);
        let mut positions = Positions::new(chunk, self.ascii);
        let mut current: Option<Current> = None;
        let mut previous_end = 0;
        loop {
            let (event, span) = match parser.next_event()? {
                Ok(next) => next,
                Err(error) => {
                    let document_line = current.as_ref().map_or(error.marker().line(), |c| c.line);
                    if let Some(current) = current.take() {
                        // What its copies cost stays spent: the budget is the file's.
                        self.expansion_left = current.composer.expansion_left();
                    }
                    return self.syntax_error(chunk, &error, document_line, line_offset);
                }
            };
            match event {
                Event::StreamEnd => return None,
                Event::DocumentStart(_) => {
                    if self.index >= self.limits.max_documents {
                        self.refuse_rest();
                        return None;
                    }
                    let directives = positions.slice(previous_end, span.start.index());
                    self.version = directive_version(directives, self.version);
                    let composer = Composer::new(self.version, Self::BUDGET, self.expansion_left);
                    current = Some(Current { composer, failed: None, line: span.start.line() });
                }
                Event::DocumentEnd => {
                    previous_end = span.end.index();
                    let line = current.as_ref().map(|c| c.line + line_offset);
                    let parsed = current.take().map_or(Ok(None), |c| self.finish(c));
                    self.out.push(Document { index: self.index, line, parsed });
                    self.index += 1;
                }
                event => {
                    let Some(doc) = current.as_mut().filter(|c| c.failed.is_none()) else { continue };
                    let at = |text: String| {
                        format!("{text} (line {}, column {})", span.start.line() + line_offset, span.start.col() + 1)
                    };
                    match doc.composer.push(event) {
                        Ok(_) => {}
                        Err(ComposeError::Exhausted(text)) => {
                            let line = Some(doc.line + line_offset);
                            self.out.push(Document { index: self.index, line, parsed: Err(at(text)) });
                            return None;
                        }
                        Err(ComposeError::Invalid(text)) => doc.failed = Some(ComposeError::Invalid(at(text))),
                    }
                }
            }
        }
    }

    const BUDGET: Budget = Budget { max_alias_count: MAX_ALIAS_COUNT, max_depth: MAX_DEPTH };

    fn finish(&mut self, mut current: Current) -> Result<Option<Value>, String> {
        self.expansion_left = current.composer.expansion_left();
        if let Some(error) = current.failed {
            return Err(message(&error));
        }
        current.composer.push(Event::DocumentEnd).map(|v| v.filter(|v| !v.is_null())).map_err(|e| message(&e))
    }

    fn syntax_error(
        &mut self,
        chunk: &str,
        error: &ScanError,
        document_line: usize,
        line_offset: usize,
    ) -> Option<Resume> {
        let at = error.marker();
        let message =
            format!("malformed YAML at line {}, column {}: {}", at.line() + line_offset, at.col() + 1, error.info());
        self.out.push(Document { index: self.index, line: Some(document_line + line_offset), parsed: Err(message) });
        self.index += 1;
        resume_point(chunk, document_line, at.line(), error.info())
    }

    fn refuse_rest(&mut self) {
        let message = format!(
            "more than {} documents in one file; the rest is not read (catalog.max_documents_per_file)",
            self.limits.max_documents
        );
        self.out.push(Document { index: self.index, line: None, parsed: Err(message) });
    }
}

/// The document being read.
struct Current {
    composer: Composer,
    /// Its first error; the rest of its events are skipped.
    failed: Option<ComposeError>,
    /// The line its `---` (or first node) is on.
    line: usize,
}

/// Byte positions of the parser's character positions, found moving forward only, so a file of
/// many documents is walked once.
struct Positions<'a> {
    text: &'a str,
    ascii: bool,
    chars: std::str::CharIndices<'a>,
    at_char: usize,
    at_byte: usize,
}

impl<'a> Positions<'a> {
    fn new(text: &'a str, ascii: bool) -> Self {
        Self { text, ascii, chars: text.char_indices(), at_char: 0, at_byte: 0 }
    }

    fn byte(&mut self, char_index: usize) -> usize {
        if self.ascii {
            return char_index.min(self.text.len());
        }
        while self.at_char < char_index {
            match self.chars.next() {
                Some((_, c)) => {
                    self.at_char += 1;
                    self.at_byte += c.len_utf8();
                }
                None => break,
            }
        }
        self.at_byte
    }

    /// The text between two character positions (the second not before the first).
    fn slice(&mut self, from: usize, to: usize) -> &'a str {
        let (from, to) = (self.byte(from), self.byte(to));
        self.text.get(from..to.max(from)).unwrap_or("")
    }
}

fn message(error: &ComposeError) -> String {
    match error {
        ComposeError::Invalid(text) | ComposeError::Exhausted(text) => text.clone(),
    }
}

/// The YAML version a document follows: a `%YAML` directive before its `---` sets it; without
/// one, 1.1 carries on to the next document (as in the `yaml` package) and anything else is 1.2.
fn directive_version(region: &str, current: Version) -> Version {
    let directive = region.lines().filter_map(|line| line.strip_prefix("%YAML")).next_back();
    match directive.map(str::trim) {
        Some(version) if version.starts_with("1.1") => Version::Yaml11,
        None if current == Version::Yaml11 => Version::Yaml11,
        Some(_) | None => Version::Core,
    }
}

/// After a syntax error, reading resumes at the next line that starts a document (`---`), as
/// Backstage's reader does: at or after the error's line, but past the failing document's start.
/// A quoted scalar left open runs to the end of the file for that reader, so nothing more is
/// read then. `None`: no later document.
fn resume_point(chunk: &str, document_line: usize, error_line: usize, info: &str) -> Option<Resume> {
    if info.contains("quoted scalar, found unexpected") {
        return None;
    }
    let first = error_line.max(document_line + 1);
    let mut bytes = 0;
    for (number, line) in chunk.split_inclusive('\n').enumerate() {
        let number = number + 1;
        if number >= first && starts_document(line) {
            return Some((bytes, number - 1));
        }
        bytes += line.len();
    }
    None
}

fn starts_document(line: &str) -> bool {
    line.strip_prefix("---").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

#[cfg(test)]
mod tests;
