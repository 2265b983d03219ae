//! JSON Schema compatibility: can every document valid under the writer's schema be read
//! with the reader's? Checked structurally over the keywords that constrain data shape —
//! `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, the numeric,
//! length and size bounds, `anyOf` (and `oneOf` when unchanged) — following the Confluent
//! registry's reading of open and closed content models: adding a property to an open
//! model is incompatible, because old writers may already have put anything under that
//! name. Local `$ref`s (`#/$defs/…`) are followed. The check fails closed: a keyword it
//! does not understand (`allOf`, `not`, `const`, `if`, …) that differs between the two
//! schemas is reported as a problem, so it may refuse a compatible change but never
//! accepts an incompatible one.

use serde_json::{Map, Value};

/// Checks that `schema` is a JSON Schema this registry can work with.
pub fn validate(schema: &Value) -> Result<(), String> {
    match schema {
        Value::Bool(_) => Ok(()),
        Value::Object(o) => {
            if let Some(t) = o.get("type") {
                let names: Vec<&Value> = match t {
                    Value::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                for n in names {
                    match n.as_str() {
                        Some("null" | "boolean" | "object" | "array" | "number" | "integer" | "string") => {}
                        _ => return Err(format!("unknown type {n}")),
                    }
                }
            }
            for key in ["properties", "$defs", "definitions"] {
                if let Some(p) = o.get(key) {
                    let p = p.as_object().ok_or_else(|| format!("\"{key}\" must be an object"))?;
                    p.values().try_for_each(validate)?;
                }
            }
            for key in ["items", "additionalProperties", "not"] {
                if let Some(s) = o.get(key) {
                    validate(s)?;
                }
            }
            for key in ["anyOf", "oneOf", "allOf"] {
                if let Some(s) = o.get(key) {
                    s.as_array().ok_or_else(|| format!("\"{key}\" must be an array"))?.iter().try_for_each(validate)?;
                }
            }
            Ok(())
        }
        _ => Err("a JSON Schema is an object or a boolean".into()),
    }
}

/// Why documents valid under `writer` may not be valid under `reader` (empty: they are).
pub fn read_problems(reader: &Value, writer: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    Check { reader_root: reader, writer_root: writer, in_progress: Default::default() }.check(reader, writer, "#", 0, &mut problems);
    problems
}

/// Keywords the structural check understands; any other keyword that constrains data and
/// differs between the two schemas is reported rather than ignored (the check fails
/// closed: it may refuse a compatible change, never accept an incompatible one).
const CHECKED: &[&str] = &[
    "type", "properties", "required", "additionalProperties", "items", "enum", "anyOf", "oneOf", "maximum", "minimum",
    "maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties", "pattern", "$ref",
];

/// Keywords that never constrain data.
const ANNOTATIONS: &[&str] =
    &["$schema", "$id", "$comment", "title", "description", "default", "examples", "$defs", "definitions", "readOnly", "writeOnly", "deprecated", "format"];

/// How deep `$ref`s are followed before the check gives up (recursive schemas).
const MAX_DEPTH: usize = 32;

struct Check<'a> {
    reader_root: &'a Value,
    writer_root: &'a Value,
    /// (reader, writer) definitions reached through `$ref` and being checked: meeting a
    /// pair again (a recursive schema) assumes it compatible, as its check is under way.
    in_progress: std::cell::RefCell<std::collections::HashSet<(usize, usize)>>,
}

/// The schema a local `$ref` (`#/$defs/x`, `#/definitions/x`, any `#/…` pointer) names.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> Result<&'a Value, String> {
    match node.get("$ref").and_then(Value::as_str) {
        None => Ok(node),
        Some(r) => match r.strip_prefix('#') {
            Some(pointer) => root.pointer(pointer).ok_or_else(|| format!("$ref {r} points nowhere")),
            None => Err(format!("$ref {r} is not local to the schema; it cannot be checked")),
        },
    }
}

impl Check<'_> {
    fn check(&self, reader: &Value, writer: &Value, at: &str, depth: usize, out: &mut Vec<String>) {
        if depth > MAX_DEPTH {
            out.push(format!("{at}: schema nests or recurses too deeply to be checked"));
            return;
        }
        let followed = reader.get("$ref").is_some() || writer.get("$ref").is_some();
        let (reader, writer) = match (resolve(self.reader_root, reader), resolve(self.writer_root, writer)) {
            (Ok(r), Ok(w)) => (r, w),
            (Err(e), _) | (_, Err(e)) => {
                out.push(format!("{at}: {e}"));
                return;
            }
        };
        if followed {
            let pair = (reader as *const Value as usize, writer as *const Value as usize);
            if !self.in_progress.borrow_mut().insert(pair) {
                return;
            }
        }
        // Identical subtrees without references are compatible; with references the
        // referenced definitions may differ, so those are compared through.
        if (reader == writer && !contains_ref(reader)) || accepts_anything(reader) || matches!(writer, Value::Bool(false)) {
            return;
        }
        let (Some(r), Some(w)) = (reader.as_object(), writer.as_object()) else {
            out.push(format!("{at}: the reader accepts nothing the writer may produce"));
            return;
        };
        for (key, value) in r {
            let known = CHECKED.contains(&key.as_str()) || ANNOTATIONS.contains(&key.as_str());
            if !known && w.get(key) != Some(value) {
                out.push(format!("{at}: the reader's \"{key}\" is not checked and differs from the writer's"));
            }
        }
        // The writer's alternatives: each must be readable.
        if let Some(branches) = alternatives(w) {
            for (i, branch) in branches.iter().enumerate() {
                self.check(reader, branch, &format!("{at}/anyOf/{i}"), depth + 1, out);
            }
            return;
        }
        if let Some(key) = ["anyOf", "oneOf"].into_iter().find(|k| r.contains_key(*k)) {
            // `oneOf` fails when a value matches two branches: only an unchanged one is safe.
            if key == "oneOf" && w.get("oneOf") != r.get("oneOf") {
                out.push(format!("{at}: the reader's oneOf differs from the writer's"));
            } else if !r[key].as_array().is_some_and(|branches| branches.iter().any(|b| self.problems(b, writer, depth).is_empty())) {
                out.push(format!("{at}: no alternative of the reader accepts the writer's schema"));
            }
            // The reader's other keywords apply as well.
            let mut rest = r.clone();
            rest.remove(key);
            self.check(&Value::Object(rest), writer, at, depth + 1, out);
            return;
        }
        let (reader_types, writer_types) = (types(r), types(w));
        if let Some(rt) = &reader_types {
            match &writer_types {
                None => out.push(format!("{at}: the writer allows any type, the reader only {}", rt.join(", "))),
                Some(wt) => {
                    for t in wt {
                        let readable = rt.contains(t) || (t == "integer" && rt.iter().any(|x| x == "number"));
                        if !readable {
                            out.push(format!("{at}: type {t} written, not readable"));
                        }
                    }
                }
            }
        }
        let may_be = |types: &Option<Vec<String>>, t: &str| types.as_ref().is_none_or(|ts| ts.iter().any(|x| x == t));
        if may_be(&writer_types, "object") && may_be(&reader_types, "object") {
            self.check_object(r, w, at, depth, out);
        }
        if may_be(&writer_types, "array") && may_be(&reader_types, "array") {
            if let Some(items) = r.get("items") {
                self.check(items, w.get("items").unwrap_or(&Value::Bool(true)), &format!("{at}/items"), depth + 1, out);
            }
        }
        if let Some(allowed) = r.get("enum").and_then(Value::as_array) {
            match w.get("enum").and_then(Value::as_array) {
                Some(written) => {
                    for v in written.iter().filter(|v| !allowed.contains(v)) {
                        out.push(format!("{at}: enum value {v} written, not readable"));
                    }
                }
                None => out.push(format!("{at}: the reader restricts values to an enum, the writer does not")),
            }
        }
        // Upper bounds may only grow, lower bounds only shrink.
        for key in ["maximum", "maxLength", "maxItems", "maxProperties"] {
            bound(r, w, key, at, out, |reader, writer| reader >= writer);
        }
        for key in ["minimum", "minLength", "minItems", "minProperties"] {
            bound(r, w, key, at, out, |reader, writer| reader <= writer);
        }
        if let Some(pattern) = r.get("pattern") {
            if w.get("pattern") != Some(pattern) {
                out.push(format!("{at}: the reader requires a pattern the writer does not"));
            }
        }
    }

    /// A trial check (of one alternative) whose problems are looked at, not reported: it
    /// starts its own record of definitions in progress so it skips nothing later.
    fn problems(&self, reader: &Value, writer: &Value, depth: usize) -> Vec<String> {
        let mut out = Vec::new();
        let trial = Check { reader_root: self.reader_root, writer_root: self.writer_root, in_progress: Default::default() };
        trial.check(reader, writer, "#", depth + 1, &mut out);
        out
    }

    fn check_object(&self, r: &Map<String, Value>, w: &Map<String, Value>, at: &str, depth: usize, out: &mut Vec<String>) {
        let empty = Map::new();
        let (rp, wp) = (properties(r).unwrap_or(&empty), properties(w).unwrap_or(&empty));
        let (r_required, w_required) = (required(r), required(w));
        for name in r_required.iter().filter(|n| !w_required.contains(n)) {
            out.push(format!("{at}: property \"{name}\" is required by the reader but not by the writer"));
        }
        for (name, written) in wp {
            let path = format!("{at}/properties/{name}");
            match rp.get(name) {
                Some(read) => self.check(read, written, &path, depth + 1, out),
                None => match r.get("additionalProperties") {
                    Some(Value::Bool(false)) => out.push(format!("{path}: removed from a closed content model")),
                    Some(extra) => self.check(extra, written, &path, depth + 1, out),
                    None => {}
                },
            }
        }
        for (name, read) in rp.iter().filter(|(n, _)| !wp.contains_key(*n)) {
            let path = format!("{at}/properties/{name}");
            match w.get("additionalProperties") {
                Some(Value::Bool(false)) if !w.contains_key("patternProperties") => {}
                Some(Value::Bool(false)) => out.push(format!("{path}: added where the writer allows pattern properties")),
                Some(extra) => self.check(read, extra, &path, depth + 1, out),
                None if accepts_anything(read) => {}
                None => out.push(format!("{path}: added to an open content model (old writers may have used the name for anything)")),
            }
        }
        if let (Some(read), Some(written)) = (r.get("additionalProperties"), w.get("additionalProperties")) {
            self.check(read, written, &format!("{at}/additionalProperties"), depth + 1, out);
        } else if let (Some(read), None) = (r.get("additionalProperties"), w.get("additionalProperties")) {
            if !accepts_anything(read) {
                out.push(format!("{at}: the reader restricts additional properties, the writer does not"));
            }
        }
    }
}

fn bound(r: &Map<String, Value>, w: &Map<String, Value>, key: &str, at: &str, out: &mut Vec<String>, ok: fn(f64, f64) -> bool) {
    if let Some(reader) = r.get(key).and_then(Value::as_f64) {
        match w.get(key).and_then(Value::as_f64) {
            Some(writer) if ok(reader, writer) => {}
            Some(writer) => out.push(format!("{at}: {key} narrowed from {writer} to {reader}")),
            None => out.push(format!("{at}: the reader sets {key} {reader}, the writer has no such bound")),
        }
    }
}

fn contains_ref(schema: &Value) -> bool {
    match schema {
        Value::Object(o) => o.contains_key("$ref") || o.values().any(contains_ref),
        Value::Array(a) => a.iter().any(contains_ref),
        _ => false,
    }
}

fn accepts_anything(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(o) => o.keys().all(|k| ANNOTATIONS.contains(&k.as_str())),
        _ => false,
    }
}

fn types(o: &Map<String, Value>) -> Option<Vec<String>> {
    match o.get("type")? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(a.iter().filter_map(|v| v.as_str().map(String::from)).collect()),
        _ => None,
    }
}

fn properties(o: &Map<String, Value>) -> Option<&Map<String, Value>> {
    o.get("properties")?.as_object()
}

fn required(o: &Map<String, Value>) -> Vec<&str> {
    o.get("required").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn alternatives(o: &Map<String, Value>) -> Option<&Vec<Value>> {
    o.get("anyOf").or_else(|| o.get("oneOf"))?.as_array()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(reader: Value, writer: Value) -> bool {
        read_problems(&reader, &writer).is_empty()
    }

    #[test]
    fn types_widen_not_narrow() {
        assert!(ok(json!({"type": "number"}), json!({"type": "integer"})));
        assert!(!ok(json!({"type": "integer"}), json!({"type": "number"})));
        assert!(ok(json!({"type": ["string", "null"]}), json!({"type": "string"})));
        assert!(!ok(json!({"type": "string"}), json!({})));
    }

    #[test]
    fn content_models() {
        let closed = |props: Value| json!({"type": "object", "properties": props, "additionalProperties": false});
        let open = |props: Value| json!({"type": "object", "properties": props});
        // Adding an optional property: fine when the old model was closed, not when open.
        assert!(ok(closed(json!({"a": {"type": "string"}, "b": {"type": "integer"}})), closed(json!({"a": {"type": "string"}}))));
        assert!(!ok(open(json!({"a": {"type": "string"}, "b": {"type": "integer"}})), open(json!({"a": {"type": "string"}}))));
        // Removing a property: fine for an open reader, not a closed one.
        assert!(ok(open(json!({"a": {"type": "string"}})), open(json!({"a": {"type": "string"}, "b": {"type": "integer"}}))));
        assert!(!ok(closed(json!({"a": {"type": "string"}})), closed(json!({"a": {"type": "string"}, "b": {"type": "integer"}}))));
        // A reader may not require what the writer leaves optional.
        let mut strict = open(json!({"a": {"type": "string"}}));
        strict["required"] = json!(["a"]);
        assert!(!ok(strict.clone(), open(json!({"a": {"type": "string"}}))));
        assert!(ok(open(json!({"a": {"type": "string"}})), strict));
    }

    #[test]
    fn enums_bounds_and_alternatives() {
        assert!(ok(json!({"enum": ["a", "b", "c"]}), json!({"enum": ["a", "b"]})));
        assert!(!ok(json!({"enum": ["a"]}), json!({"enum": ["a", "b"]})));
        assert!(ok(json!({"type": "string", "maxLength": 10}), json!({"type": "string", "maxLength": 5})));
        assert!(!ok(json!({"type": "string", "maxLength": 5}), json!({"type": "string", "maxLength": 10})));
        assert!(ok(json!({"anyOf": [{"type": "string"}, {"type": "integer"}]}), json!({"type": "integer"})));
        assert!(!ok(json!({"type": "integer"}), json!({"oneOf": [{"type": "string"}, {"type": "integer"}]})));
    }

    #[test]
    fn fails_closed() {
        // A change inside $defs is seen through the $ref.
        let with = |t: &str| json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"type": t}}});
        assert!(ok(with("number"), with("integer")));
        assert!(!ok(with("integer"), with("string")));
        // Keywords the check does not model refuse when they differ, pass when equal.
        assert!(!ok(json!({"type": "integer", "const": 1}), json!({"type": "integer"})));
        assert!(ok(json!({"type": "integer", "const": 1}), json!({"type": "integer", "const": 1})));
        assert!(!ok(json!({"allOf": [{"type": "string"}]}), json!({"type": "integer"})));
        // A reader's alternatives do not hide its other keywords; oneOf only when unchanged.
        assert!(!ok(json!({"type": "object", "required": ["x"], "anyOf": [{}]}), json!({"type": "object"})));
        assert!(!ok(json!({"oneOf": [{"type": "number"}, {"type": "integer"}]}), json!({"type": "integer"})));
        // Recursive schemas are checked once per pair of definitions.
        let tree = |t: &str| json!({"$defs": {"N": {"type": "object", "properties": {"v": {"type": t}, "next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"});
        assert!(!ok(tree("integer"), tree("string")));
        assert!(ok(tree("number"), tree("integer")));
    }

    #[test]
    fn validation() {
        assert!(validate(&json!({"type": "object", "properties": {"a": {"type": "string"}}})).is_ok());
        assert!(validate(&json!({"type": "strnig"})).is_err());
        assert!(validate(&json!(42)).is_err());
    }
}
