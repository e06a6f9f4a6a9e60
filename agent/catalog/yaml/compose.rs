//! One document's parser events → one JSON value, the way the `yaml` npm package's
//! `Document#toJSON` builds it: scalars typed by the document's schema, keys as JavaScript object
//! keys, duplicate keys an error, and aliases copied under Backstage's budget (every use counted,
//! weighted by the aliases inside its target) plus a bound on how much copying may add.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use saphyr_parser::{Event, ScalarStyle, Tag};
use serde_json::{Map, Value};

use super::schema::{self, CoreTag, Version};

/// Why a document could not be composed. `Exhausted` stops the reading of the whole file, as
/// the exception the `yaml` package throws stops Backstage's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeError {
    Invalid(String),
    Exhausted(String),
}

/// What one document may cost, beyond its own text.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Weighted alias uses per document (the `yaml` package's `maxAliasCount`).
    pub max_alias_count: u64,
    /// Nesting of collections.
    pub max_depth: usize,
}

/// An anchored node: its value once complete, and what the alias budget needs to weigh it.
struct Anchor {
    value: Option<Value>,
    /// Approximate bytes a copy costs.
    size: usize,
    count: u64,
    /// The `yaml` package's `aliasCount`, computed at the first use and kept.
    weight: u64,
    has_leaf: bool,
    nested: BTreeSet<usize>,
}

/// What the alias weight of a collection depends on: a scalar anywhere in it (weight 1), and
/// the anchors aliased inside it.
#[derive(Default)]
struct Weighing {
    has_leaf: bool,
    nested: BTreeSet<usize>,
    size: usize,
}

enum Container {
    Sequence(Vec<Value>),
    Mapping { map: Map<String, Value>, key: Option<(String, Option<KeyIdentity>)>, seen: HashSet<KeyIdentity> },
}

/// A scalar key as the `yaml` package compares keys for uniqueness: by type and value.
type KeyIdentity = (u8, String);

struct Frame {
    container: Container,
    anchor: usize,
    weighing: Weighing,
}

/// Builds one document from its events (`DocumentStart` excluded, `DocumentEnd` ends it).
pub struct Composer {
    version: Version,
    budget: Budget,
    /// Bytes alias copies may still add in this file; handed on from document to document.
    expansion_left: usize,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchor>,
    root: Option<Value>,
}

impl Composer {
    pub fn new(version: Version, budget: Budget, expansion_left: usize) -> Self {
        Self { version, budget, expansion_left, stack: Vec::new(), anchors: HashMap::new(), root: None }
    }

    /// What alias copies may still add in the rest of the file.
    pub fn expansion_left(&self) -> usize {
        self.expansion_left
    }

    /// Feeds one event. `Ok(Some(value))` once the document is complete.
    pub fn push(&mut self, event: Event<'_>) -> Result<Option<Value>, ComposeError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let (value, identity) = self.scalar(&text, style, tag.as_deref());
                let size = 8 + text.len();
                if anchor > 0 {
                    let weighing = Weighing { has_leaf: true, nested: BTreeSet::new(), size };
                    self.define(anchor, &value, weighing);
                }
                self.note_leaf(size);
                self.add(value, identity)?;
            }
            Event::Alias(id) => self.alias(id)?,
            Event::SequenceStart(anchor, _) => self.open(Container::Sequence(Vec::new()), anchor)?,
            Event::MappingStart(anchor, _) => {
                let mapping = Container::Mapping { map: Map::new(), key: None, seen: HashSet::new() };
                self.open(mapping, anchor)?;
            }
            Event::SequenceEnd | Event::MappingEnd => self.close()?,
            Event::DocumentEnd => return Ok(Some(self.root.take().unwrap_or(Value::Null))),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) => {}
        }
        Ok(None)
    }

    fn scalar(&self, text: &str, style: ScalarStyle, tag: Option<&Tag>) -> (Value, Option<KeyIdentity>) {
        let core = tag.filter(|t| t.is_yaml_core_schema()).and_then(|t| CoreTag::from_suffix(&t.suffix));
        let value = match (style, tag, core) {
            (_, Some(_), Some(core)) => schema::tagged(text, core, self.version),
            // Quoted and block scalars, and unknown tags (the package warns), are strings.
            (ScalarStyle::Plain, None, _) => schema::plain(text, self.version),
            _ => Value::String(text.to_owned()),
        };
        let identity = match &value {
            Value::Null => (0, String::new()),
            Value::Bool(b) => (1, b.to_string()),
            Value::Number(n) => (2, n.to_string()),
            Value::String(s) => (3, s.clone()),
            _ => (4, String::new()),
        };
        (value, Some(identity))
    }

    fn open(&mut self, container: Container, anchor: usize) -> Result<(), ComposeError> {
        if self.stack.len() >= self.budget.max_depth {
            return Err(ComposeError::Invalid(format!("nesting deeper than {} levels", self.budget.max_depth)));
        }
        if anchor > 0 {
            // Registered now so that an alias to a node still open is recognised as circular.
            self.anchors.insert(anchor, Anchor::open());
        }
        self.stack.push(Frame { container, anchor, weighing: Weighing::default() });
        Ok(())
    }

    fn close(&mut self) -> Result<(), ComposeError> {
        let Some(frame) = self.stack.pop() else { return Ok(()) };
        let value = match frame.container {
            Container::Sequence(items) => Value::Array(items),
            Container::Mapping { map, .. } => Value::Object(map),
        };
        if let Some(parent) = self.stack.last_mut() {
            parent.weighing.has_leaf |= frame.weighing.has_leaf;
            parent.weighing.nested.extend(frame.weighing.nested.iter().copied());
            parent.weighing.size += frame.weighing.size;
        }
        if frame.anchor > 0 {
            self.define(frame.anchor, &value, frame.weighing);
        }
        self.add(value, None)
    }

    fn define(&mut self, id: usize, value: &Value, weighing: Weighing) {
        // Copies are made only when an alias is used; a node never aliased costs nothing.
        let anchor = Anchor {
            value: Some(value.clone()),
            size: weighing.size,
            // The package counts the anchored node itself as its first use.
            count: 1,
            weight: 0,
            has_leaf: weighing.has_leaf,
            nested: weighing.nested,
        };
        self.anchors.insert(id, anchor);
    }

    fn alias(&mut self, id: usize) -> Result<(), ComposeError> {
        let Some(anchor) = self.anchors.get(&id) else {
            return Err(ComposeError::Invalid("unresolved alias: its anchor is not defined in this document".into()));
        };
        if anchor.value.is_none() {
            return Err(ComposeError::Invalid("an alias refers to the node that contains it".into()));
        }
        let weight = if anchor.weight == 0 { self.weigh(id) } else { anchor.weight };
        let anchor = self.anchors.get_mut(&id).expect("the anchor was just found");
        anchor.weight = weight;
        anchor.count += 1;
        if anchor.count.saturating_mul(anchor.weight) > self.budget.max_alias_count {
            return Err(ComposeError::Exhausted(
                "excessive alias count indicates a resource exhaustion attack; the rest of the file is not read".into(),
            ));
        }
        if anchor.size > self.expansion_left {
            return Err(ComposeError::Exhausted(
                "aliases expand to more than this file may; the rest of the file is not read".into(),
            ));
        }
        self.expansion_left -= anchor.size;
        let value = anchor.value.clone().unwrap_or(Value::Null);
        let size = anchor.size;
        if let Some(frame) = self.stack.last_mut() {
            frame.weighing.nested.insert(id);
            frame.weighing.size += size;
        }
        self.add(value, None)
    }

    /// The `yaml` package's `getAliasCount`: the largest weight of any leaf, where a scalar
    /// weighs 1 and an alias inside weighs its anchor's uses times its anchor's weight.
    fn weigh(&self, id: usize) -> u64 {
        let Some(anchor) = self.anchors.get(&id) else { return 0 };
        let nested = anchor.nested.iter().filter_map(|n| self.anchors.get(n)).map(|n| n.count.saturating_mul(n.weight));
        nested.chain(std::iter::once(u64::from(anchor.has_leaf))).max().unwrap_or(0)
    }

    fn note_leaf(&mut self, size: usize) {
        if let Some(frame) = self.stack.last_mut() {
            frame.weighing.has_leaf = true;
            frame.weighing.size += size;
        }
    }

    /// Places a completed node in its parent (as an item, a key, or a value), or as the root.
    fn add(&mut self, value: Value, identity: Option<KeyIdentity>) -> Result<(), ComposeError> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(value);
            return Ok(());
        };
        match &mut frame.container {
            Container::Sequence(items) => items.push(value),
            Container::Mapping { map, key, seen } => match key.take() {
                None => *key = Some((object_key(&value), identity)),
                Some((name, identity)) => {
                    if let Some(identity) = identity {
                        if !seen.insert(identity) {
                            return Err(ComposeError::Invalid(format!("map keys must be unique (\"{name}\")")));
                        }
                    }
                    map.insert(name, value);
                }
            },
        }
        Ok(())
    }
}

impl Anchor {
    fn open() -> Self {
        Self { value: None, size: 0, count: 0, weight: 0, has_leaf: false, nested: BTreeSet::new() }
    }
}

/// A key as a JavaScript object holds it: `null` is the empty string, other scalars their
/// string form, and collections a flow rendering (the `yaml` package warns and stringifies).
fn object_key(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(_) | Value::Object(_) => flow(value).into_owned(),
    }
}

fn flow(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Null => Cow::Borrowed("null"),
        Value::String(s) => Cow::Borrowed(s),
        Value::Array(items) if items.is_empty() => Cow::Borrowed("[]"),
        Value::Object(map) if map.is_empty() => Cow::Borrowed("{}"),
        Value::Array(items) => Cow::Owned(format!("[ {} ]", items.iter().map(flow).collect::<Vec<_>>().join(", "))),
        Value::Object(map) => Cow::Owned(format!(
            "{{ {} }}",
            map.iter().map(|(k, v)| format!("{k}: {}", flow(v))).collect::<Vec<_>>().join(", ")
        )),
        other => Cow::Owned(other.to_string()),
    }
}
