//! A registered schema, parsed once: its type, its text as stored, and the parsed form the
//! compatibility checks and the value decoder use.

use serde_json::Value;

use crate::error::RegistryError;
use crate::{avro, json_schema};

/// The schema languages this registry understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaType {
    Avro,
    Json,
}

impl SchemaType {
    /// `schemaType` as sent by clients; absent means Avro.
    pub fn parse(name: Option<&str>) -> Result<SchemaType, RegistryError> {
        match name.map(str::to_ascii_uppercase).as_deref() {
            None | Some("AVRO") => Ok(SchemaType::Avro),
            Some("JSON") => Ok(SchemaType::Json),
            Some("PROTOBUF") => Err(RegistryError::InvalidSchema("Protobuf schemas are not supported; use AVRO or JSON".into())),
            Some(other) => Err(RegistryError::InvalidSchema(format!("unknown schema type {other}"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
        }
    }
}

enum Form {
    Avro(apache_avro::Schema),
    Json(Value),
}

/// A schema ready to compare and to decode values with.
pub struct ParsedSchema {
    pub schema_type: SchemaType,
    /// The schema as the client sent it (stored and returned as is).
    pub text: String,
    /// Compacted JSON with sorted keys: two schemas with the same canonical form are the
    /// same schema (same id), however they were spaced or ordered.
    pub canonical: String,
    form: Form,
}

impl std::fmt::Debug for ParsedSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedSchema").field("type", &self.schema_type).field("text", &self.text).finish()
    }
}

impl ParsedSchema {
    pub fn parse(schema_type: SchemaType, text: &str) -> Result<ParsedSchema, RegistryError> {
        let json: Value = serde_json::from_str(text).map_err(|e| RegistryError::InvalidSchema(format!("not JSON: {e}")))?;
        // serde_json's maps are ordered by key, so this also sorts object keys.
        let canonical = json.to_string();
        let form = match schema_type {
            SchemaType::Avro => Form::Avro(apache_avro::Schema::parse(&json).map_err(|e| RegistryError::InvalidSchema(e.to_string()))?),
            SchemaType::Json => {
                json_schema::validate(&json).map_err(RegistryError::InvalidSchema)?;
                Form::Json(json)
            }
        };
        Ok(ParsedSchema { schema_type, text: text.to_string(), canonical, form })
    }

    /// Why data written with `writer` may not be readable with `self` (empty: it is).
    pub fn read_problems(&self, writer: &ParsedSchema) -> Vec<String> {
        match (&self.form, &writer.form) {
            (Form::Avro(r), Form::Avro(w)) => avro::read_problems(r, w),
            (Form::Json(r), Form::Json(w)) => json_schema::read_problems(r, w),
            _ => vec![format!("schema type {} cannot read {}", self.schema_type.as_str(), writer.schema_type.as_str())],
        }
    }

    /// The JSON text of one value written with this schema (the bytes after the
    /// Confluent header).
    pub fn payload_to_json(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        match &self.form {
            Form::Avro(schema) => avro::to_json(schema, payload),
            // JSON Schema values are JSON already; the table decoder checks their shape.
            Form::Json(_) => Ok(payload.to_vec()),
        }
    }
}

/// The Confluent wire format: magic byte 0, the schema id as a big-endian u32, then the
/// value. Returns the id and the value when `bytes` is framed that way. A JSON value never
/// starts with a zero byte, so framed and plain JSON values can share a topic.
pub fn framed(bytes: &[u8]) -> Option<(u32, &[u8])> {
    match bytes {
        [0, a, b, c, d, rest @ ..] => Some((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        _ => None,
    }
}
