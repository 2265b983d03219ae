//! Compatibility levels and what each demands of a new schema against the subject's
//! existing versions. BACKWARD: the new schema reads data written with the old one;
//! FORWARD: the old one reads data written with the new; FULL: both. Without
//! `_TRANSITIVE` only the latest version is compared, with it every version.

use crate::error::RegistryError;
use crate::schema::ParsedSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

/// What a new subject gets when nothing is configured (the Confluent default).
pub const DEFAULT_LEVEL: Level = Level::Backward;

impl Level {
    pub fn parse(name: &str) -> Result<Level, RegistryError> {
        Ok(match name.to_ascii_uppercase().as_str() {
            "NONE" => Level::None,
            "BACKWARD" => Level::Backward,
            "BACKWARD_TRANSITIVE" => Level::BackwardTransitive,
            "FORWARD" => Level::Forward,
            "FORWARD_TRANSITIVE" => Level::ForwardTransitive,
            "FULL" => Level::Full,
            "FULL_TRANSITIVE" => Level::FullTransitive,
            _ => return Err(RegistryError::InvalidCompatibilityLevel),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(self, Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive)
    }

    fn backward(self) -> bool {
        matches!(self, Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive)
    }

    fn forward(self) -> bool {
        matches!(self, Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive)
    }

    /// Why `new` may not join a subject whose live versions are `existing` (oldest
    /// first); empty means it may.
    pub fn problems(self, new: &ParsedSchema, existing: &[&ParsedSchema]) -> Vec<String> {
        let compared: &[&ParsedSchema] = match (self.transitive(), existing.split_last()) {
            (true, _) => existing,
            (false, Some((latest, _))) => std::slice::from_ref(latest),
            (false, None) => &[],
        };
        let mut problems = Vec::new();
        for old in compared {
            if self.backward() {
                problems.extend(new.read_problems(old).into_iter().map(|p| format!("the new schema cannot read data written with an earlier one: {p}")));
            }
            if self.forward() {
                problems.extend(old.read_problems(new).into_iter().map(|p| format!("an earlier schema cannot read data written with the new one: {p}")));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaType;

    fn avro(fields: &str) -> ParsedSchema {
        ParsedSchema::parse(SchemaType::Avro, &format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#)).unwrap()
    }

    #[test]
    fn levels() {
        let v1 = avro(r#"{"name":"a","type":"string"}"#);
        let v2 = avro(r#"{"name":"a","type":"string"},{"name":"b","type":"long","default":0}"#);
        let v3 = avro(r#"{"name":"b","type":"long","default":0}"#); // drops a, which v1 requires
        assert!(Level::Full.problems(&v2, &[&v1]).is_empty());
        // v3 reads v2's data (a is ignored, b is there) but v1 cannot read v3's (no a).
        assert!(Level::Backward.problems(&v3, &[&v1, &v2]).is_empty());
        assert!(!Level::Forward.problems(&v3, &[&v1, &v2]).is_empty());
        // Transitive compares with v1 too: v3 reading v1's data needs b's default, fine; but
        // FORWARD_TRANSITIVE must fail as FORWARD does.
        assert!(Level::BackwardTransitive.problems(&v3, &[&v1, &v2]).is_empty());
        assert!(!Level::FullTransitive.problems(&v3, &[&v1, &v2]).is_empty());
        assert!(Level::None.problems(&v3, &[&v1, &v2]).is_empty());
        // b without a default reads v2's data, not v1's: only the transitive level sees v1.
        let v4 = avro(r#"{"name":"a","type":"string"},{"name":"b","type":"long"}"#);
        assert!(Level::Backward.problems(&v4, &[&v1, &v2]).is_empty());
        assert!(!Level::BackwardTransitive.problems(&v4, &[&v1, &v2]).is_empty());
        assert!(Level::parse("full_transitive").unwrap() == Level::FullTransitive);
        assert!(Level::parse("sideways").is_err());
    }
}
