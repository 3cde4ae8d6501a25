//! JSON Schema for incoming records: what a data team declares a record holds, checked before
//! the record is decoded, so that a record that breaks it becomes a dead letter naming the
//! field and the type it should have; and whether a new version of a schema is compatible
//! with the old one, as schema registries define it.
//!
//! weir reads the part of JSON Schema that describes records: `type` (one or a list),
//! `properties`, `required`, `additionalProperties` (true or false), `items`, `enum`,
//! `minimum`, `maximum`, `minLength`, `maxLength`, and the annotations (`$schema`, `$id`,
//! `title`, `description`, `default`, `examples`, `$comment`). Any other keyword is refused
//! when the schema is read, naming it: a constraint weir would not check must not look
//! checked.
//!
//! Compatibility is the subset relation: a new schema is backward compatible when it accepts
//! every record the old one accepts, forward compatible when the old one accepts every record
//! the new one accepts. So in an open content model (`additionalProperties` left true) adding
//! a field breaks backward compatibility, because the old schema let that field hold
//! anything, and in a closed one it breaks forward compatibility; schema registries judge
//! JSON Schema changes the same way.
//!
//! ```
//! use weir_connectors::schema::{Compatibility, JsonSchema};
//!
//! let old = JsonSchema::parse(r#"{"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}"#)?;
//! let new = JsonSchema::parse(r#"{"type": "object", "properties": {"id": {"type": "integer"}, "note": {"type": "string"}}, "required": ["id"]}"#)?;
//! assert!(new.check(&serde_json::json!({"id": 7})).is_ok());
//! assert_eq!(
//!     new.check(&serde_json::json!({"id": "7"})).unwrap_err(),
//!     "field `id`: expected integer, found string \"7\""
//! );
//! // Old readers accept records with a note; new readers may refuse an old record whose
//! // unlisted `note` was a number.
//! assert!(Compatibility::Forward.check(&old, &new).is_empty());
//! assert!(!Compatibility::Backward.check(&old, &new).is_empty());
//! # Ok::<(), String>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The JSON types a schema's `type` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "null" => Kind::Null,
            "boolean" => Kind::Boolean,
            "integer" => Kind::Integer,
            "number" => Kind::Number,
            "string" => Kind::String,
            "array" => Kind::Array,
            "object" => Kind::Object,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Boolean => "boolean",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }

    /// The most specific kind of `value` (a number without a fraction is an integer).
    fn of(value: &Value) -> Kind {
        match value {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Boolean,
            Value::Number(number) if number.is_i64() || number.is_u64() => Kind::Integer,
            Value::Number(number) if number.as_f64().is_some_and(|n| n.fract() == 0.0) => {
                Kind::Integer
            }
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    /// Whether every value of kind `self` is also of kind `other`.
    fn within(self, other: Kind) -> bool {
        self == other || (self == Kind::Integer && other == Kind::Number)
    }
}

/// One schema node: what a value at one place of a record may be.
#[derive(Clone, Debug, Default, PartialEq)]
struct Node {
    /// The kinds allowed; none listed: any.
    kinds: Option<BTreeSet<Kind>>,
    properties: BTreeMap<String, Node>,
    required: BTreeSet<String>,
    /// Whether an object may hold properties not listed (`additionalProperties`).
    closed: bool,
    items: Option<Box<Node>>,
    allowed: Option<Vec<Value>>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
}

/// Keywords that describe and do not constrain.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "title",
    "description",
    "default",
    "examples",
    "$comment",
];

impl Node {
    fn parse(schema: &Value, path: &str) -> Result<Node, String> {
        let Value::Object(keywords) = schema else {
            return Err(format!("{}: a schema must be an object", place(path)));
        };
        let mut node = Node::default();
        for (keyword, value) in keywords {
            let at = |what: &str| format!("{}: `{keyword}` {what}", place(path));
            match keyword.as_str() {
                "type" => {
                    let names: Vec<&Value> = match value {
                        Value::Array(names) => names.iter().collect(),
                        name => vec![name],
                    };
                    let kinds = names
                        .iter()
                        .map(|name| name.as_str().and_then(Kind::parse))
                        .collect::<Option<BTreeSet<_>>>()
                        .ok_or_else(|| at("must name JSON types, such as \"string\""))?;
                    node.kinds = Some(kinds);
                }
                "properties" => {
                    let Value::Object(properties) = value else {
                        return Err(at("must be an object"));
                    };
                    for (name, property) in properties {
                        let child = Node::parse(property, &join(path, name))?;
                        node.properties.insert(name.clone(), child);
                    }
                }
                "required" => {
                    node.required = value
                        .as_array()
                        .and_then(|names| {
                            names
                                .iter()
                                .map(|name| name.as_str().map(str::to_owned))
                                .collect()
                        })
                        .ok_or_else(|| at("must be a list of field names"))?;
                }
                "additionalProperties" => {
                    node.closed = !value
                        .as_bool()
                        .ok_or_else(|| at("must be true or false here"))?;
                }
                "items" => node.items = Some(Box::new(Node::parse(value, &format!("{path}[]"))?)),
                "enum" => {
                    node.allowed = Some(
                        value
                            .as_array()
                            .cloned()
                            .ok_or_else(|| at("must be a list"))?,
                    );
                }
                "minimum" => {
                    node.minimum = Some(value.as_f64().ok_or_else(|| at("must be a number"))?)
                }
                "maximum" => {
                    node.maximum = Some(value.as_f64().ok_or_else(|| at("must be a number"))?)
                }
                "minLength" => {
                    node.min_length = Some(value.as_u64().ok_or_else(|| at("must be a count"))?)
                }
                "maxLength" => {
                    node.max_length = Some(value.as_u64().ok_or_else(|| at("must be a count"))?)
                }
                annotation if ANNOTATIONS.contains(&annotation) => {}
                _ => {
                    return Err(at(
                        "is not a keyword weir checks; leave it out or ask for it",
                    ))
                }
            }
        }
        if let Some(missing) = node
            .required
            .iter()
            .find(|name| node.closed && !node.properties.contains_key(*name))
        {
            return Err(format!(
                "{}: `{missing}` is required but additionalProperties is false and it is not \
                 among the properties: no record could match",
                place(path)
            ));
        }
        Ok(node)
    }

    fn check(&self, value: &Value, path: &str) -> Result<(), String> {
        let kind = Kind::of(value);
        if let Some(kinds) = &self.kinds {
            if !kinds.iter().any(|allowed| kind.within(*allowed)) {
                let names: Vec<_> = kinds.iter().map(|kind| kind.name()).collect();
                return Err(format!(
                    "{}: expected {}, found {} {}",
                    place(path),
                    names.join(" or "),
                    kind.name(),
                    shown(value)
                ));
            }
        }
        if let Some(allowed) = &self.allowed {
            if !allowed.contains(value) {
                return Err(format!(
                    "{}: {} is not one of {}",
                    place(path),
                    shown(value),
                    Value::Array(allowed.clone())
                ));
            }
        }
        match value {
            Value::Number(number) => {
                let number = number.as_f64().unwrap_or(f64::NAN);
                if let Some(minimum) = self.minimum.filter(|minimum| number < *minimum) {
                    return Err(format!(
                        "{}: {number} is below the minimum {minimum}",
                        place(path)
                    ));
                }
                if let Some(maximum) = self.maximum.filter(|maximum| number > *maximum) {
                    return Err(format!(
                        "{}: {number} is above the maximum {maximum}",
                        place(path)
                    ));
                }
            }
            Value::String(text) => {
                let length = text.chars().count() as u64;
                if self.min_length.is_some_and(|min| length < min)
                    || self.max_length.is_some_and(|max| length > max)
                {
                    return Err(format!(
                        "{}: a string of {length} characters, outside {}..={}",
                        place(path),
                        self.min_length.unwrap_or(0),
                        self.max_length.map_or("".into(), |max| max.to_string())
                    ));
                }
            }
            Value::Array(items) => {
                if let Some(schema) = &self.items {
                    for (index, item) in items.iter().enumerate() {
                        schema.check(item, &format!("{path}[{index}]"))?;
                    }
                }
            }
            Value::Object(fields) => {
                if let Some(missing) = self
                    .required
                    .iter()
                    .find(|name| !fields.contains_key(*name))
                {
                    return Err(format!("{}: missing", place(&join(path, missing))));
                }
                for (name, field) in fields {
                    match self.properties.get(name) {
                        Some(schema) => schema.check(field, &join(path, name))?,
                        None if self.closed => {
                            return Err(format!(
                                "{}: not a field of the schema (additionalProperties is false)",
                                place(&join(path, name))
                            ))
                        }
                        None => {}
                    }
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
        Ok(())
    }

    /// Why some value `writer` accepts may be refused by `self` (none: every value `writer`
    /// accepts, `self` accepts), at `path`.
    fn reads_all_of(&self, writer: &Node, path: &str, why: &mut Vec<String>) {
        let here = place(path);
        match (&self.kinds, &writer.kinds) {
            (None, _) => {}
            (Some(_), None) => why.push(format!("{here}: the writer allows any type")),
            (Some(reader), Some(written)) => {
                for kind in written {
                    if !reader.iter().any(|allowed| kind.within(*allowed)) {
                        let names: Vec<_> = reader.iter().map(|kind| kind.name()).collect();
                        why.push(format!(
                            "{here}: the writer allows {}, the reader only {}",
                            kind.name(),
                            names.join(" or ")
                        ));
                    }
                }
            }
        }
        if let Some(reader) = &self.allowed {
            match &writer.allowed {
                None => why.push(format!(
                    "{here}: the reader allows only {}",
                    Value::Array(reader.clone())
                )),
                Some(written) => {
                    for value in written.iter().filter(|value| !reader.contains(value)) {
                        why.push(format!(
                            "{here}: the writer allows {value}, the reader does not"
                        ));
                    }
                }
            }
        }
        let bound = |name: &str,
                     reader: Option<f64>,
                     writer: Option<f64>,
                     tighter: fn(f64, f64) -> bool,
                     why: &mut Vec<String>| {
            if let Some(reader) = reader {
                if writer.is_none_or(|writer| tighter(reader, writer)) {
                    why.push(format!(
                        "{here}: the reader's {name} {reader} is tighter than the writer's {}",
                        writer.map_or("(none)".into(), |w| w.to_string())
                    ));
                }
            }
        };
        bound(
            "minimum",
            self.minimum,
            writer.minimum,
            |reader, writer| reader > writer,
            why,
        );
        bound(
            "maximum",
            self.maximum,
            writer.maximum,
            |reader, writer| reader < writer,
            why,
        );
        let length = |n: Option<u64>| n.map(|n| n as f64);
        bound(
            "minLength",
            length(self.min_length),
            length(writer.min_length),
            |reader, writer| reader > writer,
            why,
        );
        bound(
            "maxLength",
            length(self.max_length),
            length(writer.max_length),
            |reader, writer| reader < writer,
            why,
        );
        if let Some(reader) = &self.items {
            match &writer.items {
                Some(written) => reader.reads_all_of(written, &format!("{path}[]"), why),
                None => reader.reads_all_of(&Node::default(), &format!("{path}[]"), why),
            }
        }
        for name in self.required.difference(&writer.required) {
            why.push(format!(
                "{}: the reader requires it, the writer does not",
                place(&join(path, name))
            ));
        }
        for (name, reader) in &self.properties {
            let at = join(path, name);
            match writer.properties.get(name) {
                Some(written) => reader.reads_all_of(written, &at, why),
                // The writer may send this field with any value.
                None if !writer.closed => reader.reads_all_of(&Node::default(), &at, why),
                None => {}
            }
        }
        if self.closed {
            for name in writer
                .properties
                .keys()
                .filter(|name| !self.properties.contains_key(*name))
            {
                why.push(format!(
                    "{}: the writer has it, the reader allows no fields beyond its own",
                    place(&join(path, name))
                ));
            }
            if !writer.closed {
                why.push(format!(
                    "{here}: the writer allows any other field, the reader none"
                ));
            }
        }
    }
}

/// `a.b` for field `b` under `a`; `b` at the top.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// How an error names a place in a record.
fn place(path: &str) -> String {
    if path.is_empty() {
        "the record".to_owned()
    } else {
        format!("field `{path}`")
    }
}

/// A value as an error shows it: short values whole, long ones cut.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// A JSON Schema that records are checked against.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonSchema {
    root: Node,
}

impl JsonSchema {
    /// Reads a schema from its JSON text; the error names what weir cannot check and where.
    pub fn parse(text: &str) -> Result<JsonSchema, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
        Node::parse(&value, "").map(|root| JsonSchema { root })
    }

    /// Reads the schema in the file `path`.
    pub fn from_file(path: &std::path::Path) -> Result<JsonSchema, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        JsonSchema::parse(&text).map_err(|reason| format!("{}: {reason}", path.display()))
    }

    /// Checks `value`; the error names the first field that breaks the schema and how.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        self.root.check(value, "")
    }

    /// Checks the JSON document `bytes`.
    pub fn check_bytes(&self, bytes: &[u8]) -> Result<(), String> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|error| format!("JSON decode: {error}"))?;
        self.check(&value)
            .map_err(|reason| format!("schema: {reason}"))
    }
}

/// Which way a new schema must be compatible with the old one, as schema registries name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compatibility {
    /// Readers with the new schema read every record written with the old (upgrade readers
    /// first).
    Backward,
    /// Readers with the old schema read every record written with the new (upgrade writers
    /// first).
    Forward,
    /// Both.
    Full,
}

impl Compatibility {
    /// Why `new` is not compatible with `old` this way; empty when it is.
    pub fn check(self, old: &JsonSchema, new: &JsonSchema) -> Vec<String> {
        let mut why = Vec::new();
        if matches!(self, Compatibility::Backward | Compatibility::Full) {
            let mut backward = Vec::new();
            new.root.reads_all_of(&old.root, "", &mut backward);
            why.extend(backward.into_iter().map(|reason| {
                format!(
                    "backward (new reads old): {}",
                    reason
                        .replace("the reader", "new")
                        .replace("the writer", "old")
                )
            }));
        }
        if matches!(self, Compatibility::Forward | Compatibility::Full) {
            let mut forward = Vec::new();
            old.root.reads_all_of(&new.root, "", &mut forward);
            why.extend(forward.into_iter().map(|reason| {
                format!(
                    "forward (old reads new): {}",
                    reason
                        .replace("the reader", "old")
                        .replace("the writer", "new")
                )
            }));
        }
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(value: Value) -> JsonSchema {
        JsonSchema::parse(&value.to_string()).unwrap()
    }

    /// A record schema with `properties`, `required` fields and an open or closed content model.
    fn record(properties: Value, required: &[&str], closed: bool) -> JsonSchema {
        schema(json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": !closed,
        }))
    }

    fn compatible(way: Compatibility, old: &JsonSchema, new: &JsonSchema) -> bool {
        way.check(old, new).is_empty()
    }

    fn base() -> JsonSchema {
        record(
            json!({"id": {"type": "integer"}, "name": {"type": "string"}}),
            &["id"],
            false,
        )
    }

    #[test]
    fn records_that_break_the_schema_are_named_by_field_and_expected_type() {
        let readings = schema(json!({
            "type": "object",
            "properties": {
                "device": {"type": "string", "minLength": 1},
                "celsius": {"type": "number", "minimum": -40, "maximum": 125},
                "tags": {"type": "array", "items": {"type": "string"}},
                "unit": {"enum": ["C", "F"]},
                "where": {"type": "object", "properties": {"floor": {"type": ["integer", "null"]}}}
            },
            "required": ["device", "celsius"],
            "additionalProperties": false
        }));
        let ok = json!({"device": "d1", "celsius": 21.5, "tags": ["a"], "unit": "C", "where": {"floor": null}});
        assert_eq!(readings.check(&ok), Ok(()));
        for (record, reason) in [
            (
                json!({"device": "d1", "celsius": "n/a"}),
                "field `celsius`: expected number, found string \"n/a\"",
            ),
            (json!({"celsius": 1}), "field `device`: missing"),
            (
                json!({"device": "d1", "celsius": 999}),
                "field `celsius`: 999 is above the maximum 125",
            ),
            (
                json!({"device": "", "celsius": 1}),
                "field `device`: a string of 0 characters, outside 1..=",
            ),
            (
                json!({"device": "d", "celsius": 1, "tags": ["a", 2]}),
                "field `tags[1]`: expected string, found integer 2",
            ),
            (
                json!({"device": "d", "celsius": 1, "unit": "K"}),
                "field `unit`: \"K\" is not one of [\"C\",\"F\"]",
            ),
            (
                json!({"device": "d", "celsius": 1, "where": {"floor": 1.5}}),
                "field `where.floor`: expected null or integer, found number 1.5",
            ),
            (
                json!({"device": "d", "celsius": 1, "extra": true}),
                "field `extra`: not a field of the schema",
            ),
            (json!([1]), "the record: expected object, found array [1]"),
        ] {
            let error = readings.check(&record).unwrap_err();
            assert!(error.starts_with(reason), "{record}: {error}");
        }
        // Integers are numbers; a number without a fraction is an integer.
        let count = schema(json!({"type": "integer"}));
        assert!(count.check(&json!(3.0)).is_ok());
        assert!(schema(json!({"type": "number"})).check(&json!(3)).is_ok());
    }

    #[test]
    fn keywords_weir_does_not_check_are_refused_by_name() {
        for (text, reason) in [
            (
                json!({"type": "object", "properties": {"a": {"pattern": "^x"}}}),
                "field `a`: `pattern` is not a keyword",
            ),
            (json!({"oneOf": []}), "the record: `oneOf` is not a keyword"),
            (
                json!({"type": "text"}),
                "the record: `type` must name JSON types",
            ),
            (
                json!({"additionalProperties": {"type": "string"}}),
                "`additionalProperties` must be true or false",
            ),
            (
                json!({"properties": {}, "required": ["a"], "additionalProperties": false}),
                "`a` is required but additionalProperties is false",
            ),
        ] {
            let error = JsonSchema::parse(&text.to_string()).unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
        let annotated = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "t", "description": "d", "type": "string", "default": "x"});
        assert!(JsonSchema::parse(&annotated.to_string()).is_ok());
    }

    #[test]
    fn the_same_schema_is_fully_compatible() {
        assert!(compatible(Compatibility::Full, &base(), &base()));
    }

    /// In an open content model the old schema let an unlisted field hold anything: a new
    /// typed field may refuse old records (backward breaks), while old readers accept new
    /// records (forward holds). Schema registries judge it the same way.
    #[test]
    fn adding_an_optional_field_to_an_open_model_breaks_backward() {
        let open = |extra: bool| {
            let mut properties = json!({"id": {"type": "integer"}});
            if extra {
                properties["note"] = json!({"type": "string"});
            }
            record(properties, &["id"], false)
        };
        assert!(!compatible(
            Compatibility::Backward,
            &open(false),
            &open(true)
        ));
        assert!(compatible(
            Compatibility::Forward,
            &open(false),
            &open(true)
        ));
        // Removing it is the mirror image.
        assert!(compatible(
            Compatibility::Backward,
            &open(true),
            &open(false)
        ));
    }

    #[test]
    fn adding_an_optional_field_to_a_closed_model_breaks_forward() {
        let old = record(json!({"id": {"type": "integer"}}), &["id"], true);
        let new = record(
            json!({"id": {"type": "integer"}, "note": {"type": "string"}}),
            &["id"],
            true,
        );
        assert!(compatible(Compatibility::Backward, &old, &new));
        let why = Compatibility::Forward.check(&old, &new);
        assert!(
            why.iter().any(|reason| reason.contains("field `note`")),
            "{why:?}"
        );
    }

    #[test]
    fn adding_a_required_field_breaks_backward_only() {
        let new = record(
            json!({"id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"}}),
            &["id", "email"],
            false,
        );
        let why = Compatibility::Backward.check(&base(), &new);
        let missing = "backward (new reads old): field `email`: new requires it, old does not";
        assert!(why.iter().any(|reason| reason == missing), "{why:?}");
        assert!(compatible(Compatibility::Forward, &base(), &new));
    }

    #[test]
    fn removing_a_required_field_breaks_forward_only() {
        let new = record(json!({"name": {"type": "string"}}), &[], false);
        assert!(compatible(Compatibility::Backward, &base(), &new));
        assert!(!compatible(Compatibility::Forward, &base(), &new));
    }

    #[test]
    fn making_an_optional_field_required_breaks_backward() {
        let new = record(
            json!({"id": {"type": "integer"}, "name": {"type": "string"}}),
            &["id", "name"],
            false,
        );
        assert!(!compatible(Compatibility::Backward, &base(), &new));
        assert!(compatible(Compatibility::Forward, &base(), &new));
    }

    #[test]
    fn widening_integer_to_number_is_backward_and_narrowing_is_forward() {
        let number = record(
            json!({"id": {"type": "number"}, "name": {"type": "string"}}),
            &["id"],
            false,
        );
        assert!(compatible(Compatibility::Backward, &base(), &number));
        assert!(!compatible(Compatibility::Forward, &base(), &number));
        assert!(!compatible(Compatibility::Backward, &number, &base()));
    }

    #[test]
    fn changing_a_type_breaks_both_ways() {
        let text = record(
            json!({"id": {"type": "string"}, "name": {"type": "string"}}),
            &["id"],
            false,
        );
        let why = Compatibility::Full.check(&base(), &text);
        assert!(
            why.iter()
                .any(|r| r.starts_with("backward") && r.contains("field `id`")),
            "{why:?}"
        );
        assert!(
            why.iter()
                .any(|r| r.starts_with("forward") && r.contains("field `id`")),
            "{why:?}"
        );
    }

    #[test]
    fn adding_an_enum_value_is_backward_and_removing_one_is_forward() {
        let tiers = |values: Value| record(json!({"tier": {"enum": values}}), &[], false);
        let (two, three) = (
            tiers(json!(["gold", "silver"])),
            tiers(json!(["gold", "silver", "bronze"])),
        );
        assert!(compatible(Compatibility::Backward, &two, &three));
        assert!(!compatible(Compatibility::Forward, &two, &three));
        assert!(!compatible(Compatibility::Backward, &three, &two));
    }

    #[test]
    fn tightening_a_bound_breaks_backward_and_loosening_it_forward() {
        let limited = |maximum: u64| {
            record(
                json!({"celsius": {"type": "number", "maximum": maximum}}),
                &[],
                false,
            )
        };
        assert!(!compatible(
            Compatibility::Backward,
            &limited(125),
            &limited(100)
        ));
        assert!(compatible(
            Compatibility::Forward,
            &limited(125),
            &limited(100)
        ));
        assert!(compatible(
            Compatibility::Backward,
            &limited(100),
            &limited(125)
        ));
    }

    #[test]
    fn a_field_typed_in_the_new_schema_breaks_backward_when_the_old_left_it_open() {
        let old = record(json!({"id": {"type": "integer"}}), &["id"], false);
        let new = record(
            json!({"id": {"type": "integer"}, "note": {"type": "string"}}),
            &["id"],
            false,
        );
        // The old schema let `note` be anything, so old records may hold a number there.
        let opened = Compatibility::Backward.check(&old, &new);
        assert!(
            opened
                .iter()
                .any(|reason| reason.contains("field `note`: old allows any type")),
            "{opened:?}"
        );
    }

    #[test]
    fn changes_inside_arrays_and_nested_objects_are_found_by_path() {
        let nested = |kind: &str| {
            schema(json!({"type": "object", "properties": {
                "lines": {"type": "array", "items": {"type": "object", "properties": {"qty": {"type": kind}}}}
            }}))
        };
        let why = Compatibility::Backward.check(&nested("number"), &nested("integer"));
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("field `lines[].qty`"), "{why:?}");
    }
}
