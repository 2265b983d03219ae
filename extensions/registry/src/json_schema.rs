//! JSON Schema compatibility: can every document valid under the writer's schema be read
//! with the reader's? Checked structurally over the keywords that constrain data shape —
//! `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, the numeric,
//! length and size bounds, `anyOf`/`oneOf` — following the Confluent registry's reading of
//! open and closed content models: adding a property to an open model is incompatible,
//! because old writers may already have put anything under that name.
//!
//! `$ref` is compared only when both sides are identical (references are not resolved).

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
    check(reader, writer, "#", &mut problems);
    problems
}

fn check(reader: &Value, writer: &Value, at: &str, out: &mut Vec<String>) {
    if reader == writer || accepts_anything(reader) || matches!(writer, Value::Bool(false)) {
        return;
    }
    let (Some(r), Some(w)) = (reader.as_object(), writer.as_object()) else {
        out.push(format!("{at}: the reader accepts nothing the writer may produce"));
        return;
    };
    if r.contains_key("$ref") || w.contains_key("$ref") {
        out.push(format!("{at}: differing $ref schemas cannot be compared"));
        return;
    }
    // Alternatives: every writer branch must be readable; one reader branch must read it.
    if let Some(branches) = alternatives(w) {
        for (i, branch) in branches.iter().enumerate() {
            check(reader, branch, &format!("{at}/anyOf/{i}"), out);
        }
        return;
    }
    if let Some(branches) = alternatives(r) {
        if !branches.iter().any(|b| read_problems(b, writer).is_empty()) {
            out.push(format!("{at}: no alternative of the reader accepts the writer's schema"));
        }
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
        check_object(r, w, at, out);
    }
    if may_be(&writer_types, "array") && may_be(&reader_types, "array") {
        if let Some(items) = r.get("items") {
            check(items, w.get("items").unwrap_or(&Value::Bool(true)), &format!("{at}/items"), out);
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
    for key in ["maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"] {
        bound(r, w, key, at, out, |reader, writer| reader >= writer);
    }
    for key in ["minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"] {
        bound(r, w, key, at, out, |reader, writer| reader <= writer);
    }
    if let Some(pattern) = r.get("pattern") {
        if w.get("pattern") != Some(pattern) {
            out.push(format!("{at}: the reader requires a pattern the writer does not"));
        }
    }
}

fn check_object(r: &Map<String, Value>, w: &Map<String, Value>, at: &str, out: &mut Vec<String>) {
    let empty = Map::new();
    let (rp, wp) = (properties(r).unwrap_or(&empty), properties(w).unwrap_or(&empty));
    let (r_required, w_required) = (required(r), required(w));
    for name in r_required.iter().filter(|n| !w_required.contains(n)) {
        out.push(format!("{at}: property \"{name}\" is required by the reader but not by the writer"));
    }
    for (name, written) in wp {
        let path = format!("{at}/properties/{name}");
        match rp.get(name) {
            Some(read) => check(read, written, &path, out),
            None => match r.get("additionalProperties") {
                Some(Value::Bool(false)) => out.push(format!("{path}: removed from a closed content model")),
                Some(extra) => check(extra, written, &path, out),
                None => {}
            },
        }
    }
    for (name, read) in rp.iter().filter(|(n, _)| !wp.contains_key(*n)) {
        let path = format!("{at}/properties/{name}");
        match w.get("additionalProperties") {
            Some(Value::Bool(false)) => {}
            Some(extra) => check(read, extra, &path, out),
            None if accepts_anything(read) => {}
            None => out.push(format!("{path}: added to an open content model (old writers may have used the name for anything)")),
        }
    }
    if let (Some(read), Some(written)) = (r.get("additionalProperties"), w.get("additionalProperties")) {
        check(read, written, &format!("{at}/additionalProperties"), out);
    } else if let (Some(read), None) = (r.get("additionalProperties"), w.get("additionalProperties")) {
        if !accepts_anything(read) {
            out.push(format!("{at}: the reader restricts additional properties, the writer does not"));
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

fn accepts_anything(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(o) => o.keys().all(|k| matches!(k.as_str(), "$schema" | "$id" | "title" | "description" | "$comment" | "default" | "examples")),
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
    fn validation() {
        assert!(validate(&json!({"type": "object", "properties": {"a": {"type": "string"}}})).is_ok());
        assert!(validate(&json!({"type": "strnig"})).is_err());
        assert!(validate(&json!(42)).is_err());
    }
}
