//! Avro: compatibility by Avro's own schema-resolution rules (apache-avro), and decoding
//! of a record value written with a registered schema into a JSON object, which the Kafka
//! front end then reads into the table's columns like any JSON value.

use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::types::Value;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::Schema;
use chrono::{DateTime, NaiveTime};
use serde_json::{Map, Number, Value as Json};

/// Why data written with `writer` cannot all be read with `reader` (empty: it can).
pub fn read_problems(reader: &Schema, writer: &Schema) -> Vec<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => Vec::new(),
        Ok(Compatibility::Partial) => {
            vec!["the reader lacks some enum symbols or union branches the writer can produce".to_string()]
        }
        Err(e) => vec![e.to_string()],
    }
}

/// Decodes one Avro datum written with `schema` into JSON text. The whole payload must be
/// the datum: trailing bytes mean the value was not written with this schema.
pub fn to_json(schema: &Schema, payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut reader = payload;
    let value = GenericDatumReader::builder(schema)
        .build()
        .and_then(|datum| datum.read_value(&mut reader))
        .map_err(|e| format!("Avro value does not decode: {e}"))?;
    if !reader.is_empty() {
        return Err(format!("{} bytes left after the Avro value", reader.len()));
    }
    serde_json::to_vec(&json(value)?).map_err(|e| e.to_string())
}

/// Avro values as the JSON the table decoder expects: unions unwrapped, logical types as
/// the text forms arrow-json parses (dates, times and timestamps in ISO 8601).
fn json(value: Value) -> Result<Json, String> {
    let timestamp = |seconds: i64, nanos: u32, zoned: bool| -> Result<Json, String> {
        let t = DateTime::from_timestamp(seconds, nanos).ok_or("timestamp out of range")?;
        Ok(Json::String(if zoned { t.to_rfc3339() } else { t.naive_utc().to_string() }))
    };
    let split = |v: i64, per_second: i64| (v.div_euclid(per_second), (v.rem_euclid(per_second) * (1_000_000_000 / per_second)) as u32);
    Ok(match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::Int(i) => Json::from(i),
        Value::Long(l) => Json::from(l),
        Value::Float(f) => Number::from_f64(f64::from(f)).map(Json::Number).ok_or("a float that is not finite")?,
        Value::Double(d) => Number::from_f64(d).map(Json::Number).ok_or("a double that is not finite")?,
        Value::String(s) | Value::Enum(_, s) => Json::String(s),
        Value::Bytes(b) | Value::Fixed(_, b) => {
            Json::String(String::from_utf8(b).map_err(|_| "bytes that are not UTF-8 text cannot fill a table column")?)
        }
        Value::Union(_, inner) => json(*inner)?,
        Value::Array(items) => Json::Array(items.into_iter().map(json).collect::<Result<_, _>>()?),
        Value::Map(entries) => Json::Object(entries.into_iter().map(|(k, v)| Ok((k, json(v)?))).collect::<Result<Map<_, _>, String>>()?),
        Value::Record(fields) => Json::Object(fields.into_iter().map(|(k, v)| Ok((k, json(v)?))).collect::<Result<Map<_, _>, String>>()?),
        Value::Date(days) => {
            let date = DateTime::from_timestamp(i64::from(days) * 86_400, 0).ok_or("date out of range")?.date_naive();
            Json::String(date.to_string())
        }
        Value::TimeMillis(ms) => time(i64::from(ms) * 1_000_000)?,
        Value::TimeMicros(us) => time(us.checked_mul(1_000).ok_or("time of day out of range")?)?,
        Value::TimestampMillis(v) => timestamp(split(v, 1_000).0, split(v, 1_000).1, true)?,
        Value::TimestampMicros(v) => timestamp(split(v, 1_000_000).0, split(v, 1_000_000).1, true)?,
        Value::TimestampNanos(v) => timestamp(split(v, 1_000_000_000).0, split(v, 1_000_000_000).1, true)?,
        Value::LocalTimestampMillis(v) => timestamp(split(v, 1_000).0, split(v, 1_000).1, false)?,
        Value::LocalTimestampMicros(v) => timestamp(split(v, 1_000_000).0, split(v, 1_000_000).1, false)?,
        Value::LocalTimestampNanos(v) => timestamp(split(v, 1_000_000_000).0, split(v, 1_000_000_000).1, false)?,
        Value::BigDecimal(d) => Json::String(d.to_string()),
        Value::Uuid(u) => Json::String(u.to_string()),
        Value::Decimal(_) => return Err("Avro decimal values are not supported yet".into()),
        Value::Duration(_) => return Err("Avro duration values are not supported yet".into()),
    })
}

fn time(nanos_of_day: i64) -> Result<Json, String> {
    let seconds = u32::try_from(nanos_of_day.div_euclid(1_000_000_000)).map_err(|_| "time of day out of range")?;
    let t = NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanos_of_day.rem_euclid(1_000_000_000) as u32)
        .ok_or("time of day out of range")?;
    Ok(Json::String(t.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(text: &str) -> Schema {
        Schema::parse_str(text).unwrap()
    }

    const V1: &str = r#"{"type":"record","name":"Click","fields":[{"name":"url","type":"string"},{"name":"ms","type":"long"}]}"#;
    const V2_WITH_DEFAULT: &str = r#"{"type":"record","name":"Click","fields":[{"name":"url","type":"string"},{"name":"ms","type":"long"},{"name":"country","type":"string","default":"?"}]}"#;
    const V2_NO_DEFAULT: &str = r#"{"type":"record","name":"Click","fields":[{"name":"url","type":"string"},{"name":"ms","type":"long"},{"name":"country","type":"string"}]}"#;

    #[test]
    fn resolution_rules() {
        // A new field with a default can read old data; without one it cannot.
        assert!(read_problems(&schema(V2_WITH_DEFAULT), &schema(V1)).is_empty());
        assert!(!read_problems(&schema(V2_NO_DEFAULT), &schema(V1)).is_empty());
        // Old readers ignore the new field.
        assert!(read_problems(&schema(V1), &schema(V2_NO_DEFAULT)).is_empty());
        // int promotes to long, not back.
        assert!(read_problems(&schema(r#""long""#), &schema(r#""int""#)).is_empty());
        assert!(!read_problems(&schema(r#""int""#), &schema(r#""long""#)).is_empty());
    }

    #[test]
    fn datum_to_json() {
        let s = schema(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","string"]},{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#,
        );
        let value = Value::Record(vec![
            ("a".into(), Value::Union(1, Box::new(Value::String("x".into())))),
            ("t".into(), Value::TimestampMillis(1_700_000_000_123)),
        ]);
        let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&s).build().unwrap().write_value_to_vec(value).unwrap();
        let text = String::from_utf8(to_json(&s, &bytes).unwrap()).unwrap();
        assert_eq!(text, r#"{"a":"x","t":"2023-11-14T22:13:20.123+00:00"}"#);
        assert!(to_json(&s, &bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(to_json(&s, &longer).unwrap_err().contains("left after"));
    }
}
