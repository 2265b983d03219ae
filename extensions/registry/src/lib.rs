//! A Confluent-compatible schema registry.
//!
//! Why it exists: Kafka producers that serialize with Avro or JSON Schema register their
//! schema with a registry and prefix each value with the schema's id. Serving that API
//! from StreamHouse itself (on the HTTP listener, see [`http::router`]) lets those
//! producers point at one server, and lets the Kafka front end decode their values into a
//! typed table's columns ([`schema::framed`], [`ParsedSchema::payload_to_json`]).
//!
//! Schemas, subjects' versions and compatibility levels are stored in the catalog, so they
//! survive restarts and are shared by nodes on one PostgreSQL catalog. Parsed schemas are
//! cached by id: an id never changes meaning, so the cache needs no invalidation.

pub mod avro;
pub mod compatibility;
pub mod error;
pub mod http;
pub mod json_schema;
pub mod schema;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use streamhouse_catalog::{Catalog, SubjectVersion};

pub use compatibility::{Level, DEFAULT_LEVEL};
pub use error::RegistryError;
pub use schema::{framed, ParsedSchema, SchemaType};

/// How many times a registration is retried when another one changed the subject between
/// its compatibility check and its write.
const REGISTER_ATTEMPTS: usize = 3;

/// The most one Avro string, bytes, array or map in a record value may claim (its length
/// prefix is read before the data): a few crafted bytes must not allocate gigabytes.
const MAX_AVRO_ALLOCATION_BYTES: usize = 64 * 1024 * 1024;

/// Which version of a subject a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(i32),
}

impl VersionSpec {
    /// `latest`, `-1` (also latest) or a version number from 1.
    pub fn parse(text: &str) -> Result<VersionSpec, RegistryError> {
        match text {
            "latest" | "-1" => Ok(VersionSpec::Latest),
            n => match n.parse::<i32>() {
                Ok(v) if v >= 1 => Ok(VersionSpec::Number(v)),
                _ => Err(RegistryError::InvalidVersion(n.to_string())),
            },
        }
    }
}

/// A version of a subject with its schema.
#[derive(Debug, Clone)]
pub struct VersionedSchema {
    pub subject: String,
    pub version: i32,
    pub id: i64,
    pub schema: Arc<ParsedSchema>,
}

pub struct Registry {
    catalog: Catalog,
    schemas: RwLock<HashMap<i64, Arc<ParsedSchema>>>,
    /// Registrations in this process one at a time (the catalog fences other processes).
    registering: tokio::sync::Mutex<()>,
}

impl Registry {
    /// A registry over `catalog`, with every stored schema parsed into the cache.
    pub async fn open(catalog: Catalog) -> Result<Arc<Registry>, RegistryError> {
        apache_avro::util::max_allocation_bytes(MAX_AVRO_ALLOCATION_BYTES);
        let mut schemas = HashMap::new();
        for stored in catalog.stored_schemas().await? {
            // One schema this version cannot parse must not keep the server down: it is
            // reported, and requests for it fail alone.
            match SchemaType::parse(Some(&stored.schema_type)).and_then(|t| ParsedSchema::parse(t, &stored.text)) {
                Ok(parsed) => {
                    schemas.insert(stored.id, Arc::new(parsed));
                }
                Err(e) => tracing::warn!(id = stored.id, error = %e, "a stored schema does not parse; it is left out"),
            }
        }
        Ok(Arc::new(Registry { catalog, schemas: RwLock::new(schemas), registering: tokio::sync::Mutex::new(()) }))
    }

    /// The schema with `id` if this process has seen it; for hot paths that cannot wait.
    pub fn cached(&self, id: u32) -> Option<Arc<ParsedSchema>> {
        self.schemas.read().expect("schema cache lock").get(&i64::from(id)).cloned()
    }

    /// The schema with `id`, from the cache or the catalog (another node may have
    /// registered it).
    pub async fn schema(&self, id: i64) -> Result<Arc<ParsedSchema>, RegistryError> {
        if let Some(s) = self.schemas.read().expect("schema cache lock").get(&id) {
            return Ok(s.clone());
        }
        let stored = self.catalog.stored_schema(id).await?.ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))?;
        let parsed = Arc::new(ParsedSchema::parse(SchemaType::parse(Some(&stored.schema_type))?, &stored.text)?);
        self.schemas.write().expect("schema cache lock").insert(id, parsed.clone());
        Ok(parsed)
    }

    /// Registers `text` under `subject` and returns its id; an identical live version
    /// returns its existing id without a compatibility check, as Confluent's does.
    pub async fn register(&self, subject: &str, schema_type: SchemaType, text: &str) -> Result<VersionedSchema, RegistryError> {
        let parsed = Arc::new(ParsedSchema::parse(schema_type, text)?);
        let _one_at_a_time = self.registering.lock().await;
        for attempt in 1..=REGISTER_ATTEMPTS {
            let live = self.live_versions(subject).await?;
            if let Some(same) = live.iter().find(|v| v.schema.schema_type == schema_type && v.schema.canonical == parsed.canonical) {
                return Ok(same.clone());
            }
            let level = self.level(Some(subject)).await?;
            let existing: Vec<&ParsedSchema> = live.iter().map(|v| v.schema.as_ref()).collect();
            let problems = level.problems(&parsed, &existing);
            if !problems.is_empty() {
                return Err(RegistryError::Incompatible { subject: subject.to_string(), details: problems.join("; ") });
            }
            let latest = live.last().map(|v| v.version);
            match self.catalog.register_subject_version(subject, schema_type.as_str(), &parsed.text, &parsed.canonical, "[]", latest).await {
                Ok((id, version)) => {
                    // An existing id keeps the text it was first registered with.
                    let schema = self.schema(id).await?;
                    return Ok(VersionedSchema { subject: subject.to_string(), version, id, schema });
                }
                Err(streamhouse_catalog::Error::Conflict(_)) if attempt < REGISTER_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The live version of `subject` holding exactly this schema.
    pub async fn lookup(&self, subject: &str, schema_type: SchemaType, text: &str) -> Result<VersionedSchema, RegistryError> {
        let parsed = ParsedSchema::parse(schema_type, text)?;
        let live = self.live_versions(subject).await?;
        if live.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        live.into_iter()
            .find(|v| v.schema.schema_type == schema_type && v.schema.canonical == parsed.canonical)
            .ok_or_else(|| RegistryError::SchemaNotFound(format!("for subject '{subject}'")))
    }

    /// Subject names, with or without those whose versions are all soft-deleted.
    pub async fn subjects(&self, include_deleted: bool) -> Result<Vec<String>, RegistryError> {
        let mut names: Vec<String> =
            self.catalog.subject_versions(None).await?.into_iter().filter(|v| include_deleted || !v.deleted).map(|v| v.subject).collect();
        names.dedup();
        Ok(names)
    }

    /// Version numbers of `subject`; an unknown (or wholly deleted) subject is an error.
    pub async fn versions(&self, subject: &str, include_deleted: bool) -> Result<Vec<i32>, RegistryError> {
        let versions: Vec<i32> =
            self.catalog.subject_versions(Some(subject)).await?.into_iter().filter(|v| include_deleted || !v.deleted).map(|v| v.version).collect();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        Ok(versions)
    }

    /// One live version of `subject`.
    pub async fn version(&self, subject: &str, spec: VersionSpec) -> Result<VersionedSchema, RegistryError> {
        let live = self.live_versions(subject).await?;
        if live.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        let found = match spec {
            VersionSpec::Latest => live.last().cloned(),
            VersionSpec::Number(n) => live.into_iter().find(|v| v.version == n),
        };
        found.ok_or_else(|| RegistryError::VersionNotFound(version_text(spec)))
    }

    /// (subject, version) pairs using schema `id`.
    pub async fn usages(&self, id: i64) -> Result<Vec<(String, i32)>, RegistryError> {
        self.schema(id).await?;
        Ok(self.catalog.subject_versions(None).await?.into_iter().filter(|v| v.schema_id == id && !v.deleted).map(|v| (v.subject, v.version)).collect())
    }

    /// Deletes every version of `subject`: soft first, then permanently.
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<i32>, RegistryError> {
        let all = self.catalog.subject_versions(Some(subject)).await?;
        if all.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        if !permanent && all.iter().all(|v| v.deleted) {
            return Err(RegistryError::SubjectSoftDeleted(subject.to_string()));
        }
        if permanent && all.iter().any(|v| !v.deleted) {
            return Err(RegistryError::SubjectNotSoftDeleted(subject.to_string()));
        }
        Ok(self.catalog.delete_subject_versions(subject, None, permanent).await?)
    }

    /// Deletes one version of `subject`: soft first, then permanently.
    pub async fn delete_version(&self, subject: &str, spec: VersionSpec, permanent: bool) -> Result<i32, RegistryError> {
        let all = self.catalog.subject_versions(Some(subject)).await?;
        if all.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        let target = match spec {
            VersionSpec::Latest => all.iter().rfind(|v| !v.deleted),
            VersionSpec::Number(n) => all.iter().find(|v| v.version == n),
        };
        let target = target.ok_or_else(|| RegistryError::VersionNotFound(version_text(spec)))?;
        match (target.deleted, permanent) {
            (true, false) => return Err(RegistryError::VersionSoftDeleted { subject: subject.to_string(), version: target.version }),
            (false, true) => return Err(RegistryError::VersionNotSoftDeleted { subject: subject.to_string(), version: target.version }),
            _ => {}
        }
        self.catalog.delete_subject_versions(subject, Some(target.version), permanent).await?;
        Ok(target.version)
    }

    /// Why `text` may not be registered under `subject`: against one version, or (`None`)
    /// against the versions the subject's level compares with.
    pub async fn check(&self, subject: &str, spec: Option<VersionSpec>, schema_type: SchemaType, text: &str) -> Result<Vec<String>, RegistryError> {
        let parsed = ParsedSchema::parse(schema_type, text)?;
        let level = self.level(Some(subject)).await?;
        match spec {
            // Nothing registered yet: anything is compatible with "latest" (as Confluent).
            Some(VersionSpec::Latest) if self.live_versions(subject).await?.is_empty() => Ok(Vec::new()),
            Some(spec) => {
                let old = match self.version(subject, spec).await {
                    Err(RegistryError::SubjectNotFound(_)) => return Err(RegistryError::VersionNotFound(version_text(spec))),
                    other => other?,
                };
                Ok(level.problems(&parsed, &[old.schema.as_ref()]))
            }
            None => {
                let live = self.live_versions(subject).await?;
                let existing: Vec<&ParsedSchema> = live.iter().map(|v| v.schema.as_ref()).collect();
                Ok(level.problems(&parsed, &existing))
            }
        }
    }

    /// The level that applies to `subject` (its own, else the global one, else the
    /// default); `None` asks for the global level.
    pub async fn level(&self, subject: Option<&str>) -> Result<Level, RegistryError> {
        if let Some(level) = self.configured_level(subject).await? {
            return Ok(level);
        }
        Ok(match subject {
            Some(_) => self.configured_level(None).await?.unwrap_or(DEFAULT_LEVEL),
            None => DEFAULT_LEVEL,
        })
    }

    /// The level set for `subject` (or globally), if any.
    pub async fn configured_level(&self, subject: Option<&str>) -> Result<Option<Level>, RegistryError> {
        self.catalog.compatibility_level(subject).await?.map(|l| Level::parse(&l)).transpose()
    }

    /// Sets or (with `None`) clears the level of `subject` or the global level.
    pub async fn set_level(&self, subject: Option<&str>, level: Option<Level>) -> Result<(), RegistryError> {
        Ok(self.catalog.set_compatibility_level(subject, level.map(Level::as_str)).await?)
    }

    async fn live_versions(&self, subject: &str) -> Result<Vec<VersionedSchema>, RegistryError> {
        let versions: Vec<SubjectVersion> = self.catalog.subject_versions(Some(subject)).await?.into_iter().filter(|v| !v.deleted).collect();
        let mut out = Vec::with_capacity(versions.len());
        for v in versions {
            out.push(VersionedSchema { schema: self.schema(v.schema_id).await?, subject: v.subject, version: v.version, id: v.schema_id });
        }
        Ok(out)
    }
}

fn version_text(spec: VersionSpec) -> String {
    match spec {
        VersionSpec::Latest => "latest".into(),
        VersionSpec::Number(n) => n.to_string(),
    }
}
