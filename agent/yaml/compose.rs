//! One document's parser events → one JSON value, the way the `yaml` npm package's
//! `Document#toJSON` builds it: scalars typed by the document's schema, keys as JavaScript object
//! keys, duplicate keys an error, `<<` merges under YAML 1.1, and aliases copied under Backstage's
//! budget (every use counted, weighted by the aliases inside its target) plus a bound on what
//! copies may cost, so a file's memory follows what it may expand to.

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
    /// Nesting of collections, aliased copies included.
    pub max_depth: usize,
}

/// What a node costs besides its text: every node, even an empty collection, is charged, so
/// no copy is free.
const NODE_COST: usize = 16;

/// An anchored node: its value once complete, and what the alias budget needs to weigh it.
struct Anchor {
    value: Option<Value>,
    shape: Shape,
    count: u64,
    /// The `yaml` package's `aliasCount`, computed at the first use and kept.
    weight: u64,
}

/// What the budgets need to know of a subtree: a scalar anywhere in it (alias weight 1), the
/// anchors aliased inside it, its cost and its height.
#[derive(Default, Clone)]
struct Shape {
    has_leaf: bool,
    nested: BTreeSet<usize>,
    cost: usize,
    height: usize,
}

impl Shape {
    fn absorb(&mut self, child: &Shape) {
        self.has_leaf |= child.has_leaf;
        self.nested.extend(child.nested.iter().copied());
        self.cost = self.cost.saturating_add(child.cost);
        self.height = self.height.max(child.height);
    }
}

/// A pending mapping key: its object key, its identity for the uniqueness check, and whether it
/// is a YAML 1.1 merge key.
struct Key {
    name: String,
    identity: Option<KeyIdentity>,
    merge: bool,
}

enum Container {
    Sequence(Vec<Value>),
    Mapping { map: Map<String, Value>, key: Option<Key>, seen: HashSet<KeyIdentity> },
}

/// A scalar key as the `yaml` package compares keys for uniqueness: by type and value.
type KeyIdentity = (u8, String);

struct Frame {
    container: Container,
    anchor: usize,
    /// The children's shape; the frame's own node adds one level and `NODE_COST`.
    children: Shape,
}

/// A scalar as composed: its value, identity as a key, whether it is a merge key, its shape.
struct Scalar {
    value: Value,
    identity: KeyIdentity,
    merge: bool,
}

/// Builds one document from its events (`DocumentStart` excluded, `DocumentEnd` ends it).
pub struct Composer {
    version: Version,
    budget: Budget,
    /// Bytes copies (of anchored nodes, and by aliases) may still cost in this file; handed on
    /// from document to document.
    expansion_left: usize,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchor>,
    root: Option<Value>,
}

impl Composer {
    pub fn new(version: Version, budget: Budget, expansion_left: usize) -> Self {
        Self { version, budget, expansion_left, stack: Vec::new(), anchors: HashMap::new(), root: None }
    }

    /// What copies may still cost in the rest of the file.
    pub fn expansion_left(&self) -> usize {
        self.expansion_left
    }

    /// Feeds one event. `Ok(Some(value))` once the document is complete.
    pub fn push(&mut self, event: Event<'_>) -> Result<Option<Value>, ComposeError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let scalar = self.scalar(&text, style, tag.as_deref());
                let shape = Shape { has_leaf: true, nested: BTreeSet::new(), cost: NODE_COST + text.len(), height: 0 };
                if anchor > 0 {
                    self.define(anchor, &scalar.value, shape.clone())?;
                }
                self.note(&shape);
                self.add(scalar.value, Some(scalar.identity), scalar.merge)?;
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

    fn scalar(&self, text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Scalar {
        let core = tag.filter(|t| t.is_yaml_core_schema()).and_then(|t| CoreTag::from_suffix(&t.suffix));
        let plain = style == ScalarStyle::Plain && tag.is_none();
        let value = match (tag, core) {
            (Some(_), Some(core)) => schema::tagged(text, core, self.version),
            // Plain scalars are typed; quoted and block scalars, and unknown tags (the package
            // warns), are strings.
            _ if plain => schema::plain(text, self.version),
            _ => Value::String(text.to_owned()),
        };
        let identity = match &value {
            Value::Null => (0, String::new()),
            Value::Bool(b) => (1, b.to_string()),
            Value::Number(n) => (2, n.to_string()),
            Value::String(s) => (3, s.clone()),
            _ => (4, String::new()),
        };
        // Under YAML 1.1 the `yaml` package merges `<<` keys even when merging is off.
        let merge = plain && text == "<<" && self.version == Version::Yaml11;
        Scalar { value, identity, merge }
    }

    fn open(&mut self, container: Container, anchor: usize) -> Result<(), ComposeError> {
        if self.stack.len() >= self.budget.max_depth {
            return Err(self.too_deep());
        }
        if anchor > 0 {
            // Registered now so that an alias to a node still open is recognised as circular.
            self.anchors.insert(anchor, Anchor { value: None, shape: Shape::default(), count: 0, weight: 0 });
        }
        self.stack.push(Frame { container, anchor, children: Shape::default() });
        Ok(())
    }

    fn too_deep(&self) -> ComposeError {
        ComposeError::Invalid(format!("nesting deeper than {} levels", self.budget.max_depth))
    }

    fn close(&mut self) -> Result<(), ComposeError> {
        let Some(frame) = self.stack.pop() else { return Ok(()) };
        let value = match frame.container {
            Container::Sequence(items) => Value::Array(items),
            Container::Mapping { map, .. } => Value::Object(map),
        };
        let mut shape = frame.children;
        shape.cost = shape.cost.saturating_add(NODE_COST);
        shape.height += 1;
        self.note(&shape);
        if frame.anchor > 0 {
            self.define(frame.anchor, &value, shape)?;
        }
        self.add(value, None, false)
    }

    /// Keeps a copy of an anchored node for its aliases; the copy is charged like theirs.
    fn define(&mut self, id: usize, value: &Value, shape: Shape) -> Result<(), ComposeError> {
        self.charge(shape.cost)?;
        // The package counts the anchored node itself as its first use.
        self.anchors.insert(id, Anchor { value: Some(value.clone()), shape, count: 1, weight: 0 });
        Ok(())
    }

    fn charge(&mut self, cost: usize) -> Result<(), ComposeError> {
        if cost > self.expansion_left {
            return Err(ComposeError::Exhausted(
                "aliases expand to more than this file may; the rest of the file is not read".into(),
            ));
        }
        self.expansion_left -= cost;
        Ok(())
    }

    fn alias(&mut self, id: usize) -> Result<(), ComposeError> {
        let Some(anchor) = self.anchors.get(&id) else {
            return Err(ComposeError::Invalid("unresolved alias: its anchor is not defined in this document".into()));
        };
        if anchor.value.is_none() {
            return Err(ComposeError::Invalid("an alias refers to the node that contains it".into()));
        }
        if self.stack.len() + anchor.shape.height > self.budget.max_depth {
            return Err(self.too_deep());
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
        let (value, shape) = (anchor.value.clone().unwrap_or(Value::Null), anchor.shape.clone());
        self.charge(shape.cost)?;
        // Inside its parent an alias weighs by its anchor's uses, not as a leaf.
        let seen = Shape { has_leaf: false, nested: BTreeSet::from([id]), cost: shape.cost, height: shape.height };
        self.note(&seen);
        self.add(value, None, false)
    }

    /// The `yaml` package's `getAliasCount`: the largest weight of any leaf, where a scalar
    /// weighs 1 and an alias inside weighs its anchor's uses times its anchor's weight.
    fn weigh(&self, id: usize) -> u64 {
        let Some(anchor) = self.anchors.get(&id) else { return 0 };
        let nested =
            anchor.shape.nested.iter().filter_map(|n| self.anchors.get(n)).map(|n| n.count.saturating_mul(n.weight));
        nested.chain(std::iter::once(u64::from(anchor.shape.has_leaf))).max().unwrap_or(0)
    }

    /// Adds a finished child's shape to the open collection's.
    fn note(&mut self, shape: &Shape) {
        if let Some(frame) = self.stack.last_mut() {
            frame.children.absorb(shape);
        }
    }

    /// Places a completed node in its parent (as an item, a key, or a value), or as the root.
    fn add(&mut self, value: Value, identity: Option<KeyIdentity>, merge: bool) -> Result<(), ComposeError> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(value);
            return Ok(());
        };
        match &mut frame.container {
            Container::Sequence(items) => items.push(value),
            Container::Mapping { map, key, seen } => match key.take() {
                None => *key = Some(Key { name: object_key(&value), identity, merge }),
                Some(Key { merge: true, .. }) => merge_into(map, value)?,
                Some(Key { name, identity, .. }) => {
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

/// A YAML 1.1 merge: the keys of a mapping (or of each mapping of a list, earlier ones first)
/// that the map does not have yet; keys written later still override them.
fn merge_into(map: &mut Map<String, Value>, source: Value) -> Result<(), ComposeError> {
    let sources = match source {
        Value::Object(one) => vec![one],
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(one) => Ok(one),
                _ => Err(()),
            })
            .collect::<Result<_, _>>()
            .map_err(|()| ComposeError::Invalid("merge sources must be mappings".into()))?,
        _ => return Err(ComposeError::Invalid("merge sources must be mappings".into())),
    };
    for source in sources {
        for (key, value) in source {
            map.entry(key).or_insert(value);
        }
    }
    Ok(())
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
